/* gather_mm and gather_qmm against double-precision loops written here: gathered batched
 * products with both, one or no index arrays, the mixture-of-experts shapes, 1-D operands, and
 * the quantized form with weights unpacked here from MLX's affine layout; plus errors. */
#include <stdint.h>

#include "mlx/c/mlx.h"
#include "mlxc/error.h"
#include "test_util.h"

static mlx_stream cpu;

static unsigned rng_state = 99;
static double drand(void) {
  rng_state = rng_state * 1103515245u + 12345u;
  return (double)((rng_state >> 8) & 0xffff) / 32768.0 - 1.0;
}

/* A float32 array of random values; host receives them as doubles. */
static mlx_array random_f32(const int* shape, int ndim, double* host) {
  size_t n = 1;
  for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
  float* f = malloc(sizeof(float) * (n + 1));
  for (size_t i = 0; i < n; i++) host[i] = f[i] = (float)drand();
  mlx_array a = mlx_array_new_data(f, shape, ndim, MLX_FLOAT32);
  free(f);
  return a;
}

/* The evaluated float32 result, its shape checked; values copied to out. */
static void read_result(mlx_array r, const int* shape, int ndim, double* out) {
  CHECK_EQ_INT(mlx_array_ndim(r), ndim);
  if ((int)mlx_array_ndim(r) != ndim) return;
  for (int i = 0; i < ndim; i++) CHECK_EQ_INT(mlx_array_shape(r)[i], shape[i]);
  CHECK_EQ_INT(mlx_array_dtype(r), MLX_FLOAT32);
  if (mlx_array_eval(r) || mlx_array_dtype(r) != MLX_FLOAT32) return;
  const float* p = mlx_array_data_float32(r);
  for (size_t i = 0; i < mlx_array_size(r); i++) out[i] = p[i];
}

static const mlx_array none = {0};

/* out[m][n] = sum_k a[m][k] b[k][n] for one (M, K) @ (K, N) pair. */
static void matmul_ref(const double* a, const double* b, int M, int K, int N, double* out) {
  for (int m = 0; m < M; m++)
    for (int n = 0; n < N; n++) {
      double acc = 0;
      for (int k = 0; k < K; k++) acc += a[m * K + k] * b[k * N + n];
      out[m * N + n] = acc;
    }
}

TEST(test_gather_mm_both_indices) {
  /* a: 3 matrices (2, 4) as (3, 2, 4); b: 5 matrices (4, 3) as (5, 4, 3); indices (2, 2) */
  int sa[3] = {3, 2, 4}, sb[3] = {5, 4, 3}, si[2] = {2, 2}, so[4] = {2, 2, 2, 3};
  double a[24], b[60], want[24], got[24];
  int32_t lhs[4] = {2, 0, 1, 2};
  uint32_t rhs[4] = {4, 4, 0, 3};
  mlx_array A = random_f32(sa, 3, a), B = random_f32(sb, 3, b);
  mlx_array L = mlx_array_new_data(lhs, si, 2, MLX_INT32), R = mlx_array_new_data(rhs, si, 2, MLX_UINT32);
  for (int i = 0; i < 4; i++) matmul_ref(a + lhs[i] * 8, b + rhs[i] * 12, 2, 4, 3, want + i * 6);
  mlx_array out = mlx_array_new();
  CHECK_EQ_INT(mlx_gather_mm(&out, A, B, L, R, false, cpu), 0);
  read_result(out, so, 4, got);
  for (int i = 0; i < 24; i++) CHECK_NEAR(got[i], want[i], 1e-5);
  /* the indices' shapes broadcast: lhs (2, 1) against rhs (1, 3) */
  int sl[2] = {2, 1}, sr[2] = {1, 3}, sbc[4] = {2, 3, 2, 3};
  int32_t lhs2[2] = {1, 2}, rhs2[3] = {0, 2, 4};
  double want2[36], got2[36];
  mlx_array L2 = mlx_array_new_data(lhs2, sl, 2, MLX_INT32), R2 = mlx_array_new_data(rhs2, sr, 2, MLX_INT32);
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 3; j++) matmul_ref(a + lhs2[i] * 8, b + rhs2[j] * 12, 2, 4, 3, want2 + (i * 3 + j) * 6);
  CHECK_EQ_INT(mlx_gather_mm(&out, A, B, L2, R2, true, cpu), 0);
  read_result(out, sbc, 4, got2);
  for (int i = 0; i < 36; i++) CHECK_NEAR(got2[i], want2[i], 1e-5);
  mlx_array arrays[] = {A, B, L, R, L2, R2, out};
  for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) mlx_array_free(arrays[i]);
}

TEST(test_gather_mm_moe_shapes_and_default_indices) {
  /* x (T=4, 1, 1, K=6), experts (E=3, K, N=5), top-2 experts per token: (4, 2, 1, 5) */
  int sx[4] = {4, 1, 1, 6}, sw[3] = {3, 6, 5}, si[2] = {4, 2}, so[4] = {4, 2, 1, 5};
  double x[24], w[90], want[40], got[40];
  int32_t experts[8] = {0, 2, 1, 0, 2, 2, 1, 2};
  mlx_array X = random_f32(sx, 4, x), W = random_f32(sw, 3, w);
  mlx_array I = mlx_array_new_data(experts, si, 2, MLX_INT32), out = mlx_array_new();
  for (int t = 0; t < 4; t++)
    for (int k = 0; k < 2; k++) matmul_ref(x + t * 6, w + experts[t * 2 + k] * 30, 1, 6, 5, want + (t * 2 + k) * 5);
  CHECK_EQ_INT(mlx_gather_mm(&out, X, W, none, I, false, cpu), 0);
  read_result(out, so, 4, got);
  for (int i = 0; i < 40; i++) CHECK_NEAR(got[i], want[i], 1e-5);
  /* no indices at all: a batched matmul of (3, 2, 6) @ (3, 6, 5) */
  int sa[3] = {3, 2, 6}, sm[3] = {3, 2, 5};
  double a[36], wm[30];
  mlx_array A = random_f32(sa, 3, a);
  for (int e = 0; e < 3; e++) matmul_ref(a + e * 12, w + e * 30, 2, 6, 5, wm + e * 10);
  CHECK_EQ_INT(mlx_gather_mm(&out, A, W, none, none, false, cpu), 0);
  read_result(out, sm, 3, got);
  for (int i = 0; i < 30; i++) CHECK_NEAR(got[i], wm[i], 1e-5);
  /* a 1-D a is a row, removed again: (6) with experts [2, 0] -> (2, 5) */
  int sv[1] = {6}, s2[1] = {2}, sr[2] = {2, 5};
  int32_t pick[2] = {2, 0};
  double v[6], wv[10];
  mlx_array V = random_f32(sv, 1, v), P = mlx_array_new_data(pick, s2, 1, MLX_INT32);
  for (int i = 0; i < 2; i++) matmul_ref(v, w + pick[i] * 30, 1, 6, 5, wv + i * 5);
  CHECK_EQ_INT(mlx_gather_mm(&out, V, W, none, P, false, cpu), 0);
  read_result(out, sr, 2, got);
  for (int i = 0; i < 10; i++) CHECK_NEAR(got[i], wv[i], 1e-5);
  mlx_array arrays[] = {X, W, I, A, V, P, out};
  for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) mlx_array_free(arrays[i]);
}

TEST(test_gather_mm_errors) {
  int sa[3] = {2, 2, 4}, sb[3] = {2, 3, 3}, si[1] = {2};
  double h[24];
  float fidx[2] = {0, 1};
  int32_t bad[2] = {0, 5};
  mlx_array A = random_f32(sa, 3, h), B = random_f32(sb, 3, h), out = mlx_array_new();
  mlx_array F = mlx_array_new_data(fidx, si, 1, MLX_FLOAT32), Bad = mlx_array_new_data(bad, si, 1, MLX_INT32);
  int quiet = mlxc_set_errors_quiet(1);
  CHECK(mlx_gather_mm(&out, A, A, F, none, false, cpu) != 0);
  CHECK(strstr(mlxc_last_error(), "lhs_indices must have an integer dtype") != NULL);
  CHECK(mlx_gather_mm(&out, A, B, none, none, false, cpu) != 0); /* K 4 vs 3 */
  CHECK(mlx_gather_mm(&out, none, B, none, none, false, cpu) != 0);
  CHECK(strstr(mlxc_last_error(), "empty") != NULL);
  /* an out-of-range index is reported when evaluated */
  int st[2] = {4, 2};
  mlx_array T = random_f32(st, 2, h);
  CHECK_EQ_INT(mlx_gather_mm(&out, A, T, Bad, none, false, cpu), 0);
  CHECK(mlx_array_eval(out) != 0);
  mlxc_set_errors_quiet(quiet);
  mlx_array arrays[] = {A, B, F, Bad, T, out};
  for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) mlx_array_free(arrays[i]);
}

/* Unpacks MLX's affine layout here: row r of wq holds K values of `bits` bits as a little-endian
 * bit stream over uint32 words; value = scale * q + bias per group of group_size. */
static void dequantize_ref(const uint32_t* wq, const float* scales, const float* biases, int rows,
                           int K, int bits, int group_size, double* out) {
  int words = K * bits / 32;
  for (int r = 0; r < rows; r++)
    for (int k = 0; k < K; k++) {
      int64_t bit = (int64_t)k * bits;
      const uint32_t* row = wq + (int64_t)r * words;
      uint64_t chunk = row[bit / 32];
      if (bit % 32 + bits > 32) chunk |= (uint64_t)row[bit / 32 + 1] << 32;
      unsigned q = (unsigned)((chunk >> (bit % 32)) & ((1u << bits) - 1));
      int g = r * (K / group_size) + k / group_size;
      out[r * K + k] = (double)scales[g] * q + biases[g];
    }
}

/* quantize w (E, N, K), then gather_qmm against loops over the unpacked weights. */
static void check_gather_qmm(int bits, bool transpose) {
  enum { E = 3, N = 32, K = 64, T = 3, TOPK = 2 };
  int gsz = 32;
  int sw[3] = {E, transpose ? N : K, transpose ? K : N}, sx[4] = {T, 1, 1, K}, si[2] = {T, TOPK};
  int so[4] = {T, TOPK, 1, N};
  double* wh = malloc(sizeof(double) * E * N * K);
  double* deq = malloc(sizeof(double) * E * N * K);
  double x[T * K], want[T * TOPK * N], got[T * TOPK * N];
  int32_t experts[T * TOPK] = {2, 0, 1, 1, 0, 2};
  mlx_array W = random_f32(sw, 3, wh), X = random_f32(sx, 4, x);
  mlx_array I = mlx_array_new_data(experts, si, 2, MLX_INT32), out = mlx_array_new();
  mlx_vector_array q = mlx_vector_array_new();
  mlx_array wq = mlx_array_new(), sc = mlx_array_new(), bi = mlx_array_new();
  mlx_optional_int gs = {gsz, true}, b = {bits, true};
  CHECK_EQ_INT(mlx_quantize(&q, W, gs, b, "affine", none, cpu), 0);
  CHECK_EQ_INT(mlx_vector_array_get(&wq, q, 0) || mlx_vector_array_get(&sc, q, 1) ||
               mlx_vector_array_get(&bi, q, 2), 0);
  CHECK_EQ_INT(mlx_array_eval(wq) || mlx_array_eval(sc) || mlx_array_eval(bi), 0);
  /* rows of the stored layout: (E * rows, cols) with groups along cols */
  int rows = sw[1], cols = sw[2];
  dequantize_ref(mlx_array_data_uint32(wq), mlx_array_data_float32(sc), mlx_array_data_float32(bi),
                 E * rows, cols, bits, gsz, deq);
  for (int t = 0; t < T; t++)
    for (int k = 0; k < TOPK; k++)
      for (int n = 0; n < N; n++) {
        const double* we = deq + experts[t * TOPK + k] * N * K;
        double acc = 0;
        for (int j = 0; j < K; j++) acc += x[t * K + j] * (transpose ? we[n * K + j] : we[j * N + n]);
        want[(t * TOPK + k) * N + n] = acc;
      }
  CHECK_EQ_INT(mlx_gather_qmm(&out, X, wq, sc, bi, none, I, transpose, gs, b, "affine", false, cpu), 0);
  read_result(out, so, 4, got);
  for (int i = 0; i < T * TOPK * N; i++) CHECK_NEAR(got[i], want[i], 1e-4);
  free(wh);
  free(deq);
  mlx_vector_array_free(q);
  mlx_array arrays[] = {W, X, I, out, wq, sc, bi};
  for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) mlx_array_free(arrays[i]);
}

TEST(test_gather_qmm_affine_moe) {
  check_gather_qmm(4, true);
  check_gather_qmm(8, true);
  check_gather_qmm(4, false);
  check_gather_qmm(3, true);
}

TEST(test_gather_qmm_lhs_indices_and_errors) {
  /* x (2, 3, 64): lhs picks x batches [1, 0], rhs picks experts [0, 1] of w (2, 8, 64) */
  int sx[3] = {2, 3, 64}, sw[3] = {2, 8, 64}, si[1] = {2}, so[3] = {2, 3, 8};
  double x[384], w[1024], deq[1024], want[48], got[48];
  int32_t lhs[2] = {1, 0}, rhs[2] = {0, 1};
  mlx_array X = random_f32(sx, 3, x), W = random_f32(sw, 3, w), out = mlx_array_new();
  mlx_array L = mlx_array_new_data(lhs, si, 1, MLX_INT32), R = mlx_array_new_data(rhs, si, 1, MLX_INT32);
  mlx_vector_array q = mlx_vector_array_new();
  mlx_array wq = mlx_array_new(), sc = mlx_array_new(), bi = mlx_array_new();
  mlx_optional_int gs = {64, true}, b = {4, true};
  CHECK_EQ_INT(mlx_quantize(&q, W, gs, b, "affine", none, cpu), 0);
  CHECK_EQ_INT(mlx_vector_array_get(&wq, q, 0) || mlx_vector_array_get(&sc, q, 1) ||
               mlx_vector_array_get(&bi, q, 2), 0);
  CHECK_EQ_INT(mlx_array_eval(wq) || mlx_array_eval(sc) || mlx_array_eval(bi), 0);
  dequantize_ref(mlx_array_data_uint32(wq), mlx_array_data_float32(sc), mlx_array_data_float32(bi),
                 16, 64, 4, 64, deq);
  for (int i = 0; i < 2; i++)
    for (int m = 0; m < 3; m++)
      for (int n = 0; n < 8; n++) {
        double acc = 0;
        for (int k = 0; k < 64; k++) acc += x[(lhs[i] * 3 + m) * 64 + k] * deq[(rhs[i] * 8 + n) * 64 + k];
        want[(i * 3 + m) * 8 + n] = acc;
      }
  CHECK_EQ_INT(mlx_gather_qmm(&out, X, wq, sc, bi, L, R, true, gs, b, "affine", true, cpu), 0);
  read_result(out, so, 3, got);
  for (int i = 0; i < 48; i++) CHECK_NEAR(got[i], want[i], 1e-4);
  int quiet = mlxc_set_errors_quiet(1);
  float fidx[2] = {0, 1};
  mlx_array F = mlx_array_new_data(fidx, si, 1, MLX_FLOAT32);
  CHECK(mlx_gather_qmm(&out, X, wq, sc, bi, none, F, true, gs, b, "affine", false, cpu) != 0);
  CHECK(strstr(mlxc_last_error(), "rhs_indices must have an integer dtype") != NULL);
  CHECK(mlx_gather_qmm(&out, X, wq, sc, bi, none, R, true, gs, b, "nope", false, cpu) != 0);
  CHECK(mlx_gather_qmm(&out, X, wq, none, bi, none, R, true, gs, b, "affine", false, cpu) != 0);
  mlx_array sc1 = mlx_array_new();
  CHECK_EQ_INT(mlx_slice(&sc1, sc, (int[]){0, 0, 0}, 3, (int[]){1, 8, 1}, 3, (int[]){1, 1, 1}, 3, cpu), 0);
  CHECK(mlx_gather_qmm(&out, X, wq, sc1, bi, none, R, true, gs, b, "affine", false, cpu) != 0);
  CHECK(strstr(mlxc_last_error(), "same shape") != NULL);
  /* the weights are read in place: an out-of-range expert fails at evaluation */
  int32_t far[2] = {1, 2};
  mlx_array Far = mlx_array_new_data(far, si, 1, MLX_INT32);
  CHECK_EQ_INT(mlx_gather_qmm(&out, X, wq, sc, bi, none, Far, true, gs, b, "affine", false, cpu), 0);
  CHECK(mlx_array_eval(out) != 0);
  CHECK(strstr(mlxc_last_error(), "out of range") != NULL);
  mlx_array_free(Far);
  mlxc_set_errors_quiet(quiet);
  mlx_vector_array_free(q);
  mlx_array arrays[] = {X, W, out, L, R, wq, sc, bi, F, sc1};
  for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) mlx_array_free(arrays[i]);
}

int main(void) {
  cpu = mlx_default_cpu_stream_new();
  RUN(test_gather_mm_both_indices);
  RUN(test_gather_mm_moe_shapes_and_default_indices);
  RUN(test_gather_mm_errors);
  RUN(test_gather_qmm_affine_moe);
  RUN(test_gather_qmm_lhs_indices_and_errors);
  mlx_stream_free(cpu);
  return TEST_SUMMARY();
}
