/* mlx-c ops, arithmetic family: elementwise arithmetic with numpy broadcasting and MLX type
 * promotion. divide of integers gives float32; floor_divide, remainder and divmod follow Python
 * (the remainder takes the divisor's sign; integer division by zero gives 0); integer power
 * wraps; maximum/minimum propagate NaN.
 *
 *   mlx_array q = mlx_array_new();
 *   mlx_floor_divide(&q, a, b, s);      // a // b, broadcast
 *   mlx_clip(&q, q, lo, mlx_array_new(), s); // lower bound only
 */
#ifndef MLX_C_OPS_ARITHMETIC_H
#define MLX_C_OPS_ARITHMETIC_H

#include <stdbool.h>
#include <stddef.h>

#include "mlx/c/array.h"
#include "mlx/c/optional.h"
#include "mlx/c/stream.h"
#include "mlx/c/vector.h"

#ifdef __cplusplus
extern "C" {
#endif

int mlx_add(mlx_array* res, const mlx_array a, const mlx_array b, const mlx_stream s);
int mlx_subtract(mlx_array* res, const mlx_array a, const mlx_array b, const mlx_stream s);
int mlx_multiply(mlx_array* res, const mlx_array a, const mlx_array b, const mlx_stream s);
int mlx_divide(mlx_array* res, const mlx_array a, const mlx_array b, const mlx_stream s);
int mlx_floor_divide(mlx_array* res, const mlx_array a, const mlx_array b, const mlx_stream s);
int mlx_remainder(mlx_array* res, const mlx_array a, const mlx_array b, const mlx_stream s);
int mlx_power(mlx_array* res, const mlx_array a, const mlx_array b, const mlx_stream s);
int mlx_maximum(mlx_array* res, const mlx_array a, const mlx_array b, const mlx_stream s);
int mlx_minimum(mlx_array* res, const mlx_array a, const mlx_array b, const mlx_stream s);

/* res receives two arrays: (floor_divide(a, b), remainder(a, b)). */
int mlx_divmod(mlx_vector_array* res, const mlx_array a, const mlx_array b, const mlx_stream s);

/* Dtype kept (integers wrap); abs of complex64 gives float32; negative of bool is an error. */
int mlx_abs(mlx_array* res, const mlx_array a, const mlx_stream s);
int mlx_negative(mlx_array* res, const mlx_array a, const mlx_stream s);
int mlx_sign(mlx_array* res, const mlx_array a, const mlx_stream s);
int mlx_square(mlx_array* res, const mlx_array a, const mlx_stream s);

/* Either bound may be an empty handle (mlx_array_new()), not both. */
int mlx_clip(mlx_array* res, const mlx_array a, const mlx_array a_min, const mlx_array a_max, const mlx_stream s);

#ifdef __cplusplus
}
#endif

#endif
