// The GPU half of the convolution: im2col, the patch matrix whose product with the weight is the
// output (dispatch_conv.c multiplies them with cuBLAS, gemm.cu). One thread per element of the
// matrix: simple and coalesced along the channels, which are contiguous in MLX's layout.
#include <cuda_runtime.h>
#include <stdint.h>

#include "backend/cuda/common.cuh"
#include "backend/cuda/launch.h"

namespace {

// col (rows, G, taps, Cg): element (r, grp, u, c) is the input that tap u of output row
// row0 + r reads in channel grp * Cg + c, or 0 (the CPU's geom_init decides the same per axis).
template <typename T>
__global__ void im2col(T* col, const T* x, gpu_conv_shape g, int64_t taps, int64_t row0, int64_t rows) {
  const int64_t Cg = g.C / g.G, width = g.G * taps * Cg, total = rows * width;
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < total; e += (int64_t)gridDim.x * blockDim.x) {
    const int64_t r = e / width, j = e - r * width;
    const int64_t c = j % Cg, u = (j / Cg) % taps, grp = j / (Cg * taps);
    int64_t row = row0 + r, tap_rest = u, off = (grp * Cg + c) * g.x_strides[g.D + 1];
    bool hit = true;
    for (int i = g.D - 1; i >= 0; i--) {
      const int64_t q = row % g.Q[i], t = tap_rest % g.K[i];
      row /= g.Q[i];
      tap_rest /= g.K[i];
      const int64_t tap = g.flip ? g.K[i] - 1 - t : t, dil = g.input_dilation[i];
      const int64_t at = q * g.stride[i] - g.pad_lo[i] + tap * g.kernel_dilation[i];
      hit = hit && at >= 0 && at <= (g.S[i] - 1) * dil && at % dil == 0;
      off += (at / dil) * g.x_strides[i + 1];
    }
    off += row * g.x_strides[0];  // row is now the batch item
    col[e] = hit ? x[off] : T(0);
  }
}

}  // namespace

extern "C" int gpu_launch_im2col(int device, size_t elem_size, void* col, const void* x, const gpu_conv_shape* shape,
                                 int64_t row0, int64_t rows) {
  int64_t taps = 1;
  for (int i = 0; i < shape->D; i++) taps *= shape->K[i];
  const int64_t total = rows * shape->C * taps;
  if (total == 0) return 0;
  if (elem_size != 2 && elem_size != 4) return util_error("im2col: %zu-byte elements are not supported", elem_size);
  cudaStream_t s = gpu_stream(device);
  if (!s) return 1;
  const int64_t blocks = (total + 255) / 256, cap = (int64_t)gpu_sm_count(device) * 16;
  const unsigned grid = (unsigned)(blocks < cap ? blocks : cap);
  if (elem_size == 2)
    im2col<uint16_t><<<grid, 256, 0, s>>>((uint16_t*)col, (const uint16_t*)x, *shape, taps, row0, rows);
  else
    im2col<uint32_t><<<grid, 256, 0, s>>>((uint32_t*)col, (const uint32_t*)x, *shape, taps, row0, rows);
  return GPU_LAUNCHED("im2col");
}

extern "C" int gpu_launch_zero(int device, void* p, size_t nbytes) {
  if (nbytes == 0) return 0;
  cudaStream_t s = gpu_stream(device);
  if (!s) return 1;
  return gpu_check(cudaMemsetAsync(p, 0, nbytes, s), "memset");
}
