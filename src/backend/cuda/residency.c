/* Where a buffer's data lives (backend/gpu.h, core/array.h): host copies of device-resident
 * buffers on demand, device copies of host buffers (cached in the buffer) for GPU kernels, and
 * device-resident outputs. One lock serialises these transitions. Compiled in CUDA builds only. */
#ifdef MLXC_WITH_CUDA
#include "backend/cuda/residency.h"

#include <pthread.h>

#include "backend/cuda/launch.h"
#include "backend/gpu.h"
#include "core/allocator.h"
#include "core/capture.h"
#include "util/error.h"

static pthread_mutex_t residency_lock = PTHREAD_MUTEX_INITIALIZER;

/* Call with the lock held. */
static int to_host_locked(core_buffer* b) {
  if (b->host_valid) return 0;
  if (!b->data) {
    b->data = core_alloc(b->nbytes);
    if (!b->data) return 1;
  }
  if (gpu_copy_to_host(b->device_index, b->data, b->device_data, b->nbytes)) return 1;
  b->host_valid = true;
  return 0;
}

int gpu_backend_to_host(core_buffer* b) {
  pthread_mutex_lock(&residency_lock);
  int status = to_host_locked(b);
  pthread_mutex_unlock(&residency_lock);
  return status;
}

int gpu_device_ptr(const core_array* a, int device, const void** ptr) {
  *ptr = NULL;
  core_buffer* b = a->buffer;
  if (!b) return 0;
  int status = 0;
  pthread_mutex_lock(&residency_lock);
  if (b->device_valid && b->device_index != device) {
    /* Resident on another GPU: bring it home first, then move it. */
    status = to_host_locked(b);
    if (!status) {
      gpu_backend_free(b->device_index, b->device_data, b->nbytes);
      b->device_data = NULL;
      b->device_valid = false;
    }
  }
  if (!status && !b->device_valid) {
    b->device_index = device;
    if (!b->device_data) status = gpu_backend_alloc(device, b->nbytes, &b->device_data);
    if (!status) status = gpu_copy_to_device(device, b->device_data, b->data, b->nbytes);
    if (!status) b->device_valid = true;
  }
  pthread_mutex_unlock(&residency_lock);
  if (!status && core_capture_device() == device) status = core_capture_hold(b, false);
  if (status) return 1;
  *ptr = b->device_data ? (const char*)b->device_data + a->offset * (int64_t)core_dtype_size(a->dtype) : NULL;
  return 0;
}

int gpu_alloc_output(core_array* out, int device, void** ptr) {
  core_buffer_release(out->buffer);
  out->buffer = core_buffer_alloc_device(out->size * core_dtype_size(out->dtype), device);
  *ptr = NULL;
  if (!out->buffer || (core_capture_device() == device && core_capture_hold(out->buffer, true))) return 1;
  out->offset = 0;
  core_row_strides(out->shape, out->ndim, out->strides);
  out->row_contiguous = true;
  *ptr = out->buffer->device_data;
  return 0;
}
#else
typedef int residency_unused_without_cuda;
#endif
