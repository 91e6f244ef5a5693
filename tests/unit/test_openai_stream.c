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
    /* the delta is NUL-terminated */
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
         "reasoning=%lld\n",
      (long long)llmr_response_tokens(resp, LLMR_TOKENS_PROMPT),
      (long long)llmr_response_tokens(resp, LLMR_TOKENS_COMPLETION),
      (long long)llmr_response_tokens(resp, LLMR_TOKENS_TOTAL),
      (long long)llmr_response_tokens(resp, LLMR_TOKENS_CACHED),
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

/* Feed `data` in the chunks cut[0..ncut) name (offsets, increasing) and
 * return the log (caller frees). */
static char *run_split(llmr_provider *p, const char *data, size_t len,
                       const size_t *cuts, size_t ncut, int cancel_at) {
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
  r.state = calloc(1, p->vt->state_size ? p->vt->state_size : 1);
  sink.cb = on_event;
  sink.user = &r;
  sink.model = "openai/test";
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
  llmr__sse_free(&sse);
  free(r.state);
  llmr_response_free(r.resp);
  return r.log.data;
}

/* ---- fixtures ------------------------------------------------------------ */

typedef struct fixture {
  char name[128];
  char *data;
  size_t len;
  char *expected; /* without the leading comment lines */
  int cancel_at;
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
  snprintf(dir, sizeof(dir), "%s/tests/fixtures/openai-stream",
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
  assert_int_equal(llmr__provider_new("openai", &llmr__openai_vt,
                                      llmr__builtin_find("openai"), NULL, 0,
                                      NULL, &p, NULL, 0),
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
  char *got, how[64];
  unsigned seed = 12345;
  assert_non_null(cuts);

  got = run_split(p, fx->data, fx->len, NULL, 0, fx->cancel_at);
  check(fx, got, "whole");
  free(got);
  /* split in two at every offset */
  for (i = 1; i < fx->len; i++) {
    cuts[0] = i;
    got = run_split(p, fx->data, fx->len, cuts, 1, fx->cancel_at);
    snprintf(how, sizeof(how), "split at %zu", i);
    check(fx, got, how);
    free(got);
  }
  /* byte by byte */
  for (i = 1; i < fx->len; i++)
    cuts[i - 1] = i;
  got = run_split(p, fx->data, fx->len, cuts, fx->len ? fx->len - 1 : 0,
                  fx->cancel_at);
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
    got = run_split(p, fx->data, fx->len, cuts, n, fx->cancel_at);
    snprintf(how, sizeof(how), "random chunks, round %zu", k);
    check(fx, got, how);
    free(got);
  }
  free(cuts);
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
  run r;
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
  llmr__sse_init(&sse, 0, on_sse, &r);
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
    fprintf(stderr, "test_openai_stream: no fixtures at %s\n", fixture_dir());
    return 1;
  }
  while ((e = readdir(d)) && n < 48) {
    size_t l = strlen(e->d_name);
    if (l > 4 && strcmp(e->d_name + l - 4, ".sse") == 0)
      names[n++] = strndup(e->d_name, l - 4);
  }
  closedir(d);
  qsort(names, n, sizeof(names[0]), cmp_str);
  if (n < 15) {
    fprintf(stderr, "test_openai_stream: %zu fixtures (expected >= 15)\n", n);
    return 1;
  }
  for (i = 0; i < n; i++) {
    if (load(&fxs[i], names[i]) != 0) {
      fprintf(stderr, "test_openai_stream: cannot load %s\n", names[i]);
      return 1;
    }
    tests[nt].name = fxs[i].name;
    tests[nt].test_func = test_fixture;
    tests[nt].setup_func = NULL;
    tests[nt].teardown_func = NULL;
    tests[nt].initial_state = &fxs[i];
    nt++;
  }
  tests[nt++] = (struct CMUnitTest)cmocka_unit_test(test_stream_equals_parse);
  tests[nt++] = (struct CMUnitTest)cmocka_unit_test(test_tool_call_delta_rules);
  tests[nt++] = (struct CMUnitTest)cmocka_unit_test(test_usage_estimate);
  rc = _cmocka_run_group_tests("unit/openai_stream", tests, nt, NULL, NULL);
  for (i = 0; i < n; i++) {
    free(fxs[i].data);
    free(fxs[i].expected);
    free(names[i]);
  }
  return rc;
}
