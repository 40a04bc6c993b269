/* Constructors of sort, argsort, partition, argpartition and topk. The forms without an axis
 * work on the flattened array (a reshape, as MLX). Indices are uint32. topk is MLX's: the last
 * k elements of a partition at -k, so the k largest values in no particular order. */
#include <stdlib.h>

#include "mlx/c/ops.h"
#include "ops/codes.h"
#include "ops/layout.h"
#include "ops/ops_common.h"
#include "ops/primitives.h"
#include "ops/reduce_params.h"

/* x along `axis` (validated); kth is checked for partitions. Takes no reference of x. */
static core_array* sort_node(core_array* x, int axis, int kth, const core_op* op, core_stream* s) {
  int code = op->code;
  sort_params* params = malloc(sizeof *params);
  if (!params) {
    util_error("%s: out of memory", op->name);
    return NULL;
  }
  if (ops_axis(axis, x->ndim, op->name, &params->axis)) {
    free(params);
    return NULL;
  }
  int n = x->shape[params->axis];
  params->kth = kth < 0 ? kth + n : kth;
  if ((code == PARTITION_VALUES || code == PARTITION_INDICES) && (params->kth < 0 || params->kth >= n)) {
    util_error("%s: kth %d is out of range for an axis of size %d", op->name, kth, n);
    free(params);
    return NULL;
  }
  mlx_dtype dtype = (code == SORT_INDICES || code == PARTITION_INDICES) ? MLX_UINT32 : x->dtype;
  return core_node_single(op, params, &x, 1, dtype, x->shape, x->ndim, s);
}

/* The entry point; flatten = true for the forms without an axis. */
static int sort_api(mlx_array* res, mlx_array a, bool flatten, int axis, int kth, const core_op* op,
                    const mlx_stream s) {
  core_array* x = ops_arg(a, op->name, "input");
  if (!x) return 1;
  if (x->dtype == MLX_COMPLEX64) return util_error("%s: complex64 inputs are not supported", op->name);
  core_stream* stream = core_stream_resolve(s);
  core_array* flat = NULL;
  if (flatten) {
    int size = (int)x->size;
    if (!(flat = ops_reshape(x, &size, 1, stream))) return 1;
    x = flat;
    axis = 0;
  }
  core_array* out = sort_node(x, axis, kth, op, stream);
  core_array_release(flat);
  return ops_finish(res, out, op->name);
}

int mlx_sort(mlx_array* res, const mlx_array a, const mlx_stream s) {
  return sort_api(res, a, true, 0, 0, &prim_sort, s);
}
int mlx_sort_axis(mlx_array* res, const mlx_array a, int axis, const mlx_stream s) {
  return sort_api(res, a, false, axis, 0, &prim_sort, s);
}
int mlx_argsort(mlx_array* res, const mlx_array a, const mlx_stream s) {
  return sort_api(res, a, true, 0, 0, &prim_argsort, s);
}
int mlx_argsort_axis(mlx_array* res, const mlx_array a, int axis, const mlx_stream s) {
  return sort_api(res, a, false, axis, 0, &prim_argsort, s);
}
int mlx_partition(mlx_array* res, const mlx_array a, int kth, const mlx_stream s) {
  return sort_api(res, a, true, 0, kth, &prim_partition, s);
}
int mlx_partition_axis(mlx_array* res, const mlx_array a, int kth, int axis, const mlx_stream s) {
  return sort_api(res, a, false, axis, kth, &prim_partition, s);
}
int mlx_argpartition(mlx_array* res, const mlx_array a, int kth, const mlx_stream s) {
  return sort_api(res, a, true, 0, kth, &prim_argpartition, s);
}
int mlx_argpartition_axis(mlx_array* res, const mlx_array a, int kth, int axis, const mlx_stream s) {
  return sort_api(res, a, false, axis, kth, &prim_argpartition, s);
}

static int topk_api(mlx_array* res, mlx_array a, bool flatten, int k, int axis, const mlx_stream s) {
  core_array* x = ops_arg(a, "topk", "input");
  if (!x) return 1;
  if (x->dtype == MLX_COMPLEX64) return util_error("topk: complex64 inputs are not supported");
  core_stream* stream = core_stream_resolve(s);
  core_array *flat = NULL, *part = NULL, *out = NULL;
  if (flatten) {
    int size = (int)x->size;
    if (!(flat = ops_reshape(x, &size, 1, stream))) return 1;
    x = flat;
    axis = 0;
  }
  int ax;
  if (ops_axis(axis, x->ndim, "topk", &ax)) goto cleanup;
  int n = x->shape[ax];
  if (k < 0 || k > n) {
    util_error("topk: k = %d is out of range for an axis of size %d", k, n);
    goto cleanup;
  }
  if (k == n) { /* the whole axis, as it is (MLX) */
    core_array_retain(x);
    out = x;
    goto cleanup;
  }
  if (!(part = sort_node(x, ax, -k, &prim_partition, stream))) goto cleanup;
  int start[CORE_MAX_NDIM] = {0}, stop[CORE_MAX_NDIM], step[CORE_MAX_NDIM];
  for (int d = 0; d < x->ndim; d++) stop[d] = x->shape[d], step[d] = 1;
  start[ax] = n - k;
  out = ops_slice(part, start, stop, step, stream);
cleanup:
  core_array_release(flat);
  core_array_release(part);
  return out ? ops_finish(res, out, "topk") : 1;
}

int mlx_topk(mlx_array* res, const mlx_array a, int k, const mlx_stream s) {
  return topk_api(res, a, true, k, 0, s);
}
int mlx_topk_axis(mlx_array* res, const mlx_array a, int k, int axis, const mlx_stream s) {
  return topk_api(res, a, false, k, axis, s);
}
