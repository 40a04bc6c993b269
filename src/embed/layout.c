/* The sentence-transformers folder layout around the encoder: modules.json (Transformer,
 * Pooling, Dense..., Normalize), 1_Pooling/config.json, sentence_bert_config.json
 * (max_seq_length, do_lower_case), config_sentence_transformers.json (prompts,
 * default_prompt_name) and the tokenizer's model_max_length. Both the sentence-transformers 6
 * spellings and the earlier ones are read. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embed/embed.h"
#include "lm/call.h"
#include "util/error.h"

static json_t* load_json(const char* dir, const char* file) {
  char path[8192];
  snprintf(path, sizeof path, "%s/%s", dir, file);
  return json_load_file(path, 0, NULL);
}

static const struct {
  const char *name, *flag;
} pooling_names[POOL_COUNT] = {
    [POOL_CLS] = {"cls", "pooling_mode_cls_token"},
    [POOL_MAX] = {"max", "pooling_mode_max_tokens"},
    [POOL_MEAN] = {"mean", "pooling_mode_mean_tokens"},
    [POOL_MEAN_SQRT_LEN] = {"mean_sqrt_len_tokens", "pooling_mode_mean_sqrt_len_tokens"},
    [POOL_WEIGHTED_MEAN] = {"weightedmean", "pooling_mode_weightedmean_tokens"},
    [POOL_LAST] = {"lasttoken", "pooling_mode_lasttoken"},
};

static void add_pooling(mlxc_embed_model* m, embed_pooling mode) {
  for (int i = 0; i < m->n_pooling; i++)
    if (m->pooling[i] == mode) return;
  m->pooling[m->n_pooling++] = mode;
}

static int pooling_by_name(mlxc_embed_model* m, const char* name, const char* where) {
  for (int i = 0; i < POOL_COUNT; i++)
    if (name && (!strcmp(name, pooling_names[i].name) ||
                 (!strcmp(pooling_names[i].name, "mean_sqrt_len_tokens") && !strcmp(name, "mean_sqrt_len")))) {
      add_pooling(m, (embed_pooling)i);
      return 0;
    }
  return util_error("%s: unsupported pooling mode \"%s\" (supported: cls, max, mean, mean_sqrt_len_tokens, "
                    "weightedmean, lasttoken)",
                    where, name ? name : "?");
}

/* "pooling_mode": a name or a list of names (sentence-transformers 6; several are concatenated in
 * their order), or the pooling_mode_*_tokens flags of earlier versions (in the fixed order). */
static int read_pooling(mlxc_embed_model* m, const char* dir, const char* path) {
  char file[1024], where[1200];
  snprintf(file, sizeof file, "%s/config.json", path);
  snprintf(where, sizeof where, "%s/%s", dir, file);
  json_t* cfg = load_json(dir, file);
  if (!cfg) return util_error("%s: missing or invalid", where);
  int status = 0;
  m->n_pooling = 0;
  json_t* mode = json_object_get(cfg, "pooling_mode");
  if (json_is_string(mode)) {
    CALL(pooling_by_name(m, json_string_value(mode), where));
  } else if (json_is_array(mode)) {
    for (size_t i = 0; i < json_array_size(mode); i++)
      CALL(pooling_by_name(m, json_string_value(json_array_get(mode, i)), where));
  }
  for (int i = 0; i < POOL_COUNT; i++)
    if (json_is_true(json_object_get(cfg, pooling_names[i].flag))) add_pooling(m, (embed_pooling)i);
  if (!m->n_pooling) CALL(util_error("%s: no pooling mode set", where));
  m->include_prompt = !json_is_false(json_object_get(cfg, "include_prompt"));
cleanup:
  json_decref(cfg);
  return status;
}

static int add_dense(mlxc_embed_model* m, const char* dir, const char* path) {
  embed_dense* grown = realloc(m->dense, (m->n_dense + 1) * sizeof *grown);
  if (!grown) return util_error("out of memory");
  m->dense = grown;
  memset(&m->dense[m->n_dense], 0, sizeof *m->dense);
  m->dense[m->n_dense].weight = mlx_array_new();
  m->dense[m->n_dense].bias = mlx_array_new();
  m->n_dense++;
  return embed_dense_load(&m->dense[m->n_dense - 1], dir, path, m->stream);
}

/* Without modules.json: a plain transformers folder, mean pooling, no normalization. */
static int read_modules(mlxc_embed_model* m, const char* dir) {
  add_pooling(m, POOL_MEAN);
  m->include_prompt = true;
  json_t* modules = load_json(dir, "modules.json");
  if (!modules) return 0;
  int status = 0;
  size_t i;
  json_t* mod;
  json_array_foreach(modules, i, mod) {
    const char* type = json_string_value(json_object_get(mod, "type"));
    const char* path = json_string_value(json_object_get(mod, "path"));
    if (!type) continue;
    const char* last = strrchr(type, '.');
    last = last ? last + 1 : type;
    if (!strcmp(last, "Pooling")) {
      status = read_pooling(m, dir, path && *path ? path : "1_Pooling");
    } else if (!strcmp(last, "Dense")) {
      status = path && *path ? add_dense(m, dir, path) : util_error("%s/modules.json: Dense without a path", dir);
    } else if (!strcmp(last, "Normalize")) {
      m->normalize = true;
    } else if (strcmp(last, "Transformer")) {
      status = util_error("%s/modules.json: module %s is not supported (Transformer, Pooling, Dense, Normalize)",
                          dir, type);
    } else if (path && *path) {
      status = util_error("%s/modules.json: a Transformer in a subfolder (%s) is not supported", dir, path);
    }
    if (status) break;
  }
  json_decref(modules);
  return status;
}

static int read_prompts(mlxc_embed_model* m, const char* dir) {
  json_t* cfg = load_json(dir, "config_sentence_transformers.json");
  json_t* prompts = json_object_get(cfg, "prompts");
  int status = 0;
  const char* key;
  json_t* value;
  size_t n = json_is_object(prompts) ? json_object_size(prompts) : 0;
  m->prompts = calloc(n ? n : 1, sizeof *m->prompts);
  if (!m->prompts) CALL(util_error("out of memory"));
  json_object_foreach(prompts, key, value) {
    if (!json_is_string(value)) continue;
    embed_prompt* p = &m->prompts[m->n_prompts++];
    p->name = strdup(key);
    p->text = strdup(json_string_value(value));
    if (!p->name || !p->text) CALL(util_error("out of memory"));
  }
  const char* def = json_string_value(json_object_get(cfg, "default_prompt_name"));
  if (def && !(m->default_prompt_name = strdup(def))) CALL(util_error("out of memory"));
cleanup:
  json_decref(cfg);
  return status;
}

/* max_seq_length: sentence_bert_config.json, else the tokenizer's model_max_length (where
 * sentence-transformers 6 keeps it), capped by the encoder's positions. */
static void read_lengths(mlxc_embed_model* m, const char* dir) {
  size_t limit = (size_t)m->enc.max_positions;
  m->max_seq_length = limit;
  json_t* st = load_json(dir, "sentence_bert_config.json");
  json_t* v = json_object_get(st, "max_seq_length");
  m->lower_case = json_is_true(json_object_get(st, "do_lower_case"));
  if (json_is_integer(v) && json_integer_value(v) > 0) {
    m->max_seq_length = (size_t)json_integer_value(v);
  } else {
    json_t* tc = load_json(dir, "tokenizer_config.json");
    json_t* ml = json_object_get(tc, "model_max_length");
    if (json_is_integer(ml) && json_integer_value(ml) > 0 && (size_t)json_integer_value(ml) < limit)
      m->max_seq_length = (size_t)json_integer_value(ml);
    json_decref(tc);
  }
  json_decref(st);
  if (m->max_seq_length > limit) m->max_seq_length = limit;
}

int embed_layout_load(mlxc_embed_model* m, const char* dir) {
  int status = read_modules(m, dir);
  if (!status) status = read_prompts(m, dir);
  if (!status) read_lengths(m, dir);
  if (!status && m->n_dense && m->dense[0].in != (int)embed_pooled_dim(m))
    status = util_error("%s: the first Dense module takes %d features; the pooling gives %zu", dir, m->dense[0].in,
                        embed_pooled_dim(m));
  for (size_t i = 1; !status && i < m->n_dense; i++)
    if (m->dense[i].in != m->dense[i - 1].out)
      status = util_error("%s: Dense module %zu takes %d features; the one before gives %d", dir, i, m->dense[i].in,
                          m->dense[i - 1].out);
  return status;
}

void embed_layout_free(mlxc_embed_model* m) {
  for (size_t i = 0; i < m->n_dense; i++) embed_dense_free(&m->dense[i]);
  free(m->dense);
  for (size_t i = 0; i < m->n_prompts; i++) {
    free(m->prompts[i].name);
    free(m->prompts[i].text);
  }
  free(m->prompts);
  free(m->default_prompt_name);
}
