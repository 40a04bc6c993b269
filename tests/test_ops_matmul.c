/* matmul, addmm, inner, outer, tensordot against plain double-precision loops computed here, for
 * every float dtype, broadcast batches, vectors, strided views, empty dimensions and errors; and
 * the half-precision GEMV kernels (every instruction set this CPU runs) against the same loops. */
#include "backend/cpu/gemv.h"
#include "backend/cpu/matmul.h"
#include "mlx/c/mlx.h"
#include "mlxc/error.h"
#include "mlxc/half.h"
#include "test_util.h"

static mlx_stream cpu;

static unsigned rng_state = 2024;
static double drand(void) {
  rng_state = rng_state * 1103515245u + 12345u;
  return ((rng_state >> 8) & 0xffff) / 32768.0 - 1.0;
}

/* Rounds v to what `dtype` stores, so references use exactly the values the op sees. */
static double round_to(mlx_dtype dtype, double v) {
  switch (dtype) {
    case MLX_FLOAT16: return mlxc_float16_to_float32(mlxc_float32_to_float16((float)v));
    case MLX_BFLOAT16: return mlxc_bfloat16_to_float32(mlxc_float32_to_bfloat16((float)v));
    case MLX_FLOAT32: return (float)v;
    default: return v;
  }
}

/* An array of `dtype` filled with random values; host receives them (rounded) as doubles. */
static mlx_array random_array(mlx_dtype dtype, const int* shape, int ndim, double* host) {
  size_t n = 1;
  for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
  unsigned char* bytes = malloc(n * 8 + 1);
  for (size_t i = 0; i < n; i++) {
    double v = round_to(dtype, drand());
    host[i] = v;
    switch (dtype) {
      case MLX_FLOAT16: ((uint16_t*)bytes)[i] = mlxc_float32_to_float16((float)v); break;
      case MLX_BFLOAT16: ((uint16_t*)bytes)[i] = mlxc_float32_to_bfloat16((float)v); break;
      case MLX_FLOAT32: ((float*)bytes)[i] = (float)v; break;
      default: ((double*)bytes)[i] = v; break;
    }
  }
  mlx_array a = mlx_array_new_data(bytes, shape, ndim, dtype);
  free(bytes);
  return a;
}

/* The values of a (evaluated, row-contiguous result) as doubles. */
static void read_doubles(mlx_array a, double* out) {
  mlx_array_eval(a);
  size_t n = mlx_array_size(a);
  switch (mlx_array_dtype(a)) {
    case MLX_FLOAT16: {
      const uint16_t* p = mlx_array_data_float16(a);
      for (size_t i = 0; i < n; i++) out[i] = mlxc_float16_to_float32(p[i]);
      break;
    }
    case MLX_BFLOAT16: {
      const uint16_t* p = mlx_array_data_bfloat16(a);
      for (size_t i = 0; i < n; i++) out[i] = mlxc_bfloat16_to_float32(p[i]);
      break;
    }
    case MLX_FLOAT32: {
      const float* p = mlx_array_data_float32(a);
      for (size_t i = 0; i < n; i++) out[i] = p[i];
      break;
    }
    default: {
      const double* p = mlx_array_data_float64(a);
      for (size_t i = 0; i < n; i++) out[i] = p[i];
      break;
    }
  }
}

/* Error allowed for a K-term dot product of values in [-1, 1] computed in float32 (or float64)
 * and stored in dtype: the output rounding plus accumulated float32 rounding. */
static double tolerance(mlx_dtype dtype, int K, double ref) {
  double out_eps = dtype == MLX_BFLOAT16 ? 1.0 / 256 : dtype == MLX_FLOAT16 ? 1.0 / 2048 : 0;
  double acc_eps = dtype == MLX_FLOAT64 ? 1e-15 : 1.2e-7;
  return fabs(ref) * out_eps + K * acc_eps * 4 + 1e-12;
}

/* C (M, N) = A (M, K) @ B (K, N), where A[m][k] = a[m * ars + k * acs] and likewise B. */
static void ref_matmul(const double* a, long ars, long acs, const double* b, long brs, long bcs,
                       double* c, int M, int N, int K) {
  for (int m = 0; m < M; m++)
    for (int n = 0; n < N; n++) {
      double s = 0;
      for (int k = 0; k < K; k++) s += a[m * ars + k * acs] * b[k * brs + n * bcs];
      c[m * N + n] = s;
    }
}

static const mlx_dtype float_dtypes[4] = {MLX_FLOAT32, MLX_FLOAT64, MLX_FLOAT16, MLX_BFLOAT16};

TEST(test_matmul_2d_every_float_dtype) {
  for (int d = 0; d < 4; d++) {
    mlx_dtype dt = float_dtypes[d];
    int M = 5, K = 37, N = 9, as[2] = {M, K}, bs[2] = {K, N};
    double a[5 * 37], b[37 * 9], ref[5 * 9], got[5 * 9];
    mlx_array A = random_array(dt, as, 2, a), B = random_array(dt, bs, 2, b), C = mlx_array_new();
    CHECK_EQ_INT(mlx_matmul(&C, A, B, cpu), 0);
    CHECK_EQ_INT(mlx_array_dtype(C), dt);
    CHECK_EQ_INT(mlx_array_ndim(C), 2);
    CHECK_EQ_INT(mlx_array_dim(C, 0), M);
    CHECK_EQ_INT(mlx_array_dim(C, 1), N);
    read_doubles(C, got);
    ref_matmul(a, K, 1, b, N, 1, ref, M, N, K);
    for (int i = 0; i < M * N; i++) CHECK_NEAR(got[i], ref[i], tolerance(dt, K, ref[i]));
    mlx_array_free(A);
    mlx_array_free(B);
    mlx_array_free(C);
  }
}

TEST(test_matmul_broadcast_batch_dims) {
  /* (2, 1, 3, 4) @ (3, 4, 5) -> (2, 3, 3, 5): a's batch broadcasts over b's and back. */
  for (int d = 0; d < 4; d++) {
    mlx_dtype dt = float_dtypes[d];
    int as[4] = {2, 1, 3, 4}, bs[3] = {3, 4, 5};
    double a[24], b[60], got[90], ref[15];
    mlx_array A = random_array(dt, as, 4, a), B = random_array(dt, bs, 3, b), C = mlx_array_new();
    CHECK_EQ_INT(mlx_matmul(&C, A, B, cpu), 0);
    CHECK_EQ_INT(mlx_array_ndim(C), 4);
    CHECK_EQ_INT(mlx_array_dim(C, 0), 2);
    CHECK_EQ_INT(mlx_array_dim(C, 1), 3);
    read_doubles(C, got);
    for (int i = 0; i < 2; i++)
      for (int j = 0; j < 3; j++) {
        ref_matmul(a + i * 12, 4, 1, b + j * 20, 5, 1, ref, 3, 5, 4);
        for (int e = 0; e < 15; e++)
          CHECK_NEAR(got[(i * 3 + j) * 15 + e], ref[e], tolerance(dt, 4, ref[e]));
      }
    mlx_array_free(A);
    mlx_array_free(B);
    mlx_array_free(C);
  }
}

TEST(test_matmul_batched_times_matrix_and_transposed_batch) {
  /* (3, 4, 6) @ (6, 2): one GEMM of 12 rows; then the same with a's batch axes swapped (a view
   * whose rows are not evenly spaced, so the batch is looped). */
  int as[3] = {3, 4, 6}, bs[2] = {6, 2};
  double a[72], b[12], got[24], ref[2];
  mlx_array A = random_array(MLX_FLOAT32, as, 3, a), B = random_array(MLX_FLOAT32, bs, 2, b);
  mlx_array C = mlx_array_new(), T = mlx_array_new();
  CHECK_EQ_INT(mlx_matmul(&C, A, B, cpu), 0);
  read_doubles(C, got);
  for (int r = 0; r < 12; r++) {
    ref_matmul(a + r * 6, 6, 1, b, 2, 1, ref, 1, 2, 6);
    for (int n = 0; n < 2; n++) CHECK_NEAR(got[r * 2 + n], ref[n], 1e-5);
  }
  int perm[3] = {1, 0, 2};
  mlx_transpose_axes(&T, A, perm, 3, cpu); /* (4, 3, 6) */
  CHECK_EQ_INT(mlx_matmul(&C, T, B, cpu), 0);
  read_doubles(C, got);
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 3; j++) {
      ref_matmul(a + (j * 4 + i) * 6, 6, 1, b, 2, 1, ref, 1, 2, 6);
      for (int n = 0; n < 2; n++) CHECK_NEAR(got[(i * 3 + j) * 2 + n], ref[n], 1e-5);
    }
  mlx_array_free(A);
  mlx_array_free(B);
  mlx_array_free(C);
  mlx_array_free(T);
}

TEST(test_matmul_vectors_follow_numpy) {
  int vs[1] = {6}, ms[2] = {6, 4}, ns[2] = {3, 6}, bs[3] = {2, 3, 6};
  double v[6], m[24], n[18], bt[36], got[8], ref[6];
  mlx_array V = random_array(MLX_FLOAT64, vs, 1, v), Mx = random_array(MLX_FLOAT64, ms, 2, m);
  mlx_array Nx = random_array(MLX_FLOAT64, ns, 2, n), Bt = random_array(MLX_FLOAT64, bs, 3, bt);
  mlx_array C = mlx_array_new();
  /* vector @ matrix -> (4,) */
  CHECK_EQ_INT(mlx_matmul(&C, V, Mx, cpu), 0);
  CHECK_EQ_INT(mlx_array_ndim(C), 1);
  CHECK_EQ_INT(mlx_array_dim(C, 0), 4);
  read_doubles(C, got);
  ref_matmul(v, 6, 1, m, 4, 1, ref, 1, 4, 6);
  for (int i = 0; i < 4; i++) CHECK_NEAR(got[i], ref[i], 1e-12);
  /* matrix @ vector -> (3,) */
  CHECK_EQ_INT(mlx_matmul(&C, Nx, V, cpu), 0);
  CHECK_EQ_INT(mlx_array_ndim(C), 1);
  CHECK_EQ_INT(mlx_array_dim(C, 0), 3);
  read_doubles(C, got);
  ref_matmul(n, 6, 1, v, 1, 1, ref, 3, 1, 6);
  for (int i = 0; i < 3; i++) CHECK_NEAR(got[i], ref[i], 1e-12);
  /* vector @ vector -> scalar */
  CHECK_EQ_INT(mlx_matmul(&C, V, V, cpu), 0);
  CHECK_EQ_INT(mlx_array_ndim(C), 0);
  read_doubles(C, got);
  double dot = 0;
  for (int i = 0; i < 6; i++) dot += v[i] * v[i];
  CHECK_NEAR(got[0], dot, 1e-12);
  /* batch @ vector -> (2, 3) */
  CHECK_EQ_INT(mlx_matmul(&C, Bt, V, cpu), 0);
  CHECK_EQ_INT(mlx_array_ndim(C), 2);
  read_doubles(C, got);
  ref_matmul(bt, 6, 1, v, 1, 1, ref, 6, 1, 6);
  for (int i = 0; i < 6; i++) CHECK_NEAR(got[i], ref[i], 1e-12);
  mlx_array_free(V);
  mlx_array_free(Mx);
  mlx_array_free(Nx);
  mlx_array_free(Bt);
  mlx_array_free(C);
}

TEST(test_matmul_transposed_and_sliced_views) {
  for (int d = 0; d < 4; d++) {
    mlx_dtype dt = float_dtypes[d];
    /* A = X^T with X (7, 5); B = Y[::2, ::-1] with Y (14, 6) -> (7, 6) */
    int xs[2] = {7, 5}, ys[2] = {14, 6};
    double x[35], y[84], got[30], ref[30];
    mlx_array X = random_array(dt, xs, 2, x), Y = random_array(dt, ys, 2, y);
    mlx_array A = mlx_array_new(), B = mlx_array_new(), C = mlx_array_new();
    mlx_transpose(&A, X, cpu);
    int start[2] = {0, 5}, stop[2] = {14, -7}, step[2] = {2, -1};
    CHECK_EQ_INT(mlx_slice(&B, Y, start, 2, stop, 2, step, 2, cpu), 0);
    CHECK_EQ_INT(mlx_matmul(&C, A, B, cpu), 0);
    read_doubles(C, got);
    ref_matmul(x, 1, 5, y + 5, 12, -1, ref, 5, 6, 7);
    for (int i = 0; i < 30; i++) CHECK_NEAR(got[i], ref[i], tolerance(dt, 7, ref[i]));
    /* Both operands transposed: (X^T) @ (X) with the second a transposed view of X^T. */
    mlx_array B2 = mlx_array_new();
    mlx_transpose(&B2, A, cpu);
    CHECK_EQ_INT(mlx_matmul(&C, A, B2, cpu), 0);
    double got2[25], ref2[25];
    read_doubles(C, got2);
    ref_matmul(x, 1, 5, x, 5, 1, ref2, 5, 5, 7);
    for (int i = 0; i < 25; i++) CHECK_NEAR(got2[i], ref2[i], tolerance(dt, 7, ref2[i]));
    mlx_array_free(X);
    mlx_array_free(Y);
    mlx_array_free(A);
    mlx_array_free(B);
    mlx_array_free(B2);
    mlx_array_free(C);
  }
}

/* Many half rows (past the GEMV's 256) widen B a block of columns at a time: a small scratch
 * makes 3 blocks of 200 of a 600-column product, B as W^T (a linear layer) and as W, with beta. */
TEST(test_matmul_half_many_rows_in_column_blocks) {
  int64_t previous = cpu_matmul_half_scratch(16 * 256);
  for (int d = 2; d < 4; d++) {
    mlx_dtype dt = float_dtypes[d];
    enum { M = 300, K = 16, N = 600 };
    int xs[2] = {M, K}, ws[2] = {N, K}, w2s[2] = {K, N}, cs[1] = {N};
    double *x = malloc(sizeof(double) * M * K), *w = malloc(sizeof(double) * N * K);
    double *w2 = malloc(sizeof(double) * N * K), *got = malloc(sizeof(double) * M * N);
    double *ref = malloc(sizeof(double) * M * N), c[N];
    mlx_array X = random_array(dt, xs, 2, x), W = random_array(dt, ws, 2, w), W2 = random_array(dt, w2s, 2, w2);
    mlx_array Cv = random_array(dt, cs, 1, c), WT = mlx_array_new(), R = mlx_array_new();
    mlx_transpose(&WT, W, cpu);
    CHECK_EQ_INT(mlx_addmm(&R, Cv, X, WT, 1.0f, 1.0f, cpu), 0);
    read_doubles(R, got);
    ref_matmul(x, K, 1, w, 1, K, ref, M, N, K);
    int bad = 0;
    for (int i = 0; i < M * N; i++) bad += fabs(got[i] - (ref[i] + c[i % N])) > tolerance(dt, K, ref[i] + c[i % N]) * 2;
    CHECK_MSG(bad == 0, "W^T, dtype %d: %d of %d values off", (int)dt, bad, M * N);
    CHECK_EQ_INT(mlx_matmul(&R, X, W2, cpu), 0);
    read_doubles(R, got);
    ref_matmul(x, K, 1, w2, N, 1, ref, M, N, K);
    bad = 0;
    for (int i = 0; i < M * N; i++) bad += fabs(got[i] - ref[i]) > tolerance(dt, K, ref[i]);
    CHECK_MSG(bad == 0, "W, dtype %d: %d of %d values off", (int)dt, bad, M * N);
    mlx_array all[] = {X, W, W2, Cv, WT, R};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) mlx_array_free(all[i]);
    free(x);
    free(w);
    free(w2);
    free(got);
    free(ref);
  }
  cpu_matmul_half_scratch(previous);
}

TEST(test_matmul_half_decode_gemv_both_layouts) {
  /* 1 x K times a (K, N) weight given as W^T (rows kernel) and as W (columns kernel), with K and
   * N off the vector widths. */
  for (int d = 2; d < 4; d++) {
    mlx_dtype dt = float_dtypes[d];
    int K = 301, N = 133, xs[2] = {1, K}, ws[2] = {N, K}, w2s[2] = {K, N};
    double* x = malloc(sizeof(double) * K);
    double* w = malloc(sizeof(double) * N * K);
    double* w2 = malloc(sizeof(double) * N * K);
    double got[133], ref[133];
    mlx_array X = random_array(dt, xs, 2, x), W = random_array(dt, ws, 2, w);
    mlx_array W2 = random_array(dt, w2s, 2, w2), WT = mlx_array_new(), C = mlx_array_new();
    mlx_transpose(&WT, W, cpu);
    CHECK_EQ_INT(mlx_matmul(&C, X, WT, cpu), 0);
    read_doubles(C, got);
    ref_matmul(x, K, 1, w, 1, K, ref, 1, N, K);
    for (int i = 0; i < N; i++) CHECK_NEAR(got[i], ref[i], tolerance(dt, K, ref[i]));
    CHECK_EQ_INT(mlx_matmul(&C, X, W2, cpu), 0);
    read_doubles(C, got);
    ref_matmul(x, K, 1, w2, N, 1, ref, 1, N, K);
    for (int i = 0; i < N; i++) CHECK_NEAR(got[i], ref[i], tolerance(dt, K, ref[i]));
    mlx_array_free(X);
    mlx_array_free(W);
    mlx_array_free(W2);
    mlx_array_free(WT);
    mlx_array_free(C);
    free(x);
    free(w);
    free(w2);
  }
}

TEST(test_gemv_kernels_every_isa) {
  int K = 517, N = 200;
  float* x = malloc(sizeof(float) * K);
  uint16_t* w = malloc(sizeof(uint16_t) * N * K);
  float y[200];
  for (int k = 0; k < K; k++) x[k] = (float)drand();
  for (int bf = 0; bf < 2; bf++) {
    for (int i = 0; i < N * K; i++)
      w[i] = bf ? mlxc_float32_to_bfloat16((float)drand()) : mlxc_float32_to_float16((float)drand());
    for (int isa = CPU_ISA_PORTABLE; isa <= CPU_ISA_AVX512; isa++) {
      if (!cpu_isa_supported((cpu_isa)isa)) continue;
      /* rows: W (N, K); cols: the same buffer read as (K', N') = (N, K) row-major. */
      cpu_gemv_half_rows_isa((cpu_isa)isa, y, x, 1, w, K, N, K, bf);
      for (int n = 0; n < N; n++) {
        double s = 0;
        for (int k = 0; k < K; k++)
          s += (double)x[k] * (bf ? mlxc_bfloat16_to_float32(w[n * K + k]) : mlxc_float16_to_float32(w[n * K + k]));
        CHECK_NEAR(y[n], s, 1e-4);
      }
      float* y2 = malloc(sizeof(float) * K);
      cpu_gemv_half_cols_isa((cpu_isa)isa, y2, x, 1, w, K, K, N, bf); /* (N rows of K) as W (K=N, N=K) */
      for (int n = 0; n < K; n++) {
        double s = 0;
        for (int k = 0; k < N; k++)
          s += (double)x[k] * (bf ? mlxc_bfloat16_to_float32(w[k * K + n]) : mlxc_float16_to_float32(w[k * K + n]));
        CHECK_NEAR(y2[n], s, 1e-4);
      }
      free(y2);
    }
  }
  free(x);
  free(w);
}

TEST(test_matmul_empty_dims) {
  int as[2] = {0, 3}, bs[2] = {3, 4}, ks[2] = {2, 0}, kb[2] = {0, 5};
  double a[1], b[12];
  mlx_array A = random_array(MLX_FLOAT32, as, 2, a), B = random_array(MLX_FLOAT32, bs, 2, b);
  mlx_array K0a = mlx_array_new_data(a, ks, 2, MLX_FLOAT32), K0b = mlx_array_new_data(a, kb, 2, MLX_FLOAT32);
  mlx_array C = mlx_array_new();
  CHECK_EQ_INT(mlx_matmul(&C, A, B, cpu), 0);
  CHECK_EQ_INT(mlx_array_eval(C), 0);
  CHECK_EQ_INT(mlx_array_size(C), 0);
  CHECK_EQ_INT(mlx_array_dim(C, 1), 4);
  /* K = 0: a sum over nothing is zero. */
  CHECK_EQ_INT(mlx_matmul(&C, K0a, K0b, cpu), 0);
  double got[10];
  read_doubles(C, got);
  CHECK_EQ_INT(mlx_array_size(C), 10);
  for (int i = 0; i < 10; i++) CHECK(got[i] == 0);
  mlx_array_free(A);
  mlx_array_free(B);
  mlx_array_free(K0a);
  mlx_array_free(K0b);
  mlx_array_free(C);
}

TEST(test_matmul_errors) {
  int s2[2] = {2, 3}, s3[2] = {4, 2}, b3[3] = {2, 3, 2}, b4[3] = {3, 3, 2};
  double h[24];
  mlx_array A = random_array(MLX_FLOAT32, s2, 2, h), B = random_array(MLX_FLOAT32, s3, 2, h);
  mlx_array S = mlx_array_new_float32(1), I = mlx_array_new_data((int[6]){1, 2, 3, 4, 5, 6}, s2, 2, MLX_INT32);
  mlx_array BA = random_array(MLX_FLOAT32, b3, 3, h), BB = random_array(MLX_FLOAT32, b4, 3, h);
  mlx_array C = mlx_array_new(), none = mlx_array_new();
  int quiet = mlxc_set_errors_quiet(1);
  CHECK(mlx_matmul(&C, A, B, cpu) != 0);
  CHECK(strstr(mlxc_last_error(), "must match") != NULL);
  CHECK(mlx_matmul(&C, S, A, cpu) != 0);
  CHECK(strstr(mlxc_last_error(), "0-dimensional") != NULL);
  mlx_array IT = mlx_array_new();
  mlx_transpose(&IT, I, cpu);
  CHECK(mlx_matmul(&C, I, IT, cpu) != 0);
  CHECK(strstr(mlxc_last_error(), "int32") != NULL);
  CHECK(mlx_matmul(&C, none, A, cpu) != 0);
  CHECK(mlx_matmul(&C, BA, BB, cpu) != 0); /* (2,2,3) @ (3,3,2): batch 2 vs 3 */
  CHECK(mlx_addmm(&C, BA, A, IT, 1, 1, cpu) != 0);
  int ax[2] = {0, 0};
  CHECK(mlx_tensordot(&C, A, A, ax, 2, ax, 2, cpu) != 0); /* repeated axis */
  CHECK(mlx_tensordot(&C, A, A, ax, 1, ax, 2, cpu) != 0);
  CHECK(mlx_tensordot_axis(&C, A, B, 3, cpu) != 0);
  CHECK(mlx_inner(&C, A, B, cpu) != 0);
  mlxc_set_errors_quiet(quiet);
  mlx_array_free(A);
  mlx_array_free(B);
  mlx_array_free(S);
  mlx_array_free(I);
  mlx_array_free(IT);
  mlx_array_free(BA);
  mlx_array_free(BB);
  mlx_array_free(C);
}

TEST(test_addmm_alpha_beta_broadcast_c) {
  for (int d = 0; d < 4; d++) {
    mlx_dtype dt = float_dtypes[d];
    int as[2] = {4, 6}, bs[2] = {6, 3}, cs[1] = {3};
    double a[24], b[18], c[3], got[12], ref[12];
    mlx_array A = random_array(dt, as, 2, a), B = random_array(dt, bs, 2, b);
    mlx_array Cv = random_array(dt, cs, 1, c), R = mlx_array_new();
    CHECK_EQ_INT(mlx_addmm(&R, Cv, A, B, 0.5f, -2.0f, cpu), 0);
    read_doubles(R, got);
    ref_matmul(a, 6, 1, b, 3, 1, ref, 4, 3, 6);
    for (int i = 0; i < 12; i++) {
      double r = 0.5 * ref[i] - 2.0 * c[i % 3];
      CHECK_NEAR(got[i], r, tolerance(dt, 6, r) * 3);
    }
    mlx_array_free(A);
    mlx_array_free(B);
    mlx_array_free(Cv);
    mlx_array_free(R);
  }
  /* One row times a linear layer's weight (N, K) used transposed, plus its bias: the decode GEMV
   * of the half types with the bias added in float32 and one rounding. */
  for (int d = 0; d < 4; d++) {
    mlx_dtype dt = float_dtypes[d];
    int xs[2] = {1, 16}, ws[2] = {5, 16}, cs[1] = {5};
    double x[16], w[80], c[5], got[5];
    mlx_array X = random_array(dt, xs, 2, x), W = random_array(dt, ws, 2, w), Cv = random_array(dt, cs, 1, c);
    mlx_array WT = mlx_array_new(), R = mlx_array_new();
    CHECK_EQ_INT(mlx_transpose(&WT, W, cpu), 0);
    CHECK_EQ_INT(mlx_addmm(&R, Cv, X, WT, 1.5f, 0.5f, cpu), 0);
    read_doubles(R, got);
    for (int n = 0; n < 5; n++) {
      double r = 0;
      for (int k = 0; k < 16; k++) r += x[k] * w[n * 16 + k];
      r = 1.5 * r + 0.5 * c[n];
      CHECK_NEAR(got[n], r, tolerance(dt, 16, r) * 3);
    }
    mlx_array all[] = {X, W, Cv, WT, R};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) mlx_array_free(all[i]);
  }
  /* K = 0: only beta * c remains. */
  int k0a[2] = {2, 0}, k0b[2] = {0, 2};
  float dummy = 0, cvals[2] = {3, -1};
  int cs[1] = {2};
  mlx_array A = mlx_array_new_data(&dummy, k0a, 2, MLX_FLOAT32), B = mlx_array_new_data(&dummy, k0b, 2, MLX_FLOAT32);
  mlx_array Cv = mlx_array_new_data(cvals, cs, 1, MLX_FLOAT32), R = mlx_array_new();
  CHECK_EQ_INT(mlx_addmm(&R, Cv, A, B, 1, 2, cpu), 0);
  double got[4];
  read_doubles(R, got);
  CHECK(got[0] == 6 && got[1] == -2 && got[2] == 6 && got[3] == -2);
  mlx_array_free(A);
  mlx_array_free(B);
  mlx_array_free(Cv);
  mlx_array_free(R);
}

TEST(test_inner_outer_tensordot) {
  int as[3] = {2, 3, 4}, bs[3] = {3, 4, 5}, vs[1] = {4}, ws[1] = {3};
  double a[24], b[60], v[4], w[3], got[60];
  mlx_array A = random_array(MLX_FLOAT64, as, 3, a), B = random_array(MLX_FLOAT64, bs, 3, b);
  mlx_array V = random_array(MLX_FLOAT64, vs, 1, v), W = random_array(MLX_FLOAT64, ws, 1, w);
  mlx_array R = mlx_array_new();
  /* tensordot_axis 2: (2,3,4) x (3,4,5) -> (2,5) */
  CHECK_EQ_INT(mlx_tensordot_axis(&R, A, B, 2, cpu), 0);
  CHECK_EQ_INT(mlx_array_ndim(R), 2);
  read_doubles(R, got);
  for (int i = 0; i < 2; i++)
    for (int n = 0; n < 5; n++) {
      double s = 0;
      for (int j = 0; j < 12; j++) s += a[i * 12 + j] * b[j * 5 + n];
      CHECK_NEAR(got[i * 5 + n], s, 1e-12);
    }
  /* tensordot over a's axis 1 and b's axis 0 (a's contracted axis in the middle) -> (2,4,4,5) */
  int axa[1] = {1}, axb[1] = {0};
  CHECK_EQ_INT(mlx_tensordot(&R, A, B, axa, 1, axb, 1, cpu), 0);
  CHECK_EQ_INT(mlx_array_ndim(R), 4);
  double* big = malloc(sizeof(double) * 160);
  read_doubles(R, big);
  for (int i = 0; i < 2; i++)
    for (int k = 0; k < 4; k++)
      for (int l = 0; l < 4; l++)
        for (int n = 0; n < 5; n++) {
          double s = 0;
          for (int j = 0; j < 3; j++) s += a[i * 12 + j * 4 + k] * b[j * 20 + l * 5 + n];
          CHECK_NEAR(big[((i * 4 + k) * 4 + l) * 5 + n], s, 1e-12);
        }
  free(big);
  /* inner: (2,3,4) . (4,) -> (2,3) */
  CHECK_EQ_INT(mlx_inner(&R, A, V, cpu), 0);
  read_doubles(R, got);
  for (int i = 0; i < 6; i++) {
    double s = 0;
    for (int k = 0; k < 4; k++) s += a[i * 4 + k] * v[k];
    CHECK_NEAR(got[i], s, 1e-12);
  }
  /* outer: (4,) x (3,) -> (4,3) */
  CHECK_EQ_INT(mlx_outer(&R, V, W, cpu), 0);
  CHECK_EQ_INT(mlx_array_dim(R, 0), 4);
  read_doubles(R, got);
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 3; j++) CHECK_NEAR(got[i * 3 + j], v[i] * w[j], 1e-15);
  mlx_array_free(A);
  mlx_array_free(B);
  mlx_array_free(V);
  mlx_array_free(W);
  mlx_array_free(R);
}

TEST(test_matmul_complex64_and_promotion) {
  /* (1+2i, 3) @ (i, 1-i)^T = (1+2i)i + 3(1-i) = -2 + i + 3 - 3i = 1 - 2i */
  float a[4] = {1, 2, 3, 0}, b[4] = {0, 1, 1, -1};
  int as[2] = {1, 2}, bs[2] = {2, 1};
  mlx_array A = mlx_array_new_data(a, as, 2, MLX_COMPLEX64), B = mlx_array_new_data(b, bs, 2, MLX_COMPLEX64);
  mlx_array R = mlx_array_new();
  CHECK_EQ_INT(mlx_matmul(&R, A, B, cpu), 0);
  mlx_array_eval(R);
  const float* r = (const float*)mlx_array_data_complex64(R);
  CHECK_NEAR(r[0], 1, 1e-6);
  CHECK_NEAR(r[1], -2, 1e-6);
  /* float16 @ bfloat16 promotes to float32 */
  double h[4];
  int s2[2] = {2, 2};
  mlx_array H = random_array(MLX_FLOAT16, s2, 2, h), G = random_array(MLX_BFLOAT16, s2, 2, h);
  CHECK_EQ_INT(mlx_matmul(&R, H, G, cpu), 0);
  CHECK_EQ_INT(mlx_array_dtype(R), MLX_FLOAT32);
  mlx_array_free(A);
  mlx_array_free(B);
  mlx_array_free(H);
  mlx_array_free(G);
  mlx_array_free(R);
}

int main(void) {
  cpu = mlx_default_cpu_stream_new();
  RUN(test_matmul_2d_every_float_dtype);
  RUN(test_matmul_broadcast_batch_dims);
  RUN(test_matmul_batched_times_matrix_and_transposed_batch);
  RUN(test_matmul_vectors_follow_numpy);
  RUN(test_matmul_transposed_and_sliced_views);
  RUN(test_matmul_half_many_rows_in_column_blocks);
  RUN(test_matmul_half_decode_gemv_both_layouts);
  RUN(test_gemv_kernels_every_isa);
  RUN(test_matmul_empty_dims);
  RUN(test_matmul_errors);
  RUN(test_addmm_alpha_beta_broadcast_c);
  RUN(test_inner_outer_tensordot);
  RUN(test_matmul_complex64_and_promotion);
  mlx_stream_free(cpu);
  return TEST_SUMMARY();
}
