/* Many threads share one router: every call must come back right, with
 * fallback, and the connection pool must be reused rather than reopened
 * per call. Run under ThreadSanitizer by `make tsan`. */
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

#define THREADS 8
#define CALLS 25

static emu E;
static llmr_router *R;

typedef struct job {
  int id;
  int ok;
  int wrong;
} job;

static void *worker(void *arg) {
  job *j = arg;
  int i;
  char prompt[64], want[64];
  for (i = 0; i < CALLS; i++) {
    /* every third call starts on a model that is down */
    const char *down[] = {"openai/m-down", "openrouter/vendor/m-up"};
    const char *up[] = {"openrouter/vendor/m-up"};
    int use_down = (i % 3) == 0;
    llmr_request *req;
    llmr_response *resp = NULL;
    llmr_status st;
    snprintf(prompt, sizeof(prompt), "thread %d call %d", j->id, i);
    if (llmr_request_new(&req) != LLMR_OK ||
        llmr_request_add_message(req, LLMR_ROLE_USER, prompt) != LLMR_OK) {
      j->wrong++;
      llmr_request_free(req);
      continue;
    }
    st = llmr_complete(R, use_down ? down : up, use_down ? 2 : 1, req, &resp);
    snprintf(want, sizeof(want), "Hello from vendor/m-up!");
    if (st == LLMR_OK && strcmp(llmr_response_text(resp), want) == 0 &&
        llmr_response_attempt_count(resp) == (size_t)(use_down ? 2 : 1) &&
        strcmp(llmr_response_model(resp), "openrouter/vendor/m-up") == 0)
      j->ok++;
    else
      j->wrong++;
    llmr_response_free(resp);
    llmr_request_free(req);
  }
  return NULL;
}

static void test_shared_router(void **state) {
  pthread_t th[THREADS];
  job jobs[THREADS];
  char *conf;
  cJSON *stats;
  int i, ok = 0, wrong = 0, conns;
  (void)state;
  assert_int_equal(emu_script(&E, "{\"model\":\"m-down\",\"default\":{"
                                  "\"kind\":\"error\",\"preset\":"
                                  "\"overloaded\"}}"),
                   0);
  conf = emu_config(&E, "");
  assert_int_equal(llmr_router_new(conf, &R), LLMR_OK);
  free(conf);
  for (i = 0; i < THREADS; i++) {
    jobs[i].id = i;
    jobs[i].ok = jobs[i].wrong = 0;
    assert_int_equal(pthread_create(&th[i], NULL, worker, &jobs[i]), 0);
  }
  for (i = 0; i < THREADS; i++) {
    pthread_join(th[i], NULL);
    ok += jobs[i].ok;
    wrong += jobs[i].wrong;
  }
  llmr_router_free(R);
  assert_int_equal(wrong, 0);
  assert_int_equal(ok, THREADS * CALLS);
  /* each call hit the emulator (plus one failed try every third call) */
  assert_int_equal(emu_count(&E, "vendor/m-up"), THREADS * CALLS);
  stats = emu_get(&E, "/_emu/stats");
  conns = cJSON_GetObjectItem(stats, "connections")->valueint;
  cJSON_Delete(stats);
  /* keep-alive: far fewer connections than requests */
  fprintf(stderr, "%d requests over %d connections\n",
          emu_count(&E, NULL), conns);
  assert_true(conns <= 4 * THREADS);
}

static int setup(void **state) {
  (void)state;
  return emu_start(&E, NULL);
}

static int teardown(void **state) {
  (void)state;
  emu_stop(&E);
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_shared_router),
  };
  return cmocka_run_group_tests_name("integration/threads", tests, setup,
                                     teardown);
}
