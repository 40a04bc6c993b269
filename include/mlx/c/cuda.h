/* mlx-c cuda: whether this build has the CUDA backend and a usable NVIDIA GPU.
 *
 *   bool gpu = false;
 *   mlx_cuda_is_available(&gpu);
 *   mlx_stream s = gpu ? mlx_default_gpu_stream_new() : mlx_default_cpu_stream_new();
 */
#ifndef MLX_C_CUDA_H
#define MLX_C_CUDA_H

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/* *res is true when the library was built with CUDA and at least one GPU answers. */
int mlx_cuda_is_available(bool* res);

#ifdef __cplusplus
}
#endif

#endif
