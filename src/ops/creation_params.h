/* Parameters of the creation primitives (ops/creation.c, backend/cpu/creation.c). */
#ifndef MLXC_OPS_CREATION_PARAMS_H
#define MLXC_OPS_CREATION_PARAMS_H

typedef struct {
  double start, step; /* element i is start + i * step */
} arange_params;

typedef struct {
  double start, stop; /* both included */
} linspace_params;

typedef struct {
  int k; /* diagonal: 0 main, > 0 above, < 0 below */
} triangle_params;

#endif
