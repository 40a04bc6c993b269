/* Loading a model folder's safetensors (one file, or shards listed by
 * model.safetensors.index.json) and binding the tensors to the decoder's layers. */
#include <dirent.h>
#include <stdlib.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "lm/call.h"
#include "lm/model.h"
#include "util/error.h"

static int merge_file(mlx_map_string_to_array tensors, const char* path, mlx_stream s) {
  mlx_map_string_to_array part = mlx_map_string_to_array_new();
  mlx_map_string_to_string meta = mlx_map_string_to_string_new();
  int status = mlx_load_safetensors(&part, &meta, path, s);
  if (!status) {
    mlx_map_string_to_array_iterator it = mlx_map_string_to_array_iterator_new(part);
    const char* key;
    mlx_array value = mlx_array_new();
    while (!status && mlx_map_string_to_array_iterator_next(&key, &value, it) == 0)
      status = mlx_map_string_to_array_insert(tensors, key, value);
    mlx_array_free(value);
    mlx_map_string_to_array_iterator_free(it);
  }
  mlx_map_string_to_array_free(part);
  mlx_map_string_to_string_free(meta);
  return status;
}

/* The shard files named by an index, each once. */
static int load_index(mlx_map_string_to_array tensors, const char* dir, const char* index_path, mlx_stream s) {
  json_error_t err;
  json_t* root = json_load_file(index_path, 0, &err);
  if (!root) return util_error("%s: %s (line %d)", index_path, err.text, err.line);
  json_t* map = json_object_get(root, "weight_map");
  int status = json_is_object(map) ? 0 : util_error("%s: no weight_map object", index_path);
  json_t* seen = json_object();
  const char* key;
  json_t* file;
  json_object_foreach(map, key, file) {
    if (status) break;
    const char* name = json_string_value(file);
    if (!name || strchr(name, '/')) {
      status = util_error("%s: bad shard name for tensor %s", index_path, key);
      break;
    }
    if (json_object_get(seen, name)) continue;
    json_object_set_new(seen, name, json_true());
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    status = merge_file(tensors, path, s);
  }
  json_decref(seen);
  json_decref(root);
  return status;
}

int lm_weights_load(mlx_map_string_to_array* tensors, const char* dir, mlx_stream s) {
  char path[4096];
  snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
  FILE* f = fopen(path, "r");
  if (f) {
    fclose(f);
    return load_index(*tensors, dir, path, s);
  }
  DIR* d = opendir(dir);
  if (!d) return util_error("cannot open model folder %s", dir);
  int status = 0, found = 0;
  struct dirent* e;
  while (!status && (e = readdir(d))) {
    size_t n = strlen(e->d_name);
    if (n < 12 || strcmp(e->d_name + n - 12, ".safetensors")) continue;
    if (!strncmp(e->d_name, "reference", 9)) continue; /* test fixtures keep references beside weights */
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    status = merge_file(*tensors, path, s);
    found++;
  }
  closedir(d);
  if (!status && !found) status = util_error("no .safetensors weights in %s", dir);
  return status;
}

/* ---- binding ---- */

/* The names of all tensors, as a set (the map's get would report a missing key as an error). */
static json_t* tensor_names(mlx_map_string_to_array tensors) {
  json_t* names = json_object();
  mlx_map_string_to_array_iterator it = mlx_map_string_to_array_iterator_new(tensors);
  const char* key;
  mlx_array value = mlx_array_new();
  while (names && mlx_map_string_to_array_iterator_next(&key, &value, it) == 0) json_object_set_new(names, key, json_true());
  mlx_array_free(value);
  mlx_map_string_to_array_iterator_free(it);
  return names;
}

static bool has(const mlxc_lm_model* m, const char* name) {
  return json_object_get(m->tensor_names, name) != NULL;
}

/* Fetches `name` into *out; a missing required tensor is an error naming it. */
int lm_bind_tensor(mlxc_lm_model* m, const char* name, bool required, mlx_array* out) {
  if (!has(m, name)) return required ? util_error("missing tensor %s", name) : 0;
  int status = mlx_map_string_to_array_get(out, m->tensors, name);
  if (!status) m->weight_bytes += mlx_array_nbytes(*out);
  return status;
}

static int expect_shape(mlx_array a, const char* name, int rows, int cols) {
  if (mlx_array_ndim(a) != 2 || (rows && mlx_array_dim(a, 0) != rows) || (cols && mlx_array_dim(a, 1) != cols))
    return util_error("tensor %s has shape (%d, %d); expected (%d, %d)", name, mlx_array_dim(a, 0),
                      mlx_array_dim(a, 1), rows, cols);
  return 0;
}

/* A linear layer `prefix` mapping `in` to `out` features (0 = not checked). */
int lm_bind_linear(mlxc_lm_model* m, lm_linear* l, const char* prefix, int out, int in, bool required) {
  char name[512];
  int status = 0;
  snprintf(name, sizeof name, "%s.weight", prefix);
  if (!required && !has(m, name)) return 0;
  CALL(lm_bind_tensor(m, name, true, &l->weight));
  snprintf(name, sizeof name, "%s.scales", prefix);
  if (has(m, name)) {
    l->quantized = true;
    l->group_size = m->config.quant_group_size ? m->config.quant_group_size : 64;
    l->bits = m->config.quant_bits ? m->config.quant_bits : 4;
    if (m->config.quant_bits < 0 && in) { /* GGUF: bits from the packed width */
      int cols = mlx_array_ndim(l->weight) == 2 ? mlx_array_dim(l->weight, 1) : 0;
      l->bits = cols * 32 % in == 0 ? cols * 32 / in : 0;
      if (l->bits != 4 && l->bits != 8) CALL(util_error("tensor %s.weight: %d packed columns do not hold %d inputs", prefix, cols, in));
    }
    CALL(lm_bind_tensor(m, name, true, &l->scales));
    snprintf(name, sizeof name, "%s.biases", prefix);
    CALL(lm_bind_tensor(m, name, false, &l->biases));
    snprintf(name, sizeof name, "%s.weight", prefix);
    CALL(expect_shape(l->weight, name, out, in ? in * l->bits / 32 : 0));
  } else {
    snprintf(name, sizeof name, "%s.weight", prefix);
    CALL(expect_shape(l->weight, name, out, in));
  }
  snprintf(name, sizeof name, "%s.bias", prefix);
  CALL(lm_bind_tensor(m, name, false, &l->bias));
cleanup:
  return status;
}

int lm_bind_norm(mlxc_lm_model* m, lm_norm* n, const char* name, int dim, bool required) {
  int status = lm_bind_tensor(m, name, required, &n->weight);
  if (status || !n->weight.ctx) return status;
  if (mlx_array_ndim(n->weight) != 1 || mlx_array_dim(n->weight, 0) != dim)
    return util_error("tensor %s has %d elements; expected %d", name, mlx_array_dim(n->weight, 0), dim);
  if (m->arch->gemma_norms) {
    /* Gemma scales by (1 + w): fold the 1 in once, here. */
    mlx_array one = mlx_array_new_float(1.0f);
    mlx_array one_typed = mlx_array_new();
    status = mlx_astype(&one_typed, one, mlx_array_dtype(n->weight), m->stream);
    if (!status) status = mlx_add(&n->weight, n->weight, one_typed, m->stream);
    if (!status) status = mlx_array_eval(n->weight);
    mlx_array_free(one);
    mlx_array_free(one_typed);
  }
  return status;
}

/* The router and experts of a mixture-of-experts layer (prefix "model.layers.N"). */
static int bind_experts(mlxc_lm_model* m, lm_layer* L, const char* prefix) {
  const lm_config* c = &m->config;
  int E = c->num_experts, F = c->moe_intermediate_size, D = c->hidden_size;
  char name[256];
  int status = 0;
  L->expert_gate = calloc((size_t)E, sizeof *L->expert_gate);
  L->expert_up = calloc((size_t)E, sizeof *L->expert_up);
  L->expert_down = calloc((size_t)E, sizeof *L->expert_down);
  if (!L->expert_gate || !L->expert_up || !L->expert_down) return util_error("out of memory");
  snprintf(name, sizeof name, "%s.mlp.gate", prefix);
  CALL(lm_bind_linear(m, &L->router, name, E, D, true));
  for (int e = 0; e < E; e++) {
    snprintf(name, sizeof name, "%s.mlp.experts.%d.gate_proj", prefix, e);
    CALL(lm_bind_linear(m, &L->expert_gate[e], name, F, D, true));
    snprintf(name, sizeof name, "%s.mlp.experts.%d.up_proj", prefix, e);
    CALL(lm_bind_linear(m, &L->expert_up[e], name, F, D, true));
    snprintf(name, sizeof name, "%s.mlp.experts.%d.down_proj", prefix, e);
    CALL(lm_bind_linear(m, &L->expert_down[e], name, D, F, true));
  }
cleanup:
  return status;
}

int lm_model_bind(mlxc_lm_model* m) {
  const lm_config* c = &m->config;
  int H = c->num_heads, K = c->num_kv_heads, hd = c->head_dim, D = c->hidden_size;
  int status = 0;
  char p[64], q[256];
  json_t* names = tensor_names(m->tensors);
  if (!names) return util_error("out of memory");
  m->tensor_names = names;
  if (m->arch->bind) {
    status = m->arch->bind(m);
    goto cleanup;
  }
  CALL(lm_bind_linear(m, &m->embed, "model.embed_tokens", c->vocab_size, D, true));
  CALL(lm_bind_norm(m, &m->final_norm, "model.norm.weight", D, true));
  /* Absent when tied (and some checkpoints omit a tied head without saying so): the
   * embedding then serves as the output layer. */
  CALL(lm_bind_linear(m, &m->lm_head, "lm_head", c->vocab_size, D, false));
  for (int i = 0; i < c->num_layers; i++) {
    lm_layer* L = &m->layers[i];
    snprintf(p, sizeof p, "model.layers.%d", i);
#define NAME(fmt) (snprintf(q, sizeof q, "%s." fmt, p), q)
    CALL(lm_bind_norm(m, &L->input_norm, NAME("input_layernorm.weight"), D, true));
    if (m->arch->gemma_norms) {
      CALL(lm_bind_norm(m, &L->post_attention_norm, NAME("post_attention_layernorm.weight"), D, true));
      CALL(lm_bind_norm(m, &L->pre_feedforward_norm, NAME("pre_feedforward_layernorm.weight"), D, true));
      CALL(lm_bind_norm(m, &L->post_feedforward_norm, NAME("post_feedforward_layernorm.weight"), D, true));
    } else {
      CALL(lm_bind_norm(m, &L->pre_feedforward_norm, NAME("post_attention_layernorm.weight"), D, true));
    }
    if (m->arch->qk_norm) {
      CALL(lm_bind_norm(m, &L->q_norm, NAME("self_attn.q_norm.weight"), hd, true));
      CALL(lm_bind_norm(m, &L->k_norm, NAME("self_attn.k_norm.weight"), hd, true));
    }
    if (m->arch->fused_qkv) {
      CALL(lm_bind_linear(m, &L->qkv, NAME("self_attn.qkv_proj"), (H + 2 * K) * hd, D, true));
    } else {
      CALL(lm_bind_linear(m, &L->q, NAME("self_attn.q_proj"), H * hd, D, true));
      CALL(lm_bind_linear(m, &L->k, NAME("self_attn.k_proj"), K * hd, D, true));
      CALL(lm_bind_linear(m, &L->v, NAME("self_attn.v_proj"), K * hd, D, true));
    }
    CALL(lm_bind_linear(m, &L->o, NAME("self_attn.o_proj"), D, H * hd, true));
    if (c->moe_layer[i]) {
      CALL(bind_experts(m, L, p));
      continue;
    }
    if (m->arch->fused_gate_up) {
      CALL(lm_bind_linear(m, &L->gate_up, NAME("mlp.gate_up_proj"), 2 * c->intermediate_size, D, true));
    } else {
      CALL(lm_bind_linear(m, &L->gate, NAME("mlp.gate_proj"), c->intermediate_size, D, true));
      CALL(lm_bind_linear(m, &L->up, NAME("mlp.up_proj"), c->intermediate_size, D, true));
    }
    CALL(lm_bind_linear(m, &L->down, NAME("mlp.down_proj"), D, c->intermediate_size, true));
#undef NAME
  }
cleanup:
  json_decref(names);
  m->tensor_names = NULL;
  return status;
}
