/* Constructors of the cumulative ops along one axis: cumsum, cumprod, cummax, cummin and
 * logcumsumexp. Dtypes as MLX (cumsum of bool gives int32, the others keep the input's), except
 * that logcumsumexp of integers gives float32 where MLX keeps the integer dtype. */
#include <stdlib.h>

#include "mlx/c/ops.h"
#include "ops/codes.h"
#include "ops/ops_common.h"
#include "ops/primitives.h"
#include "ops/reduce_params.h"

static int scan_api(mlx_array* res, mlx_array a, int axis, bool reverse, bool inclusive, const core_op* op,
                    const mlx_stream s) {
  core_array* x = ops_arg(a, op->name, "input");
  if (!x) return 1;
  if (x->dtype == MLX_COMPLEX64) return util_error("%s: complex64 inputs are not supported", op->name);
  int normalised;
  if (ops_axis(axis, x->ndim, op->name, &normalised)) return 1;
  scan_params* params = malloc(sizeof *params);
  if (!params) return util_error("%s: out of memory", op->name);
  *params = (scan_params){normalised, reverse, inclusive};
  mlx_dtype dtype = x->dtype;
  if (op->code == SCAN_SUM && dtype == MLX_BOOL) dtype = MLX_INT32;
  if (op->code == SCAN_LOGADDEXP) dtype = core_float_result(dtype);
  return ops_finish(res, core_node_single(op, params, &x, 1, dtype, x->shape, x->ndim, core_stream_resolve(s)),
                    op->name);
}

int mlx_cumsum(mlx_array* res, const mlx_array a, int axis, bool reverse, bool inclusive, const mlx_stream s) {
  return scan_api(res, a, axis, reverse, inclusive, &prim_cumsum, s);
}
int mlx_cumprod(mlx_array* res, const mlx_array a, int axis, bool reverse, bool inclusive, const mlx_stream s) {
  return scan_api(res, a, axis, reverse, inclusive, &prim_cumprod, s);
}
int mlx_cummax(mlx_array* res, const mlx_array a, int axis, bool reverse, bool inclusive, const mlx_stream s) {
  return scan_api(res, a, axis, reverse, inclusive, &prim_cummax, s);
}
int mlx_cummin(mlx_array* res, const mlx_array a, int axis, bool reverse, bool inclusive, const mlx_stream s) {
  return scan_api(res, a, axis, reverse, inclusive, &prim_cummin, s);
}
int mlx_logcumsumexp(mlx_array* res, const mlx_array a, int axis, bool reverse, bool inclusive,
                     const mlx_stream s) {
  return scan_api(res, a, axis, reverse, inclusive, &prim_logcumsumexp, s);
}
