/*
 * The OpenAI-compatible adapter's stream_event, fed through the real SSE
 * parser: recorded-style streams of OpenAI, OpenRouter, Mistral, Ollama and
 * DeepSeek (tests/fixtures/openai-stream/NAME.sse) must give the event log
 * and final response in NAME.expected, the same whether the bytes arrive
 * whole, split in two at every offset, one byte at a time or in random
 * chunks. The fixtures and their format: tests/fixtures/openai-stream/gen.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "internal.h"
#include "sse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stream_fixture.h"

static const sfx_opts opts = {"openai/test", 0, NULL};

static llmr_provider *provider(void) {
  llmr_provider *p = NULL;
  assert_int_equal(llmr__provider_new("openai", &llmr__openai_vt,
                                      llmr__builtin_find("openai"), NULL, 0,
                                      NULL, &p, NULL, 0),
                   LLMR_OK);
  return p;
}

static void test_fixture(void **state) {
  const sfx_fixture *fx = *state;
  llmr_provider *p = provider();
  sfx_run_fixture(&opts, p, fx, NULL);
  llmr__provider_free(p);
}

/* ---- beyond the fixtures ------------------------------------------------- */

/* The adapter's stream result equals its non-streaming parse of the same
 * answer (text, reasoning, tool calls, usage, finish reason, id). */
static void test_stream_equals_parse(void **state) {
  static const char body[] =
      "{\"id\":\"chatcmpl-9\",\"object\":\"chat.completion\",\"created\":1,"
      "\"model\":\"m\",\"choices\":[{\"index\":0,\"message\":{\"role\":"
      "\"assistant\",\"content\":\"Sure: \\u00e9t\\u00e9\",\"reasoning\":"
      "\"think\",\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\","
      "\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\":\\\"b\\\"}\"}}"
      "]},\"finish_reason\":\"tool_calls\"}],\"usage\":{\"prompt_tokens\":5,"
      "\"completion_tokens\":6,\"total_tokens\":11,\"prompt_tokens_details\":"
      "{\"cached_tokens\":1},\"completion_tokens_details\":{"
      "\"reasoning_tokens\":2}}}";
  static const char stream[] =
      "data: {\"id\":\"chatcmpl-9\",\"created\":1,\"choices\":[{\"index\":0,"
      "\"delta\":{\"role\":\"assistant\",\"reasoning\":\"thi\"}}]}\n\n"
      "data: {\"id\":\"chatcmpl-9\",\"choices\":[{\"index\":0,\"delta\":{"
      "\"reasoning\":\"nk\",\"content\":\"Sure: \\u00e9\"}}]}\n\n"
      "data: {\"id\":\"chatcmpl-9\",\"choices\":[{\"index\":0,\"delta\":{"
      "\"content\":\"t\\u00e9\",\"tool_calls\":[{\"index\":0,\"id\":"
      "\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"f\","
      "\"arguments\":\"{\\\"a\\\":\"}}]}}]}\n\n"
      "data: {\"id\":\"chatcmpl-9\",\"choices\":[{\"index\":0,\"delta\":{"
      "\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":"
      "\"\\\"b\\\"}\"}}]},\"finish_reason\":\"tool_calls\"}]}\n\n"
      "data: {\"id\":\"chatcmpl-9\",\"choices\":[],\"usage\":{"
      "\"prompt_tokens\":5,\"completion_tokens\":6,\"total_tokens\":11,"
      "\"prompt_tokens_details\":{\"cached_tokens\":1},"
      "\"completion_tokens_details\":{\"reasoning_tokens\":2}}}\n\n"
      "data: [DONE]\n\n";
  llmr_provider *p = provider();
  llmr_response *a = llmr__response_new(), *b = llmr__response_new();
  llmr_http_response h;
  llmr__sse_parser sse;
  sfx_run r;
  char *ja, *jb;
  (void)state;
  memset(&h, 0, sizeof(h));
  h.status = 200;
  llmr__buf_puts(&h.body, body);
  assert_int_equal(p->vt->parse_response(p, &h, a), LLMR_OK);
  llmr__http_response_clear(&h);
  llmr__buf_free(&h.body);

  memset(&r, 0, sizeof(r));
  r.p = p;
  r.resp = b;
  r.state = calloc(1, p->vt->state_size);
  llmr__sse_init(&sse, 0, sfx_on_sse, &r);
  assert_int_equal(llmr__sse_feed(&sse, stream, sizeof(stream) - 1), LLMR_OK);
  assert_int_equal(llmr__sse_finish(&sse), LLMR_OK);
  assert_true(b->stream_done);
  assert_int_equal(llmr__response_finish_calls(b), LLMR_OK);
  a->status = b->status = LLMR_OK;
  ja = llmr_response_to_json(a);
  jb = llmr_response_to_json(b);
  assert_string_equal(ja, jb);
  llmr_free(ja);
  llmr_free(jb);
  llmr__sse_free(&sse);
  free(r.state);
  llmr_response_free(a);
  llmr_response_free(b);
  llmr__provider_free(p);
}

/* tool_call_delta on its own: another id under the same index is another
 * call (hosts that number every call 0); a late id replaces a synthesised
 * one; the name may come late; a call that never gets a name fails. */
static void test_tool_call_delta_rules(void **state) {
  llmr_response *r = llmr__response_new();
  (void)state;
  assert_int_equal(llmr_response_tool_call_delta(r, 0, "c1", "f", "{", 1),
                   LLMR_OK);
  assert_int_equal(llmr_response_tool_call_delta(r, 0, NULL, NULL, "}", 1),
                   LLMR_OK);
  assert_int_equal(llmr_response_tool_call_delta(r, 0, "c2", "g", "{}", 2),
                   LLMR_OK);
  assert_int_equal(llmr_response_tool_call_count(r), 2);
  assert_string_equal(llmr_response_tool_call_arguments(r, 0), "{}");
  assert_string_equal(llmr_response_tool_call_id(r, 1), "c2");
  /* index 7: no id at first, the real one later; name later too */
  assert_int_equal(llmr_response_tool_call_delta(r, 7, NULL, NULL, "[", 1),
                   LLMR_OK);
  assert_non_null(strstr(llmr_response_tool_call_id(r, 2), "call_llmr_"));
  assert_int_equal(llmr_response_tool_call_delta(r, 7, "c3", "h", "]", 1),
                   LLMR_OK);
  assert_int_equal(llmr_response_tool_call_count(r), 3);
  assert_string_equal(llmr_response_tool_call_id(r, 2), "c3");
  assert_string_equal(llmr_response_tool_call_name(r, 2), "h");
  assert_string_equal(llmr_response_tool_call_arguments(r, 2), "[]");
  assert_int_equal(llmr__response_finish_calls(r), LLMR_OK);
  /* argument errors */
  assert_int_equal(llmr_response_tool_call_delta(NULL, 0, NULL, NULL, NULL, 0),
                   LLMR_E_INVAL);
  assert_int_equal(llmr_response_tool_call_delta(r, 0, NULL, NULL, NULL, 3),
                   LLMR_E_INVAL);
  /* a streamed call without a name cannot be completed */
  assert_int_equal(llmr_response_tool_call_delta(r, 9, "c9", NULL, "{}", 2),
                   LLMR_OK);
  assert_int_equal(llmr__response_finish_calls(r), LLMR_E_PROTOCOL);
  assert_int_equal(llmr_response_stream_done(NULL), LLMR_E_INVAL);
  llmr_response_free(r);
}

/* The usage estimate: about 4 characters (not bytes) a token. */
static void test_usage_estimate(void **state) {
  llmr_response *r = llmr__response_new();
  llmr_request *req;
  (void)state;
  assert_int_equal(llmr_request_new(&req), LLMR_OK);
  /* 16 characters (the accents are 2 bytes each) */
  assert_int_equal(llmr_request_add_message(req, LLMR_ROLE_USER,
                                            "été été été été!"),
                   LLMR_OK);
  assert_int_equal(llmr_response_append_text(r, "12345678", 8), LLMR_OK);
  assert_int_equal(llmr_response_append_reasoning(r, "abcd", 4), LLMR_OK);
  assert_int_equal(llmr_response_usage_estimated(r), 0);
  llmr__response_estimate_usage(r, req);
  assert_int_equal(llmr_response_usage_estimated(r), 1);
  assert_int_equal(llmr_response_tokens(r, LLMR_TOKENS_PROMPT), 4);
  assert_int_equal(llmr_response_tokens(r, LLMR_TOKENS_COMPLETION), 3);
  assert_int_equal(llmr_response_tokens(r, LLMR_TOKENS_REASONING), 1);
  assert_int_equal(llmr_response_tokens(r, LLMR_TOKENS_TOTAL), 7);
  /* counts the provider gave are kept */
  llmr__response_reset_attempt(r);
  llmr_response_set_tokens(r, LLMR_TOKENS_PROMPT, 100);
  llmr_response_set_tokens(r, LLMR_TOKENS_COMPLETION, 50);
  llmr__response_estimate_usage(r, req);
  assert_int_equal(llmr_response_usage_estimated(r), 0);
  assert_int_equal(llmr_response_tokens(r, LLMR_TOKENS_PROMPT), 100);
  assert_int_equal(llmr_response_usage_estimated(NULL), 0);
  llmr_request_free(req);
  llmr_response_free(r);
}

int main(void) {
  static const struct CMUnitTest extra[] = {
      cmocka_unit_test(test_stream_equals_parse),
      cmocka_unit_test(test_tool_call_delta_rules),
      cmocka_unit_test(test_usage_estimate),
  };
  return sfx_main("test_openai_stream", "unit/openai_stream", "openai-stream",
                  15, test_fixture, extra, sizeof(extra) / sizeof(extra[0]));
}
