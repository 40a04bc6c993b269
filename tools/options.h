/* A small table-driven parser for the subcommands' --options. */
#ifndef MLXC_TOOLS_OPTIONS_H
#define MLXC_TOOLS_OPTIONS_H

#include <stdbool.h>
#include <stdio.h>

#include "mlx/c/array.h"

typedef enum { OPT_STRING, OPT_INT, OPT_FLOAT, OPT_U64, OPT_FLAG, OPT_STRINGS } option_type;

/* The value of an OPT_STRINGS option: each occurrence appends one string. */
#define OPTION_MAX_STRINGS 16
typedef struct {
  const char* items[OPTION_MAX_STRINGS];
  size_t n;
} option_strings;

typedef struct {
  const char* name;   /* "--max-tokens"; "" takes the bare (positional) arguments */
  option_type type;
  void* value;        /* const char**, int*, float*, uint64_t*, bool* or option_strings* */
  const char* help;
} option_spec;

/* Parses argv[1..] (argv[0] is the subcommand); unknown options and bad values print a message
 * to stderr and return non-zero. */
int options_parse(int argc, char** argv, const option_spec* specs, size_t n_specs);
void options_usage(FILE* out, const option_spec* specs, size_t n_specs);
/* "float32", "float16" or "bfloat16" as a dtype; false for other names. */
bool options_float_dtype(const char* name, mlx_dtype* out);

#endif
