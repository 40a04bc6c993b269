/* complex64 svd, eigh and eig against definitions checked in double precision here (A = U S V^H
 * with unitary U and V, H v = lambda v with orthonormal v, A v = lambda v with unit v) and against
 * numpy's values for the same matrices (tests/fixtures/linalg/complex_reference.h, from
 * scripts/gen_linalg_complex_fixtures.py). */
#include <complex.h>
#include <math.h>

#include "fixtures/linalg/complex_reference.h"
#include "mlx/c/mlx.h"
#include "mlxc/error.h"
#include "test_util.h"

static mlx_stream cpu;

/* The generator script's matrix (m x n, seed), rounded to complex64. */
static void formula(double complex* a, int m, int n, int seed) {
  for (int i = 0; i < m; i++)
    for (int j = 0; j < n; j++) {
      double complex v = sin(1.3 * i + 0.7 * j + 0.1) + I * cos(0.9 * i * j + 0.5 * i - 0.2 * j + 0.3 * seed);
      a[i * n + j] = (float)creal(v) + I * (float)cimag(v);
    }
}

/* h = a + a^H of the formula's n x n matrix, rounded to complex64. */
static void hermitian(double complex* h, int n, int seed) {
  double complex a[64];
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) {
      double complex v = sin(1.3 * i + 0.7 * j + 0.1) + I * cos(0.9 * i * j + 0.5 * i - 0.2 * j + 0.3 * seed);
      a[i * n + j] = v;
    }
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) {
      double complex v = a[i * n + j] + conj(a[j * n + i]);
      h[i * n + j] = (float)creal(v) + I * (float)cimag(v);
    }
}

/* A complex64 array of `count` matrices (rows, cols) from row-major doubles. */
static mlx_array complex_array(const double complex* v, int count, int rows, int cols) {
  size_t n = (size_t)count * rows * cols;
  float complex* f = malloc(sizeof(float complex) * n);
  for (size_t i = 0; i < n; i++) f[i] = (float complex)v[i];
  int shape[3] = {count, rows, cols};
  mlx_array a = count == 1 ? mlx_array_new_data(f, shape + 1, 2, MLX_COMPLEX64)
                           : mlx_array_new_data(f, shape, 3, MLX_COMPLEX64);
  free(f);
  return a;
}

/* Values of a contiguous complex64 or float32 array as complex doubles (malloc'd). */
static double complex* values_of(mlx_array a) {
  mlx_array c = mlx_array_new();
  CHECK(!mlx_contiguous(&c, a, false, cpu));
  CHECK(!mlx_array_eval(c));
  size_t n = mlx_array_size(c);
  double complex* out = malloc(sizeof(double complex) * (n ? n : 1));
  for (size_t i = 0; i < n; i++)
    out[i] = mlx_array_dtype(c) == MLX_COMPLEX64 ? (double complex)mlx_array_data_complex64(c)[i]
                                                 : (double complex)mlx_array_data_float32(c)[i];
  mlx_array_free(c);
  return out;
}

/* max |Q^H Q - I| over the columns of the n x n row-major matrix q. */
static double unitarity_error(const double complex* q, int n) {
  double worst = 0;
  for (int a = 0; a < n; a++)
    for (int b = 0; b < n; b++) {
      double complex s = 0;
      for (int i = 0; i < n; i++) s += conj(q[i * n + a]) * q[i * n + b];
      double e = cabs(s - (a == b));
      worst = e > worst ? e : worst;
    }
  return worst;
}

static void check_svd(const double complex* a, int m, int n, const double* numpy_s) {
  int k = m < n ? m : n;
  mlx_array x = complex_array(a, 1, m, n);
  mlx_vector_array usv = mlx_vector_array_new(), only_s = mlx_vector_array_new();
  CHECK(!mlx_linalg_svd(&usv, x, true, cpu));
  CHECK(!mlx_linalg_svd(&only_s, x, false, cpu));
  mlx_array u = mlx_array_new(), s = mlx_array_new(), vt = mlx_array_new(), s2 = mlx_array_new();
  CHECK(!mlx_vector_array_get(&u, usv, 0) && !mlx_vector_array_get(&s, usv, 1) &&
        !mlx_vector_array_get(&vt, usv, 2) && !mlx_vector_array_get(&s2, only_s, 0));
  CHECK_EQ_INT(mlx_array_dtype(u), MLX_COMPLEX64);
  CHECK_EQ_INT(mlx_array_dtype(s), MLX_FLOAT32);
  CHECK_EQ_INT(mlx_array_dtype(vt), MLX_COMPLEX64);
  CHECK_EQ_INT(mlx_array_dim(u, 0), m);
  CHECK_EQ_INT(mlx_array_dim(vt, 0), n);
  double complex *uv = values_of(u), *sv = values_of(s), *vv = values_of(vt), *sv2 = values_of(s2);
  for (int i = 0; i < k; i++) {
    CHECK_NEAR(creal(sv[i]), numpy_s[i], 1e-5 * numpy_s[0]);
    CHECK_NEAR(creal(sv2[i]), numpy_s[i], 1e-5 * numpy_s[0]);
  }
  CHECK(unitarity_error(uv, m) < 1e-5);
  CHECK(unitarity_error(vv, n) < 1e-5);
  double worst = 0; /* A = U[:, :k] diag(S) Vt[:k, :] */
  for (int i = 0; i < m; i++)
    for (int j = 0; j < n; j++) {
      double complex r = 0;
      for (int t = 0; t < k; t++) r += uv[i * m + t] * creal(sv[t]) * vv[t * n + j];
      double e = cabs(r - a[i * n + j]);
      worst = e > worst ? e : worst;
    }
  CHECK_MSG(worst < 1e-5 * numpy_s[0], "svd %dx%d: |U S Vt - A| = %g", m, n, worst);
  free(uv);
  free(sv);
  free(vv);
  free(sv2);
  mlx_array arrays[] = {x, u, s, vt, s2};
  for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) mlx_array_free(arrays[i]);
  mlx_vector_array_free(usv);
  mlx_vector_array_free(only_s);
}

TEST(test_svd_complex_matches_numpy_and_reconstructs) {
  double complex a[25];
  formula(a, 5, 3, 1);
  check_svd(a, 5, 3, svd_5x3_s1);
  formula(a, 3, 5, 2);
  check_svd(a, 3, 5, svd_3x5_s2);
  formula(a, 4, 4, 3);
  check_svd(a, 4, 4, svd_4x4_s3);
}

/* eigh of h (n x n) reading `uplo`, with the other triangle overwritten by garbage. */
static void check_eigh(const double complex* h, int n, const char* uplo, const double* numpy_w) {
  double complex g[64];
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) {
      bool ignored = uplo[0] == 'L' ? j > i : j < i;
      g[i * n + j] = ignored ? 100.0 - 7.0 * I : h[i * n + j];
    }
  mlx_array x = complex_array(g, 1, n, n), w = mlx_array_new(), v = mlx_array_new(),
            w2 = mlx_array_new();
  CHECK(!mlx_linalg_eigh(&w, &v, x, uplo, cpu));
  CHECK(!mlx_linalg_eigvalsh(&w2, x, uplo, cpu));
  CHECK_EQ_INT(mlx_array_dtype(w), MLX_FLOAT32);
  CHECK_EQ_INT(mlx_array_dtype(w2), MLX_FLOAT32);
  CHECK_EQ_INT(mlx_array_dtype(v), MLX_COMPLEX64);
  double complex *wv = values_of(w), *vv = values_of(v), *wv2 = values_of(w2);
  double scale = fabs(numpy_w[0]) > fabs(numpy_w[n - 1]) ? fabs(numpy_w[0]) : fabs(numpy_w[n - 1]);
  for (int i = 0; i < n; i++) {
    CHECK_NEAR(creal(wv[i]), numpy_w[i], 1e-5 * scale);
    CHECK_NEAR(creal(wv2[i]), numpy_w[i], 1e-5 * scale);
  }
  CHECK(unitarity_error(vv, n) < 1e-5);
  double worst = 0; /* H v_j = w_j v_j */
  for (int j = 0; j < n; j++)
    for (int i = 0; i < n; i++) {
      double complex r = 0;
      for (int t = 0; t < n; t++) r += h[i * n + t] * vv[t * n + j];
      double e = cabs(r - creal(wv[j]) * vv[i * n + j]);
      worst = e > worst ? e : worst;
    }
  CHECK_MSG(worst < 1e-5 * scale, "eigh %d %s: |H v - w v| = %g", n, uplo, worst);
  free(wv);
  free(vv);
  free(wv2);
  mlx_array_free(x);
  mlx_array_free(w);
  mlx_array_free(v);
  mlx_array_free(w2);
}

TEST(test_eigh_complex_hermitian_matches_numpy) {
  double complex h[64];
  hermitian(h, 4, 4);
  check_eigh(h, 4, "L", eigvalsh_4_s4);
  check_eigh(h, 4, "U", eigvalsh_4_s4);
  hermitian(h, 6, 5);
  check_eigh(h, 6, "L", eigvalsh_6_s5);
  check_eigh(h, 6, "U", eigvalsh_6_s5);
}

static int by_re_then_im(const void* pa, const void* pb) {
  double complex a = *(const double complex*)pa, b = *(const double complex*)pb;
  if (creal(a) != creal(b)) return creal(a) < creal(b) ? -1 : 1;
  return cimag(a) < cimag(b) ? -1 : cimag(a) > cimag(b);
}

static void check_eig(const double complex* a, int n, const double* numpy_re, const double* numpy_im) {
  mlx_array x = complex_array(a, 1, n, n), w = mlx_array_new(), v = mlx_array_new(),
            w2 = mlx_array_new();
  CHECK(!mlx_linalg_eig(&w, &v, x, cpu));
  CHECK(!mlx_linalg_eigvals(&w2, x, cpu));
  CHECK_EQ_INT(mlx_array_dtype(w), MLX_COMPLEX64);
  CHECK_EQ_INT(mlx_array_dtype(v), MLX_COMPLEX64);
  double complex *wv = values_of(w), *vv = values_of(v), *wv2 = values_of(w2);
  double worst = 0;
  for (int j = 0; j < n; j++) { /* A v_j = w_j v_j, |v_j| = 1 */
    double norm = 0;
    for (int i = 0; i < n; i++) {
      double complex r = 0;
      for (int t = 0; t < n; t++) r += a[i * n + t] * vv[t * n + j];
      double e = cabs(r - wv[j] * vv[i * n + j]);
      worst = e > worst ? e : worst;
      norm += creal(vv[i * n + j] * conj(vv[i * n + j]));
    }
    CHECK_NEAR(norm, 1.0, 1e-5);
  }
  CHECK_MSG(worst < 1e-5 * n, "eig %d: |A v - w v| = %g", n, worst);
  qsort(wv, (size_t)n, sizeof(double complex), by_re_then_im);
  qsort(wv2, (size_t)n, sizeof(double complex), by_re_then_im);
  for (int i = 0; i < n; i++) {
    CHECK_NEAR(creal(wv[i]), numpy_re[i], 1e-5);
    CHECK_NEAR(cimag(wv[i]), numpy_im[i], 1e-5);
    CHECK_NEAR(cabs(wv2[i] - wv[i]), 0.0, 1e-5);
  }
  free(wv);
  free(vv);
  free(wv2);
  mlx_array_free(x);
  mlx_array_free(w);
  mlx_array_free(v);
  mlx_array_free(w2);
}

TEST(test_eig_complex_matches_numpy) {
  double complex a[25];
  formula(a, 4, 4, 6);
  check_eig(a, 4, eigvals_4_s6_re, eigvals_4_s6_im);
  formula(a, 5, 5, 7);
  check_eig(a, 5, eigvals_5_s7_re, eigvals_5_s7_im);
}

/* A batch of two matrices, the second the conjugate transpose of the first through a transposed
 * view: each matrix of the batch factorized on its own, from any layout. */
TEST(test_complex_batched_and_strided) {
  double complex a[32], b[32];
  formula(a, 4, 4, 3);
  for (int i = 0; i < 16; i++) b[i] = a[i];
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 4; j++) b[16 + i * 4 + j] = a[j * 4 + i];
  mlx_array x = complex_array(b, 2, 4, 4), xt = mlx_array_new(), w = mlx_array_new();
  CHECK(!mlx_swapaxes(&xt, x, 1, 2, cpu)); /* matrices a^T and a */
  mlx_vector_array usv = mlx_vector_array_new();
  CHECK(!mlx_linalg_svd(&usv, xt, false, cpu));
  CHECK(!mlx_vector_array_get(&w, usv, 0));
  double complex* s = values_of(w);
  for (int i = 0; i < 4; i++) { /* a and a^T have the same singular values */
    CHECK_NEAR(creal(s[i]), svd_4x4_s3[i], 1e-5 * svd_4x4_s3[0]);
    CHECK_NEAR(creal(s[4 + i]), svd_4x4_s3[i], 1e-5 * svd_4x4_s3[0]);
  }
  free(s);
  mlx_vector_array_free(usv);
  mlx_array_free(x);
  mlx_array_free(xt);
  mlx_array_free(w);
}

TEST(test_complex_errors) {
  double complex a[6] = {1, 2, 3, 4, 5, 6};
  mlx_array rect = complex_array(a, 1, 2, 3), y = mlx_array_new(), z = mlx_array_new();
  CHECK(mlx_linalg_eig(&y, &z, rect, cpu) != 0);
  CHECK(strstr(mlxc_last_error(), "square") != NULL);
  CHECK(mlx_linalg_eigh(&y, &z, rect, "L", cpu) != 0);
  CHECK(mlx_linalg_inv(&y, rect, cpu) != 0); /* still float only */
  CHECK(strstr(mlxc_last_error(), "float32 or float64") != NULL);
  mlx_array_free(rect);
  mlx_array_free(y);
  mlx_array_free(z);
}

int main(void) {
  mlxc_set_errors_quiet(1);
  cpu = mlx_default_cpu_stream_new();
  RUN(test_svd_complex_matches_numpy_and_reconstructs);
  RUN(test_eigh_complex_hermitian_matches_numpy);
  RUN(test_eig_complex_matches_numpy);
  RUN(test_complex_batched_and_strided);
  RUN(test_complex_errors);
  mlx_stream_free(cpu);
  return TEST_SUMMARY();
}
