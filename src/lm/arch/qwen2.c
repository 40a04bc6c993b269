/* Qwen2 / Qwen2.5: Llama with biases on q, k and v (found in the weights). */
#include "lm/model.h"

const lm_arch lm_arch_qwen2 = {.model_type = "qwen2"};
