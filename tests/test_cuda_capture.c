/* Recording and replay of GPU work (include/mlxc/capture.h) and the kernels a replayable decode
 * step needs: dynamic slices and slice updates whose offsets stay on the device, logical
 * and/or. GPU results against the CPU's; replays against values recomputed on the CPU for each
 * new input. Skips (passing) without a CUDA GPU, after checking the errors that need none. */
#include <time.h>

#include <sys/stat.h>
#include <unistd.h>

#include "lm/decode_step.h"
#include "lm/fused_layers.h"
#include "lm/model.h"
#include "mlxc/capture.h"
#include "mlxc/error.h"
#include "mlxc/lm.h"
#include "mlxc/memory.h"

#include "cuda_test_util.h"

/* A device-resident copy of a host array. */
static mlx_array on_gpu(mlx_array host) {
  mlx_array d = mlx_array_new();
  mlx_copy(&d, host, gpu);
  mlx_array_eval(d);
  return d;
}

TEST(dynamic_slice_and_update) {
  int shape[4] = {1, 3, 40, 16}, ushape[4] = {1, 3, 2, 16};
  int axes[1] = {2}, sizes[4] = {1, 3, 5, 16};
  const int32_t starts[] = {0, 7, 38, 39, -4, -100, 100};
  for (size_t k = 0; k < sizeof starts / sizeof starts[0]; k++) {
    mlx_array src = rand_array(shape, 4, MLX_BFLOAT16, -1, 1), upd = rand_array(ushape, 4, MLX_BFLOAT16, -1, 1);
    int one[1] = {1};
    mlx_array st = mlx_array_new_data(&starts[k], one, 1, MLX_INT32), dst = on_gpu(st);
    mlx_array g = mlx_array_new(), c = mlx_array_new(), gs = mlx_array_new(), cs = mlx_array_new();
    char what[80];
    snprintf(what, sizeof what, "slice_update_dynamic at %d", starts[k]);
    CHECK(mlx_slice_update_dynamic(&g, src, upd, dst, axes, 1, gpu) == 0);
    CHECK_MSG(made_on_gpu(g), "%s: not computed on the GPU", what);
    mlx_slice_update_dynamic(&c, src, upd, st, axes, 1, cpu);
    compare(what, g, c, 0, 0, 0);
    snprintf(what, sizeof what, "slice_dynamic at %d", starts[k]);
    CHECK(mlx_slice_dynamic(&gs, src, dst, axes, 1, sizes, 4, gpu) == 0);
    CHECK_MSG(made_on_gpu(gs), "%s: not computed on the GPU", what);
    mlx_slice_dynamic(&cs, src, st, axes, 1, sizes, 4, cpu);
    compare(what, gs, cs, 0, 0, 0);
    mlx_array arrays[] = {src, upd, st, dst, g, c, gs, cs};
    for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) mlx_array_free(arrays[i]);
  }
  /* The KV-cache idiom: the update replaces the only handle, so it happens in place. */
  mlx_array host = rand_array(shape, 4, MLX_FLOAT32, -1, 1), cache = on_gpu(host), ref = mlx_array_new();
  mlx_copy(&ref, host, cpu);
  const void* before = core_ctx(cache)->buffer->device_data;
  for (int32_t pos = 0; pos < 6; pos++) {
    int one[1] = {1};
    mlx_array upd = rand_array(ushape, 4, MLX_FLOAT32, -1, 1), st = mlx_array_new_data(&pos, one, 1, MLX_INT32);
    CHECK(mlx_slice_update_dynamic(&cache, cache, upd, st, axes, 1, gpu) == 0);
    mlx_array_eval(cache);
    mlx_slice_update_dynamic(&ref, ref, upd, st, axes, 1, cpu);
    mlx_array_free(upd);
    mlx_array_free(st);
  }
  CHECK_MSG(core_ctx(cache)->buffer->device_data == before, "the cache update was not made in place");
  compare("in-place dynamic updates", cache, ref, 0, 0, 0);
  mlx_array arrays[] = {host, cache, ref};
  for (size_t i = 0; i < 3; i++) mlx_array_free(arrays[i]);
}

TEST(logical_and_or) {
  int sa[2] = {5, 1}, sb[2] = {1, 7};
  mlx_array a0 = rand_array(sa, 2, MLX_FLOAT32, -1, 1), b0 = rand_array(sb, 2, MLX_FLOAT32, -1, 1);
  mlx_array zero = mlx_array_new_float(0.0f), a = mlx_array_new(), b = mlx_array_new();
  mlx_greater(&a, a0, zero, cpu);
  mlx_less(&b, b0, zero, cpu);
  mlx_array_eval(a);
  mlx_array_eval(b);
  typedef int (*logical_fn)(mlx_array*, const mlx_array, const mlx_array, const mlx_stream);
  const logical_fn fns[2] = {mlx_logical_and, mlx_logical_or};
  for (int f = 0; f < 2; f++) {
    mlx_array g = mlx_array_new(), c = mlx_array_new();
    CHECK(fns[f](&g, a, b, gpu) == 0);
    CHECK_MSG(made_on_gpu(g), "logical %s: not computed on the GPU", f ? "or" : "and");
    fns[f](&c, a, b, cpu);
    compare(f ? "logical_or" : "logical_and", g, c, 0, 0, 0);
    mlx_array_free(g);
    mlx_array_free(c);
  }
  mlx_array arrays[] = {a0, b0, zero, a, b};
  for (size_t i = 0; i < 5; i++) mlx_array_free(arrays[i]);
}

/* The step recorded below, on either stream: y = sum(exp(x * w) + x, last axis), the cache
 * row `pos` set to x * w, and attention-like mask = slots <= pos. */
static int build_step(mlx_array* y, mlx_array* cache, mlx_array* mask, mlx_array x, mlx_array w, mlx_array pos,
                      mlx_array slots, mlx_stream s) {
  mlx_array t = mlx_array_new(), e = mlx_array_new(), row = mlx_array_new();
  int axes[1] = {1}, rshape[2] = {1, 8};
  int status = mlx_multiply(&t, x, w, s);
  if (!status) status = mlx_exp(&e, t, s);
  if (!status) status = mlx_add(&e, e, x, s);
  if (!status) status = mlx_sum_axis(y, e, -1, false, s);
  if (!status) status = mlx_reshape(&row, t, rshape, 2, s);
  if (!status) status = mlx_slice_update_dynamic(cache, *cache, row, pos, axes, 1, s);
  if (!status) status = mlx_less_equal(mask, slots, pos, s);
  mlx_array_free(t);
  mlx_array_free(e);
  mlx_array_free(row);
  return status;
}

TEST(record_and_replay) {
  mlx_synchronize(gpu);
  size_t active0, peak, cached;
  mlxc_gpu_memory(0, &active0, &peak, &cached);
  int sx[1] = {8}, sc[2] = {16, 8}, one[1] = {1};
  int32_t slot_values[16];
  for (int i = 0; i < 16; i++) slot_values[i] = i;
  mlx_array w_host = rand_array(sx, 1, MLX_FLOAT32, -1, 1), x_host = rand_array(sx, 1, MLX_FLOAT32, -1, 1);
  mlx_array zeros = mlx_array_new(), slots_host = mlx_array_new_data(slot_values, sc, 1, MLX_INT32);
  mlx_zeros(&zeros, sc, 2, MLX_FLOAT32, cpu);
  int32_t pos_value = 0;
  mlx_array pos_host = mlx_array_new_data(&pos_value, one, 1, MLX_INT32);
  mlx_array w = on_gpu(w_host), x = on_gpu(x_host), pos = on_gpu(pos_host), cache = on_gpu(zeros);
  mlx_array slots = on_gpu(slots_host);
  mlx_array ref_cache = mlx_array_new(), y = mlx_array_new(), mask = mlx_array_new();
  mlx_copy(&ref_cache, zeros, cpu);

  CHECK(mlxc_capture_begin(gpu) == 0);
  CHECK(build_step(&y, &cache, &mask, x, w, pos, slots, gpu) == 0);
  mlx_vector_array outs = mlx_vector_array_new_data((mlx_array[]){y, cache, mask}, 3);
  CHECK(mlx_eval(outs) == 0);
  mlx_vector_array_free(outs);
  mlxc_capture* step = NULL;
  CHECK_MSG(mlxc_capture_end(gpu, &step) == 0 && step, "capture: %s", mlxc_last_error());
  const void* cache_memory = core_ctx(cache)->buffer->device_data;
  /* Each replay with new inputs equals the step recomputed on the CPU. */
  for (int32_t p = 0; p < 12 && step; p++) {
    mlx_array xh = rand_array(sx, 1, MLX_FLOAT32, -1, 1);
    if (p > 0) {
      CHECK(mlxc_array_write(x, mlx_array_data_float32(xh), 8 * sizeof(float)) == 0);
      CHECK(mlxc_array_write(pos, &p, sizeof p) == 0);
      CHECK(mlxc_capture_replay(step) == 0);
    } else {
      mlx_array_free(xh);
      xh = mlx_array_new();
      mlx_copy(&xh, x_host, cpu);
    }
    mlx_array cy = mlx_array_new(), cmask = mlx_array_new(), ph = mlx_array_new_data(&p, one, 1, MLX_INT32);
    CHECK(build_step(&cy, &ref_cache, &cmask, xh, w_host, ph, slots_host, cpu) == 0);
    char what[64];
    snprintf(what, sizeof what, "replay %d: y", p);
    compare(what, y, cy, 1e-6, 1e-6, 0);
    snprintf(what, sizeof what, "replay %d: cache", p);
    compare(what, cache, ref_cache, 1e-6, 1e-6, 0);
    snprintf(what, sizeof what, "replay %d: mask", p);
    compare(what, mask, cmask, 0, 0, 0);
    mlx_array arrays[] = {xh, cy, cmask, ph};
    for (size_t i = 0; i < 4; i++) mlx_array_free(arrays[i]);
  }
  CHECK_MSG(core_ctx(cache)->buffer->device_data == cache_memory, "the recorded cache update was not in place");
  /* Inputs that cannot be written. */
  bool quiet = mlxc_set_errors_quiet(true);
  CHECK(mlxc_array_write(x, slot_values, 4) != 0);
  CHECK(strstr(mlxc_last_error(), "bytes for an array of") != NULL);
  mlx_array alias = mlx_array_new();
  mlx_array_set(&alias, x);
  CHECK(mlxc_array_write(x, slot_values, 8 * sizeof(float)) != 0);
  CHECK(strstr(mlxc_last_error(), "shares its memory") != NULL);
  mlx_array_free(alias);
  mlx_array pending = mlx_array_new();
  mlx_add(&pending, x, x, gpu);
  CHECK(mlxc_array_write(pending, slot_values, 8 * sizeof(float)) != 0);
  CHECK(strstr(mlxc_last_error(), "not evaluated") != NULL);
  mlx_array_free(pending);
  mlxc_set_errors_quiet(quiet);
  mlxc_capture_free(step);
  mlx_array arrays[] = {w_host, x_host, zeros, slots_host, pos_host, w, x, pos, cache, slots, ref_cache, y, mask};
  for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) mlx_array_free(arrays[i]);
  /* Everything the recording held is given back. */
  mlx_synchronize(gpu);
  size_t active1;
  mlxc_gpu_memory(0, &active1, &peak, &cached);
  CHECK_EQ_INT(active1, active0);
}

TEST(recording_failures) {
  int s[2] = {6, 6};
  mlx_array host = rand_array(s, 2, MLX_FLOAT32, -1, 1), x = on_gpu(host), y = mlx_array_new();
  bool quiet = mlxc_set_errors_quiet(true);
  /* A matrix inverse has no GPU kernel: the recording fails with a message and nothing is kept. */
  CHECK(mlxc_capture_begin(gpu) == 0);
  CHECK(mlxc_capture_begin(gpu) != 0); /* one at a time */
  CHECK(mlx_linalg_inv(&y, x, gpu) == 0);
  CHECK(mlx_array_eval(y) != 0);
  CHECK(strstr(mlxc_last_error(), "cannot be recorded") != NULL);
  mlxc_capture* c = NULL;
  CHECK(mlxc_capture_end(gpu, &c) != 0);
  CHECK(c == NULL);
  /* A host read while recording fails too. */
  mlx_array z = mlx_array_new();
  CHECK(mlxc_capture_begin(gpu) == 0);
  mlx_exp(&z, x, gpu);
  CHECK(mlx_array_eval(z) == 0);
  CHECK(mlx_array_data_float32(z) == NULL);
  CHECK(mlxc_capture_end(gpu, &c) != 0 && c == NULL);
  mlx_array_free(z);
  /* Trimming the GPU's memory waits for its stream: refused while recording, an error that voids
   * the recording as any other does; mlx_clear_cache leaves a recording GPU alone. */
  size_t prior = 0;
  CHECK(mlxc_capture_begin(gpu) == 0);
  CHECK(mlxc_gpu_clear_cache(0) != 0);
  CHECK(strstr(mlxc_last_error(), "being recorded") != NULL);
  CHECK(mlxc_gpu_set_wired_limit(&prior, 0, 0) != 0);
  CHECK(mlxc_capture_end(gpu, &c) != 0 && c == NULL);
  z = mlx_array_new();
  CHECK(mlxc_capture_begin(gpu) == 0);
  CHECK(mlx_clear_cache() == 0);
  mlx_exp(&z, x, gpu);
  CHECK(mlx_array_eval(z) == 0);
  CHECK(mlxc_capture_end(gpu, &c) == 0 && c != NULL);
  CHECK(mlxc_capture_replay(c) == 0);
  mlxc_capture_free(c);
  c = NULL;
  mlx_array_free(z);
  /* Recording needs a GPU stream; ending needs a recording. */
  CHECK(mlxc_capture_begin(cpu) != 0);
  CHECK(mlxc_capture_end(gpu, &c) != 0);
  mlxc_set_errors_quiet(quiet);
  /* The GPU works normally afterwards. */
  mlx_array g = mlx_array_new(), cc = mlx_array_new();
  CHECK(mlx_exp(&g, x, gpu) == 0);
  mlx_exp(&cc, host, cpu);
  compare("exp after failed recordings", g, cc, 1e-6, 0, 0);
  mlx_array arrays[] = {host, x, y, g, cc};
  for (size_t i = 0; i < 5; i++) mlx_array_free(arrays[i]);
}

/* An LM fixture copied (linked) into `out` with room for 1024 positions, so that a decode can
 * cross the 256-slot boundary where the recorded step is recorded again. */
static bool fixture_with_more_positions(const char* arch, char* out, size_t size) {
  char src[1024], path[1300], text[8192];
  snprintf(src, sizeof src, "%s/tests/fixtures/lm/%s", test_source_dir(), arch);
  snprintf(out, size, "/tmp/mlxc-test-capture-%d-%s", (int)getpid(), arch);
  mkdir(out, 0755);
  const char* files[2] = {"model.safetensors", "generation_config.json"};
  for (int i = 0; i < 2; i++) {
    char from[1300];
    snprintf(from, sizeof from, "%s/%s", src, files[i]);
    snprintf(path, sizeof path, "%s/%s", out, files[i]);
    unlink(path);
    if (symlink(from, path)) return false;
  }
  snprintf(path, sizeof path, "%s/config.json", src);
  FILE* f = fopen(path, "rb");
  size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
  if (f) fclose(f);
  text[n] = 0;
  char* at = strstr(text, "\"max_position_embeddings\": 256");
  if (!at) return false;
  memcpy(at + strlen("\"max_position_embeddings\": "), "999", 3); /* same length: 256 -> 999 */
  snprintf(path, sizeof path, "%s/config.json", out);
  f = fopen(path, "wb");
  bool ok = f && fwrite(text, 1, n, f) == n;
  if (f) fclose(f);
  return ok;
}

/* The fixture of `arch` (with room for 1024 positions) loaded on the GPU, or NULL (reported). */
static mlxc_lm_model* load_on_gpu(const char* arch) {
  char dir[600];
  mlxc_lm_model* m = NULL;
  CHECK_MSG(fixture_with_more_positions(arch, dir, sizeof dir), "%s: fixture copy failed", arch);
  if (mlxc_lm_load(&m, dir, gpu)) {
    CHECK_MSG(0, "%s: load failed: %s", arch, mlxc_last_error());
    return NULL;
  }
  return m;
}

/* Greedy generation with recorded and replayed steps equals the same generation with every step
 * built and launched normally (MLXC_NO_GRAPHS), token for token, across a re-recording. */
TEST(lm_replayed_decode) {
  static const char* const archs[] = {"llama", "llama3_rope", "mistral", "qwen2", "qwen3", "phi3", "gemma3_text"};
  for (size_t a = 0; a < sizeof archs / sizeof archs[0]; a++) {
    mlxc_lm_model* m = load_on_gpu(archs[a]);
    if (!m) continue;
    int32_t prompt[240];
    for (int i = 0; i < 240; i++) prompt[i] = (int32_t)((i * 37 + 11) % 256);
    mlxc_lm_generate_params p = mlxc_lm_generate_default_params();
    p.max_tokens = 40; /* positions 240..279: recorded again at 256 */
    mlxc_lm_generation runs[2];
    unsigned long replays_before = lm_step_replay_count();
    for (int r = 0; r < 2; r++) {
      if (r == 1) setenv("MLXC_NO_GRAPHS", "1", 1);
      mlxc_lm_session* s = NULL;
      CHECK(mlxc_lm_session_new(&s, m) == 0);
      CHECK_MSG(mlxc_lm_generate(s, prompt, 240, &p, &runs[r]) == 0, "%s: generate: %s", archs[a], mlxc_last_error());
      mlxc_lm_session_free(s);
      if (r == 0) CHECK_MSG(lm_step_replay_count() - replays_before >= 30, "%s: the steps were not replayed", archs[a]);
    }
    unsetenv("MLXC_NO_GRAPHS");
    CHECK_MSG(runs[0].n_ids == runs[1].n_ids, "%s: %zu vs %zu tokens", archs[a], runs[0].n_ids, runs[1].n_ids);
    int same = 0;
    float worst = 0;
    for (size_t i = 0; i < runs[0].n_ids && i < runs[1].n_ids; i++) {
      if (runs[0].ids[i] != runs[1].ids[i]) break;
      same++;
      float d = fabsf(runs[0].logprobs[i] - runs[1].logprobs[i]);
      worst = d > worst ? d : worst;
    }
    CHECK_MSG((size_t)same == runs[0].n_ids, "%s: replayed tokens differ from position %d", archs[a], same);
    CHECK_MSG(worst < 1e-3f, "%s: log-probabilities differ by %g", archs[a], worst);
    for (int r = 0; r < 2; r++) mlxc_lm_generation_free(&runs[r]);
    mlxc_lm_free(m);
  }
}

/* Greedy generation of `model_dir` (prompt of n tokens) with every decoder layer in one
 * persistent kernel (MLXC_FUSED_LAYERS=1, replayed) against the chain of kernels (replayed):
 * identical tokens for at least `min_same` steps and log-probabilities within `tol` there. */
static void compare_fused(const char* label, mlxc_lm_model* m, int n, size_t min_same, float tol) {
  int32_t prompt[240];
  for (int i = 0; i < n; i++) prompt[i] = (int32_t)((i * 37 + 11) % 256);
  mlxc_lm_generate_params p = mlxc_lm_generate_default_params();
  p.max_tokens = 40;
  mlxc_lm_generation runs[2];
  for (int r = 0; r < 2; r++) {
    if (r == 0) setenv("MLXC_FUSED_LAYERS", "1", 1);
    unsigned long built = lm_fused_layers_built(), replays = lm_step_replay_count();
    mlxc_lm_session* s = NULL;
    CHECK(mlxc_lm_session_new(&s, m) == 0);
    CHECK_MSG(mlxc_lm_generate(s, prompt, (size_t)n, &p, &runs[r]) == 0, "%s: generate: %s", label, mlxc_last_error());
    mlxc_lm_session_free(s);
    unsetenv("MLXC_FUSED_LAYERS");
    CHECK_MSG(lm_step_replay_count() - replays >= 30, "%s: the steps were not replayed", label);
    if (r == 0) CHECK_MSG(lm_fused_layers_built() > built, "%s: the fused layers were not taken", label);
  }
  size_t same = 0;
  float worst = 0;
  for (size_t i = 0; i < runs[0].n_ids && i < runs[1].n_ids && runs[0].ids[i] == runs[1].ids[i]; i++, same++) {
    float d = fabsf(runs[0].logprobs[i] - runs[1].logprobs[i]);
    worst = d > worst ? d : worst;
  }
  printf("  %s: %zu of %zu tokens the same, log-probabilities within %.2g\n", label, same, runs[1].n_ids, worst);
  CHECK_MSG(same >= min_same, "%s: fused tokens differ from position %zu", label, same);
  CHECK_MSG(worst < tol, "%s: log-probabilities differ by %g", label, worst);
  for (int r = 0; r < 2; r++) mlxc_lm_generation_free(&runs[r]);
}

/* The decode_layers node's GPU kernel (MLXC_FUSED_LAYERS=1) against the chain of kernels: the
 * float32 fixtures (the chain's float32 products run on TF32, hence 3e-3) across a re-recording,
 * and bfloat16 4-bit conversions of two of them (bfloat16 roundings in other orders may move a
 * near tie: the first 10 tokens must agree). */
TEST(lm_fused_decode_layers) {
  static const char* const archs[] = {"llama", "llama3_rope", "qwen2", "phi3"};
  for (size_t a = 0; a < sizeof archs / sizeof archs[0]; a++) {
    mlxc_lm_model* m = load_on_gpu(archs[a]);
    if (!m) continue;
    compare_fused(archs[a], m, 240, 40, 3e-3f);
    mlxc_lm_free(m);
  }
  static const char* const quantized[] = {"llama", "qwen2"};
  for (size_t a = 0; a < 2; a++) {
    char src[1024], dst[1100], label[64];
    snprintf(src, sizeof src, "%s/tests/fixtures/lm/%s", test_source_dir(), quantized[a]);
    snprintf(dst, sizeof dst, "/tmp/mlxc-test-fused-%d-%s-q4", (int)getpid(), quantized[a]);
    snprintf(label, sizeof label, "%s bf16 4-bit", quantized[a]);
    mlxc_lm_convert_params cp = {true, 4, 32, "bfloat16", MLX_BFLOAT16};
    mlxc_lm_model* m = NULL;
    CHECK_MSG(mlxc_lm_convert(src, dst, &cp) == 0 && mlxc_lm_load(&m, dst, gpu) == 0, "%s: %s", label,
              mlxc_last_error());
    if (m) compare_fused(label, m, 100, 10, 0.05f);
    mlxc_lm_free(m);
  }
}

/* The decode step's norms inside its projections (mlxc_fast_linear_residual and
 * mlxc_fast_rms_norm_linear: bfloat16 steps on the GPU) against the separate norm kernels
 * (MLXC_FUSED_NORMS=0), both replayed, on bfloat16 and bfloat16 4- and 8-bit conversions of the
 * fixtures: stacked q/k/v with biases (qwen2), q/k norms (qwen3), phi3's checkpoint layout. The
 * norm's factor comes after the products and the mean squares are added in another order: the
 * fixtures' flat logits hold near ties that this may tip, so the two generations must agree up
 * to their first difference, and there the two chosen tokens' log-probabilities (each run's best)
 * must be as close as everywhere else. */
TEST(lm_fused_norms) {
  static const char* const archs[] = {"llama", "qwen2", "qwen3", "phi3", "llama", "qwen2", "qwen2"};
  static const int bits[] = {0, 0, 0, 0, 4, 4, 8};
  for (size_t a = 0; a < sizeof archs / sizeof archs[0]; a++) {
    char src[1024], dst[1100], label[64];
    snprintf(src, sizeof src, "%s/tests/fixtures/lm/%s", test_source_dir(), archs[a]);
    snprintf(dst, sizeof dst, "/tmp/mlxc-test-norms-%d-%s-%d", (int)getpid(), archs[a], bits[a]);
    snprintf(label, sizeof label, "%s bf16 %d-bit", archs[a], bits[a]);
    mlxc_lm_convert_params cp = {bits[a] != 0, bits[a], 32, "bfloat16", MLX_BFLOAT16};
    mlxc_lm_model* m = NULL;
    CHECK_MSG(mlxc_lm_convert(src, dst, &cp) == 0 && mlxc_lm_load(&m, dst, gpu) == 0, "%s: %s", label,
              mlxc_last_error());
    if (!m) continue;
    int32_t prompt[100];
    for (int i = 0; i < 100; i++) prompt[i] = (int32_t)((i * 37 + 11) % 256);
    mlxc_lm_generate_params p = mlxc_lm_generate_default_params();
    p.max_tokens = 30;
    mlxc_lm_generation runs[2];
    for (int r = 0; r < 2; r++) {
      if (r == 1) setenv("MLXC_FUSED_NORMS", "0", 1);
      unsigned long fused = lm_decoder_fused_norm_builds();
      mlxc_lm_session* s = NULL;
      CHECK(mlxc_lm_session_new(&s, m) == 0);
      CHECK_MSG(mlxc_lm_generate(s, prompt, 100, &p, &runs[r]) == 0, "%s: generate: %s", label, mlxc_last_error());
      mlxc_lm_session_free(s);
      if (r == 0) CHECK_MSG(lm_decoder_fused_norm_builds() > fused, "%s: the fused norms were not taken", label);
      else CHECK_MSG(lm_decoder_fused_norm_builds() == fused, "%s: MLXC_FUSED_NORMS=0 was not obeyed", label);
    }
    unsetenv("MLXC_FUSED_NORMS");
    size_t same = 0, n = runs[0].n_ids < runs[1].n_ids ? runs[0].n_ids : runs[1].n_ids;
    float worst = 0;
    for (size_t i = 0; i < n; i++) { /* up to and including the first difference */
      float d = fabsf(runs[0].logprobs[i] - runs[1].logprobs[i]);
      worst = d > worst ? d : worst;
      if (runs[0].ids[i] != runs[1].ids[i]) break;
      same++;
    }
    printf("  %s: %zu of %zu tokens the same, log-probabilities within %.2g\n", label, same, runs[1].n_ids, worst);
    CHECK_MSG(n == 30, "%s: %zu tokens", label, n);
    CHECK_MSG(worst < 0.05f, "%s: log-probabilities differ by %g", label, worst);
    for (int r = 0; r < 2; r++) mlxc_lm_generation_free(&runs[r]);
    mlxc_lm_free(m);
  }
}

/* Sampled generation on the GPU (temperature, top-p, top-k): the recorded step samples on the
 * device from the host generator's draws. The same seed gives the same tokens again, and the same
 * tokens as the host sampler reading the whole row (MLXC_HOST_SAMPLER), across a re-recording. */
TEST(lm_sampled_decode_on_device) {
  static const char* const archs[] = {"llama", "qwen2"};
  for (size_t a = 0; a < sizeof archs / sizeof archs[0]; a++) {
    mlxc_lm_model* m = load_on_gpu(archs[a]);
    if (!m) continue;
    int32_t prompt[240];
    for (int i = 0; i < 240; i++) prompt[i] = (int32_t)((i * 53 + 5) % 256);
    mlxc_lm_generate_params p = mlxc_lm_generate_default_params();
    p.max_tokens = 40; /* positions 240..279: recorded again at 256 */
    p.temperature = 1.5f; /* the fixtures' logits are flat: many candidates survive top-p */
    p.top_p = 0.9f;
    p.top_k = 50;
    p.seed = 11;
    mlxc_lm_generation runs[3];
    unsigned long replays_before = lm_step_replay_count();
    for (int r = 0; r < 3; r++) {
      if (r == 2) setenv("MLXC_HOST_SAMPLER", "1", 1);
      mlxc_lm_session* s = NULL;
      CHECK(mlxc_lm_session_new(&s, m) == 0);
      CHECK_MSG(mlxc_lm_generate(s, prompt, 240, &p, &runs[r]) == 0, "%s: generate: %s", archs[a], mlxc_last_error());
      mlxc_lm_session_free(s);
      if (r == 0) CHECK_MSG(lm_step_replay_count() - replays_before >= 30, "%s: the steps were not replayed", archs[a]);
    }
    unsetenv("MLXC_HOST_SAMPLER");
    for (int r = 1; r < 3; r++) {
      size_t same = 0;
      while (same < runs[0].n_ids && same < runs[r].n_ids && runs[0].ids[same] == runs[r].ids[same]) same++;
      CHECK_MSG(same == runs[0].n_ids && same == runs[r].n_ids, "%s: run %d differs from position %zu", archs[a], r,
                same);
      for (size_t i = 0; i < same; i++)
        CHECK_MSG(fabsf(runs[0].logprobs[i] - runs[r].logprobs[i]) < 1e-3f, "%s: log-probability %zu", archs[a], i);
    }
    int distinct = 0; /* sampled, not greedy: a flat distribution gives varied tokens */
    for (size_t i = 1; i < runs[0].n_ids; i++) distinct += runs[0].ids[i] != runs[0].ids[i - 1];
    CHECK_MSG(runs[0].n_ids == 40 && distinct > 10, "%s: %zu tokens, %d changes", archs[a], runs[0].n_ids, distinct);
    for (int r = 0; r < 3; r++) mlxc_lm_generation_free(&runs[r]);
    mlxc_lm_free(m);
  }
}

/* Decode steps queued ahead (lm_step_run with more): fed tokens that differ from the step's
 * choice every third step, the queued step is dropped and the position decoded again, so the
 * choices equal those of steps run one at a time (MLXC_STEP_AHEAD=0), log-probabilities too; the
 * cache slot the dropped step wrote is rewritten. Also a generation stopped by its callback,
 * continued in the same session, equals one run without steps ahead. */
static int stop_at_12(int32_t token, void* user) {
  (void)token;
  return ++*(int*)user == 12;
}

TEST(lm_steps_queued_ahead) {
  mlxc_lm_model* m = load_on_gpu("llama");
  if (!m) return;
  int32_t prompt[16], picks[2][24];
  float logprobs[2][24];
  for (int i = 0; i < 16; i++) prompt[i] = (int32_t)((i * 29 + 3) % 256);
  unsigned long replays = lm_step_replay_count();
  for (int r = 0; r < 2; r++) {
    if (r == 1) setenv("MLXC_STEP_AHEAD", "0", 1);
    mlxc_lm_session* s = NULL;
    mlx_array logits = mlx_array_new();
    mlxc_lm_generate_params p = mlxc_lm_generate_default_params();
    lm_step st;
    CHECK(mlxc_lm_session_new(&s, m) == 0 && mlxc_lm_forward(s, prompt, 16, &logits) == 0);
    CHECK(lm_step_init(&st, s, &p, true) == 0);
    int32_t token = 7;
    for (int i = 0; i < 24; i++) {
      CHECK_MSG(lm_step_run(&st, s, token, NULL, true, &picks[r][i], &logprobs[r][i], NULL) == 0, "step %d: %s", i,
                mlxc_last_error());
      token = i % 3 == 2 ? (picks[r][i] + 1) % 256 : picks[r][i];
    }
    CHECK(st.pipelined == (r == 0));
    lm_step_free(&st);
    mlx_array_free(logits);
    mlxc_lm_session_free(s);
  }
  unsetenv("MLXC_STEP_AHEAD");
  CHECK_MSG(lm_step_replay_count() - replays >= 40, "the steps were not replayed");
  for (int i = 0; i < 24; i++)
    CHECK_MSG(picks[0][i] == picks[1][i] && logprobs[0][i] == logprobs[1][i], "step %d: %d (%g) vs %d (%g)", i,
              picks[0][i], logprobs[0][i], picks[1][i], logprobs[1][i]);
  /* Stopped by the callback after 12 tokens (a step queued ahead is wasted), then continued. */
  mlxc_lm_generation runs[2][2];
  for (int r = 0; r < 2; r++) {
    if (r == 1) setenv("MLXC_STEP_AHEAD", "0", 1);
    mlxc_lm_session* s = NULL;
    CHECK(mlxc_lm_session_new(&s, m) == 0);
    mlxc_lm_generate_params p = mlxc_lm_generate_default_params();
    int seen = 0;
    p.max_tokens = 30;
    p.on_token = stop_at_12;
    p.user_data = &seen;
    CHECK(mlxc_lm_generate(s, prompt, 16, &p, &runs[r][0]) == 0);
    p.on_token = NULL;
    p.max_tokens = 20;
    CHECK(mlxc_lm_generate(s, prompt, 4, &p, &runs[r][1]) == 0);
    mlxc_lm_session_free(s);
  }
  unsetenv("MLXC_STEP_AHEAD");
  for (int g = 0; g < 2; g++) {
    CHECK_MSG(runs[0][g].n_ids == runs[1][g].n_ids && runs[0][g].n_ids == (g ? 20u : 12u), "generation %d: %zu vs %zu",
              g, runs[0][g].n_ids, runs[1][g].n_ids);
    for (size_t i = 0; i < runs[0][g].n_ids && i < runs[1][g].n_ids; i++)
      CHECK_MSG(runs[0][g].ids[i] == runs[1][g].ids[i], "generation %d differs at %zu", g, i);
    for (int r = 0; r < 2; r++) mlxc_lm_generation_free(&runs[r][g]);
  }
  mlxc_lm_free(m);
}

/* mlxc_array_copy and mlxc_readback on the GPU: a copy between device arrays queued without a
 * wait, reads queued behind a replay and waited for after the next one was queued. */
TEST(device_copy_and_readback) {
  float v[4] = {1, 2, 3, 4}, w[4] = {0, 0, 0, 0};
  int sh[1] = {4};
  mlx_array ha = mlx_array_new_data(v, sh, 1, MLX_FLOAT32), hb = mlx_array_new_data(w, sh, 1, MLX_FLOAT32);
  mlx_array a = on_gpu(ha), b = on_gpu(hb);
  mlx_array two = mlx_array_new_float(2.0f), y = mlx_array_new();
  /* y = b * 2 recorded; b fed from a on the device. */
  CHECK(mlxc_capture_begin(gpu) == 0);
  CHECK(mlx_multiply(&y, b, two, gpu) == 0 && mlx_array_eval(y) == 0);
  mlxc_capture* step = NULL;
  CHECK(mlxc_capture_end(gpu, &step) == 0 && step);
  mlxc_readback* r = NULL;
  CHECK(mlxc_readback_new(&r, 2 * sizeof v) == 0);
  CHECK(mlxc_array_copy(b, a) == 0 && mlxc_capture_replay(step) == 0);
  CHECK(mlxc_readback_add(r, y) == 0 && mlxc_readback_add(r, b) == 0);
  float u[4] = {10, 20, 30, 40};
  CHECK(mlxc_array_write(b, u, sizeof u) == 0 && mlxc_capture_replay(step) == 0); /* queued behind the reads */
  const void* data = NULL;
  size_t n = 0;
  CHECK(mlxc_readback_wait(r, &data, &n) == 0 && n == 2 * sizeof v);
  const float* f = data;
  CHECK_MSG(f && f[0] == 2 && f[3] == 8 && f[4] == 1 && f[7] == 4, "read back %g %g %g %g", f ? f[0] : 0, f ? f[3] : 0,
            f ? f[4] : 0, f ? f[7] : 0);
  CHECK(mlxc_readback_add(r, y) == 0 && mlxc_readback_wait(r, &data, &n) == 0 && n == sizeof v);
  f = data;
  CHECK(f[0] == 20 && f[3] == 80);
  bool quiet = mlxc_set_errors_quiet(true);
  CHECK(mlxc_readback_add(r, y) == 0 && mlxc_readback_add(r, y) == 0 && mlxc_readback_add(r, y) != 0); /* full */
  CHECK(strstr(mlxc_last_error(), "do not fit") != NULL);
  int sh2[1] = {2};
  mlx_array hs = mlx_array_new_data(v, sh2, 1, MLX_FLOAT32), small = on_gpu(hs);
  CHECK(mlxc_array_copy(small, a) != 0 && strstr(mlxc_last_error(), "bytes") != NULL);
  mlxc_set_errors_quiet(quiet);
  CHECK(mlxc_readback_wait(r, &data, &n) == 0 && n == 2 * sizeof v);
  mlxc_readback_free(r);
  /* More small readbacks at once than the page-locked slab's 64 blocks, and one over a block's
   * 4 KB: the rest are allocated on their own; each holds its own bytes. */
  enum { MANY = 70 };
  mlxc_readback* many[MANY + 1] = {NULL};
  for (int i = 0; i < MANY; i++)
    CHECK(mlxc_readback_new(&many[i], sizeof v) == 0 && mlxc_readback_add(many[i], y) == 0);
  CHECK(mlxc_readback_new(&many[MANY], 8192) == 0 && mlxc_readback_add(many[MANY], y) == 0);
  for (int i = 0; i <= MANY; i++) {
    CHECK(mlxc_readback_wait(many[i], &data, &n) == 0 && n == sizeof v);
    f = data;
    CHECK_MSG(f && f[0] == 20 && f[3] == 80, "readback %d: %g %g", i, f ? f[0] : 0, f ? f[3] : 0);
  }
  for (int i = 0; i <= MANY; i++) mlxc_readback_free(many[i]);
  mlxc_capture_free(step);
  mlx_array arrays[] = {a, b, two, y, small, ha, hb, hs};
  for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) mlx_array_free(arrays[i]);
}

/* mlxc_capture_feed: a recorded step that feeds its output back to its input and packs two
 * results for one read, at the end of the recording's own run and of every replay; then the
 * errors, which void a recording. */
TEST(recorded_feeds) {
  int32_t start = 5;
  int one_shape[1] = {1}, three[1] = {3};
  mlx_array ch = mlx_array_new_data(&start, one_shape, 1, MLX_INT32), counter = on_gpu(ch);
  mlx_array packed = mlx_array_new(), next = mlx_array_new(), as_float = mlx_array_new();
  mlx_array one = mlx_array_new_int(1);
  CHECK(mlx_zeros(&packed, three, 1, MLX_UINT32, gpu) == 0 && mlx_array_eval(packed) == 0);
  CHECK(mlxc_capture_begin(gpu) == 0);
  CHECK(mlx_add(&next, counter, one, gpu) == 0 && mlx_astype(&as_float, next, MLX_FLOAT32, gpu) == 0);
  mlx_vector_array outs = mlx_vector_array_new_data((mlx_array[]){next, as_float}, 2);
  CHECK(mlx_eval(outs) == 0);
  mlx_vector_array_free(outs);
  CHECK_MSG(mlxc_capture_feed(counter, 0, next) == 0, "feed: %s", mlxc_last_error());
  CHECK(mlxc_capture_feed(packed, 4, next) == 0 && mlxc_capture_feed(packed, 8, as_float) == 0);
  mlxc_capture* step = NULL;
  CHECK_MSG(mlxc_capture_end(gpu, &step) == 0 && step, "capture: %s", mlxc_last_error());
  for (int i = 0; i < 3 && step; i++) CHECK(mlxc_capture_replay(step) == 0);
  mlxc_readback* r = NULL;
  const void* data = NULL;
  size_t n = 0;
  CHECK(mlxc_readback_new(&r, 12) == 0 && mlxc_readback_add(r, packed) == 0);
  CHECK(mlxc_readback_wait(r, &data, &n) == 0 && n == 12);
  uint32_t u[3] = {1, 1, 1};
  float f = 0;
  if (n == 12) memcpy(u, data, 8), memcpy(&f, (const char*)data + 8, 4);
  /* 5 + 1 at the recording's run, then + 1 a replay. */
  CHECK_MSG(u[0] == 0 && u[1] == 9 && f == 9.0f, "packed %u %u %g", u[0], u[1], f);
  const int32_t* c = mlx_array_data_int32(counter);
  CHECK_MSG(c && c[0] == 9, "counter %d", c ? c[0] : -1);
  mlxc_readback_free(r);
  mlxc_capture_free(step);
  /* Feeds in their order: the second copies what the first wrote (the recording's run: 6, not the
   * 5 first held). */
  mlx_array first = on_gpu(ch), second = on_gpu(ch), base = on_gpu(ch);
  CHECK(mlxc_capture_begin(gpu) == 0);
  CHECK(mlx_add(&next, base, one, gpu) == 0 && mlx_array_eval(next) == 0);
  CHECK(mlxc_capture_feed(first, 0, next) == 0 && mlxc_capture_feed(second, 0, first) == 0);
  step = NULL;
  CHECK_MSG(mlxc_capture_end(gpu, &step) == 0 && step, "capture: %s", mlxc_last_error());
  const int32_t* got = mlx_array_data_int32(second);
  CHECK_MSG(got && got[0] == 6, "second feed %d", got ? got[0] : -1);
  mlxc_capture_free(step);
  mlx_array_free(first);
  mlx_array_free(second);
  mlx_array_free(base);
  /* Errors: past the destination's end, a destination shared with another array, more than 8, an
   * array only in host memory; each voids the recording. */
  bool quiet = mlxc_set_errors_quiet(true);
  mlx_array alias = mlx_array_new(), host = mlx_array_new_data(&start, one_shape, 1, MLX_INT32);
  mlx_array_eval(host);
  CHECK(mlxc_capture_begin(gpu) == 0);
  CHECK(mlx_add(&next, counter, one, gpu) == 0 && mlx_array_eval(next) == 0);
  CHECK(mlxc_capture_feed(packed, 10, next) != 0 && strstr(mlxc_last_error(), "bytes at byte 10"));
  mlx_array_set(&alias, packed);
  CHECK(mlxc_capture_feed(packed, 0, next) != 0 && strstr(mlxc_last_error(), "shares its memory"));
  mlx_array_free(alias);
  CHECK(mlxc_capture_feed(counter, 0, host) != 0 && strstr(mlxc_last_error(), "memory of GPU"));
  for (int i = 0; i < 8; i++) CHECK(mlxc_capture_feed(counter, 0, next) == 0);
  CHECK(mlxc_capture_feed(counter, 0, next) != 0 && strstr(mlxc_last_error(), "at most 8"));
  step = NULL;
  CHECK(mlxc_capture_end(gpu, &step) != 0 && !step);
  CHECK(mlxc_capture_feed(counter, 0, next) != 0 && strstr(mlxc_last_error(), "no recording"));
  mlxc_set_errors_quiet(quiet);
  mlx_array arrays[] = {ch, counter, packed, next, as_float, one, host};
  for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) mlx_array_free(arrays[i]);
}

/* mlxc_capture_read: every run writes the counter it fed itself into host memory; runs queued
 * ahead keep the earlier runs' bytes (a slot each), read in any order while they are kept; then
 * the errors. */
TEST(recorded_reads) {
  int32_t start = 5;
  int one_shape[1] = {1};
  mlx_array ch = mlx_array_new_data(&start, one_shape, 1, MLX_INT32), counter = on_gpu(ch);
  mlx_array next = mlx_array_new(), as_float = mlx_array_new(), one = mlx_array_new_int(1);
  CHECK(mlxc_capture_begin(gpu) == 0);
  CHECK(mlx_add(&next, counter, one, gpu) == 0 && mlx_astype(&as_float, next, MLX_FLOAT32, gpu) == 0);
  mlx_vector_array outs = mlx_vector_array_new_data((mlx_array[]){next, as_float}, 2);
  CHECK(mlx_eval(outs) == 0);
  mlx_vector_array_free(outs);
  CHECK(mlxc_capture_feed(counter, 0, next) == 0);
  CHECK_MSG(mlxc_capture_read(next) == 0 && mlxc_capture_read(as_float) == 0, "read: %s", mlxc_last_error());
  mlxc_capture* step = NULL;
  CHECK_MSG(mlxc_capture_end(gpu, &step) == 0 && step, "capture: %s", mlxc_last_error());
  CHECK(mlxc_capture_runs(step) == 1);
  const void* data = NULL;
  size_t n = 0;
  /* Three replays queued before any wait: runs 2 to 4, all four kept. */
  for (int i = 0; i < 3 && step; i++) CHECK(mlxc_capture_replay(step) == 0);
  CHECK(mlxc_capture_runs(step) == 4);
  for (uint64_t run = 4; run >= 1 && step; run--) {
    CHECK_MSG(mlxc_capture_read_wait(step, run, &data, &n) == 0 && n == 8, "run %d: %s", (int)run, mlxc_last_error());
    int32_t v = 0;
    float f = 0;
    if (n == 8) memcpy(&v, data, 4), memcpy(&f, (const char*)data + 4, 4);
    CHECK_MSG(v == 5 + (int)run && f == (float)(5 + run), "run %d read %d %g", (int)run, v, f);
  }
  /* Errors: runs not launched, overwritten, a recording without reads, a read outside one. */
  bool quiet = mlxc_set_errors_quiet(true);
  CHECK(mlxc_capture_read_wait(step, 0, &data, &n) != 0 && strstr(mlxc_last_error(), "not been launched"));
  CHECK(mlxc_capture_read_wait(step, 5, &data, &n) != 0 && strstr(mlxc_last_error(), "not been launched"));
  CHECK(step && mlxc_capture_replay(step) == 0);
  CHECK(mlxc_capture_read_wait(step, 1, &data, &n) != 0 && strstr(mlxc_last_error(), "overwritten"));
  CHECK(mlxc_capture_read_wait(step, 5, &data, &n) == 0 && n == 8);
  CHECK(mlxc_capture_read_wait(NULL, 1, &data, &n) != 0 && mlxc_capture_read_wait(step, 5, NULL, &n) != 0);
  CHECK(mlxc_capture_read(next) != 0 && strstr(mlxc_last_error(), "no recording"));
  mlxc_capture_free(step);
  step = NULL;
  CHECK(mlxc_capture_begin(gpu) == 0);
  CHECK(mlx_add(&next, counter, one, gpu) == 0 && mlx_array_eval(next) == 0);
  CHECK(mlxc_capture_end(gpu, &step) == 0 && step);
  CHECK(mlxc_capture_read_wait(step, 1, &data, &n) != 0 && strstr(mlxc_last_error(), "reads nothing"));
  mlxc_capture_free(step);
  /* Too many bytes, an array only in host memory, more than 8 reads: each voids the recording. */
  int big_shape[1] = {65};
  mlx_array big = mlx_array_new(), host = mlx_array_new_data(&start, one_shape, 1, MLX_INT32);
  mlx_array_eval(host);
  CHECK(mlx_zeros(&big, big_shape, 1, MLX_FLOAT32, gpu) == 0 && mlx_array_eval(big) == 0);
  CHECK(mlxc_capture_begin(gpu) == 0);
  CHECK(mlx_add(&next, counter, one, gpu) == 0 && mlx_array_eval(next) == 0);
  CHECK(mlxc_capture_read(big) != 0 && strstr(mlxc_last_error(), "at most 256"));
  CHECK(mlxc_capture_read(host) != 0 && strstr(mlxc_last_error(), "memory of GPU"));
  for (int i = 0; i < 8; i++) CHECK(mlxc_capture_read(next) == 0);
  CHECK(mlxc_capture_read(next) != 0 && strstr(mlxc_last_error(), "at most 8"));
  step = NULL;
  CHECK(mlxc_capture_end(gpu, &step) != 0 && !step);
  mlxc_set_errors_quiet(quiet);
  mlx_array arrays[] = {ch, counter, next, as_float, one, big, host};
  for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) mlx_array_free(arrays[i]);
}

/* Without a GPU: recording is refused; mlxc_array_write works on host arrays. */
TEST(without_gpu) {
  mlx_stream c = mlx_default_cpu_stream_new();
  bool quiet = mlxc_set_errors_quiet(true);
  CHECK(mlxc_capture_begin(c) != 0);
  CHECK(strstr(mlxc_last_error(), "GPU stream") != NULL);
  mlx_array none = mlx_array_new();
  CHECK(mlxc_capture_feed(none, 0, none) != 0 && strstr(mlxc_last_error(), "no recording") != NULL);
  CHECK(mlxc_capture_read(none) != 0 && strstr(mlxc_last_error(), "no recording") != NULL);
  mlx_array_free(none);
  mlxc_set_errors_quiet(quiet);
  float v[3] = {1, 2, 3}, w[3] = {7, 8, 9};
  int s[1] = {3};
  mlx_array a = mlx_array_new_data(v, s, 1, MLX_FLOAT32);
  mlx_array_eval(a);
  CHECK(mlxc_array_write(a, w, sizeof w) == 0);
  const float* p = mlx_array_data_float32(a);
  CHECK(p && p[0] == 7 && p[2] == 9);
  /* mlxc_array_copy and mlxc_readback on host arrays: at once, through the host. */
  float z[3] = {0, 0, 0};
  mlx_array b = mlx_array_new_data(z, s, 1, MLX_FLOAT32);
  mlx_array_eval(b);
  CHECK(mlxc_array_copy(b, a) == 0);
  mlxc_readback* r = NULL;
  const void* data = NULL;
  size_t n = 0;
  CHECK(mlxc_readback_new(&r, sizeof w) == 0 && mlxc_readback_add(r, b) == 0);
  CHECK(mlxc_readback_wait(r, &data, &n) == 0 && n == sizeof w && memcmp(data, w, sizeof w) == 0);
  /* Errors: too many bytes, sizes that differ, an array not evaluated, an array copied into
   * itself (nothing to do), null arguments. */
  int s2[1] = {2};
  mlx_array two = mlx_array_new_data(w, s2, 1, MLX_FLOAT32), lazy = mlx_array_new();
  mlx_array_eval(two);
  mlx_add(&lazy, a, a, c);
  quiet = mlxc_set_errors_quiet(true);
  CHECK(mlxc_readback_add(r, b) == 0 && mlxc_readback_add(r, b) != 0 && strstr(mlxc_last_error(), "do not fit"));
  CHECK(mlxc_array_copy(two, a) != 0 && strstr(mlxc_last_error(), "bytes"));
  CHECK(mlxc_array_copy(b, lazy) != 0 && strstr(mlxc_last_error(), "not evaluated"));
  CHECK(mlxc_readback_add(r, lazy) != 0 && strstr(mlxc_last_error(), "not evaluated"));
  CHECK(mlxc_array_copy(b, b) == 0);
  CHECK(mlxc_readback_new(NULL, 4) != 0 && mlxc_readback_add(NULL, a) != 0 && mlxc_readback_wait(r, NULL, &n) != 0);
  mlxc_set_errors_quiet(quiet);
  mlxc_readback_free(r);
  mlxc_readback_free(NULL);
  mlx_array_free(two);
  mlx_array_free(lazy);
  mlx_array_free(b);
  mlx_array_free(a);
  mlx_stream_free(c);
}

int main(void) {
  RUN(without_gpu);
  int count = 0;
  mlx_device_count(&count, MLX_GPU);
  if (count == 0) {
    printf("SKIP: no CUDA GPU (the recording tests need one); only the no-GPU behaviour is checked\n");
    return TEST_SUMMARY();
  }
  rng_state = (uint64_t)time(NULL) ^ 0x51ed270b27a3c1f5ull;
  printf("seed %llu\n", (unsigned long long)rng_state);
  cpu = mlx_default_cpu_stream_new();
  gpu = mlx_default_gpu_stream_new();
  RUN(dynamic_slice_and_update);
  RUN(logical_and_or);
  RUN(record_and_replay);
  RUN(recording_failures);
  RUN(lm_replayed_decode);
  RUN(lm_fused_decode_layers);
  RUN(lm_fused_norms);
  RUN(lm_sampled_decode_on_device);
  RUN(lm_steps_queued_ahead);
  RUN(device_copy_and_readback);
  RUN(recorded_feeds);
  RUN(recorded_reads);
  return TEST_SUMMARY();
}
