/* CPU caching allocator. Freed blocks go to a cache and are reused for requests of a similar size
 * (at most twice as large), which avoids page faults for the per-step temporaries of a model.
 * While a wired limit is set, the whole pages of each block are mlock'ed up to that many bytes.
 * All state is global and guarded by one mutex. */
#include "core/allocator.h"

#include <assert.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "util/error.h"

#define ALIGNMENT 64
#define HEADER_SIZE 64 /* keeps the payload 64-byte aligned */
#define SMALL_QUANTUM 64
#define PAGE_QUANTUM 16384
#define MAX_REQUEST (SIZE_MAX / 4) /* keeps size arithmetic below free of overflow */

/* Intrusive doubly linked lists: a block sits in several at once, through different links. */
typedef struct block block;
typedef struct {
  block *prev, *next;
} links;
typedef struct {
  block *head, *tail;
} list;

struct block {
  size_t capacity; /* payload bytes */
  size_t wired;    /* bytes mlock'ed (whole pages inside the payload) */
  links lru;       /* cached blocks, newest first */
  links bin;       /* cached blocks of one size class */
  links wire;      /* wired blocks: the live list or the cached list */
};

static_assert(sizeof(block) <= HEADER_SIZE, "block header must fit before the payload");

#define LRU offsetof(block, lru)
#define BIN offsetof(block, bin)
#define WIRE offsetof(block, wire)

/* Size classes: one per capacity below 1 MB (capacities are multiples of the quanta), and one
 * for everything larger, so that finding a cached block rarely needs a scan. */
#define SMALL_BINS (PAGE_QUANTUM / SMALL_QUANTUM) /* capacities 64 .. 16320 */
#define PAGE_BINS 64                              /* capacities 16 KB .. 1 MB - 16 KB */
#define OVERFLOW_BIN (SMALL_BINS + PAGE_BINS)

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static list cache_lru;
static list bins[OVERFLOW_BIN + 1];
static list wired_live, wired_cached;
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

/* Monotonic in capacity; a rounded capacity below 1 MB is alone in its class. */
static size_t bin_of(size_t capacity) {
  if (capacity < PAGE_QUANTUM) return capacity / SMALL_QUANTUM;
  size_t page_class = capacity / PAGE_QUANTUM;
  return page_class < PAGE_BINS ? SMALL_BINS + page_class : OVERFLOW_BIN;
}

static void* payload(block* b) { return (char*)b + HEADER_SIZE; }
static block* header(void* p) { return (block*)((char*)p - HEADER_SIZE); }

static links* at(block* b, size_t field) { return (links*)((char*)b + field); }

static void list_push(list* l, block* b, size_t field) {
  at(b, field)->prev = NULL;
  at(b, field)->next = l->head;
  if (l->head) at(l->head, field)->prev = b;
  else l->tail = b;
  l->head = b;
}

static void list_remove(list* l, block* b, size_t field) {
  links* k = at(b, field);
  if (k->prev) at(k->prev, field)->next = k->next;
  else l->head = k->next;
  if (k->next) at(k->next, field)->prev = k->prev;
  else l->tail = k->prev;
}

/* ---- wiring ---- */

/* The whole pages inside a block's payload. Only these are locked: a page shared with a
 * neighbouring block would be unlocked by that block's munlock (Linux does not count locks). */
static size_t page_span(block* b, char** start) {
  uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
  uintptr_t lo = ((uintptr_t)payload(b) + page - 1) / page * page;
  uintptr_t hi = ((uintptr_t)payload(b) + b->capacity) / page * page;
  *start = (char*)lo;
  return hi > lo ? (size_t)(hi - lo) : 0;
}

/* Direct system calls: sanitizers intercept mlock/munlock as no-ops, and the wired limit must
 * mean the same in every build. */
static int lock_pages(void* start, size_t len) { return (int)syscall(SYS_mlock, start, len); }
static void unlock_pages(void* start, size_t len) { syscall(SYS_munlock, start, len); }

/* Wires a live block if the limit leaves room for it. */
static void try_wire(block* b) {
  char* start;
  size_t span = page_span(b, &start);
  if (span == 0 || span > wired_limit - wired_bytes) return;
  if (lock_pages(start, span) != 0) return; /* the OS refused (RLIMIT_MEMLOCK): stay pageable */
  b->wired = span;
  wired_bytes += span;
  list_push(&wired_live, b, WIRE);
}

static void unwire(block* b, list* from) {
  char* start;
  page_span(b, &start);
  unlock_pages(start, b->wired);
  wired_bytes -= b->wired;
  b->wired = 0;
  list_remove(from, b, WIRE);
}

/* Unlocks cached blocks first, then live ones, until at most `limit` bytes stay wired. */
static void unwire_down_to(size_t limit) {
  while (wired_cached.head && wired_bytes > limit) unwire(wired_cached.head, &wired_cached);
  while (wired_live.head && wired_bytes > limit) unwire(wired_live.head, &wired_live);
}

/* ---- the cache ---- */

static void cache_push(block* b) {
  list_push(&cache_lru, b, LRU);
  list_push(&bins[bin_of(b->capacity)], b, BIN);
  if (b->wired) {
    list_remove(&wired_live, b, WIRE);
    list_push(&wired_cached, b, WIRE);
  }
  cache_bytes += b->capacity;
}

static void cache_unlink(block* b) {
  list_remove(&cache_lru, b, LRU);
  list_remove(&bins[bin_of(b->capacity)], b, BIN);
  if (b->wired) {
    list_remove(&wired_cached, b, WIRE);
    list_push(&wired_live, b, WIRE);
  }
  cache_bytes -= b->capacity;
}

/* Drops the oldest cached blocks until the cache holds at most `target` bytes. */
static void trim_cache(size_t target) {
  while (cache_lru.tail && cache_bytes > target) {
    block* b = cache_lru.tail;
    cache_unlink(b);
    if (b->wired) unwire(b, &wired_live);
    free(b);
  }
}

/* The smallest cached block with capacity in [size, max_capacity] (size is rounded), removed
 * from the cache; the most recently freed one among equals. */
static block* take_from_cache(size_t size, size_t max_capacity) {
  if (max_capacity < size) return NULL;
  block* best = NULL;
  size_t last = bin_of(max_capacity);
  for (size_t i = bin_of(size); i <= last && !best; i++) {
    if (i < OVERFLOW_BIN) {
      best = bins[i].head;
      continue;
    }
    for (block* b = bins[i].head; b; b = b->bin.next) {
      if (b->capacity < size || b->capacity > max_capacity) continue;
      if (!best || b->capacity < best->capacity) best = b;
      if (best->capacity == size) break;
    }
  }
  if (best) cache_unlink(best);
  return best;
}

/* ---- allocation ---- */

/* A fresh block of `size` bytes, or NULL (error reported). Call with the lock held. */
static block* new_block(size_t nbytes, size_t size) {
  size_t room = memory_limit - active_bytes; /* active_bytes <= memory_limit is not guaranteed */
  if (active_bytes > memory_limit || size > room) {
    util_error("allocation of %zu bytes exceeds the memory limit (%zu bytes in use, limit %zu)",
               nbytes, active_bytes, memory_limit);
    return NULL;
  }
  /* Cached memory is still the process's: make room for the new block within the limit. */
  if (cache_bytes > room - size) trim_cache(room - size);
  block* b = aligned_alloc(ALIGNMENT, HEADER_SIZE + size);
  if (!b) {
    trim_cache(0); /* give the cache back to the system and try once more */
    b = aligned_alloc(ALIGNMENT, HEADER_SIZE + size);
  }
  if (!b) {
    util_error("out of memory allocating %zu bytes", nbytes);
    return NULL;
  }
  memset(b, 0, sizeof *b);
  b->capacity = size;
  return b;
}

void* core_alloc(size_t nbytes) {
  if (nbytes > MAX_REQUEST) {
    util_error("allocation of %zu bytes is too large", nbytes);
    return NULL;
  }
  size_t size = round_size(nbytes);
  pthread_mutex_lock(&lock);
  ensure_defaults();
  size_t room = active_bytes < memory_limit ? memory_limit - active_bytes : 0;
  block* b = take_from_cache(size, room < 2 * size ? room : 2 * size);
  if (!b) b = new_block(nbytes, size);
  if (!b) {
    pthread_mutex_unlock(&lock);
    return NULL;
  }
  if (!b->wired && wired_limit > wired_bytes) try_wire(b);
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
    cache_push(b);
    trim_cache(cache_limit);
  } else {
    if (b->wired) unwire(b, &wired_live);
    free(b);
  }
  pthread_mutex_unlock(&lock);
}

/* ---- counters and limits ---- */

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
        "wired limit of %zu bytes exceeds the limit on locked memory (RLIMIT_MEMLOCK = %zu bytes); "
        "raise it with `ulimit -l` or run with CAP_IPC_LOCK",
        limit, lockable);
  }
  pthread_mutex_lock(&lock);
  if (previous) *previous = wired_limit;
  wired_limit = limit;
  unwire_down_to(limit);
  pthread_mutex_unlock(&lock);
  return 0;
}
