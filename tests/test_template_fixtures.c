/* Real chat templates (Qwen2.5, Qwen3, Llama-2/3/3.1, Gemma-2/3, DeepSeek-R1-Distill, Phi-3, Phi-4, Mistral
 * v0.2/v0.3, SmolLM2/3, LFM2, and a case-filter template) rendered for 29 conversations each and compared byte for byte with transformers' apply_chat_template output
 * (tests/fixtures/templates/expected.json, made by scripts/gen_template_fixtures.py). */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mlxc/chat.h"
#include "mlxc/error.h"
#include "test_util.h"

static json_t* load_fixture(const char* name) {
  char path[1024];
  snprintf(path, sizeof path, "%s/tests/fixtures/templates/%s", test_source_dir(), name);
  json_error_t err;
  json_t* j = json_load_file(path, 0, &err);
  if (!j) fprintf(stderr, "  cannot load %s: %s\n", path, err.text);
  return j;
}

static char* read_text(const char* name) {
  char path[1024];
  snprintf(path, sizeof path, "%s/tests/fixtures/templates/%s", test_source_dir(), name);
  FILE* f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char* text = malloc((size_t)n + 1);
  size_t got = fread(text, 1, (size_t)n, f);
  text[got] = '\0';
  fclose(f);
  return text;
}

/* The variables transformers passes: messages, tools, documents, add_generation_prompt, the
 * template's special tokens (those that are set) and the case's extra keyword arguments. */
static char* context_json(json_t* tokens, json_t* c) {
  json_t* ctx = json_object();
  json_object_set(ctx, "messages", json_object_get(c, "messages"));
  json_t* tools = json_object_get(c, "tools");
  json_object_set(ctx, "tools", tools ? tools : json_null());
  json_object_set_new(ctx, "documents", json_null());
  json_object_set(ctx, "add_generation_prompt", json_object_get(c, "add_generation_prompt"));
  const char* key;
  json_t* value;
  json_object_foreach(tokens, key, value) {
    if (!json_is_null(value)) json_object_set(ctx, key, value);
  }
  json_t* extra = json_object_get(c, "extra");
  if (extra) json_object_update(ctx, extra);
  char* text = json_dumps(ctx, JSON_PRESERVE_ORDER);
  json_decref(ctx);
  return text;
}

static int rendered_total, refused_total;

/* Templates that print strftime_now("%d %B %Y") (SmolLM3) rendered on the device's day; expected.json
 * records that day ("today"), and it is replaced by the local day before comparing. */
static char* with_today(const char* expected, const char* device_today) {
  char local[64];
  time_t now = time(NULL);
  struct tm tm_now;
  localtime_r(&now, &tm_now);
  strftime(local, sizeof local, "%d %B %Y", &tm_now);
  size_t n = strlen(expected), dn = device_today ? strlen(device_today) : 0, ln = strlen(local);
  char* out = malloc(n * 2 + 64);
  size_t k = 0;
  for (size_t i = 0; i < n;) {
    if (dn && !strncmp(expected + i, device_today, dn) && k + ln < n * 2 + 64) {
      memcpy(out + k, local, ln);
      k += ln;
      i += dn;
    } else {
      out[k++] = expected[i++];
    }
  }
  out[k] = 0;
  return out;
}

TEST(test_real_templates_match_transformers_byte_for_byte) {
  json_t* spec = load_fixture("cases.json");
  json_t* expected = load_fixture("expected.json");
  CHECK(spec && expected);
  if (!spec || !expected) goto done;
  json_t* results = json_object_get(expected, "results");
  const char* device_today = json_string_value(json_object_get(expected, "today"));
  json_t* cases = json_object_get(spec, "cases");
  const char* name;
  json_t* tokens;
  json_object_foreach(json_object_get(spec, "templates"), name, tokens) {
    char file[256];
    snprintf(file, sizeof file, "%s.jinja", name);
    char* source = read_text(file);
    CHECK_MSG(source != NULL, "missing %s", file);
    if (!source) continue;
    mlxc_template* tmpl = NULL;
    char* err = NULL;
    int rc = mlxc_template_compile(&tmpl, source, &err);
    CHECK_MSG(rc == 0, "%s does not compile: %s", name, err ? err : "?");
    free(err);
    json_t* per_case = json_object_get(results, name);
    int rendered = 0;
    for (size_t i = 0; tmpl && i < json_array_size(cases); i++) {
      json_t* c = json_array_get(cases, i);
      json_t* want = json_array_get(per_case, i);
      char* ctx = context_json(tokens, c);
      char* out = NULL;
      int status = mlxc_template_render(&out, tmpl, ctx, NULL);
      const char* case_name = json_string_value(json_object_get(c, "name"));
      json_t* want_out = json_object_get(want, "output");
      if (want_out) {
        CHECK_MSG(status == 0, "%s/%s failed: %s", name, case_name, mlxc_last_error());
        if (status == 0) {
          char* want_text = with_today(json_string_value(want_out), device_today);
          CHECK_MSG(!strcmp(out, want_text), "%s/%s differs:\n--- got\n%s\n--- expected\n%s", name, case_name, out,
                    want_text);
          if (!strcmp(out, want_text)) rendered++;
          free(want_text);
        }
      } else {
        CHECK_MSG(status != 0, "%s/%s should fail like transformers (%s)", name, case_name,
                  json_string_value(json_object_get(want, "error")));
        if (status != 0) refused_total++;
      }
      free(out);
      free(ctx);
    }
    CHECK_MSG(rendered >= 10, "%s: only %d conversations rendered", name, rendered);
    rendered_total += rendered;
    mlxc_template_free(tmpl);
    free(source);
  }
done:
  json_decref(spec);
  json_decref(expected);
}

TEST(test_apply_template_matches_render) {
  char* source = read_text("qwen2.5.jinja");
  CHECK(source != NULL);
  if (!source) return;
  char* out = NULL;
  int rc = mlxc_chat_apply_template(&out, source, "[{\"role\": \"user\", \"content\": \"Hello!\"}]", NULL, 1,
                                    "{\"eos_token\": \"<|im_end|>\"}");
  CHECK_EQ_INT(rc, 0);
  /* transformers' rendering of the single_user case (expected.json). */
  CHECK_STR(out,
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
            "<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n");
  free(out);
  free(source);
}

int main(void) {
  mlxc_set_errors_quiet(1);
  RUN(test_real_templates_match_transformers_byte_for_byte);
  RUN(test_apply_template_matches_render);
  printf("%d conversations byte-identical to transformers, %d refusals reproduced\n", rendered_total, refused_total);
  return TEST_SUMMARY();
}
