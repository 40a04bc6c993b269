/* sort, argsort, partition, argpartition and topk against a stable insertion sort written here
 * (NaN after every number), and the partition property checked element by element. */
#include "reduce_test_util.h"
#include "test_util.h"

/* NaN-last total order on values. */
static bool before(double a, double b) {
  if (isnan(a)) return false;
  if (isnan(b)) return true;
  return a < b;
}

/* Stable insertion sort of the indices of v[0..n), stride s. */
static void ref_argsort(const double* v, long n, long s, long* order) {
  for (long i = 0; i < n; i++) order[i] = i;
  for (long i = 1; i < n; i++) {
    long cur = order[i], j = i;
    while (j > 0 && before(v[cur * s], v[order[j - 1] * s])) {
      order[j] = order[j - 1];
      j--;
    }
    order[j] = cur;
  }
}

static bool same_value(double a, double b) { return a == b || (isnan(a) && isnan(b)); }

/* Shape, stride along the axis and lane bases of a row-major array. */
typedef struct {
  long n, len, stride, lanes;
} lane_info;

static lane_info lanes_of(mlx_array a, int axis) {
  int ndim = (int)mlx_array_ndim(a);
  int ax = axis < 0 ? axis + ndim : axis;
  lane_info li = {1, mlx_array_dim(a, ax), 1, 0};
  for (int d = 0; d < ndim; d++) li.n *= mlx_array_dim(a, d);
  for (int d = ax + 1; d < ndim; d++) li.stride *= mlx_array_dim(a, d);
  li.lanes = li.len ? li.n / li.len : 0;
  return li;
}
static long lane_base(lane_info li, long lane) { return (lane / li.stride) * li.stride * li.len + lane % li.stride; }

/* sort and argsort along axis of a (logical values x) equal the stable reference exactly. */
static void check_sorts(mlx_array a, const double* x, int axis) {
  lane_info li = lanes_of(a, axis);
  mlx_array s = mlx_array_new(), i = mlx_array_new();
  CHECK_EQ_INT(mlx_sort_axis(&s, a, axis, cpu), 0);
  CHECK_EQ_INT(mlx_argsort_axis(&i, a, axis, cpu), 0);
  CHECK_EQ_INT(mlx_array_dtype(s), mlx_array_dtype(a));
  CHECK_EQ_INT(mlx_array_dtype(i), MLX_UINT32);
  double* sorted = malloc(sizeof(double) * (size_t)(li.n + 1));
  double* idx = malloc(sizeof(double) * (size_t)(li.n + 1));
  long* order = malloc(sizeof(long) * (size_t)(li.len + 1));
  CHECK_EQ_INT(read_all(s, sorted), li.n);
  CHECK_EQ_INT(read_all(i, idx), li.n);
  for (long lane = 0; lane < li.lanes; lane++) {
    long base = lane_base(li, lane);
    ref_argsort(x + base, li.len, li.stride, order);
    for (long k = 0; k < li.len; k++) {
      CHECK_MSG(idx[base + k * li.stride] == order[k], "argsort lane %ld pos %ld: %g vs %ld", lane, k,
                idx[base + k * li.stride], order[k]);
      CHECK(same_value(sorted[base + k * li.stride], x[base + order[k] * li.stride]));
    }
  }
  free(sorted);
  free(idx);
  free(order);
  mlx_array_free(s);
  mlx_array_free(i);
}

/* partition/argpartition at kth: values are a permutation of the lane, element kth is the one a
 * sort puts there, none before it is after it in the order, none after it before it. */
static void check_partitions(mlx_array a, const double* x, int kth, int axis) {
  lane_info li = lanes_of(a, axis);
  int k = kth < 0 ? kth + (int)li.len : kth;
  mlx_array p = mlx_array_new(), ip = mlx_array_new();
  CHECK_EQ_INT(mlx_partition_axis(&p, a, kth, axis, cpu), 0);
  CHECK_EQ_INT(mlx_argpartition_axis(&ip, a, kth, axis, cpu), 0);
  double* part = malloc(sizeof(double) * (size_t)li.n);
  double* idx = malloc(sizeof(double) * (size_t)li.n);
  long* order = malloc(sizeof(long) * (size_t)li.len);
  bool* used = malloc((size_t)li.len);
  CHECK_EQ_INT(read_all(p, part), li.n);
  CHECK_EQ_INT(read_all(ip, idx), li.n);
  for (long lane = 0; lane < li.lanes; lane++) {
    long base = lane_base(li, lane);
    ref_argsort(x + base, li.len, li.stride, order);
    double pivot = x[base + order[k] * li.stride];
    memset(used, 0, (size_t)li.len);
    for (long j = 0; j < li.len; j++) {
      double v = part[base + j * li.stride];
      long from = (long)idx[base + j * li.stride];
      CHECK(from >= 0 && from < li.len && !used[from]); /* a permutation */
      if (from >= 0 && from < li.len) used[from] = true;
      double via_index = x[base + from * li.stride];
      if (j == k) CHECK(same_value(v, pivot) && same_value(via_index, pivot));
      if (j < k) CHECK(!before(pivot, v) && !before(pivot, via_index));
      if (j > k) CHECK(!before(v, pivot) && !before(via_index, pivot));
    }
  }
  free(part);
  free(idx);
  free(order);
  free(used);
  mlx_array_free(p);
  mlx_array_free(ip);
}

TEST(test_sort_every_axis_with_ties_and_nan) {
  int shape[3] = {4, 9, 6};
  double x[216];
  fill_small_ints(x, 216, -3, 3); /* many ties: stability matters */
  x[5] = NAN, x[40] = NAN, x[41] = INFINITY, x[100] = -INFINITY;
  mlx_array a = arr_of(x, shape, 3, MLX_FLOAT32);
  for (int axis = -3; axis < 3; axis++) {
    check_sorts(a, x, axis);
    int n = mlx_array_dim(a, axis < 0 ? axis + 3 : axis);
    for (int kth = -n; kth < n; kth++) check_partitions(a, x, kth, axis);
  }
  mlx_array_free(a);
}

TEST(test_argsort_is_stable) {
  int n = 12;
  double x[12] = {2, 1, 2, 1, 0, 2, 1, 0, 0, 2, 1, 1};
  mlx_array a = arr_of(x, &n, 1, MLX_INT16), r = mlx_array_new();
  mlx_argsort(&r, a, cpu);
  double got[12], want[12] = {4, 7, 8, 1, 3, 6, 10, 11, 0, 2, 5, 9};
  CHECK(read_all(r, got) == 12);
  for (int i = 0; i < 12; i++) CHECK_EQ_INT(got[i], want[i]);
  mlx_array_free(a);
  mlx_array_free(r);
}

TEST(test_sort_dtypes) {
  const mlx_dtype dtypes[] = {MLX_BOOL, MLX_UINT8,  MLX_UINT32,   MLX_INT8,    MLX_INT32,
                              MLX_INT64, MLX_FLOAT16, MLX_BFLOAT16, MLX_FLOAT64};
  int shape[2] = {5, 8};
  double x[40];
  for (size_t t = 0; t < sizeof dtypes / sizeof *dtypes; t++) {
    bool unsigned_ = dtypes[t] == MLX_BOOL || dtypes[t] == MLX_UINT8 || dtypes[t] == MLX_UINT32;
    fill_small_ints(x, 40, unsigned_ ? 0 : -4, dtypes[t] == MLX_BOOL ? 1 : 4);
    mlx_array a = arr_of(x, shape, 2, dtypes[t]);
    check_sorts(a, x, 1);
    check_sorts(a, x, 0);
    check_partitions(a, x, 3, 1);
    check_partitions(a, x, -1, 0);
    mlx_array_free(a);
  }
  /* 64-bit extremes order exactly */
  uint64_t u[4] = {UINT64_MAX, 3, UINT64_C(1) << 63, 0};
  int n = 4;
  mlx_array a = mlx_array_new_data(u, &n, 1, MLX_UINT64), r = mlx_array_new();
  mlx_sort(&r, a, cpu);
  const uint64_t* p = mlx_array_data_uint64(r);
  CHECK(p && p[0] == 0 && p[1] == 3 && p[2] == UINT64_C(1) << 63 && p[3] == UINT64_MAX);
  mlx_array_free(a);
  int64_t s[3] = {INT64_MAX, INT64_MIN, INT64_MAX - 1};
  n = 3;
  a = mlx_array_new_data(s, &n, 1, MLX_INT64);
  mlx_sort(&r, a, cpu);
  const int64_t* q = mlx_array_data_int64(r);
  CHECK(q && q[0] == INT64_MIN && q[1] == INT64_MAX - 1 && q[2] == INT64_MAX);
  mlx_array_free(a);
  mlx_array_free(r);
}

TEST(test_sort_strided_views_and_flattened_forms) {
  int shape[2] = {5, 6};
  double x[30];
  fill_uniform(x, 30, -1, 1);
  mlx_array a = arr_of(x, shape, 2, MLX_FLOAT64), t = mlx_array_new(), s = mlx_array_new();
  mlx_transpose(&t, a, cpu);
  int start[2] = {4, 5}, stop[2] = {-6, -7}, step[2] = {-2, -1};
  mlx_slice(&s, a, start, 2, stop, 2, step, 2, cpu);
  mlx_array views[2] = {t, s};
  for (int v = 0; v < 2; v++) {
    double logical[30];
    CHECK(read_all(views[v], logical) > 0);
    check_sorts(views[v], logical, 0);
    check_sorts(views[v], logical, -1);
    check_partitions(views[v], logical, 1, 1);
  }
  /* The forms without an axis sort the flattened array. */
  mlx_array r = mlx_array_new();
  double logical[30];
  read_all(t, logical);
  int n = 30;
  mlx_array flat = arr_of(logical, &n, 1, MLX_FLOAT64);
  mlx_sort(&r, t, cpu);
  CHECK_EQ_INT(mlx_array_ndim(r), 1);
  CHECK_EQ_INT(mlx_array_dim(r, 0), 30);
  check_sorts(flat, logical, 0);
  double got[30];
  read_all(r, got);
  long order[30];
  ref_argsort(logical, 30, 1, order);
  for (int i = 0; i < 30; i++) CHECK(got[i] == logical[order[i]]);
  CHECK_EQ_INT(mlx_argpartition(&r, t, 7, cpu), 0);
  CHECK_EQ_INT(mlx_array_ndim(r), 1);
  mlx_array_free(a);
  mlx_array_free(t);
  mlx_array_free(s);
  mlx_array_free(r);
  mlx_array_free(flat);
}

/* topk: the k largest values along the axis (as a multiset), in any order. */
TEST(test_topk_returns_the_k_largest) {
  int shape[2] = {3, 10};
  double x[30];
  fill_small_ints(x, 30, -9, 9);
  mlx_array a = arr_of(x, shape, 2, MLX_INT32), r = mlx_array_new();
  for (int k = 0; k <= 10; k++) {
    CHECK_EQ_INT(mlx_topk_axis(&r, a, k, -1, cpu), 0);
    CHECK_EQ_INT(mlx_array_dim(r, 0), 3);
    CHECK_EQ_INT(mlx_array_dim(r, 1), k);
    double got[30];
    CHECK_EQ_INT(read_all(r, got), 3 * k);
    for (int row = 0; row < 3; row++) {
      long order[10];
      ref_argsort(x + row * 10, 10, 1, order);
      double want[10], have[10];
      for (int j = 0; j < k; j++) want[j] = x[row * 10 + order[10 - k + j]], have[j] = got[row * k + j];
      /* compare as sorted multisets */
      long o1[10], o2[10];
      ref_argsort(want, k, 1, o1);
      ref_argsort(have, k, 1, o2);
      for (int j = 0; j < k; j++) CHECK(want[o1[j]] == have[o2[j]]);
    }
  }
  /* flattened form, along axis 0 */
  CHECK_EQ_INT(mlx_topk(&r, a, 4, cpu), 0);
  CHECK_EQ_INT(mlx_array_ndim(r), 1);
  CHECK_EQ_INT(mlx_array_dim(r, 0), 4);
  CHECK_EQ_INT(mlx_topk_axis(&r, a, 2, 0, cpu), 0);
  CHECK_EQ_INT(mlx_array_dim(r, 0), 2);
  CHECK_EQ_INT(mlx_array_dim(r, 1), 10);
  double got[20];
  read_all(r, got);
  for (int col = 0; col < 10; col++) {
    double lo = fmin(got[col], got[10 + col]), hi = fmax(got[col], got[10 + col]);
    double c[3] = {x[col], x[10 + col], x[20 + col]};
    double mn = fmin(c[0], fmin(c[1], c[2])), mx = fmax(c[0], fmax(c[1], c[2]));
    CHECK(hi == mx && lo == c[0] + c[1] + c[2] - mn - mx);
  }
  mlx_array_free(a);
  mlx_array_free(r);
}

TEST(test_sort_empty_and_errors) {
  int shape[2] = {0, 3};
  mlx_array a = arr_of(NULL, shape, 2, MLX_FLOAT32), r = mlx_array_new(), empty = mlx_array_new();
  CHECK_EQ_INT(mlx_sort_axis(&r, a, 0, cpu), 0);
  CHECK_EQ_INT(mlx_array_eval(r), 0);
  CHECK_EQ_INT(mlx_argsort_axis(&r, a, 1, cpu), 0);
  CHECK_EQ_INT(mlx_array_eval(r), 0);
  CHECK(mlx_partition_axis(&r, a, 0, 0, cpu) != 0); /* no element 0 along an empty axis */
  CHECK(strstr(mlxc_last_error(), "kth") != NULL);
  mlx_array_free(a);
  int n = 4;
  double x[4] = {3, 1, 2, 0};
  a = arr_of(x, &n, 1, MLX_FLOAT32);
  mlx_array_free(r);
  r = mlx_array_new();
  CHECK(mlx_partition(&r, a, 4, cpu) != 0);
  CHECK(mlx_argpartition(&r, a, -5, cpu) != 0);
  CHECK(mlx_sort_axis(&r, a, 1, cpu) != 0);
  CHECK(strstr(mlxc_last_error(), "out of bounds") != NULL);
  CHECK(mlx_argsort_axis(&r, a, -2, cpu) != 0);
  CHECK(mlx_topk(&r, a, 5, cpu) != 0);
  CHECK(mlx_topk_axis(&r, a, -1, 0, cpu) != 0);
  CHECK(mlx_topk_axis(&r, a, 1, 3, cpu) != 0);
  CHECK(mlx_sort(&r, empty, cpu) != 0);
  CHECK(strstr(mlxc_last_error(), "empty array") != NULL);
  CHECK(r.ctx == NULL);
  mlx_array_free(a);
}

int main(void) {
  cpu = mlx_default_cpu_stream_new();
  mlxc_set_errors_quiet(1);
  RUN(test_sort_every_axis_with_ties_and_nan);
  RUN(test_argsort_is_stable);
  RUN(test_sort_dtypes);
  RUN(test_sort_strided_views_and_flattened_forms);
  RUN(test_topk_returns_the_k_largest);
  RUN(test_sort_empty_and_errors);
  mlx_stream_free(cpu);
  return TEST_SUMMARY();
}
