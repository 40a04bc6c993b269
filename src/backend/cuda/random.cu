// random_bits on the GPU: Threefry-2x32 (20 rounds) laid out per key exactly as the CPU kernel
// (backend/cpu/random.c) and MLX's RandomBits lay it out, so a key gives the same bytes on either
// device. A key's W output words are cut in two halves: hash (p, half + p) fills words p and
// half + p (half = W / 2, the second half starting one further when W is odd), and an odd W's
// middle word comes from hash (half, 0). One thread per hash.
#include <cuda_runtime.h>
#include <stdint.h>

#include "backend/cuda/common.cuh"
#include "backend/cuda/launch.h"

namespace {

__device__ __forceinline__ uint32_t rotl32(uint32_t x, int r) { return (x << r) | (x >> (32 - r)); }

__device__ void threefry2x32(uint32_t k0, uint32_t k1, uint32_t c0, uint32_t c1, uint32_t* r0, uint32_t* r1) {
  const int rotations[2][4] = {{13, 15, 26, 6}, {17, 29, 16, 24}};
  const uint32_t ks[3] = {k0, k1, k0 ^ k1 ^ 0x1BD11BDAu};
  uint32_t x0 = c0 + ks[0], x1 = c1 + ks[1];
#pragma unroll
  for (int i = 0; i < 5; i++) {
#pragma unroll
    for (int j = 0; j < 4; j++) {
      x0 += x1;
      x1 = rotl32(x1, rotations[i % 2][j]);
      x1 ^= x0;
    }
    x0 += ks[(i + 1) % 3];
    x1 += ks[(i + 2) % 3] + (uint32_t)i + 1u;
  }
  *r0 = x0;
  *r1 = x1;
}

// Word w of a key's bytes (the bytes of it that exist: the last word may be partial).
__device__ __forceinline__ void store_word(uint8_t* key_out, int64_t nbytes, int64_t w, uint32_t v) {
  uint8_t* p = key_out + 4 * w;
  const int64_t n = nbytes - 4 * w < 4 ? nbytes - 4 * w : 4;
  if (n == 4 && ((uintptr_t)p & 3) == 0) {
    *(uint32_t*)p = v;
    return;
  }
  for (int64_t b = 0; b < n; b++) p[b] = (uint8_t)(v >> (8 * b));  // little-endian, as the CPU's memcpy
}

// Hash t of key k: t < half is a pair of words, t == half the odd middle word.
__global__ void random_bits_kernel(uint8_t* out, const uint32_t* keys, gpu_rows key_rows, int64_t num_keys,
                                   int64_t nbytes) {
  gpu_chain_start();
  const int64_t words = (nbytes + 3) / 4, half = words / 2;
  const bool odd = words % 2 != 0;
  const int64_t per_key = half + (odd ? 1 : 0), total = num_keys * per_key;
  for (int64_t g = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; g < total; g += (int64_t)gridDim.x * blockDim.x) {
    const int64_t k = g / per_key, t = g - k * per_key;
    const int64_t at = gpu_row_offset(key_rows, k);
    const uint32_t k0 = keys[at], k1 = keys[at + key_rows.inner_stride];
    uint8_t* key_out = out + k * nbytes;
    uint32_t r0, r1;
    if (t < half) {
      const int64_t second = half + (odd ? 1 : 0) + t;
      threefry2x32(k0, k1, (uint32_t)t, (uint32_t)second, &r0, &r1);
      store_word(key_out, nbytes, t, r0);
      store_word(key_out, nbytes, second, r1);
    } else {
      threefry2x32(k0, k1, (uint32_t)half, 0u, &r0, &r1);
      store_word(key_out, nbytes, half, r0);
    }
  }
}

}  // namespace

extern "C" int gpu_launch_random_bits(int device, void* out, const uint32_t* keys, gpu_rows key_rows, int64_t num_keys,
                                      int64_t bytes_per_key) {
  if (num_keys == 0 || bytes_per_key == 0) return 0;
  if ((bytes_per_key + 3) / 4 > 0xffffffffll)
    return util_error("random_bits: more than 2^32 words per key are not supported on the GPU");
  cudaStream_t s = gpu_stream(device);
  if (!s) return 1;
  const int64_t words = (bytes_per_key + 3) / 4, total = num_keys * (words / 2 + words % 2);
  const int64_t blocks = (total + 255) / 256, cap = (int64_t)gpu_sm_count(device) * 16;
  return gpu_check(gpu_launch_chained(random_bits_kernel, (unsigned)(blocks < cap ? blocks : cap), 256, 0, s,
                                      (uint8_t*)out, keys, key_rows, num_keys, bytes_per_key),
                   "random_bits launch");
}
