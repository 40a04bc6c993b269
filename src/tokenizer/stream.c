/* Streaming detokenizer: decodes a sliding window of ids and emits only text that is final, so
 * a character split over several byte tokens comes out whole (as tokenizers' DecodeStream). */
#include <stdlib.h>
#include <string.h>

#include "mlxc/tokenizer.h"
#include "tokenizer/internal.h"

struct mlxc_tokenizer_stream {
  const mlxc_tokenizer* tok;
  bool skip_special;
  tok_ids ids;         /* the window: ids from prefix_index on are not yet emitted */
  size_t prefix_index;
  strbuf prefix;       /* decoding of ids[0 .. prefix_index) */
  strbuf text;         /* the last decoding, and what push returns */
  strbuf emitted;
};

int mlxc_tokenizer_stream_new(mlxc_tokenizer_stream** out, const mlxc_tokenizer* tok, bool skip_special_tokens) {
  if (!out || !tok) return tok_error("mlxc_tokenizer_stream_new: NULL argument");
  *out = calloc(1, sizeof **out);
  if (!*out) return tok_error("out of memory");
  (*out)->tok = tok;
  (*out)->skip_special = skip_special_tokens;
  return 0;
}

void mlxc_tokenizer_stream_free(mlxc_tokenizer_stream* s) {
  if (!s) return;
  free(s->ids.data);
  strbuf_free(&s->prefix);
  strbuf_free(&s->text);
  strbuf_free(&s->emitted);
  free(s);
}

static bool ends_with_replacement(const strbuf* sb) {
  return sb->length >= 3 && !memcmp(sb->data + sb->length - 3, "\xEF\xBF\xBD", 3);
}

/* Emits text[prefix.length ..) (or from the last character boundary both decodings share). */
static void emit_new_text(mlxc_tokenizer_stream* s) {
  size_t common = 0;
  if (s->text.length >= s->prefix.length && !memcmp(s->text.data, s->prefix.data ? s->prefix.data : "", s->prefix.length)) {
    common = s->prefix.length;
  } else {
    while (common < s->prefix.length && common < s->text.length && s->text.data[common] == s->prefix.data[common]) common++;
    while (common > 0 && ((unsigned char)s->text.data[common] & 0xC0) == 0x80) common--;
  }
  s->emitted.length = 0;
  strbuf_append(&s->emitted, s->text.data + common, s->text.length - common);
}

int mlxc_tokenizer_stream_push(mlxc_tokenizer_stream* s, int32_t id, const char** text, size_t* length) {
  if (!s || !text) return tok_error("mlxc_tokenizer_stream_push: NULL argument");
  *text = "";
  if (length) *length = 0;
  if (tok_ids_push(&s->ids, id)) return 1;
  s->text.length = 0;
  if (tok_decode_to(s->tok, s->ids.data, s->ids.size, s->skip_special, &s->text)) return 1;
  if (s->text.length <= s->prefix.length || ends_with_replacement(&s->text)) return 0;
  emit_new_text(s);
  /* Keep the ids after the old prefix as context; they are the new prefix. */
  size_t keep_from = s->prefix_index;
  size_t new_prefix_index = s->ids.size - keep_from;
  memmove(s->ids.data, s->ids.data + keep_from, new_prefix_index * sizeof *s->ids.data);
  s->ids.size = new_prefix_index;
  s->prefix.length = 0;
  if (tok_decode_to(s->tok, s->ids.data, s->ids.size, s->skip_special, &s->prefix)) return 1;
  s->prefix_index = new_prefix_index;
  if (s->emitted.failed) return tok_error("out of memory (stream)");
  *text = s->emitted.data ? s->emitted.data : "";
  if (length) *length = s->emitted.length;
  return 0;
}

int mlxc_tokenizer_stream_finish(mlxc_tokenizer_stream* s, const char** text, size_t* length) {
  if (!s || !text) return tok_error("mlxc_tokenizer_stream_finish: NULL argument");
  *text = "";
  if (length) *length = 0;
  s->text.length = 0;
  if (tok_decode_to(s->tok, s->ids.data, s->ids.size, s->skip_special, &s->text)) return 1;
  if (s->text.length > s->prefix.length) {
    emit_new_text(s);
    if (s->emitted.failed) return tok_error("out of memory (stream)");
    *text = s->emitted.data;
    if (length) *length = s->emitted.length;
  }
  s->ids.size = 0;
  s->prefix_index = 0;
  s->prefix.length = 0;
  return 0;
}
