/* Helpers of the elementwise op tests: build arrays of any dtype from double values, read any
 * result back as doubles (through astype), and compare against double-precision references. */
#ifndef MLXC_TEST_ELEMENTWISE_HELPERS_H
#define MLXC_TEST_ELEMENTWISE_HELPERS_H

#include <complex.h>
#include <stdint.h>

#include "mlx/c/mlx.h"
#include "mlxc/error.h"
#include "mlxc/half.h"
#include "test_util.h"

static mlx_stream cpu;

/* An array of `dtype` holding `values` (rounded/converted as a C cast would). */
static mlx_array make_array(const double* values, const int* shape, int ndim, mlx_dtype dtype) {
  size_t n = 1;
  for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
  void* buf = malloc(n * 8 + 8);
  for (size_t i = 0; i < n; i++) {
    double v = values[i];
    switch (dtype) {
      case MLX_BOOL: ((bool*)buf)[i] = v != 0; break;
      case MLX_UINT8: ((uint8_t*)buf)[i] = (uint8_t)(int64_t)v; break;
      case MLX_UINT16: ((uint16_t*)buf)[i] = (uint16_t)(int64_t)v; break;
      case MLX_UINT32: ((uint32_t*)buf)[i] = (uint32_t)(int64_t)v; break;
      case MLX_UINT64: ((uint64_t*)buf)[i] = (uint64_t)v; break;
      case MLX_INT8: ((int8_t*)buf)[i] = (int8_t)v; break;
      case MLX_INT16: ((int16_t*)buf)[i] = (int16_t)v; break;
      case MLX_INT32: ((int32_t*)buf)[i] = (int32_t)v; break;
      case MLX_INT64: ((int64_t*)buf)[i] = (int64_t)v; break;
      case MLX_FLOAT16: ((uint16_t*)buf)[i] = mlxc_float32_to_float16((float)v); break;
      case MLX_BFLOAT16: ((uint16_t*)buf)[i] = mlxc_float32_to_bfloat16((float)v); break;
      case MLX_FLOAT32: ((float*)buf)[i] = (float)v; break;
      case MLX_FLOAT64: ((double*)buf)[i] = v; break;
      case MLX_COMPLEX64: ((float _Complex*)buf)[i] = (float)v; break;
    }
  }
  mlx_array a = mlx_array_new_data(buf, shape, ndim, dtype);
  free(buf);
  return a;
}

static mlx_array make_1d(const double* values, int n, mlx_dtype dtype) {
  return make_array(values, &n, 1, dtype);
}

/* The value `v` becomes once stored as `dtype` (what a reference must start from). */
static double stored_value(double v, mlx_dtype dtype) {
  int one = 1;
  mlx_array a = make_array(&v, &one, 1, dtype), d = mlx_array_new();
  mlx_astype(&d, a, MLX_FLOAT64, cpu);
  double out = NAN;
  mlx_array_item_float64(&out, d);
  mlx_array_free(a);
  mlx_array_free(d);
  return out;
}

/* Reads `a` (any real dtype, any layout) as doubles into out[n]; returns 0 on success. */
static int read_doubles(mlx_array a, double* out, size_t n) {
  mlx_array d = mlx_array_new();
  if (mlx_astype(&d, a, MLX_FLOAT64, cpu)) return 1;
  const double* p = mlx_array_data_float64(d);
  int status = (!p || mlx_array_size(d) != n);
  if (!status) memcpy(out, p, n * sizeof(double));
  mlx_array_free(d);
  return status;
}

/* Reads an integer result exactly as int64. */
static int read_int64(mlx_array a, int64_t* out, size_t n) {
  mlx_array d = mlx_array_new();
  if (mlx_astype(&d, a, MLX_INT64, cpu)) return 1;
  const int64_t* p = mlx_array_data_int64(d);
  int status = (!p || mlx_array_size(d) != n);
  if (!status) memcpy(out, p, n * sizeof(int64_t));
  mlx_array_free(d);
  return status;
}

/* |got - want| within rel * |want| + abs_tol; NaN matches NaN, infinities match exactly. */
static int close_enough(double got, double want, double rel, double abs_tol) {
  if (isnan(want)) return isnan(got);
  if (isinf(want)) return got == want;
  return fabs(got - want) <= rel * fabs(want) + abs_tol;
}

/* Relative tolerance for results stored in `dtype` (a few units in the last place). */
static double dtype_tol(mlx_dtype dtype) {
  switch (dtype) {
    case MLX_FLOAT64: return 1e-13;
    case MLX_FLOAT16: return 2e-3;
    case MLX_BFLOAT16: return 1.6e-2;
    default: return 4e-6;
  }
}

static const mlx_dtype float_dtypes[] = {MLX_FLOAT32, MLX_FLOAT64, MLX_FLOAT16, MLX_BFLOAT16};
static const mlx_dtype int_dtypes[] = {MLX_UINT8, MLX_UINT16, MLX_UINT32, MLX_UINT64,
                                       MLX_INT8, MLX_INT16, MLX_INT32, MLX_INT64};

/* The last error message contains `part`. */
static int error_mentions(const char* part) {
  const char* e = mlxc_last_error();
  return e && strstr(e, part) != NULL;
}

#endif
