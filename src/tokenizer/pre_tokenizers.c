/* Pre-tokenizers: split normalized text into the words the model sees, with tokenizers' five
 * split behaviours (removed, isolated, merged with previous/next, contiguous) and inversion. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/internal.h"
#include "util/error.h"

static const char gpt2_pattern[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
/* tok_regex_compile widens \w to the Unicode word class of Rust's regex (marks included). */
static const char whitespace_pattern[] = "\\w+|[^\\w\\s]+";

int tok_byte_level_regex(tok_regex** out) {
  return tok_regex_compile(out, gpt2_pattern, sizeof gpt2_pattern - 1, false);
}

void tok_pre_tokenizer_free(tok_pre_tokenizer* p) {
  if (!p) return;
  tok_regex_free(p->regex);
  for (size_t i = 0; i < p->n_children; i++) tok_pre_tokenizer_free(p->children[i]);
  free(p->children);
  free(p);
}

static int parse_behavior(const tj_value* v, tok_split_behavior fallback, tok_split_behavior* out) {
  const char* s = tj_string(v);
  *out = fallback;
  if (!s) return 0;
  if (!strcmp(s, "Removed")) *out = TOK_SPLIT_REMOVED;
  else if (!strcmp(s, "Isolated")) *out = TOK_SPLIT_ISOLATED;
  else if (!strcmp(s, "MergedWithPrevious")) *out = TOK_SPLIT_MERGED_WITH_PREVIOUS;
  else if (!strcmp(s, "MergedWithNext")) *out = TOK_SPLIT_MERGED_WITH_NEXT;
  else if (!strcmp(s, "Contiguous")) *out = TOK_SPLIT_CONTIGUOUS;
  else return tok_error("unknown split behavior \"%s\"", s);
  return 0;
}

static int parse_prepend_scheme(const tj_value* v, int* out) {
  const tj_value* scheme = tj_get(v, "prepend_scheme");
  const char* s = tj_string(scheme);
  if (s) {
    if (!strcmp(s, "always")) *out = TOK_PREPEND_ALWAYS;
    else if (!strcmp(s, "first")) *out = TOK_PREPEND_FIRST;
    else if (!strcmp(s, "never")) *out = TOK_PREPEND_NEVER;
    else return tok_error("unknown prepend_scheme \"%s\"", s);
    return 0;
  }
  *out = tj_bool(tj_get(v, "add_prefix_space"), true) ? TOK_PREPEND_ALWAYS : TOK_PREPEND_NEVER;
  return 0;
}

int tok_pre_tokenizer_from_json(tok_pre_tokenizer** out, const tj_value* v) {
  *out = NULL;
  int status = 0;
  const char* type = tj_string(tj_get(v, "type"));
  tok_pre_tokenizer* p = calloc(1, sizeof *p);
  REQUIRE(p, "out of memory");
  REQUIRE(type, "pre_tokenizer without a \"type\"");
  if (!strcmp(type, "ByteLevel")) {
    p->type = TOK_PRE_BYTE_LEVEL;
    p->add_prefix_space = tj_bool(tj_get(v, "add_prefix_space"), true);
    p->use_regex = tj_bool(tj_get(v, "use_regex"), true);
    if (p->use_regex) TRY(tok_byte_level_regex(&p->regex));
  } else if (!strcmp(type, "Split")) {
    p->type = TOK_PRE_SPLIT;
    TRY(tok_pattern_from_json(&p->regex, tj_get(v, "pattern")));
    TRY(parse_behavior(tj_get(v, "behavior"), TOK_SPLIT_REMOVED, &p->behavior));
    p->invert = tj_bool(tj_get(v, "invert"), false);
  } else if (!strcmp(type, "Whitespace")) {
    p->type = TOK_PRE_WHITESPACE;
    TRY(tok_regex_compile(&p->regex, whitespace_pattern, sizeof whitespace_pattern - 1, false));
  } else if (!strcmp(type, "WhitespaceSplit")) {
    p->type = TOK_PRE_WHITESPACE_SPLIT;
  } else if (!strcmp(type, "BertPreTokenizer")) {
    p->type = TOK_PRE_BERT;
  } else if (!strcmp(type, "Metaspace")) {
    p->type = TOK_PRE_METASPACE;
    const char* rep = tj_string(tj_get(v, "replacement"));
    if (!rep) rep = "\xE2\x96\x81";
    size_t n = strlen(rep);
    REQUIRE(n > 0 && n <= 4 && tok_utf8_valid(rep, n) && tok_utf8_decode(rep, &p->replacement_cp) == n,
            "Metaspace replacement must be one character");
    memcpy(p->replacement, rep, n);
    p->replacement_len = n;
    TRY(parse_prepend_scheme(v, &p->prepend_scheme));
    p->split = tj_bool(tj_get(v, "split"), true);
  } else if (!strcmp(type, "Digits")) {
    p->type = TOK_PRE_DIGITS;
    p->individual_digits = tj_bool(tj_get(v, "individual_digits"), false);
  } else if (!strcmp(type, "Punctuation")) {
    p->type = TOK_PRE_PUNCTUATION;
    TRY(parse_behavior(tj_get(v, "behavior"), TOK_SPLIT_ISOLATED, &p->behavior));
  } else if (!strcmp(type, "UnicodeScripts")) {
    p->type = TOK_PRE_UNICODE_SCRIPTS;
  } else if (!strcmp(type, "Sequence")) {
    p->type = TOK_PRE_SEQUENCE;
    const tj_value* list = tj_get(v, "pretokenizers");
    REQUIRE(list && list->type == TJ_ARRAY, "Sequence pre_tokenizer needs a \"pretokenizers\" list");
    p->children = calloc(list->len + 1, sizeof *p->children);
    REQUIRE(p->children, "out of memory");
    for (uint32_t i = 0; i < list->len; i++) {
      TRY(tok_pre_tokenizer_from_json(&p->children[i], &list->u.items[i]));
      p->n_children++;
    }
  } else {
    REQUIRE(0, "unsupported pre_tokenizer type \"%s\"", type);
  }
  *out = p;
  p = NULL;
cleanup:
  tok_pre_tokenizer_free(p);
  return status;
}

/* ---- Matching: a piece becomes a list of spans, each a match of the pattern or not. */

typedef struct {
  size_t start, end;
  bool match;
} span;

typedef struct {
  span* data;
  size_t size, cap;
} spans;

static int spans_push(spans* s, size_t start, size_t end, bool match) {
  if (s->size == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 64;
    span* data = realloc(s->data, cap * sizeof *data);
    if (!data) return tok_error("out of memory (pre-tokenizer)");
    s->data = data;
    s->cap = cap;
  }
  s->data[s->size++] = (span){start, end, match};
  return 0;
}

static int regex_spans(const tok_regex* re, const char* s, size_t n, spans* out) {
  if (n == 0) return spans_push(out, 0, 0, false);
  size_t prev = 0, search = 0;
  while (search <= n) {
    size_t ms, me;
    int found = tok_regex_find(re, s, n, search, &ms, &me);
    if (found < 0) return 1;
    if (!found) break;
    if (prev != ms && spans_push(out, prev, ms, false)) return 1;
    if (spans_push(out, ms, me, true)) return 1;
    prev = me;
    if (me == ms) {
      if (me >= n) break;
      int32_t cp;
      search = me + tok_utf8_decode(s + me, &cp);
    } else {
      search = me;
    }
  }
  if (prev != n) return spans_push(out, prev, n, false);
  return 0;
}

typedef enum { PRED_WHITESPACE, PRED_PUNCTUATION, PRED_NUMERIC, PRED_CHAR } predicate;

static bool test_char(predicate pred, int32_t wanted, int32_t cp) {
  switch (pred) {
    case PRED_WHITESPACE: return tok_is_whitespace(cp);
    case PRED_PUNCTUATION: return tok_is_punctuation(cp);
    case PRED_NUMERIC: return tok_is_numeric(cp);
    case PRED_CHAR: return cp == wanted;
  }
  return false;
}

static int char_spans(predicate pred, int32_t wanted, const char* s, size_t n, spans* out) {
  if (n == 0) return spans_push(out, 0, 0, false);
  size_t last = 0, i = 0;
  while (i < n) {
    int32_t cp;
    size_t k = tok_utf8_decode(s + i, &cp);
    if (test_char(pred, wanted, cp)) {
      if (last < i && spans_push(out, last, i, false)) return 1;
      if (spans_push(out, i, i + k, true)) return 1;
      last = i + k;
    }
    i += k;
  }
  if (last < n) return spans_push(out, last, n, false);
  return 0;
}

/* Applies a behaviour to the spans (in place) and appends the resulting pieces. */
static int emit(spans* sp, tok_split_behavior behavior, bool invert, const char* s, uint8_t flags,
                tok_pieces* out) {
  span* m = sp->data;
  size_t n = sp->size, k = 0;
  if (invert)
    for (size_t i = 0; i < n; i++) m[i].match = !m[i].match;
  /* Reduce to pieces; a removed piece keeps match = true, kept pieces get match = false. */
  switch (behavior) {
    case TOK_SPLIT_REMOVED: k = n; break;
    case TOK_SPLIT_ISOLATED:
      for (size_t i = 0; i < n; i++) m[i].match = false;
      k = n;
      break;
    case TOK_SPLIT_CONTIGUOUS: {
      bool previous = false;
      for (size_t i = 0; i < n; i++) {
        bool is_match = m[i].match;
        if (is_match == previous && k > 0) m[k - 1].end = m[i].end;
        else m[k++] = (span){m[i].start, m[i].end, false};
        previous = is_match;
      }
      break;
    }
    case TOK_SPLIT_MERGED_WITH_PREVIOUS: {
      bool previous = false;
      for (size_t i = 0; i < n; i++) {
        bool is_match = m[i].match;
        if (is_match && !previous && k > 0) m[k - 1].end = m[i].end;
        else m[k++] = (span){m[i].start, m[i].end, false};
        previous = is_match;
      }
      break;
    }
    case TOK_SPLIT_MERGED_WITH_NEXT: {
      /* Walk backwards, merging a match into the piece that follows it. */
      bool previous = false;
      size_t w = n;
      for (size_t i = n; i-- > 0;) {
        bool is_match = m[i].match;
        if (is_match && !previous && w < n) m[w].start = m[i].start;
        else m[--w] = (span){m[i].start, m[i].end, false};
        previous = is_match;
      }
      memmove(m, m + w, (n - w) * sizeof *m);
      k = n - w;
      break;
    }
  }
  for (size_t i = 0; i < k; i++) {
    if (m[i].match || m[i].end == m[i].start) continue;
    uint8_t f = (flags & TOK_PIECE_AT_START) && m[i].start == 0 ? TOK_PIECE_AT_START : 0;
    if (tok_pieces_push(out, s + m[i].start, m[i].end - m[i].start, f)) return 1;
  }
  return 0;
}

static int split_regex(const tok_regex* re, tok_split_behavior b, bool invert, const char* s, size_t n,
                       uint8_t flags, spans* sp, tok_pieces* out) {
  sp->size = 0;
  if (regex_spans(re, s, n, sp)) return 1;
  return emit(sp, b, invert, s, flags, out);
}

static int split_chars(predicate pred, int32_t wanted, tok_split_behavior b, const char* s, size_t n,
                       uint8_t flags, spans* sp, tok_pieces* out) {
  sp->size = 0;
  if (char_spans(pred, wanted, s, n, sp)) return 1;
  return emit(sp, b, false, s, flags, out);
}

static int byte_level(const tok_pre_tokenizer* p, const char* s, size_t n, uint8_t flags, spans* sp,
                      tok_pieces* out, strbuf* scratch) {
  if (p->add_prefix_space && (n == 0 || s[0] != ' ')) {
    scratch->length = 0;
    strbuf_append(scratch, " ", 1);
    strbuf_append(scratch, s, n);
    if (scratch->failed) return tok_error("out of memory (pre-tokenizer)");
    s = scratch->data;
    n = scratch->length;
  }
  sp->size = 0;
  if (p->use_regex) {
    if (regex_spans(p->regex, s, n, sp)) return 1;
  } else if (spans_push(sp, 0, n, false)) {
    return 1;
  }
  tok_byte_level_init();
  for (size_t i = 0; i < sp->size; i++) {
    if (sp->data[i].end == sp->data[i].start) continue;
    uint8_t f = (flags & TOK_PIECE_AT_START) && sp->data[i].start == 0 ? TOK_PIECE_AT_START : 0;
    if (tok_pieces_begin(out, f)) return 1;
    for (size_t j = sp->data[i].start; j < sp->data[i].end; j++) {
      uint8_t b = (uint8_t)s[j];
      if (tok_pieces_extend(out, tok_byte_to_utf8[b], tok_byte_to_utf8_len[b])) return 1;
    }
  }
  return 0;
}

static int metaspace(const tok_pre_tokenizer* p, const char* s, size_t n, uint8_t flags, spans* sp,
                     tok_pieces* out, strbuf* scratch) {
  scratch->length = 0;
  bool starts = n >= p->replacement_len && !memcmp(s, p->replacement, p->replacement_len);
  bool prepend = false;
  if (n > 0 && s[0] == ' ') starts = true; /* the space becomes the replacement below */
  if (p->prepend_scheme == TOK_PREPEND_ALWAYS) prepend = !starts;
  else if (p->prepend_scheme == TOK_PREPEND_FIRST) prepend = !starts && (flags & TOK_PIECE_AT_START);
  if (prepend) strbuf_append(scratch, p->replacement, p->replacement_len);
  for (size_t i = 0; i < n; i++) {
    if (s[i] == ' ') strbuf_append(scratch, p->replacement, p->replacement_len);
    else strbuf_append(scratch, s + i, 1);
  }
  if (scratch->failed) return tok_error("out of memory (pre-tokenizer)");
  const char* t = scratch->data ? scratch->data : "";
  if (!p->split) return scratch->length ? tok_pieces_push(out, t, scratch->length, flags) : 0;
  return split_chars(PRED_CHAR, p->replacement_cp, TOK_SPLIT_MERGED_WITH_NEXT, t, scratch->length, flags, sp, out);
}

int tok_unicode_script(int32_t cp) {
  size_t lo = 0, hi = tok_script_range_count;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (tok_script_ranges[mid][1] < (uint32_t)cp) lo = mid + 1;
    else hi = mid;
  }
  return lo < tok_script_range_count && tok_script_ranges[lo][0] <= (uint32_t)cp ? (int)tok_script_ranges[lo][2] : 0;
}

/* tokenizers' fixed_script: kana count as Han (with U+30FC, the prolonged sound mark), a space is
 * "Any" (it joins whatever surrounds it). */
static int fixed_script(int32_t cp) {
  if (cp == 0x30FC) return tok_script_han;
  if (cp == ' ') return 0;
  int script = tok_unicode_script(cp);
  return script == tok_script_hiragana || script == tok_script_katakana ? tok_script_han : script;
}

/* Splits where the script changes, "Any" joining its neighbours. As in tokenizers, a piece begins
 * at each change, so text before the first character of a real script (leading spaces) is dropped. */
static int unicode_scripts(const char* s, size_t n, uint8_t flags, spans* sp, tok_pieces* out) {
  sp->size = 0;
  int last = -1; /* none yet */
  size_t previous_cut = 0;
  bool have_cut = false;
  for (size_t i = 0; i < n;) {
    int32_t cp;
    size_t k = tok_utf8_decode(s + i, &cp);
    int script = fixed_script(cp);
    if (script != 0 && last != 0 && last != script) {
      if (have_cut && spans_push(sp, previous_cut, i, false)) return 1;
      previous_cut = i;
      have_cut = true;
    }
    if (script != 0) last = script;
    i += k;
  }
  if (have_cut && spans_push(sp, previous_cut, n, false)) return 1;
  return emit(sp, TOK_SPLIT_ISOLATED, false, s, flags, out);
}

static int pre_tokenize_piece(const tok_pre_tokenizer* p, const char* s, size_t n, uint8_t flags,
                              spans* sp, tok_pieces* out, strbuf* scratch, tok_pieces* tmp) {
  switch (p->type) {
    case TOK_PRE_BYTE_LEVEL: return byte_level(p, s, n, flags, sp, out, scratch);
    case TOK_PRE_SPLIT: return split_regex(p->regex, p->behavior, p->invert, s, n, flags, sp, out);
    case TOK_PRE_WHITESPACE: return split_regex(p->regex, TOK_SPLIT_REMOVED, true, s, n, flags, sp, out);
    case TOK_PRE_WHITESPACE_SPLIT: return split_chars(PRED_WHITESPACE, 0, TOK_SPLIT_REMOVED, s, n, flags, sp, out);
    case TOK_PRE_BERT: {
      tok_pieces_reset(tmp);
      if (split_chars(PRED_WHITESPACE, 0, TOK_SPLIT_REMOVED, s, n, flags, sp, tmp)) return 1;
      for (size_t i = 0; i < tmp->count; i++)
        if (split_chars(PRED_PUNCTUATION, 0, TOK_SPLIT_ISOLATED, tok_piece(tmp, i), tmp->length[i],
                        tmp->flags[i], sp, out))
          return 1;
      return 0;
    }
    case TOK_PRE_METASPACE: return metaspace(p, s, n, flags, sp, out, scratch);
    case TOK_PRE_DIGITS:
      return split_chars(PRED_NUMERIC, 0, p->individual_digits ? TOK_SPLIT_ISOLATED : TOK_SPLIT_CONTIGUOUS,
                         s, n, flags, sp, out);
    case TOK_PRE_PUNCTUATION: return split_chars(PRED_PUNCTUATION, 0, p->behavior, s, n, flags, sp, out);
    case TOK_PRE_UNICODE_SCRIPTS: return unicode_scripts(s, n, flags, sp, out);
    case TOK_PRE_SEQUENCE: break;
  }
  return tok_error("pre-tokenizer cannot split a single piece");
}

int tok_pre_tokenize(const tok_pre_tokenizer* p, const tok_pieces* in, tok_pieces* out) {
  int status = 0;
  spans sp = {0};
  strbuf scratch = {0};
  tok_pieces tmp = {0}, a = {0};
  tok_pieces_reset(out);
  if (p->type == TOK_PRE_SEQUENCE) {
    const tok_pieces* cur = in;
    for (size_t c = 0; c < p->n_children; c++) {
      tok_pieces* dst = (c % 2 == 0) ? out : &a;
      TRY(tok_pre_tokenize(p->children[c], cur, dst));
      cur = dst;
    }
    if (cur == &a) {
      tok_pieces t = *out;
      *out = a;
      a = t;
    } else if (cur == in) {
      for (size_t i = 0; i < in->count; i++)
        TRY(tok_pieces_push(out, tok_piece(in, i), in->length[i], in->flags[i]));
    }
  } else {
    for (size_t i = 0; i < in->count; i++)
      TRY(pre_tokenize_piece(p, tok_piece(in, i), in->length[i], in->flags[i], &sp, out, &scratch, &tmp));
  }
cleanup:
  free(sp.data);
  strbuf_free(&scratch);
  tok_pieces_free(&tmp);
  tok_pieces_free(&a);
  return status;
}
