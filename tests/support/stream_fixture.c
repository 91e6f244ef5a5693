/* The offline stream-fixture driver: see stream_fixture.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "stream_fixture.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void sfx_put_quoted(llmr__buf *b, const char *s, size_t n) {
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

static const char *sfx_show_id(const char *id) {
  return strncmp(id, "call_llmr_", 10) == 0 ? "<synth>" : id;
}

/* ---- one run: bytes -> SSE parser -> adapter -> events ------------------ */

static int sfx_on_event(const llmr_event *ev, void *user) {
  sfx_run *r = user;
  switch (ev->type) {
  case LLMR_EVENT_TEXT:
    llmr__buf_puts(&r->log, "text ");
    sfx_put_quoted(&r->log, ev->text, ev->len);
    break;
  case LLMR_EVENT_REASONING:
    llmr__buf_puts(&r->log, "reasoning ");
    sfx_put_quoted(&r->log, ev->text, ev->len);
    break;
  case LLMR_EVENT_TOOL_CALL:
    llmr__buf_printf(&r->log, "tool %zu ", ev->tool_index);
    if (ev->tool_id)
      llmr__buf_printf(&r->log, "id=%s ", sfx_show_id(ev->tool_id));
    if (ev->tool_name)
      llmr__buf_printf(&r->log, "name=%s ", ev->tool_name);
    sfx_put_quoted(&r->log, ev->text, ev->len);
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

int sfx_on_sse(void *user, const llmr__sse_event *ev) {
  sfx_run *r = user;
  llmr_status st = r->p->vt->stream_event(
      r->p, r->state, ev->event_len ? ev->event : "message", ev->data,
      ev->data_len, r->resp);
  if (st == LLMR_OK)
    return 0;
  r->st = st;
  return 1;
}

/* The final response as log lines. */
static void sfx_summarise(const sfx_opts *o, sfx_run *r) {
  llmr_response *resp = r->resp;
  llmr__buf *b = &r->log;
  size_t i;
  llmr__buf_printf(b, "--\nstatus %s\ndone %d\n", llmr_status_name(r->st),
                   (int)resp->stream_done);
  if (llmr_response_id(resp))
    llmr__buf_printf(b, "id %s\n", llmr_response_id(resp));
  if (resp->text.len) {
    llmr__buf_puts(b, "text ");
    sfx_put_quoted(b, resp->text.data, resp->text.len);
    llmr__buf_puts(b, "\n");
  }
  if (resp->reasoning.len) {
    llmr__buf_puts(b, "reasoning ");
    sfx_put_quoted(b, resp->reasoning.data, resp->reasoning.len);
    llmr__buf_puts(b, "\n");
  }
  if (llmr_response_finish_reason(resp))
    llmr__buf_printf(b, "finish %s\n", llmr_response_finish_reason(resp));
  llmr__buf_printf(
      b, "tokens prompt=%lld completion=%lld total=%lld cached=%lld ",
      (long long)llmr_response_tokens(resp, LLMR_TOKENS_PROMPT),
      (long long)llmr_response_tokens(resp, LLMR_TOKENS_COMPLETION),
      (long long)llmr_response_tokens(resp, LLMR_TOKENS_TOTAL),
      (long long)llmr_response_tokens(resp, LLMR_TOKENS_CACHED));
  if (o->flags & SFX_SUM_CACHE_WRITE)
    llmr__buf_printf(
        b, "cache_write=%lld ",
        (long long)llmr_response_tokens(resp, LLMR_TOKENS_CACHE_WRITE));
  llmr__buf_printf(
      b, "reasoning=%lld\n",
      (long long)llmr_response_tokens(resp, LLMR_TOKENS_REASONING));
  for (i = 0; i < llmr_response_tool_call_count(resp); i++) {
    const char *a = llmr_response_tool_call_arguments(resp, i);
    llmr__buf_printf(b, "call %zu id=%s name=%s args=", i,
                     sfx_show_id(llmr_response_tool_call_id(resp, i)),
                     llmr_response_tool_call_name(resp, i));
    sfx_put_quoted(b, a, strlen(a));
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
    llmr__buf_printf(b, "error type=%s retryable=%d ",
                     llmr_response_error_type(resp)
                         ? llmr_response_error_type(resp)
                         : "null",
                     llmr_response_retryable(resp));
    if (o->flags & SFX_SUM_RETRY_AFTER)
      llmr__buf_printf(b, "retry_after=%g ", llmr_response_retry_after(resp));
    llmr__buf_puts(b, "message=");
    sfx_put_quoted(b, m ? m : "", m ? strlen(m) : 0);
    llmr__buf_puts(b, "\n");
  }
}

char *sfx_run_split(const sfx_opts *o, llmr_provider *p, const char *data,
                    size_t len, const size_t *cuts, size_t ncut,
                    int cancel_at, char **final) {
  llmr__sse_parser sse;
  llmr__sink sink;
  sfx_run r;
  size_t i, from = 0;
  memset(&r, 0, sizeof(r));
  memset(&sink, 0, sizeof(sink));
  r.p = p;
  r.cancel_at = cancel_at;
  r.resp = llmr__response_new();
  assert_non_null(r.resp);
  r.state = calloc(1, p->vt->state_size ? p->vt->state_size : 1);
  sink.cb = sfx_on_event;
  sink.user = &r;
  sink.model = o->model;
  r.resp->sink = &sink;
  llmr__sse_init(&sse, 0, sfx_on_sse, &r);
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
  sfx_summarise(o, &r);
  if (final)
    *final = r.st == LLMR_OK && r.resp->stream_done ? o->final_json(r.resp)
                                                     : NULL;
  llmr__sse_free(&sse);
  free(r.state);
  llmr_response_free(r.resp);
  return r.log.data;
}
/* ---- fixtures ------------------------------------------------------------ */

static char *sfx_slurp(const char *path, size_t *len) {
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

const char *sfx_fixture_dir(const char *sub) {
  static char dir[1024];
  const char *root = getenv("LLMR_SRCDIR");
  snprintf(dir, sizeof(dir), "%s/tests/fixtures/%s",
           root && *root ? root : ".", sub);
  return dir;
}

static int sfx_load(sfx_fixture *fx, const char *dir, const char *name) {
  char path[1200];
  char *exp, *line;
  size_t n;
  memset(fx, 0, sizeof(*fx));
  snprintf(fx->name, sizeof(fx->name), "%s", name);
  snprintf(path, sizeof(path), "%s/%s.sse", dir, name);
  if (!(fx->data = sfx_slurp(path, &fx->len)))
    return -1;
  snprintf(path, sizeof(path), "%s/%s.expected", dir, name);
  if (!(exp = sfx_slurp(path, &n)))
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
  snprintf(path, sizeof(path), "%s/%s.json", dir, name);
  fx->json = sfx_slurp(path, &fx->json_len); /* optional */
  return fx->expected ? 0 : -1;
}

static void sfx_check(const sfx_fixture *fx, const char *got,
                      const char *how) {
  if (strcmp(got, fx->expected) != 0) {
    fprintf(stderr, "%s (%s):\n--- expected\n%s--- got\n%s", fx->name, how,
            fx->expected, got);
    fail();
  }
}

void sfx_run_fixture(const sfx_opts *o, llmr_provider *p,
                     const sfx_fixture *fx, char **final) {
  size_t *cuts = malloc((fx->len + 1) * sizeof(size_t));
  size_t i, k;
  char *got, how[64];
  unsigned seed = 12345;
  assert_non_null(cuts);

  got = sfx_run_split(o, p, fx->data, fx->len, NULL, 0, fx->cancel_at, final);
  sfx_check(fx, got, "whole");
  free(got);
  /* split in two at every offset */
  for (i = 1; i < fx->len; i++) {
    cuts[0] = i;
    got = sfx_run_split(o, p, fx->data, fx->len, cuts, 1, fx->cancel_at, NULL);
    snprintf(how, sizeof(how), "split at %zu", i);
    sfx_check(fx, got, how);
    free(got);
  }
  /* byte by byte */
  for (i = 1; i < fx->len; i++)
    cuts[i - 1] = i;
  got = sfx_run_split(o, p, fx->data, fx->len, cuts,
                      fx->len ? fx->len - 1 : 0, fx->cancel_at, NULL);
  sfx_check(fx, got, "byte by byte");
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
    got = sfx_run_split(o, p, fx->data, fx->len, cuts, n, fx->cancel_at, NULL);
    snprintf(how, sizeof(how), "random chunks, round %zu", k);
    sfx_check(fx, got, how);
    free(got);
  }
  free(cuts);
}

static int sfx_cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

int sfx_main(const char *prog, const char *group, const char *sub,
             size_t min_fixtures, CMUnitTestFunction test_fixture,
             const struct CMUnitTest *extra, size_t nextra) {
  struct CMUnitTest tests[64];
  sfx_fixture fxs[48];
  char *names[48];
  char dir[1024];
  size_t n = 0, nt = 0, i;
  DIR *d;
  struct dirent *e;
  int rc;
  snprintf(dir, sizeof(dir), "%s", sfx_fixture_dir(sub));
  if (!(d = opendir(dir))) {
    fprintf(stderr, "%s: no fixtures at %s\n", prog, dir);
    return 1;
  }
  while ((e = readdir(d)) && n < 48) {
    size_t l = strlen(e->d_name);
    if (l > 4 && strcmp(e->d_name + l - 4, ".sse") == 0)
      names[n++] = strndup(e->d_name, l - 4);
  }
  closedir(d);
  qsort(names, n, sizeof(names[0]), sfx_cmp_str);
  if (n < min_fixtures) {
    fprintf(stderr, "%s: %zu fixtures (expected >= %zu)\n", prog, n,
            min_fixtures);
    return 1;
  }
  if (n + nextra > sizeof(tests) / sizeof(tests[0])) {
    fprintf(stderr, "%s: too many tests\n", prog);
    return 1;
  }
  for (i = 0; i < n; i++) {
    if (sfx_load(&fxs[i], dir, names[i]) != 0) {
      fprintf(stderr, "%s: cannot load %s\n", prog, names[i]);
      return 1;
    }
    tests[nt].name = fxs[i].name;
    tests[nt].test_func = test_fixture;
    tests[nt].setup_func = NULL;
    tests[nt].teardown_func = NULL;
    tests[nt].initial_state = &fxs[i];
    nt++;
  }
  for (i = 0; i < nextra; i++)
    tests[nt++] = extra[i];
  rc = _cmocka_run_group_tests(group, tests, nt, NULL, NULL);
  for (i = 0; i < n; i++) {
    free(fxs[i].data);
    free(fxs[i].expected);
    free(fxs[i].json);
    free(names[i]);
  }
  return rc;
}
