/* mlxc/fast.h's linear_residual and rms_norm_linear against references built here: the public
 * ops they stand for (matmul, quantized_matmul, add, multiply, addmm, gated_linear,
 * fast.rms_norm) and the documented arithmetic written out on the host (exact products in
 * double with the interval a float32 kernel's sum can reach, sumsq's runs of 4 squares added
 * left to right in float32, inv = 1 / sqrt(total / D + eps)). Weights are plain or MLX
 * affine-quantized (mlx_quantize). One float16/bfloat16 row with a plain, 4-bit or 8-bit weight
 * runs the fused kernel; float32, several rows and other widths the composed ops. */
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

/* (rows, cols) of dtype from float32 values that dtype holds (or that it rounds). */
static mlx_array dtype_array(const float* v, int rows, int cols, mlx_dtype dtype) {
  int shape[2] = {rows, cols};
  mlx_array a = mlx_array_new_data(v, shape, 2, MLX_FLOAT32);
  mlx_astype(&a, a, dtype, cpu);
  return a;
}

/* v rounded to dtype, to nearest even (float32: v). */
static float to_dtype(float v, mlx_dtype dtype) {
  if (dtype == MLX_FLOAT16) return mlxc_float16_to_float32(mlxc_float32_to_float16(v));
  if (dtype == MLX_BFLOAT16) return mlxc_bfloat16_to_float32(mlxc_float32_to_bfloat16(v));
  return v;
}

/* [*lo, *hi]: the dtype values that a float32 computation of a value within err of ref can round
 * to (the interval's ends taken outward to float32, then rounded: rounding is monotonic). */
static void rounding_bracket(double ref, double err, mlx_dtype dtype, float* lo, float* hi) {
  *lo = to_dtype(nextafterf((float)(ref - err), -INFINITY), dtype);
  *hi = to_dtype(nextafterf((float)(ref + err), INFINITY), dtype);
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

/* Whether a and b have the same dtype and shape. */
static bool same_layout(mlx_array a, mlx_array b) {
  if (mlx_array_dtype(a) != mlx_array_dtype(b) || mlx_array_ndim(a) != mlx_array_ndim(b)) return false;
  for (size_t i = 0; i < mlx_array_ndim(a); i++)
    if (mlx_array_shape(a)[i] != mlx_array_shape(b)[i]) return false;
  return true;
}

/* The largest distance in units in the last place of their dtype between values of a and b;
 * -1 when the dtypes or shapes differ or a value is unreadable. */
static int64_t max_ulps(mlx_array a, mlx_array b) {
  if (!same_layout(a, b)) return -1;
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

/* The largest gap between values of a and b (same dtype and shape (..., N)) in units of the
 * dtype's spacing at the largest magnitude of b's row: a tolerance for results whose roundings
 * differ upstream, where outputs near zero (after cancellation) are many ulps of their own
 * apart. -1: the layouts differ or a value is unreadable. */
static double row_gap_ulps(mlx_array a, mlx_array b) {
  if (!same_layout(a, b)) return -1;
  const mlx_dtype dt = mlx_array_dtype(a);
  const int mantissa = dt == MLX_FLOAT16 ? 10 : dt == MLX_BFLOAT16 ? 7 : 23;
  const size_t N = (size_t)mlx_array_dim(b, -1), rows = N ? mlx_array_size(b) / N : 0;
  float *pa = host_values(a), *pb = host_values(b);
  double worst = pa && pb ? 0 : -1;
  for (size_t r = 0; worst >= 0 && r < rows; r++) {
    double top = FLT_MIN, gap = 0;
    for (size_t j = 0; j < N; j++) {
      top = fmax(top, fabs((double)pb[r * N + j]));
      gap = fmax(gap, fabs((double)pa[r * N + j] - pb[r * N + j]));
    }
    int e;
    frexp(top, &e); /* top in [2^(e-1), 2^e): the dtype's spacing there is 2^(e-1-mantissa) */
    worst = fmax(worst, gap / ldexp(1.0, e - 1 - mantissa));
  }
  free(pa);
  free(pb);
  return worst;
}

static void free_arrays(mlx_array* a, size_t n) {
  for (size_t i = 0; i < n; i++) mlx_array_free(a[i]);
}
#define FREE_ALL(...)                                  \
  do {                                                 \
    mlx_array all_[] = {__VA_ARGS__};                  \
    free_arrays(all_, sizeof all_ / sizeof all_[0]);   \
  } while (0)

/* ---- weights ---- */

/* A linear layer's weight of `rows` rows over K features: plain in the dtype (bits 0), or random
 * values quantized by mlx_quantize (MLX's affine layout). */
typedef struct {
  mlx_array w, scales, biases;
  int bits, group;
} layer;

static layer make_layer(int rows, int K, int bits, int group, mlx_dtype dtype) {
  int shape[2] = {rows, K};
  layer l = {random_array(shape, 2, 0.25f, dtype), mlx_array_new(), mlx_array_new(), bits, group};
  if (bits) {
    mlx_vector_array parts = mlx_vector_array_new();
    const mlx_optional_int gs = {group, true}, nb = {bits, true};
    CHECK_EQ_INT(mlx_quantize(&parts, l.w, gs, nb, "affine", none, cpu), 0);
    mlx_vector_array_get(&l.w, parts, 0);
    mlx_vector_array_get(&l.scales, parts, 1);
    mlx_vector_array_get(&l.biases, parts, 2);
    mlx_vector_array_free(parts);
  }
  return l;
}

static mlx_optional_int layer_group(const layer* l) { return (mlx_optional_int){l->group, l->bits != 0}; }
static mlx_optional_int layer_bits(const layer* l) { return (mlx_optional_int){l->bits, l->bits != 0}; }
static void free_layer(layer* l) { FREE_ALL(l->w, l->scales, l->biases); }

/* x (..., K) W^T as the composed ops take it: mlx_matmul with the transposed weight or
 * mlx_quantized_matmul. */
static int layer_matmul(mlx_array* out, mlx_array x, const layer* l) {
  if (l->bits) return mlx_quantized_matmul(out, x, l->w, l->scales, l->biases, true, layer_group(l), layer_bits(l),
                                           "affine", cpu);
  mlx_array wt = mlx_array_new();
  int st = mlx_transpose(&wt, l->w, cpu) || mlx_matmul(out, x, wt, cpu);
  mlx_array_free(wt);
  return st;
}

/* The layer's values (rows, K) as quantized_matmul takes them, exact in double (scale * q +
 * bias: mlx_dequantize rounds the product to the scales' dtype as MLX does), and in `bound` the
 * magnitude |scale q| + |bias| of each (plain: |w|). Both malloc'd; the caller frees them. */
static void layer_values(const layer* l, int rows, int K, double** values, double** bound) {
  *values = malloc(sizeof(double) * (size_t)(rows * K));
  *bound = malloc(sizeof(double) * (size_t)(rows * K));
  if (!l->bits) {
    float* w = host_values(l->w);
    for (int i = 0; i < rows * K; i++) (*values)[i] = w[i], (*bound)[i] = fabs((double)w[i]);
    free(w);
    return;
  }
  mlx_array ones = mlx_array_new(), zeros = mlx_array_new(), q = mlx_array_new();
  mlx_ones_like(&ones, l->scales, cpu);
  mlx_astype(&ones, ones, MLX_FLOAT32, cpu);
  mlx_zeros_like(&zeros, ones, cpu);
  mlx_dequantize(&q, l->w, ones, zeros, layer_group(l), layer_bits(l), "affine", none,
                 (mlx_optional_dtype){MLX_FLOAT32, true}, cpu); /* the integers q */
  float *qv = host_values(q), *sv = host_values(l->scales), *bv = host_values(l->biases);
  for (int i = 0; i < rows * K; i++) {
    const int g = i / K * (K / l->group) + i % K / l->group;
    (*values)[i] = (double)sv[g] * qv[i] + bv[g];
    (*bound)[i] = fabs((double)sv[g] * qv[i]) + fabs((double)bv[g]);
  }
  free(qv);
  free(sv);
  free(bv);
  FREE_ALL(ones, zeros, q);
}

/* The exact products p (M, N) = x (M, K) W^T in double, and in err a bound on a float32
 * kernel's distance from them whatever its order of additions (and qgemv's split into scale *
 * (q . x) + bias * sum(x)): (K + 2) 2^-24, the classic bound, times the sum over k of |x_k| and
 * the value's magnitude (layer_values). Both malloc'd; the caller frees them. */
static void exact_products(mlx_array x, const layer* l, int M, int K, int N, double** p, double** err) {
  double *w, *wb;
  layer_values(l, N, K, &w, &wb);
  float* xv = host_values(x);
  *p = malloc(sizeof(double) * (size_t)(M * N));
  *err = malloc(sizeof(double) * (size_t)(M * N));
  for (int m = 0; m < M; m++)
    for (int n = 0; n < N; n++) {
      double sum = 0, magnitude = 0;
      for (int k = 0; k < K; k++) {
        sum += (double)xv[(size_t)m * K + k] * w[(size_t)n * K + k];
        magnitude += fabs((double)xv[(size_t)m * K + k]) * wb[(size_t)n * K + k];
      }
      (*p)[m * N + n] = sum;
      (*err)[m * N + n] = magnitude * (K + 2) * 0x1p-24;
    }
  free(xv);
  free(w);
  free(wb);
}

/* ---- linear_residual ---- */

/* sumsq (..., P) float32 for h (..., D), P = ceil(D / run): the float32 squares of h's values
 * added left to right over each run of `run` features, the last run shorter when run does not
 * divide D (one operation a statement: the square, then the add). */
static mlx_array host_sumsq(mlx_array h, int run) {
  const int nd = (int)mlx_array_ndim(h), D = mlx_array_dim(h, -1), P = (D + run - 1) / run;
  const size_t rows = D ? mlx_array_size(h) / (size_t)D : 0;
  int shape[8]; /* the tests' arrays have at most 3 dimensions */
  memcpy(shape, mlx_array_shape(h), sizeof(int) * (size_t)nd);
  shape[nd - 1] = P;
  float *v = host_values(h), *out = malloc(sizeof(float) * (rows * (size_t)P + 1));
  for (size_t r = 0; r < rows; r++)
    for (int j = 0; j < P; j++) {
      float total = 0;
      for (int i = j * run; i < D && i < (j + 1) * run; i++) {
        const float square = v[r * D + i] * v[r * D + i];
        total = total + square;
      }
      out[r * P + j] = total;
    }
  mlx_array a = mlx_array_new_data(out, shape, nd, MLX_FLOAT32);
  free(v);
  free(out);
  return a;
}

/* How many values of sumsq differ in any bit from the runs of 4 of sum's stored values
 * (host_sumsq(sum, 4)); -1: sumsq is not float32 (..., ceil(N / 4)) with sum's leading
 * dimensions, or a value is unreadable. */
static int64_t sumsq_mismatches(mlx_array sumsq, mlx_array sum) {
  mlx_array expected = host_sumsq(sum, 4);
  int64_t mismatches = -1;
  if (same_layout(sumsq, expected)) {
    float *a = host_values(sumsq), *b = host_values(expected);
    mismatches = a && b ? 0 : -1;
    for (size_t i = 0; mismatches >= 0 && i < mlx_array_size(sumsq); i++)
      mismatches += memcmp(&a[i], &b[i], sizeof(float)) != 0;
    free(a);
    free(b);
  }
  mlx_array_free(expected);
  return mismatches;
}

/* How many of sum's values lie outside the documented ones written out: the exact product
 * within a float32 kernel's reach, rounded to the dtype, plus the residual in float32, rounded.
 * -1: unreadable. */
static int64_t sum_outside_bracket(mlx_array sum, mlx_array x, const layer* l, mlx_array residual) {
  const mlx_dtype dt = mlx_array_dtype(sum);
  const int K = mlx_array_dim(x, -1), N = mlx_array_dim(sum, -1), M = (int)(mlx_array_size(sum) / (size_t)N);
  double *p, *err;
  exact_products(x, l, M, K, N, &p, &err);
  float *s = host_values(sum), *r = host_values(residual);
  int64_t outside = s && r ? 0 : -1;
  for (int i = 0; outside >= 0 && i < M * N; i++) {
    float lo, hi;
    rounding_bracket(p[i], err[i], dt, &lo, &hi);
    const float sum_lo = r[i] + lo, sum_hi = r[i] + hi;
    outside += s[i] < to_dtype(sum_lo, dt) || s[i] > to_dtype(sum_hi, dt);
  }
  free(p);
  free(err);
  free(s);
  free(r);
  return outside;
}

/* linear_residual(x, layer, residual, norm weight) against
 *   the composed public ops: sum bit for bit mlx_add(residual, matmul or quantized_matmul);
 *   values written out: sum within the bracket of the exact product (sum_outside_bracket);
 *   sumsq (..., ceil(N / 4)) bit for bit the runs of 4 of that sum's squares, added left to
 *   right in float32 (sumsq_mismatches); scaled = round(sum *
 *   norm weight) bit for bit (the product of two half values is exact in float32), or the sum
 *   array itself without a norm weight. */
static void check_linear_residual(mlx_array x, const layer* l, mlx_array residual, mlx_array norm_weight,
                                  const char* what) {
  mlx_array sum = mlx_array_new(), sumsq = mlx_array_new(), scaled = mlx_array_new(), ref = mlx_array_new();
  CHECK_MSG(mlxc_fast_linear_residual(&sum, &sumsq, &scaled, x, l->w, l->scales, l->biases, layer_group(l),
                                      layer_bits(l), residual, norm_weight, cpu) == 0,
            "%s: %s", what, mlxc_last_error());
  CHECK_EQ_INT(layer_matmul(&ref, x, l), 0);
  mlx_add(&ref, residual, ref, cpu);
  CHECK_MSG(max_ulps(sum, ref) == 0, "%s: sum differs from the composed ops by %lld ulp", what,
            (long long)max_ulps(sum, ref));
  CHECK_MSG(sum_outside_bracket(sum, x, l, residual) == 0, "%s: %lld sums outside the written-out values", what,
            (long long)sum_outside_bracket(sum, x, l, residual));
  CHECK_MSG(sumsq_mismatches(sumsq, sum) == 0, "%s: %lld sumsq values off the runs of 4 squares (-1: the layout)",
            what, (long long)sumsq_mismatches(sumsq, sum));
  if (norm_weight.ctx) {
    const mlx_dtype dt = mlx_array_dtype(sum);
    const size_t n = mlx_array_size(sum), N = (size_t)mlx_array_dim(sum, -1);
    float *s = host_values(sum), *nw = host_values(norm_weight);
    for (size_t i = 0; i < n; i++) s[i] = to_dtype(s[i] * nw[i % N], dt);
    mlx_array expected = dtype_array(s, (int)(n / N), (int)N, dt);
    CHECK_MSG(mlx_array_size(scaled) == n && mlx_array_dim(scaled, -1) == (int)N, "%s: scaled's shape", what);
    mlx_reshape(&expected, expected, mlx_array_shape(sum), mlx_array_ndim(sum), cpu);
    CHECK_MSG(max_ulps(scaled, expected) == 0, "%s: scaled differs by %lld ulp", what,
              (long long)max_ulps(scaled, expected));
    free(s);
    free(nw);
    mlx_array_free(expected);
  } else {
    CHECK_MSG(scaled.ctx == sum.ctx, "%s: without a norm weight scaled is not the sum itself", what);
  }
  FREE_ALL(sum, sumsq, scaled, ref);
}

/* The weights the tests run: plain, then {bits, group}; 4 and 8 bits fuse, 3 and 6 compose. */
static const int layouts[5][2] = {{0, 0}, {4, 64}, {8, 32}, {3, 64}, {6, 128}};
static const mlx_dtype half_types[2] = {MLX_FLOAT16, MLX_BFLOAT16};

/* One row (1-D, 2-D and a strided view: the fused kernel for float16/bfloat16 with plain, 4- and
 * 8-bit weights) and (2, 3, K) rows, float32 too, with and without a norm weight; N = 66 (sumsq
 * in 17 runs, the last of 2) and 64 (16 runs of 4). The residual is larger than the products, so
 * that the sum's rounding matters. */
TEST(test_linear_residual_equals_composed_ops_and_written_out_values) {
  enum { K = 128 };
  const mlx_dtype types[3] = {MLX_FLOAT16, MLX_BFLOAT16, MLX_FLOAT32};
  const int widths[2] = {66, 64};
  for (int t = 0; t < 3; t++)
    for (int q = 0; q < 5; q++)
      for (int n = 0; n < 2; n++) {
        const mlx_dtype dt = types[t];
        const int N = widths[n];
        layer l = make_layer(N, K, layouts[q][0], layouts[q][1], dt);
        int xs[2] = {1, K}, rs[2] = {1, N}, cols[2] = {K, 2}, x1[1] = {K}, r1[1] = {N}, xb[3] = {2, 3, K},
            rb[3] = {2, 3, N}, nws[1] = {N};
        mlx_array x[4] = {random_array(xs, 2, 1.0f, dt), mlx_array_new(), random_array(cols, 2, 1.0f, dt),
                          random_array(xb, 3, 1.0f, dt)};
        mlx_array r[4] = {random_array(rs, 2, 8.0f, dt), mlx_array_new(), mlx_array_new(),
                          random_array(rb, 3, 8.0f, dt)};
        mlx_array nw = random_array(nws, 1, 2.0f, dt);
        mlx_reshape(&x[1], x[0], x1, 1, cpu);
        mlx_reshape(&r[1], r[0], r1, 1, cpu);
        mlx_array_set(&r[2], r[0]);
        int c0[2] = {0, 1}, step[2] = {1, 1};
        mlx_slice(&x[2], x[2], c0, 2, cols, 2, step, 2, cpu); /* (K, 1), elements 2 apart */
        mlx_transpose(&x[2], x[2], cpu);
        for (int k = 0; k < 4; k++)
          for (int with_w = 0; with_w < 2; with_w++) {
            char what[96];
            snprintf(what, sizeof what, "dtype %d, bits %d, N %d, x %d, norm weight %d", (int)dt, l.bits, N, k,
                     with_w);
            check_linear_residual(x[k], &l, r[k], with_w ? nw : none, what);
          }
        FREE_ALL(x[0], x[1], x[2], x[3], r[0], r[1], r[2], r[3], nw);
        free_layer(&l);
      }
}

/* The fused kernel (one half row, plain, 4- and 8-bit weights) against the composed ops on the
 * same row (broadcast to two rows, which compose): sum, sumsq and scaled bit for bit, N = 66, 64
 * and 3 (one short run). */
TEST(test_linear_residual_fused_equals_composed) {
  enum { K = 128 };
  const int widths[3] = {66, 64, 3};
  for (int t = 0; t < 2; t++)
    for (int q = 0; q < 3; q++)
      for (int n = 0; n < 3; n++) {
        const mlx_dtype dt = half_types[t];
        const int N = widths[n];
        layer l = make_layer(N, K, layouts[q][0], layouts[q][1], dt);
        int xs[2] = {1, K}, rs[2] = {1, N}, x2s[2] = {2, K}, r2s[2] = {2, N}, nws[1] = {N};
        mlx_array x = random_array(xs, 2, 1.0f, dt), r = random_array(rs, 2, 8.0f, dt);
        mlx_array nw = random_array(nws, 1, 2.0f, dt), x2 = mlx_array_new(), r2 = mlx_array_new();
        mlx_broadcast_to(&x2, x, x2s, 2, cpu);
        mlx_broadcast_to(&r2, r, r2s, 2, cpu);
        mlx_array fused[3], composed[3];
        for (int i = 0; i < 3; i++) fused[i] = mlx_array_new(), composed[i] = mlx_array_new();
        CHECK_EQ_INT(mlxc_fast_linear_residual(&fused[0], &fused[1], &fused[2], x, l.w, l.scales, l.biases,
                                               layer_group(&l), layer_bits(&l), r, nw, cpu),
                     0);
        CHECK_EQ_INT(mlxc_fast_linear_residual(&composed[0], &composed[1], &composed[2], x2, l.w, l.scales,
                                               l.biases, layer_group(&l), layer_bits(&l), r2, nw, cpu),
                     0);
        static const char* const names[3] = {"sum", "sumsq", "scaled"};
        for (int i = 0; i < 3; i++) {
          int start[2] = {0, 0}, stop[2] = {1, mlx_array_dim(composed[i], -1)}, step[2] = {1, 1};
          mlx_slice(&composed[i], composed[i], start, 2, stop, 2, step, 2, cpu);
          CHECK_MSG(max_ulps(fused[i], composed[i]) == 0, "dtype %d, bits %d, N %d: %s %lld ulp apart", (int)dt,
                    layouts[q][0], N, names[i], (long long)max_ulps(fused[i], composed[i]));
        }
        CHECK_EQ_INT(mlx_array_dim(fused[1], -1), (N + 3) / 4);
        CHECK_EQ_INT(sumsq_mismatches(fused[1], fused[0]), 0);
        FREE_ALL(x, r, nw, x2, r2, fused[0], fused[1], fused[2], composed[0], composed[1], composed[2]);
        free_layer(&l);
      }
}

/* sumsq's runs of the row's squares, (s0^2 + s1^2) + (s2^2 + s3^2) added in pairs, as float32
 * (rows, P). */
static mlx_array host_sumsq_in_pairs(mlx_array sum) {
  const int rows = mlx_array_dim(sum, 0), N = mlx_array_dim(sum, -1), P = (N + 3) / 4, shape[2] = {rows, P};
  float *v = host_values(sum), *out = malloc(sizeof(float) * (size_t)(rows * P));
  for (int r = 0; r < rows; r++)
    for (int j = 0; j < P; j++) {
      float square[4] = {0, 0, 0, 0};
      for (int i = 4 * j; i < N && i < 4 * j + 4; i++) square[i - 4 * j] = v[r * N + i] * v[r * N + i];
      const float first = square[0] + square[1], second = square[2] + square[3];
      out[r * P + j] = first + second;
    }
  mlx_array a = mlx_array_new_data(out, shape, 2, MLX_FLOAT32);
  free(v);
  free(out);
  return a;
}

/* sumsq's runs of the row's squares by mlx_sum (the squares padded with zeros to 4P, reshaped
 * (rows, P, 4), summed over the last axis: the CPU reduce adds in double and rounds once). */
static mlx_array mlx_sum_sumsq(mlx_array sum) {
  const int rows = mlx_array_dim(sum, 0), N = mlx_array_dim(sum, -1), P = (N + 3) / 4;
  const int axis = 1, low = 0, high = 4 * P - N, shape[3] = {rows, P, 4};
  mlx_array squares = mlx_array_new(), zero = mlx_array_new_float(0.0f), out = mlx_array_new();
  mlx_astype(&squares, sum, MLX_FLOAT32, cpu);
  mlx_square(&squares, squares, cpu);
  mlx_pad(&squares, squares, &axis, 1, &low, 1, &high, 1, zero, "constant", cpu);
  mlx_reshape(&squares, squares, shape, 3, cpu);
  mlx_sum_axis(&out, squares, -1, false, cpu);
  FREE_ALL(squares, zero);
  return out;
}

/* The comparisons can fail: the sum of a product left unrounded (float32 throughout, then
 * rounded once) differs from linear_residual's; and sumsq differs from the runs of the squares
 * of that unrounded sum (float32 values before the rounding to float16), of the row less its
 * last value (only the short last run changes), and from the row's runs added in pairs or by
 * mlx_sum, where linear_residual's sumsq does not. N = 66 (17 runs, the last of 2), float16
 * (whose squares are added with roundings). */
TEST(test_linear_residual_roundings_are_observable) {
  enum { K = 128, N = 66 };
  int ws[2] = {N, K}, xs[2] = {1, K}, rs[2] = {1, N}, r0[2] = {0, 0}, short_row[2] = {1, N - 1}, step[2] = {1, 1};
  mlx_array w = random_array(ws, 2, 0.25f, MLX_FLOAT16), x = random_array(xs, 2, 1.0f, MLX_FLOAT16);
  mlx_array r = random_array(rs, 2, 8.0f, MLX_FLOAT16);
  mlx_array sum = mlx_array_new(), sumsq = mlx_array_new(), scaled = mlx_array_new(), other = mlx_array_new();
  mlx_array x32 = mlx_array_new(), w32 = mlx_array_new(), r32 = mlx_array_new(), unrounded = mlx_array_new();
  CHECK_EQ_INT(mlxc_fast_linear_residual(&sum, &sumsq, &scaled, x, w, none, none, unset, unset, r, none, cpu), 0);
  mlx_astype(&x32, x, MLX_FLOAT32, cpu);
  mlx_astype(&w32, w, MLX_FLOAT32, cpu);
  mlx_astype(&r32, r, MLX_FLOAT32, cpu);
  mlx_transpose(&w32, w32, cpu);
  mlx_matmul(&unrounded, x32, w32, cpu);
  mlx_add(&unrounded, r32, unrounded, cpu);
  CHECK_EQ_INT(sumsq_mismatches(sumsq, sum), 0);
  CHECK(sumsq_mismatches(sumsq, unrounded) > 0);
  mlx_slice(&other, sum, r0, 2, short_row, 2, step, 2, cpu);
  CHECK_EQ_INT(sumsq_mismatches(sumsq, other), 1);
  mlx_array pairs = host_sumsq_in_pairs(sum), summed = mlx_sum_sumsq(sum);
  CHECK_MSG(sumsq_mismatches(pairs, sum) > 0, "runs added in pairs pass");
  CHECK_MSG(sumsq_mismatches(summed, sum) > 0, "runs added by mlx_sum pass");
  mlx_astype(&unrounded, unrounded, MLX_FLOAT16, cpu);
  CHECK(max_ulps(unrounded, sum) > 0);
  FREE_ALL(w, x, r, sum, sumsq, scaled, other, x32, w32, r32, unrounded, pairs, summed);
}

/* ---- rms_norm_linear ---- */

typedef enum { LINEAR_PLAIN, LINEAR_BIAS, LINEAR_SILU, LINEAR_GELU } linear_kind;
static const char* const kind_names[4] = {"plain", "bias", "silu", "gelu_tanh"};
static bool is_gated(linear_kind k) { return k == LINEAR_SILU || k == LINEAR_GELU; }
static const char* activation_of(linear_kind k) { return is_gated(k) ? kind_names[k] : NULL; }

/* rms_norm_linear's documented values for scaled (M, D), sumsq (M, P) and the layer (N rows),
 * written out: inv = 1 / sqrt(total / D + eps) with total sumsq's row added in index order in
 * float32; value = inv p (+ bias) for the exact product p (double), before the rounding to the
 * dtype; err bounds a float32 kernel's distance from it (the product's, then 2^-21 of the
 * magnitudes for the float32 roundings of inv * p, + bias, and of a total added in another
 * order). */
typedef struct {
  int M, N;
  double *value, *err; /* (M, N) */
} expected_values;

static expected_values expected_rms_norm_linear(mlx_array scaled, mlx_array sumsq, float eps, const layer* l,
                                                int N, mlx_array bias) {
  const int D = mlx_array_dim(scaled, -1), M = (int)(mlx_array_size(scaled) / (size_t)D);
  const int P = mlx_array_dim(sumsq, -1);
  expected_values e = {M, N, NULL, NULL};
  exact_products(scaled, l, M, D, N, &e.value, &e.err);
  float *ss = host_values(sumsq), *b = bias.ctx ? host_values(bias) : NULL;
  for (int m = 0; m < M; m++) {
    float total = 0;
    for (int i = 0; i < P; i++) total += ss[m * P + i];
    const float inv = 1.0f / sqrtf(total / (float)D + eps);
    for (int n = 0; n < N; n++) {
      double* v = &e.value[m * N + n];
      const double scaled_product = inv * *v;
      e.err[m * N + n] = inv * e.err[m * N + n] + fabs(scaled_product) * 0x1p-21;
      *v = scaled_product + (b ? b[n] : 0.0f);
      e.err[m * N + n] += fabs(*v) * 0x1p-21;
    }
  }
  free(ss);
  free(b);
  return e;
}

static void free_expected(expected_values* e) {
  free(e->value);
  free(e->err);
}

/* The dtype value at position o among its values (the inverse of ordinal; half types). */
static float from_ordinal(int64_t o, mlx_dtype dtype) {
  const uint16_t bits = (uint16_t)(o >= 0 ? o : (-o | 0x8000));
  return dtype == MLX_FLOAT16 ? mlxc_float16_to_float32(bits) : mlxc_bfloat16_to_float32(bits);
}

/* mlxc_fast_glu of gate and up values (n, held by dtype) as float32 in a malloc'd buffer. */
static float* host_glu(const float* g, const float* u, int n, mlx_dtype dtype, linear_kind kind) {
  mlx_array ga = dtype_array(g, 1, n, dtype), ua = dtype_array(u, 1, n, dtype), out = mlx_array_new();
  CHECK_EQ_INT(mlxc_fast_glu(&out, ga, ua, kind_names[kind], cpu), 0);
  float* v = host_values(out);
  FREE_ALL(ga, ua, out);
  return v;
}

/* How many gated outputs o (M, N / 2) lie outside the written-out ones. Half types: glu(g, u) is
 * monotonic in u for a given g (one rounded product), so o must lie between the least and the
 * largest glu over every dtype value of the gate's bracket and the two ends of up's. float32:
 * within 64 float32 epsilons of the row's largest value from glu of the expected values. */
static int64_t gated_outside(const float* o, const expected_values* e, mlx_dtype dt, linear_kind kind) {
  const int M = e->M, N = e->N, I = N / 2, n = M * I;
  float* buf = malloc(sizeof(float) * (size_t)(7 * n)); /* (M, I) each: */
  float *g_lo = buf, *g_hi = g_lo + n, *up[2] = {g_hi + n, g_hi + 2 * n}, *g = up[1] + n, *least = g + n,
        *largest = least + n;
  int64_t span = 1;
  for (int i = 0; i < n; i++) {
    const int at = i / I * N + i % I; /* the gate; up is I further */
    rounding_bracket(e->value[at], e->err[at], dt, &g_lo[i], &g_hi[i]);
    rounding_bracket(e->value[at + I], e->err[at + I], dt, &up[0][i], &up[1][i]);
    if (dt == MLX_FLOAT32) g_lo[i] = g_hi[i] = (float)e->value[at], up[0][i] = up[1][i] = (float)e->value[at + I];
    else span = fmax(span, ordinal(g_hi[i], dt) - ordinal(g_lo[i], dt) + 1);
    least[i] = INFINITY;
    largest[i] = -INFINITY;
  }
  for (int64_t c = 0; c < span; c++) {
    for (int i = 0; i < n && dt != MLX_FLOAT32; i++) {
      const int64_t at = ordinal(g_lo[i], dt) + c, last = ordinal(g_hi[i], dt);
      g[i] = from_ordinal(at < last ? at : last, dt);
    }
    for (int k = 0; k < 2; k++) {
      float* v = host_glu(dt == MLX_FLOAT32 ? g_lo : g, up[k], n, dt, kind);
      for (int i = 0; i < n; i++) least[i] = fminf(least[i], v[i]), largest[i] = fmaxf(largest[i], v[i]);
      free(v);
    }
  }
  int64_t outside = 0;
  for (int r = 0; r < M; r++) {
    double top = 0, gap = 0;
    for (int i = r * I; i < (r + 1) * I; i++) {
      outside += dt != MLX_FLOAT32 && (o[i] < least[i] || o[i] > largest[i]);
      top = fmax(top, fabs((double)least[i]));
      gap = fmax(gap, fabs((double)o[i] - least[i]));
    }
    outside += dt == MLX_FLOAT32 && gap > 64 * FLT_EPSILON * top;
  }
  free(buf);
  return outside;
}

/* How many of out's values (M, N) lie outside the written-out ones: plain, the dtype values the
 * bracket of e allows; gated: gated_outside. -1: unreadable. */
static int64_t outside_expected(mlx_array out, const expected_values* e, linear_kind kind) {
  const mlx_dtype dt = mlx_array_dtype(out);
  float* o = host_values(out);
  if (!o) return -1;
  int64_t outside = 0;
  if (is_gated(kind)) {
    outside = gated_outside(o, e, dt, kind);
  } else {
    for (int i = 0; i < e->M * e->N; i++) {
      float lo, hi;
      rounding_bracket(e->value[i], e->err[i], dt, &lo, &hi);
      outside += o[i] < lo || o[i] > hi;
    }
  }
  free(o);
  return outside;
}

/* The layers of one rms_norm_linear case over D features: `out` (N rows) with its bias (N), and
 * the gated one (2I rows) stacking gate over up, in one layout. */
typedef struct {
  layer out, gated;
  mlx_array bias;
  int N, I;
} norm_linear_layers;

static norm_linear_layers make_layers(int D, int N, int I, int bits, int group, mlx_dtype dt) {
  int bs[1] = {N};
  norm_linear_layers m = {make_layer(N, D, bits, group, dt), make_layer(2 * I, D, bits, group, dt),
                          random_array(bs, 1, 1.0f, dt), N, I};
  return m;
}

static void free_layers(norm_linear_layers* m) {
  free_layer(&m->out);
  free_layer(&m->gated);
  mlx_array_free(m->bias);
}

/* rms_norm_linear(scaled, sumsq) for kind with the case's layer and bias (or none). */
static int run_rms_norm_linear(mlx_array* out, mlx_array scaled, mlx_array sumsq, float eps,
                               const norm_linear_layers* m, linear_kind kind) {
  const layer* l = is_gated(kind) ? &m->gated : &m->out;
  return mlxc_fast_rms_norm_linear(out, scaled, sumsq, eps, l->w, l->scales, l->biases, layer_group(l),
                                   layer_bits(l), kind == LINEAR_BIAS ? m->bias : none, activation_of(kind), cpu);
}

/* rms_norm_linear of scaled (rows, D) with sumsq for each kind against the written-out values. */
static void check_rms_norm_linear(mlx_array scaled, mlx_array sumsq, const norm_linear_layers* m, float eps,
                                  const char* what) {
  for (int k = 0; k < 4; k++) {
    const linear_kind kind = (linear_kind)k;
    const layer* l = is_gated(kind) ? &m->gated : &m->out;
    mlx_array out = mlx_array_new();
    CHECK_MSG(run_rms_norm_linear(&out, scaled, sumsq, eps, m, kind) == 0, "%s, %s: %s", what, kind_names[k],
              mlxc_last_error());
    expected_values e = expected_rms_norm_linear(scaled, sumsq, eps, l, is_gated(kind) ? 2 * m->I : m->N,
                                                 kind == LINEAR_BIAS ? m->bias : none);
    const int64_t outside = outside_expected(out, &e, kind);
    CHECK_MSG(outside == 0, "%s, %s: %lld values outside the written-out ones", what, kind_names[k],
              (long long)outside);
    CHECK(mlx_array_dtype(out) == mlx_array_dtype(scaled));
    CHECK_EQ_INT(mlx_array_dim(out, -1), is_gated(kind) ? m->I : m->N);
    free_expected(&e);
    mlx_array_free(out);
  }
}

/* One row (the fused kernel for float16/bfloat16 with plain, 4- and 8-bit weights) and 3 rows,
 * float32 too, each layout, sumsq whole (P = 1) and in runs of 4; rows of mean square about 3
 * and 3e-5 (where eps = 1e-5 weighs: a wrong eps fails). */
TEST(test_rms_norm_linear_equals_written_out_values) {
  enum { D = 128, N = 96, I = 40 };
  const mlx_dtype types[3] = {MLX_FLOAT16, MLX_BFLOAT16, MLX_FLOAT32};
  for (int t = 0; t < 3; t++)
    for (int q = 0; q < 5; q++) {
      norm_linear_layers m = make_layers(D, N, I, layouts[q][0], layouts[q][1], types[t]);
      for (int rows = 1; rows <= 3; rows += 2)
        for (int c = 0; c < 2; c++) {
          int hs[2] = {rows, D};
          mlx_array scaled = random_array(hs, 2, 2.0f, types[t]);
          mlx_array h = random_array(hs, 2, c ? 0.01f : 3.0f, MLX_FLOAT32); /* sumsq's source */
          mlx_array whole = host_sumsq(h, D), runs = host_sumsq(h, 4);
          char what[96];
          snprintf(what, sizeof what, "dtype %d, bits %d, %d rows, ms %s", (int)types[t], layouts[q][0], rows,
                   c ? "3e-5" : "3");
          check_rms_norm_linear(scaled, whole, &m, 1e-5f, what);
          check_rms_norm_linear(scaled, runs, &m, 1e-5f, what);
          FREE_ALL(scaled, h, whole, runs);
        }
      free_layers(&m);
    }
}

/* The fused kernel (one half row) against the composed ops on the same row (broadcast to two
 * rows, which compose): at most 1 ulp of the row's largest value apart (mostly equal), from the
 * float32 order of the product's additions and of sumsq's (an output near zero, after the bias
 * cancels the product, can be more ulps of its own apart). */
TEST(test_rms_norm_linear_fused_equals_composed) {
  enum { D = 128, N = 96, I = 40 };
  for (int t = 0; t < 2; t++)
    for (int q = 0; q < 3; q++) {
      norm_linear_layers m = make_layers(D, N, I, layouts[q][0], layouts[q][1], half_types[t]);
      int hs[2] = {1, D}, two[2] = {2, D}, p2[2] = {2, D / 4}, r0[2] = {0, 0}, r1[2] = {1, 0}, step[2] = {1, 1};
      mlx_array scaled = random_array(hs, 2, 2.0f, half_types[t]), h = random_array(hs, 2, 3.0f, MLX_FLOAT32);
      mlx_array sumsq = host_sumsq(h, 4), scaled2 = mlx_array_new(), sumsq2 = mlx_array_new();
      mlx_broadcast_to(&scaled2, scaled, two, 2, cpu);
      mlx_broadcast_to(&sumsq2, sumsq, p2, 2, cpu);
      for (int k = 0; k < 4; k++) {
        mlx_array fused = mlx_array_new(), composed = mlx_array_new();
        CHECK_EQ_INT(run_rms_norm_linear(&fused, scaled, sumsq, 1e-5f, &m, (linear_kind)k), 0);
        CHECK_EQ_INT(run_rms_norm_linear(&composed, scaled2, sumsq2, 1e-5f, &m, (linear_kind)k), 0);
        r1[1] = mlx_array_dim(composed, -1);
        mlx_slice(&composed, composed, r0, 2, r1, 2, step, 2, cpu);
        const double d = row_gap_ulps(fused, composed);
        CHECK_MSG(d >= 0 && d <= 1, "dtype %d, bits %d, %s: %g ulp apart", (int)half_types[t], layouts[q][0],
                  kind_names[k], d);
        FREE_ALL(fused, composed);
      }
      FREE_ALL(scaled, h, sumsq, scaled2, sumsq2);
      free_layers(&m);
    }
}

/* The decode step's norm as the model code would run it separately: mlx_fast_rms_norm(sum,
 * norm weight, eps), then the linear layer (matmul, addmm, quantized_matmul and add, or
 * gated_linear). */
static int reference_norm_then_linear(mlx_array* out, mlx_array sum, mlx_array norm_weight, float eps,
                                      const norm_linear_layers* m, linear_kind kind) {
  const layer* l = is_gated(kind) ? &m->gated : &m->out;
  mlx_array normed = mlx_array_new(), wt = mlx_array_new();
  int st = mlx_fast_rms_norm(&normed, sum, norm_weight, eps, cpu);
  if (!st && is_gated(kind))
    st = mlxc_fast_gated_linear(out, normed, l->w, l->scales, l->biases, layer_group(l), layer_bits(l),
                                kind_names[kind], cpu);
  else if (!st && kind == LINEAR_BIAS && !l->bits)
    st = mlx_transpose(&wt, l->w, cpu) || mlx_addmm(out, m->bias, normed, wt, 1.0f, 1.0f, cpu);
  else if (!st)
    st = layer_matmul(out, normed, l) || (kind == LINEAR_BIAS && mlx_add(out, *out, m->bias, cpu));
  FREE_ALL(normed, wt);
  return st;
}

/* linear_residual with or without a norm weight, then rms_norm_linear of its scaled and sumsq,
 * against reference_norm_then_linear of its sum: within 2 ulps of the dtype at the row's largest
 * value (the normalising factor moves from before the product to after it, so the roundings
 * differ); gated, within 8 (glu multiplies the gate's difference by up and up's by act(gate),
 * which the row's largest output need not reflect: up to 4 seen over 20 seeds). float16 and
 * bfloat16, one row (fused) and two (composed), plain, 4- and 8-bit; D = 128 (sumsq in 32 runs
 * of 4) and 66 (17 runs, the last of 2; the next layer plain, as no group divides 66). */
TEST(test_rms_norm_linear_after_linear_residual_equals_rms_norm_then_linear) {
  enum { K = 128, N = 96, I = 40 };
  const int widths[2] = {128, 66};
  for (int t = 0; t < 2; t++)
    for (int q = 0; q < 3; q++)
      for (int d = 0; d < 2; d++)
        for (int rows = 1; rows <= 2; rows++) {
          const mlx_dtype dt = half_types[t];
          const int D = widths[d], next = layouts[q][1] && D % layouts[q][1] == 0 ? q : 0;
          layer in = make_layer(D, K, layouts[q][0], layouts[q][1], dt);
          norm_linear_layers m = make_layers(D, N, I, layouts[next][0], layouts[next][1], dt);
          int xs[2] = {rows, K}, rs[2] = {rows, D}, nws[1] = {D};
          mlx_array x = random_array(xs, 2, 1.0f, dt), r = random_array(rs, 2, 4.0f, dt);
          mlx_array nw = random_array(nws, 1, 2.0f, dt);
          for (int with_w = 0; with_w < 2; with_w++) {
            mlx_array sum = mlx_array_new(), sumsq = mlx_array_new(), scaled = mlx_array_new();
            mlx_array weight = with_w ? nw : none;
            CHECK_EQ_INT(mlxc_fast_linear_residual(&sum, &sumsq, &scaled, x, in.w, in.scales, in.biases,
                                                   layer_group(&in), layer_bits(&in), r, weight, cpu),
                         0);
            CHECK_EQ_INT(sumsq_mismatches(sumsq, sum), 0);
            for (int k = 0; k < 4; k++) {
              mlx_array out = mlx_array_new(), ref = mlx_array_new();
              CHECK_EQ_INT(run_rms_norm_linear(&out, scaled, sumsq, 1e-5f, &m, (linear_kind)k), 0);
              CHECK_EQ_INT(reference_norm_then_linear(&ref, sum, weight, 1e-5f, &m, (linear_kind)k), 0);
              const double gap = row_gap_ulps(out, ref);
              CHECK_MSG(gap >= 0 && gap <= (is_gated((linear_kind)k) ? 8 : 2),
                        "dtype %d, bits %d, D %d, %d rows, norm weight %d, %s: %g ulp apart", (int)dt,
                        layouts[q][0], D, rows, with_w, kind_names[k], gap);
              FREE_ALL(out, ref);
            }
            FREE_ALL(sum, sumsq, scaled);
          }
          FREE_ALL(x, r, nw);
          free_layer(&in);
          free_layers(&m);
        }
}

/* The comparisons can fail. The written-out values hold one value for 3 outputs in 4 or more
 * (the bracket is that narrow: about 9 in 10 here), and they reject the product rounded to the dtype before the scaling
 * (matmul in the dtype, then times inv: what scaling a stored product would give); against the
 * separate norm and linear layer, eps 0.5 for 1e-5 and a norm weight left out are far more than
 * 2 ulps away. */
TEST(test_rms_norm_linear_mismatch_is_detected) {
  enum { D = 128, N = 96 };
  int hs[2] = {1, D}, nws[1] = {D};
  mlx_array h = random_array(hs, 2, 2.0f, MLX_BFLOAT16), sumsq = host_sumsq(h, 4);
  mlx_array nw = random_array(nws, 1, 2.0f, MLX_BFLOAT16), scaled = mlx_array_new();
  mlx_multiply(&scaled, h, nw, cpu);
  norm_linear_layers m = make_layers(D, N, N / 2, 0, 0, MLX_BFLOAT16);
  expected_values e = expected_rms_norm_linear(scaled, sumsq, 1e-5f, &m.out, N, none);
  int single = 0;
  for (int i = 0; i < N; i++) {
    float lo, hi;
    rounding_bracket(e.value[i], e.err[i], MLX_BFLOAT16, &lo, &hi);
    single += lo == hi;
  }
  CHECK_MSG(single >= N * 3 / 4, "only %d of %d brackets hold one value", single, N);
  mlx_array rounded = mlx_array_new(), inv = mlx_array_new(), total = mlx_array_new();
  CHECK_EQ_INT(layer_matmul(&rounded, scaled, &m.out), 0); /* bfloat16: the product rounded */
  mlx_sum_axis(&total, sumsq, -1, true, cpu);
  float ms = mlx_array_data_float32(total)[0] / (float)D;
  mlx_array_free(inv);
  inv = mlx_array_new_float(1.0f / sqrtf(ms + 1e-5f));
  mlx_astype(&rounded, rounded, MLX_FLOAT32, cpu);
  mlx_multiply(&rounded, rounded, inv, cpu);
  mlx_astype(&rounded, rounded, MLX_BFLOAT16, cpu);
  CHECK(outside_expected(rounded, &e, LINEAR_PLAIN) > 0);
  mlx_array out = mlx_array_new(), unweighted = mlx_array_new(), ref = mlx_array_new();
  CHECK_EQ_INT(run_rms_norm_linear(&out, scaled, sumsq, 0.5f, &m, LINEAR_PLAIN), 0);
  CHECK_EQ_INT(run_rms_norm_linear(&unweighted, h, sumsq, 1e-5f, &m, LINEAR_PLAIN), 0);
  CHECK_EQ_INT(reference_norm_then_linear(&ref, h, nw, 1e-5f, &m, LINEAR_PLAIN), 0);
  CHECK(row_gap_ulps(out, ref) > 2);
  CHECK(row_gap_ulps(unweighted, ref) > 2);
  free_expected(&e);
  free_layers(&m);
  FREE_ALL(h, sumsq, nw, scaled, rounded, inv, total, out, unweighted, ref);
}

/* ---- errors ---- */

/* A quantized weight for the error cases: (rows, K) bfloat16 values at 4 bits in groups of 64. */
static layer error_layer(int rows, int K) { return make_layer(rows, K, 4, 64, MLX_BFLOAT16); }

typedef struct {
  mlx_array w, scales, biases;
  mlx_optional_int group, bits;
} weight_case;

/* The weight errors both ops share (ops_check_linear_weight): plain and quantized layouts that
 * do not fit, each with the phrase its message must hold. q: a 4-bit, group-64 layer over the
 * input's K features; plain: a bfloat16 weight over them; f16: a float16 one. */
static int weight_error_cases(weight_case* c, const char** message, const layer* q, mlx_array plain,
                              mlx_array f16, mlx_array f16_scales) {
  const mlx_optional_int g64 = {64, true}, b4 = {4, true}, b8 = {8, true}, b7 = {7, true}, g16 = {16, true},
                         g32 = {32, true};
  int n = 0;
  c[n] = (weight_case){f16, none, none, unset, unset}, message[n++] = "dtype";
  c[n] = (weight_case){plain, none, none, g64, b4}, message[n++] = "quantized weights only";
  c[n] = (weight_case){plain, none, q->biases, unset, unset}, message[n++] = "biases without scales";
  c[n] = (weight_case){q->w, none, none, unset, unset}, message[n++] = "needs scales";
  c[n] = (weight_case){q->w, q->scales, none, g64, b4}, message[n++] = "need biases";
  c[n] = (weight_case){q->w, q->scales, q->biases, g64, b7}, message[n++] = "bits must be";
  c[n] = (weight_case){q->w, q->scales, q->biases, g16, b4}, message[n++] = "group_size must be";
  c[n] = (weight_case){plain, q->scales, q->biases, g64, b4}, message[n++] = "packed uint32";
  c[n] = (weight_case){q->w, f16_scales, q->biases, g64, b4}, message[n++] = "scales and biases must have";
  c[n] = (weight_case){q->w, q->scales, q->biases, g64, b8}, message[n++] = "quantized weight must have shape";
  c[n] = (weight_case){q->w, q->scales, q->biases, g32, b4}, message[n++] = "scales and biases must have shape";
  return n;
}

TEST(test_linear_residual_errors) {
  mlxc_set_errors_quiet(1);
  enum { K = 128, N = 64 };
  int xs[2] = {1, K}, ws[2] = {N, K}, wk[2] = {N, 32}, rs[2] = {1, N}, r2[2] = {2, N};
  int v64[1] = {N}, v32[1] = {32}, m2[2] = {1, N}, ss[2] = {N, K / 64};
  mlx_array x = random_array(xs, 2, 1.0f, MLX_BFLOAT16), w = random_array(ws, 2, 1.0f, MLX_BFLOAT16);
  mlx_array r = random_array(rs, 2, 1.0f, MLX_BFLOAT16), xi = random_array(xs, 2, 1.0f, MLX_INT32);
  mlx_array wf = random_array(ws, 2, 1.0f, MLX_FLOAT16), rf = random_array(rs, 2, 1.0f, MLX_FLOAT16);
  mlx_array narrow = random_array(wk, 2, 1.0f, MLX_BFLOAT16);
  mlx_array tall = random_array(r2, 2, 1.0f, MLX_BFLOAT16), wide = random_array(xs, 2, 1.0f, MLX_BFLOAT16);
  mlx_array nw = random_array(v64, 1, 1.0f, MLX_BFLOAT16), nw32 = random_array(v32, 1, 1.0f, MLX_BFLOAT16);
  mlx_array nwf = random_array(v64, 1, 1.0f, MLX_FLOAT16), nw2 = random_array(m2, 2, 1.0f, MLX_BFLOAT16);
  mlx_array sf = random_array(ss, 2, 1.0f, MLX_FLOAT16);
  layer q = error_layer(N, K);
  struct {
    mlx_array x, r, nw;
    weight_case w;
    const char* message;
  } cases[40];
  const weight_case plain = {w, none, none, unset, unset};
  int n = 0;
#define CASE(X, W, R, NW, MESSAGE) \
  cases[n].x = X, cases[n].w = W, cases[n].r = R, cases[n].nw = NW, cases[n++].message = MESSAGE
  CASE(xi, plain, r, none, "float32, float16 or bfloat16"); /* int32 x */
  CASE(x, plain, rf, none, "dtype");                        /* float16 residual */
  CASE(x, ((weight_case){narrow, none, none, unset, unset}), r, none, "shape"); /* K 32 vs x's 128 */
  CASE(x, plain, tall, none, "residual");  /* 2 rows vs x's 1 */
  CASE(x, plain, wide, none, "residual");  /* 128 features vs N = 64 */
  CASE(x, plain, r, nw32, "norm weight");  /* (32) vs N = 64 */
  CASE(x, plain, r, nwf, "norm weight");   /* float16 vs bfloat16 */
  CASE(x, plain, r, nw2, "norm weight");   /* (1, 64) */
  CASE(none, plain, r, none, "empty");
  CASE(x, ((weight_case){none, none, none, unset, unset}), r, none, "empty");
  CASE(x, plain, none, none, "empty");
  weight_case wc[16];
  const char* wm[16];
  const int nw_cases = weight_error_cases(wc, wm, &q, w, wf, sf);
  for (int i = 0; i < nw_cases; i++) CASE(x, wc[i], r, nw, wm[i]);
#undef CASE
  for (int i = 0; i < n; i++) {
    mlx_array sum = mlx_array_new(), sumsq = mlx_array_new(), scaled = mlx_array_new();
    CHECK_MSG(mlxc_fast_linear_residual(&sum, &sumsq, &scaled, cases[i].x, cases[i].w.w, cases[i].w.scales,
                                        cases[i].w.biases, cases[i].w.group, cases[i].w.bits, cases[i].r, cases[i].nw,
                                        cpu) != 0,
              "case %d accepted", i);
    CHECK_MSG(strstr(mlxc_last_error(), cases[i].message) && strstr(mlxc_last_error(), "fast.linear_residual"),
              "case %d: '%s' lacks '%s'", i, mlxc_last_error(), cases[i].message);
    CHECK(sum.ctx == NULL && sumsq.ctx == NULL && scaled.ctx == NULL);
  }
  mlxc_set_errors_quiet(0);
  FREE_ALL(x, w, r, xi, wf, rf, narrow, tall, wide, nw, nw32, nwf, nw2, sf);
  free_layer(&q);
}

TEST(test_rms_norm_linear_errors) {
  mlxc_set_errors_quiet(1);
  enum { D = 128, N = 96 };
  int hs[2] = {1, D}, ss[2] = {1, 16}, s2[2] = {2, 16}, s0[2] = {1, 0}, ws[2] = {N, D}, wd[2] = {N, 32};
  int w95[2] = {95, D}, v96[1] = {N}, v48[1] = {48}, qs[2] = {N, D / 64};
  mlx_array h = random_array(hs, 2, 1.0f, MLX_BFLOAT16), hi = random_array(hs, 2, 1.0f, MLX_INT32);
  mlx_array s = random_array(ss, 2, 1.0f, MLX_FLOAT32), sh = random_array(ss, 2, 1.0f, MLX_BFLOAT16);
  mlx_array stall = random_array(s2, 2, 1.0f, MLX_FLOAT32), sempty = random_array(s0, 2, 1.0f, MLX_FLOAT32);
  mlx_array w = random_array(ws, 2, 1.0f, MLX_BFLOAT16), wn = random_array(wd, 2, 1.0f, MLX_BFLOAT16);
  mlx_array wf = random_array(ws, 2, 1.0f, MLX_FLOAT16), odd = random_array(w95, 2, 1.0f, MLX_BFLOAT16);
  mlx_array b = random_array(v96, 1, 1.0f, MLX_BFLOAT16), b48 = random_array(v48, 1, 1.0f, MLX_BFLOAT16);
  mlx_array bf = random_array(v96, 1, 1.0f, MLX_FLOAT16), sf = random_array(qs, 2, 1.0f, MLX_FLOAT16);
  layer q = error_layer(N, D);
  struct {
    mlx_array h, sumsq, bias;
    weight_case w;
    const char *act, *message;
  } cases[40];
  const weight_case plain = {w, none, none, unset, unset};
  int n = 0;
#define CASE(H, SS, W, BIAS, ACT, MESSAGE) \
  cases[n].h = H, cases[n].sumsq = SS, cases[n].w = W, cases[n].bias = BIAS, cases[n].act = ACT, \
  cases[n++].message = MESSAGE
  CASE(hi, s, plain, none, NULL, "float32, float16 or bfloat16"); /* int32 scaled */
  CASE(h, sh, plain, none, NULL, "sumsq must be float32");
  CASE(h, stall, plain, none, NULL, "sumsq must have shape"); /* 2 rows vs scaled's 1 */
  CASE(h, sempty, plain, none, NULL, "sumsq must have shape"); /* P = 0 */
  CASE(h, s, ((weight_case){wn, none, none, unset, unset}), none, NULL, "shape"); /* (96, 32) vs D = 128 */
  CASE(h, s, plain, b48, NULL, "bias");                                           /* (48) vs N = 96 */
  CASE(h, s, plain, bf, NULL, "bias");                                            /* float16 bias */
  CASE(h, s, plain, b, "silu", "bias is not allowed");
  CASE(h, s, ((weight_case){odd, none, none, unset, unset}), none, "gelu_tanh", "even"); /* 95 stacked rows */
  CASE(h, s, plain, none, "relu", "activation");
  CASE(none, s, plain, none, NULL, "empty");
  CASE(h, none, plain, none, NULL, "empty");
  CASE(h, s, ((weight_case){none, none, none, unset, unset}), none, NULL, "empty");
  weight_case wc[16];
  const char* wm[16];
  const int nw_cases = weight_error_cases(wc, wm, &q, w, wf, sf);
  for (int i = 0; i < nw_cases; i++) CASE(h, s, wc[i], none, NULL, wm[i]);
#undef CASE
  for (int i = 0; i < n; i++) {
    mlx_array out = mlx_array_new();
    CHECK_MSG(mlxc_fast_rms_norm_linear(&out, cases[i].h, cases[i].sumsq, 1e-5f, cases[i].w.w, cases[i].w.scales,
                                        cases[i].w.biases, cases[i].w.group, cases[i].w.bits, cases[i].bias,
                                        cases[i].act, cpu) != 0,
              "case %d accepted", i);
    CHECK_MSG(strstr(mlxc_last_error(), cases[i].message) && strstr(mlxc_last_error(), "fast.rms_norm_linear"),
              "case %d: '%s' lacks '%s'", i, mlxc_last_error(), cases[i].message);
    CHECK(out.ctx == NULL);
  }
  mlxc_set_errors_quiet(0);
  FREE_ALL(h, hi, s, sh, stall, sempty, w, wn, wf, odd, b, b48, bf, sf);
  free_layer(&q);
}

int main(void) {
  cpu = mlx_default_cpu_stream_new();
  none = mlx_array_new();
  RUN(test_linear_residual_equals_composed_ops_and_written_out_values);
  RUN(test_linear_residual_fused_equals_composed);
  RUN(test_linear_residual_roundings_are_observable);
  RUN(test_rms_norm_linear_equals_written_out_values);
  RUN(test_rms_norm_linear_fused_equals_composed);
  RUN(test_rms_norm_linear_after_linear_residual_equals_rms_norm_then_linear);
  RUN(test_rms_norm_linear_mismatch_is_detected);
  RUN(test_linear_residual_errors);
  RUN(test_rms_norm_linear_errors);
  mlx_stream_free(cpu);
  return TEST_SUMMARY();
}
