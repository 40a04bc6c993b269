// Affine dequantization in MLX's layout on the GPU: out (rows, cols) = scale * q + bias per group,
// q of 2..8 bits packed LSB-first (a little-endian bit stream per row, so 3-, 5- and 6-bit values
// may straddle bytes). The roundings of MLX's dequantize are reproduced as the CPU kernel does
// (quantized.c): the product in the scales' dtype, the sum in the promotion of the scales' and
// biases' dtypes. Used by dequantize and by quantized_matmul with several rows of x (dequantize,
// then cuBLAS).
#include <cuda_runtime.h>
#include <stdint.h>

#include "backend/cuda/common.cuh"
#include "backend/cuda/launch.h"

namespace {

__device__ __forceinline__ float round_as(int dtype, float v) {
  if (dtype == MLX_BFLOAT16) return bf16_to_f32(f32_to_bf16(v));
  if (dtype == MLX_FLOAT16) return f16_to_f32(f32_to_f16(v));
  return v;
}

__global__ void dequant_affine(void* out, int out_dtype, const uint8_t* w, const void* scales, int s_dtype,
                               const void* biases, int b_dtype, int sum_dtype, int64_t rows, int64_t cols,
                               int bits, int group, bool emulate) {
  const int64_t total = rows * cols;
  const int64_t row_bytes = cols * bits / 8, groups = cols / group;
  const uint32_t mask = (1u << bits) - 1u;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
    int64_t r = i / cols, k = i - r * cols;
    const uint8_t* row = w + r * row_bytes;
    int64_t bit = k * bits;
    uint32_t v = row[bit >> 3] >> (bit & 7);
    if ((bit & 7) + bits > 8) v |= (uint32_t)row[(bit >> 3) + 1] << (8 - (bit & 7));
    int64_t g = r * groups + k / group;
    float scale = load_f32(scales, s_dtype, g), bias = load_f32(biases, b_dtype, g);
    float q = (float)(v & mask);
    float value = emulate ? round_as(sum_dtype, round_as(s_dtype, scale * q) + bias) : scale * q + bias;
    store_f32(out, out_dtype, i, value);
  }
}

}  // namespace

extern "C" int gpu_launch_dequantize_affine(int device, void* out, int out_dtype, const void* w, const void* scales,
                                            int s_dtype, const void* biases, int b_dtype, int sum_dtype,
                                            int64_t rows, int64_t cols, int bits, int group_size, bool emulate) {
  if (rows == 0 || cols == 0) return 0;
  cudaStream_t s = gpu_stream(device);
  if (!s) return 1;
  int64_t total = rows * cols, blocks = (total + 255) / 256, cap = (int64_t)gpu_sm_count(device) * 16;
  dequant_affine<<<(unsigned)(blocks < cap ? blocks : cap), 256, 0, s>>>(out, out_dtype, (const uint8_t*)w, scales,
                                                                         s_dtype, biases, b_dtype, sum_dtype, rows,
                                                                         cols, bits, group_size, emulate);
  return GPU_LAUNCHED("dequantize");
}
