/* The GPU backend of a build without CUDA: no devices, so no buffer is ever device-resident. */
#ifndef MLXC_WITH_CUDA
#include "backend/gpu.h"
#include "util/error.h"

bool gpu_backend_compiled(void) { return false; }
int gpu_backend_device_count(void) { return 0; }
int gpu_backend_synchronize(int device) { return 0; }
int gpu_backend_device_properties(int device, char* name, size_t name_size, char* arch,
                                  size_t arch_size, size_t* memory_size) {
  return 1;
}
int gpu_backend_alloc(int device, size_t nbytes, void** ptr) {
  *ptr = NULL;
  return util_error("no GPU memory in a build without CUDA");
}
void gpu_backend_free(int device, void* ptr, size_t nbytes) {}
int gpu_backend_to_host(struct core_buffer* buffer) {
  return util_error("a device-resident buffer in a build without CUDA");
}
void gpu_backend_memory(int device, size_t* active, size_t* peak, size_t* cache) {
  *active = *peak = *cache = 0;
}
int gpu_backend_set_limit(int device, enum gpu_limit which, size_t limit, size_t* prior) {
  return util_error("no GPU in a build without CUDA");
}
void gpu_backend_reset_peak(int device) {}
int gpu_backend_clear_cache(int device) { return util_error("no GPU in a build without CUDA"); }
void gpu_backend_clear_caches(void) {}
const char* gpu_backend_decode_layers_refusal(int device, const struct decode_layers_params* p, int dtype) {
  return "no GPU in a build without CUDA";
}
gpu_kernel_fn gpu_backend_kernel(const struct core_op* op) { return NULL; }
int gpu_backend_copy_async(int device, void* dst, const void* src, size_t nbytes) {
  return util_error("no GPU in a build without CUDA");
}
int gpu_backend_host_alloc(size_t nbytes, void** ptr) {
  *ptr = NULL;
  return util_error("no GPU in a build without CUDA");
}
void gpu_backend_host_free(void* ptr) {}
int gpu_backend_fence_new(int device, struct gpu_fence** fence) {
  *fence = NULL;
  return util_error("no GPU in a build without CUDA");
}
int gpu_backend_fence_record(struct gpu_fence* fence) { return util_error("no GPU in a build without CUDA"); }
int gpu_backend_fence_wait(struct gpu_fence* fence) { return util_error("no GPU in a build without CUDA"); }
void gpu_backend_fence_free(struct gpu_fence* fence) {}
unsigned long long gpu_backend_write_stamp(int device) { return 0; }
bool gpu_backend_write_settled(int device, unsigned long long stamp) { return true; }
int gpu_backend_record_begin(int device) { return util_error("no GPU in a build without CUDA"); }
int gpu_backend_record_end(int device, bool keep, struct gpu_graph** graph) {
  *graph = NULL;
  return util_error("no GPU in a build without CUDA");
}
int gpu_backend_graph_launch(struct gpu_graph* graph) { return util_error("no GPU in a build without CUDA"); }
void gpu_backend_graph_free(struct gpu_graph* graph) {}
int gpu_backend_feed(int device, const struct gpu_feed* feeds, int n, const struct gpu_read* reads, int n_reads,
                     struct gpu_host_ring ring) {
  return util_error("no GPU in a build without CUDA");
}
int gpu_backend_write(int device, void* dst, const void* src, size_t nbytes) {
  return util_error("no GPU in a build without CUDA");
}
#else
typedef int gpu_none_unused_in_cuda_builds;
#endif
