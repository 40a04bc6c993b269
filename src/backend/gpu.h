/* What the core asks of a GPU backend. Implemented by backend/cuda when built with CUDA, and by
 * gpu_none.c (no GPUs) otherwise. Plain C declarations (the core's structs stay opaque here) so
 * that CUDA sources can include it. */
#ifndef MLXC_BACKEND_GPU_H
#define MLXC_BACKEND_GPU_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

struct core_buffer;
struct core_node;
struct core_array;
struct core_op;

bool gpu_backend_compiled(void);
/* Number of usable GPUs (0 when none or when the driver is missing). */
int gpu_backend_device_count(void);
int gpu_backend_synchronize(int device);
/* Device properties for mlx_device_info; returns non-zero when unavailable. */
int gpu_backend_device_properties(int device, char* name, size_t name_size, char* arch,
                                  size_t arch_size, size_t* memory_size);

/* Device memory from the backend's stream-ordered cache; *ptr is NULL for 0 bytes. Non-zero
 * with an error reported when the device is out of memory. */
int gpu_backend_alloc(int device, size_t nbytes, void** ptr);
void gpu_backend_free(int device, void* ptr, size_t nbytes);
/* Gives a device-resident buffer a valid host copy (allocating host memory if needed), waiting
 * for the GPU work that produces it. Non-zero with an error reported on failure. */
int gpu_backend_to_host(struct core_buffer* buffer);
/* Bytes in live device allocations, their high-water mark and bytes cached by the pool (zeros
 * without CUDA). */
void gpu_backend_memory(int device, size_t* active, size_t* peak, size_t* cache);
/* The allocator's limits, in bytes (docs/memory.md): an allocation that would take live
 * memory past MEMORY fails (0: none); freed blocks past CACHE go back to the pool instead of
 * the cache; the pool keeps up to WIRED reserved across synchronisations (its release
 * threshold) and hands the rest back to the driver. Setting one applies it at once (trims the
 * cache or the pool) and returns the previous value through *prior. */
enum gpu_limit { GPU_LIMIT_MEMORY, GPU_LIMIT_CACHE, GPU_LIMIT_WIRED };
int gpu_backend_set_limit(int device, enum gpu_limit which, size_t limit, size_t* prior);
void gpu_backend_reset_peak(int device);
/* Gives the cached blocks back to the pool and the pool's unused memory back to the driver,
 * once the device's queued work is done. */
int gpu_backend_clear_cache(int device);
/* gpu_backend_clear_cache of every GPU this process has used (mlx_clear_cache). */
void gpu_backend_clear_caches(void);

/* Recording (core/capture.c): between record_begin and record_end nothing enqueued on the
 * device's stream runs; it is kept as a graph. record_end with keep false discards it;
 * otherwise *graph can be launched (each launch runs the recorded work once) and freed. */
struct gpu_graph;
int gpu_backend_record_begin(int device);
int gpu_backend_record_end(int device, bool keep, struct gpu_graph** graph);
int gpu_backend_graph_launch(struct gpu_graph* graph);
void gpu_backend_graph_free(struct gpu_graph* graph);
/* While recording `device`: one kernel that makes the n (at most GPU_FEEDS_MAX) small copies in
 * order, after the work enqueued so far (mlxc_capture_feed: a replay's outputs fed to the next
 * replay's inputs without a transfer between the replays), then the n_reads copies into host
 * memory (mlxc_capture_read): each run takes run = ++*ring.counter (a device word, zero before
 * the first run) and writes read i's bytes at ring.host + (run % ring.slots) * ring.slot_bytes +
 * offset (ring.host page-locked, from gpu_backend_host_alloc). */
#define GPU_FEEDS_MAX 8
struct gpu_feed {
  void* dst;
  const void* src;
  size_t nbytes;
};
struct gpu_read {
  const void* src;
  size_t offset, nbytes;
};
struct gpu_host_ring {
  unsigned char* host;
  size_t slot_bytes;
  unsigned int slots;
  unsigned int* counter;
};
int gpu_backend_feed(int device, const struct gpu_feed* feeds, int n, const struct gpu_read* reads, int n_reads,
                     struct gpu_host_ring ring);
/* Copies host data into a buffer's device memory, ordered after the device's queued work. */
int gpu_backend_write(int device, void* dst, const void* src, size_t nbytes);

/* Asynchronous transfers for pipelined loops (mlxc_array_copy, mlxc_readback): copy_async
 * copies nbytes between device memory of `device` and device or page-locked host memory, ordered
 * after the work queued on the device; host_alloc/host_free manage page-locked host memory; a
 * fence marks a point of the device's queue (record: everything queued so far) that wait
 * blocks on. Non-zero with an error reported on failure, or while the device is recorded. */
int gpu_backend_copy_async(int device, void* dst, const void* src, size_t nbytes);
int gpu_backend_host_alloc(size_t nbytes, void** ptr);
void gpu_backend_host_free(void* ptr);
struct gpu_fence;
int gpu_backend_fence_new(int device, struct gpu_fence** fence);
int gpu_backend_fence_record(struct gpu_fence* fence);
int gpu_backend_fence_wait(struct gpu_fence* fence);
void gpu_backend_fence_free(struct gpu_fence* fence);

/* Whether the decoder-layer kernel takes the decode_layers node of these params (ops/
 * decode_layers.h) and dtype on `device`: NULL, or why not (a static string). */
struct decode_layers_params;
const char* gpu_backend_decode_layers_refusal(int device, const struct decode_layers_params* p, int dtype);

/* A new stamp for the buffers that a node's GPU kernels, just queued on `device`, write
 * (core_buffer.gpu_write_stamp); the backend knows which stamps' writes have finished. */
unsigned long long gpu_backend_write_stamp(int device);
/* Whether the writes of the GPU node stamped `stamp` (0: a buffer no GPU node wrote) have
 * certainly finished: the host has waited for the device's stream since, and no recorded graph
 * has been launched after that wait. A chained kernel may read settled inputs before its chain
 * wait (backend/cuda/common.cuh), overlapping the kernel before it. MLXC_CUDA_PRELOAD=0: never
 * (comparisons). */
bool gpu_backend_write_settled(int device, unsigned long long stamp);

/* A GPU kernel has the CPU kernels' signature. It may return GPU_KERNEL_DECLINED, before touching
 * its outputs, for a case it does not handle (a layout or dtype): the CPU kernel then runs. */
typedef int (*gpu_kernel_fn)(struct core_node* node, struct core_array** outputs);
#define GPU_KERNEL_DECLINED (-1)
/* The GPU kernel of a primitive, or NULL when it has none (the CPU kernel runs). */
gpu_kernel_fn gpu_backend_kernel(const struct core_op* op);

#ifdef __cplusplus
}
#endif

#endif
