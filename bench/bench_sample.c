/* The host sampler (src/lm/sample.c) on a 151,936-token row: ms per token for temperature with
 * top-p, top-k, min-p and alone, on logits shaped like a trained model's (a broad Gaussian tail
 * and a few likely tokens) and on flat ones (a random-weight model's).
 *   bench_sample */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench_util.h"
#include "lm/sample.h"

enum { VOCAB = 151936, RUNS = 20 };

static double gauss(unsigned* state) {
  *state = *state * 1103515245u + 12345u;
  double u = ((*state >> 8) + 1.0) / 16777218.0;
  *state = *state * 1103515245u + 12345u;
  double v = ((*state >> 8) + 1.0) / 16777218.0;
  return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

int main(void) {
  float* logits = malloc(sizeof(float) * VOCAB);
  float* work = malloc(sizeof(float) * VOCAB);
  void* scratch = malloc(sizeof(float) * 2 * (size_t)VOCAB);
  if (!logits || !work || !scratch) return 1;
  const char* cases[4] = {"temperature 0.7, top_p 0.9", "temperature 0.7, top_k 40", "temperature 0.8, min_p 0.05",
                          "temperature 1.0 alone"};
  for (int shape = 0; shape < 2; shape++) {
    unsigned state = 1;
    for (int i = 0; i < VOCAB; i++) logits[i] = shape == 0 ? (float)(2.5 * gauss(&state)) : (float)(0.05 * gauss(&state));
    if (shape == 0)
      for (int i = 0; i < 20; i++) logits[(i * 7919) % VOCAB] += 12.0f;
    for (int c = 0; c < 4; c++) {
      mlxc_lm_generate_params p = mlxc_lm_generate_default_params();
      p.temperature = c == 2 ? 0.8f : c == 3 ? 1.0f : 0.7f;
      if (c == 0) p.top_p = 0.9f;
      if (c == 1) p.top_k = 40;
      if (c == 2) p.min_p = 0.05f;
      lm_rng rng;
      lm_rng_seed(&rng, 3);
      double t0 = bench_now();
      for (int r = 0; r < RUNS; r++) {
        for (int i = 0; i < VOCAB; i++) work[i] = logits[i];
        float logprob;
        lm_sample(work, VOCAB, &p, NULL, 0, &rng, scratch, &logprob);
      }
      printf("%-14s logits, %-28s %.2f ms a token\n", shape == 0 ? "LM-like" : "flat", cases[c],
             (bench_now() - t0) * 1e3 / RUNS);
    }
  }
  free(logits);
  free(work);
  free(scratch);
  return 0;
}
