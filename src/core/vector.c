/* mlx-c vectors (vector.h). One generic growable vector of fixed-size items with per-type
 * retain/release, instantiated for arrays, vectors of arrays, ints and strings. */
#include <stdlib.h>
#include <string.h>

#include "core/array.h"
#include "mlx/c/vector.h"
#include "util/error.h"

typedef struct {
  size_t count, capacity, item_size;
  void (*retain)(void* item);
  void (*release)(void* item);
  char* items;
} vec;

static vec* vec_new(size_t item_size, void (*retain)(void*), void (*release)(void*)) {
  vec* v = calloc(1, sizeof *v);
  if (!v) {
    util_error("out of memory");
    return NULL;
  }
  v->item_size = item_size;
  v->retain = retain;
  v->release = release;
  return v;
}

static void vec_clear(vec* v) {
  if (v->release)
    for (size_t i = 0; i < v->count; i++) v->release(v->items + i * v->item_size);
  v->count = 0;
}

static void vec_free(vec* v) {
  if (!v) return;
  vec_clear(v);
  free(v->items);
  free(v);
}

/* Appends copies of items (each retained). */
static int vec_append(vec* v, const void* items, size_t n) {
  if (v->count + n > v->capacity) {
    size_t cap = v->capacity ? v->capacity : 4;
    while (cap < v->count + n) cap *= 2;
    char* grown = realloc(v->items, cap * v->item_size);
    if (!grown) return util_error("out of memory");
    v->items = grown;
    v->capacity = cap;
  }
  for (size_t i = 0; i < n; i++) {
    char* dst = v->items + (v->count + i) * v->item_size;
    memcpy(dst, (const char*)items + i * v->item_size, v->item_size);
    if (v->retain) v->retain(dst);
  }
  v->count += n;
  return 0;
}

static void retain_array(void* p) { core_array_retain(core_ctx(*(mlx_array*)p)); }
static void release_array(void* p) { core_array_release(core_ctx(*(mlx_array*)p)); }

static void retain_string(void* p) {
  char** s = p;
  *s = strdup(*s ? *s : ""); /* a failed copy becomes NULL and reads as "" */
}
static void release_string(void* p) { free(*(char**)p); }

static vec* vec_copy(const vec* src) {
  vec* v = vec_new(src->item_size, src->retain, src->release);
  if (v && src->count && vec_append(v, src->items, src->count)) {
    vec_free(v);
    return NULL;
  }
  return v;
}

static void retain_vector_array(void* p);
static void release_vector_array(void* p) { vec_free(((mlx_vector_array*)p)->ctx); }
static void retain_vector_array(void* p) {
  mlx_vector_array* va = p;
  va->ctx = va->ctx ? vec_copy(va->ctx) : vec_new(sizeof(mlx_array), retain_array, release_array);
}

/* Defines the mlx-c functions of one vector type. GET_OUT assigns element `item` to *res. */
#define DEFINE_VECTOR(NAME, VT, T, RETAIN, RELEASE, DATA_T)                                      \
  VT NAME##_new(void) { return (VT){vec_new(sizeof(T), RETAIN, RELEASE)}; }                      \
  int NAME##_free(VT v) {                                                                        \
    vec_free(v.ctx);                                                                             \
    return 0;                                                                                    \
  }                                                                                              \
  int NAME##_set(VT* v, const VT src) {                                                          \
    if (!v || !src.ctx) return util_error(#NAME "_set: empty vector");                           \
    vec* copy = vec_copy(src.ctx);                                                               \
    if (!copy) return 1;                                                                         \
    vec_free(v->ctx);                                                                            \
    v->ctx = copy;                                                                               \
    return 0;                                                                                    \
  }                                                                                              \
  VT NAME##_new_data(DATA_T data, size_t size) {                                                 \
    VT v = NAME##_new();                                                                         \
    if (v.ctx && size && vec_append(v.ctx, data, size)) {                                        \
      vec_free(v.ctx);                                                                           \
      v.ctx = NULL;                                                                              \
    }                                                                                            \
    return v;                                                                                    \
  }                                                                                              \
  int NAME##_set_data(VT* v, DATA_T data, size_t size) {                                         \
    if (!v) return util_error(#NAME "_set_data: null destination");                              \
    VT fresh = NAME##_new_data(data, size);                                                      \
    if (!fresh.ctx) return 1;                                                                    \
    vec_free(v->ctx);                                                                            \
    *v = fresh;                                                                                  \
    return 0;                                                                                    \
  }                                                                                              \
  int NAME##_append_data(VT v, DATA_T data, size_t size) {                                       \
    if (!v.ctx) return util_error(#NAME "_append_data: empty vector");                           \
    return size ? vec_append(v.ctx, data, size) : 0;                                             \
  }                                                                                              \
  size_t NAME##_size(VT v) { return v.ctx ? ((vec*)v.ctx)->count : 0; }

DEFINE_VECTOR(mlx_vector_array, mlx_vector_array, mlx_array, retain_array, release_array,
              const mlx_array*)
DEFINE_VECTOR(mlx_vector_vector_array, mlx_vector_vector_array, mlx_vector_array,
              retain_vector_array, release_vector_array, const mlx_vector_array*)
DEFINE_VECTOR(mlx_vector_int, mlx_vector_int, int, NULL, NULL, int*)
DEFINE_VECTOR(mlx_vector_string, mlx_vector_string, char*, retain_string, release_string,
              const char**)

mlx_vector_array mlx_vector_array_new_value(const mlx_array val) {
  return mlx_vector_array_new_data(&val, 1);
}
int mlx_vector_array_set_value(mlx_vector_array* v, const mlx_array val) {
  return mlx_vector_array_set_data(v, &val, 1);
}
int mlx_vector_array_append_value(mlx_vector_array v, const mlx_array val) {
  return mlx_vector_array_append_data(v, &val, 1);
}
int mlx_vector_array_get(mlx_array* res, const mlx_vector_array v, size_t idx) {
  vec* x = v.ctx;
  if (!res) return util_error("mlx_vector_array_get: null result");
  if (!x || idx >= x->count)
    return util_error("mlx_vector_array_get: index %zu out of range (size %zu)", idx, x ? x->count : 0);
  core_array* a = core_ctx(((mlx_array*)x->items)[idx]);
  core_array_retain(a);
  core_assign(res, a);
  return 0;
}

mlx_vector_vector_array mlx_vector_vector_array_new_value(const mlx_vector_array val) {
  return mlx_vector_vector_array_new_data(&val, 1);
}
int mlx_vector_vector_array_set_value(mlx_vector_vector_array* v, const mlx_vector_array val) {
  return mlx_vector_vector_array_set_data(v, &val, 1);
}
int mlx_vector_vector_array_append_value(mlx_vector_vector_array v, const mlx_vector_array val) {
  return mlx_vector_vector_array_append_data(v, &val, 1);
}
int mlx_vector_vector_array_get(mlx_vector_array* res, const mlx_vector_vector_array v, size_t idx) {
  vec* x = v.ctx;
  if (!res) return util_error("mlx_vector_vector_array_get: null result");
  if (!x || idx >= x->count)
    return util_error("mlx_vector_vector_array_get: index %zu out of range", idx);
  return mlx_vector_array_set(res, ((mlx_vector_array*)x->items)[idx]);
}

mlx_vector_int mlx_vector_int_new_value(int val) { return mlx_vector_int_new_data(&val, 1); }
int mlx_vector_int_set_value(mlx_vector_int* v, int val) { return mlx_vector_int_set_data(v, &val, 1); }
int mlx_vector_int_append_value(mlx_vector_int v, int val) {
  return mlx_vector_int_append_data(v, &val, 1);
}
int mlx_vector_int_get(int* res, const mlx_vector_int v, size_t idx) {
  vec* x = v.ctx;
  if (!x || idx >= x->count) return util_error("mlx_vector_int_get: index %zu out of range", idx);
  *res = ((int*)x->items)[idx];
  return 0;
}

mlx_vector_string mlx_vector_string_new_value(const char* val) {
  return mlx_vector_string_new_data(&val, 1);
}
int mlx_vector_string_set_value(mlx_vector_string* v, const char* val) {
  return mlx_vector_string_set_data(v, &val, 1);
}
int mlx_vector_string_append_value(mlx_vector_string v, const char* val) {
  return mlx_vector_string_append_data(v, &val, 1);
}
/* The string stays owned by the vector. */
int mlx_vector_string_get(char** res, const mlx_vector_string v, size_t idx) {
  vec* x = v.ctx;
  if (!x || idx >= x->count) return util_error("mlx_vector_string_get: index %zu out of range", idx);
  *res = ((char**)x->items)[idx];
  return 0;
}
