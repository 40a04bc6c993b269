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

#include "bench_embed_model.h"
#include "bench_util.h"
#include "mlx/c/mlx.h"
#include "mlxc/embed.h"
#include "mlxc/error.h"

static mlx_stream cpu;

int main(int argc, char** argv) {
  cpu = mlx_default_cpu_stream_new();
  const char* dir = argc > 1 ? argv[1] : "/tmp/mlxc-bench-minilm";
  char probe[700];
  snprintf(probe, sizeof probe, "%s/model.safetensors", dir);
  struct stat st;
  if (stat(probe, &st) != 0 && bench_embed_write_model(dir, &BENCH_MINILM_L6)) {
    fprintf(stderr, "cannot write the model: %s\n", mlxc_last_error());
    return 1;
  }
  mlxc_embed_model* model = NULL;
  if (mlxc_embed_load(&model, dir, cpu)) {
    fprintf(stderr, "%s\n", mlxc_last_error());
    return 1;
  }
  enum { N = 256 };
  static char buf[N][512];
  const char* texts[N];
  bench_embed_sentences(buf, texts, N);
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
