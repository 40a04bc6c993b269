// Recording a device's work into a CUDA graph and replaying it (core/capture.c drives this):
// stream capture of everything the kernels enqueue between gpu_backend_record_begin and _end,
// instantiated once; each replay is one cudaGraphLaunch instead of hundreds of kernel launches.
#include <cuda_runtime.h>
#include <stdlib.h>

#include "backend/cuda/common.cuh"
#include "backend/cuda/launch.h"
#include "backend/gpu.h"

struct gpu_graph {
  int device;
  cudaGraphExec_t exec;
  gpu_block* kept;  // blocks freed while recording: the replays may still write them
  size_t n_kept;
};

static void give_back(int device, gpu_block* kept, size_t n) {
  for (size_t i = 0; i < n; i++) gpu_backend_free(device, kept[i].ptr, kept[i].nbytes);
  free(kept);
}

extern "C" int gpu_backend_record_begin(int device) {
  if (gpu_recording_start(device)) return 1;
  cudaStream_t s = gpu_stream(device);
  // Relaxed: allocations, uploads and waits on the side stream stay legal while recording.
  if (gpu_check(cudaStreamBeginCapture(s, cudaStreamCaptureModeRelaxed), "cudaStreamBeginCapture")) {
    gpu_block* kept;
    size_t n;
    gpu_recording_stop(device, &kept, &n);
    give_back(device, kept, n);
    return 1;
  }
  return 0;
}

extern "C" int gpu_backend_record_end(int device, bool keep, struct gpu_graph** out) {
  *out = NULL;
  cudaStream_t s = gpu_stream(device);
  cudaGraph_t graph = NULL;
  cudaError_t e = cudaStreamEndCapture(s, &graph);
  gpu_block* kept;
  size_t n_kept;
  gpu_recording_stop(device, &kept, &n_kept);
  cudaGraphExec_t exec = NULL;
  if (e == cudaSuccess && keep) e = cudaGraphInstantiate(&exec, graph, 0);
  if (graph) cudaGraphDestroy(graph);
  if (e != cudaSuccess || !keep) {
    cudaGetLastError();
    give_back(device, kept, n_kept);  // nothing recorded ran, so nothing uses them
    return keep ? util_error("GPU %d: the recorded work cannot be replayed: %s", device, cudaGetErrorString(e)) : 0;
  }
  gpu_graph* g = (gpu_graph*)malloc(sizeof *g);
  if (!g) {
    cudaGraphExecDestroy(exec);
    give_back(device, kept, n_kept);
    return util_error("out of memory");
  }
  *g = gpu_graph{device, exec, kept, n_kept};
  *out = g;
  return 0;
}

extern "C" int gpu_backend_graph_launch(struct gpu_graph* g) {
  cudaStream_t s = gpu_stream(g->device);
  if (!s) return 1;
  gpu_note_replay(g->device);
  return gpu_check(cudaGraphLaunch(g->exec, s), "cudaGraphLaunch");
}

extern "C" void gpu_backend_graph_free(struct gpu_graph* g) {
  if (!g) return;
  cudaGraphExecDestroy(g->exec);
  give_back(g->device, g->kept, g->n_kept);  // stream-ordered after the last replay
  free(g);
}

namespace {

struct feed_list {
  gpu_feed feeds[GPU_FEEDS_MAX];
  int n;
};

// One thread: the copies are a few bytes each, and in order (a later one may read what an
// earlier one wrote).
__global__ void feed_kernel(feed_list list) {
  gpu_chain_start();
  for (int i = 0; i < list.n; i++)
    for (size_t b = 0; b < list.feeds[i].nbytes; b++)
      ((unsigned char*)list.feeds[i].dst)[b] = ((const unsigned char*)list.feeds[i].src)[b];
}

}  // namespace

extern "C" int gpu_backend_feed(int device, const gpu_feed* feeds, int n) {
  if (n < 1 || n > GPU_FEEDS_MAX) return util_error("GPU %d: %d feeds (1 to %d)", device, n, GPU_FEEDS_MAX);
  cudaStream_t s = gpu_stream(device);
  if (!s) return 1;
  feed_list list = {};
  for (int i = 0; i < n; i++) list.feeds[i] = feeds[i];
  list.n = n;
  return gpu_check(gpu_launch_chained(feed_kernel, 1, 1, 0, s, list), "feed launch");
}
