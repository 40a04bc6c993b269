/* One row through a float16/bfloat16 linear layer, plain or affine-quantized, as the composed
 * matmul or quantized_matmul computes it, and the gated layer's epilogue (linear_row.c): shared
 * by the fused one-row kernels (gated_gemv.c, norm_linear.c), so that each equals the composed
 * ops bit for bit. */
#ifndef MLXC_CPU_LINEAR_ROW_H
#define MLXC_CPU_LINEAR_ROW_H

#include <stdbool.h>
#include <stdint.h>

#include "core/array.h"
#include "ops/fast_params.h"

/* y (N) = W x in float32, unrounded, for a half weight w (N, K) of x's dtype, through gemv.c as
 * matmul computes one row. Weights whose rows are not contiguous are copied dense first (where
 * the composed matmul would take another kernel and could differ in the last bit). Returns
 * non-zero, error reported, when out of memory. */
int cpu_linear_row_plain(float* y, const float* x, const core_array* w, int64_t N, int64_t K);

/* y (N) = dequantize(W) x in float32, unrounded, for MLX's affine layout (w packed uint32 (N, K *
 * bits / 32), scales and biases (N, K / group_size)), through qgemv.c as quantized_matmul
 * computes one row; inputs that are not row-contiguous are copied dense first. Returns non-zero,
 * error reported, when out of memory. */
int cpu_linear_row_quantized(float* y, const float* x, const core_array* w, const core_array* scales,
                             const core_array* biases, int bits, int group_size, int64_t N, int64_t K);

/* One of the two above for a node's weight inputs: weight[0] (plain), or weight[0..2] = w,
 * scales, biases (quantized). */
int cpu_linear_row(float* y, const float* x, core_array* const* weight, bool quantized, int bits, int group_size,
                   int64_t N, int64_t K);

/* out (D values, row-major) = glu(act) of the stacked products y (2D: gate, then up), each
 * product rounded to out's dtype first as the linear layer's stored output is. Overwrites y;
 * t: D floats of scratch. */
void cpu_linear_row_glu_store(float* y, float* t, int64_t D, glu_activation act, core_array* out);

#endif
