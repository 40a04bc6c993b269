/* mlx_array_tostring: the array as MLX prints it, e.g. "array([[1, 2],\n       [3, 4]], dtype=int32)". */
#include <complex.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/array.h"
#include "core/half.h"
#include "util/error.h"
#include "util/strbuf.h"

static void print_float(strbuf* sb, double v) {
  char text[64];
  snprintf(text, sizeof text, "%.6g", v);
  strbuf_puts(sb, text); /* MLX prints 1.0 as "1" and 1.5 as "1.5" */
}

static void print_element(strbuf* sb, const char* p, mlx_dtype dtype) {
  switch (dtype) {
    case MLX_BOOL: strbuf_puts(sb, *(const bool*)p ? "true" : "false"); break;
    case MLX_UINT8: strbuf_printf(sb, "%u", *(const uint8_t*)p); break;
    case MLX_UINT16: strbuf_printf(sb, "%u", *(const uint16_t*)p); break;
    case MLX_UINT32: strbuf_printf(sb, "%" PRIu32, *(const uint32_t*)p); break;
    case MLX_UINT64: strbuf_printf(sb, "%" PRIu64, *(const uint64_t*)p); break;
    case MLX_INT8: strbuf_printf(sb, "%d", *(const int8_t*)p); break;
    case MLX_INT16: strbuf_printf(sb, "%d", *(const int16_t*)p); break;
    case MLX_INT32: strbuf_printf(sb, "%" PRId32, *(const int32_t*)p); break;
    case MLX_INT64: strbuf_printf(sb, "%" PRId64, *(const int64_t*)p); break;
    case MLX_FLOAT16: print_float(sb, half_f16_to_f32(*(const uint16_t*)p)); break;
    case MLX_BFLOAT16: print_float(sb, half_bf16_to_f32(*(const uint16_t*)p)); break;
    case MLX_FLOAT32: print_float(sb, *(const float*)p); break;
    case MLX_FLOAT64: print_float(sb, *(const double*)p); break;
    case MLX_COMPLEX64: {
      const float* c = (const float*)p;
      print_float(sb, c[0]);
      strbuf_puts(sb, c[1] < 0 ? "-" : "+");
      print_float(sb, c[1] < 0 ? -c[1] : c[1]);
      strbuf_puts(sb, "j");
      break;
    }
  }
}

/* Prints dimension `dim` starting at element offset `offset` (elements of a contiguous array). */
static void print_dim(strbuf* sb, const core_array* a, int dim, size_t offset, int indent) {
  const char* base = core_array_ptr(a);
  size_t elem = core_dtype_size(a->dtype);
  size_t stride = 1;
  for (int d = dim + 1; d < a->ndim; d++) stride *= (size_t)a->shape[d];
  strbuf_puts(sb, "[");
  for (int i = 0; i < a->shape[dim]; i++) {
    if (i > 0) {
      strbuf_puts(sb, ",");
      if (dim == a->ndim - 1) {
        strbuf_puts(sb, " ");
      } else {
        for (int k = dim + 1; k < a->ndim; k++) strbuf_puts(sb, "\n");
        for (int k = 0; k < indent + dim + 1; k++) strbuf_puts(sb, " ");
      }
    }
    size_t at = offset + (size_t)i * stride;
    if (dim == a->ndim - 1)
      print_element(sb, base + at * elem, a->dtype);
    else
      print_dim(sb, a, dim + 1, at, indent);
  }
  strbuf_puts(sb, "]");
}

int mlx_array_tostring(mlx_string* str, const mlx_array arr) {
  core_array* a = core_ctx(arr);
  if (!str) return util_error("mlx_array_tostring: null result");
  if (!a) return util_error("mlx_array_tostring: empty array handle");
  if (core_eval_contiguous(a)) return 1;
  strbuf sb = {0};
  strbuf_puts(&sb, "array(");
  if (a->ndim == 0)
    print_element(&sb, core_array_ptr(a), a->dtype);
  else
    print_dim(&sb, a, 0, 0, (int)strlen("array("));
  strbuf_printf(&sb, ", dtype=%s)", core_dtype_name(a->dtype));
  char* text = strbuf_take(&sb);
  if (!text) return util_error("out of memory");
  mlx_string_free(*str);
  str->ctx = text;
  return 0;
}
