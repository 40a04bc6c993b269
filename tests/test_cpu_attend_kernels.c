/* The inner loops of the CPU attention (backend/cpu/attend_amx.h, attend_avx512.h) on bfloat16
 * keys and values against double-precision sums computed here: float32 queries and weights must
 * come out as float32 arithmetic would (1e-5), at head counts, head sizes and key counts around
 * the tiles' edges. Kernels this processor lacks are skipped. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "backend/cpu/attend_amx.h"
#include "backend/cpu/attend_avx512.h"
#include "mlxc/half.h"
#include "test_util.h"

static unsigned rng_state = 777;
static float frand(void) {
  rng_state = rng_state * 1103515245u + 12345u;
  return ((rng_state >> 8) & 0xffff) / 32768.0f - 1.0f;
}

/* n random bfloat16 values; `exact` gets them as float. */
static uint16_t* random_bf16(int64_t n, float** exact) {
  uint16_t* h = malloc(sizeof(uint16_t) * (size_t)n);
  *exact = malloc(sizeof(float) * (size_t)n);
  for (int64_t i = 0; i < n; i++) {
    h[i] = mlxc_float32_to_bfloat16(frand());
    (*exact)[i] = mlxc_bfloat16_to_float32(h[i]);
  }
  return h;
}

typedef struct {
  int64_t rep, D, count, stride; /* stride: elements between rows (>= D) */
} shape;

/* Scores and weighted values of one shape through the AMX or the AVX-512 kernels. */
static void check_shape(shape s, bool amx) {
  int64_t rep = s.rep, D = s.D, n = s.count;
  float *q = malloc(sizeof(float) * (size_t)(rep * D)), *w = malloc(sizeof(float) * (size_t)(rep * n));
  float *kf, *vf;
  uint16_t *k = random_bf16(n * s.stride, &kf), *v = random_bf16(n * s.stride, &vf);
  float* scores = malloc(sizeof(float) * (size_t)(rep * n));
  float* acc = malloc(sizeof(float) * (size_t)(rep * D));
  for (int64_t i = 0; i < rep * D; i++) q[i] = frand() / 3.0f;
  for (int64_t i = 0; i < rep * n; i++) w[i] = (frand() + 1.0f) / 2.0f; /* softmax-like, [0, 1) */
  for (int64_t i = 0; i < rep * D; i++) acc[i] = 0.5f;                  /* the kernels add */
  if (amx) {
    attend_amx_scores(q, rep, D, k, s.stride, n, scores, n);
    attend_amx_values(w, n, rep, v, s.stride, n, D, acc);
  } else {
    attend_avx512_scores(q, rep, D, k, s.stride, MLX_BFLOAT16, n, scores, n);
    attend_avx512_values(w, n, rep, v, s.stride, MLX_BFLOAT16, n, D, acc);
  }
  int bad = 0;
  for (int64_t g = 0; g < rep; g++) {
    for (int64_t j = 0; j < n; j++) {
      double dot = 0;
      for (int64_t d = 0; d < D; d++) dot += (double)q[g * D + d] * kf[j * s.stride + d];
      bad += fabs(scores[g * n + j] - dot) > 1e-5;
    }
    for (int64_t d = 0; d < D; d++) {
      double sum = 0.5;
      for (int64_t j = 0; j < n; j++) sum += (double)w[g * n + j] * vf[j * s.stride + d];
      bad += fabs(acc[g * D + d] - sum) > 1e-5 * (1 + fabs(sum));
    }
  }
  if (bad) fprintf(stderr, "  %s rep %lld D %lld keys %lld: %d values off\n", amx ? "amx" : "avx512",
                   (long long)rep, (long long)D, (long long)n, bad);
  CHECK_EQ_INT(bad, 0);
  free(q), free(w), free(kf), free(vf), free(k), free(v), free(scores), free(acc);
}

static const shape shapes[] = {{7, 64, 1, 64},   {7, 64, 15, 64},   {7, 64, 16, 64},  {7, 64, 47, 64},
                               {7, 64, 517, 128}, {16, 128, 33, 128}, {1, 64, 100, 64}, {3, 192, 70, 200}};

TEST(test_amx_kernels_match_float32_sums) {
  for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
    shape s = shapes[i];
    if (!attend_amx_supported(s.rep, s.D, s.D, MLX_BFLOAT16, MLX_BFLOAT16)) {
      printf("  skipped rep %lld D %lld: no AMX here\n", (long long)s.rep, (long long)s.D);
      continue;
    }
    check_shape(s, true);
  }
}

TEST(test_avx512_kernels_match_float32_sums) {
  for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
    shape s = shapes[i];
    if (!attend_avx512_supported(s.D, MLX_BFLOAT16, 1)) {
      printf("  skipped D %lld: no AVX-512 here\n", (long long)s.D);
      continue;
    }
    check_shape(s, false);
  }
}

int main(void) {
  RUN(test_amx_kernels_match_float32_sums);
  RUN(test_avx512_kernels_match_float32_sums);
  return TEST_SUMMARY();
}
