/* Cumulative ops (cumsum, cumprod, cummax, cummin, logcumsumexp) against references computed
 * here in long double, over every axis, both directions, inclusive and exclusive. */
#include "reduce_test_util.h"
#include "test_util.h"

typedef enum { CSUM, CPROD, CMAX, CMIN, CLSE, N_SCANS } scan_id;
static const char* scan_names[N_SCANS] = {"cumsum", "cumprod", "cummax", "cummin", "logcumsumexp"};

static int call_scan(scan_id op, mlx_array* r, mlx_array a, int axis, bool reverse, bool inclusive) {
  switch (op) {
    case CSUM: return mlx_cumsum(r, a, axis, reverse, inclusive, cpu);
    case CPROD: return mlx_cumprod(r, a, axis, reverse, inclusive, cpu);
    case CMAX: return mlx_cummax(r, a, axis, reverse, inclusive, cpu);
    case CMIN: return mlx_cummin(r, a, axis, reverse, inclusive, cpu);
    default: return mlx_logcumsumexp(r, a, axis, reverse, inclusive, cpu);
  }
}

/* One step of the reference; `acc` starts at `identity`. */
static long double ref_step(scan_id op, long double acc, double x) {
  switch (op) {
    case CSUM: return acc + x;
    case CPROD: return acc * x;
    case CMAX: return isnan(x) || isnan(acc) ? NAN : x > acc ? x : acc;
    case CMIN: return isnan(x) || isnan(acc) ? NAN : x < acc ? x : acc;
    default: {
      if (acc == -INFINITY) return x;
      long double hi = acc > x ? acc : x, lo = acc > x ? x : acc;
      return hi + log1pl(expl(lo - hi));
    }
  }
}

/* Checks op along `axis` of a (logical values x) against the reference; `identity` is the
 * expected first value of exclusive scans. */
static void check_scan(scan_id op, mlx_array a, const double* x, int axis, bool reverse, bool inclusive,
                       double identity, mlx_dtype expect_dtype, double tol) {
  int ndim = (int)mlx_array_ndim(a), shape[32];
  long n = 1;
  for (int d = 0; d < ndim; d++) shape[d] = mlx_array_dim(a, d), n *= shape[d];
  mlx_array r = mlx_array_new();
  int rc = call_scan(op, &r, a, axis, reverse, inclusive);
  CHECK_MSG(rc == 0, "%s: %s", scan_names[op], mlxc_last_error());
  if (rc) return;
  CHECK_EQ_INT(mlx_array_dtype(r), expect_dtype);
  double* got = malloc(sizeof(double) * (size_t)n);
  CHECK_EQ_INT(read_all(r, got), n);
  int ax = axis < 0 ? axis + ndim : axis;
  long stride = 1;
  for (int d = ax + 1; d < ndim; d++) stride *= shape[d];
  int len = shape[ax];
  for (long lane = 0; lane < n / len; lane++) {
    long base = (lane / stride) * stride * len + lane % stride;
    long double acc = identity;
    for (int k = 0; k < len; k++) {
      int i = reverse ? len - 1 - k : k;
      double v = x[base + i * stride];
      if (inclusive) acc = ref_step(op, acc, v);
      double want = (double)acc, have = got[base + i * stride];
      CHECK_MSG(fabs(have - want) <= tol * fmax(1, fabs(want)) || (isnan(have) && isnan(want)) || have == want,
                "%s axis %d rev %d incl %d at %ld: got %.9g want %.9g", scan_names[op], axis, reverse, inclusive,
                base + i * stride, have, want);
      if (!inclusive) acc = ref_step(op, acc, v);
    }
  }
  free(got);
  mlx_array_free(r);
}

static double float_identity(scan_id op) {
  return op == CSUM ? 0 : op == CPROD ? 1 : op == CMIN ? INFINITY : -INFINITY;
}

TEST(test_every_scan_axis_direction_and_inclusion_float32) {
  int shape[3] = {3, 4, 5};
  double x[60];
  fill_uniform(x, 60, 0.5, 1.5);
  mlx_array a = arr_of(x, shape, 3, MLX_FLOAT32);
  double xf[60];
  read_all(a, xf);
  for (int op = 0; op < N_SCANS; op++)
    for (int axis = -3; axis < 3; axis++)
      for (int flags = 0; flags < 4; flags++)
        check_scan(op, a, xf, axis, flags & 1, flags & 2, float_identity(op), MLX_FLOAT32, 2e-6);
  mlx_array_free(a);
}

TEST(test_scans_of_strided_views) {
  int shape[2] = {6, 7};
  double x[42];
  fill_uniform(x, 42, -2, 2);
  mlx_array a = arr_of(x, shape, 2, MLX_FLOAT64), t = mlx_array_new(), s = mlx_array_new();
  mlx_transpose(&t, a, cpu);
  int start[2] = {5, 1}, stop[2] = {-7, 7}, step[2] = {-2, 3};
  mlx_slice(&s, a, start, 2, stop, 2, step, 2, cpu);
  mlx_array views[2] = {t, s};
  for (int v = 0; v < 2; v++) {
    double logical[42];
    CHECK(read_all(views[v], logical) > 0);
    for (int op = 0; op < N_SCANS; op++)
      for (int axis = 0; axis < 2; axis++)
        check_scan(op, views[v], logical, axis, axis == 1, true, float_identity(op), MLX_FLOAT64, 1e-12);
  }
  mlx_array_free(a);
  mlx_array_free(t);
  mlx_array_free(s);
}

TEST(test_integer_scans_dtypes_and_identities) {
  int n = 6;
  double x[6] = {3, -1, 4, -1, 5, -9};
  mlx_array a = arr_of(x, &n, 1, MLX_INT8);
  /* int8 keeps its dtype; exclusive max starts at the lowest int8, min at the highest. */
  check_scan(CSUM, a, x, 0, false, true, 0, MLX_INT8, 0);
  check_scan(CMAX, a, x, 0, false, false, -128, MLX_INT8, 0);
  check_scan(CMIN, a, x, 0, true, false, 127, MLX_INT8, 0);
  check_scan(CLSE, a, x, 0, false, true, -INFINITY, MLX_FLOAT32, 1e-6);
  mlx_array_free(a);
  double small[6] = {2, -1, 3, -1, 2, -1}; /* products that fit in int8 */
  a = arr_of(small, &n, 1, MLX_INT8);
  check_scan(CPROD, a, small, 0, true, false, 1, MLX_INT8, 0);
  mlx_array_free(a);
  double u[6] = {3, 1, 4, 1, 5, 9};
  a = arr_of(u, &n, 1, MLX_UINT16);
  check_scan(CMIN, a, u, 0, false, false, 65535, MLX_UINT16, 0);
  check_scan(CMAX, a, u, 0, false, false, 0, MLX_UINT16, 0);
  mlx_array_free(a);
  /* cumsum of bool counts in int32 */
  double b[6] = {1, 0, 1, 1, 0, 1};
  a = arr_of(b, &n, 1, MLX_BOOL);
  check_scan(CSUM, a, b, 0, false, true, 0, MLX_INT32, 0);
  check_scan(CMAX, a, b, 0, false, true, 0, MLX_BOOL, 0);
  mlx_array_free(a);
  /* int8 sums wrap as the dtype does */
  double w[3] = {100, 100, 100};
  n = 3;
  a = arr_of(w, &n, 1, MLX_INT8);
  mlx_array r = mlx_array_new();
  mlx_cumsum(&r, a, 0, false, true, cpu);
  double got[3];
  CHECK(read_all(r, got) == 3 && got[1] == -56 && got[2] == 44);
  mlx_array_free(r);
  mlx_array_free(a);
  /* uint64 above 2^63 orders correctly */
  uint64_t big[3] = {5, UINT64_MAX, UINT64_C(1) << 63};
  a = mlx_array_new_data(big, &n, 1, MLX_UINT64);
  r = mlx_array_new();
  mlx_cummax(&r, a, 0, false, true, cpu);
  const uint64_t* p = mlx_array_data_uint64(r);
  CHECK(p && p[0] == 5 && p[1] == UINT64_MAX && p[2] == UINT64_MAX);
  mlx_array_free(r);
  mlx_array_free(a);
}

TEST(test_half_scans_and_nan) {
  int n = 5;
  double x[5] = {1, NAN, 3, 0.5, 2};
  mlx_array a = arr_of(x, &n, 1, MLX_BFLOAT16);
  check_scan(CMAX, a, x, 0, false, true, -INFINITY, MLX_BFLOAT16, 0);
  check_scan(CMIN, a, x, 0, true, true, INFINITY, MLX_BFLOAT16, 0);
  check_scan(CSUM, a, x, 0, false, true, 0, MLX_BFLOAT16, 0);
  mlx_array_free(a);
  double y[5] = {0.1, 0.2, 0.3, 0.4, 0.5};
  a = arr_of(y, &n, 1, MLX_FLOAT16);
  double yh[5];
  read_all(a, yh);
  check_scan(CSUM, a, yh, 0, false, true, 0, MLX_FLOAT16, 1e-3);
  check_scan(CLSE, a, yh, 0, true, false, -INFINITY, MLX_FLOAT16, 1e-3);
  mlx_array_free(a);
}

TEST(test_scan_empty_and_size_one) {
  int shape[2] = {0, 4};
  mlx_array a = arr_of(NULL, shape, 2, MLX_FLOAT32), r = mlx_array_new();
  CHECK_EQ_INT(mlx_cumsum(&r, a, 0, false, true, cpu), 0);
  CHECK_EQ_INT(mlx_array_size(r), 0);
  CHECK_EQ_INT(mlx_cumprod(&r, a, 1, true, false, cpu), 0);
  CHECK_EQ_INT(mlx_array_eval(r), 0);
  mlx_array_free(a);
  int one[2] = {3, 1};
  double x[3] = {2, 3, 4};
  a = arr_of(x, one, 2, MLX_FLOAT32);
  check_scan(CSUM, a, x, 1, false, true, 0, MLX_FLOAT32, 0);
  check_scan(CPROD, a, x, 1, false, false, 1, MLX_FLOAT32, 0);
  mlx_array_free(a);
  mlx_array_free(r);
}

TEST(test_scan_errors) {
  int n = 3;
  double x[3] = {1, 2, 3};
  mlx_array a = arr_of(x, &n, 1, MLX_FLOAT32), r = mlx_array_new(), empty = mlx_array_new();
  CHECK(mlx_cumsum(&r, a, 1, false, true, cpu) != 0);
  CHECK(strstr(mlxc_last_error(), "out of bounds") != NULL);
  CHECK(mlx_cummax(&r, a, -2, false, true, cpu) != 0);
  CHECK(mlx_logcumsumexp(&r, empty, 0, false, true, cpu) != 0);
  CHECK(strstr(mlxc_last_error(), "empty array") != NULL);
  mlx_array s = mlx_array_new_float(1.0f);
  CHECK(mlx_cumprod(&r, s, 0, false, true, cpu) != 0); /* a 0-d array has no axis */
  CHECK(r.ctx == NULL);
  mlx_array_free(s);
  mlx_array_free(a);
}

int main(void) {
  cpu = mlx_default_cpu_stream_new();
  mlxc_set_errors_quiet(1);
  RUN(test_every_scan_axis_direction_and_inclusion_float32);
  RUN(test_scans_of_strided_views);
  RUN(test_integer_scans_dtypes_and_identities);
  RUN(test_half_scans_and_nan);
  RUN(test_scan_empty_and_size_one);
  RUN(test_scan_errors);
  mlx_stream_free(cpu);
  return TEST_SUMMARY();
}
