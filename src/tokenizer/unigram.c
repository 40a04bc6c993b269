/* The Unigram model: the segmentation of highest total log-probability (Viterbi over a byte trie
 * of the pieces), unknown characters scored below every piece and fused, then byte fallback. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/internal.h"
#include "util/error.h"

#define UNK_PENALTY 10.0

/* Trie edges: key (node << 8 | byte) -> (child node, token id + 1 when a piece ends there). */
int tok_unigram_build(tok_model* m) {
  int status = 0;
  m->min_score = 0;
  for (size_t i = 0; i < m->n_ids; i++)
    if (i == 0 || m->scores[i] < m->min_score) m->min_score = m->scores[i];
  TRY(tok_pairmap_init(&m->trie, m->vocab.count * 4));
  uint32_t nodes = 1;
  for (size_t e = 0; e < m->vocab.count; e++) {
    const uint8_t* key = (const uint8_t*)tok_strmap_key(&m->vocab, e);
    size_t len = m->vocab.key_len[e];
    uint32_t node = 0;
    for (size_t i = 0; i < len; i++) {
      uint64_t k = (uint64_t)node << 8 | key[i];
      uint32_t child, terminal;
      bool last = i + 1 == len;
      if (tok_pairmap_get(&m->trie, k, &child, &terminal)) {
        if (last) TRY(tok_pairmap_put(&m->trie, k, child, (uint32_t)m->vocab.values[e] + 1));
      } else {
        child = nodes++;
        TRY(tok_pairmap_put(&m->trie, k, child, last ? (uint32_t)m->vocab.values[e] + 1 : 0));
      }
      node = child;
    }
  }
cleanup:
  return status;
}

typedef struct {
  int32_t id;
  double score;
  int64_t starts_at; /* -1 until reached */
} best_node;

static int emit_piece(const tok_model* m, const char* s, size_t n, tok_ids* out) {
  int32_t id;
  if (tok_strmap_get(&m->vocab, s, n, &id)) return tok_ids_push(out, id);
  if (m->byte_fallback) {
    bool all = true;
    for (size_t i = 0; i < n && all; i++) all = m->byte_ids[(uint8_t)s[i]] >= 0;
    if (all) {
      for (size_t i = 0; i < n; i++)
        if (tok_ids_push(out, m->byte_ids[(uint8_t)s[i]])) return 1;
      return 0;
    }
  }
  if (m->unk_id < 0) return tok_error("Unigram: no unk_id for \"%.*s\"", (int)n, s);
  return tok_ids_push(out, m->unk_id);
}

int tok_unigram_tokenize(const tok_model* m, const char* s, size_t n, tok_ids* out) {
  if (n == 0) return 0;
  best_node* best = malloc((n + 1) * sizeof *best);
  size_t* bounds = malloc((n + 1) * sizeof *bounds);
  if (!best || !bounds) {
    free(best);
    free(bounds);
    return tok_error("out of memory (Unigram)");
  }
  for (size_t i = 0; i <= n; i++) best[i] = (best_node){0, 0.0, -1};
  double unk_score = m->min_score - UNK_PENALTY;
  for (size_t start = 0; start < n;) {
    double here = best[start].score;
    int32_t cp;
    size_t char_len = tok_utf8_decode(s + start, &cp);
    bool single = false;
    uint32_t node = 0;
    for (size_t i = start; i < n; i++) {
      uint32_t child, terminal;
      if (!tok_pairmap_get(&m->trie, (uint64_t)node << 8 | (uint8_t)s[i], &child, &terminal)) break;
      node = child;
      if (!terminal) continue;
      int32_t id = (int32_t)terminal - 1;
      size_t end = i + 1;
      double score = m->scores[id] + here;
      if (best[end].starts_at < 0 || score > best[end].score) best[end] = (best_node){id, score, (int64_t)start};
      if (end - start == char_len) single = true;
    }
    if (!single) {
      size_t end = start + char_len;
      double score = unk_score + here;
      if (best[end].starts_at < 0 || score > best[end].score)
        best[end] = (best_node){m->unk_id >= 0 ? m->unk_id : 0, score, (int64_t)start};
    }
    start += char_len;
  }
  /* Walk back from the end; consecutive unknown pieces are fused into one. bounds[] lists piece
   * starts from the right. */
  size_t count = 0;
  bool last_unk = false;
  for (size_t end = n; end > 0;) {
    size_t start = (size_t)best[end].starts_at;
    bool unk = m->unk_id >= 0 && best[end].id == m->unk_id;
    if (unk && last_unk) bounds[count - 1] = start;
    else bounds[count++] = start;
    last_unk = unk;
    end = start;
  }
  int status = 0;
  for (size_t i = count; i-- > 0 && !status;) {
    size_t piece_end = i > 0 ? bounds[i - 1] : n;
    status = emit_piece(m, s + bounds[i], piece_end - bounds[i], out);
  }
  free(best);
  free(bounds);
  return status;
}
