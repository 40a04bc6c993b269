/* The hub client's HTTP through libcurl: small GETs into memory, HEADs for file metadata, and
 * downloads into a file that resume at an offset. No function here reports an error: each returns
 * what happened and the caller, which knows the repository and file, words the message. */
#ifndef MLXC_HUB_HTTP_H
#define MLXC_HUB_HTTP_H

#include <stdbool.h>
#include <stdint.h>

#include "mlxc/hub.h"
#include "util/strbuf.h"

typedef enum {
  HUB_HTTP_DONE = 0,   /* a response arrived (look at its status) */
  HUB_HTTP_NETWORK,    /* no complete response: connection, DNS, TLS, timeout, cut transfer */
  HUB_HTTP_WRITE,      /* the local file could not be written (write_errno) */
  HUB_HTTP_CANCELLED,  /* the progress callback asked to stop */
  HUB_HTTP_NOMEM,
} hub_http_result;

typedef struct {
  long status;             /* of the last response */
  char etag[128];          /* X-Linked-Etag, else ETag; quotes and W/ removed */
  char commit[128];        /* X-Repo-Commit */
  char error_code[64];     /* X-Error-Code (RepoNotFound, RevisionNotFound, EntryNotFound, ...) */
  char error_message[256]; /* X-Error-Message, else the start of an error response's body */
  int64_t size;            /* X-Linked-Size, else Content-Length; -1 when not given */
  int write_errno;         /* with HUB_HTTP_WRITE: errno of the failed write, 0 for a bad offset */
  char error[320];         /* with any result but HUB_HTTP_DONE: what went wrong */
} hub_http_response;

/* Where a download reports its progress: `label` names the file, `total` its size if known. */
typedef struct {
  mlxc_hub_progress_callback callback;
  void* user_data;
  const char* label;
  uint64_t total;
} hub_http_progress;

/* GET url (redirects followed) with `token` as a Bearer token unless NULL; the body of a 2xx
 * response goes to *body. */
hub_http_result hub_http_get(const char* url, const char* token, strbuf* body, hub_http_response* response);

/* HEAD url without following redirects: the hub's own headers (X-Linked-Etag, X-Repo-Commit)
 * come on its 302 to the CDN. */
hub_http_result hub_http_head(const char* url, const char* token, hub_http_response* response);

/* GET url (redirects followed) asking for the bytes from `offset` on, written into the open
 * file `fd`: after `offset` when the server honours the Range, from the start (the file truncated)
 * when it sends the whole file. */
hub_http_result hub_http_download(const char* url, const char* token, int fd, int64_t offset,
                                  const hub_http_progress* progress, hub_http_response* response);

#endif
