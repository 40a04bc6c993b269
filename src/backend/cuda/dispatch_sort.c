/* GPU kernels of the sort family: sort, argsort, partition, argpartition (sort.cu),
 * take_along_axis, put_along_axis (along_axis.cu) and affine quantize (quantize.cu), unpacked from
 * their graph nodes. Compiled in CUDA builds only. */
#ifdef MLXC_WITH_CUDA
#include "backend/cuda/dispatch.h"
#include "backend/cuda/residency.h"
#include "ops/codes.h"
#include "ops/primitives.h"
#include "ops/quantized_params.h"
#include "ops/reduce_params.h"
#include "ops/shape_params.h"

/* The lines along `axis` of an array of `shape` with `strides`: the other dims lead, the axis
 * is the inner stride. */
static gpu_rows lines_of(const int* shape, const int64_t* strides, int ndim, int axis) {
  gpu_rows r;
  r.lead_ndim = 0;
  for (int d = 0; d < ndim; d++) {
    if (d == axis) continue;
    r.lead_shape[r.lead_ndim] = shape[d];
    r.lead_strides[r.lead_ndim++] = strides[d];
  }
  r.inner_stride = strides[axis];
  return r;
}

static int k_sort(core_node* node, core_array** outputs) {
  const sort_params* p = node->params;
  core_array *in = node->inputs[0], *out = outputs[0];
  int code = node->op->code;
  if (in->dtype == MLX_COMPLEX64 || in->ndim == 0) return GPU_KERNEL_DECLINED;
  int64_t n = in->shape[p->axis], lines = n ? (int64_t)in->size / n : 0, padded = 1;
  while (padded < n) padded <<= 1;
  /* Keeps the tile kernel's grid (lines * padded / tile blocks) and item positions in range. */
  if (lines * padded > ((int64_t)1 << 31)) return GPU_KERNEL_DECLINED;
  /* A partition walks its line on one thread (the CPU's quickselect, whose item moves define the
   * result): a 150k vocabulary row would take milliseconds, more than copying it to the host. */
  bool partition = code == PARTITION_VALUES || code == PARTITION_INDICES;
  if (partition && n > GPU_PARTITION_MAX_LINE) return GPU_KERNEL_DECLINED;
  int dev = device_of(node);
  const void* pi;
  void* po;
  if (gpu_device_ptr(in, dev, &pi) || gpu_alloc_output(out, dev, &po)) return 1;
  int64_t out_strides[CORE_MAX_NDIM];
  core_row_strides(out->shape, out->ndim, out_strides);
  gpu_rows in_lines = lines_of(in->shape, in->strides, in->ndim, p->axis);
  gpu_rows out_lines = lines_of(out->shape, out_strides, out->ndim, p->axis);
  bool indices = code == SORT_INDICES || code == PARTITION_INDICES;
  return gpu_launch_sort(dev, in->dtype, indices, partition, p->kth, po, pi, &in_lines, &out_lines, lines, n);
}

/* The iteration of take_along_axis / put_along_axis over `shape` (the indices' broadcast
 * shape): `indexed` (a, or put's output) at its strides, 0 where it broadcasts. */
static gpu_along along_of(const core_array* indexed, const int64_t* indexed_strides, const core_array* ind,
                          const int64_t* other_strides, const int* shape, int axis) {
  gpu_along g;
  g.ndim = indexed->ndim;
  g.axis = axis;
  g.axis_n = indexed->shape[axis];
  g.idx_dtype = ind->dtype;
  for (int d = 0; d < g.ndim; d++) {
    g.shape[d] = shape[d];
    bool broadcast = d != axis && indexed->shape[d] == 1 && shape[d] != 1;
    g.indexed_strides[d] = broadcast ? 0 : indexed_strides[d];
    g.idx_strides[d] = ind->strides[d];
    g.other_strides[d] = other_strides[d];
  }
  return g;
}

static int k_take_along_axis(core_node* node, core_array** outputs) {
  core_array *a = node->inputs[0], *ind = node->inputs[1], *out = outputs[0];
  int axis = ((const axis_params*)node->params)->axis;
  if (!index_dtype(ind->dtype)) return GPU_KERNEL_DECLINED;
  if (out->size && gpu_check_host_indices(ind, a->shape[axis], "take_along_axis")) return 1;
  int dev = device_of(node);
  const void *pa, *pi;
  void* po;
  if (gpu_device_ptr(a, dev, &pa) || gpu_device_ptr(ind, dev, &pi) || gpu_alloc_output(out, dev, &po)) return 1;
  if (out->size == 0) return 0;
  int64_t out_strides[CORE_MAX_NDIM];
  core_row_strides(out->shape, out->ndim, out_strides);
  gpu_along g = along_of(a, a->strides, ind, out_strides, out->shape, axis);
  return gpu_launch_take_along_axis(dev, (int)core_dtype_size(a->dtype), po, pa, pi, &g);
}

static int k_put_along_axis(core_node* node, core_array** outputs) {
  core_array *a = node->inputs[0], *ind = node->inputs[1], *values = node->inputs[2], *out = outputs[0];
  int axis = ((const axis_params*)node->params)->axis;
  if (!index_dtype(ind->dtype)) return GPU_KERNEL_DECLINED;
  if (values->size && gpu_check_host_indices(ind, a->shape[axis], "put_along_axis")) return 1;
  int dev = device_of(node);
  const void *pa, *pi, *pv;
  void* po;
  if (gpu_device_ptr(a, dev, &pa) || gpu_device_ptr(ind, dev, &pi) || gpu_device_ptr(values, dev, &pv) ||
      gpu_alloc_output(out, dev, &po))
    return 1;
  if (out->size == 0) return 0;
  int64_t out_strides[CORE_MAX_NDIM];
  core_row_strides(out->shape, out->ndim, out_strides);
  if (gpu_launch_copy(dev, po, out->dtype, out_strides, pa, a->dtype, a->strides, a->shape, a->ndim)) return 1;
  gpu_along g = along_of(out, out_strides, ind, values->strides, values->shape, axis);
  return gpu_launch_put_along_axis(dev, (int)core_dtype_size(a->dtype), po, (int64_t)out->size, pv, pi, &g);
}

/* Affine mode only; the microscaling modes run on the CPU. */
static int k_quantize(core_node* node, core_array** outputs) {
  const quant_params* p = node->params;
  core_array* w = node->inputs[0];
  if (p->mode != QUANT_AFFINE || node->n_inputs != 1 || !float_dtype(w->dtype) || w->ndim < 1 ||
      p->bits < 1 || p->bits > 8 || p->group_size > 128)
    return GPU_KERNEL_DECLINED;
  int64_t K = w->shape[w->ndim - 1], rows = K ? (int64_t)w->size / K : 0;
  if (K % p->group_size != 0) return GPU_KERNEL_DECLINED;
  int dev = device_of(node);
  const void* pw;
  void *packed, *scales, *biases;
  if (gpu_device_ptr(w, dev, &pw) || gpu_alloc_output(outputs[0], dev, &packed) ||
      gpu_alloc_output(outputs[1], dev, &scales) || gpu_alloc_output(outputs[2], dev, &biases))
    return 1;
  gpu_rows w_rows = rows_of(w);
  return gpu_launch_quantize_affine(dev, w->dtype, pw, &w_rows, rows, K, p->bits, p->group_size, packed, scales,
                                    biases);
}

const gpu_entry gpu_sort_kernels[] = {
    {&prim_sort, k_sort},
    {&prim_argsort, k_sort},
    {&prim_partition, k_sort},
    {&prim_argpartition, k_sort},
    {&prim_take_along_axis, k_take_along_axis},
    {&prim_put_along_axis, k_put_along_axis},
    {&prim_quantize, k_quantize},
    {NULL, NULL},
};
#else
typedef int dispatch_sort_unused_without_cuda;
#endif
