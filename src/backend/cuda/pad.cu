// pad: each output element reads the input element it covers, or the pad value (constant mode),
// or the nearest border element of the input (edge mode: per dim, the index clamped into the
// input, which is what the CPU's axis-by-axis border copies amount to).
#include <cuda_runtime.h>
#include <stdint.h>

#include "backend/cuda/common.cuh"
#include "backend/cuda/launch.h"
#include "backend/cuda/strided.cuh"

namespace {

struct pad_geometry {
  int ndim;
  int shape[GPU_MAX_NDIM], in_shape[GPU_MAX_NDIM], low[GPU_MAX_NDIM];
  int64_t in_strides[GPU_MAX_NDIM];
};

template <typename T>
__global__ void pad_kernel(T* out, pad_geometry G, const T* in, const T* value, bool edge, int64_t n) {
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n; e += (int64_t)gridDim.x * blockDim.x) {
    int64_t rest = e, off = 0;
    bool inside = true;
    for (int d = G.ndim - 1; d >= 0 && inside; d--) {
      int64_t q = rest / G.shape[d], j = rest - q * G.shape[d] - G.low[d];
      rest = q;
      if (j < 0 || j >= G.in_shape[d]) {
        inside = edge;
        j = j < 0 ? 0 : G.in_shape[d] - 1;
      }
      off += j * G.in_strides[d];
    }
    out[e] = inside ? in[off] : *value;
  }
}

template <typename T>
void launch_pad_t(cudaStream_t s, void* out, const pad_geometry& G, const void* in, const void* value, bool edge,
                  int64_t n) {
  pad_kernel<T><<<grid_for(n, 256), 256, 0, s>>>((T*)out, G, (const T*)in, (const T*)value, edge, n);
}

}  // namespace

extern "C" int gpu_launch_pad(int device, int elem_bytes, void* out, const int* shape, int ndim, const void* in,
                              const int* in_shape, const int64_t* in_strides, const int* low, const void* value,
                              bool edge) {
  if (ndim > GPU_MAX_NDIM) return util_error("pad: more than %d dimensions on the GPU", GPU_MAX_NDIM);
  pad_geometry G;
  G.ndim = ndim;
  int64_t n = 1;
  for (int d = 0; d < ndim; d++) {
    G.shape[d] = shape[d];
    G.in_shape[d] = in_shape[d];
    G.low[d] = low[d];
    G.in_strides[d] = in_strides[d];
    n *= shape[d];
  }
  if (n == 0) return 0;
  cudaStream_t s = gpu_stream(device);
  if (!s) return 1;
  switch (elem_bytes) {
    case 1: launch_pad_t<uint8_t>(s, out, G, in, value, edge, n); break;
    case 2: launch_pad_t<uint16_t>(s, out, G, in, value, edge, n); break;
    case 4: launch_pad_t<uint32_t>(s, out, G, in, value, edge, n); break;
    case 8: launch_pad_t<uint64_t>(s, out, G, in, value, edge, n); break;
    default: return util_error("pad: %d-byte elements on the GPU", elem_bytes);
  }
  return GPU_LAUNCHED("pad");
}
