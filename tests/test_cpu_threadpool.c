/* The CPU thread pool: every index visited exactly once, chunk limits respected, nested and
 * concurrent calls from several user threads complete (no deadlock) with correct results. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "backend/cpu/threadpool.h"
#include "test_util.h"

typedef struct {
  atomic_int* visits;  /* one counter per index */
  int64_t min_chunk;
  atomic_int short_chunks; /* chunks shorter than min_chunk (allowed only for the whole range) */
  int64_t n;
  int nested;          /* run a nested cpu_parallel_for inside each chunk */
} visit_ctx;

static void visit_chunk(void* p, int64_t begin, int64_t end) {
  visit_ctx* c = p;
  if (end - begin < c->min_chunk && !(begin == 0 && end == c->n)) atomic_fetch_add(&c->short_chunks, 1);
  if (c->nested) {
    visit_ctx inner = {c->visits + begin, 1, 0, end - begin, 0};
    cpu_parallel_for(end - begin, 1, visit_chunk, &inner);
    return;
  }
  for (int64_t i = begin; i < end; i++) atomic_fetch_add(&c->visits[i], 1);
}

/* Runs one parallel_for over n indices and returns how many were not visited exactly once. */
static int64_t run_and_count_errors(int64_t n, int64_t min_chunk, int nested, int* short_chunks) {
  atomic_int* visits = calloc((size_t)n + 1, sizeof(atomic_int));
  visit_ctx c = {visits, min_chunk, 0, n, nested};
  cpu_parallel_for(n, min_chunk, visit_chunk, &c);
  int64_t bad = 0;
  for (int64_t i = 0; i < n; i++) bad += atomic_load(&visits[i]) != 1;
  if (short_chunks) *short_chunks = atomic_load(&c.short_chunks);
  free(visits);
  return bad;
}

TEST(test_parallel_for_visits_every_index_once) {
  int64_t sizes[] = {1, 7, 64, 1000, 65537, 1 << 20};
  int64_t chunks[] = {1, 100, 4096};
  for (int s = 0; s < 6; s++)
    for (int k = 0; k < 3; k++) {
      int short_chunks = -1;
      CHECK_EQ_INT(run_and_count_errors(sizes[s], chunks[k], 0, &short_chunks), 0);
      CHECK_EQ_INT(short_chunks, 0);
    }
}

TEST(test_parallel_for_empty_range_calls_nothing) {
  visit_ctx c = {NULL, 1, 0, 0, 0};  /* visits NULL: any call would crash */
  cpu_parallel_for(0, 1, visit_chunk, &c);
  cpu_parallel_for(-5, 1, visit_chunk, &c);
  CHECK(1);
}

TEST(test_parallel_for_nested_call_runs_inline) {
  CHECK_EQ_INT(run_and_count_errors(100000, 1000, 1, NULL), 0);
}

static void* hammer(void* arg) {
  int64_t* bad = arg;
  for (int r = 0; r < 50; r++) *bad += run_and_count_errors(20000 + r * 37, 64, r % 3 == 0, NULL);
  return NULL;
}

TEST(test_parallel_for_from_many_threads_concurrently) {
  enum { T = 6 };
  pthread_t th[T];
  int64_t bad[T] = {0};
  for (int i = 0; i < T; i++) pthread_create(&th[i], NULL, hammer, &bad[i]);
  for (int i = 0; i < T; i++) pthread_join(th[i], NULL);
  for (int i = 0; i < T; i++) CHECK_EQ_INT(bad[i], 0);
}

typedef struct {
  atomic_int calls;
} count_ctx;

static void count_chunk(void* p, int64_t begin, int64_t end) {
  count_ctx* c = p;
  atomic_fetch_add(&c->calls, 1);
}

TEST(test_max_threads_one_runs_single_chunk) {
  int before = cpu_max_threads();
  CHECK(before >= 1);
  cpu_set_max_threads(1);
  CHECK_EQ_INT(cpu_max_threads(), 1);
  count_ctx c = {0};
  cpu_parallel_for(1 << 20, 1, count_chunk, &c);
  CHECK_EQ_INT(atomic_load(&c.calls), 1);
  cpu_set_max_threads(before);
  CHECK_EQ_INT(cpu_max_threads(), before);
  /* A range under two chunks is one inline call whatever the pool size. */
  count_ctx d = {0};
  cpu_parallel_for(100, 64, count_chunk, &d);
  CHECK_EQ_INT(atomic_load(&d.calls), 1);
}

int main(void) {
  RUN(test_parallel_for_visits_every_index_once);
  RUN(test_parallel_for_empty_range_calls_nothing);
  RUN(test_parallel_for_nested_call_runs_inline);
  RUN(test_parallel_for_from_many_threads_concurrently);
  RUN(test_max_threads_one_runs_single_chunk);
  return TEST_SUMMARY();
}
