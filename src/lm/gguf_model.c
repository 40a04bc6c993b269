/* Llama-family models from GGUF files (llama.cpp's layout): the hyper-parameters come from the
 * "<arch>.*" metadata, the tensors are renamed to their Hugging Face names so the shared binder
 * and decoder run them unchanged. Q4_0/Q4_1/Q8_0 weights arrive from the io layer as exact MLX
 * affine triples (group 32), the other block types dequantized to float16.
 *
 * llama.cpp's converter permutes the rows of q_proj and k_proj of "llama" models (within each
 * head, rows (i, i + d/2) become (2i, 2i + 1)) because its RoPE for that architecture rotates
 * adjacent pairs; our decoder rotates half-split pairs as transformers does, so the permutation
 * is undone here. qwen2/qwen3 files are not permuted (llama.cpp uses the half-split RoPE there). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/gguf_meta.h"
#include "lm/call.h"
#include "lm/model.h"
#include "mlxc/gguf.h"
#include "util/error.h"

bool lm_path_is_gguf(const char* path) {
  struct stat st;
  if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) return false;
  FILE* f = fopen(path, "rb");
  char magic[4] = {0};
  bool gguf = f && fread(magic, 1, 4, f) == 4 && !memcmp(magic, "GGUF", 4);
  if (f) fclose(f);
  return gguf;
}

/* GGUF architecture -> model_type, and whether its q/k rows are permuted. */
static const struct {
  const char* arch;
  const char* model_type;
  bool permuted_qk;
} archs[] = {{"llama", "llama", true}, {"qwen2", "qwen2", false}, {"qwen3", "qwen3", false}};

/* llama.cpp tensor names -> Hugging Face names (per layer after "blk.N."). */
static const char* const global_names[][2] = {
    {"token_embd", "model.embed_tokens"}, {"output_norm", "model.norm"}, {"output", "lm_head"}};
static const char* const layer_names[][2] = {
    {"attn_norm", "input_layernorm"},  {"ffn_norm", "post_attention_layernorm"},
    {"attn_q", "self_attn.q_proj"},    {"attn_k", "self_attn.k_proj"},
    {"attn_v", "self_attn.v_proj"},    {"attn_output", "self_attn.o_proj"},
    {"attn_q_norm", "self_attn.q_norm"}, {"attn_k_norm", "self_attn.k_norm"},
    {"ffn_gate", "mlp.gate_proj"},     {"ffn_up", "mlp.up_proj"},
    {"ffn_down", "mlp.down_proj"}};

/* The Hugging Face name of a GGUF tensor name ("blk.3.attn_q.scales" -> "model.layers.3.
 * self_attn.q_proj.scales") into out; false for tensors the decoder does not use. *layer and
 * *base (the GGUF name without its suffix, e.g. "attn_q") describe it. */
static bool hf_name(const char* name, char* out, size_t size, int* layer, char* base, size_t base_size) {
  const char* dot = strrchr(name, '.');
  if (!dot) return false;
  const char* suffix = dot + 1;
  *layer = -1;
  const char* rest = name;
  if (!strncmp(name, "blk.", 4)) {
    char* end;
    long n = strtol(name + 4, &end, 10);
    if (end == name + 4 || *end != '.' || n < 0 || n >= LM_MAX_LAYERS) return false;
    *layer = (int)n;
    rest = end + 1;
  }
  size_t len = (size_t)(dot - rest);
  if (len >= base_size) return false;
  memcpy(base, rest, len);
  base[len] = '\0';
  if (*layer < 0) {
    for (size_t i = 0; i < sizeof global_names / sizeof global_names[0]; i++)
      if (!strcmp(base, global_names[i][0])) {
        snprintf(out, size, "%s.%s", global_names[i][1], suffix);
        return true;
      }
    return false;
  }
  for (size_t i = 0; i < sizeof layer_names / sizeof layer_names[0]; i++)
    if (!strcmp(base, layer_names[i][0])) {
      snprintf(out, size, "model.layers.%d.%s.%s", *layer, layer_names[i][1], suffix);
      return true;
    }
  return false;
}

/* Undoes llama.cpp's permute(): within each of `heads` row blocks, row 2i + j goes back to
 * j * (rows_per_head / 2) + i. Works on weights, quantization scales/biases and bias vectors
 * alike (the rows are whole). */
static int unpermute_rows(const char* path, mlx_array* a, int heads, const char* name, mlx_stream s) {
  int nd = mlx_array_ndim(*a), rows = nd ? mlx_array_dim(*a, 0) : 0;
  if (nd < 1 || nd > 2 || rows % (2 * heads))
    return util_error("%s: tensor %s: %d rows cannot be split into %d heads of pairs", path, name, rows, heads);
  int shape[4] = {heads, rows / heads / 2, 2, nd == 2 ? mlx_array_dim(*a, 1) : 1};
  int perm[4] = {0, 2, 1, 3}, back[2] = {rows, shape[3]};
  int status = mlx_reshape(a, *a, shape, 4, s);
  if (!status) status = mlx_transpose_axes(a, *a, perm, 4, s);
  if (!status) status = mlx_reshape(a, *a, back, nd, s);
  if (!status) status = mlx_array_eval(*a);
  return status;
}

static int required_int(const char* path, mlx_io_gguf g, const char* arch, const char* key, int* out) {
  char full[256];
  snprintf(full, sizeof full, "%s.%s", arch, key);
  double v;
  int status = gguf_meta_number(g, full, &v);
  if (status == 2) return util_error("%s: missing metadata %s", path, full);
  if (status) return status;
  if (v <= 0 || v > 1e9) return util_error("%s: metadata %s must be positive, not %g", path, full, v);
  *out = (int)v;
  return 0;
}

static double arch_number(mlx_io_gguf g, const char* arch, const char* key, double fallback) {
  char full[256];
  snprintf(full, sizeof full, "%s.%s", arch, key);
  return gguf_meta_number_or(g, full, fallback);
}

static int read_rope_scaling(const char* path, lm_config* c, mlx_io_gguf g, const char* arch) {
  char key[256];
  snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
  char* type = gguf_meta_string(g, key);
  int status = 0;
  c->rope_factor = (float)arch_number(g, arch, "rope.scaling.factor", 1.0);
  c->rope_original_max_positions =
      (int)arch_number(g, arch, "rope.scaling.original_context_length", c->max_position_embeddings);
  c->rope_beta_fast = 32.0f;
  c->rope_beta_slow = 1.0f;
  c->rope_truncate = true;
  if (!type || !strcmp(type, "none")) {
    double linear = arch_number(g, arch, "rope.scale_linear", 1.0); /* older files */
    if (linear != 1.0) {
      c->rope_type = ROPE_LINEAR;
      c->rope_factor = (float)linear;
    }
  } else if (!strcmp(type, "linear")) {
    c->rope_type = ROPE_LINEAR;
  } else if (!strcmp(type, "yarn")) {
    c->rope_type = ROPE_YARN;
  } else {
    status = util_error("%s: metadata %s: unsupported rope scaling \"%s\" (supported: none, linear, yarn)", path, key, type);
  }
  free(type);
  return status;
}

static int read_config(const char* path, lm_config* c, mlx_io_gguf g, const char* arch) {
  int status = 0;
  CALL(required_int(path, g, arch, "block_count", &c->num_layers));
  CALL(required_int(path, g, arch, "embedding_length", &c->hidden_size));
  CALL(required_int(path, g, arch, "feed_forward_length", &c->intermediate_size));
  CALL(required_int(path, g, arch, "attention.head_count", &c->num_heads));
  if (c->num_layers > LM_MAX_LAYERS) CALL(util_error("%s: at most %d layers are supported", path, LM_MAX_LAYERS));
  c->num_kv_heads = (int)arch_number(g, arch, "attention.head_count_kv", c->num_heads);
  if (c->num_kv_heads <= 0 || c->num_heads % c->num_kv_heads)
    CALL(util_error("%s: %d attention heads are not a multiple of %d key/value heads", path, c->num_heads, c->num_kv_heads));
  c->head_dim = (int)arch_number(g, arch, "attention.key_length", c->hidden_size / c->num_heads);
  int rope_dims = (int)arch_number(g, arch, "rope.dimension_count", c->head_dim);
  if (c->head_dim <= 0 || rope_dims <= 0 || rope_dims > c->head_dim || rope_dims % 2)
    CALL(util_error("%s: rope.dimension_count %d does not fit the head dimension %d", path, rope_dims, c->head_dim));
  c->partial_rotary_factor = (float)rope_dims / (float)c->head_dim;
  c->norm_eps = (float)arch_number(g, arch, "attention.layer_norm_rms_epsilon", 1e-6);
  c->rope_theta = c->rope_local_theta = (float)arch_number(g, arch, "rope.freq_base", 10000.0);
  c->max_position_embeddings = (int)arch_number(g, arch, "context_length", 4096);
  CALL(read_rope_scaling(path, c, g, arch));
  c->activation = ACT_SILU;
  c->quant_group_size = 32; /* Q4_0, Q4_1, Q8_0 blocks */
  c->quant_bits = -1;       /* per tensor, from its packed width (files mix 4 and 8 bits) */
cleanup:
  return status;
}

/* rope_freqs.weight (llama3-style scaling as llama.cpp stores it): the rotation of pair i is
 * position * base^(-2i/d) / factor_i, i.e. fast.rope frequencies base^(2i/d) * factor_i. */
static int rope_freqs_from_factors(const char* path, mlxc_lm_model* m, mlx_array factors) {
  const lm_config* c = &m->config;
  int dims = (int)(c->head_dim * c->partial_rotary_factor), half = dims / 2;
  if (c->rope_type != ROPE_DEFAULT)
    return util_error("%s: rope_freqs.weight together with a rope scaling type is not supported", path);
  mlx_stream cpu = mlx_default_cpu_stream_new();
  mlx_array f32 = mlx_array_new();
  int status = mlx_astype(&f32, factors, MLX_FLOAT32, cpu);
  if (!status) status = mlx_array_eval(f32);
  if (!status && (mlx_array_ndim(f32) != 1 || mlx_array_dim(f32, 0) != half))
    status = util_error("%s: tensor rope_freqs.weight: expected %d factors", path, half);
  float* freqs = status ? NULL : malloc(sizeof(float) * (size_t)half);
  if (!status && !freqs) status = util_error("%s: out of memory", path);
  if (!status) {
    const float* k = mlx_array_data_float32(f32);
    for (int i = 0; i < half; i++) freqs[i] = (float)(pow(c->rope_theta, 2.0 * i / dims) * k[i]);
    int shape[1] = {half};
    mlx_array_free(m->rope_freqs);
    m->rope_freqs = mlx_array_new_data(freqs, shape, 1, MLX_FLOAT32);
  }
  free(freqs);
  mlx_array_free(f32);
  mlx_stream_free(cpu);
  return status;
}

/* Whether the file has the tensor (looked up by name: a failed get would report an error). */
static bool has_tensor(mlx_io_gguf g, const char* name) {
  mlx_vector_string names = mlx_vector_string_new();
  bool found = false;
  if (mlx_io_gguf_get_keys(&names, g) == 0)
    for (size_t i = 0; i < mlx_vector_string_size(names) && !found; i++) {
      char* key = NULL;
      found = mlx_vector_string_get(&key, names, i) == 0 && !strcmp(key, name);
    }
  mlx_vector_string_free(names);
  return found;
}

/* The tensors every layer needs, by their GGUF names, so a missing one is named as in the file. */
static int check_required(const char* path, mlx_io_gguf g, const lm_config* c) {
  static const char* const per_layer[] = {"attn_norm", "attn_q",   "attn_k", "attn_v", "attn_output",
                                          "ffn_norm",  "ffn_gate", "ffn_up", "ffn_down"};
  char name[128];
  if (!has_tensor(g, "token_embd.weight")) return util_error("%s: missing tensor token_embd.weight", path);
  if (!has_tensor(g, "output_norm.weight")) return util_error("%s: missing tensor output_norm.weight", path);
  for (int i = 0; i < c->num_layers; i++)
    for (size_t j = 0; j < sizeof per_layer / sizeof per_layer[0]; j++) {
      snprintf(name, sizeof name, "blk.%d.%s.weight", i, per_layer[j]);
      if (!has_tensor(g, name)) return util_error("%s: missing tensor %s", path, name);
    }
  return 0;
}

/* Renames, un-permutes and stores every tensor the decoder uses; 1-d float32 tensors (norms,
 * biases) take the dtype the activations will have (the token embedding's). */
static int load_tensors(const char* path, mlxc_lm_model* m, mlx_io_gguf g, bool permuted_qk) {
  const lm_config* c = &m->config;
  mlx_vector_string names = mlx_vector_string_new();
  mlx_array a = mlx_array_new(), embed = mlx_array_new();
  int status = 0;
  CALL(mlx_io_gguf_get_keys(&names, g));
  CALL(mlx_io_gguf_get_array(&embed, g, has_tensor(g, "token_embd.scales") ? "token_embd.scales" : "token_embd.weight"));
  mlx_dtype act = mlx_array_dtype(embed);
  for (size_t i = 0; i < mlx_vector_string_size(names); i++) {
    char* name = NULL;
    char hf[256], base[64];
    int layer;
    CALL(mlx_vector_string_get(&name, names, i));
    CALL(mlx_io_gguf_get_array(&a, g, name));
    if (!strcmp(name, "rope_freqs.weight")) {
      CALL(rope_freqs_from_factors(path, m, a));
      continue;
    }
    if (!hf_name(name, hf, sizeof hf, &layer, base, sizeof base)) continue;
    if (layer >= c->num_layers) CALL(util_error("%s: tensor %s: the file has %d layers", path, name, c->num_layers));
    if (permuted_qk && (!strcmp(base, "attn_q") || !strcmp(base, "attn_k")))
      CALL(unpermute_rows(path, &a, base[5] == 'q' ? c->num_heads : c->num_kv_heads, name, m->stream));
    if (mlx_array_ndim(a) == 1 && mlx_array_dtype(a) == MLX_FLOAT32 && act != MLX_FLOAT32) {
      CALL(mlx_astype(&a, a, act, m->stream));
      CALL(mlx_array_eval(a));
    }
    CALL(mlx_map_string_to_array_insert(m->tensors, hf, a));
  }
  if (!mlx_map_string_to_array_get(&a, m->tensors, "model.embed_tokens.weight"))
    m->config.vocab_size = mlx_array_dim(a, 0);
cleanup:
  mlx_array_free(a);
  mlx_array_free(embed);
  mlx_vector_string_free(names);
  return status;
}

int lm_gguf_read(mlxc_lm_model* m, const char* path) {
  mlx_io_gguf g = mlx_io_gguf_new();
  mlxc_gguf_load_params params = mlxc_gguf_load_default_params();
  char* arch = NULL;
  int status = mlxc_gguf_load(&g, path, params);
  if (status) goto done;
  arch = gguf_meta_string(g, "general.architecture");
  size_t k = 0;
  while (k < sizeof archs / sizeof archs[0] && (!arch || strcmp(arch, archs[k].arch))) k++;
  if (k == sizeof archs / sizeof archs[0]) {
    status = util_error("%s: unsupported GGUF architecture \"%s\" (supported: llama, qwen2, qwen3)", path,
                        arch ? arch : "(no general.architecture)");
    goto done;
  }
  memset(&m->config, 0, sizeof m->config);
  snprintf(m->config.model_type, sizeof m->config.model_type, "%s", archs[k].model_type);
  m->arch = lm_arch_find(archs[k].model_type);
  status = read_config(path, &m->config, g, arch);
  if (!status) status = check_required(path, g, &m->config);
  if (!status) status = load_tensors(path, m, g, archs[k].permuted_qk);
done:
  free(arch);
  mlx_io_gguf_free(g);
  return status;
}
