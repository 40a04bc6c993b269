/* Batch-1 decode and prefill of a Qwen2.5-0.5B-shaped model (random weights) on the CPU, in
 * bfloat16 and 8-bit / 4-bit affine quantization, at contexts 128 and 2048, next to the
 * memory-bandwidth roofline (weight bytes per token over memcpy bandwidth measured in this run).
 *   bench_lm_decode [model_dir]   (default: writes the random model to /tmp/mlxc-bench-qwen05)
 * Set MLXC_BENCH_SMALL=1 for a 4-layer variant (a quick smoke run). */
#include <stdio.h>
#include <stdlib.h>

#include "bench_lm_model.h"
#include "bench_util.h"
#include "mlx/c/mlx.h"
#include "mlxc/error.h"
#include "mlxc/lm.h"

static mlx_stream cpu;

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
  bench_lm_shape shape = BENCH_QWEN05;
  shape.layers = layers;
  char dir[3][600];
  if (bench_lm_prepare(base, &shape, "q8,q4", dir)) return 1;
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
