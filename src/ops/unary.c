/* Constructors of the unary elementwise ops (abs, exp, isnan, ...): pick the compute and output
 * dtypes by MLX's rule for the op and record one node; kernels in backend/cpu/unary.c. */
#include "ops/unary.h"

#include <math.h>
#include <stdlib.h>

#include "backend/cpu/elementwise.h"
#include "mlx/c/ops.h"
#include "ops/binary.h"
#include "ops/codes.h"
#include "ops/primitives.h"

core_array* ops_unary(const core_op* op, core_array* x, mlx_dtype compute, mlx_dtype out_dtype,
                      void* params, core_stream* s) {
  if (!cpu_unary_supported(op->code, compute)) {
    free(params);
    util_error("%s: not supported for dtype %s", op->name, core_dtype_name(compute));
    return NULL;
  }
  core_array* in = ops_astype(x, compute, s);
  if (!in) {
    free(params);
    return NULL;
  }
  core_array* out = core_node_single(op, params, &in, 1, out_dtype, x->shape, x->ndim, s);
  core_array_release(in);
  return out;
}

/* The input itself (a new reference): what floor/ceil/round of integers, conjugate and real of
 * real arrays and stop_gradient compute. Arrays are immutable, so sharing is safe. */
static core_array* same(core_array* x) {
  core_array_retain(x);
  return x;
}

core_array* ops_unary_default(const core_op* op, core_array* x, core_stream* s) {
  mlx_dtype t = x->dtype;
  bool complex = t == MLX_COMPLEX64, inexact = core_dtype_is_inexact(t);
  switch ((unary_code)op->code) {
    case UNARY_ABS:
      return ops_unary(op, x, t, complex ? MLX_FLOAT32 : t, NULL, s);
    case UNARY_NEGATIVE:
      if (t == MLX_BOOL) {
        util_error("negative: not supported for bool, use logical_not");
        return NULL;
      }
      return ops_unary(op, x, t, t, NULL, s);
    case UNARY_SIGN:
    case UNARY_SQUARE:
      return ops_unary(op, x, t, t, NULL, s);
    case UNARY_FLOOR:
    case UNARY_CEIL:
    case UNARY_ROUND:
      if (complex) break; /* reported below */
      return inexact ? ops_unary(op, x, t, t, NULL, s) : same(x);
    case UNARY_LOGICAL_NOT:
    case UNARY_ISNAN:
    case UNARY_ISINF:
    case UNARY_ISFINITE:
    case UNARY_ISPOSINF:
    case UNARY_ISNEGINF:
      return ops_unary(op, x, t, MLX_BOOL, NULL, s);
    case UNARY_BITWISE_INVERT:
      if (t == MLX_BOOL) return ops_unary(&prim_logical_not, x, t, t, NULL, s);
      if (inexact) break;
      return ops_unary(op, x, t, t, NULL, s);
    case UNARY_CONJUGATE:
      return complex ? ops_unary(op, x, t, t, NULL, s) : same(x);
    case UNARY_REAL:
      return complex ? ops_unary(op, x, t, MLX_FLOAT32, NULL, s) : same(x);
    case UNARY_IMAG:
      return ops_unary(op, x, t, complex ? MLX_FLOAT32 : t, NULL, s);
    default: /* math functions */
      return ops_unary(op, x, core_float_result(t), core_float_result(t), NULL, s);
  }
  util_error("%s: not supported for dtype %s", op->name, core_dtype_name(t));
  return NULL;
}

static int unary_api(mlx_array* res, mlx_array a, mlx_stream s, const core_op* op) {
  core_array* x = ops_arg(a, op->name, "input");
  if (!x) return 1;
  return ops_finish(res, ops_unary_default(op, x, core_stream_resolve(s)), op->name);
}

#define UNARY_API(name)                                                      \
  int mlx_##name(mlx_array* res, const mlx_array a, const mlx_stream s) {   \
    return unary_api(res, a, s, &prim_##name);                              \
  }
UNARY_API(abs)
UNARY_API(negative)
UNARY_API(sign)
UNARY_API(sqrt)
UNARY_API(rsqrt)
UNARY_API(square)
UNARY_API(reciprocal)
UNARY_API(exp)
UNARY_API(expm1)
UNARY_API(log)
UNARY_API(log1p)
UNARY_API(log2)
UNARY_API(log10)
UNARY_API(sin)
UNARY_API(cos)
UNARY_API(tan)
UNARY_API(arcsin)
UNARY_API(arccos)
UNARY_API(arctan)
UNARY_API(sinh)
UNARY_API(cosh)
UNARY_API(tanh)
UNARY_API(arcsinh)
UNARY_API(arccosh)
UNARY_API(arctanh)
UNARY_API(sigmoid)
UNARY_API(erf)
UNARY_API(erfinv)
UNARY_API(floor)
UNARY_API(ceil)
UNARY_API(logical_not)
UNARY_API(bitwise_invert)
UNARY_API(isnan)
UNARY_API(isinf)
UNARY_API(isfinite)
UNARY_API(isposinf)
UNARY_API(isneginf)
UNARY_API(conjugate)
UNARY_API(real)
UNARY_API(imag)

int mlx_stop_gradient(mlx_array* res, const mlx_array a, const mlx_stream s) {
  core_array* x = ops_arg(a, "stop_gradient", "input");
  if (!x) return 1;
  return ops_finish(res, same(x), "stop_gradient"); /* no autodiff yet: the identity */
}

/* x * factor, in x's float dtype (as MLX computes degrees and radians). */
static int scale_api(mlx_array* res, mlx_array a, mlx_stream s, double factor, const char* name) {
  core_array* x = ops_arg(a, name, "input");
  if (!x) return 1;
  core_stream* st = core_stream_resolve(s);
  mlx_dtype t = core_float_result(x->dtype);
  mlx_array k = mlx_array_new_double(factor);
  core_array* fx = ops_astype(x, t, st);
  core_array* fk = (fx && k.ctx) ? ops_astype(core_ctx(k), t, st) : NULL;
  core_array* out = fk ? ops_binary(&prim_multiply, fx, fk, t, t, st) : NULL;
  core_array_release(fx);
  core_array_release(fk);
  mlx_array_free(k);
  return ops_finish(res, out, name);
}

int mlx_degrees(mlx_array* res, const mlx_array a, const mlx_stream s) {
  return scale_api(res, a, s, 180.0 / 3.14159265358979323846, "degrees");
}
int mlx_radians(mlx_array* res, const mlx_array a, const mlx_stream s) {
  return scale_api(res, a, s, 3.14159265358979323846 / 180.0, "radians");
}

/* round(x, decimals) = round(x * 10^d) * 10^-d in x's float dtype, cast back to x's dtype (as
 * MLX: integers only change for negative decimals). */
int mlx_round(mlx_array* res, const mlx_array a, int decimals, const mlx_stream s) {
  core_array* x = ops_arg(a, "round", "input");
  if (!x) return 1;
  core_stream* st = core_stream_resolve(s);
  if (decimals == 0) return ops_finish(res, ops_unary_default(&prim_round, x, st), "round");
  mlx_dtype t = core_float_result(x->dtype);
  if (t == MLX_COMPLEX64) return util_error("round: not supported for dtype complex64");
  double scale = pow(10.0, decimals);
  mlx_array up = mlx_array_new_double(scale), down = mlx_array_new_double(1.0 / scale);
  core_array *fx = NULL, *fu = NULL, *fd = NULL, *scaled = NULL, *rounded = NULL, *back = NULL;
  core_array* out = NULL;
  if (up.ctx && down.ctx && (fx = ops_astype(x, t, st)) && (fu = ops_astype(core_ctx(up), t, st)) &&
      (fd = ops_astype(core_ctx(down), t, st)) &&
      (scaled = ops_binary(&prim_multiply, fx, fu, t, t, st)) &&
      (rounded = ops_unary(&prim_round, scaled, t, t, NULL, st)) &&
      (back = ops_binary(&prim_multiply, rounded, fd, t, t, st)))
    out = ops_astype(back, x->dtype, st);
  core_array* temps[] = {fx, fu, fd, scaled, rounded, back};
  for (size_t i = 0; i < sizeof temps / sizeof *temps; i++) core_array_release(temps[i]);
  mlx_array_free(up);
  mlx_array_free(down);
  return ops_finish(res, out, "round");
}
