/* Choosing the next token from a row of logits (on the host, float32). */
#ifndef MLXC_LM_SAMPLE_H
#define MLXC_LM_SAMPLE_H

#include <stddef.h>
#include <stdint.h>

#include "mlxc/lm.h"

typedef struct {
  uint64_t state;
} lm_rng;

void lm_rng_seed(lm_rng* rng, uint64_t seed);
/* The next uniform draw in [0, 1): what lm_sample draws once per token (twice with XTC). */
double lm_rng_uniform(lm_rng* rng);

/* Applies the logit bias and the repetition / presence / frequency penalties for `history`, then
 * samples with temperature, top-k, min-p, top-p and XTC (greedy when temperature is 0).
 * `logits` (vocab entries) is modified; `scratch` needs 2 * vocab floats' worth of space.
 * Returns the token id and its log-probability after the penalties in *logprob. */
int32_t lm_sample(float* logits, int vocab, const mlxc_lm_generate_params* p, const int32_t* history,
                  size_t n_history, lm_rng* rng, void* scratch, float* logprob);

#endif
