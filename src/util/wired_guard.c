/* The wired-limit guard (include/mlxc/memory.h): a process-wide, reference-counted setting of
 * the recommended wired limit for the duration of generations. Built on the public mlx-c API
 * only. Global state (the count, the captured limit, the streams to synchronise) is guarded by
 * one mutex. */
#include "mlxc/memory.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "mlx/c/device.h"
#include "mlx/c/memory.h"
#include "mlxc/error.h"
#include "util/error.h"
#include "util/wired_guard.h"

struct mlxc_wired_guard {
  bool shares; /* holds one count of the live setting; false for a no-op guard */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static size_t live_count;      /* guards sharing the installed limit */
static size_t prior_limit;     /* captured by the first of them */
static mlx_stream* sync_streams; /* every distinct stream given to them */
static size_t n_sync, sync_capacity;
static bool failure_warned;
static wired_guard_hooks hooks;

static void warn(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
static void warn(const char* fmt, ...) {
  char message[512];
  va_list args;
  va_start(args, fmt);
  vsnprintf(message, sizeof message, fmt, args);
  va_end(args);
  if (hooks.warn)
    hooks.warn(message, hooks.warn_user);
  else
    fprintf(stderr, "mlxc: warning: %s\n", message);
}

static int set_wired_limit(size_t* previous, size_t limit) {
  return hooks.set_wired_limit ? hooks.set_wired_limit(previous, limit)
                               : mlx_set_wired_limit(previous, limit);
}

static int synchronize(mlx_stream stream) {
  return hooks.synchronize ? hooks.synchronize(stream) : mlx_synchronize(stream);
}

/* The device's max_recommended_working_set_size, 0 when it gives none. */
static size_t recommended_working_set(mlx_device dev) {
  const char* key = "max_recommended_working_set_size";
  mlx_device_info info = mlx_device_info_new();
  bool exists = false, is_string = true;
  size_t size = 0;
  if (info.ctx && mlx_device_info_get(&info, dev) == 0 &&
      mlx_device_info_has_key(&exists, info, key) == 0 && exists &&
      mlx_device_info_is_string(&is_string, info, key) == 0 && !is_string)
    mlx_device_info_get_size(&size, info, key); /* leaves 0 on failure */
  mlx_device_info_free(info);
  return size;
}

/* Makes room for n more streams in sync_streams. Call with the lock held. */
static int reserve_streams(size_t n) {
  if (n_sync + n <= sync_capacity) return 0;
  size_t capacity = sync_capacity ? sync_capacity : 4;
  while (capacity < n_sync + n) capacity *= 2;
  mlx_stream* grown = realloc(sync_streams, capacity * sizeof *grown);
  if (!grown) return util_error("out of memory installing a wired-limit guard");
  sync_streams = grown;
  sync_capacity = capacity;
  return 0;
}

/* Remembers a stream for the last release, once. Call with the lock held and room reserved. */
static void remember_stream(mlx_stream s) {
  for (size_t i = 0; i < n_sync; i++)
    if (mlx_stream_equal(sync_streams[i], s)) return;
  sync_streams[n_sync] = mlx_stream_new();
  mlx_stream_set(&sync_streams[n_sync], s);
  n_sync++;
}

/* The first guard: capture the limit and set the recommended one. Returns whether it is set. */
static bool install_first(size_t recommended) {
  if (recommended == 0) return false; /* nothing to install on this device */
  if (set_wired_limit(&prior_limit, recommended) == 0) return true;
  if (!failure_warned) {
    failure_warned = true;
    warn("could not set the wired limit to the recommended %zu bytes (%s); continuing without it",
         recommended, mlxc_last_error());
  }
  return false;
}

int mlxc_wired_guard_install(mlxc_wired_guard** out, mlx_device dev, size_t model_bytes,
                             const mlx_stream* streams, size_t n_streams) {
  if (!out) return util_error("mlxc_wired_guard_install: null result pointer");
  *out = NULL;
  if (!streams && n_streams) return util_error("mlxc_wired_guard_install: null streams");
  mlxc_wired_guard* guard = calloc(1, sizeof *guard);
  if (!guard) return util_error("out of memory installing a wired-limit guard");

  size_t recommended = recommended_working_set(dev);
  pthread_mutex_lock(&lock);
  if (recommended && (long double)model_bytes > 0.9L * (long double)recommended)
    warn("the model needs %zu bytes, more than 90%% of the recommended working set (%zu bytes); "
         "expect paging and slow generation",
         model_bytes, recommended);
  if (reserve_streams(n_streams)) {
    pthread_mutex_unlock(&lock);
    free(guard);
    return 1;
  }
  guard->shares = live_count > 0 || install_first(recommended);
  if (guard->shares) {
    live_count++;
    for (size_t i = 0; i < n_streams; i++) remember_stream(streams[i]);
  }
  pthread_mutex_unlock(&lock);
  *out = guard;
  return 0;
}

/* The last guard: let queued work finish, then put the captured limit back. Lock held. */
static void release_last(void) {
  for (size_t i = 0; i < n_sync; i++) {
    if (synchronize(sync_streams[i]) != 0)
      warn("could not synchronise a stream before restoring the wired limit (%s)",
           mlxc_last_error());
    mlx_stream_free(sync_streams[i]);
  }
  free(sync_streams);
  sync_streams = NULL;
  n_sync = sync_capacity = 0;
  size_t ignored;
  if (set_wired_limit(&ignored, prior_limit) != 0)
    warn("could not restore the wired limit of %zu bytes (%s)", prior_limit, mlxc_last_error());
}

void mlxc_wired_guard_release(mlxc_wired_guard* guard) {
  if (!guard) return;
  if (guard->shares) {
    pthread_mutex_lock(&lock);
    if (--live_count == 0) release_last();
    pthread_mutex_unlock(&lock);
  }
  free(guard);
}

void wired_guard_set_hooks(const wired_guard_hooks* new_hooks) {
  pthread_mutex_lock(&lock);
  hooks = new_hooks ? *new_hooks : (wired_guard_hooks){0};
  failure_warned = false;
  pthread_mutex_unlock(&lock);
}

size_t wired_guard_live_count(void) {
  pthread_mutex_lock(&lock);
  size_t count = live_count;
  pthread_mutex_unlock(&lock);
  return count;
}
