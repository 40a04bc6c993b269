/* Row helpers vectorised for the widest instruction set this processor runs: bfloat16 <->
 * float32 conversion of contiguous rows (rows.c), float reductions for the fused kernels
 * (fast.c): a dot product and a sum of squared deviations, and exp sums and sigmoid. A plain `s += a[i] * b[i]` loop is one serial chain of additions (the compiler
 * may not reorder float sums), latency-bound at a few cycles per element; these keep 16
 * independent partial sums, vectorised for the widest instruction set this processor runs. */
#ifndef MLXC_CPU_VEC_H
#define MLXC_CPU_VEC_H

#include <stdint.h>

/* dst[i] = src[i] (bfloat16 -> float32; float32 -> bfloat16 rounding to nearest even, NaN
 * kept quiet, exactly as half.h) */
void cpu_vec_bf16_to_f32(const uint16_t* src, float* dst, int64_t n);
void cpu_vec_f32_to_bf16(const float* src, uint16_t* dst, int64_t n);
/* v[i] <- v[i] rounded to bfloat16 (as a float32) */
void cpu_vec_round_bf16(float* v, int64_t n);
/* sum_i a[i] * b[i] */
float cpu_vec_dot(const float* a, const float* b, int64_t n);
/* out[r] = q[r * ldq ..] . k for `rows` rows of q (four at a time share each load of k) */
void cpu_vec_dots(const float* q, int64_t rows, int64_t ldq, const float* k, int64_t n,
                  float* out);
/* y[i] += a * x[i] */
void cpu_vec_axpy(float* y, float a, const float* x, int64_t n);
/* sum_i (a[i] - mean)^2 */
float cpu_vec_sum_sq(const float* a, float mean, int64_t n);
/* max_i x[i], NaN ignored (-inf when n is 0 or every x is NaN), 16 lanes: a running maximum
 * is a chain of dependent compares */
float cpu_vec_max(const float* x, int64_t n);
/* out[i] = e^(x[i] - center) for x[i] <= center (exp_f32.h; -inf gives 0); returns their sum
 * (float32 lanes within blocks of 256, blocks added in double). out may be x. */
double cpu_vec_exp_sum(float* out, const float* x, int64_t n, float center);
/* out[i] = sigmoid(x[i]) (exp_f32.h); out may be x. */
void cpu_vec_sigmoid(float* out, const float* x, int64_t n);

#endif
