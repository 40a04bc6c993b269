/* FFT throughput: Whisper's STFT (3000 frames of rfft n=400, Bluestein), a power-of-two batch and
 * one long power-of-two transform, at 1 thread and all threads, and on the GPU stream (cuFFT)
 * where one exists. GFLOP/s use the conventional 5 n log2 n flops per complex transform
 * (2.5 n log2 n for a real one). */
#include <math.h>
#include <stdio.h>

#include "backend/cpu/threadpool.h"
#include "bench_util.h"
#include "mlx/c/mlx.h"

typedef int (*fft_fn)(mlx_array*, const mlx_array, int, int, mlx_fft_norm, const mlx_stream);

/* Best-of-reps seconds for fn over a (rows, n) float32 input. */
static double time_fft(fft_fn fn, int rows, int n, mlx_dtype dtype, mlx_stream s, int reps) {
  int shape[2] = {rows, n};
  mlx_array x = mlx_array_new(), y = mlx_array_new();
  mlx_ones(&x, shape, 2, dtype, s);
  mlx_array_eval(x);
  double best = 1e30;
  for (int r = 0; r < reps; r++) {
    double t = bench_now();
    fn(&y, x, n, -1, MLX_FFT_NORM_BACKWARD, s);
    mlx_array_eval(y);
    mlx_synchronize(s); /* a GPU stream's work is queued by eval, not waited for */
    t = bench_now() - t;
    if (t < best) best = t;
  }
  mlx_array_free(x);
  mlx_array_free(y);
  return best;
}

int main(void) {
  mlx_stream s = mlx_default_cpu_stream_new();
  struct {
    const char* name;
    fft_fn fn;
    int rows, n;
    mlx_dtype dtype;
    double flop_factor;
  } cases[] = {
      {"rfft (3000, 400)  whisper stft", mlx_fft_rfft, 3000, 400, MLX_FLOAT32, 2.5},
      {"fft  (3000, 512)  complex", mlx_fft_fft, 3000, 512, MLX_COMPLEX64, 5},
      {"fft  (1, 2^20)    complex", mlx_fft_fft, 1, 1 << 20, MLX_COMPLEX64, 5},
  };
  int all = cpu_max_threads();
  printf("%-32s %8s %12s %10s\n", "case", "threads", "ms", "GFLOP/s");
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    for (int threads = 1; threads <= all; threads = threads == all ? all + 1 : all) {
      cpu_set_max_threads(threads);
      double t = time_fft(cases[c].fn, cases[c].rows, cases[c].n, cases[c].dtype, s, 5);
      double flops = cases[c].flop_factor * cases[c].rows * cases[c].n * log2(cases[c].n);
      printf("%-32s %8d %12.2f %10.2f\n", cases[c].name, threads, t * 1e3, flops / t / 1e9);
    }
  }
  int gpus = 0;
  mlx_device_count(&gpus, MLX_GPU);
  if (gpus > 0) {
    mlx_stream g = mlx_default_gpu_stream_new();
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
      double t = time_fft(cases[c].fn, cases[c].rows, cases[c].n, cases[c].dtype, g, 5);
      double flops = cases[c].flop_factor * cases[c].rows * cases[c].n * log2(cases[c].n);
      printf("%-32s %8s %12.2f %10.2f\n", cases[c].name, "gpu", t * 1e3, flops / t / 1e9);
    }
    mlx_stream_free(g);
  }
  mlx_stream_free(s);
  return 0;
}
