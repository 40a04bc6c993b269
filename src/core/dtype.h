/* Dtypes: sizes, names, categories and MLX's type promotion. */
#ifndef MLXC_CORE_DTYPE_H
#define MLXC_CORE_DTYPE_H

#include <stdbool.h>
#include <stddef.h>

#include "mlx/c/array.h"

#define CORE_DTYPE_COUNT 14

size_t core_dtype_size(mlx_dtype dtype);
const char* core_dtype_name(mlx_dtype dtype);
bool core_dtype_valid(int dtype);
bool core_dtype_is_float(mlx_dtype dtype);    /* float16, bfloat16, float32, float64 */
bool core_dtype_is_inexact(mlx_dtype dtype);  /* floats and complex64 */
bool core_dtype_is_integer(mlx_dtype dtype);  /* signed and unsigned ints (not bool) */
bool core_dtype_is_signed_int(mlx_dtype dtype);
bool core_dtype_is_unsigned_int(mlx_dtype dtype);

/* The result dtype of a binary op on a and b, following MLX (e.g. int32 + float32 -> float32,
 * float16 + bfloat16 -> float32, uint32 + int32 -> int64). */
mlx_dtype core_promote(mlx_dtype a, mlx_dtype b);

/* The dtype math functions (exp, sqrt, ...) produce for an input of `dtype`: itself when inexact,
 * float32 otherwise. */
mlx_dtype core_float_result(mlx_dtype dtype);

#endif
