/* mlxc_fast_linear_residual and mlxc_fast_rms_norm_linear on the CPU for one float16/bfloat16
 * row (the rest is composed when the op is built, ops/fast_norm_linear.c): the linear layer
 * through the kernel the composed matmul runs for one row (linear_row.h), with the composed ops'
 * roundings around it, so that the results equal theirs bit for bit (rms_norm_linear's sum of
 * sumsq aside, whose order is unspecified: here index order in float32). */
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

/* out[j] = ((s[4j]^2 + s[4j+1]^2) + s[4j+2]^2) + s[4j+3]^2 in float32 for j < n / 4. One
 * operation a statement, so that no multiply is contracted into an add (the squares of half
 * values are exact in float32 anyway). */
static void sums_of_squares(const float* s, int64_t n, float* out) {
  for (int64_t j = 0; j < n / 4; j++) {
    const float* v = s + 4 * j;
    float total = v[0] * v[0];
    for (int k = 1; k < 4; k++) {
      const float square = v[k] * v[k];
      total = total + square;
    }
    out[j] = total;
  }
}

/* Inputs x (K), w (N, K), residual (N); outputs sum (N) = residual + round(x W^T) rounded (as
 * mlx_matmul then mlx_add store them) and sumsq (N / 4, float32) of the stored sum. */
int cpu_eval_linear_residual(core_node* node, core_array** outputs) {
  core_array *x = node->inputs[0], *w = node->inputs[1], *residual = node->inputs[2];
  core_array *sum = outputs[0], *sumsq = outputs[1];
  if (core_array_alloc_contiguous(sum) || core_array_alloc_contiguous(sumsq)) return 1;
  const int64_t K = x->shape[x->ndim - 1], N = w->shape[0];
  if (N == 0) return 0;
  float* buf = malloc(sizeof(float) * (size_t)(K + 2 * N));
  if (!buf) return util_error("linear_residual: out of memory");
  float *x32 = buf, *y = x32 + K, *r = y + N; /* x (K); y (N): the products, then the sum; r (N) */
  load_f32(x32, x);
  int status = cpu_linear_row_plain(y, x32, w, N, K);
  if (!status) {
    cpu_round_row(y, N, sum->dtype); /* matmul's output, stored in the dtype */
    load_f32(r, residual);
    for (int64_t i = 0; i < N; i++) y[i] = r[i] + y[i]; /* mlx_add: in float32, then stored */
    cpu_row_from_f32(y, core_array_ptr(sum), sum->dtype, 1, N);
    cpu_row_to_f32(core_array_ptr(sum), sum->dtype, 1, N, y);
    sums_of_squares(y, N, core_array_ptr(sumsq));
  }
  free(buf);
  return status;
}

/* x (D) = mlx_fast_rms_norm's value of h's row x (held as float32), with the mean square taken
 * from ss (P values, added in index order): the rms_norm kernel's steps (fast.c), h * inv
 * rounded to the dtype, then times the norm weight wn (NULL: none) and rounded again. */
static void normalise_row(float* x, int64_t D, const float* ss, int64_t P, const float* wn, float eps,
                          mlx_dtype dtype) {
  float total = 0;
  for (int64_t i = 0; i < P; i++) total += ss[i];
  const float inv = 1.0f / sqrtf(total / (float)D + eps);
  for (int64_t i = 0; i < D; i++) x[i] *= inv;
  cpu_round_row(x, D, dtype);
  if (!wn) return;
  for (int64_t i = 0; i < D; i++) x[i] *= wn[i];
  cpu_round_row(x, D, dtype);
}

/* Inputs h (D), sumsq (P), w (N, D), [norm weight (D)], [bias (N)]; output (N), or (N / 2)
 * gated: the normalised row through the linear layer, as matmul, addmm (the bias added to the
 * float32 product and the sum rounded once) or gated_linear compute it. */
int cpu_eval_rms_norm_linear(core_node* node, core_array** outputs) {
  const norm_linear_params* p = node->params;
  core_array *h = node->inputs[0], *sumsq = node->inputs[1], *w = node->inputs[2], *out = outputs[0];
  if (core_array_alloc_contiguous(out)) return 1;
  const int64_t D = h->shape[h->ndim - 1], P = sumsq->shape[sumsq->ndim - 1], N = w->shape[0];
  if (N == 0) return 0;
  float* buf = malloc(sizeof(float) * (size_t)(2 * D + P + 2 * N));
  if (!buf) return util_error("rms_norm_linear: out of memory");
  /* x (D): h, then normalised; wn (D): the norm weight; ss (P); y (N): the products; t (N): the
   * bias, or glu's scratch */
  float *x = buf, *wn = x + D, *ss = wn + D, *y = ss + P, *t = y + N;
  load_f32(x, h);
  load_f32(ss, sumsq);
  if (p->has_norm_weight) load_f32(wn, node->inputs[3]);
  normalise_row(x, D, ss, P, p->has_norm_weight ? wn : NULL, p->eps, h->dtype);
  int status = cpu_linear_row_plain(y, x, w, N, D);
  if (!status && p->gated) {
    cpu_linear_row_glu_store(y, t, N / 2, p->activation, out);
  } else if (!status) {
    if (p->has_bias) {
      load_f32(t, node->inputs[p->has_norm_weight ? 4 : 3]);
      for (int64_t i = 0; i < N; i++) y[i] = y[i] + t[i]; /* addmm's 1 * AB + 1 * C */
    }
    cpu_row_from_f32(y, core_array_ptr(out), out->dtype, 1, N);
  }
  free(buf);
  return status;
}
