/* mlx-c maps (map.h): string keys to arrays or strings, in insertion order, with a hash index.
 * Inserting an existing key replaces its value (as std::unordered_map::insert_or_assign). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/array.h"
#include "mlx/c/map.h"
#include "util/error.h"

typedef struct {
  char* key;
  void* value; /* core_array* or char* */
} entry;

typedef struct {
  entry* entries;
  size_t count, capacity;
  size_t* slots; /* hash index: entry index + 1, 0 = empty */
  size_t slot_count;
  int holds_arrays;
} map;

static uint64_t hash_key(const char* s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

static map* map_new(int holds_arrays) {
  map* m = calloc(1, sizeof *m);
  if (!m) util_error("out of memory");
  if (m) m->holds_arrays = holds_arrays;
  return m;
}

static void release_value(map* m, void* v) {
  if (m->holds_arrays)
    core_array_release(v);
  else
    free(v);
}

static void map_free(map* m) {
  if (!m) return;
  for (size_t i = 0; i < m->count; i++) {
    free(m->entries[i].key);
    release_value(m, m->entries[i].value);
  }
  free(m->entries);
  free(m->slots);
  free(m);
}

static size_t* find_slot(const map* m, const char* key) {
  if (!m->slot_count) return NULL;
  size_t mask = m->slot_count - 1;
  for (size_t i = hash_key(key) & mask;; i = (i + 1) & mask) {
    size_t* slot = &m->slots[i];
    if (*slot == 0 || !strcmp(m->entries[*slot - 1].key, key)) return slot;
  }
}

static int rehash(map* m, size_t slot_count) {
  size_t* slots = calloc(slot_count, sizeof *slots);
  if (!slots) return util_error("out of memory");
  free(m->slots);
  m->slots = slots;
  m->slot_count = slot_count;
  for (size_t e = 0; e < m->count; e++) *find_slot(m, m->entries[e].key) = e + 1;
  return 0;
}

/* Takes ownership of `value` (also on failure). */
static int map_put(map* m, const char* key, void* value) {
  if (!m) return util_error("map is empty (not created with _new)");
  size_t* slot = find_slot(m, key);
  if (slot && *slot) {
    entry* e = &m->entries[*slot - 1];
    release_value(m, e->value);
    e->value = value;
    return 0;
  }
  if ((m->count + 1) * 2 > m->slot_count && rehash(m, m->slot_count ? m->slot_count * 2 : 16)) {
    release_value(m, value);
    return 1;
  }
  if (m->count == m->capacity) {
    size_t cap = m->capacity ? m->capacity * 2 : 8;
    entry* grown = realloc(m->entries, cap * sizeof *grown);
    if (!grown) {
      release_value(m, value);
      return util_error("out of memory");
    }
    m->entries = grown;
    m->capacity = cap;
  }
  char* k = strdup(key);
  if (!k) {
    release_value(m, value);
    return util_error("out of memory");
  }
  m->entries[m->count++] = (entry){k, value};
  *find_slot(m, key) = m->count;
  return 0;
}

static entry* map_get(const map* m, const char* key) {
  size_t* slot = m ? find_slot(m, key) : NULL;
  return slot && *slot ? &m->entries[*slot - 1] : NULL;
}

static map* map_copy(const map* src) {
  map* m = map_new(src->holds_arrays);
  for (size_t i = 0; m && i < src->count; i++) {
    void* v = src->entries[i].value;
    if (src->holds_arrays)
      core_array_retain(v);
    else if (!(v = strdup(v))) {
      util_error("out of memory");
      map_free(m);
      return NULL;
    }
    if (map_put(m, src->entries[i].key, v)) {
      map_free(m);
      return NULL;
    }
  }
  return m;
}

typedef struct {
  size_t next;
} iterator;

/* ---- string -> array ---- */

mlx_map_string_to_array mlx_map_string_to_array_new(void) { return (mlx_map_string_to_array){map_new(1)}; }

int mlx_map_string_to_array_set(mlx_map_string_to_array* m, const mlx_map_string_to_array src) {
  if (!m || !src.ctx) return util_error("mlx_map_string_to_array_set: empty map");
  map* copy = map_copy(src.ctx);
  if (!copy) return 1;
  map_free(m->ctx);
  m->ctx = copy;
  return 0;
}

int mlx_map_string_to_array_free(mlx_map_string_to_array m) {
  map_free(m.ctx);
  return 0;
}

int mlx_map_string_to_array_insert(mlx_map_string_to_array m, const char* key, const mlx_array value) {
  if (!key) return util_error("map insert: null key");
  if (!value.ctx) return util_error("map insert of key '%s': empty array", key);
  if (!m.ctx) return util_error("map is empty (not created with _new)");
  core_array_retain(core_ctx(value));
  return map_put(m.ctx, key, core_ctx(value));
}

int mlx_map_string_to_array_get(mlx_array* value, const mlx_map_string_to_array m, const char* key) {
  entry* e = key ? map_get(m.ctx, key) : NULL;
  if (!e) return util_error("key '%s' not found in map", key ? key : "(null)");
  core_array_retain(e->value);
  core_assign(value, e->value);
  return 0;
}

mlx_map_string_to_array_iterator mlx_map_string_to_array_iterator_new(mlx_map_string_to_array m) {
  iterator* it = calloc(1, sizeof *it);
  if (!it) util_error("out of memory");
  return (mlx_map_string_to_array_iterator){it, m.ctx};
}

int mlx_map_string_to_array_iterator_free(mlx_map_string_to_array_iterator it) {
  free(it.ctx);
  return 0;
}

/* Returns non-zero (without reporting an error) at the end. */
int mlx_map_string_to_array_iterator_next(const char** key, mlx_array* value,
                                          mlx_map_string_to_array_iterator it) {
  iterator* i = it.ctx;
  map* m = it.map_ctx;
  if (!i || !m || i->next >= m->count) return 1;
  entry* e = &m->entries[i->next++];
  *key = e->key;
  core_array_retain(e->value);
  core_assign(value, e->value);
  return 0;
}

/* ---- string -> string ---- */

mlx_map_string_to_string mlx_map_string_to_string_new(void) { return (mlx_map_string_to_string){map_new(0)}; }

int mlx_map_string_to_string_set(mlx_map_string_to_string* m, const mlx_map_string_to_string src) {
  if (!m || !src.ctx) return util_error("mlx_map_string_to_string_set: empty map");
  map* copy = map_copy(src.ctx);
  if (!copy) return 1;
  map_free(m->ctx);
  m->ctx = copy;
  return 0;
}

int mlx_map_string_to_string_free(mlx_map_string_to_string m) {
  map_free(m.ctx);
  return 0;
}

int mlx_map_string_to_string_insert(mlx_map_string_to_string m, const char* key, const char* value) {
  if (!key || !value) return util_error("map insert: null key or value");
  if (!m.ctx) return util_error("map is empty (not created with _new)");
  char* v = strdup(value);
  if (!v) return util_error("out of memory");
  return map_put(m.ctx, key, v);
}

int mlx_map_string_to_string_get(const char** value, const mlx_map_string_to_string m, const char* key) {
  entry* e = key ? map_get(m.ctx, key) : NULL;
  if (!e) return util_error("key '%s' not found in map", key ? key : "(null)");
  *value = e->value;
  return 0;
}

mlx_map_string_to_string_iterator mlx_map_string_to_string_iterator_new(mlx_map_string_to_string m) {
  iterator* it = calloc(1, sizeof *it);
  if (!it) util_error("out of memory");
  return (mlx_map_string_to_string_iterator){it, m.ctx};
}

int mlx_map_string_to_string_iterator_free(mlx_map_string_to_string_iterator it) {
  free(it.ctx);
  return 0;
}

int mlx_map_string_to_string_iterator_next(const char** key, const char** value,
                                           mlx_map_string_to_string_iterator it) {
  iterator* i = it.ctx;
  map* m = it.map_ctx;
  if (!i || !m || i->next >= m->count) return 1;
  entry* e = &m->entries[i->next++];
  *key = e->key;
  *value = e->value;
  return 0;
}
