/* Llama 2/3/3.1/3.2: the plain decoder (RoPE scalings come from the config). */
#include "lm/model.h"

const lm_arch lm_arch_llama = {.model_type = "llama"};
