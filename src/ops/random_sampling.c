/* mlx-c random: categorical sampling (Gumbel-max), permutations and the multivariate normal,
 * composed from other ops as MLX composes them (mlx/random.cpp). */
#include <string.h>

#include "core/array.h"
#include "mlx/c/mlx.h"
#include "ops/random.h"
#include "util/error.h"

#define CALL(expr)            \
  do {                        \
    status = (expr);          \
    if (status) goto cleanup; \
  } while (0)

static int valid_axis(int axis, int ndim, int* out) {
  int a = axis < 0 ? axis + ndim : axis;
  if (a < 0 || a >= ndim)
    return util_error("random.categorical: invalid axis %d for logits with %d dimensions", axis, ndim);
  *out = a;
  return 0;
}

/* argmax(gumbel + logits) along the axis, the Gumbel noise shaped `shape` with the axis put back. */
static int categorical_impl(mlx_array* res, mlx_array logits, int axis, const int* shape, size_t ndim,
                            const mlx_array key, mlx_stream s) {
  int gshape[CORE_MAX_NDIM + 1];
  size_t offset = (size_t)axis + ndim + 1 - mlx_array_ndim(logits);
  if (ndim + 1 > CORE_MAX_NDIM || offset > ndim) return util_error("random.categorical: shape does not fit the logits");
  memcpy(gshape, shape, sizeof(int) * offset);
  gshape[offset] = mlx_array_dim(logits, axis);
  memcpy(gshape + offset + 1, shape + offset, sizeof(int) * (ndim - offset));
  mlx_array g = mlx_array_new();
  int status = 0;
  CALL(mlx_random_gumbel(&g, gshape, ndim + 1, MLX_FLOAT32, key, s));
  CALL(mlx_add(&g, g, logits, s));
  CALL(mlx_argmax_axis(res, g, (int)offset, false, s));
cleanup:
  mlx_array_free(g);
  return status;
}

int mlx_random_categorical_shape(mlx_array* res, const mlx_array logits, int axis, const int* shape,
                                 size_t shape_num, const mlx_array key, const mlx_stream s) {
  if (!logits.ctx) return util_error("random.categorical: logits is an empty array");
  int ax = 0;
  if (valid_axis(axis, (int)mlx_array_ndim(logits), &ax)) return 1;
  /* The requested shape must be what the reduced logits broadcast to. */
  int reduced[CORE_MAX_NDIM], n = 0;
  for (int i = 0; i < (int)mlx_array_ndim(logits); i++)
    if (i != ax) reduced[n++] = mlx_array_dim(logits, i);
  if ((size_t)n > shape_num) goto incompatible;
  for (int i = 0; i < n; i++) {
    int want = shape[shape_num - n + i];
    if (reduced[i] != want && reduced[i] != 1) goto incompatible;
  }
  return categorical_impl(res, logits, ax, shape, shape_num, key, s);
incompatible:
  return util_error("random.categorical: the requested shape is not broadcast compatible with the reduced logits");
}

int mlx_random_categorical(mlx_array* res, const mlx_array logits, int axis, const mlx_array key, const mlx_stream s) {
  if (!logits.ctx) return util_error("random.categorical: logits is an empty array");
  int ax = 0, shape[CORE_MAX_NDIM], n = 0;
  if (valid_axis(axis, (int)mlx_array_ndim(logits), &ax)) return 1;
  for (int i = 0; i < (int)mlx_array_ndim(logits); i++)
    if (i != ax) shape[n++] = mlx_array_dim(logits, i);
  return categorical_impl(res, logits, ax, shape, (size_t)n, key, s);
}

int mlx_random_categorical_num_samples(mlx_array* res, const mlx_array logits_, int axis, int num_samples,
                                       const mlx_array key, const mlx_stream s) {
  if (!logits_.ctx) return util_error("random.categorical: logits is an empty array");
  if (num_samples < 0) return util_error("random.categorical: num_samples must be non-negative");
  int ax = 0, shape[CORE_MAX_NDIM + 1], n = 0;
  if (valid_axis(axis, (int)mlx_array_ndim(logits_), &ax)) return 1;
  mlx_array logits = mlx_array_new();
  int status = mlx_expand_dims(&logits, logits_, -1, s);
  if (!status) {
    for (int i = 0; i < (int)mlx_array_ndim(logits); i++)
      if (i != ax) shape[n++] = mlx_array_dim(logits, i);
    shape[n - 1] = num_samples;
    status = categorical_impl(res, logits, ax, shape, (size_t)n, key, s);
  }
  mlx_array_free(logits);
  return status;
}

int mlx_random_permutation_arange(mlx_array* res, int x, const mlx_array key, const mlx_stream s) {
  if (x < 0) return util_error("random.permutation: size must be non-negative (got %d)", x);
  mlx_array bits = mlx_array_new();
  int shape[1] = {x};
  int status = mlx_random_bits(&bits, shape, 1, 4, key, s);
  if (!status) status = mlx_argsort(res, bits, s);
  mlx_array_free(bits);
  return status;
}

int mlx_random_permutation(mlx_array* res, const mlx_array x, int axis, const mlx_array key, const mlx_stream s) {
  if (!x.ctx) return util_error("random.permutation: x is an empty array");
  int ndim = (int)mlx_array_ndim(x), ax = axis < 0 ? axis + ndim : axis;
  if (ax < 0 || ax >= ndim) return util_error("random.permutation: invalid axis %d for %d dimensions", axis, ndim);
  mlx_array order = mlx_array_new();
  int status = mlx_random_permutation_arange(&order, mlx_array_dim(x, ax), key, s);
  if (!status) status = mlx_take_axis(res, x, order, ax, s);
  mlx_array_free(order);
  return status;
}

int mlx_random_multivariate_normal(mlx_array* res, const mlx_array mean, const mlx_array cov, const int* shape,
                                   size_t shape_num, mlx_dtype dtype, const mlx_array key, const mlx_stream s) {
  const char* op = "random.multivariate_normal";
  if (dtype != MLX_FLOAT32) return util_error("%s: dtype must be float32", op);
  if (!mean.ctx || !cov.ctx) return util_error("%s: mean and cov are required", op);
  int mnd = (int)mlx_array_ndim(mean), cnd = (int)mlx_array_ndim(cov);
  if (mnd < 1) return util_error("%s: mean must have at least one dimension", op);
  if (cnd < 2) return util_error("%s: cov must have at least two dimensions", op);
  int n = mlx_array_dim(mean, -1);
  if (mlx_array_dim(cov, -1) != mlx_array_dim(cov, -2)) return util_error("%s: the last two dimensions of cov must be equal", op);
  if (n != mlx_array_dim(cov, -1)) return util_error("%s: mean and cov must have compatible shapes", op);
  /* Output shape: broadcast(cov batch, mean batch, shape) + (n,) */
  int out[CORE_MAX_NDIM + 1], nd = 0;
  int a[CORE_MAX_NDIM], b[CORE_MAX_NDIM];
  int na = cnd - 2, nb = mnd - 1;
  for (int i = 0; i < na; i++) a[i] = mlx_array_dim(cov, i);
  for (int i = 0; i < nb; i++) b[i] = mlx_array_dim(mean, i);
  int lens[3] = {na, nb, (int)shape_num};
  const int* srcs[3] = {a, b, shape};
  for (int k = 0; k < 3; k++) {
    int merged[CORE_MAX_NDIM], m = nd > lens[k] ? nd : lens[k];
    for (int i = 0; i < m; i++) {
      int x = i - (m - nd) >= 0 ? out[i - (m - nd)] : 1, y = i - (m - lens[k]) >= 0 ? srcs[k][i - (m - lens[k])] : 1;
      if (x != y && x != 1 && y != 1) return util_error("%s: shapes of mean, cov and shape do not broadcast", op);
      merged[i] = x == 1 ? y : x;
    }
    memcpy(out, merged, sizeof(int) * (size_t)m);
    nd = m;
  }
  if ((size_t)nd != shape_num) return util_error("%s: shapes of mean, cov and shape do not broadcast", op);
  out[nd++] = n;
  /* std = U * sqrt(S) @ Vt: a square root of the covariance. */
  mlx_vector_array usv = mlx_vector_array_new();
  mlx_array c = mlx_array_new(), u = mlx_array_new(), sv = mlx_array_new(), vt = mlx_array_new();
  mlx_array std = mlx_array_new(), z = mlx_array_new();
  int status = 0;
  CALL(mlx_astype(&c, cov, MLX_FLOAT32, s));
  CALL(mlx_linalg_svd(&usv, c, true, s));
  CALL(mlx_vector_array_get(&u, usv, 0));
  CALL(mlx_vector_array_get(&sv, usv, 1));
  CALL(mlx_vector_array_get(&vt, usv, 2));
  CALL(mlx_sqrt(&sv, sv, s));
  CALL(mlx_expand_dims(&sv, sv, -2, s));
  CALL(mlx_multiply(&std, u, sv, s));
  CALL(mlx_matmul(&std, std, vt, s));
  CALL(mlx_random_normal(&z, out, (size_t)nd, dtype, 0.0f, 1.0f, key, s));
  CALL(mlx_expand_dims(&z, z, -2, s));
  CALL(mlx_matmul(&z, z, std, s));
  int squeeze_shape[CORE_MAX_NDIM + 1];
  memcpy(squeeze_shape, out, sizeof(int) * (size_t)nd);
  CALL(mlx_reshape(&z, z, squeeze_shape, (size_t)nd, s));
  CALL(mlx_add(res, mean, z, s));
cleanup:
  mlx_vector_array_free(usv);
  mlx_array* all[] = {&c, &u, &sv, &vt, &std, &z};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) mlx_array_free(*all[i]);
  return status;
}
