/* Constructors of the reductions (sum, prod, max, min, all, any, mean, var, std, logsumexp,
 * argmax, argmin, median) and of softmax. Output dtypes follow MLX: sum and prod widen integers
 * to 32 bits (bool to int32, unsigned to uint32, 64-bit ones stay), max and min keep the dtype,
 * all and any give bool, argmax and argmin uint32, and mean, var, std, logsumexp, median and
 * softmax give float32 for integer and bool inputs. complex64 inputs are not supported. */
#include <stdlib.h>

#include "mlx/c/ops.h"
#include "ops/codes.h"
#include "ops/ops_common.h"
#include "ops/primitives.h"
#include "ops/reduce_params.h"

static mlx_dtype reduce_dtype(int code, mlx_dtype in) {
  switch (code) {
    case REDUCE_SUM:
    case REDUCE_PROD:
      if (in == MLX_BOOL) return MLX_INT32;
      if (core_dtype_is_signed_int(in)) return in == MLX_INT64 ? MLX_INT64 : MLX_INT32;
      if (core_dtype_is_unsigned_int(in)) return in == MLX_UINT64 ? MLX_UINT64 : MLX_UINT32;
      return in;
    case REDUCE_MAX:
    case REDUCE_MIN: return in;
    case REDUCE_ALL:
    case REDUCE_ANY: return MLX_BOOL;
    case REDUCE_ARGMAX:
    case REDUCE_ARGMIN: return MLX_UINT32;
    default: return core_float_result(in);
  }
}

/* Fills params->reduced from axes (every dim when all_axes); rejects bad and repeated axes. */
static int parse_axes(const core_array* x, const int* axes, size_t n_axes, bool all_axes, reduce_params* params,
                      const char* op) {
  for (int d = 0; d < CORE_MAX_NDIM; d++) params->reduced[d] = all_axes && d < x->ndim;
  if (all_axes) return 0;
  if (n_axes && !axes) return util_error("%s: null axes", op);
  for (size_t i = 0; i < n_axes; i++) {
    int axis;
    if (ops_axis(axes[i], x->ndim, op, &axis)) return 1;
    if (params->reduced[axis]) return util_error("%s: axis %d is repeated", op, axes[i]);
    params->reduced[axis] = true;
  }
  return 0;
}

/* The whole entry point of a reduction over `axes` (or all dims). */
static int reduce_api(mlx_array* res, mlx_array a, const int* axes, size_t n_axes, bool all_axes, bool keepdims,
                      int ddof, const core_op* op, const mlx_stream s) {
  core_array* x = ops_arg(a, op->name, "input");
  if (!x) return 1;
  if (x->dtype == MLX_COMPLEX64) return util_error("%s: complex64 inputs are not supported", op->name);
  reduce_params* params = malloc(sizeof *params);
  if (!params) return util_error("%s: out of memory", op->name);
  params->ddof = ddof;
  if (parse_axes(x, axes, n_axes, all_axes, params, op->name)) {
    free(params);
    return 1;
  }
  int shape[CORE_MAX_NDIM], ndim = 0;
  size_t group_size = 1;
  for (int d = 0; d < x->ndim; d++) {
    if (params->reduced[d]) group_size *= (size_t)x->shape[d];
    if (!params->reduced[d]) shape[ndim++] = x->shape[d];
    else if (keepdims) shape[ndim++] = 1;
  }
  int code = op->code;
  bool needs_elements = code == REDUCE_MAX || code == REDUCE_MIN || code == REDUCE_ARGMAX ||
                        code == REDUCE_ARGMIN || code == REDUCE_LOGSUMEXP;
  if ((needs_elements && x->size == 0) || (code == REDUCE_MEDIAN && group_size == 0)) {
    free(params);
    return util_error("%s: cannot reduce over zero elements", op->name);
  }
  core_array* out = core_node_single(op, params, &x, 1, reduce_dtype(code, x->dtype), shape, ndim,
                                     core_stream_resolve(s));
  return ops_finish(res, out, op->name);
}

/* The three forms of each reduction: all dims, a list of axes, one axis. */
#define REDUCTION(NAME)                                                                                 \
  int mlx_##NAME(mlx_array* res, const mlx_array a, bool keepdims, const mlx_stream s) {                \
    return reduce_api(res, a, NULL, 0, true, keepdims, 0, &prim_##NAME, s);                             \
  }                                                                                                     \
  int mlx_##NAME##_axes(mlx_array* res, const mlx_array a, const int* axes, size_t axes_num, bool keepdims, \
                        const mlx_stream s) {                                                           \
    return reduce_api(res, a, axes, axes_num, false, keepdims, 0, &prim_##NAME, s);                     \
  }                                                                                                     \
  int mlx_##NAME##_axis(mlx_array* res, const mlx_array a, int axis, bool keepdims, const mlx_stream s) { \
    return reduce_api(res, a, &axis, 1, false, keepdims, 0, &prim_##NAME, s);                           \
  }

REDUCTION(sum)
REDUCTION(prod)
REDUCTION(max)
REDUCTION(min)
REDUCTION(all)
REDUCTION(any)
REDUCTION(mean)
REDUCTION(logsumexp)

/* var and std take ddof: the divisor is max(n - ddof, 0). */
#define DDOF_REDUCTION(NAME)                                                                            \
  int mlx_##NAME(mlx_array* res, const mlx_array a, bool keepdims, int ddof, const mlx_stream s) {      \
    return reduce_api(res, a, NULL, 0, true, keepdims, ddof, &prim_##NAME, s);                          \
  }                                                                                                     \
  int mlx_##NAME##_axes(mlx_array* res, const mlx_array a, const int* axes, size_t axes_num, bool keepdims, \
                        int ddof, const mlx_stream s) {                                                 \
    return reduce_api(res, a, axes, axes_num, false, keepdims, ddof, &prim_##NAME, s);                  \
  }                                                                                                     \
  int mlx_##NAME##_axis(mlx_array* res, const mlx_array a, int axis, bool keepdims, int ddof,           \
                        const mlx_stream s) {                                                           \
    return reduce_api(res, a, &axis, 1, false, keepdims, ddof, &prim_##NAME, s);                        \
  }

DDOF_REDUCTION(var)
DDOF_REDUCTION(std)

/* argmax/argmin: over the flattened array, or along one axis; ties give the first index. */
int mlx_argmax(mlx_array* res, const mlx_array a, bool keepdims, const mlx_stream s) {
  return reduce_api(res, a, NULL, 0, true, keepdims, 0, &prim_argmax, s);
}
int mlx_argmax_axis(mlx_array* res, const mlx_array a, int axis, bool keepdims, const mlx_stream s) {
  return reduce_api(res, a, &axis, 1, false, keepdims, 0, &prim_argmax, s);
}
int mlx_argmin(mlx_array* res, const mlx_array a, bool keepdims, const mlx_stream s) {
  return reduce_api(res, a, NULL, 0, true, keepdims, 0, &prim_argmin, s);
}
int mlx_argmin_axis(mlx_array* res, const mlx_array a, int axis, bool keepdims, const mlx_stream s) {
  return reduce_api(res, a, &axis, 1, false, keepdims, 0, &prim_argmin, s);
}

int mlx_median(mlx_array* res, const mlx_array a, const int* axes, size_t axes_num, bool keepdims,
               const mlx_stream s) {
  return reduce_api(res, a, axes, axes_num, false, keepdims, 0, &prim_median, s);
}

/* softmax over `axes`, always computed in double and rounded once, whatever `precise` says:
 * precise asks for float32 or better with half-precision inputs. */
static int softmax_api(mlx_array* res, mlx_array a, const int* axes, size_t n_axes, bool all_axes,
                       const mlx_stream s) {
  core_array* x = ops_arg(a, "softmax", "input");
  if (!x) return 1;
  if (x->dtype == MLX_COMPLEX64) return util_error("softmax: complex64 inputs are not supported");
  reduce_params* params = malloc(sizeof *params);
  if (!params) return util_error("softmax: out of memory");
  params->ddof = 0;
  if (parse_axes(x, axes, n_axes, all_axes, params, "softmax")) {
    free(params);
    return 1;
  }
  core_array* out = core_node_single(&prim_softmax, params, &x, 1, core_float_result(x->dtype), x->shape,
                                     x->ndim, core_stream_resolve(s));
  return ops_finish(res, out, "softmax");
}

int mlx_softmax(mlx_array* res, const mlx_array a, bool precise, const mlx_stream s) {
  return softmax_api(res, a, NULL, 0, true, s);
}
int mlx_softmax_axes(mlx_array* res, const mlx_array a, const int* axes, size_t axes_num, bool precise,
                     const mlx_stream s) {
  return softmax_api(res, a, axes, axes_num, false, s);
}
int mlx_softmax_axis(mlx_array* res, const mlx_array a, int axis, bool precise, const mlx_stream s) {
  return softmax_api(res, a, &axis, 1, false, s);
}
