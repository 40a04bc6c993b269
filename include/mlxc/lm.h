/* Language models: load a Hugging Face model folder, run it, generate.
 *
 *   mlxc_lm_model* model;
 *   if (mlxc_lm_load(&model, "models/kjv-llama-7m", mlx_default_cpu_stream_new())) { ... mlxc_last_error() ... }
 *   mlxc_lm_session* session;
 *   mlxc_lm_session_new(&session, model);
 *   int32_t prompt[3] = {...};
 *   mlxc_lm_generate_params params = mlxc_lm_generate_default_params();
 *   params.max_tokens = 32;
 *   mlxc_lm_generation out;
 *   mlxc_lm_generate(session, prompt, 3, &params, &out);     // out.ids, out.n_ids, stats
 *   mlxc_lm_generation_free(&out);
 *   mlxc_lm_session_free(session);
 *   mlxc_lm_free(model);
 *
 * A model (weights and configuration) is immutable and may be shared by sessions on several
 * threads; a session (the KV cache) belongs to one thread at a time. */
#ifndef MLXC_LM_H
#define MLXC_LM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mlx/c/array.h"
#include "mlx/c/map.h"
#include "mlx/c/stream.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mlxc_lm_model mlxc_lm_model;
typedef struct mlxc_lm_session mlxc_lm_session;

/* Loads config.json and the safetensors weights (single file or sharded with
 * model.safetensors.index.json) of the folder `path`; computation runs on `stream`. */
int mlxc_lm_load(mlxc_lm_model** out, const char* path, mlx_stream stream);
void mlxc_lm_free(mlxc_lm_model* model);

/* The model_type values this build can run, as one comma-separated string. */
const char* mlxc_lm_supported_types(void);
int mlxc_lm_vocab_size(const mlxc_lm_model* model);
/* Bytes of the model's weights. */
size_t mlxc_lm_weight_bytes(const mlxc_lm_model* model);

int mlxc_lm_session_new(mlxc_lm_session** out, const mlxc_lm_model* model);
void mlxc_lm_session_free(mlxc_lm_session* session);
/* Forgets the cached context. */
void mlxc_lm_session_reset(mlxc_lm_session* session);
/* Tokens the session has seen. */
int mlxc_lm_session_length(const mlxc_lm_session* session);
/* Forgets all but the first `length` tokens of the context, so a new prompt that shares a prefix
 * with the cached one reuses it. Fails (leaving the session as it was) for models whose state
 * cannot be rewound (convolution layers): reset those. */
int mlxc_lm_session_truncate(mlxc_lm_session* session, int length);

/* Prompt caches in mlx-lm's safetensors layout (save_prompt_cache / load_prompt_cache): arrays
 * "<layer>.0" (keys) and "<layer>.1" (values), or "<layer>.<0|1>.<0|1|2>" when quantized; the
 * metadata names each layer's cache class and its state. Loading replaces the session's context;
 * the file must come from a model with the same layers. Models with convolution layers are not
 * supported. */
int mlxc_lm_session_save(const mlxc_lm_session* session, const char* path);
int mlxc_lm_session_load(mlxc_lm_session* session, const char* path);
/* The same with mlx-lm's user metadata ("1.<key>" entries, e.g. "model", "chat_template",
 * "tokenizer_config" as mlx-lm's cache_prompt writes them). Saving with metadata also records
 * "mlxc_model", a description of the model (shapes, weight size, a hash of an embedding row);
 * loading a file that has it fails unless the session's model matches. *metadata (may be NULL;
 * created when empty, the caller frees it) receives the user entries, keys without "1.". */
int mlxc_lm_session_save_metadata(const mlxc_lm_session* session, const char* path, mlx_map_string_to_string metadata);
int mlxc_lm_session_load_metadata(mlxc_lm_session* session, const char* path, mlx_map_string_to_string* metadata);

/* Runs `n` tokens after the session's context and sets *logits to their float32 logits,
 * shape (n, vocab). The tokens join the context. */
int mlxc_lm_forward(mlxc_lm_session* session, const int32_t* ids, size_t n, mlx_array* logits);

/* Called for each generated token; return non-zero to stop. */
typedef int (*mlxc_lm_token_callback)(int32_t token, void* user_data);

typedef struct {
  int max_tokens;            /* default 256 */
  float temperature;         /* 0 = greedy (default 0) */
  float top_p;               /* 1 = off */
  int top_k;                 /* 0 = off */
  float min_p;               /* 0 = off */
  float repetition_penalty;  /* 1 = off; divides positive logits of tokens in the context window */
  int repetition_context;    /* tokens the penalties look back over (default 20) */
  float presence_penalty;    /* 0 = off; subtracted once from tokens in the window */
  float frequency_penalty;   /* 0 = off; subtracted per occurrence in the window */
  const int32_t* bias_ids;   /* logit bias: bias_values[i] is added to the logit of bias_ids[i] */
  const float* bias_values;
  size_t n_bias;
  float xtc_probability;     /* XTC: with this probability remove every token above */
  float xtc_threshold;       /*   xtc_threshold except the least likely of them (0 = off) */
  uint64_t seed;
  int prefill_step;          /* prompt tokens per forward pass (default 512) */
  int max_kv_size;           /* rotating KV cache: at most this many positions per layer, the first 4
                                always kept (0 = unlimited, the default) */
  int kv_bits;               /* quantized KV cache: 4 or 8 bits (0 = float, the default) */
  int kv_group_size;         /*   group size of its affine quantization (default 64) */
  int quantized_kv_start;    /*   quantize once a layer's cache holds this many positions (default 0) */
  const int32_t* eos_ids;    /* generation stops after any of these (not included in ids) */
  size_t n_eos_ids;
  mlxc_lm_token_callback on_token;
  void* user_data;
} mlxc_lm_generate_params;

mlxc_lm_generate_params mlxc_lm_generate_default_params(void);

typedef struct {
  int32_t* ids;              /* generated tokens (malloc'ed; free with mlxc_lm_generation_free) */
  float* logprobs;           /* log-probability of each generated token under the model (after
                                penalties and bias, before temperature and truncation) */
  size_t n_ids;
  size_t prompt_tokens;
  double prompt_seconds, generation_seconds;
  size_t peak_memory;
  int stopped_by_eos;
  size_t draft_tokens, draft_accepted; /* speculative decoding: tokens proposed, and accepted */
} mlxc_lm_generation;

/* Feeds the prompt after the session's context and generates. */
int mlxc_lm_generate(mlxc_lm_session* session, const int32_t* prompt, size_t n_prompt,
                     const mlxc_lm_generate_params* params, mlxc_lm_generation* out);
void mlxc_lm_generation_free(mlxc_lm_generation* generation);

/* Batch generation (mlx-lm's batch_generate): the n prompts (lengths[i] tokens each) are
 * left-padded into one batch; each row computes what it would alone (its own positions, its
 * padding masked out), samples with its own random state and stops on its own. params holds 1
 * set (row i then uses seed + i) or n sets (one per row; callbacks get that row's user_data); the
 * cache options and prefill_step come from params[0], and max_kv_size is refused. outs (n
 * entries) receive each row's tokens; prompt_seconds, generation_seconds and peak_memory are
 * the whole batch's. Models with convolution layers are refused. */
int mlxc_lm_generate_batch(const mlxc_lm_model* model, const int32_t* const* prompts, const size_t* lengths, size_t n,
                           const mlxc_lm_generate_params* params, size_t n_params, mlxc_lm_generation* outs);

/* Speculative decoding (mlx-lm's speculative_generate_step): `draft` (a session of a smaller
 * model with the same vocabulary and the same context as `session`) proposes num_draft_tokens
 * tokens, sampled with params as the main model would; the main model scores them in one pass
 * and keeps those equal to its own choice, plus its own next token; both sessions are rewound to
 * what was kept. Each emitted token is the main model's, drawn in the same order from the same
 * random stream, so the output is that of mlxc_lm_generate (greedy: identical). out counts the
 * proposed and accepted draft tokens. Refused for models whose caches cannot be rewound
 * (convolution layers, max_kv_size, sliding-window layers). */
int mlxc_lm_generate_speculative(mlxc_lm_session* session, mlxc_lm_session* draft, const int32_t* prompt, size_t n_prompt,
                                 int num_draft_tokens, const mlxc_lm_generate_params* params, mlxc_lm_generation* out);

/* ---- Stop strings over streamed text */

typedef struct mlxc_lm_stop mlxc_lm_stop;

/* A matcher for n_stops non-empty stop strings (copied). */
int mlxc_lm_stop_new(mlxc_lm_stop** out, const char* const* stops, size_t n_stops);
void mlxc_lm_stop_free(mlxc_lm_stop* matcher);
/* Feeds the next piece of generated text. *emit receives the text that can be shown now (owned by
 * the matcher, valid until the next call): everything except a tail that could still begin a stop
 * string. When a stop string appears, *stopped becomes true and *emit ends just before it. */
int mlxc_lm_stop_push(mlxc_lm_stop* matcher, const char* text, size_t length, const char** emit,
                      size_t* emit_length, bool* stopped);
/* At the end of generation: the text still held back (none after a stop). */
int mlxc_lm_stop_finish(mlxc_lm_stop* matcher, const char** emit, size_t* emit_length);

/* Resets the session, runs ids[0..n-2] and adds -log p(ids[i+1] | ids[0..i]) for every i to
 * *nll_sum, and n - 1 to *count: perplexity = exp(nll_sum / count) over a text's windows. */
int mlxc_lm_window_nll(mlxc_lm_session* session, const int32_t* ids, size_t n, double* nll_sum, size_t* count);

/* ---- Conversion (mlxc convert) */

typedef struct {
  bool quantize;              /* affine-quantize linear and embedding weights */
  int bits;                   /* 2, 3, 4, 5, 6 or 8 (default 4) */
  int group_size;             /* 32, 64 or 128 (default 64) */
  const char* dtype_name;     /* cast floating-point weights to this dtype first, or NULL */
  mlx_dtype dtype;            /* the dtype named by dtype_name */
} mlxc_lm_convert_params;

/* Reads the model folder in_dir and writes an MLX-format folder out_dir (created if needed):
 * model.safetensors, config.json (with "quantization" when quantized), tokenizer files. */
int mlxc_lm_convert(const char* in_dir, const char* out_dir, const mlxc_lm_convert_params* params);

#ifdef __cplusplus
}
#endif

#endif
