/* Matrix-vector products with float16/bfloat16 weights and float32 vectors, the batch-1 decode
 * case of matmul: one pass over the weights at memory bandwidth, accumulating in float32, split
 * over the thread pool. Each entry point has an `_isa` form that runs one instruction set (tests
 * compare every variant with the portable loops); the plain form picks the best supported. */
#ifndef MLXC_CPU_GEMV_H
#define MLXC_CPU_GEMV_H

#include <stdbool.h>
#include <stdint.h>

#include "backend/cpu/isa.h"

/* y (N) = W x: W is (N, K) with row stride ldw (elements), each output the dot product of one
 * weight row with x (K). bf16 selects bfloat16 weights, else float16. */
void cpu_gemv_half_rows(float* y, const float* x, const uint16_t* w, int64_t ldw, int64_t N,
                        int64_t K, bool bf16);
void cpu_gemv_half_rows_isa(cpu_isa isa, float* y, const float* x, const uint16_t* w, int64_t ldw,
                            int64_t N, int64_t K, bool bf16);

/* y (N) = x W: W is (K, N) with row stride ldw; weight rows are scaled by x[k] and summed. */
void cpu_gemv_half_cols(float* y, const float* x, const uint16_t* w, int64_t ldw, int64_t N,
                        int64_t K, bool bf16);
void cpu_gemv_half_cols_isa(cpu_isa isa, float* y, const float* x, const uint16_t* w, int64_t ldw,
                            int64_t N, int64_t K, bool bf16);

#endif
