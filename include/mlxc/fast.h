/* mlxc fused operations beyond mlx-c's fast.h, for the hot paths of transformer layers (one
 * kernel where the composed ops would launch several on a GPU):
 *
 *   mlxc_fast_add_rms_norm(&sum, &normed, x, residual, weight, eps, s)
 *     sum = x + residual; normed = mlx_fast_rms_norm(sum, weight, eps)
 *     (a residual connection followed by the next sub-layer's norm)
 *   mlxc_fast_glu(&out, gate, up, "silu" | "gelu_tanh", s)
 *     out = act(gate) * up (the gated MLP's activation: SwiGLU, GeGLU)
 *   mlxc_fast_rope_kv(&q_out, &keys_out, &values_out, q, k, v, keys, values, dims, traditional,
 *                     base, scale, position, freqs, s)
 *     q_out = mlx_fast_rope_dynamic(q, position); keys_out and values_out = the caches with
 *     mlx_fast_rope_dynamic(k, position) and v written at slot `position` of axis 2
 *     (mlx_slice_update_dynamic): a decode step's RoPE and KV-cache write
 *   mlxc_fast_rope_kv_attention(&out, &keys_out, &values_out, q, k, v, keys, values, dims,
 *                               traditional, base, rope_scale, position, freqs, scale, mask_mode,
 *                               mask, s)
 *     mlxc_fast_rope_kv, then mlx_fast_scaled_dot_product_attention of the rotated q over the
 *     updated caches (a decode step's whole attention core: one kernel on a GPU)
 *   mlxc_fast_argmax_logsumexp(&index, &value, &lse, x, s)
 *     the last axis's argmax, the value there and its log-sum-exp, in one pass (a decode step's
 *     greedy choice and the normaliser of its log-probability)
 *   mlxc_fast_gated_linear(&out, x, w, scales, biases, group_size, bits, "silu" | "gelu_tanh", s)
 *     out = act(x W_gate^T) * (x W_up^T), w stacking W_gate over W_up, plain or quantized (the
 *     gated MLP's first half: a batch-1 decode step runs it as one GEMV with the activation in
 *     its epilogue)
 *   mlxc_fast_linear_residual(&sum, &sumsq, &scaled, x, w, scales, biases, group_size, bits,
 *                             residual, norm_weight, s)
 *     sum = residual + x W^T; sumsq = the squares of sum added by runs of 4 features; scaled =
 *     sum * norm_weight (what the next rms_norm needs, so that it can run inside the next
 *     projection)
 *   mlxc_fast_rms_norm_linear(&out, scaled, sumsq, eps, w, scales, biases, group_size, bits,
 *                             bias, activation, s)
 *     out = rsqrt(sum(sumsq) / D + eps) (scaled W^T) (+ bias): mlx_fast_rms_norm(sum, weight,
 *     eps) W^T with the normalising factor applied after the product, or its gated form (a
 *     decode step's norm inside the projection it feeds: no kernel of its own)
 *
 * Results are those of the composed ops, rounding included: the sum is rounded to its dtype
 * before it is normalised, each product of gated_linear before the activation. Every function
 * returns 0 on success, non-zero with a message (mlxc/error.h) on bad input. */
#ifndef MLXC_FAST_H
#define MLXC_FAST_H

#include "mlx/c/array.h"
#include "mlx/c/optional.h"
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

/* q (B, H, L, D), k (B, Hk, L, D), v (B, Hk, L, Dv), keys (B, Hk, T, D), values (B, Hk, T, Dv), one
 * floating-point dtype; position: one integer (an array, so that a recorded step reads it when it
 * runs). q and k rotate as mlx_fast_rope_dynamic with offset `position` (dims, traditional, base
 * or freqs, scale as there); k rotated and v go into slots position .. position + L - 1 of the
 * caches, the start resolved as mlx_slice_update_dynamic does (negative counts from the end,
 * clamped to fit). The caches are updated in place when the caller's handles were the only
 * references (pass the same handles as results: &keys, &values). */
int mlxc_fast_rope_kv(mlx_array* res_q, mlx_array* res_keys, mlx_array* res_values, const mlx_array q,
                      const mlx_array k, const mlx_array v, const mlx_array keys, const mlx_array values, int dims,
                      bool traditional, mlx_optional_float base, float scale, const mlx_array position,
                      const mlx_array freqs, const mlx_stream s);

/* mlxc_fast_rope_kv(&q_rotated, keys_out, values_out, q, k, v, keys, values, dims, traditional,
 * base, rope_scale, position, freqs), then *out = mlx_fast_scaled_dot_product_attention(q_rotated,
 * *keys_out, *values_out, scale, mask_mode, mask, no sinks): arguments and results as those two
 * functions take and give them (mask_mode "", "causal" or "array"). The result is the composed
 * ops' to the bit. On a GPU, one query row (L = 1) of float16/bfloat16 with heads of 64 or 128
 * values and at most 16 query heads per KV head is one kernel (the attention rotates q and the
 * new key itself and writes the caches); other cases run the two fused ops. */
int mlxc_fast_rope_kv_attention(mlx_array* res, mlx_array* res_keys, mlx_array* res_values, const mlx_array q,
                                const mlx_array k, const mlx_array v, const mlx_array keys, const mlx_array values,
                                int dims, bool traditional, mlx_optional_float base, float rope_scale,
                                const mlx_array position, const mlx_array freqs, float scale, const char* mask_mode,
                                const mlx_array mask, const mlx_stream s);

/* x: floating point, non-empty, at least one dimension; xf = x as float32 (float64 x stays
 * float64). *index = mlx_argmax_axis(x, -1) (uint32, the first index among equal maxima, NaN
 * counting as the largest); *value = xf at that index (mlx_take_along_axis); *lse =
 * mlx_logsumexp_axis(xf, -1): a decode step's pick, a token and its log-probability, straight
 * from half-precision logits. Each has x's shape without its last axis and is the composed
 * ops' result to the bit on the CPU. On a GPU the three come from one kernel, one read of x;
 * the log-sum-exp is accumulated in float32 for float32 and half x (its sum in another order:
 * within float32 rounding of the sum), in float64 for float64 x. */
int mlxc_fast_argmax_logsumexp(mlx_array* index, mlx_array* value, mlx_array* lse, const mlx_array x,
                               const mlx_stream s);

/* act(x W_gate^T) * (x W_up^T), the gated MLP's first half, where w stacks W_gate over W_up
 * ((2I, K) rows). Plain: w float32/float16/bfloat16 with x's dtype, scales/biases empty,
 * group_size/bits unset. MLX affine-quantized: w packed uint32 (2I, K*bits/32) with scales/biases
 * (2I, K/group) of x's dtype as mlx_quantized_matmul takes them (transpose true; bits 2, 3, 4,
 * 5, 6 or 8, default 4; group_size 32, 64 or 128, default 64). x (..., K). Result (..., I) in
 * x's dtype, equal to mlxc_fast_glu of the two halves of the linear layer's output (each product
 * rounded to x's dtype before the activation, as the composed ops round). activation: as
 * mlxc_fast_glu. One float16/bfloat16 row of x is one fused kernel; several rows, and float32,
 * run the composed ops (matmul or quantized_matmul, split, glu). */
int mlxc_fast_gated_linear(mlx_array* res, const mlx_array x, const mlx_array w, const mlx_array scales,
                           const mlx_array biases, mlx_optional_int group_size, mlx_optional_int bits,
                           const char* activation, const mlx_stream s);

/* x (..., K) and residual (..., N): float32, float16 or bfloat16, one dtype.
 * The linear layer as mlx_quantized_matmul (transpose true) or mlx_matmul take it: plain w (N,
 * K) of x's dtype with scales, biases empty and group_size, bits unset; or MLX's affine layout,
 * w packed uint32 (N, K * bits / 32) with scales and biases (N, K / group) of x's dtype (bits 2,
 * 3, 4, 5, 6 or 8, default 4; group_size 32, 64 or 128, default 64). norm_weight: empty or (N)
 * of x's dtype.
 *   *sum = residual + x W^T, the product rounded to the dtype before the addition (as
 *   mlx_matmul or mlx_quantized_matmul, then mlx_add round);
 *   *sumsq: float32 (..., P), P = ceil(N / 4): element j the float32 sum s[4j]^2 + s[4j+1]^2 +
 *   s[4j+2]^2 + s[4j+3]^2 of sum's stored values s (the last run may be shorter), added left to
 *   right (the consumer adds the runs up: each GEMV block adds only what it needs);
 *   *scaled = sum * norm_weight rounded to the dtype (mlx_multiply), or sum itself without one.
 * One half-precision row with plain, 4-bit or 8-bit weights is one fused kernel (a GEMV whose
 * epilogue adds the residual); the rest runs the composed ops. */
int mlxc_fast_linear_residual(mlx_array* sum, mlx_array* sumsq, mlx_array* scaled, const mlx_array x,
                              const mlx_array w, const mlx_array scales, const mlx_array biases,
                              mlx_optional_int group_size, mlx_optional_int bits, const mlx_array residual,
                              const mlx_array norm_weight, const mlx_stream s);

/* scaled (..., D): float32, float16 or bfloat16, the stream h times the norm's weight as
 * mlxc_fast_linear_residual gives it; sumsq float32 (..., P) whose values add up to the sum of
 * the squares of h's row (mlxc_fast_linear_residual's runs, or any split of it; the sum's order is
 * unspecified). With inv =
 * 1 / sqrt(sum(sumsq) / D + eps) in float32 (the GPU's by the fast reciprocal square root,
 * within 2 ulp) and W as mlxc_fast_linear_residual takes it ((N, D) rows):
 *   activation NULL: *out (..., N) = inv * (scaled W^T), plus bias (N, of scaled's dtype) when
 *   given, rounded once to the dtype; this is mlx_fast_rms_norm(h, weight, eps) W^T (+ bias)
 *   with the normalising factor applied after the product instead of before it;
 *   activation "silu" or "gelu_tanh": w stacks W_gate over W_up ((2I, D) rows), bias empty, and
 *   *out (..., I) = mlxc_fast_glu of round(inv * (scaled W_gate^T)) and round(inv * (scaled
 *   W_up^T)).
 * One half-precision row with plain, 4-bit or 8-bit weights is one fused kernel (the GEMV
 * applies inv in its epilogue); the rest runs the composed ops. */
int mlxc_fast_rms_norm_linear(mlx_array* out, const mlx_array scaled, const mlx_array sumsq, float eps,
                              const mlx_array w, const mlx_array scales, const mlx_array biases,
                              mlx_optional_int group_size, mlx_optional_int bits, const mlx_array bias,
                              const char* activation, const mlx_stream s);

#ifdef __cplusplus
}
#endif

#endif
