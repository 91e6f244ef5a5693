/*
 * The fallback policy end to end (issue 5), through the real library and
 * transport against the provider emulator: one test per row of the
 * policy table, retries with backoff and Retry-After, the longest wait,
 * cooldowns (circuit breaker, half-open trial, rate-limit headers,
 * extension), all-cooling, deadlines, per-call overrides, hedging and
 * load balancing. The emulator's request counts prove "no network call"
 * for skips and refusals.
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
#include <unistd.h>

static emu E;
static int dead_port;

static int group_setup(void **state) {
  (void)state;
  dead_port = emu_free_port();
  return emu_start(&E, NULL);
}

static int group_teardown(void **state) {
  (void)state;
  emu_stop(&E);
  return 0;
}

static int reset(void **state) {
  (void)state;
  return emu_reset(&E);
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* A router on the emulator: openai, openrouter, groq, anthropic, a
 * provider on a port nobody listens on ("deadhost") and one without a key
 * ("nokey"). top: more top-level settings ("" for none), e.g.
 * "\"policy\": {\"retries\": 1}". */
static llmr_router *router_with(const char *top) {
  char conf[4096], err[LLMR_ERRBUF_SIZE] = "";
  llmr_router *r = NULL;
  llmr_status st;
  snprintf(conf, sizeof(conf),
           "{\"use_env\": false, %s%s \"connect_timeout_ms\": 2000,"
           " \"providers\": {"
           "\"openai\": {\"base_url\": \"%s/v1\", \"api_key\": \"sk-test\"},"
           "\"openrouter\": {\"base_url\": \"%s/api/v1\", \"api_key\": \"or\"},"
           "\"groq\": {\"base_url\": \"%s/openai/v1\", \"api_key\": \"gsk\"},"
           "\"anthropic\": {\"base_url\": \"%s\", \"api_key\": \"sk-ant\"},"
           "\"deadhost\": {\"base_url\": \"http://127.0.0.1:%d/v1\","
           " \"api_key\": \"k\"},"
           "\"nokey\": {\"base_url\": \"%s/v1\"}}}",
           top, *top ? "," : "", E.base, E.base, E.base, E.base, dead_port,
           E.base);
  st = llmr_router_new_ex(conf, &r, err, sizeof(err));
  if (st != LLMR_OK)
    fprintf(stderr, "router: %s\n", err);
  assert_int_equal(st, LLMR_OK);
  return r;
}

static llmr_request *hello(const char *policy) {
  llmr_request *req;
  assert_int_equal(llmr_request_new(&req), LLMR_OK);
  assert_int_equal(llmr_request_add_message(req, LLMR_ROLE_USER, "hello"),
                   LLMR_OK);
  if (policy)
    assert_int_equal(llmr_request_set_policy(req, policy), LLMR_OK);
  return req;
}

/* One llmr_complete() with an optional per-call policy. */
static llmr_response *run(llmr_router *r, const char *const *slugs, size_t n,
                          const char *policy, llmr_status expect) {
  llmr_request *req = hello(policy);
  llmr_response *resp = NULL;
  llmr_status st = llmr_complete(r, slugs, n, req, &resp);
  llmr_request_free(req);
  assert_non_null(resp);
  if (st != expect)
    fprintf(stderr, "got %s, want %s: %s\n", llmr_status_name(st),
            llmr_status_name(expect), llmr_response_error(resp));
  assert_int_equal(st, expect);
  return resp;
}

static void script(const char *json) { assert_int_equal(emu_script(&E, json), 0); }

/* Attempt i of resp is (model, status, http, skipped). */
static void want(const llmr_response *resp, size_t i, const char *model,
                 llmr_status st, int http, int skipped) {
  if (llmr_response_attempt_count(resp) <= i ||
      strcmp(llmr_response_attempt_model(resp, i), model) != 0 ||
      llmr_response_attempt_status(resp, i) != st ||
      llmr_response_attempt_http_status(resp, i) != http ||
      llmr_response_attempt_skipped(resp, i) != skipped) {
    size_t k;
    fprintf(stderr, "attempt %zu: want %s %s %d skipped=%d; trace:\n", i,
            model, llmr_status_name(st), http, skipped);
    for (k = 0; k < llmr_response_attempt_count(resp); k++)
      fprintf(stderr, "  %s %s %d skipped=%d hedge=%d: %s\n",
              llmr_response_attempt_model(resp, k),
              llmr_status_name(llmr_response_attempt_status(resp, k)),
              llmr_response_attempt_http_status(resp, k),
              llmr_response_attempt_skipped(resp, k),
              llmr_response_attempt_hedged(resp, k),
              llmr_response_attempt_error(resp, k)
                  ? llmr_response_attempt_error(resp, k)
                  : "-");
  }
  assert_true(llmr_response_attempt_count(resp) > i);
  assert_string_equal(llmr_response_attempt_model(resp, i), model);
  assert_int_equal(llmr_response_attempt_status(resp, i), st);
  assert_int_equal(llmr_response_attempt_http_status(resp, i), http);
  assert_int_equal(llmr_response_attempt_skipped(resp, i), skipped);
}

/* "model": steps */
static void steps(const char *model, const char *steps_json) {
  char s[2048];
  snprintf(s, sizeof(s), "{\"model\":\"%s\",\"steps\":[%s]}", model,
           steps_json);
  script(s);
}

/* ---- one test per row of the policy table -------------------------------- */

/* connect / DNS failure: retried per policy, then the next slug; the
 * provider (not the model) cools down */
static void test_row_connect(void **state) {
  const char *slugs[] = {"deadhost/m", "openai/c-ok"};
  llmr_router *r = router_with(
      "\"policy\": {\"retries\": 1, \"backoff_ms\": 1, \"cooldown\": "
      "{\"failures\": 2, \"cooldown_ms\": 60000}}");
  llmr_response *resp;
  const char *other[] = {"deadhost/other-model", "openai/c-ok"};
  (void)state;
  resp = run(r, slugs, 2, NULL, LLMR_OK);
  want(resp, 0, "deadhost/m", LLMR_E_TRANSPORT, 0, 0);
  want(resp, 1, "deadhost/m", LLMR_E_TRANSPORT, 0, 0);
  want(resp, 2, "openai/c-ok", LLMR_OK, 200, 0);
  assert_int_equal(llmr_response_attempt_retryable(resp, 0), 1);
  assert_int_equal(llmr_response_attempt_bytes(resp, 0), 0);
  llmr_response_free(resp);
  /* two failures opened the provider's circuit: another model of the same
   * provider is skipped without a try */
  resp = run(r, other, 2, NULL, LLMR_OK);
  want(resp, 0, "deadhost/other-model", LLMR_E_COOLDOWN, 0, 1);
  want(resp, 1, "openai/c-ok", LLMR_OK, 200, 0);
  assert_true(llmr_response_attempt_duration_ms(resp, 0) == 0);
  llmr_response_free(resp);
  llmr_router_free(r);
}

/* TLS failure: no retry (a certificate does not fix itself), next slug */
static void test_row_tls(void **state) {
  emu tls;
  const char *dir = emu_make_certs();
  char conf[2048], err[LLMR_ERRBUF_SIZE];
  const char *slugs[] = {"tlshost/m", "openai/t-ok"};
  llmr_router *r;
  llmr_response *resp;
  (void)state;
  assert_non_null(dir);
  assert_int_equal(emu_start_tls(&tls, dir), 0);
  /* the system trust store does not know the test CA */
  snprintf(conf, sizeof(conf),
           "{\"use_env\": false, \"policy\": {\"retries\": 3, "
           "\"backoff_ms\": 1}, \"providers\": {"
           "\"openai\": {\"base_url\": \"%s/v1\", \"api_key\": \"sk\"},"
           "\"tlshost\": {\"base_url\": \"https://localhost:%d/v1\","
           " \"api_key\": \"k\"}}}",
           E.base, tls.port);
  assert_int_equal(llmr_router_new_ex(conf, &r, err, sizeof(err)), LLMR_OK);
  resp = run(r, slugs, 2, NULL, LLMR_OK);
  want(resp, 0, "tlshost/m", LLMR_E_TLS, 0, 0);
  want(resp, 1, "openai/t-ok", LLMR_OK, 200, 0);
  assert_int_equal(llmr_response_attempt_count(resp), 2);
  llmr_response_free(resp);
  llmr_router_free(r);
  emu_stop(&tls);
}

/* our own timeout (attempt_timeout_ms): retried, then the next slug */
static void test_row_timeout(void **state) {
  const char *slugs[] = {"openai/t-stall", "openai/t-ok"};
  llmr_router *r = router_with("\"policy\": {\"retries\": 1, \"backoff_ms\": "
                               "1, \"attempt_timeout_ms\": 200}");
  llmr_response *resp;
  double t0 = emu_now_ms();
  (void)state;
  steps("t-stall", "{\"kind\":\"stall\",\"ms\":3000},"
                   "{\"kind\":\"stall\",\"ms\":3000}");
  resp = run(r, slugs, 2, NULL, LLMR_OK);
  want(resp, 0, "openai/t-stall", LLMR_E_TIMEOUT, 0, 0);
  want(resp, 1, "openai/t-stall", LLMR_E_TIMEOUT, 0, 0);
  want(resp, 2, "openai/t-ok", LLMR_OK, 200, 0);
  assert_true(emu_now_ms() - t0 < 1500);
  assert_int_equal(emu_count(&E, "t-stall"), 2);
  llmr_response_free(resp);
  llmr_router_free(r);
}

/* Per-call attempt timeouts one after the other on the same pooled
 * handle (the transport sets a limit again only when it changed): long
 * enough, too short, long enough again; the same for a body that grows
 * and shrinks between calls. */
static void test_row_timeout_per_call(void **state) {
  const char *slugs[] = {"openai/t-slow"};
  static const char *const pols[] = {"{\"attempt_timeout_ms\": 3000}",
                                     "{\"attempt_timeout_ms\": 150}",
                                     "{\"attempt_timeout_ms\": 3000}"};
  static const char *const texts[] = {"hello", "a longer message, this one",
                                      "hi"};
  llmr_router *r = router_with("\"policy\": {\"retries\": 0, "
                               "\"cooldown\": false}");
  llmr_response *resp;
  int i;
  (void)state;
  for (i = 0; i < 3; i++) {
    llmr_request *req;
    llmr_status st;
    const cJSON *got;
    cJSON *log;
    steps("t-slow", "{\"kind\":\"ok\",\"delay_ms\":500}");
    assert_int_equal(llmr_request_new(&req), LLMR_OK);
    assert_int_equal(
        llmr_request_add_message(req, LLMR_ROLE_USER, texts[i]), LLMR_OK);
    assert_int_equal(llmr_request_set_policy(req, pols[i]), LLMR_OK);
    st = llmr_complete(r, slugs, 1, req, &resp);
    llmr_request_free(req);
    assert_int_equal(st, i == 1 ? LLMR_E_TIMEOUT : LLMR_OK);
    log = emu_request(&E, -1);
    got = cJSON_GetArrayItem(
        cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(log, "body"), "messages"),
        0);
    assert_string_equal(
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(got, "content")),
        texts[i]);
    cJSON_Delete(log);
    llmr_response_free(resp);
  }
  llmr_router_free(r);
}

/* 408, 409 and every 5xx: the same slug is retried, and answers */
static void test_row_retried_statuses(void **state) {
  static const struct {
    int status;
    const char *model;
    llmr_status st;
  } rows[] = {{408, "r-408", LLMR_E_TIMEOUT},
              {409, "r-409", LLMR_E_BAD_REQUEST},
              {500, "r-500", LLMR_E_SERVER},
              {502, "r-502", LLMR_E_SERVER},
              {503, "r-503", LLMR_E_OVERLOADED},
              {504, "r-504", LLMR_E_SERVER},
              {529, "r-529", LLMR_E_OVERLOADED}};
  llmr_router *r = router_with("\"policy\": {\"retries\": 1, \"backoff_ms\": "
                               "1}");
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
    char slug[64], st[128];
    const char *slugs[2];
    llmr_response *resp;
    snprintf(slug, sizeof(slug), "openai/%s", rows[i].model);
    slugs[0] = slug;
    slugs[1] = "openrouter/never";
    snprintf(st, sizeof(st), "{\"kind\":\"error\",\"status\":%d}",
             rows[i].status);
    steps(rows[i].model, st);
    resp = run(r, slugs, 2, NULL, LLMR_OK);
    want(resp, 0, slug, rows[i].st, rows[i].status, 0);
    assert_int_equal(llmr_response_attempt_retryable(resp, 0), 1);
    want(resp, 1, slug, LLMR_OK, 200, 0);
    assert_int_equal(emu_count(&E, rows[i].model), 2);
    llmr_response_free(resp);
  }
  assert_int_equal(emu_count(&E, "never"), 0);
  llmr_router_free(r);
}

/* the same rows with the default retries (0): straight to the next slug */
static void test_row_5xx_default_moves_on(void **state) {
  const char *slugs[] = {"openai/d-503", "openrouter/d-ok"};
  llmr_router *r = router_with("");
  llmr_response *resp;
  (void)state;
  steps("d-503", "{\"kind\":\"error\",\"preset\":\"overloaded\"}");
  resp = run(r, slugs, 2, NULL, LLMR_OK);
  want(resp, 0, "openai/d-503", LLMR_E_OVERLOADED, 503, 0);
  want(resp, 1, "openrouter/d-ok", LLMR_OK, 200, 0);
  assert_true(llmr_response_attempt_bytes(resp, 0) > 0);
  assert_true(llmr_response_attempt_bytes(resp, 1) > 0);
  llmr_response_free(resp);
  llmr_router_free(r);
}

/* Anthropic's 529 overloaded_error */
static void test_row_overloaded(void **state) {
  const char *slugs[] = {"anthropic/o-claude", "openai/o-ok"};
  llmr_router *r = router_with("");
  llmr_response *resp;
  (void)state;
  steps("o-claude", "{\"kind\":\"error\",\"preset\":\"overloaded\"}");
  resp = run(r, slugs, 2, NULL, LLMR_OK);
  want(resp, 0, "anthropic/o-claude", LLMR_E_OVERLOADED, 529, 0);
  want(resp, 1, "openai/o-ok", LLMR_OK, 200, 0);
  llmr_response_free(resp);
  /* retried when the policy says so */
  steps("o-claude", "{\"kind\":\"error\",\"preset\":\"overloaded\"}");
  resp = run(r, slugs, 2, "{\"retries\": 1, \"backoff_ms\": 1}", LLMR_OK);
  want(resp, 1, "anthropic/o-claude", LLMR_OK, 200, 0);
  llmr_response_free(resp);
  llmr_router_free(r);
}

/* 429: Retry-After honoured (ms, seconds, HTTP-date) up to longest_wait */
static void test_row_rate_limited(void **state) {
  const char *slugs[] = {"openai/rl", "openrouter/rl-ok"};
  llmr_router *r = router_with("");
  llmr_response *resp;
  double t0;
  char date[64], s[512];
  time_t t;
  (void)state;
  /* retry-after-ms 150: the retry waits for it */
  steps("rl", "{\"kind\":\"error\",\"preset\":\"rate_limit\",\"headers\":"
              "{\"retry-after-ms\":\"150\"}}");
  t0 = emu_now_ms();
  resp = run(r, slugs, 2, "{\"retries\": 1, \"backoff_ms\": 1}", LLMR_OK);
  want(resp, 0, "openai/rl", LLMR_E_RATE_LIMITED, 429, 0);
  want(resp, 1, "openai/rl", LLMR_OK, 200, 0);
  assert_true(emu_now_ms() - t0 >= 150);
  llmr_response_free(resp);

  /* Retry-After: 1 (seconds) but longest_wait_ms 300: move on at once */
  steps("rl", "{\"kind\":\"error\",\"preset\":\"rate_limit\",\"headers\":"
              "{\"Retry-After\":\"1\"}}");
  t0 = emu_now_ms();
  resp = run(r, slugs, 2,
             "{\"retries\": 1, \"backoff_ms\": 1, \"longest_wait_ms\": 300}",
             LLMR_OK);
  want(resp, 0, "openai/rl", LLMR_E_RATE_LIMITED, 429, 0);
  want(resp, 1, "openrouter/rl-ok", LLMR_OK, 200, 0);
  assert_true(llmr_response_attempt_count(resp) == 2);
  assert_true(emu_now_ms() - t0 < 900);
  llmr_response_free(resp);
  llmr_router_free(r);

  /* an HTTP-date a minute away is past the longest wait: move on */
  r = router_with("");
  t = time(NULL) + 60;
  strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", gmtime(&t));
  snprintf(s, sizeof(s),
           "{\"kind\":\"error\",\"preset\":\"rate_limit\",\"headers\":"
           "{\"Retry-After\":\"%s\"}}",
           date);
  steps("rl", s);
  resp = run(r, slugs, 2, "{\"retries\": 1}", LLMR_OK);
  want(resp, 1, "openrouter/rl-ok", LLMR_OK, 200, 0);
  assert_true(llmr_response_attempt_count(resp) == 2);
  llmr_response_free(resp);
  llmr_router_free(r);

  /* an HTTP-date a second away is waited for and the same slug answers */
  r = router_with("");
  t = time(NULL) + 1;
  strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", gmtime(&t));
  snprintf(s, sizeof(s),
           "{\"kind\":\"error\",\"preset\":\"rate_limit\",\"headers\":"
           "{\"Retry-After\":\"%s\"}}",
           date);
  steps("rl", s);
  resp = run(r, slugs, 2, "{\"retries\": 1, \"backoff_ms\": 1}", LLMR_OK);
  want(resp, 1, "openai/rl", LLMR_OK, 200, 0);
  llmr_response_free(resp);
  llmr_router_free(r);
}

/* 402: next provider, never the same key again; the provider's other
 * slugs in the same call are skipped without a request */
static void test_row_payment(void **state) {
  const char *slugs[] = {"openrouter/p-a", "openrouter/p-b", "openai/p-ok"};
  llmr_router *r = router_with("\"policy\": {\"retries\": 2}");
  llmr_response *resp;
  (void)state;
  steps("p-a", "{\"kind\":\"error\",\"preset\":\"credits\"}");
  resp = run(r, slugs, 3, NULL, LLMR_OK);
  want(resp, 0, "openrouter/p-a", LLMR_E_PAYMENT, 402, 0);
  want(resp, 1, "openrouter/p-b", LLMR_E_PAYMENT, 0, 1);
  want(resp, 2, "openai/p-ok", LLMR_OK, 200, 0);
  assert_int_equal(emu_count(&E, "p-a"), 1);
  assert_int_equal(emu_count(&E, "p-b"), 0);
  llmr_response_free(resp);
  llmr_router_free(r);
}

/* 401 / 403: next provider, never a retry of the same key */
static void test_row_auth(void **state) {
  const char *slugs[] = {"openai/a-1", "openai/a-2", "groq/a-ok"};
  const char *slugs2[] = {"openai/a-3", "groq/a-ok"};
  llmr_router *r = router_with("\"policy\": {\"retries\": 3}");
  llmr_response *resp;
  llmr_router *bad = NULL;
  char err[LLMR_ERRBUF_SIZE];
  (void)state;
  steps("a-1", "{\"kind\":\"error\",\"preset\":\"auth\"}");
  resp = run(r, slugs, 3, NULL, LLMR_OK);
  want(resp, 0, "openai/a-1", LLMR_E_AUTH, 401, 0);
  want(resp, 1, "openai/a-2", LLMR_E_AUTH, 0, 1);
  want(resp, 2, "groq/a-ok", LLMR_OK, 200, 0);
  assert_int_equal(emu_count(&E, "a-1"), 1);
  assert_int_equal(emu_count(&E, "a-2"), 0);
  llmr_response_free(resp);
  steps("a-3", "{\"kind\":\"error\",\"preset\":\"permission\"}");
  resp = run(r, slugs2, 2, NULL, LLMR_OK);
  want(resp, 0, "openai/a-3", LLMR_E_AUTH, 403, 0);
  assert_int_equal(emu_count(&E, "a-3"), 1);
  llmr_response_free(resp);
  llmr_router_free(r);
  /* "retry" is refused for auth */
  assert_int_equal(
      llmr_router_new_ex("{\"policy\": {\"fallback_on\": {\"auth\": "
                         "\"retry\"}}}",
                         &bad, err, sizeof(err)),
      LLMR_E_INVAL);
  assert_non_null(strstr(err, "config.policy.fallback_on.auth"));
}

/* 400 / 422: stop (every model would refuse it), unless configured */
static void test_row_bad_request(void **state) {
  const char *slugs[] = {"openai/b-400", "openrouter/b-next"};
  llmr_router *r = router_with("");
  llmr_response *resp;
  (void)state;
  steps("b-400", "{\"kind\":\"error\",\"preset\":\"invalid_request\"}");
  resp = run(r, slugs, 2, "{\"retries\": 2}", LLMR_E_BAD_REQUEST);
  assert_int_equal(llmr_response_attempt_count(resp), 1);
  assert_int_equal(emu_count(&E, "b-400"), 1);
  assert_int_equal(emu_count(&E, "b-next"), 0);
  llmr_response_free(resp);
  steps("b-400", "{\"kind\":\"error\",\"status\":422}");
  resp = run(r, slugs, 2, NULL, LLMR_E_BAD_REQUEST);
  want(resp, 0, "openai/b-400", LLMR_E_BAD_REQUEST, 422, 0);
  llmr_response_free(resp);
  /* per call: bad_request moves on */
  steps("b-400", "{\"kind\":\"error\",\"preset\":\"invalid_request\"}");
  resp = run(r, slugs, 2, "{\"fallback_on\": {\"bad_request\": true}}",
             LLMR_OK);
  want(resp, 1, "openrouter/b-next", LLMR_OK, 200, 0);
  llmr_response_free(resp);
  llmr_router_free(r);
}

/* context length exceeded: next slug (a bigger window), no retry */
static void test_row_context_length(void **state) {
  const char *slugs[] = {"openai/cl", "openrouter/cl-big"};
  llmr_router *r = router_with("\"policy\": {\"retries\": 2}");
  llmr_response *resp;
  (void)state;
  steps("cl", "{\"kind\":\"error\",\"preset\":\"context_length\"}");
  resp = run(r, slugs, 2, NULL, LLMR_OK);
  want(resp, 0, "openai/cl", LLMR_E_CONTEXT_LENGTH, 400, 0);
  want(resp, 1, "openrouter/cl-big", LLMR_OK, 200, 0);
  assert_int_equal(emu_count(&E, "cl"), 1);
  llmr_response_free(resp);
  llmr_router_free(r);
}

/* content filtered: stop by default; "fallback" per router */
static void test_row_content_filter(void **state) {
  static const char filtered[] =
      "{\"kind\":\"error\",\"status\":400,\"body\":{\"error\":{\"message\":"
      "\"The response was filtered due to the prompt triggering Azure "
      "OpenAI's content management policy.\",\"type\":null,\"param\":"
      "\"prompt\",\"code\":\"content_filter\"}}}";
  const char *slugs[] = {"openai/cf", "openrouter/cf-next"};
  llmr_router *r = router_with("");
  llmr_response *resp;
  (void)state;
  steps("cf", filtered);
  resp = run(r, slugs, 2, NULL, LLMR_E_CONTENT_FILTER);
  assert_int_equal(llmr_response_attempt_count(resp), 1);
  assert_int_equal(emu_count(&E, "cf-next"), 0);
  llmr_response_free(resp);
  llmr_router_free(r);
  r = router_with("\"policy\": {\"fallback_on\": {\"content_filter\": "
                  "\"fallback\"}}");
  steps("cf", filtered);
  resp = run(r, slugs, 2, NULL, LLMR_OK);
  want(resp, 0, "openai/cf", LLMR_E_CONTENT_FILTER, 400, 0);
  want(resp, 1, "openrouter/cf-next", LLMR_OK, 200, 0);
  llmr_response_free(resp);
  llmr_router_free(r);
}

/* 404, a garbage reply: next slug, not retried by default */
static void test_row_not_found_and_protocol(void **state) {
  const char *slugs[] = {"openai/nf", "openai/garb", "openrouter/nf-ok"};
  llmr_router *r = router_with("\"policy\": {\"retries\": 1}");
  llmr_response *resp;
  (void)state;
  steps("nf", "{\"kind\":\"error\",\"preset\":\"not_found\"}");
  steps("garb", "{\"kind\":\"garbage\"}");
  resp = run(r, slugs, 3, NULL, LLMR_OK);
  want(resp, 0, "openai/nf", LLMR_E_NOT_FOUND, 404, 0);
  want(resp, 1, "openai/garb", LLMR_E_PROTOCOL, 200, 0);
  want(resp, 2, "openrouter/nf-ok", LLMR_OK, 200, 0);
  assert_int_equal(emu_count(&E, "nf"), 1);
  assert_int_equal(emu_count(&E, "garb"), 1);
  llmr_response_free(resp);
  llmr_router_free(r);
}

/* no key, a capability the model lacks, a budget: skipped, no request */
static void test_row_unsent(void **state) {
  char cat[] = "/tmp/llmr-policy-cat-XXXXXX", top[512];
  const char *slugs[] = {"nokey/k-1", "acme/textonly", "openai/u-ok"};
  llmr_router *r;
  llmr_request *req;
  llmr_response *resp = NULL;
  int fd = mkstemp(cat);
  static const char catalog[] =
      "{\"models\": [{\"slug\": \"acme/textonly\", \"provider\": \"openai\","
      " \"model\": \"text-only\", \"capabilities\": [\"tools\"]}]}";
  (void)state;
  assert_true(fd >= 0);
  assert_int_equal(write(fd, catalog, sizeof(catalog) - 1),
                   (ssize_t)(sizeof(catalog) - 1));
  close(fd);
  snprintf(top, sizeof(top), "\"catalog\": \"%s\"", cat);
  r = router_with(top);
  req = hello(NULL);
  assert_int_equal(llmr_request_add_image(req, "https://example.com/a.png",
                                          NULL),
                   LLMR_OK);
  assert_int_equal(llmr_complete(r, slugs, 3, req, &resp), LLMR_OK);
  want(resp, 0, "nokey/k-1", LLMR_E_NO_KEY, 0, 1);
  want(resp, 1, "acme/textonly", LLMR_E_CAPABILITY, 0, 1);
  want(resp, 2, "openai/u-ok", LLMR_OK, 200, 0);
  assert_int_equal(emu_count(&E, "k-1"), 0);
  assert_int_equal(emu_count(&E, "text-only"), 0);
  llmr_response_free(resp);
  llmr_request_free(req);
  llmr_router_free(r);
  unlink(cat);

  /* a budget the call would exceed: skipped, the next slug answers */
  {
    char path[] = "/tmp/llmr-policy-ledger-XXXXXX", lt[512];
    const char *b[] = {"openai/gpt-4o", "openai/gpt-4o-mini"};
    fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    unlink(path);
    snprintf(lt, sizeof(lt),
             "\"ledger\": {\"path\": \"%s\", \"fsync\": \"never\", "
             "\"budgets\": [{\"window\": \"day\", \"usd\": 0.002}]}",
             path);
    r = router_with(lt);
    req = hello(NULL);
    assert_int_equal(llmr_request_set_max_tokens(req, 1000), LLMR_OK);
    assert_int_equal(llmr_complete(r, b, 2, req, &resp), LLMR_OK);
    want(resp, 0, "openai/gpt-4o", LLMR_E_BUDGET, 0, 1);
    want(resp, 1, "openai/gpt-4o-mini", LLMR_OK, 200, 0);
    assert_int_equal(emu_count(&E, "gpt-4o"), 0);
    llmr_response_free(resp);
    llmr_request_free(req);
    llmr_router_free(r);
    unlink(path);
  }
}

/* ---- retries -------------------------------------------------------------- */

/* full jitter under a cap: three tries of one slug in well under a second
 * although backoff_ms alone would ask for minutes */
static void test_backoff_cap(void **state) {
  const char *slugs[] = {"openai/bo"};
  llmr_router *r = router_with("\"policy\": {\"retries\": 2, \"backoff_ms\": "
                               "100000, \"backoff_cap_ms\": 60}");
  llmr_response *resp;
  double t0 = emu_now_ms();
  (void)state;
  steps("bo", "{\"kind\":\"error\",\"preset\":\"server_error\"},"
              "{\"kind\":\"error\",\"preset\":\"overloaded\"}");
  resp = run(r, slugs, 1, NULL, LLMR_OK);
  want(resp, 0, "openai/bo", LLMR_E_SERVER, 500, 0);
  want(resp, 1, "openai/bo", LLMR_E_OVERLOADED, 503, 0);
  want(resp, 2, "openai/bo", LLMR_OK, 200, 0);
  assert_true(emu_now_ms() - t0 < 800);
  llmr_response_free(resp);
  /* retries exhausted: one slug keeps its own status */
  steps("bo", "{\"kind\":\"error\",\"preset\":\"server_error\"},"
              "{\"kind\":\"error\",\"preset\":\"server_error\"},"
              "{\"kind\":\"error\",\"preset\":\"server_error\"}");
  resp = run(r, slugs, 1, "{\"cooldown\": false}", LLMR_E_SERVER);
  assert_int_equal(llmr_response_attempt_count(resp), 3);
  llmr_response_free(resp);
  llmr_router_free(r);
}

/* a stream is retried before its first content, never after */
typedef struct evlog {
  char kinds[64];
  size_t n;
  char text[256];
} evlog;

static int on_ev(const llmr_event *ev, void *user) {
  evlog *l = user;
  static const char k[] = "ATRCUFDE";
  if (l->n + 1 < sizeof(l->kinds) &&
      (ev->type != LLMR_EVENT_TEXT || l->n == 0 || l->kinds[l->n - 1] != 'T'))
    l->kinds[l->n++] = k[ev->type];
  if (ev->type == LLMR_EVENT_TEXT)
    strncat(l->text, ev->text, sizeof(l->text) - strlen(l->text) - 1);
  return 0;
}

static void test_stream_retries(void **state) {
  const char *slugs[] = {"openai/s-r", "openrouter/s-next"};
  llmr_router *r = router_with("\"policy\": {\"retries\": 2, \"backoff_ms\": "
                               "1}");
  llmr_request *req = hello(NULL);
  llmr_response *resp = NULL;
  evlog log;
  (void)state;
  memset(&log, 0, sizeof(log));
  steps("s-r", "{\"kind\":\"error\",\"preset\":\"overloaded\"},"
               "{\"kind\":\"ok\",\"text\":\"after retry\"}");
  assert_int_equal(llmr_stream(r, slugs, 2, req, on_ev, &log, &resp),
                   LLMR_OK);
  assert_string_equal(log.kinds, "AFATUD");
  assert_string_equal(log.text, "after retry");
  want(resp, 1, "openai/s-r", LLMR_OK, 200, 0);
  llmr_response_free(resp);
  /* an error after content: no retry, no fallback */
  memset(&log, 0, sizeof(log));
  steps("s-r", "{\"kind\":\"ok\",\"text\":\"partial answer here\","
               "\"error_after_events\":3}");
  assert_int_equal(llmr_stream(r, slugs, 2, req, on_ev, &log, &resp),
                   LLMR_E_SERVER);
  assert_int_equal(llmr_response_attempt_count(resp), 1);
  assert_int_equal(emu_count(&E, "s-next"), 0);
  assert_string_equal(log.kinds, "ATE");
  llmr_response_free(resp);
  llmr_request_free(req);
  llmr_router_free(r);
}

/* ---- cooldowns ------------------------------------------------------------ */

static void test_cooldown_opens_and_half_open(void **state) {
  const char *slugs[] = {"openai/cd", "openrouter/cd-ok"};
  llmr_router *r = router_with(
      "\"policy\": {\"cooldown\": {\"failures\": 2, \"window_ms\": 60000, "
      "\"cooldown_ms\": 500}}");
  llmr_response *resp;
  int i;
  (void)state;
  script("{\"model\":\"cd\",\"default\":{\"kind\":\"error\",\"preset\":"
         "\"server_error\"}}");
  for (i = 0; i < 2; i++) {
    resp = run(r, slugs, 2, NULL, LLMR_OK);
    want(resp, 0, "openai/cd", LLMR_E_SERVER, 500, 0);
    llmr_response_free(resp);
  }
  /* open: skipped with no request, the skip in the trace */
  resp = run(r, slugs, 2, NULL, LLMR_OK);
  want(resp, 0, "openai/cd", LLMR_E_COOLDOWN, 0, 1);
  want(resp, 1, "openrouter/cd-ok", LLMR_OK, 200, 0);
  assert_non_null(strstr(llmr_response_attempt_error(resp, 0), "cooling"));
  assert_int_equal(emu_count(&E, "cd"), 2);
  llmr_response_free(resp);
  /* a call may ignore the cooldowns */
  resp = run(r, slugs, 2, "{\"cooldown\": false}", LLMR_OK);
  want(resp, 0, "openai/cd", LLMR_E_SERVER, 500, 0);
  assert_int_equal(emu_count(&E, "cd"), 3);
  llmr_response_free(resp);
  /* after cooldown_ms: half-open, one trial; it succeeds and closes */
  sleep_ms(550);
  script("{\"model\":\"cd\",\"default\":{\"kind\":\"ok\"}}");
  resp = run(r, slugs, 2, NULL, LLMR_OK);
  want(resp, 0, "openai/cd", LLMR_OK, 200, 0);
  llmr_response_free(resp);
  resp = run(r, slugs, 2, NULL, LLMR_OK);
  want(resp, 0, "openai/cd", LLMR_OK, 200, 0);
  llmr_response_free(resp);
  assert_int_equal(emu_count(&E, "cd"), 5);
  /* a failed trial reopens it at once */
  script("{\"model\":\"cd\",\"default\":{\"kind\":\"error\",\"preset\":"
         "\"server_error\"}}");
  for (i = 0; i < 2; i++)
    llmr_response_free(run(r, slugs, 2, NULL, LLMR_OK));
  sleep_ms(550);
  resp = run(r, slugs, 2, NULL, LLMR_OK); /* the trial, failing */
  want(resp, 0, "openai/cd", LLMR_E_SERVER, 500, 0);
  llmr_response_free(resp);
  resp = run(r, slugs, 2, NULL, LLMR_OK);
  want(resp, 0, "openai/cd", LLMR_E_COOLDOWN, 0, 1);
  llmr_response_free(resp);
  llmr_router_free(r);
}

/* x-ratelimit-remaining-requests: 0 + reset: the model cools down until
 * the reset, though the reply itself succeeded; Anthropic's headers too */
static void test_ratelimit_headers(void **state) {
  const char *oa[] = {"openai/hdr"};
  const char *an[] = {"anthropic/hdr-claude"};
  llmr_router *r = router_with("");
  llmr_response *resp;
  char s[512], iso[64];
  time_t t;
  double t0;
  (void)state;
  steps("hdr", "{\"kind\":\"ok\",\"headers\":{\"x-ratelimit-remaining-"
               "requests\":\"0\",\"x-ratelimit-reset-requests\":\"2s\","
               "\"x-ratelimit-remaining-tokens\":\"9000\","
               "\"x-ratelimit-reset-tokens\":\"6m0s\"}}");
  resp = run(r, oa, 1, NULL, LLMR_OK);
  llmr_response_free(resp);
  t0 = emu_now_ms();
  resp = run(r, oa, 1, NULL, LLMR_E_ALL_FAILED);
  want(resp, 0, "openai/hdr", LLMR_E_COOLDOWN, 0, 1);
  assert_true(emu_now_ms() - t0 < 250); /* at once, not after the 2 s */
  assert_true(llmr_response_retry_after(resp) > 1.0 &&
              llmr_response_retry_after(resp) <= 2.0);
  assert_int_equal(emu_count(&E, "hdr"), 1);
  llmr_response_free(resp);

  t = time(NULL) + 3;
  strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
  snprintf(s, sizeof(s),
           "{\"kind\":\"ok\",\"headers\":{\"anthropic-ratelimit-requests-"
           "remaining\":\"0\",\"anthropic-ratelimit-requests-reset\":\"%s\","
           "\"anthropic-ratelimit-tokens-remaining\":\"100\","
           "\"anthropic-ratelimit-tokens-reset\":\"%s\"}}",
           iso, iso);
  steps("hdr-claude", s);
  llmr_response_free(run(r, an, 1, NULL, LLMR_OK));
  resp = run(r, an, 1, NULL, LLMR_E_ALL_FAILED);
  want(resp, 0, "anthropic/hdr-claude", LLMR_E_COOLDOWN, 0, 1);
  assert_true(llmr_response_retry_after(resp) > 1.0 &&
              llmr_response_retry_after(resp) <= 3.0);
  assert_int_equal(emu_count(&E, "hdr-claude"), 1);
  llmr_response_free(resp);
  llmr_router_free(r);

  /* "rate_limit_headers": false leaves successes alone */
  r = router_with("\"policy\": {\"cooldown\": {\"rate_limit_headers\": "
                  "false}}");
  steps("hdr", "{\"kind\":\"ok\",\"headers\":{\"x-ratelimit-remaining-"
               "requests\":\"0\",\"x-ratelimit-reset-requests\":\"20s\"}}");
  llmr_response_free(run(r, oa, 1, NULL, LLMR_OK));
  llmr_response_free(run(r, oa, 1, NULL, LLMR_OK));
  llmr_router_free(r);
}

/* two concurrent 429s: the longer Retry-After holds, the shorter one that
 * arrives later does not shorten it */
typedef struct job {
  llmr_router *r;
  const char *slug;
  pthread_barrier_t *bar;
  llmr_status st;
} job;

static void *one_call(void *arg) {
  job *j = arg;
  const char *slugs[1];
  llmr_request *req;
  llmr_response *resp = NULL;
  slugs[0] = j->slug;
  llmr_request_new(&req);
  llmr_request_add_message(req, LLMR_ROLE_USER, "hi");
  pthread_barrier_wait(j->bar); /* both check the circuit before a reply */
  j->st = llmr_complete(j->r, slugs, 1, req, &resp);
  llmr_response_free(resp);
  llmr_request_free(req);
  return NULL;
}



static void test_cooldown_extension_never_shortens(void **state) {
  const char *slugs[] = {"openai/ext"};
  llmr_router *r = router_with("");
  llmr_response *resp;
  pthread_t t1, t2;
  pthread_barrier_t bar;
  job a = {r, "openai/ext", &bar, LLMR_OK}, b = {r, "openai/ext", &bar, LLMR_OK};
  (void)state;
  /* replies at ~300 ms (cool 3 s) and ~500 ms (cool 0.2 s, which would
   * end at ~700 ms if it could shorten the first) */
  steps("ext", "{\"kind\":\"error\",\"preset\":\"rate_limit\",\"delay_ms\":"
               "300,\"headers\":{\"retry-after-ms\":\"3000\"}},"
               "{\"kind\":\"error\",\"preset\":\"rate_limit\",\"delay_ms\":"
               "500,\"headers\":{\"retry-after-ms\":\"200\"}}");
  pthread_barrier_init(&bar, NULL, 2);
  pthread_create(&t1, NULL, one_call, &a);
  pthread_create(&t2, NULL, one_call, &b);
  pthread_join(t1, NULL);
  pthread_join(t2, NULL);
  pthread_barrier_destroy(&bar);
  assert_int_equal(a.st, LLMR_E_RATE_LIMITED);
  assert_int_equal(b.st, LLMR_E_RATE_LIMITED);
  assert_int_equal(emu_count(&E, "ext"), 2);
  sleep_ms(400); /* past the shorter one */
  resp = run(r, slugs, 1, NULL, LLMR_E_ALL_FAILED);
  want(resp, 0, "openai/ext", LLMR_E_COOLDOWN, 0, 1);
  assert_true(llmr_response_retry_after(resp) > 1.0); /* about 2.4 s */
  assert_int_equal(emu_count(&E, "ext"), 2);
  llmr_response_free(resp);
  llmr_router_free(r);
}

/* every slug cooling down: LLMR_E_ALL_FAILED at once, with the earliest
 * time a retry could succeed */
static void test_all_cooling_fails_at_once(void **state) {
  const char *slugs[] = {"openai/ac-1", "openrouter/ac-2"};
  llmr_router *r = router_with("");
  llmr_response *resp;
  double t0;
  (void)state;
  steps("ac-1", "{\"kind\":\"error\",\"preset\":\"rate_limit\",\"headers\":"
                "{\"retry-after-ms\":\"5000\"}}");
  steps("ac-2", "{\"kind\":\"error\",\"preset\":\"rate_limit\",\"headers\":"
                "{\"retry-after-ms\":\"2000\"}}");
  resp = run(r, slugs, 2, NULL, LLMR_E_ALL_FAILED);
  assert_int_equal(llmr_response_attempt_count(resp), 2);
  llmr_response_free(resp);
  t0 = emu_now_ms();
  resp = run(r, slugs, 2, NULL, LLMR_E_ALL_FAILED);
  assert_true(emu_now_ms() - t0 < 250);
  want(resp, 0, "openai/ac-1", LLMR_E_COOLDOWN, 0, 1);
  want(resp, 1, "openrouter/ac-2", LLMR_E_COOLDOWN, 0, 1);
  /* the earliest of the two (2 s), not the later (5 s) */
  assert_true(llmr_response_retry_after(resp) > 1.0 &&
              llmr_response_retry_after(resp) <= 2.0);
  assert_int_equal(llmr_response_retryable(resp), 1);
  assert_non_null(strstr(llmr_response_error(resp), "cooling down"));
  assert_int_equal(emu_count(&E, NULL), 2);
  llmr_response_free(resp);
  llmr_router_free(r);
}

/* ---- deadlines ------------------------------------------------------------ */

static void test_deadline(void **state) {
  const char *one[] = {"openai/dl"};
  const char *two[] = {"openai/dl-a", "openrouter/dl-b"};
  llmr_router *r = router_with("\"policy\": {\"cooldown\": false}");
  llmr_response *resp;
  double t0, took;
  (void)state;
  /* retries and backoff bounded together */
  script("{\"model\":\"dl\",\"default\":{\"kind\":\"error\",\"preset\":"
         "\"overloaded\",\"delay_ms\":30}}");
  t0 = emu_now_ms();
  {
    llmr_request *req = hello("{\"deadline_ms\": 400, \"retries\": 50, "
                              "\"backoff_ms\": 100, \"backoff_cap_ms\": 150}");
    llmr_status st = llmr_complete(r, one, 1, req, &resp);
    llmr_request_free(req);
    took = emu_now_ms() - t0;
    /* the deadline passed during an attempt or a wait (TIMEOUT), or the
     * next wait would have crossed it (the last error, saying so) */
    assert_true(st == LLMR_E_TIMEOUT || st == LLMR_E_OVERLOADED);
  }
  assert_true(took < 700);
  assert_non_null(strstr(llmr_response_error(resp), "deadline_ms"));
  assert_true(llmr_response_attempt_count(resp) >= 2);
  llmr_response_free(resp);
  /* one stalled attempt is cut at the deadline */
  steps("dl", "{\"kind\":\"stall\",\"ms\":5000}");
  t0 = emu_now_ms();
  resp = run(r, one, 1, "{\"deadline_ms\": 300}", LLMR_E_TIMEOUT);
  took = emu_now_ms() - t0;
  assert_true(took >= 290 && took < 800);
  assert_non_null(strstr(llmr_response_error(resp), "deadline_ms"));
  llmr_response_free(resp);
  /* two slugs: the per-attempt limit, then the deadline */
  steps("dl-a", "{\"kind\":\"stall\",\"ms\":5000}");
  steps("dl-b", "{\"kind\":\"stall\",\"ms\":5000}");
  t0 = emu_now_ms();
  resp = run(r, two, 2, "{\"deadline_ms\": 500, \"attempt_timeout_ms\": 300}",
             LLMR_E_ALL_FAILED);
  took = emu_now_ms() - t0;
  assert_true(took >= 490 && took < 1000);
  assert_non_null(strstr(llmr_response_error(resp), "deadline_ms"));
  want(resp, 0, "openai/dl-a", LLMR_E_TIMEOUT, 0, 0);
  want(resp, 1, "openrouter/dl-b", LLMR_E_TIMEOUT, 0, 0);
  assert_true(llmr_response_attempt_duration_ms(resp, 1) < 260);
  llmr_response_free(resp);
  llmr_router_free(r);
}

/* ---- per-call overrides --------------------------------------------------- */

static void test_per_call_override(void **state) {
  const char *slugs[] = {"openai/pc"};
  llmr_router *r = router_with("\"policy\": {\"retries\": 0}");
  llmr_response *resp;
  llmr_request *req;
  char *out = NULL, err[LLMR_ERRBUF_SIZE];
  cJSON *doc, *att;
  (void)state;
  steps("pc", "{\"kind\":\"error\",\"preset\":\"server_error\"}");
  resp = run(r, slugs, 1, NULL, LLMR_E_SERVER);
  llmr_response_free(resp);
  steps("pc", "{\"kind\":\"error\",\"preset\":\"server_error\"}");
  resp = run(r, slugs, 1, "{\"retries\": 1, \"backoff_ms\": 1}", LLMR_OK);
  assert_int_equal(llmr_response_attempt_count(resp), 2);
  llmr_response_free(resp);
  /* the JSON API: "llmroute": {"policy": ...}, never sent upstream */
  steps("pc", "{\"kind\":\"error\",\"preset\":\"server_error\"}");
  assert_int_equal(
      llmr_complete_json(
          r,
          "{\"model\":\"openai/pc\",\"messages\":[{\"role\":\"user\","
          "\"content\":\"hi\"}],\"llmroute\":{\"policy\":{\"retries\":1,"
          "\"backoff_ms\":1}}}",
          &out),
      LLMR_OK);
  doc = cJSON_Parse(out);
  att = cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "llmroute"), "attempts");
  assert_int_equal(cJSON_GetArraySize(att), 2);
  assert_true(cJSON_IsBool(cJSON_GetObjectItem(cJSON_GetArrayItem(att, 0),
                                               "retryable")));
  assert_true(cJSON_IsNumber(
      cJSON_GetObjectItem(cJSON_GetArrayItem(att, 0), "bytes")));
  assert_true(cJSON_IsFalse(
      cJSON_GetObjectItem(cJSON_GetArrayItem(att, 0), "skipped")));
  assert_true(cJSON_IsFalse(
      cJSON_GetObjectItem(cJSON_GetArrayItem(att, 0), "hedge")));
  cJSON_Delete(doc);
  llmr_free(out);
  {
    cJSON *sent = emu_request(&E, -1);
    assert_null(cJSON_GetObjectItem(cJSON_GetObjectItem(sent, "body"),
                                    "llmroute"));
    cJSON_Delete(sent);
  }
  /* bad per-call policies are refused with the field named */
  req = hello(NULL);
  assert_int_equal(llmr_request_set_policy(req, "{\"retries\": -1}"),
                   LLMR_E_INVAL);
  assert_int_equal(llmr_request_set_policy(req, "{\"nope\": 1}"),
                   LLMR_E_INVAL);
  assert_int_equal(llmr_request_set_policy(req, "{\"cooldown\": "
                                                "{\"failures\": 1}}"),
                   LLMR_E_INVAL);
  assert_int_equal(llmr_request_set_policy(req, "not json"), LLMR_E_INVAL);
  assert_int_equal(llmr_request_set_policy(req, NULL), LLMR_OK);
  llmr_request_free(req);
  assert_int_equal(
      llmr_request_from_json("{\"messages\":[{\"role\":\"user\",\"content\":"
                             "\"x\"}],\"llmroute\":{\"policy\":{"
                             "\"fallback_on\":{\"teapot\":true}}}}",
                             0, &req, err, sizeof(err)),
      LLMR_E_INVAL);
  assert_non_null(strstr(err, "llmroute.policy.fallback_on.teapot"));
  llmr_router_free(r);
}

static void test_config_errors(void **state) {
  static const char *const bad[][2] = {
      {"{\"policy\": {\"retries\": 1.5}}", "config.policy.retries"},
      {"{\"policy\": {\"hedge_ms\": -1}}", "config.policy.hedge_ms"},
      {"{\"policy\": {\"sometimes\": 1}}", "config.policy.sometimes"},
      {"{\"policy\": {\"fallback_on\": {\"rate_limited\": \"maybe\"}}}",
       "config.policy.fallback_on.rate_limited"},
      {"{\"policy\": {\"cooldown\": {\"failures\": 999}}}",
       "config.policy.cooldown.failures"},
      {"{\"groups\": {\"g\": {\"mode\": \"random\", \"targets\": "
       "[\"openai/a\"]}}}",
       "config.groups.g.mode"},
      {"{\"groups\": {\"g\": {\"targets\": []}}}", "config.groups.g.targets"},
      {"{\"groups\": {\"g\": {\"targets\": [\"nope\"]}}}",
       "config.groups.g.targets[0]"},
      {"{\"groups\": {\"g\": {\"targets\": [{\"slug\": \"openai/a\", "
       "\"weight\": -2}]}}}",
       "config.groups.g.targets[0].weight"},
  };
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    char err[LLMR_ERRBUF_SIZE] = "";
    llmr_router *r = NULL;
    assert_int_equal(llmr_router_new_ex(bad[i][0], &r, err, sizeof(err)),
                     LLMR_E_INVAL);
    if (!strstr(err, bad[i][1]))
      fprintf(stderr, "%s -> %s\n", bad[i][0], err);
    assert_non_null(strstr(err, bad[i][1]));
    assert_null(r);
  }
}

/* ---- hedging -------------------------------------------------------------- */

static int n_lines_with(const char *path, const char *needle) {
  FILE *f = fopen(path, "r");
  char line[4096];
  int n = 0;
  if (!f)
    return -1;
  while (fgets(line, sizeof(line), f))
    if (strstr(line, needle))
      n++;
  fclose(f);
  return n;
}

static void test_hedging(void **state) {
  char path[] = "/tmp/llmr-hedge-XXXXXX", top[512];
  const char *slugs[] = {"openai/h-slow", "openrouter/h-fast"};
  llmr_router *r;
  llmr_response *resp;
  llmr_request *req;
  evlog log;
  double t0;
  int fd = mkstemp(path);
  (void)state;
  assert_true(fd >= 0);
  close(fd);
  unlink(path);
  snprintf(top, sizeof(top),
           "\"policy\": {\"hedge_ms\": 100}, \"ledger\": {\"path\": \"%s\", "
           "\"fsync\": \"never\"}",
           path);
  r = router_with(top);
  /* the first slug sends nothing: the second starts at 100 ms and wins */
  steps("h-slow", "{\"kind\":\"stall\"}");
  t0 = emu_now_ms();
  resp = run(r, slugs, 2, NULL, LLMR_OK);
  assert_true(emu_now_ms() - t0 < 1000);
  assert_string_equal(llmr_response_model(resp), "openrouter/h-fast");
  assert_string_equal(llmr_response_text(resp), "Hello from h-fast!");
  want(resp, 0, "openai/h-slow", LLMR_E_ABORTED, 0, 0);
  want(resp, 1, "openrouter/h-fast", LLMR_OK, 200, 0);
  assert_int_equal(llmr_response_attempt_hedged(resp, 0), 0);
  assert_int_equal(llmr_response_attempt_hedged(resp, 1), 1);
  assert_non_null(strstr(llmr_response_attempt_error(resp, 0), "cancelled"));
  assert_int_equal(emu_count(&E, "h-slow"), 1);
  assert_int_equal(emu_count(&E, "h-fast"), 1);
  llmr_response_free(resp);
  /* both attempts in the ledger: the cancelled one was sent */
  assert_int_equal(n_lines_with(path, "\"model\":\"openai/h-slow\""), 1);
  assert_int_equal(n_lines_with(path, "\"model\":\"openrouter/h-fast\""), 1);
  assert_int_equal(n_lines_with(path, "\"status\":\"LLMR_E_ABORTED\""), 1);

  /* the first answers before the hedge delay: the second is never sent */
  resp = run(r, (const char *const[]){"openai/h-quick", "openrouter/h-2"}, 2,
             NULL, LLMR_OK);
  assert_int_equal(llmr_response_attempt_count(resp), 1);
  assert_int_equal(emu_count(&E, "h-2"), 0);
  llmr_response_free(resp);

  /* the first answers after the hedge started: the hedge is cancelled and
   * comes first in the trace (the last entry answered) */
  steps("h-late", "{\"kind\":\"ok\",\"delay_ms\":250}");
  steps("h-later", "{\"kind\":\"ok\",\"delay_ms\":2000}");
  t0 = emu_now_ms();
  resp = run(r, (const char *const[]){"openai/h-late", "openrouter/h-later"},
             2, NULL, LLMR_OK);
  assert_true(emu_now_ms() - t0 < 1500);
  assert_string_equal(llmr_response_model(resp), "openai/h-late");
  want(resp, 0, "openrouter/h-later", LLMR_E_ABORTED, 0, 0);
  want(resp, 1, "openai/h-late", LLMR_OK, 200, 0);
  assert_int_equal(llmr_response_attempt_hedged(resp, 0), 1);
  assert_int_equal(emu_count(&E, "h-later"), 1);
  llmr_response_free(resp);

  /* the hedge fails first (503), then the first slug answers */
  steps("h-late", "{\"kind\":\"ok\",\"delay_ms\":300}");
  steps("h-bad", "{\"kind\":\"error\",\"preset\":\"overloaded\","
                 "\"delay_ms\":50}");
  resp = run(r, (const char *const[]){"openai/h-late", "openrouter/h-bad"}, 2,
             NULL, LLMR_OK);
  want(resp, 0, "openrouter/h-bad", LLMR_E_OVERLOADED, 503, 0);
  assert_int_equal(llmr_response_attempt_hedged(resp, 0), 1);
  want(resp, 1, "openai/h-late", LLMR_OK, 200, 0);
  llmr_response_free(resp);

  /* streaming: the hedge's events announce it with an ATTEMPT */
  steps("h-slow", "{\"kind\":\"stall\"}");
  memset(&log, 0, sizeof(log));
  req = hello(NULL);
  resp = NULL;
  assert_int_equal(llmr_stream(r, slugs, 2, req, on_ev, &log, &resp),
                   LLMR_OK);
  assert_string_equal(log.kinds, "AATUD");
  assert_string_equal(log.text, "Hello from h-fast!");
  assert_string_equal(llmr_response_model(resp), "openrouter/h-fast");
  want(resp, 1, "openrouter/h-fast", LLMR_OK, 200, 0);
  llmr_response_free(resp);
  llmr_request_free(req);

  /* both fail: the call moves on past both */
  steps("h-slow", "{\"kind\":\"error\",\"preset\":\"overloaded\","
                  "\"delay_ms\":300}");
  steps("h-fast", "{\"kind\":\"error\",\"preset\":\"server_error\","
                  "\"delay_ms\":150}");
  resp = run(r,
             (const char *const[]){"openai/h-slow", "openrouter/h-fast",
                                   "groq/h-third"},
             3, NULL, LLMR_OK);
  want(resp, 0, "openai/h-slow", LLMR_E_OVERLOADED, 503, 0);
  want(resp, 1, "openrouter/h-fast", LLMR_E_SERVER, 500, 0);
  want(resp, 2, "groq/h-third", LLMR_OK, 200, 0);
  llmr_response_free(resp);
  llmr_router_free(r);
  unlink(path);
}

/* ---- load balancing ------------------------------------------------------- */

static void test_load_balancing(void **state) {
  llmr_router *r = router_with(
      "\"groups\": {"
      "\"gpt-rr\": {\"targets\": [\"openai/lb-a\", \"openrouter/lb-b\"]},"
      "\"gpt-w\": {\"mode\": \"weighted\", \"targets\": ["
      "{\"slug\": \"openai/lb-w1\", \"weight\": 3},"
      "{\"slug\": \"groq/lb-w2\", \"weight\": 1},"
      "{\"slug\": \"openrouter/lb-w0\", \"weight\": 0}]},"
      "\"gpt-o\": {\"mode\": \"order\", \"targets\": [\"openai/lb-o1\", "
      "\"groq/lb-o2\"]}}");
  const char *rr[] = {"gpt-rr"};
  const char *in[] = {"openai/lb-c|groq/lb-d"};
  const char *w[] = {"gpt-w"};
  const char *o[] = {"gpt-o"};
  int i, w1;
  llmr_response *resp;
  (void)state;
  for (i = 0; i < 10; i++)
    llmr_response_free(run(r, rr, 1, NULL, LLMR_OK));
  assert_int_equal(emu_count(&E, "lb-a"), 5);
  assert_int_equal(emu_count(&E, "lb-b"), 5);
  for (i = 0; i < 10; i++)
    llmr_response_free(run(r, in, 1, NULL, LLMR_OK));
  assert_int_equal(emu_count(&E, "lb-c"), 5);
  assert_int_equal(emu_count(&E, "lb-d"), 5);
  for (i = 0; i < 4; i++)
    llmr_response_free(run(r, o, 1, NULL, LLMR_OK));
  assert_int_equal(emu_count(&E, "lb-o1"), 4);
  assert_int_equal(emu_count(&E, "lb-o2"), 0);
  for (i = 0; i < 400; i++)
    llmr_response_free(run(r, w, 1, NULL, LLMR_OK));
  w1 = emu_count(&E, "lb-w1");
  fprintf(stderr, "weighted 3:1:0 over 400 calls: %d / %d / %d\n", w1,
          emu_count(&E, "lb-w2"), emu_count(&E, "lb-w0"));
  assert_true(w1 > 260 && w1 < 340); /* 300 expected, sd ~8.7 */
  assert_int_equal(w1 + emu_count(&E, "lb-w2"), 400);
  assert_int_equal(emu_count(&E, "lb-w0"), 0);
  /* a deployment that fails: the group's next one answers in the same
   * call, and the trace names the deployments */
  script("{\"model\":\"lb-a\",\"default\":{\"kind\":\"error\",\"preset\":"
         "\"overloaded\"}}");
  script("{\"model\":\"lb-b\",\"default\":{\"kind\":\"error\",\"preset\":"
         "\"overloaded\"}}");
  resp = run(r, rr, 1, "{\"cooldown\": false}", LLMR_E_ALL_FAILED);
  assert_int_equal(llmr_response_attempt_count(resp), 2);
  llmr_response_free(resp);
  script("{\"model\":\"lb-b\",\"default\":{\"kind\":\"ok\"}}");
  for (i = 0; i < 2; i++) {
    resp = run(r, rr, 1, "{\"cooldown\": false}", LLMR_OK);
    assert_string_equal(llmr_response_model(resp), "openrouter/lb-b");
    llmr_response_free(resp);
  }
  /* weight 0 is drained: used only after the others failed */
  script("{\"model\":\"lb-w1\",\"default\":{\"kind\":\"error\",\"preset\":"
         "\"overloaded\"}}");
  script("{\"model\":\"lb-w2\",\"default\":{\"kind\":\"error\",\"preset\":"
         "\"overloaded\"}}");
  resp = run(r, w, 1, "{\"cooldown\": false}", LLMR_OK);
  assert_string_equal(llmr_response_model(resp), "openrouter/lb-w0");
  assert_int_equal(llmr_response_attempt_count(resp), 3);
  llmr_response_free(resp);
  llmr_router_free(r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(test_row_connect, reset),
      cmocka_unit_test_setup(test_row_tls, reset),
      cmocka_unit_test_setup(test_row_timeout, reset),
      cmocka_unit_test_setup(test_row_timeout_per_call, reset),
      cmocka_unit_test_setup(test_row_retried_statuses, reset),
      cmocka_unit_test_setup(test_row_5xx_default_moves_on, reset),
      cmocka_unit_test_setup(test_row_overloaded, reset),
      cmocka_unit_test_setup(test_row_rate_limited, reset),
      cmocka_unit_test_setup(test_row_payment, reset),
      cmocka_unit_test_setup(test_row_auth, reset),
      cmocka_unit_test_setup(test_row_bad_request, reset),
      cmocka_unit_test_setup(test_row_context_length, reset),
      cmocka_unit_test_setup(test_row_content_filter, reset),
      cmocka_unit_test_setup(test_row_not_found_and_protocol, reset),
      cmocka_unit_test_setup(test_row_unsent, reset),
      cmocka_unit_test_setup(test_backoff_cap, reset),
      cmocka_unit_test_setup(test_stream_retries, reset),
      cmocka_unit_test_setup(test_cooldown_opens_and_half_open, reset),
      cmocka_unit_test_setup(test_ratelimit_headers, reset),
      cmocka_unit_test_setup(test_cooldown_extension_never_shortens, reset),
      cmocka_unit_test_setup(test_all_cooling_fails_at_once, reset),
      cmocka_unit_test_setup(test_deadline, reset),
      cmocka_unit_test_setup(test_per_call_override, reset),
      cmocka_unit_test_setup(test_config_errors, reset),
      cmocka_unit_test_setup(test_hedging, reset),
      cmocka_unit_test_setup(test_load_balancing, reset),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
