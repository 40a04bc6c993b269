/* The text sentence-transformers tokenizes: prompt + text, stripped of surrounding whitespace
 * (Python's str.strip) and lower-cased when sentence_bert_config.json says do_lower_case. */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "embed/embed.h"
#include "util/error.h"

/* Python's str.isspace. */
static bool is_space(utf8proc_int32_t c) {
  return (c >= 9 && c <= 13) || (c >= 28 && c <= 32) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

/* Bytes of s[0..n) without leading and trailing whitespace: [*start, *end). */
static void strip(const char* s, size_t n, size_t* start, size_t* end) {
  size_t i = 0, last = 0;
  bool leading = true;
  *start = *end = 0;
  while (i < n) {
    utf8proc_int32_t c;
    utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t*)s + i, (utf8proc_ssize_t)(n - i), &c);
    if (k <= 0) k = 1, c = -1; /* invalid byte: not whitespace */
    if (!is_space(c)) {
      if (leading) *start = i;
      leading = false;
      last = i + (size_t)k;
    }
    i += (size_t)k;
  }
  *end = leading ? *start : last;
}

static char* lower_case(const char* s, size_t n) {
  char* out = malloc(4 * n + 1); /* a lower-case code point never needs more than 4 bytes */
  if (!out) return NULL;
  size_t i = 0, o = 0;
  while (i < n) {
    utf8proc_int32_t c;
    utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t*)s + i, (utf8proc_ssize_t)(n - i), &c);
    if (k <= 0) { /* keep an invalid byte as it is */
      out[o++] = s[i++];
      continue;
    }
    o += (size_t)utf8proc_encode_char(utf8proc_tolower(c), (utf8proc_uint8_t*)out + o);
    i += (size_t)k;
  }
  out[o] = '\0';
  return out;
}

char* embed_prepare_text(const mlxc_embed_model* m, const char* prompt, const char* text) {
  size_t np = prompt ? strlen(prompt) : 0, nt = strlen(text);
  char* joined = malloc(np + nt + 1);
  if (!joined) return NULL;
  if (np) memcpy(joined, prompt, np);
  memcpy(joined + np, text, nt + 1);
  size_t start, end;
  strip(joined, np + nt, &start, &end);
  memmove(joined, joined + start, end - start);
  joined[end - start] = '\0';
  if (!m->lower_case) return joined;
  char* lowered = lower_case(joined, end - start);
  free(joined);
  return lowered;
}
