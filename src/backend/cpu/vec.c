/* See vec.h. The bodies are plain C with 16 partial sums; each is compiled for AVX-512, AVX2 and
 * the baseline, and the widest the processor runs is picked per call. */
#include "backend/cpu/vec.h"

#include <math.h>

#include "backend/cpu/exp_f32.h"
#include "backend/cpu/isa.h"
#include "core/half.h"

#if CPU_HAVE_X86_KERNELS
#include <immintrin.h>
#endif

#define LANES 16

/* exp_f32.h's functions vectorise only in code compiled with its options (float compares do
 * not trap). GCC 12 still left them scalar in functions with a target attribute: the AVX-512
 * versions are written with intrinsics, step for step the same arithmetic. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

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

static inline __attribute__((always_inline)) float max_body(const float* x, int64_t n) {
  float lane[LANES];
  for (int u = 0; u < LANES; u++) lane[u] = -INFINITY;
  int64_t i = 0;
  for (; i + LANES <= n; i += LANES)
    for (int u = 0; u < LANES; u++) lane[u] = x[i + u] > lane[u] ? x[i + u] : lane[u];
  float m = -INFINITY;
  for (; i < n; i++) m = x[i] > m ? x[i] : m;
  for (int u = 0; u < LANES; u++) m = lane[u] > m ? lane[u] : m;
  return m;
}

static inline __attribute__((always_inline)) double exp_sum_body(float* out, const float* x,
                                                                 int64_t n, float center) {
  double total = 0;
  for (int64_t b = 0; b < n; b += 256) {
    int64_t m = n - b < 256 ? n - b : 256, i = 0;
    float lane[LANES] = {0}, tail = 0;
    for (; i + LANES <= m; i += LANES)
      for (int u = 0; u < LANES; u++) {
        float e = exp_nonpositive_f32(x[b + i + u] - center);
        out[b + i + u] = e;
        lane[u] += e;
      }
    for (; i < m; i++) {
      out[b + i] = exp_nonpositive_f32(x[b + i] - center);
      tail += out[b + i];
    }
    double block = tail;
    for (int u = 0; u < LANES; u++) block += lane[u];
    total += block;
  }
  return total;
}

static inline __attribute__((always_inline)) void sigmoid_body(float* out, const float* x,
                                                               int64_t n) {
  for (int64_t i = 0; i < n; i++) out[i] = sigmoid_one_f32(x[i]);
}

static float max_portable(const float* x, int64_t n) { return max_body(x, n); }
static double exp_sum_portable(float* out, const float* x, int64_t n, float center) {
  return exp_sum_body(out, x, n, center);
}
static void sigmoid_portable(float* out, const float* x, int64_t n) { sigmoid_body(out, x, n); }
#if CPU_HAVE_X86_KERNELS
CPU_TARGET_AVX2 static float max_avx2(const float* x, int64_t n) { return max_body(x, n); }
CPU_TARGET_AVX512 static float max_avx512(const float* x, int64_t n) { return max_body(x, n); }
/* exp_nonpositive_f32 of 16 values */
CPU_TARGET_AVX512 static inline __m512 exp_nonpositive_avx512(__m512 y) {
  const __m512i abs_mask = _mm512_set1_epi32(0x7fffffff), limit = _mm512_set1_epi32(0x42d00000);
  __m512i iy = _mm512_castps_si512(y), ia = _mm512_and_si512(iy, abs_mask);
  __m512 c = _mm512_castsi512_ps(_mm512_or_si512(_mm512_min_epu32(ia, limit), _mm512_set1_epi32((int)0x80000000u)));
  __m512i ni = _mm512_cvttps_epi32(
      _mm512_sub_ps(_mm512_mul_ps(c, _mm512_set1_ps(1.4426950408889634f)), _mm512_set1_ps(0.5f)));
  __m512 n = _mm512_cvtepi32_ps(ni);
  __m512 r = _mm512_sub_ps(c, _mm512_mul_ps(n, _mm512_set1_ps(0.693145751953125f)));
  r = _mm512_sub_ps(r, _mm512_mul_ps(n, _mm512_set1_ps(1.428606765330187e-06f)));
  const float coef[6] = {0.008374777795045394f, 0.041668358547355434f, 0.16666420757882047f,
                         0.49999991489160023f,  1.0000000361421946f,   1.0000000005923793f};
  __m512 e = _mm512_set1_ps(0.001382941154678576f);
  for (int i = 0; i < 6; i++) e = _mm512_add_ps(_mm512_mul_ps(e, r), _mm512_set1_ps(coef[i]));
  /* (int32_t)n / 2 rounds toward zero: n < 0, so add the sign bit before the shift */
  __m512i half = _mm512_srai_epi32(_mm512_add_epi32(ni, _mm512_srli_epi32(ni, 31)), 1);
  __m512i bias = _mm512_set1_epi32(127);
  e = _mm512_mul_ps(e, _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(half, bias), 23)));
  e = _mm512_mul_ps(e, _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(_mm512_sub_epi32(ni, half), bias), 23)));
  __m512i out = _mm512_maskz_mov_epi32(_mm512_cmplt_epu32_mask(ia, limit), _mm512_castps_si512(e));
  out = _mm512_mask_mov_epi32(out, _mm512_cmpgt_epu32_mask(ia, _mm512_set1_epi32(0x7f800000)), iy);
  return _mm512_castsi512_ps(out);
}

CPU_TARGET_AVX512 static double exp_sum_avx512(float* out, const float* x, int64_t n, float center) {
  double total = 0;
  __m512 cv = _mm512_set1_ps(center);
  for (int64_t b = 0; b < n; b += 256) {
    int64_t m = n - b < 256 ? n - b : 256;
    __m512 lane = _mm512_setzero_ps();
    for (int64_t i = 0; i < m; i += 16) {
      __mmask16 k = m - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (m - i)) - 1);
      __m512 e = exp_nonpositive_avx512(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + b + i), cv));
      _mm512_mask_storeu_ps(out + b + i, k, e);
      lane = _mm512_add_ps(lane, _mm512_maskz_mov_ps(k, e));
    }
    float lanes[16];
    _mm512_storeu_ps(lanes, lane);
    double block = 0;
    for (int u = 0; u < 16; u++) block += lanes[u];
    total += block;
  }
  return total;
}

/* sigmoid_one_f32 of 16 values at a time */
CPU_TARGET_AVX512 static void sigmoid_avx512(float* out, const float* x, int64_t n) {
  const __m512i abs_mask = _mm512_set1_epi32(0x7fffffff);
  const __m512 one = _mm512_set1_ps(1.0f);
  for (int64_t i = 0; i < n; i += 16) {
    __mmask16 k = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
    __m512i ix = _mm512_castps_si512(_mm512_maskz_loadu_ps(k, x + i)), ia = _mm512_and_si512(ix, abs_mask);
    __m512 e = exp_nonpositive_avx512(_mm512_castsi512_ps(_mm512_or_si512(ia, _mm512_set1_epi32((int)0x80000000u))));
    __m512 up = _mm512_div_ps(one, _mm512_add_ps(one, e)), down = _mm512_div_ps(e, _mm512_add_ps(one, e));
    __m512 s = _mm512_mask_mov_ps(up, _mm512_cmplt_epi32_mask(ix, _mm512_setzero_si512()), down);
    s = _mm512_mask_mov_ps(s, _mm512_cmpgt_epu32_mask(ia, _mm512_set1_epi32(0x7f800000)), _mm512_castsi512_ps(ix));
    _mm512_mask_storeu_ps(out + i, k, s);
  }
}
#endif

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

double cpu_vec_exp_sum(float* out, const float* x, int64_t n, float center) {
#if CPU_HAVE_X86_KERNELS
  cpu_isa isa = cpu_isa_best();
  if (isa == CPU_ISA_AVX512) return exp_sum_avx512(out, x, n, center);
#endif
  return exp_sum_portable(out, x, n, center);
}

void cpu_vec_sigmoid(float* out, const float* x, int64_t n) {
#if CPU_HAVE_X86_KERNELS
  cpu_isa isa = cpu_isa_best();
  if (isa == CPU_ISA_AVX512) return sigmoid_avx512(out, x, n);
#endif
  sigmoid_portable(out, x, n);
}

float cpu_vec_max(const float* x, int64_t n) {
#if CPU_HAVE_X86_KERNELS
  cpu_isa isa = cpu_isa_best();
  if (isa == CPU_ISA_AVX512) return max_avx512(x, n);
  if (isa == CPU_ISA_AVX2) return max_avx2(x, n);
#endif
  return max_portable(x, n);
}
