/* Many threads stream through one router at once: each call's events come
 * back on its own thread, in order and complete, with fallback and with
 * cancellation mixed in. Run under ThreadSanitizer by `make tsan`. */
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
#define CALLS 15

static emu E;
static llmr_router *R;

typedef struct job {
  int id;
  int ok;
  int wrong;
} job;

typedef struct seen {
  pthread_t self;
  char text[256];
  int attempts, fallbacks, done, other_thread, cancel_after;
  int content;
} seen;

static int on_event(const llmr_event *ev, void *user) {
  seen *s = user;
  if (!pthread_equal(pthread_self(), s->self))
    s->other_thread++;
  switch (ev->type) {
  case LLMR_EVENT_ATTEMPT:
    s->attempts++;
    break;
  case LLMR_EVENT_FALLBACK:
    s->fallbacks++;
    break;
  case LLMR_EVENT_TEXT:
    if (strlen(s->text) + ev->len < sizeof(s->text))
      strncat(s->text, ev->text, ev->len);
    s->content++;
    return s->cancel_after && s->content == s->cancel_after;
  case LLMR_EVENT_DONE:
    s->done++;
    break;
  default:
    break;
  }
  return 0;
}

static void *worker(void *arg) {
  job *j = arg;
  int i;
  for (i = 0; i < CALLS; i++) {
    const char *down[] = {"openai/m-down", "openrouter/vendor/m-up"};
    const char *up[] = {"openrouter/vendor/m-up"};
    int use_down = (i % 3) == 0, cancel = (i % 5) == 4;
    llmr_request *req;
    llmr_response *resp = NULL;
    llmr_status st;
    seen s;
    memset(&s, 0, sizeof(s));
    s.self = pthread_self();
    s.cancel_after = cancel ? 2 : 0;
    if (llmr_request_new(&req) != LLMR_OK ||
        llmr_request_add_message(req, LLMR_ROLE_USER, "stream please") !=
            LLMR_OK) {
      j->wrong++;
      llmr_request_free(req);
      continue;
    }
    st = llmr_stream(R, use_down ? down : up, use_down ? 2 : 1, req, on_event,
                     &s, &resp);
    if (s.other_thread == 0 &&
        (cancel ? (st == LLMR_E_ABORTED && strcmp(s.text, "Hello fr") == 0 &&
                   s.done == 0)
                : (st == LLMR_OK &&
                   strcmp(s.text, "Hello from vendor/m-up!") == 0 &&
                   strcmp(llmr_response_text(resp), s.text) == 0 &&
                   s.done == 1)) &&
        s.attempts == (use_down ? 2 : 1) && s.fallbacks == (use_down ? 1 : 0))
      j->ok++;
    else {
      fprintf(stderr, "thread %d call %d: %s text '%s' attempts %d\n", j->id,
              i, llmr_status_name(st), s.text, s.attempts);
      j->wrong++;
    }
    llmr_response_free(resp);
    llmr_request_free(req);
  }
  return NULL;
}

static void test_streams_on_threads(void **state) {
  pthread_t th[THREADS];
  job jobs[THREADS];
  char *conf;
  int i, ok = 0, wrong = 0;
  (void)state;
  assert_int_equal(
      emu_script(&E, "[{\"model\":\"m-down\",\"default\":{\"kind\":\"error\","
                     "\"preset\":\"overloaded\"}},{\"model\":\"vendor/m-up\","
                     "\"default\":{\"kind\":\"ok\",\"chunking\":\"random\","
                     "\"event_delay_ms\":2}}]"),
      0);
  conf = emu_config(&E, "\"idle_timeout_ms\": 5000");
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
  assert_int_equal(emu_count(&E, "vendor/m-up"), THREADS * CALLS);
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
      cmocka_unit_test(test_streams_on_threads),
  };
  return cmocka_run_group_tests_name("integration/threads_stream", tests,
                                     setup, teardown);
}
