/* safetensors files (io.h: mlx_load_safetensors, mlx_save_safetensors and stream forms).
 *
 * Layout: an 8-byte little-endian header length N, N bytes of JSON (padded with spaces to a
 * multiple of 8), then the data. The JSON maps each tensor name to
 *   {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}
 * with offsets relative to the data start, and "__metadata__" to a map of strings. */
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/io_internal.h"
#include "mlx/c/io.h"
#include "mlxc/error.h"
#include "util/error.h"

/* The reference implementation's limit on the JSON header. */
#define ST_MAX_HEADER 100000000ull

static const struct {
  mlx_dtype dtype;
  const char* name;
} st_types[] = {
    {MLX_BOOL, "BOOL"}, {MLX_UINT8, "U8"},     {MLX_INT8, "I8"},       {MLX_UINT16, "U16"},
    {MLX_INT16, "I16"}, {MLX_UINT32, "U32"},   {MLX_INT32, "I32"},     {MLX_UINT64, "U64"},
    {MLX_INT64, "I64"}, {MLX_FLOAT16, "F16"},  {MLX_BFLOAT16, "BF16"}, {MLX_FLOAT32, "F32"},
    {MLX_FLOAT64, "F64"}, {MLX_COMPLEX64, "C64"}, /* C64: as MLX writes complex64 */
};
#define ST_TYPE_COUNT (sizeof st_types / sizeof st_types[0])

static const char* st_dtype_name(mlx_dtype dtype) {
  for (size_t i = 0; i < ST_TYPE_COUNT; i++)
    if (st_types[i].dtype == dtype) return st_types[i].name;
  return NULL;
}

/* ---- loading ---- */

typedef struct {
  const char* name;     /* borrowed from the JSON */
  mlx_dtype dtype;
  int ndim;
  int shape[CORE_MAX_NDIM];
  uint64_t begin, end;
} st_entry;

/* Reads a non-negative JSON integer no larger than `max`. */
static bool json_uint(const json_t* v, uint64_t max, uint64_t* out) {
  if (!json_is_integer(v) || json_integer_value(v) < 0 || (uint64_t)json_integer_value(v) > max)
    return false;
  *out = (uint64_t)json_integer_value(v);
  return true;
}

/* Validates one tensor's description: dtype, shape, offsets in range and of the right length. */
static int parse_entry(io_source* src, const char* name, const json_t* info, uint64_t data_len,
                       st_entry* e) {
  const char* who = src->who;
  const char* file = src->label;
  e->name = name;
  if (!json_is_object(info))
    return util_error("%s: %s: tensor '%s': description is not an object", who, file, name);
  const json_t* dtype = json_object_get(info, "dtype");
  const json_t* shape = json_object_get(info, "shape");
  const json_t* offsets = json_object_get(info, "data_offsets");
  if (!json_is_string(dtype) || !json_is_array(shape) || !json_is_array(offsets))
    return util_error("%s: %s: tensor '%s': needs string 'dtype', array 'shape' and array "
                      "'data_offsets'", who, file, name);
  size_t t = 0;
  while (t < ST_TYPE_COUNT && strcmp(st_types[t].name, json_string_value(dtype))) t++;
  if (t == ST_TYPE_COUNT)
    return util_error("%s: %s: tensor '%s': unsupported dtype '%s'", who, file, name,
                      json_string_value(dtype));
  e->dtype = st_types[t].dtype;
  if (json_array_size(shape) > CORE_MAX_NDIM)
    return util_error("%s: %s: tensor '%s': %zu dimensions (at most %d)", who, file, name,
                      json_array_size(shape), CORE_MAX_NDIM);
  e->ndim = (int)json_array_size(shape);
  int64_t dims[CORE_MAX_NDIM];
  for (int i = 0; i < e->ndim; i++) {
    uint64_t d;
    if (!json_uint(json_array_get(shape, (size_t)i), INT_MAX, &d))
      return util_error("%s: %s: tensor '%s': shape entry %d is not an integer in [0, 2^31)", who,
                        file, name, i);
    e->shape[i] = (int)d;
    dims[i] = (int64_t)d;
  }
  size_t item = core_dtype_size(e->dtype);
  uint64_t count;
  if (!io_checked_count(dims, e->ndim, UINT64_MAX / item, &count))
    return util_error("%s: %s: tensor '%s': shape is too large (element count overflows)", who,
                      file, name);
  if (json_array_size(offsets) != 2 ||
      !json_uint(json_array_get(offsets, 0), UINT64_MAX >> 1, &e->begin) ||
      !json_uint(json_array_get(offsets, 1), UINT64_MAX >> 1, &e->end) || e->begin > e->end)
    return util_error("%s: %s: tensor '%s': data_offsets must be [begin, end] with 0 <= begin "
                      "<= end", who, file, name);
  if (e->end > data_len)
    return util_error("%s: %s: tensor '%s': data_offsets [%llu, %llu] run past the end of the "
                      "data (%llu bytes)", who, file, name, (unsigned long long)e->begin,
                      (unsigned long long)e->end, (unsigned long long)data_len);
  if (e->end - e->begin != count * item)
    return util_error("%s: %s: tensor '%s': shape and dtype %s need %llu bytes but data_offsets "
                      "[%llu, %llu] hold %llu", who, file, name, st_types[t].name,
                      (unsigned long long)(count * item), (unsigned long long)e->begin,
                      (unsigned long long)e->end, (unsigned long long)(e->end - e->begin));
  return 0;
}

static int by_begin(const void* x, const void* y) {
  const st_entry *a = *(const st_entry* const*)x, *b = *(const st_entry* const*)y;
  if (a->begin != b->begin) return a->begin < b->begin ? -1 : 1;
  return (a->end > b->end) - (a->end < b->end);
}

/* Tensors must not share bytes (empty ones take none). */
static int check_overlaps(io_source* src, st_entry* entries, size_t n) {
  st_entry** order = malloc((n ? n : 1) * sizeof *order);
  if (!order) return util_error("%s: out of memory", src->who);
  size_t m = 0;
  for (size_t i = 0; i < n; i++)
    if (entries[i].end > entries[i].begin) order[m++] = &entries[i];
  qsort(order, m, sizeof *order, by_begin);
  int status = 0;
  for (size_t i = 1; i < m && !status; i++)
    if (order[i]->begin < order[i - 1]->end)
      status = util_error("%s: %s: tensors '%s' [%llu, %llu] and '%s' [%llu, %llu] overlap",
                          src->who, src->label, order[i - 1]->name,
                          (unsigned long long)order[i - 1]->begin,
                          (unsigned long long)order[i - 1]->end, order[i]->name,
                          (unsigned long long)order[i]->begin, (unsigned long long)order[i]->end);
  free(order);
  return status;
}

static int read_metadata(io_source* src, const json_t* meta, mlx_map_string_to_string out) {
  if (json_is_null(meta)) return 0; /* MLX writes null for empty metadata */
  if (!json_is_object(meta))
    return util_error("%s: %s: __metadata__ is not an object", src->who, src->label);
  const char* key;
  const json_t* value;
  json_object_foreach((json_t*)meta, key, value) {
    if (!json_is_string(value))
      return util_error("%s: %s: __metadata__ value of '%s' is not a string", src->who,
                        src->label, key);
    if (mlx_map_string_to_string_insert(out, key, json_string_value(value))) return 1;
  }
  return 0;
}

/* Parses and validates the whole header, then builds every tensor. */
static int st_read(io_source* src, mlx_map_string_to_array tensors,
                   mlx_map_string_to_string metadata) {
  const char* who = src->who;
  const char* file = src->label;
  unsigned char len_bytes[8];
  char* text = NULL;
  json_t* root = NULL;
  st_entry* entries = NULL;
  int status = 0;
  TRY(io_source_read(src, len_bytes, 8, 0));
  uint64_t len = 0;
  for (int i = 7; i >= 0; i--) len = len << 8 | len_bytes[i];
  REQUIRE(len >= 2 && len < ST_MAX_HEADER, "%s: %s: invalid header length %llu", who, file,
          (unsigned long long)len);
  REQUIRE(src->size == IO_SIZE_UNKNOWN || len <= src->size - 8,
          "%s: %s: header length %llu runs past the end of the file (%llu bytes)", who, file,
          (unsigned long long)len, (unsigned long long)src->size);
  text = malloc(len);
  REQUIRE(text, "%s: out of memory", who);
  TRY(io_source_read(src, text, len, 8));
  json_error_t err;
  root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
  REQUIRE(root, "%s: %s: invalid JSON header: %s (line %d, column %d)", who, file, err.text,
          err.line, err.column);
  REQUIRE(json_is_object(root), "%s: %s: JSON header is not an object", who, file);
  uint64_t data_start = 8 + len;
  uint64_t data_len = src->size == IO_SIZE_UNKNOWN ? UINT64_MAX >> 1 : src->size - data_start;
  size_t n = 0;
  entries = malloc((json_object_size(root) + 1) * sizeof *entries);
  REQUIRE(entries, "%s: out of memory", who);
  const char* key;
  json_t* value;
  json_object_foreach(root, key, value) {
    if (!strcmp(key, "__metadata__"))
      TRY(read_metadata(src, value, metadata));
    else
      TRY(parse_entry(src, key, value, data_len, &entries[n++]));
  }
  TRY(check_overlaps(src, entries, n));
  for (size_t i = 0; i < n; i++) {
    core_array* a = io_source_array(src, data_start + entries[i].begin, entries[i].shape,
                                    entries[i].ndim, entries[i].dtype, false);
    if (!a) {
      /* name the tensor in the message; the cause (out of memory, a failed read) follows */
      char cause[512];
      snprintf(cause, sizeof cause, "%s", mlxc_last_error());
      status = util_error("%s: %s: tensor '%s': %s", who, file, entries[i].name, cause);
      goto cleanup;
    }
    status = mlx_map_string_to_array_insert(tensors, entries[i].name, core_handle(a));
    core_array_release(a);
    if (status) goto cleanup;
  }
cleanup:
  free(entries);
  json_decref(root);
  free(text);
  return status;
}

/* Loads into fresh maps and moves them into the results only when everything succeeded. */
static int load_from(mlx_map_string_to_array* res_0, mlx_map_string_to_string* res_1,
                     io_source* src) {
  mlx_map_string_to_array tensors = mlx_map_string_to_array_new();
  mlx_map_string_to_string metadata = mlx_map_string_to_string_new();
  int status = !tensors.ctx || !metadata.ctx ? 1 : st_read(src, tensors, metadata);
  io_source_close(src);
  if (status) {
    mlx_map_string_to_array_free(tensors);
    mlx_map_string_to_string_free(metadata);
    return status;
  }
  mlx_map_string_to_array_free(*res_0);
  mlx_map_string_to_string_free(*res_1);
  *res_0 = tensors;
  *res_1 = metadata;
  return 0;
}

int mlx_load_safetensors(mlx_map_string_to_array* res_0, mlx_map_string_to_string* res_1,
                         const char* file, const mlx_stream s) {
  if (!res_0 || !res_1) return util_error("mlx_load_safetensors: null result");
  io_source src;
  if (io_source_open_file(&src, file, "mlx_load_safetensors")) return 1;
  return load_from(res_0, res_1, &src);
}

int mlx_load_safetensors_reader(mlx_map_string_to_array* res_0, mlx_map_string_to_string* res_1,
                                mlx_io_reader in_stream, const mlx_stream s) {
  if (!res_0 || !res_1) return util_error("mlx_load_safetensors_reader: null result");
  io_source src;
  if (io_source_open_reader(&src, in_stream, "mlx_load_safetensors_reader")) return 1;
  return load_from(res_0, res_1, &src);
}

/* ---- saving ---- */

typedef struct {
  size_t count;
  const char** names;   /* borrowed from the map */
  core_array** arrays;  /* retained */
} st_list;

static void list_free(st_list* l) {
  for (size_t i = 0; i < l->count; i++) core_array_release(l->arrays[i]);
  free(l->names);
  free(l->arrays);
}

/* The tensors of `param` in insertion order, evaluated. */
static int collect(const char* who, mlx_map_string_to_array param, st_list* l) {
  *l = (st_list){0};
  if (!param.ctx) return util_error("%s: empty tensor map", who);
  mlx_map_string_to_array_iterator it = mlx_map_string_to_array_iterator_new(param);
  if (!it.ctx) return 1;
  int status = 0;
  size_t capacity = 0;
  const char* name;
  mlx_array value = mlx_array_new();
  while (!mlx_map_string_to_array_iterator_next(&name, &value, it)) {
    if (l->count == capacity) {
      capacity = capacity ? 2 * capacity : 16;
      const char** names = realloc(l->names, capacity * sizeof *names);
      if (names) l->names = names;
      core_array** arrays = realloc(l->arrays, capacity * sizeof *arrays);
      if (arrays) l->arrays = arrays;
      REQUIRE(names && arrays, "%s: out of memory", who);
    }
    REQUIRE(strcmp(name, "__metadata__"), "%s: '__metadata__' is reserved, not a tensor name", who);
    REQUIRE(st_dtype_name(core_ctx(value)->dtype), "%s: tensor '%s': unsupported dtype", who, name);
    core_array_retain(core_ctx(value));
    l->names[l->count] = name;
    l->arrays[l->count++] = core_ctx(value);
  }
  if (l->count) TRY(core_eval(l->arrays, (int)l->count));
cleanup:
  mlx_array_free(value);
  mlx_map_string_to_array_iterator_free(it);
  if (status) list_free(l);
  return status;
}

/* The JSON header, padded with spaces to a multiple of 8 bytes as the reference writer does. */
static char* build_header(const char* who, const st_list* l, mlx_map_string_to_string metadata,
                          size_t* length) {
  json_t* root = json_object();
  json_t* meta = json_object();
  char* text = NULL;
  int status = 0;
  REQUIRE(root && meta, "%s: out of memory", who);
  if (metadata.ctx) {
    mlx_map_string_to_string_iterator it = mlx_map_string_to_string_iterator_new(metadata);
    REQUIRE(it.ctx, "%s: out of memory", who);
    const char *key, *value;
    while (!status && !mlx_map_string_to_string_iterator_next(&key, &value, it)) {
      json_t* v = json_string(value);
      if (!v || json_object_set_new(meta, key, v))
        status = util_error("%s: metadata '%s' is not valid UTF-8", who, key);
    }
    mlx_map_string_to_string_iterator_free(it);
    if (status) goto cleanup;
  }
  if (json_object_size(meta)) {
    REQUIRE(!json_object_set(root, "__metadata__", meta), "%s: out of memory", who);
  }
  uint64_t offset = 0;
  for (size_t i = 0; i < l->count; i++) {
    const core_array* a = l->arrays[i];
    uint64_t nbytes = (uint64_t)a->size * core_dtype_size(a->dtype);
    json_t* shape = json_array();
    for (int d = 0; shape && d < a->ndim; d++) json_array_append_new(shape, json_integer(a->shape[d]));
    json_t* info = json_pack("{s:s, s:o, s:[I, I]}", "dtype", st_dtype_name(a->dtype), "shape",
                             shape, "data_offsets", (json_int_t)offset, (json_int_t)(offset + nbytes));
    if (!info || json_object_set_new(root, l->names[i], info))
      status = util_error("%s: tensor name '%s' is not valid UTF-8 (or out of memory)", who,
                          l->names[i]);
    if (status) goto cleanup;
    offset += nbytes;
  }
  char* json = json_dumps(root, JSON_COMPACT);
  REQUIRE(json, "%s: out of memory", who);
  size_t n = strlen(json), padded = (n + 7) / 8 * 8;
  text = realloc(json, padded + 1);
  if (!text) free(json);
  REQUIRE(text, "%s: out of memory", who);
  memset(text + n, ' ', padded - n);
  text[padded] = '\0';
  *length = padded;
cleanup:
  json_decref(meta);
  json_decref(root);
  if (status) {
    free(text);
    text = NULL;
  }
  return text;
}

static int st_write(io_sink* sink, const st_list* l, mlx_map_string_to_string metadata) {
  size_t len = 0;
  char* header = build_header(sink->who, l, metadata, &len);
  if (!header) return 1;
  unsigned char len_bytes[8];
  for (int i = 0; i < 8; i++) len_bytes[i] = (unsigned char)((uint64_t)len >> (8 * i));
  int status = 0;
  TRY(io_sink_write(sink, len_bytes, 8));
  TRY(io_sink_write(sink, header, len));
  for (size_t i = 0; i < l->count; i++) {
    void* scratch;
    bool failed;
    const void* bytes = io_array_bytes(l->arrays[i], &scratch, &failed);
    status = failed ? 1
                    : io_sink_write(sink, bytes, l->arrays[i]->size * core_dtype_size(l->arrays[i]->dtype));
    free(scratch);
    if (status) goto cleanup;
  }
cleanup:
  free(header);
  return status;
}

int mlx_save_safetensors(const char* file, const mlx_map_string_to_array param,
                         const mlx_map_string_to_string metadata) {
  const char* who = "mlx_save_safetensors";
  if (!file) return util_error("%s: null file name", who);
  st_list l;
  if (collect(who, param, &l)) return 1;
  char* path = io_path_with_suffix(file, ".safetensors");
  io_sink sink;
  int status = !path || io_sink_open_file(&sink, path, who);
  if (!status) status = io_sink_finish(&sink, st_write(&sink, &l, metadata));
  free(path);
  list_free(&l);
  return status;
}

int mlx_save_safetensors_writer(mlx_io_writer in_stream, const mlx_map_string_to_array param,
                                const mlx_map_string_to_string metadata) {
  const char* who = "mlx_save_safetensors_writer";
  st_list l;
  if (collect(who, param, &l)) return 1;
  io_sink sink;
  int status = io_sink_open_writer(&sink, in_stream, who);
  if (!status) status = io_sink_finish(&sink, st_write(&sink, &l, metadata));
  list_free(&l);
  return status;
}
