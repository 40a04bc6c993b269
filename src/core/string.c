/* mlx-c strings (string.h): an owned copy of NUL-terminated text. */
#include <stdlib.h>
#include <string.h>

#include "mlx/c/string.h"
#include "util/error.h"

mlx_string mlx_string_new(void) { return (mlx_string){NULL}; }

mlx_string mlx_string_new_data(const char* str) {
  char* copy = strdup(str ? str : "");
  if (!copy) util_error("out of memory");
  return (mlx_string){copy};
}

int mlx_string_set(mlx_string* str, const mlx_string src) {
  if (!str) return util_error("mlx_string_set: null destination");
  char* copy = NULL;
  if (src.ctx && !(copy = strdup(src.ctx))) return util_error("out of memory");
  free(str->ctx);
  str->ctx = copy;
  return 0;
}

const char* mlx_string_data(mlx_string str) { return str.ctx ? str.ctx : ""; }

int mlx_string_free(mlx_string str) {
  free(str.ctx);
  return 0;
}
