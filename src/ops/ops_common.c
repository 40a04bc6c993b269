/* Helpers shared by the op constructors (ops_common.h). */
#include "ops/ops_common.h"

#include <stdio.h>
#include <string.h>

#include "ops/primitives.h"

core_array* ops_arg(mlx_array a, const char* op, const char* what) {
  if (!a.ctx) util_error("%s: %s is an empty array", op, what);
  return core_ctx(a);
}

int ops_axis(int axis, int ndim, const char* op, int* out) {
  int a = axis < 0 ? axis + ndim : axis;
  if (a < 0 || a >= ndim)
    return util_error("%s: axis %d is out of bounds for an array of %d dimensions", op, axis, ndim);
  *out = a;
  return 0;
}

int ops_broadcast_shapes(const int* a, int a_ndim, const int* b, int b_ndim, int* out_shape,
                         int* out_ndim, const char* op) {
  int n = a_ndim > b_ndim ? a_ndim : b_ndim;
  for (int i = 0; i < n; i++) {
    int da = i - (n - a_ndim) >= 0 ? a[i - (n - a_ndim)] : 1;
    int db = i - (n - b_ndim) >= 0 ? b[i - (n - b_ndim)] : 1;
    if (da != db && da != 1 && db != 1) {
      char sa[256] = "", sb[256] = "";
      for (int k = 0; k < a_ndim; k++) snprintf(sa + strlen(sa), sizeof sa - strlen(sa), k ? ",%d" : "%d", a[k]);
      for (int k = 0; k < b_ndim; k++) snprintf(sb + strlen(sb), sizeof sb - strlen(sb), k ? ",%d" : "%d", b[k]);
      return util_error("%s: shapes (%s) and (%s) cannot be broadcast together", op, sa, sb);
    }
    out_shape[i] = da == 1 ? db : da;
  }
  *out_ndim = n;
  return 0;
}

core_array* ops_astype(core_array* a, mlx_dtype dtype, core_stream* s) {
  if (a->dtype == dtype) {
    core_array_retain(a);
    return a;
  }
  return core_node_single(&prim_astype, NULL, &a, 1, dtype, a->shape, a->ndim, s);
}

core_array* ops_broadcast_to(core_array* a, const int* shape, int ndim, core_stream* s) {
  if (a->ndim == ndim && !memcmp(a->shape, shape, sizeof(int) * (size_t)ndim)) {
    core_array_retain(a);
    return a;
  }
  return core_node_single(&prim_broadcast, NULL, &a, 1, a->dtype, shape, ndim, s);
}

int ops_finish(mlx_array* res, core_array* out, const char* op) {
  if (!out) return 1;
  if (!res) {
    core_array_release(out);
    return util_error("%s: null result pointer", op);
  }
  core_assign(res, out);
  return 0;
}

bool ops_same_shape(const core_array* a, const core_array* b) {
  return a->ndim == b->ndim && !memcmp(a->shape, b->shape, sizeof(int) * (size_t)a->ndim);
}
