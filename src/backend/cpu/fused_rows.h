/* Row-level steps shared by the fused CPU kernels (the norm of fast.c, the linear layer of
 * gated_gemv.c), so that a kernel fusing several ops rounds exactly as those ops do. */
#ifndef MLXC_CPU_FUSED_ROWS_H
#define MLXC_CPU_FUSED_ROWS_H

#include <stdbool.h>
#include <stdint.h>

#include "core/array.h"
#include "ops/fast_params.h"

/* row (D values) normalised in place as rms_norm (layer false) or layer_norm computes it in
 * float32: (row - mean) / sqrt(mean square + eps); with a weight w or bias b (D floats, NULL for
 * none) the normalised value is rounded to dtype first, as MLX rounds it, then row * w + b. The
 * result is left unrounded: the caller's store to dtype rounds it. */
void cpu_norm_row(float* row, int64_t D, float eps, bool layer, const float* w, const float* b, mlx_dtype dtype);

/* y (N) = x (K floats) W^T, unrounded, for the weight w (N, K) of a linear layer: plain (w of a
 * half type or float32, any layout) or affine-quantized (p->quantized: w, scales and biases as
 * quantized_matmul takes them), computed by the kernel the composed matmul / quantized_matmul
 * runs for one row. 0, or 1 with the error reported. */
int cpu_linear_row(float* y, const float* x, const core_array* w, const core_array* scales, const core_array* biases,
                   const gated_gemv_params* p, int64_t N, int64_t K);

#endif
