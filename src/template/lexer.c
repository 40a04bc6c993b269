/* Jinja2's lexer for transformers' settings (trim_blocks, lstrip_blocks, no trailing newline). */
#include "template/lexer.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  tmpl_arena* arena;
  const char* src;
  size_t len, pos;
  int line;
  size_t line_start; /* offset of the current line's first byte, for columns */
  bool line_starting;
  tmpl_token* items;
  size_t count, cap;
  char balance[256]; /* expected closing brackets inside a tag */
  int depth;
  size_t cached_offset; /* line_at resumes from here: tokens come in order */
  int cached_line;
} lexer;

static int column_at(const lexer* lx, size_t offset) {
  /* Columns count code points from 1. */
  size_t start = offset;
  while (start > 0 && lx->src[start - 1] != '\n') start--;
  return (int)tmpl_utf8_count(lx->src + start, offset - start) + 1;
}

static int line_at(lexer* lx, size_t offset) {
  if (offset < lx->cached_offset) {
    lx->cached_offset = 0;
    lx->cached_line = 1;
  }
  for (size_t i = lx->cached_offset; i < offset; i++)
    if (lx->src[i] == '\n') lx->cached_line++;
  lx->cached_offset = offset;
  return lx->cached_line;
}

static _Noreturn void lex_fail(lexer* lx, size_t offset, const char* what) {
  tmpl_fail(lx->arena, line_at(lx, offset), column_at(lx, offset), "%s", what);
}

static tmpl_token* push(lexer* lx, tmpl_token_kind kind, size_t offset) {
  if (lx->count == lx->cap) {
    size_t cap = lx->cap ? lx->cap * 2 : 256;
    tmpl_token* items = tmpl_alloc(lx->arena, cap * sizeof(tmpl_token));
    if (lx->count) memcpy(items, lx->items, lx->count * sizeof(tmpl_token));
    lx->items = items;
    lx->cap = cap;
  }
  tmpl_token* t = &lx->items[lx->count++];
  memset(t, 0, sizeof *t);
  t->kind = kind;
  t->line = line_at(lx, offset);
  t->col = column_at(lx, offset);
  return t;
}

static bool is_space_byte(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

/* Python's str.rstrip(): drops trailing whitespace, including Unicode spaces. */
static size_t rstrip_len(const char* s, size_t len) {
  while (len > 0) {
    size_t start = len - 1;
    while (start > 0 && ((unsigned char)s[start] & 0xc0) == 0x80) start--;
    size_t pos = start;
    uint32_t cp = tmpl_utf8_next(s, len, &pos);
    if (!tmpl_py_isspace(cp)) break;
    len = start;
  }
  return len;
}

static size_t skip_space(const char* s, size_t len, size_t pos) {
  while (pos < len) {
    size_t next = pos;
    uint32_t cp = tmpl_utf8_next(s, len, &next);
    if (!tmpl_py_isspace(cp)) break;
    pos = next;
  }
  return pos;
}

/* Emits the text before a tag, applying '-' stripping or lstrip_blocks ('+' disables it). */
static void emit_text(lexer* lx, size_t start, size_t end, char sign, bool lstrip_applies) {
  size_t len = end - start;
  const char* text = lx->src + start;
  if (sign == '-') {
    len = rstrip_len(text, len);
  } else if (sign != '+' && lstrip_applies) {
    size_t l_pos = 0;
    for (size_t i = len; i > 0; i--)
      if (text[i - 1] == '\n') {
        l_pos = i;
        break;
      }
    if ((l_pos > 0 || lx->line_starting) && l_pos < len) {
      bool only_space = true;
      size_t pos = l_pos;
      while (pos < len) {
        uint32_t cp = tmpl_utf8_next(text, len, &pos);
        if (!tmpl_py_isspace(cp)) only_space = false;
      }
      if (only_space) len = l_pos;
    }
  }
  if (len) {
    tmpl_token* t = push(lx, TK_TEXT, start);
    t->value = tv_string(lx->arena, text, len);
  }
}

/* Finds the earliest "{{", "{%" or "{#" at or after pos; returns len when none. */
static size_t find_tag(const lexer* lx, size_t pos) {
  for (size_t i = pos; i + 1 < lx->len; i++)
    if (lx->src[i] == '{' && (lx->src[i + 1] == '{' || lx->src[i + 1] == '%' || lx->src[i + 1] == '#')) return i;
  return lx->len;
}

/* Matches "{%(-|+|)\s*NAME\s*(-%}\s*|+%}|%}\n?)" at pos (NAME is raw or endraw). Returns the end
 * offset or 0; *sign gets the opening sign, *trailing_newline_ok whether trim_blocks applies. */
static size_t match_raw_tag(const lexer* lx, size_t pos, const char* name, char* sign, bool trim) {
  const char* s = lx->src;
  if (pos + 2 > lx->len || s[pos] != '{' || s[pos + 1] != '%') return 0;
  size_t p = pos + 2;
  *sign = 0;
  if (p < lx->len && (s[p] == '-' || s[p] == '+')) *sign = s[p++];
  while (p < lx->len && is_space_byte(s[p])) p++;
  size_t n = strlen(name);
  if (p + n > lx->len || memcmp(s + p, name, n)) return 0;
  p += n;
  while (p < lx->len && is_space_byte(s[p])) p++;
  if (p + 3 <= lx->len && s[p] == '-' && s[p + 1] == '%' && s[p + 2] == '}') return skip_space(s, lx->len, p + 3);
  if (trim && p + 3 <= lx->len && s[p] == '+' && s[p + 1] == '%' && s[p + 2] == '}') return p + 3;
  if (p + 2 <= lx->len && s[p] == '%' && s[p + 1] == '}') {
    p += 2;
    if (trim && p < lx->len && s[p] == '\n') p++;
    return p;
  }
  return 0;
}

static void lex_raw(lexer* lx, size_t content_start, size_t tag_pos) {
  for (size_t i = content_start; i + 1 < lx->len; i++) {
    char sign;
    size_t end = match_raw_tag(lx, i, "endraw", &sign, true);
    if (end) {
      emit_text(lx, content_start, i, sign, true);
      lx->line_starting = lx->src[end - 1] == '\n';
      lx->pos = end;
      return;
    }
  }
  lex_fail(lx, tag_pos, "missing end of raw directive");
}

static void lex_comment(lexer* lx, size_t body, size_t tag_pos) {
  const char* s = lx->src;
  for (size_t i = body; i + 1 < lx->len; i++) {
    if ((s[i] == '-' || s[i] == '+') && i + 2 < lx->len && s[i + 1] == '#' && s[i + 2] == '}') {
      lx->pos = s[i] == '-' ? skip_space(s, lx->len, i + 3) : i + 3;
      lx->line_starting = lx->src[lx->pos - 1] == '\n';
      return;
    }
    if (s[i] == '#' && s[i + 1] == '}') {
      size_t end = i + 2;
      if (end < lx->len && s[end] == '\n') end++;
      lx->pos = end;
      lx->line_starting = lx->src[end - 1] == '\n';
      return;
    }
  }
  lex_fail(lx, tag_pos, "missing end of comment tag");
}

static uint32_t hex_value(lexer* lx, const char* s, size_t n, size_t at) {
  uint32_t v = 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    int d = isdigit((unsigned char)c) ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
    if (d < 0) lex_fail(lx, at, "truncated \\x, \\u or \\U escape in string");
    v = v * 16 + (uint32_t)d;
  }
  return v;
}

/* Python's "unicode-escape" decoding of a string literal's body. */
static tmpl_value unescape(lexer* lx, size_t start, size_t end) {
  tmpl_buf buf;
  tmpl_buf_init(&buf, lx->arena, 0);
  const char* s = lx->src;
  for (size_t i = start; i < end; i++) {
    if (s[i] != '\\' || i + 1 >= end) {
      tmpl_buf_putc(&buf, s[i]);
      continue;
    }
    char c = s[++i];
    char utf8[4];
    switch (c) {
      case '\n': break;
      case '\\': tmpl_buf_putc(&buf, '\\'); break;
      case '\'': tmpl_buf_putc(&buf, '\''); break;
      case '"': tmpl_buf_putc(&buf, '"'); break;
      case 'a': tmpl_buf_putc(&buf, '\a'); break;
      case 'b': tmpl_buf_putc(&buf, '\b'); break;
      case 'f': tmpl_buf_putc(&buf, '\f'); break;
      case 'n': tmpl_buf_putc(&buf, '\n'); break;
      case 'r': tmpl_buf_putc(&buf, '\r'); break;
      case 't': tmpl_buf_putc(&buf, '\t'); break;
      case 'v': tmpl_buf_putc(&buf, '\v'); break;
      case 'x':
      case 'u':
      case 'U': {
        size_t n = c == 'x' ? 2 : c == 'u' ? 4 : 8;
        if (i + n >= end) lex_fail(lx, i, "truncated \\x, \\u or \\U escape in string");
        uint32_t cp = hex_value(lx, s + i + 1, n, i);
        if (cp > 0x10ffff) lex_fail(lx, i, "illegal Unicode character in string escape");
        tmpl_buf_append(&buf, utf8, tmpl_utf8_encode(cp, utf8));
        i += n;
        break;
      }
      default:
        if (c >= '0' && c <= '7') {
          uint32_t cp = (uint32_t)(c - '0');
          for (int k = 0; k < 2 && i + 1 < end && s[i + 1] >= '0' && s[i + 1] <= '7'; k++) cp = cp * 8 + (uint32_t)(s[++i] - '0');
          tmpl_buf_append(&buf, utf8, tmpl_utf8_encode(cp, utf8));
        } else {
          tmpl_buf_putc(&buf, '\\');
          tmpl_buf_putc(&buf, c);
        }
    }
  }
  return tv_string(lx->arena, buf.data ? buf.data : "", buf.len);
}

static bool is_name_start(unsigned char c) { return isalpha(c) || c == '_' || c >= 0x80; }
static bool is_name_char(unsigned char c) { return isalnum(c) || c == '_' || c >= 0x80; }

/* Digits with single underscores between them: \d+(_\d+)* */
static size_t scan_digits(const char* s, size_t len, size_t p) {
  if (p >= len || !isdigit((unsigned char)s[p])) return p;
  while (p < len && isdigit((unsigned char)s[p])) p++;
  while (p + 1 < len && s[p] == '_' && isdigit((unsigned char)s[p + 1])) {
    p++;
    while (p < len && isdigit((unsigned char)s[p])) p++;
  }
  return p;
}

static tmpl_value parse_number(lexer* lx, size_t start, size_t end, bool is_float) {
  char tmp[128];
  size_t n = 0;
  for (size_t i = start; i < end && n + 1 < sizeof tmp; i++)
    if (lx->src[i] != '_') tmp[n++] = lx->src[i];
  tmp[n] = '\0';
  if (end - start >= sizeof tmp) lex_fail(lx, start, "number literal too long");
  if (is_float) return tv_float(strtod(tmp, NULL));
  char* stop;
  errno = 0;
  long long v = strtoll(tmp, &stop, 10);
  if (errno) lex_fail(lx, start, "integer literal too large");
  return tv_int(v);
}

static const char* const operators[] = {"//", "**", "==", "!=", ">=", "<=", "+", "-", "/", "*", "%", "~", "[", "]",
                                        "(", ")", "{", "}", ">", "<", "=", ".", ":", "|", ",", ";"};

/* Tokens inside {{ }} or {% %} up to the closing tag; returns after it. */
static void lex_tag(lexer* lx, bool is_block, size_t tag_pos) {
  const char* s = lx->src;
  lx->depth = 0;
  for (;;) {
    size_t p = lx->pos;
    while (p < lx->len && is_space_byte(s[p])) p++;
    lx->pos = p;
    if (p >= lx->len) lex_fail(lx, tag_pos, is_block ? "unexpected end of template, expected '%}'" : "unexpected end of template, expected '}}'");
    if (lx->depth == 0) {
      char closer = is_block ? '%' : '}';
      if (s[p] == '-' && p + 2 < lx->len && s[p + 1] == closer && s[p + 2] == '}') {
        push(lx, is_block ? TK_BLOCK_END : TK_VAR_END, p);
        lx->pos = skip_space(s, lx->len, p + 3);
        lx->line_starting = s[lx->pos - 1] == '\n';
        return;
      }
      if (is_block && s[p] == '+' && p + 2 < lx->len && s[p + 1] == '%' && s[p + 2] == '}') {
        push(lx, TK_BLOCK_END, p);
        lx->pos = p + 3;
        lx->line_starting = false;
        return;
      }
      if (s[p] == closer && p + 1 < lx->len && s[p + 1] == '}') {
        push(lx, is_block ? TK_BLOCK_END : TK_VAR_END, p);
        lx->pos = p + 2;
        if (is_block && lx->pos < lx->len && s[lx->pos] == '\n') lx->pos++;
        lx->line_starting = s[lx->pos - 1] == '\n';
        return;
      }
    }
    unsigned char c = (unsigned char)s[p];
    if (isdigit(c)) {
      size_t int_end = scan_digits(s, lx->len, p);
      size_t q = int_end;
      bool is_float = false;
      if (q + 1 < lx->len && s[q] == '.' && isdigit((unsigned char)s[q + 1])) {
        q = scan_digits(s, lx->len, q + 1);
        is_float = true;
      }
      if (q < lx->len && (s[q] == 'e' || s[q] == 'E')) {
        size_t e = q + 1;
        if (e < lx->len && (s[e] == '+' || s[e] == '-')) e++;
        size_t e_end = scan_digits(s, lx->len, e);
        if (e_end > e) {
          q = e_end;
          is_float = true;
        }
      }
      tmpl_token* t = push(lx, is_float ? TK_FLOAT : TK_INT, p);
      t->value = parse_number(lx, p, q, is_float);
      lx->pos = q;
    } else if (is_name_start(c)) {
      size_t q = p;
      while (q < lx->len && is_name_char((unsigned char)s[q])) q++;
      tmpl_token* t = push(lx, TK_NAME, p);
      t->text = tmpl_strndup(lx->arena, s + p, q - p);
      lx->pos = q;
    } else if (c == '\'' || c == '"') {
      size_t q = p + 1;
      while (q < lx->len && s[q] != (char)c) q += s[q] == '\\' && q + 1 < lx->len ? 2 : 1;
      if (q >= lx->len) lex_fail(lx, p, "unterminated string literal");
      tmpl_token* t = push(lx, TK_STRING, p);
      t->value = unescape(lx, p + 1, q);
      lx->pos = q + 1;
    } else {
      const char* op = NULL;
      for (size_t i = 0; i < sizeof operators / sizeof operators[0]; i++) {
        size_t n = strlen(operators[i]);
        if (p + n <= lx->len && !memcmp(s + p, operators[i], n)) {
          op = operators[i];
          break;
        }
      }
      if (!op) lex_fail(lx, p, "unexpected character in tag");
      if (op[0] == '(' || op[0] == '[' || op[0] == '{') {
        if (lx->depth >= (int)sizeof lx->balance) lex_fail(lx, p, "brackets nested too deeply");
        lx->balance[lx->depth++] = op[0] == '(' ? ')' : op[0] == '[' ? ']' : '}';
      } else if (op[0] == ')' || op[0] == ']' || op[0] == '}') {
        if (lx->depth == 0) lex_fail(lx, p, "unexpected closing bracket");
        if (lx->balance[--lx->depth] != op[0]) lex_fail(lx, p, "mismatched closing bracket");
      }
      tmpl_token* t = push(lx, TK_OP, p);
      t->text = op;
      lx->pos = p + strlen(op);
    }
  }
}

tmpl_tokens tmpl_lex(tmpl_arena* arena, const char* source, size_t len) {
  /* Newlines normalised to \n and one trailing newline dropped, as Jinja2 does. */
  char* src = tmpl_alloc(arena, len + 1);
  size_t n = 0;
  for (size_t i = 0; i < len; i++) {
    if (source[i] == '\r') {
      src[n++] = '\n';
      if (i + 1 < len && source[i + 1] == '\n') i++;
    } else {
      src[n++] = source[i];
    }
  }
  if (n > 0 && src[n - 1] == '\n') n--;
  src[n] = '\0';

  lexer lx = {.arena = arena, .src = src, .len = n, .line_starting = true, .cached_line = 1};
  while (lx.pos < lx.len) {
    size_t tag = find_tag(&lx, lx.pos);
    if (tag >= lx.len) {
      emit_text(&lx, lx.pos, lx.len, 0, false);
      break;
    }
    char kind = src[tag + 1];
    char sign = 0;
    size_t raw_end = match_raw_tag(&lx, tag, "raw", &sign, false);
    if (raw_end) {
      emit_text(&lx, lx.pos, tag, sign, true);
      lx.line_starting = src[raw_end - 1] == '\n';
      lex_raw(&lx, raw_end, tag);
      continue;
    }
    size_t body = tag + 2;
    sign = 0;
    if (body < lx.len && (src[body] == '-' || src[body] == '+')) sign = src[body++];
    emit_text(&lx, lx.pos, tag, sign, kind != '{');
    lx.line_starting = false;
    lx.pos = body;
    if (kind == '#') {
      lex_comment(&lx, body, tag);
    } else {
      push(&lx, kind == '%' ? TK_BLOCK_BEGIN : TK_VAR_BEGIN, tag);
      lex_tag(&lx, kind == '%', tag);
    }
  }
  push(&lx, TK_EOF, lx.len);
  return (tmpl_tokens){lx.items, lx.count};
}
