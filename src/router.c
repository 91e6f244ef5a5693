/*
 * The router: resolves slugs to providers, walks the fallback list under
 * the fallback policy (retries, backoff, Retry-After, cooldowns, deadlines,
 * hedging, load balancing), records the attempt trace. It never parses
 * provider JSON (adapters do) and never touches curl (the transport does).
 */
#include "internal.h"
#include "policy.h"
#include "sse.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LLMR__DEFAULT_CONNECT_MS 10000L
#define LLMR__DEFAULT_TIMEOUT_MS 600000L
#define LLMR__DEFAULT_MAX_RESPONSE ((size_t)64 << 20)

/* Load balancing: one slug-list entry names several deployments. */
enum { LB_ROUND_ROBIN, LB_WEIGHTED, LB_ORDER };

#define LLMR__GROUP_MAX_TARGETS 16
#define LLMR__LB_COUNTERS 256 /* inline "a|b" entries remembered per router */

typedef struct lb_group {
  char *name;
  int mode;
  size_t n;
  char **slugs;
  double *weights;
  llmr__rr rr;
} lb_group;

/* The round-robin position of an inline "a|b|c" entry. */
typedef struct lb_counter {
  char *key;
  size_t next;
} lb_counter;

struct llmr_router {
  llmr_provider **providers;
  size_t n_providers;
  size_t cap_providers;
  llmr__transport *transport;
  llmr__catalog catalog;
  int use_env;
  llmr_ledger *ledger;     /* borrowed, or own_ledger */
  llmr_ledger *own_ledger; /* opened from the config key "ledger" */
  long timeout_ms;         /* the transport's per-attempt limit */
  llmr__policy policy;     /* config key "policy" over the defaults */
  llmr__health *health;    /* cooldowns; NULL when switched off */
  lb_group *groups;        /* config key "groups" */
  size_t n_groups;
  pthread_mutex_t lb_mu; /* guards counters */
  lb_counter *counters;
  size_t n_counters;
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
  llmr__health_free(r->health);
  for (i = 0; i < r->n_groups; i++) {
    size_t k;
    for (k = 0; k < r->groups[i].n; k++)
      llmr__free(r->groups[i].slugs[k]);
    llmr__free(r->groups[i].slugs);
    llmr__free(r->groups[i].weights);
    llmr__free(r->groups[i].name);
  }
  llmr__free(r->groups);
  for (i = 0; i < r->n_counters; i++)
    llmr__free(r->counters[i].key);
  llmr__free(r->counters);
  pthread_mutex_destroy(&r->lb_mu);
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
    "catalog",         "ledger",             "policy",
    "groups",          NULL};

/* A slug a group may name: provider/model, no '|'. */
static int plain_slug(const char *s) {
  const char *slash = strchr(s, '/');
  return slash && slash != s && slash[1] && !strchr(s, '|');
}

/* Config key "groups": {"name": {"mode": "round_robin" | "weighted" |
 * "order", "targets": ["slug" | {"slug": ..., "weight": N}, ...]}}. */
static llmr_status parse_groups(llmr_router *r, const cJSON *groups,
                                char *errbuf, size_t errsize) {
  const cJSON *g;
  size_t n = 0;
  if (!cJSON_IsObject(groups)) {
    llmr__errf(errbuf, errsize, "config.groups: expected an object");
    return LLMR_E_INVAL;
  }
  n = (size_t)cJSON_GetArraySize(groups);
  if (n == 0)
    return LLMR_OK;
  if (!(r->groups = llmr__calloc(n, sizeof(*r->groups))))
    return LLMR_E_NOMEM;
  cJSON_ArrayForEach(g, groups) {
    lb_group *lg = &r->groups[r->n_groups];
    const cJSON *targets = cJSON_GetObjectItemCaseSensitive(g, "targets");
    const cJSON *t, *k;
    const char *mode = llmr__json_str(g, "mode");
    size_t nt;
    if (!*g->string || strchr(g->string, '|')) {
      llmr__errf(errbuf, errsize,
                 "config.groups.%s: a group name is non-empty and has no '|'",
                 g->string);
      return LLMR_E_INVAL;
    }
    if (!cJSON_IsObject(g)) {
      llmr__errf(errbuf, errsize, "config.groups.%s: expected an object",
                 g->string);
      return LLMR_E_INVAL;
    }
    cJSON_ArrayForEach(k, g) {
      if (strcmp(k->string, "mode") != 0 && strcmp(k->string, "targets") != 0) {
        llmr__errf(errbuf, errsize, "config.groups.%s.%s: unknown setting",
                   g->string, k->string);
        return LLMR_E_INVAL;
      }
    }
    if (!(lg->name = llmr__strdup(g->string)))
      return LLMR_E_NOMEM;
    r->n_groups++;
    if (!mode || strcmp(mode, "round_robin") == 0) {
      lg->mode = LB_ROUND_ROBIN;
    } else if (strcmp(mode, "weighted") == 0) {
      lg->mode = LB_WEIGHTED;
    } else if (strcmp(mode, "order") == 0) {
      lg->mode = LB_ORDER;
    } else {
      llmr__errf(errbuf, errsize,
                 "config.groups.%s.mode: expected \"round_robin\", "
                 "\"weighted\" or \"order\"",
                 g->string);
      return LLMR_E_INVAL;
    }
    if (cJSON_GetObjectItemCaseSensitive(g, "mode") && !mode) {
      llmr__errf(errbuf, errsize, "config.groups.%s.mode: expected a string",
                 g->string);
      return LLMR_E_INVAL;
    }
    llmr__rr_init(&lg->rr, 0);
    nt = cJSON_IsArray(targets) ? (size_t)cJSON_GetArraySize(targets) : 0;
    if (nt == 0 || nt > LLMR__GROUP_MAX_TARGETS) {
      llmr__errf(errbuf, errsize,
                 "config.groups.%s.targets: expected an array of 1 to %d "
                 "slugs or {\"slug\", \"weight\"} objects",
                 g->string, LLMR__GROUP_MAX_TARGETS);
      return LLMR_E_INVAL;
    }
    if (!(lg->slugs = llmr__calloc(nt, sizeof(*lg->slugs))) ||
        !(lg->weights = llmr__calloc(nt, sizeof(*lg->weights))))
      return LLMR_E_NOMEM;
    cJSON_ArrayForEach(t, targets) {
      const char *slug = cJSON_IsString(t) ? t->valuestring
                                           : llmr__json_str(t, "slug");
      const cJSON *w = cJSON_GetObjectItemCaseSensitive(t, "weight");
      double weight = 1;
      if (!slug || !plain_slug(slug)) {
        llmr__errf(errbuf, errsize,
                   "config.groups.%s.targets[%zu]: expected a slug "
                   "provider/model (or {\"slug\": ..., \"weight\": N})",
                   g->string, lg->n);
        return LLMR_E_INVAL;
      }
      if (w) {
        if (!cJSON_IsNumber(w) || !(w->valuedouble >= 0) ||
            !isfinite(w->valuedouble)) {
          llmr__errf(errbuf, errsize,
                     "config.groups.%s.targets[%zu].weight: expected a "
                     "number >= 0",
                     g->string, lg->n);
          return LLMR_E_INVAL;
        }
        weight = w->valuedouble;
      }
      if (!(lg->slugs[lg->n] = llmr__strdup(slug)))
        return LLMR_E_NOMEM;
      lg->weights[lg->n++] = weight;
    }
  }
  return LLMR_OK;
}

LLMR_API llmr_status llmr_router_new_ex(const char *config_json,
                                        llmr_router **out, char *errbuf,
                                        size_t errsize) {
  llmr_router *r = NULL;
  cJSON *conf = NULL;
  const cJSON *v, *provs = NULL;
  llmr__transport_opts topts;
  llmr__health_opts hopts;
  int cooldown_on = 1;
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
  if (pthread_mutex_init(&r->lb_mu, NULL) != 0) {
    llmr__free(r);
    r = NULL;
    goto out;
  }
  r->use_env = 1;
  llmr__policy_defaults(&r->policy);
  memset(&hopts, 0, sizeof(hopts));

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
    if ((v = cJSON_GetObjectItemCaseSensitive(conf, "policy")) &&
        (st = llmr__policy_apply(&r->policy, v, &hopts, &cooldown_on,
                                 "config.policy", errbuf, errsize)) !=
            LLMR_OK)
      goto out;
    if ((v = cJSON_GetObjectItemCaseSensitive(conf, "groups")) &&
        (st = parse_groups(r, v, errbuf, errsize)) != LLMR_OK)
      goto out;
  }
  r->timeout_ms = topts.timeout_ms;
  if (cooldown_on) {
    /* a trial that never reports frees its key after the longest an
     * attempt can take */
    hopts.trial_timeout_ms =
        r->policy.attempt_timeout_ms > 0 ? r->policy.attempt_timeout_ms
                                         : (int64_t)topts.timeout_ms;
    if (!(r->health = llmr__health_new(&hopts))) {
      st = LLMR_E_NOMEM;
      goto out;
    }
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
  /* keys the providers did not take (a config refused before them) */
  if (cJSON_IsObject(provs)) {
    const cJSON *pc;
    cJSON_ArrayForEach(pc, provs) llmr__conf_wipe_secrets(pc);
  }
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

/* ---- one call: candidates, legs, the policy loop ------------------------ */

/* One deployment the call may try, in order: a slug of the list, or one
 * target of a group / an inline "a|b" entry. */
typedef struct cand {
  const char *slug; /* borrowed from the call's list, a group or `owned` */
  char *owned;      /* a piece of an inline "a|b" entry */
  int used;         /* consumed as a hedge: do not try it again */
} cand;

/* One call in progress: llmr_complete() (sink NULL) or llmr_stream(). */
typedef struct call {
  llmr_router *r;
  const llmr_request *req;
  llmr_response *resp;
  llmr__sink *sink;
  const char *const *models;
  size_t n_models;
  llmr__policy pol;
  cand *cands; /* inline_cands, or the heap past 4 */
  size_t n_cands;
  size_t cap_cands;
  int recorded;           /* attempts that left a ledger record */
  int64_t deadline;       /* monotonic ms; INT64_MAX: none */
  size_t failed;          /* candidates that failed or were skipped */
  size_t cooled;          /* ... of which skipped by a cooldown */
  int64_t earliest;       /* when a cooling candidate may be tried again */
  int deadline_hit;       /* the call's deadline ended it */
  uint64_t rng;
  int rng_seeded;
  /* providers that refused their key or credit earlier in this call; the
   * arrays from here on are not zeroed by call_init (n_refused and
   * n_cands say what is in use) */
  size_t n_refused;
  const llmr_provider *refused[16];
  llmr_status refused_st[16];
  cand inline_cands[4];
} call;

static int64_t now_ms(void) { return llmr__monotonic_ms(); }

static uint64_t *call_rng(call *c) {
  if (!c->rng_seeded) {
    llmr__rng_seed(&c->rng);
    c->rng_seeded = 1;
  }
  return &c->rng;
}

/* Room for one more candidate: the inline array, then the heap. */
static llmr_status add_cand(call *c, const char *slug, char *owned) {
  if (llmr__grow_inline((void **)&c->cands, &c->cap_cands, c->n_cands,
                        sizeof(*c->cands), c->inline_cands) != 0) {
    llmr__free(owned);
    return LLMR_E_NOMEM;
  }
  c->cands[c->n_cands].slug = owned ? owned : slug;
  c->cands[c->n_cands].owned = owned;
  c->cands[c->n_cands].used = 0;
  c->n_cands++;
  return LLMR_OK;
}

static const lb_group *find_group(const llmr_router *r, const char *name) {
  size_t i;
  for (i = 0; i < r->n_groups; i++)
    if (strcmp(r->groups[i].name, name) == 0)
      return &r->groups[i];
  return NULL;
}

/* The next round-robin start of an inline entry ("a|b|c"). */
static size_t inline_start(llmr_router *r, const char *key, size_t n) {
  size_t i, start;
  pthread_mutex_lock(&r->lb_mu);
  for (i = 0; i < r->n_counters; i++)
    if (strcmp(r->counters[i].key, key) == 0)
      break;
  if (i == r->n_counters && r->n_counters < LLMR__LB_COUNTERS) {
    lb_counter *grown = llmr__realloc(r->counters,
                                      (r->n_counters + 1) * sizeof(*grown));
    char *k = llmr__strdup(key);
    if (grown)
      r->counters = grown;
    if (grown && k) {
      r->counters[i].key = k;
      r->counters[i].next = 0;
      r->n_counters++;
    } else {
      llmr__free(k);
    }
  }
  start = i < r->n_counters ? r->counters[i].next++ : 0;
  pthread_mutex_unlock(&r->lb_mu);
  return start % n;
}

/* The order in which a group's targets are tried by this call. */
static void group_order(call *c, const lb_group *g, size_t *order) {
  double w[LLMR__GROUP_MAX_TARGETS];
  size_t i, k, start;
  if (g->mode == LB_WEIGHTED) {
    /* weighted sampling without replacement: each pick by weight among
     * those left; the drained (weight 0) go last, in list order */
    size_t left = 0, pos = 0;
    for (i = 0; i < g->n; i++) {
      w[i] = g->weights[i];
      if (w[i] > 0)
        left++;
    }
    while (left > 0) {
      double sub[LLMR__GROUP_MAX_TARGETS];
      size_t map[LLMR__GROUP_MAX_TARGETS], m = 0, pick;
      for (i = 0; i < g->n; i++)
        if (w[i] > 0) {
          sub[m] = w[i];
          map[m++] = i;
        }
      pick = map[llmr__pick_weighted(sub, m, call_rng(c))];
      order[pos++] = pick;
      w[pick] = 0;
      left--;
    }
    for (i = 0; i < g->n; i++)
      if (!(g->weights[i] > 0))
        order[pos++] = i;
    return;
  }
  start = g->mode == LB_ROUND_ROBIN
              ? llmr__rr_next((llmr__rr *)&g->rr, g->n)
              : 0;
  for (k = 0; k < g->n; k++)
    order[k] = (start + k) % g->n;
}

/* Expand the slug list into the call's candidates (groups and inline
 * "a|b" entries become their deployments, in the order this call tries
 * them). */
static llmr_status expand(call *c) {
  size_t i, k;
  llmr_status st;
  for (i = 0; i < c->n_models; i++) {
    const char *e = c->models[i] ? c->models[i] : "";
    const lb_group *g = find_group(c->r, e);
    if (g) {
      size_t order[LLMR__GROUP_MAX_TARGETS];
      group_order(c, g, order);
      for (k = 0; k < g->n; k++)
        if ((st = add_cand(c, g->slugs[order[k]], NULL)) != LLMR_OK)
          return st;
    } else if (strchr(e, '|')) {
      const char *parts[LLMR__GROUP_MAX_TARGETS];
      size_t lens[LLMR__GROUP_MAX_TARGETS], n = 0, start;
      const char *p = e;
      for (;;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len && n < LLMR__GROUP_MAX_TARGETS) {
          parts[n] = p;
          lens[n++] = len;
        }
        if (!bar)
          break;
        p = bar + 1;
      }
      if (n == 0) {
        if ((st = add_cand(c, "", NULL)) != LLMR_OK)
          return st;
        continue;
      }
      start = inline_start(c->r, e, n);
      for (k = 0; k < n; k++) {
        size_t j = (start + k) % n;
        char *piece = llmr__strndup(parts[j], lens[j]);
        if (!piece)
          return LLMR_E_NOMEM;
        if ((st = add_cand(c, NULL, piece)) != LLMR_OK)
          return st;
      }
    } else if ((st = add_cand(c, e, NULL)) != LLMR_OK) {
      return st;
    }
  }
  return LLMR_OK;
}

static void free_cands(call *c) {
  size_t i;
  for (i = 0; i < c->n_cands; i++)
    if (c->cands[i].owned)
      llmr__free(c->cands[i].owned);
  if (c->cands != c->inline_cands)
    llmr__free(c->cands);
  c->cands = c->inline_cands;
  c->n_cands = 0;
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

/* Point the sink at an attempt (the fields every event carries). */
static void sink_attempt(llmr__sink *sink, const char *slug,
                         const llmr_provider *p, const char *native) {
  if (!sink)
    return;
  sink->model = slug;
  sink->provider = p ? p->name : NULL;
  sink->native_model = native;
}

/* ---- the circuits of an attempt ----------------------------------------- */

/* The provider's and the model's circuit keys and what the table said. */
typedef struct circuits {
  const char *provider_key;
  const char *native;
  uint64_t model_hash; /* llmr__health_hash of each key, once ready */
  uint64_t provider_hash;
  int ready;           /* model_key and the hashes are made */
  int model_trial;     /* we hold the model key's TRIAL */
  int provider_trial;  /* we hold the provider key's TRIAL */
  char model_key[320]; /* "provider/model", once ready (last: leg_init
                        * does not zero it) */
} circuits;

/* "provider/model" into out, cut to cap - 1 bytes as snprintf would
 * (without its format parsing, on every attempt). */
static void join_key(char *out, size_t cap, const char *a, const char *b) {
  size_t n = strlen(a), nb;
  if (!b)
    b = "(null)";
  nb = strlen(b);
  /* strlen + memcpy, not a byte loop: half the Ir for a usual key */
  if (n > cap - 1)
    n = cap - 1;
  memcpy(out, a, n);
  if (n + 1 < cap)
    out[n++] = '/';
  if (nb > cap - 1 - n)
    nb = cap - 1 - n;
  memcpy(out + n, b, nb);
  out[n + nb] = '\0';
}

static void circuits_init(circuits *k, const llmr_provider *p,
                          const char *native) {
  k->provider_key = p->name;
  k->native = native;
  k->ready = 0;
  k->model_trial = k->provider_trial = 0;
}

/* The model key and both hashes, made the first time the table may hold
 * something for them: while it holds nothing at all (the usual case) an
 * attempt needs neither (~300 Ir). */
static circuits *circuits_keys(circuits *k) {
  if (!k->ready) {
    join_key(k->model_key, sizeof(k->model_key), k->provider_key, k->native);
    k->model_hash = llmr__health_hash(k->model_key);
    k->provider_hash = llmr__health_hash(k->provider_key);
    k->ready = 1;
  }
  return k;
}

/* May this deployment be tried now? LLMR__HEALTH_SKIP with *until set
 * when one of its circuits is open (or another caller's trial runs);
 * trials taken are noted in k. only_allow: refuse a TRIAL too (a hedge
 * partner must not be the probe of a half-open circuit). */
static llmr__health_decision circuits_check(call *c, circuits *k,
                                            int only_allow, int64_t *until) {
  llmr__health *h = c->r->health;
  llmr__health_decision d;
  int64_t t;
  /* what an empty table answers, without a clock read (*until is only
   * read on a SKIP) */
  if (!h || !c->pol.cooldown || llmr__health_idle(h))
    return LLMR__HEALTH_ALLOW;
  *until = t = now_ms();
  circuits_keys(k);
  d = llmr__health_check_hashed(h, k->provider_key, k->provider_hash, t,
                                  until);
  if (d == LLMR__HEALTH_SKIP)
    return d;
  if (d == LLMR__HEALTH_TRIAL) {
    if (only_allow) {
      llmr__health_release_trial_hashed(h, k->provider_key,
                                        k->provider_hash);
      return LLMR__HEALTH_SKIP;
    }
    k->provider_trial = 1;
  }
  d = llmr__health_check_hashed(h, k->model_key, k->model_hash, t, until);
  if (d == LLMR__HEALTH_TRIAL) {
    if (only_allow) {
      llmr__health_release_trial_hashed(h, k->model_key, k->model_hash);
      d = LLMR__HEALTH_SKIP;
    } else {
      k->model_trial = 1;
    }
  }
  if (d == LLMR__HEALTH_SKIP && k->provider_trial) {
    llmr__health_release_trial_hashed(h, k->provider_key,
                                      k->provider_hash);
    k->provider_trial = 0;
  }
  return d;
}

/* Give back trials that will not be reported (nothing was sent). */
static void circuits_release(call *c, circuits *k) {
  if (k->provider_trial)
    llmr__health_release_trial_hashed(c->r->health, k->provider_key,
                                      k->provider_hash);
  if (k->model_trial)
    llmr__health_release_trial_hashed(c->r->health, k->model_key,
                                      k->model_hash);
  k->provider_trial = k->model_trial = 0;
}

/* Report one of k's keys (model: the model key, else the provider's). */
static void report_key(llmr__health *h, circuits *k, int model, int ok,
                       int64_t hint) {
  int *trial = model ? &k->model_trial : &k->provider_trial;
  /* a success with no hint changes nothing in an empty table */
  if (ok && hint <= 0 && !*trial && llmr__health_idle(h))
    return;
  circuits_keys(k);
  llmr__health_report_hashed(h, model ? k->model_key : k->provider_key,
                             model ? k->model_hash : k->provider_hash,
                             now_ms(), ok, hint, *trial);
  *trial = 0;
}

/*
 * Report an attempt that went out. A failure counts against the circuit
 * its class names (the model's or the provider's); any HTTP reply shows
 * the provider's host and key work, and a reply that is the request's own
 * fault (400, context length...) shows the model works too. Rate-limit
 * headers cool the model down until their reset, on success or failure.
 */
static void circuits_report(call *c, circuits *k, llmr_status st, int http,
                            const llmr_http_response *reply) {
  llmr__health *h = c->r->health;
  int cls = st == LLMR_OK ? -1 : llmr__eclass_of(st, http);
  llmr__scope scope = cls < 0 ? LLMR__SCOPE_NONE : llmr__eclass_scope(cls);
  int64_t hint = 0;
  if (!h)
    return;
  /* the names first: the realtime clock only when a header may need it */
  if (c->pol.rate_limit_headers && http > 0 &&
      llmr__ratelimit_headers_present(reply))
    hint = llmr__ratelimit_cooldown_ms(reply, llmr__realtime_ms());
  if (st != LLMR_OK && cls < 0) { /* cancelled, out of memory: no verdict */
    circuits_release(c, k);
    return;
  }
  /* the provider: its failure, or a reply that proves it answers */
  if (scope == LLMR__SCOPE_PROVIDER)
    report_key(h, k, 0, 0, 0);
  else if (http > 0)
    report_key(h, k, 0, 1, 0);
  else if (k->provider_trial)
    llmr__health_release_trial_hashed(h, k->provider_key,
                                      k->provider_hash);
  k->provider_trial = 0;
  /* the model */
  if (scope == LLMR__SCOPE_MODEL)
    report_key(h, k, 1, 0, hint);
  else if (scope == LLMR__SCOPE_NONE && (http > 0 || st == LLMR_OK))
    report_key(h, k, 1, 1, hint);
  else if (hint > 0)
    report_key(h, k, 1, 1, hint);
  else if (k->model_trial) {
    llmr__health_release_trial_hashed(h, k->model_key, k->model_hash);
    k->model_trial = 0;
  }
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
static llmr_status reserve(call *c, llmr_response *resp, const char *slug,
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
    return set_error(resp, st, msg, 0);
  }
  return st;
}

/* Price an attempt that reached its provider (usage read from `src`, the
 * response the attempt was decoded into), add it to the call's cost and
 * leave its ledger record (settling the reservation). */
static void settle(call *c, const llmr_response *src, llmr__attempt *a,
                   const char *native, const llmr__model_info *info,
                   int64_t t_wall, double ttft_ms, llmr__reservation *res) {
  llmr_response *resp = c->resp;
  llmr__ledger_rec rec;
  llmr__usage u;
  char err[LLMR_ERRBUF_SIZE];
  memset(&u, 0, sizeof(u));
  u.prompt = src->tokens[LLMR_TOKENS_PROMPT];
  u.completion = src->tokens[LLMR_TOKENS_COMPLETION];
  u.cached = src->tokens[LLMR_TOKENS_CACHED];
  u.cache_write = src->tokens[LLMR_TOKENS_CACHE_WRITE];
  u.reasoning = src->tokens[LLMR_TOKENS_REASONING];
  a->cost_nanousd = llmr__cost_nanousd(info, &u, a->status == LLMR_OK);
  if (a->cost_nanousd < 0 || resp->cost_nanousd < 0)
    resp->cost_nanousd = -1;
  else
    resp->cost_nanousd += a->cost_nanousd;
  if (!c->r->ledger)
    return;
  memset(&rec, 0, sizeof(rec)); /* only with a ledger to write it to */
  rec.usage = u;
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
  rec.estimated = src->usage_estimated;
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

/* ---- legs: one built request, sent alone or as one side of a hedge ------ */

typedef struct leg {
  call *c;
  cand *cd;
  llmr_provider *p;
  const char *native;
  const llmr__model_info *info;
  llmr_response *resp; /* c->resp, or a scratch response for a hedge */
  int streaming;
  llmr__reservation res;
  double t0;
  int64_t t_wall;
  int hedge;         /* the second side of a hedged pair */
  int announced;     /* its events have been pointed at it */
  int deadline_cut;  /* its timeout is the call's deadline, not the limit */
  llmr_status st;
  circuits k; /* zeroed but for its key buffer */
  /* from here on set up by leg_build (2.5 KiB, mostly the two arenas):
   * leg_init leaves it alone */
  llmr__xfer x;
  glue g;
  llmr_http_request http;
  llmr_http_response reply;
} leg;

/* A leg with nothing built yet: what comes before the circuit key buffer
 * zeroed, the rest left to circuits_keys and leg_build (zeroing all of a
 * leg was ~380 Ir an attempt). */
static void leg_init(leg *l, call *c, cand *cd, llmr_response *resp) {
  memset(l, 0, offsetof(leg, k.model_key));
  l->c = c;
  l->cd = cd;
  l->resp = resp;
}

/* The sink of a streaming leg: the first body bytes of the leg that won
 * point the events at it (a hedge that wins announces itself with an
 * ATTEMPT event first), then the glue decodes them. */
static int leg_body(void *user, const llmr_http_response *head,
                    const char *data, size_t len) {
  leg *l = user;
  if (!l->announced) {
    l->announced = 1;
    sink_attempt(l->c->sink, l->cd->slug, l->p, l->native);
    if (l->hedge && emit_plain(l->resp, LLMR_EVENT_ATTEMPT) != LLMR_OK) {
      l->g.st = LLMR_E_ABORTED;
      return 1;
    }
  }
  return glue_body(&l->g, head, data, len);
}

/* The per-attempt time limit: the policy's (or the router's), cut to what
 * the call's deadline leaves (minus `later`, ms before it starts). 0 when
 * the deadline leaves nothing. */
static long leg_timeout(call *c, leg *l, int64_t later) {
  int64_t lim = c->pol.attempt_timeout_ms > 0 ? c->pol.attempt_timeout_ms
                                              : (int64_t)c->r->timeout_ms;
  l->deadline_cut = 0;
  if (c->deadline != INT64_MAX) {
    int64_t left = c->deadline - now_ms() - later;
    if (left <= 0)
      return 0;
    if (left < lim) {
      lim = left;
      l->deadline_cut = 1;
    }
  }
  return (long)lim;
}

/* Build the request of a leg (warnings go to l->resp). */
static llmr_status leg_build(leg *l) {
  call *c = l->c;
  llmr_status st;
  size_t i;
  llmr__http_request_init(&l->http);
  llmr__http_response_init(&l->reply);
  l->streaming = c->sink && l->p->vt->stream_event;
  if (l->streaming) /* only a streaming leg reads its glue */
    memset(&l->g, 0, sizeof(l->g));
  st = l->p->vt->build_request(l->p, c->req, l->native, l->streaming,
                               &l->http, l->resp);
  for (i = 0; st == LLMR_OK && i < l->p->n_headers; i++)
    st = llmr_http_request_add_header(&l->http, l->p->headers[i].name,
                                      l->p->headers[i].value);
  if (st != LLMR_OK) {
    if (!l->resp->error)
      set_error(l->resp, st, "could not build the provider request", 0);
    return st;
  }
  if (l->streaming) {
    l->g.p = l->p;
    l->g.resp = l->resp;
    if (l->p->vt->state_size &&
        !(l->g.state = llmr__calloc(1, l->p->vt->state_size)))
      return set_error(l->resp, LLMR_E_NOMEM, NULL, 0);
    llmr__sse_init(&l->g.sse, 0, glue_event, &l->g);
  }
  /* all of x but its 256-byte message, which is read only when its first
   * byte says there is one */
  memset(&l->x, 0, offsetof(llmr__xfer, err) + 1);
  l->x.req = &l->http;
  l->x.resp = &l->reply;
  l->x.sink = l->streaming ? leg_body : NULL;
  l->x.user = l;
  return LLMR_OK;
}

static void leg_free(leg *l) {
  if (l->streaming) {
    llmr__sse_free(&l->g.sse);
    llmr__buf_free(&l->g.held);
    llmr__free(l->g.state);
  }
  l->streaming = 0;
  llmr__http_request_clear(&l->http);
  llmr__http_response_clear(&l->reply);
}

/* Read what came back: the answer or the error, on l->resp. */
static llmr_status leg_finish(leg *l, const char *winner_slug) {
  llmr_response *resp = l->resp;
  llmr__xfer *x = &l->x;
  const char *err = x->err[0] ? x->err : llmr_status_str(x->st);
  llmr_status st, tst = x->st;

  resp->http_status = (int)l->reply.status;
  if (x->cancelled) {
    char msg[LLMR_ERRBUF_SIZE];
    snprintf(msg, sizeof(msg), "cancelled: the hedged request to %s "
             "answered first", winner_slug ? winner_slug : "another slug");
    return set_error(resp, LLMR_E_ABORTED, msg, 0);
  }
  if (tst == LLMR_E_TIMEOUT && l->deadline_cut) {
    char msg[LLMR_ERRBUF_SIZE + 64];
    snprintf(msg, sizeof(msg),
             "the call's deadline_ms (%lld ms) passed during the attempt",
             (long long)l->c->pol.deadline_ms);
    l->c->deadline_hit = 1;
    return set_error(resp, tst, msg, 1);
  }
  if (!l->streaming) {
    if (tst != LLMR_OK)
      return set_error(resp, tst, err, transport_retryable(tst));
    if (l->reply.status >= 200 && l->reply.status < 300)
      return parse_whole(l->p, &l->reply, resp);
    return classify(l->p, &l->reply, resp);
  }
  if (tst == LLMR_E_ABORTED) {
    /* the glue stopped it: the adapter's error, a cancel, or the parser */
    st = l->g.st != LLMR_OK ? l->g.st : tst;
    if (!resp->error)
      set_error(resp, st, err, 0);
  } else if (l->reply.status >= 200 && l->reply.status < 300 &&
             l->g.mode == BODY_JSON) {
    if (tst != LLMR_OK) {
      st = set_error(resp, tst, err, transport_retryable(tst));
    } else {
      /* a host that answered the stream request with one document */
      llmr__buf body = l->reply.body;
      l->reply.body = l->g.held;
      st = parse_whole(l->p, &l->reply, resp);
      l->reply.body = body;
    }
  } else if (l->reply.status >= 200 && l->reply.status < 300) {
    /* a trailing event with no blank line after it is discarded (spec) */
    if (tst == LLMR_OK)
      llmr__sse_finish(&l->g.sse);
    if (resp->stream_done) /* complete: what follows the marker is moot */
      st = LLMR_OK;
    else if (tst != LLMR_OK)
      st = set_error(resp, tst, err, transport_retryable(tst));
    else
      st = set_error(resp, LLMR_E_PROTOCOL,
                     "stream ended before the provider's end marker", 0);
  } else if (tst != LLMR_OK) {
    st = set_error(resp, tst, err, transport_retryable(tst));
  } else {
    st = classify(l->p, &l->reply, resp);
  }
  return st;
}

/* Trace, price, record and report one leg that was started. */
static llmr_status leg_record(leg *l) {
  call *c = l->c;
  llmr_response *resp = l->resp;
  llmr__sink *sink = c->sink;
  llmr__attempt a;
  double ttft_ms = -1;
  llmr_status st = l->st;

  if (st == LLMR_OK)
    st = l->st = llmr__response_finish_calls(resp);
  /* usage for the ledger: estimated when the provider gave none, for an
   * answer, for the partial output of a stream that broke off, for the
   * prompt of any 2xx reply (the provider took it), and for a hedge that
   * was cancelled after its request went out (it may be billed) */
  if (st == LLMR_OK || llmr__response_has_content(resp) ||
      (resp->http_status >= 200 && resp->http_status < 300) ||
      (l->x.cancelled && l->x.sent))
    llmr__response_estimate_usage(resp, c->req);
  if (sink && l->announced && sink->content_started &&
      sink->first_content_ms >= l->t0)
    ttft_ms = sink->first_content_ms - l->t0;
  memset(&a, 0, sizeof(a));
  a.model = (char *)l->cd->slug; /* borrowed; copied by add_attempt */
  a.provider = l->p->name;
  a.status = st;
  a.duration_ms = llmr__now_ms() - l->t0;
  a.http_status = resp->http_status;
  a.retryable = st != LLMR_OK && resp->retryable;
  a.error = st != LLMR_OK ? resp->error : NULL;
  a.bytes = l->x.bytes;
  a.hedge = l->hedge ? 1u : 0u;
  if (resp->http_status > 0 || (l->x.cancelled && l->x.sent))
    settle(c, resp, &a, l->native, l->info, l->t_wall, ttft_ms, &l->res);
  else
    llmr__ledger_release(c->r->ledger, &l->res);
  if (l->x.cancelled)
    circuits_release(c, &l->k); /* slower, not broken */
  else
    circuits_report(c, &l->k, st, resp->http_status, &l->reply);
  return llmr__response_add_attempt(c->resp, &a);
}

/* ---- trace entries for attempts that sent nothing ----------------------- */

/* A trace entry for a deployment that was not sent (resolve failure,
 * refused provider, cooldown, budget); the error is on c->resp. */
static llmr_status add_unsent(call *c, const char *slug,
                              const llmr_provider *p, llmr_status st,
                              int skipped) {
  llmr__attempt a;
  memset(&a, 0, sizeof(a));
  a.model = (char *)slug;
  a.provider = p ? p->name : NULL;
  a.status = st;
  a.retryable = c->resp->retryable;
  a.error = c->resp->error;
  a.skipped = skipped ? 1u : 0u;
  return llmr__response_add_attempt(c->resp, &a);
}

static const llmr_provider *refused_by(call *c, const llmr_provider *p,
                                       llmr_status *st) {
  size_t i;
  for (i = 0; i < c->n_refused; i++)
    if (c->refused[i] == p) {
      *st = c->refused_st[i];
      return p;
    }
  return NULL;
}

static void note_refused(call *c, const llmr_provider *p, llmr_status st) {
  llmr_status old;
  if (refused_by(c, p, &old) ||
      c->n_refused == sizeof(c->refused) / sizeof(c->refused[0]))
    return;
  c->refused[c->n_refused] = p;
  c->refused_st[c->n_refused++] = st;
}

/* ---- the policy loop ----------------------------------------------------- */

enum { NEXT, DONE, STOP };

/* Whether the call has another candidate after index k. */
static int has_next(const call *c, size_t k) {
  size_t j;
  for (j = k + 1; j < c->n_cands; j++)
    if (!c->cands[j].used)
      return 1;
  return 0;
}

/* After a failure: move on (NEXT) or end the call (STOP), by the class's
 * action; `retry` is set when the policy retries the same slug. */
static int policy_decide(call *c, llmr_status st, int http, int retryable,
                  int *retry) {
  int cls = llmr__eclass_of(st, http);
  int act;
  *retry = 0;
  if (cls < 0)
    return STOP;
  act = c->pol.action[cls];
  if (cls == LLMR__EC_BUDGET && c->r->ledger &&
      !llmr__ledger_budget_fallback(c->r->ledger))
    act = LLMR__ACT_STOP;
  if (act == LLMR__ACT_STOP)
    return STOP;
  if (act == LLMR__ACT_RETRY && (retryable || c->pol.explicit_[cls]))
    *retry = 1;
  return NEXT;
}

/* Sleep ms milliseconds (this thread only). */
static void sleep_ms(int64_t ms) {
  struct timespec ts;
  if (ms <= 0)
    return;
  ts.tv_sec = (time_t)(ms / 1000);
  ts.tv_nsec = (long)(ms % 1000) * 1000000L;
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
    ;
}

/* The wait before retrying the slug: Retry-After within longest_wait_ms
 * (else NO_RETRY_WAIT), full-jitter backoff, no longer than the call's
 * deadline allows (else NO_RETRY_DEADLINE) and not while a circuit stays
 * open past it (NO_RETRY_CIRCUIT). */
enum { NO_RETRY_WAIT = -1, NO_RETRY_DEADLINE = -2, NO_RETRY_CIRCUIT = -3 };

static int64_t retry_wait(call *c, leg *l, unsigned tries) {
  int64_t wait, t, keys_until;
  const char *keys[2];
  wait = llmr__retry_wait_ms(
      c->resp->retry_after_s,
      llmr__backoff_ms(tries, c->pol.backoff_ms, c->pol.backoff_cap_ms,
                       call_rng(c)),
      c->pol.longest_wait_ms);
  if (wait < 0)
    return NO_RETRY_WAIT;
  t = now_ms();
  if (c->deadline != INT64_MAX && t + wait >= c->deadline)
    return NO_RETRY_DEADLINE;
  if (c->r->health && c->pol.cooldown) {
    circuits_keys(&l->k);
    keys[0] = l->k.provider_key;
    keys[1] = l->k.model_key;
    /* both keys must be triable by then (the earliest of one key each) */
    keys_until = llmr__health_earliest(c->r->health, &keys[0], 1, t + wait);
    if (keys_until > t + wait)
      return NO_RETRY_CIRCUIT;
    keys_until = llmr__health_earliest(c->r->health, &keys[1], 1, t + wait);
    if (keys_until > t + wait)
      return NO_RETRY_CIRCUIT;
  }
  return wait;
}

/* Find a hedge partner for candidate k: the next candidate, if it
 * resolves, is not cooling down or half-open, and fits the budget. The
 * partner's leg is prepared into h (with its own scratch response). */
static int prepare_hedge(call *c, size_t k, leg *h, long *timeout) {
  size_t j;
  cand *cd = NULL;
  llmr_status st, refused;
  int64_t until;
  for (j = k + 1; j < c->n_cands; j++)
    if (!c->cands[j].used) {
      cd = &c->cands[j];
      break;
    }
  if (!cd)
    return 0;
  leg_init(h, c, cd, NULL);
  h->hedge = 1;
  if (!(h->resp = llmr__response_new()))
    return 0;
  h->resp->sink = c->sink;
  if (resolve(c->r, cd->slug, c->req, h->resp, &h->p, &h->native,
              &h->info) != LLMR_OK ||
      refused_by(c, h->p, &refused))
    goto no;
  circuits_init(&h->k, h->p, h->native);
  if (circuits_check(c, &h->k, 1, &until) != LLMR__HEALTH_ALLOW)
    goto no;
  if ((*timeout = leg_timeout(c, h, c->pol.hedge_ms)) <= 0)
    goto no;
  if (reserve(c, h->resp, cd->slug, h->info, &h->res) != LLMR_OK)
    goto no;
  if ((st = leg_build(h)) != LLMR_OK) {
    llmr__ledger_release(c->r->ledger, &h->res);
    leg_free(h);
    goto no;
  }
  h->x.timeout_ms = *timeout;
  return 1;
no:
  h->resp->sink = NULL;
  llmr_response_free(h->resp);
  h->resp = NULL;
  return 0;
}

static void hedge_drop(leg *h) {
  if (!h->resp)
    return;
  llmr__ledger_release(h->c->r->ledger, &h->res);
  leg_free(h);
  h->resp->sink = NULL;
  llmr_response_free(h->resp);
  h->resp = NULL;
}

/*
 * Send one attempt of candidate k (already resolved into l), hedged with
 * the next candidate when the policy says so. Records every leg that was
 * started. Returns the attempt's status; c->resp then holds the answer,
 * or the error that decides what happens next. *hedged is set when a
 * hedge was started (the pair is not retried).
 */
static llmr_status attempt(call *c, size_t k, leg *l, long timeout,
                           int *hedged) {
  leg h;
  int use_hedge = 0, winner;
  llmr_status st;

  *hedged = 0;
  /* h is set up by prepare_hedge, and used only when it says so */
  if ((st = leg_build(l)) != LLMR_OK) {
    leg_free(l);
    llmr__ledger_release(c->r->ledger, &l->res);
    circuits_release(c, &l->k);
    if (add_unsent(c, l->cd->slug, l->p, st, 0) != LLMR_OK)
      return LLMR_E_NOMEM;
    return st;
  }
  l->x.timeout_ms = timeout;
  if (c->pol.hedge_ms > 0) {
    long ht = 0;
    use_hedge = prepare_hedge(c, k, &h, &ht);
  }
  l->t0 = llmr__now_ms();
  l->t_wall = c->r->ledger ? llmr__wall_ms() : 0; /* for its record only */
  l->announced = 0;
  if (!use_hedge) {
    llmr__transport_run(c->r->transport, &l->x);
    l->announced = 1;
    l->st = leg_finish(l, NULL);
    st = leg_record(l);
    leg_free(l);
    return st != LLMR_OK ? st : l->st;
  }

  h.t0 = l->t0;
  h.t_wall = l->t_wall;
  winner = llmr__transport_race(c->r->transport, &l->x, &h.x,
                                (long)c->pol.hedge_ms);
  if (!h.x.started) {
    /* the first answered (or failed) before the hedge delay */
    hedge_drop(&h);
    l->announced = 1;
    l->st = leg_finish(l, NULL);
    st = leg_record(l);
    leg_free(l);
    return st != LLMR_OK ? st : l->st;
  }
  *hedged = 1;
  c->cands[h.cd - c->cands].used = 1;
  h.t0 = l->t0 + (double)c->pol.hedge_ms; /* about when it started */
  if (winner == 1 && !h.announced) {
    /* a non-streaming hedge won: point the events at it */
    h.announced = 1;
    sink_attempt(c->sink, h.cd->slug, h.p, h.native);
    if (c->sink)
      emit_plain(h.resp, LLMR_EVENT_ATTEMPT);
  }
  l->st = leg_finish(l, winner == 1 ? h.cd->slug : NULL);
  h.st = leg_finish(&h, winner == 0 ? l->cd->slug : NULL);
  /* the trace ends with the leg that answered (or, when both failed, the
   * hedge): record the other first */
  if (winner == 0) {
    if ((st = leg_record(&h)) == LLMR_OK)
      st = leg_record(l);
  } else {
    if ((st = leg_record(l)) == LLMR_OK)
      st = leg_record(&h);
  }
  if (st == LLMR_OK) {
    if (winner == 0) {
      st = l->st;
    } else {
      int retry;
      /* c->resp takes the hedge's answer or error, unless the hedge was
       * cancelled or the first leg's failure ends the call (its class
       * says stop) */
      if (winner == 1 || l->x.cancelled ||
          (!h.x.cancelled &&
           policy_decide(c, l->st, l->resp->http_status, l->resp->retryable,
                  &retry) != STOP)) {
        st = llmr__response_move_attempt(c->resp, h.resp);
        if (st == LLMR_OK)
          st = h.st;
        sink_attempt(c->sink, h.cd->slug, h.p, h.native);
        l->cd = h.cd;
        l->p = h.p;
        l->native = h.native;
      } else {
        st = l->st;
      }
    }
  }
  leg_free(l);
  leg_free(&h);
  h.resp->sink = NULL;
  llmr_response_free(h.resp);
  return st;
}

/* The deadline has passed: end the call saying so. */
static llmr_status deadline_error(call *c) {
  char msg[LLMR_ERRBUF_SIZE + 64];
  c->deadline_hit = 1;
  snprintf(msg, sizeof(msg), "the call's deadline_ms (%lld ms) passed",
           (long long)c->pol.deadline_ms);
  return set_error(c->resp, LLMR_E_TIMEOUT, msg, 1);
}

/*
 * Try candidate k under the policy: resolve it, skip it when its provider
 * refused this call already or a circuit holds it open, reserve the
 * budget, send, retry (backoff, Retry-After), hedge. NEXT moves on, DONE
 * answered, STOP ends the call. *last_st is the status of its last
 * trace entry.
 */
static int try_cand(call *c, size_t k, llmr_status *last_st) {
  cand *cd = &c->cands[k];
  llmr_response *resp = c->resp;
  llmr__sink *sink = c->sink;
  unsigned tries = 0;
  llmr_status st, refused;
  int64_t until;
  int retry, hedged;
  leg l;

  leg_init(&l, c, cd, resp);
  llmr__response_reset_attempt(resp);
  if (c->deadline != INT64_MAX && now_ms() >= c->deadline) {
    *last_st = deadline_error(c);
    return STOP;
  }
  st = resolve(c->r, cd->slug, c->req, resp, &l.p, &l.native, &l.info);
  sink_attempt(sink, cd->slug, l.p, l.native);
  if (sink && emit_plain(resp, LLMR_EVENT_ATTEMPT) != LLMR_OK) {
    *last_st = LLMR_E_ABORTED;
    return STOP;
  }
  if (st == LLMR_OK && refused_by(c, l.p, &refused)) {
    char msg[LLMR_ERRBUF_SIZE];
    snprintf(msg, sizeof(msg),
             "skipped: provider '%s' refused %s earlier in this call",
             l.p->name,
             refused == LLMR_E_AUTH ? "the key" : "for lack of credit");
    st = set_error(resp, refused, msg, 0);
  }
  if (st == LLMR_OK) {
    circuits_init(&l.k, l.p, l.native);
    if (circuits_check(c, &l.k, 0, &until) == LLMR__HEALTH_SKIP) {
      char msg[LLMR_ERRBUF_SIZE + 64];
      int64_t t = now_ms();
      if (until > t)
        snprintf(msg, sizeof(msg),
                 "skipped: %s is cooling down for another %lld ms after "
                 "recent failures or a rate limit",
                 cd->slug, (long long)(until - t));
      else
        snprintf(msg, sizeof(msg),
                 "skipped: %s is half-open and another call's trial "
                 "request is in flight",
                 cd->slug);
      st = llmr_response_set_error(resp, LLMR_E_COOLDOWN, NULL, msg, 1,
                                   (double)(until - t) / 1000.0) == LLMR_OK
               ? LLMR_E_COOLDOWN
               : LLMR_E_NOMEM;
      if (until < c->earliest)
        c->earliest = until;
      c->cooled++;
    }
  }
  if (st == LLMR_OK && (st = reserve(c, resp, cd->slug, l.info, &l.res)) !=
                           LLMR_OK)
    circuits_release(c, &l.k);
  if (st != LLMR_OK) {
    *last_st = st;
    c->failed++;
    if (add_unsent(c, cd->slug, l.p, st, 1) != LLMR_OK) {
      *last_st = LLMR_E_NOMEM;
      return STOP;
    }
    if (st == LLMR_E_COOLDOWN)
      return NEXT;
    return policy_decide(c, st, 0, 0, &retry);
  }

  for (;;) {
    int64_t wait;
    long tmo = leg_timeout(c, &l, 0);
    if (tmo <= 0) {
      llmr__ledger_release(c->r->ledger, &l.res);
      circuits_release(c, &l.k);
      *last_st = deadline_error(c);
      if (tries > 0) /* it failed before the wait */
        c->failed++;
      return STOP;
    }
    st = attempt(c, k, &l, tmo, &hedged);
    *last_st = st;
    if (st == LLMR_OK) {
      if (llmr__response_set_answered(resp, l.cd->slug, l.p->name,
                                      l.native) != LLMR_OK)
        *last_st = LLMR_E_NOMEM;
      return DONE;
    }
    if (st == LLMR_E_NOMEM)
      return STOP;
    if (sink && (sink->cancelled || sink->content_started)) {
      /* the partial answer stays, with who produced it */
      if (llmr__response_has_content(resp) &&
          llmr__response_set_answered(resp, l.cd->slug, l.p->name,
                                      l.native) != LLMR_OK)
        *last_st = LLMR_E_NOMEM;
      c->failed++;
      return STOP;
    }
    if (st == LLMR_E_AUTH || st == LLMR_E_PAYMENT)
      note_refused(c, l.p, st);
    if (policy_decide(c, st, resp->http_status, resp->retryable, &retry) ==
        STOP) {
      c->failed += hedged ? 2u : 1u;
      return STOP;
    }
    if (c->deadline_hit) {
      c->failed += hedged ? 2u : 1u;
      return STOP;
    }
    if (hedged || !retry || (int)tries >= c->pol.retries) {
      c->failed += hedged ? 2u : 1u;
      return NEXT;
    }
    if ((wait = retry_wait(c, &l, tries)) < 0) {
      /* say on the call's error why the slug was not retried */
      char msg[LLMR_ERRBUF_SIZE + 128];
      if (wait == NO_RETRY_DEADLINE)
        snprintf(msg, sizeof(msg),
                 "%s (not retried: the call's deadline_ms of %lld ms "
                 "leaves too little time)",
                 resp->error ? resp->error : llmr_status_str(st),
                 (long long)c->pol.deadline_ms);
      else if (wait == NO_RETRY_WAIT)
        snprintf(msg, sizeof(msg),
                 "%s (not retried: Retry-After %.3f s is over "
                 "longest_wait_ms %lld)",
                 resp->error ? resp->error : llmr_status_str(st),
                 resp->retry_after_s, (long long)c->pol.longest_wait_ms);
      else
        snprintf(msg, sizeof(msg),
                 "%s (not retried: its circuit is open)",
                 resp->error ? resp->error : llmr_status_str(st));
      llmr_response_set_error(resp, st, resp->error_type, msg,
                              resp->retryable, resp->retry_after_s);
      c->failed++;
      return NEXT;
    }
    /* retry the same slug after the wait */
    if (sink && emit_status(resp, LLMR_EVENT_FALLBACK, st, resp->error,
                            resp->http_status) != LLMR_OK) {
      *last_st = LLMR_E_ABORTED;
      return STOP;
    }
    sleep_ms(wait);
    tries++;
    llmr__response_reset_attempt(resp);
    if (c->deadline != INT64_MAX && now_ms() >= c->deadline) {
      *last_st = deadline_error(c);
      c->failed++;
      return STOP;
    }
    if ((st = reserve(c, resp, cd->slug, l.info, &l.res)) != LLMR_OK) {
      *last_st = st;
      if (add_unsent(c, cd->slug, l.p, st, 1) != LLMR_OK)
        *last_st = LLMR_E_NOMEM;
      c->failed++;
      return policy_decide(c, st, 0, 0, &retry);
    }
    circuits_init(&l.k, l.p, l.native); /* a retry holds no trial */
    if (sink && emit_plain(resp, LLMR_EVENT_ATTEMPT) != LLMR_OK) {
      llmr__ledger_release(c->r->ledger, &l.res);
      *last_st = LLMR_E_ABORTED;
      return STOP;
    }
  }
}

/*
 * The attempt loop shared by llmr_complete() and llmr_stream(): each
 * candidate in order under the policy. A streaming call also stops moving
 * on once content reached its callback (never splice two models' output)
 * or when the callback cancels.
 */
static llmr_status run_call(call *c) {
  llmr_response *resp = c->resp;
  llmr__sink *sink = c->sink;
  llmr_status st = LLMR_E_INVAL;
  size_t k;
  int how = NEXT, ended = 0;

  if ((st = expand(c)) != LLMR_OK) {
    resp->status = LLMR_E_NOMEM;
    return LLMR_E_NOMEM;
  }
  for (k = 0; k < c->n_cands; k++) {
    if (c->cands[k].used)
      continue;
    how = try_cand(c, k, &st);
    if (how != NEXT)
      break;
    if (!has_next(c, k)) {
      ended = 1;
      break;
    }
    if (sink && emit_status(resp, LLMR_EVENT_FALLBACK, st, resp->error,
                            resp->http_status) != LLMR_OK) {
      st = LLMR_E_ABORTED;
      break;
    }
  }
  if (how == DONE && st == LLMR_OK) {
    resp->status = LLMR_OK;
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
  if (c->failed > 0 && c->cooled == c->failed && ended) {
    /* every candidate is cooling down: fail at once, and say when */
    char msg[LLMR_ERRBUF_SIZE];
    int64_t wait = c->earliest - now_ms();
    if (wait < 0)
      wait = 0;
    snprintf(msg, sizeof(msg),
             "every model is cooling down after failures or rate limits; "
             "the first may be tried again in %lld ms",
             (long long)wait);
    st = LLMR_E_ALL_FAILED;
    llmr_response_set_error(resp, st, NULL, msg, 1, (double)wait / 1000.0);
  } else if (c->failed > 1 && (ended || c->deadline_hit)) {
    /* every slug failed: say so, and keep the last one's details */
    char msg[LLMR_ERRBUF_SIZE + 96];
    double ra = resp->retry_after_s;
    if (c->cooled) {
      double cool = (double)(c->earliest - now_ms()) / 1000.0;
      if (cool < 0)
        cool = 0;
      if (ra < 0 || cool < ra)
        ra = cool;
    }
    if (c->deadline_hit)
      snprintf(msg, sizeof(msg),
               "the call's deadline_ms (%lld ms) passed after %zu models "
               "failed; last: %s",
               (long long)c->pol.deadline_ms, c->failed,
               resp->error ? resp->error : llmr_status_str(st));
    else
      snprintf(msg, sizeof(msg), "all %zu models failed; last: %s",
               c->failed, resp->error ? resp->error : llmr_status_str(st));
    st = LLMR_E_ALL_FAILED;
    llmr_response_set_error(resp, st, resp->error_type, msg, resp->retryable,
                            ra);
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

/* Set up the call: the router's policy with the request's over it. */
static llmr_status call_init(call *c, llmr_router *r,
                             const char *const *models, size_t n_models,
                             const llmr_request *req, llmr_response *resp) {
  char err[LLMR_ERRBUF_SIZE];
  memset(c, 0, offsetof(call, refused));
  c->cands = c->inline_cands;
  c->cap_cands = sizeof(c->inline_cands) / sizeof(c->inline_cands[0]);
  c->r = r;
  c->req = req;
  c->resp = resp;
  c->models = models;
  c->n_models = n_models;
  c->pol = r->policy;
  c->earliest = INT64_MAX;
  c->deadline = INT64_MAX;
  if (req->policy &&
      llmr__policy_apply(&c->pol, req->policy, NULL, NULL, "policy", err,
                         sizeof(err)) != LLMR_OK) {
    llmr_response_set_error(resp, LLMR_E_INVAL, NULL, err, 0, -1);
    return LLMR_E_INVAL;
  }
  if (c->pol.deadline_ms > 0)
    c->deadline = now_ms() + c->pol.deadline_ms;
  return LLMR_OK;
}

LLMR_API llmr_status llmr_complete(llmr_router *r, const char *const *models,
                                   size_t n_models, const llmr_request *req,
                                   llmr_response **out) {
  call c;
  llmr_status st = start_call(r, models, n_models, req, out);
  if (st != LLMR_OK)
    return st;
  if ((st = call_init(&c, r, models, n_models, req, *out)) != LLMR_OK)
    return st;
  st = run_call(&c);
  free_cands(&c);
  return st;
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
  if ((st = call_init(&c, r, models, n_models, req, *out)) != LLMR_OK)
    return st;
  memset(&sink, 0, sizeof(sink));
  sink.cb = cb;
  sink.user = user;
  c.sink = &sink;
  c.resp->sink = &sink;
  st = run_call(&c);
  c.resp->sink = NULL; /* the sink lives on this stack frame */
  free_cands(&c);
  return st;
}
