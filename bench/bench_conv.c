/* Convolutions through the mlx-c API (graph node + eval) next to OpenBLAS sgemm on the GEMM the
 * convolution amounts to (rows = output positions, K = taps x input channels per group), timed
 * alternately in the same run: Whisper's front-end conv1d layers, a ViT patch embedding, LFM2's
 * depthwise causal conv1d and a stride-2 transposed conv1d. */
#include <cblas.h>
#include <stdio.h>

#include "backend/cpu/threadpool.h"
#include "bench_util.h"
#include "mlx/c/mlx.h"

#define REPS 10

typedef struct {
  const char* name;
  int D, N, S[2], C, O, K[2], stride, pad_lo, pad_hi, groups;
  bool transpose;
  mlx_dtype dtype;
} bench_case;

static float* filled(size_t n, unsigned seed) {
  float* p = malloc(n * sizeof(float) + 4);
  for (size_t i = 0; p && i < n; i++) p[i] = (float)(((i + seed) * 2654435761u) % 1000) / 1000.0f - 0.5f;
  return p;
}

static int run_op(const bench_case* c, mlx_array* y, mlx_array x, mlx_array w, mlx_stream s) {
  int lo = c->pad_lo, hi = c->pad_hi, st = c->stride;
  if (c->transpose) return mlx_conv_transpose1d(y, x, w, st, lo, 1, 0, c->groups, s);
  if (c->D == 2) return mlx_conv2d(y, x, w, st, st, lo, lo, 1, 1, c->groups, s);
  return mlx_conv_general(y, x, w, &st, 1, &lo, 1, &hi, 1, NULL, 0, NULL, 0, c->groups, false, s);
}

static int bench(const bench_case* c, mlx_stream s, double memcpy_gbps) {
  int xs[4] = {c->N}, ws[4] = {c->O}, Cg = c->C / c->groups;
  int64_t taps = 1, nx = c->N, nw = c->O;
  for (int i = 0; i < c->D; i++) {
    xs[1 + i] = c->S[i];
    ws[1 + i] = c->K[i];
    taps *= c->K[i];
    nx *= c->S[i];
  }
  xs[c->D + 1] = c->C;
  ws[c->D + 1] = Cg;
  nx *= c->C;
  nw *= taps * Cg;
  float *xv = filled((size_t)nx, 1), *wv = filled((size_t)nw, 2);
  mlx_array x32 = mlx_array_new_data(xv, xs, c->D + 2, MLX_FLOAT32);
  mlx_array w32 = mlx_array_new_data(wv, ws, c->D + 2, MLX_FLOAT32);
  mlx_array x = mlx_array_new(), w = mlx_array_new(), y = mlx_array_new();
  if (mlx_astype(&x, x32, c->dtype, s) || mlx_astype(&w, w32, c->dtype, s) || mlx_array_eval(x) ||
      mlx_array_eval(w) || run_op(c, &y, x, w, s) || mlx_array_eval(y))
    return 1;
  int64_t rows = (int64_t)mlx_array_size(y) / c->O;
  /* Each output element sums taps * Cg products; a transposed conv's MACs are those of its
   * scatter form: input positions x O x taps x Cg. */
  int64_t macs = c->transpose ? nx / c->C * c->O * taps * Cg : rows * c->O * taps * Cg;
  /* The reference GEMM: one (M, K) x (K, O/groups) per group, M = rows of the scatter or gather. */
  int M = (int)(c->transpose ? nx / c->C : rows), K = (int)(taps * Cg), Og = c->O / c->groups;
  float *a = filled((size_t)M * K, 3), *b = filled((size_t)K * Og, 4), *out = filled((size_t)M * Og, 5);
  double best_op = 1e30, best_blas = 1e30;
  for (int r = 0; r <= REPS; r++) {
    double t = bench_now();
    for (int g = 0; g < c->groups && Cg > 1; g++)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, Og, K, 1.0f, a, K, b, K, 0.0f, out, Og);
    t = bench_now() - t;
    if (r && t < best_blas) best_blas = t;
    t = bench_now();
    if (run_op(c, &y, x, w, s) || mlx_array_eval(y)) return 1;
    t = bench_now() - t;
    if (r && t < best_op) best_op = t;
  }
  double gflop = 2.0 * (double)macs / 1e9;
  printf("  %-44s %8.3f ms %7.1f GFLOP/s", c->name, best_op * 1e3, gflop / best_op);
  if (Cg > 1) {
    printf("   sgemm %dx%dx%d%s: %7.1f GFLOP/s (%3.0f%%)", M, Og, K, c->groups > 1 ? " per group" : "",
           gflop / best_blas, 100 * best_blas / best_op);
  } else { /* no GEMM to compare with: streaming input and output against memcpy */
    double gbps = (double)(nx + rows * c->O) * (c->dtype == MLX_FLOAT32 ? 4 : 2) / best_op / 1e9;
    printf("   %5.1f GB/s in+out (memcpy %5.1f GB/s, %3.0f%%)", gbps, memcpy_gbps,
           100 * gbps / memcpy_gbps);
  }
  printf("\n");
  mlx_array_free(x32);
  mlx_array_free(w32);
  mlx_array_free(x);
  mlx_array_free(w);
  mlx_array_free(y);
  free(xv);
  free(wv);
  free(a);
  free(b);
  free(out);
  return 0;
}

int main(void) {
  mlx_stream s = mlx_default_cpu_stream_new();
  const bench_case cases[] = {
      {"whisper conv1 f32 (1,3000,80)->384 k3", 1, 1, {3000}, 80, 384, {3}, 1, 1, 1, 1, false, MLX_FLOAT32},
      {"whisper conv1 f16", 1, 1, {3000}, 80, 384, {3}, 1, 1, 1, 1, false, MLX_FLOAT16},
      {"whisper conv2 f32 (1,3000,384)->384 k3 s2", 1, 1, {3000}, 384, 384, {3}, 2, 1, 1, 1, false, MLX_FLOAT32},
      {"patch embed f32 (1,224,224,3)->768 k16 s16", 2, 1, {224, 224}, 3, 768, {16, 16}, 16, 0, 0, 1, false, MLX_FLOAT32},
      {"patch embed bf16", 2, 1, {224, 224}, 3, 768, {16, 16}, 16, 0, 0, 1, false, MLX_BFLOAT16},
      {"grouped f32 (1,1024,512)->512 k3 g8", 1, 1, {1024}, 512, 512, {3}, 1, 1, 1, 8, false, MLX_FLOAT32},
      {"depthwise causal f32 (1,2048,1024) k3", 1, 1, {2048}, 1024, 1024, {3}, 1, 2, 0, 1024, false, MLX_FLOAT32},
      {"conv_transpose1d f32 (1,1500,384)->384 k4 s2", 1, 1, {1500}, 384, 384, {4}, 2, 1, 0, 1, true, MLX_FLOAT32},
  };
  printf("Convolutions (best of %d; %d pool threads, %d OpenBLAS threads; sgemm = the GEMM the "
         "convolution amounts to, same run)\n", REPS, cpu_max_threads(), openblas_get_num_threads());
  double memcpy_gbps = bench_memcpy_gbps((size_t)64 << 20, 10);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    if (bench(&cases[i], s, memcpy_gbps)) {
      fprintf(stderr, "bench_conv: %s failed\n", cases[i].name);
      return 1;
    }
  mlx_stream_free(s);
  return 0;
}
