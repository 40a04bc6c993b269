/* Constructors of the linear-algebra basics: matmul and addmm (one primitive, backend/cpu/
 * matmul.c), and inner, outer, tensordot composed from it as MLX composes them. */
#include <stdlib.h>
#include <string.h>

#include "mlx/c/ops.h"
#include "ops/binary.h"
#include "ops/layout.h"
#include "ops/matmul_params.h"
#include "ops/primitives.h"

static int64_t shape_product(const int* shape, int n) {
  int64_t p = 1;
  for (int i = 0; i < n; i++) p *= shape[i];
  return p;
}

/* a @ b, or alpha * (a @ b) + beta * c when c is given (addmm). numpy's rules: a 1-D a is a row,
 * a 1-D b a column (the inserted dimension is removed again), batch dimensions broadcast.
 * Returns a new reference or NULL (error reported). */
static core_array* matmul_build(core_array* a, core_array* b, core_array* c, float alpha, float beta,
                                const char* op, core_stream* s) {
  if (a->ndim == 0 || b->ndim == 0) {
    util_error("%s: got a 0-dimensional input; inputs must have at least one dimension", op);
    return NULL;
  }
  mlx_dtype dtype = core_promote(a->dtype, b->dtype);
  if (c) dtype = core_promote(dtype, c->dtype);
  if (!core_dtype_is_inexact(dtype)) {
    util_error("%s: only floating point and complex types are supported, but the inputs (%s, %s) "
               "promote to %s", op, core_dtype_name(a->dtype), core_dtype_name(b->dtype),
               core_dtype_name(dtype));
    return NULL;
  }
  int a2[CORE_MAX_NDIM], b2[CORE_MAX_NDIM], out[CORE_MAX_NDIM];
  int and = a->ndim == 1 ? 2 : a->ndim, bnd = b->ndim == 1 ? 2 : b->ndim;
  if (a->ndim == 1) { a2[0] = 1; a2[1] = a->shape[0]; } else memcpy(a2, a->shape, sizeof(int) * (size_t)and);
  if (b->ndim == 1) { b2[0] = b->shape[0]; b2[1] = 1; } else memcpy(b2, b->shape, sizeof(int) * (size_t)bnd);
  if (a2[and - 1] != b2[bnd - 2]) {
    util_error("%s: last dimension of the first input (%d) must match the second to last "
               "dimension of the second input (%d)", op, a2[and - 1], b2[bnd - 2]);
    return NULL;
  }
  int nd;
  if (ops_broadcast_shapes(a2, and - 2, b2, bnd - 2, out, &nd, op)) return NULL;
  out[nd] = a2[and - 2];
  out[nd + 1] = b2[bnd - 1];
  nd += 2;
  core_array *ca = NULL, *cb = NULL, *cc = NULL, *mm = NULL, *res = NULL;
  matmul_params* params = NULL;
  core_array* t = ops_astype(a, dtype, s);
  if (t) ca = ops_reshape(t, a2, and, s);
  core_array_release(t);
  t = ca ? ops_astype(b, dtype, s) : NULL;
  if (t) cb = ops_reshape(t, b2, bnd, s);
  core_array_release(t);
  if (!cb) goto cleanup;
  if (c) {
    int cs[CORE_MAX_NDIM], cnd;
    if (ops_broadcast_shapes(c->shape, c->ndim, out, nd, cs, &cnd, op)) goto cleanup;
    if (cnd != nd || memcmp(cs, out, sizeof(int) * (size_t)nd)) {
      util_error("%s: c cannot be broadcast to the shape of a @ b", op);
      goto cleanup;
    }
    t = ops_astype(c, dtype, s);
    cc = t ? ops_broadcast_to(t, out, nd, s) : NULL;
    core_array_release(t);
    if (!cc) goto cleanup;
    params = malloc(sizeof *params);
    if (!params) {
      util_error("out of memory");
      goto cleanup;
    }
    *params = (matmul_params){alpha, beta};
    core_array* in[3] = {ca, cb, cc};
    mm = core_node_single(&prim_addmm, params, in, 3, dtype, out, nd, s);
  } else {
    core_array* in[2] = {ca, cb};
    mm = core_node_single(&prim_matmul, NULL, in, 2, dtype, out, nd, s);
  }
  if (!mm) goto cleanup;
  /* Drop the dimensions inserted for 1-D operands. */
  int fin[CORE_MAX_NDIM], fnd = nd - 2;
  memcpy(fin, out, sizeof(int) * (size_t)fnd);
  if (a->ndim > 1) fin[fnd++] = out[nd - 2];
  if (b->ndim > 1) fin[fnd++] = out[nd - 1];
  res = ops_reshape(mm, fin, fnd, s);
cleanup:
  core_array_release(ca);
  core_array_release(cb);
  core_array_release(cc);
  core_array_release(mm);
  return res;
}

int mlx_matmul(mlx_array* res, const mlx_array a, const mlx_array b, const mlx_stream s) {
  core_array* x = ops_arg(a, "matmul", "first input");
  core_array* y = x ? ops_arg(b, "matmul", "second input") : NULL;
  if (!y) return 1;
  return ops_finish(res, matmul_build(x, y, NULL, 1, 0, "matmul", core_stream_resolve(s)), "matmul");
}

int mlx_addmm(mlx_array* res, const mlx_array c, const mlx_array a, const mlx_array b, float alpha,
              float beta, const mlx_stream s) {
  core_array* z = ops_arg(c, "addmm", "c");
  core_array* x = z ? ops_arg(a, "addmm", "a") : NULL;
  core_array* y = x ? ops_arg(b, "addmm", "b") : NULL;
  if (!y) return 1;
  return ops_finish(res, matmul_build(x, y, z, alpha, beta, "addmm", core_stream_resolve(s)), "addmm");
}

/* Contracts axes_a of a with axes_b of b: moves them last in a and first in b, flattens both to
 * matrices, multiplies, and restores the free dimensions (a's then b's). */
static core_array* tensordot_build(core_array* a, core_array* b, const int* axes_a,
                                   const int* axes_b, int n, const char* op, core_stream* s) {
  bool used_a[CORE_MAX_NDIM] = {false}, used_b[CORE_MAX_NDIM] = {false};
  int perm_a[CORE_MAX_NDIM], perm_b[CORE_MAX_NDIM], ca[CORE_MAX_NDIM], cb[CORE_MAX_NDIM];
  for (int i = 0; i < n; i++) {
    if (ops_axis(axes_a[i], a->ndim, op, &ca[i]) || ops_axis(axes_b[i], b->ndim, op, &cb[i]))
      return NULL;
    if (used_a[ca[i]] || used_b[cb[i]]) {
      util_error("%s: repeated axis", op);
      return NULL;
    }
    used_a[ca[i]] = used_b[cb[i]] = true;
    if (a->shape[ca[i]] != b->shape[cb[i]]) {
      util_error("%s: contracted dimensions differ (%d vs %d)", op, a->shape[ca[i]], b->shape[cb[i]]);
      return NULL;
    }
  }
  int out[CORE_MAX_NDIM], nd = 0, fa = 0, fb = 0;
  if (a->ndim + b->ndim - 2 * n > CORE_MAX_NDIM) {
    util_error("%s: the result would have more than %d dimensions", op, CORE_MAX_NDIM);
    return NULL;
  }
  for (int i = 0; i < a->ndim; i++)
    if (!used_a[i]) { perm_a[fa++] = i; out[nd++] = a->shape[i]; }
  for (int i = 0; i < b->ndim; i++)
    if (!used_b[i]) { perm_b[n + fb++] = i; out[nd++] = b->shape[i]; }
  for (int i = 0; i < n; i++) {
    perm_a[fa + i] = ca[i];
    perm_b[i] = cb[i];
  }
  int64_t contracted = 1;
  for (int i = 0; i < n; i++) contracted *= a->shape[ca[i]];
  int ma[2] = {(int)shape_product(out, fa), (int)contracted};
  int mb[2] = {(int)contracted, (int)shape_product(out + fa, fb)};
  core_array *ta = ops_transpose(a, perm_a, s), *tb = NULL, *ra = NULL, *rb = NULL, *mm = NULL;
  core_array* res = NULL;
  if (ta) tb = ops_transpose(b, perm_b, s);
  if (tb) ra = ops_reshape(ta, ma, 2, s);
  if (ra) rb = ops_reshape(tb, mb, 2, s);
  if (rb) mm = matmul_build(ra, rb, NULL, 1, 0, op, s);
  if (mm) res = ops_reshape(mm, out, nd, s);
  core_array_release(ta);
  core_array_release(tb);
  core_array_release(ra);
  core_array_release(rb);
  core_array_release(mm);
  return res;
}

int mlx_tensordot(mlx_array* res, const mlx_array a, const mlx_array b, const int* axes_a,
                  size_t axes_a_num, const int* axes_b, size_t axes_b_num, const mlx_stream s) {
  core_array* x = ops_arg(a, "tensordot", "first input");
  core_array* y = x ? ops_arg(b, "tensordot", "second input") : NULL;
  if (!y) return 1;
  if (axes_a_num != axes_b_num)
    return util_error("tensordot: axes_a and axes_b must have the same length (%zu vs %zu)",
                      axes_a_num, axes_b_num);
  if ((axes_a_num && (!axes_a || !axes_b)) || axes_a_num > CORE_MAX_NDIM)
    return util_error("tensordot: invalid axes");
  return ops_finish(res, tensordot_build(x, y, axes_a, axes_b, (int)axes_a_num, "tensordot",
                                         core_stream_resolve(s)), "tensordot");
}

int mlx_tensordot_axis(mlx_array* res, const mlx_array a, const mlx_array b, int axis,
                       const mlx_stream s) {
  core_array* x = ops_arg(a, "tensordot", "first input");
  core_array* y = x ? ops_arg(b, "tensordot", "second input") : NULL;
  if (!y) return 1;
  if (axis < 0 || axis > x->ndim || axis > y->ndim)
    return util_error("tensordot: axis %d must be in [0, min(%d, %d)]", axis, x->ndim, y->ndim);
  int axes_a[CORE_MAX_NDIM], axes_b[CORE_MAX_NDIM];
  for (int i = 0; i < axis; i++) {
    axes_a[i] = x->ndim - axis + i;
    axes_b[i] = i;
  }
  return ops_finish(res, tensordot_build(x, y, axes_a, axes_b, axis, "tensordot",
                                         core_stream_resolve(s)), "tensordot");
}

int mlx_inner(mlx_array* res, const mlx_array a, const mlx_array b, const mlx_stream s) {
  core_array* x = ops_arg(a, "inner", "first input");
  core_array* y = x ? ops_arg(b, "inner", "second input") : NULL;
  if (!y) return 1;
  core_stream* st = core_stream_resolve(s);
  if (x->ndim == 0 || y->ndim == 0)
    return ops_finish(res, ops_binary_rule(&prim_multiply, x, y, BINARY_SAME, st), "inner");
  if (x->shape[x->ndim - 1] != y->shape[y->ndim - 1])
    return util_error("inner: last dimensions differ (%d vs %d)", x->shape[x->ndim - 1],
                      y->shape[y->ndim - 1]);
  int last = -1;
  return ops_finish(res, tensordot_build(x, y, &last, &last, 1, "inner", st), "inner");
}

int mlx_outer(mlx_array* res, const mlx_array a, const mlx_array b, const mlx_stream s) {
  core_array* x = ops_arg(a, "outer", "first input");
  core_array* y = x ? ops_arg(b, "outer", "second input") : NULL;
  if (!y) return 1;
  core_stream* st = core_stream_resolve(s);
  int col[2] = {(int)x->size, 1}, row[1] = {(int)y->size};
  core_array* cx = ops_reshape(x, col, 2, st);
  core_array* ry = cx ? ops_reshape(y, row, 1, st) : NULL;
  core_array* out = ry ? ops_binary_rule(&prim_multiply, cx, ry, BINARY_SAME, st) : NULL;
  core_array_release(cx);
  core_array_release(ry);
  return ops_finish(res, out, "outer");
}
