/* Test hooks of the wired-limit guard (src/util/wired_guard.c): where its warnings go and which
 * functions set the wired limit and synchronise, so tests can capture, count and inject failures. */
#ifndef MLXC_UTIL_WIRED_GUARD_H
#define MLXC_UTIL_WIRED_GUARD_H

#include <stddef.h>

#include "mlx/c/stream.h"

typedef struct {
  /* Receives each warning (NULL: print it to stderr). */
  void (*warn)(const char* message, void* user);
  void* warn_user;
  /* Sets the wired limit like mlx_set_wired_limit (NULL: mlx_set_wired_limit itself). */
  int (*set_wired_limit)(size_t* previous, size_t limit);
  /* Synchronises a stream like mlx_synchronize (NULL: mlx_synchronize itself). */
  int (*synchronize)(mlx_stream stream);
} wired_guard_hooks;

/* Replaces the hooks (NULL restores the defaults) and re-arms the warn-once warning. Call only
 * while no guard is live. */
void wired_guard_set_hooks(const wired_guard_hooks* hooks);

/* Number of live guards sharing the installed limit (no-op guards are not counted). */
size_t wired_guard_live_count(void);

#endif
