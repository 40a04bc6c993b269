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
  gpu_read reads[GPU_FEEDS_MAX];
  int n, n_reads;
  bool independent;    // no feed reads or overwrites bytes an earlier one writes (feeds_independent)
  gpu_host_ring ring;  // host: its device address
};

// nbytes from src to dst by 4-byte words where both are aligned to 4 and nbytes is a multiple
// (each load waits for the store before it, which may have written it: fewer is faster).
__device__ void feed_copy(unsigned char* dst, const unsigned char* src, size_t nbytes) {
  if (((uintptr_t)dst | (uintptr_t)src | nbytes) % 4 == 0) {
    for (size_t w = 0; w < nbytes / 4; w++) ((uint32_t*)dst)[w] = ((const uint32_t*)src)[w];
    return;
  }
  for (size_t b = 0; b < nbytes; b++) dst[b] = src[b];
}

// The copies are a few bytes each. Independent ones (a decode step's) go one a thread, all
// at once: one memory latency instead of one a copy (the kernel took 3.3 us as a chain of five);
// otherwise one thread makes them in order, since a later one may read what an earlier one
// wrote. Then the reads into this run's slot of the host ring, one a thread (their bytes do
// not overlap), after every feed (a read may take what a feed wrote).
__global__ void feed_kernel(feed_list list) {
  __shared__ unsigned int run;
  gpu_chain_start();
  const int t = threadIdx.x;
  if (list.independent) {
    if (t < list.n)
      feed_copy((unsigned char*)list.feeds[t].dst, (const unsigned char*)list.feeds[t].src, list.feeds[t].nbytes);
  } else if (t == 0) {
    for (int i = 0; i < list.n; i++)
      feed_copy((unsigned char*)list.feeds[i].dst, (const unsigned char*)list.feeds[i].src, list.feeds[i].nbytes);
  }
  if (list.n_reads == 0) return;
  if (t == 0) {
    run = *list.ring.counter + 1;
    *list.ring.counter = run;
  }
  __syncthreads();  // the feeds' writes are visible to the block, and `run` is set
  unsigned char* slot = list.ring.host + (size_t)(run % list.ring.slots) * list.ring.slot_bytes;
  if (t < list.n_reads)
    feed_copy(slot + list.reads[t].offset, (const unsigned char*)list.reads[t].src, list.reads[t].nbytes);
}

// Whether byte ranges [a, a + an) and [b, b + bn) share a byte.
bool ranges_overlap(const void* a, size_t an, const void* b, size_t bn) {
  const uintptr_t x = (uintptr_t)a, y = (uintptr_t)b;
  return x < y + bn && y < x + an;
}

// Whether the feeds may run in any order: none reads or writes bytes an earlier one writes.
bool feeds_independent(const gpu_feed* feeds, int n) {
  for (int j = 0; j < n; j++)
    for (int i = 0; i < j; i++)
      if (ranges_overlap(feeds[i].dst, feeds[i].nbytes, feeds[j].src, feeds[j].nbytes) ||
          ranges_overlap(feeds[i].dst, feeds[i].nbytes, feeds[j].dst, feeds[j].nbytes))
        return false;
  return true;
}

}  // namespace

extern "C" int gpu_backend_feed(int device, const gpu_feed* feeds, int n, const gpu_read* reads, int n_reads,
                                gpu_host_ring ring) {
  if (n < 0 || n > GPU_FEEDS_MAX || n_reads < 0 || n_reads > GPU_FEEDS_MAX || n + n_reads == 0)
    return util_error("GPU %d: %d feeds and %d reads (0 to %d each, not none)", device, n, n_reads, GPU_FEEDS_MAX);
  cudaStream_t s = gpu_stream(device);
  if (!s) return 1;
  feed_list list = {};
  for (int i = 0; i < n; i++) list.feeds[i] = feeds[i];
  for (int i = 0; i < n_reads; i++) list.reads[i] = reads[i];
  list.n = n;
  list.n_reads = n_reads;
  list.independent = feeds_independent(feeds, n);
  list.ring = ring;
  if (n_reads) {
    if (!ring.host || !ring.counter || ring.slots == 0) return util_error("GPU %d: reads without a host ring", device);
    void* mapped = NULL;  // page-locked memory's address on the device (the same under UVA)
    if (gpu_check(cudaHostGetDevicePointer(&mapped, ring.host, 0), "cudaHostGetDevicePointer")) return 1;
    list.ring.host = (unsigned char*)mapped;
  }
  return gpu_check(gpu_launch_chained(feed_kernel, 1, 32, 0, s, list), "feed launch");
}
