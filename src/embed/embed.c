/* Sentence embeddings: loading a model folder (weights, the encoder for its model_type, the
 * tokenizer, the sentence-transformers modules) and encoding texts in length-sorted padded
 * batches: prompt, truncation, encoder, pooling, Dense modules, normalisation, Matryoshka. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embed/embed.h"
#include "lm/call.h"
#include "lm/model.h"
#include "util/error.h"

mlxc_embed_params mlxc_embed_default_params(void) { return (mlxc_embed_params){.batch_size = 32, .normalize = -1}; }

size_t mlxc_embed_dim(const mlxc_embed_model* m) {
  if (!m) return 0;
  return m->n_dense ? (size_t)m->dense[m->n_dense - 1].out : embed_pooled_dim(m);
}

size_t mlxc_embed_max_length(const mlxc_embed_model* m) { return m ? m->max_seq_length : 0; }
size_t mlxc_embed_prompt_count(const mlxc_embed_model* m) { return m ? m->n_prompts : 0; }
const char* mlxc_embed_prompt_name(const mlxc_embed_model* m, size_t i) {
  return m && i < m->n_prompts ? m->prompts[i].name : NULL;
}
const char* mlxc_embed_default_prompt_name(const mlxc_embed_model* m) { return m ? m->default_prompt_name : NULL; }

const char* mlxc_embed_prompt_text(const mlxc_embed_model* m, const char* name) {
  for (size_t i = 0; m && name && i < m->n_prompts; i++)
    if (!strcmp(m->prompts[i].name, name)) return m->prompts[i].text;
  return NULL;
}

void mlxc_embed_free(mlxc_embed_model* m) {
  if (!m) return;
  if (m->enc.free) m->enc.free(m->enc.impl);
  embed_layout_free(m);
  mlxc_tokenizer_free(m->tok);
  free(m);
}

/* Floating-point weights in the computation's dtype. */
static int convert_floats(mlx_map_string_to_array* tensors, mlx_dtype dtype, mlx_stream s) {
  mlx_map_string_to_array wide = mlx_map_string_to_array_new();
  mlx_map_string_to_array_iterator it = mlx_map_string_to_array_iterator_new(*tensors);
  mlx_array value = mlx_array_new();
  const char* key;
  int status = 0;
  while (!status && mlx_map_string_to_array_iterator_next(&key, &value, it) == 0) {
    mlx_dtype dt = mlx_array_dtype(value);
    if ((dt == MLX_FLOAT16 || dt == MLX_BFLOAT16 || dt == MLX_FLOAT32) && dt != dtype)
      status = mlx_astype(&value, value, dtype, s);
    if (!status) status = mlx_map_string_to_array_insert(wide, key, value);
  }
  mlx_array_free(value);
  mlx_map_string_to_array_iterator_free(it);
  mlx_map_string_to_array_free(*tensors);
  *tensors = wide;
  return status;
}

static int load_encoder(mlxc_embed_model* m, const char* dir, mlx_map_string_to_array tensors) {
  char path[4096];
  snprintf(path, sizeof path, "%s/config.json", dir);
  json_error_t err;
  json_t* cfg = json_load_file(path, 0, &err);
  if (!cfg) return util_error("%s: %s", path, err.text);
  const char* type = json_string_value(json_object_get(cfg, "model_type"));
  static const char* const bert_family[] = {"bert", "roberta", "xlm-roberta", "camembert", "distilbert"};
  static const char* const decoders[] = {"gemma3_text", "qwen3", "qwen2", "llama", "mistral", "gemma2"};
  int status = -1;
  for (size_t i = 0; type && status < 0 && i < sizeof bert_family / sizeof bert_family[0]; i++)
    if (!strcmp(type, bert_family[i])) status = embed_bert_load(&m->enc, cfg, tensors, path);
  for (size_t i = 0; type && status < 0 && i < sizeof decoders / sizeof decoders[0]; i++)
    if (!strcmp(type, decoders[i])) status = embed_decoder_load(&m->enc, dir, cfg, tensors, m->stream);
  if (type && status < 0 && !strcmp(type, "modernbert")) status = embed_modernbert_load(&m->enc, cfg, tensors, path);
  if (status < 0)
    status = util_error("%s: embedding models of type \"%s\" are not supported (supported: bert, roberta, "
                        "xlm-roberta, camembert, distilbert, modernbert, gemma3_text, qwen3, qwen2, llama, mistral)",
                        path, type ? type : "?");
  json_decref(cfg);
  return status;
}

int mlxc_embed_load(mlxc_embed_model** out, const char* dir, mlx_stream stream) {
  return mlxc_embed_load_dtype(out, dir, stream, MLX_FLOAT32);
}

int mlxc_embed_load_dtype(mlxc_embed_model** out, const char* dir, mlx_stream stream, mlx_dtype dtype) {
  if (!out || !dir) return util_error("mlxc_embed_load: null argument");
  *out = NULL;
  if (dtype != MLX_FLOAT32 && dtype != MLX_FLOAT16 && dtype != MLX_BFLOAT16)
    return util_error("mlxc_embed_load_dtype: the computation's dtype must be float32, float16 or bfloat16");
  mlxc_embed_model* m = calloc(1, sizeof *m);
  if (!m) return util_error("out of memory");
  m->stream = stream;
  mlx_map_string_to_array tensors = mlx_map_string_to_array_new();
  int status = 0;
  CALL(lm_weights_load(&tensors, dir, stream));
  CALL(convert_floats(&tensors, dtype, stream));
  CALL(load_encoder(m, dir, tensors));
  CALL(mlxc_tokenizer_load(&m->tok, dir));
  CALL(embed_layout_load(m, dir));
  int32_t pad = mlxc_tokenizer_special_id(m->tok, MLXC_TOKEN_PAD);
  m->pad_id = pad >= 0 ? pad : 0;
  *out = m;
  m = NULL;
cleanup:
  mlx_map_string_to_array_free(tensors);
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

/* Encodes B items and pools them into rows (n, pooled width) at their indices. */
static int run_batch(const mlxc_embed_model* m, const item* batch, size_t B, size_t skip, float* rows) {
  size_t L = 0, D = (size_t)m->enc.hidden, width = embed_pooled_dim(m);
  for (size_t b = 0; b < B; b++) L = batch[b].length > L ? batch[b].length : L;
  if (L == 0) L = 1;
  int32_t* ids = malloc(sizeof(int32_t) * B * L);
  bool* mask = malloc(B * L);
  size_t* lengths = malloc(sizeof(size_t) * B * 2);
  float* pooled = malloc(sizeof(float) * B * (width ? width : 1));
  mlx_array hidden = mlx_array_new();
  embed_batch eb = {mlx_array_new(), mlx_array_new(), lengths, (int)B, (int)L};
  int status = 0;
  if (!ids || !mask || !lengths || !pooled) CALL(util_error("out of memory"));
  for (size_t b = 0; b < B; b++) {
    lengths[b] = batch[b].length;
    lengths[B + b] = skip;
    for (size_t t = 0; t < L; t++) {
      bool real = t < batch[b].length;
      ids[b * L + t] = real ? batch[b].ids[t] : m->pad_id;
      mask[b * L + t] = real;
    }
  }
  int shape[2] = {(int)B, (int)L};
  eb.ids = mlx_array_new_data(ids, shape, 2, MLX_INT32);
  eb.mask = mlx_array_new_data(mask, shape, 2, MLX_BOOL);
  if (!eb.ids.ctx || !eb.mask.ctx) CALL(1);
  CALL(m->enc.forward(m->enc.impl, &eb, &hidden, m->stream)); /* (B, L, D) */
  CALL(mlx_array_eval(hidden));
  const float* h = mlx_array_data_float32(hidden);
  if (!h) CALL(1);
  embed_pool(m, h, lengths, lengths + B, B, L, D, pooled);
  for (size_t b = 0; b < B; b++) memcpy(rows + batch[b].index * width, pooled + b * width, sizeof(float) * width);
cleanup:
  free(ids);
  free(mask);
  free(lengths);
  free(pooled);
  mlx_array_free(eb.ids);
  mlx_array_free(eb.mask);
  mlx_array_free(hidden);
  return status;
}

/* The prompt the parameters ask for: a text, a name, or the model's default; NULL for none. */
static int choose_prompt(const mlxc_embed_model* m, const mlxc_embed_params* p, const char** prompt) {
  *prompt = p->prompt;
  if (*prompt) return 0;
  const char* name = p->prompt_name;
  if (!name && !p->no_default_prompt) name = m->default_prompt_name;
  if (!name) return 0;
  *prompt = mlxc_embed_prompt_text(m, name);
  if (*prompt) return 0;
  char known[1024] = "";
  for (size_t i = 0, o = 0; i < m->n_prompts && o < sizeof known; i++)
    o += (size_t)snprintf(known + o, sizeof known - o, "%s%s", i ? ", " : "", m->prompts[i].name);
  return util_error("the model has no prompt named \"%s\" (it has: %s)", name, m->n_prompts ? known : "none");
}

/* Prompt tokens left out of the pooling when include_prompt is false: as sentence-transformers,
 * the length of the tokenized prompt, less its last token when that is a special one (EOS, SEP). */
static int prompt_skip(const mlxc_embed_model* m, const char* prompt, size_t* skip) {
  *skip = 0;
  if (m->include_prompt || !prompt || !*prompt) return 0;
  char* text = embed_prepare_text(m, prompt, "");
  int32_t* ids = NULL;
  size_t n = 0;
  int status = text ? tokenize(m, text, &ids, &n) : util_error("out of memory");
  if (!status) *skip = n && mlxc_tokenizer_is_special(m->tok, ids[n - 1]) ? n - 1 : n;
  free(text);
  free(ids);
  return status;
}

static void normalize_rows(float* v, size_t n, size_t d) {
  for (size_t i = 0; i < n; i++) {
    double ss = 0;
    for (size_t k = 0; k < d; k++) ss += (double)v[i * d + k] * v[i * d + k];
    double inv = ss > 0 ? 1.0 / sqrt(ss) : 0; /* as torch's normalize: a zero vector stays zero */
    for (size_t k = 0; k < d; k++) v[i * d + k] = (float)(v[i * d + k] * inv);
  }
}

int mlxc_embed_encode(const mlxc_embed_model* m, const char* const* texts, size_t n, mlxc_embed_params p,
                      float** vectors, size_t* dim) {
  if (!m || !vectors || !dim || (n && !texts)) return util_error("mlxc_embed_encode: null argument");
  size_t full = mlxc_embed_dim(m), width = embed_pooled_dim(m);
  size_t d = p.dim ? p.dim : full;
  if (d > full) return util_error("dim %zu is larger than the model's %zu", d, full);
  size_t batch_size = p.batch_size ? p.batch_size : 32, skip = 0;
  const char* prompt = NULL;
  item* items = calloc(n ? n : 1, sizeof *items);
  float* rows = malloc(sizeof(float) * (n ? n : 1) * width);
  int status = 0;
  if (!items || !rows) CALL(util_error("out of memory"));
  CALL(choose_prompt(m, &p, &prompt));
  CALL(prompt_skip(m, prompt, &skip));
  for (size_t i = 0; i < n; i++) {
    if (!texts[i]) CALL(util_error("text %zu is NULL", i));
    items[i].index = i;
    char* text = embed_prepare_text(m, prompt, texts[i]);
    if (!text) CALL(util_error("out of memory"));
    status = tokenize(m, text, &items[i].ids, &items[i].length);
    free(text);
    if (status) goto cleanup;
  }
  /* Similar lengths together: less padding per batch. */
  qsort(items, n, sizeof *items, by_length);
  for (size_t i = 0, count; i < n; i += count) {
    count = n - i < batch_size ? n - i : batch_size;
    /* Long texts in smaller batches: attention masks and scores grow as B L^2. */
    size_t L = items[i + count - 1].length > 1 ? items[i + count - 1].length : 1, most = ((size_t)1 << 28) / (L * L);
    count = count < most ? count : most ? most : 1;
    CALL(run_batch(m, items + i, count, skip, rows));
  }
  CALL(embed_dense_apply(m, &rows, n, &width)); /* (n, full) */
  if (d < full) { /* Matryoshka: the first d values of each row */
    for (size_t i = 0; i < n; i++) memmove(rows + i * d, rows + i * full, sizeof(float) * d);
  }
  if (p.normalize < 0 ? m->normalize : p.normalize > 0) normalize_rows(rows, n, d);
  *vectors = rows;
  *dim = d;
  rows = NULL;
cleanup:
  for (size_t i = 0; items && i < n; i++) free(items[i].ids);
  free(items);
  free(rows);
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
