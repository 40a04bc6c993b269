/* The sampler as array ops, so that it runs where the logits live: on a GPU the choice comes back
 * as three numbers instead of the vocabulary row, and it can be part of a recorded decode step.
 * It makes the choice lm_sample (sample.h) makes for the same uniform draw, up to float rounding
 * (probabilities summed in another order can move a draw that falls within rounding of a
 * boundary to the neighbouring token). */
#ifndef MLXC_LM_SAMPLE_DEVICE_H
#define MLXC_LM_SAMPLE_DEVICE_H

#include <stdbool.h>

#include "mlx/c/array.h"
#include "mlx/c/stream.h"
#include "mlxc/lm.h"

/* Whether the choice under p can be computed this way: temperature > 0, no repetition, presence
 * or frequency penalty (they depend on the history) and no XTC (a second draw). Logit bias and
 * top-k, top-p and min-p are supported. */
bool lm_sample_device_supported(const mlxc_lm_generate_params* p);

/* The logit bias of p as a (1, vocab) float32 row (zeros elsewhere), or an empty array when p has
 * none. Built once per generation; *out is owned by the caller. */
int lm_sample_device_bias(const mlxc_lm_generate_params* p, int vocab, mlx_array* out);

/* Builds (does not evaluate) the choice for the last row of (n, vocab) float32 logits, with the
 * uniform draw read from u ((1) float32 in [0, 1), as lm_rng_uniform gives it) and bias from
 * lm_sample_device_bias: *token (1) uint32, *chosen (1) float32 the chosen token's biased logit
 * and *lse (1) float32 the log-sum-exp of the biased row, so that the token's log-probability is
 * chosen - lse as lm_sample reports it. */
int lm_sample_device(mlx_array logits, const mlxc_lm_generate_params* p, mlx_array u, mlx_array bias, mlx_stream s,
                     mlx_array* token, mlx_array* chosen, mlx_array* lse);

#endif
