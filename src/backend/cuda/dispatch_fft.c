/* C glue of the FFT kernel (fft.cu, cuFFT): the work shape and the input's box as the CPU kernel
 * computes them (backend/cpu/fft.c). Declined: calls while a step is recorded (a replay would run
 * a cached plan that a later call may have destroyed) and empty outputs. Compiled in CUDA builds
 * only. */
#ifdef MLXC_WITH_CUDA
#include <string.h>

#include "backend/cuda/dispatch.h"
#include "backend/cuda/residency.h"
#include "core/capture.h"
#include "ops/fft_params.h"
#include "ops/primitives.h"

static int k_fft(core_node* node, core_array** outputs) {
  const fft_params* p = node->params;
  core_array *in = node->inputs[0], *out = outputs[0];
  const bool irfft = p->real && p->inverse;
  if (out->size == 0 || (in->dtype != MLX_FLOAT32 && in->dtype != MLX_COMPLEX64) || out->ndim > GPU_MAX_NDIM ||
      core_capture_device() == device_of(node))
    return GPU_KERNEL_DECLINED;
  int ndim = out->ndim, last = p->axes[p->n_axes - 1];
  int shape[CORE_MAX_NDIM], box[CORE_MAX_NDIM];
  memcpy(shape, out->shape, sizeof(int) * (size_t)ndim);
  for (int i = 0; i < p->n_axes; i++) shape[p->axes[i]] = p->length[i];
  for (int d = 0; d < ndim; d++) box[d] = in->shape[d] < shape[d] ? in->shape[d] : shape[d];
  if (irfft && box[last] > p->length[p->n_axes - 1] / 2 + 1) box[last] = p->length[p->n_axes - 1] / 2 + 1;
  int dev = device_of(node);
  const void* px;
  void* po;
  if (gpu_device_ptr(in, dev, &px) || gpu_alloc_output(out, dev, &po)) return 1;
  return gpu_launch_fft(dev, px, in->dtype == MLX_COMPLEX64, in->strides, box, shape, ndim, p->axes, p->n_axes,
                        p->inverse, irfft, po, out->shape, p->scale);
}

const gpu_entry gpu_fft_kernels[] = {
    {&prim_fft, k_fft},
    {NULL, NULL},
};
#else
typedef int dispatch_fft_unused_without_cuda;
#endif
