/* block_masked_mm and segmented_mm against double-precision loops written here: boolean masks
 * (excluded blocks holding NaN must not leak in), floating masks, partial edge blocks, masks
 * broadcast over a batch, segments including an empty one; plus errors. */
#include <stdint.h>

#include "mlx/c/mlx.h"
#include "mlxc/error.h"
#include "test_util.h"

static mlx_stream cpu;

static unsigned rng_state = 31;
static double drand(void) {
  rng_state = rng_state * 1103515245u + 12345u;
  return (double)((rng_state >> 8) & 0xffff) / 32768.0 - 1.0;
}

static mlx_array random_f32(const int* shape, int ndim, double* host) {
  size_t n = 1;
  for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
  float* f = malloc(sizeof(float) * (n + 1));
  for (size_t i = 0; i < n; i++) host[i] = f[i] = (float)drand();
  mlx_array a = mlx_array_new_data(f, shape, ndim, MLX_FLOAT32);
  free(f);
  return a;
}

static void read_result(mlx_array r, const int* shape, int ndim, double* out) {
  CHECK_EQ_INT(mlx_array_ndim(r), ndim);
  if ((int)mlx_array_ndim(r) != ndim) return;
  for (int i = 0; i < ndim; i++) CHECK_EQ_INT(mlx_array_shape(r)[i], shape[i]);
  if (mlx_array_eval(r) || mlx_array_dtype(r) != MLX_FLOAT32) return;
  const float* p = mlx_array_data_float32(r);
  for (size_t i = 0; i < mlx_array_size(r); i++) out[i] = p[i];
}

static const mlx_array none = {0};

enum { B = 2, M = 70, K = 40, N = 50, BS = 32, MB = 3, KB = 2, NB = 2 };

/* The reference with per-block weights (1/0 for boolean masks); masks shared across the batch. */
static void block_ref(const double* a, const double* b, const double* lm, const double* rm,
                      const double* om, double* out) {
  for (int z = 0; z < B; z++)
    for (int m = 0; m < M; m++)
      for (int n = 0; n < N; n++) {
        double acc = 0;
        for (int k = 0; k < K; k++) {
          double wl = lm[(m / BS) * KB + k / BS], wr = rm[(k / BS) * NB + n / BS];
          if (wl != 0 && wr != 0) acc += wl * a[(z * M + m) * K + k] * wr * b[(z * K + k) * N + n];
        }
        out[(z * M + m) * N + n] = om[(m / BS) * NB + n / BS] * acc;
      }
}

TEST(test_block_masked_mm_bool_and_float_masks) {
  int sa[3] = {B, M, K}, sb[3] = {B, K, N}, so[3] = {B, M, N};
  int sl[2] = {MB, KB}, sr[2] = {KB, NB}, sm[2] = {MB, NB};
  static double a[B * M * K], b[B * K * N], want[B * M * N], got[B * M * N];
  /* a's block (row block 1, k block 0) is excluded by mask_lhs: fill it with NaN in the input */
  mlx_array A0 = random_f32(sa, 3, a), Bm = random_f32(sb, 3, b);
  float* nan_a = malloc(sizeof(float) * B * M * K);
  for (int i = 0; i < B * M * K; i++) {
    int m = (i / K) % M, k = i % K;
    nan_a[i] = (m / BS == 1 && k / BS == 0) ? NAN : (float)a[i];
  }
  mlx_array A = mlx_array_new_data(nan_a, sa, 3, MLX_FLOAT32);
  free(nan_a);
  bool lb[MB * KB] = {true, true, false, true, true, false}, rb[KB * NB] = {true, false, true, true};
  bool ob[MB * NB] = {true, true, true, false, false, true};
  double lw[MB * KB], rw[KB * NB], ow[MB * NB];
  for (int i = 0; i < MB * KB; i++) lw[i] = lb[i];
  for (int i = 0; i < KB * NB; i++) rw[i] = rb[i];
  for (int i = 0; i < MB * NB; i++) ow[i] = ob[i];
  mlx_array L = mlx_array_new_data(lb, sl, 2, MLX_BOOL), R = mlx_array_new_data(rb, sr, 2, MLX_BOOL);
  mlx_array O = mlx_array_new_data(ob, sm, 2, MLX_BOOL), out = mlx_array_new();
  block_ref(a, b, lw, rw, ow, want);
  CHECK_EQ_INT(mlx_block_masked_mm(&out, A, Bm, BS, O, L, R, cpu), 0);
  read_result(out, so, 3, got);
  for (int i = 0; i < B * M * N; i++) CHECK_NEAR(got[i], want[i], 1e-4);
  /* floating masks scale their blocks; only an output mask here */
  float lf[MB * KB] = {0.5f, 2, 1, -1, 0, 3}, of[MB * NB] = {1, 0.25f, -2, 1, 0, 4};
  double lfw[MB * KB], ofw[MB * NB], ones[KB * NB] = {1, 1, 1, 1}, all[MB * KB] = {1, 1, 1, 1, 1, 1};
  for (int i = 0; i < MB * KB; i++) lfw[i] = lf[i];
  for (int i = 0; i < MB * NB; i++) ofw[i] = of[i];
  mlx_array LF = mlx_array_new_data(lf, sl, 2, MLX_FLOAT32), OF = mlx_array_new_data(of, sm, 2, MLX_FLOAT32);
  block_ref(a, b, lfw, ones, ofw, want);
  CHECK_EQ_INT(mlx_block_masked_mm(&out, A0, Bm, BS, OF, LF, none, cpu), 0);
  read_result(out, so, 3, got);
  for (int i = 0; i < B * M * N; i++) CHECK_NEAR(got[i], want[i], 1e-4);
  block_ref(a, b, all, ones, ofw, want);
  CHECK_EQ_INT(mlx_block_masked_mm(&out, A0, Bm, BS, OF, none, none, cpu), 0);
  read_result(out, so, 3, got);
  for (int i = 0; i < B * M * N; i++) CHECK_NEAR(got[i], want[i], 1e-4);
  mlx_array arrays[] = {A0, A, Bm, L, R, O, LF, OF, out};
  for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) mlx_array_free(arrays[i]);
}

TEST(test_block_masked_mm_errors) {
  int sa[2] = {64, 64}, sb[2] = {32, 64}, s11[2] = {1, 1}, s22[2] = {2, 2};
  static double h[4096];
  mlx_array A = random_f32(sa, 2, h), Bs = random_f32(sb, 2, h), out = mlx_array_new();
  bool m1[1] = {true}, m4[4] = {true, true, true, true};
  int32_t mi[1] = {1};
  mlx_array M1 = mlx_array_new_data(m1, s11, 2, MLX_BOOL), M4 = mlx_array_new_data(m4, s22, 2, MLX_BOOL);
  mlx_array MI = mlx_array_new_data(mi, s11, 2, MLX_INT32);
  int quiet = mlxc_set_errors_quiet(1);
  CHECK(mlx_block_masked_mm(&out, A, A, 16, none, none, none, cpu) != 0);
  CHECK(strstr(mlxc_last_error(), "32 or 64") != NULL);
  CHECK(mlx_block_masked_mm(&out, A, A, 64, M4, none, none, cpu) != 0); /* needs (1, 1) */
  CHECK(strstr(mlxc_last_error(), "mask_out must end in (1, 1)") != NULL);
  CHECK(mlx_block_masked_mm(&out, A, A, 32, none, M1, none, cpu) != 0); /* needs (2, 2) */
  CHECK(mlx_block_masked_mm(&out, A, A, 64, MI, none, none, cpu) != 0);
  CHECK(strstr(mlxc_last_error(), "boolean or floating") != NULL);
  CHECK(mlx_block_masked_mm(&out, A, Bs, 64, none, none, none, cpu) != 0);
  CHECK(strstr(mlxc_last_error(), "do not multiply") != NULL);
  mlxc_set_errors_quiet(quiet);
  mlx_array arrays[] = {A, Bs, M1, M4, MI, out};
  for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) mlx_array_free(arrays[i]);
}

TEST(test_segmented_mm_ranges) {
  int sa[2] = {3, 10}, sb[2] = {10, 4}, ss[2] = {4, 2}, so[3] = {4, 3, 4};
  double a[30], b[40], want[48], got[48];
  uint32_t seg[8] = {0, 4, 4, 10, 2, 2, 0, 10};
  mlx_array A = random_f32(sa, 2, a), Bm = random_f32(sb, 2, b), out = mlx_array_new();
  mlx_array S = mlx_array_new_data(seg, ss, 2, MLX_UINT32);
  for (int s = 0; s < 4; s++)
    for (int m = 0; m < 3; m++)
      for (int n = 0; n < 4; n++) {
        double acc = 0;
        for (uint32_t k = seg[2 * s]; k < seg[2 * s + 1]; k++) acc += a[m * 10 + k] * b[k * 4 + n];
        want[(s * 3 + m) * 4 + n] = acc;
      }
  CHECK_EQ_INT(mlx_segmented_mm(&out, A, Bm, S, cpu), 0);
  read_result(out, so, 3, got);
  for (int i = 0; i < 48; i++) CHECK_NEAR(got[i], want[i], 1e-5);
  int quiet = mlxc_set_errors_quiet(1);
  int s3[2] = {1, 3}, sbad[2] = {9, 4};
  float fseg[2] = {0, 1};
  int32_t tri[3] = {0, 1, 2};
  mlx_array F = mlx_array_new_data(fseg, (int[]){1, 2}, 2, MLX_FLOAT32);
  mlx_array T = mlx_array_new_data(tri, s3, 2, MLX_INT32);
  mlx_array Bbad = random_f32(sbad, 2, b);
  CHECK(mlx_segmented_mm(&out, A, Bm, F, cpu) != 0);
  CHECK(strstr(mlxc_last_error(), "integer pairs") != NULL);
  CHECK(mlx_segmented_mm(&out, A, Bm, T, cpu) != 0);
  CHECK(mlx_segmented_mm(&out, A, Bbad, S, cpu) != 0);
  CHECK(strstr(mlxc_last_error(), "inner dimensions") != NULL);
  CHECK(mlx_segmented_mm(&out, A, Bm, none, cpu) != 0);
  mlxc_set_errors_quiet(quiet);
  mlx_array arrays[] = {A, Bm, S, F, T, Bbad, out};
  for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) mlx_array_free(arrays[i]);
}

int main(void) {
  cpu = mlx_default_cpu_stream_new();
  RUN(test_block_masked_mm_bool_and_float_masks);
  RUN(test_block_masked_mm_errors);
  RUN(test_segmented_mm_ranges);
  mlx_stream_free(cpu);
  return TEST_SUMMARY();
}
