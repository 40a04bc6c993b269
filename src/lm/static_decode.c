/* Static decode: the one-token forward pass as a graph with the same shapes and node
 * parameters at every position (static_decode.h), for capture and replay. The layers are the
 * normal decoder's (lm_decoder_run); only the attention core differs. */
#include <assert.h>
#include <limits.h>

#include "lm/call.h"
#include "lm/fused_layers.h"
#include "lm/static_decode.h"
#include "mlxc/fast.h"
#include "util/error.h"

static bool is_sliding(const lm_config* c, int layer) {
  return c->layer_kinds[layer] == LAYER_SLIDING_ATTENTION && c->sliding_window > 0;
}

/* Why a layer's cache cannot be laid out one slot per position with the window as the only
 * mask, or NULL. Sliding layers rotate over exactly their window (lm_session_configure), which
 * the static mask reproduces; any other rotation or quantization it does not. */
static const char* cache_refusal(const mlxc_lm_session* s, int layer) {
  const lm_config* c = &s->model->config;
  const lm_kv_cache* cache = &s->caches[layer];
  if (cache->quantized || cache->options.bits) return "quantized KV cache (kv_bits)";
  if (cache->options.max_size == 0) return NULL;
  if (is_sliding(c, layer) && cache->options.keep == 0 && cache->options.max_size >= c->sliding_window) return NULL;
  return "rotating KV cache (max_kv_size)";
}

bool lm_static_decode_supported(const mlxc_lm_session* s, const char** why) {
  const lm_config* c = &s->model->config;
  const char* reason = NULL;
  if (s->batch != 1 || s->row_start) reason = "batch session (rows with their own start columns)";
  else if (c->rope_type == ROPE_DYNAMIC) reason = "dynamic NTK RoPE (its base depends on the position)";
  else if (c->attn_logit_softcapping > 0) reason = "attention-logit soft-capping";
  for (int i = 0; i < c->num_layers && !reason; i++) {
    if (c->layer_kinds[i] == LAYER_CONV) reason = "convolution (lfm2) layers (their state is kept on the host)";
    else if (c->moe_layer[i]) reason = "mixture-of-experts layers (routed on the host)";
    else reason = cache_refusal(s, i);
  }
  if (why) *why = reason;
  return reason == NULL;
}

int lm_static_decode_reserve(mlxc_lm_session* s, int capacity, int* reached) {
  const lm_config* c = &s->model->config;
  mlx_stream stream = s->model->stream;
  const char* why = NULL;
  if (!lm_static_decode_supported(s, &why)) return util_error("static decode is not supported for this session: %s", why);
  if (s->offset == 0) return util_error("static decode needs a session holding at least one token: prefill first");
  if (capacity > (1 << 30)) return util_error("static decode: a capacity of %d slots is too large", capacity);
  int target = capacity > s->offset + 1 ? capacity : s->offset + 1;
  if (s->static_slots.ctx && mlx_array_dim(s->static_slots, 0) > target) target = mlx_array_dim(s->static_slots, 0);
  for (int i = 0; i < c->num_layers; i++)
    if (s->caches[i].capacity > target) target = s->caches[i].capacity;
  target = lm_cache_rounded_capacity(target);
  mlx_vector_array evaluate = mlx_vector_array_new();
  int status = 0;
  for (int i = 0; i < c->num_layers; i++) {
    CALL(lm_cache_make_static(&s->caches[i], s->offset, target, stream));
    for (int p = 0; p < 2; p++) CALL(mlx_vector_array_append_value(evaluate, s->caches[i].parts[p]));
  }
  if (!s->static_slots.ctx || mlx_array_dim(s->static_slots, 0) != target) {
    mlx_array slots = mlx_array_new();
    CALL(mlx_arange(&slots, 0, target, 1, MLX_INT32, stream));
    mlx_array_free(s->static_slots);
    s->static_slots = slots;
  }
  CALL(mlx_vector_array_append_value(evaluate, s->static_slots));
  CALL(mlx_eval(evaluate));
  if (reached) *reached = target;
cleanup:
  mlx_vector_array_free(evaluate);
  return status;
}

/* What one step's attention layers share: the position and one mask per distinct window. */
typedef struct {
  mlx_array position;    /* (1) int32 */
  mlx_array causal;      /* (capacity) bool: slot <= position */
  mlx_array windowed;    /* (capacity) bool: and slot > position - sliding_window; empty without sliding layers */
} static_step;

static int build_masks(static_step* step, const mlxc_lm_session* s, mlx_stream stream) {
  const lm_config* c = &s->model->config;
  int status = 0;
  mlx_array window = mlx_array_new_int(c->sliding_window), oldest = mlx_array_new();
  CALL(mlx_less_equal(&step->causal, s->static_slots, step->position, stream));
  for (int i = 0; i < c->num_layers; i++) {
    if (!is_sliding(c, i)) continue;
    CALL(mlx_subtract(&oldest, step->position, window, stream)); /* the newest position out of the window */
    CALL(mlx_greater(&step->windowed, s->static_slots, oldest, stream));
    CALL(mlx_logical_and(&step->windowed, step->windowed, step->causal, stream));
    break;
  }
cleanup:
  mlx_array_free(window);
  mlx_array_free(oldest);
  return status;
}

/* The static attention core: RoPE at the position array with k and v written into the cache's
 * slot `position`, then attention over every slot under the step's mask, in the graph and in
 * one op (mlxc_fast_rope_kv_attention: one kernel on a GPU). */
static int static_attention(mlx_array* out, mlxc_lm_session* s, int layer, mlx_array q, mlx_array k, mlx_array v,
                            void* ctx, mlx_stream stream) {
  const static_step* step = ctx;
  lm_kv_cache* cache = &s->caches[layer];
  mlx_array qh = mlx_array_new(), kh = mlx_array_new();
  int status = 0;
  if (k.ctx) {
    CALL(mlx_array_set(&qh, q));
    CALL(mlx_array_set(&kh, k));
  } else { /* q holds the query heads, then the key heads (lm_attend_fn): two views */
    int H = s->model->config.num_heads, heads = mlx_array_dim(q, 1);
    int start[4] = {0, 0, 0, 0}, stop[4] = {mlx_array_dim(q, 0), H, mlx_array_dim(q, 2), mlx_array_dim(q, 3)};
    CALL(mlx_slice(&qh, q, start, 4, stop, 4, NULL, 0, stream));
    start[1] = H;
    stop[1] = heads;
    CALL(mlx_slice(&kh, q, start, 4, stop, 4, NULL, 0, stream));
  }
  /* The results replace the session's cache handles, so the old buffers have no other
   * reference and the write goes in place. */
  lm_rope_settings r = lm_rope_for(s, layer, 1);
  mlx_array mask = is_sliding(&s->model->config, layer) ? step->windowed : step->causal; /* (capacity) */
  CALL(mlxc_fast_rope_kv_attention(out, &cache->parts[0], &cache->parts[1], qh, kh, v, cache->parts[0],
                                   cache->parts[1], r.dims, false, r.base, 1.0f, step->position, r.freqs,
                                   lm_attention_scale(s->model), "array", mask, stream));
cleanup:
  mlx_array_free(qh);
  mlx_array_free(kh);
  return status;
}

/* Whether the arguments and the caches are what a step at s->offset needs. */
static int check_step(const mlxc_lm_session* s, mlx_array token, mlx_array position) {
  const char* why = NULL;
  if (!lm_static_decode_supported(s, &why)) return util_error("static decode is not supported for this session: %s", why);
  if (!token.ctx || mlx_array_ndim(token) != 2 || mlx_array_dim(token, 0) != 1 || mlx_array_dim(token, 1) != 1 ||
      mlx_array_dtype(token) != MLX_INT32)
    return util_error("lm_static_decode_forward: the token must be a (1, 1) int32 array");
  if (!position.ctx || mlx_array_ndim(position) != 1 || mlx_array_dim(position, 0) != 1 ||
      mlx_array_dtype(position) != MLX_INT32)
    return util_error("lm_static_decode_forward: the position must be a (1) int32 array");
  if (!s->static_slots.ctx) return util_error("lm_static_decode_forward: call lm_static_decode_reserve first");
  int capacity = mlx_array_dim(s->static_slots, 0);
  if (s->offset >= capacity)
    return util_error("static decode: position %d is past the reserved capacity %d; reserve more", s->offset, capacity);
  for (int i = 0; i < s->model->config.num_layers; i++)
    if (s->caches[i].capacity != capacity || s->caches[i].length != s->offset)
      return util_error("static decode: the KV caches have changed since lm_static_decode_reserve; reserve again");
  return 0;
}

int lm_static_decode_forward(mlxc_lm_session* s, mlx_array token, mlx_array position, mlx_array* logits) {
  int status = check_step(s, token, position);
  if (status) return status;
  static_step step = {position, mlx_array_new(), mlx_array_new()};
  bool fused = false;
  CALL(lm_fused_layers_forward(s, token, position, logits, &fused));
  if (fused) goto cleanup;
  CALL(build_masks(&step, s, s->model->stream));
  CALL(lm_decoder_run(s, token, static_attention, &step, logits)); /* (1, 1, vocab) */
cleanup:
  mlx_array_free(step.causal);
  mlx_array_free(step.windowed);
  return status;
}

void lm_static_decode_advance(mlxc_lm_session* s) {
  for (int i = 0; i < s->model->config.num_layers; i++) {
    lm_kv_cache* cache = &s->caches[i];
    assert(cache->length == s->offset && cache->length < cache->capacity);
    cache->positions[cache->length++] = s->offset;
  }
  s->offset++;
}
