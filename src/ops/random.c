/* mlx-c random.h: keys, splitting and random bits. Keys are uint32 arrays of shape (2); the
 * bits come from the Threefry-2x32 kernel (backend/cpu/random.c) laid out as MLX lays them out,
 * so the same key gives the same numbers as MLX. An empty key handle draws from the global key
 * sequence (mlx_random_seed), which is shared by all threads and protected by a lock. */
#include <pthread.h>
#include <time.h>

#include "mlx/c/random.h"
#include "ops/layout.h"
#include "ops/ops_common.h"
#include "ops/primitives.h"
#include "ops/random.h"

static pthread_mutex_t global_lock = PTHREAD_MUTEX_INITIALIZER;
static core_array* global_key;

static core_array* make_key(uint64_t seed) {
  uint32_t words[2] = {(uint32_t)(seed >> 32), (uint32_t)seed};
  int shape[1] = {2};
  return core_ctx(mlx_array_new_data(words, shape, 1, MLX_UINT32));
}

int mlx_random_key(mlx_array* res, uint64_t seed) { return ops_finish(res, make_key(seed), "random.key"); }

static core_array* bits_node(const int* shape, int ndim, int width, core_array* key, core_stream* s) {
  mlx_dtype dtype = width == 4 ? MLX_UINT32 : width == 2 ? MLX_UINT16 : MLX_UINT8;
  return core_node_single(&prim_random_bits, NULL, &key, 1, dtype, shape, ndim, s);
}

/* (2 keys) = split(key) as two (2)-shaped arrays. */
static int split_two(core_array* key, core_stream* s, core_array** first, core_array** second) {
  int shape[2] = {2, 2};
  core_array* both = bits_node(shape, 2, 4, key, s);
  *first = *second = NULL;
  if (!both) return 1;
  int start0[2] = {0, 0}, stop0[2] = {1, 2}, start1[2] = {1, 0}, stop1[2] = {2, 2}, step[2] = {1, 1};
  int key_shape[1] = {2};
  core_array* r0 = ops_slice(both, start0, stop0, step, s);
  core_array* r1 = r0 ? ops_slice(both, start1, stop1, step, s) : NULL;
  if (r0 && r1) {
    *first = ops_reshape(r0, key_shape, 1, s);
    *second = *first ? ops_reshape(r1, key_shape, 1, s) : NULL;
  }
  core_array_release(both);
  core_array_release(r0);
  core_array_release(r1);
  if (!*second) {
    core_array_release(*first);
    *first = NULL;
    return 1;
  }
  return 0;
}

/* The next key of the global sequence: split the global key, keep the first half as the new
 * global key, return the second (as MLX's KeySequence). */
static core_array* next_global_key(core_stream* s) {
  pthread_mutex_lock(&global_lock);
  if (!global_key) global_key = make_key((uint64_t)time(NULL));
  core_array *next = NULL, *out = NULL;
  if (global_key && split_two(global_key, s, &next, &out) == 0) {
    /* Evaluate now so the global key never accumulates a graph across calls. */
    if (core_eval(&next, 1) == 0) {
      core_array_release(global_key);
      global_key = next;
    } else {
      core_array_release(next);
      core_array_release(out);
      out = NULL;
    }
  }
  pthread_mutex_unlock(&global_lock);
  return out;
}

int mlx_random_seed(uint64_t seed) {
  core_array* key = make_key(seed);
  if (!key) return 1;
  pthread_mutex_lock(&global_lock);
  core_array_release(global_key);
  global_key = key;
  pthread_mutex_unlock(&global_lock);
  return 0;
}

/* The key to use: the given one (validated, retained) or the next global one. */
static core_array* ops_random_key(mlx_array key, core_stream* s, const char* op) {
  core_array* k = core_ctx(key);
  if (!k) return next_global_key(s);
  if (k->dtype != MLX_UINT32 || k->ndim != 1 || k->shape[0] != 2) {
    util_error("%s: a key is a uint32 array of shape (2) (got %s with %d dimensions)", op,
               core_dtype_name(k->dtype), k->ndim);
    return NULL;
  }
  core_array_retain(k);
  return k;
}

int ops_random_resolve_key(mlx_array* out, const mlx_array key, const mlx_stream s, const char* op) {
  core_array* k = ops_random_key(key, core_stream_resolve(s), op);
  if (!k) return 1;
  core_assign(out, k);
  return 0;
}

static int check_shape(const int* shape, size_t ndim, const char* op) {
  if (ndim > CORE_MAX_NDIM || (ndim && !shape)) return util_error("%s: invalid shape", op);
  for (size_t i = 0; i < ndim; i++)
    if (shape[i] < 0) return util_error("%s: negative dimension %d", op, shape[i]);
  return 0;
}

int mlx_random_bits(mlx_array* res, const int* shape, size_t shape_num, int width, const mlx_array key,
                    const mlx_stream s) {
  if (width != 1 && width != 2 && width != 4)
    return util_error("random.bits: bit width must be 1, 2 or 4 bytes (got %d)", width);
  if (check_shape(shape, shape_num, "random.bits")) return 1;
  core_stream* stream = core_stream_resolve(s);
  core_array* k = ops_random_key(key, stream, "random.bits");
  if (!k) return 1;
  core_array* out = bits_node(shape, (int)shape_num, width, k, stream);
  core_array_release(k);
  return ops_finish(res, out, "random.bits");
}

int mlx_random_split_num(mlx_array* res, const mlx_array key, int num, const mlx_stream s) {
  if (num < 0) return util_error("random.split: number of keys must be non-negative (got %d)", num);
  core_stream* stream = core_stream_resolve(s);
  core_array* k = ops_random_key(key, stream, "random.split");
  if (!k) return 1;
  int shape[2] = {num, 2};
  core_array* out = bits_node(shape, 2, 4, k, stream);
  core_array_release(k);
  return ops_finish(res, out, "random.split");
}

int mlx_random_split(mlx_array* res_0, mlx_array* res_1, const mlx_array key, const mlx_stream s) {
  if (!res_0 || !res_1) return util_error("random.split: null result pointer");
  core_stream* stream = core_stream_resolve(s);
  core_array* k = ops_random_key(key, stream, "random.split");
  if (!k) return 1;
  core_array *a, *b;
  int status = split_two(k, stream, &a, &b);
  core_array_release(k);
  if (status) return 1;
  core_assign(res_0, a);
  core_assign(res_1, b);
  return 0;
}
