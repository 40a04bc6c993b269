/* Constructors of mlxc/fast.h's linear_residual and rms_norm_linear: one float16/bfloat16 row
 * with plain, 4-bit or 8-bit weights is one fused node (backend/cpu/norm_linear.c); several rows,
 * float32 and other widths compose the public ops with the roundings the fused kernels
 * reproduce. */
#include <stdlib.h>
#include <string.h>

#include "mlx/c/ops.h"
#include "mlxc/fast.h"
#include "ops/fast_internal.h"
#include "ops/fast_params.h"
#include "ops/ops_common.h"
#include "ops/primitives.h"

/* a has b's number of dimensions and b's leading ones (all but the last). */
static bool same_leading_dims(const core_array* a, const core_array* b) {
  return a->ndim == b->ndim && !memcmp(a->shape, b->shape, sizeof(int) * (size_t)(b->ndim - 1));
}

/* An optional vector of the ops (norm weight, bias): shape (n) and the activations' dtype. */
static int check_vector(const core_array* v, int64_t n, mlx_dtype dtype, const char* what, const char* name) {
  if (v->ndim != 1 || v->shape[0] != n) return util_error("%s: %s must have shape (%lld)", name, what, (long long)n);
  if (v->dtype != dtype)
    return util_error("%s: %s (%s) must have the input's dtype (%s)", name, what, core_dtype_name(v->dtype),
                      core_dtype_name(dtype));
  return 0;
}

/* One float16/bfloat16 row with a plain, 4-bit or 8-bit weight: the fused kernels' case (the
 * GPU's decode GEMVs take exactly these; several rows go to GEMMs, and float32 or other widths
 * compose, as a CPU fallback would break a recorded decode step). */
static bool is_fused_case(const core_array* x, const ops_linear_weight* layout) {
  const int64_t K = x->shape[x->ndim - 1];
  return K > 0 && (int64_t)x->size == K && x->dtype != MLX_FLOAT32 &&
         (!layout->quantized || layout->bits == 4 || layout->bits == 8);
}

/* ---- linear_residual ---- */

/* x (..., K); the weight (N rows, plain or quantized); residual (..., N) with x's leading
 * dimensions and dtype; norm weight (N) of x's dtype. Fills *layout. */
static int check_linear_residual(ops_linear_weight* layout, const core_array* x, const core_array* w,
                                 const core_array* scales, const core_array* biases, mlx_optional_int group_size,
                                 mlx_optional_int bits, const core_array* r, const core_array* norm_weight,
                                 const char* name) {
  if (ops_check_activations(x, "x", name) ||
      ops_check_linear_weight(layout, x, "x", w, scales, biases, group_size, bits, "N", name))
    return 1;
  const int N = w->shape[0];
  if (r->dtype != x->dtype)
    return util_error("%s: the residual (%s) must have x's dtype (%s)", name, core_dtype_name(r->dtype),
                      core_dtype_name(x->dtype));
  if (!same_leading_dims(r, x) || r->shape[r->ndim - 1] != N)
    return util_error("%s: the residual must have shape (..., %d): x's leading dimensions and the weight's rows",
                      name, N);
  return norm_weight ? check_vector(norm_weight, N, x->dtype, "the norm weight", name) : 0;
}

/* (..., P) float32 of sum (..., N), P = ceil(N / 4): the float32 squares of its stored values
 * added over each run of 4 features from left to right, ((s0^2 + s1^2) + s2^2) + s3^2. The
 * squares are padded with zeros to 4P (adding a zero is exact, so a short last run keeps its
 * value), and the run's j-th squares are the strided slice j, j + 4, ...; float32 adds, as
 * mlx_sum adds in double and rounds once, which can differ in the last bit. */
static int sums_of_squares(mlx_array* res, mlx_array sum, mlx_stream s) {
  const core_array* a = core_ctx(sum);
  const int nd = a->ndim, N = a->shape[nd - 1], P = (N + 3) / 4, last = nd - 1, low = 0, high = 4 * P - N;
  int start[CORE_MAX_NDIM] = {0}, stop[CORE_MAX_NDIM], strides[CORE_MAX_NDIM];
  for (int d = 0; d < nd; d++) {
    stop[d] = d == last ? 4 * P : a->shape[d];
    strides[d] = d == last ? 4 : 1;
  }
  mlx_array squares = mlx_array_new(), zero = mlx_array_new_float(0.0f), acc = mlx_array_new(),
            part = mlx_array_new();
  int status = 0;
  TRY(mlx_astype(&squares, sum, MLX_FLOAT32, s));
  TRY(mlx_square(&squares, squares, s));
  if (high) TRY(mlx_pad(&squares, squares, &last, 1, &low, 1, &high, 1, zero, "constant", s)); /* (..., 4P) */
  TRY(mlx_slice(&acc, squares, start, (size_t)nd, stop, (size_t)nd, strides, (size_t)nd, s));
  for (int j = 1; j < 4; j++) {
    start[last] = j;
    TRY(mlx_slice(&part, squares, start, (size_t)nd, stop, (size_t)nd, strides, (size_t)nd, s));
    TRY(mlx_add(j == 3 ? res : &acc, acc, part, s));
  }
cleanup:
  mlx_array_free(squares);
  mlx_array_free(zero);
  mlx_array_free(acc);
  mlx_array_free(part);
  return status;
}

/* Several rows, float32, or other widths: the linear layer, the residual added, the sums of
 * the squares of the stored sum by runs of 4, and the sum times the norm weight (or the sum
 * itself). */
static int linear_residual_composed(mlx_array* sum, mlx_array* sumsq, mlx_array* scaled, mlx_array x, mlx_array w,
                                    mlx_array scales, mlx_array biases, const ops_linear_weight* layout,
                                    mlx_array residual, mlx_array norm_weight, mlx_stream s) {
  mlx_array t = mlx_array_new(), total = mlx_array_new(), squares = mlx_array_new(), product = mlx_array_new();
  int status = 0;
  TRY(ops_linear_product(&t, x, w, scales, biases, layout, s));
  TRY(mlx_add(&total, residual, t, s));
  TRY(sums_of_squares(&squares, total, s));
  if (norm_weight.ctx)
    TRY(mlx_multiply(&product, total, norm_weight, s));
  else
    TRY(mlx_array_set(&product, total));
  TRY(mlx_array_set(sum, total));
  TRY(mlx_array_set(sumsq, squares));
  TRY(mlx_array_set(scaled, product));
cleanup:
  mlx_array_free(t);
  mlx_array_free(total);
  mlx_array_free(squares);
  mlx_array_free(product);
  return status;
}

int mlxc_fast_linear_residual(mlx_array* sum, mlx_array* sumsq, mlx_array* scaled, const mlx_array x_,
                              const mlx_array w_, const mlx_array scales_, const mlx_array biases_,
                              mlx_optional_int group_size, mlx_optional_int bits, const mlx_array residual_,
                              const mlx_array norm_weight_, const mlx_stream s) {
  const char* name = "fast.linear_residual";
  core_array* x = ops_arg(x_, name, "x");
  core_array* w = x ? ops_arg(w_, name, "weight") : NULL;
  core_array* r = w ? ops_arg(residual_, name, "residual") : NULL;
  if (!r) return 1;
  core_array *scales = core_ctx(scales_), *biases = core_ctx(biases_), *norm_weight = core_ctx(norm_weight_);
  ops_linear_weight layout;
  if (check_linear_residual(&layout, x, w, scales, biases, group_size, bits, r, norm_weight, name)) return 1;
  if (!is_fused_case(x, &layout))
    return linear_residual_composed(sum, sumsq, scaled, x_, w_, scales_, biases_, &layout, residual_, norm_weight_, s);
  linear_residual_params* p = malloc(sizeof *p);
  if (!p) return util_error("out of memory");
  *p = (linear_residual_params){layout.quantized, norm_weight != NULL, layout.bits, layout.group_size};
  int shape[CORE_MAX_NDIM]; /* sumsq: (..., P), P = ceil(N / 4) */
  memcpy(shape, r->shape, sizeof(int) * (size_t)r->ndim);
  shape[r->ndim - 1] = (r->shape[r->ndim - 1] + 3) / 4;
  core_array *inputs[6] = {x, w}, *outs[3] = {NULL, NULL, NULL};
  int n = 2;
  if (scales) {
    inputs[n++] = scales;
    inputs[n++] = biases;
  }
  inputs[n++] = r;
  if (norm_weight) inputs[n++] = norm_weight;
  const mlx_dtype dtypes[3] = {r->dtype, MLX_FLOAT32, r->dtype};
  const int* shapes[3] = {r->shape, shape, r->shape};
  const int ndims[3] = {r->ndim, r->ndim, r->ndim};
  if (core_node_create(&prim_linear_residual, p, inputs, n, norm_weight ? 3 : 2, dtypes, shapes, ndims,
                       core_stream_resolve(s), outs))
    return 1;
  core_assign(sum, outs[0]);
  core_assign(sumsq, outs[1]);
  if (!norm_weight) return mlx_array_set(scaled, *sum);
  core_assign(scaled, outs[2]);
  return 0;
}

/* ---- rms_norm_linear ---- */

/* scaled (..., D); sumsq float32 (..., P) with scaled's leading dimensions, P >= 1; the weight
 * (N rows, or 2I stacking gate over up when gated; plain or quantized); bias (N), not with an
 * activation. Fills *layout. */
static int check_norm_linear(ops_linear_weight* layout, const core_array* h, const core_array* sumsq,
                             const core_array* w, const core_array* scales, const core_array* biases,
                             mlx_optional_int group_size, mlx_optional_int bits, const core_array* bias, bool gated,
                             const char* name) {
  if (ops_check_activations(h, "scaled", name)) return 1;
  if (sumsq->dtype != MLX_FLOAT32)
    return util_error("%s: sumsq must be float32 (got %s)", name, core_dtype_name(sumsq->dtype));
  if (!same_leading_dims(sumsq, h) || sumsq->shape[sumsq->ndim - 1] < 1)
    return util_error("%s: sumsq must have shape (..., P): scaled's leading dimensions and P >= 1", name);
  if (ops_check_linear_weight(layout, h, "scaled", w, scales, biases, group_size, bits, gated ? "2I" : "N", name))
    return 1;
  if (gated && bias) return util_error("%s: a bias is not allowed with an activation (the gated form)", name);
  if (gated && w->shape[0] % 2)
    return util_error("%s: the weight's %d rows must stack gate over up (an even count)", name, w->shape[0]);
  return bias ? check_vector(bias, w->shape[0], h->dtype, "the bias", name) : 0;
}

/* inv (..., 1) = 1 / sqrt(sum(sumsq) / D + eps) in float32. */
static int inverse_rms(mlx_array* inv, mlx_array sumsq, int D, float eps, mlx_stream s) {
  mlx_array total = mlx_array_new(), d = mlx_array_new_float((float)D), e = mlx_array_new_float(eps),
            one = mlx_array_new_float(1.0f);
  int status = 0;
  TRY(mlx_sum_axis(&total, sumsq, -1, true, s));
  TRY(mlx_divide(&total, total, d, s));
  TRY(mlx_add(&total, total, e, s));
  TRY(mlx_sqrt(&total, total, s));
  TRY(mlx_divide(inv, one, total, s));
cleanup:
  mlx_array_free(total);
  mlx_array_free(d);
  mlx_array_free(e);
  mlx_array_free(one);
  return status;
}

/* Several rows, float32, or other widths: the product of scaled (..., D) and the weight in
 * float32, unrounded (float32 operands; quantized_matmul promotes the scales to x's float32),
 * times inv, plus the float32 bias, rounded once to the dtype; gated, each half times inv rounded
 * to the dtype, then glu. */
static int rms_norm_linear_composed(mlx_array* out, mlx_array h, mlx_array sumsq, float eps, mlx_array w,
                                    mlx_array scales, mlx_array biases, const ops_linear_weight* layout,
                                    mlx_array bias, const char* activation, mlx_stream s) {
  const core_array* ha = core_ctx(h);
  const mlx_dtype dtype = ha->dtype;
  mlx_array inv = mlx_array_new(), x32 = mlx_array_new(), w32 = mlx_array_new(), y = mlx_array_new(),
            b32 = mlx_array_new();
  int status = 0;
  TRY(inverse_rms(&inv, sumsq, ha->shape[ha->ndim - 1], eps, s));
  TRY(mlx_astype(&x32, h, MLX_FLOAT32, s));
  TRY(layout->quantized ? mlx_array_set(&w32, w) : mlx_astype(&w32, w, MLX_FLOAT32, s));
  TRY(ops_linear_product(&y, x32, w32, scales, biases, layout, s));
  TRY(mlx_multiply(&y, inv, y, s));
  if (bias.ctx) {
    TRY(mlx_astype(&b32, bias, MLX_FLOAT32, s));
    TRY(mlx_add(&y, y, b32, s));
  }
  if (!activation) {
    TRY(mlx_astype(out, y, dtype, s));
  } else {
    TRY(mlx_astype(&y, y, dtype, s));
    TRY(ops_glu_of_halves(out, y, activation, s));
  }
cleanup:;
  const mlx_array temporaries[5] = {inv, x32, w32, y, b32};
  for (int i = 0; i < 5; i++) mlx_array_free(temporaries[i]);
  return status;
}

int mlxc_fast_rms_norm_linear(mlx_array* out, const mlx_array scaled_, const mlx_array sumsq_, float eps,
                              const mlx_array w_, const mlx_array scales_, const mlx_array biases_,
                              mlx_optional_int group_size, mlx_optional_int bits, const mlx_array bias_,
                              const char* activation, const mlx_stream s) {
  const char* name = "fast.rms_norm_linear";
  core_array* h = ops_arg(scaled_, name, "scaled");
  core_array* sumsq = h ? ops_arg(sumsq_, name, "sumsq") : NULL;
  core_array* w = sumsq ? ops_arg(w_, name, "weight") : NULL;
  if (!w) return 1;
  core_array *scales = core_ctx(scales_), *biases = core_ctx(biases_), *bias = core_ctx(bias_);
  glu_activation act = GLU_SILU;
  if (activation && ops_parse_glu_activation(activation, &act, name)) return 1;
  ops_linear_weight layout;
  if (check_norm_linear(&layout, h, sumsq, w, scales, biases, group_size, bits, bias, activation != NULL, name))
    return 1;
  if (!is_fused_case(h, &layout))
    return rms_norm_linear_composed(out, scaled_, sumsq_, eps, w_, scales_, biases_, &layout, bias_, activation, s);
  norm_linear_params* p = malloc(sizeof *p);
  if (!p) return util_error("out of memory");
  *p = (norm_linear_params){eps, layout.quantized, bias != NULL, activation != NULL, layout.bits, layout.group_size,
                            act};
  int shape[CORE_MAX_NDIM]; /* (..., N), or (..., I) gated */
  memcpy(shape, h->shape, sizeof(int) * (size_t)h->ndim);
  shape[h->ndim - 1] = p->gated ? w->shape[0] / 2 : w->shape[0];
  core_array* inputs[6] = {h, sumsq, w};
  int n = 3;
  if (scales) {
    inputs[n++] = scales;
    inputs[n++] = biases;
  }
  if (bias) inputs[n++] = bias;
  core_array* result = core_node_single(&prim_rms_norm_linear, p, inputs, n, h->dtype, shape, h->ndim,
                                        core_stream_resolve(s));
  return ops_finish(out, result, name);
}
