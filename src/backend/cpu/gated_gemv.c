/* The gated GEMV on the CPU (mlxc_fast_gated_linear of one float16/bfloat16 row): the stacked
 * products x W^T (2D values: gate rows, then up rows) by the kernel the composed matmul or
 * quantized_matmul runs for one row, rounded to the dtype, then glu's arithmetic on the two
 * halves, so that the result equals the composed ops' bit for bit. A plain weight is read in
 * place when its rows are contiguous (a linear layer's weight, stacked or a row slice of one);
 * other layouts are copied dense first, where the composed matmul would take another kernel and
 * could differ in the last bit. */
#include <stdlib.h>

#include "backend/cpu/convert.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/linear_row.h"
#include "ops/fast_params.h"
#include "util/error.h"

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
  int status = cpu_linear_row(y, x32, node->inputs + 1, p->quantized, p->bits, p->group_size, 2 * D, K);
  if (!status) cpu_linear_row_glu_store(y, t, D, p->activation, out);
  free(buf);
  return status;
}
