/*
 * llmr_complete_json: OpenAI request JSON in, OpenAI response JSON out, for
 * callers that only speak JSON (FFI, the CLI).
 */
#include "internal.h"

#include <string.h>
#include <time.h>

#define LLMR__MAX_MODELS 64

/* An error document for a request we could not even send. */
static char *input_error(const char *msg) {
  llmr_response *resp = llmr__response_new();
  char *out;
  if (!resp)
    return NULL;
  llmr_response_set_error(resp, LLMR_E_INVAL, NULL, msg, 0, -1);
  out = llmr_response_to_json(resp);
  llmr_response_free(resp);
  return out;
}

/* Collect `model` or `models` into slugs[] (borrowed from root). */
static llmr_status read_models(const cJSON *root, const char **slugs,
                               size_t *n, char *err, size_t errsize) {
  const cJSON *m = cJSON_GetObjectItemCaseSensitive(root, "models");
  const cJSON *one = cJSON_GetObjectItemCaseSensitive(root, "model");
  const cJSON *s;
  *n = 0;
  if (m && !cJSON_IsNull(m)) {
    if (!cJSON_IsArray(m) || cJSON_GetArraySize(m) == 0) {
      llmr__errf(err, errsize, "models: expected a non-empty array of slugs");
      return LLMR_E_INVAL;
    }
    cJSON_ArrayForEach(s, m) {
      if (!cJSON_IsString(s) || !*s->valuestring) {
        llmr__errf(err, errsize, "models[%zu]: expected a slug string", *n);
        return LLMR_E_INVAL;
      }
      if (*n == LLMR__MAX_MODELS) {
        llmr__errf(err, errsize, "models: at most %d slugs",
                   LLMR__MAX_MODELS);
        return LLMR_E_INVAL;
      }
      slugs[(*n)++] = s->valuestring;
    }
    return LLMR_OK;
  }
  if (!cJSON_IsString(one) || !*one->valuestring) {
    llmr__errf(err, errsize,
               "model: expected a slug such as \"openai/gpt-4o-mini\" (or "
               "\"models\": [...])");
    return LLMR_E_INVAL;
  }
  slugs[(*n)++] = one->valuestring;
  return LLMR_OK;
}

/* Parse the request document: slugs (borrowed from *root) and request. On
 * failure *out_doc is the error document. */
static llmr_status prepare(llmr_router *r, const char *request_json,
                           const char **slugs, size_t *n, cJSON **root,
                           llmr_request **req, char **out_doc) {
  char err[LLMR_ERRBUF_SIZE];
  llmr_status st;
  err[0] = '\0';
  *root = NULL;
  *req = NULL;
  if (!r || !request_json) {
    *out_doc = input_error("no router or no request given");
    return LLMR_E_INVAL;
  }
  if (!(*root = cJSON_Parse(request_json)) || !cJSON_IsObject(*root)) {
    llmr__errf(err, sizeof(err), "request: expected a JSON object");
    st = LLMR_E_INVAL;
    goto fail;
  }
  if ((st = read_models(*root, slugs, n, err, sizeof(err))) != LLMR_OK ||
      (st = llmr__request_from_cjson(*root, req, err, sizeof(err))) !=
          LLMR_OK)
    goto fail;
  return LLMR_OK;
fail:
  cJSON_Delete(*root);
  *root = NULL;
  *out_doc = input_error(st == LLMR_E_NOMEM ? "out of memory" : err);
  return st;
}

/* The final document of a call, as llmr_response_to_json() gives it. */
static llmr_status finish(llmr_status st, llmr_response *resp, cJSON *root,
                          llmr_request *req, char **response_json) {
  if (resp && !(*response_json = llmr_response_to_json(resp)))
    st = LLMR_E_NOMEM;
  llmr_response_free(resp);
  llmr_request_free(req);
  cJSON_Delete(root);
  return st;
}

LLMR_API llmr_status llmr_complete_json(llmr_router *r,
                                        const char *request_json,
                                        char **response_json) {
  const char *slugs[LLMR__MAX_MODELS];
  llmr_request *req = NULL;
  llmr_response *resp = NULL;
  cJSON *root = NULL;
  llmr_status st;
  size_t n;

  if (!response_json)
    return LLMR_E_INVAL;
  *response_json = NULL;
  if ((st = prepare(r, request_json, slugs, &n, &root, &req,
                    response_json)) != LLMR_OK)
    return st;
  st = llmr_complete(r, slugs, n, req, &resp);
  return finish(st, resp, root, req, response_json);
}

/* ---- streaming chunks ---------------------------------------------------- */

typedef struct chunker {
  llmr_stream_json_cb cb;
  void *user;
  int64_t created;
  int role_sent;
  int oom;
} chunker;

/* {"id","object":"chat.completion.chunk","created","model","choices":[...]}
 * with one choice holding `delta` (taken over) and the finish reason, or
 * no choice when delta is NULL. */
static cJSON *chunk_new(chunker *k, const llmr_event *ev, cJSON *delta,
                        const char *finish) {
  cJSON *c = cJSON_CreateObject(), *choices, *choice;
  int64_t created = ev->response->created ? ev->response->created : k->created;
  if (!c || !llmr__json_add_str_or_null(c, "id",
                                        llmr_response_id(ev->response)) ||
      !cJSON_AddStringToObject(c, "object", "chat.completion.chunk") ||
      !cJSON_AddNumberToObject(c, "created", (double)created) ||
      !llmr__json_add_str_or_null(c, "model", ev->model) ||
      !(choices = cJSON_AddArrayToObject(c, "choices")))
    goto oom;
  if (!delta)
    return c;
  if (!(choice = cJSON_CreateObject())) 
    goto oom;
  cJSON_AddItemToArray(choices, choice);
  if (!cJSON_AddNumberToObject(choice, "index", 0))
    goto oom;
  cJSON_AddItemToObject(choice, "delta", delta);
  delta = NULL;
  if (!llmr__json_add_str_or_null(choice, "finish_reason", finish))
    goto oom;
  return c;
oom:
  cJSON_Delete(delta);
  cJSON_Delete(c);
  return NULL;
}

static int chunk_send(chunker *k, cJSON *c) {
  char *s;
  int rc;
  if (!c || !(s = cJSON_PrintUnformatted(c))) {
    cJSON_Delete(c);
    k->oom = 1;
    return 1;
  }
  cJSON_Delete(c);
  rc = k->cb ? k->cb(s, k->user) : 0;
  cJSON_free(s);
  return rc;
}

/* The delta of a content event. NULL on OOM. */
static cJSON *content_delta(chunker *k, const llmr_event *ev) {
  cJSON *d = cJSON_CreateObject(), *arr, *tc, *fn;
  if (!d)
    return NULL;
  if (!k->role_sent) {
    if (!cJSON_AddStringToObject(d, "role", "assistant"))
      goto oom;
    k->role_sent = 1;
  }
  switch (ev->type) {
  case LLMR_EVENT_TEXT:
    if (!cJSON_AddStringToObject(d, "content", ev->text))
      goto oom;
    break;
  case LLMR_EVENT_REASONING:
    if (!cJSON_AddStringToObject(d, "reasoning", ev->text))
      goto oom;
    break;
  default: /* LLMR_EVENT_TOOL_CALL */
    if (!(arr = cJSON_AddArrayToObject(d, "tool_calls")) ||
        !(tc = cJSON_CreateObject()))
      goto oom;
    cJSON_AddItemToArray(arr, tc);
    if (!cJSON_AddNumberToObject(tc, "index", (double)ev->tool_index))
      goto oom;
    if (ev->tool_id && (!cJSON_AddStringToObject(tc, "id", ev->tool_id) ||
                        !cJSON_AddStringToObject(tc, "type", "function")))
      goto oom;
    if (!(fn = cJSON_AddObjectToObject(tc, "function")))
      goto oom;
    if (ev->tool_name && !cJSON_AddStringToObject(fn, "name", ev->tool_name))
      goto oom;
    if (!cJSON_AddStringToObject(fn, "arguments", ev->text))
      goto oom;
    break;
  }
  return d;
oom:
  cJSON_Delete(d);
  return NULL;
}

static int on_event(const llmr_event *ev, void *user) {
  chunker *k = user;
  cJSON *d, *c;
  switch (ev->type) {
  case LLMR_EVENT_TEXT:
  case LLMR_EVENT_REASONING:
  case LLMR_EVENT_TOOL_CALL:
    if (!(d = content_delta(k, ev))) {
      k->oom = 1;
      return 1;
    }
    return chunk_send(k, chunk_new(k, ev, d, NULL));
  case LLMR_EVENT_DONE:
    /* the finish chunk, then the usage chunk with no choices */
    if (!(d = cJSON_CreateObject())) {
      k->oom = 1;
      return 1;
    }
    if (!k->role_sent && cJSON_AddStringToObject(d, "role", "assistant"))
      k->role_sent = 1;
    if (chunk_send(k, chunk_new(k, ev, d, ev->finish_reason)) || k->oom)
      return 1;
    c = chunk_new(k, ev, NULL, NULL);
    if (c) {
      cJSON *u = llmr__usage_to_cjson(ev->response);
      if (!u) {
        cJSON_Delete(c);
        c = NULL;
      } else {
        cJSON_AddItemToObject(c, "usage", u);
      }
    }
    return chunk_send(k, c);
  default:
    return 0;
  }
}

LLMR_API llmr_status llmr_stream_json(llmr_router *r, const char *request_json,
                                      llmr_stream_json_cb cb, void *user,
                                      char **response_json) {
  const char *slugs[LLMR__MAX_MODELS];
  llmr_request *req = NULL;
  llmr_response *resp = NULL;
  cJSON *root = NULL;
  chunker k;
  llmr_status st;
  size_t n;

  if (!response_json)
    return LLMR_E_INVAL;
  *response_json = NULL;
  if ((st = prepare(r, request_json, slugs, &n, &root, &req,
                    response_json)) != LLMR_OK)
    return st;
  memset(&k, 0, sizeof(k));
  k.cb = cb;
  k.user = user;
  k.created = (int64_t)time(NULL);
  st = llmr_stream(r, slugs, n, req, on_event, &k, &resp);
  if (k.oom && resp && st == LLMR_E_ABORTED) {
    st = LLMR_E_NOMEM;
    llmr_response_set_error(resp, st, NULL,
                            "out of memory while building a stream chunk", 0,
                            -1);
  }
  return finish(st, resp, root, req, response_json);
}
