/*
 * The Anthropic adapter's stream_event, fed through the real SSE parser:
 * streams in the Messages API's format (tests/fixtures/anthropic-stream/
 * NAME.sse) must give the event log and final response in NAME.expected,
 * the same whether the bytes arrive whole, split in two at every offset,
 * one byte at a time or in random chunks. The fixtures and their format:
 * tests/fixtures/anthropic-stream/gen.py.
 *
 * Every complete stream is also checked against the non-streamed parse:
 * the events are accumulated into a Message the way the SDK's
 * MessageStream does (src/lib/MessageStream.ts, #accumulateMessage), that
 * Message goes through parse_response, and both responses must print the
 * same JSON.
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

/* The response as JSON, for comparing two of them. */
static char *response_json(llmr_response *resp) {
  resp->status = LLMR_OK;
  resp->created = 1;
  return llmr_response_to_json(resp);
}

static const sfx_opts opts = {"anthropic/test", SFX_SUM_CACHE_WRITE,
                             response_json};

/* ---- the Message the SDK would assemble from the same events ----------- */

typedef struct accum {
  cJSON *msg;
  int done;
} accum;

/* obj[key] = the string obj[key] + add */
static void str_append(cJSON *obj, const char *key, const char *add) {
  const char *old = cJSON_GetStringValue(cJSON_GetObjectItem(obj, key));
  llmr__buf b = {0};
  llmr__buf_puts(&b, old ? old : "");
  llmr__buf_puts(&b, add);
  if (cJSON_HasObjectItem(obj, key))
    cJSON_ReplaceItemInObjectCaseSensitive(obj, key,
                                           cJSON_CreateString(b.data));
  else
    cJSON_AddStringToObject(obj, key, b.data);
  llmr__buf_free(&b);
}

static int accum_sse(void *user, const llmr__sse_event *ev) {
  static const char *const known[] = {
      "message_start", "content_block_start", "content_block_delta",
      "content_block_stop", "message_delta", "message_stop", NULL};
  accum *a = user;
  const char *type = ev->event_len ? ev->event : NULL;
  cJSON *o, *blk, *d, *u, *v;
  size_t i;
  if (a->done) /* the message is complete */
    return 0;
  if (type) {
    for (i = 0; known[i] && strcmp(type, known[i]) != 0; i++)
      ;
    if (!known[i]) /* ping, error, event types added later */
      return 0;
  }
  o = cJSON_ParseWithLength(ev->data, ev->data_len);
  assert_true(cJSON_IsObject(o));
  if (!type)
    type = cJSON_GetStringValue(cJSON_GetObjectItem(o, "type"));
  if (!type) {
    cJSON_Delete(o);
    return 0;
  }
  if (strcmp(type, "message_start") == 0) {
    assert_null(a->msg);
    a->msg = cJSON_Duplicate(cJSON_GetObjectItem(o, "message"), 1);
  } else if (strcmp(type, "content_block_start") == 0) {
    cJSON_AddItemToArray(
        cJSON_GetObjectItem(a->msg, "content"),
        cJSON_Duplicate(cJSON_GetObjectItem(o, "content_block"), 1));
  } else if (strcmp(type, "content_block_delta") == 0) {
    const char *dt, *bt;
    blk = cJSON_GetArrayItem(cJSON_GetObjectItem(a->msg, "content"),
                             cJSON_GetObjectItem(o, "index")->valueint);
    d = cJSON_GetObjectItem(o, "delta");
    dt = cJSON_GetStringValue(cJSON_GetObjectItem(d, "type"));
    bt = cJSON_GetStringValue(cJSON_GetObjectItem(blk, "type"));
    assert_non_null(blk);
    if (strcmp(dt, "text_delta") == 0 && strcmp(bt, "text") == 0)
      str_append(blk, "text", cJSON_GetObjectItem(d, "text")->valuestring);
    else if (strcmp(dt, "thinking_delta") == 0 && strcmp(bt, "thinking") == 0)
      str_append(blk, "thinking",
                 cJSON_GetObjectItem(d, "thinking")->valuestring);
    else if (strcmp(dt, "signature_delta") == 0 &&
             strcmp(bt, "thinking") == 0)
      cJSON_ReplaceItemInObject(
          blk, "signature",
          cJSON_Duplicate(cJSON_GetObjectItem(d, "signature"), 1));
    else if (strcmp(dt, "input_json_delta") == 0 &&
             (strcmp(bt, "tool_use") == 0 ||
              strcmp(bt, "server_tool_use") == 0))
      /* the SDK keeps the raw text beside the block */
      str_append(blk, "__json",
                 cJSON_GetObjectItem(d, "partial_json")->valuestring);
  } else if (strcmp(type, "message_delta") == 0) {
    d = cJSON_GetObjectItem(o, "delta");
    cJSON_ReplaceItemInObject(
        a->msg, "stop_reason",
        cJSON_Duplicate(cJSON_GetObjectItem(d, "stop_reason"), 1));
    cJSON_ReplaceItemInObject(
        a->msg, "stop_sequence",
        cJSON_Duplicate(cJSON_GetObjectItem(d, "stop_sequence"), 1));
    /* output_tokens replaces; input and cache counts when not null */
    u = cJSON_GetObjectItem(a->msg, "usage");
    cJSON_ArrayForEach(v, cJSON_GetObjectItem(o, "usage")) {
      if (cJSON_IsNull(v))
        continue;
      if (cJSON_HasObjectItem(u, v->string))
        cJSON_ReplaceItemInObject(u, v->string, cJSON_Duplicate(v, 1));
      else
        cJSON_AddItemToObject(u, v->string, cJSON_Duplicate(v, 1));
    }
  } else if (strcmp(type, "message_stop") == 0) {
    a->done = 1;
  }
  cJSON_Delete(o);
  return 0;
}

/* parse_response's result for the Message the stream describes, as JSON;
 * NULL when the stream is not a complete message. */
static char *parse_equivalent(llmr_provider *p, const char *data,
                              size_t len) {
  llmr__sse_parser sse;
  accum a;
  cJSON *blk;
  llmr_http_response h;
  llmr_response *resp;
  char *body, *json;
  memset(&a, 0, sizeof(a));
  llmr__sse_init(&sse, 0, accum_sse, &a);
  assert_int_equal(llmr__sse_feed(&sse, data, len), LLMR_OK);
  llmr__sse_finish(&sse);
  llmr__sse_free(&sse);
  if (!a.done) {
    cJSON_Delete(a.msg);
    return NULL;
  }
  /* the input is the parsed text of its fragments, when there were any */
  cJSON_ArrayForEach(blk, cJSON_GetObjectItem(a.msg, "content")) {
    const char *js = cJSON_GetStringValue(cJSON_GetObjectItem(blk, "__json"));
    if (js && *js) {
      cJSON *in = cJSON_Parse(js);
      assert_non_null(in);
      cJSON_ReplaceItemInObject(blk, "input", in);
    }
    cJSON_DeleteItemFromObject(blk, "__json");
  }
  body = cJSON_PrintUnformatted(a.msg);
  cJSON_Delete(a.msg);
  memset(&h, 0, sizeof(h));
  h.status = 200;
  llmr__buf_puts(&h.body, body);
  cJSON_free(body);
  resp = llmr__response_new();
  assert_int_equal(p->vt->parse_response(p, &h, resp), LLMR_OK);
  json = response_json(resp);
  llmr_response_free(resp);
  llmr__http_response_clear(&h);
  llmr__buf_free(&h.body);
  return json;
}

static llmr_provider *provider(void) {
  llmr_provider *p = NULL;
  assert_int_equal(llmr__provider_new("anthropic", &llmr__anthropic_vt,
                                      llmr__builtin_find("anthropic"), NULL,
                                      0, NULL, &p, NULL, 0),
                   LLMR_OK);
  return p;
}

static void test_fixture(void **state) {
  const sfx_fixture *fx = *state;
  llmr_provider *p = provider();
  char *json = NULL;
  sfx_run_fixture(&opts, p, fx, &json);
  /* a complete stream gives what the non-streamed parse gives */
  if (json && !fx->no_parse_check) {
    char *want = parse_equivalent(p, fx->data, fx->len);
    assert_non_null(want);
    if (strcmp(want, json) != 0) {
      fprintf(stderr, "%s: stream and parse_response differ\nparse:  %s\n"
                      "stream: %s\n",
              fx->name, want, json);
      fail();
    }
    llmr_free(want);
  }
  llmr_free(json);
  llmr__provider_free(p);
}

/* ---- beyond the fixtures ------------------------------------------------- */

/* Run a stream given as a string; returns the log (caller frees). */
static char *run_text(const char *stream) {
  llmr_provider *p = provider();
  char *log =
      sfx_run_split(&opts, p, stream, strlen(stream), NULL, 0, 0, NULL);
  llmr__provider_free(p);
  return log;
}

/* Block indexes past the adapter's table (blocks come one at a time). */
static void test_high_block_index(void **state) {
  char *log = run_text(
      "event: message_start\ndata: {\"type\":\"message_start\",\"message\":"
      "{\"id\":\"m\",\"content\":[],\"usage\":{\"input_tokens\":1,"
      "\"output_tokens\":1}}}\n\n"
      "event: content_block_start\ndata: {\"type\":\"content_block_start\","
      "\"index\":300,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
      "event: content_block_delta\ndata: {\"type\":\"content_block_delta\","
      "\"index\":300,\"delta\":{\"type\":\"text_delta\",\"text\":\"far\"}}\n\n"
      "event: content_block_stop\ndata: {\"type\":\"content_block_stop\","
      "\"index\":300}\n\n"
      "event: content_block_start\ndata: {\"type\":\"content_block_start\","
      "\"index\":301,\"content_block\":{\"type\":\"tool_use\",\"id\":\"t\","
      "\"name\":\"f\",\"input\":{}}}\n\n"
      "event: content_block_delta\ndata: {\"type\":\"content_block_delta\","
      "\"index\":301,\"delta\":{\"type\":\"input_json_delta\","
      "\"partial_json\":\"{\\\"a\\\": 1}\"}}\n\n"
      "event: content_block_stop\ndata: {\"type\":\"content_block_stop\","
      "\"index\":301}\n\n"
      "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":"
      "{\"stop_reason\":\"tool_use\"},\"usage\":{\"output_tokens\":5}}\n\n"
      "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
  (void)state;
  assert_non_null(strstr(log, "status LLMR_OK\ndone 1\n"));
  assert_non_null(strstr(log, "text \"far\"\n"));
  assert_non_null(strstr(log, "call 0 id=t name=f args=\"{\\\"a\\\":1}\""));
  free(log);
}

/* Malformed events: protocol errors naming what is wrong. */
static void test_malformed(void **state) {
  static const char *const cases[][2] = {
      {"event: content_block_start\ndata: {\"type\":\"content_block_start\","
       "\"content_block\":{\"type\":\"text\"}}\n\n",
       "content_block_start has no valid index"},
      {"event: content_block_start\ndata: {\"index\":0,\"content_block\":"
       "{\"type\":\"tool_use\",\"id\":\"x\"}}\n\n",
       "a tool_use block has no name"},
      {"event: content_block_start\ndata: {\"index\":-1,\"content_block\":"
       "{\"type\":\"text\"}}\n\n",
       "content_block_start has no valid index"},
      {"event: content_block_start\ndata: {\"index\":0,\"content_block\":"
       "{\"type\":\"text\"}}\n\nevent: content_block_delta\ndata: {\"index\":"
       "0,\"delta\":{\"type\":\"text_delta\",\"text\":7}}\n\n",
       "a text_delta has no text string"},
      {"event: message_start\ndata: {\"message\":{\"id\":5}}\n\n",
       "response id is not a string"},
      {"event: message_start\ndata: {\"message\":{\"usage\":{"
       "\"input_tokens\":\"many\"}}}\n\n",
       "usage holds a token count that is not a non-negative number"},
      {"event: message_delta\ndata: {\"delta\":{\"stop_reason\":1}}\n\n",
       "stop_reason is not a string"},
      {"event: message_start\ndata: [1,2]\n\n",
       "stream event is not a JSON object: [1,2]"},
  };
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char *log = run_text(cases[i][0]);
    if (!strstr(log, "status LLMR_E_PROTOCOL") || !strstr(log, cases[i][1])) {
      fprintf(stderr, "case %zu:\n%s", i, log);
      fail();
    }
    free(log);
  }
}

/* state_size and the vtable entries. */
static void test_vtable(void **state) {
  (void)state;
  assert_non_null(llmr__anthropic_vt.stream_event);
  assert_true(llmr__anthropic_vt.state_size > 0);
  assert_true(llmr__anthropic_vt.state_size < 4096);
}

int main(void) {
  static const struct CMUnitTest extra[] = {
      cmocka_unit_test(test_high_block_index),
      cmocka_unit_test(test_malformed),
      cmocka_unit_test(test_vtable),
  };
  return sfx_main("test_anthropic_stream", "unit/anthropic_stream",
                  "anthropic-stream", 20, test_fixture, extra,
                  sizeof(extra) / sizeof(extra[0]));
}
