/* See vec.h. The bodies are plain C with 16 partial sums; each is compiled for AVX-512, AVX2 and
 * the baseline, and the widest the processor runs is picked per call. */
#include "backend/cpu/vec.h"

#include "backend/cpu/isa.h"

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
