/* Look-ups in the generated case tables (unicode_case_table.c). */
#include "util/unicode_case.h"

static const ucase_simple_entry* find_simple(uint32_t cp) {
  size_t lo = 0, hi = ucase_simple_count;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (ucase_simple_table[mid].cp < cp) lo = mid + 1;
    else hi = mid;
  }
  return lo < ucase_simple_count && ucase_simple_table[lo].cp == cp ? &ucase_simple_table[lo] : 0;
}

uint32_t ucase_simple(uint32_t cp, ucase_kind kind) {
  const ucase_simple_entry* e = find_simple(cp);
  if (!e) return cp;
  return kind == UCASE_LOWER ? e->lower : kind == UCASE_UPPER ? e->upper : e->title;
}

size_t ucase_full(uint32_t cp, ucase_kind kind, uint32_t out[3]) {
  size_t lo = 0, hi = ucase_special_count;
  while (lo < hi) { /* sorted by (cp, kind) */
    size_t mid = (lo + hi) / 2;
    const ucase_special_entry* e = &ucase_special_table[mid];
    if (e->cp < cp || (e->cp == cp && e->kind < (uint8_t)kind)) lo = mid + 1;
    else hi = mid;
  }
  if (lo < ucase_special_count && ucase_special_table[lo].cp == cp && ucase_special_table[lo].kind == (uint8_t)kind) {
    const ucase_special_entry* e = &ucase_special_table[lo];
    for (size_t i = 0; i < e->n; i++) out[i] = e->cps[i];
    return e->n;
  }
  out[0] = ucase_simple(cp, kind);
  return 1;
}

size_t ucase_rust_lower(uint32_t cp, uint32_t out[3]) {
  size_t lo = 0, hi = ucase_rust_newer_lower_count;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (ucase_rust_newer_lower[mid][0] < cp) lo = mid + 1;
    else hi = mid;
  }
  if (lo < ucase_rust_newer_lower_count && ucase_rust_newer_lower[lo][0] == cp) {
    out[0] = ucase_rust_newer_lower[lo][1];
    return 1;
  }
  return ucase_full(cp, UCASE_LOWER, out);
}

static bool in_ranges(const ucase_range* r, size_t n, uint32_t cp) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (r[mid].hi < cp) lo = mid + 1;
    else hi = mid;
  }
  return lo < n && r[lo].lo <= cp;
}

bool ucase_is_cased(uint32_t cp) { return in_ranges(ucase_cased_ranges, ucase_cased_count, cp); }
bool ucase_is_case_ignorable(uint32_t cp) { return in_ranges(ucase_case_ignorable_ranges, ucase_case_ignorable_count, cp); }
bool ucase_is_lowercase(uint32_t cp) { return in_ranges(ucase_lowercase_ranges, ucase_lowercase_count, cp); }
bool ucase_is_uppercase(uint32_t cp) { return in_ranges(ucase_uppercase_ranges, ucase_uppercase_count, cp); }

uint32_t ucase_lower_sigma(const uint32_t* cps, size_t n, size_t i) {
  size_t j = i;
  while (j > 0 && ucase_is_case_ignorable(cps[j - 1])) j--;
  if (j == 0 || !ucase_is_cased(cps[j - 1])) return 0x3C3;
  for (j = i + 1; j < n && ucase_is_case_ignorable(cps[j]); j++) {
  }
  return j < n && ucase_is_cased(cps[j]) ? 0x3C3 : 0x3C2;
}
