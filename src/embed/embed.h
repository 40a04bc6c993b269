/* Internal structures of the embedding layer. Written only against the public mlx-c API. */
#ifndef MLXC_EMBED_INTERNAL_H
#define MLXC_EMBED_INTERNAL_H

#include "mlx/c/mlx.h"
#include "mlxc/embed.h"
#include "mlxc/tokenizer.h"

typedef enum { POOL_MEAN, POOL_CLS, POOL_MAX, POOL_LAST, POOL_MEAN_SQRT_LEN } embed_pooling;

typedef struct {
  mlx_array q_w, q_b, k_w, k_b, v_w, v_b, o_w, o_b, ln1_w, ln1_b;
  mlx_array up_w, up_b, down_w, down_b, ln2_w, ln2_b;
} bert_layer;

typedef struct {
  int hidden, heads, layers, max_positions;
  float eps;
  mlx_array word, position, token_type, ln_w, ln_b;
  bert_layer* blocks;
} bert_encoder;

struct mlxc_embed_model {
  mlx_stream stream;
  mlxc_tokenizer* tok;
  bert_encoder bert;
  embed_pooling pooling;
  bool normalize;
  size_t max_seq_length;
  int32_t pad_id;
  mlx_map_string_to_array tensors;
};

/* bert.c */
int bert_load(bert_encoder* enc, mlx_map_string_to_array tensors, const char* dir);
void bert_free(bert_encoder* enc);
/* Hidden states (B, L, D) float32 for ids (B, L) int32 and a bool mask (B, L) of real tokens. */
int bert_forward(const bert_encoder* enc, mlx_array ids, mlx_array mask, mlx_array* out, mlx_stream s);

#endif
