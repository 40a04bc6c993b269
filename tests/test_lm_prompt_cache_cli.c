/* Prompt-cache files from the command line: `mlxc cache-prompt` then `mlxc generate
 * --prompt-cache-file` must give the tokens plain generation gives for the whole prompt, whether
 * the new prompt extends the cached one, repeats it, or follows it; a cache from another model
 * is refused. The model is the GGUF copy of the transformers-verified tiny llama (its tokenizer
 * maps bytes to ids; BOS is added). Also the library's user metadata round trip. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mlx/c/mlx.h"
#include "mlxc/error.h"
#include "mlxc/lm.h"
#include "test_util.h"

static char exe[1024], model[1024], other[1024], cache_file[64];

/* Runs the shell command; returns its stdout parsed as JSON (NULL on failure). */
static json_t* run_json(const char* cmd) {
  char out[8192] = {0};
  FILE* p = popen(cmd, "r");
  if (!p) return NULL;
  size_t n = fread(out, 1, sizeof out - 1, p);
  out[n] = '\0';
  int rc = pclose(p);
  return rc == 0 ? json_loads(out, 0, NULL) : NULL;
}

/* Greedy ids of `generate` for the prompt given as printf(1) format, with extra options. */
static json_t* generate(const char* prompt_fmt, const char* extra) {
  char cmd[4096];
  snprintf(cmd, sizeof cmd, "'%s' generate --device cpu %s --prompt \"$(printf '%s')\" --max-tokens 12 --json", exe, extra,
           prompt_fmt);
  json_t* j = run_json(cmd);
  CHECK_MSG(j != NULL, "failed: %s", cmd);
  return j;
}

static void check_same_ids(json_t* a, json_t* b, const char* what) {
  CHECK_MSG(a && b && json_equal(json_object_get(a, "ids"), json_object_get(b, "ids")), "%s: ids differ", what);
}

TEST(test_cli_prompt_cache) {
  char cmd[4096], with_model[1200];
  /* cache [BOS, 17, 42, 99, 7] */
  snprintf(cmd, sizeof cmd, "'%s' cache-prompt --device cpu --model '%s' --prompt \"$(printf '\\021*c\\007')\" "
           "--prompt-cache-file '%s' 2>/dev/null", exe, model, cache_file);
  CHECK_EQ_INT(system(cmd), 0);
  snprintf(with_model, sizeof with_model, "--model '%s'", model);
  char from_cache[1200];
  snprintf(from_cache, sizeof from_cache, "--prompt-cache-file '%s'", cache_file); /* --model from the file */

  /* a prompt that extends the cached one: only the rest runs */
  json_t* plain = generate("\\021*c\\007 and more", with_model);
  json_t* cached = generate("\\021*c\\007 and more", from_cache);
  check_same_ids(plain, cached, "extended prompt");
  CHECK_EQ_INT(json_integer_value(json_object_get(cached, "prompt_cache_tokens")), 5);
  CHECK_EQ_INT(json_integer_value(json_object_get(cached, "prompt_tokens")), 9);
  json_decref(plain);
  json_decref(cached);

  /* the same prompt: transformers' continuation of prompt 0 */
  cached = generate("\\021*c\\007", from_cache);
  json_t* ref = json_load_file("tests/fixtures/lm/llama/reference.json", 0, NULL);
  json_t* want = json_array_get(json_object_get(ref, "greedy_continuations"), 0);
  json_t* got = json_object_get(cached, "ids");
  CHECK(json_array_size(got) == 12);
  for (size_t i = 0; i < json_array_size(got); i++)
    CHECK(json_integer_value(json_array_get(got, i)) == json_integer_value(json_array_get(want, i)));
  json_decref(ref);
  json_decref(cached);

  /* a prompt that does not extend it follows the cache (as mlx-lm), without a second BOS */
  plain = generate("\\021*c\\007 xyz", with_model);
  cached = generate(" xyz", from_cache);
  check_same_ids(plain, cached, "appended prompt");
  json_decref(plain);
  json_decref(cached);

  /* another model (the float16 copy: same shapes) is refused */
  snprintf(cmd, sizeof cmd, "'%s' generate --device cpu --model '%s' --prompt-cache-file '%s' --prompt x 2>&1", exe, other,
           cache_file);
  char out[4096] = {0};
  FILE* p = popen(cmd, "r");
  CHECK(p != NULL);
  if (p) {
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    CHECK(pclose(p) != 0);
    CHECK_MSG(strstr(out, "comes from another model") != NULL, "%s", out);
  }
}

TEST(test_library_metadata_round_trip) {
  mlx_stream cpu = mlx_default_cpu_stream_new();
  mlxc_lm_model *m = NULL, *m2 = NULL;
  mlxc_lm_session *s = NULL, *s2 = NULL;
  CHECK(mlxc_lm_load(&m, model, cpu) == 0);
  CHECK(mlxc_lm_load(&m2, other, cpu) == 0);
  if (!m || !m2) return;
  CHECK(mlxc_lm_session_new(&s, m) == 0);
  CHECK(mlxc_lm_session_new(&s2, m2) == 0);
  int32_t ids[4] = {1, 5, 6, 7};
  mlx_array logits = mlx_array_new();
  CHECK(mlxc_lm_forward(s, ids, 4, &logits) == 0);
  mlx_map_string_to_string meta = mlx_map_string_to_string_new(), back = {NULL};
  mlx_map_string_to_string_insert(meta, "model", "somewhere");
  CHECK(mlxc_lm_session_save_metadata(s, cache_file, meta) == 0);
  mlxc_lm_session_reset(s);
  CHECK(mlxc_lm_session_load_metadata(s, cache_file, &back) == 0);
  CHECK_EQ_INT(mlxc_lm_session_length(s), 4);
  const char* v = NULL;
  CHECK(mlx_map_string_to_string_get(&v, back, "model") == 0 && v && !strcmp(v, "somewhere"));
  CHECK(mlx_map_string_to_string_get(&v, back, "mlxc_model") == 0 && v && strstr(v, "layers=2"));
  /* the other model: refused, its session left empty */
  mlxc_set_errors_quiet(1);
  CHECK(mlxc_lm_session_load(s2, cache_file) != 0);
  CHECK(strstr(mlxc_last_error(), "another model") != NULL);
  mlxc_set_errors_quiet(0);
  CHECK_EQ_INT(mlxc_lm_session_length(s2), 0);
  /* without user metadata (mlx-lm's plain layout) any model with the same layers loads it */
  CHECK(mlxc_lm_session_save(s, cache_file) == 0);
  CHECK(mlxc_lm_session_load(s2, cache_file) == 0);
  mlx_map_string_to_string_free(meta);
  mlx_map_string_to_string_free(back);
  mlx_array_free(logits);
  mlxc_lm_session_free(s);
  mlxc_lm_session_free(s2);
  mlxc_lm_free(m);
  mlxc_lm_free(m2);
}

int main(void) {
  snprintf(model, sizeof model, "%s/tests/fixtures/gguf_lm/llama-f32.gguf", test_source_dir());
  snprintf(other, sizeof other, "%s/tests/fixtures/gguf_lm/llama-f16.gguf", test_source_dir());
  snprintf(cache_file, sizeof cache_file, "/tmp/mlxc-prompt-cache-%d.safetensors", (int)getpid());
  RUN(test_library_metadata_round_trip);
  const char* bin = getenv("MLXC_BINARY_DIR");
  snprintf(exe, sizeof exe, "%s/mlxc", bin ? bin : "");
  if (bin && access(exe, X_OK) == 0)
    RUN(test_cli_prompt_cache);
  else
    printf("  (CLI test skipped: %s missing)\n", exe);
  remove(cache_file);
  return TEST_SUMMARY();
}
