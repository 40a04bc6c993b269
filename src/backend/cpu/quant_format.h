/* The number formats of quantized weights, shared by the quantization kernels: MLX's packed
 * layout, FP4 E2M1, FP8 E4M3 and E8M0 scales.
 *
 * Packing: each row of the weight is one little-endian bit stream; value i occupies bits
 * [i * bits, (i + 1) * bits), least significant bit first. For 2, 4 and 8 bits that is value j of
 * a uint32 word at bits [j * bits, ...); 3-, 5- and 6-bit values cross byte and word boundaries
 * (8 values in 3 or 5 bytes, 4 values in 3 bytes), exactly MLX's layout. */
#ifndef MLXC_CPU_QUANT_FORMAT_H
#define MLXC_CPU_QUANT_FORMAT_H

#include <math.h>
#include <stdint.h>

#include "core/half.h"
#include "mlx/c/array.h"

/* Value i of a packed row. */
static inline uint32_t quant_get(const uint8_t* row, int64_t i, int bits) {
  int64_t bit = i * bits;
  uint32_t v = row[bit >> 3] >> (bit & 7);
  if ((bit & 7) + bits > 8) v |= (uint32_t)row[(bit >> 3) + 1] << (8 - (bit & 7));
  return v & ((1u << bits) - 1);
}

/* Stores value i of a packed row (the row starts zeroed). */
static inline void quant_put(uint8_t* row, int64_t i, int bits, uint32_t v) {
  int64_t bit = i * bits;
  row[bit >> 3] |= (uint8_t)(v << (bit & 7));
  if ((bit & 7) + bits > 8) row[(bit >> 3) + 1] |= (uint8_t)(v >> (8 - (bit & 7)));
}

/* FP4 E2M1: sign, 2 exponent bits, 1 mantissa bit. */
static const float quant_fp4_values[16] = {0.0f,  0.5f,  1.0f,  1.5f,  2.0f,  3.0f,  4.0f,  6.0f,
                                           -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};

/* FP8 E4M3 (the "fn" variant: no infinities, 0x7f/0xff NaN, largest 448). */
static inline float quant_fp8_decode(uint8_t b) {
  int e = (b >> 3) & 0xf, m = b & 7;
  float v;
  if (e == 0xf && m == 7) v = NAN;
  else if (e == 0) v = ldexpf((float)m, -9);
  else v = ldexpf(1.0f + m / 8.0f, e - 7);
  return (b & 0x80) ? -v : v;
}

/* Nearest E4M3 (ties to even); 448 and above, infinities and NaN saturate to +-448 as MLX's CPU
 * conversion does. */
static inline uint8_t quant_fp8_encode(float f) {
  uint32_t u = half_f32_bits(f);
  uint8_t sign = (uint8_t)((u >> 24) & 0x80);
  u &= 0x7fffffffu;
  if (u >= 0x43e00000u) return sign | 0x7e; /* >= 448 */
  float a = half_bits_f32(u);
  if (a < 0x1p-6f) return sign | (uint8_t)rintf(a * 512.0f); /* subnormal: units of 2^-9 */
  /* Normal: rebias the exponent (127 -> 7) and round the mantissa to 3 bits, ties to even. */
  u += ((uint32_t)(7 - 127) << 23) + 0x7ffffu + ((u >> 20) & 1u);
  return sign | (uint8_t)(u >> 20);
}

/* E8M0 scale: 2^(s - 127); 255 (NaN in the spec) reads as infinity, as in MLX. */
static inline float quant_e8m0_decode(uint8_t s) { return ldexpf(1.0f, (int)s - 127); }

/* v rounded to what `dtype` (float32, float16 or bfloat16) stores, as a float. MLX computes some
 * quantization steps in the weights' dtype; this reproduces that rounding. */
static inline float quant_round_as(mlx_dtype dtype, float v) {
  if (dtype == MLX_BFLOAT16) return half_bf16_to_f32(half_f32_to_bf16(v));
  if (dtype == MLX_FLOAT16) return half_f16_to_f32(half_f32_to_f16(v));
  return v;
}

/* Element i of a float16/bfloat16/float32/float64 buffer, as float. Always inlined: the SIMD
 * kernels read scales with it, and a call from AVX code with vector registers live into this
 * function compiled for plain x86-64 ran its SSE instructions with the upper halves dirty (the
 * AVX2 4-bit kernel with 3 rows of x ran 20x slower so, when GCC stopped inlining it). */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline float quant_load(const void* p, mlx_dtype dtype, int64_t i) {
  switch (dtype) {
    case MLX_BFLOAT16: return half_bf16_to_f32(((const uint16_t*)p)[i]);
    case MLX_FLOAT16: return half_f16_to_f32(((const uint16_t*)p)[i]);
    case MLX_FLOAT64: return (float)((const double*)p)[i];
    default: return ((const float*)p)[i];
  }
}

static inline void quant_store(void* p, mlx_dtype dtype, int64_t i, float v) {
  switch (dtype) {
    case MLX_BFLOAT16: ((uint16_t*)p)[i] = half_f32_to_bf16(v); break;
    case MLX_FLOAT16: ((uint16_t*)p)[i] = half_f32_to_f16(v); break;
    case MLX_FLOAT64: ((double*)p)[i] = v; break;
    default: ((float*)p)[i] = v; break;
  }
}

#endif
