/* The CPU thread pool (see threadpool.h): size-1 persistent workers plus the calling thread.
 * A job is published as a new `ticket` (generation number and how many workers take part) after
 * its fields are written; workers claim chunks through an atomic counter and check in when no
 * chunk is left; the caller returns once every worker it asked for has checked in, so no worker
 * can still be reading the job when the next starts.
 *
 * Waking sleeping threads through a condition variable cost 35-60 us per job with 16 threads on
 * the device CPU (more than a whole 4096x4096 4-bit decode GEMV reads from memory), so both sides
 * spin for a while first: workers watch the ticket for SPIN_US after their last job (decode runs
 * one job after another) before they sleep, and the caller watches the check-in count. */
#include "backend/cpu/threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

/* Chunks per thread: a little over-splitting keeps all threads busy when one is descheduled. */
#define CHUNKS_PER_THREAD 4
/* Chunk starts are rounded to this many elements so threads do not share output cache lines. */
#define CHUNK_ALIGN 64
#define MAX_POOL_THREADS 1024
/* How long a thread waits spinning before it sleeps (microseconds). */
#define SPIN_US 100
/* A ticket: generation << TICKET_BITS | workers wanted (MAX_POOL_THREADS fits). */
#define TICKET_BITS 16

typedef void (*chunk_fn)(void* ctx, int64_t begin, int64_t end);

static struct {
  pthread_once_t once;
  int size;                 /* threads including the caller */
  atomic_int max_threads;   /* cpu_set_max_threads; 0 = size */
  pthread_mutex_t job_lock; /* held by the thread whose job owns the pool */
  pthread_mutex_t mutex;    /* with `wake` and `done`: sleeping and waking */
  pthread_cond_t wake, done;
  _Atomic uint64_t ticket;  /* the current job; its fields below are written before it */
  atomic_int workers_done;
  atomic_int sleepers;      /* workers waiting on `wake` */
  chunk_fn fn;
  void* ctx;
  int64_t n, chunks;
  int64_t align;            /* chunk starts are multiples of this */
  atomic_llong next_chunk;
} pool = {.once = PTHREAD_ONCE_INIT,
          .job_lock = PTHREAD_MUTEX_INITIALIZER,
          .mutex = PTHREAD_MUTEX_INITIALIZER,
          .wake = PTHREAD_COND_INITIALIZER,
          .done = PTHREAD_COND_INITIALIZER};

/* One step of a spin wait: a pause at first, then sched_yield, so that on a machine with more
 * runnable threads than cores the spinning thread hands its core to the one it waits for. */
static inline void spin_pause(int i) {
  if (i < 256) cpu_relax();
  else sched_yield();
}

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec * 1e-3;
}

static _Thread_local bool in_worker;

static int64_t chunk_begin(int64_t i) {
  if (i >= pool.chunks) return pool.n;
  int64_t b = (int64_t)((__int128)pool.n * i / pool.chunks);
  return b - b % pool.align;
}

/* Runs chunks of the current job until none is left. */
static void run_chunks(void) {
  for (;;) {
    int64_t i = atomic_fetch_add(&pool.next_chunk, 1);
    if (i >= pool.chunks) return;
    int64_t begin = chunk_begin(i), end = chunk_begin(i + 1);
    if (end > begin) pool.fn(pool.ctx, begin, end);
  }
}

/* Returns the first ticket whose generation differs from `generation`: spinning for SPIN_US,
 * then asleep on `wake`. */
static uint64_t next_ticket(uint64_t generation) {
  double start = 0;
  for (int i = 0;; i++) {
    uint64_t t = atomic_load(&pool.ticket);
    if (t >> TICKET_BITS != generation) return t;
    spin_pause(i);
    if ((i & 63) != 63) continue;
    if (start == 0) start = now_us();
    else if (now_us() - start > SPIN_US) break;
  }
  pthread_mutex_lock(&pool.mutex);
  /* sleepers before the re-check, the publisher's ticket before its look at sleepers (both
   * sequentially consistent): one of the two sees the other, so no wake-up is lost */
  atomic_fetch_add(&pool.sleepers, 1);
  uint64_t t;
  while ((t = atomic_load(&pool.ticket)) >> TICKET_BITS == generation)
    pthread_cond_wait(&pool.wake, &pool.mutex);
  atomic_fetch_sub(&pool.sleepers, 1);
  pthread_mutex_unlock(&pool.mutex);
  return t;
}

static void* worker_main(void* arg) {
  int id = (int)(intptr_t)arg;
  in_worker = true;
  uint64_t generation = 0;
  for (;;) {
    uint64_t t = next_ticket(generation);
    generation = t >> TICKET_BITS;
    int wanted = (int)(t & ((1u << TICKET_BITS) - 1));
    if (id >= wanted) continue;
    run_chunks();
    if (atomic_fetch_add(&pool.workers_done, 1) + 1 == wanted) {
      pthread_mutex_lock(&pool.mutex);
      pthread_cond_signal(&pool.done);
      pthread_mutex_unlock(&pool.mutex);
    }
  }
  return NULL;
}

static int requested_size(void) {
  const char* env = getenv("MLXC_NUM_THREADS");
  if (env && *env) {
    char* end;
    long v = strtol(env, &end, 10);
    if (*end == '\0' && v >= 1) return v > MAX_POOL_THREADS ? MAX_POOL_THREADS : (int)v;
  }
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  if (cpus < 1) return 1;
  return cpus > MAX_POOL_THREADS ? MAX_POOL_THREADS : (int)cpus;
}

static void pool_init(void) {
  int want = requested_size();
  pool.size = 1;
  pthread_attr_t attr;
  if (want > 1 && pthread_attr_init(&attr) == 0) {
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    /* Fewer workers than asked is fine when the system refuses more threads. */
    for (int i = 0; i < want - 1; i++) {
      pthread_t t;
      if (pthread_create(&t, &attr, worker_main, (void*)(intptr_t)i) != 0) break;
      pool.size++;
    }
    pthread_attr_destroy(&attr);
  }
}

int cpu_max_threads(void) {
  pthread_once(&pool.once, pool_init);
  int m = atomic_load(&pool.max_threads);
  return (m >= 1 && m < pool.size) ? m : pool.size;
}

void cpu_set_max_threads(int n) {
  pthread_once(&pool.once, pool_init);
  atomic_store(&pool.max_threads, n < 1 ? 1 : n);
}

void cpu_parallel_for(int64_t n, int64_t min_chunk, chunk_fn fn, void* ctx) {
  if (n <= 0) return;
  if (min_chunk < 1) min_chunk = 1;
  int threads = (in_worker || n < 2 * min_chunk) ? 1 : cpu_max_threads();
  if (threads <= 1 || pthread_mutex_trylock(&pool.job_lock) != 0) {
    fn(ctx, 0, n);
    return;
  }
  /* Aligning starts moves each down by < CHUNK_ALIGN; budgeting that keeps chunks >= min_chunk. */
  int64_t align = min_chunk >= CHUNK_ALIGN ? CHUNK_ALIGN : 1;
  int64_t chunks = n / (min_chunk + (align > 1 ? align : 0));
  if (chunks < 2) {
    pthread_mutex_unlock(&pool.job_lock);
    fn(ctx, 0, n);
    return;
  }
  if (chunks > (int64_t)threads * CHUNKS_PER_THREAD) chunks = (int64_t)threads * CHUNKS_PER_THREAD;
  int workers = chunks - 1 < threads - 1 ? (int)chunks - 1 : threads - 1;

  pool.fn = fn;
  pool.ctx = ctx;
  pool.n = n;
  pool.chunks = chunks;
  pool.align = align;
  atomic_store(&pool.next_chunk, 0);
  atomic_store(&pool.workers_done, 0);
  uint64_t generation = (atomic_load(&pool.ticket) >> TICKET_BITS) + 1;
  atomic_store(&pool.ticket, generation << TICKET_BITS | (uint64_t)workers);
  if (atomic_load(&pool.sleepers) > 0) {
    pthread_mutex_lock(&pool.mutex);
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.mutex);
  }

  /* Nested calls from fn on this thread find job_lock taken and run inline. */
  run_chunks();

  double start = 0;
  for (int i = 0; atomic_load(&pool.workers_done) < workers; i++) {
    spin_pause(i);
    if ((i & 63) != 63) continue;
    if (start == 0) {
      start = now_us();
    } else if (now_us() - start > SPIN_US) {
      pthread_mutex_lock(&pool.mutex);
      while (atomic_load(&pool.workers_done) < workers) pthread_cond_wait(&pool.done, &pool.mutex);
      pthread_mutex_unlock(&pool.mutex);
      break;
    }
  }
  pthread_mutex_unlock(&pool.job_lock);
}
