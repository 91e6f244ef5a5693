/*
 * The Gemini adapter's stream_event, fed through the real SSE parser:
 * :streamGenerateContent?alt=sse replies (tests/fixtures/gemini-stream/
 * NAME.sse) must give the event log and final response in NAME.expected,
 * the same whether the bytes arrive whole, split in two at every offset,
 * one byte at a time or in random chunks; and where the stream ends in a
 * complete answer, the final response must equal what parse_response makes
 * of the same answer sent whole (NAME.json). The fixtures and their format:
 * tests/fixtures/gemini-stream/gen.py.
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

/* The final response as JSON for comparing two responses to one answer:
 * synthesised call ids (unique per call) become "<synth>" and the created
 * time (now, when the provider gives none) is dropped. Caller frees. */
static char *comparable(llmr_response *resp) {
  char *j, *out;
  cJSON *root, *calls, *c;
  resp->status = LLMR_OK;
  j = llmr_response_to_json(resp);
  assert_non_null(j);
  root = cJSON_Parse(j);
  llmr_free(j);
  assert_non_null(root);
  cJSON_DeleteItemFromObject(root, "created");
  calls = cJSON_GetObjectItem(
      cJSON_GetObjectItem(
          cJSON_GetArrayItem(cJSON_GetObjectItem(root, "choices"), 0),
          "message"),
      "tool_calls");
  cJSON_ArrayForEach(c, calls) {
    const cJSON *id = cJSON_GetObjectItem(c, "id");
    if (cJSON_IsString(id) && strncmp(id->valuestring, "call_llmr_", 10) == 0)
      cJSON_ReplaceItemInObject(c, "id", cJSON_CreateString("<synth>"));
  }
  out = cJSON_PrintUnformatted(root);
  cJSON_Delete(root);
  return out;
}

static const sfx_opts opts = {"google/test", SFX_SUM_RETRY_AFTER,
                             comparable};

static llmr_provider *provider(void) {
  llmr_provider *p = NULL;
  assert_int_equal(llmr__provider_new("google", &llmr__gemini_vt,
                                      llmr__builtin_find("google"), NULL, 0,
                                      NULL, &p, NULL, 0),
                   LLMR_OK);
  return p;
}

static void test_fixture(void **state) {
  const sfx_fixture *fx = *state;
  llmr_provider *p = provider();
  char *final = NULL;
  sfx_run_fixture(&opts, p, fx, &final);
  /* the same answer sent whole: parse_response gives the same response */
  if (fx->json) {
    llmr_http_response h;
    llmr_response *whole = llmr__response_new();
    char *want;
    memset(&h, 0, sizeof(h));
    h.status = 200;
    llmr__buf_append(&h.body, fx->json, fx->json_len);
    assert_int_equal(p->vt->parse_response(p, &h, whole), LLMR_OK);
    assert_int_equal(llmr__response_finish_calls(whole), LLMR_OK);
    want = comparable(whole);
    if (!final || strcmp(want, final) != 0) {
      fprintf(stderr, "%s: parse_response: %s\n             stream: %s\n",
              fx->name, want, final ? final : "(incomplete)");
      fail();
    }
    cJSON_free(want);
    llmr_response_free(whole);
    llmr__http_response_clear(&h);
    llmr__buf_free(&h.body);
  } else if (final) {
    /* every complete answer has its non-streaming twin */
    fprintf(stderr, "%s: complete, but no %s.json\n", fx->name, fx->name);
    fail();
  }
  cJSON_free(final);
  llmr__provider_free(p);
}

/* ---- beyond the fixtures ------------------------------------------------- */

/* One event straight to stream_event (no SSE framing). */
static llmr_status feed(llmr_provider *p, void *state, llmr_response *r,
                        const char *json) {
  return p->vt->stream_event(p, state, "message", json, strlen(json), r);
}

/* FINISH_REASON_UNSPECIFIED is no end marker; a real finishReason is; a
 * call after the finish chunk still makes STOP mean tool_calls. */
static void test_finish_rules(void **state) {
  llmr_provider *p = provider();
  llmr_response *r = llmr__response_new();
  void *st = calloc(1, p->vt->state_size);
  (void)state;
  assert_int_equal(
      feed(p, st, r,
           "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a\"}]},"
           "\"finishReason\":\"FINISH_REASON_UNSPECIFIED\"}]}"),
      LLMR_OK);
  assert_false(r->stream_done);
  assert_null(llmr_response_finish_reason(r));
  assert_int_equal(feed(p, st, r,
                        "{\"candidates\":[{\"finishReason\":\"RECITATION\"}]}"),
                   LLMR_OK);
  assert_true(r->stream_done);
  assert_string_equal(llmr_response_finish_reason(r), "content_filter");
  free(st);
  llmr_response_free(r);

  r = llmr__response_new();
  st = calloc(1, p->vt->state_size);
  assert_int_equal(feed(p, st, r,
                        "{\"candidates\":[{\"content\":{\"parts\":[{"
                        "\"text\":\"x\"}]},\"finishReason\":\"STOP\"}]}"),
                   LLMR_OK);
  assert_string_equal(llmr_response_finish_reason(r), "stop");
  assert_int_equal(
      feed(p, st, r,
           "{\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":"
           "{\"name\":\"f\",\"args\":{\"k\":1}}}]}}]}"),
      LLMR_OK);
  assert_string_equal(llmr_response_finish_reason(r), "tool_calls");
  assert_int_equal(llmr_response_tool_call_count(r), 1);
  assert_string_equal(llmr_response_tool_call_arguments(r, 0), "{\"k\":1}");
  free(st);
  llmr_response_free(r);
  llmr__provider_free(p);
}

/* Chunks that are not what Google documents: protocol errors; an error
 * event of an unexpected shape still ends the stream as an error. */
static void test_malformed_chunks(void **state) {
  static const char *const bad[] = {
      "[{\"candidates\":[]}]",
      "\"text\"",
      "{\"candidates\":{\"content\":{}}}",
      "{\"candidates\":[\"x\"]}",
      "{\"candidates\":[{\"content\":[]}]}",
      "{\"candidates\":[{\"content\":{\"parts\":{}}}]}",
      "{\"candidates\":[{\"content\":{\"parts\":[7]}}]}",
      "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":1}]}}]}",
      "{\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":{"
      "\"args\":{}}}]}}]}",
      "{\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":{"
      "\"name\":\"f\",\"args\":\"{}\"}}]}}]}",
  };
  llmr_provider *p = provider();
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    llmr_response *r = llmr__response_new();
    void *st = calloc(1, p->vt->state_size);
    llmr_status got = feed(p, st, r, bad[i]);
    if (got != LLMR_E_PROTOCOL)
      fail_msg("'%s': %s", bad[i], llmr_status_name(got));
    assert_non_null(llmr_response_error(r));
    assert_false(r->stream_done);
    free(st);
    llmr_response_free(r);
  }
  {
    llmr_response *r = llmr__response_new();
    void *st = calloc(1, p->vt->state_size);
    assert_int_equal(feed(p, st, r, "{\"error\":\"boom\"}"), LLMR_E_PROVIDER);
    assert_int_equal(llmr_response_retryable(r), 0);
    assert_non_null(llmr_response_error(r));
    free(st);
    llmr_response_free(r);
    /* a gateway's error with a deadline */
    r = llmr__response_new();
    st = calloc(1, p->vt->state_size);
    assert_int_not_equal(
        feed(p, st, r,
             "{\"error\":{\"code\":504,\"message\":\"Deadline expired\","
             "\"status\":\"DEADLINE_EXCEEDED\"}}"),
        LLMR_OK);
    assert_string_equal(llmr_response_error_type(r), "DEADLINE_EXCEEDED");
    assert_int_equal(llmr_response_retryable(r), 1);
    free(st);
    llmr_response_free(r);
  }
  llmr__provider_free(p);
}

int main(void) {
  static const struct CMUnitTest extra[] = {
      cmocka_unit_test(test_finish_rules),
      cmocka_unit_test(test_malformed_chunks),
  };
  return sfx_main("test_gemini_stream", "unit/gemini_stream", "gemini-stream",
                  15, test_fixture, extra, sizeof(extra) / sizeof(extra[0]));
}
