/* What the core asks of a GPU backend. Implemented by backend/cuda when built with CUDA, and by
 * gpu_none.c (no GPUs) otherwise. */
#ifndef MLXC_BACKEND_GPU_H
#define MLXC_BACKEND_GPU_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

bool gpu_backend_compiled(void);
/* Number of usable GPUs (0 when none or when the driver is missing). */
int gpu_backend_device_count(void);
int gpu_backend_synchronize(int device);
/* Device properties for mlx_device_info; returns non-zero when unavailable. */
int gpu_backend_device_properties(int device, char* name, size_t name_size, char* arch,
                                  size_t arch_size, size_t* memory_size);

#ifdef __cplusplus
}
#endif

#endif
