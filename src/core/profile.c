/* MLXC_PROFILE: per-primitive counts and host time of evaluated nodes (profile.h). */
#include "core/profile.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PROFILE_SLOTS 256

typedef struct {
  const char* name; /* the primitive's static name; the table is keyed by the pointer */
  uint64_t gpu_runs, cpu_runs, nanoseconds;
} profile_slot;

static profile_slot slots[PROFILE_SLOTS];
static pthread_mutex_t profile_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t profile_once = PTHREAD_ONCE_INIT;
static bool enabled, synchronous;

static int by_time(const void* a, const void* b) {
  const profile_slot *x = a, *y = b;
  return (x->nanoseconds < y->nanoseconds) - (x->nanoseconds > y->nanoseconds);
}

static void print_profile(void) {
  pthread_mutex_lock(&profile_lock);
  size_t n = 0;
  while (n < PROFILE_SLOTS && slots[n].name) n++;
  qsort(slots, n, sizeof *slots, by_time);
  uint64_t total = 0;
  for (size_t i = 0; i < n; i++) total += slots[i].nanoseconds;
  fprintf(stderr, "MLXC_PROFILE: host time of evaluated nodes, %.3f ms in all\n", total / 1e6);
  fprintf(stderr, "%-24s %10s %10s %12s %10s\n", "primitive", "gpu runs", "cpu runs", "host ms", "us/run");
  for (size_t i = 0; i < n; i++) {
    uint64_t runs = slots[i].gpu_runs + slots[i].cpu_runs;
    fprintf(stderr, "%-24s %10llu %10llu %12.3f %10.2f\n", slots[i].name, (unsigned long long)slots[i].gpu_runs,
            (unsigned long long)slots[i].cpu_runs, slots[i].nanoseconds / 1e6,
            runs ? slots[i].nanoseconds / 1e3 / (double)runs : 0.0);
  }
  pthread_mutex_unlock(&profile_lock);
}

static void read_environment(void) {
  const char* v = getenv("MLXC_PROFILE");
  enabled = v && *v && strcmp(v, "0") != 0;
  synchronous = enabled && strcmp(v, "sync") == 0;
  if (enabled) atexit(print_profile);
}

bool core_profile_enabled(void) {
  pthread_once(&profile_once, read_environment);
  return enabled;
}

bool core_profile_sync(void) {
  pthread_once(&profile_once, read_environment);
  return synchronous;
}

uint64_t core_profile_now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

void core_profile_record(const char* name, bool on_gpu, uint64_t nanoseconds) {
  pthread_mutex_lock(&profile_lock);
  for (size_t i = 0; i < PROFILE_SLOTS; i++) {
    if (slots[i].name && slots[i].name != name) continue;
    slots[i].name = name;
    if (on_gpu)
      slots[i].gpu_runs++;
    else
      slots[i].cpu_runs++;
    slots[i].nanoseconds += nanoseconds;
    break;
  }
  pthread_mutex_unlock(&profile_lock);
}

void core_profile_reset(void) {
  pthread_mutex_lock(&profile_lock);
  memset(slots, 0, sizeof slots);
  pthread_mutex_unlock(&profile_lock);
}
