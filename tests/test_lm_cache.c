/* The other KV caches: rotating (sliding-window layers and max_kv_size), quantized (kv_bits) and
 * prompt-cache files in mlx-lm's layout. References: transformers' logits and greedy tokens of the
 * fixtures (scripts/gen_lm_fixtures.py), and the float standard cache checked by test_lm_parity. */
#include <stdlib.h>
#include <unistd.h>

#include "lm/model.h"
#include "mlx/c/mlx.h"
#include "mlxc/error.h"
#include "mlxc/lm.h"
#include "mlxc/tokenizer.h"
#include "test_util.h"

static mlx_stream cpu;

static mlxc_lm_model* load(const char* dir_in_source) {
  char dir[1024];
  snprintf(dir, sizeof dir, "%s/%s", test_source_dir(), dir_in_source);
  mlxc_lm_model* m = NULL;
  CHECK_MSG(mlxc_lm_load(&m, dir, cpu) == 0, "%s", mlxc_last_error());
  return m;
}

/* The reference prompt and logits of a fixture. */
static void reference(const char* name, int p, mlx_map_string_to_array* ref, mlx_array* prompt, mlx_array* logits) {
  char path[1200], key[32];
  mlx_map_string_to_string meta = mlx_map_string_to_string_new();
  snprintf(path, sizeof path, "%s/tests/fixtures/lm/%s/reference.safetensors", test_source_dir(), name);
  CHECK(mlx_load_safetensors(ref, &meta, path, cpu) == 0);
  snprintf(key, sizeof key, "prompt_%d", p);
  CHECK(mlx_map_string_to_array_get(prompt, *ref, key) == 0);
  snprintf(key, sizeof key, "logits_%d", p);
  CHECK(mlx_map_string_to_array_get(logits, *ref, key) == 0);
  mlx_map_string_to_string_free(meta);
}

/* Max |a[row_a] - b[row_b]| over a vocabulary row of two (n, vocab) float32 arrays. */
static double row_diff(mlx_array a, int row_a, mlx_array b, int row_b, int vocab) {
  const float *pa = mlx_array_data_float32(a), *pb = mlx_array_data_float32(b);
  double worst = 0;
  for (int v = 0; v < vocab; v++)
    worst = fmax(worst, fabs(pa[(size_t)row_a * vocab + v] - pb[(size_t)row_b * vocab + v]));
  return worst;
}

static double row_max(mlx_array a, int row, int vocab) {
  const float* pa = mlx_array_data_float32(a);
  double m = 0;
  for (int v = 0; v < vocab; v++) m = fmax(m, fabs(pa[(size_t)row * vocab + v]));
  return m;
}

/* The 41-token prompt fed one token at a time: from position 16 on, the sliding layers' caches
 * rotate in place; every position's logits must still be transformers'. */
static void check_sliding_decoding(const char* name) {
  char dir[64];
  snprintf(dir, sizeof dir, "tests/fixtures/lm/%s", name);
  mlxc_lm_model* m = load(dir);
  if (!m) return;
  const lm_config* config = &m->config;
  int vocab = mlxc_lm_vocab_size(m);
  mlx_map_string_to_array ref = mlx_map_string_to_array_new();
  mlx_array prompt = mlx_array_new(), want = mlx_array_new(), got = mlx_array_new();
  reference(name, 2, &ref, &prompt, &want);
  const int32_t* ids = mlx_array_data_int32(prompt);
  int n = (int)mlx_array_size(prompt);
  CHECK(n > config->sliding_window);
  mlxc_lm_session* s = NULL;
  CHECK(mlxc_lm_session_new(&s, m) == 0);
  double worst = 0, scale = 0;
  for (int i = 0; i < n; i++) {
    CHECK(mlxc_lm_forward(s, ids + i, 1, &got) == 0);
    worst = fmax(worst, row_diff(got, 0, want, i, vocab));
    scale = fmax(scale, row_max(want, i, vocab));
  }
  CHECK_MSG(worst <= 1e-4 * scale, "%s: max |logit error| %g vs max |logit| %g", name, worst, scale);
  for (int li = 0; li < config->num_layers; li++) {
    bool sliding = config->layer_kinds[li] == LAYER_SLIDING_ATTENTION;
    CHECK_EQ_INT(s->caches[li].length, sliding ? config->sliding_window : n);
    CHECK(s->caches[li].evicted == sliding);
  }
  mlxc_set_errors_quiet(1);
  CHECK(mlxc_lm_session_truncate(s, n - 3) != 0); /* evicted positions cannot come back */
  mlxc_set_errors_quiet(0);
  CHECK_EQ_INT(mlxc_lm_session_length(s), n);
  mlxc_lm_session_free(s);
  mlx_array_free(prompt);
  mlx_array_free(want);
  mlx_array_free(got);
  mlx_map_string_to_array_free(ref);
  mlxc_lm_free(m);
}

TEST(test_sliding_window_layers_rotate_and_keep_transformers_logits) {
  check_sliding_decoding("mistral");
  check_sliding_decoding("gemma2");
  check_sliding_decoding("gemma3_text");
}

/* Last-position logits of ids[0..n) fed in chunks of `chunk` through a session limited to
 * max_kv_size positions. */
static int chunked_logits(mlxc_lm_model* m, const int32_t* ids, int n, int chunk, int max_kv_size, mlx_array* out) {
  mlxc_lm_session* s = NULL;
  int status = mlxc_lm_session_new(&s, m);
  if (!status) status = lm_session_configure(s, max_kv_size, 0, 64, 0);
  for (int i = 0; i < n && !status; i += chunk) status = mlxc_lm_forward(s, ids + i, (size_t)(n - i < chunk ? n - i : chunk), out);
  for (int li = 0; li < m->config.num_layers && !status && max_kv_size; li++)
    CHECK_MSG(s->caches[li].length <= max_kv_size + chunk - 1, "layer %d holds %d positions", li, s->caches[li].length);
  mlxc_lm_session_free(s);
  return status;
}

TEST(test_max_kv_size_layouts_agree_and_bound_the_cache) {
  mlxc_lm_model* m = load("tests/fixtures/lm/llama");
  if (!m) return;
  int vocab = mlxc_lm_vocab_size(m);
  int32_t ids[24];
  for (int i = 0; i < 24; i++) ids[i] = (i * 37 + 11) % vocab;
  mlx_array one_pass = mlx_array_new(), single = mlx_array_new(), threes = mlx_array_new(), unlimited = mlx_array_new(),
            wide = mlx_array_new();
  /* 24 positions with max_kv_size 10: each token sees the first 4 and the 6 latest. The same
   * visibility reached three ways: one prefill masked by position, in-place rotation, and
   * evictions between chunks of 3. */
  CHECK(chunked_logits(m, ids, 24, 24, 10, &one_pass) == 0);
  CHECK(chunked_logits(m, ids, 24, 1, 10, &single) == 0);
  CHECK(chunked_logits(m, ids, 24, 3, 10, &threes) == 0);
  CHECK(chunked_logits(m, ids, 24, 24, 0, &unlimited) == 0);
  CHECK(chunked_logits(m, ids, 24, 1, 64, &wide) == 0);
  int last = 23;
  CHECK_MSG(row_diff(one_pass, last, single, 0, vocab) < 1e-5, "rotation in place differs: %g",
            row_diff(one_pass, last, single, 0, vocab));
  CHECK_MSG(row_diff(one_pass, last, threes, 2, vocab) < 1e-5, "chunked eviction differs: %g",
            row_diff(one_pass, last, threes, 2, vocab));
  CHECK(row_diff(one_pass, last, unlimited, last, vocab) > 1e-3); /* the window matters */
  CHECK(row_diff(wide, 0, unlimited, last, vocab) < 1e-5);        /* a window wider than the text does not */
  mlx_array_free(one_pass);
  mlx_array_free(single);
  mlx_array_free(threes);
  mlx_array_free(unlimited);
  mlx_array_free(wide);
  mlxc_lm_free(m);
}

/* The shipped model (head_dim 32, so group size 32) on a real sentence: greedy tokens and the
 * logits of every step with an 8-bit and a 4-bit cache against the float cache. */
static void quantized_vs_float(mlxc_lm_model* m, const int32_t* prompt, size_t n, int bits, int tokens,
                               int* same_prefix, double* relative_error) {
  int vocab = mlxc_lm_vocab_size(m);
  mlxc_lm_session *f = NULL, *q = NULL;
  mlx_array lf = mlx_array_new(), lq = mlx_array_new();
  CHECK(mlxc_lm_session_new(&f, m) == 0 && mlxc_lm_session_new(&q, m) == 0);
  CHECK(lm_session_configure(q, 0, bits, 32, 0) == 0);
  CHECK(mlxc_lm_forward(f, prompt, n, &lf) == 0 && mlxc_lm_forward(q, prompt, n, &lq) == 0);
  *same_prefix = -1;
  *relative_error = 0;
  for (int t = 0; t < tokens; t++) {
    const float *pf = mlx_array_data_float32(lf), *pq = mlx_array_data_float32(lq);
    int rf = mlx_array_dim(lf, 0) - 1, rq = mlx_array_dim(lq, 0) - 1, best_f = 0, best_q = 0;
    for (int v = 1; v < vocab; v++) {
      if (pf[(size_t)rf * vocab + v] > pf[(size_t)rf * vocab + best_f]) best_f = v;
      if (pq[(size_t)rq * vocab + v] > pq[(size_t)rq * vocab + best_q]) best_q = v;
    }
    if (t > 0) *relative_error = fmax(*relative_error, row_diff(lf, rf, lq, rq, vocab) / row_max(lf, rf, vocab));
    if (best_f != best_q && *same_prefix < 0) *same_prefix = t;
    int32_t next = best_f; /* both follow the float path so every step compares like with like */
    CHECK(mlxc_lm_forward(f, &next, 1, &lf) == 0 && mlxc_lm_forward(q, &next, 1, &lq) == 0);
  }
  if (*same_prefix < 0) *same_prefix = tokens;
  CHECK(q->caches[0].quantized);
  mlxc_lm_session_free(f);
  mlxc_lm_session_free(q);
  mlx_array_free(lf);
  mlx_array_free(lq);
}

TEST(test_quantized_cache_tracks_the_float_cache) {
  mlxc_lm_model* m = load("models/kjv-llama-7m");
  mlxc_tokenizer* tok = NULL;
  char dir[1024];
  snprintf(dir, sizeof dir, "%s/models/kjv-llama-7m", test_source_dir());
  if (!m || mlxc_tokenizer_load(&tok, dir)) {
    CHECK_MSG(0, "kjv-llama-7m: %s", mlxc_last_error());
    mlxc_lm_free(m);
    return;
  }
  const char* text = "In the beginning God created the heaven and the earth. And the earth was without form";
  int32_t* ids = NULL;
  size_t n = 0;
  CHECK(mlxc_tokenizer_encode(tok, text, strlen(text), true, &ids, &n) == 0);
  int same8, same4;
  double error8, error4;
  quantized_vs_float(m, ids, n, 8, 24, &same8, &error8);
  quantized_vs_float(m, ids, n, 4, 24, &same4, &error4);
  printf("  kv_bits 8: %d/24 greedy tokens equal, logits error %.4f of max |logit|\n", same8, error8);
  printf("  kv_bits 4: %d/24 greedy tokens equal, logits error %.4f of max |logit|\n", same4, error4);
  CHECK_MSG(same8 >= 16, "8-bit cache: greedy tokens differ from token %d", same8);
  CHECK_MSG(error8 < 0.02, "8-bit cache: logits error %g", error8);
  CHECK_MSG(error4 < 0.15, "4-bit cache: logits error %g", error4);
  /* through mlxc_lm_generate's parameters: the same greedy continuation */
  mlxc_lm_generate_params p = mlxc_lm_generate_default_params();
  p.max_tokens = 16;
  mlxc_lm_generation plain, quantized;
  mlxc_lm_session* s = NULL;
  CHECK(mlxc_lm_session_new(&s, m) == 0 && mlxc_lm_generate(s, ids, n, &p, &plain) == 0);
  mlxc_lm_session_reset(s);
  p.kv_bits = 8;
  p.kv_group_size = 32;
  CHECK(mlxc_lm_generate(s, ids, n, &p, &quantized) == 0 && s->caches[0].quantized);
  CHECK_EQ_INT(quantized.n_ids, plain.n_ids);
  for (size_t i = 0; i < plain.n_ids && i < quantized.n_ids; i++) CHECK_EQ_INT(quantized.ids[i], plain.ids[i]);
  mlxc_lm_generation_free(&plain);
  mlxc_lm_generation_free(&quantized);
  mlxc_lm_session_free(s);
  free(ids);
  mlxc_tokenizer_free(tok);
  mlxc_lm_free(m);
}

TEST(test_generate_accepts_the_cache_parameters) {
  mlxc_lm_model* m = load("tests/fixtures/lm/llama");
  if (!m) return;
  int32_t prompt[6] = {1, 17, 42, 99, 7, 200};
  mlxc_lm_session* s = NULL;
  mlxc_lm_generation gen;
  mlxc_lm_generate_params p = mlxc_lm_generate_default_params();
  p.max_tokens = 20;
  p.max_kv_size = 12;
  CHECK(mlxc_lm_session_new(&s, m) == 0);
  CHECK_MSG(mlxc_lm_generate(s, prompt, 6, &p, &gen) == 0, "%s", mlxc_last_error());
  CHECK_EQ_INT(gen.n_ids, 20);
  CHECK(s->caches[0].length <= 12 && s->caches[0].evicted);
  mlxc_lm_generation_free(&gen);
  mlxc_lm_session_reset(s);
  mlxc_set_errors_quiet(1);
  p.max_kv_size = 0;
  p.kv_bits = 8; /* the fixture's head dimension 16 is not a multiple of the group size 64 */
  CHECK(mlxc_lm_generate(s, prompt, 6, &p, &gen) != 0);
  CHECK(strstr(mlxc_last_error(), "kv_group_size") != NULL);
  p.kv_bits = 3;
  CHECK(mlxc_lm_generate(s, prompt, 6, &p, &gen) != 0);
  p.kv_bits = 0;
  p.max_kv_size = 3;
  CHECK(mlxc_lm_generate(s, prompt, 6, &p, &gen) != 0);
  mlxc_set_errors_quiet(0);
  mlxc_lm_session_free(s);
  mlxc_lm_free(m);
}

/* Feeds ids[0..split) (the last `tail` one at a time), saves, loads into a fresh session and feeds the rest: the last logits must
 * equal those of one uninterrupted session. Returns the saved file's path in `path`. */
static void check_round_trip(mlxc_lm_model* m, const int32_t* ids, int n, int split, int tail, int bits, int group,
                             const char* path) {
  int vocab = mlxc_lm_vocab_size(m);
  mlxc_lm_session *a = NULL, *b = NULL;
  mlx_array la = mlx_array_new(), lb = mlx_array_new();
  CHECK(mlxc_lm_session_new(&a, m) == 0 && mlxc_lm_session_new(&b, m) == 0);
  if (bits) CHECK(lm_session_configure(a, 0, bits, group, 0) == 0);
  CHECK(mlxc_lm_forward(a, ids, (size_t)(split - tail), &la) == 0);
  for (int i = split - tail; i < split; i++) CHECK(mlxc_lm_forward(a, ids + i, 1, &la) == 0);
  CHECK_MSG(mlxc_lm_session_save(a, path) == 0, "%s", mlxc_last_error());
  CHECK_MSG(mlxc_lm_session_load(b, path) == 0, "%s", mlxc_last_error());
  CHECK_EQ_INT(mlxc_lm_session_length(b), split);
  for (int i = split; i < n; i++) {
    CHECK(mlxc_lm_forward(a, ids + i, 1, &la) == 0);
    CHECK(mlxc_lm_forward(b, ids + i, 1, &lb) == 0);
  }
  CHECK_MSG(row_diff(la, 0, lb, 0, vocab) == 0, "logits after loading differ by %g", row_diff(la, 0, lb, 0, vocab));
  mlxc_lm_session_free(a);
  mlxc_lm_session_free(b);
  mlx_array_free(la);
  mlx_array_free(lb);
}

static const char* meta_get(mlx_map_string_to_string meta, const char* key) {
  const char* value = NULL;
  return mlx_map_string_to_string_get(&value, meta, key) ? NULL : value;
}

TEST(test_prompt_cache_files_round_trip_in_mlx_lm_layout) {
  char dir[] = "/tmp/mlxc-prompt-cache-XXXXXX", path[96];
  CHECK(mkdtemp(dir) != NULL);
  snprintf(path, sizeof path, "%s/cache.safetensors", dir);
  int32_t ids[30];
  for (int i = 0; i < 30; i++) ids[i] = (i * 53 + 5) % 256;

  mlxc_lm_model* m = load("tests/fixtures/lm/llama");
  if (m) {
    check_round_trip(m, ids, 12, 7, 0, 0, 0, path);
    /* mlx-lm's layout: keys "<layer>.0", values "<layer>.1", (1, kv_heads, 7, head_dim) */
    mlx_map_string_to_array arrays = mlx_map_string_to_array_new();
    mlx_map_string_to_string meta = mlx_map_string_to_string_new();
    mlx_array keys = mlx_array_new();
    CHECK(mlx_load_safetensors(&arrays, &meta, path, cpu) == 0);
    CHECK(mlx_map_string_to_array_get(&keys, arrays, "1.1") == 0);
    CHECK(mlx_array_ndim(keys) == 4 && mlx_array_dim(keys, 1) == 2 && mlx_array_dim(keys, 2) == 7 &&
          mlx_array_dim(keys, 3) == 16);
    CHECK(meta_get(meta, "2.0") && !strcmp(meta_get(meta, "2.0"), "KVCache"));
    CHECK(meta_get(meta, "0.0") && !strcmp(meta_get(meta, "0.0"), ""));
    mlx_array_free(keys);
    mlx_map_string_to_array_free(arrays);
    mlx_map_string_to_string_free(meta);
    mlxc_lm_free(m);
  }

  m = load("tests/fixtures/lm/gemma3_text");
  if (m) {
    /* 13 positions, then 8 one at a time: the sliding layers' caches (16) have rotated in place
     * over slots 0..4, so mlx-lm's _idx is 5 */
    check_round_trip(m, ids, 30, 21, 8, 0, 0, path);
    mlx_map_string_to_array arrays = mlx_map_string_to_array_new();
    mlx_map_string_to_string meta = mlx_map_string_to_string_new();
    CHECK(mlx_load_safetensors(&arrays, &meta, path, cpu) == 0);
    int sliding = 0;
    while (m->config.layer_kinds[sliding] != LAYER_SLIDING_ATTENTION) sliding++;
    char key[32];
    snprintf(key, sizeof key, "2.%d", sliding);
    CHECK(meta_get(meta, key) && !strcmp(meta_get(meta, key), "RotatingKVCache"));
    const char* expected[4] = {"0", "16", "21", "5"}; /* keep, max_size, offset, _idx */
    for (int k = 0; k < 4; k++) {
      snprintf(key, sizeof key, "0.%d.%d", sliding, k);
      CHECK_MSG(meta_get(meta, key) && !strcmp(meta_get(meta, key), expected[k]), "%s", key);
    }
    mlx_map_string_to_array_free(arrays);
    mlx_map_string_to_string_free(meta);
    mlxc_lm_free(m);
  }

  m = load("models/kjv-llama-7m");
  if (m) {
    /* QuantizedKVCache ("<layer>.<0|1>.<0|1|2>"): quantized after the step that reaches its start */
    check_round_trip(m, ids, 14, 9, 1, 8, 32, path);
    mlx_map_string_to_array arrays = mlx_map_string_to_array_new();
    mlx_map_string_to_string meta = mlx_map_string_to_string_new();
    mlx_array scales = mlx_array_new();
    CHECK(mlx_load_safetensors(&arrays, &meta, path, cpu) == 0);
    CHECK(mlx_map_string_to_array_get(&scales, arrays, "3.1.1") == 0 && mlx_array_dim(scales, 3) == 1);
    CHECK(meta_get(meta, "2.3") && !strcmp(meta_get(meta, "2.3"), "QuantizedKVCache"));
    CHECK(meta_get(meta, "0.3.2") && !strcmp(meta_get(meta, "0.3.2"), "8"));
    /* a file from another model is refused, leaving an empty session */
    mlxc_lm_model* other = load("tests/fixtures/lm/llama");
    mlxc_lm_session* s = NULL;
    CHECK(other && mlxc_lm_session_new(&s, other) == 0);
    mlxc_set_errors_quiet(1);
    CHECK(s && mlxc_lm_session_load(s, path) != 0);
    mlxc_set_errors_quiet(0);
    CHECK_EQ_INT(mlxc_lm_session_length(s), 0);
    mlxc_lm_session_free(s);
    mlxc_lm_free(other);
    mlx_array_free(scales);
    mlx_map_string_to_array_free(arrays);
    mlx_map_string_to_string_free(meta);
    mlxc_lm_free(m);
  }
  remove(path);
  rmdir(dir);
}

int main(void) {
  cpu = mlx_default_cpu_stream_new();
  RUN(test_sliding_window_layers_rotate_and_keep_transformers_logits);
  RUN(test_max_kv_size_layouts_agree_and_bound_the_cache);
  RUN(test_quantized_cache_tracks_the_float_cache);
  RUN(test_generate_accepts_the_cache_parameters);
  RUN(test_prompt_cache_files_round_trip_in_mlx_lm_layout);
  return TEST_SUMMARY();
}
