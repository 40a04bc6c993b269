/* Phi-3: fused qkv_proj and gate_up_proj. */
#include "lm/model.h"

const lm_arch lm_arch_phi3 = {.model_type = "phi3", .fused_qkv = true, .fused_gate_up = true};
