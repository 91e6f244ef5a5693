/*
 * llmr_stream() end to end through the real transport against the provider
 * emulator: results equal llmr_complete()'s, every chunking, deltas that
 * arrive before the stream ends, fallback only before the first content,
 * drops and errors after it, end markers, cancellation, the first-byte and
 * idle limits, estimated usage, the JSON variant.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "emu.h"
#include "stream_log.h"
#include <llmroute.h>
#include <llmroute/provider.h>

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

static llmr_router *router_with(const char *extra) {
  return slog_router_with(&E, extra);
}

/* Install a script built with cJSON (takes ownership). */
static void script(cJSON *s) {
  char *txt = cJSON_PrintUnformatted(s);
  int rc = emu_script(&E, txt);
  if (rc != 0)
    fprintf(stderr, "script refused: %s\n", txt);
  assert_int_equal(rc, 0);
  cJSON_free(txt);
  cJSON_Delete(s);
}

static void script_json(const char *json) {
  cJSON *s = cJSON_Parse(json);
  assert_non_null(s);
  script(s);
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

/* The shape every successful stream has: ATTEMPT first, USAGE then DONE
 * last, content only after the last ATTEMPT, deltas adding up to the
 * response. */
static void check_success_log(const slog *g, const llmr_response *resp) {
  size_t i;
  char *s;
  slog_check_shape(g, resp, SLOG_USAGE_TOKENS);
  for (i = 0; i < llmr_response_tool_call_count(resp); i++) {
    const char *args = llmr_response_tool_call_arguments(resp, i);
    s = slog_joined(g, LLMR_EVENT_TOOL_CALL, i);
    if (strcmp(args, "{}") != 0 || *s)
      assert_string_equal(s, args);
    free(s);
  }
}

/* ---- success ----------------------------------------------------------------- */

static const char *rich_action(const char *chunking, int piece) {
  static char buf[2048];
  snprintf(buf, sizeof(buf),
           "{\"kind\":\"ok\",\"text\":\"Voilà : 日本語 — 🎉 done.\","
           "\"reasoning\":\"Let me think… ok\",\"chunking\":\"%s\","
           "\"piece_chars\":%d,\"seed\":7,"
           "\"tool_calls\":[{\"id\":\"call_w\",\"type\":\"function\","
           "\"function\":{\"name\":\"get_weather\",\"arguments\":"
           "\"{\\\"city\\\":\\\"Zürich\\\",\\\"q\\\":\\\"a\\\\\\\"b\\\"}\"}},"
           "{\"id\":\"call_t\",\"type\":\"function\",\"function\":{\"name\":"
           "\"get_time\",\"arguments\":\"{}\"}}]}",
           chunking, piece);
  return buf;
}

static void test_stream_equals_complete(void **state) {
  static const char *const modes[] = {"event", "byte", "random", "block"};
  const char *slugs[] = {"openai/gpt-4o"};
  llmr_router *r = router_with("");
  size_t m;
  (void)state;
  for (m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
    char sc[4096];
    llmr_request *req = slog_hello();
    llmr_response *a = NULL, *b;
    slog *g = slog_new();
    cJSON *sent;
    snprintf(sc, sizeof(sc), "{\"model\":\"gpt-4o\",\"default\":%s}",
             rich_action(modes[m], m == 1 ? 1 : 3));
    script_json(sc);
    assert_int_equal(llmr_complete(r, slugs, 1, req, &a), LLMR_OK);
    llmr_request_free(req);
    b = stream(r, slugs, 1, g, LLMR_OK);
    check_success_log(g, b);
    slog_assert_same_answer(a, b, 0);
    assert_int_equal(llmr_response_tool_call_count(b), 2);
    assert_string_equal(llmr_response_tool_call_arguments(b, 0),
                        "{\"city\":\"Zürich\",\"q\":\"a\\\"b\"}");
    assert_string_equal(llmr_response_finish_reason(b), "tool_calls");
    assert_int_equal(llmr_response_usage_estimated(b), 0);
    assert_true(llmr_response_tokens(b, LLMR_TOKENS_COMPLETION) > 0);
    /* the first TOOL_CALL event of each call carries its id and name */
    {
      size_t i, seen = 0;
      for (i = 0; i < g->n; i++)
        if (g->ev[i].type == LLMR_EVENT_TOOL_CALL && g->ev[i].tool_id) {
          assert_string_equal(g->ev[i].tool_id,
                              seen ? "call_t" : "call_w");
          assert_string_equal(g->ev[i].tool_name,
                              seen ? "get_time" : "get_weather");
          seen++;
        }
      assert_int_equal(seen, 2);
    }
    /* what went out: a streaming request asking for usage */
    sent = emu_request(&E, -1);
    assert_true(cJSON_IsTrue(
        cJSON_GetObjectItem(cJSON_GetObjectItem(sent, "body"), "stream")));
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(sent, "body"),
                            "stream_options"),
        "include_usage")));
    cJSON_Delete(sent);
    llmr_response_free(a);
    llmr_response_free(b);
    slog_free(g);
  }
  llmr_router_free(r);
}

static void test_hosts_of_the_family(void **state) {
  /* OpenRouter (processing comments before the stream), Mistral (no
   * stream_options; the emulator then sends no usage at all), Ollama */
  const char *orr[] = {"openrouter/meta-llama/llama-3.1-8b"};
  const char *mis[] = {"mistral/mistral-small-latest"};
  const char *oll[] = {"ollama/qwen3:8b"};
  llmr_router *r = router_with("");
  llmr_response *resp;
  slog *g;
  cJSON *sent;
  (void)state;
  script_json("[{\"model\":\"meta-llama/llama-3.1-8b\",\"default\":{"
              "\"kind\":\"ok\",\"text\":\"routed\",\"body_prefix\":"
              "\": OPENROUTER PROCESSING\\n\\n: OPENROUTER PROCESSING\\n\\n\"}},"
              "{\"model\":\"qwen3:8b\",\"require_key\":false,\"default\":{"
              "\"kind\":\"ok\",\"text\":\"local\",\"reasoning\":\"hm\"}}]");
  g = slog_new();
  resp = stream(r, orr, 1, g, LLMR_OK);
  check_success_log(g, resp);
  assert_string_equal(llmr_response_text(resp), "routed");
  llmr_response_free(resp);
  slog_free(g);

  g = slog_new();
  resp = stream(r, mis, 1, g, LLMR_OK);
  check_success_log(g, resp);
  sent = emu_request(&E, -1);
  assert_null(cJSON_GetObjectItem(cJSON_GetObjectItem(sent, "body"),
                                  "stream_options"));
  cJSON_Delete(sent);
  /* no usage in that stream: estimated */
  assert_int_equal(llmr_response_usage_estimated(resp), 1);
  llmr_response_free(resp);
  slog_free(g);

  g = slog_new();
  resp = stream(r, oll, 1, g, LLMR_OK);
  check_success_log(g, resp);
  assert_string_equal(llmr_response_reasoning(resp), "hm");
  assert_int_equal(slog_count(g, LLMR_EVENT_REASONING), 1);
  llmr_response_free(resp);
  slog_free(g);
  llmr_router_free(r);
}

/* ---- deltas arrive as they are produced ------------------------------------- */

static void test_deltas_arrive_before_the_end(void **state) {
  const char *slugs[] = {"openai/m-slow"};
  llmr_router *r = router_with("");
  llmr_response *resp;
  slog *g = slog_new();
  double first = -1, done;
  size_t i;
  (void)state;
  /* 8 content events 120 ms apart, sent one byte per chunk */
  script_json("{\"model\":\"m-slow\",\"default\":{\"kind\":\"ok\",\"text\":"
              "\"abcdefghijklmnop\",\"piece_chars\":2,\"event_delay_ms\":120,"
              "\"chunking\":\"byte\"}}");
  resp = stream(r, slugs, 1, g, LLMR_OK);
  check_success_log(g, resp);
  for (i = 0; i < g->n; i++)
    if (g->ev[i].type == LLMR_EVENT_TEXT) {
      if (first < 0)
        first = g->ev[i].t_ms;
    }
  done = g->ev[g->n - 1].t_ms;
  fprintf(stderr, "first delta at %.0f ms, done at %.0f ms\n", first, done);
  assert_int_equal(slog_count(g, LLMR_EVENT_TEXT), 8);
  /* the first delta came ~1 s before the stream ended (8+ pauses of 120) */
  assert_true(done - first > 700);
  /* and the deltas are spread out, not delivered in one burst */
  {
    double prev = -1;
    size_t gaps = 0;
    for (i = 0; i < g->n; i++)
      if (g->ev[i].type == LLMR_EVENT_TEXT) {
        if (prev >= 0 && g->ev[i].t_ms - prev > 60)
          gaps++;
        prev = g->ev[i].t_ms;
      }
    assert_true(gaps >= 6);
  }
  llmr_response_free(resp);
  slog_free(g);
  llmr_router_free(r);
}

/* ---- fallback before the first content, never after ------------------------- */

static void test_fallback_before_content(void **state) {
  const char *slugs[] = {"openai/m-503", "deadhost/x", "openai/m-drop0",
                         "openai/m-err0", "openai/m-good"};
  char conf[2048];
  llmr_router *r;
  llmr_response *resp;
  slog *g = slog_new();
  size_t i, attempts = 0, fallbacks = 0;
  (void)state;
  snprintf(conf, sizeof(conf),
           "{\"use_env\": false, \"providers\": {\"deadhost\": {\"base_url\":"
           " \"http://127.0.0.1:%d/v1\", \"api_key\": \"k\"}, \"openai\": "
           "{\"base_url\": \"%s/v1\", \"api_key\": \"sk-test-0000\"}}}",
           emu_free_port(), E.base);
  assert_int_equal(llmr_router_new(conf, &r), LLMR_OK);
  /* 503; refused connection; a stream that drops after the role chunk
   * (no content yet); an error chunk before any content */
  script_json("[{\"model\":\"m-503\",\"default\":{\"kind\":\"error\","
              "\"preset\":\"overloaded\"}},"
              "{\"model\":\"m-drop0\",\"default\":{\"kind\":\"ok\","
              "\"text\":\"never\",\"drop_after_events\":1}},"
              "{\"model\":\"m-err0\",\"default\":{\"kind\":\"ok\","
              "\"text\":\"never\",\"error_after_events\":1}},"
              "{\"model\":\"m-good\",\"default\":{\"kind\":\"ok\","
              "\"text\":\"from the fifth\"}}]");
  resp = stream(r, slugs, 5, g, LLMR_OK);
  check_success_log(g, resp);
  assert_string_equal(llmr_response_text(resp), "from the fifth");
  assert_string_equal(llmr_response_model(resp), "openai/m-good");
  for (i = 0; i < g->n; i++) {
    if (g->ev[i].type == LLMR_EVENT_ATTEMPT)
      assert_string_equal(g->ev[i].model, slugs[attempts++]);
    if (g->ev[i].type == LLMR_EVENT_FALLBACK) {
      /* each FALLBACK follows its own ATTEMPT, with that slug's failure */
      assert_string_equal(g->ev[i].model, slugs[fallbacks]);
      switch (fallbacks++) {
      case 0:
        assert_int_equal(g->ev[i].status, LLMR_E_OVERLOADED);
        assert_int_equal(g->ev[i].http, 503);
        break;
      case 1:
        assert_int_equal(g->ev[i].status, LLMR_E_TRANSPORT);
        assert_int_equal(g->ev[i].http, 0);
        break;
      case 2:
        assert_int_equal(g->ev[i].status, LLMR_E_TRANSPORT);
        assert_int_equal(g->ev[i].http, 200);
        break;
      default:
        assert_int_equal(g->ev[i].status, LLMR_E_SERVER);
        assert_int_equal(g->ev[i].http, 200);
        break;
      }
    }
    if (slog_is_content(g->ev[i].type))
      assert_string_equal(g->ev[i].model, "openai/m-good");
  }
  assert_int_equal(attempts, 5);
  assert_int_equal(fallbacks, 4);
  assert_int_equal(llmr_response_attempt_count(resp), 5);
  assert_int_equal(llmr_response_attempt_status(resp, 2), LLMR_E_TRANSPORT);
  assert_int_equal(llmr_response_attempt_status(resp, 3), LLMR_E_SERVER);
  llmr_response_free(resp);
  slog_free(g);

  /* every slug fails: FALLBACK between them, ERROR last with the summary */
  g = slog_new();
  resp = stream(r, slugs, 2, g, LLMR_E_ALL_FAILED);
  assert_int_equal(slog_count(g, LLMR_EVENT_FALLBACK), 1);
  assert_int_equal(g->ev[g->n - 1].type, LLMR_EVENT_ERROR);
  assert_int_equal(g->ev[g->n - 1].status, LLMR_E_ALL_FAILED);
  assert_int_equal(slog_count(g, LLMR_EVENT_DONE), 0);
  llmr_response_free(resp);
  slog_free(g);
  llmr_router_free(r);
}

static void test_drop_after_content_is_an_error(void **state) {
  const char *slugs[] = {"openai/m-drop", "openai/m-next"};
  llmr_router *r = router_with("");
  llmr_response *resp;
  slog *g = slog_new();
  (void)state;
  /* role chunk + 3 content events of 4 characters, then the connection
   * closes without the terminating chunk */
  script_json("{\"model\":\"m-drop\",\"default\":{\"kind\":\"ok\",\"text\":"
              "\"0123456789abcdefghij\",\"drop_after_events\":4}}");
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
  /* who produced the partial text, and its estimated cost */
  assert_string_equal(llmr_response_model(resp), "openai/m-drop");
  assert_int_equal(llmr_response_usage_estimated(resp), 1);
  assert_int_equal(llmr_response_tokens(resp, LLMR_TOKENS_COMPLETION), 3);
  assert_true(llmr_response_tokens(resp, LLMR_TOKENS_PROMPT) > 0);
  llmr_response_free(resp);
  slog_free(g);
  llmr_router_free(r);
}

static void test_error_chunk_after_content(void **state) {
  const char *slugs[] = {"openai/m-err", "openai/m-next"};
  const char *orr[] = {"openrouter/vendor/m-orerr", "openai/m-next"};
  llmr_router *r = router_with("");
  llmr_response *resp;
  slog *g = slog_new();
  (void)state;
  script_json(
      "[{\"model\":\"m-err\",\"default\":{\"kind\":\"ok\",\"text\":"
      "\"partial answer\",\"error_after_events\":3}},"
      "{\"model\":\"vendor/m-orerr\",\"default\":{\"kind\":\"ok\",\"text\":"
      "\"partial answer\",\"error_after_events\":2,\"error_body\":{\"id\":"
      "\"gen-1\",\"object\":\"chat.completion.chunk\",\"error\":{\"code\":"
      "\"server_error\",\"message\":\"Provider disconnected\"},\"choices\":"
      "[{\"index\":0,\"delta\":{\"content\":\"\"},\"finish_reason\":"
      "\"error\"}]}}}]");
  resp = stream(r, slugs, 2, g, LLMR_E_SERVER);
  assert_string_equal(llmr_response_text(resp), "partial ");
  assert_string_equal(llmr_response_error_type(resp), "server_error");
  assert_true(llmr_response_retryable(resp));
  assert_int_equal(llmr_response_http_status(resp), 200);
  assert_non_null(strstr(llmr_response_error(resp), "server had an error"));
  assert_int_equal(g->ev[g->n - 1].type, LLMR_EVENT_ERROR);
  assert_int_equal(g->ev[g->n - 1].status, LLMR_E_SERVER);
  assert_int_equal(slog_count(g, LLMR_EVENT_FALLBACK), 0);
  assert_int_equal(emu_count(&E, "m-next"), 0);
  llmr_response_free(resp);
  slog_free(g);

  g = slog_new();
  resp = stream(r, orr, 2, g, LLMR_E_SERVER);
  assert_string_equal(llmr_response_text(resp), "part");
  assert_string_equal(llmr_response_error(resp), "Provider disconnected");
  assert_int_equal(slog_count(g, LLMR_EVENT_FALLBACK), 0);
  assert_int_equal(emu_count(&E, "m-next"), 0);
  llmr_response_free(resp);
  slog_free(g);
  llmr_router_free(r);
}

/* ---- how a stream must end -------------------------------------------------- */

static void test_end_marker(void **state) {
  const char *slugs[] = {"openai/m-raw"};
  llmr_router *r = router_with("");
  llmr_response *resp;
  slog *g;
  (void)state;
  /* content and a clean close, but neither a finish_reason nor [DONE] */
  script_raw("m-raw",
             "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{"
             "\"content\":\"half\"},\"finish_reason\":null}]}\n\n",
             "text/event-stream");
  g = slog_new();
  resp = stream(r, slugs, 1, g, LLMR_E_PROTOCOL);
  assert_string_equal(llmr_response_error(resp),
                      "stream ended before the provider's end marker");
  assert_string_equal(llmr_response_text(resp), "half");
  assert_int_equal(g->ev[g->n - 1].type, LLMR_EVENT_ERROR);
  llmr_response_free(resp);
  slog_free(g);

  /* a finish_reason without [DONE] and without usage: complete, usage
   * estimated (about 4 characters a token) */
  script_raw("m-raw",
             "data: {\"id\":\"c2\",\"choices\":[{\"index\":0,\"delta\":{"
             "\"content\":\"12345678\"},\"finish_reason\":null}]}\n\n"
             "data: {\"id\":\"c2\",\"choices\":[{\"index\":0,\"delta\":{},"
             "\"finish_reason\":\"stop\"}]}\n\n",
             "text/event-stream");
  g = slog_new();
  resp = stream(r, slugs, 1, g, LLMR_OK);
  check_success_log(g, resp);
  assert_int_equal(llmr_response_usage_estimated(resp), 1);
  assert_int_equal(llmr_response_tokens(resp, LLMR_TOKENS_COMPLETION), 2);
  /* "Be terse." + "hello": 14 characters */
  assert_int_equal(llmr_response_tokens(resp, LLMR_TOKENS_PROMPT), 4);
  assert_int_equal(llmr_response_tokens(resp, LLMR_TOKENS_TOTAL), 6);
  {
    char *json = llmr_response_to_json(resp);
    assert_non_null(strstr(json, "\"usage_estimated\":true"));
    llmr_free(json);
  }
  llmr_response_free(resp);
  slog_free(g);

  /* a data line that is not JSON */
  script_raw("m-raw", "data: {\"choices\":[]}\n\ndata: oops\n\n",
             "text/event-stream");
  g = slog_new();
  resp = stream(r, slugs, 1, g, LLMR_E_PROTOCOL);
  assert_non_null(strstr(llmr_response_error(resp), "not a JSON object"));
  llmr_response_free(resp);
  slog_free(g);

  /* without a Content-Type the first byte decides: SSE here */
  script_raw("m-raw",
             "\n\ndata: {\"choices\":[{\"index\":0,\"delta\":{\"content\":"
             "\"x\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n",
             "");
  g = slog_new();
  resp = stream(r, slugs, 1, g, LLMR_OK);
  assert_string_equal(llmr_response_text(resp), "x");
  llmr_response_free(resp);
  slog_free(g);
  llmr_router_free(r);
}

/* A host that answers the streaming request with one JSON document: parsed
 * and delivered as events; an OpenRouter 200 error document falls back. */
static void test_json_reply_to_a_stream_request(void **state) {
  const char *slugs[] = {"openai/m-json"};
  const char *orr[] = {"openrouter/vendor/m-200err", "openai/m-json"};
  llmr_router *r = router_with("");
  llmr_response *resp;
  slog *g = slog_new();
  (void)state;
  script_raw("m-json",
             "{\"id\":\"x1\",\"choices\":[{\"index\":0,\"message\":{\"role\":"
             "\"assistant\",\"content\":\"all at once\"},\"finish_reason\":"
             "\"stop\"}],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":"
             "3,\"total_tokens\":6}}",
             "application/json");
  script_raw("vendor/m-200err",
             "{\"error\":{\"code\":502,\"message\":\"upstream down\"}}",
             "application/json");
  resp = stream(r, slugs, 1, g, LLMR_OK);
  check_success_log(g, resp);
  assert_int_equal(slog_count(g, LLMR_EVENT_TEXT), 1);
  assert_string_equal(llmr_response_text(resp), "all at once");
  llmr_response_free(resp);
  slog_free(g);

  g = slog_new();
  resp = stream(r, orr, 2, g, LLMR_OK);
  assert_int_equal(slog_count(g, LLMR_EVENT_FALLBACK), 1);
  assert_int_equal(llmr_response_attempt_status(resp, 0), LLMR_E_PROVIDER);
  llmr_response_free(resp);
  slog_free(g);
  llmr_router_free(r);
}

/* An adapter without stream_event: llmr_stream() sends a plain request and
 * reports the whole answer as events. */
static void test_adapter_without_streaming(void **state) {
  const char *slugs[] = {"plain/gpt-4o"};
  llmr_provider_vt vt;
  llmr_router *r = router_with("");
  const llmr_provider_vt *openai_vt = NULL;
  llmr_response *resp;
  slog *g = slog_new();
  char conf[256];
  cJSON *sent;
  (void)state;
  /* borrow the built-in OpenAI adapter through a registered copy */
  {
    extern const llmr_provider_vt llmr__openai_vt;
    openai_vt = &llmr__openai_vt;
  }
  vt = *openai_vt;
  vt.stream_event = NULL;
  vt.state_size = 0;
  snprintf(conf, sizeof(conf),
           "{\"base_url\": \"%s/v1\", \"api_key\": \"k\"}", E.base);
  assert_int_equal(llmr_router_add_provider(r, "plain", &vt, conf, NULL),
                   LLMR_OK);
  script_json("{\"model\":\"gpt-4o\",\"default\":{\"kind\":\"ok\",\"text\":"
              "\"whole\",\"tool_calls\":[{\"id\":\"c\",\"type\":\"function\","
              "\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]}}");
  resp = stream(r, slugs, 1, g, LLMR_OK);
  check_success_log(g, resp);
  assert_int_equal(slog_count(g, LLMR_EVENT_TEXT), 1);
  assert_int_equal(slog_count(g, LLMR_EVENT_TOOL_CALL), 1);
  sent = emu_request(&E, -1);
  assert_null(cJSON_GetObjectItem(cJSON_GetObjectItem(sent, "body"), "stream"));
  cJSON_Delete(sent);
  llmr_response_free(resp);
  slog_free(g);
  llmr_router_free(r);
}

/* ---- cancellation ---------------------------------------------------------- */

static void test_cancel_from_the_callback(void **state) {
  const char *slugs[] = {"openai/m-long", "openai/m-next"};
  llmr_router *r = router_with("");
  llmr_response *resp;
  slog *g = slog_new();
  double t0;
  cJSON *s;
  int conns;
  (void)state;
  /* 40 events 150 ms apart: 6 s if read to the end */
  script_json("{\"model\":\"m-long\",\"default\":{\"kind\":\"ok\",\"text\":"
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
  /* tokens counted so far, estimated since the provider sent none yet */
  assert_int_equal(llmr_response_usage_estimated(resp), 1);
  assert_int_equal(llmr_response_tokens(resp, LLMR_TOKENS_COMPLETION), 1);
  llmr_response_free(resp);
  slog_free(g);

  /* the router is fine, and the half-read connection was not reused */
  g = slog_new();
  resp = stream(r, slugs + 1, 1, g, LLMR_OK);
  assert_string_equal(llmr_response_text(resp), "Hello from m-next!");
  s = emu_get(&E, "/_emu/stats");
  conns = cJSON_GetObjectItem(s, "connections")->valueint;
  cJSON_Delete(s);
  assert_int_equal(conns, 2);
  llmr_response_free(resp);
  slog_free(g);

  /* cancelling at ATTEMPT sends nothing */
  g = slog_new();
  g->cancel_at_attempt = 1;
  resp = stream(r, slugs + 1, 1, g, LLMR_E_ABORTED);
  assert_int_equal(g->n, 1);
  assert_int_equal(emu_count(&E, "m-next"), 1);
  llmr_response_free(resp);
  slog_free(g);
  llmr_router_free(r);
}

/* A callback may use the library, even call the same router, from inside
 * the transfer (it runs inside libcurl's write callback). */
typedef struct nested {
  llmr_router *r;
  int calls;
  int ok;
} nested;

static int nested_cb(const llmr_event *ev, void *user) {
  nested *n = user;
  if (ev->type == LLMR_EVENT_TEXT && n->calls++ == 0) {
    const char *slugs[] = {"openai/m-inner"};
    llmr_request *req = slog_hello();
    llmr_response *resp = NULL;
    n->ok = llmr_complete(n->r, slugs, 1, req, &resp) == LLMR_OK &&
            strcmp(llmr_response_text(resp), "Hello from m-inner!") == 0;
    llmr_response_free(resp);
    llmr_request_free(req);
  }
  return 0;
}

static void test_nested_call_from_the_callback(void **state) {
  const char *slugs[] = {"openai/m-outer"};
  nested n;
  llmr_request *req = slog_hello();
  llmr_response *resp = NULL;
  (void)state;
  n.r = router_with("");
  n.calls = n.ok = 0;
  assert_int_equal(llmr_stream(n.r, slugs, 1, req, nested_cb, &n, &resp),
                   LLMR_OK);
  assert_true(n.ok);
  assert_string_equal(llmr_response_text(resp), "Hello from m-outer!");
  llmr_response_free(resp);
  llmr_request_free(req);
  llmr_router_free(n.r);
}

static void test_invalid_arguments(void **state) {
  const char *slugs[] = {"openai/x"};
  llmr_router *r = router_with("");
  llmr_request *req;
  llmr_response *resp = NULL;
  slog *g = slog_new();
  char *out = NULL;
  (void)state;
  assert_int_equal(llmr_request_new(&req), LLMR_OK);
  /* no messages: the callback is never called */
  assert_int_equal(llmr_stream(r, slugs, 1, req, slog_cb, g, &resp),
                   LLMR_E_INVAL);
  assert_non_null(resp);
  assert_int_equal(g->n, 0);
  llmr_response_free(resp);
  assert_int_equal(llmr_stream(r, slugs, 1, req, slog_cb, g, NULL),
                   LLMR_E_INVAL);
  assert_int_equal(llmr_stream_json(r, "{}", NULL, NULL, &out), LLMR_E_INVAL);
  assert_non_null(strstr(out, "model"));
  llmr_free(out);
  assert_int_equal(llmr_stream_json(r, "{}", NULL, NULL, NULL), LLMR_E_INVAL);
  llmr_request_free(req);
  slog_free(g);
  llmr_router_free(r);
}

/* ---- first-byte and idle limits --------------------------------------------- */

static void test_first_byte_timeout(void **state) {
  const char *slugs[] = {"openai/m-stall", "openai/m-fast"};
  llmr_router *r = router_with("\"first_byte_timeout_ms\": 300");
  llmr_response *resp;
  slog *g = slog_new();
  (void)state;
  script_json("{\"model\":\"m-stall\",\"default\":{\"kind\":\"ok\","
              "\"delay_ms\":3000}}");
  resp = stream(r, slugs, 2, g, LLMR_OK);
  assert_int_equal(llmr_response_attempt_status(resp, 0), LLMR_E_TIMEOUT);
  assert_non_null(
      strstr(llmr_response_attempt_error(resp, 0), "first_byte_timeout_ms"));
  fprintf(stderr, "first-byte limit fired after %.0f ms\n",
          llmr_response_attempt_duration_ms(resp, 0));
  assert_true(llmr_response_attempt_duration_ms(resp, 0) >= 290);
  assert_true(llmr_response_attempt_duration_ms(resp, 0) < 1000);
  assert_int_equal(slog_count(g, LLMR_EVENT_FALLBACK), 1);
  assert_string_equal(llmr_response_model(resp), "openai/m-fast");
  llmr_response_free(resp);
  slog_free(g);
  llmr_router_free(r);
}

static void test_idle_timeout(void **state) {
  const char *slugs[] = {"openai/m-idle", "openai/m-fast"};
  llmr_router *r = router_with("\"idle_timeout_ms\": 300");
  llmr_response *resp;
  slog *g = slog_new();
  (void)state;
  /* events 100 ms apart are fine */
  script_json("[{\"model\":\"m-fast\",\"default\":{\"kind\":\"ok\","
              "\"event_delay_ms\":100}},"
              "{\"model\":\"m-idle\",\"steps\":[{\"kind\":\"ok\","
              "\"event_delay_ms\":2000},{\"kind\":\"ok\",\"text\":\"abcdefgh\","
              "\"event_delay_ms\":2000,\"body_prefix\":\"data: {\\\"choices\\\":"
              "[{\\\"index\\\":0,\\\"delta\\\":{\\\"content\\\":\\\"early \\\"}}]}"
              "\\n\\n\"}]}]");
  resp = stream(r, slugs + 1, 1, g, LLMR_OK);
  llmr_response_free(resp);
  slog_free(g);
  /* a 2 s pause after the role chunk, before any content: fall back */
  g = slog_new();
  resp = stream(r, slugs, 2, g, LLMR_OK);
  assert_int_equal(llmr_response_attempt_status(resp, 0), LLMR_E_TIMEOUT);
  assert_non_null(
      strstr(llmr_response_attempt_error(resp, 0), "idle_timeout_ms"));
  fprintf(stderr, "idle limit fired after %.0f ms\n",
          llmr_response_attempt_duration_ms(resp, 0));
  assert_true(llmr_response_attempt_duration_ms(resp, 0) < 1500);
  assert_int_equal(slog_count(g, LLMR_EVENT_FALLBACK), 1);
  llmr_response_free(resp);
  slog_free(g);
  /* the same pause after content: an error, no fallback */
  g = slog_new();
  resp = stream(r, slugs, 2, g, LLMR_E_TIMEOUT);
  assert_string_equal(llmr_response_text(resp), "early ");
  assert_int_equal(slog_count(g, LLMR_EVENT_FALLBACK), 0);
  assert_int_equal(g->ev[g->n - 1].type, LLMR_EVENT_ERROR);
  assert_int_equal(g->ev[g->n - 1].status, LLMR_E_TIMEOUT);
  llmr_response_free(resp);
  slog_free(g);
  llmr_router_free(r);
}

static void test_config_keys(void **state) {
  char err[LLMR_ERRBUF_SIZE];
  llmr_router *r = NULL;
  (void)state;
  assert_int_equal(llmr_router_new_ex("{\"use_env\":false,"
                                      "\"first_byte_timeout_ms\":1000,"
                                      "\"idle_timeout_ms\":500}",
                                      &r, err, sizeof(err)),
                   LLMR_OK);
  llmr_router_free(r);
  assert_int_equal(llmr_router_new_ex("{\"idle_timeout_ms\":0}", &r, err,
                                      sizeof(err)),
                   LLMR_E_INVAL);
  assert_non_null(strstr(err, "idle_timeout_ms"));
  assert_int_equal(llmr_router_new_ex("{\"first_byte_timeout_ms\":\"x\"}", &r,
                                      err, sizeof(err)),
                   LLMR_E_INVAL);
  assert_non_null(strstr(err, "first_byte_timeout_ms"));
  assert_int_equal(
      llmr_router_new_ex("{\"idle_timeout\":5}", &r, err, sizeof(err)),
      LLMR_E_INVAL);
  assert_non_null(strstr(err, "unknown setting"));
}

static void test_size_cap_counts_streamed_bytes(void **state) {
  const char *slugs[] = {"openai/m-big"};
  llmr_router *r = router_with("\"max_response_bytes\": 8192");
  llmr_response *resp;
  slog *g = slog_new();
  (void)state;
  script_json("{\"model\":\"m-big\",\"default\":{\"kind\":\"big\","
              "\"bytes\":100000,\"piece_chars\":1000}}");
  resp = stream(r, slugs, 1, g, LLMR_E_TOO_LARGE);
  assert_true(strlen(llmr_response_text(resp)) < 8192);
  llmr_response_free(resp);
  slog_free(g);
  llmr_router_free(r);
}

/* ---- usage estimates for llmr_complete too ----------------------------------- */

static void test_complete_estimates_missing_usage(void **state) {
  const char *slugs[] = {"openai/m-nousage"};
  llmr_router *r = router_with("");
  llmr_request *req = slog_hello();
  llmr_response *resp = NULL;
  (void)state;
  script_raw("m-nousage",
             "{\"id\":\"x\",\"choices\":[{\"index\":0,\"message\":{\"role\":"
             "\"assistant\",\"content\":\"abcdefgh\"},\"finish_reason\":"
             "\"stop\"}]}",
             "application/json");
  assert_int_equal(llmr_complete(r, slugs, 1, req, &resp), LLMR_OK);
  assert_int_equal(llmr_response_usage_estimated(resp), 1);
  assert_int_equal(llmr_response_tokens(resp, LLMR_TOKENS_COMPLETION), 2);
  llmr_response_free(resp);
  llmr_request_free(req);
  llmr_router_free(r);
}

/* ---- the JSON variant ------------------------------------------------------ */

typedef struct chunks {
  cJSON *arr;
} chunks;

static int on_chunk(const char *json, void *user) {
  chunks *c = user;
  cJSON *j = cJSON_Parse(json);
  assert_non_null(j);
  cJSON_AddItemToArray(c->arr, j);
  return 0;
}

static void test_stream_json(void **state) {
  static const char req[] =
      "{\"models\":[\"openai/m-down\",\"openai/gpt-4o\"],\"stream\":true,"
      "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
  llmr_router *r = router_with("");
  chunks c;
  char *final = NULL, *plain = NULL, *sx, *sy;
  cJSON *f, *p, *ch, *first, *last;
  int i, n;
  const cJSON *tc;
  char args[256] = "";
  char text[256] = "";
  (void)state;
  script_json(
      "[{\"model\":\"m-down\",\"default\":{\"kind\":\"error\",\"preset\":"
      "\"overloaded\"}},{\"model\":\"gpt-4o\",\"default\":{\"kind\":\"ok\","
      "\"text\":\"Hi there\",\"reasoning\":\"short\",\"tool_calls\":[{\"id\":"
      "\"call_9\",\"type\":\"function\",\"function\":{\"name\":\"f\","
      "\"arguments\":\"{\\\"k\\\":[1,2,3]}\"}}]}}]");
  c.arr = cJSON_CreateArray();
  assert_int_equal(llmr_stream_json(r, req, on_chunk, &c, &final), LLMR_OK);
  n = cJSON_GetArraySize(c.arr);
  assert_true(n >= 5);
  first = cJSON_GetArrayItem(c.arr, 0);
  last = cJSON_GetArrayItem(c.arr, n - 1);
  for (i = 0; i < n; i++) {
    ch = cJSON_GetArrayItem(c.arr, i);
    assert_string_equal(cJSON_GetObjectItem(ch, "object")->valuestring,
                        "chat.completion.chunk");
    assert_string_equal(cJSON_GetObjectItem(ch, "model")->valuestring,
                        "openai/gpt-4o");
    if (i < n - 1) {
      const cJSON *d = cJSON_GetObjectItem(
          cJSON_GetArrayItem(cJSON_GetObjectItem(ch, "choices"), 0), "delta");
      const cJSON *v = cJSON_GetObjectItem(d, "content");
      if (cJSON_IsString(v))
        strcat(text, v->valuestring);
      cJSON_ArrayForEach(tc, cJSON_GetObjectItem(d, "tool_calls")) {
        const cJSON *fn = cJSON_GetObjectItem(tc, "function");
        assert_int_equal(cJSON_GetObjectItem(tc, "index")->valueint, 0);
        if (cJSON_GetObjectItem(tc, "id")) {
          assert_string_equal(cJSON_GetObjectItem(tc, "id")->valuestring,
                              "call_9");
          assert_string_equal(cJSON_GetObjectItem(tc, "type")->valuestring,
                              "function");
          assert_string_equal(cJSON_GetObjectItem(fn, "name")->valuestring,
                              "f");
        } else {
          assert_null(cJSON_GetObjectItem(fn, "name"));
        }
        strcat(args, cJSON_GetObjectItem(fn, "arguments")->valuestring);
      }
    }
  }
  /* role on the first chunk only */
  assert_string_equal(
      cJSON_GetObjectItem(
          cJSON_GetObjectItem(
              cJSON_GetArrayItem(cJSON_GetObjectItem(first, "choices"), 0),
              "delta"),
          "role")
          ->valuestring,
      "assistant");
  assert_string_equal(text, "Hi there");
  assert_string_equal(args, "{\"k\":[1,2,3]}");
  /* the finish chunk, then choices: [] with the usage */
  ch = cJSON_GetArrayItem(c.arr, n - 2);
  assert_string_equal(
      cJSON_GetObjectItem(
          cJSON_GetArrayItem(cJSON_GetObjectItem(ch, "choices"), 0),
          "finish_reason")
          ->valuestring,
      "tool_calls");
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(last, "choices")), 0);
  assert_true(cJSON_GetObjectItem(cJSON_GetObjectItem(last, "usage"),
                                  "prompt_tokens")
                  ->valueint > 0);
  cJSON_Delete(c.arr);

  /* the final document is llmr_complete_json's */
  assert_int_equal(llmr_complete_json(r, req, &plain), LLMR_OK);
  f = cJSON_Parse(final);
  p = cJSON_Parse(plain);
  slog_strip_volatile(f, 0);
  slog_strip_volatile(p, 0);
  sx = cJSON_PrintUnformatted(f);
  sy = cJSON_PrintUnformatted(p);
  assert_string_equal(sx, sy);
  cJSON_free(sx);
  cJSON_free(sy);
  cJSON_Delete(f);
  cJSON_Delete(p);
  llmr_free(final);
  llmr_free(plain);

  /* a failure: no chunks, the error document */
  c.arr = cJSON_CreateArray();
  assert_int_equal(llmr_stream_json(r,
                                    "{\"model\":\"openai/m-down\",\"messages\":"
                                    "[{\"role\":\"user\",\"content\":\"x\"}]}",
                                    on_chunk, &c, &final),
                   LLMR_E_OVERLOADED);
  assert_int_equal(cJSON_GetArraySize(c.arr), 0);
  f = cJSON_Parse(final);
  assert_string_equal(
      cJSON_GetObjectItem(cJSON_GetObjectItem(f, "error"), "code")->valuestring,
      "LLMR_E_OVERLOADED");
  cJSON_Delete(f);
  cJSON_Delete(c.arr);
  llmr_free(final);
  llmr_router_free(r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(test_stream_equals_complete, reset),
      cmocka_unit_test_setup(test_hosts_of_the_family, reset),
      cmocka_unit_test_setup(test_deltas_arrive_before_the_end, reset),
      cmocka_unit_test_setup(test_fallback_before_content, reset),
      cmocka_unit_test_setup(test_drop_after_content_is_an_error, reset),
      cmocka_unit_test_setup(test_error_chunk_after_content, reset),
      cmocka_unit_test_setup(test_end_marker, reset),
      cmocka_unit_test_setup(test_json_reply_to_a_stream_request, reset),
      cmocka_unit_test_setup(test_adapter_without_streaming, reset),
      cmocka_unit_test_setup(test_cancel_from_the_callback, reset),
      cmocka_unit_test_setup(test_nested_call_from_the_callback, reset),
      cmocka_unit_test_setup(test_invalid_arguments, reset),
      cmocka_unit_test_setup(test_first_byte_timeout, reset),
      cmocka_unit_test_setup(test_idle_timeout, reset),
      cmocka_unit_test(test_config_keys),
      cmocka_unit_test_setup(test_size_cap_counts_streamed_bytes, reset),
      cmocka_unit_test_setup(test_complete_estimates_missing_usage, reset),
      cmocka_unit_test_setup(test_stream_json, reset),
  };
  return cmocka_run_group_tests_name("integration/stream", tests, group_setup,
                                     group_teardown);
}
