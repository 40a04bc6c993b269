/* Elementwise ops that are not a single unary or binary kernel: where (select), clip, nan_to_num,
 * divmod (one node, two outputs), and the comparisons built from several nodes as MLX builds
 * them: isclose, allclose, array_equal. */
#include <float.h>
#include <stdlib.h>

#include "backend/cpu/elementwise.h"
#include "mlx/c/ops.h"
#include "ops/binary.h"
#include "ops/codes.h"
#include "ops/primitives.h"
#include "ops/unary.h"
#include "ops/unary_params.h"

int mlx_where(mlx_array* res, const mlx_array condition, const mlx_array x, const mlx_array y,
              const mlx_stream s) {
  core_array* c = ops_arg(condition, "where", "condition");
  core_array* a = c ? ops_arg(x, "where", "x") : NULL;
  core_array* b = a ? ops_arg(y, "where", "y") : NULL;
  if (!b) return 1;
  int ab[CORE_MAX_NDIM], shape[CORE_MAX_NDIM], ab_ndim, ndim;
  if (ops_broadcast_shapes(a->shape, a->ndim, b->shape, b->ndim, ab, &ab_ndim, "where") ||
      ops_broadcast_shapes(c->shape, c->ndim, ab, ab_ndim, shape, &ndim, "where"))
    return 1;
  core_stream* st = core_stream_resolve(s);
  mlx_dtype t = core_promote(a->dtype, b->dtype);
  core_array* in[3] = {ops_astype(c, MLX_BOOL, st), NULL, NULL};
  if (in[0]) in[1] = ops_astype(a, t, st);
  if (in[1]) in[2] = ops_astype(b, t, st);
  core_array* out = in[2] ? core_node_single(&prim_select, NULL, in, 3, t, shape, ndim, st) : NULL;
  for (int i = 0; i < 3; i++) core_array_release(in[i]);
  return ops_finish(res, out, "where");
}

/* minimum(maximum(a, a_min), a_max); either bound may be an empty handle, not both. */
int mlx_clip(mlx_array* res, const mlx_array a, const mlx_array a_min, const mlx_array a_max,
             const mlx_stream s) {
  core_array* x = ops_arg(a, "clip", "input");
  if (!x) return 1;
  if (!a_min.ctx && !a_max.ctx) return util_error("clip: a_min and a_max cannot both be empty");
  core_stream* st = core_stream_resolve(s);
  core_array* out = x;
  core_array_retain(out);
  if (a_min.ctx) {
    core_array* next = ops_binary_rule(&prim_maximum, out, core_ctx(a_min), BINARY_SAME, st);
    core_array_release(out);
    out = next;
  }
  if (out && a_max.ctx) {
    core_array* next = ops_binary_rule(&prim_minimum, out, core_ctx(a_max), BINARY_SAME, st);
    core_array_release(out);
    out = next;
  }
  return ops_finish(res, out, "clip");
}

static double max_finite(mlx_dtype t) {
  switch (t) {
    case MLX_FLOAT16: return 65504.0;
    case MLX_BFLOAT16: return 3.3895313892515355e38;
    case MLX_FLOAT32: return FLT_MAX;
    default: return DBL_MAX;
  }
}

/* NaN -> nan, +inf -> posinf (default: the dtype's largest finite value), -inf -> neginf
 * (default: its lowest). Integer arrays come back unchanged. */
int mlx_nan_to_num(mlx_array* res, const mlx_array a, float nan, mlx_optional_float posinf,
                   mlx_optional_float neginf, const mlx_stream s) {
  core_array* x = ops_arg(a, "nan_to_num", "input");
  if (!x) return 1;
  if (!core_dtype_is_inexact(x->dtype)) {
    core_array_retain(x);
    return ops_finish(res, x, "nan_to_num");
  }
  unary_params* p = malloc(sizeof *p);
  if (!p) return util_error("nan_to_num: out of memory");
  p->nan = nan;
  p->posinf = posinf.has_value ? posinf.value : max_finite(x->dtype);
  p->neginf = neginf.has_value ? neginf.value : -max_finite(x->dtype);
  return ops_finish(res, ops_unary(&prim_nan_to_num, x, x->dtype, x->dtype, p, core_stream_resolve(s)),
                    "nan_to_num");
}

int mlx_divmod(mlx_vector_array* res, const mlx_array a, const mlx_array b, const mlx_stream s) {
  core_array* x = ops_arg(a, "divmod", "first input");
  core_array* y = x ? ops_arg(b, "divmod", "second input") : NULL;
  if (!y) return 1;
  if (!res) return util_error("divmod: null result pointer");
  mlx_dtype t = core_promote(x->dtype, y->dtype);
  if (!cpu_binary_supported(BINARY_FLOOR_DIVIDE, t))
    return util_error("divmod: not supported for dtype %s", core_dtype_name(t));
  int shape[CORE_MAX_NDIM], ndim;
  if (ops_broadcast_shapes(x->shape, x->ndim, y->shape, y->ndim, shape, &ndim, "divmod")) return 1;
  core_stream* st = core_stream_resolve(s);
  core_array* in[2] = {ops_astype(x, t, st), NULL};
  if (in[0]) in[1] = ops_astype(y, t, st);
  core_array* outs[2] = {NULL, NULL};
  const mlx_dtype dtypes[2] = {t, t};
  const int* shapes[2] = {shape, shape};
  const int ndims[2] = {ndim, ndim};
  int status = !in[1] || core_node_create(&prim_divmod, NULL, in, 2, 2, dtypes, shapes, ndims, st, outs);
  if (!status) {
    mlx_array handles[2] = {core_handle(outs[0]), core_handle(outs[1])};
    status = mlx_vector_array_set_data(res, handles, 2);
  }
  for (int i = 0; i < 2; i++) {
    core_array_release(in[i]);
    core_array_release(outs[i]);
  }
  return status;
}

/* Intermediate arrays of an op composed from several nodes, released together at the end. A
 * failed step yields NULL and every step taking a NULL yields NULL, so a chain is checked once
 * at its end (the failing step has reported its error). */
#define MAX_TEMPS 40
typedef struct {
  core_array* items[MAX_TEMPS];
  int n;
  core_stream* s;
} temps;

static core_array* keep(temps* t, core_array* a) {
  if (a) t->items[t->n++] = a;
  return a;
}
static void release_temps(temps* t) {
  for (int i = 0; i < t->n; i++) core_array_release(t->items[i]);
}
static core_array* bin(temps* t, const core_op* op, core_array* a, core_array* b,
                       binary_dtype_rule rule) {
  return (a && b) ? keep(t, ops_binary_rule(op, a, b, rule, t->s)) : NULL;
}
static core_array* un(temps* t, const core_op* op, core_array* a) {
  return a ? keep(t, ops_unary_default(op, a, t->s)) : NULL;
}
static core_array* scalar_f32(temps* t, double v) {
  mlx_array h = mlx_array_new_float32((float)v);
  return keep(t, core_ctx(h));
}
static core_array* all_true(temps* t, core_array* a) {
  int scalar_shape[1] = {0};
  return a ? keep(t, core_node_single(&prim_all_true, NULL, &a, 1, MLX_BOOL, scalar_shape, 0, t->s))
           : NULL;
}
/* Moves the chain's result out of the temporaries. */
static core_array* finish_temps(temps* t, core_array* out) {
  if (out) core_array_retain(out);
  release_temps(t);
  return out;
}

/* MLX's isclose: |a - b| <= atol + rtol * |b| (tolerances as float32 scalars), false where
 * either is infinite unless both are the same infinity, and true for two NaNs if equal_nan. */
static core_array* isclose(temps* t, core_array* a, core_array* b, double rtol, double atol,
                           bool equal_nan) {
  core_array* tol = bin(t, &prim_add, scalar_f32(t, atol),
                        bin(t, &prim_multiply, scalar_f32(t, rtol), un(t, &prim_abs, b), BINARY_SAME),
                        BINARY_SAME);
  core_array* diff = un(t, &prim_abs, bin(t, &prim_subtract, a, b, BINARY_SAME));
  core_array* out = bin(t, &prim_less_equal, diff, tol, BINARY_TO_BOOL);
  core_array* any_inf = bin(t, &prim_logical_or, un(t, &prim_isinf, a), un(t, &prim_isinf, b),
                            BINARY_BOOL_IN_OUT);
  core_array* both_posinf = bin(t, &prim_logical_and, un(t, &prim_isposinf, a),
                                un(t, &prim_isposinf, b), BINARY_BOOL_IN_OUT);
  core_array* both_neginf = bin(t, &prim_logical_and, un(t, &prim_isneginf, a),
                                un(t, &prim_isneginf, b), BINARY_BOOL_IN_OUT);
  out = bin(t, &prim_logical_and, out, un(t, &prim_logical_not, any_inf), BINARY_BOOL_IN_OUT);
  out = bin(t, &prim_logical_or, out, both_posinf, BINARY_BOOL_IN_OUT);
  out = bin(t, &prim_logical_or, out, both_neginf, BINARY_BOOL_IN_OUT);
  if (equal_nan) {
    core_array* both_nan = bin(t, &prim_logical_and, un(t, &prim_isnan, a), un(t, &prim_isnan, b),
                               BINARY_BOOL_IN_OUT);
    out = bin(t, &prim_logical_or, out, both_nan, BINARY_BOOL_IN_OUT);
  }
  return out;
}

static int closeness_api(mlx_array* res, mlx_array a, mlx_array b, double rtol, double atol,
                         bool equal_nan, bool reduce, mlx_stream s, const char* name) {
  core_array* x = ops_arg(a, name, "first input");
  core_array* y = x ? ops_arg(b, name, "second input") : NULL;
  if (!y) return 1;
  temps t = {.s = core_stream_resolve(s)};
  core_array* out = isclose(&t, x, y, rtol, atol, equal_nan);
  if (reduce) out = all_true(&t, out);
  return ops_finish(res, finish_temps(&t, out), name);
}

int mlx_isclose(mlx_array* res, const mlx_array a, const mlx_array b, double rtol, double atol,
                bool equal_nan, const mlx_stream s) {
  return closeness_api(res, a, b, rtol, atol, equal_nan, false, s, "isclose");
}

int mlx_allclose(mlx_array* res, const mlx_array a, const mlx_array b, double rtol, double atol,
                 bool equal_nan, const mlx_stream s) {
  return closeness_api(res, a, b, rtol, atol, equal_nan, true, s, "allclose");
}

/* True when the shapes are equal and so is every element (compared in the promoted dtype);
 * different shapes give false, not an error, as MLX. */
int mlx_array_equal(mlx_array* res, const mlx_array a, const mlx_array b, bool equal_nan,
                    const mlx_stream s) {
  core_array* x = ops_arg(a, "array_equal", "first input");
  core_array* y = x ? ops_arg(b, "array_equal", "second input") : NULL;
  if (!y) return 1;
  if (!ops_same_shape(x, y)) return ops_finish(res, core_ctx(mlx_array_new_bool(false)), "array_equal");
  temps t = {.s = core_stream_resolve(s)};
  bool nan_equal = equal_nan && core_dtype_is_inexact(core_promote(x->dtype, y->dtype));
  core_array* eq = bin(&t, nan_equal ? &prim_nan_equal : &prim_equal, x, y, BINARY_TO_BOOL);
  return ops_finish(res, finish_temps(&t, all_true(&t, eq)), "array_equal");
}
