/* mlxc generate with several prompts (one left-padded batch, mlxc_lm_generate_batch) and with
 * a draft model (mlxc_lm_generate_speculative). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "generate_modes.h"
#include "mlx/c/mlx.h"
#include "mlxc/error.h"
#include "mlxc/hub.h"
#include "mlxc/tokenizer.h"
#include "model_io.h"
#include "util/strbuf.h"

int tool_generate_speculative(const char* draft_dir, const char* device, int num_draft_tokens, mlxc_lm_session* session,
                              const int32_t* ids, size_t n_ids, const mlxc_lm_generate_params* params,
                              mlxc_lm_generation* out) {
  char* dir = NULL;
  mlxc_lm_model* draft = NULL;
  mlxc_tokenizer* draft_tok = NULL;
  mlxc_lm_session* draft_session = NULL;
  int status = mlxc_hub_resolve(&dir, draft_dir, NULL);
  if (!status) status = tool_load_model(dir, device, &draft, &draft_tok);
  if (!status) status = mlxc_lm_session_new(&draft_session, draft);
  if (!status) status = mlxc_lm_generate_speculative(session, draft_session, ids, n_ids, num_draft_tokens, params, out);
  mlxc_lm_session_free(draft_session);
  mlxc_lm_free(draft);
  mlxc_tokenizer_free(draft_tok);
  free(dir);
  return status;
}

/* One row's text: detokenized as it comes, cut at a stop string (which ends the row). */
typedef struct {
  mlxc_tokenizer_stream* stream;
  mlxc_lm_stop* stop;
  strbuf text;
} row_text;

static int row_push(row_text* row, const char* piece, size_t n) {
  const char* emit;
  size_t emit_n;
  bool stopped = false;
  if (mlxc_lm_stop_push(row->stop, piece, n, &emit, &emit_n, &stopped)) return 1;
  strbuf_append(&row->text, emit, emit_n);
  return stopped;
}

static int row_on_token(int32_t token, void* user) {
  row_text* row = user;
  const char* piece;
  size_t n;
  return mlxc_tokenizer_stream_push(row->stream, token, &piece, &n) ? 1 : row_push(row, piece, n);
}

static void row_finish(row_text* row) {
  const char* rest;
  size_t n;
  if (mlxc_tokenizer_stream_finish(row->stream, &rest, &n) == 0 && n) row_push(row, rest, n);
  if (mlxc_lm_stop_finish(row->stop, &rest, &n) == 0 && n) strbuf_append(&row->text, rest, n);
}

/* The prompts: every --prompt, then the lines of --prompts-file. */
static int collect_prompts(const generate_batch_request* r, char*** out, size_t* n) {
  size_t cap = r->prompts->n + 16;
  char** list = malloc(sizeof(char*) * cap);
  if (!list) return 1;
  *n = 0;
  for (size_t i = 0; i < r->prompts->n; i++) list[(*n)++] = strdup(r->prompts->items[i]);
  if (r->prompts_file) {
    FILE* f = fopen(r->prompts_file, "r");
    if (!f) {
      fprintf(stderr, "mlxc generate: cannot read %s\n", r->prompts_file);
      for (size_t i = 0; i < *n; i++) free(list[i]);
      free(list);
      *n = 0;
      return 1;
    }
    char* line = NULL;
    size_t line_cap = 0;
    ssize_t len;
    while ((len = getline(&line, &line_cap, f)) >= 0) {
      while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
      if (len == 0) continue;
      if (*n == cap) {
        char** grown = realloc(list, sizeof(char*) * (cap *= 2));
        if (!grown) break;
        list = grown;
      }
      list[(*n)++] = strdup(line);
    }
    free(line);
    fclose(f);
  }
  *out = list;
  return 0;
}

int tool_generate_batch(const generate_batch_request* r, mlxc_lm_generate_params params) {
  char* dir = NULL;
  char** prompts = NULL;
  size_t n = 0;
  mlxc_lm_model* model = NULL;
  mlxc_tokenizer* tok = NULL;
  int32_t** ids = NULL;
  size_t* lengths = NULL;
  row_text* rows = NULL;
  mlxc_lm_generate_params* row_params = NULL;
  mlxc_lm_generation* outs = NULL;
  bool generated = false;
  int status = 1;
  if (collect_prompts(r, &prompts, &n)) goto cleanup;
  if (n == 0) {
    fprintf(stderr, "mlxc generate: no prompts\n");
    goto cleanup;
  }
  if (mlxc_hub_resolve(&dir, r->model, NULL) || tool_load_model(dir, r->device, &model, &tok)) goto report;
  ids = calloc(n, sizeof *ids);
  lengths = calloc(n, sizeof *lengths);
  rows = calloc(n, sizeof *rows);
  row_params = calloc(n, sizeof *row_params);
  outs = calloc(n, sizeof *outs);
  if (!ids || !lengths || !rows || !row_params || !outs) {
    fprintf(stderr, "mlxc generate: out of memory\n");
    goto cleanup;
  }
  const int32_t* eos = NULL;
  size_t n_eos = mlxc_tokenizer_eos_ids(tok, &eos);
  for (size_t i = 0; i < n; i++) {
    char* text = r->chat ? tool_render_chat(tok, dir, r->system, prompts[i]) : NULL;
    if (r->chat && !text) goto cleanup;
    /* As apply_chat_template: the rendered text carries its own special tokens. */
    int failed = mlxc_tokenizer_encode(tok, text ? text : prompts[i], strlen(text ? text : prompts[i]), !r->chat, &ids[i],
                                       &lengths[i]);
    free(text);
    if (failed || mlxc_tokenizer_stream_new(&rows[i].stream, tok, true) ||
        mlxc_lm_stop_new(&rows[i].stop, r->stops->items, r->stops->n))
      goto report;
    row_params[i] = params;
    row_params[i].seed = params.seed + i; /* as mlxc_lm_generate_batch with shared parameters */
    row_params[i].eos_ids = eos;
    row_params[i].n_eos_ids = n_eos;
    row_params[i].on_token = row_on_token;
    row_params[i].user_data = &rows[i];
  }
  if (mlxc_lm_generate_batch(model, (const int32_t* const*)ids, lengths, n, row_params, n, outs)) goto report;
  generated = true;
  size_t prompt_tokens = 0, generation_tokens = 0;
  for (size_t i = 0; i < n; i++) {
    row_finish(&rows[i]);
    prompt_tokens += outs[i].prompt_tokens;
    generation_tokens += outs[i].n_ids;
  }
  double prompt_tps = outs[0].prompt_seconds > 0 ? prompt_tokens / outs[0].prompt_seconds : 0;
  double gen_tps = outs[0].generation_seconds > 0 ? generation_tokens / outs[0].generation_seconds : 0;
  if (r->json) {
    json_t* array = json_array();
    for (size_t i = 0; i < n; i++) {
      json_t* list = json_array();
      for (size_t t = 0; t < outs[i].n_ids; t++) json_array_append_new(list, json_integer(outs[i].ids[t]));
      json_array_append_new(array, json_pack("{s:s, s:s, s:o, s:I, s:I, s:b, s:f, s:f, s:I}", "prompt", prompts[i], "text",
                                             rows[i].text.data ? rows[i].text.data : "", "ids", list, "prompt_tokens",
                                             (json_int_t)outs[i].prompt_tokens, "generation_tokens",
                                             (json_int_t)outs[i].n_ids, "stopped_by_eos", outs[i].stopped_by_eos,
                                             "prompt_tps", prompt_tps, "generation_tps", gen_tps, "peak_memory",
                                             (json_int_t)outs[i].peak_memory));
    }
    char* dumped = json_dumps(array, JSON_ENSURE_ASCII);
    if (dumped) printf("%s\n", dumped);
    free(dumped);
    json_decref(array);
  } else {
    for (size_t i = 0; i < n; i++) printf("========== [%zu] %s\n%s\n", i, prompts[i], rows[i].text.data ? rows[i].text.data : "");
    fflush(stdout);
    fprintf(stderr, "==========\nBatch of %zu\nPrompt: %zu tokens, %.1f tokens-per-sec\nGeneration: %zu tokens, "
            "%.1f tokens-per-sec\nPeak memory: %.3f GB\n", n, prompt_tokens, prompt_tps, generation_tokens, gen_tps,
            outs[0].peak_memory / 1e9);
  }
  status = 0;
  goto cleanup;
report:
  fprintf(stderr, "mlxc generate: %s\n", mlxc_last_error());
cleanup:
  for (size_t i = 0; i < n; i++) {
    if (ids) free(ids[i]);
    if (rows) {
      mlxc_tokenizer_stream_free(rows[i].stream);
      mlxc_lm_stop_free(rows[i].stop);
      strbuf_free(&rows[i].text);
    }
    if (generated) mlxc_lm_generation_free(&outs[i]);
    free(prompts[i]);
  }
  free(prompts);
  free(ids);
  free(lengths);
  free(rows);
  free(row_params);
  free(outs);
  free(dir);
  mlxc_lm_free(model);
  mlxc_tokenizer_free(tok);
  return status;
}
