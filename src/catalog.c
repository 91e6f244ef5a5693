/*
 * The model catalog: OpenRouter-style slugs mapped to a provider and its
 * native model id, with context window, prices and capabilities. The
 * built-in table is data/models.json compiled in (build/catalog_data.c);
 * a user file merges over it, entry by entry.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const char llmr__catalog_builtin_json[];

static const char *const cap_names[] = {"tools", "vision", "json",
                                        "reasoning"};

static void info_clear(llmr__model_info *m) {
  llmr__free(m->slug);
  llmr__free(m->provider);
  llmr__free(m->model);
}

void llmr__catalog_free(llmr__catalog *c) {
  size_t i;
  for (i = 0; i < c->n; i++)
    info_clear(&c->v[i]);
  llmr__free(c->v);
  memset(c, 0, sizeof(*c));
}

static int by_slug(const void *a, const void *b) {
  return strcmp(((const llmr__model_info *)a)->slug,
                ((const llmr__model_info *)b)->slug);
}

const llmr__model_info *llmr__catalog_find(const llmr__catalog *c,
                                           const char *slug) {
  llmr__model_info key;
  if (!c->n)
    return NULL;
  key.slug = (char *)slug;
  return bsearch(&key, c->v, c->n, sizeof(*c->v), by_slug);
}

const llmr__model_info *llmr__catalog_find_native(const llmr__catalog *c,
                                                  const char *provider,
                                                  const char *model) {
  size_t i;
  if (!provider || !model)
    return NULL;
  for (i = 0; i < c->n; i++)
    if (strcmp(c->v[i].provider, provider) == 0 &&
        strcmp(c->v[i].model, model) == 0)
      return &c->v[i];
  return NULL;
}

#define CAT_ERR(...)                                                           \
  do {                                                                         \
    llmr__errf(errbuf, errsize, __VA_ARGS__);                                  \
    return LLMR_E_INVAL;                                                       \
  } while (0)

/* A price in $/Mtok: absent is -1 (unknown), else a non-negative number. */
static llmr_status read_price(const cJSON *price, const char *key, double *out,
                              const char *origin, size_t i, char *errbuf,
                              size_t errsize) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(price, key);
  *out = -1;
  if (!v || cJSON_IsNull(v))
    return LLMR_OK;
  if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 1e6)
    CAT_ERR("%s: models[%zu].price.%s: expected a non-negative number", origin,
            i, key);
  *out = v->valuedouble;
  return LLMR_OK;
}

static llmr_status read_entry(const cJSON *e, llmr__model_info *m,
                              const char *origin, size_t i, char *errbuf,
                              size_t errsize) {
  const char *slug = llmr__json_str(e, "slug");
  const char *provider = llmr__json_str(e, "provider");
  const char *model = llmr__json_str(e, "model");
  const cJSON *price = cJSON_GetObjectItemCaseSensitive(e, "price");
  const cJSON *caps = cJSON_GetObjectItemCaseSensitive(e, "capabilities");
  const cJSON *c;
  int64_t n;
  llmr_status st;

  memset(m, 0, sizeof(*m));
  if (!cJSON_IsObject(e))
    CAT_ERR("%s: models[%zu]: expected an object", origin, i);
  if (!slug || !strchr(slug, '/'))
    CAT_ERR("%s: models[%zu].slug: expected \"provider/model\"", origin, i);
  if (!provider || !*provider || strchr(provider, '/'))
    CAT_ERR("%s: models[%zu].provider: expected a provider name", origin, i);
  if (!model || !*model)
    CAT_ERR("%s: models[%zu].model: expected the provider's model id", origin,
            i);
  m->context_window = m->max_output_tokens = -1;
  if (cJSON_HasObjectItem(e, "context_window")) {
    if (llmr__json_i64(e, "context_window", &n) != 0 || n < 1)
      CAT_ERR("%s: models[%zu].context_window: expected a positive integer",
              origin, i);
    m->context_window = n;
  }
  if (cJSON_HasObjectItem(e, "max_output_tokens")) {
    if (llmr__json_i64(e, "max_output_tokens", &n) != 0 || n < 1)
      CAT_ERR("%s: models[%zu].max_output_tokens: expected a positive "
              "integer",
              origin, i);
    m->max_output_tokens = n;
  }
  if (price && !cJSON_IsObject(price))
    CAT_ERR("%s: models[%zu].price: expected an object", origin, i);
  if ((st = read_price(price, "input", &m->price_input, origin, i, errbuf,
                       errsize)) != LLMR_OK ||
      (st = read_price(price, "output", &m->price_output, origin, i, errbuf,
                       errsize)) != LLMR_OK ||
      (st = read_price(price, "cache_read", &m->price_cache_read, origin, i,
                       errbuf, errsize)) != LLMR_OK ||
      (st = read_price(price, "cache_write", &m->price_cache_write, origin, i,
                       errbuf, errsize)) != LLMR_OK ||
      (st = read_price(price, "reasoning", &m->price_reasoning, origin, i,
                       errbuf, errsize)) != LLMR_OK ||
      (st = read_price(price, "request", &m->price_request, origin, i, errbuf,
                       errsize)) != LLMR_OK)
    return st;
  /* integer prices for the ledger's exact arithmetic (src/prices.c) */
  m->upm_input = llmr__price_upm(m->price_input);
  m->upm_output = llmr__price_upm(m->price_output);
  m->upm_cache_read = llmr__price_upm(m->price_cache_read);
  m->upm_cache_write = llmr__price_upm(m->price_cache_write);
  m->upm_reasoning = llmr__price_upm(m->price_reasoning);
  m->fee_pico = llmr__price_pico(m->price_request);
  if (caps) {
    if (!cJSON_IsArray(caps))
      CAT_ERR("%s: models[%zu].capabilities: expected an array", origin, i);
    m->caps_known = 1;
    cJSON_ArrayForEach(c, caps) {
      unsigned k;
      for (k = 0; k < sizeof(cap_names) / sizeof(cap_names[0]); k++)
        if (cJSON_IsString(c) && strcmp(c->valuestring, cap_names[k]) == 0)
          break;
      if (k == sizeof(cap_names) / sizeof(cap_names[0]))
        CAT_ERR("%s: models[%zu].capabilities: unknown capability (known: "
                "tools, vision, json, reasoning)",
                origin, i);
      m->caps |= 1u << k;
    }
  }
  m->slug = llmr__strdup(slug);
  m->provider = llmr__strdup(provider);
  m->model = llmr__strdup(model);
  if (!m->slug || !m->provider || !m->model) {
    info_clear(m);
    return LLMR_E_NOMEM;
  }
  return LLMR_OK;
}

llmr_status llmr__catalog_merge_json(llmr__catalog *c, const char *json,
                                     size_t len, const char *origin,
                                     char *errbuf, size_t errsize) {
  cJSON *root = cJSON_ParseWithLength(json, len);
  const cJSON *models = cJSON_GetObjectItemCaseSensitive(root, "models");
  const cJSON *e;
  llmr_status st = LLMR_OK;
  size_t i = 0;

  if (!cJSON_IsObject(root) || !cJSON_IsArray(models)) {
    cJSON_Delete(root);
    CAT_ERR("%s: expected a JSON object with a \"models\" array", origin);
  }
  cJSON_ArrayForEach(e, models) {
    llmr__model_info m;
    llmr__model_info *old;
    if ((st = read_entry(e, &m, origin, i++, errbuf, errsize)) != LLMR_OK)
      break;
    /* a slug already present is replaced: the user's file wins */
    if ((old = (llmr__model_info *)llmr__catalog_find(c, m.slug))) {
      info_clear(old);
      *old = m;
      continue;
    }
    if (llmr__grow((void **)&c->v, &c->cap, c->n + 1, sizeof(*c->v)) != 0) {
      info_clear(&m);
      st = LLMR_E_NOMEM;
      break;
    }
    c->v[c->n++] = m;
    qsort(c->v, c->n, sizeof(*c->v), by_slug);
  }
  cJSON_Delete(root);
  return st;
}

llmr_status llmr__catalog_load_file(llmr__catalog *c, const char *path,
                                    char *errbuf, size_t errsize) {
  FILE *f = fopen(path, "rb");
  llmr__buf b = {0};
  char chunk[8192];
  size_t n;
  llmr_status st;
  if (!f)
    CAT_ERR("catalog %s: cannot open the file", path);
  while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
    if (llmr__buf_append(&b, chunk, n) != 0 || b.len > ((size_t)64 << 20)) {
      fclose(f);
      llmr__buf_free(&b);
      CAT_ERR("catalog %s: too large or out of memory", path);
    }
  }
  fclose(f);
  st = llmr__catalog_merge_json(c, llmr__buf_str(&b), b.len, path, errbuf,
                                errsize);
  llmr__buf_free(&b);
  return st;
}

llmr_status llmr__catalog_load_builtin(llmr__catalog *c, char *errbuf,
                                       size_t errsize) {
  return llmr__catalog_merge_json(c, llmr__catalog_builtin_json,
                                  strlen(llmr__catalog_builtin_json),
                                  "built-in catalog", errbuf, errsize);
}

const char *llmr__capability_missing(const llmr__model_info *m,
                                     const llmr_request *req) {
  if (!m || !m->caps_known)
    return NULL;
  if (req->tools && cJSON_GetArraySize(req->tools) > 0 &&
      !(m->caps & LLMR__CAP_TOOLS))
    return "tools";
  if (!(m->caps & LLMR__CAP_VISION) && llmr__request_has_images(req))
    return "vision";
  if (!(m->caps & LLMR__CAP_JSON) && llmr__request_wants_json(req))
    return "json";
  if (!(m->caps & LLMR__CAP_REASONING) && llmr__request_wants_reasoning(req))
    return "reasoning";
  return NULL;
}
