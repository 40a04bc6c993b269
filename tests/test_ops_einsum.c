/* mlx_einsum against plain double-precision loops written out here for each expression: matrix
 * and batched products, traces and diagonals, outer products, transposes, sums, ellipses with
 * broadcasting, three operands, integers; and the parse and shape errors. */
#include "mlx/c/mlx.h"
#include "mlxc/error.h"
#include "test_util.h"

static mlx_stream cpu;

static unsigned rng_state = 7;
static double drand(void) {
  rng_state = rng_state * 1103515245u + 12345u;
  return (double)((rng_state >> 8) & 0xffff) / 32768.0 - 1.0;
}

/* A float64 or float32 array of random values (float32-rounded for float32); host gets them. */
static mlx_array random_array(mlx_dtype dtype, const int* shape, int ndim, double* host) {
  size_t n = 1;
  for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
  double* d = malloc(sizeof(double) * (n + 1));
  float* f = malloc(sizeof(float) * (n + 1));
  for (size_t i = 0; i < n; i++) {
    f[i] = (float)drand();
    d[i] = host[i] = f[i];
  }
  mlx_array a = dtype == MLX_FLOAT32 ? mlx_array_new_data(f, shape, ndim, MLX_FLOAT32)
                                     : mlx_array_new_data(d, shape, ndim, MLX_FLOAT64);
  free(d);
  free(f);
  return a;
}

/* einsum of 1-3 operands; the result evaluated and read as doubles into out (size checked). */
static int run(const char* subscripts, mlx_array a, mlx_array b, mlx_array c, const int* shape,
               int ndim, double* out) {
  mlx_array ops[3] = {a, b, c};
  int n = b.ctx ? (c.ctx ? 3 : 2) : 1;
  mlx_vector_array v = mlx_vector_array_new_data(ops, (size_t)n);
  mlx_array r = mlx_array_new(), r64 = mlx_array_new();
  int status = mlx_einsum(&r, subscripts, v, cpu);
  mlx_vector_array_free(v);
  if (!status) {
    CHECK_EQ_INT(mlx_array_ndim(r), ndim);
    for (int i = 0; i < ndim && i < (int)mlx_array_ndim(r); i++) CHECK_EQ_INT(mlx_array_shape(r)[i], shape[i]);
    status = mlx_astype(&r64, r, MLX_FLOAT64, cpu) || mlx_array_eval(r64);
    if (!status && (int)mlx_array_ndim(r) == ndim) {
      const double* p = mlx_array_data_float64(r64);
      for (size_t i = 0; i < mlx_array_size(r64); i++) out[i] = p[i];
    }
  }
  mlx_array_free(r);
  mlx_array_free(r64);
  return status;
}

static void check_close(const double* got, const double* want, size_t n, double tol) {
  for (size_t i = 0; i < n; i++) CHECK_NEAR(got[i], want[i], tol * (1 + fabs(want[i])));
}

static const mlx_array none = {0};

TEST(test_einsum_matrix_product_explicit_and_implicit) {
  int sa[2] = {3, 4}, sb[2] = {4, 5}, so[2] = {3, 5};
  double a[12], b[20], want[15] = {0}, got[15];
  mlx_array A = random_array(MLX_FLOAT32, sa, 2, a), B = random_array(MLX_FLOAT32, sb, 2, b);
  for (int i = 0; i < 3; i++)
    for (int k = 0; k < 5; k++)
      for (int j = 0; j < 4; j++) want[i * 5 + k] += a[i * 4 + j] * b[j * 5 + k];
  CHECK_EQ_INT(run("ij,jk->ik", A, B, none, so, 2, got), 0);
  check_close(got, want, 15, 1e-6);
  CHECK_EQ_INT(run("ij,jk", A, B, none, so, 2, got), 0);
  check_close(got, want, 15, 1e-6);
  CHECK_EQ_INT(run(" i j , j k -> i k ", A, B, none, so, 2, got), 0);
  check_close(got, want, 15, 1e-6);
  /* (A B)^T by naming the output the other way round */
  int st[2] = {5, 3};
  CHECK_EQ_INT(run("ij,jk->ki", A, B, none, st, 2, got), 0);
  for (int i = 0; i < 3; i++)
    for (int k = 0; k < 5; k++) CHECK_NEAR(got[k * 3 + i], want[i * 5 + k], 1e-6);
  mlx_array_free(A);
  mlx_array_free(B);
}

TEST(test_einsum_batched_matmul_float64) {
  int sa[3] = {2, 3, 4}, sb[3] = {2, 4, 2}, so[3] = {2, 3, 2};
  double a[24], b[16], want[12] = {0}, got[12];
  mlx_array A = random_array(MLX_FLOAT64, sa, 3, a), B = random_array(MLX_FLOAT64, sb, 3, b);
  for (int n = 0; n < 2; n++)
    for (int i = 0; i < 3; i++)
      for (int k = 0; k < 2; k++)
        for (int j = 0; j < 4; j++) want[n * 6 + i * 2 + k] += a[n * 12 + i * 4 + j] * b[n * 8 + j * 2 + k];
  CHECK_EQ_INT(run("bij,bjk->bik", A, B, none, so, 3, got), 0);
  check_close(got, want, 12, 1e-12);
  /* batch label last in the output */
  int sl[3] = {3, 2, 2};
  CHECK_EQ_INT(run("bij,bjk->ikb", A, B, none, sl, 3, got), 0);
  for (int n = 0; n < 2; n++)
    for (int i = 0; i < 3; i++)
      for (int k = 0; k < 2; k++) CHECK_NEAR(got[i * 4 + k * 2 + n], want[n * 6 + i * 2 + k], 1e-12);
  mlx_array_free(A);
  mlx_array_free(B);
}

TEST(test_einsum_trace_and_diagonal) {
  int s[2] = {4, 4}, d[1] = {4};
  double a[16], got[4], trace = 0;
  mlx_array A = random_array(MLX_FLOAT64, s, 2, a);
  for (int i = 0; i < 4; i++) trace += a[i * 5];
  CHECK_EQ_INT(run("ii", A, none, none, NULL, 0, got), 0);
  CHECK_NEAR(got[0], trace, 1e-12);
  CHECK_EQ_INT(run("ii->", A, none, none, NULL, 0, got), 0);
  CHECK_NEAR(got[0], trace, 1e-12);
  CHECK_EQ_INT(run("ii->i", A, none, none, d, 1, got), 0);
  for (int i = 0; i < 4; i++) CHECK_NEAR(got[i], a[i * 5], 0);
  /* a diagonal over three axes, and a batched trace */
  int s3[3] = {3, 3, 3}, d3[1] = {3}, sb[3] = {2, 3, 3}, db[1] = {2};
  double c[27], e[18];
  mlx_array C = random_array(MLX_FLOAT64, s3, 3, c), E = random_array(MLX_FLOAT64, sb, 3, e);
  CHECK_EQ_INT(run("iii->i", C, none, none, d3, 1, got), 0);
  for (int i = 0; i < 3; i++) CHECK_NEAR(got[i], c[i * 13], 0);
  CHECK_EQ_INT(run("bii->b", E, none, none, db, 1, got), 0);
  for (int b = 0; b < 2; b++) CHECK_NEAR(got[b], e[b * 9] + e[b * 9 + 4] + e[b * 9 + 8], 1e-12);
  /* trace of a product: sum_ij a_ij b_ji */
  double prod = 0;
  mlx_array B = random_array(MLX_FLOAT64, s, 2, c);
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 4; j++) prod += a[i * 4 + j] * c[j * 4 + i];
  CHECK_EQ_INT(run("ij,ji", A, B, none, NULL, 0, got), 0);
  CHECK_NEAR(got[0], prod, 1e-12);
  mlx_array_free(A);
  mlx_array_free(B);
  mlx_array_free(C);
  mlx_array_free(E);
}

TEST(test_einsum_outer_transpose_and_sums) {
  int sx[1] = {3}, sy[1] = {4}, so[2] = {3, 4};
  double x[3], y[4], got[24];
  mlx_array X = random_array(MLX_FLOAT32, sx, 1, x), Y = random_array(MLX_FLOAT32, sy, 1, y);
  CHECK_EQ_INT(run("i,j->ij", X, Y, none, so, 2, got), 0);
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 4; j++) CHECK_NEAR(got[i * 4 + j], x[i] * y[j], 1e-7);
  CHECK_EQ_INT(run("i,j", X, Y, none, so, 2, got), 0); /* implicit: same */
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 4; j++) CHECK_NEAR(got[i * 4 + j], x[i] * y[j], 1e-7);
  int sc[2] = {2, 3}, st[2] = {3, 2};
  double c[6];
  mlx_array C = random_array(MLX_FLOAT32, sc, 2, c);
  CHECK_EQ_INT(run("ij->ji", C, none, none, st, 2, got), 0);
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 3; j++) CHECK_NEAR(got[j * 2 + i], c[i * 3 + j], 0);
  CHECK_EQ_INT(run("ji", C, none, none, st, 2, got), 0); /* implicit output "ij" = transpose */
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 3; j++) CHECK_NEAR(got[j * 2 + i], c[i * 3 + j], 0);
  CHECK_EQ_INT(run("ij", C, none, none, sc, 2, got), 0); /* identity */
  check_close(got, c, 6, 0);
  int s3[3] = {2, 3, 4}, sj[1] = {3}, sik[2] = {2, 4};
  double t[24], want[8] = {0}, wj[3] = {0}, total = 0;
  mlx_array T = random_array(MLX_FLOAT64, s3, 3, t);
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 3; j++)
      for (int k = 0; k < 4; k++) {
        double v = t[i * 12 + j * 4 + k];
        wj[j] += v;
        want[i * 4 + k] += v;
        total += v;
      }
  CHECK_EQ_INT(run("ijk->j", T, none, none, sj, 1, got), 0);
  check_close(got, wj, 3, 1e-12);
  CHECK_EQ_INT(run("ijk->ik", T, none, none, sik, 2, got), 0);
  check_close(got, want, 8, 1e-12);
  CHECK_EQ_INT(run("ijk->", T, none, none, NULL, 0, got), 0);
  CHECK_NEAR(got[0], total, 1e-12);
  /* a scalar operand */
  mlx_array S = mlx_array_new_float64(2.5);
  CHECK_EQ_INT(run(",ij->ij", S, C, none, sc, 2, got), 0);
  for (int i = 0; i < 6; i++) CHECK_NEAR(got[i], 2.5 * c[i], 1e-7);
  mlx_array_free(X);
  mlx_array_free(Y);
  mlx_array_free(C);
  mlx_array_free(T);
  mlx_array_free(S);
}

TEST(test_einsum_ellipsis_broadcasts) {
  /* (2, 1, 3, 4) and (5, 4, 2): batch dims (2, 1) and (5) broadcast to (2, 5) */
  int sa[4] = {2, 1, 3, 4}, sb[3] = {5, 4, 2}, so[4] = {2, 5, 3, 2};
  double a[24], b[40], want[60] = {0}, got[60];
  mlx_array A = random_array(MLX_FLOAT64, sa, 4, a), B = random_array(MLX_FLOAT64, sb, 3, b);
  for (int p = 0; p < 2; p++)
    for (int q = 0; q < 5; q++)
      for (int i = 0; i < 3; i++)
        for (int k = 0; k < 2; k++)
          for (int j = 0; j < 4; j++)
            want[((p * 5 + q) * 3 + i) * 2 + k] += a[p * 12 + i * 4 + j] * b[q * 8 + j * 2 + k];
  CHECK_EQ_INT(run("...ij,...jk->...ik", A, B, none, so, 4, got), 0);
  check_close(got, want, 60, 1e-12);
  CHECK_EQ_INT(run("...ij,...jk", A, B, none, so, 4, got), 0);
  check_close(got, want, 60, 1e-12);
  /* ellipsis in the middle, and summing the ellipsis dimensions away */
  int sm[3] = {3, 2, 4}, sj[1] = {4};
  double m[24], wj[4] = {0};
  mlx_array M = random_array(MLX_FLOAT64, sm, 3, m);
  for (int i = 0; i < 24; i++) wj[i % 4] += m[i];
  CHECK_EQ_INT(run("i...j->j", M, none, none, sj, 1, got), 0);
  check_close(got, wj, 4, 1e-12);
  CHECK_EQ_INT(run("...j->j", M, none, none, sj, 1, got), 0);
  check_close(got, wj, 4, 1e-12);
  int sji[3] = {4, 2, 3};
  CHECK_EQ_INT(run("i...j->j...i", M, none, none, sji, 3, got), 0);
  for (int i = 0; i < 3; i++)
    for (int e = 0; e < 2; e++)
      for (int j = 0; j < 4; j++) CHECK_NEAR(got[(j * 2 + e) * 3 + i], m[(i * 2 + e) * 4 + j], 0);
  mlx_array_free(A);
  mlx_array_free(B);
  mlx_array_free(M);
}

TEST(test_einsum_three_operands) {
  int sa[2] = {2, 3}, sb[2] = {3, 4}, sc[2] = {4, 5}, so[2] = {2, 5};
  double a[6], b[12], c[20], ab[8] = {0}, want[10] = {0}, got[10];
  mlx_array A = random_array(MLX_FLOAT64, sa, 2, a), B = random_array(MLX_FLOAT64, sb, 2, b);
  mlx_array C = random_array(MLX_FLOAT64, sc, 2, c);
  for (int i = 0; i < 2; i++)
    for (int k = 0; k < 4; k++)
      for (int j = 0; j < 3; j++) ab[i * 4 + k] += a[i * 3 + j] * b[j * 4 + k];
  for (int i = 0; i < 2; i++)
    for (int l = 0; l < 5; l++)
      for (int k = 0; k < 4; k++) want[i * 5 + l] += ab[i * 4 + k] * c[k * 5 + l];
  CHECK_EQ_INT(run("ij,jk,kl->il", A, B, C, so, 2, got), 0);
  check_close(got, want, 10, 1e-12);
  /* a label shared by all three, kept: x_i y_i z_i; and summed */
  int sv[1] = {4};
  double x[4], y[4], z[4], dot = 0;
  mlx_array X = random_array(MLX_FLOAT64, sv, 1, x), Y = random_array(MLX_FLOAT64, sv, 1, y);
  mlx_array Z = random_array(MLX_FLOAT64, sv, 1, z);
  for (int i = 0; i < 4; i++) dot += x[i] * y[i] * z[i];
  CHECK_EQ_INT(run("i,i,i->i", X, Y, Z, sv, 1, got), 0);
  for (int i = 0; i < 4; i++) CHECK_NEAR(got[i], x[i] * y[i] * z[i], 1e-12);
  CHECK_EQ_INT(run("i,i,i", X, Y, Z, NULL, 0, got), 0);
  CHECK_NEAR(got[0], dot, 1e-12);
  /* bilinear form x^T B y with B (4, 4): "i,ij,j" */
  int s44[2] = {4, 4};
  double bb[16], form = 0;
  mlx_array BB = random_array(MLX_FLOAT64, s44, 2, bb);
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 4; j++) form += x[i] * bb[i * 4 + j] * y[j];
  CHECK_EQ_INT(run("i,ij,j->", X, BB, Y, NULL, 0, got), 0);
  CHECK_NEAR(got[0], form, 1e-12);
  mlx_array arrays[] = {A, B, C, X, Y, Z, BB};
  for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) mlx_array_free(arrays[i]);
}

TEST(test_einsum_integers_and_empty) {
  int s23[2] = {2, 3}, s32[2] = {3, 2};
  int a[6] = {1, -2, 3, 4, 5, -6}, b[6] = {7, 8, -9, 10, 11, 12};
  mlx_array A = mlx_array_new_data(a, s23, 2, MLX_INT32), B = mlx_array_new_data(b, s32, 2, MLX_INT32);
  mlx_vector_array v = mlx_vector_array_new_data((mlx_array[]){A, B}, 2);
  mlx_array r = mlx_array_new();
  CHECK_EQ_INT(mlx_einsum(&r, "ij,jk->ik", v, cpu), 0);
  CHECK_EQ_INT(mlx_array_dtype(r), MLX_INT32);
  CHECK_EQ_INT(mlx_array_eval(r), 0);
  const int* p = mlx_array_data_int32(r);
  for (int i = 0; i < 2; i++)
    for (int k = 0; k < 2; k++) {
      int want = 0;
      for (int j = 0; j < 3; j++) want += a[i * 3 + j] * b[j * 2 + k];
      CHECK_EQ_INT(p[i * 2 + k], want);
    }
  /* a contraction over an empty dimension gives zeros */
  int se[2] = {2, 0}, sf[2] = {0, 3}, sz[2] = {2, 3};
  double got[6], dummy[1];
  mlx_array E = random_array(MLX_FLOAT32, se, 2, dummy), F = random_array(MLX_FLOAT32, sf, 2, dummy);
  CHECK_EQ_INT(run("ij,jk->ik", E, F, none, sz, 2, got), 0);
  for (int i = 0; i < 6; i++) CHECK_NEAR(got[i], 0, 0);
  mlx_vector_array_free(v);
  mlx_array_free(r);
  mlx_array_free(A);
  mlx_array_free(B);
  mlx_array_free(E);
  mlx_array_free(F);
}

TEST(test_einsum_strided_views_and_bfloat16) {
  /* a transposed view and a stepped slice as operands: "ij,jk->ik" with A^T (4, 3) and B[:, ::2] */
  int sa[2] = {3, 4}, sb[2] = {4, 6};
  double a[12], b[24], got[12];
  mlx_array A = random_array(MLX_FLOAT32, sa, 2, a), B = random_array(MLX_FLOAT32, sb, 2, b);
  mlx_array At = mlx_array_new(), Bs = mlx_array_new();
  CHECK_EQ_INT(mlx_transpose(&At, A, cpu), 0);
  CHECK_EQ_INT(mlx_slice(&Bs, B, (int[]){0, 0}, 2, (int[]){4, 6}, 2, (int[]){2, 2}, 2, cpu), 0);
  /* At (4, 3) @ Bs (2, 3)^T: "ij,kj->ik" */
  int sk[2] = {4, 2};
  CHECK_EQ_INT(run("ij,kj->ik", At, Bs, none, sk, 2, got), 0);
  for (int i = 0; i < 4; i++)
    for (int k = 0; k < 2; k++) {
      double want = 0;
      for (int j = 0; j < 3; j++) want += a[j * 4 + i] * b[(2 * k) * 6 + 2 * j];
      CHECK_NEAR(got[i * 2 + k], want, 1e-6);
    }
  /* bfloat16 stays bfloat16 (matmul's rule); values within bfloat16 rounding */
  mlx_array Ah = mlx_array_new(), Bh = mlx_array_new(), R = mlx_array_new();
  CHECK_EQ_INT(mlx_astype(&Ah, A, MLX_BFLOAT16, cpu) || mlx_astype(&Bh, B, MLX_BFLOAT16, cpu), 0);
  mlx_vector_array v = mlx_vector_array_new_data((mlx_array[]){Ah, Bh}, 2);
  CHECK_EQ_INT(mlx_einsum(&R, "ij,jk", v, cpu), 0);
  CHECK_EQ_INT(mlx_array_dtype(R), MLX_BFLOAT16);
  int s36[2] = {3, 6};
  double got36[18];
  CHECK_EQ_INT(run("ij,jk", Ah, Bh, none, s36, 2, got36), 0);
  for (int i = 0; i < 3; i++)
    for (int k = 0; k < 6; k++) {
      double want = 0;
      for (int j = 0; j < 4; j++) want += a[i * 4 + j] * b[j * 6 + k];
      CHECK_NEAR(got36[i * 6 + k], want, 0.05);
    }
  /* a diagonal used by a second operand: "ii,i->i" = diag(A) * x */
  int s33[2] = {3, 3}, s3[1] = {3};
  double c[9], x[3];
  mlx_array C = random_array(MLX_FLOAT64, s33, 2, c), X = random_array(MLX_FLOAT64, s3, 1, x);
  CHECK_EQ_INT(run("ii,i->i", C, X, none, s3, 1, got), 0);
  for (int i = 0; i < 3; i++) CHECK_NEAR(got[i], c[i * 4] * x[i], 1e-12);
  mlx_vector_array_free(v);
  mlx_array arrays[] = {A, B, At, Bs, Ah, Bh, R, C, X};
  for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) mlx_array_free(arrays[i]);
}

/* einsum must fail with a message containing `needle`. */
static void expect_error(const char* subscripts, mlx_array* ops, size_t n, const char* needle) {
  mlx_vector_array v = mlx_vector_array_new_data(ops, n);
  mlx_array r = mlx_array_new();
  CHECK_MSG(mlx_einsum(&r, subscripts, v, cpu) != 0, "\"%s\" succeeded", subscripts);
  CHECK_MSG(strstr(mlxc_last_error(), needle) != NULL, "\"%s\": %s", subscripts, mlxc_last_error());
  mlx_vector_array_free(v);
  mlx_array_free(r);
}

TEST(test_einsum_errors) {
  int s23[2] = {2, 3}, s45[2] = {4, 5}, s3[1] = {3};
  double h[20];
  mlx_array A = random_array(MLX_FLOAT32, s23, 2, h), B = random_array(MLX_FLOAT32, s45, 2, h);
  mlx_array V = random_array(MLX_FLOAT32, s3, 1, h);
  int quiet = mlxc_set_errors_quiet(1);
  mlx_array ab[2] = {A, B}, aa[2] = {A, A}, av[2] = {A, V}, a1[1] = {A};
  expect_error("ij,jk->ik", ab, 2, "label 'j' has sizes 3 and 4");
  expect_error("ij,jk->ik", a1, 1, "more operands than the 1 given");
  expect_error("ij->ij", aa, 2, "name 1 operands but 2 were given");
  expect_error("ijk->i", a1, 1, "has 2 dimensions but its subscripts name 3");
  expect_error("i->i", a1, 1, "has 2 dimensions but its subscripts name 1");
  expect_error("i$->i", a1, 1, "invalid character '$'");
  expect_error("i1", a1, 1, "invalid character '1'");
  expect_error("i.j", a1, 1, "ellipsis");
  expect_error("......", a1, 1, "more than one ellipsis");
  expect_error("ij->i->j", a1, 1, "more than one '->'");
  expect_error("ij->k", a1, 1, "'k' is not in any input");
  expect_error("ij->ii", a1, 1, "'i' repeated");
  expect_error("ij,i->j", av, 2, "label 'i' has sizes 2 and 3");
  int s24[2] = {2, 4}, s53[2] = {5, 3};
  mlx_array P = random_array(MLX_FLOAT32, s24, 2, h), Q = random_array(MLX_FLOAT32, s53, 2, h);
  mlx_array pq[2] = {P, Q};
  expect_error("...i,...i", pq, 2, "cannot be broadcast");
  mlx_array empty = mlx_array_new(), ae[2] = {A, empty};
  expect_error("ij,jk", ae, 2, "empty");
  expect_error("", NULL, 0, "at least one operand");
  mlx_vector_array v = mlx_vector_array_new_data(a1, 1);
  mlx_array r = mlx_array_new();
  CHECK(mlx_einsum(&r, NULL, v, cpu) != 0);
  mlx_vector_array_free(v);
  mlx_array_free(r);
  mlxc_set_errors_quiet(quiet);
  mlx_array arrays[] = {A, B, V, P, Q};
  for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) mlx_array_free(arrays[i]);
}

int main(void) {
  cpu = mlx_default_cpu_stream_new();
  RUN(test_einsum_matrix_product_explicit_and_implicit);
  RUN(test_einsum_batched_matmul_float64);
  RUN(test_einsum_trace_and_diagonal);
  RUN(test_einsum_outer_transpose_and_sums);
  RUN(test_einsum_ellipsis_broadcasts);
  RUN(test_einsum_three_operands);
  RUN(test_einsum_integers_and_empty);
  RUN(test_einsum_strided_views_and_bfloat16);
  RUN(test_einsum_errors);
  mlx_stream_free(cpu);
  return TEST_SUMMARY();
}
