/* Bit-for-bit comparison helpers of the fused-op tests (a fused op against the ops it fuses): an
 * array's stored bytes, the first element whose bytes differ between two arrays, and one element
 * as float64 for the failure message. */
#ifndef MLXC_BITS_TEST_UTIL_H
#define MLXC_BITS_TEST_UTIL_H

#include <math.h>
#include <string.h>

#include "mlx/c/mlx.h"

/* a's stored values, row-major, evaluated; NULL for a dtype these tests do not read. */
static inline const void* bits_raw_data(mlx_array a) {
  mlx_array_eval(a);
  switch (mlx_array_dtype(a)) {
    case MLX_FLOAT32: return mlx_array_data_float32(a);
    case MLX_FLOAT16: return mlx_array_data_float16(a);
    case MLX_BFLOAT16: return mlx_array_data_bfloat16(a);
    case MLX_FLOAT64: return mlx_array_data_float64(a);
    case MLX_UINT32: return mlx_array_data_uint32(a);
    default: return NULL;
  }
}

/* The first element whose stored bytes differ between a and b, -1 when a and b are identical
 * (dtype, shape and bytes), -2 when they cannot be compared (dtype, shape or data). */
static inline long bits_first_difference(mlx_array a, mlx_array b) {
  if (!a.ctx || !b.ctx) return -2;
  if (mlx_array_dtype(a) != mlx_array_dtype(b) || mlx_array_ndim(a) != mlx_array_ndim(b)) return -2;
  for (size_t d = 0; d < mlx_array_ndim(a); d++)
    if (mlx_array_shape(a)[d] != mlx_array_shape(b)[d]) return -2;
  const char *pa = bits_raw_data(a), *pb = bits_raw_data(b);
  if (!pa || !pb) return -2;
  size_t n = mlx_array_size(a), item = mlx_array_itemsize(a);
  for (size_t i = 0; i < n; i++)
    if (memcmp(pa + i * item, pb + i * item, item) != 0) return (long)i;
  return -1;
}

/* Element i of a as float64, converted on stream s (NaN when unreadable). */
static inline double bits_value_at(mlx_array a, long i, mlx_stream s) {
  if (!a.ctx || i < 0) return NAN;
  mlx_array f = mlx_array_new();
  mlx_astype(&f, a, MLX_FLOAT64, s);
  const double* p = mlx_array_data_float64(f);
  double x = p && (size_t)i < mlx_array_size(f) ? p[i] : NAN;
  mlx_array_free(f);
  return x;
}

#endif
