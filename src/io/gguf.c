/* GGUF files (io.h: mlx_load_gguf, mlx_save_gguf; io_types.h: the mlx_io_gguf object;
 * mlxc/gguf.h: loading options).
 *
 * Layout (v2/v3, little-endian): "GGUF", version u32, tensor count u64, key/value count u64;
 * the key/value pairs (key: u64 length + bytes, value type u32, value); the tensor infos (name,
 * n_dims u32, dims u64[n_dims] fastest-varying first, ggml type u32, offset u64 relative to
 * the data section); padding to `general.alignment` (default 32); the data section. */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/half.h"
#include "io/gguf_quants.h"
#include "io/io_internal.h"
#include "mlx/c/io.h"
#include "mlxc/error.h"
#include "mlxc/gguf.h"
#include "util/error.h"
#include "util/strbuf.h"

#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_WRITE_VERSION 3

/* GGUF value types. */
enum {
  V_UINT8, V_INT8, V_UINT16, V_INT16, V_UINT32, V_INT32, V_FLOAT32, V_BOOL, V_STRING, V_ARRAY,
  V_UINT64, V_INT64, V_FLOAT64, V_COUNT
};

/* Size and dtype of each scalar value type (0 for STRING and ARRAY). */
static const struct {
  int size;
  mlx_dtype dtype;
} value_types[V_COUNT] = {
    [V_UINT8] = {1, MLX_UINT8},     [V_INT8] = {1, MLX_INT8},     [V_UINT16] = {2, MLX_UINT16},
    [V_INT16] = {2, MLX_INT16},     [V_UINT32] = {4, MLX_UINT32}, [V_INT32] = {4, MLX_INT32},
    [V_FLOAT32] = {4, MLX_FLOAT32}, [V_BOOL] = {1, MLX_BOOL},     [V_UINT64] = {8, MLX_UINT64},
    [V_INT64] = {8, MLX_INT64},     [V_FLOAT64] = {8, MLX_FLOAT64},
};

/* ---- the mlx_io_gguf object: tensors and metadata, each in insertion order ---- */

typedef enum { META_ARRAY, META_STRING, META_STRINGS } meta_kind;

typedef struct {
  char* key;
  meta_kind kind;
  core_array* array;         /* META_ARRAY */
  char* string;              /* META_STRING */
  mlx_vector_string strings; /* META_STRINGS */
} gguf_meta;

typedef struct {
  char* name;
  core_array* array;
} gguf_tensor;

typedef struct {
  gguf_tensor* tensors;
  size_t n_tensors, cap_tensors;
  gguf_meta* meta;
  size_t n_meta, cap_meta;
} gguf_contents;

static void meta_clear(gguf_meta* m) {
  free(m->key);
  core_array_release(m->array);
  free(m->string);
  mlx_vector_string_free(m->strings);
  *m = (gguf_meta){0};
}

static void contents_free(gguf_contents* c) {
  if (!c) return;
  for (size_t i = 0; i < c->n_tensors; i++) {
    free(c->tensors[i].name);
    core_array_release(c->tensors[i].array);
  }
  for (size_t i = 0; i < c->n_meta; i++) meta_clear(&c->meta[i]);
  free(c->tensors);
  free(c->meta);
  free(c);
}

/* Grows an array of `item`-sized entries to hold one more; false when out of memory. */
static bool reserve_one(void** items, size_t count, size_t* capacity, size_t item) {
  if (count < *capacity) return true;
  size_t cap = *capacity ? 2 * *capacity : 16;
  void* grown = realloc(*items, cap * item);
  if (!grown) return false;
  *items = grown;
  *capacity = cap;
  return true;
}

/* Appends a tensor, taking `array`'s reference and copying the name. */
static int append_tensor(gguf_contents* c, const char* name, core_array* array) {
  char* copy = strdup(name);
  if (!copy ||
      !reserve_one((void**)&c->tensors, c->n_tensors, &c->cap_tensors, sizeof *c->tensors)) {
    free(copy);
    core_array_release(array);
    return util_error("out of memory adding tensor '%s'", name);
  }
  c->tensors[c->n_tensors++] = (gguf_tensor){copy, array};
  return 0;
}

static gguf_tensor* find_tensor(gguf_contents* c, const char* name) {
  for (size_t i = 0; i < c->n_tensors; i++)
    if (!strcmp(c->tensors[i].name, name)) return &c->tensors[i];
  return NULL;
}

static gguf_meta* find_meta(gguf_contents* c, const char* key) {
  for (size_t i = 0; i < c->n_meta; i++)
    if (!strcmp(c->meta[i].key, key)) return &c->meta[i];
  return NULL;
}

/* Appends a metadata entry, taking ownership of m's values (released on failure). */
static int append_meta(gguf_contents* c, gguf_meta m) {
  if (!reserve_one((void**)&c->meta, c->n_meta, &c->cap_meta, sizeof *c->meta)) {
    int status = util_error("out of memory adding metadata '%s'", m.key);
    meta_clear(&m);
    return status;
  }
  c->meta[c->n_meta++] = m;
  return 0;
}

/* Replaces the value of an existing key, or appends the entry (ownership as append_meta). */
static int put_meta(gguf_contents* c, gguf_meta m) {
  gguf_meta* old = find_meta(c, m.key);
  if (!old) return append_meta(c, m);
  meta_clear(old);
  *old = m;
  return 0;
}

/* ---- parsing ---- */

typedef struct {
  io_source* src;
  const uint8_t* data;
  uint64_t size, pos;
  const char* what; /* what is being read, for truncation messages */
} parser;

/* Reports "<who>: <file>: <what is being read>: <message>". */
static int fail(parser* p, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(parser* p, const char* fmt, ...) {
  char msg[256];
  va_list args;
  va_start(args, fmt);
  vsnprintf(msg, sizeof msg, fmt, args);
  va_end(args);
  return util_error("%s: %s: %s: %s", p->src->who, p->src->label, p->what, msg);
}

/* Consumes n bytes; NULL (reported) when the file ends first. */
static const uint8_t* take(parser* p, uint64_t n) {
  if (n > p->size - p->pos) {
    util_error("%s: %s is truncated: %s needs %llu bytes at offset %llu but only %llu remain",
               p->src->who, p->src->label, p->what, (unsigned long long)n,
               (unsigned long long)p->pos, (unsigned long long)(p->size - p->pos));
    return NULL;
  }
  const uint8_t* at = p->data + p->pos;
  p->pos += n;
  return at;
}

static uint64_t load_le(const uint8_t* b, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; i--) v = v << 8 | b[i];
  return v;
}

static int read_u32(parser* p, uint32_t* v) {
  const uint8_t* b = take(p, 4);
  if (!b) return 1;
  *v = (uint32_t)load_le(b, 4);
  return 0;
}

static int read_u64(parser* p, uint64_t* v) {
  const uint8_t* b = take(p, 8);
  if (!b) return 1;
  *v = load_le(b, 8);
  return 0;
}

/* A GGUF string: its bytes (not NUL-terminated) and length. */
static int read_string(parser* p, const uint8_t** s, uint64_t* len) {
  if (read_u64(p, len)) return 1;
  *s = take(p, *len);
  return *s ? 0 : 1;
}

/* A string as a C string (caller frees); strings holding NUL bytes are refused. */
static char* read_cstring(parser* p, const char* kind) {
  const uint8_t* s;
  uint64_t len;
  if (read_string(p, &s, &len)) return NULL;
  if (memchr(s, 0, len)) {
    fail(p, "the %s at offset %llu contains a NUL byte", kind, (unsigned long long)(p->pos - len));
    return NULL;
  }
  char* out = malloc(len + 1);
  if (!out) {
    util_error("%s: out of memory reading a %llu-byte %s", p->src->who, (unsigned long long)len,
               kind);
    return NULL;
  }
  memcpy(out, s, len);
  out[len] = '\0';
  return out;
}

/* A 0-d (count < 0) or 1-d array of a scalar value type, copied from the file. */
static core_array* read_numbers(parser* p, uint32_t type, int64_t count) {
  int shape[1] = {(int)(count < 0 ? 1 : count)};
  int size = value_types[type].size;
  const uint8_t* bytes = take(p, (uint64_t)shape[0] * (uint64_t)size);
  if (!bytes) return NULL;
  core_array* a = core_array_create(shape, count < 0 ? 0 : 1, value_types[type].dtype);
  if (!a) return NULL;
  if (core_array_alloc_contiguous(a)) {
    core_array_release(a);
    return NULL;
  }
  uint8_t* out = core_array_ptr(a);
  if (out) memcpy(out, bytes, (size_t)shape[0] * (size_t)size);
  if (type == V_BOOL) /* any non-zero byte is true; a bool array holds only 0 and 1 */
    for (int i = 0; i < shape[0]; i++) out[i] = out[i] != 0;
  a->evaluated = true;
  return a;
}

/* An array of `count` strings as an mlx_vector_string. */
static int read_strings(parser* p, uint64_t count, mlx_vector_string* out) {
  /* every string takes at least its 8-byte length: a bound before allocating */
  if (count > (p->size - p->pos) / 8)
    return fail(p, "%llu strings cannot fit in the %llu bytes left", (unsigned long long)count,
                (unsigned long long)(p->size - p->pos));
  char** items = calloc(count ? count : 1, sizeof *items);
  int status = 0;
  REQUIRE(items, "%s: out of memory reading %llu strings", p->src->who, (unsigned long long)count);
  for (uint64_t i = 0; i < count; i++) {
    items[i] = read_cstring(p, "string array entry");
    if (!items[i]) {
      status = 1;
      goto cleanup;
    }
  }
  *out = mlx_vector_string_new_data((const char**)items, count);
  REQUIRE(out->ctx, "%s: out of memory building %llu strings", p->src->who,
          (unsigned long long)count);
cleanup:
  for (uint64_t i = 0; items && i < count; i++) free(items[i]);
  free(items);
  return status;
}

static int read_value(parser* p, uint32_t type, gguf_meta* m) {
  if (type >= V_COUNT) return fail(p, "unknown value type %u", type);
  if (type == V_STRING) {
    m->kind = META_STRING;
    m->string = read_cstring(p, "string value");
    return m->string ? 0 : 1;
  }
  if (type != V_ARRAY) {
    m->kind = META_ARRAY;
    m->array = read_numbers(p, type, -1);
    return m->array ? 0 : 1;
  }
  uint32_t elem;
  uint64_t count;
  if (read_u32(p, &elem) || read_u64(p, &count)) return 1;
  if (elem == V_ARRAY) return fail(p, "nested arrays are not supported");
  if (elem >= V_COUNT) return fail(p, "unknown array element type %u", elem);
  if (elem == V_STRING) {
    m->kind = META_STRINGS;
    return read_strings(p, count, &m->strings);
  }
  if (count > (uint64_t)INT_MAX)
    return fail(p, "%llu elements (at most 2^31 - 1)", (unsigned long long)count);
  m->kind = META_ARRAY;
  m->array = read_numbers(p, elem, (int64_t)count);
  return m->array ? 0 : 1;
}

static int by_key(const void* x, const void* y) {
  return strcmp((*(const gguf_meta* const*)x)->key, (*(const gguf_meta* const*)y)->key);
}

static int check_unique_keys(parser* p, gguf_contents* c) {
  gguf_meta** order = malloc((c->n_meta ? c->n_meta : 1) * sizeof *order);
  if (!order) return util_error("%s: out of memory", p->src->who);
  for (size_t i = 0; i < c->n_meta; i++) order[i] = &c->meta[i];
  qsort(order, c->n_meta, sizeof *order, by_key);
  int status = 0;
  for (size_t i = 1; i < c->n_meta && !status; i++)
    if (!strcmp(order[i]->key, order[i - 1]->key))
      status = util_error("%s: %s: duplicate key '%s'", p->src->who, p->src->label, order[i]->key);
  free(order);
  return status;
}

/* Reads every key/value pair into c->meta; duplicate keys are refused. */
static int read_metadata(parser* p, uint64_t n_kv, gguf_contents* c) {
  char what[160];
  for (uint64_t i = 0; i < n_kv; i++) {
    snprintf(what, sizeof what, "the key of pair %llu", (unsigned long long)i);
    p->what = what;
    gguf_meta m = {0};
    m.key = read_cstring(p, "key");
    if (!m.key) return 1;
    snprintf(what, sizeof what, "the value of '%.100s'", m.key);
    uint32_t type;
    if (read_u32(p, &type) || read_value(p, type, &m)) {
      meta_clear(&m);
      return 1;
    }
    if (append_meta(c, m)) return 1;
  }
  return check_unique_keys(p, c);
}

typedef struct {
  char* name;
  int ndim;
  int shape[CORE_MAX_NDIM]; /* row-major: the file's dims reversed */
  const gguf_type* type;
  uint64_t count, offset, nbytes;
} tensor_info;

/* Reports "<who>: <file>: tensor '<name>': <message>". */
static int tensor_error(parser* p, const tensor_info* t, const char* fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int tensor_error(parser* p, const tensor_info* t, const char* fmt, ...) {
  char msg[256];
  va_list args;
  va_start(args, fmt);
  vsnprintf(msg, sizeof msg, fmt, args);
  va_end(args);
  return util_error("%s: %s: tensor '%s': %s", p->src->who, p->src->label, t->name, msg);
}

/* Reads one tensor info and checks its shape, type and size (the offset is checked later, once
 * the data section is known). */
static int read_tensor_info(parser* p, uint64_t index, tensor_info* t) {
  char what[160];
  snprintf(what, sizeof what, "the name of tensor %llu", (unsigned long long)index);
  p->what = what;
  t->name = read_cstring(p, "tensor name");
  if (!t->name) return 1;
  snprintf(what, sizeof what, "the info of tensor '%.100s'", t->name);
  uint32_t ndim, type;
  if (read_u32(p, &ndim)) return 1;
  if (ndim > CORE_MAX_NDIM)
    return tensor_error(p, t, "%u dimensions (at most %d)", ndim, CORE_MAX_NDIM);
  t->ndim = (int)ndim;
  int64_t dims[CORE_MAX_NDIM];
  for (int i = 0; i < t->ndim; i++) {
    uint64_t d;
    if (read_u64(p, &d)) return 1;
    if (d > (uint64_t)INT_MAX)
      return tensor_error(p, t, "dimension %d is %llu (at most 2^31 - 1)", i,
                          (unsigned long long)d);
    t->shape[t->ndim - 1 - i] = (int)d;
    dims[i] = (int64_t)d;
  }
  if (read_u32(p, &type) || read_u64(p, &t->offset)) return 1;
  t->type = gguf_type_find(type);
  if (!t->type) return tensor_error(p, t, "unsupported ggml type %u", type);
  if (!io_checked_count(dims, t->ndim, UINT64_MAX / (uint64_t)t->type->block_bytes, &t->count))
    return tensor_error(p, t, "shape is too large (element count overflows)");
  uint64_t innermost = t->ndim ? (uint64_t)dims[0] : 1;
  if (innermost % (uint64_t)t->type->block)
    return tensor_error(p, t, "the innermost dimension %llu is not a multiple of the %s block "
                        "size %d", (unsigned long long)innermost, t->type->name, t->type->block);
  t->nbytes = t->count / (uint64_t)t->type->block * (uint64_t)t->type->block_bytes;
  return 0;
}

static int by_offset(const void* x, const void* y) {
  const tensor_info *a = *(const tensor_info* const*)x, *b = *(const tensor_info* const*)y;
  return (a->offset > b->offset) - (a->offset < b->offset);
}

/* Offsets aligned, inside the data section, and no two tensors sharing bytes. */
static int check_placement(parser* p, tensor_info* infos, uint64_t n, uint64_t alignment,
                           uint64_t data_size) {
  for (uint64_t i = 0; i < n; i++) {
    tensor_info* t = &infos[i];
    if (t->offset % alignment)
      return tensor_error(p, t, "offset %llu is not a multiple of the alignment %llu",
                          (unsigned long long)t->offset, (unsigned long long)alignment);
    if (t->offset > data_size || t->nbytes > data_size - t->offset)
      return tensor_error(p, t, "data [offset %llu, +%llu bytes) runs past the end of the file",
                          (unsigned long long)t->offset, (unsigned long long)t->nbytes);
  }
  tensor_info** order = malloc((n ? n : 1) * sizeof *order);
  if (!order) return util_error("%s: out of memory", p->src->who);
  size_t m = 0;
  for (uint64_t i = 0; i < n; i++)
    if (infos[i].nbytes) order[m++] = &infos[i];
  qsort(order, m, sizeof *order, by_offset);
  int status = 0;
  for (size_t i = 1; i < m && !status; i++)
    if (order[i]->offset < order[i - 1]->offset + order[i - 1]->nbytes)
      status = util_error("%s: %s: tensors '%s' and '%s' overlap", p->src->who, p->src->label,
                          order[i - 1]->name, order[i]->name);
  free(order);
  return status;
}

/* general.alignment: a UINT32 power of two when present. */
static int read_alignment(parser* p, gguf_contents* c, uint64_t* alignment) {
  *alignment = GGUF_DEFAULT_ALIGNMENT;
  gguf_meta* m = find_meta(c, "general.alignment");
  if (!m) return 0;
  if (m->kind != META_ARRAY || m->array->ndim != 0 || m->array->dtype != MLX_UINT32)
    return util_error("%s: %s: general.alignment is not a UINT32 value", p->src->who,
                      p->src->label);
  uint32_t a = *(const uint32_t*)core_array_ptr(m->array);
  if (a == 0 || (a & (a - 1)))
    return util_error("%s: %s: general.alignment %u is not a power of two", p->src->who,
                      p->src->label, a);
  *alignment = a;
  return 0;
}

/* "<name>" without a trailing ".weight", as MLX names the scales and biases of a quantized
 * weight "<base>.scales" and "<base>.biases". */
static char* affine_name(const char* name, const char* suffix) {
  size_t n = strlen(name), w = strlen(".weight");
  if (n >= w && !strcmp(name + n - w, ".weight")) n -= w;
  char* out = malloc(n + strlen(suffix) + 1);
  if (!out) return NULL;
  memcpy(out, name, n);
  strcpy(out + n, suffix);
  return out;
}

/* A new contiguous, evaluated array (NULL when out of memory, reported). */
static core_array* new_filled_array(const int* shape, int ndim, mlx_dtype dtype) {
  core_array* a = core_array_create(shape, ndim, dtype);
  if (a && core_array_alloc_contiguous(a)) {
    core_array_release(a);
    return NULL;
  }
  if (a) a->evaluated = true;
  return a;
}

/* Q4_0/Q4_1/Q8_0 as three arrays: packed weights, scales, biases. */
static int load_affine(parser* p, const tensor_info* t, const uint8_t* bytes, gguf_contents* c) {
  int bits = t->type->affine_bits;
  int w_shape[CORE_MAX_NDIM], s_shape[CORE_MAX_NDIM];
  memcpy(w_shape, t->shape, sizeof(int) * (size_t)t->ndim);
  memcpy(s_shape, t->shape, sizeof(int) * (size_t)t->ndim);
  w_shape[t->ndim - 1] = t->shape[t->ndim - 1] / 32 * bits;
  s_shape[t->ndim - 1] = t->shape[t->ndim - 1] / 32;
  core_array* w = new_filled_array(w_shape, t->ndim, MLX_UINT32);
  core_array* s = new_filled_array(s_shape, t->ndim, MLX_FLOAT16);
  core_array* b = new_filled_array(s_shape, t->ndim, MLX_FLOAT16);
  char* s_name = affine_name(t->name, ".scales");
  char* b_name = affine_name(t->name, ".biases");
  int status = 0;
  REQUIRE(w && s && b && s_name && b_name, "%s: out of memory loading tensor '%s'", p->src->who,
          t->name);
  if (s->size && !gguf_to_affine(t->type, bytes, s->size, core_array_ptr(w), core_array_ptr(s),
                                  core_array_ptr(b)))
    REQUIRE(0, "%s: %s: tensor '%s': a scale is too large for a float16 bias (load it "
               "dequantized instead)", p->src->who, p->src->label, t->name);
  status = append_tensor(c, t->name, w);
  w = NULL;
  if (!status) status = append_tensor(c, s_name, s);
  s = NULL;
  if (!status) status = append_tensor(c, b_name, b);
  b = NULL;
cleanup:
  core_array_release(w);
  core_array_release(s);
  core_array_release(b);
  free(s_name);
  free(b_name);
  return status;
}

static int load_tensor(parser* p, const tensor_info* t, uint64_t data_start,
                       const mlxc_gguf_load_params* params, gguf_contents* c) {
  if (!t->type->dequantize) {
    core_array* a = io_source_array(p->src, data_start + t->offset, t->shape, t->ndim,
                                    t->type->dtype, false);
    if (!a) {
      char cause[512];
      snprintf(cause, sizeof cause, "%s", mlxc_last_error());
      return util_error("%s: %s: tensor '%s': %s", p->src->who, p->src->label, t->name, cause);
    }
    return append_tensor(c, t->name, a);
  }
  /* in range: check_placement saw the bytes inside the data section */
  const uint8_t* bytes = t->nbytes ? p->data + data_start + t->offset : NULL;
  if (params->quantized && t->type->affine_bits) return load_affine(p, t, bytes, c);
  core_array* a = new_filled_array(t->shape, t->ndim, params->dtype);
  if (!a) return util_error("%s: out of memory loading tensor '%s'", p->src->who, t->name);
  if (a->size) gguf_dequantize(t->type, bytes, a->size / (size_t)t->type->block, core_array_ptr(a),
                               params->dtype);
  return append_tensor(c, t->name, a);
}

static int by_name(const void* x, const void* y) {
  return strcmp((*(const gguf_tensor* const*)x)->name, (*(const gguf_tensor* const*)y)->name);
}

/* Tensor names are unique, including the ".scales"/".biases" of quantized weights. */
static int check_unique_names(parser* p, gguf_contents* c) {
  gguf_tensor** order = malloc((c->n_tensors ? c->n_tensors : 1) * sizeof *order);
  if (!order) return util_error("%s: out of memory", p->src->who);
  for (size_t i = 0; i < c->n_tensors; i++) order[i] = &c->tensors[i];
  qsort(order, c->n_tensors, sizeof *order, by_name);
  int status = 0;
  for (size_t i = 1; i < c->n_tensors && !status; i++)
    if (!strcmp(order[i]->name, order[i - 1]->name))
      status = util_error("%s: %s: two tensors are named '%s'", p->src->who, p->src->label,
                          order[i]->name);
  free(order);
  return status;
}

static int gguf_read(io_source* src, const mlxc_gguf_load_params* params, gguf_contents* c) {
  parser p = {src, src->data, src->size, 0, "the header"};
  tensor_info* infos = NULL;
  uint64_t n_infos = 0;
  int status = 0;
  const uint8_t* magic = take(&p, 4);
  if (!magic) return 1;
  REQUIRE(!memcmp(magic, "GGUF", 4), "%s: %s is not a GGUF file (bad magic)", src->who, src->label);
  uint32_t version;
  uint64_t n_tensors, n_kv;
  TRY(read_u32(&p, &version));
  REQUIRE(version != 1, "%s: %s: GGUF version 1 is not supported (only 2 and 3)", src->who,
          src->label);
  REQUIRE(version == 2 || version == 3, "%s: %s: unsupported GGUF version %u%s", src->who,
          src->label, version,
          (version & 0xffff) == 0 ? " (a big-endian file? only little-endian is supported)" : "");
  TRY(read_u64(&p, &n_tensors));
  TRY(read_u64(&p, &n_kv));
  /* A pair takes at least 12 bytes and a tensor info 24: bounds before any allocation. */
  REQUIRE(n_kv <= (p.size - p.pos) / 12, "%s: %s: %llu key/value pairs cannot fit in the file",
          src->who, src->label, (unsigned long long)n_kv);
  REQUIRE(n_tensors <= (p.size - p.pos) / 24, "%s: %s: %llu tensors cannot fit in the file",
          src->who, src->label, (unsigned long long)n_tensors);
  TRY(read_metadata(&p, n_kv, c));
  uint64_t alignment;
  TRY(read_alignment(&p, c, &alignment));
  infos = calloc(n_tensors ? n_tensors : 1, sizeof *infos);
  REQUIRE(infos, "%s: out of memory", src->who);
  for (; n_infos < n_tensors; n_infos++) TRY(read_tensor_info(&p, n_infos, &infos[n_infos]));
  uint64_t data_start = (p.pos + alignment - 1) / alignment * alignment;
  uint64_t data_size = data_start <= p.size ? p.size - data_start : 0;
  TRY(check_placement(&p, infos, n_tensors, alignment, data_size));
  for (uint64_t i = 0; i < n_tensors && !params->metadata_only; i++)
    TRY(load_tensor(&p, &infos[i], data_start, params, c));
  TRY(check_unique_names(&p, c));
cleanup:
  for (uint64_t i = 0; infos && i < n_tensors; i++) free(infos[i].name);
  free(infos);
  return status;
}

mlxc_gguf_load_params mlxc_gguf_load_default_params(void) {
  return (mlxc_gguf_load_params){.quantized = true, .dtype = MLX_FLOAT16};
}

static int load_file(mlx_io_gguf* gguf, const char* file, mlxc_gguf_load_params params,
                     const char* who) {
  if (!gguf) return util_error("%s: null result", who);
  if (params.dtype != MLX_FLOAT16 && params.dtype != MLX_BFLOAT16 && params.dtype != MLX_FLOAT32)
    return util_error("%s: dequantized dtype must be float16, bfloat16 or float32", who);
  gguf_contents* c = calloc(1, sizeof *c);
  if (!c) return util_error("%s: out of memory", who);
  io_source src;
  int status = io_source_open_file(&src, file, who);
  if (!status) {
    status = gguf_read(&src, &params, c);
    io_source_close(&src);
  }
  if (status) {
    contents_free(c);
    return status;
  }
  contents_free(gguf->ctx);
  gguf->ctx = c;
  return 0;
}

int mlxc_gguf_load(mlx_io_gguf* gguf, const char* file, mlxc_gguf_load_params params) {
  return load_file(gguf, file, params, "mlxc_gguf_load");
}

int mlx_load_gguf(mlx_io_gguf* gguf, const char* file, const mlx_stream s) {
  return load_file(gguf, file, mlxc_gguf_load_default_params(), "mlx_load_gguf");
}

/* ---- saving ---- */

static void put_le(strbuf* sb, uint64_t v, int n) {
  char b[8];
  for (int i = 0; i < n; i++) b[i] = (char)(v >> (8 * i));
  strbuf_append(sb, b, (size_t)n);
}

static void put_string(strbuf* sb, const char* s) {
  put_le(sb, strlen(s), 8);
  strbuf_append(sb, s, strlen(s));
}

/* The value type that stores `dtype` in metadata, or -1. */
static int value_type_of(mlx_dtype dtype) {
  for (int t = 0; t < V_COUNT; t++)
    if (value_types[t].size && value_types[t].dtype == dtype) return t;
  return -1;
}

/* One key/value pair. Metadata arrays must be 0-d (a scalar) or 1-d. */
static int put_meta_pair(strbuf* sb, const gguf_meta* m, const char* who) {
  put_string(sb, m->key);
  if (m->kind == META_STRING) {
    put_le(sb, V_STRING, 4);
    put_string(sb, m->string);
    return 0;
  }
  if (m->kind == META_STRINGS) {
    size_t n = mlx_vector_string_size(m->strings);
    put_le(sb, V_ARRAY, 4);
    put_le(sb, V_STRING, 4);
    put_le(sb, n, 8);
    for (size_t i = 0; i < n; i++) {
      char* s;
      if (mlx_vector_string_get(&s, m->strings, i)) return 1;
      put_string(sb, s ? s : "");
    }
    return 0;
  }
  const core_array* a = m->array;
  int type = value_type_of(a->dtype);
  if (type < 0)
    return util_error("%s: metadata '%s': dtype %s has no GGUF value type", who, m->key,
                      core_dtype_name(a->dtype));
  if (a->ndim > 1)
    return util_error("%s: metadata '%s': arrays must be 0-d or 1-d, not %d-d", who, m->key,
                      a->ndim);
  void* scratch;
  bool failed;
  const void* bytes = io_array_bytes(a, &scratch, &failed);
  if (failed) return 1;
  if (a->ndim == 1) {
    put_le(sb, V_ARRAY, 4);
    put_le(sb, (uint64_t)type, 4);
    put_le(sb, a->size, 8);
  } else {
    put_le(sb, (uint64_t)type, 4);
  }
  if (bytes) strbuf_append(sb, bytes, a->size * (size_t)value_types[type].size);
  free(scratch);
  return 0;
}

/* The alignment the file will declare: general.alignment when set (a UINT32 power of two). */
static int save_alignment(gguf_contents* c, uint64_t* alignment, const char* who) {
  *alignment = GGUF_DEFAULT_ALIGNMENT;
  gguf_meta* m = find_meta(c, "general.alignment");
  if (!m) return 0;
  if (m->kind != META_ARRAY || m->array->ndim != 0 || m->array->dtype != MLX_UINT32)
    return util_error("%s: general.alignment must be a 0-d uint32 array", who);
  if (core_eval_contiguous(m->array)) return 1;
  uint32_t a = *(const uint32_t*)core_array_ptr(m->array);
  if (a == 0 || (a & (a - 1)))
    return util_error("%s: general.alignment %u is not a power of two", who, a);
  *alignment = a;
  return 0;
}

static int write_padding(io_sink* sink, uint64_t n) {
  static const char zeros[64];
  while (n) {
    uint64_t k = n < sizeof zeros ? n : sizeof zeros;
    if (io_sink_write(sink, zeros, k)) return 1;
    n -= k;
  }
  return 0;
}

static uint64_t padded(uint64_t n, uint64_t alignment) {
  return (n + alignment - 1) / alignment * alignment;
}

static int gguf_write(io_sink* sink, gguf_contents* c, const char* who) {
  uint64_t alignment;
  int status = 0;
  strbuf sb = {0};
  TRY(save_alignment(c, &alignment, who));
  for (size_t i = 0; i < c->n_tensors; i++) {
    const core_array* a = c->tensors[i].array;
    REQUIRE(gguf_type_for_dtype(a->dtype), "%s: tensor '%s': dtype %s has no GGUF tensor type", who,
            c->tensors[i].name, core_dtype_name(a->dtype));
  }
  strbuf_append(&sb, "GGUF", 4);
  put_le(&sb, GGUF_WRITE_VERSION, 4);
  put_le(&sb, c->n_tensors, 8);
  put_le(&sb, c->n_meta, 8);
  for (size_t i = 0; i < c->n_meta; i++) TRY(put_meta_pair(&sb, &c->meta[i], who));
  uint64_t offset = 0;
  for (size_t i = 0; i < c->n_tensors; i++) {
    const core_array* a = c->tensors[i].array;
    put_string(&sb, c->tensors[i].name);
    put_le(&sb, (uint64_t)a->ndim, 4);
    for (int d = a->ndim - 1; d >= 0; d--) put_le(&sb, (uint64_t)a->shape[d], 8);
    put_le(&sb, gguf_type_for_dtype(a->dtype)->id, 4);
    put_le(&sb, offset, 8);
    offset = padded(offset + a->size * core_dtype_size(a->dtype), alignment);
  }
  REQUIRE(!sb.failed, "%s: out of memory building the header", who);
  TRY(io_sink_write(sink, sb.data, sb.length));
  TRY(write_padding(sink, padded(sb.length, alignment) - sb.length));
  for (size_t i = 0; i < c->n_tensors; i++) {
    const core_array* a = c->tensors[i].array;
    uint64_t nbytes = a->size * core_dtype_size(a->dtype);
    void* scratch;
    bool failed;
    const void* bytes = io_array_bytes(a, &scratch, &failed);
    status = failed ? 1 : io_sink_write(sink, bytes, nbytes);
    free(scratch);
    if (status) goto cleanup;
    TRY(write_padding(sink, padded(nbytes, alignment) - nbytes));
  }
cleanup:
  strbuf_free(&sb);
  return status;
}

/* Evaluates every tensor and metadata array (so that their bytes can be written). */
static int eval_all(gguf_contents* c) {
  size_t n = c->n_tensors + c->n_meta, k = 0;
  core_array** arrays = malloc((n ? n : 1) * sizeof *arrays);
  if (!arrays) return util_error("mlx_save_gguf: out of memory");
  for (size_t i = 0; i < c->n_tensors; i++) arrays[k++] = c->tensors[i].array;
  for (size_t i = 0; i < c->n_meta; i++)
    if (c->meta[i].kind == META_ARRAY) arrays[k++] = c->meta[i].array;
  int status = k ? core_eval(arrays, (int)k) : 0;
  free(arrays);
  return status;
}

int mlx_save_gguf(const char* file, mlx_io_gguf gguf) {
  const char* who = "mlx_save_gguf";
  if (!file) return util_error("%s: null file name", who);
  gguf_contents* c = gguf.ctx;
  if (!c) return util_error("%s: empty gguf handle (not created with mlx_io_gguf_new)", who);
  if (eval_all(c)) return 1;
  char* path = io_path_with_suffix(file, ".gguf");
  io_sink sink;
  int status = !path || io_sink_open_file(&sink, path, who);
  if (!status) status = io_sink_finish(&sink, gguf_write(&sink, c, who));
  free(path);
  return status;
}

/* ---- the mlx_io_gguf object (io_types.h) ---- */

mlx_io_gguf mlx_io_gguf_new(void) {
  gguf_contents* c = calloc(1, sizeof *c);
  if (!c) util_error("mlx_io_gguf_new: out of memory");
  return (mlx_io_gguf){c};
}

int mlx_io_gguf_free(mlx_io_gguf io) {
  contents_free(io.ctx);
  return 0;
}

int mlx_io_gguf_get_keys(mlx_vector_string* keys, mlx_io_gguf io) {
  gguf_contents* c = io.ctx;
  if (!keys || !c) return util_error("mlx_io_gguf_get_keys: null result or empty handle");
  const char** names = malloc((c->n_tensors ? c->n_tensors : 1) * sizeof *names);
  if (!names) return util_error("mlx_io_gguf_get_keys: out of memory");
  for (size_t i = 0; i < c->n_tensors; i++) names[i] = c->tensors[i].name;
  int status = mlx_vector_string_set_data(keys, names, c->n_tensors);
  free(names);
  return status;
}

int mlx_io_gguf_get_array(mlx_array* arr, mlx_io_gguf io, const char* key) {
  gguf_contents* c = io.ctx;
  if (!arr || !c || !key) return util_error("mlx_io_gguf_get_array: null argument or empty handle");
  gguf_tensor* t = find_tensor(c, key);
  if (!t) {
    util_error("mlx_io_gguf_get_array: no tensor named '%s'", key);
    return 2;
  }
  core_array_retain(t->array);
  core_assign(arr, t->array);
  return 0;
}

/* The entry of `key` when it holds `kind`; otherwise reports and returns 2 (no such key) or
 * 3 (another kind of value), mlx-c's codes. */
static int meta_lookup(mlx_io_gguf io, const char* key, meta_kind kind, const char* who,
                       gguf_meta** out) {
  gguf_contents* c = io.ctx;
  if (!c || !key) return util_error("%s: null key or empty handle", who);
  gguf_meta* m = find_meta(c, key);
  if (!m) {
    util_error("%s: no metadata key '%s'", who, key);
    return 2;
  }
  if (m->kind != kind) {
    static const char* names[] = {"an array", "a string", "a vector of strings"};
    util_error("%s: metadata '%s' is %s", who, key, names[m->kind]);
    return 3;
  }
  *out = m;
  return 0;
}

int mlx_io_gguf_get_metadata_array(mlx_array* arr, mlx_io_gguf io, const char* key) {
  gguf_meta* m;
  if (!arr) return util_error("mlx_io_gguf_get_metadata_array: null result");
  int status = meta_lookup(io, key, META_ARRAY, "mlx_io_gguf_get_metadata_array", &m);
  if (status) return status;
  core_array_retain(m->array);
  core_assign(arr, m->array);
  return 0;
}

int mlx_io_gguf_get_metadata_string(mlx_string* str, mlx_io_gguf io, const char* key) {
  gguf_meta* m;
  if (!str) return util_error("mlx_io_gguf_get_metadata_string: null result");
  int status = meta_lookup(io, key, META_STRING, "mlx_io_gguf_get_metadata_string", &m);
  if (status) return status;
  mlx_string fresh = mlx_string_new_data(m->string);
  if (!fresh.ctx) return 1;
  mlx_string_free(*str);
  *str = fresh;
  return 0;
}

int mlx_io_gguf_get_metadata_vector_string(mlx_vector_string* vstr, mlx_io_gguf io,
                                           const char* key) {
  gguf_meta* m;
  if (!vstr) return util_error("mlx_io_gguf_get_metadata_vector_string: null result");
  int status = meta_lookup(io, key, META_STRINGS, "mlx_io_gguf_get_metadata_vector_string", &m);
  if (status) return status;
  return mlx_vector_string_set(vstr, m->strings);
}

/* mlx-c's has_*: true when `key` holds `kind`; a missing key returns 2 (without a message). */
static int meta_has(bool* flag, mlx_io_gguf io, const char* key, meta_kind kind, const char* who) {
  gguf_contents* c = io.ctx;
  if (!flag || !c || !key) return util_error("%s: null argument or empty handle", who);
  gguf_meta* m = find_meta(c, key);
  *flag = m && m->kind == kind;
  return m ? 0 : 2;
}

int mlx_io_gguf_has_metadata_array(bool* flag, mlx_io_gguf io, const char* key) {
  return meta_has(flag, io, key, META_ARRAY, "mlx_io_gguf_has_metadata_array");
}

int mlx_io_gguf_has_metadata_string(bool* flag, mlx_io_gguf io, const char* key) {
  return meta_has(flag, io, key, META_STRING, "mlx_io_gguf_has_metadata_string");
}

int mlx_io_gguf_has_metadata_vector_string(bool* flag, mlx_io_gguf io, const char* key) {
  return meta_has(flag, io, key, META_STRINGS, "mlx_io_gguf_has_metadata_vector_string");
}

int mlx_io_gguf_set_array(mlx_io_gguf io, const char* key, const mlx_array arr) {
  gguf_contents* c = io.ctx;
  if (!c || !key || !arr.ctx)
    return util_error("mlx_io_gguf_set_array: null argument or empty handle");
  core_array_retain(core_ctx(arr));
  gguf_tensor* t = find_tensor(c, key);
  if (!t) return append_tensor(c, key, core_ctx(arr));
  core_array_release(t->array);
  t->array = core_ctx(arr);
  return 0;
}

/* A metadata entry for `key` with a copied key; NULL key (reported) when out of memory. */
static gguf_meta new_meta(const char* key, meta_kind kind, const char* who) {
  gguf_meta m = {.key = strdup(key), .kind = kind};
  if (!m.key) util_error("%s: out of memory", who);
  return m;
}

int mlx_io_gguf_set_metadata_array(mlx_io_gguf io, const char* key, const mlx_array marr) {
  const char* who = "mlx_io_gguf_set_metadata_array";
  if (!io.ctx || !key || !marr.ctx) return util_error("%s: null argument or empty handle", who);
  gguf_meta m = new_meta(key, META_ARRAY, who);
  if (!m.key) return 1;
  core_array_retain(core_ctx(marr));
  m.array = core_ctx(marr);
  return put_meta(io.ctx, m);
}

int mlx_io_gguf_set_metadata_string(mlx_io_gguf io, const char* key, const char* mstr) {
  const char* who = "mlx_io_gguf_set_metadata_string";
  if (!io.ctx || !key || !mstr) return util_error("%s: null argument or empty handle", who);
  gguf_meta m = new_meta(key, META_STRING, who);
  if (!m.key) return 1;
  m.string = strdup(mstr);
  if (!m.string) {
    meta_clear(&m);
    return util_error("%s: out of memory", who);
  }
  return put_meta(io.ctx, m);
}

int mlx_io_gguf_set_metadata_vector_string(mlx_io_gguf io, const char* key,
                                           const mlx_vector_string mvstr) {
  const char* who = "mlx_io_gguf_set_metadata_vector_string";
  if (!io.ctx || !key || !mvstr.ctx) return util_error("%s: null argument or empty handle", who);
  gguf_meta m = new_meta(key, META_STRINGS, who);
  if (!m.key) return 1;
  if (mlx_vector_string_set(&m.strings, mvstr)) {
    meta_clear(&m);
    return 1;
  }
  return put_meta(io.ctx, m);
}
