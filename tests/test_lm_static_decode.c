/* Static decode (src/lm/static_decode.h): greedy decoding with the fixed-shape step must give
 * the normal path's logits (within 1e-5 of the largest logit, float32 fixtures) and tokens, on
 * every fixture architecture it accepts; the normal path must continue afterwards; the
 * architectures and cache kinds it refuses must say why. The reference is the normal path
 * (mlxc_lm_forward one token at a time), itself checked against transformers by
 * test_lm_parity and test_lm_cache. */
#include <stdlib.h>
#include <unistd.h>

#include "lm/fused_layers.h"
#include "lm/model.h"
#include "lm/static_decode.h"
#include "mlx/c/mlx.h"
#include "mlxc/error.h"
#include "mlxc/lm.h"
#include "ops/decode_layers.h"
#include "test_util.h"

static mlx_stream cpu;

static mlxc_lm_model* load(const char* name) {
  char dir[1024];
  snprintf(dir, sizeof dir, "%s/tests/fixtures/lm/%s", test_source_dir(), name);
  mlxc_lm_model* m = NULL;
  CHECK_MSG(mlxc_lm_load(&m, dir, cpu) == 0, "%s: %s", name, mlxc_last_error());
  return m;
}

/* The fixture's third reference prompt (41 tokens, longer than the sliding windows of 16). */
static int32_t* reference_prompt(const char* name, size_t* n) {
  char path[1200];
  mlx_map_string_to_array ref = mlx_map_string_to_array_new();
  mlx_map_string_to_string meta = mlx_map_string_to_string_new();
  mlx_array prompt = mlx_array_new();
  int32_t* ids = NULL;
  snprintf(path, sizeof path, "%s/tests/fixtures/lm/%s/reference.safetensors", test_source_dir(), name);
  CHECK(mlx_load_safetensors(&ref, &meta, path, cpu) == 0);
  if (mlx_map_string_to_array_get(&prompt, ref, "prompt_2") == 0) {
    *n = mlx_array_size(prompt);
    ids = malloc(sizeof(int32_t) * *n);
    if (ids) memcpy(ids, mlx_array_data_int32(prompt), sizeof(int32_t) * *n);
  }
  mlx_array_free(prompt);
  mlx_map_string_to_array_free(ref);
  mlx_map_string_to_string_free(meta);
  return ids;
}

/* The last row of (n, vocab) or (1, 1, vocab) float32 logits. */
static const float* last_row(mlx_array logits, int vocab) {
  const float* p = mlx_array_data_float32(logits);
  return p ? p + mlx_array_size(logits) - (size_t)vocab : NULL;
}

static int32_t argmax(const float* row, int vocab) {
  int32_t best = 0;
  for (int v = 1; v < vocab; v++)
    if (row[v] > row[best]) best = v;
  return best;
}

/* Largest |a - b| over the largest |b|: the relative error of a row of logits. */
static double relative_error(const float* a, const float* b, int vocab) {
  double worst = 0, scale = 0;
  for (int v = 0; v < vocab; v++) {
    worst = fmax(worst, fabs((double)a[v] - b[v]));
    scale = fmax(scale, fabs((double)b[v]));
  }
  return worst / scale;
}

/* One static step for the token `id`: fresh token and position arrays, forward, evaluate,
 * advance. *logits (1, 1, vocab) is owned by the caller. */
static int static_step(mlxc_lm_session* s, int32_t id, mlx_array* logits) {
  int token_shape[2] = {1, 1}, position_shape[1] = {1};
  int32_t position_value = s->offset;
  mlx_array token = mlx_array_new_data(&id, token_shape, 2, MLX_INT32);
  mlx_array position = mlx_array_new_data(&position_value, position_shape, 1, MLX_INT32);
  int status = lm_static_decode_forward(s, token, position, logits);
  if (!status) status = mlx_array_eval(*logits);
  if (!status) lm_static_decode_advance(s);
  mlx_array_free(token);
  mlx_array_free(position);
  return status;
}

/* Decodes `steps` greedy tokens from `next` with the static step on st (reserving more when
 * its capacity is reached) and the normal path on normal, which hold the same context; checks
 * logits and tokens step by step. Returns the next token (after both agree), -1 on failure. */
static int32_t decode_both(const char* name, mlxc_lm_session* st, mlxc_lm_session* normal, int32_t next, int steps,
                           int* reserves) {
  int vocab = st->model->config.vocab_size;
  mlx_array a = mlx_array_new(), b = mlx_array_new();
  double worst = 0;
  int capacity = st->static_slots.ctx ? mlx_array_dim(st->static_slots, 0) : 0;
  for (int step = 0; step < steps && next >= 0; step++) {
    if (st->offset == capacity) { /* full: the step must refuse, then a larger reserve continues */
      int quiet = mlxc_set_errors_quiet(1);
      CHECK_MSG(static_step(st, next, &a) != 0, "%s: a step past the capacity was accepted", name);
      mlxc_set_errors_quiet(quiet);
      CHECK_MSG(lm_static_decode_reserve(st, capacity + 1, &capacity) == 0, "%s: %s", name, mlxc_last_error());
      ++*reserves;
    }
    if (static_step(st, next, &a) || mlxc_lm_forward(normal, &next, 1, &b)) {
      CHECK_MSG(0, "%s step %d: %s", name, step, mlxc_last_error());
      next = -1;
      break;
    }
    const float *ra = last_row(a, vocab), *rb = last_row(b, vocab);
    double error = relative_error(ra, rb, vocab);
    worst = fmax(worst, error);
    CHECK_MSG(error <= 1e-5, "%s step %d (position %d): static logits differ by %g of max |logit|", name, step,
              st->offset - 1, error);
    int32_t ta = argmax(ra, vocab), tb = argmax(rb, vocab);
    CHECK_MSG(ta == tb, "%s step %d: static token %d, normal token %d", name, step, ta, tb);
    next = tb;
  }
  CHECK_EQ_INT(st->offset, normal->offset);
  printf("  %s: %d static steps to position %d, worst logits error %.2g of max |logit|\n", name, steps, st->offset,
         worst);
  mlx_array_free(a);
  mlx_array_free(b);
  return next;
}

/* Prefills `prompt` on two sessions (the normal path), reserves, decodes 20 tokens both ways,
 * then continues both on the normal path. */
static void check_arch(const char* name) {
  mlxc_lm_model* m = load(name);
  size_t n = 0;
  int32_t* prompt = m ? reference_prompt(name, &n) : NULL;
  mlxc_lm_session *st = NULL, *normal = NULL;
  mlx_array la = mlx_array_new(), lb = mlx_array_new();
  if (!prompt || mlxc_lm_session_new(&st, m) || mlxc_lm_session_new(&normal, m)) {
    CHECK_MSG(0, "%s: setup failed", name);
    goto done;
  }
  const char* why = NULL;
  CHECK_MSG(lm_static_decode_supported(st, &why), "%s: refused: %s", name, why);
  CHECK(mlxc_lm_forward(st, prompt, n, &la) == 0 && mlxc_lm_forward(normal, prompt, n, &lb) == 0);
  int vocab = mlxc_lm_vocab_size(m), capacity = 0, reserves = 0;
  CHECK_MSG(lm_static_decode_reserve(st, (int)n + 20, &capacity) == 0, "%s: %s", name, mlxc_last_error());
  CHECK(capacity >= (int)n + 20);
  int32_t next = argmax(last_row(lb, vocab), vocab);
  next = decode_both(name, st, normal, next, 20, &reserves);
  /* The normal path continues on the statically decoded session. */
  for (int i = 0; i < 4 && next >= 0; i++) {
    CHECK(mlxc_lm_forward(st, &next, 1, &la) == 0 && mlxc_lm_forward(normal, &next, 1, &lb) == 0);
    double error = relative_error(last_row(la, vocab), last_row(lb, vocab), vocab);
    CHECK_MSG(error <= 1e-5, "%s: normal step %d after static steps differs by %g", name, i, error);
    next = argmax(last_row(lb, vocab), vocab);
  }
done:
  mlx_array_free(la);
  mlx_array_free(lb);
  mlxc_lm_session_free(st);
  mlxc_lm_session_free(normal);
  free(prompt);
  mlxc_lm_free(m);
}

/* With MLXC_FUSED_LAYERS=1 the static step of the plain Llama-family layers is one decode_layers
 * node (ops/decode_layers.h), here its CPU kernel, the reference of the GPU kernel: the same
 * logits and tokens as the normal path. */
static void check_fused(const char* name, bool expect_fused) {
  mlxc_lm_model* m = load(name);
  mlxc_lm_session* s = NULL;
  if (m && mlxc_lm_session_new(&s, m) == 0) {
    int32_t ids[3] = {1, 2, 3};
    mlx_array l = mlx_array_new();
    CHECK(mlxc_lm_forward(s, ids, 3, &l) == 0 && lm_static_decode_reserve(s, 8, NULL) == 0);
    CHECK_MSG(lm_fused_layers_taken(s) == expect_fused, "%s: fused layers %s", name, expect_fused ? "refused" : "taken");
    mlx_array_free(l);
  }
  mlxc_lm_session_free(s);
  mlxc_lm_free(m);
  if (expect_fused) check_arch(name); /* the others' static steps are checked above, unchanged */
}

TEST(test_fused_decode_layers_match_the_normal_path) {
  setenv("MLXC_FUSED_LAYERS", "1", 1);
  const char* fused[] = {"llama", "llama3_rope", "llama_yarn", "qwen2", "phi3"};
  for (size_t i = 0; i < sizeof fused / sizeof fused[0]; i++) check_fused(fused[i], true);
  const char* other[] = {"qwen3", "gemma3_text", "mistral"}; /* q/k norms, gemma norms, sliding windows */
  for (size_t i = 0; i < sizeof other / sizeof other[0]; i++) check_fused(other[i], false);
  unsetenv("MLXC_FUSED_LAYERS");
}

/* The decode_layers node says what is wrong with its arguments (shapes, dtypes, sizes), and its
 * CPU kernel refuses a position outside the caches, leaving nothing behind (ASan in CI). */
TEST(test_decode_layers_node_rejects_bad_arguments) {
  mlxc_lm_model* m = load("llama");
  if (!m) return;
  const lm_config* c = &m->config;
  const lm_layer* L = &m->layers[0];
  int cache_shape[4] = {1, c->num_kv_heads, 8, c->head_dim}, x_shape[3] = {1, 1, c->hidden_size}, one = 1;
  float* zeros = calloc((size_t)8 * c->num_kv_heads * c->head_dim, sizeof(float));
  mlx_array keys = mlx_array_new_data(zeros, cache_shape, 4, MLX_FLOAT32);
  mlx_array values = mlx_array_new_data(zeros, cache_shape, 4, MLX_FLOAT32);
  mlx_array x = mlx_array_new_data(zeros, x_shape, 3, MLX_FLOAT32);
  int32_t far = 9;
  mlx_array position = mlx_array_new_data(&far, &one, 1, MLX_INT32);
  decode_layer_arrays layer = {.input_norm = L->input_norm.weight,
                               .post_norm = L->pre_feedforward_norm.weight,
                               .weight = {L->qkv.weight, L->o.weight, L->gate_up.weight, L->down.weight},
                               .keys = keys,
                               .values = values};
  decode_layers_params p = {.n_layers = 1, .D = c->hidden_size, .H = c->num_heads, .KVH = c->num_kv_heads,
                            .hd = c->head_dim, .I = c->intermediate_size, .capacity = 8, .rope_dims = c->head_dim,
                            .eps = c->norm_eps, .attn_scale = 0.25f, .rope_base = c->rope_theta, .rope_scale = 1.0f};
  mlx_array out = mlx_array_new(), ko = mlx_array_new(), vo = mlx_array_new();
  int quiet = mlxc_set_errors_quiet(1);
  decode_layers_params bad = p;
  bad.I += 1; /* gate_up and down no longer match */
  CHECK(ops_decode_layers(&out, &ko, &vo, x, position, mlx_array_new(), &layer, &bad, cpu) != 0);
  CHECK_MSG(strstr(mlxc_last_error(), "gate_up must be") != NULL, "%s", mlxc_last_error());
  bad = p;
  bad.capacity = 16; /* the caches hold 8 slots */
  CHECK(ops_decode_layers(&out, &ko, &vo, x, position, mlx_array_new(), &layer, &bad, cpu) != 0);
  CHECK_MSG(strstr(mlxc_last_error(), "cache must be") != NULL, "%s", mlxc_last_error());
  bad = p;
  bad.has_freqs = true; /* but none given */
  CHECK(ops_decode_layers(&out, &ko, &vo, x, position, mlx_array_new(), &layer, &bad, cpu) != 0);
  CHECK_MSG(strstr(mlxc_last_error(), "freqs") != NULL, "%s", mlxc_last_error());
  /* Well formed, but position 9 of 8 slots: the kernel refuses when evaluated. */
  CHECK(ops_decode_layers(&out, &ko, &vo, x, position, mlx_array_new(), &layer, &p, cpu) == 0);
  CHECK(mlx_array_eval(out) != 0);
  CHECK_MSG(strstr(mlxc_last_error(), "outside the caches") != NULL, "%s", mlxc_last_error());
  mlxc_set_errors_quiet(quiet);
  mlx_array arrays[7] = {keys, values, x, position, out, ko, vo};
  for (int i = 0; i < 7; i++) mlx_array_free(arrays[i]);
  free(zeros);
  mlxc_lm_free(m);
}

static const char* const supported[] = {"llama", "llama3_rope", "llama_yarn", "mistral", "qwen2", "qwen3", "phi3",
                                        "gemma3_text"};

TEST(test_static_steps_match_the_normal_path_on_every_supported_architecture) {
  for (size_t i = 0; i < sizeof supported / sizeof supported[0]; i++) check_arch(supported[i]);
}

/* A long prompt, so that the first reserved capacity (256) fills mid-decode: the step past it
 * must fail, and a larger reserve must continue exactly. */
TEST(test_capacity_reached_mid_decode_grows_and_continues) {
  const char* names[2] = {"llama", "gemma3_text"};
  for (int k = 0; k < 2; k++) {
    mlxc_lm_model* m = load(names[k]);
    if (!m) continue;
    mlxc_lm_session *st = NULL, *normal = NULL;
    mlx_array la = mlx_array_new(), lb = mlx_array_new();
    int32_t prompt[245];
    for (int i = 0; i < 245; i++) prompt[i] = (int32_t)((i * 37 + 11) % 256);
    CHECK(mlxc_lm_session_new(&st, m) == 0 && mlxc_lm_session_new(&normal, m) == 0);
    CHECK(mlxc_lm_forward(st, prompt, 245, &la) == 0 && mlxc_lm_forward(normal, prompt, 245, &lb) == 0);
    int capacity = 0, reserves = 0;
    CHECK(lm_static_decode_reserve(st, 246, &capacity) == 0);
    CHECK_EQ_INT(capacity, 256);
    decode_both(names[k], st, normal, argmax(last_row(lb, 256), 256), 20, &reserves);
    CHECK_EQ_INT(reserves, 1);
    CHECK_EQ_INT(mlx_array_dim(st->static_slots, 0), 512);
    mlx_array_free(la);
    mlx_array_free(lb);
    mlxc_lm_session_free(st);
    mlxc_lm_session_free(normal);
    mlxc_lm_free(m);
  }
}

/* Sliding-window caches that have dropped positions (normal decoding past the window) are laid
 * out by position again; static steps, a later normal prefill (which rotates them again), a
 * second reserve and more static steps all match; a prompt cache saved after static steps
 * loads into a session that continues like the reference. */
TEST(test_sliding_caches_that_dropped_positions_decode_statically) {
  const char* names[2] = {"mistral", "gemma3_text"};
  char dir[] = "/tmp/mlxc_static_decode_XXXXXX", path[64];
  CHECK(mkdtemp(dir) != NULL);
  snprintf(path, sizeof path, "%s/cache.safetensors", dir);
  for (int k = 0; k < 2; k++) {
    mlxc_lm_model* m = load(names[k]);
    size_t n = 0;
    int32_t* prompt = m ? reference_prompt(names[k], &n) : NULL;
    if (!prompt) continue;
    mlxc_lm_session *st = NULL, *normal = NULL, *loaded = NULL;
    mlx_array la = mlx_array_new(), lb = mlx_array_new();
    int vocab = mlxc_lm_vocab_size(m), reserves = 0;
    CHECK(mlxc_lm_session_new(&st, m) == 0 && mlxc_lm_session_new(&normal, m) == 0 && mlxc_lm_session_new(&loaded, m) == 0);
    CHECK(mlxc_lm_forward(st, prompt, n, &la) == 0 && mlxc_lm_forward(normal, prompt, n, &lb) == 0);
    int32_t next = argmax(last_row(lb, vocab), vocab);
    for (int i = 0; i < 3; i++) { /* normal steps: the sliding caches rotate */
      CHECK(mlxc_lm_forward(st, &next, 1, &la) == 0 && mlxc_lm_forward(normal, &next, 1, &lb) == 0);
      next = argmax(last_row(lb, vocab), vocab);
    }
    CHECK(st->caches[0].evicted);
    CHECK(lm_static_decode_reserve(st, 0, NULL) == 0);
    next = decode_both(names[k], st, normal, next, 10, &reserves);
    int32_t more[5] = {3, 1, 4, 1, 5};
    CHECK(mlxc_lm_forward(st, more, 5, &la) == 0 && mlxc_lm_forward(normal, more, 5, &lb) == 0);
    CHECK(relative_error(last_row(la, vocab), last_row(lb, vocab), vocab) <= 1e-5);
    next = argmax(last_row(lb, vocab), vocab);
    CHECK(lm_static_decode_reserve(st, 0, NULL) == 0);
    next = decode_both(names[k], st, normal, next, 10, &reserves);
    CHECK_MSG(mlxc_lm_session_save(st, path) == 0, "%s", mlxc_last_error());
    CHECK_MSG(mlxc_lm_session_load(loaded, path) == 0, "%s", mlxc_last_error());
    CHECK_EQ_INT(loaded->caches[0].length, m->config.sliding_window);
    for (int i = 0; i < 3 && next >= 0; i++) {
      CHECK(mlxc_lm_forward(loaded, &next, 1, &la) == 0 && mlxc_lm_forward(normal, &next, 1, &lb) == 0);
      CHECK_MSG(relative_error(last_row(la, vocab), last_row(lb, vocab), vocab) <= 1e-5,
                "%s: the loaded prompt cache continues differently", names[k]);
      next = argmax(last_row(lb, vocab), vocab);
    }
    unlink(path);
    mlx_array_free(la);
    mlx_array_free(lb);
    mlxc_lm_session_free(st);
    mlxc_lm_session_free(normal);
    mlxc_lm_session_free(loaded);
    free(prompt);
    mlxc_lm_free(m);
  }
  rmdir(dir);
}

/* After static steps the host bookkeeping is the normal path's: the session can be truncated
 * and extended like one that decoded normally, and reserving again changes nothing. */
TEST(test_bookkeeping_after_static_steps_serves_the_normal_path) {
  mlxc_lm_model* m = load("qwen3");
  if (!m) return;
  int32_t prompt[7] = {5, 9, 200, 17, 33, 2, 90};
  mlxc_lm_session *st = NULL, *normal = NULL;
  mlx_array la = mlx_array_new(), lb = mlx_array_new();
  int capacity = 0, again = 0, reserves = 0;
  CHECK(mlxc_lm_session_new(&st, m) == 0 && mlxc_lm_session_new(&normal, m) == 0);
  CHECK(mlxc_lm_forward(st, prompt, 7, &la) == 0 && mlxc_lm_forward(normal, prompt, 7, &lb) == 0);
  CHECK(lm_static_decode_reserve(st, 8, &capacity) == 0);
  decode_both("qwen3", st, normal, 1, 6, &reserves);
  mlx_array keys = st->caches[0].parts[0];
  CHECK(lm_static_decode_reserve(st, capacity - 10, &again) == 0);
  CHECK_EQ_INT(again, capacity);
  CHECK(st->caches[0].parts[0].ctx == keys.ctx);
  for (int i = 0; i < st->offset; i++) CHECK_EQ_INT(st->caches[1].positions[i], normal->caches[1].positions[i]);
  CHECK_EQ_INT(st->caches[1].length, normal->caches[1].length);
  CHECK(mlxc_lm_session_truncate(st, 9) == 0 && mlxc_lm_session_truncate(normal, 9) == 0);
  int32_t tail[3] = {44, 45, 46};
  CHECK(mlxc_lm_forward(st, tail, 3, &la) == 0 && mlxc_lm_forward(normal, tail, 3, &lb) == 0);
  CHECK(relative_error(last_row(la, 256), last_row(lb, 256), 256) <= 1e-5);
  CHECK_EQ_INT(mlxc_lm_session_length(st), 12);
  /* Static steps again, from the truncated and extended session. */
  CHECK(lm_static_decode_reserve(st, 0, NULL) == 0);
  decode_both("qwen3 after truncation", st, normal, 7, 4, &reserves);
  mlx_array_free(la);
  mlx_array_free(lb);
  mlxc_lm_session_free(st);
  mlxc_lm_session_free(normal);
  mlxc_lm_free(m);
}

/* What capture and replay need: the step reads its token and position from the arrays when it
 * runs, not when it is built. The graph is built for position n (the session's offset) with
 * another token, then both arrays are overwritten in place before evaluation with the
 * prompt's last token and its position n - 1: the logits must be the prefill's last ones. */
TEST(test_step_reads_token_and_position_when_evaluated) {
  const char* names[2] = {"llama", "gemma3_text"};
  for (int k = 0; k < 2; k++) {
    mlxc_lm_model* m = load(names[k]);
    size_t n = 0;
    int32_t* prompt = m ? reference_prompt(names[k], &n) : NULL;
    if (!prompt) continue;
    mlxc_lm_session* s = NULL;
    mlx_array prefill = mlx_array_new(), logits = mlx_array_new();
    int vocab = mlxc_lm_vocab_size(m), token_shape[2] = {1, 1}, position_shape[1] = {1};
    CHECK(mlxc_lm_session_new(&s, m) == 0 && mlxc_lm_forward(s, prompt, n, &prefill) == 0);
    CHECK(lm_static_decode_reserve(s, 0, NULL) == 0);
    int32_t other = (prompt[n - 1] + 1) % vocab, offset = (int32_t)n;
    mlx_array token = mlx_array_new_data(&other, token_shape, 2, MLX_INT32);
    mlx_array position = mlx_array_new_data(&offset, position_shape, 1, MLX_INT32);
    CHECK(lm_static_decode_forward(s, token, position, &logits) == 0);
    *(int32_t*)mlx_array_data_int32(token) = prompt[n - 1];
    *(int32_t*)mlx_array_data_int32(position) = (int32_t)n - 1;
    CHECK(mlx_array_eval(logits) == 0);
    double error = relative_error(last_row(logits, vocab), last_row(prefill, vocab), vocab);
    CHECK_MSG(error <= 1e-5, "%s: the step did not read its token and position at evaluation (error %g)", names[k], error);
    mlx_array_free(token);
    mlx_array_free(position);
    mlx_array_free(prefill);
    mlx_array_free(logits);
    mlxc_lm_session_free(s);
    free(prompt);
    mlxc_lm_free(m);
  }
}

/* A refused session: supported() gives the expected reason, reserve and forward fail. */
static void check_refused(mlxc_lm_session* s, const char* reason_part) {
  const char* why = NULL;
  CHECK(!lm_static_decode_supported(s, &why));
  CHECK_MSG(why && strstr(why, reason_part), "reason \"%s\" does not mention \"%s\"", why ? why : "(null)", reason_part);
  int quiet = mlxc_set_errors_quiet(1);
  int32_t id = 1;
  mlx_array logits = mlx_array_new();
  if (s->offset == 0) mlxc_lm_forward(s, &id, 1, &logits);
  CHECK(lm_static_decode_reserve(s, 64, NULL) != 0);
  CHECK(strstr(mlxc_last_error(), reason_part) != NULL);
  CHECK(static_step(s, id, &logits) != 0);
  mlxc_set_errors_quiet(quiet);
  mlx_array_free(logits);
}

TEST(test_unsupported_sessions_say_why) {
  mlxc_lm_model* m = load("llama");
  if (!m) return;
  mlxc_lm_session* s = NULL;
  CHECK(mlxc_lm_session_new(&s, m) == 0);
  CHECK(lm_static_decode_supported(s, NULL));
  CHECK(lm_session_configure(s, 64, 0, 64, 0) == 0);
  check_refused(s, "max_kv_size");
  mlxc_lm_session_free(s);
  CHECK(mlxc_lm_session_new(&s, m) == 0);
  CHECK(lm_session_configure(s, 0, 8, 16, 0) == 0);
  check_refused(s, "kv_bits");
  mlxc_lm_session_free(s);
  CHECK(mlxc_lm_session_new(&s, m) == 0);
  int starts[2] = {0, 2};
  CHECK(lm_session_set_rows(s, starts, 2) == 0);
  check_refused(s, "batch");
  mlxc_lm_session_free(s);
  mlxc_lm_free(m);
  const char* archs[4][2] = {{"lfm2", "convolution"}, {"qwen3_moe", "mixture-of-experts"},
                             {"llama_dynamic", "dynamic"}, {"gemma2", "soft-capping"}};
  for (int i = 0; i < 4; i++) {
    m = load(archs[i][0]);
    if (!m) continue;
    CHECK(mlxc_lm_session_new(&s, m) == 0);
    check_refused(s, archs[i][1]);
    mlxc_lm_session_free(s);
    mlxc_lm_free(m);
  }
}

/* Misuse is an error, not a crash: an empty session, no reserve, wrong argument shapes. */
TEST(test_static_step_misuse_is_reported) {
  mlxc_lm_model* m = load("llama");
  if (!m) return;
  mlxc_lm_session* s = NULL;
  mlx_array logits = mlx_array_new();
  int32_t id = 3;
  int quiet = mlxc_set_errors_quiet(1);
  CHECK(mlxc_lm_session_new(&s, m) == 0);
  CHECK(lm_static_decode_reserve(s, 16, NULL) != 0);
  CHECK(mlxc_lm_forward(s, &id, 1, &logits) == 0);
  CHECK(static_step(s, id, &logits) != 0); /* not reserved */
  CHECK(lm_static_decode_reserve(s, 16, NULL) == 0);
  int shape[2] = {1, 2};
  int32_t two[2] = {1, 1};
  mlx_array wrong = mlx_array_new_data(two, shape, 2, MLX_INT32), position = mlx_array_new_int(1);
  CHECK(lm_static_decode_forward(s, wrong, position, &logits) != 0);
  CHECK(mlxc_lm_forward(s, &id, 1, &logits) == 0); /* a normal step keeps slot i at position i */
  CHECK(static_step(s, id, &logits) == 0);
  int32_t* long_prompt = calloc(300, sizeof(int32_t));
  CHECK(long_prompt && mlxc_lm_forward(s, long_prompt, 300, &logits) == 0); /* the caches grow past the reserve */
  free(long_prompt);
  CHECK(static_step(s, id, &logits) != 0);
  CHECK(strstr(mlxc_last_error(), "reserve more") != NULL);
  CHECK(lm_static_decode_reserve(s, 16, NULL) == 0);
  CHECK(static_step(s, id, &logits) == 0);
  CHECK_EQ_INT(mlxc_lm_session_length(s), 304);
  mlxc_lm_session_free(s);
  mlxc_lm_free(m);
  /* A normal step past the window rotates a sliding cache: its slots no longer match positions. */
  m = load("gemma3_text");
  int32_t prompt[20] = {0};
  CHECK(m && mlxc_lm_session_new(&s, m) == 0);
  CHECK(mlxc_lm_forward(s, prompt, 20, &logits) == 0);
  CHECK(lm_static_decode_reserve(s, 32, NULL) == 0);
  CHECK(mlxc_lm_forward(s, &id, 1, &logits) == 0);
  CHECK(static_step(s, id, &logits) != 0);
  CHECK(strstr(mlxc_last_error(), "reserve again") != NULL);
  CHECK(lm_static_decode_reserve(s, 32, NULL) == 0);
  CHECK(static_step(s, id, &logits) == 0);
  mlxc_set_errors_quiet(quiet);
  mlx_array_free(wrong);
  mlx_array_free(position);
  mlx_array_free(logits);
  mlxc_lm_session_free(s);
  mlxc_lm_free(m);
}

int main(void) {
  cpu = mlx_default_cpu_stream_new();
  RUN(test_static_steps_match_the_normal_path_on_every_supported_architecture);
  RUN(test_fused_decode_layers_match_the_normal_path);
  RUN(test_capacity_reached_mid_decode_grows_and_continues);
  RUN(test_sliding_caches_that_dropped_positions_decode_statically);
  RUN(test_bookkeeping_after_static_steps_serves_the_normal_path);
  RUN(test_step_reads_token_and_position_when_evaluated);
  RUN(test_unsupported_sessions_say_why);
  RUN(test_decode_layers_node_rejects_bad_arguments);
  RUN(test_static_step_misuse_is_reported);
  mlx_stream_free(cpu);
  return TEST_SUMMARY();
}
