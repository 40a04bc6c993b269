/* float16 and bfloat16 <-> float32 conversion, round to nearest even, NaN and infinity kept. */
#ifndef MLXC_CORE_HALF_H
#define MLXC_CORE_HALF_H

#include <stdint.h>
#include <string.h>

/* The one-line helpers are always inlined: GCC 12 otherwise kept them out of line when called
 * from a function compiled for another target (the AVX-512 loops of vec.c), one call per value:
 * bfloat16 rows converted at ~1 value per ns. */
#define HALF_INLINE static inline __attribute__((always_inline))

HALF_INLINE uint32_t half_f32_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}

HALF_INLINE float half_bits_f32(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}

HALF_INLINE float half_bf16_to_f32(uint16_t h) { return half_bits_f32((uint32_t)h << 16); }

HALF_INLINE uint16_t half_f32_to_bf16(float f) {
  uint32_t u = half_f32_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
  u += 0x7fffu + ((u >> 16) & 1u);
  return (uint16_t)(u >> 16);
}

static inline float half_f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  if (exp == 0x1f) return half_bits_f32(sign | 0x7f800000u | (mant << 13));
  if (exp == 0) {
    /* Subnormal (or zero): value = mant * 2^-24, exact in float32. */
    float v = (float)mant * 5.9604644775390625e-8f;
    return sign ? -v : v;
  }
  return half_bits_f32(sign | ((exp + 112) << 23) | (mant << 13));
}

static inline uint16_t half_f32_to_f16(float f) {
  uint32_t u = half_f32_bits(f);
  uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
  uint32_t abs = u & 0x7fffffffu;
  if (abs > 0x7f800000u) return (uint16_t)(sign | 0x7e00u | ((abs >> 13) & 0x3ffu));
  if (abs >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* rounds to >= 65520: infinity */
  if (abs < 0x38800000u) {
    /* Result is subnormal in float16: scale so that rounding happens at the 2^-24 step. */
    float a = half_bits_f32(abs);
    float scaled = a * 16777216.0f; /* a / 2^-24, exact */
    uint32_t q = (uint32_t)scaled;
    float rest = scaled - (float)q;
    if (rest > 0.5f || (rest == 0.5f && (q & 1u))) q++;
    return (uint16_t)(sign | q);
  }
  uint32_t rounded = abs + 0xfffu + ((abs >> 13) & 1u);
  return (uint16_t)(sign | ((rounded - 0x38000000u) >> 13));
}

#endif
