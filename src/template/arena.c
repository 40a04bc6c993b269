/* Region allocator, failure unwinding and growable buffers for the template engine. */
#include "template/arena.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_MIN (64 * 1024)

struct arena_chunk {
  arena_chunk* next;
  size_t size, used;
  _Alignas(16) unsigned char data[];
};

void tmpl_arena_init(tmpl_arena* arena, size_t limit_bytes) {
  memset(arena, 0, sizeof *arena);
  arena->limit_bytes = limit_bytes;
}

void tmpl_arena_release(tmpl_arena* arena) {
  arena_chunk* c = arena->chunks;
  while (c) {
    arena_chunk* next = c->next;
    free(c);
    c = next;
  }
  arena->chunks = NULL;
  arena->used_bytes = 0;
}

void* tmpl_alloc(tmpl_arena* arena, size_t bytes) {
  size_t rounded = (bytes + 15) & ~(size_t)15;
  if (rounded < bytes) tmpl_fail(arena, 0, 0, "memory limit exceeded");
  if (arena->limit_bytes && (rounded > arena->limit_bytes || arena->used_bytes > arena->limit_bytes - rounded))
    tmpl_fail(arena, 0, 0, "memory limit exceeded (%zu bytes)", arena->limit_bytes);
  arena_chunk* c = arena->chunks;
  if (!c || c->size - c->used < rounded) {
    size_t size = rounded > CHUNK_MIN ? rounded : CHUNK_MIN;
    c = malloc(sizeof(arena_chunk) + size);
    if (!c) tmpl_fail(arena, 0, 0, "out of memory");
    c->size = size;
    c->used = 0;
    /* A large block gets its own chunk behind the current one so the current keeps its space. */
    if (arena->chunks && rounded > CHUNK_MIN) {
      c->next = arena->chunks->next;
      arena->chunks->next = c;
    } else {
      c->next = arena->chunks;
      arena->chunks = c;
    }
  }
  void* p = c->data + c->used;
  c->used += rounded;
  arena->used_bytes += rounded;
  memset(p, 0, rounded);
  return p;
}

char* tmpl_strndup(tmpl_arena* arena, const char* s, size_t len) {
  char* p = tmpl_alloc(arena, len + 1);
  if (len) memcpy(p, s, len);
  p[len] = '\0';
  return p;
}

void tmpl_fail(tmpl_arena* arena, int line, int col, const char* fmt, ...) {
  char detail[400];
  va_list args;
  va_start(args, fmt);
  vsnprintf(detail, sizeof detail, fmt, args);
  va_end(args);
  if (line > 0)
    snprintf(arena->message, sizeof arena->message, "line %d, column %d: %s", line, col, detail);
  else
    snprintf(arena->message, sizeof arena->message, "%s", detail);
  longjmp(*arena->on_error, 1);
}

void tmpl_buf_init(tmpl_buf* buf, tmpl_arena* arena, size_t limit) {
  buf->arena = arena;
  buf->data = NULL;
  buf->len = buf->cap = 0;
  buf->limit = limit;
}

void tmpl_buf_append(tmpl_buf* buf, const char* data, size_t len) {
  if (!len) return;
  if (buf->limit && (len > buf->limit || buf->len > buf->limit - len))
    tmpl_fail(buf->arena, 0, 0, "output limit exceeded (%zu bytes)", buf->limit);
  if (buf->len + len + 1 > buf->cap) {
    size_t cap = buf->cap ? buf->cap * 2 : 64;
    while (cap < buf->len + len + 1) cap *= 2;
    char* grown = tmpl_alloc(buf->arena, cap);
    if (buf->len) memcpy(grown, buf->data, buf->len);
    buf->data = grown;
    buf->cap = cap;
  }
  memcpy(buf->data + buf->len, data, len);
  buf->len += len;
  buf->data[buf->len] = '\0';
}

void tmpl_buf_puts(tmpl_buf* buf, const char* s) { tmpl_buf_append(buf, s, strlen(s)); }

void tmpl_buf_putc(tmpl_buf* buf, char c) { tmpl_buf_append(buf, &c, 1); }

void tmpl_buf_printf(tmpl_buf* buf, const char* fmt, ...) {
  char small[128];
  va_list args;
  va_start(args, fmt);
  int n = vsnprintf(small, sizeof small, fmt, args);
  va_end(args);
  if (n < 0) return;
  if ((size_t)n < sizeof small) {
    tmpl_buf_append(buf, small, (size_t)n);
    return;
  }
  char* big = tmpl_alloc(buf->arena, (size_t)n + 1);
  va_start(args, fmt);
  vsnprintf(big, (size_t)n + 1, fmt, args);
  va_end(args);
  tmpl_buf_append(buf, big, (size_t)n);
}
