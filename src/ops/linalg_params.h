/* Parameters of the linalg primitives, shared by the constructors (ops/linalg.c) and the CPU
 * kernels (backend/cpu/linalg.c). */
#ifndef MLXC_OPS_LINALG_PARAMS_H
#define MLXC_OPS_LINALG_PARAMS_H

#include <stdbool.h>

/* upper: which triangle a triangular op reads or writes (tri_inv, cholesky, solve_triangular,
 * eigh's UPLO). triangular: inv and solve read a triangular matrix (tri_inv,
 * solve_triangular). vectors: eigh, eig and svd also compute vectors (compute_uv). */
typedef struct {
  bool upper;
  bool triangular;
  bool vectors;
} linalg_params;

#endif
