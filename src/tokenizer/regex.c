/* Regular expressions for Split, Replace and the GPT-2 byte-level pattern: PCRE2 in UTF + UCP
 * mode, JIT-compiled when the platform allows. tokenizers uses Oniguruma, whose \s also matches
 * U+0085 (NEL); PCRE2's does not, so \s and \S are widened when the pattern is compiled. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/internal.h"
#include "util/error.h"

struct tok_regex {
  pcre2_code* code;
};

/* Per-thread match state: match data for one pair, a JIT stack big enough for long inputs. */
typedef struct {
  pcre2_match_data* data;
  pcre2_match_context* context;
  pcre2_jit_stack* stack;
} thread_state;

static pthread_key_t state_key;
static pthread_once_t state_once = PTHREAD_ONCE_INIT;
static _Thread_local thread_state* state;

static void state_free(void* p) {
  thread_state* s = p;
  if (!s) return;
  pcre2_match_data_free(s->data);
  pcre2_match_context_free(s->context);
  pcre2_jit_stack_free(s->stack);
  free(s);
}

static void state_key_init(void) { pthread_key_create(&state_key, state_free); }

static thread_state* get_state(void) {
  if (state) return state;
  pthread_once(&state_once, state_key_init);
  thread_state* s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->data = pcre2_match_data_create(1, NULL);
  s->context = pcre2_match_context_create(NULL);
  s->stack = pcre2_jit_stack_create(32 * 1024, 4 * 1024 * 1024, NULL);
  if (!s->data || !s->context) {
    state_free(s);
    return NULL;
  }
  if (s->stack) pcre2_jit_stack_assign(s->context, NULL, s->stack);
  pthread_setspecific(state_key, s);
  state = s;
  return s;
}

#define WORD_CLASS "\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\p{Join_Control}"

/* Rewrites \s as [\s\x{85}] (inside a class: \s\x{85}) and \S as [^\s\x{85}]; \w and \W as
 * Unicode's word class (UTS #18: alphabetic, marks, decimal digits, connector punctuation, join
 * controls), which Oniguruma and Rust's regex use and PCRE2's \w (letters, numbers, _) is not. */
static char* widen_space_classes(const char* p, size_t n) {
  char* out = malloc(n * 32 + 1); /* \W (2 bytes) becomes 52 bytes */
  if (!out) return NULL;
  size_t o = 0;
  bool in_class = false;
  for (size_t i = 0; i < n; i++) {
    char c = p[i];
    if (c == '\\' && i + 1 < n) {
      char e = p[i + 1];
      const char* rep = NULL;
      if (e == 's') rep = in_class ? "\\s\\x{85}" : "[\\s\\x{85}]";
      else if (e == 'S' && !in_class) rep = "[^\\s\\x{85}]";
      else if (e == 'w') rep = in_class ? WORD_CLASS : "[" WORD_CLASS "]";
      else if (e == 'W' && !in_class) rep = "[^" WORD_CLASS "]";
      if (rep) {
        size_t k = strlen(rep);
        memcpy(out + o, rep, k);
        o += k;
      } else {
        out[o++] = c;
        out[o++] = e;
      }
      i++;
      continue;
    }
    if (c == '[' && !in_class) {
      in_class = true;
      out[o++] = c;
      if (i + 1 < n && p[i + 1] == '^') out[o++] = p[++i];
      if (i + 1 < n && p[i + 1] == ']') out[o++] = p[++i];
      continue;
    }
    if (c == ']' && in_class) in_class = false;
    out[o++] = c;
  }
  out[o] = '\0';
  return out;
}

int tok_regex_compile(tok_regex** out, const char* pattern, size_t n, bool literal) {
  *out = NULL;
  char* widened = literal ? NULL : widen_space_classes(pattern, n);
  if (!literal && !widened) return tok_error("out of memory (regex)");
  int code;
  PCRE2_SIZE offset;
  uint32_t options = PCRE2_UTF | (literal ? PCRE2_LITERAL : PCRE2_UCP);
  pcre2_code* re = pcre2_compile((PCRE2_SPTR)(literal ? pattern : widened),
                                 literal ? n : PCRE2_ZERO_TERMINATED, options, &code, &offset, NULL);
  free(widened);
  if (!re) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(code, message, sizeof message);
    return tok_error("bad regex /%.*s/ at offset %zu: %s", (int)(n > 200 ? 200 : n), pattern,
                      (size_t)offset, (const char*)message);
  }
  pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* falls back to the interpreter when unavailable */
  tok_regex* r = malloc(sizeof *r);
  if (!r) {
    pcre2_code_free(re);
    return tok_error("out of memory (regex)");
  }
  r->code = re;
  *out = r;
  return 0;
}

void tok_regex_free(tok_regex* re) {
  if (!re) return;
  pcre2_code_free(re->code);
  free(re);
}

int tok_regex_find(const tok_regex* re, const char* s, size_t n, size_t start, size_t* ms, size_t* me) {
  thread_state* st = get_state();
  if (!st) return -tok_error("out of memory (regex match data)");
  int rc = pcre2_match(re->code, (PCRE2_SPTR)s, n, start, PCRE2_NO_UTF_CHECK, st->data, st->context);
  if (rc == PCRE2_ERROR_NOMATCH) return 0;
  if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
    rc = pcre2_match(re->code, (PCRE2_SPTR)s, n, start, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, st->data, st->context);
  if (rc < 0 && rc != PCRE2_ERROR_NOMATCH) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(rc, message, sizeof message);
    return -tok_error("regex match failed: %s", (const char*)message);
  }
  if (rc == PCRE2_ERROR_NOMATCH) return 0;
  PCRE2_SIZE* ov = pcre2_get_ovector_pointer(st->data);
  *ms = ov[0];
  *me = ov[1];
  return 1;
}
