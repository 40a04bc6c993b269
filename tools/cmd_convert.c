/* mlxc convert: write an MLX-format copy of a model folder, cast and/or quantized. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "mlxc/error.h"
#include "mlxc/hub.h"
#include "mlxc/lm.h"
#include "options.h"

int cmd_convert(int argc, char** argv) {
  const char *in = NULL, *out = NULL;
  mlxc_lm_convert_params p = {.bits = 4, .group_size = 64};
  option_spec specs[] = {
      {"--model", OPT_STRING, &in, "model folder or hub id to read"},
      {"--out", OPT_STRING, &out, "folder to write"},
      {"--quantize", OPT_FLAG, &p.quantize, "quantize linear and embedding weights (affine)"},
      {"--q-bits", OPT_INT, &p.bits, "bits per weight: 2, 3, 4, 5, 6, 8 (4)"},
      {"--q-group-size", OPT_INT, &p.group_size, "weights per scale: 32, 64, 128 (64)"},
      {"--dtype", OPT_STRING, &p.dtype_name, "float32, float16 or bfloat16"},
  };
  size_t n_specs = sizeof specs / sizeof specs[0];
  if (options_parse(argc, argv, specs, n_specs)) return 2;
  if (!in || !out) {
    fprintf(stderr, "usage: mlxc convert --model DIR --out DIR2 [--quantize --q-bits B --q-group-size G] [--dtype D]\n");
    options_usage(stderr, specs, n_specs);
    return 2;
  }
  if (p.dtype_name && !options_float_dtype(p.dtype_name, &p.dtype)) {
    fprintf(stderr, "mlxc convert: --dtype must be float32, float16 or bfloat16\n");
    return 2;
  }
  char* in_dir = NULL; /* a hub id becomes its cached snapshot */
  if (mlxc_hub_resolve(&in_dir, in, NULL) || mlxc_lm_convert(in_dir, out, &p)) {
    fprintf(stderr, "mlxc convert: %s\n", mlxc_last_error());
    free(in_dir);
    return 1;
  }
  free(in_dir);
  printf("wrote %s\n", out);
  return 0;
}
