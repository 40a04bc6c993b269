/* Decoder-architecture encoders: gemma3_text (EmbeddingGemma: bidirectional attention, its
 * sliding-window layers see |i - j| < sliding_window / 2 + 1) and qwen3 (Qwen3-Embedding:
 * causal, pooled at the last token), also llama / mistral / qwen2 / gemma2 checkpoints used as
 * encoders. Weights, config, norms, linears and RoPE come from the LM layer (src/lm); this file
 * runs the layers over a padded batch (B, L) with a padding-aware mask instead of a KV cache. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embed/embed.h"
#include "lm/call.h"
#include "lm/model.h"
#include "util/error.h"

typedef struct {
  mlxc_lm_model* lm;
  bool causal;
  bool sliding[LM_MAX_LAYERS];
  bool any_sliding;
  int window; /* sliding layers: keys with |i - j| < window (and j <= i when causal) */
  embed_activation act;
} decoder_encoder;

static void decoder_free(void* impl) {
  decoder_encoder* e = impl;
  if (!e) return;
  mlxc_lm_free(e->lm);
  free(e);
}

/* (B, L, heads * hd) -> (B, heads, L, hd), RMS-normed per head when the model has q/k norms. */
static int split_heads(mlx_array* out, mlx_array x, int heads, int hd, const lm_norm* norm, float eps, mlx_stream s) {
  int shape[4] = {mlx_array_dim(x, 0), mlx_array_dim(x, 1), heads, hd}, perm[4] = {0, 2, 1, 3};
  int status = mlx_reshape(out, x, shape, 4, s);
  if (!status && norm && norm->weight.ctx) status = lm_norm_apply(out, norm, *out, eps, s);
  if (!status) status = mlx_transpose_axes(out, *out, perm, 4, s);
  return status;
}

static int attention(mlx_array* out, const decoder_encoder* e, int li, mlx_array x, mlx_array mask, mlx_stream s) {
  const mlxc_lm_model* m = e->lm;
  const lm_config* c = &m->config;
  const lm_layer* Ly = &m->layers[li];
  int B = mlx_array_dim(x, 0), L = mlx_array_dim(x, 1), H = c->num_heads, K = c->num_kv_heads, hd = c->head_dim;
  mlx_array q = mlx_array_new(), k = mlx_array_new(), v = mlx_array_new(), h = mlx_array_new();
  int status = 0;
  CALL(lm_linear_apply(&q, &Ly->q, x, s));
  CALL(lm_linear_apply(&k, &Ly->k, x, s));
  CALL(lm_linear_apply(&v, &Ly->v, x, s));
  bool qk_norm = m->arch->qk_norm;
  CALL(split_heads(&q, q, H, hd, qk_norm ? &Ly->q_norm : NULL, c->norm_eps, s)); /* (B, H, L, hd) */
  CALL(split_heads(&k, k, K, hd, qk_norm ? &Ly->k_norm : NULL, c->norm_eps, s)); /* (B, K, L, hd) */
  CALL(split_heads(&v, v, K, hd, NULL, 0, s));
  /* Every row starts at position 0: rotary attention depends only on relative positions, so
   * this equals transformers' numbering for right and left padding alike. */
  bool sliding = e->sliding[li];
  int dims = (int)(hd * c->partial_rotary_factor);
  bool custom = m->rope_freqs.ctx && !(sliding && m->arch->gemma_norms);
  mlx_optional_float base = {sliding ? c->rope_local_theta : lm_rope_base(c, L), !custom}; /* dynamic NTK: by length */
  mlx_array freqs = custom ? m->rope_freqs : mlx_array_new();
  CALL(mlx_fast_rope(&q, q, dims, false, base, 1.0f, 0, freqs, s));
  CALL(mlx_fast_rope(&k, k, dims, false, base, 1.0f, 0, freqs, s));
  float scale = 1.0f / sqrtf(c->query_pre_attn_scalar > 0 ? c->query_pre_attn_scalar : (float)hd);
  scale *= m->rope_mscale * m->rope_mscale;
  CALL(embed_attention(&h, q, k, v, scale, mask, s));
  int perm[4] = {0, 2, 1, 3}, flat[3] = {B, L, H * hd};
  CALL(mlx_transpose_axes(&h, h, perm, 4, s));
  CALL(mlx_reshape(&h, h, flat, 3, s));
  CALL(lm_linear_apply(out, &Ly->o, h, s));
cleanup:;
  mlx_array all[] = {q, k, v, h};
  embed_arrays_free(all, 4);
  return status;
}

/* down(act(gate x) * up x) */
static int gated_mlp(mlx_array* out, const decoder_encoder* e, const lm_layer* Ly, mlx_array x, mlx_stream s) {
  mlx_array gate = mlx_array_new(), up = mlx_array_new();
  int status = 0;
  CALL(lm_linear_apply(&gate, &Ly->gate, x, s));
  CALL(lm_linear_apply(&up, &Ly->up, x, s));
  CALL(embed_activate(&gate, gate, e->act, s));
  CALL(mlx_multiply(&gate, gate, up, s));
  CALL(lm_linear_apply(out, &Ly->down, gate, s));
cleanup:
  mlx_array_free(gate);
  mlx_array_free(up);
  return status;
}

static int decoder_forward(const void* impl, const embed_batch* batch, mlx_array* out, mlx_stream s) {
  const decoder_encoder* e = impl;
  const mlxc_lm_model* m = e->lm;
  const lm_config* c = &m->config;
  mlx_array x = mlx_array_new(), r = mlx_array_new(), t = mlx_array_new();
  mlx_array full_mask = mlx_array_new(), window_mask = mlx_array_new();
  int status = 0;
  CALL(embed_attention_mask(&full_mask, batch, e->causal, 0, s));
  if (e->any_sliding) CALL(embed_attention_mask(&window_mask, batch, e->causal, e->window, s));
  CALL(lm_embed_apply(&x, &m->embed, batch->ids, s)); /* (B, L, D) */
  CALL(lm_embed_scale(&x, m, s));
  for (int li = 0; li < c->num_layers; li++) {
    const lm_layer* Ly = &m->layers[li];
    CALL(lm_norm_apply(&r, &Ly->input_norm, x, c->norm_eps, s));
    CALL(attention(&t, e, li, r, e->sliding[li] ? window_mask : full_mask, s));
    if (m->arch->gemma_norms) CALL(lm_norm_apply(&t, &Ly->post_attention_norm, t, c->norm_eps, s));
    CALL(mlx_add(&x, x, t, s));
    CALL(lm_norm_apply(&r, &Ly->pre_feedforward_norm, x, c->norm_eps, s));
    CALL(gated_mlp(&t, e, Ly, r, s));
    if (m->arch->gemma_norms) CALL(lm_norm_apply(&t, &Ly->post_feedforward_norm, t, c->norm_eps, s));
    CALL(mlx_add(&x, x, t, s));
  }
  CALL(lm_norm_apply(&x, &m->final_norm, x, c->norm_eps, s));
  CALL(mlx_astype(out, x, MLX_FLOAT32, s));
cleanup:;
  mlx_array all[] = {x, r, t, full_mask, window_mask};
  embed_arrays_free(all, 5);
  return status;
}

/* The LM layer names tensors "model.layers..."; a bare Qwen3Model / Gemma3TextModel (as
 * sentence-transformers saves them) has no "model." prefix: add it. */
static int prefixed(mlx_map_string_to_array* out, mlx_map_string_to_array tensors) {
  mlx_map_string_to_array_iterator it = mlx_map_string_to_array_iterator_new(tensors);
  mlx_array value = mlx_array_new();
  const char* key;
  char name[1024];
  int status = 0;
  while (!status && mlx_map_string_to_array_iterator_next(&key, &value, it) == 0) {
    bool keep = !strncmp(key, "model.", 6) || !strncmp(key, "lm_head.", 8);
    snprintf(name, sizeof name, "%s%s", keep ? "" : "model.", key);
    status = mlx_map_string_to_array_insert(*out, name, value);
  }
  mlx_array_free(value);
  mlx_map_string_to_array_iterator_free(it);
  return status;
}

int embed_decoder_load(embed_encoder* enc, const char* dir, const json_t* cfg, mlx_map_string_to_array tensors,
                       mlx_stream s) {
  decoder_encoder* e = calloc(1, sizeof *e);
  mlxc_lm_model* m = calloc(1, sizeof *m);
  if (!e || !m) {
    free(e);
    free(m);
    return util_error("out of memory");
  }
  e->lm = m;
  m->stream = s;
  m->tensors = mlx_map_string_to_array_new();
  int status = 0;
  CALL(prefixed(&m->tensors, tensors));
  CALL(lm_config_load(&m->config, dir, &m->arch));
  const lm_config* c = &m->config;
  if (m->arch->fused_qkv || m->arch->fused_gate_up || c->num_experts > 0)
    CALL(util_error("%s: model_type %s is not supported as an encoder", dir, c->model_type));
  m->layers = calloc((size_t)c->num_layers, sizeof *m->layers);
  if (!m->layers) CALL(util_error("out of memory"));
  CALL(lm_model_bind(m));
  CALL(lm_rope_setup(m));
  /* EmbeddingGemma sets use_bidirectional_attention; other decoders stay causal unless they
   * say is_causal: false. */
  json_t* bidirectional = json_object_get(cfg, "use_bidirectional_attention");
  json_t* is_causal = json_object_get(cfg, "is_causal");
  e->causal = !json_is_true(bidirectional) && !json_is_false(is_causal);
  /* transformers' Gemma3TextConfig turns the saved window W of a bidirectional model into
   * W / 2 + 1 with an exclusive bound on each side (and saves it back as 2 (w - 1)). */
  e->window = json_is_true(bidirectional) ? c->sliding_window / 2 + 1 : c->sliding_window;
  /* Qwen configs carry a sliding_window that applies only with use_sliding_window. */
  bool windows = c->sliding_window > 0 && !json_is_false(json_object_get(cfg, "use_sliding_window"));
  for (int i = 0; i < c->num_layers; i++) {
    if (c->layer_kinds[i] == LAYER_CONV) CALL(util_error("%s: convolution layers are not supported in encoders", dir));
    e->sliding[i] = windows && c->layer_kinds[i] == LAYER_SLIDING_ATTENTION;
    e->any_sliding = e->any_sliding || e->sliding[i];
  }
  if (c->attn_logit_softcapping > 0) CALL(util_error("%s: attention logit soft-capping is not supported in encoders", dir));
  e->act = c->activation == ACT_GELU_TANH ? EMBED_ACT_GELU_TANH : EMBED_ACT_SILU;
  *enc = (embed_encoder){.hidden = c->hidden_size, .max_positions = c->max_position_embeddings, .impl = e,
                         .forward = decoder_forward, .free = decoder_free};
  return 0;
cleanup:
  decoder_free(e);
  return status;
}
