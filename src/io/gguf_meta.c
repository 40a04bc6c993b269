/* Typed reads of GGUF metadata (gguf_meta.h). */
#include "io/gguf_meta.h"

#include <stdlib.h>
#include <string.h>

#include "mlx/c/mlx.h"
#include "util/error.h"

static bool has_array(mlx_io_gguf g, const char* key) {
  bool flag = false;
  return mlx_io_gguf_has_metadata_array(&flag, g, key) == 0 && flag;
}

int gguf_meta_number(mlx_io_gguf g, const char* key, double* out) {
  if (!has_array(g, key)) return 2;
  mlx_array a = mlx_array_new();
  mlx_stream cpu = mlx_default_cpu_stream_new();
  int status = mlx_io_gguf_get_metadata_array(&a, g, key);
  if (!status && mlx_array_ndim(a) != 0) status = util_error("GGUF metadata %s: expected a number, found an array", key);
  if (!status) status = mlx_astype(&a, a, MLX_FLOAT64, cpu);
  if (!status) status = mlx_array_eval(a);
  if (!status) status = mlx_array_item_float64(out, a);
  mlx_array_free(a);
  mlx_stream_free(cpu);
  return status ? 1 : 0;
}

double gguf_meta_number_or(mlx_io_gguf g, const char* key, double fallback) {
  double v;
  return gguf_meta_number(g, key, &v) == 0 ? v : fallback;
}

char* gguf_meta_string(mlx_io_gguf g, const char* key) {
  bool flag = false;
  if (mlx_io_gguf_has_metadata_string(&flag, g, key) != 0 || !flag) return NULL;
  mlx_string s = mlx_string_new();
  char* copy = NULL;
  if (mlx_io_gguf_get_metadata_string(&s, g, key) == 0) copy = strdup(mlx_string_data(s));
  mlx_string_free(s);
  return copy;
}

int gguf_meta_vector(mlx_io_gguf g, const char* key, mlx_dtype dtype, mlx_array* out) {
  if (!has_array(g, key)) return 2;
  mlx_stream cpu = mlx_default_cpu_stream_new();
  int status = mlx_io_gguf_get_metadata_array(out, g, key);
  if (!status && mlx_array_ndim(*out) != 1) status = util_error("GGUF metadata %s: expected a 1-d array", key);
  if (!status) status = mlx_astype(out, *out, dtype, cpu);
  if (!status) status = mlx_array_eval(*out);
  mlx_stream_free(cpu);
  return status ? 1 : 0;
}
