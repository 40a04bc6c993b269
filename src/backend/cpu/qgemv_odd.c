/* Decode GEMV kernels for 3-, 5- and 6-bit weights. Their values cross byte boundaries (8 values
 * fill `bits` bytes), so a vector lane cannot own a word as in the 2-/4-bit kernels. Instead each
 * lane takes the two bytes holding its value with one byte shuffle, then shifts it down by its
 * own amount (a per-lane variable shift), masks and converts: x keeps its natural order, a
 * vector covers 16 (AVX-512) or 8 (AVX2) consecutive values, and groups (multiples of 16) take
 * whole vectors, so each row's scale applies once per group as in the 8-bit kernel. */
#include <stdbool.h>
#include <string.h>

#include "backend/cpu/qgemv_internal.h"

#if CPU_HAVE_X86_KERNELS

/* Rows per pass: each x vector loaded serves this many rows. */
#define ODD_ROWS 4
/* Prefetch distance of each row's weights, as in the 2-/4-bit kernel. */
#define ODD_PREFETCH_BYTES 256

/* For value l of a run of 8 or 16 (l * bits bits from the run's start): the byte shuffle that
 * puts bytes l * bits / 8 and the next into dword lane l (zeroing the upper two), and the shift
 * that brings the value down. Shuffles index within 128-bit lanes; the source bytes are
 * broadcast to every 128-bit lane. */
static inline void odd_lane_tables(int bits, int lanes, uint8_t* shuffle, uint32_t* shift) {
  for (int l = 0; l < lanes; l++) {
    int bit = l * bits;
    shuffle[4 * l] = (uint8_t)(bit >> 3);
    shuffle[4 * l + 1] = (uint8_t)((bit >> 3) + 1);
    shuffle[4 * l + 2] = shuffle[4 * l + 3] = 0x80;
    shift[l] = (uint32_t)(bit & 7);
  }
}

/* The `bytes` bytes at p into the low bytes of a vector, never reading past p + bytes (the end
 * of a row; the last row ends the buffer). */
static inline __m128i load_tail(const uint8_t* p, int bytes) {
  uint8_t tmp[16] = {0};
  memcpy(tmp, p, (size_t)bytes);
  return _mm_loadu_si128((const __m128i*)tmp);
}

CPU_TARGET_AVX512 static inline __attribute__((always_inline)) void
odd_rows_avx512(const qgemv_job* j, int64_t n, int R, int bits, float* out) {
  const int64_t K = j->K, G = K / j->group;
  const int per_group = j->group / 16;
  uint8_t shuffle[64];
  uint32_t shift[16];
  odd_lane_tables(bits, 16, shuffle, shift);
  const __m512i shuf_all = _mm512_loadu_si512(shuffle);
  const __m512i sh = _mm512_loadu_si512(shift);
  const __m512i mask = _mm512_set1_epi32((1 << bits) - 1);
  const uint8_t* row[ODD_ROWS];
  __m512 acc[ODD_ROWS], d[ODD_ROWS];
  for (int r = 0; r < R; r++) {
    row[r] = j->w + (n + r) * j->row_bytes;
    acc[r] = _mm512_setzero_ps();
  }
  for (int64_t g = 0; g < G; g++) {
    for (int r = 0; r < R; r++) {
      _mm_prefetch((const char*)row[r] + g * j->group * bits / 8 + ODD_PREFETCH_BYTES, _MM_HINT_T0);
      d[r] = _mm512_setzero_ps();
    }
    for (int v = 0; v < per_group; v++) {
      int64_t k = g * j->group + 16 * v, byte = k / 8 * bits;
      bool tail = (K - k) * bits < 128; /* a 16-byte load would pass the row's end */
      __m512 xv = _mm512_loadu_ps(j->x + k);
      for (int r = 0; r < R; r++) {
        __m128i b = tail ? load_tail(row[r] + byte, 2 * bits)
                         : _mm_loadu_si128((const __m128i*)(row[r] + byte));
        __m512i q = _mm512_shuffle_epi8(_mm512_broadcast_i32x4(b), shuf_all);
        q = _mm512_and_si512(_mm512_srlv_epi32(q, sh), mask);
        d[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(q), xv, d[r]);
      }
    }
    for (int r = 0; r < R; r++)
      acc[r] = _mm512_fmadd_ps(d[r], _mm512_set1_ps(quant_load(j->scales, j->sdtype, (n + r) * G + g)),
                               acc[r]);
  }
  for (int r = 0; r < R; r++)
    out[r] = _mm512_reduce_add_ps(_mm512_add_ps(acc[r], bias_dot_avx512(j, n + r, G, j->xsum)));
}

CPU_TARGET_AVX512 void qgemv_odd_chunk_avx512(const qgemv_job* j, int64_t n, int64_t end) {
#define ODD_CHUNK(BITS)                                                                  \
  for (; n + ODD_ROWS <= end; n += ODD_ROWS) odd_rows_avx512(j, n, ODD_ROWS, BITS, j->y + n); \
  for (; n < end; n++) odd_rows_avx512(j, n, 1, BITS, j->y + n);
  if (j->bits == 3) {
    ODD_CHUNK(3)
  } else if (j->bits == 5) {
    ODD_CHUNK(5)
  } else {
    ODD_CHUNK(6)
  }
#undef ODD_CHUNK
}

CPU_TARGET_AVX2 static inline __attribute__((always_inline)) void
odd_rows_avx2(const qgemv_job* j, int64_t n, int R, int bits, float* out) {
  const int64_t K = j->K, G = K / j->group;
  const int per_group = j->group / 8;
  uint8_t shuffle[32];
  uint32_t shift[8];
  odd_lane_tables(bits, 8, shuffle, shift);
  const __m256i shuf = _mm256_loadu_si256((const __m256i*)shuffle);
  const __m256i sh = _mm256_loadu_si256((const __m256i*)shift);
  const __m256i mask = _mm256_set1_epi32((1 << bits) - 1);
  const uint8_t* row[ODD_ROWS];
  __m256 acc[ODD_ROWS], d[ODD_ROWS];
  for (int r = 0; r < R; r++) {
    row[r] = j->w + (n + r) * j->row_bytes;
    acc[r] = _mm256_setzero_ps();
  }
  for (int64_t g = 0; g < G; g++) {
    for (int r = 0; r < R; r++) d[r] = _mm256_setzero_ps();
    for (int v = 0; v < per_group; v++) {
      int64_t k = g * j->group + 8 * v, byte = k / 8 * bits;
      bool tail = (K - k) * bits < 64; /* an 8-byte load would pass the row's end */
      __m256 xv = _mm256_loadu_ps(j->x + k);
      for (int r = 0; r < R; r++) {
        __m128i b = tail ? load_tail(row[r] + byte, bits)
                         : _mm_loadl_epi64((const __m128i*)(row[r] + byte));
        __m256i q = _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(b), shuf);
        q = _mm256_and_si256(_mm256_srlv_epi32(q, sh), mask);
        d[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(q), xv, d[r]);
      }
    }
    for (int r = 0; r < R; r++)
      acc[r] = _mm256_fmadd_ps(d[r], _mm256_set1_ps(quant_load(j->scales, j->sdtype, (n + r) * G + g)),
                               acc[r]);
  }
  for (int r = 0; r < R; r++) out[r] = bias_dot_avx2(j, n + r, G, j->xsum, acc[r]);
}

CPU_TARGET_AVX2 void qgemv_odd_chunk_avx2(const qgemv_job* j, int64_t n, int64_t end) {
#define ODD_CHUNK(BITS)                                                                \
  for (; n + ODD_ROWS <= end; n += ODD_ROWS) odd_rows_avx2(j, n, ODD_ROWS, BITS, j->y + n); \
  for (; n < end; n++) odd_rows_avx2(j, n, 1, BITS, j->y + n);
  if (j->bits == 3) {
    ODD_CHUNK(3)
  } else if (j->bits == 5) {
    ODD_CHUNK(5)
  } else {
    ODD_CHUNK(6)
  }
#undef ODD_CHUNK
}

#endif
