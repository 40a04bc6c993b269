/* Parameters of the fft primitive, shared by the constructors (ops/fft.c) and the CPU kernel
 * (backend/cpu/fft.c). */
#ifndef MLXC_OPS_FFT_PARAMS_H
#define MLXC_OPS_FFT_PARAMS_H

#include <stdbool.h>

#include "core/array.h"

/* A transform over `n_axes` distinct axes (in the order given; the real axis is the last one).
 * length[i] is the logical signal length along axes[i]: the input length of a forward
 * transform, the output length of irfft. The kernel crops or zero-pads the input axis to what
 * the transform needs, so the input may be longer or shorter. Results are multiplied by scale. */
typedef struct {
  int n_axes;
  int axes[CORE_MAX_NDIM];
  int length[CORE_MAX_NDIM];
  bool inverse;
  bool real;   /* rfft (forward: float32 in) or irfft (inverse: float32 out) */
  double scale;
} fft_params;

#endif
