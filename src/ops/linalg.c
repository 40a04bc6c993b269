/* Constructors of mlx-c's linalg.h. Factorizations, inverses and solves are primitives with
 * LAPACK kernels (backend/cpu/linalg.c), multi-output ones as one node with several outputs;
 * norms, pinv, cholesky_inv, lu and cross are composed from other ops as MLX composes them. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mlx/c/linalg.h"
#include "mlx/c/ops.h"
#include "ops/layout.h"
#include "ops/linalg_params.h"
#include "ops/ops_common.h"
#include "ops/primitives.h"

/* ---- argument checks (MLX's messages) ---- */

static int check_float(const core_array* x, const char* op) {
  if (x->dtype != MLX_FLOAT32 && x->dtype != MLX_FLOAT64)
    return util_error("%s: arrays must have type float32 or float64, but the input has type %s",
                      op, core_dtype_name(x->dtype));
  return 0;
}

/* A batch of matrices (..., M, N), square when `square`. */
static int check_matrix_shape(const core_array* x, bool square, const char* op) {
  if (x->ndim < 2)
    return util_error("%s: arrays must have at least 2 dimensions, but the input has %d", op,
                      x->ndim);
  if (square && x->shape[x->ndim - 1] != x->shape[x->ndim - 2])
    return util_error("%s: only defined for square matrices, but the input has shape (..., %d, %d)",
                      op, x->shape[x->ndim - 2], x->shape[x->ndim - 1]);
  return 0;
}

/* A float32/float64 batch of matrices (..., M, N), square when `square`. */
static int check_matrices(const core_array* x, bool square, const char* op) {
  if (check_float(x, op)) return 1;
  return check_matrix_shape(x, square, op);
}

/* The same for the ops that also take complex64 (svd, eigh, eig). */
static int check_matrices_or_complex(const core_array* x, bool square, const char* op) {
  if (x->dtype != MLX_COMPLEX64 && check_float(x, op)) return 1;
  return check_matrix_shape(x, square, op);
}

static linalg_params* new_params(bool upper, bool triangular, bool vectors) {
  linalg_params* p = malloc(sizeof *p);
  if (!p) {
    util_error("linalg: out of memory");
    return NULL;
  }
  *p = (linalg_params){upper, triangular, vectors};
  return p;
}

/* Builds a node of `prim` over x with n outputs; on success outs[] hold new references. */
static int build_node(const core_op* prim, linalg_params* params, core_array* x, int n,
                      const mlx_dtype* dtypes, const int* const* shapes, const int* ndims,
                      mlx_stream s, core_array** outs) {
  if (!params) return 1;
  return core_node_create(prim, params, &x, 1, n, dtypes, shapes, ndims, core_stream_resolve(s),
                          outs);
}

/* ---- inverses and Cholesky ---- */

/* One square-matrix input, one output of the same shape and dtype. */
static int square_op(mlx_array* res, mlx_array a, const core_op* prim, bool upper, bool triangular,
                     const char* op, mlx_stream s) {
  core_array* x = ops_arg(a, op, "input");
  if (!x || check_matrices(x, true, op)) return 1;
  linalg_params* params = new_params(upper, triangular, false);
  if (!params) return 1;
  return ops_finish(res, core_node_single(prim, params, &x, 1, x->dtype, x->shape, x->ndim,
                                          core_stream_resolve(s)), op);
}

int mlx_linalg_inv(mlx_array* res, const mlx_array a, const mlx_stream s) {
  return square_op(res, a, &prim_inv, false, false, "inv", s);
}
int mlx_linalg_tri_inv(mlx_array* res, const mlx_array a, bool upper, const mlx_stream s) {
  return square_op(res, a, &prim_inv, upper, true, "tri_inv", s);
}
int mlx_linalg_cholesky(mlx_array* res, const mlx_array a, bool upper, const mlx_stream s) {
  return square_op(res, a, &prim_cholesky, upper, false, "cholesky", s);
}

/* A^-1 = L^-T L^-1 (or U^-1 U^-T) from the factor. */
int mlx_linalg_cholesky_inv(mlx_array* res, const mlx_array a, bool upper, const mlx_stream s) {
  core_array* x = ops_arg(a, "cholesky_inv", "input");
  if (!x || check_matrices(x, true, "cholesky_inv")) return 1;
  if (!res) return util_error("cholesky_inv: null result pointer");
  mlx_array inv = mlx_array_new(), t = mlx_array_new();
  int status = mlx_linalg_tri_inv(&inv, a, upper, s) || mlx_swapaxes(&t, inv, -1, -2, s) ||
               (upper ? mlx_matmul(res, inv, t, s) : mlx_matmul(res, t, inv, s));
  mlx_array_free(inv);
  mlx_array_free(t);
  return status;
}

/* ---- factorizations with several outputs ---- */

/* Copies shape[0 .. ndim-2) into out and appends up to two trailing sizes (-1: none). */
static int batch_shape(const core_array* x, int last2, int last1, int* out) {
  int nd = x->ndim - 2;
  memcpy(out, x->shape, sizeof(int) * (size_t)nd);
  if (last2 >= 0) out[nd++] = last2;
  if (last1 >= 0) out[nd++] = last1;
  return nd;
}

static int assign_outputs(mlx_array** res, core_array** outs, int n) {
  for (int i = 0; i < n; i++) core_assign(res[i], outs[i]);
  return 0;
}

int mlx_linalg_qr(mlx_array* res_0, mlx_array* res_1, const mlx_array a, const mlx_stream s) {
  core_array* x = ops_arg(a, "qr", "input");
  if (!x || check_matrices(x, false, "qr")) return 1;
  if (!res_0 || !res_1) return util_error("qr: null result pointer");
  int m = x->shape[x->ndim - 2], n = x->shape[x->ndim - 1], k = m < n ? m : n;
  int q_shape[CORE_MAX_NDIM], r_shape[CORE_MAX_NDIM];
  int ndims[2] = {batch_shape(x, m, k, q_shape), batch_shape(x, k, n, r_shape)};
  const int* shapes[2] = {q_shape, r_shape};
  mlx_dtype dtypes[2] = {x->dtype, x->dtype};
  core_array* outs[2];
  if (build_node(&prim_qr, new_params(false, false, false), x, 2, dtypes, shapes, ndims, s, outs))
    return 1;
  return assign_outputs((mlx_array*[]){res_0, res_1}, outs, 2);
}

/* Hands a node's outputs to a vector (which retains them) and drops our references. */
static int set_vector(mlx_vector_array* res, core_array** outs, int n) {
  mlx_array handles[3];
  for (int i = 0; i < n; i++) handles[i] = core_handle(outs[i]);
  int status = mlx_vector_array_set_data(res, handles, (size_t)n);
  for (int i = 0; i < n; i++) core_array_release(outs[i]);
  return status;
}

int mlx_linalg_svd(mlx_vector_array* res, const mlx_array a, bool compute_uv, const mlx_stream s) {
  core_array* x = ops_arg(a, "svd", "input");
  if (!x || check_matrices_or_complex(x, false, "svd")) return 1;
  if (!res) return util_error("svd: null result pointer");
  int m = x->shape[x->ndim - 2], n = x->shape[x->ndim - 1], k = m < n ? m : n;
  int u_shape[CORE_MAX_NDIM], s_shape[CORE_MAX_NDIM], vt_shape[CORE_MAX_NDIM];
  int ndims[3] = {batch_shape(x, m, m, u_shape), batch_shape(x, k, -1, s_shape),
                  batch_shape(x, n, n, vt_shape)};
  const int* shapes[3] = {u_shape, s_shape, vt_shape};
  /* complex input: real singular values */
  mlx_dtype real = x->dtype == MLX_COMPLEX64 ? MLX_FLOAT32 : x->dtype;
  mlx_dtype dtypes[3] = {x->dtype, real, x->dtype};
  core_array* outs[3];
  int first = compute_uv ? 0 : 1, count = compute_uv ? 3 : 1;
  if (build_node(&prim_svd, new_params(false, false, compute_uv), x, count, dtypes + first,
                 shapes + first, ndims + first, s, outs))
    return 1;
  return set_vector(res, outs, count);
}

static int uplo_upper(const char* UPLO, const char* op, bool* upper) {
  if (!UPLO || (strcmp(UPLO, "L") && strcmp(UPLO, "U")))
    return util_error("%s: UPLO must be \"L\" or \"U\", got %s%s%s", op, UPLO ? "\"" : "",
                      UPLO ? UPLO : "NULL", UPLO ? "\"" : "");
  *upper = UPLO[0] == 'U';
  return 0;
}

/* eigh/eigvalsh (symmetric) and eig/eigvals (general): values (..., N), vectors (..., N, N). */
static int eig_build(mlx_array* values, mlx_array* vectors, mlx_array a, const char* UPLO,
                     bool symmetric, const char* op, mlx_stream s) {
  core_array* x = ops_arg(a, op, "input");
  if (!x || check_matrices_or_complex(x, true, op)) return 1;
  if (!values) return util_error("%s: null result pointer", op);
  bool upper = false;
  if (symmetric && uplo_upper(UPLO, op, &upper)) return 1;
  int n = x->shape[x->ndim - 1];
  int w_shape[CORE_MAX_NDIM], v_shape[CORE_MAX_NDIM];
  int ndims[2] = {batch_shape(x, n, -1, w_shape), batch_shape(x, n, n, v_shape)};
  const int* shapes[2] = {w_shape, v_shape};
  /* eigh: real eigenvalues, vectors of the input's dtype; eig: complex64 throughout */
  mlx_dtype vdtype = symmetric ? x->dtype : MLX_COMPLEX64;
  mlx_dtype wdtype = symmetric && x->dtype == MLX_COMPLEX64 ? MLX_FLOAT32 : vdtype;
  mlx_dtype dtypes[2] = {wdtype, vdtype};
  core_array* outs[2];
  int count = vectors ? 2 : 1;
  if (build_node(symmetric ? &prim_eigh : &prim_eig, new_params(upper, false, vectors != NULL), x,
                 count, dtypes, shapes, ndims, s, outs))
    return 1;
  return assign_outputs((mlx_array*[]){values, vectors}, outs, count);
}

int mlx_linalg_eigh(mlx_array* res_0, mlx_array* res_1, const mlx_array a, const char* UPLO,
                    const mlx_stream s) {
  if (!res_1) return util_error("eigh: null result pointer");
  return eig_build(res_0, res_1, a, UPLO, true, "eigh", s);
}
int mlx_linalg_eigvalsh(mlx_array* res, const mlx_array a, const char* UPLO, const mlx_stream s) {
  return eig_build(res, NULL, a, UPLO, true, "eigvalsh", s);
}
int mlx_linalg_eig(mlx_array* res_0, mlx_array* res_1, const mlx_array a, const mlx_stream s) {
  if (!res_1) return util_error("eig: null result pointer");
  return eig_build(res_0, res_1, a, NULL, false, "eig", s);
}
int mlx_linalg_eigvals(mlx_array* res, const mlx_array a, const mlx_stream s) {
  return eig_build(res, NULL, a, NULL, false, "eigvals", s);
}

/* The lu_factor node: outs = {LU, pivots, row permutation}. */
static int lu_node(core_array* x, mlx_stream s, core_array** outs) {
  int m = x->shape[x->ndim - 2], n = x->shape[x->ndim - 1], k = m < n ? m : n;
  int lu_shape[CORE_MAX_NDIM], piv_shape[CORE_MAX_NDIM], perm_shape[CORE_MAX_NDIM];
  int ndims[3] = {batch_shape(x, m, n, lu_shape), batch_shape(x, k, -1, piv_shape),
                  batch_shape(x, m, -1, perm_shape)};
  const int* shapes[3] = {lu_shape, piv_shape, perm_shape};
  mlx_dtype dtypes[3] = {x->dtype, MLX_UINT32, MLX_UINT32};
  return build_node(&prim_lu_factor, new_params(false, false, false), x, 3, dtypes, shapes, ndims,
                    s, outs);
}

int mlx_linalg_lu_factor(mlx_array* res_0, mlx_array* res_1, const mlx_array a, const mlx_stream s) {
  core_array* x = ops_arg(a, "lu_factor", "input");
  if (!x || check_matrices(x, false, "lu_factor")) return 1;
  if (!res_0 || !res_1) return util_error("lu_factor: null result pointer");
  core_array* outs[3];
  if (lu_node(x, s, outs)) return 1;
  core_array_release(outs[2]);
  return assign_outputs((mlx_array*[]){res_0, res_1}, outs, 2);
}

/* {P, L, U}: L = the strict lower part of LU plus the unit diagonal, cut to (M, K), and U = its
 * upper part cut to (K, N). */
int mlx_linalg_lu(mlx_vector_array* res, const mlx_array a, const mlx_stream s) {
  core_array* x = ops_arg(a, "lu", "input");
  if (!x || check_matrices(x, false, "lu")) return 1;
  if (!res) return util_error("lu: null result pointer");
  core_array* outs[3];
  if (lu_node(x, s, outs)) return 1;
  int nd = x->ndim, m = x->shape[nd - 2], n = x->shape[nd - 1], k = m < n ? m : n;
  mlx_array lu = core_handle(outs[0]), l = mlx_array_new(), u = mlx_array_new();
  mlx_array eye = mlx_array_new();
  int start[CORE_MAX_NDIM] = {0}, l_stop[CORE_MAX_NDIM], u_stop[CORE_MAX_NDIM];
  int step[CORE_MAX_NDIM];
  for (int d = 0; d < nd; d++) {
    l_stop[d] = u_stop[d] = x->shape[d];
    step[d] = 1;
  }
  l_stop[nd - 1] = k;
  u_stop[nd - 2] = k;
  size_t ndz = (size_t)nd;
  int status = mlx_tril(&l, lu, -1, s) || mlx_slice(&l, l, start, ndz, l_stop, ndz, step, ndz, s) ||
               mlx_eye(&eye, m, k, 0, x->dtype, s) || mlx_add(&l, l, eye, s) ||
               mlx_triu(&u, lu, 0, s) || mlx_slice(&u, u, start, ndz, u_stop, ndz, step, ndz, s);
  if (!status) {
    mlx_array result[3] = {core_handle(outs[2]), l, u};
    status = mlx_vector_array_set_data(res, result, 3);
  }
  for (int i = 0; i < 3; i++) core_array_release(outs[i]);
  mlx_array_free(l);
  mlx_array_free(u);
  mlx_array_free(eye);
  return status;
}

/* ---- solves ---- */

/* a (..., N, N) x = b (..., N, R) or (N,), batches broadcast; checks as MLX's validate_solve. */
static int solve_build(mlx_array* res, mlx_array a, mlx_array b, bool triangular, bool upper,
                       const char* op, mlx_stream stream) {
  core_array* x = ops_arg(a, op, "first input");
  core_array* y = x ? ops_arg(b, op, "second input") : NULL;
  if (!y) return 1;
  if (x->ndim < 2)
    return util_error("%s: the first input must have at least 2 dimensions, got %d", op, x->ndim);
  if (y->ndim < 1) return util_error("%s: the second input must have at least 1 dimension", op);
  int n = x->shape[x->ndim - 1];
  if (x->shape[x->ndim - 2] != n)
    return util_error("%s: the first input must be square, got shape (..., %d, %d)", op,
                      x->shape[x->ndim - 2], n);
  int b_rows = y->shape[y->ndim > 1 ? y->ndim - 2 : 0];
  if (b_rows != n)
    return util_error("%s: the matrix has %d columns but the right-hand side has %d rows", op, n,
                      b_rows);
  mlx_dtype dtype = core_promote(x->dtype, y->dtype);
  if (dtype != MLX_FLOAT32 && dtype != MLX_FLOAT64)
    return util_error("%s: inputs must promote to float32 or float64, got %s and %s", op,
                      core_dtype_name(x->dtype), core_dtype_name(y->dtype));
  bool vector = y->ndim == 1;
  int rhs = vector ? 1 : y->shape[y->ndim - 1];
  int batch[CORE_MAX_NDIM], nd;
  if (ops_broadcast_shapes(x->shape, x->ndim - 2, y->shape, vector ? 0 : y->ndim - 2, batch, &nd, op))
    return 1;
  core_stream* s = core_stream_resolve(stream);
  int a_shape[CORE_MAX_NDIM], b_shape[CORE_MAX_NDIM], column[2] = {n, 1};
  memcpy(a_shape, batch, sizeof(int) * (size_t)nd);
  memcpy(b_shape, batch, sizeof(int) * (size_t)nd);
  a_shape[nd] = a_shape[nd + 1] = n;
  b_shape[nd] = n;
  b_shape[nd + 1] = rhs;
  core_array *ca = ops_astype(x, dtype, s), *cb = NULL, *ba = NULL, *bb = NULL, *out = NULL;
  core_array* t = ca ? ops_astype(y, dtype, s) : NULL;
  if (t) cb = vector ? ops_reshape(t, column, 2, s) : (core_array_retain(t), t);
  core_array_release(t);
  if (cb) ba = ops_broadcast_to(ca, a_shape, nd + 2, s);
  if (ba) bb = ops_broadcast_to(cb, b_shape, nd + 2, s);
  linalg_params* params = bb ? new_params(upper, triangular, false) : NULL;
  if (params) {
    core_array* in[2] = {ba, bb};
    out = core_node_single(&prim_solve, params, in, 2, dtype, b_shape, nd + 2, s);
  }
  if (out && vector) { /* drop the column dimension again: (..., N) */
    t = out;
    out = ops_reshape(t, b_shape, nd + 1, s);
    core_array_release(t);
  }
  core_array_release(ca);
  core_array_release(cb);
  core_array_release(ba);
  core_array_release(bb);
  return ops_finish(res, out, op);
}

int mlx_linalg_solve(mlx_array* res, const mlx_array a, const mlx_array b, const mlx_stream s) {
  return solve_build(res, a, b, false, false, "solve", s);
}
int mlx_linalg_solve_triangular(mlx_array* res, const mlx_array a, const mlx_array b, bool upper,
                                const mlx_stream s) {
  return solve_build(res, a, b, true, upper, "solve_triangular", s);
}

/* pinv(A) = V diag(1/S) U^T over the singular values above 10 max(M, N) eps S_max. */
int mlx_linalg_pinv(mlx_array* res, const mlx_array a, const mlx_stream s) {
  core_array* x = ops_arg(a, "pinv", "input");
  if (!x || check_matrices(x, false, "pinv")) return 1;
  if (!res) return util_error("pinv: null result pointer");
  int nd = x->ndim, m = x->shape[nd - 2], n = x->shape[nd - 1], k = m < n ? m : n;
  double eps = x->dtype == MLX_FLOAT32 ? FLT_EPSILON : DBL_EPSILON;
  mlx_vector_array usv = mlx_vector_array_new();
  mlx_array u = mlx_array_new(), sv = mlx_array_new(), v = mlx_array_new();
  mlx_array cutoff = mlx_array_new(), keep = mlx_array_new(), rs = mlx_array_new();
  mlx_array rcond = mlx_array_new_float64(10.0 * (m > n ? m : n) * eps), zero = mlx_array_new_float(0);
  int start[CORE_MAX_NDIM] = {0}, u_stop[CORE_MAX_NDIM], v_stop[CORE_MAX_NDIM], step[CORE_MAX_NDIM];
  for (int d = 0; d < nd; d++) {
    u_stop[d] = v_stop[d] = x->shape[d];
    step[d] = 1;
  }
  u_stop[nd - 1] = k; /* U[..., :, :K] */
  v_stop[nd - 2] = k; /* Vt[..., :K, :] */
  size_t ndz = (size_t)nd;
  int status =
      mlx_linalg_svd(&usv, a, true, s) || mlx_vector_array_get(&u, usv, 0) ||
      mlx_vector_array_get(&sv, usv, 1) || mlx_vector_array_get(&v, usv, 2) ||
      mlx_slice(&u, u, start, ndz, u_stop, ndz, step, ndz, s) || mlx_swapaxes(&u, u, -1, -2, s) ||
      mlx_slice(&v, v, start, ndz, v_stop, ndz, step, ndz, s) || mlx_swapaxes(&v, v, -1, -2, s) ||
      mlx_expand_dims(&sv, sv, -2, s) || mlx_astype(&rcond, rcond, x->dtype, s) ||
      mlx_astype(&zero, zero, x->dtype, s) || mlx_max_axis(&cutoff, sv, -1, true, s) ||
      mlx_multiply(&cutoff, cutoff, rcond, s) || mlx_greater(&keep, sv, cutoff, s) ||
      mlx_reciprocal(&rs, sv, s) || mlx_where(&rs, keep, rs, zero, s) ||
      mlx_multiply(&v, v, rs, s) || mlx_matmul(res, v, u, s);
  mlx_vector_array_free(usv);
  mlx_array arrays[] = {u, sv, v, cutoff, keep, rs, rcond, zero};
  for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) mlx_array_free(arrays[i]);
  return status;
}

/* ---- norms (composed as MLX's linalg::norm) ---- */

/* numpy's float result for a norm: inexact dtypes stay, others promote with float32. */
static mlx_dtype at_least_float(mlx_dtype dtype) {
  return core_dtype_is_inexact(dtype) ? dtype : core_promote(dtype, MLX_FLOAT32);
}

/* sqrt(sum |a|^2) over axes (all when axes is NULL). */
static int l2_norm(mlx_array* res, mlx_array a, const int* axes, size_t n, bool keepdims,
                   mlx_stream s) {
  mlx_array t = mlx_array_new();
  bool complex = mlx_array_dtype(a) == MLX_COMPLEX64;
  int status = (complex ? mlx_abs(&t, a, s) || mlx_square(&t, t, s) : mlx_square(&t, a, s)) ||
               (axes ? mlx_sum_axes(&t, t, axes, n, keepdims, s) : mlx_sum(&t, t, keepdims, s)) ||
               mlx_sqrt(res, t, s);
  mlx_array_free(t);
  return status;
}

static int vector_norm(mlx_array* res, mlx_array a, double ord, int axis, bool keepdims,
                       mlx_stream s) {
  mlx_dtype dtype = at_least_float(mlx_array_dtype(a));
  if (ord == 2.0) return l2_norm(res, a, &axis, 1, keepdims, s);
  mlx_array t = mlx_array_new(), zero = mlx_array_new_int(0);
  mlx_array p = mlx_array_new_float64(ord), inv_p = mlx_array_new_float64(1.0 / ord);
  int status;
  if (ord == 0.0)
    status = mlx_not_equal(&t, a, zero, s) || mlx_sum_axis(&t, t, axis, keepdims, s) ||
             mlx_astype(res, t, dtype, s);
  else if (ord == 1.0)
    status = mlx_abs(&t, a, s) || mlx_sum_axis(&t, t, axis, keepdims, s) ||
             mlx_astype(res, t, dtype, s);
  else if (isinf(ord))
    status = mlx_abs(&t, a, s) ||
             (ord > 0 ? mlx_max_axis(&t, t, axis, keepdims, s) : mlx_min_axis(&t, t, axis, keepdims, s)) ||
             mlx_astype(res, t, dtype, s);
  else
    status = mlx_astype(&p, p, dtype, s) || mlx_astype(&inv_p, inv_p, dtype, s) ||
             mlx_abs(&t, a, s) || mlx_power(&t, t, p, s) ||
             mlx_sum_axis(&t, t, axis, keepdims, s) || mlx_power(res, t, inv_p, s);
  mlx_array_free(t);
  mlx_array_free(zero);
  mlx_array_free(p);
  mlx_array_free(inv_p);
  return status;
}

/* The singular values of a with axes (row, col) moved last: (..., M, N) -> (..., K). */
static int singular_values(mlx_array* res, mlx_array a, int row, int col, mlx_stream s) {
  mlx_array t = mlx_array_new();
  mlx_vector_array sv = mlx_vector_array_new();
  int status = row > col ? mlx_moveaxis(&t, a, row, -1, s) || mlx_moveaxis(&t, t, col, -1, s)
                         : mlx_moveaxis(&t, a, col, -1, s) || mlx_moveaxis(&t, t, row, -2, s);
  status = status || mlx_linalg_svd(&sv, t, false, s) || mlx_vector_array_get(res, sv, 0);
  mlx_array_free(t);
  mlx_vector_array_free(sv);
  return status;
}

/* Reduces the singular values over their last axis and restores the matrix axes as size-1
 * dimensions when keepdims. */
static int singular_norm(mlx_array* res, mlx_array a, int row, int col, int which, bool keepdims,
                         mlx_stream s) {
  mlx_array t = mlx_array_new();
  int sorted[2] = {row < col ? row : col, row < col ? col : row};
  int status = singular_values(&t, a, row, col, s) ||
               (which > 0 ? mlx_max_axis(res, t, -1, false, s)
                          : which < 0 ? mlx_min_axis(res, t, -1, false, s)
                                      : mlx_sum_axis(res, t, -1, false, s)) ||
               (keepdims && mlx_expand_dims_axes(res, *res, sorted, 2, s));
  mlx_array_free(t);
  return status;
}

/* Normalises two matrix axes; errors as ops_axis. */
static int matrix_axes(mlx_array a, const int* axis, int* row, int* col, const char* op) {
  int nd = (int)mlx_array_ndim(a);
  if (ops_axis(axis[0], nd, op, row) || ops_axis(axis[1], nd, op, col)) return 1;
  if (*row == *col) return util_error("%s: the two matrix axes are the same (%d)", op, *row);
  return 0;
}

static int matrix_norm(mlx_array* res, mlx_array a, double ord, const int* axis, bool keepdims,
                       mlx_stream s) {
  int row, col;
  if (matrix_axes(a, axis, &row, &col, "norm")) return 1;
  if (ord == 2.0 || ord == -2.0) return singular_norm(res, a, row, col, ord > 0 ? 1 : -1, keepdims, s);
  if (ord != 1.0 && ord != -1.0 && !isinf(ord))
    return util_error("norm: invalid ord %g for a matrix norm", ord);
  /* +-1: max/min over columns of the column sums; +-inf: over rows of the row sums. */
  bool columns = fabs(ord) == 1.0;
  int sum_axis = columns ? row : col, reduce_axis = columns ? col : row;
  if (!keepdims && reduce_axis > sum_axis) reduce_axis--;
  mlx_dtype dtype = at_least_float(mlx_array_dtype(a));
  mlx_array t = mlx_array_new();
  int status = mlx_abs(&t, a, s) || mlx_sum_axis(&t, t, sum_axis, keepdims, s) ||
               (ord > 0 ? mlx_max_axis(&t, t, reduce_axis, keepdims, s)
                        : mlx_min_axis(&t, t, reduce_axis, keepdims, s)) ||
               mlx_astype(res, t, dtype, s);
  mlx_array_free(t);
  return status;
}

static core_array* norm_input(mlx_array a, mlx_array* res) {
  core_array* x = ops_arg(a, "norm", "input");
  if (x && !res) {
    util_error("norm: null result pointer");
    return NULL;
  }
  return x;
}

int mlx_linalg_norm(mlx_array* res, const mlx_array a, double ord, const int* axis, size_t axis_num,
                    bool keepdims, const mlx_stream s) {
  core_array* x = norm_input(a, res);
  if (!x) return 1;
  int all[2] = {0, 1};
  size_t n = axis ? axis_num : (size_t)x->ndim;
  if (n == 1) return vector_norm(res, a, ord, axis ? axis[0] : 0, keepdims, s);
  if (n == 2) return matrix_norm(res, a, ord, axis ? axis : all, keepdims, s);
  return util_error("norm: a norm of order %g takes 1 or 2 axes, got %zu", ord, n);
}

int mlx_linalg_norm_matrix(mlx_array* res, const mlx_array a, const char* ord, const int* axis,
                           size_t axis_num, bool keepdims, const mlx_stream s) {
  core_array* x = norm_input(a, res);
  if (!x) return 1;
  if (!ord) return util_error("norm: ord must not be NULL");
  int all[2] = {0, 1};
  size_t n = axis ? axis_num : (size_t)x->ndim;
  if (n != 2)
    return util_error("norm: norm '%s' is only supported for matrices, but got %zu axes", ord, n);
  const int* axes = axis ? axis : all;
  int row, col;
  if (matrix_axes(a, axes, &row, &col, "norm")) return 1;
  if (!strcmp(ord, "f") || !strcmp(ord, "fro")) return l2_norm(res, a, axes, 2, keepdims, s);
  if (!strcmp(ord, "nuc")) return singular_norm(res, a, row, col, 0, keepdims, s);
  return util_error("norm: invalid ord '%s' for a matrix norm", ord);
}

int mlx_linalg_norm_l2(mlx_array* res, const mlx_array a, const int* axis, size_t axis_num,
                       bool keepdims, const mlx_stream s) {
  core_array* x = norm_input(a, res);
  if (!x) return 1;
  if (axis && axis_num > 2) return util_error("norm: received too many axes (%zu)", axis_num);
  if (axis) return l2_norm(res, a, axis, axis_num, keepdims, s);
  /* MLX flattens first, so keepdims gives shape (1,). */
  mlx_array flat = mlx_array_new();
  int zero = 0;
  int status = mlx_flatten(&flat, a, 0, -1, s) || l2_norm(res, flat, &zero, 1, keepdims, s);
  mlx_array_free(flat);
  return status;
}

/* ---- cross product ---- */

static int cross_check(const core_array* x, int axis) {
  if (axis >= x->ndim || axis + x->ndim < 0)
    return util_error("cross: axis %d is invalid for an array with %d dimensions", axis, x->ndim);
  int size = x->shape[axis < 0 ? axis + x->ndim : axis];
  if (size != 2 && size != 3)
    return util_error("cross: the axis must have size 2 or 3, got %d", size);
  return 0;
}

/* a x b with 2-vectors read as (x, y, 0): components c0 = a1 b2 - a2 b1, c1 = a2 b0 - a0 b2,
 * c2 = a0 b1 - a1 b0, concatenated along the axis. */
int mlx_linalg_cross(mlx_array* res, const mlx_array a, const mlx_array b, int axis,
                     const mlx_stream s) {
  core_array* x = ops_arg(a, "cross", "first input");
  core_array* y = x ? ops_arg(b, "cross", "second input") : NULL;
  if (!y || cross_check(x, axis) || cross_check(y, axis)) return 1;
  if (!res) return util_error("cross: null result pointer");
  mlx_vector_array parts_a = mlx_vector_array_new(), parts_b = mlx_vector_array_new();
  mlx_array comp[6], out[3], t = mlx_array_new();
  for (int i = 0; i < 6; i++) comp[i] = mlx_array_new();
  for (int i = 0; i < 3; i++) out[i] = mlx_array_new();
  int na = x->shape[axis < 0 ? axis + x->ndim : axis], nb = y->shape[axis < 0 ? axis + y->ndim : axis];
  /* Missing z components are zeros shaped like the x component (broadcasting does the rest). */
  int status = mlx_split(&parts_a, a, na, axis, s) || mlx_split(&parts_b, b, nb, axis, s);
  for (int i = 0; i < 3 && !status; i++) {
    status = i < na ? mlx_vector_array_get(&comp[i], parts_a, (size_t)i)
                    : mlx_vector_array_get(&t, parts_a, 0) || mlx_zeros_like(&comp[i], t, s);
    status = status || (i < nb ? mlx_vector_array_get(&comp[3 + i], parts_b, (size_t)i)
                               : mlx_vector_array_get(&t, parts_b, 0) ||
                                     mlx_zeros_like(&comp[3 + i], t, s));
  }
  const mlx_array *a_ = comp, *b_ = comp + 3;
  for (int i = 0; i < 3 && !status; i++) {
    int j = (i + 1) % 3, k = (i + 2) % 3;
    status = mlx_multiply(&out[i], a_[j], b_[k], s) || mlx_multiply(&t, a_[k], b_[j], s) ||
             mlx_subtract(&out[i], out[i], t, s);
  }
  if (!status) {
    mlx_vector_array all = mlx_vector_array_new_data(out, 3);
    status = mlx_concatenate_axis(res, all, axis, s);
    mlx_vector_array_free(all);
  }
  for (int i = 0; i < 6; i++) mlx_array_free(comp[i]);
  for (int i = 0; i < 3; i++) mlx_array_free(out[i]);
  mlx_array_free(t);
  mlx_vector_array_free(parts_a);
  mlx_vector_array_free(parts_b);
  return status;
}
