/* Samplers and stop strings: penalties, logit bias, XTC, top-k/min-p, seeds, log-probabilities
 * (against log-softmax computed here), and stop strings split across pieces. */
#include "lm/sample.h"
#include "mlxc/error.h"
#include "mlxc/lm.h"
#include "test_util.h"

#define V 6

static float scratch[4 * V];

static int32_t sample(const float* logits_in, mlxc_lm_generate_params p, const int32_t* hist, size_t n,
                      uint64_t seed, float* logits_out, float* logprob) {
  float logits[V];
  memcpy(logits, logits_in, sizeof logits);
  lm_rng rng;
  lm_rng_seed(&rng, seed);
  int32_t t = lm_sample(logits, V, &p, hist, n, &rng, scratch, logprob);
  if (logits_out) memcpy(logits_out, logits, sizeof logits);
  return t;
}

TEST(test_greedy_and_logprob_is_log_softmax) {
  float l[V] = {1, 3, 2, -1, 0, 0.5f}, lp;
  mlxc_lm_generate_params p = mlxc_lm_generate_default_params();
  CHECK_EQ_INT(sample(l, p, NULL, 0, 1, NULL, &lp), 1);
  double z = 0;
  for (int i = 0; i < V; i++) z += exp(l[i]);
  CHECK_NEAR(lp, 3 - log(z), 1e-6);
}

TEST(test_penalties_count_distinct_tokens_once) {
  float l[V] = {2, -2, 1, 1, 1, 1}, out[V], lp;
  int32_t hist[4] = {0, 0, 1, 5};
  mlxc_lm_generate_params p = mlxc_lm_generate_default_params();
  p.repetition_penalty = 2.0f;
  p.presence_penalty = 0.5f;
  p.frequency_penalty = 0.25f;
  sample(l, p, hist, 4, 1, out, &lp);
  CHECK_NEAR(out[0], 2.0 / 2 - 0.5 - 2 * 0.25, 1e-6); /* repetition once, presence once, frequency twice */
  CHECK_NEAR(out[1], -2.0 * 2 - 0.5 - 0.25, 1e-6);    /* negative logits are multiplied */
  CHECK_NEAR(out[5], 1.0 / 2 - 0.5 - 0.25, 1e-6);
  CHECK_NEAR(out[2], 1, 0);
  p.repetition_context = 1; /* only the last token (5) counts */
  sample(l, p, hist, 4, 1, out, &lp);
  CHECK_NEAR(out[0], 2, 0);
  CHECK_NEAR(out[5], 1.0 / 2 - 0.5 - 0.25, 1e-6);
}

TEST(test_logit_bias_forces_a_token) {
  float l[V] = {5, 0, 0, 0, 0, 0}, lp;
  int32_t ids[1] = {3};
  float bias[1] = {100};
  mlxc_lm_generate_params p = mlxc_lm_generate_default_params();
  p.bias_ids = ids;
  p.bias_values = bias;
  p.n_bias = 1;
  CHECK_EQ_INT(sample(l, p, NULL, 0, 1, NULL, &lp), 3);
}

TEST(test_top_k_min_p_xtc_and_seeds) {
  float l[V] = {4, 3.9f, 3.8f, 0, -5, -5}, lp;
  mlxc_lm_generate_params p = mlxc_lm_generate_default_params();
  p.temperature = 1.0f;
  p.top_k = 2;
  int counts[V] = {0};
  for (uint64_t s = 0; s < 400; s++) counts[sample(l, p, NULL, 0, s, NULL, &lp)]++;
  CHECK(counts[0] > 100 && counts[1] > 100 && counts[0] + counts[1] == 400);
  p.top_k = 0;
  p.min_p = 0.5f; /* token 3 is e^-4 of the best: dropped */
  for (uint64_t s = 0; s < 400; s++) CHECK(sample(l, p, NULL, 0, s, NULL, &lp) <= 2);
  p.min_p = 0;
  p.xtc_probability = 1.0f; /* the tokens above 0.2 are 0, 1, 2: only 2 (least likely) stays */
  p.xtc_threshold = 0.2f;
  for (uint64_t s = 0; s < 200; s++) CHECK(sample(l, p, NULL, 0, s, NULL, &lp) >= 2);
  p.xtc_probability = 0;
  CHECK_EQ_INT(sample(l, p, NULL, 0, 42, NULL, &lp), sample(l, p, NULL, 0, 42, NULL, &lp)); /* same seed */
}

static void push_all(mlxc_lm_stop* m, const char* const* pieces, size_t n, char* shown, bool* stopped) {
  shown[0] = '\0';
  *stopped = false;
  for (size_t i = 0; i < n && !*stopped; i++) {
    const char* e;
    size_t len;
    CHECK(mlxc_lm_stop_push(m, pieces[i], strlen(pieces[i]), &e, &len, stopped) == 0);
    strncat(shown, e, len);
  }
  if (!*stopped) {
    const char* e;
    size_t len;
    mlxc_lm_stop_finish(m, &e, &len);
    strncat(shown, e, len);
  }
}

TEST(test_stop_strings_across_pieces) {
  const char* stops[2] = {"<|im_end|>", "\n\n"};
  mlxc_lm_stop* m;
  CHECK(mlxc_lm_stop_new(&m, stops, 2) == 0);
  char shown[256];
  bool stopped;
  const char* pieces[5] = {"Hello", " world<|im", "_e", "nd|> more", "!"};
  push_all(m, pieces, 5, shown, &stopped);
  CHECK(stopped);
  CHECK_STR(shown, "Hello world");
  mlxc_lm_stop_free(m);

  CHECK(mlxc_lm_stop_new(&m, stops, 2) == 0);
  const char* near[3] = {"a <|im", "_start|>", " b\n"};
  push_all(m, near, 3, shown, &stopped); /* a prefix that does not complete is released */
  CHECK(!stopped);
  CHECK_STR(shown, "a <|im_start|> b\n");
  mlxc_lm_stop_free(m);

  mlxc_set_errors_quiet(1);
  const char* empty[1] = {""};
  CHECK(mlxc_lm_stop_new(&m, empty, 1) != 0);
  mlxc_set_errors_quiet(0);
}

int main(void) {
  RUN(test_greedy_and_logprob_is_log_softmax);
  RUN(test_penalties_count_distinct_tokens_once);
  RUN(test_logit_bias_forces_a_token);
  RUN(test_top_k_min_p_xtc_and_seeds);
  RUN(test_stop_strings_across_pieces);
  return TEST_SUMMARY();
}
