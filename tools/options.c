/* Option parsing for the CLI (options.h). */
#include "options.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int parse_value(const option_spec* spec, const char* text) {
  char* end = NULL;
  errno = 0;
  switch (spec->type) {
    case OPT_STRING: *(const char**)spec->value = text; return 0;
    case OPT_INT: {
      long v = strtol(text, &end, 10);
      if (errno || *end || v < -2147483647L || v > 2147483647L) break;
      *(int*)spec->value = (int)v;
      return 0;
    }
    case OPT_FLOAT: {
      float v = strtof(text, &end);
      if (errno || *end) break;
      *(float*)spec->value = v;
      return 0;
    }
    case OPT_U64: {
      unsigned long long v = strtoull(text, &end, 10);
      if (errno || *end) break;
      *(uint64_t*)spec->value = v;
      return 0;
    }
    case OPT_STRINGS: {
      option_strings* list = spec->value;
      if (list->n == OPTION_MAX_STRINGS) {
        fprintf(stderr, "mlxc: %s can be given at most %d times\n", spec->name, OPTION_MAX_STRINGS);
        return 1;
      }
      list->items[list->n++] = text;
      return 0;
    }
    case OPT_FLAG: break;
  }
  fprintf(stderr, "mlxc: invalid value '%s' for %s\n", text, spec->name);
  return 1;
}

int options_parse(int argc, char** argv, const option_spec* specs, size_t n_specs) {
  for (int i = 1; i < argc; i++) {
    const option_spec* spec = NULL;
    for (size_t j = 0; j < n_specs; j++)
      if (!strcmp(argv[i], specs[j].name)) spec = &specs[j];
    if (!spec && strncmp(argv[i], "--", 2) != 0) {
      /* A bare argument goes to the spec named "" (positional values), when there is one. */
      for (size_t j = 0; j < n_specs; j++)
        if (!specs[j].name[0]) spec = &specs[j];
      if (spec) {
        if (parse_value(spec, argv[i])) return 1;
        continue;
      }
    }
    if (!spec) {
      fprintf(stderr, "mlxc %s: unknown option '%s'\n", argv[0], argv[i]);
      options_usage(stderr, specs, n_specs);
      return 1;
    }
    if (spec->type == OPT_FLAG) {
      *(bool*)spec->value = true;
      continue;
    }
    if (i + 1 >= argc) {
      fprintf(stderr, "mlxc %s: %s needs a value\n", argv[0], argv[i]);
      return 1;
    }
    if (parse_value(spec, argv[++i])) return 1;
  }
  return 0;
}

void options_usage(FILE* out, const option_spec* specs, size_t n_specs) {
  fprintf(out, "options:\n");
  for (size_t i = 0; i < n_specs; i++)
    fprintf(out, "  %-22s %s\n", specs[i].name[0] ? specs[i].name : "ARG...", specs[i].help);
}

bool options_float_dtype(const char* name, mlx_dtype* out) {
  static const struct {
    const char* name;
    mlx_dtype dtype;
  } known[] = {{"float32", MLX_FLOAT32}, {"float16", MLX_FLOAT16}, {"bfloat16", MLX_BFLOAT16}};
  for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
    if (!strcmp(name, known[i].name)) {
      *out = known[i].dtype;
      return true;
    }
  return false;
}
