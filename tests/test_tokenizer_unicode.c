/* Unicode tables against the real thing (fixtures made on the GPU machine by
 * scripts/gen_tokenizer_extra_fixtures.py):
 *  - the UnicodeScripts pre-tokenizer, for every code point (which characters it keeps together,
 *    found with tokenizers 0.23.2 by pre-tokenizing pairs of characters) and on every test string;
 *  - the Lowercase normalizer (Rust's char::to_lowercase), for every code point and string;
 *  - Python's str.lower/upper/title/capitalize for every code point, and the template engine's str
 *    methods and Jinja2 filters (lower, upper, title, capitalize, swapcase) on every string. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlxc/chat.h"
#include "mlxc/error.h"
#include "test_util.h"
#include "tokenizer/internal.h"
#include "util/unicode_case.h"

#define FIX "/tests/fixtures/tokenizers/"

static json_t* load(const char* name) {
  char path[1024];
  snprintf(path, sizeof path, "%s" FIX "%s", test_source_dir(), name);
  json_error_t err;
  json_t* j = json_load_file(path, JSON_ALLOW_NUL, &err);
  if (!j) fprintf(stderr, "  cannot read %s: %s\n", path, err.text);
  return j;
}

static void* parse_stage(const char* json, bool pre_tokenizer) {
  tj_document doc = {0};
  void* out = NULL;
  if (tj_parse(&doc, json, strlen(json), "test") == 0) {
    if (pre_tokenizer) tok_pre_tokenizer_from_json((tok_pre_tokenizer**)&out, &doc.root);
    else tok_normalizer_from_json((tok_normalizer**)&out, &doc.root);
  }
  tj_free(&doc);
  return out;
}

/* Pre-tokenizes s; returns the number of pieces (out holds them), or -1. */
static long pre_tokenize(const tok_pre_tokenizer* p, const char* s, size_t n, tok_pieces* out) {
  tok_pieces in = {0};
  long count = -1;
  if (tok_pieces_push(&in, s, n, TOK_PIECE_AT_START) == 0 && tok_pre_tokenize(p, &in, out) == 0) count = (long)out->count;
  tok_pieces_free(&in);
  return count;
}

static size_t encode_cps(const uint32_t* cps, size_t n, char* out) {
  size_t k = 0;
  for (size_t i = 0; i < n; i++) k += tok_utf8_encode((int32_t)cps[i], out + k);
  return k;
}

TEST(test_unicode_scripts_every_code_point) {
  json_t* fix = load("unicode_scripts.json");
  tok_pre_tokenizer* p = parse_stage("{\"type\": \"UnicodeScripts\"}", true);
  CHECK(fix && p);
  if (!fix || !p) {
    json_decref(fix);
    tok_pre_tokenizer_free(p);
    return;
  }
  json_t* reps = json_object_get(fix, "representatives");
  json_t* runs = json_object_get(fix, "runs");
  tok_pieces out = {0};
  size_t bad = 0, checked = 0;
  for (size_t r = 0; r < json_array_size(runs); r++) {
    json_t* run = json_array_get(runs, r);
    uint32_t first = (uint32_t)json_integer_value(json_array_get(run, 0));
    uint32_t last = (uint32_t)json_integer_value(json_array_get(run, 1));
    const char* cls = json_string_value(json_array_get(run, 2));
    bool any = !strcmp(cls, "Any");
    uint32_t rep = any ? 0 : (uint32_t)json_integer_value(json_object_get(reps, cls));
    for (uint32_t cp = first; cp <= last; cp++, checked++) {
      char s[16];
      uint32_t probe[3];
      bool ok;
      /* "Any" joins both neighbours; a real script joins only its own kind */
      probe[0] = 'a', probe[1] = cp, probe[2] = 'a';
      long latin = pre_tokenize(p, s, encode_cps(probe, 3, s), &out);
      probe[0] = '0', probe[1] = cp, probe[2] = '0';
      long common = pre_tokenize(p, s, encode_cps(probe, 3, s), &out);
      if (any) {
        ok = latin == 1 && common == 1;
      } else {
        probe[0] = rep, probe[1] = cp;
        ok = pre_tokenize(p, s, encode_cps(probe, 2, s), &out) == 1 && (latin > 1 || common > 1);
      }
      if (!ok && bad++ < 10) fprintf(stderr, "    U+%04X should be %s\n", cp, cls);
    }
  }
  printf("  UnicodeScripts: %zu code points checked, %zu differ\n", checked, bad);
  CHECK(checked > 1000000);
  CHECK_EQ_INT(bad, 0);
  /* and the splits of whole strings */
  json_t* strings = json_object_get(fix, "strings");
  json_t* splits = json_object_get(fix, "splits");
  size_t bad_strings = 0;
  for (size_t i = 0; i < json_array_size(strings); i++) {
    json_t* js = json_array_get(strings, i);
    json_t* want = json_array_get(splits, i);
    long n = pre_tokenize(p, json_string_value(js), json_string_length(js), &out);
    bool ok = n == (long)json_array_size(want);
    for (long k = 0; ok && k < n; k++) {
      json_t* w = json_array_get(want, (size_t)k);
      ok = out.length[k] == json_string_length(w) && !memcmp(tok_piece(&out, (size_t)k), json_string_value(w), out.length[k]);
    }
    if (!ok && bad_strings++ < 5) fprintf(stderr, "    splits of \"%s\" differ\n", json_string_value(js));
  }
  printf("  UnicodeScripts: %zu strings, %zu differ\n", json_array_size(strings), bad_strings);
  CHECK_EQ_INT(bad_strings, 0);
  tok_pieces_free(&out);
  tok_pre_tokenizer_free(p);
  json_decref(fix);
}

/* Looks up cp in a [[cp, "mapping"], ...] list sorted by cp; NULL when absent (identity). */
static json_t* mapping_of(json_t* list, uint32_t cp, size_t* cursor) {
  while (*cursor < json_array_size(list) &&
         (uint32_t)json_integer_value(json_array_get(json_array_get(list, *cursor), 0)) < cp)
    (*cursor)++;
  json_t* e = json_array_get(list, *cursor);
  return e && (uint32_t)json_integer_value(json_array_get(e, 0)) == cp ? json_array_get(e, 1) : NULL;
}

static bool same_text(const char* got, size_t got_len, json_t* want, const char* fallback, size_t fallback_len) {
  const char* w = want ? json_string_value(want) : fallback;
  size_t wl = want ? json_string_length(want) : fallback_len;
  return got_len == wl && !memcmp(got, w, wl);
}

TEST(test_case_mappings_every_code_point) {
  json_t* fix = load("casing.json");
  tok_normalizer* lower = parse_stage("{\"type\": \"Lowercase\"}", false);
  CHECK(fix && lower);
  if (!fix || !lower) {
    json_decref(fix);
    tok_normalizer_free(lower);
    return;
  }
  json_t* per_cp = json_object_get(fix, "per_code_point");
  const char* keys[] = {"rust_lowercase", "py_lower", "py_upper", "py_title", "py_capitalize"};
  const ucase_kind kinds[] = {UCASE_LOWER, UCASE_LOWER, UCASE_UPPER, UCASE_TITLE, UCASE_TITLE};
  size_t cursor[5] = {0}, bad[5] = {0};
  strbuf normalized = {0};
  for (uint32_t cp = 0; cp < 0x110000; cp++) {
    if (cp >= 0xD800 && cp <= 0xDFFF) continue;
    char self[4], got[16];
    size_t self_len = tok_utf8_encode((int32_t)cp, self);
    for (int k = 0; k < 5; k++) {
      json_t* want = mapping_of(json_object_get(per_cp, keys[k]), cp, &cursor[k]);
      const char* g = got;
      size_t got_len;
      if (k == 0) {
        tok_normalize(lower, self, self_len, &normalized);
        g = normalized.data;
        got_len = normalized.length;
      } else {
        uint32_t mapped[3];
        got_len = encode_cps(mapped, ucase_full(cp, kinds[k], mapped), got);
      }
      if (!same_text(g, got_len, want, self, self_len) && bad[k]++ < 5)
        fprintf(stderr, "    %s of U+%04X differs\n", keys[k], cp);
    }
  }
  for (int k = 0; k < 5; k++) {
    printf("  %-15s %zu mappings in the reference, %zu code points differ\n", keys[k],
           json_array_size(json_object_get(per_cp, keys[k])), bad[k]);
    CHECK_EQ_INT(bad[k], 0);
  }
  strbuf_free(&normalized);
  tok_normalizer_free(lower);
  json_decref(fix);
}

/* Strings in context: final sigma, word starts, Jinja2's title filter. */
TEST(test_case_mappings_of_strings) {
  json_t* fix = load("casing.json");
  tok_normalizer* lower = parse_stage("{\"type\": \"Lowercase\"}", false);
  static const char* const fields[] = {"py_lower", "py_upper", "py_title", "py_capitalize", "py_swapcase",
                                       "jinja_lower", "jinja_upper", "jinja_title", "jinja_capitalize"};
  mlxc_template* tmpl = NULL;
  CHECK_EQ_INT(mlxc_template_compile(&tmpl,
                                     "{{ s.lower() }}\x1f{{ s.upper() }}\x1f{{ s.title() }}\x1f{{ s.capitalize() }}\x1f"
                                     "{{ s.swapcase() }}\x1f{{ s|lower }}\x1f{{ s|upper }}\x1f{{ s|title }}\x1f"
                                     "{{ s|capitalize }}",
                                     NULL),
               0);
  CHECK(fix && lower && tmpl);
  json_t* list = json_object_get(fix, "per_string");
  size_t bad = 0;
  strbuf normalized = {0};
  for (size_t i = 0; fix && lower && tmpl && i < json_array_size(list); i++) {
    json_t* e = json_array_get(list, i);
    json_t* s = json_object_get(e, "s");
    if (memchr(json_string_value(s), 0, json_string_length(s)) || strchr(json_string_value(s), '\x1f')) continue;
    tok_normalize(lower, json_string_value(s), json_string_length(s), &normalized);
    if (!same_text(normalized.data ? normalized.data : "", normalized.length, json_object_get(e, "rust_lowercase"), "", 0) &&
        bad++ < 5)
      fprintf(stderr, "    Lowercase of \"%s\" differs\n", json_string_value(s));
    mlxc_template_vars* vars;
    char* out = NULL;
    mlxc_template_vars_new(&vars);
    mlxc_template_vars_set_string(vars, "s", json_string_value(s));
    if (mlxc_template_render_vars(&out, tmpl, vars, NULL)) {
      if (bad++ < 5) fprintf(stderr, "    render failed for \"%s\": %s\n", json_string_value(s), mlxc_last_error());
    } else {
      char* part = out;
      for (size_t f = 0; f < sizeof fields / sizeof *fields; f++) {
        char* end = strchr(part, '\x1f');
        size_t len = end ? (size_t)(end - part) : strlen(part);
        if (!same_text(part, len, json_object_get(e, fields[f]), "", 0) && bad++ < 5)
          fprintf(stderr, "    %s of \"%s\": got \"%.*s\", expected \"%s\"\n", fields[f], json_string_value(s), (int)len,
                  part, json_string_value(json_object_get(e, fields[f])));
        part = end ? end + 1 : part + len;
      }
    }
    free(out);
    mlxc_template_vars_free(vars);
  }
  printf("  %zu strings, %zu mismatches\n", json_array_size(list), bad);
  CHECK_EQ_INT(bad, 0);
  strbuf_free(&normalized);
  mlxc_template_free(tmpl);
  tok_normalizer_free(lower);
  json_decref(fix);
}

int main(void) {
  RUN(test_unicode_scripts_every_code_point);
  RUN(test_case_mappings_every_code_point);
  RUN(test_case_mappings_of_strings);
  return TEST_SUMMARY();
}
