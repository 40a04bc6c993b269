/* The WordPiece model: greedy longest-match-first from the start of the word, continuation pieces
 * carrying the "##" prefix; a word with an unmatched rest becomes the unknown token. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/internal.h"
#include "util/error.h"

int tok_wordpiece_tokenize(const tok_model* m, const char* w, size_t n, tok_ids* out) {
  if (m->unk_id < 0) return tok_error("WordPiece needs an unk_token that is in the vocabulary");
  size_t chars = 0;
  for (size_t i = 0; i < n; i++) chars += ((unsigned char)w[i] & 0xC0) != 0x80;
  if (chars > m->max_input_chars_per_word) return tok_ids_push(out, m->unk_id);
  const char* prefix = m->continuing_subword_prefix ? m->continuing_subword_prefix : "";
  size_t prefix_len = strlen(prefix);
  char* buf = malloc(prefix_len + n + 1);
  if (!buf) return tok_error("out of memory (WordPiece)");
  memcpy(buf, prefix, prefix_len);
  size_t first = out->size, start = 0;
  int status = 0;
  while (start < n) {
    size_t end = n;
    int32_t id = -1;
    while (start < end) {
      memcpy(buf + prefix_len, w + start, end - start);
      const char* key = start > 0 ? buf : buf + prefix_len;
      size_t key_len = end - start + (start > 0 ? prefix_len : 0);
      if (tok_strmap_get(&m->vocab, key, key_len, &id)) break;
      id = -1;
      do end--;
      while (end > start && ((unsigned char)w[end] & 0xC0) == 0x80);
    }
    if (id < 0) {
      out->size = first;
      status = tok_ids_push(out, m->unk_id);
      break;
    }
    if ((status = tok_ids_push(out, id))) break;
    start = end;
  }
  free(buf);
  return status;
}
