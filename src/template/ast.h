/* The syntax tree of a compiled template and the parser that builds it (Jinja2's grammar). */
#ifndef MLXC_TEMPLATE_AST_H
#define MLXC_TEMPLATE_AST_H

#include "template/lexer.h"

typedef enum {
  /* expressions */
  N_LITERAL,   /* literal */
  N_NAME,      /* name */
  N_LIST,      /* list: items */
  N_TUPLE,     /* list: items */
  N_DICT,      /* list: keys, list2: values */
  N_GETATTR,   /* a.name */
  N_GETITEM,   /* a[b] */
  N_SLICE,     /* a:b:c inside [] (each may be NULL) */
  N_CALL,      /* a(list, list2 as keywords named kw_names) */
  N_FILTER,    /* a|name(args); a NULL means the filter block's input */
  N_TEST,      /* a is [not] name(args); op = 1 when negated */
  N_UNARY,     /* op a: '-', '+' */
  N_BINARY,    /* a op b: + - * / // % ** */
  N_CONCAT,    /* list joined with ~ */
  N_COMPARE,   /* a then (ops[i], list.items[i]) */
  N_AND,
  N_OR,
  N_NOT,
  N_CONDEXPR,  /* b if a else c (c may be NULL) */
  /* statements */
  N_TEXT,      /* literal string */
  N_OUTPUT,    /* {{ a }} */
  N_IF,        /* if a: list else list2 */
  N_FOR,       /* for a in b [if c]: list else list2 */
  N_SET,       /* set a = b */
  N_SET_BLOCK, /* set a [| filters in b]: list */
  N_MACRO,     /* macro name(list params, list2 defaults): list3 */
  N_CALL_BLOCK,/* call(list params, list2 defaults) a: list3 */
  N_FILTER_BLOCK, /* filter b: list */
  N_WITH,      /* with list targets = list2 values: list3 */
  N_BREAK,
  N_CONTINUE,
} ast_kind;

typedef struct ast_node ast_node;

typedef struct {
  size_t len;
  ast_node** items;
} ast_list;

struct ast_node {
  ast_kind kind;
  int line, col;
  int op;            /* operator: a token spelling's first chars packed, see parser.c */
  const char* name;
  tmpl_value literal;
  ast_node *a, *b, *c;
  ast_list list, list2, list3;
  const char** kw_names; /* N_CALL/N_FILTER/N_TEST: names of list2's keyword arguments */
  int* ops;              /* N_COMPARE: one operator per list item */
};

/* Operators (ast_node.op). */
enum {
  OP_ADD = 1, OP_SUB, OP_MUL, OP_DIV, OP_FLOORDIV, OP_MOD, OP_POW, OP_NEG, OP_POS,
  OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE, OP_IN, OP_NOTIN,
};

/* Parses tokens into the statements of the template body (arena memory; fails via tmpl_fail). */
ast_list tmpl_parse(tmpl_arena* arena, tmpl_tokens tokens);

#endif
