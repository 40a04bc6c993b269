/* NumPy .npy files (io.h: mlx_load, mlx_save and their stream forms).
 *
 * Layout: magic "\x93NUMPY", major and minor version bytes, the header length (uint16 LE in
 * 1.0, uint32 LE in 2.0 and 3.0), then a Python dict literal such as
 *   {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
 * padded with spaces and a final '\n' so that the data starts at a multiple of 64, then the
 * raw elements. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/copy.h"
#include "io/io_internal.h"
#include "mlx/c/io.h"
#include "util/error.h"
#include "util/strbuf.h"

static const unsigned char npy_magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
/* Real headers are a few hundred bytes; the cap keeps a corrupt length from allocating much. */
#define NPY_MAX_HEADER ((uint32_t)1 << 20)
#define NPY_ALIGN 64

/* descr kind and size of each dtype. bfloat16 has no NumPy type: MLX writes it as 'V2'. */
static const struct {
  mlx_dtype dtype;
  char kind;
  int size;
} npy_types[] = {
    {MLX_BOOL, 'b', 1},    {MLX_UINT8, 'u', 1},    {MLX_UINT16, 'u', 2},   {MLX_UINT32, 'u', 4},
    {MLX_UINT64, 'u', 8},  {MLX_INT8, 'i', 1},     {MLX_INT16, 'i', 2},    {MLX_INT32, 'i', 4},
    {MLX_INT64, 'i', 8},   {MLX_FLOAT16, 'f', 2},  {MLX_FLOAT32, 'f', 4},  {MLX_FLOAT64, 'f', 8},
    {MLX_BFLOAT16, 'V', 2}, {MLX_COMPLEX64, 'c', 8},
};
#define NPY_TYPE_COUNT (sizeof npy_types / sizeof npy_types[0])

typedef struct {
  mlx_dtype dtype;
  bool swap;            /* big-endian data on this little-endian host */
  bool fortran;
  int ndim;
  int shape[CORE_MAX_NDIM];
  uint64_t data_offset;
  uint64_t nbytes;
} npy_header;

/* ---- header parsing: a tiny reader for the Python literal NumPy writes ---- */

typedef struct {
  const char* p;
  const char* end;
} cursor;

static void skip_space(cursor* c) {
  while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) c->p++;
}

static bool accept(cursor* c, char ch) {
  skip_space(c);
  if (c->p < c->end && *c->p == ch) {
    c->p++;
    return true;
  }
  return false;
}

static bool accept_word(cursor* c, const char* word) {
  skip_space(c);
  size_t n = strlen(word);
  if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n) != 0) return false;
  c->p += n;
  return true;
}

/* A quoted string without escapes (keys and descr never need them). */
static bool parse_string(cursor* c, char* out, size_t capacity) {
  skip_space(c);
  if (c->p >= c->end || (*c->p != '\'' && *c->p != '"')) return false;
  char quote = *c->p++;
  size_t n = 0;
  while (c->p < c->end && *c->p != quote) {
    if (*c->p == '\\' || n + 1 >= capacity) return false;
    out[n++] = *c->p++;
  }
  if (c->p >= c->end) return false;
  c->p++;
  out[n] = '\0';
  return true;
}

/* A tuple of non-negative ints: (), (3,), (2, 3) — Python 2's "3L" is accepted too. */
static bool parse_shape(cursor* c, npy_header* h) {
  if (!accept(c, '(')) return false;
  h->ndim = 0;
  while (!accept(c, ')')) {
    skip_space(c);
    if (h->ndim == CORE_MAX_NDIM || c->p >= c->end || *c->p < '0' || *c->p > '9') return false;
    int64_t dim = 0;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
      dim = dim * 10 + (*c->p++ - '0');
      if (dim > INT_MAX) return false;
    }
    if (c->p < c->end && *c->p == 'L') c->p++;
    h->shape[h->ndim++] = (int)dim;
    if (!accept(c, ',')) {
      if (!accept(c, ')')) return false;
      break;
    }
  }
  return true;
}

static bool parse_descr(const char* descr, npy_header* h) {
  const char* t = descr;
  char order = strchr("<>|=", *t) && *t ? *t++ : '|';
  char kind = *t;
  if (!kind || t[1] < '1' || t[1] > '9' || (t[2] && (t[2] < '0' || t[2] > '9' || t[3]))) return false;
  int size = atoi(t + 1);
  for (size_t i = 0; i < NPY_TYPE_COUNT; i++)
    if (npy_types[i].kind == kind && npy_types[i].size == size) {
      h->dtype = npy_types[i].dtype;
      h->swap = order == '>' && size > 1;
      return true;
    }
  return false;
}

static int parse_header(const char* text, size_t len, npy_header* h, const char* who,
                        const char* label) {
  cursor c = {text, text + len};
  char key[32], descr[64] = "";
  bool seen_descr = false, seen_order = false, seen_shape = false;
  if (!accept(&c, '{')) return util_error("%s: %s: header is not a dict", who, label);
  while (!accept(&c, '}')) {
    if (!parse_string(&c, key, sizeof key) || !accept(&c, ':'))
      return util_error("%s: %s: malformed header key", who, label);
    if (!strcmp(key, "descr") && !seen_descr) {
      if (!parse_string(&c, descr, sizeof descr))
        return util_error("%s: %s: descr is not a simple type string (structured dtypes are not "
                          "supported)", who, label);
      if (!parse_descr(descr, h)) {
        if (!strcmp(descr + (descr[0] && strchr("<>|=", descr[0]) ? 1 : 0), "c16"))
          return util_error("%s: %s: complex128 ('%s') is not supported", who, label, descr);
        return util_error("%s: %s: unsupported dtype '%s'", who, label, descr);
      }
      seen_descr = true;
    } else if (!strcmp(key, "fortran_order") && !seen_order) {
      if (accept_word(&c, "True"))
        h->fortran = true;
      else if (accept_word(&c, "False"))
        h->fortran = false;
      else
        return util_error("%s: %s: fortran_order is not True or False", who, label);
      seen_order = true;
    } else if (!strcmp(key, "shape") && !seen_shape) {
      if (!parse_shape(&c, h))
        return util_error("%s: %s: shape is not a tuple of at most %d sizes below 2^31", who,
                          label, CORE_MAX_NDIM);
      seen_shape = true;
    } else {
      return util_error("%s: %s: unexpected or repeated header key '%s'", who, label, key);
    }
    if (!accept(&c, ',')) {
      if (!accept(&c, '}')) return util_error("%s: %s: malformed header", who, label);
      break;
    }
  }
  skip_space(&c);
  if (c.p != c.end) return util_error("%s: %s: trailing bytes after the header dict", who, label);
  if (!seen_descr || !seen_order || !seen_shape)
    return util_error("%s: %s: header lacks %s", who, label,
                      !seen_descr ? "'descr'" : !seen_order ? "'fortran_order'" : "'shape'");
  return 0;
}

/* Reads magic, version and header; checks that the data fits in the source. */
static int read_header(io_source* src, npy_header* h) {
  unsigned char pre[12];
  int status = 0;
  char* text = NULL;
  *h = (npy_header){0};
  TRY(io_source_read(src, pre, 10, 0));
  REQUIRE(!memcmp(pre, npy_magic, sizeof npy_magic), "%s: %s is not a .npy file (bad magic)",
          src->who, src->label);
  int major = pre[6], minor = pre[7];
  REQUIRE((major == 1 || major == 2 || major == 3) && minor == 0,
          "%s: %s: unsupported .npy format version %d.%d", src->who, src->label, major, minor);
  uint32_t len;
  uint64_t start;
  if (major == 1) {
    len = pre[8] | (uint32_t)pre[9] << 8;
    start = 10;
  } else {
    TRY(io_source_read(src, pre, 12, 0));
    len = pre[8] | (uint32_t)pre[9] << 8 | (uint32_t)pre[10] << 16 | (uint32_t)pre[11] << 24;
    start = 12;
  }
  REQUIRE(len <= NPY_MAX_HEADER, "%s: %s: header length %u exceeds the limit of %u bytes",
          src->who, src->label, len, NPY_MAX_HEADER);
  text = malloc(len ? len : 1);
  REQUIRE(text, "%s: out of memory", src->who);
  TRY(io_source_read(src, text, len, start));
  TRY(parse_header(text, len, h, src->who, src->label));
  int64_t dims[CORE_MAX_NDIM];
  for (int i = 0; i < h->ndim; i++) dims[i] = h->shape[i];
  size_t item = core_dtype_size(h->dtype);
  uint64_t count;
  REQUIRE(io_checked_count(dims, h->ndim, UINT64_MAX / item, &count),
          "%s: %s: shape is too large", src->who, src->label);
  h->data_offset = start + len;
  h->nbytes = count * item;
  REQUIRE(src->size == IO_SIZE_UNKNOWN || h->nbytes <= src->size - h->data_offset,
          "%s: %s is truncated: the data needs %llu bytes at offset %llu but the file has %llu",
          src->who, src->label, (unsigned long long)h->nbytes,
          (unsigned long long)h->data_offset, (unsigned long long)src->size);
cleanup:
  free(text);
  return status;
}

static void byte_swap(core_array* a) {
  /* complex64 is two float32 values, each swapped on its own */
  size_t unit = a->dtype == MLX_COMPLEX64 ? 4 : core_dtype_size(a->dtype);
  unsigned char* p = core_array_ptr(a);
  size_t n = a->size * core_dtype_size(a->dtype);
  for (size_t i = 0; i + unit <= n; i += unit)
    for (size_t j = 0; j < unit / 2; j++) {
      unsigned char t = p[i + j];
      p[i + j] = p[i + unit - 1 - j];
      p[i + unit - 1 - j] = t;
    }
}

/* Fortran-order data of `shape` is the row-major array of the reversed shape; return it as a
 * row-major array of `shape`. Takes `t`. */
static core_array* from_fortran(core_array* t, const int* shape, int ndim) {
  core_array* out = core_array_create(shape, ndim, t->dtype);
  if (!out || core_array_alloc_contiguous(out)) {
    core_array_release(out);
    core_array_release(t);
    return NULL;
  }
  int64_t strides[CORE_MAX_NDIM];
  int64_t s = 1;
  for (int i = 0; i < ndim; i++) {
    strides[i] = s;
    s *= shape[i] ? shape[i] : 1;
  }
  if (out->size)
    cpu_copy_strided(out->buffer->data, core_array_ptr(t), shape, strides, ndim,
                     core_dtype_size(t->dtype));
  out->evaluated = true;
  core_array_release(t);
  return out;
}

static core_array* npy_read(io_source* src) {
  npy_header h;
  if (read_header(src, &h)) return NULL;
  bool fortran = h.fortran && h.ndim > 1;
  int rows[CORE_MAX_NDIM];
  for (int i = 0; i < h.ndim; i++) rows[i] = fortran ? h.shape[h.ndim - 1 - i] : h.shape[i];
  core_array* a = io_source_array(src, h.data_offset, rows, h.ndim, h.dtype, h.swap);
  if (!a) return NULL;
  if (h.swap) byte_swap(a);
  return fortran ? from_fortran(a, h.shape, h.ndim) : a;
}

static int load_from(mlx_array* res, io_source* src) {
  core_array* a = npy_read(src);
  io_source_close(src);
  if (!a) return 1;
  core_assign(res, a);
  return 0;
}

int mlx_load(mlx_array* res, const char* file, const mlx_stream s) {
  if (!res) return util_error("mlx_load: null result");
  io_source src;
  if (io_source_open_file(&src, file, "mlx_load")) return 1;
  return load_from(res, &src);
}

int mlx_load_reader(mlx_array* res, mlx_io_reader in_stream, const mlx_stream s) {
  if (!res) return util_error("mlx_load_reader: null result");
  io_source src;
  if (io_source_open_reader(&src, in_stream, "mlx_load_reader")) return 1;
  return load_from(res, &src);
}

/* ---- saving ---- */

static void format_header(strbuf* sb, const core_array* a, char kind) {
  size_t item = core_dtype_size(a->dtype);
  strbuf_printf(sb, "{'descr': '%c%c%zu', 'fortran_order': False, 'shape': (", item > 1 ? '<' : '|',
                kind, item);
  for (int i = 0; i < a->ndim; i++)
    strbuf_printf(sb, i ? ", %d" : "%d", a->shape[i]);
  strbuf_puts(sb, a->ndim == 1 ? ",), }" : "), }");
}

/* Writes `a` (evaluated) as .npy version 1.0, C order, little-endian. */
static int npy_write(io_sink* sink, const core_array* a) {
  char kind = 0;
  for (size_t i = 0; i < NPY_TYPE_COUNT; i++)
    if (npy_types[i].dtype == a->dtype) kind = npy_types[i].kind;
  if (!kind) return util_error("%s: unsupported dtype %s", sink->who, core_dtype_name(a->dtype));
  int status = 0;
  void* scratch = NULL;
  strbuf sb = {0};
  format_header(&sb, a, kind);
  REQUIRE(!sb.failed, "%s: out of memory", sink->who);
  /* Version 1.0 always suffices: with at most CORE_MAX_NDIM dims of at most 10 digits the
   * header stays far below the 64 KiB that would need version 2.0. */
  size_t total = (10 + sb.length + 1 + NPY_ALIGN - 1) / NPY_ALIGN * NPY_ALIGN;
  size_t len = total - 10;
  while (sb.length < len - 1) strbuf_puts(&sb, " ");
  strbuf_puts(&sb, "\n");
  REQUIRE(!sb.failed, "%s: out of memory", sink->who);
  unsigned char pre[10];
  memcpy(pre, npy_magic, sizeof npy_magic);
  pre[6] = 1;
  pre[7] = 0;
  pre[8] = (unsigned char)(len & 0xff);
  pre[9] = (unsigned char)(len >> 8);
  TRY(io_sink_write(sink, pre, sizeof pre));
  TRY(io_sink_write(sink, sb.data, sb.length));
  bool failed;
  const void* bytes = io_array_bytes(a, &scratch, &failed);
  REQUIRE(!failed, "%s: out of memory", sink->who);
  TRY(io_sink_write(sink, bytes, a->size * core_dtype_size(a->dtype)));
cleanup:
  free(scratch);
  strbuf_free(&sb);
  return status;
}

static core_array* evaluated_arg(mlx_array a, const char* who) {
  core_array* x = core_ctx(a);
  if (!x) {
    util_error("%s: empty array handle", who);
    return NULL;
  }
  return core_eval(&x, 1) ? NULL : x;
}

int mlx_save(const char* file, const mlx_array a) {
  if (!file) return util_error("mlx_save: null file name");
  core_array* x = evaluated_arg(a, "mlx_save");
  if (!x) return 1;
  char* path = io_path_with_suffix(file, ".npy");
  if (!path) return 1;
  io_sink sink;
  int status = io_sink_open_file(&sink, path, "mlx_save");
  if (!status) status = io_sink_finish(&sink, npy_write(&sink, x));
  free(path);
  return status;
}

int mlx_save_writer(mlx_io_writer out_stream, const mlx_array a) {
  core_array* x = evaluated_arg(a, "mlx_save_writer");
  if (!x) return 1;
  io_sink sink;
  if (io_sink_open_writer(&sink, out_stream, "mlx_save_writer")) return 1;
  return io_sink_finish(&sink, npy_write(&sink, x));
}
