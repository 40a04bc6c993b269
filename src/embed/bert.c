/* The BERT encoder (bert, and the MiniLM/BGE/E5/GTE models built on it): word + position +
 * token-type embeddings, LayerNorm, then post-norm layers of bidirectional attention (padding
 * masked) and a GELU (erf) feed-forward. Shapes: (batch B, length L, hidden D). */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embed/embed.h"
#include "util/error.h"

#define CALL(expr)            \
  do {                        \
    status = (expr);          \
    if (status) goto cleanup; \
  } while (0)

static int get(mlx_map_string_to_array t, const char* name, mlx_array* out) {
  mlx_array tmp = mlx_array_new();
  /* sentence-transformers folders of older versions prefix tensors with "bert." */
  char alt[300];
  snprintf(alt, sizeof alt, "bert.%s", name);
  mlx_map_string_to_array_iterator it = mlx_map_string_to_array_iterator_new(t);
  const char* key;
  int found = 0;
  while (!found && mlx_map_string_to_array_iterator_next(&key, &tmp, it) == 0)
    if (!strcmp(key, name) || !strcmp(key, alt)) found = 1;
  mlx_map_string_to_array_iterator_free(it);
  if (!found) {
    mlx_array_free(tmp);
    return util_error("missing tensor %s", name);
  }
  mlx_array_free(*out);
  *out = tmp;
  return 0;
}

int bert_load(bert_encoder* e, mlx_map_string_to_array t, const char* dir) {
  char path[4096], name[256];
  snprintf(path, sizeof path, "%s/config.json", dir);
  json_error_t err;
  json_t* cfg = json_load_file(path, 0, &err);
  if (!cfg) return util_error("%s: %s", path, err.text);
  const char* type = json_string_value(json_object_get(cfg, "model_type"));
  int status = 0;
  if (!type || strcmp(type, "bert"))
    status = util_error("%s: embedding models of type \"%s\" are not supported yet (supported: bert)", path, type ? type : "?");
  e->hidden = (int)json_integer_value(json_object_get(cfg, "hidden_size"));
  e->heads = (int)json_integer_value(json_object_get(cfg, "num_attention_heads"));
  e->layers = (int)json_integer_value(json_object_get(cfg, "num_hidden_layers"));
  e->max_positions = (int)json_integer_value(json_object_get(cfg, "max_position_embeddings"));
  json_t* eps = json_object_get(cfg, "layer_norm_eps");
  e->eps = json_is_number(eps) ? (float)json_number_value(eps) : 1e-12f;
  const char* act = json_string_value(json_object_get(cfg, "hidden_act"));
  if (!status && act && strcmp(act, "gelu"))
    status = util_error("%s: activation \"%s\" is not supported (gelu)", path, act);
  json_decref(cfg);
  if (status) return status;
  if (e->hidden <= 0 || e->heads <= 0 || e->hidden % e->heads || e->layers <= 0 || e->layers > 256)
    return util_error("%s: bad hidden_size / num_attention_heads / num_hidden_layers", path);
  e->blocks = calloc((size_t)e->layers, sizeof *e->blocks);
  if (!e->blocks) return util_error("out of memory");
  CALL(get(t, "embeddings.word_embeddings.weight", &e->word));
  CALL(get(t, "embeddings.position_embeddings.weight", &e->position));
  CALL(get(t, "embeddings.token_type_embeddings.weight", &e->token_type));
  CALL(get(t, "embeddings.LayerNorm.weight", &e->ln_w));
  CALL(get(t, "embeddings.LayerNorm.bias", &e->ln_b));
  for (int i = 0; i < e->layers; i++) {
    bert_layer* L = &e->blocks[i];
    struct {
      const char* suffix;
      mlx_array* dst;
    } parts[] = {{"attention.self.query.weight", &L->q_w}, {"attention.self.query.bias", &L->q_b},
                 {"attention.self.key.weight", &L->k_w},   {"attention.self.key.bias", &L->k_b},
                 {"attention.self.value.weight", &L->v_w}, {"attention.self.value.bias", &L->v_b},
                 {"attention.output.dense.weight", &L->o_w}, {"attention.output.dense.bias", &L->o_b},
                 {"attention.output.LayerNorm.weight", &L->ln1_w}, {"attention.output.LayerNorm.bias", &L->ln1_b},
                 {"intermediate.dense.weight", &L->up_w},  {"intermediate.dense.bias", &L->up_b},
                 {"output.dense.weight", &L->down_w},      {"output.dense.bias", &L->down_b},
                 {"output.LayerNorm.weight", &L->ln2_w},   {"output.LayerNorm.bias", &L->ln2_b}};
    for (size_t p = 0; p < sizeof parts / sizeof parts[0]; p++) {
      snprintf(name, sizeof name, "encoder.layer.%d.%s", i, parts[p].suffix);
      CALL(get(t, name, parts[p].dst));
    }
  }
  if (mlx_array_dim(e->word, 1) != e->hidden) CALL(util_error("word embeddings do not match hidden_size"));
cleanup:
  return status;
}

void bert_free(bert_encoder* e) {
  mlx_array* top[] = {&e->word, &e->position, &e->token_type, &e->ln_w, &e->ln_b};
  for (size_t i = 0; i < 5; i++) mlx_array_free(*top[i]);
  for (int i = 0; e->blocks && i < e->layers; i++) {
    mlx_array* all = (mlx_array*)&e->blocks[i];
    for (size_t j = 0; j < sizeof(bert_layer) / sizeof(mlx_array); j++) mlx_array_free(all[j]);
  }
  free(e->blocks);
}

/* x W^T + b */
static int linear(mlx_array* out, mlx_array x, mlx_array w, mlx_array b, mlx_stream s) {
  mlx_array wt = mlx_array_new();
  int status = mlx_transpose(&wt, w, s);
  if (!status) status = mlx_matmul(out, x, wt, s);
  if (!status) status = mlx_add(out, *out, b, s);
  mlx_array_free(wt);
  return status;
}

/* GELU with erf: 0.5 x (1 + erf(x / sqrt(2))) */
static int gelu(mlx_array* out, mlx_array x, mlx_stream s) {
  mlx_array t = mlx_array_new(), k = mlx_array_new_float(0.70710678118654752f), half = mlx_array_new_float(0.5f),
            one = mlx_array_new_float(1.0f);
  int status = mlx_multiply(&t, x, k, s);
  if (!status) status = mlx_erf(&t, t, s);
  if (!status) status = mlx_add(&t, t, one, s);
  if (!status) status = mlx_multiply(&t, t, half, s);
  if (!status) status = mlx_multiply(out, t, x, s);
  mlx_array_free(t);
  mlx_array_free(k);
  mlx_array_free(half);
  mlx_array_free(one);
  return status;
}

int bert_forward(const bert_encoder* e, mlx_array ids, mlx_array mask, mlx_array* out, mlx_stream s) {
  int B = mlx_array_dim(ids, 0), L = mlx_array_dim(ids, 1), D = e->hidden, H = e->heads, hd = D / H;
  if (L > e->max_positions) return util_error("sequence of %d tokens exceeds the %d positions of the model", L, e->max_positions);
  mlx_array x = mlx_array_new(), t = mlx_array_new(), pos = mlx_array_new(), q = mlx_array_new(), k = mlx_array_new();
  mlx_array v = mlx_array_new(), attn_mask = mlx_array_new(), zero = mlx_array_new_int(0);
  int status = 0;
  CALL(mlx_take_axis(&x, e->word, ids, 0, s));                   /* (B, L, D) */
  int start[2] = {0, 0}, stop[2] = {L, D};
  CALL(mlx_slice(&pos, e->position, start, 2, stop, 2, NULL, 0, s)); /* (L, D) */
  CALL(mlx_add(&x, x, pos, s));
  CALL(mlx_take_axis(&t, e->token_type, zero, 0, s));            /* token type 0 */
  CALL(mlx_add(&x, x, t, s));
  CALL(mlx_fast_layer_norm(&x, x, e->ln_w, e->ln_b, e->eps, s));
  int mshape[4] = {B, 1, 1, L};
  CALL(mlx_reshape(&attn_mask, mask, mshape, 4, s));               /* keys: padding masked */
  int hshape[4] = {B, L, H, hd}, perm[4] = {0, 2, 1, 3}, flat[3] = {B, L, D};
  for (int i = 0; i < e->layers; i++) {
    const bert_layer* Ly = &e->blocks[i];
    mlx_array* qkv[3] = {&q, &k, &v};
    mlx_array ws[3] = {Ly->q_w, Ly->k_w, Ly->v_w}, bs[3] = {Ly->q_b, Ly->k_b, Ly->v_b};
    for (int j = 0; j < 3; j++) {
      CALL(linear(qkv[j], x, ws[j], bs[j], s));
      CALL(mlx_reshape(qkv[j], *qkv[j], hshape, 4, s));
      CALL(mlx_transpose_axes(qkv[j], *qkv[j], perm, 4, s));
    }
    CALL(mlx_fast_scaled_dot_product_attention(&t, q, k, v, 1.0f / sqrtf((float)hd), "array", attn_mask,
                                               mlx_array_new(), s));
    CALL(mlx_transpose_axes(&t, t, perm, 4, s));
    CALL(mlx_reshape(&t, t, flat, 3, s));
    CALL(linear(&t, t, Ly->o_w, Ly->o_b, s));
    CALL(mlx_add(&x, x, t, s));
    CALL(mlx_fast_layer_norm(&x, x, Ly->ln1_w, Ly->ln1_b, e->eps, s));
    CALL(linear(&t, x, Ly->up_w, Ly->up_b, s));
    CALL(gelu(&t, t, s));
    CALL(linear(&t, t, Ly->down_w, Ly->down_b, s));
    CALL(mlx_add(&x, x, t, s));
    CALL(mlx_fast_layer_norm(&x, x, Ly->ln2_w, Ly->ln2_b, e->eps, s));
  }
  CALL(mlx_astype(out, x, MLX_FLOAT32, s));
cleanup:;
  mlx_array* all[] = {&x, &t, &pos, &q, &k, &v, &attn_mask, &zero};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) mlx_array_free(*all[i]);
  return status;
}
