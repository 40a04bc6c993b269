/* The template engine's value model: Python's None, bool, int, float, str, list/tuple and dict
 * (insertion-ordered), Jinja2's Undefined, and callables. Values are small structs passed by value;
 * what they point to lives in an arena. Strings are UTF-8 and measured in code points like Python. */
#ifndef MLXC_TEMPLATE_VALUE_H
#define MLXC_TEMPLATE_VALUE_H

#include <stdbool.h>
#include <stdint.h>

#include "template/arena.h"

typedef enum {
  TV_UNDEFINED,
  TV_NONE,
  TV_BOOL,
  TV_INT,
  TV_FLOAT,
  TV_STRING,
  TV_LIST,
  TV_DICT,
  TV_CALLABLE,
} tmpl_type;

typedef struct tmpl_string {
  size_t len; /* bytes, excluding the terminating NUL */
  char data[];
} tmpl_string;

typedef struct tmpl_value tmpl_value;
typedef struct tmpl_callable tmpl_callable;

typedef struct tmpl_list {
  size_t len, cap;
  tmpl_value* items;
  bool is_tuple;
} tmpl_list;

typedef enum { DICT_PLAIN, DICT_NAMESPACE, DICT_LOOP } tmpl_dict_kind;

typedef struct tmpl_dict {
  size_t len, cap;
  tmpl_value* keys;
  tmpl_value* values;
  tmpl_dict_kind kind; /* namespaces accept attribute assignment; loop objects print differently */
} tmpl_dict;

struct tmpl_value {
  tmpl_type type;
  union {
    bool boolean;
    int64_t integer;
    double real;
    tmpl_string* string;
    tmpl_list* list;
    tmpl_dict* dict;
    tmpl_callable* callable;
    const char* undefined_name; /* for "'x' is undefined" (may be NULL) */
  } as;
};

static inline tmpl_value tv_undefined(const char* name) {
  tmpl_value v = {.type = TV_UNDEFINED};
  v.as.undefined_name = name;
  return v;
}
static inline tmpl_value tv_none(void) { return (tmpl_value){.type = TV_NONE}; }
static inline tmpl_value tv_bool(bool b) {
  tmpl_value v = {.type = TV_BOOL};
  v.as.boolean = b;
  return v;
}
static inline tmpl_value tv_int(int64_t i) {
  tmpl_value v = {.type = TV_INT};
  v.as.integer = i;
  return v;
}
static inline tmpl_value tv_float(double d) {
  tmpl_value v = {.type = TV_FLOAT};
  v.as.real = d;
  return v;
}

tmpl_value tv_string(tmpl_arena* arena, const char* data, size_t len);
tmpl_value tv_cstring(tmpl_arena* arena, const char* s);
tmpl_value tv_list(tmpl_arena* arena, size_t capacity);
tmpl_value tv_dict(tmpl_arena* arena, tmpl_dict_kind kind);

void tmpl_list_push(tmpl_arena* arena, tmpl_list* list, tmpl_value item);
/* Looks a key up by Python equality; NULL when absent. */
tmpl_value* tmpl_dict_find(const tmpl_dict* dict, tmpl_value key);
tmpl_value* tmpl_dict_find_str(const tmpl_dict* dict, const char* key);
void tmpl_dict_set(tmpl_arena* arena, tmpl_dict* dict, tmpl_value key, tmpl_value value);
void tmpl_dict_set_str(tmpl_arena* arena, tmpl_dict* dict, const char* key, tmpl_value value);

/* Python semantics. */
bool tmpl_truthy(tmpl_value v);
bool tmpl_equal(tmpl_value a, tmpl_value b);
bool tmpl_is_number(tmpl_value v); /* bool, int or float */
double tmpl_as_double(tmpl_value v);
const char* tmpl_type_name(tmpl_value v); /* Python's type name: 'str', 'int', 'NoneType', ... */

/* str(v) and repr(v) appended to buf. */
void tmpl_write_str(tmpl_buf* buf, tmpl_value v);
void tmpl_write_repr(tmpl_buf* buf, tmpl_value v);
void tmpl_write_float(tmpl_buf* buf, double d); /* Python's float repr: 1.0, 1e+16, 1e-05, nan, inf */
/* str(v) as a string value (the same string when v is already one). */
tmpl_string* tmpl_to_string(tmpl_arena* arena, tmpl_value v);

/* UTF-8 helpers; decoding tolerates malformed bytes (each is one code point). */
uint32_t tmpl_utf8_next(const char* s, size_t len, size_t* pos);
size_t tmpl_utf8_encode(uint32_t cp, char out[4]);
size_t tmpl_utf8_count(const char* s, size_t len);
/* Byte offset of code point index `index` (clamped to len). */
size_t tmpl_utf8_offset(const char* s, size_t len, size_t index);
bool tmpl_py_isspace(uint32_t cp);

#endif
