// CUDA device discovery and synchronisation for the core (backend/gpu.h).
#include <cuda_runtime.h>
#include <stdio.h>

#include "backend/gpu.h"

extern "C" bool gpu_backend_compiled(void) { return true; }

extern "C" int gpu_backend_device_count(void) {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // no driver or no device: clear the sticky error, report none
    return 0;
  }
  return count;
}

extern "C" int gpu_backend_synchronize(int device) {
  if (cudaSetDevice(device) != cudaSuccess) return 1;
  return cudaDeviceSynchronize() == cudaSuccess ? 0 : 1;
}

extern "C" int gpu_backend_device_properties(int device, char* name, size_t name_size, char* arch,
                                             size_t arch_size, size_t* memory_size) {
  cudaDeviceProp prop;
  if (cudaGetDeviceProperties(&prop, device) != cudaSuccess) return 1;
  snprintf(name, name_size, "%s", prop.name);
  snprintf(arch, arch_size, "sm_%d%d", prop.major, prop.minor);
  *memory_size = prop.totalGlobalMem;
  return 0;
}
