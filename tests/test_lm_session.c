/* Sessions: incremental decoding and cache reuse give the same logits as one fresh pass
 * (float32 llama and lfm2 fixtures), truncation rules, and bad input. */
#include "mlx/c/mlx.h"
#include "mlxc/error.h"
#include "mlxc/lm.h"
#include "test_util.h"

static mlx_stream cpu;
static const int32_t ids[12] = {1, 17, 42, 99, 7, 200, 3, 150, 64, 65, 66, 12};

static mlxc_lm_model* load(const char* name) {
  char dir[1024];
  snprintf(dir, sizeof dir, "%s/tests/fixtures/lm/%s", test_source_dir(), name);
  mlxc_lm_model* m = NULL;
  CHECK_MSG(mlxc_lm_load(&m, dir, cpu) == 0, "%s", mlxc_last_error());
  return m;
}

/* Max |a - b| between the last rows of two (n, vocab) logits arrays. */
static double last_row_diff(mlx_array a, mlx_array b, int vocab) {
  const float *pa = mlx_array_data_float32(a), *pb = mlx_array_data_float32(b);
  size_t ra = mlx_array_dim(a, 0) - 1, rb = mlx_array_dim(b, 0) - 1;
  double worst = 0;
  for (int v = 0; v < vocab; v++) worst = fmax(worst, fabs(pa[ra * vocab + v] - pb[rb * vocab + v]));
  return worst;
}

static void check_incremental(const char* name) {
  mlxc_lm_model* m = load(name);
  if (!m) return;
  int vocab = mlxc_lm_vocab_size(m);
  mlxc_lm_session *fresh = NULL, *inc = NULL;
  mlx_array full = mlx_array_new(), part = mlx_array_new();
  CHECK(mlxc_lm_session_new(&fresh, m) == 0 && mlxc_lm_session_new(&inc, m) == 0);
  CHECK(mlxc_lm_forward(fresh, ids, 12, &full) == 0);
  /* 5 tokens, then one at a time */
  CHECK(mlxc_lm_forward(inc, ids, 5, &part) == 0);
  for (int i = 5; i < 12; i++) CHECK(mlxc_lm_forward(inc, ids + i, 1, &part) == 0);
  CHECK_EQ_INT(mlxc_lm_session_length(inc), 12);
  CHECK_MSG(last_row_diff(full, part, vocab) < 1e-5, "%s: incremental decoding differs", name);
  mlxc_lm_session_free(fresh);
  mlxc_lm_session_free(inc);
  mlx_array_free(full);
  mlx_array_free(part);
  mlxc_lm_free(m);
}

TEST(test_incremental_decoding_matches_one_pass) {
  check_incremental("llama");
  check_incremental("lfm2");
  check_incremental("gemma2");
}

TEST(test_truncate_then_extend_reuses_the_cache) {
  mlxc_lm_model* m = load("llama");
  if (!m) return;
  int vocab = mlxc_lm_vocab_size(m);
  mlxc_lm_session *fresh = NULL, *s = NULL;
  mlx_array full = mlx_array_new(), out = mlx_array_new();
  int32_t other[4] = {5, 6, 7, 8};
  CHECK(mlxc_lm_session_new(&fresh, m) == 0 && mlxc_lm_session_new(&s, m) == 0);
  CHECK(mlxc_lm_forward(fresh, ids, 12, &full) == 0);
  CHECK(mlxc_lm_forward(s, ids, 6, &out) == 0);
  CHECK(mlxc_lm_forward(s, other, 4, &out) == 0); /* a different continuation ... */
  CHECK(mlxc_lm_session_truncate(s, 6) == 0);      /* ... forgotten */
  CHECK(mlxc_lm_forward(s, ids + 6, 6, &out) == 0);
  CHECK(last_row_diff(full, out, vocab) < 1e-5);
  mlxc_set_errors_quiet(1);
  CHECK(mlxc_lm_session_truncate(s, 13) != 0);
  int32_t bad = vocab;
  CHECK(mlxc_lm_forward(s, &bad, 1, &out) != 0);
  CHECK(strstr(mlxc_last_error(), "vocabulary") != NULL);
  mlxc_set_errors_quiet(0);
  mlxc_lm_session_free(fresh);
  mlxc_lm_session_free(s);
  mlx_array_free(full);
  mlx_array_free(out);
  mlxc_lm_free(m);
}

TEST(test_conv_models_refuse_to_rewind) {
  mlxc_lm_model* m = load("lfm2");
  if (!m) return;
  mlxc_lm_session* s = NULL;
  mlx_array out = mlx_array_new();
  CHECK(mlxc_lm_session_new(&s, m) == 0);
  CHECK(mlxc_lm_forward(s, ids, 6, &out) == 0);
  mlxc_set_errors_quiet(1);
  CHECK(mlxc_lm_session_truncate(s, 3) != 0);
  mlxc_set_errors_quiet(0);
  CHECK_EQ_INT(mlxc_lm_session_length(s), 6);
  mlxc_lm_session_free(s);
  mlx_array_free(out);
  mlxc_lm_free(m);
}

int main(void) {
  cpu = mlx_default_cpu_stream_new();
  RUN(test_incremental_decoding_matches_one_pass);
  RUN(test_truncate_then_extend_reuses_the_cache);
  RUN(test_conv_models_refuse_to_rewind);
  return TEST_SUMMARY();
}
