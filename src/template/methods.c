/* Methods of str, dict and list as templates call them ("x.strip()", "d.items()"); the mutating
 * ones are refused as Jinja2's ImmutableSandboxedEnvironment refuses them. */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "template/strings.h"

/* ---- string helpers ---- */


static tmpl_value buf_value(tmpl_interp* in, tmpl_buf* buf) { return tv_string(in->arena, buf->data ? buf->data : "", buf->len); }

static bool in_chars(uint32_t cp, const tmpl_string* chars) {
  if (!chars) return tmpl_py_isspace(cp);
  size_t pos = 0;
  while (pos < chars->len)
    if (tmpl_utf8_next(chars->data, chars->len, &pos) == cp) return true;
  return false;
}

tmpl_value tmpl_str_strip(tmpl_interp* in, const tmpl_string* s, const tmpl_string* chars, int which) {
  size_t start = 0, end = s->len;
  if (which & 1)
    while (start < end) {
      size_t next = start;
      if (!in_chars(tmpl_utf8_next(s->data, end, &next), chars)) break;
      start = next;
    }
  if (which & 2)
    while (end > start) {
      size_t begin = end - 1;
      while (begin > start && ((unsigned char)s->data[begin] & 0xc0) == 0x80) begin--;
      size_t pos = begin;
      if (!in_chars(tmpl_utf8_next(s->data, end, &pos), chars)) break;
      end = begin;
    }
  return tv_string(in->arena, s->data + start, end - start);
}

tmpl_value tmpl_str_split(tmpl_interp* in, const tmpl_string* s, const tmpl_string* sep, int64_t maxsplit, bool from_right) {
  tmpl_value out = tv_list(in->arena, 0);
  tmpl_list* parts = out.as.list;
  if (sep && sep->len == 0) tmpl_error(in, "empty separator");
  if (!sep) {
    /* Whitespace runs; leading/trailing whitespace produces no empty parts. */
    tmpl_list* words = tv_list(in->arena, 0).as.list;
    size_t pos = 0;
    while (pos < s->len) {
      size_t next = pos;
      while (next < s->len) {
        size_t probe = next;
        if (!tmpl_py_isspace(tmpl_utf8_next(s->data, s->len, &probe))) break;
        next = probe;
      }
      pos = next;
      if (pos >= s->len) break;
      size_t word = pos;
      while (pos < s->len) {
        size_t probe = pos;
        if (tmpl_py_isspace(tmpl_utf8_next(s->data, s->len, &probe))) break;
        pos = probe;
      }
      tmpl_list_push(in->arena, words, tv_string(in->arena, s->data + word, pos - word));
    }
    if (maxsplit < 0 || (size_t)maxsplit + 1 >= words->len) return (tmpl_value){.type = TV_LIST, .as.list = words};
    /* With a limit, the remainder keeps its inner whitespace: redo the scan on the original. */
    if (!from_right) {
      size_t p = 0;
      for (int64_t k = 0; k < maxsplit; k++) {
        while (p < s->len) {
          size_t probe = p;
          if (!tmpl_py_isspace(tmpl_utf8_next(s->data, s->len, &probe))) break;
          p = probe;
        }
        size_t w = p;
        while (p < s->len) {
          size_t probe = p;
          if (tmpl_py_isspace(tmpl_utf8_next(s->data, s->len, &probe))) break;
          p = probe;
        }
        tmpl_list_push(in->arena, parts, tv_string(in->arena, s->data + w, p - w));
      }
      tmpl_value rest = tmpl_str_strip(in, (tmpl_string*)tv_string(in->arena, s->data + p, s->len - p).as.string, NULL, 1);
      tmpl_list_push(in->arena, parts, rest);
      return out;
    }
    /* rsplit: the leading words stay joined as in the original text. */
    size_t p = s->len;
    tmpl_list* tail = tv_list(in->arena, 0).as.list;
    for (int64_t k = 0; k < maxsplit; k++) {
      while (p > 0 && tmpl_py_isspace((unsigned char)s->data[p - 1])) p--;
      size_t e = p;
      while (p > 0 && !tmpl_py_isspace((unsigned char)s->data[p - 1])) p--;
      tmpl_list_push(in->arena, tail, tv_string(in->arena, s->data + p, e - p));
    }
    tmpl_value head = tmpl_str_strip(in, (tmpl_string*)tv_string(in->arena, s->data, p).as.string, NULL, 2);
    tmpl_list_push(in->arena, parts, head);
    for (size_t k = tail->len; k > 0; k--) tmpl_list_push(in->arena, parts, tail->items[k - 1]);
    return out;
  }
  if (!from_right) {
    size_t pos = 0;
    int64_t done = 0;
    for (;;) {
      const char* hit = (maxsplit < 0 || done < maxsplit) ? memmem(s->data + pos, s->len - pos, sep->data, sep->len) : NULL;
      if (!hit) {
        tmpl_list_push(in->arena, parts, tv_string(in->arena, s->data + pos, s->len - pos));
        return out;
      }
      size_t at = (size_t)(hit - s->data);
      tmpl_list_push(in->arena, parts, tv_string(in->arena, s->data + pos, at - pos));
      pos = at + sep->len;
      done++;
    }
  }
  tmpl_list* reversed = tv_list(in->arena, 0).as.list;
  size_t end = s->len;
  int64_t done = 0;
  for (;;) {
    size_t found = SIZE_MAX;
    if (maxsplit < 0 || done < maxsplit)
      for (size_t i = end; i >= sep->len; i--)
        if (!memcmp(s->data + i - sep->len, sep->data, sep->len)) {
          found = i - sep->len;
          break;
        }
    if (found == SIZE_MAX) {
      tmpl_list_push(in->arena, reversed, tv_string(in->arena, s->data, end));
      break;
    }
    tmpl_list_push(in->arena, reversed, tv_string(in->arena, s->data + found + sep->len, end - found - sep->len));
    end = found;
    done++;
  }
  for (size_t k = reversed->len; k > 0; k--) tmpl_list_push(in->arena, parts, reversed->items[k - 1]);
  return out;
}

tmpl_value tmpl_str_replace(tmpl_interp* in, const tmpl_string* s, const tmpl_string* old, const tmpl_string* new_text, int64_t count) {
  tmpl_buf buf;
  tmpl_buf_init(&buf, in->arena, 0);
  if (old->len == 0) {
    /* Python inserts the replacement before every code point and at the end. */
    size_t pos = 0;
    int64_t done = 0;
    while (count < 0 || done < count) {
      tmpl_buf_append(&buf, new_text->data, new_text->len);
      done++;
      if (pos >= s->len) {
        pos = s->len + 1;
        break;
      }
      size_t start = pos;
      tmpl_utf8_next(s->data, s->len, &pos);
      tmpl_buf_append(&buf, s->data + start, pos - start);
    }
    if (pos <= s->len) tmpl_buf_append(&buf, s->data + pos, s->len - pos);
    return buf_value(in, &buf);
  }
  size_t pos = 0;
  int64_t done = 0;
  while (count < 0 || done < count) {
    const char* hit = memmem(s->data + pos, s->len - pos, old->data, old->len);
    if (!hit) break;
    size_t at = (size_t)(hit - s->data);
    tmpl_buf_append(&buf, s->data + pos, at - pos);
    tmpl_buf_append(&buf, new_text->data, new_text->len);
    pos = at + old->len;
    done++;
  }
  tmpl_buf_append(&buf, s->data + pos, s->len - pos);
  return buf_value(in, &buf);
}

static bool is_line_break(uint32_t cp) {
  return cp == '\n' || cp == '\r' || cp == 0x0b || cp == 0x0c || cp == 0x1c || cp == 0x1d || cp == 0x1e || cp == 0x85 ||
         cp == 0x2028 || cp == 0x2029;
}

tmpl_value tmpl_str_splitlines(tmpl_interp* in, const tmpl_string* s, bool keepends) {
  tmpl_value out = tv_list(in->arena, 0);
  size_t pos = 0, line = 0;
  while (pos < s->len) {
    size_t before = pos;
    uint32_t cp = tmpl_utf8_next(s->data, s->len, &pos);
    if (!is_line_break(cp)) continue;
    if (cp == '\r' && pos < s->len && s->data[pos] == '\n') pos++;
    size_t end = keepends ? pos : before;
    tmpl_list_push(in->arena, out.as.list, tv_string(in->arena, s->data + line, end - line));
    line = pos;
  }
  if (line < s->len) tmpl_list_push(in->arena, out.as.list, tv_string(in->arena, s->data + line, s->len - line));
  return out;
}

int64_t tmpl_str_find(const tmpl_string* s, const tmpl_string* sub, bool last) {
  if (sub->len > s->len) return -1;
  size_t found = SIZE_MAX;
  for (size_t i = 0; i + sub->len <= s->len; i++)
    if (!memcmp(s->data + i, sub->data, sub->len)) {
      found = i;
      if (!last) break;
    }
  if (found == SIZE_MAX) return -1;
  return (int64_t)tmpl_utf8_count(s->data, found);
}

/* ---- argument helpers ---- */

static const tmpl_string* str_arg(tmpl_interp* in, const tmpl_args* args, size_t i, const char* name, bool optional) {
  tmpl_value v = tmpl_arg(args, i, name, tv_undefined(NULL));
  if (optional && (v.type == TV_UNDEFINED || v.type == TV_NONE)) return NULL;
  if (v.type != TV_STRING) tmpl_error(in, "expected a string argument, got '%s'", tmpl_type_name(v));
  return v.as.string;
}

static int64_t int_arg(tmpl_interp* in, const tmpl_args* args, size_t i, const char* name, int64_t fallback) {
  tmpl_value v = tmpl_arg(args, i, name, tv_undefined(NULL));
  if (v.type == TV_UNDEFINED || v.type == TV_NONE) return fallback;
  if (v.type == TV_BOOL) return v.as.boolean;
  if (v.type != TV_INT) tmpl_error(in, "expected an integer argument, got '%s'", tmpl_type_name(v));
  return v.as.integer;
}

/* ---- str methods ---- */

#define STR_METHOD(name) static tmpl_value name(tmpl_interp* in, tmpl_value self, const tmpl_args* args)

STR_METHOD(s_strip) { return tmpl_str_strip(in, self.as.string, str_arg(in, args, 0, "chars", true), 3); }
STR_METHOD(s_lstrip) { return tmpl_str_strip(in, self.as.string, str_arg(in, args, 0, "chars", true), 1); }
STR_METHOD(s_rstrip) { return tmpl_str_strip(in, self.as.string, str_arg(in, args, 0, "chars", true), 2); }
STR_METHOD(s_split) {
  return tmpl_str_split(in, self.as.string, str_arg(in, args, 0, "sep", true), int_arg(in, args, 1, "maxsplit", -1), false);
}
STR_METHOD(s_rsplit) {
  return tmpl_str_split(in, self.as.string, str_arg(in, args, 0, "sep", true), int_arg(in, args, 1, "maxsplit", -1), true);
}
STR_METHOD(s_splitlines) { return tmpl_str_splitlines(in, self.as.string, tmpl_truthy(tmpl_arg(args, 0, "keepends", tv_bool(false)))); }
STR_METHOD(s_upper) { return tmpl_str_case(in, self.as.string, CASE_UPPER); }
STR_METHOD(s_lower) { return tmpl_str_case(in, self.as.string, CASE_LOWER); }
STR_METHOD(s_title) { return tmpl_str_case(in, self.as.string, CASE_TITLE); }
STR_METHOD(s_capitalize) { return tmpl_str_case(in, self.as.string, CASE_CAPITALIZE); }
STR_METHOD(s_swapcase) { return tmpl_str_case(in, self.as.string, CASE_SWAPCASE); }
STR_METHOD(s_replace) {
  return tmpl_str_replace(in, self.as.string, str_arg(in, args, 0, "old", false), str_arg(in, args, 1, "new", false),
                          int_arg(in, args, 2, "count", -1));
}

static bool affix_match(tmpl_interp* in, const tmpl_string* s, tmpl_value affix, bool at_end) {
  if (affix.type == TV_LIST && affix.as.list->is_tuple) {
    for (size_t i = 0; i < affix.as.list->len; i++)
      if (affix_match(in, s, affix.as.list->items[i], at_end)) return true;
    return false;
  }
  if (affix.type != TV_STRING) tmpl_error(in, "startswith/endswith first arg must be str or a tuple of str");
  const tmpl_string* a = affix.as.string;
  if (a->len > s->len) return false;
  return !memcmp(at_end ? s->data + s->len - a->len : s->data, a->data, a->len);
}

STR_METHOD(s_startswith) { return tv_bool(affix_match(in, self.as.string, tmpl_arg(args, 0, "prefix", tv_undefined(NULL)), false)); }
STR_METHOD(s_endswith) { return tv_bool(affix_match(in, self.as.string, tmpl_arg(args, 0, "suffix", tv_undefined(NULL)), true)); }
STR_METHOD(s_find) { return tv_int(tmpl_str_find(self.as.string, str_arg(in, args, 0, "sub", false), false)); }
STR_METHOD(s_rfind) { return tv_int(tmpl_str_find(self.as.string, str_arg(in, args, 0, "sub", false), true)); }
STR_METHOD(s_index) {
  int64_t i = tmpl_str_find(self.as.string, str_arg(in, args, 0, "sub", false), false);
  if (i < 0) tmpl_error(in, "substring not found");
  return tv_int(i);
}
STR_METHOD(s_count) {
  const tmpl_string* sub = str_arg(in, args, 0, "sub", false);
  const tmpl_string* s = self.as.string;
  if (!sub->len) return tv_int((int64_t)tmpl_utf8_count(s->data, s->len) + 1);
  int64_t n = 0;
  size_t pos = 0;
  const char* hit;
  while ((hit = memmem(s->data + pos, s->len - pos, sub->data, sub->len))) {
    n++;
    pos = (size_t)(hit - s->data) + sub->len;
  }
  return tv_int(n);
}
STR_METHOD(s_join) {
  tmpl_list* items = tmpl_iterate(in, tmpl_arg(args, 0, "iterable", tv_undefined(NULL)));
  tmpl_buf buf;
  tmpl_buf_init(&buf, in->arena, 0);
  for (size_t i = 0; i < items->len; i++) {
    if (items->items[i].type != TV_STRING) tmpl_error(in, "sequence item %zu: expected str instance, %s found", i, tmpl_type_name(items->items[i]));
    if (i) tmpl_buf_append(&buf, self.as.string->data, self.as.string->len);
    tmpl_buf_append(&buf, items->items[i].as.string->data, items->items[i].as.string->len);
  }
  return buf_value(in, &buf);
}

static tmpl_value classify(tmpl_value self, bool (*pred)(uint32_t)) {
  const tmpl_string* s = self.as.string;
  if (!s->len) return tv_bool(false);
  size_t pos = 0;
  while (pos < s->len)
    if (!pred(tmpl_utf8_next(s->data, s->len, &pos))) return tv_bool(false);
  return tv_bool(true);
}
static bool cp_digit(uint32_t cp) { return utf8proc_category((utf8proc_int32_t)cp) == UTF8PROC_CATEGORY_ND; }
static bool cp_alpha(uint32_t cp) {
  utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
  return c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_LO;
}
static bool cp_alnum(uint32_t cp) {
  utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
  return cp_alpha(cp) || c == UTF8PROC_CATEGORY_ND || c == UTF8PROC_CATEGORY_NL || c == UTF8PROC_CATEGORY_NO;
}
STR_METHOD(s_isdigit) { return classify(self, cp_digit); }
STR_METHOD(s_isalpha) { return classify(self, cp_alpha); }
STR_METHOD(s_isalnum) { return classify(self, cp_alnum); }
STR_METHOD(s_isspace) { return classify(self, tmpl_py_isspace); }

static tmpl_value case_check(tmpl_value self, bool upper) {
  const tmpl_string* s = self.as.string;
  bool any_cased = false;
  size_t pos = 0;
  while (pos < s->len) {
    uint32_t cp = tmpl_utf8_next(s->data, s->len, &pos);
    utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
    if (c == UTF8PROC_CATEGORY_LU || c == UTF8PROC_CATEGORY_LT) {
      if (!upper) return tv_bool(false);
      any_cased = true;
    } else if (c == UTF8PROC_CATEGORY_LL) {
      if (upper) return tv_bool(false);
      any_cased = true;
    }
  }
  return tv_bool(any_cased);
}
STR_METHOD(s_isupper) { return case_check(self, true); }
STR_METHOD(s_islower) { return case_check(self, false); }

static tmpl_value pad(tmpl_interp* in, tmpl_value self, const tmpl_args* args, int align) {
  int64_t width = int_arg(in, args, 0, "width", 0);
  const tmpl_string* fill = str_arg(in, args, 1, "fillchar", true);
  const tmpl_string* s = self.as.string;
  int64_t len = (int64_t)tmpl_utf8_count(s->data, s->len);
  if (width <= len) return self;
  if (width > 1 << 24) tmpl_error(in, "padding width too large");
  int64_t total = width - len;
  int64_t left = align < 0 ? 0 : align > 0 ? total : total / 2 + (total & width & 1);
  tmpl_buf buf;
  tmpl_buf_init(&buf, in->arena, 0);
  const char* f = fill ? fill->data : " ";
  size_t flen = fill ? fill->len : 1;
  for (int64_t i = 0; i < left; i++) tmpl_buf_append(&buf, f, flen);
  tmpl_buf_append(&buf, s->data, s->len);
  for (int64_t i = left; i < total; i++) tmpl_buf_append(&buf, f, flen);
  return buf_value(in, &buf);
}
STR_METHOD(s_center) { return pad(in, self, args, 0); }
STR_METHOD(s_ljust) { return pad(in, self, args, -1); }
STR_METHOD(s_rjust) { return pad(in, self, args, 1); }
STR_METHOD(s_removeprefix) {
  const tmpl_string* a = str_arg(in, args, 0, "prefix", false);
  const tmpl_string* s = self.as.string;
  if (a->len <= s->len && !memcmp(s->data, a->data, a->len)) return tv_string(in->arena, s->data + a->len, s->len - a->len);
  return self;
}
STR_METHOD(s_removesuffix) {
  const tmpl_string* a = str_arg(in, args, 0, "suffix", false);
  const tmpl_string* s = self.as.string;
  if (a->len && a->len <= s->len && !memcmp(s->data + s->len - a->len, a->data, a->len)) return tv_string(in->arena, s->data, s->len - a->len);
  return self;
}

/* str.format with automatic ({}) or numbered ({0}) fields and keyword fields ({name}). */
STR_METHOD(s_format) {
  const tmpl_string* s = self.as.string;
  tmpl_buf buf;
  tmpl_buf_init(&buf, in->arena, 0);
  size_t auto_index = 0;
  for (size_t i = 0; i < s->len; i++) {
    char c = s->data[i];
    if (c == '}' && i + 1 < s->len && s->data[i + 1] == '}') {
      tmpl_buf_putc(&buf, '}');
      i++;
      continue;
    }
    if (c != '{') {
      tmpl_buf_putc(&buf, c);
      continue;
    }
    if (i + 1 < s->len && s->data[i + 1] == '{') {
      tmpl_buf_putc(&buf, '{');
      i++;
      continue;
    }
    const char* close = memchr(s->data + i, '}', s->len - i);
    if (!close) tmpl_error(in, "single '{' encountered in format string");
    size_t flen = (size_t)(close - s->data) - i - 1;
    char* field = tmpl_strndup(in->arena, s->data + i + 1, flen);
    if (strpbrk(field, ":!.[")) tmpl_error(in, "format specifications are not supported in str.format");
    tmpl_value v;
    if (!flen) {
      v = tmpl_arg(args, auto_index++, NULL, tv_undefined(NULL));
      if (v.type == TV_UNDEFINED && auto_index > args->n_pos) tmpl_error(in, "replacement index %zu out of range", auto_index - 1);
    } else if (field[0] >= '0' && field[0] <= '9') {
      size_t idx = (size_t)strtoull(field, NULL, 10);
      if (idx >= args->n_pos) tmpl_error(in, "replacement index %zu out of range", idx);
      v = args->pos[idx];
    } else {
      v = tmpl_arg(args, SIZE_MAX, field, tv_undefined(NULL));
      if (v.type == TV_UNDEFINED) tmpl_error(in, "KeyError: '%s'", field);
    }
    tmpl_write_str(&buf, v);
    i = (size_t)(close - s->data);
  }
  return buf_value(in, &buf);
}

/* ---- dict and list methods ---- */

STR_METHOD(d_items) {
  tmpl_dict* d = self.as.dict;
  tmpl_value out = tv_list(in->arena, d->len);
  for (size_t i = 0; i < d->len; i++) {
    tmpl_value pair = tv_list(in->arena, 2);
    pair.as.list->is_tuple = true;
    pair.as.list->items[0] = d->keys[i];
    pair.as.list->items[1] = d->values[i];
    pair.as.list->len = 2;
    out.as.list->items[out.as.list->len++] = pair;
  }
  return out;
}
STR_METHOD(d_keys) { return (tmpl_value){.type = TV_LIST, .as.list = tmpl_iterate(in, self)}; }
STR_METHOD(d_values) {
  tmpl_dict* d = self.as.dict;
  tmpl_value out = tv_list(in->arena, d->len);
  for (size_t i = 0; i < d->len; i++) out.as.list->items[out.as.list->len++] = d->values[i];
  return out;
}
STR_METHOD(d_get) {
  tmpl_value* v = tmpl_dict_find(self.as.dict, tmpl_arg(args, 0, "key", tv_undefined(NULL)));
  return v ? *v : tmpl_arg(args, 1, "default", tv_none());
}
STR_METHOD(d_copy) {
  tmpl_value out = tv_dict(in->arena, DICT_PLAIN);
  for (size_t i = 0; i < self.as.dict->len; i++) tmpl_dict_set(in->arena, out.as.dict, self.as.dict->keys[i], self.as.dict->values[i]);
  return out;
}
STR_METHOD(l_index) {
  tmpl_value x = tmpl_arg(args, 0, "value", tv_undefined(NULL));
  for (size_t i = 0; i < self.as.list->len; i++)
    if (tmpl_equal(self.as.list->items[i], x)) return tv_int((int64_t)i);
  tmpl_error(in, "value is not in list");
}
STR_METHOD(l_count) {
  tmpl_value x = tmpl_arg(args, 0, "value", tv_undefined(NULL));
  int64_t n = 0;
  for (size_t i = 0; i < self.as.list->len; i++) n += tmpl_equal(self.as.list->items[i], x);
  return tv_int(n);
}

typedef struct {
  const char* name;
  tmpl_builtin_fn fn;
} method_entry;

static const method_entry string_methods[] = {
    {"strip", s_strip}, {"lstrip", s_lstrip}, {"rstrip", s_rstrip}, {"split", s_split}, {"rsplit", s_rsplit},
    {"splitlines", s_splitlines}, {"upper", s_upper}, {"lower", s_lower}, {"title", s_title},
    {"capitalize", s_capitalize}, {"swapcase", s_swapcase}, {"replace", s_replace}, {"startswith", s_startswith}, {"endswith", s_endswith},
    {"find", s_find}, {"rfind", s_rfind}, {"index", s_index}, {"count", s_count}, {"join", s_join},
    {"isdigit", s_isdigit}, {"isalpha", s_isalpha}, {"isalnum", s_isalnum}, {"isspace", s_isspace},
    {"isupper", s_isupper}, {"islower", s_islower}, {"center", s_center}, {"ljust", s_ljust}, {"rjust", s_rjust},
    {"removeprefix", s_removeprefix}, {"removesuffix", s_removesuffix}, {"format", s_format}, {NULL, NULL}};
static const method_entry dict_methods[] = {
    {"items", d_items}, {"keys", d_keys}, {"values", d_values}, {"get", d_get}, {"copy", d_copy}, {NULL, NULL}};
static const method_entry list_methods[] = {{"index", l_index}, {"count", l_count}, {NULL, NULL}};

static const char* const unsafe_dict[] = {"pop", "popitem", "setdefault", "update", "clear", NULL};
static const char* const unsafe_list[] = {"append", "extend", "insert", "pop", "remove", "reverse", "sort", "clear", NULL};

tmpl_builtin_fn tmpl_find_method(tmpl_value obj, const char* name, bool* unsafe) {
  const method_entry* table = NULL;
  const char* const* forbidden = NULL;
  *unsafe = false;
  if (obj.type == TV_STRING) table = string_methods;
  if (obj.type == TV_DICT && obj.as.dict->kind == DICT_PLAIN) {
    table = dict_methods;
    forbidden = unsafe_dict;
  }
  if (obj.type == TV_LIST) {
    table = list_methods;
    forbidden = obj.as.list->is_tuple ? NULL : unsafe_list;
  }
  if (!table) return NULL;
  for (size_t i = 0; table[i].name; i++)
    if (!strcmp(table[i].name, name)) return table[i].fn;
  for (size_t i = 0; forbidden && forbidden[i]; i++)
    if (!strcmp(forbidden[i], name)) *unsafe = true;
  return NULL;
}
