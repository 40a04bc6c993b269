/* C glue of the decoder-layer kernel (decode_layers.cu): the node's inputs (ops/decode_layers.h)
 * as device pointers, the caches written in place when they can be donated (else copied first:
 * gpu_cache_output, rope_kv's too).
 * Declined, to the CPU kernel: sizes the kernel refuses, and arrays whose rows are not
 * contiguous or 16-byte aligned. Compiled in CUDA builds only. */
#ifdef MLXC_WITH_CUDA
#include <stdint.h>
#include <stdlib.h>

#include "backend/cuda/dispatch.h"
#include "backend/cuda/residency.h"
#include "backend/gpu.h"
#include "ops/decode_layers.h"
#include "ops/primitives.h"
#include "util/error.h"

const char* gpu_backend_decode_layers_refusal(int device, const struct decode_layers_params* p, int dtype) {
  const gpu_decode_layers_args a = {.p = *p, .dtype = dtype};
  return gpu_decode_layers_refusal(device, &a);
}

/* The device pointer of a dense, 16-byte aligned array: 0, 1 (error), or GPU_KERNEL_DECLINED. */
static int dense_ptr(const core_array* a, int dev, const void** ptr) {
  if (!a->row_contiguous) return GPU_KERNEL_DECLINED;
  if (gpu_device_ptr(a, dev, ptr)) return 1;
  return ((uintptr_t)*ptr & 15u) ? GPU_KERNEL_DECLINED : 0;
}

static int k_decode_layers(core_node* node, core_array** outputs) {
  const decode_layers_params* p = node->params;
  core_array* const* in = node->inputs;
  const int dev = device_of(node), dt = in[0]->dtype;
  gpu_decode_layers_args a = {.p = *p, .dtype = dt};
  if (gpu_decode_layers_refusal(dev, &a)) return GPU_KERNEL_DECLINED;
  const int per = decode_layers_inputs_per_layer(p), first = decode_layers_first_layer_input(p);
  const int lin = p->bits ? 3 : 1;
  gpu_decode_layer* layers = calloc((size_t)p->n_layers, sizeof *layers);
  if (!layers) return util_error("decode_layers: out of memory");
  int st = dense_ptr(in[0], dev, &a.x);
  if (!st) st = gpu_device_ptr(in[1], dev, &a.position);
  if (!st && p->has_freqs) {
    st = gpu_device_ptr(in[2], dev, &a.freqs);
    a.freqs_dtype = in[2]->dtype;
    a.freqs_stride = in[2]->strides[0];
  }
  for (int l = 0; l < p->n_layers && !st; l++) {
    core_array* const* L = in + first + per * l;
    gpu_decode_layer* g = &layers[l];
    st = dense_ptr(L[0], dev, &g->input_norm);
    if (!st) st = dense_ptr(L[1], dev, &g->post_norm);
    for (int i = 0; i < 4 && !st; i++) {
      st = dense_ptr(L[2 + lin * i], dev, &g->weight[i]);
      if (!st && p->bits) st = dense_ptr(L[3 + lin * i], dev, &g->scales[i]);
      if (!st && p->bits) st = dense_ptr(L[4 + lin * i], dev, &g->biases[i]);
    }
    if (!st && p->qkv_bias) st = dense_ptr(L[2 + 4 * lin], dev, &g->qkv_bias);
    if (!st && (!L[per - 2]->row_contiguous || !L[per - 1]->row_contiguous)) st = GPU_KERNEL_DECLINED;
  }
  /* Outputs only once nothing can decline any more. */
  if (!st) st = gpu_alloc_output(outputs[0], dev, &a.out);
  for (int l = 0; l < p->n_layers && !st; l++) {
    core_array* const* L = in + first + per * l;
    st = gpu_cache_output(L[per - 2], outputs[1 + 2 * l], dev, &layers[l].keys) ||
         gpu_cache_output(L[per - 1], outputs[2 + 2 * l], dev, &layers[l].values);
  }
  if (!st) st = gpu_launch_decode_layers(dev, &a, layers);
  free(layers);
  return st;
}

const gpu_entry gpu_decode_layers_kernels[] = {
    {&prim_decode_layers, k_decode_layers},
    {NULL, NULL},
};
#else
typedef int dispatch_decode_layers_unused_without_cuda;
#endif
