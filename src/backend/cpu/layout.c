/* Layout kernels: views that share the input's buffer (broadcast, transpose, slice, reshape of
 * a compatible layout) and the copies that make arrays contiguous. */
#include <string.h>

#include "backend/cpu/copy.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/strided.h"
#include "ops/layout_params.h"

int cpu_eval_copy(core_node* node, core_array** outputs) {
  core_array *in = node->inputs[0], *out = outputs[0];
  if (core_array_alloc_contiguous(out)) return 1;
  cpu_copy_strided(core_array_ptr(out), core_array_ptr(in), in->shape, in->strides, in->ndim,
                   core_dtype_size(in->dtype));
  return 0;
}

int cpu_eval_broadcast(core_node* node, core_array** outputs) {
  core_array *in = node->inputs[0], *out = outputs[0];
  int64_t strides[CORE_MAX_NDIM];
  cpu_broadcast_strides(in->shape, in->strides, in->ndim, out->shape, out->ndim, strides);
  core_array_set_view(out, in, strides, in->offset);
  return 0;
}

int cpu_eval_transpose(core_node* node, core_array** outputs) {
  core_array *in = node->inputs[0], *out = outputs[0];
  const transpose_params* p = node->params;
  int64_t strides[CORE_MAX_NDIM];
  for (int i = 0; i < out->ndim; i++) strides[i] = in->strides[p->perm[i]];
  core_array_set_view(out, in, strides, in->offset);
  return 0;
}

int cpu_eval_slice(core_node* node, core_array** outputs) {
  core_array *in = node->inputs[0], *out = outputs[0];
  const slice_params* p = node->params;
  int64_t strides[CORE_MAX_NDIM];
  int64_t offset = in->offset;
  for (int i = 0; i < in->ndim; i++) {
    if (out->size) offset += (int64_t)p->start[i] * in->strides[i];
    strides[i] = in->strides[i] * p->step[i];
  }
  core_array_set_view(out, in, strides, offset);
  return 0;
}

/* Strides that let `out` view `in`'s elements in row-major order without copying, when its
 * layout allows (numpy's rule: each run of merged output dims maps onto a run of input dims
 * that are contiguous among themselves). Returns false when a copy is needed. */
bool cpu_reshape_view_strides(const core_array* in, const core_array* out, int64_t* strides) {
  if (in->row_contiguous) {
    core_row_strides(out->shape, out->ndim, strides);
    return true;
  }
  int ii = 0, oi = 0;
  while (ii < in->ndim && oi < out->ndim) {
    /* Group input dims [ii, ie) and output dims [oi, oe) of equal element counts. */
    int64_t in_count = in->shape[ii], out_count = out->shape[oi];
    int ie = ii + 1, oe = oi + 1;
    while (in_count != out_count) {
      if (in_count < out_count) in_count *= in->shape[ie++];
      else out_count *= out->shape[oe++];
    }
    /* The group's input dims (size-1 ones aside) must step as one contiguous run. */
    int inner = -1;
    for (int k = ie - 1; k >= ii; k--) {
      if (in->shape[k] == 1) continue;
      if (inner >= 0 && in->strides[k] != in->strides[inner] * in->shape[inner]) return false;
      inner = k;
    }
    int64_t s = 1;
    for (int k = ie - 1; k >= ii; k--)
      if (in->shape[k] != 1) {
        s = in->strides[k];
        break;
      }
    for (int k = oe - 1; k >= oi; k--) {
      strides[k] = s;
      s *= out->shape[k];
    }
    ii = ie;
    oi = oe;
  }
  for (; oi < out->ndim; oi++) strides[oi] = 1; /* trailing size-1 dims */
  return true;
}

int cpu_eval_reshape(core_node* node, core_array** outputs) {
  core_array *in = node->inputs[0], *out = outputs[0];
  int64_t strides[CORE_MAX_NDIM];
  if (in->size > 0 && cpu_reshape_view_strides(in, out, strides)) {
    core_array_set_view(out, in, strides, in->offset);
    return 0;
  }
  if (core_array_alloc_contiguous(out)) return 1;
  cpu_copy_strided(core_array_ptr(out), core_array_ptr(in), in->shape, in->strides, in->ndim,
                   core_dtype_size(in->dtype));
  return 0;
}
