/* Binary elementwise ops and the composed ones (divmod, where, clip, isclose, allclose,
 * array_equal): every dtype against references computed here in int64/double, Python division
 * semantics, wrap-around, NaN/inf rules, broadcasting (row, column, scalar), strided inputs,
 * empty arrays, error paths, and ops run from several threads at once. */
#include <pthread.h>

#include "elementwise_helpers.h"

typedef int (*binary_api_fn)(mlx_array*, const mlx_array, const mlx_array, const mlx_stream);

/* Runs fn over a (1-D) and b (1-D) of `dtype` and reads the result as doubles. */
static int run_binary(binary_api_fn fn, const double* a, const double* b, int n, mlx_dtype dtype,
                      double* out, mlx_dtype* out_dtype) {
  mlx_array x = make_1d(a, n, dtype), y = make_1d(b, n, dtype), r = mlx_array_new();
  int status = fn(&r, x, y, cpu);
  if (!status) {
    *out_dtype = mlx_array_dtype(r);
    status = read_doubles(r, out, (size_t)n);
  }
  mlx_array_free(x);
  mlx_array_free(y);
  mlx_array_free(r);
  return status;
}

static double py_floordiv(double x, double y) { return floor(x / y); }
static double py_mod(double x, double y) {
  double r = fmod(x, y);
  return (r != 0 && ((r < 0) != (y < 0))) ? r + y : r;
}
static double ref_max(double x, double y) { return (isnan(x) || isnan(y)) ? NAN : fmax(x, y); }
static double ref_min(double x, double y) { return (isnan(x) || isnan(y)) ? NAN : fmin(x, y); }
static double ref_logaddexp(double x, double y) { return log(exp(x) + exp(y)); }
static double ref_add(double x, double y) { return x + y; }
static double ref_sub(double x, double y) { return x - y; }
static double ref_mul(double x, double y) { return x * y; }
static double ref_div(double x, double y) { return x / y; }

typedef struct {
  const char* name;
  binary_api_fn fn;
  double (*ref)(double, double);
} binary_case;

TEST(test_float_binary_ops_every_float_dtype) {
  const binary_case cases[] = {
      {"add", mlx_add, ref_add}, {"subtract", mlx_subtract, ref_sub},
      {"multiply", mlx_multiply, ref_mul}, {"divide", mlx_divide, ref_div},
      {"floor_divide", mlx_floor_divide, py_floordiv}, {"remainder", mlx_remainder, py_mod},
      {"power", mlx_power, pow}, {"maximum", mlx_maximum, ref_max},
      {"minimum", mlx_minimum, ref_min}, {"arctan2", mlx_arctan2, atan2},
      {"logaddexp", mlx_logaddexp, ref_logaddexp},
  };
  enum { N = 12 };
  double a[N] = {-7.5, 7.5, -7.5, 7.5, 0.5, 3, 2, -1.25, 10, 1e-3, 5, -3};
  double b[N] = {2, -2, -2, 2, 0.25, 3, 0.5, 4, -3, 7, 5, 1.5};
  for (size_t k = 0; k < sizeof cases / sizeof *cases; k++)
    for (int d = 0; d < 4; d++) {
      mlx_dtype t = float_dtypes[d], got_t = MLX_BOOL;
      double sa[N], sb[N], got[N];
      for (int i = 0; i < N; i++) {
        sa[i] = stored_value(a[i], t);
        sb[i] = stored_value(b[i], t);
      }
      CHECK_EQ_INT(run_binary(cases[k].fn, sa, sb, N, t, got, &got_t), 0);
      CHECK_EQ_INT(got_t, t);
      for (int i = 0; i < N; i++) {
        if (cases[k].fn == mlx_power && sa[i] < 0) continue; /* fractional powers of negatives: NaN both */
        double want = cases[k].ref(sa[i], sb[i]);
        CHECK_MSG(close_enough(got[i], want, dtype_tol(t) * 2, dtype_tol(t) * 4),
                  "%s(%g, %g) dtype %d: got %.9g want %.9g", cases[k].name, sa[i], sb[i], (int)t,
                  got[i], want);
      }
    }
}

/* Python semantics of // and % on every integer dtype, division by zero giving 0. */
TEST(test_integer_floor_divide_and_remainder_follow_python) {
  enum { N = 8 };
  double a[N] = {-7, 7, -7, 7, 0, 9, 100, 5};
  double b[N] = {2, -2, -2, 2, 3, 0, 7, 1};
  for (int d = 0; d < 8; d++) {
    mlx_dtype t = int_dtypes[d];
    bool is_unsigned = d < 4;
    mlx_array x = make_1d(a, N, t), y = make_1d(b, N, t), q = mlx_array_new(), r = mlx_array_new();
    CHECK_EQ_INT(mlx_floor_divide(&q, x, y, cpu), 0);
    CHECK_EQ_INT(mlx_remainder(&r, x, y, cpu), 0);
    CHECK_EQ_INT(mlx_array_dtype(q), t);
    int64_t gq[N], gr[N];
    read_int64(q, gq, N);
    read_int64(r, gr, N);
    for (int i = 0; i < N; i++) {
      if (is_unsigned && (a[i] < 0 || b[i] < 0)) continue;
      int64_t wq = b[i] == 0 ? 0 : (int64_t)floor(a[i] / b[i]);
      int64_t wr = b[i] == 0 ? 0 : (int64_t)py_mod(a[i], b[i]);
      CHECK_MSG(gq[i] == wq && gr[i] == wr, "dtype %d: %g // %g = %lld (want %lld), %% = %lld (want %lld)",
                (int)t, a[i], b[i], (long long)gq[i], (long long)wq, (long long)gr[i], (long long)wr);
    }
    mlx_array_free(x);
    mlx_array_free(y);
    mlx_array_free(q);
    mlx_array_free(r);
  }
  /* INT_MIN // -1 wraps instead of trapping */
  double m[1] = {-2147483648.0}, neg1[1] = {-1};
  mlx_array x = make_1d(m, 1, MLX_INT32), y = make_1d(neg1, 1, MLX_INT32), q = mlx_array_new();
  CHECK_EQ_INT(mlx_floor_divide(&q, x, y, cpu), 0);
  int64_t g;
  read_int64(q, &g, 1);
  CHECK_EQ_INT(g, INT32_MIN);
  CHECK_EQ_INT(mlx_remainder(&q, x, y, cpu), 0);
  read_int64(q, &g, 1);
  CHECK_EQ_INT(g, 0);
  mlx_array_free(x);
  mlx_array_free(y);
  mlx_array_free(q);
}

TEST(test_integer_arithmetic_wraps_and_power_is_exact) {
  double a[6] = {2147483647.0, 3, 2, -1, 2, 7};
  double b[6] = {1, 4, 31, -3, -1, 0};
  mlx_array x = make_1d(a, 6, MLX_INT32), y = make_1d(b, 6, MLX_INT32), r = mlx_array_new();
  int64_t g[6];
  CHECK_EQ_INT(mlx_add(&r, x, y, cpu), 0);
  read_int64(r, g, 6);
  CHECK_EQ_INT(g[0], INT32_MIN); /* INT32_MAX + 1 wraps */
  CHECK_EQ_INT(mlx_power(&r, x, y, cpu), 0);
  CHECK_EQ_INT(mlx_array_dtype(r), MLX_INT32);
  read_int64(r, g, 6);
  CHECK_EQ_INT(g[1], 81);
  CHECK_EQ_INT(g[2], INT32_MIN); /* 2^31 wraps */
  CHECK_EQ_INT(g[3], -1);        /* (-1)^-3 */
  CHECK_EQ_INT(g[4], 0);         /* 2^-1 truncates to 0 */
  CHECK_EQ_INT(g[5], 1);
  mlx_array_free(x);
  mlx_array_free(y);
  /* int64 power stays exact beyond 2^53 */
  double a64[1] = {3}, b64[1] = {39};
  x = make_1d(a64, 1, MLX_INT64);
  y = make_1d(b64, 1, MLX_INT64);
  CHECK_EQ_INT(mlx_power(&r, x, y, cpu), 0);
  int64_t p = 0;
  mlx_array_item_int64(&p, r);
  CHECK_EQ_INT(p, 4052555153018976267LL);
  mlx_array_free(x);
  mlx_array_free(y);
  mlx_array_free(r);
}

TEST(test_maximum_minimum_propagate_nan_and_logaddexp_handles_inf) {
  double a[4] = {NAN, 1, INFINITY, -INFINITY};
  double b[4] = {1, NAN, 5, -INFINITY};
  double got[4];
  mlx_dtype t;
  CHECK_EQ_INT(run_binary(mlx_maximum, a, b, 4, MLX_FLOAT32, got, &t), 0);
  CHECK(isnan(got[0]) && isnan(got[1]) && got[2] == INFINITY && got[3] == -INFINITY);
  CHECK_EQ_INT(run_binary(mlx_minimum, a, b, 4, MLX_FLOAT32, got, &t), 0);
  CHECK(isnan(got[0]) && isnan(got[1]) && got[2] == 5 && got[3] == -INFINITY);
  CHECK_EQ_INT(run_binary(mlx_logaddexp, a, b, 4, MLX_FLOAT32, got, &t), 0);
  CHECK(isnan(got[0]) && isnan(got[1]) && got[2] == INFINITY && got[3] == -INFINITY);
  /* large inputs do not overflow */
  double big[1] = {1000}, big2[1] = {1000};
  CHECK_EQ_INT(run_binary(mlx_logaddexp, big, big2, 1, MLX_FLOAT64, got, &t), 0);
  CHECK_NEAR(got[0], 1000 + log(2.0), 1e-12);
  /* integers promote to float32 for arctan2 and logaddexp */
  CHECK_EQ_INT(run_binary(mlx_arctan2, big, big2, 1, MLX_INT32, got, &t), 0);
  CHECK_EQ_INT(t, MLX_FLOAT32);
}

TEST(test_comparisons_every_dtype_give_bool) {
  const binary_api_fn fns[6] = {mlx_equal, mlx_not_equal, mlx_less, mlx_less_equal, mlx_greater,
                                mlx_greater_equal};
  enum { N = 5 };
  double a[N] = {1, 2, 3, 0, 100}, b[N] = {1, 3, 2, 0, 99};
  mlx_dtype all[13];
  for (int i = 0; i < 8; i++) all[i] = int_dtypes[i];
  for (int i = 0; i < 4; i++) all[8 + i] = float_dtypes[i];
  all[12] = MLX_BOOL;
  for (int d = 0; d < 13; d++)
    for (int k = 0; k < 6; k++) {
      double got[N];
      mlx_dtype t;
      CHECK_EQ_INT(run_binary(fns[k], a, b, N, all[d], got, &t), 0);
      CHECK_EQ_INT(t, MLX_BOOL);
      for (int i = 0; i < N; i++) {
        double x = stored_value(a[i], all[d]), y = stored_value(b[i], all[d]);
        int want[6] = {x == y, x != y, x < y, x <= y, x > y, x >= y};
        CHECK_MSG(got[i] == want[k], "cmp %d dtype %d i %d", k, (int)all[d], i);
      }
    }
  /* NaN compares unequal to everything, itself included */
  double n1[1] = {NAN};
  double got[1];
  mlx_dtype t;
  CHECK_EQ_INT(run_binary(mlx_equal, n1, n1, 1, MLX_FLOAT32, got, &t), 0);
  CHECK(got[0] == 0);
  CHECK_EQ_INT(run_binary(mlx_not_equal, n1, n1, 1, MLX_FLOAT32, got, &t), 0);
  CHECK(got[0] == 1);
  /* mixed dtypes compare in the promoted dtype: int32 3 < float32 3.5 */
  mlx_array i3 = mlx_array_new_int(3), f = mlx_array_new_float(3.5f), r = mlx_array_new();
  CHECK_EQ_INT(mlx_less(&r, i3, f, cpu), 0);
  bool v = false;
  mlx_array_item_bool(&v, r);
  CHECK(v);
  /* complex64: equality only */
  mlx_array c = mlx_array_new_complex(1, 2);
  CHECK_EQ_INT(mlx_equal(&r, c, c, cpu), 0);
  mlx_array_item_bool(&v, r);
  CHECK(v);
  CHECK(mlx_less(&r, c, c, cpu) != 0);
  CHECK(error_mentions("less: not supported for dtype complex64"));
  mlx_array_free(i3);
  mlx_array_free(f);
  mlx_array_free(c);
  mlx_array_free(r);
}

TEST(test_logical_and_bitwise_ops) {
  double a[4] = {0, 1, 6, -8}, b[4] = {0, 0, 3, 1};
  double got[5];
  mlx_dtype t;
  CHECK_EQ_INT(run_binary(mlx_logical_and, a, b, 4, MLX_FLOAT32, got, &t), 0);
  CHECK_EQ_INT(t, MLX_BOOL);
  CHECK(got[0] == 0 && got[1] == 0 && got[2] == 1 && got[3] == 1);
  CHECK_EQ_INT(run_binary(mlx_logical_or, a, b, 4, MLX_INT32, got, &t), 0);
  CHECK(got[0] == 0 && got[1] == 1 && got[2] == 1 && got[3] == 1);
  CHECK_EQ_INT(run_binary(mlx_bitwise_and, a, b, 4, MLX_INT32, got, &t), 0);
  CHECK_EQ_INT(t, MLX_INT32);
  CHECK(got[2] == (6 & 3) && got[3] == (-8 & 1));
  CHECK_EQ_INT(run_binary(mlx_bitwise_or, a, b, 4, MLX_INT16, got, &t), 0);
  CHECK(got[2] == (6 | 3) && got[3] == (-8 | 1));
  CHECK_EQ_INT(run_binary(mlx_bitwise_xor, a, b, 4, MLX_INT64, got, &t), 0);
  CHECK(got[2] == (6 ^ 3) && got[3] == (-8 ^ 1));
  CHECK_EQ_INT(run_binary(mlx_bitwise_xor, a, b, 4, MLX_BOOL, got, &t), 0);
  CHECK_EQ_INT(t, MLX_BOOL);
  CHECK(got[0] == 0 && got[1] == 1 && got[2] == 0 && got[3] == 0);
  /* shifts: sign fill on the right, wrap on the left, out-of-range amounts */
  double s[5] = {1, -8, 255, 1, -1}, by[5] = {3, 1, 1, 40, 33};
  CHECK_EQ_INT(run_binary(mlx_left_shift, s, by, 5, MLX_INT32, got, &t), 0);
  CHECK(got[0] == 8 && got[1] == -16 && got[2] == 510 && got[3] == 0 && got[4] == 0);
  CHECK_EQ_INT(run_binary(mlx_right_shift, s, by, 5, MLX_INT32, got, &t), 0);
  CHECK(got[0] == 0 && got[1] == -4 && got[2] == 127 && got[3] == 0 && got[4] == -1);
  CHECK_EQ_INT(run_binary(mlx_left_shift, s, by, 3, MLX_UINT8, got, &t), 0);
  CHECK(got[0] == 8 && got[2] == 254);
  CHECK_EQ_INT(run_binary(mlx_left_shift, s, by, 1, MLX_BOOL, got, &t), 0);
  CHECK_EQ_INT(t, MLX_UINT8); /* bool shifts as uint8 */
  CHECK(got[0] == 2);
  /* floats are an error */
  const binary_api_fn bitwise[5] = {mlx_bitwise_and, mlx_bitwise_or, mlx_bitwise_xor, mlx_left_shift,
                                    mlx_right_shift};
  for (int k = 0; k < 5; k++) {
    CHECK(run_binary(bitwise[k], a, b, 4, MLX_FLOAT32, got, &t) != 0);
    CHECK(error_mentions("not supported for dtype float32"));
  }
}

/* (R, C) op (C) row, (R, 1) column and scalar broadcasts, with reference loops. */
TEST(test_broadcast_row_column_scalar) {
  enum { R = 40, C = 33 };
  double m[R * C], row[C], col[R], sc = 2.5;
  for (int i = 0; i < R * C; i++) m[i] = (i % 17) - 8.25;
  for (int j = 0; j < C; j++) row[j] = j * 0.5 - 3;
  for (int i = 0; i < R; i++) col[i] = 1 + i % 5;
  int sm[2] = {R, C}, sr[1] = {C}, scs[2] = {R, 1};
  mlx_array M = make_array(m, sm, 2, MLX_FLOAT64), Rw = make_array(row, sr, 1, MLX_FLOAT64),
            Cl = make_array(col, scs, 2, MLX_FLOAT64), S = mlx_array_new_double(sc),
            r = mlx_array_new();
  double got[R * C];
  CHECK_EQ_INT(mlx_maximum(&r, M, Rw, cpu), 0);
  read_doubles(r, got, R * C);
  int bad = 0;
  for (int i = 0; i < R; i++)
    for (int j = 0; j < C; j++) bad += got[i * C + j] != fmax(m[i * C + j], row[j]);
  CHECK_EQ_INT(bad, 0);
  CHECK_EQ_INT(mlx_remainder(&r, M, Cl, cpu), 0);
  read_doubles(r, got, R * C);
  bad = 0;
  for (int i = 0; i < R; i++)
    for (int j = 0; j < C; j++) bad += got[i * C + j] != py_mod(m[i * C + j], col[i]);
  CHECK_EQ_INT(bad, 0);
  CHECK_EQ_INT(mlx_subtract(&r, S, M, cpu), 0); /* scalar on the left */
  read_doubles(r, got, R * C);
  bad = 0;
  for (int i = 0; i < R * C; i++) bad += got[i] != sc - m[i];
  CHECK_EQ_INT(bad, 0);
  /* column (R,1) against row (C): outer product shape */
  CHECK_EQ_INT(mlx_greater(&r, Cl, Rw, cpu), 0);
  CHECK_EQ_INT(mlx_array_dim(r, 0), R);
  CHECK_EQ_INT(mlx_array_dim(r, 1), C);
  read_doubles(r, got, R * C);
  bad = 0;
  for (int i = 0; i < R; i++)
    for (int j = 0; j < C; j++) bad += got[i * C + j] != (col[i] > row[j]);
  CHECK_EQ_INT(bad, 0);
  mlx_array_free(M);
  mlx_array_free(Rw);
  mlx_array_free(Cl);
  mlx_array_free(S);
  mlx_array_free(r);
}

/* Big enough to run on several threads: a transposed operand against a stepped slice. */
TEST(test_binary_strided_inputs_large) {
  enum { R = 512, C = 600 };
  double* m = malloc(sizeof(double) * R * C);
  for (int i = 0; i < R * C; i++) m[i] = (double)(((int64_t)i * 7919) % 1000) / 10 - 50;
  int sm[2] = {R, C}, st[2] = {C, R};
  mlx_array A = make_array(m, sm, 2, MLX_FLOAT32), B = make_array(m, st, 2, MLX_FLOAT32);
  mlx_array T = mlx_array_new(), S = mlx_array_new(), r = mlx_array_new();
  CHECK_EQ_INT(mlx_transpose(&T, B, cpu), 0); /* (R, C), strides (1, R) */
  int start[2] = {0, 0}, stop[2] = {R, C}, step[2] = {2, 3};
  CHECK_EQ_INT(mlx_slice(&S, A, start, 2, stop, 2, step, 2, cpu), 0); /* (256, 200) */
  int sr = mlx_array_dim(S, 0), sc = mlx_array_dim(S, 1);
  CHECK(sr == 256 && sc == 200);
  CHECK_EQ_INT(mlx_multiply(&r, A, T, cpu), 0);
  double* got = malloc(sizeof(double) * R * C);
  CHECK_EQ_INT(read_doubles(r, got, R * C), 0);
  int bad = 0;
  for (int i = 0; i < R; i++)
    for (int j = 0; j < C; j++) {
      float x = (float)m[i * C + j], y = (float)m[j * R + i];
      bad += got[i * C + j] != (double)(x * y);
    }
  CHECK_EQ_INT(bad, 0);
  int ts[2] = {0, 0}, te[2] = {sr, sc}, one[2] = {1, 1};
  mlx_array T2 = mlx_array_new();
  CHECK_EQ_INT(mlx_slice(&T2, T, ts, 2, te, 2, one, 2, cpu), 0);
  CHECK_EQ_INT(mlx_add(&r, S, T2, cpu), 0);
  CHECK_EQ_INT(read_doubles(r, got, (size_t)sr * sc), 0);
  bad = 0;
  for (int i = 0; i < sr; i++)
    for (int j = 0; j < sc; j++) {
      float x = (float)m[(2 * i) * C + 3 * j], y = (float)m[j * R + i];
      bad += got[i * sc + j] != (double)(x + y);
    }
  CHECK_EQ_INT(bad, 0);
  free(m);
  free(got);
  mlx_array_free(A);
  mlx_array_free(B);
  mlx_array_free(T);
  mlx_array_free(T2);
  mlx_array_free(S);
  mlx_array_free(r);
}

TEST(test_divmod_returns_quotient_and_remainder) {
  double a[4] = {-7, 7, 9, -9}, b[4] = {2, -2, 4, -4};
  mlx_array x = make_1d(a, 4, MLX_INT32), y = make_1d(b, 4, MLX_INT32);
  mlx_vector_array v = mlx_vector_array_new();
  CHECK_EQ_INT(mlx_divmod(&v, x, y, cpu), 0);
  CHECK_EQ_INT(mlx_vector_array_size(v), 2);
  mlx_array q = mlx_array_new(), r = mlx_array_new();
  mlx_vector_array_get(&q, v, 0);
  mlx_vector_array_get(&r, v, 1);
  int64_t gq[4], gr[4];
  CHECK_EQ_INT(read_int64(q, gq, 4), 0);
  CHECK_EQ_INT(read_int64(r, gr, 4), 0);
  int64_t wq[4] = {-4, -4, 2, 2}, wr[4] = {1, -1, 1, -1};
  for (int i = 0; i < 4; i++) CHECK(gq[i] == wq[i] && gr[i] == wr[i]);
  mlx_array c = mlx_array_new_complex(1, 1);
  CHECK(mlx_divmod(&v, c, c, cpu) != 0);
  CHECK(error_mentions("complex64"));
  mlx_array_free(c);
  mlx_array_free(x);
  mlx_array_free(y);
  mlx_array_free(q);
  mlx_array_free(r);
  mlx_vector_array_free(v);
}

TEST(test_where_broadcasts_and_promotes) {
  double cond[3] = {1, 0, 1}, xs[2] = {10, 20};
  int sc[2] = {3, 1}, sx[1] = {2};
  mlx_array c = make_array(cond, sc, 2, MLX_UINT8), x = make_array(xs, sx, 1, MLX_INT32);
  mlx_array y = mlx_array_new_float(-0.5f), r = mlx_array_new();
  CHECK_EQ_INT(mlx_where(&r, c, x, y, cpu), 0);
  CHECK_EQ_INT(mlx_array_dtype(r), MLX_FLOAT32);
  CHECK(mlx_array_dim(r, 0) == 3 && mlx_array_dim(r, 1) == 2);
  double got[6];
  read_doubles(r, got, 6);
  double want[6] = {10, 20, -0.5, -0.5, 10, 20};
  for (int i = 0; i < 6; i++) CHECK_NEAR(got[i], want[i], 0);
  /* every element size: where on int8, float16, int64, complex64 */
  mlx_dtype types[4] = {MLX_INT8, MLX_FLOAT16, MLX_INT64, MLX_COMPLEX64};
  for (int k = 0; k < 4; k++) {
    double av[3] = {1, 2, 3}, bv[3] = {-1, -2, -3};
    mlx_array a = make_1d(av, 3, types[k]), b = make_1d(bv, 3, types[k]), cc = make_1d(cond, 3, MLX_BOOL);
    CHECK_EQ_INT(mlx_where(&r, cc, a, b, cpu), 0);
    CHECK_EQ_INT(mlx_array_dtype(r), types[k]);
    if (types[k] != MLX_COMPLEX64) {
      read_doubles(r, got, 3);
      CHECK(got[0] == 1 && got[1] == -2 && got[2] == 3);
    } else {
      mlx_array re = mlx_array_new();
      mlx_real(&re, r, cpu);
      read_doubles(re, got, 3);
      CHECK(got[0] == 1 && got[1] == -2 && got[2] == 3);
      mlx_array_free(re);
    }
    mlx_array_free(a);
    mlx_array_free(b);
    mlx_array_free(cc);
  }
  double big[4] = {0};
  mlx_array bad = make_1d(big, 4, MLX_FLOAT32);
  CHECK(mlx_where(&r, c, bad, x, cpu) != 0); /* x (4) and y (2) do not broadcast */
  CHECK(error_mentions("where: shapes (4) and (2) cannot be broadcast together"));
  mlx_array_free(bad);
  mlx_array_free(c);
  mlx_array_free(x);
  mlx_array_free(y);
  mlx_array_free(r);
}

TEST(test_clip_with_optional_bounds) {
  double a[5] = {-3, -1, 0, 2, 9};
  mlx_array x = make_1d(a, 5, MLX_FLOAT32), lo = mlx_array_new_float(-1.5f),
            hi = mlx_array_new_float(2.0f), none = mlx_array_new(), r = mlx_array_new();
  double got[5];
  CHECK_EQ_INT(mlx_clip(&r, x, lo, hi, cpu), 0);
  read_doubles(r, got, 5);
  CHECK(got[0] == -1.5 && got[1] == -1 && got[2] == 0 && got[3] == 2 && got[4] == 2);
  CHECK_EQ_INT(mlx_clip(&r, x, none, hi, cpu), 0);
  read_doubles(r, got, 5);
  CHECK(got[0] == -3 && got[4] == 2);
  CHECK_EQ_INT(mlx_clip(&r, x, lo, none, cpu), 0);
  read_doubles(r, got, 5);
  CHECK(got[0] == -1.5 && got[4] == 9);
  CHECK(mlx_clip(&r, x, none, none, cpu) != 0);
  CHECK(error_mentions("clip"));
  mlx_array_free(x);
  mlx_array_free(lo);
  mlx_array_free(hi);
  mlx_array_free(r);
}

TEST(test_isclose_allclose_array_equal) {
  double a[6] = {1.0, 1.0, INFINITY, INFINITY, NAN, 100};
  double b[6] = {1.0 + 1e-6, 1.1, INFINITY, -INFINITY, NAN, 100.00001};
  mlx_array x = make_1d(a, 6, MLX_FLOAT32), y = make_1d(b, 6, MLX_FLOAT32), r = mlx_array_new();
  CHECK_EQ_INT(mlx_isclose(&r, x, y, 1e-5, 1e-8, false, cpu), 0);
  CHECK_EQ_INT(mlx_array_dtype(r), MLX_BOOL);
  const bool* p = mlx_array_data_bool(r);
  bool want[6] = {1, 0, 1, 0, 0, 1};
  for (int i = 0; p && i < 6; i++) CHECK_MSG(p[i] == want[i], "isclose %d", i);
  CHECK_EQ_INT(mlx_isclose(&r, x, y, 1e-5, 1e-8, true, cpu), 0);
  p = mlx_array_data_bool(r);
  CHECK(p && p[4]);
  bool v = true;
  CHECK_EQ_INT(mlx_allclose(&r, x, y, 1e-5, 1e-8, true, cpu), 0);
  CHECK_EQ_INT(mlx_array_ndim(r), 0);
  mlx_array_item_bool(&v, r);
  CHECK(!v);
  CHECK_EQ_INT(mlx_allclose(&r, x, x, 0, 0, true, cpu), 0);
  mlx_array_item_bool(&v, r);
  CHECK(v);
  CHECK_EQ_INT(mlx_allclose(&r, x, x, 0, 0, false, cpu), 0); /* NaN != NaN */
  mlx_array_item_bool(&v, r);
  CHECK(!v);
  /* array_equal: exact, NaN only with equal_nan, shapes must match */
  CHECK_EQ_INT(mlx_array_equal(&r, x, x, false, cpu), 0);
  mlx_array_item_bool(&v, r);
  CHECK(!v);
  CHECK_EQ_INT(mlx_array_equal(&r, x, x, true, cpu), 0);
  mlx_array_item_bool(&v, r);
  CHECK(v);
  double big[2] = {9007199254740993.0, 1}; /* 2^53 + 1 as int64 differs from 2^53 */
  int64_t i64[2] = {9007199254740993LL, 1}, i64b[2] = {9007199254740992LL, 1};
  int two = 2;
  (void)big;
  mlx_array p1 = mlx_array_new_data(i64, &two, 1, MLX_INT64), p2 = mlx_array_new_data(i64b, &two, 1, MLX_INT64);
  CHECK_EQ_INT(mlx_array_equal(&r, p1, p2, false, cpu), 0);
  mlx_array_item_bool(&v, r);
  CHECK(!v);
  CHECK_EQ_INT(mlx_array_equal(&r, p1, p1, false, cpu), 0);
  mlx_array_item_bool(&v, r);
  CHECK(v);
  mlx_array short1 = make_1d(a, 2, MLX_FLOAT32);
  CHECK_EQ_INT(mlx_array_equal(&r, x, short1, false, cpu), 0);
  mlx_array_item_bool(&v, r);
  CHECK(!v);
  /* int vs float compare in the promoted dtype */
  mlx_array i1 = mlx_array_new_int(1), f1 = mlx_array_new_float(1.0f);
  CHECK_EQ_INT(mlx_array_equal(&r, i1, f1, false, cpu), 0);
  mlx_array_item_bool(&v, r);
  CHECK(v);
  mlx_array_free(i1);
  mlx_array_free(f1);
  mlx_array_free(short1);
  mlx_array_free(p1);
  mlx_array_free(p2);
  mlx_array_free(x);
  mlx_array_free(y);
  mlx_array_free(r);
}

TEST(test_empty_arrays_and_error_paths) {
  int s0[2] = {0, 3}, s3[1] = {3}, s4[1] = {4};
  double v[4] = {1, 2, 3, 4};
  mlx_array e = mlx_array_new_data(NULL, s0, 2, MLX_FLOAT32), a3 = make_array(v, s3, 1, MLX_FLOAT32),
            a4 = make_array(v, s4, 1, MLX_FLOAT32), none = mlx_array_new(), r = mlx_array_new();
  CHECK_EQ_INT(mlx_add(&r, e, a3, cpu), 0);
  CHECK_EQ_INT(mlx_array_eval(r), 0);
  CHECK(mlx_array_size(r) == 0 && mlx_array_dim(r, 0) == 0 && mlx_array_dim(r, 1) == 3);
  CHECK_EQ_INT(mlx_less(&r, e, a3, cpu), 0);
  CHECK_EQ_INT(mlx_array_eval(r), 0);
  bool t = false;
  CHECK_EQ_INT(mlx_allclose(&r, e, e, 1e-5, 1e-8, false, cpu), 0);
  mlx_array_item_bool(&t, r);
  CHECK(t); /* vacuously */
  CHECK(mlx_maximum(&r, a3, a4, cpu) != 0);
  CHECK(error_mentions("maximum: shapes (3) and (4) cannot be broadcast together"));
  CHECK(mlx_power(&r, none, a3, cpu) != 0);
  CHECK(error_mentions("power: first input is an empty array"));
  CHECK(mlx_equal(&r, a3, none, cpu) != 0);
  CHECK(error_mentions("equal: second input is an empty array"));
  CHECK(mlx_where(&r, none, a3, a3, cpu) != 0);
  CHECK(mlx_isclose(&r, a3, none, 1e-5, 1e-8, false, cpu) != 0);
  CHECK(mlx_array_equal(&r, none, a3, false, cpu) != 0);
  mlx_vector_array vec = mlx_vector_array_new();
  CHECK(mlx_divmod(&vec, a3, a4, cpu) != 0);
  CHECK(mlx_maximum(NULL, a3, a3, cpu) != 0);
  mlx_vector_array_free(vec);
  mlx_array_free(e);
  mlx_array_free(a3);
  mlx_array_free(a4);
  mlx_array_free(r);
}

/* Several user threads build and evaluate elementwise graphs at once: all results correct. */
static void* add_worker(void* arg) {
  int* bad = arg;
  enum { N = 200000 };
  float* x = malloc(sizeof(float) * N);
  for (int i = 0; i < N; i++) x[i] = (float)(i % 1000);
  int n = N;
  mlx_array a = mlx_array_new_data(x, &n, 1, MLX_FLOAT32), r = mlx_array_new(), m = mlx_array_new();
  for (int rep = 0; rep < 5; rep++) {
    mlx_add(&r, a, a, cpu);
    mlx_maximum(&m, r, a, cpu);
    const float* p = mlx_array_data_float32(m);
    for (int i = 0; p && i < N; i++) *bad += p[i] != 2 * x[i];
    if (!p) (*bad)++;
  }
  mlx_array_free(a);
  mlx_array_free(r);
  mlx_array_free(m);
  free(x);
  return NULL;
}

TEST(test_elementwise_ops_from_several_threads) {
  enum { T = 4 };
  pthread_t th[T];
  int bad[T] = {0};
  for (int i = 0; i < T; i++) pthread_create(&th[i], NULL, add_worker, &bad[i]);
  for (int i = 0; i < T; i++) pthread_join(th[i], NULL);
  for (int i = 0; i < T; i++) CHECK_EQ_INT(bad[i], 0);
}

int main(void) {
  mlxc_set_errors_quiet(1);
  cpu = mlx_default_cpu_stream_new();
  RUN(test_float_binary_ops_every_float_dtype);
  RUN(test_integer_floor_divide_and_remainder_follow_python);
  RUN(test_integer_arithmetic_wraps_and_power_is_exact);
  RUN(test_maximum_minimum_propagate_nan_and_logaddexp_handles_inf);
  RUN(test_comparisons_every_dtype_give_bool);
  RUN(test_logical_and_bitwise_ops);
  RUN(test_broadcast_row_column_scalar);
  RUN(test_binary_strided_inputs_large);
  RUN(test_divmod_returns_quotient_and_remainder);
  RUN(test_where_broadcasts_and_promotes);
  RUN(test_clip_with_optional_bounds);
  RUN(test_isclose_allclose_array_equal);
  RUN(test_empty_arrays_and_error_paths);
  RUN(test_elementwise_ops_from_several_threads);
  mlx_stream_free(cpu);
  return TEST_SUMMARY();
}
