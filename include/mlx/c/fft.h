/* mlx-c fft.h: discrete Fourier transforms (numpy's definitions and norm modes) on the CPU.
 * Complex transforms return complex64, irfft* return float32; inputs of other dtypes are cast.
 * `n` crops or zero-pads each transformed axis of the input to that length (for irfft it is the
 * output length; the input axis is taken as n / 2 + 1 entries).
 *
 *   mlx_array spec = mlx_array_new();
 *   mlx_fft_rfft(&spec, frames, 400, -1, MLX_FFT_NORM_BACKWARD, s);  // (..., 400) -> (..., 201)
 *   int axes[2] = {-2, -1}, n[2] = {64, 64};
 *   mlx_fft_fft2(&spec, image, n, 2, axes, 2, MLX_FFT_NORM_ORTHO, s);
 */
#ifndef MLX_C_FFT_H
#define MLX_C_FFT_H

#include <stddef.h>

#include "mlx/c/array.h"
#include "mlx/c/stream.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Scaling: BACKWARD leaves the forward transform unscaled and divides the inverse by N (the
 * product of the transformed lengths); ORTHO scales both by 1 / sqrt(N); FORWARD divides the
 * forward transform by N. */
typedef enum mlx_fft_norm_ {
  MLX_FFT_NORM_BACKWARD,
  MLX_FFT_NORM_ORTHO,
  MLX_FFT_NORM_FORWARD
} mlx_fft_norm;

/* One axis; n > 0 is the transform length. */
int mlx_fft_fft(mlx_array* res, const mlx_array a, int n, int axis, mlx_fft_norm norm,
                const mlx_stream s);
int mlx_fft_ifft(mlx_array* res, const mlx_array a, int n, int axis, mlx_fft_norm norm,
                 const mlx_stream s);
/* Real input (complex input keeps its real part); the axis becomes n / 2 + 1 long. */
int mlx_fft_rfft(mlx_array* res, const mlx_array a, int n, int axis, mlx_fft_norm norm,
                 const mlx_stream s);
/* Inverse of rfft: Hermitian input, float32 output of length n along the axis. */
int mlx_fft_irfft(mlx_array* res, const mlx_array a, int n, int axis, mlx_fft_norm norm,
                  const mlx_stream s);

/* Several axes: n_num must equal axes_num (n may then be NULL only when both are 0, which returns
 * a unchanged, as MLX); the real transforms treat the last listed axis as the real one. The 2-D
 * forms are the n-D forms (MLX passes them the same way). */
int mlx_fft_fft2(mlx_array* res, const mlx_array a, const int* n, size_t n_num, const int* axes,
                 size_t axes_num, mlx_fft_norm norm, const mlx_stream s);
int mlx_fft_ifft2(mlx_array* res, const mlx_array a, const int* n, size_t n_num, const int* axes,
                  size_t axes_num, mlx_fft_norm norm, const mlx_stream s);
int mlx_fft_fftn(mlx_array* res, const mlx_array a, const int* n, size_t n_num, const int* axes,
                 size_t axes_num, mlx_fft_norm norm, const mlx_stream s);
int mlx_fft_ifftn(mlx_array* res, const mlx_array a, const int* n, size_t n_num, const int* axes,
                  size_t axes_num, mlx_fft_norm norm, const mlx_stream s);
int mlx_fft_rfft2(mlx_array* res, const mlx_array a, const int* n, size_t n_num, const int* axes,
                  size_t axes_num, mlx_fft_norm norm, const mlx_stream s);
int mlx_fft_irfft2(mlx_array* res, const mlx_array a, const int* n, size_t n_num, const int* axes,
                   size_t axes_num, mlx_fft_norm norm, const mlx_stream s);
int mlx_fft_rfftn(mlx_array* res, const mlx_array a, const int* n, size_t n_num, const int* axes,
                  size_t axes_num, mlx_fft_norm norm, const mlx_stream s);
int mlx_fft_irfftn(mlx_array* res, const mlx_array a, const int* n, size_t n_num, const int* axes,
                   size_t axes_num, mlx_fft_norm norm, const mlx_stream s);

/* Rolls each listed axis by size / 2 (fftshift) or (size + 1) / 2 (ifftshift), moving the zero
 * frequency to the centre and back; axes_num 0 returns a unchanged. */
int mlx_fft_fftshift(mlx_array* res, const mlx_array a, const int* axes, size_t axes_num,
                     const mlx_stream s);
int mlx_fft_ifftshift(mlx_array* res, const mlx_array a, const int* axes, size_t axes_num,
                      const mlx_stream s);

/* Sample frequencies (float32) of an n-point transform with sample spacing d:
 * [0, 1, ..., (n-1)/2, -(n/2), ..., -1] / (d n), and the n/2 + 1 non-negative ones for rfft. */
int mlx_fft_fftfreq(mlx_array* res, int n, double d, const mlx_stream s);
int mlx_fft_rfftfreq(mlx_array* res, int n, double d, const mlx_stream s);

#ifdef __cplusplus
}
#endif

#endif
