/* mlxc_fast_argmax_logsumexp against the ops it fuses, bit for bit on the CPU: mlx_argmax_axis(x, -1),
 * mlx_take_along_axis of x as float32 at that index (the last axis then dropped) and
 * mlx_logsumexp_axis of x as float32 (float64 x stays float64). */
#include <stdint.h>
#include <string.h>

#include "mlx/c/mlx.h"
#include "mlxc/error.h"
#include "mlxc/fast.h"
#include "bits_test_util.h"
#include "test_util.h"

static mlx_stream cpu;

static unsigned rng_state = 4242;
static float frand(void) {
  rng_state = rng_state * 1103515245u + 12345u;
  return ((rng_state >> 8) & 0xffff) / 32768.0f - 1.0f;
}

/* Row kinds: what each row of a test input holds (v its length). */
enum { ROW_RANDOM, ROW_TIES, ROW_NAN, ROW_INF, ROW_ALL_NEG_INF, ROW_LAST_MAX, ROW_KINDS };

static void fill_row(float* row, int v, int kind) {
  for (int j = 0; j < v; j++) row[j] = 8.0f * frand();
  switch (kind) {
    case ROW_TIES: /* the maximum at three places: the first wins */
      row[v - 1] = row[v / 2] = row[v / 3] = 50.0f;
      break;
    case ROW_NAN: /* a larger value first, then two NaNs (the second with its sign set): the first NaN wins */
      row[0] = 50.0f;
      row[v - 1] = -NAN;
      row[v / 2] = NAN;
      break;
    case ROW_INF:
      row[3 * v / 4] = INFINITY;
      row[v / 4] = INFINITY;
      break;
    case ROW_ALL_NEG_INF:
      for (int j = 0; j < v; j++) row[j] = -INFINITY;
      break;
    case ROW_LAST_MAX: /* -inf around, the maximum at the end */
      for (int j = 0; j < v; j += 2) row[j] = -INFINITY;
      row[v - 1] = 50.0f;
      break;
    default: break;
  }
}

/* The index a row of `kind` must give (-1: only the composed ops say). */
static long expected_index(int kind, int v) {
  switch (kind) {
    case ROW_TIES: return v / 3;
    case ROW_NAN: return v / 2;
    case ROW_INF: return v / 4;
    case ROW_ALL_NEG_INF: return 0;
    case ROW_LAST_MAX: return v - 1;
    default: return -1;
  }
}

/* How the input reaches the op: contiguous, or a strided view of another buffer. */
enum { LAYOUT_CONTIGUOUS, LAYOUT_SWAPPED, LAYOUT_STEP2, LAYOUT_NEG_STEP, LAYOUTS };
static const char* const layout_names[LAYOUTS] = {"contiguous", "swapped last axes", "step 2", "step -2"};

/* x of `shape` (row-major values `logical`, float32) in `dtype`, laid out as `layout` says (NULL
 * handle when the layout does not apply to the shape). The values are rounded to the dtype
 * before the view is taken, so that x's values are the same in every layout. */
static mlx_array make_input(const float* logical, const int* shape, int ndim, mlx_dtype dtype, int layout) {
  int rows = 1, v = shape[ndim - 1];
  for (int d = 0; d < ndim - 1; d++) rows *= shape[d];
  size_t n = (size_t)rows * (size_t)v;
  int phys_shape[8];
  memcpy(phys_shape, shape, sizeof(int) * (size_t)ndim);
  mlx_array x = mlx_array_new();
  if (layout == LAYOUT_CONTIGUOUS) {
    x = mlx_array_new_data(logical, shape, ndim, MLX_FLOAT32);
    mlx_astype(&x, x, dtype, cpu);
  } else if (layout == LAYOUT_SWAPPED) { /* (..., V, M) stored, read as (..., M, V) */
    if (ndim < 2) return x;
    int m = shape[ndim - 2], outer = rows / m;
    float* host = malloc(sizeof(float) * n);
    for (int o = 0; o < outer; o++)
      for (int i = 0; i < m; i++)
        for (int j = 0; j < v; j++) host[((size_t)o * v + j) * m + i] = logical[((size_t)o * m + i) * v + j];
    phys_shape[ndim - 2] = v;
    phys_shape[ndim - 1] = m;
    x = mlx_array_new_data(host, phys_shape, ndim, MLX_FLOAT32);
    free(host);
    mlx_astype(&x, x, dtype, cpu);
    mlx_array_eval(x);
    mlx_swapaxes(&x, x, ndim - 2, ndim - 1, cpu);
  } else { /* (..., 2V) stored, every other element read (forwards or backwards); the rest would win argmax */
    float* host = malloc(sizeof(float) * n * 2);
    for (size_t k = 0; k < n * 2; k++) host[k] = 1000.0f;
    for (int r = 0; r < rows; r++)
      for (int j = 0; j < v; j++) {
        int at = layout == LAYOUT_STEP2 ? 2 * j : 2 * v - 1 - 2 * j;
        host[(size_t)r * 2 * v + at] = logical[(size_t)r * v + j];
      }
    phys_shape[ndim - 1] = 2 * v;
    x = mlx_array_new_data(host, phys_shape, ndim, MLX_FLOAT32);
    free(host);
    mlx_astype(&x, x, dtype, cpu);
    mlx_array_eval(x);
    int start[8] = {0}, stop[8], step[8];
    for (int d = 0; d < ndim; d++) {
      stop[d] = phys_shape[d];
      step[d] = 1;
    }
    if (layout == LAYOUT_STEP2) {
      step[ndim - 1] = 2;
    } else {
      start[ndim - 1] = 2 * v - 1;
      stop[ndim - 1] = -(2 * v + 1); /* past the front */
      step[ndim - 1] = -2;
    }
    mlx_slice(&x, x, start, (size_t)ndim, stop, (size_t)ndim, step, (size_t)ndim, cpu);
  }
  mlx_array_eval(x);
  return x;
}

/* The fused op on x against the composed ops: every output's dtype, shape and bytes. The fused
 * results are left in got[3] (index, value, lse) for the caller's own checks (freed by it). */
static void check_against_composed(mlx_array x, const char* what, mlx_array got[3]) {
  got[0] = mlx_array_new();
  got[1] = mlx_array_new();
  got[2] = mlx_array_new();
  CHECK_MSG(mlxc_fast_argmax_logsumexp(&got[0], &got[1], &got[2], x, cpu) == 0, "%s: the op failed: %s", what,
            mlxc_last_error());
  mlx_array want[3] = {mlx_array_new(), mlx_array_new(), mlx_array_new()}, kept = mlx_array_new();
  mlx_array xf = mlx_array_new(); /* x as float32 (float64 stays) */
  CHECK_EQ_INT(mlx_astype(&xf, x, mlx_array_dtype(x) == MLX_FLOAT64 ? MLX_FLOAT64 : MLX_FLOAT32, cpu), 0);
  CHECK_EQ_INT(mlx_argmax_axis(&want[0], x, -1, false, cpu), 0);
  CHECK_EQ_INT(mlx_expand_dims(&kept, want[0], -1, cpu), 0); /* the last axis kept as 1 */
  CHECK_EQ_INT(mlx_take_along_axis(&want[1], xf, kept, -1, cpu), 0);
  CHECK_EQ_INT(mlx_squeeze_axis(&want[1], want[1], -1, cpu), 0);
  CHECK_EQ_INT(mlx_logsumexp_axis(&want[2], xf, -1, false, cpu), 0);
  static const char* const names[3] = {"index", "value", "lse"};
  for (int i = 0; i < 3; i++) {
    long at = bits_first_difference(got[i], want[i]);
    CHECK_MSG(at == -1, "%s: %s differs at element %ld (got %.9g, want %.9g)", what, names[i], at,
              bits_value_at(got[i], at < 0 ? 0 : at, cpu), bits_value_at(want[i], at < 0 ? 0 : at, cpu));
  }
  for (int i = 0; i < 3; i++) mlx_array_free(want[i]);
  mlx_array_free(kept);
  mlx_array_free(xf);
}

/* One shape, dtype and layout; row r holds kind (r + first_kind) % ROW_KINDS. */
static void check_case(const int* shape, int ndim, mlx_dtype dtype, int layout, int first_kind) {
  int rows = 1, v = shape[ndim - 1];
  for (int d = 0; d < ndim - 1; d++) rows *= shape[d];
  float* logical = malloc(sizeof(float) * (size_t)rows * (size_t)v);
  for (int r = 0; r < rows; r++) fill_row(logical + (size_t)r * v, v, (r + first_kind) % ROW_KINDS);
  mlx_array x = make_input(logical, shape, ndim, dtype, layout);
  free(logical);
  if (!x.ctx) return;
  char what[160];
  int len = snprintf(what, sizeof what, "dtype %d, shape (", (int)dtype);
  for (int d = 0; d < ndim; d++) len += snprintf(what + len, sizeof what - (size_t)len, d ? ", %d" : "%d", shape[d]);
  snprintf(what + len, sizeof what - (size_t)len, "), %s, first row kind %d", layout_names[layout], first_kind);
  mlx_array got[3];
  check_against_composed(x, what, got);
  /* And what each special row must give, whatever the composed ops say. */
  const uint32_t* index = mlx_array_data_uint32(got[0]);
  CHECK_MSG(index != NULL, "%s: index unreadable", what);
  for (int r = 0; index && r < rows; r++) {
    int kind = (r + first_kind) % ROW_KINDS;
    long want = expected_index(kind, v);
    if (want >= 0)
      CHECK_MSG(index[r] == (uint32_t)want, "%s: row %d (kind %d): index %u, want %ld", what, r, kind, index[r], want);
    double value = bits_value_at(got[1], r, cpu), lse = bits_value_at(got[2], r, cpu);
    bool ok = kind == ROW_TIES || kind == ROW_LAST_MAX ? value == 50.0
              : kind == ROW_NAN                       ? isnan(value) && isnan(lse)
              : kind == ROW_INF                       ? value == INFINITY && lse == INFINITY
              : kind == ROW_ALL_NEG_INF               ? value == -INFINITY && lse == -INFINITY
                                                      : isfinite(value) && isfinite(lse) && lse >= value;
    CHECK_MSG(ok, "%s: row %d (kind %d): value %.9g, lse %.9g", what, r, kind, value, lse);
  }
  for (int i = 0; i < 3; i++) mlx_array_free(got[i]);
  mlx_array_free(x);
}

TEST(test_argmax_lse_equals_composed) {
  static const int s_vocab[2] = {1, 151936}, s_rows[2] = {3, 1000}, s_3d[3] = {2, 3, 257}, s_one[2] = {1, 1};
  static const int s_1d[1] = {7}, s_many[2] = {8, 33};
  const struct {
    const int* shape;
    int ndim;
  } shapes[] = {{s_vocab, 2}, {s_rows, 2}, {s_3d, 3}, {s_one, 2}, {s_1d, 1}, {s_many, 2}};
  const mlx_dtype dtypes[4] = {MLX_FLOAT32, MLX_FLOAT16, MLX_BFLOAT16, MLX_FLOAT64};
  for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
    for (int t = 0; t < 4; t++)
      for (int layout = 0; layout < LAYOUTS; layout++)
        for (int kind = 0; kind < ROW_KINDS; kind++)
          check_case(shapes[i].shape, shapes[i].ndim, dtypes[t], layout, kind);
}

/* Broadcast inputs (stride 0): along the last axis every row is one value repeated (index 0),
 * along a leading axis one row read for several. */
TEST(test_argmax_lse_broadcast_inputs) {
  const float column[3] = {1.5f, NAN, -INFINITY};
  int cs[2] = {3, 1}, to[2] = {3, 9};
  const mlx_dtype dtypes[3] = {MLX_FLOAT32, MLX_FLOAT16, MLX_BFLOAT16};
  for (int t = 0; t < 3; t++) {
    mlx_array x = mlx_array_new_data(column, cs, 2, MLX_FLOAT32), got[3];
    mlx_astype(&x, x, dtypes[t], cpu);
    mlx_broadcast_to(&x, x, to, 2, cpu);
    check_against_composed(x, "broadcast last axis", got);
    const uint32_t* index = mlx_array_data_uint32(got[0]);
    CHECK(index && index[0] == 0 && index[1] == 0 && index[2] == 0);
    for (int i = 0; i < 3; i++) mlx_array_free(got[i]);
    mlx_array_free(x);

    int rs[2] = {1, 300}, wide[3] = {4, 2, 300};
    float row[300];
    fill_row(row, 300, ROW_RANDOM);
    x = mlx_array_new_data(row, rs, 2, MLX_FLOAT32);
    mlx_astype(&x, x, dtypes[t], cpu);
    mlx_broadcast_to(&x, x, wide, 3, cpu);
    check_against_composed(x, "broadcast leading axes", got);
    for (int i = 0; i < 3; i++) mlx_array_free(got[i]);
    mlx_array_free(x);
  }
}

/* A failing call returns non-zero with a message and leaves the result handles as they were. */
static void check_fails(const mlx_array x, const char* what) {
  mlx_array a = mlx_array_new_float(1.0f), b = mlx_array_new_float(2.0f), c = mlx_array_new_float(3.0f);
  void* before[3] = {a.ctx, b.ctx, c.ctx};
  mlxc_clear_error();
  int status = mlxc_fast_argmax_logsumexp(&a, &b, &c, x, cpu);
  CHECK_MSG(status != 0, "%s: accepted", what);
  const char* msg = mlxc_last_error();
  CHECK_MSG(msg && msg[0], "%s: no message", what);
  CHECK_MSG(a.ctx == before[0] && b.ctx == before[1] && c.ctx == before[2], "%s: results replaced", what);
  float fa = 0, fb = 0, fc = 0;
  if (a.ctx == before[0] && b.ctx == before[1] && c.ctx == before[2]) { /* still usable */
    CHECK(mlx_array_item_float32(&fa, a) == 0 && fa == 1.0f);
    CHECK(mlx_array_item_float32(&fb, b) == 0 && fb == 2.0f);
    CHECK(mlx_array_item_float32(&fc, c) == 0 && fc == 3.0f);
  }
  mlx_array_free(a);
  mlx_array_free(b);
  mlx_array_free(c);
}

TEST(test_argmax_lse_errors) {
  const int32_t ints[6] = {3, 1, 4, 1, 5, 9};
  const bool flags[3] = {true, false, true};
  int s23[2] = {2, 3}, s3[1] = {3}, s20[2] = {2, 0}, s02[2] = {0, 4};
  mlx_array i32 = mlx_array_new_data(ints, s23, 2, MLX_INT32), flag = mlx_array_new_data(flags, s3, 1, MLX_BOOL);
  mlx_array scalar = mlx_array_new_float(2.5f), empty_axis = mlx_array_new_data(NULL, s20, 2, MLX_FLOAT32);
  mlx_array no_rows = mlx_array_new_data(NULL, s02, 2, MLX_FLOAT32), cplx = mlx_array_new_complex(1.0f, 2.0f);
  mlx_array none = mlx_array_new();
  mlx_broadcast_to(&cplx, cplx, s3, 1, cpu);
  mlxc_set_errors_quiet(1);
  check_fails(i32, "int32 x");
  check_fails(flag, "bool x");
  check_fails(cplx, "complex64 x");
  check_fails(scalar, "0-d x");
  check_fails(empty_axis, "empty last axis (2, 0)");
  check_fails(none, "empty handle");
  mlxc_set_errors_quiet(0);
  /* No rows but a non-empty last axis (0, 4): the op does what the composed reductions do (MLX's
   * argmax refuses zero elements), failing cleanly or giving three empty (0) results. */
  mlx_array got[3] = {mlx_array_new(), mlx_array_new(), mlx_array_new()}, ref = mlx_array_new();
  mlxc_set_errors_quiet(1);
  int composed = mlx_argmax_axis(&ref, no_rows, -1, false, cpu);
  mlxc_set_errors_quiet(0);
  if (composed) {
    mlxc_set_errors_quiet(1);
    check_fails(no_rows, "no rows (0, 4), as the composed argmax");
    mlxc_set_errors_quiet(0);
  } else {
    CHECK_EQ_INT(mlxc_fast_argmax_logsumexp(&got[0], &got[1], &got[2], no_rows, cpu), 0);
    for (int i = 0; i < 3; i++) {
      CHECK_EQ_INT(mlx_array_eval(got[i]), 0);
      CHECK_EQ_INT(mlx_array_ndim(got[i]), 1);
      CHECK_EQ_INT(mlx_array_size(got[i]), 0);
    }
  }
  mlx_array all[] = {i32, flag, scalar, empty_axis, no_rows, cplx, got[0], got[1], got[2], ref};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) mlx_array_free(all[i]);
}

/* On the default CPU stream: index uint32, value and lse float32 (float64 for float64 x), each
 * x's shape without its last axis (0-d for a 1-D x), known before evaluation. */
TEST(test_argmax_lse_shapes_and_dtypes) {
  mlx_stream def = mlx_default_cpu_stream_new();
  const mlx_dtype dtypes[4] = {MLX_FLOAT32, MLX_FLOAT16, MLX_BFLOAT16, MLX_FLOAT64};
  int s3[3] = {2, 3, 5}, s1[1] = {11};
  for (int t = 0; t < 4; t++)
    for (int k = 0; k < 2; k++) {
      const int* shape = k ? s1 : s3;
      int ndim = k ? 1 : 3, n = k ? 11 : 30;
      float host[30];
      for (int i = 0; i < n; i++) host[i] = frand();
      mlx_array x = mlx_array_new_data(host, shape, ndim, MLX_FLOAT32);
      mlx_astype(&x, x, dtypes[t], def);
      mlx_array index = mlx_array_new(), value = mlx_array_new(), lse = mlx_array_new();
      CHECK_EQ_INT(mlxc_fast_argmax_logsumexp(&index, &value, &lse, x, def), 0);
      CHECK_EQ_INT(mlx_array_dtype(index), MLX_UINT32);
      /* float32 statistics for float32 and half x, float64 for float64 x */
      const mlx_dtype stats = dtypes[t] == MLX_FLOAT64 ? MLX_FLOAT64 : MLX_FLOAT32;
      CHECK_EQ_INT(mlx_array_dtype(value), stats);
      CHECK_EQ_INT(mlx_array_dtype(lse), stats);
      mlx_array outs[3] = {index, value, lse};
      for (int i = 0; i < 3; i++) {
        CHECK_EQ_INT(mlx_array_ndim(outs[i]), ndim - 1);
        for (int d = 0; d < ndim - 1; d++) CHECK_EQ_INT(mlx_array_shape(outs[i])[d], shape[d]);
        CHECK_EQ_INT(mlx_array_size(outs[i]), n / shape[ndim - 1]);
        CHECK_EQ_INT(mlx_array_eval(outs[i]), 0);
        CHECK_EQ_INT(mlx_array_ndim(outs[i]), ndim - 1);
      }
      if (k) { /* 0-d results read as items */
        uint32_t at = 99;
        CHECK_EQ_INT(mlx_array_item_uint32(&at, index), 0);
        CHECK(at < 11);
        float best = -INFINITY;
        uint32_t best_at = 0;
        for (uint32_t i = 0; i < 11; i++) {
          float xi = (float)bits_value_at(x, (long)i, cpu);
          if (xi > best) best = xi, best_at = i;
        }
        CHECK_EQ_INT(at, best_at);
      }
      /* The results as inputs to later ops, and x's own handle taking a result. */
      mlx_array sum = mlx_array_new();
      CHECK_EQ_INT(mlx_subtract(&sum, value, lse, def), 0);
      CHECK_EQ_INT(mlx_array_eval(sum), 0);
      mlx_array alias_index = mlx_array_new(), alias_value = mlx_array_new(), got[3];
      check_against_composed(x, "default stream", got);
      CHECK_EQ_INT(mlxc_fast_argmax_logsumexp(&alias_index, &alias_value, &x, x, def), 0);
      CHECK_EQ_INT(bits_first_difference(alias_index, got[0]), -1);
      CHECK_EQ_INT(bits_first_difference(alias_value, got[1]), -1);
      CHECK_EQ_INT(bits_first_difference(x, got[2]), -1);
      mlx_array all[] = {x, index, value, lse, sum, alias_index, alias_value, got[0], got[1], got[2]};
      for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) mlx_array_free(all[i]);
    }
  mlx_stream_free(def);
}

int main(void) {
  cpu = mlx_default_cpu_stream_new();
  RUN(test_argmax_lse_equals_composed);
  RUN(test_argmax_lse_broadcast_inputs);
  RUN(test_argmax_lse_errors);
  RUN(test_argmax_lse_shapes_and_dtypes);
  mlx_stream_free(cpu);
  return TEST_SUMMARY();
}
