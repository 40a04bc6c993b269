/* Prompt-cache files in mlx-lm's layout (mlx_lm/models/cache.py save_prompt_cache): safetensors
 * whose arrays are the flattened list of per-layer states ("<layer>.0" keys, "<layer>.1" values;
 * quantized: "<layer>.<0|1>.<0|1|2>") and whose metadata is the flattened
 * [meta_states, user metadata, class names]: "0.<layer>[.<i>]", "2.<layer>". */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lm/call.h"
#include "lm/model.h"
#include "util/error.h"

static int put_int(mlx_map_string_to_string meta, const char* key, int value) {
  char text[32];
  snprintf(text, sizeof text, "%d", value);
  return mlx_map_string_to_string_insert(meta, key, text);
}

/* Adds layer i's state arrays and metadata. */
static int save_layer(const lm_kv_cache* c, int i, mlx_map_string_to_array arrays, mlx_map_string_to_string meta,
                      int offset, mlx_stream s) {
  int n_parts = c->quantized ? 6 : 2, first = lm_cache_first_saved_slot(c, offset), status = 0;
  char key[64];
  mlx_array filled = mlx_array_new();
  for (int p = 0; p < n_parts; p++) {
    int begin[4] = {0, 0, first, 0};
    int end[4] = {1, mlx_array_dim(c->parts[p], 1), c->length, mlx_array_dim(c->parts[p], 3)};
    CALL(mlx_slice(&filled, c->parts[p], begin, 4, end, 4, NULL, 0, s));
    if (c->quantized)
      snprintf(key, sizeof key, "%d.%d.%d", i, p / 3, p % 3);
    else
      snprintf(key, sizeof key, "%d.%d", i, p);
    CALL(mlx_map_string_to_array_insert(arrays, key, filled));
  }
  const char* class_name = "KVCache";
  if (c->quantized) {
    class_name = "QuantizedKVCache";
    int values[3] = {offset, c->options.group_size, c->options.bits}; /* offset, group_size, bits */
    for (int k = 0; k < 3; k++) {
      snprintf(key, sizeof key, "0.%d.%d", i, k);
      CALL(put_int(meta, key, values[k]));
    }
  } else if (c->options.max_size > 0 || c->evicted) {
    class_name = "RotatingKVCache";
    int values[4] = {c->options.keep, c->options.max_size, offset, lm_cache_next_slot(c) - first}; /* keep, max_size, offset, _idx */
    for (int k = 0; k < 4; k++) {
      snprintf(key, sizeof key, "0.%d.%d", i, k);
      CALL(put_int(meta, key, values[k]));
    }
  } else {
    snprintf(key, sizeof key, "0.%d", i);
    CALL(mlx_map_string_to_string_insert(meta, key, ""));
  }
  snprintf(key, sizeof key, "2.%d", i);
  CALL(mlx_map_string_to_string_insert(meta, key, class_name));
cleanup:
  mlx_array_free(filled);
  return status;
}

static bool has_conv_layers(const lm_config* c) {
  for (int i = 0; i < c->num_layers; i++)
    if (c->layer_kinds[i] == LAYER_CONV) return true;
  return false;
}

/* What a prompt cache must come from: the shapes, the weight size and a hash of the first
 * embedding row (its values as float32). Stored as the user metadata "mlxc_model". */
static int model_fingerprint(const mlxc_lm_model* m, char* out, size_t size) {
  const lm_config* c = &m->config;
  mlx_array row = mlx_array_new();
  int begin[2] = {0, 0}, end[2] = {1, mlx_array_dim(m->embed.weight, 1)}, status = 0;
  uint64_t hash = 1469598103934665603ull; /* FNV-1a */
  CALL(mlx_slice(&row, m->embed.weight, begin, 2, end, 2, NULL, 0, m->stream));
  CALL(mlx_astype(&row, row, MLX_FLOAT32, m->stream));
  CALL(mlx_array_eval(row));
  const unsigned char* bytes = (const unsigned char*)mlx_array_data_float32(row);
  for (size_t i = 0; bytes && i < mlx_array_size(row) * sizeof(float); i++) hash = (hash ^ bytes[i]) * 1099511628211ull;
  snprintf(out, size, "%s layers=%d hidden=%d heads=%d/%d head_dim=%d vocab=%d weight_bytes=%zu embed_hash=%016llx",
           c->model_type, c->num_layers, c->hidden_size, c->num_heads, c->num_kv_heads, c->head_dim, c->vocab_size,
           m->weight_bytes, (unsigned long long)hash);
cleanup:
  mlx_array_free(row);
  return status;
}

int mlxc_lm_session_save_metadata(const mlxc_lm_session* s, const char* path, mlx_map_string_to_string metadata) {
  if (!s || !path) return util_error("mlxc_lm_session_save: null argument");
  const lm_config* c = &s->model->config;
  if (has_conv_layers(c)) return util_error("prompt caches of models with convolution layers are not supported");
  if (s->offset == 0) return util_error("the session is empty: there is no prompt cache to save");
  mlx_map_string_to_array arrays = mlx_map_string_to_array_new();
  mlx_map_string_to_string meta = mlx_map_string_to_string_new();
  int status = 0;
  char key[512], fingerprint[512];
  for (int i = 0; i < c->num_layers; i++) CALL(save_layer(&s->caches[i], i, arrays, meta, s->offset, s->model->stream));
  if (metadata.ctx) { /* mlx-lm's user metadata: "1.<key>" */
    mlx_map_string_to_string_iterator it = mlx_map_string_to_string_iterator_new(metadata);
    const char *k, *v;
    while (!status && mlx_map_string_to_string_iterator_next(&k, &v, it) == 0) {
      snprintf(key, sizeof key, "1.%s", k);
      status = mlx_map_string_to_string_insert(meta, key, v);
    }
    mlx_map_string_to_string_iterator_free(it);
    if (status) goto cleanup;
    CALL(model_fingerprint(s->model, fingerprint, sizeof fingerprint));
    CALL(mlx_map_string_to_string_insert(meta, "1.mlxc_model", fingerprint));
  }
  CALL(mlx_save_safetensors(path, arrays, meta));
cleanup:
  mlx_map_string_to_array_free(arrays);
  mlx_map_string_to_string_free(meta);
  return status;
}

int mlxc_lm_session_save(const mlxc_lm_session* s, const char* path) {
  mlx_map_string_to_string none = {NULL};
  return mlxc_lm_session_save_metadata(s, path, none);
}

/* The integer metadata "0.<layer>.<k>", or -1 when absent or malformed. */
static int get_int(mlx_map_string_to_string meta, int layer, int k) {
  char key[64];
  const char* text = NULL;
  snprintf(key, sizeof key, "0.%d.%d", layer, k);
  if (mlx_map_string_to_string_get(&text, meta, key) || !text) return -1;
  char* end;
  long value = strtol(text, &end, 10);
  return *end || end == text || value < 0 || value > 1 << 30 ? -1 : (int)value;
}

/* Reads layer i's state into parts (n_parts 2 or 6), its options, offset and next slot. */
static int read_layer(mlx_map_string_to_array arrays, mlx_map_string_to_string meta, const lm_config* c, int i,
                      mlx_array* parts, int* n_parts, lm_cache_options* o, int* offset, int* next) {
  char key[64];
  const char* class_name = NULL;
  snprintf(key, sizeof key, "2.%d", i);
  if (mlx_map_string_to_string_get(&class_name, meta, key) || !class_name)
    return util_error("not a prompt cache for this model: no cache class for layer %d of %d", i, c->num_layers);
  bool quantized = !strcmp(class_name, "QuantizedKVCache"), rotating = !strcmp(class_name, "RotatingKVCache");
  if (!quantized && !rotating && strcmp(class_name, "KVCache"))
    return util_error("layer %d: cache class %s is not supported", i, class_name);
  *n_parts = quantized ? 6 : 2;
  for (int p = 0; p < *n_parts; p++) {
    if (quantized)
      snprintf(key, sizeof key, "%d.%d.%d", i, p / 3, p % 3);
    else
      snprintf(key, sizeof key, "%d.%d", i, p);
    if (mlx_map_string_to_array_get(&parts[p], arrays, key) || mlx_array_ndim(parts[p]) != 4 ||
        mlx_array_dim(parts[p], 1) != c->num_kv_heads || mlx_array_dim(parts[p], 2) != mlx_array_dim(parts[0], 2))
      return util_error("layer %d: array %s is missing or not (1, %d, length, d)", i, key, c->num_kv_heads);
  }
  int length = mlx_array_dim(parts[0], 2);
  if (!quantized && (mlx_array_dim(parts[0], 3) != c->head_dim || mlx_array_dim(parts[1], 3) != c->head_dim))
    return util_error("layer %d: the cached head dimension is not the model's %d", i, c->head_dim);
  *offset = length;
  *next = length;
  if (quantized) {
    *offset = get_int(meta, i, 0);
    o->group_size = get_int(meta, i, 1);
    o->bits = get_int(meta, i, 2);
    if (*offset != length || (o->bits != 4 && o->bits != 8) || o->group_size <= 0)
      return util_error("layer %d: bad QuantizedKVCache metadata", i);
  } else if (rotating) {
    o->keep = get_int(meta, i, 0);
    o->max_size = get_int(meta, i, 1);
    *offset = get_int(meta, i, 2);
    *next = get_int(meta, i, 3);
    if (o->keep < 0 || o->max_size <= o->keep || *offset < length || *next < 0 || *next > length)
      return util_error("layer %d: bad RotatingKVCache metadata", i);
  }
  return 0;
}

/* The number of layers: the class names "2.<layer>". */
static int count_classes(mlx_map_string_to_string meta) {
  mlx_map_string_to_string_iterator it = mlx_map_string_to_string_iterator_new(meta);
  const char *key, *value;
  int n = 0;
  while (mlx_map_string_to_string_iterator_next(&key, &value, it) == 0) n += !strncmp(key, "2.", 2);
  mlx_map_string_to_string_iterator_free(it);
  return n;
}

/* Copies the "1.<key>" entries into *user (as "<key>") and checks "1.mlxc_model" when present. */
static int read_user_metadata(const mlxc_lm_model* m, mlx_map_string_to_string meta, mlx_map_string_to_string* user) {
  mlx_map_string_to_string_iterator it = mlx_map_string_to_string_iterator_new(meta);
  const char *key, *value;
  int status = 0;
  char fingerprint[512];
  while (!status && mlx_map_string_to_string_iterator_next(&key, &value, it) == 0) {
    if (strncmp(key, "1.", 2)) continue;
    if (!strcmp(key, "1.mlxc_model")) {
      status = model_fingerprint(m, fingerprint, sizeof fingerprint);
      if (!status && strcmp(value, fingerprint))
        status = util_error("the prompt cache comes from another model (%s; this one is %s)", value, fingerprint);
    }
    if (!status && user) status = mlx_map_string_to_string_insert(*user, key + 2, value);
  }
  mlx_map_string_to_string_iterator_free(it);
  return status;
}

int mlxc_lm_session_load_metadata(mlxc_lm_session* s, const char* path, mlx_map_string_to_string* metadata) {
  if (!s || !path) return util_error("mlxc_lm_session_load: null argument");
  const lm_config* c = &s->model->config;
  if (has_conv_layers(c)) return util_error("prompt caches of models with convolution layers are not supported");
  mlx_map_string_to_array arrays = mlx_map_string_to_array_new();
  mlx_map_string_to_string meta = mlx_map_string_to_string_new();
  mlx_array parts[6];
  for (int p = 0; p < 6; p++) parts[p] = mlx_array_new();
  int status = 0, offset = -1;
  CALL(mlx_load_safetensors(&arrays, &meta, path, s->model->stream));
  if (count_classes(meta) != c->num_layers)
    CALL(util_error("not a prompt cache for this model: the file has %d layers, the model %d", count_classes(meta),
                    c->num_layers));
  if (metadata && !metadata->ctx) *metadata = mlx_map_string_to_string_new();
  CALL(read_user_metadata(s->model, meta, metadata));
  mlxc_lm_session_reset(s);
  for (int i = 0; i < c->num_layers; i++) {
    lm_cache_options o = s->caches[i].options;
    int n_parts = 0, layer_offset = 0, next = 0;
    CALL(read_layer(arrays, meta, c, i, parts, &n_parts, &o, &layer_offset, &next));
    if (offset >= 0 && layer_offset != offset)
      CALL(util_error("layer %d holds %d positions, layer 0 %d", i, layer_offset, offset));
    offset = layer_offset;
    s->caches[i].options = o;
    CALL(lm_cache_restore(&s->caches[i], parts, n_parts, layer_offset, next));
  }
  s->offset = offset;
cleanup:
  if (status) mlxc_lm_session_reset(s);
  for (int p = 0; p < 6; p++) mlx_array_free(parts[p]);
  mlx_map_string_to_array_free(arrays);
  mlx_map_string_to_string_free(meta);
  return status;
}

int mlxc_lm_session_load(mlxc_lm_session* s, const char* path) { return mlxc_lm_session_load_metadata(s, path, NULL); }
