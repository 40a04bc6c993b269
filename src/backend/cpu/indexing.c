/* Indexing kernels: take along an axis (a block copy per index), take_along_axis and
 * put_along_axis (an element per index). Indices are read once into int64, wrapped when
 * negative and checked: an index outside the axis fails the evaluation with a message. */
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/convert.h"
#include "backend/cpu/copy.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/strided.h"
#include "ops/shape_params.h"
#include "util/error.h"

/* The indices in row-major order as int64 in [0, n); NULL (error reported) when one is out of
 * range or memory runs out. The caller frees. */
static int64_t* load_indices(const core_array* ind, int n, const char* op) {
  int64_t* idx = malloc((ind->size ? ind->size : 1) * sizeof *idx);
  if (!idx) {
    util_error("out of memory");
    return NULL;
  }
  cpu_convert(idx, MLX_INT64, core_array_ptr(ind), ind->dtype, ind->shape, ind->strides, ind->ndim);
  for (size_t i = 0; i < ind->size; i++) {
    int64_t v = idx[i] < 0 ? idx[i] + n : idx[i];
    if (v < 0 || v >= n) {
      util_error("%s: index %lld is out of bounds for an axis of size %d", op, (long long)idx[i], n);
      free(idx);
      return NULL;
    }
    idx[i] = v;
  }
  return idx;
}

/* Element offset of the linear row-major position `pos` of shape in a strided layout. */
static int64_t strided_offset(int64_t pos, const int* shape, const int64_t* strides, int ndim) {
  int64_t off = 0;
  for (int i = ndim - 1; i >= 0; i--) {
    off += (pos % shape[i]) * strides[i];
    pos /= shape[i];
  }
  return off;
}

static bool is_row_major(const int* shape, const int64_t* strides, int ndim) {
  int64_t expected = 1;
  for (int i = ndim - 1; i >= 0; i--) {
    if (shape[i] == 1) continue;
    if (strides[i] != expected) return false;
    expected *= shape[i];
  }
  return true;
}

/* out (outer, indices, inner) = a[outer, idx, inner] */
int cpu_eval_take(core_node* node, core_array** outputs) {
  const core_array *a = node->inputs[0], *ind = node->inputs[1];
  core_array* out = outputs[0];
  int axis = ((const axis_params*)node->params)->axis;
  if (core_array_alloc_contiguous(out)) return 1;
  if (!out->size) return 0;
  int64_t* idx = load_indices(ind, a->shape[axis], "take");
  if (!idx) return 1;
  size_t elem = core_dtype_size(a->dtype);
  const int* inner_shape = a->shape + axis + 1;
  const int64_t* inner_strides = a->strides + axis + 1;
  int inner_ndim = a->ndim - axis - 1;
  int64_t inner = 1, outer = 1;
  for (int i = 0; i < inner_ndim; i++) inner *= inner_shape[i];
  for (int i = 0; i < axis; i++) outer *= a->shape[i];
  bool dense = is_row_major(inner_shape, inner_strides, inner_ndim);
  const char* src = core_array_ptr(a);
  char* dst = core_array_ptr(out);
  size_t block = (size_t)inner * elem;
  for (int64_t o = 0; o < outer; o++) {
    int64_t base = strided_offset(o, a->shape, a->strides, axis);
    for (size_t j = 0; j < ind->size; j++, dst += block) {
      const char* from = src + (base + idx[j] * a->strides[axis]) * (int64_t)elem;
      if (dense) memcpy(dst, from, block);
      else cpu_copy_strided(dst, from, inner_shape, inner_strides, inner_ndim, elem);
    }
  }
  free(idx);
  return 0;
}

typedef struct {
  char* indexed;        /* the array indexed along the axis (a, or the output for put) */
  char* other;          /* the output (take) or the values (put) */
  const int64_t* idx;   /* row-major over the iteration shape */
  int64_t axis_stride;
  size_t elem;
  bool put;
} along_ctx;

static void along_row(void* p, const int64_t* off, const int64_t* st, int64_t n) {
  along_ctx* c = p;
  int64_t e = (int64_t)c->elem;
  for (int64_t i = 0; i < n; i++) {
    char* x = c->indexed + (off[1] + i * st[1] + c->idx[off[2] + i * st[2]] * c->axis_stride) * e;
    char* y = c->other + (off[0] + i * st[0]) * e;
    if (c->put) memcpy(x, y, c->elem);
    else memcpy(y, x, c->elem);
  }
}

/* Walks `shape` (the indices' broadcast shape): `other` element-wise, `indexed` at the index
 * along `axis` and at the position (or 0 where it is broadcast) along the other dims. */
static int along_axis(core_array* indexed, const core_array* ind, char* other, const int64_t* other_strides,
                      const int* shape, int axis, bool put, const char* op) {
  int ndim = indexed->ndim;
  size_t count = 1;
  for (int i = 0; i < ndim; i++) count *= (size_t)shape[i];
  if (!count) return 0;
  int64_t* idx = load_indices(ind, indexed->shape[axis], op);
  if (!idx) return 1;
  int64_t indexed_strides[CORE_MAX_NDIM], idx_strides[CORE_MAX_NDIM];
  for (int i = 0; i < ndim; i++)
    indexed_strides[i] = i == axis || (indexed->shape[i] == 1 && shape[i] != 1) ? 0 : indexed->strides[i];
  core_row_strides(shape, ndim, idx_strides);
  along_ctx c = {core_array_ptr(indexed), other, idx, indexed->strides[axis], core_dtype_size(indexed->dtype), put};
  const int64_t* strides[3] = {other_strides, indexed_strides, idx_strides};
  cpu_for_each_row(shape, ndim, 3, strides, along_row, &c);
  free(idx);
  return 0;
}

int cpu_eval_take_along_axis(core_node* node, core_array** outputs) {
  core_array* out = outputs[0];
  if (core_array_alloc_contiguous(out)) return 1;
  int axis = ((const axis_params*)node->params)->axis;
  return along_axis(node->inputs[0], node->inputs[1], core_array_ptr(out), out->strides, out->shape, axis, false,
                    "take_along_axis");
}

int cpu_eval_put_along_axis(core_node* node, core_array** outputs) {
  const core_array *a = node->inputs[0], *ind = node->inputs[1], *values = node->inputs[2];
  core_array* out = outputs[0];
  if (core_array_alloc_contiguous(out)) return 1;
  size_t elem = core_dtype_size(a->dtype);
  if (out->size) cpu_copy_strided(core_array_ptr(out), core_array_ptr(a), a->shape, a->strides, a->ndim, elem);
  int axis = ((const axis_params*)node->params)->axis;
  return along_axis(out, ind, core_array_ptr(values), values->strides, values->shape, axis, true,
                    "put_along_axis");
}
