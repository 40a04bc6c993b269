// CUDA devices for the core (backend/gpu.h): discovery, one stream per GPU, the stream-ordered
// caching allocator (cudaMallocAsync on the device's default memory pool, which keeps freed
// memory cached: its release threshold is raised to "never"), transfers and memory counters.
#include <cuda_runtime.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <new>

#include "backend/cuda/common.cuh"
#include "backend/cuda/launch.h"
#include "backend/gpu.h"

#define MAX_GPUS 16

namespace {
// Freed blocks kept for reuse, by size class: four classes per power of two (at most ~19% of
// a block unused). Reuse needs no event: every kernel of a device runs on its one stream, so work
// queued after the free cannot overtake the work that still reads the block.
constexpr int SIZE_CLASSES = 4 * 64;
struct free_block {
  void* ptr;
  free_block* next;
  size_t bytes;  // its size class's
};
struct device_state {
  bool ready;
  cudaStream_t stream;
  cudaMemPool_t pool;
  size_t active, peak, cached;
  // gpu_backend_set_limit: live bytes (0: none), cached bytes, the pool's release threshold.
  size_t memory_limit, cache_limit, wired_limit;
  free_block* free_lists[SIZE_CLASSES];
  // While the stream is being recorded into a graph (graph.cu): pool allocations, frees and
  // uploads go through `side` (waited for at once) so that none of them is recorded, and blocks
  // freed are kept for the graph (its replays may still write them) instead of being reused.
  bool recording;
  cudaStream_t side;
  gpu_block* kept;
  size_t n_kept, kept_capacity;
  // Write stamps (gpu_backend_write_stamp): the last one handed out, and the last one whose
  // writes are known finished because the host waited for the stream after it was handed out.
  // A graph replayed since the last wait may write any buffer, so until the next wait nothing
  // counts as settled.
  unsigned long long stamps, settled;
  bool replayed;
};
device_state devices[MAX_GPUS];
pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

// The pool's release threshold for a wired limit (SIZE_MAX: never release).
uint64_t release_threshold(size_t wired) { return wired == SIZE_MAX ? UINT64_MAX : (uint64_t)wired; }

// Creates the device's stream and configures its pool; call with the lock held.
int init_device(int device) {
  device_state* d = &devices[device];
  if (d->ready) return 0;
  if (gpu_check(cudaSetDevice(device), "cudaSetDevice")) return 1;
  if (gpu_check(cudaStreamCreateWithFlags(&d->stream, cudaStreamNonBlocking), "cudaStreamCreate"))
    return 1;
  if (gpu_check(cudaDeviceGetDefaultMemPool(&d->pool, device), "cudaDeviceGetDefaultMemPool"))
    return 1;
  // The default wired limit: never hand cached memory back at synchronisation points.
  d->memory_limit = 0;
  d->cache_limit = d->wired_limit = SIZE_MAX;
  uint64_t keep = release_threshold(d->wired_limit);
  if (gpu_check(cudaMemPoolSetAttribute(d->pool, cudaMemPoolAttrReleaseThreshold, &keep),
                "cudaMemPoolSetAttribute"))
    return 1;
  d->ready = true;
  return 0;
}
}  // namespace

// The device this thread last made current: cudaSetDevice is called only when it changes (it is
// on the path of every launch and allocation).
static thread_local int current_device = -1;

cudaStream_t gpu_stream(int device) {
  if (device < 0 || device >= MAX_GPUS) {
    util_error("no GPU with index %d", device);
    return NULL;
  }
  if (!devices[device].ready) {
    pthread_mutex_lock(&lock);
    int status = init_device(device);
    pthread_mutex_unlock(&lock);
    if (status) return NULL;
  }
  if (current_device != device) {
    if (gpu_check(cudaSetDevice(device), "cudaSetDevice")) return NULL;
    current_device = device;
  }
  return devices[device].stream;
}

int gpu_sm_count(int device) {
  static int counts[MAX_GPUS];
  if (device < 0 || device >= MAX_GPUS) return 132;
  if (!counts[device]) {
    int sms = 0;
    if (cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess || sms < 1) {
      cudaGetLastError();  // only a sizing hint
      sms = 132;
    }
    counts[device] = sms;
  }
  return counts[device];
}

bool gpu_chaining_enabled() {
  static int enabled = -1;
  if (enabled < 0) {
    const char* v = getenv("MLXC_CUDA_PDL");
    enabled = !(v && strcmp(v, "0") == 0);
  }
  return enabled;
}

extern "C" bool gpu_backend_compiled(void) { return true; }

extern "C" int gpu_backend_device_count(void) {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // no driver or no device: clear the sticky error, report none
    return 0;
  }
  return count > MAX_GPUS ? MAX_GPUS : count;
}

extern "C" unsigned long long gpu_backend_write_stamp(int device) {
  return __atomic_add_fetch(&devices[device].stamps, 1, __ATOMIC_RELAXED);
}

extern "C" bool gpu_backend_write_settled(int device, unsigned long long stamp) {
  static int enabled = -1;  // MLXC_CUDA_PRELOAD=0: nothing counts as settled (comparisons)
  if (enabled < 0) {
    const char* v = getenv("MLXC_CUDA_PRELOAD");
    enabled = !(v && strcmp(v, "0") == 0);
  }
  if (!enabled) return false;
  const device_state* d = &devices[device];
  return !__atomic_load_n(&d->replayed, __ATOMIC_ACQUIRE) && stamp <= __atomic_load_n(&d->settled, __ATOMIC_ACQUIRE);
}

extern "C" void gpu_note_replay(int device) { __atomic_store_n(&devices[device].replayed, true, __ATOMIC_RELEASE); }

// Waits for the device's stream; everything stamped before the wait has then finished.
static int sync_stream(int device, cudaStream_t s) {
  device_state* d = &devices[device];
  const unsigned long long stamp = __atomic_load_n(&d->stamps, __ATOMIC_ACQUIRE);
  if (gpu_check(cudaStreamSynchronize(s), "cudaStreamSynchronize")) return 1;
  if (stamp > __atomic_load_n(&d->settled, __ATOMIC_ACQUIRE)) __atomic_store_n(&d->settled, stamp, __ATOMIC_RELEASE);
  __atomic_store_n(&d->replayed, false, __ATOMIC_RELEASE);
  return 0;
}

extern "C" int gpu_backend_synchronize(int device) {
  cudaStream_t s = gpu_stream(device);
  if (!s) return 1;
  if (devices[device].recording)
    return util_error("GPU %d cannot be synchronised while its work is being recorded", device);
  return sync_stream(device, s);
}

extern "C" int gpu_backend_device_properties(int device, char* name, size_t name_size, char* arch,
                                             size_t arch_size, size_t* memory_size) {
  cudaDeviceProp prop;
  if (cudaGetDeviceProperties(&prop, device) != cudaSuccess) {
    cudaGetLastError();
    return 1;
  }
  snprintf(name, name_size, "%s", prop.name);
  snprintf(arch, arch_size, "sm_%d%d", prop.major, prop.minor);
  *memory_size = prop.totalGlobalMem;
  return 0;
}

// The size class of n bytes (n > 0) and the bytes a block of that class holds: classes under
// 256 bytes round up to 256, larger ones to one of four steps per power of two.
static int size_class(size_t n, size_t* class_bytes) {
  if (n <= 256) {
    *class_bytes = 256;
    return 0;
  }
  int top = 63 - __builtin_clzll((unsigned long long)(n - 1));  // 2^top < n <= 2^(top + 1)
  size_t step = (size_t)1 << (top - 2 >= 0 ? top - 2 : 0);
  size_t quarters = ((n - 1) >> (top - 2)) - 3;                // 1..4 steps above 2^top
  *class_bytes = ((size_t)1 << top) + quarters * step;
  return 4 * top + (int)quarters - 1 - 4 * 8 + 1;            // classes from 2^8 upwards
}

// The stream pool operations go to: the device's own, or the side stream while recording.
static cudaStream_t pool_stream(const device_state* d) { return d->recording ? d->side : d->stream; }

// Hands cached blocks back to the pool, the largest classes first, until at most `keep` bytes
// stay cached; call with the lock held.
static void release_cached_locked(int device, size_t keep = 0) {
  device_state* d = &devices[device];
  for (int c = SIZE_CLASSES - 1; c >= 0 && d->cached > keep; c--) {
    while (d->cached > keep && d->free_lists[c]) {
      free_block* f = d->free_lists[c];
      d->free_lists[c] = f->next;
      cudaFreeAsync(f->ptr, pool_stream(d));
      d->cached -= f->bytes;
      delete f;
    }
  }
}

extern "C" int gpu_backend_alloc(int device, size_t nbytes, void** ptr) {
  *ptr = NULL;
  if (nbytes == 0) return 0;
  cudaStream_t s = gpu_stream(device);
  if (!s) return 1;
  size_t bytes;
  int c = size_class(nbytes, &bytes);
  device_state* d = &devices[device];
  pthread_mutex_lock(&lock);
  if (d->memory_limit) {  // cached memory counts too: trim it first, then refuse what is over
    const size_t limit = d->memory_limit, in_use = d->active;
    if (in_use + nbytes > limit) {
      pthread_mutex_unlock(&lock);
      return util_error("GPU %d: allocation of %zu bytes exceeds the memory limit (%zu bytes in use, limit %zu)",
                        device, nbytes, in_use, limit);
    }
    if (in_use + d->cached + bytes > limit)
      release_cached_locked(device, in_use + bytes < limit ? limit - in_use - bytes : 0);
  }
  free_block* f = c < SIZE_CLASSES ? d->free_lists[c] : NULL;
  if (f) {
    d->free_lists[c] = f->next;
    d->cached -= bytes;
    *ptr = f->ptr;
  }
  pthread_mutex_unlock(&lock);
  delete f;
  if (!*ptr) {
    if (d->recording) s = d->side;
    cudaError_t e = cudaMallocAsync(ptr, bytes, s);
    if (e == cudaErrorMemoryAllocation) {  // the cache may hold what is missing: give it back, retry
      cudaGetLastError();
      pthread_mutex_lock(&lock);
      release_cached_locked(device);
      pthread_mutex_unlock(&lock);
      e = cudaMallocAsync(ptr, bytes, s);
    }
    if (e == cudaSuccess && d->recording) e = cudaStreamSynchronize(s);
    if (e != cudaSuccess) {
      cudaGetLastError();
      *ptr = NULL;
      return util_error("GPU %d: cannot allocate %zu bytes: %s", device, nbytes, cudaGetErrorString(e));
    }
  }
  pthread_mutex_lock(&lock);
  d->active += nbytes;
  if (d->active > d->peak) d->peak = d->active;
  pthread_mutex_unlock(&lock);
  return 0;
}

extern "C" void gpu_backend_free(int device, void* ptr, size_t nbytes) {
  if (!ptr) return;
  cudaStream_t s = gpu_stream(device);
  if (!s) return;
  device_state* d = &devices[device];
  if (d->recording) {  // the graph being recorded may use it: it is freed with the graph
    pthread_mutex_lock(&lock);
    if (d->n_kept == d->kept_capacity) {
      size_t cap = d->kept_capacity ? 2 * d->kept_capacity : 64;
      gpu_block* grown = (gpu_block*)realloc(d->kept, cap * sizeof *grown);
      if (grown) {
        d->kept = grown;
        d->kept_capacity = cap;
      }
    }
    bool kept = d->n_kept < d->kept_capacity;
    if (kept) d->kept[d->n_kept++] = gpu_block{ptr, nbytes};
    pthread_mutex_unlock(&lock);
    if (kept) return;
    // No room to keep it: it must not be reused while the graph lives, so it leaks.
    util_error("GPU %d: out of host memory while recording; %zu device bytes leaked", device, nbytes);
    return;
  }
  size_t bytes;
  int c = size_class(nbytes, &bytes);
  free_block* f = c < SIZE_CLASSES ? new (std::nothrow) free_block{ptr, NULL, bytes} : NULL;
  pthread_mutex_lock(&lock);
  d->active -= nbytes;
  if (f && d->cached + bytes > d->cache_limit) {  // over the cache limit: back to the pool
    delete f;
    f = NULL;
  }
  if (f) {
    f->next = d->free_lists[c];
    d->free_lists[c] = f;
    d->cached += bytes;
  }
  pthread_mutex_unlock(&lock);
  // Stream-ordered: the block is reused only by work queued after every kernel that reads it.
  if (!f) gpu_check(cudaFreeAsync(ptr, s), "cudaFreeAsync");
}

extern "C" int gpu_copy_to_host(int device, void* dst, const void* src, size_t nbytes) {
  if (nbytes == 0) return 0;
  cudaStream_t s = gpu_stream(device);
  if (!s) return 1;
  if (devices[device].recording)
    return util_error("GPU %d: data cannot be read on the host while the GPU's work is being recorded", device);
  if (gpu_check(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDeviceToHost, s), "copy to host"))
    return 1;
  return sync_stream(device, s);
}

extern "C" int gpu_copy_to_device(int device, void* dst, const void* src, size_t nbytes) {
  if (nbytes == 0) return 0;
  cudaStream_t s = gpu_stream(device);
  if (!s) return 1;
  // From pageable memory this returns once the source has been staged, so the caller may free
  // or overwrite it afterwards. While recording, the upload is made at once, outside the graph.
  device_state* d = &devices[device];
  if (d->recording)
    return gpu_check(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyHostToDevice, d->side), "copy to device") ||
           gpu_check(cudaStreamSynchronize(d->side), "cudaStreamSynchronize");
  return gpu_check(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyHostToDevice, s), "copy to device");
}

extern "C" int gpu_backend_copy_async(int device, void* dst, const void* src, size_t nbytes) {
  if (nbytes == 0) return 0;
  cudaStream_t s = gpu_stream(device);
  if (!s) return 1;
  if (devices[device].recording) return util_error("GPU %d: no transfer while its work is being recorded", device);
  return gpu_check(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDefault, s), "asynchronous copy");
}

// Small page-locked blocks (readbacks, recorded steps' read rings: a few bytes each, one or two
// a generation) come from one slab of HOST_SMALL_BLOCKS blocks made once: cudaMallocHost took
// 1.5-2.7 ms a call on the H100 machine, paid by the first decode step of every generation.
constexpr size_t HOST_SMALL_BYTES = 4096;
constexpr int HOST_SMALL_BLOCKS = 64;
struct host_slab {
  unsigned char* base;  // HOST_SMALL_BLOCKS blocks of HOST_SMALL_BYTES, or NULL
  bool used[HOST_SMALL_BLOCKS];
};
static host_slab small_host;  // guarded by `lock`

extern "C" int gpu_backend_host_alloc(size_t nbytes, void** ptr) {
  *ptr = NULL;
  if (nbytes <= HOST_SMALL_BYTES) {
    pthread_mutex_lock(&lock);
    if (!small_host.base) {
      void* base = NULL;
      // Portable and mapped: any GPU's copies and kernels may use a block (mlxc_capture_read).
      const unsigned flags = cudaHostAllocPortable | cudaHostAllocMapped;
      if (cudaHostAlloc(&base, HOST_SMALL_BYTES * HOST_SMALL_BLOCKS, flags) == cudaSuccess)
        small_host.base = (unsigned char*)base;
      else
        cudaGetLastError();  // no slab: each block on its own below
    }
    for (int i = 0; small_host.base && i < HOST_SMALL_BLOCKS && !*ptr; i++)
      if (!small_host.used[i]) {
        small_host.used[i] = true;
        *ptr = small_host.base + (size_t)i * HOST_SMALL_BYTES;
      }
    pthread_mutex_unlock(&lock);
    if (*ptr) return 0;
  }
  if (gpu_check(cudaMallocHost(ptr, nbytes ? nbytes : 1), "page-locked host allocation")) {
    *ptr = NULL;
    return 1;
  }
  return 0;
}

extern "C" void gpu_backend_host_free(void* ptr) {
  if (!ptr) return;
  pthread_mutex_lock(&lock);
  const unsigned char* p = (const unsigned char*)ptr;
  const unsigned char* end = small_host.base + HOST_SMALL_BYTES * HOST_SMALL_BLOCKS;
  const bool small = small_host.base && p >= small_host.base && p < end;
  if (small) small_host.used[(p - small_host.base) / HOST_SMALL_BYTES] = false;
  pthread_mutex_unlock(&lock);
  if (!small) cudaFreeHost(ptr);
}

struct gpu_fence {
  int device;
  cudaEvent_t event;
};

extern "C" int gpu_backend_fence_new(int device, gpu_fence** fence) {
  *fence = NULL;
  if (!gpu_stream(device)) return 1;
  gpu_fence* f = new (std::nothrow) gpu_fence{device, NULL};
  if (!f) return util_error("out of memory");
  if (gpu_check(cudaEventCreateWithFlags(&f->event, cudaEventDisableTiming), "cudaEventCreate")) {
    delete f;
    return 1;
  }
  *fence = f;
  return 0;
}

extern "C" int gpu_backend_fence_record(gpu_fence* f) {
  cudaStream_t s = gpu_stream(f->device);
  if (!s) return 1;
  if (devices[f->device].recording) return util_error("GPU %d: no fence while its work is being recorded", f->device);
  return gpu_check(cudaEventRecord(f->event, s), "cudaEventRecord");
}

extern "C" int gpu_backend_fence_wait(gpu_fence* f) {
  if (!gpu_stream(f->device)) return 1;
  return gpu_check(cudaEventSynchronize(f->event), "cudaEventSynchronize");
}

extern "C" void gpu_backend_fence_free(gpu_fence* f) {
  if (!f) return;
  cudaEventDestroy(f->event);
  delete f;
}

extern "C" int gpu_backend_write(int device, void* dst, const void* src, size_t nbytes) {
  return gpu_copy_to_device(device, dst, src, nbytes);
}

extern "C" int gpu_recording_start(int device) {
  cudaStream_t s = gpu_stream(device);
  if (!s) return 1;
  device_state* d = &devices[device];
  if (d->recording) return util_error("GPU %d is already being recorded", device);
  if (!d->side && gpu_check(cudaStreamCreateWithFlags(&d->side, cudaStreamNonBlocking), "cudaStreamCreate"))
    return 1;
  // Work queued before the recording finishes first, so the side stream never overtakes it.
  if (sync_stream(device, s)) return 1;
  d->recording = true;
  return 0;
}

extern "C" void gpu_recording_stop(int device, gpu_block** kept, size_t* n_kept) {
  device_state* d = &devices[device];
  pthread_mutex_lock(&lock);
  d->recording = false;
  *kept = d->kept;
  *n_kept = d->n_kept;
  d->kept = NULL;
  d->n_kept = d->kept_capacity = 0;
  pthread_mutex_unlock(&lock);
}

extern "C" bool gpu_recording(int device) {
  return device >= 0 && device < MAX_GPUS && devices[device].recording;
}

extern "C" void gpu_backend_memory(int device, size_t* active, size_t* peak, size_t* cache) {
  *active = *peak = *cache = 0;
  if (!gpu_stream(device)) return;
  pthread_mutex_lock(&lock);
  device_state* d = &devices[device];
  *active = d->active;
  *peak = d->peak;
  uint64_t reserved = 0, used = 0;
  cudaMemPoolGetAttribute(d->pool, cudaMemPoolAttrReservedMemCurrent, &reserved);
  cudaMemPoolGetAttribute(d->pool, cudaMemPoolAttrUsedMemCurrent, &used);
  *cache = (reserved > used ? (size_t)(reserved - used) : 0) + d->cached;
  pthread_mutex_unlock(&lock);
}

extern "C" void gpu_backend_reset_peak(int device) {
  if (!gpu_stream(device)) return;
  pthread_mutex_lock(&lock);
  devices[device].peak = devices[device].active;
  pthread_mutex_unlock(&lock);
}

// Trimming waits for the stream, which a recording cannot contain.
static int refuse_while_recording(int device, const char* what) {
  return devices[device].recording
             ? util_error("GPU %d: cannot %s while the GPU's work is being recorded", device, what)
             : 0;
}

extern "C" int gpu_backend_clear_cache(int device) {
  cudaStream_t s = gpu_stream(device);
  if (!s || refuse_while_recording(device, "clear the memory cache")) return 1;
  pthread_mutex_lock(&lock);
  release_cached_locked(device);
  pthread_mutex_unlock(&lock);
  if (sync_stream(device, s)) return 1;
  return gpu_check(cudaMemPoolTrimTo(devices[device].pool, 0), "cudaMemPoolTrimTo");
}

extern "C" void gpu_backend_clear_caches(void) {
  for (int i = 0; i < MAX_GPUS; i++)
    if (devices[i].ready && !devices[i].recording) gpu_backend_clear_cache(i);
}

extern "C" int gpu_backend_set_limit(int device, enum gpu_limit which, size_t limit, size_t* prior) {
  cudaStream_t s = gpu_stream(device);
  if (!s || (which == GPU_LIMIT_WIRED && refuse_while_recording(device, "set the wired limit"))) return 1;
  device_state* d = &devices[device];
  pthread_mutex_lock(&lock);
  size_t* slot = which == GPU_LIMIT_MEMORY  ? &d->memory_limit
                 : which == GPU_LIMIT_CACHE ? &d->cache_limit
                                            : &d->wired_limit;
  *prior = *slot;
  *slot = limit;
  if (which == GPU_LIMIT_CACHE) release_cached_locked(device, limit);
  pthread_mutex_unlock(&lock);
  if (which != GPU_LIMIT_WIRED) return 0;
  // The pool keeps up to the limit reserved at synchronisation points; trimmed to it now.
  uint64_t keep = release_threshold(limit);
  if (gpu_check(cudaMemPoolSetAttribute(d->pool, cudaMemPoolAttrReleaseThreshold, &keep),
                "cudaMemPoolSetAttribute") ||
      sync_stream(device, s))
    return 1;
  return gpu_check(cudaMemPoolTrimTo(d->pool, limit), "cudaMemPoolTrimTo");
}
