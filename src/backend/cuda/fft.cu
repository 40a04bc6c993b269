// FFT on the GPU through cuFFT (CUDA toolkit), computed as the CPU kernel (backend/cpu/fft.c)
// computes it: one complex double buffer shaped like the output with each transformed axis at its
// full signal length, the input cropped or zero-padded into it, a double-precision complex
// transform (Z2Z) per axis in the order given, then the output cropped out of it times the
// scale; irfft fills its last axis's upper half by Hermitian symmetry and keeps the real parts.
// Plans are kept per device, keyed by line length and batch layout (a few dozen at most, the
// least recently used one destroyed past that after a wait for the device's stream), so that a
// call neither builds plans nor waits: the transforms stay queued like any other kernel.
#include <cuda_runtime.h>
#include <cufft.h>
#include <pthread.h>
#include <stdint.h>

#include "backend/cuda/common.cuh"
#include "backend/cuda/launch.h"
#include "backend/cuda/strided.cuh"
#include "backend/gpu.h"

namespace {

struct fft_geom {
  int ndim;
  int shape[GPU_MAX_NDIM];  // the work buffer's (row-major)
  int box[GPU_MAX_NDIM];    // the input's part that is read
  int64_t in_st[GPU_MAX_NDIM];
  int out_shape[GPU_MAX_NDIM];
};

// The work buffer from the input: inside the box the input's value (float32 as a real value),
// zero elsewhere (the padding).
__global__ void fft_load(double2* work, const void* in, bool complex_in, fft_geom G, int64_t total) {
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < total; e += (int64_t)gridDim.x * blockDim.x) {
    int64_t rest = e, off = 0;
    bool inside = true;
    for (int d = G.ndim - 1; d >= 0; d--) {
      const int64_t c = rest % G.shape[d];
      rest /= G.shape[d];
      inside = inside && c < G.box[d];
      off += c * G.in_st[d];
    }
    double2 v = make_double2(0.0, 0.0);
    if (inside) {
      if (complex_in) {
        const float2 z = ((const float2*)in)[off];
        v = make_double2(z.x, z.y);
      } else {
        v = make_double2(((const float*)in)[off], 0.0);
      }
    }
    work[e] = v;
  }
}

// irfft's last axis (lines of `dim` at `stride`): entries from `half` on are the conjugates of
// their mirror images, which all lie below half.
__global__ void hermitian_fill(double2* work, int64_t lines, int64_t dim, int64_t stride, int64_t half) {
  const int64_t upper = dim - half, total = lines * upper;
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < total; e += (int64_t)gridDim.x * blockDim.x) {
    const int64_t l = e / upper, k = half + e % upper;
    const int64_t base = (l / stride) * dim * stride + l % stride;
    const double2 m = work[base + (dim - k) * stride];
    work[base + k * stride] = make_double2(m.x, -m.y);
  }
}

// The output (row-major out_shape, at most the work shape) times scale: complex64, or the real
// parts into float32.
__global__ void fft_store(void* out, bool real_out, const double2* work, fft_geom G, int64_t total, double scale) {
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < total; e += (int64_t)gridDim.x * blockDim.x) {
    int64_t rest = e, off = 0, mul = 1;
    for (int d = G.ndim - 1; d >= 0; d--) {
      const int64_t c = rest % G.out_shape[d];
      rest /= G.out_shape[d];
      off += c * mul;
      mul *= G.shape[d];
    }
    const double2 v = work[off];
    if (real_out) ((float*)out)[e] = (float)(v.x * scale);
    else ((float2*)out)[e] = make_float2((float)(v.x * scale), (float)(v.y * scale));
  }
}

int fft_check(cufftResult r, const char* what) {
  return r == CUFFT_SUCCESS ? 0 : util_error("cuFFT: %s failed (error %d)", what, (int)r);
}

// A plan of `lines` lines of n values: contiguous lines, or (interleaved) lines `lines` apart,
// one after the other in memory.
struct plan_entry {
  int device, n, lines;
  bool interleaved;
  uint64_t used;  // the cache's clock at the last use
  cufftHandle plan;
};
constexpr int PLAN_CACHE = 32;
plan_entry plan_cache[PLAN_CACHE];
int plan_count;
uint64_t plan_clock;
pthread_mutex_t plan_lock = PTHREAD_MUTEX_INITIALIZER;

// The cached plan for (device, n, lines, interleaved), made on a miss. Called with plan_lock held.
int plan_for(int device, cudaStream_t s, int n, int lines, bool interleaved, cufftHandle* out) {
  for (int i = 0; i < plan_count; i++) {
    plan_entry* e = &plan_cache[i];
    if (e->device == device && e->n == n && e->lines == lines && e->interleaved == interleaved) {
      e->used = ++plan_clock;
      *out = e->plan;
      return 0;
    }
  }
  cufftHandle plan;
  if (fft_check(interleaved ? cufftPlanMany(&plan, 1, &n, &n, lines, 1, &n, lines, 1, CUFFT_Z2Z, lines)
                            : cufftPlanMany(&plan, 1, &n, NULL, 1, n, NULL, 1, n, CUFFT_Z2Z, lines),
                "plan"))
    return 1;
  *out = plan;
  if (plan_count < PLAN_CACHE) {
    plan_cache[plan_count++] = plan_entry{device, n, lines, interleaved, ++plan_clock, plan};
    return 0;
  }
  // A full cache: the least recently used plan goes, once its device's queued transforms are done.
  plan_entry* old = &plan_cache[0];
  for (int i = 1; i < PLAN_CACHE; i++)
    if (plan_cache[i].used < old->used) old = &plan_cache[i];
  const plan_entry gone = *old;
  *old = plan_entry{device, n, lines, interleaved, ++plan_clock, plan};
  cudaStream_t owner = gone.device == device ? s : gpu_stream(gone.device);
  const int st = !owner || gpu_check(cudaStreamSynchronize(owner), "fft plan eviction");
  if (!st) cufftDestroy(gone.plan);
  return st || (owner != s && !gpu_stream(device));  // back on the caller's device
}

// Transforms every line of work (row-major `shape`) along `axis`, in place, on s.
int transform_axis(int device, cudaStream_t s, double2* work, const int* shape, int ndim, int axis, bool inverse) {
  int n = shape[axis];
  int64_t inner = 1, outer = 1;
  for (int d = axis + 1; d < ndim; d++) inner *= shape[d];
  for (int d = 0; d < axis; d++) outer *= shape[d];
  if (inner > 0x7fffffff || outer > 0x7fffffff) return util_error("fft: too many lines for cuFFT");
  // Lines next to each other (the last axis) are one batch; otherwise a batch of the `inner`
  // interleaved lines per outer index.
  pthread_mutex_lock(&plan_lock);
  cufftHandle plan;
  int st = plan_for(device, s, n, (int)(inner == 1 ? outer : inner), inner > 1, &plan);
  if (!st) st = fft_check(cufftSetStream(plan, s), "stream");
  const int dir = inverse ? CUFFT_INVERSE : CUFFT_FORWARD;
  for (int64_t o = 0; o < (inner == 1 ? 1 : outer) && !st; o++) {
    cufftDoubleComplex* p = (cufftDoubleComplex*)(work + o * (int64_t)n * inner);
    st = fft_check(cufftExecZ2Z(plan, p, p, dir), "transform");
  }
  pthread_mutex_unlock(&plan_lock);
  return st;
}

}  // namespace

extern "C" int gpu_launch_fft(int device, const void* in, bool complex_in, const int64_t* in_strides, const int* box,
                              const int* work_shape, int ndim, const int* axes, int n_axes, bool inverse, bool irfft,
                              void* out, const int* out_shape, double scale) {
  if (ndim < 1 || ndim > GPU_MAX_NDIM || n_axes < 1) return util_error("fft: unsupported shape for the GPU");
  cudaStream_t s = gpu_stream(device);
  if (!s) return 1;
  fft_geom G;
  G.ndim = ndim;
  int64_t total = 1, out_total = 1;
  for (int d = 0; d < ndim; d++) {
    G.shape[d] = work_shape[d], G.box[d] = box[d], G.in_st[d] = in_strides[d], G.out_shape[d] = out_shape[d];
    total *= work_shape[d];
    out_total *= out_shape[d];
  }
  double2* work = NULL;
  const size_t bytes = sizeof(double2) * (size_t)total;
  if (gpu_backend_alloc(device, bytes, (void**)&work)) return 1;
  fft_load<<<grid_for(total, 256), 256, 0, s>>>(work, in, complex_in, G, total);
  int st = GPU_LAUNCHED("fft load");
  for (int i = 0; i < n_axes - (irfft ? 1 : 0) && !st; i++)
    st = transform_axis(device, s, work, G.shape, ndim, axes[i], inverse);
  if (!st && irfft) {
    const int last = axes[n_axes - 1];
    int64_t stride = 1;
    for (int d = last + 1; d < ndim; d++) stride *= G.shape[d];
    const int64_t dim = G.shape[last], half = dim / 2 + 1;
    if (dim > half) {
      hermitian_fill<<<grid_for(total / dim * (dim - half), 256), 256, 0, s>>>(work, total / dim, dim, stride, half);
      st = GPU_LAUNCHED("fft hermitian fill");
    }
    if (!st) st = transform_axis(device, s, work, G.shape, ndim, last, true);
  }
  if (!st) {
    fft_store<<<grid_for(out_total, 256), 256, 0, s>>>(out, irfft, work, G, out_total, scale);
    st = GPU_LAUNCHED("fft store");
  }
  gpu_backend_free(device, work, bytes);  // stream-ordered: after the transforms
  return st;
}
