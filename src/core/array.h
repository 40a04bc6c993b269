/* The array core: buffers, arrays (handles' targets) and graph nodes.
 *
 * An array is either evaluated (it views a buffer through shape, strides and offset) or pending
 * (it is output `output_index` of `node`, which holds its inputs). Evaluation runs nodes in
 * topological order and then detaches them, which releases their inputs. */
#ifndef MLXC_CORE_ARRAY_H
#define MLXC_CORE_ARRAY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "mlx/c/array.h"
#include "mlx/c/stream.h"
#include "core/dtype.h"

#define CORE_MAX_NDIM 32

/* Storage shared by an array and its views. */
typedef struct core_buffer {
  atomic_int refs;
  void* data;
  size_t nbytes;
  /* Who frees `data`: the allocator (NULL release), or an owner's release function. */
  void (*release)(struct core_buffer* buffer);
  void* owner;             /* for `release`: user payload, mapping, ... */
  void (*owner_dtor)(void*);
  /* Dual residency (GPU builds): a copy in GPU memory, and which copies hold the current data.
   * Buffers written by GPU kernels start device-only (data NULL, host_valid false); the host
   * copy is made on first host access. CPU-only builds keep host_valid true. */
  void* device_data;
  int device_index;
  bool host_valid, device_valid;
  /* Recordings (core/capture.h) holding this buffer, and its slot in the one in progress. */
  int capture_holds;
  uint64_t capture_id;
  size_t capture_slot;
  /* The stamp of the last GPU node that wrote it (0: none), by which the backend tells whether
   * that write may still be running (gpu_backend_write_stamp). */
  uint64_t gpu_write_stamp;
} core_buffer;

typedef struct core_node core_node;
typedef struct core_stream core_stream;

typedef struct core_array {
  atomic_int refs;
  mlx_dtype dtype;
  int ndim;
  int* shape;              /* ndim entries (points into shape_inline when small) */
  int64_t* strides;        /* in elements; valid once evaluated */
  size_t size;             /* number of elements */
  bool evaluated;
  bool row_contiguous;     /* strides are the row-major ones of shape, offset any */
  core_buffer* buffer;     /* NULL for empty arrays or when not evaluated */
  int64_t offset;          /* in elements, into buffer */
  core_node* node;         /* producer while pending */
  int output_index;
  core_stream* stream;     /* where the producing node runs */
  int shape_inline[6];
  int64_t strides_inline[6];
} core_array;

/* An op: how to compute a node's outputs on the CPU (and later, other devices). */
typedef struct core_op {
  const char* name;
  int code;                /* lets one kernel serve a family of ops (which binary op, ...) */
  /* Computes every output of `node`. Outputs arrive with dtype and shape set and no buffer;
   * the kernel sets buffer/offset/strides (core_array_alloc_contiguous or a view). */
  int (*eval_cpu)(core_node* node, core_array** outputs);
  /* Optional device-specific kernel; when NULL for a GPU stream the CPU kernel runs. */
  int (*eval_gpu)(core_node* node, core_array** outputs);
  void (*free_params)(void* params);
} core_op;

struct core_node {
  atomic_int refs;         /* one per output array pointing here, plus evaluation's hold */
  const core_op* op;
  void* params;            /* owned; freed with op->free_params or free() */
  int n_inputs;
  core_array** inputs;     /* strong references */
  int n_outputs;
  core_array** outputs;    /* weak: cleared when an output array dies */
  core_stream* stream;
  uint64_t visit_mark;     /* evaluation bookkeeping */
};

/* Handles. */
static inline core_array* core_ctx(mlx_array a) { return (core_array*)a.ctx; }
static inline mlx_array core_handle(core_array* a) { return (mlx_array){a}; }

/* Creation and lifetime. core_array_create returns a pending-less, unevaluated array with one
 * reference, or NULL (error reported) when out of memory or the shape is invalid. */
core_array* core_array_create(const int* shape, int ndim, mlx_dtype dtype);
void core_array_retain(core_array* a);
void core_array_release(core_array* a);

/* Gives `a` fresh row-major storage for its shape and dtype. */
int core_array_alloc_contiguous(core_array* a);
/* Makes `out` a view of `in`'s buffer with the given strides and element offset. */
void core_array_set_view(core_array* out, const core_array* in, const int64_t* strides, int64_t offset);
/* MLX's buffer donation, for kernels whose output overwrites a copy of an input (slice_update on
 * a KV cache): when nothing else can observe `in` (held only by the running node, the sole user
 * of an allocator-owned buffer, row-major from offset 0, out's dtype and size, evaluated), `out`
 * takes over its buffer and the kernel writes in place. `device` is the GPU index the kernel
 * writes on (the other copy of the data becomes stale), or -1 for a CPU kernel. Returns false,
 * changing nothing, when donation is not safe. */
bool core_array_donate(core_array* in, core_array* out, int device);
/* Row-major strides of a shape. */
void core_row_strides(const int* shape, int ndim, int64_t* strides);
/* Recomputes row_contiguous from shape/strides. */
void core_array_update_flags(core_array* a);
/* Makes a device-only buffer readable on the host (allocates host memory, copies synchronously);
 * returns its host data, or NULL with an error reported. */
void* core_buffer_host_slow(core_buffer* b);
/* Address of element 0 (after the offset) in host memory; NULL when there is no buffer (or
 * when copying a device-only buffer to the host failed, error reported). */
static inline void* core_array_ptr(const core_array* a) {
  core_buffer* b = a->buffer;
  if (!b) return NULL;
  char* data = b->host_valid ? (char*)b->data : (char*)core_buffer_host_slow(b);
  return data ? data + a->offset * (int64_t)core_dtype_size(a->dtype) : NULL;
}

/* Buffers. */
core_buffer* core_buffer_alloc(size_t nbytes);
core_buffer* core_buffer_wrap(void* data, size_t nbytes, void (*release)(core_buffer*), void* owner,
                              void (*owner_dtor)(void*));
void core_buffer_release(core_buffer* b);
/* A buffer that lives only in GPU `device`'s memory (host_valid false); NULL, error reported,
 * when the device allocation fails. */
core_buffer* core_buffer_alloc_device(size_t nbytes, int device);

/* Graph. Builds a node of `op` over inputs and creates its outputs (dtypes/shapes given);
 * takes ownership of `params` even on failure. Output arrays have one reference each. */
int core_node_create(const core_op* op, void* params, core_array* const* inputs, int n_inputs,
                     int n_outputs, const mlx_dtype* dtypes, const int* const* shapes,
                     const int* ndims, core_stream* stream, core_array** outputs);
/* Single-output convenience form; returns the output or NULL (error reported). */
core_array* core_node_single(const core_op* op, void* params, core_array* const* inputs,
                             int n_inputs, mlx_dtype dtype, const int* shape, int ndim,
                             core_stream* stream);

/* Evaluates arrays (and everything they depend on). */
int core_eval(core_array* const* arrays, int n);
/* Evaluates and ensures a row-contiguous layout, copying if needed. */
int core_eval_contiguous(core_array* a);

/* Assigns result to *res, releasing what *res held (result's reference moves into *res). */
void core_assign(mlx_array* res, core_array* result);

#endif
