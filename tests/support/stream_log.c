/* Helpers for the end-to-end stream tests: see stream_log.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "stream_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

llmr_router *slog_router_new(const char *conf) {
  char err[LLMR_ERRBUF_SIZE] = "";
  llmr_router *r = NULL;
  llmr_status st = llmr_router_new_ex(conf, &r, err, sizeof(err));
  if (st != LLMR_OK)
    fprintf(stderr, "router: %s\n", err);
  assert_int_equal(st, LLMR_OK);
  return r;
}

llmr_router *slog_router_with(const emu *e, const char *extra) {
  char *conf = emu_config(e, extra);
  llmr_router *r = slog_router_new(conf);
  free(conf);
  return r;
}

llmr_request *slog_hello(void) {
  llmr_request *req;
  assert_int_equal(llmr_request_new(&req), LLMR_OK);
  assert_int_equal(llmr_request_add_message(req, LLMR_ROLE_SYSTEM, "Be terse."),
                   LLMR_OK);
  assert_int_equal(llmr_request_add_message(req, LLMR_ROLE_USER, "hello"),
                   LLMR_OK);
  return req;
}

/* ---- an event log -------------------------------------------------------- */

static double slog_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static char *slog_dup(const char *s) { return s ? strdup(s) : NULL; }

int slog_is_content(llmr_event_type t) {
  return t == LLMR_EVENT_TEXT || t == LLMR_EVENT_REASONING ||
         t == LLMR_EVENT_TOOL_CALL;
}

int slog_cb(const llmr_event *ev, void *user) {
  slog *g = user;
  slog_rec *r;
  assert_true(g->n < SLOG_MAX_EV);
  r = &g->ev[g->n++];
  memset(r, 0, sizeof(*r));
  r->type = ev->type;
  r->t_ms = slog_now_ms() - g->t0;
  if (ev->text) {
    assert_int_equal(ev->text[ev->len], '\0');
    r->text = malloc(ev->len + 1);
    memcpy(r->text, ev->text, ev->len + 1);
    r->len = ev->len;
  }
  r->tool_index = ev->tool_index;
  r->tool_id = slog_dup(ev->tool_id);
  r->tool_name = slog_dup(ev->tool_name);
  r->model = slog_dup(ev->model);
  r->finish = slog_dup(ev->finish_reason);
  r->status = ev->status;
  r->http = ev->http_status;
  assert_non_null(ev->response);
  r->completion_tokens =
      llmr_response_tokens(ev->response, LLMR_TOKENS_COMPLETION);
  if (slog_is_content(ev->type) &&
      ++g->content == (size_t)g->cancel_at_content)
    return 1;
  if (ev->type == LLMR_EVENT_ATTEMPT && g->cancel_at_attempt)
    return 1;
  return 0;
}

slog *slog_new(void) {
  slog *g = calloc(1, sizeof(*g));
  assert_non_null(g);
  g->t0 = slog_now_ms();
  return g;
}

void slog_free(slog *g) {
  size_t i;
  for (i = 0; i < g->n; i++) {
    free(g->ev[i].text);
    free(g->ev[i].tool_id);
    free(g->ev[i].tool_name);
    free(g->ev[i].model);
    free(g->ev[i].finish);
  }
  free(g);
}

size_t slog_count(const slog *g, llmr_event_type t) {
  size_t i, n = 0;
  for (i = 0; i < g->n; i++)
    n += g->ev[i].type == t;
  return n;
}

char *slog_joined(const slog *g, llmr_event_type t, size_t idx) {
  size_t i, n = 0;
  char *s = malloc(1);
  s[0] = '\0';
  for (i = 0; i < g->n; i++) {
    const slog_rec *r = &g->ev[i];
    if (r->type != t || (t == LLMR_EVENT_TOOL_CALL && r->tool_index != idx))
      continue;
    s = realloc(s, n + r->len + 1);
    memcpy(s + n, r->text, r->len + 1);
    n += r->len;
  }
  return s;
}

static char *slog_compact(const char *json) {
  cJSON *j = cJSON_Parse(json);
  char *s;
  assert_non_null(j);
  s = cJSON_PrintUnformatted(j);
  cJSON_Delete(j);
  return s;
}

void slog_check_shape(const slog *g, const llmr_response *resp,
                      unsigned flags) {
  size_t i, last_attempt = 0;
  char *s;
  assert_true(g->n >= 3);
  assert_int_equal(g->ev[0].type, LLMR_EVENT_ATTEMPT);
  assert_int_equal(g->ev[g->n - 2].type, LLMR_EVENT_USAGE);
  assert_int_equal(g->ev[g->n - 1].type, LLMR_EVENT_DONE);
  assert_int_equal(slog_count(g, LLMR_EVENT_USAGE), 1);
  assert_int_equal(slog_count(g, LLMR_EVENT_DONE), 1);
  assert_int_equal(slog_count(g, LLMR_EVENT_ERROR), 0);
  for (i = 0; i < g->n; i++)
    if (g->ev[i].type == LLMR_EVENT_ATTEMPT)
      last_attempt = i;
  for (i = 0; i < last_attempt; i++)
    assert_false(slog_is_content(g->ev[i].type));
  if (llmr_response_finish_reason(resp))
    assert_string_equal(g->ev[g->n - 1].finish,
                        llmr_response_finish_reason(resp));
  /* usage is final when USAGE arrives */
  if (flags & SLOG_USAGE_TOKENS)
    assert_true(g->ev[g->n - 2].completion_tokens ==
                llmr_response_tokens(resp, LLMR_TOKENS_COMPLETION));
  assert_string_equal(g->ev[g->n - 1].model, llmr_response_model(resp));
  s = slog_joined(g, LLMR_EVENT_TEXT, 0);
  if (flags & SLOG_JSON_TEXT) {
    char *c = slog_compact(s);
    assert_string_equal(c, llmr_response_text(resp));
    cJSON_free(c);
  } else {
    assert_string_equal(s, llmr_response_text(resp));
  }
  free(s);
  s = slog_joined(g, LLMR_EVENT_REASONING, 0);
  assert_string_equal(s, llmr_response_reasoning(resp));
  free(s);
}

/* ---- comparing final responses ------------------------------------------- */

void slog_strip_volatile(cJSON *j, unsigned flags) {
  cJSON *lr = cJSON_GetObjectItem(j, "llmroute"), *a, *c;
  cJSON_DeleteItemFromObject(j, "id");
  cJSON_DeleteItemFromObject(j, "created");
  cJSON_DeleteItemFromObject(lr, "request_id"); /* one per call */
  cJSON_ArrayForEach(a, cJSON_GetObjectItem(lr, "attempts")) {
    cJSON_DeleteItemFromObject(a, "duration_ms");
    cJSON_DeleteItemFromObject(a, "bytes"); /* wire bytes differ */
  }
  if (!(flags & SLOG_SYNTH_IDS))
    return;
  cJSON_ArrayForEach(
      c, cJSON_GetObjectItem(
             cJSON_GetObjectItem(
                 cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0),
                 "message"),
             "tool_calls")) {
    const cJSON *id = cJSON_GetObjectItem(c, "id");
    if (cJSON_IsString(id) && strncmp(id->valuestring, "call_llmr_", 10) == 0)
      cJSON_ReplaceItemInObject(c, "id", cJSON_CreateString("<synth>"));
  }
}

void slog_assert_same_answer(const llmr_response *a, const llmr_response *b,
                             unsigned flags) {
  char *ja = llmr_response_to_json(a), *jb = llmr_response_to_json(b);
  cJSON *x = cJSON_Parse(ja), *y = cJSON_Parse(jb);
  char *sx, *sy;
  slog_strip_volatile(x, flags);
  slog_strip_volatile(y, flags);
  sx = cJSON_PrintUnformatted(x);
  sy = cJSON_PrintUnformatted(y);
  if (strcmp(sx, sy) != 0)
    fprintf(stderr, "complete: %s\nstream:   %s\n", sx, sy);
  assert_string_equal(sx, sy);
  cJSON_free(sx);
  cJSON_free(sy);
  cJSON_Delete(x);
  cJSON_Delete(y);
  llmr_free(ja);
  llmr_free(jb);
}
