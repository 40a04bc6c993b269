/* Parameters of the layout primitives (transpose, slice), shared by constructors and kernels. */
#ifndef MLXC_OPS_LAYOUT_PARAMS_H
#define MLXC_OPS_LAYOUT_PARAMS_H

#include "core/array.h"

typedef struct {
  int perm[CORE_MAX_NDIM]; /* output dim i is input dim perm[i] */
} transpose_params;

typedef struct {
  int start[CORE_MAX_NDIM]; /* first index taken, per input dim */
  int step[CORE_MAX_NDIM];  /* may be negative */
} slice_params;

#endif
