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
/* x's buffer when x is evaluated and row-contiguous (*offset: the byte offset of its data), else
 * NULL with an error reported in `who`'s name. */
core_buffer* core_array_contiguous_buffer(const core_array* x, const char* who, size_t* offset);
/* Whether x's data may be overwritten in place (mlxc_array_write, mlxc_array_copy): x shares its
 * memory with no other array, the memory is not mapped or borrowed, and its GPU is not being
 * recorded. 0, or 1 with the error reported in `who`'s name. */
int core_array_check_writable(const core_array* x, const char* who);

#endif
