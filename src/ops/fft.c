/* Constructors of mlx-c's fft.h: the transforms (one fft primitive, backend/cpu/fft.c, which
 * also crops and zero-pads to the requested lengths), fftshift/ifftshift as rolls, and the
 * sample-frequency vectors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mlx/c/fft.h"
#include "mlx/c/ops.h"
#include "ops/fft_params.h"
#include "ops/ops_common.h"
#include "ops/primitives.h"

/* numpy's scale for a transform over N points in direction `inverse`. */
static double norm_scale(mlx_fft_norm norm, double N, bool inverse) {
  switch (norm) {
    case MLX_FFT_NORM_ORTHO: return 1.0 / sqrt(N);
    case MLX_FFT_NORM_FORWARD: return inverse ? 1.0 : 1.0 / N;
    default: return inverse ? 1.0 / N : 1.0;
  }
}

/* The whole entry point of every transform: checks as MLX's fft_impl, then one node whose input
 * is cast to float32 (rfft) or complex64 (the rest). Lengths n[i] apply to axes[i]. */
static int fft_api(mlx_array* res, mlx_array a, const int* n, size_t n_num, const int* axes,
                   size_t axes_num, mlx_fft_norm norm, bool real, bool inverse, const char* op,
                   mlx_stream stream) {
  core_array* x = ops_arg(a, op, "input");
  if (!x) return 1;
  if (x->ndim < 1) return util_error("%s: requires an array with at least one dimension", op);
  if (n_num != axes_num)
    return util_error("%s: the sizes (%zu) and the axes (%zu) have different lengths", op, n_num,
                      axes_num);
  if (norm != MLX_FFT_NORM_BACKWARD && norm != MLX_FFT_NORM_ORTHO && norm != MLX_FFT_NORM_FORWARD)
    return util_error("%s: invalid norm mode %d", op, (int)norm);
  if (axes_num == 0) { /* MLX returns the input itself */
    core_array_retain(x);
    return ops_finish(res, x, op);
  }
  if (!n || !axes) return util_error("%s: sizes and axes must not be NULL", op);
  if (axes_num > (size_t)x->ndim)
    return util_error("%s: %zu axes given for an array of %d dimensions", op, axes_num, x->ndim);
  fft_params* params = malloc(sizeof *params);
  if (!params) return util_error("%s: out of memory", op);
  *params = (fft_params){.n_axes = (int)axes_num, .inverse = inverse, .real = real};
  bool used[CORE_MAX_NDIM] = {false};
  int shape[CORE_MAX_NDIM];
  memcpy(shape, x->shape, sizeof(int) * (size_t)x->ndim);
  double points = 1;
  for (size_t i = 0; i < axes_num; i++) {
    int ax;
    if (ops_axis(axes[i], x->ndim, op, &ax)) goto fail;
    if (used[ax]) {
      util_error("%s: duplicated axis %d", op, axes[i]);
      goto fail;
    }
    if (n[i] <= 0) {
      util_error("%s: invalid transform size %d (must be positive)", op, n[i]);
      goto fail;
    }
    used[ax] = true;
    params->axes[i] = ax;
    params->length[i] = n[i];
    shape[ax] = n[i];
    points *= n[i];
  }
  int last = params->axes[axes_num - 1];
  if (real && !inverse) shape[last] = n[axes_num - 1] / 2 + 1;
  params->scale = norm_scale(norm, points, inverse);
  core_stream* s = core_stream_resolve(stream);
  core_array* cast = ops_astype(x, real && !inverse ? MLX_FLOAT32 : MLX_COMPLEX64, s);
  if (!cast) goto fail;
  core_array* out = core_node_single(&prim_fft, params, &cast, 1,
                                     real && inverse ? MLX_FLOAT32 : MLX_COMPLEX64, shape,
                                     x->ndim, s);
  core_array_release(cast);
  return ops_finish(res, out, op);
fail:
  free(params);
  return 1;
}

int mlx_fft_fft(mlx_array* res, const mlx_array a, int n, int axis, mlx_fft_norm norm,
                const mlx_stream s) {
  return fft_api(res, a, &n, 1, &axis, 1, norm, false, false, "fft", s);
}
int mlx_fft_ifft(mlx_array* res, const mlx_array a, int n, int axis, mlx_fft_norm norm,
                 const mlx_stream s) {
  return fft_api(res, a, &n, 1, &axis, 1, norm, false, true, "ifft", s);
}
int mlx_fft_rfft(mlx_array* res, const mlx_array a, int n, int axis, mlx_fft_norm norm,
                 const mlx_stream s) {
  return fft_api(res, a, &n, 1, &axis, 1, norm, true, false, "rfft", s);
}
int mlx_fft_irfft(mlx_array* res, const mlx_array a, int n, int axis, mlx_fft_norm norm,
                  const mlx_stream s) {
  return fft_api(res, a, &n, 1, &axis, 1, norm, true, true, "irfft", s);
}

#define FFT_ND(name, real, inverse)                                                            \
  int mlx_fft_##name(mlx_array* res, const mlx_array a, const int* n, size_t n_num,             \
                     const int* axes, size_t axes_num, mlx_fft_norm norm, const mlx_stream s) { \
    return fft_api(res, a, n, n_num, axes, axes_num, norm, real, inverse, #name, s);            \
  }
FFT_ND(fft2, false, false)
FFT_ND(ifft2, false, true)
FFT_ND(fftn, false, false)
FFT_ND(ifftn, false, true)
FFT_ND(rfft2, true, false)
FFT_ND(irfft2, true, true)
FFT_ND(rfftn, true, false)
FFT_ND(irfftn, true, true)
#undef FFT_ND

/* Rolls axes[i] by shift(size): size / 2 for fftshift, (size + 1) / 2 for ifftshift (the same
 * as numpy's -(size / 2) modulo size). */
static int shift_api(mlx_array* res, mlx_array a, const int* axes, size_t axes_num, bool inverse,
                     const char* op, mlx_stream s) {
  core_array* x = ops_arg(a, op, "input");
  if (!x) return 1;
  if (axes_num == 0) {
    core_array_retain(x);
    return ops_finish(res, x, op);
  }
  if (!axes) return util_error("%s: axes must not be NULL", op);
  if (axes_num > CORE_MAX_NDIM) return util_error("%s: too many axes (%zu)", op, axes_num);
  int shifts[CORE_MAX_NDIM];
  for (size_t i = 0; i < axes_num; i++) {
    int ax;
    if (ops_axis(axes[i], x->ndim, op, &ax)) return 1;
    shifts[i] = inverse ? (x->shape[ax] + 1) / 2 : x->shape[ax] / 2;
  }
  return mlx_roll_axes(res, a, shifts, axes_num, axes, axes_num, s);
}

int mlx_fft_fftshift(mlx_array* res, const mlx_array a, const int* axes, size_t axes_num,
                     const mlx_stream s) {
  return shift_api(res, a, axes, axes_num, false, "fftshift", s);
}
int mlx_fft_ifftshift(mlx_array* res, const mlx_array a, const int* axes, size_t axes_num,
                      const mlx_stream s) {
  return shift_api(res, a, axes, axes_num, true, "ifftshift", s);
}

/* Frequencies k / (d n) in float32 as MLX computes them (float32 k times float32 1/(d n)) for
 * k = 0, 1, ..., then the negative ones when `full`. */
static int freq_api(mlx_array* res, int n, double d, bool full, const char* op) {
  if (n <= 0) return util_error("%s: n must be greater than 0 (got %d)", op, n);
  if (d == 0.0) return util_error("%s: d must be non-zero", op);
  int len = full ? n : n / 2 + 1;
  float* values = malloc(sizeof(float) * (size_t)len);
  if (!values) return util_error("%s: out of memory", op);
  float step = (float)(1.0 / ((double)n * d));
  int positive = full ? (n + 1) / 2 : len;
  for (int k = 0; k < len; k++) values[k] = (float)(k < positive ? k : k - n) * step;
  mlx_array out = mlx_array_new_data(values, &len, 1, MLX_FLOAT32);
  free(values);
  return ops_finish(res, core_ctx(out), op);
}

int mlx_fft_fftfreq(mlx_array* res, int n, double d, const mlx_stream s) {
  return freq_api(res, n, d, true, "fftfreq");
}
int mlx_fft_rfftfreq(mlx_array* res, int n, double d, const mlx_stream s) {
  return freq_api(res, n, d, false, "rfftfreq");
}
