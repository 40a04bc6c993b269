/* libFuzzer target: arbitrary bytes as tokenizer.json. Loading must fail cleanly or give a
 * tokenizer that encodes, decodes and streams a few texts without crashing. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mlxc/error.h"
#include "mlxc/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static int quiet;
  if (!quiet) quiet = (mlxc_set_errors_quiet(1), 1);
  mlxc_tokenizer* tok;
  if (mlxc_tokenizer_load_json(&tok, (const char*)data, size, "fuzz.json")) return 0;
  static const char* texts[] = {"", "Hello world!", " a  b\tc\n", "caf\xC3\xA9 \xE4\xB8\xAD\xF0\x9F\x98\x80 123",
                                "<s>x</s><|endoftext|>"};
  for (size_t t = 0; t < sizeof texts / sizeof texts[0]; t++) {
    int32_t* ids;
    size_t n;
    if (mlxc_tokenizer_encode(tok, texts[t], strlen(texts[t]), t % 2, &ids, &n)) continue;
    char* out;
    if (!mlxc_tokenizer_decode(tok, ids, n, t % 2, &out, NULL)) free(out);
    mlxc_tokenizer_stream* s;
    if (!mlxc_tokenizer_stream_new(&s, tok, false)) {
      const char* piece;
      size_t len;
      for (size_t i = 0; i < n; i++) mlxc_tokenizer_stream_push(s, ids[i], &piece, &len);
      mlxc_tokenizer_stream_finish(s, &piece, &len);
      mlxc_tokenizer_stream_free(s);
    }
    free(ids);
  }
  mlxc_tokenizer_free(tok);
  return 0;
}
