/* Building graph nodes and evaluating them in topological order without recursion. */
#include "core/graph.h"

#include <stdlib.h>
#include <string.h>

#include "backend/cpu/copy.h"
#include "backend/gpu.h"
#include "core/capture.h"
#include "core/device.h"
#include "core/profile.h"
#include "util/error.h"

static atomic_uint_fast64_t eval_epoch = 1;

static void free_params(const core_op* op, void* params) {
  if (!params) return;
  if (op->free_params)
    op->free_params(params);
  else
    free(params);
}

void core_node_destroy(core_node* node, core_array* dying) {
  for (int i = 0; i < node->n_outputs; i++) {
    core_array* o = node->outputs[i];
    if (o && o != dying && atomic_load(&o->refs) == 0) core_array_free_memory(o);
  }
  free_params(node->op, node->params);
  free(node->inputs);
  free(node->outputs);
  free(node);
}

int core_node_create(const core_op* op, void* params, core_array* const* inputs, int n_inputs,
                     int n_outputs, const mlx_dtype* dtypes, const int* const* shapes,
                     const int* ndims, core_stream* stream, core_array** outputs) {
  for (int i = 0; i < n_outputs; i++) outputs[i] = NULL;
  core_node* node = calloc(1, sizeof *node);
  if (node) {
    node->inputs = calloc((size_t)(n_inputs ? n_inputs : 1), sizeof *node->inputs);
    node->outputs = calloc((size_t)n_outputs, sizeof *node->outputs);
  }
  if (!node || !node->inputs || !node->outputs) {
    if (node) {
      free(node->inputs);
      free(node->outputs);
      free(node);
    }
    free_params(op, params);
    return util_error("out of memory building graph node %s", op->name);
  }
  node->op = op;
  node->params = params;
  node->stream = stream;
  node->n_outputs = n_outputs;
  for (int i = 0; i < n_outputs; i++) {
    outputs[i] = core_array_create(shapes[i], ndims[i], dtypes[i]);
    if (!outputs[i]) {
      for (int j = 0; j < i; j++) core_array_free_memory(outputs[j]);
      for (int j = 0; j < n_outputs; j++) outputs[j] = NULL;
      free_params(op, params);
      free(node->inputs);
      free(node->outputs);
      free(node);
      return 1;
    }
    outputs[i]->node = node;
    outputs[i]->output_index = i;
    outputs[i]->stream = stream;
    node->outputs[i] = outputs[i];
  }
  atomic_init(&node->refs, n_outputs);
  node->n_inputs = n_inputs;
  for (int i = 0; i < n_inputs; i++) {
    node->inputs[i] = inputs[i];
    core_array_retain(inputs[i]);
  }
  return 0;
}

core_array* core_node_single(const core_op* op, void* params, core_array* const* inputs,
                             int n_inputs, mlx_dtype dtype, const int* shape, int ndim,
                             core_stream* stream) {
  core_array* out = NULL;
  const int* shapes[1] = {shape};
  if (core_node_create(op, params, inputs, n_inputs, 1, &dtype, shapes, &ndim, stream, &out))
    return NULL;
  return out;
}

/* ---- evaluation ---- */

typedef struct {
  void** items;
  size_t count, capacity;
} ptr_list;

static int list_push(ptr_list* l, void* p) {
  if (l->count == l->capacity) {
    size_t cap = l->capacity ? l->capacity * 2 : 64;
    void** items = realloc(l->items, cap * sizeof *items);
    if (!items) return util_error("out of memory during evaluation");
    l->items = items;
    l->capacity = cap;
  }
  l->items[l->count++] = p;
  return 0;
}

/* Releases evaluation's hold on a node; on the last reference the node goes and its inputs
 * are released. */
static void node_release(core_node* node) {
  if (atomic_fetch_sub(&node->refs, 1) != 1) return;
  core_array** inputs = node->inputs;
  int n = node->n_inputs;
  node->n_inputs = 0;
  for (int i = 0; i < n; i++) core_array_release(inputs[i]);
  core_node_destroy(node, NULL);
}

/* Post-order over pending producers of `roots`, each node once; holds a reference to each. */
static int topological_order(core_array* const* roots, int n_roots, ptr_list* order) {
  uint64_t mark = atomic_fetch_add(&eval_epoch, 1);
  ptr_list stack = {0}; /* pairs (node, next input index) encoded as two entries */
  int status = 0;
  for (int r = 0; r < n_roots && !status; r++) {
    core_node* root = roots[r] ? roots[r]->node : NULL;
    if (!root || root->visit_mark == mark) continue;
    root->visit_mark = mark;
    if ((status = list_push(&stack, root)) || (status = list_push(&stack, (void*)0))) break;
    while (stack.count) {
      core_node* node = stack.items[stack.count - 2];
      uintptr_t next = (uintptr_t)stack.items[stack.count - 1];
      if (next < (uintptr_t)node->n_inputs) {
        stack.items[stack.count - 1] = (void*)(next + 1);
        core_node* child = node->inputs[next]->node;
        if (child && child->visit_mark != mark) {
          child->visit_mark = mark;
          if ((status = list_push(&stack, child)) || (status = list_push(&stack, (void*)0))) break;
        }
      } else {
        stack.count -= 2;
        atomic_fetch_add(&node->refs, 1);
        if ((status = list_push(order, node))) {
          node_release(node);
          break;
        }
      }
    }
  }
  free(stack.items);
  return status;
}

static int run_node(core_node* node) {
  const core_op* op = node->op;
  bool profiling = core_profile_enabled();
  uint64_t started = profiling ? core_profile_now_ns() : 0;
  core_array* outputs_inline[4];
  core_array** outputs = node->n_outputs <= 4 ? outputs_inline : malloc(sizeof(core_array*) * (size_t)node->n_outputs);
  if (!outputs) return util_error("out of memory during evaluation");
  for (int i = 0; i < node->n_outputs; i++) outputs[i] = node->outputs[i];
  /* GPU streams run the primitive's GPU kernel when the backend has one; otherwise (or when the
   * kernel declines the case) the CPU kernel runs on host copies of the inputs. */
  int status = GPU_KERNEL_DECLINED;
  if (node->stream && node->stream->device->type == MLX_GPU) {
    gpu_kernel_fn kernel = gpu_backend_kernel(op);
    if (!kernel) kernel = op->eval_gpu;
    if (kernel) status = kernel(node, outputs);
  }
  bool on_gpu = status != GPU_KERNEL_DECLINED;
  if (!on_gpu && node->stream && node->stream->device->type == MLX_GPU &&
      core_capture_device() == node->stream->device->index) {
    status = util_error("%s has no GPU kernel for this case, so it cannot be recorded (include/mlxc/capture.h)",
                        op->name);
  } else if (status == GPU_KERNEL_DECLINED) {
    status = 0;
    for (int i = 0; i < node->n_inputs && !status; i++) {
      core_buffer* b = node->inputs[i]->buffer;
      if (b && !b->host_valid) status = gpu_backend_to_host(b);
    }
    if (!status) status = op->eval_cpu(node, outputs);
  }
  if (status == 0 && on_gpu) {
    const uint64_t stamp = gpu_backend_write_stamp(node->stream->device->index);
    for (int i = 0; i < node->n_outputs; i++)
      if (outputs[i]->buffer) outputs[i]->buffer->gpu_write_stamp = stamp;
  }
  if (status == 0) {
    for (int i = 0; i < node->n_outputs; i++) {
      core_array* o = outputs[i];
      node->outputs[i] = NULL;
      if (atomic_load(&o->refs) == 0) {
        core_array_free_memory(o); /* a zombie: nobody wants this output */
        continue;
      }
      o->evaluated = true;
      o->node = NULL;
      atomic_fetch_sub(&node->refs, 1);
    }
  }
  if (outputs != outputs_inline) free(outputs);
  if (profiling) {
    /* MLXC_PROFILE=sync waits for each GPU node, so its time includes the kernel's own. */
    if (on_gpu && core_profile_sync() && core_capture_device() < 0) gpu_backend_synchronize(node->stream->device->index);
    core_profile_record(op->name, on_gpu, core_profile_now_ns() - started);
  }
  return status;
}

int core_eval(core_array* const* arrays, int n) {
  for (int i = 0; i < n; i++)
    if (!arrays[i]) return util_error("cannot evaluate an empty array handle");
  ptr_list order = {0};
  int status = topological_order(arrays, n, &order);
  size_t i = 0;
  for (; i < order.count && status == 0; i++) {
    core_node* node = order.items[i];
    status = run_node(node);
    node_release(node);
  }
  for (; i < order.count; i++) node_release(order.items[i]);
  free(order.items);
  return status;
}

int core_eval_contiguous(core_array* a) {
  if (core_eval(&a, 1)) return 1;
  if (a->row_contiguous) return 0;
  core_buffer* buffer = core_buffer_alloc(a->size * core_dtype_size(a->dtype));
  if (!buffer) return 1;
  cpu_copy_strided(buffer->data, core_array_ptr(a), a->shape, a->strides, a->ndim,
                   core_dtype_size(a->dtype));
  core_buffer_release(a->buffer);
  a->buffer = buffer;
  a->offset = 0;
  core_row_strides(a->shape, a->ndim, a->strides);
  a->row_contiguous = true;
  return 0;
}
