/* Values with Python semantics: construction, containers, truthiness, equality, str() and repr(). */
#include "template/value.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "template/eval.h"

tmpl_value tv_string(tmpl_arena* arena, const char* data, size_t len) {
  tmpl_string* s = tmpl_alloc(arena, sizeof(tmpl_string) + len + 1);
  s->len = len;
  if (len) memcpy(s->data, data, len);
  s->data[len] = '\0';
  tmpl_value v = {.type = TV_STRING};
  v.as.string = s;
  return v;
}

tmpl_value tv_cstring(tmpl_arena* arena, const char* s) { return tv_string(arena, s, strlen(s)); }

tmpl_value tv_list(tmpl_arena* arena, size_t capacity) {
  tmpl_list* l = tmpl_alloc(arena, sizeof *l);
  if (capacity) {
    l->items = tmpl_alloc(arena, capacity * sizeof(tmpl_value));
    l->cap = capacity;
  }
  tmpl_value v = {.type = TV_LIST};
  v.as.list = l;
  return v;
}

tmpl_value tv_dict(tmpl_arena* arena, tmpl_dict_kind kind) {
  tmpl_dict* d = tmpl_alloc(arena, sizeof *d);
  d->kind = kind;
  tmpl_value v = {.type = TV_DICT};
  v.as.dict = d;
  return v;
}

void tmpl_list_push(tmpl_arena* arena, tmpl_list* list, tmpl_value item) {
  if (list->len == list->cap) {
    size_t cap = list->cap ? list->cap * 2 : 4;
    tmpl_value* items = tmpl_alloc(arena, cap * sizeof(tmpl_value));
    if (list->len) memcpy(items, list->items, list->len * sizeof(tmpl_value));
    list->items = items;
    list->cap = cap;
  }
  list->items[list->len++] = item;
}

tmpl_value* tmpl_dict_find(const tmpl_dict* dict, tmpl_value key) {
  for (size_t i = 0; i < dict->len; i++)
    if (tmpl_equal(dict->keys[i], key)) return &dict->values[i];
  return NULL;
}

tmpl_value* tmpl_dict_find_str(const tmpl_dict* dict, const char* key) {
  size_t n = strlen(key);
  for (size_t i = 0; i < dict->len; i++) {
    tmpl_value k = dict->keys[i];
    if (k.type == TV_STRING && k.as.string->len == n && !memcmp(k.as.string->data, key, n)) return &dict->values[i];
  }
  return NULL;
}

void tmpl_dict_set(tmpl_arena* arena, tmpl_dict* dict, tmpl_value key, tmpl_value value) {
  tmpl_value* slot = tmpl_dict_find(dict, key);
  if (slot) {
    *slot = value;
    return;
  }
  if (dict->len == dict->cap) {
    size_t cap = dict->cap ? dict->cap * 2 : 4;
    tmpl_value* keys = tmpl_alloc(arena, cap * sizeof(tmpl_value));
    tmpl_value* values = tmpl_alloc(arena, cap * sizeof(tmpl_value));
    if (dict->len) {
      memcpy(keys, dict->keys, dict->len * sizeof(tmpl_value));
      memcpy(values, dict->values, dict->len * sizeof(tmpl_value));
    }
    dict->keys = keys;
    dict->values = values;
    dict->cap = cap;
  }
  dict->keys[dict->len] = key;
  dict->values[dict->len] = value;
  dict->len++;
}

void tmpl_dict_set_str(tmpl_arena* arena, tmpl_dict* dict, const char* key, tmpl_value value) {
  tmpl_dict_set(arena, dict, tv_cstring(arena, key), value);
}

bool tmpl_truthy(tmpl_value v) {
  switch (v.type) {
    case TV_UNDEFINED:
    case TV_NONE: return false;
    case TV_BOOL: return v.as.boolean;
    case TV_INT: return v.as.integer != 0;
    case TV_FLOAT: return v.as.real != 0.0;
    case TV_STRING: return v.as.string->len != 0;
    case TV_LIST: return v.as.list->len != 0;
    case TV_DICT: return v.as.dict->kind != DICT_PLAIN || v.as.dict->len != 0;
    case TV_CALLABLE: return true;
  }
  return false;
}

bool tmpl_is_number(tmpl_value v) { return v.type == TV_BOOL || v.type == TV_INT || v.type == TV_FLOAT; }

double tmpl_as_double(tmpl_value v) {
  if (v.type == TV_FLOAT) return v.as.real;
  if (v.type == TV_INT) return (double)v.as.integer;
  if (v.type == TV_BOOL) return v.as.boolean;
  return 0.0;
}

bool tmpl_equal(tmpl_value a, tmpl_value b) {
  if (tmpl_is_number(a) && tmpl_is_number(b)) {
    if (a.type != TV_FLOAT && b.type != TV_FLOAT) {
      int64_t x = a.type == TV_BOOL ? a.as.boolean : a.as.integer;
      int64_t y = b.type == TV_BOOL ? b.as.boolean : b.as.integer;
      return x == y;
    }
    return tmpl_as_double(a) == tmpl_as_double(b);
  }
  if (a.type != b.type) return false;
  switch (a.type) {
    case TV_UNDEFINED:
    case TV_NONE: return true;
    case TV_STRING:
      return a.as.string->len == b.as.string->len && !memcmp(a.as.string->data, b.as.string->data, a.as.string->len);
    case TV_LIST: {
      const tmpl_list *x = a.as.list, *y = b.as.list;
      if (x->is_tuple != y->is_tuple || x->len != y->len) return false;
      for (size_t i = 0; i < x->len; i++)
        if (!tmpl_equal(x->items[i], y->items[i])) return false;
      return true;
    }
    case TV_DICT: {
      const tmpl_dict *x = a.as.dict, *y = b.as.dict;
      if (x->kind != DICT_PLAIN || y->kind != DICT_PLAIN) return x == y;
      if (x->len != y->len) return false;
      for (size_t i = 0; i < x->len; i++) {
        tmpl_value* other = tmpl_dict_find(y, x->keys[i]);
        if (!other || !tmpl_equal(x->values[i], *other)) return false;
      }
      return true;
    }
    case TV_CALLABLE: return a.as.callable == b.as.callable;
    default: return false;
  }
}

const char* tmpl_type_name(tmpl_value v) {
  switch (v.type) {
    case TV_UNDEFINED: return "Undefined";
    case TV_NONE: return "NoneType";
    case TV_BOOL: return "bool";
    case TV_INT: return "int";
    case TV_FLOAT: return "float";
    case TV_STRING: return "str";
    case TV_LIST: return v.as.list->is_tuple ? "tuple" : "list";
    case TV_DICT:
      return v.as.dict->kind == DICT_NAMESPACE ? "Namespace" : v.as.dict->kind == DICT_LOOP ? "LoopContext" : "dict";
    case TV_CALLABLE: return "function";
  }
  return "object";
}

void tmpl_write_float(tmpl_buf* buf, double d) {
  if (isnan(d)) return tmpl_buf_puts(buf, "nan");
  if (isinf(d)) return tmpl_buf_puts(buf, d < 0 ? "-inf" : "inf");
  if (d == 0.0) return tmpl_buf_puts(buf, signbit(d) ? "-0.0" : "0.0");
  /* Shortest digits that round-trip, placed like Python's repr (exponent form when the decimal
   * point would be more than 16 places right or 4 places left of the first digit). */
  char tmp[40];
  for (int precision = 1; precision <= 17; precision++) {
    snprintf(tmp, sizeof tmp, "%.*e", precision - 1, d);
    if (strtod(tmp, NULL) == d) break;
  }
  const char* p = tmp;
  bool negative = *p == '-';
  if (negative) p++;
  char digits[24];
  int ndigits = 0;
  for (; *p && *p != 'e'; p++)
    if (*p != '.') digits[ndigits++] = *p;
  int exponent = atoi(p + 1);
  while (ndigits > 1 && digits[ndigits - 1] == '0') ndigits--;
  int decpt = exponent + 1;
  if (negative) tmpl_buf_putc(buf, '-');
  if (decpt <= -4 || decpt > 16) {
    tmpl_buf_putc(buf, digits[0]);
    if (ndigits > 1) {
      tmpl_buf_putc(buf, '.');
      tmpl_buf_append(buf, digits + 1, (size_t)ndigits - 1);
    }
    tmpl_buf_printf(buf, "e%c%02d", exponent < 0 ? '-' : '+', abs(exponent));
  } else if (decpt <= 0) {
    tmpl_buf_puts(buf, "0.");
    for (int i = 0; i < -decpt; i++) tmpl_buf_putc(buf, '0');
    tmpl_buf_append(buf, digits, (size_t)ndigits);
  } else if (decpt >= ndigits) {
    tmpl_buf_append(buf, digits, (size_t)ndigits);
    for (int i = ndigits; i < decpt; i++) tmpl_buf_putc(buf, '0');
    tmpl_buf_puts(buf, ".0");
  } else {
    tmpl_buf_append(buf, digits, (size_t)decpt);
    tmpl_buf_putc(buf, '.');
    tmpl_buf_append(buf, digits + decpt, (size_t)(ndigits - decpt));
  }
}

/* Python's str.isprintable for one code point. */
static bool py_isprintable(uint32_t cp) {
  if (cp == ' ') return true;
  if (cp < 0x20 || cp == 0x7f) return false;
  if (cp < 0x7f) return true;
  switch (utf8proc_category((utf8proc_int32_t)cp)) {
    case UTF8PROC_CATEGORY_CC:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO:
    case UTF8PROC_CATEGORY_CN:
    case UTF8PROC_CATEGORY_ZL:
    case UTF8PROC_CATEGORY_ZP:
    case UTF8PROC_CATEGORY_ZS: return false;
    default: return true;
  }
}

static void write_string_repr(tmpl_buf* buf, const tmpl_string* s) {
  bool has_single = memchr(s->data, '\'', s->len) != NULL;
  bool has_double = memchr(s->data, '"', s->len) != NULL;
  char quote = has_single && !has_double ? '"' : '\'';
  tmpl_buf_putc(buf, quote);
  size_t pos = 0;
  while (pos < s->len) {
    size_t start = pos;
    uint32_t cp = tmpl_utf8_next(s->data, s->len, &pos);
    if (cp == (uint32_t)quote || cp == '\\') {
      tmpl_buf_putc(buf, '\\');
      tmpl_buf_putc(buf, (char)cp);
    } else if (cp == '\n') {
      tmpl_buf_puts(buf, "\\n");
    } else if (cp == '\r') {
      tmpl_buf_puts(buf, "\\r");
    } else if (cp == '\t') {
      tmpl_buf_puts(buf, "\\t");
    } else if (!py_isprintable(cp)) {
      if (cp < 0x100)
        tmpl_buf_printf(buf, "\\x%02x", cp);
      else if (cp < 0x10000)
        tmpl_buf_printf(buf, "\\u%04x", cp);
      else
        tmpl_buf_printf(buf, "\\U%08x", cp);
    } else {
      tmpl_buf_append(buf, s->data + start, pos - start);
    }
  }
  tmpl_buf_putc(buf, quote);
}

static void write_value(tmpl_buf* buf, tmpl_value v, bool repr) {
  switch (v.type) {
    case TV_UNDEFINED: return;
    case TV_NONE: return tmpl_buf_puts(buf, "None");
    case TV_BOOL: return tmpl_buf_puts(buf, v.as.boolean ? "True" : "False");
    case TV_INT: return tmpl_buf_printf(buf, "%" PRId64, v.as.integer);
    case TV_FLOAT: return tmpl_write_float(buf, v.as.real);
    case TV_STRING:
      if (repr) return write_string_repr(buf, v.as.string);
      return tmpl_buf_append(buf, v.as.string->data, v.as.string->len);
    case TV_LIST: {
      const tmpl_list* l = v.as.list;
      tmpl_buf_putc(buf, l->is_tuple ? '(' : '[');
      for (size_t i = 0; i < l->len; i++) {
        if (i) tmpl_buf_puts(buf, ", ");
        write_value(buf, l->items[i], true);
      }
      if (l->is_tuple && l->len == 1) tmpl_buf_putc(buf, ',');
      tmpl_buf_putc(buf, l->is_tuple ? ')' : ']');
      return;
    }
    case TV_DICT: {
      const tmpl_dict* d = v.as.dict;
      if (d->kind == DICT_LOOP) return tmpl_buf_puts(buf, "<LoopContext>");
      if (d->kind == DICT_NAMESPACE) tmpl_buf_puts(buf, "<Namespace ");
      tmpl_buf_putc(buf, '{');
      for (size_t i = 0; i < d->len; i++) {
        if (i) tmpl_buf_puts(buf, ", ");
        write_value(buf, d->keys[i], true);
        tmpl_buf_puts(buf, ": ");
        write_value(buf, d->values[i], true);
      }
      tmpl_buf_putc(buf, '}');
      if (d->kind == DICT_NAMESPACE) tmpl_buf_putc(buf, '>');
      return;
    }
    case TV_CALLABLE: return tmpl_buf_printf(buf, "<function %s>", v.as.callable->name);
  }
}

void tmpl_write_str(tmpl_buf* buf, tmpl_value v) { write_value(buf, v, false); }
void tmpl_write_repr(tmpl_buf* buf, tmpl_value v) { write_value(buf, v, true); }

tmpl_string* tmpl_to_string(tmpl_arena* arena, tmpl_value v) {
  if (v.type == TV_STRING) return v.as.string;
  tmpl_buf buf;
  tmpl_buf_init(&buf, arena, 0);
  tmpl_write_str(&buf, v);
  return tv_string(arena, buf.data ? buf.data : "", buf.len).as.string;
}

uint32_t tmpl_utf8_next(const char* s, size_t len, size_t* pos) {
  const unsigned char* p = (const unsigned char*)s + *pos;
  size_t left = len - *pos;
  unsigned char c = p[0];
  int n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
  if (n == 0 || (size_t)n > left) {
    (*pos)++;
    return c;
  }
  uint32_t cp = n == 1 ? c : n == 2 ? (c & 0x1fu) : n == 3 ? (c & 0x0fu) : (c & 0x07u);
  for (int i = 1; i < n; i++) {
    if ((p[i] & 0xc0) != 0x80) {
      (*pos)++;
      return c;
    }
    cp = (cp << 6) | (p[i] & 0x3fu);
  }
  *pos += (size_t)n;
  return cp;
}

size_t tmpl_utf8_encode(uint32_t cp, char out[4]) {
  if (cp < 0x80) {
    out[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    out[0] = (char)(0xc0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3f));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = (char)(0xe0 | (cp >> 12));
    out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[2] = (char)(0x80 | (cp & 0x3f));
    return 3;
  }
  out[0] = (char)(0xf0 | (cp >> 18));
  out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
  out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
  out[3] = (char)(0x80 | (cp & 0x3f));
  return 4;
}

size_t tmpl_utf8_count(const char* s, size_t len) {
  size_t n = 0, pos = 0;
  while (pos < len) {
    if ((unsigned char)s[pos] < 0x80) {
      pos++;
    } else {
      tmpl_utf8_next(s, len, &pos);
    }
    n++;
  }
  return n;
}

size_t tmpl_utf8_offset(const char* s, size_t len, size_t index) {
  size_t pos = 0;
  for (size_t i = 0; i < index && pos < len; i++) tmpl_utf8_next(s, len, &pos);
  return pos;
}

bool tmpl_py_isspace(uint32_t cp) {
  if ((cp >= 0x09 && cp <= 0x0d) || (cp >= 0x1c && cp <= 0x20)) return true;
  switch (cp) {
    case 0x85:
    case 0xa0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202f:
    case 0x205f:
    case 0x3000: return true;
    default: return cp >= 0x2000 && cp <= 0x200a;
  }
}
