/* Open-addressing hash maps for vocabularies (string -> id) and merge ranks (id pair -> rank),
 * plus the small growable vectors the tokenizer uses. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/internal.h"
#include "util/error.h"

uint64_t tok_hash(const void* data, size_t n) {
  const uint8_t* p = data;
  uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xFF51AFD7ED558CCDull);
  while (n >= 8) {
    uint64_t k;
    memcpy(&k, p, 8);
    h = (h ^ (k * 0xC2B2AE3D27D4EB4Full)) * 0x9E3779B97F4A7C15ull;
    h ^= h >> 29;
    p += 8;
    n -= 8;
  }
  uint64_t k = 0;
  memcpy(&k, p, n);
  h = (h ^ (k * 0xC2B2AE3D27D4EB4Full)) * 0x9E3779B97F4A7C15ull;
  h ^= h >> 32;
  h *= 0xD6E8FEB86659FD93ull;
  h ^= h >> 32;
  return h;
}

static int grow_slots(tok_strmap* m, size_t n_slots) {
  int32_t* slots = malloc(n_slots * sizeof *slots);
  if (!slots) return tok_error("out of memory (vocabulary table)");
  memset(slots, 0xFF, n_slots * sizeof *slots);
  size_t mask = n_slots - 1;
  for (size_t e = 0; e < m->count; e++) {
    size_t i = m->hashes[e] & mask;
    while (slots[i] >= 0) i = (i + 1) & mask;
    slots[i] = (int32_t)e;
  }
  free(m->slots);
  m->slots = slots;
  m->slot_mask = mask;
  return 0;
}

int tok_strmap_init(tok_strmap* m, size_t expected) {
  memset(m, 0, sizeof *m);
  size_t n = 16;
  while (n < expected * 2) n <<= 1;
  return grow_slots(m, n);
}

void tok_strmap_free(tok_strmap* m) {
  free(m->arena);
  free(m->key_offset);
  free(m->key_len);
  free(m->values);
  free(m->hashes);
  free(m->slots);
  memset(m, 0, sizeof *m);
}

void tok_strmap_clear(tok_strmap* m) {
  m->arena_len = 0;
  m->count = 0;
  if (m->slots) memset(m->slots, 0xFF, (m->slot_mask + 1) * sizeof *m->slots);
}

static bool find(const tok_strmap* m, const char* key, size_t n, uint32_t h, size_t* slot) {
  size_t i = h & m->slot_mask;
  for (;;) {
    int32_t e = m->slots[i];
    if (e < 0) {
      *slot = i;
      return false;
    }
    if (m->hashes[e] == h && m->key_len[e] == n && memcmp(m->arena + m->key_offset[e], key, n) == 0) {
      *slot = i;
      return true;
    }
    i = (i + 1) & m->slot_mask;
  }
}

int tok_strmap_put(tok_strmap* m, const char* key, size_t n, int32_t value) {
  if (n > UINT32_MAX) return tok_error("token too long");
  uint32_t h = (uint32_t)tok_hash(key, n);
  size_t slot;
  if (find(m, key, n, h, &slot)) {
    m->values[m->slots[slot]] = value;
    return 0;
  }
  if (m->count == m->entry_cap) {
    size_t cap = m->entry_cap ? m->entry_cap * 2 : 64;
    size_t* off = realloc(m->key_offset, cap * sizeof *off);
    if (off) m->key_offset = off;
    uint32_t* len = realloc(m->key_len, cap * sizeof *len);
    if (len) m->key_len = len;
    int32_t* val = realloc(m->values, cap * sizeof *val);
    if (val) m->values = val;
    uint32_t* hs = realloc(m->hashes, cap * sizeof *hs);
    if (hs) m->hashes = hs;
    if (!off || !len || !val || !hs) return tok_error("out of memory (vocabulary)");
    m->entry_cap = cap;
  }
  if (m->arena_len + n + 1 > m->arena_cap) {
    size_t cap = m->arena_cap ? m->arena_cap * 2 : 4096;
    while (cap < m->arena_len + n + 1) cap *= 2;
    char* arena = realloc(m->arena, cap);
    if (!arena) return tok_error("out of memory (vocabulary)");
    m->arena = arena;
    m->arena_cap = cap;
  }
  size_t e = m->count++;
  memcpy(m->arena + m->arena_len, key, n);
  m->arena[m->arena_len + n] = '\0';
  m->key_offset[e] = m->arena_len;
  m->arena_len += n + 1;
  m->key_len[e] = (uint32_t)n;
  m->values[e] = value;
  m->hashes[e] = h;
  m->slots[slot] = (int32_t)e;
  if (m->count * 2 > m->slot_mask + 1) return grow_slots(m, (m->slot_mask + 1) * 2);
  return 0;
}

bool tok_strmap_get(const tok_strmap* m, const char* key, size_t n, int32_t* value) {
  if (!m->slots) return false;
  size_t slot;
  if (!find(m, key, n, (uint32_t)tok_hash(key, n), &slot)) return false;
  *value = m->values[m->slots[slot]];
  return true;
}

static int pairmap_alloc(tok_pairmap* m, size_t n_slots) {
  m->keys = malloc(n_slots * sizeof *m->keys);
  m->a = malloc(n_slots * sizeof *m->a);
  m->b = malloc(n_slots * sizeof *m->b);
  if (!m->keys || !m->a || !m->b) {
    tok_pairmap_free(m);
    return tok_error("out of memory (merge table)");
  }
  memset(m->keys, 0xFF, n_slots * sizeof *m->keys);
  m->mask = n_slots - 1;
  m->count = 0;
  return 0;
}

int tok_pairmap_init(tok_pairmap* m, size_t expected) {
  memset(m, 0, sizeof *m);
  size_t n = 16;
  while (n < expected * 2) n <<= 1;
  return pairmap_alloc(m, n);
}

void tok_pairmap_free(tok_pairmap* m) {
  free(m->keys);
  free(m->a);
  free(m->b);
  memset(m, 0, sizeof *m);
}

static void pairmap_insert(tok_pairmap* m, uint64_t key, uint32_t a, uint32_t b) {
  uint64_t h = key * 0x9E3779B97F4A7C15ull;
  size_t i = (size_t)(h >> 32) & m->mask;
  while (m->keys[i] != UINT64_MAX && m->keys[i] != key) i = (i + 1) & m->mask;
  if (m->keys[i] == UINT64_MAX) m->count++;
  m->keys[i] = key;
  m->a[i] = a;
  m->b[i] = b;
}

int tok_pairmap_put(tok_pairmap* m, uint64_t key, uint32_t a, uint32_t b) {
  if (!m->keys && tok_pairmap_init(m, 16)) return 1;
  if ((m->count + 1) * 2 > m->mask + 1) {
    tok_pairmap old = *m;
    if (pairmap_alloc(m, (old.mask + 1) * 2)) {
      *m = old;
      return 1;
    }
    for (size_t i = 0; i <= old.mask; i++)
      if (old.keys[i] != UINT64_MAX) pairmap_insert(m, old.keys[i], old.a[i], old.b[i]);
    tok_pairmap_free(&old);
  }
  pairmap_insert(m, key, a, b);
  return 0;
}

int tok_ids_append(tok_ids* v, const int32_t* ids, size_t n) {
  if (v->size + n > v->cap) {
    size_t cap = v->cap ? v->cap * 2 : 64;
    while (cap < v->size + n) cap *= 2;
    int32_t* data = realloc(v->data, cap * sizeof *data);
    if (!data) return tok_error("out of memory (token ids)");
    v->data = data;
    v->cap = cap;
  }
  if (n) memcpy(v->data + v->size, ids, n * sizeof *ids);
  v->size += n;
  return 0;
}

int tok_ids_push(tok_ids* v, int32_t id) {
  if (v->size < v->cap) {
    v->data[v->size++] = id;
    return 0;
  }
  return tok_ids_append(v, &id, 1);
}

static int pieces_reserve(tok_pieces* p, size_t text_extra) {
  if (p->text_len + text_extra + 1 > p->text_cap) {
    size_t cap = p->text_cap ? p->text_cap * 2 : 256;
    while (cap < p->text_len + text_extra + 1) cap *= 2;
    char* text = realloc(p->text, cap);
    if (!text) return tok_error("out of memory (pieces)");
    p->text = text;
    p->text_cap = cap;
  }
  return 0;
}

int tok_pieces_begin(tok_pieces* p, uint8_t flags) {
  if (p->count == p->cap) {
    size_t cap = p->cap ? p->cap * 2 : 32;
    size_t* off = realloc(p->offset, cap * sizeof *off);
    if (off) p->offset = off;
    size_t* len = realloc(p->length, cap * sizeof *len);
    if (len) p->length = len;
    uint8_t* fl = realloc(p->flags, cap);
    if (fl) p->flags = fl;
    if (!off || !len || !fl) return tok_error("out of memory (pieces)");
    p->cap = cap;
  }
  p->offset[p->count] = p->text_len;
  p->length[p->count] = 0;
  p->flags[p->count] = flags;
  p->count++;
  return 0;
}

int tok_pieces_extend(tok_pieces* p, const char* s, size_t n) {
  if (pieces_reserve(p, n)) return 1;
  memcpy(p->text + p->text_len, s, n);
  p->text_len += n;
  p->length[p->count - 1] += n;
  return 0;
}

int tok_pieces_push(tok_pieces* p, const char* s, size_t n, uint8_t flags) {
  /* s may point into p->text itself, so reserve before copying through an offset. */
  size_t inside = (p->text && s >= p->text && s < p->text + p->text_len) ? (size_t)(s - p->text) : SIZE_MAX;
  if (pieces_reserve(p, n) || tok_pieces_begin(p, flags)) return 1;
  const char* src = inside != SIZE_MAX ? p->text + inside : s;
  memmove(p->text + p->text_len, src, n);
  p->text_len += n;
  p->length[p->count - 1] = n;
  return 0;
}

void tok_pieces_reset(tok_pieces* p) {
  p->count = 0;
  p->text_len = 0;
}

void tok_pieces_free(tok_pieces* p) {
  free(p->text);
  free(p->offset);
  free(p->length);
  free(p->flags);
  memset(p, 0, sizeof *p);
}

char* tok_strndup(const char* s, size_t n) {
  char* out = malloc(n + 1);
  if (!out) return NULL;
  memcpy(out, s, n);
  out[n] = '\0';
  return out;
}

static _Thread_local const char* error_file;

void tok_error_set_file(const char* name) { error_file = name; }

int tok_error(const char* fmt, ...) {
  char message[900];
  va_list args;
  va_start(args, fmt);
  vsnprintf(message, sizeof message, fmt, args);
  va_end(args);
  if (error_file) return util_error("%s: %s", error_file, message);
  return util_error("%s", message);
}
