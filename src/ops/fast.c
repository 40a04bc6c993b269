/* mlx-c fast.h constructors: rms_norm, layer_norm, rope (static and array offsets) and scaled
 * dot-product attention, and mlxc/fast.h's add_rms_norm, glu, rope_kv and gated_linear, each one
 * fused kernel (backend/cpu/fast.c, glu.c, gated_gemv.c), gated_linear of several rows excepted
 * (linear_residual and rms_norm_linear: fast_norm_linear.c). */
#include <stdlib.h>
#include <string.h>

#include "mlx/c/fast.h"
#include "mlx/c/ops.h"
#include "mlxc/fast.h"
#include "ops/fast_internal.h"
#include "ops/fast_params.h"
#include "ops/ops_common.h"
#include "ops/primitives.h"

static bool is_float(mlx_dtype d) { return core_dtype_is_float(d); }

/* Checks an optional 1-D parameter of length n (weight, bias, sinks, freqs). */
static int check_vector(const core_array* v, int64_t n, const char* op, const char* what) {
  if (v->ndim != 1 || v->shape[0] != n)
    return util_error("%s: %s must have shape (%lld)", op, what, (long long)n);
  if (!is_float(v->dtype)) return util_error("%s: %s must be floating point", op, what);
  return 0;
}

static int norm_api(mlx_array* res, mlx_array x_, mlx_array weight, mlx_array bias, float eps,
                    mlx_stream s, const core_op* op, const char* name) {
  core_array* x = ops_arg(x_, name, "input");
  if (!x) return 1;
  if (x->ndim < 1) return util_error("%s: input must have at least one dimension", name);
  if (!is_float(x->dtype)) return util_error("%s: input must be floating point (got %s)", name, core_dtype_name(x->dtype));
  int64_t D = x->shape[x->ndim - 1];
  core_array *w = core_ctx(weight), *b = core_ctx(bias), *inputs[3] = {x};
  int n = 1;
  mlx_dtype out = x->dtype;
  if (w) {
    if (check_vector(w, D, name, "weight")) return 1;
    out = core_promote(out, w->dtype);
    inputs[n++] = w;
  }
  if (b) {
    if (check_vector(b, D, name, "bias")) return 1;
    out = core_promote(out, b->dtype);
    inputs[n++] = b;
  }
  norm_params* p = malloc(sizeof *p);
  if (!p) return util_error("out of memory");
  *p = (norm_params){eps, w != NULL, b != NULL};
  core_stream* stream = core_stream_resolve(s);
  core_array* xc = ops_astype(x, out, stream); /* x itself when it already has the dtype */
  if (!xc) {
    free(p);
    return 1;
  }
  inputs[0] = xc;
  core_array* result = core_node_single(op, p, inputs, n, out, x->shape, x->ndim, stream);
  core_array_release(xc);
  return ops_finish(res, result, name);
}

int mlx_fast_rms_norm(mlx_array* res, const mlx_array x, const mlx_array weight, float eps, const mlx_stream s) {
  return norm_api(res, x, weight, mlx_array_new(), eps, s, &prim_rms_norm, "fast.rms_norm");
}

int mlx_fast_layer_norm(mlx_array* res, const mlx_array x, const mlx_array weight, const mlx_array bias,
                        float eps, const mlx_stream s) {
  return norm_api(res, x, weight, bias, eps, s, &prim_layer_norm, "fast.layer_norm");
}

/* RoPE's dims (even, within the last dimension D) and its frequencies: base or freqs (dims / 2
 * values), one of the two. */
static int check_rope_settings(int dims, int D, mlx_optional_float base, const core_array* freqs, const char* name) {
  if (dims <= 0 || dims % 2 || dims > D)
    return util_error("%s: dims must be even, positive and at most the last dimension %d (got %d)", name, D, dims);
  if (freqs && base.has_value) return util_error("%s: give either base or freqs, not both", name);
  if (!freqs && !base.has_value) return util_error("%s: base is required when freqs is not given", name);
  return freqs ? check_vector(freqs, dims / 2, name, "freqs") : 0;
}

static int rope_api(mlx_array* res, mlx_array x_, int dims, bool traditional, mlx_optional_float base,
                    float scale, int offset, core_array* offset_array, mlx_array freqs_, mlx_stream s) {
  const char* name = "fast.rope";
  core_array* x = ops_arg(x_, name, "input");
  if (!x) return 1;
  if (x->ndim < 2) return util_error("%s: input must have at least 2 dimensions (..., L, D)", name);
  if (!is_float(x->dtype)) return util_error("%s: input must be floating point", name);
  int D = x->shape[x->ndim - 1];
  core_array* freqs = core_ctx(freqs_);
  if (check_rope_settings(dims, D, base, freqs, name)) return 1;
  if (offset_array) {
    if (!core_dtype_is_integer(offset_array->dtype) && !is_float(offset_array->dtype))
      return util_error("%s: offset must be numeric", name);
    if (!(offset_array->size == 1 || (offset_array->ndim == 1 && offset_array->shape[0] == x->shape[0])))
      return util_error("%s: offset must be a scalar or have one entry per batch item (%d)", name, x->shape[0]);
  }
  rope_params* p = malloc(sizeof *p);
  if (!p) return util_error("out of memory");
  *p = (rope_params){dims, traditional, base.has_value ? base.value : 0, scale, offset, offset_array != NULL, freqs != NULL};
  core_stream* stream = core_stream_resolve(s);
  core_array *inputs[3] = {x}, *offsets_f32 = NULL;
  int n = 1;
  if (offset_array) {
    offsets_f32 = ops_astype(offset_array, MLX_FLOAT32, stream);
    if (!offsets_f32) {
      free(p);
      return 1;
    }
    inputs[n++] = offsets_f32;
  }
  if (freqs) inputs[n++] = freqs;
  core_array* out = core_node_single(&prim_rope, p, inputs, n, x->dtype, x->shape, x->ndim, stream);
  core_array_release(offsets_f32);
  return ops_finish(res, out, name);
}

int mlx_fast_rope(mlx_array* res, const mlx_array x, int dims, bool traditional, mlx_optional_float base,
                  float scale, int offset, const mlx_array freqs, const mlx_stream s) {
  return rope_api(res, x, dims, traditional, base, scale, offset, NULL, freqs, s);
}

int mlx_fast_rope_dynamic(mlx_array* res, const mlx_array x, int dims, bool traditional,
                          mlx_optional_float base, float scale, const mlx_array offset,
                          const mlx_array freqs, const mlx_stream s) {
  core_array* off = ops_arg(offset, "fast.rope", "offset");
  if (!off) return 1;
  return rope_api(res, x, dims, traditional, base, scale, 0, off, freqs, s);
}

int mlxc_fast_rope_kv(mlx_array* res_q, mlx_array* res_keys, mlx_array* res_values, const mlx_array q_,
                      const mlx_array k_, const mlx_array v_, const mlx_array keys_, const mlx_array values_, int dims,
                      bool traditional, mlx_optional_float base, float scale, const mlx_array position_,
                      const mlx_array freqs_, const mlx_stream s) {
  const char* name = "fast.rope_kv";
  core_array* q = ops_arg(q_, name, "q");
  core_array* k = q ? ops_arg(k_, name, "k") : NULL;
  core_array* v = k ? ops_arg(v_, name, "v") : NULL;
  core_array* keys = v ? ops_arg(keys_, name, "keys") : NULL;
  core_array* values = keys ? ops_arg(values_, name, "values") : NULL;
  core_array* position = values ? ops_arg(position_, name, "position") : NULL;
  if (!position) return 1;
  const core_array* all[5] = {q, k, v, keys, values};
  for (int i = 0; i < 5; i++) {
    if (all[i]->ndim != 4) return util_error("%s: q, k, v and the caches must be 4-D (B, heads, L, D)", name);
    if (all[i]->dtype != keys->dtype || !is_float(keys->dtype))
      return util_error("%s: q, k, v and the caches must have one floating-point dtype", name);
  }
  int B = q->shape[0], Hk = keys->shape[1], L = q->shape[2], D = q->shape[3], Dv = values->shape[3];
  const int expect[4][4] = {{B, Hk, L, D}, {B, Hk, L, Dv}, {B, Hk, keys->shape[2], D}, {B, Hk, keys->shape[2], Dv}};
  for (int i = 1; i < 5; i++)
    for (int d = 0; d < 4; d++)
      if (all[i]->shape[d] != expect[i - 1][d])
        return util_error("%s: shapes do not match: q (B, H, L, D), k (B, Hk, L, D), v (B, Hk, L, Dv), keys (B, Hk, T, "
                          "D), values (B, Hk, T, Dv)", name);
  if (L > keys->shape[2]) return util_error("%s: %d new positions do not fit a cache of %d slots", name, L, keys->shape[2]);
  if (!core_dtype_is_integer(position->dtype) || position->size != 1)
    return util_error("%s: position must be one integer", name);
  core_array* freqs = core_ctx(freqs_);
  if (check_rope_settings(dims, D, base, freqs, name)) return 1;
  rope_params* p = malloc(sizeof *p);
  if (!p) return util_error("out of memory");
  *p = (rope_params){dims, traditional, base.has_value ? base.value : 0, scale, 0, true, freqs != NULL};
  core_array *inputs[7] = {q, k, v, keys, values, position, freqs}, *outs[3] = {NULL, NULL, NULL};
  const mlx_dtype dtypes[3] = {q->dtype, keys->dtype, values->dtype};
  const int* shapes[3] = {q->shape, keys->shape, values->shape};
  const int ndims[3] = {4, 4, 4};
  if (core_node_create(&prim_rope_kv, p, inputs, freqs ? 7 : 6, 3, dtypes, shapes, ndims, core_stream_resolve(s), outs))
    return 1;
  core_assign(res_q, outs[0]);
  core_assign(res_keys, outs[1]);
  core_assign(res_values, outs[2]);
  return 0;
}

int mlx_fast_scaled_dot_product_attention(mlx_array* res, const mlx_array queries, const mlx_array keys,
                                          const mlx_array values, float scale, const char* mask_mode,
                                          const mlx_array mask_arr, const mlx_array sinks, const mlx_stream s) {
  const char* name = "fast.scaled_dot_product_attention";
  core_array* q = ops_arg(queries, name, "queries");
  core_array* k = q ? ops_arg(keys, name, "keys") : NULL;
  core_array* v = k ? ops_arg(values, name, "values") : NULL;
  if (!v) return 1;
  if (q->ndim != 4 || k->ndim != 4 || v->ndim != 4)
    return util_error("%s: queries, keys and values must be 4-D (B, H, L, D)", name);
  if (!is_float(q->dtype) || !is_float(k->dtype) || !is_float(v->dtype))
    return util_error("%s: queries, keys and values must be floating point", name);
  if (k->shape[0] != q->shape[0] || v->shape[0] != q->shape[0])
    return util_error("%s: batch sizes differ (%d, %d, %d)", name, q->shape[0], k->shape[0], v->shape[0]);
  if (k->shape[1] != v->shape[1] || k->shape[1] == 0 || q->shape[1] % k->shape[1])
    return util_error("%s: the %d query heads must be a multiple of the %d key/value heads", name, q->shape[1], k->shape[1]);
  if (k->shape[3] != q->shape[3]) return util_error("%s: queries and keys differ in head dimension (%d vs %d)", name, q->shape[3], k->shape[3]);
  if (k->shape[2] != v->shape[2]) return util_error("%s: keys and values differ in length (%d vs %d)", name, k->shape[2], v->shape[2]);
  sdpa_mask_kind kind = SDPA_MASK_NONE;
  core_array* mask = core_ctx(mask_arr);
  if (mask_mode && !strcmp(mask_mode, "causal")) {
    kind = SDPA_MASK_CAUSAL;
  } else if (mask_mode && !strcmp(mask_mode, "array")) {
    if (!mask) return util_error("%s: mask mode \"array\" needs a mask array", name);
    kind = SDPA_MASK_ARRAY;
  } else if (mask_mode && mask_mode[0]) {
    return util_error("%s: unknown mask mode \"%s\" (use \"\", \"causal\" or \"array\")", name, mask_mode);
  } else if (mask) {
    kind = SDPA_MASK_ARRAY; /* an array without a mode is used as given */
  }
  if (kind == SDPA_MASK_ARRAY) {
    int full[4] = {q->shape[0], q->shape[1], q->shape[2], k->shape[2]}, shape[CORE_MAX_NDIM], nd;
    if (mask->ndim > 4 || ops_broadcast_shapes(mask->shape, mask->ndim, full, 4, shape, &nd, name)) return 1;
    if (memcmp(shape, full, sizeof full))
      return util_error("%s: the mask must broadcast to (B, H, Lq, Lk) = (%d, %d, %d, %d)", name, full[0], full[1], full[2], full[3]);
    if (mask->dtype != MLX_BOOL && !is_float(mask->dtype))
      return util_error("%s: the mask must be bool or floating point (got %s)", name, core_dtype_name(mask->dtype));
  }
  core_array* sink = core_ctx(sinks);
  if (sink && check_vector(sink, q->shape[1], name, "sinks")) return 1;

  sdpa_params* p = malloc(sizeof *p);
  if (!p) return util_error("out of memory");
  *p = (sdpa_params){scale, kind, sink != NULL};
  core_stream* stream = core_stream_resolve(s);
  mlx_dtype dtype = core_promote(core_promote(q->dtype, k->dtype), v->dtype);
  core_array* cast[3] = {ops_astype(q, dtype, stream), NULL, NULL};
  if (cast[0]) cast[1] = ops_astype(k, dtype, stream);
  if (cast[1]) cast[2] = ops_astype(v, dtype, stream);
  core_array* out = NULL;
  if (cast[2]) {
    core_array* inputs[5] = {cast[0], cast[1], cast[2]};
    int n = 3;
    if (kind == SDPA_MASK_ARRAY) inputs[n++] = mask;
    if (sink) inputs[n++] = sink;
    int shape[4] = {q->shape[0], q->shape[1], q->shape[2], v->shape[3]};
    out = core_node_single(&prim_sdpa, p, inputs, n, dtype, shape, 4, stream);
  } else {
    free(p);
  }
  for (int i = 0; i < 3; i++) core_array_release(cast[i]);
  return ops_finish(res, out, name);
}

/* a (named a_name) is a float array of at least one dimension and b (b_name) has its shape and
 * dtype: the operands of the fused elementwise ops. */
static int check_float_pair(const core_array* a, const core_array* b, const char* name, const char* a_name,
                            const char* b_name) {
  if (a->ndim < 1) return util_error("%s: %s must have at least one dimension", name, a_name);
  if (a->dtype != MLX_FLOAT32 && a->dtype != MLX_FLOAT16 && a->dtype != MLX_BFLOAT16)
    return util_error("%s: %s must be float32, float16 or bfloat16 (got %s)", name, a_name, core_dtype_name(a->dtype));
  if (b->dtype != a->dtype || b->ndim != a->ndim || memcmp(b->shape, a->shape, sizeof(int) * (size_t)a->ndim))
    return util_error("%s: %s must have the %s's shape and dtype", name, b_name, a_name);
  return 0;
}

int mlxc_fast_add_rms_norm(mlx_array* sum, mlx_array* normed, const mlx_array x_, const mlx_array residual_,
                           const mlx_array weight, float eps, const mlx_stream s) {
  const char* name = "fast.add_rms_norm";
  core_array *x = ops_arg(x_, name, "input"), *r = x ? ops_arg(residual_, name, "residual") : NULL;
  if (!r) return 1;
  if (check_float_pair(x, r, name, "input", "the residual")) return 1;
  core_array *w = core_ctx(weight), *inputs[3] = {x, r, w};
  mlx_dtype out = x->dtype;
  if (w) {
    if (check_vector(w, x->shape[x->ndim - 1], name, "weight")) return 1;
    out = core_promote(out, w->dtype);
  }
  norm_params* p = malloc(sizeof *p);
  if (!p) return util_error("out of memory");
  *p = (norm_params){eps, w != NULL, false};
  core_array* outs[2] = {NULL, NULL};
  const mlx_dtype dtypes[2] = {x->dtype, out};
  const int* shapes[2] = {x->shape, x->shape};
  const int ndims[2] = {x->ndim, x->ndim};
  if (core_node_create(&prim_add_rms_norm, p, inputs, w ? 3 : 2, 2, dtypes, shapes, ndims, core_stream_resolve(s), outs))
    return 1;
  core_assign(sum, outs[0]);
  core_assign(normed, outs[1]);
  return 0;
}

int ops_parse_glu_activation(const char* activation, glu_activation* act, const char* name) {
  if (activation && !strcmp(activation, "silu"))
    *act = GLU_SILU;
  else if (activation && !strcmp(activation, "gelu_tanh"))
    *act = GLU_GELU_TANH;
  else
    return util_error("%s: unknown activation '%s' (silu, gelu_tanh)", name, activation ? activation : "(null)");
  return 0;
}

int mlxc_fast_glu(mlx_array* res, const mlx_array gate_, const mlx_array up_, const char* activation,
                  const mlx_stream s) {
  const char* name = "fast.glu";
  core_array *g = ops_arg(gate_, name, "gate"), *u = g ? ops_arg(up_, name, "up") : NULL;
  if (!u) return 1;
  if (check_float_pair(g, u, name, "gate", "up")) return 1;
  glu_activation act = GLU_SILU;
  if (ops_parse_glu_activation(activation, &act, name)) return 1;
  glu_activation* p = malloc(sizeof *p);
  if (!p) return util_error("out of memory");
  *p = act;
  core_array* inputs[2] = {g, u};
  core_array* out = core_node_single(&prim_glu, p, inputs, 2, g->dtype, g->shape, g->ndim, core_stream_resolve(s));
  return ops_finish(res, out, name);
}

/* The plain weight: (rows, K) of x's dtype. */
static int check_plain_weight(const core_array* x, const char* x_name, const core_array* w, const core_array* biases,
                              mlx_optional_int group_size, mlx_optional_int bits, const char* rows, const char* name) {
  const long long K = x->shape[x->ndim - 1];
  if (biases) return util_error("%s: biases without scales (quantized weights need both)", name);
  if (w->dtype == MLX_UINT32) return util_error("%s: the packed uint32 weight needs scales and biases", name);
  if (group_size.has_value || bits.has_value)
    return util_error("%s: group_size and bits apply to quantized weights only", name);
  if (w->dtype != x->dtype)
    return util_error("%s: the weight (%s) must have %s's dtype (%s)", name, core_dtype_name(w->dtype), x_name,
                      core_dtype_name(x->dtype));
  if (w->ndim != 2 || w->shape[1] != K)
    return util_error("%s: the weight must have shape (%s, %lld) for %s's last dimension %lld", name, rows, K, x_name,
                      K);
  return 0;
}

/* The affine-quantized weight: packed (rows, K * bits / 32) uint32, scales and biases (rows,
 * K / group) of x's dtype; fills out's bits and group size. */
static int check_quantized_weight(ops_linear_weight* out, const core_array* x, const char* x_name,
                                  const core_array* w, const core_array* scales, const core_array* biases,
                                  mlx_optional_int group_size, mlx_optional_int bits, const char* rows,
                                  const char* name) {
  const long long K = x->shape[x->ndim - 1];
  if (!biases) return util_error("%s: quantized weights need biases as well as scales", name);
  const int b = bits.has_value ? bits.value : 4, group = group_size.has_value ? group_size.value : 64;
  if (b < 2 || b > 8 || b == 7) return util_error("%s: bits must be 2, 3, 4, 5, 6 or 8 (got %d)", name, b);
  if (group != 32 && group != 64 && group != 128)
    return util_error("%s: group_size must be 32, 64 or 128 (got %d)", name, group);
  if (w->dtype != MLX_UINT32)
    return util_error("%s: the quantized weight must be packed uint32 (got %s)", name, core_dtype_name(w->dtype));
  if (scales->dtype != x->dtype || biases->dtype != x->dtype)
    return util_error("%s: scales and biases must have %s's dtype (%s)", name, x_name, core_dtype_name(x->dtype));
  if (K % group) /* then K * bits fills whole 32-bit words too: groups have 32 or more values */
    return util_error("%s: %s's last dimension %lld is not a multiple of the group size %d", name, x_name, K, group);
  if (w->ndim != 2 || w->shape[1] != K * b / 32)
    return util_error("%s: the quantized weight must have shape (%s, %lld) for K = %lld at %d bits", name, rows,
                      K * b / 32, K, b);
  const long long n = w->shape[0];
  if (scales->ndim != 2 || scales->shape[0] != n || scales->shape[1] != K / group || !ops_same_shape(scales, biases))
    return util_error("%s: scales and biases must have shape (%lld, %lld)", name, n, K / group);
  out->bits = b;
  out->group_size = group;
  return 0;
}

int ops_check_linear_weight(ops_linear_weight* out, const core_array* x, const char* x_name, const core_array* w,
                            const core_array* scales, const core_array* biases, mlx_optional_int group_size,
                            mlx_optional_int bits, const char* rows, const char* name) {
  *out = (ops_linear_weight){scales != NULL, 0, 0};
  return scales ? check_quantized_weight(out, x, x_name, w, scales, biases, group_size, bits, rows, name)
                : check_plain_weight(x, x_name, w, biases, group_size, bits, rows, name);
}

int ops_check_activations(const core_array* x, const char* what, const char* name) {
  if (x->ndim < 1) return util_error("%s: %s must have at least one dimension", name, what);
  if (x->dtype != MLX_FLOAT32 && x->dtype != MLX_FLOAT16 && x->dtype != MLX_BFLOAT16)
    return util_error("%s: %s must be float32, float16 or bfloat16 (got %s)", name, what, core_dtype_name(x->dtype));
  return 0;
}

int ops_linear_product(mlx_array* out, mlx_array x, mlx_array w, mlx_array scales, mlx_array biases,
                       const ops_linear_weight* layout, mlx_stream s) {
  if (layout->quantized) {
    const mlx_optional_int group = {layout->group_size, true}, bits = {layout->bits, true};
    return mlx_quantized_matmul(out, x, w, scales, biases, true, group, bits, "affine", s);
  }
  mlx_array wt = mlx_array_new();
  int status = mlx_transpose(&wt, w, s); /* a view: matmul reads it as W^T */
  if (!status) status = mlx_matmul(out, x, wt, s);
  mlx_array_free(wt);
  return status;
}

int ops_glu_of_halves(mlx_array* res, mlx_array h, const char* activation, mlx_stream s) {
  mlx_array gate = mlx_array_new(), up = mlx_array_new();
  mlx_vector_array parts = mlx_vector_array_new();
  int status = mlx_split(&parts, h, 2, -1, s);
  if (!status) status = mlx_vector_array_get(&gate, parts, 0);
  if (!status) status = mlx_vector_array_get(&up, parts, 1);
  if (!status) status = mlxc_fast_glu(res, gate, up, activation, s);
  mlx_vector_array_free(parts);
  mlx_array_free(gate);
  mlx_array_free(up);
  return status;
}

/* Several rows of x, or float32: the linear layer (matmul or quantized_matmul), glu of its two
 * halves. */
static int gated_linear_composed(mlx_array* res, mlx_array x, mlx_array w, mlx_array scales, mlx_array biases,
                                 const ops_linear_weight* layout, const char* activation, mlx_stream s) {
  mlx_array h = mlx_array_new();
  int status = ops_linear_product(&h, x, w, scales, biases, layout, s);
  if (!status) status = ops_glu_of_halves(res, h, activation, s);
  mlx_array_free(h);
  return status;
}

int mlxc_fast_gated_linear(mlx_array* res, const mlx_array x_, const mlx_array w_, const mlx_array scales_,
                           const mlx_array biases_, mlx_optional_int group_size, mlx_optional_int bits,
                           const char* activation, const mlx_stream s) {
  const char* name = "fast.gated_linear";
  core_array *x = ops_arg(x_, name, "x"), *w = x ? ops_arg(w_, name, "weight") : NULL;
  if (!w) return 1;
  core_array *scales = core_ctx(scales_), *biases = core_ctx(biases_);
  if (ops_check_activations(x, "x", name)) return 1;
  const int64_t K = x->shape[x->ndim - 1];
  glu_activation act = GLU_SILU;
  ops_linear_weight layout;
  if (ops_parse_glu_activation(activation, &act, name) ||
      ops_check_linear_weight(&layout, x, "x", w, scales, biases, group_size, bits, "2I", name))
    return 1;
  if (w->shape[0] % 2)
    return util_error("%s: the weight's %d rows must stack gate over up (an even count)", name, w->shape[0]);
  /* One half-precision row is the fused kernel's case; several rows go to GEMMs, and float32
   * (which no GPU kernel takes: a CPU fallback would break a recorded decode step) composes. */
  if (K == 0 || (int64_t)x->size / K != 1 || x->dtype == MLX_FLOAT32)
    return gated_linear_composed(res, x_, w_, scales_, biases_, &layout, activation, s);
  gated_gemv_params* p = malloc(sizeof *p);
  if (!p) return util_error("out of memory");
  *p = (gated_gemv_params){act, layout.quantized, layout.bits, layout.group_size};
  int shape[CORE_MAX_NDIM];
  memcpy(shape, x->shape, sizeof(int) * (size_t)x->ndim);
  shape[x->ndim - 1] = w->shape[0] / 2;
  core_array* inputs[4] = {x, w, scales, biases};
  core_array* out = core_node_single(&prim_gated_gemv, p, inputs, scales ? 4 : 2, x->dtype, shape, x->ndim,
                                     core_stream_resolve(s));
  return ops_finish(res, out, name);
}
