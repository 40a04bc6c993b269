/* Random-weight language models of real shapes for the decode benchmarks: a Hugging Face folder
 * (config.json + model.safetensors) and its 8-bit and 4-bit MLX conversions. Weights are random
 * normal blocks of up to 256 rows tiled to the full height: decode speed does not depend on the
 * values, and an 8B model is then written in seconds. */
#ifndef MLXC_BENCH_LM_MODEL_H
#define MLXC_BENCH_LM_MODEL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "mlx/c/mlx.h"
#include "mlxc/error.h"
#include "mlxc/lm.h"

typedef struct {
  const char* name;
  const char* model_type;
  int hidden, intermediate, layers, heads, kv_heads, head_dim, vocab;
  float rope_theta;
  int tied, qkv_bias;
} bench_lm_shape;

static const bench_lm_shape BENCH_QWEN05 = {"qwen2.5-0.5b", "qwen2", 896, 4864, 24, 14, 2, 64, 151936, 1e6f, 1, 1};
static const bench_lm_shape BENCH_LLAMA8B = {"llama-3-8b", "llama", 4096, 14336, 32, 32, 8, 128, 128256, 5e5f, 0, 0};

static inline int bench_lm_add_random(mlx_map_string_to_array m, const char* name, int rows, int cols, mlx_array key,
                                      mlx_stream cpu) {
  mlx_array block = mlx_array_new(), w = mlx_array_new();
  int block_rows = rows < 256 ? rows : 256, status;
  if (cols) {
    int shape[2] = {block_rows, cols}, reps[2] = {(rows + block_rows - 1) / block_rows, 1};
    int start[2] = {0, 0}, stop[2] = {rows, cols};
    status = mlx_random_normal(&block, shape, 2, MLX_BFLOAT16, 0.0f, 0.02f, key, cpu);
    if (!status) status = mlx_tile(&w, block, reps, 2, cpu);
    if (!status) status = mlx_slice(&w, w, start, 2, stop, 2, NULL, 0, cpu);
  } else {
    int shape[1] = {rows};
    status = mlx_random_normal(&w, shape, 1, MLX_BFLOAT16, 1.0f, 0.02f, key, cpu);
  }
  if (!status) status = mlx_contiguous(&w, w, false, cpu);
  if (!status) status = mlx_array_eval(w);
  if (!status) status = mlx_map_string_to_array_insert(m, name, w);
  mlx_array_free(block);
  mlx_array_free(w);
  return status;
}

static inline int bench_lm_write_model(const char* dir, const bench_lm_shape* s) {
  mlx_stream cpu = mlx_default_cpu_stream_new();
  mkdir(dir, 0755);
  char path[1024], name[256];
  snprintf(path, sizeof path, "%s/config.json", dir);
  json_t* cfg = json_pack("{s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:f, s:f, s:b, s:i}", "model_type", s->model_type,
                          "vocab_size", s->vocab, "hidden_size", s->hidden, "intermediate_size", s->intermediate,
                          "num_hidden_layers", s->layers, "num_attention_heads", s->heads, "num_key_value_heads",
                          s->kv_heads, "head_dim", s->head_dim, "rope_theta", (double)s->rope_theta, "rms_norm_eps",
                          1e-6, "tie_word_embeddings", s->tied, "max_position_embeddings", 32768);
  int status = json_dump_file(cfg, path, JSON_INDENT(1));
  json_decref(cfg);
  mlx_map_string_to_array m = mlx_map_string_to_array_new();
  mlx_array key = mlx_array_new();
  mlx_random_key(&key, 1);
  int D = s->hidden, F = s->intermediate, H = s->heads, K = s->kv_heads, hd = s->head_dim;
  status = status || bench_lm_add_random(m, "model.embed_tokens.weight", s->vocab, D, key, cpu);
  if (!s->tied) status = status || bench_lm_add_random(m, "lm_head.weight", s->vocab, D, key, cpu);
  status = status || bench_lm_add_random(m, "model.norm.weight", D, 0, key, cpu);
  for (int l = 0; l < s->layers && !status; l++) {
    const struct {
      const char* n;
      int r, c;
    } t[] = {{"self_attn.q_proj", H * hd, D}, {"self_attn.k_proj", K * hd, D}, {"self_attn.v_proj", K * hd, D},
             {"self_attn.o_proj", D, H * hd}, {"mlp.gate_proj", F, D},       {"mlp.up_proj", F, D},
             {"mlp.down_proj", D, F}};
    for (size_t i = 0; i < 7 && !status; i++) {
      snprintf(name, sizeof name, "model.layers.%d.%s.weight", l, t[i].n);
      status = bench_lm_add_random(m, name, t[i].r, t[i].c, key, cpu);
    }
    const char* biases[3] = {"q_proj", "k_proj", "v_proj"};
    int sizes[3] = {H * hd, K * hd, K * hd};
    for (int i = 0; i < 3 && s->qkv_bias && !status; i++) {
      snprintf(name, sizeof name, "model.layers.%d.self_attn.%s.bias", l, biases[i]);
      status = bench_lm_add_random(m, name, sizes[i], 0, key, cpu);
    }
    snprintf(name, sizeof name, "model.layers.%d.input_layernorm.weight", l);
    status = status || bench_lm_add_random(m, name, D, 0, key, cpu);
    snprintf(name, sizeof name, "model.layers.%d.post_attention_layernorm.weight", l);
    status = status || bench_lm_add_random(m, name, D, 0, key, cpu);
  }
  snprintf(path, sizeof path, "%s/model.safetensors", dir);
  mlx_map_string_to_string meta = mlx_map_string_to_string_new();
  status = status || mlx_save_safetensors(path, m, meta);
  mlx_map_string_to_string_free(meta);
  mlx_map_string_to_array_free(m);
  mlx_array_free(key);
  mlx_stream_free(cpu);
  return status;
}

static inline bool bench_lm_exists(const char* dir) {
  char probe[700];
  snprintf(probe, sizeof probe, "%s/model.safetensors", dir);
  struct stat st;
  return stat(probe, &st) == 0;
}

/* Writes <base> (bfloat16) and, when `wanted` names them ("q8", "q4"), <base>-q8 and <base>-q4,
 * each unless it exists; dirs[0..2] get the paths. */
static inline int bench_lm_prepare(const char* base, const bench_lm_shape* s, const char* wanted, char dirs[3][600]) {
  snprintf(dirs[0], 600, "%s", base);
  snprintf(dirs[1], 600, "%s-q8", base);
  snprintf(dirs[2], 600, "%s-q4", base);
  if (!bench_lm_exists(base) && bench_lm_write_model(base, s)) {
    fprintf(stderr, "cannot write the model: %s\n", mlxc_last_error());
    return 1;
  }
  mlxc_lm_convert_params q[2] = {{true, 8, 64, NULL, MLX_FLOAT32}, {true, 4, 64, NULL, MLX_FLOAT32}};
  const char* names[2] = {"q8", "q4"};
  for (int i = 0; i < 2; i++) {
    if (!strstr(wanted, names[i]) || bench_lm_exists(dirs[i + 1])) continue;
    if (mlxc_lm_convert(base, dirs[i + 1], &q[i])) {
      fprintf(stderr, "cannot convert: %s\n", mlxc_last_error());
      return 1;
    }
  }
  return 0;
}

#endif
