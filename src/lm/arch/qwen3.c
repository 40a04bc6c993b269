/* Qwen3: Llama with RMS norms of q and k per head before RoPE. */
#include "lm/model.h"

const lm_arch lm_arch_qwen3 = {.model_type = "qwen3", .qk_norm = true};
