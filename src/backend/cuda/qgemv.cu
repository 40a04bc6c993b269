// Batch-1 decode with affine-quantized weights (MLX's layout, quantized_matmul with
// transpose=true): y (N) = W x for W (N, K) packed LSB-first in uint32 words, with a scale and a
// bias per group of 32, 64 or 128 values. One warp per row; each lane loads 16 bytes of packed
// weights at a time (32 4-bit or 16 8-bit values, always inside one group) and adds
// scale * sum(x q) + bias * sum(x) for them, as the CPU kernel (qgemv.c) groups it. x is staged
// in shared memory as float32 once per block.
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

#include "backend/cuda/common.cuh"
#include "backend/cuda/launch.h"

namespace {

constexpr int QG_THREADS = 256;

template <int BITS>
__global__ void __launch_bounds__(QG_THREADS)
    qgemv_kernel(void* y, int y_dtype, const void* x, int x_dtype, int64_t x_stride,
                 const uint8_t* w, const void* scales, const void* biases, int s_dtype, int64_t N,
                 int64_t K, int group) {
  extern __shared__ float xs[];
  for (int64_t k = threadIdx.x; k < K; k += blockDim.x) xs[k] = load_f32(x, x_dtype, k * x_stride);
  __syncthreads();
  constexpr int PER = 128 / BITS;  // values per 16-byte load
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = QG_THREADS / 32;
  const int64_t row_bytes = K * BITS / 8, groups = K / group;
  for (int64_t n = (int64_t)blockIdx.x * warps + warp; n < N; n += (int64_t)gridDim.x * warps) {
    const uint8_t* row = w + n * row_bytes;
    float acc = 0.0f;
#pragma unroll 4
    for (int64_t c = lane; c * 16 < row_bytes; c += 32) {
      uint4 u = __ldg((const uint4*)(row + c * 16));
      const uint32_t words[4] = {u.x, u.y, u.z, u.w};
      const int64_t k0 = c * PER;
      float dot = 0.0f, sum = 0.0f;
#pragma unroll
      for (int t = 0; t < 4; t++) {
#pragma unroll
        for (int e = 0; e < 32 / BITS; e++) {
          float xv = xs[k0 + t * (32 / BITS) + e];
          dot += xv * (float)((words[t] >> (e * BITS)) & ((1u << BITS) - 1));
          sum += xv;
        }
      }
      int64_t g = n * groups + k0 / group;
      acc += load_f32(scales, s_dtype, g) * dot + load_f32(biases, s_dtype, g) * sum;
    }
    for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
    if (lane == 0) store_f32(y, y_dtype, n, acc);
  }
}

}  // namespace

extern "C" bool gpu_qgemv_supported(int bits, int group_size, int64_t K) {
  return (bits == 4 || bits == 8) && (group_size == 32 || group_size == 64 || group_size == 128) &&
         K > 0 && K % group_size == 0 && K * (int64_t)sizeof(float) <= 160 * 1024;
}

extern "C" int gpu_launch_qgemv_affine(int device, int bits, int group_size, void* y, int y_dtype,
                                       const void* x, int x_dtype, int64_t x_stride,
                                       const void* w, const void* scales, const void* biases,
                                       int s_dtype, int64_t N, int64_t K) {
  if (N == 0) return 0;
  if (!gpu_qgemv_supported(bits, group_size, K) || ((uintptr_t)w & 15u))
    return util_error("quantized_matmul: unsupported layout for the GPU kernel");
  cudaStream_t s = gpu_stream(device);
  if (!s) return 1;
  int sms = gpu_sm_count(device);
  const int warps = QG_THREADS / 32;
  // A few rows per warp: x is staged once per block, so fewer, fuller blocks read it less often.
  int64_t blocks = (N + warps - 1) / warps, cap = 2 * (int64_t)sms;
  unsigned grid = (unsigned)(blocks < cap ? blocks : cap);
  size_t smem = sizeof(float) * (size_t)K;
  // The shared-memory ceiling is raised once per kernel, to the largest size seen so far (the
  // attribute call costs microseconds: too much for every decode step).
  static size_t configured[2];
  size_t* ceiling = &configured[bits == 4 ? 0 : 1];
  int st = 0;
  if (smem > *ceiling) {
    st = gpu_check(bits == 4 ? cudaFuncSetAttribute(qgemv_kernel<4>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem)
                             : cudaFuncSetAttribute(qgemv_kernel<8>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem),
                   "qgemv shared memory");
    if (!st) *ceiling = smem;
  }
  if (!st) {
    if (bits == 4)
      qgemv_kernel<4><<<grid, QG_THREADS, smem, s>>>(y, y_dtype, x, x_dtype, x_stride, (const uint8_t*)w, scales,
                                                     biases, s_dtype, N, K, group_size);
    else
      qgemv_kernel<8><<<grid, QG_THREADS, smem, s>>>(y, y_dtype, x, x_dtype, x_stride, (const uint8_t*)w, scales,
                                                     biases, s_dtype, N, K, group_size);
  }
  return st ? st : GPU_LAUNCHED("quantized GEMV");
}
