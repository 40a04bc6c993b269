/* Products of a few rows of x (M = 2..33: speculative verification, batch decode, short
 * prefills) with float16/bfloat16 weights and with affine-quantized weights: the multi-row
 * kernels of every instruction set this CPU runs, and mlx_matmul / mlx_quantized_matmul through
 * them, against float64 loops computed here and against the same rows computed one at a time,
 * which must match bit for bit (speculative decoding relies on it). */
#include <stdint.h>

#include "backend/cpu/gemv.h"
#include "backend/cpu/qgemv.h"
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
   * the output. 300 rows is past the streaming kernels (sgemm path): float64 only. */
  const int K = 157, N = 75;
  const int counts[] = {2, 3, 5, 8, 16, 33, 300};
  double* x = malloc(sizeof(double) * 300 * K);
  double* w = malloc(sizeof(double) * N * K);
  uint16_t* got = malloc(sizeof(uint16_t) * 300 * N);
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

/* Value i of a packed row of `bits`-bit values (MLX's layout: a little-endian bit stream),
 * unpacked here independently of the library. */
static uint32_t packed_value(const uint32_t* row, int i, int bits) {
  int word = i * bits / 32, at = i * bits % 32;
  uint64_t pair = row[word];
  if (at + bits > 32) pair |= (uint64_t)row[word + 1] << 32;
  return (uint32_t)(pair >> at) & ((1u << bits) - 1);
}

/* Stores v in p[i] as dtype and returns the stored value. */
static float put_as(void* p, mlx_dtype dtype, int i, float v) {
  if (dtype == MLX_FLOAT32) return ((float*)p)[i] = v;
  bool bf16 = dtype == MLX_BFLOAT16;
  ((uint16_t*)p)[i] = to_half(v, bf16);
  return (float)from_half(((uint16_t*)p)[i], bf16);
}

/* The quantized kernels with M rows of x, every width (2, 4, 8 bits: the multi-row kernels; 3,
 * 5, 6: one row at a time over blocks in cache), group and instruction set: every row equals the
 * one-row call bit for bit, and the float64 product within float32 rounding. K = 2304 with 8
 * rows of x takes several spans of k; N = 133 leaves rows after the page-strided passes; x of
 * bfloat16 numbers takes the AVX-512 BF16 4-bit kernel where the processor has it. */
TEST(test_qgemv_rows_of_x_equal_one_row_calls_every_isa) {
  const int widths[6] = {2, 3, 4, 5, 6, 8}, groups[3] = {32, 64, 128};
  const int shapes[2][2] = {{133, 384}, {37, 2304}}; /* N, K */
  const mlx_dtype dts[3][2] = {{MLX_BFLOAT16, MLX_BFLOAT16}, {MLX_FLOAT16, MLX_FLOAT32},
                               {MLX_FLOAT32, MLX_BFLOAT16}};
  enum { NMAX = 133, KMAX = 2304 };
  float* x = malloc(sizeof(float) * MAX_ROWS * KMAX);
  float* y = malloc(sizeof(float) * MAX_ROWS * NMAX);
  double* ref = malloc(sizeof(double) * MAX_ROWS * NMAX);
  double* bound = malloc(sizeof(double) * MAX_ROWS * NMAX);
  float one[NMAX];
  int cases = 0;
  for (int xi = 0; xi < 2; xi++)
    for (int wi = 0; wi < 6; wi++)
      for (int gi = 0; gi < 3; gi++)
        for (int si = 0; si < 2; si++) {
          int bits = widths[wi], group = groups[gi], N = shapes[si][0], K = shapes[si][1];
          int G = K / group, words = K * bits / 32, di = (wi + gi + si) % 3;
          for (int i = 0; i < MAX_ROWS * K; i++)
            x[i] = xi ? (float)from_half(to_half(frand(), true), true) : frand();
          /* buffers of exactly their size: a kernel reading past the end shows under ASan */
          uint32_t* w = malloc(sizeof(uint32_t) * (size_t)(N * words));
          void* s = malloc(sizeof(float) * (size_t)(N * G));
          void* b = malloc(sizeof(float) * (size_t)(N * G));
          float* sv = malloc(sizeof(float) * (size_t)(N * G));
          float* bv = malloc(sizeof(float) * (size_t)(N * G));
          for (int i = 0; i < N * words; i++) {
            rng_state = rng_state * 1103515245u + 12345u;
            w[i] = rng_state ^ (rng_state << 7);
          }
          for (int i = 0; i < N * G; i++) {
            sv[i] = put_as(s, dts[di][0], i, frand() * 0.1f);
            bv[i] = put_as(b, dts[di][1], i, frand());
          }
          for (int m = 0; m < MAX_ROWS; m++)
            for (int n = 0; n < N; n++) {
              double acc = 0, mag = 0;
              for (int k = 0; k < K; k++) {
                int g = n * G + k / group;
                double v = (double)sv[g] * packed_value(w + n * words, k, bits) + bv[g];
                acc += x[m * K + k] * v;
                mag += fabs(x[m * K + k]) * (fabs((double)sv[g]) * ((1 << bits) - 1) + fabs(bv[g]));
              }
              ref[m * N + n] = acc;
              bound[m * N + n] = mag * 1e-6 + 1e-5;
            }
          for (int isa = CPU_ISA_PORTABLE; isa <= CPU_ISA_AVX512; isa++) {
            if (!cpu_isa_supported((cpu_isa)isa)) continue;
            for (int c = 0; c < N_ROW_COUNTS; c++) {
              int M = row_counts[c], differ = 0, off = 0;
              CHECK_EQ_INT(cpu_qgemv_affine_isa((cpu_isa)isa, y, x, M, w, s, b, dts[di][0],
                                                dts[di][1], N, K, bits, group), 0);
              cases++;
              for (int m = 0; m < M; m++) {
                cpu_qgemv_affine_isa((cpu_isa)isa, one, x + m * K, 1, w, s, b, dts[di][0],
                                     dts[di][1], N, K, bits, group);
                differ += memcmp(one, y + m * N, sizeof(float) * N) != 0;
                for (int n = 0; n < N; n++) off += !(fabs(y[m * N + n] - ref[m * N + n]) <= bound[m * N + n]);
              }
              CHECK_MSG(differ == 0 && off == 0,
                        "isa %d bits %d group %d K %d dtypes %d bf16 x %d M %d: %d rows differ "
                        "from one-row calls, %d outputs from float64", isa, bits, group, K, di,
                        xi, M, differ, off);
            }
          }
          free(w);
          free(s);
          free(b);
          free(sv);
          free(bv);
        }
  CHECK(cases >= 72 * N_ROW_COUNTS); /* the portable variant at least, for every case */
  free(x);
  free(y);
  free(ref);
  free(bound);
}

/* A bfloat16 (rows, cols) weight quantized by mlx_quantize (group 64); wd receives the
 * dequantized values scale * q + bias in float64, unpacked here. */
static void quantized_weight(int rows, int cols, int bits, mlx_array* wq, mlx_array* scales,
                             mlx_array* biases, double* wd) {
  double* tmp = malloc(sizeof(double) * (size_t)rows * cols);
  mlx_array w = random_half(rows, cols, MLX_BFLOAT16, tmp);
  mlx_vector_array q = mlx_vector_array_new();
  mlx_optional_int gs = {64, true}, nb = {bits, true};
  CHECK_EQ_INT(mlx_quantize(&q, w, gs, nb, "affine", mlx_array_new(), cpu), 0);
  mlx_vector_array_get(wq, q, 0);
  mlx_vector_array_get(scales, q, 1);
  mlx_vector_array_get(biases, q, 2);
  mlx_array_eval(*wq);
  mlx_array_eval(*scales);
  mlx_array_eval(*biases);
  const uint32_t* words = mlx_array_data_uint32(*wq);
  const uint16_t *s = mlx_array_data_bfloat16(*scales), *b = mlx_array_data_bfloat16(*biases);
  int G = cols / 64, row_words = cols * bits / 32;
  for (int r = 0; r < rows; r++)
    for (int k = 0; k < cols; k++)
      wd[r * cols + k] = (double)mlxc_bfloat16_to_float32(s[r * G + k / 64]) *
                             packed_value(words + r * row_words, k, bits) +
                         mlxc_bfloat16_to_float32(b[r * G + k / 64]);
  mlx_vector_array_free(q);
  mlx_array_free(w);
  free(tmp);
}

TEST(test_quantized_matmul_few_rows_strided_x_match_one_row) {
  /* bfloat16 x (contiguous, a transposed view, every other row) times 4-, 8- and 3-bit weights
   * (group 64, bfloat16 scales): every row equals the product of that row alone where the
   * streaming kernels take the call (checked up to 33 rows; 3 bits: up to 4), and all are within
   * bfloat16 rounding of the float64 product with the dequantized weight; 150 rows take the
   * dequantize + sgemm path. */
  const int K = 320, N = 75, widths[3] = {4, 8, 3};
  const int counts[] = {2, 3, 5, 8, 16, 33, 150};
  double* x = malloc(sizeof(double) * 150 * K);
  double* wd = malloc(sizeof(double) * N * K);
  uint16_t* got = malloc(sizeof(uint16_t) * 150 * N);
  uint16_t row[75];
  mlx_optional_int gs = {64, true};
  for (int wi = 0; wi < 3; wi++) {
    int bits = widths[wi], same_up_to = bits == 3 ? 4 : 33;
    mlx_optional_int nb = {bits, true};
    mlx_array wq = mlx_array_new(), sc = mlx_array_new(), bi = mlx_array_new();
    quantized_weight(N, K, bits, &wq, &sc, &bi, wd);
    for (int xl = 0; xl < 3; xl++)
      for (int c = 0; c < 7; c++) {
        int M = counts[c];
        mlx_array X = x_in_layout(xl, M, K, MLX_BFLOAT16, x), Y = mlx_array_new();
        CHECK_EQ_INT(mlx_quantized_matmul(&Y, X, wq, sc, bi, true, gs, nb, "affine", cpu), 0);
        read_bits(Y, got);
        int off = 0, differ = 0;
        for (int m = 0; m < M; m++)
          for (int n = 0; n < N; n++) {
            double s = 0, mag = 0;
            for (int k = 0; k < K; k++) {
              s += x[m * K + k] * wd[n * K + k];
              mag += fabs(x[m * K + k] * wd[n * K + k]);
            }
            off += !(fabs(mlxc_bfloat16_to_float32(got[m * N + n]) - s) <= fabs(s) / 256 + mag * 1e-6);
          }
        for (int m = 0; m < M && M <= same_up_to; m++) {
          mlx_array Xm = mlx_array_new(), Ym = mlx_array_new();
          int start[2] = {m, 0}, stop[2] = {m + 1, K}, step[2] = {1, 1};
          mlx_slice(&Xm, X, start, 2, stop, 2, step, 2, cpu);
          CHECK_EQ_INT(mlx_quantized_matmul(&Ym, Xm, wq, sc, bi, true, gs, nb, "affine", cpu), 0);
          read_bits(Ym, row);
          differ += memcmp(row, got + m * N, sizeof(uint16_t) * N) != 0;
          mlx_array_free(Xm);
          mlx_array_free(Ym);
        }
        CHECK_MSG(off == 0 && differ == 0,
                  "bits %d x layout %d M %d: %d outputs off the float64 product, %d rows differ "
                  "from their product alone", bits, xl, M, off, differ);
        mlx_array_free(X);
        mlx_array_free(Y);
      }
    mlx_array_free(wq);
    mlx_array_free(sc);
    mlx_array_free(bi);
  }
  free(x);
  free(wd);
  free(got);
}

int main(void) {
  /* the 4-bit AVX-512 BF16 kernel wherever the processor has it (off by default) */
  setenv("MLXC_QGEMV_BF16", "1", 0);
  cpu = mlx_default_cpu_stream_new();
  RUN(test_half_kernels_rows_of_x_equal_one_row_calls_every_isa);
  RUN(test_matmul_half_few_rows_strided_x_both_weight_layouts);
  RUN(test_matmul_half_batched_rows_collapse_into_one_product);
  RUN(test_qgemv_rows_of_x_equal_one_row_calls_every_isa);
  RUN(test_quantized_matmul_few_rows_strided_x_match_one_row);
  mlx_stream_free(cpu);
  return TEST_SUMMARY();
}
