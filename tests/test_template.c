/* The Jinja2 language as transformers renders chat templates: one test per feature family, each
 * comparing with the output of Python jinja2 in transformers' environment; then errors (with line
 * and column), the sandbox's refusals, and the limits that keep untrusted templates bounded. */
#include "mlxc/chat.h"
#include "mlxc/error.h"
#include "test_util.h"

/* Renders `source` with the variables of `context` and compares with `expected`. */
static void expect_render_at(const char* file, int line, const char* source, const char* context, const char* expected) {
  mlxc_template* tmpl = NULL;
  char* err = NULL;
  char* out = NULL;
  if (mlxc_template_compile(&tmpl, source, &err) != 0) {
    fprintf(stderr, "  %s:%d: compile failed: %s\n    template: %s\n", file, line, err, source);
    test_failed_checks_++;
  } else if (mlxc_template_render(&out, tmpl, context, NULL) != 0) {
    fprintf(stderr, "  %s:%d: render failed: %s\n    template: %s\n", file, line, mlxc_last_error(), source);
    test_failed_checks_++;
  } else if (strcmp(out, expected) != 0) {
    fprintf(stderr, "  %s:%d: mismatch\n    template: %s\n    got:      \"%s\"\n    expected: \"%s\"\n", file, line, source, out,
            expected);
    test_failed_checks_++;
  }
  free(err);
  free(out);
  mlxc_template_free(tmpl);
}
#define expect_render(source, context, expected) expect_render_at(__FILE__, __LINE__, source, context, expected)

/* Expects compile or render to fail with a message containing `fragment`. */
static void expect_failure_at(const char* file, int line, const char* source, const mlxc_template_limits* limits,
                              const char* fragment) {
  mlxc_template* tmpl = NULL;
  char* out = NULL;
  int rc = mlxc_template_compile(&tmpl, source, NULL);
  if (rc == 0) rc = mlxc_template_render(&out, tmpl, "{}", limits);
  if (rc == 0) {
    fprintf(stderr, "  %s:%d: expected a failure, got \"%s\"\n", file, line, out);
    test_failed_checks_++;
  } else if (!strstr(mlxc_last_error(), fragment)) {
    fprintf(stderr, "  %s:%d: message \"%s\" lacks \"%s\"\n", file, line, mlxc_last_error(), fragment);
    test_failed_checks_++;
  }
  free(out);
  mlxc_template_free(tmpl);
}
#define expect_failure(source, limits, fragment) expect_failure_at(__FILE__, __LINE__, source, limits, fragment)

/* Expected strings below were produced by Python jinja2 3.1.6 in transformers' environment
 * (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loopcontrols, json.dumps tojson). */
TEST(test_whitespace_control_trim_and_lstrip_blocks) {
  expect_render("a\n  {% if true %}\n    b\n  {% endif %}\nc\n",
                "{}",
                "a\n    b\nc");
  expect_render("a  {%- if true -%}  b  {%- endif -%}  c",
                "{}",
                "abc");
  expect_render("x {{- 'y' }} {{ 'z' -}}  \n  w",
                "{}",
                "xy zw");
  expect_render("f {%+ if true %} g{% endif +%}\nh",
                "{}",
                "f  g\nh");
  expect_render("a {# note #}\n   {# own line #}\nb",
                "{}",
                "a b");
  expect_render("{% raw %}{{ kept }}{% endraw %}",
                "{}",
                "{{ kept }}");
  expect_render("line\r\nnext\n\n",
                "{}",
                "line\nnext\n");
}

TEST(test_python_value_printing) {
  expect_render("{{ 1.0 }} {{ 1/2 }} {{ 4/2 }} {{ 1e16 }} {{ 1e-05 }} {{ 0.1 }} {{ -0.0 }} {{ 123456789.123 }}",
                "{}",
                "1.0 0.5 2.0 1e+16 1e-05 0.1 -0.0 123456789.123");
  expect_render("{{ none }} {{ true }} {{ [1, 'a', none, false, 2.5] }} {{ {'k': 'v', 'it\\'s': \"q\"} }} {{ (1,) }}",
                "{}",
                "None True [1, 'a', None, False, 2.5] {'k': 'v', \"it's\": 'q'} (1,)");
  expect_render("{{ x }}|{{ x|string }}|{{ x ~ 'a' }}",
                "{}",
                "||a");
}

TEST(test_operators_follow_python) {
  expect_render("{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % -3 }} {{ 2 ** 10 }} {{ 5 // 2.0 }} {{ 'ab' * 2 }} {{ [1] + [2] }} {{ 1 + true }}",
                "{}",
                "3 -4 -2 1024 2.0 abab [1, 2] 2");
  expect_render("{{ 'a' in 'cat' }} {{ 1 in [1, 2] }} {{ 'k' in {'k': 1} }} {{ 3 not in [1] }} {{ 1 < 2 < 3 }} {{ 1 == 1.0 }}",
                "{}",
                "True True True True True True");
  expect_render("{{ true and 'yes' }} {{ 0 or 'no' }} {{ none and 1 }} {{ 'a' if false }}|{{ 1 if false else 2 }}",
                "{}",
                "yes no None |2");
  expect_render("{{ 10 - 3 * 2 ** 2 }} {{ -2 ** 2 }} {{ '%s-%05.1f' % ('x', 3.14159) }}",
                "{}",
                "-2 4 x-003.1");
}

TEST(test_loops_loop_variable_and_controls) {
  expect_render("{% for x in [1, 2, 3] %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.previtem }}{{ loop.nextitem }}{{ loop.cycle('a', 'b') }};{% endfor %}",
                "{}",
                "103TrueFalse32a;212FalseFalse313b;321FalseTrue32a;");
  expect_render("{% for x in [] %}x{% else %}empty{% endfor %}|{% for x in [1, 2, 3, 4] if x is even %}{{ x }}{{ loop.length }}{% endfor %}",
                "{}",
                "empty|2242");
  expect_render("{% for i in range(10) %}{% if i == 2 %}{% continue %}{% endif %}{% if i == 5 %}{% break %}{% endif %}{{ i }}{% endfor %}",
                "{}",
                "0134");
  expect_render("{% for k, v in d.items() %}{{ k }}={{ v }},{% endfor %}{% for k in d %}{{ k }}{% endfor %}",
                "{\"d\": {\"b\": 1, \"a\": 2}}",
                "b=1,a=2,ba");
}

TEST(test_scopes_set_namespace_with) {
  expect_render("{% set x = 0 %}{% for i in [1, 2] %}{{ x }}{% set x = i %}{{ x }}{% endfor %}{{ x }}",
                "{}",
                "01020");
  expect_render("{% set ns = namespace(total=0) %}{% for i in range(4) %}{% set ns.total = ns.total + i %}{% endfor %}{{ ns.total }}",
                "{}",
                "6");
  expect_render("{% set a, b = 1, 2 %}{{ a }}{{ b }}{% with y = 5 %}{{ y }}{% endwith %}{{ y }}|{% set blk %}B{{ 1 }}{% endset %}{{ blk }}",
                "{}",
                "125|B1");
}

TEST(test_macros_call_and_filter_blocks) {
  expect_render("{% macro m(a, b=2, c='z') %}[{{ a }}{{ b }}{{ c }}{{ varargs }}{{ kwargs }}]{% endmacro %}{{ m(1) }}{{ m(1, c=5) }}{{ m(1, 2, 3, 4, q=1) }}",
                "{}",
                "[12z(){}][125(){}][123(4,){'q': 1}]");
  expect_render("{% macro w(x) %}<{{ caller(x * 2) }}>{% endmacro %}{% call(y) w(4) %}got {{ y }}{% endcall %}",
                "{}",
                "<got 8>");
  expect_render("{% filter upper %}hello {{ 'world' }}{% endfilter %}|{% set c | trim %}  pad  {% endset %}[{{ c }}]",
                "{}",
                "HELLO WORLD|[pad]");
  expect_render("{% macro r(n) %}{% if n > 0 %}{{ n }}{{ r(n - 1) }}{% endif %}{% endmacro %}{{ r(4) }}",
                "{}",
                "4321");
}

TEST(test_tests_defined_none_string_mapping) {
  expect_render("{{ x is defined }}{{ x is undefined }}{{ none is none }}{{ 'a' is string }}{{ {} is mapping }}{{ [] is iterable }}{{ 1 is number }}{{ 3 is odd }}{{ 9 is divisibleby 3 }}{{ 1 is equalto 1 }}{{ 2 is eq(2) }}{{ 2 is ne 3 }}{{ true is true }}{{ [] is sequence }}{{ 1 is integer }}{{ 1.0 is float }}",
                "{}",
                "FalseTrueTrueTrueTrueTrueTrueTrueTrueTrueTrueTrueTrueTrueTrueTrue");
}

TEST(test_subscripts_and_slices) {
  expect_render("{{ 'abcdef'[1:3] }} {{ 'abcdef'[::-1] }} {{ [1, 2, 3, 4][::2] }} {{ [1, 2, 3][-1] }} {{ 'h\xc3\xa9""llo'[1] }} {{ [1, 2, 3][5] }}|{{ 'abc'[-2:] }}",
                "{}",
                "bc fedcba [1, 3] 3 \xc3\xa9"" |bc");
  expect_render("{{ m.content }}{{ m['role'] }}{{ m.missing }}|{{ m.items()|list }}",
                "{\"m\": {\"role\": \"user\", \"content\": \"hi\"}}",
                "hiuser|[('role', 'user'), ('content', 'hi')]");
}

TEST(test_string_methods) {
  expect_render("{{ '  x y  '.strip() }}|{{ 'xxaxx'.strip('x') }}|{{ 'a,b,,c'.split(',') }}|{{ ' a  b '.split() }}|{{ 'a b c'.rsplit(' ', 1) }}|{{ 'abc'.startswith('ab') }}|{{ 'abc'.endswith(('x', 'c')) }}",
                "{}",
                "x y|a|['a', 'b', '', 'c']|['a', 'b']|['a b', 'c']|True|True");
  expect_render("{{ 'aBc'.upper() }}{{ 'aBc'.lower() }}|{{ 'hello world-x'.title() }}|{{ 'hELLO'.capitalize() }}|{{ 'aaa'.replace('a', 'b', 2) }}|{{ 'abcb'.find('b') }}{{ 'abcb'.rfind('b') }}|{{ 'abab'.count('ab') }}|{{ '{} and {}'.format(1, 'x') }}|{{ '-'.join(['a', 'b']) }}",
                "{}",
                "ABCabc|Hello World-X|Hello|bba|13|2|1 and x|a-b");
}

TEST(test_filters) {
  expect_render("{{ [3, 1, 2]|sort }}{{ ['b', 'A', 'c']|sort }}{{ [{'n': 2}, {'n': 1}]|sort(attribute='n') }}{{ [1, 2, 2, 'a', 'A']|unique|list }}{{ [1, 2, 3]|reverse|list }}",
                "{}",
                "[1, 2, 3]['A', 'b', 'c'][{'n': 1}, {'n': 2}][1, 2, 'a'][3, 2, 1]");
  expect_render("{{ 'h\xc3\xa9""llo'|length }}{{ x|length }}{{ [1, 2, 3]|first }}{{ [1, 2, 3]|last }}{{ [1, 2, 3]|join(',') }}{{ [1, 2, 3]|sum }}{{ [1, 2, 3]|min }}{{ ['b', 'A']|max }}{{ -3|abs }}",
                "{}",
                "50131,2,361b3");
  expect_render("{{ '  a  '|trim }}|{{ 'hello world'|title }}|{{ 'aXa'|replace('a', 'b') }}|{{ x|default('d') }}|{{ ''|default('d', true) }}|{{ '4.7'|int }}|{{ 'x'|int }}|{{ '3.5'|float }}|{{ 2.5|round }}|{{ 2.675|round(2) }}|{{ 3|round }}",
                "{}",
                "a|Hello World|bXb|d|d|4|0|3.5|2.0|2.67|3");
  expect_render("{{ l|selectattr('b')|map(attribute='a')|list }}{{ l|rejectattr('b')|list }}{{ [1, 2, 3, 4]|select('odd')|list }}{{ l|selectattr('a', 'equalto', 2)|list }}{{ ['a', 'b']|map('upper')|list }}",
                "{\"l\": [{\"a\": 1, \"b\": true}, {\"a\": 2, \"b\": false}]}",
                "[1][{'a': 2, 'b': False}][1, 3][{'a': 2, 'b': False}]['A', 'B']");
  expect_render("{{ {'b': 1, 'a': 2}|dictsort }}{{ {'b': 1}|items|list }}{{ 'one two  three'|wordcount }}{{ 'a\\nb\\n\\nc'|indent(2) }}|{{ 'a\\nb'|indent(2, true) }}|{{ '<a>&\\'\"'|e }}|{{ [1, 2, 3]|batch(2)|list }}",
                "{}",
                "[('a', 2), ('b', 1)][('b', 1)]3a\n  b\n\n  c|  a\n  b|&lt;a&gt;&amp;&#39;&#34;|[[1, 2], [3]]");
}

TEST(test_tojson_matches_transformers) {
  expect_render("{{ d|tojson }}",
                "{\"d\": {\"a\": \"\xc3\xa9""\\\"\\\\\\n\\u0001\", \"b\": [1, 2.0, null, true, 1e+20, 0.1], \"c\": {}, \"e\": []}}",
                "{\"a\": \"\xc3\xa9""\\\"\\\\\\n\\u0001\", \"b\": [1, 2.0, null, true, 1e+20, 0.1], \"c\": {}, \"e\": []}");
  expect_render("{{ d|tojson(indent=2) }}",
                "{\"d\": {\"a\": [1, {\"b\": 2}], \"c\": \"x\", \"e\": []}}",
                "{\n  \"a\": [\n    1,\n    {\n      \"b\": 2\n    }\n  ],\n  \"c\": \"x\",\n  \"e\": []\n}");
  expect_render("{{ d|tojson(sort_keys=true) }}{{ '\xc3\xa9""\xf0\x9f\x98\x80""'|tojson(ensure_ascii=true) }}{{ d|tojson(separators=(',', ':')) }}",
                "{\"d\": {\"b\": 1, \"a\": 2}}",
                "{\"a\": 2, \"b\": 1}\"\\u00e9\\ud83d\\ude00\"{\"b\":1,\"a\":2}");
}

#define FEATURE_TESTS RUN(test_whitespace_control_trim_and_lstrip_blocks); RUN(test_python_value_printing); RUN(test_operators_follow_python); RUN(test_loops_loop_variable_and_controls); RUN(test_scopes_set_namespace_with); RUN(test_macros_call_and_filter_blocks); RUN(test_tests_defined_none_string_mapping); RUN(test_subscripts_and_slices); RUN(test_string_methods); RUN(test_filters); RUN(test_tojson_matches_transformers);
TEST(test_syntax_errors_name_line_and_column) {
  expect_failure("ok\n{% if x %}\n{% endfor %}", NULL, "line 3, column 4");
  expect_failure("{% if x %}never closed", NULL, "expected 'endif'");
  expect_failure("{{ 1 + }}", NULL, "line 1, column 8");
  expect_failure("a\n  {{ 'unterminated }}", NULL, "line 2, column 6");
  expect_failure("{% frobnicate %}", NULL, "unsupported statement 'frobnicate'");
  expect_failure("{% break %}", NULL, "only allowed inside a for loop");
  expect_failure("{# no end", NULL, "missing end of comment tag");
  expect_failure("\xff\xfe", NULL, "not valid UTF-8");
}

TEST(test_runtime_errors_name_line_and_column) {
  expect_failure("line one\n  {{ raise_exception('Conversation roles must alternate') }}", NULL,
                 "line 2, column 6: Conversation roles must alternate");
  expect_failure("{{ x.y.z }}", NULL, "'x' is undefined");
  expect_failure("{{ 1 + 'a' }}", NULL, "unsupported operand type(s) for +: 'int' and 'str'");
  expect_failure("{{ 1 / 0 }}", NULL, "division by zero");
  expect_failure("{{ x.strip() }}", NULL, "'x' is undefined");
  expect_failure("{{ [1]|tojson }}{{ x|tojson }}", NULL, "not JSON serializable");
  expect_failure("{{ 'a'|nosuchfilter }}", NULL, "no filter named 'nosuchfilter'");
}

TEST(test_sandbox_refuses_mutating_methods) {
  expect_failure("{% set l = [1] %}{{ l.append(2) }}", NULL, "access to attribute 'append' of 'list' object is unsafe");
  expect_failure("{% set d = {} %}{{ d.update({'a': 1}) }}", NULL, "access to attribute 'update' of 'dict' object is unsafe");
  expect_failure("{{ range(1000000)|length }}", NULL, "range too big");
}

TEST(test_untrusted_templates_hit_limits_not_the_machine) {
  mlxc_template_limits small = mlxc_template_default_limits();
  small.max_steps = 200000;
  small.max_output_bytes = 1 << 20;
  small.max_memory_bytes = 64 << 20;
  small.max_depth = 200;
  mlxc_template_limits steps_only = small;
  steps_only.max_memory_bytes = 512 << 20;
  expect_failure("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", &steps_only,
                 "step limit exceeded");
  expect_failure("{% macro r(n) %}{{ r(n + 1) }}{% endmacro %}{{ r(0) }}", &small, "recursion depth limit exceeded");
  expect_failure("{% for i in range(5000) %}{{ 'x' * 1000 }}{% endfor %}", &small, "output limit exceeded");
  expect_failure("{{ 'x' * 1000000000 }}", &small, "memory limit exceeded");
  expect_failure("{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}", &small,
                 "limit exceeded");
  char deep[20001];
  memset(deep, '(', 20000);
  deep[20000] = '\0';
  char source[20010];
  snprintf(source, sizeof source, "{{ %s }}", deep);
  expect_failure(source, &small, "nested too deeply");
}

TEST(test_compile_error_message_is_returned) {
  mlxc_template* tmpl = NULL;
  char* err = NULL;
  CHECK(mlxc_template_compile(&tmpl, "{% for %}", &err) != 0);
  CHECK(tmpl == NULL);
  CHECK(err && strstr(err, "line 1, column 8"));
  free(err);
}

TEST(test_variables_built_without_json) {
  mlxc_template* tmpl = NULL;
  CHECK_EQ_INT(mlxc_template_compile(&tmpl, "{{ bos_token }}{{ n + 1 }}{{ flag }}{{ none_token is none }}{{ messages[0].content }}", NULL), 0);
  mlxc_template_vars* vars = NULL;
  CHECK_EQ_INT(mlxc_template_vars_new(&vars), 0);
  mlxc_template_vars_set_string(vars, "bos_token", "<s>");
  mlxc_template_vars_set_int(vars, "n", 41);
  mlxc_template_vars_set_bool(vars, "flag", 1);
  mlxc_template_vars_set_string(vars, "none_token", NULL);
  CHECK_EQ_INT(mlxc_template_vars_set_json(vars, "messages", "[{\"role\": \"user\", \"content\": \"hé\"}]"), 0);
  CHECK(mlxc_template_vars_set_json(vars, "bad", "[1,") != 0);
  char* out = NULL;
  CHECK_EQ_INT(mlxc_template_render_vars(&out, tmpl, vars, NULL), 0);
  CHECK_STR(out, "<s>42TrueTruehé");
  free(out);
  mlxc_template_vars_free(vars);
  mlxc_template_free(tmpl);
}

TEST(test_apply_template_rejects_bad_json) {
  char* out = NULL;
  CHECK(mlxc_chat_apply_template(&out, "{{ messages }}", "[{", NULL, 1, NULL) != 0);
  CHECK(out == NULL);
  CHECK(mlxc_chat_apply_template(&out, "{{ messages }}", "{}", NULL, 1, NULL) != 0);
  CHECK(mlxc_chat_apply_template(&out, "{{ messages }}", "[]", "{\"not\": \"a list\"}", 1, NULL) != 0);
  CHECK_EQ_INT(mlxc_chat_apply_template(&out, "{{ tools is none }}{{ documents is none }}{{ add_generation_prompt }}{{ x }}",
                                        "[]", NULL, 0, "{\"x\": 1.0}"),
               0);
  CHECK_STR(out, "TrueTrueFalse1.0");
  free(out);
}

int main(void) {
  mlxc_set_errors_quiet(1);
  FEATURE_TESTS
  RUN(test_syntax_errors_name_line_and_column);
  RUN(test_runtime_errors_name_line_and_column);
  RUN(test_sandbox_refuses_mutating_methods);
  RUN(test_untrusted_templates_hit_limits_not_the_machine);
  RUN(test_compile_error_message_is_returned);
  RUN(test_variables_built_without_json);
  RUN(test_apply_template_rejects_bad_json);
  return TEST_SUMMARY();
}
