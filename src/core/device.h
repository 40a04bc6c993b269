/* Devices and streams. Devices are static objects (the CPU, GPU 0..N-1); streams live in a
 * global table for the life of the process, like MLX's stream indices. */
#ifndef MLXC_CORE_DEVICE_H
#define MLXC_CORE_DEVICE_H

#include <stdbool.h>

#include "mlx/c/device.h"
#include "mlx/c/stream.h"

#define CORE_MAX_GPUS 16

typedef struct core_device {
  mlx_device_type type;
  int index;
} core_device;

struct core_stream {
  int index;
  const core_device* device;
};
typedef struct core_stream core_stream;

const core_device* core_cpu_device(void);
/* NULL (error reported) when the type/index names no device that exists in this build. */
const core_device* core_device_get(mlx_device_type type, int index, bool report);
int core_gpu_count(void);

/* Resolves a stream handle; a NULL ctx means the default stream of the default device. */
core_stream* core_stream_resolve(mlx_stream s);
core_stream* core_default_stream(const core_device* device);

#endif
