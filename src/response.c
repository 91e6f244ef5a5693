/*
 * The response object: what one call produced (answer or error), who
 * answered, and the attempt trace. Setters serve the adapters; getters the
 * application; to_cjson the JSON API and the CLI.
 */
#include "internal.h"
#include "jscan.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#define LLMR__N_TOKENS 6

/* ---- the response's arena -----------------------------------------------
 * The small strings of a response (who answered, the id, the finish
 * reason, the error, the names in the trace: about eight a call) come
 * from the struct's own arena while it has room, else the heap, so a
 * plain call allocates none of them. The arena is never compacted: a
 * string replaced in it stays until llmr_response_free, which keeps the
 * getters' pointers valid at least as long as before and bounds the waste
 * by the arena's size. */

static int in_arena(const llmr_response *r, const void *p) {
  return llmr__in_arena(r->arena, sizeof(r->arena), p);
}

static char *arena_strndup(llmr_response *r, const char *s, size_t n) {
  char *d = llmr__arena_take(r->arena, sizeof(r->arena), &r->arena_used,
                             n + 1);
  if (!d)
    return NULL;
  memcpy(d, s, n);
  d[n] = '\0';
  return d;
}

/* NULL for a NULL s (as llmr__strdup). */
static char *arena_strdup(llmr_response *r, const char *s) {
  return s ? arena_strndup(r, s, strlen(s)) : NULL;
}

static void arena_free(const llmr_response *r, char *p) {
  if (p && !in_arena(r, p))
    llmr__free(p);
}

llmr_response *llmr__response_new(void) {
  llmr_response *r = llmr__malloc(sizeof(*r));
  int i;
  if (!r)
    return NULL;
  /* the inline attempts and the arena need no zeroing */
  memset(r, 0, offsetof(llmr_response, inline_attempts));
  for (i = 0; i < LLMR__N_TOKENS; i++)
    r->tokens[i] = -1;
  r->retry_after_s = -1;
  r->status = LLMR_E_ALL_FAILED;
  r->attempts = r->inline_attempts;
  r->cap_attempts = LLMR__RESPONSE_INLINE_ATTEMPTS;
  return r;
}

static void tool_calls_clear(llmr_response *r) {
  size_t i;
  for (i = 0; i < r->n_tool_calls; i++) {
    llmr__free(r->tool_calls[i].id);
    llmr__free(r->tool_calls[i].name);
    llmr__buf_free(&r->tool_calls[i].args);
  }
  r->n_tool_calls = 0;
}

static void clear_str(const llmr_response *r, char **s) {
  arena_free(r, *s);
  *s = NULL;
}

void llmr__response_reset_attempt(llmr_response *r) {
  int i;
  llmr__buf_reset(&r->text);
  llmr__buf_reset(&r->reasoning);
  tool_calls_clear(r);
  clear_str(r, &r->finish_reason);
  clear_str(r, &r->id);
  clear_str(r, &r->error);
  clear_str(r, &r->error_type);
  for (i = 0; i < LLMR__N_TOKENS; i++)
    r->tokens[i] = -1;
  r->http_status = 0;
  r->retryable = 0;
  r->retry_after_s = -1;
  r->stream_done = 0;
  r->usage_estimated = 0;
  /* warnings describe the request sent to the provider that answers */
  while (r->n_warnings > 0)
    llmr__free(r->warnings[--r->n_warnings]);
}

LLMR_API void llmr_response_free(llmr_response *r) {
  size_t i;
  if (!r)
    return;
  /* the arena goes with the struct: only heap strings and buffers are
   * freed one by one (and no free(NULL) for what a plain answer lacks) */
  if (r->text.data)
    llmr__buf_free(&r->text);
  if (r->reasoning.data)
    llmr__buf_free(&r->reasoning);
  if (r->tool_calls) {
    tool_calls_clear(r);
    llmr__free(r->tool_calls);
  }
  arena_free(r, r->finish_reason);
  arena_free(r, r->id);
  arena_free(r, r->error);
  arena_free(r, r->error_type);
  arena_free(r, r->model);
  arena_free(r, r->provider);
  arena_free(r, r->native_model);
  if (r->warnings) {
    for (i = 0; i < r->n_warnings; i++)
      llmr__free(r->warnings[i]);
    llmr__free(r->warnings);
  }
  for (i = 0; i < r->n_attempts; i++) {
    arena_free(r, r->attempts[i].model);
    arena_free(r, r->attempts[i].provider);
    arena_free(r, r->attempts[i].error);
  }
  if (r->attempts != r->inline_attempts)
    llmr__free(r->attempts);
  llmr__free(r);
}

#define SWAP(T, a, b)                                                          \
  do {                                                                         \
    T tmp_ = (a);                                                              \
    (a) = (b);                                                                 \
    (b) = tmp_;                                                                \
  } while (0)

/* A string dst took over from src: copied out of src's arena into dst's
 * (or the heap), since src's arena goes when src is freed. */
static int rehome(llmr_response *dst, const llmr_response *src, char **s) {
  if (!*s || !in_arena(src, *s))
    return 0;
  return (*s = arena_strdup(dst, *s)) ? 0 : -1;
}

llmr_status llmr__response_move_attempt(llmr_response *dst,
                                        llmr_response *src) {
  int i, bad;
  unsigned f;
  llmr__response_reset_attempt(dst);
  SWAP(llmr__buf, dst->text, src->text);
  SWAP(llmr__buf, dst->reasoning, src->reasoning);
  SWAP(char *, dst->finish_reason, src->finish_reason);
  for (i = 0; i < LLMR__N_TOKENS; i++)
    SWAP(int64_t, dst->tokens[i], src->tokens[i]);
  SWAP(llmr__out_call *, dst->tool_calls, src->tool_calls);
  SWAP(size_t, dst->n_tool_calls, src->n_tool_calls);
  SWAP(size_t, dst->cap_tool_calls, src->cap_tool_calls);
  SWAP(char *, dst->id, src->id);
  SWAP(int64_t, dst->created, src->created);
  SWAP(char *, dst->error, src->error);
  SWAP(char *, dst->error_type, src->error_type);
  SWAP(int, dst->http_status, src->http_status);
  SWAP(int, dst->retryable, src->retryable);
  SWAP(double, dst->retry_after_s, src->retry_after_s);
  SWAP(char **, dst->warnings, src->warnings);
  SWAP(size_t, dst->n_warnings, src->n_warnings);
  SWAP(size_t, dst->cap_warnings, src->cap_warnings);
  f = dst->stream_done;
  dst->stream_done = src->stream_done;
  src->stream_done = f & 1u;
  f = dst->usage_estimated;
  dst->usage_estimated = src->usage_estimated;
  src->usage_estimated = f & 1u;
  /* src got dst's reset state (no strings); dst's may sit in src's arena */
  bad = rehome(dst, src, &dst->finish_reason);
  bad |= rehome(dst, src, &dst->id);
  bad |= rehome(dst, src, &dst->error);
  bad |= rehome(dst, src, &dst->error_type);
  return bad ? LLMR_E_NOMEM : LLMR_OK;
}

llmr_status llmr__response_add_attempt(llmr_response *r,
                                       const llmr__attempt *a) {
  llmr__attempt *d;
  if (llmr__grow_inline((void **)&r->attempts, &r->cap_attempts,
                        r->n_attempts, sizeof(*r->attempts),
                        r->inline_attempts) != 0)
    return LLMR_E_NOMEM;
  d = &r->attempts[r->n_attempts];
  *d = *a;
  d->model = arena_strdup(r, a->model);
  d->provider = arena_strdup(r, a->provider);
  d->error = arena_strdup(r, a->error);
  if ((a->model && !d->model) || (a->provider && !d->provider) ||
      (a->error && !d->error)) {
    arena_free(r, d->model);
    arena_free(r, d->provider);
    arena_free(r, d->error);
    return LLMR_E_NOMEM;
  }
  r->n_attempts++;
  return LLMR_OK;
}

/* Replace *slot with a copy of v (NULL clears it). The same text again
 * keeps the copy there is: a stream may repeat its id on every chunk, and
 * each copy would take arena room until the response is freed. */
static llmr_status set_str(llmr_response *r, char **slot, const char *v) {
  char *d = NULL;
  if (v && *slot && strcmp(*slot, v) == 0)
    return LLMR_OK;
  if (v && !(d = arena_strdup(r, v)))
    return LLMR_E_NOMEM;
  arena_free(r, *slot);
  *slot = d;
  return LLMR_OK;
}

llmr_status llmr__response_set_answered(llmr_response *r, const char *slug,
                                        const char *provider,
                                        const char *native_model) {
  if (set_str(r, &r->model, slug) != LLMR_OK ||
      set_str(r, &r->provider, provider) != LLMR_OK ||
      set_str(r, &r->native_model, native_model) != LLMR_OK)
    return LLMR_E_NOMEM;
  return LLMR_OK;
}

/* ---- setters for adapters ----------------------------------------------- */

/* ---- the streaming sink ------------------------------------------------- */

static int is_content(llmr_event_type t) {
  return t == LLMR_EVENT_TEXT || t == LLMR_EVENT_REASONING ||
         t == LLMR_EVENT_TOOL_CALL;
}

llmr_status llmr__emit(llmr_response *r, llmr_event *ev) {
  llmr__sink *s = r->sink;
  if (!s)
    return LLMR_OK;
  if (s->cancelled)
    return LLMR_E_ABORTED;
  if (!s->cb)
    return LLMR_OK;
  ev->model = s->model;
  ev->provider = s->provider;
  ev->native_model = s->native_model;
  ev->response = r;
  if (is_content(ev->type) && !s->content_started) {
    s->content_started = 1; /* set first: it reached the callback */
    s->first_content_ms = llmr__now_ms();
  }
  if (s->cb(ev, s->user) == 0)
    return LLMR_OK;
  /* after USAGE, DONE or ERROR there is nothing left to cancel */
  if (ev->type == LLMR_EVENT_USAGE || ev->type == LLMR_EVENT_DONE ||
      ev->type == LLMR_EVENT_ERROR)
    return LLMR_OK;
  s->cancelled = 1;
  llmr_response_set_error(r, LLMR_E_ABORTED, NULL,
                          "cancelled by the stream callback", 0, -1);
  return LLMR_E_ABORTED;
}

/* A delta appended at offset `at` of b: deliver it (NUL-terminated by b). */
static llmr_status emit_delta(llmr_response *r, llmr_event_type type,
                              const llmr__buf *b, size_t at) {
  llmr_event ev;
  if (!r->sink || b->len == at)
    return LLMR_OK;
  memset(&ev, 0, sizeof(ev));
  ev.type = type;
  ev.text = b->data + at;
  ev.len = b->len - at;
  return llmr__emit(r, &ev);
}

static int cancelled(const llmr_response *r) {
  return r->sink && r->sink->cancelled;
}

/* ---- setters for adapters ----------------------------------------------- */

LLMR_API llmr_status llmr_response_append_text(llmr_response *r,
                                               const char *text, size_t len) {
  size_t at;
  if (!r || (!text && len))
    return LLMR_E_INVAL;
  if (cancelled(r))
    return LLMR_E_ABORTED;
  at = r->text.len;
  if (llmr__buf_append(&r->text, text ? text : "", len) != 0)
    return LLMR_E_NOMEM;
  return emit_delta(r, LLMR_EVENT_TEXT, &r->text, at);
}

/* A JSON string's value (still escaped in the body) appended to the text
 * or the reasoning: the adapters' fast path decodes it in place instead
 * of through a cJSON copy. Same contract as the two setters. */
llmr_status llmr__response_append_span(llmr_response *r, int reasoning,
                                       const llmr__span *sp) {
  llmr__buf *b = reasoning ? &r->reasoning : &r->text;
  size_t at;
  if (cancelled(r))
    return LLMR_E_ABORTED;
  at = b->len;
  if (llmr__span_append(b, sp) != 0)
    return LLMR_E_NOMEM;
  return emit_delta(r, reasoning ? LLMR_EVENT_REASONING : LLMR_EVENT_TEXT, b,
                    at);
}

LLMR_API llmr_status llmr_response_append_reasoning(llmr_response *r,
                                                    const char *text,
                                                    size_t len) {
  size_t at;
  if (!r || (!text && len))
    return LLMR_E_INVAL;
  if (cancelled(r))
    return LLMR_E_ABORTED;
  at = r->reasoning.len;
  if (llmr__buf_append(&r->reasoning, text ? text : "", len) != 0)
    return LLMR_E_NOMEM;
  return emit_delta(r, LLMR_EVENT_REASONING, &r->reasoning, at);
}

/* Index value of calls added whole: never matched by a delta. */
#define WHOLE_CALL ((size_t)-1)

/* Append a zeroed call; NULL on OOM. */
static llmr__out_call *new_call(llmr_response *r) {
  llmr__out_call *c;
  if (llmr__grow((void **)&r->tool_calls, &r->cap_tool_calls,
                 r->n_tool_calls + 1, sizeof(*r->tool_calls)) != 0)
    return NULL;
  c = &r->tool_calls[r->n_tool_calls];
  memset(c, 0, sizeof(*c));
  return c;
}

static void call_free(llmr__out_call *c) {
  llmr__free(c->id);
  llmr__free(c->name);
  llmr__buf_free(&c->args);
}

/* The first TOOL_CALL event of call i: id, name and the arguments so far;
 * later ones: the fragment appended at `at`. */
static llmr_status emit_call(llmr_response *r, size_t i, size_t at) {
  llmr__out_call *c = &r->tool_calls[i];
  llmr_event ev;
  if (!r->sink)
    return LLMR_OK;
  memset(&ev, 0, sizeof(ev));
  ev.type = LLMR_EVENT_TOOL_CALL;
  ev.tool_index = i;
  if (!c->announced) {
    if (!*c->name) /* wait for the name: the first event carries it */
      return LLMR_OK;
    c->announced = 1;
    ev.tool_id = c->id;
    ev.tool_name = c->name;
    at = 0;
  } else if (c->args.len == at) {
    return LLMR_OK;
  }
  ev.text = llmr__buf_str(&c->args) + at;
  ev.len = c->args.len - at;
  return llmr__emit(r, &ev);
}

LLMR_API llmr_status llmr_response_add_tool_call(llmr_response *r,
                                                 const char *id,
                                                 const char *name,
                                                 const char *args) {
  llmr__out_call *c;
  if (!r || !name)
    return LLMR_E_INVAL;
  if (cancelled(r))
    return LLMR_E_ABORTED;
  if (!(c = new_call(r)))
    return LLMR_E_NOMEM;
  c->index = WHOLE_CALL;
  c->id = llmr__strdup(id ? id : "");
  c->name = llmr__strdup(name);
  if (!c->id || !c->name || llmr__buf_puts(&c->args, args ? args : "{}")) {
    call_free(c);
    return LLMR_E_NOMEM;
  }
  r->n_tool_calls++;
  return emit_call(r, r->n_tool_calls - 1, 0);
}

LLMR_API llmr_status llmr_response_tool_call_delta(llmr_response *r,
                                                   size_t index,
                                                   const char *id,
                                                   const char *name,
                                                   const char *args,
                                                   size_t len) {
  llmr__out_call *c = NULL;
  size_t i, at;
  if (!r || (!args && len) || index == WHOLE_CALL)
    return LLMR_E_INVAL;
  if (cancelled(r))
    return LLMR_E_ABORTED;
  if (id && !*id)
    id = NULL;
  if (name && !*name)
    name = NULL;
  /* the latest call under this index */
  for (i = r->n_tool_calls; i-- > 0;)
    if (r->tool_calls[i].index == index) {
      c = &r->tool_calls[i];
      break;
    }
  /* some hosts number every call 0: another id means another call */
  if (c && id && !c->id_synth && strcmp(c->id, id) != 0)
    c = NULL;
  if (!c) {
    char synth[64];
    if (!(c = new_call(r)))
      return LLMR_E_NOMEM;
    c->index = index;
    if (!id) {
      llmr__synth_call_id(synth, sizeof(synth));
      c->id_synth = 1;
    }
    c->id = llmr__strdup(id ? id : synth);
    c->name = llmr__strdup(name ? name : "");
    if (!c->id || !c->name || llmr__buf_append(&c->args, "", 0)) {
      call_free(c);
      return LLMR_E_NOMEM;
    }
    i = r->n_tool_calls++;
  } else {
    i = (size_t)(c - r->tool_calls);
    /* id and name may come once, on any fragment */
    if (id && c->id_synth) {
      char *d = llmr__strdup(id);
      if (!d)
        return LLMR_E_NOMEM;
      llmr__free(c->id);
      c->id = d;
      c->id_synth = 0;
    }
    if (name && !*c->name) {
      char *d = llmr__strdup(name);
      if (!d)
        return LLMR_E_NOMEM;
      llmr__free(c->name);
      c->name = d;
    }
  }
  at = c->args.len;
  if (len && llmr__buf_append(&c->args, args, len))
    return LLMR_E_NOMEM;
  return emit_call(r, i, at);
}

LLMR_API llmr_status llmr_response_stream_done(llmr_response *r) {
  if (!r)
    return LLMR_E_INVAL;
  r->stream_done = 1;
  return LLMR_OK;
}

llmr_status llmr__response_finish_calls(llmr_response *r) {
  size_t i;
  for (i = 0; i < r->n_tool_calls; i++) {
    llmr__out_call *c = &r->tool_calls[i];
    if (c->index != WHOLE_CALL && !*c->name)
      return llmr_response_set_error(r, LLMR_E_PROTOCOL, NULL,
                                     "streamed tool call without a function "
                                     "name",
                                     0, -1) == LLMR_OK
                 ? LLMR_E_PROTOCOL
                 : LLMR_E_NOMEM;
    if (c->args.len == 0 && llmr__buf_puts(&c->args, "{}") != 0)
      return LLMR_E_NOMEM;
  }
  return LLMR_OK;
}

int llmr__response_has_content(const llmr_response *r) {
  return r->text.len || r->reasoning.len || r->n_tool_calls;
}

size_t llmr__utf8_chars(const char *s, size_t n) {
  size_t i, k = 0;
  for (i = 0; i < n; i++)
    if (((unsigned char)s[i] & 0xC0) != 0x80)
      k++;
  return k;
}

static size_t str_chars(const char *s) {
  return s ? llmr__utf8_chars(s, strlen(s)) : 0;
}

static size_t request_chars(const llmr_request *req) {
  size_t i, k, n = 0;
  const cJSON *part;
  for (i = 0; req && i < req->n_messages; i++) {
    const llmr__message *m = &req->messages[i];
    n += str_chars(m->content);
    cJSON_ArrayForEach(part, m->parts) n +=
        str_chars(llmr__json_str(part, "text"));
    for (k = 0; k < m->n_tool_calls; k++)
      n += str_chars(m->tool_calls[k].name) +
           str_chars(m->tool_calls[k].arguments);
  }
  return n;
}

static int64_t tokens_of(size_t chars) { return (int64_t)((chars + 3) / 4); }

int64_t llmr__request_prompt_estimate(const llmr_request *req) {
  return tokens_of(request_chars(req));
}

void llmr__response_estimate_usage(llmr_response *r,
                                   const llmr_request *req) {
  size_t i, out = 0;
  if (r->tokens[LLMR_TOKENS_PROMPT] >= 0 &&
      r->tokens[LLMR_TOKENS_COMPLETION] >= 0)
    return;
  if (r->tokens[LLMR_TOKENS_PROMPT] < 0)
    r->tokens[LLMR_TOKENS_PROMPT] = tokens_of(request_chars(req));
  if (r->tokens[LLMR_TOKENS_COMPLETION] < 0) {
    size_t reasoning = llmr__utf8_chars(llmr__buf_str(&r->reasoning),
                                        r->reasoning.len);
    out = llmr__utf8_chars(llmr__buf_str(&r->text), r->text.len) + reasoning;
    for (i = 0; i < r->n_tool_calls; i++)
      out += str_chars(r->tool_calls[i].name) +
             llmr__utf8_chars(llmr__buf_str(&r->tool_calls[i].args),
                              r->tool_calls[i].args.len);
    r->tokens[LLMR_TOKENS_COMPLETION] = tokens_of(out);
    if (r->tokens[LLMR_TOKENS_REASONING] < 0)
      r->tokens[LLMR_TOKENS_REASONING] = tokens_of(reasoning);
  }
  if (r->tokens[LLMR_TOKENS_CACHED] < 0)
    r->tokens[LLMR_TOKENS_CACHED] = 0;
  r->tokens[LLMR_TOKENS_TOTAL] =
      r->tokens[LLMR_TOKENS_PROMPT] + r->tokens[LLMR_TOKENS_COMPLETION];
  r->usage_estimated = 1;
}

llmr_status llmr__stream_error(llmr_response *resp, const cJSON *body) {
  static const char *const retry_types[] = {
      "server_error",       "api_error",   "overloaded_error",
      "rate_limit_error",   "INTERNAL",    "UNAVAILABLE",
      "RESOURCE_EXHAUSTED", "DEADLINE_EXCEEDED", NULL};
  const cJSON *err = cJSON_GetObjectItemCaseSensitive(body, "error");
  const cJSON *num;
  const char *msg = NULL, *type = NULL, *code = NULL;
  llmr_status st = LLMR_E_PROVIDER;
  int retryable = 0;
  size_t i;
  llmr__error_fields(body, &msg, &type, &code);
  num = cJSON_GetObjectItemCaseSensitive(cJSON_IsObject(err) ? err : body,
                                         "code");
  /* the error's own type first (it is the more precise), then an
   * HTTP-like numeric code (OpenRouter sends only that) */
  if (llmr__contains(type, "rate_limit") || llmr__contains(code, "rate_limit") ||
      llmr__contains(type, "RESOURCE_EXHAUSTED"))
    st = LLMR_E_RATE_LIMITED;
  else if (llmr__contains(type, "overloaded") || llmr__contains(type, "UNAVAILABLE"))
    st = LLMR_E_OVERLOADED;
  else if (llmr__contains(type, "context_length") || llmr__contains(code, "context_length"))
    st = LLMR_E_CONTEXT_LENGTH;
  else if (llmr__contains(type, "content_filter") || llmr__contains(code, "content_filter") ||
           llmr__contains(code, "content_policy"))
    st = LLMR_E_CONTENT_FILTER;
  else if (llmr__contains(type, "insufficient_quota") ||
           llmr__contains(code, "insufficient_quota"))
    st = LLMR_E_PAYMENT;
  else if (llmr__contains(type, "DEADLINE_EXCEEDED") || llmr__contains(type, "timeout"))
    st = LLMR_E_TIMEOUT;
  else if (llmr__contains(type, "server_error") || llmr__contains(type, "api_error") ||
           llmr__contains(type, "INTERNAL"))
    st = LLMR_E_SERVER;
  else if (cJSON_IsNumber(num) && num->valuedouble >= 400 &&
           num->valuedouble < 600)
    st = llmr_status_from_http((int)num->valuedouble);
  for (i = 0; type && retry_types[i]; i++)
    if (strcmp(type, retry_types[i]) == 0)
      retryable = 1;
  if (st == LLMR_OK)
    st = LLMR_E_PROVIDER;
  if (llmr_response_set_error(
          resp, st, type,
          msg ? msg : "the provider reported an error inside the stream",
          retryable, -1) != LLMR_OK)
    return LLMR_E_NOMEM;
  return st;
}

LLMR_API llmr_status llmr_response_set_finish_reason(llmr_response *r,
                                                     const char *reason) {
  return r ? set_str(r, &r->finish_reason, reason) : LLMR_E_INVAL;
}

LLMR_API llmr_status llmr_response_set_tokens(llmr_response *r,
                                              llmr_tokens kind, int64_t n) {
  if (!r || (unsigned)kind >= LLMR__N_TOKENS || n < -1)
    return LLMR_E_INVAL;
  r->tokens[kind] = n;
  return LLMR_OK;
}

LLMR_API llmr_status llmr_response_set_id(llmr_response *r, const char *id) {
  return r ? set_str(r, &r->id, id) : LLMR_E_INVAL;
}

LLMR_API llmr_status llmr_response_add_warning(llmr_response *r,
                                               const char *warning) {
  char *d;
  if (!r || !warning)
    return LLMR_E_INVAL;
  if (llmr__grow((void **)&r->warnings, &r->cap_warnings, r->n_warnings + 1,
                 sizeof(*r->warnings)) != 0 ||
      !(d = llmr__strdup(warning)))
    return LLMR_E_NOMEM;
  r->warnings[r->n_warnings++] = d;
  return LLMR_OK;
}

LLMR_API llmr_status llmr_response_set_error(llmr_response *r,
                                             llmr_status status,
                                             const char *type,
                                             const char *message,
                                             int retryable,
                                             double retry_after_s) {
  if (!r || status == LLMR_OK)
    return LLMR_E_INVAL;
  r->status = status;
  r->retryable = retryable != 0;
  r->retry_after_s = retry_after_s >= 0 ? retry_after_s : -1;
  if (set_str(r, &r->error_type, type) != LLMR_OK ||
      set_str(r, &r->error, message ? message : llmr_status_str(status)) !=
          LLMR_OK)
    return LLMR_E_NOMEM;
  return LLMR_OK;
}

/* ---- getters ------------------------------------------------------------ */

LLMR_API llmr_status llmr_response_status(const llmr_response *r) {
  return r ? r->status : LLMR_E_INVAL;
}

LLMR_API const char *llmr_response_text(const llmr_response *r) {
  return r ? llmr__buf_str(&r->text) : "";
}

LLMR_API const char *llmr_response_reasoning(const llmr_response *r) {
  return r ? llmr__buf_str(&r->reasoning) : "";
}

LLMR_API const char *llmr_response_finish_reason(const llmr_response *r) {
  return r ? r->finish_reason : NULL;
}

LLMR_API int64_t llmr_response_tokens(const llmr_response *r,
                                      llmr_tokens kind) {
  if (!r || (unsigned)kind >= LLMR__N_TOKENS)
    return -1;
  return r->tokens[kind];
}

LLMR_API size_t llmr_response_tool_call_count(const llmr_response *r) {
  return r ? r->n_tool_calls : 0;
}

LLMR_API const char *llmr_response_tool_call_id(const llmr_response *r,
                                                size_t i) {
  return (r && i < r->n_tool_calls) ? r->tool_calls[i].id : NULL;
}
LLMR_API const char *llmr_response_tool_call_name(const llmr_response *r,
                                                  size_t i) {
  return (r && i < r->n_tool_calls) ? r->tool_calls[i].name : NULL;
}
LLMR_API const char *llmr_response_tool_call_arguments(const llmr_response *r,
                                                       size_t i) {
  return (r && i < r->n_tool_calls) ? llmr__buf_str(&r->tool_calls[i].args)
                                    : NULL;
}

LLMR_API int llmr_response_usage_estimated(const llmr_response *r) {
  return r ? (int)r->usage_estimated : 0;
}

LLMR_API const char *llmr_response_model(const llmr_response *r) {
  return r ? r->model : NULL;
}
LLMR_API const char *llmr_response_provider(const llmr_response *r) {
  return r ? r->provider : NULL;
}
LLMR_API const char *llmr_response_native_model(const llmr_response *r) {
  return r ? r->native_model : NULL;
}
LLMR_API const char *llmr_response_id(const llmr_response *r) {
  return r ? r->id : NULL;
}
LLMR_API const char *llmr_response_error(const llmr_response *r) {
  return r ? r->error : NULL;
}
LLMR_API const char *llmr_response_error_type(const llmr_response *r) {
  return r ? r->error_type : NULL;
}
LLMR_API int llmr_response_http_status(const llmr_response *r) {
  return r ? r->http_status : 0;
}
LLMR_API int llmr_response_retryable(const llmr_response *r) {
  return r ? r->retryable : 0;
}
LLMR_API double llmr_response_retry_after(const llmr_response *r) {
  return r ? r->retry_after_s : -1;
}

LLMR_API size_t llmr_response_warning_count(const llmr_response *r) {
  return r ? r->n_warnings : 0;
}
LLMR_API const char *llmr_response_warning(const llmr_response *r, size_t i) {
  return (r && i < r->n_warnings) ? r->warnings[i] : NULL;
}

LLMR_API size_t llmr_response_attempt_count(const llmr_response *r) {
  return r ? r->n_attempts : 0;
}

static const llmr__attempt *attempt(const llmr_response *r, size_t i) {
  return (r && i < r->n_attempts) ? &r->attempts[i] : NULL;
}

LLMR_API const char *llmr_response_attempt_model(const llmr_response *r,
                                                 size_t i) {
  const llmr__attempt *a = attempt(r, i);
  return a ? a->model : NULL;
}
LLMR_API const char *llmr_response_attempt_provider(const llmr_response *r,
                                                    size_t i) {
  const llmr__attempt *a = attempt(r, i);
  return a ? a->provider : NULL;
}
LLMR_API llmr_status llmr_response_attempt_status(const llmr_response *r,
                                                  size_t i) {
  const llmr__attempt *a = attempt(r, i);
  return a ? a->status : LLMR_E_INVAL;
}
LLMR_API int llmr_response_attempt_http_status(const llmr_response *r,
                                               size_t i) {
  const llmr__attempt *a = attempt(r, i);
  return a ? a->http_status : 0;
}
LLMR_API const char *llmr_response_attempt_error(const llmr_response *r,
                                                 size_t i) {
  const llmr__attempt *a = attempt(r, i);
  return a ? a->error : NULL;
}
LLMR_API const char *llmr_response_request_id(const llmr_response *r) {
  return r ? r->request_id : NULL;
}

LLMR_API int64_t llmr_response_cost_nanousd(const llmr_response *r) {
  return r ? r->cost_nanousd : -1;
}

LLMR_API int64_t llmr_response_attempt_cost_nanousd(const llmr_response *r,
                                                    size_t i) {
  const llmr__attempt *a = attempt(r, i);
  return a ? a->cost_nanousd : -1;
}

LLMR_API double llmr_response_attempt_duration_ms(const llmr_response *r,
                                                  size_t i) {
  const llmr__attempt *a = attempt(r, i);
  return a ? a->duration_ms : -1;
}

LLMR_API int llmr_response_attempt_retryable(const llmr_response *r,
                                             size_t i) {
  const llmr__attempt *a = attempt(r, i);
  return a ? a->retryable : 0;
}

LLMR_API size_t llmr_response_attempt_bytes(const llmr_response *r,
                                            size_t i) {
  const llmr__attempt *a = attempt(r, i);
  return a ? a->bytes : 0;
}

LLMR_API int llmr_response_attempt_skipped(const llmr_response *r, size_t i) {
  const llmr__attempt *a = attempt(r, i);
  return a ? a->skipped : 0;
}

LLMR_API int llmr_response_attempt_hedged(const llmr_response *r, size_t i) {
  const llmr__attempt *a = attempt(r, i);
  return a ? a->hedge : 0;
}

/* ---- JSON --------------------------------------------------------------- */

static cJSON *add_int_or_null(cJSON *obj, const char *key, int64_t v) {
  return v >= 0 ? cJSON_AddNumberToObject(obj, key, (double)v)
                : cJSON_AddNullToObject(obj, key);
}

static cJSON *trace_to_cjson(const llmr_response *r) {
  cJSON *lr = cJSON_CreateObject(), *arr;
  size_t i;
  if (!lr || !llmr__json_add_str_or_null(lr, "provider", r->provider) ||
      !llmr__json_add_str_or_null(lr, "native_model", r->native_model) ||
      !(arr = cJSON_AddArrayToObject(lr, "attempts")))
    goto oom;
  for (i = 0; i < r->n_attempts; i++) {
    const llmr__attempt *a = &r->attempts[i];
    cJSON *ja = cJSON_CreateObject();
    if (!ja)
      goto oom;
    cJSON_AddItemToArray(arr, ja);
    if (!llmr__json_add_str_or_null(ja, "model", a->model) ||
        !llmr__json_add_str_or_null(ja, "provider", a->provider) ||
        !(a->http_status
              ? cJSON_AddNumberToObject(ja, "http_status", a->http_status)
              : cJSON_AddNullToObject(ja, "http_status")) ||
        !llmr__json_add_str_or_null(ja, "error", a->error) ||
        !cJSON_AddStringToObject(ja, "status", llmr_status_name(a->status)) ||
        !cJSON_AddBoolToObject(ja, "retryable", a->retryable) ||
        !cJSON_AddNumberToObject(ja, "bytes", (double)a->bytes) ||
        !cJSON_AddBoolToObject(ja, "skipped", a->skipped) ||
        !cJSON_AddBoolToObject(ja, "hedge", a->hedge) ||
        !cJSON_AddNumberToObject(ja, "duration_ms",
                                 round(a->duration_ms * 1000.0) / 1000.0) ||
        !add_int_or_null(ja, "cost_nanousd", a->cost_nanousd))
      goto oom;
  }
  if (r->usage_estimated && !cJSON_AddTrueToObject(lr, "usage_estimated"))
    goto oom;
  if (!cJSON_AddStringToObject(lr, "request_id", r->request_id) ||
      !add_int_or_null(lr, "cost_nanousd", r->cost_nanousd))
    goto oom;
  if (r->n_warnings) {
    cJSON *w = cJSON_AddArrayToObject(lr, "warnings");
    if (!w)
      goto oom;
    for (i = 0; i < r->n_warnings; i++) {
      cJSON *s = cJSON_CreateString(r->warnings[i]);
      if (!s)
        goto oom;
      cJSON_AddItemToArray(w, s);
    }
  }
  return lr;
oom:
  cJSON_Delete(lr);
  return NULL;
}

static cJSON *error_to_cjson(const llmr_response *r) {
  cJSON *e = cJSON_CreateObject();
  if (!e ||
      !cJSON_AddStringToObject(e, "message", r->error ? r->error
                                                      : llmr_status_str(
                                                            r->status)) ||
      !llmr__json_add_str_or_null(e, "type", r->error_type) ||
      !cJSON_AddStringToObject(e, "code", llmr_status_name(r->status)) ||
      !(r->http_status ? cJSON_AddNumberToObject(e, "http_status",
                                                 r->http_status)
                       : cJSON_AddNullToObject(e, "http_status")) ||
      !cJSON_AddBoolToObject(e, "retryable", r->retryable) ||
      !(r->retry_after_s >= 0
            ? cJSON_AddNumberToObject(e, "retry_after_s", r->retry_after_s)
            : cJSON_AddNullToObject(e, "retry_after_s"))) {
    cJSON_Delete(e);
    return NULL;
  }
  return e;
}

cJSON *llmr__usage_to_cjson(const llmr_response *r) {
  cJSON *u = cJSON_CreateObject(), *d;
  int64_t total = r->tokens[LLMR_TOKENS_TOTAL];
  if (!u)
    return NULL;
  if (total < 0 && r->tokens[LLMR_TOKENS_PROMPT] >= 0 &&
      r->tokens[LLMR_TOKENS_COMPLETION] >= 0)
    total = r->tokens[LLMR_TOKENS_PROMPT] + r->tokens[LLMR_TOKENS_COMPLETION];
  if (!add_int_or_null(u, "prompt_tokens", r->tokens[LLMR_TOKENS_PROMPT]) ||
      !add_int_or_null(u, "completion_tokens",
                       r->tokens[LLMR_TOKENS_COMPLETION]) ||
      !add_int_or_null(u, "total_tokens", total) ||
      !(d = cJSON_AddObjectToObject(u, "prompt_tokens_details")) ||
      !cJSON_AddNumberToObject(
          d, "cached_tokens",
          (double)(r->tokens[LLMR_TOKENS_CACHED] > 0
                       ? r->tokens[LLMR_TOKENS_CACHED]
                       : 0)) ||
      !(d = cJSON_AddObjectToObject(u, "completion_tokens_details")) ||
      !cJSON_AddNumberToObject(
          d, "reasoning_tokens",
          (double)(r->tokens[LLMR_TOKENS_REASONING] > 0
                       ? r->tokens[LLMR_TOKENS_REASONING]
                       : 0))) {
    cJSON_Delete(u);
    return NULL;
  }
  return u;
}

static cJSON *message_to_cjson(const llmr_response *r) {
  cJSON *m = cJSON_CreateObject();
  size_t i;
  if (!m || !cJSON_AddStringToObject(m, "role", "assistant"))
    goto oom;
  if (r->text.len || r->n_tool_calls == 0) {
    if (!cJSON_AddStringToObject(m, "content", llmr__buf_str(&r->text)))
      goto oom;
  } else if (!cJSON_AddNullToObject(m, "content")) {
    goto oom;
  }
  if (r->reasoning.len &&
      !cJSON_AddStringToObject(m, "reasoning", llmr__buf_str(&r->reasoning)))
    goto oom;
  if (r->n_tool_calls) {
    cJSON *arr = cJSON_AddArrayToObject(m, "tool_calls");
    if (!arr)
      goto oom;
    for (i = 0; i < r->n_tool_calls; i++) {
      cJSON *tc = cJSON_CreateObject(), *fn;
      if (!tc)
        goto oom;
      cJSON_AddItemToArray(arr, tc);
      if (!cJSON_AddStringToObject(tc, "id", r->tool_calls[i].id) ||
          !cJSON_AddStringToObject(tc, "type", "function") ||
          !(fn = cJSON_AddObjectToObject(tc, "function")) ||
          !cJSON_AddStringToObject(fn, "name", r->tool_calls[i].name) ||
          !cJSON_AddStringToObject(fn, "arguments",
                                   llmr__buf_str(&r->tool_calls[i].args)))
        goto oom;
    }
  }
  return m;
oom:
  cJSON_Delete(m);
  return NULL;
}

cJSON *llmr__response_to_cjson(const llmr_response *r) {
  cJSON *root = cJSON_CreateObject(), *choices, *choice, *item;
  if (!root)
    return NULL;
  if (r->status != LLMR_OK) {
    if (!(item = error_to_cjson(r)))
      goto oom;
    cJSON_AddItemToObject(root, "error", item);
  } else {
    if (!llmr__json_add_str_or_null(root, "id", r->id) ||
        !cJSON_AddStringToObject(root, "object", "chat.completion") ||
        !cJSON_AddNumberToObject(root, "created",
                                 (double)(r->created ? r->created
                                                     : (int64_t)time(NULL))) ||
        !llmr__json_add_str_or_null(root, "model", r->model) ||
        !(choices = cJSON_AddArrayToObject(root, "choices")) ||
        !(choice = cJSON_CreateObject()))
      goto oom;
    cJSON_AddItemToArray(choices, choice);
    if (!cJSON_AddNumberToObject(choice, "index", 0) ||
        !(item = message_to_cjson(r)))
      goto oom;
    cJSON_AddItemToObject(choice, "message", item);
    if (!llmr__json_add_str_or_null(choice, "finish_reason",
                                    r->finish_reason) ||
        !(item = llmr__usage_to_cjson(r)))
      goto oom;
    cJSON_AddItemToObject(root, "usage", item);
  }
  if (!(item = trace_to_cjson(r)))
    goto oom;
  cJSON_AddItemToObject(root, "llmroute", item);
  return root;
oom:
  cJSON_Delete(root);
  return NULL;
}

LLMR_API char *llmr_response_to_json(const llmr_response *r) {
  cJSON *j;
  char *s;
  if (!r)
    return NULL;
  if (!(j = llmr__response_to_cjson(r)))
    return NULL;
  s = llmr__json_print(j);
  cJSON_Delete(j);
  return s;
}
