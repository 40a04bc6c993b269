/* Constructors of the layout ops: astype, copy/contiguous, reshape, transpose, broadcast_to,
 * slice. Most evaluate to views of their input's buffer (see backend/cpu/layout.c). */
#include <stdlib.h>
#include <string.h>

#include "mlx/c/ops.h"
#include "ops/layout.h"
#include "ops/layout_params.h"
#include "ops/ops_common.h"
#include "ops/primitives.h"

int mlx_astype(mlx_array* res, const mlx_array a, mlx_dtype dtype, const mlx_stream s) {
  core_array* x = ops_arg(a, "astype", "input");
  if (!x) return 1;
  if (!core_dtype_valid(dtype)) return util_error("astype: invalid dtype %d", (int)dtype);
  return ops_finish(res, ops_astype(x, dtype, core_stream_resolve(s)), "astype");
}

int mlx_copy(mlx_array* res, const mlx_array a, const mlx_stream s) {
  core_array* x = ops_arg(a, "copy", "input");
  if (!x) return 1;
  return ops_finish(res, core_node_single(&prim_copy, NULL, &x, 1, x->dtype, x->shape, x->ndim,
                                          core_stream_resolve(s)), "copy");
}

int mlx_contiguous(mlx_array* res, const mlx_array a, bool allow_col_major, const mlx_stream s) {
  return mlx_copy(res, a, s);
}

/* Resolves one -1 entry and checks the element count. */
static int infer_shape(const core_array* x, const int* shape, size_t ndim, int* out, const char* op) {
  if (ndim > CORE_MAX_NDIM) return util_error("%s: at most %d dimensions", op, CORE_MAX_NDIM);
  if (ndim > 0 && !shape) return util_error("%s: null shape", op);
  int infer = -1;
  size_t known = 1;
  for (size_t i = 0; i < ndim; i++) {
    if (shape[i] == -1) {
      if (infer >= 0) return util_error("%s: only one dimension can be -1", op);
      infer = (int)i;
    } else if (shape[i] < 0) {
      return util_error("%s: invalid dimension %d", op, shape[i]);
    } else {
      known *= (size_t)shape[i];
    }
    out[i] = shape[i];
  }
  if (infer >= 0) {
    if (known == 0 || x->size % known)
      return util_error("%s: cannot infer dimension -1 reshaping %zu elements", op, x->size);
    out[infer] = (int)(x->size / known);
    known *= (size_t)out[infer];
  }
  if (known != x->size)
    return util_error("%s: cannot reshape an array of %zu elements into one of %zu", op, x->size, known);
  return 0;
}

core_array* ops_reshape(core_array* x, const int* shape, int ndim, core_stream* s) {
  if (x->ndim == ndim && !memcmp(x->shape, shape, sizeof(int) * (size_t)ndim)) {
    core_array_retain(x);
    return x;
  }
  return core_node_single(&prim_reshape, NULL, &x, 1, x->dtype, shape, ndim, s);
}

int mlx_reshape(mlx_array* res, const mlx_array a, const int* shape, size_t shape_num, const mlx_stream s) {
  core_array* x = ops_arg(a, "reshape", "input");
  int out[CORE_MAX_NDIM];
  if (!x || infer_shape(x, shape, shape_num, out, "reshape")) return 1;
  return ops_finish(res, ops_reshape(x, out, (int)shape_num, core_stream_resolve(s)), "reshape");
}

core_array* ops_transpose(core_array* x, const int* perm, core_stream* s) {
  transpose_params* p = malloc(sizeof *p);
  if (!p) {
    util_error("out of memory");
    return NULL;
  }
  int shape[CORE_MAX_NDIM];
  for (int i = 0; i < x->ndim; i++) {
    p->perm[i] = perm[i];
    shape[i] = x->shape[perm[i]];
  }
  return core_node_single(&prim_transpose, p, &x, 1, x->dtype, shape, x->ndim, s);
}

int mlx_transpose_axes(mlx_array* res, const mlx_array a, const int* axes, size_t axes_num, const mlx_stream s) {
  core_array* x = ops_arg(a, "transpose", "input");
  if (!x) return 1;
  if ((int)axes_num != x->ndim)
    return util_error("transpose: %zu axes given for an array of %d dimensions", axes_num, x->ndim);
  int perm[CORE_MAX_NDIM];
  bool seen[CORE_MAX_NDIM] = {false};
  for (int i = 0; i < x->ndim; i++) {
    if (ops_axis(axes[i], x->ndim, "transpose", &perm[i])) return 1;
    if (seen[perm[i]]) return util_error("transpose: axis %d repeated", axes[i]);
    seen[perm[i]] = true;
  }
  return ops_finish(res, ops_transpose(x, perm, core_stream_resolve(s)), "transpose");
}

int mlx_transpose(mlx_array* res, const mlx_array a, const mlx_stream s) {
  core_array* x = ops_arg(a, "transpose", "input");
  if (!x) return 1;
  int perm[CORE_MAX_NDIM];
  for (int i = 0; i < x->ndim; i++) perm[i] = x->ndim - 1 - i;
  return ops_finish(res, ops_transpose(x, perm, core_stream_resolve(s)), "transpose");
}

int mlx_broadcast_to(mlx_array* res, const mlx_array a, const int* shape, size_t shape_num, const mlx_stream s) {
  core_array* x = ops_arg(a, "broadcast_to", "input");
  if (!x) return 1;
  if (shape_num > CORE_MAX_NDIM || (shape_num && !shape))
    return util_error("broadcast_to: invalid target shape");
  int out[CORE_MAX_NDIM], ndim;
  if (ops_broadcast_shapes(x->shape, x->ndim, shape, (int)shape_num, out, &ndim, "broadcast_to")) return 1;
  if (ndim != (int)shape_num || memcmp(out, shape, sizeof(int) * shape_num))
    return util_error("broadcast_to: cannot broadcast to the requested shape (its dimensions must be "
                      "equal to the input's or the input's must be 1)");
  return ops_finish(res, ops_broadcast_to(x, out, ndim, core_stream_resolve(s)), "broadcast_to");
}

int ops_slice_dim(int n, int start, int stop, int step, int* first) {
  int b = start, e = stop, len;
  /* Python slice semantics: negative indices count from the end, then clamp. */
  if (b < 0) b += n;
  if (e < 0) e += n;
  if (step > 0) {
    b = b < 0 ? 0 : b > n ? n : b;
    e = e < 0 ? 0 : e > n ? n : e;
    len = e > b ? (e - b + step - 1) / step : 0;
  } else {
    b = b < -1 ? -1 : b > n - 1 ? n - 1 : b;
    e = e < -1 ? -1 : e > n - 1 ? n - 1 : e;
    len = b > e ? (b - e - step - 1) / (-step) : 0;
  }
  *first = len ? b : 0;
  return len;
}

core_array* ops_slice(core_array* x, const int* start, const int* stop, const int* step, core_stream* s) {
  slice_params* p = malloc(sizeof *p);
  if (!p) {
    util_error("out of memory");
    return NULL;
  }
  int shape[CORE_MAX_NDIM];
  for (int i = 0; i < x->ndim; i++) {
    shape[i] = ops_slice_dim(x->shape[i], start[i], stop[i], step[i], &p->start[i]);
    p->step[i] = step[i];
  }
  return core_node_single(&prim_slice, p, &x, 1, x->dtype, shape, x->ndim, s);
}

int mlx_slice(mlx_array* res, const mlx_array a, const int* start, size_t start_num, const int* stop,
              size_t stop_num, const int* strides, size_t strides_num, const mlx_stream s) {
  core_array* x = ops_arg(a, "slice", "input");
  if (!x) return 1;
  if (start_num != (size_t)x->ndim || stop_num != (size_t)x->ndim ||
      (strides_num != 0 && strides_num != (size_t)x->ndim))
    return util_error("slice: start, stop and strides need one entry per dimension (%d)", x->ndim);
  int step[CORE_MAX_NDIM];
  for (int i = 0; i < x->ndim; i++) {
    step[i] = strides_num ? strides[i] : 1;
    if (step[i] == 0) return util_error("slice: step of dimension %d is zero", i);
  }
  return ops_finish(res, ops_slice(x, start, stop, step, core_stream_resolve(s)), "slice");
}
