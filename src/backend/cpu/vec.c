/* See vec.h. The bodies are plain C with 16 partial sums; each is compiled for AVX-512, AVX2 and
 * the baseline, and the widest the processor runs is picked per call. */
#include "backend/cpu/vec.h"

#include "backend/cpu/isa.h"
#include "core/half.h"

#if CPU_HAVE_X86_KERNELS
#include <immintrin.h>
#endif

#define LANES 16

static inline __attribute__((always_inline)) float dot_body(const float* a, const float* b,
                                                            int64_t n) {
  float acc[LANES] = {0};
  int64_t i = 0;
  for (; i + LANES <= n; i += LANES)
    for (int u = 0; u < LANES; u++) acc[u] += a[i + u] * b[i + u];
  float s = 0;
  for (; i < n; i++) s += a[i] * b[i];
  for (int u = 0; u < LANES; u++) s += acc[u];
  return s;
}

/* out[r] = q[r * ldq ..] . k for 4 rows: k loaded once for the four */
static inline __attribute__((always_inline)) void dots4_body(const float* q, int64_t ldq,
                                                             const float* k, int64_t n,
                                                             float* out) {
  float acc[4][LANES] = {{0}};
  int64_t i = 0;
  for (; i + LANES <= n; i += LANES)
    for (int r = 0; r < 4; r++)
      for (int u = 0; u < LANES; u++) acc[r][u] += q[r * ldq + i + u] * k[i + u];
  for (int r = 0; r < 4; r++) {
    float s = 0;
    for (int64_t t = i; t < n; t++) s += q[r * ldq + t] * k[t];
    for (int u = 0; u < LANES; u++) s += acc[r][u];
    out[r] = s;
  }
}

static inline __attribute__((always_inline)) void axpy_body(float* y, float a, const float* x,
                                                            int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] += a * x[i];
}

static inline __attribute__((always_inline)) float sum_sq_body(const float* a, float mean,
                                                               int64_t n) {
  float acc[LANES] = {0};
  int64_t i = 0;
  for (; i + LANES <= n; i += LANES)
    for (int u = 0; u < LANES; u++) acc[u] += (a[i + u] - mean) * (a[i + u] - mean);
  float s = 0;
  for (; i < n; i++) s += (a[i] - mean) * (a[i] - mean);
  for (int u = 0; u < LANES; u++) s += acc[u];
  return s;
}

static inline __attribute__((always_inline)) void bf16_to_f32_body(const uint16_t* s, float* d,
                                                                   int64_t n) {
  for (int64_t i = 0; i < n; i++) d[i] = half_bf16_to_f32(s[i]);
}

/* half_f32_to_bf16 without its branch, so that the loop vectorises */
static inline __attribute__((always_inline)) void f32_to_bf16_body(const float* s, uint16_t* d,
                                                                   int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    uint32_t u = half_f32_bits(s[i]);
    uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16, quiet_nan = (u >> 16) | 0x40u;
    d[i] = (uint16_t)((u & 0x7fffffffu) > 0x7f800000u ? quiet_nan : rounded);
  }
}

static inline __attribute__((always_inline)) void round_bf16_body(float* v, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    uint32_t u = half_f32_bits(v[i]);
    uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u, quiet_nan = u | 0x400000u;
    v[i] = half_bits_f32((u & 0x7fffffffu) > 0x7f800000u ? quiet_nan & 0xffff0000u : rounded);
  }
}

static void round_bf16_portable(float* v, int64_t n) { round_bf16_body(v, n); }
static void bf16_to_f32_portable(const uint16_t* s, float* d, int64_t n) {
  bf16_to_f32_body(s, d, n);
}
static void f32_to_bf16_portable(const float* s, uint16_t* d, int64_t n) {
  f32_to_bf16_body(s, d, n);
}

static void dots4_portable(const float* q, int64_t ldq, const float* k, int64_t n, float* out) {
  dots4_body(q, ldq, k, n, out);
}
static void axpy_portable(float* y, float a, const float* x, int64_t n) { axpy_body(y, a, x, n); }
static float dot_portable(const float* a, const float* b, int64_t n) { return dot_body(a, b, n); }
static float sum_sq_portable(const float* a, float mean, int64_t n) {
  return sum_sq_body(a, mean, n);
}

#if CPU_HAVE_X86_KERNELS
CPU_TARGET_AVX2 static float dot_avx2(const float* a, const float* b, int64_t n) {
  return dot_body(a, b, n);
}
CPU_TARGET_AVX2 static float sum_sq_avx2(const float* a, float mean, int64_t n) {
  return sum_sq_body(a, mean, n);
}
CPU_TARGET_AVX2 static void bf16_to_f32_avx2(const uint16_t* s, float* d, int64_t n) {
  bf16_to_f32_body(s, d, n);
}
CPU_TARGET_AVX2 static void f32_to_bf16_avx2(const float* s, uint16_t* d, int64_t n) {
  f32_to_bf16_body(s, d, n);
}
CPU_TARGET_AVX512 static void bf16_to_f32_avx512(const uint16_t* s, float* d, int64_t n) {
  bf16_to_f32_body(s, d, n);
}
CPU_TARGET_AVX512 static void f32_to_bf16_avx512(const float* s, uint16_t* d, int64_t n) {
  f32_to_bf16_body(s, d, n);
}
CPU_TARGET_AVX2 static void round_bf16_avx2(float* v, int64_t n) { round_bf16_body(v, n); }
CPU_TARGET_AVX512 static void round_bf16_avx512(float* v, int64_t n) { round_bf16_body(v, n); }
/* dots4 with intrinsics: the compiler did not vectorise dots4_body's 4 x 16 partial sums
 * (it gathered k element by element and kept the sums in memory). */
CPU_TARGET_AVX2 static void dots4_avx2(const float* q, int64_t ldq, const float* k, int64_t n,
                                       float* out) {
  __m256 a[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 kv = _mm256_loadu_ps(k + i);
    for (int r = 0; r < 4; r++) a[r] = _mm256_fmadd_ps(_mm256_loadu_ps(q + r * ldq + i), kv, a[r]);
  }
  for (int r = 0; r < 4; r++) {
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(a[r]), _mm256_extractf128_ps(a[r], 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    float s = _mm_cvtss_f32(h);
    for (int64_t t = i; t < n; t++) s += q[r * ldq + t] * k[t];
    out[r] = s;
  }
}

CPU_TARGET_AVX2 static void axpy_avx2(float* y, float a, const float* x, int64_t n) {
  axpy_body(y, a, x, n);
}
CPU_TARGET_AVX512 static void dots4_avx512(const float* q, int64_t ldq, const float* k, int64_t n,
                                           float* out) {
  __m512 a[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
  for (int64_t i = 0; i < n; i += 16) {
    __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
    __m512 kv = _mm512_maskz_loadu_ps(m, k + i);
    for (int r = 0; r < 4; r++)
      a[r] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, q + r * ldq + i), kv, a[r]);
  }
  for (int r = 0; r < 4; r++) out[r] = _mm512_reduce_add_ps(a[r]);
}

CPU_TARGET_AVX512 static void axpy_avx512(float* y, float a, const float* x, int64_t n) {
  axpy_body(y, a, x, n);
}
CPU_TARGET_AVX512 static float dot_avx512(const float* a, const float* b, int64_t n) {
  return dot_body(a, b, n);
}
CPU_TARGET_AVX512 static float sum_sq_avx512(const float* a, float mean, int64_t n) {
  return sum_sq_body(a, mean, n);
}
#endif

float cpu_vec_dot(const float* a, const float* b, int64_t n) {
#if CPU_HAVE_X86_KERNELS
  cpu_isa isa = cpu_isa_best();
  if (isa == CPU_ISA_AVX512) return dot_avx512(a, b, n);
  if (isa == CPU_ISA_AVX2) return dot_avx2(a, b, n);
#endif
  return dot_portable(a, b, n);
}

float cpu_vec_sum_sq(const float* a, float mean, int64_t n) {
#if CPU_HAVE_X86_KERNELS
  cpu_isa isa = cpu_isa_best();
  if (isa == CPU_ISA_AVX512) return sum_sq_avx512(a, mean, n);
  if (isa == CPU_ISA_AVX2) return sum_sq_avx2(a, mean, n);
#endif
  return sum_sq_portable(a, mean, n);
}

void cpu_vec_bf16_to_f32(const uint16_t* src, float* dst, int64_t n) {
#if CPU_HAVE_X86_KERNELS
  cpu_isa isa = cpu_isa_best();
  if (isa == CPU_ISA_AVX512) return bf16_to_f32_avx512(src, dst, n);
  if (isa == CPU_ISA_AVX2) return bf16_to_f32_avx2(src, dst, n);
#endif
  bf16_to_f32_portable(src, dst, n);
}

void cpu_vec_f32_to_bf16(const float* src, uint16_t* dst, int64_t n) {
#if CPU_HAVE_X86_KERNELS
  cpu_isa isa = cpu_isa_best();
  if (isa == CPU_ISA_AVX512) return f32_to_bf16_avx512(src, dst, n);
  if (isa == CPU_ISA_AVX2) return f32_to_bf16_avx2(src, dst, n);
#endif
  f32_to_bf16_portable(src, dst, n);
}

void cpu_vec_round_bf16(float* v, int64_t n) {
#if CPU_HAVE_X86_KERNELS
  cpu_isa isa = cpu_isa_best();
  if (isa == CPU_ISA_AVX512) return round_bf16_avx512(v, n);
  if (isa == CPU_ISA_AVX2) return round_bf16_avx2(v, n);
#endif
  round_bf16_portable(v, n);
}

void cpu_vec_dots(const float* q, int64_t rows, int64_t ldq, const float* k, int64_t n,
                  float* out) {
  int64_t r = 0;
#if CPU_HAVE_X86_KERNELS
  cpu_isa isa = cpu_isa_best();
  for (; r + 4 <= rows; r += 4) {
    if (isa == CPU_ISA_AVX512) dots4_avx512(q + r * ldq, ldq, k, n, out + r);
    else if (isa == CPU_ISA_AVX2) dots4_avx2(q + r * ldq, ldq, k, n, out + r);
    else dots4_portable(q + r * ldq, ldq, k, n, out + r);
  }
#else
  for (; r + 4 <= rows; r += 4) dots4_portable(q + r * ldq, ldq, k, n, out + r);
#endif
  for (; r < rows; r++) out[r] = cpu_vec_dot(q + r * ldq, k, n);
}

void cpu_vec_axpy(float* y, float a, const float* x, int64_t n) {
#if CPU_HAVE_X86_KERNELS
  cpu_isa isa = cpu_isa_best();
  if (isa == CPU_ISA_AVX512) return axpy_avx512(y, a, x, n);
  if (isa == CPU_ISA_AVX2) return axpy_avx2(y, a, x, n);
#endif
  axpy_portable(y, a, x, n);
}
