/* mlx-c IO streams: readers and writers backed by user callbacks, for loading and saving arrays
 * (io.h) from anything that is not a plain file (memory, sockets, archives).
 *
 *   static void my_read_at(void* desc, char* data, size_t n, size_t off) { ... }
 *   mlx_io_vtable vt = {.good = my_good, .read_at_offset = my_read_at, .label = my_label,
 *                       .free = my_free};
 *   mlx_io_reader r = mlx_io_reader_new(my_state, vt);
 *   mlx_load_reader(&arr, r, s);
 *   mlx_io_reader_free(r);              // calls vt.free(my_state) when vt.free is set
 *
 * Callbacks that a reader uses: read_at_offset (or seek + read), good (checked after every read:
 * return false after a short read), seek/tell (optional: used to learn the stream's size so that
 * lengths in a file header are checked before anything is allocated), label (in messages).
 * A writer uses write and good (checked after every write), is_open (optional) and label.
 * Offsets are absolute: a stream holds one file, starting at offset 0. */
#ifndef MLX_C_IO_TYPES_H
#define MLX_C_IO_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mlx/c/array.h"
#include "mlx/c/string.h"
#include "mlx/c/vector.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mlx_io_reader_ {
  void* ctx;
} mlx_io_reader;

typedef struct mlx_io_writer_ {
  void* ctx;
} mlx_io_writer;

/* Callbacks on a user descriptor; any may be NULL where the notes above allow it. */
typedef struct mlx_io_vtable_ {
  bool (*is_open)(void*);
  bool (*good)(void*);
  size_t (*tell)(void*);
  void (*seek)(void*, int64_t off, int whence);
  void (*read)(void*, char* data, size_t n);
  void (*read_at_offset)(void*, char* data, size_t n, size_t off);
  void (*write)(void*, const char* data, size_t n);
  const char* (*label)(void*);
  void (*free)(void*);
} mlx_io_vtable;

/* The contents of a GGUF file (io.h: mlx_load_gguf, mlx_save_gguf): named tensors and named
 * metadata values (an array, a string or a vector of strings), each in insertion order. */
typedef struct mlx_io_gguf_ {
  void* ctx;
} mlx_io_gguf;

/* A reader over `desc`; the reader owns `desc` when vtable.free is set (called by _free).
 * Returns an empty handle ({NULL}) when out of memory. */
mlx_io_reader mlx_io_reader_new(void* desc, mlx_io_vtable vtable);
/* The user descriptor given to _new (still owned by the reader). */
int mlx_io_reader_descriptor(void** desc_, mlx_io_reader io);
/* The reader's label (vtable.label), copied into *str_. */
int mlx_io_reader_tostring(mlx_string* str_, mlx_io_reader io);
int mlx_io_reader_free(mlx_io_reader io);

/* A writer over `desc`, with the same ownership rules as a reader. */
mlx_io_writer mlx_io_writer_new(void* desc, mlx_io_vtable vtable);
int mlx_io_writer_descriptor(void** desc_, mlx_io_writer io);
int mlx_io_writer_tostring(mlx_string* str_, mlx_io_writer io);
int mlx_io_writer_free(mlx_io_writer io);

/* An empty GGUF object ({NULL} when out of memory); release it with mlx_io_gguf_free. */
mlx_io_gguf mlx_io_gguf_new(void);
int mlx_io_gguf_free(mlx_io_gguf io);
/* The tensor names, in order (replaces *keys). */
int mlx_io_gguf_get_keys(mlx_vector_string* keys, mlx_io_gguf io);
/* The tensor `key`; returns 2 when there is none. */
int mlx_io_gguf_get_array(mlx_array* arr, mlx_io_gguf io, const char* key);
/* Metadata getters: return 2 when `key` is missing and 3 when it holds another kind of value
 * (mlx-c's codes), with a message. */
int mlx_io_gguf_get_metadata_array(mlx_array* arr, mlx_io_gguf io, const char* key);
int mlx_io_gguf_get_metadata_string(mlx_string* str, mlx_io_gguf io, const char* key);
int mlx_io_gguf_get_metadata_vector_string(mlx_vector_string* vstr, mlx_io_gguf io, const char* key);
/* *flag: whether `key` holds that kind of value. As in mlx-c, a missing key returns 2 (with
 * *flag false and no message). */
int mlx_io_gguf_has_metadata_array(bool* flag, mlx_io_gguf io, const char* key);
int mlx_io_gguf_has_metadata_string(bool* flag, mlx_io_gguf io, const char* key);
int mlx_io_gguf_has_metadata_vector_string(bool* flag, mlx_io_gguf io, const char* key);
/* Setters copy keys and strings and retain arrays; setting an existing key replaces its value
 * (mlx-c keeps the old one). */
int mlx_io_gguf_set_array(mlx_io_gguf io, const char* key, const mlx_array arr);
int mlx_io_gguf_set_metadata_array(mlx_io_gguf io, const char* key, const mlx_array marr);
int mlx_io_gguf_set_metadata_string(mlx_io_gguf io, const char* key, const char* mstr);
int mlx_io_gguf_set_metadata_vector_string(mlx_io_gguf io, const char* key,
                                           const mlx_vector_string mvstr);

#ifdef __cplusplus
}
#endif

#endif
