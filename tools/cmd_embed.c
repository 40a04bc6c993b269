/* mlxc embed: one JSON array per input text. mlxc similarity: the cosine of two texts. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "mlx/c/mlx.h"
#include "mlxc/embed.h"
#include "mlxc/error.h"
#include "mlxc/hub.h"
#include "options.h"

/* The lines of a file (newlines stripped); *n_lines set; everything malloc'd. */
static char** read_lines(const char* path, size_t* n_lines) {
  FILE* f = fopen(path, "r");
  if (!f) return NULL;
  char** lines = NULL;
  size_t n = 0, cap = 0;
  char* line = NULL;
  size_t len = 0;
  ssize_t got;
  while ((got = getline(&line, &len, f)) >= 0) {
    if (got > 0 && line[got - 1] == '\n') line[got - 1] = '\0';
    if (n == cap) {
      cap = cap ? cap * 2 : 16;
      char** grown = realloc(lines, cap * sizeof *lines);
      if (!grown) break;
      lines = grown;
    }
    lines[n++] = strdup(line);
  }
  free(line);
  fclose(f);
  *n_lines = n;
  return lines ? lines : calloc(1, sizeof *lines);
}

int cmd_embed(int argc, char** argv) {
  const char *dir = NULL, *file = NULL, *device = NULL, *prompt_name = NULL, *prompt = NULL, *dtype_name = NULL;
  bool normalize = false, list_prompts = false;
  int batch = 32, dim = 0;
  option_strings texts = {0};
  option_spec specs[] = {
      {"--model", OPT_STRING, &dir, "sentence-transformers model folder"},
      {"--text", OPT_STRINGS, &texts, "a text to embed (repeatable)"},
      {"", OPT_STRINGS, &texts, "texts to embed (as --text)"},
      {"--file", OPT_STRING, &file, "embed each line of this file"},
      {"--normalize", OPT_FLAG, &normalize, "L2-normalize (also when the model does not)"},
      {"--batch", OPT_INT, &batch, "sentences per forward pass (32)"},
      {"--dim", OPT_INT, &dim, "keep the first D values (Matryoshka)"},
      {"--prompt-name", OPT_STRING, &prompt_name, "put the model's prompt NAME before each text"},
      {"--prompt", OPT_STRING, &prompt, "put this text before each text"},
      {"--list-prompts", OPT_FLAG, &list_prompts, "print the model's prompts and exit"},
      {"--device", OPT_STRING, &device, "cpu or gpu"},
      {"--dtype", OPT_STRING, &dtype_name, "compute in float32 (default), float16 or bfloat16"},
  };
  size_t n_specs = sizeof specs / sizeof specs[0];
  if (options_parse(argc, argv, specs, n_specs)) return 2;
  mlx_dtype dtype = MLX_FLOAT32;
  if (dtype_name && !options_float_dtype(dtype_name, &dtype)) {
    fprintf(stderr, "mlxc embed: --dtype must be float32, float16 or bfloat16\n");
    return 2;
  }
  if (!dir || (!file && texts.n == 0 && !list_prompts) || batch <= 0 || dim < 0) {
    fprintf(stderr, "usage: mlxc embed --model DIR (--text TEXT ... | --file F) [--normalize] [--batch N] [--dim D]"
                    " [--prompt-name NAME | --prompt TEXT]\n");
    options_usage(stderr, specs, n_specs);
    return 2;
  }
  char** lines = NULL;
  size_t n = texts.n;
  const char* const* inputs = texts.items;
  if (file) {
    if (!(lines = read_lines(file, &n))) {
      fprintf(stderr, "mlxc embed: cannot read %s\n", file);
      return 1;
    }
    inputs = (const char* const*)lines;
  }
  mlxc_embed_model* model = NULL;
  float* vectors = NULL;
  size_t d = 0;
  int status = 1;
  mlx_stream stream = device && !strcmp(device, "cpu") ? mlx_default_cpu_stream_new() :
                      device && !strcmp(device, "gpu") ? mlx_default_gpu_stream_new() : mlx_stream_new();
  mlxc_embed_params params = mlxc_embed_default_params();
  params.batch_size = (size_t)batch;
  params.dim = (size_t)dim;
  if (normalize) params.normalize = 1;
  params.prompt_name = prompt_name;
  params.prompt = prompt;
  char* model_dir = NULL;
  if (mlxc_hub_resolve(&model_dir, dir, NULL) || mlxc_embed_load_dtype(&model, model_dir, stream, dtype)) {
    free(model_dir);
    goto cleanup;
  }
  free(model_dir);
  if (list_prompts) {
    const char* def = mlxc_embed_default_prompt_name(model);
    for (size_t i = 0; i < mlxc_embed_prompt_count(model); i++) {
      const char* name = mlxc_embed_prompt_name(model, i);
      json_t* text = json_string(mlxc_embed_prompt_text(model, name));
      char* quoted = text ? json_dumps(text, JSON_ENCODE_ANY) : NULL; /* escapes newlines */
      printf("%s%s: %s\n", name, def && !strcmp(def, name) ? " (default)" : "", quoted ? quoted : "?");
      free(quoted);
      json_decref(text);
    }
    status = 0;
    goto cleanup;
  }
  if (mlxc_embed_encode(model, inputs, n, params, &vectors, &d)) goto cleanup;
  for (size_t i = 0; i < n; i++) {
    printf("[");
    for (size_t k = 0; k < d; k++) printf(k ? ", %.7g" : "%.7g", vectors[i * d + k]);
    printf("]\n");
  }
  status = 0;
cleanup:
  if (status) fprintf(stderr, "mlxc embed: %s\n", mlxc_last_error());
  for (size_t i = 0; lines && i < n; i++) free(lines[i]);
  free(lines);
  free(vectors);
  mlxc_embed_free(model);
  return status;
}

int cmd_similarity(int argc, char** argv) {
  if (argc != 5 || strcmp(argv[1], "--model")) {
    fprintf(stderr, "usage: mlxc similarity --model DIR TEXT TEXT\n");
    return 2;
  }
  mlxc_embed_model* model = NULL;
  float* v = NULL;
  size_t d = 0;
  const char* texts[2] = {argv[3], argv[4]};
  int status = 1;
  if (mlxc_embed_load(&model, argv[2], mlx_stream_new()) ||
      mlxc_embed_encode(model, texts, 2, mlxc_embed_default_params(), &v, &d))
    goto cleanup;
  printf("%.6f\n", mlxc_embed_cosine(v, v + d, d));
  status = 0;
cleanup:
  if (status) fprintf(stderr, "mlxc similarity: %s\n", mlxc_last_error());
  free(v);
  mlxc_embed_free(model);
  return status;
}
