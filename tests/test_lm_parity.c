/* Language-model parity: each tiny checkpoint in tests/fixtures/lm (made by transformers, see
 * scripts/gen_lm_fixtures.py) must give transformers' float32 logits for every prompt position
 * within 1e-4 relative error, and the same 32-token greedy continuation. */
#include <jansson.h>
#include <stdlib.h>
#include <unistd.h>

#include "mlx/c/mlx.h"
#include "mlxc/error.h"
#include "mlxc/lm.h"
#include "test_util.h"

static mlx_stream cpu;

static const char* const archs[] = {"llama", "llama3_rope", "llama_yarn", "llama_dynamic", "mistral", "qwen2", "qwen3", "qwen3_moe",
                                    "phi3", "gemma2", "gemma3_text", "lfm2"};

/* Where the fixture has them, the logits generate() saw at each greedy step (prefill, then one
 * token at a time): with dynamic RoPE each step has its own base. */
static void check_generation_steps(const char* name, mlxc_lm_model* model, mlx_map_string_to_array ref, int p,
                                   const int32_t* prompt, size_t n, json_t* continuation) {
  char key[64];
  mlx_array want = mlx_array_new(), got = mlx_array_new();
  snprintf(key, sizeof key, "generated_logits_%d", p);
  int quiet = mlxc_set_errors_quiet(1);
  int missing = mlx_map_string_to_array_get(&want, ref, key);
  mlxc_set_errors_quiet(quiet);
  if (missing) return;
  int vocab = mlxc_lm_vocab_size(model);
  const float* w = mlx_array_data_float32(want);
  mlxc_lm_session* session = NULL;
  CHECK(mlxc_lm_session_new(&session, model) == 0);
  float worst = 0, scale = 0;
  for (size_t step = 0; w && step < json_array_size(continuation); step++) {
    int32_t id = step ? (int32_t)json_integer_value(json_array_get(continuation, step - 1)) : 0;
    CHECK(mlxc_lm_forward(session, step ? &id : prompt, step ? 1 : n, &got) == 0);
    const float* g = mlx_array_data_float32(got);
    if (!g) break;
    g += (mlx_array_size(got) / (size_t)vocab - 1) * (size_t)vocab; /* the last position */
    for (int v = 0; v < vocab; v++) {
      scale = fmaxf(scale, fabsf(w[step * (size_t)vocab + (size_t)v]));
      worst = fmaxf(worst, fabsf(g[v] - w[step * (size_t)vocab + (size_t)v]));
    }
  }
  CHECK_MSG(worst <= 1e-4f * scale, "%s prompt %d: generation-step logits error %g vs max |logit| %g", name, p, worst, scale);
  mlxc_lm_session_free(session);
  mlx_array_free(want);
  mlx_array_free(got);
}

static void check_arch(const char* name) {
  char dir[1024], path[1200];
  snprintf(dir, sizeof dir, "%s/tests/fixtures/lm/%s", test_source_dir(), name);
  mlxc_lm_model* model = NULL;
  mlxc_lm_session* session = NULL;
  if (mlxc_lm_load(&model, dir, cpu)) {
    CHECK_MSG(0, "%s: load failed: %s", name, mlxc_last_error());
    return;
  }
  mlx_map_string_to_array ref = mlx_map_string_to_array_new();
  mlx_map_string_to_string meta = mlx_map_string_to_string_new();
  snprintf(path, sizeof path, "%s/reference.safetensors", dir);
  CHECK(mlx_load_safetensors(&ref, &meta, path, cpu) == 0);
  snprintf(path, sizeof path, "%s/reference.json", dir);
  json_t* expected = json_load_file(path, 0, NULL);
  CHECK(expected != NULL);
  json_t* continuations = json_object_get(expected, "greedy_continuations");
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
    CHECK(mlxc_lm_session_new(&session, model) == 0);
    CHECK_MSG(mlxc_lm_forward(session, ids, n, &got) == 0, "%s: forward failed: %s", name, mlxc_last_error());
    const float* g = mlx_array_data_float32(got);
    const float* w = mlx_array_data_float32(want);
    if (g && w && mlx_array_size(got) == n * (size_t)vocab) {
      float scale = 0, worst = 0;
      for (size_t i = 0; i < n * (size_t)vocab; i++) scale = fmaxf(scale, fabsf(w[i]));
      for (size_t i = 0; i < n * (size_t)vocab; i++) worst = fmaxf(worst, fabsf(g[i] - w[i]));
      CHECK_MSG(worst <= 1e-4f * scale, "%s prompt %d: max |logit error| %g vs max |logit| %g", name, p, worst, scale);
    } else {
      CHECK_MSG(0, "%s prompt %d: no logits of the expected size", name, p);
    }
    mlxc_lm_session_free(session);

    /* Greedy continuation from a fresh session. */
    CHECK(mlxc_lm_session_new(&session, model) == 0);
    mlxc_lm_generate_params params = mlxc_lm_generate_default_params();
    params.max_tokens = 32;
    mlxc_lm_generation gen;
    CHECK_MSG(mlxc_lm_generate(session, ids, n, &params, &gen) == 0, "%s: generate failed: %s", name, mlxc_last_error());
    json_t* cont = json_array_get(continuations, (size_t)p);
    CHECK_EQ_INT(gen.n_ids, json_array_size(cont));
    for (size_t i = 0; i < gen.n_ids && i < json_array_size(cont); i++)
      CHECK_MSG(gen.ids[i] == json_integer_value(json_array_get(cont, i)), "%s prompt %d: token %zu is %d, expected %lld",
                name, p, i, gen.ids[i], json_integer_value(json_array_get(cont, i)));
    mlxc_lm_generation_free(&gen);
    mlxc_lm_session_free(session);
    check_generation_steps(name, model, ref, p, ids, n, cont);
    mlx_array_free(prompt);
    mlx_array_free(want);
    mlx_array_free(got);
  }
  json_decref(expected);
  mlx_map_string_to_array_free(ref);
  mlx_map_string_to_string_free(meta);
  mlxc_lm_free(model);
}

TEST(test_every_architecture_matches_transformers) {
  for (size_t i = 0; i < sizeof archs / sizeof archs[0]; i++) check_arch(archs[i]);
}

TEST(test_load_errors_are_clear) {
  mlxc_set_errors_quiet(1);
  mlxc_lm_model* model = NULL;
  CHECK(mlxc_lm_load(&model, "/nonexistent/model", cpu) != 0);
  CHECK(strstr(mlxc_last_error(), "config.json") != NULL);
  char dir[1024];
  snprintf(dir, sizeof dir, "%s/tests/fixtures/lm", test_source_dir());
  /* a folder without config.json, and an unknown model_type whose message lists the supported */
  CHECK(mlxc_lm_load(&model, dir, cpu) != 0);
  char tmp[] = "/tmp/mlxc-lm-XXXXXX", path[64];
  CHECK(mkdtemp(tmp) != NULL);
  snprintf(path, sizeof path, "%s/config.json", tmp);
  FILE* f = fopen(path, "w");
  fputs("{\"model_type\": \"not_a_model\", \"vocab_size\": 8}", f);
  fclose(f);
  CHECK(mlxc_lm_load(&model, tmp, cpu) != 0);
  CHECK(strstr(mlxc_last_error(), "not_a_model") != NULL && strstr(mlxc_last_error(), "qwen3") != NULL);
  remove(path);
  rmdir(tmp);
  mlxc_set_errors_quiet(0);
}

int main(void) {
  cpu = mlx_default_cpu_stream_new();
  RUN(test_every_architecture_matches_transformers);
  RUN(test_load_errors_are_clear);
  return TEST_SUMMARY();
}
