/* A growable string buffer. A failed allocation sets `failed` and later appends do nothing,
 * so callers check once at the end. */
#ifndef MLXC_UTIL_STRBUF_H
#define MLXC_UTIL_STRBUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
  char* data;
  size_t length, capacity;
  bool failed;
} strbuf;

void strbuf_append(strbuf* sb, const char* text, size_t n);
void strbuf_puts(strbuf* sb, const char* text);
void strbuf_printf(strbuf* sb, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
/* Returns the NUL-terminated text (caller frees) or NULL if any allocation failed. */
char* strbuf_take(strbuf* sb);
void strbuf_free(strbuf* sb);

#endif
