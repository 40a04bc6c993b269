/* mlx-c transforms.h: evaluation. Work runs synchronously in the calling thread, so
 * mlx_async_eval finishes before it returns (a valid, if eager, schedule). */
#include <stdlib.h>

#include "core/array.h"
#include "mlx/c/transforms.h"
#include "util/error.h"

int mlx_eval(const mlx_vector_array outputs) {
  size_t n = mlx_vector_array_size(outputs);
  if (n == 0) return 0;
  core_array** arrays = malloc(n * sizeof *arrays);
  if (!arrays) return util_error("out of memory");
  int status = 0;
  mlx_array item = mlx_array_new();
  for (size_t i = 0; i < n && !status; i++) {
    status = mlx_vector_array_get(&item, outputs, i);
    arrays[i] = core_ctx(item); /* still referenced by the vector */
  }
  mlx_array_free(item);
  if (!status) status = core_eval(arrays, (int)n);
  free(arrays);
  return status;
}

int mlx_async_eval(const mlx_vector_array outputs) { return mlx_eval(outputs); }
