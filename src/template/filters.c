/* Jinja2's builtin filters with their Python semantics, and transformers' tojson. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "template/json.h"
#include "template/strings.h"

#define FILTER(name) static tmpl_value name(tmpl_interp* in, tmpl_value v, const tmpl_args* args)

static tmpl_value arg(const tmpl_args* args, size_t i, const char* name, tmpl_value fallback) {
  return tmpl_arg(args, i, name, fallback);
}
static tmpl_value str_value(tmpl_interp* in, tmpl_value v) {
  tmpl_string* s = tmpl_to_string(in->arena, v);
  tmpl_value out = {.type = TV_STRING};
  out.as.string = s;
  return out;
}
static bool given(tmpl_value v) { return v.type != TV_UNDEFINED && v.type != TV_NONE; }

FILTER(f_abs) {
  if (v.type == TV_FLOAT) return tv_float(fabs(v.as.real));
  if (v.type == TV_INT) {
    if (v.as.integer == INT64_MIN) tmpl_error(in, "integer overflow");
    return tv_int(v.as.integer < 0 ? -v.as.integer : v.as.integer);
  }
  if (v.type == TV_BOOL) return tv_int(v.as.boolean);
  tmpl_require_defined(in, v);
  tmpl_error(in, "bad operand type for abs(): '%s'", tmpl_type_name(v));
}

FILTER(f_attr) {
  tmpl_value name = arg(args, 0, "name", tv_undefined(NULL));
  if (name.type != TV_STRING) tmpl_error(in, "attr: name must be a string");
  if (v.type == TV_DICT && v.as.dict->kind == DICT_PLAIN) {
    bool unsafe;
    if (!tmpl_find_method(v, name.as.string->data, &unsafe)) return tv_undefined("attribute not found");
  }
  return tmpl_getattr(in, v, name.as.string->data);
}

FILTER(f_batch) {
  tmpl_value count = arg(args, 0, "linecount", tv_undefined(NULL));
  if (count.type != TV_INT || count.as.integer <= 0) tmpl_error(in, "batch: linecount must be a positive integer");
  tmpl_value fill = arg(args, 1, "fill_with", tv_none());
  tmpl_list* items = tmpl_iterate(in, v);
  tmpl_value out = tv_list(in->arena, 0);
  tmpl_value row = tv_list(in->arena, 0);
  for (size_t i = 0; i < items->len; i++) {
    tmpl_list_push(in->arena, row.as.list, items->items[i]);
    if ((int64_t)row.as.list->len == count.as.integer) {
      tmpl_list_push(in->arena, out.as.list, row);
      row = tv_list(in->arena, 0);
    }
  }
  if (row.as.list->len) {
    if (fill.type != TV_NONE)
      while ((int64_t)row.as.list->len < count.as.integer) tmpl_list_push(in->arena, row.as.list, fill);
    tmpl_list_push(in->arena, out.as.list, row);
  }
  return out;
}

FILTER(f_capitalize) { return tmpl_str_case(in, tmpl_to_string(in->arena, v), CASE_CAPITALIZE); }
FILTER(f_lower) { return tmpl_str_case(in, tmpl_to_string(in->arena, v), CASE_LOWER); }
FILTER(f_upper) { return tmpl_str_case(in, tmpl_to_string(in->arena, v), CASE_UPPER); }

FILTER(f_title) { return tmpl_jinja_title(in, tmpl_to_string(in->arena, v)); }

FILTER(f_center) {
  tmpl_value s = str_value(in, v);
  tmpl_args pass = {.n_pos = 1, .pos = (tmpl_value[]){arg(args, 0, "width", tv_int(80))}};
  bool unsafe;
  return tmpl_find_method(s, "center", &unsafe)(in, s, &pass);
}

FILTER(f_default) {
  tmpl_value fallback = arg(args, 0, "default_value", tv_cstring(in->arena, ""));
  bool boolean = tmpl_truthy(arg(args, 1, "boolean", tv_bool(false)));
  if (v.type == TV_UNDEFINED || (boolean && !tmpl_truthy(v))) return fallback;
  return v;
}

static tmpl_value lowered(tmpl_interp* in, tmpl_value v, bool case_sensitive) {
  if (!case_sensitive && v.type == TV_STRING) return tmpl_str_case(in, v.as.string, CASE_LOWER);
  return v;
}

/* Stable merge sort of values by precomputed keys; comparisons may fail (longjmp) safely. */
static void sort_by_keys(tmpl_interp* in, tmpl_value* items, tmpl_value* keys, size_t n, bool reverse) {
  if (n < 2) return;
  tmpl_value* tmp_items = tmpl_alloc(in->arena, n * sizeof(tmpl_value));
  tmpl_value* tmp_keys = tmpl_alloc(in->arena, n * sizeof(tmpl_value));
  for (size_t width = 1; width < n; width *= 2) {
    for (size_t lo = 0; lo < n; lo += 2 * width) {
      size_t mid = lo + width < n ? lo + width : n, hi = lo + 2 * width < n ? lo + 2 * width : n;
      size_t i = lo, j = mid, k = lo;
      while (i < mid && j < hi) {
        int c = tmpl_compare(in, keys[j], keys[i]);
        bool take_right = reverse ? c > 0 : c < 0;
        if (take_right) {
          tmp_items[k] = items[j];
          tmp_keys[k++] = keys[j++];
        } else {
          tmp_items[k] = items[i];
          tmp_keys[k++] = keys[i++];
        }
      }
      while (i < mid) {
        tmp_items[k] = items[i];
        tmp_keys[k++] = keys[i++];
      }
      while (j < hi) {
        tmp_items[k] = items[j];
        tmp_keys[k++] = keys[j++];
      }
    }
    memcpy(items, tmp_items, n * sizeof(tmpl_value));
    memcpy(keys, tmp_keys, n * sizeof(tmpl_value));
  }
}

/* The sort key of an item: attribute path(s) (comma separated) and case folding. */
static tmpl_value item_key(tmpl_interp* in, tmpl_value item, tmpl_value attribute, bool case_sensitive) {
  if (!given(attribute)) return lowered(in, item, case_sensitive);
  if (attribute.type == TV_INT) return lowered(in, tmpl_getitem(in, item, attribute), case_sensitive);
  if (attribute.type != TV_STRING) tmpl_error(in, "attribute must be a string or an integer");
  const char* spec = attribute.as.string->data;
  if (!strchr(spec, ',')) return lowered(in, tmpl_get_path(in, item, spec), case_sensitive);
  tmpl_value parts = tv_list(in->arena, 0);
  parts.as.list->is_tuple = true;
  const char* p = spec;
  for (;;) {
    const char* comma = strchr(p, ',');
    size_t n = comma ? (size_t)(comma - p) : strlen(p);
    tmpl_value part = tmpl_str_strip(in, tv_string(in->arena, p, n).as.string, NULL, 3);
    tmpl_list_push(in->arena, parts.as.list, lowered(in, tmpl_get_path(in, item, part.as.string->data), case_sensitive));
    if (!comma) break;
    p = comma + 1;
  }
  return parts;
}

FILTER(f_sort) {
  bool reverse = tmpl_truthy(arg(args, 0, "reverse", tv_bool(false)));
  bool case_sensitive = tmpl_truthy(arg(args, 1, "case_sensitive", tv_bool(false)));
  tmpl_value attribute = arg(args, 2, "attribute", tv_none());
  tmpl_list* src = tmpl_iterate(in, v);
  tmpl_value out = tv_list(in->arena, src->len);
  tmpl_value* keys = tmpl_alloc(in->arena, (src->len + 1) * sizeof(tmpl_value));
  for (size_t i = 0; i < src->len; i++) {
    out.as.list->items[out.as.list->len++] = src->items[i];
    keys[i] = item_key(in, src->items[i], attribute, case_sensitive);
  }
  sort_by_keys(in, out.as.list->items, keys, out.as.list->len, reverse);
  return out;
}

FILTER(f_dictsort) {
  bool case_sensitive = tmpl_truthy(arg(args, 0, "case_sensitive", tv_bool(false)));
  tmpl_value by = arg(args, 1, "by", tv_cstring(in->arena, "key"));
  bool reverse = tmpl_truthy(arg(args, 2, "reverse", tv_bool(false)));
  if (v.type != TV_DICT || v.as.dict->kind != DICT_PLAIN) tmpl_error(in, "dictsort expects a mapping");
  int which = by.type == TV_STRING && !strcmp(by.as.string->data, "value") ? 1 : 0;
  if (!which && !(by.type == TV_STRING && !strcmp(by.as.string->data, "key"))) tmpl_error(in, "You can only sort by either \"key\" or \"value\"");
  tmpl_dict* d = v.as.dict;
  tmpl_value out = tv_list(in->arena, d->len);
  tmpl_value* keys = tmpl_alloc(in->arena, (d->len + 1) * sizeof(tmpl_value));
  for (size_t i = 0; i < d->len; i++) {
    tmpl_value pair = tv_list(in->arena, 2);
    pair.as.list->is_tuple = true;
    pair.as.list->items[0] = d->keys[i];
    pair.as.list->items[1] = d->values[i];
    pair.as.list->len = 2;
    out.as.list->items[out.as.list->len++] = pair;
    keys[i] = lowered(in, which ? d->values[i] : d->keys[i], case_sensitive);
  }
  sort_by_keys(in, out.as.list->items, keys, out.as.list->len, reverse);
  return out;
}

FILTER(f_escape) {
  tmpl_string* s = tmpl_to_string(in->arena, v);
  tmpl_buf buf;
  tmpl_buf_init(&buf, in->arena, 0);
  for (size_t i = 0; i < s->len; i++) {
    switch (s->data[i]) {
      case '&': tmpl_buf_puts(&buf, "&amp;"); break;
      case '<': tmpl_buf_puts(&buf, "&lt;"); break;
      case '>': tmpl_buf_puts(&buf, "&gt;"); break;
      case '"': tmpl_buf_puts(&buf, "&#34;"); break;
      case '\'': tmpl_buf_puts(&buf, "&#39;"); break;
      default: tmpl_buf_putc(&buf, s->data[i]);
    }
  }
  return tv_string(in->arena, buf.data ? buf.data : "", buf.len);
}

FILTER(f_first) {
  tmpl_list* items = tmpl_iterate(in, v);
  return items->len ? items->items[0] : tv_undefined("No first item, sequence was empty.");
}

FILTER(f_last) {
  tmpl_list* items = tmpl_iterate(in, v);
  return items->len ? items->items[items->len - 1] : tv_undefined("No last item, sequence was empty.");
}

/* Python's float(str): surrounding whitespace, underscores between digits, inf/nan spellings. */
static bool parse_python_float(tmpl_interp* in, const tmpl_string* s, double* out) {
  tmpl_value stripped = tmpl_str_strip(in, s, NULL, 3);
  const char* p = stripped.as.string->data;
  size_t n = stripped.as.string->len;
  if (!n) return false;
  char* clean = tmpl_alloc(in->arena, n + 1);
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    if (p[i] == '_') {
      if (!i || i + 1 >= n || !isdigit((unsigned char)p[i - 1]) || !isdigit((unsigned char)p[i + 1])) return false;
      continue;
    }
    clean[k++] = p[i];
  }
  clean[k] = '\0';
  const char* body = clean + (clean[0] == '+' || clean[0] == '-');
  if (!strcasecmp(body, "inf") || !strcasecmp(body, "infinity") || !strcasecmp(body, "nan")) {
    *out = strtod(clean, NULL);
    return true;
  }
  for (const char* c = body; *c; c++)
    if (!isdigit((unsigned char)*c) && *c != '.' && *c != 'e' && *c != 'E' && *c != '+' && *c != '-') return false;
  char* end;
  *out = strtod(clean, &end);
  return *end == '\0' && end != clean;
}

FILTER(f_float) {
  tmpl_value fallback = arg(args, 0, "default", tv_float(0.0));
  if (v.type == TV_FLOAT) return v;
  if (v.type == TV_INT || v.type == TV_BOOL) return tv_float(tmpl_as_double(v));
  double d;
  if (v.type == TV_STRING && parse_python_float(in, v.as.string, &d)) return tv_float(d);
  return fallback;
}

FILTER(f_int) {
  tmpl_value fallback = arg(args, 0, "default", tv_int(0));
  tmpl_value base_v = arg(args, 1, "base", tv_int(10));
  int base = base_v.type == TV_INT ? (int)base_v.as.integer : 10;
  if (v.type == TV_INT) return v;
  if (v.type == TV_BOOL) return tv_int(v.as.boolean);
  if (v.type == TV_FLOAT) {
    if (!isfinite(v.as.real) || fabs(v.as.real) >= 9.2e18) return fallback;
    return tv_int((int64_t)v.as.real);
  }
  if (v.type != TV_STRING) return fallback;
  tmpl_value stripped = tmpl_str_strip(in, v.as.string, NULL, 3);
  const char* p = stripped.as.string->data;
  char* clean = tmpl_alloc(in->arena, stripped.as.string->len + 1);
  size_t k = 0;
  for (size_t i = 0; p[i]; i++)
    if (p[i] != '_') clean[k++] = p[i];
  clean[k] = '\0';
  if (k) {
    char* end;
    errno = 0;
    long long r = strtoll(clean, &end, base);
    if (*end == '\0' && !errno && !isspace((unsigned char)clean[0])) return tv_int(r);
  }
  double d;
  if (parse_python_float(in, v.as.string, &d) && isfinite(d) && fabs(d) < 9.2e18) return tv_int((int64_t)d);
  return fallback;
}

FILTER(f_indent) {
  tmpl_value width = arg(args, 0, "width", tv_int(4));
  bool first = tmpl_truthy(arg(args, 1, "first", tv_bool(false)));
  bool blank = tmpl_truthy(arg(args, 2, "blank", tv_bool(false)));
  tmpl_buf pad;
  tmpl_buf_init(&pad, in->arena, 0);
  if (width.type == TV_STRING) {
    tmpl_buf_append(&pad, width.as.string->data, width.as.string->len);
  } else {
    if (width.type != TV_INT || width.as.integer < 0 || width.as.integer > 4096) tmpl_error(in, "indent: bad width");
    for (int64_t i = 0; i < width.as.integer; i++) tmpl_buf_putc(&pad, ' ');
  }
  tmpl_string* s = tmpl_to_string(in->arena, v);
  tmpl_buf text;
  tmpl_buf_init(&text, in->arena, 0);
  tmpl_buf_append(&text, s->data, s->len);
  tmpl_buf_putc(&text, '\n'); /* Jinja2 appends a newline so splitlines keeps a trailing empty line */
  tmpl_list* lines = tmpl_str_splitlines(in, tv_string(in->arena, text.data, text.len).as.string, false).as.list;
  tmpl_buf out;
  tmpl_buf_init(&out, in->arena, 0);
  if (first) tmpl_buf_append(&out, pad.data ? pad.data : "", pad.len);
  for (size_t i = 0; i < lines->len; i++) {
    tmpl_string* line = lines->items[i].as.string;
    if (i) {
      tmpl_buf_putc(&out, '\n');
      if (blank || line->len) tmpl_buf_append(&out, pad.data ? pad.data : "", pad.len);
    }
    tmpl_buf_append(&out, line->data, line->len);
  }
  return tv_string(in->arena, out.data ? out.data : "", out.len);
}

FILTER(f_items) {
  if (v.type == TV_UNDEFINED) return tv_list(in->arena, 0);
  if (v.type != TV_DICT || v.as.dict->kind != DICT_PLAIN) tmpl_error(in, "Can only get item pairs from a mapping.");
  bool unsafe;
  tmpl_args none = {0};
  return tmpl_find_method(v, "items", &unsafe)(in, v, &none);
}

FILTER(f_join) {
  tmpl_value sep = arg(args, 0, "d", tv_cstring(in->arena, ""));
  tmpl_value attribute = arg(args, 1, "attribute", tv_none());
  tmpl_string* s = tmpl_to_string(in->arena, sep);
  tmpl_list* items = tmpl_iterate(in, v);
  tmpl_buf buf;
  tmpl_buf_init(&buf, in->arena, 0);
  for (size_t i = 0; i < items->len; i++) {
    if (i) tmpl_buf_append(&buf, s->data, s->len);
    tmpl_value item = items->items[i];
    if (given(attribute)) item = attribute.type == TV_STRING ? tmpl_get_path(in, item, attribute.as.string->data) : tmpl_getitem(in, item, attribute);
    tmpl_write_str(&buf, item);
  }
  return tv_string(in->arena, buf.data ? buf.data : "", buf.len);
}

FILTER(f_length) {
  switch (v.type) {
    case TV_UNDEFINED: return tv_int(0);
    case TV_STRING: return tv_int((int64_t)tmpl_utf8_count(v.as.string->data, v.as.string->len));
    case TV_LIST: return tv_int((int64_t)v.as.list->len);
    case TV_DICT:
      if (v.as.dict->kind == DICT_PLAIN) return tv_int((int64_t)v.as.dict->len);
      break;
    default: break;
  }
  tmpl_error(in, "object of type '%s' has no len()", tmpl_type_name(v));
}

FILTER(f_list) {
  tmpl_list* items = tmpl_iterate(in, v);
  tmpl_value out = tv_list(in->arena, items->len);
  for (size_t i = 0; i < items->len; i++) out.as.list->items[out.as.list->len++] = items->items[i];
  return out;
}

FILTER(f_map) {
  tmpl_list* items = tmpl_iterate(in, v);
  tmpl_value out = tv_list(in->arena, items->len);
  tmpl_value attribute = arg(args, SIZE_MAX, "attribute", tv_undefined(NULL));
  if (attribute.type != TV_UNDEFINED) {
    tmpl_value fallback = arg(args, SIZE_MAX, "default", tv_undefined(NULL));
    for (size_t i = 0; i < items->len; i++) {
      tmpl_value x = attribute.type == TV_STRING ? tmpl_get_path(in, items->items[i], attribute.as.string->data)
                                                 : tmpl_getitem(in, items->items[i], attribute);
      if (x.type == TV_UNDEFINED && fallback.type != TV_UNDEFINED) x = fallback;
      out.as.list->items[out.as.list->len++] = x;
    }
    return out;
  }
  if (!args->n_pos || args->pos[0].type != TV_STRING) tmpl_error(in, "map requires a filter argument");
  const char* name = args->pos[0].as.string->data;
  tmpl_builtin_fn fn = tmpl_find_filter(name);
  if (!fn) tmpl_error(in, "no filter named '%s'", name);
  tmpl_args rest = {args->n_pos - 1, args->pos + 1, args->n_kw, args->kw_names, args->kw};
  for (size_t i = 0; i < items->len; i++) out.as.list->items[out.as.list->len++] = fn(in, items->items[i], &rest);
  return out;
}

static tmpl_value select_impl(tmpl_interp* in, tmpl_value v, const tmpl_args* args, bool by_attribute, bool keep) {
  tmpl_list* items = tmpl_iterate(in, v);
  size_t first_test_arg = by_attribute ? 1 : 0;
  const char* attribute = NULL;
  if (by_attribute) {
    tmpl_value a = arg(args, 0, NULL, tv_undefined(NULL));
    if (a.type != TV_STRING) tmpl_error(in, "selectattr/rejectattr need an attribute name");
    attribute = a.as.string->data;
  }
  const char* test = NULL;
  if (args->n_pos > first_test_arg) {
    tmpl_value t = args->pos[first_test_arg];
    if (t.type != TV_STRING) tmpl_error(in, "test name must be a string");
    test = t.as.string->data;
  }
  tmpl_args test_args = {0};
  if (test) test_args = (tmpl_args){args->n_pos - first_test_arg - 1, args->pos + first_test_arg + 1, args->n_kw, args->kw_names, args->kw};
  tmpl_value out = tv_list(in->arena, 0);
  for (size_t i = 0; i < items->len; i++) {
    tmpl_value x = attribute ? tmpl_get_path(in, items->items[i], attribute) : items->items[i];
    bool r = test ? tmpl_run_test(in, test, x, &test_args) : tmpl_truthy(x);
    if (r == keep) tmpl_list_push(in->arena, out.as.list, items->items[i]);
  }
  return out;
}
FILTER(f_select) { return select_impl(in, v, args, false, true); }
FILTER(f_reject) { return select_impl(in, v, args, false, false); }
FILTER(f_selectattr) { return select_impl(in, v, args, true, true); }
FILTER(f_rejectattr) { return select_impl(in, v, args, true, false); }

static tmpl_value min_max(tmpl_interp* in, tmpl_value v, const tmpl_args* args, int sign) {
  bool case_sensitive = tmpl_truthy(arg(args, 0, "case_sensitive", tv_bool(false)));
  tmpl_value attribute = arg(args, 1, "attribute", tv_none());
  tmpl_list* items = tmpl_iterate(in, v);
  if (!items->len) return tv_undefined(sign < 0 ? "No smallest item, sequence was empty." : "No largest item, sequence was empty.");
  size_t best = 0;
  tmpl_value best_key = item_key(in, items->items[0], attribute, case_sensitive);
  for (size_t i = 1; i < items->len; i++) {
    tmpl_value k = item_key(in, items->items[i], attribute, case_sensitive);
    if (tmpl_compare(in, k, best_key) * sign > 0) {
      best = i;
      best_key = k;
    }
  }
  return items->items[best];
}
FILTER(f_min) { return min_max(in, v, args, -1); }
FILTER(f_max) { return min_max(in, v, args, 1); }

FILTER(f_replace) {
  tmpl_string* s = tmpl_to_string(in->arena, v);
  tmpl_string* old = tmpl_to_string(in->arena, arg(args, 0, "old", tv_undefined(NULL)));
  tmpl_string* new_text = tmpl_to_string(in->arena, arg(args, 1, "new", tv_undefined(NULL)));
  tmpl_value count = arg(args, 2, "count", tv_none());
  return tmpl_str_replace(in, s, old, new_text, count.type == TV_INT ? count.as.integer : -1);
}

FILTER(f_reverse) {
  if (v.type == TV_STRING) {
    tmpl_list* chars = tmpl_iterate(in, v);
    tmpl_buf buf;
    tmpl_buf_init(&buf, in->arena, 0);
    for (size_t i = chars->len; i > 0; i--) tmpl_write_str(&buf, chars->items[i - 1]);
    return tv_string(in->arena, buf.data ? buf.data : "", buf.len);
  }
  tmpl_list* items = tmpl_iterate(in, v);
  tmpl_value out = tv_list(in->arena, items->len);
  for (size_t i = items->len; i > 0; i--) out.as.list->items[out.as.list->len++] = items->items[i - 1];
  return out;
}

/* Python's round(x, n): the correctly rounded decimal value, ties to even. */
static double py_round(double x, int64_t digits) {
  if (!isfinite(x) || digits > 300) return x;
  if (digits < -300) return 0.0 * x;
  if (digits <= 0) {
    double scale = pow(10.0, (double)-digits);
    return nearbyint(x / scale) * scale;
  }
  char tmp[512];
  snprintf(tmp, sizeof tmp, "%.*f", (int)digits, x);
  return strtod(tmp, NULL);
}

FILTER(f_round) {
  tmpl_value precision = arg(args, 0, "precision", tv_int(0));
  tmpl_value method = arg(args, 1, "method", tv_cstring(in->arena, "common"));
  if (!tmpl_is_number(v)) {
    tmpl_require_defined(in, v);
    tmpl_error(in, "round: expected a number, got '%s'", tmpl_type_name(v));
  }
  int64_t p = precision.type == TV_INT ? precision.as.integer : 0;
  const char* m = method.type == TV_STRING ? method.as.string->data : "";
  if (!strcmp(m, "common")) {
    if (v.type != TV_FLOAT) return tv_int(v.type == TV_BOOL ? v.as.boolean : v.as.integer);
    return tv_float(py_round(v.as.real, p));
  }
  if (strcmp(m, "ceil") && strcmp(m, "floor")) tmpl_error(in, "method must be common, ceil or floor");
  double scale = pow(10.0, (double)p), x = tmpl_as_double(v) * scale;
  return tv_float((m[0] == 'c' ? ceil(x) : floor(x)) / scale);
}

FILTER(f_safe) { return str_value(in, v); }
FILTER(f_string) { return str_value(in, v); }

FILTER(f_sum) {
  tmpl_value attribute = arg(args, 0, "attribute", tv_none());
  tmpl_value total = arg(args, 1, "start", tv_int(0));
  tmpl_list* items = tmpl_iterate(in, v);
  for (size_t i = 0; i < items->len; i++) {
    tmpl_value x = items->items[i];
    if (given(attribute)) x = attribute.type == TV_STRING ? tmpl_get_path(in, x, attribute.as.string->data) : tmpl_getitem(in, x, attribute);
    if (!tmpl_is_number(total) || !tmpl_is_number(x)) {
      tmpl_require_defined(in, x);
      tmpl_error(in, "unsupported operand type(s) for +: '%s' and '%s'", tmpl_type_name(total), tmpl_type_name(x));
    }
    if (total.type != TV_FLOAT && x.type != TV_FLOAT) {
      int64_t a = total.type == TV_BOOL ? total.as.boolean : total.as.integer;
      int64_t b = x.type == TV_BOOL ? x.as.boolean : x.as.integer;
      int64_t r;
      if (__builtin_add_overflow(a, b, &r)) tmpl_error(in, "integer overflow in sum");
      total = tv_int(r);
    } else {
      total = tv_float(tmpl_as_double(total) + tmpl_as_double(x));
    }
  }
  return total;
}

/* transformers' tojson: json.dumps(x, ensure_ascii=False, indent=indent, separators=separators,
 * sort_keys=sort_keys); Python's defaults make separators (", ", ": ") or ("," , ": ") with indent. */
FILTER(f_tojson) {
  tmpl_value indent = arg(args, SIZE_MAX, "indent", tv_none());
  if (args->n_pos) indent = args->pos[0];
  tmpl_json_style style = {
      .ensure_ascii = tmpl_truthy(arg(args, SIZE_MAX, "ensure_ascii", tv_bool(false))),
      .sort_keys = tmpl_truthy(arg(args, SIZE_MAX, "sort_keys", tv_bool(false))),
  };
  if (indent.type == TV_INT || indent.type == TV_BOOL) {
    int64_t n = indent.type == TV_BOOL ? indent.as.boolean : indent.as.integer;
    if (n > 4096) tmpl_error(in, "tojson: indent too large");
    char* spaces = tmpl_alloc(in->arena, (size_t)(n > 0 ? n : 0) + 1);
    for (int64_t i = 0; i < n; i++) spaces[i] = ' ';
    style.indent = spaces;
  } else if (indent.type == TV_STRING) {
    style.indent = indent.as.string->data;
  } else if (indent.type != TV_NONE) {
    tmpl_error(in, "tojson: indent must be an integer or a string");
  }
  style.item_separator = style.indent ? "," : ", ";
  style.key_separator = ": ";
  tmpl_value separators = arg(args, SIZE_MAX, "separators", tv_none());
  if (separators.type == TV_LIST && separators.as.list->len == 2 && separators.as.list->items[0].type == TV_STRING &&
      separators.as.list->items[1].type == TV_STRING) {
    style.item_separator = separators.as.list->items[0].as.string->data;
    style.key_separator = separators.as.list->items[1].as.string->data;
  } else if (separators.type != TV_NONE) {
    tmpl_error(in, "tojson: separators must be a pair of strings");
  }
  tmpl_buf buf;
  tmpl_buf_init(&buf, in->arena, 0);
  tmpl_write_json(in, &buf, v, &style);
  return tv_string(in->arena, buf.data ? buf.data : "", buf.len);
}

FILTER(f_trim) {
  tmpl_value chars = arg(args, 0, "chars", tv_none());
  return tmpl_str_strip(in, tmpl_to_string(in->arena, v), chars.type == TV_STRING ? chars.as.string : NULL, 3);
}

FILTER(f_unique) {
  bool case_sensitive = tmpl_truthy(arg(args, 0, "case_sensitive", tv_bool(false)));
  tmpl_value attribute = arg(args, 1, "attribute", tv_none());
  tmpl_list* items = tmpl_iterate(in, v);
  tmpl_value out = tv_list(in->arena, 0);
  tmpl_list* seen = tv_list(in->arena, 0).as.list;
  for (size_t i = 0; i < items->len; i++) {
    tmpl_value key = item_key(in, items->items[i], attribute, case_sensitive);
    bool dup = false;
    for (size_t j = 0; j < seen->len && !dup; j++) dup = tmpl_equal(seen->items[j], key);
    if (dup) continue;
    tmpl_list_push(in->arena, seen, key);
    tmpl_list_push(in->arena, out.as.list, items->items[i]);
  }
  return out;
}

FILTER(f_wordcount) {
  tmpl_string* s = tmpl_to_string(in->arena, v);
  int64_t words = 0;
  bool in_word = false;
  size_t pos = 0;
  while (pos < s->len) {
    uint32_t cp = tmpl_utf8_next(s->data, s->len, &pos);
    utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
    bool word = cp == '_' || (c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_LO) ||
                (c >= UTF8PROC_CATEGORY_ND && c <= UTF8PROC_CATEGORY_NO);
    if (word && !in_word) words++;
    in_word = word;
  }
  return tv_int(words);
}

FILTER(f_format) {
  tmpl_string* fmt = tmpl_to_string(in->arena, v);
  if (args->n_kw && args->n_pos) tmpl_error(in, "can't handle positional and keyword arguments at the same time");
  if (args->n_kw) {
    tmpl_value d = tv_dict(in->arena, DICT_PLAIN);
    for (size_t i = 0; i < args->n_kw; i++) tmpl_dict_set_str(in->arena, d.as.dict, args->kw_names[i], args->kw[i]);
    return tmpl_percent_format(in, fmt, d);
  }
  tmpl_value tuple = tv_list(in->arena, args->n_pos);
  tuple.as.list->is_tuple = true;
  for (size_t i = 0; i < args->n_pos; i++) tuple.as.list->items[tuple.as.list->len++] = args->pos[i];
  return tmpl_percent_format(in, fmt, tuple);
}

FILTER(f_truncate) {
  tmpl_string* s = tmpl_to_string(in->arena, v);
  int64_t length = arg(args, 0, "length", tv_int(255)).as.integer;
  bool killwords = tmpl_truthy(arg(args, 1, "killwords", tv_bool(false)));
  tmpl_string* end = tmpl_to_string(in->arena, arg(args, 2, "end", tv_cstring(in->arena, "...")));
  tmpl_value leeway_v = arg(args, 3, "leeway", tv_int(5));
  int64_t leeway = leeway_v.type == TV_INT ? leeway_v.as.integer : 5;
  int64_t n = (int64_t)tmpl_utf8_count(s->data, s->len), end_n = (int64_t)tmpl_utf8_count(end->data, end->len);
  if (length < end_n) tmpl_error(in, "expected length >= %" PRId64 ", got %" PRId64, end_n, length);
  if (n <= length + leeway) return str_value(in, v);
  size_t cut = tmpl_utf8_offset(s->data, s->len, (size_t)(length - end_n));
  tmpl_buf buf;
  tmpl_buf_init(&buf, in->arena, 0);
  if (killwords) {
    tmpl_buf_append(&buf, s->data, cut);
  } else {
    size_t space = cut;
    while (space > 0 && s->data[space - 1] != ' ') space--;
    size_t keep = space > 0 ? space - 1 : 0;
    if (space == 0) keep = 0;
    tmpl_buf_append(&buf, s->data, keep);
  }
  tmpl_buf_append(&buf, end->data, end->len);
  return tv_string(in->arena, buf.data, buf.len);
}

typedef struct {
  const char* name;
  tmpl_builtin_fn fn;
} filter_entry;

static const filter_entry filters[] = {
    {"abs", f_abs}, {"attr", f_attr}, {"batch", f_batch}, {"capitalize", f_capitalize}, {"center", f_center},
    {"count", f_length}, {"d", f_default}, {"default", f_default}, {"dictsort", f_dictsort}, {"e", f_escape},
    {"escape", f_escape}, {"first", f_first}, {"float", f_float}, {"format", f_format}, {"indent", f_indent},
    {"int", f_int}, {"items", f_items}, {"join", f_join}, {"last", f_last}, {"length", f_length}, {"list", f_list},
    {"lower", f_lower}, {"map", f_map}, {"max", f_max}, {"min", f_min}, {"reject", f_reject},
    {"rejectattr", f_rejectattr}, {"replace", f_replace}, {"reverse", f_reverse}, {"round", f_round},
    {"safe", f_safe}, {"select", f_select}, {"selectattr", f_selectattr}, {"sort", f_sort}, {"string", f_string},
    {"sum", f_sum}, {"title", f_title}, {"tojson", f_tojson}, {"trim", f_trim}, {"truncate", f_truncate},
    {"unique", f_unique}, {"upper", f_upper}, {"wordcount", f_wordcount}, {NULL, NULL}};

tmpl_builtin_fn tmpl_find_filter(const char* name) {
  for (size_t i = 0; filters[i].name; i++)
    if (!strcmp(filters[i].name, name)) return filters[i].fn;
  return NULL;
}

/* ---- printf-style formatting (str % values and the format filter) ---- */

tmpl_value tmpl_percent_format(tmpl_interp* in, tmpl_string* fmt, tmpl_value values) {
  tmpl_buf buf;
  tmpl_buf_init(&buf, in->arena, 0);
  bool is_tuple = values.type == TV_LIST && values.as.list->is_tuple;
  bool is_mapping = values.type == TV_DICT && values.as.dict->kind == DICT_PLAIN;
  size_t next = 0;
  for (size_t i = 0; i < fmt->len; i++) {
    char c = fmt->data[i];
    if (c != '%') {
      tmpl_buf_putc(&buf, c);
      continue;
    }
    if (++i >= fmt->len) tmpl_error(in, "incomplete format");
    tmpl_value value;
    bool have_value = false;
    if (fmt->data[i] == '(') {
      const char* close = memchr(fmt->data + i, ')', fmt->len - i);
      if (!close || !is_mapping) tmpl_error(in, "format requires a mapping");
      char* key = tmpl_strndup(in->arena, fmt->data + i + 1, (size_t)(close - fmt->data) - i - 1);
      tmpl_value* found = tmpl_dict_find_str(values.as.dict, key);
      if (!found) tmpl_error(in, "KeyError: '%s'", key);
      value = *found;
      have_value = true;
      i = (size_t)(close - fmt->data) + 1;
    }
    char spec[32] = "%";
    size_t sl = 1;
    while (i < fmt->len && strchr("-+ #0", fmt->data[i]) && sl < 8) spec[sl++] = fmt->data[i++];
    while (i < fmt->len && isdigit((unsigned char)fmt->data[i]) && sl < 14) spec[sl++] = fmt->data[i++];
    if (i < fmt->len && fmt->data[i] == '.') {
      spec[sl++] = fmt->data[i++];
      while (i < fmt->len && isdigit((unsigned char)fmt->data[i]) && sl < 20) spec[sl++] = fmt->data[i++];
    }
    if (i >= fmt->len) tmpl_error(in, "incomplete format");
    char conv = fmt->data[i];
    if (conv == '%') {
      tmpl_buf_putc(&buf, '%');
      continue;
    }
    if (!have_value) {
      if (is_tuple) {
        if (next >= values.as.list->len) tmpl_error(in, "not enough arguments for format string");
        value = values.as.list->items[next++];
      } else {
        if (next++) tmpl_error(in, "not enough arguments for format string");
        value = values;
      }
    }
    switch (conv) {
      case 's':
      case 'r': {
        tmpl_buf text;
        tmpl_buf_init(&text, in->arena, 0);
        if (conv == 'r')
          tmpl_write_repr(&text, value);
        else
          tmpl_write_str(&text, value);
        spec[sl++] = 's';
        spec[sl] = '\0';
        tmpl_buf_printf(&buf, spec, text.data ? text.data : "");
        break;
      }
      case 'd':
      case 'i':
      case 'x':
      case 'X':
      case 'o': {
        if (!tmpl_is_number(value)) tmpl_error(in, "%%%c format: a real number is required, not %s", conv, tmpl_type_name(value));
        int64_t n = value.type == TV_FLOAT ? (int64_t)value.as.real : value.type == TV_BOOL ? value.as.boolean : value.as.integer;
        memcpy(spec + sl, "ll", 2);
        sl += 2;
        spec[sl++] = conv == 'i' ? 'd' : conv;
        spec[sl] = '\0';
        tmpl_buf_printf(&buf, spec, (long long)n);
        break;
      }
      case 'f':
      case 'F':
      case 'e':
      case 'E':
      case 'g':
      case 'G':
        if (!tmpl_is_number(value)) tmpl_error(in, "must be real number, not %s", tmpl_type_name(value));
        spec[sl++] = conv;
        spec[sl] = '\0';
        tmpl_buf_printf(&buf, spec, tmpl_as_double(value));
        break;
      default: tmpl_error(in, "unsupported format character '%c'", conv);
    }
  }
  if (is_tuple && next < values.as.list->len) tmpl_error(in, "not all arguments converted during string formatting");
  return tv_string(in->arena, buf.data ? buf.data : "", buf.len);
}
