/* mlx-c ops, arithmetic family: elementwise binary arithmetic with numpy broadcasting and
 * MLX type promotion (divide of integers gives float32). */
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
int mlx_divide(mlx_array* res, const mlx_array a, const mlx_array b, const mlx_stream s);
int mlx_multiply(mlx_array* res, const mlx_array a, const mlx_array b, const mlx_stream s);
int mlx_subtract(mlx_array* res, const mlx_array a, const mlx_array b, const mlx_stream s);

#ifdef __cplusplus
}
#endif

#endif
