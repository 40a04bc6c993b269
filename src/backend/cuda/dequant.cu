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

// Each thread takes 8 consecutive values of a row (cols is a multiple of the group size, hence
// of 8), so the row and group come from one division per 8 values.
__global__ void dequant_affine(void* out, int out_dtype, const uint8_t* w, const void* scales, int s_dtype,
                               const void* biases, int b_dtype, int sum_dtype, int64_t rows, int64_t cols,
                               int bits, int group, bool emulate) {
  const int64_t units_per_row = cols / 8, units = rows * units_per_row;
  const int64_t row_bytes = cols * bits / 8, groups = cols / group;
  const uint32_t mask = (1u << bits) - 1u;
  for (int64_t u = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; u < units; u += (int64_t)gridDim.x * blockDim.x) {
    const int64_t r = u / units_per_row, k0 = (u - r * units_per_row) * 8;
    // 8 values of `bits` bits start on a byte boundary: read them as one little-endian integer.
    const uint8_t* src = w + r * row_bytes + k0 * bits / 8;
    uint64_t packed = 0;
    for (int b = 0; b < bits; b++) packed |= (uint64_t)src[b] << (8 * b);
    const int64_t g = r * groups + k0 / group;
    const float scale = load_f32(scales, s_dtype, g), bias = load_f32(biases, b_dtype, g);
    const int64_t base = r * cols + k0;
#pragma unroll
    for (int e = 0; e < 8; e++) {
      const float q = (float)((uint32_t)(packed >> (e * bits)) & mask);
      const float value =
          emulate ? round_to(round_to(scale * q, s_dtype) + bias, sum_dtype) : scale * q + bias;
      store_f32(out, out_dtype, base + e, value);
    }
  }
}

// The common case, 4 or 8 bits into float16/bfloat16 with scales, biases and the sum in that
// dtype (a quantized model's prefill): the same values as dequant_affine, with the 8 packed values
// of a thread read by one 4- or 8-byte load and written by one 16-byte store, and the dtypes known
// at compile time (byte loads, 2-byte stores and a dtype switch per value held the generic kernel
// to ~0.5 TB/s: an 8B 4-bit prefill of 128 tokens spent ~40 of its ~50 ms dequantizing).
template <int BITS, int DT>
__global__ void dequant_affine_half(uint16_t* out, const uint8_t* w, const uint16_t* scales, const uint16_t* biases,
                                    int64_t rows, int64_t cols, int group, bool emulate) {
  using T = float_dt<DT>;
  const int64_t units_per_row = cols / 8, units = rows * units_per_row;
  const int64_t row_bytes = cols * BITS / 8, groups = cols / group;
  constexpr uint32_t mask = (1u << BITS) - 1u;
#pragma unroll 2
  for (int64_t u = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; u < units; u += (int64_t)gridDim.x * blockDim.x) {
    const int64_t r = u / units_per_row, k0 = (u - r * units_per_row) * 8;
    const uint8_t* src = w + r * row_bytes + k0 * BITS / 8;
    uint64_t packed;
    if constexpr (BITS == 4) {
      packed = *(const uint32_t*)src;
    } else {
      const uint2 p2 = *(const uint2*)src;
      packed = (uint64_t)p2.x | ((uint64_t)p2.y << 32);
    }
    const int64_t g = r * groups + k0 / group;
    const float scale = T::ld(scales[g]), bias = T::ld(biases[g]);
    uint32_t h[4];
#pragma unroll
    for (int e = 0; e < 8; e += 2) {
      float v[2];
#pragma unroll
      for (int i = 0; i < 2; i++) {
        const float q = (float)((uint32_t)(packed >> ((e + i) * BITS)) & mask);
        v[i] = emulate ? round_as<DT>(round_as<DT>(scale * q) + bias) : scale * q + bias;
      }
      h[e / 2] = (uint32_t)T::st(v[0]) | ((uint32_t)T::st(v[1]) << 16);
    }
    *(uint4*)(out + r * cols + k0) = make_uint4(h[0], h[1], h[2], h[3]);
  }
}

}  // namespace

extern "C" int gpu_launch_dequantize_affine(int device, void* out, int out_dtype, const void* w, const void* scales,
                                            int s_dtype, const void* biases, int b_dtype, int sum_dtype,
                                            int64_t rows, int64_t cols, int bits, int group_size, bool emulate) {
  if (rows == 0 || cols == 0) return 0;
  cudaStream_t s = gpu_stream(device);
  if (!s) return 1;
  int64_t total = rows * cols / 8, blocks = (total + 255) / 256, cap = (int64_t)gpu_sm_count(device) * 16;
  const unsigned grid = (unsigned)(blocks < cap ? blocks : cap);
  const bool half = out_dtype == MLX_BFLOAT16 || out_dtype == MLX_FLOAT16;
  if ((bits == 4 || bits == 8) && half && s_dtype == out_dtype && b_dtype == out_dtype && sum_dtype == out_dtype &&
      ((uintptr_t)w % 8) == 0 && ((uintptr_t)out % 16) == 0) {
    auto kernel = bits == 4 ? (out_dtype == MLX_BFLOAT16 ? dequant_affine_half<4, MLX_BFLOAT16>
                                                         : dequant_affine_half<4, MLX_FLOAT16>)
                            : (out_dtype == MLX_BFLOAT16 ? dequant_affine_half<8, MLX_BFLOAT16>
                                                         : dequant_affine_half<8, MLX_FLOAT16>);
    kernel<<<grid, 256, 0, s>>>((uint16_t*)out, (const uint8_t*)w, (const uint16_t*)scales, (const uint16_t*)biases,
                                rows, cols, group_size, emulate);
    return GPU_LAUNCHED("dequantize");
  }
  dequant_affine<<<(unsigned)(blocks < cap ? blocks : cap), 256, 0, s>>>(out, out_dtype, (const uint8_t*)w, scales,
                                                                         s_dtype, biases, b_dtype, sum_dtype, rows,
                                                                         cols, bits, group_size, emulate);
  return GPU_LAUNCHED("dequantize");
}
