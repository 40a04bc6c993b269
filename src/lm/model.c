/* Loading and freeing models and sessions; the forward pass entry point. */
#include <stdlib.h>
#include <string.h>

#include "lm/call.h"
#include "lm/model.h"
#include "util/error.h"

static void free_norm(lm_norm* n) { mlx_array_free(n->weight); }

void mlxc_lm_free(mlxc_lm_model* m) {
  if (!m) return;
  for (int i = 0; m->layers && i < m->config.num_layers; i++) {
    lm_layer* L = &m->layers[i];
    lm_norm* norms[] = {&L->input_norm, &L->post_attention_norm, &L->pre_feedforward_norm,
                        &L->post_feedforward_norm, &L->q_norm, &L->k_norm};
    lm_linear* linears[] = {&L->q, &L->k, &L->v, &L->o, &L->qkv, &L->gate, &L->up, &L->down, &L->gate_up};
    for (size_t j = 0; j < sizeof norms / sizeof norms[0]; j++) free_norm(norms[j]);
    for (size_t j = 0; j < sizeof linears / sizeof linears[0]; j++) lm_linear_free(linears[j]);
    lm_linear_free(&L->router);
    lm_linear_free(&L->conv_in);
    lm_linear_free(&L->conv_out);
    mlx_array_free(L->conv_weight);
    for (int e = 0; e < m->config.num_experts; e++) {
      if (L->expert_gate) lm_linear_free(&L->expert_gate[e]);
      if (L->expert_up) lm_linear_free(&L->expert_up[e]);
      if (L->expert_down) lm_linear_free(&L->expert_down[e]);
    }
    free(L->expert_gate);
    free(L->expert_up);
    free(L->expert_down);
  }
  free(m->layers);
  lm_linear_free(&m->embed);
  lm_linear_free(&m->lm_head);
  free_norm(&m->final_norm);
  mlx_array_free(m->rope_freqs);
  mlx_map_string_to_array_free(m->tensors);
  free(m);
}

int mlxc_lm_load(mlxc_lm_model** out, const char* path, mlx_stream stream) {
  if (!out || !path) return util_error("mlxc_lm_load: null argument");
  *out = NULL;
  mlxc_lm_model* m = calloc(1, sizeof *m);
  if (!m) return util_error("out of memory");
  int status = 0;
  m->stream = stream;
  m->tensors = mlx_map_string_to_array_new();
  if (lm_path_is_gguf(path)) {
    CALL(lm_gguf_read(m, path));
  } else {
    CALL(lm_config_load(&m->config, path, &m->arch));
    CALL(lm_weights_load(&m->tensors, path, stream));
  }
  m->layers = calloc((size_t)m->config.num_layers, sizeof *m->layers);
  if (!m->layers) CALL(util_error("out of memory"));
  CALL(lm_model_bind(m));
  CALL(lm_model_fuse_linears(m));
  CALL(lm_rope_setup(m));
  *out = m;
  return 0;
cleanup:
  mlxc_lm_free(m);
  return status;
}

int mlxc_lm_vocab_size(const mlxc_lm_model* m) { return m ? m->config.vocab_size : 0; }
size_t mlxc_lm_weight_bytes(const mlxc_lm_model* m) { return m ? m->weight_bytes : 0; }

int mlxc_lm_session_new(mlxc_lm_session** out, const mlxc_lm_model* model) {
  if (!out || !model) return util_error("mlxc_lm_session_new: null argument");
  mlxc_lm_session* s = calloc(1, sizeof *s);
  if (s) s->caches = calloc((size_t)model->config.num_layers, sizeof *s->caches);
  if (s) s->conv_states = calloc((size_t)model->config.num_layers, sizeof *s->conv_states);
  if (!s || !s->caches || !s->conv_states) {
    if (s) free(s->caches);
    free(s);
    return util_error("out of memory");
  }
  s->model = model;
  s->batch = 1;
  lm_session_configure(s, 0, 0, 64, 0);
  *out = s;
  return 0;
}

#define ROTATING_KEEP 4 /* mlx-lm's make_prompt_cache: RotatingKVCache(max_kv_size, keep=4) */

int lm_session_configure(mlxc_lm_session* s, int max_kv_size, int kv_bits, int kv_group_size, int quantized_kv_start) {
  const lm_config* c = &s->model->config;
  if (max_kv_size < 0 || (max_kv_size > 0 && max_kv_size <= ROTATING_KEEP))
    return util_error("max_kv_size must be 0 (unlimited) or more than %d (the first %d tokens are always kept), not %d",
                      ROTATING_KEEP, ROTATING_KEEP, max_kv_size);
  if (kv_bits != 0 && kv_bits != 4 && kv_bits != 8) return util_error("kv_bits must be 0, 4 or 8, not %d", kv_bits);
  if (kv_bits && max_kv_size)
    return util_error("a quantized KV cache cannot also rotate (kv_bits with max_kv_size), as in mlx-lm");
  if (kv_bits && c->head_dim % kv_group_size)
    return util_error("kv_group_size %d does not divide the head dimension %d", kv_group_size, c->head_dim);
  for (int i = 0; i < c->num_layers; i++) {
    lm_cache_options o = {max_kv_size, max_kv_size ? ROTATING_KEEP : 0, kv_bits, kv_group_size, quantized_kv_start};
    /* A sliding-window layer never looks further back than its window: rotate over it. */
    if (c->layer_kinds[i] == LAYER_SLIDING_ATTENTION && c->sliding_window > 0)
      o = (lm_cache_options){c->sliding_window, 0, 0, kv_group_size, 0};
    if (s->caches[i].quantized) { /* stays quantized as it is */
      o.bits = s->caches[i].options.bits;
      o.group_size = s->caches[i].options.group_size;
    }
    s->caches[i].options = o;
  }
  return 0;
}

void mlxc_lm_session_reset(mlxc_lm_session* s) {
  if (!s) return;
  for (int i = 0; i < s->model->config.num_layers; i++) {
    lm_cache_free(&s->caches[i]);
    mlx_array_free(s->conv_states[i]);
    s->conv_states[i] = mlx_array_new();
  }
  mlx_array_free(s->static_slots);
  s->static_slots = mlx_array_new();
  s->offset = 0;
}

void mlxc_lm_session_free(mlxc_lm_session* s) {
  if (!s) return;
  mlxc_lm_session_reset(s);
  free(s->caches);
  free(s->conv_states);
  free(s->row_start);
  free(s);
}

int mlxc_lm_session_length(const mlxc_lm_session* s) { return s ? s->offset : 0; }

int mlxc_lm_session_truncate(mlxc_lm_session* s, int length) {
  if (!s) return util_error("mlxc_lm_session_truncate: null session");
  if (length < 0 || length > s->offset)
    return util_error("cannot truncate a session of %d tokens to %d", s->offset, length);
  if (length == s->offset) return 0;
  for (int i = 0; i < s->model->config.num_layers; i++)
    if (s->model->config.layer_kinds[i] == LAYER_CONV)
      return util_error("this model's convolution state cannot be rewound; reset the session instead");
  for (int i = 0; i < s->model->config.num_layers; i++)
    if (s->caches[i].evicted) return lm_cache_truncate(&s->caches[i], length);
  /* Entries past `length` stay in the buffers but are never read, and are overwritten next. */
  for (int i = 0; i < s->model->config.num_layers; i++) lm_cache_truncate(&s->caches[i], length);
  s->offset = length;
  return 0;
}

int mlxc_lm_forward(mlxc_lm_session* s, const int32_t* ids, size_t n, mlx_array* logits) {
  if (!s || !logits || (n && !ids)) return util_error("mlxc_lm_forward: null argument");
  if (n == 0) return util_error("mlxc_lm_forward: no tokens");
  int vocab = s->model->config.vocab_size;
  for (size_t i = 0; i < n; i++)
    if (ids[i] < 0 || ids[i] >= vocab)
      return util_error("token id %d at position %zu is outside the vocabulary (size %d)", ids[i], i, vocab);
  int shape[2] = {1, (int)n};
  mlx_array idarr = mlx_array_new_data(ids, shape, 2, MLX_INT32);
  if (!idarr.ctx) return 1;
  int status = lm_decoder_forward(s, idarr, logits);
  mlx_array_free(idarr);
  if (!status) {
    int out_shape[2] = {s->last_logits_only ? 1 : (int)n, vocab};
    status = mlx_reshape(logits, *logits, out_shape, 2, s->model->stream);
  }
  if (!status) status = mlx_array_eval(*logits);
  return status;
}
