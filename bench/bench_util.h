/* Shared helpers of the benchmark programs: a monotonic clock, the memcpy bandwidth measured in
 * the same run (the reference every GB/s figure is quoted against), and best-of-N timing. */
#ifndef MLXC_BENCH_UTIL_H
#define MLXC_BENCH_UTIL_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/cpu/threadpool.h"

static inline double bench_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Bytes moved per second (read + write) by memcpy over `bytes`, best of `reps`. */
static inline double bench_memcpy_gbps(size_t bytes, int reps) {
  char* a = malloc(bytes);
  char* b = malloc(bytes);
  if (!a || !b) {
    free(a);
    free(b);
    return 0;
  }
  memset(a, 1, bytes);
  memset(b, 2, bytes);
  double best = 1e30;
  for (int r = 0; r < reps; r++) {
    double t = bench_now();
    memcpy(b, a, bytes);
    t = bench_now() - t;
    if (t < best) best = t;
  }
  volatile char sink = b[bytes / 2];
  (void)sink;
  free(a);
  free(b);
  return 2.0 * bytes / best / 1e9;
}

typedef struct {
  char* dst;
  const char* src;
} bench_copy_ctx;

static inline void bench_copy_chunk(void* p, int64_t begin, int64_t end) {
  bench_copy_ctx* c = p;
  memcpy(c->dst + begin, c->src + begin, (size_t)(end - begin));
}

/* memcpy of `bytes` split over the thread pool's current thread count, best of `reps`;
 * GB/s of read + write (the reference for kernels that run on the pool). */
static inline double bench_parallel_memcpy_gbps(size_t bytes, int reps) {
  char* a = malloc(bytes);
  char* b = malloc(bytes);
  if (!a || !b) {
    free(a);
    free(b);
    return 0;
  }
  memset(a, 1, bytes);
  memset(b, 2, bytes);
  bench_copy_ctx c = {b, a};
  double best = 1e30;
  for (int r = 0; r < reps; r++) {
    double t = bench_now();
    cpu_parallel_for((int64_t)bytes, 1 << 20, bench_copy_chunk, &c);
    t = bench_now() - t;
    if (t < best) best = t;
  }
  free(a);
  free(b);
  return 2.0 * bytes / best / 1e9;
}

#endif
