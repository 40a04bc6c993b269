/* The 4-bit decode GEMV with AVX-512 BF16 dot products, for x whose values are all bfloat16
 * numbers (a bfloat16 model's activations). With 16 threads streaming weights, the float kernel's
 * arithmetic (a table lookup, a shift and a multiply-add per 16 values) did not hide behind the
 * memory traffic; here 32 values take a shift, a bit merge and one vdpbf16ps.
 *
 * The merge writes a nibble q into the mantissa of a bfloat16 one: w = 1 + q / 16 exactly, so
 *   sum_k x_k q_k = 16 sum_k x_k w_k - 16 sum_k x_k,
 * and per row  y = sum_g 16 s_g (x . w)_g + (b_g - 16 s_g) xsum_g. Products of two bfloat16
 * numbers are exact in float32; vdpbf16ps adds them in float32 (ties to even, subnormals
 * flushed).
 *
 * Layout: a block is 16 words (128 values, one cache line of a row). vdpbf16ps pairs the two
 * 16-bit halves of each 32-bit lane; lane i holds word i, whose low half carries values
 * 8i + t and high half 8i + 4 + t at bits 4t. Shifting the block by 4t - 3 bits puts value
 * 8i + t (and 8i + 4 + t) in mantissa bits 3..6, so x is reordered once per call as
 *   xb[block + 32 t + 2 i + h] = x[block + 8 i + 4 h + t]. */
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/qgemv_internal.h"

#if CPU_HAVE_X86_KERNELS
#include <cpuid.h>

#define BF16_ROWS 8
#define BF16_PREFETCH_BYTES 256

bool qgemv_bf16_supported(void) {
  static int known = -1; /* written once with the same value by any thread */
  int k = __atomic_load_n(&known, __ATOMIC_RELAXED);
  if (k < 0) {
    unsigned a = 0, b = 0, c = 0, d = 0;
    /* Off unless MLXC_QGEMV_BF16=1: in cache it ran 1.3x the float kernel on a Zen 4 and 0.8x
     * on the device's Xeon (vdpbf16ps issues on one port there), but in a whole decode step
     * (Qwen2.5-0.5B shape, 4-bit, the 2-core Zen 4 dev machine) it gave 31 tok/s against 42
     * without it: the check and repacking of x on every call cost more than it saves. */
    const char* env = getenv("MLXC_QGEMV_BF16");
    bool want = env && *env && env[0] == '1';
    k = want && cpu_isa_supported(CPU_ISA_AVX512) && __get_cpuid_count(7, 1, &a, &b, &c, &d) &&
        (a >> 5 & 1);
    __atomic_store_n(&known, k, __ATOMIC_RELAXED);
  }
  return k;
}

bool qgemv_bf16_prepare(uint16_t* xb, const float* x, int64_t K, int64_t padded) {
  for (int64_t k = 0; k < K; k++) {
    uint32_t u;
    memcpy(&u, &x[k], 4);
    if (u & 0xffff) return false; /* not a bfloat16 number */
  }
  for (int64_t b = 0; b < padded; b += 128)
    for (int t = 0; t < 4; t++)
      for (int i = 0; i < 16; i++)
        for (int h = 0; h < 2; h++) {
          int64_t k = b + 8 * i + 4 * h + t;
          uint32_t u = 0;
          if (k < K) memcpy(&u, &x[k], 4);
          xb[b + 32 * t + 2 * i + h] = (uint16_t)(u >> 16);
        }
  return true;
}

#define CPU_TARGET_AVX512BF16 __attribute__((target("avx512f,avx512bw,avx512bf16,avx2,fma,f16c")))

/* 32 values of shift t (a constant after inlining) as bfloat16 1 + q / 16. */
CPU_TARGET_AVX512BF16 static inline __attribute__((always_inline)) __m512i
nibbles_as_bf16(__m512i w, int t) {
  __m512i s = t == 0 ? _mm512_slli_epi16(w, 3) : _mm512_srli_epi16(w, 4 * t - 3);
  /* (s & 0x0078) | 0x3f80 */
  return _mm512_ternarylogic_epi32(s, _mm512_set1_epi16(0x0078), _mm512_set1_epi16(0x3f80), 0xEA);
}

CPU_TARGET_AVX512BF16 static inline __attribute__((always_inline)) void
bf16_rows(const qgemv_job* j, int64_t n, int R, float* out) {
  const int64_t K = j->K, G = K / j->group;
  const int gpb = j->group < 128 ? 128 / j->group : 1; /* groups a block touches */
  const __m512i sidx = _mm512_srl_epi32(
      _mm512_slli_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), 3),
      _mm_cvtsi32_si128(j->gshift)); /* lane i's group within the block */
  const uint8_t* row[BF16_ROWS];
  __m512 acc[BF16_ROWS], d[BF16_ROWS];
  __m512i w[BF16_ROWS];
  for (int r = 0; r < R; r++) {
    row[r] = j->w + (n + r) * j->row_bytes;
    acc[r] = _mm512_setzero_ps();
  }
  for (int64_t k0 = 0; k0 < K; k0 += 128) {
    int words = K - k0 >= 128 ? 16 : (int)((K - k0) / 8);
    for (int r = 0; r < R; r++) {
      _mm_prefetch((const char*)row[r] + k0 / 2 + BF16_PREFETCH_BYTES, _MM_HINT_T0);
      w[r] = _mm512_maskz_loadu_epi32((__mmask16)((1u << words) - 1), row[r] + k0 / 2);
      d[r] = _mm512_setzero_ps();
    }
    for (int t = 0; t < 4; t++) {
      __m512i xv = _mm512_loadu_si512(j->xb + k0 + 32 * t);
      for (int r = 0; r < R; r++)
        d[r] = _mm512_dpbf16_ps(d[r], (__m512bh)nibbles_as_bf16(w[r], t), (__m512bh)xv);
    }
    int64_t g0 = k0 >> j->gshift;
    int count = G - g0 < gpb ? (int)(G - g0) : gpb;
    for (int r = 0; r < R; r++) {
      __m512 s = load16_avx512(j->scales, j->sdtype, (n + r) * G + g0, count);
      acc[r] = _mm512_fmadd_ps(d[r], _mm512_permutexvar_ps(sidx, s), acc[r]);
    }
  }
  for (int r = 0; r < R; r++) {
    /* sum_g (b_g - 16 s_g) xsum_g */
    __m512 bias = _mm512_setzero_ps(), sixteen = _mm512_set1_ps(16.0f);
    for (int64_t g = 0; g < G; g += 16) {
      int count = G - g < 16 ? (int)(G - g) : 16;
      int64_t at = (n + r) * G + g;
      __m512 b = _mm512_fnmadd_ps(sixteen, load16_avx512(j->scales, j->sdtype, at, count),
                                  load16_avx512(j->biases, j->bdtype, at, count));
      bias = _mm512_fmadd_ps(b, _mm512_loadu_ps(j->xsum + g), bias);
    }
    out[r] = _mm512_reduce_add_ps(_mm512_fmadd_ps(sixteen, acc[r], bias));
  }
}

CPU_TARGET_AVX512BF16 void qgemv_bf16_chunk(const qgemv_job* j, int64_t n, int64_t end) {
  for (; n + BF16_ROWS <= end; n += BF16_ROWS) bf16_rows(j, n, BF16_ROWS, j->y + n);
  for (; n < end; n++) bf16_rows(j, n, 1, j->y + n);
}

#endif
