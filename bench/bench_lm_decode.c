/* Batch-1 decode and prefill of a Qwen2.5-0.5B-shaped model (random weights) on the CPU, in
 * bfloat16 and 8-bit / 4-bit affine quantization, at contexts 128 and 2048, next to the
 * memory-bandwidth roofline (weight bytes per token over memcpy bandwidth measured in this run).
 *   bench_lm_decode [model_dir]   (default: writes the random model to /tmp/mlxc-bench-qwen05)
 * Set MLXC_BENCH_SMALL=1 for a 4-layer variant (a quick smoke run). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "bench_util.h"
#include "mlx/c/mlx.h"
#include "mlxc/error.h"
#include "mlxc/lm.h"

static mlx_stream cpu;

static int add_random(mlx_map_string_to_array m, const char* name, int rows, int cols, float std, mlx_array key) {
  mlx_array w = mlx_array_new();
  int shape[2] = {rows, cols}, n = cols ? 2 : 1;
  if (!cols) shape[0] = rows;
  int status = mlx_random_normal(&w, shape, (size_t)n, MLX_BFLOAT16, cols ? 0.0f : 1.0f, std, key, cpu);
  if (!status) status = mlx_array_eval(w);
  if (!status) status = mlx_map_string_to_array_insert(m, name, w);
  mlx_array_free(w);
  return status;
}

static int write_model(const char* dir, int layers) {
  int D = 896, F = 4864, H = 14, K = 2, hd = 64, V = 151936;
  mkdir(dir, 0755);
  char path[512], name[256];
  snprintf(path, sizeof path, "%s/config.json", dir);
  json_t* cfg = json_pack("{s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:f, s:f, s:b, s:i}", "model_type", "qwen2", "vocab_size", V,
                          "hidden_size", D, "intermediate_size", F, "num_hidden_layers", layers,
                          "num_attention_heads", H, "num_key_value_heads", K, "rope_theta", 1000000.0,
                          "rms_norm_eps", 1e-6, "tie_word_embeddings", 1, "max_position_embeddings", 32768);
  int status = json_dump_file(cfg, path, JSON_INDENT(1));
  json_decref(cfg);
  mlx_map_string_to_array m = mlx_map_string_to_array_new();
  mlx_array key = mlx_array_new();
  mlx_random_key(&key, 1);
  status = status || add_random(m, "model.embed_tokens.weight", V, D, 0.02f, key);
  status = status || add_random(m, "model.norm.weight", D, 0, 0.0f, key);
  for (int l = 0; l < layers && !status; l++) {
    const struct {
      const char* n;
      int r, c;
    } t[] = {{"self_attn.q_proj", H * hd, D}, {"self_attn.k_proj", K * hd, D}, {"self_attn.v_proj", K * hd, D},
             {"self_attn.o_proj", D, H * hd}, {"mlp.gate_proj", F, D}, {"mlp.up_proj", F, D}, {"mlp.down_proj", D, F}};
    for (size_t i = 0; i < 7 && !status; i++) {
      snprintf(name, sizeof name, "model.layers.%d.%s.weight", l, t[i].n);
      status = add_random(m, name, t[i].r, t[i].c, 0.02f, key);
    }
    const char* biases[3] = {"q_proj", "k_proj", "v_proj"};
    int sizes[3] = {H * hd, K * hd, K * hd};
    for (int i = 0; i < 3 && !status; i++) {
      snprintf(name, sizeof name, "model.layers.%d.self_attn.%s.bias", l, biases[i]);
      status = add_random(m, name, sizes[i], 0, 0.02f, key);
    }
    snprintf(name, sizeof name, "model.layers.%d.input_layernorm.weight", l);
    status = status || add_random(m, name, D, 0, 0.0f, key);
    snprintf(name, sizeof name, "model.layers.%d.post_attention_layernorm.weight", l);
    status = status || add_random(m, name, D, 0, 0.0f, key);
  }
  snprintf(path, sizeof path, "%s/model.safetensors", dir);
  mlx_map_string_to_string meta = mlx_map_string_to_string_new();
  status = status || mlx_save_safetensors(path, m, meta);
  mlx_map_string_to_string_free(meta);
  mlx_map_string_to_array_free(m);
  mlx_array_free(key);
  return status;
}

/* Decode tok/s after a prompt of `context` tokens, and prefill tok/s of that prompt. */
static int measure(const char* dir, int context, int decode_tokens, double* prefill_tps, double* decode_tps, size_t* bytes) {
  mlxc_lm_model* model = NULL;
  mlxc_lm_session* s = NULL;
  if (mlxc_lm_load(&model, dir, cpu) || mlxc_lm_session_new(&s, model)) return 1;
  *bytes = mlxc_lm_weight_bytes(model);
  int32_t* prompt = malloc(sizeof(int32_t) * (size_t)context);
  for (int i = 0; i < context; i++) prompt[i] = (i * 7919) % 151936;
  mlxc_lm_generate_params p = mlxc_lm_generate_default_params();
  p.max_tokens = decode_tokens;
  mlxc_lm_generation g;
  int status = mlxc_lm_generate(s, prompt, (size_t)context, &p, &g);
  if (!status) {
    *prefill_tps = g.prompt_tokens / g.prompt_seconds;
    *decode_tps = (g.n_ids - 1) / g.generation_seconds; /* the first token comes from the prefill */
    mlxc_lm_generation_free(&g);
  }
  free(prompt);
  mlxc_lm_session_free(s);
  mlxc_lm_free(model);
  return status;
}

int main(int argc, char** argv) {
  cpu = mlx_default_cpu_stream_new();
  int layers = getenv("MLXC_BENCH_SMALL") ? 4 : 24;
  const char* base = argc > 1 ? argv[1] : "/tmp/mlxc-bench-qwen05";
  char dir[3][600];
  snprintf(dir[0], sizeof dir[0], "%s", base);
  snprintf(dir[1], sizeof dir[1], "%s-q8", base);
  snprintf(dir[2], sizeof dir[2], "%s-q4", base);
  char probe[700];
  snprintf(probe, sizeof probe, "%s/model.safetensors", base);
  struct stat st;
  if (stat(probe, &st) != 0) {
    if (write_model(base, layers)) {
      fprintf(stderr, "cannot write the model: %s\n", mlxc_last_error());
      return 1;
    }
    mlxc_lm_convert_params q8 = {true, 8, 64, NULL, MLX_FLOAT32}, q4 = {true, 4, 64, NULL, MLX_FLOAT32};
    if (mlxc_lm_convert(base, dir[1], &q8) || mlxc_lm_convert(base, dir[2], &q4)) {
      fprintf(stderr, "cannot convert: %s\n", mlxc_last_error());
      return 1;
    }
  }
  double bw = bench_memcpy_gbps((size_t)256 << 20, 5) / 2; /* read bandwidth: half of read + write */
  printf("memcpy read bandwidth: %.1f GB/s\n", bw);
  printf("| precision | context | weight MB | prefill tok/s | decode tok/s | roofline tok/s | of roofline |\n");
  printf("|---|---|---|---|---|---|---|\n");
  const char* names[3] = {"bfloat16", "8-bit", "4-bit"};
  int contexts[2] = {128, 2048};
  for (int m = 0; m < 3; m++)
    for (int c = 0; c < 2; c++) {
      double pre, dec;
      size_t bytes;
      if (measure(dir[m], contexts[c], 9, &pre, &dec, &bytes)) {
        fprintf(stderr, "%s: %s\n", dir[m], mlxc_last_error());
        return 1;
      }
      double roof = bw * 1e9 / (double)bytes;
      printf("| %s | %d | %.0f | %.1f | %.2f | %.2f | %.0f%% |\n", names[m], contexts[c], bytes / 1e6, pre, dec,
             roof, 100 * dec / roof);
      fflush(stdout);
    }
  return 0;
}
