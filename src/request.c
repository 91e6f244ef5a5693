/*
 * The canonical chat request: built through the C API or parsed from an
 * OpenAI Chat Completions body, and written back out in that shape.
 */
#include "internal.h"
#include "policy.h"

#include <math.h>
#include <string.h>

#define LLMR__MAX_STOP 16

static const char *const role_names[] = {"system", "user", "assistant",
                                         "tool", "developer"};

const char *llmr__role_name(llmr_role role) {
  if ((unsigned)role < sizeof(role_names) / sizeof(role_names[0]))
    return role_names[role];
  return "user";
}

static int role_from_name(const char *s, llmr_role *out) {
  unsigned i;
  for (i = 0; i < sizeof(role_names) / sizeof(role_names[0]); i++) {
    if (strcmp(s, role_names[i]) == 0) {
      *out = (llmr_role)i;
      return 0;
    }
  }
  return -1;
}

LLMR_API llmr_status llmr_request_new(llmr_request **out) {
  llmr_request *req;
  if (!out)
    return LLMR_E_INVAL;
  req = llmr__calloc(1, sizeof(*req));
  *out = req;
  return req ? LLMR_OK : LLMR_E_NOMEM;
}

static void tool_call_clear(llmr__tool_call *tc) {
  llmr__free(tc->id);
  llmr__free(tc->name);
  llmr__free(tc->arguments);
}

static void message_clear(llmr__message *m) {
  size_t i;
  llmr__free(m->content);
  cJSON_Delete(m->parts);
  llmr__free(m->name);
  llmr__free(m->tool_call_id);
  for (i = 0; i < m->n_tool_calls; i++)
    tool_call_clear(&m->tool_calls[i]);
  llmr__free(m->tool_calls);
}

LLMR_API void llmr_request_free(llmr_request *req) {
  size_t i;
  if (!req)
    return;
  for (i = 0; i < req->n_messages; i++)
    message_clear(&req->messages[i]);
  llmr__free(req->messages);
  cJSON_Delete(req->tools);
  cJSON_Delete(req->tool_choice);
  cJSON_Delete(req->response_format);
  cJSON_Delete(req->extra);
  cJSON_Delete(req->policy);
  for (i = 0; i < req->n_stop; i++)
    llmr__free(req->stop[i]);
  llmr__free(req->stop);
  llmr__free(req->app);
  llmr__free(req->user);
  llmr__free(req->reasoning_effort);
  llmr__free(req);
}

/* Validate a per-call policy object and keep a copy of it. */
static llmr_status set_policy_cjson(llmr_request *req, const cJSON *obj,
                                    const char *where, char *errbuf,
                                    size_t errsize) {
  llmr__policy p;
  llmr_status st;
  cJSON *dup;
  llmr__policy_defaults(&p);
  if ((st = llmr__policy_apply(&p, obj, NULL, NULL, where, errbuf,
                               errsize)) != LLMR_OK)
    return st;
  if (!(dup = cJSON_Duplicate(obj, 1)))
    return LLMR_E_NOMEM;
  cJSON_Delete(req->policy);
  req->policy = dup;
  return LLMR_OK;
}

LLMR_API llmr_status llmr_request_set_policy(llmr_request *req,
                                             const char *policy_json) {
  cJSON *obj;
  llmr_status st;
  if (!req)
    return LLMR_E_INVAL;
  if (!policy_json) {
    cJSON_Delete(req->policy);
    req->policy = NULL;
    return LLMR_OK;
  }
  if (!(obj = cJSON_Parse(policy_json)))
    return LLMR_E_INVAL;
  st = set_policy_cjson(req, obj, "policy", NULL, 0);
  cJSON_Delete(obj);
  return st;
}

LLMR_API size_t llmr_request_message_count(const llmr_request *req) {
  return req ? req->n_messages : 0;
}

/* Append an empty message; the caller fills it. */
static llmr__message *push_message(llmr_request *req, llmr_role role) {
  llmr__message *m;
  if (llmr__grow((void **)&req->messages, &req->cap_messages,
                 req->n_messages + 1, sizeof(*req->messages)) != 0)
    return NULL;
  m = &req->messages[req->n_messages++];
  memset(m, 0, sizeof(*m));
  m->role = role;
  return m;
}

static void pop_message(llmr_request *req) {
  message_clear(&req->messages[--req->n_messages]);
}

LLMR_API llmr_status llmr_request_add_message(llmr_request *req,
                                              llmr_role role,
                                              const char *content) {
  llmr__message *m;
  if (!req || (unsigned)role > LLMR_ROLE_DEVELOPER)
    return LLMR_E_INVAL;
  /* a tool result needs its call id: llmr_request_add_tool_result() */
  if ((!content && role != LLMR_ROLE_ASSISTANT) || role == LLMR_ROLE_TOOL)
    return LLMR_E_INVAL;
  m = push_message(req, role);
  if (!m)
    return LLMR_E_NOMEM;
  if (content && !(m->content = llmr__strdup(content))) {
    pop_message(req);
    return LLMR_E_NOMEM;
  }
  return LLMR_OK;
}

static llmr_status add_tool_call(llmr__message *m, const char *id,
                                 const char *name, const char *args) {
  llmr__tool_call *tc;
  if (llmr__grow((void **)&m->tool_calls, &m->cap_tool_calls,
                 m->n_tool_calls + 1, sizeof(*m->tool_calls)) != 0)
    return LLMR_E_NOMEM;
  tc = &m->tool_calls[m->n_tool_calls];
  tc->id = llmr__strdup(id);
  tc->name = llmr__strdup(name);
  tc->arguments = llmr__strdup(args ? args : "{}");
  if (!tc->id || !tc->name || !tc->arguments) {
    tool_call_clear(tc);
    return LLMR_E_NOMEM;
  }
  m->n_tool_calls++;
  return LLMR_OK;
}

LLMR_API llmr_status llmr_request_add_tool_call(llmr_request *req,
                                                const char *id,
                                                const char *name,
                                                const char *arguments_json) {
  llmr__message *m;
  if (!req || !id || !name || req->n_messages == 0)
    return LLMR_E_INVAL;
  m = &req->messages[req->n_messages - 1];
  if (m->role != LLMR_ROLE_ASSISTANT)
    return LLMR_E_INVAL;
  return add_tool_call(m, id, name, arguments_json);
}

LLMR_API llmr_status llmr_request_add_tool_result(llmr_request *req,
                                                  const char *tool_call_id,
                                                  const char *content) {
  llmr__message *m;
  if (!req || !tool_call_id || !content)
    return LLMR_E_INVAL;
  m = push_message(req, LLMR_ROLE_TOOL);
  if (!m)
    return LLMR_E_NOMEM;
  m->content = llmr__strdup(content);
  m->tool_call_id = llmr__strdup(tool_call_id);
  if (!m->content || !m->tool_call_id) {
    pop_message(req);
    return LLMR_E_NOMEM;
  }
  return LLMR_OK;
}

LLMR_API llmr_status llmr_request_add_tool(llmr_request *req, const char *name,
                                           const char *description,
                                           const char *parameters_json) {
  cJSON *tool = NULL, *fn, *params = NULL;
  if (!req || !name || !*name)
    return LLMR_E_INVAL;
  if (parameters_json) {
    params = cJSON_Parse(parameters_json);
    if (!cJSON_IsObject(params)) {
      cJSON_Delete(params);
      return LLMR_E_INVAL;
    }
  }
  if (!req->tools && !(req->tools = cJSON_CreateArray()))
    goto oom;
  if (!(tool = cJSON_CreateObject()) ||
      !cJSON_AddStringToObject(tool, "type", "function") ||
      !(fn = cJSON_AddObjectToObject(tool, "function")) ||
      !cJSON_AddStringToObject(fn, "name", name))
    goto oom;
  if (description && !cJSON_AddStringToObject(fn, "description", description))
    goto oom;
  if (params) {
    cJSON_AddItemToObject(fn, "parameters", params);
    params = NULL;
  }
  cJSON_AddItemToArray(req->tools, tool);
  return LLMR_OK;
oom:
  cJSON_Delete(params);
  cJSON_Delete(tool);
  return LLMR_E_NOMEM;
}

LLMR_API llmr_status llmr_request_set_temperature(llmr_request *req,
                                                  double temperature) {
  if (!req || !(temperature >= 0.0 && temperature <= 2.0))
    return LLMR_E_INVAL;
  req->temperature = temperature;
  req->has_temperature = 1;
  return LLMR_OK;
}

LLMR_API llmr_status llmr_request_set_top_p(llmr_request *req, double top_p) {
  if (!req || !(top_p >= 0.0 && top_p <= 1.0))
    return LLMR_E_INVAL;
  req->top_p = top_p;
  req->has_top_p = 1;
  return LLMR_OK;
}

LLMR_API llmr_status llmr_request_set_max_tokens(llmr_request *req,
                                                 int64_t max_tokens) {
  if (!req || max_tokens < 1)
    return LLMR_E_INVAL;
  req->max_tokens = max_tokens;
  return LLMR_OK;
}

LLMR_API llmr_status llmr_request_set_seed(llmr_request *req, int64_t seed) {
  if (!req)
    return LLMR_E_INVAL;
  req->seed = seed;
  req->has_seed = 1;
  return LLMR_OK;
}

LLMR_API llmr_status llmr_request_add_stop(llmr_request *req,
                                           const char *stop) {
  char *s;
  if (!req || !stop || !*stop || req->n_stop >= LLMR__MAX_STOP)
    return LLMR_E_INVAL;
  s = llmr__strdup(stop);
  if (!s)
    return LLMR_E_NOMEM;
  {
    char **p = llmr__realloc(req->stop, (req->n_stop + 1) * sizeof(*p));
    if (!p) {
      llmr__free(s);
      return LLMR_E_NOMEM;
    }
    req->stop = p;
  }
  req->stop[req->n_stop++] = s;
  return LLMR_OK;
}

static llmr_status replace_str(char **slot, const char *value) {
  char *d = NULL;
  if (value && !(d = llmr__strdup(value)))
    return LLMR_E_NOMEM;
  llmr__free(*slot);
  *slot = d;
  return LLMR_OK;
}

LLMR_API llmr_status llmr_request_set_app(llmr_request *req, const char *app) {
  return req ? replace_str(&req->app, app) : LLMR_E_INVAL;
}

LLMR_API llmr_status llmr_request_set_user(llmr_request *req,
                                           const char *user) {
  return req ? replace_str(&req->user, user) : LLMR_E_INVAL;
}

static int valid_effort(const char *e) {
  return strcmp(e, "minimal") == 0 || strcmp(e, "low") == 0 ||
         strcmp(e, "medium") == 0 || strcmp(e, "high") == 0;
}

LLMR_API llmr_status llmr_request_set_reasoning(llmr_request *req,
                                                const char *effort,
                                                int64_t budget_tokens) {
  if (!req || budget_tokens < 0 || (effort && !valid_effort(effort)))
    return LLMR_E_INVAL;
  if (replace_str(&req->reasoning_effort, effort) != LLMR_OK)
    return LLMR_E_NOMEM;
  req->reasoning_budget = budget_tokens;
  return LLMR_OK;
}

LLMR_API llmr_status llmr_request_set_tool_choice(llmr_request *req,
                                                  const char *choice) {
  cJSON *c = NULL, *fn;
  if (!req)
    return LLMR_E_INVAL;
  if (choice) {
    if (!*choice)
      return LLMR_E_INVAL;
    if (strcmp(choice, "auto") == 0 || strcmp(choice, "none") == 0 ||
        strcmp(choice, "required") == 0) {
      c = cJSON_CreateString(choice);
    } else if ((c = cJSON_CreateObject())) {
      if (!cJSON_AddStringToObject(c, "type", "function") ||
          !(fn = cJSON_AddObjectToObject(c, "function")) ||
          !cJSON_AddStringToObject(fn, "name", choice)) {
        cJSON_Delete(c);
        c = NULL;
      }
    }
    if (!c)
      return LLMR_E_NOMEM;
  }
  cJSON_Delete(req->tool_choice);
  req->tool_choice = c;
  return LLMR_OK;
}

static int valid_response_format(const cJSON *v) {
  const char *t = llmr__json_str(v, "type");
  if (!t)
    return 0;
  if (strcmp(t, "json_schema") == 0)
    return cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(v, "json_schema"));
  return strcmp(t, "text") == 0 || strcmp(t, "json_object") == 0;
}

LLMR_API llmr_status llmr_request_set_response_format(llmr_request *req,
                                                      const char *json) {
  cJSON *v = NULL;
  if (!req)
    return LLMR_E_INVAL;
  if (json) {
    v = cJSON_Parse(json);
    if (!cJSON_IsObject(v) || !valid_response_format(v)) {
      cJSON_Delete(v);
      return LLMR_E_INVAL;
    }
  }
  cJSON_Delete(req->response_format);
  req->response_format = v;
  return LLMR_OK;
}

LLMR_API llmr_status llmr_request_add_image(llmr_request *req,
                                            const char *url,
                                            const char *detail) {
  llmr__message *m;
  cJSON *part = NULL, *iu;
  if (!req || !url || req->n_messages == 0)
    return LLMR_E_INVAL;
  if (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0 &&
      strncmp(url, "data:", 5) != 0)
    return LLMR_E_INVAL;
  m = &req->messages[req->n_messages - 1];
  if (m->role != LLMR_ROLE_USER)
    return LLMR_E_INVAL;
  if (!m->parts) {
    /* text content becomes the first part */
    if (!(m->parts = cJSON_CreateArray()))
      return LLMR_E_NOMEM;
    if (m->content) {
      cJSON *t = cJSON_CreateObject();
      if (!t || !cJSON_AddStringToObject(t, "type", "text") ||
          !cJSON_AddStringToObject(t, "text", m->content)) {
        cJSON_Delete(t);
        return LLMR_E_NOMEM;
      }
      cJSON_AddItemToArray(m->parts, t);
      llmr__free(m->content);
      m->content = NULL;
    }
  }
  if (!(part = cJSON_CreateObject()) ||
      !cJSON_AddStringToObject(part, "type", "image_url") ||
      !(iu = cJSON_AddObjectToObject(part, "image_url")) ||
      !cJSON_AddStringToObject(iu, "url", url) ||
      (detail && !cJSON_AddStringToObject(iu, "detail", detail))) {
    cJSON_Delete(part);
    return LLMR_E_NOMEM;
  }
  cJSON_AddItemToArray(m->parts, part);
  return LLMR_OK;
}

int llmr__request_has_images(const llmr_request *req) {
  size_t i;
  const cJSON *p;
  for (i = 0; i < req->n_messages; i++) {
    cJSON_ArrayForEach(p, req->messages[i].parts) {
      const char *t = llmr__json_str(p, "type");
      if (t && strcmp(t, "image_url") == 0)
        return 1;
    }
  }
  return 0;
}

int llmr__request_wants_json(const llmr_request *req) {
  const char *t = llmr__json_str(req->response_format, "type");
  return t && strcmp(t, "text") != 0;
}

int llmr__request_wants_reasoning(const llmr_request *req) {
  return req->reasoning_effort != NULL || req->reasoning_budget > 0;
}

const char *llmr__reasoning_effort(const llmr_request *req) {
  if (req->reasoning_effort)
    return req->reasoning_effort;
  if (req->reasoning_budget <= 0)
    return NULL;
  if (req->reasoning_budget < 2048)
    return "low";
  return req->reasoning_budget < 8192 ? "medium" : "high";
}

/* ---- from OpenAI JSON --------------------------------------------------- */

#define BAD(...)                                                               \
  do {                                                                         \
    llmr__errf(errbuf, errsize, __VA_ARGS__);                                  \
    return LLMR_E_INVAL;                                                       \
  } while (0)

static llmr_status parse_content(llmr__message *m, const cJSON *c, size_t i,
                                 char *errbuf, size_t errsize) {
  const cJSON *part;
  size_t k = 0;
  if (cJSON_IsNull(c) || !c) {
    if (m->role == LLMR_ROLE_ASSISTANT)
      return LLMR_OK;
    BAD("messages[%zu].content: required for role %s", i,
        llmr__role_name(m->role));
  }
  if (cJSON_IsString(c)) {
    m->content = llmr__strdup(c->valuestring);
    return m->content ? LLMR_OK : LLMR_E_NOMEM;
  }
  if (!cJSON_IsArray(c))
    BAD("messages[%zu].content: expected a string, an array of content parts "
        "or null",
        i);
  cJSON_ArrayForEach(part, c) {
    const char *type = llmr__json_str(part, "type");
    if (!cJSON_IsObject(part) || !type)
      BAD("messages[%zu].content[%zu].type: expected a string", i, k);
    if (strcmp(type, "text") == 0) {
      if (!llmr__json_str(part, "text"))
        BAD("messages[%zu].content[%zu].text: expected a string", i, k);
    } else if (strcmp(type, "image_url") == 0) {
      const cJSON *iu = cJSON_GetObjectItemCaseSensitive(part, "image_url");
      if (!(cJSON_IsString(iu) || llmr__json_str(iu, "url")))
        BAD("messages[%zu].content[%zu].image_url.url: expected a string", i,
            k);
    } else if (strcmp(type, "input_audio") != 0 && strcmp(type, "file") != 0) {
      BAD("messages[%zu].content[%zu].type: unknown content part type '%s'",
          i, k, type);
    }
    k++;
  }
  m->parts = cJSON_Duplicate(c, 1);
  return m->parts ? LLMR_OK : LLMR_E_NOMEM;
}

static llmr_status parse_tool_calls(llmr__message *m, const cJSON *tcs,
                                    size_t i, char *errbuf, size_t errsize) {
  const cJSON *tc;
  size_t k = 0;
  if (!cJSON_IsArray(tcs))
    BAD("messages[%zu].tool_calls: expected an array", i);
  cJSON_ArrayForEach(tc, tcs) {
    const char *id = llmr__json_str(tc, "id");
    const cJSON *fn = cJSON_GetObjectItemCaseSensitive(tc, "function");
    const char *name = llmr__json_str(fn, "name");
    const cJSON *args = cJSON_GetObjectItemCaseSensitive(fn, "arguments");
    llmr_status st;
    char *printed = NULL;
    if (!id)
      BAD("messages[%zu].tool_calls[%zu].id: expected a string", i, k);
    if (!name)
      BAD("messages[%zu].tool_calls[%zu].function.name: expected a string", i,
          k);
    if (args && !cJSON_IsString(args) && !cJSON_IsObject(args))
      BAD("messages[%zu].tool_calls[%zu].function.arguments: expected a JSON "
          "string",
          i, k);
    if (cJSON_IsObject(args) && !(printed = llmr__json_print(args)))
      return LLMR_E_NOMEM;
    st = add_tool_call(m, id, name,
                       printed ? printed
                               : (args ? args->valuestring : "{}"));
    llmr__free(printed);
    if (st != LLMR_OK)
      return st;
    k++;
  }
  return LLMR_OK;
}

static llmr_status parse_messages(llmr_request *req, const cJSON *msgs,
                                  char *errbuf, size_t errsize) {
  const cJSON *jm;
  size_t i = 0;
  if (!cJSON_IsArray(msgs))
    BAD("messages: expected an array of messages");
  if (cJSON_GetArraySize(msgs) == 0)
    BAD("messages: must contain at least one message");
  cJSON_ArrayForEach(jm, msgs) {
    const char *role = llmr__json_str(jm, "role");
    llmr_role r;
    llmr__message *m;
    const cJSON *v;
    llmr_status st;
    if (!cJSON_IsObject(jm))
      BAD("messages[%zu]: expected an object", i);
    if (!role || role_from_name(role, &r) != 0)
      BAD("messages[%zu].role: expected one of system, developer, user, "
          "assistant, tool",
          i);
    if (!(m = push_message(req, r)))
      return LLMR_E_NOMEM;
    st = parse_content(m, cJSON_GetObjectItemCaseSensitive(jm, "content"), i,
                       errbuf, errsize);
    if (st != LLMR_OK)
      return st;
    if ((v = cJSON_GetObjectItemCaseSensitive(jm, "name"))) {
      if (!cJSON_IsString(v))
        BAD("messages[%zu].name: expected a string", i);
      if (!(m->name = llmr__strdup(v->valuestring)))
        return LLMR_E_NOMEM;
    }
    if (r == LLMR_ROLE_TOOL) {
      const char *id = llmr__json_str(jm, "tool_call_id");
      if (!id)
        BAD("messages[%zu].tool_call_id: required for role tool", i);
      if (!(m->tool_call_id = llmr__strdup(id)))
        return LLMR_E_NOMEM;
    }
    v = cJSON_GetObjectItemCaseSensitive(jm, "tool_calls");
    if (v && !cJSON_IsNull(v)) {
      if (r != LLMR_ROLE_ASSISTANT)
        BAD("messages[%zu].tool_calls: only assistant messages carry tool "
            "calls",
            i);
      if ((st = parse_tool_calls(m, v, i, errbuf, errsize)) != LLMR_OK)
        return st;
    }
    if (r == LLMR_ROLE_ASSISTANT && !m->content && !m->parts &&
        m->n_tool_calls == 0)
      BAD("messages[%zu].content: an assistant message needs content or "
          "tool_calls",
          i);
    i++;
  }
  return LLMR_OK;
}

static llmr_status parse_tools(llmr_request *req, const cJSON *tools,
                               char *errbuf, size_t errsize) {
  const cJSON *t;
  size_t k = 0;
  if (!cJSON_IsArray(tools))
    BAD("tools: expected an array");
  cJSON_ArrayForEach(t, tools) {
    const cJSON *fn = cJSON_GetObjectItemCaseSensitive(t, "function");
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(fn, "parameters");
    const char *type = llmr__json_str(t, "type");
    if (!type || strcmp(type, "function") != 0)
      BAD("tools[%zu].type: expected \"function\"", k);
    if (!llmr__json_str(fn, "name") || !*llmr__json_str(fn, "name"))
      BAD("tools[%zu].function.name: expected a non-empty string", k);
    if (params && !cJSON_IsObject(params))
      BAD("tools[%zu].function.parameters: expected a JSON Schema object", k);
    k++;
  }
  req->tools = cJSON_Duplicate(tools, 1);
  return req->tools ? LLMR_OK : LLMR_E_NOMEM;
}

static llmr_status parse_stop(llmr_request *req, const cJSON *v, char *errbuf,
                              size_t errsize) {
  const cJSON *s;
  llmr_status st;
  if (cJSON_IsNull(v))
    return LLMR_OK;
  if (cJSON_IsString(v)) {
    if (!*v->valuestring)
      BAD("stop: expected a non-empty string");
    return llmr_request_add_stop(req, v->valuestring);
  }
  if (!cJSON_IsArray(v))
    BAD("stop: expected a string or an array of strings");
  if (cJSON_GetArraySize(v) > LLMR__MAX_STOP)
    BAD("stop: at most %d sequences", LLMR__MAX_STOP);
  cJSON_ArrayForEach(s, v) {
    if (!cJSON_IsString(s) || !*s->valuestring)
      BAD("stop: expected non-empty strings");
    if ((st = llmr_request_add_stop(req, s->valuestring)) != LLMR_OK)
      return st;
  }
  return LLMR_OK;
}

static int is_integral(const cJSON *v) {
  return cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble) &&
         fabs(v->valuedouble) < 9.0e15;
}

/* Fields the call itself decides; accepted and ignored here. */
static int is_call_field(const char *k) {
  return strcmp(k, "model") == 0 || strcmp(k, "models") == 0 ||
         strcmp(k, "stream") == 0 || strcmp(k, "stream_options") == 0;
}

static llmr_status parse_field(llmr_request *req, const cJSON *v,
                               char *errbuf, size_t errsize) {
  const char *k = v->string;
  if (strcmp(k, "messages") == 0)
    return parse_messages(req, v, errbuf, errsize);
  if (strcmp(k, "tools") == 0)
    return cJSON_IsNull(v) ? LLMR_OK : parse_tools(req, v, errbuf, errsize);
  if (strcmp(k, "stop") == 0)
    return parse_stop(req, v, errbuf, errsize);
  if (strcmp(k, "temperature") == 0) {
    if (cJSON_IsNull(v))
      return LLMR_OK;
    if (!cJSON_IsNumber(v) ||
        llmr_request_set_temperature(req, v->valuedouble) != LLMR_OK)
      BAD("temperature: expected a number from 0 to 2");
    return LLMR_OK;
  }
  if (strcmp(k, "top_p") == 0) {
    if (cJSON_IsNull(v))
      return LLMR_OK;
    if (!cJSON_IsNumber(v) ||
        llmr_request_set_top_p(req, v->valuedouble) != LLMR_OK)
      BAD("top_p: expected a number from 0 to 1");
    return LLMR_OK;
  }
  if (strcmp(k, "max_tokens") == 0 ||
      strcmp(k, "max_completion_tokens") == 0) {
    if (cJSON_IsNull(v))
      return LLMR_OK;
    if (!is_integral(v) || v->valuedouble < 1)
      BAD("%s: expected a positive integer", k);
    req->max_tokens = (int64_t)v->valuedouble;
    return LLMR_OK;
  }
  if (strcmp(k, "seed") == 0) {
    if (cJSON_IsNull(v))
      return LLMR_OK;
    if (!is_integral(v))
      BAD("seed: expected an integer");
    return llmr_request_set_seed(req, (int64_t)v->valuedouble);
  }
  if (strcmp(k, "user") == 0 || strcmp(k, "app") == 0) {
    if (cJSON_IsNull(v))
      return LLMR_OK;
    if (!cJSON_IsString(v))
      BAD("%s: expected a string", k);
    return replace_str(k[0] == 'u' ? &req->user : &req->app, v->valuestring);
  }
  if (strcmp(k, "reasoning_effort") == 0) {
    if (cJSON_IsNull(v))
      return LLMR_OK;
    if (!cJSON_IsString(v) || !valid_effort(v->valuestring))
      BAD("reasoning_effort: expected \"minimal\", \"low\", \"medium\" or "
          "\"high\"");
    return replace_str(&req->reasoning_effort, v->valuestring);
  }
  if (strcmp(k, "reasoning") == 0) {
    /* OpenRouter's unified knob: {"effort": ..., "max_tokens": ...} */
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(v, "effort");
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(v, "max_tokens");
    if (cJSON_IsNull(v))
      return LLMR_OK;
    if (!cJSON_IsObject(v))
      BAD("reasoning: expected an object with effort and/or max_tokens");
    if (e && !(cJSON_IsString(e) && valid_effort(e->valuestring)))
      BAD("reasoning.effort: expected \"minimal\", \"low\", \"medium\" or "
          "\"high\"");
    if (mt && !(is_integral(mt) && mt->valuedouble >= 0))
      BAD("reasoning.max_tokens: expected a non-negative integer");
    if (e && replace_str(&req->reasoning_effort, e->valuestring) != LLMR_OK)
      return LLMR_E_NOMEM;
    if (mt)
      req->reasoning_budget = (int64_t)mt->valuedouble;
    return LLMR_OK;
  }
  if (strcmp(k, "tool_choice") == 0) {
    if (cJSON_IsNull(v))
      return LLMR_OK;
    if (!cJSON_IsString(v) && !cJSON_IsObject(v))
      BAD("tool_choice: expected \"auto\", \"none\", \"required\" or an "
          "object naming a function");
    req->tool_choice = cJSON_Duplicate(v, 1);
    return req->tool_choice ? LLMR_OK : LLMR_E_NOMEM;
  }
  if (strcmp(k, "response_format") == 0) {
    const char *t = llmr__json_str(v, "type");
    if (cJSON_IsNull(v))
      return LLMR_OK;
    if (!t || (strcmp(t, "json_schema") != 0 && !valid_response_format(v)))
      BAD("response_format.type: expected \"text\", \"json_object\" or "
          "\"json_schema\"");
    if (!valid_response_format(v))
      BAD("response_format.json_schema: expected an object");
    req->response_format = cJSON_Duplicate(v, 1);
    return req->response_format ? LLMR_OK : LLMR_E_NOMEM;
  }
  if (strcmp(k, "n") == 0) {
    if (!cJSON_IsNull(v) && !(is_integral(v) && v->valuedouble == 1))
      BAD("n: only n=1 is supported");
    return LLMR_OK;
  }
  if (is_call_field(k))
    return LLMR_OK;
  if (strcmp(k, "llmroute") == 0) {
    /* the library's own options: never sent to a provider */
    const cJSON *o;
    if (cJSON_IsNull(v))
      return LLMR_OK;
    if (!cJSON_IsObject(v))
      BAD("llmroute: expected an object");
    cJSON_ArrayForEach(o, v) {
      llmr_status st;
      if (strcmp(o->string, "policy") != 0)
        BAD("llmroute.%s: unknown field", o->string);
      if (cJSON_IsNull(o))
        continue;
      if ((st = set_policy_cjson(req, o, "llmroute.policy", errbuf,
                                 errsize)) != LLMR_OK)
        return st;
    }
    return LLMR_OK;
  }
  /* Anything else is passed through to OpenAI-compatible providers. */
  if (!req->extra && !(req->extra = cJSON_CreateObject()))
    return LLMR_E_NOMEM;
  {
    cJSON *dup = cJSON_Duplicate(v, 1);
    if (!dup)
      return LLMR_E_NOMEM;
    cJSON_AddItemToObject(req->extra, k, dup);
  }
  return LLMR_OK;
}

llmr_status llmr__request_from_cjson(const cJSON *root, llmr_request **out,
                                     char *errbuf, size_t errsize) {
  llmr_request *req;
  const cJSON *v;
  llmr_status st;
  *out = NULL;
  if (!cJSON_IsObject(root))
    BAD("request: expected a JSON object");
  if (!cJSON_GetObjectItemCaseSensitive(root, "messages"))
    BAD("messages: required");
  if ((st = llmr_request_new(&req)) != LLMR_OK)
    return st;
  cJSON_ArrayForEach(v, root) {
    if ((st = parse_field(req, v, errbuf, errsize)) != LLMR_OK) {
      if (st == LLMR_E_NOMEM)
        llmr__errf(errbuf, errsize, "out of memory");
      llmr_request_free(req);
      return st;
    }
  }
  *out = req;
  return LLMR_OK;
}

LLMR_API llmr_status llmr_request_from_json(const char *json, size_t len,
                                            llmr_request **out, char *errbuf,
                                            size_t errsize) {
  cJSON *root;
  llmr_status st;
  if (out)
    *out = NULL;
  if (!json || !out) {
    llmr__errf(errbuf, errsize, "request: no JSON given");
    return LLMR_E_INVAL;
  }
  if (len == 0)
    len = strlen(json);
  root = cJSON_ParseWithLength(json, len);
  if (!root) {
    const char *at = cJSON_GetErrorPtr();
    /* cJSON's error pointer is global and racy; only its offset is used,
     * and only when it points inside our own buffer. */
    if (at && at >= json && at <= json + len)
      llmr__errf(errbuf, errsize, "request: invalid JSON near byte %zu",
                 (size_t)(at - json));
    else
      llmr__errf(errbuf, errsize, "request: invalid JSON");
    return LLMR_E_INVAL;
  }
  st = llmr__request_from_cjson(root, out, errbuf, errsize);
  cJSON_Delete(root);
  return st;
}

/* ---- to OpenAI JSON ----------------------------------------------------- */

static cJSON *message_to_openai(const llmr__message *m) {
  cJSON *jm = cJSON_CreateObject();
  size_t i;
  if (!jm || !cJSON_AddStringToObject(jm, "role", llmr__role_name(m->role)))
    goto oom;
  if (m->parts) {
    cJSON *p = cJSON_Duplicate(m->parts, 1);
    if (!p)
      goto oom;
    cJSON_AddItemToObject(jm, "content", p);
  } else if (!llmr__json_add_str_or_null(jm, "content", m->content)) {
    goto oom;
  }
  if (m->name && !cJSON_AddStringToObject(jm, "name", m->name))
    goto oom;
  if (m->tool_call_id &&
      !cJSON_AddStringToObject(jm, "tool_call_id", m->tool_call_id))
    goto oom;
  if (m->n_tool_calls) {
    cJSON *arr = cJSON_AddArrayToObject(jm, "tool_calls");
    if (!arr)
      goto oom;
    for (i = 0; i < m->n_tool_calls; i++) {
      cJSON *tc = cJSON_CreateObject(), *fn;
      if (!tc)
        goto oom;
      cJSON_AddItemToArray(arr, tc);
      if (!cJSON_AddStringToObject(tc, "id", m->tool_calls[i].id) ||
          !cJSON_AddStringToObject(tc, "type", "function") ||
          !(fn = cJSON_AddObjectToObject(tc, "function")) ||
          !cJSON_AddStringToObject(fn, "name", m->tool_calls[i].name) ||
          !cJSON_AddStringToObject(fn, "arguments",
                                   m->tool_calls[i].arguments))
        goto oom;
    }
  }
  return jm;
oom:
  cJSON_Delete(jm);
  return NULL;
}

static int add_dup(cJSON *obj, const char *key, const cJSON *v) {
  cJSON *d;
  if (!v)
    return 0;
  if (!(d = cJSON_Duplicate(v, 1)))
    return -1;
  cJSON_AddItemToObject(obj, key, d);
  return 0;
}

cJSON *llmr__request_to_openai(const llmr_request *req, const char *model) {
  cJSON *root = cJSON_CreateObject(), *msgs, *v;
  size_t i;
  if (!root)
    return NULL;
  if (model && !cJSON_AddStringToObject(root, "model", model))
    goto oom;
  if (!(msgs = cJSON_AddArrayToObject(root, "messages")))
    goto oom;
  for (i = 0; i < req->n_messages; i++) {
    cJSON *jm = message_to_openai(&req->messages[i]);
    if (!jm)
      goto oom;
    cJSON_AddItemToArray(msgs, jm);
  }
  if (add_dup(root, "tools", req->tools) != 0 ||
      add_dup(root, "tool_choice", req->tool_choice) != 0 ||
      add_dup(root, "response_format", req->response_format) != 0)
    goto oom;
  if (req->has_temperature &&
      !cJSON_AddNumberToObject(root, "temperature", req->temperature))
    goto oom;
  if (req->has_top_p && !cJSON_AddNumberToObject(root, "top_p", req->top_p))
    goto oom;
  if (req->max_tokens &&
      !cJSON_AddNumberToObject(root, "max_tokens", (double)req->max_tokens))
    goto oom;
  if (req->n_stop) {
    cJSON *arr = cJSON_AddArrayToObject(root, "stop");
    if (!arr)
      goto oom;
    for (i = 0; i < req->n_stop; i++) {
      cJSON *s = cJSON_CreateString(req->stop[i]);
      if (!s)
        goto oom;
      cJSON_AddItemToArray(arr, s);
    }
  }
  if (req->has_seed &&
      !cJSON_AddNumberToObject(root, "seed", (double)req->seed))
    goto oom;
  if (req->reasoning_budget > 0) {
    /* a budget has no OpenAI field: OpenRouter's unified object keeps it */
    cJSON *ro = cJSON_AddObjectToObject(root, "reasoning");
    if (!ro ||
        (req->reasoning_effort &&
         !cJSON_AddStringToObject(ro, "effort", req->reasoning_effort)) ||
        !cJSON_AddNumberToObject(ro, "max_tokens",
                                 (double)req->reasoning_budget))
      goto oom;
  } else if (req->reasoning_effort &&
             !cJSON_AddStringToObject(root, "reasoning_effort",
                                      req->reasoning_effort)) {
    goto oom;
  }
  if (req->user && !cJSON_AddStringToObject(root, "user", req->user))
    goto oom;
  if (req->extra) {
    cJSON_ArrayForEach(v, req->extra) {
      if (!cJSON_HasObjectItem(root, v->string) &&
          add_dup(root, v->string, v) != 0)
        goto oom;
    }
  }
  return root;
oom:
  cJSON_Delete(root);
  return NULL;
}

LLMR_API char *llmr_request_to_json(const llmr_request *req) {
  cJSON *j;
  char *s;
  if (!req)
    return NULL;
  if (!(j = llmr__request_to_openai(req, NULL)))
    return NULL;
  s = llmr__json_print(j);
  cJSON_Delete(j);
  return s;
}
