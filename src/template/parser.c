/* Recursive-descent parser following Jinja2's parser.py: statements, expressions and precedence. */
#include "template/ast.h"

#include <stdio.h>
#include <string.h>

#define MAX_NESTING 200

typedef struct {
  tmpl_arena* arena;
  tmpl_token* tokens;
  size_t len, pos;
  int nesting;    /* guards the C stack against deeply nested input */
  int loop_depth; /* break/continue are only valid inside for loops */
} parser;

typedef struct {
  ast_node** items;
  size_t len, cap;
} node_vec;

static tmpl_token* cur(parser* p) { return &p->tokens[p->pos]; }
static tmpl_token* peek(parser* p, size_t ahead) {
  size_t i = p->pos + ahead;
  return &p->tokens[i < p->len ? i : p->len - 1];
}
static void advance(parser* p) {
  if (p->pos + 1 < p->len) p->pos++;
}

static const char* describe(const tmpl_token* t) {
  switch (t->kind) {
    case TK_TEXT: return "template data";
    case TK_VAR_BEGIN: return "'{{'";
    case TK_VAR_END: return "'}}'";
    case TK_BLOCK_BEGIN: return "'{%'";
    case TK_BLOCK_END: return "'%}'";
    case TK_NAME: return t->text;
    case TK_STRING: return "string";
    case TK_INT: return "integer";
    case TK_FLOAT: return "float";
    case TK_OP: return t->text;
    case TK_EOF: return "end of template";
  }
  return "token";
}

static _Noreturn void fail_at(parser* p, const tmpl_token* t, const char* what) {
  tmpl_fail(p->arena, t->line, t->col, "%s (found '%s')", what, describe(t));
}

static bool is_op(parser* p, const char* op) { return cur(p)->kind == TK_OP && !strcmp(cur(p)->text, op); }
static bool is_name(parser* p, const char* name) { return cur(p)->kind == TK_NAME && !strcmp(cur(p)->text, name); }
static bool accept_op(parser* p, const char* op) {
  if (!is_op(p, op)) return false;
  advance(p);
  return true;
}
static bool accept_name(parser* p, const char* name) {
  if (!is_name(p, name)) return false;
  advance(p);
  return true;
}
static void expect_op(parser* p, const char* op) {
  if (!accept_op(p, op)) {
    char msg[64];
    snprintf(msg, sizeof msg, "expected '%s'", op);
    fail_at(p, cur(p), msg);
  }
}
static const char* expect_name(parser* p) {
  if (cur(p)->kind != TK_NAME) fail_at(p, cur(p), "expected a name");
  const char* n = cur(p)->text;
  advance(p);
  return n;
}
static void expect_block_end(parser* p) {
  if (cur(p)->kind != TK_BLOCK_END) fail_at(p, cur(p), "expected end of statement '%}'");
  advance(p);
}

static ast_node* new_node(parser* p, ast_kind kind, const tmpl_token* at) {
  ast_node* n = tmpl_alloc(p->arena, sizeof *n);
  n->kind = kind;
  n->line = at->line;
  n->col = at->col;
  return n;
}

static void vec_push(parser* p, node_vec* v, ast_node* n) {
  if (v->len == v->cap) {
    size_t cap = v->cap ? v->cap * 2 : 4;
    ast_node** items = tmpl_alloc(p->arena, cap * sizeof(ast_node*));
    if (v->len) memcpy(items, v->items, v->len * sizeof(ast_node*));
    v->items = items;
    v->cap = cap;
  }
  v->items[v->len++] = n;
}
static ast_list vec_list(node_vec v) { return (ast_list){v.len, v.items}; }

static void enter(parser* p) {
  if (++p->nesting > MAX_NESTING) fail_at(p, cur(p), "template nested too deeply");
}
static void leave(parser* p) { p->nesting--; }

static ast_node* parse_expression(parser* p, bool with_condexpr);
static ast_node* parse_tuple(parser* p, bool simplified, bool with_condexpr, const char* extra_end, bool explicit_parens);
static ast_node* parse_unary(parser* p, bool with_filter);
static ast_node* parse_primary(parser* p);
static ast_node* parse_postfix(parser* p, ast_node* node);
static ast_node* parse_filter_expr(parser* p, ast_node* node);

/* Call arguments after '(' : positional, name=value. */
static void parse_call_args(parser* p, ast_node* call) {
  node_vec args = {0}, kwargs = {0};
  const char** names = NULL;
  size_t names_cap = 0;
  expect_op(p, "(");
  while (!is_op(p, ")")) {
    if (args.len || kwargs.len) {
      expect_op(p, ",");
      if (is_op(p, ")")) break;
    }
    if (is_op(p, "*") || is_op(p, "**")) fail_at(p, cur(p), "*args and **kwargs in calls are not supported");
    if (cur(p)->kind == TK_NAME && peek(p, 1)->kind == TK_OP && !strcmp(peek(p, 1)->text, "=")) {
      const char* key = cur(p)->text;
      advance(p);
      advance(p);
      if (kwargs.len == names_cap) {
        size_t cap = names_cap ? names_cap * 2 : 4;
        const char** grown = tmpl_alloc(p->arena, cap * sizeof(char*));
        if (kwargs.len) memcpy(grown, names, kwargs.len * sizeof(char*));
        names = grown;
        names_cap = cap;
      }
      names[kwargs.len] = key;
      vec_push(p, &kwargs, parse_expression(p, true));
    } else {
      if (kwargs.len) fail_at(p, cur(p), "positional argument after keyword argument");
      vec_push(p, &args, parse_expression(p, true));
    }
  }
  expect_op(p, ")");
  call->list = vec_list(args);
  call->list2 = vec_list(kwargs);
  call->kw_names = names;
}

/* A call is reported at its callee's position (where "raise_exception" starts, say). */
static ast_node* parse_call(parser* p, ast_node* callee) {
  ast_node* c = new_node(p, N_CALL, cur(p));
  c->line = callee->line;
  c->col = callee->col;
  c->a = callee;
  parse_call_args(p, c);
  return c;
}

static const char* parse_dotted_name(parser* p) {
  const char* name = expect_name(p);
  while (is_op(p, ".") && peek(p, 1)->kind == TK_NAME) {
    advance(p);
    const char* part = expect_name(p);
    size_t a = strlen(name), b = strlen(part);
    char* joined = tmpl_alloc(p->arena, a + b + 2);
    memcpy(joined, name, a);
    joined[a] = '.';
    memcpy(joined + a + 1, part, b + 1);
    name = joined;
  }
  return name;
}

static ast_node* parse_filter(parser* p, ast_node* node, bool start_inline) {
  while (is_op(p, "|") || start_inline) {
    if (!start_inline) advance(p);
    start_inline = false;
    tmpl_token* at = cur(p);
    ast_node* f = new_node(p, N_FILTER, at);
    f->name = parse_dotted_name(p);
    if (is_op(p, "(")) parse_call_args(p, f);
    f->a = node;
    node = f;
  }
  return node;
}

static ast_node* parse_test(parser* p, ast_node* node) {
  tmpl_token* at = cur(p);
  advance(p); /* 'is' */
  ast_node* t = new_node(p, N_TEST, at);
  t->op = accept_name(p, "not");
  t->name = parse_dotted_name(p);
  t->a = node;
  tmpl_token* c = cur(p);
  if (is_op(p, "(")) {
    parse_call_args(p, t);
  } else if ((c->kind == TK_NAME || c->kind == TK_STRING || c->kind == TK_INT || c->kind == TK_FLOAT || is_op(p, "[") ||
              is_op(p, "{")) &&
             !is_name(p, "else") && !is_name(p, "or") && !is_name(p, "and")) {
    if (is_name(p, "is")) fail_at(p, c, "you cannot chain multiple tests with is");
    ast_node* arg = parse_postfix(p, parse_primary(p));
    ast_node** items = tmpl_alloc(p->arena, sizeof(ast_node*));
    items[0] = arg;
    t->list = (ast_list){1, items};
  }
  return t;
}

static ast_node* parse_subscribed(parser* p) {
  tmpl_token* at = cur(p);
  ast_node* parts[3] = {NULL, NULL, NULL};
  if (is_op(p, ":")) {
    advance(p);
  } else {
    ast_node* e = parse_expression(p, true);
    if (!is_op(p, ":")) return e;
    advance(p);
    parts[0] = e;
  }
  if (!is_op(p, "]") && !is_op(p, ",") && !is_op(p, ":")) parts[1] = parse_expression(p, true);
  if (accept_op(p, ":") && !is_op(p, "]") && !is_op(p, ",")) parts[2] = parse_expression(p, true);
  ast_node* s = new_node(p, N_SLICE, at);
  s->a = parts[0];
  s->b = parts[1];
  s->c = parts[2];
  return s;
}

static ast_node* parse_postfix(parser* p, ast_node* node) {
  for (;;) {
    tmpl_token* at = cur(p);
    if (is_op(p, ".")) {
      advance(p);
      tmpl_token* t = cur(p);
      if (t->kind == TK_NAME) {
        ast_node* g = new_node(p, N_GETATTR, at);
        g->a = node;
        g->name = t->text;
        advance(p);
        node = g;
      } else if (t->kind == TK_INT) {
        ast_node* g = new_node(p, N_GETITEM, at);
        g->a = node;
        g->b = new_node(p, N_LITERAL, t);
        g->b->literal = t->value;
        advance(p);
        node = g;
      } else {
        fail_at(p, t, "expected name or number after '.'");
      }
    } else if (is_op(p, "[")) {
      advance(p);
      node_vec idx = {0};
      while (!is_op(p, "]")) {
        if (idx.len) {
          expect_op(p, ",");
          if (is_op(p, "]")) break;
        }
        vec_push(p, &idx, parse_subscribed(p));
      }
      expect_op(p, "]");
      if (idx.len == 0) fail_at(p, at, "expected a subscript");
      ast_node* g = new_node(p, N_GETITEM, at);
      g->a = node;
      if (idx.len == 1) {
        g->b = idx.items[0];
      } else {
        g->b = new_node(p, N_TUPLE, at);
        g->b->list = vec_list(idx);
      }
      node = g;
    } else if (is_op(p, "(")) {
      node = parse_call(p, node);
    } else {
      return node;
    }
  }
}

static ast_node* parse_filter_expr(parser* p, ast_node* node) {
  for (;;) {
    if (is_op(p, "|")) {
      node = parse_filter(p, node, false);
    } else if (is_name(p, "is")) {
      node = parse_test(p, node);
    } else if (is_op(p, "(")) {
      node = parse_call(p, node);
    } else {
      return node;
    }
  }
}

static ast_node* parse_primary(parser* p) {
  tmpl_token* t = cur(p);
  ast_node* n;
  enter(p);
  switch (t->kind) {
    case TK_NAME:
      n = new_node(p, N_LITERAL, t);
      if (!strcmp(t->text, "true") || !strcmp(t->text, "True")) {
        n->literal = tv_bool(true);
      } else if (!strcmp(t->text, "false") || !strcmp(t->text, "False")) {
        n->literal = tv_bool(false);
      } else if (!strcmp(t->text, "none") || !strcmp(t->text, "None")) {
        n->literal = tv_none();
      } else {
        n->kind = N_NAME;
        n->name = t->text;
      }
      advance(p);
      break;
    case TK_STRING: {
      n = new_node(p, N_LITERAL, t);
      tmpl_buf buf;
      tmpl_buf_init(&buf, p->arena, 0);
      while (cur(p)->kind == TK_STRING) {
        tmpl_string* s = cur(p)->value.as.string;
        tmpl_buf_append(&buf, s->data, s->len);
        advance(p);
      }
      n->literal = tv_string(p->arena, buf.data ? buf.data : "", buf.len);
      break;
    }
    case TK_INT:
    case TK_FLOAT:
      n = new_node(p, N_LITERAL, t);
      n->literal = t->value;
      advance(p);
      break;
    case TK_OP:
      if (!strcmp(t->text, "(")) {
        advance(p);
        n = parse_tuple(p, false, true, NULL, true);
        expect_op(p, ")");
        break;
      }
      if (!strcmp(t->text, "[")) {
        advance(p);
        node_vec items = {0};
        while (!is_op(p, "]")) {
          if (items.len) {
            expect_op(p, ",");
            if (is_op(p, "]")) break;
          }
          vec_push(p, &items, parse_expression(p, true));
        }
        expect_op(p, "]");
        n = new_node(p, N_LIST, t);
        n->list = vec_list(items);
        break;
      }
      if (!strcmp(t->text, "{")) {
        advance(p);
        node_vec keys = {0}, values = {0};
        while (!is_op(p, "}")) {
          if (keys.len) {
            expect_op(p, ",");
            if (is_op(p, "}")) break;
          }
          vec_push(p, &keys, parse_expression(p, true));
          expect_op(p, ":");
          vec_push(p, &values, parse_expression(p, true));
        }
        expect_op(p, "}");
        n = new_node(p, N_DICT, t);
        n->list = vec_list(keys);
        n->list2 = vec_list(values);
        break;
      }
      fail_at(p, t, "unexpected token in expression");
    default: fail_at(p, t, "unexpected token in expression");
  }
  leave(p);
  return n;
}

static ast_node* parse_unary(parser* p, bool with_filter) {
  tmpl_token* at = cur(p);
  ast_node* node;
  enter(p);
  if (is_op(p, "-") || is_op(p, "+")) {
    int op = is_op(p, "-") ? OP_NEG : OP_POS;
    advance(p);
    node = new_node(p, N_UNARY, at);
    node->op = op;
    node->a = parse_unary(p, false);
  } else {
    node = parse_primary(p);
  }
  node = parse_postfix(p, node);
  if (with_filter) node = parse_filter_expr(p, node);
  leave(p);
  return node;
}

static ast_node* binary(parser* p, tmpl_token* at, int op, ast_node* a, ast_node* b) {
  ast_node* n = new_node(p, N_BINARY, at);
  n->op = op;
  n->a = a;
  n->b = b;
  return n;
}

static ast_node* parse_pow(parser* p) {
  ast_node* left = parse_unary(p, true);
  while (is_op(p, "**")) {
    tmpl_token* at = cur(p);
    advance(p);
    left = binary(p, at, OP_POW, left, parse_unary(p, true));
  }
  return left;
}

static ast_node* parse_math2(parser* p) {
  ast_node* left = parse_pow(p);
  for (;;) {
    tmpl_token* at = cur(p);
    int op = is_op(p, "*") ? OP_MUL : is_op(p, "/") ? OP_DIV : is_op(p, "//") ? OP_FLOORDIV : is_op(p, "%") ? OP_MOD : 0;
    if (!op) return left;
    advance(p);
    left = binary(p, at, op, left, parse_pow(p));
  }
}

static ast_node* parse_concat(parser* p) {
  tmpl_token* at = cur(p);
  ast_node* first = parse_math2(p);
  if (!is_op(p, "~")) return first;
  node_vec parts = {0};
  vec_push(p, &parts, first);
  while (accept_op(p, "~")) vec_push(p, &parts, parse_math2(p));
  ast_node* n = new_node(p, N_CONCAT, at);
  n->list = vec_list(parts);
  return n;
}

static ast_node* parse_math1(parser* p) {
  ast_node* left = parse_concat(p);
  for (;;) {
    tmpl_token* at = cur(p);
    int op = is_op(p, "+") ? OP_ADD : is_op(p, "-") ? OP_SUB : 0;
    if (!op) return left;
    advance(p);
    left = binary(p, at, op, left, parse_concat(p));
  }
}

static ast_node* parse_compare(parser* p) {
  tmpl_token* at = cur(p);
  ast_node* expr = parse_math1(p);
  node_vec operands = {0};
  int ops[64];
  for (;;) {
    int op = is_op(p, "==") ? OP_EQ : is_op(p, "!=") ? OP_NE : is_op(p, "<") ? OP_LT : is_op(p, "<=") ? OP_LE
           : is_op(p, ">") ? OP_GT : is_op(p, ">=") ? OP_GE : 0;
    if (op) {
      advance(p);
    } else if (is_name(p, "in")) {
      advance(p);
      op = OP_IN;
    } else if (is_name(p, "not") && peek(p, 1)->kind == TK_NAME && !strcmp(peek(p, 1)->text, "in")) {
      advance(p);
      advance(p);
      op = OP_NOTIN;
    } else {
      break;
    }
    if (operands.len == 64) fail_at(p, cur(p), "too many chained comparisons");
    ops[operands.len] = op;
    vec_push(p, &operands, parse_math1(p));
  }
  if (!operands.len) return expr;
  ast_node* n = new_node(p, N_COMPARE, at);
  n->a = expr;
  n->list = vec_list(operands);
  n->ops = tmpl_alloc(p->arena, operands.len * sizeof(int));
  memcpy(n->ops, ops, operands.len * sizeof(int));
  return n;
}

static ast_node* parse_not(parser* p) {
  if (is_name(p, "not")) {
    tmpl_token* at = cur(p);
    advance(p);
    enter(p);
    ast_node* n = new_node(p, N_NOT, at);
    n->a = parse_not(p);
    leave(p);
    return n;
  }
  return parse_compare(p);
}

static ast_node* parse_and(parser* p) {
  ast_node* left = parse_not(p);
  while (is_name(p, "and")) {
    tmpl_token* at = cur(p);
    advance(p);
    ast_node* n = new_node(p, N_AND, at);
    n->a = left;
    n->b = parse_not(p);
    left = n;
  }
  return left;
}

static ast_node* parse_or(parser* p) {
  ast_node* left = parse_and(p);
  while (is_name(p, "or")) {
    tmpl_token* at = cur(p);
    advance(p);
    ast_node* n = new_node(p, N_OR, at);
    n->a = left;
    n->b = parse_and(p);
    left = n;
  }
  return left;
}

static ast_node* parse_condexpr(parser* p) {
  ast_node* expr1 = parse_or(p);
  while (is_name(p, "if")) {
    tmpl_token* at = cur(p);
    advance(p);
    enter(p);
    ast_node* n = new_node(p, N_CONDEXPR, at);
    n->a = parse_or(p);
    n->b = expr1;
    if (accept_name(p, "else")) n->c = parse_condexpr(p);
    leave(p);
    expr1 = n;
  }
  return expr1;
}

static ast_node* parse_expression(parser* p, bool with_condexpr) {
  enter(p);
  ast_node* n = with_condexpr ? parse_condexpr(p) : parse_or(p);
  leave(p);
  return n;
}

static bool is_tuple_end(parser* p, const char* extra_end) {
  tmpl_token* t = cur(p);
  if (t->kind == TK_VAR_END || t->kind == TK_BLOCK_END || t->kind == TK_EOF || is_op(p, ")")) return true;
  return extra_end && is_name(p, extra_end);
}

static ast_node* parse_tuple(parser* p, bool simplified, bool with_condexpr, const char* extra_end, bool explicit_parens) {
  tmpl_token* at = cur(p);
  node_vec items = {0};
  bool is_tuple = false;
  for (;;) {
    if (items.len) expect_op(p, ",");
    if (is_tuple_end(p, extra_end)) break;
    vec_push(p, &items, simplified ? parse_primary(p) : parse_expression(p, with_condexpr));
    if (is_op(p, ","))
      is_tuple = true;
    else
      break;
  }
  if (!is_tuple) {
    if (items.len) return items.items[0];
    if (!explicit_parens) fail_at(p, cur(p), "expected an expression");
  }
  ast_node* n = new_node(p, N_TUPLE, at);
  n->list = vec_list(items);
  return n;
}

/* Assignment targets: a name, a tuple of names, or (for set) namespace.attr. */
static ast_node* parse_assign_target(parser* p, bool with_namespace, const char* extra_end) {
  tmpl_token* at = cur(p);
  if (with_namespace && at->kind == TK_NAME && peek(p, 1)->kind == TK_OP && !strcmp(peek(p, 1)->text, ".")) {
    ast_node* ns = new_node(p, N_NAME, at);
    ns->name = expect_name(p);
    advance(p);
    ast_node* g = new_node(p, N_GETATTR, at);
    g->a = ns;
    g->name = expect_name(p);
    return g;
  }
  ast_node* target = parse_tuple(p, true, true, extra_end, false);
  if (target->kind == N_NAME) return target;
  if (target->kind == N_TUPLE) {
    for (size_t i = 0; i < target->list.len; i++)
      if (target->list.items[i]->kind != N_NAME) fail_at(p, at, "can only assign to names");
    return target;
  }
  fail_at(p, at, "can't assign to this expression");
}

static ast_list parse_body(parser* p, const char* const* end_names);

static bool at_block_named(parser* p, const char* const* names) {
  if (cur(p)->kind != TK_BLOCK_BEGIN) return false;
  tmpl_token* n = peek(p, 1);
  if (n->kind != TK_NAME) return false;
  for (size_t i = 0; names[i]; i++)
    if (!strcmp(n->text, names[i])) return true;
  return false;
}

/* Parses a macro's or call block's parameter list: (a, b=default, ...). */
static void parse_signature(parser* p, ast_node* n) {
  node_vec params = {0}, defaults = {0};
  expect_op(p, "(");
  while (!is_op(p, ")")) {
    if (params.len) expect_op(p, ",");
    tmpl_token* at = cur(p);
    ast_node* param = new_node(p, N_NAME, at);
    param->name = expect_name(p);
    vec_push(p, &params, param);
    if (accept_op(p, "="))
      vec_push(p, &defaults, parse_expression(p, true));
    else if (defaults.len)
      fail_at(p, at, "non-default argument follows default argument");
    else
      vec_push(p, &defaults, NULL);
  }
  expect_op(p, ")");
  n->list = vec_list(params);
  n->list2 = vec_list(defaults);
}

static ast_node* parse_statement(parser* p) {
  tmpl_token* begin = cur(p);
  advance(p); /* '{%' */
  tmpl_token* kw = cur(p);
  if (kw->kind != TK_NAME) fail_at(p, kw, "expected a statement name");
  const char* name = kw->text;
  advance(p);
  enter(p);
  ast_node* n;
  if (!strcmp(name, "if")) {
    n = new_node(p, N_IF, kw);
    ast_node* node = n;
    node->a = parse_tuple(p, false, false, NULL, false);
    expect_block_end(p);
    for (;;) {
      static const char* const ends[] = {"endif", "elif", "else", NULL};
      node->list = parse_body(p, ends);
      advance(p); /* '{%' */
      tmpl_token* which = cur(p);
      advance(p);
      if (!strcmp(which->text, "elif")) {
        ast_node* next = new_node(p, N_IF, which);
        next->a = parse_tuple(p, false, false, NULL, false);
        expect_block_end(p);
        ast_node** items = tmpl_alloc(p->arena, sizeof(ast_node*));
        items[0] = next;
        node->list2 = (ast_list){1, items};
        node = next;
        continue;
      }
      if (!strcmp(which->text, "else")) {
        expect_block_end(p);
        static const char* const endif[] = {"endif", NULL};
        node->list2 = parse_body(p, endif);
        advance(p);
        advance(p);
      }
      expect_block_end(p);
      break;
    }
  } else if (!strcmp(name, "for")) {
    n = new_node(p, N_FOR, kw);
    n->a = parse_assign_target(p, false, "in");
    if (!accept_name(p, "in")) fail_at(p, cur(p), "expected 'in' in for loop");
    n->b = parse_tuple(p, false, false, "recursive", false);
    if (accept_name(p, "if")) n->c = parse_expression(p, true);
    if (is_name(p, "recursive")) fail_at(p, cur(p), "recursive loops are not supported");
    expect_block_end(p);
    static const char* const ends[] = {"endfor", "else", NULL};
    p->loop_depth++;
    n->list = parse_body(p, ends);
    p->loop_depth--;
    advance(p);
    tmpl_token* which = cur(p);
    advance(p);
    if (!strcmp(which->text, "else")) {
      expect_block_end(p);
      static const char* const endfor[] = {"endfor", NULL};
      n->list2 = parse_body(p, endfor);
      advance(p);
      advance(p);
    }
    expect_block_end(p);
  } else if (!strcmp(name, "set")) {
    ast_node* target = parse_assign_target(p, true, NULL);
    if (accept_op(p, "=")) {
      n = new_node(p, N_SET, kw);
      n->a = target;
      n->b = parse_tuple(p, false, true, NULL, false);
      expect_block_end(p);
    } else {
      n = new_node(p, N_SET_BLOCK, kw);
      n->a = target;
      if (is_op(p, "|")) n->b = parse_filter(p, NULL, false);
      expect_block_end(p);
      static const char* const ends[] = {"endset", NULL};
      n->list = parse_body(p, ends);
      advance(p);
      advance(p);
      expect_block_end(p);
    }
  } else if (!strcmp(name, "macro")) {
    n = new_node(p, N_MACRO, kw);
    n->name = expect_name(p);
    parse_signature(p, n);
    expect_block_end(p);
    static const char* const ends[] = {"endmacro", NULL};
    int saved = p->loop_depth;
    p->loop_depth = 0;
    n->list3 = parse_body(p, ends);
    p->loop_depth = saved;
    advance(p);
    advance(p);
    if (cur(p)->kind == TK_NAME) advance(p); /* {% endmacro name %} */
    expect_block_end(p);
  } else if (!strcmp(name, "call")) {
    n = new_node(p, N_CALL_BLOCK, kw);
    if (is_op(p, "(")) parse_signature(p, n);
    n->a = parse_expression(p, true);
    if (n->a->kind != N_CALL) fail_at(p, kw, "expected a call expression after 'call'");
    expect_block_end(p);
    static const char* const ends[] = {"endcall", NULL};
    int saved = p->loop_depth;
    p->loop_depth = 0;
    n->list3 = parse_body(p, ends);
    p->loop_depth = saved;
    advance(p);
    advance(p);
    expect_block_end(p);
  } else if (!strcmp(name, "filter")) {
    n = new_node(p, N_FILTER_BLOCK, kw);
    n->b = parse_filter(p, NULL, true);
    expect_block_end(p);
    static const char* const ends[] = {"endfilter", NULL};
    n->list = parse_body(p, ends);
    advance(p);
    advance(p);
    expect_block_end(p);
  } else if (!strcmp(name, "with")) {
    n = new_node(p, N_WITH, kw);
    node_vec targets = {0}, values = {0};
    while (cur(p)->kind != TK_BLOCK_END) {
      if (targets.len) expect_op(p, ",");
      vec_push(p, &targets, parse_assign_target(p, false, NULL));
      expect_op(p, "=");
      vec_push(p, &values, parse_expression(p, true));
    }
    expect_block_end(p);
    n->list = vec_list(targets);
    n->list2 = vec_list(values);
    static const char* const ends[] = {"endwith", NULL};
    n->list3 = parse_body(p, ends);
    advance(p);
    advance(p);
    expect_block_end(p);
  } else if (!strcmp(name, "generation")) {
    /* transformers' AssistantTracker extension: renders its body unchanged. */
    n = new_node(p, N_WITH, kw);
    expect_block_end(p);
    static const char* const ends[] = {"endgeneration", NULL};
    n->list3 = parse_body(p, ends);
    advance(p);
    advance(p);
    expect_block_end(p);
  } else if (!strcmp(name, "break") || !strcmp(name, "continue")) {
    if (!p->loop_depth) fail_at(p, kw, "break and continue are only allowed inside a for loop");
    n = new_node(p, name[0] == 'b' ? N_BREAK : N_CONTINUE, kw);
    expect_block_end(p);
  } else {
    (void)begin;
    char msg[96];
    snprintf(msg, sizeof msg, "unknown or unsupported statement '%.40s'", name);
    tmpl_fail(p->arena, kw->line, kw->col, "%s", msg);
  }
  leave(p);
  return n;
}

/* Statements until EOF (end_names NULL) or a block whose name is in end_names (left unconsumed). */
static ast_list parse_body(parser* p, const char* const* end_names) {
  node_vec body = {0};
  for (;;) {
    tmpl_token* t = cur(p);
    if (t->kind == TK_EOF) {
      if (end_names) {
        char msg[96];
        snprintf(msg, sizeof msg, "unexpected end of template, expected '%s'", end_names[0]);
        tmpl_fail(p->arena, t->line, t->col, "%s", msg);
      }
      break;
    }
    if (t->kind == TK_TEXT) {
      ast_node* n = new_node(p, N_TEXT, t);
      n->literal = t->value;
      vec_push(p, &body, n);
      advance(p);
    } else if (t->kind == TK_VAR_BEGIN) {
      advance(p);
      ast_node* n = new_node(p, N_OUTPUT, t);
      n->a = parse_tuple(p, false, true, NULL, false);
      if (cur(p)->kind != TK_VAR_END) fail_at(p, cur(p), "expected end of print statement '}}'");
      advance(p);
      vec_push(p, &body, n);
    } else if (t->kind == TK_BLOCK_BEGIN) {
      if (end_names && at_block_named(p, end_names)) break;
      tmpl_token* kw = peek(p, 1);
      if (kw->kind == TK_NAME && (!strncmp(kw->text, "end", 3) || !strcmp(kw->text, "else") || !strcmp(kw->text, "elif")))
        fail_at(p, kw, "unexpected block tag");
      vec_push(p, &body, parse_statement(p));
    } else {
      fail_at(p, t, "unexpected token");
    }
  }
  return vec_list(body);
}

ast_list tmpl_parse(tmpl_arena* arena, tmpl_tokens tokens) {
  parser p = {.arena = arena, .tokens = tokens.items, .len = tokens.len};
  return parse_body(&p, NULL);
}
