/* Affine-quantized weights times a few rows of x (batch-1 decode, speculative verification,
 * batch decode, short prefills): y (M, N) = x (M, K) dequantize(W)^T for W (N, K) packed in MLX's
 * layout, dequantized in registers (never written out), accumulated in float32 and split over
 * the thread pool by weight rows. Each weight is read from memory once per call whatever M:
 * 2-, 4- and 8-bit weights have AVX2 and AVX-512 kernels that multiply each unpacked weight
 * vector into several rows of x; 3, 5 and 6 bits (qgemv_odd.c) and the portable variant run one
 * row of x at a time over a block of weights in cache. A row of x gives the same outputs, bit for
 * bit, whatever M (for one instruction set). */
#ifndef MLXC_CPU_QGEMV_H
#define MLXC_CPU_QGEMV_H

#include <stdint.h>

#include "backend/cpu/isa.h"
#include "mlx/c/array.h"

/* w: N rows of K * bits / 8 bytes; scales, biases: (N, K / group_size) of sdtype and bdtype
 * (each float32, float16 or bfloat16); x: M rows of K floats, y: M rows of N (both dense). K is
 * a multiple of group_size (32, 64 or 128). Returns 1 when the temporary buffers cannot be
 * allocated (error reported). */
int cpu_qgemv_affine(float* y, const float* x, int64_t M, const uint32_t* w, const void* scales,
                     const void* biases, mlx_dtype sdtype, mlx_dtype bdtype, int64_t N, int64_t K,
                     int bits, int group_size);
/* The same with one instruction set (tests run every variant). */
int cpu_qgemv_affine_isa(cpu_isa isa, float* y, const float* x, int64_t M, const uint32_t* w,
                         const void* scales, const void* biases, mlx_dtype sdtype,
                         mlx_dtype bdtype, int64_t N, int64_t K, int bits, int group_size);

#endif
