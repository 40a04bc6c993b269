/* The recording in progress (include/mlxc/capture.h): which GPU, and the buffers its kernels
 * use, held until the recording is freed. */
#ifndef MLXC_CORE_CAPTURE_H
#define MLXC_CORE_CAPTURE_H

#include <stdbool.h>

#include "core/array.h"

/* The GPU being recorded, or -1. */
int core_capture_device(void);
/* Holds `b` for the recording in progress (call for every buffer a GPU kernel reads or writes
 * while recording); `written` marks buffers the recorded work writes, whose host copies each
 * replay invalidates. Non-zero on out of memory. */
int core_capture_hold(core_buffer* b, bool written);
/* References to `b` that are not recordings' holds. */
static inline int core_buffer_users(core_buffer* b) { return atomic_load(&b->refs) - b->capture_holds; }

#endif
