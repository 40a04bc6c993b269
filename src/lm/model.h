/* Internal structures of the language-model layer: configuration, weights, the decoder and
 * its per-architecture traits. Written only against the public mlx-c API. */
#ifndef MLXC_LM_MODEL_H
#define MLXC_LM_MODEL_H

#include <stdbool.h>
#include <stddef.h>

#include "mlx/c/mlx.h"
#include "mlxc/lm.h"

#define LM_MAX_LAYERS 256

typedef enum { ROPE_DEFAULT, ROPE_LINEAR, ROPE_DYNAMIC, ROPE_LLAMA3, ROPE_YARN } lm_rope_type;
typedef enum { ACT_SILU, ACT_GELU_TANH } lm_activation;
typedef enum { LAYER_FULL_ATTENTION, LAYER_SLIDING_ATTENTION, LAYER_CONV } lm_layer_kind;

typedef struct {
  char model_type[64];
  int vocab_size, hidden_size, intermediate_size, num_layers;
  int num_heads, num_kv_heads, head_dim;
  float norm_eps;
  float rope_theta, rope_local_theta;   /* local: sliding layers of gemma3 */
  lm_rope_type rope_type;
  float rope_factor, rope_low_freq_factor, rope_high_freq_factor;
  int rope_original_max_positions;
  float rope_beta_fast, rope_beta_slow;      /* yarn */
  float rope_attention_factor;               /* yarn; 0 = derived from the factor */
  float rope_mscale, rope_mscale_all_dim;    /* yarn (DeepSeek-style); 0 = unset */
  bool rope_truncate;                        /* yarn: integer correction range */
  float partial_rotary_factor;
  bool tie_word_embeddings, attention_bias;
  int sliding_window;                   /* 0 = none */
  lm_layer_kind layer_kinds[LM_MAX_LAYERS];
  float attn_logit_softcapping, final_logit_softcapping; /* 0 = none */
  float query_pre_attn_scalar;          /* 0 = head_dim */
  lm_activation activation;
  int quant_group_size, quant_bits;     /* 0 = not quantized; bits -1: per tensor from its width (GGUF) */
  int max_position_embeddings;
  /* Mixture of experts (qwen3_moe): experts per token chosen by a router. */
  int num_experts, experts_per_token, moe_intermediate_size;
  bool norm_topk_prob;
  bool moe_layer[LM_MAX_LAYERS];
} lm_config;

/* What differs between the architectures the shared decoder runs. */
typedef struct {
  const char* model_type;
  bool qk_norm;            /* RMS norm of q and k per head before RoPE (qwen3, gemma3) */
  bool gemma_norms;        /* (1 + w) RMS norms, sqrt(hidden)-scaled embeddings, post norms */
  bool fused_qkv;          /* phi3: self_attn.qkv_proj */
  bool fused_gate_up;      /* phi3: mlp.gate_up_proj */
  /* Reads architecture-specific keys after the common ones. */
  int (*configure)(lm_config* config, const void* json);
  /* Binds the tensors when the names differ from the Llama family's (NULL: the default). */
  int (*bind)(struct mlxc_lm_model* model);
} lm_arch;

const lm_arch* lm_arch_find(const char* model_type);

typedef struct {
  mlx_array weight, scales, biases, bias; /* scales/biases: MLX affine quantization */
  bool quantized;
  int group_size, bits;
} lm_linear;

typedef struct {
  mlx_array weight; /* empty when absent */
  bool plus_one;    /* gemma: scale by (1 + w) */
} lm_norm;

typedef struct {
  lm_norm input_norm, post_attention_norm, pre_feedforward_norm, post_feedforward_norm;
  lm_norm q_norm, k_norm;
  /* qkv, gate_up: phi3's checkpoints, or stacked at load (fuse.c); the parts are then empty. */
  lm_linear q, k, v, o, qkv;
  lm_linear gate, up, down, gate_up;
  lm_linear router;                /* MoE: (num_experts, hidden) */
  lm_linear conv_in, conv_out;     /* short convolution block (lfm2) */
  mlx_array conv_weight;           /* (hidden, 1, kernel) depthwise, causal */
  lm_linear *expert_gate, *expert_up, *expert_down; /* MoE: num_experts each */
} lm_layer;

struct mlxc_lm_model {
  lm_config config;
  const lm_arch* arch;
  mlx_stream stream;
  mlx_map_string_to_array tensors; /* every weight, by name */
  lm_linear embed, lm_head;        /* embed: (vocab, hidden), maybe quantized */
  lm_norm final_norm;
  lm_layer* layers;
  mlx_array rope_freqs;            /* custom RoPE frequencies (llama3/yarn/linear), or empty */
  float rope_mscale;               /* yarn attention scaling */
  size_t weight_bytes;
  void* tensor_names;              /* json_t set of tensor names, while binding */
};

/* config.c */
int lm_config_load(lm_config* config, const char* dir, const lm_arch** arch);

/* gguf_model.c: a GGUF file (checked by its magic) of the Llama family: sets the config, the
 * arch and m->tensors under Hugging Face names (and rope_freqs when the file has them). */
bool lm_path_is_gguf(const char* path);
int lm_gguf_read(mlxc_lm_model* model, const char* path);

/* weights.c */
int lm_weights_load(mlx_map_string_to_array* tensors, const char* dir, mlx_stream s);
int lm_model_bind(mlxc_lm_model* model);
/* Binding helpers for architectures' own bind hooks (shapes checked; 0 = not checked). */
int lm_bind_tensor(mlxc_lm_model* m, const char* name, bool required, mlx_array* out);
int lm_bind_linear(mlxc_lm_model* m, lm_linear* l, const char* prefix, int out, int in, bool required);
int lm_bind_norm(mlxc_lm_model* m, lm_norm* n, const char* name, int dim, bool required);

/* moe.c: the mixture-of-experts block of qwen3_moe for x (B, L, D). */
int lm_moe_apply(mlx_array* out, const mlxc_lm_model* m, const lm_layer* layer, mlx_array x, mlx_stream s);

/* fuse.c: on GPU streams (or with MLXC_FUSE_LINEARS=1; =0 turns it off), stacks each layer's
 * q, k, v rows into layer->qkv and gate, up into layer->gate_up where they share a layout
 * (quantization, dtypes, bias), evaluated on the model's stream, and frees the separate
 * linears (and the name map, which would keep them alive). The decoder takes the fused path
 * of any layer whose qkv / gate_up is set. */
int lm_model_fuse_linears(mlxc_lm_model* model);

/* layers.c */
/* Frees the arrays and empties *l. */
void lm_linear_free(lm_linear* l);
int lm_linear_apply(mlx_array* out, const lm_linear* l, mlx_array x, mlx_stream s);
int lm_embed_apply(mlx_array* out, const lm_linear* embed, mlx_array ids, mlx_stream s);
/* Gemma's sqrt(hidden) scaling of embeddings, in place; nothing for other architectures. */
int lm_embed_scale(mlx_array* x, const mlxc_lm_model* model, mlx_stream s);
int lm_norm_apply(mlx_array* out, const lm_norm* n, mlx_array x, float eps, mlx_stream s);
/* A residual connection and the next norm: *x = x + t, *out = the norm of it (one fused op when
 * x and t agree in shape and dtype, else mlx_add's promotion and a separate norm). */
int lm_add_norm_apply(mlx_array* x, mlx_array* out, const lm_norm* n, mlx_array t, float eps, mlx_stream s);
int lm_rope_setup(mlxc_lm_model* model);
/* The RoPE base of a step ending at position seq_len - 1 (differs from rope_theta only for
 * dynamic NTK scaling). */
float lm_rope_base(const lm_config* config, int seq_len);

/* cache.c: per-layer keys and values, (1, kv_heads, capacity, head_dim), grown in steps; each
 * slot's absolute position is tracked so rotation and eviction never confuse the masks. */
typedef struct {
  int max_size;       /* rotating: most positions held, 0 = unbounded */
  int keep;           /* rotating: the first `keep` positions are never evicted */
  int bits;           /* quantized storage (4 or 8), 0 = float */
  int group_size;
  int quantize_from;  /* quantize once the cache holds this many positions */
} lm_cache_options;

typedef struct {
  /* float: keys, values; quantized: keys (packed, scales, biases), then values (the same) */
  mlx_array parts[6];
  bool quantized;
  int length, capacity;
  int* positions;     /* absolute position held by each slot (capacity entries) */
  bool evicted;       /* some position has been dropped: the cache cannot be rewound */
  lm_cache_options options;
} lm_kv_cache;

/* What attention reads: the filled slots (views). keys/values[0] are the arrays, or with
 * `quantized` the packed arrays followed by scales [1] and biases [2]. */
typedef struct {
  mlx_array keys[3], values[3];
  bool quantized;
  int group_size, bits;
} lm_kv_view;

/* Stores k, v (1, kv_heads, n, head_dim) of positions offset.. and sets *view (owned by the
 * caller: lm_cache_view_free). */
int lm_cache_update(lm_kv_cache* c, mlx_array k, mlx_array v, int offset, lm_kv_view* view, mlx_stream s);
void lm_cache_view_free(lm_kv_view* view);
/* Forgets positions from `length` on; fails when entries have been evicted. */
int lm_cache_truncate(lm_kv_cache* c, int length);
/* Empties the cache, keeping its options. */
void lm_cache_free(lm_kv_cache* c);
/* Keeps the batch rows listed in `rows` (int32, in that order). */
int lm_cache_keep_rows(lm_kv_cache* c, mlx_array rows, mlx_stream s);
/* Replaces the cache's contents (arrays are copied handles): n_parts 2 (float) or 6 (quantized),
 * `length` slots of which slot `next` is the oldest evictable one (length when in order), the
 * newest being position offset - 1. */
int lm_cache_restore(lm_kv_cache* c, const mlx_array* parts, int n_parts, int offset, int next);
/* The slot the next rotating write would overwrite: mlx-lm's RotatingKVCache._idx. */
int lm_cache_next_slot(const lm_kv_cache* c);
/* `slots` rounded up to the caches' growth step. */
int lm_cache_rounded_capacity(int slots);
/* For static decode (static_decode.c): lays the float cache of a session at `offset` out with
 * slot i holding position i, in `capacity` slots (at least offset and the current capacity).
 * A rotating cache that has dropped positions (keep 0: it holds the newest `length`, in rotated
 * order) gets them back in place; the slots of dropped positions hold zeros, which its window
 * masks, and it stays `evicted`, so it cannot be rewound onto them. The parts are left lazy. */
int lm_cache_make_static(lm_kv_cache* c, int offset, int capacity, mlx_stream s);
/* The first slot a prompt-cache file keeps of a session at `offset`: 0, except for a rotating
 * cache laid out by position after dropping some (lm_cache_make_static), whose slots before
 * its newest max_size hold nothing worth keeping. */
int lm_cache_first_saved_slot(const lm_kv_cache* c, int offset);

struct mlxc_lm_session {
  const mlxc_lm_model* model;
  lm_kv_cache* caches;
  mlx_array* conv_states;          /* per layer: the last kernel-1 inputs of a conv block */
  int offset;                      /* columns seen (tokens, for one row) */
  bool last_logits_only;           /* prefill inside generate: only the last position's logits */
  bool model_dtype_logits;         /* the logits in the model's dtype, not float32: a decode step's
                                    * greedy pick (mlxc_fast_argmax_logsumexp upcasts them itself) */
  /* Batch sessions (batch.c): row b's tokens are left-padded and start at column row_start[b];
   * its RoPE positions count from there and its earlier columns are masked out. NULL: one row,
   * positions = columns. */
  int batch;
  int* row_start;
  /* Static decode (static_decode.c): the slot indices 0..capacity-1 (int32, evaluated) that
   * every attention cache has been laid out to; empty until lm_static_decode_reserve. */
  mlx_array static_slots;
};

/* conv.c: the short convolution block of lfm2 for x (1, L, D), updating the layer's state. */
int lm_conv_block(mlx_array* out, mlxc_lm_session* session, int layer, mlx_array x, mlx_stream s);

/* model.c: sets every layer's cache options (sliding-window layers rotate over their window). */
int lm_session_configure(mlxc_lm_session* session, int max_kv_size, int kv_bits, int kv_group_size,
                         int quantized_kv_start);

/* decoder.c: logits (B, n, vocab) float32 for ids (B, n) after the session's context (B = the
 * session's batch); advances the session by n. */
int lm_decoder_forward(mlxc_lm_session* session, mlx_array ids, mlx_array* logits);
/* The core of one layer's attention, which the normal and the static decode paths do
 * differently: q (B, H, L, hd), k and v (B, K, L, hd) after the q/k norms and before RoPE give
 * *out (B, H, L, hd); or, with k empty, q (B, H + K, L, hd) holds the query heads and then the
 * key heads (lm_rope_qk rotates them in one op). ctx is the path's own state. */
typedef int (*lm_attend_fn)(mlx_array* out, mlxc_lm_session* session, int layer, mlx_array q, mlx_array k, mlx_array v,
                            void* ctx, mlx_stream s);
/* The decoder's graph for ids (B, n) with `attend` as every attention layer's core: logits as
 * lm_decoder_forward, built and not evaluated; the session's offset is left as it is. */
int lm_decoder_run(mlxc_lm_session* session, mlx_array ids, lm_attend_fn attend, void* ctx, mlx_array* logits);
/* How many forward passes lm_decoder_run has built with the norms inside the projections (a
 * one-row half-precision step on the GPU; tests check that the fused path was taken). */
unsigned long lm_decoder_fused_norm_builds(void);
/* The RoPE of `layer` for L new positions: rotated dims, base (or freqs, the model's table;
 * freqs is borrowed, not to be freed). */
typedef struct {
  int dims;
  mlx_optional_float base;
  mlx_array freqs;
} lm_rope_settings;
lm_rope_settings lm_rope_for(const mlxc_lm_session* session, int layer, int L);
/* RoPE of `layer` on x (B, heads, L, hd): positions from `offsets` (int32, (B) or (1): mlx_fast_rope_dynamic)
 * or, when empty, from the session's offset. */
int lm_rope_apply(mlx_array* out, const mlxc_lm_session* session, int layer, mlx_array x, mlx_array offsets, mlx_stream s);
/* RoPE of q and k as lm_rope_apply, into *qr (B, H, L, hd) and *kr (B, K, L, hd); with k empty,
 * q holds both (lm_attend_fn) and one rotation serves the two (one kernel instead of two). */
int lm_rope_qk(mlx_array* qr, mlx_array* kr, const mlxc_lm_session* session, int layer, mlx_array q, mlx_array k,
               mlx_array offsets, mlx_stream s);
/* The softmax scale of attention logits (query_pre_attn_scalar or head_dim, YaRN's mscale). */
float lm_attention_scale(const mlxc_lm_model* model);

/* batch.c: makes `s` (fresh) a session of n rows whose first real columns are row_start[0..n-1]
 * (copied); models with convolution layers and max_kv_size are refused. */
int lm_session_set_rows(mlxc_lm_session* s, const int* row_start, int n);
/* Keeps the rows listed in rows[0..n-1] (indices into the current rows, in that order). */
int lm_session_keep_rows(mlxc_lm_session* s, const int* rows, int n);

#endif
