/* mlxc tokenize / detokenize: text to ids (a JSON array) and ids back to text, with the tokenizer
 * of a model folder (tokenizer.json + tokenizer_config.json, or GPT-2's encoder.json + vocab.bpe). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "mlxc/error.h"
#include "mlxc/tokenizer.h"

static int usage_tokenize(void) {
  fprintf(stderr,
          "usage: mlxc tokenize --model DIR [--no-special] [--pair TEXT2] [--max-length N]\n"
          "                     [--truncation longest_first|only_first|only_second] [--type-ids] TEXT\n"
          "  prints the ids as a JSON array; --type-ids adds a second line with the type ids\n");
  return 2;
}

static int usage_detokenize(void) {
  fprintf(stderr, "usage: mlxc detokenize --model DIR [--skip-special] ID...\n");
  return 2;
}

static void print_array(const int32_t* ids, const uint32_t* type_ids, size_t n) {
  printf("[");
  for (size_t i = 0; i < n; i++) printf(i ? ", %ld" : "%ld", ids ? (long)ids[i] : (long)type_ids[i]);
  printf("]\n");
}

int cmd_tokenize(int argc, char** argv) {
  const char *model = NULL, *text = NULL, *pair = NULL;
  bool type_ids = false;
  mlxc_tokenizer_encode_params params = mlxc_tokenizer_encode_default_params();
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--model") && i + 1 < argc) {
      model = argv[++i];
    } else if (!strcmp(argv[i], "--no-special")) {
      params.add_special_tokens = false;
    } else if (!strcmp(argv[i], "--pair") && i + 1 < argc) {
      pair = argv[++i];
    } else if (!strcmp(argv[i], "--type-ids")) {
      type_ids = true;
    } else if (!strcmp(argv[i], "--max-length") && i + 1 < argc) {
      char* end;
      errno = 0;
      long v = strtol(argv[++i], &end, 10);
      if (errno || *end || v <= 0) return usage_tokenize();
      params.max_length = (size_t)v;
    } else if (!strcmp(argv[i], "--truncation") && i + 1 < argc) {
      const char* s = argv[++i];
      if (!strcmp(s, "longest_first")) params.strategy = MLXC_TRUNCATE_LONGEST_FIRST;
      else if (!strcmp(s, "only_first")) params.strategy = MLXC_TRUNCATE_ONLY_FIRST;
      else if (!strcmp(s, "only_second")) params.strategy = MLXC_TRUNCATE_ONLY_SECOND;
      else return usage_tokenize();
    } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
      return usage_tokenize() - 2;
    } else if (!text) {
      text = argv[i];
    } else {
      return usage_tokenize();
    }
  }
  if (!model || !text) return usage_tokenize();
  mlxc_tokenizer* tok;
  if (mlxc_tokenizer_load(&tok, model)) return 1; /* the message is already on stderr */
  mlxc_tokenizer_encoding e;
  if (mlxc_tokenizer_encode_pair(tok, text, strlen(text), pair, pair ? strlen(pair) : 0, params, &e)) {
    mlxc_tokenizer_free(tok); /* the message is already on stderr */
    return 1;
  }
  print_array(e.ids, NULL, e.n);
  if (type_ids) print_array(NULL, e.type_ids, e.n);
  mlxc_tokenizer_encoding_free(&e);
  mlxc_tokenizer_free(tok);
  return 0;
}

int cmd_detokenize(int argc, char** argv) {
  const char* model = NULL;
  bool skip = false;
  int32_t* ids = calloc((size_t)argc + 1, sizeof *ids);
  size_t n = 0;
  if (!ids) {
    fprintf(stderr, "mlxc: out of memory\n");
    return 1;
  }
  int status = 0;
  for (int i = 1; i < argc && !status; i++) {
    if (!strcmp(argv[i], "--model") && i + 1 < argc) {
      model = argv[++i];
    } else if (!strcmp(argv[i], "--skip-special")) {
      skip = true;
    } else {
      char* end;
      errno = 0;
      long v = strtol(argv[i], &end, 10);
      if (errno || *end || end == argv[i] || v < 0 || v > INT32_MAX) {
        fprintf(stderr, "mlxc detokenize: '%s' is not a token id\n", argv[i]);
        status = 2;
      }
      ids[n++] = (int32_t)v;
    }
  }
  if (!status && !model) status = usage_detokenize();
  mlxc_tokenizer* tok = NULL;
  if (!status && mlxc_tokenizer_load(&tok, model)) status = 1;
  char* text = NULL;
  size_t len = 0;
  if (!status && mlxc_tokenizer_decode(tok, ids, n, skip, &text, &len)) status = 1;
  if (!status) {
    fwrite(text, 1, len, stdout);
    printf("\n");
  }
  free(text);
  free(ids);
  mlxc_tokenizer_free(tok);
  return status;
}
