/* mlx-c ops, convolutions in MLX's channels-last layout: input (N, spatial..., C_in), weight
 * (C_out, kernel spatial..., C_in / groups), output (N, spatial_out..., C_out) in the promoted
 * dtype of input and weight (floating point only; float16/bfloat16 accumulate in float32).
 * Output size per axis: (in + 2 * padding - dilation * (kernel - 1) - 1) / stride + 1.
 *
 *   mlx_array y = mlx_array_new();
 *   mlx_conv1d(&y, mel, w, 1, 1, 1, 1, s);            // (1, 3000, 80) * (384, 3, 80) -> (1, 3000, 384)
 *   mlx_conv1d(&y, h, w_dw, 1, 2, 1, channels, s);    // depthwise: w_dw (channels, 3, 1)
 *   mlx_conv2d(&y, img, w, 16, 16, 0, 0, 1, 1, 1, s); // patch embedding, stride = kernel
 */
#ifndef MLX_C_OPS_CONV_H
#define MLX_C_OPS_CONV_H

#include <stdbool.h>
#include <stddef.h>

#include "mlx/c/array.h"
#include "mlx/c/stream.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Convolutions with symmetric, non-negative padding; groups split input and output channels. */
int mlx_conv1d(mlx_array* res, const mlx_array input, const mlx_array weight, int stride,
               int padding, int dilation, int groups, const mlx_stream s);
int mlx_conv2d(mlx_array* res, const mlx_array input, const mlx_array weight, int stride_0,
               int stride_1, int padding_0, int padding_1, int dilation_0, int dilation_1,
               int groups, const mlx_stream s);
int mlx_conv3d(mlx_array* res, const mlx_array input, const mlx_array weight, int stride_0,
               int stride_1, int stride_2, int padding_0, int padding_1, int padding_2,
               int dilation_0, int dilation_1, int dilation_2, int groups, const mlx_stream s);

/* The general form over 1-3 spatial axes. Each option holds 0 values (default: stride 1,
 * padding 0, dilations 1), 1 value (every axis) or one per spatial axis. padding_lo/padding_hi
 * pad each axis's start and end (a negative value crops); input_dilation inserts
 * input_dilation - 1 zeros between input elements; flip reverses the kernel taps. */
int mlx_conv_general(mlx_array* res, const mlx_array input, const mlx_array weight,
                     const int* stride, size_t stride_num, const int* padding_lo,
                     size_t padding_lo_num, const int* padding_hi, size_t padding_hi_num,
                     const int* kernel_dilation, size_t kernel_dilation_num,
                     const int* input_dilation, size_t input_dilation_num, int groups, bool flip,
                     const mlx_stream s);

/* Transposed convolutions (the gradient of a convolution with respect to its input):
 * out[n, i * stride + k * dilation - padding, o] += input[n, i, c] * weight[o, k, c] within each
 * group. Output size per axis: (in - 1) * stride - 2 * padding + dilation * (kernel - 1) + 1 +
 * output_padding. */
int mlx_conv_transpose1d(mlx_array* res, const mlx_array input, const mlx_array weight, int stride,
                         int padding, int dilation, int output_padding, int groups,
                         const mlx_stream s);
int mlx_conv_transpose2d(mlx_array* res, const mlx_array input, const mlx_array weight,
                         int stride_0, int stride_1, int padding_0, int padding_1, int dilation_0,
                         int dilation_1, int output_padding_0, int output_padding_1, int groups,
                         const mlx_stream s);
int mlx_conv_transpose3d(mlx_array* res, const mlx_array input, const mlx_array weight,
                         int stride_0, int stride_1, int stride_2, int padding_0, int padding_1,
                         int padding_2, int dilation_0, int dilation_1, int dilation_2,
                         int output_padding_0, int output_padding_1, int output_padding_2,
                         int groups, const mlx_stream s);

#ifdef __cplusplus
}
#endif

#endif
