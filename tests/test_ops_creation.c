/* Creation ops: zeros/ones/full(_like), arange, linspace, eye/identity/tri/tril/triu, meshgrid,
 * diag/diagonal/trace and windows, against hand-computed values and plain-C loops. */
#include "ops_shape_test_util.h"

static const mlx_dtype dtypes[] = {MLX_FLOAT32, MLX_BFLOAT16, MLX_BOOL, MLX_INT64, MLX_UINT8, MLX_FLOAT16, MLX_INT32};
#define N_DTYPES (sizeof dtypes / sizeof dtypes[0])

TEST(test_zeros_ones_full_in_every_dtype) {
  int s[3] = {2, 0, 3}, t[2] = {2, 3};
  double zeros[6] = {0}, ones[6] = {1, 1, 1, 1, 1, 1};
  for (size_t d = 0; d < N_DTYPES; d++) {
    mlx_array r = mlx_array_new();
    CHECK_EQ_INT(mlx_zeros(&r, t, 2, dtypes[d], cpu), 0);
    CHECK_ARRAY(r, dtypes[d], t, 2, zeros);
    CHECK_EQ_INT(mlx_ones(&r, t, 2, dtypes[d], cpu), 0);
    CHECK_ARRAY(r, dtypes[d], t, 2, ones);
    CHECK_EQ_INT(mlx_zeros(&r, s, 3, dtypes[d], cpu), 0);
    CHECK_ARRAY(r, dtypes[d], s, 3, zeros);
    mlx_array_free(r);
  }
  /* full broadcasts a row and casts: 2.7 -> int32 2, -1.5 -> -1 */
  double row[3] = {2.7, -1.5, 0};
  int sr[1] = {3};
  mlx_array vals = make(row, sr, 1, MLX_FLOAT64), r = mlx_array_new();
  CHECK_EQ_INT(mlx_full(&r, t, 2, vals, MLX_INT32, cpu), 0);
  double expected[6] = {2, -1, 0, 2, -1, 0};
  CHECK_ARRAY(r, MLX_INT32, t, 2, expected);
  mlx_array scalar = mlx_array_new_float(0.5f);
  CHECK_EQ_INT(mlx_full(&r, NULL, 0, scalar, MLX_BFLOAT16, cpu), 0);
  double half[1] = {0.5};
  CHECK_ARRAY(r, MLX_BFLOAT16, t, 0, half);
  int bad[2] = {2, 4};
  CHECK_FAILS(mlx_full(&r, bad, 2, vals, MLX_INT32, cpu), "broadcast");
  int neg[1] = {-1};
  CHECK_FAILS(mlx_zeros(&r, neg, 1, MLX_FLOAT32, cpu), "invalid dimension");
  CHECK_FAILS(mlx_ones(&r, t, 2, (mlx_dtype)99, cpu), "invalid dtype");
  mlx_array_free(vals);
  mlx_array_free(scalar);
  mlx_array_free(r);
}

TEST(test_like_variants_follow_the_input) {
  double v[6] = {1, 2, 3, 4, 5, 6};
  int s[2] = {3, 2};
  mlx_array base = make(v, s, 2, MLX_INT64), a = mlx_array_new(), r = mlx_array_new();
  mlx_transpose(&a, base, cpu); /* (2, 3), strided */
  int t[2] = {2, 3};
  double zeros[6] = {0}, ones[6] = {1, 1, 1, 1, 1, 1}, sevens[6] = {7, 7, 7, 7, 7, 7};
  CHECK_EQ_INT(mlx_zeros_like(&r, a, cpu), 0);
  CHECK_ARRAY(r, MLX_INT64, t, 2, zeros);
  CHECK_EQ_INT(mlx_ones_like(&r, a, cpu), 0);
  CHECK_ARRAY(r, MLX_INT64, t, 2, ones);
  mlx_array seven = mlx_array_new_int(7);
  CHECK_EQ_INT(mlx_full_like(&r, a, seven, MLX_FLOAT16, cpu), 0);
  CHECK_ARRAY(r, MLX_FLOAT16, t, 2, sevens);
  CHECK_FAILS(mlx_zeros_like(&r, mlx_array_new(), cpu), "empty array");
  mlx_array_free(base);
  mlx_array_free(a);
  mlx_array_free(seven);
  mlx_array_free(r);
}

TEST(test_arange_lengths_values_and_errors) {
  mlx_array r = mlx_array_new();
  CHECK_EQ_INT(mlx_arange(&r, 0, 10, 3, MLX_INT32, cpu), 0);
  double e1[4] = {0, 3, 6, 9};
  int s4[1] = {4};
  CHECK_ARRAY(r, MLX_INT32, s4, 1, e1);
  CHECK_EQ_INT(mlx_arange(&r, 1, -1, -0.5, MLX_FLOAT32, cpu), 0);
  double e2[4] = {1, 0.5, 0, -0.5};
  CHECK_ARRAY(r, MLX_FLOAT32, s4, 1, e2);
  CHECK_EQ_INT(mlx_arange(&r, 5, 0, 1, MLX_INT64, cpu), 0); /* empty, not negative */
  int s0[1] = {0};
  CHECK_ARRAY(r, MLX_INT64, s0, 1, e1);
  /* 0.1 steps do not drift: element 99 is 0.1 * 99 rounded once */
  CHECK_EQ_INT(mlx_arange(&r, 0, 10, 0.1, MLX_FLOAT64, cpu), 0);
  CHECK_EQ_INT(mlx_array_dim(r, 0), 100);
  const double* p = mlx_array_data_float64(r);
  CHECK(p && p[99] == 99 * 0.1);
  CHECK_EQ_INT(mlx_arange(&r, -2, 2, 1, MLX_BFLOAT16, cpu), 0);
  double e3[4] = {-2, -1, 0, 1};
  CHECK_ARRAY(r, MLX_BFLOAT16, s4, 1, e3);
  CHECK_FAILS(mlx_arange(&r, 0, 1, 0, MLX_FLOAT32, cpu), "length");
  CHECK_FAILS(mlx_arange(&r, 0, 1, 1, MLX_BOOL, cpu), "bool");
  CHECK_FAILS(mlx_arange(&r, 0, 1e12, 1, MLX_FLOAT32, cpu), "maximum");
  mlx_array_free(r);
}

TEST(test_linspace_includes_both_ends) {
  mlx_array r = mlx_array_new();
  CHECK_EQ_INT(mlx_linspace(&r, 0, 1, 5, MLX_FLOAT32, cpu), 0);
  double e[5] = {0, 0.25, 0.5, 0.75, 1};
  int s5[1] = {5};
  CHECK_ARRAY(r, MLX_FLOAT32, s5, 1, e);
  CHECK_EQ_INT(mlx_linspace(&r, 10, -10, 3, MLX_INT32, cpu), 0);
  double e2[3] = {10, 0, -10};
  int s3[1] = {3};
  CHECK_ARRAY(r, MLX_INT32, s3, 1, e2);
  CHECK_EQ_INT(mlx_linspace(&r, 4, 9, 1, MLX_FLOAT32, cpu), 0);
  double e3[1] = {4};
  int s1[1] = {1};
  CHECK_ARRAY(r, MLX_FLOAT32, s1, 1, e3);
  CHECK_FAILS(mlx_linspace(&r, 0, 1, -1, MLX_FLOAT32, cpu), "non-negative");
  mlx_array_free(r);
}

/* Plain-loop reference of the triangular patterns. */
static double pattern_ref(int code, int i, int j, int k) {
  return code == 0 ? (j - i == k) : code == 1 ? (j - i <= k) : (j - i >= k);
}

TEST(test_eye_identity_tri_match_loops) {
  double expected[20];
  for (size_t d = 0; d < N_DTYPES; d++) {
    for (int k = -5; k <= 5; k += 2) {
      mlx_array r = mlx_array_new();
      int s[2] = {4, 5};
      CHECK_EQ_INT(mlx_eye(&r, 4, 5, k, dtypes[d], cpu), 0);
      for (int i = 0; i < 4; i++)
        for (int j = 0; j < 5; j++) expected[i * 5 + j] = pattern_ref(0, i, j, k);
      CHECK_ARRAY(r, dtypes[d], s, 2, expected);
      CHECK_EQ_INT(mlx_tri(&r, 4, 5, k, dtypes[d], cpu), 0);
      for (int i = 0; i < 4; i++)
        for (int j = 0; j < 5; j++) expected[i * 5 + j] = pattern_ref(1, i, j, k);
      CHECK_ARRAY(r, dtypes[d], s, 2, expected);
      mlx_array_free(r);
    }
  }
  mlx_array r = mlx_array_new();
  CHECK_EQ_INT(mlx_identity(&r, 3, MLX_FLOAT32, cpu), 0);
  double id[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
  int s3[2] = {3, 3};
  CHECK_ARRAY(r, MLX_FLOAT32, s3, 2, id);
  CHECK_EQ_INT(mlx_eye(&r, 0, 3, 0, MLX_FLOAT32, cpu), 0);
  int s0[2] = {0, 3};
  CHECK_ARRAY(r, MLX_FLOAT32, s0, 2, id);
  CHECK_FAILS(mlx_eye(&r, -1, 3, 0, MLX_FLOAT32, cpu), "non-negative");
  mlx_array_free(r);
}

TEST(test_tril_triu_on_batched_strided_inputs) {
  for (size_t d = 0; d < N_DTYPES; d++) {
    mlx_dtype dt = dtypes[d];
    /* store (3, 4, 2) -> moveaxis to (2, 3, 4): two strided 3x4 matrices */
    double store[24], v[24], expected[24];
    pattern(store, 24, dt);
    int ss[3] = {3, 4, 2};
    mlx_array base = make(store, ss, 3, dt), a = mlx_array_new(), r = mlx_array_new();
    mlx_moveaxis(&a, base, 2, 0, cpu);
    for (int b = 0; b < 2; b++)
      for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++) v[(b * 3 + i) * 4 + j] = store[(i * 4 + j) * 2 + b];
    int s[3] = {2, 3, 4};
    for (int k = -2; k <= 2; k++) {
      CHECK_EQ_INT(mlx_tril(&r, a, k, cpu), 0);
      for (int b = 0; b < 2; b++)
        for (int i = 0; i < 3; i++)
          for (int j = 0; j < 4; j++) expected[(b * 3 + i) * 4 + j] = pattern_ref(1, i, j, k) ? v[(b * 3 + i) * 4 + j] : 0;
      CHECK_ARRAY(r, dt, s, 3, expected);
      CHECK_EQ_INT(mlx_triu(&r, a, k, cpu), 0);
      for (int b = 0; b < 2; b++)
        for (int i = 0; i < 3; i++)
          for (int j = 0; j < 4; j++) expected[(b * 3 + i) * 4 + j] = pattern_ref(2, i, j, k) ? v[(b * 3 + i) * 4 + j] : 0;
      CHECK_ARRAY(r, dt, s, 3, expected);
    }
    mlx_array_free(base);
    mlx_array_free(a);
    mlx_array_free(r);
  }
  mlx_array vec = mlx_array_new_float(1), r = mlx_array_new();
  CHECK_FAILS(mlx_tril(&r, vec, 0, cpu), "at least 2 dimensions");
  mlx_array_free(vec);
  mlx_array_free(r);
}

TEST(test_meshgrid_xy_ij_and_sparse) {
  double xv[3] = {1, 2, 3}, yv[2] = {10, 20};
  int sx[1] = {3}, sy[1] = {2};
  mlx_array x = make(xv, sx, 1, MLX_FLOAT32), y = make(yv, sy, 1, MLX_INT32), g = mlx_array_new();
  mlx_array pair[2] = {x, y};
  mlx_vector_array in = mlx_vector_array_new_data(pair, 2), out = mlx_vector_array_new();
  CHECK_EQ_INT(mlx_meshgrid(&out, in, false, "xy", cpu), 0);
  int sxy[2] = {2, 3};
  double gx[6] = {1, 2, 3, 1, 2, 3}, gy[6] = {10, 10, 10, 20, 20, 20};
  mlx_vector_array_get(&g, out, 0);
  CHECK_ARRAY(g, MLX_FLOAT32, sxy, 2, gx);
  mlx_vector_array_get(&g, out, 1);
  CHECK_ARRAY(g, MLX_INT32, sxy, 2, gy);
  CHECK_EQ_INT(mlx_meshgrid(&out, in, false, "ij", cpu), 0);
  int sij[2] = {3, 2};
  double hx[6] = {1, 1, 2, 2, 3, 3}, hy[6] = {10, 20, 10, 20, 10, 20};
  mlx_vector_array_get(&g, out, 0);
  CHECK_ARRAY(g, MLX_FLOAT32, sij, 2, hx);
  mlx_vector_array_get(&g, out, 1);
  CHECK_ARRAY(g, MLX_INT32, sij, 2, hy);
  CHECK_EQ_INT(mlx_meshgrid(&out, in, true, "ij", cpu), 0);
  int s31[2] = {3, 1};
  mlx_vector_array_get(&g, out, 0);
  CHECK_ARRAY(g, MLX_FLOAT32, s31, 2, xv);
  CHECK_FAILS(mlx_meshgrid(&out, in, true, "yx", cpu), "indexing");
  mlx_array_free(x);
  mlx_array_free(y);
  mlx_array_free(g);
  mlx_vector_array_free(in);
  mlx_vector_array_free(out);
}

TEST(test_diagonal_diag_and_trace) {
  double v[24];
  for (int i = 0; i < 24; i++) v[i] = i;
  int s[3] = {2, 3, 4};
  mlx_array a = make(v, s, 3, MLX_INT32), r = mlx_array_new();
  /* axes (1, 2) offset 1: a[b, i, i + 1] */
  CHECK_EQ_INT(mlx_diagonal(&r, a, 1, 1, 2, cpu), 0);
  int sd[2] = {2, 3};
  double e1[6] = {1, 6, 11, 13, 18, 23};
  CHECK_ARRAY(r, MLX_INT32, sd, 2, e1);
  CHECK(shares_data(r, a));
  /* axis1 = 2 (size 4), axis2 = 0 (size 2), offset -1: out[j][t] = a[t, j, t + 1], t < 2 */
  CHECK_EQ_INT(mlx_diagonal(&r, a, -1, -1, 0, cpu), 0);
  int sd2[2] = {3, 2};
  double e2[6];
  for (int j = 0; j < 3; j++)
    for (int t = 0; t < 2; t++) e2[j * 2 + t] = v[(t * 3 + j) * 4 + t + 1];
  CHECK_ARRAY(r, MLX_INT32, sd2, 2, e2);
  CHECK_EQ_INT(mlx_diagonal(&r, a, 7, 1, 2, cpu), 0);
  int sd3[2] = {2, 0};
  CHECK_ARRAY(r, MLX_INT32, sd3, 2, e2);
  /* diag of a vector: k = -1 */
  double dv[2] = {5, 6};
  int sv[1] = {2};
  mlx_array vec = make(dv, sv, 1, MLX_BFLOAT16);
  CHECK_EQ_INT(mlx_diag(&r, vec, -1, cpu), 0);
  int sm[2] = {3, 3};
  double em[9] = {0, 0, 0, 5, 0, 0, 0, 6, 0};
  CHECK_ARRAY(r, MLX_BFLOAT16, sm, 2, em);
  CHECK_EQ_INT(mlx_diag(&r, vec, 2, cpu), 0);
  int sm4[2] = {4, 4};
  double em4[16] = {0, 0, 5, 0, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0};
  CHECK_ARRAY(r, MLX_BFLOAT16, sm4, 2, em4);
  /* trace over the last two axes, summed in float32 */
  CHECK_EQ_INT(mlx_trace(&r, a, 0, 1, 2, MLX_FLOAT32, cpu), 0);
  double et[2] = {0 + 5 + 10, 12 + 17 + 22};
  int st[1] = {2};
  CHECK_ARRAY(r, MLX_FLOAT32, st, 1, et);
  CHECK_FAILS(mlx_diagonal(&r, a, 0, 1, -2, cpu), "must differ");
  CHECK_FAILS(mlx_diagonal(&r, vec, 0, 0, 1, cpu), "at least 2");
  CHECK_FAILS(mlx_diag(&r, a, 0, cpu), "1 or 2 dimensions");
  mlx_array_free(a);
  mlx_array_free(vec);
  mlx_array_free(r);
}

TEST(test_windows_match_hand_values) {
  mlx_array r = mlx_array_new();
  double got[5];
  double hanning[5] = {0, 0.5, 1, 0.5, 0}, hamming[5] = {0.08, 0.54, 1, 0.54, 0.08};
  double bartlett[5] = {0, 0.5, 1, 0.5, 0}, blackman[5] = {0, 0.34, 1, 0.34, 0};
  int (*fns[4])(mlx_array*, int, mlx_stream) = {mlx_hanning, mlx_hamming, mlx_bartlett, mlx_blackman};
  const double* expected[4] = {hanning, hamming, bartlett, blackman};
  for (int w = 0; w < 4; w++) {
    CHECK_EQ_INT(fns[w](&r, 5, cpu), 0);
    CHECK_EQ_INT(mlx_array_dtype(r), MLX_FLOAT32);
    CHECK_EQ_INT(values_of(r, got, 5), 5);
    for (int i = 0; i < 5; i++) CHECK_NEAR(got[i], expected[w][i], 1e-6);
    CHECK_EQ_INT(fns[w](&r, 1, cpu), 0);
    CHECK_EQ_INT(values_of(r, got, 1), 1);
    CHECK_NEAR(got[0], 1, 0);
    CHECK_EQ_INT(fns[w](&r, 0, cpu), 0);
    CHECK_EQ_INT(mlx_array_size(r), 0);
  }
  mlx_array_free(r);
}

int main(void) {
  cpu = mlx_default_cpu_stream_new();
  mlxc_set_errors_quiet(1);
  RUN(test_zeros_ones_full_in_every_dtype);
  RUN(test_like_variants_follow_the_input);
  RUN(test_arange_lengths_values_and_errors);
  RUN(test_linspace_includes_both_ends);
  RUN(test_eye_identity_tri_match_loops);
  RUN(test_tril_triu_on_batched_strided_inputs);
  RUN(test_meshgrid_xy_ij_and_sparse);
  RUN(test_diagonal_diag_and_trace);
  RUN(test_windows_match_hand_values);
  mlx_stream_free(cpu);
  return TEST_SUMMARY();
}
