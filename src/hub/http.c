/* libcurl transfers for the hub client (http.h): headers parsed as they arrive, bodies into memory
 * or into a file at a resume offset. */
#include "hub/http.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define MAX_MEMORY_BODY (64u << 20) /* API answers are kilobytes; refuse anything absurd */
#define CONNECT_TIMEOUT_S 10L
#define STALL_SECONDS 60L           /* abort a transfer that moves no byte for this long */

/* curl_global_init is not thread-safe; run it once for the process (it is never undone). */
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_status;
static void curl_init(void) { curl_init_status = curl_global_init(CURL_GLOBAL_DEFAULT); }

typedef struct {
  hub_http_response* response;
  strbuf* body;        /* memory target, or NULL */
  int fd;              /* file target, or -1 */
  int64_t offset;      /* requested start of the body */
  int64_t range_start; /* Content-Range start of the current response, -1 if none */
  int64_t base;        /* where the current response's body begins in the file */
  bool positioned;     /* fd placed for the current response */
  const hub_http_progress* progress;
  uint64_t last_done;
} transfer;

static bool is_success(long status) { return status >= 200 && status < 300; }

static void copy_trimmed(char* dst, size_t cap, const char* src, size_t n) {
  while (n && (*src == ' ' || *src == '\t')) src++, n--;
  while (n && (src[n - 1] == '\r' || src[n - 1] == '\n' || src[n - 1] == ' ')) n--;
  if (n >= cap) n = cap - 1;
  memcpy(dst, src, n);
  dst[n] = '\0';
}

/* ETags come as "abc", W/"abc" or abc. */
static void copy_etag(char* dst, size_t cap, const char* value, size_t n) {
  copy_trimmed(dst, cap, value, n);
  char* s = dst;
  if (strncmp(s, "W/", 2) == 0) s += 2;
  size_t len = strlen(s);
  if (len >= 2 && s[0] == '"' && s[len - 1] == '"') {
    s++;
    len -= 2;
  }
  memmove(dst, s, len);
  dst[len] = '\0';
}

/* A new status line (after a redirect) starts a new set of headers. */
static void start_response(transfer* t, const char* line) {
  hub_http_response* r = t->response;
  long status = 0;
  const char* space = strchr(line, ' ');
  if (space) status = strtol(space + 1, NULL, 10);
  r->status = status;
  r->etag[0] = r->commit[0] = r->error_code[0] = r->error_message[0] = '\0';
  r->size = -1;
  t->range_start = -1;
  t->positioned = false;
}

static size_t on_header(char* data, size_t size, size_t count, void* user) {
  transfer* t = user;
  hub_http_response* r = t->response;
  size_t n = size * count;
  if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
    start_response(t, data);
    return n;
  }
  const char* colon = memchr(data, ':', n);
  if (!colon) return n;
  size_t name_n = (size_t)(colon - data);
  const char* value = colon + 1;
  size_t value_n = n - name_n - 1;
  char text[64];
#define HEADER_IS(name) (name_n == strlen(name) && strncasecmp(data, name, name_n) == 0)
  if (HEADER_IS("x-linked-etag")) {
    copy_etag(r->etag, sizeof r->etag, value, value_n);
  } else if (HEADER_IS("etag") && !r->etag[0]) {
    copy_etag(r->etag, sizeof r->etag, value, value_n);
  } else if (HEADER_IS("x-repo-commit")) {
    copy_trimmed(r->commit, sizeof r->commit, value, value_n);
  } else if (HEADER_IS("x-error-code")) {
    copy_trimmed(r->error_code, sizeof r->error_code, value, value_n);
  } else if (HEADER_IS("x-error-message")) {
    copy_trimmed(r->error_message, sizeof r->error_message, value, value_n);
  } else if (HEADER_IS("x-linked-size")) {
    copy_trimmed(text, sizeof text, value, value_n);
    r->size = strtoll(text, NULL, 10);
  } else if (HEADER_IS("content-length") && r->size < 0) {
    copy_trimmed(text, sizeof text, value, value_n);
    r->size = strtoll(text, NULL, 10);
  } else if (HEADER_IS("content-range")) {
    copy_trimmed(text, sizeof text, value, value_n); /* bytes START-END/TOTAL */
    if (strncmp(text, "bytes ", 6) == 0) t->range_start = strtoll(text + 6, NULL, 10);
  }
#undef HEADER_IS
  return n;
}

/* Places the file for the body of a successful response; false (with response->error) when the
 * server resumed somewhere else than asked. */
static bool position_file(transfer* t) {
  hub_http_response* r = t->response;
  if (r->status == 206) {
    if (t->range_start != t->offset) {
      snprintf(r->error, sizeof r->error, "the server resumed at byte %" PRId64 ", not at byte %" PRId64,
               t->range_start, t->offset);
      return false;
    }
    t->base = t->offset;
  } else {
    t->base = 0; /* the whole file: start over */
    if (ftruncate(t->fd, 0) != 0) {
      r->write_errno = errno;
      return false;
    }
  }
  if (lseek(t->fd, t->base, SEEK_SET) < 0) {
    r->write_errno = errno;
    return false;
  }
  t->positioned = true;
  return true;
}

static bool write_all(transfer* t, const char* data, size_t n) {
  while (n) {
    ssize_t w = write(t->fd, data, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      t->response->write_errno = w < 0 ? errno : EIO;
      return false;
    }
    data += w;
    n -= (size_t)w;
  }
  return true;
}

/* Returning less than n makes curl stop with CURLE_WRITE_ERROR. */
static size_t on_body(char* data, size_t size, size_t count, void* user) {
  transfer* t = user;
  hub_http_response* r = t->response;
  size_t n = size * count;
  if (!is_success(r->status)) {
    /* An error page: keep its start for the message unless the hub said it in a header. */
    if (!r->error_message[0]) copy_trimmed(r->error_message, sizeof r->error_message, data, n);
    return n;
  }
  if (t->body) {
    if (t->body->length + n > MAX_MEMORY_BODY) {
      snprintf(r->error, sizeof r->error, "the response is larger than %u bytes", MAX_MEMORY_BODY);
      return 0;
    }
    strbuf_append(t->body, data, n);
    return t->body->failed ? 0 : n;
  }
  if (!t->positioned && !position_file(t)) return 0;
  return write_all(t, data, n) ? n : 0;
}

static int on_progress(void* user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
  transfer* t = user;
  const hub_http_progress* p = t->progress;
  int64_t base = t->positioned ? t->base : t->offset;
  uint64_t done = (uint64_t)(base + dlnow);
  if (done == t->last_done || !is_success(t->response->status)) return 0;
  t->last_done = done;
  uint64_t total = p->total ? p->total : (dltotal ? (uint64_t)(base + dltotal) : 0);
  return p->callback(p->label, done, total, p->user_data);
}

static hub_http_result run(const char* url, const char* token, bool head, bool follow, transfer* t) {
  hub_http_response* r = t->response;
  memset(r, 0, sizeof *r);
  r->size = -1;
  t->range_start = -1;
  pthread_once(&curl_once, curl_init);
  if (curl_init_status != CURLE_OK) {
    snprintf(r->error, sizeof r->error, "libcurl did not initialise: %s", curl_easy_strerror(curl_init_status));
    return HUB_HTTP_NETWORK;
  }
  CURL* curl = curl_easy_init();
  struct curl_slist* headers = NULL;
  char* auth = NULL;
  hub_http_result result = HUB_HTTP_NOMEM;
  if (!curl) goto cleanup;
  if (token && *token) {
    size_t n = strlen(token) + 32;
    auth = malloc(n);
    if (!auth) goto cleanup;
    snprintf(auth, n, "Authorization: Bearer %s", token);
    struct curl_slist* grown = curl_slist_append(headers, auth);
    if (!grown) goto cleanup;
    headers = grown;
  }
  char range[64];
  if (t->fd >= 0 && t->offset > 0) {
    snprintf(range, sizeof range, "%" PRId64 "-", t->offset);
    curl_easy_setopt(curl, CURLOPT_RANGE, range);
  }
  char curl_error[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(curl, CURLOPT_URL, url);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "mlxc/" MLXC_VERSION_STRING " (huggingface_hub-compatible)");
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, curl_error);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_S);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, STALL_SECONDS);
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, follow ? 1L : 0L);
  curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 10L);
#if LIBCURL_VERSION_NUM >= 0x075500
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#endif
  curl_easy_setopt(curl, CURLOPT_NOBODY, head ? 1L : 0L);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, t);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, t);
  if (t->progress && t->progress->callback) {
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, t);
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  }
  CURLcode code = curl_easy_perform(curl);
  if (code == CURLE_OK) {
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r->status);
    result = HUB_HTTP_DONE;
  } else if (code == CURLE_WRITE_ERROR && t->body && t->body->failed) {
    result = HUB_HTTP_NOMEM;
  } else if (code == CURLE_WRITE_ERROR && (r->write_errno || r->error[0])) {
    if (r->write_errno) snprintf(r->error, sizeof r->error, "%s", strerror(r->write_errno));
    result = HUB_HTTP_WRITE;
  } else if (code == CURLE_ABORTED_BY_CALLBACK) {
    snprintf(r->error, sizeof r->error, "cancelled");
    result = HUB_HTTP_CANCELLED;
  } else if (code == CURLE_OUT_OF_MEMORY) {
    result = HUB_HTTP_NOMEM;
  } else {
    snprintf(r->error, sizeof r->error, "%s%s%s", curl_easy_strerror(code), curl_error[0] ? ": " : "", curl_error);
    size_t len = strlen(r->error);
    if (len && r->error[len - 1] == '\n') r->error[len - 1] = '\0';
    result = HUB_HTTP_NETWORK;
  }
cleanup:
  if (result == HUB_HTTP_NOMEM && !r->error[0]) snprintf(r->error, sizeof r->error, "out of memory");
  curl_slist_free_all(headers);
  free(auth);
  if (curl) curl_easy_cleanup(curl);
  return result;
}

hub_http_result hub_http_get(const char* url, const char* token, strbuf* body, hub_http_response* response) {
  transfer t = {.response = response, .body = body, .fd = -1};
  return run(url, token, false, true, &t);
}

hub_http_result hub_http_head(const char* url, const char* token, hub_http_response* response) {
  transfer t = {.response = response, .fd = -1};
  return run(url, token, true, false, &t);
}

hub_http_result hub_http_download(const char* url, const char* token, int fd, int64_t offset,
                                  const hub_http_progress* progress, hub_http_response* response) {
  transfer t = {.response = response, .fd = fd, .offset = offset, .progress = progress};
  return run(url, token, false, true, &t);
}
