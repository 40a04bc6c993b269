/* The CPU caching allocator: 64-byte aligned blocks, a cache of freed blocks for reuse,
 * active/peak/cache counters, the memory limit, the cache limit and the wired (mlocked) limit. */
#ifndef MLXC_CORE_ALLOCATOR_H
#define MLXC_CORE_ALLOCATOR_H

#include <stdbool.h>
#include <stddef.h>

/* Returns a block of at least nbytes (NULL with an error reported when the memory limit would be
 * exceeded or the system is out of memory). nbytes may be 0. */
void* core_alloc(size_t nbytes);
void core_free(void* ptr);

size_t core_alloc_active(void);
size_t core_alloc_peak(void);
void core_alloc_reset_peak(void);
size_t core_alloc_cache(void);
void core_alloc_clear_cache(void);
size_t core_alloc_set_cache_limit(size_t limit);
size_t core_alloc_set_memory_limit(size_t limit);
size_t core_alloc_memory_limit(void);
/* Sets how many bytes of the allocator's blocks are kept locked in RAM (the whole pages inside
 * each block, locked as blocks are handed out). Lowering it unlocks cached blocks first, then
 * live ones. Fails (error reported, limit unchanged) when the limit is above what
 * RLIMIT_MEMLOCK allows. */
int core_alloc_set_wired_limit(size_t limit, size_t* previous);
size_t core_alloc_wired_limit(void);
size_t core_alloc_wired_bytes(void);

/* Bytes this process may lock (SIZE_MAX when unlimited: RLIM_INFINITY or CAP_IPC_LOCK). */
size_t core_lockable_memory(void);
bool core_can_lock_unlimited(void);

/* Physical memory of the machine in bytes. */
size_t core_physical_memory(void);

#endif
