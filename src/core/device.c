/* Devices, streams and the default device: the mlx-c device.h and stream.h API. */
#include "core/device.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/gpu.h"
#include "mlx/c/cuda.h"
#include "mlx/c/string.h"
#include "util/error.h"

static const core_device cpu_device = {MLX_CPU, 0};
static core_device gpu_devices[CORE_MAX_GPUS];

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int gpu_count;
static const core_device* default_device = &cpu_device;

#define MAX_STREAMS 256
static core_stream* streams[MAX_STREAMS];
static int stream_count;
static core_stream* default_streams[1 + CORE_MAX_GPUS];

static void init_devices(void) {
  gpu_count = gpu_backend_device_count();
  if (gpu_count > CORE_MAX_GPUS) gpu_count = CORE_MAX_GPUS;
  for (int i = 0; i < CORE_MAX_GPUS; i++) gpu_devices[i] = (core_device){MLX_GPU, i};
  if (gpu_count > 0) default_device = &gpu_devices[0];
  if (getenv("MLXC_DEFAULT_DEVICE") && !strcmp(getenv("MLXC_DEFAULT_DEVICE"), "cpu"))
    default_device = &cpu_device;
}

int core_gpu_count(void) {
  pthread_once(&init_once, init_devices);
  return gpu_count;
}

const core_device* core_cpu_device(void) { return &cpu_device; }

const core_device* core_device_get(mlx_device_type type, int index, bool report) {
  pthread_once(&init_once, init_devices);
  if (type == MLX_CPU && index == 0) return &cpu_device;
  if (type == MLX_GPU && index >= 0 && index < gpu_count) return &gpu_devices[index];
  if (report) {
    if (type == MLX_GPU)
      util_error("no GPU with index %d (this process sees %d GPU%s%s)", index, gpu_count,
                 gpu_count == 1 ? "" : "s", gpu_backend_compiled() ? "" : "; built without CUDA");
    else
      util_error("no CPU device with index %d", index);
  }
  return NULL;
}

static int device_slot(const core_device* d) { return d->type == MLX_CPU ? 0 : 1 + d->index; }

/* Creates a stream for `device`; call with the lock held. */
static core_stream* new_stream_locked(const core_device* device) {
  if (stream_count >= MAX_STREAMS) {
    util_error("too many streams (at most %d)", MAX_STREAMS);
    return NULL;
  }
  core_stream* s = malloc(sizeof *s);
  if (!s) {
    util_error("out of memory creating a stream");
    return NULL;
  }
  s->index = stream_count;
  s->device = device;
  streams[stream_count++] = s;
  return s;
}

core_stream* core_default_stream(const core_device* device) {
  pthread_once(&init_once, init_devices);
  pthread_mutex_lock(&lock);
  int slot = device_slot(device);
  if (!default_streams[slot]) default_streams[slot] = new_stream_locked(device);
  core_stream* s = default_streams[slot];
  pthread_mutex_unlock(&lock);
  return s;
}

core_stream* core_stream_resolve(mlx_stream s) {
  if (s.ctx) return (core_stream*)s.ctx;
  pthread_once(&init_once, init_devices);
  pthread_mutex_lock(&lock);
  const core_device* d = default_device;
  pthread_mutex_unlock(&lock);
  return core_default_stream(d);
}

/* ---- device.h ---- */

static const core_device* dev_of(mlx_device dev) {
  pthread_once(&init_once, init_devices);
  if (dev.ctx) return (const core_device*)dev.ctx;
  pthread_mutex_lock(&lock);
  const core_device* d = default_device;
  pthread_mutex_unlock(&lock);
  return d;
}

mlx_device mlx_device_new(void) { return (mlx_device){(void*)dev_of((mlx_device){NULL})}; }

mlx_device mlx_device_new_type(mlx_device_type type, int index) {
  pthread_once(&init_once, init_devices);
  if (type == MLX_CPU) return (mlx_device){(void*)&cpu_device};
  if (index < 0 || index >= CORE_MAX_GPUS) return (mlx_device){NULL};
  /* A GPU handle may name a device that is absent; mlx_device_is_available says so. */
  return (mlx_device){(void*)&gpu_devices[index]};
}

int mlx_device_free(mlx_device dev) { return 0; }

int mlx_device_set(mlx_device* dev, const mlx_device src) {
  if (!dev) return util_error("mlx_device_set: null destination");
  dev->ctx = src.ctx;
  return 0;
}

int mlx_device_tostring(mlx_string* str, mlx_device dev) {
  const core_device* d = dev_of(dev);
  char text[64];
  snprintf(text, sizeof text, "Device(%s, %d)", d->type == MLX_CPU ? "cpu" : "gpu", d->index);
  mlx_string out = mlx_string_new_data(text);
  if (!out.ctx) return util_error("out of memory");
  mlx_string_free(*str);
  *str = out;
  return 0;
}

bool mlx_device_equal(mlx_device lhs, mlx_device rhs) {
  const core_device *a = dev_of(lhs), *b = dev_of(rhs);
  return a->type == b->type && a->index == b->index;
}

int mlx_device_get_index(int* index, mlx_device dev) {
  *index = dev_of(dev)->index;
  return 0;
}

int mlx_device_get_type(mlx_device_type* type, mlx_device dev) {
  *type = dev_of(dev)->type;
  return 0;
}

int mlx_get_default_device(mlx_device* dev) {
  dev->ctx = (void*)dev_of((mlx_device){NULL});
  return 0;
}

int mlx_set_default_device(mlx_device dev) {
  const core_device* d = dev_of(dev);
  if (!core_device_get(d->type, d->index, true)) return 1;
  pthread_mutex_lock(&lock);
  default_device = d;
  pthread_mutex_unlock(&lock);
  return 0;
}

int mlx_device_is_available(bool* avail, mlx_device dev) {
  const core_device* d = dev_of(dev);
  *avail = core_device_get(d->type, d->index, false) != NULL;
  return 0;
}

int mlx_device_count(int* count, mlx_device_type type) {
  *count = type == MLX_CPU ? 1 : core_gpu_count();
  return 0;
}

int mlx_cuda_is_available(bool* res) {
  if (!res) return util_error("mlx_cuda_is_available: result pointer is NULL");
  *res = core_gpu_count() > 0;
  return 0;
}

/* ---- stream.h ---- */

mlx_stream mlx_stream_new(void) { return (mlx_stream){NULL}; }

mlx_stream mlx_stream_new_device(mlx_device dev) {
  const core_device* d = dev_of(dev);
  if (!core_device_get(d->type, d->index, true)) return (mlx_stream){NULL};
  pthread_mutex_lock(&lock);
  core_stream* s = new_stream_locked(d);
  pthread_mutex_unlock(&lock);
  return (mlx_stream){s};
}

int mlx_stream_set(mlx_stream* stream, const mlx_stream src) {
  if (!stream) return util_error("mlx_stream_set: null destination");
  stream->ctx = src.ctx;
  return 0;
}

/* Streams live for the whole process (they are indices into a table), so freeing is a no-op. */
int mlx_stream_free(mlx_stream stream) { return 0; }

int mlx_stream_tostring(mlx_string* str, mlx_stream stream) {
  core_stream* s = core_stream_resolve(stream);
  char text[96];
  snprintf(text, sizeof text, "Stream(Device(%s, %d), %d)",
           s->device->type == MLX_CPU ? "cpu" : "gpu", s->device->index, s->index);
  mlx_string out = mlx_string_new_data(text);
  if (!out.ctx) return util_error("out of memory");
  mlx_string_free(*str);
  *str = out;
  return 0;
}

bool mlx_stream_equal(mlx_stream lhs, mlx_stream rhs) {
  return core_stream_resolve(lhs) == core_stream_resolve(rhs);
}

int mlx_stream_get_device(mlx_device* dev, mlx_stream stream) {
  dev->ctx = (void*)core_stream_resolve(stream)->device;
  return 0;
}

int mlx_stream_get_index(int* index, mlx_stream stream) {
  *index = core_stream_resolve(stream)->index;
  return 0;
}

int mlx_synchronize(mlx_stream stream) {
  core_stream* s = core_stream_resolve(stream);
  return s->device->type == MLX_GPU ? gpu_backend_synchronize(s->device->index) : 0;
}

int mlx_get_default_stream(mlx_stream* stream, mlx_device dev) {
  const core_device* d = dev_of(dev);
  if (!core_device_get(d->type, d->index, true)) return 1;
  core_stream* s = core_default_stream(d);
  if (!s) return 1;
  stream->ctx = s;
  return 0;
}

int mlx_set_default_stream(mlx_stream stream) {
  core_stream* s = core_stream_resolve(stream);
  pthread_mutex_lock(&lock);
  default_device = s->device;
  default_streams[device_slot(s->device)] = s;
  pthread_mutex_unlock(&lock);
  return 0;
}

mlx_stream mlx_default_cpu_stream_new(void) { return (mlx_stream){core_default_stream(&cpu_device)}; }

mlx_stream mlx_default_gpu_stream_new(void) {
  const core_device* d = core_device_get(MLX_GPU, 0, true);
  return (mlx_stream){d ? core_default_stream(d) : NULL};
}
