/*
 * llmr_stream() against the emulator's Gemini dialect
 * (:streamGenerateContent?alt=sse, CRLF events, no [DONE], running usage,
 * finishReason on the last chunk) through the real transport: results equal
 * llmr_complete()'s in every chunking, fallback only before the first
 * content, drops and error events after it, the finishReason end marker,
 * a blocked prompt, cancellation.
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
#include <string.h>
#include <time.h>

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

/* Google (and OpenAI, to fall back to) at the emulator. */
static llmr_router *router(void) {
  char conf[1024];
  snprintf(conf, sizeof(conf),
           "{\"use_env\": false, \"providers\": {"
           "\"google\": {\"base_url\": \"%s\", \"api_key\": \"g-test-0000\"},"
           "\"openai\": {\"base_url\": \"%s/v1\", \"api_key\": "
           "\"sk-test-0000\"}}}",
           E.base, E.base);
  return slog_router_new(conf);
}

static void script_json(const char *json) {
  int rc = emu_script(&E, json);
  if (rc != 0)
    fprintf(stderr, "script refused: %s\n", json);
  assert_int_equal(rc, 0);
}

/* A model answering with a raw body. */
static void script_raw(const char *model, const char *body,
                       const char *content_type) {
  assert_int_equal(emu_script_raw(&E, model, body, content_type), 0);
}

static llmr_response *stream(llmr_router *r, const char *const *slugs,
                             size_t n, slog *g, llmr_status expect) {
  llmr_request *req = slog_hello();
  llmr_response *resp = NULL;
  llmr_status st = llmr_stream(r, slugs, n, req, slog_cb, g, &resp);
  llmr_request_free(req);
  assert_non_null(resp);
  if (st != expect)
    fprintf(stderr, "got %s: %s\n", llmr_status_name(st),
            llmr_response_error(resp));
  assert_int_equal(st, expect);
  assert_int_equal(llmr_response_status(resp), expect);
  return resp;
}

static llmr_response *complete(llmr_router *r, const char *slug,
                               llmr_status expect) {
  const char *slugs[1];
  llmr_request *req = slog_hello();
  llmr_response *resp = NULL;
  slugs[0] = slug;
  assert_int_equal(llmr_complete(r, slugs, 1, req, &resp), expect);
  llmr_request_free(req);
  return resp;
}

/* ATTEMPT first, USAGE then DONE last, content only after the last
 * ATTEMPT, deltas adding up to the response. */
static void check_success_log(const slog *g, const llmr_response *resp) {
  size_t i;
  char *s;
  slog_check_shape(g, resp, 0);
  for (i = 0; i < llmr_response_tool_call_count(resp); i++) {
    s = slog_joined(g, LLMR_EVENT_TOOL_CALL, i);
    assert_string_equal(s, llmr_response_tool_call_arguments(resp, i));
    free(s);
  }
}

/* ---- success ----------------------------------------------------------------- */

static void test_stream_equals_complete(void **state) {
  static const char *const modes[] = {"event", "byte", "random", "block"};
  const char *slugs[] = {"google/g-rich"};
  llmr_router *r = router();
  size_t m, ids;
  (void)state;
  for (ids = 0; ids < 2; ids++)
    for (m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
      char sc[2048];
      llmr_response *a, *b;
      slog *g = slog_new();
      cJSON *sent;
      const cJSON *q;
      size_t i, seen = 0;
      snprintf(sc, sizeof(sc),
               "{\"model\":\"g-rich\",\"default\":{\"kind\":\"ok\","
               "\"text\":\"Voilà : 日本語 — 🎉 done.\",\"thinking\":"
               "\"Let me think… ok\",\"chunking\":\"%s\",\"piece_chars\":%d,"
               "\"seed\":7,\"with_ids\":%s,\"thought_signature\":\"c2ln\","
               "\"tool_calls\":[{\"id\":\"call_w\",\"name\":\"get_weather\","
               "\"arguments\":{\"city\":\"Zürich\",\"q\":\"a\\\"b\"}},"
               "{\"id\":\"call_t\",\"name\":\"get_time\",\"arguments\":{}}]}}",
               modes[m], m == 1 ? 1 : 3, ids ? "true" : "false");
      script_json(sc);
      a = complete(r, slugs[0], LLMR_OK);
      b = stream(r, slugs, 1, g, LLMR_OK);
      check_success_log(g, b);
      slog_assert_same_answer(a, b, SLOG_SYNTH_IDS);
      assert_string_equal(llmr_response_text(b), "Voilà : 日本語 — 🎉 done.");
      assert_string_equal(llmr_response_reasoning(b), "Let me think… ok");
      assert_int_equal(llmr_response_tool_call_count(b), 2);
      assert_string_equal(llmr_response_tool_call_arguments(b, 0),
                          "{\"city\":\"Zürich\",\"q\":\"a\\\"b\"}");
      assert_string_equal(llmr_response_tool_call_arguments(b, 1), "{}");
      if (ids) {
        assert_string_equal(llmr_response_tool_call_id(b, 0), "call_w");
        assert_string_equal(llmr_response_tool_call_id(b, 1), "call_t");
      } else {
        assert_non_null(
            strstr(llmr_response_tool_call_id(b, 0), "call_llmr_"));
        assert_string_not_equal(llmr_response_tool_call_id(b, 0),
                                llmr_response_tool_call_id(b, 1));
      }
      /* Gemini reports STOP for a tool turn */
      assert_string_equal(llmr_response_finish_reason(b), "tool_calls");
      /* the running usage's last value, not estimated */
      assert_int_equal(llmr_response_usage_estimated(b), 0);
      assert_true(llmr_response_tokens(b, LLMR_TOKENS_REASONING) > 0);
      assert_int_equal(llmr_response_tokens(b, LLMR_TOKENS_COMPLETION),
                       llmr_response_tokens(a, LLMR_TOKENS_COMPLETION));
      /* one TOOL_CALL event per call, with id, name and all arguments */
      assert_int_equal(slog_count(g, LLMR_EVENT_TOOL_CALL), 2);
      for (i = 0; i < g->n; i++)
        if (g->ev[i].type == LLMR_EVENT_TOOL_CALL) {
          assert_non_null(g->ev[i].tool_id);
          assert_string_equal(g->ev[i].tool_id,
                              llmr_response_tool_call_id(b, seen));
          assert_string_equal(g->ev[i].tool_name,
                              seen ? "get_time" : "get_weather");
          seen++;
        }
      /* reasoning came first, in pieces */
      assert_true(slog_count(g, LLMR_EVENT_REASONING) > 1);
      assert_true(slog_count(g, LLMR_EVENT_TEXT) > 1);
      /* what went out: the streaming method, as SSE */
      sent = emu_request(&E, -1);
      assert_non_null(strstr(cJSON_GetObjectItem(sent, "path")->valuestring,
                             ":streamGenerateContent"));
      q = cJSON_GetObjectItem(cJSON_GetObjectItem(sent, "query"), "alt");
      assert_true(cJSON_IsString(q));
      assert_string_equal(q->valuestring, "sse");
      cJSON_Delete(sent);
      llmr_response_free(a);
      llmr_response_free(b);
      slog_free(g);
    }
  llmr_router_free(r);
}

/* MAX_TOKENS and a blocked prompt: the same answer both ways. */
static void test_finish_reasons(void **state) {
  const char *len[] = {"google/g-len"};
  const char *blk[] = {"google/g-blocked"};
  llmr_router *r = router();
  llmr_response *a, *b;
  slog *g;
  (void)state;
  script_json("[{\"model\":\"g-len\",\"default\":{\"kind\":\"ok\",\"text\":"
              "\"Once upon a time\",\"finish_reason\":\"MAX_TOKENS\","
              "\"chunking\":\"byte\"}},"
              "{\"model\":\"g-blocked\",\"default\":{\"kind\":\"ok\","
              "\"block_reason\":\"PROHIBITED_CONTENT\"}}]");
  a = complete(r, len[0], LLMR_OK);
  g = slog_new();
  b = stream(r, len, 1, g, LLMR_OK);
  check_success_log(g, b);
  slog_assert_same_answer(a, b, SLOG_SYNTH_IDS);
  assert_string_equal(llmr_response_finish_reason(b), "length");
  llmr_response_free(a);
  llmr_response_free(b);
  slog_free(g);

  a = complete(r, blk[0], LLMR_OK);
  g = slog_new();
  b = stream(r, blk, 1, g, LLMR_OK);
  slog_assert_same_answer(a, b, SLOG_SYNTH_IDS);
  assert_string_equal(llmr_response_finish_reason(b), "content_filter");
  assert_string_equal(llmr_response_text(b), "");
  assert_int_equal(slog_count(g, LLMR_EVENT_TEXT), 0);
  assert_int_equal(g->ev[g->n - 1].type, LLMR_EVENT_DONE);
  llmr_response_free(a);
  llmr_response_free(b);
  slog_free(g);
  llmr_router_free(r);
}

/* ---- fallback before the first content, never after ------------------------- */

static void test_fallback_before_content(void **state) {
  const char *slugs[] = {"google/g-503", "google/g-err0", "google/g-drop0",
                         "openai/m-good"};
  llmr_router *r = router();
  llmr_response *resp;
  slog *g = slog_new();
  size_t i, fallbacks = 0;
  (void)state;
  /* 503 UNAVAILABLE; an error event before any content; a stream that
   * closes after the headers */
  script_json("[{\"model\":\"g-503\",\"default\":{\"kind\":\"error\","
              "\"preset\":\"overloaded\"}},"
              "{\"model\":\"g-err0\",\"default\":{\"kind\":\"ok\","
              "\"text\":\"never\",\"error_after_events\":0}},"
              "{\"model\":\"g-drop0\",\"default\":{\"kind\":\"ok\","
              "\"text\":\"never\",\"drop_after_events\":0}},"
              "{\"model\":\"m-good\",\"default\":{\"kind\":\"ok\","
              "\"text\":\"from openai\"}}]");
  resp = stream(r, slugs, 4, g, LLMR_OK);
  check_success_log(g, resp);
  assert_string_equal(llmr_response_text(resp), "from openai");
  assert_string_equal(llmr_response_model(resp), "openai/m-good");
  for (i = 0; i < g->n; i++) {
    if (g->ev[i].type == LLMR_EVENT_FALLBACK) {
      assert_string_equal(g->ev[i].model, slugs[fallbacks]);
      switch (fallbacks++) {
      case 0:
        assert_int_equal(g->ev[i].status, LLMR_E_OVERLOADED);
        assert_int_equal(g->ev[i].http, 503);
        break;
      case 1:
        assert_int_equal(g->ev[i].status, LLMR_E_SERVER);
        assert_int_equal(g->ev[i].http, 200);
        break;
      default:
        assert_int_equal(g->ev[i].status, LLMR_E_TRANSPORT);
        assert_int_equal(g->ev[i].http, 200);
        break;
      }
    }
    if (slog_is_content(g->ev[i].type))
      assert_string_equal(g->ev[i].model, "openai/m-good");
  }
  assert_int_equal(fallbacks, 3);
  assert_int_equal(llmr_response_attempt_count(resp), 4);
  assert_int_equal(llmr_response_attempt_status(resp, 0), LLMR_E_OVERLOADED);
  assert_int_equal(llmr_response_attempt_status(resp, 1), LLMR_E_SERVER);
  llmr_response_free(resp);
  slog_free(g);
  llmr_router_free(r);
}

static void test_drop_after_content_is_an_error(void **state) {
  const char *slugs[] = {"google/g-drop", "openai/m-next"};
  llmr_router *r = router();
  llmr_response *resp;
  slog *g = slog_new();
  (void)state;
  /* 5 chunks of 4 characters; the connection closes after 3 */
  script_json("{\"model\":\"g-drop\",\"default\":{\"kind\":\"ok\",\"text\":"
              "\"0123456789abcdefghij\",\"drop_after_events\":3}}");
  resp = stream(r, slugs, 2, g, LLMR_E_TRANSPORT);
  assert_string_equal(llmr_response_text(resp), "0123456789ab");
  assert_int_equal(slog_count(g, LLMR_EVENT_TEXT), 3);
  assert_int_equal(slog_count(g, LLMR_EVENT_FALLBACK), 0);
  assert_int_equal(slog_count(g, LLMR_EVENT_ATTEMPT), 1);
  assert_int_equal(g->ev[g->n - 1].type, LLMR_EVENT_ERROR);
  assert_int_equal(g->ev[g->n - 1].status, LLMR_E_TRANSPORT);
  assert_int_equal(g->ev[g->n - 1].http, 200);
  assert_int_equal(emu_count(&E, "m-next"), 0);
  assert_int_equal(llmr_response_attempt_count(resp), 1);
  assert_string_equal(llmr_response_model(resp), "google/g-drop");
  assert_true(llmr_response_tokens(resp, LLMR_TOKENS_PROMPT) > 0);
  llmr_response_free(resp);
  slog_free(g);
  llmr_router_free(r);
}

static void test_error_event_after_content(void **state) {
  static const struct {
    const char *preset, *type;
    llmr_status st;
  } cases[] = {{"server_error", "INTERNAL", LLMR_E_SERVER},
               {"overloaded", "UNAVAILABLE", LLMR_E_OVERLOADED},
               {"rate_limit", "RESOURCE_EXHAUSTED", LLMR_E_RATE_LIMITED}};
  const char *slugs[] = {"google/g-err", "openai/m-next"};
  llmr_router *r = router();
  size_t k;
  (void)state;
  for (k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
    char sc[512];
    llmr_response *resp;
    slog *g = slog_new();
    snprintf(sc, sizeof(sc),
             "{\"model\":\"g-err\",\"default\":{\"kind\":\"ok\",\"text\":"
             "\"partial answer\",\"error_after_events\":2,"
             "\"error_preset\":\"%s\"}}",
             cases[k].preset);
    script_json(sc);
    resp = stream(r, slugs, 2, g, cases[k].st);
    assert_string_equal(llmr_response_text(resp), "partial ");
    assert_string_equal(llmr_response_error_type(resp), cases[k].type);
    assert_true(llmr_response_retryable(resp));
    assert_int_equal(llmr_response_http_status(resp), 200);
    if (cases[k].st == LLMR_E_RATE_LIMITED) /* RetryInfo.retryDelay "37s" */
      assert_true(llmr_response_retry_after(resp) == 37);
    if (cases[k].st == LLMR_E_OVERLOADED)
      assert_string_equal(llmr_response_error(resp),
                          "The model is overloaded. Please try again later.");
    assert_int_equal(g->ev[g->n - 1].type, LLMR_EVENT_ERROR);
    assert_int_equal(g->ev[g->n - 1].status, cases[k].st);
    assert_int_equal(slog_count(g, LLMR_EVENT_FALLBACK), 0);
    assert_int_equal(emu_count(&E, "m-next"), 0);
    llmr_response_free(resp);
    slog_free(g);
  }
  llmr_router_free(r);
}

/* ---- the finishReason is the end marker -------------------------------------- */

static void test_end_marker(void **state) {
  const char *slugs[] = {"google/g-raw", "openai/m-next"};
  llmr_router *r = router();
  llmr_response *resp;
  slog *g;
  (void)state;
  /* content and a clean end, but no chunk has a finishReason */
  script_raw("g-raw",
             "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": "
             "\"half\"}], \"role\": \"model\"}, \"index\": 0}], "
             "\"usageMetadata\": {\"promptTokenCount\": 3, "
             "\"totalTokenCount\": 3}, \"responseId\": \"r1\"}\r\n\r\n",
             "text/event-stream");
  g = slog_new();
  resp = stream(r, slugs, 2, g, LLMR_E_PROTOCOL);
  assert_string_equal(llmr_response_error(resp),
                      "stream ended before the provider's end marker");
  assert_string_equal(llmr_response_text(resp), "half");
  assert_int_equal(g->ev[g->n - 1].type, LLMR_EVENT_ERROR);
  assert_int_equal(slog_count(g, LLMR_EVENT_FALLBACK), 0); /* content came */
  assert_int_equal(emu_count(&E, "m-next"), 0);
  llmr_response_free(resp);
  slog_free(g);

  /* a finishReason and no usage at all: complete, usage estimated */
  script_raw("g-raw",
             "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": "
             "\"12345678\"}], \"role\": \"model\"}, \"index\": 0}]}\r\n\r\n"
             "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": "
             "\"\"}], \"role\": \"model\"}, \"finishReason\": \"STOP\", "
             "\"index\": 0}]}\r\n\r\n",
             "text/event-stream");
  g = slog_new();
  resp = stream(r, slugs, 1, g, LLMR_OK);
  check_success_log(g, resp);
  assert_string_equal(llmr_response_finish_reason(resp), "stop");
  assert_int_equal(llmr_response_usage_estimated(resp), 1);
  assert_int_equal(llmr_response_tokens(resp, LLMR_TOKENS_COMPLETION), 2);
  llmr_response_free(resp);
  slog_free(g);

  /* a data line that is not JSON, before any content: fall back */
  script_raw("g-raw", "data: <html>502</html>\r\n\r\n", "text/event-stream");
  g = slog_new();
  resp = stream(r, slugs, 2, g, LLMR_OK);
  assert_int_equal(llmr_response_attempt_status(resp, 0), LLMR_E_PROTOCOL);
  assert_non_null(strstr(llmr_response_attempt_error(resp, 0),
                         "not a JSON object"));
  assert_string_equal(llmr_response_model(resp), "openai/m-next");
  llmr_response_free(resp);
  slog_free(g);
  llmr_router_free(r);
}

/* ---- cancellation ---------------------------------------------------------- */

static void test_cancel_from_the_callback(void **state) {
  const char *slugs[] = {"google/g-long", "openai/m-next"};
  llmr_router *r = router();
  llmr_response *resp;
  slog *g = slog_new();
  double t0;
  (void)state;
  /* 40 chunks 150 ms apart: 6 s if read to the end */
  script_json("{\"model\":\"g-long\",\"default\":{\"kind\":\"ok\",\"text\":"
              "\"0123456789012345678901234567890123456789\",\"piece_chars\":"
              "1,\"event_delay_ms\":150}}");
  g->cancel_at_content = 2;
  t0 = emu_now_ms();
  resp = stream(r, slugs, 2, g, LLMR_E_ABORTED);
  fprintf(stderr, "cancelled after %.0f ms\n", emu_now_ms() - t0);
  assert_true(emu_now_ms() - t0 < 1500);
  assert_string_equal(llmr_response_text(resp), "01");
  /* the callback is not called again after it cancels */
  assert_int_equal(g->ev[g->n - 1].type, LLMR_EVENT_TEXT);
  assert_int_equal(slog_count(g, LLMR_EVENT_TEXT), 2);
  assert_int_equal(emu_count(&E, "m-next"), 0);
  assert_int_equal(llmr_response_attempt_count(resp), 1);
  assert_int_equal(llmr_response_attempt_status(resp, 0), LLMR_E_ABORTED);
  assert_non_null(strstr(llmr_response_error(resp), "cancelled"));
  llmr_response_free(resp);
  slog_free(g);

  /* the router is fine afterwards */
  g = slog_new();
  resp = stream(r, slugs, 1, g, LLMR_OK);
  check_success_log(g, resp);
  llmr_response_free(resp);
  slog_free(g);
  llmr_router_free(r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(test_stream_equals_complete, reset),
      cmocka_unit_test_setup(test_finish_reasons, reset),
      cmocka_unit_test_setup(test_fallback_before_content, reset),
      cmocka_unit_test_setup(test_drop_after_content_is_an_error, reset),
      cmocka_unit_test_setup(test_error_event_after_content, reset),
      cmocka_unit_test_setup(test_end_marker, reset),
      cmocka_unit_test_setup(test_cancel_from_the_callback, reset),
  };
  return cmocka_run_group_tests_name("integration/stream_gemini", tests,
                                     group_setup, group_teardown);
}
