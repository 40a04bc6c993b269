/* The BERT-family encoders: bert (MiniLM, BGE, E5, GTE...), roberta, xlm-roberta, camembert and
 * distilbert. Word + position (+ token-type 0) embeddings, LayerNorm, then post-norm layers of
 * bidirectional attention (padding masked) and a feed-forward. They differ in tensor names,
 * where positions start (RoBERTa: after padding_idx) and whether token types exist (DistilBERT:
 * none). Shapes: (batch B, length L, hidden D). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embed/embed.h"
#include "lm/call.h"
#include "util/error.h"

typedef struct {
  mlx_array q_w, q_b, k_w, k_b, v_w, v_b, o_w, o_b, ln1_w, ln1_b;
  mlx_array up_w, up_b, down_w, down_b, ln2_w, ln2_b;
} bert_layer;

typedef struct {
  int hidden, heads, layers, max_positions, position_offset;
  float eps;
  embed_activation act;
  mlx_array word, position, token_type, ln_w, ln_b; /* token_type empty for DistilBERT */
  bert_layer* blocks;
} bert_encoder;

/* Tensor names of one family: the embeddings, then a layer's parts in bert_layer's order. */
typedef struct {
  const char *word, *position, *token_type, *ln_w, *ln_b, *layer_prefix;
  const char* parts[16];
} bert_names;

static const bert_names bert_style = {
    "embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight",
    "embeddings.token_type_embeddings.weight", "embeddings.LayerNorm.weight", "embeddings.LayerNorm.bias",
    "encoder.layer",
    {"attention.self.query.weight", "attention.self.query.bias", "attention.self.key.weight",
     "attention.self.key.bias", "attention.self.value.weight", "attention.self.value.bias",
     "attention.output.dense.weight", "attention.output.dense.bias", "attention.output.LayerNorm.weight",
     "attention.output.LayerNorm.bias", "intermediate.dense.weight", "intermediate.dense.bias", "output.dense.weight",
     "output.dense.bias", "output.LayerNorm.weight", "output.LayerNorm.bias"}};

static const bert_names distilbert_style = {
    "embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight", NULL,
    "embeddings.LayerNorm.weight", "embeddings.LayerNorm.bias", "transformer.layer",
    {"attention.q_lin.weight", "attention.q_lin.bias", "attention.k_lin.weight", "attention.k_lin.bias",
     "attention.v_lin.weight", "attention.v_lin.bias", "attention.out_lin.weight", "attention.out_lin.bias",
     "sa_layer_norm.weight", "sa_layer_norm.bias", "ffn.lin1.weight", "ffn.lin1.bias", "ffn.lin2.weight",
     "ffn.lin2.bias", "output_layer_norm.weight", "output_layer_norm.bias"}};

static void bert_free(void* impl) {
  bert_encoder* e = impl;
  if (!e) return;
  mlx_array top[] = {e->word, e->position, e->token_type, e->ln_w, e->ln_b};
  embed_arrays_free(top, 5);
  for (int i = 0; e->blocks && i < e->layers; i++)
    embed_arrays_free((mlx_array*)&e->blocks[i], sizeof(bert_layer) / sizeof(mlx_array));
  free(e->blocks);
  free(e);
}

static int bert_forward(const void* impl, const embed_batch* batch, mlx_array* out, mlx_stream s) {
  const bert_encoder* e = impl;
  int B = batch->B, L = batch->L, D = e->hidden, H = e->heads, hd = D / H;
  if (L + e->position_offset > e->max_positions)
    return util_error("sequence of %d tokens exceeds the %d positions of the model", L, e->max_positions - e->position_offset);
  mlx_array x = mlx_array_new(), t = mlx_array_new(), pos = mlx_array_new(), q = mlx_array_new(), k = mlx_array_new();
  mlx_array v = mlx_array_new(), attn_mask = mlx_array_new(), zero = mlx_array_new_int(0);
  int status = 0;
  CALL(mlx_take_axis(&x, e->word, batch->ids, 0, s)); /* (B, L, D) */
  /* Real tokens are left-aligned, so their positions are offset..offset+L-1 in every row
   * (padding positions differ from RoBERTa's, but padding is masked and never pooled). */
  int start[2] = {e->position_offset, 0}, stop[2] = {e->position_offset + L, D};
  CALL(mlx_slice(&pos, e->position, start, 2, stop, 2, NULL, 0, s)); /* (L, D) */
  CALL(mlx_add(&x, x, pos, s));
  if (e->token_type.ctx) {
    CALL(mlx_take_axis(&t, e->token_type, zero, 0, s)); /* token type 0: (D) */
    CALL(mlx_add(&x, x, t, s));
  }
  CALL(mlx_fast_layer_norm(&x, x, e->ln_w, e->ln_b, e->eps, s));
  CALL(embed_attention_mask(&attn_mask, batch, false, 0, s)); /* keys: padding masked */
  int hshape[4] = {B, L, H, hd}, perm[4] = {0, 2, 1, 3}, flat[3] = {B, L, D};
  for (int i = 0; i < e->layers; i++) {
    const bert_layer* Ly = &e->blocks[i];
    mlx_array* qkv[3] = {&q, &k, &v};
    mlx_array ws[3] = {Ly->q_w, Ly->k_w, Ly->v_w}, bs[3] = {Ly->q_b, Ly->k_b, Ly->v_b};
    for (int j = 0; j < 3; j++) {
      CALL(embed_linear(qkv[j], x, ws[j], bs[j], s));
      CALL(mlx_reshape(qkv[j], *qkv[j], hshape, 4, s));
      CALL(mlx_transpose_axes(qkv[j], *qkv[j], perm, 4, s)); /* (B, H, L, hd) */
    }
    CALL(embed_attention(&t, q, k, v, 1.0f / sqrtf((float)hd), attn_mask, s));
    CALL(mlx_transpose_axes(&t, t, perm, 4, s));
    CALL(mlx_reshape(&t, t, flat, 3, s));
    CALL(embed_linear(&t, t, Ly->o_w, Ly->o_b, s));
    CALL(mlx_add(&x, x, t, s));
    CALL(mlx_fast_layer_norm(&x, x, Ly->ln1_w, Ly->ln1_b, e->eps, s));
    CALL(embed_linear(&t, x, Ly->up_w, Ly->up_b, s));
    CALL(embed_activate(&t, t, e->act, s));
    CALL(embed_linear(&t, t, Ly->down_w, Ly->down_b, s));
    CALL(mlx_add(&x, x, t, s));
    CALL(mlx_fast_layer_norm(&x, x, Ly->ln2_w, Ly->ln2_b, e->eps, s));
  }
  CALL(mlx_astype(out, x, MLX_FLOAT32, s));
cleanup:;
  mlx_array all[] = {x, t, pos, q, k, v, attn_mask, zero};
  embed_arrays_free(all, sizeof all / sizeof all[0]);
  return status;
}

static int bind(bert_encoder* e, const bert_names* names, mlx_map_string_to_array t) {
  char name[256];
  int status = 0;
  e->blocks = calloc((size_t)e->layers, sizeof *e->blocks);
  if (!e->blocks) return util_error("out of memory");
  CALL(embed_tensor(t, names->word, true, &e->word));
  CALL(embed_tensor(t, names->position, true, &e->position));
  if (names->token_type) CALL(embed_tensor(t, names->token_type, false, &e->token_type));
  CALL(embed_tensor(t, names->ln_w, true, &e->ln_w));
  CALL(embed_tensor(t, names->ln_b, true, &e->ln_b));
  for (int i = 0; i < e->layers; i++) {
    mlx_array* parts = (mlx_array*)&e->blocks[i];
    for (size_t p = 0; p < sizeof(bert_layer) / sizeof(mlx_array); p++) {
      snprintf(name, sizeof name, "%s.%d.%s", names->layer_prefix, i, names->parts[p]);
      CALL(embed_tensor(t, name, true, &parts[p]));
    }
  }
  if (mlx_array_ndim(e->word) != 2 || mlx_array_dim(e->word, 1) != e->hidden)
    CALL(util_error("word embeddings do not match the hidden size %d", e->hidden));
  if (mlx_array_dim(e->position, 0) < e->max_positions) e->max_positions = mlx_array_dim(e->position, 0);
cleanup:
  return status;
}

int embed_bert_load(embed_encoder* enc, const json_t* cfg, mlx_map_string_to_array tensors, const char* path) {
  const char* type = json_string_value(json_object_get(cfg, "model_type"));
  bool distil = type && !strcmp(type, "distilbert");
  bool roberta = type && (!strcmp(type, "roberta") || !strcmp(type, "xlm-roberta") || !strcmp(type, "camembert"));
  bert_encoder* e = calloc(1, sizeof *e);
  if (!e) return util_error("out of memory");
  int status = 0;
  e->hidden = embed_json_int(cfg, distil ? "dim" : "hidden_size", 0);
  e->heads = embed_json_int(cfg, distil ? "n_heads" : "num_attention_heads", 0);
  e->layers = embed_json_int(cfg, distil ? "n_layers" : "num_hidden_layers", 0);
  e->max_positions = embed_json_int(cfg, "max_position_embeddings", 512);
  e->eps = distil ? 1e-12f : embed_json_float(cfg, "layer_norm_eps", 1e-12f);
  /* RoBERTa numbers real tokens from padding_idx + 1 (create_position_ids_from_input_ids). */
  e->position_offset = roberta ? embed_json_int(cfg, "pad_token_id", 1) + 1 : 0;
  const char* act = json_string_value(json_object_get(cfg, distil ? "activation" : "hidden_act"));
  CALL(embed_activation_parse(act ? act : "gelu", &e->act));
  if (e->hidden <= 0 || e->heads <= 0 || e->hidden % e->heads || e->layers <= 0 || e->layers > 1024)
    CALL(util_error("%s: bad hidden size / attention heads / layers", path));
  CALL(bind(e, distil ? &distilbert_style : &bert_style, tensors));
  *enc = (embed_encoder){.hidden = e->hidden, .max_positions = e->max_positions - e->position_offset, .impl = e,
                         .forward = bert_forward, .free = bert_free};
  return 0;
cleanup:
  bert_free(e);
  return status;
}
