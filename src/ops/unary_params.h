/* Parameters of the unary elementwise primitives (only nan_to_num has any). */
#ifndef MLXC_OPS_UNARY_PARAMS_H
#define MLXC_OPS_UNARY_PARAMS_H

typedef struct {
  double nan, posinf, neginf; /* replacements, already resolved to the dtype's limits */
} unary_params;

#endif
