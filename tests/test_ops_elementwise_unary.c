/* Unary elementwise ops: every math function on every float dtype against libm in double
 * precision, integer inputs promoted to float32, dtype-keeping ops with wrap-around, predicates
 * on NaN/inf, complex64 support and errors, strided inputs, empty arrays. */
#include "elementwise_helpers.h"

typedef int (*unary_api_fn)(mlx_array*, const mlx_array, const mlx_stream);

static double ref_sigmoid(double x) { return 1 / (1 + exp(-x)); }
static double ref_rsqrt(double x) { return 1 / sqrt(x); }
static double ref_reciprocal(double x) { return 1 / x; }
static double ref_square(double x) { return x * x; }
static double ref_negative(double x) { return -x; }
static double ref_degrees(double x) { return x * 180 / M_PI; }
static double ref_radians(double x) { return x * M_PI / 180; }
static double ref_sign(double x) { return (x > 0) - (x < 0); }
/* erfinv by bisection on libm's erf: slow, obviously right. */
static double ref_erfinv(double y) {
  double lo = -6, hi = 6;
  for (int i = 0; i < 200; i++) {
    double mid = (lo + hi) / 2;
    if (erf(mid) < y) lo = mid; else hi = mid;
  }
  return (lo + hi) / 2;
}

typedef struct {
  const char* name;
  unary_api_fn fn;
  double (*ref)(double);
  double lo, hi; /* input domain */
} unary_case;

static const unary_case math_cases[] = {
    {"abs", mlx_abs, fabs, -5, 5},
    {"negative", mlx_negative, ref_negative, -5, 5},
    {"sign", mlx_sign, ref_sign, -3, 3},
    {"square", mlx_square, ref_square, -5, 5},
    {"sqrt", mlx_sqrt, sqrt, 0, 10},
    {"rsqrt", mlx_rsqrt, ref_rsqrt, 0.1, 10},
    {"reciprocal", mlx_reciprocal, ref_reciprocal, 0.25, 8},
    {"exp", mlx_exp, exp, -10, 10},
    {"expm1", mlx_expm1, expm1, -1e-3, 1e-3},
    {"log", mlx_log, log, 0.01, 100},
    {"log1p", mlx_log1p, log1p, -0.5, 1e-3},
    {"log2", mlx_log2, log2, 0.01, 100},
    {"log10", mlx_log10, log10, 0.01, 100},
    {"sin", mlx_sin, sin, -3, 3},
    {"cos", mlx_cos, cos, -1.4, 1.4},
    {"tan", mlx_tan, tan, -1.2, 1.2},
    {"arcsin", mlx_arcsin, asin, -0.99, 0.99},
    {"arccos", mlx_arccos, acos, -0.99, 0.99},
    {"arctan", mlx_arctan, atan, -10, 10},
    {"sinh", mlx_sinh, sinh, -3, 3},
    {"cosh", mlx_cosh, cosh, -3, 3},
    {"tanh", mlx_tanh, tanh, -3, 3},
    {"arcsinh", mlx_arcsinh, asinh, -5, 5},
    {"arccosh", mlx_arccosh, acosh, 1.5, 10},
    {"arctanh", mlx_arctanh, atanh, -0.9, 0.9},
    {"sigmoid", mlx_sigmoid, ref_sigmoid, -20, 20},
    {"erf", mlx_erf, erf, -3, 3},
    {"erfinv", mlx_erfinv, ref_erfinv, -0.99, 0.99},
    {"floor", mlx_floor, floor, -5, 5},
    {"ceil", mlx_ceil, ceil, -5, 5},
    {"degrees", mlx_degrees, ref_degrees, -3, 3},
    {"radians", mlx_radians, ref_radians, -360, 360},
};
#define N_MATH (int)(sizeof math_cases / sizeof *math_cases)

/* Runs one op over n points of its domain in `dtype`; checks output dtype and values. */
static void check_unary_float(const unary_case* c, mlx_dtype dtype) {
  enum { N = 37 };
  double in[N], want[N], got[N];
  for (int i = 0; i < N; i++) {
    in[i] = stored_value(c->lo + (c->hi - c->lo) * i / (N - 1), dtype);
    want[i] = c->ref(in[i]);
  }
  mlx_array a = make_1d(in, N, dtype), r = mlx_array_new();
  CHECK_MSG(c->fn(&r, a, cpu) == 0, "%s failed: %s", c->name, mlxc_last_error());
  CHECK_MSG(mlx_array_dtype(r) == dtype, "%s dtype %d", c->name, (int)mlx_array_dtype(r));
  if (read_doubles(r, got, N) == 0) {
    for (int i = 0; i < N; i++) {
      /* Results are rounded to dtype; near zero, compare against the input's scale. */
      double tol = dtype_tol(dtype);
      CHECK_MSG(close_enough(got[i], want[i], tol, tol * (fabs(in[i]) + 1e-30) * 4),
                "%s(%.9g) dtype %d: got %.9g want %.9g", c->name, in[i], (int)dtype, got[i], want[i]);
    }
  } else {
    CHECK_MSG(0, "%s: reading result failed", c->name);
  }
  mlx_array_free(a);
  mlx_array_free(r);
}

TEST(test_math_functions_every_float_dtype_against_libm) {
  for (int k = 0; k < N_MATH; k++)
    for (int d = 0; d < 4; d++) check_unary_float(&math_cases[k], float_dtypes[d]);
}

TEST(test_math_of_integers_gives_float32) {
  double in[4] = {0, 1, 4, 9};
  mlx_array a = make_1d(in, 4, MLX_INT32), r = mlx_array_new();
  CHECK_EQ_INT(mlx_sqrt(&r, a, cpu), 0);
  CHECK_EQ_INT(mlx_array_dtype(r), MLX_FLOAT32);
  double got[4];
  CHECK_EQ_INT(read_doubles(r, got, 4), 0);
  for (int i = 0; i < 4; i++) CHECK_NEAR(got[i], sqrt(in[i]), 0);
  CHECK_EQ_INT(mlx_exp(&r, a, cpu), 0);
  CHECK_EQ_INT(mlx_array_dtype(r), MLX_FLOAT32);
  /* bool too */
  mlx_array b = mlx_array_new_bool(true);
  CHECK_EQ_INT(mlx_log1p(&r, b, cpu), 0);
  CHECK_EQ_INT(mlx_array_dtype(r), MLX_FLOAT32);
  float v = 0;
  mlx_array_item_float32(&v, r);
  CHECK_NEAR(v, log1p(1.0), 1e-7);
  mlx_array_free(a);
  mlx_array_free(b);
  mlx_array_free(r);
}

TEST(test_dtype_keeping_ops_on_integers_wrap) {
  /* abs/negative/square/sign keep the dtype; INT_MIN stays INT_MIN (two's complement wrap). */
  double in[5] = {-2147483648.0, -3, 0, 5, 2147483647.0};
  mlx_array a = make_1d(in, 5, MLX_INT32), r = mlx_array_new();
  int64_t got[5];
  CHECK_EQ_INT(mlx_abs(&r, a, cpu), 0);
  CHECK_EQ_INT(mlx_array_dtype(r), MLX_INT32);
  read_int64(r, got, 5);
  int64_t abs_want[5] = {INT32_MIN, 3, 0, 5, INT32_MAX};
  for (int i = 0; i < 5; i++) CHECK_EQ_INT(got[i], abs_want[i]);
  CHECK_EQ_INT(mlx_negative(&r, a, cpu), 0);
  read_int64(r, got, 5);
  int64_t neg_want[5] = {INT32_MIN, 3, 0, -5, -INT32_MAX};
  for (int i = 0; i < 5; i++) CHECK_EQ_INT(got[i], neg_want[i]);
  CHECK_EQ_INT(mlx_sign(&r, a, cpu), 0);
  read_int64(r, got, 5);
  int64_t sign_want[5] = {-1, -1, 0, 1, 1};
  for (int i = 0; i < 5; i++) CHECK_EQ_INT(got[i], sign_want[i]);
  CHECK_EQ_INT(mlx_square(&r, a, cpu), 0);
  read_int64(r, got, 5);
  /* 2147483647^2 mod 2^32 = 1; (-2^31)^2 mod 2^32 = 0 */
  int64_t sq_want[5] = {0, 9, 0, 25, 1};
  for (int i = 0; i < 5; i++) CHECK_EQ_INT(got[i], sq_want[i]);
  mlx_array_free(a);
  /* uint8: negative wraps, abs is the identity, square wraps mod 256 */
  double u[3] = {0, 1, 200};
  a = make_1d(u, 3, MLX_UINT8);
  CHECK_EQ_INT(mlx_negative(&r, a, cpu), 0);
  CHECK_EQ_INT(mlx_array_dtype(r), MLX_UINT8);
  read_int64(r, got, 3);
  CHECK(got[0] == 0 && got[1] == 255 && got[2] == 56);
  CHECK_EQ_INT(mlx_square(&r, a, cpu), 0);
  read_int64(r, got, 3);
  CHECK(got[2] == (200 * 200) % 256);
  mlx_array_free(a);
  mlx_array_free(r);
}

TEST(test_floor_ceil_round_keep_integers_and_round_half_to_even) {
  double ints[3] = {-7, 0, 1234};
  mlx_array a = make_1d(ints, 3, MLX_INT16), r = mlx_array_new();
  int64_t got[3];
  unary_api_fn fns[2] = {mlx_floor, mlx_ceil};
  for (int k = 0; k < 2; k++) {
    CHECK_EQ_INT(fns[k](&r, a, cpu), 0);
    CHECK_EQ_INT(mlx_array_dtype(r), MLX_INT16);
    read_int64(r, got, 3);
    CHECK(got[0] == -7 && got[1] == 0 && got[2] == 1234);
  }
  CHECK_EQ_INT(mlx_round(&r, a, 0, cpu), 0);
  CHECK_EQ_INT(mlx_array_dtype(r), MLX_INT16);
  CHECK_EQ_INT(mlx_round(&r, a, -2, cpu), 0); /* to hundreds, still int16 */
  CHECK_EQ_INT(mlx_array_dtype(r), MLX_INT16);
  read_int64(r, got, 3);
  CHECK(got[0] == 0 && got[1] == 0 && got[2] == 1200);
  mlx_array_free(a);
  double f[6] = {0.5, 1.5, 2.5, -2.5, -0.4, 3.7};
  double want[6] = {0, 2, 2, -2, -0.0, 4};
  for (int d = 0; d < 4; d++) {
    a = make_1d(f, 6, float_dtypes[d]);
    CHECK_EQ_INT(mlx_round(&r, a, 0, cpu), 0);
    CHECK_EQ_INT(mlx_array_dtype(r), float_dtypes[d]);
    double g[6];
    read_doubles(r, g, 6);
    for (int i = 0; i < 6; i++) CHECK_NEAR(g[i], want[i], 0);
    mlx_array_free(a);
  }
  double dec[2] = {1.2345, -2.71828};
  a = make_1d(dec, 2, MLX_FLOAT64);
  CHECK_EQ_INT(mlx_round(&r, a, 2, cpu), 0);
  double g[2];
  read_doubles(r, g, 2);
  CHECK_NEAR(g[0], 1.23, 1e-12);
  CHECK_NEAR(g[1], -2.72, 1e-12);
  mlx_array_free(a);
  mlx_array_free(r);
}

/* float32 sigmoid (a polynomial exp, not libm's) over its whole range against the double
 * formula: within 4 ulp where the result is a normal float, within 2 subnormal steps below,
 * NaN kept; bfloat16 rows (a block at a time) within a bfloat16 rounding. */
TEST(test_sigmoid_float32_whole_range_and_bfloat16_blocks) {
  enum { N = 4001 };
  static double in[N], got[N], half[N];
  for (int i = 0; i < N - 5; i++) in[i] = (float)(-110.0 + 220.0 * i / (N - 6));
  in[N - 5] = INFINITY, in[N - 4] = -INFINITY, in[N - 3] = NAN, in[N - 2] = 0, in[N - 1] = -1e-30;
  mlx_array a = make_1d(in, N, MLX_FLOAT32), r = mlx_array_new();
  CHECK_EQ_INT(mlx_sigmoid(&r, a, cpu), 0);
  CHECK_EQ_INT(read_doubles(r, got, N), 0);
  for (int i = 0; i < N; i++) {
    double want = isnan(in[i]) ? NAN : 1 / (1 + exp(-in[i]));
    double tol = want >= 0x1p-126 ? 4 * 0x1p-24 * want : 2 * 0x1p-149;
    CHECK_MSG(isnan(want) ? isnan(got[i]) : fabs(got[i] - want) <= tol, "sigmoid(%.9g) = %.9g, want %.9g",
              in[i], got[i], want);
  }
  mlx_array b = mlx_array_new();
  CHECK_EQ_INT(mlx_astype(&b, a, MLX_BFLOAT16, cpu), 0);
  CHECK_EQ_INT(mlx_sigmoid(&r, b, cpu), 0);
  CHECK_EQ_INT(read_doubles(r, half, N), 0);
  double rounded[N];
  CHECK_EQ_INT(read_doubles(b, rounded, N), 0);
  for (int i = 0; i < N; i++) {
    double want = isnan(rounded[i]) ? NAN : 1 / (1 + exp(-rounded[i]));
    CHECK_MSG(isnan(want) ? isnan(half[i]) : fabs(half[i] - want) <= 0x1p-8 * want + 0x1p-133,
              "bfloat16 sigmoid(%.9g) = %.9g, want %.9g", rounded[i], half[i], want);
  }
  mlx_array_free(a);
  mlx_array_free(b);
  mlx_array_free(r);
}

TEST(test_predicates_on_nan_and_infinities) {
  double in[6] = {NAN, INFINITY, -INFINITY, 0, -1.5, 3};
  unary_api_fn fns[5] = {mlx_isnan, mlx_isinf, mlx_isfinite, mlx_isposinf, mlx_isneginf};
  int want[5][6] = {{1, 0, 0, 0, 0, 0}, {0, 1, 1, 0, 0, 0}, {0, 0, 0, 1, 1, 1},
                    {0, 1, 0, 0, 0, 0}, {0, 0, 1, 0, 0, 0}};
  mlx_array r = mlx_array_new();
  for (int d = 0; d < 4; d++) {
    mlx_array a = make_1d(in, 6, float_dtypes[d]);
    for (int k = 0; k < 5; k++) {
      CHECK_EQ_INT(fns[k](&r, a, cpu), 0);
      CHECK_EQ_INT(mlx_array_dtype(r), MLX_BOOL);
      const bool* p = mlx_array_data_bool(r);
      for (int i = 0; p && i < 6; i++) CHECK_MSG(p[i] == want[k][i], "pred %d dtype %d i %d", k, d, i);
    }
    mlx_array_free(a);
  }
  /* integers are finite and never NaN */
  double ints[2] = {-1, 7};
  mlx_array a = make_1d(ints, 2, MLX_INT64);
  CHECK_EQ_INT(mlx_isnan(&r, a, cpu), 0);
  CHECK(!mlx_array_data_bool(r)[0] && !mlx_array_data_bool(r)[1]);
  CHECK_EQ_INT(mlx_isfinite(&r, a, cpu), 0);
  CHECK(mlx_array_data_bool(r)[0] && mlx_array_data_bool(r)[1]);
  mlx_array_free(a);
  /* NaN edge values of the math functions */
  double edge[3] = {-1, 0, NAN};
  a = make_1d(edge, 3, MLX_FLOAT32);
  double g[3];
  CHECK_EQ_INT(mlx_sqrt(&r, a, cpu), 0);
  read_doubles(r, g, 3);
  CHECK(isnan(g[0]) && g[1] == 0 && isnan(g[2]));
  CHECK_EQ_INT(mlx_log(&r, a, cpu), 0);
  read_doubles(r, g, 3);
  CHECK(isnan(g[0]) && g[1] == -INFINITY && isnan(g[2]));
  CHECK_EQ_INT(mlx_sign(&r, a, cpu), 0);
  read_doubles(r, g, 3);
  CHECK(g[0] == -1 && g[1] == 0 && isnan(g[2]));
  mlx_array_free(a);
  mlx_array_free(r);
}

TEST(test_logical_not_and_bitwise_invert) {
  double in[4] = {0, 1, -2, 255};
  mlx_array a = make_1d(in, 4, MLX_INT32), r = mlx_array_new();
  CHECK_EQ_INT(mlx_logical_not(&r, a, cpu), 0);
  CHECK_EQ_INT(mlx_array_dtype(r), MLX_BOOL);
  const bool* p = mlx_array_data_bool(r);
  CHECK(p && p[0] && !p[1] && !p[2] && !p[3]);
  CHECK_EQ_INT(mlx_bitwise_invert(&r, a, cpu), 0);
  int64_t got[4];
  read_int64(r, got, 4);
  CHECK(got[0] == -1 && got[1] == -2 && got[2] == 1 && got[3] == -256);
  mlx_array_free(a);
  a = make_1d(in, 4, MLX_UINT8);
  CHECK_EQ_INT(mlx_bitwise_invert(&r, a, cpu), 0);
  read_int64(r, got, 4);
  CHECK(got[0] == 255 && got[1] == 254 && got[3] == 0);
  mlx_array_free(a);
  a = make_1d(in, 4, MLX_BOOL); /* bool: logical not */
  CHECK_EQ_INT(mlx_bitwise_invert(&r, a, cpu), 0);
  CHECK_EQ_INT(mlx_array_dtype(r), MLX_BOOL);
  p = mlx_array_data_bool(r);
  CHECK(p && p[0] && !p[1]);
  mlx_array_free(a);
  a = make_1d(in, 4, MLX_FLOAT32);
  CHECK(mlx_bitwise_invert(&r, a, cpu) != 0);
  CHECK(error_mentions("bitwise_invert"));
  double nan_in[2] = {NAN, 0};
  mlx_array b = make_1d(nan_in, 2, MLX_FLOAT16);
  CHECK_EQ_INT(mlx_logical_not(&r, b, cpu), 0);
  p = mlx_array_data_bool(r);
  CHECK(p && !p[0] && p[1]); /* NaN is truthy */
  mlx_array_free(a);
  mlx_array_free(b);
  mlx_array_free(r);
}

TEST(test_nan_to_num_defaults_and_explicit_values) {
  double in[4] = {NAN, INFINITY, -INFINITY, 2.5};
  mlx_array r = mlx_array_new();
  mlx_optional_float none = {0, false};
  double limits[4] = {3.4028234663852886e38, 1.7976931348623157e308, 65504, 3.3895313892515355e38};
  for (int d = 0; d < 4; d++) {
    mlx_array a = make_1d(in, 4, float_dtypes[d]);
    CHECK_EQ_INT(mlx_nan_to_num(&r, a, 0.0f, none, none, cpu), 0);
    CHECK_EQ_INT(mlx_array_dtype(r), float_dtypes[d]);
    double g[4];
    read_doubles(r, g, 4);
    CHECK(g[0] == 0 && g[1] == limits[d] && g[2] == -limits[d] && g[3] == 2.5);
    mlx_optional_float pos = {7, true}, neg = {-9, true};
    CHECK_EQ_INT(mlx_nan_to_num(&r, a, -1.0f, pos, neg, cpu), 0);
    read_doubles(r, g, 4);
    CHECK(g[0] == -1 && g[1] == 7 && g[2] == -9 && g[3] == 2.5);
    mlx_array_free(a);
  }
  double ints[2] = {1, 2};
  mlx_array a = make_1d(ints, 2, MLX_INT32);
  CHECK_EQ_INT(mlx_nan_to_num(&r, a, 0.0f, none, none, cpu), 0);
  CHECK_EQ_INT(mlx_array_dtype(r), MLX_INT32);
  mlx_array_free(a);
  mlx_array_free(r);
}

TEST(test_complex64_parts_and_functions) {
  float _Complex z[3] = {3 + 4 * I, -1 - 2 * I, 0};
  int n = 3;
  mlx_array a = mlx_array_new_data(z, &n, 1, MLX_COMPLEX64), r = mlx_array_new();
  double g[3];
  CHECK_EQ_INT(mlx_abs(&r, a, cpu), 0);
  CHECK_EQ_INT(mlx_array_dtype(r), MLX_FLOAT32);
  read_doubles(r, g, 3);
  CHECK_NEAR(g[0], 5, 1e-6);
  CHECK_NEAR(g[1], sqrt(5.0), 1e-6);
  CHECK_EQ_INT(mlx_real(&r, a, cpu), 0);
  CHECK_EQ_INT(mlx_array_dtype(r), MLX_FLOAT32);
  read_doubles(r, g, 3);
  CHECK(g[0] == 3 && g[1] == -1);
  CHECK_EQ_INT(mlx_imag(&r, a, cpu), 0);
  read_doubles(r, g, 3);
  CHECK(g[0] == 4 && g[1] == -2);
  CHECK_EQ_INT(mlx_conjugate(&r, a, cpu), 0);
  CHECK_EQ_INT(mlx_array_dtype(r), MLX_COMPLEX64);
  mlx_array_eval(r);
  const float _Complex* c = (const float _Complex*)mlx_array_data_complex64(r);
  CHECK(c && cimagf(c[0]) == -4 && crealf(c[0]) == 3);
  CHECK_EQ_INT(mlx_exp(&r, a, cpu), 0);
  c = (const float _Complex*)mlx_array_data_complex64(r);
  double _Complex want = cexp(3.0 + 4.0 * I);
  CHECK(c && fabs(crealf(c[0]) - creal(want)) < 1e-4 * cabs(want));
  CHECK(c && fabs(cimagf(c[0]) - cimag(want)) < 1e-4 * cabs(want));
  CHECK_EQ_INT(mlx_negative(&r, a, cpu), 0);
  c = (const float _Complex*)mlx_array_data_complex64(r);
  CHECK(c && crealf(c[1]) == 1 && cimagf(c[1]) == 2);
  /* Unsupported functions say so. */
  unary_api_fn unsupported[5] = {mlx_erf, mlx_floor, mlx_sigmoid, mlx_bitwise_invert, mlx_expm1};
  for (int k = 0; k < 5; k++) {
    CHECK(unsupported[k](&r, a, cpu) != 0);
    CHECK(error_mentions("not supported for dtype complex64"));
  }
  /* real/conjugate of real arrays are the identity; imag of real is zeros */
  double re[2] = {1.5, -2};
  mlx_array b = make_1d(re, 2, MLX_FLOAT32);
  CHECK_EQ_INT(mlx_imag(&r, b, cpu), 0);
  CHECK_EQ_INT(mlx_array_dtype(r), MLX_FLOAT32);
  read_doubles(r, g, 2);
  CHECK(g[0] == 0 && g[1] == 0);
  CHECK_EQ_INT(mlx_conjugate(&r, b, cpu), 0);
  read_doubles(r, g, 2);
  CHECK(g[0] == 1.5 && g[1] == -2);
  CHECK_EQ_INT(mlx_stop_gradient(&r, b, cpu), 0);
  read_doubles(r, g, 2);
  CHECK(g[0] == 1.5 && g[1] == -2);
  mlx_array_free(a);
  mlx_array_free(b);
  mlx_array_free(r);
}

/* exp over a transposed view and a stepped slice (non-contiguous inputs), large enough to be
 * split over the thread pool. */
TEST(test_unary_on_strided_views) {
  enum { R = 300, C = 257 };
  double* in = malloc(sizeof(double) * R * C);
  for (int i = 0; i < R * C; i++) in[i] = sin(i * 0.001) * 3;
  int shape[2] = {R, C};
  mlx_array a = make_array(in, shape, 2, MLX_FLOAT32), t = mlx_array_new(), r = mlx_array_new();
  CHECK_EQ_INT(mlx_transpose(&t, a, cpu), 0);
  CHECK_EQ_INT(mlx_exp(&r, t, cpu), 0);
  double* got = malloc(sizeof(double) * R * C);
  CHECK_EQ_INT(read_doubles(r, got, R * C), 0);
  int bad = 0;
  for (int j = 0; j < C; j++)
    for (int i = 0; i < R; i++)
      bad += !close_enough(got[j * R + i], exp((float)in[i * C + j]), 4e-6, 0);
  CHECK_EQ_INT(bad, 0);
  /* rows 1, 4, 7, ... and columns 250, 248, ..., 2 (negative step) */
  int start[2] = {1, 250}, stop[2] = {R, 0}, step[2] = {3, -2};
  CHECK_EQ_INT(mlx_slice(&t, a, start, 2, stop, 2, step, 2, cpu), 0);
  CHECK_EQ_INT(mlx_negative(&r, t, cpu), 0);
  int rows = mlx_array_dim(r, 0), cols = mlx_array_dim(r, 1);
  CHECK_EQ_INT(rows, 100);
  CHECK_EQ_INT(cols, 125);
  CHECK_EQ_INT(read_doubles(r, got, (size_t)rows * cols), 0);
  bad = 0;
  for (int i = 0; i < rows; i++)
    for (int j = 0; j < cols; j++) bad += got[i * cols + j] != -(double)(float)in[(1 + 3 * i) * C + 250 - 2 * j];
  CHECK_EQ_INT(bad, 0);
  free(in);
  free(got);
  mlx_array_free(a);
  mlx_array_free(t);
  mlx_array_free(r);
}

TEST(test_unary_empty_arrays_and_errors) {
  int shape[2] = {0, 3};
  mlx_array a = mlx_array_new_data(NULL, shape, 2, MLX_FLOAT32), r = mlx_array_new();
  CHECK_EQ_INT(mlx_exp(&r, a, cpu), 0);
  CHECK_EQ_INT(mlx_array_eval(r), 0);
  CHECK_EQ_INT(mlx_array_size(r), 0);
  CHECK_EQ_INT(mlx_array_dim(r, 1), 3);
  CHECK_EQ_INT(mlx_isnan(&r, a, cpu), 0);
  CHECK_EQ_INT(mlx_array_eval(r), 0);
  CHECK_EQ_INT(mlx_array_dtype(r), MLX_BOOL);
  mlx_array empty = mlx_array_new();
  CHECK(mlx_exp(&r, empty, cpu) != 0);
  CHECK(error_mentions("exp: input is an empty array"));
  CHECK(mlx_round(&r, empty, 2, cpu) != 0);
  mlx_optional_float none = {0, false};
  CHECK(mlx_nan_to_num(&r, empty, 0, none, none, cpu) != 0);
  mlx_array b = mlx_array_new_bool(true);
  CHECK(mlx_negative(&r, b, cpu) != 0);
  CHECK(error_mentions("negative"));
  mlx_array_free(a);
  mlx_array_free(b);
  mlx_array_free(r);
}

int main(void) {
  mlxc_set_errors_quiet(1);
  cpu = mlx_default_cpu_stream_new();
  RUN(test_math_functions_every_float_dtype_against_libm);
  RUN(test_math_of_integers_gives_float32);
  RUN(test_sigmoid_float32_whole_range_and_bfloat16_blocks);
  RUN(test_dtype_keeping_ops_on_integers_wrap);
  RUN(test_floor_ceil_round_keep_integers_and_round_half_to_even);
  RUN(test_predicates_on_nan_and_infinities);
  RUN(test_logical_not_and_bitwise_invert);
  RUN(test_nan_to_num_defaults_and_explicit_values);
  RUN(test_complex64_parts_and_functions);
  RUN(test_unary_on_strided_views);
  RUN(test_unary_empty_arrays_and_errors);
  mlx_stream_free(cpu);
  return TEST_SUMMARY();
}
