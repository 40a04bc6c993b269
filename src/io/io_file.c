/* File and stream plumbing for src/io: memory-mapped sources, user-reader sources, atomic file
 * sinks and user-writer sinks. */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend/cpu/copy.h"
#include "io/io_internal.h"
#include "util/error.h"

struct io_mapping {
  atomic_int refs;
  void* base;
  size_t length;
};

static void mapping_release(io_mapping* m) {
  if (!m || atomic_fetch_sub(&m->refs, 1) != 1) return;
  if (m->length) munmap(m->base, m->length);
  free(m);
}

/* core_buffer release for arrays that view a mapping: the mapping outlives them all. The whole
 * pages of the released tensor go back to the system (MADV_DONTNEED; the mapping is private and
 * never written, so a later read of them faults the file's bytes in again): a tensor copied at
 * load (linears stacked by lm/fuse.c) no longer counts in the process's memory. */
static void release_mapped_buffer(core_buffer* b) {
  const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
  const uintptr_t start = ((uintptr_t)b->data + page - 1) & ~(page - 1);
  const uintptr_t end = ((uintptr_t)b->data + b->nbytes) & ~(page - 1);
  if (end > start) madvise((void*)start, end - start, MADV_DONTNEED);
  mapping_release(b->owner);
}

static const char* stream_label(io_stream* s, const char* fallback) {
  const char* label = s->vtable.label ? s->vtable.label(s->desc) : NULL;
  return label ? label : fallback;
}

/* ---- sources ---- */

int io_source_open_file(io_source* src, const char* path, const char* who) {
  *src = (io_source){.who = who, .label = path ? path : "(null)"};
  if (!path) return util_error("%s: null file name", who);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return util_error("%s: cannot open %s: %s", who, path, strerror(errno));
  struct stat st;
  int status = 0;
  if (fstat(fd, &st) != 0) {
    status = util_error("%s: cannot stat %s: %s", who, path, strerror(errno));
    goto cleanup;
  }
  REQUIRE(S_ISREG(st.st_mode), "%s: %s is not a regular file", who, path);
  io_mapping* m = calloc(1, sizeof *m);
  REQUIRE(m, "%s: out of memory", who);
  atomic_init(&m->refs, 1);
  m->length = (size_t)st.st_size;
  if (m->length) {
    /* Private and writable: a kernel that reuses an input buffer gets copy-on-write pages
     * instead of a fault, and the file is never modified. */
    m->base = mmap(NULL, m->length, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (m->base == MAP_FAILED) {
      free(m);
      status = util_error("%s: cannot map %s: %s", who, path, strerror(errno));
      goto cleanup;
    }
  }
  src->mapping = m;
  src->data = m->base;
  src->size = m->length;
cleanup:
  close(fd);
  return status;
}

/* The stream's size from seek/tell, or IO_SIZE_UNKNOWN when it cannot say. */
static uint64_t stream_size(io_stream* s) {
  mlx_io_vtable* vt = &s->vtable;
  if (!vt->seek || !vt->tell) return IO_SIZE_UNKNOWN;
  vt->seek(s->desc, 0, SEEK_END);
  size_t size = vt->tell(s->desc);
  vt->seek(s->desc, 0, SEEK_SET);
  if (!vt->good(s->desc) || size == (size_t)-1) return IO_SIZE_UNKNOWN;
  return size;
}

int io_source_open_reader(io_source* src, mlx_io_reader reader, const char* who) {
  *src = (io_source){.who = who, .label = "reader", .size = IO_SIZE_UNKNOWN};
  io_stream* s = reader.ctx;
  if (!s) return util_error("%s: empty reader (not created with mlx_io_reader_new)", who);
  src->stream = s;
  src->label = stream_label(s, "reader");
  mlx_io_vtable* vt = &s->vtable;
  if (!vt->good) return util_error("%s: %s: the reader has no good() callback", who, src->label);
  if (!vt->read_at_offset && !(vt->seek && vt->read))
    return util_error("%s: %s: the reader needs read_at_offset() or seek() and read()", who,
                      src->label);
  if ((vt->is_open && !vt->is_open(s->desc)) || !vt->good(s->desc))
    return util_error("%s: failed to open %s", who, src->label);
  src->size = stream_size(s);
  return 0;
}

void io_source_close(io_source* src) {
  mapping_release(src->mapping);
  src->mapping = NULL;
  src->data = NULL;
}

int io_source_read(io_source* src, void* dst, size_t n, uint64_t offset) {
  if (n == 0) return 0;
  if (src->size != IO_SIZE_UNKNOWN && (offset > src->size || n > src->size - offset))
    return util_error("%s: %s is truncated: needs bytes [%llu, %llu) but has %llu", src->who,
                      src->label, (unsigned long long)offset, (unsigned long long)(offset + n),
                      (unsigned long long)src->size);
  if (src->data) {
    memcpy(dst, src->data + offset, n);
    return 0;
  }
  io_stream* s = src->stream;
  if (s->vtable.read_at_offset) {
    s->vtable.read_at_offset(s->desc, dst, n, (size_t)offset);
  } else {
    s->vtable.seek(s->desc, (int64_t)offset, SEEK_SET);
    s->vtable.read(s->desc, dst, n);
  }
  if (!s->vtable.good(s->desc))
    return util_error("%s: %s: reading %zu bytes at offset %llu failed (truncated stream?)",
                      src->who, src->label, n, (unsigned long long)offset);
  return 0;
}

core_array* io_source_array(io_source* src, uint64_t offset, const int* shape, int ndim,
                            mlx_dtype dtype, bool copy) {
  core_array* a = core_array_create(shape, ndim, dtype);
  if (!a) return NULL;
  size_t item = core_dtype_size(dtype);
  size_t nbytes = a->size * item;
  size_t align = item < 8 ? item : 8;
  const unsigned char* at = src->data ? src->data + offset : NULL;
  if (at && !copy && nbytes && (uintptr_t)at % align == 0) {
    atomic_fetch_add(&src->mapping->refs, 1);
    a->buffer = core_buffer_wrap((void*)at, nbytes, release_mapped_buffer, src->mapping, NULL);
    if (!a->buffer) {
      mapping_release(src->mapping);
      core_array_release(a);
      return NULL;
    }
  } else if (core_array_alloc_contiguous(a) || io_source_read(src, a->buffer->data, nbytes, offset)) {
    core_array_release(a);
    return NULL;
  }
  a->evaluated = true;
  return a;
}

/* ---- sinks ---- */

/* The process umask, read without changing it (umask(2) would race with other threads). */
static mode_t current_umask(void) {
  mode_t mask = 022;
  FILE* f = fopen("/proc/self/status", "re");
  if (!f) return mask;
  char line[256];
  unsigned int value;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "Umask: %o", &value) == 1) {
      mask = (mode_t)value;
      break;
    }
  fclose(f);
  return mask;
}

int io_sink_open_file(io_sink* sink, const char* path, const char* who) {
  *sink = (io_sink){.who = who, .label = path, .fd = -1};
  if (!path || !*path) return util_error("%s: empty file name", who);
  size_t len = strlen(path);
  sink->tmp_path = malloc(len + sizeof ".tmp.XXXXXX");
  if (!sink->tmp_path) return util_error("%s: out of memory", who);
  memcpy(sink->tmp_path, path, len);
  memcpy(sink->tmp_path + len, ".tmp.XXXXXX", sizeof ".tmp.XXXXXX");
  sink->fd = mkostemp(sink->tmp_path, O_CLOEXEC);
  if (sink->fd < 0) {
    int err = errno;
    free(sink->tmp_path);
    sink->tmp_path = NULL;
    return util_error("%s: cannot create %s: %s", who, path, strerror(err));
  }
  /* mkostemp creates 0600; a saved file gets the usual permissions. */
  fchmod(sink->fd, 0666 & ~current_umask());
  return 0;
}

int io_sink_open_writer(io_sink* sink, mlx_io_writer writer, const char* who) {
  *sink = (io_sink){.who = who, .label = "writer", .fd = -1};
  io_stream* s = writer.ctx;
  if (!s) return util_error("%s: empty writer (not created with mlx_io_writer_new)", who);
  sink->stream = s;
  sink->label = stream_label(s, "writer");
  if (!s->vtable.write || !s->vtable.good)
    return util_error("%s: %s: the writer needs write() and good() callbacks", who, sink->label);
  if ((s->vtable.is_open && !s->vtable.is_open(s->desc)) || !s->vtable.good(s->desc))
    return util_error("%s: failed to open %s", who, sink->label);
  return 0;
}

int io_sink_write(io_sink* sink, const void* data, size_t n) {
  if (sink->stream) {
    io_stream* s = sink->stream;
    if (n) s->vtable.write(s->desc, data, n);
    if (!s->vtable.good(s->desc)) return util_error("%s: writing to %s failed", sink->who, sink->label);
    return 0;
  }
  const char* p = data;
  while (n) {
    ssize_t w = write(sink->fd, p, n < ((size_t)1 << 30) ? n : ((size_t)1 << 30));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0)
      return util_error("%s: writing %s failed: %s", sink->who, sink->label,
                        w < 0 ? strerror(errno) : "no progress");
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

int io_sink_finish(io_sink* sink, int status) {
  if (sink->fd < 0) return status;
  if (!status && fsync(sink->fd) != 0)
    status = util_error("%s: syncing %s failed: %s", sink->who, sink->label, strerror(errno));
  if (close(sink->fd) != 0 && !status)
    status = util_error("%s: closing %s failed: %s", sink->who, sink->label, strerror(errno));
  sink->fd = -1;
  if (!status && rename(sink->tmp_path, sink->label) != 0)
    status = util_error("%s: cannot replace %s: %s", sink->who, sink->label, strerror(errno));
  if (status) unlink(sink->tmp_path);
  free(sink->tmp_path);
  sink->tmp_path = NULL;
  return status;
}

/* ---- helpers ---- */

char* io_path_with_suffix(const char* file, const char* suffix) {
  size_t n = strlen(file), k = strlen(suffix);
  bool has = n >= k && !strcmp(file + n - k, suffix);
  char* path = malloc(n + (has ? 0 : k) + 1);
  if (!path) {
    util_error("out of memory");
    return NULL;
  }
  memcpy(path, file, n);
  memcpy(path + n, has ? "" : suffix, (has ? 0 : k) + 1);
  return path;
}

const void* io_array_bytes(const core_array* a, void** scratch, bool* failed) {
  *scratch = NULL;
  *failed = false;
  if (a->size == 0) return NULL;
  if (a->row_contiguous) return core_array_ptr(a);
  size_t item = core_dtype_size(a->dtype);
  *scratch = malloc(a->size * item);
  if (!*scratch) {
    *failed = util_error("out of memory copying a %zu-element array", a->size);
    return NULL;
  }
  cpu_copy_strided(*scratch, core_array_ptr(a), a->shape, a->strides, a->ndim, item);
  return *scratch;
}

bool io_checked_count(const int64_t* dims, int ndim, uint64_t limit, uint64_t* count) {
  uint64_t n = 1;
  for (int i = 0; i < ndim; i++) {
    if (dims[i] < 0) return false;
    if (dims[i] && n > limit / (uint64_t)dims[i]) return false;
    n *= (uint64_t)dims[i];
  }
  *count = n;
  return true;
}
