/* GPU microbenchmarks through the mlx-c API on the default GPU stream, side by side with the
 * device-to-device copy bandwidth measured in the same run (the decode roofline):
 *   copy      a 256 MiB float32 array (bytes read + written)
 *   gemv      (1, 4096) @ (4096, 4096)^T in bfloat16 (weight bytes; 4 weights rotated so that
 *             L2 does not serve them)
 *   attention decode over 4096 cached bfloat16 tokens, 32 query heads over 8 KV heads,
 *             head dim 128 (K and V bytes; 6 caches of 16 MiB rotated), and the same op over 16
 *             tokens: the per-step floor of host work and launches, which the 4096-token figure
 *             must stay well above to be a GPU figure, and over 16384 tokens (2 caches rotated)
 *   qgemv     (1, 4096) @ (4096, 4096)^T with 4-bit and 8-bit affine weights, group 64 (packed
 *             weight + scale + bias bytes; 4 weights rotated)
 * Each figure: median of 5 timings of a batch of launches, synchronised around the batch.
 * Prints "SKIP" without a GPU. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "mlx/c/mlx.h"

static mlx_stream gpu;

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

static int cmp(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y;
}

/* A device-resident array of random values. */
static mlx_array random_gpu(const int* shape, int nd, mlx_dtype dtype) {
  mlx_array key = mlx_array_new(), r = mlx_array_new(), out = mlx_array_new();
  mlx_array lo = mlx_array_new_float(-1.0f), hi = mlx_array_new_float(1.0f);
  static uint64_t seed = 1;
  mlx_random_key(&key, seed++);
  mlx_random_uniform(&r, lo, hi, shape, (size_t)nd, MLX_FLOAT32, key, mlx_default_cpu_stream_new());
  mlx_astype(&out, r, dtype, gpu);
  mlx_array_eval(out);
  mlx_array_free(key);
  mlx_array_free(r);
  mlx_array_free(lo);
  mlx_array_free(hi);
  return out;
}

typedef void (*step_fn)(void* ctx, int i);

/* Seconds per step: median over 5 batches of `iters` steps. */
static double time_steps(step_fn fn, void* ctx, int iters) {
  for (int i = 0; i < 3; i++) fn(ctx, i); /* warm-up: uploads, handles, pools */
  mlx_synchronize(gpu);
  double t[5];
  for (int r = 0; r < 5; r++) {
    double t0 = now();
    for (int i = 0; i < iters; i++) fn(ctx, i);
    mlx_synchronize(gpu);
    t[r] = (now() - t0) / iters;
  }
  qsort(t, 5, sizeof t[0], cmp);
  return t[2];
}

typedef struct {
  mlx_array in[8];
  mlx_array extra[9];
  int n;
} bench_ctx;

static void copy_step(void* p, int i) {
  bench_ctx* c = p;
  mlx_array out = mlx_array_new();
  mlx_copy(&out, c->in[0], gpu);
  mlx_array_eval(out);
  mlx_array_free(out);
}

static void gemv_step(void* p, int i) {
  bench_ctx* c = p;
  mlx_array wt = mlx_array_new(), out = mlx_array_new();
  mlx_transpose(&wt, c->in[i % c->n], gpu);
  mlx_matmul(&out, c->extra[0], wt, gpu);
  mlx_array_eval(out);
  mlx_array_free(wt);
  mlx_array_free(out);
}

static void attention_step(void* p, int i) {
  bench_ctx* c = p;
  mlx_array out = mlx_array_new();
  mlx_fast_scaled_dot_product_attention(&out, c->extra[0], c->in[i % c->n], c->extra[1 + i % c->n],
                                        0.088f, "", mlx_array_new(), mlx_array_new(), gpu);
  mlx_array_eval(out);
  mlx_array_free(out);
}

static int qbits_now = 4;

static void qgemv_step(void* p, int i) {
  bench_ctx* c = p;
  mlx_array out = mlx_array_new();
  mlx_optional_int gs = {64, true}, nb = {qbits_now, true};
  int k = i % c->n;
  mlx_quantized_matmul(&out, c->extra[0], c->in[k], c->extra[1 + k], c->extra[5 + k], true, gs, nb, "affine",
                       gpu);
  mlx_array_eval(out);
  mlx_array_free(out);
}

int main(void) {
  int count = 0;
  mlx_device_count(&count, MLX_GPU);
  if (!count) {
    printf("SKIP: no CUDA GPU\n");
    return 0;
  }
  gpu = mlx_default_gpu_stream_new();

  bench_ctx copy = {.n = 1};
  int big[1] = {1 << 26};
  copy.in[0] = random_gpu(big, 1, MLX_FLOAT32);
  double tc = time_steps(copy_step, &copy, 20);
  double copy_gbs = 2.0 * 4 * (double)(1 << 26) / tc / 1e9;
  mlx_array_free(copy.in[0]);

  bench_ctx gemv = {.n = 4};
  int ws[2] = {4096, 4096}, xs[2] = {1, 4096};
  for (int i = 0; i < 4; i++) gemv.in[i] = random_gpu(ws, 2, MLX_BFLOAT16);
  gemv.extra[0] = random_gpu(xs, 2, MLX_BFLOAT16);
  double tg = time_steps(gemv_step, &gemv, 200);
  double gemv_gbs = 4096.0 * 4096 * 2 / tg / 1e9;

  bench_ctx att = {.n = 6}, small = {.n = 1};
  int qs[4] = {1, 32, 1, 128}, ks[4] = {1, 8, 4096, 128}, ks16[4] = {1, 8, 16, 128};
  att.extra[0] = random_gpu(qs, 4, MLX_BFLOAT16);
  for (int i = 0; i < att.n; i++) {
    att.in[i] = random_gpu(ks, 4, MLX_BFLOAT16);
    att.extra[1 + i] = random_gpu(ks, 4, MLX_BFLOAT16);
  }
  double ta = time_steps(attention_step, &att, 200);
  double att_gbs = 2.0 * 8 * 4096 * 128 * 2 / ta / 1e9;
  small.extra[0] = att.extra[0];
  small.in[0] = random_gpu(ks16, 4, MLX_BFLOAT16);
  small.extra[1] = random_gpu(ks16, 4, MLX_BFLOAT16);
  double ta16 = time_steps(attention_step, &small, 200);
  bench_ctx longer = {.n = 2};
  int kl[4] = {1, 8, 16384, 128};
  longer.extra[0] = att.extra[0];
  for (int i = 0; i < longer.n; i++) {
    longer.in[i] = random_gpu(kl, 4, MLX_BFLOAT16);
    longer.extra[1 + i] = random_gpu(kl, 4, MLX_BFLOAT16);
  }
  double tal = time_steps(attention_step, &longer, 100);
  double long_gbs = 2.0 * 8 * 16384 * 128 * 2 / tal / 1e9;
  for (int i = 0; i < longer.n; i++) {
    mlx_array_free(longer.in[i]);
    mlx_array_free(longer.extra[1 + i]);
  }

  double tq[2], q_gbs[2];
  const int qbits[2] = {4, 8};
  for (int b = 0; b < 2; b++) {
    bench_ctx qg = {.n = 4};
    qg.extra[0] = gemv.extra[0];
    for (int i = 0; i < 4; i++) {
      mlx_vector_array q = mlx_vector_array_new();
      mlx_optional_int gs = {64, true}, nb = {qbits[b], true};
      mlx_quantize(&q, gemv.in[i], gs, nb, "affine", mlx_array_new(), gpu);
      mlx_vector_array_get(&qg.in[i], q, 0);
      mlx_vector_array_get(&qg.extra[1 + i], q, 1);
      mlx_vector_array_get(&qg.extra[5 + i], q, 2);
      mlx_vector_array_free(q);
    }
    qbits_now = qbits[b];
    tq[b] = time_steps(qgemv_step, &qg, 200);
    double bytes = 4096.0 * 4096 * qbits[b] / 8 + 2.0 * 2 * 4096 * (4096 / 64);
    q_gbs[b] = bytes / tq[b] / 1e9;
    for (int i = 0; i < 4; i++) {
      mlx_array_free(qg.in[i]);
      mlx_array_free(qg.extra[1 + i]);
      mlx_array_free(qg.extra[5 + i]);
    }
  }

  printf("%-52s %10s %10s %8s\n", "benchmark (GPU 0)", "time", "GB/s", "of copy");
  printf("%-52s %8.1f us %10.0f %7.0f%%\n", "device-to-device copy, 256 MiB f32 (read + write)", tc * 1e6, copy_gbs, 100.0);
  printf("%-52s %8.1f us %10.0f %7.0f%%\n", "bf16 GEMV 4096x4096 (weights)", tg * 1e6, gemv_gbs, 100 * gemv_gbs / copy_gbs);
  printf("%-52s %8.1f us %10.0f %7.0f%%\n", "decode attention 4096 bf16 tokens, 32q/8kv x 128", ta * 1e6, att_gbs,
         100 * att_gbs / copy_gbs);
  printf("%-52s %8.1f us %10s %8s\n", "  the same over 16 tokens (per-step floor)", ta16 * 1e6, "-", "-");
  printf("%-52s %8.1f us %10.0f %7.0f%%\n", "  the same over 16384 tokens", tal * 1e6, long_gbs,
         100 * long_gbs / copy_gbs);
  for (int b = 0; b < 2; b++) {
    char name[64];
    snprintf(name, sizeof name, "%d-bit affine GEMV 4096x4096, group 64", qbits[b]);
    printf("%-52s %8.1f us %10.0f %7.0f%%\n", name, tq[b] * 1e6, q_gbs[b], 100 * q_gbs[b] / copy_gbs);
  }
  for (int i = 0; i < 4; i++) mlx_array_free(gemv.in[i]);
  for (int i = 0; i < att.n; i++) {
    mlx_array_free(att.in[i]);
    mlx_array_free(att.extra[1 + i]);
  }
  mlx_array_free(small.in[0]);
  mlx_array_free(small.extra[1]);
  mlx_array_free(gemv.extra[0]);
  mlx_array_free(att.extra[0]);
  return 0;
}
