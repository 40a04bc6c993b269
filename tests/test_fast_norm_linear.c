/* mlxc/fast.h's linear_residual and rms_norm_linear against references built here: the public
 * ops they stand for (matmul, add, addmm, gated_linear, fast.rms_norm) and float32 arithmetic
 * written out on the host (sumsq's sums of 4 squares, rms_norm's 1 / sqrt(ms + eps)). One
 * float16/bfloat16 row runs the fused kernel; float32 and several rows the composed ops. */
#include <float.h>
#include <stdint.h>

#include "mlx/c/mlx.h"
#include "mlxc/error.h"
#include "mlxc/fast.h"
#include "mlxc/half.h"
#include "test_util.h"

static mlx_stream cpu;
static mlx_array none;
static const mlx_optional_int unset = {0, false};

static unsigned rng_state = 4242;
static float frand(void) {
  rng_state = rng_state * 1103515245u + 12345u;
  return ((rng_state >> 8) & 0xffff) / 32768.0f - 1.0f;
}

/* An array of the shape with values uniform in [-scale, scale), stored in dtype. */
static mlx_array random_array(const int* shape, int ndim, float scale, mlx_dtype dtype) {
  int n = 1;
  for (int i = 0; i < ndim; i++) n *= shape[i];
  float* host = malloc(sizeof(float) * (size_t)(n ? n : 1));
  for (int i = 0; i < n; i++) host[i] = scale * frand();
  mlx_array a = mlx_array_new_data(host, shape, ndim, MLX_FLOAT32);
  free(host);
  mlx_astype(&a, a, dtype, cpu);
  return a;
}

/* a's values as float32 in a malloc'd buffer (the caller frees it); NULL when unreadable. */
static float* host_values(mlx_array a) {
  mlx_array f = mlx_array_new();
  float* out = NULL;
  if (!mlx_astype(&f, a, MLX_FLOAT32, cpu)) {
    const float* p = mlx_array_data_float32(f);
    out = p ? malloc(sizeof(float) * (mlx_array_size(f) + 1)) : NULL;
    if (out) memcpy(out, p, sizeof(float) * mlx_array_size(f));
  }
  mlx_array_free(f);
  return out;
}

/* Position of v among the values of dtype in order (float32 values that dtype holds exactly). */
static int64_t ordinal(float v, mlx_dtype dtype) {
  int64_t bits, sign_bit;
  if (dtype == MLX_FLOAT32) {
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    bits = u;
    sign_bit = INT64_C(1) << 31;
  } else {
    bits = dtype == MLX_FLOAT16 ? mlxc_float32_to_float16(v) : mlxc_float32_to_bfloat16(v);
    sign_bit = 1 << 15;
  }
  return bits & sign_bit ? -(bits & (sign_bit - 1)) : bits;
}

/* The largest distance in units in the last place of their dtype between values of a and b;
 * -1 when the dtypes or shapes differ or a value is unreadable. */
static int64_t max_ulps(mlx_array a, mlx_array b) {
  if (mlx_array_dtype(a) != mlx_array_dtype(b) || mlx_array_ndim(a) != mlx_array_ndim(b)) return -1;
  for (size_t i = 0; i < mlx_array_ndim(a); i++)
    if (mlx_array_shape(a)[i] != mlx_array_shape(b)[i]) return -1;
  float *pa = host_values(a), *pb = host_values(b);
  int64_t worst = pa && pb ? 0 : -1;
  for (size_t i = 0; worst >= 0 && i < mlx_array_size(a); i++) {
    int64_t d = ordinal(pa[i], mlx_array_dtype(a)) - ordinal(pb[i], mlx_array_dtype(a));
    if (d < 0) d = -d;
    if (d > worst) worst = d;
  }
  free(pa);
  free(pb);
  return worst;
}

/* The largest gap between values of a and b (same dtype and shape) in units of float32's epsilon
 * at b's largest magnitude: for float32 results whose rounding differs a little upstream, where
 * outputs near zero (after cancellation) are many ulps of their own apart. -1: unreadable. */
static double scaled_gap(mlx_array a, mlx_array b) {
  float *pa = host_values(a), *pb = host_values(b);
  double gap = pa && pb ? 0 : -1, scale = 0;
  for (size_t i = 0; gap >= 0 && i < mlx_array_size(b); i++) {
    gap = fmax(gap, fabs((double)pa[i] - pb[i]));
    scale = fmax(scale, fabs((double)pb[i]));
  }
  free(pa);
  free(pb);
  return gap > 0 ? gap / (scale * FLT_EPSILON) : gap;
}

/* ---- linear_residual ---- */

/* The documented sumsq of sum (rows, N): float32 ((s0^2 + s1^2) + s2^2) + s3^2 a run of 4. */
static mlx_array host_sums_of_squares(mlx_array sum) {
  int nd = (int)mlx_array_ndim(sum), shape[8];
  memcpy(shape, mlx_array_shape(sum), sizeof(int) * (size_t)nd);
  shape[nd - 1] /= 4;
  size_t n = mlx_array_size(sum) / 4;
  float *s = host_values(sum), *out = malloc(sizeof(float) * (n + 1));
  for (size_t j = 0; j < n; j++) {
    float total = s[4 * j] * s[4 * j];
    for (int k = 1; k < 4; k++) {
      float square = s[4 * j + k] * s[4 * j + k];
      total = total + square;
    }
    out[j] = total;
  }
  mlx_array a = mlx_array_new_data(out, shape, nd, MLX_FLOAT32);
  free(s);
  free(out);
  return a;
}

/* Checks linear_residual(x, w, residual) against mlx_add(residual, mlx_matmul(x, W^T)) and the
 * host's sums of squares of that sum, both bit for bit. */
static void check_linear_residual(mlx_array x, mlx_array w, mlx_array residual, const char* what) {
  mlx_array sum = mlx_array_new(), sumsq = mlx_array_new(), wt = mlx_array_new(), ref = mlx_array_new();
  CHECK_EQ_INT(mlxc_fast_linear_residual(&sum, &sumsq, x, w, residual, cpu), 0);
  mlx_transpose(&wt, w, cpu);
  mlx_matmul(&ref, x, wt, cpu);
  mlx_add(&ref, residual, ref, cpu);
  mlx_array ref_sumsq = host_sums_of_squares(ref);
  CHECK_MSG(max_ulps(sum, ref) == 0, "%s: sum differs by %lld ulp", what, (long long)max_ulps(sum, ref));
  CHECK_MSG(max_ulps(sumsq, ref_sumsq) == 0, "%s: sumsq differs by %lld ulp", what,
            (long long)max_ulps(sumsq, ref_sumsq));
  mlx_array all[] = {sum, sumsq, wt, ref, ref_sumsq};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) mlx_array_free(all[i]);
}

/* One half-precision row (the fused kernel): 2-D, 1-D and a strided view of x. The residual is
 * larger than the products, so that the sum's rounding and the order of sumsq's additions
 * matter. */
TEST(test_linear_residual_one_row_equals_composed_ops) {
  enum { K = 96, N = 64 };
  const mlx_dtype types[2] = {MLX_FLOAT16, MLX_BFLOAT16};
  for (int t = 0; t < 2; t++) {
    int ws[2] = {N, K}, xs[2] = {1, K}, rs[2] = {1, N}, cols[2] = {K, 2}, x1[1] = {K}, r1[1] = {N};
    mlx_array w = random_array(ws, 2, 0.25f, types[t]), x = random_array(xs, 2, 1.0f, types[t]);
    mlx_array r = random_array(rs, 2, 8.0f, types[t]), xc = random_array(cols, 2, 1.0f, types[t]);
    mlx_array x_1d = mlx_array_new(), r_1d = mlx_array_new();
    mlx_reshape(&x_1d, x, x1, 1, cpu);
    mlx_reshape(&r_1d, r, r1, 1, cpu);
    int c0[2] = {0, 1}, step[2] = {1, 1};
    mlx_slice(&xc, xc, c0, 2, cols, 2, step, 2, cpu); /* (K, 1), elements 2 apart */
    mlx_transpose(&xc, xc, cpu);
    check_linear_residual(x, w, r, types[t] == MLX_FLOAT16 ? "float16 (1, K)" : "bfloat16 (1, K)");
    check_linear_residual(x_1d, w, r_1d, types[t] == MLX_FLOAT16 ? "float16 (K)" : "bfloat16 (K)");
    check_linear_residual(xc, w, r, types[t] == MLX_FLOAT16 ? "float16 strided" : "bfloat16 strided");
    mlx_array all[] = {w, x, r, xc, x_1d, r_1d};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) mlx_array_free(all[i]);
  }
}

/* sumsq's order of additions is visible: mlx_sum over each run of 4 (added in double, rounded
 * once) differs from the documented float32 sums for these float16 values (their squares have
 * up to 22 significant bits; bfloat16's 16 rarely overflow float32's 24), and the results equal the
 * documented ones (so a kernel that summed otherwise would fail the tests above). */
TEST(test_linear_residual_sumsq_order_is_observable) {
  enum { K = 96, N = 64 };
  int ws[2] = {N, K}, xs[2] = {1, K}, rs[2] = {1, N}, grouped[3] = {1, N / 4, 4};
  mlx_array w = random_array(ws, 2, 0.25f, MLX_FLOAT16), x = random_array(xs, 2, 1.0f, MLX_FLOAT16);
  mlx_array r = random_array(rs, 2, 8.0f, MLX_FLOAT16);
  mlx_array sum = mlx_array_new(), sumsq = mlx_array_new(), other = mlx_array_new();
  CHECK_EQ_INT(mlxc_fast_linear_residual(&sum, &sumsq, x, w, r, cpu), 0);
  mlx_astype(&other, sum, MLX_FLOAT32, cpu);
  mlx_square(&other, other, cpu);
  mlx_reshape(&other, other, grouped, 3, cpu);
  mlx_sum_axis(&other, other, -1, false, cpu);
  CHECK(max_ulps(other, sumsq) > 0);
  mlx_array all[] = {w, x, r, sum, sumsq, other};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) mlx_array_free(all[i]);
}

/* ---- rms_norm_linear ---- */

typedef enum { LINEAR_PLAIN, LINEAR_BIAS, LINEAR_SILU, LINEAR_GELU } linear_kind;
static const char* const kind_names[4] = {"plain", "bias", "silu", "gelu_tanh"};

/* The linear layer as the model code runs it: matmul with W^T, one addmm with a bias, or
 * gated_linear. */
static int reference_linear(mlx_array* out, mlx_array x, mlx_array w, mlx_array bias, linear_kind kind) {
  if (kind == LINEAR_SILU || kind == LINEAR_GELU)
    return mlxc_fast_gated_linear(out, x, w, none, none, unset, unset, kind_names[kind], cpu);
  mlx_array wt = mlx_array_new();
  int st = mlx_transpose(&wt, w, cpu);
  st = st || (kind == LINEAR_BIAS ? mlx_addmm(out, bias, x, wt, 1.0f, 1.0f, cpu) : mlx_matmul(out, x, wt, cpu));
  mlx_array_free(wt);
  return st;
}

/* sumsq (rows, P) for h (rows, D): the float32 squares of each row added left to right over runs
 * of D / P features, P a divisor of D. */
static mlx_array host_sumsq(mlx_array h, int P) {
  int rows = mlx_array_dim(h, 0), D = mlx_array_dim(h, -1), shape[2] = {rows, P};
  float *v = host_values(h), *out = malloc(sizeof(float) * (size_t)(rows * P));
  for (int i = 0; i < rows * P; i++) {
    float total = 0;
    for (int k = 0; k < D / P; k++) {
      float square = v[i * (D / P) + k] * v[i * (D / P) + k];
      total = total + square;
    }
    out[i] = total;
  }
  mlx_array a = mlx_array_new_data(out, shape, 2, MLX_FLOAT32);
  free(v);
  free(out);
  return a;
}

/* rms_norm of h (rows, D) written out in float32 for sumsq with one value a row (P = 1, so the
 * mean square is exactly that value / D): inv = 1 / sqrt(ms + eps), h * inv rounded to the
 * dtype, times the norm weight and rounded again. */
static mlx_array host_rms_norm(mlx_array h, mlx_array sumsq, mlx_array weight, float eps) {
  int rows = mlx_array_dim(h, 0), D = mlx_array_dim(h, -1), shape[2] = {rows, D};
  mlx_dtype dt = mlx_array_dtype(h);
  float *v = host_values(h), *ss = host_values(sumsq), *wv = weight.ctx ? host_values(weight) : NULL;
  mlx_array out = mlx_array_new();
  for (int r = 0; r < rows; r++) {
    const float inv = 1.0f / sqrtf(ss[r] / (float)D + eps);
    for (int i = 0; i < D; i++) v[r * D + i] *= inv;
  }
  mlx_array a = mlx_array_new_data(v, shape, 2, MLX_FLOAT32);
  mlx_astype(&out, a, dt, cpu); /* rounded to the dtype */
  if (wv) {
    float* n = host_values(out);
    for (int i = 0; i < rows * D; i++) n[i] *= wv[i % D];
    mlx_array_free(a);
    a = mlx_array_new_data(n, shape, 2, MLX_FLOAT32);
    mlx_astype(&out, a, dt, cpu);
    free(n);
  }
  mlx_array_free(a);
  free(v);
  free(ss);
  free(wv);
  return out;
}

/* Weights of rms_norm_linear over D features: w (N, D) and bias (N), or the stacked gated w (2I,
 * D), and the norm weight (D), all in dtype. */
typedef struct {
  mlx_array w, gated_w, bias, norm_weight;
} norm_linear_weights;

static norm_linear_weights make_weights(int D, int N, int I, mlx_dtype dt) {
  int ws[2] = {N, D}, gs[2] = {2 * I, D}, bs[1] = {N}, ns[1] = {D};
  norm_linear_weights m = {random_array(ws, 2, 0.25f, dt), random_array(gs, 2, 0.25f, dt),
                           random_array(bs, 1, 1.0f, dt), random_array(ns, 1, 2.0f, dt)};
  return m;
}

static void free_weights(norm_linear_weights* m) {
  mlx_array_free(m->w);
  mlx_array_free(m->gated_w);
  mlx_array_free(m->bias);
  mlx_array_free(m->norm_weight);
}

/* rms_norm_linear of h (rows, D) with sumsq for each linear kind, with and without the norm
 * weight, against h normalised (host_rms_norm when host_norm, else mlx_fast_rms_norm) then
 * reference_linear: at most max_ulp apart (float32 with max_ulp > 0: at most max_ulp float32
 * epsilons of the largest value, scaled_gap). */
static void check_rms_norm_linear(mlx_array h, mlx_array sumsq, const norm_linear_weights* m, float eps,
                                  bool host_norm, int64_t max_ulp, const char* what) {
  for (int k = 0; k < 4; k++)
    for (int with_w = 0; with_w < 2; with_w++) {
      linear_kind kind = (linear_kind)k;
      bool gated = kind == LINEAR_SILU || kind == LINEAR_GELU;
      mlx_array nw = with_w ? m->norm_weight : none, w = gated ? m->gated_w : m->w;
      mlx_array bias = kind == LINEAR_BIAS ? m->bias : none;
      mlx_array out = mlx_array_new(), normed = mlx_array_new(), ref = mlx_array_new();
      CHECK_EQ_INT(mlxc_fast_rms_norm_linear(&out, h, sumsq, nw, eps, w, bias, gated ? kind_names[k] : NULL, cpu), 0);
      if (host_norm)
        normed = host_rms_norm(h, sumsq, nw, eps);
      else
        CHECK_EQ_INT(mlx_fast_rms_norm(&normed, h, nw, eps, cpu), 0);
      CHECK_EQ_INT(reference_linear(&ref, normed, w, bias, kind), 0);
      bool scaled = mlx_array_dtype(h) == MLX_FLOAT32 && max_ulp > 0;
      double d = max_ulps(out, ref);
      if (d >= 0 && scaled) d = scaled_gap(out, ref);
      CHECK_MSG(d >= 0 && d <= (double)max_ulp, "%s, %s, norm weight %d: %g ulp apart", what, kind_names[k], with_w,
                d);
      mlx_array_free(out);
      mlx_array_free(normed);
      mlx_array_free(ref);
    }
}

/* One half-precision row (the fused kernel): with sumsq holding the row's sum of squares whole
 * (P = 1) the result equals the host's rms_norm then the linear layer bit for bit; with sumsq
 * in 16 runs of 4 (as linear_residual leaves it) it is within 1 ulp of mlx_fast_rms_norm then
 * the linear layer (the sum of squares is added in another order there). Rows of mean square
 * about 3 and 3e-5 (where eps = 1e-5 weighs: a wrong eps fails). */
TEST(test_rms_norm_linear_one_row_equals_composed_ops) {
  enum { D = 64, N = 96, I = 48 };
  const mlx_dtype types[2] = {MLX_FLOAT16, MLX_BFLOAT16};
  for (int c = 0; c < 4; c++) {
    int hs[2] = {1, D}, t = c % 2;
    mlx_array h = random_array(hs, 2, c < 2 ? 3.0f : 0.01f, types[t]);
    norm_linear_weights m = make_weights(D, N, I, types[t]);
    mlx_array whole = host_sumsq(h, 1), runs = host_sumsq(h, D / 4);
    const char* name = types[t] == MLX_FLOAT16 ? "float16" : "bfloat16";
    check_rms_norm_linear(h, whole, &m, 1e-5f, true, 0, name);
    check_rms_norm_linear(h, runs, &m, 1e-5f, false, 1, name);
    mlx_array_free(h);
    mlx_array_free(whole);
    mlx_array_free(runs);
    free_weights(&m);
  }
}

/* The comparison can fail: the fused result with eps 0.5 is far from the reference with eps
 * 1e-5, and a norm weight left out changes it too. */
TEST(test_rms_norm_linear_mismatch_is_detected) {
  enum { D = 64, N = 96 };
  int hs[2] = {1, D};
  mlx_array h = random_array(hs, 2, 1.0f, MLX_BFLOAT16), sumsq = host_sumsq(h, D / 4);
  norm_linear_weights m = make_weights(D, N, N / 2, MLX_BFLOAT16);
  mlx_array out = mlx_array_new(), unweighted = mlx_array_new(), normed = mlx_array_new(), ref = mlx_array_new();
  CHECK_EQ_INT(mlxc_fast_rms_norm_linear(&out, h, sumsq, m.norm_weight, 0.5f, m.w, none, NULL, cpu), 0);
  CHECK_EQ_INT(mlxc_fast_rms_norm_linear(&unweighted, h, sumsq, none, 1e-5f, m.w, none, NULL, cpu), 0);
  CHECK_EQ_INT(mlx_fast_rms_norm(&normed, h, m.norm_weight, 1e-5f, cpu), 0);
  CHECK_EQ_INT(reference_linear(&ref, normed, m.w, none, LINEAR_PLAIN), 0);
  CHECK(max_ulps(out, ref) > 1);
  CHECK(max_ulps(unweighted, ref) > 1);
  mlx_array all[] = {h, sumsq, out, unweighted, normed, ref};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) mlx_array_free(all[i]);
  free_weights(&m);
}

/* ---- the composed path: float32, several rows ---- */

/* float32 (one row and several) and several half rows compose the ops; the results are the
 * documented ones: linear_residual's bit for bit, rms_norm_linear's bit for bit with P = 1 and
 * within 1 ulp of mlx_fast_rms_norm's (float32: 64) with runs of 4. */
TEST(test_float32_and_several_rows_take_the_composed_path) {
  enum { K = 96, N = 64, D = 64, I = 48, ROWS = 3 };
  const mlx_dtype types[3] = {MLX_FLOAT32, MLX_FLOAT16, MLX_BFLOAT16};
  for (int t = 0; t < 3; t++)
    for (int rows = 1; rows <= ROWS; rows += ROWS - 1) {
      if (rows == 1 && types[t] != MLX_FLOAT32) continue; /* the fused case, tested above */
      char what[64];
      snprintf(what, sizeof what, "dtype %d, %d rows", (int)types[t], rows);
      int ws[2] = {N, K}, xs[2] = {rows, K}, rs[2] = {rows, N}, hs[2] = {rows, D};
      mlx_array w = random_array(ws, 2, 0.25f, types[t]), x = random_array(xs, 2, 1.0f, types[t]);
      mlx_array r = random_array(rs, 2, 8.0f, types[t]), h = random_array(hs, 2, 3.0f, types[t]);
      check_linear_residual(x, w, r, what);
      norm_linear_weights m = make_weights(D, N, I, types[t]);
      mlx_array whole = host_sumsq(h, 1), runs = host_sumsq(h, D / 4);
      check_rms_norm_linear(h, whole, &m, 1e-5f, true, 0, what);
      check_rms_norm_linear(h, runs, &m, 1e-5f, false, types[t] == MLX_FLOAT32 ? 64 : 1, what);
      mlx_array all[] = {w, x, r, h, whole, runs};
      for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) mlx_array_free(all[i]);
      free_weights(&m);
    }
}

/* ---- errors ---- */

TEST(test_linear_residual_errors) {
  mlxc_set_errors_quiet(1);
  int xs[2] = {1, 96}, ws[2] = {64, 96}, w62[2] = {62, 96}, wk[2] = {64, 32}, rs[2] = {1, 64}, r2[2] = {2, 64};
  mlx_array x = random_array(xs, 2, 1.0f, MLX_BFLOAT16), w = random_array(ws, 2, 1.0f, MLX_BFLOAT16);
  mlx_array r = random_array(rs, 2, 1.0f, MLX_BFLOAT16), xi = random_array(xs, 2, 1.0f, MLX_INT32);
  mlx_array wf = random_array(ws, 2, 1.0f, MLX_FLOAT16), rf = random_array(rs, 2, 1.0f, MLX_FLOAT16);
  mlx_array odd = random_array(w62, 2, 1.0f, MLX_BFLOAT16), narrow = random_array(wk, 2, 1.0f, MLX_BFLOAT16);
  mlx_array tall = random_array(r2, 2, 1.0f, MLX_BFLOAT16), wide = random_array(xs, 2, 1.0f, MLX_BFLOAT16);
  struct {
    mlx_array x, w, r;
    const char* message;
  } cases[] = {
      {xi, w, r, "float32, float16 or bfloat16"}, /* int32 x */
      {x, wf, r, "dtype"},                        /* float16 weight, bfloat16 x */
      {x, w, rf, "dtype"},                        /* float16 residual */
      {x, odd, r, "multiple of 4"},               /* N = 62 */
      {x, narrow, r, "shape"},                    /* K 32 vs x's 96 */
      {x, w, tall, "residual"},                   /* 2 rows vs x's 1 */
      {x, w, wide, "residual"},                   /* 96 features vs N = 64 */
      {none, w, r, "empty"},
      {x, none, r, "empty"},
      {x, w, none, "empty"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    mlx_array sum = mlx_array_new(), sumsq = mlx_array_new();
    CHECK_MSG(mlxc_fast_linear_residual(&sum, &sumsq, cases[i].x, cases[i].w, cases[i].r, cpu) != 0,
              "case %zu accepted", i);
    CHECK_MSG(strstr(mlxc_last_error(), cases[i].message) && strstr(mlxc_last_error(), "fast.linear_residual"),
              "case %zu: '%s' lacks '%s'", i, mlxc_last_error(), cases[i].message);
    CHECK(sum.ctx == NULL && sumsq.ctx == NULL);
  }
  mlxc_set_errors_quiet(0);
  mlx_array all[] = {x, w, r, xi, wf, rf, odd, narrow, tall, wide};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) mlx_array_free(all[i]);
}

TEST(test_rms_norm_linear_errors) {
  mlxc_set_errors_quiet(1);
  int hs[2] = {1, 64}, ss[2] = {1, 16}, s2[2] = {2, 16}, s0[2] = {1, 0}, ws[2] = {96, 64}, wd[2] = {96, 32};
  int w95[2] = {95, 64}, v64[1] = {64}, v32[1] = {32}, v96[1] = {96}, v48[1] = {48};
  mlx_array h = random_array(hs, 2, 1.0f, MLX_BFLOAT16), hi = random_array(hs, 2, 1.0f, MLX_INT32);
  mlx_array s = random_array(ss, 2, 1.0f, MLX_FLOAT32), sh = random_array(ss, 2, 1.0f, MLX_BFLOAT16);
  mlx_array stall = random_array(s2, 2, 1.0f, MLX_FLOAT32), sempty = random_array(s0, 2, 1.0f, MLX_FLOAT32);
  mlx_array w = random_array(ws, 2, 1.0f, MLX_BFLOAT16), wn = random_array(wd, 2, 1.0f, MLX_BFLOAT16);
  mlx_array wf = random_array(ws, 2, 1.0f, MLX_FLOAT16), odd = random_array(w95, 2, 1.0f, MLX_BFLOAT16);
  mlx_array nw = random_array(v64, 1, 1.0f, MLX_BFLOAT16), nw32 = random_array(v32, 1, 1.0f, MLX_BFLOAT16);
  mlx_array nwf = random_array(v64, 1, 1.0f, MLX_FLOAT32), b = random_array(v96, 1, 1.0f, MLX_BFLOAT16);
  mlx_array b48 = random_array(v48, 1, 1.0f, MLX_BFLOAT16), bf = random_array(v96, 1, 1.0f, MLX_FLOAT16);
  struct {
    mlx_array h, sumsq, nw, w, bias;
    const char *act, *message;
  } cases[] = {
      {hi, s, none, w, none, NULL, "float32, float16 or bfloat16"}, /* int32 h */
      {h, sh, none, w, none, NULL, "sumsq must be float32"},
      {h, stall, none, w, none, NULL, "sumsq must have shape"},       /* 2 rows vs h's 1 */
      {h, sempty, none, w, none, NULL, "sumsq must have shape"},      /* P = 0 */
      {h, s, nw32, w, none, NULL, "norm weight"},                     /* (32) vs D = 64 */
      {h, s, nwf, w, none, NULL, "norm weight"},                      /* float32 vs bfloat16 */
      {h, s, none, wf, none, NULL, "dtype"},                          /* float16 weight */
      {h, s, none, wn, none, NULL, "shape"},                          /* (96, 32) vs D = 64 */
      {h, s, none, w, b48, NULL, "bias"},                             /* (48) vs N = 96 */
      {h, s, none, w, bf, NULL, "bias"},                              /* float16 bias */
      {h, s, none, w, b, "silu", "bias is not allowed"},
      {h, s, none, odd, none, "gelu_tanh", "even"},                   /* 95 stacked rows */
      {h, s, none, w, none, "relu", "activation"},
      {none, s, none, w, none, NULL, "empty"},
      {h, none, none, w, none, NULL, "empty"},
      {h, s, none, none, none, NULL, "empty"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    mlx_array out = mlx_array_new();
    CHECK_MSG(mlxc_fast_rms_norm_linear(&out, cases[i].h, cases[i].sumsq, cases[i].nw, 1e-5f, cases[i].w,
                                        cases[i].bias, cases[i].act, cpu) != 0, "case %zu accepted", i);
    CHECK_MSG(strstr(mlxc_last_error(), cases[i].message) && strstr(mlxc_last_error(), "fast.rms_norm_linear"),
              "case %zu: '%s' lacks '%s'", i, mlxc_last_error(), cases[i].message);
    CHECK(out.ctx == NULL);
  }
  mlxc_set_errors_quiet(0);
  mlx_array all[] = {h, hi, s, sh, stall, sempty, w, wn, wf, odd, nw, nw32, nwf, b, b48, bf};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) mlx_array_free(all[i]);
}

int main(void) {
  cpu = mlx_default_cpu_stream_new();
  none = mlx_array_new();
  RUN(test_linear_residual_one_row_equals_composed_ops);
  RUN(test_linear_residual_sumsq_order_is_observable);
  RUN(test_rms_norm_linear_one_row_equals_composed_ops);
  RUN(test_rms_norm_linear_mismatch_is_detected);
  RUN(test_float32_and_several_rows_take_the_composed_path);
  RUN(test_linear_residual_errors);
  RUN(test_rms_norm_linear_errors);
  mlx_stream_free(cpu);
  return TEST_SUMMARY();
}
