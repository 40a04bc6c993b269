/* Growable string buffer (strbuf.h). */
#include "util/strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool reserve(strbuf* sb, size_t extra) {
  if (sb->failed) return false;
  if (sb->length + extra + 1 <= sb->capacity) return true;
  size_t cap = sb->capacity ? sb->capacity : 64;
  while (cap < sb->length + extra + 1) cap *= 2;
  char* grown = realloc(sb->data, cap);
  if (!grown) {
    sb->failed = true;
    return false;
  }
  sb->data = grown;
  sb->capacity = cap;
  return true;
}

void strbuf_append(strbuf* sb, const char* text, size_t n) {
  if (!reserve(sb, n)) return;
  memcpy(sb->data + sb->length, text, n);
  sb->length += n;
  sb->data[sb->length] = '\0';
}

void strbuf_puts(strbuf* sb, const char* text) { strbuf_append(sb, text, strlen(text)); }

void strbuf_printf(strbuf* sb, const char* fmt, ...) {
  va_list args;
  va_start(args, fmt);
  int n = vsnprintf(NULL, 0, fmt, args);
  va_end(args);
  if (n < 0 || !reserve(sb, (size_t)n)) return;
  va_start(args, fmt);
  vsnprintf(sb->data + sb->length, (size_t)n + 1, fmt, args);
  va_end(args);
  sb->length += (size_t)n;
}

char* strbuf_take(strbuf* sb) {
  if (sb->failed) {
    strbuf_free(sb);
    return NULL;
  }
  if (!sb->data && !reserve(sb, 0)) return NULL;
  char* out = sb->data;
  *sb = (strbuf){0};
  return out;
}

void strbuf_free(strbuf* sb) {
  free(sb->data);
  *sb = (strbuf){0};
}
