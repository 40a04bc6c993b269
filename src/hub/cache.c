/* The huggingface_hub cache layout on disk: blobs downloaded whole (resumed, locked against other
 * processes, renamed into place), snapshot symlinks, refs. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hub/hub_internal.h"
#include "util/error.h"

#define DOWNLOAD_ATTEMPTS 4         /* an interrupted transfer is resumed this many times in all */
#define RETRY_DELAY_MS 250          /* times the attempt number */

bool hub_is_safe_name(const char* name) {
  if (!name[0] || strcmp(name, ".") == 0 || strcmp(name, "..") == 0) return false;
  for (const char* c = name; *c; c++) {
    bool ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '.' || *c == '_' || *c == '-';
    if (!ok) return false;
  }
  return true;
}

char* hub_format(const char* fmt, ...) {
  va_list args;
  va_start(args, fmt);
  char* out = NULL;
  int n = vasprintf(&out, fmt, args);
  va_end(args);
  if (n < 0) {
    util_error("hub: out of memory");
    return NULL;
  }
  return out;
}

static bool exists(const char* path) {
  struct stat st;
  return stat(path, &st) == 0;
}

int hub_mkdirs(const char* path) {
  char* copy = strdup(path);
  if (!copy) return util_error("hub: out of memory");
  int status = 0;
  for (char* p = copy + 1;; p++) {
    if (*p != '/' && *p != '\0') continue;
    char saved = *p;
    *p = '\0';
    if (mkdir(copy, 0755) != 0 && errno != EEXIST) {
      status = util_error("cannot create the folder %s: %s", copy, strerror(errno));
      break;
    }
    *p = saved;
    if (!saved) break;
  }
  free(copy);
  return status;
}

/* The parent folder of path, created. */
static int make_parent(const char* path) {
  char* parent = strdup(path);
  if (!parent) return util_error("hub: out of memory");
  char* slash = strrchr(parent, '/');
  int status = 0;
  if (slash && slash != parent) {
    *slash = '\0';
    status = hub_mkdirs(parent);
  }
  free(parent);
  return status;
}

bool hub_cache_read_ref(const char* repo_dir, const char* revision, char* commit, size_t cap) {
  char* path = hub_format("%s/refs/%s", repo_dir, revision);
  if (!path) return false;
  FILE* f = fopen(path, "r");
  free(path);
  if (!f) return false;
  bool ok = fgets(commit, (int)cap, f) != NULL;
  fclose(f);
  if (!ok) return false;
  commit[strcspn(commit, " \r\n\t")] = '\0';
  return hub_is_safe_name(commit);
}

/* A name beside path no other thread or process uses, for writing before a rename. */
static char* temporary_name(const char* path) {
  static atomic_uint counter;
  return hub_format("%s.tmp.%ld.%u", path, (long)getpid(), atomic_fetch_add(&counter, 1));
}

/* Writes `text` to path through path.tmp and a rename, so a reader never sees half of it. */
static int write_atomically(const char* path, const char* text) {
  int status = 0;
  char* tmp = temporary_name(path);
  if (!tmp) return 1;
  FILE* f = fopen(tmp, "w");
  REQUIRE(f, "cannot write %s: %s", tmp, strerror(errno));
  bool written = fputs(text, f) >= 0;
  written = (fclose(f) == 0) && written;
  if (!written) {
    status = util_error("cannot write %s: %s", tmp, strerror(errno));
    unlink(tmp);
    goto cleanup;
  }
  if (rename(tmp, path) != 0) {
    status = util_error("cannot rename %s to %s: %s", tmp, path, strerror(errno));
    unlink(tmp);
  }
cleanup:
  free(tmp);
  return status;
}

int hub_cache_write_ref(const char* repo_dir, const char* revision, const char* commit) {
  int status = 0;
  char* path = hub_format("%s/refs/%s", repo_dir, revision);
  if (!path) return 1;
  TRY(make_parent(path));
  TRY(write_atomically(path, commit));
cleanup:
  free(path);
  return status;
}

int hub_cache_link(const char* repo_dir, const char* commit, const char* file, const char* etag) {
  int status = 0;
  char *pointer = NULL, *tmp = NULL;
  strbuf target = {0};
  pointer = hub_format("%s/snapshots/%s/%s", repo_dir, commit, file);
  tmp = pointer ? temporary_name(pointer) : NULL;
  REQUIRE(tmp, "hub: out of memory");
  /* Relative, as huggingface_hub writes it: up out of the file's folders, the commit and
   * snapshots/ (file names are checked: no "." or ".." components). */
  for (const char* c = file; *c; c++)
    if (*c == '/') strbuf_puts(&target, "../");
  strbuf_printf(&target, "../../blobs/%s", etag);
  REQUIRE(!target.failed, "hub: out of memory");
  TRY(make_parent(pointer));
  REQUIRE(symlink(target.data, tmp) == 0, "cannot create the link %s: %s", tmp, strerror(errno));
  if (rename(tmp, pointer) != 0) {
    status = util_error("cannot rename %s to %s: %s", tmp, pointer, strerror(errno));
    unlink(tmp);
  }
cleanup:
  strbuf_free(&target);
  free(tmp);
  free(pointer);
  return status;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* Transfers into fd until it holds `size` bytes (when known) or the attempts run out. */
static int download_into(hub_request* rq, const char* file, const char* url, int fd, int64_t size,
                         const char* incomplete) {
  hub_http_progress progress = {rq->on_progress, rq->user_data, file, size > 0 ? (uint64_t)size : 0};
  hub_http_response response;
  char what[PATH_MAX + 64];
  snprintf(what, sizeof what, "downloading %s from", file);
  for (int attempt = 1;; attempt++) {
    struct stat st;
    if (fstat(fd, &st) != 0) return util_error("cannot read %s: %s", incomplete, strerror(errno));
    int64_t offset = st.st_size;
    if (size >= 0 && offset == size) return 0;  /* an earlier attempt got it all */
    if (size >= 0 && offset > size) {           /* not this file: start over */
      if (ftruncate(fd, 0) != 0) return util_error("cannot truncate %s: %s", incomplete, strerror(errno));
      offset = 0;
    }
    hub_http_result result = hub_http_download(url, rq->token, fd, offset, &progress, &response);
    if (result == HUB_HTTP_DONE && response.status == 416 && offset > 0) {
      /* The range is past the end: what is on disk is not a prefix of this file. */
      if (ftruncate(fd, 0) != 0) return util_error("cannot truncate %s: %s", incomplete, strerror(errno));
      if (attempt < DOWNLOAD_ATTEMPTS) continue;
    }
    if (result == HUB_HTTP_DONE && response.status >= 200 && response.status < 300) {
      if (size < 0) return 0;
      if (fstat(fd, &st) != 0) return util_error("cannot read %s: %s", incomplete, strerror(errno));
      if (st.st_size == size) return 0;
      snprintf(response.error, sizeof response.error, "got %lld of %lld bytes", (long long)st.st_size,
               (long long)size);
      result = HUB_HTTP_NETWORK;
    }
    if (result == HUB_HTTP_WRITE) {
      return util_error("cannot write %s while downloading %s of '%s': %s", incomplete, file, rq->repo_id,
                        response.error);
    }
    if (result == HUB_HTTP_NETWORK && attempt < DOWNLOAD_ATTEMPTS) {
      sleep_ms(RETRY_DELAY_MS * attempt);
      continue;
    }
    if (result == HUB_HTTP_NETWORK) {
      return util_error("downloading %s of '%s' was interrupted %d times (%s); the partial file is kept "
                        "and the next attempt resumes it", file, rq->repo_id, DOWNLOAD_ATTEMPTS, response.error);
    }
    return hub_report_http(rq, what, result, &response);
  }
}

int hub_cache_fetch_blob(hub_request* request, const char* file, const char* url, const char* etag,
                         int64_t size) {
  int status = 0;
  int fd = -1;
  char *blobs = NULL, *blob = NULL, *incomplete = NULL;
  blobs = hub_format("%s/blobs", request->repo_dir);
  blob = blobs ? hub_format("%s/%s", blobs, etag) : NULL;
  incomplete = blob ? hub_format("%s.incomplete", blob) : NULL;
  REQUIRE(incomplete, "hub: out of memory");
  if (exists(blob)) goto cleanup;
  TRY(hub_mkdirs(blobs));
  fd = open(incomplete, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  REQUIRE(fd >= 0, "cannot create %s: %s", incomplete, strerror(errno));
  /* Another process downloading the same blob holds the lock; when it is released the blob is
   * either complete (nothing left to do) or partial (resumed here). */
  REQUIRE(flock(fd, LOCK_EX) == 0, "cannot lock %s: %s", incomplete, strerror(errno));
  if (exists(blob)) goto cleanup;
  TRY(download_into(request, file, url, fd, size, incomplete));
  REQUIRE(fsync(fd) == 0, "cannot write %s: %s", incomplete, strerror(errno));
  REQUIRE(rename(incomplete, blob) == 0, "cannot rename %s to %s: %s", incomplete, blob, strerror(errno));
cleanup:
  if (fd >= 0) close(fd);
  free(incomplete);
  free(blob);
  free(blobs);
  return status;
}
