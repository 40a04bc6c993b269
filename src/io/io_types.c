/* mlx-c io_types.h: readers and writers are a user descriptor plus a vtable of callbacks. */
#include <stdlib.h>

#include "io/io_internal.h"
#include "mlx/c/io_types.h"
#include "util/error.h"

static io_stream* stream_new(void* desc, mlx_io_vtable vtable, const char* who) {
  io_stream* s = malloc(sizeof *s);
  if (!s) {
    util_error("%s: out of memory", who);
    return NULL;
  }
  s->desc = desc;
  s->vtable = vtable;
  return s;
}

static void stream_free(io_stream* s) {
  if (s && s->vtable.free) s->vtable.free(s->desc);
  free(s);
}

static int stream_descriptor(void** desc, io_stream* s, const char* who) {
  if (!desc) return util_error("%s: null output", who);
  if (!s) return util_error("%s: empty handle", who);
  *desc = s->desc;
  return 0;
}

static int stream_tostring(mlx_string* str, io_stream* s, const char* fallback, const char* who) {
  if (!str) return util_error("%s: null output", who);
  if (!s) return util_error("%s: empty handle", who);
  const char* label = s->vtable.label ? s->vtable.label(s->desc) : NULL;
  mlx_string fresh = mlx_string_new_data(label ? label : fallback);
  if (!fresh.ctx) return 1;
  mlx_string_free(*str);
  *str = fresh;
  return 0;
}

mlx_io_reader mlx_io_reader_new(void* desc, mlx_io_vtable vtable) {
  return (mlx_io_reader){stream_new(desc, vtable, "mlx_io_reader_new")};
}

int mlx_io_reader_descriptor(void** desc_, mlx_io_reader io) {
  return stream_descriptor(desc_, io.ctx, "mlx_io_reader_descriptor");
}

int mlx_io_reader_tostring(mlx_string* str_, mlx_io_reader io) {
  return stream_tostring(str_, io.ctx, "reader", "mlx_io_reader_tostring");
}

int mlx_io_reader_free(mlx_io_reader io) {
  stream_free(io.ctx);
  return 0;
}

mlx_io_writer mlx_io_writer_new(void* desc, mlx_io_vtable vtable) {
  return (mlx_io_writer){stream_new(desc, vtable, "mlx_io_writer_new")};
}

int mlx_io_writer_descriptor(void** desc_, mlx_io_writer io) {
  return stream_descriptor(desc_, io.ctx, "mlx_io_writer_descriptor");
}

int mlx_io_writer_tostring(mlx_string* str_, mlx_io_writer io) {
  return stream_tostring(str_, io.ctx, "writer", "mlx_io_writer_tostring");
}

int mlx_io_writer_free(mlx_io_writer io) {
  stream_free(io.ctx);
  return 0;
}
