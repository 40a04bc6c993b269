/* JSON in and out: jansson values to template values (keeping key order and int/float), and
 * Python's json.dumps as transformers' tojson filter calls it. */
#ifndef MLXC_TEMPLATE_JSON_H
#define MLXC_TEMPLATE_JSON_H

#include <jansson.h>

#include "template/eval.h"

tmpl_value tmpl_from_json(tmpl_arena* arena, const json_t* json);

typedef struct {
  const char* indent;   /* NULL: single line */
  const char* item_separator;
  const char* key_separator;
  bool ensure_ascii;
  bool sort_keys;
} tmpl_json_style;

/* json.dumps(v, ...) appended to buf; fails on values JSON cannot hold (Undefined, functions). */
void tmpl_write_json(tmpl_interp* in, tmpl_buf* buf, tmpl_value v, const tmpl_json_style* style);

#endif
