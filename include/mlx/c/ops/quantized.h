/* mlx-c ops, quantization in MLX's layouts, so MLX-quantized checkpoints load unchanged.
 *
 * Modes: "affine" (default; w ~ scale * q + bias per group of group_size along the last axis,
 * q of `bits` bits; group sizes 32/64/128, bits 1-6 and 8, defaults 64 and 4), "mxfp4" (FP4 E2M1
 * with a power-of-two E8M0 scale per 32), "mxfp8" (FP8 E4M3, E8M0 scale per 32) and "nvfp4"
 * (FP4 E2M1, FP8 E4M3 scale per 16, optional float32 global scale). Packed weights are uint32
 * (..., K * bits / 32): each row a little-endian bit stream, value i at bits [i * bits, ...).
 * Weights and activations: float32, float16, bfloat16.
 *
 *   mlx_optional_int gs = {64, true}, b = {4, true};
 *   mlx_vector_array q = mlx_vector_array_new();
 *   mlx_quantize(&q, w, gs, b, "affine", mlx_array_new(), s);      // wq, scales, biases
 *   mlx_array wq = mlx_array_new(), sc = mlx_array_new(), bi = mlx_array_new(), y = mlx_array_new();
 *   mlx_vector_array_get(&wq, q, 0); mlx_vector_array_get(&sc, q, 1); mlx_vector_array_get(&bi, q, 2);
 *   mlx_quantized_matmul(&y, x, wq, sc, bi, true, gs, b, "affine", s);  // x @ dequantize(w).T
 */
#ifndef MLX_C_OPS_QUANTIZED_H
#define MLX_C_OPS_QUANTIZED_H

#include <stdbool.h>

#include "mlx/c/array.h"
#include "mlx/c/optional.h"
#include "mlx/c/stream.h"
#include "mlx/c/vector.h"

#ifdef __cplusplus
extern "C" {
#endif

/* res receives (w_q, scales, biases) for "affine", (w_q, scales) otherwise. global_scale: an
 * empty array, or (nvfp4 only) a float32 scalar. */
int mlx_quantize(mlx_vector_array* res, const mlx_array w, mlx_optional_int group_size,
                 mlx_optional_int bits, const char* mode, const mlx_array global_scale,
                 const mlx_stream s);
/* The dequantized weight, in `dtype` when given, else the scales' dtype (affine) or bfloat16.
 * biases: required for "affine", empty otherwise. */
int mlx_dequantize(mlx_array* res, const mlx_array w, const mlx_array scales,
                   const mlx_array biases, mlx_optional_int group_size, mlx_optional_int bits,
                   const char* mode, const mlx_array global_scale, mlx_optional_dtype dtype,
                   const mlx_stream s);
/* x @ dequantize(w).T (transpose, w stored (N, K)) or x @ dequantize(w) (w stored (K, N)),
 * accumulated in float32; batch dimensions of x and w broadcast. */
int mlx_quantized_matmul(mlx_array* res, const mlx_array x, const mlx_array w,
                         const mlx_array scales, const mlx_array biases, bool transpose,
                         mlx_optional_int group_size, mlx_optional_int bits, const char* mode,
                         const mlx_stream s);
/* quantized_matmul of x[lhs_indices] with the quantized matrices w[rhs_indices] (scales and
 * biases gathered alike): indices are flat positions in the batch dimensions (all but the last
 * two) of x and of w/scales/biases; an empty index array takes that batch as it is. The
 * mixture-of-experts form: x (T, 1, 1, K), w (E, N, K * bits / 32), rhs_indices (T, top_k)
 * -> (T, top_k, 1, N). sorted_indices is a hint (unused). */
int mlx_gather_qmm(mlx_array* res, const mlx_array x, const mlx_array w, const mlx_array scales,
                   const mlx_array biases, const mlx_array lhs_indices, const mlx_array rhs_indices,
                   bool transpose, mlx_optional_int group_size, mlx_optional_int bits,
                   const char* mode, bool sorted_indices, const mlx_stream s);

#ifdef __cplusplus
}
#endif

#endif
