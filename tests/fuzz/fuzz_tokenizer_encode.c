/* libFuzzer target: arbitrary bytes as text for the tokenizers of tests/fixtures/tokenizers/
 * trained (WordPiece, Unigram with the Precompiled normalizer, byte-level BPE with split
 * behaviours, UnicodeScripts, Roberta and Bert post-processors); the first byte picks one.
 * Invalid UTF-8 must be an error, valid text must encode, decode to valid UTF-8 and stream; the
 * text split in two also goes through pair encoding with truncation (the second byte picks
 * max_length and strategy). Run from the repository root. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlxc/error.h"
#include "mlxc/tokenizer.h"

static const char* const dirs[] = {"tests/fixtures/tokenizers/trained/bert", "tests/fixtures/tokenizers/trained/spm_unigram",
                                    "tests/fixtures/tokenizers/trained/unigram", "tests/fixtures/tokenizers/trained/bytelevel_split",
                                    "tests/fixtures/tokenizers/trained/wordpiece_ctc", "tests/fixtures/tokenizers/trained/unicode_scripts",
                                    "tests/fixtures/tokenizers/trained/bpe_misc", "tests/fixtures/tokenizers/trained/wordlevel"};
#define N_TOK (sizeof dirs / sizeof dirs[0])
static mlxc_tokenizer* toks[N_TOK];

/* Strict UTF-8 (no overlongs, surrogates or code points past U+10FFFF), written independently
 * of the library's own check. */
static bool valid_utf8(const char* str, size_t n) {
  const unsigned char* s = (const unsigned char*)str;
  for (size_t i = 0; i < n;) {
    unsigned c = s[i];
    size_t w;
    unsigned lo = 0x80, hi = 0xBF;
    if (c < 0x80) w = 1;
    else if (c >= 0xC2 && c <= 0xDF) w = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
      w = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      w = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else return false;
    if (i + w > n) return false;
    for (size_t k = 1; k < w; k++) {
      unsigned b = s[i + k];
      if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) return false;
    }
    i += w;
  }
  return true;
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static bool loaded;
  if (!loaded) {
    mlxc_set_errors_quiet(1);
    const char* root = getenv("MLXC_SOURCE_DIR");
    for (size_t i = 0; i < N_TOK; i++) {
      char path[1024];
      snprintf(path, sizeof path, "%s/%s", root ? root : ".", dirs[i]);
      if (mlxc_tokenizer_load(&toks[i], path)) {
        fprintf(stderr, "cannot load %s: %s\n", path, mlxc_last_error());
        abort();
      }
    }
    loaded = true;
  }
  if (size == 0) return 0;
  const mlxc_tokenizer* tok = toks[data[0] % N_TOK];
  const char* text = (const char*)data + 1;
  size_t len = size - 1;
  int32_t* ids;
  size_t n;
  if (mlxc_tokenizer_encode(tok, text, len, data[0] & 0x80, &ids, &n)) {
    if (valid_utf8(text, len)) abort(); /* valid text must encode */
    return 0;
  }
  char* out;
  size_t out_len;
  if (mlxc_tokenizer_decode(tok, ids, n, false, &out, &out_len) || !valid_utf8(out, out_len)) abort();
  free(out);
  mlxc_tokenizer_stream* s;
  if (mlxc_tokenizer_stream_new(&s, tok, true)) abort();
  for (size_t i = 0; i < n; i++) {
    const char* piece;
    size_t piece_len;
    if (mlxc_tokenizer_stream_push(s, ids[i], &piece, &piece_len) || !valid_utf8(piece, piece_len)) abort();
  }
  mlxc_tokenizer_stream_free(s);
  free(ids);
  /* as a pair: split at a character boundary near the middle */
  size_t half = len / 2;
  while (half < len && ((unsigned char)text[half] & 0xC0) == 0x80) half++;
  mlxc_tokenizer_encode_params p = mlxc_tokenizer_encode_default_params();
  unsigned knob = len ? (unsigned char)text[0] : 0;
  p.max_length = knob % 24;
  p.strategy = (mlxc_tokenizer_truncation)((knob / 24) % 3);
  p.truncation_side = (knob & 0x80) ? MLXC_TOKENIZER_LEFT : MLXC_TOKENIZER_RIGHT;
  mlxc_tokenizer_encoding e;
  if (mlxc_tokenizer_encode_pair(tok, text, half, text + half, len - half, p, &e) == 0) {
    if (p.max_length && e.n > p.max_length) abort();
    for (size_t i = 0; i < e.n; i++)
      if (e.type_ids[i] > 1) abort();
    mlxc_tokenizer_encoding_free(&e);
  }
  return 0;
}
