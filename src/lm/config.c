/* Reading a model's config.json into lm_config: the common keys of Hugging Face configs, both
 * the transformers 4 spelling (rope_theta, rope_scaling) and the 5 one (rope_parameters, possibly
 * per layer type), then the architecture's own hook. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "lm/model.h"
#include "util/error.h"

static int get_int(const json_t* obj, const char* key, int fallback) {
  json_t* v = json_object_get(obj, key);
  if (json_is_integer(v)) return (int)json_integer_value(v);
  if (json_is_real(v)) return (int)json_real_value(v);
  return fallback;
}

static float get_float(const json_t* obj, const char* key, float fallback) {
  json_t* v = json_object_get(obj, key);
  return json_is_number(v) ? (float)json_number_value(v) : fallback;
}

static bool get_bool(const json_t* obj, const char* key, bool fallback) {
  json_t* v = json_object_get(obj, key);
  return json_is_boolean(v) ? json_is_true(v) : fallback;
}

static const char* get_string(const json_t* obj, const char* key) {
  json_t* v = json_object_get(obj, key);
  return json_is_string(v) ? json_string_value(v) : NULL;
}

/* RoPE settings from one rope_parameters / rope_scaling object. */
static int read_rope(lm_config* c, const json_t* rope, const char* path) {
  if (!json_is_object(rope)) return 0;
  c->rope_theta = get_float(rope, "rope_theta", c->rope_theta);
  c->partial_rotary_factor = get_float(rope, "partial_rotary_factor", c->partial_rotary_factor);
  const char* type = get_string(rope, "rope_type");
  if (!type) type = get_string(rope, "type");
  if (!type || !strcmp(type, "default")) {
    c->rope_type = ROPE_DEFAULT;
  } else if (!strcmp(type, "linear")) {
    c->rope_type = ROPE_LINEAR;
  } else if (!strcmp(type, "dynamic")) {
    c->rope_type = ROPE_DYNAMIC;
  } else if (!strcmp(type, "llama3")) {
    c->rope_type = ROPE_LLAMA3;
  } else if (!strcmp(type, "yarn")) {
    c->rope_type = ROPE_YARN;
  } else {
    return util_error("%s: unsupported rope type \"%s\" (supported: default, linear, dynamic, llama3, yarn)", path, type);
  }
  c->rope_factor = get_float(rope, "factor", 1.0f);
  c->rope_low_freq_factor = get_float(rope, "low_freq_factor", 1.0f);
  c->rope_high_freq_factor = get_float(rope, "high_freq_factor", 4.0f);
  c->rope_original_max_positions = get_int(rope, "original_max_position_embeddings", c->max_position_embeddings);
  c->rope_beta_fast = get_float(rope, "beta_fast", 32.0f);
  c->rope_beta_slow = get_float(rope, "beta_slow", 1.0f);
  c->rope_attention_factor = get_float(rope, "attention_factor", 0.0f);
  c->rope_mscale = get_float(rope, "mscale", 0.0f);
  c->rope_mscale_all_dim = get_float(rope, "mscale_all_dim", 0.0f);
  c->rope_truncate = get_bool(rope, "truncate", true);
  return 0;
}

static int read_common(lm_config* c, const json_t* root, const char* path) {
  c->vocab_size = get_int(root, "vocab_size", 0);
  c->hidden_size = get_int(root, "hidden_size", 0);
  c->intermediate_size = get_int(root, "intermediate_size", 0);
  c->num_layers = get_int(root, "num_hidden_layers", 0);
  c->num_heads = get_int(root, "num_attention_heads", 0);
  c->num_kv_heads = get_int(root, "num_key_value_heads", c->num_heads);
  if (c->vocab_size <= 0 || c->hidden_size <= 0 || c->num_layers <= 0 || c->num_heads <= 0 || c->num_kv_heads <= 0)
    return util_error("%s: vocab_size, hidden_size, num_hidden_layers, num_attention_heads must be positive", path);
  if (c->num_layers > LM_MAX_LAYERS) return util_error("%s: at most %d layers are supported", path, LM_MAX_LAYERS);
  if (c->num_heads % c->num_kv_heads)
    return util_error("%s: num_attention_heads (%d) must be a multiple of num_key_value_heads (%d)", path, c->num_heads, c->num_kv_heads);
  c->head_dim = get_int(root, "head_dim", c->hidden_size / c->num_heads);
  c->norm_eps = get_float(root, "rms_norm_eps", get_float(root, "norm_eps", get_float(root, "layer_norm_eps", 1e-6f)));
  c->max_position_embeddings = get_int(root, "max_position_embeddings", 4096);
  c->rope_theta = get_float(root, "rope_theta", 10000.0f);
  c->rope_local_theta = get_float(root, "rope_local_base_freq", c->rope_theta);
  c->partial_rotary_factor = get_float(root, "partial_rotary_factor", 1.0f);
  c->rope_factor = 1.0f;
  c->tie_word_embeddings = get_bool(root, "tie_word_embeddings", false);
  c->attention_bias = get_bool(root, "attention_bias", false);
  c->sliding_window = get_int(root, "sliding_window", 0);
  c->attn_logit_softcapping = get_float(root, "attn_logit_softcapping", 0.0f);
  c->final_logit_softcapping = get_float(root, "final_logit_softcapping", 0.0f);
  c->query_pre_attn_scalar = get_float(root, "query_pre_attn_scalar", 0.0f);
  const char* act = get_string(root, "hidden_activation");
  if (!act) act = get_string(root, "hidden_act");
  c->activation = act && strncmp(act, "gelu", 4) == 0 ? ACT_GELU_TANH : ACT_SILU;

  /* transformers 5: rope_parameters, either flat or one object per layer type. */
  json_t* rope = json_object_get(root, "rope_parameters");
  if (!rope) rope = json_object_get(root, "rope_scaling");
  if (json_object_get(rope, "full_attention")) {
    if (read_rope(c, json_object_get(rope, "full_attention"), path)) return 1;
    c->rope_local_theta = get_float(json_object_get(rope, "sliding_attention"), "rope_theta", c->rope_local_theta);
  } else if (read_rope(c, rope, path)) {
    return 1;
  }

  /* Dynamic NTK scaling stretches RoPE past max_position_embeddings as the sequence grows: that
   * length becomes the scaling threshold (transformers 5.17 measures against it even when
   * original_max_position_embeddings is given) and the context is no longer bounded by it. */
  if (c->rope_type == ROPE_DYNAMIC) {
    c->rope_original_max_positions = c->max_position_embeddings;
    c->max_position_embeddings = 1 << 30;
  }

  /* Layer kinds: explicit layer_types, else every layer slides when a window is set. */
  json_t* types = json_object_get(root, "layer_types");
  for (int i = 0; i < c->num_layers; i++) {
    const char* t = json_string_value(json_array_get(types, (size_t)i));
    if (t && !strcmp(t, "sliding_attention"))
      c->layer_kinds[i] = LAYER_SLIDING_ATTENTION;
    else if (t && !strcmp(t, "conv"))
      c->layer_kinds[i] = LAYER_CONV;
    else if (t)
      c->layer_kinds[i] = LAYER_FULL_ATTENTION;
    else
      c->layer_kinds[i] = c->sliding_window > 0 ? LAYER_SLIDING_ATTENTION : LAYER_FULL_ATTENTION;
  }
  if (types && json_array_size(types) != (size_t)c->num_layers)
    return util_error("%s: layer_types has %zu entries for %d layers", path, json_array_size(types), c->num_layers);

  json_t* q = json_object_get(root, "quantization");
  if (!q) q = json_object_get(root, "quantization_config");
  if (json_is_object(q)) {
    c->quant_group_size = get_int(q, "group_size", 64);
    c->quant_bits = get_int(q, "bits", 4);
  }
  return 0;
}

int lm_config_load(lm_config* config, const char* dir, const lm_arch** arch) {
  char path[4096];
  snprintf(path, sizeof path, "%s/config.json", dir);
  json_error_t err;
  json_t* root = json_load_file(path, 0, &err);
  if (!root) return util_error("%s: %s (line %d, column %d)", path, err.text, err.line, err.column);
  int status = 0;
  memset(config, 0, sizeof *config);
  const char* type = get_string(root, "model_type");
  if (!type) {
    status = util_error("%s: no model_type", path);
  } else if (!(*arch = lm_arch_find(type))) {
    status = util_error("%s: unsupported model_type \"%s\" (supported: %s)", path, type, mlxc_lm_supported_types());
  } else {
    snprintf(config->model_type, sizeof config->model_type, "%s", type);
    status = read_common(config, root, path);
    if (!status && (*arch)->configure) status = (*arch)->configure(config, root);
  }
  json_decref(root);
  return status;
}
