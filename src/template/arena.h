/* Region allocation and error unwinding for the template engine. Every value, AST node and buffer
 * of one compile or one render lives in one arena, freed at once; errors longjmp to the entry point
 * (safe because nothing but the arena owns memory while a template runs). */
#ifndef MLXC_TEMPLATE_ARENA_H
#define MLXC_TEMPLATE_ARENA_H

#include <setjmp.h>
#include <stddef.h>

typedef struct arena_chunk arena_chunk;

typedef struct tmpl_arena {
  arena_chunk* chunks;
  size_t used_bytes;   /* total bytes handed out, checked against limit_bytes */
  size_t limit_bytes;  /* 0: unlimited */
  jmp_buf* on_error;   /* where tmpl_fail jumps; set by the entry point */
  char message[512];   /* the failure, "line L, column C: ..." */
} tmpl_arena;

void tmpl_arena_init(tmpl_arena* arena, size_t limit_bytes);
void tmpl_arena_release(tmpl_arena* arena);

/* Zeroed memory, 16-byte aligned; fails (longjmp) when the arena's limit is reached. */
void* tmpl_alloc(tmpl_arena* arena, size_t bytes);
char* tmpl_strndup(tmpl_arena* arena, const char* s, size_t len);

/* Records "line L, column C: message" (line 0: no position) and jumps to arena->on_error. */
_Noreturn void tmpl_fail(tmpl_arena* arena, int line, int col, const char* fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* A growable byte buffer in an arena (outputs, string building). */
typedef struct {
  tmpl_arena* arena;
  char* data;
  size_t len, cap;
  size_t limit; /* 0: unlimited; exceeding it fails with "output limit" */
} tmpl_buf;

void tmpl_buf_init(tmpl_buf* buf, tmpl_arena* arena, size_t limit);
void tmpl_buf_append(tmpl_buf* buf, const char* data, size_t len);
void tmpl_buf_puts(tmpl_buf* buf, const char* s);
void tmpl_buf_putc(tmpl_buf* buf, char c);
void tmpl_buf_printf(tmpl_buf* buf, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
