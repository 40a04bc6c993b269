/* Speculative decoding: with any draft, greedy output equals plain greedy decoding — on the
 * llama fixture that is transformers' 32-token continuation (tests/fixtures/lm), on the shipped
 * model (converted to float32, drafted by its own 4-bit conversion) 64 tokens of mlxc_lm_generate;
 * a draft equal to the model has every proposal accepted; sampling with a seed draws the same
 * tokens as plain sampling; mismatched or unrewindable models are refused. */
#include <jansson.h>
#include <stdlib.h>
#include <unistd.h>

#include "mlx/c/mlx.h"
#include "mlxc/error.h"
#include "mlxc/lm.h"
#include "mlxc/tokenizer.h"
#include "test_util.h"

static mlx_stream cpu;

static mlxc_lm_model* load(const char* relative) {
  char dir[1024];
  snprintf(dir, sizeof dir, "%s/%s", test_source_dir(), relative);
  mlxc_lm_model* m = NULL;
  CHECK_MSG(mlxc_lm_load(&m, dir, cpu) == 0, "%s: %s", relative, mlxc_last_error());
  return m;
}

/* Generates with fresh sessions: plainly when draft is NULL, else speculatively. */
static int run(mlxc_lm_model* m, mlxc_lm_model* draft, const int32_t* ids, size_t n, int k,
               const mlxc_lm_generate_params* p, mlxc_lm_generation* out) {
  mlxc_lm_session *s = NULL, *d = NULL;
  int status = mlxc_lm_session_new(&s, m);
  if (!status && draft) status = mlxc_lm_session_new(&d, draft);
  if (!status) status = draft ? mlxc_lm_generate_speculative(s, d, ids, n, k, p, out) : mlxc_lm_generate(s, ids, n, p, out);
  if (!status && draft) CHECK_EQ_INT(mlxc_lm_session_length(s), mlxc_lm_session_length(d));
  mlxc_lm_session_free(s);
  mlxc_lm_session_free(d);
  return status;
}

static void check_same_tokens(const mlxc_lm_generation* a, const mlxc_lm_generation* b, const char* what) {
  CHECK_MSG(a->n_ids == b->n_ids, "%s: %zu tokens vs %zu", what, a->n_ids, b->n_ids);
  for (size_t i = 0; i < a->n_ids && i < b->n_ids; i++)
    CHECK_MSG(a->ids[i] == b->ids[i], "%s: token %zu is %d, expected %d", what, i, a->ids[i], b->ids[i]);
}

TEST(test_greedy_speculative_matches_transformers_with_a_poor_draft) {
  mlxc_lm_model *m = load("tests/fixtures/lm/llama"), *draft = load("tests/fixtures/lm/qwen3");
  char path[1200];
  snprintf(path, sizeof path, "%s/tests/fixtures/lm/llama/reference.json", test_source_dir());
  json_t* expected = json_load_file(path, 0, NULL);
  json_t* cont = json_array_get(json_object_get(expected, "greedy_continuations"), 1);
  int32_t prompt[11];
  mlx_map_string_to_array ref = mlx_map_string_to_array_new();
  mlx_map_string_to_string meta = mlx_map_string_to_string_new();
  mlx_array prompt_array = mlx_array_new();
  snprintf(path, sizeof path, "%s/tests/fixtures/lm/llama/reference.safetensors", test_source_dir());
  CHECK(mlx_load_safetensors(&ref, &meta, path, cpu) == 0);
  CHECK(mlx_map_string_to_array_get(&prompt_array, ref, "prompt_1") == 0 && mlx_array_size(prompt_array) == 11);
  memcpy(prompt, mlx_array_data_int32(prompt_array), sizeof prompt);
  for (int k = 1; m && draft && cont && k <= 4; k++) {
    mlxc_lm_generate_params p = mlxc_lm_generate_default_params();
    p.max_tokens = 32;
    mlxc_lm_generation gen;
    CHECK_MSG(run(m, draft, prompt, 11, k, &p, &gen) == 0, "%s", mlxc_last_error());
    CHECK_EQ_INT(gen.n_ids, json_array_size(cont));
    for (size_t i = 0; i < gen.n_ids && i < json_array_size(cont); i++)
      CHECK_MSG(gen.ids[i] == json_integer_value(json_array_get(cont, i)), "k %d: token %zu is %d, expected %lld", k, i,
                gen.ids[i], json_integer_value(json_array_get(cont, i)));
    CHECK(gen.draft_tokens > 0 && gen.draft_accepted < gen.draft_tokens);
    mlxc_lm_generation_free(&gen);
  }
  mlx_array_free(prompt_array);
  mlx_map_string_to_array_free(ref);
  mlx_map_string_to_string_free(meta);
  json_decref(expected);
  mlxc_lm_free(m);
  mlxc_lm_free(draft);
}

/* The shipped model in float32 (main) and 4-bit (draft), converted into a temporary folder. */
static char tmp[] = "/tmp/mlxc-spec-XXXXXX";
static char f32_dir[64], q4_dir[64];

static void remove_folder(const char* dir) {
  const char* files[] = {"model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json",
                         "generation_config.json", "chat_template.jinja", "special_tokens_map.json"};
  char path[128];
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, files[i]);
    unlink(path);
  }
  rmdir(dir);
}

TEST(test_shipped_model_with_its_4bit_draft) {
  char shipped[1024];
  snprintf(shipped, sizeof shipped, "%s/models/kjv-llama-7m", test_source_dir());
  CHECK(mkdtemp(tmp) != NULL);
  snprintf(f32_dir, sizeof f32_dir, "%s/f32", tmp);
  snprintf(q4_dir, sizeof q4_dir, "%s/q4", tmp);
  mlxc_lm_convert_params f32 = {.dtype_name = "float32", .dtype = MLX_FLOAT32};
  mlxc_lm_convert_params q4 = {.quantize = true, .bits = 4, .group_size = 64};
  CHECK_MSG(mlxc_lm_convert(shipped, f32_dir, &f32) == 0, "%s", mlxc_last_error());
  CHECK_MSG(mlxc_lm_convert(shipped, q4_dir, &q4) == 0, "%s", mlxc_last_error());
  mlxc_lm_model *m = NULL, *draft = NULL;
  mlxc_tokenizer* tok = NULL;
  CHECK(mlxc_lm_load(&m, f32_dir, cpu) == 0 && mlxc_lm_load(&draft, q4_dir, cpu) == 0);
  CHECK(mlxc_tokenizer_load(&tok, shipped) == 0);
  const char* text = "And God said, Let there be light: and";
  int32_t* ids = NULL;
  size_t n = 0;
  if (m && draft && tok && mlxc_tokenizer_encode(tok, text, strlen(text), true, &ids, &n) == 0) {
    mlxc_lm_generate_params p = mlxc_lm_generate_default_params();
    p.max_tokens = 64;
    mlxc_lm_generation plain, spec, self;
    CHECK(run(m, NULL, ids, n, 0, &p, &plain) == 0);
    CHECK_EQ_INT(plain.n_ids, 64);
    int ks[2] = {1, 4};
    for (int i = 0; i < 2; i++) {
      CHECK_MSG(run(m, draft, ids, n, ks[i], &p, &spec) == 0, "%s", mlxc_last_error());
      check_same_tokens(&spec, &plain, "4-bit draft, greedy");
      printf("  num_draft_tokens %d: %zu of %zu draft tokens accepted\n", ks[i], spec.draft_accepted, spec.draft_tokens);
      CHECK(spec.draft_accepted > spec.draft_tokens / 2); /* a good draft: most proposals hold */
      for (size_t t = 0; t < spec.n_ids && t < plain.n_ids; t++) CHECK_NEAR(spec.logprobs[t], plain.logprobs[t], 1e-4);
      mlxc_lm_generation_free(&spec);
    }
    /* The model as its own draft: every proposal is accepted. */
    CHECK(run(m, m, ids, n, 3, &p, &self) == 0);
    check_same_tokens(&self, &plain, "self draft");
    CHECK_EQ_INT(self.draft_accepted, self.draft_tokens);
    CHECK(self.draft_tokens >= 60 * 3 / 4);
    mlxc_lm_generation_free(&self);
    mlxc_lm_generation_free(&plain);

    /* Sampling: the same seed gives the same tokens, those of plain sampling. */
    p.temperature = 0.8f;
    p.top_p = 0.95f;
    p.seed = 7;
    mlxc_lm_generation again;
    CHECK(run(m, NULL, ids, n, 0, &p, &plain) == 0);
    CHECK(run(m, draft, ids, n, 3, &p, &spec) == 0);
    CHECK(run(m, draft, ids, n, 3, &p, &again) == 0);
    check_same_tokens(&again, &spec, "sampled, same seed");
    check_same_tokens(&spec, &plain, "sampled vs plain sampling");
    printf("  sampled: %zu of %zu draft tokens accepted\n", spec.draft_accepted, spec.draft_tokens);
    mlxc_lm_generation_free(&plain);
    mlxc_lm_generation_free(&spec);
    mlxc_lm_generation_free(&again);

    /* eos inside an accepted run stops there, as plain decoding does. */
    p = mlxc_lm_generate_default_params();
    p.max_tokens = 64;
    CHECK(run(m, NULL, ids, n, 0, &p, &plain) == 0);
    int32_t eos = plain.ids[20];
    size_t eos_at = 0;
    while (plain.ids[eos_at] != eos) eos_at++;
    p.eos_ids = &eos;
    p.n_eos_ids = 1;
    CHECK(run(m, draft, ids, n, 3, &p, &spec) == 0);
    CHECK_EQ_INT(spec.n_ids, eos_at);
    CHECK(spec.stopped_by_eos);
    mlxc_lm_generation_free(&plain);
    mlxc_lm_generation_free(&spec);
  }
  free(ids);
  mlxc_tokenizer_free(tok);
  mlxc_lm_free(m);
  mlxc_lm_free(draft);
  remove_folder(f32_dir);
  remove_folder(q4_dir);
  rmdir(tmp);
}

TEST(test_speculative_errors_are_clear) {
  mlxc_set_errors_quiet(1);
  mlxc_lm_model *llama = load("tests/fixtures/lm/llama"), *lfm2 = load("tests/fixtures/lm/lfm2");
  mlxc_lm_model *gemma3 = load("tests/fixtures/lm/gemma3_text"), *kjv = load("models/kjv-llama-7m");
  int32_t ids[4] = {1, 5, 9, 13};
  mlxc_lm_generate_params p = mlxc_lm_generate_default_params();
  p.max_tokens = 8;
  mlxc_lm_generation gen;
  if (llama && lfm2 && gemma3 && kjv) {
    CHECK(run(llama, kjv, ids, 4, 3, &p, &gen) != 0);
    CHECK(strstr(mlxc_last_error(), "vocabulary") != NULL);
    CHECK(run(llama, lfm2, ids, 4, 3, &p, &gen) != 0);
    CHECK(strstr(mlxc_last_error(), "convolution") != NULL);
    CHECK(run(lfm2, llama, ids, 4, 3, &p, &gen) != 0);
    CHECK(strstr(mlxc_last_error(), "convolution") != NULL);
    CHECK(run(gemma3, llama, ids, 4, 3, &p, &gen) != 0);
    CHECK(strstr(mlxc_last_error(), "sliding-window") != NULL);
    CHECK(run(llama, llama, ids, 4, 0, &p, &gen) != 0);
    CHECK(strstr(mlxc_last_error(), "num_draft_tokens") != NULL);
    p.max_kv_size = 32;
    CHECK(run(llama, llama, ids, 4, 3, &p, &gen) != 0);
    CHECK(strstr(mlxc_last_error(), "max_kv_size") != NULL);
    /* sessions holding different contexts */
    mlxc_lm_session *s = NULL, *d = NULL;
    mlx_array logits = mlx_array_new();
    p.max_kv_size = 0;
    CHECK(mlxc_lm_session_new(&s, llama) == 0 && mlxc_lm_session_new(&d, llama) == 0);
    CHECK(mlxc_lm_forward(s, ids, 2, &logits) == 0);
    CHECK(mlxc_lm_generate_speculative(s, d, ids + 2, 2, 3, &p, &gen) != 0);
    CHECK(strstr(mlxc_last_error(), "context") != NULL);
    CHECK(mlxc_lm_generate_speculative(s, s, ids + 2, 2, 3, &p, &gen) != 0);
    CHECK(strstr(mlxc_last_error(), "session of its own") != NULL);
    mlx_array_free(logits);
    mlxc_lm_session_free(s);
    mlxc_lm_session_free(d);
  }
  mlxc_lm_free(llama);
  mlxc_lm_free(lfm2);
  mlxc_lm_free(gemma3);
  mlxc_lm_free(kjv);
  mlxc_set_errors_quiet(0);
}

int main(void) {
  cpu = mlx_default_cpu_stream_new();
  RUN(test_greedy_speculative_matches_transformers_with_a_poor_draft);
  RUN(test_shipped_model_with_its_4bit_draft);
  RUN(test_speculative_errors_are_clear);
  return TEST_SUMMARY();
}
