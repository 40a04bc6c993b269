/* mlxc_fast_add_norm_linear of one row on the CPU: sum = x + residual rounded to the dtype, the
 * rms_norm of it rounded to the dtype (fast.c's row arithmetic), then the linear layer by the
 * kernel matmul / quantized_matmul runs for one row (gated_gemv.c's), and for the gated layer
 * glu's arithmetic: each step as the composed ops compute it, so the result equals theirs bit for
 * bit. */
#include <stdlib.h>

#include "backend/cpu/convert.h"
#include "backend/cpu/fused_rows.h"
#include "backend/cpu/glu.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/rows.h"
#include "ops/fast_params.h"
#include "util/error.h"

/* a (K values, any layout) as float32 into dst. */
static void load_row(float* dst, const core_array* a) {
  cpu_convert(dst, MLX_FLOAT32, core_array_ptr(a), a->dtype, a->shape, a->strides, a->ndim);
}

int cpu_eval_norm_gemv(core_node* node, core_array** outputs) {
  const norm_gemv_params* p = node->params;
  core_array* const* in = node->inputs;
  int next = 1;
  const core_array* x = in[0];
  const core_array* residual = p->has_residual ? in[next++] : NULL;
  const core_array* norm_weight = p->has_norm_weight ? in[next++] : NULL;
  const core_array* w = in[next];
  const core_array *scales = p->linear.quantized ? in[next + 1] : NULL, *biases = scales ? in[next + 2] : NULL;
  core_array *sum = p->has_residual ? outputs[0] : NULL, *out = outputs[p->has_residual ? 1 : 0];
  if (core_array_alloc_contiguous(out) || (sum && core_array_alloc_contiguous(sum))) return 1;
  const mlx_dtype dt = x->dtype;
  const int64_t K = x->shape[x->ndim - 1], N = w->shape[0], D = out->shape[out->ndim - 1];
  float* buf = malloc(sizeof(float) * (size_t)(3 * K + N + D + 1));
  if (!buf) return util_error("add_norm_linear: out of memory");
  float *row = buf, *other = row + K, *nw = other + K, *y = nw + K, *t = y + N; /* t: glu's scratch (D) */
  load_row(row, x);
  if (residual) { /* the sum rounded to its dtype, as mlx_add leaves it */
    load_row(other, residual);
    for (int64_t i = 0; i < K; i++) row[i] += other[i];
    cpu_row_from_f32(row, core_array_ptr(sum), dt, 1, K);
    cpu_round_row(row, K, dt);
  }
  if (norm_weight) load_row(nw, norm_weight);
  cpu_norm_row(row, K, p->eps, false, norm_weight ? nw : NULL, NULL, dt);
  cpu_round_row(row, K, dt); /* the normed row, stored in the dtype */
  int status = cpu_linear_row(y, row, w, scales, biases, &p->linear, N, K);
  if (!status) {
    cpu_round_row(y, N, dt); /* the linear layer's output, stored in the dtype */
    if (p->gated) cpu_glu_row(y, y + D, t, D, p->linear.activation, dt);
    cpu_row_from_f32(y, core_array_ptr(out), dt, 1, D);
  }
  free(buf);
  return status;
}
