/* A tiny test harness: CHECK macros, a per-file runner, and the closing "N passed, N failed" line.
 * Each tests/test_*.c defines its tests with TEST(name) and lists them in main() via RUN(name). */
#ifndef MLXC_TEST_UTIL_H
#define MLXC_TEST_UTIL_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_failed_checks_;
static int tests_passed_;
static int tests_failed_;

#define CHECK(cond)                                                         \
  do {                                                                      \
    if (!(cond)) {                                                          \
      fprintf(stderr, "  %s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      test_failed_checks_++;                                                \
    }                                                                       \
  } while (0)

#define CHECK_MSG(cond, ...)                                                \
  do {                                                                      \
    if (!(cond)) {                                                          \
      fprintf(stderr, "  %s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                                         \
      fprintf(stderr, "\n");                                                \
      test_failed_checks_++;                                                \
    }                                                                       \
  } while (0)

#define CHECK_EQ_INT(a, b)                                                  \
  do {                                                                      \
    long long va_ = (long long)(a), vb_ = (long long)(b);                   \
    if (va_ != vb_) {                                                       \
      fprintf(stderr, "  %s:%d: %s == %s failed: %lld != %lld\n", __FILE__, __LINE__, #a, #b, va_, vb_); \
      test_failed_checks_++;                                                \
    }                                                                       \
  } while (0)

#define CHECK_NEAR(a, b, tol)                                               \
  do {                                                                      \
    double va_ = (double)(a), vb_ = (double)(b);                            \
    if (!(fabs(va_ - vb_) <= (tol)) && !(isnan(va_) && isnan(vb_)) && va_ != vb_) { \
      fprintf(stderr, "  %s:%d: %s ~= %s failed: %.9g vs %.9g\n", __FILE__, __LINE__, #a, #b, va_, vb_); \
      test_failed_checks_++;                                                \
    }                                                                       \
  } while (0)

#define CHECK_STR(a, b)                                                     \
  do {                                                                      \
    const char *sa_ = (a), *sb_ = (b);                                      \
    if (!sa_ || !sb_ || strcmp(sa_, sb_) != 0) {                            \
      fprintf(stderr, "  %s:%d: %s == %s failed:\n    got:      \"%s\"\n    expected: \"%s\"\n", \
              __FILE__, __LINE__, #a, #b, sa_ ? sa_ : "(null)", sb_ ? sb_ : "(null)"); \
      test_failed_checks_++;                                                \
    }                                                                       \
  } while (0)

#define TEST(name) static void name(void)

#define RUN(name)                                                           \
  do {                                                                      \
    int before_ = test_failed_checks_;                                      \
    name();                                                                 \
    if (test_failed_checks_ == before_) {                                   \
      tests_passed_++;                                                      \
    } else {                                                                \
      tests_failed_++;                                                      \
      fprintf(stderr, "FAIL %s\n", #name);                                  \
    }                                                                       \
  } while (0)

/* Prints the closing line and returns the process exit status. */
#define TEST_SUMMARY()                                                      \
  (printf("%d passed, %d failed\n", tests_passed_, tests_failed_), tests_failed_ ? 1 : 0)

/* Skips the current test file with a message (exit code 77 is CTest's conventional skip). */
#define TEST_SKIP_ALL(...)                                                  \
  do {                                                                      \
    printf("SKIP: ");                                                       \
    printf(__VA_ARGS__);                                                    \
    printf("\n0 passed, 0 failed\n");                                       \
    return 0;                                                               \
  } while (0)

/* Path of a file in the source tree (tests run from the source directory). */
static inline const char* test_source_dir(void) {
  const char* d = getenv("MLXC_SOURCE_DIR");
  return d ? d : ".";
}

#endif
