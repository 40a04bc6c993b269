/* C glue of the reduction family (reduce.cu): reductions over any set of axes, softmax over any
 * axes and scans along any axis, in every real dtype. The last-axis kernels of dispatch.c
 * (sum, max, mean, logsumexp, argmax, softmax) stay the first choice and hand the cases they do
 * not take to gpu_reduce_any_axes and gpu_softmax_any_axes. Compiled in CUDA builds only. */
#ifdef MLXC_WITH_CUDA
#include <string.h>

#include "backend/cpu/kernels.h"
#include "backend/cpu/reduce_plan.h"
#include "backend/cuda/dispatch.h"
#include "backend/cuda/residency.h"
#include "ops/codes.h"
#include "ops/primitives.h"
#include "ops/reduce_params.h"

/* The CPU kernels' grouping (dims of size 1 dropped, contiguous dims merged), as the launchers
 * take it. */
static void group_plan(gpu_group_plan* g, const cpu_reduce_plan* p) {
  g->n_kept = p->n_kept;
  g->n_reduced = p->n_reduced;
  memcpy(g->kept_shape, p->kept_shape, sizeof p->kept_shape);
  memcpy(g->reduced_shape, p->reduced_shape, sizeof p->reduced_shape);
  memcpy(g->kept_strides, p->kept_strides, sizeof p->kept_strides);
  memcpy(g->reduced_strides, p->reduced_strides, sizeof p->reduced_strides);
  g->groups = p->groups;
  g->group_size = p->group_size;
}

/* The grouping of node's input (out_strides: where the results go, or NULL for a reduction's
 * row-major output), its device pointer and the output's storage. */
static int prepare_groups(core_node* node, core_array* out, const int64_t* out_strides, gpu_group_plan* groups,
                          const void** px, void** po) {
  const reduce_params* params = node->params;
  core_array* in = node->inputs[0];
  cpu_reduce_plan plan;
  cpu_reduce_plan_init(&plan, in->shape, in->ndim, in->strides, out_strides, params->reduced);
  group_plan(groups, &plan);
  int dev = device_of(node);
  return gpu_device_ptr(in, dev, px) || gpu_alloc_output(out, dev, po);
}

int gpu_reduce_any_axes(core_node* node, core_array** outputs) {
  const reduce_params* params = node->params;
  core_array *in = node->inputs[0], *out = outputs[0];
  if (in->dtype == MLX_COMPLEX64) return GPU_KERNEL_DECLINED;
  if (node->op->code == REDUCE_MEDIAN) { /* groups sorted in shared memory: up to GPU_MEDIAN_MAX values */
    int64_t group_size = out->size ? (int64_t)in->size / (int64_t)out->size : 0;
    if (group_size < 1 || group_size > GPU_MEDIAN_MAX) return GPU_KERNEL_DECLINED;
  }
  gpu_group_plan groups;
  const void* px;
  void* po;
  if (prepare_groups(node, out, NULL, &groups, &px, &po)) return 1;
  return gpu_launch_reduce(device_of(node), node->op->code, in->dtype, out->dtype, params->ddof, po, px, &groups);
}

int gpu_softmax_any_axes(core_node* node, core_array** outputs) {
  core_array *in = node->inputs[0], *out = outputs[0];
  if (in->dtype == MLX_COMPLEX64) return GPU_KERNEL_DECLINED;
  int64_t out_strides[CORE_MAX_NDIM];
  core_row_strides(out->shape, out->ndim, out_strides);
  gpu_group_plan groups;
  const void* px;
  void* po;
  if (prepare_groups(node, out, out_strides, &groups, &px, &po)) return 1;
  return gpu_launch_softmax_groups(device_of(node), in->dtype, out->dtype, po, px, &groups);
}

/* all_true (array_equal's and allclose's last step): `all` over every axis of a bool array. */
static int k_all_true(core_node* node, core_array** outputs) {
  core_array *in = node->inputs[0], *out = outputs[0];
  if (in->dtype != MLX_BOOL) return GPU_KERNEL_DECLINED; /* the CPU kernel reports it */
  bool reduced[CORE_MAX_NDIM];
  for (int d = 0; d < CORE_MAX_NDIM; d++) reduced[d] = true;
  cpu_reduce_plan plan;
  cpu_reduce_plan_init(&plan, in->shape, in->ndim, in->strides, NULL, reduced);
  gpu_group_plan groups;
  group_plan(&groups, &plan);
  int dev = device_of(node);
  const void* px;
  void* po;
  if (gpu_device_ptr(in, dev, &px) || gpu_alloc_output(out, dev, &po)) return 1;
  return gpu_launch_reduce(dev, REDUCE_ALL, MLX_BOOL, MLX_BOOL, 0, po, px, &groups);
}

/* cumsum, cumprod, cummax, cummin, logcumsumexp along one axis. */
static int k_scan(core_node* node, core_array** outputs) {
  const scan_params* params = node->params;
  core_array *in = node->inputs[0], *out = outputs[0];
  int code = node->op->code;
  if (in->dtype == MLX_COMPLEX64) return GPU_KERNEL_DECLINED;
  cpu_reduce_plan plan;
  cpu_reduce_plan_axis(&plan, in, out, params->axis);
  gpu_group_plan groups;
  group_plan(&groups, &plan);
  int64_t identity = code == SCAN_LOGADDEXP || cpu_dtype_is_real_float(in->dtype) ? 0 : cpu_scan_int_identity(code, in->dtype);
  int dev = device_of(node);
  const void* px;
  void* po;
  if (gpu_device_ptr(in, dev, &px) || gpu_alloc_output(out, dev, &po)) return 1;
  return gpu_launch_scan(dev, code, in->dtype, out->dtype, params->reverse, params->inclusive, identity, po, px,
                         &groups);
}

/* argmax_lse (mlxc_fast_argmax_logsumexp): one kernel whatever the row's length (a recorded
 * decode step must not fall back to the CPU for a small vocabulary). */
static int k_argmax_lse(core_node* node, core_array** outputs) {
  core_array* x = node->inputs[0];
  const int64_t D = x->shape[x->ndim - 1], rows = D ? (int64_t)x->size / D : 0;
  if (!gpu_argmax_lse_fits(x->dtype, rows, D) || !float_dtype(outputs[1]->dtype) || !float_dtype(outputs[2]->dtype))
    return GPU_KERNEL_DECLINED;
  int dev = device_of(node);
  const void* px;
  void *index, *value, *lse;
  if (gpu_device_ptr(x, dev, &px) || gpu_alloc_output(outputs[0], dev, &index) ||
      gpu_alloc_output(outputs[1], dev, &value) || gpu_alloc_output(outputs[2], dev, &lse))
    return 1;
  return gpu_launch_argmax_lse(dev, x->dtype, index, value, outputs[1]->dtype, lse, outputs[2]->dtype, px, rows_of(x),
                               rows, D);
}

const gpu_entry gpu_reduce_kernels[] = {
    {&prim_argmax_lse, k_argmax_lse},
    {&prim_prod, gpu_reduce_any_axes},
    {&prim_min, gpu_reduce_any_axes},
    {&prim_all, gpu_reduce_any_axes},
    {&prim_any, gpu_reduce_any_axes},
    {&prim_var, gpu_reduce_any_axes},
    {&prim_std, gpu_reduce_any_axes},
    {&prim_argmin, gpu_reduce_any_axes},
    {&prim_all_true, k_all_true},
    {&prim_median, gpu_reduce_any_axes},
    {&prim_cumsum, k_scan},
    {&prim_cumprod, k_scan},
    {&prim_cummax, k_scan},
    {&prim_cummin, k_scan},
    {&prim_logcumsumexp, k_scan},
    {NULL, NULL},
};
#else
typedef int dispatch_reduce_unused_without_cuda;
#endif
