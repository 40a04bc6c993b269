/* Elementwise ops against memory bandwidth: add over 16M float32 (read 2, write 1), exp and a
 * broadcast row add, each at 1 thread, 2 threads and all threads, next to memcpy measured in the
 * same run with the same thread count (memcpy split over the pool, read + write counted).
 * GB/s = bytes read + written / best time of N. Set MLXC_NUM_THREADS to size the pool. */
#include <stdio.h>

#include "bench_util.h"
#include "mlx/c/mlx.h"

enum { N = 16 << 20, REPS = 7 };

static mlx_stream cpu;

typedef int (*build_fn)(mlx_array* out, mlx_array a, mlx_array b);
static int build_add(mlx_array* out, mlx_array a, mlx_array b) { return mlx_add(out, a, b, cpu); }
static int build_exp(mlx_array* out, mlx_array a, mlx_array b) { return mlx_exp(out, a, cpu); }

/* Best seconds of REPS evaluations of build(a, b). */
static double best_seconds(build_fn build, mlx_array a, mlx_array b) {
  double best = 1e30;
  for (int r = 0; r < REPS; r++) {
    mlx_array out = mlx_array_new();
    double t = bench_now();
    if (build(&out, a, b) || mlx_array_eval(out)) return -1;
    t = bench_now() - t;
    if (t < best) best = t;
    mlx_array_free(out);
  }
  return best;
}

int main(void) {
  cpu = mlx_default_cpu_stream_new();
  float* data = malloc(sizeof(float) * N);
  for (int i = 0; i < N; i++) data[i] = (float)(i % 1000) * 1e-3f;
  int n = N, rows = N / 4096, shape2[2] = {rows, 4096}, row_shape[1] = {4096};
  mlx_array a = mlx_array_new_data(data, &n, 1, MLX_FLOAT32);
  mlx_array b = mlx_array_new_data(data, &n, 1, MLX_FLOAT32);
  mlx_array m = mlx_array_new_data(data, shape2, 2, MLX_FLOAT32);
  mlx_array row = mlx_array_new_data(data, row_shape, 1, MLX_FLOAT32);
  free(data);
  double bytes = 4.0 * N;
  int pool = cpu_max_threads();
  int counts[3] = {1, 2, pool};
  printf("elementwise float32, %d elements (%.0f MiB per array); pool of %d threads\n", N,
         bytes / (1 << 20), pool);
  printf("%-8s %12s %12s %8s %12s %8s %12s %8s\n", "threads", "memcpy GB/s", "add GB/s", "add %",
         "add-row GB/s", "row %", "exp GB/s", "exp %");
  for (int k = 0; k < 3; k++) {
    if (k == 2 && pool <= 2) break;
    cpu_set_max_threads(counts[k]);
    double copy = bench_parallel_memcpy_gbps((size_t)bytes, REPS);
    double add = 3 * bytes / best_seconds(build_add, a, b) / 1e9;
    double add_row = (2 * bytes + 4 * 4096) / best_seconds(build_add, m, row) / 1e9;
    double ex = 2 * bytes / best_seconds(build_exp, a, b) / 1e9;
    printf("%-8d %12.1f %12.1f %7.0f%% %12.1f %7.0f%% %12.1f %7.0f%%\n", counts[k], copy, add,
           100 * add / copy, add_row, 100 * add_row / copy, ex, 100 * ex / copy);
  }
  cpu_set_max_threads(pool);
  mlx_array_free(a);
  mlx_array_free(b);
  mlx_array_free(m);
  mlx_array_free(row);
  mlx_stream_free(cpu);
  return 0;
}
