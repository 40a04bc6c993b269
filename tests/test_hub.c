/* mlxc_hub_resolve against tests/hub_server.py, a local server answering as the Hugging Face hub
 * does (no internet): cache layout, no second download, resume, offline, tokens, errors. */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mlxc/error.h"
#include "mlxc/hub.h"
#include "test_util.h"

#define COMMIT "5d0c4e3f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d"
#define SAFETENSORS_SIZE 300000
/* Expected blob names, computed outside mlxc: `printf '<text>' | git hash-object --stdin` (the hub's
 * ETag of a small file is its git blob hash) and python3's hashlib.sha256 over the bytes that
 * write_fixture_repos() writes (the X-Linked-Etag of an LFS file is its sha256). */
#define CONFIG_TEXT "{\"model_type\": \"llama\"}\n"
#define CONFIG_ETAG "9eddb62b076f586b2186445e7872e5a05f0dfe06"
#define TOKENIZER_TEXT "{\"version\": \"1.0\"}\n"
#define TOKENIZER_ETAG "92bdb0aff34a95a7c00546c3d608c984294164ed"
#define EXTRA_TEXT "{\"extra\": true}\n"
#define EXTRA_ETAG "0927a424e3524688633336a312461eaf75c3537f"
#define SAFETENSORS_ETAG "4c55c10f0ae110c0a9a87196677dca93ae66e4569d106eaa2746030a8d2cb597"
#define GGUF_ETAG "e7bfb95846c7f812ff913890f2b75b108a1bf706f707c8af5c440b7682920cdd"

static char root[256];      /* temporary folder: repos/ served, caches beside it */
static char endpoint[64];   /* http://127.0.0.1:PORT */
static pid_t server_pid = -1;
static int cache_counter;

/* ---- Files */

static void write_file(const char* path, const void* data, size_t n) {
  char dir[512];
  snprintf(dir, sizeof dir, "%s", path);
  for (char* p = dir + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    mkdir(dir, 0755);
    *p = '/';
  }
  FILE* f = fopen(path, "wb");
  if (!f || fwrite(data, 1, n, f) != n) fprintf(stderr, "cannot write %s\n", path);
  if (f) fclose(f);
}

static void write_repo_file(const char* repo, const char* file, const void* data, size_t n) {
  char path[512];
  snprintf(path, sizeof path, "%s/repos/%s/%s", root, repo, file);
  write_file(path, data, n);
}

static unsigned char* safetensors_bytes(void) {
  unsigned char* data = malloc(SAFETENSORS_SIZE);
  for (size_t i = 0; i < SAFETENSORS_SIZE; i++) data[i] = (unsigned char)((i * 7) ^ (i >> 8));
  return data;
}

static void write_fixture_repos(void) {
  unsigned char* weights = safetensors_bytes();
  unsigned char gguf[64] = {'G', 'G', 'U', 'F'};
  for (int i = 0; i < 60; i++) gguf[4 + i] = (unsigned char)i;
  const char* commit = COMMIT "\n";
  write_repo_file("acme/tiny", ".commit", commit, strlen(commit));
  write_repo_file("acme/tiny", "config.json", CONFIG_TEXT, strlen(CONFIG_TEXT));
  write_repo_file("acme/tiny", "tokenizer.json", TOKENIZER_TEXT, strlen(TOKENIZER_TEXT));
  write_repo_file("acme/tiny", "nested/extra.json", EXTRA_TEXT, strlen(EXTRA_TEXT));
  write_repo_file("acme/tiny", "README.md", "# tiny\n", 7);
  write_repo_file("acme/tiny", "model.safetensors", weights, SAFETENSORS_SIZE);
  write_repo_file("acme/tiny", "weights.gguf", gguf, sizeof gguf);
  write_repo_file("acme/private", ".commit", commit, strlen(commit));
  write_repo_file("acme/private", ".token", "hf_secret\n", 10);
  write_repo_file("acme/private", "config.json", CONFIG_TEXT, strlen(CONFIG_TEXT));
  write_repo_file("acme/badjson", ".commit", commit, strlen(commit));
  write_repo_file("acme/badjson", ".badjson", "", 0);
  write_repo_file("acme/badjson", "config.json", CONFIG_TEXT, strlen(CONFIG_TEXT));
  free(weights);
}

static bool file_has(const char* path, const void* data, size_t n) {
  FILE* f = fopen(path, "rb");
  if (!f) return false;
  unsigned char* got = malloc(n + 1);
  size_t read = fread(got, 1, n + 1, f);
  fclose(f);
  bool same = read == n && memcmp(got, data, n) == 0;
  free(got);
  return same;
}

static bool exists(const char* path) {
  struct stat st;
  return lstat(path, &st) == 0;
}

static long file_size(const char* path) {
  struct stat st;
  return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* The target of the symlink dir/file ("" when it is not a link). */
static const char* link_target(const char* dir, const char* file) {
  static char target[512];
  char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, file);
  ssize_t n = readlink(path, target, sizeof target - 1);
  target[n > 0 ? n : 0] = '\0';
  return target;
}

static void remove_tree(const char* path) {
  char command[600];
  snprintf(command, sizeof command, "rm -rf '%s'", path);
  if (system(command) != 0) fprintf(stderr, "cannot remove %s\n", path);
}

/* ---- The server */

static bool find_python(char* out, size_t cap) {
  const char* path = getenv("PATH");
  if (!path) return false;
  for (const char* dir = path; dir;) {
    const char* end = strchr(dir, ':');
    int n = end ? (int)(end - dir) : (int)strlen(dir);
    snprintf(out, cap, "%.*s/python3", n, dir);
    if (n && access(out, X_OK) == 0) return true;
    dir = end ? end + 1 : NULL;
  }
  return false;
}

/* Starts hub_server.py and reads the port it chose; false when it did not come up. */
static bool start_server(const char* python) {
  char script[512], repos[300];
  snprintf(script, sizeof script, "%s/tests/hub_server.py", test_source_dir());
  snprintf(repos, sizeof repos, "%s/repos", root);
  int fds[2];
  if (pipe(fds) != 0) return false;
  server_pid = fork();
  if (server_pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    close(fds[1]);
    execl(python, python, script, repos, (char*)NULL);
    _exit(127);
  }
  close(fds[1]);
  FILE* out = fdopen(fds[0], "r");
  int port = 0;
  if (!out || fscanf(out, "PORT %d", &port) != 1) port = 0;
  if (out) fclose(out);
  snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%d", port);
  return port > 0;
}

static void stop_server(void) {
  if (server_pid <= 0) return;
  kill(server_pid, SIGTERM);
  waitpid(server_pid, NULL, 0);
  server_pid = -1;
}

static size_t collect(char* data, size_t size, size_t count, void* user) {
  char* out = user;
  size_t have = strlen(out), n = size * count;
  if (have + n < 511) {
    memcpy(out + have, data, n);
    out[have + n] = '\0';
  }
  return n;
}

/* GET a control endpoint of the server into out (512 bytes). */
static void server_get(const char* path, char* out) {
  char url[256];
  snprintf(url, sizeof url, "%s%s", endpoint, path);
  out[0] = '\0';
  CURL* curl = curl_easy_init();
  curl_easy_setopt(curl, CURLOPT_URL, url);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, out);
  if (curl_easy_perform(curl) != CURLE_OK) fprintf(stderr, "cannot reach the test server at %s\n", url);
  curl_easy_cleanup(curl);
}

typedef struct {
  int api, head, get, cdn;
  char ranges[128], auth[128];
} server_stats;

static server_stats stats(void) {
  char line[512];
  server_stats s = {0};
  server_get("/_stats", line);
  if (sscanf(line, "api=%d head=%d get=%d cdn=%d ranges=%127s auth=%127[^\n]", &s.api, &s.head, &s.get, &s.cdn,
             s.ranges, s.auth) != 6)
    fprintf(stderr, "unexpected stats line: %s\n", line);
  return s;
}

static void reset_server(void) {
  char ignored[512];
  server_get("/_reset", ignored);
}

static void cut_next_transfers(int n) {
  char path[64], ignored[512];
  snprintf(path, sizeof path, "/_cut?n=%d", n);
  server_get(path, ignored);
}

/* ---- Resolve helpers */

static char cache[300];

/* Parameters for the test server and a new, empty cache folder. */
static mlxc_hub_params fresh_params(void) {
  snprintf(cache, sizeof cache, "%s/cache%d", root, ++cache_counter);
  mlxc_hub_params p = mlxc_hub_default_params();
  p.endpoint = endpoint;
  p.cache_dir = cache;
  p.token = "";
  p.quiet = true;
  return p;
}

static const char* snapshot_of(const char* cache_dir, const char* repo_folder) {
  static char dir[512];
  snprintf(dir, sizeof dir, "%s/%s/snapshots/" COMMIT, cache_dir, repo_folder);
  return dir;
}

static bool ref_is(const char* cache_dir, const char* repo_folder, const char* revision, const char* commit) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s/refs/%s", cache_dir, repo_folder, revision);
  return file_has(path, commit, strlen(commit));
}

static bool message_has(const char* part) {
  bool found = strstr(mlxc_last_error(), part) != NULL;
  if (!found) fprintf(stderr, "  message \"%s\" lacks \"%s\"\n", mlxc_last_error(), part);
  return found;
}

/* ---- Tests */

TEST(test_download_builds_standard_cache_layout) {
  mlxc_hub_params p = fresh_params();
  char* dir = NULL;
  CHECK_EQ_INT(mlxc_hub_resolve(&dir, "acme/tiny", &p), 0);
  CHECK_STR(dir, snapshot_of(cache, "models--acme--tiny"));
  CHECK(ref_is(cache, "models--acme--tiny", "main", COMMIT));
  CHECK_STR(link_target(dir, "config.json"), "../../blobs/" CONFIG_ETAG);
  CHECK_STR(link_target(dir, "tokenizer.json"), "../../blobs/" TOKENIZER_ETAG);
  CHECK_STR(link_target(dir, "model.safetensors"), "../../blobs/" SAFETENSORS_ETAG);
  char path[600];
  snprintf(path, sizeof path, "%s/config.json", dir);
  CHECK(file_has(path, CONFIG_TEXT, strlen(CONFIG_TEXT)));
  unsigned char* weights = safetensors_bytes();
  snprintf(path, sizeof path, "%s/models--acme--tiny/blobs/" SAFETENSORS_ETAG, cache);
  CHECK(file_has(path, weights, SAFETENSORS_SIZE));
  free(weights);
  /* Not among the default patterns. */
  snprintf(path, sizeof path, "%s/README.md", dir);
  CHECK(!exists(path));
  snprintf(path, sizeof path, "%s/weights.gguf", dir);
  CHECK(!exists(path));
  snprintf(path, sizeof path, "%s/nested", dir);
  CHECK(!exists(path));
  free(dir);
}

TEST(test_second_resolve_downloads_nothing) {
  mlxc_hub_params p = fresh_params();
  char *first = NULL, *second = NULL;
  CHECK_EQ_INT(mlxc_hub_resolve(&first, "acme/tiny", &p), 0);
  reset_server();
  CHECK_EQ_INT(mlxc_hub_resolve(&second, "acme/tiny", &p), 0);
  CHECK_STR(second, first);
  server_stats s = stats();
  CHECK_EQ_INT(s.api, 1); /* the branch may have moved: asked once */
  CHECK_EQ_INT(s.head, 0);
  CHECK_EQ_INT(s.get, 0);
  CHECK_EQ_INT(s.cdn, 0);
  free(first);
  free(second);
}

TEST(test_explicit_revision_and_commit) {
  mlxc_hub_params p = fresh_params();
  char *by_branch = NULL, *by_commit = NULL;
  CHECK_EQ_INT(mlxc_hub_resolve(&by_branch, "acme/tiny@main", &p), 0);
  CHECK_STR(by_branch, snapshot_of(cache, "models--acme--tiny"));
  reset_server();
  CHECK_EQ_INT(mlxc_hub_resolve(&by_commit, "acme/tiny@" COMMIT, &p), 0);
  CHECK_STR(by_commit, by_branch);
  CHECK_EQ_INT(stats().get + stats().cdn, 0);
  char path[512];
  snprintf(path, sizeof path, "%s/models--acme--tiny/refs/" COMMIT, cache);
  CHECK(!exists(path)); /* a commit is not a ref */
  free(by_branch);
  free(by_commit);
}

TEST(test_nested_file_links_relative_to_its_folder) {
  mlxc_hub_params p = fresh_params();
  const char* patterns[] = {"nested/*"};
  p.allow_patterns = patterns;
  p.n_allow_patterns = 1;
  char* dir = NULL;
  CHECK_EQ_INT(mlxc_hub_resolve(&dir, "acme/tiny", &p), 0);
  CHECK_STR(link_target(dir, "nested/extra.json"), "../../../blobs/" EXTRA_ETAG);
  char path[600];
  snprintf(path, sizeof path, "%s/nested/extra.json", dir);
  CHECK(file_has(path, EXTRA_TEXT, strlen(EXTRA_TEXT)));
  snprintf(path, sizeof path, "%s/config.json", dir);
  CHECK(!exists(path));
  free(dir);
}

TEST(test_gguf_only_when_asked) {
  mlxc_hub_params p = fresh_params();
  p.include_gguf = true;
  char* dir = NULL;
  CHECK_EQ_INT(mlxc_hub_resolve(&dir, "acme/tiny", &p), 0);
  CHECK_STR(link_target(dir, "weights.gguf"), "../../blobs/" GGUF_ETAG);
  CHECK_STR(link_target(dir, "config.json"), "../../blobs/" CONFIG_ETAG);
  free(dir);
}

/* The transfer is cut more often than one call retries: the call fails, keeping the partial
 * blob; the next call asks for the rest with a Range request. */
TEST(test_interrupted_download_resumes_on_next_call) {
  mlxc_hub_params p = fresh_params();
  const char* patterns[] = {"*.safetensors"};
  p.allow_patterns = patterns;
  p.n_allow_patterns = 1;
  char* dir = NULL;
  reset_server();
  cut_next_transfers(100);
  CHECK(mlxc_hub_resolve(&dir, "acme/tiny", &p) != 0);
  CHECK(dir == NULL);
  CHECK(message_has("model.safetensors") && message_has("interrupted"));
  /* Four attempts, each cut after half of what it asked for: 150000 + 75000 + 37500 + 18750. */
  CHECK_STR(stats().ranges, "150000,225000,262500");
  char partial[512], snapshot_file[600];
  snprintf(partial, sizeof partial, "%s/models--acme--tiny/blobs/" SAFETENSORS_ETAG ".incomplete", cache);
  CHECK_EQ_INT(file_size(partial), 281250);
  snprintf(snapshot_file, sizeof snapshot_file, "%s/model.safetensors", snapshot_of(cache, "models--acme--tiny"));
  CHECK(!exists(snapshot_file));
  CHECK(!ref_is(cache, "models--acme--tiny", "main", COMMIT));

  reset_server();
  CHECK_EQ_INT(mlxc_hub_resolve(&dir, "acme/tiny", &p), 0);
  CHECK_STR(stats().ranges, "281250");
  unsigned char* weights = safetensors_bytes();
  CHECK(file_has(snapshot_file, weights, SAFETENSORS_SIZE));
  free(weights);
  CHECK(!exists(partial));
  CHECK(ref_is(cache, "models--acme--tiny", "main", COMMIT));
  free(dir);
}

TEST(test_cut_transfer_is_resumed_within_the_call) {
  mlxc_hub_params p = fresh_params();
  const char* patterns[] = {"*.safetensors"};
  p.allow_patterns = patterns;
  p.n_allow_patterns = 1;
  char* dir = NULL;
  reset_server();
  cut_next_transfers(1);
  CHECK_EQ_INT(mlxc_hub_resolve(&dir, "acme/tiny", &p), 0);
  server_stats s = stats();
  CHECK_EQ_INT(s.cdn, 2);
  CHECK_STR(s.ranges, "150000");
  CHECK_STR(link_target(dir, "model.safetensors"), "../../blobs/" SAFETENSORS_ETAG);
  free(dir);
}

typedef struct {
  mlxc_hub_params params;
  char* dir;
  int status;
} resolve_job;

static void* resolve_in_thread(void* arg) {
  resolve_job* job = arg;
  job->status = mlxc_hub_resolve(&job->dir, "acme/tiny", &job->params);
  return NULL;
}

/* Two resolves of one model into one cache at once: the blob lock makes one wait for the other. */
TEST(test_concurrent_resolves_share_the_cache) {
  resolve_job jobs[2] = {{.params = fresh_params()}};
  jobs[1] = jobs[0];
  pthread_t threads[2];
  for (int i = 0; i < 2; i++) pthread_create(&threads[i], NULL, resolve_in_thread, &jobs[i]);
  for (int i = 0; i < 2; i++) pthread_join(threads[i], NULL);
  CHECK_EQ_INT(jobs[0].status, 0);
  CHECK_EQ_INT(jobs[1].status, 0);
  CHECK_STR(jobs[0].dir, snapshot_of(cache, "models--acme--tiny"));
  CHECK_STR(jobs[1].dir, jobs[0].dir);
  char path[600];
  snprintf(path, sizeof path, "%s/model.safetensors", snapshot_of(cache, "models--acme--tiny"));
  unsigned char* weights = safetensors_bytes();
  CHECK(file_has(path, weights, SAFETENSORS_SIZE));
  free(weights);
  free(jobs[0].dir);
  free(jobs[1].dir);
}

typedef struct {
  uint64_t done, total;
  int calls;
} progress_record;

static int record_progress(const char* file, uint64_t done, uint64_t total, void* user_data) {
  progress_record* r = user_data;
  if (strcmp(file, "model.safetensors") == 0) {
    r->done = done;
    r->total = total;
    r->calls++;
  }
  return 0;
}

TEST(test_progress_reaches_file_size) {
  mlxc_hub_params p = fresh_params();
  progress_record record = {0};
  p.on_progress = record_progress;
  p.user_data = &record;
  char* dir = NULL;
  CHECK_EQ_INT(mlxc_hub_resolve(&dir, "acme/tiny", &p), 0);
  CHECK(record.calls > 0);
  CHECK_EQ_INT(record.done, SAFETENSORS_SIZE);
  CHECK_EQ_INT(record.total, SAFETENSORS_SIZE);
  free(dir);
}

static int cancel_progress(const char* file, uint64_t done, uint64_t total, void* user_data) { return 1; }

TEST(test_progress_callback_cancels) {
  mlxc_hub_params p = fresh_params();
  p.on_progress = cancel_progress;
  char* dir = NULL;
  CHECK(mlxc_hub_resolve(&dir, "acme/tiny", &p) != 0);
  CHECK(message_has("cancelled"));
  CHECK(!ref_is(cache, "models--acme--tiny", "main", COMMIT));
}

TEST(test_offline_resolves_from_cache_without_network) {
  mlxc_hub_params p = fresh_params();
  char *online = NULL, *offline = NULL;
  CHECK_EQ_INT(mlxc_hub_resolve(&online, "acme/tiny", &p), 0);
  reset_server();
  p.offline = true;
  CHECK_EQ_INT(mlxc_hub_resolve(&offline, "acme/tiny", &p), 0);
  CHECK_STR(offline, online);
  free(offline);
  offline = NULL;
  CHECK_EQ_INT(mlxc_hub_resolve(&offline, "acme/tiny@" COMMIT, &p), 0);
  CHECK_STR(offline, online);
  free(offline);
  offline = NULL;
  /* The environment switch, as huggingface_hub's. */
  p.offline = false;
  setenv("HF_HUB_OFFLINE", "1", 1);
  CHECK_EQ_INT(mlxc_hub_resolve(&offline, "acme/tiny", &p), 0);
  CHECK_STR(offline, online);
  free(offline);
  CHECK(mlxc_hub_resolve(&offline, "acme/private", &p) != 0);
  CHECK(offline == NULL);
  CHECK(message_has("'acme/private'") && message_has("not in the cache") && message_has("HF_HUB_OFFLINE"));
  unsetenv("HF_HUB_OFFLINE");
  server_stats s = stats();
  CHECK_EQ_INT(s.api + s.head + s.get + s.cdn, 0);
  free(online);
}

TEST(test_unreachable_hub_falls_back_to_cache) {
  mlxc_hub_params p = fresh_params();
  char *online = NULL, *fallback = NULL;
  CHECK_EQ_INT(mlxc_hub_resolve(&online, "acme/tiny", &p), 0);
  p.endpoint = "http://127.0.0.1:1"; /* nothing listens on port 1 */
  CHECK_EQ_INT(mlxc_hub_resolve(&fallback, "acme/tiny", &p), 0);
  CHECK_STR(fallback, online);
  free(fallback);
  CHECK(mlxc_hub_resolve(&fallback, "acme/private", &p) != 0);
  CHECK(fallback == NULL);
  CHECK(message_has("cannot reach http://127.0.0.1:1"));
  free(online);
}

TEST(test_token_is_sent_to_private_repository) {
  mlxc_hub_params p = fresh_params();
  char* dir = NULL;
  CHECK(mlxc_hub_resolve(&dir, "acme/private", &p) != 0);
  CHECK(message_has("401") && message_has("no token was sent"));
  p.token = "hf_wrong";
  CHECK(mlxc_hub_resolve(&dir, "acme/private", &p) != 0);
  CHECK(message_has("401") && message_has("refused the token"));
  p.token = "hf_secret";
  reset_server();
  CHECK_EQ_INT(mlxc_hub_resolve(&dir, "acme/private", &p), 0);
  CHECK_STR(stats().auth, "Bearer hf_secret");
  CHECK_STR(link_target(dir, "config.json"), "../../blobs/" CONFIG_ETAG);
  free(dir);
}

TEST(test_token_from_environment_and_token_file) {
  mlxc_hub_params p = fresh_params();
  p.token = NULL;
  char* dir = NULL;
  setenv("HF_TOKEN", "hf_secret", 1);
  CHECK_EQ_INT(mlxc_hub_resolve(&dir, "acme/private", &p), 0);
  free(dir);
  dir = NULL;
  unsetenv("HF_TOKEN");
  char home[300], token_file[400];
  snprintf(home, sizeof home, "%s/home_with_token", root);
  snprintf(token_file, sizeof token_file, "%s/token", home);
  write_file(token_file, "hf_secret\n", 10);
  setenv("HF_HOME", home, 1);
  p = fresh_params();
  p.token = NULL;
  reset_server();
  CHECK_EQ_INT(mlxc_hub_resolve(&dir, "acme/private", &p), 0);
  CHECK_STR(stats().auth, "Bearer hf_secret");
  unsetenv("HF_HOME");
  free(dir);
}

TEST(test_missing_repository_and_revision_are_reported) {
  mlxc_hub_params p = fresh_params();
  char* dir = NULL;
  CHECK(mlxc_hub_resolve(&dir, "acme/nope", &p) != 0);
  CHECK(dir == NULL);
  CHECK(message_has("'acme/nope'") && message_has("repository not found") && message_has("404"));
  char path[512];
  snprintf(path, sizeof path, "%s/models--acme--nope", cache);
  CHECK(!exists(path));
  CHECK(mlxc_hub_resolve(&dir, "acme/tiny@no-such-branch", &p) != 0);
  CHECK(message_has("revision 'no-such-branch' not found"));
}

TEST(test_bad_json_is_reported) {
  mlxc_hub_params p = fresh_params();
  char* dir = NULL;
  CHECK(mlxc_hub_resolve(&dir, "acme/badjson", &p) != 0);
  CHECK(message_has("not valid JSON") && message_has("'acme/badjson'"));
  char path[512];
  snprintf(path, sizeof path, "%s/models--acme--badjson/snapshots", cache);
  CHECK(!exists(path));
}

/* A file-size limit stands in for a full disk: writes fail with EFBIG as they would with ENOSPC. */
TEST(test_write_failure_leaves_snapshot_clean) {
  mlxc_hub_params p = fresh_params();
  char* dir = NULL;
  struct rlimit saved, limited;
  getrlimit(RLIMIT_FSIZE, &saved);
  limited = saved;
  limited.rlim_cur = 100000;
  void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
  setrlimit(RLIMIT_FSIZE, &limited);
  int failed = mlxc_hub_resolve(&dir, "acme/tiny", &p);
  setrlimit(RLIMIT_FSIZE, &saved);
  signal(SIGXFSZ, old_handler);
  CHECK(failed != 0);
  CHECK(message_has("cannot write") && message_has(strerror(EFBIG)));
  char path[600];
  snprintf(path, sizeof path, "%s/model.safetensors", snapshot_of(cache, "models--acme--tiny"));
  CHECK(!exists(path));
  CHECK(!ref_is(cache, "models--acme--tiny", "main", COMMIT));
  /* With room again, the next call completes. */
  CHECK_EQ_INT(mlxc_hub_resolve(&dir, "acme/tiny", &p), 0);
  CHECK(exists(path));
  free(dir);
}

TEST(test_environment_gives_endpoint_and_cache) {
  char home[300], hub_cache[300], expected[512];
  snprintf(home, sizeof home, "%s/home", root);
  snprintf(hub_cache, sizeof hub_cache, "%s/hub_cache", root);
  mlxc_hub_params p = mlxc_hub_default_params();
  p.quiet = true;
  p.token = "";
  setenv("HF_ENDPOINT", endpoint, 1);
  setenv("HF_HOME", home, 1);
  char* dir = NULL;
  CHECK_EQ_INT(mlxc_hub_resolve(&dir, "acme/tiny", &p), 0);
  snprintf(expected, sizeof expected, "%s/hub/models--acme--tiny/snapshots/" COMMIT, home);
  CHECK_STR(dir, expected);
  free(dir);
  dir = NULL;
  setenv("HF_HUB_CACHE", hub_cache, 1);
  CHECK_EQ_INT(mlxc_hub_resolve(&dir, "acme/tiny", &p), 0);
  snprintf(expected, sizeof expected, "%s/models--acme--tiny/snapshots/" COMMIT, hub_cache);
  CHECK_STR(dir, expected);
  free(dir);
  unsetenv("HF_HUB_CACHE");
  unsetenv("HF_HOME");
  unsetenv("HF_ENDPOINT");
}

TEST(test_existing_path_is_used_as_is) {
  mlxc_hub_params p = fresh_params();
  char* dir = NULL;
  CHECK_EQ_INT(mlxc_hub_resolve(&dir, root, &p), 0);
  CHECK_STR(dir, root);
  free(dir);
  dir = NULL;
  CHECK(mlxc_hub_resolve(&dir, "./no/such/folder", &p) != 0);
  CHECK(message_has("neither an existing file or folder nor a hub model id"));
  CHECK(mlxc_hub_resolve(&dir, "acme/../etc", &p) != 0);
  CHECK(mlxc_hub_resolve(&dir, "acme/tiny@../../x", &p) != 0);
  CHECK(dir == NULL);
}

int main(void) {
  char python[512];
  if (!find_python(python, sizeof python)) TEST_SKIP_ALL("python3 not found on PATH (needed for tests/hub_server.py)");
  snprintf(root, sizeof root, "/tmp/mlxc_test_hub_XXXXXX");
  if (!mkdtemp(root)) {
    perror("mkdtemp");
    return 1;
  }
  const char* hf_vars[] = {"HF_ENDPOINT", "HF_HOME", "HF_HUB_CACHE", "HF_TOKEN", "HF_TOKEN_PATH", "HF_HUB_OFFLINE"};
  for (size_t i = 0; i < sizeof hf_vars / sizeof hf_vars[0]; i++) unsetenv(hf_vars[i]);
  write_fixture_repos();
  if (!start_server(python)) {
    stop_server();
    remove_tree(root);
    fprintf(stderr, "tests/hub_server.py did not start with %s\n", python);
    return 1;
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);
  mlxc_set_errors_quiet(1);
  RUN(test_download_builds_standard_cache_layout);
  RUN(test_second_resolve_downloads_nothing);
  RUN(test_explicit_revision_and_commit);
  RUN(test_nested_file_links_relative_to_its_folder);
  RUN(test_gguf_only_when_asked);
  RUN(test_interrupted_download_resumes_on_next_call);
  RUN(test_cut_transfer_is_resumed_within_the_call);
  RUN(test_concurrent_resolves_share_the_cache);
  RUN(test_progress_reaches_file_size);
  RUN(test_progress_callback_cancels);
  RUN(test_offline_resolves_from_cache_without_network);
  RUN(test_unreachable_hub_falls_back_to_cache);
  RUN(test_token_is_sent_to_private_repository);
  RUN(test_token_from_environment_and_token_file);
  RUN(test_missing_repository_and_revision_are_reported);
  RUN(test_bad_json_is_reported);
  RUN(test_write_failure_leaves_snapshot_clean);
  RUN(test_environment_gives_endpoint_and_cache);
  RUN(test_existing_path_is_used_as_is);
  stop_server();
  curl_global_cleanup();
  remove_tree(root);
  return TEST_SUMMARY();
}
