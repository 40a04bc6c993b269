/* mlx-c indexing ops: take, take_along_axis, put_along_axis.
 * Indices may have any integer dtype; negative indices count from the end of the axis. An index
 * still outside the axis after that makes the evaluation fail with a message (MLX leaves it
 * undefined).
 *
 *   mlx_array rows = mlx_array_new();
 *   mlx_take_axis(&rows, table, ids, 0, s);     // table[ids] along axis 0
 */
#ifndef MLX_C_OPS_INDEXING_H
#define MLX_C_OPS_INDEXING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mlx/c/array.h"
#include "mlx/c/stream.h"
#include "mlx/c/vector.h"

#ifdef __cplusplus
extern "C" {
#endif

int mlx_take_axis(mlx_array* res, const mlx_array a, const mlx_array indices, int axis, const mlx_stream s);
int mlx_take(mlx_array* res, const mlx_array a, const mlx_array indices, const mlx_stream s);
int mlx_take_along_axis(mlx_array* res, const mlx_array a, const mlx_array indices, int axis, const mlx_stream s);
int mlx_put_along_axis(mlx_array* res, const mlx_array a, const mlx_array indices, const mlx_array values, int axis, const mlx_stream s);

#ifdef __cplusplus
}
#endif

#endif
