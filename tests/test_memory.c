/* Memory: the caching allocator's counters and limits through mlx-c memory.h, wired (mlock'ed)
 * pages checked against the kernel's own count (VmLck), and mlx_device_info for the CPU. */
#include <linux/capability.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/allocator.h"
#include "mlx/c/mlx.h"
#include "mlxc/error.h"
#include "test_util.h"

#define KB ((size_t)1024)
#define MB (KB * KB)

static mlx_stream cpu;

/* An evaluated uint8 array of n zero bytes (an empty handle when the allocation fails). */
static mlx_array bytes_array(size_t n) {
  void* zeros = calloc(n ? n : 1, 1);
  int shape[1] = {(int)n};
  mlx_array a = mlx_array_new_data(zeros, shape, 1, MLX_UINT8);
  free(zeros);
  return a;
}

static size_t active(void) {
  size_t v = 0;
  mlx_get_active_memory(&v);
  return v;
}

static size_t cached(void) {
  size_t v = 0;
  mlx_get_cache_memory(&v);
  return v;
}

static size_t peak(void) {
  size_t v = 0;
  mlx_get_peak_memory(&v);
  return v;
}

/* Bytes the kernel counts as locked in this process. */
static size_t vm_locked(void) {
  FILE* f = fopen("/proc/self/status", "r");
  if (!f) return SIZE_MAX;
  char line[256];
  size_t kb = SIZE_MAX;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "VmLck: %zu kB", &kb) == 1) break;
  fclose(f);
  return kb == SIZE_MAX ? kb : kb * KB;
}

static size_t set_wired(size_t limit) {
  size_t prior = 0;
  CHECK_EQ_INT(mlx_set_wired_limit(&prior, limit), 0);
  return prior;
}

/* ---- counters ---- */

TEST(test_active_and_peak_follow_live_arrays) {
  mlx_clear_cache();
  size_t before = active();
  mlx_reset_peak_memory();
  CHECK_EQ_INT(peak(), before);
  mlx_array a = bytes_array(100000);
  size_t during = active();
  CHECK_MSG(during >= before + 100000 && during <= before + 100000 + 16 * KB,
            "active grew by %zu for 100000 bytes", during - before);
  CHECK(peak() >= during);
  mlx_array_free(a);
  CHECK_EQ_INT(active(), before);
  CHECK_EQ_INT(peak(), during); /* peak remembers the high-water mark */
  CHECK_EQ_INT(mlx_reset_peak_memory(), 0);
  CHECK_EQ_INT(peak(), before);
}

TEST(test_freed_blocks_go_to_cache_until_cleared) {
  mlx_clear_cache();
  CHECK_EQ_INT(cached(), 0);
  size_t before = active();
  mlx_array a = bytes_array(200000);
  size_t block = active() - before;
  mlx_array_free(a);
  CHECK_EQ_INT(cached(), block);
  CHECK_EQ_INT(mlx_clear_cache(), 0);
  CHECK_EQ_INT(cached(), 0);
}

TEST(test_same_size_allocation_reuses_cached_block) {
  mlx_clear_cache();
  mlx_array a = bytes_array(300000);
  const uint8_t* first = mlx_array_data_uint8(a);
  size_t live = active();
  mlx_array_free(a);
  size_t cache_before = cached();
  CHECK(cache_before > 0);
  mlx_array b = bytes_array(300000);
  /* The same block comes back: same address, cache shrinks by it, no growth in use. */
  CHECK(mlx_array_data_uint8(b) == first);
  CHECK_EQ_INT(cached(), 0);
  CHECK_EQ_INT(active(), live);
  mlx_array_free(b);
  mlx_clear_cache();
}

/* A request takes the smallest cached block of at least its size and at most twice it. */
TEST(test_cache_reuse_picks_smallest_fit_within_twice_the_size) {
  mlx_clear_cache();
  mlx_array a = bytes_array(40000), b = bytes_array(24000), c = bytes_array(100000);
  const void *pa = mlx_array_data_uint8(a), *pb = mlx_array_data_uint8(b),
             *pc = mlx_array_data_uint8(c);
  mlx_array_free(a);
  mlx_array_free(b);
  mlx_array_free(c);
  mlx_array r1 = bytes_array(20000); /* b (24000) fits best */
  mlx_array r2 = bytes_array(30000); /* b is taken; a (40000) is within twice the size */
  mlx_array r3 = bytes_array(20000); /* only c (100000) is left: too large, a new block */
  CHECK(mlx_array_data_uint8(r1) == pb);
  CHECK(mlx_array_data_uint8(r2) == pa);
  CHECK(mlx_array_data_uint8(r3) != pc);
  mlx_array_free(r1);
  mlx_array_free(r2);
  mlx_array_free(r3);
  /* The same rule above 1 MB, where blocks of many sizes share one list. */
  mlx_clear_cache();
  mlx_array d = bytes_array(3 * MB), e = bytes_array(5 * MB);
  const void *pd = mlx_array_data_uint8(d), *pe = mlx_array_data_uint8(e);
  mlx_array_free(e);
  mlx_array_free(d);
  mlx_array r4 = bytes_array(MB); /* d is more than twice as large: a new block */
  CHECK(mlx_array_data_uint8(r4) != pd && mlx_array_data_uint8(r4) != pe);
  mlx_array r5 = bytes_array(2 * MB + MB / 2); /* both fit; d is the smaller */
  CHECK(mlx_array_data_uint8(r5) == pd);
  mlx_array_free(r4);
  mlx_array_free(r5);
  mlx_clear_cache();
}

TEST(test_cache_limit_bounds_cache_and_zero_disables_it) {
  mlx_clear_cache();
  size_t original = 0, prior = 0;
  CHECK_EQ_INT(mlx_set_cache_limit(&original, 200 * KB), 0);
  CHECK_EQ_INT(mlx_set_cache_limit(&prior, 200 * KB), 0);
  CHECK_EQ_INT(prior, 200 * KB); /* the setter returns the prior value */
  mlx_array blocks[5];
  for (int i = 0; i < 5; i++) blocks[i] = bytes_array(64 * KB);
  for (int i = 0; i < 5; i++) {
    mlx_array_free(blocks[i]);
    CHECK(cached() <= 200 * KB);
  }
  /* Three 64 KB blocks fit in 200 KB, a fourth would not. */
  CHECK_EQ_INT(cached(), 3 * 64 * KB);
  /* Lowering the limit below the cache trims it at once. */
  mlx_set_cache_limit(&prior, 100 * KB);
  CHECK_EQ_INT(cached(), 64 * KB);
  mlx_set_cache_limit(&prior, 0);
  CHECK_EQ_INT(cached(), 0);
  mlx_array a = bytes_array(64 * KB);
  mlx_array_free(a);
  CHECK_EQ_INT(cached(), 0);
  mlx_set_cache_limit(&prior, original);
  CHECK_EQ_INT(prior, 0);
}

/* ---- the memory limit ---- */

TEST(test_allocation_past_memory_limit_fails_and_process_continues) {
  mlx_clear_cache();
  size_t original = 0, prior = 0, got = 0;
  mlx_get_memory_limit(&original);
  CHECK(original > 0);
  mlx_array a = bytes_array(MB);
  size_t limit = active() + MB / 2;
  CHECK_EQ_INT(mlx_set_memory_limit(&prior, limit), 0);
  CHECK_EQ_INT(prior, original);
  CHECK_EQ_INT(mlx_get_memory_limit(&got), 0);
  CHECK_EQ_INT(got, limit);

  int quiet = mlxc_set_errors_quiet(1);
  mlx_array big = bytes_array(MB);
  CHECK(big.ctx == NULL);
  CHECK(strstr(mlxc_last_error(), "memory limit") != NULL);
  /* The same through evaluation: a + a needs another 1 MB. */
  mlx_array sum = mlx_array_new();
  CHECK_EQ_INT(mlx_add(&sum, a, a, cpu), 0);
  CHECK(mlx_array_eval(sum) != 0);
  CHECK(strstr(mlxc_last_error(), "memory limit") != NULL);
  mlxc_set_errors_quiet(quiet);

  mlx_array small = bytes_array(100 * KB); /* still within the limit: works */
  CHECK(small.ctx != NULL);
  mlx_array_free(small);
  mlx_array_free(sum);
  mlx_array_free(a);
  mlx_set_memory_limit(&prior, original);
  CHECK_EQ_INT(prior, limit);
}

TEST(test_memory_limit_reclaims_cache_before_failing) {
  mlx_clear_cache();
  size_t original = 0, prior = 0;
  mlx_array a = bytes_array(MB);
  mlx_array_free(a); /* 1 MB now cached */
  CHECK(cached() >= MB);
  mlx_set_memory_limit(&original, active() + MB + MB / 2);
  /* 1.5 MB does not fit next to the cached 1 MB: the cache is given back instead of failing. */
  mlx_array b = bytes_array(MB + MB / 2);
  CHECK(b.ctx != NULL);
  CHECK_EQ_INT(cached(), 0);
  mlx_array_free(b);
  mlx_set_memory_limit(&prior, original);
  mlx_clear_cache();
}

TEST(test_oversized_request_fails_cleanly) {
  int quiet = mlxc_set_errors_quiet(1);
  CHECK(core_alloc(SIZE_MAX - 8) == NULL); /* rounding must not wrap to a small block */
  CHECK(core_alloc(SIZE_MAX / 2) == NULL);
  mlxc_set_errors_quiet(quiet);
  CHECK(strlen(mlxc_last_error()) > 0);
}

/* ---- concurrency ---- */

static void* churn(void* arg) {
  unsigned seed = (unsigned)(uintptr_t)arg;
  void* live[16] = {0};
  for (int i = 0; i < 20000; i++) {
    int slot = (int)(rand_r(&seed) % 16);
    core_free(live[slot]);
    live[slot] = rand_r(&seed) % 4 ? core_alloc(1 + rand_r(&seed) % 100000) : NULL;
    if (live[slot]) memset(live[slot], slot, 64);
  }
  for (int i = 0; i < 16; i++) core_free(live[i]);
  return NULL;
}

TEST(test_threads_allocating_concurrently_keep_counters_exact) {
  mlx_clear_cache();
  size_t original = 0, prior = 0;
  mlx_set_cache_limit(&original, 4 * MB);
  size_t before = active();
  pthread_t threads[8];
  for (int t = 0; t < 8; t++) pthread_create(&threads[t], NULL, churn, (void*)(uintptr_t)(t + 1));
  for (int t = 0; t < 8; t++) pthread_join(threads[t], NULL);
  CHECK_EQ_INT(active(), before);
  CHECK(cached() <= 4 * MB);
  mlx_set_cache_limit(&prior, original);
  mlx_clear_cache();
}

/* ---- the wired limit ---- */

/* How much this process may lock, capped so that the tests stay small. */
static size_t test_wired_budget(void) {
  size_t lockable = core_lockable_memory();
  return lockable < 32 * MB ? lockable : 32 * MB;
}

TEST(test_wired_limit_setter_returns_prior_value) {
  size_t budget = test_wired_budget();
  size_t original = set_wired(budget / 2);
  CHECK_EQ_INT(set_wired(budget / 4), budget / 2);
  CHECK_EQ_INT(set_wired(original), budget / 4);
}

TEST(test_wired_blocks_are_locked_in_ram) {
  size_t budget = test_wired_budget();
  if (budget < 4 * MB) {
    printf("  (skipped: only %zu bytes may be locked)\n", budget);
    return;
  }
  mlx_clear_cache();
  size_t base = vm_locked();
  size_t original = set_wired(budget);
  mlx_array a = bytes_array(2 * MB);
  /* The kernel's count grew by what the allocator says it wired: about the whole 2 MB (the
   * partial pages at either end of a block stay pageable). */
  size_t wired = core_alloc_wired_bytes();
  CHECK_EQ_INT(vm_locked() - base, wired);
  CHECK_MSG(wired >= 2 * MB - 8 * KB && wired <= 2 * MB, "wired %zu", wired);
  /* Cached blocks stay wired; setting the limit to 0 unlocks them. */
  mlx_array_free(a);
  CHECK_EQ_INT(vm_locked() - base, wired);
  set_wired(0);
  CHECK_EQ_INT(core_alloc_wired_bytes(), 0);
  CHECK_EQ_INT(vm_locked(), base);
  set_wired(original);
  mlx_clear_cache();
}

TEST(test_lowering_wired_limit_unlocks_live_blocks) {
  size_t budget = test_wired_budget();
  if (budget < 8 * MB) {
    printf("  (skipped: only %zu bytes may be locked)\n", budget);
    return;
  }
  mlx_clear_cache();
  size_t base = vm_locked();
  size_t original = set_wired(budget);
  mlx_array a = bytes_array(2 * MB), b = bytes_array(2 * MB);
  size_t both = core_alloc_wired_bytes();
  CHECK(both >= 4 * MB - 16 * KB);
  set_wired(3 * MB); /* one of the two live blocks must let go */
  size_t one = core_alloc_wired_bytes();
  CHECK_MSG(one <= 3 * MB && one >= 2 * MB - 8 * KB, "wired %zu", one);
  CHECK_EQ_INT(vm_locked() - base, one);
  set_wired(0);
  CHECK_EQ_INT(vm_locked(), base);
  mlx_array_free(a);
  mlx_array_free(b);
  set_wired(original);
  mlx_clear_cache();
}

TEST(test_blocks_sharing_pages_keep_lock_count_exact) {
  size_t budget = test_wired_budget();
  if (budget < 4 * MB) {
    printf("  (skipped: only %zu bytes may be locked)\n", budget);
    return;
  }
  mlx_clear_cache();
  size_t base = vm_locked();
  size_t original = set_wired(budget);
  /* 9000-byte blocks straddle pages; unlocking one must not unlock a neighbour's pages. */
  mlx_array blocks[64];
  for (int i = 0; i < 64; i++) blocks[i] = bytes_array(9000);
  CHECK(core_alloc_wired_bytes() > 0);
  CHECK_EQ_INT(vm_locked() - base, core_alloc_wired_bytes());
  for (int i = 0; i < 64; i += 2) mlx_array_free(blocks[i]);
  mlx_clear_cache(); /* releases (and unlocks) every other block */
  CHECK_EQ_INT(vm_locked() - base, core_alloc_wired_bytes());
  for (int i = 1; i < 64; i += 2) mlx_array_free(blocks[i]);
  set_wired(original);
  mlx_clear_cache();
  CHECK_EQ_INT(vm_locked(), base);
}

/* Drops CAP_IPC_LOCK from this process (a forked child), so that RLIMIT_MEMLOCK applies. */
static int drop_ipc_lock(void) {
  struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2];
  if (syscall(SYS_capget, &header, data) != 0) return -1;
  data[0].effective &= ~(1u << CAP_IPC_LOCK);
  data[0].permitted &= ~(1u << CAP_IPC_LOCK);
  return (int)syscall(SYS_capset, &header, data);
}

/* In a child without CAP_IPC_LOCK and with RLIMIT_MEMLOCK = 1 MB: a wired limit above 1 MB is
 * refused with a clear message and leaves the limit as it was, one below is accepted, and the
 * kernel agrees (mlock of 2 MB fails there). Exit status: 0 when all of that holds, else the
 * number of the failed step. This covers the decision against the real rlimit and capability;
 * it does not cover a kernel refusing mlock below the rlimit (that only leaves blocks unwired). */
static int wired_limit_child(void) {
  mlxc_set_errors_quiet(1);
  if (core_can_lock_unlimited() && drop_ipc_lock() != 0) return 1;
  if (core_can_lock_unlimited()) return 2;
  struct rlimit rl = {MB, MB};
  if (setrlimit(RLIMIT_MEMLOCK, &rl) != 0) return 3;
  if (core_lockable_memory() != MB) return 4;
  size_t prior = 12345;
  if (mlx_set_wired_limit(&prior, 2 * MB) == 0) return 5;
  if (!strstr(mlxc_last_error(), "RLIMIT_MEMLOCK")) return 6;
  if (prior != 12345 || core_alloc_wired_limit() != 0) return 7;
  if (mlx_set_wired_limit(&prior, MB / 2) != 0 || prior != 0) return 8;
  void* probe = malloc(2 * MB); /* the syscall itself: sanitizers turn mlock() into a no-op */
  int refused = probe && syscall(SYS_mlock, probe, 2 * MB) != 0;
  free(probe);
  if (!refused) return 9;
  return 0;
}

TEST(test_wired_limit_above_memlock_is_refused_without_cap_ipc_lock) {
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) _exit(wired_limit_child());
  int status = 0;
  CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status));
  CHECK_MSG(WEXITSTATUS(status) == 0, "child failed at step %d", WEXITSTATUS(status));
}

/* ---- device info ---- */

static size_t expected_recommended(size_t memory) {
  size_t lockable = core_lockable_memory(); /* checked against the kernel in the child above */
  size_t three_quarters = memory / 4 * 3;
  return lockable < three_quarters ? lockable : three_quarters;
}

TEST(test_cpu_device_info_has_the_documented_keys) {
  mlx_device dev = mlx_device_new_type(MLX_CPU, 0);
  mlx_device_info info = mlx_device_info_new();
  CHECK_EQ_INT(mlx_device_info_get(&info, dev), 0);
  const char* text = NULL;
  bool is_string = false, exists = false;
  CHECK_EQ_INT(mlx_device_info_is_string(&is_string, info, "device_name"), 0);
  CHECK(is_string);
  CHECK_EQ_INT(mlx_device_info_get_string(&text, info, "device_name"), 0);
  CHECK(text && strlen(text) > 0);
  CHECK_EQ_INT(mlx_device_info_get_string(&text, info, "architecture"), 0);
#if defined(__x86_64__)
  CHECK_STR(text, "x86_64");
#elif defined(__aarch64__)
  CHECK_STR(text, "aarch64");
#endif
  size_t memory = 0, recommended = 0;
  CHECK_EQ_INT(mlx_device_info_is_string(&is_string, info, "memory_size"), 0);
  CHECK(!is_string);
  CHECK_EQ_INT(mlx_device_info_get_size(&memory, info, "memory_size"), 0);
  CHECK_EQ_INT(memory, (size_t)sysconf(_SC_PHYS_PAGES) * (size_t)sysconf(_SC_PAGESIZE));
  CHECK_EQ_INT(mlx_device_info_get_size(&recommended, info, "max_recommended_working_set_size"), 0);
  CHECK_EQ_INT(recommended, expected_recommended(memory));
  CHECK_EQ_INT(mlx_device_info_has_key(&exists, info, "memory_size"), 0);
  CHECK(exists);

  mlx_vector_string keys = mlx_vector_string_new();
  CHECK_EQ_INT(mlx_device_info_get_keys(&keys, info), 0);
  CHECK_EQ_INT(mlx_vector_string_size(keys), 4);
  mlx_vector_string_free(keys);

  int quiet = mlxc_set_errors_quiet(1);
  CHECK_EQ_INT(mlx_device_info_has_key(&exists, info, "no_such_key"), 0);
  CHECK(!exists);
  CHECK(mlx_device_info_get_size(&memory, info, "no_such_key") != 0);
  CHECK(strstr(mlxc_last_error(), "no_such_key") != NULL);
  CHECK(mlx_device_info_get_size(&memory, info, "device_name") != 0); /* a string, not a size */
  CHECK(mlx_device_info_get_string(&text, info, "memory_size") != 0);
  CHECK(mlx_device_info_get_string(NULL, info, "device_name") != 0);
  mlxc_set_errors_quiet(quiet);
  mlx_device_info_free(info);
}

TEST(test_device_info_of_absent_gpu_fails) {
  int gpus = 0;
  mlx_device_count(&gpus, MLX_GPU);
  if (gpus > 0) return; /* only meaningful where no GPU is visible */
  mlx_device_info info = mlx_device_info_new();
  int quiet = mlxc_set_errors_quiet(1);
  CHECK(mlx_device_info_get(&info, mlx_device_new_type(MLX_GPU, 0)) != 0);
  CHECK(strstr(mlxc_last_error(), "GPU") != NULL);
  mlxc_set_errors_quiet(quiet);
  mlx_device_info_free(info);
}

int main(void) {
  cpu = mlx_default_cpu_stream_new();
  RUN(test_active_and_peak_follow_live_arrays);
  RUN(test_freed_blocks_go_to_cache_until_cleared);
  RUN(test_same_size_allocation_reuses_cached_block);
  RUN(test_cache_reuse_picks_smallest_fit_within_twice_the_size);
  RUN(test_cache_limit_bounds_cache_and_zero_disables_it);
  RUN(test_allocation_past_memory_limit_fails_and_process_continues);
  RUN(test_memory_limit_reclaims_cache_before_failing);
  RUN(test_oversized_request_fails_cleanly);
  RUN(test_threads_allocating_concurrently_keep_counters_exact);
  RUN(test_wired_limit_setter_returns_prior_value);
  RUN(test_wired_blocks_are_locked_in_ram);
  RUN(test_lowering_wired_limit_unlocks_live_blocks);
  RUN(test_blocks_sharing_pages_keep_lock_count_exact);
  RUN(test_wired_limit_above_memlock_is_refused_without_cap_ipc_lock);
  RUN(test_cpu_device_info_has_the_documented_keys);
  RUN(test_device_info_of_absent_gpu_fails);
  return TEST_SUMMARY();
}
