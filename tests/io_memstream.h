/* An in-memory byte stream behind the mlx_io_vtable callbacks, for the IO tests and fuzzers.
 * Reads past the end, seeks out of range and writes to a read-only stream set `failed`, which
 * good() reports, as a file stream would. */
#ifndef MLXC_TEST_IO_MEMSTREAM_H
#define MLXC_TEST_IO_MEMSTREAM_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlx/c/io_types.h"

typedef struct {
  unsigned char* data;
  size_t size, capacity, pos;
  bool failed;
  bool read_only;
  size_t fail_after;   /* writes fail once the stream would grow past this (0: never) */
  int frees;           /* times the free callback ran */
} memstream;

static inline bool mem_is_open(void* d) { return d != NULL; }
static inline bool mem_good(void* d) { return !((memstream*)d)->failed; }
static inline size_t mem_tell(void* d) { return ((memstream*)d)->pos; }

static inline void mem_seek(void* d, int64_t off, int whence) {
  memstream* m = d;
  int64_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? (int64_t)m->pos : (int64_t)m->size;
  if (base + off < 0 || base + off > (int64_t)m->size)
    m->failed = true;
  else
    m->pos = (size_t)(base + off);
}

static inline void mem_read_at(void* d, char* data, size_t n, size_t off) {
  memstream* m = d;
  if (off > m->size || n > m->size - off) {
    m->failed = true;
    return;
  }
  memcpy(data, m->data + off, n);
  m->pos = off + n;
}

static inline void mem_read(void* d, char* data, size_t n) { mem_read_at(d, data, n, ((memstream*)d)->pos); }

static inline void mem_write(void* d, const char* data, size_t n) {
  memstream* m = d;
  if (m->read_only || (m->fail_after && m->pos + n > m->fail_after)) {
    m->failed = true;
    return;
  }
  if (m->pos + n > m->capacity) {
    size_t cap = (m->pos + n) * 2;
    unsigned char* grown = realloc(m->data, cap);
    if (!grown) {
      m->failed = true;
      return;
    }
    m->data = grown;
    m->capacity = cap;
  }
  memcpy(m->data + m->pos, data, n);
  m->pos += n;
  if (m->pos > m->size) m->size = m->pos;
}

static inline const char* mem_label(void* d) { return "memory stream"; }
static inline void mem_free(void* d) { ((memstream*)d)->frees++; }

static inline mlx_io_vtable memstream_vtable(void) {
  return (mlx_io_vtable){mem_is_open, mem_good, mem_tell, mem_seek, mem_read,
                         mem_read_at, mem_write, mem_label, mem_free};
}

/* A read-only stream over `size` bytes (not copied). */
static inline memstream memstream_over(const void* data, size_t size) {
  return (memstream){.data = (unsigned char*)data, .size = size, .capacity = size, .read_only = true};
}

#endif
