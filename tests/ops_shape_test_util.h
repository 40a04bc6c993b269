/* Helpers of the shape, creation and indexing op tests: arrays from double data in any dtype,
 * row-major read-back as doubles, shape checks and error expectations. */
#ifndef MLXC_OPS_SHAPE_TEST_UTIL_H
#define MLXC_OPS_SHAPE_TEST_UTIL_H

#include <stdint.h>

#include "core/array.h"
#include "mlx/c/mlx.h"
#include "mlxc/error.h"
#include "test_util.h"

static mlx_stream cpu;

/* An array of dtype holding v (row-major, exact for the small integers tests use). */
static mlx_array make(const double* v, const int* shape, int ndim, mlx_dtype dtype) {
  mlx_array a = mlx_array_new_data(v, shape, ndim, MLX_FLOAT64), b = mlx_array_new();
  mlx_astype(&b, a, dtype, cpu);
  mlx_array_free(a);
  return b;
}

/* Values (i * 7) % 23 - 11 for i < n, or i % 2 for bool: distinct enough to catch misplacement. */
static void pattern(double* v, size_t n, mlx_dtype dtype) {
  for (size_t i = 0; i < n; i++) v[i] = dtype == MLX_BOOL ? (double)(i % 3 != 0) : (double)((i * 7) % 23) - 11;
  if (dtype == MLX_UINT8 || dtype == MLX_UINT32 || dtype == MLX_UINT64)
    for (size_t i = 0; i < n; i++) v[i] += 11;
}

static size_t shape_size(const int* shape, int ndim) {
  size_t n = 1;
  for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
  return n;
}

/* The row-major values of a as doubles into out (cap entries); returns the element count, or
 * (size_t)-1 when reading failed. */
static size_t values_of(mlx_array a, double* out, size_t cap) {
  mlx_array d = mlx_array_new();
  if (mlx_astype(&d, a, MLX_FLOAT64, cpu)) return (size_t)-1;
  const double* p = mlx_array_data_float64(d);
  size_t n = mlx_array_size(d);
  if (!p && n) n = (size_t)-1;
  else for (size_t i = 0; i < n && i < cap; i++) out[i] = p[i];
  mlx_array_free(d);
  return n;
}

static bool shape_is(mlx_array a, const int* shape, int ndim) {
  if ((int)mlx_array_ndim(a) != ndim) return false;
  for (int i = 0; i < ndim; i++)
    if (mlx_array_dim(a, i) != shape[i]) return false;
  return true;
}

/* Checks a's shape, dtype and row-major values against expected (n = product of shape). */
#define CHECK_ARRAY(a, dtype_, shape_, ndim_, expected)                                        \
  do {                                                                                         \
    CHECK_EQ_INT(mlx_array_dtype(a), dtype_);                                                  \
    CHECK(shape_is(a, shape_, ndim_));                                                         \
    size_t n_ = shape_size(shape_, ndim_);                                                     \
    double* got_ = malloc((n_ ? n_ : 1) * sizeof(double));                                     \
    CHECK_EQ_INT(values_of(a, got_, n_), n_);                                                  \
    int bad_ = 0;                                                                              \
    for (size_t i_ = 0; i_ < n_ && bad_ < 3; i_++)                                             \
      if (got_[i_] != (expected)[i_]) {                                                        \
        fprintf(stderr, "  element %zu: got %g, expected %g\n", i_, got_[i_], (expected)[i_]); \
        bad_++;                                                                                \
      }                                                                                        \
    CHECK(bad_ == 0);                                                                          \
    free(got_);                                                                                \
  } while (0)

/* The call must fail with a message containing `needle`. */
#define CHECK_FAILS(call, needle)                                                 \
  do {                                                                            \
    mlxc_clear_error();                                                           \
    CHECK((call) != 0);                                                           \
    CHECK_MSG(strstr(mlxc_last_error(), needle), "message: %s", mlxc_last_error()); \
  } while (0)

/* Whether a, once evaluated, is a view of b's buffer (no copy). */
static inline bool shares_data(mlx_array a, mlx_array b) {
  if (mlx_array_eval(a) || mlx_array_eval(b)) return false;
  return core_ctx(a)->buffer && core_ctx(a)->buffer == core_ctx(b)->buffer;
}

#endif
