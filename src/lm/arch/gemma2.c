/* Gemma 2: (1 + w) RMS norms around attention and MLP, scaled embeddings, GELU (tanh), soft-capped attention and final logits, alternating sliding layers. */
#include "lm/model.h"

const lm_arch lm_arch_gemma2 = {.model_type = "gemma2", .gemma_norms = true};
