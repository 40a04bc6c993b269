/* mlxc_hub_resolve: a local path as it is, or a hub model id resolved through the cache (listing
 * the revision's files, downloading the missing ones, or offline from refs/ and snapshots/). */
#include <errno.h>
#include <fnmatch.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hub/hub_internal.h"
#include "util/error.h"

#define DEFAULT_ENDPOINT "https://huggingface.co"

static const char* const default_patterns[] = {
    "config.json",          "*.safetensors",         "model.safetensors.index.json",
    "tokenizer.json",       "tokenizer_config.json", "generation_config.json",
    "chat_template.jinja",  "special_tokens_map.json",
};
static const char* const gguf_pattern = "*.gguf";

mlxc_hub_params mlxc_hub_default_params(void) {
  return (mlxc_hub_params){.revision = "main"};
}

/* ---- The request: parameters merged with the environment */

static const char* env(const char* name) {
  const char* value = getenv(name);
  return value && *value ? value : NULL;
}

static bool env_true(const char* name) {
  const char* v = env(name);
  return v && (strcmp(v, "1") == 0 || strcasecmp(v, "true") == 0 || strcasecmp(v, "yes") == 0 ||
               strcasecmp(v, "on") == 0);
}

/* $HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface (malloc'ed). */
static char* hf_home(void) {
  if (env("HF_HOME")) return hub_format("%s", env("HF_HOME"));
  if (env("XDG_CACHE_HOME")) return hub_format("%s/huggingface", env("XDG_CACHE_HOME"));
  if (env("HOME")) return hub_format("%s/.cache/huggingface", env("HOME"));
  util_error("hub: no cache folder: set HF_HUB_CACHE, HF_HOME or HOME");
  return NULL;
}

static char* cache_dir(const mlxc_hub_params* params) {
  if (params->cache_dir) return hub_format("%s", params->cache_dir);
  if (env("HF_HUB_CACHE")) return hub_format("%s", env("HF_HUB_CACHE"));
  char* home = hf_home();
  char* dir = home ? hub_format("%s/hub", home) : NULL;
  free(home);
  return dir;
}

/* The token file's first line, or NULL when there is none. */
static char* read_token_file(void) {
  char* home = env("HF_TOKEN_PATH") ? NULL : hf_home();
  char* path = env("HF_TOKEN_PATH") ? hub_format("%s", env("HF_TOKEN_PATH"))
                                    : (home ? hub_format("%s/token", home) : NULL);
  free(home);
  if (!path) return NULL;
  FILE* f = fopen(path, "r");
  free(path);
  if (!f) return NULL;
  char line[1024];
  char* token = NULL;
  if (fgets(line, sizeof line, f)) {
    line[strcspn(line, " \r\n\t")] = '\0';
    if (line[0]) token = strdup(line);
  }
  fclose(f);
  return token;
}

static void request_free(hub_request* rq) {
  free(rq->endpoint);
  free(rq->token);
  free(rq->repo_id);
  free(rq->revision);
  free(rq->repo_dir);
}

/* org/name or name: components of letters, digits, '-', '_', '.', none "." or "..". */
static bool is_repo_id(const char* id) {
  const char* slash = strchr(id, '/');
  if (!slash) return hub_is_safe_name(id);
  if (strchr(slash + 1, '/')) return false;
  char org[256];
  size_t n = (size_t)(slash - id);
  if (n >= sizeof org) return false;
  memcpy(org, id, n);
  org[n] = '\0';
  return hub_is_safe_name(org) && hub_is_safe_name(slash + 1);
}

/* Branch and tag names, and file names, may hold '/' (refs/pr/1) but no empty, "." or ".." part. */
static bool is_relative_path(const char* path) {
  if (!path[0] || path[0] == '/' || strstr(path, "//") || strstr(path, "\\")) return false;
  if (path[strlen(path) - 1] == '/') return false;
  for (const char* part = path; part; part = strchr(part, '/') ? strchr(part, '/') + 1 : NULL) {
    size_t n = strcspn(part, "/");
    if ((n == 1 && part[0] == '.') || (n == 2 && part[0] == '.' && part[1] == '.')) return false;
  }
  return true;
}

static int request_init(hub_request* rq, const char* id, const mlxc_hub_params* params) {
  int status = 0;
  char* cache = NULL;
  *rq = (hub_request){0};
  const char* at = strchr(id, '@');
  size_t id_n = at ? (size_t)(at - id) : strlen(id);
  rq->repo_id = strndup(id, id_n);
  rq->revision = strdup(at ? at + 1 : (params->revision ? params->revision : "main"));
  REQUIRE(rq->repo_id && rq->revision, "hub: out of memory");
  REQUIRE(is_repo_id(rq->repo_id) && is_relative_path(rq->revision),
          "'%s' is neither an existing file or folder nor a hub model id (org/name[@revision])", id);
  const char* endpoint = params->endpoint ? params->endpoint : env("HF_ENDPOINT");
  rq->endpoint = hub_format("%s", endpoint ? endpoint : DEFAULT_ENDPOINT);
  REQUIRE(rq->endpoint, "hub: out of memory");
  for (size_t n = strlen(rq->endpoint); n && rq->endpoint[n - 1] == '/'; n--) rq->endpoint[n - 1] = '\0';
  if (params->token) {
    rq->token = params->token[0] ? strdup(params->token) : NULL;
  } else {
    rq->token = env("HF_TOKEN") ? strdup(env("HF_TOKEN")) : read_token_file();
  }
  cache = cache_dir(params);
  if (!cache) {
    status = 1;
    goto cleanup;
  }
  const char* slash = strchr(rq->repo_id, '/'); /* org/name is cached as models--org--name */
  rq->repo_dir = slash ? hub_format("%s/models--%.*s--%s", cache, (int)(slash - rq->repo_id), rq->repo_id, slash + 1)
                       : hub_format("%s/models--%s", cache, rq->repo_id);
  if (!rq->repo_dir) {
    status = 1;
    goto cleanup;
  }
  rq->offline = params->offline || env_true("HF_HUB_OFFLINE");
  rq->quiet = params->quiet;
  rq->on_progress = params->on_progress;
  rq->user_data = params->user_data;
  if (!rq->on_progress && !rq->quiet && isatty(STDERR_FILENO)) {
    rq->on_progress = hub_bar_progress;
    rq->user_data = &rq->bar;
  }
cleanup:
  free(cache);
  return status;
}

/* ---- Messages */

int hub_report_http(const hub_request* rq, const char* what, hub_http_result result,
                    const hub_http_response* r) {
  if (result == HUB_HTTP_NETWORK)
    return util_error("%s '%s': cannot reach %s: %s (models already cached work offline with HF_HUB_OFFLINE=1)",
                      what, rq->repo_id, rq->endpoint, r->error);
  if (result != HUB_HTTP_DONE) return util_error("%s '%s': %s", what, rq->repo_id, r->error);
  char hub_says[300] = "";
  if (r->error_message[0]) snprintf(hub_says, sizeof hub_says, " (the hub says: %s)", r->error_message);
  if (r->status == 401 && rq->token)
    return util_error("%s '%s': the hub refused the token (401)%s; check that HF_TOKEN or $HF_HOME/token "
                      "gives access to this repository", what, rq->repo_id, hub_says);
  if (r->status == 401)
    return util_error("%s '%s': authentication required (401): the repository is private or gated, or does "
                      "not exist; no token was sent (set HF_TOKEN or write one to $HF_HOME/token)%s",
                      what, rq->repo_id, hub_says);
  if (r->status == 403)
    return util_error("%s '%s': access denied (403); for a gated model, accept its conditions on the hub "
                      "with the account the token belongs to%s", what, rq->repo_id, hub_says);
  if (r->status == 404 && strcmp(r->error_code, "RevisionNotFound") == 0)
    return util_error("%s '%s': revision '%s' not found (404)%s", what, rq->repo_id, rq->revision, hub_says);
  if (r->status == 404 && strcmp(r->error_code, "EntryNotFound") == 0)
    return util_error("%s '%s': no such file at revision '%s' (404)%s", what, rq->repo_id, rq->revision, hub_says);
  if (r->status == 404)
    return util_error("%s '%s': repository not found at %s (404)%s", what, rq->repo_id, rq->endpoint, hub_says);
  return util_error("%s '%s': the hub at %s answered HTTP %ld%s", what, rq->repo_id, rq->endpoint, r->status,
                    hub_says);
}

/* ---- The cache without the network */

static bool is_commit_hash(const char* s) {
  size_t n = strspn(s, "0123456789abcdef");
  return n == 40 && s[n] == '\0';
}

/* The cached snapshot of the request's revision (malloc'ed), or NULL without a message. */
static char* cached_snapshot(const hub_request* rq) {
  char commit[128];
  if (!hub_cache_read_ref(rq->repo_dir, rq->revision, commit, sizeof commit)) {
    if (!is_commit_hash(rq->revision)) return NULL;
    snprintf(commit, sizeof commit, "%s", rq->revision);
  }
  char* dir = hub_format("%s/snapshots/%s", rq->repo_dir, commit);
  struct stat st;
  if (dir && (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))) {
    free(dir);
    dir = NULL;
  }
  return dir;
}

/* ---- Online: the revision's file list, then each wanted file */

typedef struct {
  char commit[128];
  const char** files; /* borrowed from root */
  size_t n_files;
  json_t* root;
} file_list;

static void percent_encode(strbuf* sb, const char* s, bool keep_slash) {
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                 c == '.' || c == '_' || c == '~' || (keep_slash && c == '/');
    if (plain)
      strbuf_append(sb, (const char*)&c, 1);
    else
      strbuf_printf(sb, "%%%02X", c);
  }
}

/* A file name from the hub, safe to place under snapshots/{commit}/: relative, no empty, "." or
 * ".." parts, no backslashes or control characters. */
static bool is_safe_file_name(const char* name) {
  if (!is_relative_path(name)) return false;
  for (const char* c = name; *c; c++)
    if ((unsigned char)*c < 0x20) return false;
  return true;
}

static bool wanted(const char* file, const mlxc_hub_params* params) {
  if (params->allow_patterns) {
    for (size_t i = 0; i < params->n_allow_patterns; i++)
      if (fnmatch(params->allow_patterns[i], file, 0) == 0) return true;
    return false;
  }
  for (size_t i = 0; i < sizeof default_patterns / sizeof default_patterns[0]; i++)
    if (fnmatch(default_patterns[i], file, 0) == 0) return true;
  return params->include_gguf && fnmatch(gguf_pattern, file, 0) == 0;
}

/* GET {endpoint}/api/models/{repo}/revision/{revision}: {"sha": ..., "siblings": [{"rfilename"}]}.
 * On a network failure returns 2 without a message (the caller may fall back to the cache). */
static int list_files(const hub_request* rq, const mlxc_hub_params* params, file_list* out,
                      hub_http_response* response) {
  int status = 0;
  strbuf url = {0}, body = {0};
  strbuf_printf(&url, "%s/api/models/%s/revision/", rq->endpoint, rq->repo_id);
  percent_encode(&url, rq->revision, false);
  REQUIRE(!url.failed, "hub: out of memory");
  hub_http_result result = hub_http_get(url.data, rq->token, &body, response);
  if (result == HUB_HTTP_NETWORK) {
    status = 2;
    goto cleanup;
  }
  if (result != HUB_HTTP_DONE || response->status != 200) {
    status = hub_report_http(rq, "listing the files of", result, response);
    goto cleanup;
  }
  json_error_t error;
  out->root = json_loadb(body.data ? body.data : "", body.length, 0, &error);
  REQUIRE(out->root, "the hub's file list of '%s' is not valid JSON: %s (line %d)", rq->repo_id, error.text,
          error.line);
  const char* sha = json_string_value(json_object_get(out->root, "sha"));
  json_t* siblings = json_object_get(out->root, "siblings");
  REQUIRE(sha && json_is_array(siblings), "the hub's file list of '%s' lacks \"sha\" or \"siblings\"",
          rq->repo_id);
  REQUIRE(hub_is_safe_name(sha) && strlen(sha) < sizeof out->commit,
          "the hub gave '%s' an unusable commit name '%.80s'", rq->repo_id, sha);
  snprintf(out->commit, sizeof out->commit, "%s", sha);
  out->files = calloc(json_array_size(siblings) + 1, sizeof *out->files);
  REQUIRE(out->files, "hub: out of memory");
  for (size_t i = 0; i < json_array_size(siblings); i++) {
    const char* name = json_string_value(json_object_get(json_array_get(siblings, i), "rfilename"));
    REQUIRE(name, "the hub's file list of '%s' has an entry without \"rfilename\"", rq->repo_id);
    if (!wanted(name, params)) continue;
    REQUIRE(is_safe_file_name(name), "the hub's file list of '%s' names an unsafe path '%.200s'", rq->repo_id,
            name);
    out->files[out->n_files++] = name;
  }
cleanup:
  strbuf_free(&url);
  strbuf_free(&body);
  return status;
}

/* Makes snapshots/{commit}/{file} point at a complete blob. */
static int fetch_file(hub_request* rq, const char* commit, const char* file) {
  int status = 0;
  strbuf url = {0};
  char* pointer = hub_format("%s/snapshots/%s/%s", rq->repo_dir, commit, file);
  REQUIRE(pointer, "hub: out of memory");
  struct stat st;
  if (stat(pointer, &st) == 0) goto cleanup; /* the link and its blob are there */
  strbuf_printf(&url, "%s/%s/resolve/%s/", rq->endpoint, rq->repo_id, commit);
  percent_encode(&url, file, true);
  REQUIRE(!url.failed, "hub: out of memory");
  hub_http_response head;
  hub_http_result result = hub_http_head(url.data, rq->token, &head);
  bool answered = result == HUB_HTTP_DONE && head.status >= 200 && head.status < 400;
  char what[512];
  snprintf(what, sizeof what, "downloading %.400s from", file);
  if (!answered) {
    status = hub_report_http(rq, what, result, &head);
    goto cleanup;
  }
  REQUIRE(head.etag[0], "%s '%s': the hub sent no ETag for the file (HTTP %ld)", what, rq->repo_id, head.status);
  REQUIRE(hub_is_safe_name(head.etag), "%s '%s': unusable ETag '%.80s'", what, rq->repo_id, head.etag);
  TRY(hub_cache_fetch_blob(rq, file, url.data, head.etag, head.size));
  TRY(hub_cache_link(rq->repo_dir, commit, file, head.etag));
cleanup:
  strbuf_free(&url);
  free(pointer);
  return status;
}

static int resolve_online(char** local_dir, hub_request* rq, const mlxc_hub_params* params) {
  int status = 0;
  file_list list = {0};
  hub_http_response response;
  char* snapshot = NULL;
  status = list_files(rq, params, &list, &response);
  if (status == 2) {
    /* As huggingface_hub: without a connection, what the cache holds for the revision will do. */
    *local_dir = cached_snapshot(rq);
    if (*local_dir) {
      if (!rq->quiet)
        fprintf(stderr, "mlxc: cannot reach %s (%s); using the cached snapshot of '%s'\n", rq->endpoint,
                response.error, rq->repo_id);
      status = 0;
    } else {
      status = hub_report_http(rq, "listing the files of", HUB_HTTP_NETWORK, &response);
    }
    goto cleanup;
  }
  if (status) goto cleanup;
  REQUIRE(list.n_files, "no file of '%s' at revision '%s' matches the patterns to download%s", rq->repo_id,
          rq->revision, params->allow_patterns || params->include_gguf ? "" : " (GGUF files need include_gguf)");
  snapshot = hub_format("%s/snapshots/%s", rq->repo_dir, list.commit);
  REQUIRE(snapshot, "hub: out of memory");
  TRY(hub_mkdirs(snapshot));
  for (size_t i = 0; i < list.n_files; i++) TRY(fetch_file(rq, list.commit, list.files[i]));
  if (strcmp(rq->revision, list.commit) != 0) TRY(hub_cache_write_ref(rq->repo_dir, rq->revision, list.commit));
  *local_dir = snapshot;
  snapshot = NULL;
cleanup:
  hub_bar_finish(&rq->bar);
  free(snapshot);
  free(list.files);
  json_decref(list.root);
  return status;
}

int mlxc_hub_resolve(char** local_dir, const char* model_id_or_path, const mlxc_hub_params* params) {
  int status = 0;
  hub_request rq = {0};
  mlxc_hub_params defaults = mlxc_hub_default_params();
  if (!params) params = &defaults;
  REQUIRE(local_dir && model_id_or_path, "mlxc_hub_resolve: null argument");
  *local_dir = NULL;
  struct stat st;
  if (stat(model_id_or_path, &st) == 0) {
    *local_dir = strdup(model_id_or_path);
    REQUIRE(*local_dir, "hub: out of memory");
    goto cleanup;
  }
  TRY(request_init(&rq, model_id_or_path, params));
  if (rq.offline) {
    *local_dir = cached_snapshot(&rq);
    REQUIRE(*local_dir, "'%s' (revision '%s') is not in the cache %s, and offline mode is on%s", rq.repo_id,
            rq.revision, rq.repo_dir, params->offline ? "" : " (HF_HUB_OFFLINE)");
    goto cleanup;
  }
  TRY(resolve_online(local_dir, &rq, params));
cleanup:
  request_free(&rq);
  return status;
}
