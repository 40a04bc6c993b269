/* Batch generation: the three reference prompts of each fixture (5, 11 and 41 tokens) run as one
 * left-padded batch must give, row by row, transformers' float32 logits (within 1e-4 of the
 * largest |logit|) and transformers' 32-token greedy continuations (tests/fixtures/lm, made by
 * scripts/gen_lm_fixtures.py); rows finish on their own; bad input is refused. */
#include <jansson.h>
#include <stdlib.h>
#include <unistd.h>

#include "lm/model.h"
#include "mlx/c/mlx.h"
#include "mlxc/error.h"
#include "mlxc/lm.h"
#include "test_util.h"

static mlx_stream cpu;

/* Architectures with references; mistral, gemma2 and gemma3_text have 16-token sliding windows
 * (the 41-token prompt crosses them), gemma2 soft-caps its attention (composed attention),
 * qwen3_moe routes every row's tokens. */
static const char* const archs[] = {"llama", "llama3_rope", "mistral", "qwen2", "qwen3", "qwen3_moe", "phi3",
                                    "gemma2", "gemma3_text"};

typedef struct {
  mlxc_lm_model* model;
  mlx_map_string_to_array ref;
  json_t* expected;
  const int32_t* prompts[3];
  size_t lengths[3];
  mlx_array prompt_arrays[3];
} fixture;

static bool fixture_load(fixture* f, const char* name) {
  char dir[1024], path[1200];
  snprintf(dir, sizeof dir, "%s/tests/fixtures/lm/%s", test_source_dir(), name);
  *f = (fixture){0};
  f->ref = mlx_map_string_to_array_new();
  if (mlxc_lm_load(&f->model, dir, cpu)) {
    CHECK_MSG(0, "%s: load failed: %s", name, mlxc_last_error());
    return false;
  }
  mlx_map_string_to_string meta = mlx_map_string_to_string_new();
  snprintf(path, sizeof path, "%s/reference.safetensors", dir);
  CHECK(mlx_load_safetensors(&f->ref, &meta, path, cpu) == 0);
  mlx_map_string_to_string_free(meta);
  snprintf(path, sizeof path, "%s/reference.json", dir);
  f->expected = json_load_file(path, 0, NULL);
  CHECK(f->expected != NULL);
  for (int p = 0; p < 3; p++) {
    char key[32];
    snprintf(key, sizeof key, "prompt_%d", p);
    f->prompt_arrays[p] = mlx_array_new();
    CHECK(mlx_map_string_to_array_get(&f->prompt_arrays[p], f->ref, key) == 0);
    f->prompts[p] = mlx_array_data_int32(f->prompt_arrays[p]);
    f->lengths[p] = mlx_array_size(f->prompt_arrays[p]);
  }
  return f->expected != NULL;
}

static void fixture_free(fixture* f) {
  for (int p = 0; p < 3; p++) mlx_array_free(f->prompt_arrays[p]);
  json_decref(f->expected);
  mlx_map_string_to_array_free(f->ref);
  mlxc_lm_free(f->model);
}

static int32_t expected_token(const fixture* f, int p, size_t i) {
  json_t* cont = json_array_get(json_object_get(f->expected, "greedy_continuations"), (size_t)p);
  return (int32_t)json_integer_value(json_array_get(cont, i));
}

/* Row p of the padded batch's logits against transformers' logits of prompt p alone. */
static void check_batch_logits(const char* name, fixture* f) {
  int vocab = mlxc_lm_vocab_size(f->model), longest = 0, starts[3];
  for (int p = 0; p < 3; p++) longest = (int)f->lengths[p] > longest ? (int)f->lengths[p] : longest;
  int32_t* ids = calloc((size_t)3 * longest, sizeof(int32_t));
  for (int p = 0; p < 3; p++) {
    starts[p] = longest - (int)f->lengths[p];
    for (size_t i = 0; i < f->lengths[p]; i++) ids[p * longest + starts[p] + i] = f->prompts[p][i];
  }
  mlxc_lm_session* s = NULL;
  int shape[2] = {3, longest};
  mlx_array id_array = mlx_array_new_data(ids, shape, 2, MLX_INT32), logits = mlx_array_new();
  CHECK(mlxc_lm_session_new(&s, f->model) == 0);
  CHECK(lm_session_set_rows(s, starts, 3) == 0);
  CHECK_MSG(lm_decoder_forward(s, id_array, &logits) == 0, "%s: batch forward failed: %s", name, mlxc_last_error());
  CHECK(mlx_array_eval(logits) == 0);
  const float* got = mlx_array_data_float32(logits);
  for (int p = 0; got && p < 3; p++) {
    char key[32];
    snprintf(key, sizeof key, "logits_%d", p);
    mlx_array want = mlx_array_new();
    CHECK(mlx_map_string_to_array_get(&want, f->ref, key) == 0);
    const float* w = mlx_array_data_float32(want);
    size_t n = f->lengths[p] * (size_t)vocab;
    float scale = 0, worst = 0;
    const float* row = got + ((size_t)p * longest + starts[p]) * vocab;
    for (size_t i = 0; w && i < n; i++) scale = fmaxf(scale, fabsf(w[i]));
    for (size_t i = 0; w && i < n; i++) worst = fmaxf(worst, fabsf(row[i] - w[i]));
    CHECK_MSG(w && worst <= 1e-4f * scale, "%s row %d: max |logit error| %g vs max |logit| %g", name, p, worst, scale);
    mlx_array_free(want);
  }
  free(ids);
  mlx_array_free(id_array);
  mlx_array_free(logits);
  mlxc_lm_session_free(s);
}

TEST(test_batch_rows_match_transformers_alone) {
  for (size_t a = 0; a < sizeof archs / sizeof archs[0]; a++) {
    fixture f;
    if (!fixture_load(&f, archs[a])) {
      fixture_free(&f);
      continue;
    }
    check_batch_logits(archs[a], &f);
    mlxc_lm_generate_params params = mlxc_lm_generate_default_params();
    params.max_tokens = 32;
    params.prefill_step = 16; /* the 41-token prompt's columns in three chunks */
    mlxc_lm_generation outs[3];
    CHECK_MSG(mlxc_lm_generate_batch(f.model, f.prompts, f.lengths, 3, &params, 1, outs) == 0, "%s: %s", archs[a],
              mlxc_last_error());
    for (int p = 0; p < 3; p++) {
      CHECK_EQ_INT(outs[p].n_ids, 32);
      CHECK_EQ_INT(outs[p].prompt_tokens, f.lengths[p]);
      for (size_t i = 0; i < outs[p].n_ids; i++)
        CHECK_MSG(outs[p].ids[i] == expected_token(&f, p, i), "%s row %d: token %zu is %d, expected %d", archs[a], p, i,
                  outs[p].ids[i], expected_token(&f, p, i));
      mlxc_lm_generation_free(&outs[p]);
    }
    fixture_free(&f);
  }
}

static int stop_after_three(int32_t token, void* user) {
  (void)token;
  return ++*(int*)user == 3;
}

TEST(test_rows_finish_on_their_own) {
  fixture f;
  if (!fixture_load(&f, "qwen3")) {
    fixture_free(&f);
    return;
  }
  /* Row 0: 7 tokens; row 1: until the eos id chosen below; row 2: its callback stops it. */
  int32_t eos = expected_token(&f, 1, 9);
  size_t eos_at = 0;
  while (expected_token(&f, 1, eos_at) != eos) eos_at++;
  int calls = 0;
  mlxc_lm_generate_params params[3];
  for (int p = 0; p < 3; p++) params[p] = mlxc_lm_generate_default_params();
  params[0].max_tokens = 7;
  params[1].max_tokens = 32;
  params[1].eos_ids = &eos;
  params[1].n_eos_ids = 1;
  params[2].max_tokens = 32;
  params[2].on_token = stop_after_three;
  params[2].user_data = &calls;
  mlxc_lm_generation outs[3];
  CHECK_MSG(mlxc_lm_generate_batch(f.model, f.prompts, f.lengths, 3, params, 3, outs) == 0, "%s", mlxc_last_error());
  size_t want[3] = {7, eos_at, 3};
  for (int p = 0; p < 3; p++) {
    CHECK_EQ_INT(outs[p].n_ids, want[p]);
    for (size_t i = 0; i < outs[p].n_ids && i < want[p]; i++) CHECK_EQ_INT(outs[p].ids[i], expected_token(&f, p, i));
  }
  CHECK(outs[1].stopped_by_eos && !outs[0].stopped_by_eos && !outs[2].stopped_by_eos);
  CHECK_EQ_INT(calls, 3);
  for (int p = 0; p < 3; p++) mlxc_lm_generation_free(&outs[p]);

  /* max_tokens 0 for one row: it yields nothing while the others go on. */
  params[0].max_tokens = 0;
  params[2].on_token = NULL;
  CHECK(mlxc_lm_generate_batch(f.model, f.prompts, f.lengths, 3, params, 3, outs) == 0);
  CHECK_EQ_INT(outs[0].n_ids, 0);
  CHECK_EQ_INT(outs[2].n_ids, 32);
  for (int p = 0; p < 3; p++) mlxc_lm_generation_free(&outs[p]);
  fixture_free(&f);
}

/* Sampled rows: each row draws from its own stream, as it would alone with that seed. */
TEST(test_sampled_rows_match_their_solo_runs) {
  fixture f;
  if (!fixture_load(&f, "llama")) {
    fixture_free(&f);
    return;
  }
  mlxc_lm_generate_params params = mlxc_lm_generate_default_params();
  params.max_tokens = 24;
  params.temperature = 0.9f;
  params.top_k = 40;
  params.repetition_penalty = 1.1f;
  params.seed = 1234;
  mlxc_lm_generation outs[3], again[3];
  CHECK(mlxc_lm_generate_batch(f.model, f.prompts, f.lengths, 3, &params, 1, outs) == 0);
  CHECK(mlxc_lm_generate_batch(f.model, f.prompts, f.lengths, 3, &params, 1, again) == 0);
  for (int p = 0; p < 3; p++) {
    mlxc_lm_session* s = NULL;
    mlxc_lm_generate_params solo_params = params;
    solo_params.seed = params.seed + (uint64_t)p; /* shared parameters: row p uses seed + p */
    mlxc_lm_generation solo;
    CHECK(mlxc_lm_session_new(&s, f.model) == 0);
    CHECK(mlxc_lm_generate(s, f.prompts[p], f.lengths[p], &solo_params, &solo) == 0);
    CHECK_EQ_INT(outs[p].n_ids, solo.n_ids);
    CHECK_EQ_INT(again[p].n_ids, solo.n_ids);
    for (size_t i = 0; i < solo.n_ids && i < outs[p].n_ids; i++) {
      CHECK_EQ_INT(outs[p].ids[i], solo.ids[i]);
      CHECK_NEAR(outs[p].logprobs[i], solo.logprobs[i], 1e-4);
    }
    for (size_t i = 0; i < solo.n_ids && i < again[p].n_ids; i++) CHECK_EQ_INT(again[p].ids[i], solo.ids[i]);
    mlxc_lm_generation_free(&solo);
    mlxc_lm_generation_free(&outs[p]);
    mlxc_lm_generation_free(&again[p]);
    mlxc_lm_session_free(s);
  }
  fixture_free(&f);
}

/* Quantized KV caches (8-bit, from the first step) in a batch: rows as they are alone. The
 * fixtures' head_dim 16 is below the smallest group, so the shipped model, in float32. */
TEST(test_quantized_cache_rows_match_their_solo_runs) {
  char shipped[1024], tmp[] = "/tmp/mlxc-batch-XXXXXX", dir[64], path[128];
  snprintf(shipped, sizeof shipped, "%s/models/kjv-llama-7m", test_source_dir());
  CHECK(mkdtemp(tmp) != NULL);
  snprintf(dir, sizeof dir, "%s/f32", tmp);
  mlxc_lm_convert_params f32 = {.dtype_name = "float32", .dtype = MLX_FLOAT32};
  mlxc_lm_model* m = NULL;
  CHECK_MSG(mlxc_lm_convert(shipped, dir, &f32) == 0 && mlxc_lm_load(&m, dir, cpu) == 0, "%s", mlxc_last_error());
  int32_t a[9] = {0, 298, 306, 443, 14, 2579, 261, 1170, 338}, b[3] = {0, 455, 343}, c[5] = {0, 384, 1125, 28, 201};
  const int32_t* prompts[3] = {a, b, c};
  size_t lengths[3] = {9, 3, 5};
  mlxc_lm_generate_params p = mlxc_lm_generate_default_params();
  p.max_tokens = 24;
  p.kv_bits = 8;
  p.kv_group_size = 32;
  mlxc_lm_generation outs[3];
  CHECK_MSG(m && mlxc_lm_generate_batch(m, prompts, lengths, 3, &p, 1, outs) == 0, "%s", mlxc_last_error());
  for (int r = 0; m && r < 3; r++) {
    mlxc_lm_session* s = NULL;
    mlxc_lm_generation solo;
    CHECK(mlxc_lm_session_new(&s, m) == 0 && mlxc_lm_generate(s, prompts[r], lengths[r], &p, &solo) == 0);
    CHECK(s->caches[0].quantized);
    CHECK_EQ_INT(outs[r].n_ids, solo.n_ids);
    for (size_t i = 0; i < solo.n_ids && i < outs[r].n_ids; i++) CHECK_EQ_INT(outs[r].ids[i], solo.ids[i]);
    mlxc_lm_generation_free(&solo);
    mlxc_lm_generation_free(&outs[r]);
    mlxc_lm_session_free(s);
  }
  mlxc_lm_free(m);
  const char* files[] = {"model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json",
                         "generation_config.json", "chat_template.jinja", "special_tokens_map.json"};
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, files[i]);
    unlink(path);
  }
  rmdir(dir);
  rmdir(tmp);
}

TEST(test_batch_errors_are_clear) {
  fixture f;
  if (!fixture_load(&f, "llama")) {
    fixture_free(&f);
    return;
  }
  mlxc_set_errors_quiet(1);
  mlxc_lm_generate_params params = mlxc_lm_generate_default_params();
  mlxc_lm_generation outs[3];
  CHECK(mlxc_lm_generate_batch(f.model, f.prompts, f.lengths, 0, &params, 1, outs) != 0);
  CHECK(mlxc_lm_generate_batch(f.model, f.prompts, f.lengths, 3, &params, 2, outs) != 0);
  CHECK(strstr(mlxc_last_error(), "parameter sets") != NULL);
  size_t lengths[3] = {f.lengths[0], 0, f.lengths[2]};
  CHECK(mlxc_lm_generate_batch(f.model, f.prompts, lengths, 3, &params, 1, outs) != 0);
  CHECK(strstr(mlxc_last_error(), "prompt 1 is empty") != NULL);
  int32_t bad[2] = {1, 100000};
  const int32_t* bad_prompts[2] = {f.prompts[0], bad};
  size_t bad_lengths[2] = {f.lengths[0], 2};
  CHECK(mlxc_lm_generate_batch(f.model, bad_prompts, bad_lengths, 2, &params, 1, outs) != 0);
  CHECK(strstr(mlxc_last_error(), "vocabulary") != NULL);
  params.max_kv_size = 64;
  CHECK(mlxc_lm_generate_batch(f.model, f.prompts, f.lengths, 3, &params, 1, outs) != 0);
  CHECK(strstr(mlxc_last_error(), "max_kv_size") != NULL);
  fixture_free(&f);

  char dir[1024];
  snprintf(dir, sizeof dir, "%s/tests/fixtures/lm/lfm2", test_source_dir());
  mlxc_lm_model* conv = NULL;
  CHECK(mlxc_lm_load(&conv, dir, cpu) == 0);
  int32_t ids[3] = {1, 2, 3};
  const int32_t* prompts[2] = {ids, ids};
  size_t n[2] = {3, 2};
  params = mlxc_lm_generate_default_params();
  CHECK(mlxc_lm_generate_batch(conv, prompts, n, 2, &params, 1, outs) != 0);
  CHECK(strstr(mlxc_last_error(), "convolution") != NULL);
  mlxc_lm_free(conv);
  mlxc_set_errors_quiet(0);
}

int main(void) {
  cpu = mlx_default_cpu_stream_new();
  RUN(test_batch_rows_match_transformers_alone);
  RUN(test_rows_finish_on_their_own);
  RUN(test_sampled_rows_match_their_solo_runs);
  RUN(test_quantized_cache_rows_match_their_solo_runs);
  RUN(test_batch_errors_are_clear);
  return TEST_SUMMARY();
}
