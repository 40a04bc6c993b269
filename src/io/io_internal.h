/* Shared by the .npy and safetensors code: byte sources (a memory-mapped file or a user reader),
 * byte sinks (a file replaced atomically, or a user writer) and array byte helpers.
 * Every function reports its failures itself, prefixed by `who` (the public function's name). */
#ifndef MLXC_IO_INTERNAL_H
#define MLXC_IO_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/array.h"
#include "mlx/c/io_types.h"

#define IO_SIZE_UNKNOWN UINT64_MAX

/* What an mlx_io_reader / mlx_io_writer handle points to. */
typedef struct {
  void* desc;
  mlx_io_vtable vtable;
} io_stream;

/* A refcounted private mapping of a whole file (copy-on-write, so writes never reach the file). */
typedef struct io_mapping io_mapping;

typedef struct {
  const char* who;          /* public function, for messages */
  const char* label;        /* file name or reader label, for messages */
  uint64_t size;            /* bytes in the source, or IO_SIZE_UNKNOWN */
  io_mapping* mapping;      /* files only */
  const unsigned char* data;/* files only: the mapped bytes */
  io_stream* stream;        /* readers only */
} io_source;

int io_source_open_file(io_source* src, const char* path, const char* who);
int io_source_open_reader(io_source* src, mlx_io_reader reader, const char* who);
/* Drops the source's hold on its mapping (arrays that view the mapping keep it alive). */
void io_source_close(io_source* src);

/* Copies n bytes at absolute `offset`; a clear "truncated" error when they are not all there. */
int io_source_read(io_source* src, void* dst, size_t n, uint64_t offset);

/* A new evaluated row-major array of `shape` and `dtype` whose bytes start at `offset` (the
 * caller has checked that they lie inside the source when its size is known). It views the
 * mapping when the source is a mapped file, `copy` is false and the address is aligned for the
 * dtype; otherwise it owns a copy. Returns NULL on failure (reported). */
core_array* io_source_array(io_source* src, uint64_t offset, const int* shape, int ndim,
                            mlx_dtype dtype, bool copy);

typedef struct {
  const char* who;
  const char* label;        /* final file name or writer label */
  int fd;                   /* temporary file, or -1 for a writer */
  char* tmp_path;           /* "<file>.tmp.XXXXXX" */
  io_stream* stream;        /* writers only */
} io_sink;

/* Opens a temporary file beside `path`; io_sink_finish renames it over `path`. */
int io_sink_open_file(io_sink* sink, const char* path, const char* who);
int io_sink_open_writer(io_sink* sink, mlx_io_writer writer, const char* who);
int io_sink_write(io_sink* sink, const void* data, size_t n);
/* Ends a save: when `status` is 0 the file is synced and renamed into place, otherwise the
 * temporary file is removed. Returns the final status. */
int io_sink_finish(io_sink* sink, int status);

/* `file` with `suffix` appended unless it already ends with it (caller frees); NULL when out of
 * memory (reported). */
char* io_path_with_suffix(const char* file, const char* suffix);

/* The row-major bytes of an evaluated array: its own storage when row-contiguous, else a copy
 * made in *scratch (caller frees *scratch). Sets *scratch to NULL when no copy was needed;
 * returns NULL for empty arrays or (reported) when out of memory. */
const void* io_array_bytes(const core_array* a, void** scratch, bool* failed);

/* Product of dims as an element count; false on a negative dim or overflow past `limit`. */
bool io_checked_count(const int64_t* dims, int ndim, uint64_t limit, uint64_t* count);

#endif
