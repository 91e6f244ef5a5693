/*
 * The router: resolves slugs to providers, walks the fallback list, records
 * the attempt trace. It never parses provider JSON (adapters do) and never
 * touches curl (the transport does).
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LLMR__DEFAULT_CONNECT_MS 10000L
#define LLMR__DEFAULT_TIMEOUT_MS 600000L
#define LLMR__DEFAULT_MAX_RESPONSE ((size_t)64 << 20)

struct llmr_router {
  llmr_provider **providers;
  size_t n_providers;
  size_t cap_providers;
  llmr__transport *transport;
  llmr__catalog catalog;
  int use_env;
};

static llmr_provider **find_slot(llmr_router *r, const char *name,
                                 size_t name_len) {
  size_t i;
  for (i = 0; i < r->n_providers; i++)
    if (strlen(r->providers[i]->name) == name_len &&
        memcmp(r->providers[i]->name, name, name_len) == 0)
      return &r->providers[i];
  return NULL;
}

/* Insert or replace the provider of the same name; takes ownership. */
static llmr_status put_provider(llmr_router *r, llmr_provider *p) {
  llmr_provider **slot = find_slot(r, p->name, strlen(p->name));
  if (slot) {
    llmr__provider_free(*slot);
    *slot = p;
    return LLMR_OK;
  }
  if (llmr__grow((void **)&r->providers, &r->cap_providers,
                 r->n_providers + 1, sizeof(*r->providers)) != 0) {
    llmr__provider_free(p);
    return LLMR_E_NOMEM;
  }
  r->providers[r->n_providers++] = p;
  return LLMR_OK;
}

LLMR_API void llmr_router_free(llmr_router *r) {
  size_t i;
  if (!r)
    return;
  for (i = 0; i < r->n_providers; i++)
    llmr__provider_free(r->providers[i]);
  llmr__free(r->providers);
  llmr__transport_free(r->transport);
  llmr__catalog_free(&r->catalog);
  llmr__free(r);
}

#define CONF_ERR(...)                                                          \
  do {                                                                         \
    llmr__errf(errbuf, errsize, __VA_ARGS__);                                  \
    st = LLMR_E_INVAL;                                                         \
    goto out;                                                                  \
  } while (0)

static int conf_long(const cJSON *conf, const char *key, long min, long *out) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(conf, key);
  if (!v)
    return 0;
  if (!cJSON_IsNumber(v) || v->valuedouble < (double)min ||
      v->valuedouble > 2147483647.0)
    return -1;
  *out = (long)v->valuedouble;
  return 0;
}

static const char *const top_keys[] = {
    "use_env",    "connect_timeout_ms", "timeout_ms", "max_response_bytes",
    "ca_file",    "user_agent",         "providers",  "catalog", NULL};

LLMR_API llmr_status llmr_router_new_ex(const char *config_json,
                                        llmr_router **out, char *errbuf,
                                        size_t errsize) {
  llmr_router *r = NULL;
  cJSON *conf = NULL;
  const cJSON *v, *provs = NULL;
  llmr__transport_opts topts;
  llmr_status st = LLMR_E_NOMEM;
  long max_resp = (long)(LLMR__DEFAULT_MAX_RESPONSE >> 10);
  size_t i;

  if (!out)
    return LLMR_E_INVAL;
  *out = NULL;
  memset(&topts, 0, sizeof(topts));
  topts.connect_timeout_ms = LLMR__DEFAULT_CONNECT_MS;
  topts.timeout_ms = LLMR__DEFAULT_TIMEOUT_MS;
  topts.max_response_bytes = LLMR__DEFAULT_MAX_RESPONSE;
  if (!(r = llmr__calloc(1, sizeof(*r))))
    goto out;
  r->use_env = 1;

  if (config_json) {
    const cJSON *k;
    if (!(conf = cJSON_Parse(config_json)) || !cJSON_IsObject(conf))
      CONF_ERR("config: expected a JSON object");
    cJSON_ArrayForEach(k, conf) {
      for (i = 0; top_keys[i]; i++)
        if (strcmp(k->string, top_keys[i]) == 0)
          break;
      if (!top_keys[i])
        CONF_ERR("config.%s: unknown setting", k->string);
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(conf, "use_env"))) {
      if (!cJSON_IsBool(v))
        CONF_ERR("config.use_env: expected true or false");
      r->use_env = cJSON_IsTrue(v);
    }
    if (conf_long(conf, "connect_timeout_ms", 1, &topts.connect_timeout_ms))
      CONF_ERR("config.connect_timeout_ms: expected a positive integer");
    if (conf_long(conf, "timeout_ms", 1, &topts.timeout_ms))
      CONF_ERR("config.timeout_ms: expected a positive integer");
    if ((v = cJSON_GetObjectItemCaseSensitive(conf, "max_response_bytes"))) {
      if (!cJSON_IsNumber(v) || v->valuedouble < 1 || v->valuedouble > 4e9)
        CONF_ERR("config.max_response_bytes: expected a positive integer");
      topts.max_response_bytes = (size_t)v->valuedouble;
    }
    (void)max_resp;
    if ((v = cJSON_GetObjectItemCaseSensitive(conf, "ca_file"))) {
      if (!cJSON_IsString(v))
        CONF_ERR("config.ca_file: expected a path");
      topts.ca_file = v->valuestring;
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(conf, "user_agent"))) {
      if (!cJSON_IsString(v) || strpbrk(v->valuestring, "\r\n"))
        CONF_ERR("config.user_agent: expected a one-line string");
      topts.user_agent = v->valuestring;
    }
    provs = cJSON_GetObjectItemCaseSensitive(conf, "providers");
    if (provs && !cJSON_IsObject(provs))
      CONF_ERR("config.providers: expected an object");
  }
  if (!topts.ca_file && r->use_env && getenv("LLMR_CA_FILE") &&
      *getenv("LLMR_CA_FILE"))
    topts.ca_file = getenv("LLMR_CA_FILE");

  /* the catalog: built in, then the user's file over it */
  if ((st = llmr__catalog_load_builtin(&r->catalog, errbuf, errsize)) !=
      LLMR_OK)
    goto out;
  {
    const char *path = NULL;
    if ((v = cJSON_GetObjectItemCaseSensitive(conf, "catalog"))) {
      if (!cJSON_IsString(v))
        CONF_ERR("config.catalog: expected the path of a catalog JSON file");
      path = v->valuestring;
    } else if (r->use_env && getenv("LLMR_CATALOG") &&
               *getenv("LLMR_CATALOG")) {
      path = getenv("LLMR_CATALOG");
    }
    if (path && (st = llmr__catalog_load_file(&r->catalog, path, errbuf,
                                              errsize)) != LLMR_OK)
      goto out;
  }

  /* Built-ins first, then the providers the config adds. */
  for (i = 0; i < llmr__n_builtins; i++) {
    const llmr__builtin *b = &llmr__builtins[i];
    const cJSON *pc = cJSON_GetObjectItemCaseSensitive(provs, b->name);
    llmr_provider *p;
    if ((st = llmr__provider_new(b->name, b->vt, b, pc, r->use_env, NULL, &p,
                                 errbuf, errsize)) != LLMR_OK ||
        (st = put_provider(r, p)) != LLMR_OK)
      goto out;
  }
  if (provs) {
    cJSON_ArrayForEach(v, provs) {
      const char *adapter = llmr__json_str(v, "adapter");
      const llmr__builtin *b;
      llmr_provider *p;
      if (llmr__builtin_find(v->string))
        continue;
      if (!*v->string || strchr(v->string, '/'))
        CONF_ERR("providers.%s: a provider name is non-empty and has no '/'",
                 v->string);
      b = llmr__builtin_find(adapter ? adapter : "openai");
      if (!b)
        CONF_ERR("providers.%s.adapter: unknown adapter '%s'", v->string,
                 adapter);
      if ((st = llmr__provider_new(v->string, b->vt, NULL, v, r->use_env,
                                   NULL, &p, errbuf, errsize)) != LLMR_OK ||
          (st = put_provider(r, p)) != LLMR_OK)
        goto out;
    }
  }
  if ((st = llmr__transport_new(&topts, &r->transport)) != LLMR_OK)
    goto out;
  st = LLMR_OK;
out:
  cJSON_Delete(conf);
  if (st != LLMR_OK) {
    if (st == LLMR_E_NOMEM)
      llmr__errf(errbuf, errsize, "out of memory");
    llmr_router_free(r);
    return st;
  }
  *out = r;
  return LLMR_OK;
}

LLMR_API llmr_status llmr_router_new(const char *config_json,
                                     llmr_router **out) {
  return llmr_router_new_ex(config_json, out, NULL, 0);
}

LLMR_API llmr_status llmr_router_add_provider(llmr_router *r, const char *name,
                                              const llmr_provider_vt *vt,
                                              const char *config_json,
                                              void *userdata) {
  cJSON *conf = NULL;
  llmr_provider *p;
  llmr_status st;
  if (!r || !name || !*name || strchr(name, '/') || !vt ||
      vt->abi_version != LLMR_PROVIDER_ABI_VERSION || !vt->build_request ||
      !vt->parse_response)
    return LLMR_E_INVAL;
  if (config_json && !(conf = cJSON_Parse(config_json)))
    return LLMR_E_INVAL;
  st = llmr__provider_new(name, vt, NULL, conf, r->use_env, userdata, &p, NULL,
                          0);
  cJSON_Delete(conf);
  if (st != LLMR_OK)
    return st;
  return put_provider(r, p);
}

/* ---- one call ----------------------------------------------------------- */

/* Whether a failed attempt lets the router try the next slug. The issue-5
 * policy will make this configurable; this is the default table. */
static int should_fall_back(llmr_status st) {
  switch (st) {
  case LLMR_E_TRANSPORT:
  case LLMR_E_TIMEOUT:
  case LLMR_E_TLS:
  case LLMR_E_RATE_LIMITED:
  case LLMR_E_OVERLOADED:
  case LLMR_E_SERVER:
  case LLMR_E_AUTH:
  case LLMR_E_PAYMENT:
  case LLMR_E_NOT_FOUND:
  case LLMR_E_CONTEXT_LENGTH:
  case LLMR_E_PROTOCOL:
  case LLMR_E_NO_PROVIDER:
  case LLMR_E_NO_KEY:
  case LLMR_E_CAPABILITY:
  case LLMR_E_BUDGET:
  case LLMR_E_PROVIDER:
    return 1;
  default:
    return 0;
  }
}

/* A transport failure: retryable when the next try could succeed. */
static int transport_retryable(llmr_status st) {
  return st == LLMR_E_TRANSPORT || st == LLMR_E_TIMEOUT;
}

/* Generic mapping when an adapter has no classify_error. */
static llmr_status generic_classify(const llmr_http_response *http,
                                    llmr_response *resp) {
  size_t len;
  const char *body = llmr_http_response_body(http, &len);
  cJSON *root = cJSON_ParseWithLength(body, len);
  const char *msg = NULL, *type = NULL, *code = NULL;
  int s = llmr_http_response_status(http);
  llmr_status st = llmr_status_from_http(s);
  char fallback[64];
  if (root)
    llmr__error_fields(root, &msg, &type, &code);
  if (!msg) {
    snprintf(fallback, sizeof(fallback), "HTTP %d", s);
    msg = fallback;
  }
  if (llmr_response_set_error(resp, st, type, msg,
                              s == 408 || s == 409 || s == 429 || s >= 500,
                              llmr__retry_after_from_headers(http)) != LLMR_OK)
    st = LLMR_E_NOMEM;
  cJSON_Delete(root);
  return st;
}

/* Try one slug. Fills resp (answer or error) and *a (the trace entry). */
static llmr_status attempt_one(llmr_router *r, const char *slug,
                               const llmr_request *req, llmr_response *resp,
                               llmr__attempt *a, const char **native_out) {
  const llmr__model_info *info;
  const char *native, *missing;
  llmr_http_request http;
  llmr_http_response reply;
  const char *slash = strchr(slug, '/');
  llmr_provider **pp;
  llmr_provider *p;
  llmr_status st;
  char err[LLMR_ERRBUF_SIZE];
  size_t i;

  memset(&http, 0, sizeof(http));
  memset(&reply, 0, sizeof(reply));
  if (!slash || slash == slug || !slash[1]) {
    llmr_response_set_error(resp, LLMR_E_NO_PROVIDER, NULL,
                            "model slug must look like provider/model-id", 0,
                            -1);
    return LLMR_E_NO_PROVIDER;
  }
  /* a catalog slug names its provider and native id; any other slug is
   * provider/native-id as written */
  if ((info = llmr__catalog_find(&r->catalog, slug))) {
    pp = find_slot(r, info->provider, strlen(info->provider));
    native = info->model;
  } else {
    pp = find_slot(r, slug, (size_t)(slash - slug));
    if (!pp) {
      const char *real = llmr__provider_alias(slug, (size_t)(slash - slug));
      if (real)
        pp = find_slot(r, real, strlen(real));
    }
    native = slash + 1;
  }
  *native_out = native;
  if (!pp) {
    if (info)
      snprintf(err, sizeof(err), "no provider named '%s' is registered",
               info->provider);
    else
      snprintf(err, sizeof(err), "no provider named '%.*s' is registered",
               (int)(slash - slug), slug);
    llmr_response_set_error(resp, LLMR_E_NO_PROVIDER, NULL, err, 0, -1);
    return LLMR_E_NO_PROVIDER;
  }
  p = *pp;
  a->provider = p->name;
  if ((missing = llmr__capability_missing(info, req))) {
    snprintf(err, sizeof(err),
             "%s does not support %s (model catalog); skipped", slug,
             missing);
    llmr_response_set_error(resp, LLMR_E_CAPABILITY, NULL, err, 0, -1);
    return LLMR_E_CAPABILITY;
  }
  if (p->key_required && !p->api_key) {
    snprintf(err, sizeof(err), "no API key configured for provider '%s'",
             p->name);
    llmr_response_set_error(resp, LLMR_E_NO_KEY, NULL, err, 0, -1);
    return LLMR_E_NO_KEY;
  }
  st = p->vt->build_request(p, req, native, 0, &http, resp);
  for (i = 0; st == LLMR_OK && i < p->n_headers; i++)
    st = llmr_http_request_add_header(&http, p->headers[i].name,
                                      p->headers[i].value);
  if (st != LLMR_OK) {
    if (!resp->error)
      llmr_response_set_error(resp, st, NULL,
                              "could not build the provider request", 0, -1);
    goto out;
  }
  err[0] = '\0';
  st = llmr__transport_perform(r->transport, &http, &reply, err, sizeof(err));
  if (st != LLMR_OK) {
    llmr_response_set_error(resp, st, NULL, err[0] ? err : llmr_status_str(st),
                            transport_retryable(st), -1);
    goto out;
  }
  resp->http_status = (int)reply.status;
  if (reply.status >= 200 && reply.status < 300) {
    st = p->vt->parse_response(p, &reply, resp);
    if (st != LLMR_OK && !resp->error)
      llmr_response_set_error(resp, st, NULL, "could not parse the response",
                              0, -1);
  } else {
    st = p->vt->classify_error ? p->vt->classify_error(p, &reply, resp)
                               : generic_classify(&reply, resp);
    if (st == LLMR_OK) /* a classifier must not call an error a success */
      st = LLMR_E_PROVIDER;
  }
  resp->http_status = (int)reply.status;
out:
  a->http_status = resp->http_status;
  llmr__http_request_clear(&http);
  llmr__http_response_clear(&reply);
  return st;
}

LLMR_API llmr_status llmr_complete(llmr_router *r, const char *const *models,
                                   size_t n_models, const llmr_request *req,
                                   llmr_response **out) {
  llmr_response *resp;
  llmr_status st = LLMR_E_INVAL;
  size_t i, failed = 0;

  if (!out)
    return LLMR_E_INVAL;
  *out = NULL;
  if (!(resp = llmr__response_new()))
    return LLMR_E_NOMEM;
  *out = resp;
  if (!r || !req || !models || n_models == 0 || req->n_messages == 0) {
    llmr_response_set_error(resp, LLMR_E_INVAL, NULL,
                            !req || req->n_messages == 0
                                ? "the request has no messages"
                                : "no router or no models given",
                            0, -1);
    return resp->status;
  }
  for (i = 0; i < n_models; i++) {
    llmr__attempt a;
    const char *native = NULL;
    double t0 = llmr__now_ms();
    memset(&a, 0, sizeof(a));
    a.model = (char *)(models[i] ? models[i] : ""); /* borrowed; copied by add_attempt */
    llmr__response_reset_attempt(resp);
    st = attempt_one(r, a.model, req, resp, &a, &native);
    a.status = st;
    a.duration_ms = llmr__now_ms() - t0;
    a.retryable = st != LLMR_OK && resp->retryable;
    a.error = st != LLMR_OK ? resp->error : NULL;
    if (llmr__response_add_attempt(resp, &a) != LLMR_OK) {
      st = LLMR_E_NOMEM;
      break;
    }
    if (st == LLMR_OK) {
      resp->status = LLMR_OK;
      if (llmr__response_set_answered(resp, a.model, a.provider, native) !=
          LLMR_OK)
        st = LLMR_E_NOMEM;
      break;
    }
    failed++;
    if (!should_fall_back(st))
      break;
  }
  if (st == LLMR_OK)
    return LLMR_OK;
  if (st == LLMR_E_NOMEM) {
    resp->status = LLMR_E_NOMEM;
    return LLMR_E_NOMEM;
  }
  if (failed > 1 && i == n_models) {
    /* every slug failed: say so, and keep the last one's details */
    char msg[LLMR_ERRBUF_SIZE + 64];
    snprintf(msg, sizeof(msg), "all %zu models failed; last: %s", failed,
             resp->error ? resp->error : llmr_status_str(st));
    st = LLMR_E_ALL_FAILED;
    llmr_response_set_error(resp, st, resp->error_type, msg, resp->retryable,
                            resp->retry_after_s);
  }
  resp->status = st;
  return st;
}
