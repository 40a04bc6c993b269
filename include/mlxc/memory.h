/* mlxc memory helpers for the models layer: the wired-limit guard.
 *
 * Hold a guard for the duration of a generation so that the model's memory stays wired (locked
 * in RAM on the CPU, kept resident on a GPU) up to the device's recommended working set:
 *
 *   mlxc_wired_guard* guard = NULL;
 *   mlxc_wired_guard_install(&guard, dev, model_bytes, &stream, 1);
 *   ... generate ...
 *   mlxc_wired_guard_release(guard);
 *
 * See docs/memory.md for what "wired" means on each device.
 */
#ifndef MLXC_MEMORY_H
#define MLXC_MEMORY_H

#include <stddef.h>

#include "mlx/c/device.h"
#include "mlx/c/stream.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Memory of GPU `device` (index among mlx_device_count(MLX_GPU)) from the CUDA backend's caching
 * allocator: bytes in live allocations, their high-water mark, and bytes freed but kept cached in
 * the pool. (mlx_get_active_memory & co. have no device argument and report the CPU allocator.)
 * Returns non-zero (with a message) for a NULL result or a device that does not exist. */
int mlxc_gpu_memory(int device, size_t* active, size_t* peak, size_t* cache);

/* Sets GPU `device`'s peak (see mlxc_gpu_memory) to its current active bytes. */
int mlxc_gpu_reset_peak_memory(int device);

/* Gives GPU `device`'s cached blocks back to its pool and the pool's unused memory back to the
 * driver, once the work queued on the device is done. (mlx_clear_cache does this for every GPU
 * the process has used, besides emptying the CPU cache.) */
int mlxc_gpu_clear_cache(int device);

/* GPU `device`'s limits, as mlx-c's setters for the CPU allocator (docs/memory.md): each
 * returns the previous value through `prior` and applies the new one at once.
 * - memory limit: an allocation that would take active bytes past it fails (the operation
 *   returns non-zero with a message); cached blocks are given back first so that active +
 *   cached stay within it. 0 (the default): no limit but the device's memory.
 * - cache limit: freed blocks past it go back to the pool instead of the cache. Default: none.
 * - wired limit: the memory the device's pool keeps reserved for this process (resident, not
 *   returned to the driver) across synchronisations; the rest is handed back then. SIZE_MAX
 *   (the default): everything the pool ever held stays reserved. Setting it waits for the
 *   device's work and trims the pool to it.
 * Non-zero (with a message) for a NULL `prior` or a device that does not exist, and for
 * clearing or setting the wired limit while the device's work is being recorded (mlxc/capture.h). */
int mlxc_gpu_set_memory_limit(size_t* prior, int device, size_t limit);
int mlxc_gpu_set_cache_limit(size_t* prior, int device, size_t limit);
int mlxc_gpu_set_wired_limit(size_t* prior, int device, size_t limit);

typedef struct mlxc_wired_guard mlxc_wired_guard;

/* Installs a guard. The first live guard in the process captures the current wired limit and
 * sets `dev`'s max_recommended_working_set_size; guards installed while one is live (from any
 * thread) share that setting. Prints a warning on stderr when model_bytes is more than 90% of
 * the recommended working set. Where the device gives no recommendation, or the limit cannot be
 * set (a warning is printed once), the guard is a valid no-op: generation goes on.
 *
 * `streams` (n_streams of them, may be NULL when n_streams is 0) are synchronised before the
 * prior limit is restored; the guard keeps its own references to them.
 * On success *out receives a guard owned by the caller (give it to mlxc_wired_guard_release).
 * Returns non-zero (with a message) only for a NULL `out`, NULL `streams` with n_streams > 0, or
 * out of memory; *out is then NULL. */
int mlxc_wired_guard_install(mlxc_wired_guard** out, mlx_device dev, size_t model_bytes,
                             const mlx_stream* streams, size_t n_streams);

/* Releases a guard and frees it. The last release of the live guards synchronises every stream
 * given to them and restores the wired limit captured by the first install. Never fails;
 * NULL is ignored. */
void mlxc_wired_guard_release(mlxc_wired_guard* guard);

#ifdef __cplusplus
}
#endif

#endif
