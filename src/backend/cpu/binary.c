/* Binary elementwise kernels with broadcasting: one row loop per (op, dtype), generated from
 * the expression tables below. Inputs arrive already cast to a common dtype by the op
 * constructor; the output dtype is the node's (bool for comparisons).
 * Signed integer arithmetic wraps (computed in the unsigned type) instead of being undefined. */
#include <complex.h>
#include <math.h>

#include "backend/cpu/kernels.h"
#include "backend/cpu/strided.h"
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

/* A row loop over native C types T (stored) computed as expression EXPR(x, y) with wrap type U. */
#define NATIVE_ROW(NAME, T, U, OUT_T, EXPR)                                                   \
  static void NAME(const char* pa, int64_t sa, const char* pb, int64_t sb, char* po, int64_t so, \
                   int64_t n) {                                                                \
    typedef U wrap_t;                                                                          \
    (void)sizeof(wrap_t);                                                                      \
    const T* a = (const T*)pa;                                                                 \
    const T* b = (const T*)pb;                                                                 \
    OUT_T* o = (OUT_T*)po;                                                                     \
    if (sa == 1 && sb == 1 && so == 1) {                                                       \
      for (int64_t i = 0; i < n; i++) {                                                        \
        T x = a[i], y = b[i];                                                                  \
        o[i] = (OUT_T)(EXPR);                                                                  \
      }                                                                                        \
    } else if (sa == 1 && sb == 0 && so == 1) {                                                \
      T y = b[0];                                                                              \
      for (int64_t i = 0; i < n; i++) {                                                        \
        T x = a[i];                                                                            \
        o[i] = (OUT_T)(EXPR);                                                                  \
      }                                                                                        \
    } else {                                                                                   \
      for (int64_t i = 0; i < n; i++) {                                                        \
        T x = a[i * sa], y = b[i * sb];                                                        \
        o[i * so] = (OUT_T)(EXPR);                                                             \
      }                                                                                        \
    }                                                                                          \
  }

/* The same for float16/bfloat16 storage: computed in float, rounded on store. */
#define HALF_ROW(NAME, LOAD, STORE, EXPR)                                                     \
  static void NAME(const char* pa, int64_t sa, const char* pb, int64_t sb, char* po, int64_t so, \
                   int64_t n) {                                                                \
    const uint16_t* a = (const uint16_t*)pa;                                                   \
    const uint16_t* b = (const uint16_t*)pb;                                                   \
    uint16_t* o = (uint16_t*)po;                                                               \
    for (int64_t i = 0; i < n; i++) {                                                          \
      float x = LOAD(a[i * sa]), y = LOAD(b[i * sb]);                                          \
      o[i * so] = STORE(EXPR);                                                                 \
    }                                                                                          \
  }

/* Rows for every dtype of one op. FLOAT_EXPR serves floats and complex; INT_EXPR integers and bool. */
#define ALL_DTYPE_ROWS(OP, INT_EXPR, FLOAT_EXPR)                                 \
  NATIVE_ROW(OP##_bool, bool, unsigned, bool, INT_EXPR)                         \
  NATIVE_ROW(OP##_u8, uint8_t, unsigned, uint8_t, INT_EXPR)                      \
  NATIVE_ROW(OP##_u16, uint16_t, unsigned, uint16_t, INT_EXPR)                  \
  NATIVE_ROW(OP##_u32, uint32_t, uint32_t, uint32_t, INT_EXPR)                  \
  NATIVE_ROW(OP##_u64, uint64_t, uint64_t, uint64_t, INT_EXPR)                  \
  NATIVE_ROW(OP##_i8, int8_t, unsigned, int8_t, INT_EXPR)                        \
  NATIVE_ROW(OP##_i16, int16_t, unsigned, int16_t, INT_EXPR)                    \
  NATIVE_ROW(OP##_i32, int32_t, uint32_t, int32_t, INT_EXPR)                    \
  NATIVE_ROW(OP##_i64, int64_t, uint64_t, int64_t, INT_EXPR)                    \
  NATIVE_ROW(OP##_f32, float, float, float, FLOAT_EXPR)                         \
  NATIVE_ROW(OP##_f64, double, double, double, FLOAT_EXPR)                      \
  NATIVE_ROW(OP##_c64, float _Complex, float _Complex, float _Complex, FLOAT_EXPR) \
  HALF_ROW(OP##_f16, half_f16_to_f32, half_f32_to_f16, FLOAT_EXPR)              \
  HALF_ROW(OP##_bf16, half_bf16_to_f32, half_f32_to_bf16, FLOAT_EXPR)

#define ALL_DTYPE_TABLE(OP)                                                                 \
  {[MLX_BOOL] = OP##_bool, [MLX_UINT8] = OP##_u8,   [MLX_UINT16] = OP##_u16,               \
   [MLX_UINT32] = OP##_u32, [MLX_UINT64] = OP##_u64, [MLX_INT8] = OP##_i8,                  \
   [MLX_INT16] = OP##_i16,  [MLX_INT32] = OP##_i32,  [MLX_INT64] = OP##_i64,                \
   [MLX_FLOAT32] = OP##_f32, [MLX_FLOAT64] = OP##_f64, [MLX_COMPLEX64] = OP##_c64,          \
   [MLX_FLOAT16] = OP##_f16, [MLX_BFLOAT16] = OP##_bf16}

/* Integer wrap-around: wrap_t is the row's unsigned type U (see NATIVE_ROW). */
#define WRAP(op) ((wrap_t)x op (wrap_t)y)

ALL_DTYPE_ROWS(add, WRAP(+), x + y)
ALL_DTYPE_ROWS(subtract, WRAP(-), x - y)
ALL_DTYPE_ROWS(multiply, WRAP(*), x * y)
/* Integer inputs of divide are cast to float by the constructor, so only inexact rows exist. */
NATIVE_ROW(divide_f32, float, float, float, x / y)
NATIVE_ROW(divide_f64, double, double, double, x / y)
NATIVE_ROW(divide_c64, float _Complex, float _Complex, float _Complex, x / y)
HALF_ROW(divide_f16, half_f16_to_f32, half_f32_to_f16, x / y)
HALF_ROW(divide_bf16, half_bf16_to_f32, half_f32_to_bf16, x / y)

static const binary_row_fn rows[BINARY_CODE_COUNT][CORE_DTYPE_COUNT] = {
    [BINARY_ADD] = ALL_DTYPE_TABLE(add),
    [BINARY_SUBTRACT] = ALL_DTYPE_TABLE(subtract),
    [BINARY_MULTIPLY] = ALL_DTYPE_TABLE(multiply),
    [BINARY_DIVIDE] = {[MLX_FLOAT32] = divide_f32, [MLX_FLOAT64] = divide_f64,
                       [MLX_COMPLEX64] = divide_c64, [MLX_FLOAT16] = divide_f16,
                       [MLX_BFLOAT16] = divide_bf16},
};

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

int cpu_eval_binary(core_node* node, core_array** outputs) {
  core_array *a = node->inputs[0], *b = node->inputs[1], *out = outputs[0];
  binary_row_fn row = rows[node->op->code][a->dtype];
  if (!row) return util_error("%s is not supported for dtype %s", node->op->name, core_dtype_name(a->dtype));
  if (core_array_alloc_contiguous(out)) return 1;
  int64_t sa[CORE_MAX_NDIM], sb[CORE_MAX_NDIM];
  cpu_broadcast_strides(a->shape, a->strides, a->ndim, out->shape, out->ndim, sa);
  cpu_broadcast_strides(b->shape, b->strides, b->ndim, out->shape, out->ndim, sb);
  binary_ctx c = {row, core_array_ptr(a), core_array_ptr(b), core_array_ptr(out),
                  core_dtype_size(a->dtype), core_dtype_size(out->dtype)};
  const int64_t* strides[3] = {sa, sb, out->strides};
  cpu_for_each_row(out->shape, out->ndim, 3, strides, binary_rows, &c);
  return 0;
}
