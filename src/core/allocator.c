/* CPU caching allocator. Freed blocks go to a cache and are reused for requests of a similar size
 * (at most twice as large), which avoids page faults for the per-step temporaries of a model.
 * All state is global and guarded by one mutex. */
#include "core/allocator.h"

#include <pthread.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "util/error.h"

#define ALIGNMENT 64
#define HEADER_SIZE 64 /* keeps the payload 64-byte aligned */
#define SMALL_QUANTUM 64
#define PAGE_QUANTUM 16384

typedef struct block {
  size_t capacity;     /* payload bytes */
  int wired;           /* payload is mlocked */
  struct block* next;  /* in the cache */
} block;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static block* cache_head;
static size_t active_bytes, peak_bytes, cache_bytes, wired_bytes;
static size_t cache_limit = SIZE_MAX;
static size_t memory_limit; /* 0 until first use: defaults to 1.5x physical memory */
static size_t wired_limit;

size_t core_physical_memory(void) {
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? (size_t)pages * (size_t)page : 0;
}

static void ensure_defaults(void) {
  if (memory_limit == 0) {
    size_t phys = core_physical_memory();
    memory_limit = phys ? phys + phys / 2 : SIZE_MAX;
  }
}

static size_t round_size(size_t n) {
  size_t q = n < PAGE_QUANTUM ? SMALL_QUANTUM : PAGE_QUANTUM;
  if (n == 0) return SMALL_QUANTUM;
  return (n + q - 1) / q * q;
}

static void* payload(block* b) { return (char*)b + HEADER_SIZE; }
static block* header(void* p) { return (block*)((char*)p - HEADER_SIZE); }

static void release_block(block* b) {
  if (b->wired) {
    munlock(payload(b), b->capacity);
    wired_bytes -= b->capacity;
  }
  free(b);
}

/* Drops cached blocks until the cache holds at most `target` bytes. Call with the lock held. */
static void trim_cache(size_t target) {
  while (cache_head && cache_bytes > target) {
    block* b = cache_head;
    cache_head = b->next;
    cache_bytes -= b->capacity;
    release_block(b);
  }
}

static block* take_from_cache(size_t size) {
  block **best = NULL, **link = &cache_head;
  for (; *link; link = &(*link)->next) {
    size_t cap = (*link)->capacity;
    if (cap >= size && cap <= 2 * size && (!best || cap < (*best)->capacity)) best = link;
  }
  if (!best) return NULL;
  block* b = *best;
  *best = b->next;
  cache_bytes -= b->capacity;
  return b;
}

static void try_wire(block* b) {
  if (wired_bytes + b->capacity > wired_limit) return;
  if (mlock(payload(b), b->capacity) == 0) {
    b->wired = 1;
    wired_bytes += b->capacity;
  }
}

void* core_alloc(size_t nbytes) {
  size_t size = round_size(nbytes);
  pthread_mutex_lock(&lock);
  ensure_defaults();
  block* b = take_from_cache(size);
  if (!b) {
    if (active_bytes + size > memory_limit) {
      trim_cache(0);
      pthread_mutex_unlock(&lock);
      util_error("allocation of %zu bytes exceeds the memory limit (%zu bytes in use, limit %zu)",
                 nbytes, active_bytes, memory_limit);
      return NULL;
    }
    b = aligned_alloc(ALIGNMENT, HEADER_SIZE + size);
    if (!b) {
      /* Give the cache back to the system and try once more. */
      trim_cache(0);
      b = aligned_alloc(ALIGNMENT, HEADER_SIZE + size);
    }
    if (!b) {
      pthread_mutex_unlock(&lock);
      util_error("out of memory allocating %zu bytes", nbytes);
      return NULL;
    }
    b->capacity = size;
    b->wired = 0;
  }
  b->next = NULL;
  if (!b->wired && wired_limit > 0) try_wire(b);
  active_bytes += b->capacity;
  if (active_bytes > peak_bytes) peak_bytes = active_bytes;
  pthread_mutex_unlock(&lock);
  return payload(b);
}

void core_free(void* ptr) {
  if (!ptr) return;
  block* b = header(ptr);
  pthread_mutex_lock(&lock);
  active_bytes -= b->capacity;
  if (b->capacity <= cache_limit) {
    b->next = cache_head;
    cache_head = b;
    cache_bytes += b->capacity;
    trim_cache(cache_limit);
  } else {
    release_block(b);
  }
  pthread_mutex_unlock(&lock);
}

#define LOCKED_GET(expr)          \
  pthread_mutex_lock(&lock);      \
  ensure_defaults();              \
  size_t value = (expr);          \
  pthread_mutex_unlock(&lock);    \
  return value

size_t core_alloc_active(void) { LOCKED_GET(active_bytes); }
size_t core_alloc_peak(void) { LOCKED_GET(peak_bytes); }
size_t core_alloc_cache(void) { LOCKED_GET(cache_bytes); }
size_t core_alloc_memory_limit(void) { LOCKED_GET(memory_limit); }
size_t core_alloc_wired_limit(void) { LOCKED_GET(wired_limit); }
size_t core_alloc_wired_bytes(void) { LOCKED_GET(wired_bytes); }

void core_alloc_reset_peak(void) {
  pthread_mutex_lock(&lock);
  peak_bytes = active_bytes;
  pthread_mutex_unlock(&lock);
}

void core_alloc_clear_cache(void) {
  pthread_mutex_lock(&lock);
  trim_cache(0);
  pthread_mutex_unlock(&lock);
}

size_t core_alloc_set_cache_limit(size_t limit) {
  pthread_mutex_lock(&lock);
  size_t previous = cache_limit;
  cache_limit = limit;
  trim_cache(limit);
  pthread_mutex_unlock(&lock);
  return previous;
}

size_t core_alloc_set_memory_limit(size_t limit) {
  pthread_mutex_lock(&lock);
  ensure_defaults();
  size_t previous = memory_limit;
  memory_limit = limit ? limit : SIZE_MAX;
  pthread_mutex_unlock(&lock);
  return previous;
}

/* Unlocks cached blocks first, then live ones, until at most `limit` bytes stay wired. */
static void unwire_down_to(size_t limit) {
  for (block* b = cache_head; b && wired_bytes > limit; b = b->next) {
    if (b->wired) {
      munlock(payload(b), b->capacity);
      b->wired = 0;
      wired_bytes -= b->capacity;
    }
  }
}

size_t core_lockable_memory(void) {
  if (core_can_lock_unlimited()) return SIZE_MAX;
  struct rlimit rl;
  if (getrlimit(RLIMIT_MEMLOCK, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return SIZE_MAX;
  return (size_t)rl.rlim_cur;
}

/* CAP_IPC_LOCK (capability 14) lets a process lock memory regardless of RLIMIT_MEMLOCK. */
bool core_can_lock_unlimited(void) {
  FILE* f = fopen("/proc/self/status", "r");
  if (!f) return false;
  char line[256];
  unsigned long long caps = 0;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "CapEff: %llx", &caps) == 1) break;
  fclose(f);
  return (caps >> 14) & 1ull;
}

int core_alloc_set_wired_limit(size_t limit, size_t* previous) {
  size_t lockable = core_lockable_memory();
  if (limit > lockable) {
    return util_error(
        "wired limit of %zu bytes exceeds the limit on locked memory (RLIMIT_MEMLOCK = %llu bytes); "
        "raise it with `ulimit -l` or run with CAP_IPC_LOCK",
        limit, (unsigned long long)lockable);
  }
  pthread_mutex_lock(&lock);
  if (previous) *previous = wired_limit;
  wired_limit = limit;
  unwire_down_to(limit);
  pthread_mutex_unlock(&lock);
  return 0;
}
