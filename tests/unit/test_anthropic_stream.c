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

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a growable string ------------------------------------------------- */

static void put_quoted(llmr__buf *b, const char *s, size_t n) {
  size_t i;
  llmr__buf_puts(b, "\"");
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '\\')
      llmr__buf_puts(b, "\\\\");
    else if (c == '"')
      llmr__buf_puts(b, "\\\"");
    else if (c == '\n')
      llmr__buf_puts(b, "\\n");
    else if (c == '\r')
      llmr__buf_puts(b, "\\r");
    else if (c == '\t')
      llmr__buf_puts(b, "\\t");
    else if (c < 0x20 || c == 0x7f)
      llmr__buf_printf(b, "\\x%02x", c);
    else
      llmr__buf_append(b, (const char *)&c, 1);
  }
  llmr__buf_puts(b, "\"");
}

static const char *show_id(const char *id) {
  return strncmp(id, "call_llmr_", 10) == 0 ? "<synth>" : id;
}

/* ---- one run: bytes -> SSE parser -> adapter -> events ------------------ */

typedef struct run {
  llmr_provider *p;
  llmr_response *resp;
  void *state;
  llmr_status st; /* what stream_event returned last (first failure) */
  llmr__buf log;
  int content_events;
  int cancel_at; /* 0: never */
} run;

static int on_event(const llmr_event *ev, void *user) {
  run *r = user;
  switch (ev->type) {
  case LLMR_EVENT_TEXT:
    llmr__buf_puts(&r->log, "text ");
    put_quoted(&r->log, ev->text, ev->len);
    break;
  case LLMR_EVENT_REASONING:
    llmr__buf_puts(&r->log, "reasoning ");
    put_quoted(&r->log, ev->text, ev->len);
    break;
  case LLMR_EVENT_TOOL_CALL:
    llmr__buf_printf(&r->log, "tool %zu ", ev->tool_index);
    if (ev->tool_id)
      llmr__buf_printf(&r->log, "id=%s ", show_id(ev->tool_id));
    if (ev->tool_name)
      llmr__buf_printf(&r->log, "name=%s ", ev->tool_name);
    put_quoted(&r->log, ev->text, ev->len);
    assert_int_equal(ev->text[ev->len], '\0');
    break;
  default:
    llmr__buf_printf(&r->log, "unexpected event %d", (int)ev->type);
    break;
  }
  llmr__buf_puts(&r->log, "\n");
  assert_ptr_equal(ev->response, r->resp);
  r->content_events++;
  return r->cancel_at && r->content_events == r->cancel_at;
}

static int on_sse(void *user, const llmr__sse_event *ev) {
  run *r = user;
  llmr_status st = r->p->vt->stream_event(
      r->p, r->state, ev->event_len ? ev->event : "message", ev->data,
      ev->data_len, r->resp);
  if (st == LLMR_OK)
    return 0;
  r->st = st;
  return 1;
}

/* The final response as log lines. */
static void summarise(run *r) {
  llmr_response *resp = r->resp;
  llmr__buf *b = &r->log;
  size_t i;
  llmr__buf_printf(b, "--\nstatus %s\ndone %d\n", llmr_status_name(r->st),
                   (int)resp->stream_done);
  if (llmr_response_id(resp))
    llmr__buf_printf(b, "id %s\n", llmr_response_id(resp));
  if (resp->text.len) {
    llmr__buf_puts(b, "text ");
    put_quoted(b, resp->text.data, resp->text.len);
    llmr__buf_puts(b, "\n");
  }
  if (resp->reasoning.len) {
    llmr__buf_puts(b, "reasoning ");
    put_quoted(b, resp->reasoning.data, resp->reasoning.len);
    llmr__buf_puts(b, "\n");
  }
  if (llmr_response_finish_reason(resp))
    llmr__buf_printf(b, "finish %s\n", llmr_response_finish_reason(resp));
  llmr__buf_printf(
      b, "tokens prompt=%lld completion=%lld total=%lld cached=%lld "
         "cache_write=%lld reasoning=%lld\n",
      (long long)llmr_response_tokens(resp, LLMR_TOKENS_PROMPT),
      (long long)llmr_response_tokens(resp, LLMR_TOKENS_COMPLETION),
      (long long)llmr_response_tokens(resp, LLMR_TOKENS_TOTAL),
      (long long)llmr_response_tokens(resp, LLMR_TOKENS_CACHED),
      (long long)llmr_response_tokens(resp, LLMR_TOKENS_CACHE_WRITE),
      (long long)llmr_response_tokens(resp, LLMR_TOKENS_REASONING));
  for (i = 0; i < llmr_response_tool_call_count(resp); i++) {
    const char *a = llmr_response_tool_call_arguments(resp, i);
    llmr__buf_printf(b, "call %zu id=%s name=%s args=", i,
                     show_id(llmr_response_tool_call_id(resp, i)),
                     llmr_response_tool_call_name(resp, i));
    put_quoted(b, a, strlen(a));
    llmr__buf_puts(b, "\n");
  }
  if (llmr_response_tool_call_count(resp) > 1) {
    size_t j, dup = 0;
    for (i = 0; i < llmr_response_tool_call_count(resp); i++)
      for (j = i + 1; j < llmr_response_tool_call_count(resp); j++)
        dup += strcmp(llmr_response_tool_call_id(resp, i),
                      llmr_response_tool_call_id(resp, j)) == 0;
    llmr__buf_puts(b, dup ? "ids NOT unique\n" : "ids unique\n");
  }
  if (r->st != LLMR_OK) {
    const char *m = llmr_response_error(resp);
    llmr__buf_printf(b, "error type=%s retryable=%d message=",
                     llmr_response_error_type(resp)
                         ? llmr_response_error_type(resp)
                         : "null",
                     llmr_response_retryable(resp));
    put_quoted(b, m ? m : "", m ? strlen(m) : 0);
    llmr__buf_puts(b, "\n");
  }
}

/* The response as JSON, for comparing two of them. */
static char *response_json(llmr_response *resp) {
  resp->status = LLMR_OK;
  resp->created = 1;
  return llmr_response_to_json(resp);
}

/* Feed `data` in the chunks cut[0..ncut) name (offsets, increasing) and
 * return the log (caller frees). *json (when json is not NULL) gets the
 * final response as JSON when the stream completed, else NULL. */
static char *run_split(llmr_provider *p, const char *data, size_t len,
                       const size_t *cuts, size_t ncut, int cancel_at,
                       char **json) {
  llmr__sse_parser sse;
  llmr__sink sink;
  run r;
  size_t i, from = 0;
  memset(&r, 0, sizeof(r));
  memset(&sink, 0, sizeof(sink));
  r.p = p;
  r.cancel_at = cancel_at;
  r.resp = llmr__response_new();
  assert_non_null(r.resp);
  r.state = calloc(1, p->vt->state_size);
  sink.cb = on_event;
  sink.user = &r;
  sink.model = "anthropic/test";
  r.resp->sink = &sink;
  llmr__sse_init(&sse, 0, on_sse, &r);
  for (i = 0; i <= ncut && r.st == LLMR_OK; i++) {
    size_t to = i < ncut ? cuts[i] : len;
    llmr_status fst = llmr__sse_feed(&sse, data + from, to - from);
    if (fst != LLMR_OK && fst != LLMR_E_ABORTED)
      r.st = fst;
    from = to;
  }
  if (r.st == LLMR_OK)
    llmr__sse_finish(&sse);
  r.resp->sink = NULL;
  /* what the router does with a complete answer */
  if (r.st == LLMR_OK && r.resp->stream_done)
    assert_int_equal(llmr__response_finish_calls(r.resp), LLMR_OK);
  summarise(&r);
  if (json)
    *json = r.st == LLMR_OK && r.resp->stream_done ? response_json(r.resp)
                                                   : NULL;
  llmr__sse_free(&sse);
  free(r.state);
  llmr_response_free(r.resp);
  return r.log.data;
}

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

/* ---- fixtures ------------------------------------------------------------ */

typedef struct fixture {
  char name[128];
  char *data;
  size_t len;
  char *expected; /* without the leading comment lines */
  int cancel_at;
  int no_parse_check;
} fixture;

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  llmr__buf b = {0};
  char tmp[4096];
  size_t n;
  if (!f)
    return NULL;
  while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
    llmr__buf_append(&b, tmp, n);
  fclose(f);
  llmr__buf_append(&b, "", 0);
  *len = b.len;
  return b.data;
}

static const char *fixture_dir(void) {
  static char dir[1024];
  const char *root = getenv("LLMR_SRCDIR");
  snprintf(dir, sizeof(dir), "%s/tests/fixtures/anthropic-stream",
           root && *root ? root : ".");
  return dir;
}

static int load(fixture *fx, const char *name) {
  char path[1200];
  char *exp, *line;
  size_t n;
  memset(fx, 0, sizeof(*fx));
  snprintf(fx->name, sizeof(fx->name), "%s", name);
  snprintf(path, sizeof(path), "%s/%s.sse", fixture_dir(), name);
  if (!(fx->data = slurp(path, &fx->len)))
    return -1;
  snprintf(path, sizeof(path), "%s/%s.expected", fixture_dir(), name);
  if (!(exp = slurp(path, &n)))
    return -1;
  line = exp;
  while (strncmp(line, "# ", 2) == 0) {
    sscanf(line, "# cancel_at=%d", &fx->cancel_at);
    if (strncmp(line, "# no_parse_check\n", 17) == 0)
      fx->no_parse_check = 1;
    line = strchr(line, '\n');
    if (!line)
      return -1;
    line++;
  }
  fx->expected = strdup(line);
  free(exp);
  return fx->expected ? 0 : -1;
}

static llmr_provider *provider(void) {
  llmr_provider *p = NULL;
  assert_int_equal(llmr__provider_new("anthropic", &llmr__anthropic_vt,
                                      llmr__builtin_find("anthropic"), NULL,
                                      0, NULL, &p, NULL, 0),
                   LLMR_OK);
  return p;
}

static void check(const fixture *fx, const char *got, const char *how) {
  if (strcmp(got, fx->expected) != 0) {
    fprintf(stderr, "%s (%s):\n--- expected\n%s--- got\n%s", fx->name, how,
            fx->expected, got);
    fail();
  }
}

static void test_fixture(void **state) {
  const fixture *fx = *state;
  llmr_provider *p = provider();
  size_t *cuts = malloc((fx->len + 1) * sizeof(size_t));
  size_t i, k;
  char *got, *json = NULL, how[64];
  unsigned seed = 12345;
  assert_non_null(cuts);

  got = run_split(p, fx->data, fx->len, NULL, 0, fx->cancel_at, &json);
  check(fx, got, "whole");
  free(got);
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
  /* split in two at every offset */
  for (i = 1; i < fx->len; i++) {
    cuts[0] = i;
    got = run_split(p, fx->data, fx->len, cuts, 1, fx->cancel_at, NULL);
    snprintf(how, sizeof(how), "split at %zu", i);
    check(fx, got, how);
    free(got);
  }
  /* byte by byte */
  for (i = 1; i < fx->len; i++)
    cuts[i - 1] = i;
  got = run_split(p, fx->data, fx->len, cuts, fx->len ? fx->len - 1 : 0,
                  fx->cancel_at, NULL);
  check(fx, got, "byte by byte");
  free(got);
  /* random chunks of 1..37 bytes, a few seeds */
  for (k = 0; k < 8; k++) {
    size_t n = 0, at = 0;
    for (;;) {
      seed = seed * 1103515245u + 12345u;
      at += 1 + (seed >> 16) % 37;
      if (at >= fx->len)
        break;
      cuts[n++] = at;
    }
    got = run_split(p, fx->data, fx->len, cuts, n, fx->cancel_at, NULL);
    snprintf(how, sizeof(how), "random chunks, round %zu", k);
    check(fx, got, how);
    free(got);
  }
  free(cuts);
  llmr__provider_free(p);
}

/* ---- beyond the fixtures ------------------------------------------------- */

/* Run a stream given as a string; returns the log (caller frees). */
static char *run_text(const char *stream) {
  llmr_provider *p = provider();
  char *log = run_split(p, stream, strlen(stream), NULL, 0, 0, NULL);
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

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(void) {
  struct CMUnitTest tests[64];
  fixture fxs[48];
  char *names[48];
  size_t n = 0, nt = 0, i;
  DIR *d = opendir(fixture_dir());
  struct dirent *e;
  int rc;
  if (!d) {
    fprintf(stderr, "test_anthropic_stream: no fixtures at %s\n",
            fixture_dir());
    return 1;
  }
  while ((e = readdir(d)) && n < 48) {
    size_t l = strlen(e->d_name);
    if (l > 4 && strcmp(e->d_name + l - 4, ".sse") == 0)
      names[n++] = strndup(e->d_name, l - 4);
  }
  closedir(d);
  qsort(names, n, sizeof(names[0]), cmp_str);
  if (n < 20) {
    fprintf(stderr, "test_anthropic_stream: %zu fixtures (expected >= 20)\n",
            n);
    return 1;
  }
  for (i = 0; i < n; i++) {
    if (load(&fxs[i], names[i]) != 0) {
      fprintf(stderr, "test_anthropic_stream: cannot load %s\n", names[i]);
      return 1;
    }
    tests[nt].name = fxs[i].name;
    tests[nt].test_func = test_fixture;
    tests[nt].setup_func = NULL;
    tests[nt].teardown_func = NULL;
    tests[nt].initial_state = &fxs[i];
    nt++;
  }
  tests[nt++] = (struct CMUnitTest)cmocka_unit_test(test_high_block_index);
  tests[nt++] = (struct CMUnitTest)cmocka_unit_test(test_malformed);
  tests[nt++] = (struct CMUnitTest)cmocka_unit_test(test_vtable);
  rc = _cmocka_run_group_tests("unit/anthropic_stream", tests, nt, NULL, NULL);
  for (i = 0; i < n; i++) {
    free(fxs[i].data);
    free(fxs[i].expected);
    free(names[i]);
  }
  return rc;
}
