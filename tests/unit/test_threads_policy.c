/*
 * The circuit-breaker table under contention: 16 threads hammer check /
 * report / report_trial / earliest on a few shared keys (plus a stream of
 * unique keys that forces evictions) with a shared fake clock. Invariants:
 * never two TRIAL holders of one key at once, SKIP's "until" is never in
 * the past for an open key, the table never exceeds max_keys. Run under
 * ThreadSanitizer by `make tsan`.
 *
 * SPDX-License-Identifier: MIT
 */
/* cmocka.h needs these first */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "policy.h"

#define THREADS 16
#define ITERS 20000
#define NKEYS 6
#define MAX_KEYS 16

static const char *const keys[NKEYS] = {
    "openai", "anthropic", "openai/gpt-4o", "google", "mistral/large", "groq"};

static llmr__health *H;
static atomic_llong clock_ms;                /* the fake monotonic clock */
static atomic_int in_trial[NKEYS];           /* TRIAL holders per key */
static atomic_int violations;                /* two holders at once */
static atomic_int bad_until;                 /* SKIP until < now */
static atomic_int oversize;                  /* size > max_keys seen */
static atomic_long n_allow, n_skip, n_trial; /* decisions seen */

typedef struct worker_arg {
  int id;
  uint64_t rng;
} worker_arg;

static int64_t tick(int64_t by) {
  return (int64_t)atomic_fetch_add(&clock_ms, (long long)by) + by;
}

static void *worker(void *p) {
  worker_arg *a = p;
  char unique[48];
  int i;
  for (i = 0; i < ITERS; i++) {
    size_t k = (size_t)llmr__rng_below(&a->rng, NKEYS);
    int64_t now = tick(1), until = -1;
    uint64_t r = llmr__rng_below(&a->rng, 100);
    int64_t hint = r < 3 ? (int64_t)llmr__rng_below(&a->rng, 40) + 1 : 0;
    llmr__health_decision d = llmr__health_check(H, keys[k], now, &until);
    switch (d) {
    case LLMR__HEALTH_ALLOW:
      atomic_fetch_add(&n_allow, 1);
      /* 35% failures: keys keep opening */
      llmr__health_report(H, keys[k], tick(1), r >= 35, hint);
      break;
    case LLMR__HEALTH_SKIP:
      atomic_fetch_add(&n_skip, 1);
      if (until < now)
        atomic_fetch_add(&bad_until, 1);
      break;
    case LLMR__HEALTH_TRIAL:
      atomic_fetch_add(&n_trial, 1);
      if (atomic_fetch_add(&in_trial[k], 1) != 0)
        atomic_fetch_add(&violations, 1);
      /* the probe takes a while; others check meanwhile */
      sched_yield();
      tick((int64_t)llmr__rng_below(&a->rng, 5));
      /* leave before reporting: once reported, a new TRIAL may start */
      atomic_fetch_sub(&in_trial[k], 1);
      llmr__health_report_trial(H, keys[k], tick(1), r >= 50, hint);
      break;
    }
    /* keys seen once: exercise eviction under contention */
    if (r % 10 == 0) {
      snprintf(unique, sizeof(unique), "t%d/k%d", a->id, i);
      llmr__health_report(H, unique, tick(1), 0, r % 20 == 0 ? 50 : 0);
    }
    if (r % 16 == 0) {
      int64_t t = tick(0);
      if (llmr__health_earliest(H, (const char *const *)keys, NKEYS, t) < t)
        atomic_fetch_add(&bad_until, 1);
      if (llmr__health_size(H) > MAX_KEYS)
        atomic_fetch_add(&oversize, 1);
    }
  }
  return NULL;
}

static void test_threads_breaker(void **state) {
  pthread_t th[THREADS];
  worker_arg args[THREADS];
  llmr__health_opts o;
  int i;
  (void)state;
  memset(&o, 0, sizeof(o));
  o.failures = 2;
  o.window_ms = 40;
  o.cooldown_ms = 30;
  o.trial_timeout_ms = INT64_C(1) << 50; /* a trial always reports here */
  o.max_keys = MAX_KEYS;
  H = llmr__health_new(&o);
  assert_non_null(H);
  atomic_init(&clock_ms, 1000);
  for (i = 0; i < NKEYS; i++)
    atomic_init(&in_trial[i], 0);
  for (i = 0; i < THREADS; i++) {
    args[i].id = i;
    llmr__rng_seed(&args[i].rng);
    assert_int_equal(pthread_create(&th[i], NULL, worker, &args[i]), 0);
  }
  for (i = 0; i < THREADS; i++)
    pthread_join(th[i], NULL);
  printf("# allow %ld skip %ld trial %ld, %zu keys stored\n",
         atomic_load(&n_allow), atomic_load(&n_skip), atomic_load(&n_trial),
         llmr__health_size(H));
  assert_int_equal(atomic_load(&violations), 0);
  assert_int_equal(atomic_load(&bad_until), 0);
  assert_int_equal(atomic_load(&oversize), 0);
  assert_true(llmr__health_size(H) <= MAX_KEYS);
  /* every state was visited */
  assert_true(atomic_load(&n_allow) > 1000);
  assert_true(atomic_load(&n_skip) > 1000);
  assert_true(atomic_load(&n_trial) > 100);
  for (i = 0; i < NKEYS; i++)
    assert_int_equal(atomic_load(&in_trial[i]), 0);
  llmr__health_free(H);
}

/* Round-robin and the per-thread PRNG from many threads. */
static llmr__rr RR;
static atomic_long rr_counts[3];

static void *rr_worker(void *p) {
  int i;
  (void)p;
  for (i = 0; i < 30000; i++) {
    atomic_fetch_add(&rr_counts[llmr__rr_next(&RR, 3)], 1);
    if (llmr__backoff_ms((unsigned)(i % 8), 10, 1000, NULL) > 1000)
      atomic_fetch_add(&rr_counts[0], 1000000);
  }
  return NULL;
}

static void test_threads_round_robin(void **state) {
  pthread_t th[THREADS];
  int i;
  (void)state;
  llmr__rr_init(&RR, 0);
  for (i = 0; i < THREADS; i++)
    assert_int_equal(pthread_create(&th[i], NULL, rr_worker, NULL), 0);
  for (i = 0; i < THREADS; i++)
    pthread_join(th[i], NULL);
  /* 16 * 30000 = 480000 picks, exactly a third each */
  for (i = 0; i < 3; i++)
    assert_int_equal(atomic_load(&rr_counts[i]), 160000);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_threads_breaker),
      cmocka_unit_test(test_threads_round_robin),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
