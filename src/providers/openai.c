/*
 * OpenAI Chat Completions adapter. One adapter serves every OpenAI-compatible
 * host (OpenAI, OpenRouter, Mistral, Groq, DeepSeek, xAI, Together, Ollama);
 * the provider option "dialect" selects the few places where hosts differ.
 *
 * Wire facts: ../shared/WIRE-NOTES.md, "OpenAI Chat Completions",
 * "OpenRouter", "Mistral", "Ollama".
 */
#include "../internal.h"
#include "../jscan.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static int dialect_is(const llmr_provider *p, const char *d) {
  const char *v = p->dialect;
  return v && strcmp(v, d) == 0;
}

/* Mistral rejects unknown body fields with 422 extra_forbidden, and calls
 * the seed random_seed (docs.mistral.ai/api). */
static llmr_status mistral_fixups(cJSON *body, llmr_response *resp) {
  cJSON *seed = cJSON_DetachItemFromObjectCaseSensitive(body, "seed");
  if (seed)
    cJSON_AddItemToObject(body, "random_seed", seed);
  if (cJSON_HasObjectItem(body, "user")) {
    cJSON_DeleteItemFromObjectCaseSensitive(body, "user");
    if (llmr_response_add_warning(resp, "mistral: user") != LLMR_OK)
      return LLMR_E_NOMEM;
  }
  if (cJSON_HasObjectItem(body, "reasoning_effort")) {
    cJSON_DeleteItemFromObjectCaseSensitive(body, "reasoning_effort");
    if (llmr_response_add_warning(resp, "mistral: reasoning_effort") !=
        LLMR_OK)
      return LLMR_E_NOMEM;
  }
  return LLMR_OK;
}

/* The body through a cJSON tree: any request. */
llmr_status llmr__openai_body_tree(const llmr_provider *p,
                                   const llmr_request *req,
                                   const char *native_model, int stream,
                                   llmr__buf *out, llmr_response *resp) {
  cJSON *body;
  char *text = NULL;
  llmr_status st = LLMR_E_NOMEM;

  if (!(body = llmr__request_to_openai(req, native_model)))
    return LLMR_E_NOMEM;
  if (stream) {
    cJSON *so;
    if (!cJSON_AddTrueToObject(body, "stream"))
      goto out;
    /* Mistral sends usage on the finish chunk without being asked. */
    if (!dialect_is(p, "mistral") &&
        (!(so = cJSON_AddObjectToObject(body, "stream_options")) ||
         !cJSON_AddTrueToObject(so, "include_usage")))
      goto out;
  }
  /* The reasoning budget only exists as OpenRouter's "reasoning" object;
   * every other host gets the effort it implies. */
  if (!dialect_is(p, "openrouter") &&
      cJSON_HasObjectItem(body, "reasoning") &&
      llmr__reasoning_effort(req)) {
    cJSON_DeleteItemFromObjectCaseSensitive(body, "reasoning");
    if (!cJSON_AddStringToObject(body, "reasoning_effort",
                                 llmr__reasoning_effort(req)))
      goto out;
  }
  /* api.openai.com: max_tokens is deprecated and refused by the o-series
   * reasoning models; max_completion_tokens works for every model. Other
   * OpenAI-compatible hosts only know max_tokens. */
  if (dialect_is(p, "openai")) {
    cJSON *mt = cJSON_DetachItemFromObjectCaseSensitive(body, "max_tokens");
    if (mt)
      cJSON_AddItemToObject(body, "max_completion_tokens", mt);
  }
  if (dialect_is(p, "mistral") && (st = mistral_fixups(body, resp)) != LLMR_OK)
    goto out;
  st = LLMR_E_NOMEM;
  if (!(text = cJSON_PrintUnformatted(body)) || llmr__buf_puts(out, text))
    goto out;
  st = LLMR_OK;
out:
  cJSON_free(text);
  cJSON_Delete(body);
  return st;
}

/* Whether the tree path would do nothing but print the request's own
 * fields: no tools, formats, passed-through fields or reasoning knobs, and
 * messages of plain text. */
static int oa_plain(const llmr_request *req) {
  size_t i;
  if (req->tools || req->tool_choice || req->response_format || req->extra ||
      req->reasoning_effort || req->reasoning_budget > 0)
    return 0;
  for (i = 0; i < req->n_messages; i++)
    if (req->messages[i].parts || req->messages[i].n_tool_calls)
      return 0;
  return 1;
}

#define PUT(lit) llmr__buf_put(out, lit, sizeof(lit) - 1)

int llmr__openai_body_direct(const llmr_provider *p, const llmr_request *req,
                             const char *native_model, int stream,
                             llmr__buf *out, llmr_response *resp) {
  /* the first letter spares most hosts a strcmp */
  const char *dialect = p->dialect;
  const int openai =
      dialect && dialect[0] == 'o' && strcmp(dialect, "openai") == 0;
  const int mistral =
      dialect && dialect[0] == 'm' && strcmp(dialect, "mistral") == 0;
  size_t i;

  if (!oa_plain(req))
    return 0;
  /* one allocation for a short request (the buffer doubles past it) */
  if (llmr__buf_reserve(out, 512) != 0)
    return -1;
  /* the tree path's member order: the request's fields, then the stream
   * fields, then what a dialect renames (moved to the end) */
  if (PUT("{") ||
      (native_model &&
       (PUT("\"model\":") || llmr__buf_cjson_str(out, native_model) ||
        PUT(","))) ||
      PUT("\"messages\":["))
    return -1;
  for (i = 0; i < req->n_messages; i++) {
    const llmr__message *m = &req->messages[i];
    /* role names are lowercase words: nothing to escape */
    const char *role = llmr__role_name(m->role);
    if ((i && PUT(",")) || PUT("{\"role\":\"") ||
        llmr__buf_put(out, role, strlen(role)) || PUT("\",\"content\":") ||
        (m->content ? llmr__buf_cjson_str(out, m->content) : PUT("null")) ||
        (m->name && (PUT(",\"name\":") || llmr__buf_cjson_str(out, m->name))) ||
        (m->tool_call_id && (PUT(",\"tool_call_id\":") ||
                             llmr__buf_cjson_str(out, m->tool_call_id))) ||
        PUT("}"))
      return -1;
  }
  if (PUT("]") ||
      (req->has_temperature &&
       (PUT(",\"temperature\":") ||
        llmr__buf_cjson_num(out, req->temperature))) ||
      (req->has_top_p &&
       (PUT(",\"top_p\":") || llmr__buf_cjson_num(out, req->top_p))) ||
      (req->max_tokens && !openai &&
       (PUT(",\"max_tokens\":") ||
        llmr__buf_cjson_num(out, (double)req->max_tokens))))
    return -1;
  if (req->n_stop) {
    if (PUT(",\"stop\":["))
      return -1;
    for (i = 0; i < req->n_stop; i++)
      if ((i && PUT(",")) || llmr__buf_cjson_str(out, req->stop[i]))
        return -1;
    if (PUT("]"))
      return -1;
  }
  if ((req->has_seed && !mistral &&
       (PUT(",\"seed\":") || llmr__buf_cjson_num(out, (double)req->seed))) ||
      (req->user && !mistral &&
       (PUT(",\"user\":") || llmr__buf_cjson_str(out, req->user))) ||
      (stream && PUT(",\"stream\":true")) ||
      (stream && !mistral && PUT(",\"stream_options\":{\"include_usage\":true}")) ||
      (req->max_tokens && openai &&
       (PUT(",\"max_completion_tokens\":") ||
        llmr__buf_cjson_num(out, (double)req->max_tokens))) ||
      (req->has_seed && mistral &&
       (PUT(",\"random_seed\":") ||
        llmr__buf_cjson_num(out, (double)req->seed))) ||
      PUT("}"))
    return -1;
  /* Mistral refuses "user" (mistral_fixups) */
  if (req->user && mistral &&
      llmr_response_add_warning(resp, "mistral: user") != LLMR_OK)
    return -1;
  return 1;
}

#undef PUT

static llmr_status openai_build(const llmr_provider *p,
                                const llmr_request *req,
                                const char *native_model, int stream,
                                llmr_http_request *http, llmr_response *resp) {
  llmr__buf body = {0};
  llmr_status st = LLMR_E_NOMEM;
  int r;

  /* the plain request is written directly (bench/PROFILE.md: the tree,
   * its printing and copies were the larger part of building a call);
   * anything else goes through cJSON */
  if ((r = llmr__openai_body_direct(p, req, native_model, stream, &body,
                                    resp)) < 0)
    goto out;
  if (r == 0) {
    llmr__buf_reset(&body);
    if ((st = llmr__openai_body_tree(p, req, native_model, stream, &body,
                                     resp)) != LLMR_OK)
      goto out;
  }
  /* base_url + "/chat/completions" and the options below are looked up
   * once, when the provider is made (registry.c) */
  if ((st = llmr_http_request_set_url(http, p->chat_url)) != LLMR_OK ||
      (st = llmr_http_request_set_body(http, body.data, body.len)) !=
          LLMR_OK ||
      (st = llmr__http_request_add_lit(http, "Content-Type",
                                       "application/json")) != LLMR_OK ||
      (st = stream ? llmr__http_request_add_lit(http, "Accept",
                                                "text/event-stream")
                   : llmr__http_request_add_lit(http, "Accept",
                                                "application/json")) !=
          LLMR_OK)
    goto out;
  /* "Bearer <key>" is put together in secret memory (src/secret.c); a key
   * with CR or LF (api_key_len 0) is refused there */
  if (p->api_key &&
      (st = p->api_key_len
                ? llmr__http_request_add_header_n(
                      http, "Authorization", sizeof("Authorization") - 1,
                      "Bearer ", sizeof("Bearer ") - 1, p->api_key,
                      p->api_key_len)
                : llmr__http_request_add_header_cat(http, "Authorization",
                                                    "Bearer ", p->api_key)) !=
          LLMR_OK)
    goto out;
  /* OpenRouter's optional app attribution headers */
  if (p->http_referer && (st = llmr_http_request_add_header(
                               http, "HTTP-Referer", p->http_referer)) !=
                              LLMR_OK)
    goto out;
  if (p->x_title &&
      (st = llmr_http_request_add_header(http, "X-Title", p->x_title)) !=
          LLMR_OK)
    goto out;
  st = LLMR_OK;
out:
  llmr__buf_free(&body);
  return st;
}

/* Normalised finish reason (WIRE-NOTES "finish_reason"). */
static const char *finish_reason(const char *native) {
  if (!native)
    return NULL;
  if (strcmp(native, "model_length") == 0) /* Mistral */
    return "length";
  return native;
}

static llmr_status parse_tool_calls(const cJSON *tcs, llmr_response *resp) {
  const cJSON *tc;
  cJSON_ArrayForEach(tc, tcs) {
    const cJSON *fn = cJSON_GetObjectItemCaseSensitive(tc, "function");
    const cJSON *args = cJSON_GetObjectItemCaseSensitive(fn, "arguments");
    const char *id = llmr__json_str(tc, "id");
    const char *name = llmr__json_str(fn, "name");
    char idbuf[64], *printed = NULL;
    llmr_status st;
    if (!name)
      return llmr_response_set_error(resp, LLMR_E_PROTOCOL, NULL,
                                     "tool call without a function name", 0,
                                     -1) == LLMR_OK
                 ? LLMR_E_PROTOCOL
                 : LLMR_E_NOMEM;
    if (!id || !*id) {
      llmr__synth_call_id(idbuf, sizeof(idbuf));
      id = idbuf;
    }
    /* Some hosts send arguments as an object rather than JSON text. */
    if (cJSON_IsObject(args) && !(printed = llmr__json_print(args)))
      return LLMR_E_NOMEM;
    st = llmr_response_add_tool_call(
        resp, id, name,
        printed ? printed : (cJSON_IsString(args) ? args->valuestring : "{}"));
    llmr__free(printed);
    if (st != LLMR_OK)
      return st;
  }
  return LLMR_OK;
}

static void parse_usage(const cJSON *u, llmr_response *resp) {
  const cJSON *d;
  int64_t v;
  if (!cJSON_IsObject(u))
    return;
  if (llmr__json_i64(u, "prompt_tokens", &v) == 0)
    llmr_response_set_tokens(resp, LLMR_TOKENS_PROMPT, v);
  if (llmr__json_i64(u, "completion_tokens", &v) == 0)
    llmr_response_set_tokens(resp, LLMR_TOKENS_COMPLETION, v);
  if (llmr__json_i64(u, "total_tokens", &v) == 0)
    llmr_response_set_tokens(resp, LLMR_TOKENS_TOTAL, v);
  d = cJSON_GetObjectItemCaseSensitive(u, "prompt_tokens_details");
  llmr_response_set_tokens(
      resp, LLMR_TOKENS_CACHED,
      llmr__json_i64(d, "cached_tokens", &v) == 0 ? v : 0);
  d = cJSON_GetObjectItemCaseSensitive(u, "completion_tokens_details");
  llmr_response_set_tokens(
      resp, LLMR_TOKENS_REASONING,
      llmr__json_i64(d, "reasoning_tokens", &v) == 0 ? v : 0);
}

static llmr_status protocol_error(llmr_response *resp, const char *msg) {
  return llmr_response_set_error(resp, LLMR_E_PROTOCOL, NULL, msg, 0, -1) ==
                 LLMR_OK
             ? LLMR_E_PROTOCOL
             : LLMR_E_NOMEM;
}

static llmr_status openai_classify(const llmr_provider *p,
                                   const llmr_http_response *http,
                                   llmr_response *resp);

/* The answer through a cJSON tree: every shape the fast path declines. */
llmr_status llmr__openai_parse_tree(const llmr_provider *p,
                                    const llmr_http_response *http,
                                    llmr_response *resp) {
  size_t len;
  const char *text = llmr_http_response_body(http, &len);
  cJSON *root = cJSON_ParseWithLength(text, len);
  const cJSON *choice, *msg, *v;
  int64_t created;
  llmr_status st = LLMR_OK;

  if (!cJSON_IsObject(root)) {
    cJSON_Delete(root);
    return protocol_error(resp, "response body is not a JSON object");
  }
  /* OpenRouter can answer 200 with an error object */
  if (cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(root, "error"))) {
    cJSON_Delete(root);
    return openai_classify(p, http, resp);
  }
  choice = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(root, "choices"),
                              0);
  msg = cJSON_GetObjectItemCaseSensitive(choice, "message");
  if (!cJSON_IsObject(msg)) {
    st = protocol_error(resp, "response has no choices[0].message");
    goto out;
  }
  v = cJSON_GetObjectItemCaseSensitive(msg, "content");
  if (cJSON_IsString(v) &&
      (st = llmr_response_append_text(resp, v->valuestring,
                                      strlen(v->valuestring))) != LLMR_OK)
    goto out;
  if (v && !cJSON_IsString(v) && !cJSON_IsNull(v)) {
    st = protocol_error(resp, "choices[0].message.content is not a string");
    goto out;
  }
  /* reasoning text: OpenRouter/Ollama "reasoning", DeepSeek
   * "reasoning_content" */
  v = cJSON_GetObjectItemCaseSensitive(msg, "reasoning");
  if (!cJSON_IsString(v))
    v = cJSON_GetObjectItemCaseSensitive(msg, "reasoning_content");
  if (cJSON_IsString(v) &&
      (st = llmr_response_append_reasoning(resp, v->valuestring,
                                           strlen(v->valuestring))) != LLMR_OK)
    goto out;
  v = cJSON_GetObjectItemCaseSensitive(msg, "tool_calls");
  if (cJSON_IsArray(v) && (st = parse_tool_calls(v, resp)) != LLMR_OK)
    goto out;
  if ((st = llmr_response_set_finish_reason(
           resp, finish_reason(llmr__json_str(choice, "finish_reason")))) !=
          LLMR_OK ||
      (st = llmr_response_set_id(resp, llmr__json_str(root, "id"))) != LLMR_OK)
    goto out;
  if (llmr__json_i64(root, "created", &created) == 0)
    resp->created = created;
  parse_usage(cJSON_GetObjectItemCaseSensitive(root, "usage"), resp);
out:
  cJSON_Delete(root);
  return st;
}


/* ---- the fast path ------------------------------------------------------
 *
 * A successful non-streaming answer is read with the strict scanner of
 * src/jscan.h: spans into the body, no tree, the content decoded straight
 * into the response (bench/PROFILE.md: the cJSON tree was over half of
 * what llmr_complete added per call). Anything but the plain shape
 * (tool calls, an "error" member, a key written with escapes, a repeated
 * key the adapter reads, a number that is not a small integer, JSON the
 * scanner refuses, nesting deeper than OA_DEPTH) is declined before the
 * response is touched, and llmr__openai_parse_tree() reads it as before;
 * tests/unit/test_openai_fast.c checks the two agree byte for byte. */

#define OA_DEPTH 64
enum { U_PROMPT, U_COMPLETION, U_TOTAL, U_CACHED, U_REASONING, U_N };

typedef struct oa_answer {
  llmr__span id, content, reasoning, reasoning_content, finish;
  int64_t created, tok[U_N];
  unsigned seen;       /* K_* bits: keys read so far (a repeat declines) */
  unsigned has_tok;    /* 1 << U_*: integers found */
  unsigned usage : 1;  /* "usage" was an object */
  unsigned has_created : 1;
} oa_answer;

enum {
  K_ID = 1 << 0, K_CREATED = 1 << 1, K_CHOICES = 1 << 2, K_USAGE = 1 << 3,
  K_MESSAGE = 1 << 4, K_FINISH = 1 << 5, K_CONTENT = 1 << 6,
  K_REASONING = 1 << 7, K_REASONING_C = 1 << 8, K_TOOLS = 1 << 9,
  K_U0 = 1 << 10 /* K_U0 << U_*: the usage integers */,
  K_PDETAILS = 1 << 15, K_CDETAILS = 1 << 16
};

#define DECLINE 1 /* a scan result: hand the document to cJSON */

/* The reader keeps its cursor in a local: each function takes the
 * position p (p < e unless said otherwise) and returns the position past
 * what it read, or NULL to decline. Members are read here; values it
 * does not take, numbers and strings with escapes go to the scanner's own
 * readers (src/jscan.c), so that there is one grammar. */

/* Marks key bit k seen; a repeat declines (cJSON takes the first). */
#define ONCE(a, k)                                                             \
  do {                                                                         \
    if ((a)->seen & (unsigned)(k))                                             \
      return NULL;                                                             \
    (a)->seen |= (unsigned)(k);                                                \
  } while (0)

/* Whether the key [k, k + n) is the literal name. */
#define KEY(k, n, name)                                                        \
  ((n) == sizeof(name) - 1 && memcmp((k), (name), sizeof(name) - 1) == 0)

/* The objects the reader reads member by member. */
enum { O_ROOT, O_CHOICE, O_MESSAGE, O_USAGE, O_PDETAILS, O_CDETAILS };

/* Past ch after optional white space, or NULL: the byte right at p is
 * tried first (compact JSON has no space). */
static inline const char *oa_past(const char *p, const char *e, char ch) {
  if (p < e && *p == ch)
    return p + 1;
  p = llmr__js_ws_at(p, e);
  return p < e && *p == ch ? p + 1 : NULL;
}

/* After a member or an element: past the ',' and the white space after
 * it (*more = 1), or past the closing bracket (*more = 0); NULL for
 * anything else. */
static inline const char *oa_after(const char *p, const char *e, char close,
                                   int *more) {
  p = llmr__js_ws_at(p, e);
  if (p >= e)
    return NULL;
  if ((*more = *p == ','))
    return llmr__js_ws_at(p + 1, e);
  return *p == close ? p + 1 : NULL;
}

/* p at '"': past the string, its contents into *sp when sp is given.
 * Plain text is scanned inline; a string with a backslash or a control
 * byte goes to llmr__js_string, which checks every escape. */
static inline const char *oa_str(const char *p, const char *e,
                                 llmr__span *sp) {
  const char *q = llmr__js_plain(p + 1, e);
  if (q < e && *q == '"') {
    if (sp) {
      sp->p = p + 1;
      sp->n = (size_t)(q - p - 1);
      sp->esc = sp->null = 0;
    }
    return q + 1;
  } else {
    llmr__jcur c;
    llmr__span t;
    c.p = p;
    c.e = e;
    if (llmr__js_string(&c, &t) != 0)
      return NULL;
    if (sp)
      *sp = t;
    return c.p;
  }
}

/* The scanner's own readers (src/jscan.c) at p: past the value or NULL. */
static const char *oa_skip_value(const char *p, const char *e) {
  llmr__jcur c;
  if (*p == '"')
    return oa_str(p, e, NULL); /* the common case, inline */
  c.p = p;
  c.e = e;
  return llmr__js_skip(&c, OA_DEPTH) == 0 ? c.p : NULL;
}

static const char *oa_num(const char *p, const char *e) {
  llmr__jcur c;
  llmr__span sp;
  c.p = p;
  c.e = e;
  return llmr__js_number(&c, &sp) == 0 ? c.p : NULL;
}

static const char *oa_null(const char *p, const char *e) {
  llmr__jcur c;
  c.p = p;
  c.e = e;
  return llmr__js_literal(&c, "null") == 0 ? c.p : NULL;
}

/* A string into *sp; any other value is skipped and leaves sp null (the
 * tree path's llmr__json_str() gives NULL for it). */
static const char *oa_string_or_skip(const char *p, const char *e,
                                     llmr__span *sp) {
  if (*p == '"')
    return oa_str(p, e, sp);
  sp->null = 1;
  return oa_skip_value(p, e);
}

/* An integer (the tree path reads numbers as doubles, exact up to 15
 * digits: anything else is declined) into tok[u], marked in *has; other
 * types leave it unset. */
static const char *oa_int_or_skip(const char *p, const char *e,
                                  int64_t *out, unsigned *has, unsigned bit) {
  const char *end, *q;
  int64_t v = 0;
  if (*p != '-' && (*p < '0' || *p > '9'))
    return oa_skip_value(p, e);
  if (!(end = oa_num(p, e)) || end - p > 15)
    return NULL;
  for (q = p + (*p == '-'); q < end; q++) {
    if (*q < '0' || *q > '9')
      return NULL; /* a fraction or an exponent */
    v = v * 10 + (*q - '0');
  }
  *out = *p == '-' ? -v : v;
  *has |= bit;
  return end;
}

static const char *oa_object(const char *p, const char *e, oa_answer *a,
                             int obj);

/* An object the reader reads, when the value is one; else skipped. */
static const char *oa_object_or_skip(const char *p, const char *e,
                                     oa_answer *a, int obj) {
  return *p == '{' ? oa_object(p, e, a, obj) : oa_skip_value(p, e);
}

static const char *oa_tok(const char *p, const char *e, oa_answer *a,
                          int u) {
  ONCE(a, K_U0 << u);
  return oa_int_or_skip(p, e, &a->tok[u], &a->has_tok, 1u << u);
}

/* "choices": the first element is read, the rest skipped. */
static const char *oa_choices(const char *p, const char *e, oa_answer *a) {
  if (*p != '[')
    return NULL;
  p = llmr__js_ws_at(p + 1, e);
  if (p < e && *p == ']')
    return p + 1;
  if (p >= e || *p != '{' || !(p = oa_object(p, e, a, O_CHOICE)))
    return NULL;
  for (;;) {
    int more;
    if (!(p = oa_after(p, e, ']', &more)) || !more)
      return p;
    if (p >= e || !(p = oa_skip_value(p, e)))
      return NULL;
  }
}

/* The value of member [k, k + n) of an object of kind obj. */
static const char *oa_member(const char *p, const char *e, oa_answer *a,
                             int obj, const char *k, size_t n) {
  switch (obj) {
  case O_ROOT:
    if (KEY(k, n, "id")) {
      ONCE(a, K_ID);
      return oa_string_or_skip(p, e, &a->id);
    }
    if (KEY(k, n, "created")) {
      unsigned has = 0;
      ONCE(a, K_CREATED);
      p = oa_int_or_skip(p, e, &a->created, &has, 1);
      a->has_created = has != 0;
      return p;
    }
    if (KEY(k, n, "choices")) {
      ONCE(a, K_CHOICES);
      return oa_choices(p, e, a);
    }
    if (KEY(k, n, "usage")) {
      ONCE(a, K_USAGE);
      a->usage = *p == '{';
      return oa_object_or_skip(p, e, a, O_USAGE);
    }
    if (KEY(k, n, "error"))
      return NULL; /* OpenRouter's 200 with an error: the tree path */
    break;
  case O_CHOICE:
    if (KEY(k, n, "message")) {
      ONCE(a, K_MESSAGE);
      return *p == '{' ? oa_object(p, e, a, O_MESSAGE) : NULL;
    }
    if (KEY(k, n, "finish_reason")) {
      ONCE(a, K_FINISH);
      return oa_string_or_skip(p, e, &a->finish);
    }
    break;
  case O_MESSAGE:
    if (KEY(k, n, "content")) {
      ONCE(a, K_CONTENT);
      if (*p == '"')
        return oa_str(p, e, &a->content);
      a->content.null = 1;
      /* null is no text; any other type is the tree path's error */
      return oa_null(p, e);
    }
    if (KEY(k, n, "reasoning")) {
      ONCE(a, K_REASONING);
      return oa_string_or_skip(p, e, &a->reasoning);
    }
    if (KEY(k, n, "reasoning_content")) {
      ONCE(a, K_REASONING_C);
      return oa_string_or_skip(p, e, &a->reasoning_content);
    }
    if (KEY(k, n, "tool_calls")) {
      ONCE(a, K_TOOLS);
      if (*p != '[')
        return oa_skip_value(p, e);
      /* an empty list is no calls; calls go through the tree path */
      p = llmr__js_ws_at(p + 1, e);
      return p < e && *p == ']' ? p + 1 : NULL;
    }
    break;
  case O_USAGE:
    if (KEY(k, n, "prompt_tokens"))
      return oa_tok(p, e, a, U_PROMPT);
    if (KEY(k, n, "completion_tokens"))
      return oa_tok(p, e, a, U_COMPLETION);
    if (KEY(k, n, "total_tokens"))
      return oa_tok(p, e, a, U_TOTAL);
    if (KEY(k, n, "prompt_tokens_details")) {
      ONCE(a, K_PDETAILS);
      return oa_object_or_skip(p, e, a, O_PDETAILS);
    }
    if (KEY(k, n, "completion_tokens_details")) {
      ONCE(a, K_CDETAILS);
      return oa_object_or_skip(p, e, a, O_CDETAILS);
    }
    break;
  case O_PDETAILS:
    if (KEY(k, n, "cached_tokens"))
      return oa_tok(p, e, a, U_CACHED);
    break;
  case O_CDETAILS:
    if (KEY(k, n, "reasoning_tokens"))
      return oa_tok(p, e, a, U_REASONING);
    break;
  }
  return oa_skip_value(p, e);
}

/* p at '{': its members, each through oa_member. A key written with
 * escapes declines (the tree path compares it unescaped). */
static const char *oa_object(const char *p, const char *e, oa_answer *a,
                             int obj) {
  p = llmr__js_ws_at(p + 1, e);
  if (p < e && *p == '}')
    return p + 1;
  for (;;) {
    const char *k;
    int more;
    if (p >= e || *p != '"')
      return NULL;
    k = p + 1;
    p = llmr__js_plain(k, e);
    if (p >= e || *p != '"')
      return NULL; /* escaped, invalid or cut */
    {
      size_t n = (size_t)(p - k);
      if (!(p = oa_past(p + 1, e, ':')))
        return NULL;
      p = llmr__js_ws_at(p, e);
      if (p >= e || !(p = oa_member(p, e, a, obj, k, n)))
        return NULL;
    }
    if (!(p = oa_after(p, e, '}', &more)) || !more)
      return p;
  }
}

/* Scans the whole body; 0 when every field is in *a, DECLINE otherwise. */
static int oa_scan(const char *text, size_t len, oa_answer *a) {
  const char *p, *e = text + len;
  memset(a, 0, sizeof(*a));
  a->id.null = a->content.null = a->reasoning.null = 1;
  a->reasoning_content.null = a->finish.null = 1;
  p = llmr__js_ws_at(text, e);
  if (p >= e || *p != '{' || !(p = oa_object(p, e, a, O_ROOT)) ||
      !(a->seen & K_MESSAGE))
    return DECLINE;
  return llmr__js_ws_at(p, e) == e ? 0 : DECLINE;
}

/* A short string span as a C string in buf (the setters copy it), a
 * longer or escaped one in a fresh copy left in *heap; NULL for a null
 * span, and on OOM with *oom set. */
static const char *oa_cstr(const llmr__span *sp, char *buf, size_t size,
                           char **heap, int *oom) {
  if (sp->null)
    return NULL;
  if (!sp->esc && sp->n < size) {
    memcpy(buf, sp->p, sp->n);
    buf[sp->n] = '\0';
    return buf;
  }
  if (!(*heap = llmr__span_dup(sp)))
    *oom = 1;
  return *heap;
}

/* The scanned answer into resp, in the tree path's order. */
static llmr_status oa_apply(const oa_answer *a, llmr_response *resp) {
  const llmr__span *r =
      !a->reasoning.null ? &a->reasoning : &a->reasoning_content;
  char fbuf[64], ibuf[128], *fheap = NULL, *iheap = NULL;
  const char *finish, *id;
  llmr_status st;
  int u, oom = 0;
  static const llmr_tokens kinds[U_N] = {
      LLMR_TOKENS_PROMPT, LLMR_TOKENS_COMPLETION, LLMR_TOKENS_TOTAL,
      LLMR_TOKENS_CACHED, LLMR_TOKENS_REASONING};

  if (!a->content.null &&
      (st = llmr__response_append_span(resp, 0, &a->content)) != LLMR_OK)
    return st;
  if (!r->null && (st = llmr__response_append_span(resp, 1, r)) != LLMR_OK)
    return st;
  finish = oa_cstr(&a->finish, fbuf, sizeof(fbuf), &fheap, &oom);
  id = oa_cstr(&a->id, ibuf, sizeof(ibuf), &iheap, &oom);
  if (oom)
    st = LLMR_E_NOMEM;
  else if ((st = llmr_response_set_finish_reason(
                resp, finish_reason(finish))) == LLMR_OK &&
           (st = llmr_response_set_id(resp, id)) == LLMR_OK) {
    if (a->has_created)
      resp->created = a->created;
    if (a->usage)
      for (u = 0; u < U_N; u++)
        if (a->has_tok & (1u << u) || u >= U_CACHED)
          llmr_response_set_tokens(resp, kinds[u],
                                   a->has_tok & (1u << u) ? a->tok[u] : 0);
  }
  llmr__free(fheap);
  llmr__free(iheap);
  return st;
}

int llmr__openai_parse_fast(const llmr_http_response *http,
                            llmr_response *resp, llmr_status *st) {
  size_t len;
  const char *text = llmr_http_response_body(http, &len);
  oa_answer a;
  if (!text || oa_scan(text, len, &a) != 0)
    return 0;
  *st = oa_apply(&a, resp);
  return 1;
}

static llmr_status openai_parse(const llmr_provider *p,
                                const llmr_http_response *http,
                                llmr_response *resp) {
  llmr_status st;
  if (llmr__openai_parse_fast(http, resp, &st))
    return st;
  return llmr__openai_parse_tree(p, http, resp);
}

static llmr_status openai_classify(const llmr_provider *p,
                                   const llmr_http_response *http,
                                   llmr_response *resp) {
  size_t len;
  const char *text = llmr_http_response_body(http, &len);
  cJSON *root = cJSON_ParseWithLength(text, len);
  int code = llmr_http_response_status(http);
  const char *message = NULL, *type = NULL, *ecode = NULL;
  llmr_status st = llmr_status_from_http(code);
  int retryable = llmr__http_retryable(code);
  (void)p;

  if (root)
    llmr__error_fields(root, &message, &type, &ecode);
  if (llmr__contains(type, "insufficient_quota") ||
      llmr__contains(ecode, "insufficient_quota")) {
    st = LLMR_E_PAYMENT;
    retryable = 0;
  } else if (llmr__contains(ecode, "context_length_exceeded") ||
             llmr__contains(type, "context_length_exceeded")) {
    st = LLMR_E_CONTEXT_LENGTH;
  } else if (llmr__contains(ecode, "content_filter") ||
             llmr__contains(ecode, "content_policy_violation")) {
    st = LLMR_E_CONTENT_FILTER;
  } else if (llmr__contains(type, "overloaded")) {
    st = LLMR_E_OVERLOADED;
    retryable = 1;
  } else if (llmr__contains(ecode, "model_not_found")) {
    st = LLMR_E_NOT_FOUND;
  }
  st = llmr__error_finish(http, resp, st, type, message, retryable,
                          llmr__retry_after_from_headers(http));
  cJSON_Delete(root);
  return st;
}

/* ---- streaming ---------------------------------------------------------- */

/* Per-stream state. */
typedef struct openai_stream {
  int done; /* [DONE] seen: nothing after it is read */
} openai_stream;

/* One element of delta.tool_calls: OpenAI sends index, id, type and
 * function.name on a call's first fragment and index + function.arguments
 * fragments after it; Mistral and Ollama send whole calls in one delta. */
static llmr_status stream_tool_call(const cJSON *tc, size_t pos,
                                    llmr_response *resp) {
  const cJSON *fn = cJSON_GetObjectItemCaseSensitive(tc, "function");
  const cJSON *args = cJSON_GetObjectItemCaseSensitive(fn, "arguments");
  const cJSON *ix = cJSON_GetObjectItemCaseSensitive(tc, "index");
  size_t index = pos;
  char *printed = NULL;
  const char *frag = NULL;
  llmr_status st;
  if (!cJSON_IsObject(tc))
    return protocol_error(resp, "delta.tool_calls[] is not an object");
  if (cJSON_IsNumber(ix)) {
    if (ix->valuedouble < 0 || ix->valuedouble > 1e6)
      return protocol_error(resp, "delta.tool_calls[].index out of range");
    index = (size_t)ix->valuedouble;
  }
  if (cJSON_IsString(args))
    frag = args->valuestring;
  else if (cJSON_IsObject(args) && !(frag = printed = llmr__json_print(args)))
    return LLMR_E_NOMEM; /* some hosts send an object, not JSON text */
  st = llmr_response_tool_call_delta(resp, index, llmr__json_str(tc, "id"),
                                     llmr__json_str(fn, "name"), frag,
                                     frag ? strlen(frag) : 0);
  llmr__free(printed);
  return st;
}

static llmr_status stream_choice(const cJSON *choice, llmr_response *resp) {
  const cJSON *delta = cJSON_GetObjectItemCaseSensitive(choice, "delta");
  const cJSON *v, *tc;
  const char *fr;
  size_t pos = 0;
  llmr_status st;

  v = cJSON_GetObjectItemCaseSensitive(delta, "content");
  if (cJSON_IsString(v) && *v->valuestring &&
      (st = llmr_response_append_text(resp, v->valuestring,
                                      strlen(v->valuestring))) != LLMR_OK)
    return st;
  /* reasoning text: OpenRouter/Ollama "reasoning", DeepSeek
   * "reasoning_content" */
  v = cJSON_GetObjectItemCaseSensitive(delta, "reasoning");
  if (!cJSON_IsString(v))
    v = cJSON_GetObjectItemCaseSensitive(delta, "reasoning_content");
  if (cJSON_IsString(v) && *v->valuestring &&
      (st = llmr_response_append_reasoning(resp, v->valuestring,
                                           strlen(v->valuestring))) != LLMR_OK)
    return st;
  v = cJSON_GetObjectItemCaseSensitive(delta, "tool_calls");
  if (cJSON_IsArray(v)) {
    cJSON_ArrayForEach(tc, v) {
      if ((st = stream_tool_call(tc, pos++, resp)) != LLMR_OK)
        return st;
    }
  }
  if ((fr = llmr__json_str(choice, "finish_reason"))) {
    /* OpenRouter ends a failed stream with finish_reason "error" (the error
     * object, when there is one, was read before this) */
    if (strcmp(fr, "error") == 0)
      return llmr_response_set_error(
                 resp, LLMR_E_PROVIDER, NULL,
                 "the provider ended the stream with finish_reason \"error\"",
                 0, -1) == LLMR_OK
                 ? LLMR_E_PROVIDER
                 : LLMR_E_NOMEM;
    /* the model says the answer is complete: that ends the content; a
     * usage chunk and [DONE] may still follow */
    if ((st = llmr_response_set_finish_reason(resp, finish_reason(fr))) !=
            LLMR_OK ||
        (st = llmr_response_stream_done(resp)) != LLMR_OK)
      return st;
  }
  return LLMR_OK;
}

static llmr_status openai_stream_event(const llmr_provider *p, void *state,
                                       const char *event, const char *data,
                                       size_t len, llmr_response *resp) {
  openai_stream *s = state;
  cJSON *root;
  const cJSON *v;
  int64_t created;
  llmr_status st = LLMR_OK;
  (void)p;
  (void)event; /* OpenAI-compatible hosts send no event names */

  if (s->done)
    return LLMR_OK;
  if (len == 6 && memcmp(data, "[DONE]", 6) == 0) {
    s->done = 1;
    return llmr_response_stream_done(resp);
  }
  root = cJSON_ParseWithLength(data, len);
  if (!cJSON_IsObject(root)) {
    char msg[128];
    size_t i, n = (size_t)snprintf(msg, sizeof(msg),
                                   "stream event is not a JSON object: ");
    for (i = 0; i < len && i < 40 && n + 1 < sizeof(msg); i++) {
      unsigned char c = (unsigned char)data[i];
      msg[n++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    msg[n] = '\0';
    cJSON_Delete(root);
    return protocol_error(resp, msg);
  }
  /* an error inside the stream (OpenAI, OpenRouter: top-level "error") */
  v = cJSON_GetObjectItemCaseSensitive(root, "error");
  if (v && !cJSON_IsNull(v)) {
    st = llmr__stream_error(resp, root);
    cJSON_Delete(root);
    return st;
  }
  if (!llmr_response_id(resp) &&
      (st = llmr_response_set_id(resp, llmr__json_str(root, "id"))) != LLMR_OK)
    goto out;
  if (llmr__json_i64(root, "created", &created) == 0)
    resp->created = created;
  v = cJSON_GetObjectItemCaseSensitive(root, "choices");
  if (cJSON_IsArray(v) && cJSON_GetArraySize(v) > 0 &&
      (st = stream_choice(cJSON_GetArrayItem(v, 0), resp)) != LLMR_OK)
    goto out;
  /* the usage chunk ("choices": []), or Mistral's finish chunk; earlier
   * chunks carry "usage": null */
  parse_usage(cJSON_GetObjectItemCaseSensitive(root, "usage"), resp);
out:
  cJSON_Delete(root);
  return st;
}

const llmr_provider_vt llmr__openai_vt = {
    "openai",               /* name */
    LLMR_PROVIDER_ABI_VERSION,
    sizeof(openai_stream),  /* state_size */
    openai_build,           /* build_request */
    openai_parse,           /* parse_response */
    openai_stream_event,    /* stream_event */
    openai_classify,        /* classify_error */
};
