/* The mixture-of-experts block. Routing happens on the host (the router's logits are small);
 * each expert then runs once on the rows of the tokens that chose it, and its outputs are
 * combined as (L, n) weights times (n, D) outputs, so only chosen experts cost anything. */
#include <math.h>
#include <stdlib.h>

#include "lm/call.h"
#include "lm/model.h"
#include "util/error.h"

/* For token t: the chosen experts (k of them) and their weights, transformers' order:
 * softmax over all experts in float32, top-k, optionally renormalised. */
static void route(const float* logits, int E, int k, bool renormalize, int* chosen, float* weights) {
  float max = logits[0], sum = 0;
  for (int e = 1; e < E; e++) max = logits[e] > max ? logits[e] : max;
  float* p = malloc(sizeof(float) * (size_t)E);
  if (!p) return;
  for (int e = 0; e < E; e++) sum += (p[e] = expf(logits[e] - max));
  for (int e = 0; e < E; e++) p[e] /= sum;
  float total = 0;
  for (int j = 0; j < k; j++) {
    int best = -1;
    for (int e = 0; e < E; e++) {
      bool taken = false;
      for (int i = 0; i < j; i++) taken |= chosen[i] == e;
      if (!taken && (best < 0 || p[e] > p[best])) best = e;
    }
    chosen[j] = best;
    weights[j] = p[best];
    total += p[best];
  }
  if (renormalize)
    for (int j = 0; j < k; j++) weights[j] /= total;
  free(p);
}

static int expert_mlp(mlx_array* out, const lm_layer* layer, int e, mlx_array x, mlx_stream s) {
  mlx_array g = mlx_array_new(), u = mlx_array_new();
  int status = 0;
  CALL(lm_linear_apply(&g, &layer->expert_gate[e], x, s));
  CALL(lm_linear_apply(&u, &layer->expert_up[e], x, s));
  CALL(mlx_sigmoid(out, g, s)); /* SiLU(g) * u */
  CALL(mlx_multiply(out, *out, g, s));
  CALL(mlx_multiply(out, *out, u, s));
  CALL(lm_linear_apply(out, &layer->expert_down[e], *out, s));
cleanup:
  mlx_array_free(g);
  mlx_array_free(u);
  return status;
}

int lm_moe_apply(mlx_array* out, const mlxc_lm_model* m, const lm_layer* layer, mlx_array x, mlx_stream s) {
  const lm_config* c = &m->config;
  /* L: the tokens of every row, routed alike */
  int L = mlx_array_dim(x, 0) * mlx_array_dim(x, 1), D = c->hidden_size, E = c->num_experts, k = c->experts_per_token;
  mlx_array flat = mlx_array_new(), logits = mlx_array_new(), rows = mlx_array_new(), y = mlx_array_new();
  mlx_array wmat = mlx_array_new(), idx = mlx_array_new(), acc = mlx_array_new();
  int* chosen = malloc(sizeof(int) * (size_t)L * (size_t)k);
  float* weights = malloc(sizeof(float) * (size_t)L * (size_t)k);
  int32_t* members = malloc(sizeof(int32_t) * (size_t)L);
  float* dense = malloc(sizeof(float) * (size_t)L * (size_t)L);
  int status = 0;
  if (!chosen || !weights || !members || !dense) CALL(util_error("out of memory"));
  int flat_shape[2] = {L, D};
  CALL(mlx_reshape(&flat, x, flat_shape, 2, s));
  CALL(lm_linear_apply(&logits, &layer->router, flat, s));
  CALL(mlx_astype(&logits, logits, MLX_FLOAT32, s));
  const float* lg = mlx_array_data_float32(logits);
  if (!lg) CALL(1);
  for (int t = 0; t < L; t++) route(lg + (size_t)t * E, E, k, c->norm_topk_prob, chosen + t * k, weights + t * k);
  CALL(mlx_zeros(&acc, flat_shape, 2, mlx_array_dtype(x), s));
  for (int e = 0; e < E; e++) {
    int n = 0;
    for (int t = 0; t < L; t++)
      for (int j = 0; j < k; j++)
        if (chosen[t * k + j] == e) members[n++] = t;
    if (n == 0) continue;
    /* (L, n) weights: row t gets expert e's weight for token t in the column of its place. */
    for (int i = 0; i < L * n; i++) dense[i] = 0;
    for (int i = 0; i < n; i++)
      for (int j = 0; j < k; j++)
        if (chosen[members[i] * k + j] == e) dense[members[i] * n + i] = weights[members[i] * k + j];
    int ishape[1] = {n}, wshape[2] = {L, n};
    mlx_array fresh_idx = mlx_array_new_data(members, ishape, 1, MLX_INT32);
    mlx_array fresh_w = mlx_array_new_data(dense, wshape, 2, MLX_FLOAT32);
    mlx_array_free(idx);
    mlx_array_free(wmat);
    idx = fresh_idx;
    wmat = fresh_w;
    if (!idx.ctx || !wmat.ctx) CALL(1);
    CALL(mlx_astype(&wmat, wmat, mlx_array_dtype(x), s));
    CALL(mlx_take_axis(&rows, flat, idx, 0, s));
    CALL(expert_mlp(&y, layer, e, rows, s));
    CALL(mlx_matmul(&y, wmat, y, s));
    CALL(mlx_add(&acc, acc, y, s));
  }
  int shape[3] = {mlx_array_dim(x, 0), mlx_array_dim(x, 1), D};
  CALL(mlx_reshape(out, acc, shape, 3, s));
cleanup:;
  mlx_array* all[] = {&flat, &logits, &rows, &y, &wmat, &idx, &acc};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) mlx_array_free(*all[i]);
  free(chosen);
  free(weights);
  free(members);
  free(dense);
  return status;
}
