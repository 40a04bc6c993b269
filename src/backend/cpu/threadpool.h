/* A persistent pthread pool for CPU kernels: split a flat range [0, n) into chunks and run them
 * on all cores.
 *
 *   typedef struct { const float* x; float* y; } scale_ctx;
 *   static void scale_chunk(void* p, int64_t begin, int64_t end) {
 *     scale_ctx* c = p;
 *     for (int64_t i = begin; i < end; i++) c->y[i] = 2 * c->x[i];
 *   }
 *   ...
 *   scale_ctx c = {x, y};
 *   cpu_parallel_for(n, CPU_MIN_CHUNK_ELEMENTWISE, scale_chunk, &c);
 *
 * The pool (size = online CPUs, or the environment variable MLXC_NUM_THREADS read once at first
 * use) is created lazily and lives for the whole process. The calling thread runs chunks too.
 *
 * Safe from any thread: one job runs on the pool at a time; a call made while the pool is busy
 * (another user thread, or a chunk function calling cpu_parallel_for from inside a worker) runs
 * its whole range inline on the calling thread instead of waiting, so it can never deadlock.
 * `fn` must not fail: record errors in ctx and check them after the call. */
#ifndef MLXC_CPU_THREADPOOL_H
#define MLXC_CPU_THREADPOOL_H

#include <stdint.h>

/* Chunk sizes that amortise a wake-up (a few microseconds) for streaming elementwise work. */
#define CPU_MIN_CHUNK_ELEMENTWISE (1 << 15)

/* Calls fn(ctx, begin, end) over disjoint chunks covering [0, n), each at least min_chunk long
 * (except when n itself is smaller), possibly concurrently; returns when all have finished.
 * Runs fn(ctx, 0, n) inline when n < 2 * min_chunk, when only one thread is allowed, or when the
 * pool is busy. n <= 0 does nothing. */
void cpu_parallel_for(int64_t n, int64_t min_chunk, void (*fn)(void* ctx, int64_t begin, int64_t end),
                      void* ctx);

/* Threads a job may use (the pool size unless lowered with cpu_set_max_threads). */
int cpu_max_threads(void);

/* Limits later jobs to n threads (1 = everything inline), clamped to [1, pool size]. Meant for
 * benchmarks and tests comparing thread counts; a process-wide setting. */
void cpu_set_max_threads(int n);

#endif
