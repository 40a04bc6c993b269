// The parts of complex64 arrays on the GPU: conjugate (complex64), real and imag (float32), read
// from any strided layout into a row-major output, as the CPU's conj, crealf and cimagf.
// Complex arithmetic itself still runs on the CPU.
#include <cuda_runtime.h>
#include <stdint.h>

#include "backend/cuda/common.cuh"
#include "backend/cuda/launch.h"
#include "backend/cuda/strided.cuh"

namespace {

__global__ void complex_part_kernel(void* out, const float2* x, nd_layout<1> L, int64_t n, int part) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    int64_t off;
    offsets_of<1>(L, i, &off);
    const float2 v = x[off];
    if (part == GPU_COMPLEX_CONJUGATE) ((float2*)out)[i] = make_float2(v.x, -v.y);
    else ((float*)out)[i] = part == GPU_COMPLEX_REAL ? v.x : v.y;
  }
}

}  // namespace

extern "C" int gpu_launch_complex_part(int device, int part, void* out, const void* x, const int64_t* strides,
                                       const int* shape, int ndim) {
  nd_layout<1> L;
  const int64_t* st[1] = {strides};
  const int64_t n = make_layout<1>(&L, shape, ndim, st);
  if (n == 0) return 0;
  cudaStream_t s = gpu_stream(device);
  if (!s) return 1;
  complex_part_kernel<<<grid_for(n, 256), 256, 0, s>>>(out, (const float2*)x, L, n, part);
  return GPU_LAUNCHED("complex part");
}

