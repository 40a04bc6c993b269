/* GPU reductions over any set of axes, softmax over any axes and scans along any axis against
 * the CPU kernels: the same op built on the CPU and GPU streams from the same host inputs (fresh
 * random values each run; the seed is printed), compared in dtype, shape and values (integer
 * results exactly, floating point within the rounding of a different summation order). Every
 * case also checks that the GPU computed it (a missing kernel would pass through the CPU
 * fallback). Covers every real dtype, contiguous, transposed and stepped inputs, every axis set
 * with and without keepdims, groups of every team size, empty axes, NaN and infinities, integer
 * wrap and uint64 beyond 2^63. Skips (passing) when no CUDA GPU is present. */
#include <math.h>
#include <stdint.h>
#include <time.h>

#include "core/array.h"
#include "mlx/c/mlx.h"
#include "mlxc/error.h"
#include "test_util.h"

#include "cuda_test_util.h"

static const mlx_dtype all_types[] = {MLX_BOOL,  MLX_UINT8, MLX_UINT16,  MLX_UINT32,  MLX_UINT64,
                                      MLX_INT8,  MLX_INT16, MLX_INT32,   MLX_INT64,   MLX_FLOAT16,
                                      MLX_BFLOAT16, MLX_FLOAT32, MLX_FLOAT64};
#define N_TYPES (sizeof all_types / sizeof all_types[0])

static const char* dname(mlx_dtype d) {
  switch (d) {
    case MLX_BOOL: return "bool";
    case MLX_UINT8: return "u8";
    case MLX_UINT16: return "u16";
    case MLX_UINT32: return "u32";
    case MLX_UINT64: return "u64";
    case MLX_INT8: return "i8";
    case MLX_INT16: return "i16";
    case MLX_INT32: return "i32";
    case MLX_INT64: return "i64";
    case MLX_FLOAT16: return "f16";
    case MLX_BFLOAT16: return "bf16";
    case MLX_FLOAT32: return "f32";
    case MLX_FLOAT64: return "f64";
    default: return "?";
  }
}

static bool is_float(mlx_dtype d) {
  return d == MLX_FLOAT16 || d == MLX_BFLOAT16 || d == MLX_FLOAT32 || d == MLX_FLOAT64;
}

/* Random values of `dtype` in [lo, hi) (integers floored); float64 gets fractional values too. */
static mlx_array input(const int* shape, int nd, mlx_dtype dtype, double lo, double hi) {
  if (dtype != MLX_FLOAT64) return rand_array(shape, nd, dtype, lo, hi);
  mlx_array f = rand_array(shape, nd, MLX_FLOAT32, lo, hi), out = mlx_array_new();
  mlx_astype(&out, f, MLX_FLOAT64, cpu);
  mlx_array_eval(out);
  mlx_array_free(f);
  return out;
}

/* A value range that suits the dtype (and keeps products of floats finite). */
static void value_range(mlx_dtype d, bool product, double* lo, double* hi) {
  if (d == MLX_BOOL) *lo = 0, *hi = 2;
  else if (is_float(d)) *lo = product ? 0.7 : -2, *hi = product ? 1.4 : 3;
  else if (d == MLX_UINT8 || d == MLX_UINT16 || d == MLX_UINT32 || d == MLX_UINT64) *lo = 0, *hi = product ? 5 : 100;
  else *lo = product ? -4 : -50, *hi = product ? 5 : 50;
}

/* Tolerances of a result of dtype d: both sides accumulate in double (the CPU's dense float32
 * sums add 256-value blocks in float32 lanes) and round once, so floating-point results differ
 * by the rounding of another summation order at most; integers are exact. */
static void tolerance(mlx_dtype d, double* rtol, double* atol) {
  switch (d) {
    case MLX_FLOAT32: *rtol = 1e-5, *atol = 1e-6; break;
    case MLX_FLOAT16: *rtol = 1.0 / 1024, *atol = 1e-6; break;
    case MLX_BFLOAT16: *rtol = 1.0 / 128, *atol = 1e-6; break;
    case MLX_FLOAT64: *rtol = 1e-12, *atol = 1e-12; break;
    default: *rtol = 0, *atol = 0; break;
  }
}

/* Builds `op` on `stream` into g or c and checks the GPU result against the CPU's. The macro
 * takes the call with `S` for the stream and `R` for the result. */
#define CHECK_ON_BOTH(what, CALL)                                                            \
  do {                                                                                       \
    mlx_array g_ = mlx_array_new(), c_ = mlx_array_new();                                    \
    {                                                                                        \
      mlx_array* R = &g_;                                                                    \
      mlx_stream S = gpu;                                                                    \
      CHECK_MSG((CALL) == 0, "%s: %s", what, mlxc_last_error());                             \
    }                                                                                        \
    CHECK_MSG(made_on_gpu(g_), "%s: not computed on the GPU", what);                         \
    {                                                                                        \
      mlx_array* R = &c_;                                                                    \
      mlx_stream S = cpu;                                                                    \
      CHECK_MSG((CALL) == 0, "%s (cpu): %s", what, mlxc_last_error());                       \
    }                                                                                        \
    double rtol_, atol_;                                                                     \
    tolerance(mlx_array_dtype(c_), &rtol_, &atol_);                                          \
    compare(what, g_, c_, rtol_, atol_, 0);                                                  \
    mlx_array_free(g_);                                                                      \
    mlx_array_free(c_);                                                                      \
  } while (0)

/* ---- reductions ---- */

typedef enum { R_SUM, R_PROD, R_MAX, R_MIN, R_MEAN, R_LOGSUMEXP, R_ALL, R_ANY, R_VAR, R_STD, R_ARGMAX, R_ARGMIN, R_COUNT } reduction;
static const char* reduction_names[R_COUNT] = {"sum", "prod", "max", "min", "mean", "logsumexp",
                                               "all", "any", "var", "std", "argmax", "argmin"};

/* Reduction r of x over axes (argmax and argmin: axes[0]); ddof for var and std. */
static int reduce(reduction r, mlx_array* res, mlx_array x, const int* axes, size_t n, bool keepdims, int ddof,
                  mlx_stream s) {
  switch (r) {
    case R_SUM: return mlx_sum_axes(res, x, axes, n, keepdims, s);
    case R_PROD: return mlx_prod_axes(res, x, axes, n, keepdims, s);
    case R_MAX: return mlx_max_axes(res, x, axes, n, keepdims, s);
    case R_MIN: return mlx_min_axes(res, x, axes, n, keepdims, s);
    case R_MEAN: return mlx_mean_axes(res, x, axes, n, keepdims, s);
    case R_LOGSUMEXP: return mlx_logsumexp_axes(res, x, axes, n, keepdims, s);
    case R_ALL: return mlx_all_axes(res, x, axes, n, keepdims, s);
    case R_ANY: return mlx_any_axes(res, x, axes, n, keepdims, s);
    case R_VAR: return mlx_var_axes(res, x, axes, n, keepdims, ddof, s);
    case R_STD: return mlx_std_axes(res, x, axes, n, keepdims, ddof, s);
    case R_ARGMAX: return mlx_argmax_axis(res, x, axes[0], keepdims, s);
    default: return mlx_argmin_axis(res, x, axes[0], keepdims, s);
  }
}

static void check_reduction(const char* layout, reduction r, mlx_array x, const int* axes, size_t n, bool keepdims,
                            int ddof) {
  char list[32] = "", what[160];
  for (size_t i = 0; i < n; i++)
    snprintf(list + strlen(list), sizeof list - strlen(list), "%s%d", i ? "," : "", axes[i]);
  snprintf(what, sizeof what, "%s %s %s axes [%s] keepdims=%d ddof=%d", reduction_names[r],
           dname(mlx_array_dtype(x)), layout, list, keepdims, ddof);
  CHECK_ON_BOTH(what, reduce(r, R, x, axes, n, keepdims, ddof, S));
}

/* The same (4, 5, 6) values three ways: contiguous, a transposed (6, 4, 5) array and every
 * other element of a (8, 5, 13) array. */
static void layouts(mlx_dtype dt, double lo, double hi, mlx_array out[3]) {
  int s0[3] = {4, 5, 6}, s1[3] = {6, 4, 5}, s2[3] = {8, 5, 13};
  out[0] = input(s0, 3, dt, lo, hi);
  mlx_array t = input(s1, 3, dt, lo, hi), sl = input(s2, 3, dt, lo, hi);
  int perm[3] = {1, 2, 0}, start[3] = {0, 0, 1}, stop[3] = {8, 5, 13}, step[3] = {2, 1, 2};
  out[1] = mlx_array_new();
  out[2] = mlx_array_new();
  mlx_transpose_axes(&out[1], t, perm, 3, cpu);
  mlx_slice(&out[2], sl, start, 3, stop, 3, step, 3, cpu);
  mlx_array_free(t);
  mlx_array_free(sl);
}

TEST(reductions_every_dtype_axes_and_layout) {
  static const char* layout_names[3] = {"contiguous", "transposed", "stepped"};
  static const int axis_sets[][3] = {{0}, {1}, {2}, {0, 1}, {0, 2}, {1, 2}, {0, 1, 2}, {2, 0}, {-1, 1}, {0}};
  static const size_t axis_counts[] = {1, 1, 1, 2, 2, 2, 3, 2, 2, 0};
  for (size_t t = 0; t < N_TYPES; t++) {
    mlx_dtype dt = all_types[t];
    for (int product = 0; product < 2; product++) {
      double lo, hi;
      value_range(dt, product, &lo, &hi);
      mlx_array xs[3];
      layouts(dt, lo, hi, xs);
      for (int l = 0; l < 3; l++)
        for (size_t a = 0; a < sizeof axis_counts / sizeof axis_counts[0]; a++)
          for (int r = 0; r < R_COUNT; r++) {
            if ((r == R_PROD) != product) continue;
            bool arg = r == R_ARGMAX || r == R_ARGMIN;
            if (arg && axis_counts[a] != 1) continue;
            bool keepdims = (a + (size_t)r) % 2;
            int ddof = (r == R_VAR || r == R_STD) ? (int)(a % 3) : 0;
            check_reduction(layout_names[l], (reduction)r, xs[l], axis_sets[a], axis_counts[a], keepdims, ddof);
          }
      for (int l = 0; l < 3; l++) mlx_array_free(xs[l]);
    }
  }
}

/* Groups of 3 (a thread each), a few hundred (a warp each), tens of thousands (a block each,
 * few groups) and over 65536 (chunks of a group over several blocks), over leading, trailing and
 * all axes. */
TEST(reductions_every_team_size) {
  const mlx_dtype types[] = {MLX_FLOAT32, MLX_BFLOAT16, MLX_INT32, MLX_UINT64};
  const int shapes[][2] = {{3, 20000}, {20000, 3}, {300, 200}, {64, 500}, {2, 100000}, {70000, 2}, {400, 600}};
  const size_t n_shapes = sizeof shapes / sizeof shapes[0];
  for (size_t t = 0; t < 4; t++)
    for (size_t s = 0; s < n_shapes; s++)
      for (int r = 0; r < R_COUNT; r++) {
        double lo, hi;
        value_range(types[t], r == R_PROD, &lo, &hi);
        if (r == R_PROD && is_float(types[t])) lo = 0.97, hi = 1.03;
        mlx_array x = input(shapes[s], 2, types[t], lo, hi);
        char layout[32];
        snprintf(layout, sizeof layout, "(%d, %d)", shapes[s][0], shapes[s][1]);
        const int axes0[1] = {0}, axes1[1] = {1}, both[2] = {0, 1};
        check_reduction(layout, (reduction)r, x, axes0, 1, false, 1);
        check_reduction(layout, (reduction)r, x, axes1, 1, true, 0);
        if (r != R_ARGMAX && r != R_ARGMIN) check_reduction(layout, (reduction)r, x, both, 2, false, 0);
        mlx_array_free(x);
      }
}

/* MLX's rules: max/min propagate NaN, argmax/argmin take the first NaN, any/all count NaN as
 * true, sums and logsumexp turn NaN; infinities in logsumexp; ties keep the first index. */
TEST(reductions_nan_inf_and_ties) {
  float v[4][6] = {
      {1, NAN, 3, NAN, -1, 2},
      {INFINITY, 2, 5, -INFINITY, 5, 0},
      {-INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY},
      {7, 7, -2, 7, 0, -2},
  };
  int shape[2] = {4, 6};
  mlx_array x = mlx_array_new_data(v, shape, 2, MLX_FLOAT32), xt = mlx_array_new();
  int perm[2] = {1, 0};
  mlx_transpose_axes(&xt, x, perm, 2, cpu); /* (6, 4): the rows become columns */
  for (int r = 0; r < R_COUNT; r++) {
    const int axis0[1] = {0}, axis1[1] = {1}, both[2] = {0, 1};
    check_reduction("nan/inf rows", (reduction)r, x, axis1, 1, false, 0);
    check_reduction("nan/inf columns", (reduction)r, xt, axis0, 1, false, 0);
    check_reduction("nan/inf columns", (reduction)r, xt, axis1, 1, true, 0);
    if (r != R_ARGMAX && r != R_ARGMIN) check_reduction("nan/inf", (reduction)r, x, both, 2, false, 0);
  }
  /* Hand-checked: argmax of the columns view over axis 0 is the first NaN of row 0 (index 1),
   * argmin of row 3 is its first -2 (index 2). */
  mlx_array g = mlx_array_new();
  CHECK(mlx_argmax_axis(&g, xt, 0, false, gpu) == 0);
  CHECK(made_on_gpu(g));
  const uint32_t* p = mlx_array_data_uint32(g);
  CHECK(p && p[0] == 1 && p[1] == 0 && p[2] == 0 && p[3] == 0);
  CHECK(mlx_argmin_axis(&g, x, 1, false, gpu) == 0);
  p = mlx_array_data_uint32(g);
  CHECK(p && p[3] == 2 && p[1] == 3);
  mlx_array_free(g);
  mlx_array_free(x);
  mlx_array_free(xt);
}

/* Reducing an axis of length 0 gives the identities (sum 0, prod 1, all true, any false) and
 * NaN for mean, var and std; an empty kept dim gives an empty output. */
TEST(reductions_over_empty_axes) {
  const mlx_dtype types[] = {MLX_FLOAT32, MLX_INT32, MLX_BOOL, MLX_FLOAT16};
  const reduction rs[] = {R_SUM, R_PROD, R_ALL, R_ANY, R_MEAN, R_VAR, R_STD};
  int shape[3] = {3, 0, 4};
  for (size_t t = 0; t < 4; t++) {
    mlx_array x = input(shape, 3, types[t], 0, 2);
    for (size_t r = 0; r < sizeof rs / sizeof rs[0]; r++) {
      const int axis1[1] = {1}, axes01[2] = {0, 1}, axis2[1] = {2};
      check_reduction("empty", rs[r], x, axis1, 1, false, 0);
      check_reduction("empty", rs[r], x, axes01, 2, true, 0);
      check_reduction("empty output", rs[r], x, axis2, 1, false, 0);
    }
    mlx_array_free(x);
  }
  /* Hand-checked identities. */
  mlx_array x = input(shape, 3, MLX_FLOAT32, 0, 1), g = mlx_array_new();
  CHECK(mlx_prod_axis(&g, x, 1, false, gpu) == 0);
  CHECK(made_on_gpu(g));
  const float* p = mlx_array_data_float32(g);
  CHECK(p && p[0] == 1.0f && p[11] == 1.0f);
  CHECK(mlx_mean_axis(&g, x, 1, false, gpu) == 0);
  p = mlx_array_data_float32(g);
  CHECK(p && isnan(p[0]));
  mlx_array_free(g);
  mlx_array_free(x);
}

/* Integer sums and products wrap in the output's width; uint64 values beyond 2^63 order as
 * unsigned in max, min, argmax and argmin. */
TEST(reductions_integer_wrap_and_uint64_order) {
  int shape[2] = {7, 10};
  mlx_array big = input(shape, 2, MLX_INT32, 1 << 29, 1 << 30);
  const int axis0[1] = {0}, axis1[1] = {1}, both[2] = {0, 1};
  check_reduction("wrapping", R_SUM, big, both, 2, false, 0);
  check_reduction("wrapping", R_PROD, big, axis0, 1, false, 0);
  mlx_array i8 = input(shape, 2, MLX_INT8, -128, 128);
  check_reduction("int8 range", R_PROD, i8, axis1, 1, false, 0);
  check_reduction("int8 range", R_SUM, i8, both, 2, false, 0);
  mlx_array u64 = input(shape, 2, MLX_UINT64, 0, 1.8e19);
  for (int r = R_MAX; r <= R_MIN; r++) {
    check_reduction("beyond 2^63", (reduction)r, u64, axis0, 1, false, 0);
    check_reduction("beyond 2^63", (reduction)r, u64, both, 2, false, 0);
  }
  check_reduction("beyond 2^63", R_ARGMAX, u64, axis0, 1, false, 0);
  check_reduction("beyond 2^63", R_ARGMIN, u64, axis1, 1, false, 0);
  check_reduction("beyond 2^63", R_SUM, u64, axis1, 1, false, 0);
  mlx_array arrays[] = {big, i8, u64};
  for (size_t i = 0; i < 3; i++) mlx_array_free(arrays[i]);
}

/* ---- softmax over other axes ---- */

TEST(softmax_over_any_axes) {
  const mlx_dtype types[] = {MLX_FLOAT32, MLX_FLOAT16, MLX_BFLOAT16, MLX_FLOAT64, MLX_INT32};
  static const int axis_sets[][3] = {{0}, {1}, {2}, {0, 2}, {0, 1, 2}};
  static const size_t axis_counts[] = {1, 1, 1, 2, 3};
  for (size_t t = 0; t < 5; t++) {
    mlx_array xs[3];
    layouts(types[t], -4, 4, xs);
    for (int l = 0; l < 3; l++)
      for (size_t a = 0; a < 5; a++) {
        /* float32/16 over the last axis alone take the row kernel; the rest the general one. */
        if (is_float(types[t]) && types[t] != MLX_FLOAT64 && a == 2) continue;
        char what[96];
        snprintf(what, sizeof what, "softmax %s layout %d axis set %zu", dname(types[t]), l, a);
        CHECK_ON_BOTH(what, mlx_softmax_axes(R, xs[l], axis_sets[a], axis_counts[a], false, S));
      }
    for (int l = 0; l < 3; l++) mlx_array_free(xs[l]);
  }
  float v[2][3] = {{1, NAN, 2}, {-INFINITY, -INFINITY, 3}};
  int shape[2] = {2, 3};
  mlx_array x = mlx_array_new_data(v, shape, 2, MLX_FLOAT32);
  CHECK_ON_BOTH("softmax NaN and -inf columns", mlx_softmax_axis(R, x, 0, false, S));
  mlx_array_free(x);
}

/* ---- scans ---- */

typedef enum { S_CUMSUM, S_CUMPROD, S_CUMMAX, S_CUMMIN, S_LOGCUMSUMEXP, S_COUNT } scan;
static const char* scan_names[S_COUNT] = {"cumsum", "cumprod", "cummax", "cummin", "logcumsumexp"};

static int scan_op(scan k, mlx_array* res, mlx_array x, int axis, bool reverse, bool inclusive, mlx_stream s) {
  switch (k) {
    case S_CUMSUM: return mlx_cumsum(res, x, axis, reverse, inclusive, s);
    case S_CUMPROD: return mlx_cumprod(res, x, axis, reverse, inclusive, s);
    case S_CUMMAX: return mlx_cummax(res, x, axis, reverse, inclusive, s);
    case S_CUMMIN: return mlx_cummin(res, x, axis, reverse, inclusive, s);
    default: return mlx_logcumsumexp(res, x, axis, reverse, inclusive, s);
  }
}

static void check_scan(const char* layout, scan k, mlx_array x, int axis) {
  for (int variant = 0; variant < 4; variant++) {
    bool reverse = variant & 1, inclusive = !(variant & 2);
    char what[128];
    snprintf(what, sizeof what, "%s %s %s axis %d reverse=%d inclusive=%d", scan_names[k], dname(mlx_array_dtype(x)),
             layout, axis, reverse, inclusive);
    CHECK_ON_BOTH(what, scan_op(k, R, x, axis, reverse, inclusive, S));
  }
}

/* Lines of 4 to 6 (a thread each) in every dtype and layout; cumsum of bool gives int32,
 * logcumsumexp of integers float32. */
TEST(scans_every_dtype_axis_and_layout) {
  static const char* layout_names[3] = {"contiguous", "transposed", "stepped"};
  for (size_t t = 0; t < N_TYPES; t++)
    for (int product = 0; product < 2; product++) {
      double lo, hi;
      value_range(all_types[t], product, &lo, &hi);
      mlx_array xs[3];
      layouts(all_types[t], lo, hi, xs);
      for (int l = 0; l < 3; l++)
        for (int axis = -1; axis < 3; axis++)
          for (int k = 0; k < S_COUNT; k++)
            if ((k == S_CUMPROD) == product) check_scan(layout_names[l], (scan)k, xs[l], axis);
      for (int l = 0; l < 3; l++) mlx_array_free(xs[l]);
    }
}

/* Lines of 5000 (a warp each, in chunks of 32) along either axis, lines of 40000 (chunks of a
 * line over several warps), and an axis of length 1. */
TEST(scans_long_lines) {
  const mlx_dtype types[] = {MLX_FLOAT32, MLX_FLOAT16, MLX_INT32, MLX_UINT64, MLX_INT8, MLX_BOOL};
  for (size_t t = 0; t < sizeof types / sizeof types[0]; t++)
    for (int k = 0; k < S_COUNT; k++) {
      double lo, hi;
      value_range(types[t], k == S_CUMPROD, &lo, &hi);
      if (k == S_CUMPROD && is_float(types[t])) lo = 0.99, hi = 1.01;
      int s[2] = {3, 5000}, st[2] = {5000, 3}, one[2] = {7, 1};
      mlx_array rows = input(s, 2, types[t], lo, hi), cols0 = input(st, 2, types[t], lo, hi);
      mlx_array cols = mlx_array_new(), single = input(one, 2, types[t], lo, hi);
      int perm[2] = {1, 0};
      mlx_transpose_axes(&cols, cols0, perm, 2, cpu);
      check_scan("(3, 5000)", (scan)k, rows, 1);
      check_scan("(3, 5000) transposed", (scan)k, cols, 1);
      check_scan("(5000, 3)", (scan)k, cols0, 0);
      check_scan("(7, 1)", (scan)k, single, 1);
      int sl[2] = {2, 40000}, slt[2] = {40000, 2};
      mlx_array long_rows = input(sl, 2, types[t], lo, hi), long_cols = input(slt, 2, types[t], lo, hi);
      check_scan("(2, 40000)", (scan)k, long_rows, 1);
      check_scan("(40000, 2)", (scan)k, long_cols, 0);
      mlx_array arrays[] = {rows, cols0, cols, single, long_rows, long_cols};
      for (size_t i = 0; i < 6; i++) mlx_array_free(arrays[i]);
    }
}

/* NaN sticks in cummax/cummin and spreads in cumsum; infinities in logcumsumexp; integer
 * wrap; exclusive max/min scans start from the dtype's lowest/highest value (hand-checked). */
TEST(scans_nan_inf_wrap_and_identities) {
  float v[2][5] = {{1, NAN, 3, -2, 5}, {-INFINITY, 2, INFINITY, -INFINITY, 1}};
  int shape[2] = {2, 5};
  mlx_array x = mlx_array_new_data(v, shape, 2, MLX_FLOAT32);
  for (int k = 0; k < S_COUNT; k++) {
    check_scan("nan/inf", (scan)k, x, 1);
    check_scan("nan/inf", (scan)k, x, 0);
  }
  int s[2] = {4, 40};
  mlx_array big = input(s, 2, MLX_INT32, 1 << 29, 1 << 30), i8 = input(s, 2, MLX_INT8, -128, 128);
  mlx_array u64 = input(s, 2, MLX_UINT64, 0, 1.8e19);
  for (int k = 0; k < S_LOGCUMSUMEXP; k++) {
    check_scan("wrapping", (scan)k, big, 1);
    check_scan("int8 range", (scan)k, i8, 0);
    check_scan("beyond 2^63", (scan)k, u64, 1);
  }
  int8_t w[3] = {5, -3, 7};
  int ws[1] = {3};
  mlx_array a = mlx_array_new_data(w, ws, 1, MLX_INT8), g = mlx_array_new();
  CHECK(mlx_cummax(&g, a, 0, false, false, gpu) == 0);
  CHECK(made_on_gpu(g));
  const int8_t* p = mlx_array_data_int8(g);
  CHECK(p && p[0] == -128 && p[1] == 5 && p[2] == 5);
  CHECK(mlx_cummin(&g, a, 0, true, false, gpu) == 0);
  p = mlx_array_data_int8(g);
  CHECK(p && p[2] == 127 && p[1] == 7 && p[0] == -3);
  mlx_array arrays[] = {x, big, i8, u64, a, g};
  for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) mlx_array_free(arrays[i]);
}

/* median over any axes, every real dtype and the three layouts, against the CPU exactly (both
 * sort the values as doubles and average the two middle ones in double): odd and even group
 * sizes (5, 6, 4·6...), NaN placed last, ties from small integer ranges; a group over 4096
 * values still runs (on the CPU: the GPU kernel sorts a group in shared memory). */
TEST(median_any_axes) {
  static const char* layout_names[3] = {"contiguous", "transposed", "stepped"};
  static const int axis_sets[][3] = {{0}, {1}, {2}, {0, 2}, {0, 1, 2}, {-1, 1}};
  static const size_t axis_counts[] = {1, 1, 1, 2, 3, 2};
  for (size_t t = 0; t < N_TYPES; t++) {
    mlx_dtype dt = all_types[t];
    double lo, hi;
    value_range(dt, false, &lo, &hi);
    mlx_array xs[3];
    layouts(dt, lo, hi, xs);
    for (int l = 0; l < 3; l++)
      for (size_t a = 0; a < sizeof axis_counts / sizeof axis_counts[0]; a++) {
        char what[128];
        bool keepdims = a % 2;
        snprintf(what, sizeof what, "median %s %s axis set %zu keepdims=%d", dname(dt), layout_names[l], a, keepdims);
        CHECK_ON_BOTH(what, mlx_median(R, xs[l], axis_sets[a], axis_counts[a], keepdims, S));
      }
    for (int l = 0; l < 3; l++) mlx_array_free(xs[l]);
  }
  /* NaN sorts after every number: one NaN in a group of 6 moves the middle pair. */
  float v[12] = {3, NAN, 1, 2, 5, 4, 7, 7, 7, -1, 0, NAN};
  int shape[2] = {2, 6}, axis = 1;
  mlx_array x = mlx_array_new_data(v, shape, 2, MLX_FLOAT32);
  CHECK_ON_BOTH("median with NaN", mlx_median(R, x, &axis, 1, false, S));
  mlx_array g = mlx_array_new();
  CHECK(mlx_median(&g, x, &axis, 1, false, gpu) == 0);
  const float* p = mlx_array_data_float32(g);
  CHECK(p && p[0] == 3.5f && p[1] == 7.0f); /* (1 2 3 4 5 NaN): (3 + 4) / 2; (-1 0 7 7 7 NaN): 7 */
  /* Beyond a block's shared memory: the CPU's kernel (same values). */
  int big[1] = {5000}, axis0 = 0;
  mlx_array b = rand_array(big, 1, MLX_FLOAT32, -1, 1), gb = mlx_array_new(), cb = mlx_array_new();
  CHECK(mlx_median(&gb, b, &axis0, 1, false, gpu) == 0 && mlx_median(&cb, b, &axis0, 1, false, cpu) == 0);
  compare("median of 5000 values", gb, cb, 0, 0, 0);
  mlx_array arrays[] = {x, g, b, gb, cb};
  for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) mlx_array_free(arrays[i]);
}

/* array_equal's and allclose's reduction to one bool (all_true) on the GPU, against the CPU
 * stream: equal and unequal (one element, the last), transposed views, NaN with and without
 * equal_nan, tolerances just inside and outside, an empty array and a 0-d one. */
static bool gpu_bool(mlx_array r, const char* what) {
  bool v = false;
  CHECK_MSG(made_on_gpu(r), "%s: not computed on the GPU", what);
  CHECK(mlx_array_item_bool(&v, r) == 0);
  return v;
}

TEST(array_equal_and_allclose) {
  float v[64 * 33];
  for (int i = 0; i < 64 * 33; i++) v[i] = (float)(i % 97) * 0.25f - 7.0f;
  int shape[2] = {64, 33};
  mlx_array x = mlx_array_new_data(v, shape, 2, MLX_FLOAT32), y = mlx_array_new_data(v, shape, 2, MLX_FLOAT32);
  v[64 * 33 - 1] += 1.0f;
  mlx_array z = mlx_array_new_data(v, shape, 2, MLX_FLOAT32);
  v[64 * 33 - 1] -= 1.0f;
  v[5] = NAN;
  mlx_array xn = mlx_array_new_data(v, shape, 2, MLX_FLOAT32);
  v[5] = 5 * 0.25f - 7.0f;
  for (int i = 0; i < 64 * 33; i++) v[i] += 1e-6f * (float)(i % 3);
  mlx_array xc = mlx_array_new_data(v, shape, 2, MLX_FLOAT32);
  mlx_array xt = mlx_array_new(), yt = mlx_array_new(), zt = mlx_array_new(), r = mlx_array_new(), c = mlx_array_new();
  mlx_transpose(&xt, x, gpu);
  mlx_transpose(&yt, y, gpu);
  mlx_transpose(&zt, z, gpu);
  bool cv = false;
  CHECK(mlx_array_equal(&r, x, y, false, gpu) == 0 && gpu_bool(r, "equal"));
  CHECK(mlx_array_equal(&r, x, z, false, gpu) == 0 && !gpu_bool(r, "last element differs"));
  CHECK(mlx_array_equal(&r, xt, yt, false, gpu) == 0 && gpu_bool(r, "transposed, equal"));
  CHECK(mlx_array_equal(&r, xt, zt, false, gpu) == 0 && !gpu_bool(r, "transposed, differs"));
  CHECK(mlx_array_equal(&r, xn, xn, false, gpu) == 0 && !gpu_bool(r, "NaN, equal_nan false"));
  CHECK(mlx_array_equal(&r, xn, xn, true, gpu) == 0 && gpu_bool(r, "NaN, equal_nan true"));
  CHECK(mlx_allclose(&r, x, xc, 1e-5, 1e-5, false, gpu) == 0 && gpu_bool(r, "allclose inside"));
  CHECK(mlx_allclose(&r, x, xc, 0.0, 1e-7, false, gpu) == 0 && !gpu_bool(r, "allclose outside"));
  CHECK(mlx_allclose(&c, x, xc, 0.0, 1e-7, false, cpu) == 0 && mlx_array_item_bool(&cv, c) == 0 && !cv);
  int empty_shape[2] = {0, 3};
  mlx_array e = mlx_array_new_data(v, empty_shape, 2, MLX_FLOAT32);
  CHECK(mlx_array_equal(&r, e, e, false, gpu) == 0 && gpu_bool(r, "empty"));
  mlx_array s0 = mlx_array_new_float(2.5f), s1 = mlx_array_new_float(2.5f), s2 = mlx_array_new_float(3.0f);
  CHECK(mlx_array_equal(&r, s0, s1, false, gpu) == 0 && gpu_bool(r, "0-d equal"));
  CHECK(mlx_array_equal(&r, s0, s2, false, gpu) == 0 && !gpu_bool(r, "0-d differs"));
  mlx_array arrays[] = {x, y, z, xn, xc, xt, yt, zt, r, c, e, s0, s1, s2};
  for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) mlx_array_free(arrays[i]);
}

/* Without a GPU the reductions and scans still run (on the CPU) on the default stream. */
TEST(cpu_only_reductions_still_work) {
  float v[4] = {1, 2, 3, 4};
  int shape[2] = {2, 2};
  mlx_array x = mlx_array_new_data(v, shape, 2, MLX_FLOAT32), r = mlx_array_new();
  mlx_stream s = mlx_default_cpu_stream_new();
  CHECK(mlx_sum_axis(&r, x, 0, false, s) == 0);
  const float* p = mlx_array_data_float32(r);
  CHECK(p && p[0] == 4 && p[1] == 6);
  mlx_array_free(r);
  mlx_array_free(x);
  mlx_stream_free(s);
}

int main(void) {
  int count = 0;
  mlx_device_count(&count, MLX_GPU);
  if (count == 0) {
    printf("SKIP: no CUDA GPU (test_cuda_reduce needs one)\n");
    RUN(cpu_only_reductions_still_work);
    return TEST_SUMMARY();
  }
  rng_state = (uint64_t)time(NULL) ^ 0x9e3779b97f4a7c15ull;
  printf("seed %llu\n", (unsigned long long)rng_state);
  cpu = mlx_default_cpu_stream_new();
  gpu = mlx_default_gpu_stream_new();
  RUN(reductions_every_dtype_axes_and_layout);
  RUN(reductions_every_team_size);
  RUN(reductions_nan_inf_and_ties);
  RUN(reductions_over_empty_axes);
  RUN(reductions_integer_wrap_and_uint64_order);
  RUN(softmax_over_any_axes);
  RUN(scans_every_dtype_axis_and_layout);
  RUN(scans_long_lines);
  RUN(scans_nan_inf_wrap_and_identities);
  RUN(array_equal_and_allclose);
  RUN(median_any_axes);
  return TEST_SUMMARY();
}
