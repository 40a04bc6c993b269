/* Helpers of the reduction, scan and sort tests: arrays of any dtype from double values, values
 * read back as doubles, deterministic random data and strided views. */
#ifndef MLXC_REDUCE_TEST_UTIL_H
#define MLXC_REDUCE_TEST_UTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "mlx/c/mlx.h"
#include "mlxc/error.h"
#include "mlxc/half.h"

static mlx_stream cpu;

/* An array of `dtype` holding v (converted as C does; bool is v != 0). */
static inline mlx_array arr_of(const double* v, const int* shape, int ndim, mlx_dtype dtype) {
  size_t n = 1;
  for (int d = 0; d < ndim; d++) n *= (size_t)shape[d];
  char* buf = malloc(n * 8 + 8);
  for (size_t i = 0; i < n; i++) {
    double x = v[i];
    switch (dtype) {
      case MLX_BOOL: ((bool*)buf)[i] = x != 0; break;
      case MLX_UINT8: ((uint8_t*)buf)[i] = (uint8_t)x; break;
      case MLX_UINT16: ((uint16_t*)buf)[i] = (uint16_t)x; break;
      case MLX_UINT32: ((uint32_t*)buf)[i] = (uint32_t)x; break;
      case MLX_UINT64: ((uint64_t*)buf)[i] = (uint64_t)x; break;
      case MLX_INT8: ((int8_t*)buf)[i] = (int8_t)x; break;
      case MLX_INT16: ((int16_t*)buf)[i] = (int16_t)x; break;
      case MLX_INT32: ((int32_t*)buf)[i] = (int32_t)x; break;
      case MLX_INT64: ((int64_t*)buf)[i] = (int64_t)x; break;
      case MLX_FLOAT16: ((float16_t*)buf)[i] = mlxc_float32_to_float16((float)x); break;
      case MLX_BFLOAT16: ((bfloat16_t*)buf)[i] = mlxc_float32_to_bfloat16((float)x); break;
      case MLX_FLOAT32: ((float*)buf)[i] = (float)x; break;
      case MLX_FLOAT64: ((double*)buf)[i] = x; break;
      default: break;
    }
  }
  mlx_array a = mlx_array_new_data(buf, shape, ndim, dtype);
  free(buf);
  return a;
}

/* Reads every element (row-major) as double; returns the element count, or -1. */
static inline long read_all(mlx_array a, double* out) {
  size_t n = mlx_array_size(a);
  if (mlx_array_eval(a)) return -1;
#define READ_AS(T, GET, CONV)                       \
  do {                                              \
    const T* p = GET(a);                            \
    if (!p && n) return -1;                         \
    for (size_t i = 0; i < n; i++) out[i] = CONV(p[i]); \
  } while (0)
#define PLAIN(x) ((double)(x))
  switch (mlx_array_dtype(a)) {
    case MLX_BOOL: READ_AS(bool, mlx_array_data_bool, PLAIN); break;
    case MLX_UINT8: READ_AS(uint8_t, mlx_array_data_uint8, PLAIN); break;
    case MLX_UINT16: READ_AS(uint16_t, mlx_array_data_uint16, PLAIN); break;
    case MLX_UINT32: READ_AS(uint32_t, mlx_array_data_uint32, PLAIN); break;
    case MLX_UINT64: READ_AS(uint64_t, mlx_array_data_uint64, PLAIN); break;
    case MLX_INT8: READ_AS(int8_t, mlx_array_data_int8, PLAIN); break;
    case MLX_INT16: READ_AS(int16_t, mlx_array_data_int16, PLAIN); break;
    case MLX_INT32: READ_AS(int32_t, mlx_array_data_int32, PLAIN); break;
    case MLX_INT64: READ_AS(int64_t, mlx_array_data_int64, PLAIN); break;
    case MLX_FLOAT16: READ_AS(float16_t, mlx_array_data_float16, mlxc_float16_to_float32); break;
    case MLX_BFLOAT16: READ_AS(bfloat16_t, mlx_array_data_bfloat16, mlxc_bfloat16_to_float32); break;
    case MLX_FLOAT32: READ_AS(float, mlx_array_data_float32, PLAIN); break;
    case MLX_FLOAT64: READ_AS(double, mlx_array_data_float64, PLAIN); break;
    default: return -1;
  }
#undef READ_AS
#undef PLAIN
  return (long)n;
}

/* Deterministic pseudo-random doubles in [lo, hi). */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static inline double rand_uniform(double lo, double hi) {
  rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
  return lo + (hi - lo) * (double)(rng_state >> 11) / 9007199254740992.0;
}
static inline void fill_uniform(double* v, size_t n, double lo, double hi) {
  for (size_t i = 0; i < n; i++) v[i] = rand_uniform(lo, hi);
}
/* Small integers, so every dtype (and float16) holds them exactly. */
static inline void fill_small_ints(double* v, size_t n, int lo, int hi) {
  for (size_t i = 0; i < n; i++) v[i] = lo + (int)rand_uniform(0, hi - lo + 1);
}

/* Unravels flat row-major index i of shape into idx. */
static inline void unravel(long i, const int* shape, int ndim, int* idx) {
  for (int d = ndim - 1; d >= 0; d--) {
    idx[d] = (int)(i % shape[d]);
    i /= shape[d];
  }
}

/* Groups the values of a row-major array by the kept dims (mask[d] false): group g (row-major
 * over kept dims) gets its values in row-major order of the reduced dims, at grouped[g * R + r].
 * Returns R; *groups receives G. */
static inline long group_values(const double* x, const int* shape, int ndim, const bool* mask, double* grouped,
                         long* groups) {
  long G = 1, R = 1, n = 1;
  for (int d = 0; d < ndim; d++) {
    n *= shape[d];
    if (mask[d]) R *= shape[d];
    else G *= shape[d];
  }
  int idx[32];
  for (long i = 0; i < n; i++) {
    unravel(i, shape, ndim, idx);
    long g = 0, r = 0;
    for (int d = 0; d < ndim; d++) {
      if (mask[d]) r = r * shape[d] + idx[d];
      else g = g * shape[d] + idx[d];
    }
    grouped[g * R + r] = x[i];
  }
  *groups = G;
  return R;
}

#endif
