/* GPU kernels of the primitives: each unpacks a graph node (shapes, strides, parameters) into a
 * launcher of launch.h, and the table maps primitives to them (gpu_backend_kernel). A kernel
 * returns GPU_KERNEL_DECLINED, before touching its outputs, for cases it does not cover; the CPU
 * kernel then runs on host copies. Compiled in CUDA builds only. */
#ifdef MLXC_WITH_CUDA
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/kernels.h"
#include "backend/cpu/strided.h"
#include "backend/cuda/dispatch.h"
#include "backend/cuda/launch.h"
#include "backend/cuda/residency.h"
#include "backend/gpu.h"
#include "core/device.h"
#include "ops/codes.h"
#include "ops/fast_params.h"
#include "ops/layout_params.h"
#include "ops/matmul_params.h"
#include "ops/primitives.h"
#include "ops/quantized_params.h"
#include "ops/reduce_params.h"
#include "ops/shape_params.h"
#include "util/error.h"

/* ---- copies ---- */

static int k_copy(core_node* node, core_array** outputs) {
  core_array *in = node->inputs[0], *out = outputs[0];
  if (!gpu_copy_supported(out->dtype, in->dtype)) return GPU_KERNEL_DECLINED;
  int dev = device_of(node);
  const void* src;
  void* dst;
  if (gpu_device_ptr(in, dev, &src) || gpu_alloc_output(out, dev, &dst)) return 1;
  return gpu_launch_copy(dev, dst, out->dtype, out->strides, src, in->dtype, in->strides, in->shape,
                         in->ndim);
}

static int k_reshape(core_node* node, core_array** outputs) {
  core_array *in = node->inputs[0], *out = outputs[0];
  /* A view when the layout allows (a row-contiguous input always does; so does a slice whose
   * split or merged dims are contiguous among themselves, e.g. q out of a stacked q/k/v). */
  int64_t view[CORE_MAX_NDIM];
  if (in->size == 0 || cpu_reshape_view_strides(in, out, view)) return cpu_eval_reshape(node, outputs);
  /* Otherwise a row-major copy: walk the input's shape, writing at the row-major strides of
   * that shape (the output's flat order is the same; its own shape and strides differ). */
  int dev = device_of(node);
  int64_t dst_strides[CORE_MAX_NDIM];
  core_row_strides(in->shape, in->ndim, dst_strides);
  const void* src;
  void* dst;
  if (gpu_device_ptr(in, dev, &src) || gpu_alloc_output(out, dev, &dst)) return 1;
  return gpu_launch_copy(dev, dst, out->dtype, dst_strides, src, in->dtype, in->strides, in->shape,
                         in->ndim);
}

static int k_concatenate(core_node* node, core_array** outputs) {
  core_array* out = outputs[0];
  int axis = ((const axis_params*)node->params)->axis, dev = device_of(node);
  for (int k = 0; k < node->n_inputs; k++)
    if (!gpu_copy_supported(out->dtype, node->inputs[k]->dtype)) return GPU_KERNEL_DECLINED;
  void* dst;
  if (gpu_alloc_output(out, dev, &dst)) return 1;
  int64_t at = 0;
  size_t elem = core_dtype_size(out->dtype);
  for (int k = 0; k < node->n_inputs; k++) {
    const core_array* in = node->inputs[k];
    const void* src;
    if (in->size) {
      if (gpu_device_ptr(in, dev, &src) ||
          gpu_launch_copy(dev, (char*)dst + at * out->strides[axis] * (int64_t)elem, out->dtype,
                          out->strides, src, in->dtype, in->strides, in->shape, in->ndim))
        return 1;
    }
    at += in->shape[axis];
  }
  return 0;
}

/* A functional slice update: the source copied, the update written over the sliced region. */
static int k_slice_update(core_node* node, core_array** outputs) {
  const core_array *src = node->inputs[0], *update = node->inputs[1];
  core_array* out = outputs[0];
  const slice_params* p = node->params;
  if (!gpu_copy_supported(out->dtype, src->dtype) || !gpu_copy_supported(out->dtype, update->dtype))
    return GPU_KERNEL_DECLINED;
  int dev = device_of(node);
  const void *s, *u;
  void* dst;
  if (gpu_device_ptr(src, dev, &s) || gpu_device_ptr(update, dev, &u)) return 1;
  /* In place when the source is not visible elsewhere (a KV cache): no copy of the whole array. */
  if (core_array_donate((core_array*)src, out, dev)) {
    dst = out->buffer->device_data;
  } else if (gpu_alloc_output(out, dev, &dst) ||
             gpu_launch_copy(dev, dst, out->dtype, out->strides, s, src->dtype, src->strides, src->shape, src->ndim)) {
    return 1;
  }
  if (!update->size) return 0;
  int64_t strides[CORE_MAX_NDIM], offset = 0;
  for (int i = 0; i < out->ndim; i++) {
    strides[i] = out->strides[i] * p->step[i];
    offset += (int64_t)p->start[i] * out->strides[i];
  }
  return gpu_launch_copy(dev, (char*)dst + offset * (int64_t)core_dtype_size(out->dtype), out->dtype,
                         strides, u, update->dtype, update->strides, update->shape, update->ndim);
}

/* The window of a dynamic slice: the start values stay on the device, so a recorded graph (and
 * any later replay) reads whatever they hold when it runs. */
static bool dynamic_window(const core_array* a, const core_array* start, const dynamic_slice_params* p,
                           const int* size, int dev, gpu_dynamic_window* w) {
  if (p->naxes > GPU_MAX_DYN || !index_dtype(start->dtype) || (start->ndim > 1)) return false;
  w->n = p->naxes;
  w->start_dtype = start->dtype;
  w->start_stride = start->ndim ? start->strides[0] : 0;
  for (int i = 0; i < p->naxes; i++) {
    int ax = p->axes[i];
    w->dim[i] = a->shape[ax];
    w->size[i] = size[ax];
    w->stride[i] = a->strides[ax];
  }
  return gpu_device_ptr(start, dev, &w->start) == 0;
}

static int k_dynamic_slice_update(core_node* node, core_array** outputs) {
  const core_array *src = node->inputs[0], *update = node->inputs[1], *start = node->inputs[2];
  core_array* out = outputs[0];
  const dynamic_slice_params* p = node->params;
  if (update->dtype != out->dtype || src->dtype != out->dtype || p->naxes > GPU_MAX_DYN || start->ndim > 1 ||
      !index_dtype(start->dtype))
    return GPU_KERNEL_DECLINED;
  int dev = device_of(node);
  const void *s, *u;
  void* dst;
  if (gpu_device_ptr(src, dev, &s) || gpu_device_ptr(update, dev, &u)) return 1;
  if (core_array_donate((core_array*)src, out, dev)) { /* in place, as slice_update */
    dst = out->buffer->device_data;
  } else if (gpu_alloc_output(out, dev, &dst) ||
             gpu_launch_copy(dev, dst, out->dtype, out->strides, s, src->dtype, src->strides, src->shape, src->ndim)) {
    return 1;
  }
  if (!update->size) return 0;
  gpu_dynamic_window w;
  if (!dynamic_window(out, start, p, update->shape, dev, &w)) return 1;
  return gpu_launch_copy_dynamic(dev, dst, out->strides, u, update->strides, update->shape, update->ndim,
                                 (int)core_dtype_size(out->dtype), &w, true);
}

static int k_dynamic_slice(core_node* node, core_array** outputs) {
  const core_array *in = node->inputs[0], *start = node->inputs[1];
  core_array* out = outputs[0];
  const dynamic_slice_params* p = node->params;
  if (p->naxes > GPU_MAX_DYN || start->ndim > 1 || !index_dtype(start->dtype)) return GPU_KERNEL_DECLINED;
  int dev = device_of(node);
  const void* s;
  void* dst;
  if (gpu_device_ptr(in, dev, &s) || gpu_alloc_output(out, dev, &dst)) return 1;
  if (!out->size) return 0;
  gpu_dynamic_window w;
  if (!dynamic_window(in, start, p, out->shape, dev, &w)) return 1;
  return gpu_launch_copy_dynamic(dev, dst, out->strides, s, in->strides, out->shape, out->ndim,
                                 (int)core_dtype_size(out->dtype), &w, false);
}

/* ---- elementwise ---- */

int gpu_binary_operands(core_node* node, core_array* out, const void** pa, int64_t* a_strides, const void** pb,
                        int64_t* b_strides, void** po) {
  core_array *a = node->inputs[0], *b = node->inputs[1];
  cpu_broadcast_strides(a->shape, a->strides, a->ndim, out->shape, out->ndim, a_strides);
  cpu_broadcast_strides(b->shape, b->strides, b->ndim, out->shape, out->ndim, b_strides);
  int dev = device_of(node);
  return gpu_device_ptr(a, dev, pa) || gpu_device_ptr(b, dev, pb) || gpu_alloc_output(out, dev, po);
}

static int k_binary(core_node* node, core_array** outputs) {
  core_array *a = node->inputs[0], *b = node->inputs[1], *out = outputs[0];
  int code = node->op->code;
  if (a->dtype != b->dtype || !gpu_binary_supported(code, a->dtype)) return GPU_KERNEL_DECLINED;
  int64_t as[CORE_MAX_NDIM], bs[CORE_MAX_NDIM];
  const void *pa, *pb;
  void* po;
  if (gpu_binary_operands(node, out, &pa, as, &pb, bs, &po)) return 1;
  return gpu_launch_binary(device_of(node), code, a->dtype, out->dtype, po, pa, as, pb, bs, out->shape, out->ndim);
}

static int k_unary(core_node* node, core_array** outputs) {
  core_array *in = node->inputs[0], *out = outputs[0];
  int code = node->op->code;
  if (in->dtype != out->dtype || !gpu_unary_supported(code, in->dtype)) return GPU_KERNEL_DECLINED;
  int dev = device_of(node);
  const void* src;
  void* dst;
  if (gpu_device_ptr(in, dev, &src) || gpu_alloc_output(out, dev, &dst)) return 1;
  return gpu_launch_unary(dev, code, in->dtype, dst, src, in->strides, in->shape, in->ndim);
}

/* ---- matmul ---- */

static int k_matmul(core_node* node, core_array** outputs) {
  core_array *a = node->inputs[0], *b = node->inputs[1], *out = outputs[0];
  const matmul_params* p = node->params;
  int nd = out->ndim, nb = nd - 2;
  if (nd < 2 || !float_dtype(out->dtype) || a->dtype != out->dtype || b->dtype != out->dtype)
    return GPU_KERNEL_DECLINED;
  int64_t M = out->shape[nd - 2], N = out->shape[nd - 1], K = a->shape[a->ndim - 1];
  int64_t a_rs = a->strides[a->ndim - 2], a_cs = a->strides[a->ndim - 1];
  int64_t b_rs = b->strides[b->ndim - 2], b_cs = b->strides[b->ndim - 1];
  if (K == 0 || !gpu_gemm_layout_ok(M, N, K, a_rs, a_cs, b_rs, b_cs)) return GPU_KERNEL_DECLINED;
  if (node->n_inputs == 3 && !gpu_copy_supported(out->dtype, node->inputs[2]->dtype))
    return GPU_KERNEL_DECLINED;
  int dev = device_of(node);
  const void *pa, *pb;
  void* pc;
  if (gpu_device_ptr(a, dev, &pa) || gpu_device_ptr(b, dev, &pb) || gpu_alloc_output(out, dev, &pc))
    return 1;
  float alpha = p ? p->alpha : 1.0f, beta = 0.0f;
  bool half = out->dtype == MLX_FLOAT16 || out->dtype == MLX_BFLOAT16;
  if (node->n_inputs == 3 && half && (int64_t)out->size == N && gpu_gemv_layout_ok(K, a_cs, b_rs, b_cs) &&
      node->inputs[2]->dtype == out->dtype) {
    /* A decode row plus a bias or a residual: the GEMV reads c itself (no copy kernel first). */
    core_array* c = node->inputs[2];
    const void* pcin;
    if (gpu_device_ptr(c, dev, &pcin)) return 1;
    return gpu_launch_gemv(dev, out->dtype, N, K, pa, pb, b_cs, pc, alpha, p->beta, pcin, c->strides[nd - 1],
                           gpu_array_settled(dev, b));
  }
  if (node->n_inputs == 3) {
    /* addmm: c arrives broadcast to out's shape; the GEMM accumulates onto it. */
    core_array* c = node->inputs[2];
    const void* pcin;
    if (gpu_device_ptr(c, dev, &pcin) ||
        gpu_launch_copy(dev, pc, out->dtype, out->strides, pcin, c->dtype, c->strides, c->shape, c->ndim))
      return 1;
    beta = p->beta;
  }
  if (out->size == 0) return 0;
  int64_t a_b[CORE_MAX_NDIM], b_b[CORE_MAX_NDIM];
  cpu_broadcast_strides(a->shape, a->strides, a->ndim - 2, out->shape, nb, a_b);
  cpu_broadcast_strides(b->shape, b->strides, b->ndim - 2, out->shape, nb, b_b);
  /* Merge batch dims whose strides are uniform for both operands; the innermost merged run is
   * one strided-batched call, the remaining ones loop. */
  int shape[CORE_MAX_NDIM], n = 0;
  int64_t as[CORE_MAX_NDIM], bs[CORE_MAX_NDIM];
  for (int d = 0; d < nb; d++) {
    if (out->shape[d] == 1) continue;
    if (n > 0 && as[n - 1] == a_b[d] * out->shape[d] && bs[n - 1] == b_b[d] * out->shape[d]) {
      shape[n - 1] *= out->shape[d];
      as[n - 1] = a_b[d];
      bs[n - 1] = b_b[d];
    } else {
      shape[n] = out->shape[d];
      as[n] = a_b[d];
      bs[n] = b_b[d];
      n++;
    }
  }
  int64_t inner = n ? shape[n - 1] : 1, a_bs = n ? as[n - 1] : 0, b_bs = n ? bs[n - 1] : 0;
  /* A shared right operand (a linear layer over a batch of sequences) and rows of a that follow
   * each other across the batch: one GEMM of inner * M rows instead of inner small ones. */
  if (n == 1 && b_bs == 0 && a_cs == 1 && a_rs >= K && a_bs == M * a_rs && inner * M <= 0x7fffffff) {
    M *= inner;
    inner = 1;
    a_bs = 0;
  }
  int64_t outer = 1;
  for (int d = 0; d < n - 1; d++) outer *= shape[d];
  const bool b_settled = gpu_array_settled(dev, b);
  size_t elem = core_dtype_size(out->dtype);
  int idx[CORE_MAX_NDIM] = {0};
  int64_t ao = 0, bo = 0;
  for (int64_t o = 0; o < outer; o++) {
    if (gpu_launch_gemm(dev, out->dtype, M, N, K, inner, (const char*)pa + ao * (int64_t)elem, a_rs,
                        a_cs, a_bs, (const char*)pb + bo * (int64_t)elem, b_rs, b_cs, b_bs,
                        (char*)pc + o * inner * M * N * (int64_t)elem, alpha, beta, b_settled))
      return 1;
    for (int d = n - 2; d >= 0; d--) { /* odometer over the outer batch dims */
      ao += as[d];
      bo += bs[d];
      if (++idx[d] < shape[d]) break;
      ao -= as[d] * shape[d];
      bo -= bs[d] * shape[d];
      idx[d] = 0;
    }
  }
  return 0;
}

/* ---- fast ---- */

static int k_rms_norm(core_node* node, core_array** outputs) {
  const norm_params* p = node->params;
  core_array *x = node->inputs[0], *out = outputs[0];
  core_array* w = p->has_weight ? node->inputs[1] : NULL;
  if (x->ndim < 1 || !float_dtype(x->dtype) || !float_dtype(out->dtype) || (w && !float_dtype(w->dtype)))
    return GPU_KERNEL_DECLINED;
  int64_t D = x->shape[x->ndim - 1], rows = D ? (int64_t)x->size / D : 0;
  int dev = device_of(node);
  const void *px, *pw = NULL;
  void* po;
  if (gpu_device_ptr(x, dev, &px) || (w && gpu_device_ptr(w, dev, &pw)) || gpu_alloc_output(out, dev, &po))
    return 1;
  return gpu_launch_rms_norm(dev, x->dtype, out->dtype, po, px, rows_of(x), rows, D, pw,
                             w ? w->dtype : 0, w && w->ndim ? w->strides[w->ndim - 1] : 0, p->eps);
}

/* add_rms_norm: inputs x, residual, [weight]; outputs sum and normed. */
static int k_add_rms_norm(core_node* node, core_array** outputs) {
  const norm_params* p = node->params;
  core_array *x = node->inputs[0], *res = node->inputs[1], *sum = outputs[0], *out = outputs[1];
  core_array* w = p->has_weight ? node->inputs[2] : NULL;
  int64_t D = x->shape[x->ndim - 1], rows = D ? (int64_t)x->size / D : 0;
  if (!gpu_add_rms_norm_supported(x->dtype, w ? w->dtype : x->dtype, D) || !float_dtype(out->dtype))
    return GPU_KERNEL_DECLINED;
  int dev = device_of(node);
  const void *px, *pr, *pw = NULL;
  void *ps, *po;
  if (gpu_device_ptr(x, dev, &px) || gpu_device_ptr(res, dev, &pr) || (w && gpu_device_ptr(w, dev, &pw)) ||
      gpu_alloc_output(sum, dev, &ps) || gpu_alloc_output(out, dev, &po))
    return 1;
  return gpu_launch_add_rms_norm(dev, x->dtype, out->dtype, ps, po, px, rows_of(x), pr, rows_of(res), rows, D, pw,
                                 w ? w->dtype : 0, w && w->ndim ? w->strides[w->ndim - 1] : 0, p->eps);
}

static int k_glu(core_node* node, core_array** outputs) {
  core_array *gate = node->inputs[0], *up = node->inputs[1], *out = outputs[0];
  if (gate->dtype != MLX_FLOAT32 && gate->dtype != MLX_FLOAT16 && gate->dtype != MLX_BFLOAT16)
    return GPU_KERNEL_DECLINED;
  int64_t D = gate->shape[gate->ndim - 1], rows = D ? (int64_t)gate->size / D : 0;
  int dev = device_of(node);
  const void *pg, *pu;
  void* po;
  if (gpu_device_ptr(gate, dev, &pg) || gpu_device_ptr(up, dev, &pu) || gpu_alloc_output(out, dev, &po)) return 1;
  return gpu_launch_glu(dev, gate->dtype, *(const glu_activation*)node->params == GLU_GELU_TANH, po, pg,
                        rows_of(gate), pu, rows_of(up), rows, D);
}

static bool offset_dtype(mlx_dtype d) {
  return float_dtype(d) || d == MLX_INT32 || d == MLX_UINT32 || d == MLX_INT64;
}

static int k_rope(core_node* node, core_array** outputs) {
  const rope_params* p = node->params;
  core_array *x = node->inputs[0], *out = outputs[0];
  int next = 1;
  core_array* offsets = p->has_offset_array ? node->inputs[next++] : NULL;
  core_array* freqs = p->has_freqs ? node->inputs[next++] : NULL;
  if (x->ndim < 2 || !float_dtype(x->dtype) || !float_dtype(out->dtype) ||
      (offsets && !offset_dtype(offsets->dtype)) || (freqs && !float_dtype(freqs->dtype)))
    return GPU_KERNEL_DECLINED;
  int64_t D = x->shape[x->ndim - 1], L = x->shape[x->ndim - 2];
  int64_t rows = D ? (int64_t)x->size / D : 0, batch = x->shape[0];
  int dev = device_of(node);
  const void *px, *poff = NULL, *pf = NULL;
  void* po;
  if (gpu_device_ptr(x, dev, &px) || (offsets && gpu_device_ptr(offsets, dev, &poff)) ||
      (freqs && gpu_device_ptr(freqs, dev, &pf)) || gpu_alloc_output(out, dev, &po))
    return 1;
  bool per_batch = offsets && offsets->size > 1;
  return gpu_launch_rope(dev, x->dtype, out->dtype, po, px, rows_of(x), rows, D, L ? L : 1,
                         batch ? rows / batch : 1, p->dims, p->traditional, p->base, p->scale,
                         p->offset, poff, offsets ? offsets->dtype : 0,
                         offsets && offsets->ndim ? offsets->strides[0] : 0, per_batch, pf,
                         freqs ? freqs->dtype : 0, freqs && freqs->ndim ? freqs->strides[0] : 0);
}

int gpu_cache_output(core_array* cache, core_array* out, int dev, void** dst) {
  const void* src;
  if (gpu_device_ptr(cache, dev, &src)) return 1;
  if (core_array_donate(cache, out, dev)) {
    *dst = out->buffer->device_data;
    return 0;
  }
  return gpu_alloc_output(out, dev, dst) ||
         gpu_launch_copy(dev, *dst, out->dtype, out->strides, src, cache->dtype, cache->strides, cache->shape, cache->ndim);
}

/* ---- reductions over the last axis (other axes: dispatch_reduce.c) ---- */

/* True when the reduction covers exactly the last axis (other reduced dims have size 1). */
static bool last_axis_only(const core_array* in, const reduce_params* p) {
  if (in->ndim < 1 || !p->reduced[in->ndim - 1]) return false;
  for (int d = 0; d < in->ndim - 1; d++)
    if (p->reduced[d] && in->shape[d] != 1) return false;
  return true;
}

static int k_softmax(core_node* node, core_array** outputs) {
  core_array *in = node->inputs[0], *out = outputs[0];
  if (!last_axis_only(in, node->params) || !float_dtype(in->dtype) || !float_dtype(out->dtype))
    return gpu_softmax_any_axes(node, outputs);
  int64_t D = in->shape[in->ndim - 1], rows = D ? (int64_t)in->size / D : 0;
  int dev = device_of(node);
  const void* px;
  void* po;
  if (gpu_device_ptr(in, dev, &px) || gpu_alloc_output(out, dev, &po)) return 1;
  return gpu_launch_softmax(dev, in->dtype, out->dtype, po, px, rows_of(in), rows, D);
}

static int k_argmax(core_node* node, core_array** outputs) {
  core_array *in = node->inputs[0], *out = outputs[0];
  bool ok = float_dtype(in->dtype) || in->dtype == MLX_INT32 || in->dtype == MLX_UINT32;
  if (!ok || out->dtype != MLX_UINT32 || !last_axis_only(in, node->params) ||
      in->shape[in->ndim - 1] == 0)
    return gpu_reduce_any_axes(node, outputs);
  int64_t D = in->shape[in->ndim - 1], rows = (int64_t)in->size / D;
  int dev = device_of(node);
  const void* px;
  void* po;
  if (gpu_device_ptr(in, dev, &px) || gpu_alloc_output(out, dev, &po)) return 1;
  if (float_dtype(in->dtype) && gpu_long_rows(rows, D))
    return gpu_launch_long_rows(dev, 4, in->dtype, MLX_UINT32, po, px, rows_of(in), rows, D);
  return gpu_launch_argmax(dev, in->dtype, po, px, rows_of(in), rows, D);
}

/* sum, max, mean, logsumexp over the last axis of float rows; other cases take the general kernel. */
static int k_reduce_last(core_node* node, core_array** outputs) {
  core_array *in = node->inputs[0], *out = outputs[0];
  int code = node->op->code;
  int op = code == REDUCE_SUM ? 0 : code == REDUCE_MAX ? 1 : code == REDUCE_MEAN ? 2 : code == REDUCE_LOGSUMEXP ? 3 : -1;
  if (op < 0 || !last_axis_only(in, node->params) || !float_dtype(in->dtype) ||
      !float_dtype(out->dtype) || in->shape[in->ndim - 1] == 0)
    return gpu_reduce_any_axes(node, outputs);
  int64_t D = in->shape[in->ndim - 1], rows = (int64_t)in->size / D;
  int dev = device_of(node);
  const void* px;
  void* po;
  if (gpu_device_ptr(in, dev, &px) || gpu_alloc_output(out, dev, &po)) return 1;
  if (gpu_long_rows(rows, D)) return gpu_launch_long_rows(dev, op, in->dtype, out->dtype, po, px, rows_of(in), rows, D);
  return gpu_launch_reduce_last(dev, op, in->dtype, out->dtype, po, px, rows_of(in), rows, D);
}

static int k_layer_norm(core_node* node, core_array** outputs) {
  const norm_params* p = node->params;
  core_array *x = node->inputs[0], *out = outputs[0];
  int next = 1;
  core_array* w = p->has_weight ? node->inputs[next++] : NULL;
  core_array* b = p->has_bias ? node->inputs[next] : NULL;
  if (x->ndim < 1 || !float_dtype(x->dtype) || !float_dtype(out->dtype) ||
      (w && !float_dtype(w->dtype)) || (b && !float_dtype(b->dtype)))
    return GPU_KERNEL_DECLINED;
  int64_t D = x->shape[x->ndim - 1], rows = D ? (int64_t)x->size / D : 0;
  int dev = device_of(node);
  const void *px, *pw = NULL, *pb = NULL;
  void* po;
  if (gpu_device_ptr(x, dev, &px) || (w && gpu_device_ptr(w, dev, &pw)) ||
      (b && gpu_device_ptr(b, dev, &pb)) || gpu_alloc_output(out, dev, &po))
    return 1;
  return gpu_launch_layer_norm(dev, x->dtype, out->dtype, po, px, rows_of(x), rows, D, pw,
                               w ? w->dtype : 0, w && w->ndim ? w->strides[w->ndim - 1] : 0, pb,
                               b ? b->dtype : 0, b && b->ndim ? b->strides[b->ndim - 1] : 0, p->eps);
}

/* ---- where ---- */

static int k_select(core_node* node, core_array** outputs) {
  core_array *c = node->inputs[0], *a = node->inputs[1], *b = node->inputs[2], *out = outputs[0];
  size_t es = core_dtype_size(out->dtype);
  if (c->dtype != MLX_BOOL || a->dtype != out->dtype || b->dtype != out->dtype ||
      (es != 1 && es != 2 && es != 4 && es != 8))
    return GPU_KERNEL_DECLINED;
  int64_t cs[CORE_MAX_NDIM], as[CORE_MAX_NDIM], bs[CORE_MAX_NDIM];
  cpu_broadcast_strides(c->shape, c->strides, c->ndim, out->shape, out->ndim, cs);
  cpu_broadcast_strides(a->shape, a->strides, a->ndim, out->shape, out->ndim, as);
  cpu_broadcast_strides(b->shape, b->strides, b->ndim, out->shape, out->ndim, bs);
  int dev = device_of(node);
  const void *pc, *pa, *pb;
  void* po;
  if (gpu_device_ptr(c, dev, &pc) || gpu_device_ptr(a, dev, &pa) || gpu_device_ptr(b, dev, &pb) ||
      gpu_alloc_output(out, dev, &po))
    return 1;
  return gpu_launch_select(dev, es, po, pc, cs, pa, as, pb, bs, out->shape, out->ndim);
}

/* ---- quantized_matmul and dequantize (affine) ---- */

/* Affine scales and biases that fit the GPU kernels: dense (N, K / group) of one float dtype. */
static bool affine_groups_ok(const core_array* sc, const core_array* bi, int64_t N, int64_t K, int group) {
  return sc->row_contiguous && bi->row_contiguous && sc->dtype == bi->dtype && float_dtype(sc->dtype) &&
         sc->ndim == 2 && bi->ndim == 2 && sc->shape[0] == N && bi->shape[0] == N &&
         (int64_t)sc->shape[1] * group == K && (int64_t)bi->shape[1] * group == K;
}

/* x (M, K) @ W^T with W dequantized to x's dtype in a scratch buffer, then cuBLAS: the prefill
 * case, where the GEMM's arithmetic dwarfs the extra pass over the weights. */
static int qmm_by_dequantize(core_node* node, core_array* out, const void* px, const void* pw, const void* ps,
                             const void* pb, int64_t M, int64_t N, int64_t K) {
  const quant_params* p = node->params;
  core_array *x = node->inputs[0], *sc = node->inputs[2];
  int dev = device_of(node);
  size_t bytes = (size_t)(N * K) * core_dtype_size(x->dtype);
  void* wd = NULL;
  void* po;
  if (gpu_alloc_output(out, dev, &po) || gpu_backend_alloc(dev, bytes, &wd)) return 1;
  int status = gpu_launch_dequantize_affine(dev, wd, x->dtype, pw, ps, sc->dtype, pb, sc->dtype, sc->dtype, N, K,
                                            p->bits, p->group_size, false);
  /* out (M, N) = x (M, K) @ Wd^T: Wd (N, K) row-major read as its transpose (strides 1, K). */
  if (!status)
    status = gpu_launch_gemm(dev, x->dtype, M, N, K, 1, px, K, 1, 0, wd, 1, K, 0, po, 1.0f, 0.0f, false);
  gpu_backend_free(dev, wd, bytes);
  return status;
}

static int k_quantized_matmul(core_node* node, core_array** outputs) {
  const quant_params* p = node->params;
  core_array *x = node->inputs[0], *w = node->inputs[1], *out = outputs[0];
  if (p->mode != QUANT_AFFINE || !p->transpose || node->n_inputs != 4 || w->ndim != 2 ||
      !float_dtype(x->dtype) || !float_dtype(out->dtype))
    return GPU_KERNEL_DECLINED;
  core_array *sc = node->inputs[2], *bi = node->inputs[3];
  int64_t N = w->shape[0], K = x->shape[x->ndim - 1], M = K ? (int64_t)x->size / K : 0;
  if (M == 0 || (int64_t)out->size != M * N || !w->row_contiguous || !affine_groups_ok(sc, bi, N, K, p->group_size) ||
      K % p->group_size != 0)
    return GPU_KERNEL_DECLINED;
  bool gemv = M == 1 && gpu_qgemv_supported(p->bits, p->group_size, K) && (w->offset * 4) % 16 == 0;
  /* Several rows: x must be row-contiguous (M, K) for the GEMM. */
  if (!gemv && (!x->row_contiguous || out->dtype != x->dtype)) return GPU_KERNEL_DECLINED;
  int dev = device_of(node);
  const void *px, *pw, *ps, *pb;
  void* po;
  if (gpu_device_ptr(x, dev, &px) || gpu_device_ptr(w, dev, &pw) || gpu_device_ptr(sc, dev, &ps) ||
      gpu_device_ptr(bi, dev, &pb))
    return 1;
  if (!gemv) return qmm_by_dequantize(node, out, px, pw, ps, pb, M, N, K);
  if (gpu_alloc_output(out, dev, &po)) return 1;
  return gpu_launch_qgemv_affine(dev, p->bits, p->group_size, po, out->dtype, px, x->dtype,
                                 x->strides[x->ndim - 1], pw, ps, pb, sc->dtype, N, K,
                                 gpu_weights_settled(dev, w, sc, bi));
}

/* Whether the linear layer of a decode-GEMV node (gated_gemv, linear_residual, rms_norm_linear)
 * at inputs[first], `rows` rows, fits the kernels: plain w laid out for the half GEMV, or w,
 * scales, biases in the quantized direct kernel's layout (gpu_qgemv_supported, scales of x's
 * dtype); x contiguous is the caller's check. */
static bool gemv_weights_fit(core_node* node, int first, bool quantized, int bits, int group_size, int64_t rows,
                              int64_t K, mlx_dtype dtype) {
  core_array* w = node->inputs[first];
  if (!quantized) return gpu_gemv_layout_ok(K, 1, w->strides[1], w->strides[0]);
  core_array *sc = node->inputs[first + 1], *bi = node->inputs[first + 2];
  return gpu_qgemv_supported(bits, group_size, K) && w->row_contiguous && sc->dtype == dtype &&
         affine_groups_ok(sc, bi, rows, K, group_size);
}

/* gated_gemv (mlxc_fast_gated_linear of one row): inputs x, w[, scales, biases]. Half types only,
 * in the layouts of the decode GEMVs; float32 and the rest run on the CPU. */
static int k_gated_gemv(core_node* node, core_array** outputs) {
  const gated_gemv_params* p = node->params;
  core_array *x = node->inputs[0], *w = node->inputs[1], *out = outputs[0];
  const int64_t K = x->shape[x->ndim - 1], D = out->shape[out->ndim - 1];
  const bool gelu = p->activation == GLU_GELU_TANH;
  if ((x->dtype != MLX_FLOAT16 && x->dtype != MLX_BFLOAT16) || K == 0 || (x->strides[x->ndim - 1] != 1 && K != 1))
    return GPU_KERNEL_DECLINED;
  core_array *sc = p->quantized ? node->inputs[2] : NULL, *bi = p->quantized ? node->inputs[3] : NULL;
  if (!gemv_weights_fit(node, 1, p->quantized, p->bits, p->group_size, 2 * D, K, x->dtype)) return GPU_KERNEL_DECLINED;
  int dev = device_of(node);
  const void *px, *pw, *ps = NULL, *pb = NULL;
  void* po;
  if (gpu_device_ptr(x, dev, &px) || gpu_device_ptr(w, dev, &pw) || (sc && gpu_device_ptr(sc, dev, &ps)) ||
      (bi && gpu_device_ptr(bi, dev, &pb)))
    return 1;
  if (p->quantized && (((uintptr_t)px | (uintptr_t)pw) & 15u)) return GPU_KERNEL_DECLINED; /* the direct kernel's loads */
  if (gpu_alloc_output(out, dev, &po)) return 1;
  const bool ready = gpu_weights_settled(dev, w, sc, bi);
  if (p->quantized)
    return gpu_launch_gated_qgemv(dev, p->bits, p->group_size, x->dtype, gelu, po, px, pw, ps, pb, D, K, ready);
  return gpu_launch_gated_gemv(dev, x->dtype, gelu, D, K, px, pw, w->strides[0], po, ready);
}

/* linear_residual (mlxc_fast_linear_residual of one row): inputs x, w, [scales, biases],
 * residual, [norm weight]; outputs the sum, the sum of its squares, [the sum times the norm
 * weight]. Half types in the decode GEMVs' layouts; the rest runs on the CPU. */
static int k_linear_residual(core_node* node, core_array** outputs) {
  const linear_residual_params* p = node->params;
  const int q = p->quantized ? 2 : 0;
  core_array *x = node->inputs[0], *w = node->inputs[1], *res = node->inputs[2 + q], *sum = outputs[0];
  core_array* nw = p->has_norm_weight ? node->inputs[3 + q] : NULL;
  const int64_t K = x->shape[x->ndim - 1], N = sum->shape[sum->ndim - 1];
  if ((x->dtype != MLX_FLOAT16 && x->dtype != MLX_BFLOAT16) || !res->row_contiguous ||
      (nw && !nw->row_contiguous) || (x->strides[x->ndim - 1] != 1 && K != 1) ||
      !gemv_weights_fit(node, 1, p->quantized, p->bits, p->group_size, N, K, x->dtype))
    return GPU_KERNEL_DECLINED;
  int dev = device_of(node);
  const void *px, *pw, *ps = NULL, *pb = NULL, *pr, *pnw = NULL;
  void *py, *pss, *pscaled = NULL;
  if (gpu_device_ptr(x, dev, &px) || gpu_device_ptr(w, dev, &pw) ||
      (q && (gpu_device_ptr(node->inputs[2], dev, &ps) || gpu_device_ptr(node->inputs[3], dev, &pb))) ||
      gpu_device_ptr(res, dev, &pr) || (nw && gpu_device_ptr(nw, dev, &pnw)))
    return 1;
  if (q && (((uintptr_t)px | (uintptr_t)pw) & 15u)) return GPU_KERNEL_DECLINED; /* the direct kernel's loads */
  if (gpu_alloc_output(sum, dev, &py) || gpu_alloc_output(outputs[1], dev, &pss) ||
      (nw && gpu_alloc_output(outputs[2], dev, &pscaled)))
    return 1;
  const bool settled = q ? gpu_weights_settled(dev, w, node->inputs[2], node->inputs[3]) : gpu_array_settled(dev, w);
  if (q)
    return gpu_launch_qgemv_residual(dev, p->bits, p->group_size, x->dtype, N, K, px, pw, ps, pb, pr, pnw, py, pscaled,
                                     pss, settled);
  return gpu_launch_gemv_residual(dev, x->dtype, N, K, px, pw, w->strides[0], pr, pnw, py, pscaled, pss, settled);
}

/* rms_norm_linear (mlxc_fast_rms_norm_linear of one row): inputs scaled, sumsq, w, [scales,
 * biases], [bias]; the GEMVs of the layer with the norm's factor in their epilogue. */
static int k_rms_norm_linear(core_node* node, core_array** outputs) {
  const norm_linear_params* p = node->params;
  const int q = p->quantized ? 2 : 0;
  core_array *x = node->inputs[0], *ss = node->inputs[1], *w = node->inputs[2], *out = outputs[0];
  core_array* bias = p->has_bias ? node->inputs[3 + q] : NULL;
  const int64_t K = x->shape[x->ndim - 1], N = out->shape[out->ndim - 1], parts = ss->shape[ss->ndim - 1];
  const int64_t rows = p->gated ? 2 * N : N;
  if ((x->dtype != MLX_FLOAT16 && x->dtype != MLX_BFLOAT16) || (x->strides[x->ndim - 1] != 1 && K != 1) ||
      !ss->row_contiguous || ss->dtype != MLX_FLOAT32 || !gpu_rms_parts_ok(parts) ||
      (bias && bias->dtype != x->dtype) ||
      !gemv_weights_fit(node, 2, p->quantized, p->bits, p->group_size, rows, K, x->dtype))
    return GPU_KERNEL_DECLINED;
  int dev = device_of(node);
  const void *px, *pss, *pw, *ps = NULL, *pb = NULL, *pbias = NULL;
  void* po;
  if (gpu_device_ptr(x, dev, &px) || gpu_device_ptr(ss, dev, &pss) || gpu_device_ptr(w, dev, &pw) ||
      (q && (gpu_device_ptr(node->inputs[3], dev, &ps) || gpu_device_ptr(node->inputs[4], dev, &pb))) ||
      (bias && gpu_device_ptr(bias, dev, &pbias)))
    return 1;
  if (q && (((uintptr_t)px | (uintptr_t)pw) & 15u)) return GPU_KERNEL_DECLINED;
  if (gpu_alloc_output(out, dev, &po)) return 1;
  const bool settled = q ? gpu_weights_settled(dev, w, node->inputs[3], node->inputs[4]) : gpu_array_settled(dev, w);
  const bool gelu = p->activation == GLU_GELU_TANH;
  const int64_t bias_stride = bias ? bias->strides[bias->ndim - 1] : 0;
  if (q && p->gated)
    return gpu_launch_gated_qgemv_rms(dev, p->bits, p->group_size, x->dtype, gelu, N, K, px, pw, ps, pb, pss,
                                      (int)parts, p->eps, po, settled);
  if (q)
    return gpu_launch_qgemv_rms(dev, p->bits, p->group_size, x->dtype, N, K, px, pw, ps, pb, pss, (int)parts, p->eps,
                                pbias, bias_stride, po, settled);
  if (p->gated)
    return gpu_launch_gated_gemv_rms(dev, x->dtype, gelu, N, K, px, pw, w->strides[0], pss, (int)parts, p->eps, po,
                                     settled);
  return gpu_launch_gemv_rms(dev, x->dtype, N, K, px, pw, w->strides[0], pss, (int)parts, p->eps, pbias, bias_stride,
                             po, settled);
}

static int k_dequantize(core_node* node, core_array** outputs) {
  const quant_params* p = node->params;
  core_array *w = node->inputs[0], *out = outputs[0];
  if (p->mode != QUANT_AFFINE || node->n_inputs != 3 || !float_dtype(out->dtype) || out->ndim < 1) return GPU_KERNEL_DECLINED;
  core_array *sc = node->inputs[1], *bi = node->inputs[2];
  int64_t cols = out->shape[out->ndim - 1], rows = cols ? (int64_t)out->size / cols : 0;
  if (!w->row_contiguous || !sc->row_contiguous || !bi->row_contiguous || !float_dtype(sc->dtype) ||
      !float_dtype(bi->dtype) || p->bits < 2 || p->bits > 8 || cols % p->group_size != 0 ||
      (int64_t)sc->size != rows * (cols / p->group_size) || (int64_t)bi->size != rows * (cols / p->group_size))
    return GPU_KERNEL_DECLINED;
  int dev = device_of(node);
  const void *pw, *ps, *pb;
  void* po;
  if (gpu_device_ptr(w, dev, &pw) || gpu_device_ptr(sc, dev, &ps) || gpu_device_ptr(bi, dev, &pb) ||
      gpu_alloc_output(out, dev, &po))
    return 1;
  return gpu_launch_dequantize_affine(dev, po, out->dtype, pw, ps, sc->dtype, pb, bi->dtype,
                                      core_promote(sc->dtype, bi->dtype), rows, cols, p->bits, p->group_size, true);
}

/* ---- take (rows of axis 0) ---- */

int gpu_check_host_indices(const core_array* ind, int n, const char* op) {
  if (!ind->buffer || !ind->buffer->host_valid || ind->size > (1u << 20)) return 0;
  const char* base = core_array_ptr(ind);
  size_t es = core_dtype_size(ind->dtype);
  for (size_t i = 0; i < ind->size; i++) {
    int64_t off = 0, rest = (int64_t)i;
    for (int d = ind->ndim - 1; d >= 0; d--) {
      off += (rest % ind->shape[d]) * ind->strides[d];
      rest /= ind->shape[d];
    }
    const char* p = base + off * (int64_t)es;
    int64_t v;
    switch (ind->dtype) {
      case MLX_INT8: v = *(const int8_t*)p; break;
      case MLX_UINT8: v = *(const uint8_t*)p; break;
      case MLX_INT16: v = *(const int16_t*)p; break;
      case MLX_UINT16: v = *(const uint16_t*)p; break;
      case MLX_INT32: v = *(const int32_t*)p; break;
      case MLX_UINT32: v = *(const uint32_t*)p; break;
      case MLX_UINT64: v = (int64_t)*(const uint64_t*)p; break;
      default: v = *(const int64_t*)p; break;
    }
    int64_t w = v < 0 ? v + n : v;
    if (w < 0 || w >= n)
      return util_error("%s: index %lld is out of bounds for an axis of size %d", op, (long long)v, n);
  }
  return 0;
}

static int k_take(core_node* node, core_array** outputs) {
  const core_array *a = node->inputs[0], *ind = node->inputs[1];
  core_array* out = outputs[0];
  int axis = ((const axis_params*)node->params)->axis;
  if (axis != 0 || a->ndim < 1 || !index_dtype(ind->dtype)) return GPU_KERNEL_DECLINED;
  if (gpu_check_host_indices(ind, a->shape[0], "take")) return 1;
  int dev = device_of(node);
  const void *pa, *pi;
  void* po;
  if (gpu_device_ptr(a, dev, &pa) || gpu_device_ptr(ind, dev, &pi) || gpu_alloc_output(out, dev, &po))
    return 1;
  if (out->size == 0) return 0;
  return gpu_launch_take_rows(dev, a->dtype, po, pa, a->shape[0], a->strides[0], a->shape + 1,
                              a->strides + 1, a->ndim - 1, pi, ind->dtype, ind->shape, ind->strides,
                              ind->ndim);
}

/* random_bits: the bytes of each key (a row of two uint32 in the keys' last axis) on the device,
 * as the CPU draws them. */
static int k_random_bits(core_node* node, core_array** outputs) {
  const core_array* keys = node->inputs[0];
  core_array* out = outputs[0];
  if (keys->dtype != MLX_UINT32 || keys->ndim < 1 || keys->shape[keys->ndim - 1] != 2) return GPU_KERNEL_DECLINED;
  int dev = device_of(node);
  const void* pk;
  void* po;
  if (gpu_device_ptr(keys, dev, &pk) || gpu_alloc_output(out, dev, &po)) return 1;
  int64_t num_keys = (int64_t)keys->size / 2;
  if (num_keys == 0 || out->size == 0) return 0;
  int64_t bytes_per_key = (int64_t)(out->size * core_dtype_size(out->dtype)) / num_keys;
  return gpu_launch_random_bits(dev, po, pk, rows_of(keys), num_keys, bytes_per_key);
}

/* ---- the table ---- */

/* Views run their CPU kernels: they only set shape/strides/offset over the shared buffer, which
 * serves the device copy as well as the host one. */
const gpu_entry gpu_core_kernels[] = {
    {&prim_broadcast, cpu_eval_broadcast},
    {&prim_transpose, cpu_eval_transpose},
    {&prim_slice, cpu_eval_slice},
    {&prim_reshape, k_reshape},
    {&prim_astype, k_copy},
    {&prim_copy, k_copy},
    {&prim_concatenate, k_concatenate},
    {&prim_slice_update, k_slice_update},
    {&prim_dynamic_slice, k_dynamic_slice},
    {&prim_dynamic_slice_update, k_dynamic_slice_update},
    {&prim_add, k_binary},
    {&prim_subtract, k_binary},
    {&prim_multiply, k_binary},
    {&prim_divide, k_binary},
    {&prim_maximum, k_binary},
    {&prim_minimum, k_binary},
    {&prim_equal, k_binary},
    {&prim_not_equal, k_binary},
    {&prim_less, k_binary},
    {&prim_less_equal, k_binary},
    {&prim_greater, k_binary},
    {&prim_greater_equal, k_binary},
    {&prim_logical_and, k_binary},
    {&prim_logical_or, k_binary},
    {&prim_abs, k_unary},
    {&prim_negative, k_unary},
    {&prim_square, k_unary},
    {&prim_sqrt, k_unary},
    {&prim_rsqrt, k_unary},
    {&prim_exp, k_unary},
    {&prim_log, k_unary},
    {&prim_sin, k_unary},
    {&prim_cos, k_unary},
    {&prim_tanh, k_unary},
    {&prim_sigmoid, k_unary},
    {&prim_sign, k_unary},
    {&prim_reciprocal, k_unary},
    {&prim_expm1, k_unary},
    {&prim_log1p, k_unary},
    {&prim_log2, k_unary},
    {&prim_log10, k_unary},
    {&prim_tan, k_unary},
    {&prim_arcsin, k_unary},
    {&prim_arccos, k_unary},
    {&prim_arctan, k_unary},
    {&prim_sinh, k_unary},
    {&prim_cosh, k_unary},
    {&prim_arcsinh, k_unary},
    {&prim_arccosh, k_unary},
    {&prim_arctanh, k_unary},
    {&prim_erf, k_unary},
    {&prim_erfinv, k_unary},
    {&prim_floor, k_unary},
    {&prim_ceil, k_unary},
    {&prim_round, k_unary},
    {&prim_power, k_binary},
    {&prim_arctan2, k_binary},
    {&prim_logaddexp, k_binary},
    {&prim_matmul, k_matmul},
    {&prim_addmm, k_matmul},
    {&prim_rms_norm, k_rms_norm},
    {&prim_add_rms_norm, k_add_rms_norm},
    {&prim_glu, k_glu},
    {&prim_rope, k_rope},
    {&prim_softmax, k_softmax},
    {&prim_argmax, k_argmax},
    {&prim_take, k_take},
    {&prim_sum, k_reduce_last},
    {&prim_max, k_reduce_last},
    {&prim_mean, k_reduce_last},
    {&prim_logsumexp, k_reduce_last},
    {&prim_layer_norm, k_layer_norm},
    {&prim_select, k_select},
    {&prim_quantized_matmul, k_quantized_matmul},
    {&prim_gated_gemv, k_gated_gemv},
    {&prim_linear_residual, k_linear_residual},
    {&prim_rms_norm_linear, k_rms_norm_linear},
    {&prim_dequantize, k_dequantize},
    {&prim_random_bits, k_random_bits},
    {NULL, NULL},
};

static const gpu_entry* const gpu_kernel_tables[] = {
    gpu_core_kernels,
    gpu_elementwise_more_kernels,
    gpu_sort_kernels,
    gpu_conv_kernels,
    gpu_gather_qmm_kernels,
    gpu_reduce_kernels,
    gpu_linalg_kernels,
    gpu_fft_kernels,
    gpu_decode_layers_kernels,
    gpu_attention_kernels,
};

gpu_kernel_fn gpu_backend_kernel(const core_op* op) {
  for (size_t t = 0; t < sizeof gpu_kernel_tables / sizeof gpu_kernel_tables[0]; t++)
    for (const gpu_entry* e = gpu_kernel_tables[t]; e->op; e++)
      if (e->op == op) return e->kernel;
  return NULL;
}
#else
typedef int dispatch_unused_without_cuda;
#endif
