/* The decode GEMV kernels alone, on one thread with the weights in cache (256 x 4096 values,
 * 0.25 to 1 MB), so the figure is compute cost, not memory bandwidth: values (multiply-adds) per
 * nanosecond for every instruction set this processor runs and every width with a vector kernel,
 * group 64, bfloat16 scales and biases, best of 200 calls ("AVX512,bf": x of bfloat16 numbers,
 * the case of the AVX-512 BF16 4-bit kernel). bench_qgemv measures the whole
 * operation streaming from memory on all threads. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>

#include "backend/cpu/qgemv.h"
#include "bench_util.h"

enum { N = 256, K = 4096, GROUP = 64, REPS = 200 };

int main(void) {
  setenv("MLXC_NUM_THREADS", "1", 1); /* before the pool starts: one thread */
  setenv("MLXC_QGEMV_BF16", "1", 0);   /* the BF16 kernel wherever the processor has it */
  static const char* names[3] = {"portable", "AVX2", "AVX-512"};
  const int widths[6] = {2, 3, 4, 5, 6, 8};
  uint32_t* w = malloc(sizeof(uint32_t) * N * K / 4);
  uint16_t* s = malloc(sizeof(uint16_t) * N * (K / GROUP));
  uint16_t* b = malloc(sizeof(uint16_t) * N * (K / GROUP));
  float* x = malloc(sizeof(float) * K);
  float* y = malloc(sizeof(float) * N);
  if (!w || !s || !b || !x || !y) return 1;
  for (size_t i = 0; i < (size_t)N * K / 4; i++) w[i] = (uint32_t)(i * 2654435761u);
  for (int i = 0; i < N * (K / GROUP); i++) s[i] = b[i] = 0x3c00; /* bfloat16 1/128 */
  printf("one thread, %d x %d weights in cache, group %d, bfloat16 scales: values per ns\n", N, K,
         GROUP);
  /* isa 3: AVX-512 again with x of bfloat16 numbers (0.5, 0.25, ...), where 4 bits take the
   * AVX-512 BF16 kernel on processors that have it */
  for (int isa = 3; isa >= CPU_ISA_PORTABLE; isa--) {
    int run_isa = isa == 3 ? CPU_ISA_AVX512 : isa;
    if (!cpu_isa_supported((cpu_isa)run_isa)) continue;
    for (int k = 0; k < K; k++) x[k] = isa == 3 ? (float)(k % 7) * 0.25f : (float)(k % 7) * 0.1f;
    printf("  %-9s", isa == 3 ? "AVX512,bf" : names[isa]);
    for (int wi = 0; wi < 6; wi++) {
      double best = 1e30;
      for (int r = 0; r < (isa == CPU_ISA_PORTABLE ? 5 : REPS); r++) {
        double t = bench_now();
        if (cpu_qgemv_affine_isa((cpu_isa)run_isa, y, x, 1, w, s, b, MLX_BFLOAT16, MLX_BFLOAT16, N, K,
                                 widths[wi], GROUP))
          return 1;
        t = bench_now() - t;
        if (t < best) best = t;
      }
      printf("  %d-bit %6.2f", widths[wi], (double)N * K / best / 1e9);
    }
    printf("\n");
  }
  free(w);
  free(s);
  free(b);
  free(x);
  free(y);
  return 0;
}
