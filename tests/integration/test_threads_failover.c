/*
 * Failover under concurrency (issue 5): 16 threads x 200 calls on one
 * router against the emulator, whose models fail at random (503, 500,
 * 429 with Retry-After, 401, dropped connections, truncated and garbage
 * replies, slow answers that trigger hedges). Every call must either
 * succeed on some slug, or fail with LLMR_E_ALL_FAILED and a trace that
 * names every deployment it was given. And a half-open circuit admits a
 * single trial while other threads skip it. Run under ThreadSanitizer by
 * `make tsan` and under AddressSanitizer (leaks) by `make asan`.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "emu.h"
#include <llmroute.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define THREADS 16
#define CALLS 200
#define N_MODELS 6
#define STEPS 1500

static emu E;

static int group_setup(void **state) {
  (void)state;
  return emu_start(&E, NULL);
}

static int group_teardown(void **state) {
  (void)state;
  emu_stop(&E);
  return 0;
}

static uint64_t next_rand(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* slug i: the models are spread over three providers */
static void slug_of(int i, char *out, size_t n) {
  static const char *const prov[] = {"openai", "openrouter", "groq"};
  snprintf(out, n, "%s/fo-%d", prov[i % 3], i);
}

/* A random script of STEPS actions for model fo-i. */
static char *random_script(int i, uint64_t *rng) {
  size_t cap = (size_t)STEPS * 120 + 256, len = 0;
  char *s = malloc(cap);
  int k;
  assert_non_null(s);
  len += (size_t)snprintf(s + len, cap - len,
                          "{\"model\":\"fo-%d\",\"steps\":[", i);
  for (k = 0; k < STEPS; k++) {
    unsigned r = (unsigned)(next_rand(rng) % 100);
    const char *a;
    char buf[128];
    if (r < 70)
      a = "{\"kind\":\"ok\",\"text\":\"fine\"}";
    else if (r < 76)
      a = "{\"kind\":\"ok\",\"text\":\"slow but fine\",\"delay_ms\":60}";
    else if (r < 81)
      a = "{\"kind\":\"error\",\"preset\":\"overloaded\"}";
    else if (r < 85)
      a = "{\"kind\":\"error\",\"preset\":\"server_error\"}";
    else if (r < 89) {
      snprintf(buf, sizeof(buf),
               "{\"kind\":\"error\",\"preset\":\"rate_limit\",\"headers\":"
               "{\"retry-after-ms\":\"%u\"}}",
               (unsigned)(5 + next_rand(rng) % 20));
      a = buf;
    } else if (r < 90)
      a = "{\"kind\":\"error\",\"preset\":\"auth\"}";
    else if (r < 93)
      a = "{\"kind\":\"close\"}";
    else if (r < 95)
      a = "{\"kind\":\"truncate\"}";
    else if (r < 97)
      a = "{\"kind\":\"garbage\"}";
    else if (r < 98)
      a = "{\"kind\":\"error\",\"preset\":\"timeout\"}";
    else
      a = "{\"kind\":\"error\",\"preset\":\"bad_gateway\"}";
    len += (size_t)snprintf(s + len, cap - len, "%s%s", k ? "," : "", a);
  }
  snprintf(s + len, cap - len, "]}");
  return s;
}

typedef struct worker {
  llmr_router *r;
  uint64_t rng;
  int ok, all_failed, other, bad_trace;
  int attempts, skips, hedges;
  char why[512];
} worker;

/* Is `slug` in the trace of resp? */
static int in_trace(const llmr_response *resp, const char *slug) {
  size_t i;
  for (i = 0; i < llmr_response_attempt_count(resp); i++)
    if (strcmp(llmr_response_attempt_model(resp, i), slug) == 0)
      return 1;
  return 0;
}

static int on_event(const llmr_event *ev, void *user) {
  (void)ev;
  (void)user;
  return 0;
}

static void check(worker *w, const llmr_response *resp, llmr_status st,
                  char deploy[][48], int n_deploy) {
  size_t i, n = llmr_response_attempt_count(resp);
  int k;
  w->attempts += (int)n;
  for (i = 0; i < n; i++) {
    w->skips += llmr_response_attempt_skipped(resp, i);
    w->hedges += llmr_response_attempt_hedged(resp, i);
    if (llmr_response_attempt_skipped(resp, i) &&
        (llmr_response_attempt_http_status(resp, i) != 0 ||
         llmr_response_attempt_duration_ms(resp, i) != 0)) {
      snprintf(w->why, sizeof(w->why), "a skip with a reply");
      w->bad_trace++;
    }
    if (i + 1 < n && llmr_response_attempt_status(resp, i) == LLMR_OK) {
      snprintf(w->why, sizeof(w->why), "an OK attempt before the last");
      w->bad_trace++;
    }
    if (llmr_response_attempt_status(resp, i) != LLMR_OK &&
        !llmr_response_attempt_error(resp, i)) {
      snprintf(w->why, sizeof(w->why), "a failed attempt without an error");
      w->bad_trace++;
    }
  }
  if (st == LLMR_OK) {
    w->ok++;
    if (n == 0 || llmr_response_attempt_status(resp, n - 1) != LLMR_OK ||
        strcmp(llmr_response_attempt_model(resp, n - 1),
               llmr_response_model(resp)) != 0 ||
        (strcmp(llmr_response_text(resp), "fine") != 0 &&
         strcmp(llmr_response_text(resp), "slow but fine") != 0)) {
      snprintf(w->why, sizeof(w->why), "success with a bad trace: %s",
               llmr_response_text(resp));
      w->bad_trace++;
    }
    return;
  }
  if (st != LLMR_E_ALL_FAILED) {
    w->other++;
    snprintf(w->why, sizeof(w->why), "%s: %s", llmr_status_name(st),
             llmr_response_error(resp));
    return;
  }
  w->all_failed++;
  for (k = 0; k < n_deploy; k++)
    if (!in_trace(resp, deploy[k])) {
      snprintf(w->why, sizeof(w->why), "%s missing from a failed trace",
               deploy[k]);
      w->bad_trace++;
    }
  if (!llmr_response_error(resp) || llmr_response_model(resp)) {
    snprintf(w->why, sizeof(w->why), "failure without message or with model");
    w->bad_trace++;
  }
}

static void *work(void *arg) {
  worker *w = arg;
  llmr_request *req;
  int c;
  llmr_request_new(&req);
  llmr_request_add_message(req, LLMR_ROLE_USER, "hello there");
  for (c = 0; c < CALLS; c++) {
    char slugs[3][320], deploy[6][48];
    const char *list[3];
    int n_deploy = 0, k, used[N_MODELS] = {0};
    unsigned mode = (unsigned)(next_rand(&w->rng) % 8);
    llmr_response *resp = NULL;
    llmr_status st;
    /* three distinct entries; sometimes one is an inline pair "a|b" */
    for (k = 0; k < 3; k++) {
      int i;
      do
        i = (int)(next_rand(&w->rng) % N_MODELS);
      while (used[i]);
      used[i] = 1;
      slug_of(i, deploy[n_deploy], sizeof(deploy[0]));
      snprintf(slugs[k], sizeof(slugs[k]), "%s", deploy[n_deploy++]);
      if (k == 2 && mode == 0) {
        int j;
        do
          j = (int)(next_rand(&w->rng) % N_MODELS);
        while (used[j]);
        used[j] = 1;
        slug_of(j, deploy[n_deploy], sizeof(deploy[0]));
        snprintf(slugs[k], sizeof(slugs[k]), "%s|%s", deploy[n_deploy - 1],
                 deploy[n_deploy]);
        n_deploy++;
      }
      list[k] = slugs[k];
    }
    /* a quarter of the calls hedge, a quarter stream */
    llmr_request_set_policy(req, mode == 1 || mode == 2
                                     ? "{\"hedge_ms\": 25}"
                                     : NULL);
    if (mode >= 6)
      st = llmr_stream(w->r, list, 3, req, mode == 7 ? on_event : NULL,
                       NULL, &resp);
    else
      st = llmr_complete(w->r, list, 3, req, &resp);
    if (!resp) {
      w->other++;
      snprintf(w->why, sizeof(w->why), "no response");
      continue;
    }
    check(w, resp, st, deploy, n_deploy);
    llmr_response_free(resp);
  }
  llmr_request_free(req);
  return NULL;
}

static void test_threads_random_failures(void **state) {
  char conf[2048], err[LLMR_ERRBUF_SIZE];
  llmr_router *r = NULL;
  worker w[THREADS];
  pthread_t t[THREADS];
  uint64_t rng = 20261124;
  int i, ok = 0, failed = 0, attempts = 0, skips = 0, hedges = 0;
  struct timespec a, b;
  (void)state;
  assert_int_equal(emu_reset(&E), 0);
  for (i = 0; i < N_MODELS; i++) {
    char *s = random_script(i, &rng);
    assert_int_equal(emu_script(&E, s), 0);
    free(s);
  }
  snprintf(conf, sizeof(conf),
           "{\"use_env\": false, \"policy\": {\"retries\": 1, "
           "\"backoff_ms\": 2, \"backoff_cap_ms\": 10, \"longest_wait_ms\": "
           "50, \"attempt_timeout_ms\": 3000, \"cooldown\": {\"failures\": "
           "6, \"window_ms\": 200, \"cooldown_ms\": 20}},"
           " \"providers\": {"
           "\"openai\": {\"base_url\": \"%s/v1\", \"api_key\": \"sk\"},"
           "\"openrouter\": {\"base_url\": \"%s/api/v1\", \"api_key\": \"or\"},"
           "\"groq\": {\"base_url\": \"%s/openai/v1\", \"api_key\": \"gq\"}}}",
           E.base, E.base, E.base);
  assert_int_equal(llmr_router_new_ex(conf, &r, err, sizeof(err)), LLMR_OK);
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (i = 0; i < THREADS; i++) {
    memset(&w[i], 0, sizeof(w[i]));
    w[i].r = r;
    w[i].rng = next_rand(&rng);
    assert_int_equal(pthread_create(&t[i], NULL, work, &w[i]), 0);
  }
  for (i = 0; i < THREADS; i++)
    pthread_join(t[i], NULL);
  clock_gettime(CLOCK_MONOTONIC, &b);
  for (i = 0; i < THREADS; i++) {
    if (w[i].other || w[i].bad_trace)
      fprintf(stderr, "thread %d: %d other, %d bad traces; last: %s\n", i,
              w[i].other, w[i].bad_trace, w[i].why);
    assert_int_equal(w[i].other, 0);
    assert_int_equal(w[i].bad_trace, 0);
    assert_int_equal(w[i].ok + w[i].all_failed, CALLS);
    ok += w[i].ok;
    failed += w[i].all_failed;
    attempts += w[i].attempts;
    skips += w[i].skips;
    hedges += w[i].hedges;
  }
  fprintf(stderr,
          "%d calls in %.1f s: %d answered, %d all failed; %d attempts, "
          "%d skipped by cooldowns or refusals, %d hedges; %d requests\n",
          THREADS * CALLS,
          (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9,
          ok, failed, attempts, skips, hedges, emu_count(&E, NULL));
  assert_true(ok > failed); /* most calls find a working slug */
  assert_true(emu_count(&E, NULL) > THREADS * CALLS / 2); /* real traffic */
  llmr_router_free(r);
}

/* A half-open circuit: one thread's call is the trial, the others skip the
 * model (no request) and answer from the next slug. */
typedef struct trial_job {
  llmr_router *r;
  pthread_barrier_t *bar;
  llmr_status st;
  int skipped_first;
  int first_ok;
} trial_job;

static void *trial_call(void *arg) {
  trial_job *j = arg;
  const char *slugs[] = {"openai/trial", "openrouter/trial-alt"};
  llmr_request *req;
  llmr_response *resp = NULL;
  llmr_request_new(&req);
  llmr_request_add_message(req, LLMR_ROLE_USER, "hi");
  pthread_barrier_wait(j->bar);
  j->st = llmr_complete(j->r, slugs, 2, req, &resp);
  j->skipped_first = llmr_response_attempt_status(resp, 0) == LLMR_E_COOLDOWN &&
                     llmr_response_attempt_skipped(resp, 0);
  j->first_ok = llmr_response_attempt_status(resp, 0) == LLMR_OK;
  llmr_response_free(resp);
  llmr_request_free(req);
  return NULL;
}

static void test_threads_half_open_single_trial(void **state) {
  char conf[1024], err[LLMR_ERRBUF_SIZE];
  const char *slugs[] = {"openai/trial", "openrouter/trial-alt"};
  llmr_router *r = NULL;
  llmr_request *req;
  llmr_response *resp = NULL;
  pthread_barrier_t bar;
  pthread_t t[8];
  trial_job j[8];
  struct timespec pause = {0, 250 * 1000000L};
  int i, trials = 0, skips = 0;
  (void)state;
  assert_int_equal(emu_reset(&E), 0);
  snprintf(conf, sizeof(conf),
           "{\"use_env\": false, \"policy\": {\"cooldown\": {\"failures\": 1,"
           " \"cooldown_ms\": 200}}, \"providers\": {"
           "\"openai\": {\"base_url\": \"%s/v1\", \"api_key\": \"sk\"},"
           "\"openrouter\": {\"base_url\": \"%s/api/v1\", \"api_key\": "
           "\"or\"}}}",
           E.base, E.base);
  assert_int_equal(llmr_router_new_ex(conf, &r, err, sizeof(err)), LLMR_OK);
  assert_int_equal(emu_script(&E, "{\"model\":\"trial\",\"steps\":[{\"kind\":"
                                  "\"error\",\"preset\":\"overloaded\"}],"
                                  "\"default\":{\"kind\":\"ok\",\"delay_ms\":"
                                  "300}}"),
                   0);
  llmr_request_new(&req);
  llmr_request_add_message(req, LLMR_ROLE_USER, "hi");
  assert_int_equal(llmr_complete(r, slugs, 2, req, &resp), LLMR_OK);
  assert_int_equal(llmr_response_attempt_status(resp, 0), LLMR_E_OVERLOADED);
  llmr_response_free(resp);
  nanosleep(&pause, NULL); /* the circuit is half-open now */
  pthread_barrier_init(&bar, NULL, 8);
  for (i = 0; i < 8; i++) {
    j[i].r = r;
    j[i].bar = &bar;
    pthread_create(&t[i], NULL, trial_call, &j[i]);
  }
  for (i = 0; i < 8; i++) {
    pthread_join(t[i], NULL);
    assert_int_equal(j[i].st, LLMR_OK);
    trials += j[i].first_ok;
    skips += j[i].skipped_first;
  }
  pthread_barrier_destroy(&bar);
  assert_int_equal(trials, 1);
  assert_int_equal(skips, 7);
  assert_int_equal(emu_count(&E, "trial"), 2); /* the failure + one trial */
  /* the trial succeeded: closed again */
  assert_int_equal(llmr_complete(r, slugs, 2, req, &resp), LLMR_OK);
  assert_int_equal(llmr_response_attempt_status(resp, 0), LLMR_OK);
  llmr_response_free(resp);
  llmr_request_free(req);
  llmr_router_free(r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_threads_half_open_single_trial),
      cmocka_unit_test(test_threads_random_failures),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
