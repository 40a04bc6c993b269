/* Normalizers: Unicode forms, case, stripping, Replace/Prepend, BertNormalizer, ByteLevel and
 * Sequence, each a text-to-text function as in tokenizers (offsets are not tracked). */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "tokenizer/internal.h"
#include "util/unicode_case.h"
#include "util/error.h"

void tok_normalizer_free(tok_normalizer* n) {
  if (!n) return;
  tok_regex_free(n->pattern);
  free(n->content);
  tok_precompiled_free(n->precompiled);
  for (size_t i = 0; i < n->n_children; i++) tok_normalizer_free(n->children[i]);
  free(n->children);
  free(n);
}

/* Reads {"String": s} or {"Regex": r} into a compiled pattern. */
int tok_pattern_from_json(tok_regex** out, const tj_value* v) {
  const tj_value* s = tj_get(v, "String");
  if (s && s->type == TJ_STRING) return tok_regex_compile(out, s->u.s, s->len, true);
  const tj_value* r = tj_get(v, "Regex");
  if (r && r->type == TJ_STRING) return tok_regex_compile(out, r->u.s, r->len, false);
  return tok_error("pattern must be {\"String\": ...} or {\"Regex\": ...}");
}

int tok_normalizer_from_json(tok_normalizer** out, const tj_value* v) {
  *out = NULL;
  int status = 0;
  const char* type = tj_string(tj_get(v, "type"));
  tok_normalizer* n = calloc(1, sizeof *n);
  REQUIRE(n, "out of memory");
  REQUIRE(type, "normalizer without a \"type\"");
  if (!strcmp(type, "NFC")) n->type = TOK_NORM_NFC;
  else if (!strcmp(type, "NFD")) n->type = TOK_NORM_NFD;
  else if (!strcmp(type, "NFKC")) n->type = TOK_NORM_NFKC;
  else if (!strcmp(type, "NFKD")) n->type = TOK_NORM_NFKD;
  else if (!strcmp(type, "Lowercase")) n->type = TOK_NORM_LOWERCASE;
  else if (!strcmp(type, "StripAccents")) n->type = TOK_NORM_STRIP_ACCENTS;
  else if (!strcmp(type, "ByteLevel")) n->type = TOK_NORM_BYTE_LEVEL;
  else if (!strcmp(type, "Strip")) {
    n->type = TOK_NORM_STRIP;
    n->left = tj_bool(tj_get(v, "strip_left"), true);
    n->right = tj_bool(tj_get(v, "strip_right"), true);
  } else if (!strcmp(type, "Replace")) {
    n->type = TOK_NORM_REPLACE;
    const tj_value* content = tj_get(v, "content");
    REQUIRE(content && content->type == TJ_STRING, "Replace normalizer needs a string \"content\"");
    TRY(tok_pattern_from_json(&n->pattern, tj_get(v, "pattern")));
    n->content = tok_strndup(content->u.s, content->len);
    n->content_len = content->len;
    REQUIRE(n->content, "out of memory");
  } else if (!strcmp(type, "Prepend")) {
    n->type = TOK_NORM_PREPEND;
    const tj_value* prepend = tj_get(v, "prepend");
    REQUIRE(prepend && prepend->type == TJ_STRING, "Prepend normalizer needs a string \"prepend\"");
    n->content = tok_strndup(prepend->u.s, prepend->len);
    n->content_len = prepend->len;
    REQUIRE(n->content, "out of memory");
  } else if (!strcmp(type, "BertNormalizer")) {
    n->type = TOK_NORM_BERT;
    n->clean_text = tj_bool(tj_get(v, "clean_text"), true);
    n->handle_chinese = tj_bool(tj_get(v, "handle_chinese_chars"), true);
    n->lowercase = tj_bool(tj_get(v, "lowercase"), true);
    n->strip_accents = tj_bool(tj_get(v, "strip_accents"), n->lowercase);
  } else if (!strcmp(type, "Precompiled")) {
    n->type = TOK_NORM_PRECOMPILED;
    const tj_value* map = tj_get(v, "precompiled_charsmap");
    if (map && map->type == TJ_STRING && map->len > 0)
      TRY(tok_precompiled_from_base64(&n->precompiled, map->u.s, map->len));
  } else if (!strcmp(type, "Sequence")) {
    n->type = TOK_NORM_SEQUENCE;
    const tj_value* list = tj_get(v, "normalizers");
    REQUIRE(list && list->type == TJ_ARRAY, "Sequence normalizer needs a \"normalizers\" list");
    n->children = calloc(list->len + 1, sizeof *n->children);
    REQUIRE(n->children, "out of memory");
    for (uint32_t i = 0; i < list->len; i++) {
      TRY(tok_normalizer_from_json(&n->children[i], &list->u.items[i]));
      n->n_children++;
    }
  } else {
    REQUIRE(0, "unsupported normalizer type \"%s\"", type);
  }
  *out = n;
  n = NULL;
cleanup:
  tok_normalizer_free(n);
  return status;
}

static int unicode_form(const char* in, size_t len, int options, strbuf* out) {
  utf8proc_uint8_t* mapped = NULL;
  utf8proc_ssize_t k = utf8proc_map((const utf8proc_uint8_t*)in, (utf8proc_ssize_t)len, &mapped,
                                    (utf8proc_option_t)(UTF8PROC_STABLE | options));
  if (k < 0) return tok_error("normalization failed: %s", utf8proc_errmsg(k));
  strbuf_append(out, (const char*)mapped, (size_t)k);
  free(mapped);
  return 0;
}

static void append_cp(strbuf* out, int32_t cp) {
  char buf[4];
  strbuf_append(out, buf, tok_utf8_encode(cp, buf));
}

static void lowercase(const char* in, size_t len, strbuf* out) {
  for (size_t i = 0; i < len;) {
    int32_t cp;
    size_t k = tok_utf8_decode(in + i, &cp);
    if (cp < 0x80) {
      char c = (char)(cp >= 'A' && cp <= 'Z' ? cp + 32 : cp);
      strbuf_append(out, &c, 1);
    } else {
      /* Rust's char::to_lowercase: full mappings (İ -> "i̇"), no final-sigma context */
      uint32_t mapped[3];
      size_t n = ucase_rust_lower((uint32_t)cp, mapped);
      for (size_t j = 0; j < n; j++) append_cp(out, (int32_t)mapped[j]);
    }
    i += k;
  }
}

/* StripAccents drops every mark (M*); BertNormalizer only nonspacing ones (Mn). */
static void strip_accents(const char* in, size_t len, bool nonspacing_only, strbuf* out) {
  for (size_t i = 0; i < len;) {
    int32_t cp;
    size_t k = tok_utf8_decode(in + i, &cp);
    if (!(nonspacing_only ? tok_is_mark_nonspacing(cp) : tok_is_combining_mark(cp))) strbuf_append(out, in + i, k);
    i += k;
  }
}

static void strip(const char* in, size_t len, bool left, bool right, strbuf* out) {
  size_t start = 0, end = len;
  if (left) {
    while (start < end) {
      int32_t cp;
      size_t k = tok_utf8_decode(in + start, &cp);
      if (!tok_is_whitespace(cp)) break;
      start += k;
    }
  }
  if (right) {
    while (end > start) {
      size_t b = end - 1;
      while (b > start && ((unsigned char)in[b] & 0xC0) == 0x80) b--;
      int32_t cp;
      tok_utf8_decode(in + b, &cp);
      if (!tok_is_whitespace(cp)) break;
      end = b;
    }
  }
  strbuf_append(out, in + start, end - start);
}

int tok_regex_replace(const tok_regex* re, const char* in, size_t len, const char* content,
                      size_t content_len, strbuf* out) {
  size_t pos = 0, search = 0;
  while (search <= len) {
    size_t ms, me;
    int found = tok_regex_find(re, in, len, search, &ms, &me);
    if (found < 0) return 1;
    if (!found) break;
    strbuf_append(out, in + pos, ms - pos);
    strbuf_append(out, content, content_len);
    pos = me;
    if (me == ms) {
      if (me >= len) break;
      int32_t cp;
      size_t k = tok_utf8_decode(in + me, &cp);
      strbuf_append(out, in + me, k);
      pos = me + k;
    }
    search = pos;
  }
  strbuf_append(out, in + pos, len - pos);
  return 0;
}

static void bert_clean(const char* in, size_t len, bool clean, bool chinese, strbuf* out) {
  for (size_t i = 0; i < len;) {
    int32_t cp;
    size_t k = tok_utf8_decode(in + i, &cp);
    i += k;
    bool tab_or_newline = cp == '\t' || cp == '\n' || cp == '\r';
    bool white = tab_or_newline || tok_is_whitespace(cp);
    if (clean) {
      /* Control characters go first, whitespace or not (U+0085, U+000B), as in tokenizers. */
      if (cp == 0 || cp == 0xFFFD || (!tab_or_newline && tok_is_control(cp))) continue;
      if (white) {
        strbuf_append(out, " ", 1);
        continue;
      }
    }
    if (chinese && tok_is_chinese(cp)) {
      strbuf_append(out, " ", 1);
      append_cp(out, cp);
      strbuf_append(out, " ", 1);
      continue;
    }
    append_cp(out, cp);
  }
}

static int bert(const tok_normalizer* n, const char* in, size_t len, strbuf* out) {
  strbuf a = {0}, b = {0};
  bert_clean(in, len, n->clean_text, n->handle_chinese, &a);
  int status = 0;
  const char* cur = a.data ? a.data : "";
  size_t cur_len = a.length;
  if (n->strip_accents) {
    TRY(unicode_form(cur, cur_len, UTF8PROC_DECOMPOSE, &b));
    strbuf c = {0};
    strip_accents(b.data ? b.data : "", b.length, true, &c);
    strbuf_free(&b);
    b = c;
    cur = b.data ? b.data : "";
    cur_len = b.length;
  }
  if (n->lowercase) lowercase(cur, cur_len, out);
  else strbuf_append(out, cur, cur_len);
cleanup:
  strbuf_free(&a);
  strbuf_free(&b);
  return status;
}

static int normalize_one(const tok_normalizer* n, const char* in, size_t len, strbuf* out) {
  switch (n->type) {
    case TOK_NORM_NFC: return unicode_form(in, len, UTF8PROC_COMPOSE, out);
    case TOK_NORM_NFD: return unicode_form(in, len, UTF8PROC_DECOMPOSE, out);
    case TOK_NORM_NFKC: return unicode_form(in, len, UTF8PROC_COMPOSE | UTF8PROC_COMPAT, out);
    case TOK_NORM_NFKD: return unicode_form(in, len, UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT, out);
    case TOK_NORM_LOWERCASE: lowercase(in, len, out); return 0;
    case TOK_NORM_STRIP: strip(in, len, n->left, n->right, out); return 0;
    case TOK_NORM_STRIP_ACCENTS: strip_accents(in, len, false, out); return 0;
    case TOK_NORM_REPLACE: return tok_regex_replace(n->pattern, in, len, n->content, n->content_len, out);
    case TOK_NORM_PREPEND:
      if (len) strbuf_append(out, n->content, n->content_len);
      strbuf_append(out, in, len);
      return 0;
    case TOK_NORM_BERT: return bert(n, in, len, out);
    case TOK_NORM_PRECOMPILED:
      if (!n->precompiled) {
        strbuf_append(out, in, len);
        return 0;
      }
      return tok_precompiled_normalize(n->precompiled, in, len, out);
    case TOK_NORM_BYTE_LEVEL:
      tok_byte_level_init();
      for (size_t i = 0; i < len; i++) {
        uint8_t b = (uint8_t)in[i];
        strbuf_append(out, tok_byte_to_utf8[b], tok_byte_to_utf8_len[b]);
      }
      return 0;
    case TOK_NORM_SEQUENCE: {
      strbuf cur = {0}, next = {0};
      strbuf_append(&cur, in, len);
      int status = 0;
      for (size_t i = 0; i < n->n_children; i++) {
        next.length = 0;
        TRY(normalize_one(n->children[i], cur.data ? cur.data : "", cur.length, &next));
        REQUIRE(!next.failed, "out of memory (normalizer)");
        strbuf t = cur;
        cur = next;
        next = t;
      }
      strbuf_append(out, cur.data ? cur.data : "", cur.length);
    cleanup:
      strbuf_free(&cur);
      strbuf_free(&next);
      return status;
    }
  }
  return tok_error("unknown normalizer");
}

int tok_normalize(const tok_normalizer* n, const char* in, size_t len, strbuf* out) {
  out->length = 0;
  if (normalize_one(n, in, len, out)) return 1;
  if (out->failed) return tok_error("out of memory (normalizer)");
  if (!out->data) strbuf_append(out, "", 0);
  return 0;
}
