/* float16/bfloat16 weights times a few rows of float32 activations: batch-1 decode (M = 1),
 * speculative verification, batch decode and short prefills (matmul sends up to 256 rows).
 * Each weight is read from memory once per call whatever M: a tile of weights is widened to
 * float32 in registers and multiplied into every row of x, accumulating in float32; N is split
 * over the thread pool.
 * Each output's arithmetic (its order of float operations) does not depend on M, so a row
 * computed in a multi-row call equals the same row computed alone, bit for bit, for one
 * instruction set. Each entry point has an `_isa` form that runs one instruction set (tests
 * compare every variant with the portable loops); the plain form picks the best supported. */
#ifndef MLXC_CPU_GEMV_H
#define MLXC_CPU_GEMV_H

#include <stdbool.h>
#include <stdint.h>

#include "backend/cpu/isa.h"

/* y (M, N) = x (M, K) W^T: W is (N, K) with row stride ldw (elements), each output the dot
 * product of one weight row with one row of x; x and y dense row-major. bf16 selects bfloat16
 * weights, else float16. */
void cpu_gemv_half_rows(float* y, const float* x, int64_t M, const uint16_t* w, int64_t ldw,
                        int64_t N, int64_t K, bool bf16);
void cpu_gemv_half_rows_isa(cpu_isa isa, float* y, const float* x, int64_t M, const uint16_t* w,
                            int64_t ldw, int64_t N, int64_t K, bool bf16);

/* y (M, N) = x (M, K) W: W is (K, N) with row stride ldw; weight rows are scaled by x[m][k] and
 * summed. */
void cpu_gemv_half_cols(float* y, const float* x, int64_t M, const uint16_t* w, int64_t ldw,
                        int64_t N, int64_t K, bool bf16);
void cpu_gemv_half_cols_isa(cpu_isa isa, float* y, const float* x, int64_t M, const uint16_t* w,
                            int64_t ldw, int64_t N, int64_t K, bool bf16);

#endif
