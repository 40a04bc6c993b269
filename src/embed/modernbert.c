/* The ModernBERT encoder: token embeddings + LayerNorm, then pre-norm layers (the first without
 * an attention norm) of RoPE attention (fused Wqkv) that alternates global layers with local
 * ones seeing only tokens within local_attention / 2, and a GeGLU feed-forward; a final norm.
 * Layers usually have no biases. Shapes: (batch B, length L, hidden D). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embed/embed.h"
#include "lm/call.h"
#include "util/error.h"

typedef struct {
  mlx_array attn_norm_w, attn_norm_b, qkv_w, qkv_b, o_w, o_b, mlp_norm_w, mlp_norm_b, wi_w, wi_b, wo_w, wo_b;
} modernbert_layer;

typedef struct {
  int hidden, heads, layers, max_positions, local_window; /* local_window: |i - j| < local_window */
  float eps;
  embed_activation act;
  mlx_array embed, embed_norm_w, embed_norm_b, final_norm_w, final_norm_b;
  modernbert_layer* blocks;
  bool* local;  /* per layer */
  float* theta; /* per layer RoPE base */
} modernbert_encoder;

static void modernbert_free(void* impl) {
  modernbert_encoder* e = impl;
  if (!e) return;
  mlx_array top[] = {e->embed, e->embed_norm_w, e->embed_norm_b, e->final_norm_w, e->final_norm_b};
  embed_arrays_free(top, 5);
  for (int i = 0; e->blocks && i < e->layers; i++)
    embed_arrays_free((mlx_array*)&e->blocks[i], sizeof(modernbert_layer) / sizeof(mlx_array));
  free(e->blocks);
  free(e->local);
  free(e->theta);
  free(e);
}

/* Attention of one layer on normed x (B, L, D). */
static int attention(mlx_array* out, const modernbert_encoder* e, int li, mlx_array x, mlx_array mask, mlx_stream s) {
  const modernbert_layer* Ly = &e->blocks[li];
  int B = mlx_array_dim(x, 0), L = mlx_array_dim(x, 1), D = e->hidden, H = e->heads, hd = D / H;
  mlx_array qkv = mlx_array_new(), q = mlx_array_new(), k = mlx_array_new(), v = mlx_array_new();
  mlx_vector_array parts = mlx_vector_array_new();
  int status = 0;
  int shape5[5] = {B, L, 3, H, hd}, perm5[5] = {2, 0, 3, 1, 4}; /* -> (3, B, H, L, hd) */
  CALL(embed_linear(&qkv, x, Ly->qkv_w, Ly->qkv_b, s));
  CALL(mlx_reshape(&qkv, qkv, shape5, 5, s));
  CALL(mlx_transpose_axes(&qkv, qkv, perm5, 5, s));
  CALL(mlx_split(&parts, qkv, 3, 0, s));
  mlx_array* qkv3[3] = {&q, &k, &v};
  int shape4[4] = {B, H, L, hd};
  for (int j = 0; j < 3; j++) {
    CALL(mlx_vector_array_get(qkv3[j], parts, (size_t)j));
    CALL(mlx_reshape(qkv3[j], *qkv3[j], shape4, 4, s));
  }
  mlx_optional_float base = {e->theta[li], true};
  CALL(mlx_fast_rope(&q, q, hd, false, base, 1.0f, 0, mlx_array_new(), s));
  CALL(mlx_fast_rope(&k, k, hd, false, base, 1.0f, 0, mlx_array_new(), s));
  CALL(embed_attention(&qkv, q, k, v, 1.0f / sqrtf((float)hd), mask, s));
  int perm4[4] = {0, 2, 1, 3}, flat[3] = {B, L, D};
  CALL(mlx_transpose_axes(&qkv, qkv, perm4, 4, s));
  CALL(mlx_reshape(&qkv, qkv, flat, 3, s));
  CALL(embed_linear(out, qkv, Ly->o_w, Ly->o_b, s));
cleanup:;
  mlx_array all[] = {qkv, q, k, v};
  embed_arrays_free(all, 4);
  mlx_vector_array_free(parts);
  return status;
}

/* Wo(act(input) * gate) with input, gate = halves of Wi x. */
static int geglu(mlx_array* out, const modernbert_encoder* e, const modernbert_layer* Ly, mlx_array x, mlx_stream s) {
  mlx_array h = mlx_array_new(), input = mlx_array_new(), gate = mlx_array_new();
  mlx_vector_array parts = mlx_vector_array_new();
  int status = 0;
  CALL(embed_linear(&h, x, Ly->wi_w, Ly->wi_b, s));
  CALL(mlx_split(&parts, h, 2, -1, s));
  CALL(mlx_vector_array_get(&input, parts, 0));
  CALL(mlx_vector_array_get(&gate, parts, 1));
  CALL(embed_activate(&input, input, e->act, s));
  CALL(mlx_multiply(&h, input, gate, s));
  CALL(embed_linear(out, h, Ly->wo_w, Ly->wo_b, s));
cleanup:;
  mlx_array all[] = {h, input, gate};
  embed_arrays_free(all, 3);
  mlx_vector_array_free(parts);
  return status;
}

static int modernbert_forward(const void* impl, const embed_batch* batch, mlx_array* out, mlx_stream s) {
  const modernbert_encoder* e = impl;
  mlx_array x = mlx_array_new(), t = mlx_array_new(), global_mask = mlx_array_new(), local_mask = mlx_array_new();
  int status = 0;
  CALL(embed_attention_mask(&global_mask, batch, false, 0, s));
  CALL(embed_attention_mask(&local_mask, batch, false, e->local_window, s));
  CALL(mlx_take_axis(&x, e->embed, batch->ids, 0, s)); /* (B, L, D) */
  CALL(mlx_fast_layer_norm(&x, x, e->embed_norm_w, e->embed_norm_b, e->eps, s));
  for (int i = 0; i < e->layers; i++) {
    const modernbert_layer* Ly = &e->blocks[i];
    if (Ly->attn_norm_w.ctx)
      CALL(mlx_fast_layer_norm(&t, x, Ly->attn_norm_w, Ly->attn_norm_b, e->eps, s));
    else
      CALL(mlx_array_set(&t, x)); /* layer 0: no attention norm (the embeddings were normed) */
    CALL(attention(&t, e, i, t, e->local[i] ? local_mask : global_mask, s));
    CALL(mlx_add(&x, x, t, s));
    CALL(mlx_fast_layer_norm(&t, x, Ly->mlp_norm_w, Ly->mlp_norm_b, e->eps, s));
    CALL(geglu(&t, e, Ly, t, s));
    CALL(mlx_add(&x, x, t, s));
  }
  CALL(mlx_fast_layer_norm(&x, x, e->final_norm_w, e->final_norm_b, e->eps, s));
  CALL(mlx_astype(out, x, MLX_FLOAT32, s));
cleanup:;
  mlx_array all[] = {x, t, global_mask, local_mask};
  embed_arrays_free(all, 4);
  return status;
}

/* Layer kinds and RoPE bases: transformers 5's layer_types / rope_parameters per type, or the
 * earlier global_attn_every_n_layers with global_rope_theta / local_rope_theta. */
static void read_layers(modernbert_encoder* e, const json_t* cfg) {
  const json_t* types = json_object_get(cfg, "layer_types");
  const json_t* rope = json_object_get(cfg, "rope_parameters");
  int every = embed_json_int(cfg, "global_attn_every_n_layers", 1);
  float global_theta = embed_json_float(cfg, "global_rope_theta", 160000.0f);
  float local_theta = embed_json_float(cfg, "local_rope_theta", global_theta);
  global_theta = embed_json_float(json_object_get(rope, "full_attention"), "rope_theta", global_theta);
  local_theta = embed_json_float(json_object_get(rope, "sliding_attention"), "rope_theta", local_theta);
  for (int i = 0; i < e->layers; i++) {
    const char* t = json_string_value(json_array_get(types, (size_t)i));
    e->local[i] = t ? !strcmp(t, "sliding_attention") : (every > 0 && i % every != 0);
    e->theta[i] = e->local[i] ? local_theta : global_theta;
  }
}

static int bind(modernbert_encoder* e, mlx_map_string_to_array t) {
  char name[256];
  int status = 0;
  CALL(embed_tensor(t, "embeddings.tok_embeddings.weight", true, &e->embed));
  CALL(embed_tensor(t, "embeddings.norm.weight", true, &e->embed_norm_w));
  CALL(embed_tensor(t, "embeddings.norm.bias", false, &e->embed_norm_b));
  CALL(embed_tensor(t, "final_norm.weight", true, &e->final_norm_w));
  CALL(embed_tensor(t, "final_norm.bias", false, &e->final_norm_b));
  static const struct {
    const char* suffix;
    bool required;
  } parts[] = {{"attn_norm.weight", false}, {"attn_norm.bias", false}, {"attn.Wqkv.weight", true},
               {"attn.Wqkv.bias", false},   {"attn.Wo.weight", true},  {"attn.Wo.bias", false},
               {"mlp_norm.weight", true},   {"mlp_norm.bias", false},  {"mlp.Wi.weight", true},
               {"mlp.Wi.bias", false},      {"mlp.Wo.weight", true},   {"mlp.Wo.bias", false}};
  for (int i = 0; i < e->layers; i++) {
    mlx_array* dst = (mlx_array*)&e->blocks[i];
    for (size_t p = 0; p < sizeof parts / sizeof parts[0]; p++) {
      snprintf(name, sizeof name, "layers.%d.%s", i, parts[p].suffix);
      CALL(embed_tensor(t, name, parts[p].required, &dst[p]));
    }
  }
  if (mlx_array_ndim(e->embed) != 2 || mlx_array_dim(e->embed, 1) != e->hidden)
    CALL(util_error("token embeddings do not match the hidden size %d", e->hidden));
cleanup:
  return status;
}

int embed_modernbert_load(embed_encoder* enc, const json_t* cfg, mlx_map_string_to_array tensors, const char* path) {
  modernbert_encoder* e = calloc(1, sizeof *e);
  if (!e) return util_error("out of memory");
  int status = 0;
  e->hidden = embed_json_int(cfg, "hidden_size", 0);
  e->heads = embed_json_int(cfg, "num_attention_heads", 0);
  e->layers = embed_json_int(cfg, "num_hidden_layers", 0);
  e->max_positions = embed_json_int(cfg, "max_position_embeddings", 8192);
  e->eps = embed_json_float(cfg, "norm_eps", 1e-5f);
  e->local_window = embed_json_int(cfg, "local_attention", 128) / 2 + 1;
  const char* act = json_string_value(json_object_get(cfg, "hidden_activation"));
  CALL(embed_activation_parse(act ? act : "gelu", &e->act));
  if (e->hidden <= 0 || e->heads <= 0 || e->hidden % e->heads || e->layers <= 0 || e->layers > 1024)
    CALL(util_error("%s: bad hidden size / attention heads / layers", path));
  e->blocks = calloc((size_t)e->layers, sizeof *e->blocks);
  e->local = calloc((size_t)e->layers, sizeof *e->local);
  e->theta = calloc((size_t)e->layers, sizeof *e->theta);
  if (!e->blocks || !e->local || !e->theta) CALL(util_error("out of memory"));
  read_layers(e, cfg);
  CALL(bind(e, tensors));
  *enc = (embed_encoder){.hidden = e->hidden, .max_positions = e->max_positions, .impl = e,
                         .forward = modernbert_forward, .free = modernbert_free};
  return 0;
cleanup:
  modernbert_free(e);
  return status;
}
