/* mlx-c ops, linear-algebra basics: matrix products with numpy's rules (a 1-D first operand is a
 * row, a 1-D second operand a column; batch dimensions broadcast). Only floating point and
 * complex64 inputs (integers are an error, as in MLX); float16/bfloat16 accumulate in float32.
 *
 *   mlx_array y = mlx_array_new();
 *   mlx_matmul(&y, x, w_t, s);                 // (..., M, K) @ (K, N) -> (..., M, N)
 *   mlx_addmm(&y, bias, x, w_t, 1.0f, 1.0f, s); // x @ w_t + bias
 *   int ax[1] = {-1};
 *   mlx_tensordot(&y, a, b, ax, 1, ax, 1, s);   // contract the last axes (= mlx_inner)
 *   mlx_einsum(&y, "bij,bjk->bik", operands, s); // operands: an mlx_vector_array of two arrays
 */
#ifndef MLX_C_OPS_LINALG_BASIC_H
#define MLX_C_OPS_LINALG_BASIC_H

#include <stdbool.h>
#include <stddef.h>

#include "mlx/c/array.h"
#include "mlx/c/stream.h"
#include "mlx/c/vector.h"

#ifdef __cplusplus
extern "C" {
#endif

int mlx_matmul(mlx_array* res, const mlx_array a, const mlx_array b, const mlx_stream s);
/* alpha * (a @ b) + beta * c, c broadcast to the product's shape. */
int mlx_addmm(mlx_array* res, const mlx_array c, const mlx_array a, const mlx_array b, float alpha,
              float beta, const mlx_stream s);
/* Sum over the last axes of a and b (a plain product when either is a scalar). */
int mlx_inner(mlx_array* res, const mlx_array a, const mlx_array b, const mlx_stream s);
/* The flattened a as a column times the flattened b as a row (any dtype, multiply's rules). */
int mlx_outer(mlx_array* res, const mlx_array a, const mlx_array b, const mlx_stream s);
/* Contracts axes_a of a with axes_b of b; the result has a's free axes, then b's. */
int mlx_tensordot(mlx_array* res, const mlx_array a, const mlx_array b, const int* axes_a,
                  size_t axes_a_num, const int* axes_b, size_t axes_b_num, const mlx_stream s);
/* Contracts the last `axis` axes of a with the first `axis` axes of b. */
int mlx_tensordot_axis(mlx_array* res, const mlx_array a, const mlx_array b, int axis,
                       const mlx_stream s);
/* Einstein summation as numpy and MLX: "ij,jk->ik" (explicit output) or "ij,jk" (implicit: the
 * labels seen once, in ASCII order, after any '...' dimensions); '...' broadcasts; a label
 * repeated within a term takes a diagonal; labels absent from the output are summed. Operands
 * are contracted pairwise from left to right with matmul (integers by multiply and sum). */
int mlx_einsum(mlx_array* res, const char* subscripts, const mlx_vector_array operands,
               const mlx_stream s);
/* a[lhs_indices] @ b[rhs_indices] for a (..., M, K), b (..., K, N): the indices (any integer
 * dtype) are flat positions in each operand's batch dimensions; an empty index array takes the
 * operand's batch as it is. Result: the two (gathered) batches broadcast, + (M, N); 1-D a or b as
 * in matmul. sorted_indices is a hint (unused). Out-of-range indices fail at evaluation. */
int mlx_gather_mm(mlx_array* res, const mlx_array a, const mlx_array b, const mlx_array lhs_indices,
                  const mlx_array rhs_indices, bool sorted_indices, const mlx_stream s);
/* a @ b for a (..., M, K), b (..., K, N) with block_size (32 or 64) square blocks masked: each
 * mask (empty = none) has a block per block_size x block_size tile (the last tile may be
 * partial): mask_lhs (..., ceil(M/bs), ceil(K/bs)), mask_rhs (..., ceil(K/bs), ceil(N/bs)),
 * mask_out (..., ceil(M/bs), ceil(N/bs)). A boolean mask drops the blocks it excludes, a
 * floating one scales them. */
int mlx_block_masked_mm(mlx_array* res, const mlx_array a, const mlx_array b, int block_size,
                        const mlx_array mask_out, const mlx_array mask_lhs, const mlx_array mask_rhs,
                        const mlx_stream s);
/* One product per segment of the inner dimension: segments (..., S, 2) holds integer [start, end)
 * ranges of K; out[..., s, :, :] = a[..., :, start:end] @ b[..., start:end, :], shape
 * (..., S, M, N) (an empty range gives zeros). */
int mlx_segmented_mm(mlx_array* res, const mlx_array a, const mlx_array b, const mlx_array segments,
                     const mlx_stream s);

#ifdef __cplusplus
}
#endif

#endif
