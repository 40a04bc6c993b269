/* mlxc_fast_rope_kv_attention: a decode step's attention core (RoPE, KV-cache write, attention)
 * as one primitive. The two ops it fuses are built first, which checks the arguments exactly as
 * they check them and gives their parameters; the fused node then takes their inputs, and they
 * are dropped unevaluated. */
#include <stdlib.h>

#include "mlx/c/fast.h"
#include "mlxc/fast.h"
#include "ops/fast_params.h"
#include "ops/ops_common.h"
#include "ops/primitives.h"

/* The fused node from the composed rope_kv node (of *rotated) and sdpa node (of *attended). */
static int fuse(mlx_array* res, mlx_array* res_keys, mlx_array* res_values, mlx_array rotated, mlx_array attended,
                mlx_stream s) {
  core_node *rope = core_ctx(rotated)->node, *attn = core_ctx(attended)->node;
  rope_kv_sdpa_params* p = malloc(sizeof *p);
  if (!p) return util_error("out of memory");
  p->rope = *(const rope_params*)rope->params;
  p->sdpa = *(const sdpa_params*)attn->params;
  core_array* inputs[8];
  int n = 0;
  for (int i = 0; i < rope->n_inputs; i++) inputs[n++] = rope->inputs[i];
  if (p->sdpa.mask == SDPA_MASK_ARRAY) inputs[n++] = attn->inputs[3];
  const core_array *out = core_ctx(attended), *keys = rope->inputs[3], *values = rope->inputs[4];
  const mlx_dtype dtypes[3] = {out->dtype, keys->dtype, values->dtype};
  const int* shapes[3] = {out->shape, keys->shape, values->shape};
  const int ndims[3] = {4, 4, 4};
  core_array* outs[3] = {NULL, NULL, NULL};
  if (core_node_create(&prim_rope_kv_sdpa, p, inputs, n, 3, dtypes, shapes, ndims, core_stream_resolve(s), outs))
    return 1;
  core_assign(res, outs[0]);
  core_assign(res_keys, outs[1]);
  core_assign(res_values, outs[2]);
  return 0;
}

int mlxc_fast_rope_kv_attention(mlx_array* res, mlx_array* res_keys, mlx_array* res_values, const mlx_array q,
                                const mlx_array k, const mlx_array v, const mlx_array keys, const mlx_array values,
                                int dims, bool traditional, mlx_optional_float base, float rope_scale,
                                const mlx_array position, const mlx_array freqs, float scale, const char* mask_mode,
                                const mlx_array mask, const mlx_stream s) {
  mlx_array rotated = mlx_array_new(), keys_out = mlx_array_new(), values_out = mlx_array_new();
  mlx_array attended = mlx_array_new();
  int status = mlxc_fast_rope_kv(&rotated, &keys_out, &values_out, q, k, v, keys, values, dims, traditional, base,
                                 rope_scale, position, freqs, s);
  if (!status)
    status = mlx_fast_scaled_dot_product_attention(&attended, rotated, keys_out, values_out, scale, mask_mode, mask,
                                                   mlx_array_new(), s);
  if (!status) status = fuse(res, res_keys, res_values, rotated, attended, s);
  mlx_array_free(attended); /* before its inputs: the composed nodes go, unevaluated */
  mlx_array_free(rotated);
  mlx_array_free(keys_out);
  mlx_array_free(values_out);
  return status;
}
