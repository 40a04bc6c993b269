/* mlxc generate: load a model folder and its tokenizer, generate from a prompt, stream the text.
 * mlxc logits: the last position's logits of a prompt as a JSON array (for parity checks). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "generate_modes.h"
#include "mlx/c/mlx.h"
#include "mlxc/error.h"
#include "mlxc/hub.h"
#include "mlxc/lm.h"
#include "mlxc/tokenizer.h"
#include "model_io.h"
#include "options.h"
#include "prompt_cache_cli.h"
#include "util/strbuf.h"

typedef struct {
  const char* model;
  const char* prompt;
  const char* system;
  const char* device;
  const char* prompt_cache_file;
  bool json, chat, logprobs;
  option_strings stops;
  option_strings prompts;              /* more than one: a batch */
  const char *prompts_file, *draft_model;
  int num_draft_tokens;
  mlxc_lm_generate_params params;
} generate_options;

/* Generated text goes token -> streaming detokenizer -> stop-string matcher -> stdout (and the
 * kept text, for --json). */
typedef struct {
  mlxc_tokenizer_stream* stream;
  mlxc_lm_stop* stop;
  bool print;
  strbuf text;
} stream_state;

static int show(stream_state* st, const char* piece, size_t n) {
  const char* emit;
  size_t emit_n;
  bool stopped = false;
  if (mlxc_lm_stop_push(st->stop, piece, n, &emit, &emit_n, &stopped)) return 1;
  strbuf_append(&st->text, emit, emit_n);
  if (st->print && emit_n) {
    fwrite(emit, 1, emit_n, stdout);
    fflush(stdout);
  }
  return stopped;
}

static int on_token(int32_t token, void* user) {
  stream_state* st = user;
  const char* piece;
  size_t n;
  if (mlxc_tokenizer_stream_push(st->stream, token, &piece, &n)) return 1;
  return show(st, piece, n);
}

static void print_json_string(FILE* out, const char* s) {
  fputc('"', out);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      fprintf(out, "\\%c", c);
    else if (c == '\n')
      fputs("\\n", out);
    else if (c < 0x20)
      fprintf(out, "\\u%04x", c);
    else
      fputc(c, out);
  }
  fputc('"', out);
}

int cmd_generate(int argc, char** argv) {
  generate_options o = {.params = mlxc_lm_generate_default_params(), .num_draft_tokens = 3};
  o.params.temperature = 0.0f;
  option_spec specs[] = {
      {"--model", OPT_STRING, &o.model, "model folder or hub id org/name[@revision]"},
      {"--prompt", OPT_STRINGS, &o.prompts, "prompt text (several: one batch)"},
      {"--prompts-file", OPT_STRING, &o.prompts_file, "a batch: one prompt per line"},
      {"--draft-model", OPT_STRING, &o.draft_model, "speculative decoding with this draft model (same vocabulary)"},
      {"--num-draft-tokens", OPT_INT, &o.num_draft_tokens, "tokens the draft proposes per step (3)"},
      {"--max-tokens", OPT_INT, &o.params.max_tokens, "tokens to generate (256)"},
      {"--temp", OPT_FLOAT, &o.params.temperature, "sampling temperature (0 = greedy)"},
      {"--top-p", OPT_FLOAT, &o.params.top_p, "nucleus sampling threshold"},
      {"--top-k", OPT_INT, &o.params.top_k, "sample among the k most likely tokens"},
      {"--min-p", OPT_FLOAT, &o.params.min_p, "drop tokens less likely than min-p times the best"},
      {"--repetition-penalty", OPT_FLOAT, &o.params.repetition_penalty, "penalty for repeated tokens"},
      {"--repetition-context", OPT_INT, &o.params.repetition_context, "tokens the penalties look back over (20)"},
      {"--presence-penalty", OPT_FLOAT, &o.params.presence_penalty, "subtracted from tokens already present"},
      {"--frequency-penalty", OPT_FLOAT, &o.params.frequency_penalty, "subtracted per earlier occurrence"},
      {"--xtc-probability", OPT_FLOAT, &o.params.xtc_probability, "XTC: chance of excluding the top choices"},
      {"--xtc-threshold", OPT_FLOAT, &o.params.xtc_threshold, "XTC: probability above which tokens are excluded"},
      {"--stop", OPT_STRINGS, &o.stops, "stop when this text appears (repeatable)"},
      {"--logprobs", OPT_FLAG, &o.logprobs, "with --json: the log-probability of each token"},
      {"--seed", OPT_U64, &o.params.seed, "random seed"},
      {"--max-kv-size", OPT_INT, &o.params.max_kv_size, "rotating KV cache of at most N positions (0 = unlimited)"},
      {"--kv-bits", OPT_INT, &o.params.kv_bits, "quantize the KV cache to 4 or 8 bits (0 = off)"},
      {"--kv-group-size", OPT_INT, &o.params.kv_group_size, "group size of the KV cache quantization (64)"},
      {"--quantized-kv-start", OPT_INT, &o.params.quantized_kv_start, "quantize once the cache holds this many tokens (0)"},
      {"--chat", OPT_FLAG, &o.chat, "format the prompt with the model's chat template"},
      {"--system", OPT_STRING, &o.system, "system prompt (with --chat)"},
      {"--device", OPT_STRING, &o.device, "cpu or gpu"},
      {"--json", OPT_FLAG, &o.json, "print one JSON object instead of streaming text"},
      {"--prompt-cache-file", OPT_STRING, &o.prompt_cache_file, "start from this prompt cache (mlxc cache-prompt)"},
  };
  if (options_parse(argc, argv, specs, sizeof specs / sizeof specs[0])) return 2;
  o.prompt = o.prompts.n ? o.prompts.items[0] : NULL;
  if (o.model && (o.prompts.n > 1 || o.prompts_file)) {
    if (o.draft_model || o.prompt_cache_file)
      return fprintf(stderr, "mlxc generate: --draft-model and --prompt-cache-file work with one prompt\n"), 2;
    generate_batch_request batch = {o.model, o.device, &o.prompts, o.prompts_file, o.chat, o.json, o.system, &o.stops};
    return tool_generate_batch(&batch, o.params);
  }
  char* cache_model = NULL; /* --model defaults to the one the prompt cache names */
  if (!o.model && o.prompt_cache_file && o.prompt) o.model = cache_model = tool_prompt_cache_model(o.prompt_cache_file);
  if (!o.model || !o.prompt) {
    free(cache_model);
    fprintf(stderr, "usage: mlxc generate --model DIR --prompt TEXT [options]\n");
    options_usage(stderr, specs, sizeof specs / sizeof specs[0]);
    return 2;
  }
  mlxc_lm_model* model = NULL;
  mlxc_tokenizer* tok = NULL;
  mlxc_lm_session* session = NULL;
  mlxc_tokenizer_stream* stream = NULL;
  mlxc_lm_stop* stop = NULL;
  stream_state st = {0};
  int32_t* ids = NULL;
  size_t n_ids = 0;
  int status = 1;
  char* model_dir = NULL; /* a hub id becomes its cached snapshot */
  if (mlxc_hub_resolve(&model_dir, o.model, NULL)) goto cleanup;
  o.model = model_dir;
  if (tool_load_model(o.model, o.device, &model, &tok)) goto cleanup;
  if (o.chat) {
    /* As apply_chat_template: the rendered text carries its own special tokens. */
    char* rendered = tool_render_chat(tok, o.model, o.system, o.prompt);
    if (!rendered) goto cleanup;
    int failed = mlxc_tokenizer_encode(tok, rendered, strlen(rendered), false, &ids, &n_ids);
    free(rendered);
    if (failed) goto cleanup;
  } else if (mlxc_tokenizer_encode(tok, o.prompt, strlen(o.prompt), true, &ids, &n_ids)) {
    goto cleanup;
  }
  if (mlxc_lm_session_new(&session, model) || mlxc_tokenizer_stream_new(&stream, tok, true)) goto cleanup;
  size_t cached = 0;
  if (o.prompt_cache_file && tool_prompt_cache_resume(session, tok, o.prompt_cache_file, &ids, &n_ids, &cached))
    goto cleanup;
  if (mlxc_lm_stop_new(&stop, o.stops.items, o.stops.n)) goto cleanup;
  st = (stream_state){stream, stop, !o.json, {0}};
  o.params.on_token = on_token;
  o.params.user_data = &st;
  o.params.n_eos_ids = mlxc_tokenizer_eos_ids(tok, &o.params.eos_ids);
  mlxc_lm_generation gen;
  if (o.draft_model ? tool_generate_speculative(o.draft_model, o.device, o.num_draft_tokens, session, ids, n_ids, &o.params, &gen)
                    : mlxc_lm_generate(session, ids, n_ids, &o.params, &gen))
    goto cleanup;
  double prompt_tps = gen.prompt_seconds > 0 ? gen.prompt_tokens / gen.prompt_seconds : 0;
  double gen_tps = gen.generation_seconds > 0 && gen.n_ids > 1 ? (gen.n_ids - 1) / gen.generation_seconds : 0;
  /* What the detokenizer and the stop matcher still hold. */
  const char* rest;
  size_t rest_n;
  if (mlxc_tokenizer_stream_finish(stream, &rest, &rest_n) == 0 && rest_n) show(&st, rest, rest_n);
  if (mlxc_lm_stop_finish(stop, &rest, &rest_n) == 0 && rest_n) {
    strbuf_append(&st.text, rest, rest_n);
    if (!o.json) fwrite(rest, 1, rest_n, stdout);
  }
  if (o.json) {
    printf("{\"text\": ");
    print_json_string(stdout, st.text.data ? st.text.data : "");
    printf(", \"ids\": [");
    for (size_t i = 0; i < gen.n_ids; i++) printf(i ? ", %d" : "%d", gen.ids[i]);
    printf("]");
    if (o.logprobs) {
      printf(", \"logprobs\": [");
      for (size_t i = 0; i < gen.n_ids; i++) printf(i ? ", %.6g" : "%.6g", gen.logprobs[i]);
      printf("]");
    }
    if (o.draft_model) printf(", \"draft_tokens\": %zu, \"draft_accepted\": %zu", gen.draft_tokens, gen.draft_accepted);
    if (o.prompt_cache_file) printf(", \"prompt_cache_tokens\": %zu", cached);
    printf(", \"prompt_tokens\": %zu, \"generation_tokens\": %zu, \"prompt_tps\": %.3f, "
           "\"generation_tps\": %.3f, \"peak_memory\": %zu}\n",
           gen.prompt_tokens, gen.n_ids, prompt_tps, gen_tps, gen.peak_memory);
  } else {
    printf("\n");
    fflush(stdout);
    fprintf(stderr, "==========\nPrompt: %zu tokens, %.1f tokens-per-sec\nGeneration: %zu tokens, %.1f tokens-per-sec\n"
            "Peak memory: %.3f GB\n", gen.prompt_tokens, prompt_tps, gen.n_ids, gen_tps, gen.peak_memory / 1e9);
    if (o.draft_model) fprintf(stderr, "Draft: %zu of %zu proposed tokens accepted\n", gen.draft_accepted, gen.draft_tokens);
  }
  mlxc_lm_generation_free(&gen);
  status = 0;
cleanup:
  if (status) fprintf(stderr, "mlxc generate: %s\n", mlxc_last_error());
  free(model_dir);
  free(cache_model);
  free(ids);
  strbuf_free(&st.text);
  mlxc_lm_stop_free(stop);
  mlxc_tokenizer_stream_free(stream);
  mlxc_lm_session_free(session);
  mlxc_lm_free(model);
  mlxc_tokenizer_free(tok);
  return status;
}

int cmd_logits(int argc, char** argv) {
  const char *dir = NULL, *prompt = NULL, *device = NULL;
  option_spec specs[] = {
      {"--model", OPT_STRING, &dir, "model folder or hub id org/name[@revision]"},
      {"--prompt", OPT_STRING, &prompt, "prompt text"},
      {"--device", OPT_STRING, &device, "cpu or gpu"},
  };
  if (options_parse(argc, argv, specs, sizeof specs / sizeof specs[0])) return 2;
  if (!dir || !prompt) {
    fprintf(stderr, "usage: mlxc logits --model DIR --prompt TEXT\n");
    return 2;
  }
  mlxc_lm_model* model = NULL;
  mlxc_tokenizer* tok = NULL;
  mlxc_lm_session* session = NULL;
  int32_t* ids = NULL;
  size_t n_ids = 0;
  mlx_array logits = mlx_array_new();
  int status = 1;
  char* model_dir = NULL;
  if (mlxc_hub_resolve(&model_dir, dir, NULL)) goto cleanup;
  if (tool_load_model(model_dir, device, &model, &tok)) goto cleanup;
  if (mlxc_tokenizer_encode(tok, prompt, strlen(prompt), true, &ids, &n_ids)) goto cleanup;
  if (mlxc_lm_session_new(&session, model) || mlxc_lm_forward(session, ids, n_ids, &logits)) goto cleanup;
  const float* p = mlx_array_data_float32(logits);
  if (!p) goto cleanup;
  int vocab = mlxc_lm_vocab_size(model);
  const float* last = p + (n_ids - 1) * (size_t)vocab;
  printf("[");
  for (int i = 0; i < vocab; i++) printf(i ? ", %.9g" : "%.9g", last[i]);
  printf("]\n");
  status = 0;
cleanup:
  if (status) fprintf(stderr, "mlxc logits: %s\n", mlxc_last_error());
  free(model_dir);
  free(ids);
  mlx_array_free(logits);
  mlxc_lm_session_free(session);
  mlxc_lm_free(model);
  mlxc_tokenizer_free(tok);
  return status;
}
