/* Speculative and batch decoding on the shipped model (models/kjv-llama-7m), CPU:
 *  - greedy tokens per second, plain vs speculative with the model's own 4-bit conversion as
 *    the draft (num_draft_tokens 2, 3, 4), for the bfloat16 (as shipped) and float32 main model,
 *    with the share of accepted draft tokens; the outputs are checked to be identical;
 *  - batch generation: total generated tokens per second for 1, 4 and 8 rows (the 4-bit model);
 *  - what decides both: the time of one forward pass of 1, 2, 4 and 8 tokens after 16 (the
 *    best of 20), for each model; speculative decoding pays when k + 1 tokens cost about one.
 * Median of MLXC_BENCH_REPEATS (default 3) runs of 128 tokens each.
 *   bench_lm_speculative [shipped_model_dir]   (default: models/kjv-llama-7m) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_util.h"
#include "mlx/c/mlx.h"
#include "mlxc/error.h"
#include "mlxc/lm.h"
#include "mlxc/tokenizer.h"

#define TOKENS 128

static mlx_stream cpu;
static int repeats = 3;

static int by_value(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return (x > y) - (x < y);
}

static double median(double* v, int n) {
  qsort(v, (size_t)n, sizeof *v, by_value);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Median generation tok/s of greedy decoding, speculative when draft is set; *ids gets the
 * tokens of the last run (malloc'd) and *accepted the share of draft tokens accepted. */
static int decode(mlxc_lm_model* m, mlxc_lm_model* draft, int k, const int32_t* prompt, size_t n, double* tps,
                  double* accepted, int32_t** ids, size_t* n_ids) {
  double runs[16];
  int status = 0;
  for (int r = 0; r < repeats && !status; r++) {
    mlxc_lm_session *s = NULL, *d = NULL;
    mlxc_lm_generate_params p = mlxc_lm_generate_default_params();
    p.max_tokens = TOKENS;
    mlxc_lm_generation gen = {0};
    status = mlxc_lm_session_new(&s, m);
    if (!status && draft) status = mlxc_lm_session_new(&d, draft);
    if (!status) status = draft ? mlxc_lm_generate_speculative(s, d, prompt, n, k, &p, &gen) : mlxc_lm_generate(s, prompt, n, &p, &gen);
    if (!status) {
      runs[r] = gen.n_ids / gen.generation_seconds;
      *accepted = gen.draft_tokens ? (double)gen.draft_accepted / gen.draft_tokens : 0;
      free(*ids);
      *ids = malloc(sizeof(int32_t) * gen.n_ids);
      memcpy(*ids, gen.ids, sizeof(int32_t) * gen.n_ids);
      *n_ids = gen.n_ids;
    }
    mlxc_lm_generation_free(&gen);
    mlxc_lm_session_free(s);
    mlxc_lm_session_free(d);
  }
  if (!status) *tps = median(runs, repeats);
  return status;
}

static int bench_speculative(const char* name, mlxc_lm_model* m, mlxc_lm_model* draft, const int32_t* prompt, size_t n) {
  double tps, plain_tps, accepted;
  int32_t *plain_ids = NULL, *ids = NULL;
  size_t n_plain = 0, n_ids = 0;
  int status = decode(m, NULL, 0, prompt, n, &plain_tps, &accepted, &plain_ids, &n_plain);
  if (!status) printf("%-10s plain                 %7.1f tok/s\n", name, plain_tps);
  for (int k = 2; k <= 4 && !status; k++) {
    status = decode(m, draft, k, prompt, n, &tps, &accepted, &ids, &n_ids);
    bool same = n_ids == n_plain && !memcmp(ids, plain_ids, sizeof(int32_t) * n_ids);
    if (!status)
      printf("%-10s speculative, %d drafts %7.1f tok/s  (x%.2f)  %4.1f%% of draft tokens accepted  output %s\n", name, k,
             tps, tps / plain_tps, 100 * accepted, same ? "identical" : "DIFFERS");
  }
  free(plain_ids);
  free(ids);
  return status;
}

static int bench_forward(const char* name, mlxc_lm_model* m, const int32_t* prompt) {
  mlxc_lm_session* s = NULL;
  mlx_array logits = mlx_array_new();
  int status = mlxc_lm_session_new(&s, m);
  if (!status) status = mlxc_lm_forward(s, prompt, 16, &logits);
  printf("%-10s forward of 1, 2, 4, 8 tokens:", name);
  for (int L = 1; L <= 8 && !status; L *= 2) {
    double best = 1e30;
    for (int r = 0; r < 20 && !status; r++) {
      double start = bench_now();
      status = mlxc_lm_forward(s, prompt, (size_t)L, &logits); /* any valid tokens */
      double t = bench_now() - start;
      best = t < best ? t : best;
      if (!status) status = mlxc_lm_session_truncate(s, 16);
    }
    printf(" %6.2f", best * 1e3);
  }
  printf(" ms\n");
  mlx_array_free(logits);
  mlxc_lm_session_free(s);
  return status;
}

static int bench_batch(mlxc_lm_model* m, const int32_t* prompt, size_t n) {
  const int32_t* prompts[8];
  size_t lengths[8];
  mlxc_lm_generation outs[8];
  int status = 0;
  for (int rows = 1; rows <= 8 && !status; rows *= 2) {
    if (rows == 2) continue;
    double runs[16];
    for (int r = 0; r < rows; r++) {
      prompts[r] = prompt + r % 3; /* different lengths */
      lengths[r] = n - (size_t)(r % 3);
    }
    for (int rep = 0; rep < repeats && !status; rep++) {
      mlxc_lm_generate_params p = mlxc_lm_generate_default_params();
      p.max_tokens = TOKENS;
      status = mlxc_lm_generate_batch(m, prompts, lengths, (size_t)rows, &p, 1, outs);
      if (status) break;
      size_t total = 0;
      for (int r = 0; r < rows; r++) total += outs[r].n_ids;
      runs[rep] = total / outs[0].generation_seconds;
      for (int r = 0; r < rows; r++) mlxc_lm_generation_free(&outs[r]);
    }
    if (!status) printf("batch of %d rows (4-bit)     %7.1f generated tok/s in all\n", rows, median(runs, repeats));
  }
  return status;
}

int main(int argc, char** argv) {
  cpu = mlx_default_cpu_stream_new();
  const char* shipped = argc > 1 ? argv[1] : "models/kjv-llama-7m";
  if (getenv("MLXC_BENCH_REPEATS")) repeats = atoi(getenv("MLXC_BENCH_REPEATS"));
  if (repeats < 1 || repeats > 16) repeats = 3;
  char tmp[] = "/tmp/mlxc-bench-spec-XXXXXX", f32_dir[64], q4_dir[64];
  if (!mkdtemp(tmp)) return 1;
  snprintf(f32_dir, sizeof f32_dir, "%s/f32", tmp);
  snprintf(q4_dir, sizeof q4_dir, "%s/q4", tmp);
  mlxc_lm_convert_params f32 = {.dtype_name = "float32", .dtype = MLX_FLOAT32};
  mlxc_lm_convert_params q4 = {.quantize = true, .bits = 4, .group_size = 64};
  mlxc_lm_model *bf16_model = NULL, *f32_model = NULL, *q4_model = NULL;
  mlxc_tokenizer* tok = NULL;
  int32_t* prompt = NULL;
  size_t n = 0;
  const char* text = "In the beginning God created the heaven and the earth. And the earth was without form, and void;";
  int status = mlxc_lm_convert(shipped, f32_dir, &f32);
  if (!status) status = mlxc_lm_convert(shipped, q4_dir, &q4);
  if (!status) status = mlxc_lm_load(&bf16_model, shipped, cpu);
  if (!status) status = mlxc_lm_load(&f32_model, f32_dir, cpu);
  if (!status) status = mlxc_lm_load(&q4_model, q4_dir, cpu);
  if (!status) status = mlxc_tokenizer_load(&tok, shipped);
  if (!status) status = mlxc_tokenizer_encode(tok, text, strlen(text), true, &prompt, &n);
  if (!status) {
    printf("%s, prompt of %zu tokens, %d greedy tokens, median of %d runs; draft: its 4-bit conversion (group 64)\n",
           shipped, n, TOKENS, repeats);
    status = bench_speculative("bfloat16", bf16_model, q4_model, prompt, n);
  }
  if (!status) status = bench_speculative("float32", f32_model, q4_model, prompt, n);
  if (!status) status = bench_batch(q4_model, prompt, n);
  if (!status && n >= 16) status = bench_forward("bfloat16", bf16_model, prompt);
  if (!status && n >= 16) status = bench_forward("float32", f32_model, prompt);
  if (!status && n >= 16) status = bench_forward("4-bit", q4_model, prompt);
  if (status) fprintf(stderr, "bench_lm_speculative: %s\n", mlxc_last_error());
  free(prompt);
  mlxc_tokenizer_free(tok);
  mlxc_lm_free(bf16_model);
  mlxc_lm_free(f32_model);
  mlxc_lm_free(q4_model);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
  if (system(cmd)) fprintf(stderr, "could not remove %s\n", tmp);
  return status;
}
