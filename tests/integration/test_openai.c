/*
 * End to end through the real library and transport against the provider
 * emulator: success, request shape, every error class, fallback, caps,
 * malformed bodies, timeouts, keys and hosts of the OpenAI-compatible family.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "emu.h"
#include "stream_log.h"
#include <llmroute.h>

#include <stdio.h>
#include <stdlib.h>
#include <curl/curl.h>
#include <string.h>
#include <unistd.h>

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

static int reset(void **state) {
  (void)state;
  return emu_reset(&E);
}

/* These tests provoke one error after another on one model: the router's
 * cooldowns (issue 5, tests/integration/test_policy_router.c) would skip it. */
#define NOCOOL "\"policy\": {\"cooldown\": false}"

static llmr_router *router_with(const char *extra) {
  return slog_router_with(&E, extra);
}

static llmr_response *call(llmr_router *r, const char *const *slugs, size_t n,
                           llmr_status expect) {
  llmr_request *req = slog_hello();
  llmr_response *resp = NULL;
  llmr_status st = llmr_complete(r, slugs, n, req, &resp);
  llmr_request_free(req);
  assert_non_null(resp);
  if (st != expect)
    fprintf(stderr, "got %s: %s\n", llmr_status_name(st),
            llmr_response_error(resp));
  assert_int_equal(st, expect);
  assert_int_equal(llmr_response_status(resp), expect);
  return resp;
}

static const char *hdr(const cJSON *req, const char *name) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(
      cJSON_GetObjectItemCaseSensitive(req, "headers"), name);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const cJSON *body(const cJSON *req) {
  return cJSON_GetObjectItemCaseSensitive(req, "body");
}

/* ---- success ------------------------------------------------------------- */

static void test_success_and_request_shape(void **state) {
  const char *slugs[] = {"openai/gpt-4o-mini"};
  llmr_router *r = router_with("");
  llmr_request *req = slog_hello();
  llmr_response *resp = NULL;
  cJSON *got;
  char *expected_json, *got_json;
  (void)state;
  assert_int_equal(
      emu_script(&E, "{\"model\":\"gpt-4o-mini\",\"steps\":[{\"kind\":\"ok\","
                     "\"text\":\"Hi there.\",\"id\":\"chatcmpl-abc\","
                     "\"usage\":{\"prompt_tokens\":21,\"completion_tokens\":9,"
                     "\"total_tokens\":30,\"prompt_tokens_details\":{"
                     "\"cached_tokens\":16},\"completion_tokens_details\":{"
                     "\"reasoning_tokens\":4}}}]}"),
      0);
  assert_int_equal(llmr_request_set_temperature(req, 0.25), LLMR_OK);
  assert_int_equal(llmr_request_set_top_p(req, 0.5), LLMR_OK);
  assert_int_equal(llmr_request_set_max_tokens(req, 64), LLMR_OK);
  assert_int_equal(llmr_request_add_stop(req, "END"), LLMR_OK);
  assert_int_equal(llmr_request_set_seed(req, 42), LLMR_OK);
  assert_int_equal(llmr_request_set_user(req, "user-7"), LLMR_OK);
  assert_int_equal(llmr_request_set_app(req, "billing"), LLMR_OK);
  assert_int_equal(llmr_complete(r, slugs, 1, req, &resp), LLMR_OK);

  assert_string_equal(llmr_response_text(resp), "Hi there.");
  assert_string_equal(llmr_response_finish_reason(resp), "stop");
  assert_string_equal(llmr_response_id(resp), "chatcmpl-abc");
  assert_string_equal(llmr_response_model(resp), "openai/gpt-4o-mini");
  assert_string_equal(llmr_response_provider(resp), "openai");
  assert_string_equal(llmr_response_native_model(resp), "gpt-4o-mini");
  assert_int_equal(llmr_response_tokens(resp, LLMR_TOKENS_PROMPT), 21);
  assert_int_equal(llmr_response_tokens(resp, LLMR_TOKENS_COMPLETION), 9);
  assert_int_equal(llmr_response_tokens(resp, LLMR_TOKENS_TOTAL), 30);
  assert_int_equal(llmr_response_tokens(resp, LLMR_TOKENS_CACHED), 16);
  assert_int_equal(llmr_response_tokens(resp, LLMR_TOKENS_REASONING), 4);
  assert_int_equal(llmr_response_attempt_count(resp), 1);
  assert_int_equal(llmr_response_attempt_http_status(resp, 0), 200);
  assert_null(llmr_response_attempt_error(resp, 0));
  assert_int_equal(llmr_response_http_status(resp), 200);

  /* what went over the wire: exactly the OpenAI body, the SDK's path and
   * the bearer key; the app tag stays local */
  got = emu_request(&E, -1);
  assert_non_null(got);
  assert_string_equal(cJSON_GetObjectItem(got, "path")->valuestring,
                      "/v1/chat/completions");
  assert_string_equal(hdr(got, "authorization"), "Bearer sk-test-0000");
  assert_string_equal(hdr(got, "content-type"), "application/json");
  assert_string_equal(hdr(got, "user-agent"),
                      "libllmroute/" LLMR_VERSION_STRING);
  expected_json = "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":"
                  "\"system\",\"content\":\"Be terse.\"},{\"role\":\"user\","
                  "\"content\":\"hello\"}],\"temperature\":0.25,\"top_p\":0.5,"
                  "\"stop\":[\"END\"],\"seed\":42,\"user\":"
                  "\"user-7\",\"max_completion_tokens\":64}";
  got_json = cJSON_PrintUnformatted(body(got));
  assert_string_equal(got_json, expected_json);
  cJSON_free(got_json);
  cJSON_Delete(got);
  llmr_request_free(req);
  llmr_response_free(resp);
  llmr_router_free(r);
}

static void test_tool_calls(void **state) {
  const char *slugs[] = {"openai/gpt-4o"};
  llmr_router *r = router_with("");
  llmr_response *resp;
  (void)state;
  assert_int_equal(
      emu_script(&E,
                 "{\"model\":\"gpt-4o\",\"steps\":[{\"kind\":\"ok\","
                 "\"text\":null,\"finish_reason\":\"tool_calls\","
                 "\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\","
                 "\"function\":{\"name\":\"get_weather\",\"arguments\":"
                 "\"{\\\"city\\\":\\\"Paris\\\"}\"}},{\"type\":\"function\","
                 "\"function\":{\"name\":\"get_time\",\"arguments\":\"{}\"}}]}]}"),
      0);
  resp = call(r, slugs, 1, LLMR_OK);
  assert_string_equal(llmr_response_finish_reason(resp), "tool_calls");
  assert_int_equal(llmr_response_tool_call_count(resp), 2);
  assert_string_equal(llmr_response_tool_call_id(resp, 0), "call_1");
  assert_string_equal(llmr_response_tool_call_name(resp, 0), "get_weather");
  assert_string_equal(llmr_response_tool_call_arguments(resp, 0),
                      "{\"city\":\"Paris\"}");
  /* a call without an id gets a synthesised unique one */
  assert_string_equal(llmr_response_tool_call_name(resp, 1), "get_time");
  assert_true(strlen(llmr_response_tool_call_id(resp, 1)) > 5);
  assert_string_not_equal(llmr_response_tool_call_id(resp, 1), "call_1");
  assert_null(llmr_response_tool_call_id(resp, 2));
  assert_string_equal(llmr_response_text(resp), "");
  llmr_response_free(resp);
  llmr_router_free(r);
}

/* ---- error classes -------------------------------------------------------- */

typedef struct err_case {
  const char *script; /* the action JSON */
  llmr_status status;
  int http;
  const char *type; /* NULL: expect null */
  int retryable;
  double retry_after; /* -1: none */
} err_case;

static const err_case err_cases[] = {
    {"{\"kind\":\"error\",\"preset\":\"rate_limit\",\"headers\":{\"Retry-After\":\"7\"}}",
     LLMR_E_RATE_LIMITED, 429, "requests", 1, 7},
    {"{\"kind\":\"error\",\"preset\":\"rate_limit\",\"headers\":{\"retry-after-ms\":\"1500\",\"Retry-After\":\"2\"}}",
     LLMR_E_RATE_LIMITED, 429, "requests", 1, 1.5},
    {"{\"kind\":\"error\",\"preset\":\"quota\"}", LLMR_E_PAYMENT, 429,
     "insufficient_quota", 0, -1},
    {"{\"kind\":\"error\",\"preset\":\"server_error\"}", LLMR_E_SERVER, 500,
     "server_error", 1, -1},
    {"{\"kind\":\"error\",\"preset\":\"bad_gateway\"}", LLMR_E_SERVER, 502,
     "cf_bad_gateway", 1, -1},
    {"{\"kind\":\"error\",\"preset\":\"overloaded\",\"headers\":{\"Retry-After\":\"3\"}}",
     LLMR_E_OVERLOADED, 503, "server_error", 1, 3},
    {"{\"kind\":\"error\",\"status\":529,\"body\":{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}}",
     LLMR_E_OVERLOADED, 529, "overloaded_error", 1, -1},
    {"{\"kind\":\"error\",\"preset\":\"invalid_request\"}",
     LLMR_E_BAD_REQUEST, 400, "invalid_request_error", 0, -1},
    {"{\"kind\":\"error\",\"preset\":\"context_length\"}",
     LLMR_E_CONTEXT_LENGTH, 400, "invalid_request_error", 0, -1},
    {"{\"kind\":\"error\",\"preset\":\"auth\"}", LLMR_E_AUTH, 401,
     "invalid_request_error", 0, -1},
    {"{\"kind\":\"error\",\"preset\":\"permission\"}", LLMR_E_AUTH, 403,
     "request_forbidden", 0, -1},
    {"{\"kind\":\"error\",\"preset\":\"not_found\"}", LLMR_E_NOT_FOUND, 404,
     "invalid_request_error", 0, -1},
    /* OpenRouter: numeric code, no type -> type null */
    {"{\"kind\":\"error\",\"preset\":\"credits\"}", LLMR_E_PAYMENT, 402, NULL,
     0, -1},
    {"{\"kind\":\"error\",\"preset\":\"timeout\"}", LLMR_E_TIMEOUT, 408,
     "timeout", 1, -1},
    /* Mistral's 401 body is not OpenAI-shaped */
    {"{\"kind\":\"error\",\"status\":401,\"body\":{\"message\":\"Unauthorized\",\"request_id\":\"r1\"}}",
     LLMR_E_AUTH, 401, NULL, 0, -1},
    /* HTML from a proxy in front of the provider */
    {"{\"kind\":\"error\",\"status\":502,\"body\":\"<html>Bad Gateway</html>\"}",
     LLMR_E_SERVER, 502, NULL, 1, -1},
    {"{\"kind\":\"error\",\"status\":409,\"body\":{\"error\":{\"message\":\"conflict\",\"type\":\"conflict\"}}}",
     LLMR_E_BAD_REQUEST, 409, "conflict", 1, -1},
    /* x-should-retry overrides the status rule, as in the OpenAI SDKs */
    {"{\"kind\":\"error\",\"preset\":\"server_error\",\"headers\":{\"x-should-retry\":\"false\"}}",
     LLMR_E_SERVER, 500, "server_error", 0, -1},
};

static void test_error_classes(void **state) {
  const char *slugs[] = {"openai/m-err"};
  llmr_router *r = router_with(NOCOOL);
  size_t i;
  char script[1024];
  (void)state;
  for (i = 0; i < sizeof(err_cases) / sizeof(err_cases[0]); i++) {
    const err_case *c = &err_cases[i];
    llmr_response *resp;
    snprintf(script, sizeof(script), "{\"model\":\"m-err\",\"steps\":[%s]}",
             c->script);
    assert_int_equal(emu_script(&E, script), 0);
    resp = call(r, slugs, 1, c->status);
    if (llmr_response_http_status(resp) != c->http ||
        llmr_response_retryable(resp) != c->retryable)
      fprintf(stderr, "case %zu: http %d retryable %d\n", i,
              llmr_response_http_status(resp), llmr_response_retryable(resp));
    assert_int_equal(llmr_response_http_status(resp), c->http);
    assert_int_equal(llmr_response_retryable(resp), c->retryable);
    if (c->type && (!llmr_response_error_type(resp) ||
                    strcmp(c->type, llmr_response_error_type(resp)) != 0))
      fprintf(stderr, "case %zu: type %s\n", i,
              llmr_response_error_type(resp));
    if (c->type)
      assert_string_equal(llmr_response_error_type(resp), c->type);
    else
      assert_null(llmr_response_error_type(resp));
    assert_true(llmr_response_retry_after(resp) > c->retry_after - 0.01 &&
                llmr_response_retry_after(resp) < c->retry_after + 0.01);
    assert_non_null(llmr_response_error(resp));
    assert_true(strlen(llmr_response_error(resp)) > 0);
    assert_null(llmr_response_model(resp));
    assert_int_equal(llmr_response_attempt_count(resp), 1);
    assert_int_equal(llmr_response_attempt_status(resp, 0), c->status);
    llmr_response_free(resp);
  }
  llmr_router_free(r);
}

static void test_retry_after_http_date(void **state) {
  const char *slugs[] = {"openai/m-date"};
  llmr_router *r = router_with("");
  llmr_response *resp;
  (void)state;
  /* a date in the past means "now" (0 s); the parser must accept it */
  assert_int_equal(
      emu_script(&E, "{\"model\":\"m-date\",\"steps\":[{\"kind\":\"error\","
                     "\"preset\":\"rate_limit\",\"headers\":{\"Retry-After\":"
                     "\"Wed, 21 Oct 2015 07:28:00 GMT\"}}]}"),
      0);
  resp = call(r, slugs, 1, LLMR_E_RATE_LIMITED);
  assert_true(llmr_response_retry_after(resp) == 0);
  llmr_response_free(resp);
  llmr_router_free(r);
}

/* ---- fallback ------------------------------------------------------------- */

static void test_fallback_from_refused_connection(void **state) {
  char extra[256];
  const char *slugs[] = {"deadhost/gpt-4o", "openai/gpt-4o-mini"};
  llmr_router *r;
  llmr_response *resp;
  (void)state;
  snprintf(extra, sizeof(extra),
           "\"connect_timeout_ms\": 2000, \"providers\": {\"deadhost\": "
           "{\"base_url\": \"http://127.0.0.1:%d/v1\", \"api_key\": \"k\"}}",
           emu_free_port());
  /* emu_config adds its own "providers": build the config by hand */
  {
    char conf[1024];
    snprintf(conf, sizeof(conf),
             "{\"use_env\": false, \"providers\": {\"deadhost\": {\"base_url\":"
             " \"http://127.0.0.1:%d/v1\", \"api_key\": \"k\"}, \"openai\": "
             "{\"base_url\": \"%s/v1\", \"api_key\": \"sk-test-0000\"}}}",
             emu_free_port(), E.base);
    assert_int_equal(llmr_router_new(conf, &r), LLMR_OK);
  }
  (void)extra;
  resp = call(r, slugs, 2, LLMR_OK);
  assert_string_equal(llmr_response_model(resp), "openai/gpt-4o-mini");
  assert_int_equal(llmr_response_attempt_count(resp), 2);
  assert_int_equal(llmr_response_attempt_status(resp, 0), LLMR_E_TRANSPORT);
  assert_int_equal(llmr_response_attempt_http_status(resp, 0), 0);
  assert_string_equal(llmr_response_attempt_provider(resp, 0), "deadhost");
  assert_non_null(llmr_response_attempt_error(resp, 0));
  assert_int_equal(llmr_response_attempt_status(resp, 1), LLMR_OK);
  assert_string_equal(llmr_response_text(resp), "Hello from gpt-4o-mini!");
  llmr_response_free(resp);
  llmr_router_free(r);
}

static void test_fallback_from_503(void **state) {
  const char *slugs[] = {"openai/m-down", "openrouter/meta-llama/llama-3.1-8b"};
  llmr_router *r = router_with("");
  llmr_response *resp;
  cJSON *got;
  (void)state;
  assert_int_equal(emu_script(&E, "{\"model\":\"m-down\",\"default\":{"
                                  "\"kind\":\"error\",\"preset\":"
                                  "\"overloaded\"}}"),
                   0);
  resp = call(r, slugs, 2, LLMR_OK);
  assert_int_equal(llmr_response_attempt_count(resp), 2);
  assert_int_equal(llmr_response_attempt_http_status(resp, 0), 503);
  assert_int_equal(llmr_response_attempt_status(resp, 0), LLMR_E_OVERLOADED);
  assert_string_equal(llmr_response_model(resp),
                      "openrouter/meta-llama/llama-3.1-8b");
  assert_string_equal(llmr_response_provider(resp), "openrouter");
  /* the model id keeps its own '/' */
  assert_string_equal(llmr_response_native_model(resp),
                      "meta-llama/llama-3.1-8b");
  got = emu_request(&E, -1);
  assert_string_equal(cJSON_GetObjectItem(got, "path")->valuestring,
                      "/api/v1/chat/completions");
  assert_string_equal(cJSON_GetObjectItem(body(got), "model")->valuestring,
                      "meta-llama/llama-3.1-8b");
  assert_string_equal(hdr(got, "authorization"), "Bearer sk-or-test-0000");
  cJSON_Delete(got);
  llmr_response_free(resp);
  llmr_router_free(r);
}

static void test_400_does_not_fall_back(void **state) {
  const char *slugs[] = {"openai/m-bad", "openai/m-next"};
  llmr_router *r = router_with("");
  llmr_response *resp;
  (void)state;
  assert_int_equal(emu_script(&E, "{\"model\":\"m-bad\",\"steps\":[{\"kind\":"
                                  "\"error\",\"preset\":\"invalid_request\"}"
                                  "]}"),
                   0);
  resp = call(r, slugs, 2, LLMR_E_BAD_REQUEST);
  assert_int_equal(llmr_response_attempt_count(resp), 1);
  assert_int_equal(emu_count(&E, "m-next"), 0);
  assert_int_equal(llmr_response_http_status(resp), 400);
  llmr_response_free(resp);
  llmr_router_free(r);
}

static void test_all_failed(void **state) {
  const char *slugs[] = {"openai/m-a", "openai/m-b"};
  llmr_router *r = router_with("");
  llmr_response *resp;
  (void)state;
  assert_int_equal(
      emu_script(&E, "[{\"model\":\"m-a\",\"default\":{\"kind\":\"error\","
                     "\"preset\":\"server_error\"}},{\"model\":\"m-b\","
                     "\"default\":{\"kind\":\"error\",\"preset\":"
                     "\"rate_limit\",\"headers\":{\"Retry-After\":\"9\"}}}]"),
      0);
  resp = call(r, slugs, 2, LLMR_E_ALL_FAILED);
  assert_int_equal(llmr_response_attempt_count(resp), 2);
  assert_int_equal(llmr_response_attempt_status(resp, 0), LLMR_E_SERVER);
  assert_int_equal(llmr_response_attempt_status(resp, 1),
                   LLMR_E_RATE_LIMITED);
  /* the last attempt's details are kept */
  assert_int_equal(llmr_response_http_status(resp), 429);
  assert_true(llmr_response_retry_after(resp) == 9);
  assert_non_null(strstr(llmr_response_error(resp), "all 2 models failed"));
  llmr_response_free(resp);
  llmr_router_free(r);
}

static void test_no_key_and_unknown_provider_fall_back(void **state) {
  const char *slugs[] = {"nosuch/model", "groq/llama", "openai/gpt-4o"};
  char conf[1024];
  llmr_router *r;
  llmr_response *resp;
  (void)state;
  snprintf(conf, sizeof(conf),
           "{\"use_env\": false, \"providers\": {\"groq\": {\"base_url\": "
           "\"%s/openai/v1\"}, \"openai\": {\"base_url\": \"%s/v1\", "
           "\"api_key\": \"sk-test-0000\"}}}",
           E.base, E.base);
  assert_int_equal(llmr_router_new(conf, &r), LLMR_OK);
  resp = call(r, slugs, 3, LLMR_OK);
  assert_int_equal(llmr_response_attempt_count(resp), 3);
  assert_int_equal(llmr_response_attempt_status(resp, 0), LLMR_E_NO_PROVIDER);
  assert_int_equal(llmr_response_attempt_status(resp, 1), LLMR_E_NO_KEY);
  assert_int_equal(emu_count(&E, NULL), 1); /* no network for the first two */
  llmr_response_free(resp);
  llmr_router_free(r);
}

/* ---- caps, garbage, drops, stalls ----------------------------------------- */

static void test_response_size_cap(void **state) {
  const char *slugs[] = {"openai/m-big"};
  llmr_router *r = router_with("\"max_response_bytes\": 4096");
  llmr_response *resp;
  (void)state;
  assert_int_equal(emu_script(&E, "{\"model\":\"m-big\",\"steps\":[{\"kind\":"
                                  "\"big\",\"bytes\":2000},{\"kind\":\"big\","
                                  "\"bytes\":100000}]}"),
                   0);
  resp = call(r, slugs, 1, LLMR_OK);
  assert_int_equal(strlen(llmr_response_text(resp)), 2000);
  llmr_response_free(resp);
  resp = call(r, slugs, 1, LLMR_E_TOO_LARGE);
  assert_non_null(strstr(llmr_response_error(resp), "4096"));
  assert_string_equal(llmr_response_text(resp), "");
  llmr_response_free(resp);
  llmr_router_free(r);
}

static void test_malformed_bodies(void **state) {
  static const char *const actions[] = {
      "{\"kind\":\"garbage\"}",
      "{\"kind\":\"raw\",\"status\":200,\"body\":\"[1,2,3]\"}",
      "{\"kind\":\"raw\",\"status\":200,\"body\":\"{\\\"choices\\\":[]}\"}",
      "{\"kind\":\"raw\",\"status\":200,\"body\":\"{\\\"choices\\\":[{\\\"message\\\":{\\\"content\\\":42}}]}\"}",
      "{\"kind\":\"raw\",\"status\":200,\"body\":\"\"}",
      "{\"kind\":\"raw\",\"status\":200,\"body\":\"{\\\"choices\\\":[{\\\"message\\\":{\\\"tool_calls\\\":[{\\\"function\\\":{}}]}}]}\"}",
  };
  const char *slugs[] = {"openai/m-garbage"};
  llmr_router *r = router_with(NOCOOL);
  size_t i;
  char script[512];
  (void)state;
  for (i = 0; i < sizeof(actions) / sizeof(actions[0]); i++) {
    llmr_response *resp;
    snprintf(script, sizeof(script),
             "{\"model\":\"m-garbage\",\"steps\":[%s]}", actions[i]);
    assert_int_equal(emu_script(&E, script), 0);
    resp = call(r, slugs, 1, LLMR_E_PROTOCOL);
    assert_non_null(llmr_response_error(resp));
    llmr_response_free(resp);
  }
  llmr_router_free(r);
}

static void test_dropped_connections(void **state) {
  const char *slugs[] = {"openai/m-drop"};
  llmr_router *r = router_with("");
  llmr_response *resp;
  (void)state;
  assert_int_equal(emu_script(&E, "{\"model\":\"m-drop\",\"steps\":[{\"kind\":"
                                  "\"close\"},{\"kind\":\"truncate\"}]}"),
                   0);
  resp = call(r, slugs, 1, LLMR_E_TRANSPORT);
  assert_true(llmr_response_retryable(resp));
  llmr_response_free(resp);
  resp = call(r, slugs, 1, LLMR_E_TRANSPORT);
  assert_string_equal(llmr_response_text(resp), "");
  llmr_response_free(resp);
  llmr_router_free(r);
}

static void test_timeout_then_fallback(void **state) {
  const char *slugs[] = {"openai/m-stall", "openai/m-fast"};
  llmr_router *r = router_with("\"timeout_ms\": 300");
  llmr_response *resp;
  (void)state;
  assert_int_equal(emu_script(&E, "{\"model\":\"m-stall\",\"steps\":[{"
                                  "\"kind\":\"stall\",\"ms\":3000}]}"),
                   0);
  resp = call(r, slugs, 2, LLMR_OK);
  assert_int_equal(llmr_response_attempt_status(resp, 0), LLMR_E_TIMEOUT);
  assert_true(llmr_response_attempt_duration_ms(resp, 0) < 2500);
  assert_string_equal(llmr_response_model(resp), "openai/m-fast");
  llmr_response_free(resp);
  llmr_router_free(r);
}

static void test_keepalive_reuse(void **state) {
  const char *slugs[] = {"openai/gpt-4o-mini"};
  llmr_router *r = router_with("");
  cJSON *s;
  int before, after, i;
  (void)state;
  s = emu_get(&E, "/_emu/stats");
  before = cJSON_GetObjectItem(s, "connections")->valueint;
  cJSON_Delete(s);
  for (i = 0; i < 5; i++)
    llmr_response_free(call(r, slugs, 1, LLMR_OK));
  s = emu_get(&E, "/_emu/stats");
  after = cJSON_GetObjectItem(s, "connections")->valueint;
  cJSON_Delete(s);
  assert_int_equal(after - before, 1);
  llmr_router_free(r);
}

/* ---- hosts of the OpenAI family -------------------------------------------- */

static void test_host_dialects(void **state) {
  char conf[2048];
  llmr_router *r;
  llmr_request *req = slog_hello();
  llmr_response *resp = NULL;
  const char *mistral[] = {"mistral/mistral-small-latest"};
  const char *ollama[] = {"ollama/qwen3:8b"};
  const char *openrouter[] = {"openrouter/anthropic/claude-sonnet-4.5"};
  cJSON *got;
  (void)state;
  snprintf(conf, sizeof(conf),
           "{\"use_env\": false, \"providers\": {"
           "\"mistral\": {\"base_url\": \"%s/v1/\", \"api_key\": \"m-key\"},"
           "\"ollama\": {\"base_url\": \"%s/v1\"},"
           "\"openrouter\": {\"base_url\": \"%s/api/v1\", \"api_key\": "
           "\"or-key\", \"options\": {\"http_referer\": "
           "\"https://example.org/app\", \"x_title\": \"Example App\"}}}}",
           E.base, E.base, E.base);
  assert_int_equal(llmr_router_new(conf, &r), LLMR_OK);
  assert_int_equal(llmr_request_set_seed(req, 7), LLMR_OK);
  assert_int_equal(llmr_request_set_user(req, "u1"), LLMR_OK);

  /* Mistral: seed is random_seed, user is not accepted (dropped, warned) */
  assert_int_equal(llmr_complete(r, mistral, 1, req, &resp), LLMR_OK);
  got = emu_request(&E, -1);
  assert_string_equal(cJSON_GetObjectItem(got, "path")->valuestring,
                      "/v1/chat/completions");
  assert_int_equal(cJSON_GetObjectItem(body(got), "random_seed")->valueint, 7);
  assert_null(cJSON_GetObjectItem(body(got), "seed"));
  assert_null(cJSON_GetObjectItem(body(got), "user"));
  assert_int_equal(llmr_response_warning_count(resp), 1);
  assert_string_equal(llmr_response_warning(resp, 0), "mistral: user");
  cJSON_Delete(got);
  llmr_response_free(resp);

  /* Ollama: no key, no Authorization header */
  assert_int_equal(emu_script(&E, "{\"model\":\"qwen3:8b\",\"default\":{"
                                  "\"kind\":\"ok\",\"text\":\"local\"},"
                                  "\"require_key\":false}"),
                   0);
  assert_int_equal(llmr_complete(r, ollama, 1, req, &resp), LLMR_OK);
  assert_string_equal(llmr_response_text(resp), "local");
  got = emu_request(&E, -1);
  assert_null(hdr(got, "authorization"));
  cJSON_Delete(got);
  llmr_response_free(resp);

  /* OpenRouter: app attribution headers */
  assert_int_equal(llmr_complete(r, openrouter, 1, req, &resp), LLMR_OK);
  got = emu_request(&E, -1);
  assert_string_equal(hdr(got, "http-referer"), "https://example.org/app");
  assert_string_equal(hdr(got, "x-title"), "Example App");
  assert_string_equal(hdr(got, "authorization"), "Bearer or-key");
  cJSON_Delete(got);
  llmr_response_free(resp);
  llmr_request_free(req);
  llmr_router_free(r);
}

static void test_environment_defaults(void **state) {
  char url[256];
  llmr_router *r;
  llmr_response *resp;
  const char *slugs[] = {"openai/gpt-4o-mini"};
  (void)state;
  snprintf(url, sizeof(url), "%s/v1", E.base);
  setenv("OPENAI_API_KEY", "sk-env-0000", 1);
  setenv("LLMR_OPENAI_BASE_URL", url, 1);
  assert_int_equal(llmr_router_new(NULL, &r), LLMR_OK);
  unsetenv("OPENAI_API_KEY");
  unsetenv("LLMR_OPENAI_BASE_URL");
  resp = call(r, slugs, 1, LLMR_OK);
  {
    cJSON *got = emu_request(&E, -1);
    assert_string_equal(hdr(got, "authorization"), "Bearer sk-env-0000");
    cJSON_Delete(got);
  }
  llmr_response_free(resp);
  llmr_router_free(r);
}

/* tests/run.sh exempts loopback through no_proxy; the proxy tests undo
 * that while they run: unset returns a copy of NO_PROXY for restore. */
static char *no_proxy_unset(void) {
  const char *saved = getenv("NO_PROXY");
  char *copy = saved ? strdup(saved) : NULL;
  unsetenv("NO_PROXY");
  unsetenv("no_proxy");
  return copy;
}

static void no_proxy_restore(char *copy) {
  if (copy) {
    setenv("NO_PROXY", copy, 1);
    setenv("no_proxy", copy, 1);
    free(copy);
  }
}

static void test_proxy_from_environment(void **state) {
  /* libcurl's proxy variables are honoured: the request for a host that
   * does not exist goes to the "proxy" (the emulator) in absolute form */
  char proxy[128];
  const char *slugs[] = {"farhost/gpt-4o"};
  llmr_router *r;
  llmr_response *resp;
  cJSON *got;
  char *saved;
  (void)state;
  snprintf(proxy, sizeof(proxy), "%s", E.base);
  setenv("http_proxy", proxy, 1);
  saved = no_proxy_unset();
  assert_int_equal(
      llmr_router_new("{\"use_env\": false, \"providers\": {\"farhost\": {"
                      "\"base_url\": \"http://api.example.invalid/v1\", "
                      "\"api_key\": \"k\"}}}",
                      &r),
      LLMR_OK);
  resp = call(r, slugs, 1, LLMR_OK);
  unsetenv("http_proxy");
  no_proxy_restore(saved);
  got = emu_request(&E, -1);
  assert_non_null(strstr(cJSON_GetObjectItem(got, "path")->valuestring,
                         "/v1/chat/completions"));
  assert_string_equal(hdr(got, "host"), "api.example.invalid");
  assert_string_equal(hdr(got, "user-agent"),
                      "libllmroute/" LLMR_VERSION_STRING);
  cJSON_Delete(got);
  llmr_response_free(resp);
  llmr_router_free(r);
}

static void test_proxy_read_when_made(void **state) {
  /* with no proxy variable when the router is made, one set afterwards is
   * not used (the environment is read once; libcurl is told NOPROXY "*"):
   * a "proxy" that refuses connections does not stop the call */
  char conf[256];
  const char *slugs[] = {"nearhost/gpt-4o"};
  const char *vars[] = {"http_proxy", "https_proxy", "HTTPS_PROXY",
                        "all_proxy", "ALL_PROXY"};
  char *saved;
  llmr_router *r;
  llmr_response *resp;
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
    assert_null(getenv(vars[i]));
  snprintf(conf, sizeof(conf),
           "{\"use_env\": false, \"providers\": {\"nearhost\": {"
           "\"base_url\": \"%s/v1\", \"api_key\": \"k\"}}}",
           E.base);
  assert_int_equal(llmr_router_new(conf, &r), LLMR_OK);
  saved = no_proxy_unset();
  setenv("http_proxy", "http://127.0.0.1:1", 1);
  resp = call(r, slugs, 1, LLMR_OK);
  unsetenv("http_proxy");
  no_proxy_restore(saved);
  assert_string_equal(llmr_response_model(resp), "nearhost/gpt-4o");
  llmr_response_free(resp);
  llmr_router_free(r);
}

static void test_url_forms(void **state) {
  /* URLs reach curl parsed once per slot (CURLOPT_CURLU) or, when that
   * parse refuses them, as text (CURLOPT_URL, where curl refuses them the
   * same way): a host name with a space is a bad URL, not a transport
   * failure; calls that alternate between two URLs on one slot each reach
   * their own path */
  char conf[512];
  const char *bad[] = {"bad/gpt-4o"};
  const char *a[] = {"one/gpt-4o"}, *b[] = {"two/gpt-4o"};
  llmr_router *r;
  llmr_response *resp;
  cJSON *got;
  int i;
  (void)state;
  snprintf(conf, sizeof(conf),
           "{\"use_env\": false, \"providers\": {"
           "\"bad\": {\"base_url\": \"http://bad host/v1\", \"api_key\": \"k\"},"
           "\"one\": {\"base_url\": \"%s/one\", \"api_key\": \"k\"},"
           "\"two\": {\"base_url\": \"%s/two\", \"api_key\": \"k\"}}}",
           E.base, E.base);
  assert_int_equal(llmr_router_new(conf, &r), LLMR_OK);
  resp = call(r, bad, 1, LLMR_E_INVAL);
  llmr_response_free(resp);
  for (i = 0; i < 4; i++) {
    resp = call(r, i % 2 ? b : a, 1, LLMR_OK);
    llmr_response_free(resp);
    got = emu_request(&E, -1);
    assert_string_equal(cJSON_GetObjectItem(got, "path")->valuestring,
                        i % 2 ? "/two/chat/completions"
                              : "/one/chat/completions");
    cJSON_Delete(got);
  }
  llmr_router_free(r);
}

/* ---- the model catalog ----------------------------------------------------- */

static void test_catalog_routing_and_capability_skip(void **state) {
  char path[] = "/tmp/llmr-catalog-XXXXXX";
  char conf[2048];
  const char *slugs[] = {"openai/o3-mini", "mycorp/fast"};
  llmr_router *r;
  llmr_request *req;
  llmr_response *resp = NULL;
  cJSON *got;
  FILE *f;
  int fd = mkstemp(path);
  (void)state;
  assert_true(fd >= 0);
  f = fdopen(fd, "w");
  fputs("{\"models\":[{\"slug\":\"mycorp/fast\",\"provider\":\"openai\","
        "\"model\":\"gpt-4o-mini\",\"capabilities\":[\"tools\",\"vision\"]}]}",
        f);
  fclose(f);
  snprintf(conf, sizeof(conf),
           "{\"use_env\": false, \"catalog\": \"%s\", \"providers\": {"
           "\"openai\": {\"base_url\": \"%s/v1\", \"api_key\": \"k\"}}}",
           path, E.base);
  assert_int_equal(llmr_router_new(conf, &r), LLMR_OK);
  unlink(path);
  assert_int_equal(llmr_request_new(&req), LLMR_OK);
  assert_int_equal(llmr_request_add_message(req, LLMR_ROLE_USER, "what is it?"),
                   LLMR_OK);
  assert_int_equal(
      llmr_request_add_image(req, "data:image/png;base64,iVBORw0KGgo=", "low"),
      LLMR_OK);
  /* o3-mini has no vision (catalog): skipped with no network call */
  assert_int_equal(llmr_complete(r, slugs, 2, req, &resp), LLMR_OK);
  assert_int_equal(llmr_response_attempt_status(resp, 0), LLMR_E_CAPABILITY);
  assert_non_null(strstr(llmr_response_attempt_error(resp, 0), "vision"));
  assert_int_equal(emu_count(&E, "o3-mini"), 0);
  /* the user's catalog slug routes to its provider and native id */
  assert_string_equal(llmr_response_model(resp), "mycorp/fast");
  assert_string_equal(llmr_response_provider(resp), "openai");
  assert_string_equal(llmr_response_native_model(resp), "gpt-4o-mini");
  got = emu_request(&E, -1);
  assert_string_equal(cJSON_GetObjectItem(body(got), "model")->valuestring,
                      "gpt-4o-mini");
  cJSON_Delete(got);
  llmr_response_free(resp);
  llmr_request_free(req);
  llmr_router_free(r);

  /* a catalog file that does not parse is a clear router error */
  {
    char err[LLMR_ERRBUF_SIZE] = "";
    assert_int_equal(llmr_router_new_ex("{\"catalog\": \"/nonexistent.json\"}",
                                        &r, err, sizeof(err)),
                     LLMR_E_INVAL);
    assert_null(r);
    assert_non_null(strstr(err, "/nonexistent.json"));
  }
}

/* ---- the JSON API ---------------------------------------------------------- */

static void test_complete_json(void **state) {
  llmr_router *r = router_with("");
  char *out = NULL;
  cJSON *j;
  const cJSON *lr;
  (void)state;
  assert_int_equal(emu_script(&E, "{\"model\":\"m-down2\",\"default\":{"
                                  "\"kind\":\"error\",\"preset\":"
                                  "\"overloaded\"}}"),
                   0);
  assert_int_equal(
      llmr_complete_json(r,
                         "{\"models\":[\"openai/m-down2\",\"openai/gpt-4o\"],"
                         "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}"
                         "],\"max_tokens\":5}",
                         &out),
      LLMR_OK);
  j = cJSON_Parse(out);
  assert_non_null(j);
  assert_string_equal(cJSON_GetObjectItem(j, "object")->valuestring,
                      "chat.completion");
  assert_string_equal(cJSON_GetObjectItem(j, "model")->valuestring,
                      "openai/gpt-4o");
  assert_string_equal(
      cJSON_GetObjectItem(
          cJSON_GetObjectItem(cJSON_GetArrayItem(
                                  cJSON_GetObjectItem(j, "choices"), 0),
                              "message"),
          "content")
          ->valuestring,
      "Hello from gpt-4o!");
  lr = cJSON_GetObjectItem(j, "llmroute");
  assert_string_equal(cJSON_GetObjectItem(lr, "provider")->valuestring,
                      "openai");
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(lr, "attempts")), 2);
  assert_int_equal(
      cJSON_GetObjectItem(
          cJSON_GetArrayItem(cJSON_GetObjectItem(lr, "attempts"), 0),
          "http_status")
          ->valueint,
      503);
  cJSON_Delete(j);
  llmr_free(out);

  /* a failure is an error document */
  assert_int_equal(
      llmr_complete_json(r,
                         "{\"model\":\"openai/m-down2\",\"messages\":[{"
                         "\"role\":\"user\",\"content\":\"hi\"}]}",
                         &out),
      LLMR_E_OVERLOADED);
  j = cJSON_Parse(out);
  lr = cJSON_GetObjectItem(j, "error");
  assert_string_equal(cJSON_GetObjectItem(lr, "code")->valuestring,
                      "LLMR_E_OVERLOADED");
  assert_string_equal(cJSON_GetObjectItem(lr, "type")->valuestring,
                      "server_error");
  assert_int_equal(cJSON_GetObjectItem(lr, "http_status")->valueint, 503);
  assert_true(cJSON_IsTrue(cJSON_GetObjectItem(lr, "retryable")));
  assert_true(cJSON_IsNull(cJSON_GetObjectItem(lr, "retry_after_s")));
  assert_null(cJSON_GetObjectItem(j, "choices"));
  cJSON_Delete(j);
  llmr_free(out);

  /* a bad request names the field; nothing is sent */
  {
    int before = emu_count(&E, NULL);
    assert_int_equal(llmr_complete_json(r,
                                        "{\"model\":\"openai/gpt-4o\","
                                        "\"messages\":[{\"role\":\"wizard\","
                                        "\"content\":\"hi\"}]}",
                                        &out),
                     LLMR_E_INVAL);
    assert_int_equal(emu_count(&E, NULL), before);
  }
  j = cJSON_Parse(out);
  lr = cJSON_GetObjectItem(j, "error");
  assert_non_null(strstr(cJSON_GetObjectItem(lr, "message")->valuestring,
                         "messages[0].role"));
  assert_string_equal(cJSON_GetObjectItem(lr, "code")->valuestring,
                      "LLMR_E_INVAL");
  cJSON_Delete(j);
  llmr_free(out);

  assert_int_equal(llmr_complete_json(r, "{\"messages\":[]}", &out),
                   LLMR_E_INVAL);
  assert_non_null(strstr(out, "model"));
  llmr_free(out);
  assert_int_equal(llmr_complete_json(r, "not json", &out), LLMR_E_INVAL);
  assert_non_null(out);
  llmr_free(out);
  llmr_router_free(r);
}

/* ---- secrets --------------------------------------------------------------- */

static void test_key_never_in_output(void **state) {
  const char *slugs[] = {"openai/gpt-4o", "openrouter/x"};
  char conf[1024];
  llmr_router *r;
  llmr_response *resp;
  char *json;
  size_t i;
  (void)state;
  snprintf(conf, sizeof(conf),
           "{\"use_env\": false, \"providers\": {\"openai\": {\"base_url\": "
           "\"%s/v1\", \"api_key\": \"bad-key\"}, \"openrouter\": "
           "{\"base_url\": \"http://127.0.0.1:%d/v1\", \"api_key\": "
           "\"sk-secret-9f8e7d6c\"}}}",
           E.base, emu_free_port());
  assert_int_equal(llmr_router_new(conf, &r), LLMR_OK);
  resp = call(r, slugs, 2, LLMR_E_ALL_FAILED);
  json = llmr_response_to_json(resp);
  assert_null(strstr(json, "sk-secret-9f8e7d6c"));
  assert_null(strstr(json, "Bearer"));
  for (i = 0; i < llmr_response_attempt_count(resp); i++)
    assert_null(strstr(llmr_response_attempt_error(resp, i), "9f8e7d6c"));
  assert_int_equal(llmr_response_attempt_status(resp, 0), LLMR_E_AUTH);
  llmr_free(json);
  llmr_response_free(resp);
  llmr_router_free(r);
}


/* The User-Agent: the router's "user_agent", sent once; a provider's own
 * User-Agent header replaces it (never both), and so does an own
 * Accept-Encoding the library's, whatever the names' case; the same over
 * the pooled, reused connection as on the first call, the providers
 * taking turns on it. */
static void expect_agent(llmr_router *r, const char **slug, const char *ua,
                         const char *ae) {
  llmr_response *resp = call(r, slug, 1, LLMR_OK);
  cJSON *got = emu_request(&E, -1);
  assert_string_equal(hdr(got, "user-agent"), ua);
  assert_string_equal(hdr(got, "accept-encoding"), ae);
  cJSON_Delete(got);
  llmr_response_free(resp);
}

static void test_user_agent(void **state) {
  const char *oa[] = {"openai/gpt-4o-mini"}, *own[] = {"mine/gpt-4o-mini"},
             *low[] = {"low/gpt-4o-mini"};
  char conf[1024], *ae;
  llmr_router *r = NULL;
  llmr_response *resp;
  cJSON *got;
  int i;
  (void)state;
  snprintf(conf, sizeof(conf),
           "{\"use_env\":false,\"user_agent\":\"agent-x/1.2\","
           "\"providers\":{\"openai\":{\"base_url\":\"%s/v1\","
           "\"api_key\":\"sk-test-0000\"},\"mine\":{\"adapter\":"
           "\"openai\",\"base_url\":\"%s/v1\",\"api_key\":"
           "\"sk-test-0000\",\"headers\":{\"User-Agent\":\"own/3\"}},"
           "\"low\":{\"adapter\":\"openai\",\"base_url\":\"%s/v1\","
           "\"api_key\":\"sk-test-0000\",\"headers\":{\"user-AGENT\":"
           "\"low/1\",\"ACCEPT-encoding\":\"identity\"}}}}",
           E.base, E.base, E.base);
  assert_int_equal(llmr_router_new(conf, &r), LLMR_OK);
  resp = call(r, oa, 1, LLMR_OK);
  got = emu_request(&E, -1);
  assert_non_null(hdr(got, "accept-encoding"));
  ae = strdup(hdr(got, "accept-encoding"));
  cJSON_Delete(got);
  llmr_response_free(resp);
  for (i = 0; i < 2; i++) {
    expect_agent(r, oa, "agent-x/1.2", ae);
    expect_agent(r, own, "own/3", ae);
    expect_agent(r, low, "low/1", "identity");
  }
  free(ae);
  llmr_router_free(r);
}

static size_t discard(char *p, size_t s, size_t n, void *u) {
  (void)p;
  (void)u;
  return s * n;
}

/* Accept-Encoding: the library sends, from its cached header list, the
 * very line libcurl itself sends for CURLOPT_ACCEPT_ENCODING "" (checked
 * against a plain libcurl request to the same emulator). */
static void test_accept_encoding(void **state) {
  const char *oa[] = {"openai/gpt-4o-mini"};
  llmr_router *r = router_with("");
  llmr_response *resp;
  struct curl_slist *h = NULL;
  char url[512];
  char *plain;
  cJSON *got;
  CURL *c = curl_easy_init();
  (void)state;
  assert_non_null(c);
  snprintf(url, sizeof(url), "%s/v1/chat/completions", E.base);
  h = curl_slist_append(h, "Authorization: Bearer sk-test-0000");
  h = curl_slist_append(h, "Content-Type: application/json");
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(c, CURLOPT_POSTFIELDS,
                   "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":"
                   "\"user\",\"content\":\"hi\"}]}");
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
  assert_int_equal(curl_easy_perform(c), CURLE_OK);
  curl_easy_cleanup(c);
  curl_slist_free_all(h);
  got = emu_request(&E, -1);
  assert_non_null(hdr(got, "accept-encoding"));
  plain = strdup(hdr(got, "accept-encoding"));
  cJSON_Delete(got);

  resp = call(r, oa, 1, LLMR_OK);
  got = emu_request(&E, -1);
  assert_string_equal(hdr(got, "accept-encoding"), plain);
  cJSON_Delete(got);
  llmr_response_free(resp);
  free(plain);

  /* and a gzip-compressed answer is still decoded (by libcurl) */
  assert_int_equal(
      emu_script(&E, "{\"model\":\"gpt-4o-mini\",\"default\":{\"kind\":"
                     "\"raw\",\"encoding\":\"gzip\",\"body\":{\"id\":"
                     "\"c-gz\",\"object\":\"chat.completion\",\"choices\":[{"
                     "\"index\":0,\"message\":{\"role\":\"assistant\","
                     "\"content\":\"squeezed\"},\"finish_reason\":\"stop\"}],"
                     "\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":"
                     "1,\"total_tokens\":4}}}}"),
      0);
  resp = call(r, oa, 1, LLMR_OK);
  assert_string_equal(llmr_response_text(resp), "squeezed");
  assert_string_equal(llmr_response_id(resp), "c-gz");
  llmr_response_free(resp);
  llmr_router_free(r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(test_success_and_request_shape, reset),
      cmocka_unit_test_setup(test_user_agent, reset),
      cmocka_unit_test_setup(test_accept_encoding, reset),
      cmocka_unit_test_setup(test_tool_calls, reset),
      cmocka_unit_test_setup(test_error_classes, reset),
      cmocka_unit_test_setup(test_retry_after_http_date, reset),
      cmocka_unit_test_setup(test_fallback_from_refused_connection, reset),
      cmocka_unit_test_setup(test_fallback_from_503, reset),
      cmocka_unit_test_setup(test_400_does_not_fall_back, reset),
      cmocka_unit_test_setup(test_all_failed, reset),
      cmocka_unit_test_setup(test_no_key_and_unknown_provider_fall_back, reset),
      cmocka_unit_test_setup(test_response_size_cap, reset),
      cmocka_unit_test_setup(test_malformed_bodies, reset),
      cmocka_unit_test_setup(test_dropped_connections, reset),
      cmocka_unit_test_setup(test_timeout_then_fallback, reset),
      cmocka_unit_test_setup(test_keepalive_reuse, reset),
      cmocka_unit_test_setup(test_host_dialects, reset),
      cmocka_unit_test_setup(test_environment_defaults, reset),
      cmocka_unit_test_setup(test_proxy_from_environment, reset),
      cmocka_unit_test_setup(test_proxy_read_when_made, reset),
      cmocka_unit_test_setup(test_url_forms, reset),
      cmocka_unit_test_setup(test_catalog_routing_and_capability_skip, reset),
      cmocka_unit_test_setup(test_complete_json, reset),
      cmocka_unit_test_setup(test_key_never_in_output, reset),
  };
  return cmocka_run_group_tests_name("integration/openai", tests, group_setup,
                                     group_teardown);
}
