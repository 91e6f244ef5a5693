/*
 * Built-in providers and the construction of provider instances from
 * defaults, the environment and the router's JSON config.
 */
#include "../internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Documented base URLs: each is what the provider's official SDK uses as its
 * base URL option, to which the adapter appends its path. */
const llmr__builtin llmr__builtins[] = {
    {"openai", &llmr__openai_vt, "https://api.openai.com/v1", "OPENAI_API_KEY",
     NULL, 1, "openai"},
    {"anthropic", &llmr__anthropic_vt, "https://api.anthropic.com",
     "ANTHROPIC_API_KEY", NULL, 1, NULL},
    /* the Google GenAI SDKs read GEMINI_API_KEY, then GOOGLE_API_KEY */
    {"google", &llmr__gemini_vt, "https://generativelanguage.googleapis.com",
     "GEMINI_API_KEY", "GOOGLE_API_KEY", 1, NULL},
    {"openrouter", &llmr__openai_vt, "https://openrouter.ai/api/v1",
     "OPENROUTER_API_KEY", NULL, 1, "openrouter"},
    {"mistral", &llmr__openai_vt, "https://api.mistral.ai/v1",
     "MISTRAL_API_KEY", NULL, 1, "mistral"},
    {"groq", &llmr__openai_vt, "https://api.groq.com/openai/v1",
     "GROQ_API_KEY", NULL, 1, NULL},
    {"deepseek", &llmr__openai_vt, "https://api.deepseek.com",
     "DEEPSEEK_API_KEY", NULL, 1, NULL},
    {"xai", &llmr__openai_vt, "https://api.x.ai/v1", "XAI_API_KEY", NULL, 1,
     NULL},
    {"together", &llmr__openai_vt, "https://api.together.xyz/v1",
     "TOGETHER_API_KEY", NULL, 1, NULL},
    /* local: the key is optional and ignored by the server */
    {"ollama", &llmr__openai_vt, "http://localhost:11434/v1", "OLLAMA_API_KEY",
     NULL, 0, "ollama"},
};

/* Slug prefixes that name another provider. */
static const struct {
  const char *alias;
  const char *name;
} aliases[] = {{"gemini", "google"}};

const char *llmr__provider_alias(const char *name, size_t len) {
  size_t i;
  for (i = 0; i < sizeof(aliases) / sizeof(aliases[0]); i++)
    if (strlen(aliases[i].alias) == len &&
        memcmp(aliases[i].alias, name, len) == 0)
      return aliases[i].name;
  return NULL;
}
const size_t llmr__n_builtins = sizeof(llmr__builtins) / sizeof(llmr__builtins[0]);

const llmr__builtin *llmr__builtin_find(const char *name) {
  size_t i;
  for (i = 0; i < llmr__n_builtins; i++)
    if (strcmp(llmr__builtins[i].name, name) == 0)
      return &llmr__builtins[i];
  return NULL;
}

void llmr__provider_free(llmr_provider *p) {
  size_t i;
  if (!p)
    return;
  llmr__free(p->name);
  llmr__free(p->base_url);
  llmr__free(p->chat_url);
  llmr__secret_free(p->api_key);
  cJSON_Delete(p->options);
  for (i = 0; i < p->n_headers; i++) {
    if (llmr__header_is_secret(p->headers[i].name, strlen(p->headers[i].name)))
      llmr__secret_free(p->headers[i].value);
    else
      llmr__free(p->headers[i].value);
    llmr__free(p->headers[i].name);
  }
  llmr__free(p->headers);
  llmr__free(p);
}

/* getenv, treating an empty value as unset */
static const char *env(const char *name) {
  const char *v = getenv(name);
  return (v && *v) ? v : NULL;
}

static llmr_status set_option(llmr_provider *p, const char *key,
                              const char *value) {
  cJSON *s;
  if (!p->options && !(p->options = cJSON_CreateObject()))
    return LLMR_E_NOMEM;
  cJSON_DeleteItemFromObjectCaseSensitive(p->options, key);
  if (!(s = cJSON_CreateString(value)))
    return LLMR_E_NOMEM;
  cJSON_AddItemToObject(p->options, key, s);
  return LLMR_OK;
}

/* The parsed config is the router's own temporary copy (cJSON_Delete does
 * not wipe): once the key is in secret memory, zero the parsed api_key and
 * the values of credential headers so that no copy outlives the call. */
void llmr__conf_wipe_secrets(const cJSON *conf) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(conf, "api_key"), *h;
  const cJSON *hdrs = cJSON_GetObjectItemCaseSensitive(conf, "headers");
  if (cJSON_IsString(v))
    llmr__wipe(v->valuestring, strlen(v->valuestring));
  if (!cJSON_IsObject(hdrs))
    return;
  cJSON_ArrayForEach(h, hdrs) {
    if (cJSON_IsString(h) && h->string &&
        llmr__header_is_secret(h->string, strlen(h->string)))
      llmr__wipe(h->valuestring, strlen(h->valuestring));
  }
}

#define CONF_ERR(...)                                                          \
  do {                                                                         \
    llmr__errf(errbuf, errsize, __VA_ARGS__);                                  \
    st = LLMR_E_INVAL;                                                         \
    goto fail;                                                                 \
  } while (0)

static int valid_base_url(const char *u) {
  return strncmp(u, "https://", 8) == 0 || strncmp(u, "http://", 7) == 0;
}

llmr_status llmr__provider_new(const char *name, const llmr_provider_vt *vt,
                               const llmr__builtin *def, const cJSON *conf,
                               int use_env, void *userdata,
                               llmr_provider **out, char *errbuf,
                               size_t errsize) {
  llmr_provider *p;
  llmr_status st = LLMR_E_NOMEM;
  const char *base = def ? def->base_url : NULL;
  const char *key = NULL, *key_env = def ? def->key_env : NULL;
  const cJSON *v;
  char envname[96];
  size_t i, n;

  *out = NULL;
  if (!(p = llmr__calloc(1, sizeof(*p))) || !(p->name = llmr__strdup(name)))
    goto fail;
  p->vt = vt;
  p->userdata = userdata;
  p->key_required = def ? def->key_required : 1;
  if (def && def->dialect && set_option(p, "dialect", def->dialect) != LLMR_OK)
    goto fail;

  if (conf && !cJSON_IsObject(conf))
    CONF_ERR("providers.%s: expected an object", name);
  if (conf) {
    static const char *const keys[] = {"base_url", "api_key", "api_key_env",
                                       "key_required", "headers", "options",
                                       "adapter", NULL};
    const cJSON *k;
    cJSON_ArrayForEach(k, conf) {
      for (i = 0; keys[i]; i++)
        if (strcmp(k->string, keys[i]) == 0)
          break;
      if (!keys[i])
        CONF_ERR("providers.%s.%s: unknown setting", name, k->string);
    }
    /* a host added with "adapter": "mistral" (say) speaks that dialect */
    if (!def && llmr__json_str(conf, "adapter")) {
      const llmr__builtin *like =
          llmr__builtin_find(llmr__json_str(conf, "adapter"));
      /* but api.openai.com's own quirks stay with it: "adapter": "openai"
       * means the generic OpenAI-compatible wire format */
      if (like && like->dialect && strcmp(like->name, "openai") != 0 &&
          set_option(p, "dialect", like->dialect) != LLMR_OK)
        goto fail;
    }
  }
  if ((v = cJSON_GetObjectItemCaseSensitive(conf, "api_key_env"))) {
    if (!cJSON_IsString(v))
      CONF_ERR("providers.%s.api_key_env: expected a string", name);
    key_env = v->valuestring;
  }
  if (use_env) {
    /* LLMR_<NAME>_BASE_URL, with the name upper-cased and '-' as '_' */
    n = (size_t)snprintf(envname, sizeof(envname), "LLMR_");
    for (i = 0; name[i] && n + 10 < sizeof(envname); i++)
      envname[n++] = (name[i] >= 'a' && name[i] <= 'z')
                         ? (char)(name[i] - 32)
                         : (name[i] == '-' ? '_' : name[i]);
    snprintf(envname + n, sizeof(envname) - n, "_BASE_URL");
    if (env(envname))
      base = env(envname);
    if (key_env)
      key = env(key_env);
    if (!key && def && def->key_env2 && key_env == def->key_env)
      key = env(def->key_env2);
    if (def && strcmp(name, "openrouter") == 0) {
      if (env("LLMR_OPENROUTER_HTTP_REFERER") &&
          set_option(p, "http_referer", env("LLMR_OPENROUTER_HTTP_REFERER")))
        goto fail;
      if (env("LLMR_OPENROUTER_X_TITLE") &&
          set_option(p, "x_title", env("LLMR_OPENROUTER_X_TITLE")))
        goto fail;
    }
  }
  if ((v = cJSON_GetObjectItemCaseSensitive(conf, "base_url"))) {
    if (!cJSON_IsString(v))
      CONF_ERR("providers.%s.base_url: expected a string", name);
    base = v->valuestring;
  }
  if ((v = cJSON_GetObjectItemCaseSensitive(conf, "api_key"))) {
    if (!cJSON_IsString(v))
      CONF_ERR("providers.%s.api_key: expected a string", name);
    key = v->valuestring;
  }
  if ((v = cJSON_GetObjectItemCaseSensitive(conf, "key_required"))) {
    if (!cJSON_IsBool(v))
      CONF_ERR("providers.%s.key_required: expected true or false", name);
    p->key_required = cJSON_IsTrue(v);
  }
  if (!base)
    CONF_ERR("providers.%s.base_url: required", name);
  if (!valid_base_url(base))
    CONF_ERR("providers.%s.base_url: expected an http:// or https:// URL",
             name);
  n = strlen(base);
  while (n > 0 && base[n - 1] == '/')
    n--;
  if (!(p->base_url = llmr__strndup(base, n)))
    goto fail;
  if (key && *key && !(p->api_key = llmr__secret_strdup(key)))
    goto fail;
  /* a key with CR or LF is refused by every call that sends it
   * (llmr_http_request_add_header); a clean one is not checked again */
  if (p->api_key && !strpbrk(p->api_key, "\r\n"))
    p->api_key_len = strlen(p->api_key);

  if ((v = cJSON_GetObjectItemCaseSensitive(conf, "options"))) {
    const cJSON *o;
    if (!cJSON_IsObject(v))
      CONF_ERR("providers.%s.options: expected an object", name);
    cJSON_ArrayForEach(o, v) {
      if (!cJSON_IsString(o))
        CONF_ERR("providers.%s.options.%s: expected a string", name,
                 o->string);
      if (set_option(p, o->string, o->valuestring) != LLMR_OK)
        goto fail;
    }
  }
  if ((v = cJSON_GetObjectItemCaseSensitive(conf, "headers"))) {
    const cJSON *h;
    llmr__header *hd;
    if (!cJSON_IsObject(v))
      CONF_ERR("providers.%s.headers: expected an object", name);
    n = (size_t)cJSON_GetArraySize(v);
    if (!(p->headers = llmr__calloc(n, sizeof(*p->headers))))
      goto fail;
    cJSON_ArrayForEach(h, v) {
      if (!cJSON_IsString(h) || strpbrk(h->valuestring, "\r\n") ||
          strpbrk(h->string, ":\r\n"))
        CONF_ERR("providers.%s.headers.%s: expected a one-line string", name,
                 h->string);
      /* a name first: provider_free tells by it how the value was made */
      hd = &p->headers[p->n_headers];
      if (!(hd->name = llmr__strdup(h->string)))
        goto fail;
      p->n_headers++;
      hd->value = llmr__header_is_secret(h->string, strlen(h->string))
                      ? llmr__secret_strdup(h->valuestring)
                      : llmr__strdup(h->valuestring);
      if (!hd->value)
        goto fail;
    }
  }
  st = LLMR_E_NOMEM;
  n = strlen(p->base_url);
  if (!(p->chat_url = llmr__malloc(n + sizeof("/chat/completions"))))
    goto fail;
  memcpy(p->chat_url, p->base_url, n);
  memcpy(p->chat_url + n, "/chat/completions", sizeof("/chat/completions"));
  p->dialect = llmr_provider_option(p, "dialect");
  p->http_referer = llmr_provider_option(p, "http_referer");
  p->x_title = llmr_provider_option(p, "x_title");
  llmr__conf_wipe_secrets(conf);
  *out = p;
  return LLMR_OK;
fail:
  if (st == LLMR_E_NOMEM)
    llmr__errf(errbuf, errsize, "out of memory");
  llmr__conf_wipe_secrets(conf);
  llmr__provider_free(p);
  return st;
}

/* ---- public accessors --------------------------------------------------- */

LLMR_API const char *llmr_provider_name(const llmr_provider *p) {
  return p ? p->name : NULL;
}
LLMR_API const char *llmr_provider_base_url(const llmr_provider *p) {
  return p ? p->base_url : NULL;
}
LLMR_API const char *llmr_provider_api_key(const llmr_provider *p) {
  return p ? p->api_key : NULL;
}
LLMR_API const char *llmr_provider_option(const llmr_provider *p,
                                          const char *key) {
  return (p && key) ? llmr__json_str(p->options, key) : NULL;
}
LLMR_API void *llmr_provider_userdata(const llmr_provider *p) {
  return p ? p->userdata : NULL;
}
