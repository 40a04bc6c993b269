/* mlx-c ops, logical and bitwise family. Logical ops treat any nonzero value as true and give
 * bool; bitwise ops take integers and bool only (floats are an error). Shifts by a negative
 * amount or by the type's width or more give 0 (left) or the sign fill (right).
 *
 *   mlx_array m = mlx_array_new();
 *   mlx_bitwise_and(&m, flags, mask, s);
 */
#ifndef MLX_C_OPS_LOGIC_H
#define MLX_C_OPS_LOGIC_H

#include <stdbool.h>
#include <stddef.h>

#include "mlx/c/array.h"
#include "mlx/c/optional.h"
#include "mlx/c/stream.h"
#include "mlx/c/vector.h"

#ifdef __cplusplus
extern "C" {
#endif

int mlx_logical_not(mlx_array* res, const mlx_array a, const mlx_stream s);
int mlx_logical_and(mlx_array* res, const mlx_array a, const mlx_array b, const mlx_stream s);
int mlx_logical_or(mlx_array* res, const mlx_array a, const mlx_array b, const mlx_stream s);

int mlx_bitwise_and(mlx_array* res, const mlx_array a, const mlx_array b, const mlx_stream s);
int mlx_bitwise_or(mlx_array* res, const mlx_array a, const mlx_array b, const mlx_stream s);
int mlx_bitwise_xor(mlx_array* res, const mlx_array a, const mlx_array b, const mlx_stream s);
int mlx_bitwise_invert(mlx_array* res, const mlx_array a, const mlx_stream s);
int mlx_left_shift(mlx_array* res, const mlx_array a, const mlx_array b, const mlx_stream s);
int mlx_right_shift(mlx_array* res, const mlx_array a, const mlx_array b, const mlx_stream s);

#ifdef __cplusplus
}
#endif

#endif
