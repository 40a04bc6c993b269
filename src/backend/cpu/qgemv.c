/* Affine-quantized matrix-vector kernels (see qgemv.h). Per row and group g:
 *   y += scale_g * sum_k x_k q_k + bias_g * sum_k x_k
 * so the group sums of x are computed once per call and the inner loop is a dot product of x
 * with the raw integers. The 4-bit SIMD kernels take the low and high nibbles of a run of bytes
 * in two vectors; x is reordered once per call (even elements, then odd, per block) to match. */
#include "backend/cpu/qgemv.h"

#include <stdlib.h>

#include "backend/cpu/quant_format.h"
#include "backend/cpu/threadpool.h"
#include "util/error.h"

#if CPU_HAVE_X86_KERNELS
#include <immintrin.h>
#endif

/* At least this many weight bytes per chunk of rows. */
#define QGEMV_MIN_CHUNK_BYTES (1 << 16)

typedef struct {
  cpu_isa isa;
  float* y;
  const float* x;     /* natural order (portable and 8-bit kernels) */
  const float* xp;    /* nibble order for the 4-bit SIMD kernels */
  const float* xsum;  /* per-group sums of x */
  const uint8_t* w;
  int64_t row_bytes, N, K;
  const void *scales, *biases;
  mlx_dtype sdtype;
  int bits, group;
} qgemv_job;

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
           quant_load(j->biases, j->sdtype, n * groups + g) * j->xsum[g];
  }
  return acc;
}

#if CPU_HAVE_X86_KERNELS

/* ---- AVX2: 4-bit (8 bytes -> 16 values) and 8-bit (8 bytes -> 8 values) ---- */

CPU_TARGET_AVX2 static float row_avx2(const qgemv_job* j, int64_t n) {
  const uint8_t* row = j->w + n * j->row_bytes;
  int64_t groups = j->K / j->group;
  __m256 acc = _mm256_setzero_ps();
  const __m256i low4 = _mm256_set1_epi32(0xf);
  float bias_acc = 0;
  for (int64_t g = 0; g < groups; g++) {
    int64_t k0 = g * j->group;
    __m256 d0 = _mm256_setzero_ps(), d1 = _mm256_setzero_ps();
    if (j->bits == 4) {
      const uint8_t* p = row + k0 / 2;
      for (int i = 0; i < j->group; i += 16) {
        __m256i v = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i*)(p + i / 2)));
        __m256 lo = _mm256_cvtepi32_ps(_mm256_and_si256(v, low4));
        __m256 hi = _mm256_cvtepi32_ps(_mm256_srli_epi32(v, 4));
        d0 = _mm256_fmadd_ps(lo, _mm256_loadu_ps(j->xp + k0 + i), d0);
        d1 = _mm256_fmadd_ps(hi, _mm256_loadu_ps(j->xp + k0 + i + 8), d1);
      }
    } else {
      const uint8_t* p = row + k0;
      for (int i = 0; i < j->group; i += 16) {
        __m256 a = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i*)(p + i))));
        __m256 b = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i*)(p + i + 8))));
        d0 = _mm256_fmadd_ps(a, _mm256_loadu_ps(j->x + k0 + i), d0);
        d1 = _mm256_fmadd_ps(b, _mm256_loadu_ps(j->x + k0 + i + 8), d1);
      }
    }
    float scale = quant_load(j->scales, j->sdtype, n * groups + g);
    acc = _mm256_fmadd_ps(_mm256_add_ps(d0, d1), _mm256_set1_ps(scale), acc);
    bias_acc += quant_load(j->biases, j->sdtype, n * groups + g) * j->xsum[g];
  }
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s) + bias_acc;
}

/* ---- AVX-512: 4-bit (16 bytes -> 32 values) and 8-bit (16 bytes -> 16 values) ---- */

CPU_TARGET_AVX512 static float row_avx512(const qgemv_job* j, int64_t n) {
  const uint8_t* row = j->w + n * j->row_bytes;
  int64_t groups = j->K / j->group;
  __m512 acc = _mm512_setzero_ps();
  const __m512i low4 = _mm512_set1_epi32(0xf);
  float bias_acc = 0;
  for (int64_t g = 0; g < groups; g++) {
    int64_t k0 = g * j->group;
    __m512 d0 = _mm512_setzero_ps(), d1 = _mm512_setzero_ps();
    if (j->bits == 4) {
      const uint8_t* p = row + k0 / 2;
      for (int i = 0; i < j->group; i += 32) {
        __m512i v = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)(p + i / 2)));
        __m512 lo = _mm512_cvtepi32_ps(_mm512_and_si512(v, low4));
        __m512 hi = _mm512_cvtepi32_ps(_mm512_srli_epi32(v, 4));
        d0 = _mm512_fmadd_ps(lo, _mm512_loadu_ps(j->xp + k0 + i), d0);
        d1 = _mm512_fmadd_ps(hi, _mm512_loadu_ps(j->xp + k0 + i + 16), d1);
      }
    } else {
      const uint8_t* p = row + k0;
      for (int i = 0; i < j->group; i += 32) {
        __m512 a = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)(p + i))));
        __m512 b = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)(p + i + 16))));
        d0 = _mm512_fmadd_ps(a, _mm512_loadu_ps(j->x + k0 + i), d0);
        d1 = _mm512_fmadd_ps(b, _mm512_loadu_ps(j->x + k0 + i + 16), d1);
      }
    }
    float scale = quant_load(j->scales, j->sdtype, n * groups + g);
    acc = _mm512_fmadd_ps(_mm512_add_ps(d0, d1), _mm512_set1_ps(scale), acc);
    bias_acc += quant_load(j->biases, j->sdtype, n * groups + g) * j->xsum[g];
  }
  return _mm512_reduce_add_ps(acc) + bias_acc;
}

/* Four rows at once: each x vector loaded serves four weight rows, and the four rows' chains
 * overlap (one row at a time leaves the kernel bound by loop and scale overhead). */
CPU_TARGET_AVX512 static void rows4_avx512(const qgemv_job* j, int64_t n, float* out) {
  const uint8_t* row[4];
  for (int r = 0; r < 4; r++) row[r] = j->w + (n + r) * j->row_bytes;
  int64_t groups = j->K / j->group;
  const __m512i low4 = _mm512_set1_epi32(0xf);
  __m512 acc[4];
  float bias_acc[4] = {0, 0, 0, 0};
  for (int r = 0; r < 4; r++) acc[r] = _mm512_setzero_ps();
  for (int64_t g = 0; g < groups; g++) {
    int64_t k0 = g * j->group;
    __m512 d0[4], d1[4];
    for (int r = 0; r < 4; r++) d0[r] = d1[r] = _mm512_setzero_ps();
    if (j->bits == 4) {
      for (int i = 0; i < j->group; i += 32) {
        __m512 xl = _mm512_loadu_ps(j->xp + k0 + i), xh = _mm512_loadu_ps(j->xp + k0 + i + 16);
        for (int r = 0; r < 4; r++) {
          __m512i v = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)(row[r] + (k0 + i) / 2)));
          d0[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_and_si512(v, low4)), xl, d0[r]);
          d1[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(v, 4)), xh, d1[r]);
        }
      }
    } else {
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
    }
    for (int r = 0; r < 4; r++) {
      int64_t gi = (n + r) * groups + g;
      float scale = quant_load(j->scales, j->sdtype, gi);
      acc[r] = _mm512_fmadd_ps(_mm512_add_ps(d0[r], d1[r]), _mm512_set1_ps(scale), acc[r]);
      bias_acc[r] += quant_load(j->biases, j->sdtype, gi) * j->xsum[g];
    }
  }
  for (int r = 0; r < 4; r++) out[r] = _mm512_reduce_add_ps(acc[r]) + bias_acc[r];
}

#endif

static void rows_chunk(void* p, int64_t begin, int64_t end) {
  const qgemv_job* j = p;
  int64_t n = begin;
#if CPU_HAVE_X86_KERNELS
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

/* xp: per block of `block` elements, the even-indexed ones then the odd-indexed ones (the order
 * in which the 4-bit kernels see low and high nibbles). */
static void nibble_order(float* xp, const float* x, int64_t K, int block) {
  for (int64_t b = 0; b < K; b += block)
    for (int t = 0; t < block / 2; t++) {
      xp[b + t] = x[b + 2 * t];
      xp[b + block / 2 + t] = x[b + 2 * t + 1];
    }
}

int cpu_qgemv_affine_isa(cpu_isa isa, float* y, const float* x, const uint32_t* w,
                         const void* scales, const void* biases, mlx_dtype sdtype, int64_t N,
                         int64_t K, int bits, int group_size) {
  if (bits != 4 && bits != 8) isa = CPU_ISA_PORTABLE; /* SIMD kernels cover 4 and 8 bits */
  int64_t groups = K / group_size;
  float* xsum = malloc(sizeof(float) * (size_t)groups + 1);
  float* xp = isa != CPU_ISA_PORTABLE && bits == 4 ? malloc(sizeof(float) * (size_t)K) : NULL;
  if (!xsum || (isa != CPU_ISA_PORTABLE && bits == 4 && !xp)) {
    free(xsum);
    free(xp);
    return util_error("quantized_matmul: out of memory");
  }
  for (int64_t g = 0; g < groups; g++) {
    float s = 0;
    for (int i = 0; i < group_size; i++) s += x[g * group_size + i];
    xsum[g] = s;
  }
  if (xp) nibble_order(xp, x, K, isa == CPU_ISA_AVX512 ? 32 : 16);
  qgemv_job j = {isa,  y,      x,     xp,    xsum,   (const uint8_t*)w, K * bits / 8, N,
                 K,    scales, biases, sdtype, bits, group_size};
  int64_t min_rows = QGEMV_MIN_CHUNK_BYTES / (j.row_bytes > 0 ? j.row_bytes : 1);
  cpu_parallel_for(N, min_rows > 0 ? min_rows : 1, rows_chunk, &j);
  free(xsum);
  free(xp);
  return 0;
}

int cpu_qgemv_affine(float* y, const float* x, const uint32_t* w, const void* scales,
                     const void* biases, mlx_dtype sdtype, int64_t N, int64_t K, int bits,
                     int group_size) {
  return cpu_qgemv_affine_isa(cpu_isa_best(), y, x, w, scales, biases, sdtype, N, K, bits,
                              group_size);
}
