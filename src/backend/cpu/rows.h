/* Loading and storing a strided row of a floating-point array as float32, for kernels that
 * compute in float32 whatever the storage dtype (float16, bfloat16, float32, float64). */
#ifndef MLXC_CPU_ROWS_H
#define MLXC_CPU_ROWS_H

#include <stdint.h>

#include "mlx/c/array.h"

void cpu_row_to_f32(const void* src, mlx_dtype dtype, int64_t stride, int64_t n, float* dst);
void cpu_row_from_f32(const float* src, void* dst, mlx_dtype dtype, int64_t stride, int64_t n);

#endif
