/* Load-time fusion of q/k/v and gate/up into one product each (src/lm/fuse.c; the default,
 * MLXC_FUSE_LINEARS=0 keeps the parts): for every fixture architecture, 4-bit conversions and a
 * quantized GGUF file, the fused model's logits match the separate products' (which
 * test_lm_parity and test_lm_gguf check against transformers) over a prompt and 10 greedy steps. */
#include <stdlib.h>
#include <unistd.h>

#include "lm/model.h"
#include "mlx/c/mlx.h"
#include "mlxc/error.h"
#include "mlxc/lm.h"
#include "test_util.h"

static mlx_stream cpu;

#define PROMPT_LENGTH 41 /* longer than the fixtures' sliding windows (16) */
#define STEPS 10

static mlxc_lm_model* load(const char* path, bool fused) {
  setenv("MLXC_FUSE_LINEARS", fused ? "1" : "0", 1);
  mlxc_lm_model* model = NULL;
  int status = mlxc_lm_load(&model, path, cpu);
  unsetenv("MLXC_FUSE_LINEARS");
  CHECK_MSG(status == 0, "%s (fused %d): %s", path, fused, mlxc_last_error());
  return status ? NULL : model;
}

/* The fused model holds one qkv per attention layer and one gate_up per dense MLP, and none of
 * the separate linears (freed); the plain one holds the checkpoint's own (fused only in phi3). */
static void check_layout(const mlxc_lm_model* m, bool fused, const char* path) {
  bool phi3 = m->arch->fused_qkv;
  for (int i = 0; i < m->config.num_layers; i++) {
    const lm_layer* L = &m->layers[i];
    bool attention = m->config.layer_kinds[i] != LAYER_CONV, dense = !m->config.moe_layer[i];
    CHECK_MSG(!L->qkv.weight.ctx == !(attention && (fused || phi3)), "%s layer %d: qkv", path, i);
    CHECK_MSG(!L->gate_up.weight.ctx == !(dense && (fused || phi3)), "%s layer %d: gate_up", path, i);
    CHECK_MSG(!L->q.weight.ctx == !(attention && !fused && !phi3), "%s layer %d: q", path, i);
    bool separate = L->q.weight.ctx;
    CHECK_MSG(!L->k.weight.ctx == !separate && !L->v.weight.ctx == !separate, "%s layer %d: k, v", path, i);
    CHECK_MSG(!L->gate.weight.ctx == !(dense && !fused && !phi3), "%s layer %d: gate", path, i);
    CHECK_MSG(!L->up.weight.ctx == !L->gate.weight.ctx, "%s layer %d: up", path, i);
  }
}

/* Largest |a - b| and |b| over two float32 arrays of one shape, accumulated. */
static void accumulate(mlx_array a, mlx_array b, double* worst, double* scale) {
  CHECK_EQ_INT(mlx_array_size(a), mlx_array_size(b));
  const float *x = mlx_array_data_float32(a), *y = mlx_array_data_float32(b);
  for (size_t i = 0; i < mlx_array_size(b); i++) {
    *worst = fmax(*worst, fabs((double)x[i] - y[i]));
    *scale = fmax(*scale, fabs((double)y[i]));
  }
}

/* Index of the largest entry of the last row of (n, vocab) logits. */
static int32_t last_argmax(mlx_array logits) {
  int rows = mlx_array_dim(logits, 0), vocab = mlx_array_dim(logits, 1);
  const float* last = mlx_array_data_float32(logits) + (size_t)(rows - 1) * vocab;
  int32_t best = 0;
  for (int32_t j = 1; j < vocab; j++)
    if (last[j] > last[best]) best = j;
  return best;
}

/* Max |fused - plain| / max |plain| over the logits of a prompt and of STEPS greedy steps (the
 * plain model's choices fed to both); infinity when something fails. */
static double logit_error(const mlxc_lm_model* plain, const mlxc_lm_model* fused, const char* label) {
  mlxc_lm_session *sp = NULL, *sf = NULL;
  mlx_array lp = mlx_array_new(), lf = mlx_array_new();
  double worst = 0, scale = 0, err = INFINITY;
  int32_t ids[PROMPT_LENGTH];
  for (int i = 0; i < PROMPT_LENGTH; i++) ids[i] = (int32_t)((i * 37 + 11) % 256);
  if (mlxc_lm_session_new(&sp, plain) || mlxc_lm_session_new(&sf, fused)) goto cleanup;
  size_t n = PROMPT_LENGTH;
  for (int step = 0; step <= STEPS; step++) {
    if (mlxc_lm_forward(sp, ids, n, &lp) || mlxc_lm_forward(sf, ids, n, &lf)) {
      CHECK_MSG(0, "%s: forward: %s", label, mlxc_last_error());
      goto cleanup;
    }
    accumulate(lf, lp, &worst, &scale);
    ids[0] = last_argmax(lp);
    n = 1;
  }
  err = worst / scale;
cleanup:
  mlx_array_free(lp);
  mlx_array_free(lf);
  mlxc_lm_session_free(sp);
  mlxc_lm_session_free(sf);
  return err;
}

/* The model of `path` loaded plain and fused: layouts checked, logit_error. */
static double fused_error(const char* path) {
  mlxc_lm_model *plain = load(path, false), *fused = load(path, true);
  double err = INFINITY;
  if (plain && fused) {
    check_layout(plain, false, path);
    check_layout(fused, true, path);
    err = logit_error(plain, fused, path);
  }
  mlxc_lm_free(plain);
  mlxc_lm_free(fused);
  return err;
}

static const char* fixture(const char* fmt, const char* name) {
  static char path[1024];
  char rel[512];
  snprintf(rel, sizeof rel, fmt, name);
  snprintf(path, sizeof path, "%s/%s", test_source_dir(), rel);
  return path;
}

TEST(test_fused_float_models_match_separate_products) {
  const char* archs[] = {"llama", "llama3_rope", "llama_yarn", "llama_dynamic", "mistral", "qwen2",
                         "qwen3", "gemma2", "gemma3_text", "phi3", "qwen3_moe", "lfm2"};
  for (size_t a = 0; a < sizeof archs / sizeof archs[0]; a++) {
    double err = fused_error(fixture("tests/fixtures/lm/%s", archs[a]));
    printf("  %s: fused vs separate %.2g of max |logit|\n", archs[a], err);
    CHECK_MSG(err <= 1e-5, "%s: %g", archs[a], err);
  }
}

/* Whether the model.safetensors of `dir` holds a tensor named `name`. */
static bool holds(const char* dir, const char* name) {
  char path[1200];
  snprintf(path, sizeof path, "%s/model.safetensors", dir);
  mlx_map_string_to_array tensors = mlx_map_string_to_array_new();
  mlx_map_string_to_string meta = mlx_map_string_to_string_new();
  bool found = false;
  if (mlx_load_safetensors(&tensors, &meta, path, cpu) == 0) {
    mlx_map_string_to_array_iterator it = mlx_map_string_to_array_iterator_new(tensors);
    const char* key;
    mlx_array value = mlx_array_new();
    while (mlx_map_string_to_array_iterator_next(&key, &value, it) == 0) found = found || !strcmp(key, name);
    mlx_array_free(value);
    mlx_map_string_to_array_iterator_free(it);
  }
  mlx_map_string_to_array_free(tensors);
  mlx_map_string_to_string_free(meta);
  return found;
}

/* 4-bit copies (group 32; qwen2 with its q/k/v biases, qwen3_moe with experts left apart): the
 * quantized products of stacked rows are those of each part. Converting reads the folder, not
 * a loaded model, so with MLXC_FUSE_LINEARS set the output still has the separate names. */
TEST(test_fused_quantized_models_match_separate_products) {
  const char* archs[] = {"llama", "qwen2", "qwen3_moe", "lfm2"};
  char tmp[] = "/tmp/mlxc-fused-XXXXXX", dst[1200], cmd[1300];
  CHECK(mkdtemp(tmp) != NULL);
  for (size_t a = 0; a < sizeof archs / sizeof archs[0]; a++) {
    snprintf(dst, sizeof dst, "%s/%s-q4", tmp, archs[a]);
    mlxc_lm_convert_params p = {true, 4, 32, NULL, MLX_FLOAT32};
    setenv("MLXC_FUSE_LINEARS", "1", 1);
    int status = mlxc_lm_convert(fixture("tests/fixtures/lm/%s", archs[a]), dst, &p);
    unsetenv("MLXC_FUSE_LINEARS");
    CHECK_MSG(status == 0, "%s: %s", dst, mlxc_last_error());
    CHECK(holds(dst, "model.layers.1.self_attn.k_proj.scales")); /* lfm2's layer 0 is a convolution */
    CHECK(!holds(dst, "model.layers.1.self_attn.qkv_proj.weight"));
    double err = fused_error(dst);
    printf("  %s 4-bit: fused vs separate %.2g of max |logit|\n", archs[a], err);
    CHECK_MSG(err <= 1e-5, "%s 4-bit: %g", archs[a], err);
  }
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
  CHECK(system(cmd) == 0);
}

/* A GGUF file with Q4_0 weights (converted to MLX's affine layout at load). */
TEST(test_fused_gguf_model_matches_separate_products) {
  double err = fused_error(fixture("tests/fixtures/gguf_lm/%s", "llama-q4_0.gguf"));
  printf("  llama-q4_0.gguf: fused vs separate %.2g of max |logit|\n", err);
  CHECK_MSG(err <= 1e-5, "%g", err);
}

/* Layers whose parts differ (here: layer 0's k projection loses its bias) stay separate, the
 * others fuse, and the decoder runs each layer its own way. */
TEST(test_layers_that_cannot_fuse_stay_separate) {
  const char* path = fixture("tests/fixtures/lm/%s", "qwen2");
  mlxc_lm_model *plain = load(path, false), *mixed = load(path, false);
  if (!plain || !mixed) goto cleanup;
  mlxc_lm_model* models[2] = {plain, mixed};
  for (int i = 0; i < 2; i++) {
    mlx_array_free(models[i]->layers[0].k.bias);
    models[i]->layers[0].k.bias = mlx_array_new();
  }
  setenv("MLXC_FUSE_LINEARS", "1", 1);
  CHECK(lm_model_fuse_linears(mixed) == 0);
  unsetenv("MLXC_FUSE_LINEARS");
  CHECK(mixed->layers[0].q.weight.ctx && mixed->layers[0].k.weight.ctx && !mixed->layers[0].qkv.weight.ctx);
  CHECK(!mixed->layers[1].q.weight.ctx && mixed->layers[1].qkv.weight.ctx);
  CHECK(!mixed->layers[0].gate.weight.ctx && mixed->layers[0].gate_up.weight.ctx);
  double err = logit_error(plain, mixed, "qwen2 without layer 0's k bias");
  printf("  qwen2, layer 0 separate: fused vs separate %.2g of max |logit|\n", err);
  CHECK_MSG(err <= 1e-5, "%g", err);
cleanup:
  mlxc_lm_free(plain);
  mlxc_lm_free(mixed);
}

/* Running out of memory while stacking (at the first linear, or after some layers are fused)
 * fails the load with the allocator's message and releases what was taken (the ASan build checks
 * for leaks). The plain load of the same model allocates nothing and succeeds. */
TEST(test_fusion_out_of_memory_fails_the_load) {
  const char* path = fixture("tests/fixtures/lm/%s", "llama");
  size_t limits[2] = {1, 40000}; /* llama's first qkv is 128 x 64 float32: 32 KiB */
  mlxc_set_errors_quiet(1);
  for (int i = 0; i < 2; i++) {
    size_t previous = 0, ignored = 0;
    mlxc_lm_model* model = NULL;
    CHECK(mlx_set_memory_limit(&previous, limits[i]) == 0);
    mlxc_lm_model* plain = load(path, false);
    setenv("MLXC_FUSE_LINEARS", "1", 1);
    CHECK(mlxc_lm_load(&model, path, cpu) != 0);
    unsetenv("MLXC_FUSE_LINEARS");
    CHECK(model == NULL);
    CHECK_MSG(strstr(mlxc_last_error(), "memory limit") != NULL, "%s", mlxc_last_error());
    CHECK(mlx_set_memory_limit(&ignored, previous) == 0);
    mlxc_lm_free(plain);
  }
  mlxc_set_errors_quiet(0);
}

int main(void) {
  cpu = mlx_default_cpu_stream_new();
  unsetenv("MLXC_FUSE_LINEARS");
  RUN(test_fused_float_models_match_separate_products);
  RUN(test_fused_quantized_models_match_separate_products);
  RUN(test_fused_gguf_model_matches_separate_products);
  RUN(test_layers_that_cannot_fuse_stay_separate);
  RUN(test_fusion_out_of_memory_fails_the_load);
  return TEST_SUMMARY();
}
