/* Binary elementwise kernels with broadcasting: one row loop per (op, dtype), generated from
 * the expression tables below, run over the thread pool. Inputs arrive already cast to a common
 * dtype by the op constructor; the output dtype is the node's (bool for comparisons).
 * Integer arithmetic wraps (computed in an unsigned type) instead of being undefined; integer
 * division and remainder by zero give 0, and shifts by a negative amount or by the type's width
 * or more give 0 (left) or the sign fill (right), where C would trap or be undefined. */
#include <tgmath.h>

#include "backend/cpu/elementwise.h"
#include "backend/cpu/kernels.h"
#include "core/half.h"
#include "ops/codes.h"
#include "util/error.h"

/* Bool rows reuse the integer expressions and collapse their result to a truth value on store
 * (true + true = true, as MLX); GCC warns about exactly that. */
#pragma GCC diagnostic ignored "-Wpragmas"
#pragma GCC diagnostic ignored "-Wunknown-warning-option"
#pragma GCC diagnostic ignored "-Wint-in-bool-context"

typedef void (*binary_row_fn)(const char* a, int64_t sa, const char* b, int64_t sb, char* o,
                              int64_t so, int64_t n);

/* Integer helpers: T values are widened to 64 bits, the result is truncated back on store,
 * which is exact (wrap-around arithmetic is compatible with truncation). */
static inline int64_t floordiv_s(int64_t x, int64_t y) {
  if (y == 0) return 0;
  if (y == -1) return (int64_t)(0 - (uint64_t)x); /* INT64_MIN / -1 traps in C */
  int64_t q = x / y;
  return (x % y != 0 && ((x < 0) != (y < 0))) ? q - 1 : q;
}
static inline uint64_t floordiv_u(uint64_t x, uint64_t y) { return y ? x / y : 0; }
/* Python's remainder: the sign follows the divisor. */
static inline int64_t remainder_s(int64_t x, int64_t y) {
  if (y == 0 || y == -1) return 0;
  int64_t r = x % y;
  return (r != 0 && ((r < 0) != (y < 0))) ? r + y : r;
}
static inline uint64_t remainder_u(uint64_t x, uint64_t y) { return y ? x % y : 0; }
/* Integer power by squaring. A negative exponent gives the truncated 1 / x^-y (0 unless |x| = 1). */
static inline uint64_t power_u(uint64_t base, uint64_t e) {
  uint64_t r = 1;
  for (; e; e >>= 1, base *= base)
    if (e & 1) r *= base;
  return r;
}
static inline int64_t power_s(int64_t x, int64_t y) {
  if (y < 0) return x == 1 ? 1 : x == -1 ? ((y & 1) ? -1 : 1) : 0;
  return (int64_t)power_u((uint64_t)x, (uint64_t)y);
}
static inline uint64_t shift_left(uint64_t x, int64_t y, int bits) {
  return (y < 0 || y >= bits) ? 0 : x << y;
}
static inline uint64_t shift_right_u(uint64_t x, int64_t y, int bits) {
  return (y < 0 || y >= bits) ? 0 : x >> y;
}
static inline int64_t shift_right_s(int64_t x, int64_t y, int bits) {
  return (y < 0 || y >= bits) ? (x < 0 ? -1 : 0) : x >> y;
}
/* Python's remainder for floats: fmod, moved to the divisor's sign. */
static inline float remainder_f(float x, float y) {
  float r = fmodf(x, y);
  return (r != 0 && ((r < 0) != (y < 0))) ? r + y : r;
}
static inline double remainder_d(double x, double y) {
  double r = fmod(x, y);
  return (r != 0 && ((r < 0) != (y < 0))) ? r + y : r;
}
#define REMAINDER_FLOAT(x, y) _Generic((x), float: remainder_f, double: remainder_d)(x, y)
/* log(exp(x) + exp(y)) without overflow; infinities pass through. */
#define LOGADDEXP(x, y)                                                           \
  (isnan(x) || isnan(y) ? (x) + (y)                                               \
   : (fmax(x, y) == INFINITY || fmin(x, y) == -INFINITY) ? fmax(x, y)             \
                                                        : fmax(x, y) + log1p(exp(fmin(x, y) - fmax(x, y))))
/* MLX's NaN-propagating maximum and minimum. */
#define MAXIMUM(x, y) (isnan(y) ? (y) : isnan(x) ? (x) : (x) > (y) ? (x) : (y))
#define MINIMUM(x, y) (isnan(y) ? (y) : isnan(x) ? (x) : (x) < (y) ? (x) : (y))

/* A row loop over native C types T computed as EXPR(x, y); in EXPR, elem_t is T and wrap_t the
 * unsigned type U that integer arithmetic wraps in. The dense and scalar-broadcast cases get
 * their own loops so the compiler vectorises them. */
#define NATIVE_ROW(NAME, T, U, OUT_T, EXPR)                                                  \
  static void NAME(const char* pa, int64_t sa, const char* pb, int64_t sb, char* po, int64_t so, \
                   int64_t n) {                                                               \
    typedef T elem_t;                                                                         \
    typedef U wrap_t;                                                                         \
    (void)sizeof(elem_t);                                                                     \
    (void)sizeof(wrap_t);                                                                     \
    const T* restrict a = (const T*)pa;                                                       \
    const T* restrict b = (const T*)pb;                                                       \
    OUT_T* restrict o = (OUT_T*)po;                                                           \
    if (sa == 1 && sb == 1 && so == 1) {                                                      \
      for (int64_t i = 0; i < n; i++) {                                                       \
        T x = a[i], y = b[i];                                                                 \
        o[i] = (OUT_T)(EXPR);                                                                 \
      }                                                                                       \
    } else if (sa == 1 && sb == 0 && so == 1) {                                               \
      const T y = b[0];                                                                       \
      for (int64_t i = 0; i < n; i++) {                                                       \
        T x = a[i];                                                                           \
        o[i] = (OUT_T)(EXPR);                                                                 \
      }                                                                                       \
    } else if (sa == 0 && sb == 1 && so == 1) {                                               \
      const T x = a[0];                                                                       \
      for (int64_t i = 0; i < n; i++) {                                                       \
        T y = b[i];                                                                           \
        o[i] = (OUT_T)(EXPR);                                                                 \
      }                                                                                       \
    } else {                                                                                  \
      for (int64_t i = 0; i < n; i++) {                                                       \
        T x = a[i * sa], y = b[i * sb];                                                       \
        o[i * so] = (OUT_T)(EXPR);                                                            \
      }                                                                                       \
    }                                                                                         \
  }

/* The same for float16/bfloat16 storage: computed in float, stored through STORE. */
#define HALF_ROW(NAME, LOAD, OUT_T, STORE, EXPR)                                             \
  static void NAME(const char* pa, int64_t sa, const char* pb, int64_t sb, char* po, int64_t so, \
                   int64_t n) {                                                               \
    const uint16_t* a = (const uint16_t*)pa;                                                  \
    const uint16_t* b = (const uint16_t*)pb;                                                  \
    OUT_T* o = (OUT_T*)po;                                                                    \
    for (int64_t i = 0; i < n; i++) {                                                         \
      float x = LOAD(a[i * sa]), y = LOAD(b[i * sb]);                                         \
      o[i * so] = STORE(EXPR);                                                                \
    }                                                                                         \
  }
#define STORE_BOOL(v) ((bool)(v))

/* Row families. SEXPR serves signed integers, UEXPR unsigned ones and bool, FEXPR real floats
 * (float/double/half through <tgmath.h>), CEXPR complex64. OUT picks the output: SAME or BOOL. */
#define OUT_SAME(T) T
#define OUT_BOOL(T) bool
#define HSTORE_SAME_f16 half_f32_to_f16
#define HSTORE_SAME_bf16 half_f32_to_bf16
#define HSTORE_BOOL_f16 STORE_BOOL
#define HSTORE_BOOL_bf16 STORE_BOOL
#define HOUT_SAME uint16_t
#define HOUT_BOOL bool

#define INT_ROWS(OP, OUT, SEXPR, UEXPR)                                     \
  NATIVE_ROW(OP##_bool, bool, unsigned, OUT_##OUT(bool), UEXPR)            \
  NATIVE_ROW(OP##_u8, uint8_t, unsigned, OUT_##OUT(uint8_t), UEXPR)        \
  NATIVE_ROW(OP##_u16, uint16_t, unsigned, OUT_##OUT(uint16_t), UEXPR)     \
  NATIVE_ROW(OP##_u32, uint32_t, uint32_t, OUT_##OUT(uint32_t), UEXPR)     \
  NATIVE_ROW(OP##_u64, uint64_t, uint64_t, OUT_##OUT(uint64_t), UEXPR)     \
  NATIVE_ROW(OP##_i8, int8_t, unsigned, OUT_##OUT(int8_t), SEXPR)          \
  NATIVE_ROW(OP##_i16, int16_t, unsigned, OUT_##OUT(int16_t), SEXPR)       \
  NATIVE_ROW(OP##_i32, int32_t, uint32_t, OUT_##OUT(int32_t), SEXPR)       \
  NATIVE_ROW(OP##_i64, int64_t, uint64_t, OUT_##OUT(int64_t), SEXPR)
#define FLOAT_ROWS(OP, OUT, FEXPR)                                          \
  NATIVE_ROW(OP##_f32, float, float, OUT_##OUT(float), FEXPR)              \
  NATIVE_ROW(OP##_f64, double, double, OUT_##OUT(double), FEXPR)           \
  HALF_ROW(OP##_f16, half_f16_to_f32, HOUT_##OUT, HSTORE_##OUT##_f16, FEXPR) \
  HALF_ROW(OP##_bf16, half_bf16_to_f32, HOUT_##OUT, HSTORE_##OUT##_bf16, FEXPR)
#define COMPLEX_ROW(OP, OUT, CEXPR) \
  NATIVE_ROW(OP##_c64, float _Complex, float _Complex, OUT_##OUT(float _Complex), CEXPR)

#define INT_TABLE(OP)                                                                        \
  [MLX_BOOL] = OP##_bool, [MLX_UINT8] = OP##_u8, [MLX_UINT16] = OP##_u16,                   \
  [MLX_UINT32] = OP##_u32, [MLX_UINT64] = OP##_u64, [MLX_INT8] = OP##_i8,                    \
  [MLX_INT16] = OP##_i16, [MLX_INT32] = OP##_i32, [MLX_INT64] = OP##_i64
#define FLOAT_TABLE(OP)                                                                      \
  [MLX_FLOAT32] = OP##_f32, [MLX_FLOAT64] = OP##_f64, [MLX_FLOAT16] = OP##_f16,             \
  [MLX_BFLOAT16] = OP##_bf16
#define COMPLEX_TABLE(OP) [MLX_COMPLEX64] = OP##_c64

/* Integer wrap-around: wrap_t is the row's unsigned type U (see NATIVE_ROW). */
#define WRAP(op) ((wrap_t)x op (wrap_t)y)
#define BITS ((int)(8 * sizeof(elem_t)))

/* Arithmetic. */
#define ARITH(OP, INT_EXPR, FLOAT_EXPR) \
  INT_ROWS(OP, SAME, INT_EXPR, INT_EXPR) FLOAT_ROWS(OP, SAME, FLOAT_EXPR) COMPLEX_ROW(OP, SAME, FLOAT_EXPR)
ARITH(add, WRAP(+), x + y)
ARITH(subtract, WRAP(-), x - y)
ARITH(multiply, WRAP(*), x * y)
/* Integer inputs of divide, arctan2 and logaddexp are cast to float by the constructor. */
FLOAT_ROWS(divide, SAME, x / y)
COMPLEX_ROW(divide, SAME, x / y)
INT_ROWS(floor_divide, SAME, floordiv_s(x, y), floordiv_u(x, y))
FLOAT_ROWS(floor_divide, SAME, floor(x / y))
INT_ROWS(remainder, SAME, remainder_s(x, y), remainder_u(x, y))
FLOAT_ROWS(remainder, SAME, REMAINDER_FLOAT(x, y))
INT_ROWS(power, SAME, power_s(x, y), power_u(x, y))
FLOAT_ROWS(power, SAME, pow(x, y))
COMPLEX_ROW(power, SAME, cpow(x, y))
INT_ROWS(maximum, SAME, x > y ? x : y, x > y ? x : y)
FLOAT_ROWS(maximum, SAME, MAXIMUM(x, y))
INT_ROWS(minimum, SAME, x < y ? x : y, x < y ? x : y)
FLOAT_ROWS(minimum, SAME, MINIMUM(x, y))
FLOAT_ROWS(arctan2, SAME, atan2(x, y))
FLOAT_ROWS(logaddexp, SAME, LOGADDEXP(x, y))

/* Comparisons (bool out). Complex supports only (in)equality. */
#define COMPARE(OP, EXPR) INT_ROWS(OP, BOOL, EXPR, EXPR) FLOAT_ROWS(OP, BOOL, EXPR)
COMPARE(equal, x == y)
COMPLEX_ROW(equal, BOOL, x == y)
COMPARE(not_equal, x != y)
COMPLEX_ROW(not_equal, BOOL, x != y)
COMPARE(less, x < y)
COMPARE(less_equal, x <= y)
COMPARE(greater, x > y)
COMPARE(greater_equal, x >= y)
/* equal, where two NaNs count as equal (array_equal with equal_nan). */
FLOAT_ROWS(nan_equal, BOOL, x == y || (isnan(x) && isnan(y)))
COMPLEX_ROW(nan_equal, BOOL,
            x == y || ((isnan(crealf(x)) || isnan(cimagf(x))) && (isnan(crealf(y)) || isnan(cimagf(y)))))

/* Logical (inputs cast to bool by the constructor) and bitwise (integers and bool only). */
NATIVE_ROW(logical_and_bool, bool, unsigned, bool, x && y)
NATIVE_ROW(logical_or_bool, bool, unsigned, bool, x || y)
INT_ROWS(bitwise_and, SAME, x & y, x & y)
INT_ROWS(bitwise_or, SAME, x | y, x | y)
INT_ROWS(bitwise_xor, SAME, x ^ y, x ^ y)
/* Shift rows exist for integers; bool inputs are cast to uint8 by the constructor. */
INT_ROWS(left_shift, SAME, shift_left((uint64_t)(int64_t)x, (int64_t)y, BITS),
         shift_left(x, (int64_t)y, BITS))
INT_ROWS(right_shift, SAME, shift_right_s(x, (int64_t)y, BITS), shift_right_u(x, (int64_t)y, BITS))

static const binary_row_fn rows[BINARY_CODE_COUNT][CORE_DTYPE_COUNT] = {
    [BINARY_ADD] = {INT_TABLE(add), FLOAT_TABLE(add), COMPLEX_TABLE(add)},
    [BINARY_SUBTRACT] = {INT_TABLE(subtract), FLOAT_TABLE(subtract), COMPLEX_TABLE(subtract)},
    [BINARY_MULTIPLY] = {INT_TABLE(multiply), FLOAT_TABLE(multiply), COMPLEX_TABLE(multiply)},
    [BINARY_DIVIDE] = {FLOAT_TABLE(divide), COMPLEX_TABLE(divide)},
    [BINARY_FLOOR_DIVIDE] = {INT_TABLE(floor_divide), FLOAT_TABLE(floor_divide)},
    [BINARY_REMAINDER] = {INT_TABLE(remainder), FLOAT_TABLE(remainder)},
    [BINARY_POWER] = {INT_TABLE(power), FLOAT_TABLE(power), COMPLEX_TABLE(power)},
    [BINARY_MAXIMUM] = {INT_TABLE(maximum), FLOAT_TABLE(maximum)},
    [BINARY_MINIMUM] = {INT_TABLE(minimum), FLOAT_TABLE(minimum)},
    [BINARY_ARCTAN2] = {FLOAT_TABLE(arctan2)},
    [BINARY_LOGADDEXP] = {FLOAT_TABLE(logaddexp)},
    [BINARY_EQUAL] = {INT_TABLE(equal), FLOAT_TABLE(equal), COMPLEX_TABLE(equal)},
    [BINARY_NOT_EQUAL] = {INT_TABLE(not_equal), FLOAT_TABLE(not_equal), COMPLEX_TABLE(not_equal)},
    [BINARY_LESS] = {INT_TABLE(less), FLOAT_TABLE(less)},
    [BINARY_LESS_EQUAL] = {INT_TABLE(less_equal), FLOAT_TABLE(less_equal)},
    [BINARY_GREATER] = {INT_TABLE(greater), FLOAT_TABLE(greater)},
    [BINARY_GREATER_EQUAL] = {INT_TABLE(greater_equal), FLOAT_TABLE(greater_equal)},
    [BINARY_LOGICAL_AND] = {[MLX_BOOL] = logical_and_bool},
    [BINARY_LOGICAL_OR] = {[MLX_BOOL] = logical_or_bool},
    [BINARY_BITWISE_AND] = {INT_TABLE(bitwise_and)},
    [BINARY_BITWISE_OR] = {INT_TABLE(bitwise_or)},
    [BINARY_BITWISE_XOR] = {INT_TABLE(bitwise_xor)},
    [BINARY_LEFT_SHIFT] = {INT_TABLE(left_shift)},
    [BINARY_RIGHT_SHIFT] = {INT_TABLE(right_shift)},
    [BINARY_NAN_EQUAL] = {FLOAT_TABLE(nan_equal), COMPLEX_TABLE(nan_equal)},
};

bool cpu_binary_supported(int code, mlx_dtype dtype) {
  return code >= 0 && code < BINARY_CODE_COUNT && rows[code][dtype] != NULL;
}

typedef struct {
  binary_row_fn row;
  const char *a, *b;
  char* o;
  size_t in_size, out_size;
} binary_ctx;

static void binary_rows(void* p, const int64_t* off, const int64_t* st, int64_t n) {
  binary_ctx* c = p;
  c->row(c->a + off[0] * (int64_t)c->in_size, st[0], c->b + off[1] * (int64_t)c->in_size, st[1],
         c->o + off[2] * (int64_t)c->out_size, st[2], n);
}

/* out = op(a, b) with broadcasting; out has its dtype and shape and no data yet. */
static int binary_eval(int code, const char* name, const core_array* a, const core_array* b,
                       core_array* out) {
  binary_row_fn row = rows[code][a->dtype];
  if (!row) return util_error("%s: not supported for dtype %s", name, core_dtype_name(a->dtype));
  if (core_array_alloc_contiguous(out)) return 1;
  int64_t sa[CORE_MAX_NDIM], sb[CORE_MAX_NDIM];
  cpu_broadcast_strides(a->shape, a->strides, a->ndim, out->shape, out->ndim, sa);
  cpu_broadcast_strides(b->shape, b->strides, b->ndim, out->shape, out->ndim, sb);
  binary_ctx c = {row, core_array_ptr(a), core_array_ptr(b), core_array_ptr(out),
                  core_dtype_size(a->dtype), core_dtype_size(out->dtype)};
  const int64_t* strides[3] = {sa, sb, out->strides};
  cpu_for_each_row_parallel(out->shape, out->ndim, 3, strides, binary_rows, &c);
  return 0;
}

int cpu_eval_binary(core_node* node, core_array** outputs) {
  return binary_eval(node->op->code, node->op->name, node->inputs[0], node->inputs[1], outputs[0]);
}

/* divmod: outputs (floor_divide(a, b), remainder(a, b)). */
int cpu_eval_divmod(core_node* node, core_array** outputs) {
  core_array *a = node->inputs[0], *b = node->inputs[1];
  if (binary_eval(BINARY_FLOOR_DIVIDE, "divmod", a, b, outputs[0])) return 1;
  return binary_eval(BINARY_REMAINDER, "divmod", a, b, outputs[1]);
}
