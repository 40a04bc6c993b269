/* Shape kernels: concatenate, pad and slice_update copy block-wise into a new row-major array
 * (one strided copy per input into a sub-view of the output); as_strided, diagonal and view
 * are views of their input's buffer. */
#include <string.h>

#include "backend/cpu/convert.h"
#include "backend/cpu/copy.h"
#include "backend/cpu/kernels.h"
#include "ops/layout_params.h"
#include "ops/shape_params.h"

/* Element offset of a sub-view of `a` starting at index `start` (one entry per dim). */
static int64_t offset_at(const core_array* a, const int* start) {
  int64_t off = 0;
  for (int i = 0; i < a->ndim; i++) off += (int64_t)start[i] * a->strides[i];
  return off;
}

static char* element(const core_array* a, int64_t offset) {
  return (char*)core_array_ptr(a) + offset * (int64_t)core_dtype_size(a->dtype);
}

/* Fills n elements at dst with the element at value, doubling the filled prefix each step. */
static void fill(char* dst, size_t n, const void* value, size_t elem) {
  if (n == 0) return;
  memcpy(dst, value, elem);
  for (size_t done = 1; done < n;) {
    size_t k = done < n - done ? done : n - done;
    memcpy(dst + done * elem, dst, k * elem);
    done += k;
  }
}

int cpu_eval_concatenate(core_node* node, core_array** outputs) {
  core_array* out = outputs[0];
  int axis = ((const axis_params*)node->params)->axis;
  if (core_array_alloc_contiguous(out)) return 1;
  int64_t at = 0;
  for (int k = 0; k < node->n_inputs; k++) {
    const core_array* in = node->inputs[k];
    if (in->size)
      cpu_copy_general(element(out, at * out->strides[axis]), out->strides, core_array_ptr(in), in->strides,
                       in->shape, in->ndim, core_dtype_size(in->dtype));
    at += in->shape[axis];
  }
  return 0;
}

/* Edge padding, one axis after the other: along axis d the pads copy the first (last) interior
 * slice with a zero stride, over the full extent of earlier axes (already padded) and the
 * interior of later ones (padded in later steps). */
static void pad_edges(core_array* out, const core_array* in, const int* low) {
  size_t elem = core_dtype_size(out->dtype);
  int shape[CORE_MAX_NDIM], start[CORE_MAX_NDIM];
  int64_t src_strides[CORE_MAX_NDIM];
  for (int d = 0; d < out->ndim; d++) {
    int high = out->shape[d] - low[d] - in->shape[d];
    for (int i = 0; i < out->ndim; i++) {
      shape[i] = i < d ? out->shape[i] : in->shape[i];
      start[i] = i < d ? 0 : low[i];
      src_strides[i] = i == d ? 0 : out->strides[i];
    }
    for (int side = 0; side < 2; side++) {
      shape[d] = side ? high : low[d];
      int src_index = side ? low[d] + in->shape[d] - 1 : low[d];
      int dst_index = side ? low[d] + in->shape[d] : 0;
      start[d] = src_index;
      const char* src = element(out, offset_at(out, start));
      start[d] = dst_index;
      if (shape[d] > 0)
        cpu_copy_general(element(out, offset_at(out, start)), out->strides, src, src_strides, shape, out->ndim, elem);
    }
  }
}

int cpu_eval_pad(core_node* node, core_array** outputs) {
  const core_array *in = node->inputs[0], *value = node->inputs[1];
  core_array* out = outputs[0];
  const pad_params* p = node->params;
  size_t elem = core_dtype_size(out->dtype);
  if (core_array_alloc_contiguous(out)) return 1;
  if (!out->size) return 0;
  if (!p->edge) fill(core_array_ptr(out), out->size, core_array_ptr(value), elem);
  if (in->size)
    cpu_copy_general(element(out, offset_at(out, p->low)), out->strides, core_array_ptr(in), in->strides,
                     in->shape, in->ndim, elem);
  if (p->edge) pad_edges(out, in, p->low);
  return 0;
}

int cpu_eval_slice_update(core_node* node, core_array** outputs) {
  const core_array *src = node->inputs[0], *update = node->inputs[1];
  core_array* out = outputs[0];
  const slice_params* p = node->params;
  size_t elem = core_dtype_size(out->dtype);
  /* In place when the source is not visible elsewhere (a KV cache): no copy of the whole array. */
  if (!core_array_donate((core_array*)src, out, -1)) {
    if (core_array_alloc_contiguous(out)) return 1;
    if (out->size)
      cpu_copy_strided(core_array_ptr(out), core_array_ptr(src), src->shape, src->strides, src->ndim, elem);
  }
  if (!update->size) return 0;
  int64_t strides[CORE_MAX_NDIM];
  for (int i = 0; i < out->ndim; i++) strides[i] = out->strides[i] * p->step[i];
  cpu_copy_general(element(out, offset_at(out, p->start)), strides, core_array_ptr(update), update->strides,
                   update->shape, update->ndim, elem);
  return 0;
}

/* A row-major copy of `in`; NULL when out of memory. */
static core_array* fresh_copy(const core_array* in) {
  core_array* copy = core_array_create(in->shape, in->ndim, in->dtype);
  if (!copy) return NULL;
  if (core_array_alloc_contiguous(copy)) {
    core_array_release(copy);
    return NULL;
  }
  cpu_copy_strided(core_array_ptr(copy), core_array_ptr(in), in->shape, in->strides, in->ndim,
                   core_dtype_size(in->dtype));
  return copy;
}

/* `in` itself (retained) when its elements are row-major, else a fresh copy. */
static core_array* row_major(core_array* in) {
  if (!in->row_contiguous) return fresh_copy(in);
  core_array_retain(in);
  return in;
}

int cpu_eval_as_strided(core_node* node, core_array** outputs) {
  const as_strided_params* p = node->params;
  core_array* src = row_major(node->inputs[0]);
  if (!src) return 1;
  core_array_set_view(outputs[0], src, p->strides, src->offset + p->offset);
  core_array_release(src);
  return 0;
}

int cpu_eval_diagonal(core_node* node, core_array** outputs) {
  const core_array* in = node->inputs[0];
  core_array* out = outputs[0];
  const diagonal_params* p = node->params;
  int64_t strides[CORE_MAX_NDIM], s1 = in->strides[p->axis1], s2 = in->strides[p->axis2];
  for (int i = 0, k = 0; i < in->ndim; i++)
    if (i != p->axis1 && i != p->axis2) strides[k++] = in->strides[i];
  strides[out->ndim - 1] = s1 + s2;
  int64_t offset = in->offset;
  if (out->size) offset += p->offset >= 0 ? p->offset * s2 : -(int64_t)p->offset * s1;
  core_array_set_view(out, in, strides, offset);
  return 0;
}

/* Same-size dtypes keep the input's layout; otherwise the bytes must be row-major and the
 * offset must fall on an element boundary of the new dtype, else they are copied first. */
int cpu_eval_view(core_node* node, core_array** outputs) {
  core_array *in = node->inputs[0], *out = outputs[0];
  size_t ib = core_dtype_size(in->dtype), ob = core_dtype_size(out->dtype);
  if (ib == ob) {
    core_array_set_view(out, in, in->strides, in->offset);
    return 0;
  }
  core_array* src = (in->offset * (int64_t)ib) % (int64_t)ob ? fresh_copy(in) : row_major(in);
  if (!src) return 1;
  int64_t strides[CORE_MAX_NDIM];
  core_row_strides(out->shape, out->ndim, strides);
  core_array_set_view(out, src, strides, src->offset * (int64_t)ib / (int64_t)ob);
  core_array_release(src);
  return 0;
}

/* Element offset into `a` of a window of `size` starting at the run-time `start` values along
 * p->axes: negative starts count from the end, then clamp so the window fits. */
static int64_t dynamic_offset(const core_array* a, const core_array* start, const dynamic_slice_params* p,
                              const int* size) {
  int64_t values[CORE_MAX_NDIM], offset = 0;
  cpu_convert(values, MLX_INT64, core_array_ptr(start), start->dtype, start->shape, start->strides, start->ndim);
  for (int i = 0; i < p->naxes; i++) {
    int ax = p->axes[i];
    int64_t n = a->shape[ax], v = values[i] < 0 ? values[i] + n : values[i], last = n - size[ax];
    v = v < 0 ? 0 : v > last ? last : v;
    offset += v * a->strides[ax];
  }
  return offset;
}

int cpu_eval_dynamic_slice(core_node* node, core_array** outputs) {
  const core_array *in = node->inputs[0], *start = node->inputs[1];
  core_array* out = outputs[0];
  if (core_array_alloc_contiguous(out)) return 1;
  if (!out->size) return 0;
  int64_t offset = dynamic_offset(in, start, node->params, out->shape);
  cpu_copy_strided(core_array_ptr(out), element(in, offset), out->shape, in->strides, in->ndim,
                   core_dtype_size(in->dtype));
  return 0;
}

int cpu_eval_dynamic_slice_update(core_node* node, core_array** outputs) {
  const core_array *src = node->inputs[0], *update = node->inputs[1], *start = node->inputs[2];
  core_array* out = outputs[0];
  size_t elem = core_dtype_size(out->dtype);
  if (core_array_alloc_contiguous(out)) return 1;
  if (!out->size) return 0;
  cpu_copy_strided(core_array_ptr(out), core_array_ptr(src), src->shape, src->strides, src->ndim, elem);
  if (!update->size) return 0;
  int64_t offset = dynamic_offset(out, start, node->params, update->shape);
  cpu_copy_general(element(out, offset), out->strides, core_array_ptr(update), update->strides, update->shape,
                   update->ndim, elem);
  return 0;
}
