/* An evaluation profile for finding where time goes: with MLXC_PROFILE=1 in the environment,
 * every evaluated node is counted per primitive (how often it ran a GPU kernel, how often the CPU
 * kernel, and the host time spent dispatching it), and a table goes to stderr at exit. With
 * MLXC_PROFILE=sync each GPU node is also waited for, so its time includes the GPU's. Off, it
 * costs one predictable branch per node. */
#ifndef MLXC_CORE_PROFILE_H
#define MLXC_CORE_PROFILE_H

#include <stdbool.h>
#include <stdint.h>

/* True when MLXC_PROFILE is set (read once). */
bool core_profile_enabled(void);
/* True when MLXC_PROFILE=sync: GPU nodes are waited for, so that times include the kernels. */
bool core_profile_sync(void);
/* Monotonic nanoseconds. */
uint64_t core_profile_now_ns(void);
/* Records one node of primitive `name`: on the GPU or the CPU, and its host nanoseconds. */
void core_profile_record(const char* name, bool on_gpu, uint64_t nanoseconds);
/* Forgets what was recorded so far (a benchmark profiles its timed part only). */
void core_profile_reset(void);

#endif
