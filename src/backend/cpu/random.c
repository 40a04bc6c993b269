/* Counter-based random bits: Threefry-2x32 with 20 rounds (Salmon et al., "Parallel random
 * numbers: as easy as 1, 2, 3", SC 2011), laid out per key exactly as MLX's RandomBits so that
 * the same key gives the same bits as MLX. */
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/copy.h"
#include "util/error.h"

#include "backend/cpu/kernels.h"
#include "backend/cpu/random.h"

static inline uint32_t rotl32(uint32_t x, int r) { return (x << r) | (x >> (32 - r)); }

void cpu_threefry2x32(uint32_t k0, uint32_t k1, uint32_t c0, uint32_t c1, uint32_t out[2]) {
  static const int rotations[2][4] = {{13, 15, 26, 6}, {17, 29, 16, 24}};
  uint32_t ks[3] = {k0, k1, k0 ^ k1 ^ 0x1BD11BDAu};
  uint32_t x0 = c0 + ks[0], x1 = c1 + ks[1];
  for (int i = 0; i < 5; i++) {
    for (int j = 0; j < 4; j++) {
      x0 += x1;
      x1 = rotl32(x1, rotations[i % 2][j]);
      x1 ^= x0;
    }
    x0 += ks[(i + 1) % 3];
    x1 += ks[(i + 2) % 3] + (uint32_t)i + 1u;
  }
  out[0] = x0;
  out[1] = x1;
}

/* Writes the bytes drawn from one key. The output words are split in two halves: hash
 * (i, half + i) fills word i and word half + i (half rounded up), so each key's stream does not
 * depend on how it will be cut into elements; a final odd word and a partial last word follow
 * MLX's RandomBits. */
static void bits_for_key(uint32_t k0, uint32_t k1, unsigned char* out, size_t nbytes) {
  size_t words = (nbytes + 3) / 4;
  size_t half = words / 2;
  int even = words % 2 == 0;
  uint32_t r[2];
  size_t first = 0, second = half + !even;
  for (; first + 1 < half; first++, second++) {
    cpu_threefry2x32(k0, k1, (uint32_t)first, (uint32_t)second, r);
    memcpy(out + 4 * first, &r[0], 4);
    memcpy(out + 4 * second, &r[1], 4);
  }
  if (first < half) {
    cpu_threefry2x32(k0, k1, (uint32_t)first, (uint32_t)second, r);
    memcpy(out + 4 * first, &r[0], 4);
    first++;
    size_t tail = nbytes - 4 * second;
    memcpy(out + 4 * second, &r[1], tail < 4 ? tail : 4);
  }
  if (!even) {
    cpu_threefry2x32(k0, k1, (uint32_t)half, 0, r);
    size_t tail = nbytes - 4 * half;
    memcpy(out + 4 * half, &r[0], tail < 4 ? tail : 4);
  }
}

int cpu_eval_random_bits(core_node* node, core_array** outputs) {
  core_array *keys = node->inputs[0], *out = outputs[0];
  if (core_array_alloc_contiguous(out)) return 1;
  size_t num_keys = keys->size / 2;
  if (num_keys == 0 || out->size == 0) return 0;
  size_t bytes_per_key = out->size * core_dtype_size(out->dtype) / num_keys;
  uint32_t* k = malloc(num_keys * 2 * sizeof *k); /* keys may be a strided view */
  if (!k) return util_error("out of memory");
  cpu_copy_strided(k, core_array_ptr(keys), keys->shape, keys->strides, keys->ndim, 4);
  unsigned char* dst = core_array_ptr(out);
  for (size_t i = 0; i < num_keys; i++)
    bits_for_key(k[2 * i], k[2 * i + 1], dst + i * bytes_per_key, bytes_per_key);
  free(k);
  return 0;
}
