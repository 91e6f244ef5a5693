/*
 * llmr_complete_json: OpenAI request JSON in, OpenAI response JSON out, for
 * callers that only speak JSON (FFI, the CLI).
 */
#include "internal.h"

#include <string.h>

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

LLMR_API llmr_status llmr_complete_json(llmr_router *r,
                                        const char *request_json,
                                        char **response_json) {
  const char *slugs[LLMR__MAX_MODELS];
  char err[LLMR_ERRBUF_SIZE];
  llmr_request *req = NULL;
  llmr_response *resp = NULL;
  cJSON *root = NULL;
  llmr_status st;
  size_t n;

  if (!response_json)
    return LLMR_E_INVAL;
  *response_json = NULL;
  err[0] = '\0';
  if (!r || !request_json) {
    *response_json = input_error("no router or no request given");
    return LLMR_E_INVAL;
  }
  if (!(root = cJSON_Parse(request_json)) || !cJSON_IsObject(root)) {
    llmr__errf(err, sizeof(err), "request: expected a JSON object");
    st = LLMR_E_INVAL;
    goto fail;
  }
  if ((st = read_models(root, slugs, &n, err, sizeof(err))) != LLMR_OK ||
      (st = llmr__request_from_cjson(root, &req, err, sizeof(err))) !=
          LLMR_OK)
    goto fail;
  st = llmr_complete(r, slugs, n, req, &resp);
  if (resp && !(*response_json = llmr_response_to_json(resp)))
    st = LLMR_E_NOMEM;
  llmr_response_free(resp);
  llmr_request_free(req);
  cJSON_Delete(root);
  return st;
fail:
  cJSON_Delete(root);
  *response_json = input_error(st == LLMR_E_NOMEM ? "out of memory" : err);
  return st;
}
