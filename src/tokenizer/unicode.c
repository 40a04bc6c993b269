/* UTF-8 decoding and validation, character classes as Rust's char methods define them (through
 * utf8proc categories), and the GPT-2 byte-level alphabet. */
#include <string.h>
#include <utf8proc.h>

#include "tokenizer/internal.h"

/* Number of bytes of s that form the longest prefix of a valid sequence ("maximal subpart"),
 * and whether that prefix is a complete character. */
static size_t utf8_subpart(const uint8_t* s, size_t n, bool* complete) {
  *complete = false;
  uint8_t c = s[0];
  if (c < 0x80) {
    *complete = true;
    return 1;
  }
  size_t need;
  uint8_t lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) need = 1;
  else if (c == 0xE0) { need = 2; lo = 0xA0; }
  else if (c >= 0xE1 && c <= 0xEC) need = 2;
  else if (c == 0xED) { need = 2; hi = 0x9F; }
  else if (c >= 0xEE && c <= 0xEF) need = 2;
  else if (c == 0xF0) { need = 3; lo = 0x90; }
  else if (c >= 0xF1 && c <= 0xF3) need = 3;
  else if (c == 0xF4) { need = 3; hi = 0x8F; }
  else return 1;
  size_t i = 1;
  for (; i <= need; i++) {
    if (i >= n) return i;
    uint8_t b = s[i];
    if (i == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) return i;
  }
  *complete = true;
  return need + 1;
}

size_t tok_utf8_valid_prefix(const uint8_t* s, size_t n) {
  if (!n) return 0;
  if (s[0] < 0x80) return 1;
  bool complete;
  size_t k = utf8_subpart(s, n, &complete);
  return complete ? k : 0;
}

bool tok_utf8_valid(const char* s, size_t n) {
  const uint8_t* p = (const uint8_t*)s;
  size_t i = 0;
  while (i < n) {
    if (p[i] < 0x80) {
      i++;
      continue;
    }
    size_t k = tok_utf8_valid_prefix(p + i, n - i);
    if (!k) return false;
    i += k;
  }
  return true;
}

size_t tok_utf8_decode(const char* str, int32_t* cp) {
  const uint8_t* s = (const uint8_t*)str;
  if (s[0] < 0x80) {
    *cp = s[0];
    return 1;
  }
  if (s[0] < 0xE0) {
    *cp = ((s[0] & 0x1F) << 6) | (s[1] & 0x3F);
    return 2;
  }
  if (s[0] < 0xF0) {
    *cp = ((s[0] & 0x0F) << 12) | ((s[1] & 0x3F) << 6) | (s[2] & 0x3F);
    return 3;
  }
  *cp = ((s[0] & 0x07) << 18) | ((s[1] & 0x3F) << 12) | ((s[2] & 0x3F) << 6) | (s[3] & 0x3F);
  return 4;
}

size_t tok_utf8_encode(int32_t cp, char* out) {
  uint8_t* o = (uint8_t*)out;
  if (cp < 0x80) {
    o[0] = (uint8_t)cp;
    return 1;
  }
  if (cp < 0x800) {
    o[0] = (uint8_t)(0xC0 | (cp >> 6));
    o[1] = (uint8_t)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    o[0] = (uint8_t)(0xE0 | (cp >> 12));
    o[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    o[2] = (uint8_t)(0x80 | (cp & 0x3F));
    return 3;
  }
  o[0] = (uint8_t)(0xF0 | (cp >> 18));
  o[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
  o[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
  o[3] = (uint8_t)(0x80 | (cp & 0x3F));
  return 4;
}

void tok_append_lossy(strbuf* sb, const char* s, size_t n) {
  const uint8_t* p = (const uint8_t*)s;
  size_t i = 0, run = 0;
  while (i < n) {
    bool complete;
    size_t k = p[i] < 0x80 ? (complete = true, 1) : utf8_subpart(p + i, n - i, &complete);
    if (complete) {
      i += k;
      continue;
    }
    strbuf_append(sb, s + run, i - run);
    strbuf_append(sb, "\xEF\xBF\xBD", 3);
    i += k;
    run = i;
  }
  strbuf_append(sb, s + run, n - run);
}

bool tok_is_whitespace(int32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

static utf8proc_category_t category(int32_t c) { return utf8proc_category(c); }

bool tok_is_numeric(int32_t c) {
  utf8proc_category_t k = category(c);
  return k == UTF8PROC_CATEGORY_ND || k == UTF8PROC_CATEGORY_NL || k == UTF8PROC_CATEGORY_NO;
}

bool tok_is_word_char(int32_t c) {
  if (c == 0x200C || c == 0x200D) return true; /* Join_Control */
  utf8proc_category_t k = category(c);
  return (k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_LO) || k == UTF8PROC_CATEGORY_MN ||
         k == UTF8PROC_CATEGORY_MC || k == UTF8PROC_CATEGORY_ME || k == UTF8PROC_CATEGORY_ND ||
         k == UTF8PROC_CATEGORY_NL || k == UTF8PROC_CATEGORY_PC;
}

bool tok_is_punctuation(int32_t c) {
  if (c < 0x80) return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) ||
                       (c >= 0x7B && c <= 0x7E);
  utf8proc_category_t k = category(c);
  return k >= UTF8PROC_CATEGORY_PC && k <= UTF8PROC_CATEGORY_PO;
}

bool tok_is_control(int32_t c) {
  utf8proc_category_t k = category(c);
  return k == UTF8PROC_CATEGORY_CC || k == UTF8PROC_CATEGORY_CF || k == UTF8PROC_CATEGORY_CO ||
         k == UTF8PROC_CATEGORY_CS || k == UTF8PROC_CATEGORY_CN;
}

bool tok_is_mark_nonspacing(int32_t c) { return category(c) == UTF8PROC_CATEGORY_MN; }

bool tok_is_combining_mark(int32_t c) {
  utf8proc_category_t k = category(c);
  return k == UTF8PROC_CATEGORY_MN || k == UTF8PROC_CATEGORY_MC || k == UTF8PROC_CATEGORY_ME;
}

bool tok_is_chinese(int32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

/* GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves, the other 68 bytes are
 * moved to U+0100 and up, in byte order. */
static int32_t byte_to_cp(int b) {
  if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)) return b;
  int n = 0;
  for (int i = 0; i < b; i++)
    if (!((i >= 0x21 && i <= 0x7E) || (i >= 0xA1 && i <= 0xAC) || (i >= 0xAE && i <= 0xFF))) n++;
  return 256 + n;
}

#define B4(i) T(i), T(i + 1), T(i + 2), T(i + 3)
#define B16(i) B4(i), B4(i + 4), B4(i + 8), B4(i + 12)
#define B64(i) B16(i), B16(i + 16), B16(i + 32), B16(i + 48)
/* Filled on first use (see tok_byte_level_init below). */
static char byte_utf8_storage[256][3];
const char* const tok_byte_to_utf8[256] = {
#define T(i) byte_utf8_storage[i]
    B64(0), B64(64), B64(128), B64(192)
#undef T
};
uint8_t const tok_byte_to_utf8_len[256] = {
#define T(i) ((i) >= 0x21 && (i) <= 0x7E ? 1 : 2)
    B64(0), B64(64), B64(128), B64(192)
#undef T
};
static int16_t cp_to_byte[324];
static pthread_once_t byte_level_once = PTHREAD_ONCE_INIT;

static void byte_level_init(void) {
  memset(cp_to_byte, 0xFF, sizeof cp_to_byte);
  for (int b = 0; b < 256; b++) {
    int32_t cp = byte_to_cp(b);
    tok_utf8_encode(cp, byte_utf8_storage[b]);
    cp_to_byte[cp] = (int16_t)b;
  }
}

void tok_byte_level_init(void) { pthread_once(&byte_level_once, byte_level_init); }

int tok_utf8_to_byte(int32_t cp) {
  tok_byte_level_init();
  if (cp < 0 || cp >= (int32_t)(sizeof cp_to_byte / sizeof cp_to_byte[0])) return -1;
  return cp_to_byte[cp];
}
