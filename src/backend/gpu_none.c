/* The GPU backend of a build without CUDA: no devices. */
#ifndef MLXC_WITH_CUDA
#include "backend/gpu.h"

bool gpu_backend_compiled(void) { return false; }
int gpu_backend_device_count(void) { return 0; }
int gpu_backend_synchronize(int device) { return 0; }
int gpu_backend_device_properties(int device, char* name, size_t name_size, char* arch,
                                  size_t arch_size, size_t* memory_size) {
  return 1;
}
#else
typedef int gpu_none_unused_in_cuda_builds;
#endif
