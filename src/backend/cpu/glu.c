/* mlxc/fast.h's glu on the CPU: act(gate) * up a row at a time, each step rounded to the dtype
 * exactly as the separate unary/binary kernels would round it, with the same float formulas
 * (so the fused op and the composed ops agree bit for bit). */
#include <math.h>
#include <stdlib.h>

#include "backend/cpu/glu.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/rows.h"
#include "backend/cpu/threadpool.h"
#include "backend/cpu/vec.h"
#include "core/half.h"
#include "ops/fast_params.h"
#include "util/error.h"

/* v rounded to dtype (float32: unchanged). */
static inline float round_to(float v, mlx_dtype dtype) {
  if (dtype == MLX_BFLOAT16) return half_bf16_to_f32(half_f32_to_bf16(v));
  if (dtype == MLX_FLOAT16) return half_f16_to_f32(half_f32_to_f16(v));
  return v;
}

void cpu_round_row(float* v, int64_t n, mlx_dtype dtype) {
  if (dtype == MLX_BFLOAT16) cpu_vec_round_bf16(v, n);
  else if (dtype == MLX_FLOAT16)
    for (int64_t i = 0; i < n; i++) v[i] = half_f16_to_f32(half_f32_to_f16(v[i]));
}

void cpu_glu_row(float* g, const float* u, float* t, int64_t n, glu_activation act, mlx_dtype dt) {
  if (act == GLU_SILU) { /* a step at a time over the row, so that each vectorises */
    cpu_vec_sigmoid(t, g, n); /* the unary kernel's sigmoid, value for value */
    cpu_round_row(t, n, dt);
    for (int64_t i = 0; i < n; i++) t[i] *= g[i];
    cpu_round_row(t, n, dt);
    for (int64_t i = 0; i < n; i++) g[i] = t[i] * u[i];
    return;
  }
  /* 0.5 x (1 + tanh(k2 (x + k1 x^3))), one rounding per op; the constants as mlx_astype leaves
   * them in the dtype. */
  const float k1 = round_to(0.044715f, dt), k2 = round_to(0.7978845608f, dt);
  for (int64_t i = 0; i < n; i++) {
    const float x = g[i];
    float v = round_to(x * x, dt);
    v = round_to(v * x, dt);
    v = round_to(v * k1, dt);
    v = round_to(v + x, dt);
    v = round_to(v * k2, dt);
    v = round_to(tanhf(v), dt);
    v = round_to(v + 1.0f, dt);
    v = round_to(v * round_to(x * 0.5f, dt), dt);
    g[i] = v * u[i];
  }
}

typedef struct {
  const core_array *gate, *up, *out;
  glu_activation act;
  int64_t D;
  int failed;
} glu_job;

static int64_t row_offset(const core_array* a, int64_t row) {
  int64_t off = 0;
  for (int d = a->ndim - 2; d >= 0; d--) {
    off += (row % a->shape[d]) * a->strides[d];
    row /= a->shape[d];
  }
  return off;
}

static void glu_rows(void* ctx, int64_t begin, int64_t end) {
  glu_job* job = ctx;
  const core_array *gate = job->gate, *up = job->up, *out = job->out;
  const mlx_dtype dt = out->dtype;
  const int64_t D = job->D;
  const size_t size = core_dtype_size(dt);
  float* g = malloc(sizeof(float) * (size_t)(3 * D));
  if (!g) {
    job->failed = 1;
    return;
  }
  float *u = g + D, *t = u + D;
  for (int64_t r = begin; r < end; r++) {
    cpu_row_to_f32((const char*)core_array_ptr(gate) + row_offset(gate, r) * (int64_t)size, dt,
                   gate->strides[gate->ndim - 1], D, g);
    cpu_row_to_f32((const char*)core_array_ptr(up) + row_offset(up, r) * (int64_t)size, dt, up->strides[up->ndim - 1],
                   D, u);
    cpu_glu_row(g, u, t, D, job->act, dt);
    cpu_row_from_f32(g, (char*)core_array_ptr(out) + r * D * (int64_t)size, dt, 1, D);
  }
  free(g);
}

int cpu_eval_glu(core_node* node, core_array** outputs) {
  core_array *gate = node->inputs[0], *out = outputs[0];
  if (core_array_alloc_contiguous(out)) return 1;
  int64_t D = gate->ndim ? gate->shape[gate->ndim - 1] : 1;
  int64_t rows = D ? (int64_t)gate->size / D : 0;
  if (rows == 0) return 0;
  glu_job job = {gate, node->inputs[1], out, *(const glu_activation*)node->params, D, 0};
  cpu_parallel_for(rows, 1 + (1 << 14) / D, glu_rows, &job);
  return job.failed ? util_error("out of memory") : 0;
}
