/* Recording and replay of GPU work (include/mlxc/capture.h). The backend records the stream
 * (backend/gpu.h); this side holds every buffer the recorded kernels use, so that no buffer is
 * freed and its memory reused while a replay may still read or write it. */
#include "core/capture.h"

#include <stdlib.h>
#include <string.h>

#include "backend/gpu.h"
#include "core/device.h"
#include "mlxc/capture.h"
#include "util/error.h"

struct mlxc_capture {
  int device;
  uint64_t id;
  core_buffer** held;
  bool* written;
  size_t n_held, capacity;
  struct gpu_graph* graph;
  unsigned long errors_before; /* util_error_count() when the recording began */
  struct gpu_feed feeds[GPU_FEEDS_MAX]; /* mlxc_capture_feed's copies, made at the end */
  int n_feeds;
  /* mlxc_capture_read: copies into host memory after the feeds, into slot run %
   * MLXC_CAPTURE_READ_SLOTS of the page-locked ring (READ_MAX_BYTES a slot); run counted on the
   * device (counter) and here (runs launched), a fence recorded after each run in its slot's
   * entry of fences, fenced[slot] the run it follows (0: none). */
  struct gpu_read reads[GPU_FEEDS_MAX];
  int n_reads;
  size_t read_bytes;
  unsigned char* ring;
  unsigned int* counter;
  struct gpu_fence* fences[MLXC_CAPTURE_READ_SLOTS];
  uint64_t fenced[MLXC_CAPTURE_READ_SLOTS];
  uint64_t runs;
};

/* The most bytes one feed copies (one GPU thread copies them), and a run reads in all. */
#define FEED_MAX_BYTES 1024
#define READ_MAX_BYTES 256

/* One recording at a time: evaluation is not re-entrant across threads during one either. */
static mlxc_capture* recording;
static uint64_t next_id = 1;

int core_capture_device(void) { return recording ? recording->device : -1; }

int core_capture_hold(core_buffer* b, bool written) {
  mlxc_capture* c = recording;
  if (!c || !b) return 0;
  if (b->capture_id == c->id) {
    if (written) c->written[b->capture_slot] = true;
    return 0;
  }
  if (c->n_held == c->capacity) {
    size_t cap = c->capacity ? 2 * c->capacity : 256;
    core_buffer** held = realloc(c->held, cap * sizeof *held);
    if (held) c->held = held;
    bool* flags = held ? realloc(c->written, cap * sizeof *flags) : NULL;
    if (!flags) return util_error("out of memory while recording GPU work");
    c->written = flags;
    c->capacity = cap;
  }
  b->capture_id = c->id;
  b->capture_slot = c->n_held;
  b->capture_holds++;
  atomic_fetch_add(&b->refs, 1);
  c->held[c->n_held] = b;
  c->written[c->n_held++] = written;
  return 0;
}

static void release_holds(mlxc_capture* c) {
  for (size_t i = 0; i < c->n_held; i++) {
    core_buffer* b = c->held[i];
    b->capture_holds--;
    if (b->capture_id == c->id) b->capture_id = 0;
    core_buffer_release(b);
  }
  free(c->held);
  free(c->written);
  c->held = NULL;
  c->written = NULL;
  c->n_held = c->capacity = 0;
}

/* The GPU of a stream, or -1 with an error. */
static int stream_gpu(mlx_stream s, const char* what) {
  core_stream* stream = core_stream_resolve(s);
  if (!stream) return -1;
  if (stream->device->type != MLX_GPU) {
    util_error("%s: recording needs a GPU stream", what);
    return -1;
  }
  return stream->device->index;
}

int mlxc_capture_begin(mlx_stream s) {
  int device = stream_gpu(s, "mlxc_capture_begin");
  if (device < 0) return 1;
  if (recording) return util_error("mlxc_capture_begin: a recording is already in progress");
  mlxc_capture* c = calloc(1, sizeof *c);
  if (!c) return util_error("out of memory");
  c->device = device;
  c->id = next_id++;
  c->errors_before = util_error_count();
  if (gpu_backend_record_begin(device)) {
    free(c);
    return 1;
  }
  recording = c;
  return 0;
}

/* Launches the recorded work once more (with reads, a fence after it in its run's slot). */
static int launch_run(mlxc_capture* c) {
  if (gpu_backend_graph_launch(c->graph)) return 1;
  c->runs++;
  if (!c->n_reads) return 0;
  const unsigned slot = (unsigned)(c->runs % MLXC_CAPTURE_READ_SLOTS);
  c->fenced[slot] = 0;
  if (!c->fences[slot] && gpu_backend_fence_new(c->device, &c->fences[slot])) return 1;
  if (gpu_backend_fence_record(c->fences[slot])) return 1;
  c->fenced[slot] = c->runs;
  return 0;
}

/* Marks the host copies of the buffers the recorded work writes as stale. */
static void invalidate_written(mlxc_capture* c) {
  for (size_t i = 0; i < c->n_held; i++)
    if (c->written[i] && c->held[i]->device_valid) c->held[i]->host_valid = false;
}

int mlxc_capture_end(mlx_stream s, mlxc_capture** out) {
  if (!out) return util_error("mlxc_capture_end: null argument");
  *out = NULL;
  int device = stream_gpu(s, "mlxc_capture_end");
  if (device < 0) return 1;
  mlxc_capture* c = recording;
  if (!c || c->device != device) return util_error("mlxc_capture_end: no recording in progress on GPU %d", device);
  recording = NULL;
  /* A failure reported while recording (a CPU fallback, a host read, ...) voids it: the graph
   * would miss work. The failing call has already reported why. */
  bool failed = util_error_count() != c->errors_before;
  const struct gpu_host_ring ring = {c->ring, READ_MAX_BYTES, MLXC_CAPTURE_READ_SLOTS, c->counter};
  if (!failed && c->n_feeds + c->n_reads)
    failed = gpu_backend_feed(device, c->feeds, c->n_feeds, c->reads, c->n_reads, ring) != 0;
  int status = gpu_backend_record_end(device, !failed, &c->graph);
  if (failed) status = util_error("mlxc_capture_end: the recording failed (see the previous error)");
  const unsigned int zero = 0; /* the runs' count starts before the first run */
  if (!status && c->n_reads) status = gpu_backend_write(device, c->counter, &zero, sizeof zero);
  if (!status) status = launch_run(c);
  if (status) {
    mlxc_capture_free(c);
    return 1;
  }
  invalidate_written(c);
  *out = c;
  return 0;
}

/* Whether x's memory is its own to overwrite: no other array shares it, and it is not mapped or
 * borrowed. */
static int check_exclusive(const core_array* x, const char* who) {
  core_buffer* b = x->buffer;
  if (core_buffer_users(b) != 1 || atomic_load(&x->refs) != 1)
    return util_error("%s: the array shares its memory with another array", who);
  if (b->release) return util_error("%s: the array's memory is mapped or borrowed (read-only)", who);
  return 0;
}

int mlxc_capture_feed(mlx_array dst, size_t offset, mlx_array src) {
  mlxc_capture* c = recording;
  if (!c) return util_error("mlxc_capture_feed: no recording in progress");
  const core_array* d = core_ctx(dst);
  const core_array* x = core_ctx(src);
  size_t d_off = 0, s_off = 0;
  core_buffer* db = core_array_contiguous_buffer(d, "mlxc_capture_feed", &d_off);
  core_buffer* sb = db ? core_array_contiguous_buffer(x, "mlxc_capture_feed", &s_off) : NULL;
  if (!sb) return 1;
  const size_t nbytes = x->size * core_dtype_size(x->dtype), room = d->size * core_dtype_size(d->dtype);
  if (offset > room || nbytes > room - offset)
    return util_error("mlxc_capture_feed: %zu bytes at byte %zu of an array of %zu bytes", nbytes, offset, room);
  if (nbytes > FEED_MAX_BYTES) return util_error("mlxc_capture_feed: %zu bytes (at most %d)", nbytes, FEED_MAX_BYTES);
  if (!db->device_valid || db->device_index != c->device || !sb->device_valid || sb->device_index != c->device)
    return util_error("mlxc_capture_feed: both arrays must be in the memory of GPU %d, the one being recorded",
                      c->device);
  if (check_exclusive(d, "mlxc_capture_feed")) return 1; /* the destination */
  if (c->n_feeds == GPU_FEEDS_MAX) return util_error("mlxc_capture_feed: at most %d copies a recording", GPU_FEEDS_MAX);
  if (nbytes == 0) return 0;
  if (core_capture_hold(db, true) || core_capture_hold(sb, false)) return 1;
  c->feeds[c->n_feeds++] =
      (struct gpu_feed){(char*)db->device_data + d_off + offset, (const char*)sb->device_data + s_off, nbytes};
  return 0;
}

int mlxc_capture_read(mlx_array src) {
  mlxc_capture* c = recording;
  if (!c) return util_error("mlxc_capture_read: no recording in progress");
  const core_array* x = core_ctx(src);
  size_t s_off = 0;
  core_buffer* sb = core_array_contiguous_buffer(x, "mlxc_capture_read", &s_off);
  if (!sb) return 1;
  const size_t nbytes = x->size * core_dtype_size(x->dtype);
  if (nbytes > READ_MAX_BYTES - c->read_bytes)
    return util_error("mlxc_capture_read: %zu more bytes (at most %d a recording, %zu read already)", nbytes,
                      READ_MAX_BYTES, c->read_bytes);
  if (!sb->device_valid || sb->device_index != c->device)
    return util_error("mlxc_capture_read: the array must be in the memory of GPU %d, the one being recorded",
                      c->device);
  if (c->n_reads == GPU_FEEDS_MAX) return util_error("mlxc_capture_read: at most %d reads a recording", GPU_FEEDS_MAX);
  if (nbytes == 0) return 0;
  if (!c->ring) {
    void* ring = NULL;
    void* counter = NULL;
    if (gpu_backend_host_alloc((size_t)READ_MAX_BYTES * MLXC_CAPTURE_READ_SLOTS, &ring)) return 1;
    if (gpu_backend_alloc(c->device, sizeof(unsigned int), &counter)) {
      gpu_backend_host_free(ring);
      return 1;
    }
    c->ring = ring;
    c->counter = counter;
  }
  if (core_capture_hold(sb, false)) return 1;
  c->reads[c->n_reads++] = (struct gpu_read){(const char*)sb->device_data + s_off, c->read_bytes, nbytes};
  c->read_bytes += nbytes;
  return 0;
}

uint64_t mlxc_capture_runs(const mlxc_capture* c) { return c ? c->runs : 0; }

int mlxc_capture_read_wait(mlxc_capture* c, uint64_t run, const void** data, size_t* nbytes) {
  if (!c || !data || !nbytes) return util_error("mlxc_capture_read_wait: null argument");
  if (!c->n_reads) return util_error("mlxc_capture_read_wait: the recording reads nothing (mlxc_capture_read)");
  if (run == 0 || run > c->runs)
    return util_error("mlxc_capture_read_wait: run %llu has not been launched (%llu so far)", (unsigned long long)run,
                      (unsigned long long)c->runs);
  if (c->runs - run >= MLXC_CAPTURE_READ_SLOTS)
    return util_error("mlxc_capture_read_wait: run %llu's bytes are overwritten (%llu runs launched, %d kept)",
                      (unsigned long long)run, (unsigned long long)c->runs, MLXC_CAPTURE_READ_SLOTS);
  const unsigned slot = (unsigned)(run % MLXC_CAPTURE_READ_SLOTS);
  if (c->fenced[slot] != run) return util_error("mlxc_capture_read_wait: run %llu has no fence (its launch failed)",
                                                (unsigned long long)run);
  if (gpu_backend_fence_wait(c->fences[slot])) return 1;
  *data = c->ring + (size_t)slot * READ_MAX_BYTES;
  *nbytes = c->read_bytes;
  return 0;
}

int mlxc_capture_replay(mlxc_capture* c) {
  if (!c) return util_error("mlxc_capture_replay: null argument");
  if (recording) return util_error("mlxc_capture_replay: a recording is in progress");
  if (launch_run(c)) return 1;
  invalidate_written(c);
  return 0;
}

void mlxc_capture_free(mlxc_capture* c) {
  if (!c) return;
  if (c == recording) recording = NULL;
  /* No run may still write the ring once it is freed: wait for the last one. */
  const unsigned last = (unsigned)(c->runs % MLXC_CAPTURE_READ_SLOTS);
  if (c->runs && c->n_reads && c->fenced[last] == c->runs) gpu_backend_fence_wait(c->fences[last]);
  else if (c->runs && c->n_reads) gpu_backend_synchronize(c->device); /* its fence could not be made */
  for (int i = 0; i < MLXC_CAPTURE_READ_SLOTS; i++) gpu_backend_fence_free(c->fences[i]);
  if (c->counter) gpu_backend_free(c->device, c->counter, sizeof(unsigned int));
  gpu_backend_host_free(c->ring);
  gpu_backend_graph_free(c->graph);
  release_holds(c);
  free(c);
}

core_buffer* core_array_contiguous_buffer(const core_array* x, const char* who, size_t* offset) {
  if (!x) {
    util_error("%s: null argument", who);
    return NULL;
  }
  if (x->node || !x->buffer) {
    util_error("%s: the array is not evaluated", who);
    return NULL;
  }
  if (!x->row_contiguous) {
    util_error("%s: the array is not row-contiguous", who);
    return NULL;
  }
  *offset = (size_t)x->offset * core_dtype_size(x->dtype);
  return x->buffer;
}

int core_array_check_writable(const core_array* x, const char* who) {
  core_buffer* b = x->buffer;
  if (check_exclusive(x, who)) return 1;
  if (recording && b->device_valid && b->device_index == recording->device)
    return util_error("%s: GPU %d is being recorded", who, recording->device);
  return 0;
}

int mlxc_array_write(mlx_array a, const void* data, size_t nbytes) {
  core_array* x = core_ctx(a);
  if (x && !data && nbytes) return util_error("mlxc_array_write: null argument");
  size_t offset = 0;
  core_buffer* b = core_array_contiguous_buffer(x, "mlxc_array_write", &offset);
  if (!b) return 1;
  size_t expected = x->size * core_dtype_size(x->dtype);
  if (nbytes != expected)
    return util_error("mlxc_array_write: %zu bytes for an array of %zu bytes", nbytes, expected);
  if (core_array_check_writable(x, "mlxc_array_write")) return 1;
  if (b->device_valid && gpu_backend_write(b->device_index, (char*)b->device_data + offset, data, nbytes)) return 1;
  if (b->host_valid && b->data) memcpy((char*)b->data + offset, data, nbytes);
  return 0;
}
