/* Internal helpers of the gathered products (gather_mm.c), shared with gather_qmm (quantized.c). */
#ifndef MLXC_OPS_GATHER_MM_H
#define MLXC_OPS_GATHER_MM_H

#include "mlx/c/array.h"
#include "mlx/c/stream.h"
#include "ops/ops_common.h"

/* An index array must be empty or have an integer dtype ("<op>: <what> must have ..."). */
int ops_check_indices(mlx_array indices, const char* op, const char* what);
/* a (..., R, C) gathered by flat batch indices into *out: (indices.shape..., R, C); with empty
 * indices, a itself. */
int ops_gather_batch(mlx_array* out, mlx_array a, mlx_array indices, mlx_stream s);
/* A 1-D operand as a matrix: a row (axis 0) or a column (axis -1), *expanded set; else a itself. */
int ops_as_matrix(mlx_array* out, mlx_array a, int axis, bool* expanded, mlx_stream s);

#endif
