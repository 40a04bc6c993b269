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

/* The sampler as it was before it stopped sorting the whole vocabulary (sorted candidates, then
 * top-k, min-p, top-p, XTC and the draw in sorted order): with a filter, the new one sorts only a
 * prefix that holds every kept token and must choose the same tokens from the same draws. */
typedef struct {
  float p;
  int32_t id;
} ref_candidate;

static int ref_desc(const void* a, const void* b) {
  const ref_candidate *x = a, *y = b;
  if (x->p != y->p) return x->p < y->p ? 1 : -1;
  return x->id - y->id;
}

static uint64_t ref_next(uint64_t* state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static int32_t reference_sample(const float* logits, int vocab, const mlxc_lm_generate_params* p, uint64_t seed,
                                ref_candidate* c) {
  uint64_t state = seed;
  int32_t best = 0;
  for (int i = 1; i < vocab; i++)
    if (logits[i] > logits[best]) best = i;
  double sum = 0;
  for (int i = 0; i < vocab; i++) {
    c[i].id = i;
    c[i].p = expf((logits[i] - logits[best]) / p->temperature);
    sum += c[i].p;
  }
  const float inv_sum = (float)(1.0 / sum);
  for (int i = 0; i < vocab; i++) c[i].p *= inv_sum;
  qsort(c, (size_t)vocab, sizeof *c, ref_desc);
  int keep = vocab;
  if (p->top_k > 0 && p->top_k < keep) keep = p->top_k;
  if (p->min_p > 0) {
    int n = 1;
    while (n < keep && c[n].p >= p->min_p * c[0].p) n++;
    keep = n;
  }
  if (p->top_p > 0 && p->top_p < 1) {
    double cumulative = 0;
    int n = 0;
    while (n < keep) {
      cumulative += c[n++].p;
      if (cumulative >= p->top_p) break;
    }
    keep = n;
  }
  int from = 0;
  if (p->xtc_probability > 0 && p->xtc_threshold > 0 &&
      (double)(ref_next(&state) >> 11) * 0x1.0p-53 < p->xtc_probability) {
    int above = 0;
    while (above < keep && c[above].p > p->xtc_threshold) above++;
    if (above > 1) from = above - 1;
  }
  double total = 0;
  for (int i = from; i < keep; i++) total += c[i].p;
  double u = (double)(ref_next(&state) >> 11) * 0x1.0p-53 * total;
  for (int i = from; i < keep; i++) {
    u -= c[i].p;
    if (u < 0) return c[i].id;
  }
  return c[keep - 1].id;
}

TEST(test_filtered_sampling_equals_a_full_sort) {
  enum { N = 5000 };
  static float logits[N], work[N];
  static float big_scratch[2 * N];
  static ref_candidate ref[N];
  unsigned r = 7;
  for (int i = 0; i < N; i++) {
    r = r * 1103515245u + 12345u;
    logits[i] = (float)((r >> 8) % 4000) / 400.0f - 5.0f; /* a broad tail */
  }
  for (int i = 0; i < 12; i++) logits[(i * 811) % N] += 9.0f; /* a few likely tokens */
  logits[100] = logits[200] = logits[(0 * 811) % N];        /* ties, broken by id */
  struct {
    float temp, top_p, min_p, xtc_p, xtc_t;
    int top_k;
  } cases[] = {{0.7f, 0.9f, 0, 0, 0, 0},    {0.7f, 0, 0, 0, 0, 40},      {0.8f, 0, 0.05f, 0, 0, 0},
               {1.0f, 0.95f, 0, 0, 0, 200}, {1.0f, 0.8f, 0, 1.0f, 0.02f, 0}, {2.0f, 0.99f, 0, 0, 0, 0},
               {1.5f, 0, 0.001f, 0, 0, 0}};
  /* The same with nearly flat logits (a random-weight model's): most of the vocabulary survives
   * the filters and is sorted by the radix sort. */
  static float flat[N];
  for (int i = 0; i < N; i++) flat[i] = logits[i] * 0.01f;
  for (size_t k = 0; k < 2 * (sizeof cases / sizeof cases[0]); k++) {
    const bool is_flat = k >= sizeof cases / sizeof cases[0];
    const float* row = is_flat ? flat : logits;
    mlxc_lm_generate_params p = mlxc_lm_generate_default_params();
    const size_t i = k % (sizeof cases / sizeof cases[0]);
    p.temperature = cases[i].temp;
    p.top_p = cases[i].top_p;
    p.min_p = cases[i].min_p;
    p.top_k = cases[i].top_k;
    p.xtc_probability = cases[i].xtc_p;
    p.xtc_threshold = cases[i].xtc_t;
    int differ = 0;
    for (uint64_t seed = 0; seed < 300; seed++) {
      memcpy(work, row, sizeof logits);
      lm_rng rng;
      lm_rng_seed(&rng, seed);
      float lp;
      differ += lm_sample(work, N, &p, NULL, 0, &rng, big_scratch, &lp) != reference_sample(row, N, &p, seed, ref);
    }
    CHECK_MSG(differ == 0, "case %zu%s: %d of 300 draws differ from the full sort's", i, is_flat ? " (flat)" : "", differ);
  }
}

/* Without a filter every token stays and the draw walks the vocabulary in its own order: the
 * frequencies follow the softmax. */
TEST(test_unfiltered_sampling_follows_the_softmax) {
  float l[V] = {1.0f, 0.0f, 2.0f, -1.0f, 0.5f, 1.5f}, lp;
  mlxc_lm_generate_params p = mlxc_lm_generate_default_params();
  p.temperature = 1.0f;
  double z = 0, expected[V];
  for (int i = 0; i < V; i++) z += exp(l[i]);
  for (int i = 0; i < V; i++) expected[i] = exp(l[i]) / z;
  int counts[V] = {0}, draws = 20000;
  for (int s = 0; s < draws; s++) counts[sample(l, p, NULL, 0, (uint64_t)s, NULL, &lp)]++;
  for (int i = 0; i < V; i++)
    CHECK_MSG(fabs(counts[i] / (double)draws - expected[i]) < 0.012, "token %d: %.4f drawn, %.4f expected", i,
              counts[i] / (double)draws, expected[i]);
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
  RUN(test_filtered_sampling_equals_a_full_sort);
  RUN(test_unfiltered_sampling_follows_the_softmax);
  RUN(test_stop_strings_across_pieces);
  return TEST_SUMMARY();
}
