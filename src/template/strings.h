/* Python str operations on UTF-8 strings, shared by str methods and filters. */
#ifndef MLXC_TEMPLATE_STRINGS_H
#define MLXC_TEMPLATE_STRINGS_H

#include "template/eval.h"

typedef enum { CASE_UPPER, CASE_LOWER, CASE_TITLE, CASE_CAPITALIZE, CASE_SWAPCASE } tmpl_case;

/* str.upper/lower/title/capitalize/swapcase with Python's full case mappings (casing.c). */
tmpl_value tmpl_str_case(tmpl_interp* in, const tmpl_string* s, tmpl_case mode);
/* Jinja2's title filter: each word (split at runs of '-', '(', '{', '[', '<' and whitespace) becomes
 * word[0].upper() + word[1:].lower(). */
tmpl_value tmpl_jinja_title(tmpl_interp* in, const tmpl_string* s);
/* strip/lstrip/rstrip: chars NULL strips whitespace. which: 1 left, 2 right, 3 both. */
tmpl_value tmpl_str_strip(tmpl_interp* in, const tmpl_string* s, const tmpl_string* chars, int which);
/* sep NULL splits on whitespace runs; maxsplit < 0 means no limit. from_right: rsplit. */
tmpl_value tmpl_str_split(tmpl_interp* in, const tmpl_string* s, const tmpl_string* sep, int64_t maxsplit, bool from_right);
tmpl_value tmpl_str_replace(tmpl_interp* in, const tmpl_string* s, const tmpl_string* old, const tmpl_string* new_text, int64_t count);
tmpl_value tmpl_str_splitlines(tmpl_interp* in, const tmpl_string* s, bool keepends);
/* Code-point index of the first (or last) occurrence of sub, or -1. */
int64_t tmpl_str_find(const tmpl_string* s, const tmpl_string* sub, bool last);

#endif
