/* quantize, dequantize and quantized_matmul in MLX's layouts: packed words checked bit for bit
 * against hand-derived values for every width, round trips within half a quantization step,
 * quantized_matmul against a double-precision product with the dequantized weights, the decode
 * GEMV kernels of every instruction set, the microscaling modes on hand-built groups, and the
 * error paths. */
#include "backend/cpu/qgemv.h"
#include "mlx/c/mlx.h"
#include "mlxc/error.h"
#include "mlxc/half.h"
#include "test_util.h"

static mlx_stream cpu;
static const mlx_optional_int unset = {0, false};

static unsigned rng_state = 99;
static float frand(void) {
  rng_state = rng_state * 1103515245u + 12345u;
  return ((rng_state >> 8) & 0xffff) / 32768.0f - 1.0f;
}

static mlx_optional_int opt(int v) { return (mlx_optional_int){v, true}; }

/* float values as an array of dtype (float32, float16, bfloat16); vals are rounded in place to
 * what the array holds. */
static mlx_array make_array(float* vals, const int* shape, int ndim, mlx_dtype dtype) {
  size_t n = 1;
  for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
  if (dtype == MLX_FLOAT32) return mlx_array_new_data(vals, shape, ndim, dtype);
  uint16_t* h = malloc(n * 2 + 2);
  for (size_t i = 0; i < n; i++) {
    h[i] = dtype == MLX_BFLOAT16 ? mlxc_float32_to_bfloat16(vals[i]) : mlxc_float32_to_float16(vals[i]);
    vals[i] = dtype == MLX_BFLOAT16 ? mlxc_bfloat16_to_float32(h[i]) : mlxc_float16_to_float32(h[i]);
  }
  mlx_array a = mlx_array_new_data(h, shape, ndim, dtype);
  free(h);
  return a;
}

/* An evaluated float array's values as float. */
static void read_floats(mlx_array a, float* out) {
  mlx_array_eval(a);
  size_t n = mlx_array_size(a);
  mlx_dtype t = mlx_array_dtype(a);
  for (size_t i = 0; i < n; i++) {
    if (t == MLX_FLOAT32) out[i] = mlx_array_data_float32(a)[i];
    else if (t == MLX_BFLOAT16) out[i] = mlxc_bfloat16_to_float32(mlx_array_data_bfloat16(a)[i]);
    else out[i] = mlxc_float16_to_float32(mlx_array_data_float16(a)[i]);
  }
}

/* quantize into (wq, scales, biases); biases stays empty for the microscaling modes. */
static int quantize3(mlx_array w, int group, int bits, const char* mode, mlx_array* wq,
                     mlx_array* sc, mlx_array* bi) {
  mlx_vector_array v = mlx_vector_array_new();
  mlx_array none = mlx_array_new();
  int status = mlx_quantize(&v, w, group ? opt(group) : unset, bits ? opt(bits) : unset, mode, none, cpu);
  if (!status) {
    mlx_vector_array_get(wq, v, 0);
    mlx_vector_array_get(sc, v, 1);
    if (mlx_vector_array_size(v) == 3) mlx_vector_array_get(bi, v, 2);
  }
  mlx_vector_array_free(v);
  return status;
}

/* Packing, by hand. A group of 32 values w_i = n - p_i (n = 2^bits - 1, p containing both 0 and
 * n) has min 0 and max n; the larger-magnitude edge is the max, so MLX makes the scale negative:
 * scale = -(n - 0) / n = -1, bias = edge = n, and q_i = round((w_i - n) / -1) = p_i. The row is
 * one little-endian bit stream with p_i at bits [i * bits, (i + 1) * bits):
 *   2 bits, p_i = i % 4:  each byte holds 0,1,2,3 = 0b11100100 = 0xe4.
 *   3 bits, p_i = i % 8:  0..7 fill 24 bits: sum i << 3i = 0xfac688, i.e. bytes 88 c6 fa, repeated
 *                         over 12 bytes; read as little-endian words 0x88fac688, 0xc688fac6, ...
 *   4 bits, p_i = i % 16: nibbles 0..7 = 0x76543210, then 8..15 = 0xfedcba98.
 *   5 bits, p_i = i:      word 0 = 1<<5 | 2<<10 | 3<<15 | 4<<20 | 5<<25 | (6 & 3)<<30 = 0x8a418820;
 *                         value 6 continues in bits 0..2 of word 1 (6 >> 2 = 1), and so on.
 *   6 bits, p_i = 2i (i < 31), p_31 = 63: word 0 = 0 | 2<<6 | 4<<12 | 6<<18 | (8 & 0xf)<<24
 *                         = 0x88184080; 8 >> 4 = 0 starts word 1.
 *   8 bits, p_i = 8i (i < 31), p_31 = 255: bytes in order, 0x18100800, ..., 0xfff0e8e0.
 * (The 3/5/6-bit words were also checked against MLX's byte-wise unpacking, extract_bits in
 * mlx/backend/cpu/quantized.cpp.) */
TEST(test_packing_matches_mlx_layout_every_width) {
  static const uint32_t expect2[2] = {0xe4e4e4e4, 0xe4e4e4e4};
  static const uint32_t expect3[3] = {0x88fac688, 0xc688fac6, 0xfac688fa};
  static const uint32_t expect4[4] = {0x76543210, 0xfedcba98, 0x76543210, 0xfedcba98};
  static const uint32_t expect5[5] = {0x8a418820, 0xc5a92839, 0xca307b9a, 0x38bdab49, 0xffbbcdeb};
  static const uint32_t expect6[6] = {0x88184080, 0x449038c2, 0x79c69859,
                                      0xa89a48a0, 0x4cb0baca, 0xffceb8db};
  static const uint32_t expect8[8] = {0x18100800, 0x38302820, 0x58504840, 0x78706860,
                                      0x98908880, 0xb8b0a8a0, 0xd8d0c8c0, 0xfff0e8e0};
  const int widths[6] = {2, 3, 4, 5, 6, 8};
  const uint32_t* expect[6] = {expect2, expect3, expect4, expect5, expect6, expect8};
  for (int t = 0; t < 6; t++) {
    int bits = widths[t], n = (1 << bits) - 1;
    float w[32];
    for (int i = 0; i < 32; i++) {
      int p = bits == 2 ? i % 4 : bits == 3 ? i % 8 : bits == 4 ? i % 16 : bits == 5 ? i
              : bits == 6 ? (i < 31 ? 2 * i : 63) : (i < 31 ? 8 * i : 255);
      w[i] = (float)(n - p);
    }
    int shape[2] = {1, 32};
    mlx_array W = mlx_array_new_data(w, shape, 2, MLX_FLOAT32);
    mlx_array wq = mlx_array_new(), sc = mlx_array_new(), bi = mlx_array_new();
    CHECK_EQ_INT(quantize3(W, 32, bits, "affine", &wq, &sc, &bi), 0);
    mlx_array_eval(wq);
    CHECK_EQ_INT(mlx_array_dim(wq, 1), bits);
    const uint32_t* words = mlx_array_data_uint32(wq);
    for (int k = 0; k < bits; k++) CHECK_MSG(words[k] == expect[t][k], "bits %d word %d: %08x", bits, k, words[k]);
    float s, b;
    read_floats(sc, &s);
    read_floats(bi, &b);
    CHECK(s == -1.0f);
    CHECK(b == (float)n);
    mlx_array_free(W);
    mlx_array_free(wq);
    mlx_array_free(sc);
    mlx_array_free(bi);
  }
}

TEST(test_one_bit_and_edge_groups) {
  /* 1 bit: scale = max - min, bias = min; alternating 0/1 -> bits 1010... = 0xaaaaaaaa. */
  float w[32];
  for (int i = 0; i < 32; i++) w[i] = (float)(i % 2);
  int shape[2] = {1, 32};
  mlx_array W = mlx_array_new_data(w, shape, 2, MLX_FLOAT32);
  mlx_array wq = mlx_array_new(), sc = mlx_array_new(), bi = mlx_array_new();
  CHECK_EQ_INT(quantize3(W, 32, 1, "affine", &wq, &sc, &bi), 0);
  mlx_array_eval(wq);
  CHECK(mlx_array_data_uint32(wq)[0] == 0xaaaaaaaa);
  /* A constant group (5.0): scale falls back to eps = 1e-7 (negated, the max is the edge), then
   * edge / round(edge / scale) = 5 / -5e7 = -1e-7; bias = 5, every q = 0, and it decodes exactly. */
  for (int i = 0; i < 32; i++) w[i] = 5.0f;
  mlx_array C = mlx_array_new_data(w, shape, 2, MLX_FLOAT32), D = mlx_array_new();
  CHECK_EQ_INT(quantize3(C, 32, 4, "affine", &wq, &sc, &bi), 0);
  float s, b, d[32];
  read_floats(sc, &s);
  read_floats(bi, &b);
  CHECK_NEAR(s, -1e-7, 1e-12);
  CHECK(b == 5.0f);
  mlx_array none = mlx_array_new();
  CHECK_EQ_INT(mlx_dequantize(&D, wq, sc, bi, opt(32), opt(4), "affine", none, (mlx_optional_dtype){0, false}, cpu), 0);
  read_floats(D, d);
  for (int i = 0; i < 32; i++) CHECK(d[i] == 5.0f);
  mlx_array_free(W);
  mlx_array_free(C);
  mlx_array_free(D);
  mlx_array_free(wq);
  mlx_array_free(sc);
  mlx_array_free(bi);
}

TEST(test_round_trip_within_half_step) {
  const int widths[7] = {1, 2, 3, 4, 5, 6, 8}, groups[3] = {32, 64, 128};
  const mlx_dtype dtypes[3] = {MLX_FLOAT32, MLX_BFLOAT16, MLX_FLOAT16};
  int rows = 3, K = 256, shape[2] = {3, 256};
  float* w = malloc(sizeof(float) * 768);
  float* d = malloc(sizeof(float) * 768);
  float s[24], b[24];
  for (int di = 0; di < 3; di++)
    for (int wi = 0; wi < 7; wi++)
      for (int gi = 0; gi < 3; gi++) {
        int bits = widths[wi], group = groups[gi], G = K / group;
        for (int i = 0; i < rows * K; i++) w[i] = frand() * 3.0f + (i % 7 == 0 ? 1.0f : 0.0f);
        mlx_array W = make_array(w, shape, 2, dtypes[di]);
        mlx_array wq = mlx_array_new(), sc = mlx_array_new(), bi = mlx_array_new(), D = mlx_array_new();
        CHECK_EQ_INT(quantize3(W, group, bits, "affine", &wq, &sc, &bi), 0);
        CHECK_EQ_INT(mlx_array_dtype(sc), dtypes[di]);
        CHECK_EQ_INT(mlx_array_dim(wq, 1), K * bits / 32);
        CHECK_EQ_INT(mlx_array_dim(sc, 1), G);
        mlx_array none = mlx_array_new();
        CHECK_EQ_INT(mlx_dequantize(&D, wq, sc, bi, opt(group), opt(bits), "affine", none,
                                    (mlx_optional_dtype){0, false}, cpu), 0);
        CHECK_EQ_INT(mlx_array_dtype(D), dtypes[di]);
        read_floats(D, d);
        read_floats(sc, s);
        read_floats(bi, b);
        /* Half a step for values inside the representable range [bias, bias + n * scale]; MLX
         * aligns the grid so that zero is a level (scale = edge / round(edge / scale)), which can
         * leave the far end of the group just outside the range: such values clamp to the end
         * (at most one step away). Plus the rounding of scale and bias to the dtype (up to
         * n * |scale| and |bias| relative error) and of the result. */
        double eps = dtypes[di] == MLX_BFLOAT16 ? 1.0 / 256 : dtypes[di] == MLX_FLOAT16 ? 1.0 / 2048 : 1e-6;
        int bad = 0;
        for (int i = 0; i < rows * K; i++) {
          int g = i / group, n = (1 << bits) - 1;
          double lo = fmin(b[g], b[g] + n * s[g]), hi = fmax(b[g], b[g] + n * s[g]);
          double outside = w[i] < lo ? lo - w[i] : w[i] > hi ? w[i] - hi : 0;
          if (outside > fabs(s[g]) * (1 + 1e-3)) bad++;
          double tol = fabs(s[g]) / 2 + outside + ((n + 1) * fabs(s[g]) + fabs(b[g]) + fabs(w[i])) * eps + 1e-6;
          if (fabs(d[i] - w[i]) > tol) bad++;
        }
        CHECK_MSG(bad == 0, "dtype %d bits %d group %d: %d elements off", di, bits, group, bad);
        mlx_array_free(W);
        mlx_array_free(wq);
        mlx_array_free(sc);
        mlx_array_free(bi);
        mlx_array_free(D);
      }
  free(w);
  free(d);
}

/* y (M, N) = x (M, K) @ Wd^T (transpose, Wd (N, K)) or x @ Wd (Wd (K, N)), in double. */
static void ref_qmm(const float* x, const float* wd, double* y, int M, int N, int K, bool transpose) {
  for (int m = 0; m < M; m++)
    for (int n = 0; n < N; n++) {
      double acc = 0;
      for (int k = 0; k < K; k++) acc += (double)x[m * K + k] * (transpose ? wd[n * K + k] : wd[k * N + n]);
      y[m * N + n] = acc;
    }
}

/* Affine weights decoded by the test itself from the uint32 words: value i of a row starts at bit
 * i * bits of the row's words read as one little-endian stream (a 64-bit window over two words
 * covers any value), times its group's scale plus bias. */
static void ref_dequant_affine(mlx_array wq, mlx_array sc, mlx_array bi, int rows, int cols,
                               int bits, int group, float* out) {
  mlx_array_eval(wq);
  const uint32_t* words = mlx_array_data_uint32(wq);
  int per_row = cols * bits / 32, G = cols / group;
  float* s = malloc(sizeof(float) * (size_t)(rows * G));
  float* b = malloc(sizeof(float) * (size_t)(rows * G));
  read_floats(sc, s);
  read_floats(bi, b);
  for (int r = 0; r < rows; r++)
    for (int i = 0; i < cols; i++) {
      int bit = i * bits, wi = bit / 32;
      uint64_t window = words[r * per_row + wi];
      if (wi + 1 < per_row) window |= (uint64_t)words[r * per_row + wi + 1] << 32;
      uint32_t q = (uint32_t)(window >> (bit % 32)) & ((1u << bits) - 1);
      out[r * cols + i] = s[r * G + i / group] * (float)q + b[r * G + i / group];
    }
  free(s);
  free(b);
}

/* quantized_matmul against the double product with the dequantized weights (decoded by the test
 * for affine; dequantize's output, exact in float32, for the microscaling modes). */
static void check_qmm(const char* mode, int bits, int group, mlx_dtype dtype, int M, int N, int K,
                      bool transpose) {
  int rows = transpose ? N : K, cols = transpose ? K : N;
  int wshape[2] = {rows, cols}, xshape[2] = {M, K};
  float* w = malloc(sizeof(float) * (size_t)(rows * cols));
  float* wd = malloc(sizeof(float) * (size_t)(rows * cols));
  float* x = malloc(sizeof(float) * (size_t)(M * K));
  float* y = malloc(sizeof(float) * (size_t)(M * N));
  double* ref = malloc(sizeof(double) * (size_t)(M * N));
  for (int i = 0; i < rows * cols; i++) w[i] = frand();
  for (int i = 0; i < M * K; i++) x[i] = frand();
  mlx_array W = make_array(w, wshape, 2, dtype), X = make_array(x, xshape, 2, dtype);
  mlx_array wq = mlx_array_new(), sc = mlx_array_new(), bi = mlx_array_new(), D = mlx_array_new(), Y = mlx_array_new();
  mlx_array none = mlx_array_new();
  CHECK_EQ_INT(quantize3(W, group, bits, mode, &wq, &sc, &bi), 0);
  if (!strcmp(mode, "affine")) {
    ref_dequant_affine(wq, sc, bi, rows, cols, bits, group, wd);
  } else {
    CHECK_EQ_INT(mlx_dequantize(&D, wq, sc, bi, opt(group), opt(bits), mode, none,
                                (mlx_optional_dtype){MLX_FLOAT32, true}, cpu), 0);
    read_floats(D, wd);
  }
  CHECK_EQ_INT(mlx_quantized_matmul(&Y, X, wq, sc, bi, transpose, opt(group), opt(bits), mode, cpu), 0);
  CHECK_EQ_INT(mlx_array_dtype(Y), dtype);
  CHECK_EQ_INT(mlx_array_dim(Y, 0), M);
  CHECK_EQ_INT(mlx_array_dim(Y, 1), N);
  read_floats(Y, y);
  ref_qmm(x, wd, ref, M, N, K, transpose);
  double out_eps = dtype == MLX_BFLOAT16 ? 1.0 / 256 : dtype == MLX_FLOAT16 ? 1.0 / 2048 : 0;
  int bad = 0;
  for (int i = 0; i < M * N; i++)
    if (fabs(y[i] - ref[i]) > fabs(ref[i]) * out_eps + 1e-5 * K) bad++;
  CHECK_MSG(bad == 0, "%s bits %d group %d M %d transpose %d: %d of %d off", mode, bits, group, M,
            transpose, bad, M * N);
  mlx_array_free(W);
  mlx_array_free(X);
  mlx_array_free(wq);
  mlx_array_free(sc);
  mlx_array_free(bi);
  mlx_array_free(D);
  mlx_array_free(Y);
  free(w);
  free(wd);
  free(x);
  free(y);
  free(ref);
}

TEST(test_quantized_matmul_matches_dequantized_product) {
  const int widths[6] = {2, 3, 4, 5, 6, 8}, groups[3] = {32, 64, 128};
  for (int wi = 0; wi < 6; wi++)
    for (int gi = 0; gi < 3; gi++) {
      /* M = 1 and 3 take the GEMV path; 9 the dequantize + sgemm path. */
      check_qmm("affine", widths[wi], groups[gi], MLX_FLOAT32, 1, 40, 256, true);
      check_qmm("affine", widths[wi], groups[gi], MLX_FLOAT32, 9, 40, 256, true);
      check_qmm("affine", widths[wi], groups[gi], MLX_FLOAT32, 3, 256, 128, false);
    }
  check_qmm("affine", 4, 64, MLX_BFLOAT16, 1, 300, 512, true);
  check_qmm("affine", 8, 32, MLX_FLOAT16, 3, 70, 256, true);
  check_qmm("affine", 4, 64, MLX_BFLOAT16, 5, 64, 128, false);
  check_qmm("mxfp4", 4, 32, MLX_FLOAT32, 2, 40, 128, true);
  check_qmm("mxfp8", 8, 32, MLX_BFLOAT16, 1, 40, 128, true);
  check_qmm("nvfp4", 4, 16, MLX_FLOAT32, 3, 48, 64, false);
}

TEST(test_quantized_matmul_batched_and_vector) {
  /* x (2, 1, 3, 64) against w (2, 16, 64) quantized per batch: batch broadcast to (2, 2, 3, 16);
   * and a 1-D x giving a 1-D result. */
  int K = 64, N = 16, wshape[3] = {2, 16, 64}, xshape[4] = {2, 1, 3, 64};
  float w[2 * 16 * 64], x[2 * 3 * 64], wd[2 * 16 * 64], y[2 * 2 * 3 * 16];
  for (int i = 0; i < 2 * 16 * 64; i++) w[i] = frand();
  for (int i = 0; i < 2 * 3 * 64; i++) x[i] = frand();
  mlx_array W = mlx_array_new_data(w, wshape, 3, MLX_FLOAT32), X = mlx_array_new_data(x, xshape, 4, MLX_FLOAT32);
  mlx_array wq = mlx_array_new(), sc = mlx_array_new(), bi = mlx_array_new(), D = mlx_array_new(), Y = mlx_array_new();
  mlx_array none = mlx_array_new();
  CHECK_EQ_INT(quantize3(W, 32, 4, "affine", &wq, &sc, &bi), 0);
  CHECK_EQ_INT(mlx_dequantize(&D, wq, sc, bi, opt(32), opt(4), "affine", none, (mlx_optional_dtype){0, false}, cpu), 0);
  read_floats(D, wd);
  CHECK_EQ_INT(mlx_quantized_matmul(&Y, X, wq, sc, bi, true, opt(32), opt(4), "affine", cpu), 0);
  CHECK_EQ_INT(mlx_array_ndim(Y), 4);
  CHECK_EQ_INT(mlx_array_dim(Y, 1), 2);
  read_floats(Y, y);
  for (int a = 0; a < 2; a++)
    for (int b = 0; b < 2; b++) {
      double ref[48];
      ref_qmm(x + a * 3 * K, wd + b * N * K, ref, 3, N, K, true);
      for (int i = 0; i < 48; i++) CHECK_NEAR(y[(a * 2 + b) * 48 + i], ref[i], 1e-4);
    }
  /* 1-D x against the first batch's weights (a 2-D slice of wq). */
  int vs[1] = {64};
  mlx_array V = mlx_array_new_data(x, vs, 1, MLX_FLOAT32), W0 = mlx_array_new(), S0 = mlx_array_new(), B0 = mlx_array_new();
  int st[3] = {0, 0, 0}, sp_w[3] = {1, 16, 8}, sp_s[3] = {1, 16, 2}, one[3] = {1, 1, 1}, two[2] = {16, 8}, two_s[2] = {16, 2};
  mlx_slice(&W0, wq, st, 3, sp_w, 3, one, 3, cpu);
  mlx_slice(&S0, sc, st, 3, sp_s, 3, one, 3, cpu);
  mlx_slice(&B0, bi, st, 3, sp_s, 3, one, 3, cpu);
  mlx_reshape(&W0, W0, two, 2, cpu);
  mlx_reshape(&S0, S0, two_s, 2, cpu);
  mlx_reshape(&B0, B0, two_s, 2, cpu);
  CHECK_EQ_INT(mlx_quantized_matmul(&Y, V, W0, S0, B0, true, opt(32), opt(4), "affine", cpu), 0);
  CHECK_EQ_INT(mlx_array_ndim(Y), 1);
  read_floats(Y, y);
  double ref[16];
  ref_qmm(x, wd, ref, 1, N, K, true);
  for (int i = 0; i < 16; i++) CHECK_NEAR(y[i], ref[i], 1e-4);
  mlx_array_free(W);
  mlx_array_free(X);
  mlx_array_free(V);
  mlx_array_free(W0);
  mlx_array_free(S0);
  mlx_array_free(B0);
  mlx_array_free(wq);
  mlx_array_free(sc);
  mlx_array_free(bi);
  mlx_array_free(D);
  mlx_array_free(Y);
}

/* Stores v as element i of a float32/float16/bfloat16 buffer and returns the stored value. */
static float put_as(void* p, mlx_dtype dtype, int i, float v) {
  if (dtype == MLX_FLOAT32) return ((float*)p)[i] = v;
  if (dtype == MLX_FLOAT16) {
    ((uint16_t*)p)[i] = mlxc_float32_to_float16(v);
    return mlxc_float16_to_float32(((uint16_t*)p)[i]);
  }
  ((uint16_t*)p)[i] = mlxc_float32_to_bfloat16(v);
  return mlxc_bfloat16_to_float32(((uint16_t*)p)[i]);
}

/* The GEMV kernels of every supported instruction set against a reference that unpacks the words
 * itself (value i of a row: bits [i * bits % 32, ...) of word i * bits / 32, continuing into
 * the next word for the 3-, 5- and 6-bit values that straddle two). K = 384 fills whole vector
 * blocks; K = 11 * group leaves partial ones (the 4-bit kernels take 64 or 128 values per block);
 * K = 18 * group has more than 16 groups a row (the AVX-512 2-/4-bit kernel widens the scales of
 * rows of up to 16 groups once per row, of longer ones block by block); N = 37 leaves rows after
 * the multi-row passes; scales and biases come in every dtype, also different ones. The weights
 * sit in a buffer of exactly their size, so a kernel reading past the last row's end shows under
 * AddressSanitizer. */
TEST(test_qgemv_every_isa) {
  const int widths[6] = {2, 3, 4, 5, 6, 8}, groups[3] = {32, 64, 128};
  const mlx_dtype dts[3][2] = {{MLX_BFLOAT16, MLX_BFLOAT16}, {MLX_FLOAT16, MLX_FLOAT32},
                               {MLX_FLOAT32, MLX_BFLOAT16}};
  enum { N = 37, KMAX = 18 * 128 };
  float* x = malloc(sizeof(float) * KMAX);
  uint32_t* w = malloc(sizeof(uint32_t) * (size_t)(N * KMAX / 4));
  float* s = malloc(sizeof(float) * N * 44), *b = malloc(sizeof(float) * N * 44);
  float* sv = malloc(sizeof(float) * N * 44), *bv = malloc(sizeof(float) * N * 44);
  float y[N];
  int cases = 0;
  for (int xi = 0; xi < 2; xi++)
  for (int wi = 0; wi < 6; wi++)
    for (int gi = 0; gi < 3; gi++)
      for (int ki = 0; ki < 3; ki++)
        for (int di = 0; di < 3; di++) {
          int bits = widths[wi], group = groups[gi], K = ki == 2 ? 18 * group : ki ? 11 * group : 384;
          /* second pass: x of bfloat16 numbers (the 4-bit AVX-512 BF16 kernel's case) */
          for (int k = 0; k < KMAX; k++) x[k] = xi ? mlxc_bfloat16_to_float32(mlxc_float32_to_bfloat16(frand())) : frand();
          int G = K / group, words = K * bits / 32;
          for (int i = 0; i < N * words; i++) {
            rng_state = rng_state * 1103515245u + 12345u;
            w[i] = rng_state ^ (rng_state << 7);
          }
          for (int i = 0; i < N * G; i++) {
            sv[i] = put_as(s, dts[di][0], i, frand() * 0.1f);
            bv[i] = put_as(b, dts[di][1], i, frand());
          }
          uint32_t* exact = malloc(sizeof(uint32_t) * (size_t)(N * words));
          memcpy(exact, w, sizeof(uint32_t) * (size_t)(N * words));
          for (int isa = CPU_ISA_PORTABLE; isa <= CPU_ISA_AVX512; isa++) {
            if (!cpu_isa_supported((cpu_isa)isa)) continue;
            CHECK_EQ_INT(cpu_qgemv_affine_isa((cpu_isa)isa, y, x, 1, exact, s, b, dts[di][0],
                                              dts[di][1], N, K, bits, group), 0);
            cases++;
            for (int n = 0; n < N; n++) {
              double acc = 0;
              for (int k = 0; k < K; k++) {
                int word = n * words + k * bits / 32, at = k * bits % 32;
                uint64_t pair = w[word];
                if (at + bits > 32) pair |= (uint64_t)w[word + 1] << 32;
                uint32_t q = (uint32_t)(pair >> at) & ((1u << bits) - 1);
                int g = n * G + k / group;
                acc += (double)x[k] * ((double)sv[g] * q + bv[g]);
              }
              CHECK_MSG(fabs(y[n] - acc) < 1e-3, "isa %d bits %d group %d K %d dtypes %d row %d: %g vs %g",
                        isa, bits, group, K, di, n, y[n], acc);
            }
          }
          free(exact);
        }
  CHECK(cases >= 324); /* the portable variant at least, for every case */
  free(x);
  free(w);
  free(s);
  free(b);
  free(sv);
  free(bv);
}

/* mxfp4 by hand: values (the FP4 table) * 2 have amax 12, amax / 6 = 2 = 2^1, so the E8M0 scale
 * byte is 127 + 1 = 128 and w / 2 gives back the table values, whose codes are their indices,
 * except -0.0: MLX picks the first table entry nearest the value, and +0.0 (code 0) comes before
 * -0.0 (code 8). Codes 0..7 pack as nibbles 0x76543210, then 0, 9..15 as 0xfedcba90. */
TEST(test_mxfp4_and_nvfp4_by_hand) {
  static const float table[16] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6, -0.0f, -0.5f, -1, -1.5f, -2, -3, -4, -6};
  float w[32], d[32];
  for (int i = 0; i < 32; i++) w[i] = 2 * table[i % 16];
  int shape[2] = {1, 32};
  mlx_array W = mlx_array_new_data(w, shape, 2, MLX_FLOAT32);
  mlx_array wq = mlx_array_new(), sc = mlx_array_new(), bi = mlx_array_new(), D = mlx_array_new();
  mlx_array none = mlx_array_new();
  CHECK_EQ_INT(quantize3(W, 0, 0, "mxfp4", &wq, &sc, &bi), 0);
  mlx_array_eval(wq);
  mlx_array_eval(sc);
  const uint32_t* words = mlx_array_data_uint32(wq);
  CHECK(words[0] == 0x76543210 && words[1] == 0xfedcba90 && words[2] == 0x76543210 && words[3] == 0xfedcba90);
  CHECK_EQ_INT(mlx_array_dtype(sc), MLX_UINT8);
  CHECK_EQ_INT(mlx_array_data_uint8(sc)[0], 128);
  CHECK_EQ_INT(mlx_dequantize(&D, wq, sc, none, unset, unset, "mxfp4", none, (mlx_optional_dtype){MLX_FLOAT32, true}, cpu), 0);
  read_floats(D, d);
  for (int i = 0; i < 32; i++) CHECK(d[i] == w[i]);
  /* nvfp4, group 16: amax 6 -> scale 6 / 6 = 1.0 = E4M3 0x38 (exponent 7 = bias, mantissa 0);
   * with a global scale g the stored scale is amax / 6 * (448 * 6 / g): g = 448 * 6 / 4 gives 4.0
   * = E4M3 0x48, and dequantize multiplies it back by g / (448 * 6). */
  int s16[2] = {1, 16};
  mlx_array W16 = mlx_array_new_data(table, s16, 2, MLX_FLOAT32), G = mlx_array_new_float32(448.0f * 6 / 4);
  mlx_vector_array v = mlx_vector_array_new();
  CHECK_EQ_INT(mlx_quantize(&v, W16, unset, unset, "nvfp4", none, cpu), 0);
  mlx_vector_array_get(&wq, v, 0);
  mlx_vector_array_get(&sc, v, 1);
  mlx_array_eval(wq);
  CHECK_EQ_INT(mlx_array_data_uint8(sc)[0], 0x38);
  CHECK(mlx_array_data_uint32(wq)[0] == 0x76543210 && mlx_array_data_uint32(wq)[1] == 0xfedcba90);
  CHECK_EQ_INT(mlx_quantize(&v, W16, unset, unset, "nvfp4", G, cpu), 0);
  mlx_vector_array_get(&wq, v, 0);
  mlx_vector_array_get(&sc, v, 1);
  mlx_array_eval(sc);
  CHECK_EQ_INT(mlx_array_data_uint8(sc)[0], 0x48);
  CHECK_EQ_INT(mlx_dequantize(&D, wq, sc, none, unset, unset, "nvfp4", G, (mlx_optional_dtype){MLX_FLOAT32, true}, cpu), 0);
  read_floats(D, d);
  for (int i = 0; i < 16; i++) CHECK(d[i] == table[i]);
  /* mxfp8: 448 is the largest E4M3 value; a group with amax 448 has scale 2^0 (byte 127) and
   * 448 encodes as 0x7e, 1.0 as 0x38, -2.0 as 0xc0. */
  float w8[32] = {448, 1, -2};
  mlx_array W8 = mlx_array_new_data(w8, shape, 2, MLX_FLOAT32);
  CHECK_EQ_INT(quantize3(W8, 0, 0, "mxfp8", &wq, &sc, &bi), 0);
  mlx_array_eval(wq);
  mlx_array_eval(sc);
  CHECK_EQ_INT(mlx_array_data_uint8(sc)[0], 127);
  CHECK(mlx_array_data_uint32(wq)[0] == 0x00c0387e);
  mlx_vector_array_free(v);
  mlx_array_free(W);
  mlx_array_free(W16);
  mlx_array_free(W8);
  mlx_array_free(G);
  mlx_array_free(wq);
  mlx_array_free(sc);
  mlx_array_free(bi);
  mlx_array_free(D);
}

TEST(test_quantization_errors) {
  float w[64 * 2] = {0};
  int s2[2] = {2, 64}, s1[1] = {64}, s48[2] = {2, 48};
  mlx_array W = mlx_array_new_data(w, s2, 2, MLX_FLOAT32), V = mlx_array_new_data(w, s1, 1, MLX_FLOAT32);
  mlx_array W48 = mlx_array_new_data(w, s48, 2, MLX_FLOAT32);
  mlx_array I = mlx_array_new_data((int[128]){0}, s2, 2, MLX_INT32);
  mlx_array F64 = mlx_array_new_data((double[128]){0}, s2, 2, MLX_FLOAT64);
  mlx_array wq = mlx_array_new(), sc = mlx_array_new(), bi = mlx_array_new(), R = mlx_array_new();
  mlx_array none = mlx_array_new(), G = mlx_array_new_float32(1);
  mlx_vector_array v = mlx_vector_array_new();
  int quiet = mlxc_set_errors_quiet(1);
  CHECK(quantize3(W48, 32, 4, "affine", &wq, &sc, &bi) != 0); /* 48 % 32 */
  CHECK(strstr(mlxc_last_error(), "divisible") != NULL);
  CHECK(quantize3(W, 32, 7, "affine", &wq, &sc, &bi) != 0);
  CHECK(quantize3(W, 32, 9, "affine", &wq, &sc, &bi) != 0);
  CHECK(quantize3(W, 16, 4, "affine", &wq, &sc, &bi) != 0);
  CHECK(quantize3(W, 64, 4, "mxfp4", &wq, &sc, &bi) != 0);
  CHECK(quantize3(W, 32, 8, "nvfp4", &wq, &sc, &bi) != 0);
  CHECK(quantize3(W, 32, 4, "int4", &wq, &sc, &bi) != 0);
  CHECK(strstr(mlxc_last_error(), "mode") != NULL);
  CHECK(quantize3(I, 32, 4, "affine", &wq, &sc, &bi) != 0);
  CHECK(quantize3(F64, 32, 4, "affine", &wq, &sc, &bi) != 0);
  CHECK(quantize3(V, 32, 4, "affine", &wq, &sc, &bi) != 0);
  CHECK(mlx_quantize(&v, W, unset, unset, "affine", G, cpu) != 0); /* global scale: nvfp4 only */
  CHECK_EQ_INT(quantize3(W, 32, 4, "affine", &wq, &sc, &bi), 0);
  mlx_optional_dtype nod = {0, false};
  CHECK(mlx_dequantize(&R, W, sc, bi, opt(32), opt(4), "affine", none, nod, cpu) != 0); /* not uint32 */
  CHECK(mlx_dequantize(&R, wq, sc, none, opt(32), opt(4), "affine", none, nod, cpu) != 0); /* no biases */
  CHECK(mlx_dequantize(&R, wq, sc, bi, opt(64), opt(4), "affine", none, nod, cpu) != 0); /* groups */
  CHECK(mlx_dequantize(&R, wq, sc, bi, opt(32), opt(4), "affine", none, (mlx_optional_dtype){MLX_INT32, true}, cpu) != 0);
  CHECK(mlx_quantized_matmul(&R, V, wq, sc, bi, false, opt(32), opt(4), "affine", cpu) != 0); /* K 64 vs 2 */
  CHECK(mlx_quantized_matmul(&R, I, wq, sc, bi, true, opt(32), opt(4), "affine", cpu) == 0); /* int x promotes */
  CHECK(mlx_quantized_matmul(&R, V, wq, sc, bi, true, opt(32), opt(8), "affine", cpu) != 0); /* bits */
  CHECK(mlx_quantized_matmul(&R, V, wq, none, bi, true, opt(32), opt(4), "affine", cpu) != 0);
  CHECK_EQ_INT(quantize3(W, 0, 0, "mxfp4", &wq, &sc, &bi), 0);
  CHECK(mlx_dequantize(&R, wq, sc, W, unset, unset, "mxfp4", none, nod, cpu) != 0); /* biases given */
  mlxc_set_errors_quiet(quiet);
  mlx_vector_array_free(v);
  mlx_array_free(W);
  mlx_array_free(V);
  mlx_array_free(W48);
  mlx_array_free(I);
  mlx_array_free(F64);
  mlx_array_free(G);
  mlx_array_free(wq);
  mlx_array_free(sc);
  mlx_array_free(bi);
  mlx_array_free(R);
}

int main(void) {
  /* the 4-bit AVX-512 BF16 kernel wherever the processor has it (by default AMD only) */
  setenv("MLXC_QGEMV_BF16", "1", 0);
  cpu = mlx_default_cpu_stream_new();
  RUN(test_packing_matches_mlx_layout_every_width);
  RUN(test_one_bit_and_edge_groups);
  RUN(test_round_trip_within_half_step);
  RUN(test_quantized_matmul_matches_dequantized_product);
  RUN(test_quantized_matmul_batched_and_vector);
  RUN(test_qgemv_every_isa);
  RUN(test_mxfp4_and_nvfp4_by_hand);
  RUN(test_quantization_errors);
  mlx_stream_free(cpu);
  return TEST_SUMMARY();
}
