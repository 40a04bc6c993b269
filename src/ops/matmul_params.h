/* Parameters of the matmul primitive, shared by constructors (ops/matmul.c) and the CPU kernel. */
#ifndef MLXC_OPS_MATMUL_PARAMS_H
#define MLXC_OPS_MATMUL_PARAMS_H

/* out = alpha * (a @ b) + beta * c (addmm). A matmul node has no params: alpha 1, no c. */
typedef struct {
  float alpha;
  float beta;
} matmul_params;

#endif
