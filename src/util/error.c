/* The error handler (global, locked) and the per-thread last message. */
#include "util/error.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "mlx/c/error.h"
#include "mlxc/error.h"

#define MESSAGE_CAPACITY 1024

static _Thread_local char last_message[MESSAGE_CAPACITY];
static _Thread_local unsigned long reported; /* failures reported on this thread */

static pthread_mutex_t handler_lock = PTHREAD_MUTEX_INITIALIZER;
static mlx_error_handler_func handler;
static void* handler_data;
static void (*handler_dtor)(void*);
static int quiet;

void mlx_set_error_handler(mlx_error_handler_func new_handler, void* data, void (*dtor)(void*)) {
  pthread_mutex_lock(&handler_lock);
  void* old_data = handler_data;
  void (*old_dtor)(void*) = handler_dtor;
  handler = new_handler;
  handler_data = data;
  handler_dtor = dtor;
  pthread_mutex_unlock(&handler_lock);
  if (old_dtor) old_dtor(old_data);
}

const char* mlxc_last_error(void) { return last_message; }

void mlxc_clear_error(void) { last_message[0] = '\0'; }

int mlxc_set_errors_quiet(int q) {
  pthread_mutex_lock(&handler_lock);
  int previous = quiet;
  quiet = q;
  pthread_mutex_unlock(&handler_lock);
  return previous;
}

unsigned long util_error_count(void) { return reported; }

int util_error(const char* fmt, ...) {
  reported++;
  va_list args;
  va_start(args, fmt);
  vsnprintf(last_message, sizeof last_message, fmt, args);
  va_end(args);
  /* The handler runs under the lock so that replacing it cannot free its data mid-call. */
  pthread_mutex_lock(&handler_lock);
  if (handler) {
    handler(last_message, handler_data);
  } else if (!quiet) {
    fprintf(stderr, "mlxc: %s\n", last_message);
  }
  pthread_mutex_unlock(&handler_lock);
  return 1;
}
