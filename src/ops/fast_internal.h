/* Helpers shared by the constructors of mlxc/fast.h's fused ops (fast.c, fast_norm_linear.c). */
#ifndef MLXC_OPS_FAST_INTERNAL_H
#define MLXC_OPS_FAST_INTERNAL_H

#include "ops/fast_params.h"

/* "silu" or "gelu_tanh" into *act; anything else, NULL included, is reported as an unknown
 * activation of op `name`. */
int ops_parse_glu_activation(const char* activation, glu_activation* act, const char* name);

#endif
