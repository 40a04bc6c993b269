/* Reductions (sum, prod, max, min, all, any, mean, var, std, logsumexp, argmax, argmin, median)
 * and softmax against double-precision references computed here with plain loops. */
#include "backend/cpu/threadpool.h"
#include "reduce_test_util.h"
#include "test_util.h"

typedef enum { SUM, PROD, MAX, MIN, ALL, ANY, MEAN, VAR, STD, LOGSUMEXP, ARGMAX, ARGMIN, MEDIAN, N_OPS } op_id;
static const char* op_names[N_OPS] = {"sum", "prod", "max", "min", "all", "any", "mean",
                                      "var", "std", "logsumexp", "argmax", "argmin", "median"};

/* Calls op over `axes` (all dims when n_axes < 0). argmax/argmin take one axis or all. */
static int call_reduce(op_id op, mlx_array* res, mlx_array a, const int* axes, int n_axes, bool keepdims, int ddof) {
  bool all = n_axes < 0;
  size_t n = all ? 0 : (size_t)n_axes;
  switch (op) {
    case SUM: return all ? mlx_sum(res, a, keepdims, cpu) : mlx_sum_axes(res, a, axes, n, keepdims, cpu);
    case PROD: return all ? mlx_prod(res, a, keepdims, cpu) : mlx_prod_axes(res, a, axes, n, keepdims, cpu);
    case MAX: return all ? mlx_max(res, a, keepdims, cpu) : mlx_max_axes(res, a, axes, n, keepdims, cpu);
    case MIN: return all ? mlx_min(res, a, keepdims, cpu) : mlx_min_axes(res, a, axes, n, keepdims, cpu);
    case ALL: return all ? mlx_all(res, a, keepdims, cpu) : mlx_all_axes(res, a, axes, n, keepdims, cpu);
    case ANY: return all ? mlx_any(res, a, keepdims, cpu) : mlx_any_axes(res, a, axes, n, keepdims, cpu);
    case MEAN: return all ? mlx_mean(res, a, keepdims, cpu) : mlx_mean_axes(res, a, axes, n, keepdims, cpu);
    case VAR: return all ? mlx_var(res, a, keepdims, ddof, cpu) : mlx_var_axes(res, a, axes, n, keepdims, ddof, cpu);
    case STD: return all ? mlx_std(res, a, keepdims, ddof, cpu) : mlx_std_axes(res, a, axes, n, keepdims, ddof, cpu);
    case LOGSUMEXP:
      return all ? mlx_logsumexp(res, a, keepdims, cpu) : mlx_logsumexp_axes(res, a, axes, n, keepdims, cpu);
    case ARGMAX: return all ? mlx_argmax(res, a, keepdims, cpu) : mlx_argmax_axis(res, a, axes[0], keepdims, cpu);
    case ARGMIN: return all ? mlx_argmin(res, a, keepdims, cpu) : mlx_argmin_axis(res, a, axes[0], keepdims, cpu);
    case MEDIAN: {
      int every[32];
      for (int d = 0; d < (int)mlx_array_ndim(a); d++) every[d] = d;
      return mlx_median(res, a, all ? every : axes, all ? mlx_array_ndim(a) : n, keepdims, cpu);
    }
    default: return 1;
  }
}

static int nan_last_cmp(const void* pa, const void* pb) {
  double a = *(const double*)pa, b = *(const double*)pb;
  if (isnan(a) || isnan(b)) return isnan(a) - isnan(b);
  return (a > b) - (a < b);
}

/* The reference value of op over v[0..n). */
static double ref_op(op_id op, const double* v, long n, int ddof) {
  long double acc = 0;
  switch (op) {
    case SUM:
      for (long i = 0; i < n; i++) acc += v[i];
      return (double)acc;
    case PROD:
      acc = 1;
      for (long i = 0; i < n; i++) acc *= v[i];
      return (double)acc;
    case MAX:
    case MIN: {
      double m = v[0];
      for (long i = 0; i < n; i++) {
        if (isnan(v[i])) return NAN;
        if (op == MAX ? v[i] > m : v[i] < m) m = v[i];
      }
      return m;
    }
    case ALL:
      for (long i = 0; i < n; i++)
        if (v[i] == 0) return 0;
      return 1;
    case ANY:
      for (long i = 0; i < n; i++)
        if (v[i] != 0) return 1;
      return 0;
    case MEAN: return ref_op(SUM, v, n, 0) / (double)n;
    case VAR:
    case STD: {
      long double mean = ref_op(MEAN, v, n, 0);
      for (long i = 0; i < n; i++) acc += (v[i] - mean) * (v[i] - mean);
      double var = (double)(acc / (n - ddof > 0 ? n - ddof : 0));
      return op == STD ? sqrt(var) : var;
    }
    case LOGSUMEXP: {
      double m = ref_op(MAX, v, n, 0);
      if (!isfinite(m)) return m;
      for (long i = 0; i < n; i++) acc += expl((long double)v[i] - m);
      return m + (double)logl(acc);
    }
    case ARGMAX:
    case ARGMIN: {
      long best = 0;
      for (long i = 0; i < n; i++) {
        if (isnan(v[i])) return (double)i;
        if (op == ARGMAX ? v[i] > v[best] : v[i] < v[best]) best = i;
      }
      return (double)best;
    }
    case MEDIAN: {
      double* s = malloc(sizeof(double) * (size_t)n);
      memcpy(s, v, sizeof(double) * (size_t)n);
      qsort(s, (size_t)n, sizeof(double), nan_last_cmp);
      double m = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
      free(s);
      return m;
    }
    default: return NAN;
  }
}

/* Checks op(a over mask) against the reference computed from the logical values x (row-major
 * in a's shape): output shape (keepdims or not), dtype, and values within rel_tol. */
static void check_reduce(op_id op, mlx_array a, const double* x, const bool* mask, bool keepdims, int ddof,
                         mlx_dtype expect_dtype, double rel_tol) {
  int ndim = (int)mlx_array_ndim(a), shape[32], axes[32], n_axes = 0;
  const int* sh = mlx_array_shape(a);
  long n = 1;
  for (int d = 0; d < ndim; d++) {
    shape[d] = sh[d];
    n *= shape[d];
    if (mask[d]) axes[n_axes++] = d - ndim; /* negative axes */
  }
  double* grouped = malloc(sizeof(double) * (size_t)(n + 1));
  long G, R = group_values(x, shape, ndim, mask, grouped, &G);
  mlx_array r = mlx_array_new();
  int rc = call_reduce(op, &r, a, axes, n_axes, keepdims, ddof);
  CHECK_MSG(rc == 0, "%s failed: %s", op_names[op], mlxc_last_error());
  if (rc == 0) {
    CHECK_EQ_INT(mlx_array_dtype(r), expect_dtype);
    int expect_ndim = 0;
    for (int d = 0; d < ndim; d++) {
      if (!mask[d] || keepdims) {
        CHECK_EQ_INT(mlx_array_dim(r, expect_ndim), mask[d] ? 1 : shape[d]);
        expect_ndim++;
      }
    }
    CHECK_EQ_INT(mlx_array_ndim(r), expect_ndim);
    double* got = malloc(sizeof(double) * (size_t)(G + 1));
    CHECK_EQ_INT(read_all(r, got), G);
    for (long g = 0; g < G; g++) {
      double want = ref_op(op, grouped + g * R, R, ddof);
      double scale = 1;
      if (op == SUM || op == MEAN)
        for (long k = 0; k < R; k++) scale += fabs(grouped[g * R + k]);
      CHECK_MSG(fabs(got[g] - want) <= rel_tol * fmax(scale, fabs(want)) || (isnan(got[g]) && isnan(want)) ||
                    got[g] == want,
                "%s group %ld: got %.9g want %.9g", op_names[op], g, got[g], want);
    }
    free(got);
  }
  mlx_array_free(r);
  free(grouped);
}

static mlx_dtype float_result(mlx_dtype in) {
  return (in == MLX_FLOAT16 || in == MLX_BFLOAT16 || in == MLX_FLOAT32 || in == MLX_FLOAT64) ? in : MLX_FLOAT32;
}

static mlx_dtype expected_dtype(op_id op, mlx_dtype in) {
  switch (op) {
    case SUM:
    case PROD:
      if (in == MLX_BOOL || in == MLX_INT8 || in == MLX_INT16 || in == MLX_INT32) return MLX_INT32;
      if (in == MLX_UINT8 || in == MLX_UINT16 || in == MLX_UINT32) return MLX_UINT32;
      return in;
    case MAX:
    case MIN: return in;
    case ALL:
    case ANY: return MLX_BOOL;
    case ARGMAX:
    case ARGMIN: return MLX_UINT32;
    default: return float_result(in);
  }
}

TEST(test_every_op_over_every_axis_subset_float32) {
  int shape[3] = {3, 4, 5};
  double x[60];
  fill_uniform(x, 60, -2, 2);
  x[7] = 0; /* so all() sees a zero */
  mlx_array a = arr_of(x, shape, 3, MLX_FLOAT32);
  double xf[60];
  for (int i = 0; i < 60; i++) xf[i] = (float)x[i];
  for (int op = 0; op < N_OPS; op++) {
    for (int subset = 1; subset < 8; subset++) {
      bool mask[3] = {subset & 1, (subset >> 1) & 1, (subset >> 2) & 1};
      int count = mask[0] + mask[1] + mask[2];
      if ((op == ARGMAX || op == ARGMIN) && count != 1) continue;
      for (int keep = 0; keep < 2; keep++)
        check_reduce(op, a, xf, mask, keep, op == VAR || op == STD ? 1 : 0, expected_dtype(op, MLX_FLOAT32), 2e-6);
    }
  }
  mlx_array_free(a);
}

TEST(test_full_reductions_without_axes) {
  int shape[2] = {4, 6};
  double x[24];
  fill_uniform(x, 24, 0.5, 1.5);
  mlx_array a = arr_of(x, shape, 2, MLX_FLOAT64);
  bool mask[2] = {true, true};
  for (int op = 0; op < N_OPS; op++) {
    mlx_array r = mlx_array_new();
    int rc = call_reduce(op, &r, a, NULL, -1, false, 0);
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_INT(mlx_array_ndim(r), 0);
    double got = NAN, grouped[24];
    long G;
    group_values(x, shape, 2, mask, grouped, &G);
    CHECK_EQ_INT(read_all(r, &got), 1);
    CHECK_NEAR(got, ref_op(op, grouped, 24, 0), 1e-12);
    mlx_array_free(r);
  }
  mlx_array_free(a);
}

TEST(test_dtypes_and_result_types) {
  const mlx_dtype dtypes[] = {MLX_BOOL,  MLX_UINT8, MLX_UINT16,  MLX_UINT32,   MLX_UINT64,  MLX_INT8,   MLX_INT16,
                              MLX_INT32, MLX_INT64, MLX_FLOAT16, MLX_BFLOAT16, MLX_FLOAT32, MLX_FLOAT64};
  int shape[2] = {5, 7};
  double x[35];
  for (size_t t = 0; t < sizeof dtypes / sizeof *dtypes; t++) {
    mlx_dtype dt = dtypes[t];
    bool is_signed = dt == MLX_INT8 || dt == MLX_INT16 || dt == MLX_INT32 || dt == MLX_INT64 ||
                     dt == MLX_FLOAT16 || dt == MLX_BFLOAT16 || dt == MLX_FLOAT32 || dt == MLX_FLOAT64;
    if (dt == MLX_BOOL) fill_small_ints(x, 35, 0, 1);
    else fill_small_ints(x, 35, is_signed ? -3 : 0, 3);
    mlx_array a = arr_of(x, shape, 2, dt);
    bool half = dt == MLX_FLOAT16 || dt == MLX_BFLOAT16;
    for (int op = 0; op < N_OPS; op++) {
      for (int axis = 0; axis < 2; axis++) {
        bool mask[2] = {axis == 0, axis == 1};
        double tol = half ? 8e-3 : dt == MLX_FLOAT64 ? 1e-12 : 1e-6;
        /* products of 7 small ints stay exact; of halves they round like any value */
        check_reduce(op, a, x, mask, false, 0, expected_dtype(op, dt), op == PROD && !half ? 0 : tol);
      }
    }
    mlx_array_free(a);
  }
}

/* Transposed and step-sliced views reduce like their logical values. */
TEST(test_strided_inputs) {
  int shape[3] = {4, 6, 5};
  double x[120];
  fill_uniform(x, 120, -1, 1);
  mlx_array a = arr_of(x, shape, 3, MLX_FLOAT64);
  mlx_array t = mlx_array_new(), s = mlx_array_new();
  int perm[3] = {2, 0, 1};
  mlx_transpose_axes(&t, a, perm, 3, cpu);
  int start[3] = {3, 0, 4}, stop[3] = {-5, 6, -6}, step[3] = {-1, 2, -2}; /* reversed, stepped */
  mlx_slice(&s, a, start, 3, stop, 3, step, 3, cpu);
  mlx_array views[2] = {t, s};
  for (int v = 0; v < 2; v++) {
    double logical[120];
    CHECK(read_all(views[v], logical) > 0); /* row-major copy of the view's values */
    int nd = (int)mlx_array_ndim(views[v]);
    for (int op = 0; op < N_OPS; op++)
      for (int subset = 1; subset < (1 << nd); subset++) {
        bool mask[3] = {subset & 1, (subset >> 1) & 1, (subset >> 2) & 1};
        if ((op == ARGMAX || op == ARGMIN) && mask[0] + mask[1] + mask[2] != 1) continue;
        check_reduce(op, views[v], logical, mask, subset & 1, 0, expected_dtype(op, MLX_FLOAT64), 1e-12);
      }
  }
  mlx_array_free(a);
  mlx_array_free(t);
  mlx_array_free(s);
}

TEST(test_size_one_dims_and_scalars) {
  int shape[4] = {1, 3, 1, 2};
  double x[6] = {1, -2, 3, 4, -5, 6};
  mlx_array a = arr_of(x, shape, 4, MLX_INT32);
  for (int op = 0; op < N_OPS; op++) {
    bool m1[4] = {true, false, true, false}, m2[4] = {false, true, false, true};
    check_reduce(op, a, x, m1, true, 0, expected_dtype(op, MLX_INT32), 1e-6);
    if (op != ARGMAX && op != ARGMIN) check_reduce(op, a, x, m2, false, 0, expected_dtype(op, MLX_INT32), 1e-6);
  }
  mlx_array_free(a);
  /* A 0-d array reduces to itself (argmax to 0). */
  mlx_array s = mlx_array_new_float(2.5f), r = mlx_array_new();
  double got;
  CHECK_EQ_INT(mlx_sum(&r, s, false, cpu), 0);
  CHECK(read_all(r, &got) == 1 && got == 2.5);
  CHECK_EQ_INT(mlx_argmax(&r, s, true, cpu), 0);
  CHECK(read_all(r, &got) == 1 && got == 0);
  CHECK_EQ_INT(mlx_var(&r, s, false, 0, cpu), 0);
  CHECK(read_all(r, &got) == 1 && got == 0);
  mlx_array_free(s);
  mlx_array_free(r);
}

TEST(test_empty_reductions_give_identities) {
  int shape[2] = {0, 3};
  mlx_array a = arr_of(NULL, shape, 2, MLX_FLOAT32), r = mlx_array_new();
  double got[3];
  CHECK_EQ_INT(mlx_sum_axis(&r, a, 0, false, cpu), 0);
  CHECK(read_all(r, got) == 3 && got[0] == 0 && got[2] == 0);
  CHECK_EQ_INT(mlx_prod_axis(&r, a, 0, false, cpu), 0);
  CHECK(read_all(r, got) == 3 && got[0] == 1 && got[2] == 1);
  CHECK_EQ_INT(mlx_all_axis(&r, a, 0, false, cpu), 0);
  CHECK(read_all(r, got) == 3 && got[1] == 1);
  CHECK_EQ_INT(mlx_any_axis(&r, a, 0, false, cpu), 0);
  CHECK(read_all(r, got) == 3 && got[1] == 0);
  CHECK_EQ_INT(mlx_mean_axis(&r, a, 0, false, cpu), 0);
  CHECK(read_all(r, got) == 3 && isnan(got[0]));
  /* Reducing the non-empty axis gives an empty result. */
  CHECK_EQ_INT(mlx_sum_axis(&r, a, 1, false, cpu), 0);
  CHECK_EQ_INT(mlx_array_size(r), 0);
  CHECK_EQ_INT(mlx_array_dim(r, 0), 0);
  /* max/min/argmax/argmin/logsumexp of nothing are errors, as in MLX. */
  CHECK(mlx_max_axis(&r, a, 0, false, cpu) != 0);
  CHECK(strstr(mlxc_last_error(), "zero elements") != NULL);
  CHECK(mlx_min(&r, a, false, cpu) != 0);
  CHECK(mlx_argmax_axis(&r, a, 0, false, cpu) != 0);
  CHECK(mlx_argmin(&r, a, false, cpu) != 0);
  CHECK(mlx_logsumexp(&r, a, false, cpu) != 0);
  int ax = 0;
  CHECK(mlx_median(&r, a, &ax, 1, false, cpu) != 0);
  mlx_array_free(a);
  mlx_array_free(r);
}

TEST(test_argmax_ties_and_nan) {
  double x[8] = {1, 5, 5, 2, NAN, 5, NAN, -1};
  int n = 8;
  mlx_array a = arr_of(x, &n, 1, MLX_FLOAT32), r = mlx_array_new();
  uint32_t idx = 99;
  /* First NaN wins both (MLX, numpy). */
  mlx_argmax(&r, a, false, cpu);
  CHECK(mlx_array_item_uint32(&idx, r) == 0 && idx == 4);
  mlx_argmin(&r, a, false, cpu);
  CHECK(mlx_array_item_uint32(&idx, r) == 0 && idx == 4);
  mlx_array_free(a);
  /* Ties: the first index. */
  int shape[2] = {2, 4};
  double y[8] = {3, 7, 7, 1, 2, 2, 0, 0};
  a = arr_of(y, shape, 2, MLX_INT64);
  mlx_argmax_axis(&r, a, 1, true, cpu);
  double got[2];
  CHECK_EQ_INT(mlx_array_ndim(r), 2);
  CHECK(read_all(r, got) == 2 && got[0] == 1 && got[1] == 0);
  mlx_argmin_axis(&r, a, -1, false, cpu);
  CHECK(read_all(r, got) == 2 && got[0] == 3 && got[1] == 2);
  mlx_argmax(&r, a, false, cpu); /* flattened */
  CHECK(read_all(r, got) == 1 && got[0] == 1);
  mlx_array_free(a);
  mlx_array_free(r);
}

/* A language model's logits row (151941 float32 values: vocabulary-sized, not a multiple of 16):
 * max and argmax with the maximum twice (the first wins) and then with two NaNs (the first
 * wins), logsumexp against a long double sum. */
TEST(test_long_float32_row_max_argmax_logsumexp) {
  enum { N = 151941 };
  static double x[N];
  fill_uniform(x, N, -8, 8);
  x[70001] = 9.5, x[120000] = 9.5;
  int n = N;
  mlx_array a = arr_of(x, &n, 1, MLX_FLOAT32), r = mlx_array_new();
  float v = 0;
  uint32_t idx = 0;
  CHECK(mlx_max(&r, a, false, cpu) == 0 && mlx_array_item_float32(&v, r) == 0 && v == 9.5f);
  CHECK(mlx_argmax(&r, a, false, cpu) == 0 && mlx_array_item_uint32(&idx, r) == 0 && idx == 70001);
  long double sum = 0;
  for (int i = 0; i < N; i++) sum += expl((long double)(float)x[i] - 9.5L);
  double want = 9.5 + (double)logl(sum);
  CHECK(mlx_logsumexp(&r, a, false, cpu) == 0 && mlx_array_item_float32(&v, r) == 0);
  CHECK_NEAR(v, want, fabs(want) * 4e-7);
  mlx_array_free(a);
  x[100003] = NAN, x[150000] = NAN;
  a = arr_of(x, &n, 1, MLX_FLOAT32);
  CHECK(mlx_argmax(&r, a, false, cpu) == 0 && mlx_array_item_uint32(&idx, r) == 0 && idx == 100003);
  CHECK(mlx_max(&r, a, false, cpu) == 0 && mlx_array_item_float32(&v, r) == 0 && isnan(v));
  mlx_array_free(a);
  mlx_array_free(r);
}

TEST(test_nan_and_infinity_propagation) {
  double x[4] = {1, NAN, 3, -INFINITY};
  int n = 4;
  mlx_array a = arr_of(x, &n, 1, MLX_FLOAT32), r = mlx_array_new();
  float v = 0;
  mlx_max(&r, a, false, cpu);
  CHECK(mlx_array_item_float32(&v, r) == 0 && isnan(v));
  mlx_min(&r, a, false, cpu);
  CHECK(mlx_array_item_float32(&v, r) == 0 && isnan(v));
  mlx_sum(&r, a, false, cpu);
  CHECK(mlx_array_item_float32(&v, r) == 0 && isnan(v));
  mlx_logsumexp(&r, a, false, cpu);
  CHECK(mlx_array_item_float32(&v, r) == 0 && isnan(v));
  mlx_any(&r, a, false, cpu); /* NaN is truthy */
  bool b = false;
  CHECK(mlx_array_item_bool(&b, r) == 0 && b);
  mlx_array_free(a);
  double inf[3] = {-INFINITY, -INFINITY, -INFINITY}, pinf[3] = {1, INFINITY, 2};
  n = 3;
  a = arr_of(inf, &n, 1, MLX_FLOAT32);
  mlx_logsumexp(&r, a, false, cpu);
  CHECK(mlx_array_item_float32(&v, r) == 0 && v == -INFINITY);
  mlx_array_free(a);
  a = arr_of(pinf, &n, 1, MLX_FLOAT32);
  mlx_logsumexp(&r, a, false, cpu);
  CHECK(mlx_array_item_float32(&v, r) == 0 && v == INFINITY);
  mlx_array_free(a);
  mlx_array_free(r);
}

TEST(test_var_std_ddof) {
  double x[5] = {2, 4, 4, 5, 9};
  int n = 5;
  mlx_array a = arr_of(x, &n, 1, MLX_INT32), r = mlx_array_new();
  float v = 0;
  mlx_var(&r, a, false, 0, cpu); /* mean 4.8, squared deviations sum 26.8 */
  CHECK_EQ_INT(mlx_array_dtype(r), MLX_FLOAT32);
  CHECK(mlx_array_item_float32(&v, r) == 0);
  CHECK_NEAR(v, 26.8 / 5, 1e-6);
  mlx_std_axis(&r, a, 0, false, 1, cpu);
  CHECK(mlx_array_item_float32(&v, r) == 0);
  CHECK_NEAR(v, sqrt(26.8 / 4), 1e-6);
  mlx_var(&r, a, false, 5, cpu); /* divisor max(5 - 5, 0) = 0 */
  CHECK(mlx_array_item_float32(&v, r) == 0 && isinf(v));
  mlx_array_free(a);
  mlx_array_free(r);
}

TEST(test_integer_sums_wrap_and_uint64_order) {
  double x[3] = {2147483647.0, 1, 1};
  int n = 3;
  mlx_array a = arr_of(x, &n, 1, MLX_INT32), r = mlx_array_new();
  int32_t s = 0;
  mlx_sum(&r, a, false, cpu);
  CHECK(mlx_array_item_int32(&s, r) == 0 && s == INT32_MIN + 1); /* wraps like MLX's int32 */
  mlx_array_free(a);
  uint64_t big[3] = {UINT64_C(1) << 63, 5, UINT64_MAX};
  a = mlx_array_new_data(big, &n, 1, MLX_UINT64);
  uint64_t u = 0;
  mlx_max(&r, a, false, cpu);
  CHECK(mlx_array_item_uint64(&u, r) == 0 && u == UINT64_MAX);
  mlx_min(&r, a, false, cpu);
  CHECK(mlx_array_item_uint64(&u, r) == 0 && u == 5);
  mlx_sum(&r, a, false, cpu); /* 2^63 + 5 + (2^64 - 1) wraps to 2^63 + 4 */
  CHECK(mlx_array_item_uint64(&u, r) == 0 && u == (UINT64_C(1) << 63) + 4);
  uint32_t i = 9;
  mlx_argmin(&r, a, false, cpu);
  CHECK(mlx_array_item_uint32(&i, r) == 0 && i == 1);
  mlx_array_free(a);
  int64_t big_signed[2] = {INT64_MAX, INT64_MIN};
  n = 2;
  a = mlx_array_new_data(big_signed, &n, 1, MLX_INT64);
  int64_t m = 0;
  mlx_max(&r, a, false, cpu);
  CHECK(mlx_array_item_int64(&m, r) == 0 && m == INT64_MAX);
  mlx_array_free(a);
  mlx_array_free(r);
}

/* Half-precision sums accumulate in wide precision and round once: 4096 x 0.1 in float16. */
TEST(test_half_sums_round_once) {
  int n = 4096;
  double* x = malloc(sizeof(double) * (size_t)n);
  for (int i = 0; i < n; i++) x[i] = 0.1;
  mlx_array a = arr_of(x, &n, 1, MLX_FLOAT16), r = mlx_array_new();
  mlx_sum(&r, a, false, cpu);
  CHECK_EQ_INT(mlx_array_dtype(r), MLX_FLOAT16);
  double got;
  read_all(r, &got);
  double exact = 4096 * (double)mlxc_float16_to_float32(mlxc_float32_to_float16(0.1f));
  CHECK_NEAR(got, mlxc_float16_to_float32(mlxc_float32_to_float16((float)exact)), 0);
  mlx_array_free(a);
  mlx_array_free(r);
  free(x);
}

/* Large reductions take the threaded chunk path; the result must not depend on the thread count
 * and must match a double-precision sum. */
TEST(test_large_reductions_are_thread_independent) {
  int shape[2] = {3, 1 << 20};
  size_t n = (size_t)3 << 20;
  double* x = malloc(sizeof(double) * n);
  fill_uniform(x, n, -1, 3);
  mlx_array a = arr_of(x, shape, 2, MLX_FLOAT32);
  int threads = cpu_max_threads();
  double results[2][4][3];
  for (int run = 0; run < 2; run++) {
    cpu_set_max_threads(run == 0 ? 1 : 4);
    op_id ops[4] = {SUM, MAX, VAR, ARGMIN};
    for (int k = 0; k < 4; k++) {
      mlx_array r = mlx_array_new();
      int axis = 1;
      CHECK_EQ_INT(call_reduce(ops[k], &r, a, &axis, 1, false, 0), 0);
      CHECK_EQ_INT(read_all(r, results[run][k]), 3);
      mlx_array_free(r);
    }
  }
  cpu_set_max_threads(threads);
  for (int k = 0; k < 4; k++)
    for (int g = 0; g < 3; g++) CHECK(results[0][k][g] == results[1][k][g]);
  for (int g = 0; g < 3; g++) {
    long double s = 0;
    for (size_t i = 0; i < (size_t)1 << 20; i++) s += (float)x[g * ((size_t)1 << 20) + i];
    CHECK_NEAR(results[0][0][g], (double)s, fabs((double)s) * 1e-6);
  }
  /* A full sum over the flat array too. */
  mlx_array r = mlx_array_new();
  float total = 0;
  mlx_sum(&r, a, false, cpu);
  mlx_array_item_float32(&total, r);
  long double s = 0;
  for (size_t i = 0; i < n; i++) s += (float)x[i];
  CHECK_NEAR(total, (double)s, fabs((double)s) * 1e-6);
  mlx_array_free(r);
  mlx_array_free(a);
  free(x);
}

/* Reducing leading axes folds blocks of neighbouring outputs together: more outputs than one
 * block (256), a partial last block, and a transposed view whose outputs are far apart. */
TEST(test_column_reductions_over_many_outputs) {
  int shape[3] = {7, 3, 300};
  size_t n = 7 * 3 * 300;
  double* x = malloc(sizeof(double) * n);
  fill_small_ints(x, n, -4, 4); /* ties for argmax, zeros for all */
  mlx_dtype dtypes[2] = {MLX_FLOAT32, MLX_INT16};
  for (int t = 0; t < 2; t++) {
    mlx_array a = arr_of(x, shape, 3, dtypes[t]);
    bool first[3] = {true, false, false}, outer[3] = {true, true, false};
    for (int op = 0; op < N_OPS; op++) {
      check_reduce(op, a, x, first, op % 2, 1, expected_dtype(op, dtypes[t]), 1e-6);
      if (op != ARGMAX && op != ARGMIN) check_reduce(op, a, x, outer, false, 0, expected_dtype(op, dtypes[t]), 1e-6);
    }
    mlx_array tr = mlx_array_new();
    int perm[3] = {2, 0, 1};
    mlx_transpose_axes(&tr, a, perm, 3, cpu);
    double* logical = malloc(sizeof(double) * n);
    read_all(tr, logical);
    bool last[3] = {false, false, true};
    for (int op = 0; op < N_OPS; op++) check_reduce(op, tr, logical, last, false, 0, expected_dtype(op, dtypes[t]), 1e-6);
    free(logical);
    mlx_array_free(tr);
    mlx_array_free(a);
  }
  free(x);
}

TEST(test_median_even_odd_and_nan) {
  int shape[2] = {2, 4};
  double x[8] = {4, 1, 3, 2, 9, NAN, 1, 5};
  mlx_array a = arr_of(x, shape, 2, MLX_FLOAT32), r = mlx_array_new();
  int ax = 1;
  CHECK_EQ_INT(mlx_median(&r, a, &ax, 1, false, cpu), 0);
  double got[2];
  CHECK(read_all(r, got) == 2);
  CHECK_NEAR(got[0], 2.5, 0);
  CHECK_NEAR(got[1], 7, 0); /* NaN sorts last: 1 5 9 NaN */
  mlx_array_free(a);
  double y[5] = {7, 1, 5, 3, 9};
  int n = 5;
  a = arr_of(y, &n, 1, MLX_UINT8);
  ax = 0;
  CHECK_EQ_INT(mlx_median(&r, a, &ax, 1, true, cpu), 0);
  CHECK_EQ_INT(mlx_array_dtype(r), MLX_FLOAT32);
  CHECK_EQ_INT(mlx_array_ndim(r), 1);
  CHECK(read_all(r, got) == 1 && got[0] == 5);
  mlx_array_free(a);
  mlx_array_free(r);
}

/* softmax against exp(x - max) / sum in long double. */
static void check_softmax(mlx_array a, const double* x, const bool* mask, double tol) {
  int ndim = (int)mlx_array_ndim(a), shape[32], axes[32], n_axes = 0;
  long n = 1;
  for (int d = 0; d < ndim; d++) {
    shape[d] = mlx_array_dim(a, d);
    n *= shape[d];
    if (mask[d]) axes[n_axes++] = d;
  }
  mlx_array r = mlx_array_new();
  CHECK_EQ_INT(mlx_softmax_axes(&r, a, axes, (size_t)n_axes, false, cpu), 0);
  double* got = malloc(sizeof(double) * (size_t)n);
  CHECK_EQ_INT(read_all(r, got), n);
  int idx[32];
  for (long i = 0; i < n; i++) {
    /* The reference: sum over elements sharing i's kept indices. */
    unravel(i, shape, ndim, idx);
    long double max = -INFINITY, sum = 0;
    int jdx[32];
    for (long j = 0; j < n; j++) {
      unravel(j, shape, ndim, jdx);
      bool same = true;
      for (int d = 0; d < ndim; d++)
        if (!mask[d] && jdx[d] != idx[d]) same = false;
      if (same && x[j] > max) max = x[j];
    }
    for (long j = 0; j < n; j++) {
      unravel(j, shape, ndim, jdx);
      bool same = true;
      for (int d = 0; d < ndim; d++)
        if (!mask[d] && jdx[d] != idx[d]) same = false;
      if (same) sum += expl(x[j] - max);
    }
    CHECK_NEAR(got[i], (double)(expl(x[i] - max) / sum), tol);
  }
  free(got);
  mlx_array_free(r);
}

TEST(test_softmax_axes_dtypes_and_strides) {
  int shape[3] = {2, 3, 4};
  double x[24];
  fill_uniform(x, 24, -4, 4);
  mlx_array a = arr_of(x, shape, 3, MLX_FLOAT32);
  double xf[24];
  read_all(a, xf);
  for (int subset = 1; subset < 8; subset++) {
    bool mask[3] = {subset & 1, (subset >> 1) & 1, (subset >> 2) & 1};
    check_softmax(a, xf, mask, 1e-7);
  }
  /* float16 input: float16 output, computed wide and rounded once. */
  mlx_array h = arr_of(x, shape, 3, MLX_FLOAT16), r = mlx_array_new();
  double xh[24];
  read_all(h, xh);
  bool last[3] = {false, false, true};
  check_softmax(h, xh, last, 5e-4);
  CHECK_EQ_INT(mlx_softmax_axis(&r, h, -1, true, cpu), 0);
  CHECK_EQ_INT(mlx_array_dtype(r), MLX_FLOAT16);
  /* integers give float32 */
  mlx_array i = arr_of(x, shape, 3, MLX_INT32);
  CHECK_EQ_INT(mlx_softmax(&r, i, false, cpu), 0);
  CHECK_EQ_INT(mlx_array_dtype(r), MLX_FLOAT32);
  double xi[24];
  read_all(i, xi);
  bool every[3] = {true, true, true};
  check_softmax(i, xi, every, 1e-7);
  /* a transposed view */
  mlx_array t = mlx_array_new();
  mlx_transpose(&t, a, cpu);
  double xt[24];
  read_all(t, xt);
  bool first[3] = {true, false, false};
  check_softmax(t, xt, first, 1e-7);
  mlx_array_free(a);
  mlx_array_free(h);
  mlx_array_free(i);
  mlx_array_free(t);
  mlx_array_free(r);
}

TEST(test_error_paths) {
  int shape[2] = {2, 3};
  double x[6] = {1, 2, 3, 4, 5, 6};
  mlx_array a = arr_of(x, shape, 2, MLX_FLOAT32), r = mlx_array_new(), empty = mlx_array_new();
  int bad[1] = {2}, dup[2] = {1, -1}, neg[1] = {-3};
  CHECK(mlx_sum_axes(&r, a, bad, 1, false, cpu) != 0);
  CHECK(strstr(mlxc_last_error(), "out of bounds") != NULL);
  CHECK(mlx_mean_axes(&r, a, neg, 1, false, cpu) != 0);
  CHECK(mlx_max_axes(&r, a, dup, 2, false, cpu) != 0);
  CHECK(strstr(mlxc_last_error(), "repeated") != NULL);
  CHECK(mlx_argmax_axis(&r, a, 5, false, cpu) != 0);
  CHECK(mlx_var_axis(&r, a, -4, false, 0, cpu) != 0);
  CHECK(mlx_median(&r, a, dup, 2, false, cpu) != 0);
  CHECK(mlx_softmax_axes(&r, a, dup, 2, false, cpu) != 0);
  CHECK(mlx_softmax_axis(&r, a, 2, false, cpu) != 0);
  CHECK(mlx_sum(&r, empty, false, cpu) != 0);
  CHECK(strstr(mlxc_last_error(), "empty array") != NULL);
  CHECK(mlx_softmax(&r, empty, false, cpu) != 0);
  CHECK(mlx_sum_axes(&r, a, NULL, 1, false, cpu) != 0);
  mlx_array c = mlx_array_new();
  CHECK_EQ_INT(mlx_astype(&c, a, MLX_COMPLEX64, cpu), 0);
  CHECK(mlx_sum(&r, c, false, cpu) != 0);
  CHECK(strstr(mlxc_last_error(), "complex64") != NULL);
  CHECK(r.ctx == NULL); /* nothing was assigned */
  mlx_array_free(a);
  mlx_array_free(c);
  mlx_array_free(r);
}

int main(void) {
  cpu = mlx_default_cpu_stream_new();
  mlxc_set_errors_quiet(1);
  RUN(test_every_op_over_every_axis_subset_float32);
  RUN(test_full_reductions_without_axes);
  RUN(test_dtypes_and_result_types);
  RUN(test_strided_inputs);
  RUN(test_size_one_dims_and_scalars);
  RUN(test_empty_reductions_give_identities);
  RUN(test_argmax_ties_and_nan);
  RUN(test_long_float32_row_max_argmax_logsumexp);
  RUN(test_nan_and_infinity_propagation);
  RUN(test_var_std_ddof);
  RUN(test_integer_sums_wrap_and_uint64_order);
  RUN(test_half_sums_round_once);
  RUN(test_large_reductions_are_thread_independent);
  RUN(test_column_reductions_over_many_outputs);
  RUN(test_median_even_odd_and_nan);
  RUN(test_softmax_axes_dtypes_and_strides);
  RUN(test_error_paths);
  mlx_stream_free(cpu);
  return TEST_SUMMARY();
}
