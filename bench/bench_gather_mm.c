/* The cost of composing: gather_qmm's mixture-of-experts decode step (one token, top-8 of 64
 * experts, 1408x2048 4-bit affine weights) next to quantized_matmul over the same 8 experts'
 * weights stacked beforehand (the same bytes, no gather copy); and einsum "ij,jk->ik" next to
 * matmul at 1024^3 float32. Best of REPS; each timing includes graph construction and eval. */
#include <stdio.h>

#include "bench_util.h"
#include "mlx/c/mlx.h"

#define REPS 10

static mlx_stream cpu;

static mlx_array filled(const int* shape, int ndim, unsigned seed) {
  size_t n = 1;
  for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
  float* v = malloc(n * sizeof(float));
  for (size_t i = 0; i < n; i++) {
    seed = seed * 1103515245u + 12345u;
    v[i] = ((seed >> 8) & 0xffff) / 32768.0f - 1.0f;
  }
  mlx_array a = mlx_array_new_data(v, shape, ndim, MLX_FLOAT32);
  free(v);
  return a;
}

typedef int (*bench_fn)(mlx_array* out, void* ctx);

/* Best wall time of REPS runs of fn (build + eval). */
static double best_time(bench_fn fn, void* ctx) {
  double best = 1e30;
  for (int r = 0; r < REPS; r++) {
    mlx_array out = mlx_array_new();
    double t = bench_now();
    if (fn(&out, ctx) || mlx_array_eval(out)) {
      fprintf(stderr, "failed\n");
      exit(1);
    }
    t = bench_now() - t;
    if (t < best) best = t;
    mlx_array_free(out);
  }
  return best;
}

enum { E = 64, N = 1408, K = 2048, TOPK = 8, BITS = 4, GROUP = 64 };

typedef struct {
  mlx_array x, w, scales, biases, experts, w8, scales8, biases8, x2;
} moe;

static int run_gather_qmm(mlx_array* out, void* ctx) {
  moe* m = ctx;
  mlx_optional_int gs = {GROUP, true}, b = {BITS, true};
  return mlx_gather_qmm(out, m->x, m->w, m->scales, m->biases, (mlx_array){0}, m->experts, true,
                        gs, b, "affine", false, cpu);
}

static int run_stacked_qmm(mlx_array* out, void* ctx) {
  moe* m = ctx;
  mlx_optional_int gs = {GROUP, true}, b = {BITS, true};
  return mlx_quantized_matmul(out, m->x2, m->w8, m->scales8, m->biases8, true, gs, b, "affine", cpu);
}

typedef struct {
  mlx_array a, b;
  mlx_vector_array ops;
} dense;

static int run_einsum(mlx_array* out, void* ctx) {
  return mlx_einsum(out, "ij,jk->ik", ((dense*)ctx)->ops, cpu);
}

static int run_matmul(mlx_array* out, void* ctx) {
  dense* d = ctx;
  return mlx_matmul(out, d->a, d->b, cpu);
}

/* The quantized parts of w (rows, K) as three arrays, evaluated. */
static void quantize(mlx_array w, mlx_array* q, mlx_array* s, mlx_array* b) {
  mlx_vector_array parts = mlx_vector_array_new();
  mlx_optional_int gs = {GROUP, true}, bits = {BITS, true};
  if (mlx_quantize(&parts, w, gs, bits, "affine", (mlx_array){0}, cpu) ||
      mlx_vector_array_get(q, parts, 0) || mlx_vector_array_get(s, parts, 1) ||
      mlx_vector_array_get(b, parts, 2) || mlx_array_eval(*q) || mlx_array_eval(*s) ||
      mlx_array_eval(*b)) {
    fprintf(stderr, "quantize failed\n");
    exit(1);
  }
  mlx_vector_array_free(parts);
}

int main(void) {
  cpu = mlx_default_cpu_stream_new();
  int sw[3] = {E, N, K}, s8[2] = {TOPK * N, K}, sx[4] = {1, 1, 1, K}, sx2[2] = {1, K}, si[2] = {1, TOPK};
  int32_t picks[TOPK] = {3, 17, 29, 40, 41, 52, 60, 63};
  moe m;
  mlx_array w = filled(sw, 3, 1), w8 = filled(s8, 2, 2);
  m.w = mlx_array_new(), m.scales = mlx_array_new(), m.biases = mlx_array_new();
  m.w8 = mlx_array_new(), m.scales8 = mlx_array_new(), m.biases8 = mlx_array_new();
  quantize(w, &m.w, &m.scales, &m.biases);
  quantize(w8, &m.w8, &m.scales8, &m.biases8);
  mlx_array_free(w);
  mlx_array_free(w8);
  m.x = filled(sx, 4, 3);
  m.x2 = filled(sx2, 2, 3);
  m.experts = mlx_array_new_data(picks, si, 2, MLX_INT32);
  double bytes = (double)TOPK * N * (K * BITS / 8 + 2 * 4 * (K / GROUP));
  double tg = best_time(run_gather_qmm, &m), ts = best_time(run_stacked_qmm, &m);
  printf("MoE decode, top-%d of %d experts, %dx%d %d-bit: weight bytes %.1f MB\n", TOPK, E, N, K,
         BITS, bytes / 1e6);
  printf("  gather_qmm                 %8.3f ms  %6.1f GB/s of weights\n", tg * 1e3, bytes / tg / 1e9);
  printf("  quantized_matmul, stacked  %8.3f ms  %6.1f GB/s of weights\n", ts * 1e3, bytes / ts / 1e9);
  printf("  memcpy (read + write)                  %6.1f GB/s\n", bench_memcpy_gbps(256 << 20, 5));

  int sd[2] = {1024, 1024};
  dense d = {filled(sd, 2, 4), filled(sd, 2, 5), mlx_vector_array_new()};
  mlx_vector_array_append_value(d.ops, d.a);
  mlx_vector_array_append_value(d.ops, d.b);
  double te = best_time(run_einsum, &d), tm = best_time(run_matmul, &d);
  double flops = 2.0 * 1024 * 1024 * 1024;
  printf("float32 1024^3: einsum \"ij,jk->ik\" %.3f ms (%.1f GFLOP/s), matmul %.3f ms (%.1f GFLOP/s)\n",
         te * 1e3, flops / te / 1e9, tm * 1e3, flops / tm / 1e9);

  mlx_array arrays[] = {m.x, m.x2, m.w, m.scales, m.biases, m.w8, m.scales8, m.biases8, m.experts, d.a, d.b};
  for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) mlx_array_free(arrays[i]);
  mlx_vector_array_free(d.ops);
  mlx_stream_free(cpu);
  return 0;
}
