/* A strict JSON parser into an arena-backed DOM. Faster than a general-purpose library on the
 * multi-megabyte vocabularies of tokenizer.json (no per-value allocation, no key hashing). */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/internal.h"
#include "util/error.h"

#define MAX_DEPTH 256

struct tj_arena {
  struct tj_arena* next;
  size_t used, cap;
  _Alignas(16) char data[];
};

typedef struct {
  const char* s;
  size_t n, pos;
  tj_arena* arena;
  const char* name;
  const char* why;
  /* A stack of values being built; a container's children are copied out when it closes. */
  tj_value* stack;
  char** key_stack;
  uint32_t* key_len_stack;
  size_t top, cap;
} parser;

static void* arena_alloc(parser* p, size_t size) {
  size = (size + 15) & ~(size_t)15;
  tj_arena* a = p->arena;
  if (!a || a->cap - a->used < size) {
    size_t cap = size > (1u << 20) ? size : (1u << 20);
    tj_arena* fresh = malloc(sizeof *fresh + cap);
    if (!fresh) return NULL;
    fresh->next = a;
    fresh->used = 0;
    fresh->cap = cap;
    p->arena = a = fresh;
  }
  void* out = a->data + a->used;
  a->used += size;
  return out;
}

static int fail(parser* p, const char* why) {
  if (!p->why) p->why = why;
  return 1;
}

static void skip_space(parser* p) {
  while (p->pos < p->n) {
    char c = p->s[p->pos];
    if (c != ' ' && c != '\n' && c != '\r' && c != '\t') break;
    p->pos++;
  }
}

static int push(parser* p, tj_value v, char* key, uint32_t key_len) {
  if (p->top == p->cap) {
    size_t cap = p->cap ? p->cap * 2 : 1024;
    tj_value* stack = realloc(p->stack, cap * sizeof *stack);
    if (stack) p->stack = stack;
    char** keys = realloc(p->key_stack, cap * sizeof *keys);
    if (keys) p->key_stack = keys;
    uint32_t* lens = realloc(p->key_len_stack, cap * sizeof *lens);
    if (lens) p->key_len_stack = lens;
    if (!stack || !keys || !lens) return fail(p, "out of memory");
    p->cap = cap;
  }
  p->stack[p->top] = v;
  p->key_stack[p->top] = key;
  p->key_len_stack[p->top] = key_len;
  p->top++;
  return 0;
}

static int hex4(parser* p, uint32_t* out) {
  if (p->n - p->pos < 4) return fail(p, "truncated \\u escape");
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) {
    char c = p->s[p->pos++];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= (uint32_t)(c - '0');
    else if (c >= 'a' && c <= 'f') v |= (uint32_t)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v |= (uint32_t)(c - 'A' + 10);
    else return fail(p, "bad hex digit in \\u escape");
  }
  *out = v;
  return 0;
}

/* Parses a string starting after the opening quote. */
static int parse_string(parser* p, char** out, uint32_t* out_len) {
  size_t start = p->pos, end = start;
  bool plain = true;
  while (end < p->n && p->s[end] != '"') {
    if (p->s[end] == '\\') {
      plain = false;
      end++;
    }
    end++;
  }
  if (end >= p->n) return fail(p, "unterminated string");
  if (end - start > UINT32_MAX) return fail(p, "string too long");
  char* dst = arena_alloc(p, end - start + 1);
  if (!dst) return fail(p, "out of memory");
  size_t len = 0;
  if (plain) {
    for (size_t i = start; i < end; i++)
      if ((unsigned char)p->s[i] < 0x20) return fail(p, "control character in string");
    if (!tok_utf8_valid(p->s + start, end - start)) return fail(p, "invalid UTF-8 in string");
    memcpy(dst, p->s + start, end - start);
    len = end - start;
    p->pos = end + 1;
  } else {
    while (p->pos < end) {
      unsigned char c = (unsigned char)p->s[p->pos];
      if (c < 0x20) return fail(p, "control character in string");
      if (c != '\\') {
        size_t k = tok_utf8_valid_prefix((const uint8_t*)p->s + p->pos, end - p->pos);
        if (!k) return fail(p, "invalid UTF-8 in string");
        memcpy(dst + len, p->s + p->pos, k);
        len += k;
        p->pos += k;
        continue;
      }
      p->pos++;
      char e = p->s[p->pos++];
      switch (e) {
        case '"': dst[len++] = '"'; break;
        case '\\': dst[len++] = '\\'; break;
        case '/': dst[len++] = '/'; break;
        case 'b': dst[len++] = '\b'; break;
        case 'f': dst[len++] = '\f'; break;
        case 'n': dst[len++] = '\n'; break;
        case 'r': dst[len++] = '\r'; break;
        case 't': dst[len++] = '\t'; break;
        case 'u': {
          uint32_t cp;
          if (hex4(p, &cp)) return 1;
          if (cp >= 0xDC00 && cp <= 0xDFFF) return fail(p, "lone trailing surrogate");
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            uint32_t lo;
            if (p->pos + 2 > end || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u')
              return fail(p, "lone leading surrogate");
            p->pos += 2;
            if (hex4(p, &lo)) return 1;
            if (lo < 0xDC00 || lo > 0xDFFF) return fail(p, "invalid surrogate pair");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          len += tok_utf8_encode((int32_t)cp, dst + len);
          break;
        }
        default: return fail(p, "bad escape in string");
      }
    }
    if (p->pos != end) return fail(p, "bad escape in string");
    p->pos = end + 1;
  }
  dst[len] = '\0';
  *out = dst;
  *out_len = (uint32_t)len;
  return 0;
}

/* Powers of ten as correctly rounded doubles, 1e0 .. 1e308. */
static double pow10_table[309];
static pthread_once_t pow10_once = PTHREAD_ONCE_INIT;

static void pow10_init(void) {
  char buf[16];
  for (int i = 0; i <= 308; i++) {
    snprintf(buf, sizeof buf, "1e%d", i);
    pow10_table[i] = strtod(buf, NULL);
  }
}

/* significand * 10^exponent computed as serde_json does by default (not correctly rounded: the
 * significand is rounded to a double, then multiplied or divided once). tokenizers reads
 * tokenizer.json this way, and Unigram's ties depend on the last bit of the scores. */
static int f64_from_parts(parser* p, bool positive, uint64_t significand, int64_t exponent, double* out) {
  pthread_once(&pow10_once, pow10_init);
  double f = (double)significand;
  for (;;) {
    int64_t magnitude = exponent < 0 ? -exponent : exponent;
    if (magnitude <= 308) {
      if (exponent >= 0) {
        f *= pow10_table[magnitude];
        if (isinf(f)) return fail(p, "number out of range");
      } else {
        f /= pow10_table[magnitude];
      }
      break;
    }
    if (f == 0.0) break;
    if (exponent >= 0) return fail(p, "number out of range");
    f /= 1e308;
    exponent += 308;
  }
  *out = positive ? f : -f;
  return 0;
}

static bool digit_at(const parser* p) { return p->pos < p->n && p->s[p->pos] >= '0' && p->s[p->pos] <= '9'; }

/* Appends a digit unless the significand would overflow; then the digit is dropped (the caller
 * counts it in the exponent when it is before the decimal point). */
static bool push_digit(uint64_t* significand, unsigned digit) {
  if (*significand >= UINT64_MAX / 10 && (*significand > UINT64_MAX / 10 || digit > UINT64_MAX % 10)) return false;
  *significand = *significand * 10 + digit;
  return true;
}

static int parse_number(parser* p, tj_value* v) {
  bool positive = true;
  if (p->pos < p->n && p->s[p->pos] == '-') {
    positive = false;
    p->pos++;
  }
  if (!digit_at(p)) return fail(p, "bad number");
  uint64_t significand = 0;
  int64_t exponent = 0;
  bool is_int = true, overflowed = false;
  if (p->s[p->pos] == '0') {
    p->pos++;
    if (digit_at(p)) return fail(p, "bad number (leading zero)");
  } else {
    while (digit_at(p)) {
      if (overflowed || !push_digit(&significand, (unsigned)(p->s[p->pos] - '0'))) {
        overflowed = true;
        exponent++;
      }
      p->pos++;
    }
  }
  if (p->pos < p->n && p->s[p->pos] == '.') {
    is_int = false;
    p->pos++;
    if (!digit_at(p)) return fail(p, "bad number");
    while (digit_at(p)) {
      if (!overflowed && push_digit(&significand, (unsigned)(p->s[p->pos] - '0'))) exponent--;
      else overflowed = true;
      p->pos++;
    }
  }
  if (p->pos < p->n && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
    is_int = false;
    p->pos++;
    bool exp_positive = true;
    if (p->pos < p->n && (p->s[p->pos] == '+' || p->s[p->pos] == '-')) exp_positive = p->s[p->pos++] == '+';
    if (!digit_at(p)) return fail(p, "bad number");
    int64_t e = 0;
    bool exp_overflow = false;
    while (digit_at(p)) {
      if (e < 100000000) e = e * 10 + (p->s[p->pos] - '0');
      else exp_overflow = true;
      p->pos++;
    }
    if (exp_overflow) {
      /* serde_json: a huge negative exponent or a zero significand gives 0; else out of range */
      if (!exp_positive || significand == 0) {
        v->type = TJ_REAL;
        v->u.d = positive ? 0.0 : -0.0;
        return 0;
      }
      return fail(p, "number out of range");
    }
    exponent += exp_positive ? e : -e;
  }
  if (is_int && !overflowed && (positive ? significand <= (uint64_t)INT64_MAX : significand <= (uint64_t)INT64_MAX + 1)) {
    v->type = TJ_INT;
    v->u.i = positive ? (int64_t)significand : (int64_t)(0 - significand);
    return 0;
  }
  v->type = TJ_REAL;
  return f64_from_parts(p, positive, significand, exponent, &v->u.d);
}

static int literal(parser* p, const char* word, tj_type type, tj_value* v) {
  size_t n = strlen(word);
  if (p->n - p->pos < n || memcmp(p->s + p->pos, word, n) != 0) return fail(p, "unexpected character");
  p->pos += n;
  v->type = type;
  return 0;
}

/* Iterative parse: containers open frames; values go onto the stack until their container closes. */
typedef struct {
  size_t base; /* stack index of the first child */
  bool object;
} frame;

static int close_container(parser* p, frame f, tj_value* out) {
  size_t count = p->top - f.base;
  if (count > UINT32_MAX) return fail(p, "container too large");
  out->len = (uint32_t)count;
  if (f.object) {
    out->type = TJ_OBJECT;
    tj_member* m = count ? arena_alloc(p, count * sizeof *m) : NULL;
    if (count && !m) return fail(p, "out of memory");
    for (size_t i = 0; i < count; i++) {
      m[i].key = p->key_stack[f.base + i];
      m[i].key_len = p->key_len_stack[f.base + i];
      m[i].value = p->stack[f.base + i];
    }
    out->u.members = m;
  } else {
    out->type = TJ_ARRAY;
    tj_value* items = count ? arena_alloc(p, count * sizeof *items) : NULL;
    if (count && !items) return fail(p, "out of memory");
    if (count) memcpy(items, p->stack + f.base, count * sizeof *items);
    out->u.items = items;
  }
  p->top = f.base;
  return 0;
}

static int parse_document(parser* p, tj_value* root) {
  frame frames[MAX_DEPTH];
  size_t depth = 0;
  char* key = NULL;
  uint32_t key_len = 0;
  for (;;) {
    skip_space(p);
    if (depth > 0 && frames[depth - 1].object) {
      /* Expect a key (or the end of an empty object, handled below). */
      if (p->pos < p->n && p->s[p->pos] == '}' && p->top == frames[depth - 1].base) goto close;
      if (p->pos >= p->n || p->s[p->pos] != '"') return fail(p, "expected a string key");
      p->pos++;
      if (parse_string(p, &key, &key_len)) return 1;
      skip_space(p);
      if (p->pos >= p->n || p->s[p->pos] != ':') return fail(p, "expected ':'");
      p->pos++;
      skip_space(p);
    } else if (depth > 0 && p->pos < p->n && p->s[p->pos] == ']' && p->top == frames[depth - 1].base) {
      goto close;
    }
    if (p->pos >= p->n) return fail(p, "unexpected end of input");
    tj_value v = {0};
    char c = p->s[p->pos];
    if (c == '{' || c == '[') {
      if (depth == MAX_DEPTH) return fail(p, "nesting too deep");
      /* Remember the key of the container itself on the stack by pushing a placeholder. */
      if (depth > 0 && push(p, v, key, key_len)) return 1;
      frames[depth].base = p->top;
      frames[depth].object = c == '{';
      depth++;
      p->pos++;
      continue;
    }
    if (c == '"') {
      p->pos++;
      char* s;
      uint32_t n;
      if (parse_string(p, &s, &n)) return 1;
      v.type = TJ_STRING;
      v.u.s = s;
      v.len = n;
    } else if (c == 't') {
      if (literal(p, "true", TJ_TRUE, &v)) return 1;
    } else if (c == 'f') {
      if (literal(p, "false", TJ_FALSE, &v)) return 1;
    } else if (c == 'n') {
      if (literal(p, "null", TJ_NULL, &v)) return 1;
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      if (parse_number(p, &v)) return 1;
    } else {
      return fail(p, "unexpected character");
    }
    if (depth == 0) {
      *root = v;
      break;
    }
    if (push(p, v, key, key_len)) return 1;
  after_value:
    skip_space(p);
    if (p->pos >= p->n) return fail(p, "unexpected end of input");
    c = p->s[p->pos];
    if (c == ',') {
      p->pos++;
      skip_space(p);
      char next = p->pos < p->n ? p->s[p->pos] : 0;
      if (next == ']' || next == '}') return fail(p, "trailing comma");
      continue;
    }
  close:
    c = p->s[p->pos];
    if (c != (frames[depth - 1].object ? '}' : ']')) return fail(p, "expected ',' or a closing bracket");
    p->pos++;
    depth--;
    tj_value done = {0};
    if (close_container(p, frames[depth], &done)) return 1;
    if (depth == 0) {
      *root = done;
      break;
    }
    p->stack[p->top - 1].type = done.type; /* fill the placeholder pushed at opening */
    p->stack[p->top - 1].len = done.len;
    p->stack[p->top - 1].u = done.u;
    goto after_value;
  }
  skip_space(p);
  if (p->pos != p->n) return fail(p, "trailing characters after the document");
  return 0;
}

int tj_parse(tj_document* doc, const char* text, size_t length, const char* name) {
  parser p = {.s = text, .n = length, .name = name};
  doc->arena = NULL;
  doc->root.type = TJ_NULL;
  int bad = parse_document(&p, &doc->root);
  free(p.stack);
  free(p.key_stack);
  free(p.key_len_stack);
  doc->arena = p.arena;
  if (!bad) return 0;
  size_t line = 1, column = 1;
  for (size_t i = 0; i < p.pos && i < length; i++) {
    if (text[i] == '\n') {
      line++;
      column = 1;
    } else {
      column++;
    }
  }
  tj_free(doc);
  return util_error("%s: line %zu column %zu: %s", name, line, column, p.why ? p.why : "invalid JSON");
}

void tj_free(tj_document* doc) {
  tj_arena* a = doc->arena;
  while (a) {
    tj_arena* next = a->next;
    free(a);
    a = next;
  }
  doc->arena = NULL;
}

int tok_read_file(const char* path, char** data, size_t* length) {
  *data = NULL;
  FILE* f = fopen(path, "rb");
  if (!f) return tok_error("cannot open %s: %s", path, strerror(errno));
  int status = 0;
  char* buf = NULL;
  REQUIRE(fseek(f, 0, SEEK_END) == 0, "cannot read %s", path);
  long size = ftell(f);
  REQUIRE(size >= 0, "cannot read %s", path);
  REQUIRE(fseek(f, 0, SEEK_SET) == 0, "cannot read %s", path);
  buf = malloc((size_t)size + 1);
  REQUIRE(buf, "out of memory reading %s", path);
  REQUIRE(fread(buf, 1, (size_t)size, f) == (size_t)size, "cannot read %s", path);
  buf[size] = '\0';
  *data = buf;
  *length = (size_t)size;
  buf = NULL;
cleanup:
  free(buf);
  fclose(f);
  return status;
}

const tj_value* tj_get(const tj_value* object, const char* key) {
  if (!object || object->type != TJ_OBJECT) return NULL;
  size_t n = strlen(key);
  for (uint32_t i = 0; i < object->len; i++)
    if (object->u.members[i].key_len == n && memcmp(object->u.members[i].key, key, n) == 0)
      return &object->u.members[i].value;
  return NULL;
}

bool tj_is_null(const tj_value* v) { return !v || v->type == TJ_NULL; }

const char* tj_string(const tj_value* v) { return v && v->type == TJ_STRING ? v->u.s : NULL; }

bool tj_bool(const tj_value* v, bool fallback) {
  if (!v) return fallback;
  if (v->type == TJ_TRUE) return true;
  if (v->type == TJ_FALSE) return false;
  return fallback;
}
