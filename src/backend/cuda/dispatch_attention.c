/* GPU kernels of a decode step's attention core: rope_kv, sdpa and rope_kv_sdpa (the two in one
 * kernel where attention_decode.cu's tensor-core kernel takes the shape, else the two kernels). */
#ifdef MLXC_WITH_CUDA
#include <string.h>

#include "backend/cpu/strided.h"
#include "backend/cuda/dispatch.h"
#include "backend/cuda/residency.h"
#include "ops/fast_params.h"
#include "ops/primitives.h"
#include "util/error.h"

/* What the rope_kv kernel takes: float q (k, v, caches share its dtype), an integer position. */
static bool rope_kv_supported(const core_array* q, const core_array* position, const core_array* freqs) {
  return float_dtype(q->dtype) && (position->dtype == MLX_INT32 || position->dtype == MLX_INT64) &&
         (!freqs || float_dtype(freqs->dtype));
}

/* rope_kv's arguments from its inputs q, k, v, keys, values, position, [freqs] (outputs and
 * q_out not set). */
static int rope_kv_args(gpu_rope_kv_args* A, const rope_params* p, core_array* const* in, int dev) {
  core_array *q = in[0], *k = in[1], *v = in[2], *position = in[5], *freqs = p->has_freqs ? in[6] : NULL;
  memset(A, 0, sizeof *A);
  if (gpu_device_ptr(q, dev, &A->q) || gpu_device_ptr(k, dev, &A->k) || gpu_device_ptr(v, dev, &A->v) ||
      gpu_device_ptr(position, dev, &A->position) || (freqs && gpu_device_ptr(freqs, dev, &A->freqs)))
    return 1;
  A->q_rows = rows_of(q);
  A->k_rows = rows_of(k);
  A->v_rows = rows_of(v);
  A->D = q->shape[3];
  A->Dv = v->shape[3];
  A->q_count = A->D ? (int64_t)q->size / A->D : 0;
  A->k_count = A->D ? (int64_t)k->size / A->D : 0;
  A->v_count = A->Dv ? (int64_t)v->size / A->Dv : 0;
  A->L = q->shape[2];
  A->T = in[3]->shape[2];
  A->dims = p->dims;
  A->traditional = p->traditional;
  A->base = p->base;
  A->scale = p->scale;
  A->position_dtype = position->dtype;
  A->freqs_dtype = freqs ? freqs->dtype : 0;
  A->freqs_stride = freqs && freqs->ndim ? freqs->strides[0] : 0;
  return 0;
}

/* rope_kv: inputs q, k, v, keys, values, position, [freqs]; outputs q rotated, keys, values. */
static int k_rope_kv(core_node* node, core_array** outputs) {
  const rope_params* p = node->params;
  if (!rope_kv_supported(node->inputs[0], node->inputs[5], p->has_freqs ? node->inputs[6] : NULL))
    return GPU_KERNEL_DECLINED;
  int dev = device_of(node);
  gpu_rope_kv_args A;
  if (rope_kv_args(&A, p, node->inputs, dev) || gpu_alloc_output(outputs[0], dev, &A.q_out) ||
      gpu_cache_output(node->inputs[3], outputs[1], dev, &A.keys) ||
      gpu_cache_output(node->inputs[4], outputs[2], dev, &A.values))
    return 1;
  return gpu_launch_rope_kv(dev, node->inputs[0]->dtype, &A);
}

/* What the attention kernels take (the rest is declined to the CPU). */
static bool sdpa_supported(const core_array* q, const core_array* k, const core_array* v, const core_array* mask,
                           const core_array* sinks, const core_array* out) {
  return q->ndim == 4 && k->ndim == 4 && v->ndim == 4 && float_dtype(q->dtype) && k->dtype == q->dtype &&
         v->dtype == q->dtype && float_dtype(out->dtype) && q->shape[3] <= 256 && v->shape[3] <= 256 &&
         k->shape[1] != 0 && q->shape[1] % k->shape[1] == 0 &&
         (!mask || mask->dtype == MLX_BOOL || float_dtype(mask->dtype)) && (!sinks || float_dtype(sinks->dtype));
}

/* The attention's arguments: shapes from q (B, Hq, Lq, D), k, v; q's strides row-major (the
 * caller sets them when q is read in place); the mask and sinks on the device. */
static int sdpa_args(gpu_sdpa_args* A, const core_array* q, const core_array* k, const core_array* v,
                     core_array* mask, core_array* sinks, const sdpa_params* p, int dev) {
  memset(A, 0, sizeof *A);
  A->B = q->shape[0];
  A->Hq = q->shape[1];
  A->Hk = k->shape[1];
  A->Lq = q->shape[2];
  A->Lk = k->shape[2];
  A->D = q->shape[3];
  A->Dv = v->shape[3];
  A->q_st[3] = 1;
  for (int d = 2; d >= 0; d--) A->q_st[d] = A->q_st[d + 1] * q->shape[d + 1];
  for (int d = 0; d < 4; d++) {
    A->k_st[d] = k->strides[d];
    A->v_st[d] = v->strides[d];
  }
  A->scale = p->scale;
  A->causal = p->mask == SDPA_MASK_CAUSAL;
  if (mask) {
    int full[4] = {A->B, A->Hq, A->Lq, A->Lk};
    cpu_broadcast_strides(mask->shape, mask->strides, mask->ndim, full, 4, A->mask_st);
    A->mask_dtype = mask->dtype;
    if (gpu_device_ptr(mask, dev, &A->mask)) return 1;
  }
  if (sinks) {
    A->sinks_dtype = sinks->dtype;
    A->sinks_stride = sinks->ndim ? sinks->strides[sinks->ndim - 1] : 0;
    if (gpu_device_ptr(sinks, dev, &A->sinks)) return 1;
  }
  return 0;
}

static int k_sdpa(core_node* node, core_array** outputs) {
  const sdpa_params* p = node->params;
  core_array *q = node->inputs[0], *k = node->inputs[1], *v = node->inputs[2], *out = outputs[0];
  int next = 3;
  core_array* mask = p->mask == SDPA_MASK_ARRAY ? node->inputs[next++] : NULL;
  core_array* sinks = p->has_sinks ? node->inputs[next] : NULL;
  if (!sdpa_supported(q, k, v, mask, sinks, out)) return GPU_KERNEL_DECLINED;
  int dev = device_of(node);
  gpu_sdpa_args A;
  const void *pq, *pk, *pv;
  void* po;
  if (sdpa_args(&A, q, k, v, mask, sinks, p, dev) || gpu_device_ptr(q, dev, &pq) || gpu_device_ptr(k, dev, &pk) ||
      gpu_device_ptr(v, dev, &pv) || gpu_alloc_output(out, dev, &po))
    return 1;
  for (int d = 0; d < 4; d++) A.q_st[d] = q->strides[d];
  return gpu_launch_sdpa(dev, q->dtype, out->dtype, po, pq, pk, pv, &A);
}

/* rope_kv_sdpa: inputs q, k, v, keys, values, position, [freqs], [mask]; outputs the attention,
 * keys, values. One kernel where the decode attention takes it; else rope_kv into a scratch q,
 * then the attention over it. */
static int k_rope_kv_sdpa(core_node* node, core_array** outputs) {
  const rope_kv_sdpa_params* p = node->params;
  const int n_rope = p->rope.has_freqs ? 7 : 6;
  core_array *q = node->inputs[0], *k = node->inputs[1], *v = node->inputs[2], *out = outputs[0];
  core_array* mask = p->sdpa.mask == SDPA_MASK_ARRAY ? node->inputs[n_rope] : NULL;
  if (!rope_kv_supported(q, node->inputs[5], p->rope.has_freqs ? node->inputs[6] : NULL) ||
      !sdpa_supported(q, node->inputs[3], node->inputs[4], mask, NULL, out))
    return GPU_KERNEL_DECLINED;
  int dev = device_of(node);
  gpu_rope_kv_args R;
  gpu_sdpa_args A;
  void* po;
  const void *keys_in, *values_in;
  const bool caches_settled = gpu_array_settled(dev, node->inputs[3]) && gpu_array_settled(dev, node->inputs[4]);
  if (gpu_device_ptr(node->inputs[3], dev, &keys_in) || gpu_device_ptr(node->inputs[4], dev, &values_in) ||
      rope_kv_args(&R, &p->rope, node->inputs, dev) || gpu_cache_output(node->inputs[3], outputs[1], dev, &R.keys) ||
      gpu_cache_output(node->inputs[4], outputs[2], dev, &R.values) ||
      sdpa_args(&A, q, outputs[1], outputs[2], mask, NULL, &p->sdpa, dev) || gpu_alloc_output(out, dev, &po))
    return 1;
  gpu_sdpa_args in_place = A;
  for (int d = 0; d < 4; d++) in_place.q_st[d] = q->strides[d];
  gpu_decode_rope_args rope = {R.k, R.v, {0}, {0}, R.dims, R.traditional, R.base, R.scale, R.position,
                               R.position_dtype, R.freqs, R.freqs_dtype, R.freqs_stride,
                               gpu_array_settled(dev, node->inputs[5]) &&
                                   (!p->rope.has_freqs || gpu_array_settled(dev, node->inputs[6])),
                               caches_settled && R.keys == keys_in && R.values == values_in, {0}};
  for (int d = 0; d < 4; d++) {
    rope.kn_st[d] = k->strides[d];
    rope.vn_st[d] = v->strides[d];
  }
  int status = gpu_launch_sdpa_decode_rope(dev, q->dtype, out->dtype, po, R.q, R.keys, R.values, &in_place, &rope);
  if (status >= 0) return status;
  size_t bytes = q->size * core_dtype_size(q->dtype);
  void* rotated = NULL;
  if (bytes && gpu_backend_alloc(dev, bytes, &rotated)) return 1;
  R.q_out = rotated;
  status = gpu_launch_rope_kv(dev, q->dtype, &R);
  if (!status) status = gpu_launch_sdpa(dev, q->dtype, out->dtype, po, rotated, R.keys, R.values, &A);
  if (bytes) gpu_backend_free(dev, rotated, bytes);
  return status;
}

const gpu_entry gpu_attention_kernels[] = {
    {&prim_rope_kv, k_rope_kv},
    {&prim_sdpa, k_sdpa},
    {&prim_rope_kv_sdpa, k_rope_kv_sdpa},
    {NULL, NULL},
};
#else
typedef int dispatch_attention_unused_without_cuda;
#endif
