/* mlx-c memory: counters and limits of the caching allocator. Each setter returns the prior
 * value through `res`. See docs/memory.md for what the wired limit means on each device.
 *
 *   size_t peak; mlx_get_peak_memory(&peak);
 *   size_t old; mlx_set_memory_limit(&old, (size_t)8 << 30);
 */
#ifndef MLX_C_MEMORY_H
#define MLX_C_MEMORY_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

int mlx_clear_cache(void);
int mlx_get_active_memory(size_t* res);
int mlx_get_cache_memory(size_t* res);
int mlx_get_memory_limit(size_t* res);
int mlx_get_peak_memory(size_t* res);
int mlx_reset_peak_memory(void);
int mlx_set_cache_limit(size_t* res, size_t limit);
int mlx_set_memory_limit(size_t* res, size_t limit);
int mlx_set_wired_limit(size_t* res, size_t limit);

#ifdef __cplusplus
}
#endif

#endif
