/* Unary elementwise kernels: one row loop per (op, dtype), generated from the expression tables
 * below and run over the thread pool. The constructor has already chosen the input dtype (math
 * functions get float inputs) and the output dtype (bool for predicates, float32 for the
 * magnitude and parts of complex64). float16/bfloat16 compute in float. */
#include <string.h>
#include <tgmath.h>

#include "backend/cpu/elementwise.h"
#include "backend/cpu/exp_f32.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/vec.h"
#include "core/half.h"
#include "ops/codes.h"
#include "ops/unary_params.h"
#include "util/error.h"

/* Bool rows reuse integer expressions (~x, x != 0, ...) and collapse the result on store. */
#pragma GCC diagnostic ignored "-Wpragmas"
#pragma GCC diagnostic ignored "-Wunknown-warning-option"
#pragma GCC diagnostic ignored "-Wint-in-bool-context"
#pragma GCC diagnostic ignored "-Wbool-operation"

typedef void (*unary_row_fn)(const char* in, int64_t si, char* out, int64_t so, int64_t n,
                             const unary_params* params);

/* erfinv in double: Giles' single-precision approximation ("Approximating the erfinv function",
 * 2010) as the start, then two Newton steps on erf(x) = y. */
static double erfinv_d(double y) {
  if (!(y >= -1 && y <= 1)) return NAN;
  if (y == 1) return INFINITY;
  if (y == -1) return -INFINITY;
  double w = -log((1.0 - y) * (1.0 + y)), p;
  if (w < 5.0) {
    w -= 2.5;
    p = 2.81022636e-08;
    p = 3.43273939e-07 + p * w;
    p = -3.5233877e-06 + p * w;
    p = -4.39150654e-06 + p * w;
    p = 0.00021858087 + p * w;
    p = -0.00125372503 + p * w;
    p = -0.00417768164 + p * w;
    p = 0.246640727 + p * w;
    p = 1.50140941 + p * w;
  } else {
    w = sqrt(w) - 3.0;
    p = -0.000200214257;
    p = 0.000100950558 + p * w;
    p = 0.00134934322 + p * w;
    p = -0.00367342844 + p * w;
    p = 0.00573950773 + p * w;
    p = -0.0076224613 + p * w;
    p = 0.00943887047 + p * w;
    p = 1.00167406 + p * w;
    p = 2.83297682 + p * w;
  }
  double x = p * y;
  for (int i = 0; i < 2; i++) {
    double slope = 1.1283791670955126 * exp(-x * x); /* d/dx erf(x) = 2/sqrt(pi) e^(-x^2) */
    if (slope == 0) break;
    x -= (erf(x) - y) / slope;
  }
  return x;
}

/* sigmoid with e = e^-|x|: 1 / (1 + e) for x >= 0 and e / (1 + e) below, which avoids the
 * cancellation of 1 - 1 / (1 + e) when the loop computes in float. */
#define SIGMOID(x) ((x) < 0 ? exp(-fabs(x)) / (1 + exp(-fabs(x))) : 1 / (1 + exp(-fabs(x))))
/* Floats' sign; NaN stays NaN (as numpy; MLX's backends disagree with each other here). */
#define SIGN_FLOAT(x) (isnan(x) ? (x) : (elem_t)((x > 0) - (x < 0)))
/* x / |x| for nonzero complex x. */
#define SIGN_COMPLEX(x) ((x) == 0 ? (x) : (x) / cabs(x))
#define NAN_TO_NUM(x)                                                           \
  (isnan(x) ? (elem_t)P->nan : (x) == INFINITY ? (elem_t)P->posinf               \
                              : (x) == -INFINITY ? (elem_t)P->neginf : (x))
/* Constant results that still name x (rows declare it). */
#define NEVER ((void)x, 0)
#define ALWAYS ((void)x, 1)
#define CNAN(x) (isnan(crealf(x)) || isnan(cimagf(x)))
#define CINF(x) (isinf(crealf(x)) || isinf(cimagf(x)))

/* A row loop over native C type T computed as EXPR(x). In EXPR, elem_t is the compute type,
 * wrap_t the unsigned type integer arithmetic wraps in, P the node's parameters. */
#define NATIVE_ROW(NAME, T, U, OUT_T, EXPR)                                                  \
  static void NAME(const char* pin, int64_t si, char* pout, int64_t so, int64_t n,            \
                   const unary_params* P) {                                                   \
    typedef T elem_t;                                                                         \
    typedef U wrap_t;                                                                         \
    (void)sizeof(elem_t);                                                                     \
    (void)sizeof(wrap_t);                                                                     \
    (void)P;                                                                                  \
    const T* restrict a = (const T*)pin;                                                      \
    OUT_T* restrict o = (OUT_T*)pout;                                                         \
    if (si == 1 && so == 1) {                                                                 \
      for (int64_t i = 0; i < n; i++) {                                                       \
        T x = a[i];                                                                           \
        o[i] = (OUT_T)(EXPR);                                                                 \
      }                                                                                       \
    } else {                                                                                  \
      for (int64_t i = 0; i < n; i++) {                                                       \
        T x = a[i * si];                                                                      \
        o[i * so] = (OUT_T)(EXPR);                                                            \
      }                                                                                       \
    }                                                                                         \
  }

/* float16/bfloat16 storage: loaded to float, computed, stored through STORE. */
#define HALF_ROW(NAME, LOAD, OUT_T, STORE, EXPR)                                             \
  static void NAME(const char* pin, int64_t si, char* pout, int64_t so, int64_t n,            \
                   const unary_params* P) {                                                   \
    typedef float elem_t;                                                                     \
    (void)sizeof(elem_t);                                                                     \
    (void)P;                                                                                  \
    const uint16_t* a = (const uint16_t*)pin;                                                 \
    OUT_T* o = (OUT_T*)pout;                                                                  \
    for (int64_t i = 0; i < n; i++) {                                                         \
      float x = LOAD(a[i * si]);                                                              \
      o[i * so] = STORE(EXPR);                                                                \
    }                                                                                         \
  }
#define STORE_BOOL(v) ((bool)(v))

#define OUT_SAME(T) T
#define OUT_BOOL(T) bool
#define HOUT_SAME uint16_t
#define HOUT_BOOL bool
#define HSTORE_SAME_f16 half_f32_to_f16
#define HSTORE_SAME_bf16 half_f32_to_bf16
#define HSTORE_BOOL_f16 STORE_BOOL
#define HSTORE_BOOL_bf16 STORE_BOOL

/* Row families: SEXPR for signed integers, UEXPR for unsigned ones and bool, FEXPR for real
 * floats (float/double/half through <tgmath.h>), CEXPR for complex64 (OUT_C its output type). */
#define INT_ROWS(OP, OUT, SEXPR, UEXPR)                                 \
  NATIVE_ROW(OP##_bool, bool, unsigned, OUT_##OUT(bool), UEXPR)        \
  NATIVE_ROW(OP##_u8, uint8_t, unsigned, OUT_##OUT(uint8_t), UEXPR)    \
  NATIVE_ROW(OP##_u16, uint16_t, unsigned, OUT_##OUT(uint16_t), UEXPR) \
  NATIVE_ROW(OP##_u32, uint32_t, uint32_t, OUT_##OUT(uint32_t), UEXPR) \
  NATIVE_ROW(OP##_u64, uint64_t, uint64_t, OUT_##OUT(uint64_t), UEXPR) \
  NATIVE_ROW(OP##_i8, int8_t, unsigned, OUT_##OUT(int8_t), SEXPR)      \
  NATIVE_ROW(OP##_i16, int16_t, unsigned, OUT_##OUT(int16_t), SEXPR)   \
  NATIVE_ROW(OP##_i32, int32_t, uint32_t, OUT_##OUT(int32_t), SEXPR)   \
  NATIVE_ROW(OP##_i64, int64_t, uint64_t, OUT_##OUT(int64_t), SEXPR)
#define FLOAT_ROWS(OP, OUT, FEXPR)                                                \
  NATIVE_ROW(OP##_f32, float, float, OUT_##OUT(float), FEXPR)                    \
  NATIVE_ROW(OP##_f64, double, double, OUT_##OUT(double), FEXPR)                 \
  HALF_ROW(OP##_f16, half_f16_to_f32, HOUT_##OUT, HSTORE_##OUT##_f16, FEXPR)     \
  HALF_ROW(OP##_bf16, half_bf16_to_f32, HOUT_##OUT, HSTORE_##OUT##_bf16, FEXPR)
#define COMPLEX_ROW(OP, OUT_C, CEXPR) \
  NATIVE_ROW(OP##_c64, float _Complex, float _Complex, OUT_C, CEXPR)

#define INT_TABLE(OP)                                                                        \
  [MLX_BOOL] = OP##_bool, [MLX_UINT8] = OP##_u8, [MLX_UINT16] = OP##_u16,                   \
  [MLX_UINT32] = OP##_u32, [MLX_UINT64] = OP##_u64, [MLX_INT8] = OP##_i8,                    \
  [MLX_INT16] = OP##_i16, [MLX_INT32] = OP##_i32, [MLX_INT64] = OP##_i64
#define FLOAT_TABLE(OP)                                                                      \
  [MLX_FLOAT32] = OP##_f32, [MLX_FLOAT64] = OP##_f64, [MLX_FLOAT16] = OP##_f16,             \
  [MLX_BFLOAT16] = OP##_bf16
#define COMPLEX_TABLE(OP) [MLX_COMPLEX64] = OP##_c64

/* Math functions of real floats and complex64 (integers arrive cast to float32). */
#define MATH(OP, FEXPR) FLOAT_ROWS(OP, SAME, FEXPR) COMPLEX_ROW(OP, float _Complex, FEXPR)
#define MATH_REAL(OP, FEXPR) FLOAT_ROWS(OP, SAME, FEXPR)

/* Dtype-keeping arithmetic: integers wrap. */
INT_ROWS(abs, SAME, x < 0 ? (elem_t)((wrap_t)0 - (wrap_t)x) : x, x)
FLOAT_ROWS(abs, SAME, fabs(x))
COMPLEX_ROW(abs, float, cabs(x))
INT_ROWS(negative, SAME, (wrap_t)0 - (wrap_t)x, (wrap_t)0 - (wrap_t)x)
MATH(negative, -x)
INT_ROWS(sign, SAME, (x > 0) - (x < 0), x != 0)
FLOAT_ROWS(sign, SAME, SIGN_FLOAT(x))
COMPLEX_ROW(sign, float _Complex, SIGN_COMPLEX(x))
INT_ROWS(square, SAME, (wrap_t)x * (wrap_t)x, (wrap_t)x * (wrap_t)x)
MATH(square, x * x)

MATH(sqrt, sqrt(x))
MATH(rsqrt, 1 / sqrt(x))
MATH(reciprocal, 1 / x)
MATH(exp, exp(x))
MATH_REAL(expm1, expm1(x))
MATH(log, log(x))
MATH_REAL(log1p, log1p(x))
MATH_REAL(log2, log2(x))
COMPLEX_ROW(log2, float _Complex, log(x) / 0.69314718f)
MATH_REAL(log10, log10(x))
COMPLEX_ROW(log10, float _Complex, log(x) / 2.30258509f)
MATH(sin, sin(x))
MATH(cos, cos(x))
MATH(tan, tan(x))
MATH(arcsin, asin(x))
MATH(arccos, acos(x))
MATH(arctan, atan(x))
MATH(sinh, sinh(x))
MATH(cosh, cosh(x))
MATH(tanh, tanh(x))
MATH(arcsinh, asinh(x))
MATH(arccosh, acosh(x))
MATH(arctanh, atanh(x))
/* erf of float32 rows, written so that the compiler vectorises the loop (libm's erff is scalar
 * and was the slowest step of BERT's GELU): |x| < 1: x P(x^2); else 1 - e^(-b^2) R(1/b) with
 * b = |x| clamped to [1, 4] (beyond 4 erf rounds to 1), e^y = 2^n e^r with r = y - n ln 2
 * (Cody-Waite). P, R and the e^r polynomial are least-squares fits on Chebyshev nodes, weighted
 * by 1/f, made with numpy; the result is within 2.7 ulp of erf for every float32 (checked
 * exhaustively against the double erf). Selections go through the bits (integer compares) and
 * GCC is told that float compares do not trap, so that it may compute both branches in vector
 * registers; clang assumes that already. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC push_options
#pragma GCC optimize("no-trapping-math")
#endif
static inline float erf_f32_one(float x) {
  uint32_t ix = f32_bits(x), ia = ix & 0x7fffffffu, sign = ix & 0x80000000u;
  float u = x * x;
  float p = 7.847259125628168e-05f;
  p = p * u - 0.0008008189322803206f;
  p = p * u + 0.005188098889368416f;
  p = p * u - 0.026853691099701794f;
  p = p * u + 0.1128358224799261f;
  p = p * u - 0.37612625567399294f;
  p = p * u + 1.1283791656893223f;
  float small = x * p;
  uint32_t ib = ia < 0x3f800000u ? 0x3f800000u : ia > 0x40800000u ? 0x40800000u : ia; /* [1, 4] */
  float b = bits_f32(ib), y = -b * b;
  float n, e = exp_parts_f32(y, &n);
  float scale = bits_f32((uint32_t)((int32_t)n + 127) << 23), t = 1.0f / b;
  float q = 0.02967723591778256f;
  q = q * t - 0.17400144137318335f;
  q = q * t + 0.42458844570729176f;
  q = q * t - 0.5183950056416249f;
  q = q * t + 0.22255830175760255f;
  q = q * t + 0.23908537343396286f;
  q = q * t - 0.3789607464024332f;
  q = q * t + 0.02122417237469477f;
  q = q * t + 0.5616814878351578f;
  q = q * t + 0.00012575778950440147f;
  uint32_t large = f32_bits(1.0f - e * scale * q) | sign;
  return bits_f32(ia < 0x3f800000u ? f32_bits(small) : ia > 0x7f800000u ? ix : large); /* NaN stays */
}

static void erf_f32(const char* pin, int64_t si, char* pout, int64_t so, int64_t n, const unary_params* P) {
  (void)P;
  const float* restrict a = (const float*)pin;
  float* restrict o = (float*)pout;
  if (si == 1 && so == 1) {
    for (int64_t i = 0; i < n; i++) o[i] = erf_f32_one(a[i]);
  } else {
    for (int64_t i = 0; i < n; i++) o[i * so] = erf_f32_one(a[i * si]);
  }
}
/* sigmoid: e^-|x| from exp_f32.h (libm's expf is scalar: sigmoid was a tenth of a batch-1
 * decode step's non-matmul time), contiguous rows through vec.h's vector kernels. */
static void sigmoid_f32(const char* pin, int64_t si, char* pout, int64_t so, int64_t n,
                        const unary_params* P) {
  (void)P;
  const float* a = (const float*)pin;
  float* o = (float*)pout;
  if (si == 1 && so == 1) {
    cpu_vec_sigmoid(o, a, n);
  } else {
    for (int64_t i = 0; i < n; i++) o[i * so] = sigmoid_one_f32(a[i * si]);
  }
}
HALF_ROW(sigmoid_f16, half_f16_to_f32, HOUT_SAME, HSTORE_SAME_f16, sigmoid_one_f32(x))
/* bfloat16 rows (a model's activations) a block at a time through float32, with the vector
 * conversions of vec.h, so that every step vectorises. */
static void sigmoid_bf16(const char* pin, int64_t si, char* pout, int64_t so, int64_t n,
                         const unary_params* P) {
  (void)P;
  const uint16_t* a = (const uint16_t*)pin;
  uint16_t* o = (uint16_t*)pout;
  if (si != 1 || so != 1) {
    for (int64_t i = 0; i < n; i++) o[i * so] = half_f32_to_bf16(sigmoid_one_f32(half_bf16_to_f32(a[i * si])));
    return;
  }
  float block[256];
  for (int64_t i0 = 0; i0 < n; i0 += 256) {
    int64_t m = n - i0 < 256 ? n - i0 : 256;
    cpu_vec_bf16_to_f32(a + i0, block, m);
    cpu_vec_sigmoid(block, block, m);
    cpu_vec_f32_to_bf16(block, o + i0, m);
  }
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC pop_options
#endif
NATIVE_ROW(sigmoid_f64, double, double, double, SIGMOID(x))
NATIVE_ROW(erf_f64, double, double, double, erf(x))
HALF_ROW(erf_f16, half_f16_to_f32, HOUT_SAME, HSTORE_SAME_f16, erf(x))
HALF_ROW(erf_bf16, half_bf16_to_f32, HOUT_SAME, HSTORE_SAME_bf16, erf(x))
MATH_REAL(erfinv, erfinv_d(x))
MATH_REAL(floor, floor(x))
MATH_REAL(ceil, ceil(x))
MATH_REAL(round, rint(x)) /* half to even, as MLX */
MATH_REAL(nan_to_num, NAN_TO_NUM(x))

/* Predicates (bool out). Integers are never NaN or infinite. */
INT_ROWS(logical_not, BOOL, !x, !x)
FLOAT_ROWS(logical_not, BOOL, x == 0)
COMPLEX_ROW(logical_not, bool, x == 0)
INT_ROWS(bitwise_invert, SAME, ~x, ~x)
INT_ROWS(isnan, BOOL, NEVER, NEVER)
FLOAT_ROWS(isnan, BOOL, isnan(x))
COMPLEX_ROW(isnan, bool, CNAN(x))
INT_ROWS(isinf, BOOL, NEVER, NEVER)
FLOAT_ROWS(isinf, BOOL, isinf(x))
COMPLEX_ROW(isinf, bool, CINF(x))
INT_ROWS(isfinite, BOOL, ALWAYS, ALWAYS)
FLOAT_ROWS(isfinite, BOOL, isfinite(x))
COMPLEX_ROW(isfinite, bool, !CNAN(x) && !CINF(x))
INT_ROWS(isposinf, BOOL, NEVER, NEVER)
FLOAT_ROWS(isposinf, BOOL, x == INFINITY)
COMPLEX_ROW(isposinf, bool, x == INFINITY)
INT_ROWS(isneginf, BOOL, NEVER, NEVER)
FLOAT_ROWS(isneginf, BOOL, x == -INFINITY)
COMPLEX_ROW(isneginf, bool, x == -INFINITY)

/* Complex parts; the imaginary part of a real array is zero. */
COMPLEX_ROW(conjugate, float _Complex, conj(x))
COMPLEX_ROW(real, float, crealf(x))
COMPLEX_ROW(imag, float, cimagf(x))
INT_ROWS(imag, SAME, NEVER, NEVER)
FLOAT_ROWS(imag, SAME, NEVER)

static const unary_row_fn rows[UNARY_CODE_COUNT][CORE_DTYPE_COUNT] = {
    [UNARY_ABS] = {INT_TABLE(abs), FLOAT_TABLE(abs), COMPLEX_TABLE(abs)},
    [UNARY_NEGATIVE] = {INT_TABLE(negative), FLOAT_TABLE(negative), COMPLEX_TABLE(negative)},
    [UNARY_SIGN] = {INT_TABLE(sign), FLOAT_TABLE(sign), COMPLEX_TABLE(sign)},
    [UNARY_SQUARE] = {INT_TABLE(square), FLOAT_TABLE(square), COMPLEX_TABLE(square)},
    [UNARY_SQRT] = {FLOAT_TABLE(sqrt), COMPLEX_TABLE(sqrt)},
    [UNARY_RSQRT] = {FLOAT_TABLE(rsqrt), COMPLEX_TABLE(rsqrt)},
    [UNARY_RECIPROCAL] = {FLOAT_TABLE(reciprocal), COMPLEX_TABLE(reciprocal)},
    [UNARY_EXP] = {FLOAT_TABLE(exp), COMPLEX_TABLE(exp)},
    [UNARY_EXPM1] = {FLOAT_TABLE(expm1)},
    [UNARY_LOG] = {FLOAT_TABLE(log), COMPLEX_TABLE(log)},
    [UNARY_LOG1P] = {FLOAT_TABLE(log1p)},
    [UNARY_LOG2] = {FLOAT_TABLE(log2), COMPLEX_TABLE(log2)},
    [UNARY_LOG10] = {FLOAT_TABLE(log10), COMPLEX_TABLE(log10)},
    [UNARY_SIN] = {FLOAT_TABLE(sin), COMPLEX_TABLE(sin)},
    [UNARY_COS] = {FLOAT_TABLE(cos), COMPLEX_TABLE(cos)},
    [UNARY_TAN] = {FLOAT_TABLE(tan), COMPLEX_TABLE(tan)},
    [UNARY_ARCSIN] = {FLOAT_TABLE(arcsin), COMPLEX_TABLE(arcsin)},
    [UNARY_ARCCOS] = {FLOAT_TABLE(arccos), COMPLEX_TABLE(arccos)},
    [UNARY_ARCTAN] = {FLOAT_TABLE(arctan), COMPLEX_TABLE(arctan)},
    [UNARY_SINH] = {FLOAT_TABLE(sinh), COMPLEX_TABLE(sinh)},
    [UNARY_COSH] = {FLOAT_TABLE(cosh), COMPLEX_TABLE(cosh)},
    [UNARY_TANH] = {FLOAT_TABLE(tanh), COMPLEX_TABLE(tanh)},
    [UNARY_ARCSINH] = {FLOAT_TABLE(arcsinh), COMPLEX_TABLE(arcsinh)},
    [UNARY_ARCCOSH] = {FLOAT_TABLE(arccosh), COMPLEX_TABLE(arccosh)},
    [UNARY_ARCTANH] = {FLOAT_TABLE(arctanh), COMPLEX_TABLE(arctanh)},
    [UNARY_SIGMOID] = {FLOAT_TABLE(sigmoid)},
    [UNARY_ERF] = {FLOAT_TABLE(erf)},
    [UNARY_ERFINV] = {FLOAT_TABLE(erfinv)},
    [UNARY_FLOOR] = {FLOAT_TABLE(floor)},
    [UNARY_CEIL] = {FLOAT_TABLE(ceil)},
    [UNARY_ROUND] = {FLOAT_TABLE(round)},
    [UNARY_LOGICAL_NOT] = {INT_TABLE(logical_not), FLOAT_TABLE(logical_not), COMPLEX_TABLE(logical_not)},
    [UNARY_BITWISE_INVERT] = {INT_TABLE(bitwise_invert)},
    [UNARY_ISNAN] = {INT_TABLE(isnan), FLOAT_TABLE(isnan), COMPLEX_TABLE(isnan)},
    [UNARY_ISINF] = {INT_TABLE(isinf), FLOAT_TABLE(isinf), COMPLEX_TABLE(isinf)},
    [UNARY_ISFINITE] = {INT_TABLE(isfinite), FLOAT_TABLE(isfinite), COMPLEX_TABLE(isfinite)},
    [UNARY_ISPOSINF] = {INT_TABLE(isposinf), FLOAT_TABLE(isposinf), COMPLEX_TABLE(isposinf)},
    [UNARY_ISNEGINF] = {INT_TABLE(isneginf), FLOAT_TABLE(isneginf), COMPLEX_TABLE(isneginf)},
    [UNARY_CONJUGATE] = {COMPLEX_TABLE(conjugate)},
    [UNARY_REAL] = {COMPLEX_TABLE(real)},
    [UNARY_IMAG] = {INT_TABLE(imag), FLOAT_TABLE(imag), COMPLEX_TABLE(imag)},
    [UNARY_NAN_TO_NUM] = {FLOAT_TABLE(nan_to_num)},
};

bool cpu_unary_supported(int code, mlx_dtype dtype) {
  return code >= 0 && code < UNARY_CODE_COUNT && rows[code][dtype] != NULL;
}

typedef struct {
  unary_row_fn row;
  const char* in;
  char* out;
  size_t in_size, out_size;
  const unary_params* params;
} unary_ctx;

static void unary_rows(void* p, const int64_t* off, const int64_t* st, int64_t n) {
  unary_ctx* c = p;
  c->row(c->in + off[0] * (int64_t)c->in_size, st[0], c->out + off[1] * (int64_t)c->out_size,
         st[1], n, c->params);
}

int cpu_eval_unary(core_node* node, core_array** outputs) {
  core_array *in = node->inputs[0], *out = outputs[0];
  unary_row_fn row = rows[node->op->code][in->dtype];
  if (!row)
    return util_error("%s: not supported for dtype %s", node->op->name, core_dtype_name(in->dtype));
  if (core_array_alloc_contiguous(out)) return 1;
  unary_ctx c = {row, core_array_ptr(in), core_array_ptr(out), core_dtype_size(in->dtype),
                 core_dtype_size(out->dtype), node->params};
  const int64_t* strides[2] = {in->strides, out->strides};
  cpu_for_each_row_parallel(out->shape, out->ndim, 2, strides, unary_rows, &c);
  return 0;
}

/* all_true: a scalar bool, whether every element of a bool array is true. The reduction behind
 * array_equal and allclose. */
static void and_rows(void* p, const int64_t* off, const int64_t* st, int64_t n) {
  bool* acc = ((bool**)p)[0];
  const bool* in = ((const bool**)p)[1] + off[0];
  for (int64_t i = 0; i < n && *acc; i++) *acc = in[i * st[0]];
}

int cpu_eval_all_true(core_node* node, core_array** outputs) {
  core_array *in = node->inputs[0], *out = outputs[0];
  if (in->dtype != MLX_BOOL) return util_error("all_true: expected a bool input");
  if (core_array_alloc_contiguous(out)) return 1;
  bool acc = true;
  const void* ctx[2] = {&acc, core_array_ptr(in)};
  cpu_for_each_row(in->shape, in->ndim, 1, (const int64_t* const[]){in->strides}, and_rows, ctx);
  *(bool*)core_array_ptr(out) = acc;
  return 0;
}
