/* Samplers: repetition penalty, temperature, top-k, top-p (nucleus) and min-p, as mlx-lm and
 * Hugging Face define them; a splitmix64 generator makes the same seed give the same tokens. */
#include "lm/sample.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

void lm_rng_seed(lm_rng* rng, uint64_t seed) { rng->state = seed; }

static uint64_t next_u64(lm_rng* rng) {
  uint64_t z = (rng->state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

double lm_rng_uniform(lm_rng* rng) { return (double)(next_u64(rng) >> 11) * 0x1.0p-53; }

typedef struct {
  float p;
  int32_t id;
} candidate;

static int by_probability_desc(const void* a, const void* b) {
  const candidate *x = a, *y = b;
  if (x->p != y->p) return x->p < y->p ? 1 : -1;
  return x->id - y->id;
}

/* Penalties over the last `repetition_context` tokens: each distinct token once for the
 * repetition and presence penalties (as Hugging Face and mlx-lm), per occurrence for frequency. */
static void apply_penalties(float* logits, int vocab, const mlxc_lm_generate_params* p, const int32_t* history,
                            size_t n_history) {
  for (size_t i = 0; i < p->n_bias; i++)
    if (p->bias_ids[i] >= 0 && p->bias_ids[i] < vocab) logits[p->bias_ids[i]] += p->bias_values[i];
  bool repetition = p->repetition_penalty > 0 && p->repetition_penalty != 1.0f;
  if (!repetition && p->presence_penalty == 0 && p->frequency_penalty == 0) return;
  size_t ctx = p->repetition_context > 0 ? (size_t)p->repetition_context : n_history;
  size_t first = n_history > ctx ? n_history - ctx : 0;
  for (size_t i = first; i < n_history; i++) {
    int32_t t = history[i];
    if (t < 0 || t >= vocab) continue;
    bool seen = false;
    for (size_t j = first; j < i && !seen; j++) seen = history[j] == t;
    float* l = &logits[t];
    if (!seen) {
      if (repetition) *l = *l > 0 ? *l / p->repetition_penalty : *l * p->repetition_penalty;
      *l -= p->presence_penalty;
    }
    *l -= p->frequency_penalty;
  }
}

/* Sorts c[0..n), whose ids increase, as by_probability_desc does (probability down, then id up).
 * Long runs (a flat distribution keeps most of the vocabulary) go through a stable radix sort of
 * the probabilities' bits, which are ordered as the values are for non-negative floats, so the
 * increasing ids stay so among equal probabilities. qsort of 152k candidates took 16 ms. */
static void sort_candidates(candidate* c, int n) {
  candidate* tmp = n > 2048 ? malloc(sizeof *c * (size_t)n) : NULL;
  if (!tmp) { /* few, or no memory for the radix sort's second buffer */
    qsort(c, (size_t)n, sizeof *c, by_probability_desc);
    return;
  }
  candidate *src = c, *dst = tmp;
  for (int shift = 0; shift < 32; shift += 11) { /* three passes of 11 bits, least significant first */
    int count[2049];
    memset(count, 0, sizeof count);
    for (int i = 0; i < n; i++) {
      uint32_t bits;
      memcpy(&bits, &src[i].p, sizeof bits);
      count[((~bits >> shift) & 2047) + 1]++; /* ~bits: larger probabilities first */
    }
    for (int b = 0; b < 2048; b++) count[b + 1] += count[b];
    for (int i = 0; i < n; i++) {
      uint32_t bits;
      memcpy(&bits, &src[i].p, sizeof bits);
      dst[count[(~bits >> shift) & 2047]++] = src[i];
    }
    candidate* t = src;
    src = dst;
    dst = t;
  }
  if (src != c) memcpy(c, src, sizeof *c * (size_t)n);
  free(tmp);
}

/* Probability bands: a candidate's band is how many factors of 16 it lies below the most likely
 * one (from the float exponents, no logarithm), the last band holding everything further down. */
#define BANDS 8

static int exponent_of(float p) {
  uint32_t bits;
  memcpy(&bits, &p, sizeof bits);
  return (int)((bits >> 23) & 0xff);
}

static int band_of(float p, int top_exponent) {
  int b = (top_exponent - exponent_of(p)) / 4;
  return b < 0 ? 0 : b >= BANDS ? BANDS - 1 : b;
}

/* The candidates that can survive top-k, min-p and top-p, sorted by probability: those in the
 * bands down to the first that holds top_k of them, or min_p of the best, or top_p of the
 * mass, whichever comes first. They are a prefix of the whole sorted vocabulary, so the filters
 * see what a full sort would give them; only the prefix is sorted (a 152k-token vocabulary sorted
 * whole took 17 ms a token). Returns their count, moved to the front of c. */
static int sorted_prefix(candidate* c, int vocab, float top, const mlxc_lm_generate_params* p) {
  int top_exponent = exponent_of(top);
  int count[BANDS] = {0};
  double mass[BANDS] = {0};
  for (int i = 0; i < vocab; i++) {
    int b = band_of(c[i].p, top_exponent);
    count[b]++;
    mass[b] += c[i].p;
  }
  int last = BANDS - 1, n = 0;
  double cumulative = 0;
  const int min_p_band = p->min_p > 0 ? band_of(p->min_p * top, top_exponent) : BANDS;
  for (int b = 0; b < BANDS - 1; b++) {
    n += count[b];
    cumulative += mass[b];
    if ((p->top_k > 0 && n >= p->top_k) || b >= min_p_band || (p->top_p > 0 && p->top_p < 1 && cumulative >= p->top_p)) {
      last = b;
      break;
    }
  }
  n = 0; /* in vocabulary order, so the ids increase (sort_candidates) */
  for (int i = 0; i < vocab; i++)
    if (band_of(c[i].p, top_exponent) <= last) c[n++] = c[i];
  sort_candidates(c, n);
  return n;
}

int32_t lm_sample(float* logits, int vocab, const mlxc_lm_generate_params* p, const int32_t* history,
                  size_t n_history, lm_rng* rng, void* scratch, float* logprob) {
  apply_penalties(logits, vocab, p, history, n_history);
  int32_t best = 0;
  for (int i = 1; i < vocab; i++)
    if (logits[i] > logits[best]) best = i;
  double norm = 0;
  for (int i = 0; i < vocab; i++) norm += expf(logits[i] - logits[best]);
  double log_norm = log(norm) + logits[best];
  if (p->temperature <= 0) {
    *logprob = (float)(logits[best] - log_norm);
    return best;
  }

  candidate* c = scratch;
  double sum = 0;
  for (int i = 0; i < vocab; i++) {
    c[i].id = i;
    c[i].p = expf((logits[i] - logits[best]) / p->temperature);
    sum += c[i].p;
  }
  const float inv_sum = (float)(1.0 / sum);
  for (int i = 0; i < vocab; i++) c[i].p *= inv_sum;
  const float top = c[best].p;
  const bool filtered = (p->top_k > 0 && p->top_k < vocab) || p->min_p > 0 || (p->top_p > 0 && p->top_p < 1);
  /* Unfiltered: every token stays, in vocabulary order (no sort needed to draw from them). */
  int keep = filtered ? sorted_prefix(c, vocab, top, p) : vocab;
  if (p->top_k > 0 && p->top_k < keep) keep = p->top_k;
  if (p->min_p > 0) {
    float threshold = p->min_p * c[0].p;
    int n = 1;
    while (n < keep && c[n].p >= threshold) n++;
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
  /* XTC: sometimes drop the most likely tokens, all of them above the threshold but the least
   * likely of those, to steer away from the obvious continuation. */
  int from = 0;
  if (p->xtc_probability > 0 && p->xtc_threshold > 0 && lm_rng_uniform(rng) < p->xtc_probability) {
    if (!filtered) { /* the tokens above the threshold, sorted, to the front (few: p > threshold) */
      int n = 0;
      for (int i = 0; i < vocab; i++)
        if (c[i].p > p->xtc_threshold) {
          candidate t = c[n];
          c[n++] = c[i];
          c[i] = t;
        }
      qsort(c, (size_t)n, sizeof *c, by_probability_desc);
    }
    int above = 0;
    while (above < keep && c[above].p > p->xtc_threshold) above++;
    if (above > 1) from = above - 1;
  }
  double total = 0;
  for (int i = from; i < keep; i++) total += c[i].p;
  double u = lm_rng_uniform(rng) * total;
  int32_t chosen = c[keep - 1].id;
  for (int i = from; i < keep; i++) {
    u -= c[i].p;
    if (u < 0) {
      chosen = c[i].id;
      break;
    }
  }
  *logprob = (float)(logits[chosen] - log_norm);
  return chosen;
}
