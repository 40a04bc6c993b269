/* Internals of the quantized GEMV (qgemv.c, qgemv_odd.c, qgemv_bf16.c): the job every kernel
 * reads, vector loads of scales and biases, and the bias term as one dot product per row. */
#ifndef MLXC_CPU_QGEMV_INTERNAL_H
#define MLXC_CPU_QGEMV_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "backend/cpu/isa.h"
#include "backend/cpu/quant_format.h"
#include "mlx/c/array.h"

#if CPU_HAVE_X86_KERNELS
#include <immintrin.h>
#endif

/* M rows of x: y, x, xb and xsum point at row 0 and step by N, K, ldxb and ldxs values per row;
 * xp holds the rows of x for the 2-, 4- and 8-bit SIMD kernels, interleaved by chunks of rows
 * (qgemv.c). The one-row kernels (3, 5, 6 bits, BF16, portable) see a view of one row (M = 1,
 * pointers moved to that row). */
typedef struct {
  cpu_isa isa;
  float* y;           /* (M, N) */
  const float* x;     /* natural order (portable and 8-bit kernels) */
  const float* xp;    /* kernel order (word-lane for 2 and 4 bits, see qgemv.c), interleaved */
  const uint16_t* xb; /* x as bfloat16 pairs for the BF16 4-bit kernel, or NULL */
  const float* xsum;  /* per-group sums of x, zero-padded to a multiple of 16 */
  const uint8_t* w;
  int64_t row_bytes, M, N, K, ldxp, ldxb, ldxs;
  const void *scales, *biases;
  mlx_dtype sdtype, bdtype;
  int bits, group, gshift; /* gshift: log2(group) where group is a power of two */
  int tile_m;              /* rows of x per pass of the multi-row kernels, at most */
} qgemv_job;

#if CPU_HAVE_X86_KERNELS

/* ---- vector loads of scales and biases; the bias term as one dot product per row ----
 * (a scalar running sum per group was a serial dependency that cost 8-bit decode a third of its
 * speed with the weights in cache) */

/* 8 elements of a float32/float16/bfloat16 buffer from p[i]. */
CPU_TARGET_AVX2 static inline __m256 load8_avx2(const void* p, mlx_dtype dtype, int64_t i) {
  if (dtype == MLX_FLOAT32) return _mm256_loadu_ps((const float*)p + i);
  __m128i h = _mm_loadu_si128((const __m128i*)((const uint16_t*)p + i));
  if (dtype == MLX_FLOAT16) return _mm256_cvtph_ps(h);
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

/* Horizontal sum of 8 floats. */
CPU_TARGET_AVX2 static inline float hsum_avx2(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

/* sum_g bias_g * xsum_g over the G groups of row n (xsum: those of one row of x), plus acc's
 * lanes. */
CPU_TARGET_AVX2 static inline float bias_dot_avx2(const qgemv_job* j, int64_t n, int64_t G,
                                                  const float* xsum, __m256 acc) {
  int64_t g = 0;
  for (; g + 8 <= G; g += 8)
    acc = _mm256_fmadd_ps(load8_avx2(j->biases, j->bdtype, n * G + g), _mm256_loadu_ps(xsum + g),
                          acc);
  float tail = 0;
  for (; g < G; g++) tail += quant_load(j->biases, j->bdtype, n * G + g) * xsum[g];
  return hsum_avx2(acc) + tail;
}

/* count (1..16) elements of a float32/float16/bfloat16 buffer from p[i]; later lanes are 0. */
CPU_TARGET_AVX512 static inline __m512 load16_avx512(const void* p, mlx_dtype dtype, int64_t i,
                                                     int count) {
  if (dtype == MLX_FLOAT32)
    return _mm512_maskz_loadu_ps((__mmask16)((1u << count) - 1), (const float*)p + i);
  __m256i h = _mm512_castsi512_si256(
      _mm512_maskz_loadu_epi16((__mmask32)((1u << count) - 1), (const uint16_t*)p + i));
  if (dtype == MLX_FLOAT16) return _mm512_cvtph_ps(h);
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

/* sum_g bias_g * xsum_g over the G groups of row n (the bias part of the row's product; xsum:
 * those of one row of x). */
CPU_TARGET_AVX512 static inline __m512 bias_dot_avx512(const qgemv_job* j, int64_t n, int64_t G,
                                                       const float* xsum) {
  __m512 b = _mm512_setzero_ps();
  for (int64_t g = 0; g < G; g += 16) {
    int count = G - g < 16 ? (int)(G - g) : 16;
    b = _mm512_fmadd_ps(load16_avx512(j->biases, j->bdtype, n * G + g, count),
                        _mm512_loadu_ps(xsum + g), b);
  }
  return b;
}

/* The 4-bit AVX-512 BF16 kernel (qgemv_bf16.c): whether this processor runs it; xb <- x in the
 * kernel's order, padded with zeros to `padded` (a multiple of 128) values, false (xb unusable)
 * when some x is not a bfloat16 number; rows [n, end). */
bool qgemv_bf16_supported(void);
bool qgemv_bf16_prepare(uint16_t* xb, const float* x, int64_t K, int64_t padded);
void qgemv_bf16_chunk(const qgemv_job* j, int64_t n, int64_t end);

/* Rows [n, end) of 3-, 5- and 6-bit weights (qgemv_odd.c). */
void qgemv_odd_chunk_avx512(const qgemv_job* j, int64_t n, int64_t end);
void qgemv_odd_chunk_avx2(const qgemv_job* j, int64_t n, int64_t end);

#endif

#endif
