/* The Precompiled normalizer: SentencePiece's precompiled_charsmap, a Darts double-array trie
 * over UTF-8 followed by a pool of NUL-terminated replacements, applied grapheme by grapheme as
 * tokenizers (spm_precompiled) does. */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "tokenizer/internal.h"
#include "util/error.h"

struct tok_precompiled {
  uint32_t* units;
  size_t n_units;
  char* pool;
  size_t pool_len;
};

void tok_precompiled_free(struct tok_precompiled* p) {
  if (!p) return;
  free(p->units);
  free(p->pool);
  free(p);
}

static int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

int tok_precompiled_from_base64(struct tok_precompiled** out, const char* b64, size_t n) {
  *out = NULL;
  int status = 0;
  uint8_t* bytes = malloc(n / 4 * 3 + 3);
  struct tok_precompiled* p = calloc(1, sizeof *p);
  REQUIRE(bytes && p, "out of memory");
  size_t len = 0;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < n; i++) {
    if (b64[i] == '=') break;
    int v = base64_value(b64[i]);
    REQUIRE(v >= 0, "precompiled_charsmap: invalid base64");
    acc = (acc << 6) | (uint32_t)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      bytes[len++] = (uint8_t)(acc >> bits);
    }
  }
  REQUIRE(len >= 4, "precompiled_charsmap: too short");
  uint32_t trie_size = (uint32_t)bytes[0] | (uint32_t)bytes[1] << 8 | (uint32_t)bytes[2] << 16 | (uint32_t)bytes[3] << 24;
  REQUIRE(trie_size % 4 == 0 && trie_size <= len - 4 && trie_size > 0, "precompiled_charsmap: bad trie size");
  p->n_units = trie_size / 4;
  p->units = malloc(trie_size);
  p->pool_len = len - 4 - trie_size;
  p->pool = malloc(p->pool_len + 1);
  REQUIRE(p->units && p->pool, "out of memory");
  for (size_t i = 0; i < p->n_units; i++) {
    const uint8_t* u = bytes + 4 + 4 * i;
    p->units[i] = (uint32_t)u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 | (uint32_t)u[3] << 24;
  }
  memcpy(p->pool, bytes + 4 + trie_size, p->pool_len);
  p->pool[p->pool_len] = '\0';
  *out = p;
  p = NULL;
cleanup:
  free(bytes);
  tok_precompiled_free(p);
  return status;
}

static uint32_t unit_offset(uint32_t u) { return (u >> 10) << ((u & (1u << 9)) >> 6); }
static uint32_t unit_label(uint32_t u) { return u & ((1u << 31) | 0xFF); }
static bool unit_has_leaf(uint32_t u) { return (u >> 8) & 1; }
static uint32_t unit_value(uint32_t u) { return u & ((1u << 31) - 1); }

/* The replacement for the shortest prefix of key found in the trie (as spm_precompiled's
 * transform takes the first common-prefix result), or NULL. */
static const char* transform(const struct tok_precompiled* p, const char* key, size_t n) {
  size_t pos = 0;
  pos ^= unit_offset(p->units[0]);
  for (size_t i = 0; i < n; i++) {
    uint8_t c = (uint8_t)key[i];
    if (c == 0) break;
    pos ^= c;
    if (pos >= p->n_units) return NULL;
    uint32_t u = p->units[pos];
    if (unit_label(u) != c) return NULL;
    pos ^= unit_offset(u);
    if (pos >= p->n_units) return NULL;
    if (unit_has_leaf(u)) {
      uint32_t value = unit_value(p->units[pos]);
      return value < p->pool_len ? p->pool + value : NULL;
    }
  }
  return NULL;
}

int tok_precompiled_normalize(const struct tok_precompiled* p, const char* in, size_t n, strbuf* out) {
  size_t i = 0;
  while (i < n) {
    /* One extended grapheme cluster: [i, end). */
    int32_t state = 0, prev, cp;
    size_t end = i + tok_utf8_decode(in + i, &prev);
    while (end < n) {
      size_t k = tok_utf8_decode(in + end, &cp);
      if (utf8proc_grapheme_break_stateful(prev, cp, &state)) break;
      prev = cp;
      end += k;
    }
    const char* rep = end - i < 6 ? transform(p, in + i, end - i) : NULL;
    if (rep) {
      strbuf_puts(out, rep);
    } else {
      for (size_t j = i; j < end;) {
        size_t k = tok_utf8_decode(in + j, &cp);
        const char* r = transform(p, in + j, k);
        if (r) strbuf_puts(out, r);
        else strbuf_append(out, in + j, k);
        j += k;
      }
    }
    i = end;
  }
  return 0;
}
