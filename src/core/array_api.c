/* The mlx-c array.h API: creating arrays from host data, reading metadata, items and data. */
#include <complex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/array.h"
#include "core/half.h"
#include "util/error.h"

size_t mlx_dtype_size(mlx_dtype dtype) { return core_dtype_size(dtype); }

mlx_array mlx_array_new(void) { return (mlx_array){NULL}; }

int mlx_array_free(mlx_array arr) {
  core_array_release(core_ctx(arr));
  return 0;
}

/* A new evaluated array holding a copy of `data` (row-major); NULL on failure. */
static core_array* array_from_data(const void* data, const int* shape, int dim, mlx_dtype dtype) {
  if (dim > 0 && !shape) {
    util_error("mlx_array_new_data: null shape with %d dimensions", dim);
    return NULL;
  }
  core_array* a = core_array_create(shape, dim, dtype);
  if (!a) return NULL;
  if (core_array_alloc_contiguous(a)) {
    core_array_release(a);
    return NULL;
  }
  size_t nbytes = a->size * core_dtype_size(dtype);
  if (nbytes && !data) {
    core_array_release(a);
    util_error("mlx_array_new_data: null data for %zu elements", a->size);
    return NULL;
  }
  if (nbytes) memcpy(a->buffer->data, data, nbytes);
  a->evaluated = true;
  return a;
}

mlx_array mlx_array_new_data(const void* data, const int* shape, int dim, mlx_dtype dtype) {
  return core_handle(array_from_data(data, shape, dim, dtype));
}

static mlx_array new_scalar(const void* value, mlx_dtype dtype) {
  return core_handle(array_from_data(value, NULL, 0, dtype));
}

mlx_array mlx_array_new_bool(bool val) { return new_scalar(&val, MLX_BOOL); }
mlx_array mlx_array_new_int(int val) {
  int32_t v = val;
  return new_scalar(&v, MLX_INT32);
}
mlx_array mlx_array_new_float32(float val) { return new_scalar(&val, MLX_FLOAT32); }
mlx_array mlx_array_new_float(float val) { return new_scalar(&val, MLX_FLOAT32); }
mlx_array mlx_array_new_float64(double val) { return new_scalar(&val, MLX_FLOAT64); }
mlx_array mlx_array_new_double(double val) { return new_scalar(&val, MLX_FLOAT64); }
mlx_array mlx_array_new_complex(float real_val, float imag_val) {
  float v[2] = {real_val, imag_val};
  return new_scalar(v, MLX_COMPLEX64);
}

typedef struct {
  void (*dtor)(void*);
  void* arg;
} managed_owner;

static void release_managed(core_buffer* b) {
  if (b->owner_dtor) b->owner_dtor(b->owner);
}

static mlx_array new_managed(void* data, const int* shape, int dim, mlx_dtype dtype, void* payload,
                             void (*dtor)(void*)) {
  core_array* a = (dim > 0 && !shape) ? NULL : core_array_create(shape, dim, dtype);
  if (!a) {
    if (dim > 0 && !shape) util_error("mlx_array_new_data_managed: null shape");
    if (dtor) dtor(payload); /* we were given ownership */
    return (mlx_array){NULL};
  }
  a->buffer = core_buffer_wrap(data, a->size * core_dtype_size(dtype), release_managed, payload, dtor);
  if (!a->buffer) {
    core_array_release(a);
    if (dtor) dtor(payload);
    return (mlx_array){NULL};
  }
  a->evaluated = true;
  return core_handle(a);
}

mlx_array mlx_array_new_data_managed(void* data, const int* shape, int dim, mlx_dtype dtype,
                                     void (*dtor)(void*)) {
  return new_managed(data, shape, dim, dtype, data, dtor);
}

mlx_array mlx_array_new_data_managed_payload(void* data, const int* shape, int dim, mlx_dtype dtype,
                                             void* payload, void (*dtor)(void*)) {
  return new_managed(data, shape, dim, dtype, payload, dtor);
}

int mlx_array_set(mlx_array* arr, const mlx_array src) {
  if (!arr) return util_error("mlx_array_set: null destination");
  core_array_retain(core_ctx(src));
  core_assign(arr, core_ctx(src));
  return 0;
}

static int set_new(mlx_array* arr, mlx_array fresh) {
  if (!arr) {
    mlx_array_free(fresh);
    return util_error("mlx_array_set: null destination");
  }
  if (!fresh.ctx) return 1;
  core_assign(arr, core_ctx(fresh));
  return 0;
}

int mlx_array_set_bool(mlx_array* arr, bool val) { return set_new(arr, mlx_array_new_bool(val)); }
int mlx_array_set_int(mlx_array* arr, int val) { return set_new(arr, mlx_array_new_int(val)); }
int mlx_array_set_float32(mlx_array* arr, float val) { return set_new(arr, mlx_array_new_float32(val)); }
int mlx_array_set_float(mlx_array* arr, float val) { return set_new(arr, mlx_array_new_float(val)); }
int mlx_array_set_float64(mlx_array* arr, double val) { return set_new(arr, mlx_array_new_float64(val)); }
int mlx_array_set_double(mlx_array* arr, double val) { return set_new(arr, mlx_array_new_double(val)); }
int mlx_array_set_complex(mlx_array* arr, float real_val, float imag_val) {
  return set_new(arr, mlx_array_new_complex(real_val, imag_val));
}
int mlx_array_set_data(mlx_array* arr, const void* data, const int* shape, int dim, mlx_dtype dtype) {
  return set_new(arr, mlx_array_new_data(data, shape, dim, dtype));
}

/* ---- metadata (an empty handle reads as a 0-sized array) ---- */

size_t mlx_array_itemsize(const mlx_array arr) {
  return arr.ctx ? core_dtype_size(core_ctx(arr)->dtype) : 0;
}
size_t mlx_array_size(const mlx_array arr) { return arr.ctx ? core_ctx(arr)->size : 0; }
size_t mlx_array_nbytes(const mlx_array arr) {
  return arr.ctx ? core_ctx(arr)->size * core_dtype_size(core_ctx(arr)->dtype) : 0;
}
size_t mlx_array_ndim(const mlx_array arr) { return arr.ctx ? (size_t)core_ctx(arr)->ndim : 0; }
const int* mlx_array_shape(const mlx_array arr) { return arr.ctx ? core_ctx(arr)->shape : NULL; }
const size_t* mlx_array_strides(const mlx_array arr) {
  return arr.ctx ? (const size_t*)core_ctx(arr)->strides : NULL;
}
int mlx_array_dim(const mlx_array arr, int dim) {
  core_array* a = core_ctx(arr);
  if (!a) return 0;
  if (dim < 0) dim += a->ndim;
  return dim >= 0 && dim < a->ndim ? a->shape[dim] : 0;
}
mlx_dtype mlx_array_dtype(const mlx_array arr) { return arr.ctx ? core_ctx(arr)->dtype : MLX_FLOAT32; }

int mlx_array_eval(mlx_array arr) {
  core_array* a = core_ctx(arr);
  if (!a) return util_error("mlx_array_eval: empty array handle");
  return core_eval(&a, 1);
}

/* ---- items ---- */

static int read_item(void* res, const mlx_array arr, mlx_dtype dtype, const char* fn) {
  core_array* a = core_ctx(arr);
  if (!res) return util_error("%s: null result pointer", fn);
  if (!a) return util_error("%s: empty array handle", fn);
  if (a->dtype != dtype)
    return util_error("%s: array has dtype %s, not %s", fn, core_dtype_name(a->dtype), core_dtype_name(dtype));
  if (a->size != 1) return util_error("%s: array has %zu elements; item needs exactly one", fn, a->size);
  if (core_eval(&a, 1)) return 1;
  memcpy(res, core_array_ptr(a), core_dtype_size(dtype));
  return 0;
}

#define ITEM(NAME, T, DTYPE) \
  int mlx_array_item_##NAME(T* res, const mlx_array arr) { return read_item(res, arr, DTYPE, "mlx_array_item_" #NAME); }
ITEM(bool, bool, MLX_BOOL)
ITEM(uint8, uint8_t, MLX_UINT8)
ITEM(uint16, uint16_t, MLX_UINT16)
ITEM(uint32, uint32_t, MLX_UINT32)
ITEM(uint64, uint64_t, MLX_UINT64)
ITEM(int8, int8_t, MLX_INT8)
ITEM(int16, int16_t, MLX_INT16)
ITEM(int32, int32_t, MLX_INT32)
ITEM(int64, int64_t, MLX_INT64)
ITEM(float32, float, MLX_FLOAT32)
ITEM(float64, double, MLX_FLOAT64)
ITEM(complex64, mlx_complex64_t, MLX_COMPLEX64)
ITEM(float16, float16_t, MLX_FLOAT16)
ITEM(bfloat16, bfloat16_t, MLX_BFLOAT16)

/* ---- data ---- */

static const void* read_data(const mlx_array arr, mlx_dtype dtype, const char* fn) {
  core_array* a = core_ctx(arr);
  if (!a) {
    util_error("%s: empty array handle", fn);
    return NULL;
  }
  if (a->dtype != dtype) {
    util_error("%s: array has dtype %s, not %s", fn, core_dtype_name(a->dtype), core_dtype_name(dtype));
    return NULL;
  }
  if (core_eval_contiguous(a)) return NULL;
  return core_array_ptr(a);
}

#define DATA(NAME, T, DTYPE) \
  const T* mlx_array_data_##NAME(const mlx_array arr) { return read_data(arr, DTYPE, "mlx_array_data_" #NAME); }
DATA(bool, bool, MLX_BOOL)
DATA(uint8, uint8_t, MLX_UINT8)
DATA(uint16, uint16_t, MLX_UINT16)
DATA(uint32, uint32_t, MLX_UINT32)
DATA(uint64, uint64_t, MLX_UINT64)
DATA(int8, int8_t, MLX_INT8)
DATA(int16, int16_t, MLX_INT16)
DATA(int32, int32_t, MLX_INT32)
DATA(int64, int64_t, MLX_INT64)
DATA(float32, float, MLX_FLOAT32)
DATA(float64, double, MLX_FLOAT64)
DATA(complex64, mlx_complex64_t, MLX_COMPLEX64)
DATA(float16, float16_t, MLX_FLOAT16)
DATA(bfloat16, bfloat16_t, MLX_BFLOAT16)
