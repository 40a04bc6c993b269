/* Reductions against memory bandwidth: a full sum, a last-axis row sum (4096 x 4096) and, for
 * information, a first-axis column sum over 16M float32, at 1 thread, 2 threads and all threads,
 * next to memcpy measured in the same run with the same thread count (memcpy split over the pool,
 * read + write counted). A reduction's GB/s counts the bytes it reads; best time of N. */
#include <stdio.h>

#include "bench_util.h"
#include "mlx/c/mlx.h"

enum { ROWS = 4096, COLS = 4096, N = ROWS * COLS, REPS = 7 };

static mlx_stream cpu;

/* Best seconds of REPS evaluations of sum over `axes` (all when n_axes = 0). */
static double best_sum_seconds(mlx_array a, const int* axes, size_t n_axes) {
  double best = 1e30;
  for (int r = 0; r < REPS; r++) {
    mlx_array out = mlx_array_new();
    double t = bench_now();
    int rc = n_axes ? mlx_sum_axes(&out, a, axes, n_axes, false, cpu) : mlx_sum(&out, a, false, cpu);
    if (rc || mlx_array_eval(out)) return -1;
    t = bench_now() - t;
    mlx_array_free(out);
    if (t < best) best = t;
  }
  return best;
}

int main(void) {
  cpu = mlx_default_cpu_stream_new();
  float* data = malloc(sizeof(float) * N);
  if (!data) return 1;
  for (int i = 0; i < N; i++) data[i] = (float)(i % 1000) * 0.001f;
  int shape[2] = {ROWS, COLS};
  mlx_array a = mlx_array_new_data(data, shape, 2, MLX_FLOAT32);
  free(data);
  mlx_array_eval(a);
  double bytes = (double)N * sizeof(float);
  int pool = cpu_max_threads(), counts[3] = {1, 2, pool};
  printf("reductions over %d float32 (%.0f MiB), GB/s of bytes read; memcpy counts read + write\n", N,
         bytes / (1 << 20));
  printf("%-8s %10s %12s %12s %12s %16s\n", "threads", "memcpy", "full sum", "row sum", "column sum",
         "full/row vs memcpy");
  for (int k = 0; k < 3; k++) {
    if (k > 0 && counts[k] <= counts[k - 1]) continue;
    cpu_set_max_threads(counts[k]);
    double copy = bench_parallel_memcpy_gbps((size_t)bytes, REPS);
    int last = -1, first = 0;
    double full = bytes / best_sum_seconds(a, NULL, 0) / 1e9;
    double row = bytes / best_sum_seconds(a, &last, 1) / 1e9;
    double column = bytes / best_sum_seconds(a, &first, 1) / 1e9;
    printf("%-8d %10.1f %12.1f %12.1f %12.1f %8.0f%% %6.0f%%\n", counts[k], copy, full, row, column,
           100 * full / copy, 100 * row / copy);
  }
  cpu_set_max_threads(pool);
  mlx_array_free(a);
  mlx_stream_free(cpu);
  return 0;
}
