/* fast.h kernels against memory bandwidth: rms_norm over (4096, 4096) bfloat16, rope on the
 * queries of a 512-token prefill, and decode attention (one query, 32 heads, 8 key/value heads,
 * head_dim 128) over a 4096-token bfloat16 KV cache. Each GB/s counts bytes read + written and
 * is shown next to memcpy's GB/s measured in the same run. */
#include <stdio.h>

#include "bench_util.h"
#include "mlx/c/mlx.h"

static mlx_stream cpu;

static mlx_array random_bf16(const int* shape, int ndim) {
  mlx_array key = mlx_array_new(), x = mlx_array_new();
  mlx_random_key(&key, 7);
  mlx_random_bits(&x, shape, (size_t)ndim, 2, key, cpu);
  /* Reinterpret random bits as small bfloat16 numbers: keep sign and low exponent bits sane. */
  mlx_array_eval(x);
  const uint16_t* bits = mlx_array_data_uint16(x);
  size_t n = mlx_array_size(x);
  uint16_t* data = malloc(n * 2);
  for (size_t i = 0; i < n; i++) data[i] = (uint16_t)((bits[i] & 0x807f) | 0x3f00); /* ±[0.5, 1) */
  mlx_array out = mlx_array_new_data(data, shape, ndim, MLX_BFLOAT16);
  free(data);
  mlx_array_free(key);
  mlx_array_free(x);
  return out;
}

/* Best time of `reps` evaluations of the op built by `build`. */
typedef int (*build_fn)(mlx_array* out, void* ctx);

static double best_seconds(build_fn build, void* ctx, int reps) {
  double best = 1e30;
  for (int r = 0; r < reps; r++) {
    mlx_array out = mlx_array_new();
    double t = bench_now();
    if (build(&out, ctx) || mlx_array_eval(out)) return -1;
    t = bench_now() - t;
    if (t < best) best = t;
    mlx_array_free(out);
  }
  return best;
}

typedef struct {
  mlx_array x, w, q, k, v;
} inputs;

static int build_rms(mlx_array* out, void* p) {
  inputs* in = p;
  return mlx_fast_rms_norm(out, in->x, in->w, 1e-5f, cpu);
}

static int build_rope(mlx_array* out, void* p) {
  inputs* in = p;
  mlx_optional_float base = {10000.0f, true};
  return mlx_fast_rope(out, in->q, 128, false, base, 1.0f, 100, mlx_array_new(), cpu);
}

static int build_sdpa(mlx_array* out, void* p) {
  inputs* in = p;
  return mlx_fast_scaled_dot_product_attention(out, in->q, in->k, in->v, 0.0884f, "", mlx_array_new(),
                                               mlx_array_new(), cpu);
}

int main(void) {
  cpu = mlx_default_cpu_stream_new();
  double memcpy_gbps = bench_memcpy_gbps((size_t)64 << 20, 10);
  printf("memcpy: %.1f GB/s (read + write)\n", memcpy_gbps);

  inputs in;
  int xs[2] = {4096, 4096}, ws[1] = {4096};
  in.x = random_bf16(xs, 2);
  in.w = random_bf16(ws, 1);
  double t = best_seconds(build_rms, &in, 5);
  double bytes = 2.0 * 4096 * 4096 * 2;
  printf("rms_norm (4096, 4096) bf16: %.2f ms, %.1f GB/s = %.0f%% of memcpy\n", t * 1e3, bytes / t / 1e9,
         100 * bytes / t / 1e9 / memcpy_gbps);

  int qs[4] = {1, 32, 512, 128};
  in.q = random_bf16(qs, 4);
  t = best_seconds(build_rope, &in, 5);
  bytes = 2.0 * 32 * 512 * 128 * 2;
  printf("rope (1, 32, 512, 128) bf16: %.2f ms, %.1f GB/s = %.0f%% of memcpy\n", t * 1e3, bytes / t / 1e9,
         100 * bytes / t / 1e9 / memcpy_gbps);
  mlx_array_free(in.q);

  int q1[4] = {1, 32, 1, 128}, kv[4] = {1, 8, 4096, 128};
  in.q = random_bf16(q1, 4);
  in.k = random_bf16(kv, 4);
  in.v = random_bf16(kv, 4);
  t = best_seconds(build_sdpa, &in, 10);
  bytes = 2.0 * 8 * 4096 * 128 * 2; /* keys + values read once */
  printf("sdpa decode, 4096-token bf16 KV cache (32 q / 8 kv heads, d 128): %.2f ms, %.1f GB/s = %.0f%% of memcpy\n",
         t * 1e3, bytes / t / 1e9, 100 * bytes / t / 1e9 / memcpy_gbps);
  mlx_array_free(in.x);
  mlx_array_free(in.w);
  mlx_array_free(in.q);
  mlx_array_free(in.k);
  mlx_array_free(in.v);
  return 0;
}
