/* mlxc_lm_convert: bfloat16 and 8/4-bit affine-quantized copies of the parity checkpoints load
 * and stay within documented bounds of transformers' float32 logits (docs/lm.md), and errors are
 * clean. The bounds are relative to the largest |logit| of the prompt. */
#include <stdlib.h>
#include <unistd.h>

#include "mlx/c/mlx.h"
#include "mlxc/error.h"
#include "mlxc/lm.h"
#include "test_util.h"

static mlx_stream cpu;

/* Max |logit - reference| / max |reference| over prompt 2 (41 tokens). */
static double logit_error(const char* model_dir, const char* ref_dir) {
  char path[1200];
  mlxc_lm_model* model = NULL;
  mlxc_lm_session* session = NULL;
  if (mlxc_lm_load(&model, model_dir, cpu) || mlxc_lm_session_new(&session, model)) {
    fprintf(stderr, "  load %s: %s\n", model_dir, mlxc_last_error());
    mlxc_lm_free(model);
    return 1e9;
  }
  mlx_map_string_to_array ref = mlx_map_string_to_array_new();
  mlx_map_string_to_string meta = mlx_map_string_to_string_new();
  snprintf(path, sizeof path, "%s/reference.safetensors", ref_dir);
  mlx_array prompt = mlx_array_new(), want = mlx_array_new(), got = mlx_array_new();
  double err = 1e9;
  if (mlx_load_safetensors(&ref, &meta, path, cpu) == 0 && mlx_map_string_to_array_get(&prompt, ref, "prompt_2") == 0 &&
      mlx_map_string_to_array_get(&want, ref, "logits_2") == 0 &&
      mlxc_lm_forward(session, mlx_array_data_int32(prompt), mlx_array_size(prompt), &got) == 0) {
    const float *g = mlx_array_data_float32(got), *w = mlx_array_data_float32(want);
    double scale = 0, worst = 0;
    for (size_t i = 0; i < mlx_array_size(want); i++) {
      scale = fmax(scale, fabs(w[i]));
      worst = fmax(worst, fabs(g[i] - w[i]));
    }
    err = worst / scale;
  }
  mlx_array_free(prompt);
  mlx_array_free(want);
  mlx_array_free(got);
  mlx_map_string_to_array_free(ref);
  mlx_map_string_to_string_free(meta);
  mlxc_lm_session_free(session);
  mlxc_lm_free(model);
  return err;
}

TEST(test_converted_models_stay_within_bounds) {
  static const struct {
    const char* name;
    bool quantize;
    int bits;
    const char* dtype;
    mlx_dtype d;
    double bound;
  } cases[] = {
      {"bf16", false, 0, "bfloat16", MLX_BFLOAT16, 0.04},
      {"q8", true, 8, NULL, MLX_FLOAT32, 0.05},
      {"q4", true, 4, NULL, MLX_FLOAT32, 0.45},
  };
  const char* archs[] = {"llama", "qwen3", "gemma3_text"};
  char tmp[] = "/tmp/mlxc-convert-XXXXXX";
  CHECK(mkdtemp(tmp) != NULL);
  for (size_t a = 0; a < 3; a++)
    for (size_t c = 0; c < 3; c++) {
      char src[1024], dst[1200];
      snprintf(src, sizeof src, "%s/tests/fixtures/lm/%s", test_source_dir(), archs[a]);
      snprintf(dst, sizeof dst, "%s/%s-%s", tmp, archs[a], cases[c].name);
      mlxc_lm_convert_params p = {cases[c].quantize, cases[c].bits, 32, cases[c].dtype, cases[c].d};
      CHECK_MSG(mlxc_lm_convert(src, dst, &p) == 0, "%s: %s", dst, mlxc_last_error());
      double err = logit_error(dst, src);
      printf("  %s %s: max logit error %.4f of max |logit|\n", archs[a], cases[c].name, err);
      CHECK_MSG(err <= cases[c].bound, "%s %s: %g > %g", archs[a], cases[c].name, err, cases[c].bound);
    }
  char cmd[1300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
  CHECK(system(cmd) == 0);
}

TEST(test_convert_errors) {
  mlxc_set_errors_quiet(1);
  mlxc_lm_convert_params bad_bits = {true, 7, 64, NULL, MLX_FLOAT32};
  CHECK(mlxc_lm_convert("x", "/tmp/never", &bad_bits) != 0);
  CHECK(strstr(mlxc_last_error(), "bits") != NULL);
  mlxc_lm_convert_params ok = {true, 4, 64, NULL, MLX_FLOAT32};
  CHECK(mlxc_lm_convert("/nonexistent", "/tmp/never", &ok) != 0);
  CHECK(access("/tmp/never", F_OK) != 0); /* nothing half-written */
  mlxc_set_errors_quiet(0);
}

int main(void) {
  cpu = mlx_default_cpu_stream_new();
  RUN(test_converted_models_stay_within_bounds);
  RUN(test_convert_errors);
  return TEST_SUMMARY();
}
