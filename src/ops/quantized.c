/* Constructors of quantize, dequantize and quantized_matmul: MLX's argument rules (modes,
 * default group sizes and bits, shape and dtype checks) and the shapes of MLX's layouts. The
 * kernels are in backend/cpu/quantized.c. Only float32, float16 and bfloat16 weights and
 * activations are supported, as on MLX's CPU. */
#include <stdlib.h>
#include <string.h>

#include "mlx/c/ops.h"
#include "ops/gather_mm.h"
#include "ops/layout.h"
#include "ops/primitives.h"
#include "ops/quantized_params.h"

static bool parse_mode(const char* mode, quant_mode* out, const char* op) {
  static const char* names[4] = {"affine", "mxfp4", "mxfp8", "nvfp4"};
  const char* m = mode ? mode : "affine";
  for (int i = 0; i < 4; i++)
    if (!strcmp(m, names[i])) {
      *out = (quant_mode)i;
      return true;
    }
  util_error("%s: invalid quantization mode '%s' (expected affine, mxfp4, mxfp8 or nvfp4)", op, m);
  return false;
}

/* Fills p from the mode and the optional group size and bits (MLX's defaults: affine 64/4,
 * mxfp4 32/4, mxfp8 32/8, nvfp4 16/4) and checks the combination is one MLX supports. */
static int resolve_params(const char* mode, mlx_optional_int group_size, mlx_optional_int bits,
                          quant_params* p, const char* op) {
  if (!parse_mode(mode, &p->mode, op)) return 1;
  static const int def_group[4] = {64, 32, 32, 16}, def_bits[4] = {4, 4, 8, 4};
  p->group_size = group_size.has_value ? group_size.value : def_group[p->mode];
  p->bits = bits.has_value ? bits.value : def_bits[p->mode];
  p->transpose = true;
  if (p->mode == QUANT_AFFINE) {
    if (p->group_size != 32 && p->group_size != 64 && p->group_size != 128)
      return util_error("%s: the requested group size %d is not supported; the supported group "
                        "sizes are 32, 64 and 128", op, p->group_size);
    if (p->bits < 1 || p->bits > 8 || p->bits == 7)
      return util_error("%s: the requested number of bits %d is not supported; the supported "
                        "bits are 1, 2, 3, 4, 5, 6 and 8", op, p->bits);
  } else {
    const char* name = mode;
    if (p->group_size != def_group[p->mode])
      return util_error("%s: %s quantization requires group size %d but got %d", op, name,
                        def_group[p->mode], p->group_size);
    if (p->bits != def_bits[p->mode])
      return util_error("%s: %s quantization requires bits to be %d but got %d", op, name,
                        def_bits[p->mode], p->bits);
  }
  return 0;
}

static bool supported_float(mlx_dtype t) {
  return t == MLX_FLOAT32 || t == MLX_FLOAT16 || t == MLX_BFLOAT16;
}

/* The global scale of nvfp4: a float32 scalar, and only for that mode. NULL when absent. */
static int check_global_scale(mlx_array global_scale, quant_mode mode, core_array** out,
                              const char* op) {
  *out = core_ctx(global_scale);
  if (!*out) return 0;
  if (mode != QUANT_NVFP4)
    return util_error("%s: a global scale is only supported for the 'nvfp4' mode", op);
  if ((*out)->size != 1)
    return util_error("%s: the global scale must be a scalar", op);
  if ((*out)->dtype != MLX_FLOAT32)
    return util_error("%s: the global scale must have dtype float32 but has %s", op,
                      core_dtype_name((*out)->dtype));
  return 0;
}

static quant_params* copy_params(const quant_params* p) {
  quant_params* q = malloc(sizeof *q);
  if (!q) util_error("out of memory");
  else *q = *p;
  return q;
}

int mlx_quantize(mlx_vector_array* res, const mlx_array w, mlx_optional_int group_size,
                 mlx_optional_int bits, const char* mode, const mlx_array global_scale,
                 const mlx_stream s) {
  core_array* x = ops_arg(w, "quantize", "w");
  if (!x) return 1;
  if (!res) return util_error("quantize: null result pointer");
  quant_params p;
  core_array* gs;
  if (resolve_params(mode, group_size, bits, &p, "quantize") ||
      check_global_scale(global_scale, p.mode, &gs, "quantize"))
    return 1;
  if (!supported_float(x->dtype))
    return util_error("quantize: only float32, float16 and bfloat16 can be quantized, but w has "
                      "dtype %s", core_dtype_name(x->dtype));
  if (x->ndim < 2)
    return util_error("quantize: the matrix to be quantized must have at least 2 dimensions but "
                      "it has %d", x->ndim);
  int K = x->shape[x->ndim - 1];
  if (K % p.group_size)
    return util_error("quantize: the last dimension of the matrix (%d) needs to be divisible by "
                      "the quantization group size %d", K, p.group_size);
  int wq_shape[CORE_MAX_NDIM], s_shape[CORE_MAX_NDIM], nd = x->ndim;
  memcpy(wq_shape, x->shape, sizeof(int) * (size_t)nd);
  memcpy(s_shape, x->shape, sizeof(int) * (size_t)nd);
  wq_shape[nd - 1] = (int)((int64_t)K * p.bits / 32);
  s_shape[nd - 1] = K / p.group_size;
  int n_out = p.mode == QUANT_AFFINE ? 3 : 2;
  mlx_dtype sdt = p.mode == QUANT_AFFINE ? x->dtype : MLX_UINT8;
  const mlx_dtype dtypes[3] = {MLX_UINT32, sdt, sdt};
  const int* shapes[3] = {wq_shape, s_shape, s_shape};
  const int ndims[3] = {nd, nd, nd};
  core_array* inputs[2] = {x, gs};
  core_array* outs[3] = {NULL, NULL, NULL};
  quant_params* params = copy_params(&p);
  int status = !params || core_node_create(&prim_quantize, params, inputs, gs ? 2 : 1, n_out,
                                           dtypes, shapes, ndims, core_stream_resolve(s), outs);
  if (!status) {
    mlx_array handles[3] = {core_handle(outs[0]), core_handle(outs[1]), core_handle(outs[2])};
    status = mlx_vector_array_set_data(res, handles, (size_t)n_out);
  }
  for (int i = 0; i < n_out; i++) core_array_release(outs[i]);
  return status;
}

/* MLX's rule for the packed weight and its scales (and biases): uint32 weights of at least two
 * dimensions, scales with the same batch and row dimensions, and as many groups per row as the
 * packed row holds values. Sets *values_per_row. */
static int check_packed(const core_array* w, const core_array* scales, const core_array* biases,
                        const quant_params* p, int* values_per_row, const char* op) {
  if (w->dtype != MLX_UINT32)
    return util_error("%s: the quantized weight must be uint32 but has dtype %s", op,
                      core_dtype_name(w->dtype));
  if (w->ndim < 2)
    return util_error("%s: the quantized weight must have at least 2 dimensions", op);
  if (biases && !ops_same_shape(scales, biases))
    return util_error("%s: scales and biases must have the same shape", op);
  bool ok = scales->ndim == w->ndim;
  for (int i = 0; ok && i < w->ndim - 1; i++) ok = scales->shape[i] == w->shape[i];
  int64_t bits_per_row = (int64_t)w->shape[w->ndim - 1] * 32;
  int64_t values = bits_per_row / p->bits;
  if (!ok || bits_per_row % p->bits || values != (int64_t)scales->shape[scales->ndim - 1] * p->group_size)
    return util_error("%s: the shapes of the weight and scales are incompatible with group_size=%d "
                      "and bits=%d", op, p->group_size, p->bits);
  *values_per_row = (int)values;
  return 0;
}

/* MLX's rules for scales/biases per mode, and the dtype results take by default (affine: that of
 * scales and biases; the microscaling modes: bfloat16). */
static int check_mode_inputs(const quant_params* p, const core_array* scales,
                             const core_array* biases, mlx_dtype* dtype, const char* op) {
  if (p->mode == QUANT_AFFINE) {
    if (!biases) return util_error("%s: biases must be provided for affine quantization", op);
    *dtype = core_promote(scales->dtype, biases->dtype);
    if (!supported_float(scales->dtype) || !supported_float(biases->dtype))
      return util_error("%s: scales and biases must be float32, float16 or bfloat16 (got %s and %s)",
                        op, core_dtype_name(scales->dtype), core_dtype_name(biases->dtype));
    return 0;
  }
  if (scales->dtype != MLX_UINT8)
    return util_error("%s: scales must be uint8 for this mode but have dtype %s", op,
                      core_dtype_name(scales->dtype));
  if (biases) return util_error("%s: biases must be empty for this mode", op);
  *dtype = MLX_BFLOAT16;
  return 0;
}

int mlx_dequantize(mlx_array* res, const mlx_array w, const mlx_array scales,
                   const mlx_array biases, mlx_optional_int group_size, mlx_optional_int bits,
                   const char* mode, const mlx_array global_scale, mlx_optional_dtype dtype,
                   const mlx_stream s) {
  core_array* wq = ops_arg(w, "dequantize", "w");
  core_array* sc = wq ? ops_arg(scales, "dequantize", "scales") : NULL;
  if (!sc) return 1;
  core_array* bi = core_ctx(biases);
  quant_params p;
  core_array* gs;
  mlx_dtype out_dtype;
  int values;
  if (resolve_params(mode, group_size, bits, &p, "dequantize") ||
      check_global_scale(global_scale, p.mode, &gs, "dequantize") ||
      check_mode_inputs(&p, sc, bi, &out_dtype, "dequantize") ||
      check_packed(wq, sc, bi, &p, &values, "dequantize"))
    return 1;
  if (dtype.has_value) {
    if (!core_dtype_is_float(dtype.value))
      return util_error("dequantize: the output dtype must be floating point, not %s",
                        core_dtype_name(dtype.value));
    out_dtype = dtype.value;
  }
  int shape[CORE_MAX_NDIM];
  memcpy(shape, wq->shape, sizeof(int) * (size_t)wq->ndim);
  shape[wq->ndim - 1] = values;
  core_array* inputs[4] = {wq, sc};
  int n = 2;
  if (bi) inputs[n++] = bi;
  if (gs) inputs[n++] = gs;
  quant_params* params = copy_params(&p);
  if (!params) return 1;
  return ops_finish(res, core_node_single(&prim_dequantize, params, inputs, n, out_dtype, shape,
                                          wq->ndim, core_stream_resolve(s)), "dequantize");
}

int mlx_quantized_matmul(mlx_array* res, const mlx_array x, const mlx_array w,
                         const mlx_array scales, const mlx_array biases, bool transpose,
                         mlx_optional_int group_size, mlx_optional_int bits, const char* mode,
                         const mlx_stream s) {
  const char* op = "quantized_matmul";
  core_array* xa = ops_arg(x, op, "x");
  core_array* wq = xa ? ops_arg(w, op, "w") : NULL;
  core_array* sc = wq ? ops_arg(scales, op, "scales") : NULL;
  if (!sc) return 1;
  core_array* bi = core_ctx(biases);
  quant_params p;
  mlx_dtype dtype;
  int values;
  if (resolve_params(mode, group_size, bits, &p, op) ||
      check_mode_inputs(&p, sc, bi, &dtype, op) || check_packed(wq, sc, bi, &p, &values, op))
    return 1;
  p.transpose = transpose;
  dtype = p.mode == QUANT_AFFINE ? core_promote(xa->dtype, dtype) : xa->dtype;
  if (!supported_float(dtype))
    return util_error("%s: only float32, float16 and bfloat16 are supported, but x has dtype %s",
                      op, core_dtype_name(xa->dtype));
  if (xa->ndim == 0) return util_error("%s: x must have at least one dimension", op);
  int rows = wq->shape[wq->ndim - 2];
  int inner = transpose ? values : rows, outer = transpose ? rows : values;
  int K = xa->shape[xa->ndim - 1];
  if (K != inner)
    return util_error("%s: the last dimension of x (%d) does not match the quantized matrix "
                      "(%d, %d) with transpose=%s", op, K, inner, outer, transpose ? "true" : "false");
  /* x as (..., M, K); batch dimensions broadcast against w's. */
  int x2[CORE_MAX_NDIM], xnd = xa->ndim == 1 ? 2 : xa->ndim, out[CORE_MAX_NDIM], nd;
  if (xa->ndim == 1) { x2[0] = 1; x2[1] = K; } else memcpy(x2, xa->shape, sizeof(int) * (size_t)xnd);
  if (ops_broadcast_shapes(x2, xnd - 2, wq->shape, wq->ndim - 2, out, &nd, op)) return 1;
  out[nd++] = x2[xnd - 2];
  out[nd++] = outer;
  core_stream* st = core_stream_resolve(s);
  core_array *cx = NULL, *cs = NULL, *cb = NULL, *mm = NULL, *result = NULL;
  core_array* t = ops_astype(xa, dtype, st);
  if (t) cx = ops_reshape(t, x2, xnd, st);
  core_array_release(t);
  /* Affine scales and biases take the result's dtype, as in MLX. */
  if (cx) cs = p.mode == QUANT_AFFINE ? ops_astype(sc, dtype, st) : (core_array_retain(sc), sc);
  if (cs && bi) cb = ops_astype(bi, dtype, st);
  quant_params* params = (cs && (cb || !bi)) ? copy_params(&p) : NULL;
  if (params) {
    core_array* inputs[4] = {cx, wq, cs, cb};
    mm = core_node_single(&prim_quantized_matmul, params, inputs, bi ? 4 : 3, dtype, out, nd, st);
  }
  if (mm) {
    int fin[CORE_MAX_NDIM], fnd = nd - 2;
    memcpy(fin, out, sizeof(int) * (size_t)fnd);
    if (xa->ndim > 1) fin[fnd++] = out[nd - 2];
    fin[fnd++] = outer;
    result = ops_reshape(mm, fin, fnd, st);
  }
  core_array_release(cx);
  core_array_release(cs);
  core_array_release(cb);
  core_array_release(mm);
  return ops_finish(res, result, op);
}

/* The gather_qmm node: xg (..., M, K) times the matrices of the w/scales/biases stack that
 * rhs_indices picks, read in place by the kernel (no copy of the weights). Result: the batches of
 * xg and rhs_indices broadcast, + (M, N). Returns a new reference or NULL (error reported). */
static core_array* gather_qmm_node(core_array* xg, core_array* wq, core_array* sc, core_array* bi,
                                   core_array* rhs, quant_params* p, int values, mlx_dtype dtype,
                                   core_stream* st, const char* op) {
  dtype = p->mode == QUANT_AFFINE ? core_promote(xg->dtype, dtype) : xg->dtype;
  if (!supported_float(dtype)) {
    util_error("%s: only float32, float16 and bfloat16 are supported, but x has dtype %s", op,
               core_dtype_name(xg->dtype));
    return NULL;
  }
  int rows = wq->shape[wq->ndim - 2], K = xg->shape[xg->ndim - 1];
  int inner = p->transpose ? values : rows, outer = p->transpose ? rows : values;
  if (K != inner) {
    util_error("%s: the last dimension of x (%d) does not match the quantized matrix (%d, %d) "
               "with transpose=%s", op, K, inner, outer, p->transpose ? "true" : "false");
    return NULL;
  }
  int out[CORE_MAX_NDIM], nd;
  if (ops_broadcast_shapes(xg->shape, xg->ndim - 2, rhs->shape, rhs->ndim, out, &nd, op)) return NULL;
  if (nd + 2 > CORE_MAX_NDIM) {
    util_error("%s: the result would have more than %d dimensions", op, CORE_MAX_NDIM);
    return NULL;
  }
  int batch_nd = nd;
  out[nd++] = xg->shape[xg->ndim - 2];
  out[nd++] = outer;
  core_array *idx = NULL, *cx = NULL, *cs = NULL, *cb = NULL, *res = NULL;
  core_array* t = ops_astype(rhs, MLX_INT32, st);
  if (t) idx = ops_broadcast_to(t, out, batch_nd, st);
  core_array_release(t);
  if (idx) cx = ops_astype(xg, dtype, st);
  if (cx) cs = p->mode == QUANT_AFFINE ? ops_astype(sc, dtype, st) : (core_array_retain(sc), sc);
  if (cs && bi) cb = ops_astype(bi, dtype, st);
  quant_params* params = (cs && (cb || !bi)) ? copy_params(p) : NULL;
  if (params) {
    core_array* inputs[5] = {idx, cx, wq, cs, cb};
    res = core_node_single(&prim_gather_qmm, params, inputs, bi ? 5 : 4, dtype, out, nd, st);
  }
  core_array_release(idx);
  core_array_release(cx);
  core_array_release(cs);
  core_array_release(cb);
  return res;
}

/* x's matrices are gathered by lhs_indices with take (activations: cheap); the weights are read
 * in place by a gather_qmm node when rhs_indices is given, else this is quantized_matmul. */
int mlx_gather_qmm(mlx_array* res, const mlx_array x, const mlx_array w, const mlx_array scales,
                   const mlx_array biases, const mlx_array lhs_indices, const mlx_array rhs_indices,
                   bool transpose, mlx_optional_int group_size, mlx_optional_int bits,
                   const char* mode, bool sorted_indices, const mlx_stream s) {
  (void)sorted_indices; /* a hint for MLX's GPU kernels */
  const char* op = "gather_qmm";
  core_array* xa = ops_arg(x, op, "x");
  core_array* wq = xa ? ops_arg(w, op, "w") : NULL;
  core_array* sc = wq ? ops_arg(scales, op, "scales") : NULL;
  if (!sc || ops_check_indices(lhs_indices, op, "lhs_indices") ||
      ops_check_indices(rhs_indices, op, "rhs_indices"))
    return 1;
  core_array* bi = core_ctx(biases);
  quant_params p;
  mlx_dtype dtype;
  int values;
  if (resolve_params(mode, group_size, bits, &p, op) ||
      check_mode_inputs(&p, sc, bi, &dtype, op) || check_packed(wq, sc, bi, &p, &values, op))
    return 1;
  if (xa->ndim == 0) return util_error("%s: x must have at least one dimension", op);
  p.transpose = transpose;
  mlx_array x2 = mlx_array_new(), xg = mlx_array_new(), prod = mlx_array_new();
  bool row;
  int status = ops_as_matrix(&x2, x, 0, &row, s) || ops_gather_batch(&xg, x2, lhs_indices, s);
  if (!status && rhs_indices.ctx)
    status = ops_finish(&prod, gather_qmm_node(core_ctx(xg), wq, sc, bi, core_ctx(rhs_indices), &p,
                                               values, dtype, core_stream_resolve(s), op), op);
  else if (!status)
    status = mlx_quantized_matmul(&prod, xg, w, scales, biases, transpose, group_size, bits, mode, s);
  if (!status) {
    int axis = -2; /* the row inserted for a 1-D x */
    status = row ? mlx_squeeze_axes(res, prod, &axis, 1, s) : mlx_array_set(res, prod);
  }
  mlx_array_free(x2);
  mlx_array_free(xg);
  mlx_array_free(prod);
  return status;
}
