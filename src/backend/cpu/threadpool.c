/* The CPU thread pool (see threadpool.h): size-1 persistent workers plus the calling thread.
 * A job is published under `mutex` with a new generation number; workers claim chunks through an
 * atomic counter and check in when no chunk is left; the caller returns once every worker it
 * asked for has checked in, so no worker can still be reading the job when the next starts. */
#include "backend/cpu/threadpool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

/* Chunks per thread: a little over-splitting keeps all threads busy when one is descheduled. */
#define CHUNKS_PER_THREAD 4
/* Chunk starts are rounded to this many elements so threads do not share output cache lines. */
#define CHUNK_ALIGN 64
#define MAX_POOL_THREADS 1024

typedef void (*chunk_fn)(void* ctx, int64_t begin, int64_t end);

static struct {
  pthread_once_t once;
  int size;                 /* threads including the caller */
  atomic_int max_threads;   /* cpu_set_max_threads; 0 = size */
  pthread_mutex_t job_lock; /* held by the thread whose job owns the pool */
  pthread_mutex_t mutex;    /* guards the fields below */
  pthread_cond_t wake, done;
  uint64_t generation;
  int workers_wanted;       /* workers 0..workers_wanted-1 take part in this job */
  int workers_done;
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

static void* worker_main(void* arg) {
  int id = (int)(intptr_t)arg;
  in_worker = true;
  uint64_t seen = 0;
  for (;;) {
    pthread_mutex_lock(&pool.mutex);
    while (pool.generation == seen || id >= pool.workers_wanted) {
      seen = pool.generation;
      pthread_cond_wait(&pool.wake, &pool.mutex);
    }
    seen = pool.generation;
    pthread_mutex_unlock(&pool.mutex);
    run_chunks();
    pthread_mutex_lock(&pool.mutex);
    if (++pool.workers_done == pool.workers_wanted) pthread_cond_signal(&pool.done);
    pthread_mutex_unlock(&pool.mutex);
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

  pthread_mutex_lock(&pool.mutex);
  pool.fn = fn;
  pool.ctx = ctx;
  pool.n = n;
  pool.chunks = chunks;
  pool.align = align;
  atomic_store(&pool.next_chunk, 0);
  pool.workers_wanted = workers;
  pool.workers_done = 0;
  pool.generation++;
  pthread_cond_broadcast(&pool.wake);
  pthread_mutex_unlock(&pool.mutex);

  /* Nested calls from fn on this thread find job_lock taken and run inline. */
  run_chunks();

  pthread_mutex_lock(&pool.mutex);
  while (pool.workers_done < pool.workers_wanted) pthread_cond_wait(&pool.done, &pool.mutex);
  pool.workers_wanted = 0;
  pthread_mutex_unlock(&pool.mutex);
  pthread_mutex_unlock(&pool.job_lock);
}
