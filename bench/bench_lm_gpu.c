/* Batch-1 decode and prefill of real-shaped language models (random weights) on a GPU, in
 * bfloat16 and 8-bit / 4-bit affine quantization, next to two references measured in the same
 * run: the decode roofline (the weight bytes a token streams, an untied embedding table excepted, plus
 * KV-cache bytes, over the device-to-device copy bandwidth) and, for prefill, the bfloat16 GEMM rate of a 4096³ matmul.
 * With --device cpu: the all-core copy rate, and the float32 GEMM rate of a 2048³ matmul.
 * Decode tok/s are from one prompt and its greedy tokens; prefill tok/s the median of 5 more
 * prompts of the same length (the first one's rate is the last column).
 *   bench_lm_gpu [--shape qwen05|llama8b] [--dir BASE] [--precisions bf16,q8,q4]
 *                [--contexts 128,512,4096] [--decode N] [--device gpu|cpu] [--layers N]
 *                [--temp T] [--top-p P]
 * The models are written to BASE (default /tmp/mlxc-bench-<shape>) on first use. Prints "SKIP"
 * without a GPU (unless --device cpu). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_lm_model.h"
#include "core/profile.h"
#include "bench_util.h"

static mlx_stream stream;
static float temperature, top_p = 1.0f; /* --temp, --top-p: sampled decoding (default greedy) */

static int by_value(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return (x > y) - (x < y);
}

/* Bytes read + written per second by a copy of a 256 MiB float32 array, median of 9. */
static double copy_gbps(void) {
  int shape[1] = {64 << 20};
  mlx_array a = mlx_array_new(), b = mlx_array_new();
  mlx_ones(&a, shape, 1, MLX_FLOAT32, stream);
  mlx_array_eval(a);
  double t[9];
  for (int r = -2; r < 9; r++) {
    mlx_synchronize(stream);
    double t0 = bench_now();
    mlx_copy(&b, a, stream);
    mlx_array_eval(b);
    mlx_synchronize(stream);
    if (r >= 0) t[r] = bench_now() - t0;
  }
  qsort(t, 9, sizeof t[0], by_value);
  mlx_array_free(a);
  mlx_array_free(b);
  return 2.0 * (256 << 20) / t[4] / 1e9;
}

/* TFLOP/s of an (n, n) @ (n, n) matmul of dtype, median of `runs` (at most 9). */
static double gemm_tflops(mlx_dtype dtype, int n, int runs) {
  int shape[2] = {n, n};
  mlx_array a = mlx_array_new(), b = mlx_array_new(), c = mlx_array_new();
  mlx_ones(&a, shape, 2, dtype, stream);
  mlx_ones(&b, shape, 2, dtype, stream);
  mlx_array_eval(a);
  mlx_array_eval(b);
  double t[9];
  for (int r = -2; r < runs; r++) {
    mlx_synchronize(stream);
    double t0 = bench_now();
    mlx_matmul(&c, a, b, stream);
    mlx_array_eval(c);
    mlx_synchronize(stream);
    if (r >= 0) t[r] = bench_now() - t0;
  }
  qsort(t, (size_t)runs, sizeof t[0], by_value);
  mlx_array_free(a);
  mlx_array_free(b);
  mlx_array_free(c);
  return 2.0 * n * (double)n * n / t[runs / 2] / 1e12;
}

typedef struct {
  double prefill_tps, decode_tps;
} run_result;

/* Prompts of each length whose median prefill rate is reported. */
#define PREFILL_RUNS 5

/* Prefill of a `context`-token prompt, then `decode` tokens (greedy, or sampled with --temp and
 * --top-p); tok/s of each phase. */
static int run_once(mlxc_lm_session* s, int context, int decode, int vocab, run_result* r) {
  int32_t* prompt = malloc(sizeof(int32_t) * (size_t)context);
  if (!prompt) return 1;
  for (int i = 0; i < context; i++) prompt[i] = (int32_t)((i * 7919L) % vocab);
  mlxc_lm_session_reset(s);
  mlxc_lm_generate_params p = mlxc_lm_generate_default_params();
  p.max_tokens = decode + 1;
  p.prefill_step = 4096;
  p.temperature = temperature;
  p.top_p = top_p;
  mlxc_lm_generation g;
  core_profile_reset(); /* MLXC_PROFILE: the table at exit covers the last run only */
  int status = mlxc_lm_generate(s, prompt, (size_t)context, &p, &g);
  if (!status) {
    r->prefill_tps = g.prompt_tokens / g.prompt_seconds;
    /* The first token comes from the prefill. */
    r->decode_tps = g.n_ids > 1 && g.generation_seconds > 0 ? (double)(g.n_ids - 1) / g.generation_seconds : 0;
    mlxc_lm_generation_free(&g);
  }
  free(prompt);
  return status;
}

static int parse_list(const char* text, int* out, int max) {
  int n = 0;
  for (const char* p = text; *p && n < max;) {
    out[n++] = atoi(p);
    const char* comma = strchr(p, ',');
    if (!comma) break;
    p = comma + 1;
  }
  return n;
}

int main(int argc, char** argv) {
  bench_lm_shape custom = BENCH_QWEN05;
  const bench_lm_shape* shape = &BENCH_QWEN05;
  int layers = 0;
  const char *base = NULL, *precisions = "bf16,q8,q4", *device = "gpu";
  int contexts[8] = {128, 512, 4096}, n_contexts = 3, decode = 64;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--shape"))
      shape = !strcmp(argv[i + 1], "llama8b") ? &BENCH_LLAMA8B : &BENCH_QWEN05;
    else if (!strcmp(argv[i], "--dir"))
      base = argv[i + 1];
    else if (!strcmp(argv[i], "--precisions"))
      precisions = argv[i + 1];
    else if (!strcmp(argv[i], "--contexts"))
      n_contexts = parse_list(argv[i + 1], contexts, 8);
    else if (!strcmp(argv[i], "--decode"))
      decode = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--device"))
      device = argv[i + 1];
    else if (!strcmp(argv[i], "--layers"))
      layers = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--temp"))
      temperature = (float)atof(argv[i + 1]);
    else if (!strcmp(argv[i], "--top-p"))
      top_p = (float)atof(argv[i + 1]);
  }
  if (layers > 0) { /* a shallower model of the same shape (quick profiles) */
    custom = *shape;
    custom.layers = layers;
    shape = &custom;
  }
  bool gpu = strcmp(device, "cpu") != 0;
  if (gpu) {
    bool available = false;
    mlx_cuda_is_available(&available);
    if (!available) {
      printf("SKIP: no CUDA GPU\n");
      return 0;
    }
  }
  stream = gpu ? mlx_default_gpu_stream_new() : mlx_default_cpu_stream_new();
  char default_base[256], dirs[3][600];
  snprintf(default_base, sizeof default_base, "/tmp/mlxc-bench-%s-%dl", shape->name, shape->layers);
  double t0 = bench_now();
  if (bench_lm_prepare(base ? base : default_base, shape, precisions, dirs)) return 1;
  printf("%s: models ready in %.1f s\n", shape->name, bench_now() - t0);
  double copy = gpu ? copy_gbps() : bench_parallel_memcpy_gbps((size_t)256 << 20, 5); /* all cores on the CPU */
  /* The prefill reference: cuBLAS's bf16 rate on the GPU; on the CPU the float32 GEMM that
   * multi-row bfloat16 products end in (OpenBLAS sgemm). */
  const mlx_dtype gemm_dtype = gpu ? MLX_BFLOAT16 : MLX_FLOAT32;
  const int gemm_n = gpu ? 4096 : 2048;
  double gemm = gemm_tflops(gemm_dtype, gemm_n, gpu ? 9 : 5);
  if (gpu)
    printf("device-to-device copy %.0f GB/s (read + write); bf16 GEMM %d^3 %.1f TFLOP/s\n", copy, gemm_n, gemm);
  else
    printf("all-core copy %.0f GB/s (read + write); float32 GEMM %d^3 %.3f TFLOP/s\n", copy, gemm_n, gemm);
  printf("| model | precision | context | weight MB | prefill tok/s | prefill TFLOP/s | of GEMM | decode tok/s | roofline tok/s | of roofline | first prefill tok/s |\n");
  printf("|---|---|---|---|---|---|---|---|---|---|---|\n");
  const char* names[3] = {"bf16", "q8", "q4"};
  const char* labels[3] = {"bfloat16", "8-bit", "4-bit"};
  for (int m = 0; m < 3; m++) {
    if (!strstr(precisions, names[m])) continue;
    mlxc_lm_model* model = NULL;
    mlxc_lm_session* s = NULL;
    if (mlxc_lm_load(&model, dirs[m], stream) || mlxc_lm_session_new(&s, model)) {
      fprintf(stderr, "%s: %s\n", dirs[m], mlxc_last_error());
      return 1;
    }
    size_t bytes = mlxc_lm_weight_bytes(model);
    run_result warm;
    if (run_once(s, 16, 4, shape->vocab, &warm)) { /* uploads the weights, warms the pools */
      fprintf(stderr, "%s: %s\n", dirs[m], mlxc_last_error());
      return 1;
    }
    for (int c = 0; c < n_contexts; c++) {
      run_result r;
      if (run_once(s, contexts[c], decode, shape->vocab, &r)) {
        fprintf(stderr, "%s at %d: %s\n", dirs[m], contexts[c], mlxc_last_error());
        return 1;
      }
      /* Prefill: the median of PREFILL_RUNS more prompts of this length (a prompt and one token),
       * as the PyTorch reference takes the median of warm forwards; the first one at a new length
       * (above) also pays for buffers of new sizes and new kernel configurations. */
      const double first_prefill = r.prefill_tps;
      double runs[PREFILL_RUNS];
      for (int i = 0; i < PREFILL_RUNS; i++) {
        run_result w;
        if (run_once(s, contexts[c], 0, shape->vocab, &w)) {
          fprintf(stderr, "%s at %d: %s\n", dirs[m], contexts[c], mlxc_last_error());
          return 1;
        }
        runs[i] = w.prefill_tps;
      }
      qsort(runs, PREFILL_RUNS, sizeof runs[0], by_value);
      r.prefill_tps = runs[PREFILL_RUNS / 2];
      double kv = 2.0 * shape->layers * shape->kv_heads * shape->head_dim * 2.0 * (contexts[c] + decode / 2.0);
      /* A token reads one row of an untied embedding table, not the table: the bytes streamed per
       * token (and the weights that do arithmetic) are the others. */
      double per_param = m == 0 ? 2.0 : m == 1 ? 1.0625 : 0.5625;
      double table = shape->tied ? 0.0 : (double)shape->vocab * shape->hidden * per_param;
      double streamed = (double)bytes - table;
      double roof = copy * 1e9 / (streamed + kv);
      /* Prefill work: 2 FLOPs per multiplying weight per token. */
      double params = streamed / per_param;
      double tflops = 2.0 * params * r.prefill_tps / 1e12;
      printf("| %s | %s | %d | %.0f | %.0f | %.*f | %.0f%% | %.1f | %.0f | %.0f%% | %.0f |\n", shape->name, labels[m],
             contexts[c], bytes / 1e6, r.prefill_tps, gpu ? 1 : 3, tflops, gemm > 0 ? 100 * tflops / gemm : 0,
             r.decode_tps, roof, 100 * r.decode_tps / roof, first_prefill);
      fflush(stdout);
    }
    mlxc_lm_session_free(s);
    mlxc_lm_free(model);
  }
  mlx_stream_free(stream);
  return 0;
}
