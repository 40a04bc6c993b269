/* Splits a template into text and tag tokens exactly as Jinja2's lexer does with trim_blocks and
 * lstrip_blocks on (transformers' settings): whitespace control, comments, raw blocks, the dropped
 * final newline, and Python string escapes. */
#ifndef MLXC_TEMPLATE_LEXER_H
#define MLXC_TEMPLATE_LEXER_H

#include "template/value.h"

typedef enum {
  TK_TEXT,
  TK_VAR_BEGIN,
  TK_VAR_END,
  TK_BLOCK_BEGIN,
  TK_BLOCK_END,
  TK_NAME,
  TK_STRING,
  TK_INT,
  TK_FLOAT,
  TK_OP,
  TK_EOF,
} tmpl_token_kind;

typedef struct {
  tmpl_token_kind kind;
  int line, col;
  const char* text; /* NAME and OP: the spelling (NUL-terminated); TEXT and STRING: see value */
  tmpl_value value; /* TEXT, STRING: the string; INT, FLOAT: the number */
} tmpl_token;

typedef struct {
  tmpl_token* items;
  size_t len;
} tmpl_tokens;

/* Tokenizes `source` into arena memory; fails through tmpl_fail with the line and column. */
tmpl_tokens tmpl_lex(tmpl_arena* arena, const char* source, size_t len);

#endif
