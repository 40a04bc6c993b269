/* Load-time fusion: each layer's q, k, v projections become one product, and gate, up another,
 * so a decode step launches fewer, larger kernels (GPU) or thread-pool dispatches (CPU). */
#include <stdlib.h>
#include <string.h>

#include "lm/call.h"
#include "lm/model.h"

#define MAX_PARTS 3

/* Both absent, or the same dtype and the same trailing dimensions (rows may differ). */
static bool same_kind(mlx_array a, mlx_array b) {
  if (!a.ctx || !b.ctx) return !a.ctx && !b.ctx;
  if (mlx_array_dtype(a) != mlx_array_dtype(b) || mlx_array_ndim(a) != mlx_array_ndim(b)) return false;
  for (int d = 1; d < (int)mlx_array_ndim(a); d++)
    if (mlx_array_dim(a, d) != mlx_array_dim(b, d)) return false;
  return true;
}

/* Whether the rows of the parts can be stacked into one linear: same input width, dtypes,
 * quantization (bits and group size; affine is the only mode) and bias or none. */
static bool stackable(lm_linear* const* parts, int n) {
  const lm_linear* a = parts[0];
  if (!a->weight.ctx || mlx_array_ndim(a->weight) != 2) return false;
  for (int i = 1; i < n; i++) {
    const lm_linear* b = parts[i];
    if (b->quantized != a->quantized || (a->quantized && (b->bits != a->bits || b->group_size != a->group_size)))
      return false;
    if (!same_kind(a->weight, b->weight) || !same_kind(a->scales, b->scales) || !same_kind(a->biases, b->biases) ||
        !same_kind(a->bias, b->bias))
      return false;
  }
  return true;
}

/* *out = rows[0..n-1] concatenated along axis 0 and evaluated; left empty when rows[0] is. */
static int stack_rows(mlx_array* out, const mlx_array* rows, int n, mlx_stream s) {
  if (!rows[0].ctx) return 0;
  mlx_vector_array v = mlx_vector_array_new_data(rows, (size_t)n);
  int status = v.ctx ? mlx_concatenate_axis(out, v, 0, s) : 1;
  if (!status) status = mlx_array_eval(*out);
  mlx_vector_array_free(v);
  return status;
}

/* The rows of parts[0..n-1] stacked into *out (weight, scales, biases, bias), evaluated on s;
 * the parts must be stackable. *out is the caller's (lm_linear_free); empty on failure. */
static int linear_concat(lm_linear* out, lm_linear* const* parts, int n, mlx_stream s) {
  mlx_array weight[MAX_PARTS], scales[MAX_PARTS], biases[MAX_PARTS], bias[MAX_PARTS];
  for (int i = 0; i < n; i++) {
    weight[i] = parts[i]->weight;
    scales[i] = parts[i]->scales;
    biases[i] = parts[i]->biases;
    bias[i] = parts[i]->bias;
  }
  *out = (lm_linear){.quantized = parts[0]->quantized, .group_size = parts[0]->group_size, .bits = parts[0]->bits};
  int status = 0;
  CALL(stack_rows(&out->weight, weight, n, s));
  CALL(stack_rows(&out->scales, scales, n, s));
  CALL(stack_rows(&out->biases, biases, n, s));
  CALL(stack_rows(&out->bias, bias, n, s));
cleanup:
  if (status) lm_linear_free(out);
  return status;
}

/* Replaces parts[0..n-1] by *fused (their rows stacked), freeing them; nothing when they cannot
 * be stacked or the checkpoint already holds the fused tensor. */
static int fuse(lm_linear* fused, lm_linear* const* parts, int n, mlx_stream s) {
  if (fused->weight.ctx || !stackable(parts, n)) return 0;
  int status = linear_concat(fused, parts, n, s);
  for (int i = 0; !status && i < n; i++) lm_linear_free(parts[i]);
  return status;
}

/* Every stream fuses: on a GPU a kernel launch costs more than a small product; on the CPU
 * each product is a dispatch to the thread pool and a wait for it (a 0.5B 4-bit decode step at
 * context 2048 +7%). The stacked copies replace the mapped parts, whose pages are given back
 * (io_file.c), so the model still takes its size in memory once. MLXC_FUSE_LINEARS=0 keeps
 * the parts (tests, comparisons). */
static bool wants_fusion(void) {
  const char* env = getenv("MLXC_FUSE_LINEARS");
  return !(env && !strcmp(env, "0"));
}

int lm_model_fuse_linears(mlxc_lm_model* m) {
  if (!wants_fusion()) return 0;
  /* The name map is needed only while binding. Dropped first, it no longer keeps each layer's
   * separate weights (and their device copies) alive once that layer is fused: the load's peak
   * is the model plus one layer's stacked linear. */
  mlx_map_string_to_array_free(m->tensors);
  m->tensors = mlx_map_string_to_array_new();
  int status = 0;
  for (int i = 0; i < m->config.num_layers; i++) {
    lm_layer* L = &m->layers[i];
    lm_linear* qkv[3] = {&L->q, &L->k, &L->v};  /* rows: H * hd, then K * hd twice (decoder.c) */
    lm_linear* gate_up[2] = {&L->gate, &L->up}; /* halves: gate, then up (decoder.c) */
    if (L->q.weight.ctx) CALL(fuse(&L->qkv, qkv, 3, m->stream));
    if (L->gate.weight.ctx) CALL(fuse(&L->gate_up, gate_up, 2, m->stream));
  }
cleanup:
  return status;
}
