/* mlxc_fast_linear_residual and mlxc_fast_rms_norm_linear on the CPU for one float16/bfloat16
 * row (the rest is composed when the op is built, ops/fast_norm_linear.c): the linear layer,
 * plain or affine-quantized, through the kernel the composed matmul or quantized_matmul runs for
 * one row (linear_row.h). linear_residual's roundings and order of additions are the composed
 * ops', so that its sum, sumsq and scaled equal theirs bit for bit; rms_norm_linear scales the
 * unrounded float32 product, as its composed form does (which may add the product, and sumsq, in
 * another order). */
#include <math.h>
#include <stdlib.h>

#include "backend/cpu/convert.h"
#include "backend/cpu/glu.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/linear_row.h"
#include "backend/cpu/rows.h"
#include "ops/fast_params.h"
#include "util/error.h"

/* a's values (any layout) as float32 into dst, dense. */
static void load_f32(float* dst, const core_array* a) {
  cpu_convert(dst, MLX_FLOAT32, core_array_ptr(a), a->dtype, a->shape, a->strides, a->ndim);
}

/* out (ceil(n / 4)): for each run of 4 values of s, s[4j]^2 + s[4j+1]^2 + s[4j+2]^2 + s[4j+3]^2
 * added left to right in float32, the last run shorter when n is not a multiple of 4. One
 * operation a statement, so that no multiply is contracted into an add (the squares of half
 * values are exact in float32 anyway). */
static void sums_of_squares(const float* s, int64_t n, float* out) {
  for (int64_t j = 0; 4 * j < n; j++) {
    float total = 0;
    for (int64_t i = 4 * j; i < n && i < 4 * j + 4; i++) {
      const float square = s[i] * s[i];
      total = total + square;
    }
    out[j] = total;
  }
}

/* Inputs x (K), w, [scales, biases], residual (N), [norm weight (N)]; outputs sum (N) = residual
 * + round(x W^T) rounded (as mlx_matmul or mlx_quantized_matmul, then mlx_add store them), sumsq
 * (ceil(N / 4), float32) of the stored sum by runs of 4 and, with a norm weight, scaled (N) =
 * sum * norm weight rounded (mlx_multiply). */
int cpu_eval_linear_residual(core_node* node, core_array** outputs) {
  const linear_residual_params* p = node->params;
  const int at_residual = p->quantized ? 4 : 2;
  core_array *x = node->inputs[0], *residual = node->inputs[at_residual], *sum = outputs[0], *sumsq = outputs[1];
  core_array* scaled = p->has_norm_weight ? outputs[2] : NULL;
  if (core_array_alloc_contiguous(sum) || core_array_alloc_contiguous(sumsq) ||
      (scaled && core_array_alloc_contiguous(scaled)))
    return 1;
  const int64_t K = x->shape[x->ndim - 1], N = sum->shape[sum->ndim - 1];
  if (N == 0) return 0;
  float* buf = malloc(sizeof(float) * (size_t)(K + 2 * N));
  if (!buf) return util_error("linear_residual: out of memory");
  float *x32 = buf, *y = x32 + K, *r = y + N; /* x (K); y (N): the products, then the sum; r (N) */
  load_f32(x32, x);
  int status = cpu_linear_row(y, x32, node->inputs + 1, p->quantized, p->bits, p->group_size, N, K);
  if (!status) {
    cpu_round_row(y, N, sum->dtype); /* the linear layer's output, stored in the dtype */
    load_f32(r, residual);
    for (int64_t i = 0; i < N; i++) y[i] = r[i] + y[i]; /* mlx_add: in float32, then stored */
    cpu_row_from_f32(y, core_array_ptr(sum), sum->dtype, 1, N);
    cpu_row_to_f32(core_array_ptr(sum), sum->dtype, 1, N, y);
    sums_of_squares(y, N, core_array_ptr(sumsq));
    if (scaled) {
      load_f32(r, node->inputs[at_residual + 1]); /* r: the norm weight now */
      for (int64_t i = 0; i < N; i++) y[i] = y[i] * r[i]; /* mlx_multiply: in float32, then stored */
      cpu_row_from_f32(y, core_array_ptr(scaled), scaled->dtype, 1, N);
    }
  }
  free(buf);
  return status;
}

/* Inputs scaled (D), sumsq (P), w, [scales, biases], [bias (N)]; output (N), or (N / 2) gated.
 * inv = 1 / sqrt(total / D + eps) for the float32 total of sumsq added in index order; plain,
 * out = round(inv * p + bias) for the float32 product p (one multiply, one add, one rounding);
 * gated, glu of round(inv * p) over the stacked halves. */
int cpu_eval_rms_norm_linear(core_node* node, core_array** outputs) {
  const norm_linear_params* p = node->params;
  core_array *h = node->inputs[0], *sumsq = node->inputs[1], *out = outputs[0];
  if (core_array_alloc_contiguous(out)) return 1;
  const int64_t D = h->shape[h->ndim - 1], P = sumsq->shape[sumsq->ndim - 1];
  const int64_t N = p->gated ? 2 * out->shape[out->ndim - 1] : out->shape[out->ndim - 1];
  if (N == 0) return 0;
  float* buf = malloc(sizeof(float) * (size_t)(D + P + 2 * N));
  if (!buf) return util_error("rms_norm_linear: out of memory");
  /* x (D): scaled; ss (P); y (N): the products; t (N): the bias, or glu's scratch */
  float *x = buf, *ss = x + D, *y = ss + P, *t = y + N;
  load_f32(x, h);
  load_f32(ss, sumsq);
  float total = 0;
  for (int64_t i = 0; i < P; i++) total += ss[i];
  const float inv = 1.0f / sqrtf(total / (float)D + p->eps);
  int status = cpu_linear_row(y, x, node->inputs + 2, p->quantized, p->bits, p->group_size, N, D);
  if (!status) {
    for (int64_t i = 0; i < N; i++) y[i] = inv * y[i];
    if (p->gated) {
      cpu_linear_row_glu_store(y, t, N / 2, p->activation, out);
    } else {
      if (p->has_bias) {
        load_f32(t, node->inputs[p->quantized ? 5 : 3]);
        for (int64_t i = 0; i < N; i++) y[i] = y[i] + t[i];
      }
      cpu_row_from_f32(y, core_array_ptr(out), out->dtype, 1, N);
    }
  }
  free(buf);
  return status;
}
