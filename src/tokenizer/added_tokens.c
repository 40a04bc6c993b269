/* Added tokens: found in the text before the model runs, leftmost-longest as tokenizers'
 * Aho-Corasick matcher does, first among raw text (tokens with normalized = false) and then in
 * the normalized remainder; single_word, lstrip and rstrip applied as AddedVocabulary does. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/internal.h"
#include "util/error.h"

static int trie_add(tok_added_trie* t, const char* s, size_t n, uint32_t token) {
  if (n == 0) return 0;
  uint32_t node = 0;
  t->first_byte[(uint8_t)s[0] >> 3] |= (uint8_t)(1u << ((uint8_t)s[0] & 7));
  for (size_t i = 0; i < n; i++) {
    uint64_t key = (uint64_t)node << 8 | (uint8_t)s[i];
    uint32_t child, terminal;
    bool last = i + 1 == n;
    if (tok_pairmap_get(&t->edges, key, &child, &terminal)) {
      if (last && !terminal && tok_pairmap_put(&t->edges, key, child, token + 1)) return 1;
    } else {
      child = (uint32_t)++t->n_nodes;
      if (tok_pairmap_put(&t->edges, key, child, last ? token + 1 : 0)) return 1;
    }
    node = child;
  }
  return 0;
}

int tok_added_vocab_build(tok_added_vocab* av, const tok_normalizer* normalizer) {
  int status = 0;
  strbuf normalized = {0};
  TRY(tok_pairmap_init(&av->raw.edges, 64));
  TRY(tok_pairmap_init(&av->normalized.edges, 64));
  for (size_t i = 0; i < av->count; i++) {
    const tok_added_token* t = &av->tokens[i];
    if (!t->normalized) {
      TRY(trie_add(&av->raw, t->content, t->length, (uint32_t)i));
    } else if (normalizer) {
      /* tokenizers keeps a normalized token in its normalized form, and decodes it so too. */
      TRY(tok_normalize(normalizer, t->content, t->length, &normalized));
      TRY(trie_add(&av->normalized, normalized.data, normalized.length, (uint32_t)i));
      av->tokens[i].decoded = tok_strndup(normalized.data, normalized.length);
      REQUIRE(av->tokens[i].decoded, "out of memory");
      av->tokens[i].decoded_length = normalized.length;
    } else {
      TRY(trie_add(&av->normalized, t->content, t->length, (uint32_t)i));
    }
  }
cleanup:
  strbuf_free(&normalized);
  return status;
}

void tok_added_vocab_free(tok_added_vocab* av) {
  for (size_t i = 0; i < av->count; i++) {
    free(av->tokens[i].content);
    free(av->tokens[i].decoded);
  }
  free(av->tokens);
  tok_pairmap_free(&av->raw.edges);
  tok_pairmap_free(&av->normalized.edges);
  memset(av, 0, sizeof *av);
}

/* The last character before `end` (s[0..end)), or -1. */
static int32_t char_before(const char* s, size_t end) {
  if (end == 0) return -1;
  size_t b = end - 1;
  while (b > 0 && ((unsigned char)s[b] & 0xC0) == 0x80) b--;
  int32_t cp;
  tok_utf8_decode(s + b, &cp);
  return cp;
}

static int push_split(tok_added_split** splits, size_t* n, size_t* cap, size_t start, size_t end, int32_t token) {
  if (*n == *cap) {
    size_t new_cap = *cap ? *cap * 2 : 16;
    tok_added_split* grown = realloc(*splits, new_cap * sizeof *grown);
    if (!grown) return tok_error("out of memory (added tokens)");
    *splits = grown;
    *cap = new_cap;
  }
  (*splits)[(*n)++] = (tok_added_split){start, end, token};
  return 0;
}

int tok_added_split_text(const tok_added_vocab* av, bool normalized, const char* s, size_t n,
                         tok_added_split** splits, size_t* n_splits, size_t* cap) {
  const tok_added_trie* t = normalized ? &av->normalized : &av->raw;
  *n_splits = 0;
  size_t start_offset = 0, pos = 0;
  while (t->n_nodes && pos < n) {
    uint8_t c = (uint8_t)s[pos];
    if (!(t->first_byte[c >> 3] & (1u << (c & 7)))) {
      pos++;
      continue;
    }
    uint32_t node = 0, found = 0;
    size_t match_end = 0;
    for (size_t i = pos; i < n; i++) {
      uint32_t child, terminal;
      if (!tok_pairmap_get(&t->edges, (uint64_t)node << 8 | (uint8_t)s[i], &child, &terminal)) break;
      node = child;
      if (terminal) {
        found = terminal;
        match_end = i + 1;
      }
    }
    if (!found) {
      pos++;
      continue;
    }
    const tok_added_token* tok = &av->tokens[found - 1];
    size_t start = pos, stop = match_end;
    pos = match_end;
    if (tok->single_word) {
      int32_t before = char_before(s, start);
      int32_t after = -1;
      if (stop < n) tok_utf8_decode(s + stop, &after);
      bool start_space = start == 0 || !tok_is_word_char(before);
      bool stop_space = stop == n || !tok_is_word_char(after);
      if (!start_space || !stop_space) continue;
    }
    if (tok->lstrip) {
      size_t left = start;
      while (left > 0) {
        int32_t cp = char_before(s, left);
        if (!tok_is_whitespace(cp)) break;
        left--;
        while (left > 0 && ((unsigned char)s[left] & 0xC0) == 0x80) left--;
      }
      start = left > start_offset ? left : start_offset;
    }
    if (tok->rstrip) {
      while (stop < n) {
        int32_t cp;
        size_t k = tok_utf8_decode(s + stop, &cp);
        if (!tok_is_whitespace(cp)) break;
        stop += k;
      }
    }
    if (start_offset < start && push_split(splits, n_splits, cap, start_offset, start, -1)) return 1;
    if (push_split(splits, n_splits, cap, start, stop, (int32_t)(found - 1))) return 1;
    start_offset = stop;
  }
  if (start_offset < n && push_split(splits, n_splits, cap, start_offset, n, -1)) return 1;
  return 0;
}
