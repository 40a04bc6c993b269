/* fast.h kernels against double-precision references computed here with plain loops, and
 * mlxc/fast.h's fused ops against the ops they fuse. */
#include "mlx/c/mlx.h"
#include "mlxc/error.h"
#include "mlxc/fast.h"
#include "mlxc/half.h"
#include "test_util.h"

static mlx_stream cpu;
static mlx_array none;

static unsigned rng_state = 12345;
static float frand(void) {
  rng_state = rng_state * 1103515245u + 12345u;
  return ((rng_state >> 8) & 0xffff) / 32768.0f - 1.0f;
}

static mlx_array random_f32(const int* shape, int ndim, float* host) {
  int n = 1;
  for (int i = 0; i < ndim; i++) n *= shape[i];
  for (int i = 0; i < n; i++) host[i] = frand();
  return mlx_array_new_data(host, shape, ndim, MLX_FLOAT32);
}

TEST(test_rms_norm_matches_reference) {
  float x[3 * 8], w[8];
  int shape[2] = {3, 8}, wshape[1] = {8};
  mlx_array xa = random_f32(shape, 2, x), wa = random_f32(wshape, 1, w), out = mlx_array_new();
  CHECK_EQ_INT(mlx_fast_rms_norm(&out, xa, wa, 1e-5f, cpu), 0);
  const float* y = mlx_array_data_float32(out);
  for (int r = 0; r < 3; r++) {
    double ss = 0;
    for (int i = 0; i < 8; i++) ss += (double)x[r * 8 + i] * x[r * 8 + i];
    double inv = 1.0 / sqrt(ss / 8 + 1e-5);
    for (int i = 0; i < 8; i++) CHECK_NEAR(y[r * 8 + i], x[r * 8 + i] * inv * w[i], 1e-5);
  }
  mlx_array_free(xa);
  mlx_array_free(wa);
  mlx_array_free(out);
}

TEST(test_layer_norm_on_transposed_input_with_bias) {
  float x[4 * 6], w[4], b[4];
  int shape[2] = {6, 4}, vshape[1] = {4};
  mlx_array xa = random_f32(shape, 2, x), wa = random_f32(vshape, 1, w), ba = random_f32(vshape, 1, b);
  mlx_array t = mlx_array_new(), out = mlx_array_new();
  /* Normalise the rows of x^T (shape (4, 6)): a strided view. */
  mlx_transpose(&t, xa, cpu);
  float w6[6], b6[6];
  int v6[1] = {6};
  mlx_array w6a = random_f32(v6, 1, w6), b6a = random_f32(v6, 1, b6);
  CHECK_EQ_INT(mlx_fast_layer_norm(&out, t, w6a, b6a, 1e-5f, cpu), 0);
  const float* y = mlx_array_data_float32(out);
  for (int r = 0; r < 4; r++) {
    double mean = 0, var = 0;
    for (int i = 0; i < 6; i++) mean += x[i * 4 + r];
    mean /= 6;
    for (int i = 0; i < 6; i++) var += (x[i * 4 + r] - mean) * (x[i * 4 + r] - mean);
    var /= 6;
    for (int i = 0; i < 6; i++)
      CHECK_NEAR(y[r * 6 + i], (x[i * 4 + r] - mean) / sqrt(var + 1e-5) * w6[i] + b6[i], 1e-5);
  }
  (void)w;
  (void)b;
  mlx_array_free(xa);
  mlx_array_free(wa);
  mlx_array_free(ba);
  mlx_array_free(w6a);
  mlx_array_free(b6a);
  mlx_array_free(t);
  mlx_array_free(out);
}

TEST(test_rms_norm_bfloat16_rounds_like_transformers) {
  /* transformers: w * bf16(x * rsqrt(mean(x^2) + eps)) with the product rounded to bf16. */
  float x[4] = {1.0f, -2.0f, 3.0f, 0.5f}, w[4] = {0.5f, 1.5f, -1.0f, 2.0f};
  bfloat16_t xb[4], wb[4];
  for (int i = 0; i < 4; i++) {
    xb[i] = mlxc_float32_to_bfloat16(x[i]);
    wb[i] = mlxc_float32_to_bfloat16(w[i]);
  }
  int shape[1] = {4};
  mlx_array xa = mlx_array_new_data(xb, shape, 1, MLX_BFLOAT16), wa = mlx_array_new_data(wb, shape, 1, MLX_BFLOAT16);
  mlx_array out = mlx_array_new();
  CHECK_EQ_INT(mlx_fast_rms_norm(&out, xa, wa, 1e-6f, cpu), 0);
  CHECK_EQ_INT(mlx_array_dtype(out), MLX_BFLOAT16);
  const bfloat16_t* y = mlx_array_data_bfloat16(out);
  double ss = 0;
  for (int i = 0; i < 4; i++) ss += x[i] * x[i];
  float inv = (float)(1.0 / sqrt(ss / 4 + 1e-6));
  for (int i = 0; i < 4; i++) {
    float normed = mlxc_bfloat16_to_float32(mlxc_float32_to_bfloat16(x[i] * inv));
    CHECK_EQ_INT(y[i], mlxc_float32_to_bfloat16(normed * w[i]));
  }
  mlx_array_free(xa);
  mlx_array_free(wa);
  mlx_array_free(out);
}

/* Reference rope for one (L, D) slab: pairs (i, i + dims/2), or (2i, 2i+1) when traditional. */
static double rope_ref(const float* x, int D, int dims, int l, int d, double base, double scale,
                       double offset, int traditional) {
  int half = dims / 2;
  if (d >= dims) return x[l * D + d];
  int i = traditional ? d / 2 : d % half;
  int a = traditional ? 2 * i : i, b = traditional ? 2 * i + 1 : i + half;
  double theta = scale * (offset + l) * pow(base, -2.0 * i / dims);
  double x1 = x[l * D + a], x2 = x[l * D + b];
  int first = traditional ? d % 2 == 0 : d < half;
  return first ? x1 * cos(theta) - x2 * sin(theta) : x1 * sin(theta) + x2 * cos(theta);
}

TEST(test_rope_both_layouts_partial_dims_and_offset) {
  int L = 5, D = 8;
  float x[1 * 1 * 5 * 8];
  int shape[4] = {1, 1, L, D};
  mlx_array xa = random_f32(shape, 4, x), out = mlx_array_new();
  mlx_optional_float base = {10000.0f, true};
  for (int traditional = 0; traditional <= 1; traditional++) {
    CHECK_EQ_INT(mlx_fast_rope(&out, xa, 6, traditional, base, 0.5f, 3, none, cpu), 0);
    const float* y = mlx_array_data_float32(out);
    for (int l = 0; l < L; l++)
      for (int d = 0; d < D; d++)
        CHECK_NEAR(y[l * D + d], rope_ref(x, D, 6, l, d, 10000.0, 0.5, 3, traditional), 2e-5);
  }
  /* The same through an offset array. */
  mlx_array off = mlx_array_new_int(3);
  CHECK_EQ_INT(mlx_fast_rope_dynamic(&out, xa, 6, false, base, 0.5f, off, none, cpu), 0);
  const float* y = mlx_array_data_float32(out);
  CHECK_NEAR(y[2 * D + 1], rope_ref(x, D, 6, 2, 1, 10000.0, 0.5, 3, 0), 2e-5);
  mlx_array_free(off);
  mlx_array_free(xa);
  mlx_array_free(out);
}

TEST(test_rope_custom_freqs) {
  int L = 3, D = 4;
  float x[12];
  int shape[3] = {1, L, D};
  mlx_array xa = random_f32(shape, 3, x), out = mlx_array_new();
  float freqs[2] = {1.0f, 100.0f}; /* equivalent to base 100^(... ) : inv_freq = 1, 0.01 */
  int fshape[1] = {2};
  mlx_array fa = mlx_array_new_data(freqs, fshape, 1, MLX_FLOAT32);
  mlx_optional_float no_base = {0, false};
  CHECK_EQ_INT(mlx_fast_rope(&out, xa, 4, false, no_base, 1.0f, 0, fa, cpu), 0);
  const float* y = mlx_array_data_float32(out);
  for (int l = 0; l < L; l++)
    for (int d = 0; d < D; d++)
      CHECK_NEAR(y[l * D + d], rope_ref(x, D, 4, l, d, 10000.0, 1.0, 0, 0), 2e-5);
  mlx_array_free(fa);
  mlx_array_free(xa);
  mlx_array_free(out);
}

/* Reference attention with grouped heads, causal or additive mask, and sinks. */
static void sdpa_ref(const float* q, const float* k, const float* v, int B, int Hq, int Hk, int Lq,
                     int Lk, int D, double scale, int causal, const float* mask, const float* sinks,
                     double* out) {
  for (int b = 0; b < B; b++)
    for (int h = 0; h < Hq; h++)
      for (int i = 0; i < Lq; i++) {
        int kh = h / (Hq / Hk);
        double* s = malloc(sizeof(double) * (size_t)Lk);
        double m = sinks ? sinks[h] : -INFINITY, sum = 0;
        for (int j = 0; j < Lk; j++) {
          double dot = 0;
          for (int d = 0; d < D; d++)
            dot += (double)q[((b * Hq + h) * Lq + i) * D + d] * k[((b * Hk + kh) * Lk + j) * D + d];
          s[j] = dot * scale + (mask ? mask[i * Lk + j] : 0);
          if (causal && j > i + Lk - Lq) s[j] = -INFINITY;
          if (s[j] > m) m = s[j];
        }
        if (sinks) sum = exp(sinks[h] - m);
        for (int j = 0; j < Lk; j++) sum += s[j] == -INFINITY ? 0 : exp(s[j] - m);
        for (int d = 0; d < D; d++) {
          double acc = 0;
          for (int j = 0; j < Lk; j++)
            if (s[j] != -INFINITY) acc += exp(s[j] - m) * v[((b * Hk + kh) * Lk + j) * D + d];
          out[((b * Hq + h) * Lq + i) * D + d] = sum > 0 ? acc / sum : 0.0;
        }
        free(s);
      }
}

TEST(test_sdpa_grouped_causal_masked_and_sinks) {
  enum { B = 2, Hq = 4, Hk = 2, Lq = 3, Lk = 5, D = 8 };
  float q[B * Hq * Lq * D], k[B * Hk * Lk * D], v[B * Hk * Lk * D], mask[Lq * Lk], sinks[Hq];
  int qs[4] = {B, Hq, Lq, D}, ks[4] = {B, Hk, Lk, D}, ms[2] = {Lq, Lk}, ss[1] = {Hq};
  mlx_array qa = random_f32(qs, 4, q), ka = random_f32(ks, 4, k), va = random_f32(ks, 4, v);
  mlx_array ma = random_f32(ms, 2, mask), sa = random_f32(ss, 1, sinks), out = mlx_array_new();
  double ref[B * Hq * Lq * D];
  double scale = 1.0 / sqrt(D);
  struct {
    const char* mode;
    mlx_array mask, sinks;
    int causal;
    const float *m, *s;
  } cases[4] = {{"", none, none, 0, NULL, NULL},
                {"causal", none, none, 1, NULL, NULL},
                {"array", ma, none, 0, mask, NULL},
                {"causal", none, sa, 1, NULL, sinks}};
  for (int c = 0; c < 4; c++) {
    CHECK_EQ_INT(mlx_fast_scaled_dot_product_attention(&out, qa, ka, va, (float)scale, cases[c].mode,
                                                       cases[c].mask, cases[c].sinks, cpu), 0);
    sdpa_ref(q, k, v, B, Hq, Hk, Lq, Lk, D, scale, cases[c].causal, cases[c].m, cases[c].s, ref);
    const float* y = mlx_array_data_float32(out);
    for (int i = 0; i < B * Hq * Lq * D; i++) CHECK_NEAR(y[i], ref[i], 1e-5);
  }
  mlx_array_free(qa);
  mlx_array_free(ka);
  mlx_array_free(va);
  mlx_array_free(ma);
  mlx_array_free(sa);
  mlx_array_free(out);
}

/* Long key ranges are split over threads and the partial softmaxes merged: 1100 keys (ranges
 * of unequal length), a mask that hides whole ranges, causal with two queries, and sinks. */
TEST(test_sdpa_long_context_split_over_threads) {
  enum { B = 1, Hq = 2, Hk = 1, Lq = 2, Lk = 1100, D = 16 };
  static float q[B * Hq * Lq * D], k[B * Hk * Lk * D], v[B * Hk * Lk * D], mask[Lq * Lk];
  float sinks[Hq];
  int qs[4] = {B, Hq, Lq, D}, ks[4] = {B, Hk, Lk, D}, ms[2] = {Lq, Lk}, ss[1] = {Hq};
  mlx_array qa = random_f32(qs, 4, q), ka = random_f32(ks, 4, k), va = random_f32(ks, 4, v);
  for (int i = 0; i < Lq * Lk; i++) mask[i] = (i % Lk) < 700 ? -INFINITY : 0.25f * (float)(i % 3);
  mlx_array ma = mlx_array_new_data(mask, ms, 2, MLX_FLOAT32);
  mlx_array sa = random_f32(ss, 1, sinks), out = mlx_array_new();
  static double ref[B * Hq * Lq * D];
  double scale = 1.0 / sqrt(D);
  for (int c = 0; c < 3; c++) {
    const char* mode = c == 1 ? "array" : c == 2 ? "causal" : "";
    mlx_array m = c == 1 ? ma : none, sk = c == 2 ? sa : none;
    CHECK_EQ_INT(mlx_fast_scaled_dot_product_attention(&out, qa, ka, va, (float)scale, mode, m, sk, cpu), 0);
    sdpa_ref(q, k, v, B, Hq, Hk, Lq, Lk, D, scale, c == 2, c == 1 ? mask : NULL, c == 2 ? sinks : NULL, ref);
    const float* y = mlx_array_data_float32(out);
    for (int i = 0; i < B * Hq * Lq * D; i++) CHECK_NEAR(y[i], ref[i], 1e-5);
  }
  mlx_array_free(qa);
  mlx_array_free(ka);
  mlx_array_free(va);
  mlx_array_free(ma);
  mlx_array_free(sa);
  mlx_array_free(out);
}

/* Decode-shaped attention (one query, 7 query heads per kv head, head size 64) over key counts
 * that are not multiples of the vector loops' steps, float32 and bfloat16 keys and values (the
 * AVX-512 path where the processor has it), causal with a query ahead of the keys, and an
 * additive mask that hides the first keys. */
TEST(test_sdpa_decode_grouped_heads_bfloat16_and_odd_key_counts) {
  enum { B = 1, Hq = 14, Hk = 2, Lq = 1, D = 64, MAXK = 517 };
  static float q[B * Hq * Lq * D], k[B * Hk * MAXK * D], v[B * Hk * MAXK * D], mask[MAXK];
  static double ref[B * Hq * Lq * D];
  const int key_counts[3] = {1, 45, 517};
  double scale = 1.0 / sqrt(D);
  for (int c = 0; c < 3; c++)
    for (int bf = 0; bf < 2; bf++)
      for (int mode = 0; mode < 2; mode++) {
        int Lk = key_counts[c];
        int qs[4] = {B, Hq, Lq, D}, ks[4] = {B, Hk, Lk, D}, ms[2] = {Lq, Lk};
        mlx_array qa = random_f32(qs, 4, q), ka = random_f32(ks, 4, k), va = random_f32(ks, 4, v);
        for (int j = 0; j < Lk; j++) mask[j] = j < Lk / 3 ? -INFINITY : 0.125f * (float)(j % 5);
        mlx_array ma = mlx_array_new_data(mask, ms, 2, MLX_FLOAT32), out = mlx_array_new();
        if (bf) { /* keys and values as bfloat16; the reference reads the rounded values */
          CHECK_EQ_INT(mlx_astype(&ka, ka, MLX_BFLOAT16, cpu), 0);
          CHECK_EQ_INT(mlx_astype(&va, va, MLX_BFLOAT16, cpu), 0);
          for (int i = 0; i < B * Hk * Lk * D; i++) {
            k[i] = mlxc_bfloat16_to_float32(mlxc_float32_to_bfloat16(k[i]));
            v[i] = mlxc_bfloat16_to_float32(mlxc_float32_to_bfloat16(v[i]));
          }
        }
        CHECK_EQ_INT(mlx_fast_scaled_dot_product_attention(&out, qa, ka, va, (float)scale,
                                                           mode ? "array" : "causal",
                                                           mode ? ma : none, none, cpu), 0);
        CHECK_EQ_INT(mlx_astype(&out, out, MLX_FLOAT32, cpu), 0);
        sdpa_ref(q, k, v, B, Hq, Hk, Lq, Lk, D, scale, !mode, mode ? mask : NULL, NULL, ref);
        const float* y = mlx_array_data_float32(out);
        for (int i = 0; i < B * Hq * Lq * D; i++) CHECK_NEAR(y[i], ref[i], 1e-5);
        mlx_array_free(qa);
        mlx_array_free(ka);
        mlx_array_free(va);
        mlx_array_free(ma);
        mlx_array_free(out);
      }
}

/* A bfloat16 model's attention (q, keys and values bfloat16, so no promotion to float32) at the
 * edges of the tile kernels (AMX where the processor has it): 16 query heads per kv head (a full
 * tile of heads) with head size 128, 3 per kv head with three causal queries (prefill), 17 per
 * kv head (more than a tile: the AVX-512 loops), key counts around multiples of 16 and 32, and
 * 2000 keys split over threads. The output is bfloat16: within its rounding of the reference. */
TEST(test_sdpa_bfloat16_cache_tile_edges) {
  enum { MAXQ = 32 * 3 * 128, MAXK = 2 * 2000 * 128 };
  static float q[MAXQ], k[MAXK], v[MAXK];
  static double ref[MAXQ];
  const struct {
    int Hq, Hk, D, Lq, Lk;
  } cases[] = {{16, 1, 128, 1, 16}, {16, 1, 128, 1, 33}, {6, 2, 64, 3, 31}, {6, 2, 64, 3, 100},
               {17, 1, 64, 1, 40},  {32, 2, 128, 1, 2000}};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    int Hq = cases[c].Hq, Hk = cases[c].Hk, D = cases[c].D, Lq = cases[c].Lq, Lk = cases[c].Lk;
    int qs[4] = {1, Hq, Lq, D}, ks[4] = {1, Hk, Lk, D};
    mlx_array qa = random_f32(qs, 4, q), ka = random_f32(ks, 4, k), va = random_f32(ks, 4, v);
    CHECK_EQ_INT(mlx_astype(&qa, qa, MLX_BFLOAT16, cpu), 0);
    CHECK_EQ_INT(mlx_astype(&ka, ka, MLX_BFLOAT16, cpu), 0);
    CHECK_EQ_INT(mlx_astype(&va, va, MLX_BFLOAT16, cpu), 0);
    for (int i = 0; i < Hq * Lq * D; i++) q[i] = mlxc_bfloat16_to_float32(mlxc_float32_to_bfloat16(q[i]));
    for (int i = 0; i < Hk * Lk * D; i++) { /* the reference reads the rounded values */
      k[i] = mlxc_bfloat16_to_float32(mlxc_float32_to_bfloat16(k[i]));
      v[i] = mlxc_bfloat16_to_float32(mlxc_float32_to_bfloat16(v[i]));
    }
    double scale = 1.0 / sqrt(D);
    mlx_array out = mlx_array_new();
    CHECK_EQ_INT(mlx_fast_scaled_dot_product_attention(&out, qa, ka, va, (float)scale, "causal", none,
                                                       none, cpu), 0);
    CHECK_EQ_INT(mlx_astype(&out, out, MLX_FLOAT32, cpu), 0);
    sdpa_ref(q, k, v, 1, Hq, Hk, Lq, Lk, D, scale, 1, NULL, NULL, ref);
    const float* y = mlx_array_data_float32(out);
    for (int i = 0; i < Hq * Lq * D; i++) CHECK_NEAR(y[i], ref[i], 1e-5 + fabs(ref[i]) / 256);
    mlx_array_free(qa);
    mlx_array_free(ka);
    mlx_array_free(va);
    mlx_array_free(out);
  }
}

TEST(test_sdpa_boolean_mask_and_strided_inputs) {
  enum { L = 4, D = 4 };
  /* Inputs laid out (B, L, H, D) and transposed to (B, H, L, D), as models do. */
  float q[L * D], k[L * D], v[L * D];
  int shape[4] = {1, L, 1, D}, perm[4] = {0, 2, 1, 3};
  mlx_array qa = random_f32(shape, 4, q), ka = random_f32(shape, 4, k), va = random_f32(shape, 4, v);
  mlx_array qt = mlx_array_new(), kt = mlx_array_new(), vt = mlx_array_new(), out = mlx_array_new();
  mlx_transpose_axes(&qt, qa, perm, 4, cpu);
  mlx_transpose_axes(&kt, ka, perm, 4, cpu);
  mlx_transpose_axes(&vt, va, perm, 4, cpu);
  bool keep[L * L];
  float additive[L * L];
  for (int i = 0; i < L; i++)
    for (int j = 0; j < L; j++) {
      keep[i * L + j] = j <= i;
      additive[i * L + j] = j <= i ? 0.0f : -INFINITY;
    }
  int ms[2] = {L, L};
  mlx_array ma = mlx_array_new_data(keep, ms, 2, MLX_BOOL);
  CHECK_EQ_INT(mlx_fast_scaled_dot_product_attention(&out, qt, kt, vt, 0.5f, "array", ma, none, cpu), 0);
  double ref[L * D];
  sdpa_ref(q, k, v, 1, 1, 1, L, L, D, 0.5, 0, additive, NULL, ref);
  const float* y = mlx_array_data_float32(out);
  for (int i = 0; i < L * D; i++) CHECK_NEAR(y[i], ref[i], 1e-5);
  mlx_array_free(qa);
  mlx_array_free(ka);
  mlx_array_free(va);
  mlx_array_free(qt);
  mlx_array_free(kt);
  mlx_array_free(vt);
  mlx_array_free(ma);
  mlx_array_free(out);
}

/* How many values of a and b (same shape) differ, compared as float32 (-1: unreadable). */
static int differing_values(mlx_array a, mlx_array b) {
  mlx_array fa = mlx_array_new(), fb = mlx_array_new();
  mlx_astype(&fa, a, MLX_FLOAT32, cpu);
  mlx_astype(&fb, b, MLX_FLOAT32, cpu);
  const float *pa = mlx_array_data_float32(fa), *pb = mlx_array_data_float32(fb);
  int bad = pa && pb ? 0 : -1;
  for (size_t i = 0; bad >= 0 && i < mlx_array_size(fa); i++) bad += pa[i] != pb[i];
  mlx_array_free(fa);
  mlx_array_free(fb);
  return bad;
}

/* add_rms_norm equals mlx_add then mlx_fast_rms_norm bit for bit (the sum rounded to its dtype
 * first), with and without a weight, a strided residual, and each float dtype. */
TEST(test_add_rms_norm_equals_add_then_norm) {
  const mlx_dtype types[3] = {MLX_FLOAT32, MLX_FLOAT16, MLX_BFLOAT16};
  float x[4 * 3 * 96], r[4 * 3 * 96], w[96];
  int shape[3] = {4, 3, 96}, rshape[3] = {3, 4, 96}, wshape[1] = {96};
  mlx_array xa0 = random_f32(shape, 3, x), ra0 = random_f32(rshape, 3, r), wa0 = random_f32(wshape, 1, w);
  for (int t = 0; t < 3; t++) {
    mlx_array xa = mlx_array_new(), ra = mlx_array_new(), wa = mlx_array_new();
    mlx_astype(&xa, xa0, types[t], cpu);
    mlx_astype(&ra, ra0, types[t], cpu);
    mlx_swapaxes(&ra, ra, 0, 1, cpu); /* (4, 3, 96) read through strides */
    mlx_astype(&wa, wa0, types[t], cpu);
    for (int with_w = 0; with_w < 2; with_w++) {
      mlx_array sum = mlx_array_new(), normed = mlx_array_new(), s2 = mlx_array_new(), n2 = mlx_array_new();
      mlx_array weight = with_w ? wa : none;
      CHECK_EQ_INT(mlxc_fast_add_rms_norm(&sum, &normed, xa, ra, weight, 1e-5f, cpu), 0);
      CHECK_EQ_INT(mlx_add(&s2, xa, ra, cpu), 0);
      CHECK_EQ_INT(mlx_fast_rms_norm(&n2, s2, weight, 1e-5f, cpu), 0);
      mlx_array pairs[2][2] = {{sum, s2}, {normed, n2}};
      for (int k = 0; k < 2; k++) {
        CHECK(mlx_array_dtype(pairs[k][0]) == mlx_array_dtype(pairs[k][1]));
        int bad = differing_values(pairs[k][0], pairs[k][1]);
        CHECK_MSG(bad == 0, "dtype %d, weight %d, output %d: %d values differ", (int)types[t], with_w, k, bad);
      }
      mlx_array_free(sum);
      mlx_array_free(normed);
      mlx_array_free(s2);
      mlx_array_free(n2);
    }
    mlx_array_free(xa);
    mlx_array_free(ra);
    mlx_array_free(wa);
  }
  /* Errors: residual of another shape or dtype, a weight of the wrong length, integers. */
  mlxc_set_errors_quiet(1);
  mlx_array sum = mlx_array_new(), normed = mlx_array_new(), half = mlx_array_new(), i32 = mlx_array_new_int(1);
  mlx_astype(&half, xa0, MLX_FLOAT16, cpu);
  CHECK(mlxc_fast_add_rms_norm(&sum, &normed, xa0, ra0, none, 1e-5f, cpu) != 0);
  CHECK(strstr(mlxc_last_error(), "residual") != NULL);
  CHECK(mlxc_fast_add_rms_norm(&sum, &normed, xa0, half, none, 1e-5f, cpu) != 0);
  int s5[1] = {5};
  mlx_array w5 = mlx_array_new_data(w, s5, 1, MLX_FLOAT32);
  CHECK(mlxc_fast_add_rms_norm(&sum, &normed, xa0, xa0, w5, 1e-5f, cpu) != 0);
  CHECK(strstr(mlxc_last_error(), "weight") != NULL);
  CHECK(mlxc_fast_add_rms_norm(&sum, &normed, i32, i32, none, 1e-5f, cpu) != 0);
  CHECK(mlxc_fast_add_rms_norm(&sum, &normed, none, xa0, none, 1e-5f, cpu) != 0);
  mlxc_set_errors_quiet(0);
  mlx_array all[] = {xa0, ra0, wa0, sum, normed, half, i32, w5};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) mlx_array_free(all[i]);
}

/* glu equals the composed ops bit for bit: sigmoid(g) * g * u, and the tanh GELU of the
 * decoder's formula with its constants rounded to the dtype; gate and up as the two halves of
 * one projection (strided rows). */
static int compose_glu(mlx_array* out, mlx_array g, mlx_array u, bool gelu) {
  mlx_array t = mlx_array_new(), c = mlx_array_new();
  int st = 0;
  if (!gelu) {
    st = st || mlx_sigmoid(&t, g, cpu);
    st = st || mlx_multiply(&t, t, g, cpu);
  } else {
    mlx_dtype dt = mlx_array_dtype(g);
    mlx_array k1 = mlx_array_new_float(0.044715f), k2 = mlx_array_new_float(0.7978845608f),
              half = mlx_array_new_float(0.5f), one = mlx_array_new_float(1.0f);
    st = st || mlx_astype(&k1, k1, dt, cpu) || mlx_astype(&k2, k2, dt, cpu) || mlx_astype(&half, half, dt, cpu) ||
         mlx_astype(&one, one, dt, cpu);
    st = st || mlx_multiply(&t, g, g, cpu) || mlx_multiply(&t, t, g, cpu) || mlx_multiply(&t, t, k1, cpu);
    st = st || mlx_add(&t, t, g, cpu) || mlx_multiply(&t, t, k2, cpu) || mlx_tanh(&t, t, cpu);
    st = st || mlx_add(&t, t, one, cpu) || mlx_multiply(&c, g, half, cpu) || mlx_multiply(&t, t, c, cpu);
    mlx_array_free(k1);
    mlx_array_free(k2);
    mlx_array_free(half);
    mlx_array_free(one);
  }
  st = st || mlx_multiply(out, t, u, cpu);
  mlx_array_free(t);
  mlx_array_free(c);
  return st;
}

TEST(test_glu_equals_composed_ops) {
  const mlx_dtype types[3] = {MLX_FLOAT32, MLX_FLOAT16, MLX_BFLOAT16};
  float h[2 * 5 * 2 * 53];
  int shape[3] = {2, 5, 2 * 53};
  mlx_array h0 = random_f32(shape, 3, h);
  mlx_array scale = mlx_array_new_float(4.0f);
  mlx_multiply(&h0, h0, scale, cpu); /* values in [-4, 4): both branches of the sigmoid, tanh's tails */
  for (int t = 0; t < 3; t++)
    for (int gelu = 0; gelu < 2; gelu++) {
      mlx_array hh = mlx_array_new(), out = mlx_array_new(), ref = mlx_array_new();
      mlx_vector_array parts = mlx_vector_array_new();
      mlx_array g = mlx_array_new(), u = mlx_array_new();
      mlx_astype(&hh, h0, types[t], cpu);
      mlx_split(&parts, hh, 2, -1, cpu);
      mlx_vector_array_get(&g, parts, 0);
      mlx_vector_array_get(&u, parts, 1);
      CHECK_EQ_INT(mlxc_fast_glu(&out, g, u, gelu ? "gelu_tanh" : "silu", cpu), 0);
      CHECK_EQ_INT(compose_glu(&ref, g, u, gelu), 0);
      CHECK(mlx_array_dtype(out) == types[t]);
      int bad = differing_values(out, ref);
      CHECK_MSG(bad == 0, "dtype %d, %s: %d of %zu values differ", (int)types[t], gelu ? "gelu" : "silu", bad,
                mlx_array_size(out));
      mlx_array all[] = {hh, out, ref, g, u};
      for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) mlx_array_free(all[i]);
      mlx_vector_array_free(parts);
    }
  mlxc_set_errors_quiet(1);
  mlx_array out = mlx_array_new(), i32 = mlx_array_new_int(1), hb = mlx_array_new();
  mlx_astype(&hb, h0, MLX_BFLOAT16, cpu);
  CHECK(mlxc_fast_glu(&out, h0, h0, "relu", cpu) != 0);
  CHECK(strstr(mlxc_last_error(), "silu") != NULL);
  CHECK(mlxc_fast_glu(&out, h0, hb, "silu", cpu) != 0);
  CHECK(mlxc_fast_glu(&out, i32, i32, "silu", cpu) != 0);
  CHECK(mlxc_fast_glu(&out, h0, h0, NULL, cpu) != 0);
  mlxc_set_errors_quiet(0);
  mlx_array all[] = {h0, scale, out, i32, hb};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) mlx_array_free(all[i]);
}

/* gated_linear's reference: the linear layer (mlx_matmul with the transposed weight, or
 * mlx_quantized_matmul), its two halves, and glu as the separate ops compose it (compose_glu). */
static int compose_gated_linear(mlx_array* out, mlx_array x, mlx_array w, mlx_array sc, mlx_array bi, int group,
                                int bits, bool gelu) {
  mlx_array h = mlx_array_new(), wt = mlx_array_new(), g = mlx_array_new(), u = mlx_array_new();
  mlx_vector_array parts = mlx_vector_array_new();
  mlx_optional_int gs = {group, true}, nb = {bits, true};
  int st = bits ? mlx_quantized_matmul(&h, x, w, sc, bi, true, gs, nb, "affine", cpu)
                : mlx_transpose(&wt, w, cpu) || mlx_matmul(&h, x, wt, cpu);
  st = st || mlx_split(&parts, h, 2, -1, cpu) || mlx_vector_array_get(&g, parts, 0) ||
       mlx_vector_array_get(&u, parts, 1) || compose_glu(out, g, u, gelu);
  mlx_array all[] = {h, wt, g, u};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) mlx_array_free(all[i]);
  mlx_vector_array_free(parts);
  return st;
}

/* Whether a and b have the same dtype and shape and equal values. */
static bool same_result(mlx_array a, mlx_array b) {
  if (mlx_array_dtype(a) != mlx_array_dtype(b) || mlx_array_ndim(a) != mlx_array_ndim(b)) return false;
  for (size_t i = 0; i < mlx_array_ndim(a); i++)
    if (mlx_array_shape(a)[i] != mlx_array_shape(b)[i]) return false;
  return differing_values(a, b) == 0;
}

/* gated_linear equals the composed ops bit for bit: one row of x (the fused kernel for float16
 * and bfloat16: 2-D, 1-D and a strided view) and several rows and float32 (composed at build
 * time), float32/float16/bfloat16 weights
 * and 4- and 8-bit affine-quantized ones in groups of 32 and 64, both activations. The products
 * are rounded to the dtype before the activation: skipping that rounding changes many bfloat16
 * values. */
TEST(test_gated_linear_equals_composed_ops) {
  enum { K = 192, HALF = 37 }; /* 2 * HALF = 74 stacked rows */
  const mlx_dtype types[3] = {MLX_FLOAT32, MLX_FLOAT16, MLX_BFLOAT16};
  const int quant[5][2] = {{0, 0}, {4, 32}, {4, 64}, {8, 32}, {8, 64}}; /* {bits, group}; 0: plain */
  static float wv[2 * HALF * K], xv[2 * K * 3];
  int ws[2] = {2 * HALF, K}, xs[2] = {2 * 3, K}, xcol[2] = {K, 2};
  mlx_array w0 = random_f32(ws, 2, wv), x0 = random_f32(xs, 2, xv), xc0 = random_f32(xcol, 2, xv);
  for (int t = 0; t < 3; t++)
    for (int q = 0; q < 5; q++) {
      mlx_dtype dt = types[t];
      const int bits = quant[q][0], group = quant[q][1];
      mlx_array w = mlx_array_new(), sc = mlx_array_new(), bi = mlx_array_new(), xall = mlx_array_new();
      mlx_astype(&w, w0, dt, cpu);
      mlx_astype(&xall, x0, dt, cpu);
      if (bits) {
        mlx_vector_array packed = mlx_vector_array_new();
        mlx_optional_int gs = {group, true}, nb = {bits, true};
        CHECK_EQ_INT(mlx_quantize(&packed, w, gs, nb, "affine", none, cpu), 0);
        mlx_vector_array_get(&w, packed, 0);
        mlx_vector_array_get(&sc, packed, 1);
        mlx_vector_array_get(&bi, packed, 2);
        mlx_vector_array_free(packed);
      }
      /* x: one row (1, K), the same as 1-D (K), a strided (1, K) view, and (2, 3, K). */
      mlx_array x[4] = {mlx_array_new(), mlx_array_new(), mlx_array_new(), mlx_array_new()};
      int r0[2] = {2, 0}, r1[2] = {3, K}, one[1] = {K}, batch[3] = {2, 3, K}, c0[2] = {0, 1}, c1[2] = {K, 2};
      int step[2] = {1, 1};
      mlx_slice(&x[0], xall, r0, 2, r1, 2, step, 2, cpu);
      mlx_reshape(&x[1], x[0], one, 1, cpu);
      mlx_astype(&x[2], xc0, dt, cpu);
      mlx_slice(&x[2], x[2], c0, 2, c1, 2, step, 2, cpu); /* (K, 1), elements 2 apart */
      mlx_transpose(&x[2], x[2], cpu);
      mlx_reshape(&x[3], xall, batch, 3, cpu);
      for (int k = 0; k < 4; k++)
        for (int gelu = 0; gelu < 2; gelu++) {
          mlx_array out = mlx_array_new(), ref = mlx_array_new();
          mlx_optional_int gs = {group, bits != 0}, nb = {bits, bits != 0};
          CHECK_EQ_INT(mlxc_fast_gated_linear(&out, x[k], w, sc, bi, gs, nb, gelu ? "gelu_tanh" : "silu", cpu), 0);
          CHECK_EQ_INT(compose_gated_linear(&ref, x[k], w, sc, bi, group, bits, gelu), 0);
          CHECK_EQ_INT(mlx_array_dim(out, -1), HALF);
          CHECK_MSG(same_result(out, ref), "dtype %d, bits %d, group %d, x %d, %s: %d of %zu values differ",
                    (int)dt, bits, group, k, gelu ? "gelu" : "silu", differing_values(out, ref), mlx_array_size(ref));
          mlx_array_free(out);
          mlx_array_free(ref);
        }
      mlx_array all[] = {w, sc, bi, xall, x[0], x[1], x[2], x[3]};
      for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) mlx_array_free(all[i]);
    }
  mlx_array_free(w0);
  mlx_array_free(x0);
  mlx_array_free(xc0);
}

/* The bfloat16 products must be rounded before the activation: computing act(g) * u from the
 * float32 products (what a kernel that skipped the rounding would return) differs. */
TEST(test_gated_linear_rounds_products_to_dtype) {
  enum { K = 256, HALF = 64 };
  static float wv[2 * HALF * K], xv[K];
  int ws[2] = {2 * HALF, K}, xs[2] = {1, K};
  mlx_array w = random_f32(ws, 2, wv), x = random_f32(xs, 2, xv);
  mlx_array wb = mlx_array_new(), xb = mlx_array_new(), out = mlx_array_new(), ref = mlx_array_new();
  mlx_astype(&wb, w, MLX_BFLOAT16, cpu);
  mlx_astype(&xb, x, MLX_BFLOAT16, cpu);
  mlx_astype(&w, wb, MLX_FLOAT32, cpu); /* the same values, products kept in float32 */
  mlx_astype(&x, xb, MLX_FLOAT32, cpu);
  mlx_optional_int unset = {0, false};
  CHECK_EQ_INT(mlxc_fast_gated_linear(&out, xb, wb, none, none, unset, unset, "silu", cpu), 0);
  CHECK_EQ_INT(mlxc_fast_gated_linear(&ref, x, w, none, none, unset, unset, "silu", cpu), 0);
  mlx_astype(&ref, ref, MLX_BFLOAT16, cpu);
  CHECK(mlx_array_dtype(out) == MLX_BFLOAT16);
  CHECK(differing_values(out, ref) > 0);
  mlx_array all[] = {w, x, wb, xb, out, ref};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) mlx_array_free(all[i]);
}

TEST(test_gated_linear_errors) {
  mlxc_set_errors_quiet(1);
  static float wv[7 * 64], xv[64];
  int w6[2] = {6, 64}, w7[2] = {7, 64}, w32[2] = {6, 32}, xs[2] = {1, 64};
  mlx_array x = random_f32(xs, 2, xv), w = random_f32(w6, 2, wv), odd = random_f32(w7, 2, wv);
  mlx_array narrow = random_f32(w32, 2, wv), wh = mlx_array_new(), out = mlx_array_new();
  mlx_astype(&wh, w, MLX_FLOAT16, cpu);
  mlx_vector_array packed = mlx_vector_array_new();
  mlx_array wq = mlx_array_new(), sc = mlx_array_new(), bi = mlx_array_new();
  mlx_optional_int unset = {0, false}, g64 = {64, true}, g16 = {16, true}, b4 = {4, true}, b7 = {7, true};
  mlx_quantize(&packed, w, g64, b4, "affine", none, cpu);
  mlx_vector_array_get(&wq, packed, 0);
  mlx_vector_array_get(&sc, packed, 1);
  mlx_vector_array_get(&bi, packed, 2);
  struct {
    mlx_array w, sc, bi;
    mlx_optional_int group, bits;
    const char *act, *message;
  } cases[] = {
      {odd, none, none, unset, unset, "silu", "even"},                /* 7 rows: no gate/up halves */
      {narrow, none, none, unset, unset, "silu", "shape"},            /* K 32 vs x's 64 */
      {w, none, none, unset, unset, "relu", "activation"},
      {w, none, none, unset, unset, NULL, "activation"},
      {wh, none, none, unset, unset, "silu", "dtype"},                /* float16 weight, float32 x */
      {w, none, none, g64, b4, "silu", "quantized"},                  /* group/bits on a plain weight */
      {wq, none, none, g64, b4, "silu", "scales"},                    /* packed, no scales */
      {wq, sc, none, g64, b4, "silu", "biases"},
      {wq, sc, bi, g64, b7, "silu", "bits"},
      {wq, sc, bi, g16, b4, "silu", "group_size"},
      {wq, sc, bi, g64, (mlx_optional_int){8, true}, "silu", "shape"}, /* packed for 4 bits */
      {w, sc, bi, g64, b4, "silu", "uint32"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    CHECK_MSG(mlxc_fast_gated_linear(&out, x, cases[i].w, cases[i].sc, cases[i].bi, cases[i].group, cases[i].bits,
                                     cases[i].act, cpu) != 0, "case %zu accepted", i);
    CHECK_MSG(strstr(mlxc_last_error(), cases[i].message) != NULL, "case %zu: '%s' lacks '%s'", i,
              mlxc_last_error(), cases[i].message);
  }
  mlx_array i32 = mlx_array_new_int(1);
  CHECK(mlxc_fast_gated_linear(&out, i32, w, none, none, unset, unset, "silu", cpu) != 0);
  CHECK(mlxc_fast_gated_linear(&out, none, w, none, none, unset, unset, "silu", cpu) != 0);
  mlxc_set_errors_quiet(0);
  mlx_vector_array_free(packed);
  mlx_array all[] = {x, w, odd, narrow, wh, out, wq, sc, bi, i32};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) mlx_array_free(all[i]);
}

TEST(test_fast_errors) {
  mlxc_set_errors_quiet(1);
  float x[8] = {0};
  int s3[3] = {1, 2, 4}, s1[1] = {3};
  mlx_array xa = mlx_array_new_data(x, s3, 3, MLX_FLOAT32), w = mlx_array_new_data(x, s1, 1, MLX_FLOAT32);
  mlx_array out = mlx_array_new(), i32 = mlx_array_new_int(1);
  CHECK(mlx_fast_rms_norm(&out, xa, w, 1e-5f, cpu) != 0); /* weight (3) vs D = 4 */
  CHECK(strstr(mlxc_last_error(), "weight") != NULL);
  CHECK(mlx_fast_rms_norm(&out, i32, none, 1e-5f, cpu) != 0);
  mlx_optional_float base = {10000.0f, true};
  CHECK(mlx_fast_rope(&out, xa, 3, false, base, 1.0f, 0, none, cpu) != 0); /* odd dims */
  CHECK(mlx_fast_scaled_dot_product_attention(&out, xa, xa, xa, 1.0f, "", none, none, cpu) != 0);
  int s4[4] = {1, 3, 1, 2}, k4[4] = {1, 2, 1, 2};
  float z[6] = {0};
  mlx_array q = mlx_array_new_data(z, s4, 4, MLX_FLOAT32), k = mlx_array_new_data(z, k4, 4, MLX_FLOAT32);
  CHECK(mlx_fast_scaled_dot_product_attention(&out, q, k, k, 1.0f, "", none, none, cpu) != 0); /* 3 % 2 */
  CHECK(mlx_fast_scaled_dot_product_attention(&out, k, k, k, 1.0f, "sliding", none, none, cpu) != 0);
  mlx_array_free(xa);
  mlx_array_free(w);
  mlx_array_free(i32);
  mlx_array_free(q);
  mlx_array_free(k);
  mlx_array_free(out);
  mlxc_set_errors_quiet(0);
}

int main(void) {
  cpu = mlx_default_cpu_stream_new();
  none = mlx_array_new();
  RUN(test_rms_norm_matches_reference);
  RUN(test_layer_norm_on_transposed_input_with_bias);
  RUN(test_rms_norm_bfloat16_rounds_like_transformers);
  RUN(test_rope_both_layouts_partial_dims_and_offset);
  RUN(test_rope_custom_freqs);
  RUN(test_sdpa_grouped_causal_masked_and_sinks);
  RUN(test_sdpa_long_context_split_over_threads);
  RUN(test_sdpa_decode_grouped_heads_bfloat16_and_odd_key_counts);
  RUN(test_sdpa_bfloat16_cache_tile_edges);
  RUN(test_sdpa_boolean_mask_and_strided_inputs);
  RUN(test_add_rms_norm_equals_add_then_norm);
  RUN(test_glu_equals_composed_ops);
  RUN(test_gated_linear_equals_composed_ops);
  RUN(test_gated_linear_rounds_products_to_dtype);
  RUN(test_gated_linear_errors);
  RUN(test_fast_errors);
  return TEST_SUMMARY();
}
