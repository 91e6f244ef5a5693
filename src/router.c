/*
 * The router: resolves slugs to providers, walks the fallback list, records
 * the attempt trace. It never parses provider JSON (adapters do) and never
 * touches curl (the transport does).
 */
#include "internal.h"
#include "sse.h"

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
  llmr_ledger *ledger;     /* borrowed, or own_ledger */
  llmr_ledger *own_ledger; /* opened from the config key "ledger" */
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
  llmr_ledger_close(r->own_ledger);
  llmr__free(r);
}

LLMR_API llmr_status llmr_router_set_ledger(llmr_router *r, llmr_ledger *l) {
  if (!r)
    return LLMR_E_INVAL;
  if (r->own_ledger && r->own_ledger != l) {
    llmr_ledger_close(r->own_ledger);
    r->own_ledger = NULL;
  }
  r->ledger = l;
  return LLMR_OK;
}

/* Config key "ledger": a path, or {"path": ..., ledger options...}. */
static llmr_status open_config_ledger(llmr_router *r, const cJSON *v,
                                      char *errbuf, size_t errsize) {
  cJSON *opts = NULL;
  char *opts_json = NULL;
  const char *path = NULL;
  llmr_status st;
  if (cJSON_IsString(v)) {
    path = v->valuestring;
  } else if (cJSON_IsObject(v) && llmr__json_str(v, "path")) {
    path = llmr__json_str(v, "path");
    if (!(opts = cJSON_Duplicate(v, 1)))
      return LLMR_E_NOMEM;
    cJSON_DeleteItemFromObjectCaseSensitive(opts, "path");
    if (!(opts_json = cJSON_PrintUnformatted(opts))) {
      cJSON_Delete(opts);
      return LLMR_E_NOMEM;
    }
  } else {
    llmr__errf(errbuf, errsize,
               "config.ledger: expected a path or an object with \"path\"");
    return LLMR_E_INVAL;
  }
  st = llmr_ledger_open_ex(path, opts_json, &r->own_ledger, errbuf, errsize);
  cJSON_free(opts_json);
  cJSON_Delete(opts);
  if (st == LLMR_OK)
    r->ledger = r->own_ledger;
  return st;
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
    "use_env",         "connect_timeout_ms", "timeout_ms",
    "first_byte_timeout_ms", "idle_timeout_ms", "max_response_bytes",
    "ca_file",         "user_agent",         "providers",
    "catalog",         "ledger",             NULL};

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
    if (conf_long(conf, "first_byte_timeout_ms", 1,
                  &topts.first_byte_timeout_ms))
      CONF_ERR("config.first_byte_timeout_ms: expected a positive integer");
    if (conf_long(conf, "idle_timeout_ms", 1, &topts.idle_timeout_ms))
      CONF_ERR("config.idle_timeout_ms: expected a positive integer");
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
  if ((v = cJSON_GetObjectItemCaseSensitive(conf, "ledger")) &&
      (st = open_config_ledger(r, v, errbuf, errsize)) != LLMR_OK)
    goto out;
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

/* One call in progress: llmr_complete() (sink NULL) or llmr_stream(). */
typedef struct call {
  llmr_router *r;
  const llmr_request *req;
  llmr_response *resp;
  llmr__sink *sink;
  const char *const *models;
  size_t n_models;
  int recorded; /* attempts that left a ledger record */
} call;

static llmr_status set_error(llmr_response *resp, llmr_status st,
                             const char *msg, int retryable) {
  return llmr_response_set_error(resp, st, NULL, msg, retryable, -1) ==
                 LLMR_OK
             ? st
             : LLMR_E_NOMEM;
}

/* Resolve a slug to its provider and native model id. On failure the error
 * is on resp; *pp may still be set (capability / key problems). */
static llmr_status resolve(llmr_router *r, const char *slug,
                           const llmr_request *req, llmr_response *resp,
                           llmr_provider **pp_out, const char **native_out,
                           const llmr__model_info **info_out) {
  const llmr__model_info *info;
  const char *native, *missing;
  const char *slash = strchr(slug, '/');
  llmr_provider **pp;
  llmr_provider *p;
  char err[LLMR_ERRBUF_SIZE];

  *pp_out = NULL;
  *native_out = NULL;
  *info_out = NULL;
  if (!slash || slash == slug || !slash[1])
    return set_error(resp, LLMR_E_NO_PROVIDER,
                     "model slug must look like provider/model-id", 0);
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
  if (!pp) {
    if (info)
      snprintf(err, sizeof(err), "no provider named '%s' is registered",
               info->provider);
    else
      snprintf(err, sizeof(err), "no provider named '%.*s' is registered",
               (int)(slash - slug), slug);
    return set_error(resp, LLMR_E_NO_PROVIDER, err, 0);
  }
  p = *pp;
  *pp_out = p;
  *native_out = native;
  /* prices: the slug's entry, or the entry of the same provider model
   * ("openai/gpt-4o-2024-08-06" priced as the catalog's entry for it) */
  *info_out = info ? info : llmr__catalog_find_native(&r->catalog, p->name,
                                                      native);
  if ((missing = llmr__capability_missing(info, req))) {
    snprintf(err, sizeof(err),
             "%s does not support %s (model catalog); skipped", slug,
             missing);
    return set_error(resp, LLMR_E_CAPABILITY, err, 0);
  }
  if (p->key_required && !p->api_key) {
    snprintf(err, sizeof(err), "no API key configured for provider '%s'",
             p->name);
    return set_error(resp, LLMR_E_NO_KEY, err, 0);
  }
  return LLMR_OK;
}

/* Describe a non-2xx reply on resp. */
static llmr_status classify(const llmr_provider *p,
                            const llmr_http_response *reply,
                            llmr_response *resp) {
  llmr_status st = p->vt->classify_error ? p->vt->classify_error(p, reply, resp)
                                         : generic_classify(reply, resp);
  return st == LLMR_OK ? LLMR_E_PROVIDER : st; /* never call it a success */
}

/* A 2xx body in one piece: the adapter parses it (during llmr_stream()
 * the setters deliver it as events). */
static llmr_status parse_whole(const llmr_provider *p,
                               const llmr_http_response *reply,
                               llmr_response *resp) {
  llmr_status st = p->vt->parse_response(p, reply, resp);
  if (st != LLMR_OK && !resp->error)
    set_error(resp, st, "could not parse the response", 0);
  return st;
}

/* ---- the streaming glue: transport bytes -> SSE -> adapter -------------- */

enum { BODY_UNDECIDED, BODY_SSE, BODY_JSON };

typedef struct glue {
  const llmr_provider *p;
  llmr_response *resp;
  void *state;
  llmr__sse_parser sse;
  int mode;
  llmr__buf held;   /* the JSON body, or leading whitespace while undecided */
  llmr_status st;   /* why the glue stopped the transfer */
} glue;

static int glue_event(void *user, const llmr__sse_event *ev) {
  glue *g = user;
  llmr_status st = g->p->vt->stream_event(
      g->p, g->state, ev->event_len ? ev->event : "message", ev->data,
      ev->data_len, g->resp);
  if (st == LLMR_OK)
    return 0;
  g->st = st;
  if (!g->resp->error)
    set_error(g->resp, st, "could not decode a stream event", 0);
  return 1;
}

static int glue_feed(glue *g, const char *data, size_t len) {
  llmr_status st = llmr__sse_feed(&g->sse, data, len);
  if (st == LLMR_OK)
    return 0;
  if (st != LLMR_E_ABORTED) { /* the parser's own failure */
    g->st = st;
    set_error(g->resp, st,
              st == LLMR_E_PROTOCOL
                  ? "stream line or event longer than the parser's cap"
                  : llmr_status_str(st),
              0);
  }
  return 1;
}

/* Is the reply an event stream or a JSON document? The Content-Type says;
 * without one, the first non-blank byte does ('{' or '[': JSON). */
static int decide(const llmr_http_response *head, const char *data,
                  size_t len) {
  const char *ct = llmr_http_response_header(head, "content-type");
  size_t i;
  if (ct && strstr(ct, "event-stream"))
    return BODY_SSE;
  if (ct && strstr(ct, "json"))
    return BODY_JSON;
  for (i = 0; i < len; i++) {
    char c = data[i];
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
      continue;
    return (c == '{' || c == '[') ? BODY_JSON : BODY_SSE;
  }
  return BODY_UNDECIDED;
}

static int glue_body(void *user, const llmr_http_response *head,
                     const char *data, size_t len) {
  glue *g = user;
  if (g->mode == BODY_UNDECIDED) {
    g->mode = decide(head, data, len);
    if (g->mode == BODY_UNDECIDED || g->mode == BODY_JSON) {
      if (llmr__buf_append(&g->held, data, len) != 0) {
        g->st = set_error(g->resp, LLMR_E_NOMEM, NULL, 0);
        return 1;
      }
      return 0;
    }
    /* an event stream after blank bytes: feed those first */
    if (g->held.len && glue_feed(g, g->held.data, g->held.len))
      return 1;
    llmr__buf_reset(&g->held);
  } else if (g->mode == BODY_JSON) {
    if (llmr__buf_append(&g->held, data, len) != 0) {
      g->st = set_error(g->resp, LLMR_E_NOMEM, NULL, 0);
      return 1;
    }
    return 0;
  }
  return glue_feed(g, data, len);
}

/* Send a streaming request and decode its reply as it arrives. */
static llmr_status exchange_stream(llmr_router *r, const llmr_provider *p,
                                   const llmr_http_request *http,
                                   llmr_http_response *reply,
                                   llmr_response *resp) {
  glue g;
  char err[LLMR_ERRBUF_SIZE];
  llmr_status st, tst;

  memset(&g, 0, sizeof(g));
  g.p = p;
  g.resp = resp;
  if (p->vt->state_size &&
      !(g.state = llmr__calloc(1, p->vt->state_size)))
    return set_error(resp, LLMR_E_NOMEM, NULL, 0);
  llmr__sse_init(&g.sse, 0, glue_event, &g);
  err[0] = '\0';
  tst = llmr__transport_stream(r->transport, http, reply, glue_body, &g, err,
                               sizeof(err));
  resp->http_status = (int)reply->status;
  if (tst == LLMR_E_ABORTED) {
    /* the glue stopped it: the adapter's error, a cancel, or the parser */
    st = g.st != LLMR_OK ? g.st : tst;
  } else if (reply->status >= 200 && reply->status < 300 &&
             g.mode == BODY_JSON) {
    if (tst != LLMR_OK) {
      st = set_error(resp, tst, err[0] ? err : llmr_status_str(tst),
                     transport_retryable(tst));
    } else {
      /* a host that answered the stream request with one document */
      llmr__buf body = reply->body;
      reply->body = g.held;
      st = parse_whole(p, reply, resp);
      reply->body = body;
    }
  } else if (reply->status >= 200 && reply->status < 300) {
    /* a trailing event with no blank line after it is discarded (spec) */
    if (tst == LLMR_OK)
      llmr__sse_finish(&g.sse);
    if (resp->stream_done) /* complete: what follows the marker is moot */
      st = LLMR_OK;
    else if (tst != LLMR_OK)
      st = set_error(resp, tst, err[0] ? err : llmr_status_str(tst),
                     transport_retryable(tst));
    else
      st = set_error(resp, LLMR_E_PROTOCOL,
                     "stream ended before the provider's end marker", 0);
  } else if (tst != LLMR_OK) {
    st = set_error(resp, tst, err[0] ? err : llmr_status_str(tst),
                   transport_retryable(tst));
  } else {
    st = classify(p, reply, resp);
  }
  llmr__sse_free(&g.sse);
  llmr__buf_free(&g.held);
  llmr__free(g.state);
  return st;
}

/* Build, send and read one attempt. */
static llmr_status exchange(call *c, const llmr_provider *p,
                            const char *native) {
  llmr_response *resp = c->resp;
  int streaming = c->sink && p->vt->stream_event;
  llmr_http_request http;
  llmr_http_response reply;
  llmr_status st;
  char err[LLMR_ERRBUF_SIZE];
  size_t i;

  memset(&http, 0, sizeof(http));
  memset(&reply, 0, sizeof(reply));
  st = p->vt->build_request(p, c->req, native, streaming, &http, resp);
  for (i = 0; st == LLMR_OK && i < p->n_headers; i++)
    st = llmr_http_request_add_header(&http, p->headers[i].name,
                                      p->headers[i].value);
  if (st != LLMR_OK) {
    if (!resp->error)
      set_error(resp, st, "could not build the provider request", 0);
    goto out;
  }
  if (streaming) {
    st = exchange_stream(c->r, p, &http, &reply, resp);
    goto out;
  }
  err[0] = '\0';
  st = llmr__transport_perform(c->r->transport, &http, &reply, err,
                               sizeof(err));
  resp->http_status = (int)reply.status;
  if (st != LLMR_OK)
    st = set_error(resp, st, err[0] ? err : llmr_status_str(st),
                   transport_retryable(st));
  else if (reply.status >= 200 && reply.status < 300)
    st = parse_whole(p, &reply, resp);
  else
    st = classify(p, &reply, resp);
out:
  llmr__http_request_clear(&http);
  llmr__http_response_clear(&reply);
  return st;
}

/* Deliver an event that carries a status (FALLBACK, ERROR). */
static llmr_status emit_status(llmr_response *resp, llmr_event_type type,
                               llmr_status st, const char *error, int http) {
  llmr_event ev;
  memset(&ev, 0, sizeof(ev));
  ev.type = type;
  ev.status = st;
  ev.error = error;
  ev.http_status = http;
  return llmr__emit(resp, &ev);
}

static llmr_status emit_plain(llmr_response *resp, llmr_event_type type) {
  llmr_event ev;
  memset(&ev, 0, sizeof(ev));
  ev.type = type;
  if (type == LLMR_EVENT_DONE)
    ev.finish_reason = resp->finish_reason;
  return llmr__emit(resp, &ev);
}

/* ---- the ledger: budgets before an attempt, a record after it ----------- */

/* The most an attempt can cost: the prompt estimate at the input price and
 * the output cap at the output price (max_tokens, else the catalog's
 * max_output_tokens, else what the context window leaves, else 4096). */
static int64_t worst_case(const llmr__model_info *info,
                          const llmr_request *req) {
  int64_t prompt = llmr__request_prompt_estimate(req), out = 4096;
  if (!info)
    return -1;
  if (req->max_tokens > 0)
    out = req->max_tokens;
  else if (info->max_output_tokens > 0)
    out = info->max_output_tokens;
  else if (info->context_window > prompt)
    out = info->context_window - prompt;
  if (req->reasoning_budget > out)
    out = req->reasoning_budget;
  return llmr__worst_case_nanousd(info, prompt, out);
}

/* Reserve the attempt's worst case; LLMR_E_BUDGET (on resp) when a budget
 * has no room for it. */
static llmr_status reserve(call *c, const char *slug,
                           const llmr__model_info *info,
                           llmr__reservation *res) {
  char why[LLMR_ERRBUF_SIZE];
  llmr_status st;
  if (!c->r->ledger || !llmr__ledger_has_budgets(c->r->ledger))
    return LLMR_OK;
  st = llmr__ledger_reserve(c->r->ledger, c->req->app,
                            worst_case(info, c->req), res, why, sizeof(why));
  if (st == LLMR_E_BUDGET) {
    char msg[LLMR_ERRBUF_SIZE + 80];
    snprintf(msg, sizeof(msg), "%s refused before sending: %s", slug, why);
    return set_error(c->resp, st, msg, 0);
  }
  return st;
}

/* Price an attempt that reached its provider, add it to the call's cost
 * and leave its ledger record (settling the reservation). */
static void settle(call *c, llmr__attempt *a, const char *native,
                   const llmr__model_info *info, int64_t t_wall,
                   double ttft_ms, llmr__reservation *res) {
  llmr_response *resp = c->resp;
  llmr__ledger_rec rec;
  char err[LLMR_ERRBUF_SIZE];
  memset(&rec, 0, sizeof(rec));
  rec.usage.prompt = resp->tokens[LLMR_TOKENS_PROMPT];
  rec.usage.completion = resp->tokens[LLMR_TOKENS_COMPLETION];
  rec.usage.cached = resp->tokens[LLMR_TOKENS_CACHED];
  rec.usage.cache_write = resp->tokens[LLMR_TOKENS_CACHE_WRITE];
  rec.usage.reasoning = resp->tokens[LLMR_TOKENS_REASONING];
  a->cost_nanousd = llmr__cost_nanousd(info, &rec.usage, a->status == LLMR_OK);
  if (a->cost_nanousd < 0 || resp->cost_nanousd < 0)
    resp->cost_nanousd = -1;
  else
    resp->cost_nanousd += a->cost_nanousd;
  if (!c->r->ledger)
    return;
  rec.t_ms = t_wall;
  rec.id = resp->request_id;
  rec.app = c->req->app;
  rec.user = c->req->user;
  rec.asked = c->models;
  rec.n_asked = c->n_models;
  rec.model = a->model;
  rec.provider = a->provider;
  rec.native = native;
  rec.attempt = ++c->recorded;
  rec.stream = c->sink != NULL;
  rec.status = a->status;
  rec.http_status = a->http_status;
  rec.estimated = resp->usage_estimated;
  rec.cost_nanousd = a->cost_nanousd;
  rec.latency_ms = a->duration_ms;
  rec.ttft_ms = ttft_ms;
  if (llmr__ledger_append(c->r->ledger, &rec, res, NULL, err, sizeof(err)) !=
      LLMR_OK) {
    char w[LLMR_ERRBUF_SIZE + 16];
    snprintf(w, sizeof(w), "ledger: %s", err);
    llmr_response_add_warning(resp, w);
  }
}

/*
 * The attempt loop shared by llmr_complete() and llmr_stream(): each slug
 * once, in order, moving on by should_fall_back(). A streaming call also
 * stops moving on once content reached its callback (never splice two
 * models' output) or when the callback cancels.
 */
static llmr_status run_call(call *c, const char *const *models,
                            size_t n_models) {
  llmr_response *resp = c->resp;
  llmr__sink *sink = c->sink;
  llmr_status st = LLMR_E_INVAL;
  size_t i, failed = 0;
  int all_tried = 0;

  for (i = 0; i < n_models; i++) {
    llmr__attempt a;
    llmr_provider *p = NULL;
    const char *native = NULL;
    const llmr__model_info *info = NULL;
    llmr__reservation res = {0, NULL};
    double t0 = llmr__now_ms(), ttft_ms = -1;
    int64_t t_wall = llmr__wall_ms();
    int sent = 0;
    memset(&a, 0, sizeof(a));
    /* borrowed; copied by add_attempt */
    a.model = (char *)(models[i] ? models[i] : "");
    llmr__response_reset_attempt(resp);
    st = resolve(c->r, a.model, c->req, resp, &p, &native, &info);
    a.provider = p ? p->name : NULL;
    if (sink) {
      llmr_event ev;
      sink->model = a.model;
      sink->provider = a.provider;
      sink->native_model = native;
      memset(&ev, 0, sizeof(ev));
      ev.type = LLMR_EVENT_ATTEMPT;
      if (llmr__emit(resp, &ev) != LLMR_OK)
        st = LLMR_E_ABORTED;
    }
    /* budgets: the worst case must fit before a byte is sent */
    if (st == LLMR_OK)
      st = reserve(c, a.model, info, &res);
    if (st == LLMR_OK) {
      sent = 1;
      st = exchange(c, p, native);
    }
    if (sink && sink->cancelled) /* even if an adapter ignored it */
      st = LLMR_E_ABORTED;
    if (st == LLMR_OK)
      st = llmr__response_finish_calls(resp);
    /* usage for the ledger: estimated when the provider gave none, for an
     * answer, for the partial output of a stream that broke off, and for
     * the prompt of any 2xx reply (the provider took it) */
    if (st == LLMR_OK || llmr__response_has_content(resp) ||
        (resp->http_status >= 200 && resp->http_status < 300))
      llmr__response_estimate_usage(resp, c->req);
    if (sink && sink->content_started && sink->first_content_ms >= t0)
      ttft_ms = sink->first_content_ms - t0;
    a.status = st;
    a.duration_ms = llmr__now_ms() - t0;
    a.http_status = resp->http_status;
    a.retryable = st != LLMR_OK && resp->retryable;
    a.error = st != LLMR_OK ? resp->error : NULL;
    /* an attempt that reached its provider (an HTTP reply came) costs
     * what its usage says and leaves a record; any other gives its
     * reservation back */
    if (sent && resp->http_status > 0)
      settle(c, &a, native, info, t_wall, ttft_ms, &res);
    else
      llmr__ledger_release(c->r->ledger, &res);
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
    if (sink && (sink->cancelled || sink->content_started)) {
      /* the partial answer stays, with who produced it */
      if (llmr__response_has_content(resp) &&
          llmr__response_set_answered(resp, a.model, a.provider, native) !=
              LLMR_OK)
        st = LLMR_E_NOMEM;
      break;
    }
    if (!should_fall_back(st) ||
        (st == LLMR_E_BUDGET && !llmr__ledger_budget_fallback(c->r->ledger)))
      break;
    if (i + 1 == n_models) {
      all_tried = 1;
      break;
    }
    if (sink && emit_status(resp, LLMR_EVENT_FALLBACK, st, resp->error,
                            resp->http_status) != LLMR_OK) {
      st = LLMR_E_ABORTED;
      break;
    }
  }
  if (st == LLMR_OK) {
    if (sink) {
      emit_plain(resp, LLMR_EVENT_USAGE);
      emit_plain(resp, LLMR_EVENT_DONE);
    }
    return LLMR_OK;
  }
  if (st == LLMR_E_NOMEM) {
    resp->status = LLMR_E_NOMEM;
    return LLMR_E_NOMEM;
  }
  if (failed > 1 && all_tried) {
    /* every slug failed: say so, and keep the last one's details */
    char msg[LLMR_ERRBUF_SIZE + 64];
    snprintf(msg, sizeof(msg), "all %zu models failed; last: %s", failed,
             resp->error ? resp->error : llmr_status_str(st));
    st = LLMR_E_ALL_FAILED;
    llmr_response_set_error(resp, st, resp->error_type, msg, resp->retryable,
                            resp->retry_after_s);
  }
  resp->status = st;
  if (sink && !sink->cancelled)
    emit_status(resp, LLMR_EVENT_ERROR, st, resp->error, resp->http_status);
  return st;
}

/* Shared entry checks; *out always gets a response when possible. */
static llmr_status start_call(llmr_router *r, const char *const *models,
                              size_t n_models, const llmr_request *req,
                              llmr_response **out) {
  llmr_response *resp;
  if (!out)
    return LLMR_E_INVAL;
  *out = NULL;
  if (!(resp = llmr__response_new()))
    return LLMR_E_NOMEM;
  *out = resp;
  llmr__random_id(resp->request_id);
  if (!r || !req || !models || n_models == 0 || req->n_messages == 0) {
    llmr_response_set_error(resp, LLMR_E_INVAL, NULL,
                            !req || req->n_messages == 0
                                ? "the request has no messages"
                                : "no router or no models given",
                            0, -1);
    return resp->status;
  }
  return LLMR_OK;
}

LLMR_API llmr_status llmr_complete(llmr_router *r, const char *const *models,
                                   size_t n_models, const llmr_request *req,
                                   llmr_response **out) {
  call c;
  llmr_status st = start_call(r, models, n_models, req, out);
  if (st != LLMR_OK)
    return st;
  memset(&c, 0, sizeof(c));
  c.r = r;
  c.req = req;
  c.resp = *out;
  c.sink = NULL;
  c.models = models;
  c.n_models = n_models;
  return run_call(&c, models, n_models);
}

LLMR_API llmr_status llmr_stream(llmr_router *r, const char *const *models,
                                 size_t n_models, const llmr_request *req,
                                 llmr_stream_cb cb, void *user,
                                 llmr_response **out) {
  llmr__sink sink;
  call c;
  llmr_status st = start_call(r, models, n_models, req, out);
  if (st != LLMR_OK)
    return st;
  memset(&sink, 0, sizeof(sink));
  memset(&c, 0, sizeof(c));
  sink.cb = cb;
  sink.user = user;
  c.models = models;
  c.n_models = n_models;
  c.r = r;
  c.req = req;
  c.resp = *out;
  c.sink = &sink;
  c.resp->sink = &sink;
  st = run_call(&c, models, n_models);
  c.resp->sink = NULL; /* the sink lives on this stack frame */
  return st;
}
