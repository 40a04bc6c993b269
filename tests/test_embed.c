/* Embeddings against sentence-transformers: the tiny random-weight checkpoints of
 * tests/fixtures/embed (scripts/gen_embed_fixtures.py, sentence-transformers 6.0.1 /
 * transformers 5.17 on the CPU in float32) must give every sentence's embedding with cosine
 * similarity >= 0.9999 to the reference: short and long sentences (beyond max_seq_length:
 * truncation) in mixed batches, for every architecture, pooling mode, Dense stack and prompt
 * (by name, by text, the default one), and Matryoshka truncation. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mlx/c/mlx.h"
#include "mlxc/embed.h"
#include "mlxc/error.h"
#include "test_util.h"

static const char* const MODELS[] = {
    "bert-mean-normalized", "bert-cls", "bert-max",
    "bert-pool-cls-lower", "bert-pool-max", "bert-pool-mean-sqrt-len", "bert-pool-weightedmean",
    "bert-pool-lasttoken", "bert-pool-mean-noprompt", "bert-pool-mean-cls",
    "roberta", "xlm-roberta", "distilbert", "modernbert", "embeddinggemma", "qwen3-embedding",
};

/* Parameters for one reference tensor: "embeddings" (defaults) or a key of reference.json's
 * "encodes" (the sentence-transformers encode() arguments it was made with). */
static mlxc_embed_params params_for(json_t* encodes, const char* key, size_t batch) {
  mlxc_embed_params p = mlxc_embed_default_params();
  p.batch_size = batch;
  json_t* kw = json_object_get(encodes, key);
  p.prompt_name = json_string_value(json_object_get(kw, "prompt_name"));
  p.prompt = json_string_value(json_object_get(kw, "prompt"));
  json_t* dim = json_object_get(kw, "truncate_dim");
  if (json_is_integer(dim)) p.dim = (size_t)json_integer_value(dim);
  return p;
}

static void check_reference(const mlxc_embed_model* model, const char* name, const char* key, json_t* encodes,
                            const char* const* texts, size_t n, mlx_map_string_to_array tensors) {
  mlx_array want = mlx_array_new();
  CHECK(mlx_map_string_to_array_get(&want, tensors, key) == 0);
  const float* w = mlx_array_data_float32(want);
  size_t batches[2] = {5, 3};
  for (int b = 0; w && b < 2; b++) {
    mlxc_embed_params p = params_for(encodes, key, batches[b]);
    float* v = NULL;
    size_t d = 0;
    CHECK_MSG(mlxc_embed_encode(model, texts, n, p, &v, &d) == 0, "%s %s: %s", name, key, mlxc_last_error());
    CHECK_EQ_INT(d, mlx_array_dim(want, 1));
    for (size_t i = 0; v && d == (size_t)mlx_array_dim(want, 1) && i < n; i++) {
      float c = mlxc_embed_cosine(v + i * d, w + i * d, d);
      CHECK_MSG(c >= 0.9999f, "%s %s batch %zu sentence %zu (\"%s\"): cosine %f", name, key, batches[b], i, texts[i], c);
    }
    free(v);
  }
  mlx_array_free(want);
}

static void check_model(const char* name) {
  char dir[1024], path[1200];
  snprintf(dir, sizeof dir, "%s/tests/fixtures/embed/%s", test_source_dir(), name);
  snprintf(path, sizeof path, "%s/reference.json", dir);
  json_t* ref = json_load_file(path, 0, NULL);
  CHECK_MSG(ref != NULL, "%s: no reference.json", name);
  if (!ref) return;
  json_t* sentences = json_object_get(ref, "sentences");
  size_t n = json_array_size(sentences);
  const char* texts[64];
  for (size_t i = 0; i < n && i < 64; i++) texts[i] = json_string_value(json_array_get(sentences, i));
  mlxc_embed_model* model = NULL;
  if (mlxc_embed_load(&model, dir, mlx_default_cpu_stream_new())) {
    CHECK_MSG(0, "%s: %s", name, mlxc_last_error());
    json_decref(ref);
    return;
  }
  mlx_map_string_to_array tensors = mlx_map_string_to_array_new();
  mlx_map_string_to_string meta = mlx_map_string_to_string_new();
  snprintf(path, sizeof path, "%s/reference.safetensors", dir);
  CHECK(mlx_load_safetensors(&tensors, &meta, path, mlx_default_cpu_stream_new()) == 0);
  json_t* encodes = json_object_get(ref, "encodes");
  check_reference(model, name, "embeddings", encodes, texts, n, tensors);
  const char* key;
  json_t* value;
  json_object_foreach(encodes, key, value) check_reference(model, name, key, encodes, texts, n, tensors);
  mlx_map_string_to_array_free(tensors);
  mlx_map_string_to_string_free(meta);
  mlxc_embed_free(model);
  json_decref(ref);
}

TEST(test_embeddings_match_sentence_transformers) {
  for (size_t i = 0; i < sizeof MODELS / sizeof MODELS[0]; i++) check_model(MODELS[i]);
}

/* Half-precision computation (mlxc_embed_load_dtype): every sentence's embedding close to the
 * float32 reference of sentence-transformers, for each architecture; a non-float dtype refused. */
TEST(test_half_precision_embeddings) {
  const mlx_dtype dtypes[2] = {MLX_FLOAT16, MLX_BFLOAT16};
  const float floors[2] = {0.999f, 0.995f};
  float worst[2] = {1.0f, 1.0f};
  for (size_t m = 0; m < sizeof MODELS / sizeof MODELS[0]; m++) {
    char dir[1024], path[1200];
    snprintf(dir, sizeof dir, "%s/tests/fixtures/embed/%s", test_source_dir(), MODELS[m]);
    snprintf(path, sizeof path, "%s/reference.json", dir);
    json_t* ref = json_load_file(path, 0, NULL);
    if (!ref) continue;
    json_t* sentences = json_object_get(ref, "sentences");
    size_t n = json_array_size(sentences);
    const char* texts[64];
    for (size_t i = 0; i < n && i < 64; i++) texts[i] = json_string_value(json_array_get(sentences, i));
    mlx_map_string_to_array tensors = mlx_map_string_to_array_new();
    mlx_map_string_to_string meta = mlx_map_string_to_string_new();
    snprintf(path, sizeof path, "%s/reference.safetensors", dir);
    mlx_array want = mlx_array_new();
    CHECK(mlx_load_safetensors(&tensors, &meta, path, mlx_default_cpu_stream_new()) == 0);
    CHECK(mlx_map_string_to_array_get(&want, tensors, "embeddings") == 0);
    const float* w = mlx_array_data_float32(want);
    for (int d = 0; d < 2 && w; d++) {
      mlxc_embed_model* model = NULL;
      if (mlxc_embed_load_dtype(&model, dir, mlx_default_cpu_stream_new(), dtypes[d])) {
        CHECK_MSG(0, "%s: %s", MODELS[m], mlxc_last_error());
        continue;
      }
      mlxc_embed_params p = params_for(json_object_get(ref, "encodes"), "embeddings", 4);
      float* v = NULL;
      size_t dim = 0;
      CHECK_MSG(mlxc_embed_encode(model, texts, n, p, &v, &dim) == 0, "%s: %s", MODELS[m], mlxc_last_error());
      for (size_t i = 0; v && dim == (size_t)mlx_array_dim(want, 1) && i < n; i++) {
        float c = mlxc_embed_cosine(v + i * dim, w + i * dim, dim);
        if (c < worst[d]) worst[d] = c;
        CHECK_MSG(c >= floors[d], "%s %s sentence %zu: cosine %f", MODELS[m], d ? "bfloat16" : "float16", i, c);
      }
      free(v);
      mlxc_embed_free(model);
    }
    mlx_array_free(want);
    mlx_map_string_to_array_free(tensors);
    mlx_map_string_to_string_free(meta);
    json_decref(ref);
  }
  printf("  lowest cosine to the float32 reference: float16 %.6f, bfloat16 %.6f\n", worst[0], worst[1]);
  char dir[1024];
  snprintf(dir, sizeof dir, "%s/tests/fixtures/embed/bert-cls", test_source_dir());
  mlxc_embed_model* model = NULL;
  bool quiet = mlxc_set_errors_quiet(true);
  CHECK(mlxc_embed_load_dtype(&model, dir, mlx_default_cpu_stream_new(), MLX_INT32) != 0);
  CHECK(model == NULL && strstr(mlxc_last_error(), "float32, float16 or bfloat16") != NULL);
  mlxc_set_errors_quiet(quiet);
}

TEST(test_prompts_are_listed_and_checked) {
  char dir[1024];
  snprintf(dir, sizeof dir, "%s/tests/fixtures/embed/embeddinggemma", test_source_dir());
  mlxc_embed_model* model = NULL;
  CHECK_MSG(mlxc_embed_load(&model, dir, mlx_default_cpu_stream_new()) == 0, "%s", mlxc_last_error());
  if (!model) return;
  CHECK_EQ_INT(mlxc_embed_prompt_count(model), 3);
  CHECK(mlxc_embed_default_prompt_name(model) && !strcmp(mlxc_embed_default_prompt_name(model), "document"));
  CHECK(mlxc_embed_prompt_text(model, "query") && !strcmp(mlxc_embed_prompt_text(model, "query"), "task: search result | query: "));
  CHECK(mlxc_embed_prompt_text(model, "nope") == NULL);
  const char* texts[1] = {"hello"};
  float *a = NULL, *b = NULL;
  size_t d = 0;
  /* The default prompt by name equals leaving it to the model; no_default_prompt differs. */
  mlxc_embed_params p = mlxc_embed_default_params();
  CHECK(mlxc_embed_encode(model, texts, 1, p, &a, &d) == 0);
  p.prompt_name = "document";
  CHECK(mlxc_embed_encode(model, texts, 1, p, &b, &d) == 0);
  if (a && b) CHECK_NEAR(mlxc_embed_cosine(a, b, d), 1.0, 1e-6);
  free(b);
  b = NULL;
  p.prompt_name = NULL;
  p.no_default_prompt = true;
  CHECK(mlxc_embed_encode(model, texts, 1, p, &b, &d) == 0);
  if (a && b) CHECK(mlxc_embed_cosine(a, b, d) < 0.9999f);
  free(a);
  free(b);
  mlxc_set_errors_quiet(1);
  p.prompt_name = "nope";
  p.no_default_prompt = false;
  CHECK(mlxc_embed_encode(model, texts, 1, p, &a, &d) != 0);
  mlxc_set_errors_quiet(0);
  mlxc_embed_free(model);
}

TEST(test_matryoshka_and_errors) {
  char dir[1024];
  snprintf(dir, sizeof dir, "%s/tests/fixtures/embed/bert-mean-normalized", test_source_dir());
  mlxc_embed_model* model = NULL;
  CHECK(mlxc_embed_load(&model, dir, mlx_default_cpu_stream_new()) == 0);
  const char* texts[2] = {"one", "two words"};
  mlxc_embed_params p = mlxc_embed_default_params();
  p.dim = 16;
  float* v = NULL;
  size_t d = 0;
  CHECK(mlxc_embed_encode(model, texts, 2, p, &v, &d) == 0);
  CHECK_EQ_INT(d, 16);
  double norm = 0;
  for (size_t k = 0; v && k < d; k++) norm += v[k] * v[k];
  CHECK_NEAR(norm, 1.0, 1e-5); /* truncated, then normalized */
  free(v);
  mlxc_set_errors_quiet(1);
  p.dim = 1000;
  CHECK(mlxc_embed_encode(model, texts, 2, p, &v, &d) != 0);
  mlxc_embed_model* none = NULL;
  CHECK(mlxc_embed_load(&none, "/nonexistent", mlx_default_cpu_stream_new()) != 0);
  snprintf(dir, sizeof dir, "%s/tests/fixtures/lm/phi3", test_source_dir());
  CHECK(mlxc_embed_load(&none, dir, mlx_default_cpu_stream_new()) != 0); /* not an encoder */
  mlxc_set_errors_quiet(0);
  mlxc_embed_free(model);
}

/* Runs `mlxc embed ARGS` and returns its stdout (static buffer), or NULL when it failed. */
static const char* run_cli(const char* args) {
  static char out[8192];
  const char* bin = getenv("MLXC_BINARY_DIR");
  char cmd[4096];
  snprintf(cmd, sizeof cmd, "'%s/mlxc' embed --model '%s/tests/fixtures/embed/embeddinggemma' %s", bin,
           test_source_dir(), args);
  FILE* p = popen(cmd, "r");
  if (!p) return NULL;
  size_t n = fread(out, 1, sizeof out - 1, p);
  out[n] = '\0';
  return pclose(p) == 0 ? out : NULL;
}

/* The CLI: texts as bare arguments or with --text give the same vectors, one JSON array per line,
 * equal to the library's. */
TEST(test_cli_texts) {
  const char* bin = getenv("MLXC_BINARY_DIR");
  char exe[1024];
  snprintf(exe, sizeof exe, "%s/mlxc", bin ? bin : "");
  if (!bin || access(exe, X_OK) != 0) { /* MLXC_BINARY_DIR is set by CTest */
    printf("  (CLI test skipped: %s missing)\n", exe);
    return;
  }
  const char* bare = run_cli("--dim 4 'what is mlx' 'a second text'");
  CHECK(bare != NULL);
  if (!bare) return;
  char first[8192];
  snprintf(first, sizeof first, "%s", bare);
  const char* flagged = run_cli("--dim 4 --text 'what is mlx' --text 'a second text'");
  CHECK(flagged && !strcmp(first, flagged));
  json_error_t err;
  json_t* line = json_loadb(first, strcspn(first, "\n"), 0, &err);
  CHECK(json_is_array(line) && json_array_size(line) == 4);
  char dir[1024];
  snprintf(dir, sizeof dir, "%s/tests/fixtures/embed/embeddinggemma", test_source_dir());
  mlxc_embed_model* model = NULL;
  CHECK(mlxc_embed_load(&model, dir, mlx_default_cpu_stream_new()) == 0);
  const char* texts[1] = {"what is mlx"};
  mlxc_embed_params p = mlxc_embed_default_params();
  p.dim = 4;
  float* v = NULL;
  size_t d = 0;
  CHECK(model && mlxc_embed_encode(model, texts, 1, p, &v, &d) == 0 && d == 4);
  for (size_t i = 0; v && line && i < d && i < json_array_size(line); i++)
    CHECK(fabs(json_number_value(json_array_get(line, i)) - v[i]) < 1e-5);
  free(v);
  mlxc_embed_free(model);
  CHECK(run_cli("--dim 4 --no-such-option x 2>/dev/null") == NULL);
  /* --dtype: a half-precision computation gives nearly the same vector; other names are refused. */
  const char* half = run_cli("--dim 4 --dtype bfloat16 'what is mlx'");
  json_t* hline = half ? json_loadb(half, strcspn(half, "\n"), 0, &err) : NULL;
  CHECK(json_is_array(hline) && json_array_size(hline) == 4);
  for (size_t i = 0; hline && line && i < 4 && i < json_array_size(hline); i++)
    CHECK(fabs(json_number_value(json_array_get(hline, i)) - json_number_value(json_array_get(line, i))) < 0.05);
  json_decref(hline);
  CHECK(run_cli("--dim 4 --dtype int8 'what is mlx' 2>/dev/null") == NULL);
  json_decref(line);
}

int main(void) {
  RUN(test_embeddings_match_sentence_transformers);
  RUN(test_half_precision_embeddings);
  RUN(test_cli_texts);
  RUN(test_prompts_are_listed_and_checked);
  RUN(test_matryoshka_and_errors);
  return TEST_SUMMARY();
}
