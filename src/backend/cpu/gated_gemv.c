/* The gated GEMV on the CPU (mlxc_fast_gated_linear of one float16/bfloat16 row): the stacked
 * products x W^T (2D values: gate rows, then up rows) by the kernel the composed matmul or
 * quantized_matmul runs for one row, rounded to the dtype, then glu's arithmetic on the two
 * halves, so that the result equals the composed ops' bit for bit. A plain weight is read in
 * place when its rows are contiguous (a linear layer's weight, stacked or a row slice of one);
 * other layouts are copied dense first, where the composed matmul would take another kernel and
 * could differ in the last bit. */
#include <stdlib.h>

#include "backend/cpu/convert.h"
#include "backend/cpu/copy.h"
#include "backend/cpu/gemv.h"
#include "backend/cpu/glu.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/linear_row.h"
#include "backend/cpu/qgemv.h"
#include "backend/cpu/rows.h"
#include "ops/fast_params.h"
#include "util/error.h"

/* w is float16 or bfloat16: the fused ops compose float32 when they are built (ops/fast.c,
 * ops/fast_norm_linear.c). */
int cpu_linear_row_plain(float* y, const float* x, const core_array* w, int64_t N, int64_t K) {
  void* owned = NULL;
  const void* data = core_array_ptr(w);
  int64_t ldw = w->strides[0];
  if (w->strides[1] != 1 || ldw < K) {
    data = cpu_dense_data(w, &owned);
    ldw = K;
    if (!data) return 1;
  }
  cpu_gemv_half_rows(y, x, 1, data, ldw, N, K, w->dtype == MLX_BFLOAT16);
  free(owned);
  return 0;
}

void cpu_linear_row_glu_store(float* y, float* t, int64_t D, glu_activation act, core_array* out) {
  cpu_round_row(y, 2 * D, out->dtype); /* the linear layer's output, stored in the dtype */
  cpu_glu_row(y, y + D, t, D, act, out->dtype);
  cpu_row_from_f32(y, core_array_ptr(out), out->dtype, 1, D);
}

int cpu_linear_row_quantized(float* y, const float* x, const core_array* w, const core_array* scales,
                             const core_array* biases, int bits, int group_size, int64_t N, int64_t K) {
  void* owned[3] = {NULL, NULL, NULL};
  const void* wd = cpu_dense_data(w, &owned[0]);
  const void* sd = wd ? cpu_dense_data(scales, &owned[1]) : NULL;
  const void* bd = sd ? cpu_dense_data(biases, &owned[2]) : NULL;
  int status = bd ? cpu_qgemv_affine(y, x, 1, wd, sd, bd, scales->dtype, biases->dtype, N, K, bits, group_size) : 1;
  for (int i = 0; i < 3; i++) free(owned[i]);
  return status;
}

int cpu_eval_gated_gemv(core_node* node, core_array** outputs) {
  const gated_gemv_params* p = node->params;
  core_array *x = node->inputs[0], *out = outputs[0];
  if (core_array_alloc_contiguous(out)) return 1;
  const int64_t K = x->shape[x->ndim - 1], D = out->shape[out->ndim - 1];
  if (D == 0) return 0;
  float* buf = malloc(sizeof(float) * (size_t)(K + 3 * D));
  if (!buf) return util_error("gated_gemv: out of memory");
  float *x32 = buf, *y = x32 + K, *t = y + 2 * D; /* x (K); y (2D): gate then up; t (D) scratch */
  cpu_convert(x32, MLX_FLOAT32, core_array_ptr(x), x->dtype, x->shape, x->strides, x->ndim);
  int status = p->quantized ? cpu_linear_row_quantized(y, x32, node->inputs[1], node->inputs[2], node->inputs[3],
                                                      p->bits, p->group_size, 2 * D, K)
                            : cpu_linear_row_plain(y, x32, node->inputs[1], 2 * D, K);
  if (!status) cpu_linear_row_glu_store(y, t, D, p->activation, out);
  free(buf);
  return status;
}
