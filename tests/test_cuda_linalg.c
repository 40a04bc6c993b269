/* cholesky, inv, solve, lu_factor, qr, eigh, svd and eig on the GPU (cuSOLVER) against the
 * CPU's LAPACK kernels: float32 and float64, batches, strided (transposed) inputs, broadcast batches in solve,
 * upper and lower factors, wide and tall LU and QR (compared with R's diagonal made non-negative),
 * eigenvectors compared up to their sign (eig's up to their phase, its eigenvalues matched in any
 * order), singular vectors by orthogonality and by rebuilding the matrix; the factorizations' failures (singular, not positive definite,
 * NaN) reported with the CPU's messages; tri_inv and solve_triangular (cuBLAS trsm) reading one
 * triangle, upper and lower, batches, broadcast right-hand sides, a zero pivot as singular. Both
 * sides compute in double: results agree to the rounding of another operation order. */
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "mlx/c/mlx.h"
#include "mlxc/error.h"
#include "test_util.h"

#include "cuda_test_util.h"

static double tol(mlx_dtype d) { return d == MLX_FLOAT32 ? 2e-5 : 1e-10; }

/* Uniform values in [lo, hi) of a float dtype (rand_array rounds float64 values as integers). */
static mlx_array real_rand(const int* shape, int nd, mlx_dtype dt, double lo, double hi) {
  mlx_array f = rand_array(shape, nd, MLX_FLOAT32, lo, hi), out = mlx_array_new();
  mlx_astype(&out, f, dt, cpu);
  mlx_array_eval(out);
  mlx_array_free(f);
  return out;
}

/* (batch..., n, n) matrices of dtype: random + n on the diagonal (well conditioned); spd: X Xᵀ +
 * n I (positive definite). */
static mlx_array square(const int* batch, int nb, int n, mlx_dtype dt, bool spd) {
  int shape[4];
  for (int i = 0; i < nb; i++) shape[i] = batch[i];
  shape[nb] = shape[nb + 1] = n;
  mlx_array x = real_rand(shape, nb + 2, MLX_FLOAT64, -1, 1), eye = mlx_array_new(), m = mlx_array_new();
  mlx_array t = mlx_array_new(), out = mlx_array_new(), scaled = mlx_array_new(), k = mlx_array_new_float64(n);
  mlx_eye(&eye, n, n, 0, MLX_FLOAT64, cpu);
  mlx_multiply(&scaled, eye, k, cpu);
  if (spd) {
    mlx_swapaxes(&t, x, -1, -2, cpu);
    mlx_matmul(&m, x, t, cpu);
  } else {
    mlx_array_set(&m, x);
  }
  mlx_add(&t, m, scaled, cpu);
  mlx_astype(&out, t, dt, cpu);
  mlx_array_eval(out);
  mlx_array all[] = {x, eye, m, t, scaled, k};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) mlx_array_free(all[i]);
  return out;
}

/* The same values as a transposed view (strides swapped). */
static mlx_array transposed_view(mlx_array a) {
  mlx_array t = mlx_array_new(), c = mlx_array_new(), v = mlx_array_new();
  mlx_swapaxes(&t, a, -1, -2, cpu);
  mlx_contiguous(&c, t, false, cpu);
  mlx_swapaxes(&v, c, -1, -2, cpu); /* a's values, column-major strides */
  mlx_array_eval(v);
  mlx_array_free(t);
  mlx_array_free(c);
  return v;
}

TEST(cholesky_matches_the_cpu) {
  const mlx_dtype types[2] = {MLX_FLOAT32, MLX_FLOAT64};
  const int batch[1] = {3};
  for (int t = 0; t < 2; t++)
    for (int upper = 0; upper < 2; upper++)
      for (int v = 0; v < 3; v++) {
        mlx_array a = v == 2 ? square(NULL, 0, 64, types[t], true) : square(batch, 1, 5, types[t], true);
        if (v == 1) {
          mlx_array w = transposed_view(a);
          mlx_array_free(a);
          a = w;
        }
        mlx_array g = mlx_array_new(), c = mlx_array_new();
        char what[96];
        snprintf(what, sizeof what, "cholesky %s upper=%d case %d", types[t] == MLX_FLOAT32 ? "f32" : "f64", upper, v);
        CHECK_MSG(mlx_linalg_cholesky(&g, a, upper, gpu) == 0, "%s: %s", what, mlxc_last_error());
        CHECK_MSG(made_on_gpu(g), "%s: not computed on the GPU", what);
        CHECK(mlx_linalg_cholesky(&c, a, upper, cpu) == 0);
        compare(what, g, c, tol(types[t]), tol(types[t]), 0);
        mlx_array all[] = {a, g, c};
        for (size_t i = 0; i < 3; i++) mlx_array_free(all[i]);
      }
}

TEST(inv_and_solve_match_the_cpu) {
  const mlx_dtype types[2] = {MLX_FLOAT32, MLX_FLOAT64};
  for (int t = 0; t < 2; t++) {
    mlx_dtype dt = types[t];
    const int b4[1] = {4}, b23[2] = {2, 3};
    mlx_array a = square(b4, 1, 7, dt, false), big = square(NULL, 0, 100, dt, false);
    mlx_array at = transposed_view(a);
    mlx_array in[3] = {a, big, at};
    for (int i = 0; i < 3; i++) {
      mlx_array g = mlx_array_new(), c = mlx_array_new();
      char what[64];
      snprintf(what, sizeof what, "inv %s case %d", dt == MLX_FLOAT32 ? "f32" : "f64", i);
      CHECK_MSG(mlx_linalg_inv(&g, in[i], gpu) == 0, "%s: %s", what, mlxc_last_error());
      CHECK_MSG(made_on_gpu(g), "%s: not computed on the GPU", what);
      CHECK(mlx_linalg_inv(&c, in[i], cpu) == 0);
      compare(what, g, c, 0, 0, tol(dt));
      mlx_array_free(g);
      mlx_array_free(c);
    }
    /* Matching batches, then a single matrix broadcast over a batch of right-hand sides. */
    mlx_array A = square(b23, 2, 6, dt, false), one = square(NULL, 0, 6, dt, false);
    int sb[4] = {2, 3, 6, 4}, sb2[3] = {5, 6, 2};
    mlx_array B = real_rand(sb, 4, dt, -1, 1), B2 = real_rand(sb2, 3, dt, -1, 1);
    mlx_array as[2] = {A, one}, bs[2] = {B, B2};
    for (int i = 0; i < 2; i++) {
      mlx_array g = mlx_array_new(), c = mlx_array_new();
      char what[64];
      snprintf(what, sizeof what, "solve %s case %d", dt == MLX_FLOAT32 ? "f32" : "f64", i);
      CHECK_MSG(mlx_linalg_solve(&g, as[i], bs[i], gpu) == 0, "%s: %s", what, mlxc_last_error());
      CHECK_MSG(made_on_gpu(g), "%s: not computed on the GPU", what);
      CHECK(mlx_linalg_solve(&c, as[i], bs[i], cpu) == 0);
      compare(what, g, c, 0, 0, tol(dt));
      mlx_array_free(g);
      mlx_array_free(c);
    }
    mlx_array all[] = {a, big, at, A, one, B, B2};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) mlx_array_free(all[i]);
  }
}

/* tri_inv and solve_triangular read one triangle of a full random matrix (the other one must not
 * matter), as LAPACK's trtri and trtrs do on the CPU. */
TEST(triangular_forms_match_the_cpu) {
  const mlx_dtype types[2] = {MLX_FLOAT32, MLX_FLOAT64};
  for (int t = 0; t < 2; t++)
    for (int upper = 0; upper < 2; upper++) {
      mlx_dtype dt = types[t];
      const int b3[1] = {3};
      mlx_array a = square(b3, 1, 9, dt, false), big = square(NULL, 0, 120, dt, false);
      mlx_array at = transposed_view(a);
      mlx_array in[3] = {a, big, at};
      for (int i = 0; i < 3; i++) {
        mlx_array g = mlx_array_new(), c = mlx_array_new();
        char what[64];
        snprintf(what, sizeof what, "tri_inv %s upper=%d case %d", dt == MLX_FLOAT32 ? "f32" : "f64", upper, i);
        CHECK_MSG(mlx_linalg_tri_inv(&g, in[i], upper, gpu) == 0, "%s: %s", what, mlxc_last_error());
        CHECK_MSG(made_on_gpu(g), "%s: not computed on the GPU", what);
        CHECK(mlx_linalg_tri_inv(&c, in[i], upper, cpu) == 0);
        compare(what, g, c, 0, 0, tol(dt));
        mlx_array_free(g);
        mlx_array_free(c);
      }
      /* Matching batches, then one matrix broadcast over a batch of right-hand sides. */
      int sb[3] = {3, 9, 5}, sb2[3] = {4, 120, 2};
      mlx_array B = real_rand(sb, 3, dt, -1, 1), B2 = real_rand(sb2, 3, dt, -1, 1);
      mlx_array as[2] = {a, big}, bs[2] = {B, B2};
      for (int i = 0; i < 2; i++) {
        mlx_array g = mlx_array_new(), c = mlx_array_new();
        char what[80];
        snprintf(what, sizeof what, "solve_triangular %s upper=%d case %d", dt == MLX_FLOAT32 ? "f32" : "f64", upper, i);
        CHECK_MSG(mlx_linalg_solve_triangular(&g, as[i], bs[i], upper, gpu) == 0, "%s: %s", what, mlxc_last_error());
        CHECK_MSG(made_on_gpu(g), "%s: not computed on the GPU", what);
        CHECK(mlx_linalg_solve_triangular(&c, as[i], bs[i], upper, cpu) == 0);
        compare(what, g, c, 0, 0, tol(dt));
        mlx_array_free(g);
        mlx_array_free(c);
      }
      mlx_array all[] = {a, big, at, B, B2};
      for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) mlx_array_free(all[i]);
    }
}

TEST(lu_factor_matches_the_cpu) {
  const mlx_dtype types[2] = {MLX_FLOAT32, MLX_FLOAT64};
  const int shapes[3][3] = {{3, 5, 5}, {2, 4, 6}, {1, 6, 4}};
  for (int t = 0; t < 2; t++)
    for (int s = 0; s < 3; s++) {
      mlx_array a = real_rand(shapes[s], 3, types[t], -1, 1);
      mlx_array glu = mlx_array_new(), gpiv = mlx_array_new(), clu = mlx_array_new(), cpiv = mlx_array_new();
      char what[64];
      snprintf(what, sizeof what, "lu_factor %s %dx%dx%d", types[t] == MLX_FLOAT32 ? "f32" : "f64", shapes[s][0],
               shapes[s][1], shapes[s][2]);
      CHECK_MSG(mlx_linalg_lu_factor(&glu, &gpiv, a, gpu) == 0, "%s: %s", what, mlxc_last_error());
      CHECK_MSG(made_on_gpu(glu) && made_on_gpu(gpiv), "%s: not computed on the GPU", what);
      CHECK(mlx_linalg_lu_factor(&clu, &cpiv, a, cpu) == 0);
      compare(what, glu, clu, tol(types[t]), tol(types[t]), 0);
      compare("lu_factor pivots", gpiv, cpiv, 0, 0, 0);
      /* P, L, U from the row permutation output. */
      mlx_vector_array gp = mlx_vector_array_new(), cp = mlx_vector_array_new();
      CHECK(mlx_linalg_lu(&gp, a, gpu) == 0 && mlx_linalg_lu(&cp, a, cpu) == 0);
      for (size_t i = 0; i < 3 && mlx_vector_array_size(gp) == 3; i++) {
        mlx_array x = mlx_array_new(), y = mlx_array_new();
        mlx_vector_array_get(&x, gp, i);
        mlx_vector_array_get(&y, cp, i);
        compare("lu P, L, U", x, y, tol(types[t]), tol(types[t]), 0);
        mlx_array_free(x);
        mlx_array_free(y);
      }
      mlx_vector_array_free(gp);
      mlx_vector_array_free(cp);
      mlx_array all[] = {a, glu, gpiv, clu, cpiv};
      for (size_t i = 0; i < 5; i++) mlx_array_free(all[i]);
    }
}

/* Host doubles of a (rows, cols) batch, the caller frees; with their count. */
static double* host_values(mlx_array a, size_t* n) {
  mlx_array_eval(a);
  return values(a, n);
}

/* ||x - y|| / ||y|| <= tol over n values. */
static void close_normwise(const char* what, const double* x, const double* y, size_t n, double tol_) {
  double d = 0, r = 0;
  for (size_t i = 0; i < n; i++) d += (x[i] - y[i]) * (x[i] - y[i]), r += y[i] * y[i];
  const double rel = r > 0 ? sqrt(d / r) : sqrt(d);
  CHECK_MSG(rel <= tol_, "%s: relative error %.3g > %.3g", what, rel, tol_);
}

/* Q's column j and R's row j flipped together where R[j][j] < 0: the QR with a non-negative
 * diagonal, unique for a full-rank matrix (so that both libraries' signs compare). */
static void positive_diagonal(double* q, double* r, int64_t count, int m, int n) {
  const int k = m < n ? m : n;
  for (int64_t b = 0; b < count; b++)
    for (int j = 0; j < k; j++)
      if (r[b * k * n + (int64_t)j * n + j] < 0) {
        for (int i = 0; i < m; i++) q[b * m * k + (int64_t)i * k + j] *= -1;
        for (int c = 0; c < n; c++) r[b * k * n + (int64_t)j * n + c] *= -1;
      }
}

TEST(qr_matches_the_cpu) {
  const mlx_dtype types[2] = {MLX_FLOAT32, MLX_FLOAT64};
  const int shapes[3][3] = {{3, 6, 4}, {2, 4, 6}, {1, 5, 5}};
  for (int t = 0; t < 2; t++)
    for (int sh = 0; sh < 3; sh++) {
      const int m = shapes[sh][1], n = shapes[sh][2];
      mlx_array a = real_rand(shapes[sh], 3, types[t], -1, 1);
      mlx_array gq = mlx_array_new(), gr = mlx_array_new(), cq = mlx_array_new(), cr = mlx_array_new();
      char what[64];
      snprintf(what, sizeof what, "qr %s %dx%dx%d", types[t] == MLX_FLOAT32 ? "f32" : "f64", shapes[sh][0], m, n);
      CHECK_MSG(mlx_linalg_qr(&gq, &gr, a, gpu) == 0, "%s: %s", what, mlxc_last_error());
      CHECK_MSG(made_on_gpu(gq) && made_on_gpu(gr), "%s: not computed on the GPU", what);
      CHECK(mlx_linalg_qr(&cq, &cr, a, cpu) == 0);
      size_t n1 = 0, n2 = 0, n3 = 0, n4 = 0;
      double *q1 = host_values(gq, &n1), *r1 = host_values(gr, &n2), *q2 = host_values(cq, &n3), *r2 = host_values(cr, &n4);
      CHECK(q1 && r1 && q2 && r2 && n1 == n3 && n2 == n4);
      if (q1 && r1 && q2 && r2 && n1 == n3 && n2 == n4) {
        positive_diagonal(q1, r1, shapes[sh][0], m, n);
        positive_diagonal(q2, r2, shapes[sh][0], m, n);
        close_normwise(what, q1, q2, n1, 10 * tol(types[t]));
        close_normwise(what, r1, r2, n2, 10 * tol(types[t]));
      }
      free(q1), free(r1), free(q2), free(r2);
      mlx_array all[] = {a, gq, gr, cq, cr};
      for (size_t i = 0; i < 5; i++) mlx_array_free(all[i]);
    }
}

/* Each eigenvector (a column) signed so that its largest entry is positive. */
static void sign_columns(double* v, int64_t count, int n) {
  for (int64_t b = 0; b < count; b++)
    for (int j = 0; j < n; j++) {
      int top = 0;
      for (int i = 1; i < n; i++)
        if (fabs(v[b * n * n + (int64_t)i * n + j]) > fabs(v[b * n * n + (int64_t)top * n + j])) top = i;
      if (v[b * n * n + (int64_t)top * n + j] < 0)
        for (int i = 0; i < n; i++) v[b * n * n + (int64_t)i * n + j] *= -1;
    }
}

TEST(eigh_matches_the_cpu) {
  const mlx_dtype types[2] = {MLX_FLOAT32, MLX_FLOAT64};
  const int batch[1] = {3};
  for (int t = 0; t < 2; t++)
    for (int lower = 0; lower < 2; lower++) {
      mlx_array x = square(batch, 1, 6, types[t], false), xt = mlx_array_new(), sum = mlx_array_new();
      mlx_swapaxes(&xt, x, -1, -2, cpu);
      mlx_add(&sum, x, xt, cpu); /* symmetric */
      mlx_array_eval(sum);
      const char* uplo = lower ? "L" : "U";
      mlx_array gw = mlx_array_new(), gv = mlx_array_new(), cw = mlx_array_new(), cv = mlx_array_new();
      mlx_array gw2 = mlx_array_new(), cw2 = mlx_array_new();
      char what[64];
      snprintf(what, sizeof what, "eigh %s %s", types[t] == MLX_FLOAT32 ? "f32" : "f64", uplo);
      CHECK_MSG(mlx_linalg_eigh(&gw, &gv, sum, uplo, gpu) == 0, "%s: %s", what, mlxc_last_error());
      CHECK_MSG(made_on_gpu(gw) && made_on_gpu(gv), "%s: not computed on the GPU", what);
      CHECK(mlx_linalg_eigh(&cw, &cv, sum, uplo, cpu) == 0);
      compare(what, gw, cw, tol(types[t]), tol(types[t]), 0);
      CHECK(mlx_linalg_eigvalsh(&gw2, sum, uplo, gpu) == 0 && mlx_linalg_eigvalsh(&cw2, sum, uplo, cpu) == 0);
      CHECK_MSG(made_on_gpu(gw2), "eigvalsh: not computed on the GPU");
      compare("eigvalsh", gw2, cw2, tol(types[t]), tol(types[t]), 0);
      size_t n1 = 0, n2 = 0;
      double *v1 = host_values(gv, &n1), *v2 = host_values(cv, &n2);
      CHECK(v1 && v2 && n1 == n2);
      if (v1 && v2 && n1 == n2) {
        sign_columns(v1, 3, 6);
        sign_columns(v2, 3, 6);
        close_normwise("eigh vectors", v1, v2, n1, 100 * tol(types[t]));
      }
      free(v1), free(v2);
      mlx_array all[] = {x, xt, sum, gw, gv, cw, cv, gw2, cw2};
      for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) mlx_array_free(all[i]);
    }
}

/* u (..., m, m) orthogonal: uᵀ u = I to within tol (on the CPU). */
static void orthogonal(const char* what, mlx_array u, int m, double tol_) {
  mlx_array ut = mlx_array_new(), p = mlx_array_new(), eye = mlx_array_new(), e = mlx_array_new();
  mlx_swapaxes(&ut, u, -1, -2, cpu);
  mlx_matmul(&p, ut, u, cpu);
  mlx_eye(&e, m, m, 0, mlx_array_dtype(u), cpu);
  mlx_broadcast_to(&eye, e, mlx_array_shape(p), mlx_array_ndim(p), cpu);
  compare(what, p, eye, 0, tol_, 0);
  mlx_array all[] = {ut, p, eye, e};
  for (size_t i = 0; i < 4; i++) mlx_array_free(all[i]);
}

TEST(svd_matches_the_cpu) {
  const mlx_dtype types[2] = {MLX_FLOAT32, MLX_FLOAT64};
  const int shapes[3][3] = {{3, 6, 4}, {2, 4, 6}, {1, 5, 5}};
  for (int t = 0; t < 2; t++)
    for (int sh = 0; sh < 3; sh++) {
      const int m = shapes[sh][1], n = shapes[sh][2], k = m < n ? m : n;
      mlx_array a = real_rand(shapes[sh], 3, types[t], -1, 1);
      mlx_vector_array g = mlx_vector_array_new(), c = mlx_vector_array_new(), gs = mlx_vector_array_new();
      char what[64];
      snprintf(what, sizeof what, "svd %s %dx%dx%d", types[t] == MLX_FLOAT32 ? "f32" : "f64", shapes[sh][0], m, n);
      CHECK_MSG(mlx_linalg_svd(&g, a, true, gpu) == 0, "%s: %s", what, mlxc_last_error());
      CHECK(mlx_linalg_svd(&c, a, true, cpu) == 0 && mlx_linalg_svd(&gs, a, false, gpu) == 0);
      if (mlx_vector_array_size(g) != 3 || mlx_vector_array_size(c) != 3 || mlx_vector_array_size(gs) != 1) {
        CHECK_MSG(false, "%s: outputs", what);
        continue;
      }
      mlx_array u = mlx_array_new(), sv = mlx_array_new(), vt = mlx_array_new(), csv = mlx_array_new(), s_only = mlx_array_new();
      mlx_vector_array_get(&u, g, 0);
      mlx_vector_array_get(&sv, g, 1);
      mlx_vector_array_get(&vt, g, 2);
      mlx_vector_array_get(&csv, c, 1);
      mlx_vector_array_get(&s_only, gs, 0);
      CHECK_MSG(made_on_gpu(u) && made_on_gpu(sv) && made_on_gpu(vt) && made_on_gpu(s_only), "%s: not computed on the GPU",
                what);
      compare(what, sv, csv, tol(types[t]), tol(types[t]), 0);
      compare("svd without vectors", s_only, csv, tol(types[t]), tol(types[t]), 0);
      /* U and Vt: orthogonal, and their first k columns / rows rebuild a with S. */
      orthogonal("svd U orthogonal", u, m, 10 * tol(types[t]));
      orthogonal("svd Vt orthogonal", vt, n, 10 * tol(types[t]));
      mlx_array uk = mlx_array_new(), vk = mlx_array_new(), se = mlx_array_new(), us = mlx_array_new(), back = mlx_array_new();
      int start[3] = {0, 0, 0}, stop_u[3] = {shapes[sh][0], m, k}, stop_v[3] = {shapes[sh][0], k, n};
      mlx_slice(&uk, u, start, 3, stop_u, 3, NULL, 0, cpu);
      mlx_slice(&vk, vt, start, 3, stop_v, 3, NULL, 0, cpu);
      mlx_expand_dims(&se, sv, -2, cpu);
      mlx_multiply(&us, uk, se, cpu);
      mlx_matmul(&back, us, vk, cpu);
      compare("svd rebuilds the matrix", back, a, 0, 0, 10 * tol(types[t]));
      mlx_array all[] = {a, u, sv, vt, csv, s_only, uk, vk, se, us, back};
      for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) mlx_array_free(all[i]);
      mlx_vector_array_free(g);
      mlx_vector_array_free(c);
      mlx_vector_array_free(gs);
    }
}

/* eig: eigenvalues matched to the CPU's (each GPU value to the nearest CPU one: the libraries
 * may list them in another order), and each eigenvector compared after dividing out the phase
 * of its largest entry (unit vectors are unique up to that phase for distinct eigenvalues). */
static void same_eig(const char* what, mlx_array gw, mlx_array gv, mlx_array cw, mlx_array cv, int64_t count, int n,
                     double tol_) {
  CHECK(mlx_array_eval(gw) == 0 && mlx_array_eval(gv) == 0 && mlx_array_eval(cw) == 0 && mlx_array_eval(cv) == 0);
  const float* w1 = (const float*)mlx_array_data_complex64(gw);
  const float* w2 = (const float*)mlx_array_data_complex64(cw);
  const float* v1 = (const float*)mlx_array_data_complex64(gv);
  const float* v2 = (const float*)mlx_array_data_complex64(cv);
  CHECK_MSG(w1 && w2 && v1 && v2, "%s: results", what);
  if (!w1 || !w2 || !v1 || !v2) return;
  int bad = 0;
  for (int64_t b = 0; b < count; b++)
    for (int j = 0; j < n; j++) {
      const float* x = w1 + 2 * (b * n + j);
      int best = 0;
      double best_d = INFINITY;
      for (int k = 0; k < n; k++) {
        const float* y = w2 + 2 * (b * n + k);
        const double d = hypot(x[0] - y[0], x[1] - y[1]);
        if (d < best_d) best_d = d, best = k;
      }
      if (best_d > tol_ * (1 + hypot(x[0], x[1]))) bad++;
      /* The two vectors (columns j and best), each divided by the phase of its largest entry. */
      double p[2][2] = {{1, 0}, {1, 0}};
      const float* vs[2] = {v1 + 2 * b * n * n, v2 + 2 * b * n * n};
      const int cols[2] = {j, best};
      for (int t = 0; t < 2; t++) {
        double top = -1;
        for (int i = 0; i < n; i++) {
          const float* e = vs[t] + 2 * ((int64_t)i * n + cols[t]);
          const double m = hypot(e[0], e[1]);
          if (m > top) top = m, p[t][0] = e[0] / m, p[t][1] = -e[1] / m; /* conj of the phase */
        }
      }
      for (int i = 0; i < n; i++) {
        const float* e1 = vs[0] + 2 * ((int64_t)i * n + cols[0]);
        const float* e2 = vs[1] + 2 * ((int64_t)i * n + cols[1]);
        const double r1 = e1[0] * p[0][0] - e1[1] * p[0][1], i1 = e1[0] * p[0][1] + e1[1] * p[0][0];
        const double r2 = e2[0] * p[1][0] - e2[1] * p[1][1], i2 = e2[0] * p[1][1] + e2[1] * p[1][0];
        if (hypot(r1 - r2, i1 - i2) > 100 * tol_) bad++;
      }
    }
  CHECK_MSG(bad == 0, "%s: %d mismatches", what, bad);
}

TEST(eig_matches_the_cpu) {
  const mlx_dtype types[2] = {MLX_FLOAT32, MLX_FLOAT64};
  int shape[3] = {3, 6, 6};
  for (int t = 0; t < 2; t++) {
    mlx_array a = real_rand(shape, 3, types[t], -1, 1);
    mlx_array gw = mlx_array_new(), gv = mlx_array_new(), cw = mlx_array_new(), cv = mlx_array_new();
    mlx_array gw2 = mlx_array_new(), cw2 = mlx_array_new();
    const char* what = types[t] == MLX_FLOAT32 ? "eig f32" : "eig f64";
    CHECK_MSG(mlx_linalg_eig(&gw, &gv, a, gpu) == 0, "%s: %s", what, mlxc_last_error());
    CHECK_MSG(made_on_gpu(gw) && made_on_gpu(gv), "%s: not computed on the GPU", what);
    CHECK(mlx_linalg_eig(&cw, &cv, a, cpu) == 0);
    same_eig(what, gw, gv, cw, cv, 3, 6, 1e-5);
    CHECK(mlx_linalg_eigvals(&gw2, a, gpu) == 0 && mlx_linalg_eigvals(&cw2, a, cpu) == 0);
    CHECK_MSG(made_on_gpu(gw2), "eigvals: not computed on the GPU");
    same_eig("eigvals (values of eig)", gw2, gv, cw2, cv, 3, 6, 1e-5);
    mlx_array all[] = {a, gw, gv, cw, cv, gw2, cw2};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) mlx_array_free(all[i]);
  }
}

/* The error of `call` on the GPU contains `expect`. */
static void fails_with(int rc, const char* what, const char* expect) {
  CHECK_MSG(rc != 0, "%s: no error", what);
  CHECK_MSG(rc == 0 || strstr(mlxc_last_error(), expect), "%s: error \"%s\" lacks \"%s\"", what, mlxc_last_error(),
            expect);
}

TEST(failures_as_the_cpu_reports_them) {
  /* The second matrix of the batch is singular (two equal rows) and not positive definite. */
  double v[2 * 9] = {4, 1, 0, 1, 3, 0, 0, 0, 2, 1, 2, 3, 1, 2, 3, 0, 1, 1};
  int shape[3] = {2, 3, 3};
  mlx_array a = mlx_array_new_data(v, shape, 3, MLX_FLOAT64), r = mlx_array_new(), p = mlx_array_new();
  mlx_array_eval(a);
  fails_with(mlx_linalg_inv(&r, a, gpu) || mlx_array_eval(r), "inv singular", "inv: the matrix is singular (matrix 1 of the batch)");
  fails_with(mlx_linalg_cholesky(&r, a, false, gpu) || mlx_array_eval(r), "cholesky",
             "cholesky: the matrix is not positive definite (matrix 1 of the batch)");
  fails_with(mlx_linalg_solve(&r, a, a, gpu) || mlx_array_eval(r), "solve singular", "solve: the matrix is singular");
  fails_with(mlx_linalg_lu_factor(&r, &p, a, gpu) || mlx_array_eval(r), "lu singular", "the matrix is singular");
  v[4] = NAN;
  mlx_array n = mlx_array_new_data(v, shape, 3, MLX_FLOAT64);
  fails_with(mlx_linalg_inv(&r, n, gpu) || mlx_array_eval(r), "inv NaN", "NaN or infinity");
  /* The triangular forms: a zero on the read triangle's diagonal is singular (the second matrix's
   * (2, 2) entry above), a zero in the other triangle does not matter. */
  v[4] = 3;
  double z[2 * 9] = {4, 1, 0, 1, 3, 0, 0, 0, 2, 1, 2, 3, 0, 2, 3, 0, 1, 0};
  mlx_array zt = mlx_array_new_data(z, shape, 3, MLX_FLOAT64), b = mlx_array_new_data(v, shape, 3, MLX_FLOAT64);
  fails_with(mlx_linalg_tri_inv(&r, zt, true, gpu) || mlx_array_eval(r), "tri_inv singular",
             "tri_inv: the matrix is singular (matrix 1 of the batch)");
  fails_with(mlx_linalg_solve_triangular(&r, zt, b, false, gpu) || mlx_array_eval(r), "solve_triangular singular",
             "solve_triangular: the matrix is singular (matrix 1 of the batch)");
  mlx_array s = square(NULL, 0, 5, MLX_FLOAT32, true), g = mlx_array_new(), c = mlx_array_new();
  CHECK(mlx_linalg_tri_inv(&g, s, true, gpu) == 0 && mlx_linalg_tri_inv(&c, s, true, cpu) == 0);
  compare("tri_inv on a GPU stream", g, c, 0, 0, 1e-6);
  mlx_array all[] = {a, r, p, n, s, g, c, zt, b};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) mlx_array_free(all[i]);
}

int main(void) {
  int count = 0;
  mlx_device_count(&count, MLX_GPU);
  if (count == 0) {
    printf("SKIP: no CUDA GPU (test_cuda_linalg needs one)\n");
    return TEST_SUMMARY();
  }
  rng_state = (uint64_t)time(NULL) ^ 0x51ed270b27a7d3f1ull;
  printf("seed %llu\n", (unsigned long long)rng_state);
  cpu = mlx_default_cpu_stream_new();
  gpu = mlx_default_gpu_stream_new();
  RUN(cholesky_matches_the_cpu);
  RUN(inv_and_solve_match_the_cpu);
  RUN(triangular_forms_match_the_cpu);
  RUN(lu_factor_matches_the_cpu);
  RUN(qr_matches_the_cpu);
  RUN(eigh_matches_the_cpu);
  RUN(svd_matches_the_cpu);
  RUN(eig_matches_the_cpu);
  RUN(failures_as_the_cpu_reports_them);
  mlx_stream_free(cpu);
  mlx_stream_free(gpu);
  return TEST_SUMMARY();
}
