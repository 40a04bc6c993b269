/* CPU FFT kernel: our own transforms in double precision, iterative radix-2 for powers of two
 * and Bluestein's chirp-z convolution (through a power-of-two FFT) for every other length.
 *
 * Every transform works on one complex double buffer, `work`, shaped like the output except that
 * each transformed axis holds its full signal length (rfft's spectrum is cropped to n/2 + 1 on
 * the way out; irfft's half spectrum is extended by Hermitian symmetry before its last axis).
 * Real transforms are complex transforms of real data: twice the arithmetic of a dedicated real
 * FFT, one code path. */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/kernels.h"
#include "backend/cpu/strided.h"
#include "backend/cpu/threadpool.h"
#include "ops/fft_params.h"
#include "util/error.h"

typedef struct {
  double re, im;
} cpx;

static inline cpx cpx_mul(cpx a, cpx b) {
  return (cpx){a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re};
}
static inline cpx cpx_conj(cpx a) { return (cpx){a.re, -a.im}; }

/* ---- one-dimensional transforms ---- */

/* How to transform length n. Immutable once built, so threads share it; each thread brings its
 * own scratch of `scratch_len` entries. */
typedef struct fft_plan {
  int n;
  cpx* twiddles;          /* powers of two: e^{-2 pi i k / n}, k < n / 2 */
  int m;                  /* Bluestein: convolution length, a power of two >= 2n - 1; else 0 */
  cpx* chirp;             /* e^{-i pi k^2 / n}, k < n */
  cpx* filter;            /* FFT_m of the wrapped conjugate chirp, divided by m */
  struct fft_plan* inner; /* the power-of-two plan of length m */
  int scratch_len;
} fft_plan;

static bool is_pow2(int n) { return n > 0 && (n & (n - 1)) == 0; }

static void fft_plan_free(fft_plan* p) {
  if (!p) return;
  free(p->twiddles);
  free(p->chirp);
  free(p->filter);
  fft_plan_free(p->inner);
  free(p);
}

/* In-place forward DFT of a power-of-two length: bit-reversal, then log2(n) butterfly passes. */
static void fft_radix2(const fft_plan* p, cpx* x) {
  int n = p->n;
  for (int i = 1, j = 0; i < n; i++) {
    int bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) {
      cpx t = x[i];
      x[i] = x[j];
      x[j] = t;
    }
  }
  for (int len = 2; len <= n; len <<= 1) {
    int half = len / 2, step = n / len;
    for (int start = 0; start < n; start += len) {
      for (int k = 0; k < half; k++) {
        cpx u = x[start + k], v = cpx_mul(x[start + k + half], p->twiddles[k * step]);
        x[start + k] = (cpx){u.re + v.re, u.im + v.im};
        x[start + k + half] = (cpx){u.re - v.re, u.im - v.im};
      }
    }
  }
}

/* Forward DFT of any length as a convolution: X_k = c_k sum_j (x_j c_j) conj(c_{k-j}) with the
 * chirp c_k = e^{-i pi k^2 / n}. `a` is m scratch entries. The inverse FFT of the convolution is
 * the forward one between conjugations (filter already holds the 1/m). */
static void fft_bluestein(const fft_plan* p, cpx* x, cpx* a) {
  int n = p->n, m = p->m;
  for (int k = 0; k < n; k++) a[k] = cpx_mul(x[k], p->chirp[k]);
  memset(a + n, 0, sizeof(cpx) * (size_t)(m - n));
  fft_radix2(p->inner, a);
  for (int k = 0; k < m; k++) a[k] = cpx_conj(cpx_mul(a[k], p->filter[k]));
  fft_radix2(p->inner, a);
  for (int k = 0; k < n; k++) x[k] = cpx_mul(p->chirp[k], cpx_conj(a[k]));
}

/* In-place unscaled DFT of x (p->n entries); the inverse one conjugates around the forward. */
static void fft_run(const fft_plan* p, cpx* x, bool inverse, cpx* scratch) {
  if (inverse)
    for (int k = 0; k < p->n; k++) x[k].im = -x[k].im;
  if (p->m)
    fft_bluestein(p, x, scratch);
  else
    fft_radix2(p, x);
  if (inverse)
    for (int k = 0; k < p->n; k++) x[k].im = -x[k].im;
}

/* A plan for length n, or NULL when out of memory. */
static fft_plan* fft_plan_alloc(int n) {
  fft_plan* p = calloc(1, sizeof *p);
  if (!p) return NULL;
  p->n = n;
  if (is_pow2(n)) {
    p->twiddles = malloc(sizeof(cpx) * (size_t)(n / 2 + 1));
    if (!p->twiddles) goto fail;
    for (int k = 0; k < n / 2; k++) {
      double angle = -2.0 * M_PI * k / n;
      p->twiddles[k] = (cpx){cos(angle), sin(angle)};
    }
    return p;
  }
  int m = 1;
  while (m < 2 * n - 1) m <<= 1;
  p->m = p->scratch_len = m;
  p->chirp = malloc(sizeof(cpx) * (size_t)n);
  p->filter = calloc((size_t)m, sizeof(cpx));
  p->inner = fft_plan_alloc(m);
  if (!p->chirp || !p->filter || !p->inner) goto fail;
  for (int k = 0; k < n; k++) {
    /* k^2 mod 2n keeps the angle below 2 pi, so it stays accurate for large k. */
    int64_t k2 = (int64_t)k * k % (2 * (int64_t)n);
    double angle = -M_PI * (double)k2 / n;
    p->chirp[k] = (cpx){cos(angle), sin(angle)};
  }
  p->filter[0] = cpx_conj(p->chirp[0]);
  for (int k = 1; k < n; k++) p->filter[k] = p->filter[m - k] = cpx_conj(p->chirp[k]);
  fft_radix2(p->inner, p->filter);
  for (int k = 0; k < m; k++) {
    p->filter[k].re /= m;
    p->filter[k].im /= m;
  }
  return p;
fail:
  fft_plan_free(p);
  return NULL;
}

/* ---- transforms along one axis of the work buffer ---- */

typedef struct {
  cpx* work;
  const fft_plan* plan;
  int64_t dim, stride;      /* the axis' length and stride in work */
  bool inverse;
  /* irfft's last axis: the first `half` entries hold the spectrum; the rest is filled by
   * Hermitian symmetry, and the real parts times `scale` go to out (float32, same layout). */
  int64_t half;
  float* real_out;
  double scale;
  atomic_int failed;
} axis_job;

static void axis_chunk(void* ctx, int64_t begin, int64_t end) {
  axis_job* job = ctx;
  int64_t dim = job->dim, stride = job->stride;
  cpx* line = malloc(sizeof(cpx) * (size_t)(dim + job->plan->scratch_len));
  if (!line) {
    atomic_store(&job->failed, 1);
    return;
  }
  cpx* scratch = line + dim;
  for (int64_t l = begin; l < end; l++) {
    int64_t base = (l / stride) * dim * stride + l % stride;
    cpx* src = job->work + base;
    if (job->real_out) {
      for (int64_t k = 0; k < job->half; k++) line[k] = src[k * stride];
      for (int64_t k = job->half; k < dim; k++) line[k] = cpx_conj(line[dim - k]);
    } else {
      for (int64_t k = 0; k < dim; k++) line[k] = src[k * stride];
    }
    fft_run(job->plan, line, job->inverse, scratch);
    if (job->real_out) {
      float* dst = job->real_out + base;
      for (int64_t k = 0; k < dim; k++) dst[k * stride] = (float)(line[k].re * job->scale);
    } else {
      for (int64_t k = 0; k < dim; k++) src[k * stride] = line[k];
    }
  }
  free(line);
}

/* Transforms every line of `work` (row-major, `shape`) along `axis`. */
static int transform_axis(axis_job* job, const int* shape, int ndim, int axis) {
  job->dim = shape[axis];
  job->stride = 1;
  for (int d = axis + 1; d < ndim; d++) job->stride *= shape[d];
  int64_t total = 1;
  for (int d = 0; d < ndim; d++) total *= shape[d];
  int64_t lines = total / job->dim;
  fft_plan* plan = fft_plan_alloc(shape[axis]);
  if (!plan) return util_error("fft: out of memory planning a transform of length %d", shape[axis]);
  job->plan = plan;
  atomic_init(&job->failed, 0);
  /* Enough lines per chunk to outweigh waking a thread (~n log n work each). */
  int64_t min_lines = 1 + (1 << 14) / job->dim;
  cpu_parallel_for(lines, min_lines, axis_chunk, job);
  fft_plan_free(plan);
  if (atomic_load(&job->failed)) return util_error("fft: out of memory");
  return 0;
}

/* ---- moving data between arrays and the work buffer ---- */

typedef enum { LOAD_FLOAT32, LOAD_COMPLEX64, STORE_COMPLEX64 } move_kind;

typedef struct {
  move_kind kind;
  char* array;  /* the array's element 0 */
  cpx* work;
  double scale;
} move_ctx;

/* Operand 0 is the array (in its elements), operand 1 the work buffer. */
static void move_row(void* ctx, const int64_t* offsets, const int64_t* strides, int64_t n) {
  move_ctx* c = ctx;
  cpx* w = c->work + offsets[1];
  int64_t ws = strides[1], as = strides[0];
  switch (c->kind) {
    case LOAD_FLOAT32: {
      const float* a = (const float*)c->array + offsets[0];
      for (int64_t i = 0; i < n; i++) w[i * ws] = (cpx){a[i * as], 0};
      break;
    }
    case LOAD_COMPLEX64: {
      const float* a = (const float*)c->array + 2 * offsets[0];
      for (int64_t i = 0; i < n; i++) w[i * ws] = (cpx){a[2 * i * as], a[2 * i * as + 1]};
      break;
    }
    case STORE_COMPLEX64: {
      float* a = (float*)c->array + 2 * offsets[0];
      for (int64_t i = 0; i < n; i++) {
        a[2 * i * as] = (float)(w[i * ws].re * c->scale);
        a[2 * i * as + 1] = (float)(w[i * ws].im * c->scale);
      }
      break;
    }
  }
}

/* Moves the elements of `box` (a shape no larger than either operand's) between an array with
 * strides array_strides and the work buffer with shape work_shape. */
static void move_box(move_ctx* c, const int* box, int ndim, const int64_t* array_strides,
                     const int* work_shape) {
  int64_t work_strides[CORE_MAX_NDIM];
  core_row_strides(work_shape, ndim, work_strides);
  for (int d = 0; d < ndim; d++)
    if (box[d] == 0) return;
  const int64_t* strides[2] = {array_strides, work_strides};
  cpu_for_each_row(box, ndim, 2, strides, move_row, c);
}

int cpu_eval_fft(core_node* node, core_array** outputs) {
  const fft_params* p = node->params;
  core_array *in = node->inputs[0], *out = outputs[0];
  if (core_array_alloc_contiguous(out)) return 1;
  if (out->size == 0) return 0;
  int ndim = out->ndim, last = p->axes[p->n_axes - 1];
  bool irfft = p->real && p->inverse;
  /* The work shape: the output's, with each transformed axis at its full signal length. */
  int shape[CORE_MAX_NDIM], box[CORE_MAX_NDIM];
  memcpy(shape, out->shape, sizeof(int) * (size_t)ndim);
  for (int i = 0; i < p->n_axes; i++) shape[p->axes[i]] = p->length[i];
  int64_t total = 1;
  for (int d = 0; d < ndim; d++) total *= shape[d];
  cpx* work = calloc((size_t)total, sizeof(cpx));
  if (!work) return util_error("fft: out of memory for %lld work entries", (long long)total);

  /* Load the input, cropped to the work shape (irfft reads only n/2 + 1 entries of its last
   * axis); what lies beyond the input stays zero: that is the zero padding. */
  for (int d = 0; d < ndim; d++) box[d] = in->shape[d] < shape[d] ? in->shape[d] : shape[d];
  if (irfft && box[last] > p->length[p->n_axes - 1] / 2 + 1)
    box[last] = p->length[p->n_axes - 1] / 2 + 1;
  move_ctx load = {in->dtype == MLX_FLOAT32 ? LOAD_FLOAT32 : LOAD_COMPLEX64,
                   (char*)core_array_ptr(in), work, 1.0};
  move_box(&load, box, ndim, in->strides, shape);

  int status = 0;
  axis_job job = {.work = work, .inverse = p->inverse};
  for (int i = 0; i < p->n_axes - (irfft ? 1 : 0) && !status; i++)
    status = transform_axis(&job, shape, ndim, p->axes[i]);
  if (!status && irfft) {
    job.half = p->length[p->n_axes - 1] / 2 + 1;
    job.real_out = core_array_ptr(out);
    job.scale = p->scale;
    status = transform_axis(&job, shape, ndim, last);
  } else if (!status) {
    move_ctx store = {STORE_COMPLEX64, (char*)core_array_ptr(out), work, p->scale};
    move_box(&store, out->shape, ndim, out->strides, shape);
  }
  free(work);
  return status;
}
