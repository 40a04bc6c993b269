/* Gemma 3 (text): Gemma 2 without soft-capping, with q/k norms and a separate RoPE base for sliding layers. */
#include "lm/model.h"

const lm_arch lm_arch_gemma3_text = {.model_type = "gemma3_text", .gemma_norms = true, .qk_norm = true};
