/* Python's str case methods and Jinja2's title filter with full Unicode case mappings: ß.upper()
 * is "SS", "İ".lower() is "i̇", and a capital sigma ending a word lowers to ς (final sigma). */
#include "template/strings.h"
#include "util/unicode_case.h"

static void put_cps(tmpl_buf* buf, const uint32_t* cps, size_t n) {
  for (size_t i = 0; i < n; i++) {
    char utf8[4];
    tmpl_buf_append(buf, utf8, tmpl_utf8_encode(cps[i], utf8));
  }
}

/* The code points of s[from, to) in the arena; *n receives the count. */
static uint32_t* decode(tmpl_interp* in, const char* s, size_t len, size_t* n) {
  uint32_t* cps = tmpl_alloc(in->arena, (len + 1) * sizeof *cps);
  size_t pos = 0, k = 0;
  while (pos < len) cps[k++] = tmpl_utf8_next(s, len, &pos);
  *n = k;
  return cps;
}

/* Lowercases cps[i] the way Python's lower_ucs4 does, seeing the whole of cps[0..n) as context. */
static void put_lower(tmpl_buf* buf, const uint32_t* cps, size_t n, size_t i) {
  uint32_t mapped[3];
  if (cps[i] == 0x3A3) {
    mapped[0] = ucase_lower_sigma(cps, n, i);
    put_cps(buf, mapped, 1);
    return;
  }
  put_cps(buf, mapped, ucase_full(cps[i], UCASE_LOWER, mapped));
}

static void put_full(tmpl_buf* buf, uint32_t cp, ucase_kind kind) {
  uint32_t mapped[3];
  put_cps(buf, mapped, ucase_full(cp, kind, mapped));
}

tmpl_value tmpl_str_case(tmpl_interp* in, const tmpl_string* s, tmpl_case mode) {
  size_t n;
  uint32_t* cps = decode(in, s->data, s->len, &n);
  tmpl_buf buf;
  tmpl_buf_init(&buf, in->arena, 0);
  bool previous_cased = false;
  for (size_t i = 0; i < n; i++) {
    uint32_t cp = cps[i];
    switch (mode) {
      case CASE_UPPER: put_full(&buf, cp, UCASE_UPPER); break;
      case CASE_LOWER: put_lower(&buf, cps, n, i); break;
      case CASE_TITLE:
        if (previous_cased) put_lower(&buf, cps, n, i);
        else put_full(&buf, cp, UCASE_TITLE);
        previous_cased = ucase_is_cased(cp);
        break;
      case CASE_CAPITALIZE:
        if (i == 0) put_full(&buf, cp, UCASE_TITLE);
        else put_lower(&buf, cps, n, i);
        break;
      case CASE_SWAPCASE:
        if (ucase_is_uppercase(cp)) put_lower(&buf, cps, n, i);
        else if (ucase_is_lowercase(cp)) put_full(&buf, cp, UCASE_UPPER);
        else put_cps(&buf, &cp, 1);
        break;
    }
  }
  return tv_string(in->arena, buf.data ? buf.data : "", buf.len);
}

static bool title_separator(uint32_t cp) {
  return cp == '-' || cp == '(' || cp == '{' || cp == '[' || cp == '<' || tmpl_py_isspace(cp);
}

tmpl_value tmpl_jinja_title(tmpl_interp* in, const tmpl_string* s) {
  size_t n;
  uint32_t* cps = decode(in, s->data, s->len, &n);
  tmpl_buf buf;
  tmpl_buf_init(&buf, in->arena, 0);
  size_t i = 0;
  while (i < n) {
    size_t end = i;
    bool sep = title_separator(cps[i]);
    while (end < n && title_separator(cps[end]) == sep) end++;
    if (sep) {
      put_cps(&buf, cps + i, end - i);
    } else {
      put_full(&buf, cps[i], UCASE_UPPER);
      /* word[1:].lower(): the final-sigma context is the rest of the word alone */
      for (size_t k = i + 1; k < end; k++) put_lower(&buf, cps + i + 1, end - i - 1, k - i - 1);
    }
    i = end;
  }
  return tv_string(in->arena, buf.data ? buf.data : "", buf.len);
}
