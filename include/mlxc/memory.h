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
