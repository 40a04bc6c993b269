/* AMX inner loops of the CPU attention (fast.c's attend_range) for bfloat16 keys and values:
 * decode attention on the AVX-512 loops spent ~15% of a 0.5B 4-bit token at context 2048 on
 * multiply-adds and horizontal sums that a bfloat16 tile product does 16 keys x 16 heads at a
 * time. Float32 operands (q, the softmax weights) are split into three bfloat16 parts whose sum
 * is exact, so the products are those of float32 arithmetic; only the order of the additions
 * differs. Same contracts as attend_avx512.h. */
#ifndef MLXC_CPU_ATTEND_AMX_H
#define MLXC_CPU_ATTEND_AMX_H

#include <stdbool.h>
#include <stdint.h>

#include "mlx/c/array.h"

/* Whether the kernels below take `rep` query heads per kv head, keys of D and values of Dv
 * contiguous values of these dtypes on this processor and system (AMX-BF16 present, the tile
 * state granted by the kernel, MLXC_CPU_AMX not "0"). */
bool attend_amx_supported(int64_t rep, int64_t D, int64_t Dv, mlx_dtype k_dtype, mlx_dtype v_dtype);

/* scores[g * ld + j] = q_g . k_j for the `rep` rows of q (rep, D) and bfloat16 keys j < count,
 * key j at k + j * k_stride elements. */
void attend_amx_scores(const float* q, int64_t rep, int64_t D, const uint16_t* k, int64_t k_stride,
                       int64_t count, float* scores, int64_t ld);

/* acc[g * Dv + d] += sum_j w[g * ld + j] v_j[d] for the `rep` rows of weights and bfloat16
 * values j < count, value j at v + j * v_stride elements. */
void attend_amx_values(const float* w, int64_t ld, int64_t rep, const uint16_t* v, int64_t v_stride,
                       int64_t count, int64_t Dv, float* acc);

#endif
