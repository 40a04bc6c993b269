/* Constructors of the binary elementwise ops: promote both inputs to a common dtype, broadcast
 * shapes, and record the node. Families differ only in their output dtype rule. */
#include "ops/binary.h"

#include "backend/cpu/elementwise.h"
#include "mlx/c/ops.h"
#include "ops/primitives.h"

core_array* ops_binary(const core_op* op, core_array* a, core_array* b, mlx_dtype compute,
                       mlx_dtype out_dtype, core_stream* s) {
  int shape[CORE_MAX_NDIM], ndim;
  if (ops_broadcast_shapes(a->shape, a->ndim, b->shape, b->ndim, shape, &ndim, op->name)) return NULL;
  core_array* ca = ops_astype(a, compute, s);
  core_array* cb = ca ? ops_astype(b, compute, s) : NULL;
  core_array* out = NULL;
  if (cb) {
    core_array* inputs[2] = {ca, cb};
    out = core_node_single(op, NULL, inputs, 2, out_dtype, shape, ndim, s);
  }
  core_array_release(ca);
  core_array_release(cb);
  return out;
}

core_array* ops_binary_rule(const core_op* op, core_array* a, core_array* b, binary_dtype_rule rule,
                            core_stream* s) {
  mlx_dtype promoted = core_promote(a->dtype, b->dtype);
  mlx_dtype compute = promoted, out_dtype = promoted;
  switch (rule) {
    case BINARY_SAME: break;
    case BINARY_INEXACT: compute = out_dtype = core_float_result(promoted); break;
    case BINARY_TO_BOOL: out_dtype = MLX_BOOL; break;
    case BINARY_BOOL_IN_OUT: compute = out_dtype = MLX_BOOL; break;
    case BINARY_SHIFT: if (promoted == MLX_BOOL) compute = out_dtype = MLX_UINT8; break;
  }
  if (!cpu_binary_supported(op->code, compute)) {
    util_error("%s: not supported for dtype %s", op->name, core_dtype_name(compute));
    return NULL;
  }
  return ops_binary(op, a, b, compute, out_dtype, s);
}

int ops_binary_api(mlx_array* res, mlx_array a, mlx_array b, mlx_stream s, const core_op* op,
                   binary_dtype_rule rule) {
  core_array* x = ops_arg(a, op->name, "first input");
  core_array* y = x ? ops_arg(b, op->name, "second input") : NULL;
  if (!y) return 1;
  return ops_finish(res, ops_binary_rule(op, x, y, rule, core_stream_resolve(s)), op->name);
}

int mlx_add(mlx_array* res, const mlx_array a, const mlx_array b, const mlx_stream s) {
  return ops_binary_api(res, a, b, s, &prim_add, BINARY_SAME);
}
int mlx_subtract(mlx_array* res, const mlx_array a, const mlx_array b, const mlx_stream s) {
  return ops_binary_api(res, a, b, s, &prim_subtract, BINARY_SAME);
}
int mlx_multiply(mlx_array* res, const mlx_array a, const mlx_array b, const mlx_stream s) {
  return ops_binary_api(res, a, b, s, &prim_multiply, BINARY_SAME);
}
int mlx_divide(mlx_array* res, const mlx_array a, const mlx_array b, const mlx_stream s) {
  return ops_binary_api(res, a, b, s, &prim_divide, BINARY_INEXACT);
}

/* The rest of the binary family: one line each, the dtype rule says everything. */
#define BINARY_API(name, rule)                                                              \
  int mlx_##name(mlx_array* res, const mlx_array a, const mlx_array b, const mlx_stream s) { \
    return ops_binary_api(res, a, b, s, &prim_##name, rule);                                \
  }
BINARY_API(floor_divide, BINARY_SAME)
BINARY_API(remainder, BINARY_SAME)
BINARY_API(power, BINARY_SAME)
BINARY_API(maximum, BINARY_SAME)
BINARY_API(minimum, BINARY_SAME)
BINARY_API(arctan2, BINARY_INEXACT)
BINARY_API(logaddexp, BINARY_INEXACT)
BINARY_API(equal, BINARY_TO_BOOL)
BINARY_API(not_equal, BINARY_TO_BOOL)
BINARY_API(less, BINARY_TO_BOOL)
BINARY_API(less_equal, BINARY_TO_BOOL)
BINARY_API(greater, BINARY_TO_BOOL)
BINARY_API(greater_equal, BINARY_TO_BOOL)
BINARY_API(logical_and, BINARY_BOOL_IN_OUT)
BINARY_API(logical_or, BINARY_BOOL_IN_OUT)
BINARY_API(bitwise_and, BINARY_SAME)
BINARY_API(bitwise_or, BINARY_SAME)
BINARY_API(bitwise_xor, BINARY_SAME)
BINARY_API(left_shift, BINARY_SHIFT)
BINARY_API(right_shift, BINARY_SHIFT)
