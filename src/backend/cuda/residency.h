/* Device pointers for GPU kernels (residency.c). */
#ifndef MLXC_BACKEND_CUDA_RESIDENCY_H
#define MLXC_BACKEND_CUDA_RESIDENCY_H

#include "core/array.h"

/* Device address of `a`'s element 0 on `device`, uploading the buffer (once: the device copy is
 * kept in the buffer) when only host data exists. *ptr is NULL for arrays without data. */
int gpu_device_ptr(const core_array* a, int device, const void** ptr);
/* Gives `out` fresh row-major storage in `device`'s memory only (host_valid false). */
int gpu_alloc_output(core_array* out, int device, void** ptr);

#endif
