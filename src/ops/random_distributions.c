/* mlx-c random distributions, composed from random bits and elementwise ops exactly as MLX
 * composes them (mlx/random.cpp), so a key gives MLX's numbers: uniform, normal, bernoulli,
 * truncated_normal, gumbel, laplace, randint. */
#include <math.h>
#include <stdint.h>

#include "core/dtype.h"
#include "core/half.h"
#include "mlx/c/mlx.h"
#include "ops/random.h"
#include "util/error.h"

#define CALL(expr)            \
  do {                        \
    status = (expr);          \
    if (status) goto cleanup; \
  } while (0)

static bool sampling_dtype(mlx_dtype d) { return d == MLX_FLOAT32 || d == MLX_FLOAT16 || d == MLX_BFLOAT16; }

/* A scalar of `dtype` holding v. */
static mlx_array scalar(double v, mlx_dtype dtype, mlx_stream s) {
  mlx_array a = mlx_array_new_float64(v), out = mlx_array_new();
  if (mlx_astype(&out, a, dtype, s)) {
    mlx_array_free(out);
    out = mlx_array_new();
  }
  mlx_array_free(a);
  return out;
}

/* The largest value below 1 in `dtype`, as float32 (MLX: nextafter(1, 0) / below_one<T>()). */
static float below_one(mlx_dtype dtype) {
  if (dtype == MLX_FLOAT16) return half_f16_to_f32(0x3c00 - 1);
  if (dtype == MLX_BFLOAT16) return half_bf16_to_f32(0x3f80 - 1);
  return nextafterf(1.0f, 0.0f);
}

static int check_output_shape(mlx_array a, const int* shape, size_t ndim, const char* op) {
  if (mlx_array_ndim(a) != ndim) goto mismatch;
  for (size_t i = 0; i < ndim; i++)
    if (mlx_array_dim(a, (int)i) != shape[i]) goto mismatch;
  return 0;
mismatch:
  return util_error("%s: cannot generate values of the requested shape from the broadcast shape of its parameters", op);
}

int mlx_random_uniform(mlx_array* res, const mlx_array low, const mlx_array high, const int* shape,
                       size_t shape_num, mlx_dtype dtype, const mlx_array key, const mlx_stream s) {
  const char* op = "random.uniform";
  if (!sampling_dtype(dtype)) return util_error("%s: can only generate float32, float16 or bfloat16 values", op);
  if (!low.ctx || !high.ctx) return util_error("%s: low and high are required", op);
  mlx_array lo = mlx_array_new(), hi = mlx_array_new(), range = mlx_array_new(), k = mlx_array_new();
  mlx_array bits = mlx_array_new(), out = mlx_array_new(), t = mlx_array_new();
  mlx_array maxval = mlx_array_new_float32(4294967295.0f), upper = mlx_array_new_float32(below_one(dtype));
  int status = 0;
  CALL(mlx_astype(&lo, low, dtype, s));
  CALL(mlx_astype(&hi, high, dtype, s));
  CALL(mlx_subtract(&range, hi, lo, s));
  CALL(mlx_broadcast_to(&t, range, shape, shape_num, s)); /* the parameters must broadcast to shape */
  CALL(ops_random_resolve_key(&k, key, s, op));
  CALL(mlx_random_bits(&bits, shape, shape_num, 4, k, s));
  CALL(mlx_divide(&out, bits, maxval, s));
  CALL(mlx_minimum(&out, out, upper, s));
  CALL(mlx_astype(&out, out, dtype, s));
  CALL(mlx_multiply(&out, range, out, s));
  CALL(mlx_add(&out, out, lo, s));
  CALL(check_output_shape(out, shape, shape_num, op));
  mlx_array_set(res, out);
cleanup:;
  mlx_array* all[] = {&lo, &hi, &range, &k, &bits, &out, &t, &maxval, &upper};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) mlx_array_free(*all[i]);
  return status;
}

/* Uniform over [nextafter(-1, 0), 1) in float32: the start of normal and laplace. */
static int symmetric_uniform(mlx_array* out, const int* shape, size_t ndim, const mlx_array key, mlx_stream s) {
  mlx_array lo = mlx_array_new_float32(nextafterf(-1.0f, 0.0f)), hi = mlx_array_new_float32(1.0f);
  int status = mlx_random_uniform(out, lo, hi, shape, ndim, MLX_FLOAT32, key, s);
  mlx_array_free(lo);
  mlx_array_free(hi);
  return status;
}

int mlx_random_normal_broadcast(mlx_array* res, const int* shape, size_t shape_num, mlx_dtype dtype,
                                const mlx_array loc, const mlx_array scale, const mlx_array key,
                                const mlx_stream s) {
  if (!sampling_dtype(dtype))
    return util_error("random.normal: can only generate float32, float16 or bfloat16 values");
  mlx_array samples = mlx_array_new(), applied = scalar(sqrt(2.0), dtype, s), t = mlx_array_new();
  int status = 0;
  CALL(symmetric_uniform(&samples, shape, shape_num, key, s));
  if (scale.ctx) {
    CALL(mlx_astype(&t, scale, dtype, s));
    CALL(mlx_multiply(&applied, applied, t, s));
  }
  CALL(mlx_erfinv(&samples, samples, s));
  CALL(mlx_astype(&samples, samples, dtype, s));
  CALL(mlx_multiply(&samples, applied, samples, s));
  if (loc.ctx) {
    CALL(mlx_astype(&t, loc, dtype, s));
    CALL(mlx_add(&samples, t, samples, s));
  }
  mlx_array_set(res, samples);
cleanup:
  mlx_array_free(samples);
  mlx_array_free(applied);
  mlx_array_free(t);
  return status;
}

int mlx_random_normal(mlx_array* res, const int* shape, size_t shape_num, mlx_dtype dtype, float loc,
                      float scale, const mlx_array key, const mlx_stream s) {
  /* As MLX: a loc of 0 and a scale of 1 are left out rather than applied. */
  mlx_array l = loc != 0.0f ? scalar(loc, dtype, s) : mlx_array_new();
  mlx_array sc = scale != 1.0f ? scalar(scale, dtype, s) : mlx_array_new();
  int status = mlx_random_normal_broadcast(res, shape, shape_num, dtype, l, sc, key, s);
  mlx_array_free(l);
  mlx_array_free(sc);
  return status;
}

int mlx_random_bernoulli(mlx_array* res, const mlx_array p, const int* shape, size_t shape_num,
                         const mlx_array key, const mlx_stream s) {
  const char* op = "random.bernoulli";
  if (!p.ctx) return util_error("%s: p is an empty array", op);
  if (!core_dtype_is_float(mlx_array_dtype(p))) return util_error("%s: the probability p must be floating point", op);
  /* p scaled to [0, nextafter(UINT32_MAX)] so that p >= 1 is always true and p <= 0 never. */
  mlx_array upper = mlx_array_new_float32(nextafterf(4294967295.0f, INFINITY));
  mlx_array k = mlx_array_new(), bits = mlx_array_new(), t = mlx_array_new(), out = mlx_array_new();
  int status = 0;
  CALL(ops_random_resolve_key(&k, key, s, op));
  CALL(mlx_random_bits(&bits, shape, shape_num, 4, k, s));
  CALL(mlx_multiply(&t, p, upper, s));
  CALL(mlx_less(&out, bits, t, s));
  CALL(check_output_shape(out, shape, shape_num, op));
  mlx_array_set(res, out);
cleanup:
  mlx_array_free(upper);
  mlx_array_free(k);
  mlx_array_free(bits);
  mlx_array_free(t);
  mlx_array_free(out);
  return status;
}

int mlx_random_truncated_normal(mlx_array* res, const mlx_array lower, const mlx_array upper, const int* shape,
                                size_t shape_num, mlx_dtype dtype, const mlx_array key, const mlx_stream s) {
  if (!sampling_dtype(dtype))
    return util_error("random.truncated_normal: can only generate float32, float16 or bfloat16 values");
  if (!lower.ctx || !upper.ctx) return util_error("random.truncated_normal: lower and upper are required");
  mlx_array sqrt2 = scalar(sqrt(2.0), dtype, s), lo = mlx_array_new(), hi = mlx_array_new();
  mlx_array a = mlx_array_new(), b = mlx_array_new(), u = mlx_array_new();
  int status = 0;
  CALL(mlx_astype(&lo, lower, dtype, s));
  CALL(mlx_astype(&hi, upper, dtype, s));
  CALL(mlx_divide(&a, lo, sqrt2, s));
  CALL(mlx_erf(&a, a, s));
  CALL(mlx_divide(&b, hi, sqrt2, s));
  CALL(mlx_erf(&b, b, s));
  CALL(mlx_random_uniform(&u, a, b, shape, shape_num, dtype, key, s));
  CALL(mlx_erfinv(&u, u, s));
  CALL(mlx_multiply(&u, sqrt2, u, s));
  CALL(mlx_minimum(&u, hi, u, s)); /* clip into [lower, upper] */
  CALL(mlx_maximum(&u, u, lo, s));
  mlx_array_set(res, u);
cleanup:;
  mlx_array* all[] = {&sqrt2, &lo, &hi, &a, &b, &u};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) mlx_array_free(*all[i]);
  return status;
}

int mlx_random_gumbel(mlx_array* res, const int* shape, size_t shape_num, mlx_dtype dtype, const mlx_array key,
                      const mlx_stream s) {
  if (!sampling_dtype(dtype)) return util_error("random.gumbel: can only generate float32, float16 or bfloat16 values");
  mlx_array zero = scalar(0.0, dtype, s), one = scalar(1.0, dtype, s), u = mlx_array_new();
  int status = 0;
  /* -log(-log(uniform)) */
  CALL(mlx_random_uniform(&u, zero, one, shape, shape_num, dtype, key, s));
  CALL(mlx_log(&u, u, s));
  CALL(mlx_negative(&u, u, s));
  CALL(mlx_log(&u, u, s));
  CALL(mlx_negative(&u, u, s));
  mlx_array_set(res, u);
cleanup:
  mlx_array_free(zero);
  mlx_array_free(one);
  mlx_array_free(u);
  return status;
}

int mlx_random_laplace(mlx_array* res, const int* shape, size_t shape_num, mlx_dtype dtype, float loc,
                       float scale, const mlx_array key, const mlx_stream s) {
  if (!sampling_dtype(dtype)) return util_error("random.laplace: can only generate float32, float16 or bfloat16 values");
  mlx_array u = mlx_array_new(), sign = mlx_array_new(), t = mlx_array_new(), minus_one = scalar(-1.0, dtype, s);
  int status = 0;
  /* Inverse CDF: sign(u) * log1p(-|u|) */
  CALL(symmetric_uniform(&u, shape, shape_num, key, s));
  CALL(mlx_sign(&sign, u, s));
  CALL(mlx_abs(&t, u, s));
  CALL(mlx_multiply(&t, minus_one, t, s));
  CALL(mlx_log1p(&t, t, s));
  CALL(mlx_multiply(&t, sign, t, s));
  CALL(mlx_astype(&t, t, dtype, s));
  if (scale != 1.0f) {
    mlx_array sc = scalar(scale, dtype, s);
    status = mlx_multiply(&t, sc, t, s);
    mlx_array_free(sc);
    if (status) goto cleanup;
  }
  if (loc != 0.0f) {
    mlx_array l = scalar(loc, dtype, s);
    status = mlx_add(&t, l, t, s);
    mlx_array_free(l);
    if (status) goto cleanup;
  }
  mlx_array_set(res, t);
cleanup:
  mlx_array_free(u);
  mlx_array_free(sign);
  mlx_array_free(t);
  mlx_array_free(minus_one);
  return status;
}

/* Integers in [low, high): raw bits reduced modulo the width in uint64 (two draws for 64-bit
 * dtypes), as MLX does so that wide and large-magnitude intervals stay exact. */
int mlx_random_randint(mlx_array* res, const mlx_array low, const mlx_array high, const int* shape,
                       size_t shape_num, mlx_dtype dtype, const mlx_array key, const mlx_stream s) {
  const char* op = "random.randint";
  if (core_dtype_is_inexact(dtype)) return util_error("%s: randint only generates integer and bool dtypes", op);
  if (!low.ctx || !high.ctx) return util_error("%s: low and high are required", op);
  mlx_dtype cmp_dtype = core_dtype_is_unsigned_int(dtype) ? MLX_UINT64 : MLX_INT64;
  mlx_array lo = mlx_array_new(), hi = mlx_array_new(), range = mlx_array_new(), empty = mlx_array_new();
  mlx_array a = mlx_array_new(), b = mlx_array_new(), k = mlx_array_new(), k1 = mlx_array_new(), k2 = mlx_array_new();
  mlx_array raw = mlx_array_new(), t = mlx_array_new(), one = scalar(1, MLX_UINT64, s), shift = scalar(32, MLX_UINT64, s);
  int status = 0;
  CALL(mlx_astype(&lo, low, MLX_INT64, s));
  CALL(mlx_astype(&hi, high, MLX_INT64, s));
  CALL(mlx_subtract(&range, hi, lo, s));
  CALL(mlx_broadcast_to(&t, range, shape, shape_num, s));
  /* An empty interval (compared exactly in the output's domain) yields `low`: width 1. */
  CALL(mlx_astype(&a, high, cmp_dtype, s));
  CALL(mlx_astype(&b, low, cmp_dtype, s));
  CALL(mlx_less_equal(&empty, a, b, s));
  CALL(mlx_astype(&range, range, MLX_UINT64, s)); /* the wrapped difference is the unsigned width */
  CALL(mlx_where(&range, empty, one, range, s));
  CALL(ops_random_resolve_key(&k, key, s, op));
  if (dtype == MLX_INT64 || dtype == MLX_UINT64) {
    CALL(mlx_random_split(&k1, &k2, k, s));
    CALL(mlx_random_bits(&a, shape, shape_num, 4, k1, s));
    CALL(mlx_random_bits(&b, shape, shape_num, 4, k2, s));
    CALL(mlx_astype(&b, b, MLX_UINT64, s));
    CALL(mlx_left_shift(&b, b, shift, s));
    CALL(mlx_astype(&a, a, MLX_UINT64, s));
    CALL(mlx_bitwise_or(&raw, b, a, s));
  } else {
    CALL(mlx_random_bits(&raw, shape, shape_num, 4, k, s));
    CALL(mlx_astype(&raw, raw, MLX_UINT64, s));
  }
  CALL(mlx_remainder(&raw, raw, range, s));
  CALL(mlx_astype(&lo, lo, MLX_UINT64, s));
  CALL(mlx_add(&raw, lo, raw, s));
  CALL(mlx_astype(&raw, raw, dtype, s));
  CALL(check_output_shape(raw, shape, shape_num, op));
  mlx_array_set(res, raw);
cleanup:;
  mlx_array* all[] = {&lo, &hi, &range, &empty, &a, &b, &k, &k1, &k2, &raw, &t, &one, &shift};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) mlx_array_free(*all[i]);
  return status;
}
