/* Affine-quantized matrix-vector kernels (see qgemv.h). Per row and group g:
 *   y += scale_g * sum_k x_k q_k + bias_g * sum_k x_k
 * so the group sums of x are computed once per call and the inner loop is a dot product of x
 * with the raw integers. The 4-bit SIMD kernels take the low and high nibbles of a run of bytes
 * in two vectors; x is reordered once per call (even elements, then odd, per block) to match. */
#include "backend/cpu/qgemv.h"

#include <stdbool.h>
#include <stdlib.h>

#include "backend/cpu/qgemv_internal.h"
#include "backend/cpu/quant_format.h"
#include "backend/cpu/threadpool.h"
#include "util/error.h"

#if CPU_HAVE_X86_KERNELS
#include <immintrin.h>
#endif

/* At least this many weight bytes per chunk of rows. */
#ifndef QGEMV_MIN_CHUNK_BYTES
#define QGEMV_MIN_CHUNK_BYTES (1 << 16)
#endif

/* How far ahead the AVX-512 2-/4-bit kernel prefetches each row's weights: the hardware
 * prefetcher alone left that kernel waiting on memory (one thread streaming 14336x4096 4-bit
 * weights: 5.7 GB/s without, 7.7 with 256 bytes; 64-128 and 1024+ bytes gained little or lost). */
#ifndef QGEMV_PREFETCH_BYTES
#define QGEMV_PREFETCH_BYTES 256
#endif

/* Rows per pass of the AVX-512 4-bit kernel: each x vector serves this many rows (8 measured
 * 10% faster than 4 with the weights in cache). */
#ifndef QGEMV_ROWS
#define QGEMV_ROWS 8
#endif

/* Page-strided row order (qlow_chunk_avx512); 0 turns it off (comparisons). */
#ifndef QGEMV_PAGE_STRIDE
#define QGEMV_PAGE_STRIDE 1
#endif

/* ---- portable: any width ---- */

static float row_portable(const qgemv_job* j, int64_t n) {
  const uint8_t* row = j->w + n * j->row_bytes;
  int64_t groups = j->K / j->group;
  float acc = 0;
  for (int64_t g = 0; g < groups; g++) {
    float dot = 0;
    for (int i = 0; i < j->group; i++) {
      int64_t k = g * j->group + i;
      dot += j->x[k] * (float)quant_get(row, k, j->bits);
    }
    acc += quant_load(j->scales, j->sdtype, n * groups + g) * dot +
           quant_load(j->biases, j->bdtype, n * groups + g) * j->xsum[g];
  }
  return acc;
}

#if CPU_HAVE_X86_KERNELS

/* ---- 8-bit, one row: AVX2 (8 bytes -> 8 values), AVX-512 (16 bytes -> 16 values) ---- */

CPU_TARGET_AVX2 static float row_avx2(const qgemv_job* j, int64_t n) {
  const uint8_t* row = j->w + n * j->row_bytes;
  int64_t groups = j->K / j->group;
  __m256 acc = _mm256_setzero_ps();
  for (int64_t g = 0; g < groups; g++) {
    int64_t k0 = g * j->group;
    __m256 d0 = _mm256_setzero_ps(), d1 = _mm256_setzero_ps();
    const uint8_t* p = row + k0;
    for (int i = 0; i < j->group; i += 16) {
      __m256 a = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i*)(p + i))));
      __m256 b = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i*)(p + i + 8))));
      d0 = _mm256_fmadd_ps(a, _mm256_loadu_ps(j->x + k0 + i), d0);
      d1 = _mm256_fmadd_ps(b, _mm256_loadu_ps(j->x + k0 + i + 8), d1);
    }
    float scale = quant_load(j->scales, j->sdtype, n * groups + g);
    acc = _mm256_fmadd_ps(_mm256_add_ps(d0, d1), _mm256_set1_ps(scale), acc);
  }
  return bias_dot_avx2(j, n, groups, acc);
}

CPU_TARGET_AVX512 static float row_avx512(const qgemv_job* j, int64_t n) {
  const uint8_t* row = j->w + n * j->row_bytes;
  int64_t groups = j->K / j->group;
  __m512 acc = _mm512_setzero_ps();
  for (int64_t g = 0; g < groups; g++) {
    int64_t k0 = g * j->group;
    __m512 d0 = _mm512_setzero_ps(), d1 = _mm512_setzero_ps();
    const uint8_t* p = row + k0;
    for (int i = 0; i < j->group; i += 32) {
      __m512 a = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)(p + i))));
      __m512 b = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)(p + i + 16))));
      d0 = _mm512_fmadd_ps(a, _mm512_loadu_ps(j->x + k0 + i), d0);
      d1 = _mm512_fmadd_ps(b, _mm512_loadu_ps(j->x + k0 + i + 16), d1);
    }
    float scale = quant_load(j->scales, j->sdtype, n * groups + g);
    acc = _mm512_fmadd_ps(_mm512_add_ps(d0, d1), _mm512_set1_ps(scale), acc);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(acc, bias_dot_avx512(j, n, groups)));
}

/* Four rows at once: each x vector loaded serves four weight rows, and the four rows' chains
 * overlap (one row at a time leaves the kernel bound by loop and scale overhead). 8-bit only. */
CPU_TARGET_AVX512 static void rows4_avx512(const qgemv_job* j, int64_t n, float* out) {
  const uint8_t* row[4];
  for (int r = 0; r < 4; r++) row[r] = j->w + (n + r) * j->row_bytes;
  int64_t groups = j->K / j->group;
  __m512 acc[4];
  for (int r = 0; r < 4; r++) acc[r] = _mm512_setzero_ps();
  for (int64_t g = 0; g < groups; g++) {
    int64_t k0 = g * j->group;
    __m512 d0[4], d1[4];
    for (int r = 0; r < 4; r++) d0[r] = d1[r] = _mm512_setzero_ps();
    for (int i = 0; i < j->group; i += 32) {
      __m512 xa = _mm512_loadu_ps(j->x + k0 + i), xb = _mm512_loadu_ps(j->x + k0 + i + 16);
      for (int r = 0; r < 4; r++) {
        const uint8_t* p = row[r] + k0 + i;
        __m512 a = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)p)));
        __m512 b = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)(p + 16))));
        d0[r] = _mm512_fmadd_ps(a, xa, d0[r]);
        d1[r] = _mm512_fmadd_ps(b, xb, d1[r]);
      }
    }
    for (int r = 0; r < 4; r++) {
      int64_t gi = (n + r) * groups + g;
      float scale = quant_load(j->scales, j->sdtype, gi);
      acc[r] = _mm512_fmadd_ps(_mm512_add_ps(d0[r], d1[r]), _mm512_set1_ps(scale), acc[r]);
    }
  }
  for (int r = 0; r < 4; r++)
    out[r] = _mm512_reduce_add_ps(_mm512_add_ps(acc[r], bias_dot_avx512(j, n + r, groups)));
}

/* ---- 2- and 4-bit ----
 * A 32-bit word of weights holds V = 32 / bits values (word w: values Vw .. Vw + V - 1).
 * The kernels load one word per vector lane (L lanes: a block of VL values) and take value t of
 * every lane at once (shift by t * bits, then a 16-entry table lookup that ignores the higher
 * bits on AVX-512, mask and convert on AVX2), so no byte is widened on its own. x is reordered
 * once per call to match: xp[b * VL + t * L + l] = x[b * VL + V * l + t], zero-padded to whole
 * blocks. A lane never straddles groups (groups are powers of two >= V), so lane l's scale is
 * that of group (b * VL + V * l) / group: the scales apply as one vector per block and row, and
 * the bias term sum_g bias_g * xsum_g is a separate dot product over groups. */

/* Rows n, n + rs, .. n + (R - 1) rs (R <= 8; R and bits are constants after inlining) into
 * out[0], out[rs], ... */
CPU_TARGET_AVX512 static inline __attribute__((always_inline)) void
qlow_rows_avx512(const qgemv_job* j, int64_t n, int R, int bits, float* out, int64_t rs) {
  const int V = 32 / bits, BV = 16 * V; /* values per word, per block */
  const int64_t K = j->K, G = K / j->group;
  const int gpb = j->group < BV ? BV / j->group : 1; /* groups a block touches */
  /* value of a lane's low 4 bits (2-bit: the low 2 of them) */
  const __m512 lut = bits == 4
                         ? _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
                         : _mm512_setr_ps(0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3);
  const __m512i sidx = _mm512_srl_epi32(
      _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                         _mm512_set1_epi32(V)),
      _mm_cvtsi32_si128(j->gshift)); /* lane l's group within the block */
  const uint8_t* row[8];
  __m512 acc[8], w[8], d[8];
  for (int r = 0; r < R; r++) {
    row[r] = j->w + (n + r * rs) * j->row_bytes;
    acc[r] = _mm512_setzero_ps();
  }
  for (int64_t k0 = 0; k0 < K; k0 += BV) {
    int words = K - k0 >= BV ? 16 : (int)((K - k0) / V);
    for (int r = 0; r < R; r++) {
      /* a hint, never a fault, also past the end of the weights */
      _mm_prefetch((const char*)row[r] + k0 / V * 4 + QGEMV_PREFETCH_BYTES, _MM_HINT_T0);
      w[r] = _mm512_castsi512_ps(
          _mm512_maskz_loadu_epi32((__mmask16)((1u << words) - 1), row[r] + k0 / V * 4));
      d[r] = _mm512_setzero_ps();
    }
    for (int t = 0; t < V; t++) {
      __m512 xv = _mm512_loadu_ps(j->xp + k0 + 16 * t);
      for (int r = 0; r < R; r++) {
        __m512i wi = _mm512_castps_si512(w[r]);
        d[r] = _mm512_fmadd_ps(_mm512_permutexvar_ps(wi, lut), xv, d[r]);
        w[r] = _mm512_castsi512_ps(_mm512_srli_epi32(wi, bits));
      }
    }
    int64_t g0 = k0 >> j->gshift;
    int count = G - g0 < gpb ? (int)(G - g0) : gpb;
    for (int r = 0; r < R; r++) {
      __m512 s = load16_avx512(j->scales, j->sdtype, (n + r * rs) * G + g0, count);
      acc[r] = _mm512_fmadd_ps(d[r], _mm512_permutexvar_ps(sidx, s), acc[r]);
    }
  }
  for (int r = 0; r < R; r++)
    out[r * rs] = _mm512_reduce_add_ps(_mm512_add_ps(acc[r], bias_dot_avx512(j, n + r * rs, G)));
}

/* Rows that share a 4 KB page, read side by side, cut the bandwidth of a plain read of the same
 * lines on the dev machine by a third (the hardware prefetcher follows one stream per page): a
 * pass takes every rs-th row, rs = rows per page, and rs passes cover a block of rs * R rows.
 * On the device, 14336x4096 4-bit streamed 10-13% faster so (two runs), 4096x4096 within noise. */
CPU_TARGET_AVX512 static void qlow_chunk_avx512(const qgemv_job* j, int64_t n, int64_t end) {
  int64_t rs = 1;
#if QGEMV_PAGE_STRIDE
  while (rs < 8 && j->row_bytes * rs * 2 <= 4096) rs *= 2;
#endif
#define QLOW_CHUNK(BITS)                                                                   \
  for (; n + QGEMV_ROWS * rs <= end; n += QGEMV_ROWS * rs)                                 \
    for (int64_t p = 0; p < rs; p++) qlow_rows_avx512(j, n + p, QGEMV_ROWS, BITS, j->y + n + p, rs); \
  for (; n < end; n++) qlow_rows_avx512(j, n, 1, BITS, j->y + n, 1);
  if (j->bits == 4) {
    QLOW_CHUNK(4)
  } else {
    QLOW_CHUNK(2)
  }
#undef QLOW_CHUNK
}

CPU_TARGET_AVX2 static inline __attribute__((always_inline)) void
qlow_rows_avx2(const qgemv_job* j, int64_t n, int R, int bits, float* out) {
  const int V = 32 / bits, BV = 8 * V;
  const int64_t K = j->K, G = K / j->group;
  const int gpb = j->group < BV ? BV / j->group : 1;
  const __m256i low = _mm256_set1_epi32((1 << bits) - 1);
  const __m256i sidx = _mm256_srl_epi32(
      _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(V)),
      _mm_cvtsi32_si128(j->gshift));
  /* the words of a last, partial block */
  const __m256i tail = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(K % BV / V)),
                                          _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  const uint8_t* row[4];
  __m256 acc[4], d[4];
  __m256i w[4];
  for (int r = 0; r < R; r++) {
    row[r] = j->w + (n + r) * j->row_bytes;
    acc[r] = _mm256_setzero_ps();
  }
  for (int64_t k0 = 0; k0 < K; k0 += BV) {
    for (int r = 0; r < R; r++) {
      const void* p = row[r] + k0 / V * 4;
      w[r] = K - k0 >= BV ? _mm256_loadu_si256(p) : _mm256_maskload_epi32(p, tail);
      d[r] = _mm256_setzero_ps();
    }
    for (int t = 0; t < V; t++) {
      __m256 xv = _mm256_loadu_ps(j->xp + k0 + 8 * t);
      for (int r = 0; r < R; r++) {
        d[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_and_si256(w[r], low)), xv, d[r]);
        w[r] = _mm256_srli_epi32(w[r], bits);
      }
    }
    int64_t g0 = k0 >> j->gshift;
    int count = G - g0 < gpb ? (int)(G - g0) : gpb;
    for (int r = 0; r < R; r++) {
      int64_t gi = (n + r) * G + g0;
      __m256 sv;
      if (gpb == 1) { /* a block within one group */
        sv = _mm256_set1_ps(quant_load(j->scales, j->sdtype, gi));
      } else if (gpb == 2) { /* two groups: one per half */
        __m128 s0 = _mm_set1_ps(quant_load(j->scales, j->sdtype, gi));
        __m128 s1 = count > 1 ? _mm_set1_ps(quant_load(j->scales, j->sdtype, gi + 1)) : s0;
        sv = _mm256_insertf128_ps(_mm256_castps128_ps256(s0), s1, 1);
      } else {
        float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (int i = 0; i < count; i++) s[i] = quant_load(j->scales, j->sdtype, gi + i);
        sv = _mm256_permutevar8x32_ps(_mm256_loadu_ps(s), sidx);
      }
      acc[r] = _mm256_fmadd_ps(d[r], sv, acc[r]);
    }
  }
  for (int r = 0; r < R; r++) out[r] = bias_dot_avx2(j, n + r, G, acc[r]);
}

CPU_TARGET_AVX2 static void qlow_chunk_avx2(const qgemv_job* j, int64_t n, int64_t end) {
  if (j->bits == 4) {
    for (; n + 4 <= end; n += 4) qlow_rows_avx2(j, n, 4, 4, j->y + n);
    for (; n < end; n++) qlow_rows_avx2(j, n, 1, 4, j->y + n);
  } else {
    for (; n + 4 <= end; n += 4) qlow_rows_avx2(j, n, 4, 2, j->y + n);
    for (; n < end; n++) qlow_rows_avx2(j, n, 1, 2, j->y + n);
  }
}

#endif

static void rows_chunk(void* p, int64_t begin, int64_t end) {
  const qgemv_job* j = p;
  int64_t n = begin;
#if CPU_HAVE_X86_KERNELS
  if (j->xb) {
    qgemv_bf16_chunk(j, begin, end);
    return;
  }
  bool low = j->bits == 2 || j->bits == 4, odd = j->bits == 3 || j->bits == 5 || j->bits == 6;
  if (low && j->isa == CPU_ISA_AVX512) {
    qlow_chunk_avx512(j, begin, end);
    return;
  }
  if (low && j->isa == CPU_ISA_AVX2) {
    qlow_chunk_avx2(j, begin, end);
    return;
  }
  if (odd && j->isa == CPU_ISA_AVX512) {
    qgemv_odd_chunk_avx512(j, begin, end);
    return;
  }
  if (odd && j->isa == CPU_ISA_AVX2) {
    qgemv_odd_chunk_avx2(j, begin, end);
    return;
  }
  if (j->isa == CPU_ISA_AVX512)
    for (; n + 4 <= end; n += 4) rows4_avx512(j, n, j->y + n);
#endif
  for (; n < end; n++) {
#if CPU_HAVE_X86_KERNELS
    if (j->isa == CPU_ISA_AVX512) {
      j->y[n] = row_avx512(j, n);
      continue;
    }
    if (j->isa == CPU_ISA_AVX2) {
      j->y[n] = row_avx2(j, n);
      continue;
    }
#endif
    j->y[n] = row_portable(j, n);
  }
}

/* xp for the 2- and 4-bit kernels: V values per word, `lanes` words per vector (layout above). */
static void word_lane_order(float* xp, const float* x, int64_t K, int64_t padded, int V,
                            int lanes) {
  for (int64_t b = 0; b < padded; b += V * lanes)
    for (int t = 0; t < V; t++)
      for (int l = 0; l < lanes; l++) {
        int64_t k = b + V * l + t;
        xp[b + t * lanes + l] = k < K ? x[k] : 0.0f;
      }
}

static bool is_pow2(int v) { return v > 0 && (v & (v - 1)) == 0; }

int cpu_qgemv_affine_isa(cpu_isa isa, float* y, const float* x, const uint32_t* w,
                         const void* scales, const void* biases, mlx_dtype sdtype,
                         mlx_dtype bdtype, int64_t N, int64_t K, int bits, int group_size) {
  /* SIMD kernels: 2 and 4 bits with groups of 2^k >= 32 / bits values, 8 bits with multiples
   * of 32, 3, 5 and 6 bits with multiples of 16 */
  bool simd = ((bits == 2 || bits == 4) && is_pow2(group_size) && group_size >= 32 / bits) ||
              (bits == 8 && group_size % 32 == 0) ||
              ((bits == 3 || bits == 5 || bits == 6) && group_size % 16 == 0);
  if (!simd) isa = CPU_ISA_PORTABLE;
  int64_t groups = K / group_size, padded_groups = (groups + 15) / 16 * 16;
  int lanes = isa == CPU_ISA_AVX512 ? 16 : 8;
  int V = 32 / bits, block = V * lanes;
  int64_t padded_k = (K + block - 1) / block * block;
  bool want_xp = isa != CPU_ISA_PORTABLE && (bits == 2 || bits == 4);
  float* xsum = malloc(sizeof(float) * (size_t)padded_groups + 1);
  float* xp = want_xp ? malloc(sizeof(float) * (size_t)padded_k + 1) : NULL;
  if (!xsum || (want_xp && !xp)) {
    free(xsum);
    free(xp);
    return util_error("quantized_matmul: out of memory");
  }
  for (int64_t g = 0; g < padded_groups; g++) {
    float s = 0;
    for (int i = 0; g < groups && i < group_size; i++) s += x[g * group_size + i];
    xsum[g] = s;
  }
  if (xp) word_lane_order(xp, x, K, padded_k, V, lanes);
  uint16_t* xb = NULL; /* the BF16 kernel's x, when it applies */
#if CPU_HAVE_X86_KERNELS
  if (bits == 4 && isa == CPU_ISA_AVX512 && qgemv_bf16_supported()) {
    int64_t padded_b = (K + 127) / 128 * 128;
    xb = malloc(sizeof(uint16_t) * (size_t)padded_b + 1);
    if (!xb) {
      free(xsum);
      free(xp);
      return util_error("quantized_matmul: out of memory");
    }
    if (!qgemv_bf16_prepare(xb, x, K, padded_b)) {
      free(xb);
      xb = NULL;
    }
  }
#endif
  int gshift = 0;
  while ((1 << gshift) < group_size) gshift++;
  qgemv_job j = {.isa = isa, .y = y, .x = x, .xp = xp, .xb = xb, .xsum = xsum, .w = (const uint8_t*)w,
                 .row_bytes = K * bits / 8, .N = N, .K = K, .scales = scales, .biases = biases,
                 .sdtype = sdtype, .bdtype = bdtype, .bits = bits, .group = group_size,
                 .gshift = gshift};
  int64_t min_rows = QGEMV_MIN_CHUNK_BYTES / (j.row_bytes > 0 ? j.row_bytes : 1);
  cpu_parallel_for(N, min_rows > 0 ? min_rows : 1, rows_chunk, &j);
  free(xsum);
  free(xp);
  free(xb);
  return 0;
}

int cpu_qgemv_affine(float* y, const float* x, const uint32_t* w, const void* scales,
                     const void* biases, mlx_dtype sdtype, mlx_dtype bdtype, int64_t N, int64_t K,
                     int bits, int group_size) {
  return cpu_qgemv_affine_isa(cpu_isa_best(), y, x, w, scales, biases, sdtype, bdtype, N, K, bits,
                              group_size);
}
