/* mlxc info: devices, their device-info keys, and the memory limits. */
#include <stdio.h>

#include "commands.h"
#include "mlx/c/mlx.h"
#include "mlxc/error.h"

static void print_device(mlx_device dev) {
  mlx_string name = mlx_string_new();
  mlx_device_tostring(&name, dev);
  printf("%s\n", mlx_string_data(name));
  mlx_string_free(name);
  mlx_device_info info = mlx_device_info_new();
  if (mlx_device_info_get(&info, dev)) {
    printf("  (properties unavailable: %s)\n", mlxc_last_error());
    mlx_device_info_free(info);
    return;
  }
  mlx_vector_string keys = mlx_vector_string_new();
  mlx_device_info_get_keys(&keys, info);
  for (size_t i = 0; i < mlx_vector_string_size(keys); i++) {
    char* key;
    bool is_string;
    mlx_vector_string_get(&key, keys, i);
    mlx_device_info_is_string(&is_string, info, key);
    if (is_string) {
      const char* value;
      mlx_device_info_get_string(&value, info, key);
      printf("  %-34s %s\n", key, value);
    } else {
      size_t value;
      mlx_device_info_get_size(&value, info, key);
      printf("  %-34s %zu (%.2f GiB)\n", key, value, value / 1073741824.0);
    }
  }
  mlx_vector_string_free(keys);
  mlx_device_info_free(info);
}

int cmd_info(int argc, char** argv) {
  mlx_string version = mlx_string_new();
  mlx_version(&version);
  printf("mlxc %s\n\n", mlx_string_data(version));
  mlx_string_free(version);

  int gpus = 0;
  mlx_device_count(&gpus, MLX_GPU);
  mlx_device cpu = mlx_device_new_type(MLX_CPU, 0);
  print_device(cpu);
  mlx_device_free(cpu);
  for (int i = 0; i < gpus; i++) {
    mlx_device gpu = mlx_device_new_type(MLX_GPU, i);
    print_device(gpu);
    mlx_device_free(gpu);
  }
  if (gpus == 0) printf("no GPU\n");

  mlx_device def = mlx_device_new();
  mlx_string name = mlx_string_new();
  mlx_get_default_device(&def);
  mlx_device_tostring(&name, def);
  printf("\ndefault device: %s\n", mlx_string_data(name));
  mlx_string_free(name);

  size_t limit, cache, active, peak, wired;
  mlx_get_memory_limit(&limit);
  mlx_get_cache_memory(&cache);
  mlx_get_active_memory(&active);
  mlx_get_peak_memory(&peak);
  mlx_set_wired_limit(&wired, 0);
  printf("memory limit: %zu bytes (%.2f GiB)\n", limit, limit / 1073741824.0);
  printf("wired limit:  %zu bytes\n", wired);
  printf("active: %zu, peak: %zu, cache: %zu bytes\n", active, peak, cache);
  return 0;
}
