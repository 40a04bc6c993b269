/* Products of a few rows of x (M = 2..33: speculative verification, batch decode, short
 * prefills) with float16/bfloat16 weights: the multi-row kernels of every instruction set this
 * CPU runs, and mlx_matmul through them, against float64 loops computed here and against the same
 * rows computed one at a time, which must match bit for bit (speculative decoding relies on it). */
#include <stdint.h>

#include "backend/cpu/gemv.h"
#include "mlx/c/mlx.h"
#include "mlxc/half.h"
#include "test_util.h"

static mlx_stream cpu;
static const int row_counts[] = {1, 2, 3, 5, 8, 16, 33};
#define N_ROW_COUNTS ((int)(sizeof row_counts / sizeof row_counts[0]))
#define MAX_ROWS 33

static unsigned rng_state = 7;
static float frand(void) {
  rng_state = rng_state * 1103515245u + 12345u;
  return ((rng_state >> 8) & 0xffff) / 32768.0f - 1.0f;
}

static uint16_t to_half(float v, bool bf16) {
  return bf16 ? mlxc_float32_to_bfloat16(v) : mlxc_float32_to_float16(v);
}

static double from_half(uint16_t h, bool bf16) {
  return bf16 ? mlxc_bfloat16_to_float32(h) : mlxc_float16_to_float32(h);
}

/* Bound on the float32 rounding of a K-term dot product of values in [-1, 1]. */
static double dot_tolerance(int K) { return K * 1.2e-7 * 4 + 1e-6; }

/* y (M, N) of the rows kernel (layout 0: W (N, K) with row stride ldw) or the column kernel
 * (layout 1: W (K, N) with row stride ldw). */
static void run_kernel(int layout, cpu_isa isa, float* y, const float* x, int M, const uint16_t* w,
                       int ldw, int N, int K, bool bf16) {
  if (layout == 0) cpu_gemv_half_rows_isa(isa, y, x, M, w, ldw, N, K, bf16);
  else cpu_gemv_half_cols_isa(isa, y, x, M, w, ldw, N, K, bf16);
}

TEST(test_half_kernels_rows_of_x_equal_one_row_calls_every_isa) {
  /* K and N off every vector width and block size; rows of W padded (ldw > row length). */
  const int K = 301, N = 133, pad = 5;
  float* x = malloc(sizeof(float) * MAX_ROWS * K);
  uint16_t* w = malloc(sizeof(uint16_t) * (K + pad) * (N + pad));
  float* y = malloc(sizeof(float) * MAX_ROWS * N);
  float one[133];
  for (int i = 0; i < MAX_ROWS * K; i++) x[i] = frand();
  for (int layout = 0; layout < 2; layout++)
    for (int bf = 0; bf < 2; bf++) {
      int ldw = layout == 0 ? K + pad : N + pad, rows = layout == 0 ? N : K;
      for (int i = 0; i < rows * ldw; i++) w[i] = to_half(frand(), bf);
      for (int isa = CPU_ISA_PORTABLE; isa <= CPU_ISA_AVX512; isa++) {
        if (!cpu_isa_supported((cpu_isa)isa)) continue;
        for (int c = 0; c < N_ROW_COUNTS; c++) {
          int M = row_counts[c], bad = 0;
          run_kernel(layout, (cpu_isa)isa, y, x, M, w, ldw, N, K, bf);
          for (int m = 0; m < M; m++) {
            run_kernel(layout, (cpu_isa)isa, one, x + m * K, 1, w, ldw, N, K, bf);
            bad += memcmp(one, y + m * N, sizeof(float) * N) != 0;
            for (int n = 0; n < N; n++) {
              double s = 0;
              for (int k = 0; k < K; k++)
                s += (double)x[m * K + k] * from_half(layout == 0 ? w[n * ldw + k] : w[k * ldw + n], bf);
              CHECK_MSG(fabs(y[m * N + n] - s) <= dot_tolerance(K),
                        "layout %d bf16 %d isa %d M %d: y[%d][%d] = %.9g, float64 %.9g", layout, bf,
                        isa, M, m, n, y[m * N + n], s);
            }
          }
          CHECK_MSG(bad == 0, "layout %d bf16 %d isa %d M %d: %d rows differ from one-row calls",
                    layout, bf, isa, M, bad);
        }
      }
    }
  free(x);
  free(w);
  free(y);
}

/* An (rows, cols) array of dtype; host gets its values as doubles. */
static mlx_array random_half(int rows, int cols, mlx_dtype dtype, double* host) {
  bool bf16 = dtype == MLX_BFLOAT16;
  uint16_t* v = malloc(sizeof(uint16_t) * (size_t)rows * cols);
  for (int i = 0; i < rows * cols; i++) {
    v[i] = to_half(frand(), bf16);
    host[i] = from_half(v[i], bf16);
  }
  int shape[2] = {rows, cols};
  mlx_array a = mlx_array_new_data(v, shape, 2, dtype);
  free(v);
  return a;
}

/* The values of an evaluated float16/bfloat16 array as raw bits. */
static void read_bits(mlx_array a, uint16_t* out) {
  mlx_array c = mlx_array_new();
  mlx_contiguous(&c, a, false, cpu);
  mlx_array_eval(c);
  const uint16_t* p = mlx_array_dtype(c) == MLX_BFLOAT16 ? mlx_array_data_bfloat16(c)
                                                         : mlx_array_data_float16(c);
  memcpy(out, p, sizeof(uint16_t) * mlx_array_size(c));
  mlx_array_free(c);
}

/* x (M, K) of dtype in three layouts: contiguous, a transposed view of (K, M), and every other
 * row of (2M, K). host receives the values row-major. */
static mlx_array x_in_layout(int layout, int M, int K, mlx_dtype dtype, double* host) {
  mlx_array out = mlx_array_new();
  if (layout == 0) return random_half(M, K, dtype, host);
  double* tmp = malloc(sizeof(double) * 2 * (size_t)M * K);
  if (layout == 1) {
    mlx_array t = random_half(K, M, dtype, tmp);
    mlx_transpose(&out, t, cpu);
    mlx_array_free(t);
    for (int m = 0; m < M; m++)
      for (int k = 0; k < K; k++) host[m * K + k] = tmp[k * M + m];
  } else {
    mlx_array t = random_half(2 * M, K, dtype, tmp);
    int start[2] = {0, 0}, stop[2] = {2 * M, K}, step[2] = {2, 1};
    mlx_slice(&out, t, start, 2, stop, 2, step, 2, cpu);
    mlx_array_free(t);
    for (int m = 0; m < M; m++) memcpy(host + m * K, tmp + 2 * m * K, sizeof(double) * K);
  }
  free(tmp);
  return out;
}

TEST(test_matmul_half_few_rows_strided_x_both_weight_layouts) {
  /* x @ W^T (W (N, K) transposed view: the linear layer) and x @ W (W (K, N)); each row of the
   * result equals the product of that row alone, and the float64 product within the rounding of
   * the output. 70 rows is past the streaming kernels (sgemm path): float64 only. */
  const int K = 157, N = 75;
  const int counts[] = {2, 3, 5, 8, 16, 33, 70};
  double* x = malloc(sizeof(double) * 70 * K);
  double* w = malloc(sizeof(double) * N * K);
  uint16_t* got = malloc(sizeof(uint16_t) * 70 * N);
  uint16_t row[75];
  for (int d = 0; d < 2; d++) {
    mlx_dtype dt = d ? MLX_BFLOAT16 : MLX_FLOAT16;
    bool bf16 = dt == MLX_BFLOAT16;
    for (int wl = 0; wl < 2; wl++) {
      mlx_array W = random_half(wl ? K : N, wl ? N : K, dt, w), B = mlx_array_new();
      if (wl) B = W;
      else mlx_transpose(&B, W, cpu);
      for (int xl = 0; xl < 3; xl++)
        for (int c = 0; c < 7; c++) {
          int M = counts[c];
          mlx_array X = x_in_layout(xl, M, K, dt, x), Y = mlx_array_new();
          CHECK_EQ_INT(mlx_matmul(&Y, X, B, cpu), 0);
          read_bits(Y, got);
          for (int m = 0; m < M; m++)
            for (int n = 0; n < N; n++) {
              double s = 0;
              for (int k = 0; k < K; k++) s += x[m * K + k] * (wl ? w[k * N + n] : w[n * K + k]);
              double v = from_half(got[m * N + n], bf16);
              CHECK_MSG(fabs(v - s) <= fabs(s) * (bf16 ? 1.0 / 256 : 1.0 / 1024) + dot_tolerance(K),
                        "dtype %d W layout %d x layout %d M %d: [%d][%d] = %g, float64 %g", d, wl,
                        xl, M, m, n, v, s);
            }
          for (int m = 0; m < M && M <= 33; m++) {
            mlx_array Xm = mlx_array_new(), Ym = mlx_array_new();
            int start[2] = {m, 0}, stop[2] = {m + 1, K}, step[2] = {1, 1};
            mlx_slice(&Xm, X, start, 2, stop, 2, step, 2, cpu);
            CHECK_EQ_INT(mlx_matmul(&Ym, Xm, B, cpu), 0);
            read_bits(Ym, row);
            CHECK_MSG(!memcmp(row, got + m * N, sizeof(uint16_t) * N),
                      "dtype %d W layout %d x layout %d M %d: row %d differs from its product alone",
                      d, wl, xl, M, m);
            mlx_array_free(Xm);
            mlx_array_free(Ym);
          }
          mlx_array_free(X);
          mlx_array_free(Y);
        }
      if (!wl) mlx_array_free(B);
      mlx_array_free(W);
    }
  }
  free(x);
  free(w);
  free(got);
}

TEST(test_matmul_half_batched_rows_collapse_into_one_product) {
  /* (2, 3, K) @ W^T: six rows of x sharing the weight, each equal to its product alone. */
  const int K = 64, N = 40;
  double x[6 * 64], w[40 * 64];
  uint16_t got[6 * 40], row[40];
  mlx_array X2 = random_half(6, K, MLX_BFLOAT16, x), W = random_half(N, K, MLX_BFLOAT16, w);
  mlx_array X = mlx_array_new(), WT = mlx_array_new(), Y = mlx_array_new();
  int shape[3] = {2, 3, K};
  mlx_reshape(&X, X2, shape, 3, cpu);
  mlx_transpose(&WT, W, cpu);
  CHECK_EQ_INT(mlx_matmul(&Y, X, WT, cpu), 0);
  CHECK_EQ_INT(mlx_array_ndim(Y), 3);
  read_bits(Y, got);
  for (int m = 0; m < 6; m++) {
    mlx_array Xm = mlx_array_new(), Ym = mlx_array_new();
    int start[2] = {m, 0}, stop[2] = {m + 1, K}, step[2] = {1, 1};
    mlx_slice(&Xm, X2, start, 2, stop, 2, step, 2, cpu);
    CHECK_EQ_INT(mlx_matmul(&Ym, Xm, WT, cpu), 0);
    read_bits(Ym, row);
    CHECK_MSG(!memcmp(row, got + m * N, sizeof row), "row %d differs from its product alone", m);
    for (int n = 0; n < N; n++) {
      double s = 0;
      for (int k = 0; k < K; k++) s += x[m * K + k] * w[n * K + k];
      CHECK_NEAR(mlxc_bfloat16_to_float32(got[m * N + n]), s, fabs(s) / 256 + dot_tolerance(K));
    }
    mlx_array_free(Xm);
    mlx_array_free(Ym);
  }
  mlx_array_free(X2);
  mlx_array_free(X);
  mlx_array_free(W);
  mlx_array_free(WT);
  mlx_array_free(Y);
}

int main(void) {
  cpu = mlx_default_cpu_stream_new();
  RUN(test_half_kernels_rows_of_x_equal_one_row_calls_every_isa);
  RUN(test_matmul_half_few_rows_strided_x_both_weight_layouts);
  RUN(test_matmul_half_batched_rows_collapse_into_one_product);
  mlx_stream_free(cpu);
  return TEST_SUMMARY();
}
