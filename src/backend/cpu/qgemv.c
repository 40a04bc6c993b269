/* Affine-quantized matrix-vector kernels (see qgemv.h). Per weight row, row of x and group g:
 *   y += scale_g * sum_k x_k q_k + bias_g * sum_k x_k
 * so the group sums of x are computed once per call and the inner loop is a dot product of x
 * with the raw integers. The 2- and 4-bit SIMD kernels take value t of every word of a vector at
 * once; x is reordered once per call to match (layout below). The 2-, 4- and 8-bit kernels take
 * several rows of x per pass, each unpacked weight vector serving all of them; the others run
 * one row of x at a time over a block of weights in cache. Either way an output's arithmetic
 * does not depend on how many rows of x the call has. */
#include "backend/cpu/qgemv.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

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
 * weights: 5.7 GB/s without, 7.7 with 256 bytes; 64-128 and 1024+ bytes gained little or lost).
 * Rows of up to 4 KB take 384 (once the prefetch past a row's end went to the row read next,
 * 384 against 256: 4-bit 151936x896 on 2 threads 4.2 -> 3.9 ms, 4096x4096 unchanged; rows of
 * 14336 values 2-3% slower with 384, so they keep 256). */
#ifndef QGEMV_PREFETCH_BYTES
#define QGEMV_PREFETCH_BYTES 256
#endif
#ifndef QGEMV_PREFETCH_BYTES_SHORT_ROWS
#define QGEMV_PREFETCH_BYTES_SHORT_ROWS 384
#endif

/* Rows per pass of the AVX-512 4-bit kernel: each x vector serves this many rows (8 measured
 * 10% faster than 4 with the weights in cache). */
#ifndef QGEMV_ROWS
#define QGEMV_ROWS 8
#endif

/* Page-strided row order (qlow_pass_avx512); 0 turns it off (comparisons). */
#ifndef QGEMV_PAGE_STRIDE
#define QGEMV_PAGE_STRIDE 1
#endif

/* Weight rows per block: when the rows of x take several passes, each pass runs over a block
 * before the next block, so the later passes read the block from L2. A multiple of every
 * pass's rows (up to 8 rows, page-strided by up to 8). */
#define QGEMV_BLOCK_ROWS 64
/* Bytes of x per span of k (qgemv_span). */
#ifndef QGEMV_X_SPAN_BYTES
#define QGEMV_X_SPAN_BYTES (32 << 10)
#endif
/* Rows of x per pass of a multi-row kernel, at most (tile_rows). */
#define QGEMV_TILE_M_MAX 8
/* Marks the instantiations of a multi-row kernel (one per number of rows of x), each a function
 * of its own: as cases of one function, GCC 12's code for one row (the decode case) ran 6%
 * slower (4-bit 4096 x 4096, one thread, weights in cache). */
#define QGEMV_NOINLINE __attribute__((noinline))

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

/* Rows that share a 4 KB page, read side by side, cut the bandwidth of a plain read of the same
 * lines on the dev machine by a third (the hardware prefetcher follows one stream per page): a
 * pass takes every rs-th row, rs = rows per page, and rs passes cover a block of rs * R rows.
 * On the device, 14336x4096 4-bit streamed 10-13% faster so (two runs), 4096x4096 within noise. */
static int64_t page_stride(const qgemv_job* j) {
  int64_t rs = 1;
#if QGEMV_PAGE_STRIDE
  while (rs < 8 && j->row_bytes * rs * 2 <= 4096) rs *= 2;
#endif
  return rs;
}

/* Where the multi-row kernels work: rows [m0, m0 + M) of x and values [k0, k1) of each, for
 * weight rows of the block starting at row n0. A span of x stays in L1 while every tile of the
 * block runs over it (8 rows of 4096 values are 128 KB: read whole for every weight row, from L2,
 * 4-bit 4096 x 4096 took 3.2 / 6.4 ms with 8 / 16 rows of x against 2.7 / 4.7 in spans; 2
 * threads, dev machine). The accumulator of weight row n and row m0 + m of x waits between
 * spans in carry[(n - n0) * M + m] (a vector, not its sum: the arithmetic is unchanged). */
typedef struct {
  int64_t m0, k0, k1, n0;
  void* carry; /* QGEMV_BLOCK_ROWS * tile_m vectors */
} qgemv_span;

/* Values per span for M > 1 rows of x: a multiple of 256 (of every block and group). One row of
 * x takes K at once (the decode case keeps its access pattern and needs no carry). */
static int64_t x_span(int M) {
  int64_t span = QGEMV_X_SPAN_BYTES / (int64_t)(sizeof(float) * (size_t)M) / 256 * 256;
  return span > 256 ? span : 256;
}

#if CPU_HAVE_X86_KERNELS

/* ---- 8 bits: AVX2 (8 bytes -> 8 values), AVX-512 (16 bytes -> 16 values) ----
 * Per output and group: two partial dot products (the two halves of each run of 32 values),
 * scaled and added to the output's accumulator; the bias term at the end. */

/* Weight row n times the span's rows of x (M <= 2, a constant after inlining). */
CPU_TARGET_AVX2 static inline __attribute__((always_inline)) void
q8_tile_avx2(const qgemv_job* j, int64_t n, int M, qgemv_span sp) {
  const uint8_t* row = j->w + n * j->row_bytes;
  int64_t groups = j->K / j->group, m0 = sp.m0;
  __m256* carry = (__m256*)sp.carry + (n - sp.n0) * M;
  __m256 acc[2], d0[2], d1[2];
  CPU_TILE_UNROLL
  for (int m = 0; m < M; m++) acc[m] = sp.k0 ? carry[m] : _mm256_setzero_ps();
  for (int64_t g = sp.k0 / j->group; g < sp.k1 / j->group; g++) {
    int64_t k0 = g * j->group;
    CPU_TILE_UNROLL
    for (int m = 0; m < M; m++) d0[m] = d1[m] = _mm256_setzero_ps();
    const uint8_t* p = row + k0;
    for (int i = 0; i < j->group; i += 16) {
      __m256 a = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i*)(p + i))));
      __m256 b = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i*)(p + i + 8))));
      const float* x = j->xp + m0 * j->ldxp + (k0 + i) * M; /* the chunk's vectors, interleaved */
      CPU_TILE_UNROLL
      for (int m = 0; m < M; m++) {
        d0[m] = _mm256_fmadd_ps(a, _mm256_loadu_ps(x + 8 * m), d0[m]);
        d1[m] = _mm256_fmadd_ps(b, _mm256_loadu_ps(x + 8 * (M + m)), d1[m]);
      }
    }
    __m256 scale = _mm256_set1_ps(quant_load(j->scales, j->sdtype, n * groups + g));
    CPU_TILE_UNROLL
    for (int m = 0; m < M; m++) acc[m] = _mm256_fmadd_ps(_mm256_add_ps(d0[m], d1[m]), scale, acc[m]);
  }
  CPU_TILE_UNROLL
  for (int m = 0; m < M; m++) {
    if (sp.k1 < j->K) carry[m] = acc[m];
    else j->y[(m0 + m) * j->N + n] = bias_dot_avx2(j, n, groups, j->xsum + (m0 + m) * j->ldxs, acc[m]);
  }
}

/* Weight rows [n, n + R) times the span's rows of x (R * M <= 4 and the group size: constants
 * after inlining): each x vector loaded serves R weight rows, each weight vector M rows of x,
 * and the R * M chains overlap (one row at a time left the kernel bound by loop and scale
 * overhead). With one row of x the tile's rows, side by side in memory, are prefetched into L2
 * as one stream one tile ahead: the hardware prefetcher alone, facing R short rows read side by
 * side, left decode of rows of 896 bytes (a 0.5B model's) at 10-11 GB/s on 2 threads against
 * 18-22 so, and 4096-byte rows unchanged at ~22 (T0 instead of T1: ~10% slower; a fixed distance
 * of 1-2 KB past the last row's: 10-15% slower). */
CPU_TARGET_AVX512 static inline __attribute__((always_inline)) void
q8_tile_avx512(const qgemv_job* j, int64_t n, int R, int M, int group, qgemv_span sp) {
  const uint8_t* row[4];
  int64_t groups = j->K / group, m0 = sp.m0;
  __m512* carry = (__m512*)sp.carry + (n - sp.n0) * M;
  __m512 acc[4], d0[4], d1[4], a[4], b[4];
  CPU_TILE_UNROLL
  for (int r = 0; r < R; r++) row[r] = j->w + (n + r) * j->row_bytes;
  CPU_TILE_UNROLL
  for (int i = 0; i < R * M; i++) acc[i] = sp.k0 ? carry[i] : _mm512_setzero_ps();
  for (int64_t g = sp.k0 / group; g < sp.k1 / group; g++) {
    int64_t k0 = g * group;
    CPU_TILE_UNROLL
    for (int i = 0; i < R * M; i++) d0[i] = d1[i] = _mm512_setzero_ps();
    CPU_TILE_UNROLL
    for (int i = 0; i < group; i += 32) {
      if (M == 1) /* one row of x: prefetch (see above) */
        for (int l = 0; l < R * 32; l += 64)
          _mm_prefetch((const char*)row[0] + (k0 + i) * R + l + R * j->row_bytes, _MM_HINT_T1);
      CPU_TILE_UNROLL
      for (int r = 0; r < R; r++) {
        const uint8_t* p = row[r] + k0 + i;
        a[r] = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)p)));
        b[r] = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)(p + 16))));
      }
      const float* x = j->xp + m0 * j->ldxp + (k0 + i) * M; /* the chunk's vectors, interleaved */
      CPU_TILE_UNROLL
      for (int m = 0; m < M; m++) {
        __m512 xa = _mm512_loadu_ps(x + 16 * m), xb = _mm512_loadu_ps(x + 16 * (M + m));
        CPU_TILE_UNROLL
        for (int r = 0; r < R; r++) {
          d0[r * M + m] = _mm512_fmadd_ps(a[r], xa, d0[r * M + m]);
          d1[r * M + m] = _mm512_fmadd_ps(b[r], xb, d1[r * M + m]);
        }
      }
    }
    CPU_TILE_UNROLL
    for (int r = 0; r < R; r++) {
      __m512 scale = _mm512_set1_ps(quant_load(j->scales, j->sdtype, (n + r) * groups + g));
      CPU_TILE_UNROLL
      for (int m = 0; m < M; m++)
        acc[r * M + m] = _mm512_fmadd_ps(_mm512_add_ps(d0[r * M + m], d1[r * M + m]), scale, acc[r * M + m]);
    }
  }
  CPU_TILE_UNROLL
  for (int r = 0; r < R; r++)
    CPU_TILE_UNROLL
    for (int m = 0; m < M; m++) {
      if (sp.k1 < j->K) {
        carry[r * M + m] = acc[r * M + m];
        continue;
      }
      __m512 bias = bias_dot_avx512(j, n + r, groups, j->xsum + (m0 + m) * j->ldxs);
      j->y[(m0 + m) * j->N + n + r] = _mm512_reduce_add_ps(_mm512_add_ps(acc[r * M + m], bias));
    }
}

CPU_TARGET_AVX2 static inline __attribute__((always_inline)) void
q8_pass_avx2(const qgemv_job* j, int64_t n, int64_t end, int M, qgemv_span sp) {
  for (; n < end; n++) q8_tile_avx2(j, n, M, sp);
}

CPU_TARGET_AVX2 static inline __attribute__((always_inline)) void
q8_run_avx2(const qgemv_job* j, int64_t n, int64_t end, int64_t m0, int M, void* carry) {
  if (M == 1) {
    q8_pass_avx2(j, n, end, 1, (qgemv_span){m0, 0, j->K, n, carry});
    return;
  }
  for (int64_t k0 = 0, span = x_span(M); k0 < j->K; k0 += span)
    q8_pass_avx2(j, n, end, M, (qgemv_span){m0, k0, j->K - k0 < span ? j->K : k0 + span, n, carry});
}

/* One function per number of rows of x, each compiled alone (QGEMV_BY_ROWS). */
#define Q8_AVX2(MM)                                                                       \
  CPU_TARGET_AVX2 QGEMV_NOINLINE static void q8_m##MM##_avx2(                             \
      const qgemv_job* j, int64_t n, int64_t end, int64_t m0, void* carry) {              \
    q8_run_avx2(j, n, end, m0, MM, carry);                                                \
  }
Q8_AVX2(1)
Q8_AVX2(2)
#undef Q8_AVX2

/* Rows [n, end) of a block times rows [m0, m0 + M) of x (M <= 2), span by span. */
static void q8_range_avx2(const qgemv_job* j, int64_t n, int64_t end, int64_t m0, int M,
                          void* carry) {
  if (M == 2) q8_m2_avx2(j, n, end, m0, carry);
  else q8_m1_avx2(j, n, end, m0, carry);
}

CPU_TARGET_AVX512 static inline __attribute__((always_inline)) void
q8_pass_group_avx512(const qgemv_job* j, int64_t n, int64_t end, int M, int R, int group,
                     qgemv_span sp) {
  for (; n + R <= end; n += R) q8_tile_avx512(j, n, R, M, group, sp);
  for (; n < end; n++) q8_tile_avx512(j, n, 1, M, group, sp);
}

/* The group size as a constant (a group's runs of 32 unrolled): 8-10% faster with 2 to 8 rows
 * of x (one thread, weights in cache), unchanged with one. */
CPU_TARGET_AVX512 static inline __attribute__((always_inline)) void
q8_pass_avx512(const qgemv_job* j, int64_t n, int64_t end, int M, int R, qgemv_span sp) {
  switch (j->group) {
    case 32: q8_pass_group_avx512(j, n, end, M, R, 32, sp); return;
    case 64: q8_pass_group_avx512(j, n, end, M, R, 64, sp); return;
    case 128: q8_pass_group_avx512(j, n, end, M, R, 128, sp); return;
    default: q8_pass_group_avx512(j, n, end, M, R, j->group, sp); return;
  }
}

CPU_TARGET_AVX512 static inline __attribute__((always_inline)) void
q8_run_avx512(const qgemv_job* j, int64_t n, int64_t end, int64_t m0, int M, int R, void* carry) {
  if (M == 1) {
    q8_pass_avx512(j, n, end, 1, R, (qgemv_span){m0, 0, j->K, n, carry});
    return;
  }
  for (int64_t k0 = 0, span = x_span(M); k0 < j->K; k0 += span)
    q8_pass_avx512(j, n, end, M, R, (qgemv_span){m0, k0, j->K - k0 < span ? j->K : k0 + span, n, carry});
}

/* One function per number of rows of x (QGEMV_BY_ROWS); weight rows per tile by M (R * M <= 4:
 * with the partial sums and the widened weights, up to 22 vectors). */
#define Q8_AVX512(MM, RR)                                                                 \
  CPU_TARGET_AVX512 QGEMV_NOINLINE static void q8_m##MM##_avx512(                         \
      const qgemv_job* j, int64_t n, int64_t end, int64_t m0, void* carry) {              \
    q8_run_avx512(j, n, end, m0, MM, RR, carry);                                          \
  }
Q8_AVX512(1, 4)
Q8_AVX512(2, 2)
Q8_AVX512(3, 1)
Q8_AVX512(4, 1)
#undef Q8_AVX512

/* Rows [n, end) of a block times rows [m0, m0 + M) of x, M <= 4. */
static void q8_range_avx512(const qgemv_job* j, int64_t n, int64_t end, int64_t m0, int M,
                            void* carry) {
  static void (*const by_rows[5])(const qgemv_job*, int64_t, int64_t, int64_t, void*) = {
      NULL, q8_m1_avx512, q8_m2_avx512, q8_m3_avx512, q8_m4_avx512};
  by_rows[M](j, n, end, m0, carry);
}

/* ---- 2- and 4-bit ----
 * A 32-bit word of weights holds V = 32 / bits values (word w: values Vw .. Vw + V - 1).
 * The kernels load one word per vector lane (L lanes: a block of VL values) and take value t of
 * every lane at once (shift by t * bits, then a 16-entry table lookup that ignores the higher
 * bits on AVX-512, mask and convert on AVX2), so no byte is widened on its own. x is reordered
 * once per call to match: xp[b * VL + t * L + l] = x[b * VL + V * l + t], zero-padded to whole
 * blocks. A lane never straddles groups (groups are powers of two >= V), so lane l's scale is
 * that of group (b * VL + V * l) / group: the scales apply as one vector per block and row, and
 * the bias term sum_g bias_g * xsum_g is a separate dot product over groups. A weight vector,
 * once its values are taken out, serves the M rows of x of the tile. */

/* Weight rows n, n + rs, .. n + (R - 1) rs times the span's rows of x (R * M <= 8; R, M and
 * bits are constants after inlining). A prefetch that runs past the end of a row goes `jump`
 * bytes further, to the row this one's place takes in the next tile (qlow_pass_avx512): with
 * rows of 448 bytes (896 values) more than half of each row's prefetches had gone to the next
 * row in memory, which the same tile or a past one had already read (4-bit 896-wide rows, one
 * thread: 6-10% faster; 151936x896 on 2 threads 4.4 -> 4.2 ms). */
CPU_TARGET_AVX512 static inline __attribute__((always_inline)) void
qlow_tile_avx512(const qgemv_job* j, int64_t n, int64_t rs, int64_t jump, int R, int M, int bits,
                 mlx_dtype sdtype, qgemv_span sp) {
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
  const int64_t m0 = sp.m0;
  const int64_t distance = j->row_bytes <= 4096 ? QGEMV_PREFETCH_BYTES_SHORT_ROWS : QGEMV_PREFETCH_BYTES;
  const float* xp = j->xp + m0 * j->ldxp; /* the chunk's vectors, interleaved */
  __m512* carry = (__m512*)sp.carry + (n - sp.n0) * M;
  __m512 acc[8], d[8], xv[8];
  __m512i w[8];
  CPU_TILE_UNROLL
  for (int r = 0; r < R; r++) row[r] = j->w + (n + r * rs) * j->row_bytes;
  CPU_TILE_UNROLL
  for (int r = 0; r < R; r++)
    CPU_TILE_UNROLL
    for (int m = 0; m < M; m++) acc[r * M + m] = sp.k0 ? carry[r * rs * M + m] : _mm512_setzero_ps();
  /* Rows of at most 16 groups (a 0.5B model's 896-wide rows, its tied head among them): each
   * row's scales are widened to float once, not once per block, and a block picks its lanes'
   * scales from that vector with one permute (two vector operations fewer per row and block, of
   * ~29): 4-bit 896x896, one thread, in cache 32.5 -> 30.0 us; from memory 1-3% faster. */
  const bool whole_row_scales = G <= 16;
  __m512 row_scales[8];
  CPU_TILE_UNROLL
  for (int r = 0; r < R; r++)
    row_scales[r] = whole_row_scales ? load16_avx512(j->scales, sdtype, (n + r * rs) * G, (int)G)
                                     : _mm512_setzero_ps();
  for (int64_t k0 = sp.k0; k0 < sp.k1; k0 += BV) {
    int words = K - k0 >= BV ? 16 : (int)((K - k0) / V);
    CPU_TILE_UNROLL
    for (int r = 0; r < R; r++) {
      /* a hint, never a fault, also past the end of the weights */
      int64_t ahead = k0 / V * 4 + distance;
      _mm_prefetch((const char*)row[r] + ahead + (ahead >= j->row_bytes ? jump : 0), _MM_HINT_T0);
      w[r] = _mm512_maskz_loadu_epi32((__mmask16)((1u << words) - 1), row[r] + k0 / V * 4);
    }
    CPU_TILE_UNROLL
    for (int i = 0; i < R * M; i++) d[i] = _mm512_setzero_ps();
    CPU_TILE_UNROLL
    for (int t = 0; t < V; t++) {
      CPU_TILE_UNROLL
      for (int m = 0; m < M; m++) xv[m] = _mm512_loadu_ps(xp + (k0 * M + (t * M + m) * 16));
      CPU_TILE_UNROLL
      for (int r = 0; r < R; r++) {
        __m512 q = _mm512_permutexvar_ps(w[r], lut);
        w[r] = _mm512_srli_epi32(w[r], bits);
        CPU_TILE_UNROLL
        for (int m = 0; m < M; m++) d[r * M + m] = _mm512_fmadd_ps(q, xv[m], d[r * M + m]);
      }
    }
    int64_t g0 = k0 >> j->gshift;
    int count = G - g0 < gpb ? (int)(G - g0) : gpb;
    const __m512i row_sidx = _mm512_add_epi32(sidx, _mm512_set1_epi32((int)g0));
    CPU_TILE_UNROLL
    for (int r = 0; r < R; r++) {
      __m512 s = whole_row_scales
                     ? _mm512_permutexvar_ps(row_sidx, row_scales[r])
                     : _mm512_permutexvar_ps(sidx, load16_avx512(j->scales, sdtype, (n + r * rs) * G + g0, count));
      CPU_TILE_UNROLL
      for (int m = 0; m < M; m++) acc[r * M + m] = _mm512_fmadd_ps(d[r * M + m], s, acc[r * M + m]);
    }
  }
  CPU_TILE_UNROLL
  for (int r = 0; r < R; r++)
    CPU_TILE_UNROLL
    for (int m = 0; m < M; m++) {
      if (sp.k1 < K) {
        carry[r * rs * M + m] = acc[r * M + m];
        continue;
      }
      __m512 bias = bias_dot_avx512(j, n + r * rs, G, j->xsum + (m0 + m) * j->ldxs);
      j->y[(m0 + m) * j->N + n + r * rs] = _mm512_reduce_add_ps(_mm512_add_ps(acc[r * M + m], bias));
    }
}

CPU_TARGET_AVX512 static inline __attribute__((always_inline)) void
qlow_pass_avx512(const qgemv_job* j, int64_t n, int64_t end, int M, int R, int bits,
                 mlx_dtype sdtype, qgemv_span sp) {
  int64_t rs = page_stride(j);
  /* tile p + 1 reads the rows right after tile p's; the last tile's are followed by the next
   * pass's, R * rs rows on (the prefetch's jump) */
  for (; n + R * rs <= end; n += R * rs)
    for (int64_t p = 0; p < rs; p++)
      qlow_tile_avx512(j, n + p, rs, p == rs - 1 ? (R - 1) * rs * j->row_bytes : 0, R, M, bits,
                       sdtype, sp);
  for (; n < end; n++) qlow_tile_avx512(j, n, 1, 0, 1, M, bits, sdtype, sp);
}

CPU_TARGET_AVX512 static inline __attribute__((always_inline)) void
qlow_run_avx512(const qgemv_job* j, int64_t n, int64_t end, int64_t m0, int M, int R, int bits,
                mlx_dtype sdtype, void* carry) {
  if (M == 1) {
    qlow_pass_avx512(j, n, end, 1, R, bits, sdtype, (qgemv_span){m0, 0, j->K, n, carry});
    return;
  }
  for (int64_t k0 = 0, span = x_span(M); k0 < j->K; k0 += span)
    qlow_pass_avx512(j, n, end, M, R, bits, sdtype,
                     (qgemv_span){m0, k0, j->K - k0 < span ? j->K : k0 + span, n, carry});
}

/* One function per number of rows of x (QGEMV_BY_ROWS); weight rows per pass by M (R * M <= 8:
 * accumulators, partial sums, x vectors and weights within the 32 registers). Decode (one row,
 * 4 bits, bfloat16 scales: a converted model's) has the scales' dtype as a constant: the dtype
 * tests of every scale load, per row and block, left it at 8 GB/s on one thread with 896 x 896
 * weights in cache, against 14.5 so. */
#define QLOW_AVX512(MM, RR)                                                               \
  CPU_TARGET_AVX512 QGEMV_NOINLINE static void qlow_m##MM##_avx512(                       \
      const qgemv_job* j, int64_t n, int64_t end, int64_t m0, void* carry) {              \
    if (MM == 1 && j->sdtype == MLX_BFLOAT16 && j->bits == 4)                             \
      qlow_run_avx512(j, n, end, m0, MM, RR, 4, MLX_BFLOAT16, carry);                     \
    else if (j->bits == 4) qlow_run_avx512(j, n, end, m0, MM, RR, 4, j->sdtype, carry);   \
    else qlow_run_avx512(j, n, end, m0, MM, RR, 2, j->sdtype, carry);                     \
  }
QLOW_AVX512(1, QGEMV_ROWS)
QLOW_AVX512(2, 4)
QLOW_AVX512(3, 2)
QLOW_AVX512(4, 2)
QLOW_AVX512(5, 1)
QLOW_AVX512(6, 1)
QLOW_AVX512(7, 1)
QLOW_AVX512(8, 1)
#undef QLOW_AVX512

/* Rows [n, end) of a block times rows [m0, m0 + M) of x, M <= 8. */
static void qlow_range_avx512(const qgemv_job* j, int64_t n, int64_t end, int64_t m0, int M,
                              void* carry) {
  static void (*const by_rows[9])(const qgemv_job*, int64_t, int64_t, int64_t, void*) = {
      NULL, qlow_m1_avx512, qlow_m2_avx512, qlow_m3_avx512, qlow_m4_avx512,
      qlow_m5_avx512, qlow_m6_avx512, qlow_m7_avx512, qlow_m8_avx512};
  by_rows[M](j, n, end, m0, carry);
}

/* Weight rows [n, n + R) times the span's rows of x (R * M <= 4; R, M and bits constants after
 * inlining). */
CPU_TARGET_AVX2 static inline __attribute__((always_inline)) void
qlow_tile_avx2(const qgemv_job* j, int64_t n, int R, int M, int bits, qgemv_span sp) {
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
  const int64_t m0 = sp.m0;
  const float* xp = j->xp + m0 * j->ldxp; /* the chunk's vectors, interleaved */
  __m256* carry = (__m256*)sp.carry + (n - sp.n0) * M;
  __m256 acc[4], d[4], xv[4];
  __m256i w[4];
  CPU_TILE_UNROLL
  for (int r = 0; r < R; r++) row[r] = j->w + (n + r) * j->row_bytes;
  CPU_TILE_UNROLL
  for (int i = 0; i < R * M; i++) acc[i] = sp.k0 ? carry[i] : _mm256_setzero_ps();
  for (int64_t k0 = sp.k0; k0 < sp.k1; k0 += BV) {
    CPU_TILE_UNROLL
    for (int r = 0; r < R; r++) {
      const void* p = row[r] + k0 / V * 4;
      w[r] = K - k0 >= BV ? _mm256_loadu_si256(p) : _mm256_maskload_epi32(p, tail);
    }
    CPU_TILE_UNROLL
    for (int i = 0; i < R * M; i++) d[i] = _mm256_setzero_ps();
    CPU_TILE_UNROLL
    for (int t = 0; t < V; t++) {
      CPU_TILE_UNROLL
      for (int m = 0; m < M; m++) xv[m] = _mm256_loadu_ps(xp + (k0 * M + (t * M + m) * 8));
      CPU_TILE_UNROLL
      for (int r = 0; r < R; r++) {
        __m256 q = _mm256_cvtepi32_ps(_mm256_and_si256(w[r], low));
        w[r] = _mm256_srli_epi32(w[r], bits);
        CPU_TILE_UNROLL
        for (int m = 0; m < M; m++) d[r * M + m] = _mm256_fmadd_ps(q, xv[m], d[r * M + m]);
      }
    }
    int64_t g0 = k0 >> j->gshift;
    int count = G - g0 < gpb ? (int)(G - g0) : gpb;
    CPU_TILE_UNROLL
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
      CPU_TILE_UNROLL
      for (int m = 0; m < M; m++) acc[r * M + m] = _mm256_fmadd_ps(d[r * M + m], sv, acc[r * M + m]);
    }
  }
  CPU_TILE_UNROLL
  for (int r = 0; r < R; r++)
    CPU_TILE_UNROLL
    for (int m = 0; m < M; m++) {
      if (sp.k1 < K) carry[r * M + m] = acc[r * M + m];
      else j->y[(m0 + m) * j->N + n + r] =
               bias_dot_avx2(j, n + r, G, j->xsum + (m0 + m) * j->ldxs, acc[r * M + m]);
    }
}

CPU_TARGET_AVX2 static inline __attribute__((always_inline)) void
qlow_pass_avx2(const qgemv_job* j, int64_t n, int64_t end, int M, int R, int bits, qgemv_span sp) {
  for (; n + R <= end; n += R) qlow_tile_avx2(j, n, R, M, bits, sp);
  for (; n < end; n++) qlow_tile_avx2(j, n, 1, M, bits, sp);
}

CPU_TARGET_AVX2 static inline __attribute__((always_inline)) void
qlow_run_avx2(const qgemv_job* j, int64_t n, int64_t end, int64_t m0, int M, int R, int bits,
              void* carry) {
  if (M == 1) {
    qlow_pass_avx2(j, n, end, 1, R, bits, (qgemv_span){m0, 0, j->K, n, carry});
    return;
  }
  for (int64_t k0 = 0, span = x_span(M); k0 < j->K; k0 += span)
    qlow_pass_avx2(j, n, end, M, R, bits,
                   (qgemv_span){m0, k0, j->K - k0 < span ? j->K : k0 + span, n, carry});
}

/* One function per number of rows of x (QGEMV_BY_ROWS); R * M <= 4 within the 16 registers. */
#define QLOW_AVX2(MM, RR)                                                                 \
  CPU_TARGET_AVX2 QGEMV_NOINLINE static void qlow_m##MM##_avx2(                           \
      const qgemv_job* j, int64_t n, int64_t end, int64_t m0, void* carry) {              \
    if (j->bits == 4) qlow_run_avx2(j, n, end, m0, MM, RR, 4, carry);                     \
    else qlow_run_avx2(j, n, end, m0, MM, RR, 2, carry);                                  \
  }
QLOW_AVX2(1, 4)
QLOW_AVX2(2, 2)
QLOW_AVX2(3, 1)
QLOW_AVX2(4, 1)
#undef QLOW_AVX2

/* Rows [n, end) of a block times rows [m0, m0 + M) of x, M <= 4. */
static void qlow_range_avx2(const qgemv_job* j, int64_t n, int64_t end, int64_t m0, int M,
                            void* carry) {
  static void (*const by_rows[5])(const qgemv_job*, int64_t, int64_t, int64_t, void*) = {
      NULL, qlow_m1_avx2, qlow_m2_avx2, qlow_m3_avx2, qlow_m4_avx2};
  by_rows[M](j, n, end, m0, carry);
}

#endif

/* Rows [n, end) of the weights times one row of x (j: a view of that row): the kernels that
 * take one row of x at a time. */
static void one_row_range(const qgemv_job* j, int64_t n, int64_t end) {
#if CPU_HAVE_X86_KERNELS
  if (j->xb) {
    qgemv_bf16_chunk(j, n, end);
    return;
  }
  bool odd = j->bits == 3 || j->bits == 5 || j->bits == 6;
  if (odd && j->isa == CPU_ISA_AVX512) {
    qgemv_odd_chunk_avx512(j, n, end);
    return;
  }
  if (odd && j->isa == CPU_ISA_AVX2) {
    qgemv_odd_chunk_avx2(j, n, end);
    return;
  }
#endif
  for (; n < end; n++) j->y[n] = row_portable(j, n);
}

/* The job seen as row m of x alone. */
static qgemv_job row_view(const qgemv_job* j, int64_t m) {
  qgemv_job v = *j;
  v.M = 1;
  v.y = j->y + m * j->N;
  v.x = j->x + m * j->K;
  if (j->xb) v.xb = j->xb + m * j->ldxb;
  v.xsum = j->xsum + m * j->ldxs;
  return v;
}

/* Rows [n, end) of a block of weights times rows [m0, m0 + M) of x (M <= j->tile_m); carry:
 * room for the multi-row kernels' accumulators (qgemv_span). */
static void rows_range(const qgemv_job* j, int64_t n, int64_t end, int64_t m0, int M, void* carry) {
#if CPU_HAVE_X86_KERNELS
  bool low = j->bits == 2 || j->bits == 4;
  if (!j->xb && low && j->isa == CPU_ISA_AVX512) {
    qlow_range_avx512(j, n, end, m0, M, carry);
    return;
  }
  if (!j->xb && low && j->isa == CPU_ISA_AVX2) {
    qlow_range_avx2(j, n, end, m0, M, carry);
    return;
  }
  if (j->bits == 8 && j->isa == CPU_ISA_AVX512) {
    q8_range_avx512(j, n, end, m0, M, carry);
    return;
  }
  if (j->bits == 8 && j->isa == CPU_ISA_AVX2) {
    q8_range_avx2(j, n, end, m0, M, carry);
    return;
  }
#else
  (void)carry;
#endif
  for (int64_t m = m0; m < m0 + M; m++) {
    qgemv_job v = row_view(j, m);
    one_row_range(&v, n, end);
  }
}

/* Rows [begin, end) of the weights times every row of x, in blocks of QGEMV_BLOCK_ROWS weight
 * rows, each block multiplied by every chunk of x (M split into runs of at most tile_m rows,
 * sizes within one of each other) before the next block, so that the weights come from memory
 * once and from cache for the later chunks. One row of x (decode) takes the whole range at once
 * and needs no carry (its stack frame cost 0.4 us a call). */
static void rows_chunk_multi(const qgemv_job* j, int64_t begin, int64_t end) {
  _Alignas(64) float carry[QGEMV_BLOCK_ROWS * QGEMV_TILE_M_MAX * 16];
  int64_t chunks = (j->M + j->tile_m - 1) / j->tile_m;
  for (int64_t n = begin; n < end; n += QGEMV_BLOCK_ROWS) {
    int64_t block_end = end - n < QGEMV_BLOCK_ROWS ? end : n + QGEMV_BLOCK_ROWS;
    for (int64_t c = 0; c < chunks; c++) {
      int64_t m0 = c * j->M / chunks, m1 = (c + 1) * j->M / chunks;
      rows_range(j, n, block_end, m0, (int)(m1 - m0), carry);
    }
  }
}

static void rows_chunk(void* p, int64_t begin, int64_t end) {
  const qgemv_job* j = p;
  if (j->M == 1) rows_range(j, begin, end, 0, 1, NULL);
  else rows_chunk_multi(j, begin, end);
}

/* Row x in the order of the SIMD kernels, zero-padded to `padded` values, as vectors of `lanes`
 * values `stride` floats apart: natural order for 8 bits; for 2 and 4 bits V values per word,
 * `lanes` words per vector (layout above). */
static void kernel_order(float* out, int64_t stride, const float* x, int64_t K, int64_t padded,
                         int bits, int lanes) {
  int V = 32 / bits;
  if (bits == 8) {
    for (int64_t v = 0; v < padded / lanes; v++)
      for (int l = 0; l < lanes; l++) out[v * stride + l] = v * lanes + l < K ? x[v * lanes + l] : 0.0f;
    return;
  }
  for (int64_t b = 0; b < padded; b += V * lanes)
    for (int t = 0; t < V; t++)
      for (int l = 0; l < lanes; l++) {
        int64_t k = b + V * l + t;
        out[(b / lanes + t) * stride + l] = k < K ? x[k] : 0.0f;
      }
}

static bool is_pow2(int v) { return v > 0 && (v & (v - 1)) == 0; }

/* Rows of x per pass of the kernel the job runs: the multi-row kernels as many as their tiles
 * take (register budgets above), the one-row kernels 4 (a pass per row over a block of weights
 * in cache). */
static int tile_rows(const qgemv_job* j) {
  if (j->isa == CPU_ISA_PORTABLE || j->xb) return 4;
  if (j->bits == 2 || j->bits == 4) return j->isa == CPU_ISA_AVX512 ? 8 : 4;
  if (j->bits == 8) return j->isa == CPU_ISA_AVX512 ? 4 : 2;
  return 4;
}

/* xp for the 2-, 4- and 8-bit SIMD kernels: each chunk of rows of x (rows_chunk's split) takes
 * M_c * ldxp floats from row m0's place, vector v of its row m (vectors of `lanes` values in
 * kernel order) at (v * M_c + m) * lanes, so that the vectors a step of k needs lie together and
 * one pointer reaches them (a pointer per row of x left GCC short of registers, spilling them
 * into vector registers, at half the speed). */
static void interleave_rows(qgemv_job* j, const float* x, int lanes) {
  float* xp = (float*)j->xp;
  int64_t chunks = (j->M + j->tile_m - 1) / j->tile_m;
  for (int64_t c = 0; c < chunks; c++) {
    int64_t m0 = c * j->M / chunks, rows = (c + 1) * j->M / chunks - m0;
    for (int64_t m = 0; m < rows; m++)
      kernel_order(xp + m0 * j->ldxp + m * lanes, rows * lanes, x + (m0 + m) * j->K, j->K,
                   j->ldxp, j->bits, lanes);
  }
}

/* The per-row inputs of the kernels (xsum, xb, xp in j, allocated here; NULL where no kernel
 * reads them) and tile_m. The BF16 4-bit kernel (when enabled) takes x only when every row is
 * made of bfloat16 numbers (a bfloat16 model's activations), so that all rows take the same
 * kernel. Returns 1 (error reported) when out of memory. */
static int prepare_rows(qgemv_job* j, const float* x) {
  int64_t groups = j->K / j->group;
  int lanes = j->isa == CPU_ISA_AVX512 ? 16 : 8, V = 32 / j->bits;
  j->ldxs = (groups + 15) / 16 * 16;
  j->ldxp = (j->K + V * lanes - 1) / (V * lanes) * (V * lanes);
  j->ldxb = (j->K + 127) / 128 * 128;
  float* xsum = malloc(sizeof(float) * (size_t)(j->M * j->ldxs) + 1);
  j->xsum = xsum;
  if (!xsum) return util_error("quantized_matmul: out of memory");
  for (int64_t m = 0; m < j->M; m++)
    for (int64_t g = 0; g < j->ldxs; g++) {
      float s = 0;
      for (int i = 0; g < groups && i < j->group; i++) s += x[m * j->K + g * j->group + i];
      xsum[m * j->ldxs + g] = s;
    }
#if CPU_HAVE_X86_KERNELS
  if (j->bits == 4 && j->isa == CPU_ISA_AVX512 && qgemv_bf16_supported()) {
    uint16_t* xb = malloc(sizeof(uint16_t) * (size_t)(j->M * j->ldxb) + 1);
    if (!xb) return util_error("quantized_matmul: out of memory");
    bool all = true;
    for (int64_t m = 0; m < j->M && all; m++)
      all = qgemv_bf16_prepare(xb + m * j->ldxb, x + m * j->K, j->K, j->ldxb);
    if (all) j->xb = xb;
    else free(xb);
  }
#endif
  j->tile_m = tile_rows(j);
  if (j->isa == CPU_ISA_PORTABLE || j->xb || !(j->bits == 2 || j->bits == 4 || j->bits == 8))
    return 0;
  if (j->bits == 8 && j->M == 1) { /* one row in natural order: x itself (not freed) */
    j->xp = x;
    return 0;
  }
  j->xp = malloc(sizeof(float) * (size_t)(j->M * j->ldxp) + 1);
  if (!j->xp) return util_error("quantized_matmul: out of memory");
  interleave_rows(j, x, lanes);
  return 0;
}

int cpu_qgemv_affine_isa(cpu_isa isa, float* y, const float* x, int64_t M, const uint32_t* w,
                         const void* scales, const void* biases, mlx_dtype sdtype,
                         mlx_dtype bdtype, int64_t N, int64_t K, int bits, int group_size) {
  /* SIMD kernels: 2 and 4 bits with groups of 2^k >= 32 / bits values, 8 bits with multiples
   * of 32, 3, 5 and 6 bits with multiples of 16 */
  bool simd = ((bits == 2 || bits == 4) && is_pow2(group_size) && group_size >= 32 / bits) ||
              (bits == 8 && group_size % 32 == 0) ||
              ((bits == 3 || bits == 5 || bits == 6) && group_size % 16 == 0);
  if (!simd) isa = CPU_ISA_PORTABLE;
  int gshift = 0;
  while ((1 << gshift) < group_size) gshift++;
  qgemv_job j = {.isa = isa, .y = y, .x = x, .w = (const uint8_t*)w, .row_bytes = K * bits / 8,
                 .M = M, .N = N, .K = K, .scales = scales, .biases = biases, .sdtype = sdtype,
                 .bdtype = bdtype, .bits = bits, .group = group_size, .gshift = gshift};
  int status = prepare_rows(&j, x);
  if (!status) {
    int64_t min_rows = QGEMV_MIN_CHUNK_BYTES / (j.row_bytes > 0 ? j.row_bytes * M : 1);
    cpu_parallel_for(N, min_rows > 0 ? min_rows : 1, rows_chunk, &j);
  }
  free((void*)j.xsum);
  if (j.xp != x) free((void*)j.xp);
  free((void*)j.xb);
  return status;
}

int cpu_qgemv_affine(float* y, const float* x, int64_t M, const uint32_t* w, const void* scales,
                     const void* biases, mlx_dtype sdtype, mlx_dtype bdtype, int64_t N, int64_t K,
                     int bits, int group_size) {
  return cpu_qgemv_affine_isa(cpu_isa_best(), y, x, M, w, scales, biases, sdtype, bdtype, N, K,
                              bits, group_size);
}
