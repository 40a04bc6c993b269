/* Internal structures of the embedding layer: the encoder interface every architecture
 * implements, the sentence-transformers modules around it, and shared helpers. Written only
 * against the public mlx-c API (the decoder-style encoders also use src/lm's building blocks). */
#ifndef MLXC_EMBED_INTERNAL_H
#define MLXC_EMBED_INTERNAL_H

#include <jansson.h>

#include "mlx/c/mlx.h"
#include "mlxc/embed.h"
#include "mlxc/tokenizer.h"

/* Pooling modes in the order sentence-transformers concatenates them when several are on. */
typedef enum { POOL_CLS, POOL_MAX, POOL_MEAN, POOL_MEAN_SQRT_LEN, POOL_WEIGHTED_MEAN, POOL_LAST, POOL_COUNT } embed_pooling;

typedef enum { EMBED_ACT_IDENTITY, EMBED_ACT_GELU, EMBED_ACT_GELU_TANH, EMBED_ACT_SILU, EMBED_ACT_RELU, EMBED_ACT_TANH, EMBED_ACT_SIGMOID } embed_activation;

/* One padded batch: ids and mask (B, L), sequences left-aligned (padding on the right);
 * lengths[b] real tokens in row b (host memory). */
typedef struct {
  mlx_array ids, mask; /* int32, bool */
  const size_t* lengths;
  int B, L;
} embed_batch;

/* An encoder: token ids to hidden states (B, L, hidden) float32. */
typedef struct {
  int hidden, max_positions;
  void* impl;
  int (*forward)(const void* impl, const embed_batch* batch, mlx_array* hidden, mlx_stream s);
  void (*free)(void* impl);
} embed_encoder;

/* A sentence-transformers Dense module: act(x W^T + b). */
typedef struct {
  mlx_array weight, bias; /* (out, in), (out) or empty */
  int in, out;
  embed_activation act;
} embed_dense;

typedef struct {
  char *name, *text;
} embed_prompt;

struct mlxc_embed_model {
  mlx_stream stream;
  mlxc_tokenizer* tok;
  embed_encoder enc;
  embed_pooling pooling[POOL_COUNT]; /* the modes, in the order their outputs are concatenated */
  int n_pooling;
  bool include_prompt;      /* false: prompt tokens are left out of the pooling */
  embed_dense* dense;
  size_t n_dense;
  bool normalize, lower_case;
  size_t max_seq_length;
  int32_t pad_id;
  embed_prompt* prompts;
  size_t n_prompts;
  char* default_prompt_name;
};

/* encoders: each reads config (the folder's config.json) and binds tensors (all weights). */
int embed_bert_load(embed_encoder* enc, const json_t* config, mlx_map_string_to_array tensors, const char* path);
int embed_modernbert_load(embed_encoder* enc, const json_t* config, mlx_map_string_to_array tensors, const char* path);
int embed_decoder_load(embed_encoder* enc, const char* dir, const json_t* config, mlx_map_string_to_array tensors,
                       mlx_stream s);

/* layout.c: the sentence-transformers modules (pooling, dense, normalize, prompts, lengths). */
int embed_layout_load(mlxc_embed_model* m, const char* dir);
void embed_layout_free(mlxc_embed_model* m);

/* pool.c: pooled width, and pooling of hidden (B, L, D) rows; skip[b] leading tokens of row b
 * are left out (prompt tokens when include_prompt is false). */
size_t embed_pooled_dim(const mlxc_embed_model* m);
void embed_pool(const mlxc_embed_model* m, const float* hidden, const size_t* lengths, const size_t* skip, size_t B,
                size_t L, size_t D, float* out);

/* dense.c */
int embed_dense_load(embed_dense* d, const char* dir, const char* path, mlx_stream s);
void embed_dense_free(embed_dense* d);
/* Applies the Dense modules to rows (n, in) in place of *rows (malloc'd; replaced). */
int embed_dense_apply(const mlxc_embed_model* m, float** rows, size_t n, size_t* width);

/* text.c: prompt + text, lower-cased with do_lower_case; malloc'd, NULL when out of
 * memory. */
char* embed_prepare_text(const mlxc_embed_model* m, const char* prompt, const char* text);

/* ops.c: shared building blocks. */
int embed_linear(mlx_array* out, mlx_array x, mlx_array w, mlx_array b, mlx_stream s); /* b may be empty */
int embed_activate(mlx_array* out, mlx_array x, embed_activation act, mlx_stream s);
/* Activation by a Hugging Face name (gelu, gelu_new, gelu_pytorch_tanh, silu, relu, ...) or a
 * torch class path (torch.nn.modules.linear.Identity, torch.nn.modules.activation.Tanh). */
int embed_activation_parse(const char* name, embed_activation* out);
/* The tensor `name`, also found under a one-segment prefix ("bert.", "roberta.", "model."). */
int embed_tensor(mlx_map_string_to_array tensors, const char* name, bool required, mlx_array* out);
int embed_json_int(const json_t* obj, const char* key, int fallback);
float embed_json_float(const json_t* obj, const char* key, float fallback);
/* softmax(q k^T * scale where mask, else -inf) v for q (B, H, L, hd), k and v (B, K, L, hd) and a
 * bool mask broadcastable to (B, H, L, L): the fused kernel, or on the CPU for up to 16M scores
 * (faster for the short sequences of sentences) two batched matmuls around a float32 softmax. */
int embed_attention(mlx_array* out, mlx_array q, mlx_array k, mlx_array v, float scale, mlx_array mask, mlx_stream s);
/* Frees an array of n handles. */
void embed_arrays_free(mlx_array* arrays, size_t n);
/* A bool attention mask broadcastable to (B, 1, L, L): key j visible to query i when j is a real
 * token of the row and (not causal or j <= i) and (window <= 0 or |i - j| < window); no query row
 * is left empty. Only as large as needed: (B, 1, 1, L) for padding alone, (1, 1, L, L) when
 * causal, (B, 1, L, L) with a window. */
int embed_attention_mask(mlx_array* out, const embed_batch* batch, bool causal, int window, mlx_stream s);

#endif
