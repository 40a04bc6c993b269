/* Decoders: turn the list of token strings back into text (ByteLevel, Metaspace, WordPiece,
 * ByteFallback, Fuse, Strip, Replace, CTC, BPE, Sequence), each a list-to-list step. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/internal.h"
#include "util/error.h"

void tok_decoder_free(tok_decoder* d) {
  if (!d) return;
  free(d->prefix);
  free(d->word_delimiter);
  tok_regex_free(d->pattern);
  free(d->content);
  for (size_t i = 0; i < d->n_children; i++) tok_decoder_free(d->children[i]);
  free(d->children);
  free(d);
}

static int one_char(const tj_value* v, const char* fallback, int32_t* cp) {
  const char* s = tj_string(v);
  if (!s) s = fallback;
  size_t n = strlen(s);
  if (n == 0 || n > 4 || !tok_utf8_valid(s, n) || tok_utf8_decode(s, cp) != n)
    return tok_error("decoder expects a single character, got \"%s\"", s);
  return 0;
}

static int dup_string(char** out, const tj_value* v, const char* fallback) {
  const char* s = tj_string(v);
  *out = s ? tok_strndup(s, v->len) : tok_strndup(fallback, strlen(fallback));
  return *out ? 0 : tok_error("out of memory");
}

int tok_decoder_from_json(tok_decoder** out, const tj_value* v) {
  *out = NULL;
  int status = 0;
  const char* type = tj_string(tj_get(v, "type"));
  tok_decoder* d = calloc(1, sizeof *d);
  REQUIRE(d, "out of memory");
  REQUIRE(type, "decoder without a \"type\"");
  if (!strcmp(type, "ByteLevel")) {
    d->type = TOK_DEC_BYTE_LEVEL;
  } else if (!strcmp(type, "Metaspace")) {
    d->type = TOK_DEC_METASPACE;
    TRY(one_char(tj_get(v, "replacement"), "\xE2\x96\x81", &d->replacement_cp));
    const char* scheme = tj_string(tj_get(v, "prepend_scheme"));
    if (scheme) d->prepend_scheme = !strcmp(scheme, "never") ? TOK_PREPEND_NEVER : !strcmp(scheme, "first") ? TOK_PREPEND_FIRST : TOK_PREPEND_ALWAYS;
    else d->prepend_scheme = tj_bool(tj_get(v, "add_prefix_space"), true) ? TOK_PREPEND_ALWAYS : TOK_PREPEND_NEVER;
  } else if (!strcmp(type, "WordPiece")) {
    d->type = TOK_DEC_WORDPIECE;
    TRY(dup_string(&d->prefix, tj_get(v, "prefix"), "##"));
    d->cleanup = tj_bool(tj_get(v, "cleanup"), true);
  } else if (!strcmp(type, "ByteFallback")) {
    d->type = TOK_DEC_BYTE_FALLBACK;
  } else if (!strcmp(type, "Fuse")) {
    d->type = TOK_DEC_FUSE;
  } else if (!strcmp(type, "Strip")) {
    d->type = TOK_DEC_STRIP;
    TRY(one_char(tj_get(v, "content"), " ", &d->strip_cp));
    const tj_value* start = tj_get(v, "start");
    const tj_value* stop = tj_get(v, "stop");
    d->strip_start = start && start->type == TJ_INT && start->u.i > 0 ? (size_t)start->u.i : 0;
    d->strip_stop = stop && stop->type == TJ_INT && stop->u.i > 0 ? (size_t)stop->u.i : 0;
  } else if (!strcmp(type, "Replace")) {
    d->type = TOK_DEC_REPLACE;
    TRY(tok_pattern_from_json(&d->pattern, tj_get(v, "pattern")));
    REQUIRE(tj_string(tj_get(v, "content")), "Replace decoder needs a string \"content\"");
    TRY(dup_string(&d->content, tj_get(v, "content"), ""));
  } else if (!strcmp(type, "CTC")) {
    d->type = TOK_DEC_CTC;
    TRY(dup_string(&d->prefix, tj_get(v, "pad_token"), "<pad>"));
    TRY(dup_string(&d->word_delimiter, tj_get(v, "word_delimiter_token"), "|"));
    d->cleanup = tj_bool(tj_get(v, "cleanup"), true);
  } else if (!strcmp(type, "BPEDecoder")) {
    d->type = TOK_DEC_BPE;
    TRY(dup_string(&d->prefix, tj_get(v, "suffix"), "</w>"));
  } else if (!strcmp(type, "Sequence")) {
    d->type = TOK_DEC_SEQUENCE;
    const tj_value* list = tj_get(v, "decoders");
    REQUIRE(list && list->type == TJ_ARRAY, "Sequence decoder needs a \"decoders\" list");
    d->children = calloc(list->len + 1, sizeof *d->children);
    REQUIRE(d->children, "out of memory");
    for (uint32_t i = 0; i < list->len; i++) {
      TRY(tok_decoder_from_json(&d->children[i], &list->u.items[i]));
      d->n_children++;
    }
  } else {
    REQUIRE(0, "unsupported decoder type \"%s\"", type);
  }
  *out = d;
  d = NULL;
cleanup:
  tok_decoder_free(d);
  return status;
}

/* Replaces every occurrence of `from` (non-empty) by `to`. */
static void replace_all(strbuf* out, const char* s, size_t n, const char* from, const char* to) {
  size_t from_len = strlen(from), to_len = strlen(to), i = 0;
  while (i < n) {
    const char* hit = from_len ? memmem(s + i, n - i, from, from_len) : NULL;
    if (!hit) break;
    strbuf_append(out, s + i, (size_t)(hit - s) - i);
    strbuf_append(out, to, to_len);
    i = (size_t)(hit - s) + from_len;
  }
  strbuf_append(out, s + i, n - i);
}

void tok_cleanup_tokenization(strbuf* out, const char* s, size_t n) {
  static const char* const rules[][2] = {{" .", "."},     {" ?", "?"},     {" !", "!"},           {" ,", ","},
                                         {" ' ", "'"},    {" n't", "n't"}, {" 'm", "'m"},         {" do not", " don't"},
                                         {" 's", "'s"},   {" 've", "'ve"}, {" 're", "'re"}};
  strbuf a = {0}, b = {0};
  strbuf_append(&a, s, n);
  for (size_t r = 0; r < sizeof rules / sizeof rules[0]; r++) {
    b.length = 0;
    replace_all(&b, a.data, a.length, rules[r][0], rules[r][1]);
    strbuf t = a;
    a = b;
    b = t;
  }
  strbuf_append(out, a.data ? a.data : "", a.length);
  strbuf_free(&a);
  strbuf_free(&b);
}

static bool byte_token(const char* s, size_t n, uint8_t* byte) {
  if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return false;
  int v = 0;
  for (int i = 3; i < 5; i++) {
    char c = s[i];
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    if (d < 0) return false;
    v = v * 16 + d;
  }
  *byte = (uint8_t)v;
  return true;
}

static int flush_bytes(tok_pieces* out, strbuf* bytes) {
  if (!bytes->length) return 0;
  int status = 0;
  if (tok_utf8_valid(bytes->data, bytes->length)) {
    status = tok_pieces_push(out, bytes->data, bytes->length, 0);
  } else {
    for (size_t i = 0; i < bytes->length && !status; i++) status = tok_pieces_push(out, "\xEF\xBF\xBD", 3, 0);
  }
  bytes->length = 0;
  return status;
}

static int decode_step(const tok_decoder* d, const tok_pieces* in, tok_pieces* out) {
  strbuf sb = {0};
  int status = 0;
  size_t n = in->count;
  switch (d->type) {
    case TOK_DEC_BYTE_LEVEL: {
      strbuf raw = {0};
      for (size_t i = 0; i < n; i++) {
        const char* t = tok_piece(in, i);
        size_t len = in->length[i], start = raw.length;
        bool all = true;
        for (size_t j = 0; j < len && all;) {
          int32_t cp;
          j += tok_utf8_decode(t + j, &cp);
          int b = tok_utf8_to_byte(cp);
          if (b < 0) all = false;
          else {
            char c = (char)b;
            strbuf_append(&raw, &c, 1);
          }
        }
        if (!all) {
          raw.length = start;
          strbuf_append(&raw, t, len);
        }
      }
      tok_append_lossy(&sb, raw.data ? raw.data : "", raw.length);
      status = raw.failed ? tok_error("out of memory (decoder)") : 0;
      strbuf_free(&raw);
      if (!status) status = tok_pieces_push(out, sb.data ? sb.data : "", sb.length, 0);
      break;
    }
    case TOK_DEC_METASPACE:
      for (size_t i = 0; i < n && !status; i++) {
        const char* t = tok_piece(in, i);
        sb.length = 0;
        for (size_t j = 0; j < in->length[i];) {
          int32_t cp;
          size_t k = tok_utf8_decode(t + j, &cp);
          if (cp != d->replacement_cp) strbuf_append(&sb, t + j, k);
          else if (!(i == 0 && d->prepend_scheme != TOK_PREPEND_NEVER)) strbuf_append(&sb, " ", 1);
          j += k;
        }
        status = tok_pieces_push(out, sb.data ? sb.data : "", sb.length, 0);
      }
      break;
    case TOK_DEC_WORDPIECE:
      for (size_t i = 0; i < n && !status; i++) {
        const char* t = tok_piece(in, i);
        size_t len = in->length[i], plen = strlen(d->prefix);
        strbuf piece = {0};
        if (i != 0 && len >= plen && !memcmp(t, d->prefix, plen)) strbuf_append(&piece, t + plen, len - plen);
        else {
          if (i != 0) strbuf_append(&piece, " ", 1);
          strbuf_append(&piece, t, len);
        }
        sb.length = 0;
        if (d->cleanup) tok_cleanup_tokenization(&sb, piece.data ? piece.data : "", piece.length);
        else strbuf_append(&sb, piece.data ? piece.data : "", piece.length);
        strbuf_free(&piece);
        status = tok_pieces_push(out, sb.data ? sb.data : "", sb.length, 0);
      }
      break;
    case TOK_DEC_BYTE_FALLBACK:
      for (size_t i = 0; i < n && !status; i++) {
        uint8_t b;
        if (byte_token(tok_piece(in, i), in->length[i], &b)) {
          strbuf_append(&sb, (const char*)&b, 1);
          continue;
        }
        status = flush_bytes(out, &sb);
        if (!status) status = tok_pieces_push(out, tok_piece(in, i), in->length[i], 0);
      }
      if (!status) status = flush_bytes(out, &sb);
      break;
    case TOK_DEC_FUSE:
      for (size_t i = 0; i < n; i++) strbuf_append(&sb, tok_piece(in, i), in->length[i]);
      status = tok_pieces_push(out, sb.data ? sb.data : "", sb.length, 0);
      break;
    case TOK_DEC_STRIP:
      for (size_t i = 0; i < n && !status; i++) {
        const char* t = tok_piece(in, i);
        size_t len = in->length[i], start = 0, stop = len;
        for (size_t c = 0; c < d->strip_start && start < len; c++) {
          int32_t cp;
          size_t k = tok_utf8_decode(t + start, &cp);
          if (cp != d->strip_cp) break;
          start += k;
        }
        for (size_t c = 0; c < d->strip_stop && stop > 0; c++) {
          size_t b = stop - 1;
          while (b > 0 && ((unsigned char)t[b] & 0xC0) == 0x80) b--;
          int32_t cp;
          tok_utf8_decode(t + b, &cp);
          if (cp != d->strip_cp) break;
          stop = b;
        }
        status = tok_pieces_push(out, t + start, stop > start ? stop - start : 0, 0);
      }
      break;
    case TOK_DEC_REPLACE:
      for (size_t i = 0; i < n && !status; i++) {
        sb.length = 0;
        status = tok_regex_replace(d->pattern, tok_piece(in, i), in->length[i], d->content, strlen(d->content), &sb);
        if (!status) status = tok_pieces_push(out, sb.data ? sb.data : "", sb.length, 0);
      }
      break;
    case TOK_DEC_CTC:
      for (size_t i = 0; i < n && !status; i++) {
        if (i > 0 && in->length[i] == in->length[i - 1] && !memcmp(tok_piece(in, i), tok_piece(in, i - 1), in->length[i]))
          continue;
        strbuf a = {0}, b = {0};
        replace_all(&a, tok_piece(in, i), in->length[i], d->prefix, "");
        if (d->cleanup) {
          tok_cleanup_tokenization(&b, a.data ? a.data : "", a.length);
          a.length = 0;
          replace_all(&a, b.data ? b.data : "", b.length, d->word_delimiter, " ");
        }
        if (a.length) status = tok_pieces_push(out, a.data, a.length, 0);
        strbuf_free(&a);
        strbuf_free(&b);
      }
      break;
    case TOK_DEC_BPE:
      for (size_t i = 0; i < n && !status; i++) {
        sb.length = 0;
        replace_all(&sb, tok_piece(in, i), in->length[i], d->prefix, i + 1 == n ? "" : " ");
        status = tok_pieces_push(out, sb.data ? sb.data : "", sb.length, 0);
      }
      break;
    case TOK_DEC_SEQUENCE: break;
  }
  if (!status && sb.failed) status = tok_error("out of memory (decoder)");
  strbuf_free(&sb);
  return status;
}

int tok_decode_chain(const tok_decoder* d, tok_pieces* tokens) {
  tok_pieces out = {0};
  int status = 0;
  if (d->type == TOK_DEC_SEQUENCE) {
    for (size_t i = 0; i < d->n_children; i++) TRY(tok_decode_chain(d->children[i], tokens));
    return 0;
  }
  TRY(decode_step(d, tokens, &out));
  tok_pieces_free(tokens);
  *tokens = out;
  out = (tok_pieces){0};
cleanup:
  tok_pieces_free(&out);
  return status;
}
