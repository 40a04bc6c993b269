/* e^x and sigmoid of float32 values as plain C that compilers vectorise (libm's expf is one
 * value per call): unary.c's erf and sigmoid rows, vec.c's exp sums (attention softmax,
 * logsumexp). Selections go through the bits, and GCC is told that float compares do not trap
 * (clang assumes it), so that both sides compute in vector registers; callers that inline these
 * need the same option (an inlined function's options must match). */
#ifndef MLXC_CPU_EXP_F32_H
#define MLXC_CPU_EXP_F32_H

#include <stdint.h>
#include <string.h>

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC push_options
#pragma GCC optimize("no-trapping-math")
#endif

static inline uint32_t f32_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}

static inline float bits_f32(uint32_t u) {
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

/* e^y = 2^n e^r for y <= 0 (Cody-Waite: r = y - n ln 2 with ln 2 in two parts): returns e^r,
 * a least-squares fit on Chebyshev nodes made with numpy, n in *n. */
static inline float exp_parts_f32(float y, float* n) {
  *n = (float)(int32_t)(y * 1.4426950408889634f - 0.5f); /* round(y / ln 2), y < 0 */
  float r = y - *n * 0.693145751953125f;
  r -= *n * 1.428606765330187e-06f;
  float e = 0.001382941154678576f;
  e = e * r + 0.008374777795045394f;
  e = e * r + 0.041668358547355434f;
  e = e * r + 0.16666420757882047f;
  e = e * r + 0.49999991489160023f;
  e = e * r + 1.0000000361421946f;
  e = e * r + 1.0000000005923793f;
  return e;
}

/* e^y for y <= 0 (-inf gives 0, NaN stays NaN). Below -104 e^y is under the smallest subnormal:
 * 0; 2^n is applied as two halves so that subnormal results come out right. */
static inline float exp_nonpositive_f32(float y) {
  uint32_t iy = f32_bits(y), ia = iy & 0x7fffffffu;
  float n, e = exp_parts_f32(-bits_f32(ia < 0x42d00000u ? ia : 0x42d00000u), &n);
  int32_t half = (int32_t)n / 2;
  e = e * bits_f32((uint32_t)(half + 127) << 23) * bits_f32((uint32_t)((int32_t)n - half + 127) << 23);
  return bits_f32(ia > 0x7f800000u ? iy : ia < 0x42d00000u ? f32_bits(e) : 0u);
}

/* 1 / (1 + e) for x >= 0 and e / (1 + e) below, e = e^-|x| (no cancellation of 1 - 1 / (1 + e)
 * for x < 0); NaN stays NaN. */
static inline float sigmoid_one_f32(float x) {
  uint32_t ix = f32_bits(x);
  float e = exp_nonpositive_f32(-bits_f32(ix & 0x7fffffffu));
  float up = 1.0f / (1.0f + e), down = e / (1.0f + e);
  return bits_f32((ix & 0x7fffffffu) > 0x7f800000u ? ix : (ix >> 31) ? f32_bits(down) : f32_bits(up));
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC pop_options
#endif

#endif
