/* mlxc fused operations beyond mlx-c's fast.h, for the hot paths of transformer layers (one
 * kernel where the composed ops would launch several on a GPU):
 *
 *   mlxc_fast_add_rms_norm(&sum, &normed, x, residual, weight, eps, s)
 *     sum = x + residual; normed = mlx_fast_rms_norm(sum, weight, eps)
 *     (a residual connection followed by the next sub-layer's norm)
 *   mlxc_fast_glu(&out, gate, up, "silu" | "gelu_tanh", s)
 *     out = act(gate) * up (the gated MLP's activation: SwiGLU, GeGLU)
 *
 * Results are those of the composed ops, rounding included: the sum is rounded to its dtype
 * before it is normalised. Every function returns 0 on success, non-zero with a message
 * (mlxc/error.h) on bad input. */
#ifndef MLXC_FAST_H
#define MLXC_FAST_H

#include "mlx/c/array.h"
#include "mlx/c/stream.h"

#ifdef __cplusplus
extern "C" {
#endif

/* x and residual: float32, float16 or bfloat16, the same shape and dtype; weight: empty or (D),
 * D the last dimension. *sum has x's dtype and shape; *normed the dtype promoted with the
 * weight's. */
int mlxc_fast_add_rms_norm(mlx_array* sum, mlx_array* normed, const mlx_array x, const mlx_array residual,
                           const mlx_array weight, float eps, const mlx_stream s);

/* gate and up: float32, float16 or bfloat16, the same shape and dtype (views such as the two
 * halves of one projection are fine); activation "silu" (sigmoid(g) * g) or "gelu_tanh"
 * (0.5 g (1 + tanh(sqrt(2/pi) (g + 0.044715 g^3)))). Each step rounds to the dtype as the
 * separate ops would (mlx_sigmoid, mlx_multiply, ...). */
int mlxc_fast_glu(mlx_array* res, const mlx_array gate, const mlx_array up, const char* activation,
                  const mlx_stream s);

#ifdef __cplusplus
}
#endif

#endif
