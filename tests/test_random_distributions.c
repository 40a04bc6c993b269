/* Random distributions: the first values follow MLX's composition of the Threefry bits
 * (recomputed here from the bits with the formulas of mlx/random.cpp), and the distributions
 * have the right moments over many samples. */
#include "mlx/c/mlx.h"
#include "mlxc/error.h"
#include "test_util.h"

static mlx_stream cpu;
static mlx_array none;

static mlx_array key_of(uint64_t seed) {
  mlx_array k = mlx_array_new();
  mlx_random_key(&k, seed);
  return k;
}

TEST(test_uniform_is_bits_scaled_as_mlx) {
  mlx_array k = key_of(0), bits = mlx_array_new(), u = mlx_array_new();
  mlx_array lo = mlx_array_new_float(-2.0f), hi = mlx_array_new_float(3.0f);
  int shape[1] = {64};
  CHECK_EQ_INT(mlx_random_bits(&bits, shape, 1, 4, k, cpu), 0);
  CHECK_EQ_INT(mlx_random_uniform(&u, lo, hi, shape, 1, MLX_FLOAT32, k, cpu), 0);
  const uint32_t* b = mlx_array_data_uint32(bits);
  const float* x = mlx_array_data_float32(u);
  for (int i = 0; i < 64; i++) {
    float v = (float)b[i] / 4294967295.0f;
    v = fminf(v, nextafterf(1.0f, 0.0f));
    CHECK_NEAR(x[i], 5.0f * v + -2.0f, 0);
    CHECK(x[i] >= -2.0f && x[i] < 3.0f);
  }
  mlx_array_free(k);
  mlx_array_free(bits);
  mlx_array_free(u);
  mlx_array_free(lo);
  mlx_array_free(hi);
}

static void moments(mlx_array a, double* mean, double* var) {
  mlx_array f = mlx_array_new();
  mlx_astype(&f, a, MLX_FLOAT64, cpu);
  const double* p = mlx_array_data_float64(f);
  size_t n = mlx_array_size(f);
  double m = 0, v = 0;
  for (size_t i = 0; i < n; i++) m += p[i];
  m /= (double)n;
  for (size_t i = 0; i < n; i++) v += (p[i] - m) * (p[i] - m);
  *mean = m;
  *var = v / (double)n;
  mlx_array_free(f);
}

TEST(test_normal_matches_erfinv_composition_and_moments) {
  mlx_array k = key_of(3), u = mlx_array_new(), n = mlx_array_new();
  mlx_array lo = mlx_array_new_float(nextafterf(-1.0f, 0.0f)), hi = mlx_array_new_float(1.0f);
  int shape[1] = {100000};
  CHECK_EQ_INT(mlx_random_normal(&n, shape, 1, MLX_FLOAT32, 0.0f, 1.0f, k, cpu), 0);
  CHECK_EQ_INT(mlx_random_uniform(&u, lo, hi, shape, 1, MLX_FLOAT32, k, cpu), 0);
  const float *x = mlx_array_data_float32(n), *v = mlx_array_data_float32(u);
  /* normal = sqrt(2) * erfinv(u): check through erf, which libm has. */
  for (int i = 0; i < 16; i++) CHECK_NEAR(erf(x[i] / sqrt(2.0)), v[i], 2e-6);
  double mean, var;
  moments(n, &mean, &var);
  CHECK_NEAR(mean, 0.0, 0.02);
  CHECK_NEAR(var, 1.0, 0.02);
  CHECK_EQ_INT(mlx_random_normal(&n, shape, 1, MLX_BFLOAT16, 2.0f, 3.0f, k, cpu), 0);
  CHECK_EQ_INT(mlx_array_dtype(n), MLX_BFLOAT16);
  moments(n, &mean, &var);
  CHECK_NEAR(mean, 2.0, 0.06);
  CHECK_NEAR(var, 9.0, 0.25);
  mlx_array_free(k);
  mlx_array_free(u);
  mlx_array_free(n);
  mlx_array_free(lo);
  mlx_array_free(hi);
}

TEST(test_bernoulli_rate_and_extremes) {
  mlx_array k = key_of(5), b = mlx_array_new(), p = mlx_array_new_float(0.25f);
  int shape[1] = {100000};
  CHECK_EQ_INT(mlx_random_bernoulli(&b, p, shape, 1, k, cpu), 0);
  CHECK_EQ_INT(mlx_array_dtype(b), MLX_BOOL);
  double mean, var;
  moments(b, &mean, &var);
  CHECK_NEAR(mean, 0.25, 0.01);
  float ps[2] = {2.0f, -2.0f};
  int two[1] = {2};
  mlx_array pa = mlx_array_new_data(ps, two, 1, MLX_FLOAT32);
  CHECK_EQ_INT(mlx_random_bernoulli(&b, pa, two, 1, k, cpu), 0);
  const bool* x = mlx_array_data_bool(b);
  CHECK(x[0] == true && x[1] == false);
  mlxc_set_errors_quiet(1);
  mlx_array i = mlx_array_new_int(0);
  CHECK(mlx_random_bernoulli(&b, i, two, 1, k, cpu) != 0); /* integer p */
  int three[1] = {3};
  CHECK(mlx_random_bernoulli(&b, pa, three, 1, k, cpu) != 0); /* shape does not broadcast */
  mlxc_set_errors_quiet(0);
  mlx_array_free(i);
  mlx_array_free(pa);
  mlx_array_free(k);
  mlx_array_free(b);
  mlx_array_free(p);
}

TEST(test_truncated_gumbel_laplace_moments) {
  mlx_array k = key_of(9), x = mlx_array_new();
  mlx_array lo = mlx_array_new_float(-1.0f), hi = mlx_array_new_float(2.0f);
  int shape[1] = {100000};
  CHECK_EQ_INT(mlx_random_truncated_normal(&x, lo, hi, shape, 1, MLX_FLOAT32, k, cpu), 0);
  const float* p = mlx_array_data_float32(x);
  int inside = 1;
  for (int i = 0; i < 100000; i++) inside &= p[i] >= -1.0f && p[i] <= 2.0f;
  CHECK(inside);
  double mean, var;
  /* Mean of N(0,1) truncated to [-1, 2]: (phi(-1) - phi(2)) / (Phi(2) - Phi(-1)) = 0.2297 */
  moments(x, &mean, &var);
  CHECK_NEAR(mean, 0.2297, 0.01);
  CHECK_EQ_INT(mlx_random_gumbel(&x, shape, 1, MLX_FLOAT32, k, cpu), 0);
  moments(x, &mean, &var);
  CHECK_NEAR(mean, 0.5772, 0.02);          /* Euler-Mascheroni */
  CHECK_NEAR(var, M_PI * M_PI / 6, 0.05);
  CHECK_EQ_INT(mlx_random_laplace(&x, shape, 1, MLX_FLOAT32, 1.0f, 2.0f, k, cpu), 0);
  moments(x, &mean, &var);
  CHECK_NEAR(mean, 1.0, 0.04);
  CHECK_NEAR(var, 8.0, 0.25);               /* 2 b^2 */
  mlx_array_free(k);
  mlx_array_free(x);
  mlx_array_free(lo);
  mlx_array_free(hi);
}

TEST(test_randint_bounds_and_coverage) {
  mlx_array k = key_of(7), x = mlx_array_new(), lo = mlx_array_new_int(-10), hi = mlx_array_new_int(10);
  int shape[1] = {20000};
  CHECK_EQ_INT(mlx_random_randint(&x, lo, hi, shape, 1, MLX_INT32, k, cpu), 0);
  CHECK_EQ_INT(mlx_array_dtype(x), MLX_INT32);
  const int32_t* p = mlx_array_data_int32(x);
  int seen[20] = {0}, inside = 1;
  for (int i = 0; i < 20000; i++) {
    inside &= p[i] >= -10 && p[i] < 10;
    if (p[i] >= -10 && p[i] < 10) seen[p[i] + 10] = 1;
  }
  CHECK(inside);
  for (int i = 0; i < 20; i++) CHECK(seen[i]);
  /* Same key: same values; empty interval: all low. */
  mlx_array y = mlx_array_new();
  CHECK_EQ_INT(mlx_random_randint(&y, lo, hi, shape, 1, MLX_INT32, k, cpu), 0);
  const int32_t* q = mlx_array_data_int32(y);
  CHECK(q && p[0] == q[0] && p[19999] == q[19999]);
  CHECK_EQ_INT(mlx_random_randint(&y, hi, lo, shape, 1, MLX_INT32, k, cpu), 0);
  q = mlx_array_data_int32(y);
  CHECK(q && q[0] == 10 && q[100] == 10);
  /* 64-bit: a narrow interval far beyond float32 precision is covered exactly. */
  int64_t base = (int64_t)1 << 40, top = base + 1024;
  mlx_array lo64 = mlx_array_new_data(&base, NULL, 0, MLX_INT64), hi64 = mlx_array_new_data(&top, NULL, 0, MLX_INT64);
  int n64[1] = {10000};
  CHECK_EQ_INT(mlx_random_randint(&y, lo64, hi64, n64, 1, MLX_INT64, k, cpu), 0);
  const int64_t* r = mlx_array_data_int64(y);
  static char hit[1024];
  int ok = 1, distinct = 0;
  for (int i = 0; i < 10000; i++) {
    ok &= r[i] >= base && r[i] < top;
    if (r[i] >= base && r[i] < top && !hit[r[i] - base]) {
      hit[r[i] - base] = 1;
      distinct++;
    }
  }
  CHECK(ok);
  CHECK(distinct > 1000);
  mlx_array_free(lo64);
  mlx_array_free(hi64);
  mlx_array_free(k);
  mlx_array_free(x);
  mlx_array_free(y);
  mlx_array_free(lo);
  mlx_array_free(hi);
}

TEST(test_categorical_follows_the_softmax) {
  float logits[3] = {0.0f, logf(2.0f), logf(5.0f)}; /* probabilities 1/8, 2/8, 5/8 */
  int ls[1] = {3};
  mlx_array l = mlx_array_new_data(logits, ls, 1, MLX_FLOAT32), k = key_of(11), x = mlx_array_new();
  CHECK_EQ_INT(mlx_random_categorical_num_samples(&x, l, 0, 40000, k, cpu), 0);
  CHECK_EQ_INT(mlx_array_size(x), 40000);
  mlx_array xi = mlx_array_new();
  mlx_astype(&xi, x, MLX_INT32, cpu);
  const int32_t* p = mlx_array_data_int32(xi);
  int counts[3] = {0};
  for (int i = 0; i < 40000; i++)
    if (p[i] >= 0 && p[i] < 3) counts[p[i]]++;
  CHECK_NEAR(counts[0] / 40000.0, 0.125, 0.01);
  CHECK_NEAR(counts[1] / 40000.0, 0.25, 0.01);
  CHECK_NEAR(counts[2] / 40000.0, 0.625, 0.01);
  /* Batched rows, one sample each, and an explicit shape. */
  float rows[2][3] = {{-1e9f, 0, -1e9f}, {0, -1e9f, -1e9f}};
  int rs[2] = {2, 3}, shape[2] = {4, 2};
  mlx_array r = mlx_array_new_data(rows, rs, 2, MLX_FLOAT32);
  CHECK_EQ_INT(mlx_random_categorical_shape(&x, r, 1, shape, 2, k, cpu), 0);
  mlx_astype(&xi, x, MLX_INT32, cpu);
  p = mlx_array_data_int32(xi);
  for (int i = 0; i < 8; i++) CHECK_EQ_INT(p[i], i % 2 == 0 ? 1 : 0);
  mlx_array_free(r);
  mlx_array_free(l);
  mlx_array_free(k);
  mlx_array_free(x);
  mlx_array_free(xi);
}

TEST(test_permutation_is_a_permutation) {
  mlx_array k = key_of(2), p = mlx_array_new(), x = mlx_array_new(), y = mlx_array_new();
  CHECK_EQ_INT(mlx_random_permutation_arange(&p, 100, k, cpu), 0);
  mlx_array pi = mlx_array_new();
  mlx_astype(&pi, p, MLX_INT32, cpu);
  const int32_t* v = mlx_array_data_int32(pi);
  int seen[100] = {0}, fixed = 0;
  for (int i = 0; i < 100; i++) {
    if (v[i] >= 0 && v[i] < 100) seen[v[i]]++;
    fixed += v[i] == i;
  }
  for (int i = 0; i < 100; i++) CHECK_EQ_INT(seen[i], 1);
  CHECK(fixed < 10);
  float data[6] = {0, 1, 2, 3, 4, 5};
  int shape[2] = {3, 2};
  x = mlx_array_new_data(data, shape, 2, MLX_FLOAT32);
  CHECK_EQ_INT(mlx_random_permutation(&y, x, 0, k, cpu), 0); /* rows move whole */
  const float* r = mlx_array_data_float32(y);
  for (int i = 0; i < 3; i++) CHECK_NEAR(r[2 * i + 1], r[2 * i] + 1, 0);
  mlx_array_free(k);
  mlx_array_free(p);
  mlx_array_free(pi);
  mlx_array_free(x);
  mlx_array_free(y);
}

TEST(test_multivariate_normal_moments) {
  float mean[2] = {4.0f, 7.0f}, cov[4] = {2.0f, 0.5f, 0.5f, 1.0f};
  int ms[1] = {2}, cs[2] = {2, 2}, shape[1] = {50000};
  mlx_array m = mlx_array_new_data(mean, ms, 1, MLX_FLOAT32), c = mlx_array_new_data(cov, cs, 2, MLX_FLOAT32);
  mlx_array k = key_of(4), x = mlx_array_new();
  CHECK_EQ_INT(mlx_random_multivariate_normal(&x, m, c, shape, 1, MLX_FLOAT32, k, cpu), 0);
  CHECK_EQ_INT(mlx_array_ndim(x), 2);
  CHECK_EQ_INT(mlx_array_dim(x, 1), 2);
  const float* p = mlx_array_data_float32(x);
  double m0 = 0, m1 = 0, c00 = 0, c01 = 0, c11 = 0;
  for (int i = 0; i < 50000; i++) {
    m0 += p[2 * i];
    m1 += p[2 * i + 1];
  }
  m0 /= 50000;
  m1 /= 50000;
  for (int i = 0; i < 50000; i++) {
    double a = p[2 * i] - m0, b = p[2 * i + 1] - m1;
    c00 += a * a;
    c01 += a * b;
    c11 += b * b;
  }
  CHECK_NEAR(m0, 4.0, 0.03);
  CHECK_NEAR(m1, 7.0, 0.03);
  CHECK_NEAR(c00 / 50000, 2.0, 0.06);
  CHECK_NEAR(c01 / 50000, 0.5, 0.04);
  CHECK_NEAR(c11 / 50000, 1.0, 0.04);
  mlxc_set_errors_quiet(1);
  CHECK(mlx_random_multivariate_normal(&x, m, c, shape, 1, MLX_FLOAT16, k, cpu) != 0);
  mlxc_set_errors_quiet(0);
  mlx_array_free(m);
  mlx_array_free(c);
  mlx_array_free(k);
  mlx_array_free(x);
}

TEST(test_distribution_errors) {
  mlxc_set_errors_quiet(1);
  mlx_array x = mlx_array_new(), lo = mlx_array_new_float(0.0f), hi = mlx_array_new_float(1.0f);
  int shape[1] = {4};
  CHECK(mlx_random_uniform(&x, lo, hi, shape, 1, MLX_INT32, none, cpu) != 0);
  CHECK(mlx_random_normal(&x, shape, 1, MLX_UINT8, 0, 1, none, cpu) != 0);
  float v[3] = {0, 1, 2};
  int three[1] = {3};
  mlx_array wide = mlx_array_new_data(v, three, 1, MLX_FLOAT32);
  CHECK(mlx_random_uniform(&x, wide, hi, shape, 1, MLX_FLOAT32, none, cpu) != 0);
  mlx_array_free(wide);
  mlx_array_free(x);
  mlx_array_free(lo);
  mlx_array_free(hi);
  mlxc_set_errors_quiet(0);
}

int main(void) {
  cpu = mlx_default_cpu_stream_new();
  none = mlx_array_new();
  RUN(test_uniform_is_bits_scaled_as_mlx);
  RUN(test_normal_matches_erfinv_composition_and_moments);
  RUN(test_bernoulli_rate_and_extremes);
  RUN(test_truncated_gumbel_laplace_moments);
  RUN(test_randint_bounds_and_coverage);
  RUN(test_categorical_follows_the_softmax);
  RUN(test_permutation_is_a_permutation);
  RUN(test_multivariate_normal_moments);
  RUN(test_distribution_errors);
  return TEST_SUMMARY();
}
