/* Random-weight BERT models of real shapes for the embedding benchmarks: a Hugging Face folder
 * (config.json, model.safetensors with BertModel's names, the test suite's trained WordPiece
 * tokenizer.json) that mlxc and sentence-transformers both load. Run from the source root. */
#ifndef MLXC_BENCH_EMBED_MODEL_H
#define MLXC_BENCH_EMBED_MODEL_H

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mlx/c/mlx.h"

typedef struct {
  const char* name;
  int hidden, intermediate, layers, heads;
} bench_embed_shape;

static const bench_embed_shape BENCH_MINILM_L6 = {"minilm-l6", 384, 1536, 6, 12};
static const bench_embed_shape BENCH_BGE_BASE = {"bge-base", 768, 3072, 12, 12};

static mlx_stream bench_embed_cpu;
static mlx_dtype bench_embed_dtype = MLX_FLOAT32; /* what the weights are stored as */

/* Its name as config.json's torch_dtype spells it. */
static inline const char* bench_embed_dtype_name(void) {
  return bench_embed_dtype == MLX_FLOAT16 ? "float16" : bench_embed_dtype == MLX_BFLOAT16 ? "bfloat16" : "float32";
}

static inline int bench_embed_add(mlx_map_string_to_array m, const char* name, int rows, int cols, mlx_array key) {
  mlx_array w = mlx_array_new();
  int shape[2] = {rows, cols};
  int status = mlx_random_normal(&w, shape, cols ? 2 : 1, MLX_FLOAT32, cols ? 0.0f : 1.0f, 0.05f, key, bench_embed_cpu);
  if (!status) status = mlx_astype(&w, w, bench_embed_dtype, bench_embed_cpu);
  if (!status) status = mlx_array_eval(w);
  if (!status) status = mlx_map_string_to_array_insert(m, name, w);
  mlx_array_free(w);
  return status;
}

static inline int bench_embed_write_model(const char* dir, const bench_embed_shape* s) {
  bench_embed_cpu = mlx_default_cpu_stream_new();
  int D = s->hidden, F = s->intermediate, V = 30522, layers = s->layers;
  mkdir(dir, 0755);
  char path[600], name[200];
  snprintf(path, sizeof path, "%s/config.json", dir);
  const char* torch_dtype = bench_embed_dtype_name();
  json_t* cfg = json_pack("{s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:f, s:s, s:s}", "model_type", "bert", "vocab_size", V,
                          "hidden_size", D, "num_hidden_layers", layers, "num_attention_heads", s->heads, "intermediate_size", F,
                          "max_position_embeddings", 512, "type_vocab_size", 2, "layer_norm_eps", 1e-12, "hidden_act", "gelu",
                          "torch_dtype", torch_dtype);
  int status = json_dump_file(cfg, path, 0);
  json_decref(cfg);
  char cmd[1400];
  snprintf(cmd, sizeof cmd, "cp tests/fixtures/tokenizers/trained/bert/tokenizer.json '%s/'", dir);
  status = status || system(cmd);
  mlx_map_string_to_array m = mlx_map_string_to_array_new();
  mlx_array key = mlx_array_new();
  mlx_random_key(&key, 3);
  status = status || bench_embed_add(m, "embeddings.word_embeddings.weight", V, D, key) ||
           bench_embed_add(m, "embeddings.position_embeddings.weight", 512, D, key) ||
           bench_embed_add(m, "embeddings.token_type_embeddings.weight", 2, D, key) ||
           bench_embed_add(m, "embeddings.LayerNorm.weight", D, 0, key) || bench_embed_add(m, "embeddings.LayerNorm.bias", D, 0, key);
  const struct {
    const char* n;
    int r, c;
  } t[] = {{"attention.self.query", D, D}, {"attention.self.key", D, D}, {"attention.self.value", D, D},
           {"attention.output.dense", D, D}, {"intermediate.dense", F, D}, {"output.dense", D, F}};
  for (int l = 0; l < layers && !status; l++) {
    for (int i = 0; i < 6 && !status; i++) {
      snprintf(name, sizeof name, "encoder.layer.%d.%s.weight", l, t[i].n);
      status = bench_embed_add(m, name, t[i].r, t[i].c, key);
      snprintf(name, sizeof name, "encoder.layer.%d.%s.bias", l, t[i].n);
      status = status || bench_embed_add(m, name, t[i].r, 0, key);
    }
    const char* norms[2] = {"attention.output.LayerNorm", "output.LayerNorm"};
    for (int i = 0; i < 2 && !status; i++) {
      snprintf(name, sizeof name, "encoder.layer.%d.%s.weight", l, norms[i]);
      status = bench_embed_add(m, name, D, 0, key);
      snprintf(name, sizeof name, "encoder.layer.%d.%s.bias", l, norms[i]);
      status = status || bench_embed_add(m, name, D, 0, key);
    }
  }
  snprintf(path, sizeof path, "%s/model.safetensors", dir);
  mlx_map_string_to_string meta = mlx_map_string_to_string_new();
  status = status || mlx_save_safetensors(path, m, meta);
  mlx_map_string_to_string_free(meta);
  mlx_map_string_to_array_free(m);
  mlx_array_free(key);
  return status;
}


/* n sentences of 30 words that the bench tokenizer keeps as single tokens (32 tokens with
 * [CLS]/[SEP]); buf holds n rows of 512 bytes, texts gets pointers into it. */
static inline void bench_embed_sentences(char (*buf)[512], const char** texts, int n) {
  const char* words[] = {"the", "of", "and", "to", "in", "that", "he", "for", "his", "unto"};
  for (int i = 0; i < n; i++) {
    buf[i][0] = '\0';
    for (int w = 0; w < 30; w++) {
      strcat(buf[i], words[(i + w * 7) % 10]);
      strcat(buf[i], " ");
    }
    texts[i] = buf[i];
  }
}

#endif
