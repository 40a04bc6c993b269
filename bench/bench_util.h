/* Shared helpers of the benchmark programs: a monotonic clock, the memcpy bandwidth measured in
 * the same run (the reference every GB/s figure is quoted against), and best-of-N timing. */
#ifndef MLXC_BENCH_UTIL_H
#define MLXC_BENCH_UTIL_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

#endif
