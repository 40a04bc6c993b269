/* Constructors of the creation ops: filled arrays, ranges, triangular patterns, meshgrid,
 * diagonals and window functions. Filled arrays are copies of a broadcast scalar; arange,
 * linspace, eye/tri/tril/triu and windows have kernels in backend/cpu/creation.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mlx/c/ops.h"
#include "ops/codes.h"
#include "ops/creation_params.h"
#include "ops/layout.h"
#include "ops/ops_common.h"
#include "ops/primitives.h"
#include "ops/shape_params.h"

static int check_shape(const int* shape, size_t ndim, const char* op) {
  if (ndim > CORE_MAX_NDIM) return util_error("%s: at most %d dimensions", op, CORE_MAX_NDIM);
  if (ndim && !shape) return util_error("%s: null shape", op);
  for (size_t i = 0; i < ndim; i++)
    if (shape[i] < 0) return util_error("%s: invalid dimension %d", op, shape[i]);
  return 0;
}

/* A new row-major array of `shape` holding `value` (broadcast to it) as dtype. */
static core_array* filled(core_array* value, const int* shape, int ndim, mlx_dtype dtype, core_stream* s,
                          const char* op) {
  int bshape[CORE_MAX_NDIM], bndim;
  if (ops_broadcast_shapes(value->shape, value->ndim, shape, ndim, bshape, &bndim, op)) return NULL;
  if (bndim != ndim || memcmp(bshape, shape, sizeof(int) * (size_t)ndim)) {
    util_error("%s: the values cannot be broadcast to the requested shape", op);
    return NULL;
  }
  core_array* cast = ops_astype(value, dtype, s);
  core_array* wide = cast ? ops_broadcast_to(cast, shape, ndim, s) : NULL;
  core_array* out = wide ? core_node_single(&prim_copy, NULL, &wide, 1, dtype, shape, ndim, s) : NULL;
  core_array_release(cast);
  core_array_release(wide);
  return out;
}

/* The same for a number. */
static core_array* filled_with(double v, const int* shape, int ndim, mlx_dtype dtype, core_stream* s,
                               const char* op) {
  mlx_array value = mlx_array_new_float64(v);
  if (!value.ctx) return NULL;
  core_array* out = filled(core_ctx(value), shape, ndim, dtype, s, op);
  mlx_array_free(value);
  return out;
}

static int number_array(mlx_array* res, const int* shape, size_t ndim, double v, mlx_dtype dtype,
                        mlx_stream s, const char* op) {
  if (check_shape(shape, ndim, op)) return 1;
  if (!core_dtype_valid(dtype)) return util_error("%s: invalid dtype %d", op, (int)dtype);
  int dims[CORE_MAX_NDIM] = {0};
  if (ndim) memcpy(dims, shape, sizeof(int) * ndim);
  return ops_finish(res, filled_with(v, dims, (int)ndim, dtype, core_stream_resolve(s), op), op);
}

int mlx_zeros(mlx_array* res, const int* shape, size_t shape_num, mlx_dtype dtype, const mlx_stream s) {
  return number_array(res, shape, shape_num, 0, dtype, s, "zeros");
}

int mlx_ones(mlx_array* res, const int* shape, size_t shape_num, mlx_dtype dtype, const mlx_stream s) {
  return number_array(res, shape, shape_num, 1, dtype, s, "ones");
}

int mlx_full(mlx_array* res, const int* shape, size_t shape_num, const mlx_array vals, mlx_dtype dtype,
             const mlx_stream s) {
  core_array* v = ops_arg(vals, "full", "values");
  if (!v || check_shape(shape, shape_num, "full")) return 1;
  if (!core_dtype_valid(dtype)) return util_error("full: invalid dtype %d", (int)dtype);
  int dims[CORE_MAX_NDIM] = {0};
  if (shape_num) memcpy(dims, shape, sizeof(int) * shape_num);
  return ops_finish(res, filled(v, dims, (int)shape_num, dtype, core_stream_resolve(s), "full"), "full");
}

int mlx_zeros_like(mlx_array* res, const mlx_array a, const mlx_stream s) {
  core_array* x = ops_arg(a, "zeros_like", "input");
  if (!x) return 1;
  return ops_finish(res, filled_with(0, x->shape, x->ndim, x->dtype, core_stream_resolve(s), "zeros_like"),
                    "zeros_like");
}

int mlx_ones_like(mlx_array* res, const mlx_array a, const mlx_stream s) {
  core_array* x = ops_arg(a, "ones_like", "input");
  if (!x) return 1;
  return ops_finish(res, filled_with(1, x->shape, x->ndim, x->dtype, core_stream_resolve(s), "ones_like"),
                    "ones_like");
}

int mlx_full_like(mlx_array* res, const mlx_array a, const mlx_array vals, mlx_dtype dtype, const mlx_stream s) {
  core_array* x = ops_arg(a, "full_like", "input");
  core_array* v = x ? ops_arg(vals, "full_like", "values") : NULL;
  if (!v) return 1;
  if (!core_dtype_valid(dtype)) return util_error("full_like: invalid dtype %d", (int)dtype);
  return ops_finish(res, filled(v, x->shape, x->ndim, dtype, core_stream_resolve(s), "full_like"), "full_like");
}

/* ---- ranges ---- */

/* ceil((stop - start) / step) elements start, start + step, ... computed as start + i * step
 * (MLX accumulates; this does not drift). */
int mlx_arange(mlx_array* res, double start, double stop, double step, mlx_dtype dtype, const mlx_stream s) {
  if (!core_dtype_valid(dtype)) return util_error("arange: invalid dtype %d", (int)dtype);
  if (dtype == MLX_BOOL) return util_error("arange: cannot make a bool range");
  double len = ceil((stop - start) / step);
  if (isnan(len) || isinf(len))
    return util_error("arange: cannot compute the length of [%g, %g) in steps of %g", start, stop, step);
  if (len > INT32_MAX) return util_error("arange: %g elements is more than the maximum %d", len, INT32_MAX);
  int n = len > 0 ? (int)len : 0;
  arange_params* p = malloc(sizeof *p);
  if (!p) return util_error("out of memory");
  p->start = start;
  p->step = step;
  return ops_finish(res, core_node_single(&prim_arange, p, NULL, 0, dtype, &n, 1, core_stream_resolve(s)),
                    "arange");
}

/* num evenly spaced values from start to stop, both included; num == 1 gives [start]. */
int mlx_linspace(mlx_array* res, double start, double stop, int num, mlx_dtype dtype, const mlx_stream s) {
  if (!core_dtype_valid(dtype)) return util_error("linspace: invalid dtype %d", (int)dtype);
  if (num < 0) return util_error("linspace: the number of samples must be non-negative (got %d)", num);
  linspace_params* p = malloc(sizeof *p);
  if (!p) return util_error("out of memory");
  p->start = start;
  p->stop = stop;
  return ops_finish(res, core_node_single(&prim_linspace, p, NULL, 0, dtype, &num, 1, core_stream_resolve(s)),
                    "linspace");
}

/* ---- triangular patterns ---- */

static int triangle(mlx_array* res, const core_op* op, core_array* x, int n, int m, int k, mlx_dtype dtype,
                    mlx_stream s) {
  triangle_params* p = malloc(sizeof *p);
  if (!p) return util_error("out of memory");
  p->k = k;
  int shape[2] = {n, m};
  core_array* out = x ? core_node_single(op, p, &x, 1, x->dtype, x->shape, x->ndim, core_stream_resolve(s))
                      : core_node_single(op, p, NULL, 0, dtype, shape, 2, core_stream_resolve(s));
  return ops_finish(res, out, op->name);
}

static int matrix_pattern(mlx_array* res, const core_op* op, int n, int m, int k, mlx_dtype dtype, mlx_stream s) {
  if (n < 0 || m < 0) return util_error("%s: dimensions must be non-negative (got %d, %d)", op->name, n, m);
  if (!core_dtype_valid(dtype)) return util_error("%s: invalid dtype %d", op->name, (int)dtype);
  return triangle(res, op, NULL, n, m, k, dtype, s);
}

int mlx_eye(mlx_array* res, int n, int m, int k, mlx_dtype dtype, const mlx_stream s) {
  return matrix_pattern(res, &prim_eye, n, m, k, dtype, s);
}

int mlx_identity(mlx_array* res, int n, mlx_dtype dtype, const mlx_stream s) {
  return matrix_pattern(res, &prim_eye, n, n, 0, dtype, s);
}

int mlx_tri(mlx_array* res, int n, int m, int k, mlx_dtype type, const mlx_stream s) {
  return matrix_pattern(res, &prim_tri, n, m, k, type, s);
}

static int masked_triangle(mlx_array* res, const core_op* op, mlx_array a, int k, mlx_stream s) {
  core_array* x = ops_arg(a, op->name, "input");
  if (!x) return 1;
  if (x->ndim < 2) return util_error("%s: the input needs at least 2 dimensions (has %d)", op->name, x->ndim);
  return triangle(res, op, x, 0, 0, k, x->dtype, s);
}

int mlx_tril(mlx_array* res, const mlx_array x, int k, const mlx_stream s) {
  return masked_triangle(res, &prim_tril, x, k, s);
}

int mlx_triu(mlx_array* res, const mlx_array x, int k, const mlx_stream s) {
  return masked_triangle(res, &prim_triu, x, k, s);
}

/* ---- meshgrid ---- */

/* Array i (flattened) lies along dim i of the result ("ij"); "xy" swaps the first two dims. */
int mlx_meshgrid(mlx_vector_array* res, const mlx_vector_array arrays, bool sparse, const char* indexing,
                 const mlx_stream s) {
  bool xy = !indexing || !strcmp(indexing, "xy");
  if (!xy && strcmp(indexing, "ij")) return util_error("meshgrid: indexing must be \"xy\" or \"ij\"");
  size_t n = mlx_vector_array_size(arrays);
  if (!arrays.ctx) return util_error("meshgrid: empty vector of arrays");
  if (n > CORE_MAX_NDIM) return util_error("meshgrid: at most %d arrays", CORE_MAX_NDIM);
  mlx_array lines[CORE_MAX_NDIM] = {{NULL}};
  mlx_vector_array shaped = mlx_vector_array_new();
  int status = shaped.ctx ? 0 : 1;
  for (size_t i = 0; !status && i < n; i++) {
    mlx_array a = mlx_array_new();
    status = mlx_vector_array_get(&a, arrays, i);
    if (!status && !a.ctx) status = util_error("meshgrid: array %zu is empty", i);
    int shape[CORE_MAX_NDIM];
    for (size_t d = 0; d < n; d++) shape[d] = 1;
    size_t dim = xy && n > 1 && i < 2 ? 1 - i : i;
    if (!status) {
      shape[dim] = (int)core_ctx(a)->size;
      status = mlx_reshape(&lines[i], a, shape, n, s);
    }
    mlx_array_free(a);
  }
  if (!status) status = mlx_vector_array_set_data(&shaped, lines, n);
  if (!status) status = sparse ? mlx_vector_array_set(res, shaped) : mlx_broadcast_arrays(res, shaped, s);
  for (size_t i = 0; i < n; i++) mlx_array_free(lines[i]);
  mlx_vector_array_free(shaped);
  return status;
}

/* ---- diagonals ---- */

int mlx_diagonal(mlx_array* res, const mlx_array a, int offset, int axis1, int axis2, const mlx_stream s) {
  core_array* x = ops_arg(a, "diagonal", "input");
  if (!x) return 1;
  if (x->ndim < 2) return util_error("diagonal: the input needs at least 2 dimensions (has %d)", x->ndim);
  int a1, a2;
  if (ops_axis(axis1, x->ndim, "diagonal", &a1) || ops_axis(axis2, x->ndim, "diagonal", &a2)) return 1;
  if (a1 == a2) return util_error("diagonal: axis1 and axis2 must differ (both are %d)", a1);
  int64_t n1 = x->shape[a1], n2 = x->shape[a2];
  int64_t len = offset >= 0 ? (n1 < n2 - offset ? n1 : n2 - offset) : (n1 + offset < n2 ? n1 + offset : n2);
  int shape[CORE_MAX_NDIM], ndim = 0;
  for (int i = 0; i < x->ndim; i++)
    if (i != a1 && i != a2) shape[ndim++] = x->shape[i];
  shape[ndim++] = len > 0 ? (int)len : 0;
  diagonal_params* p = malloc(sizeof *p);
  if (!p) return util_error("out of memory");
  *p = (diagonal_params){offset, a1, a2};
  return ops_finish(res, core_node_single(&prim_diagonal, p, &x, 1, x->dtype, shape, ndim,
                                          core_stream_resolve(s)), "diagonal");
}

/* 1-D input: an (n + |k|)-square matrix with the input on diagonal k, built as a strided slice
 * update of a flat zero array. 2-D input: its diagonal k. */
int mlx_diag(mlx_array* res, const mlx_array a, int k, const mlx_stream s) {
  core_array* x = ops_arg(a, "diag", "input");
  if (!x) return 1;
  if (x->ndim == 2) return mlx_diagonal(res, a, k, 0, 1, s);
  if (x->ndim != 1) return util_error("diag: the input must have 1 or 2 dimensions (has %d)", x->ndim);
  int64_t n = x->shape[0], side = n + (k < 0 ? -(int64_t)k : k);
  if (side * side > INT32_MAX) return util_error("diag: the result is too large");
  int flat_len = (int)(side * side), square[2] = {(int)side, (int)side};
  int start = k >= 0 ? k : (int)(-(int64_t)k * side), step = (int)side + 1;
  int stop = (int)(start + n * step);
  mlx_array flat = mlx_array_new(), updated = mlx_array_new();
  int status = mlx_zeros(&flat, &flat_len, 1, x->dtype, s);
  if (!status) status = mlx_slice_update(&updated, flat, a, &start, 1, &stop, 1, &step, 1, s);
  if (!status) status = mlx_reshape(res, updated, square, 2, s);
  mlx_array_free(flat);
  mlx_array_free(updated);
  return status;
}

/* ---- windows ---- */

static int window(mlx_array* res, const core_op* op, int M, mlx_stream s) {
  int n = M > 0 ? M : 0;
  return ops_finish(res, core_node_single(op, NULL, NULL, 0, MLX_FLOAT32, &n, 1, core_stream_resolve(s)), op->name);
}

int mlx_hamming(mlx_array* res, int M, const mlx_stream s) { return window(res, &prim_hamming, M, s); }
int mlx_hanning(mlx_array* res, int M, const mlx_stream s) { return window(res, &prim_hanning, M, s); }
int mlx_bartlett(mlx_array* res, int M, const mlx_stream s) { return window(res, &prim_bartlett, M, s); }
int mlx_blackman(mlx_array* res, int M, const mlx_stream s) { return window(res, &prim_blackman, M, s); }

/* ---- trace ---- */

/* The sum of diagonal `offset` over axes axis1 and axis2, computed in dtype (as MLX). */
int mlx_trace(mlx_array* res, const mlx_array a, int offset, int axis1, int axis2, mlx_dtype dtype,
              const mlx_stream s) {
  if (!core_dtype_valid(dtype)) return util_error("trace: invalid dtype %d", (int)dtype);
  mlx_array diag = mlx_array_new(), cast = mlx_array_new();
  int status = mlx_diagonal(&diag, a, offset, axis1, axis2, s);
  if (!status) status = mlx_astype(&cast, diag, dtype, s);
  if (!status) status = mlx_sum_axis(res, cast, -1, false, s);
  mlx_array_free(diag);
  mlx_array_free(cast);
  return status;
}
