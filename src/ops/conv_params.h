/* Parameters of the convolution primitive, shared by the constructors (ops/conv.c) and the CPU
 * kernel (backend/cpu/conv.c). */
#ifndef MLXC_OPS_CONV_PARAMS_H
#define MLXC_OPS_CONV_PARAMS_H

#include <stdbool.h>

#define CONV_MAX_SPATIAL 3

/* A general convolution over `spatial` dimensions, MLX's conv_general: the input (N, S..., C) is
 * dilated (input_dilation - 1 zeros between neighbours), padded with pad_lo/pad_hi zeros (a
 * negative pad crops), and correlated with the weight (O, K..., C / groups), taps spaced by
 * kernel_dilation and windows by stride; `flip` reverses the taps (true convolution). */
typedef struct {
  int spatial;
  int stride[CONV_MAX_SPATIAL];
  int pad_lo[CONV_MAX_SPATIAL];
  int pad_hi[CONV_MAX_SPATIAL];
  int kernel_dilation[CONV_MAX_SPATIAL];
  int input_dilation[CONV_MAX_SPATIAL];
  int groups;
  bool flip;
} conv_params;

#endif
