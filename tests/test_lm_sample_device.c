/* The sampler as array ops (lm/sample_device.h) against the host sampler (lm_sample) for the
 * same uniform draws: temperature alone, top-k, top-p, min-p, their combination with a logit
 * bias, ties, and a vocabulary row that is not the last of the logits. On the CPU stream always;
 * on a GPU stream too where one exists. */
#include <math.h>
#include <stdlib.h>

#include "lm/sample.h"
#include "lm/sample_device.h"
#include "mlx/c/mlx.h"
#include "mlxc/error.h"
#include "test_util.h"

#define VOCAB 3001
#define TRIALS 40

static uint64_t lcg = 12345;

static double unit(void) {
  lcg = lcg * 6364136223846793005ull + 1442695040888963407ull;
  return (double)(lcg >> 11) / 9007199254740992.0;
}

/* Two rows of logits, the second the one sampled: a peaked spread (scale), with every
 * `repeat`-th logit copied from its neighbour so that equal probabilities occur. */
static void make_logits(float* rows, float scale, int repeat) {
  for (int i = 0; i < 2 * VOCAB; i++) {
    double a = unit(), b = unit(); /* a normal value by Box-Muller */
    rows[i] = (float)(scale * sqrt(-2 * log(a + 1e-12)) * cos(6.283185307179586 * b));
  }
  for (int i = VOCAB + 1; i < 2 * VOCAB; i++)
    if (repeat && i % repeat == 0) rows[i] = rows[i - 1];
}

/* Samples the second row TRIALS times on `s` and with lm_sample, the k-th trial with the k-th
 * seed's first draw; returns how many tokens differ, and checks each log-probability. */
static int disagreements(const char* what, const float* rows, mlxc_lm_generate_params p, mlx_stream s) {
  static float host_row[VOCAB], scratch[4 * VOCAB];
  int shape[2] = {2, VOCAB}, one[1] = {1}, differ = 0;
  mlx_array logits = mlx_array_new_data(rows, shape, 2, MLX_FLOAT32), bias = mlx_array_new();
  CHECK_MSG(lm_sample_device_supported(&p), "%s: settings not supported", what);
  CHECK(lm_sample_device_bias(&p, VOCAB, &bias) == 0);
  for (int k = 0; k < TRIALS; k++) {
    lm_rng rng;
    lm_rng_seed(&rng, 1000 + (uint64_t)k);
    float u = (float)lm_rng_uniform(&rng), host_lp = 0;
    lm_rng_seed(&rng, 1000 + (uint64_t)k);
    memcpy(host_row, rows + VOCAB, sizeof host_row);
    int32_t host = lm_sample(host_row, VOCAB, &p, NULL, 0, &rng, scratch, &host_lp);
    mlx_array u_arr = mlx_array_new_data(&u, one, 1, MLX_FLOAT32);
    mlx_array token = mlx_array_new(), chosen = mlx_array_new(), lse = mlx_array_new();
    int status = lm_sample_device(logits, &p, u_arr, bias, s, &token, &chosen, &lse);
    if (!status) status = mlx_array_eval(token) || mlx_array_eval(chosen) || mlx_array_eval(lse);
    CHECK_MSG(status == 0, "%s: %s", what, mlxc_last_error());
    if (!status) {
      CHECK_MSG(mlx_array_dtype(token) == MLX_UINT32 && mlx_array_size(token) == 1, "%s: token array", what);
      int32_t t = (int32_t)mlx_array_data_uint32(token)[0];
      float lp = mlx_array_data_float32(chosen)[0] - mlx_array_data_float32(lse)[0];
      if (t != host) differ++;
      else CHECK_MSG(fabsf(lp - host_lp) < 1e-4f, "%s: log-probability %g vs %g", what, lp, host_lp);
    }
    mlx_array_free(u_arr);
    mlx_array_free(token);
    mlx_array_free(chosen);
    mlx_array_free(lse);
  }
  mlx_array_free(logits);
  mlx_array_free(bias);
  return differ;
}

static void agree_on(mlx_stream s, const char* device) {
  static float rows[2 * VOCAB];
  int32_t bias_ids[3] = {7, 7, 2999};
  float bias_values[3] = {3.0f, 2.5f, -50.0f};
  struct {
    const char* name;
    float scale, temperature, top_p, min_p;
    int top_k, repeat;
    bool bias;
  } cases[] = {
      {"temperature", 2.0f, 0.7f, 1.0f, 0, 0, 0, false},   {"top-k", 2.0f, 1.0f, 1.0f, 0, 40, 0, false},
      {"top-p", 1.5f, 0.9f, 0.9f, 0, 0, 0, false},         {"min-p", 2.0f, 1.2f, 1.0f, 0.05f, 0, 0, false},
      {"all and bias", 2.0f, 0.8f, 0.8f, 0.02f, 100, 0, true}, {"ties", 0.5f, 1.0f, 0.5f, 0, 0, 2, false},
      {"top-k 1", 2.0f, 1.0f, 1.0f, 0, 1, 0, false},
      {"top-p keeps one", 2.0f, 1.0f, 0.001f, 0, 0, 0, false},
      {"min-p 1", 2.0f, 1.0f, 1.0f, 1.0f, 0, 0, false},
      {"top-k above the vocabulary", 2.0f, 0.9f, 1.0f, 0, VOCAB + 5, 0, false},
      {"hot and flat", 0.2f, 50.0f, 0.95f, 0, 0, 0, false},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    make_logits(rows, cases[c].scale, cases[c].repeat);
    mlxc_lm_generate_params p = mlxc_lm_generate_default_params();
    p.temperature = cases[c].temperature;
    p.top_p = cases[c].top_p;
    p.min_p = cases[c].min_p;
    p.top_k = cases[c].top_k;
    if (cases[c].bias) {
      p.bias_ids = bias_ids;
      p.bias_values = bias_values;
      p.n_bias = 3;
    }
    char what[96];
    snprintf(what, sizeof what, "%s, %s", device, cases[c].name);
    int differ = disagreements(what, rows, p, s);
    /* A draw within float rounding of a boundary may pick the neighbour: rare, never systematic. */
    CHECK_MSG(differ <= 1, "%s: %d of %d tokens differ from lm_sample's", what, differ, TRIALS);
  }
}

TEST(matches_host_sampler_on_cpu) { agree_on(mlx_default_cpu_stream_new(), "cpu"); }

TEST(matches_host_sampler_on_gpu) {
  int count = 0;
  mlx_device_count(&count, MLX_GPU);
  if (count == 0) {
    printf("SKIP: no CUDA GPU; the GPU half of the comparison did not run\n");
    return;
  }
  agree_on(mlx_default_gpu_stream_new(), "gpu");
}

/* Settings that need the host: penalties (they read the history), XTC, temperature 0. */
TEST(unsupported_settings_are_refused) {
  mlxc_lm_generate_params p = mlxc_lm_generate_default_params();
  CHECK(!lm_sample_device_supported(&p)); /* temperature 0: greedy */
  p.temperature = 0.7f;
  CHECK(lm_sample_device_supported(&p));
  p.repetition_penalty = 1.1f;
  CHECK(!lm_sample_device_supported(&p));
  p.repetition_penalty = 1.0f;
  p.frequency_penalty = 0.1f;
  CHECK(!lm_sample_device_supported(&p));
  p.frequency_penalty = 0;
  p.xtc_probability = 0.5f;
  p.xtc_threshold = 0.1f;
  CHECK(!lm_sample_device_supported(&p));
  float zero = 0;
  int one[1] = {1}, shape[2] = {1, 4};
  float row[4] = {0, 1, 2, 3};
  mlx_array logits = mlx_array_new_data(row, shape, 2, MLX_FLOAT32), u = mlx_array_new_data(&zero, one, 1, MLX_FLOAT32);
  mlx_array t = mlx_array_new(), c = mlx_array_new(), l = mlx_array_new();
  CHECK(lm_sample_device(logits, &p, u, mlx_array_new(), mlx_default_cpu_stream_new(), &t, &c, &l) != 0);
  CHECK(strstr(mlxc_last_error(), "host") != NULL);
  mlx_array_free(logits);
  mlx_array_free(u);
}

int main(void) {
  RUN(unsupported_settings_are_refused);
  RUN(matches_host_sampler_on_cpu);
  RUN(matches_host_sampler_on_gpu);
  return TEST_SUMMARY();
}
