/* linalg.h against definitions checked in double precision here: A inv(A) = I, L L^T = A,
 * Q^T Q = I and Q R = A, U S Vt = A, A v = lambda v, L[P] U = A, A x = b, the Moore-Penrose
 * identity, norms from hand values, on random and hand-picked matrices, batched, float32 and
 * float64, and every error path. */
#include <complex.h>

#include "mlx/c/mlx.h"
#include "mlxc/error.h"
#include "test_util.h"

static mlx_stream cpu;

static unsigned rng_state = 99;
static double drand(void) {
  rng_state = rng_state * 1103515245u + 12345u;
  return ((rng_state >> 8) & 0xffff) / 32768.0 - 1.0;
}

static size_t count_of(const int* shape, int ndim) {
  size_t n = 1;
  for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
  return n;
}

/* An array of dtype (float32/float64) holding v, which is rounded to what the array stores. */
static mlx_array from_doubles(double* v, const int* shape, int ndim, mlx_dtype dtype) {
  size_t n = count_of(shape, ndim);
  if (dtype == MLX_FLOAT64) return mlx_array_new_data(v, shape, ndim, MLX_FLOAT64);
  float* f = malloc(sizeof(float) * (n ? n : 1));
  for (size_t i = 0; i < n; i++) v[i] = f[i] = (float)v[i];
  mlx_array a = mlx_array_new_data(f, shape, ndim, MLX_FLOAT32);
  free(f);
  return a;
}

static void fill_random(double* v, size_t n) {
  for (size_t i = 0; i < n; i++) v[i] = drand();
}

/* The values of a (any layout; float32/float64/uint32) as a malloc'd row-major double array. */
static double* to_doubles(mlx_array a) {
  mlx_array c = mlx_array_new();
  CHECK(!mlx_contiguous(&c, a, false, cpu));
  CHECK(!mlx_array_eval(c));
  size_t n = mlx_array_size(c);
  double* out = malloc(sizeof(double) * (n ? n : 1));
  for (size_t i = 0; i < n; i++) {
    switch (mlx_array_dtype(c)) {
      case MLX_FLOAT32: out[i] = mlx_array_data_float32(c)[i]; break;
      case MLX_FLOAT64: out[i] = mlx_array_data_float64(c)[i]; break;
      case MLX_UINT32: out[i] = mlx_array_data_uint32(c)[i]; break;
      default: out[i] = NAN; break;
    }
  }
  mlx_array_free(c);
  return out;
}

/* c (m x n) = a (m x k) b (k x n), row-major; transposes when asked. */
static void matmul_ref(const double* a, bool ta, const double* b, bool tb, double* c, int m, int k,
                       int n) {
  for (int i = 0; i < m; i++)
    for (int j = 0; j < n; j++) {
      double acc = 0;
      for (int l = 0; l < k; l++) acc += (ta ? a[l * m + i] : a[i * k + l]) * (tb ? b[j * k + l] : b[l * n + j]);
      c[i * n + j] = acc;
    }
}

static double max_diff(const double* a, const double* b, size_t n) {
  double d = 0;
  for (size_t i = 0; i < n; i++) d = fmax(d, fabs(a[i] - b[i]));
  return d;
}

static double identity_error(const double* a, int n) {
  double d = 0;
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) d = fmax(d, fabs(a[i * n + j] - (i == j)));
  return d;
}

static double tol(mlx_dtype dtype) { return dtype == MLX_FLOAT32 ? 2e-5 : 1e-12; }

/* Random matrices made well conditioned by adding n to the diagonal. */
static void well_conditioned(double* v, int batch, int n) {
  fill_random(v, (size_t)batch * n * n);
  for (int b = 0; b < batch; b++)
    for (int i = 0; i < n; i++) v[(size_t)b * n * n + i * n + i] += n;
}

static const mlx_dtype float_dtypes[2] = {MLX_FLOAT32, MLX_FLOAT64};

TEST(test_inv_times_a_is_identity_batched) {
  for (int t = 0; t < 2; t++) {
    int shape[3] = {3, 5, 5};
    double a[75], prod[25];
    well_conditioned(a, 3, 5);
    mlx_array x = from_doubles(a, shape, 3, float_dtypes[t]), y = mlx_array_new();
    CHECK(!mlx_linalg_inv(&y, x, cpu));
    CHECK_EQ_INT(mlx_array_dtype(y), float_dtypes[t]);
    double* inv = to_doubles(y);
    for (int b = 0; b < 3; b++) {
      matmul_ref(a + 25 * b, false, inv + 25 * b, false, prod, 5, 5, 5);
      CHECK_MSG(identity_error(prod, 5) <= tol(float_dtypes[t]), "batch %d dtype %d", b, t);
    }
    free(inv);
    mlx_array_free(x);
    mlx_array_free(y);
  }
}

TEST(test_inv_hand_value_and_transposed_input) {
  double a[4] = {4, 7, 2, 6};
  int shape[2] = {2, 2};
  mlx_array x = from_doubles(a, shape, 2, MLX_FLOAT64), t = mlx_array_new(), y = mlx_array_new();
  CHECK(!mlx_linalg_inv(&y, x, cpu));
  double* inv = to_doubles(y);
  double want[4] = {0.6, -0.7, -0.2, 0.4};
  CHECK(max_diff(inv, want, 4) <= 1e-15);
  free(inv);
  CHECK(!mlx_transpose(&t, x, cpu)); /* [[4, 2], [7, 6]]: inverse is want transposed */
  CHECK(!mlx_linalg_inv(&y, t, cpu));
  inv = to_doubles(y);
  double want_t[4] = {0.6, -0.2, -0.7, 0.4};
  CHECK(max_diff(inv, want_t, 4) <= 1e-15);
  free(inv);
  mlx_array_free(x);
  mlx_array_free(t);
  mlx_array_free(y);
}

TEST(test_inv_of_singular_matrix_is_an_error) {
  double a[8] = {1, 0, 0, 1, 1, 2, 2, 4};
  int shape[3] = {2, 2, 2};
  mlx_array x = from_doubles(a, shape, 3, MLX_FLOAT32), y = mlx_array_new();
  CHECK(!mlx_linalg_inv(&y, x, cpu));
  CHECK(mlx_array_eval(y) != 0);
  CHECK(strstr(mlxc_last_error(), "inv: the matrix is singular (matrix 1 of the batch)") != NULL);
  mlx_array_free(x);
  mlx_array_free(y);
}

TEST(test_tri_inv_reads_one_triangle) {
  for (int upper = 0; upper < 2; upper++) {
    int n = 4, shape[2] = {4, 4};
    double a[16], tri[16], prod[16];
    well_conditioned(a, 1, n);
    for (int i = 0; i < n; i++)
      for (int j = 0; j < n; j++) tri[i * n + j] = (upper ? j >= i : j <= i) ? a[i * n + j] : 0;
    mlx_array x = from_doubles(a, shape, 2, MLX_FLOAT64), y = mlx_array_new();
    CHECK(!mlx_linalg_tri_inv(&y, x, upper, cpu));
    double* inv = to_doubles(y);
    matmul_ref(tri, false, inv, false, prod, n, n, n);
    CHECK(identity_error(prod, n) <= 1e-12);
    for (int i = 0; i < n; i++)
      for (int j = 0; j < n; j++)
        if (upper ? j < i : j > i) CHECK(inv[i * n + j] == 0);
    free(inv);
    mlx_array_free(x);
    mlx_array_free(y);
  }
}

/* Symmetric positive definite: M M^T + n I. */
static void spd(double* a, int batch, int n) {
  double* m = malloc(sizeof(double) * (size_t)n * n);
  for (int b = 0; b < batch; b++) {
    fill_random(m, (size_t)n * n);
    matmul_ref(m, false, m, true, a + (size_t)b * n * n, n, n, n);
    for (int i = 0; i < n; i++) a[(size_t)b * n * n + i * n + i] += n;
  }
  free(m);
}

TEST(test_cholesky_factors_reproduce_a) {
  for (int t = 0; t < 2; t++)
    for (int upper = 0; upper < 2; upper++) {
      int n = 6, shape[3] = {2, 6, 6};
      double a[72], prod[36];
      spd(a, 2, n);
      mlx_array x = from_doubles(a, shape, 3, float_dtypes[t]), y = mlx_array_new();
      CHECK(!mlx_linalg_cholesky(&y, x, upper, cpu));
      double* f = to_doubles(y);
      for (int b = 0; b < 2; b++) {
        double* fb = f + 36 * b;
        /* A = L L^T, or U^T U. */
        matmul_ref(fb, upper, fb, !upper, prod, n, n, n);
        CHECK_MSG(max_diff(prod, a + 36 * b, 36) <= tol(float_dtypes[t]) * n, "t=%d upper=%d", t, upper);
        for (int i = 0; i < n; i++)
          for (int j = 0; j < n; j++)
            if (upper ? j < i : j > i) CHECK(fb[i * n + j] == 0);
      }
      free(f);
      mlx_array_free(x);
      mlx_array_free(y);
    }
}

TEST(test_cholesky_hand_value_and_indefinite_error) {
  double a[4] = {4, 2, 2, 3}, bad[4] = {1, 2, 2, 1};
  int shape[2] = {2, 2};
  mlx_array x = from_doubles(a, shape, 2, MLX_FLOAT64), y = mlx_array_new();
  CHECK(!mlx_linalg_cholesky(&y, x, false, cpu));
  double* l = to_doubles(y);
  double want[4] = {2, 0, 1, sqrt(2.0)};
  CHECK(max_diff(l, want, 4) <= 1e-15);
  free(l);
  mlx_array_free(x);
  x = from_doubles(bad, shape, 2, MLX_FLOAT64);
  CHECK(!mlx_linalg_cholesky(&y, x, false, cpu));
  CHECK(mlx_array_eval(y) != 0);
  CHECK(strstr(mlxc_last_error(), "not positive definite") != NULL);
  mlx_array_free(x);
  mlx_array_free(y);
}

TEST(test_cholesky_inv_inverts_a) {
  for (int upper = 0; upper < 2; upper++) {
    int n = 5, shape[2] = {5, 5};
    double a[25], prod[25];
    spd(a, 1, n);
    mlx_array x = from_doubles(a, shape, 2, MLX_FLOAT64), f = mlx_array_new(), y = mlx_array_new();
    CHECK(!mlx_linalg_cholesky(&f, x, upper, cpu));
    CHECK(!mlx_linalg_cholesky_inv(&y, f, upper, cpu));
    double* inv = to_doubles(y);
    matmul_ref(a, false, inv, false, prod, n, n, n);
    CHECK(identity_error(prod, n) <= 1e-12);
    free(inv);
    mlx_array_free(x);
    mlx_array_free(f);
    mlx_array_free(y);
  }
}

TEST(test_qr_is_orthonormal_times_upper_triangular) {
  int dims[3][2] = {{5, 5}, {6, 3}, {3, 6}};
  for (int t = 0; t < 2; t++)
    for (int d = 0; d < 3; d++) {
      int m = dims[d][0], n = dims[d][1], k = m < n ? m : n, shape[3] = {2, m, n};
      double a[2 * 36], qtq[36], qr[36];
      fill_random(a, (size_t)2 * m * n);
      mlx_array x = from_doubles(a, shape, 3, float_dtypes[t]), q = mlx_array_new(), r = mlx_array_new();
      CHECK(!mlx_linalg_qr(&q, &r, x, cpu));
      CHECK_EQ_INT(mlx_array_shape(q)[2], k);
      CHECK_EQ_INT(mlx_array_shape(r)[1], k);
      CHECK_EQ_INT(mlx_array_shape(r)[2], n);
      double *qv = to_doubles(q), *rv = to_doubles(r);
      for (int b = 0; b < 2; b++) {
        double *qb = qv + b * m * k, *rb = rv + b * k * n;
        matmul_ref(qb, true, qb, false, qtq, k, m, k);
        CHECK_MSG(identity_error(qtq, k) <= tol(float_dtypes[t]), "m=%d n=%d", m, n);
        matmul_ref(qb, false, rb, false, qr, m, k, n);
        CHECK_MSG(max_diff(qr, a + b * m * n, (size_t)m * n) <= tol(float_dtypes[t]), "m=%d n=%d", m, n);
        for (int i = 0; i < k; i++)
          for (int j = 0; j < i; j++) CHECK(rb[i * n + j] == 0);
      }
      free(qv);
      free(rv);
      mlx_array_free(x);
      mlx_array_free(q);
      mlx_array_free(r);
    }
}

TEST(test_svd_reconstructs_a_with_orthogonal_factors) {
  int dims[3][2] = {{4, 4}, {6, 4}, {4, 6}};
  for (int t = 0; t < 2; t++)
    for (int d = 0; d < 3; d++) {
      int m = dims[d][0], n = dims[d][1], k = m < n ? m : n, shape[3] = {3, m, n};
      double a[3 * 24], us[36], rec[24], g[36];
      fill_random(a, (size_t)3 * m * n);
      mlx_array x = from_doubles(a, shape, 3, float_dtypes[t]);
      mlx_vector_array usv = mlx_vector_array_new(), only_s = mlx_vector_array_new();
      CHECK(!mlx_linalg_svd(&usv, x, true, cpu));
      CHECK(!mlx_linalg_svd(&only_s, x, false, cpu));
      CHECK_EQ_INT(mlx_vector_array_size(usv), 3);
      CHECK_EQ_INT(mlx_vector_array_size(only_s), 1);
      mlx_array u = mlx_array_new(), sv = mlx_array_new(), vt = mlx_array_new(), s2 = mlx_array_new();
      mlx_vector_array_get(&u, usv, 0);
      mlx_vector_array_get(&sv, usv, 1);
      mlx_vector_array_get(&vt, usv, 2);
      mlx_vector_array_get(&s2, only_s, 0);
      CHECK_EQ_INT(mlx_array_shape(u)[1], m);
      CHECK_EQ_INT(mlx_array_shape(u)[2], m);
      CHECK_EQ_INT(mlx_array_shape(sv)[1], k);
      CHECK_EQ_INT(mlx_array_shape(vt)[2], n);
      double *uv = to_doubles(u), *svv = to_doubles(sv), *vtv = to_doubles(vt), *s2v = to_doubles(s2);
      CHECK(max_diff(svv, s2v, (size_t)3 * k) <= tol(float_dtypes[t]));
      for (int b = 0; b < 3; b++) {
        double *ub = uv + b * m * m, *sb = svv + b * k, *vb = vtv + b * n * n;
        for (int i = 0; i < k; i++) CHECK(sb[i] >= 0 && (i == 0 || sb[i] <= sb[i - 1]));
        matmul_ref(ub, true, ub, false, g, m, m, m);
        CHECK(identity_error(g, m) <= tol(float_dtypes[t]));
        matmul_ref(vb, false, vb, true, g, n, n, n);
        CHECK(identity_error(g, n) <= tol(float_dtypes[t]));
        /* U[:, :K] diag(S) Vt[:K, :] */
        for (int i = 0; i < m; i++)
          for (int j = 0; j < k; j++) us[i * k + j] = ub[i * m + j] * sb[j];
        matmul_ref(us, false, vb, false, rec, m, k, n);
        CHECK_MSG(max_diff(rec, a + b * m * n, (size_t)m * n) <= 2 * tol(float_dtypes[t]), "m=%d n=%d", m, n);
      }
      free(uv);
      free(svv);
      free(vtv);
      free(s2v);
      mlx_array arrays[5] = {x, u, sv, vt, s2};
      for (int i = 0; i < 5; i++) mlx_array_free(arrays[i]);
      mlx_vector_array_free(usv);
      mlx_vector_array_free(only_s);
    }
}

TEST(test_svd_hand_value) {
  double a[4] = {3, 0, 0, -2};
  int shape[2] = {2, 2};
  mlx_array x = from_doubles(a, shape, 2, MLX_FLOAT32), sv = mlx_array_new();
  mlx_vector_array v = mlx_vector_array_new();
  CHECK(!mlx_linalg_svd(&v, x, false, cpu));
  mlx_vector_array_get(&sv, v, 0);
  double* s = to_doubles(sv);
  CHECK_NEAR(s[0], 3, 1e-7);
  CHECK_NEAR(s[1], 2, 1e-7);
  free(s);
  mlx_array_free(x);
  mlx_array_free(sv);
  mlx_vector_array_free(v);
}

TEST(test_eigh_satisfies_the_eigen_equation) {
  for (int t = 0; t < 2; t++)
    for (int upper = 0; upper < 2; upper++) {
      int n = 5, shape[3] = {2, 5, 5};
      double a[50], garbage[50], av[25];
      fill_random(a, 50);
      for (int b = 0; b < 2; b++) /* symmetrise */
        for (int i = 0; i < n; i++)
          for (int j = 0; j < i; j++) a[b * 25 + j * n + i] = a[b * 25 + i * n + j];
      /* The other triangle holds garbage that must not be read. */
      memcpy(garbage, a, sizeof a);
      for (int b = 0; b < 2; b++)
        for (int i = 0; i < n; i++)
          for (int j = 0; j < n; j++)
            if (upper ? j < i : j > i) garbage[b * 25 + i * n + j] = 100;
      mlx_array x = from_doubles(garbage, shape, 3, float_dtypes[t]);
      for (int i = 0; i < 50; i++)
        if (garbage[i] != 100) a[i] = garbage[i]; /* a: the rounded symmetric matrix */
      mlx_array w = mlx_array_new(), v = mlx_array_new(), w2 = mlx_array_new();
      const char* uplo = upper ? "U" : "L";
      CHECK(!mlx_linalg_eigh(&w, &v, x, uplo, cpu));
      CHECK(!mlx_linalg_eigvalsh(&w2, x, uplo, cpu));
      double *wv = to_doubles(w), *vv = to_doubles(v), *w2v = to_doubles(w2);
      CHECK(max_diff(wv, w2v, 10) <= tol(float_dtypes[t]));
      for (int b = 0; b < 2; b++) {
        double *wb = wv + 5 * b, *vb = vv + 25 * b;
        for (int i = 1; i < n; i++) CHECK(wb[i] >= wb[i - 1]);
        matmul_ref(a + 25 * b, false, vb, false, av, n, n, n);
        /* column j: A v_j = w_j v_j */
        double err = 0;
        for (int i = 0; i < n; i++)
          for (int j = 0; j < n; j++) err = fmax(err, fabs(av[i * n + j] - wb[j] * vb[i * n + j]));
        CHECK_MSG(err <= 4 * tol(float_dtypes[t]), "t=%d upper=%d err %g", t, upper, err);
      }
      free(wv);
      free(vv);
      free(w2v);
      mlx_array_free(x);
      mlx_array_free(w);
      mlx_array_free(v);
      mlx_array_free(w2);
    }
}

TEST(test_eigh_hand_value) {
  double a[4] = {2, 1, 1, 2};
  int shape[2] = {2, 2};
  mlx_array x = from_doubles(a, shape, 2, MLX_FLOAT64), w = mlx_array_new();
  CHECK(!mlx_linalg_eigvalsh(&w, x, "L", cpu));
  double* wv = to_doubles(w);
  CHECK_NEAR(wv[0], 1, 1e-15);
  CHECK_NEAR(wv[1], 3, 1e-15);
  free(wv);
  mlx_array_free(x);
  mlx_array_free(w);
}

/* max |A v_j - w_j v_j| over columns, for complex64 results. */
static double eig_residual(const double* a, int n, mlx_array w, mlx_array v) {
  CHECK(!mlx_array_eval(w));
  CHECK(!mlx_array_eval(v));
  const float* wf = (const float*)mlx_array_data_complex64(w);
  const float* vf = (const float*)mlx_array_data_complex64(v);
  double err = 0;
  for (int j = 0; j < n; j++) {
    double complex lambda = wf[2 * j] + I * (double)wf[2 * j + 1];
    double norm = 0;
    for (int i = 0; i < n; i++) {
      double complex av = 0, vi = vf[2 * (i * n + j)] + I * (double)vf[2 * (i * n + j) + 1];
      for (int l = 0; l < n; l++) av += a[i * n + l] * (vf[2 * (l * n + j)] + I * (double)vf[2 * (l * n + j) + 1]);
      err = fmax(err, cabs(av - lambda * vi));
      norm += cabs(vi) * cabs(vi);
    }
    CHECK_NEAR(norm, 1, 1e-5);
  }
  return err;
}

TEST(test_eig_of_general_and_rotation_matrices) {
  int n = 6, shape[2] = {6, 6};
  double a[36];
  fill_random(a, 36);
  mlx_array x = from_doubles(a, shape, 2, MLX_FLOAT32), w = mlx_array_new(), v = mlx_array_new();
  CHECK(!mlx_linalg_eig(&w, &v, x, cpu));
  CHECK_EQ_INT(mlx_array_dtype(w), MLX_COMPLEX64);
  CHECK_EQ_INT(mlx_array_dtype(v), MLX_COMPLEX64);
  CHECK(eig_residual(a, n, w, v) <= 1e-5);
  mlx_array_free(x);
  double rot[4] = {0, -1, 1, 0};
  int s2[2] = {2, 2};
  x = from_doubles(rot, s2, 2, MLX_FLOAT64);
  CHECK(!mlx_linalg_eig(&w, &v, x, cpu));
  CHECK(eig_residual(rot, 2, w, v) <= 1e-6);
  mlx_array vals = mlx_array_new();
  CHECK(!mlx_linalg_eigvals(&vals, x, cpu));
  CHECK(!mlx_array_eval(vals));
  const float* wv = (const float*)mlx_array_data_complex64(vals);
  /* +-i in either order */
  CHECK_NEAR(wv[0], 0, 1e-7);
  CHECK_NEAR(fabs(wv[1]), 1, 1e-7);
  CHECK_NEAR(wv[1] + wv[3], 0, 1e-7);
  mlx_array_free(vals);
  mlx_array_free(x);
  mlx_array_free(w);
  mlx_array_free(v);
}

TEST(test_lu_reconstructs_a_from_permuted_l_and_u) {
  int dims[3][2] = {{5, 5}, {6, 4}, {4, 6}};
  for (int t = 0; t < 2; t++)
    for (int d = 0; d < 3; d++) {
      int m = dims[d][0], n = dims[d][1], k = m < n ? m : n, shape[3] = {2, m, n};
      double a[50], lu[36];
      fill_random(a, (size_t)2 * m * n);
      mlx_array x = from_doubles(a, shape, 3, float_dtypes[t]);
      mlx_vector_array plu = mlx_vector_array_new();
      CHECK(!mlx_linalg_lu(&plu, x, cpu));
      CHECK_EQ_INT(mlx_vector_array_size(plu), 3);
      mlx_array p = mlx_array_new(), l = mlx_array_new(), u = mlx_array_new();
      mlx_vector_array_get(&p, plu, 0);
      mlx_vector_array_get(&l, plu, 1);
      mlx_vector_array_get(&u, plu, 2);
      CHECK_EQ_INT(mlx_array_dtype(p), MLX_UINT32);
      CHECK_EQ_INT(mlx_array_shape(l)[2], k);
      CHECK_EQ_INT(mlx_array_shape(u)[1], k);
      double *pv = to_doubles(p), *lv = to_doubles(l), *uv = to_doubles(u);
      for (int b = 0; b < 2; b++) {
        double *lb = lv + b * m * k, *ub = uv + b * k * n, *pb = pv + b * m;
        matmul_ref(lb, false, ub, false, lu, m, k, n);
        double err = 0;
        for (int i = 0; i < m; i++) /* A = (L U)[P] */
          for (int j = 0; j < n; j++) err = fmax(err, fabs(lu[(int)pb[i] * n + j] - a[b * m * n + i * n + j]));
        CHECK_MSG(err <= tol(float_dtypes[t]), "m=%d n=%d err %g", m, n, err);
        for (int i = 0; i < m; i++)
          for (int j = 0; j < k; j++) {
            if (j > i) CHECK(lb[i * k + j] == 0);
            if (j == i) CHECK(lb[i * k + j] == 1);
          }
        for (int i = 0; i < k; i++)
          for (int j = 0; j < i; j++) CHECK(ub[i * n + j] == 0);
      }
      free(pv);
      free(lv);
      free(uv);
      mlx_array_free(x);
      mlx_array_free(p);
      mlx_array_free(l);
      mlx_array_free(u);
      mlx_vector_array_free(plu);
    }
}

TEST(test_lu_factor_pivots_replay_to_a) {
  int n = 5, shape[2] = {5, 5};
  double a[25], pa[25], lu[25];
  fill_random(a, 25);
  mlx_array x = from_doubles(a, shape, 2, MLX_FLOAT64), f = mlx_array_new(), piv = mlx_array_new();
  CHECK(!mlx_linalg_lu_factor(&f, &piv, x, cpu));
  CHECK_EQ_INT(mlx_array_dtype(piv), MLX_UINT32);
  double *fv = to_doubles(f), *pv = to_doubles(piv);
  /* Swap the rows of A as the pivots say, then compare with the unpacked L U. */
  memcpy(pa, a, sizeof a);
  for (int i = 0; i < n; i++) {
    int r = (int)pv[i];
    CHECK(r >= i && r < n);
    for (int j = 0; j < n; j++) {
      double tmp = pa[i * n + j];
      pa[i * n + j] = pa[r * n + j];
      pa[r * n + j] = tmp;
    }
  }
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) {
      double acc = 0;
      for (int l = 0; l <= (i < j ? i : j); l++) acc += (l == i ? 1 : fv[i * n + l]) * fv[l * n + j];
      lu[i * n + j] = acc;
    }
  CHECK(max_diff(lu, pa, 25) <= 1e-12);
  free(fv);
  free(pv);
  mlx_array_free(x);
  mlx_array_free(f);
  mlx_array_free(piv);
}

TEST(test_solve_matrix_vector_and_broadcast_batches) {
  int n = 4;
  double a[3 * 16], b[8], bv[4], ax[8];
  well_conditioned(a, 3, n);
  fill_random(b, 8);
  fill_random(bv, 4);
  int a_shape[3] = {3, 4, 4}, b_shape[2] = {4, 2}, v_shape[1] = {4};
  for (int t = 0; t < 2; t++) {
    mlx_array x = from_doubles(a, a_shape, 3, float_dtypes[t]);
    mlx_array y = from_doubles(b, b_shape, 2, float_dtypes[t]);
    mlx_array yv = from_doubles(bv, v_shape, 1, float_dtypes[t]);
    mlx_array r = mlx_array_new();
    CHECK(!mlx_linalg_solve(&r, x, y, cpu)); /* (3, 4, 4) with (4, 2): b broadcasts */
    CHECK_EQ_INT(mlx_array_ndim(r), 3);
    double* rv = to_doubles(r);
    for (int i = 0; i < 3; i++) {
      matmul_ref(a + 16 * i, false, rv + 8 * i, false, ax, n, n, 2);
      CHECK(max_diff(ax, b, 8) <= tol(float_dtypes[t]) * 4);
    }
    free(rv);
    CHECK(!mlx_linalg_solve(&r, x, yv, cpu)); /* vector right-hand side: (3, 4) */
    CHECK_EQ_INT(mlx_array_ndim(r), 2);
    CHECK_EQ_INT(mlx_array_shape(r)[1], 4);
    rv = to_doubles(r);
    for (int i = 0; i < 3; i++) {
      matmul_ref(a + 16 * i, false, rv + 4 * i, false, ax, n, n, 1);
      CHECK(max_diff(ax, bv, 4) <= tol(float_dtypes[t]) * 4);
    }
    free(rv);
    mlx_array_free(x);
    mlx_array_free(y);
    mlx_array_free(yv);
    mlx_array_free(r);
  }
}

TEST(test_solve_promotes_integers_and_reports_singular) {
  double a[4] = {2, 1, 1, 3};
  int ai[2] = {3, 5}, shape[2] = {2, 2}, bs[1] = {2};
  mlx_array x = from_doubles(a, shape, 2, MLX_FLOAT32), y = mlx_array_new_data(ai, bs, 1, MLX_INT32);
  mlx_array r = mlx_array_new();
  CHECK(!mlx_linalg_solve(&r, x, y, cpu));
  CHECK_EQ_INT(mlx_array_dtype(r), MLX_FLOAT32);
  double* rv = to_doubles(r); /* 2x + y = 3, x + 3y = 5 -> x = 0.8, y = 1.4 */
  CHECK_NEAR(rv[0], 0.8, 1e-6);
  CHECK_NEAR(rv[1], 1.4, 1e-6);
  free(rv);
  double sing[4] = {1, 2, 2, 4};
  mlx_array_free(x);
  x = from_doubles(sing, shape, 2, MLX_FLOAT32);
  CHECK(!mlx_linalg_solve(&r, x, y, cpu));
  CHECK(mlx_array_eval(r) != 0);
  CHECK(strstr(mlxc_last_error(), "solve: the matrix is singular") != NULL);
  mlx_array yi = mlx_array_new_data(ai, bs, 1, MLX_INT32), xi = mlx_array_new_data((int[]){1, 0, 0, 1}, shape, 2, MLX_INT32);
  CHECK(mlx_linalg_solve(&r, xi, yi, cpu) != 0);
  CHECK(strstr(mlxc_last_error(), "promote to float32 or float64") != NULL);
  int b3[1] = {3};
  mlx_array y3 = mlx_array_new_data((int[]){1, 2, 3}, b3, 1, MLX_INT32);
  CHECK(mlx_linalg_solve(&r, x, y3, cpu) != 0);
  mlx_array_free(x);
  mlx_array_free(y);
  mlx_array_free(xi);
  mlx_array_free(yi);
  mlx_array_free(y3);
  mlx_array_free(r);
}

TEST(test_solve_triangular_reads_one_triangle) {
  for (int upper = 0; upper < 2; upper++) {
    int n = 5, shape[2] = {5, 5}, bshape[2] = {5, 3};
    double a[25], tri[25], b[15], ax[15];
    well_conditioned(a, 1, n);
    fill_random(b, 15);
    for (int i = 0; i < n; i++)
      for (int j = 0; j < n; j++) tri[i * n + j] = (upper ? j >= i : j <= i) ? a[i * n + j] : 0;
    mlx_array x = from_doubles(a, shape, 2, MLX_FLOAT64), y = from_doubles(b, bshape, 2, MLX_FLOAT64);
    mlx_array r = mlx_array_new();
    CHECK(!mlx_linalg_solve_triangular(&r, x, y, upper, cpu));
    double* rv = to_doubles(r);
    matmul_ref(tri, false, rv, false, ax, n, n, 3);
    CHECK(max_diff(ax, b, 15) <= 1e-12);
    free(rv);
    mlx_array_free(x);
    mlx_array_free(y);
    mlx_array_free(r);
  }
}

TEST(test_pinv_satisfies_moore_penrose) {
  int dims[3][2] = {{4, 4}, {5, 3}, {3, 5}};
  for (int d = 0; d < 3; d++) {
    int m = dims[d][0], n = dims[d][1], shape[2] = {m, n};
    double a[25], ap[25], apa[25];
    fill_random(a, (size_t)m * n);
    mlx_array x = from_doubles(a, shape, 2, MLX_FLOAT64), p = mlx_array_new();
    CHECK(!mlx_linalg_pinv(&p, x, cpu));
    CHECK_EQ_INT(mlx_array_shape(p)[0], n);
    CHECK_EQ_INT(mlx_array_shape(p)[1], m);
    double* pv = to_doubles(p);
    matmul_ref(a, false, pv, false, ap, m, n, m);
    matmul_ref(ap, false, a, false, apa, m, m, n);
    CHECK_MSG(max_diff(apa, a, (size_t)m * n) <= 1e-12, "m=%d n=%d", m, n);
    free(pv);
    mlx_array_free(x);
    mlx_array_free(p);
  }
}

static double scalar_of(mlx_array a) {
  double* v = to_doubles(a);
  double r = v[0];
  free(v);
  return r;
}

TEST(test_vector_norms_hand_values) {
  double v[4] = {3, -4, 0, 1};
  int shape[1] = {4}, axis[1] = {0};
  mlx_array x = from_doubles(v, shape, 1, MLX_FLOAT32), y = mlx_array_new();
  double ords[6] = {0, 1, 2, INFINITY, -INFINITY, 3};
  double want[6] = {3, 8, sqrt(26.0), 4, 0, cbrt(92.0)};
  for (int i = 0; i < 6; i++) {
    CHECK(!mlx_linalg_norm(&y, x, ords[i], axis, 1, false, cpu));
    CHECK_EQ_INT(mlx_array_dtype(y), MLX_FLOAT32);
    CHECK_MSG(fabs(scalar_of(y) - want[i]) <= 1e-5, "ord %g", ords[i]);
  }
  CHECK(!mlx_linalg_norm(&y, x, 2, NULL, 0, false, cpu)); /* no axis: the whole 1-D array */
  CHECK_NEAR(scalar_of(y), sqrt(26.0), 1e-6);
  CHECK(!mlx_linalg_norm_l2(&y, x, NULL, 0, true, cpu));
  CHECK_EQ_INT(mlx_array_ndim(y), 1);
  CHECK_NEAR(scalar_of(y), sqrt(26.0), 1e-6);
  mlx_array_free(x);
  int iv[3] = {3, 0, -4}, s3[1] = {3};
  x = mlx_array_new_data(iv, s3, 1, MLX_INT32); /* integers give float32 */
  CHECK(!mlx_linalg_norm(&y, x, 1, axis, 1, false, cpu));
  CHECK_EQ_INT(mlx_array_dtype(y), MLX_FLOAT32);
  CHECK_NEAR(scalar_of(y), 7, 0);
  CHECK(!mlx_linalg_norm(&y, x, 0, axis, 1, false, cpu));
  CHECK_NEAR(scalar_of(y), 2, 0);
  mlx_array_free(x);
  mlx_array_free(y);
}

TEST(test_matrix_norms_hand_values) {
  double m[4] = {1, -2, 3, 4};
  int shape[2] = {2, 2}, axes[2] = {0, 1}, axes_t[2] = {1, 0};
  mlx_array x = from_doubles(m, shape, 2, MLX_FLOAT64), y = mlx_array_new();
  /* A^T A = [[10, 10], [10, 20]]: singular values sqrt(15 +- sqrt(125)). */
  double s_max = sqrt(15 + sqrt(125.0)), s_min = sqrt(15 - sqrt(125.0));
  double ords[6] = {1, -1, INFINITY, -INFINITY, 2, -2};
  double want[6] = {6, 4, 7, 3, s_max, s_min};
  for (int i = 0; i < 6; i++) {
    CHECK(!mlx_linalg_norm(&y, x, ords[i], NULL, 0, false, cpu));
    CHECK_MSG(fabs(scalar_of(y) - want[i]) <= 1e-12, "ord %g", ords[i]);
  }
  /* Swapped axes transpose the matrix: the 1-norm becomes the inf-norm. */
  CHECK(!mlx_linalg_norm(&y, x, 1, axes_t, 2, false, cpu));
  CHECK_NEAR(scalar_of(y), 7, 1e-12);
  CHECK(!mlx_linalg_norm_matrix(&y, x, "fro", axes, 2, false, cpu));
  CHECK_NEAR(scalar_of(y), sqrt(30.0), 1e-12);
  CHECK(!mlx_linalg_norm_matrix(&y, x, "nuc", NULL, 0, true, cpu));
  CHECK_EQ_INT(mlx_array_ndim(y), 2);
  CHECK_NEAR(scalar_of(y), s_max + s_min, 1e-12);
  CHECK(!mlx_linalg_norm_l2(&y, x, axes, 2, false, cpu));
  CHECK_NEAR(scalar_of(y), sqrt(30.0), 1e-12);
  mlx_array_free(x);
  mlx_array_free(y);
}

TEST(test_matrix_norm_over_outer_axes_of_a_batch) {
  /* (2, 3, 2): the matrix axes are 0 and 2, the batch is axis 1; keepdims keeps (1, 3, 1). */
  double v[12];
  fill_random(v, 12);
  int shape[3] = {2, 3, 2}, axes[2] = {0, 2};
  mlx_array x = from_doubles(v, shape, 3, MLX_FLOAT64), y = mlx_array_new();
  CHECK(!mlx_linalg_norm(&y, x, INFINITY, axes, 2, true, cpu));
  CHECK_EQ_INT(mlx_array_ndim(y), 3);
  CHECK_EQ_INT(mlx_array_shape(y)[1], 3);
  double* r = to_doubles(y);
  for (int b = 0; b < 3; b++) { /* rows are axis 0, columns axis 2: max over i of sum_j |A_ij| */
    double best = 0;
    for (int i = 0; i < 2; i++) best = fmax(best, fabs(v[i * 6 + b * 2]) + fabs(v[i * 6 + b * 2 + 1]));
    CHECK_NEAR(r[b], best, 1e-12);
  }
  free(r);
  CHECK(!mlx_linalg_norm(&y, x, 2, axes, 2, false, cpu));
  CHECK_EQ_INT(mlx_array_ndim(y), 1);
  mlx_array_free(x);
  mlx_array_free(y);
}

TEST(test_cross_products) {
  double a[6] = {1, 0, 0, 1, 2, 3}, b[6] = {0, 1, 0, 4, 5, 6};
  int shape[2] = {2, 3};
  mlx_array x = from_doubles(a, shape, 2, MLX_FLOAT32), y = from_doubles(b, shape, 2, MLX_FLOAT32);
  mlx_array r = mlx_array_new();
  CHECK(!mlx_linalg_cross(&r, x, y, -1, cpu));
  double* rv = to_doubles(r);
  double want[6] = {0, 0, 1, 2 * 6 - 3 * 5, 3 * 4 - 1 * 6, 1 * 5 - 2 * 4};
  CHECK(max_diff(rv, want, 6) == 0);
  free(rv);
  /* 2-vectors are (x, y, 0). */
  double a2[2] = {1, 2}, b2[2] = {3, 4};
  int s2[1] = {2};
  mlx_array x2 = from_doubles(a2, s2, 1, MLX_FLOAT32), y2 = from_doubles(b2, s2, 1, MLX_FLOAT32);
  CHECK(!mlx_linalg_cross(&r, x2, y2, 0, cpu));
  rv = to_doubles(r);
  double want2[3] = {0, 0, -2};
  CHECK_EQ_INT(mlx_array_size(r), 3);
  CHECK(max_diff(rv, want2, 3) == 0);
  free(rv);
  double a4[4] = {1, 2, 3, 4};
  int s4[1] = {4};
  mlx_array x4 = from_doubles(a4, s4, 1, MLX_FLOAT32);
  CHECK(mlx_linalg_cross(&r, x4, x4, 0, cpu) != 0);
  CHECK(strstr(mlxc_last_error(), "size 2 or 3") != NULL);
  CHECK(mlx_linalg_cross(&r, x, y, 2, cpu) != 0);
  mlx_array_free(x4);
  mlx_array_free(x);
  mlx_array_free(y);
  mlx_array_free(x2);
  mlx_array_free(y2);
  mlx_array_free(r);
}

TEST(test_linalg_errors) {
  double v[6] = {1, 2, 3, 4, 5, 6};
  int s23[2] = {2, 3}, s6[1] = {6}, s22[2] = {2, 2};
  mlx_array rect = from_doubles(v, s23, 2, MLX_FLOAT32), vec = from_doubles(v, s6, 1, MLX_FLOAT32);
  mlx_array ints = mlx_array_new_data((int[]){1, 0, 0, 1}, s22, 2, MLX_INT32);
  mlx_array empty = mlx_array_new(), y = mlx_array_new(), z = mlx_array_new();
  CHECK(mlx_linalg_inv(&y, rect, cpu) != 0);
  CHECK(strstr(mlxc_last_error(), "inv: only defined for square matrices") != NULL);
  CHECK(mlx_linalg_cholesky(&y, vec, false, cpu) != 0);
  CHECK(strstr(mlxc_last_error(), "at least 2 dimensions") != NULL);
  CHECK(mlx_linalg_qr(&y, &z, ints, cpu) != 0);
  CHECK(strstr(mlxc_last_error(), "float32 or float64") != NULL);
  CHECK(mlx_linalg_inv(&y, empty, cpu) != 0);
  CHECK(strstr(mlxc_last_error(), "empty") != NULL);
  CHECK(mlx_linalg_eigh(&y, &z, rect, "L", cpu) != 0);
  mlx_array sq = from_doubles((double[]){1, 0, 0, 1}, s22, 2, MLX_FLOAT32);
  CHECK(mlx_linalg_eigh(&y, &z, sq, "X", cpu) != 0);
  CHECK(strstr(mlxc_last_error(), "UPLO") != NULL);
  CHECK(mlx_linalg_eigvalsh(&y, sq, NULL, cpu) != 0);
  CHECK(mlx_linalg_eig(&y, NULL, sq, cpu) != 0);
  CHECK(mlx_linalg_norm(&y, rect, 3, NULL, 0, false, cpu) != 0);
  CHECK(strstr(mlxc_last_error(), "invalid ord 3") != NULL);
  CHECK(mlx_linalg_norm_matrix(&y, vec, "fro", NULL, 0, false, cpu) != 0);
  CHECK(mlx_linalg_norm_matrix(&y, rect, "bad", NULL, 0, false, cpu) != 0);
  CHECK(mlx_linalg_norm(&y, rect, 2, (int[]){0, 0}, 2, false, cpu) != 0);
  CHECK(mlx_linalg_solve(&y, rect, vec, cpu) != 0);
  CHECK(strstr(mlxc_last_error(), "must be square") != NULL);
  CHECK(mlx_linalg_solve_triangular(&y, sq, vec, false, cpu) != 0);
  CHECK(mlx_linalg_svd(NULL, rect, true, cpu) != 0);
  CHECK(mlx_linalg_lu(NULL, rect, cpu) != 0);
  mlx_array arrays[] = {rect, vec, ints, y, z, sq};
  for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) mlx_array_free(arrays[i]);
}

TEST(test_empty_batches) {
  int shape[3] = {0, 3, 3};
  mlx_array x = mlx_array_new_data(NULL, shape, 3, MLX_FLOAT32), y = mlx_array_new(), z = mlx_array_new();
  CHECK(!mlx_linalg_inv(&y, x, cpu));
  CHECK(!mlx_array_eval(y));
  CHECK_EQ_INT(mlx_array_size(y), 0);
  CHECK(!mlx_linalg_qr(&y, &z, x, cpu));
  CHECK(!mlx_array_eval(z));
  CHECK_EQ_INT(mlx_array_shape(z)[0], 0);
  mlx_array_free(x);
  mlx_array_free(y);
  mlx_array_free(z);
}

int main(void) {
  mlxc_set_errors_quiet(1);
  cpu = mlx_default_cpu_stream_new();
  RUN(test_inv_times_a_is_identity_batched);
  RUN(test_inv_hand_value_and_transposed_input);
  RUN(test_inv_of_singular_matrix_is_an_error);
  RUN(test_tri_inv_reads_one_triangle);
  RUN(test_cholesky_factors_reproduce_a);
  RUN(test_cholesky_hand_value_and_indefinite_error);
  RUN(test_cholesky_inv_inverts_a);
  RUN(test_qr_is_orthonormal_times_upper_triangular);
  RUN(test_svd_reconstructs_a_with_orthogonal_factors);
  RUN(test_svd_hand_value);
  RUN(test_eigh_satisfies_the_eigen_equation);
  RUN(test_eigh_hand_value);
  RUN(test_eig_of_general_and_rotation_matrices);
  RUN(test_lu_reconstructs_a_from_permuted_l_and_u);
  RUN(test_lu_factor_pivots_replay_to_a);
  RUN(test_solve_matrix_vector_and_broadcast_batches);
  RUN(test_solve_promotes_integers_and_reports_singular);
  RUN(test_solve_triangular_reads_one_triangle);
  RUN(test_pinv_satisfies_moore_penrose);
  RUN(test_vector_norms_hand_values);
  RUN(test_matrix_norms_hand_values);
  RUN(test_matrix_norm_over_outer_axes_of_a_batch);
  RUN(test_cross_products);
  RUN(test_linalg_errors);
  RUN(test_empty_batches);
  mlx_stream_free(cpu);
  return TEST_SUMMARY();
}
