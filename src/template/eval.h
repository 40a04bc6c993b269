/* The evaluator's state and the interface filters, tests, methods and globals are written against. */
#ifndef MLXC_TEMPLATE_EVAL_H
#define MLXC_TEMPLATE_EVAL_H

#include "template/ast.h"

typedef struct tmpl_interp tmpl_interp;

/* Arguments of a call: positional, then keyword arguments by name. */
typedef struct {
  size_t n_pos;
  tmpl_value* pos;
  size_t n_kw;
  const char** kw_names;
  tmpl_value* kw;
} tmpl_args;

/* A builtin function, filter, test or method; `self` is the receiver or the filtered value. */
typedef tmpl_value (*tmpl_builtin_fn)(tmpl_interp* in, tmpl_value self, const tmpl_args* args);

typedef enum { CALL_BUILTIN, CALL_MACRO, CALL_UNSAFE } tmpl_callable_kind;

typedef struct tmpl_frame tmpl_frame;

struct tmpl_callable {
  tmpl_callable_kind kind;
  const char* name;
  tmpl_builtin_fn fn;       /* CALL_BUILTIN */
  tmpl_value self;          /* bound receiver (methods); CALL_UNSAFE: the object */
  const ast_node* macro;    /* CALL_MACRO: N_MACRO or N_CALL_BLOCK */
  tmpl_frame* closure;      /* CALL_MACRO: the defining scope */
  tmpl_value caller;        /* CALL_MACRO made for a call block: its caller() */
};

struct tmpl_frame {
  tmpl_frame* parent;
  size_t len, cap;
  const char** names;
  tmpl_value* values;
};

typedef struct {
  size_t max_steps;
  size_t max_output_bytes;
  int max_depth;
} tmpl_eval_limits;

struct tmpl_interp {
  tmpl_arena* arena;
  tmpl_eval_limits limits;
  size_t steps;
  int depth;
  int line, col;     /* position of the node being evaluated, for errors */
  tmpl_frame* globals;
  tmpl_buf* out;     /* current output (macro calls and blocks capture into their own) */
};

/* Fails at the current node's position. */
_Noreturn void tmpl_error(tmpl_interp* in, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

/* Renders a parsed body with `context` (a dict of variables) into out. */
void tmpl_eval_render(tmpl_interp* in, ast_list body, tmpl_dict* context, tmpl_buf* out);

/* Calls a callable value (macro, builtin). */
tmpl_value tmpl_call(tmpl_interp* in, tmpl_value fn, const tmpl_args* args);
/* Jinja2's environment.getattr / getitem (with sandbox rules). */
tmpl_value tmpl_getattr(tmpl_interp* in, tmpl_value obj, const char* name);
tmpl_value tmpl_getitem(tmpl_interp* in, tmpl_value obj, tmpl_value key);
/* Argument i by position or by name, or `fallback` when absent. */
tmpl_value tmpl_arg(const tmpl_args* args, size_t index, const char* name, tmpl_value fallback);
/* Materialises an iterable (list, tuple, dict keys, string characters); undefined gives []. */
tmpl_list* tmpl_iterate(tmpl_interp* in, tmpl_value v);
/* Python ordering for sort/min/max/comparisons: <0, 0, >0; fails on unorderable types. */
int tmpl_compare(tmpl_interp* in, tmpl_value a, tmpl_value b);
/* Fails with "'name' is undefined" when v is undefined. */
void tmpl_require_defined(tmpl_interp* in, tmpl_value v);
/* Attribute path "a.b.0" as Jinja2's make_attrgetter resolves it. */
tmpl_value tmpl_get_path(tmpl_interp* in, tmpl_value obj, const char* path);
tmpl_value tmpl_make_builtin(tmpl_interp* in, const char* name, tmpl_builtin_fn fn, tmpl_value self);

/* Lookup tables (filters.c, tests.c, methods.c, globals in eval.c). */
tmpl_builtin_fn tmpl_find_filter(const char* name);
tmpl_builtin_fn tmpl_find_test(const char* name);
/* A method of str/list/dict by name; *unsafe set for mutating methods the sandbox forbids. */
tmpl_builtin_fn tmpl_find_method(tmpl_value obj, const char* name, bool* unsafe);
/* Runs a named test (used by select/reject and `is`). */
bool tmpl_run_test(tmpl_interp* in, const char* name, tmpl_value v, const tmpl_args* args);

/* Python string formatting: fmt % values (values a tuple or one value). */
tmpl_value tmpl_percent_format(tmpl_interp* in, tmpl_string* fmt, tmpl_value values);

#endif
