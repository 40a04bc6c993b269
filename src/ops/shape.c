/* Constructors of the shape ops. Most are views built from reshape, transpose, slice and
 * broadcast (layout.c); concatenate, pad and slice_update copy into a new array
 * (backend/cpu/shape.c); tile, repeat, stack and roll are compositions of both. */
#include <stdlib.h>
#include <string.h>

#include "mlx/c/ops.h"
#include "ops/layout.h"
#include "ops/layout_params.h"
#include "ops/ops_common.h"
#include "ops/primitives.h"
#include "ops/shape_params.h"

/* ---- vectors of arrays ---- */

/* The arrays of `v` (each retained) in a malloc'ed list the caller frees with release_list. */
static core_array** list_from_vector(mlx_vector_array v, size_t* n, const char* op) {
  *n = mlx_vector_array_size(v);
  if (!v.ctx) {
    util_error("%s: empty vector of arrays", op);
    return NULL;
  }
  core_array** list = calloc(*n ? *n : 1, sizeof *list);
  if (!list) {
    util_error("out of memory");
    return NULL;
  }
  for (size_t i = 0; i < *n; i++) {
    mlx_array h = mlx_array_new();
    if (mlx_vector_array_get(&h, v, i) || !h.ctx) {
      if (!h.ctx) util_error("%s: array %zu of the vector is empty", op, i);
      for (size_t k = 0; k < i; k++) core_array_release(list[k]);
      free(list);
      return NULL;
    }
    list[i] = core_ctx(h);
  }
  return list;
}

static void release_list(core_array** list, size_t n) {
  if (!list) return;
  for (size_t i = 0; i < n; i++) core_array_release(list[i]);
  free(list);
}

/* Moves a list of arrays (all non-NULL) into *res; releases the list either way. */
static int finish_vector(mlx_vector_array* res, core_array** list, size_t n, const char* op) {
  int status = 1;
  mlx_array* handles = malloc((n ? n : 1) * sizeof *handles);
  if (!res) util_error("%s: null result pointer", op);
  else if (!handles) util_error("out of memory");
  else {
    for (size_t i = 0; i < n; i++) handles[i] = core_handle(list[i]);
    status = mlx_vector_array_set_data(res, handles, n);
  }
  free(handles);
  release_list(list, n);
  return status;
}

/* ---- reshapes: flatten, unflatten, squeeze, expand_dims, atleast ---- */

int mlx_flatten(mlx_array* res, const mlx_array a, int start_axis, int end_axis, const mlx_stream s) {
  core_array* x = ops_arg(a, "flatten", "input");
  if (!x) return 1;
  int n = x->ndim, one = 1;
  if (n == 0) return ops_finish(res, ops_reshape(x, &one, 1, core_stream_resolve(s)), "flatten");
  int start = start_axis < 0 ? start_axis + n : start_axis;
  int end = end_axis < 0 ? end_axis + n : end_axis;
  start = start < 0 ? 0 : start;
  end = end > n - 1 ? n - 1 : end;
  if (start >= n) return util_error("flatten: start_axis %d is out of bounds for %d dimensions", start_axis, n);
  if (end < 0) return util_error("flatten: end_axis %d is out of bounds for %d dimensions", end_axis, n);
  if (end < start) return util_error("flatten: start_axis must not come after end_axis");
  int shape[CORE_MAX_NDIM], ndim = 0;
  for (int i = 0; i < start; i++) shape[ndim++] = x->shape[i];
  int64_t merged = 1;
  for (int i = start; i <= end; i++) merged *= x->shape[i];
  shape[ndim++] = (int)merged;
  for (int i = end + 1; i < n; i++) shape[ndim++] = x->shape[i];
  return ops_finish(res, ops_reshape(x, shape, ndim, core_stream_resolve(s)), "flatten");
}

int mlx_unflatten(mlx_array* res, const mlx_array a, int axis, const int* shape, size_t shape_num,
                  const mlx_stream s) {
  core_array* x = ops_arg(a, "unflatten", "input");
  if (!x) return 1;
  int ax;
  if (ops_axis(axis, x->ndim, "unflatten", &ax)) return 1;
  if (shape_num == 0 || !shape) return util_error("unflatten: the new shape must not be empty");
  if (x->ndim - 1 + shape_num > CORE_MAX_NDIM)
    return util_error("unflatten: at most %d dimensions", CORE_MAX_NDIM);
  int out[CORE_MAX_NDIM], ndim = 0, infer = -1;
  int64_t known = 1;
  for (int i = 0; i < ax; i++) out[ndim++] = x->shape[i];
  for (size_t i = 0; i < shape_num; i++) {
    if (shape[i] == -1) {
      if (infer >= 0) return util_error("unflatten: only one dimension can be -1");
      infer = ndim;
    } else if (shape[i] < 0) {
      return util_error("unflatten: invalid dimension %d", shape[i]);
    } else {
      known *= shape[i];
    }
    out[ndim++] = shape[i];
  }
  for (int i = ax + 1; i < x->ndim; i++) out[ndim++] = x->shape[i];
  int64_t n = x->shape[ax];
  if (infer >= 0) {
    if (known == 0 || n % known)
      return util_error("unflatten: cannot infer -1 splitting a dimension of size %lld", (long long)n);
    out[infer] = (int)(n / known);
  } else if (known != n) {
    return util_error("unflatten: the new shape has %lld elements, the axis %lld", (long long)known,
                      (long long)n);
  }
  return ops_finish(res, ops_reshape(x, out, ndim, core_stream_resolve(s)), "unflatten");
}

/* Removes the dims flagged in `drop` (a view). */
static core_array* drop_dims(core_array* x, const bool* drop, core_stream* s) {
  int shape[CORE_MAX_NDIM], ndim = 0;
  for (int i = 0; i < x->ndim; i++)
    if (!drop[i]) shape[ndim++] = x->shape[i];
  return ops_reshape(x, shape, ndim, s);
}

int mlx_squeeze_axes(mlx_array* res, const mlx_array a, const int* axes, size_t axes_num, const mlx_stream s) {
  core_array* x = ops_arg(a, "squeeze", "input");
  if (!x) return 1;
  if (axes_num && !axes) return util_error("squeeze: null axes");
  bool drop[CORE_MAX_NDIM] = {false};
  for (size_t i = 0; i < axes_num; i++) {
    int ax;
    if (ops_axis(axes[i], x->ndim, "squeeze", &ax)) return 1;
    if (drop[ax]) return util_error("squeeze: axis %d repeated", axes[i]);
    if (x->shape[ax] != 1)
      return util_error("squeeze: cannot squeeze axis %d of size %d (only size-1 axes)", axes[i], x->shape[ax]);
    drop[ax] = true;
  }
  return ops_finish(res, drop_dims(x, drop, core_stream_resolve(s)), "squeeze");
}

int mlx_squeeze_axis(mlx_array* res, const mlx_array a, int axis, const mlx_stream s) {
  return mlx_squeeze_axes(res, a, &axis, 1, s);
}

int mlx_squeeze(mlx_array* res, const mlx_array a, const mlx_stream s) {
  core_array* x = ops_arg(a, "squeeze", "input");
  if (!x) return 1;
  bool drop[CORE_MAX_NDIM];
  for (int i = 0; i < x->ndim; i++) drop[i] = x->shape[i] == 1;
  return ops_finish(res, drop_dims(x, drop, core_stream_resolve(s)), "squeeze");
}

/* x with size-1 dims inserted at `axes` (positions in the output, possibly negative). */
static core_array* insert_dims(core_array* x, const int* axes, int naxes, core_stream* s, const char* op) {
  int ndim = x->ndim + naxes;
  if (ndim > CORE_MAX_NDIM) {
    util_error("%s: at most %d dimensions", op, CORE_MAX_NDIM);
    return NULL;
  }
  bool inserted[CORE_MAX_NDIM] = {false};
  for (int i = 0; i < naxes; i++) {
    int ax;
    if (ops_axis(axes[i], ndim, op, &ax)) return NULL;
    if (inserted[ax]) {
      util_error("%s: axis %d repeated", op, axes[i]);
      return NULL;
    }
    inserted[ax] = true;
  }
  int shape[CORE_MAX_NDIM];
  for (int i = 0, k = 0; i < ndim; i++) shape[i] = inserted[i] ? 1 : x->shape[k++];
  return ops_reshape(x, shape, ndim, s);
}

int mlx_expand_dims_axes(mlx_array* res, const mlx_array a, const int* axes, size_t axes_num,
                         const mlx_stream s) {
  core_array* x = ops_arg(a, "expand_dims", "input");
  if (!x) return 1;
  if (axes_num && !axes) return util_error("expand_dims: null axes");
  if (axes_num > CORE_MAX_NDIM) return util_error("expand_dims: at most %d dimensions", CORE_MAX_NDIM);
  return ops_finish(res, insert_dims(x, axes, (int)axes_num, core_stream_resolve(s), "expand_dims"),
                    "expand_dims");
}

int mlx_expand_dims(mlx_array* res, const mlx_array a, int axis, const mlx_stream s) {
  return mlx_expand_dims_axes(res, a, &axis, 1, s);
}

/* atleast_Nd: a 0-d array becomes (1,..,1); 1-d (n) becomes (1, n) and, for 3-d, (1, n, 1);
 * 2-d (m, n) becomes (m, n, 1) for 3-d, as numpy. */
static int atleast(mlx_array* res, mlx_array a, int n, mlx_stream s, const char* op) {
  core_array* x = ops_arg(a, op, "input");
  if (!x) return 1;
  if (x->ndim >= n) {
    core_array_retain(x);
    return ops_finish(res, x, op);
  }
  int shape[3] = {1, 1, 1};
  if (x->ndim == 1) shape[n == 1 ? 0 : 1] = x->shape[0];
  if (x->ndim == 2) shape[0] = x->shape[0], shape[1] = x->shape[1];
  return ops_finish(res, ops_reshape(x, shape, n, core_stream_resolve(s)), op);
}

int mlx_atleast_1d(mlx_array* res, const mlx_array a, const mlx_stream s) { return atleast(res, a, 1, s, "atleast_1d"); }
int mlx_atleast_2d(mlx_array* res, const mlx_array a, const mlx_stream s) { return atleast(res, a, 2, s, "atleast_2d"); }
int mlx_atleast_3d(mlx_array* res, const mlx_array a, const mlx_stream s) { return atleast(res, a, 3, s, "atleast_3d"); }

/* ---- transposes: swapaxes, moveaxis ---- */

int mlx_swapaxes(mlx_array* res, const mlx_array a, int axis1, int axis2, const mlx_stream s) {
  core_array* x = ops_arg(a, "swapaxes", "input");
  int a1, a2;
  if (!x || ops_axis(axis1, x->ndim, "swapaxes", &a1) || ops_axis(axis2, x->ndim, "swapaxes", &a2)) return 1;
  int perm[CORE_MAX_NDIM];
  for (int i = 0; i < x->ndim; i++) perm[i] = i;
  perm[a1] = a2;
  perm[a2] = a1;
  return ops_finish(res, ops_transpose(x, perm, core_stream_resolve(s)), "swapaxes");
}

int mlx_moveaxis(mlx_array* res, const mlx_array a, int source, int destination, const mlx_stream s) {
  core_array* x = ops_arg(a, "moveaxis", "input");
  int src, dst;
  if (!x || ops_axis(source, x->ndim, "moveaxis", &src) || ops_axis(destination, x->ndim, "moveaxis", &dst))
    return 1;
  int rest[CORE_MAX_NDIM], perm[CORE_MAX_NDIM], n = 0;
  for (int i = 0; i < x->ndim; i++)
    if (i != src) rest[n++] = i;
  for (int i = 0, k = 0; i < x->ndim; i++) perm[i] = i == dst ? src : rest[k++];
  return ops_finish(res, ops_transpose(x, perm, core_stream_resolve(s)), "moveaxis");
}

/* ---- broadcast_arrays ---- */

int mlx_broadcast_arrays(mlx_vector_array* res, const mlx_vector_array inputs, const mlx_stream s) {
  size_t n;
  core_array** list = list_from_vector(inputs, &n, "broadcast_arrays");
  if (!list) return 1;
  int shape[CORE_MAX_NDIM], ndim = 0;
  for (size_t i = 0; i < n; i++)
    if (ops_broadcast_shapes(shape, ndim, list[i]->shape, list[i]->ndim, shape, &ndim, "broadcast_arrays")) {
      release_list(list, n);
      return 1;
    }
  core_stream* st = core_stream_resolve(s);
  for (size_t i = 0; i < n; i++) {
    core_array* b = ops_broadcast_to(list[i], shape, ndim, st);
    core_array_release(list[i]);
    if (!(list[i] = b)) {
      release_list(list, n); /* NULL entries are skipped */
      return 1;
    }
  }
  return finish_vector(res, list, n, "broadcast_arrays");
}

/* ---- concatenate, stack ---- */

/* Concatenation along `axis` (may be negative) in the promoted dtype; NULL on error. */
static core_array* concatenate(core_array* const* xs, size_t n, int axis, core_stream* s, const char* op) {
  if (n == 0) {
    util_error("%s: no arrays given", op);
    return NULL;
  }
  int ax, ndim = xs[0]->ndim;
  if (ops_axis(axis, ndim, op, &ax)) return NULL;
  int shape[CORE_MAX_NDIM];
  memcpy(shape, xs[0]->shape, sizeof(int) * (size_t)ndim);
  int64_t total = 0;
  mlx_dtype dtype = xs[0]->dtype;
  for (size_t i = 0; i < n; i++) {
    bool same = xs[i]->ndim == ndim;
    for (int d = 0; same && d < ndim; d++) same = d == ax || xs[i]->shape[d] == shape[d];
    if (!same) {
      util_error("%s: array %zu has a different shape from array 0 outside axis %d", op, i, axis);
      return NULL;
    }
    total += xs[i]->shape[ax];
    dtype = core_promote(dtype, xs[i]->dtype);
  }
  if (total > INT32_MAX) {
    util_error("%s: the result has more than %d elements along axis %d", op, INT32_MAX, axis);
    return NULL;
  }
  shape[ax] = (int)total;
  axis_params* p = malloc(sizeof *p);
  core_array** cast = calloc(n, sizeof *cast);
  core_array* out = NULL;
  if (!p || !cast) {
    util_error("out of memory");
    free(p);
    free(cast);
    return NULL;
  }
  p->axis = ax;
  size_t made = 0;
  for (; made < n; made++)
    if (!(cast[made] = ops_astype(xs[made], dtype, s))) break;
  if (made == n) out = core_node_single(&prim_concatenate, p, cast, (int)n, dtype, shape, ndim, s);
  else free(p);
  release_list(cast, made);
  return out;
}

int mlx_concatenate_axis(mlx_array* res, const mlx_vector_array arrays, int axis, const mlx_stream s) {
  size_t n;
  core_array** list = list_from_vector(arrays, &n, "concatenate");
  if (!list) return 1;
  core_array* out = concatenate(list, n, axis, core_stream_resolve(s), "concatenate");
  release_list(list, n);
  return ops_finish(res, out, "concatenate");
}

/* Without an axis, the arrays are flattened first (as MLX). */
int mlx_concatenate(mlx_array* res, const mlx_vector_array arrays, const mlx_stream s) {
  size_t n;
  core_array** list = list_from_vector(arrays, &n, "concatenate");
  if (!list) return 1;
  core_stream* st = core_stream_resolve(s);
  core_array* out = NULL;
  size_t i = 0;
  for (; i < n; i++) {
    int len = (int)list[i]->size;
    core_array* flat = ops_reshape(list[i], &len, 1, st);
    core_array_release(list[i]);
    if (!(list[i] = flat)) break;
  }
  if (i == n) out = concatenate(list, n, 0, st, "concatenate");
  release_list(list, n); /* NULL entries are skipped */
  return ops_finish(res, out, "concatenate");
}

int mlx_stack_axis(mlx_array* res, const mlx_vector_array arrays, int axis, const mlx_stream s) {
  size_t n;
  core_array** list = list_from_vector(arrays, &n, "stack");
  if (!list) return 1;
  core_stream* st = core_stream_resolve(s);
  core_array* out = NULL;
  bool ok = n > 0;
  if (!ok) util_error("stack: no arrays given");
  for (size_t i = 0; ok && i < n; i++)
    if (!ops_same_shape(list[i], list[0])) {
      util_error("stack: array %zu has a different shape from array 0", i);
      ok = false;
    }
  for (size_t i = 0; ok && i < n; i++) {
    core_array* e = insert_dims(list[i], &axis, 1, st, "stack");
    core_array_release(list[i]);
    ok = (list[i] = e) != NULL;
  }
  if (ok) out = concatenate(list, n, axis, st, "stack");
  release_list(list, n); /* NULL entries are skipped */
  return ops_finish(res, out, "stack");
}

int mlx_stack(mlx_array* res, const mlx_vector_array arrays, const mlx_stream s) {
  return mlx_stack_axis(res, arrays, 0, s);
}

/* ---- split ---- */

/* Slices [bounds[i], bounds[i + 1]) of x along ax, Python-clamped, into *res. */
static int split_at(mlx_vector_array* res, core_array* x, int ax, const int* bounds, size_t nparts,
                    core_stream* s, const char* op) {
  core_array** parts = calloc(nparts, sizeof *parts);
  if (!parts) return util_error("out of memory");
  int start[CORE_MAX_NDIM], stop[CORE_MAX_NDIM], step[CORE_MAX_NDIM];
  for (int d = 0; d < x->ndim; d++) start[d] = 0, stop[d] = x->shape[d], step[d] = 1;
  for (size_t i = 0; i < nparts; i++) {
    start[ax] = bounds[i];
    stop[ax] = bounds[i + 1];
    if (!(parts[i] = ops_slice(x, start, stop, step, s))) {
      release_list(parts, i);
      return 1;
    }
  }
  return finish_vector(res, parts, nparts, op);
}

int mlx_split(mlx_vector_array* res, const mlx_array a, int num_splits, int axis, const mlx_stream s) {
  core_array* x = ops_arg(a, "split", "input");
  int ax;
  if (!x || ops_axis(axis, x->ndim, "split", &ax)) return 1;
  if (num_splits <= 0) return util_error("split: the number of splits must be positive (got %d)", num_splits);
  if (x->shape[ax] % num_splits)
    return util_error("split: cannot split an axis of size %d into %d equal parts", x->shape[ax], num_splits);
  int* bounds = malloc(sizeof(int) * ((size_t)num_splits + 1));
  if (!bounds) return util_error("out of memory");
  for (int i = 0; i <= num_splits; i++) bounds[i] = (int)((int64_t)x->shape[ax] / num_splits * i);
  int status = split_at(res, x, ax, bounds, (size_t)num_splits, core_stream_resolve(s), "split");
  free(bounds);
  return status;
}

/* numpy semantics: parts [0, i0), [i0, i1), ..., [ik, n); indices may be negative (from the end)
 * and unsorted indices give empty parts. */
int mlx_split_sections(mlx_vector_array* res, const mlx_array a, const int* indices, size_t indices_num,
                       int axis, const mlx_stream s) {
  core_array* x = ops_arg(a, "split", "input");
  int ax;
  if (!x || ops_axis(axis, x->ndim, "split", &ax)) return 1;
  if (indices_num && !indices) return util_error("split: null indices");
  int* bounds = malloc(sizeof(int) * (indices_num + 2));
  if (!bounds) return util_error("out of memory");
  bounds[0] = 0;
  for (size_t i = 0; i < indices_num; i++) {
    /* A negative index that reaches before the start means 0, as Python slices. */
    int b = indices[i] < 0 && indices[i] + x->shape[ax] < 0 ? 0 : indices[i];
    bounds[i + 1] = b;
  }
  bounds[indices_num + 1] = x->shape[ax];
  int status = split_at(res, x, ax, bounds, indices_num + 1, core_stream_resolve(s), "split");
  free(bounds);
  return status;
}

/* ---- slice_update ---- */

int mlx_slice_update(mlx_array* res, const mlx_array src, const mlx_array update, const int* start,
                     size_t start_num, const int* stop, size_t stop_num, const int* strides,
                     size_t strides_num, const mlx_stream s) {
  core_array* x = ops_arg(src, "slice_update", "source");
  core_array* u = x ? ops_arg(update, "slice_update", "update") : NULL;
  if (!u) return 1;
  if (start_num != (size_t)x->ndim || stop_num != (size_t)x->ndim ||
      (strides_num != 0 && strides_num != (size_t)x->ndim) || (x->ndim && (!start || !stop)))
    return util_error("slice_update: start, stop and strides need one entry per dimension (%d)", x->ndim);
  slice_params* p = malloc(sizeof *p);
  if (!p) return util_error("out of memory");
  int shape[CORE_MAX_NDIM];
  for (int i = 0; i < x->ndim; i++) {
    p->step[i] = strides_num ? strides[i] : 1;
    if (p->step[i] == 0) {
      free(p);
      return util_error("slice_update: step of dimension %d is zero", i);
    }
    shape[i] = ops_slice_dim(x->shape[i], start[i], stop[i], p->step[i], &p->start[i]);
  }
  int bshape[CORE_MAX_NDIM], bndim;
  if (ops_broadcast_shapes(u->shape, u->ndim, shape, x->ndim, bshape, &bndim, "slice_update") ||
      bndim != x->ndim || memcmp(bshape, shape, sizeof(int) * (size_t)bndim)) {
    free(p);
    return util_error("slice_update: the update cannot be broadcast to the slice's shape");
  }
  core_stream* st = core_stream_resolve(s);
  core_array* cast = ops_astype(u, x->dtype, st);
  core_array* upd = cast ? ops_broadcast_to(cast, shape, x->ndim, st) : NULL;
  core_array* out = NULL;
  if (upd) {
    core_array* inputs[2] = {x, upd};
    out = core_node_single(&prim_slice_update, p, inputs, 2, x->dtype, x->shape, x->ndim, st);
  } else {
    free(p);
  }
  core_array_release(cast);
  core_array_release(upd);
  return ops_finish(res, out, "slice_update");
}

/* ---- pad ---- */

int mlx_pad(mlx_array* res, const mlx_array a, const int* axes, size_t axes_num, const int* low_pad_size,
            size_t low_pad_size_num, const int* high_pad_size, size_t high_pad_size_num,
            const mlx_array pad_value, const char* mode, const mlx_stream s) {
  core_array* x = ops_arg(a, "pad", "input");
  core_array* v = x ? ops_arg(pad_value, "pad", "pad value") : NULL;
  if (!v) return 1;
  if (low_pad_size_num != axes_num || high_pad_size_num != axes_num)
    return util_error("pad: %zu axes need as many low and high pad sizes (got %zu and %zu)", axes_num,
                      low_pad_size_num, high_pad_size_num);
  if (axes_num && (!axes || !low_pad_size || !high_pad_size)) return util_error("pad: null axes or pad sizes");
  bool edge = mode && !strcmp(mode, "edge");
  if (mode && !edge && strcmp(mode, "constant"))
    return util_error("pad: unknown mode \"%s\" (constant or edge)", mode);
  if (v->size != 1) return util_error("pad: the pad value must have one element (has %zu)", v->size);
  int low[CORE_MAX_NDIM] = {0}, shape[CORE_MAX_NDIM];
  bool seen[CORE_MAX_NDIM] = {false};
  memcpy(shape, x->shape, sizeof(int) * (size_t)x->ndim);
  for (size_t i = 0; i < axes_num; i++) {
    int ax;
    if (ops_axis(axes[i], x->ndim, "pad", &ax)) return 1;
    if (seen[ax]) return util_error("pad: axis %d repeated", axes[i]);
    seen[ax] = true;
    if (low_pad_size[i] < 0 || high_pad_size[i] < 0)
      return util_error("pad: pad sizes must be non-negative (axis %d: %d, %d)", axes[i], low_pad_size[i],
                        high_pad_size[i]);
    int64_t n = (int64_t)x->shape[ax] + low_pad_size[i] + high_pad_size[i];
    if (n > INT32_MAX) return util_error("pad: axis %d would exceed %d elements", axes[i], INT32_MAX);
    if (edge && x->shape[ax] == 0 && n > 0)
      return util_error("pad: cannot edge-pad axis %d, which is empty", axes[i]);
    low[ax] = low_pad_size[i];
    shape[ax] = (int)n;
  }
  pad_params* p = malloc(sizeof *p);
  if (!p) return util_error("out of memory");
  memcpy(p->low, low, sizeof low);
  p->edge = edge;
  core_stream* st = core_stream_resolve(s);
  int scalar_shape[1] = {0};
  core_array* value = ops_reshape(v, scalar_shape, 0, st);
  core_array* cast = value ? ops_astype(value, x->dtype, st) : NULL;
  core_array* out = NULL;
  if (cast) {
    core_array* inputs[2] = {x, cast};
    out = core_node_single(&prim_pad, p, inputs, 2, x->dtype, shape, x->ndim, st);
  } else {
    free(p);
  }
  core_array_release(value);
  core_array_release(cast);
  return ops_finish(res, out, "pad");
}

int mlx_pad_symmetric(mlx_array* res, const mlx_array a, int pad_width, const mlx_array pad_value,
                      const char* mode, const mlx_stream s) {
  core_array* x = ops_arg(a, "pad", "input");
  if (!x) return 1;
  int axes[CORE_MAX_NDIM], width[CORE_MAX_NDIM];
  for (int i = 0; i < x->ndim; i++) axes[i] = i, width[i] = pad_width;
  return mlx_pad(res, a, axes, (size_t)x->ndim, width, (size_t)x->ndim, width, (size_t)x->ndim, pad_value,
                 mode, s);
}

/* ---- tile, repeat, roll ---- */

/* reshape(broadcast_to(reshape(x, expand), bcast), final): the copy happens in the last reshape. */
static core_array* expand_broadcast_reshape(core_array* x, const int* expand, int expand_ndim,
                                            const int* bcast, const int* final, int final_ndim,
                                            core_stream* s) {
  core_array* e = ops_reshape(x, expand, expand_ndim, s);
  core_array* b = e ? ops_broadcast_to(e, bcast, expand_ndim, s) : NULL;
  core_array* out = b ? ops_reshape(b, final, final_ndim, s) : NULL;
  core_array_release(e);
  core_array_release(b);
  return out;
}

int mlx_tile(mlx_array* res, const mlx_array arr, const int* reps, size_t reps_num, const mlx_stream s) {
  core_array* x = ops_arg(arr, "tile", "input");
  if (!x) return 1;
  if (reps_num && !reps) return util_error("tile: null reps");
  int n = x->ndim > (int)reps_num ? x->ndim : (int)reps_num;
  if ((size_t)x->ndim * 2 > CORE_MAX_NDIM || reps_num > CORE_MAX_NDIM / 2)
    return util_error("tile: at most %d dimensions", CORE_MAX_NDIM / 2);
  int expand[CORE_MAX_NDIM], bcast[CORE_MAX_NDIM], final[CORE_MAX_NDIM], k = 0;
  int64_t total = 1;
  for (int i = 0; i < n; i++) {
    int r = i - (n - (int)reps_num) >= 0 ? reps[i - (n - (int)reps_num)] : 1;
    int d = i - (n - x->ndim) >= 0 ? x->shape[i - (n - x->ndim)] : 1;
    if (r < 0) return util_error("tile: repetitions must be non-negative (got %d)", r);
    expand[k] = 1, bcast[k++] = r;
    expand[k] = d, bcast[k++] = d;
    final[i] = r * d;
    total *= final[i];
    if ((int64_t)r * d > INT32_MAX || total > (int64_t)1 << 48) return util_error("tile: the result is too large");
  }
  return ops_finish(res, expand_broadcast_reshape(x, expand, k, bcast, final, n, core_stream_resolve(s)), "tile");
}

int mlx_repeat_axis(mlx_array* res, const mlx_array arr, int repeats, int axis, const mlx_stream s) {
  core_array* x = ops_arg(arr, "repeat", "input");
  int ax;
  if (!x || ops_axis(axis, x->ndim, "repeat", &ax)) return 1;
  if (repeats < 0) return util_error("repeat: the number of repeats must be non-negative (got %d)", repeats);
  if (x->ndim + 1 > CORE_MAX_NDIM) return util_error("repeat: at most %d dimensions", CORE_MAX_NDIM - 1);
  if ((int64_t)x->shape[ax] * repeats > INT32_MAX) return util_error("repeat: the result is too large");
  /* (.., n, ..) -> (.., n, 1, ..) -> (.., n, repeats, ..) -> (.., n * repeats, ..) */
  int expand[CORE_MAX_NDIM], bcast[CORE_MAX_NDIM], final[CORE_MAX_NDIM];
  for (int i = 0, k = 0; i < x->ndim; i++) {
    expand[k] = bcast[k] = x->shape[i];
    k++;
    if (i == ax) expand[k] = 1, bcast[k++] = repeats;
    final[i] = i == ax ? x->shape[i] * repeats : x->shape[i];
  }
  return ops_finish(res, expand_broadcast_reshape(x, expand, x->ndim + 1, bcast, final, x->ndim,
                                                  core_stream_resolve(s)), "repeat");
}

/* Without an axis the input is flattened first, as numpy. */
int mlx_repeat(mlx_array* res, const mlx_array arr, int repeats, const mlx_stream s) {
  mlx_array flat = mlx_array_new();
  int status = mlx_flatten(&flat, arr, 0, -1, s);
  if (!status) status = mlx_repeat_axis(res, flat, repeats, 0, s);
  mlx_array_free(flat);
  return status;
}

/* x rolled by `shift` along ax: concatenate(x[n - shift:], x[:n - shift]). */
static core_array* roll_one(core_array* x, int64_t shift, int ax, core_stream* s) {
  int n = x->shape[ax];
  int k = n ? (int)(((shift % n) + n) % n) : 0;
  if (k == 0) {
    core_array_retain(x);
    return x;
  }
  int start[CORE_MAX_NDIM], stop[CORE_MAX_NDIM], step[CORE_MAX_NDIM];
  for (int d = 0; d < x->ndim; d++) start[d] = 0, stop[d] = x->shape[d], step[d] = 1;
  start[ax] = n - k;
  core_array* tail = ops_slice(x, start, stop, step, s);
  start[ax] = 0;
  stop[ax] = n - k;
  core_array* head = tail ? ops_slice(x, start, stop, step, s) : NULL;
  core_array* parts[2] = {tail, head};
  core_array* out = head ? concatenate(parts, 2, ax, s, "roll") : NULL;
  core_array_release(tail);
  core_array_release(head);
  return out;
}

int mlx_roll_axes(mlx_array* res, const mlx_array a, const int* shift, size_t shift_num, const int* axes,
                  size_t axes_num, const mlx_stream s) {
  core_array* x = ops_arg(a, "roll", "input");
  if (!x) return 1;
  if (shift_num != axes_num) return util_error("roll: %zu shifts given for %zu axes", shift_num, axes_num);
  if (axes_num && (!shift || !axes)) return util_error("roll: null shift or axes");
  for (size_t i = 0; i < axes_num; i++) {
    int ax;
    if (ops_axis(axes[i], x->ndim, "roll", &ax)) return 1;
  }
  core_stream* st = core_stream_resolve(s);
  core_array_retain(x);
  for (size_t i = 0; i < axes_num && x; i++) {
    int ax;
    ops_axis(axes[i], x->ndim, "roll", &ax);
    core_array* next = roll_one(x, shift[i], ax, st);
    core_array_release(x);
    x = next;
  }
  return ops_finish(res, x, "roll");
}

/* Several shifts along one axis add up (as MLX). */
int mlx_roll_axis(mlx_array* res, const mlx_array a, const int* shift, size_t shift_num, int axis,
                  const mlx_stream s) {
  core_array* x = ops_arg(a, "roll", "input");
  int ax;
  if (!x || ops_axis(axis, x->ndim, "roll", &ax)) return 1;
  if (shift_num && !shift) return util_error("roll: null shift");
  int64_t total = 0;
  for (size_t i = 0; i < shift_num; i++) total += shift[i];
  return ops_finish(res, roll_one(x, total, ax, core_stream_resolve(s)), "roll");
}

/* Without axes the array is rolled as if flattened. */
int mlx_roll(mlx_array* res, const mlx_array a, const int* shift, size_t shift_num, const mlx_stream s) {
  core_array* x = ops_arg(a, "roll", "input");
  if (!x) return 1;
  if (shift_num && !shift) return util_error("roll: null shift");
  int64_t total = 0;
  for (size_t i = 0; i < shift_num; i++) total += shift[i];
  core_stream* st = core_stream_resolve(s);
  int len = (int)x->size;
  core_array* flat = ops_reshape(x, &len, 1, st);
  core_array* rolled = flat ? roll_one(flat, total, 0, st) : NULL;
  core_array* out = rolled ? ops_reshape(rolled, x->shape, x->ndim, st) : NULL;
  core_array_release(flat);
  core_array_release(rolled);
  return ops_finish(res, out, "roll");
}

/* ---- as_strided, view, number_of_elements ---- */

/* A view of the row-major (flattened) input; every element it reaches must lie inside it. */
int mlx_as_strided(mlx_array* res, const mlx_array a, const int* shape, size_t shape_num, const int64_t* strides,
                   size_t strides_num, size_t offset, const mlx_stream s) {
  core_array* x = ops_arg(a, "as_strided", "input");
  if (!x) return 1;
  if (shape_num != strides_num) return util_error("as_strided: %zu dims but %zu strides", shape_num, strides_num);
  if (shape_num > CORE_MAX_NDIM) return util_error("as_strided: at most %d dimensions", CORE_MAX_NDIM);
  if (shape_num && (!shape || !strides)) return util_error("as_strided: null shape or strides");
  if (offset > x->size) return util_error("as_strided: offset %zu is past the input's %zu elements", offset, x->size);
  int out_shape[CORE_MAX_NDIM];
  int64_t lo = (int64_t)offset, hi = (int64_t)offset, size = 1;
  for (size_t i = 0; i < shape_num; i++) {
    if (shape[i] < 0) return util_error("as_strided: invalid dimension %d", shape[i]);
    out_shape[i] = shape[i];
    if (shape[i] && size > ((int64_t)1 << 48) / shape[i]) return util_error("as_strided: the view is too large");
    size *= shape[i];
    if (shape[i] == 0) continue;
    int64_t reach = strides[i] * (int64_t)(shape[i] - 1);
    if (reach < 0) lo += reach;
    else hi += reach;
  }
  if (size > 0 && (lo < 0 || hi >= (int64_t)x->size))
    return util_error("as_strided: the view reaches elements [%lld, %lld] outside the input's %zu",
                      (long long)lo, (long long)hi, x->size);
  as_strided_params* p = malloc(sizeof *p);
  if (!p) return util_error("out of memory");
  for (size_t i = 0; i < shape_num; i++) p->strides[i] = strides[i];
  p->offset = (int64_t)offset;
  core_stream* st = core_stream_resolve(s);
  int len = (int)x->size;
  core_array* flat = ops_reshape(x, &len, 1, st);
  core_array* out = flat ? core_node_single(&prim_as_strided, p, &flat, 1, x->dtype, out_shape, (int)shape_num, st) : NULL;
  if (!flat) free(p);
  core_array_release(flat);
  return ops_finish(res, out, "as_strided");
}

/* Reinterprets the bytes as `dtype`; the last dim grows or shrinks by the ratio of sizes. */
int mlx_view(mlx_array* res, const mlx_array a, mlx_dtype dtype, const mlx_stream s) {
  core_array* x = ops_arg(a, "view", "input");
  if (!x) return 1;
  if (!core_dtype_valid(dtype)) return util_error("view: invalid dtype %d", (int)dtype);
  if (x->dtype == dtype) {
    core_array_retain(x);
    return ops_finish(res, x, "view");
  }
  size_t ib = core_dtype_size(x->dtype), ob = core_dtype_size(dtype);
  int shape[CORE_MAX_NDIM];
  memcpy(shape, x->shape, sizeof(int) * (size_t)x->ndim);
  if (ib != ob) {
    if (x->ndim == 0)
      return util_error("view: a scalar can only be viewed as a dtype of the same size");
    int64_t bytes = (int64_t)shape[x->ndim - 1] * (int64_t)ib;
    if (bytes % (int64_t)ob)
      return util_error("view: the last axis holds %lld bytes, not a multiple of %s's %zu", (long long)bytes,
                        core_dtype_name(dtype), ob);
    if (bytes / (int64_t)ob > INT32_MAX) return util_error("view: the last axis would be too long");
    shape[x->ndim - 1] = (int)(bytes / (int64_t)ob);
  }
  return ops_finish(res, core_node_single(&prim_view, NULL, &x, 1, dtype, shape, x->ndim,
                                          core_stream_resolve(s)), "view");
}

/* The product of the sizes of `axes` (of the other axes when inverted), as a scalar of dtype.
 * Shapes are static here, so the value is known now. */
int mlx_number_of_elements(mlx_array* res, const mlx_array a, const int* axes, size_t axes_num, bool inverted,
                           mlx_dtype dtype, const mlx_stream s) {
  core_array* x = ops_arg(a, "number_of_elements", "input");
  if (!x) return 1;
  if (!core_dtype_valid(dtype)) return util_error("number_of_elements: invalid dtype %d", (int)dtype);
  if (axes_num && !axes) return util_error("number_of_elements: null axes");
  bool chosen[CORE_MAX_NDIM] = {false};
  for (size_t i = 0; i < axes_num; i++) {
    int ax;
    if (ops_axis(axes[i], x->ndim, "number_of_elements", &ax)) return 1;
    if (chosen[ax]) return util_error("number_of_elements: axis %d repeated", axes[i]);
    chosen[ax] = true;
  }
  double count = 1;
  for (int i = 0; i < x->ndim; i++)
    if (chosen[i] != inverted) count *= x->shape[i];
  mlx_array value = mlx_array_new_float64(count);
  if (!value.ctx) return 1;
  core_array* out = ops_astype(core_ctx(value), dtype, core_stream_resolve(s));
  mlx_array_free(value);
  return ops_finish(res, out, "number_of_elements");
}

/* ---- slices at run-time offsets ---- */

/* Checks `start` (integers, one per axis) and `axes` (distinct) and fills the params. */
static int dynamic_params(const core_array* x, const core_array* start, const int* axes, size_t axes_num,
                          dynamic_slice_params* p, const char* op) {
  if (!core_dtype_is_integer(start->dtype))
    return util_error("%s: start must have an integer dtype (got %s)", op, core_dtype_name(start->dtype));
  if (start->size != axes_num)
    return util_error("%s: %zu start values for %zu axes", op, start->size, axes_num);
  if (axes_num > (size_t)x->ndim || (axes_num && !axes)) return util_error("%s: invalid axes", op);
  bool seen[CORE_MAX_NDIM] = {false};
  p->naxes = (int)axes_num;
  for (size_t i = 0; i < axes_num; i++) {
    if (ops_axis(axes[i], x->ndim, op, &p->axes[i])) return 1;
    if (seen[p->axes[i]]) return util_error("%s: axis %d repeated", op, axes[i]);
    seen[p->axes[i]] = true;
  }
  return 0;
}

/* A copy of a[start : start + slice_size] where start (an array) gives the offsets along
 * `axes` (0 along the others). Negative starts count from the end; starts are then clamped so
 * the slice stays inside the array. */
int mlx_slice_dynamic(mlx_array* res, const mlx_array a, const mlx_array start, const int* axes, size_t axes_num,
                      const int* slice_size, size_t slice_size_num, const mlx_stream s) {
  const char* op = "slice_dynamic";
  core_array* x = ops_arg(a, op, "input");
  core_array* st = x ? ops_arg(start, op, "start") : NULL;
  if (!st) return 1;
  if (slice_size_num != (size_t)x->ndim || (slice_size_num && !slice_size))
    return util_error("%s: slice_size needs one entry per dimension (%d)", op, x->ndim);
  for (int i = 0; i < x->ndim; i++)
    if (slice_size[i] < 0 || slice_size[i] > x->shape[i])
      return util_error("%s: slice size %d does not fit dimension %d of size %d", op, slice_size[i], i, x->shape[i]);
  dynamic_slice_params* p = malloc(sizeof *p);
  if (!p) return util_error("out of memory");
  if (dynamic_params(x, st, axes, axes_num, p, op)) {
    free(p);
    return 1;
  }
  int shape[CORE_MAX_NDIM];
  for (int i = 0; i < x->ndim; i++) shape[i] = slice_size[i];
  core_array* inputs[2] = {x, st};
  return ops_finish(res, core_node_single(&prim_dynamic_slice, p, inputs, 2, x->dtype, shape, x->ndim,
                                          core_stream_resolve(s)), op);
}

/* A copy of src with the update (cast to src's dtype; missing leading dims count as 1) written
 * at run-time offsets, resolved as in mlx_slice_dynamic. */
int mlx_slice_update_dynamic(mlx_array* res, const mlx_array src, const mlx_array update, const mlx_array start,
                             const int* axes, size_t axes_num, const mlx_stream s) {
  const char* op = "slice_update_dynamic";
  core_array* x = ops_arg(src, op, "source");
  core_array* u = x ? ops_arg(update, op, "update") : NULL;
  core_array* st = u ? ops_arg(start, op, "start") : NULL;
  if (!st) return 1;
  if (u->ndim > x->ndim) return util_error("%s: the update has more dimensions than the source", op);
  int shape[CORE_MAX_NDIM];
  for (int i = 0; i < x->ndim; i++) {
    int k = i - (x->ndim - u->ndim);
    shape[i] = k >= 0 ? u->shape[k] : 1;
    if (shape[i] > x->shape[i])
      return util_error("%s: the update's dimension %d (%d) is larger than the source's (%d)", op, i, shape[i],
                        x->shape[i]);
  }
  dynamic_slice_params* p = malloc(sizeof *p);
  if (!p) return util_error("out of memory");
  if (dynamic_params(x, st, axes, axes_num, p, op)) {
    free(p);
    return 1;
  }
  core_stream* stream = core_stream_resolve(s);
  core_array* cast = ops_astype(u, x->dtype, stream);
  core_array* upd = cast ? ops_reshape(cast, shape, x->ndim, stream) : NULL;
  core_array* out = NULL;
  if (upd) {
    core_array* inputs[3] = {x, upd, st};
    out = core_node_single(&prim_dynamic_slice_update, p, inputs, 3, x->dtype, x->shape, x->ndim, stream);
  } else {
    free(p);
  }
  core_array_release(cast);
  core_array_release(upd);
  return ops_finish(res, out, op);
}
