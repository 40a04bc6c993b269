/* mlxc perplexity: exp(mean negative log-likelihood) of a text file's tokens, over consecutive
 * windows of --context tokens (each window predicts its tokens after the first). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "mlx/c/mlx.h"
#include "mlxc/error.h"
#include "mlxc/hub.h"
#include "mlxc/lm.h"
#include "mlxc/tokenizer.h"
#include "options.h"

static char* read_text(const char* path, size_t* length) {
  FILE* f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char* text = n >= 0 ? malloc((size_t)n + 1) : NULL;
  if (text && fread(text, 1, (size_t)n, f) != (size_t)n) {
    free(text);
    text = NULL;
  }
  fclose(f);
  if (text) {
    text[n] = '\0';
    *length = (size_t)n;
  }
  return text;
}

int cmd_perplexity(int argc, char** argv) {
  const char *dir = NULL, *file = NULL;
  int context = 256;
  option_spec specs[] = {
      {"--model", OPT_STRING, &dir, "model folder or hub id org/name[@revision]"},
      {"--file", OPT_STRING, &file, "UTF-8 text file"},
      {"--context", OPT_INT, &context, "tokens per window (256)"},
  };
  size_t n_specs = sizeof specs / sizeof specs[0];
  if (options_parse(argc, argv, specs, n_specs)) return 2;
  if (!dir || !file || context < 2) {
    fprintf(stderr, "usage: mlxc perplexity --model DIR --file TEXT [--context N]\n");
    return 2;
  }
  size_t length = 0, n_ids = 0, count = 0;
  char* text = read_text(file, &length);
  if (!text) {
    fprintf(stderr, "mlxc perplexity: cannot read %s\n", file);
    return 1;
  }
  mlxc_tokenizer* tok = NULL;
  mlxc_lm_model* model = NULL;
  mlxc_lm_session* session = NULL;
  int32_t* ids = NULL;
  double nll = 0;
  char* model_dir = NULL;
  int status = 1;
  if (mlxc_hub_resolve(&model_dir, dir, NULL)) goto cleanup;
  dir = model_dir;
  if (mlxc_tokenizer_load(&tok, dir) || mlxc_lm_load(&model, dir, mlx_stream_new())) goto cleanup;
  if (mlxc_tokenizer_encode(tok, text, length, false, &ids, &n_ids)) goto cleanup;
  if (mlxc_lm_session_new(&session, model)) goto cleanup;
  /* Windows [s, s + context] of context + 1 tokens, stepping by context, as the training script. */
  for (size_t s = 0; s + 1 < n_ids; s += (size_t)context) {
    size_t n = n_ids - s < (size_t)context + 1 ? n_ids - s : (size_t)context + 1;
    if (n < 2) break;
    if (mlxc_lm_window_nll(session, ids + s, n, &nll, &count)) goto cleanup;
  }
  printf("{\"tokens\": %zu, \"predicted\": %zu, \"nll\": %.6f, \"perplexity\": %.4f}\n", n_ids, count,
         count ? nll / count : 0.0, count ? exp(nll / count) : 0.0);
  status = 0;
cleanup:
  if (status) fprintf(stderr, "mlxc perplexity: %s\n", mlxc_last_error());
  free(text);
  free(ids);
  free(model_dir);
  mlxc_lm_session_free(session);
  mlxc_lm_free(model);
  mlxc_tokenizer_free(tok);
  return status;
}
