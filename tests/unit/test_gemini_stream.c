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
    llmr__buf_printf(b, "error type=%s retryable=%d retry_after=%g message=",
                     llmr_response_error_type(resp)
                         ? llmr_response_error_type(resp)
                         : "null",
                     llmr_response_retryable(resp),
                     llmr_response_retry_after(resp));
    put_quoted(b, m ? m : "", m ? strlen(m) : 0);
    llmr__buf_puts(b, "\n");
  }
}

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

/* Feed `data` in the chunks cut[0..ncut) name (offsets, increasing) and
 * return the log (caller frees). With `final`, a complete answer is also
 * returned as comparable() JSON (NULL when the stream did not complete). */
static char *run_split(llmr_provider *p, const char *data, size_t len,
                       const size_t *cuts, size_t ncut, int cancel_at,
                       char **final) {
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
  sink.model = "google/test";
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
  if (final)
    *final = r.st == LLMR_OK && r.resp->stream_done ? comparable(r.resp)
                                                     : NULL;
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
  char *json;     /* the same answer as one generateContent body, or NULL */
  size_t json_len;
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
  snprintf(dir, sizeof(dir), "%s/tests/fixtures/gemini-stream",
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
  snprintf(path, sizeof(path), "%s/%s.json", fixture_dir(), name);
  fx->json = slurp(path, &fx->json_len); /* optional */
  return fx->expected ? 0 : -1;
}

static llmr_provider *provider(void) {
  llmr_provider *p = NULL;
  assert_int_equal(llmr__provider_new("google", &llmr__gemini_vt,
                                      llmr__builtin_find("google"), NULL, 0,
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
  char *got, *final = NULL, how[64];
  unsigned seed = 12345;
  assert_non_null(cuts);

  got = run_split(p, fx->data, fx->len, NULL, 0, fx->cancel_at, &final);
  check(fx, got, "whole");
  free(got);
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
  free(cuts);
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
    fprintf(stderr, "test_gemini_stream: no fixtures at %s\n", fixture_dir());
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
    fprintf(stderr, "test_gemini_stream: %zu fixtures (expected >= 15)\n", n);
    return 1;
  }
  for (i = 0; i < n; i++) {
    if (load(&fxs[i], names[i]) != 0) {
      fprintf(stderr, "test_gemini_stream: cannot load %s\n", names[i]);
      return 1;
    }
    tests[nt].name = fxs[i].name;
    tests[nt].test_func = test_fixture;
    tests[nt].setup_func = NULL;
    tests[nt].teardown_func = NULL;
    tests[nt].initial_state = &fxs[i];
    nt++;
  }
  tests[nt++] = (struct CMUnitTest)cmocka_unit_test(test_finish_rules);
  tests[nt++] = (struct CMUnitTest)cmocka_unit_test(test_malformed_chunks);
  rc = _cmocka_run_group_tests("unit/gemini_stream", tests, nt, NULL, NULL);
  for (i = 0; i < n; i++) {
    free(fxs[i].data);
    free(fxs[i].expected);
    free(fxs[i].json);
    free(names[i]);
  }
  return rc;
}

