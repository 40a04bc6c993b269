/* JSON conversion: jansson input to values, and a json.dumps-compatible writer. */
#include "template/json.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>

tmpl_value tmpl_from_json(tmpl_arena* arena, const json_t* json) {
  switch (json_typeof(json)) {
    case JSON_OBJECT: {
      tmpl_value d = tv_dict(arena, DICT_PLAIN);
      const char* key;
      json_t* value;
      void* iter = json_object_iter((json_t*)json);
      while (iter) {
        key = json_object_iter_key(iter);
        value = json_object_iter_value(iter);
        size_t klen = strlen(key);
        tmpl_dict_set(arena, d.as.dict, tv_string(arena, key, klen), tmpl_from_json(arena, value));
        iter = json_object_iter_next((json_t*)json, iter);
      }
      return d;
    }
    case JSON_ARRAY: {
      size_t n = json_array_size(json);
      tmpl_value l = tv_list(arena, n);
      for (size_t i = 0; i < n; i++) l.as.list->items[l.as.list->len++] = tmpl_from_json(arena, json_array_get(json, i));
      return l;
    }
    case JSON_STRING: return tv_string(arena, json_string_value(json), json_string_length(json));
    case JSON_INTEGER: return tv_int((int64_t)json_integer_value(json));
    case JSON_REAL: return tv_float(json_real_value(json));
    case JSON_TRUE: return tv_bool(true);
    case JSON_FALSE: return tv_bool(false);
    case JSON_NULL: return tv_none();
  }
  return tv_none();
}

static void write_json_string(tmpl_buf* buf, const tmpl_string* s, bool ensure_ascii) {
  tmpl_buf_putc(buf, '"');
  size_t pos = 0;
  while (pos < s->len) {
    size_t start = pos;
    uint32_t cp = tmpl_utf8_next(s->data, s->len, &pos);
    switch (cp) {
      case '"': tmpl_buf_puts(buf, "\\\""); continue;
      case '\\': tmpl_buf_puts(buf, "\\\\"); continue;
      case '\n': tmpl_buf_puts(buf, "\\n"); continue;
      case '\r': tmpl_buf_puts(buf, "\\r"); continue;
      case '\t': tmpl_buf_puts(buf, "\\t"); continue;
      case '\b': tmpl_buf_puts(buf, "\\b"); continue;
      case '\f': tmpl_buf_puts(buf, "\\f"); continue;
      default: break;
    }
    if (cp < 0x20 || (ensure_ascii && cp >= 0x7f)) {
      if (cp >= 0x10000) {
        uint32_t v = cp - 0x10000;
        tmpl_buf_printf(buf, "\\u%04x\\u%04x", 0xd800 + (v >> 10), 0xdc00 + (v & 0x3ff));
      } else {
        tmpl_buf_printf(buf, "\\u%04x", cp);
      }
    } else {
      tmpl_buf_append(buf, s->data + start, pos - start);
    }
  }
  tmpl_buf_putc(buf, '"');
}

static void write_json_float(tmpl_buf* buf, double d) {
  if (isnan(d)) return tmpl_buf_puts(buf, "NaN");
  if (isinf(d)) return tmpl_buf_puts(buf, d < 0 ? "-Infinity" : "Infinity");
  tmpl_write_float(buf, d);
}

static void newline_indent(tmpl_buf* buf, const tmpl_json_style* style, int level) {
  tmpl_buf_putc(buf, '\n');
  for (int i = 0; i < level; i++) tmpl_buf_puts(buf, style->indent);
}

/* A dict key as json.dumps converts it: str as is, numbers, bools and None spelled as JSON. */
static tmpl_string* json_key(tmpl_interp* in, tmpl_value key) {
  tmpl_buf buf;
  tmpl_buf_init(&buf, in->arena, 0);
  switch (key.type) {
    case TV_STRING: return key.as.string;
    case TV_INT: tmpl_buf_printf(&buf, "%" PRId64, key.as.integer); break;
    case TV_FLOAT: write_json_float(&buf, key.as.real); break;
    case TV_BOOL: tmpl_buf_puts(&buf, key.as.boolean ? "true" : "false"); break;
    case TV_NONE: tmpl_buf_puts(&buf, "null"); break;
    default: tmpl_error(in, "keys must be str, int, float, bool or None, not %s", tmpl_type_name(key));
  }
  return tv_string(in->arena, buf.data, buf.len).as.string;
}

static void write_value(tmpl_interp* in, tmpl_buf* buf, tmpl_value v, const tmpl_json_style* style, int level) {
  if (level > 512) tmpl_error(in, "tojson: value nested too deeply");
  switch (v.type) {
    case TV_NONE: return tmpl_buf_puts(buf, "null");
    case TV_BOOL: return tmpl_buf_puts(buf, v.as.boolean ? "true" : "false");
    case TV_INT: return tmpl_buf_printf(buf, "%" PRId64, v.as.integer);
    case TV_FLOAT: return write_json_float(buf, v.as.real);
    case TV_STRING: return write_json_string(buf, v.as.string, style->ensure_ascii);
    case TV_LIST: {
      const tmpl_list* l = v.as.list;
      if (!l->len) return tmpl_buf_puts(buf, "[]");
      tmpl_buf_putc(buf, '[');
      for (size_t i = 0; i < l->len; i++) {
        if (i) tmpl_buf_puts(buf, style->item_separator);
        if (style->indent) newline_indent(buf, style, level + 1);
        write_value(in, buf, l->items[i], style, level + 1);
      }
      if (style->indent) newline_indent(buf, style, level);
      tmpl_buf_putc(buf, ']');
      return;
    }
    case TV_DICT: {
      const tmpl_dict* d = v.as.dict;
      if (d->kind != DICT_PLAIN) break;
      if (!d->len) return tmpl_buf_puts(buf, "{}");
      size_t* order = tmpl_alloc(in->arena, d->len * sizeof(size_t));
      for (size_t i = 0; i < d->len; i++) order[i] = i;
      if (style->sort_keys)
        for (size_t i = 1; i < d->len; i++) /* insertion sort: stable, and may fail mid-way safely */
          for (size_t j = i; j > 0 && tmpl_compare(in, d->keys[order[j - 1]], d->keys[order[j]]) > 0; j--) {
            size_t t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
          }
      tmpl_buf_putc(buf, '{');
      for (size_t k = 0; k < d->len; k++) {
        size_t i = order[k];
        if (k) tmpl_buf_puts(buf, style->item_separator);
        if (style->indent) newline_indent(buf, style, level + 1);
        write_json_string(buf, json_key(in, d->keys[i]), style->ensure_ascii);
        tmpl_buf_puts(buf, style->key_separator);
        write_value(in, buf, d->values[i], style, level + 1);
      }
      if (style->indent) newline_indent(buf, style, level);
      tmpl_buf_putc(buf, '}');
      return;
    }
    default: break;
  }
  tmpl_error(in, "Object of type %s is not JSON serializable", tmpl_type_name(v));
}

void tmpl_write_json(tmpl_interp* in, tmpl_buf* buf, tmpl_value v, const tmpl_json_style* style) {
  write_value(in, buf, v, style, 0);
}
