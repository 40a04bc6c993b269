/* Sentence embeddings on a GPU (or the CPU): MiniLM-L6- and BGE-base-shaped BERTs (random
 * weights, float32), 32-token sentences in batches of 32, mean pooling and normalization:
 * sentences per second. scripts/bench_embed_st.py measures sentence-transformers on the same
 * model folders and sentences.
 *   bench_embed_gpu [--shape minilm|bge] [--dir DIR] [--device gpu|cpu] [--batch N] [--dtype f32|f16|bf16]
 * Run from the source root (the model folder takes the test suite's tokenizer). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_embed_model.h"
#include "bench_util.h"
#include "mlxc/embed.h"
#include "core/profile.h"
#include "mlxc/error.h"

int main(int argc, char** argv) {
  const bench_embed_shape* shape = &BENCH_MINILM_L6;
  const char *dir = NULL, *device = "gpu";
  int batch = 32;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--shape")) shape = !strcmp(argv[i + 1], "bge") ? &BENCH_BGE_BASE : &BENCH_MINILM_L6;
    else if (!strcmp(argv[i], "--dir")) dir = argv[i + 1];
    else if (!strcmp(argv[i], "--device")) device = argv[i + 1];
    else if (!strcmp(argv[i], "--batch")) batch = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--dtype"))
      bench_embed_dtype = !strcmp(argv[i + 1], "f16") ? MLX_FLOAT16 : !strcmp(argv[i + 1], "bf16") ? MLX_BFLOAT16 : MLX_FLOAT32;
  }
  const char* dtype_name = bench_embed_dtype_name();
  bool gpu = strcmp(device, "cpu") != 0;
  if (gpu) {
    bool available = false;
    mlx_cuda_is_available(&available);
    if (!available) {
      printf("SKIP: no CUDA GPU\n");
      return 0;
    }
  }
  char default_dir[256], probe[700];
  snprintf(default_dir, sizeof default_dir, "/tmp/mlxc-bench-%s%s%s", shape->name,
           bench_embed_dtype == MLX_FLOAT32 ? "" : "-", bench_embed_dtype == MLX_FLOAT32 ? "" : dtype_name);
  if (!dir) dir = default_dir;
  snprintf(probe, sizeof probe, "%s/model.safetensors", dir);
  struct stat st;
  if (stat(probe, &st) != 0 && bench_embed_write_model(dir, shape)) {
    fprintf(stderr, "cannot write the model: %s\n", mlxc_last_error());
    return 1;
  }
  mlx_stream stream = gpu ? mlx_default_gpu_stream_new() : mlx_default_cpu_stream_new();
  mlxc_embed_model* model = NULL;
  if (mlxc_embed_load_dtype(&model, dir, stream, bench_embed_dtype)) { /* computes in the stored dtype */
    fprintf(stderr, "%s\n", mlxc_last_error());
    return 1;
  }
  enum { N = 1024 };
  static char buf[N][512];
  const char* texts[N];
  bench_embed_sentences(buf, texts, N);
  mlxc_embed_params p = mlxc_embed_default_params();
  p.batch_size = (size_t)batch;
  p.normalize = 1;
  float* v = NULL;
  size_t d;
  if (mlxc_embed_encode(model, texts, (size_t)batch, p, &v, &d)) { /* warm-up: uploads the weights */
    fprintf(stderr, "%s\n", mlxc_last_error());
    return 1;
  }
  free(v);
  double best = 1e30;
  core_profile_reset(); /* MLXC_PROFILE: the table at exit covers the timed passes only */
  for (int r = 0; r < 3; r++) {
    double t = bench_now();
    if (mlxc_embed_encode(model, texts, N, p, &v, &d)) return 1;
    t = bench_now() - t;
    free(v);
    if (t < best) best = t;
  }
  printf("mlxc %s: %s-shaped BERT (%s), 32-token sentences, batch %d: %.1f sentences/s\n", gpu ? "GPU" : "CPU",
         shape->name, dtype_name, batch, N / best);
  mlxc_embed_free(model);
  mlx_stream_free(stream);
  return 0;
}
