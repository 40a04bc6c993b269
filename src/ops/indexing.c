/* Constructors of the indexing ops: take (flattened or along an axis), take_along_axis and
 * put_along_axis. Indices may have any integer dtype; negative ones count from the end.
 * Out-of-range indices cannot be seen before evaluation: the kernels report them and the
 * evaluation fails (MLX leaves them undefined). */
#include <stdlib.h>
#include <string.h>

#include "mlx/c/ops.h"
#include "ops/layout.h"
#include "ops/ops_common.h"
#include "ops/primitives.h"
#include "ops/shape_params.h"

static int check_indices(const core_array* ind, const char* op) {
  if (!core_dtype_is_integer(ind->dtype))
    return util_error("%s: indices must have an integer dtype (got %s)", op, core_dtype_name(ind->dtype));
  return 0;
}

static axis_params* axis_param(int axis) {
  axis_params* p = malloc(sizeof *p);
  if (!p) util_error("out of memory");
  else p->axis = axis;
  return p;
}

/* out = a.shape[:axis] + indices.shape + a.shape[axis + 1:] */
static core_array* take_axis(core_array* x, core_array* ind, int ax, core_stream* s) {
  int ndim = x->ndim - 1 + ind->ndim;
  if (ndim > CORE_MAX_NDIM) {
    util_error("take: the result would have more than %d dimensions", CORE_MAX_NDIM);
    return NULL;
  }
  int shape[CORE_MAX_NDIM], k = 0;
  for (int i = 0; i < ax; i++) shape[k++] = x->shape[i];
  for (int i = 0; i < ind->ndim; i++) shape[k++] = ind->shape[i];
  for (int i = ax + 1; i < x->ndim; i++) shape[k++] = x->shape[i];
  axis_params* p = axis_param(ax);
  if (!p) return NULL;
  core_array* inputs[2] = {x, ind};
  return core_node_single(&prim_take, p, inputs, 2, x->dtype, shape, ndim, s);
}

int mlx_take_axis(mlx_array* res, const mlx_array a, const mlx_array indices, int axis, const mlx_stream s) {
  core_array* x = ops_arg(a, "take", "input");
  core_array* ind = x ? ops_arg(indices, "take", "indices") : NULL;
  int ax;
  if (!ind || check_indices(ind, "take") || ops_axis(axis, x->ndim, "take", &ax)) return 1;
  return ops_finish(res, take_axis(x, ind, ax, core_stream_resolve(s)), "take");
}

/* Without an axis the input is flattened first. */
int mlx_take(mlx_array* res, const mlx_array a, const mlx_array indices, const mlx_stream s) {
  core_array* x = ops_arg(a, "take", "input");
  core_array* ind = x ? ops_arg(indices, "take", "indices") : NULL;
  if (!ind || check_indices(ind, "take")) return 1;
  core_stream* st = core_stream_resolve(s);
  int len = (int)x->size;
  core_array* flat = ops_reshape(x, &len, 1, st);
  core_array* out = flat ? take_axis(flat, ind, 0, st) : NULL;
  core_array_release(flat);
  return ops_finish(res, out, "take");
}

/* The shape both along-axis ops iterate over: a's and the indices' broadcast, except along the
 * axis, which is the indices'. */
static int along_shape(const core_array* x, const core_array* ind, int ax, int* shape, const char* op) {
  if (ind->ndim != x->ndim)
    return util_error("%s: indices have %d dimensions, the array %d", op, ind->ndim, x->ndim);
  for (int i = 0; i < x->ndim; i++) {
    int da = x->shape[i], di = ind->shape[i];
    if (i != ax && da != di && da != 1 && di != 1)
      return util_error("%s: indices of size %d cannot be broadcast with the array's %d along axis %d", op, di,
                        da, i);
    shape[i] = i == ax ? di : da == 1 ? di : da;
  }
  return 0;
}

int mlx_take_along_axis(mlx_array* res, const mlx_array a, const mlx_array indices, int axis, const mlx_stream s) {
  core_array* x = ops_arg(a, "take_along_axis", "input");
  core_array* ind = x ? ops_arg(indices, "take_along_axis", "indices") : NULL;
  int ax, shape[CORE_MAX_NDIM];
  if (!ind || check_indices(ind, "take_along_axis") || ops_axis(axis, x->ndim, "take_along_axis", &ax) ||
      along_shape(x, ind, ax, shape, "take_along_axis"))
    return 1;
  core_stream* st = core_stream_resolve(s);
  core_array* wide = ops_broadcast_to(ind, shape, x->ndim, st);
  axis_params* p = wide ? axis_param(ax) : NULL;
  core_array* out = NULL;
  if (p) {
    core_array* inputs[2] = {x, wide};
    out = core_node_single(&prim_take_along_axis, p, inputs, 2, x->dtype, shape, x->ndim, st);
  }
  core_array_release(wide);
  return ops_finish(res, out, "take_along_axis");
}

/* A copy of a with a[..., indices[...], ...] = values (cast to a's dtype and broadcast); when
 * several updates hit one element the last in row-major order wins. */
int mlx_put_along_axis(mlx_array* res, const mlx_array a, const mlx_array indices, const mlx_array values,
                       int axis, const mlx_stream s) {
  const char* op = "put_along_axis";
  core_array* x = ops_arg(a, op, "input");
  core_array* ind = x ? ops_arg(indices, op, "indices") : NULL;
  core_array* v = ind ? ops_arg(values, op, "values") : NULL;
  int ax, shape[CORE_MAX_NDIM], bshape[CORE_MAX_NDIM], bndim;
  if (!v || check_indices(ind, op) || ops_axis(axis, x->ndim, op, &ax) || along_shape(x, ind, ax, shape, op))
    return 1;
  if (ops_broadcast_shapes(v->shape, v->ndim, shape, x->ndim, bshape, &bndim, op)) return 1;
  if (bndim != x->ndim || memcmp(bshape, shape, sizeof(int) * (size_t)bndim))
    return util_error("%s: the values cannot be broadcast to the indices' shape", op);
  core_stream* st = core_stream_resolve(s);
  core_array* wide = ops_broadcast_to(ind, shape, x->ndim, st);
  core_array* cast = wide ? ops_astype(v, x->dtype, st) : NULL;
  core_array* vals = cast ? ops_broadcast_to(cast, shape, x->ndim, st) : NULL;
  axis_params* p = vals ? axis_param(ax) : NULL;
  core_array* out = NULL;
  if (p) {
    core_array* inputs[3] = {x, wide, vals};
    out = core_node_single(&prim_put_along_axis, p, inputs, 3, x->dtype, x->shape, x->ndim, st);
  }
  core_array_release(wide);
  core_array_release(cast);
  core_array_release(vals);
  return ops_finish(res, out, op);
}
