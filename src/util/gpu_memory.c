/* mlxc_gpu_* (include/mlxc/memory.h): the per-device counters and limits of the GPU backend. */
#include "backend/gpu.h"
#include "mlxc/memory.h"
#include "util/error.h"

// Non-zero with a message naming `fn` when GPU `device` does not exist.
static int check_device(const char* fn, int device) {
  int n = gpu_backend_device_count();
  if (device < 0 || device >= n) return util_error("%s: there is no GPU %d (%d available)", fn, device, n);
  return 0;
}

int mlxc_gpu_memory(int device, size_t* active, size_t* peak, size_t* cache) {
  if (!active || !peak || !cache) return util_error("mlxc_gpu_memory: null result");
  if (check_device(__func__, device)) return 1;
  gpu_backend_memory(device, active, peak, cache);
  return 0;
}

int mlxc_gpu_reset_peak_memory(int device) {
  if (check_device(__func__, device)) return 1;
  gpu_backend_reset_peak(device);
  return 0;
}

int mlxc_gpu_clear_cache(int device) {
  if (check_device(__func__, device)) return 1;
  return gpu_backend_clear_cache(device);
}

static int set_limit(const char* fn, size_t* prior, int device, enum gpu_limit which, size_t limit) {
  if (!prior) return util_error("%s: null result", fn);
  if (check_device(fn, device)) return 1;
  return gpu_backend_set_limit(device, which, limit, prior);
}

int mlxc_gpu_set_memory_limit(size_t* prior, int device, size_t limit) {
  return set_limit(__func__, prior, device, GPU_LIMIT_MEMORY, limit);
}

int mlxc_gpu_set_cache_limit(size_t* prior, int device, size_t limit) {
  return set_limit(__func__, prior, device, GPU_LIMIT_CACHE, limit);
}

int mlxc_gpu_set_wired_limit(size_t* prior, int device, size_t limit) {
  return set_limit(__func__, prior, device, GPU_LIMIT_WIRED, limit);
}
