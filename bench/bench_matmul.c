/* float32 GEMM 2048^3 through mlx_matmul (graph node + eval) next to cblas_sgemm called
 * directly on the same buffers, in the same run: the overhead of the wrapper. */
#include <cblas.h>
#include <stdio.h>

#include "bench_util.h"
#include "mlx/c/mlx.h"

#define DIM 2048
#define REPS 10

int main(void) {
  mlx_stream cpu = mlx_default_cpu_stream_new();
  size_t n = (size_t)DIM * DIM;
  float* a = malloc(n * sizeof(float));
  float* b = malloc(n * sizeof(float));
  float* c = malloc(n * sizeof(float));
  if (!a || !b || !c) return 1;
  for (size_t i = 0; i < n; i++) {
    a[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
    b[i] = (float)((i * 104729) % 1000) / 1000.0f - 0.5f;
  }
  int shape[2] = {DIM, DIM};
  mlx_array A = mlx_array_new_data(a, shape, 2, MLX_FLOAT32), B = mlx_array_new_data(b, shape, 2, MLX_FLOAT32);
  double flops = 2.0 * DIM * DIM * DIM, best_blas = 1e30, best_mlx = 1e30;
  /* Alternate the two so both see the same machine state; first round warms up. */
  for (int r = 0; r <= REPS; r++) {
    double t = bench_now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, DIM, DIM, DIM, 1.0f, a, DIM, b, DIM, 0.0f, c, DIM);
    t = bench_now() - t;
    if (r && t < best_blas) best_blas = t;
    mlx_array C = mlx_array_new();
    t = bench_now();
    if (mlx_matmul(&C, A, B, cpu) || mlx_array_eval(C)) return 1;
    t = bench_now() - t;
    if (r && t < best_mlx) best_mlx = t;
    mlx_array_free(C);
  }
  printf("float32 GEMM %d^3 (best of %d)\n", DIM, REPS);
  printf("  cblas_sgemm : %8.2f ms  %7.1f GFLOP/s\n", best_blas * 1e3, flops / best_blas / 1e9);
  printf("  mlx_matmul  : %8.2f ms  %7.1f GFLOP/s  (overhead %+.1f%%)\n", best_mlx * 1e3,
         flops / best_mlx / 1e9, 100 * (best_mlx / best_blas - 1));
  mlx_array_free(A);
  mlx_array_free(B);
  mlx_stream_free(cpu);
  free(a);
  free(b);
  free(c);
  return 0;
}
