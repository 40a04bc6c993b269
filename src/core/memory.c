/* mlx-c memory.h over the CPU caching allocator (mlx_clear_cache empties the GPUs' caches too;
 * their counters and limits are mlxc/memory.h's, per device). */
#include "backend/gpu.h"
#include "core/allocator.h"
#include "mlx/c/memory.h"
#include "util/error.h"

#define REQUIRE_OUT(res) \
  if (!(res)) return util_error("%s: null result pointer", __func__)

int mlx_clear_cache(void) {
  core_alloc_clear_cache();
  gpu_backend_clear_caches();
  return 0;
}

int mlx_get_active_memory(size_t* res) {
  REQUIRE_OUT(res);
  *res = core_alloc_active();
  return 0;
}

int mlx_get_cache_memory(size_t* res) {
  REQUIRE_OUT(res);
  *res = core_alloc_cache();
  return 0;
}

int mlx_get_memory_limit(size_t* res) {
  REQUIRE_OUT(res);
  *res = core_alloc_memory_limit();
  return 0;
}

int mlx_get_peak_memory(size_t* res) {
  REQUIRE_OUT(res);
  *res = core_alloc_peak();
  return 0;
}

int mlx_reset_peak_memory(void) {
  core_alloc_reset_peak();
  return 0;
}

int mlx_set_cache_limit(size_t* res, size_t limit) {
  REQUIRE_OUT(res);
  *res = core_alloc_set_cache_limit(limit);
  return 0;
}

int mlx_set_memory_limit(size_t* res, size_t limit) {
  REQUIRE_OUT(res);
  *res = core_alloc_set_memory_limit(limit);
  return 0;
}

int mlx_set_wired_limit(size_t* res, size_t limit) {
  REQUIRE_OUT(res);
  return core_alloc_set_wired_limit(limit, res);
}
