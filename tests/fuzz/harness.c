/*
 * Shared libFuzzer harness: see harness.h.
 *
 * SPDX-License-Identifier: MIT
 */
#include "harness.h"

#include "internal.h"
#include "sse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- deterministic choices from the input ------------------------------- */

static uint64_t splitmix(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

void fz_seed(fz_rng *r, const uint8_t *data, size_t size) {
  uint64_t h = 0xcbf29ce484222325ull;
  size_t i;
  for (i = 0; i < size; i++) {
    h ^= data[i];
    h *= 0x100000001b3ull;
  }
  r->s = h ^ size;
}

uint64_t fz_next(fz_rng *r) { return splitmix(&r->s); }

size_t fz_below(fz_rng *r, size_t n) {
  return n ? (size_t)(fz_next(r) % n) : 0;
}

enum { CUT_WHOLE, CUT_BYTES, CUT_SMALL, CUT_LARGE, CUT_MIXED, CUT_STYLES };

void fz_cutter_init(fz_cutter *c, fz_rng *r) {
  c->rng = r;
  c->style = (int)fz_below(r, CUT_STYLES);
}

size_t fz_cut(fz_cutter *c, size_t left) {
  size_t n;
  switch (c->style) {
  case CUT_WHOLE:
    return left;
  case CUT_BYTES:
    n = 1;
    break;
  case CUT_SMALL:
    n = 1 + fz_below(c->rng, 8);
    break;
  case CUT_LARGE:
    n = 1 + fz_below(c->rng, 4096);
    break;
  default: /* mixed: empty feeds, single bytes, anything */
    switch (fz_below(c->rng, 4)) {
    case 0:
      n = 0;
      break;
    case 1:
      n = 1;
      break;
    default:
      n = fz_below(c->rng, left + 1);
      break;
    }
    break;
  }
  return n < left ? n : left;
}

/* ---- the provider under test -------------------------------------------- */

static llmr_provider *provider_for(const char *name) {
  /* one instance per built-in, kept for the process (not a leak: reachable) */
  static struct {
    const char *name;
    llmr_provider *p;
  } cache[8];
  const llmr__builtin *b;
  char err[256];
  size_t i;
  for (i = 0; i < sizeof(cache) / sizeof(cache[0]) && cache[i].name; i++)
    if (strcmp(cache[i].name, name) == 0)
      return cache[i].p;
  if (i == sizeof(cache) / sizeof(cache[0]) || !(b = llmr__builtin_find(name)))
    abort();
  if (llmr__provider_new(name, b->vt, b, NULL, 0, NULL, &cache[i].p, err,
                         sizeof(err)) != LLMR_OK) {
    fprintf(stderr, "fuzz: provider %s: %s\n", name, err);
    abort();
  }
  cache[i].name = name;
  return cache[i].p;
}

static llmr_request *empty_request(void) {
  static llmr_request *req;
  if (!req && (llmr_request_new(&req) != LLMR_OK ||
               llmr_request_add_message(req, LLMR_ROLE_USER, "hi") != LLMR_OK))
    abort();
  return req;
}

/* Read every byte of a string the library handed out, so that ASan sees
 * an out-of-bounds or freed one. */
static volatile unsigned sink_sum;
static void touch(const char *s, size_t n) {
  unsigned sum = 0;
  size_t i;
  for (i = 0; i < n; i++)
    sum += (unsigned char)s[i];
  sink_sum += sum;
}
static void touch_str(const char *s) {
  if (s)
    touch(s, strlen(s) + 1);
}

/* Read the whole response through the public getters and build its
 * OpenAI document, as llmr_complete_json would. */
static void read_response(const llmr_response *resp) {
  size_t i, n;
  cJSON *doc;
  char *txt;
  touch_str(llmr_response_text(resp));
  touch_str(llmr_response_reasoning(resp));
  touch_str(llmr_response_error(resp));
  touch_str(llmr_response_error_type(resp));
  touch_str(llmr_response_finish_reason(resp));
  touch_str(llmr_response_id(resp));
  n = llmr_response_tool_call_count(resp);
  for (i = 0; i < n; i++) {
    touch_str(llmr_response_tool_call_id(resp, i));
    touch_str(llmr_response_tool_call_name(resp, i));
    touch_str(llmr_response_tool_call_arguments(resp, i));
  }
  if ((doc = llmr__response_to_cjson(resp))) {
    if ((txt = cJSON_PrintUnformatted(doc))) {
      touch_str(txt);
      cJSON_free(txt);
    }
    cJSON_Delete(doc);
  }
}

/* ---- 1. the stream decoder behind the SSE parser ------------------------ */

typedef struct run {
  llmr_provider *p;
  llmr_response *resp;
  void *state;
  llmr_status st;
  int events;
  int cancel_at; /* 0: never */
} run;

static int on_event(const llmr_event *ev, void *user) {
  run *r = user;
  if (ev->response != r->resp)
    abort();
  switch (ev->type) {
  case LLMR_EVENT_TEXT:
  case LLMR_EVENT_REASONING:
  case LLMR_EVENT_TOOL_CALL:
    /* len bytes, also NUL-terminated */
    if (!ev->text || ev->text[ev->len] != '\0')
      abort();
    touch(ev->text, ev->len);
    touch_str(ev->tool_id);
    touch_str(ev->tool_name);
    if (ev->type == LLMR_EVENT_TOOL_CALL &&
        ev->tool_index >= llmr_response_tool_call_count(ev->response))
      abort();
    break;
  default:
    break;
  }
  touch_str(llmr_response_text(ev->response));
  return ++r->events == r->cancel_at;
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

static void fuzz_stream(llmr_provider *p, fz_rng *rng, const uint8_t *data,
                        size_t size) {
  llmr__sse_parser sse;
  llmr__sink sink;
  fz_cutter cut;
  run r;
  size_t off = 0, guard = 0;
  llmr_status fst = LLMR_OK;

  memset(&r, 0, sizeof(r));
  memset(&sink, 0, sizeof(sink));
  r.p = p;
  r.cancel_at = fz_below(rng, 4) == 0 ? 1 + (int)fz_below(rng, 8) : 0;
  if (!(r.resp = llmr__response_new()))
    abort();
  /* as the router: zeroed state of state_size bytes, NULL when 0 */
  if (p->vt->state_size && !(r.state = calloc(1, p->vt->state_size)))
    abort();
  sink.cb = on_event;
  sink.user = &r;
  sink.model = "fuzz/model";
  sink.provider = p->name;
  sink.native_model = "model";
  r.resp->sink = &sink;

  llmr__sse_init(&sse, 0, on_sse, &r);
  fz_cutter_init(&cut, rng);
  while (off < size && fst == LLMR_OK) {
    size_t n = fz_cut(&cut, size - off);
    if (n == 0 && ++guard > 64)
      n = 1; /* enough empty feeds */
    fst = llmr__sse_feed(&sse, (const char *)data + off, n);
    off += n;
  }
  if (fst == LLMR_OK)
    fst = llmr__sse_finish(&sse);
  if (fst != LLMR_OK && fst != LLMR_E_ABORTED && r.st == LLMR_OK)
    r.st = fst;
  /* after the sink is gone, as the router does at the end of an attempt */
  r.resp->sink = NULL;
  if (r.st == LLMR_OK && r.resp->stream_done)
    (void)llmr__response_finish_calls(r.resp);
  if (llmr__response_has_content(r.resp))
    llmr__response_estimate_usage(r.resp, empty_request());
  read_response(r.resp);

  llmr__sse_free(&sse);
  free(r.state);
  llmr_response_free(r.resp);
}

/* ---- 2. and 3. the input as a whole body --------------------------------- */

static void set_body(llmr_http_response *h, const uint8_t *data, size_t size) {
  if (llmr__buf_append(&h->body, (const char *)data, size) != 0)
    abort();
}

static void add_header(llmr_http_response *h, const char *line) {
  if (llmr__http_response_add_header(h, line, strlen(line)) != LLMR_OK)
    abort();
}

static void fuzz_parse(llmr_provider *p, fz_rng *rng, const uint8_t *data,
                       size_t size) {
  llmr_http_response h;
  llmr_response *resp;
  llmr_status st;
  memset(&h, 0, sizeof(h));
  h.status = 200 + (long)fz_below(rng, 2); /* 200 or 201 */
  add_header(&h, "content-type: application/json");
  set_body(&h, data, size);
  if (!(resp = llmr__response_new()))
    abort();
  st = p->vt->parse_response(p, &h, resp);
  if (st == LLMR_OK)
    (void)llmr__response_finish_calls(resp);
  llmr__response_estimate_usage(resp, empty_request());
  read_response(resp);
  llmr_response_free(resp);
  llmr__http_response_clear(&h);
}

static const int statuses[] = {400, 401, 402, 403, 404, 408, 409, 413,
                               422, 429, 500, 502, 503, 504, 529, 418};

static void fuzz_classify(llmr_provider *p, fz_rng *rng, const uint8_t *data,
                          size_t size) {
  llmr_http_response h;
  llmr_response *resp;
  char line[128];
  size_t i, n;
  if (!p->vt->classify_error)
    return;
  memset(&h, 0, sizeof(h));
  h.status = statuses[fz_below(rng, sizeof(statuses) / sizeof(statuses[0]))];
  add_header(&h, "content-type: application/json");
  switch (fz_below(rng, 6)) {
  case 0:
    add_header(&h, "retry-after: 7");
    break;
  case 1:
    add_header(&h, "retry-after-ms: 1500");
    add_header(&h, "x-should-retry: false");
    break;
  case 2:
    add_header(&h, "retry-after: Wed, 21 Oct 2015 07:28:00 GMT");
    add_header(&h, "x-should-retry: true");
    break;
  case 3: /* the first line of the input as a Retry-After value */
    n = (size_t)snprintf(line, sizeof(line), "retry-after: ");
    for (i = 0; i < size && n + 1 < sizeof(line) && data[i] != '\n' &&
                data[i] != '\r' && data[i] != '\0';
         i++)
      line[n++] = (char)data[i];
    line[n] = '\0';
    add_header(&h, line);
    break;
  default:
    break;
  }
  set_body(&h, data, size);
  if (!(resp = llmr__response_new()))
    abort();
  (void)p->vt->classify_error(p, &h, resp);
  read_response(resp);
  llmr_response_free(resp);
  llmr__http_response_clear(&h);
}

int fz_provider_run(const char *const *builtins, size_t n_builtins,
                    const uint8_t *data, size_t size) {
  fz_rng rng;
  llmr_provider *p;
  fz_seed(&rng, data, size);
  p = provider_for(builtins[fz_below(&rng, n_builtins)]);
  if (p->vt->stream_event)
    fuzz_stream(p, &rng, data, size);
  fuzz_parse(p, &rng, data, size);
  fuzz_classify(p, &rng, data, size);
  return 0;
}
