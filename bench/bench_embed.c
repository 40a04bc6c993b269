/* Sentence embeddings on the CPU: a MiniLM-L6-shaped BERT (hidden 384, 6 layers, 12 heads,
 * intermediate 1536, vocabulary 30522; random weights) embedding sentences of 32 tokens in batches
 * of 32, mean pooling and normalization: sentences per second.
 *   bench_embed [model_dir]   (default: writes the random model to /tmp/mlxc-bench-minilm)
 * scripts/bench_embed_compare.sh runs this and PyTorch on the same shapes, one after the other. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bench_util.h"
#include "mlx/c/mlx.h"
#include "mlxc/embed.h"
#include "mlxc/error.h"

static mlx_stream cpu;

static int add(mlx_map_string_to_array m, const char* name, int rows, int cols, mlx_array key) {
  mlx_array w = mlx_array_new();
  int shape[2] = {rows, cols};
  int status = mlx_random_normal(&w, shape, cols ? 2 : 1, MLX_FLOAT32, cols ? 0.0f : 1.0f, 0.05f, key, cpu);
  if (!status) status = mlx_array_eval(w);
  if (!status) status = mlx_map_string_to_array_insert(m, name, w);
  mlx_array_free(w);
  return status;
}

static int write_model(const char* dir) {
  int D = 384, F = 1536, V = 30522;
  mkdir(dir, 0755);
  char path[600], name[200];
  snprintf(path, sizeof path, "%s/config.json", dir);
  json_t* cfg = json_pack("{s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:f, s:s}", "model_type", "bert", "vocab_size", V,
                          "hidden_size", D, "num_hidden_layers", 6, "num_attention_heads", 12, "intermediate_size", F,
                          "max_position_embeddings", 512, "type_vocab_size", 2, "layer_norm_eps", 1e-12, "hidden_act", "gelu");
  int status = json_dump_file(cfg, path, 0);
  json_decref(cfg);
  char cmd[1400];
  snprintf(cmd, sizeof cmd, "cp tests/fixtures/tokenizers/trained/bert/tokenizer.json '%s/'", dir);
  status = status || system(cmd);
  mlx_map_string_to_array m = mlx_map_string_to_array_new();
  mlx_array key = mlx_array_new();
  mlx_random_key(&key, 3);
  status = status || add(m, "embeddings.word_embeddings.weight", V, D, key) ||
           add(m, "embeddings.position_embeddings.weight", 512, D, key) ||
           add(m, "embeddings.token_type_embeddings.weight", 2, D, key) ||
           add(m, "embeddings.LayerNorm.weight", D, 0, key) || add(m, "embeddings.LayerNorm.bias", D, 0, key);
  const struct {
    const char* n;
    int r, c;
  } t[] = {{"attention.self.query", D, D}, {"attention.self.key", D, D}, {"attention.self.value", D, D},
           {"attention.output.dense", D, D}, {"intermediate.dense", F, D}, {"output.dense", D, F}};
  for (int l = 0; l < 6 && !status; l++) {
    for (int i = 0; i < 6 && !status; i++) {
      snprintf(name, sizeof name, "encoder.layer.%d.%s.weight", l, t[i].n);
      status = add(m, name, t[i].r, t[i].c, key);
      snprintf(name, sizeof name, "encoder.layer.%d.%s.bias", l, t[i].n);
      status = status || add(m, name, t[i].r, 0, key);
    }
    const char* norms[2] = {"attention.output.LayerNorm", "output.LayerNorm"};
    for (int i = 0; i < 2 && !status; i++) {
      snprintf(name, sizeof name, "encoder.layer.%d.%s.weight", l, norms[i]);
      status = add(m, name, D, 0, key);
      snprintf(name, sizeof name, "encoder.layer.%d.%s.bias", l, norms[i]);
      status = status || add(m, name, D, 0, key);
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

int main(int argc, char** argv) {
  cpu = mlx_default_cpu_stream_new();
  const char* dir = argc > 1 ? argv[1] : "/tmp/mlxc-bench-minilm";
  char probe[700];
  snprintf(probe, sizeof probe, "%s/model.safetensors", dir);
  struct stat st;
  if (stat(probe, &st) != 0 && write_model(dir)) {
    fprintf(stderr, "cannot write the model: %s\n", mlxc_last_error());
    return 1;
  }
  mlxc_embed_model* model = NULL;
  if (mlxc_embed_load(&model, dir, cpu)) {
    fprintf(stderr, "%s\n", mlxc_last_error());
    return 1;
  }
  /* 30 words that the bench tokenizer keeps as single tokens, so each sentence is 32 with [CLS]/[SEP] */
  enum { N = 256 };
  static char buf[N][512];
  const char* texts[N];
  const char* words[] = {"the", "of", "and", "to", "in", "that", "he", "for", "his", "unto"};
  for (int i = 0; i < N; i++) {
    buf[i][0] = '\0';
    for (int w = 0; w < 30; w++) {
      strcat(buf[i], words[(i + w * 7) % 10]);
      strcat(buf[i], " ");
    }
    texts[i] = buf[i];
  }
  mlxc_embed_params p = mlxc_embed_default_params();
  p.batch_size = 32;
  p.normalize = 1;
  float* v = NULL;
  size_t d;
  if (mlxc_embed_encode(model, texts, 32, p, &v, &d)) return 1; /* warm-up */
  free(v);
  double best = 1e30;
  for (int r = 0; r < 3; r++) {
    double t = bench_now();
    if (mlxc_embed_encode(model, texts, N, p, &v, &d)) return 1;
    t = bench_now() - t;
    free(v);
    if (t < best) best = t;
  }
  printf("mlxc: MiniLM-L6-shaped BERT, 32-token sentences, batch 32: %.1f sentences/s\n", N / best);
  mlxc_embed_free(model);
  return 0;
}
