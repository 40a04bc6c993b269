/* Shared by the hub client's files: the resolved request, the cache (cache.c) and the default
 * progress bar (progress.c). */
#ifndef MLXC_HUB_INTERNAL_H
#define MLXC_HUB_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "hub/http.h"
#include "mlxc/hub.h"

/* The default progress bar's state: one line on stderr per file. */
typedef struct {
  double last_draw;  /* seconds (monotonic) of the last redraw */
  bool line_open;    /* a line without its newline yet */
} hub_bar;

/* One resolve, everything spelled out: parameters merged with the environment. All strings are
 * owned (freed by hub_request_free in hub.c). */
typedef struct {
  char* endpoint;    /* no trailing '/' */
  char* token;       /* NULL: none */
  char* repo_id;     /* org/name */
  char* revision;
  char* repo_dir;    /* {cache}/models--org--name */
  bool offline, quiet;
  mlxc_hub_progress_callback on_progress;
  void* user_data;
  hub_bar bar;
} hub_request;

/* A safe single path component for the cache (commit hashes, etags): [A-Za-z0-9._-], not "." or
 * "..", not empty. */
bool hub_is_safe_name(const char* name);

/* malloc'ed printf; NULL (reported) when out of memory. */
char* hub_format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

/* Creates `path` and its parents; 0, or 1 reported. */
int hub_mkdirs(const char* path);

/* The commit refs/{revision} names, into commit (cap bytes); false when there is none. */
bool hub_cache_read_ref(const char* repo_dir, const char* revision, char* commit, size_t cap);
/* Writes refs/{revision} atomically; 0, or 1 reported. */
int hub_cache_write_ref(const char* repo_dir, const char* revision, const char* commit);

/* Makes sure blobs/{etag} holds the whole file: nothing to do when it is there, else downloads
 * `url` into blobs/{etag}.incomplete (resuming what an earlier attempt left, retrying interrupted
 * transfers) and renames it into place. size: expected bytes, -1 unknown. 0, or 1 reported. */
int hub_cache_fetch_blob(hub_request* request, const char* file, const char* url, const char* etag,
                         int64_t size);
/* Points snapshots/{commit}/{file} at ../../blobs/{etag} (replacing what was there atomically). */
int hub_cache_link(const char* repo_dir, const char* commit, const char* file, const char* etag);

/* Reports an HTTP failure `what` ("listing the files of", "downloading config.json from") for the
 * request's repository, in words. Returns 1. */
int hub_report_http(const hub_request* request, const char* what, hub_http_result result,
                    const hub_http_response* response);

/* The default progress callback (user_data: a hub_bar). */
int hub_bar_progress(const char* file, uint64_t done, uint64_t total, void* user_data);
/* Ends the bar's open line, if any. */
void hub_bar_finish(hub_bar* bar);

#endif
