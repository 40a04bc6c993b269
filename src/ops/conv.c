/* Constructors of the convolutions: conv1d/2d/3d and conv_general (one primitive, kernel in
 * backend/cpu/conv.c), and the transposed convolutions, which MLX defines as a conv_general over
 * the stride-dilated input with flipped taps. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "mlx/c/ops.h"
#include "ops/conv_params.h"
#include "ops/ops_common.h"
#include "ops/primitives.h"

/* Input (N, S..., C_in) and weight (C_out, K..., C_in / groups) for D spatial axes. */
static int conv_check_ndim(const core_array* x, const core_array* w, int D, const char* op) {
  if (x->ndim != D + 2)
    return util_error("%s: the input has %d dimensions; a %dD convolution takes (N, spatial..., "
                      "C_in) with %d", op, x->ndim, D, D + 2);
  if (w->ndim != D + 2)
    return util_error("%s: the weight has %d dimensions; a %dD convolution takes (C_out, "
                      "kernel..., C_in / groups) with %d", op, w->ndim, D, D + 2);
  return 0;
}

/* Checks shapes and dtypes, then records the convolution node into *out: output (N, Q..., C_out)
 * in the promoted dtype (a new reference). Returns non-zero, error reported, on failure. */
static int conv_build(core_array* x, core_array* w, const conv_params* p, const char* op,
                      core_stream* s, core_array** out) {
  int D = p->spatial;
  if (!core_dtype_is_float(x->dtype))
    return util_error("%s: convolution supports floating point inputs only, got %s", op,
                      core_dtype_name(x->dtype));
  mlx_dtype dtype = core_promote(x->dtype, w->dtype);
  if (!core_dtype_is_float(dtype))
    return util_error("%s: input (%s) and weight (%s) must promote to a floating point type", op,
                      core_dtype_name(x->dtype), core_dtype_name(w->dtype));
  if (conv_check_ndim(x, w, D, op)) return 1;
  int C = x->shape[D + 1], O = w->shape[0], G = p->groups;
  if (G < 1) return util_error("%s: groups must be positive, got %d", op, G);
  if (C % G || O % G)
    return util_error("%s: input channels (%d) and output channels (%d) must both be divisible "
                      "by groups (%d)", op, C, O, G);
  if (w->shape[D + 1] * G != C)
    return util_error("%s: the weight's last dimension (%d) times groups (%d) must equal the "
                      "input channels (%d)", op, w->shape[D + 1], G, C);
  int out_shape[CONV_MAX_SPATIAL + 2];
  out_shape[0] = x->shape[0];
  out_shape[D + 1] = O;
  for (int i = 0; i < D; i++) {
    if (p->stride[i] < 1 || p->kernel_dilation[i] < 1 || p->input_dilation[i] < 1)
      return util_error("%s: strides and dilations must be positive (spatial axis %d: stride %d, "
                        "kernel dilation %d, input dilation %d)", op, i, p->stride[i],
                        p->kernel_dilation[i], p->input_dilation[i]);
    int64_t S = x->shape[i + 1], K = w->shape[i + 1];
    if (K < 1) return util_error("%s: the kernel is empty along spatial axis %d", op, i);
    int64_t dilated = S ? (S - 1) * p->input_dilation[i] + 1 : 0;
    int64_t padded = dilated + p->pad_lo[i] + p->pad_hi[i];
    int64_t extent = (K - 1) * p->kernel_dilation[i] + 1;
    if (padded < extent)
      return util_error("%s: along spatial axis %d the padded input (%lld) is smaller than the "
                        "dilated kernel (%lld)", op, i, (long long)padded, (long long)extent);
    int64_t Q = (padded - extent) / p->stride[i] + 1;
    if (Q > INT_MAX) return util_error("%s: the output is too large", op);
    out_shape[i + 1] = (int)Q;
  }
  conv_params* params = malloc(sizeof *params);
  if (!params) return util_error("out of memory");
  *params = *p;
  core_array* cx = ops_astype(x, dtype, s);
  core_array* cw = cx ? ops_astype(w, dtype, s) : NULL;
  if (cw) {
    core_array* in[2] = {cx, cw};
    *out = core_node_single(&prim_conv, params, in, 2, dtype, out_shape, D + 2, s);
  } else {
    free(params);
  }
  core_array_release(cx);
  core_array_release(cw);
  return *out ? 0 : 1;
}

/* The named forms take symmetric, non-negative padding. */
static int conv_named(mlx_array* res, mlx_array input, mlx_array weight, int D, const int* stride,
                      const int* padding, const int* dilation, int groups, const char* op,
                      mlx_stream s) {
  core_array* x = ops_arg(input, op, "input");
  core_array* w = x ? ops_arg(weight, op, "weight") : NULL;
  if (!w) return 1;
  conv_params p = {.spatial = D, .groups = groups};
  for (int i = 0; i < D; i++) {
    if (padding[i] < 0) return util_error("%s: padding must be non-negative, got %d", op, padding[i]);
    p.stride[i] = stride[i];
    p.pad_lo[i] = p.pad_hi[i] = padding[i];
    p.kernel_dilation[i] = dilation[i];
    p.input_dilation[i] = 1;
  }
  core_array* out = NULL;
  conv_build(x, w, &p, op, core_stream_resolve(s), &out);
  return ops_finish(res, out, op);
}

int mlx_conv1d(mlx_array* res, const mlx_array input, const mlx_array weight, int stride,
               int padding, int dilation, int groups, const mlx_stream s) {
  return conv_named(res, input, weight, 1, &stride, &padding, &dilation, groups, "conv1d", s);
}

int mlx_conv2d(mlx_array* res, const mlx_array input, const mlx_array weight, int stride_0,
               int stride_1, int padding_0, int padding_1, int dilation_0, int dilation_1,
               int groups, const mlx_stream s) {
  int st[2] = {stride_0, stride_1}, pd[2] = {padding_0, padding_1};
  int dl[2] = {dilation_0, dilation_1};
  return conv_named(res, input, weight, 2, st, pd, dl, groups, "conv2d", s);
}

int mlx_conv3d(mlx_array* res, const mlx_array input, const mlx_array weight, int stride_0,
               int stride_1, int stride_2, int padding_0, int padding_1, int padding_2,
               int dilation_0, int dilation_1, int dilation_2, int groups, const mlx_stream s) {
  int st[3] = {stride_0, stride_1, stride_2}, pd[3] = {padding_0, padding_1, padding_2};
  int dl[3] = {dilation_0, dilation_1, dilation_2};
  return conv_named(res, input, weight, 3, st, pd, dl, groups, "conv3d", s);
}

/* A per-axis option of conv_general: empty means `fallback` everywhere, one value is used for
 * every axis, otherwise one value per spatial axis. */
static int spatial_option(const int* v, size_t n, int D, int fallback, int* out, const char* name) {
  if (n > 1 && n != (size_t)D)
    return util_error("conv_general: %s has %zu values; give 0, 1 or %d (one per spatial axis)",
                      name, n, D);
  if (n && !v) return util_error("conv_general: %s is NULL with %zu values", name, n);
  for (int i = 0; i < D; i++) out[i] = n == 0 ? fallback : v[n == 1 ? 0 : i];
  return 0;
}

int mlx_conv_general(mlx_array* res, const mlx_array input, const mlx_array weight,
                     const int* stride, size_t stride_num, const int* padding_lo,
                     size_t padding_lo_num, const int* padding_hi, size_t padding_hi_num,
                     const int* kernel_dilation, size_t kernel_dilation_num,
                     const int* input_dilation, size_t input_dilation_num, int groups, bool flip,
                     const mlx_stream s) {
  core_array* x = ops_arg(input, "conv_general", "input");
  core_array* w = x ? ops_arg(weight, "conv_general", "weight") : NULL;
  if (!w) return 1;
  int D = x->ndim - 2;
  if (D < 1 || D > CONV_MAX_SPATIAL)
    return util_error("conv_general: the input has %d dimensions; it must be (N, spatial..., C_in) "
                      "with 1 to 3 spatial dimensions", x->ndim);
  conv_params p = {.spatial = D, .groups = groups, .flip = flip};
  if (spatial_option(stride, stride_num, D, 1, p.stride, "stride") ||
      spatial_option(padding_lo, padding_lo_num, D, 0, p.pad_lo, "padding_lo") ||
      spatial_option(padding_hi, padding_hi_num, D, 0, p.pad_hi, "padding_hi") ||
      spatial_option(kernel_dilation, kernel_dilation_num, D, 1, p.kernel_dilation,
                     "kernel_dilation") ||
      spatial_option(input_dilation, input_dilation_num, D, 1, p.input_dilation,
                     "input_dilation"))
    return 1;
  core_array* out = NULL;
  conv_build(x, w, &p, "conv_general", core_stream_resolve(s), &out);
  return ops_finish(res, out, "conv_general");
}

/* out[n, i * stride + k * dilation - padding, o] += x[n, i, c] * w[o, k, c] (per group): the
 * gradient of a convolution with respect to its input. As MLX: a stride-1 convolution over the
 * input dilated by `stride`, padded by (extent - 1 - padding) below and that plus output_padding
 * above, with flipped taps; the output is (in - 1) * stride - 2 * padding + extent + output_padding
 * long, extent = (K - 1) * dilation + 1. */
static int conv_transpose_named(mlx_array* res, mlx_array input, mlx_array weight, int D,
                                const int* stride, const int* padding, const int* dilation,
                                const int* output_padding, int groups, const char* op,
                                mlx_stream s) {
  core_array* x = ops_arg(input, op, "input");
  core_array* w = x ? ops_arg(weight, op, "weight") : NULL;
  if (!w) return 1;
  if (conv_check_ndim(x, w, D, op)) return 1;
  conv_params p = {.spatial = D, .groups = groups, .flip = true};
  for (int i = 0; i < D; i++) {
    if (padding[i] < 0 || output_padding[i] < 0)
      return util_error("%s: padding and output_padding must be non-negative, got %d and %d", op,
                        padding[i], output_padding[i]);
    if (dilation[i] < 1 || stride[i] < 1)
      return util_error("%s: strides and dilations must be positive, got %d and %d", op,
                        stride[i], dilation[i]);
    int64_t extent = (int64_t)(w->shape[i + 1] - 1) * dilation[i] + 1;
    int64_t lo = extent - 1 - padding[i], hi = lo + output_padding[i];
    if (lo > INT_MAX || hi > INT_MAX) return util_error("%s: the kernel is too large", op);
    p.stride[i] = 1;
    p.pad_lo[i] = (int)lo;
    p.pad_hi[i] = (int)hi;
    p.kernel_dilation[i] = dilation[i];
    p.input_dilation[i] = stride[i];
  }
  core_array* out = NULL;
  conv_build(x, w, &p, op, core_stream_resolve(s), &out);
  return ops_finish(res, out, op);
}

int mlx_conv_transpose1d(mlx_array* res, const mlx_array input, const mlx_array weight, int stride,
                         int padding, int dilation, int output_padding, int groups,
                         const mlx_stream s) {
  return conv_transpose_named(res, input, weight, 1, &stride, &padding, &dilation, &output_padding,
                              groups, "conv_transpose1d", s);
}

int mlx_conv_transpose2d(mlx_array* res, const mlx_array input, const mlx_array weight,
                         int stride_0, int stride_1, int padding_0, int padding_1, int dilation_0,
                         int dilation_1, int output_padding_0, int output_padding_1, int groups,
                         const mlx_stream s) {
  int st[2] = {stride_0, stride_1}, pd[2] = {padding_0, padding_1};
  int dl[2] = {dilation_0, dilation_1}, op[2] = {output_padding_0, output_padding_1};
  return conv_transpose_named(res, input, weight, 2, st, pd, dl, op, groups, "conv_transpose2d", s);
}

int mlx_conv_transpose3d(mlx_array* res, const mlx_array input, const mlx_array weight,
                         int stride_0, int stride_1, int stride_2, int padding_0, int padding_1,
                         int padding_2, int dilation_0, int dilation_1, int dilation_2,
                         int output_padding_0, int output_padding_1, int output_padding_2,
                         int groups, const mlx_stream s) {
  int st[3] = {stride_0, stride_1, stride_2}, pd[3] = {padding_0, padding_1, padding_2};
  int dl[3] = {dilation_0, dilation_1, dilation_2};
  int op[3] = {output_padding_0, output_padding_1, output_padding_2};
  return conv_transpose_named(res, input, weight, 3, st, pd, dl, op, groups, "conv_transpose3d", s);
}
