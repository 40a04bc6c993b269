/* Constructors of mlxc/fast.h's linear_residual and rms_norm_linear: one float16/bfloat16 row is
 * one fused node (backend/cpu/norm_linear.c); several rows, and float32, compose the public ops
 * with the roundings the fused kernels reproduce. */
#include <stdlib.h>
#include <string.h>

#include "mlx/c/ops.h"
#include "mlxc/fast.h"
#include "ops/fast_internal.h"
#include "ops/fast_params.h"
#include "ops/ops_common.h"
#include "ops/primitives.h"

static bool is_linear_dtype(mlx_dtype d) { return d == MLX_FLOAT32 || d == MLX_FLOAT16 || d == MLX_BFLOAT16; }

/* a has b's number of dimensions and b's leading ones (all but the last). */
static bool same_leading_dims(const core_array* a, const core_array* b) {
  return a->ndim == b->ndim && !memcmp(a->shape, b->shape, sizeof(int) * (size_t)(b->ndim - 1));
}

/* The activations x or h (..., F) of the two ops: at least one dimension, float32, float16 or
 * bfloat16. */
static int check_activations(const core_array* x, const char* what, const char* name) {
  if (x->ndim < 1) return util_error("%s: %s must have at least one dimension", name, what);
  if (!is_linear_dtype(x->dtype))
    return util_error("%s: %s must be float32, float16 or bfloat16 (got %s)", name, what, core_dtype_name(x->dtype));
  return 0;
}

/* An optional vector of the ops (norm weight, bias): shape (n) and the activations' dtype. */
static int check_vector(const core_array* v, int64_t n, mlx_dtype dtype, const char* what, const char* name) {
  if (v->ndim != 1 || v->shape[0] != n) return util_error("%s: %s must have shape (%lld)", name, what, (long long)n);
  if (v->dtype != dtype)
    return util_error("%s: %s (%s) must have the input's dtype (%s)", name, what, core_dtype_name(v->dtype),
                      core_dtype_name(dtype));
  return 0;
}

/* A plain weight (rows, F) of the activations' dtype for their last dimension F. */
static int check_weight(const core_array* w, const core_array* x, const char* name) {
  const int F = x->shape[x->ndim - 1];
  if (w->dtype != x->dtype)
    return util_error("%s: the weight (%s) must have the input's dtype (%s)", name, core_dtype_name(w->dtype),
                      core_dtype_name(x->dtype));
  if (w->ndim != 2 || w->shape[1] != F)
    return util_error("%s: the weight must have shape (N, %d) for the input's last dimension %d", name, F, F);
  return 0;
}

/* ---- linear_residual ---- */

/* x (..., K), w (N, K), residual (..., N) with x's leading dimensions, one dtype, N a multiple
 * of 4. */
static int check_linear_residual(const core_array* x, const core_array* w, const core_array* r, const char* name) {
  if (check_activations(x, "x", name) || check_weight(w, x, name)) return 1;
  const int N = w->shape[0];
  if (N % 4) return util_error("%s: the weight's %d rows must be a multiple of 4 (sumsq adds runs of 4)", name, N);
  if (r->dtype != x->dtype)
    return util_error("%s: the residual (%s) must have x's dtype (%s)", name, core_dtype_name(r->dtype),
                      core_dtype_name(x->dtype));
  if (!same_leading_dims(r, x) || r->shape[r->ndim - 1] != N)
    return util_error("%s: the residual must have shape (..., %d): x's leading dimensions and the weight's rows",
                      name, N);
  return 0;
}

/* (..., N / 4) float32 of sum (..., N): the squares added over each run of 4 features from left
 * to right, ((s0^2 + s1^2) + s2^2) + s3^2, as strided slices and float32 adds (mlx_sum adds in
 * double and rounds once, which can differ in the last bit). */
static int sums_of_squares(mlx_array* res, mlx_array sum, mlx_stream s) {
  const core_array* a = core_ctx(sum);
  int start[CORE_MAX_NDIM] = {0}, stop[CORE_MAX_NDIM], strides[CORE_MAX_NDIM];
  const int nd = a->ndim;
  for (int d = 0; d < nd; d++) {
    stop[d] = a->shape[d];
    strides[d] = d == nd - 1 ? 4 : 1;
  }
  mlx_array squares = mlx_array_new(), acc = mlx_array_new(), part = mlx_array_new();
  int status = 0;
  TRY(mlx_astype(&squares, sum, MLX_FLOAT32, s));
  TRY(mlx_square(&squares, squares, s));
  TRY(mlx_slice(&acc, squares, start, (size_t)nd, stop, (size_t)nd, strides, (size_t)nd, s));
  for (int j = 1; j < 4; j++) {
    start[nd - 1] = j;
    TRY(mlx_slice(&part, squares, start, (size_t)nd, stop, (size_t)nd, strides, (size_t)nd, s));
    TRY(mlx_add(j == 3 ? res : &acc, acc, part, s));
  }
cleanup:
  mlx_array_free(squares);
  mlx_array_free(acc);
  mlx_array_free(part);
  return status;
}

/* Several rows, or float32: matmul with the transposed weight, the residual added, and the sums
 * of squares of the stored sum. */
static int linear_residual_composed(mlx_array* sum, mlx_array* sumsq, mlx_array x, mlx_array w, mlx_array residual,
                                    mlx_stream s) {
  mlx_array wt = mlx_array_new(), t = mlx_array_new(), total = mlx_array_new(), squares = mlx_array_new();
  int status = 0;
  TRY(mlx_transpose(&wt, w, s)); /* a view: matmul reads it as W^T */
  TRY(mlx_matmul(&t, x, wt, s));
  TRY(mlx_add(&total, residual, t, s));
  TRY(sums_of_squares(&squares, total, s));
  TRY(mlx_array_set(sum, total));
  TRY(mlx_array_set(sumsq, squares));
cleanup:
  mlx_array_free(wt);
  mlx_array_free(t);
  mlx_array_free(total);
  mlx_array_free(squares);
  return status;
}

int mlxc_fast_linear_residual(mlx_array* sum, mlx_array* sumsq, const mlx_array x_, const mlx_array w_,
                              const mlx_array residual_, const mlx_stream s) {
  const char* name = "fast.linear_residual";
  core_array* x = ops_arg(x_, name, "x");
  core_array* w = x ? ops_arg(w_, name, "weight") : NULL;
  core_array* r = w ? ops_arg(residual_, name, "residual") : NULL;
  if (!r) return 1;
  if (check_linear_residual(x, w, r, name)) return 1;
  /* One half-precision row is the fused kernel's case (as gated_linear's). */
  const int64_t K = x->shape[x->ndim - 1];
  if (K == 0 || (int64_t)x->size / K != 1 || x->dtype == MLX_FLOAT32)
    return linear_residual_composed(sum, sumsq, x_, w_, residual_, s);
  int shape[CORE_MAX_NDIM]; /* sumsq: (..., N / 4) */
  memcpy(shape, r->shape, sizeof(int) * (size_t)r->ndim);
  shape[r->ndim - 1] = w->shape[0] / 4;
  core_array *inputs[3] = {x, w, r}, *outs[2] = {NULL, NULL};
  const mlx_dtype dtypes[2] = {r->dtype, MLX_FLOAT32};
  const int* shapes[2] = {r->shape, shape};
  const int ndims[2] = {r->ndim, r->ndim};
  if (core_node_create(&prim_linear_residual, NULL, inputs, 3, 2, dtypes, shapes, ndims, core_stream_resolve(s),
                       outs))
    return 1;
  core_assign(sum, outs[0]);
  core_assign(sumsq, outs[1]);
  return 0;
}

/* ---- rms_norm_linear ---- */

/* h (..., D); sumsq float32 (..., P) with h's leading dimensions, P >= 1; norm weight (D); w
 * (N, D), or (2I, D) stacking gate over up when gated; bias (N), not with an activation. */
static int check_norm_linear(const core_array* h, const core_array* sumsq, const core_array* norm_weight,
                             const core_array* w, const core_array* bias, bool gated, const char* name) {
  if (check_activations(h, "h", name)) return 1;
  const int D = h->shape[h->ndim - 1];
  if (sumsq->dtype != MLX_FLOAT32)
    return util_error("%s: sumsq must be float32 (got %s)", name, core_dtype_name(sumsq->dtype));
  if (!same_leading_dims(sumsq, h) || sumsq->shape[sumsq->ndim - 1] < 1)
    return util_error("%s: sumsq must have shape (..., P): h's leading dimensions and P >= 1", name);
  if (norm_weight && check_vector(norm_weight, D, h->dtype, "the norm weight", name)) return 1;
  if (check_weight(w, h, name)) return 1;
  if (gated && bias) return util_error("%s: a bias is not allowed with an activation (the gated form)", name);
  if (gated && w->shape[0] % 2)
    return util_error("%s: the weight's %d rows must stack gate over up (an even count)", name, w->shape[0]);
  return bias ? check_vector(bias, w->shape[0], h->dtype, "the bias", name) : 0;
}

/* mlx_fast_rms_norm's value of h with the mean square sum(sumsq) / D, in the rms_norm kernel's
 * steps (backend/cpu/fast.c): inv = 1 / sqrt(ms + eps) in float32, h * inv rounded to h's dtype,
 * then times the norm weight (one more rounding). */
static int rms_norm_composed(mlx_array* normed, mlx_array h, mlx_array sumsq, mlx_array norm_weight, float eps,
                             mlx_stream s) {
  const core_array* ha = core_ctx(h);
  mlx_array total = mlx_array_new(), inv = mlx_array_new(), h32 = mlx_array_new(), scaled = mlx_array_new();
  mlx_array D = mlx_array_new_float((float)ha->shape[ha->ndim - 1]), e = mlx_array_new_float(eps),
            one = mlx_array_new_float(1.0f);
  int status = 0;
  TRY(mlx_sum_axis(&total, sumsq, -1, true, s)); /* (..., 1) */
  TRY(mlx_divide(&total, total, D, s));
  TRY(mlx_add(&total, total, e, s));
  TRY(mlx_sqrt(&total, total, s));
  TRY(mlx_divide(&inv, one, total, s));
  TRY(mlx_astype(&h32, h, MLX_FLOAT32, s));
  TRY(mlx_multiply(&h32, h32, inv, s));
  TRY(mlx_astype(&scaled, h32, ha->dtype, s));
  if (norm_weight.ctx) TRY(mlx_multiply(&scaled, scaled, norm_weight, s));
  TRY(mlx_array_set(normed, scaled));
cleanup:
  mlx_array_free(D);
  const mlx_array temporaries[6] = {total, inv, h32, scaled, e, one};
  for (int i = 0; i < 6; i++) mlx_array_free(temporaries[i]);
  return status;
}

/* The linear layer on the normalised rows as lm_linear_apply runs it (matmul, or one addmm with
 * a bias), or gated_linear's composed form. */
static int linear_composed(mlx_array* out, mlx_array x, mlx_array w, mlx_array bias, const char* activation,
                           mlx_stream s) {
  if (activation) {
    const mlx_optional_int unset = {0, false};
    return mlxc_fast_gated_linear(out, x, w, mlx_array_new(), mlx_array_new(), unset, unset, activation, s);
  }
  mlx_array wt = mlx_array_new();
  int status = mlx_transpose(&wt, w, s); /* a view: matmul reads it as W^T */
  if (!status) status = bias.ctx ? mlx_addmm(out, bias, x, wt, 1.0f, 1.0f, s) : mlx_matmul(out, x, wt, s);
  mlx_array_free(wt);
  return status;
}

static int rms_norm_linear_composed(mlx_array* out, mlx_array h, mlx_array sumsq, mlx_array norm_weight, float eps,
                                    mlx_array w, mlx_array bias, const char* activation, mlx_stream s) {
  mlx_array normed = mlx_array_new();
  int status = rms_norm_composed(&normed, h, sumsq, norm_weight, eps, s);
  if (!status) status = linear_composed(out, normed, w, bias, activation, s);
  mlx_array_free(normed);
  return status;
}

int mlxc_fast_rms_norm_linear(mlx_array* out, const mlx_array h_, const mlx_array sumsq_, const mlx_array norm_weight_,
                              float eps, const mlx_array w_, const mlx_array bias_, const char* activation,
                              const mlx_stream s) {
  const char* name = "fast.rms_norm_linear";
  core_array* h = ops_arg(h_, name, "h");
  core_array* sumsq = h ? ops_arg(sumsq_, name, "sumsq") : NULL;
  core_array* w = sumsq ? ops_arg(w_, name, "weight") : NULL;
  if (!w) return 1;
  core_array *norm_weight = core_ctx(norm_weight_), *bias = core_ctx(bias_);
  norm_linear_params params = {eps, norm_weight != NULL, bias != NULL, activation != NULL, GLU_SILU};
  if (activation && ops_parse_glu_activation(activation, &params.activation, name)) return 1;
  if (check_norm_linear(h, sumsq, norm_weight, w, bias, params.gated, name)) return 1;
  /* One half-precision row is the fused kernel's case (as gated_linear's). */
  const int64_t D = h->shape[h->ndim - 1];
  if (D == 0 || (int64_t)h->size / D != 1 || h->dtype == MLX_FLOAT32)
    return rms_norm_linear_composed(out, h_, sumsq_, norm_weight_, eps, w_, bias_, activation, s);
  norm_linear_params* p = malloc(sizeof *p);
  if (!p) return util_error("out of memory");
  *p = params;
  int shape[CORE_MAX_NDIM]; /* (..., N), or (..., I) gated */
  memcpy(shape, h->shape, sizeof(int) * (size_t)h->ndim);
  shape[h->ndim - 1] = params.gated ? w->shape[0] / 2 : w->shape[0];
  core_array* inputs[5] = {h, sumsq, w};
  int n = 3;
  if (norm_weight) inputs[n++] = norm_weight;
  if (bias) inputs[n++] = bias;
  core_array* result = core_node_single(&prim_rms_norm_linear, p, inputs, n, h->dtype, shape, h->ndim,
                                        core_stream_resolve(s));
  return ops_finish(out, result, name);
}
