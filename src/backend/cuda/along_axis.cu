// take_along_axis and put_along_axis on the GPU: an element per position of the indices'
// broadcast shape. put resolves several updates of one element as the CPU does (the last in
// row-major order wins): each position first claims its target with an atomic maximum of its
// position, then only the winner writes.
#include <cuda_runtime.h>
#include <stdint.h>

#include "backend/cuda/common.cuh"
#include "backend/cuda/launch.h"
#include "backend/gpu.h"

namespace {

// Where position p of the iteration shape reads or writes: the index element, the `other`
// element, and the indexed element (-1 when the index is out of range).
struct along_offsets {
  int64_t other, indexed;
};

__device__ along_offsets along_at(const gpu_along& g, const char* idx, int idx_bytes, int64_t p) {
  int64_t other = 0, indexed = 0, at_idx = 0;
  for (int d = g.ndim - 1; d >= 0; d--) {
    const int64_t q = p / g.shape[d], c = p - q * g.shape[d];
    p = q;
    other += c * g.other_strides[d];
    at_idx += c * g.idx_strides[d];
    if (d != g.axis) indexed += c * g.indexed_strides[d];
  }
  int64_t v = gpu_load_index(idx + at_idx * idx_bytes, g.idx_dtype);
  if (v < 0) v += g.axis_n;
  along_offsets o;
  o.other = other;
  o.indexed = v >= 0 && v < g.axis_n ? indexed + v * g.indexed_strides[g.axis] : -1;
  return o;
}

int idx_bytes_of(int dtype) {
  switch (dtype) {
    case MLX_INT8:
    case MLX_UINT8: return 1;
    case MLX_INT16:
    case MLX_UINT16: return 2;
    case MLX_INT32:
    case MLX_UINT32: return 4;
    default: return 8;
  }
}

template <typename T>
__global__ void take_along(T* out, const T* a, const char* idx, int idx_bytes, gpu_along g, int64_t total) {
  for (int64_t p = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; p < total; p += (int64_t)gridDim.x * blockDim.x) {
    const along_offsets o = along_at(g, idx, idx_bytes, p);
    out[o.other] = o.indexed >= 0 ? a[o.indexed] : T(0);
  }
}

// Each target keeps the largest position + 1 that writes it (0: none).
__global__ void put_claim(unsigned long long* winner, const char* idx, int idx_bytes, gpu_along g, int64_t total) {
  for (int64_t p = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; p < total; p += (int64_t)gridDim.x * blockDim.x) {
    const along_offsets o = along_at(g, idx, idx_bytes, p);
    if (o.indexed >= 0) atomicMax(winner + o.indexed, (unsigned long long)p + 1);
  }
}

template <typename T>
__global__ void put_write(T* out, const T* values, const unsigned long long* winner, const char* idx, int idx_bytes,
                          gpu_along g, int64_t total) {
  for (int64_t p = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; p < total; p += (int64_t)gridDim.x * blockDim.x) {
    const along_offsets o = along_at(g, idx, idx_bytes, p);
    if (o.indexed >= 0 && winner[o.indexed] == (unsigned long long)p + 1) out[o.indexed] = values[o.other];
  }
}

int64_t positions(const gpu_along* g) {
  int64_t n = 1;
  for (int d = 0; d < g->ndim; d++) n *= g->shape[d];
  return n;
}

unsigned grid_for(int device, int64_t n) {
  const int64_t blocks = (n + 255) / 256, cap = (int64_t)gpu_sm_count(device) * 16;
  return (unsigned)(blocks < cap ? blocks : cap);
}

template <typename T>
void launch_take(cudaStream_t s, unsigned grid, void* out, const void* a, const void* idx, const gpu_along* g,
                 int64_t total) {
  take_along<<<grid, 256, 0, s>>>((T*)out, (const T*)a, (const char*)idx, idx_bytes_of(g->idx_dtype), *g, total);
}

template <typename T>
void launch_put(cudaStream_t s, unsigned grid, void* out, const void* values, const unsigned long long* winner,
                const void* idx, const gpu_along* g, int64_t total) {
  put_write<<<grid, 256, 0, s>>>((T*)out, (const T*)values, winner, (const char*)idx, idx_bytes_of(g->idx_dtype), *g,
                                 total);
}

}  // namespace

extern "C" int gpu_launch_take_along_axis(int device, int elem_bytes, void* out, const void* a, const void* idx,
                                          const gpu_along* g) {
  const int64_t total = positions(g);
  if (total == 0) return 0;
  cudaStream_t s = gpu_stream(device);
  if (!s) return 1;
  const unsigned grid = grid_for(device, total);
  switch (elem_bytes) {
    case 1: launch_take<uint8_t>(s, grid, out, a, idx, g, total); break;
    case 2: launch_take<uint16_t>(s, grid, out, a, idx, g, total); break;
    case 4: launch_take<uint32_t>(s, grid, out, a, idx, g, total); break;
    default: launch_take<uint64_t>(s, grid, out, a, idx, g, total); break;
  }
  return GPU_LAUNCHED("take_along_axis");
}

extern "C" int gpu_launch_put_along_axis(int device, int elem_bytes, void* out, int64_t out_size, const void* values,
                                         const void* idx, const gpu_along* g) {
  const int64_t total = positions(g);
  if (total == 0) return 0;
  cudaStream_t s = gpu_stream(device);
  if (!s) return 1;
  const size_t bytes = (size_t)out_size * sizeof(unsigned long long);
  void* winner = NULL;
  if (gpu_backend_alloc(device, bytes, &winner)) return 1;
  const unsigned grid = grid_for(device, total);
  int status = gpu_check(cudaMemsetAsync(winner, 0, bytes, s), "put_along_axis memset");
  if (!status) {
    put_claim<<<grid, 256, 0, s>>>((unsigned long long*)winner, (const char*)idx, idx_bytes_of(g->idx_dtype), *g,
                                   total);
    status = GPU_LAUNCHED("put_along_axis");
  }
  if (!status) {
    const unsigned long long* w = (const unsigned long long*)winner;
    switch (elem_bytes) {
      case 1: launch_put<uint8_t>(s, grid, out, values, w, idx, g, total); break;
      case 2: launch_put<uint16_t>(s, grid, out, values, w, idx, g, total); break;
      case 4: launch_put<uint32_t>(s, grid, out, values, w, idx, g, total); break;
      default: launch_put<uint64_t>(s, grid, out, values, w, idx, g, total); break;
    }
    status = GPU_LAUNCHED("put_along_axis");
  }
  gpu_backend_free(device, winner, bytes);
  return status;
}
