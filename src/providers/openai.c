/*
 * OpenAI Chat Completions adapter. One adapter serves every OpenAI-compatible
 * host (OpenAI, OpenRouter, Mistral, Groq, DeepSeek, xAI, Together, Ollama);
 * the provider option "dialect" selects the few places where hosts differ.
 *
 * Wire facts: ../shared/WIRE-NOTES.md, "OpenAI Chat Completions",
 * "OpenRouter", "Mistral", "Ollama".
 */
#include "../internal.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static int dialect_is(const llmr_provider *p, const char *d) {
  const char *v = llmr_provider_option(p, "dialect");
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

static llmr_status openai_build(const llmr_provider *p,
                                const llmr_request *req,
                                const char *native_model, int stream,
                                llmr_http_request *http, llmr_response *resp) {
  llmr__buf s = {0};
  cJSON *body;
  const char *opt;
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
  if (!(text = cJSON_PrintUnformatted(body)))
    goto out;
  if (llmr__buf_puts(&s, llmr_provider_base_url(p)) ||
      llmr__buf_puts(&s, "/chat/completions"))
    goto out;
  if ((st = llmr_http_request_set_url(http, s.data)) != LLMR_OK ||
      (st = llmr_http_request_set_body(http, text, strlen(text))) != LLMR_OK ||
      (st = llmr_http_request_add_header(http, "Content-Type",
                                         "application/json")) != LLMR_OK ||
      (st = llmr_http_request_add_header(
           http, "Accept", stream ? "text/event-stream" : "application/json")) !=
          LLMR_OK)
    goto out;
  if (llmr_provider_api_key(p)) {
    llmr__buf_reset(&s);
    if (llmr__buf_puts(&s, "Bearer ") ||
        llmr__buf_puts(&s, llmr_provider_api_key(p))) {
      st = LLMR_E_NOMEM;
      goto out;
    }
    if ((st = llmr_http_request_add_header(http, "Authorization", s.data)) !=
        LLMR_OK)
      goto out;
  }
  /* OpenRouter's optional app attribution headers */
  if ((opt = llmr_provider_option(p, "http_referer")) &&
      (st = llmr_http_request_add_header(http, "HTTP-Referer", opt)) != LLMR_OK)
    goto out;
  if ((opt = llmr_provider_option(p, "x_title")) &&
      (st = llmr_http_request_add_header(http, "X-Title", opt)) != LLMR_OK)
    goto out;
  st = LLMR_OK;
out:
  if (s.data)
    memset(s.data, 0, s.cap); /* held "Bearer <key>" */
  llmr__buf_free(&s);
  cJSON_free(text);
  cJSON_Delete(body);
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

static llmr_status openai_parse(const llmr_provider *p,
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
