/* mlx-c version.h. */
#include "mlx/c/version.h"
#include "util/error.h"

int mlx_version(mlx_string* str) {
  if (!str) return util_error("mlx_version: null result");
  mlx_string v = mlx_string_new_data(MLXC_VERSION_STRING);
  if (!v.ctx) return 1;
  mlx_string_free(*str);
  *str = v;
  return 0;
}
