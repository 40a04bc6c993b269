/* float16/bfloat16 weights times a few rows of x (see gemv.h): portable loops, and AVX2 /
 * AVX-512 register tiles that widen a vector of weights once and multiply it into 4 or 8 rows
 * of x. Every output has one float32 accumulator, fed in order of k (the row kernels: one vector
 * lane per k modulo the vector width, a horizontal sum at the end), whatever the tile's shape,
 * so M changes how many outputs share a weight load, never an output's rounding. */
#include "backend/cpu/gemv.h"

#include <string.h>

#include "backend/cpu/threadpool.h"
#include "core/half.h"

#if CPU_HAVE_X86_KERNELS
#include <immintrin.h>
#endif

/* Work below this many weights times rows of x per chunk is not worth waking a thread for. */
#define GEMV_MIN_CHUNK_WORK (1 << 15)
/* Rows of x per tile, at most: more rows run in chunks of at most this many, each chunk over a
 * block of weights before the next block, so that the later chunks read the block from cache.
 * The SIMD row kernels take 4 (AVX-512: 8 rows of x with 2 weight rows per tile ran at 65% of
 * the speed of two passes of 4 x 4, one thread, weights in cache, whose x vectors serve 4
 * weight rows each), the AVX2 column kernel 4 (16 registers), the rest GEMV_TILE_M. */
#define GEMV_TILE_M 8
/* Weight rows per block of the row kernels: a multiple of every tile's rows (8, 4, 3, 2). */
#define GEMV_BLOCK_ROWS 24
/* The row kernels run k in spans whose piece of x fits in L1 (this many bytes), every tile of a
 * block over one span before the next: 8 rows of x with K = 4096 (128 KB) came from L2 for each
 * tile and halved the kernel's speed. A tile's accumulator vectors wait between spans in a
 * small buffer (vectors, not sums: the arithmetic does not change). */
#define GEMV_X_SPAN_BYTES (32 << 10)
/* Columns per block of the column kernel: four AVX-512 vectors. */
#define GEMV_COL_BLOCK 64

typedef struct {
  cpu_isa isa;
  float* y;          /* (M, N) */
  const float* x;    /* (M, K) */
  const uint16_t* w; /* (N, K) rows or (K, N) columns, row stride ldw */
  int64_t ldw, M, N, K;
  bool bf16;
  int tile_m; /* rows of x per chunk, at most */
} gemv_job;

/* Values of k per span for M rows of x: a multiple of 16. */
static inline int64_t x_span(int M) {
  int64_t span = GEMV_X_SPAN_BYTES / (int64_t)(sizeof(float) * (size_t)M) / 16 * 16;
  return span > 16 ? span : 16;
}

static inline float half_load(const uint16_t* p, bool bf16) {
  return bf16 ? half_bf16_to_f32(*p) : half_f16_to_f32(*p);
}

/* ---- portable ---- */

/* Rows [n, end) of W times rows [m0, m0 + M) of x (M <= GEMV_TILE_M). */
static void rows_portable(const gemv_job* j, int64_t n, int64_t end, int64_t m0, int M) {
  const float* x = j->x + m0 * j->K;
  for (; n < end; n++) {
    const uint16_t* w = j->w + n * j->ldw;
    float acc[GEMV_TILE_M] = {0};
    for (int64_t k = 0; k < j->K; k++) {
      float wk = half_load(w + k, j->bf16);
      for (int m = 0; m < M; m++) acc[m] += wk * x[m * j->K + k];
    }
    for (int m = 0; m < M; m++) j->y[(m0 + m) * j->N + n] = acc[m];
  }
}

/* Columns [c, c + cols) of W (cols <= GEMV_COL_BLOCK) times rows [m0, m0 + M) of x. */
static void cols_portable(const gemv_job* j, int64_t c, int64_t cols, int64_t m0, int M) {
  float acc[GEMV_TILE_M][GEMV_COL_BLOCK];
  memset(acc, 0, sizeof acc);
  for (int64_t k = 0; k < j->K; k++) {
    const uint16_t* w = j->w + k * j->ldw + c;
    for (int64_t i = 0; i < cols; i++) {
      float wk = half_load(w + i, j->bf16);
      for (int m = 0; m < M; m++) acc[m][i] += j->x[(m0 + m) * j->K + k] * wk;
    }
  }
  for (int m = 0; m < M; m++)
    memcpy(j->y + (m0 + m) * j->N + c, acc[m], sizeof(float) * (size_t)cols);
}

#if CPU_HAVE_X86_KERNELS

/* ---- AVX2 ---- */

CPU_TARGET_AVX2 static inline __m256 widen8_avx2(__m128i h, bool bf16) {
  if (bf16) return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  return _mm256_cvtph_ps(h);
}

/* count (1..8) weights from p, later lanes 0, never reading past p + count. */
CPU_TARGET_AVX2 static inline __attribute__((always_inline)) __m256
load8_avx2(const uint16_t* p, int count, bool bf16) {
  if (count == 8) return widen8_avx2(_mm_loadu_si128((const __m128i*)p), bf16);
  uint16_t tmp[8] = {0};
  memcpy(tmp, p, sizeof(uint16_t) * (size_t)count);
  return widen8_avx2(_mm_loadu_si128((const __m128i*)tmp), bf16);
}

CPU_TARGET_AVX2 static inline float hsum_avx2(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

/* One step of k (count values) of an R x M row tile. */
CPU_TARGET_AVX2 static inline __attribute__((always_inline)) void
rows_step_avx2(const gemv_job* j, const uint16_t* w, const float* x, int64_t k, int count, int R,
               int M, bool bf16, __m256* acc) {
  __m256 wv[4];
  CPU_TILE_UNROLL
  for (int r = 0; r < R; r++) wv[r] = load8_avx2(w + r * j->ldw + k, count, bf16);
  __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(count), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  CPU_TILE_UNROLL
  for (int m = 0; m < M; m++) {
    const float* xk = x + m * j->K + k;
    __m256 xv = count == 8 ? _mm256_loadu_ps(xk) : _mm256_maskload_ps(xk, mask);
    CPU_TILE_UNROLL
    for (int r = 0; r < R; r++) acc[r * M + m] = _mm256_fmadd_ps(wv[r], xv, acc[r * M + m]);
  }
}

/* Weight rows [n, n + R) times rows [m0, m0 + M) of x over k in [k0, k1) (R, M and bf16
 * constants after inlining); the accumulators come from carry[r * M + m] unless k0 = 0 and
 * go back there unless k1 = K, where their sums are the outputs. */
CPU_TARGET_AVX2 static inline __attribute__((always_inline)) void
rows_tile_avx2(const gemv_job* j, int64_t n, int R, int64_t m0, int M, bool bf16, int64_t k0,
               int64_t k1, __m256* carry) {
  const uint16_t* w = j->w + n * j->ldw;
  const float* x = j->x + m0 * j->K;
  __m256 acc[12];
  CPU_TILE_UNROLL
  for (int i = 0; i < R * M; i++) acc[i] = k0 ? carry[i] : _mm256_setzero_ps();
  int64_t k = k0;
  for (; k + 8 <= k1; k += 8) rows_step_avx2(j, w, x, k, 8, R, M, bf16, acc);
  if (k < k1) rows_step_avx2(j, w, x, k, (int)(k1 - k), R, M, bf16, acc);
  CPU_TILE_UNROLL
  for (int r = 0; r < R; r++)
    CPU_TILE_UNROLL
    for (int m = 0; m < M; m++) {
      if (k1 < j->K) carry[r * M + m] = acc[r * M + m];
      else j->y[(m0 + m) * j->N + n + r] = hsum_avx2(acc[r * M + m]);
    }
}

/* Rows [n, end) (at most GEMV_BLOCK_ROWS) times rows [m0, m0 + M) of x, in spans of k. */
CPU_TARGET_AVX2 static inline __attribute__((always_inline)) void
rows_run_avx2(const gemv_job* j, int64_t n, int64_t end, int64_t m0, int M, int R, bool bf16,
              __m256* carry) {
  int64_t span = x_span(M), k0 = 0;
  do {
    int64_t k1 = j->K - k0 < span ? j->K : k0 + span, t = n;
    for (; t + R <= end; t += R) rows_tile_avx2(j, t, R, m0, M, bf16, k0, k1, carry + (t - n) * M);
    for (; t < end; t++) rows_tile_avx2(j, t, 1, m0, M, bf16, k0, k1, carry + (t - n) * M);
    k0 = k1;
  } while (k0 < j->K);
}

/* Rows [n, end) (at most GEMV_BLOCK_ROWS) times rows [m0, m0 + M) of x, M <= 4; weight rows
 * per tile by M (accumulators, weight vectors and an x vector within the 16 registers). */
CPU_TARGET_AVX2 static void rows_range_avx2(const gemv_job* j, int64_t n, int64_t end, int64_t m0,
                                            int M) {
  __m256 carry[GEMV_BLOCK_ROWS * 4];
#define ROWS_CASE(MM, RR)                                               \
  case MM:                                                              \
    if (j->bf16) rows_run_avx2(j, n, end, m0, MM, RR, true, carry);     \
    else rows_run_avx2(j, n, end, m0, MM, RR, false, carry);            \
    return;
  switch (M) {
    ROWS_CASE(1, 4)
    ROWS_CASE(2, 3)
    ROWS_CASE(3, 3)
    ROWS_CASE(4, 2)
  }
#undef ROWS_CASE
}

/* Columns [c, c + 8V) (all present) times rows [m0, m0 + M) of x. */
CPU_TARGET_AVX2 static inline __attribute__((always_inline)) void
cols_tile_avx2(const gemv_job* j, int64_t c, int V, int64_t m0, int M, bool bf16) {
  __m256 acc[8], wv[4];
  CPU_TILE_UNROLL
  for (int m = 0; m < M; m++)
    CPU_TILE_UNROLL
    for (int v = 0; v < V; v++) acc[m * V + v] = _mm256_setzero_ps();
  for (int64_t k = 0; k < j->K; k++) {
    const uint16_t* row = j->w + k * j->ldw + c;
    CPU_TILE_UNROLL
    for (int v = 0; v < V; v++) wv[v] = load8_avx2(row + 8 * v, 8, bf16);
    CPU_TILE_UNROLL
    for (int m = 0; m < M; m++) {
      __m256 xk = _mm256_set1_ps(j->x[(m0 + m) * j->K + k]);
      CPU_TILE_UNROLL
      for (int v = 0; v < V; v++) acc[m * V + v] = _mm256_fmadd_ps(wv[v], xk, acc[m * V + v]);
    }
  }
  CPU_TILE_UNROLL
  for (int m = 0; m < M; m++)
    CPU_TILE_UNROLL
    for (int v = 0; v < V; v++) _mm256_storeu_ps(j->y + (m0 + m) * j->N + c + 8 * v, acc[m * V + v]);
}

CPU_TARGET_AVX2 static inline __attribute__((always_inline)) void
cols_run_avx2(const gemv_job* j, int64_t c, int64_t cols, int64_t m0, int M, int V, bool bf16) {
  int64_t end = c + cols;
  for (; c + 8 * V <= end; c += 8 * V) cols_tile_avx2(j, c, V, m0, M, bf16);
  for (; c + 8 <= end; c += 8) cols_tile_avx2(j, c, 1, m0, M, bf16);
  if (c < end) cols_portable(j, c, end - c, m0, M);
}

/* Columns [c, c + cols) times rows [m0, m0 + M) of x, M <= 4; the last columns
 * that fill no vector take the portable loop. */
CPU_TARGET_AVX2 static void cols_range_avx2(const gemv_job* j, int64_t c, int64_t cols, int64_t m0,
                                            int M) {
#define COLS_CASE(MM, VV)                                          \
  case MM:                                                         \
    if (j->bf16) cols_run_avx2(j, c, cols, m0, MM, VV, true);      \
    else cols_run_avx2(j, c, cols, m0, MM, VV, false);             \
    return;
  switch (M) {
    COLS_CASE(1, 4)
    COLS_CASE(2, 4)
    COLS_CASE(3, 2)
    COLS_CASE(4, 2)
  }
#undef COLS_CASE
}

/* ---- AVX-512 ---- */

CPU_TARGET_AVX512 static inline __m512 widen16_avx512(__m256i h, bool bf16) {
  if (bf16) return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  return _mm512_cvtph_ps(h);
}

/* The weights of mask's lanes from p (others 0), reading nothing else. */
CPU_TARGET_AVX512 static inline __attribute__((always_inline)) __m512
load16_avx512(const uint16_t* p, __mmask16 mask, bool bf16) {
  if (mask == 0xffff) return widen16_avx512(_mm256_loadu_si256((const __m256i*)p), bf16);
  return widen16_avx512(_mm512_castsi512_si256(_mm512_maskz_loadu_epi16((__mmask32)mask, p)), bf16);
}

/* One step of k (the lanes of mask) of an R x M row tile. */
CPU_TARGET_AVX512 static inline __attribute__((always_inline)) void
rows_step_avx512(const gemv_job* j, const uint16_t* w, const float* x, int64_t k, __mmask16 mask,
                 int R, int M, bool bf16, __m512* acc) {
  __m512 wv[8];
  CPU_TILE_UNROLL
  for (int r = 0; r < R; r++) wv[r] = load16_avx512(w + r * j->ldw + k, mask, bf16);
  CPU_TILE_UNROLL
  for (int m = 0; m < M; m++) {
    const float* xk = x + m * j->K + k;
    __m512 xv = mask == 0xffff ? _mm512_loadu_ps(xk) : _mm512_maskz_loadu_ps(mask, xk);
    CPU_TILE_UNROLL
    for (int r = 0; r < R; r++) acc[r * M + m] = _mm512_fmadd_ps(wv[r], xv, acc[r * M + m]);
  }
}

/* Weight rows [n, n + R) times rows [m0, m0 + M) of x over k in [k0, k1) (R, M and bf16
 * constants after inlining); the accumulators come from carry[r * M + m] unless k0 = 0 and
 * go back there unless k1 = K, where their sums are the outputs. */
CPU_TARGET_AVX512 static inline __attribute__((always_inline)) void
rows_tile_avx512(const gemv_job* j, int64_t n, int R, int64_t m0, int M, bool bf16, int64_t k0,
                 int64_t k1, __m512* carry) {
  const uint16_t* w = j->w + n * j->ldw;
  const float* x = j->x + m0 * j->K;
  __m512 acc[16];
  CPU_TILE_UNROLL
  for (int i = 0; i < R * M; i++) acc[i] = k0 ? carry[i] : _mm512_setzero_ps();
  int64_t k = k0;
  for (; k + 16 <= k1; k += 16) rows_step_avx512(j, w, x, k, 0xffff, R, M, bf16, acc);
  if (k < k1) rows_step_avx512(j, w, x, k, (__mmask16)((1u << (k1 - k)) - 1), R, M, bf16, acc);
  CPU_TILE_UNROLL
  for (int r = 0; r < R; r++)
    CPU_TILE_UNROLL
    for (int m = 0; m < M; m++) {
      if (k1 < j->K) carry[r * M + m] = acc[r * M + m];
      else j->y[(m0 + m) * j->N + n + r] = _mm512_reduce_add_ps(acc[r * M + m]);
    }
}

/* Rows [n, end) (at most GEMV_BLOCK_ROWS) times rows [m0, m0 + M) of x, in spans of k. */
CPU_TARGET_AVX512 static inline __attribute__((always_inline)) void
rows_run_avx512(const gemv_job* j, int64_t n, int64_t end, int64_t m0, int M, int R, bool bf16,
                __m512* carry) {
  int64_t span = x_span(M), k0 = 0;
  do {
    int64_t k1 = j->K - k0 < span ? j->K : k0 + span, t = n;
    for (; t + R <= end; t += R) rows_tile_avx512(j, t, R, m0, M, bf16, k0, k1, carry + (t - n) * M);
    for (; t < end; t++) rows_tile_avx512(j, t, 1, m0, M, bf16, k0, k1, carry + (t - n) * M);
    k0 = k1;
  } while (k0 < j->K);
}

/* Rows [n, end) (at most GEMV_BLOCK_ROWS) times rows [m0, m0 + M) of x, M <= 4; weight rows
 * per tile by M: 8 or 16 accumulators. */
CPU_TARGET_AVX512 static void rows_range_avx512(const gemv_job* j, int64_t n, int64_t end,
                                                int64_t m0, int M) {
  __m512 carry[GEMV_BLOCK_ROWS * 4];
#define ROWS_CASE(MM, RR)                                                 \
  case MM:                                                                \
    if (j->bf16) rows_run_avx512(j, n, end, m0, MM, RR, true, carry);     \
    else rows_run_avx512(j, n, end, m0, MM, RR, false, carry);            \
    return;
  switch (M) {
    ROWS_CASE(1, 8)
    ROWS_CASE(2, 4)
    ROWS_CASE(3, 4)
    ROWS_CASE(4, 4)
  }
#undef ROWS_CASE
}

/* Columns [c, c + cols) (cols <= 16V; missing columns masked off) times rows [m0, m0 + M) of x. */
CPU_TARGET_AVX512 static inline __attribute__((always_inline)) void
cols_tile_avx512(const gemv_job* j, int64_t c, int64_t cols, int V, int64_t m0, int M, bool bf16) {
  __mmask16 mask[4];
  CPU_TILE_UNROLL
  for (int v = 0; v < V; v++) {
    int64_t left = cols - 16 * v;
    mask[v] = left >= 16 ? 0xffff : left <= 0 ? 0 : (__mmask16)((1u << left) - 1);
  }
  __m512 acc[16], wv[4];
  CPU_TILE_UNROLL
  for (int m = 0; m < M; m++)
    CPU_TILE_UNROLL
    for (int v = 0; v < V; v++) acc[m * V + v] = _mm512_setzero_ps();
  for (int64_t k = 0; k < j->K; k++) {
    const uint16_t* row = j->w + k * j->ldw + c;
    CPU_TILE_UNROLL
    for (int v = 0; v < V; v++)
      wv[v] = widen16_avx512(
          _mm512_castsi512_si256(_mm512_maskz_loadu_epi16((__mmask32)mask[v], row + 16 * v)), bf16);
    CPU_TILE_UNROLL
    for (int m = 0; m < M; m++) {
      __m512 xk = _mm512_set1_ps(j->x[(m0 + m) * j->K + k]);
      CPU_TILE_UNROLL
      for (int v = 0; v < V; v++) acc[m * V + v] = _mm512_fmadd_ps(wv[v], xk, acc[m * V + v]);
    }
  }
  CPU_TILE_UNROLL
  for (int m = 0; m < M; m++)
    CPU_TILE_UNROLL
    for (int v = 0; v < V; v++)
      _mm512_mask_storeu_ps(j->y + (m0 + m) * j->N + c + 16 * v, mask[v], acc[m * V + v]);
}

CPU_TARGET_AVX512 static inline __attribute__((always_inline)) void
cols_run_avx512(const gemv_job* j, int64_t c, int64_t cols, int64_t m0, int M, int V, bool bf16) {
  for (int64_t i = 0; i < cols; i += 16 * V) cols_tile_avx512(j, c + i, cols - i, V, m0, M, bf16);
}

/* Columns [c, c + cols) (cols <= GEMV_COL_BLOCK) times rows [m0, m0 + M) of x, M <= GEMV_TILE_M;
 * at most 16 accumulators (with more, GCC 12 kept them in memory, a store per multiply-add). */
CPU_TARGET_AVX512 static void cols_range_avx512(const gemv_job* j, int64_t c, int64_t cols,
                                                int64_t m0, int M) {
#define COLS_CASE(MM, VV)                                            \
  case MM:                                                           \
    if (j->bf16) cols_run_avx512(j, c, cols, m0, MM, VV, true);      \
    else cols_run_avx512(j, c, cols, m0, MM, VV, false);             \
    return;
  switch (M) {
    COLS_CASE(1, 4)
    COLS_CASE(2, 4)
    COLS_CASE(3, 4)
    COLS_CASE(4, 4)
    COLS_CASE(5, 2)
    COLS_CASE(6, 2)
    COLS_CASE(7, 2)
    COLS_CASE(8, 2)
  }
#undef COLS_CASE
}

#endif

/* ---- dispatch over the thread pool ---- */

static void rows_range(const gemv_job* j, int64_t n, int64_t end, int64_t m0, int M) {
#if CPU_HAVE_X86_KERNELS
  if (j->isa == CPU_ISA_AVX512) {
    rows_range_avx512(j, n, end, m0, M);
    return;
  }
  if (j->isa == CPU_ISA_AVX2) {
    rows_range_avx2(j, n, end, m0, M);
    return;
  }
#endif
  rows_portable(j, n, end, m0, M);
}

static void cols_range(const gemv_job* j, int64_t c, int64_t cols, int64_t m0, int M) {
#if CPU_HAVE_X86_KERNELS
  if (j->isa == CPU_ISA_AVX512) {
    cols_range_avx512(j, c, cols, m0, M);
    return;
  }
  if (j->isa == CPU_ISA_AVX2) {
    cols_range_avx2(j, c, cols, m0, M);
    return;
  }
#endif
  cols_portable(j, c, cols, m0, M);
}

/* Chunk c of the rows of x: M split into `chunks` runs whose sizes differ by one at most. */
static int64_t chunk_start(const gemv_job* j, int64_t chunks, int64_t c) { return c * j->M / chunks; }

/* Blocks [begin, end) of GEMV_BLOCK_ROWS weight rows, every chunk of x over a block in turn. */
static void rows_chunk(void* p, int64_t begin, int64_t end) {
  const gemv_job* j = p;
  int64_t chunks = (j->M + j->tile_m - 1) / j->tile_m;
  for (int64_t b = begin; b < end; b++) {
    int64_t n = b * GEMV_BLOCK_ROWS;
    int64_t n_end = j->N - n < GEMV_BLOCK_ROWS ? j->N : n + GEMV_BLOCK_ROWS;
    for (int64_t c = 0; c < chunks; c++) {
      int64_t m0 = chunk_start(j, chunks, c);
      rows_range(j, n, n_end, m0, (int)(chunk_start(j, chunks, c + 1) - m0));
    }
  }
}

/* Blocks [begin, end) of GEMV_COL_BLOCK weight columns, every chunk of x over a block in turn. */
static void cols_chunk(void* p, int64_t begin, int64_t end) {
  const gemv_job* j = p;
  int64_t chunks = (j->M + j->tile_m - 1) / j->tile_m;
  for (int64_t b = begin; b < end; b++) {
    int64_t c = b * GEMV_COL_BLOCK;
    int64_t cols = j->N - c < GEMV_COL_BLOCK ? j->N - c : GEMV_COL_BLOCK;
    for (int64_t i = 0; i < chunks; i++) {
      int64_t m0 = chunk_start(j, chunks, i);
      cols_range(j, c, cols, m0, (int)(chunk_start(j, chunks, i + 1) - m0));
    }
  }
}

/* Blocks per chunk of the pool: at least GEMV_MIN_CHUNK_WORK weights times rows of x. */
static int64_t min_chunk(int64_t weights_per_block, int64_t M) {
  int64_t work = weights_per_block * M;
  int64_t c = GEMV_MIN_CHUNK_WORK / (work > 0 ? work : 1);
  return c > 0 ? c : 1;
}

static gemv_job make_job(cpu_isa isa, float* y, const float* x, int64_t M, const uint16_t* w,
                         int64_t ldw, int64_t N, int64_t K, bool bf16, int tile_m) {
  return (gemv_job){isa, y, x, w, ldw, M, N, K, bf16, tile_m};
}

void cpu_gemv_half_rows_isa(cpu_isa isa, float* y, const float* x, int64_t M, const uint16_t* w,
                            int64_t ldw, int64_t N, int64_t K, bool bf16) {
  gemv_job j = make_job(isa, y, x, M, w, ldw, N, K, bf16, isa == CPU_ISA_PORTABLE ? GEMV_TILE_M : 4);
  int64_t blocks = (N + GEMV_BLOCK_ROWS - 1) / GEMV_BLOCK_ROWS;
  cpu_parallel_for(blocks, min_chunk(K * GEMV_BLOCK_ROWS, M), rows_chunk, &j);
}

void cpu_gemv_half_cols_isa(cpu_isa isa, float* y, const float* x, int64_t M, const uint16_t* w,
                            int64_t ldw, int64_t N, int64_t K, bool bf16) {
  gemv_job j = make_job(isa, y, x, M, w, ldw, N, K, bf16, isa == CPU_ISA_AVX2 ? 4 : GEMV_TILE_M);
  int64_t blocks = (N + GEMV_COL_BLOCK - 1) / GEMV_COL_BLOCK;
  cpu_parallel_for(blocks, min_chunk(K * GEMV_COL_BLOCK, M), cols_chunk, &j);
}

void cpu_gemv_half_rows(float* y, const float* x, int64_t M, const uint16_t* w, int64_t ldw,
                        int64_t N, int64_t K, bool bf16) {
  cpu_gemv_half_rows_isa(cpu_isa_best(), y, x, M, w, ldw, N, K, bf16);
}

void cpu_gemv_half_cols(float* y, const float* x, int64_t M, const uint16_t* w, int64_t ldw,
                        int64_t N, int64_t K, bool bf16) {
  cpu_gemv_half_cols_isa(cpu_isa_best(), y, x, M, w, ldw, N, K, bf16);
}
