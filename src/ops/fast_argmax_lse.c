/* mlxc_fast_argmax_logsumexp: argmax, the value there and logsumexp of the last axis as one
 * primitive (argmax_lse). The composed reductions are built first, which checks the argument
 * as they check it and gives their shapes; the fused node replaces them. */
#include "mlx/c/ops.h"
#include "mlxc/fast.h"
#include "ops/ops_common.h"
#include "ops/primitives.h"

int mlxc_fast_argmax_logsumexp(mlx_array* index, mlx_array* value, mlx_array* lse, const mlx_array x_,
                               const mlx_stream s) {
  const char* name = "fast.argmax_logsumexp";
  core_array* x = ops_arg(x_, name, "x");
  if (!x) return 1;
  if (x->ndim < 1 || x->size == 0) return util_error("%s: x must have at least one dimension and elements", name);
  if (!core_dtype_is_float(x->dtype))
    return util_error("%s: x must be floating point (got %s)", name, core_dtype_name(x->dtype));
  mlx_array best = mlx_array_new(), total = mlx_array_new();
  int status = mlx_argmax_axis(&best, x_, -1, false, s);
  if (!status) status = mlx_logsumexp_axis(&total, x_, -1, false, s);
  if (!status) {
    const core_array *b = core_ctx(best), *t = core_ctx(total);
    /* The value and the log-sum-exp of the row as float32 (float64 rows keep float64). */
    const mlx_dtype stats = x->dtype == MLX_FLOAT64 ? MLX_FLOAT64 : MLX_FLOAT32;
    const mlx_dtype dtypes[3] = {b->dtype, stats, stats};
    const int* shapes[3] = {b->shape, b->shape, t->shape};
    const int ndims[3] = {b->ndim, b->ndim, t->ndim};
    core_array* outs[3] = {NULL, NULL, NULL};
    status = core_node_create(&prim_argmax_lse, NULL, &x, 1, 3, dtypes, shapes, ndims, core_stream_resolve(s), outs);
    if (!status) {
      core_assign(index, outs[0]);
      core_assign(value, outs[1]);
      core_assign(lse, outs[2]);
    }
  }
  mlx_array_free(best);
  mlx_array_free(total);
  return status;
}
