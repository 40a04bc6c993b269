/* Transfers for pipelined loops (include/mlxc/capture.h): an array's data copied into another's
 * on the device, and reads into host memory that the host waits for later. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "backend/gpu.h"
#include "core/array.h"
#include "core/capture.h"
#include "mlxc/capture.h"
#include "util/error.h"

int mlxc_array_copy(mlx_array dst, mlx_array src) {
  const core_array* s = core_ctx(src);
  const core_array* d = core_ctx(dst);
  size_t s_off = 0, d_off = 0;
  core_buffer* sb = core_array_contiguous_buffer(s, "mlxc_array_copy", &s_off);
  if (!sb || !core_array_contiguous_buffer(d, "mlxc_array_copy", &d_off)) return 1;
  size_t nbytes = s->size * core_dtype_size(s->dtype);
  if (nbytes != d->size * core_dtype_size(d->dtype))
    return util_error("mlxc_array_copy: %zu bytes into an array of %zu bytes", nbytes,
                      d->size * core_dtype_size(d->dtype));
  core_buffer* db = d->buffer;
  if (db == sb && d_off == s_off) return 0; /* the array itself */
  if (db == sb) return util_error("mlxc_array_copy: the array shares its memory with another array");
  if (nbytes == 0) return 0;
  if (db->device_valid && sb->device_valid && db->device_index == sb->device_index) {
    if (core_array_check_writable(d, "mlxc_array_copy") ||
        gpu_backend_copy_async(db->device_index, (char*)db->device_data + d_off, (const char*)sb->device_data + s_off,
                               nbytes))
      return 1;
    db->host_valid = false; /* the host copy, if any, is stale: made again on the next host read */
    return 0;
  }
  const void* data = core_array_ptr(s); /* waits for a GPU array's producers */
  if (!data) return 1;
  return mlxc_array_write(dst, data, nbytes);
}

struct mlxc_readback {
  unsigned char* data;
  size_t capacity, used;
  bool page_locked;
  int device; /* the GPU of the copies, -1 before the first */
  struct gpu_fence* fence;
  bool pending; /* copies added since the last wait */
};

int mlxc_readback_new(mlxc_readback** out, size_t capacity) {
  if (!out) return util_error("mlxc_readback_new: null argument");
  *out = NULL;
  mlxc_readback* r = calloc(1, sizeof *r);
  if (!r) return util_error("out of memory");
  r->capacity = capacity;
  r->device = -1;
  void* p = NULL;
  /* Page-locked memory lets the copies run asynchronously; without a GPU, plain memory. */
  if (gpu_backend_device_count() > 0 && !gpu_backend_host_alloc(capacity, &p)) r->page_locked = true;
  else if (!(p = malloc(capacity ? capacity : 1))) {
    free(r);
    return util_error("out of memory");
  }
  r->data = p;
  *out = r;
  return 0;
}

int mlxc_readback_add(mlxc_readback* r, mlx_array a) {
  if (!r) return util_error("mlxc_readback_add: null argument");
  const core_array* x = core_ctx(a);
  size_t offset = 0;
  core_buffer* b = core_array_contiguous_buffer(x, "mlxc_readback_add", &offset);
  if (!b) return 1;
  size_t nbytes = x->size * core_dtype_size(x->dtype);
  if (nbytes > r->capacity - r->used)
    return util_error("mlxc_readback_add: %zu more bytes do not fit (%zu of %zu used)", nbytes, r->used, r->capacity);
  if (nbytes == 0) return 0;
  if (b->host_valid || !b->device_valid) {
    memcpy(r->data + r->used, (const char*)b->data + offset, nbytes);
  } else {
    if (r->device >= 0 && r->device != b->device_index)
      return util_error("mlxc_readback_add: the readback holds copies from GPU %d, not GPU %d", r->device,
                        b->device_index);
    if (!r->fence && gpu_backend_fence_new(b->device_index, &r->fence)) return 1;
    r->device = b->device_index;
    if (gpu_backend_copy_async(r->device, r->data + r->used, (const char*)b->device_data + offset, nbytes) ||
        gpu_backend_fence_record(r->fence))
      return 1;
    r->pending = true;
  }
  r->used += nbytes;
  return 0;
}

int mlxc_readback_wait(mlxc_readback* r, const void** data, size_t* nbytes) {
  if (!r || !data || !nbytes) return util_error("mlxc_readback_wait: null argument");
  if (r->pending && gpu_backend_fence_wait(r->fence)) return 1;
  r->pending = false;
  *data = r->data;
  *nbytes = r->used;
  r->used = 0;
  return 0;
}

void mlxc_readback_free(mlxc_readback* r) {
  if (!r) return;
  if (r->pending) gpu_backend_fence_wait(r->fence); /* no copy may land in freed memory */
  gpu_backend_fence_free(r->fence);
  if (r->page_locked) gpu_backend_host_free(r->data);
  else free(r->data);
  free(r);
}
