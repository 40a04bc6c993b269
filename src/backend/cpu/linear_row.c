/* One row through a linear layer as the composed matmul or quantized_matmul computes it, and the
 * gated layer's epilogue (linear_row.h). */
#include "backend/cpu/linear_row.h"

#include <stdlib.h>

#include "backend/cpu/copy.h"
#include "backend/cpu/gemv.h"
#include "backend/cpu/glu.h"
#include "backend/cpu/qgemv.h"
#include "backend/cpu/rows.h"

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

int cpu_linear_row(float* y, const float* x, core_array* const* weight, bool quantized, int bits, int group_size,
                   int64_t N, int64_t K) {
  if (quantized) return cpu_linear_row_quantized(y, x, weight[0], weight[1], weight[2], bits, group_size, N, K);
  return cpu_linear_row_plain(y, x, weight[0], N, K);
}
