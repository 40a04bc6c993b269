/* The ternary elementwise kernel: where(condition, x, y) with broadcasting. Selection only
 * moves elements, so one row loop per element size serves every dtype. */
#include "backend/cpu/elementwise.h"
#include "backend/cpu/kernels.h"
#include "util/error.h"

typedef void (*select_row_fn)(const bool* c, int64_t sc, const char* x, int64_t sx, const char* y,
                              int64_t sy, char* o, int64_t so, int64_t n);

#define SELECT_ROW(NAME, T)                                                                  \
  static void NAME(const bool* restrict c, int64_t sc, const char* px, int64_t sx,           \
                   const char* py, int64_t sy, char* po, int64_t so, int64_t n) {            \
    const T* restrict x = (const T*)px;                                                      \
    const T* restrict y = (const T*)py;                                                      \
    T* restrict o = (T*)po;                                                                  \
    if (sc == 1 && sx == 1 && sy == 1 && so == 1) {                                          \
      for (int64_t i = 0; i < n; i++) o[i] = c[i] ? x[i] : y[i];                             \
    } else {                                                                                 \
      for (int64_t i = 0; i < n; i++) o[i * so] = c[i * sc] ? x[i * sx] : y[i * sy];         \
    }                                                                                        \
  }
SELECT_ROW(select_1, uint8_t)
SELECT_ROW(select_2, uint16_t)
SELECT_ROW(select_4, uint32_t)
SELECT_ROW(select_8, uint64_t)

typedef struct {
  select_row_fn row;
  const char *c, *x, *y;
  char* o;
  int64_t size;
} select_ctx;

static void select_rows(void* p, const int64_t* off, const int64_t* st, int64_t n) {
  select_ctx* s = p;
  s->row((const bool*)s->c + off[0], st[0], s->x + off[1] * s->size, st[1], s->y + off[2] * s->size,
         st[2], s->o + off[3] * s->size, st[3], n);
}

/* Inputs: condition (bool), x, y (same dtype as the output); any broadcastable shapes. */
int cpu_eval_select(core_node* node, core_array** outputs) {
  core_array *out = outputs[0];
  size_t size = core_dtype_size(out->dtype);
  select_row_fn row = size == 1 ? select_1 : size == 2 ? select_2 : size == 4 ? select_4
                    : size == 8 ? select_8 : NULL;
  if (!row) return util_error("where: not supported for dtype %s", core_dtype_name(out->dtype));
  if (core_array_alloc_contiguous(out)) return 1;
  int64_t s[3][CORE_MAX_NDIM];
  for (int k = 0; k < 3; k++) {
    const core_array* in = node->inputs[k];
    cpu_broadcast_strides(in->shape, in->strides, in->ndim, out->shape, out->ndim, s[k]);
  }
  select_ctx c = {row, core_array_ptr(node->inputs[0]), core_array_ptr(node->inputs[1]),
                  core_array_ptr(node->inputs[2]), core_array_ptr(out), (int64_t)size};
  const int64_t* strides[4] = {s[0], s[1], s[2], out->strides};
  cpu_for_each_row_parallel(out->shape, out->ndim, 4, strides, select_rows, &c);
  return 0;
}
