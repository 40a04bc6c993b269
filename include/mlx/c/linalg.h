/* mlx-c linalg.h: norms, factorizations, inverses and solvers on the CPU (LAPACK), batched over
 * leading dimensions, with MLX's conventions: qr gives reduced Q (..., M, K) and R (..., K, N);
 * svd gives U (..., M, M), S (..., K) descending and Vt (..., N, N); eigh gives ascending
 * eigenvalues and eigenvectors as columns; lu gives P, L, U with A = L[P] @ U. Factorizations
 * take float32 or float64 (computed in double precision, returned in the input's dtype); eig
 * returns complex64. Singular or indefinite inputs are errors where MLX raises them.
 *
 *   mlx_array q = mlx_array_new(), r = mlx_array_new();
 *   if (mlx_linalg_qr(&q, &r, a, s)) fprintf(stderr, "%s\n", mlxc_last_error());
 *   mlx_vector_array usv = mlx_vector_array_new();
 *   mlx_linalg_svd(&usv, a, true, s);   // {U, S, Vt}; {S} when compute_uv is false
 */
#ifndef MLX_C_LINALG_H
#define MLX_C_LINALG_H

#include <stdbool.h>
#include <stddef.h>

#include "mlx/c/array.h"
#include "mlx/c/stream.h"
#include "mlx/c/vector.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Norms over `axis` (NULL: every axis). One axis: the vector norm of order ord (0 counts
 * non-zeros, +-inf are max/min of |a|, others (sum |a|^ord)^(1/ord)); two axes: the matrix norm
 * (+-1 and +-inf: max/min column or row sums; +-2: largest/smallest singular value). */
int mlx_linalg_norm(mlx_array* res, const mlx_array a, double ord, const int* axis, size_t axis_num,
                    bool keepdims, const mlx_stream s);
/* Matrix norms by name over two axes: "fro" (or "f") and "nuc" (sum of singular values). */
int mlx_linalg_norm_matrix(mlx_array* res, const mlx_array a, const char* ord, const int* axis,
                           size_t axis_num, bool keepdims, const mlx_stream s);
/* The 2-norm over `axis` (NULL: of the flattened array); the Frobenius norm over two axes. */
int mlx_linalg_norm_l2(mlx_array* res, const mlx_array a, const int* axis, size_t axis_num,
                       bool keepdims, const mlx_stream s);

/* Inverses of square matrices; tri_inv reads only the lower (or upper) triangle. */
int mlx_linalg_inv(mlx_array* res, const mlx_array a, const mlx_stream s);
int mlx_linalg_tri_inv(mlx_array* res, const mlx_array a, bool upper, const mlx_stream s);
/* The Cholesky factor L (A = L L^T) or, when upper, U (A = U^T U) of symmetric positive definite
 * matrices (only that triangle of a is read); the other triangle is zero. */
int mlx_linalg_cholesky(mlx_array* res, const mlx_array a, bool upper, const mlx_stream s);
/* The inverse of A from its Cholesky factor L (or U when upper). */
int mlx_linalg_cholesky_inv(mlx_array* res, const mlx_array a, bool upper, const mlx_stream s);
/* Pseudo-inverse through the SVD (singular values below 10 max(M, N) eps sigma_max dropped). */
int mlx_linalg_pinv(mlx_array* res, const mlx_array a, const mlx_stream s);

/* A = Q R: res_0 = Q (..., M, K), res_1 = R (..., K, N), K = min(M, N). */
int mlx_linalg_qr(mlx_array* res_0, mlx_array* res_1, const mlx_array a, const mlx_stream s);
int mlx_linalg_svd(mlx_vector_array* res, const mlx_array a, bool compute_uv, const mlx_stream s);
/* Symmetric eigenproblem reading the UPLO ("L" or "U") triangle: res_0 = eigenvalues ascending,
 * res_1 = eigenvectors as columns. */
int mlx_linalg_eigh(mlx_array* res_0, mlx_array* res_1, const mlx_array a, const char* UPLO,
                    const mlx_stream s);
int mlx_linalg_eigvalsh(mlx_array* res, const mlx_array a, const char* UPLO, const mlx_stream s);
/* General eigenproblem, complex64 results: res_0 = eigenvalues, res_1 = unit eigenvectors as
 * columns (A v = lambda v). */
int mlx_linalg_eig(mlx_array* res_0, mlx_array* res_1, const mlx_array a, const mlx_stream s);
int mlx_linalg_eigvals(mlx_array* res, const mlx_array a, const mlx_stream s);

/* LU with partial pivoting: res = {P (uint32 row indices), L (..., M, K), U (..., K, N)} with
 * A = L[P] @ U. lu_factor gives LAPACK's packed form: res_0 = LU (L below the unit diagonal, U
 * on and above), res_1 = pivots (uint32, 0-based: row i was swapped with row pivots[i]). */
int mlx_linalg_lu(mlx_vector_array* res, const mlx_array a, const mlx_stream s);
int mlx_linalg_lu_factor(mlx_array* res_0, mlx_array* res_1, const mlx_array a, const mlx_stream s);

/* x with a @ x = b: b is (..., N, NRHS) or a vector (N,); batch dimensions broadcast. Both
 * promote to float32 or float64. solve_triangular reads only the lower (or upper) triangle. */
int mlx_linalg_solve(mlx_array* res, const mlx_array a, const mlx_array b, const mlx_stream s);
int mlx_linalg_solve_triangular(mlx_array* res, const mlx_array a, const mlx_array b, bool upper,
                                const mlx_stream s);

/* Cross product of 3-vectors (or 2-vectors, taken with z = 0) along `axis`, broadcasting. */
int mlx_linalg_cross(mlx_array* res, const mlx_array a, const mlx_array b, int axis,
                     const mlx_stream s);

#ifdef __cplusplus
}
#endif

#endif
