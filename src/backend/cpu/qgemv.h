/* Batch-1 decode with affine-quantized weights: y (N) = dequantize(W) x for W (N, K) packed in
 * MLX's layout, dequantized in registers (never written out), accumulated in float32 and split
 * over the thread pool by rows. 2- to 8-bit weights have AVX2 and AVX-512 kernels (several
 * rows per pass over x; 3, 5 and 6 bits in qgemv_odd.c); the portable variant unpacks one value
 * at a time. */
#ifndef MLXC_CPU_QGEMV_H
#define MLXC_CPU_QGEMV_H

#include <stdint.h>

#include "backend/cpu/isa.h"
#include "mlx/c/array.h"

/* w: N rows of K * bits / 8 bytes; scales, biases: (N, K / group_size) of sdtype and bdtype
 * (each float32, float16 or bfloat16); x: K floats. K is a multiple of group_size (32, 64 or
 * 128). Returns 1 when the temporary buffers cannot be allocated (error reported). */
int cpu_qgemv_affine(float* y, const float* x, const uint32_t* w, const void* scales,
                     const void* biases, mlx_dtype sdtype, mlx_dtype bdtype, int64_t N, int64_t K,
                     int bits, int group_size);
/* The same with one instruction set (tests run every variant). */
int cpu_qgemv_affine_isa(cpu_isa isa, float* y, const float* x, const uint32_t* w,
                         const void* scales, const void* biases, mlx_dtype sdtype,
                         mlx_dtype bdtype, int64_t N, int64_t K, int bits, int group_size);

#endif
