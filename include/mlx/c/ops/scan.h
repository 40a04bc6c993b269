/* mlx-c ops, cumulative family: cumsum, cumprod, cummax, cummin and logcumsumexp along one
 * axis, optionally from the end (reverse) and excluding the current element (inclusive = false,
 * so the first output is the identity: 0, 1, the lowest value, the highest value, -inf).
 * cumsum of bool gives int32, logcumsumexp of integers float32; the others keep the dtype.
 *
 *   mlx_array running = mlx_array_new();
 *   mlx_cumsum(&running, x, -1, false, true, stream);   // running totals along the last axis
 */
#ifndef MLX_C_OPS_SCAN_H
#define MLX_C_OPS_SCAN_H

#include <stdbool.h>
#include <stddef.h>

#include "mlx/c/array.h"
#include "mlx/c/stream.h"

#ifdef __cplusplus
extern "C" {
#endif

int mlx_cumsum(mlx_array* res, const mlx_array a, int axis, bool reverse, bool inclusive, const mlx_stream s);
int mlx_cumprod(mlx_array* res, const mlx_array a, int axis, bool reverse, bool inclusive, const mlx_stream s);
int mlx_cummax(mlx_array* res, const mlx_array a, int axis, bool reverse, bool inclusive, const mlx_stream s);
int mlx_cummin(mlx_array* res, const mlx_array a, int axis, bool reverse, bool inclusive, const mlx_stream s);
int mlx_logcumsumexp(mlx_array* res, const mlx_array a, int axis, bool reverse, bool inclusive, const mlx_stream s);

#ifdef __cplusplus
}
#endif

#endif
