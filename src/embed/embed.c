/* Sentence embeddings: the sentence-transformers folder layout (modules.json with Transformer,
 * Pooling and Normalize modules; max_seq_length from sentence_bert_config.json or the tokenizer's
 * model_max_length), length-sorted padded batches, pooling and normalisation. */
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

mlxc_embed_params mlxc_embed_default_params(void) { return (mlxc_embed_params){.batch_size = 32, .normalize = -1}; }

size_t mlxc_embed_dim(const mlxc_embed_model* m) { return m ? (size_t)m->bert.hidden : 0; }

static json_t* load_json(const char* dir, const char* file) {
  char path[8192];
  snprintf(path, sizeof path, "%s/%s", dir, file);
  return json_load_file(path, 0, NULL);
}

/* Pooling from 1_Pooling/config.json: "pooling_mode" (sentence-transformers 6) or the
 * pooling_mode_*_tokens flags of earlier versions. */
static int read_pooling(mlxc_embed_model* m, const char* dir, const char* path) {
  char file[1024];
  snprintf(file, sizeof file, "%s/config.json", path);
  json_t* cfg = load_json(dir, file);
  if (!cfg) return util_error("%s/%s: missing or invalid", dir, file);
  const char* mode = json_string_value(json_object_get(cfg, "pooling_mode"));
  int status = 0;
  static const struct {
    const char* name;
    const char* flag;
    embed_pooling pooling;
  } modes[] = {{"mean", "pooling_mode_mean_tokens", POOL_MEAN},
               {"cls", "pooling_mode_cls_token", POOL_CLS},
               {"max", "pooling_mode_max_tokens", POOL_MAX},
               {"lasttoken", "pooling_mode_lasttoken", POOL_LAST},
               {"mean_sqrt_len_tokens", "pooling_mode_mean_sqrt_len_tokens", POOL_MEAN_SQRT_LEN}};
  bool found = false;
  for (size_t i = 0; i < sizeof modes / sizeof modes[0] && !found; i++)
    if ((mode && !strcmp(mode, modes[i].name)) || json_is_true(json_object_get(cfg, modes[i].flag))) {
      m->pooling = modes[i].pooling;
      found = true;
    }
  if (!found) status = util_error("%s/%s: unsupported pooling (supported: mean, cls, max, lasttoken, mean_sqrt_len)", dir, file);
  json_decref(cfg);
  return status;
}

static int read_modules(mlxc_embed_model* m, const char* dir) {
  m->pooling = POOL_MEAN; /* a plain transformer folder: mean pooling, no normalization */
  json_t* modules = load_json(dir, "modules.json");
  if (!modules) return 0;
  int status = 0;
  size_t i;
  json_t* mod;
  json_array_foreach(modules, i, mod) {
    const char* type = json_string_value(json_object_get(mod, "type"));
    const char* path = json_string_value(json_object_get(mod, "path"));
    if (!type) continue;
    if (strstr(type, "Pooling")) {
      status = read_pooling(m, dir, path ? path : "1_Pooling");
    } else if (strstr(type, "Normalize")) {
      m->normalize = true;
    } else if (!strstr(type, "Transformer")) {
      status = util_error("%s/modules.json: module %s is not supported yet", dir, type);
    }
    if (status) break;
  }
  json_decref(modules);
  return status;
}

static void read_max_length(mlxc_embed_model* m, const char* dir) {
  m->max_seq_length = (size_t)m->bert.max_positions;
  json_t* st = load_json(dir, "sentence_bert_config.json");
  json_t* v = json_object_get(st, "max_seq_length");
  if (json_is_integer(v) && json_integer_value(v) > 0) {
    m->max_seq_length = (size_t)json_integer_value(v);
  } else {
    json_t* tc = load_json(dir, "tokenizer_config.json");
    json_t* ml = json_object_get(tc, "model_max_length");
    if (json_is_integer(ml) && json_integer_value(ml) > 0 && json_integer_value(ml) < (json_int_t)m->max_seq_length)
      m->max_seq_length = (size_t)json_integer_value(ml);
    json_decref(tc);
  }
  json_decref(st);
  if (m->max_seq_length > (size_t)m->bert.max_positions) m->max_seq_length = (size_t)m->bert.max_positions;
}

void mlxc_embed_free(mlxc_embed_model* m) {
  if (!m) return;
  bert_free(&m->bert);
  mlxc_tokenizer_free(m->tok);
  mlx_map_string_to_array_free(m->tensors);
  free(m);
}

int mlxc_embed_load(mlxc_embed_model** out, const char* dir, mlx_stream stream) {
  if (!out || !dir) return util_error("mlxc_embed_load: null argument");
  *out = NULL;
  mlxc_embed_model* m = calloc(1, sizeof *m);
  if (!m) return util_error("out of memory");
  m->stream = stream;
  m->tensors = mlx_map_string_to_array_new();
  mlx_map_string_to_string meta = mlx_map_string_to_string_new();
  char path[4096];
  int status = 0;
  snprintf(path, sizeof path, "%s/model.safetensors", dir);
  CALL(mlx_load_safetensors(&m->tensors, &meta, path, stream));
  CALL(bert_load(&m->bert, m->tensors, dir));
  CALL(mlxc_tokenizer_load(&m->tok, dir));
  CALL(read_modules(m, dir));
  read_max_length(m, dir);
  int32_t pad = mlxc_tokenizer_special_id(m->tok, MLXC_TOKEN_PAD);
  m->pad_id = pad >= 0 ? pad : 0;
  *out = m;
  m = NULL;
cleanup:
  mlx_map_string_to_string_free(meta);
  mlxc_embed_free(m);
  return status;
}

/* Token ids of one text, truncated as Hugging Face truncates a single sequence: the content is
 * cut so that it fits in max_length together with the special tokens around it. */
static int tokenize(const mlxc_embed_model* m, const char* text, int32_t** ids, size_t* n) {
  int32_t* plain = NULL;
  size_t n_plain = 0;
  if (mlxc_tokenizer_encode(m->tok, text, strlen(text), true, ids, n)) return 1;
  if (*n <= m->max_seq_length) return 0;
  if (mlxc_tokenizer_encode(m->tok, text, strlen(text), false, &plain, &n_plain)) return 1;
  size_t added = *n - n_plain, prefix = 0;
  while (prefix < added && (n_plain == 0 || (*ids)[prefix] != plain[0])) prefix++;
  size_t keep = m->max_seq_length > added ? m->max_seq_length - added : 0;
  /* [specials before] plain[0..keep) [specials after] */
  memmove(*ids + prefix, plain, keep * sizeof(int32_t));
  memmove(*ids + prefix + keep, *ids + prefix + n_plain, (added - prefix) * sizeof(int32_t));
  *n = prefix + keep + (added - prefix);
  free(plain);
  return 0;
}

typedef struct {
  size_t index, length;
  int32_t* ids;
} item;

static int by_length(const void* a, const void* b) {
  const item *x = a, *y = b;
  return x->length < y->length ? -1 : x->length > y->length;
}

/* Pools hidden (B, L, D) over each row's real tokens into out rows. */
static void pool(const mlxc_embed_model* m, const float* h, const item* batch, size_t B, size_t L, size_t D,
                 float* out, size_t out_stride, size_t dim) {
  for (size_t b = 0; b < B; b++) {
    const float* rows = h + b * L * D;
    size_t n = batch[b].length ? batch[b].length : 1;
    float* o = out + batch[b].index * out_stride;
    for (size_t d = 0; d < dim; d++) {
      double acc = m->pooling == POOL_MAX ? -INFINITY : 0;
      if (m->pooling == POOL_CLS) {
        acc = rows[d];
      } else if (m->pooling == POOL_LAST) {
        acc = rows[(n - 1) * D + d];
      } else {
        for (size_t t = 0; t < n; t++) {
          double v = rows[t * D + d];
          acc = m->pooling == POOL_MAX ? (v > acc ? v : acc) : acc + v;
        }
        if (m->pooling == POOL_MEAN) acc /= (double)n;
        if (m->pooling == POOL_MEAN_SQRT_LEN) acc /= sqrt((double)n);
      }
      o[d] = (float)acc;
    }
  }
}

static int run_batch(const mlxc_embed_model* m, const item* batch, size_t B, float* out, size_t dim) {
  size_t L = 0, D = (size_t)m->bert.hidden;
  for (size_t b = 0; b < B; b++) L = batch[b].length > L ? batch[b].length : L;
  if (L == 0) L = 1;
  int32_t* ids = malloc(sizeof(int32_t) * B * L);
  bool* mask = malloc(B * L);
  mlx_array ids_a = mlx_array_new(), mask_a = mlx_array_new(), hidden = mlx_array_new();
  int status = 0;
  if (!ids || !mask) CALL(util_error("out of memory"));
  for (size_t b = 0; b < B; b++)
    for (size_t t = 0; t < L; t++) {
      bool real = t < batch[b].length;
      ids[b * L + t] = real ? batch[b].ids[t] : m->pad_id;
      mask[b * L + t] = real;
    }
  int shape[2] = {(int)B, (int)L};
  ids_a = mlx_array_new_data(ids, shape, 2, MLX_INT32);
  mask_a = mlx_array_new_data(mask, shape, 2, MLX_BOOL);
  if (!ids_a.ctx || !mask_a.ctx) CALL(1);
  CALL(bert_forward(&m->bert, ids_a, mask_a, &hidden, m->stream));
  const float* h = mlx_array_data_float32(hidden);
  if (!h) CALL(1);
  pool(m, h, batch, B, L, D, out, dim, dim);
cleanup:
  free(ids);
  free(mask);
  mlx_array_free(ids_a);
  mlx_array_free(mask_a);
  mlx_array_free(hidden);
  return status;
}

int mlxc_embed_encode(const mlxc_embed_model* m, const char* const* texts, size_t n, mlxc_embed_params p,
                      float** vectors, size_t* dim) {
  if (!m || !vectors || !dim || (n && !texts)) return util_error("mlxc_embed_encode: null argument");
  size_t full = (size_t)m->bert.hidden;
  size_t d = p.dim ? p.dim : full;
  if (d > full) return util_error("dim %zu is larger than the model's %zu", d, full);
  size_t batch_size = p.batch_size ? p.batch_size : 32;
  item* items = calloc(n ? n : 1, sizeof *items);
  float* out = malloc(sizeof(float) * (n ? n : 1) * d);
  int status = 0;
  if (!items || !out) CALL(util_error("out of memory"));
  for (size_t i = 0; i < n; i++) {
    if (!texts[i]) CALL(util_error("text %zu is NULL", i));
    items[i].index = i;
    CALL(tokenize(m, texts[i], &items[i].ids, &items[i].length));
  }
  /* Similar lengths together: less padding per batch. */
  qsort(items, n, sizeof *items, by_length);
  for (size_t i = 0; i < n; i += batch_size)
    CALL(run_batch(m, items + i, n - i < batch_size ? n - i : batch_size, out, d));
  bool normalize = p.normalize < 0 ? m->normalize : p.normalize > 0;
  for (size_t i = 0; normalize && i < n; i++) {
    double ss = 0;
    for (size_t k = 0; k < d; k++) ss += (double)out[i * d + k] * out[i * d + k];
    double inv = ss > 0 ? 1.0 / sqrt(ss) : 0; /* as torch's normalize: a zero vector stays zero */
    for (size_t k = 0; k < d; k++) out[i * d + k] = (float)(out[i * d + k] * inv);
  }
  *vectors = out;
  *dim = d;
  out = NULL;
cleanup:
  for (size_t i = 0; items && i < n; i++) free(items[i].ids);
  free(items);
  free(out);
  return status;
}

float mlxc_embed_cosine(const float* a, const float* b, size_t dim) {
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < dim; i++) {
    ab += (double)a[i] * b[i];
    aa += (double)a[i] * a[i];
    bb += (double)b[i] * b[i];
  }
  return aa > 0 && bb > 0 ? (float)(ab / sqrt(aa * bb)) : 0.0f;
}
