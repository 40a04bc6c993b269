/* Element conversion between any two dtypes (astype). Integers to integers wrap modulo 2^bits
 * (as C and MLX); floats to integers truncate toward zero, NaN becomes 0 and out-of-range values
 * saturate (C leaves these undefined; MLX wraps).
 * Complex to real keeps the real part. */
#ifndef MLXC_CPU_CONVERT_H
#define MLXC_CPU_CONVERT_H

#include <stdint.h>

#include "mlx/c/array.h"

/* dst (row-major, dense, dst_dtype) <- src (strided, src_dtype). */
void cpu_convert(void* dst, mlx_dtype dst_dtype, const void* src, mlx_dtype src_dtype,
                 const int* shape, const int64_t* src_strides, int ndim);

/* One value to and from `long double`, which holds every int64/uint64/double exactly. */
long double cpu_load_real(const void* p, mlx_dtype dtype);
void cpu_store_real(void* p, mlx_dtype dtype, long double v);

#endif
