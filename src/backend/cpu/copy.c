/* Strided copies (copy.h). */
#include "backend/cpu/copy.h"

#include <stdlib.h>
#include <string.h>

#include "backend/cpu/strided.h"
#include "core/array.h"
#include "util/error.h"

typedef struct {
  char* dst;
  const char* src;
  size_t elem;
} copy_ctx;

static void copy_row(void* p, const int64_t* off, const int64_t* st, int64_t n) {
  copy_ctx* c = p;
  size_t e = c->elem;
  char* d = c->dst + off[0] * (int64_t)e;
  const char* s = c->src + off[1] * (int64_t)e;
  if (st[0] == 1 && st[1] == 1) {
    memcpy(d, s, (size_t)n * e);
    return;
  }
  int64_t ds = st[0] * (int64_t)e, ss = st[1] * (int64_t)e;
  switch (e) {
    case 1: for (int64_t i = 0; i < n; i++) d[i * ds] = s[i * ss]; break;
    case 2: for (int64_t i = 0; i < n; i++) memcpy(d + i * ds, s + i * ss, 2); break;
    case 4: for (int64_t i = 0; i < n; i++) memcpy(d + i * ds, s + i * ss, 4); break;
    case 8: for (int64_t i = 0; i < n; i++) memcpy(d + i * ds, s + i * ss, 8); break;
    default: for (int64_t i = 0; i < n; i++) memcpy(d + i * ds, s + i * ss, e); break;
  }
}

void cpu_copy_general(void* dst, const int64_t* dst_strides, const void* src,
                      const int64_t* src_strides, const int* shape, int ndim, size_t elem_size) {
  copy_ctx c = {dst, src, elem_size};
  const int64_t* strides[2] = {dst_strides, src_strides};
  cpu_for_each_row(shape, ndim, 2, strides, copy_row, &c);
}

void cpu_copy_strided(void* dst, const void* src, const int* shape, const int64_t* src_strides,
                      int ndim, size_t elem_size) {
  int64_t dst_strides[CORE_MAX_NDIM];
  core_row_strides(shape, ndim, dst_strides);
  cpu_copy_general(dst, dst_strides, src, src_strides, shape, ndim, elem_size);
}

const void* cpu_dense_data(const core_array* a, void** owned) {
  if (a->row_contiguous || a->size == 0) return core_array_ptr(a);
  size_t elem = core_dtype_size(a->dtype);
  *owned = malloc(a->size * elem);
  if (!*owned) {
    util_error("out of memory");
    return NULL;
  }
  cpu_copy_strided(*owned, core_array_ptr(a), a->shape, a->strides, a->ndim, elem);
  return *owned;
}
