/* float16/bfloat16 matrix-vector kernels (see gemv.h): portable loops, and AVX2 / AVX-512
 * variants that widen 8 or 16 weights per instruction and accumulate with FMA. */
#include "backend/cpu/gemv.h"

#include "backend/cpu/threadpool.h"
#include "core/half.h"

#if CPU_HAVE_X86_KERNELS
#include <immintrin.h>
#endif

/* Work below this many weights per chunk is not worth waking a thread for. */
#define GEMV_MIN_CHUNK_WEIGHTS (1 << 15)
/* Columns per task of the column kernel: four AVX-512 accumulators. */
#define GEMV_COL_BLOCK 64

static inline float half_load(const uint16_t* p, bool bf16) {
  return bf16 ? half_bf16_to_f32(*p) : half_f16_to_f32(*p);
}

/* ---- portable ---- */

static float dot_portable(const uint16_t* w, const float* x, int64_t K, bool bf16) {
  float acc = 0;
  for (int64_t k = 0; k < K; k++) acc += half_load(w + k, bf16) * x[k];
  return acc;
}

/* y[0..n) += sum_k x[k] * w[k * ldw + 0..n) */
static void axpy_block_portable(float* y, const float* x, const uint16_t* w, int64_t ldw, int64_t n,
                                int64_t K, bool bf16) {
  float acc[GEMV_COL_BLOCK] = {0};
  for (int64_t k = 0; k < K; k++)
    for (int64_t j = 0; j < n; j++) acc[j] += x[k] * half_load(w + k * ldw + j, bf16);
  for (int64_t j = 0; j < n; j++) y[j] = acc[j];
}

#if CPU_HAVE_X86_KERNELS

/* ---- AVX2 ---- */

CPU_TARGET_AVX2 static inline __m256 load8_avx2(const uint16_t* p, bool bf16) {
  __m128i h = _mm_loadu_si128((const __m128i*)p);
  if (bf16) return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  return _mm256_cvtph_ps(h);
}

CPU_TARGET_AVX2 static float hsum_avx2(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

CPU_TARGET_AVX2 static float dot_avx2(const uint16_t* w, const float* x, int64_t K, bool bf16) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 16 <= K; k += 16) {
    a0 = _mm256_fmadd_ps(load8_avx2(w + k, bf16), _mm256_loadu_ps(x + k), a0);
    a1 = _mm256_fmadd_ps(load8_avx2(w + k + 8, bf16), _mm256_loadu_ps(x + k + 8), a1);
  }
  float acc = hsum_avx2(_mm256_add_ps(a0, a1));
  for (; k < K; k++) acc += half_load(w + k, bf16) * x[k];
  return acc;
}

CPU_TARGET_AVX2 static void axpy_block_avx2(float* y, const float* x, const uint16_t* w,
                                            int64_t ldw, int64_t n, int64_t K, bool bf16) {
  if (n < GEMV_COL_BLOCK) {
    axpy_block_portable(y, x, w, ldw, n, K, bf16);
    return;
  }
  __m256 acc[8];
  for (int j = 0; j < 8; j++) acc[j] = _mm256_setzero_ps();
  for (int64_t k = 0; k < K; k++) {
    __m256 xk = _mm256_set1_ps(x[k]);
    const uint16_t* row = w + k * ldw;
    for (int j = 0; j < 8; j++) acc[j] = _mm256_fmadd_ps(load8_avx2(row + 8 * j, bf16), xk, acc[j]);
  }
  for (int j = 0; j < 8; j++) _mm256_storeu_ps(y + 8 * j, acc[j]);
}

/* ---- AVX-512 ---- */

CPU_TARGET_AVX512 static inline __m512 load16_avx512(const uint16_t* p, bool bf16) {
  __m256i h = _mm256_loadu_si256((const __m256i*)p);
  if (bf16) return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  return _mm512_cvtph_ps(h);
}

CPU_TARGET_AVX512 static float dot_avx512(const uint16_t* w, const float* x, int64_t K, bool bf16) {
  __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 32 <= K; k += 32) {
    a0 = _mm512_fmadd_ps(load16_avx512(w + k, bf16), _mm512_loadu_ps(x + k), a0);
    a1 = _mm512_fmadd_ps(load16_avx512(w + k + 16, bf16), _mm512_loadu_ps(x + k + 16), a1);
  }
  float acc = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
  for (; k < K; k++) acc += half_load(w + k, bf16) * x[k];
  return acc;
}

CPU_TARGET_AVX512 static void axpy_block_avx512(float* y, const float* x, const uint16_t* w,
                                                int64_t ldw, int64_t n, int64_t K, bool bf16) {
  if (n < GEMV_COL_BLOCK) {
    axpy_block_portable(y, x, w, ldw, n, K, bf16);
    return;
  }
  __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  for (int64_t k = 0; k < K; k++) {
    __m512 xk = _mm512_set1_ps(x[k]);
    const uint16_t* row = w + k * ldw;
    a0 = _mm512_fmadd_ps(load16_avx512(row, bf16), xk, a0);
    a1 = _mm512_fmadd_ps(load16_avx512(row + 16, bf16), xk, a1);
    a2 = _mm512_fmadd_ps(load16_avx512(row + 32, bf16), xk, a2);
    a3 = _mm512_fmadd_ps(load16_avx512(row + 48, bf16), xk, a3);
  }
  _mm512_storeu_ps(y, a0);
  _mm512_storeu_ps(y + 16, a1);
  _mm512_storeu_ps(y + 32, a2);
  _mm512_storeu_ps(y + 48, a3);
}

#endif

/* ---- dispatch over the thread pool ---- */

typedef struct {
  cpu_isa isa;
  float* y;
  const float* x;
  const uint16_t* w;
  int64_t ldw, N, K;
  bool bf16;
} gemv_job;

static void rows_chunk(void* p, int64_t begin, int64_t end) {
  const gemv_job* j = p;
  for (int64_t n = begin; n < end; n++) {
    const uint16_t* row = j->w + n * j->ldw;
#if CPU_HAVE_X86_KERNELS
    if (j->isa == CPU_ISA_AVX512) {
      j->y[n] = dot_avx512(row, j->x, j->K, j->bf16);
      continue;
    }
    if (j->isa == CPU_ISA_AVX2) {
      j->y[n] = dot_avx2(row, j->x, j->K, j->bf16);
      continue;
    }
#endif
    j->y[n] = dot_portable(row, j->x, j->K, j->bf16);
  }
}

static void cols_chunk(void* p, int64_t begin, int64_t end) {
  const gemv_job* j = p;
  for (int64_t b = begin; b < end; b++) {
    int64_t n0 = b * GEMV_COL_BLOCK;
    int64_t n = j->N - n0 < GEMV_COL_BLOCK ? j->N - n0 : GEMV_COL_BLOCK;
#if CPU_HAVE_X86_KERNELS
    if (j->isa == CPU_ISA_AVX512) {
      axpy_block_avx512(j->y + n0, j->x, j->w + n0, j->ldw, n, j->K, j->bf16);
      continue;
    }
    if (j->isa == CPU_ISA_AVX2) {
      axpy_block_avx2(j->y + n0, j->x, j->w + n0, j->ldw, n, j->K, j->bf16);
      continue;
    }
#endif
    axpy_block_portable(j->y + n0, j->x, j->w + n0, j->ldw, n, j->K, j->bf16);
  }
}

static int64_t min_chunk(int64_t weights_per_item) {
  int64_t c = GEMV_MIN_CHUNK_WEIGHTS / (weights_per_item > 0 ? weights_per_item : 1);
  return c > 0 ? c : 1;
}

void cpu_gemv_half_rows_isa(cpu_isa isa, float* y, const float* x, const uint16_t* w, int64_t ldw,
                            int64_t N, int64_t K, bool bf16) {
  gemv_job j = {isa, y, x, w, ldw, N, K, bf16};
  cpu_parallel_for(N, min_chunk(K), rows_chunk, &j);
}

void cpu_gemv_half_cols_isa(cpu_isa isa, float* y, const float* x, const uint16_t* w, int64_t ldw,
                            int64_t N, int64_t K, bool bf16) {
  gemv_job j = {isa, y, x, w, ldw, N, K, bf16};
  int64_t blocks = (N + GEMV_COL_BLOCK - 1) / GEMV_COL_BLOCK;
  cpu_parallel_for(blocks, min_chunk(K * GEMV_COL_BLOCK), cols_chunk, &j);
}

void cpu_gemv_half_rows(float* y, const float* x, const uint16_t* w, int64_t ldw, int64_t N,
                        int64_t K, bool bf16) {
  cpu_gemv_half_rows_isa(cpu_isa_best(), y, x, w, ldw, N, K, bf16);
}

void cpu_gemv_half_cols(float* y, const float* x, const uint16_t* w, int64_t ldw, int64_t N,
                        int64_t K, bool bf16) {
  cpu_gemv_half_cols_isa(cpu_isa_best(), y, x, w, ldw, N, K, bf16);
}
