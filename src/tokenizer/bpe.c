/* The BPE model: a word starts as characters (or byte-fallback tokens) and the lowest-ranked
 * adjacent pair is merged until none is left, with a heap over candidate merges (O(n log n)) and
 * a cache of words already seen. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/internal.h"
#include "util/error.h"

#define CACHE_MAX_WORDS 100000
#define CACHE_MAX_WORD_BYTES 256
#define STACK_SYMBOLS 64

static uint64_t pair_key(int32_t a, int32_t b) { return (uint64_t)(uint32_t)a << 32 | (uint32_t)b; }

int tok_bpe_add_merge(tok_model* m, const char* left, size_t left_len, const char* right,
                      size_t right_len, uint32_t rank) {
  int32_t a, b, merged;
  if (!tok_strmap_get(&m->vocab, left, left_len, &a))
    return tok_error("merge token \"%.*s\" is not in the vocabulary", (int)left_len, left);
  if (!tok_strmap_get(&m->vocab, right, right_len, &b))
    return tok_error("merge token \"%.*s\" is not in the vocabulary", (int)right_len, right);
  size_t prefix = m->continuing_subword_prefix ? strlen(m->continuing_subword_prefix) : 0;
  if (prefix > right_len) return tok_error("merge token \"%.*s\" is shorter than the subword prefix", (int)right_len, right);
  size_t n = left_len + right_len - prefix;
  char stack[256];
  char* joined = n <= sizeof stack ? stack : malloc(n);
  if (!joined) return tok_error("out of memory");
  memcpy(joined, left, left_len);
  memcpy(joined + left_len, right + prefix, right_len - prefix);
  bool found = tok_strmap_get(&m->vocab, joined, n, &merged);
  int status = found ? 0 : tok_error("merged token \"%.*s\" is not in the vocabulary", (int)n, joined);
  if (joined != stack) free(joined);
  if (status) return status;
  /* As a hash map built from the list, a repeated pair keeps its last rank. */
  return tok_pairmap_put(&m->merges, pair_key(a, b), rank, (uint32_t)merged);
}

int tok_bpe_finish(tok_model* m) {
  m->cache = calloc(1, sizeof *m->cache);
  if (!m->cache) return tok_error("out of memory");
  pthread_mutex_init(&m->cache->lock, NULL);
  return tok_strmap_init(&m->cache->words, 1024);
}

typedef struct {
  int32_t id;
  int32_t prev, next;
  uint32_t len; /* bytes; 0 once merged into its left neighbour */
} symbol;

typedef struct {
  uint32_t rank;
  uint32_t pos;
  int32_t new_id;
} candidate;

static bool before(candidate x, candidate y) { return x.rank != y.rank ? x.rank < y.rank : x.pos < y.pos; }

static void heap_push(candidate* h, size_t* n, candidate c) {
  size_t i = (*n)++;
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (!before(c, h[parent])) break;
    h[i] = h[parent];
    i = parent;
  }
  h[i] = c;
}

static candidate heap_pop(candidate* h, size_t* n) {
  candidate top = h[0];
  candidate last = h[--*n];
  size_t i = 0;
  for (;;) {
    size_t child = 2 * i + 1;
    if (child >= *n) break;
    if (child + 1 < *n && before(h[child + 1], h[child])) child++;
    if (!before(h[child], last)) break;
    h[i] = h[child];
    i = child;
  }
  if (*n) h[i] = last;
  return top;
}

static int add_symbol(symbol** syms, size_t* n, size_t* cap, symbol* stack, int32_t id, uint32_t len) {
  if (*n == *cap) {
    size_t new_cap = *cap * 2;
    symbol* grown;
    if (*syms == stack) {
      grown = malloc(new_cap * sizeof *grown);
      if (grown) memcpy(grown, stack, *n * sizeof *grown);
    } else {
      grown = realloc(*syms, new_cap * sizeof *grown);
    }
    if (!grown) return tok_error("out of memory (BPE)");
    *syms = grown;
    *cap = new_cap;
  }
  (*syms)[*n] = (symbol){id, (int32_t)*n - 1, (int32_t)*n + 1, len};
  (*n)++;
  return 0;
}

/* Splits the word into initial symbols as tokenizers' merge_word does. */
static int initial_symbols(const tok_model* m, const char* w, size_t n, symbol** syms, size_t* count,
                           size_t* cap, symbol* stack) {
  const char* prefix = m->continuing_subword_prefix;
  const char* suffix = m->end_of_word_suffix;
  size_t prefix_len = prefix ? strlen(prefix) : 0, suffix_len = suffix ? strlen(suffix) : 0;
  int32_t unk_id = -1;
  uint32_t unk_len = 0;
  char small[64];
  for (size_t i = 0; i < n;) {
    int32_t cp;
    size_t k = tok_utf8_decode(w + i, &cp);
    bool first = i == 0, last = i + k == n;
    const char* s = w + i;
    size_t s_len = k;
    if ((prefix_len && !first) || (suffix_len && last)) {
      s_len = (prefix_len && !first ? prefix_len : 0) + k + (suffix_len && last ? suffix_len : 0);
      if (s_len > sizeof small) return tok_error("BPE affixes too long");
      size_t o = 0;
      if (prefix_len && !first) {
        memcpy(small, prefix, prefix_len);
        o = prefix_len;
      }
      memcpy(small + o, w + i, k);
      o += k;
      if (suffix_len && last) memcpy(small + o, suffix, suffix_len);
      s = small;
    }
    int32_t id;
    if (tok_strmap_get(&m->vocab, s, s_len, &id)) {
      if (unk_id >= 0) {
        if (add_symbol(syms, count, cap, stack, unk_id, unk_len)) return 1;
        unk_id = -1;
      }
      if (add_symbol(syms, count, cap, stack, id, (uint32_t)k)) return 1;
    } else {
      bool fallback = m->byte_fallback;
      for (size_t j = 0; fallback && j < s_len; j++) fallback = m->byte_ids[(uint8_t)s[j]] >= 0;
      if (fallback) {
        for (size_t j = 0; j < s_len; j++)
          if (add_symbol(syms, count, cap, stack, m->byte_ids[(uint8_t)s[j]], 1)) return 1;
      } else if (m->unk_id >= 0) {
        if (unk_id >= 0 && m->fuse_unk) {
          unk_len += (uint32_t)k;
        } else {
          if (unk_id >= 0 && add_symbol(syms, count, cap, stack, unk_id, unk_len)) return 1;
          unk_id = m->unk_id;
          unk_len = (uint32_t)k;
        }
      } /* else: with no unk token, tokenizers drops a character it cannot represent */
    }
    i += k;
  }
  if (unk_id >= 0 && add_symbol(syms, count, cap, stack, unk_id, unk_len)) return 1;
  if (*count) (*syms)[*count - 1].next = -1;
  return 0;
}

static int merge_word(const tok_model* m, const char* w, size_t n, tok_ids* out) {
  symbol stack[STACK_SYMBOLS];
  candidate heap_stack[STACK_SYMBOLS * 2];
  symbol* syms = stack;
  candidate* heap = heap_stack;
  size_t count = 0, cap = STACK_SYMBOLS, heap_n = 0, heap_cap = STACK_SYMBOLS * 2;
  int status = 0;
  TRY(initial_symbols(m, w, n, &syms, &count, &cap, stack));
  if (count > STACK_SYMBOLS) {
    /* Each merge pushes at most two candidates; the initial pass pushes count - 1. */
    heap_cap = count * 3 + 1;
    heap = malloc(heap_cap * sizeof *heap);
    REQUIRE(heap, "out of memory (BPE)");
  }
  for (size_t i = 0; i + 1 < count; i++) {
    uint32_t rank, merged;
    if (tok_pairmap_get(&m->merges, pair_key(syms[i].id, syms[i + 1].id), &rank, &merged))
      heap_push(heap, &heap_n, (candidate){rank, (uint32_t)i, (int32_t)merged});
  }
  while (heap_n) {
    candidate top = heap_pop(heap, &heap_n);
    symbol* cur = &syms[top.pos];
    if (cur->len == 0 || cur->next < 0) continue;
    symbol right = syms[cur->next];
    uint32_t rank, merged;
    if (!tok_pairmap_get(&m->merges, pair_key(cur->id, right.id), &rank, &merged) || (int32_t)merged != top.new_id)
      continue;
    syms[cur->next].len = 0;
    cur->id = top.new_id;
    cur->len += right.len;
    cur->next = right.next;
    if (right.next >= 0) syms[right.next].prev = (int32_t)top.pos;
    if (heap_n + 2 > heap_cap) {
      size_t new_cap = heap_cap * 2;
      candidate* grown = heap == heap_stack ? malloc(new_cap * sizeof *grown) : realloc(heap, new_cap * sizeof *grown);
      REQUIRE(grown, "out of memory (BPE)");
      if (heap == heap_stack) memcpy(grown, heap_stack, heap_n * sizeof *grown);
      heap = grown;
      heap_cap = new_cap;
    }
    if (cur->prev >= 0 &&
        tok_pairmap_get(&m->merges, pair_key(syms[cur->prev].id, cur->id), &rank, &merged))
      heap_push(heap, &heap_n, (candidate){rank, (uint32_t)cur->prev, (int32_t)merged});
    if (cur->next >= 0 && tok_pairmap_get(&m->merges, pair_key(cur->id, syms[cur->next].id), &rank, &merged))
      heap_push(heap, &heap_n, (candidate){rank, top.pos, (int32_t)merged});
  }
  for (size_t i = 0; i < count; i++)
    if (syms[i].len) TRY(tok_ids_push(out, syms[i].id));
cleanup:
  if (syms != stack) free(syms);
  if (heap != heap_stack) free(heap);
  return status;
}

int tok_bpe_tokenize(const tok_model* m, const char* w, size_t n, tok_ids* out) {
  if (n == 0) return 0;
  int32_t id;
  if (m->ignore_merges && tok_strmap_get(&m->vocab, w, n, &id)) return tok_ids_push(out, id);
  tok_word_cache* cache = m->cache;
  bool cacheable = cache && n < CACHE_MAX_WORD_BYTES;
  if (cacheable) {
    int32_t at;
    pthread_mutex_lock(&cache->lock);
    if (tok_strmap_get(&cache->words, w, n, &at)) {
      int status = tok_ids_append(out, cache->ids.data + at + 1, (size_t)cache->ids.data[at]);
      pthread_mutex_unlock(&cache->lock);
      return status;
    }
    pthread_mutex_unlock(&cache->lock);
  }
  size_t start = out->size;
  if (merge_word(m, w, n, out)) return 1;
  if (cacheable) {
    pthread_mutex_lock(&cache->lock);
    if (cache->words.count >= CACHE_MAX_WORDS) {
      tok_strmap_clear(&cache->words);
      cache->ids.size = 0;
    }
    size_t at = cache->ids.size;
    int status = tok_ids_push(&cache->ids, (int32_t)(out->size - start));
    if (!status && out->size > start) status = tok_ids_append(&cache->ids, out->data + start, out->size - start);
    if (!status) status = tok_strmap_put(&cache->words, w, n, (int32_t)at);
    if (status) { /* a full cache is not an error for the caller: start afresh */
      tok_strmap_clear(&cache->words);
      cache->ids.size = 0;
    }
    pthread_mutex_unlock(&cache->lock);
  }
  return 0;
}
