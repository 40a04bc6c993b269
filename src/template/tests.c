/* Jinja2's tests ("x is defined", "x is divisibleby 3", "x is equalto y", ...). */
#include <math.h>
#include <string.h>

#include "template/eval.h"

#define TEST_FN(name) static tmpl_value name(tmpl_interp* in, tmpl_value v, const tmpl_args* args)

static tmpl_value arg0(tmpl_interp* in, const tmpl_args* args) {
  if (!args->n_pos && !args->n_kw) tmpl_error(in, "test needs an argument");
  return args->n_pos ? args->pos[0] : args->kw[0];
}

TEST_FN(t_defined) { return tv_bool(v.type != TV_UNDEFINED); }
TEST_FN(t_undefined) { return tv_bool(v.type == TV_UNDEFINED); }
TEST_FN(t_none) { return tv_bool(v.type == TV_NONE); }
TEST_FN(t_boolean) { return tv_bool(v.type == TV_BOOL); }
TEST_FN(t_true) { return tv_bool(v.type == TV_BOOL && v.as.boolean); }
TEST_FN(t_false) { return tv_bool(v.type == TV_BOOL && !v.as.boolean); }
TEST_FN(t_integer) { return tv_bool(v.type == TV_INT); }
TEST_FN(t_float) { return tv_bool(v.type == TV_FLOAT); }
TEST_FN(t_number) { return tv_bool(tmpl_is_number(v)); }
TEST_FN(t_string) { return tv_bool(v.type == TV_STRING); }
TEST_FN(t_mapping) { return tv_bool(v.type == TV_DICT && v.as.dict->kind == DICT_PLAIN); }
TEST_FN(t_iterable) {
  return tv_bool(v.type == TV_UNDEFINED || v.type == TV_STRING || v.type == TV_LIST || (v.type == TV_DICT && v.as.dict->kind == DICT_PLAIN));
}
TEST_FN(t_sequence) {
  return tv_bool(v.type == TV_UNDEFINED || v.type == TV_STRING || v.type == TV_LIST || (v.type == TV_DICT && v.as.dict->kind == DICT_PLAIN));
}
TEST_FN(t_callable) { return tv_bool(v.type == TV_CALLABLE); }
TEST_FN(t_escaped) { return tv_bool(false); }
TEST_FN(t_sameas) {
  tmpl_value o = arg0(in, args);
  if (v.type != o.type || v.type == TV_UNDEFINED) return tv_bool(false);
  switch (v.type) {
    case TV_LIST: return tv_bool(v.as.list == o.as.list);
    case TV_DICT: return tv_bool(v.as.dict == o.as.dict);
    case TV_STRING: return tv_bool(v.as.string == o.as.string);
    default: return tv_bool(tmpl_equal(v, o));
  }
}

static tmpl_value case_test(tmpl_interp* in, tmpl_value v, bool upper) {
  tmpl_string* s = tmpl_to_string(in->arena, v);
  tmpl_args none = {0};
  bool unsafe;
  tmpl_builtin_fn fn = tmpl_find_method(tv_string(in->arena, s->data, s->len), upper ? "isupper" : "islower", &unsafe);
  return fn(in, tv_string(in->arena, s->data, s->len), &none);
}
TEST_FN(t_lower) { return case_test(in, v, false); }
TEST_FN(t_upper) { return case_test(in, v, true); }

static int64_t int_of(tmpl_interp* in, tmpl_value v) {
  if (v.type == TV_BOOL) return v.as.boolean;
  if (v.type == TV_INT) return v.as.integer;
  tmpl_require_defined(in, v);
  tmpl_error(in, "expected an integer, got '%s'", tmpl_type_name(v));
}
TEST_FN(t_odd) {
  if (v.type == TV_FLOAT) return tv_bool(fmod(v.as.real, 2.0) == 1.0 || fmod(v.as.real, 2.0) == -1.0);
  return tv_bool(int_of(in, v) % 2 != 0);
}
TEST_FN(t_even) {
  if (v.type == TV_FLOAT) return tv_bool(fmod(v.as.real, 2.0) == 0.0);
  return tv_bool(int_of(in, v) % 2 == 0);
}
TEST_FN(t_divisibleby) {
  int64_t d = int_of(in, arg0(in, args));
  if (d == 0) tmpl_error(in, "integer division or modulo by zero");
  return tv_bool(int_of(in, v) % d == 0);
}
TEST_FN(t_eq) { return tv_bool(tmpl_equal(v, arg0(in, args))); }
TEST_FN(t_ne) { return tv_bool(!tmpl_equal(v, arg0(in, args))); }
TEST_FN(t_lt) { return tv_bool(tmpl_compare(in, v, arg0(in, args)) < 0); }
TEST_FN(t_le) { return tv_bool(tmpl_compare(in, v, arg0(in, args)) <= 0); }
TEST_FN(t_gt) { return tv_bool(tmpl_compare(in, v, arg0(in, args)) > 0); }
TEST_FN(t_ge) { return tv_bool(tmpl_compare(in, v, arg0(in, args)) >= 0); }
TEST_FN(t_in) {
  tmpl_value container = arg0(in, args);
  if (container.type == TV_STRING) {
    if (v.type != TV_STRING) tmpl_error(in, "'in <string>' requires string as left operand");
    return tv_bool(!v.as.string->len || memmem(container.as.string->data, container.as.string->len, v.as.string->data, v.as.string->len));
  }
  if (container.type == TV_DICT) return tv_bool(tmpl_dict_find(container.as.dict, v) != NULL);
  tmpl_list* items = tmpl_iterate(in, container);
  for (size_t i = 0; i < items->len; i++)
    if (tmpl_equal(items->items[i], v)) return tv_bool(true);
  return tv_bool(false);
}
TEST_FN(t_filter) {
  tmpl_value name = v;
  return tv_bool(name.type == TV_STRING && tmpl_find_filter(name.as.string->data) != NULL);
}
TEST_FN(t_test) {
  tmpl_value name = v;
  return tv_bool(name.type == TV_STRING && tmpl_find_test(name.as.string->data) != NULL);
}

typedef struct {
  const char* name;
  tmpl_builtin_fn fn;
} test_entry;

static const test_entry tests[] = {
    {"defined", t_defined}, {"undefined", t_undefined}, {"none", t_none}, {"boolean", t_boolean},
    {"true", t_true}, {"false", t_false}, {"integer", t_integer}, {"float", t_float}, {"number", t_number},
    {"string", t_string}, {"mapping", t_mapping}, {"iterable", t_iterable}, {"sequence", t_sequence},
    {"callable", t_callable}, {"escaped", t_escaped}, {"sameas", t_sameas}, {"lower", t_lower}, {"upper", t_upper},
    {"odd", t_odd}, {"even", t_even}, {"divisibleby", t_divisibleby}, {"eq", t_eq}, {"equalto", t_eq}, {"==", t_eq},
    {"ne", t_ne}, {"!=", t_ne}, {"lt", t_lt}, {"lessthan", t_lt}, {"<", t_lt}, {"le", t_le}, {"<=", t_le},
    {"gt", t_gt}, {"greaterthan", t_gt}, {">", t_gt}, {"ge", t_ge}, {">=", t_ge}, {"in", t_in},
    {"filter", t_filter}, {"test", t_test}, {NULL, NULL}};

tmpl_builtin_fn tmpl_find_test(const char* name) {
  for (size_t i = 0; tests[i].name; i++)
    if (!strcmp(tests[i].name, name)) return tests[i].fn;
  return NULL;
}

bool tmpl_run_test(tmpl_interp* in, const char* name, tmpl_value v, const tmpl_args* args) {
  tmpl_builtin_fn fn = tmpl_find_test(name);
  if (!fn) tmpl_error(in, "no test named '%s'", name);
  return tmpl_truthy(fn(in, v, args));
}
