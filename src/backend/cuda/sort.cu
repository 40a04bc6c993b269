// Sort, argsort, partition and argpartition along one axis on the GPU, equal to the CPU's
// (cpu/sort.c) element for element. Each line becomes (key, index) items in scratch memory: the
// key a uint64 whose unsigned order is the CPU's order of values (so items compare as two
// integers), the index breaking ties, which makes the order total and any correct sort stable.
// Sorts: a bitonic network over the line padded to a power of two (padding sorts last), its steps
// inside tiles of up to 4096 items in shared memory, the longer strides (lines above 4096) one
// launch per step in global memory. Partitions: the CPU's quickselect itself, one thread per line,
// since its result depends on how it moves items, not only on their order. Few long lines (a
// vocabulary row) go through CUB's radix sort instead, a line at a time: the bitonic network's
// ~20 global passes over a 152k line took ~220 us. LSD radix sorting is stable, so items with
// equal keys keep their increasing indices, the same total order.
#include <cuda_runtime.h>
#include <stdint.h>

#include <cub/device/device_radix_sort.cuh>

#include "backend/cuda/common.cuh"
#include "backend/cuda/launch.h"
#include "backend/gpu.h"

namespace {

constexpr uint64_t kSignBit = 1ull << 63;
constexpr uint64_t kPadKey = ~0ull;       // NaN's key too; padding has the largest index as well
constexpr uint32_t kPadIndex = ~0u;
constexpr int64_t kTile = 4096;           // items per shared-memory tile: 48 KiB of keys and indices

// The key of element i: floats as doubles (exact for every float dtype) with -0 folded into 0
// and NaN above everything, mapped to bits that order as unsigned integers; integers and bool as
// int64 with the sign bit flipped; uint64 as it is.
__device__ uint64_t sort_key(const void* p, int dtype, int64_t i) {
  double d;
  switch (dtype) {
    case MLX_FLOAT16: d = f16_to_f32(((const uint16_t*)p)[i]); break;
    case MLX_BFLOAT16: d = bf16_to_f32(((const uint16_t*)p)[i]); break;
    case MLX_FLOAT32: d = ((const float*)p)[i]; break;
    case MLX_FLOAT64: d = ((const double*)p)[i]; break;
    case MLX_BOOL: return (((const uint8_t*)p)[i] != 0) ^ kSignBit;
    case MLX_UINT8: return (uint64_t)((const uint8_t*)p)[i] ^ kSignBit;
    case MLX_UINT16: return (uint64_t)((const uint16_t*)p)[i] ^ kSignBit;
    case MLX_UINT32: return (uint64_t)((const uint32_t*)p)[i] ^ kSignBit;
    case MLX_UINT64: return ((const uint64_t*)p)[i];
    case MLX_INT8: return (uint64_t)(int64_t)((const int8_t*)p)[i] ^ kSignBit;
    case MLX_INT16: return (uint64_t)(int64_t)((const int16_t*)p)[i] ^ kSignBit;
    case MLX_INT32: return (uint64_t)(int64_t)((const int32_t*)p)[i] ^ kSignBit;
    default: return (uint64_t)((const int64_t*)p)[i] ^ kSignBit;
  }
  if (d != d) return kPadKey;
  if (d == 0) d = 0;  // -0 equals 0 on the CPU: ties go by index
  uint64_t bits = (uint64_t)__double_as_longlong(d);
  return (bits & kSignBit) ? ~bits : bits | kSignBit;
}

// Element i of the input written as element o of the output, as the CPU's round trip through
// double (or int64) stores it: the same value, NaNs made quiet, bool as 0/1.
__device__ void store_value(void* out, int64_t o, const void* in, int64_t i, int dtype) {
  switch (dtype) {
    case MLX_FLOAT16: ((uint16_t*)out)[o] = f32_to_f16(f16_to_f32(((const uint16_t*)in)[i])); break;
    case MLX_BFLOAT16: ((uint16_t*)out)[o] = f32_to_bf16(bf16_to_f32(((const uint16_t*)in)[i])); break;
    case MLX_FLOAT32: {
      uint32_t u = ((const uint32_t*)in)[i];
      ((uint32_t*)out)[o] = (u & 0x7fffffffu) > 0x7f800000u ? u | 0x400000u : u;
      break;
    }
    case MLX_BOOL: ((uint8_t*)out)[o] = ((const uint8_t*)in)[i] != 0; break;
    case MLX_INT8:
    case MLX_UINT8: ((uint8_t*)out)[o] = ((const uint8_t*)in)[i]; break;
    case MLX_INT16:
    case MLX_UINT16: ((uint16_t*)out)[o] = ((const uint16_t*)in)[i]; break;
    case MLX_INT32:
    case MLX_UINT32: ((uint32_t*)out)[o] = ((const uint32_t*)in)[i]; break;
    default: ((uint64_t*)out)[o] = ((const uint64_t*)in)[i]; break;  // 64-bit integers, float64
  }
}

__device__ __forceinline__ bool item_less(uint64_t ka, uint32_t ia, uint64_t kb, uint32_t ib) {
  return ka < kb || (ka == kb && ia < ib);
}

// Line r's items at [r * padded, (r + 1) * padded): element k's key and index k, then padding.
__global__ void load_items(uint64_t* keys, uint32_t* idx, const void* in, int dtype, gpu_rows in_lines,
                           int64_t lines, int64_t n, int64_t padded) {
  const int64_t total = lines * padded;
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < total; e += (int64_t)gridDim.x * blockDim.x) {
    const int64_t r = e / padded, k = e - r * padded;
    if (k < n) {
      keys[e] = sort_key(in, dtype, gpu_row_offset(in_lines, r) + k * in_lines.inner_stride);
      idx[e] = (uint32_t)k;
    } else {
      keys[e] = kPadKey;
      idx[e] = kPadIndex;
    }
  }
}

// The compare-exchange of the bitonic network's step (k, j) for pair p: items i and i + j, put in
// ascending order where bit k of i (its position in the line) is clear, descending elsewhere.
__device__ __forceinline__ void bitonic_pair(uint64_t* keys, uint32_t* idx, int64_t p, int64_t line_pos, int64_t k,
                                             int64_t j) {
  const int64_t i = ((p & ~(j - 1)) << 1) | (p & (j - 1)), l = i + j;
  const bool ascending = ((line_pos + i) & k) == 0;
  const uint64_t ki = keys[i], kl = keys[l];
  const uint32_t ii = idx[i], il = idx[l];
  if (item_less(kl, il, ki, ii) == ascending) {
    keys[i] = kl, keys[l] = ki;
    idx[i] = il, idx[l] = ii;
  }
}

// Block b sorts tile b of `tile` items (a power of two dividing padded) in shared memory: the
// network's steps (k, j) for k from k_first to k_last and every j below min(k, tile).
__global__ void bitonic_tile(uint64_t* keys, uint32_t* idx, int64_t padded, int64_t tile, int64_t k_first,
                             int64_t k_last) {
  extern __shared__ uint64_t shared_keys[];
  uint32_t* shared_idx = (uint32_t*)(shared_keys + tile);
  const int64_t base = blockIdx.x * tile, line_pos = base % padded;
  for (int64_t t = threadIdx.x; t < tile; t += blockDim.x) {
    shared_keys[t] = keys[base + t];
    shared_idx[t] = idx[base + t];
  }
  for (int64_t k = k_first; k <= k_last; k <<= 1) {
    for (int64_t j = (k < tile ? k : tile) / 2; j > 0; j >>= 1) {
      __syncthreads();
      for (int64_t p = threadIdx.x; p < tile / 2; p += blockDim.x) bitonic_pair(shared_keys, shared_idx, p, line_pos, k, j);
    }
  }
  __syncthreads();
  for (int64_t t = threadIdx.x; t < tile; t += blockDim.x) {
    keys[base + t] = shared_keys[t];
    idx[base + t] = shared_idx[t];
  }
}

// One step (k, j) with j >= the tile size, over all lines, in global memory.
__global__ void bitonic_step(uint64_t* keys, uint32_t* idx, int64_t lines, int64_t padded, int64_t k, int64_t j) {
  const int64_t half = padded / 2, total = lines * half;
  for (int64_t q = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; q < total; q += (int64_t)gridDim.x * blockDim.x) {
    const int64_t r = q / half;
    bitonic_pair(keys + r * padded, idx + r * padded, q - r * half, 0, k, j);
  }
}

__device__ __forceinline__ void swap_items(uint64_t* keys, uint32_t* idx, int64_t a, int64_t b) {
  const uint64_t k = keys[a];
  keys[a] = keys[b], keys[b] = k;
  const uint32_t i = idx[a];
  idx[a] = idx[b], idx[b] = i;
}

// select_kth of cpu/sort.c step for step (Hoare quickselect, median-of-three pivots), on line r's
// n items: the same comparisons of the same order give the same arrangement.
__global__ void quickselect(uint64_t* all_keys, uint32_t* all_idx, int64_t lines, int64_t n, int64_t kth) {
  for (int64_t r = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; r < lines; r += (int64_t)gridDim.x * blockDim.x) {
    uint64_t* keys = all_keys + r * n;
    uint32_t* idx = all_idx + r * n;
    int64_t lo = 0, hi = n - 1;
    while (lo < hi) {
      const int64_t mid = lo + (hi - lo) / 2;
      if (item_less(keys[mid], idx[mid], keys[lo], idx[lo])) swap_items(keys, idx, mid, lo);
      if (item_less(keys[hi], idx[hi], keys[lo], idx[lo])) swap_items(keys, idx, hi, lo);
      if (item_less(keys[hi], idx[hi], keys[mid], idx[mid])) swap_items(keys, idx, hi, mid);
      const uint64_t pivot_key = keys[mid];
      const uint32_t pivot_idx = idx[mid];
      int64_t i = lo, j = hi;
      while (i <= j) {
        while (item_less(keys[i], idx[i], pivot_key, pivot_idx)) i++;
        while (item_less(pivot_key, pivot_idx, keys[j], idx[j])) j--;
        if (i <= j) swap_items(keys, idx, i++, j--);
      }
      if (kth <= j) hi = j;
      else if (kth >= i) lo = i;
      else break;
    }
  }
}

// Output element k of line r: item k's index, or the input element it names.
__global__ void store_items(void* out, const uint32_t* idx, const void* in, int dtype, bool indices,
                            gpu_rows in_lines, gpu_rows out_lines, int64_t lines, int64_t n, int64_t padded) {
  const int64_t total = lines * n;
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < total; e += (int64_t)gridDim.x * blockDim.x) {
    const int64_t r = e / n, k = e - r * n;
    const uint32_t src = idx[r * padded + k];
    const int64_t o = gpu_row_offset(out_lines, r) + k * out_lines.inner_stride;
    if (indices) ((uint32_t*)out)[o] = src;
    else store_value(out, o, in, gpu_row_offset(in_lines, r) + (int64_t)src * in_lines.inner_stride, dtype);
  }
}

unsigned grid_for(int device, int64_t n, int threads) {
  const int64_t blocks = (n + threads - 1) / threads, cap = (int64_t)gpu_sm_count(device) * 16;
  return (unsigned)(blocks < 1 ? 1 : blocks < cap ? blocks : cap);
}

// The bitonic network over lines of `padded` items (a power of two >= 2).
int bitonic_sort(int device, cudaStream_t s, uint64_t* keys, uint32_t* idx, int64_t lines, int64_t padded) {
  const int64_t tile = padded < kTile ? padded : kTile, blocks = lines * (padded / tile);
  const int threads = (int)(tile / 2 < 1024 ? tile / 2 : 1024);
  const size_t shared = (size_t)tile * (sizeof(uint64_t) + sizeof(uint32_t));
  bitonic_tile<<<(unsigned)blocks, threads, shared, s>>>(keys, idx, padded, tile, 2, tile);
  if (GPU_LAUNCHED("sort")) return 1;
  for (int64_t k = 2 * tile; k <= padded; k <<= 1) {
    for (int64_t j = k / 2; j >= tile; j >>= 1) {
      bitonic_step<<<grid_for(device, lines * padded / 2, 256), 256, 0, s>>>(keys, idx, lines, padded, k, j);
      if (GPU_LAUNCHED("sort")) return 1;
    }
    bitonic_tile<<<(unsigned)blocks, threads, shared, s>>>(keys, idx, padded, tile, k, k);
    if (GPU_LAUNCHED("sort")) return 1;
  }
  return 0;
}

// Lines longer than a tile, at most this many, are radix sorted.
constexpr int64_t kRadixMaxLines = 64;

// The lowest key bit that can differ: a float dtype's value, exact in a double, leaves the
// double's low mantissa bits constant (zeros, or ones once a negative key is inverted).
int first_key_bit(int dtype) {
  switch (dtype) {
    case MLX_FLOAT32: return 52 - 23;
    case MLX_FLOAT16: return 52 - 10;
    case MLX_BFLOAT16: return 52 - 7;
    default: return 0;
  }
}

// Radix sorts each line's (key, index) items from keys/idx into keys_out/idx_out; temp holds
// temp_bytes (radix_temp_bytes).
int radix_sort_lines(cudaStream_t s, const uint64_t* keys, const uint32_t* idx, uint64_t* keys_out, uint32_t* idx_out,
                     void* temp, size_t temp_bytes, int64_t lines, int64_t n, int dtype) {
  for (int64_t r = 0; r < lines; r++) {
    size_t bytes = temp_bytes;
    cudaError_t e = cub::DeviceRadixSort::SortPairs(temp, bytes, keys + r * n, keys_out + r * n, idx + r * n,
                                                    idx_out + r * n, n, first_key_bit(dtype), 64, s);
    if (gpu_check(e, "radix sort")) return 1;
  }
  return 0;
}

size_t radix_temp_bytes(int64_t n, int dtype) {
  size_t bytes = 0;
  if (cub::DeviceRadixSort::SortPairs(nullptr, bytes, (const uint64_t*)nullptr, (uint64_t*)nullptr,
                                      (const uint32_t*)nullptr, (uint32_t*)nullptr, n, first_key_bit(dtype), 64) !=
      cudaSuccess)
    return 0;
  return bytes;
}

}  // namespace

extern "C" int gpu_launch_sort(int device, int dtype, bool indices, bool partition, int64_t kth, void* out,
                               const void* in, const gpu_rows* in_lines, const gpu_rows* out_lines, int64_t lines,
                               int64_t n) {
  if (lines == 0 || n == 0) return 0;
  cudaStream_t s = gpu_stream(device);
  if (!s) return 1;
  const bool radix = !partition && n > kTile && lines <= kRadixMaxLines && n <= 0x7fffffff;
  int64_t padded = 1;  // bitonic sorts pad lines to a power of two; the others take them as they are
  while (padded < n) padded <<= 1;
  if (partition || radix) padded = n;
  const size_t count = (size_t)(lines * padded), item_bytes = sizeof(uint64_t) + sizeof(uint32_t);
  const size_t temp_bytes = radix ? (radix_temp_bytes(n, dtype) + 255) / 256 * 256 : 0;
  if (radix && !temp_bytes) return util_error("sort: the radix sort's scratch size is unknown");
  // Items, then (radix) the sorted items and CUB's scratch; keys first (8-byte aligned).
  const size_t items_end = count * item_bytes * (radix ? 2 : 1), temp_at = (items_end + 255) / 256 * 256;
  const size_t bytes = radix ? temp_at + temp_bytes : items_end;
  void* scratch = NULL;
  if (gpu_backend_alloc(device, bytes, &scratch)) return 1;
  uint64_t* keys = (uint64_t*)scratch;
  uint64_t* keys_sorted = keys + count;
  uint32_t* idx = (uint32_t*)(keys + (radix ? 2 * count : count));
  uint32_t* idx_sorted = idx + count;
  void* temp = (char*)scratch + temp_at;  // (pool blocks are 256-byte aligned)
  load_items<<<grid_for(device, (int64_t)count, 256), 256, 0, s>>>(keys, idx, in, dtype, *in_lines, lines, n, padded);
  int status = GPU_LAUNCHED("sort");
  if (!status && partition)
    quickselect<<<grid_for(device, lines, 64), 64, 0, s>>>(keys, idx, lines, n, kth), status = GPU_LAUNCHED("partition");
  else if (!status && radix)
    status = radix_sort_lines(s, keys, idx, keys_sorted, idx_sorted, temp, temp_bytes, lines, n, dtype);
  else if (!status && padded >= 2)
    status = bitonic_sort(device, s, keys, idx, lines, padded);
  if (!status) {
    store_items<<<grid_for(device, lines * n, 256), 256, 0, s>>>(out, radix ? idx_sorted : idx, in, dtype, indices,
                                                                 *in_lines, *out_lines, lines, n, padded);
    status = GPU_LAUNCHED("sort");
  }
  gpu_backend_free(device, scratch, bytes);
  return status;
}
