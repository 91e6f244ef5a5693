/*
 * llmr_stream() against the emulator's Anthropic dialect, end to end through
 * the real transport: results equal llmr_complete()'s in every chunking
 * mode (tool arguments and JSON mode included), fallback only before the
 * first content (a 529 overloaded to an OpenAI slug), a drop or an error
 * event after content is an error that keeps the partial text, a stream
 * without message_stop is an error, cancellation stops the transfer.
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

/* anthropic and openai pointed at the emulator */
static llmr_router *router(void) {
  char conf[1024];
  snprintf(conf, sizeof(conf),
           "{\"use_env\": false, \"providers\": {"
           "\"anthropic\": {\"base_url\": \"%s\", \"api_key\": \"sk-ant-t\"},"
           "\"openai\": {\"base_url\": \"%s/v1\", \"api_key\": \"sk-t\"}}}",
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

static llmr_response *stream_req(llmr_router *r, const char *const *slugs,
                                 size_t n, llmr_request *req, slog *g,
                                 llmr_status expect) {
  llmr_response *resp = NULL;
  llmr_status st = llmr_stream(r, slugs, n, req, slog_cb, g, &resp);
  assert_non_null(resp);
  if (st != expect)
    fprintf(stderr, "got %s: %s\n", llmr_status_name(st),
            llmr_response_error(resp));
  assert_int_equal(st, expect);
  assert_int_equal(llmr_response_status(resp), expect);
  return resp;
}

static llmr_response *stream(llmr_router *r, const char *const *slugs,
                             size_t n, slog *g, llmr_status expect) {
  llmr_request *req = slog_hello();
  llmr_response *resp = stream_req(r, slugs, n, req, g, expect);
  llmr_request_free(req);
  return resp;
}

static void check_success_log(const slog *g, const llmr_response *resp) {
  slog_check_shape(g, resp, SLOG_USAGE_TOKENS);
}

/* ---- success ----------------------------------------------------------------- */

static void test_stream_equals_complete(void **state) {
  static const char *const modes[] = {"event", "byte", "random", "block"};
  const char *slugs[] = {"anthropic/claude-t"};
  llmr_router *r = router();
  size_t m;
  (void)state;
  for (m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
    char sc[4096];
    llmr_request *req = slog_hello();
    llmr_response *a = NULL, *b;
    slog *g = slog_new();
    cJSON *sent, *body;
    char *s;
    size_t i, seen = 0;
    snprintf(sc, sizeof(sc),
             "{\"model\":\"claude-t\",\"default\":{\"kind\":\"ok\","
             "\"text\":\"Voilà : 日本語 — 🎉 done.\",\"thinking\":"
             "\"Let me think… ok\",\"chunking\":\"%s\",\"piece_chars\":%d,"
             "\"seed\":7,\"tool_calls\":[{\"id\":\"toolu_w\",\"name\":"
             "\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Zürich\\\","
             "\\\"q\\\":\\\"a\\\\\\\"b\\\"}\"},{\"id\":\"toolu_t\",\"name\":"
             "\"get_time\",\"arguments\":{}}]}}",
             modes[m], m == 1 ? 1 : 3);
    script_json(sc);
    assert_int_equal(llmr_complete(r, slugs, 1, req, &a), LLMR_OK);
    b = stream_req(r, slugs, 1, req, g, LLMR_OK);
    llmr_request_free(req);
    check_success_log(g, b);
    slog_assert_same_answer(a, b, 0);
    assert_string_equal(llmr_response_text(b), "Voilà : 日本語 — 🎉 done.");
    assert_string_equal(llmr_response_reasoning(b), "Let me think… ok");
    assert_int_equal(llmr_response_tool_call_count(b), 2);
    assert_string_equal(llmr_response_tool_call_arguments(b, 0),
                        "{\"city\":\"Zürich\",\"q\":\"a\\\"b\"}");
    assert_string_equal(llmr_response_tool_call_arguments(b, 1), "{}");
    /* compact arguments: the fragments add up to them */
    s = slog_joined(g, LLMR_EVENT_TOOL_CALL, 0);
    assert_string_equal(s, llmr_response_tool_call_arguments(b, 0));
    free(s);
    assert_string_equal(llmr_response_finish_reason(b), "tool_calls");
    assert_int_equal(llmr_response_usage_estimated(b), 0);
    /* the emulator counts words: "Be terse." + "hello" */
    assert_int_equal(llmr_response_tokens(b, LLMR_TOKENS_PROMPT), 3);
    assert_true(llmr_response_tokens(b, LLMR_TOKENS_COMPLETION) > 1);
    for (i = 0; i < g->n; i++)
      if (g->ev[i].type == LLMR_EVENT_TOOL_CALL && g->ev[i].tool_id) {
        assert_int_equal(g->ev[i].tool_index, seen);
        assert_string_equal(g->ev[i].tool_id, seen ? "toolu_t" : "toolu_w");
        assert_string_equal(g->ev[i].tool_name,
                            seen ? "get_time" : "get_weather");
        seen++;
      }
    assert_int_equal(seen, 2);
    /* what went out: a streaming request */
    sent = emu_request(&E, -1);
    body = cJSON_GetObjectItem(sent, "body");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(body, "stream")));
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetObjectItem(sent, "headers"), "accept")
            ->valuestring,
        "text/event-stream");
    cJSON_Delete(sent);
    llmr_response_free(a);
    llmr_response_free(b);
    slog_free(g);
  }
  llmr_router_free(r);
}

/* The API sends tool input with spaces after colons; llmr_complete() gets
 * an object and prints it compactly. The fragments are delivered as sent,
 * the final arguments are llmr_complete()'s. */
static void test_spaced_arguments(void **state) {
  const char *slugs[] = {"anthropic/claude-t"};
  llmr_router *r = router();
  llmr_request *req = slog_hello();
  llmr_response *a = NULL, *b;
  slog *g = slog_new();
  char *s;
  (void)state;
  script_json("{\"model\":\"claude-t\",\"default\":{\"kind\":\"ok\","
              "\"chunking\":\"random\",\"tool_calls\":[{\"id\":\"toolu_s\","
              "\"name\":\"f\",\"arguments\":\"{\\\"city\\\": \\\"Oslo\\\", "
              "\\\"n\\\": [1, 2.50]}\"}]}}");
  assert_int_equal(llmr_complete(r, slugs, 1, req, &a), LLMR_OK);
  b = stream_req(r, slugs, 1, req, g, LLMR_OK);
  check_success_log(g, b);
  slog_assert_same_answer(a, b, 0);
  assert_string_equal(llmr_response_tool_call_arguments(b, 0),
                      "{\"city\":\"Oslo\",\"n\":[1,2.5]}");
  s = slog_joined(g, LLMR_EVENT_TOOL_CALL, 0);
  assert_string_equal(s, "{\"city\": \"Oslo\", \"n\": [1, 2.50]}");
  free(s);
  llmr_request_free(req);
  llmr_response_free(a);
  llmr_response_free(b);
  slog_free(g);
  llmr_router_free(r);
}

/* JSON mode: the forced json_output tool's input streams as text. */
static void test_json_mode(void **state) {
  const char *slugs[] = {"anthropic/claude-t"};
  static const char *const modes[] = {"event", "byte"};
  llmr_router *r = router();
  size_t m;
  (void)state;
  for (m = 0; m < 2; m++) {
    llmr_request *req = slog_hello();
    llmr_response *a = NULL, *b;
    slog *g = slog_new();
    cJSON *sent, *tc;
    char sc[1024], *s;
    assert_int_equal(
        llmr_request_set_response_format(req, "{\"type\":\"json_object\"}"),
        LLMR_OK);
    snprintf(sc, sizeof(sc),
             "{\"model\":\"claude-t\",\"default\":{\"kind\":\"ok\","
             "\"chunking\":\"%s\",\"tool_calls\":[{\"id\":\"toolu_j\","
             "\"name\":\"json_output\",\"arguments\":\"{\\\"answer\\\": "
             "\\\"été\\\", \\\"n\\\": 3}\"}]}}",
             modes[m]);
    script_json(sc);
    assert_int_equal(llmr_complete(r, slugs, 1, req, &a), LLMR_OK);
    b = stream_req(r, slugs, 1, req, g, LLMR_OK);
    slog_check_shape(g, b, SLOG_USAGE_TOKENS | SLOG_JSON_TEXT);
    slog_assert_same_answer(a, b, 0);
    /* the deltas are the input as the model wrote it; the final text is
     * llmr_complete()'s */
    s = slog_joined(g, LLMR_EVENT_TEXT, 0);
    assert_string_equal(s, "{\"answer\": \"été\", \"n\": 3}");
    free(s);
    assert_string_equal(llmr_response_text(b),
                        "{\"answer\":\"été\",\"n\":3}");
    assert_int_equal(llmr_response_tool_call_count(b), 0);
    assert_int_equal(slog_count(g, LLMR_EVENT_TOOL_CALL), 0);
    assert_true(slog_count(g, LLMR_EVENT_TEXT) >= 2);
    assert_string_equal(llmr_response_finish_reason(b), "stop");
    sent = emu_request(&E, -1);
    tc = cJSON_GetObjectItem(cJSON_GetObjectItem(sent, "body"), "tool_choice");
    assert_string_equal(cJSON_GetObjectItem(tc, "name")->valuestring,
                        "json_output");
    cJSON_Delete(sent);
    llmr_request_free(req);
    llmr_response_free(a);
    llmr_response_free(b);
    slog_free(g);
  }
  llmr_router_free(r);
}

/* ---- fallback before the first content, never after ------------------------- */

static void test_fallback_before_content(void **state) {
  const char *slugs[] = {"anthropic/m-529", "anthropic/m-err0",
                         "anthropic/m-drop0", "openai/gpt-ok"};
  llmr_router *r = router();
  llmr_response *resp;
  slog *g = slog_new();
  size_t i, fallbacks = 0;
  (void)state;
  /* 529 overloaded; an error event right after message_start; a drop after
   * message_start, content_block_start and ping (a text block's start
   * carries no content yet) */
  script_json("[{\"model\":\"m-529\",\"default\":{\"kind\":\"error\","
              "\"preset\":\"overloaded\",\"headers\":{\"retry-after\":\"3\"}}},"
              "{\"model\":\"m-err0\",\"default\":{\"kind\":\"ok\","
              "\"text\":\"never\",\"error_after_events\":1}},"
              "{\"model\":\"m-drop0\",\"default\":{\"kind\":\"ok\","
              "\"text\":\"never\",\"drop_after_events\":3}},"
              "{\"model\":\"gpt-ok\",\"default\":{\"kind\":\"ok\","
              "\"text\":\"from openai\"}}]");
  resp = stream(r, slugs, 4, g, LLMR_OK);
  check_success_log(g, resp);
  assert_string_equal(llmr_response_text(resp), "from openai");
  assert_string_equal(llmr_response_model(resp), "openai/gpt-ok");
  for (i = 0; i < g->n; i++) {
    if (g->ev[i].type == LLMR_EVENT_FALLBACK) {
      assert_string_equal(g->ev[i].model, slugs[fallbacks]);
      switch (fallbacks++) {
      case 0:
        assert_int_equal(g->ev[i].status, LLMR_E_OVERLOADED);
        assert_int_equal(g->ev[i].http, 529);
        break;
      case 1:
        assert_int_equal(g->ev[i].status, LLMR_E_OVERLOADED);
        assert_int_equal(g->ev[i].http, 200);
        break;
      default:
        assert_int_equal(g->ev[i].status, LLMR_E_TRANSPORT);
        assert_int_equal(g->ev[i].http, 200);
        break;
      }
    }
    if (slog_is_content(g->ev[i].type))
      assert_string_equal(g->ev[i].model, "openai/gpt-ok");
  }
  assert_int_equal(fallbacks, 3);
  assert_int_equal(llmr_response_attempt_count(resp), 4);
  assert_int_equal(llmr_response_attempt_status(resp, 0), LLMR_E_OVERLOADED);
  assert_int_equal(llmr_response_attempt_status(resp, 1), LLMR_E_OVERLOADED);
  assert_int_equal(llmr_response_attempt_status(resp, 2), LLMR_E_TRANSPORT);
  llmr_response_free(resp);
  slog_free(g);
  llmr_router_free(r);
}

static void test_drop_after_content_is_an_error(void **state) {
  const char *slugs[] = {"anthropic/m-drop", "openai/m-next"};
  llmr_router *r = router();
  llmr_response *resp;
  slog *g = slog_new();
  (void)state;
  /* message_start, content_block_start, ping and 3 text deltas of 4
   * characters, then the connection closes without the terminating chunk */
  script_json("{\"model\":\"m-drop\",\"default\":{\"kind\":\"ok\",\"text\":"
              "\"0123456789abcdefghij\",\"drop_after_events\":6}}");
  resp = stream(r, slugs, 2, g, LLMR_E_TRANSPORT);
  assert_string_equal(llmr_response_text(resp), "0123456789ab");
  assert_int_equal(slog_count(g, LLMR_EVENT_TEXT), 3);
  assert_int_equal(slog_count(g, LLMR_EVENT_FALLBACK), 0);
  assert_int_equal(slog_count(g, LLMR_EVENT_ATTEMPT), 1);
  assert_int_equal(g->ev[g->n - 1].type, LLMR_EVENT_ERROR);
  assert_int_equal(g->ev[g->n - 1].status, LLMR_E_TRANSPORT);
  assert_int_equal(g->ev[g->n - 1].http, 200);
  assert_int_equal(emu_count(&E, "m-next"), 0);
  assert_string_equal(llmr_response_model(resp), "anthropic/m-drop");
  /* the prompt count came in message_start; the completion is estimated
   * from the 12 characters delivered, not message_start's placeholder */
  assert_int_equal(llmr_response_usage_estimated(resp), 1);
  assert_int_equal(llmr_response_tokens(resp, LLMR_TOKENS_PROMPT), 3);
  assert_int_equal(llmr_response_tokens(resp, LLMR_TOKENS_COMPLETION), 3);
  llmr_response_free(resp);
  slog_free(g);
  llmr_router_free(r);
}

static void test_error_event_after_content(void **state) {
  const char *slugs[] = {"anthropic/m-err", "openai/m-next"};
  const char *slugs2[] = {"anthropic/m-err2", "openai/m-next"};
  const char *slugs3[] = {"anthropic/m-err3", "openai/m-next"};
  llmr_router *r = router();
  llmr_response *resp;
  slog *g = slog_new();
  (void)state;
  /* message_start, content_block_start, ping, 2 deltas, then the error */
  script_json(
      "[{\"model\":\"m-err\",\"default\":{\"kind\":\"ok\",\"text\":"
      "\"partial answer\",\"error_after_events\":5}},"
      "{\"model\":\"m-err2\",\"default\":{\"kind\":\"ok\",\"text\":"
      "\"partial answer\",\"error_after_events\":5,\"error_preset\":"
      "\"server_error\"}},"
      "{\"model\":\"m-err3\",\"default\":{\"kind\":\"ok\",\"text\":"
      "\"partial answer\",\"error_after_events\":5,\"error_body\":"
      "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\","
      "\"message\":\"bad\"}}}}]");
  resp = stream(r, slugs, 2, g, LLMR_E_OVERLOADED);
  assert_string_equal(llmr_response_text(resp), "partial ");
  assert_string_equal(llmr_response_error_type(resp), "overloaded_error");
  assert_string_equal(llmr_response_error(resp), "Overloaded");
  assert_true(llmr_response_retryable(resp));
  assert_int_equal(llmr_response_http_status(resp), 200);
  assert_int_equal(g->ev[g->n - 1].type, LLMR_EVENT_ERROR);
  assert_int_equal(g->ev[g->n - 1].status, LLMR_E_OVERLOADED);
  assert_int_equal(slog_count(g, LLMR_EVENT_FALLBACK), 0);
  assert_int_equal(emu_count(&E, "m-next"), 0);
  llmr_response_free(resp);
  slog_free(g);

  g = slog_new();
  resp = stream(r, slugs2, 2, g, LLMR_E_SERVER);
  assert_string_equal(llmr_response_error_type(resp), "api_error");
  assert_true(llmr_response_retryable(resp));
  llmr_response_free(resp);
  slog_free(g);

  g = slog_new();
  resp = stream(r, slugs3, 2, g, LLMR_E_PROVIDER);
  assert_string_equal(llmr_response_error_type(resp), "invalid_request_error");
  assert_string_equal(llmr_response_error(resp), "bad");
  assert_false(llmr_response_retryable(resp));
  assert_int_equal(emu_count(&E, "m-next"), 0);
  llmr_response_free(resp);
  slog_free(g);
  llmr_router_free(r);
}

/* ---- how a stream must end -------------------------------------------------- */

#define EV(name, json) "event: " name "\ndata: " json "\n\n"
#define MSG_START                                                              \
  EV("message_start", "{\"type\":\"message_start\",\"message\":{\"id\":"      \
                      "\"msg_r\",\"type\":\"message\",\"role\":\"assistant\"," \
                      "\"content\":[],\"usage\":{\"input_tokens\":4,"         \
                      "\"output_tokens\":1}}}")
#define TEXT_BLOCK(t)                                                          \
  EV("content_block_start", "{\"type\":\"content_block_start\",\"index\":0,"  \
                            "\"content_block\":{\"type\":\"text\",\"text\":"  \
                            "\"\"}}")                                          \
  EV("content_block_delta", "{\"type\":\"content_block_delta\",\"index\":0,"  \
                            "\"delta\":{\"type\":\"text_delta\",\"text\":\""  \
                            t "\"}}")                                          \
  EV("content_block_stop", "{\"type\":\"content_block_stop\",\"index\":0}")
#define MSG_DELTA                                                              \
  EV("message_delta", "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\"" \
                      ":\"end_turn\"},\"usage\":{\"output_tokens\":2}}")

static void test_end_marker(void **state) {
  const char *slugs[] = {"anthropic/m-raw"};
  llmr_router *r = router();
  llmr_response *resp;
  slog *g;
  (void)state;
  /* everything but message_stop, and a clean close */
  script_raw("m-raw", MSG_START TEXT_BLOCK("half") MSG_DELTA,
             "text/event-stream");
  g = slog_new();
  resp = stream(r, slugs, 1, g, LLMR_E_PROTOCOL);
  assert_string_equal(llmr_response_error(resp),
                      "stream ended before the provider's end marker");
  assert_string_equal(llmr_response_text(resp), "half");
  assert_int_equal(g->ev[g->n - 1].type, LLMR_EVENT_ERROR);
  llmr_response_free(resp);
  slog_free(g);

  /* with message_stop: complete */
  script_raw("m-raw",
             MSG_START TEXT_BLOCK("whole") MSG_DELTA
                 EV("message_stop", "{\"type\":\"message_stop\"}"),
             "text/event-stream");
  g = slog_new();
  resp = stream(r, slugs, 1, g, LLMR_OK);
  check_success_log(g, resp);
  assert_string_equal(llmr_response_id(resp), "msg_r");
  assert_int_equal(llmr_response_tokens(resp, LLMR_TOKENS_PROMPT), 4);
  assert_int_equal(llmr_response_tokens(resp, LLMR_TOKENS_COMPLETION), 2);
  assert_int_equal(llmr_response_usage_estimated(resp), 0);
  llmr_response_free(resp);
  slog_free(g);

  /* a known event whose data is not JSON */
  script_raw("m-raw", MSG_START EV("content_block_start", "oops"),
             "text/event-stream");
  g = slog_new();
  resp = stream(r, slugs, 1, g, LLMR_E_PROTOCOL);
  assert_non_null(strstr(llmr_response_error(resp), "not a JSON object"));
  llmr_response_free(resp);
  slog_free(g);

  /* a 200 JSON document to the stream request: parsed whole */
  script_raw("m-raw",
             "{\"id\":\"msg_j\",\"type\":\"message\",\"role\":\"assistant\","
             "\"content\":[{\"type\":\"text\",\"text\":\"at once\"}],"
             "\"stop_reason\":\"end_turn\",\"usage\":{\"input_tokens\":4,"
             "\"output_tokens\":2}}",
             "application/json");
  g = slog_new();
  resp = stream(r, slugs, 1, g, LLMR_OK);
  check_success_log(g, resp);
  assert_string_equal(llmr_response_text(resp), "at once");
  llmr_response_free(resp);
  slog_free(g);
  llmr_router_free(r);
}

/* ---- cancellation ---------------------------------------------------------- */

static void test_cancel_from_the_callback(void **state) {
  const char *slugs[] = {"anthropic/m-long", "openai/m-next"};
  llmr_router *r = router();
  llmr_response *resp;
  slog *g = slog_new();
  double t0;
  (void)state;
  /* 40 text events 150 ms apart: 6 s if read to the end */
  script_json("{\"model\":\"m-long\",\"default\":{\"kind\":\"ok\",\"text\":"
              "\"0123456789012345678901234567890123456789\",\"piece_chars\":"
              "1,\"event_delay_ms\":150}}");
  g->cancel_at_content = 2;
  t0 = emu_now_ms();
  resp = stream(r, slugs, 2, g, LLMR_E_ABORTED);
  fprintf(stderr, "cancelled after %.0f ms\n", emu_now_ms() - t0);
  assert_true(emu_now_ms() - t0 < 2000);
  assert_string_equal(llmr_response_text(resp), "01");
  assert_int_equal(g->ev[g->n - 1].type, LLMR_EVENT_TEXT);
  assert_int_equal(slog_count(g, LLMR_EVENT_TEXT), 2);
  assert_int_equal(emu_count(&E, "m-next"), 0);
  assert_int_equal(llmr_response_attempt_count(resp), 1);
  assert_int_equal(llmr_response_attempt_status(resp, 0), LLMR_E_ABORTED);
  assert_non_null(strstr(llmr_response_error(resp), "cancelled"));
  assert_int_equal(llmr_response_tokens(resp, LLMR_TOKENS_PROMPT), 3);
  llmr_response_free(resp);
  slog_free(g);

  /* the router still works */
  g = slog_new();
  resp = stream(r, slugs, 1, g, LLMR_OK);
  llmr_response_free(resp);
  slog_free(g);
  llmr_router_free(r);
}

/* ---- the JSON variant ------------------------------------------------------ */

static int count_chunk(const char *json, void *user) {
  (void)json;
  (*(int *)user)++;
  return 0;
}

static void test_stream_json(void **state) {
  static const char req[] =
      "{\"models\":[\"anthropic/m-down\",\"anthropic/claude-t\"],"
      "\"messages\":[{\"role\":\"user\",\"content\":\"hi there\"}]}";
  llmr_router *r = router();
  char *final = NULL, *plain = NULL;
  cJSON *f, *p;
  char *sx, *sy;
  int chunks = 0;
  (void)state;
  script_json("[{\"model\":\"m-down\",\"default\":{\"kind\":\"error\","
              "\"preset\":\"overloaded\"}},{\"model\":\"claude-t\","
              "\"default\":{\"kind\":\"ok\",\"text\":\"Hi back\","
              "\"thinking\":\"hm\",\"tool_calls\":[{\"id\":\"toolu_1\","
              "\"name\":\"f\",\"arguments\":{\"k\":[1,2]}}]}}]");
  assert_int_equal(llmr_stream_json(r, req, count_chunk, &chunks, &final),
                   LLMR_OK);
  assert_true(chunks >= 4);
  assert_int_equal(llmr_complete_json(r, req, &plain), LLMR_OK);
  f = cJSON_Parse(final);
  p = cJSON_Parse(plain);
  slog_strip_volatile(f, 0);
  slog_strip_volatile(p, 0);
  sx = cJSON_PrintUnformatted(f);
  sy = cJSON_PrintUnformatted(p);
  assert_string_equal(sx, sy);
  assert_non_null(strstr(sx, "\"arguments\":\"{\\\"k\\\":[1,2]}\""));
  cJSON_free(sx);
  cJSON_free(sy);
  cJSON_Delete(f);
  cJSON_Delete(p);
  llmr_free(final);
  llmr_free(plain);
  llmr_router_free(r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(test_stream_equals_complete, reset),
      cmocka_unit_test_setup(test_spaced_arguments, reset),
      cmocka_unit_test_setup(test_json_mode, reset),
      cmocka_unit_test_setup(test_fallback_before_content, reset),
      cmocka_unit_test_setup(test_drop_after_content_is_an_error, reset),
      cmocka_unit_test_setup(test_error_event_after_content, reset),
      cmocka_unit_test_setup(test_end_marker, reset),
      cmocka_unit_test_setup(test_cancel_from_the_callback, reset),
      cmocka_unit_test_setup(test_stream_json, reset),
  };
  return cmocka_run_group_tests_name("integration/stream_anthropic", tests,
                                     group_setup, group_teardown);
}
