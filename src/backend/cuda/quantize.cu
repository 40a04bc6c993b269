// Affine quantization on the GPU, the inverse of dequant.cu: one thread per group computes MLX's
// scale and bias and packs the group's values, with the float operations of cpu_eval_quantize
// (quantized.c) in the same order (IEEE division, rintf's ties to even, fminf/fmaxf ignoring NaN
// and keeping the first of -0 and +0), so scales, biases and packed words equal the CPU's bit for
// bit.
#include <cuda_runtime.h>
#include <stdint.h>

#include "backend/cuda/common.cuh"
#include "backend/cuda/launch.h"

namespace {

// fminf/fmaxf as the CPU's C library computes them: NaN ignored, and between equal values (-0
// and +0) the first argument, so that a group's zero edge keeps the sign of its first zero.
__device__ __forceinline__ float min_first(float a, float b) { return (b < a || a != a) ? b : a; }
__device__ __forceinline__ float max_first(float a, float b) { return (b > a || a != a) ? b : a; }

__global__ void quantize_affine(const void* w, int w_dtype, gpu_rows w_rows, int64_t rows, int64_t K, int bits,
                                int group, uint8_t* packed, void* scales, void* biases, float host_nan) {
  const int64_t groups_per_row = K / group, groups = rows * groups_per_row, row_bytes = K * bits / 8;
  const float n_bins = (float)((1 << bits) - 1), eps = 1e-7f;
  for (int64_t g = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; g < groups; g += (int64_t)gridDim.x * blockDim.x) {
    const int64_t r = g / groups_per_row, first = (g - r * groups_per_row) * group;
    const int64_t base = gpu_row_offset(w_rows, r) + first * w_rows.inner_stride, step = w_rows.inner_stride;
    float w_min = INFINITY, w_max = -INFINITY;
    for (int i = 0; i < group; i++) {
      const float v = load_f32(w, w_dtype, base + i * step);
      w_min = min_first(w_min, v);
      w_max = max_first(w_max, v);
    }
    float scale, bias;
    if (bits == 1) {
      scale = fmaxf(w_max - w_min, eps);
      bias = w_min;
    } else {
      // The edge of larger magnitude maps to q = 0; scale is nudged so that 0 is exact.
      const bool min_is_edge = fabsf(w_min) > fabsf(w_max);
      scale = fmaxf((w_max - w_min) / n_bins, eps);
      scale = min_is_edge ? scale : -scale;
      const float edge = min_is_edge ? w_min : w_max, q0 = rintf(edge / scale);
      bias = 0;
      if (q0 != 0) {
        scale = edge / q0;
        bias = edge;
      }
    }
    // A group of infinities or NaNs makes scale NaN (inf / inf): the host's bits, not the GPU's.
    if (scale != scale) scale = host_nan;
    // The group's bits start on a byte boundary (group * bits is a multiple of 8).
    uint8_t* dst = packed + r * row_bytes + first * bits / 8;
    uint32_t acc = 0;
    int filled = 0;
    for (int i = 0; i < group; i++) {
      float q = rintf((load_f32(w, w_dtype, base + i * step) - bias) / scale);
      q = fminf(fmaxf(q, 0.0f), n_bins);
      acc |= (uint32_t)q << filled;
      for (filled += bits; filled >= 8; filled -= 8, acc >>= 8) *dst++ = (uint8_t)acc;
    }
    store_f32(scales, w_dtype, g, scale);
    store_f32(biases, w_dtype, g, bias);
  }
}

}  // namespace

extern "C" int gpu_launch_quantize_affine(int device, int w_dtype, const void* w, const gpu_rows* w_rows, int64_t rows,
                                          int64_t K, int bits, int group_size, void* packed, void* scales,
                                          void* biases) {
  const int64_t groups = rows * (K / group_size);
  if (groups == 0) return 0;
  cudaStream_t s = gpu_stream(device);
  if (!s) return 1;
  // The NaN the CPU's invalid operations produce (x86: 0xffc00000; the GPU's is 0x7fffffff).
  volatile float zero = 0.0f;
  const float host_nan = zero / zero;
  const int64_t blocks = (groups + 127) / 128, cap = (int64_t)gpu_sm_count(device) * 16;
  quantize_affine<<<(unsigned)(blocks < cap ? blocks : cap), 128, 0, s>>>(
      w, w_dtype, *w_rows, rows, K, bits, group_size, (uint8_t*)packed, scales, biases, host_nan);
  return GPU_LAUNCHED("quantize");
}
