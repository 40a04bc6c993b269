/* mlxc_gpu_memory (include/mlxc/memory.h): the per-device counters of the GPU backend. */
#include "backend/gpu.h"
#include "mlxc/memory.h"
#include "util/error.h"

int mlxc_gpu_memory(int device, size_t* active, size_t* peak, size_t* cache) {
  if (!active || !peak || !cache) return util_error("mlxc_gpu_memory: null result");
  int n = gpu_backend_device_count();
  if (device < 0 || device >= n)
    return util_error("mlxc_gpu_memory: there is no GPU %d (%d available)", device, n);
  gpu_backend_memory(device, active, peak, cache);
  return 0;
}
