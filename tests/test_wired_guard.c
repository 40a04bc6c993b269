/* The wired-limit guard (include/mlxc/memory.h): shared installs, the last release restoring the
 * prior limit after synchronising, the 90% warning, no-op paths, and many threads at once. */
#include <linux/capability.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/allocator.h"
#include "mlx/c/mlx.h"
#include "mlxc/error.h"
#include "mlxc/memory.h"
#include "test_util.h"
#include "util/error.h"
#include "util/wired_guard.h"

static mlx_device cpu_dev;
static mlx_stream streams[3];
static size_t recommended; /* the CPU's max_recommended_working_set_size, read independently */
static size_t original_limit;

static size_t read_recommended(void) {
  mlx_device_info info = mlx_device_info_new();
  size_t v = 0;
  if (mlx_device_info_get(&info, cpu_dev) == 0)
    mlx_device_info_get_size(&v, info, "max_recommended_working_set_size");
  mlx_device_info_free(info);
  return v;
}

/* ---- hooks that record what the guard does ---- */

static pthread_mutex_t record_lock = PTHREAD_MUTEX_INITIALIZER;
static char warnings[8][512];
static int n_warnings;
static atomic_int syncs[3];      /* per stream in `streams` */
static atomic_int syncs_too_late; /* synchronisations after the limit was already restored */
static atomic_int installs, restores, out_of_order;
static atomic_int installed;

static void record_warning(const char* message, void* user) {
  pthread_mutex_lock(&record_lock);
  if (n_warnings < 8) snprintf(warnings[n_warnings], sizeof warnings[0], "%s", message);
  n_warnings++;
  pthread_mutex_unlock(&record_lock);
}

static int counting_synchronize(mlx_stream s) {
  for (int i = 0; i < 3; i++)
    if (mlx_stream_equal(s, streams[i])) atomic_fetch_add(&syncs[i], 1);
  if (core_alloc_wired_limit() != recommended) atomic_fetch_add(&syncs_too_late, 1);
  return mlx_synchronize(s);
}

/* Passes through to mlx_set_wired_limit and checks installs and restores alternate. */
static int counting_set(size_t* previous, size_t limit) {
  int was = atomic_exchange(&installed, limit == recommended);
  if (limit == recommended) {
    atomic_fetch_add(&installs, 1);
    if (was) atomic_fetch_add(&out_of_order, 1);
  } else {
    atomic_fetch_add(&restores, 1);
    if (!was) atomic_fetch_add(&out_of_order, 1);
  }
  return mlx_set_wired_limit(previous, limit);
}

static void reset_records(void) {
  n_warnings = 0;
  for (int i = 0; i < 3; i++) atomic_store(&syncs[i], 0);
  atomic_store(&syncs_too_late, 0);
  atomic_store(&installs, 0);
  atomic_store(&restores, 0);
  atomic_store(&out_of_order, 0);
  atomic_store(&installed, 0);
  wired_guard_hooks hooks = {record_warning, NULL, counting_set, counting_synchronize};
  wired_guard_set_hooks(&hooks);
}

/* ---- tests ---- */

TEST(test_first_install_sets_recommended_and_last_release_restores) {
  reset_records();
  mlxc_wired_guard *a = NULL, *b = NULL;
  CHECK_EQ_INT(mlxc_wired_guard_install(&a, cpu_dev, 0, &streams[0], 2), 0);
  CHECK(a != NULL);
  CHECK_EQ_INT(core_alloc_wired_limit(), recommended);
  CHECK_EQ_INT(mlxc_wired_guard_install(&b, cpu_dev, 0, &streams[1], 2), 0);
  CHECK_EQ_INT(wired_guard_live_count(), 2);
  CHECK_EQ_INT(atomic_load(&installs), 1); /* the second install shares the first */

  mlxc_wired_guard_release(a); /* not the last: nothing synchronised, limit kept */
  CHECK_EQ_INT(core_alloc_wired_limit(), recommended);
  for (int i = 0; i < 3; i++) CHECK_EQ_INT(atomic_load(&syncs[i]), 0);

  mlxc_wired_guard_release(b); /* the last: every stream given once, then the restore */
  for (int i = 0; i < 3; i++) CHECK_EQ_INT(atomic_load(&syncs[i]), 1);
  CHECK_EQ_INT(atomic_load(&syncs_too_late), 0);
  CHECK_EQ_INT(core_alloc_wired_limit(), original_limit);
  CHECK_EQ_INT(atomic_load(&restores), 1);
  CHECK_EQ_INT(wired_guard_live_count(), 0);
  CHECK_EQ_INT(n_warnings, 0);
  wired_guard_set_hooks(NULL);
}

TEST(test_warning_when_model_needs_over_90_percent) {
  reset_records();
  mlxc_wired_guard* g = NULL;
  size_t ninety = recommended / 10 * 9;
  CHECK_EQ_INT(mlxc_wired_guard_install(&g, cpu_dev, ninety - 4096, NULL, 0), 0);
  mlxc_wired_guard_release(g);
  CHECK_EQ_INT(n_warnings, 0);
  CHECK_EQ_INT(mlxc_wired_guard_install(&g, cpu_dev, ninety + recommended / 50, NULL, 0), 0);
  CHECK_EQ_INT(n_warnings, 1);
  CHECK(strstr(warnings[0], "90%") != NULL);
  CHECK_EQ_INT(core_alloc_wired_limit(), recommended); /* a warning, not a refusal */
  mlxc_wired_guard_release(g);
  CHECK_EQ_INT(core_alloc_wired_limit(), original_limit);
  wired_guard_set_hooks(NULL);
}

TEST(test_default_warning_goes_to_stderr) {
  wired_guard_set_hooks(NULL);
  int fds[2];
  CHECK_EQ_INT(pipe(fds), 0);
  fflush(stderr);
  int saved = dup(2);
  dup2(fds[1], 2);
  mlxc_wired_guard* g = NULL;
  int status = mlxc_wired_guard_install(&g, cpu_dev, recommended, NULL, 0);
  mlxc_wired_guard_release(g);
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  close(fds[1]);
  char text[1024] = {0};
  ssize_t n = read(fds[0], text, sizeof text - 1);
  close(fds[0]);
  CHECK_EQ_INT(status, 0);
  CHECK(n > 0);
  CHECK(strstr(text, "warning") && strstr(text, "90%"));
}

static int failing_set(size_t* previous, size_t limit) {
  return util_error("injected failure setting the wired limit to %zu", limit);
}

TEST(test_failure_to_set_limit_is_a_noop_warned_once) {
  wired_guard_hooks hooks = {record_warning, NULL, failing_set, NULL};
  n_warnings = 0;
  wired_guard_set_hooks(&hooks);
  int quiet = mlxc_set_errors_quiet(1);
  mlxc_wired_guard *a = NULL, *b = NULL;
  CHECK_EQ_INT(mlxc_wired_guard_install(&a, cpu_dev, 0, &streams[0], 1), 0);
  CHECK_EQ_INT(mlxc_wired_guard_install(&b, cpu_dev, 0, &streams[0], 1), 0);
  mlxc_set_errors_quiet(quiet);
  CHECK(a != NULL && b != NULL); /* valid guards: generation goes on */
  CHECK_EQ_INT(wired_guard_live_count(), 0);
  CHECK_EQ_INT(n_warnings, 1);
  CHECK(strstr(warnings[0], "injected failure") != NULL);
  CHECK_EQ_INT(core_alloc_wired_limit(), original_limit);
  mlxc_wired_guard_release(b);
  mlxc_wired_guard_release(a);
  CHECK_EQ_INT(n_warnings, 1);
  wired_guard_set_hooks(NULL);
}

static atomic_int set_calls;
static int fails_on_restore(size_t* previous, size_t limit) {
  if (atomic_fetch_add(&set_calls, 1) == 0) return mlx_set_wired_limit(previous, limit);
  return util_error("injected failure restoring the wired limit");
}

TEST(test_failed_restore_warns_and_release_returns) {
  atomic_store(&set_calls, 0);
  wired_guard_hooks hooks = {record_warning, NULL, fails_on_restore, NULL};
  n_warnings = 0;
  wired_guard_set_hooks(&hooks);
  mlxc_wired_guard* g = NULL;
  CHECK_EQ_INT(mlxc_wired_guard_install(&g, cpu_dev, 0, NULL, 0), 0);
  int quiet = mlxc_set_errors_quiet(1);
  mlxc_wired_guard_release(g);
  mlxc_set_errors_quiet(quiet);
  CHECK_EQ_INT(n_warnings, 1);
  CHECK(strstr(warnings[0], "restore") != NULL);
  CHECK_EQ_INT(wired_guard_live_count(), 0);
  wired_guard_set_hooks(NULL);
  size_t prior;
  mlx_set_wired_limit(&prior, original_limit); /* undo what the injected failure left */
}

TEST(test_bad_arguments_and_null_release) {
  mlxc_wired_guard_release(NULL);
  int quiet = mlxc_set_errors_quiet(1);
  CHECK(mlxc_wired_guard_install(NULL, cpu_dev, 0, NULL, 0) != 0);
  mlxc_wired_guard* g = (mlxc_wired_guard*)&g;
  CHECK(mlxc_wired_guard_install(&g, cpu_dev, 0, NULL, 2) != 0);
  CHECK(g == NULL);
  CHECK(strstr(mlxc_last_error(), "streams") != NULL);
  mlxc_set_errors_quiet(quiet);
  CHECK_EQ_INT(wired_guard_live_count(), 0);
}

TEST(test_absent_device_gives_noop_guard) {
  int gpus = 0;
  mlx_device_count(&gpus, MLX_GPU);
  if (gpus > 0) return; /* only meaningful where no GPU is visible */
  int quiet = mlxc_set_errors_quiet(1);
  mlxc_wired_guard* g = NULL;
  CHECK_EQ_INT(mlxc_wired_guard_install(&g, mlx_device_new_type(MLX_GPU, 0), 1, NULL, 0), 0);
  mlxc_set_errors_quiet(quiet);
  CHECK(g != NULL);
  CHECK_EQ_INT(wired_guard_live_count(), 0);
  CHECK_EQ_INT(core_alloc_wired_limit(), original_limit);
  mlxc_wired_guard_release(g);
}

/* In a child that may lock nothing (RLIMIT_MEMLOCK 0, CAP_IPC_LOCK dropped), the CPU reports no
 * recommended working set, so the guard is a no-op. Exit status: failed step, 0 when all hold. */
static int no_recommendation_child(void) {
  struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2];
  if (syscall(SYS_capget, &header, data) != 0) return 1;
  data[0].effective &= ~(1u << CAP_IPC_LOCK);
  data[0].permitted &= ~(1u << CAP_IPC_LOCK);
  if (syscall(SYS_capset, &header, data) != 0) return 2;
  struct rlimit none = {0, 0};
  if (setrlimit(RLIMIT_MEMLOCK, &none) != 0) return 3;
  if (read_recommended() != 0) return 4;
  mlxc_wired_guard* g = NULL;
  if (mlxc_wired_guard_install(&g, cpu_dev, SIZE_MAX, &streams[0], 1) != 0 || !g) return 5;
  if (wired_guard_live_count() != 0 || core_alloc_wired_limit() != original_limit) return 6;
  mlxc_wired_guard_release(g);
  if (n_warnings != 0) return 7; /* nothing to compare against: no 90% warning */
  return 0;
}

TEST(test_no_recommendation_gives_noop_guard) {
  reset_records();
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) _exit(no_recommendation_child());
  int status = 0;
  CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status));
  CHECK_MSG(WEXITSTATUS(status) == 0, "child failed at step %d", WEXITSTATUS(status));
  wired_guard_set_hooks(NULL);
}

/* ---- many threads ---- */

#define THREADS 16
#define ROUNDS 300
static atomic_int wrong_limit_seen;

/* Holds up to three guards at a time, installing and releasing in random order. */
static void* guard_worker(void* arg) {
  unsigned seed = (unsigned)(uintptr_t)arg;
  mlxc_wired_guard* held[3] = {NULL, NULL, NULL};
  for (int round = 0; round < ROUNDS; round++) {
    int slot = (int)(rand_r(&seed) % 3);
    if (held[slot]) {
      mlxc_wired_guard_release(held[slot]);
      held[slot] = NULL;
    } else if (mlxc_wired_guard_install(&held[slot], cpu_dev, 1, &streams[rand_r(&seed) % 3], 1)) {
      atomic_fetch_add(&wrong_limit_seen, 1);
    }
    bool holding = held[0] || held[1] || held[2];
    if (holding && core_alloc_wired_limit() != recommended) atomic_fetch_add(&wrong_limit_seen, 1);
    if (rand_r(&seed) % 8 == 0) sched_yield();
  }
  for (int i = 2; i >= 0; i--) mlxc_wired_guard_release(held[i]);
  return NULL;
}

TEST(test_threads_installing_and_releasing_share_one_setting) {
  reset_records();
  atomic_store(&wrong_limit_seen, 0);
  pthread_t threads[THREADS];
  for (int t = 0; t < THREADS; t++)
    pthread_create(&threads[t], NULL, guard_worker, (void*)(uintptr_t)(1000 + t));
  for (int t = 0; t < THREADS; t++) pthread_join(threads[t], NULL);
  CHECK_EQ_INT(atomic_load(&wrong_limit_seen), 0);
  CHECK_EQ_INT(wired_guard_live_count(), 0);
  CHECK_EQ_INT(core_alloc_wired_limit(), original_limit);
  CHECK(atomic_load(&installs) >= 1);
  CHECK_EQ_INT(atomic_load(&installs), atomic_load(&restores));
  CHECK_EQ_INT(atomic_load(&out_of_order), 0);
  CHECK_EQ_INT(atomic_load(&syncs_too_late), 0);
  wired_guard_set_hooks(NULL);
}

int main(void) {
  cpu_dev = mlx_device_new_type(MLX_CPU, 0);
  streams[0] = mlx_default_cpu_stream_new();
  streams[1] = mlx_stream_new_device(cpu_dev);
  streams[2] = mlx_stream_new_device(cpu_dev);
  recommended = read_recommended();
  if (recommended < (size_t)1 << 20)
    TEST_SKIP_ALL("this process may lock only %zu bytes; the guard has nothing to install",
                  recommended);
  /* A known starting limit below the recommended one, so that restoring is visible. */
  original_limit = recommended / 2;
  size_t prior;
  mlx_set_wired_limit(&prior, original_limit);
  RUN(test_first_install_sets_recommended_and_last_release_restores);
  RUN(test_warning_when_model_needs_over_90_percent);
  RUN(test_default_warning_goes_to_stderr);
  RUN(test_failure_to_set_limit_is_a_noop_warned_once);
  RUN(test_failed_restore_warns_and_release_returns);
  RUN(test_bad_arguments_and_null_release);
  RUN(test_absent_device_gives_noop_guard);
  RUN(test_no_recommendation_gives_noop_guard);
  RUN(test_threads_installing_and_releasing_share_one_setting);
  mlx_set_wired_limit(&original_limit, prior);
  return TEST_SUMMARY();
}
