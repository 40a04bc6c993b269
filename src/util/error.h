/* Internal error reporting: format a message, record it for mlxc_last_error(), pass it to the
 * handler. Every failing public function reports exactly once, where the failure is found. */
#ifndef MLXC_UTIL_ERROR_H
#define MLXC_UTIL_ERROR_H

/* Reports a failure and returns 1, so callers can write `return util_error("bad axis %d", ax);`. */
int util_error(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

/* How many failures this thread has reported so far (to tell whether a sequence of calls failed
 * anywhere). */
unsigned long util_error_count(void);

/* Propagates a non-zero status to the caller's `cleanup:` label. Expects `int status` in scope. */
#define TRY(expr)          \
  do {                     \
    status = (expr);       \
    if (status) goto cleanup; \
  } while (0)

/* Reports and jumps to `cleanup:` when `cond` is false. */
#define REQUIRE(cond, ...)                 \
  do {                                     \
    if (!(cond)) {                         \
      status = util_error(__VA_ARGS__);    \
      goto cleanup;                        \
    }                                      \
  } while (0)

#endif
