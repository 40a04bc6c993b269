/* Float reductions for the fused kernels (fast.c): a dot product and a sum of squared
 * deviations. A plain `s += a[i] * b[i]` loop is one serial chain of additions (the compiler
 * may not reorder float sums), latency-bound at a few cycles per element; these keep 16
 * independent partial sums, vectorised for the widest instruction set this processor runs. */
#ifndef MLXC_CPU_VEC_H
#define MLXC_CPU_VEC_H

#include <stdint.h>

/* sum_i a[i] * b[i] */
float cpu_vec_dot(const float* a, const float* b, int64_t n);
/* sum_i (a[i] - mean)^2 */
float cpu_vec_sum_sq(const float* a, float mean, int64_t n);

#endif
