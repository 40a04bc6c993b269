/* Tree-walking evaluator: scopes as Jinja2 compiles them (a fresh scope per loop iteration and per
 * macro call), Python operators, attribute/item lookup with the sandbox's rules, macros, call and
 * filter blocks, and the globals transformers provides. Steps, depth and output are bounded. */
#include "template/eval.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_RANGE 100000 /* Jinja2's sandbox refuses larger ranges */

typedef enum { FLOW_NORMAL, FLOW_BREAK, FLOW_CONTINUE } flow;

void tmpl_error(tmpl_interp* in, const char* fmt, ...) {
  char msg[400];
  va_list args;
  va_start(args, fmt);
  vsnprintf(msg, sizeof msg, fmt, args);
  va_end(args);
  tmpl_fail(in->arena, in->line, in->col, "%s", msg);
}

static void step(tmpl_interp* in, const ast_node* node) {
  in->line = node->line;
  in->col = node->col;
  if (in->limits.max_steps && ++in->steps > in->limits.max_steps)
    tmpl_error(in, "evaluation step limit exceeded (%zu steps)", in->limits.max_steps);
}

static void enter(tmpl_interp* in) {
  if (++in->depth > in->limits.max_depth) tmpl_error(in, "recursion depth limit exceeded (%d)", in->limits.max_depth);
}

/* ---- scopes ---- */

static tmpl_frame* frame_new(tmpl_interp* in, tmpl_frame* parent) {
  tmpl_frame* f = tmpl_alloc(in->arena, sizeof *f);
  f->parent = parent;
  return f;
}

static void frame_set(tmpl_interp* in, tmpl_frame* f, const char* name, tmpl_value v) {
  for (size_t i = 0; i < f->len; i++)
    if (!strcmp(f->names[i], name)) {
      f->values[i] = v;
      return;
    }
  if (f->len == f->cap) {
    size_t cap = f->cap ? f->cap * 2 : 8;
    const char** names = tmpl_alloc(in->arena, cap * sizeof(char*));
    tmpl_value* values = tmpl_alloc(in->arena, cap * sizeof(tmpl_value));
    if (f->len) {
      memcpy(names, f->names, f->len * sizeof(char*));
      memcpy(values, f->values, f->len * sizeof(tmpl_value));
    }
    f->names = names;
    f->values = values;
    f->cap = cap;
  }
  f->names[f->len] = name;
  f->values[f->len] = v;
  f->len++;
}

static bool frame_lookup(const tmpl_frame* f, const char* name, tmpl_value* out) {
  for (; f; f = f->parent)
    for (size_t i = f->len; i > 0; i--)
      if (!strcmp(f->names[i - 1], name)) {
        *out = f->values[i - 1];
        return true;
      }
  return false;
}

/* ---- helpers shared with filters and methods ---- */

static tmpl_value undefined_msg(tmpl_interp* in, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
static tmpl_value undefined_msg(tmpl_interp* in, const char* fmt, ...) {
  char msg[256];
  va_list args;
  va_start(args, fmt);
  vsnprintf(msg, sizeof msg, fmt, args);
  va_end(args);
  return tv_undefined(tmpl_strndup(in->arena, msg, strlen(msg)));
}

void tmpl_require_defined(tmpl_interp* in, tmpl_value v) {
  if (v.type == TV_UNDEFINED) tmpl_error(in, "%s", v.as.undefined_name ? v.as.undefined_name : "value is undefined");
}

tmpl_value tmpl_arg(const tmpl_args* args, size_t index, const char* name, tmpl_value fallback) {
  if (index < args->n_pos) return args->pos[index];
  if (name)
    for (size_t i = 0; i < args->n_kw; i++)
      if (!strcmp(args->kw_names[i], name)) return args->kw[i];
  return fallback;
}

tmpl_value tmpl_make_builtin(tmpl_interp* in, const char* name, tmpl_builtin_fn fn, tmpl_value self) {
  tmpl_callable* c = tmpl_alloc(in->arena, sizeof *c);
  c->kind = CALL_BUILTIN;
  c->name = name;
  c->fn = fn;
  c->self = self;
  tmpl_value v = {.type = TV_CALLABLE};
  v.as.callable = c;
  return v;
}

static const char* object_name(tmpl_value v) {
  switch (v.type) {
    case TV_DICT: return v.as.dict->kind == DICT_PLAIN ? "dict object" : "object";
    case TV_LIST: return v.as.list->is_tuple ? "tuple object" : "list object";
    case TV_STRING: return "str object";
    case TV_INT: return "int object";
    case TV_FLOAT: return "float object";
    case TV_BOOL: return "bool object";
    case TV_NONE: return "None";
    default: return "object";
  }
}

tmpl_list* tmpl_iterate(tmpl_interp* in, tmpl_value v) {
  switch (v.type) {
    case TV_UNDEFINED: return tv_list(in->arena, 0).as.list;
    case TV_LIST: return v.as.list;
    case TV_DICT: {
      if (v.as.dict->kind != DICT_PLAIN) break;
      tmpl_list* keys = tv_list(in->arena, v.as.dict->len).as.list;
      for (size_t i = 0; i < v.as.dict->len; i++) keys->items[keys->len++] = v.as.dict->keys[i];
      return keys;
    }
    case TV_STRING: {
      tmpl_string* s = v.as.string;
      tmpl_list* chars = tv_list(in->arena, s->len).as.list;
      size_t pos = 0;
      while (pos < s->len) {
        size_t start = pos;
        tmpl_utf8_next(s->data, s->len, &pos);
        chars->items[chars->len++] = tv_string(in->arena, s->data + start, pos - start);
      }
      return chars;
    }
    default: break;
  }
  tmpl_error(in, "'%s' object is not iterable", tmpl_type_name(v));
}

int tmpl_compare(tmpl_interp* in, tmpl_value a, tmpl_value b) {
  if (tmpl_is_number(a) && tmpl_is_number(b)) {
    if (a.type != TV_FLOAT && b.type != TV_FLOAT) {
      int64_t x = a.type == TV_BOOL ? a.as.boolean : a.as.integer;
      int64_t y = b.type == TV_BOOL ? b.as.boolean : b.as.integer;
      return (x > y) - (x < y);
    }
    double x = tmpl_as_double(a), y = tmpl_as_double(b);
    return (x > y) - (x < y);
  }
  if (a.type == TV_STRING && b.type == TV_STRING) {
    size_t n = a.as.string->len < b.as.string->len ? a.as.string->len : b.as.string->len;
    int c = memcmp(a.as.string->data, b.as.string->data, n);
    if (c) return c < 0 ? -1 : 1;
    return (a.as.string->len > b.as.string->len) - (a.as.string->len < b.as.string->len);
  }
  if (a.type == TV_LIST && b.type == TV_LIST && a.as.list->is_tuple == b.as.list->is_tuple) {
    size_t n = a.as.list->len < b.as.list->len ? a.as.list->len : b.as.list->len;
    for (size_t i = 0; i < n; i++) {
      if (tmpl_equal(a.as.list->items[i], b.as.list->items[i])) continue;
      return tmpl_compare(in, a.as.list->items[i], b.as.list->items[i]);
    }
    return (a.as.list->len > b.as.list->len) - (a.as.list->len < b.as.list->len);
  }
  tmpl_require_defined(in, a);
  tmpl_require_defined(in, b);
  tmpl_error(in, "'<' not supported between instances of '%s' and '%s'", tmpl_type_name(a), tmpl_type_name(b));
}

/* ---- attribute and item access ---- */

static tmpl_value loop_cycle(tmpl_interp* in, tmpl_value self, const tmpl_args* args) {
  if (!args->n_pos) tmpl_error(in, "no items for cycling given");
  tmpl_value* index0 = tmpl_dict_find_str(self.as.dict, "index0");
  return args->pos[index0->as.integer % (int64_t)args->n_pos];
}

tmpl_value tmpl_getattr(tmpl_interp* in, tmpl_value obj, const char* name) {
  tmpl_require_defined(in, obj);
  if (obj.type == TV_DICT && obj.as.dict->kind != DICT_PLAIN) {
    tmpl_value* v = tmpl_dict_find_str(obj.as.dict, name);
    if (v) return *v;
    if (obj.as.dict->kind == DICT_LOOP && !strcmp(name, "cycle")) return tmpl_make_builtin(in, "cycle", loop_cycle, obj);
    return undefined_msg(in, "'%s' has no attribute '%s'", tmpl_type_name(obj), name);
  }
  bool unsafe = false;
  tmpl_builtin_fn method = tmpl_find_method(obj, name, &unsafe);
  if (method) return tmpl_make_builtin(in, name, method, obj);
  if (unsafe) {
    tmpl_value v = tmpl_make_builtin(in, name, NULL, obj);
    v.as.callable->kind = CALL_UNSAFE;
    return v;
  }
  if (obj.type == TV_DICT) {
    tmpl_value* v = tmpl_dict_find_str(obj.as.dict, name);
    if (v) return *v;
  }
  return undefined_msg(in, "'%s' has no attribute '%s'", object_name(obj), name);
}

static tmpl_value index_sequence(tmpl_interp* in, tmpl_value obj, int64_t i) {
  if (obj.type == TV_LIST) {
    int64_t n = (int64_t)obj.as.list->len;
    if (i < 0) i += n;
    if (i < 0 || i >= n) return undefined_msg(in, "%s has no element %" PRId64, object_name(obj), i);
    return obj.as.list->items[i];
  }
  tmpl_string* s = obj.as.string;
  int64_t n = (int64_t)tmpl_utf8_count(s->data, s->len);
  if (i < 0) i += n;
  if (i < 0 || i >= n) return undefined_msg(in, "str object has no element %" PRId64, i);
  size_t start = tmpl_utf8_offset(s->data, s->len, (size_t)i);
  size_t end = start;
  tmpl_utf8_next(s->data, s->len, &end);
  return tv_string(in->arena, s->data + start, end - start);
}

tmpl_value tmpl_getitem(tmpl_interp* in, tmpl_value obj, tmpl_value key) {
  tmpl_require_defined(in, obj);
  if (obj.type == TV_DICT) {
    if (obj.as.dict->kind == DICT_PLAIN) {
      tmpl_value* v = tmpl_dict_find(obj.as.dict, key);
      if (v) return *v;
    }
    if (key.type == TV_STRING) return tmpl_getattr(in, obj, key.as.string->data);
    return undefined_msg(in, "'dict object' has no attribute '%s'", tmpl_to_string(in->arena, key)->data);
  }
  if ((obj.type == TV_LIST || obj.type == TV_STRING) && (key.type == TV_INT || key.type == TV_BOOL))
    return index_sequence(in, obj, key.type == TV_BOOL ? key.as.boolean : key.as.integer);
  if (key.type == TV_STRING) return tmpl_getattr(in, obj, key.as.string->data);
  return undefined_msg(in, "'%s' has no item", object_name(obj));
}

tmpl_value tmpl_get_path(tmpl_interp* in, tmpl_value obj, const char* path) {
  const char* p = path;
  while (*p) {
    const char* dot = strchr(p, '.');
    size_t n = dot ? (size_t)(dot - p) : strlen(p);
    char* part = tmpl_strndup(in->arena, p, n);
    char* end;
    long long idx = strtoll(part, &end, 10);
    if (n && *end == '\0')
      obj = tmpl_getitem(in, obj, tv_int(idx));
    else
      obj = tmpl_getitem(in, obj, tv_string(in->arena, part, n));
    if (!dot) break;
    p = dot + 1;
  }
  return obj;
}

/* Python slice semantics on lists, tuples and strings (by code point). */
static tmpl_value slice_value(tmpl_interp* in, tmpl_value obj, tmpl_value start_v, tmpl_value stop_v, tmpl_value step_v) {
  tmpl_require_defined(in, obj);
  int64_t step = 1;
  if (step_v.type != TV_NONE && step_v.type != TV_UNDEFINED) {
    if (step_v.type != TV_INT) tmpl_error(in, "slice indices must be integers or None");
    step = step_v.as.integer;
    if (step == 0) tmpl_error(in, "slice step cannot be zero");
  }
  bool is_string = obj.type == TV_STRING;
  if (!is_string && obj.type != TV_LIST) return undefined_msg(in, "'%s' object is not subscriptable", tmpl_type_name(obj));
  tmpl_list* chars = is_string ? tmpl_iterate(in, obj) : obj.as.list;
  int64_t n = (int64_t)chars->len;
  int64_t bounds[2];
  tmpl_value given[2] = {start_v, stop_v};
  for (int k = 0; k < 2; k++) {
    tmpl_value g = given[k];
    if (g.type == TV_NONE || g.type == TV_UNDEFINED) {
      bounds[k] = step > 0 ? (k == 0 ? 0 : n) : (k == 0 ? n - 1 : -1);
      continue;
    }
    if (g.type != TV_INT && g.type != TV_BOOL) tmpl_error(in, "slice indices must be integers or None");
    int64_t v = g.type == TV_BOOL ? g.as.boolean : g.as.integer;
    if (v < 0) v += n;
    if (step > 0)
      v = v < 0 ? 0 : v > n ? n : v;
    else
      v = v < -1 ? -1 : v > n - 1 ? n - 1 : v;
    bounds[k] = v;
  }
  tmpl_value result = tv_list(in->arena, 0);
  result.as.list->is_tuple = !is_string && obj.as.list->is_tuple;
  for (int64_t i = bounds[0]; step > 0 ? i < bounds[1] : i > bounds[1]; i += step)
    tmpl_list_push(in->arena, result.as.list, chars->items[i]);
  if (!is_string) return result;
  tmpl_buf buf;
  tmpl_buf_init(&buf, in->arena, 0);
  for (size_t i = 0; i < result.as.list->len; i++) tmpl_write_str(&buf, result.as.list->items[i]);
  return tv_string(in->arena, buf.data ? buf.data : "", buf.len);
}

/* ---- operators ---- */

static bool is_integral(tmpl_value v) { return v.type == TV_INT || v.type == TV_BOOL; }
static int64_t as_int(tmpl_value v) { return v.type == TV_BOOL ? v.as.boolean : v.as.integer; }

static const char* op_symbol(int op) {
  static const char* const symbols[] = {"", "+", "-", "*", "/", "//", "%", "**"};
  return op >= OP_ADD && op <= OP_POW ? symbols[op] : "?";
}

static _Noreturn void unsupported(tmpl_interp* in, int op, tmpl_value a, tmpl_value b) {
  tmpl_require_defined(in, a);
  tmpl_require_defined(in, b);
  tmpl_error(in, "unsupported operand type(s) for %s: '%s' and '%s'", op_symbol(op), tmpl_type_name(a),
             tmpl_type_name(b));
}

static tmpl_value repeat(tmpl_interp* in, tmpl_value seq, int64_t times) {
  if (times < 0) times = 0;
  if (seq.type == TV_STRING) {
    size_t len = seq.as.string->len;
    if (len && (uint64_t)times > (in->arena->limit_bytes ? in->arena->limit_bytes : SIZE_MAX) / len)
      tmpl_error(in, "memory limit exceeded by string repetition");
    tmpl_buf buf;
    tmpl_buf_init(&buf, in->arena, 0);
    for (int64_t i = 0; i < times; i++) tmpl_buf_append(&buf, seq.as.string->data, len);
    return tv_string(in->arena, buf.data ? buf.data : "", buf.len);
  }
  tmpl_list* src = seq.as.list;
  if (src->len && (uint64_t)times > (in->arena->limit_bytes ? in->arena->limit_bytes : SIZE_MAX) / (src->len * sizeof(tmpl_value)))
    tmpl_error(in, "memory limit exceeded by list repetition");
  tmpl_value out = tv_list(in->arena, src->len * (size_t)times);
  out.as.list->is_tuple = src->is_tuple;
  for (int64_t i = 0; i < times; i++)
    for (size_t j = 0; j < src->len; j++) out.as.list->items[out.as.list->len++] = src->items[j];
  return out;
}

static tmpl_value int_pow(tmpl_interp* in, int64_t base, int64_t exponent) {
  int64_t result = 1;
  while (exponent > 0) {
    if (exponent & 1) {
      if (__builtin_mul_overflow(result, base, &result)) tmpl_error(in, "integer overflow in **");
    }
    exponent >>= 1;
    if (exponent && __builtin_mul_overflow(base, base, &base)) tmpl_error(in, "integer overflow in **");
  }
  return tv_int(result);
}

static tmpl_value arithmetic(tmpl_interp* in, int op, tmpl_value a, tmpl_value b) {
  bool numbers = tmpl_is_number(a) && tmpl_is_number(b);
  bool ints = is_integral(a) && is_integral(b);
  switch (op) {
    case OP_ADD:
      if (ints) {
        int64_t r;
        if (__builtin_add_overflow(as_int(a), as_int(b), &r)) tmpl_error(in, "integer overflow in +");
        return tv_int(r);
      }
      if (numbers) return tv_float(tmpl_as_double(a) + tmpl_as_double(b));
      if (a.type == TV_STRING && b.type == TV_STRING) {
        tmpl_buf buf;
        tmpl_buf_init(&buf, in->arena, 0);
        tmpl_buf_append(&buf, a.as.string->data, a.as.string->len);
        tmpl_buf_append(&buf, b.as.string->data, b.as.string->len);
        return tv_string(in->arena, buf.data ? buf.data : "", buf.len);
      }
      if (a.type == TV_LIST && b.type == TV_LIST && a.as.list->is_tuple == b.as.list->is_tuple) {
        tmpl_value out = tv_list(in->arena, a.as.list->len + b.as.list->len);
        out.as.list->is_tuple = a.as.list->is_tuple;
        for (size_t i = 0; i < a.as.list->len; i++) out.as.list->items[out.as.list->len++] = a.as.list->items[i];
        for (size_t i = 0; i < b.as.list->len; i++) out.as.list->items[out.as.list->len++] = b.as.list->items[i];
        return out;
      }
      break;
    case OP_SUB:
      if (ints) {
        int64_t r;
        if (__builtin_sub_overflow(as_int(a), as_int(b), &r)) tmpl_error(in, "integer overflow in -");
        return tv_int(r);
      }
      if (numbers) return tv_float(tmpl_as_double(a) - tmpl_as_double(b));
      break;
    case OP_MUL:
      if (ints) {
        int64_t r;
        if (__builtin_mul_overflow(as_int(a), as_int(b), &r)) tmpl_error(in, "integer overflow in *");
        return tv_int(r);
      }
      if (numbers) return tv_float(tmpl_as_double(a) * tmpl_as_double(b));
      if ((a.type == TV_STRING || a.type == TV_LIST) && is_integral(b)) return repeat(in, a, as_int(b));
      if ((b.type == TV_STRING || b.type == TV_LIST) && is_integral(a)) return repeat(in, b, as_int(a));
      break;
    case OP_DIV:
      if (numbers) {
        if (tmpl_as_double(b) == 0.0) tmpl_error(in, "division by zero");
        return tv_float(tmpl_as_double(a) / tmpl_as_double(b));
      }
      break;
    case OP_FLOORDIV:
    case OP_MOD:
      if (ints) {
        int64_t x = as_int(a), y = as_int(b);
        if (y == 0) tmpl_error(in, "integer division or modulo by zero");
        if (x == INT64_MIN && y == -1) tmpl_error(in, "integer overflow");
        int64_t q = x / y, r = x % y;
        if (r != 0 && ((r < 0) != (y < 0))) {
          q -= 1;
          r += y;
        }
        return tv_int(op == OP_FLOORDIV ? q : r);
      }
      if (numbers) {
        double x = tmpl_as_double(a), y = tmpl_as_double(b);
        if (y == 0.0) tmpl_error(in, "float division by zero");
        if (op == OP_FLOORDIV) return tv_float(floor(x / y));
        double r = fmod(x, y);
        if (r != 0.0 && ((r < 0) != (y < 0))) r += y;
        return tv_float(r);
      }
      if (op == OP_MOD && a.type == TV_STRING) return tmpl_percent_format(in, a.as.string, b);
      break;
    case OP_POW:
      if (ints && as_int(b) >= 0) return int_pow(in, as_int(a), as_int(b));
      if (numbers) return tv_float(pow(tmpl_as_double(a), tmpl_as_double(b)));
      break;
    default: break;
  }
  unsupported(in, op, a, b);
}

static bool contains(tmpl_interp* in, tmpl_value container, tmpl_value item) {
  switch (container.type) {
    case TV_UNDEFINED: return false;
    case TV_STRING:
      if (item.type != TV_STRING) tmpl_error(in, "'in <string>' requires string as left operand, not %s", tmpl_type_name(item));
      if (!item.as.string->len) return true;
      return memmem(container.as.string->data, container.as.string->len, item.as.string->data, item.as.string->len) != NULL;
    case TV_LIST:
      for (size_t i = 0; i < container.as.list->len; i++)
        if (tmpl_equal(container.as.list->items[i], item)) return true;
      return false;
    case TV_DICT:
      if (container.as.dict->kind != DICT_PLAIN) break;
      return tmpl_dict_find(container.as.dict, item) != NULL;
    default: break;
  }
  tmpl_error(in, "argument of type '%s' is not iterable", tmpl_type_name(container));
}

static bool compare_op(tmpl_interp* in, int op, tmpl_value a, tmpl_value b) {
  switch (op) {
    case OP_EQ: return tmpl_equal(a, b);
    case OP_NE: return !tmpl_equal(a, b);
    case OP_LT: return tmpl_compare(in, a, b) < 0;
    case OP_LE: return tmpl_compare(in, a, b) <= 0;
    case OP_GT: return tmpl_compare(in, a, b) > 0;
    case OP_GE: return tmpl_compare(in, a, b) >= 0;
    case OP_IN: return contains(in, b, a);
    case OP_NOTIN: return !contains(in, b, a);
    default: return false;
  }
}

/* ---- expressions ---- */

static tmpl_value eval(tmpl_interp* in, const ast_node* n, tmpl_frame* f);
static flow exec_body(tmpl_interp* in, ast_list body, tmpl_frame* f);

static void eval_args(tmpl_interp* in, const ast_node* n, tmpl_frame* f, tmpl_args* args, size_t extra_kw) {
  args->n_pos = n->list.len;
  args->pos = n->list.len ? tmpl_alloc(in->arena, n->list.len * sizeof(tmpl_value)) : NULL;
  for (size_t i = 0; i < n->list.len; i++) args->pos[i] = eval(in, n->list.items[i], f);
  args->n_kw = n->list2.len;
  size_t cap = n->list2.len + extra_kw;
  args->kw = cap ? tmpl_alloc(in->arena, cap * sizeof(tmpl_value)) : NULL;
  args->kw_names = cap ? tmpl_alloc(in->arena, cap * sizeof(char*)) : NULL;
  for (size_t i = 0; i < n->list2.len; i++) {
    args->kw_names[i] = n->kw_names[i];
    args->kw[i] = eval(in, n->list2.items[i], f);
  }
}

static tmpl_value call_macro(tmpl_interp* in, const tmpl_callable* c, const tmpl_args* args) {
  const ast_node* m = c->macro;
  tmpl_frame* f = frame_new(in, c->closure);
  tmpl_value varargs = tv_list(in->arena, 0);
  varargs.as.list->is_tuple = true;
  tmpl_value kwargs = tv_dict(in->arena, DICT_PLAIN);
  tmpl_value caller = c->caller;
  for (size_t i = 0; i < args->n_kw; i++) {
    const char* key = args->kw_names[i];
    bool known = false;
    for (size_t j = 0; j < m->list.len; j++)
      if (!strcmp(m->list.items[j]->name, key)) known = true;
    if (!strcmp(key, "caller") && !known)
      caller = args->kw[i];
    else if (!known)
      tmpl_dict_set_str(in->arena, kwargs.as.dict, key, args->kw[i]);
  }
  for (size_t j = 0; j < m->list.len; j++) {
    const char* pname = m->list.items[j]->name;
    tmpl_value v = tmpl_arg(args, j, pname, tv_undefined(NULL));
    if (v.type == TV_UNDEFINED && !(j < args->n_pos)) {
      bool given = false;
      for (size_t i = 0; i < args->n_kw; i++)
        if (!strcmp(args->kw_names[i], pname)) given = true;
      if (!given) {
        const ast_node* d = m->list2.len > j ? m->list2.items[j] : NULL;
        v = d ? eval(in, d, f) : undefined_msg(in, "'%s' is undefined", pname);
      }
    }
    frame_set(in, f, pname, v);
  }
  for (size_t i = m->list.len; i < args->n_pos; i++) tmpl_list_push(in->arena, varargs.as.list, args->pos[i]);
  frame_set(in, f, "varargs", varargs);
  frame_set(in, f, "kwargs", kwargs);
  if (caller.type != TV_UNDEFINED) frame_set(in, f, "caller", caller);
  tmpl_buf* saved = in->out;
  tmpl_buf capture;
  tmpl_buf_init(&capture, in->arena, in->limits.max_output_bytes);
  in->out = &capture;
  exec_body(in, m->kind == N_MACRO ? m->list3 : m->list3, f);
  in->out = saved;
  return tv_string(in->arena, capture.data ? capture.data : "", capture.len);
}

tmpl_value tmpl_call(tmpl_interp* in, tmpl_value fn, const tmpl_args* args) {
  tmpl_require_defined(in, fn);
  if (fn.type != TV_CALLABLE) tmpl_error(in, "'%s' object is not callable", tmpl_type_name(fn));
  const tmpl_callable* c = fn.as.callable;
  switch (c->kind) {
    case CALL_BUILTIN: return c->fn(in, c->self, args);
    case CALL_MACRO: return call_macro(in, c, args);
    case CALL_UNSAFE:
      tmpl_error(in, "access to attribute '%s' of '%s' object is unsafe.", c->name, tmpl_type_name(c->self));
  }
  return tv_none();
}

static tmpl_value make_macro(tmpl_interp* in, const ast_node* n, tmpl_frame* closure, const char* name) {
  tmpl_callable* c = tmpl_alloc(in->arena, sizeof *c);
  c->kind = CALL_MACRO;
  c->name = name;
  c->macro = n;
  c->closure = closure;
  c->caller = tv_undefined(NULL);
  tmpl_value v = {.type = TV_CALLABLE};
  v.as.callable = c;
  return v;
}

static tmpl_value apply_filter(tmpl_interp* in, const ast_node* n, tmpl_frame* f, tmpl_value input) {
  tmpl_builtin_fn fn = tmpl_find_filter(n->name);
  if (!fn) tmpl_error(in, "no filter named '%s'", n->name);
  tmpl_args args;
  eval_args(in, n, f, &args, 0);
  in->line = n->line;
  in->col = n->col;
  return fn(in, input, &args);
}

/* Applies a filter chain whose innermost input is `input` (filter blocks, set blocks). */
static tmpl_value apply_filter_chain(tmpl_interp* in, const ast_node* n, tmpl_frame* f, tmpl_value input) {
  if (!n) return input;
  tmpl_value inner = n->a ? apply_filter_chain(in, n->a, f, input) : input;
  return apply_filter(in, n, f, inner);
}

static tmpl_value eval(tmpl_interp* in, const ast_node* n, tmpl_frame* f) {
  step(in, n);
  enter(in);
  tmpl_value result;
  switch (n->kind) {
    case N_LITERAL: result = n->literal; break;
    case N_NAME:
      if (!frame_lookup(f, n->name, &result)) result = undefined_msg(in, "'%s' is undefined", n->name);
      break;
    case N_LIST:
    case N_TUPLE:
      result = tv_list(in->arena, n->list.len);
      result.as.list->is_tuple = n->kind == N_TUPLE;
      for (size_t i = 0; i < n->list.len; i++) result.as.list->items[result.as.list->len++] = eval(in, n->list.items[i], f);
      break;
    case N_DICT:
      result = tv_dict(in->arena, DICT_PLAIN);
      for (size_t i = 0; i < n->list.len; i++) {
        tmpl_value k = eval(in, n->list.items[i], f);
        tmpl_value v = eval(in, n->list2.items[i], f);
        tmpl_dict_set(in->arena, result.as.dict, k, v);
      }
      break;
    case N_GETATTR: {
      tmpl_value obj = eval(in, n->a, f);
      in->line = n->line;
      in->col = n->col;
      result = tmpl_getattr(in, obj, n->name);
      break;
    }
    case N_GETITEM: {
      tmpl_value obj = eval(in, n->a, f);
      if (n->b->kind == N_SLICE) {
        const ast_node* s = n->b;
        tmpl_value parts[3];
        const ast_node* nodes[3] = {s->a, s->b, s->c};
        for (int k = 0; k < 3; k++) parts[k] = nodes[k] ? eval(in, nodes[k], f) : tv_none();
        in->line = n->line;
        in->col = n->col;
        result = slice_value(in, obj, parts[0], parts[1], parts[2]);
      } else {
        tmpl_value key = eval(in, n->b, f);
        in->line = n->line;
        in->col = n->col;
        result = tmpl_getitem(in, obj, key);
      }
      break;
    }
    case N_CALL: {
      tmpl_value fn = eval(in, n->a, f);
      tmpl_args args;
      eval_args(in, n, f, &args, 0);
      in->line = n->line;
      in->col = n->col;
      result = tmpl_call(in, fn, &args);
      break;
    }
    case N_FILTER: result = apply_filter(in, n, f, eval(in, n->a, f)); break;
    case N_TEST: {
      tmpl_value v = eval(in, n->a, f);
      tmpl_args args;
      eval_args(in, n, f, &args, 0);
      in->line = n->line;
      in->col = n->col;
      bool r = tmpl_run_test(in, n->name, v, &args);
      result = tv_bool(n->op ? !r : r);
      break;
    }
    case N_UNARY: {
      tmpl_value v = eval(in, n->a, f);
      if (v.type == TV_FLOAT)
        result = tv_float(n->op == OP_NEG ? -v.as.real : v.as.real);
      else if (is_integral(v)) {
        if (n->op == OP_NEG && as_int(v) == INT64_MIN) tmpl_error(in, "integer overflow");
        result = tv_int(n->op == OP_NEG ? -as_int(v) : as_int(v));
      } else {
        tmpl_require_defined(in, v);
        tmpl_error(in, "bad operand type for unary %s: '%s'", n->op == OP_NEG ? "-" : "+", tmpl_type_name(v));
      }
      break;
    }
    case N_BINARY: {
      tmpl_value a = eval(in, n->a, f);
      tmpl_value b = eval(in, n->b, f);
      in->line = n->line;
      in->col = n->col;
      result = arithmetic(in, n->op, a, b);
      break;
    }
    case N_CONCAT: {
      tmpl_buf buf;
      tmpl_buf_init(&buf, in->arena, 0);
      for (size_t i = 0; i < n->list.len; i++) tmpl_write_str(&buf, eval(in, n->list.items[i], f));
      result = tv_string(in->arena, buf.data ? buf.data : "", buf.len);
      break;
    }
    case N_COMPARE: {
      tmpl_value left = eval(in, n->a, f);
      result = tv_bool(true);
      for (size_t i = 0; i < n->list.len; i++) {
        tmpl_value right = eval(in, n->list.items[i], f);
        in->line = n->line;
        in->col = n->col;
        if (!compare_op(in, n->ops[i], left, right)) {
          result = tv_bool(false);
          break;
        }
        left = right;
      }
      break;
    }
    case N_AND: {
      tmpl_value a = eval(in, n->a, f);
      result = tmpl_truthy(a) ? eval(in, n->b, f) : a;
      break;
    }
    case N_OR: {
      tmpl_value a = eval(in, n->a, f);
      result = tmpl_truthy(a) ? a : eval(in, n->b, f);
      break;
    }
    case N_NOT: result = tv_bool(!tmpl_truthy(eval(in, n->a, f))); break;
    case N_CONDEXPR:
      if (tmpl_truthy(eval(in, n->a, f)))
        result = eval(in, n->b, f);
      else
        result = n->c ? eval(in, n->c, f) : tv_undefined("the inline if-expression evaluated to false and no else section was defined");
      break;
    default: tmpl_error(in, "statement used as an expression");
  }
  in->depth--;
  return result;
}

/* ---- statements ---- */

static void assign(tmpl_interp* in, const ast_node* target, tmpl_value v, tmpl_frame* f) {
  if (target->kind == N_NAME) {
    frame_set(in, f, target->name, v);
    return;
  }
  if (target->kind == N_GETATTR) {
    tmpl_value ns;
    if (!frame_lookup(f, target->a->name, &ns) || ns.type != TV_DICT || ns.as.dict->kind != DICT_NAMESPACE)
      tmpl_error(in, "cannot assign attribute on non-namespace object");
    tmpl_dict_set_str(in->arena, ns.as.dict, target->name, v);
    return;
  }
  tmpl_list* items = tmpl_iterate(in, v);
  if (items->len != target->list.len)
    tmpl_error(in, items->len > target->list.len ? "too many values to unpack (expected %zu)" : "not enough values to unpack (expected %zu)",
               target->list.len);
  for (size_t i = 0; i < items->len; i++) frame_set(in, f, target->list.items[i]->name, items->items[i]);
}

/* The loop object's keys, made once per for statement and shared by its iterations. */
enum { LOOP_INDEX0, LOOP_INDEX, LOOP_REVINDEX0, LOOP_REVINDEX, LOOP_FIRST, LOOP_LAST, LOOP_LENGTH, LOOP_DEPTH,
       LOOP_DEPTH0, LOOP_PREVITEM, LOOP_NEXTITEM, LOOP_KEYS };
static const char* const loop_key_names[LOOP_KEYS] = {"index0", "index", "revindex0", "revindex", "first", "last",
                                                       "length", "depth", "depth0", "previtem", "nextitem"};

static tmpl_value make_loop(tmpl_interp* in, const tmpl_value* keys, tmpl_list* items, size_t i) {
  tmpl_value loop = tv_dict(in->arena, DICT_LOOP);
  tmpl_dict* d = loop.as.dict;
  d->keys = tmpl_alloc(in->arena, 2 * LOOP_KEYS * sizeof(tmpl_value));
  d->values = d->keys + LOOP_KEYS;
  d->cap = LOOP_KEYS;
  int64_t n = (int64_t)items->len, k = (int64_t)i;
  tmpl_value values[LOOP_KEYS] = {tv_int(k), tv_int(k + 1), tv_int(n - k - 1), tv_int(n - k), tv_bool(k == 0),
                                  tv_bool(k == n - 1), tv_int(n), tv_int(1), tv_int(0)};
  size_t count = 0;
  for (size_t j = 0; j < LOOP_PREVITEM; j++, count++) {
    d->keys[count] = keys[j];
    d->values[count] = values[j];
  }
  if (k > 0) {
    d->keys[count] = keys[LOOP_PREVITEM];
    d->values[count++] = items->items[k - 1];
  }
  if (k + 1 < n) {
    d->keys[count] = keys[LOOP_NEXTITEM];
    d->values[count++] = items->items[k + 1];
  }
  d->len = count;
  return loop;
}

static void exec_for(tmpl_interp* in, const ast_node* n, tmpl_frame* f) {
  tmpl_value iterable = eval(in, n->b, f);
  in->line = n->line;
  in->col = n->col;
  tmpl_list* items = tmpl_iterate(in, iterable);
  if (n->c) {
    tmpl_list* kept = tv_list(in->arena, 0).as.list;
    for (size_t i = 0; i < items->len; i++) {
      tmpl_frame* scope = frame_new(in, f);
      assign(in, n->a, items->items[i], scope);
      if (tmpl_truthy(eval(in, n->c, scope))) tmpl_list_push(in->arena, kept, items->items[i]);
    }
    items = kept;
  }
  if (!items->len) {
    exec_body(in, n->list2, frame_new(in, f));
    return;
  }
  tmpl_value keys[LOOP_KEYS];
  for (size_t j = 0; j < LOOP_KEYS; j++) keys[j] = tv_cstring(in->arena, loop_key_names[j]);
  for (size_t i = 0; i < items->len; i++) {
    step(in, n);
    tmpl_frame* scope = frame_new(in, f);
    assign(in, n->a, items->items[i], scope);
    frame_set(in, scope, "loop", make_loop(in, keys, items, i));
    if (exec_body(in, n->list, scope) == FLOW_BREAK) break;
  }
}

static tmpl_value capture_body(tmpl_interp* in, ast_list body, tmpl_frame* f) {
  tmpl_buf* saved = in->out;
  tmpl_buf capture;
  tmpl_buf_init(&capture, in->arena, in->limits.max_output_bytes);
  in->out = &capture;
  exec_body(in, body, f);
  in->out = saved;
  return tv_string(in->arena, capture.data ? capture.data : "", capture.len);
}

static flow exec(tmpl_interp* in, const ast_node* n, tmpl_frame* f) {
  step(in, n);
  enter(in);
  flow result = FLOW_NORMAL;
  switch (n->kind) {
    case N_TEXT: tmpl_buf_append(in->out, n->literal.as.string->data, n->literal.as.string->len); break;
    case N_OUTPUT: {
      tmpl_value v = eval(in, n->a, f);
      if (v.type == TV_STRING)
        tmpl_buf_append(in->out, v.as.string->data, v.as.string->len);
      else
        tmpl_write_str(in->out, v);
      break;
    }
    case N_IF:
      result = exec_body(in, tmpl_truthy(eval(in, n->a, f)) ? n->list : n->list2, f);
      break;
    case N_FOR: exec_for(in, n, f); break;
    case N_SET: assign(in, n->a, eval(in, n->b, f), f); break;
    case N_SET_BLOCK: {
      tmpl_value body = capture_body(in, n->list, f);
      assign(in, n->a, apply_filter_chain(in, n->b, f, body), f);
      break;
    }
    case N_MACRO: frame_set(in, f, n->name, make_macro(in, n, f, n->name)); break;
    case N_CALL_BLOCK: {
      tmpl_value caller = make_macro(in, n, f, "caller");
      const ast_node* call = n->a;
      tmpl_value fn = eval(in, call->a, f);
      tmpl_args args;
      eval_args(in, call, f, &args, 1);
      args.kw_names[args.n_kw] = "caller";
      args.kw[args.n_kw] = caller;
      args.n_kw++;
      in->line = n->line;
      in->col = n->col;
      tmpl_value v = tmpl_call(in, fn, &args);
      tmpl_write_str(in->out, v);
      break;
    }
    case N_FILTER_BLOCK: {
      tmpl_value body = capture_body(in, n->list, f);
      tmpl_write_str(in->out, apply_filter_chain(in, n->b, f, body));
      break;
    }
    case N_WITH: {
      tmpl_frame* scope = frame_new(in, f);
      for (size_t i = 0; i < n->list.len; i++) assign(in, n->list.items[i], eval(in, n->list2.items[i], f), scope);
      result = exec_body(in, n->list3, scope);
      break;
    }
    case N_BREAK: result = FLOW_BREAK; break;
    case N_CONTINUE: result = FLOW_CONTINUE; break;
    default: tmpl_error(in, "expression used as a statement");
  }
  in->depth--;
  return result;
}

static flow exec_body(tmpl_interp* in, ast_list body, tmpl_frame* f) {
  for (size_t i = 0; i < body.len; i++) {
    flow fl = exec(in, body.items[i], f);
    if (fl != FLOW_NORMAL) return fl;
  }
  return FLOW_NORMAL;
}

/* ---- globals ---- */

static tmpl_value global_range(tmpl_interp* in, tmpl_value self, const tmpl_args* args) {
  int64_t start = 0, stop, step_by = 1;
  for (size_t i = 0; i < args->n_pos; i++)
    if (!is_integral(args->pos[i])) tmpl_error(in, "'%s' object cannot be interpreted as an integer", tmpl_type_name(args->pos[i]));
  if (args->n_pos == 1) {
    stop = as_int(args->pos[0]);
  } else if (args->n_pos == 2 || args->n_pos == 3) {
    start = as_int(args->pos[0]);
    stop = as_int(args->pos[1]);
    if (args->n_pos == 3) step_by = as_int(args->pos[2]);
  } else {
    tmpl_error(in, "range expected 1 to 3 arguments, got %zu", args->n_pos);
  }
  if (step_by == 0) tmpl_error(in, "range() arg 3 must not be zero");
  double count = ceil(((double)stop - (double)start) / (double)step_by);
  if (count > MAX_RANGE) tmpl_error(in, "range too big: the sandbox blocks ranges larger than %d", MAX_RANGE);
  tmpl_value out = tv_list(in->arena, count > 0 ? (size_t)count : 0);
  for (int64_t i = start; step_by > 0 ? i < stop : i > stop; i += step_by) out.as.list->items[out.as.list->len++] = tv_int(i);
  return out;
}

static tmpl_value make_mapping(tmpl_interp* in, const tmpl_args* args, tmpl_dict_kind kind) {
  tmpl_value d = tv_dict(in->arena, kind);
  for (size_t i = 0; i < args->n_pos; i++) {
    tmpl_value a = args->pos[i];
    if (a.type != TV_DICT || a.as.dict->kind != DICT_PLAIN) tmpl_error(in, "expected a mapping as positional argument");
    for (size_t j = 0; j < a.as.dict->len; j++) tmpl_dict_set(in->arena, d.as.dict, a.as.dict->keys[j], a.as.dict->values[j]);
  }
  for (size_t i = 0; i < args->n_kw; i++) tmpl_dict_set_str(in->arena, d.as.dict, args->kw_names[i], args->kw[i]);
  return d;
}

static tmpl_value global_namespace(tmpl_interp* in, tmpl_value self, const tmpl_args* args) {
  return make_mapping(in, args, DICT_NAMESPACE);
}

static tmpl_value global_dict(tmpl_interp* in, tmpl_value self, const tmpl_args* args) {
  return make_mapping(in, args, DICT_PLAIN);
}

static tmpl_value global_raise_exception(tmpl_interp* in, tmpl_value self, const tmpl_args* args) {
  tmpl_value msg = tmpl_arg(args, 0, "message", tv_undefined(NULL));
  tmpl_error(in, "%s", tmpl_to_string(in->arena, msg)->data);
}

static tmpl_value global_strftime_now(tmpl_interp* in, tmpl_value self, const tmpl_args* args) {
  tmpl_value fmt = tmpl_arg(args, 0, "format", tv_undefined(NULL));
  if (fmt.type != TV_STRING) tmpl_error(in, "strftime_now expects a format string");
  time_t now = time(NULL);
  struct tm local;
  localtime_r(&now, &local);
  char out[256];
  size_t n = strftime(out, sizeof out, fmt.as.string->data, &local);
  return tv_string(in->arena, out, n);
}

void tmpl_eval_render(tmpl_interp* in, ast_list body, tmpl_dict* context, tmpl_buf* out) {
  tmpl_frame* globals = frame_new(in, NULL);
  frame_set(in, globals, "range", tmpl_make_builtin(in, "range", global_range, tv_none()));
  frame_set(in, globals, "namespace", tmpl_make_builtin(in, "namespace", global_namespace, tv_none()));
  frame_set(in, globals, "dict", tmpl_make_builtin(in, "dict", global_dict, tv_none()));
  frame_set(in, globals, "raise_exception", tmpl_make_builtin(in, "raise_exception", global_raise_exception, tv_none()));
  frame_set(in, globals, "strftime_now", tmpl_make_builtin(in, "strftime_now", global_strftime_now, tv_none()));
  tmpl_frame* vars = frame_new(in, globals);
  for (size_t i = 0; i < context->len; i++)
    if (context->keys[i].type == TV_STRING) frame_set(in, vars, context->keys[i].as.string->data, context->values[i]);
  in->globals = globals;
  in->out = out;
  exec_body(in, body, frame_new(in, vars));
}
