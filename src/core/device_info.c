/* mlx_device_info: properties of a device as string or size values, by key. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "backend/gpu.h"
#include "core/allocator.h"
#include "core/device.h"
#include "util/error.h"

#define MAX_KEYS 8

typedef struct {
  const char* key;
  bool is_string;
  char text[128];
  size_t size;
} info_entry;

typedef struct {
  int count;
  info_entry entries[MAX_KEYS];
} device_info;

static void put_string(device_info* info, const char* key, const char* value) {
  info_entry* e = &info->entries[info->count++];
  e->key = key;
  e->is_string = true;
  snprintf(e->text, sizeof e->text, "%s", value);
}

static void put_size(device_info* info, const char* key, size_t value) {
  info_entry* e = &info->entries[info->count++];
  e->key = key;
  e->is_string = false;
  e->size = value;
}

static void cpu_name(char* out, size_t size) {
  snprintf(out, size, "cpu");
  FILE* f = fopen("/proc/cpuinfo", "r");
  if (!f) return;
  char line[256];
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "model name", 10)) continue;
    char* colon = strchr(line, ':');
    if (!colon) break;
    colon++;
    while (*colon == ' ') colon++;
    colon[strcspn(colon, "\n")] = '\0';
    snprintf(out, size, "%s", colon);
    break;
  }
  fclose(f);
}

static void fill_cpu(device_info* info) {
  char name[128];
  cpu_name(name, sizeof name);
  put_string(info, "device_name", name);
#if defined(__x86_64__)
  put_string(info, "architecture", "x86_64");
#elif defined(__aarch64__)
  put_string(info, "architecture", "aarch64");
#else
  put_string(info, "architecture", "unknown");
#endif
  size_t memory = core_physical_memory();
  put_size(info, "memory_size", memory);
  /* What can be kept wired: 3/4 of RAM, within what this process may lock. */
  size_t recommended = memory / 4 * 3;
  if (core_lockable_memory() < recommended) recommended = core_lockable_memory();
  put_size(info, "max_recommended_working_set_size", recommended);
}

static int fill_gpu(device_info* info, int index) {
  char name[128], arch[32];
  size_t memory;
  if (gpu_backend_device_properties(index, name, sizeof name, arch, sizeof arch, &memory))
    return util_error("cannot read the properties of GPU %d", index);
  put_string(info, "device_name", name);
  put_string(info, "architecture", arch);
  put_size(info, "memory_size", memory);
  /* Leave headroom for the CUDA context, cuBLAS workspaces and other processes. */
  put_size(info, "max_recommended_working_set_size", memory / 100 * 95);
  return 0;
}

mlx_device_info mlx_device_info_new(void) {
  device_info* info = calloc(1, sizeof *info);
  if (!info) util_error("out of memory");
  return (mlx_device_info){info};
}

int mlx_device_info_get(mlx_device_info* out, mlx_device dev) {
  if (!out) return util_error("mlx_device_info_get: null result");
  mlx_device_type type;
  int index;
  mlx_device_get_type(&type, dev);
  mlx_device_get_index(&index, dev);
  if (!core_device_get(type, index, true)) return 1;
  device_info* info = calloc(1, sizeof *info);
  if (!info) return util_error("out of memory");
  if (type == MLX_CPU) {
    fill_cpu(info);
  } else if (fill_gpu(info, index)) {
    free(info);
    return 1;
  }
  free(out->ctx);
  out->ctx = info;
  return 0;
}

int mlx_device_info_free(mlx_device_info info) {
  free(info.ctx);
  return 0;
}

static info_entry* find(mlx_device_info info, const char* key) {
  device_info* d = info.ctx;
  for (int i = 0; d && key && i < d->count; i++)
    if (!strcmp(d->entries[i].key, key)) return &d->entries[i];
  return NULL;
}

int mlx_device_info_has_key(bool* exists, mlx_device_info info, const char* key) {
  if (!exists) return util_error("mlx_device_info_has_key: null result");
  *exists = find(info, key) != NULL;
  return 0;
}

int mlx_device_info_is_string(bool* is_string, mlx_device_info info, const char* key) {
  if (!is_string) return util_error("mlx_device_info_is_string: null result");
  info_entry* e = find(info, key);
  if (!e) return util_error("device info has no key '%s'", key ? key : "(null)");
  *is_string = e->is_string;
  return 0;
}

int mlx_device_info_get_string(const char** value, mlx_device_info info, const char* key) {
  if (!value) return util_error("mlx_device_info_get_string: null result");
  info_entry* e = find(info, key);
  if (!e) return util_error("device info has no key '%s'", key ? key : "(null)");
  if (!e->is_string) return util_error("device info key '%s' is a size, not a string", key);
  *value = e->text;
  return 0;
}

int mlx_device_info_get_size(size_t* value, mlx_device_info info, const char* key) {
  if (!value) return util_error("mlx_device_info_get_size: null result");
  info_entry* e = find(info, key);
  if (!e) return util_error("device info has no key '%s'", key ? key : "(null)");
  if (e->is_string) return util_error("device info key '%s' is a string, not a size", key);
  *value = e->size;
  return 0;
}

int mlx_device_info_get_keys(mlx_vector_string* keys, mlx_device_info info) {
  device_info* d = info.ctx;
  if (!keys) return util_error("mlx_device_info_get_keys: null result");
  if (!d) return util_error("mlx_device_info_get_keys: empty device info");
  mlx_vector_string v = mlx_vector_string_new();
  for (int i = 0; i < d->count; i++)
    if (mlx_vector_string_append_value(v, d->entries[i].key)) {
      mlx_vector_string_free(v);
      return 1;
    }
  mlx_vector_string_free(*keys);
  *keys = v;
  return 0;
}
