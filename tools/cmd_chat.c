/* mlxc chat: an interactive conversation in the terminal. The history is rendered through the
 * chat template each turn, and the KV cache is kept across turns: only the tokens after the
 * longest prefix shared with what the session has already seen are computed. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "mlxc/error.h"
#include "mlxc/hub.h"
#include "model_io.h"
#include "options.h"
#include "util/strbuf.h"

typedef struct {
  mlxc_tokenizer_stream* stream;
  strbuf reply;
} turn_state;

static int on_token(int32_t token, void* user) {
  turn_state* t = user;
  const char* piece;
  size_t n;
  if (mlxc_tokenizer_stream_push(t->stream, token, &piece, &n)) return 1;
  fwrite(piece, 1, n, stdout);
  fflush(stdout);
  strbuf_append(&t->reply, piece, n);
  return 0;
}

/* Runs one assistant turn for the rendered conversation; keeps `seen` (the session's tokens). */
static int assistant_turn(mlxc_lm_session* session, const mlxc_tokenizer* tok, const char* rendered,
                          mlxc_lm_generate_params params, int32_t** seen, size_t* n_seen, char** reply) {
  int32_t* ids = NULL;
  size_t n = 0, common = 0;
  turn_state t = {0};
  mlxc_lm_generation gen = {0};
  int status = 1;
  if (mlxc_tokenizer_encode(tok, rendered, strlen(rendered), false, &ids, &n) || n == 0) goto cleanup;
  while (common < n && common < *n_seen && ids[common] == (*seen)[common]) common++;
  if (common == n) common--; /* something must be fed to get logits */
  if (mlxc_lm_session_truncate(session, (int)common)) {
    mlxc_lm_session_reset(session);
    common = 0;
  }
  if (mlxc_tokenizer_stream_new(&t.stream, tok, true)) goto cleanup;
  params.on_token = on_token;
  params.user_data = &t;
  if (mlxc_lm_generate(session, ids + common, n - common, &params, &gen)) goto cleanup;
  const char* rest;
  size_t rest_n;
  if (mlxc_tokenizer_stream_finish(t.stream, &rest, &rest_n) == 0 && rest_n) {
    fwrite(rest, 1, rest_n, stdout);
    strbuf_append(&t.reply, rest, rest_n);
  }
  printf("\n");
  /* The session now holds the prompt and the generated tokens it was fed. */
  size_t total = (size_t)mlxc_lm_session_length(session);
  int32_t* kept = realloc(*seen, sizeof(int32_t) * (total ? total : 1));
  if (!kept) goto cleanup;
  memcpy(kept, ids, sizeof(int32_t) * n);
  if (total > n) memcpy(kept + n, gen.ids, sizeof(int32_t) * (total - n));
  *seen = kept;
  *n_seen = total;
  *reply = strbuf_take(&t.reply);
  status = *reply ? 0 : 1;
cleanup:
  mlxc_lm_generation_free(&gen);
  mlxc_tokenizer_stream_free(t.stream);
  strbuf_free(&t.reply);
  free(ids);
  return status;
}

int cmd_chat(int argc, char** argv) {
  const char *dir = NULL, *system = NULL, *device = NULL;
  mlxc_lm_generate_params params = mlxc_lm_generate_default_params();
  params.max_tokens = 512;
  option_spec specs[] = {
      {"--model", OPT_STRING, &dir, "model folder or hub id org/name[@revision]"},
      {"--system", OPT_STRING, &system, "system prompt"},
      {"--max-tokens", OPT_INT, &params.max_tokens, "tokens per reply (512)"},
      {"--temp", OPT_FLOAT, &params.temperature, "sampling temperature (0 = greedy)"},
      {"--top-p", OPT_FLOAT, &params.top_p, "nucleus sampling threshold"},
      {"--seed", OPT_U64, &params.seed, "random seed"},
      {"--device", OPT_STRING, &device, "cpu or gpu"},
  };
  size_t n_specs = sizeof specs / sizeof specs[0];
  if (options_parse(argc, argv, specs, n_specs)) return 2;
  if (!dir) {
    fprintf(stderr, "usage: mlxc chat --model DIR [--system TEXT] [options]\n");
    return 2;
  }
  mlxc_lm_model* model = NULL;
  mlxc_tokenizer* tok = NULL;
  mlxc_lm_session* session = NULL;
  json_t* messages = json_array();
  int32_t* seen = NULL;
  size_t n_seen = 0;
  char* model_dir = NULL; /* a hub id becomes its cached snapshot */
  int status = 1;
  if (mlxc_hub_resolve(&model_dir, dir, NULL)) goto cleanup;
  dir = model_dir;
  if (tool_load_model(dir, device, &model, &tok) || mlxc_lm_session_new(&session, model)) goto cleanup;
  params.n_eos_ids = mlxc_tokenizer_eos_ids(tok, &params.eos_ids);
  if (system) json_array_append_new(messages, json_pack("{s:s, s:s}", "role", "system", "content", system));
  bool tty = isatty(0);
  if (tty) fprintf(stderr, "mlxc chat: /reset starts over, /exit or end of input leaves\n");
  char line[65536];
  for (;;) {
    if (tty) fprintf(stderr, ">> ");
    if (!fgets(line, sizeof line, stdin)) break;
    line[strcspn(line, "\n")] = '\0';
    if (!strcmp(line, "/exit")) break;
    if (!strcmp(line, "/reset")) {
      json_array_clear(messages);
      if (system) json_array_append_new(messages, json_pack("{s:s, s:s}", "role", "system", "content", system));
      mlxc_lm_session_reset(session);
      n_seen = 0;
      continue;
    }
    if (!line[0]) continue;
    json_array_append_new(messages, json_pack("{s:s, s:s}", "role", "user", "content", line));
    char* rendered = tool_render_messages(tok, dir, messages);
    char* reply = NULL;
    int failed = !rendered || assistant_turn(session, tok, rendered, params, &seen, &n_seen, &reply);
    free(rendered);
    if (failed) goto cleanup;
    json_array_append_new(messages, json_pack("{s:s, s:s}", "role", "assistant", "content", reply));
    free(reply);
  }
  status = 0;
cleanup:
  if (status) fprintf(stderr, "mlxc chat: %s\n", mlxc_last_error());
  json_decref(messages);
  free(seen);
  free(model_dir);
  mlxc_lm_session_free(session);
  mlxc_lm_free(model);
  mlxc_tokenizer_free(tok);
  return status;
}
