/* The fft primitive on the GPU (cuFFT, double precision) against the CPU kernel: fft, ifft, rfft,
 * irfft along one axis at powers of two and other lengths (the CPU's Bluestein path), cropped and
 * zero-padded inputs, a transposed view, 2-D and n-D transforms over several axes in a given order,
 * every normalisation, more lengths than the plan cache holds (its evictions) and the same length
 * again afterwards (its hits). Both sides transform in double and round once to float32, so results
 * agree to a few float32 ulps of the spectrum's size. Complex results are compared through their
 * real and imaginary parts (taken on the CPU). */
#include <math.h>
#include <stdint.h>
#include <time.h>

#include "mlx/c/mlx.h"
#include "mlxc/error.h"
#include "test_util.h"

#include "cuda_test_util.h"

#define TOL 2e-6 /* normwise, float32 results of double transforms */

/* A complex64 array of uniform parts in [-1, 1). */
static mlx_array complex_rand(const int* shape, int nd) {
  mlx_array re = rand_array(shape, nd, MLX_FLOAT32, -1, 1), im = rand_array(shape, nd, MLX_FLOAT32, -1, 1);
  mlx_array j = mlx_array_new_complex(0.0f, 1.0f), t = mlx_array_new(), out = mlx_array_new();
  mlx_multiply(&t, im, j, cpu);
  mlx_add(&out, re, t, cpu);
  mlx_array_eval(out);
  mlx_array all[] = {re, im, j, t};
  for (size_t i = 0; i < 4; i++) mlx_array_free(all[i]);
  return out;
}

/* g (GPU) against c (CPU): same dtype, parts compared normwise; g made on the GPU. */
static void same(const char* what, mlx_array g, mlx_array c) {
  CHECK_MSG(made_on_gpu(g), "%s: not computed on the GPU", what);
  CHECK_MSG(mlx_array_dtype(g) == mlx_array_dtype(c), "%s: dtype", what);
  if (mlx_array_dtype(c) != MLX_COMPLEX64) {
    compare(what, g, c, 0, 0, TOL);
    return;
  }
  mlx_array gr = mlx_array_new(), cr = mlx_array_new(), gi = mlx_array_new(), ci = mlx_array_new();
  mlx_real(&gr, g, cpu);
  mlx_real(&cr, c, cpu);
  mlx_imag(&gi, g, cpu);
  mlx_imag(&ci, c, cpu);
  compare(what, gr, cr, 0, 0, TOL);
  compare(what, gi, ci, 0, 0, TOL);
  mlx_array all[] = {gr, cr, gi, ci};
  for (size_t i = 0; i < 4; i++) mlx_array_free(all[i]);
}

typedef enum { FFT, IFFT, RFFT, IRFFT } kind;

static int one_axis(kind k, mlx_array* r, mlx_array a, int n, int axis, mlx_fft_norm norm, mlx_stream s) {
  switch (k) {
    case FFT: return mlx_fft_fft(r, a, n, axis, norm, s);
    case IFFT: return mlx_fft_ifft(r, a, n, axis, norm, s);
    case RFFT: return mlx_fft_rfft(r, a, n, axis, norm, s);
    default: return mlx_fft_irfft(r, a, n, axis, norm, s);
  }
}

TEST(one_axis_matches_the_cpu) {
  static const char* names[4] = {"fft", "ifft", "rfft", "irfft"};
  int shape[2] = {6, 40};
  mlx_array z = complex_rand(shape, 2), x = rand_array(shape, 2, MLX_FLOAT32, -1, 1);
  mlx_array zt = mlx_array_new();
  mlx_transpose(&zt, z, cpu); /* (40, 6) view */
  /* Lengths: the axis's own, a power of two (cropped and padded), odd and prime ones. */
  const int lengths[5] = {40, 32, 64, 45, 37};
  for (int k = 0; k < 4; k++)
    for (int li = 0; li < 5; li++)
      for (int norm = 0; norm < 3; norm++) {
        mlx_array in = k == RFFT ? x : z;
        const int n = lengths[li];
        mlx_array g = mlx_array_new(), c = mlx_array_new();
        char what[80];
        snprintf(what, sizeof what, "%s n=%d norm=%d", names[k], n, norm);
        CHECK_MSG(one_axis((kind)k, &g, in, n, 1, (mlx_fft_norm)norm, gpu) == 0, "%s: %s", what, mlxc_last_error());
        CHECK(one_axis((kind)k, &c, in, n, 1, (mlx_fft_norm)norm, cpu) == 0);
        same(what, g, c);
        mlx_array_free(g);
        mlx_array_free(c);
      }
  /* Along the first axis of a transposed view (strided input, lines across the batch). */
  for (int k = 0; k < 2; k++) {
    mlx_array g = mlx_array_new(), c = mlx_array_new();
    CHECK(one_axis((kind)k, &g, zt, 40, 0, MLX_FFT_NORM_BACKWARD, gpu) == 0);
    CHECK(one_axis((kind)k, &c, zt, 40, 0, MLX_FFT_NORM_BACKWARD, cpu) == 0);
    same(k ? "ifft of a transposed view, axis 0" : "fft of a transposed view, axis 0", g, c);
    mlx_array_free(g);
    mlx_array_free(c);
  }
  mlx_array all[] = {z, x, zt};
  for (size_t i = 0; i < 3; i++) mlx_array_free(all[i]);
}

TEST(several_axes_match_the_cpu) {
  int shape[3] = {3, 12, 10};
  mlx_array z = complex_rand(shape, 3), x = rand_array(shape, 3, MLX_FLOAT32, -1, 1);
  const int axes_a[2] = {1, 2}, axes_b[2] = {2, 0}, axes_all[3] = {0, 1, 2};
  const int n_a[2] = {12, 10}, n_b[2] = {16, 5}, n_all[3] = {3, 12, 10};
  mlx_array g = mlx_array_new(), c = mlx_array_new();
  CHECK(mlx_fft_fft2(&g, z, n_a, 2, axes_a, 2, MLX_FFT_NORM_BACKWARD, gpu) == 0 &&
        mlx_fft_fft2(&c, z, n_a, 2, axes_a, 2, MLX_FFT_NORM_BACKWARD, cpu) == 0);
  same("fft2 over the last two axes", g, c);
  CHECK(mlx_fft_ifftn(&g, z, n_b, 2, axes_b, 2, MLX_FFT_NORM_ORTHO, gpu) == 0 &&
        mlx_fft_ifftn(&c, z, n_b, 2, axes_b, 2, MLX_FFT_NORM_ORTHO, cpu) == 0);
  same("ifftn over axes (2, 0), padded and cropped", g, c);
  CHECK(mlx_fft_rfftn(&g, x, n_all, 3, axes_all, 3, MLX_FFT_NORM_FORWARD, gpu) == 0 &&
        mlx_fft_rfftn(&c, x, n_all, 3, axes_all, 3, MLX_FFT_NORM_FORWARD, cpu) == 0);
  same("rfftn over every axis", g, c);
  mlx_array half = mlx_array_new(), gr = mlx_array_new(), cr = mlx_array_new();
  CHECK(mlx_fft_rfft2(&half, x, n_a, 2, axes_a, 2, MLX_FFT_NORM_BACKWARD, cpu) == 0);
  CHECK(mlx_fft_irfft2(&gr, half, n_a, 2, axes_a, 2, MLX_FFT_NORM_BACKWARD, gpu) == 0 &&
        mlx_fft_irfft2(&cr, half, n_a, 2, axes_a, 2, MLX_FFT_NORM_BACKWARD, cpu) == 0);
  same("irfft2 of rfft2", gr, cr);
  compare("irfft2 of rfft2 gives the signal back", gr, x, 0, 0, 1e-5);
  mlx_array all[] = {z, x, g, c, half, gr, cr};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) mlx_array_free(all[i]);
}

/* 40 lengths (past the 32 cached plans: the least recently used are evicted while transforms
 * are queued), each transformed twice without waiting in between, then the first lengths again
 * (plans made anew) and one length repeated (a hit): every result still the CPU's. */
TEST(plan_cache_evicts_and_reuses) {
  int shape[2] = {3, 64};
  mlx_array x = rand_array(shape, 2, MLX_FLOAT32, -1, 1);
  for (int round = 0; round < 2; round++)
    for (int n = 8; n < (round ? 14 : 48); n++) {
      mlx_array g1 = mlx_array_new(), g2 = mlx_array_new(), c = mlx_array_new();
      char what[64];
      snprintf(what, sizeof what, "rfft n=%d round %d", n, round);
      CHECK_MSG(mlx_fft_rfft(&g1, x, n, -1, MLX_FFT_NORM_BACKWARD, gpu) == 0, "%s: %s", what, mlxc_last_error());
      CHECK(mlx_fft_rfft(&g2, x, n, -1, MLX_FFT_NORM_BACKWARD, gpu) == 0);
      mlx_array_eval(g1);
      mlx_array_eval(g2); /* both queued before either is read */
      CHECK(mlx_fft_rfft(&c, x, n, -1, MLX_FFT_NORM_BACKWARD, cpu) == 0);
      same(what, g1, c);
      same(what, g2, c);
      mlx_array all[] = {g1, g2, c};
      for (size_t i = 0; i < 3; i++) mlx_array_free(all[i]);
    }
  mlx_array_free(x);
}

int main(void) {
  int count = 0;
  mlx_device_count(&count, MLX_GPU);
  if (count == 0) {
    printf("SKIP: no CUDA GPU (test_cuda_fft needs one)\n");
    return TEST_SUMMARY();
  }
  rng_state = (uint64_t)time(NULL) ^ 0x7a3c9e1d5b2f4861ull;
  printf("seed %llu\n", (unsigned long long)rng_state);
  cpu = mlx_default_cpu_stream_new();
  gpu = mlx_default_gpu_stream_new();
  RUN(one_axis_matches_the_cpu);
  RUN(several_axes_match_the_cpu);
  RUN(plan_cache_evicts_and_reuses);
  mlx_stream_free(cpu);
  mlx_stream_free(gpu);
  return TEST_SUMMARY();
}
