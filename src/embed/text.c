/* The text the tokenizer gets: prompt + text as sentence-transformers 6 builds it (no
 * stripping, unlike versions before 6), lower-cased when an older sentence_bert_config.json says
 * do_lower_case (sentence-transformers 6 puts a Lowercase normalizer into tokenizer.json instead). */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "embed/embed.h"

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
  if (!m->lower_case) return joined;
  char* lowered = lower_case(joined, np + nt);
  free(joined);
  return lowered;
}
