/* Mistral: Llama with a sliding attention window on every layer (config sliding_window). */
#include "lm/model.h"

const lm_arch lm_arch_mistral = {.model_type = "mistral"};
