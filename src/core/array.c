/* Array and buffer lifetime: creation, reference counting, views and storage. Releasing is
 * iterative so that dropping a long unevaluated chain cannot overflow the stack. */
#include "core/array.h"

#include <stdlib.h>
#include <string.h>

#include "backend/gpu.h"
#include "core/allocator.h"
#include "core/capture.h"
#include "core/graph.h"
#include "util/error.h"

/* ---- buffers ---- */

core_buffer* core_buffer_alloc(size_t nbytes) {
  core_buffer* b = calloc(1, sizeof *b); /* every field zero, the recording marks included */
  if (!b) {
    util_error("out of memory");
    return NULL;
  }
  b->data = core_alloc(nbytes);
  if (!b->data) {
    free(b);
    return NULL;
  }
  atomic_init(&b->refs, 1);
  b->nbytes = nbytes;
  b->release = NULL;
  b->owner = NULL;
  b->owner_dtor = NULL;
  b->device_data = NULL;
  b->device_index = 0;
  b->host_valid = true;
  b->device_valid = false;
  return b;
}

core_buffer* core_buffer_alloc_device(size_t nbytes, int device) {
  core_buffer* b = calloc(1, sizeof *b);
  if (!b) {
    util_error("out of memory");
    return NULL;
  }
  atomic_init(&b->refs, 1);
  b->nbytes = nbytes;
  b->device_index = device;
  if (gpu_backend_alloc(device, nbytes, &b->device_data)) {
    free(b);
    return NULL;
  }
  b->device_valid = true;
  return b;
}

void* core_buffer_host_slow(core_buffer* b) {
  return gpu_backend_to_host(b) ? NULL : b->data;
}

core_buffer* core_buffer_wrap(void* data, size_t nbytes, void (*release)(core_buffer*), void* owner,
                              void (*owner_dtor)(void*)) {
  core_buffer* b = calloc(1, sizeof *b);
  if (!b) {
    util_error("out of memory");
    return NULL;
  }
  atomic_init(&b->refs, 1);
  b->data = data;
  b->nbytes = nbytes;
  b->release = release;
  b->owner = owner;
  b->owner_dtor = owner_dtor;
  b->device_data = NULL;
  b->device_index = 0;
  b->host_valid = true;
  b->device_valid = false;
  return b;
}

void core_buffer_release(core_buffer* b) {
  if (!b || atomic_fetch_sub(&b->refs, 1) != 1) return;
  if (b->device_data) gpu_backend_free(b->device_index, b->device_data, b->nbytes);
  if (b->release)
    b->release(b);
  else
    core_free(b->data);
  free(b);
}

/* ---- arrays ---- */

void core_row_strides(const int* shape, int ndim, int64_t* strides) {
  int64_t s = 1;
  for (int i = ndim - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i] > 0 ? shape[i] : 1;
  }
}

void core_array_update_flags(core_array* a) {
  int64_t expected = 1;
  a->row_contiguous = true;
  for (int i = a->ndim - 1; i >= 0; i--) {
    if (a->shape[i] == 1) continue;
    if (a->strides[i] != expected) {
      a->row_contiguous = a->size == 0;
      return;
    }
    expected *= a->shape[i];
  }
}

core_array* core_array_create(const int* shape, int ndim, mlx_dtype dtype) {
  if (ndim < 0 || ndim > CORE_MAX_NDIM) {
    util_error("arrays have at most %d dimensions (got %d)", CORE_MAX_NDIM, ndim);
    return NULL;
  }
  if (!core_dtype_valid(dtype)) {
    util_error("invalid dtype %d", (int)dtype);
    return NULL;
  }
  size_t size = 1;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] < 0) {
      util_error("negative dimension %d in shape", shape[i]);
      return NULL;
    }
    if (shape[i] && size > (SIZE_MAX / 16) / (size_t)shape[i]) {
      util_error("shape is too large");
      return NULL;
    }
    size *= (size_t)shape[i];
  }
  core_array* a = calloc(1, sizeof *a);
  if (!a) {
    util_error("out of memory");
    return NULL;
  }
  if (ndim > 6) {
    a->shape = malloc(sizeof(int) * (size_t)ndim);
    a->strides = malloc(sizeof(int64_t) * (size_t)ndim);
    if (!a->shape || !a->strides) {
      free(a->shape);
      free(a->strides);
      free(a);
      util_error("out of memory");
      return NULL;
    }
  } else {
    a->shape = a->shape_inline;
    a->strides = a->strides_inline;
  }
  atomic_init(&a->refs, 1);
  a->dtype = dtype;
  a->ndim = ndim;
  if (ndim) memcpy(a->shape, shape, sizeof(int) * (size_t)ndim);
  core_row_strides(a->shape, ndim, a->strides);
  a->size = size;
  a->row_contiguous = true;
  return a;
}

void core_array_retain(core_array* a) {
  if (a) atomic_fetch_add(&a->refs, 1);
}

/* A worklist of arrays whose last reference is gone. */
typedef struct {
  core_array** items;
  size_t count, capacity;
  core_array* inline_items[32];
} release_list;

static void release_push(release_list* list, core_array* a) {
  if (list->count == list->capacity) {
    size_t cap = list->capacity * 2;
    core_array** items = list->items == list->inline_items ? malloc(cap * sizeof *items)
                                                           : realloc(list->items, cap * sizeof *items);
    if (!items) return; /* cannot grow: leak rather than crash (only under exhausted memory) */
    if (list->items == list->inline_items) memcpy(items, list->inline_items, sizeof list->inline_items);
    list->items = items;
    list->capacity = cap;
  }
  list->items[list->count++] = a;
}

void core_array_free_memory(core_array* a) {
  core_buffer_release(a->buffer);
  if (a->shape != a->shape_inline) {
    free(a->shape);
    free(a->strides);
  }
  free(a);
}

/* Frees `a`, whose last reference is gone. A pending output whose node still has live siblings
 * stays allocated as a zombie (the node frees it), since the node's kernel writes all outputs. */
static void destroy_one(core_array* a, release_list* list) {
  core_node* node = a->node;
  if (node) {
    if (atomic_fetch_sub(&node->refs, 1) != 1) {
      core_buffer_release(a->buffer);
      a->buffer = NULL;
      return;
    }
    for (int i = 0; i < node->n_inputs; i++) {
      core_array* in = node->inputs[i];
      if (in && atomic_fetch_sub(&in->refs, 1) == 1) release_push(list, in);
    }
    core_node_destroy(node, a);
  }
  core_array_free_memory(a);
}

void core_array_release(core_array* a) {
  if (!a || atomic_fetch_sub(&a->refs, 1) != 1) return;
  release_list list = {.items = NULL, .count = 0, .capacity = 32};
  list.items = list.inline_items;
  destroy_one(a, &list);
  while (list.count > 0) destroy_one(list.items[--list.count], &list);
  if (list.items != list.inline_items) free(list.items);
}

int core_array_alloc_contiguous(core_array* a) {
  core_buffer_release(a->buffer);
  a->buffer = core_buffer_alloc(a->size * core_dtype_size(a->dtype));
  if (!a->buffer) return 1;
  a->offset = 0;
  core_row_strides(a->shape, a->ndim, a->strides);
  a->row_contiguous = true;
  return 0;
}

void core_array_set_view(core_array* out, const core_array* in, const int64_t* strides,
                         int64_t offset) {
  core_buffer_release(out->buffer);
  out->buffer = in->buffer;
  if (out->buffer) atomic_fetch_add(&out->buffer->refs, 1);
  out->offset = offset;
  if (out->ndim) memcpy(out->strides, strides, sizeof(int64_t) * (size_t)out->ndim);
  core_array_update_flags(out);
}

bool core_array_donate(core_array* in, core_array* out, int device) {
  core_buffer* b = in->buffer;
  size_t bytes = out->size * core_dtype_size(out->dtype);
  if (!b || in->node || atomic_load(&in->refs) != 1 || core_buffer_users(b) != 1 || in->offset != 0 ||
      !in->row_contiguous || in->dtype != out->dtype || in->size != out->size || b->nbytes != bytes || bytes == 0)
    return false;
  if (device < 0) {
    if (!b->host_valid || !b->data || b->release) return false; /* mapped or borrowed memory stays read-only */
    b->device_valid = false;
  } else {
    if (!b->device_valid || b->device_index != device) return false;
    if (core_capture_device() == device && core_capture_hold(b, true)) return false;
    b->host_valid = false;
  }
  core_buffer_release(out->buffer);
  out->buffer = b;
  atomic_fetch_add(&b->refs, 1);
  out->offset = 0;
  core_row_strides(out->shape, out->ndim, out->strides);
  out->row_contiguous = true;
  return true;
}

void core_assign(mlx_array* res, core_array* result) {
  core_array* old = core_ctx(*res);
  res->ctx = result;
  core_array_release(old);
}
