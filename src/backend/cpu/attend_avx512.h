/* AVX-512 inner loops of the CPU attention (fast.c's attend_range) for rows of keys and values
 * that are contiguous float32/float16/bfloat16 vectors of a multiple of 16 values: decode reads
 * a long run of keys per query, and fast.c's general loop (a conversion call, a dot call and
 * rep axpy calls per key) spent more on calls than on arithmetic. */
#ifndef MLXC_CPU_ATTEND_AVX512_H
#define MLXC_CPU_ATTEND_AVX512_H

#include <stdbool.h>
#include <stdint.h>

#include "mlx/c/array.h"

/* Whether the kernels below take rows of `dim` values of `dtype` `step` elements apart (the
 * last axis' stride) on this processor. */
bool attend_avx512_supported(int64_t dim, mlx_dtype dtype, int64_t step);

/* scores[g * ld + j] = q_g . k_j for the `rep` rows of q (rep, D) and keys j < count, key j at
 * k + j * k_stride elements (dtype). */
void attend_avx512_scores(const float* q, int64_t rep, int64_t D, const void* k, int64_t k_stride,
                          mlx_dtype dtype, int64_t count, float* scores, int64_t ld);

/* acc[g * Dv + d] += sum_j w[g * ld + j] v_j[d] for the `rep` rows of weights and values j <
 * count, value j at v + j * v_stride elements (dtype). */
void attend_avx512_values(const float* w, int64_t ld, int64_t rep, const void* v, int64_t v_stride,
                          mlx_dtype dtype, int64_t count, int64_t Dv, float* acc);

#endif
