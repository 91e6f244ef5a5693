/*
 * Anthropic Messages adapter: POST {base}/v1/messages.
 *
 * Wire facts: ../shared/WIRE-NOTES.md, "Anthropic Messages". Field names
 * follow the API reference (https://docs.anthropic.com/en/api/messages) and
 * the official SDK's types (anthropics/anthropic-sdk-typescript
 * src/resources/messages/messages.ts).
 *
 * The canonical request is OpenAI-shaped; the translation decisions are:
 *  - system and developer messages, wherever they sit, become the top-level
 *    `system` (a string for one, text blocks for several); empty ones vanish.
 *  - Turns of one role that follow each other merge into one turn (the API
 *    alternates user and assistant); tool results are user turns, and in a
 *    user turn tool_result blocks go before anything else ("tool_result
 *    blocks must come FIRST in the content array", tool-use/handle-tool-calls).
 *  - Tool-call arguments that are neither empty ({}) nor a JSON object are
 *    LLMR_E_INVAL: `input` must be an object and guessing would change the
 *    call. Audio and non-PDF files are LLMR_E_CAPABILITY (another provider
 *    may take them).
 *  - JSON mode is a forced tool named JSON_TOOL whose input_schema is the
 *    requested schema; parse_response turns its input back into the text.
 *    The name is reserved: a caller tool of that name is LLMR_E_INVAL.
 *  - Thinking: see thinking_budget(). The documented constraints are met by
 *    dropping what conflicts, with a warning: temperature, top_k and a
 *    top_p below 0.95 go; thinking itself goes with forced tool use (JSON
 *    mode included), a prefill, or a tool loop still running (see
 *    thinking_blocked()).
 *  - Streaming (anthropic_stream_event): the same answer as the
 *    non-streamed parse. Tool arguments and the JSON-mode text are
 *    delivered as the model wrote them and re-printed compactly when their
 *    block stops, as the non-streamed parse prints the input object.
 */
#include "../internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define ANTHROPIC_VERSION "2023-06-01"
/* max_tokens is required; this is the answer room when the caller gave none */
#define DEFAULT_MAX_TOKENS 4096
/* "Must be >=1024 and less than max_tokens" (ThinkingConfigEnabled) */
#define MIN_THINKING_BUDGET 1024
#define JSON_TOOL "json_output"
#define JSON_TOOL_DESCRIPTION                                                  \
  "Respond by calling this tool once, with your complete answer as its input."

/* ---- small helpers ------------------------------------------------------ */

static llmr_status failf(llmr_response *resp, llmr_status st, const char *fmt,
                         ...) __attribute__((format(printf, 3, 4)));

/* Record a build error on resp and return its status. */
static llmr_status failf(llmr_response *resp, llmr_status st, const char *fmt,
                         ...) {
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  return llmr_response_set_error(resp, st, NULL, msg, 0, -1) == LLMR_OK
             ? st
             : LLMR_E_NOMEM;
}

/* Note a dropped or changed parameter: "anthropic: <field>". */
static llmr_status warn(llmr_response *resp, const char *field) {
  llmr__buf b = {0};
  llmr_status st = LLMR_E_NOMEM;
  if (llmr__buf_printf(&b, "anthropic: %s", field) == 0)
    st = llmr_response_add_warning(resp, b.data);
  llmr__buf_free(&b);
  return st;
}

/* Add item to obj under key, taking ownership; -1 (item freed) on failure. */
static int put(cJSON *obj, const char *key, cJSON *item) {
  if (!item)
    return -1;
  if (!cJSON_AddItemToObject(obj, key, item)) {
    cJSON_Delete(item);
    return -1;
  }
  return 0;
}

/* Whether a text carries something: the API rejects empty and
 * whitespace-only text blocks. */
static int has_content(const char *s) {
  for (; s && *s; s++)
    if (*s != ' ' && *s != '\t' && *s != '\r' && *s != '\n')
      return 1;
  return 0;
}

static int is_type(const cJSON *block, const char *type) {
  const char *t = llmr__json_str(block, "type");
  return t && strcmp(t, type) == 0;
}

static cJSON *text_block(const char *text) {
  cJSON *b = cJSON_CreateObject();
  if (!b || !cJSON_AddStringToObject(b, "type", "text") ||
      !cJSON_AddStringToObject(b, "text", text)) {
    cJSON_Delete(b);
    return NULL;
  }
  return b;
}

/* ---- messages ----------------------------------------------------------- */

typedef struct build_ctx {
  const llmr_request *req;
  llmr_response *resp;
  cJSON *system;   /* array of text blocks */
  cJSON *messages; /* array of {role, content: [blocks]} */
  int warned_name;
  int warned_detail;
} build_ctx;

/* Append `block` (owned) to the last turn when it has `role`, else to a new
 * turn: this merges consecutive same-role turns. In a user turn a
 * tool_result goes after the tool_results already there and before any
 * other block. */
static llmr_status turn_add(build_ctx *c, const char *role, cJSON *block) {
  cJSON *last = cJSON_GetArrayItem(c->messages,
                                   cJSON_GetArraySize(c->messages) - 1);
  const char *last_role = llmr__json_str(last, "role");
  cJSON *content, *b;
  int at = 0;

  if (!block)
    return LLMR_E_NOMEM;
  if (last_role && strcmp(last_role, role) == 0) {
    content = cJSON_GetObjectItemCaseSensitive(last, "content");
  } else {
    cJSON *turn = cJSON_CreateObject();
    if (!turn || !cJSON_AddStringToObject(turn, "role", role) ||
        !(content = cJSON_AddArrayToObject(turn, "content"))) {
      cJSON_Delete(turn);
      cJSON_Delete(block);
      return LLMR_E_NOMEM;
    }
    cJSON_AddItemToArray(c->messages, turn);
  }
  if (is_type(block, "tool_result")) {
    cJSON_ArrayForEach(b, content) {
      if (!is_type(b, "tool_result"))
        break;
      at++;
    }
    if (b) {
      cJSON_InsertItemInArray(content, at, block);
      return LLMR_OK;
    }
  }
  cJSON_AddItemToArray(content, block);
  return LLMR_OK;
}

static cJSON *source_block(const char *type, const char *source_type,
                           const char *media_type, const char *data_or_url) {
  cJSON *b = cJSON_CreateObject(), *src;
  if (!b || !cJSON_AddStringToObject(b, "type", type) ||
      !(src = cJSON_AddObjectToObject(b, "source")) ||
      !cJSON_AddStringToObject(src, "type", source_type) ||
      (media_type && !cJSON_AddStringToObject(src, "media_type", media_type)) ||
      !cJSON_AddStringToObject(src, media_type ? "data" : "url",
                               data_or_url)) {
    cJSON_Delete(b);
    return NULL;
  }
  return b;
}

/* An OpenAI image_url part: data URLs become base64 sources (the four
 * media types Base64ImageSource allows), other URLs url sources. */
static llmr_status image_block(build_ctx *c, const cJSON *part, size_t i,
                               size_t k, cJSON **out) {
  const cJSON *iu = cJSON_GetObjectItemCaseSensitive(part, "image_url");
  const char *url = cJSON_IsString(iu) ? iu->valuestring
                                       : llmr__json_str(iu, "url");
  const char *data;
  char mt[64];
  llmr_status st;

  if (!url)
    return failf(c->resp, LLMR_E_INVAL,
                 "anthropic: messages[%zu].content[%zu]: image_url has no url",
                 i, k);
  if (llmr__json_str(iu, "detail") && !c->warned_detail) {
    c->warned_detail = 1;
    if ((st = warn(c->resp, "image_url.detail")) != LLMR_OK)
      return st;
  }
  if (strncmp(url, "data:", 5) != 0) {
    *out = source_block("image", "url", NULL, url);
    return *out ? LLMR_OK : LLMR_E_NOMEM;
  }
  if (llmr__parse_data_url(url, mt, sizeof(mt), &data) != 0)
    return failf(c->resp, LLMR_E_INVAL,
                 "anthropic: messages[%zu].content[%zu]: image data URL is "
                 "not data:<type>;base64,<data>",
                 i, k);
  if (strcmp(mt, "image/jpeg") != 0 && strcmp(mt, "image/png") != 0 &&
      strcmp(mt, "image/gif") != 0 && strcmp(mt, "image/webp") != 0)
    return failf(c->resp, LLMR_E_CAPABILITY,
                 "anthropic: messages[%zu].content[%zu]: image type %s is not "
                 "supported (jpeg, png, gif, webp)",
                 i, k, mt);
  *out = source_block("image", "base64", mt, data);
  return *out ? LLMR_OK : LLMR_E_NOMEM;
}

/* One OpenAI content part as a block; *out stays NULL for an empty text.
 * media_ok: whether images and documents may appear (user and tool turns). */
static llmr_status part_block(build_ctx *c, const cJSON *part, size_t i,
                              size_t k, int media_ok, cJSON **out) {
  const char *type = llmr__json_str(part, "type");
  *out = NULL;
  if (type && strcmp(type, "text") == 0) {
    const char *text = llmr__json_str(part, "text");
    if (!has_content(text))
      return LLMR_OK;
    *out = text_block(text);
    return *out ? LLMR_OK : LLMR_E_NOMEM;
  }
  if (!media_ok)
    return failf(c->resp, LLMR_E_CAPABILITY,
                 "anthropic: messages[%zu].content[%zu]: only text is "
                 "supported in this role",
                 i, k);
  if (type && strcmp(type, "image_url") == 0)
    return image_block(c, part, i, k, out);
  if (type && strcmp(type, "file") == 0) {
    /* a PDF as file_data becomes a document block (Base64PDFSource) */
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(part, "file");
    const char *url = llmr__json_str(f, "file_data"), *data;
    char mt[64];
    if (url && llmr__parse_data_url(url, mt, sizeof(mt), &data) == 0 &&
        strcmp(mt, "application/pdf") == 0) {
      *out = source_block("document", "base64", mt, data);
      return *out ? LLMR_OK : LLMR_E_NOMEM;
    }
    return failf(c->resp, LLMR_E_CAPABILITY,
                 "anthropic: messages[%zu].content[%zu]: only PDF files sent "
                 "as file_data data URLs are supported",
                 i, k);
  }
  return failf(c->resp, LLMR_E_CAPABILITY,
               "anthropic: messages[%zu].content[%zu]: content type %s is not "
               "supported",
               i, k, type ? type : "(none)");
}

/* The content of message i (text or parts) as blocks of a `role` turn. */
static llmr_status content_to_turn(build_ctx *c, size_t i, const char *role,
                                   int media_ok) {
  const llmr__message *m = &c->req->messages[i];
  const cJSON *part;
  size_t k = 0;
  llmr_status st;
  if (m->content)
    return has_content(m->content) ? turn_add(c, role, text_block(m->content))
                                   : LLMR_OK;
  cJSON_ArrayForEach(part, m->parts) {
    cJSON *b;
    if ((st = part_block(c, part, i, k++, media_ok, &b)) != LLMR_OK)
      return st;
    if (b && (st = turn_add(c, role, b)) != LLMR_OK)
      return st;
  }
  return LLMR_OK;
}

/* An assistant tool call as a tool_use block; input is the parsed
 * arguments object ("" counts as {}: some clients send it for no
 * arguments). */
static llmr_status tool_use_block(build_ctx *c, const llmr__tool_call *tc,
                                  size_t i, size_t k, cJSON **out) {
  const char *a = tc->arguments ? tc->arguments : "";
  cJSON *input, *b;
  while (*a == ' ' || *a == '\t' || *a == '\r' || *a == '\n')
    a++;
  if (!*a)
    input = cJSON_CreateObject();
  else if (!cJSON_IsObject(input = cJSON_ParseWithOpts(a, NULL, 1))) {
    cJSON_Delete(input);
    return failf(c->resp, LLMR_E_INVAL,
                 "anthropic: messages[%zu].tool_calls[%zu].function.arguments: "
                 "not a JSON object (the API needs the input as an object)",
                 i, k);
  }
  if (!input)
    return LLMR_E_NOMEM;
  if (!(b = cJSON_CreateObject()) ||
      !cJSON_AddStringToObject(b, "type", "tool_use") ||
      !cJSON_AddStringToObject(b, "id", tc->id) ||
      !cJSON_AddStringToObject(b, "name", tc->name)) {
    cJSON_Delete(b);
    cJSON_Delete(input);
    return LLMR_E_NOMEM;
  }
  if (put(b, "input", input) != 0) {
    cJSON_Delete(b);
    return LLMR_E_NOMEM;
  }
  *out = b;
  return LLMR_OK;
}

/* A role-tool message as a tool_result block in a user turn. */
static llmr_status tool_result(build_ctx *c, size_t i) {
  const llmr__message *m = &c->req->messages[i];
  cJSON *b = cJSON_CreateObject(), *arr;
  const cJSON *part;
  size_t k = 0;
  llmr_status st;
  if (!b || !cJSON_AddStringToObject(b, "type", "tool_result") ||
      !cJSON_AddStringToObject(b, "tool_use_id", m->tool_call_id))
    goto oom;
  /* content is optional: an empty result is sent without it */
  if (m->content && *m->content &&
      !cJSON_AddStringToObject(b, "content", m->content))
    goto oom;
  if (m->parts) {
    if (!(arr = cJSON_AddArrayToObject(b, "content")))
      goto oom;
    cJSON_ArrayForEach(part, m->parts) {
      cJSON *pb;
      if ((st = part_block(c, part, i, k++, 1, &pb)) != LLMR_OK) {
        cJSON_Delete(b);
        return st;
      }
      if (pb)
        cJSON_AddItemToArray(arr, pb);
    }
    if (cJSON_GetArraySize(arr) == 0)
      cJSON_DeleteItemFromObjectCaseSensitive(b, "content");
  }
  return turn_add(c, "user", b);
oom:
  cJSON_Delete(b);
  return LLMR_E_NOMEM;
}

static llmr_status add_system(build_ctx *c, size_t i) {
  const llmr__message *m = &c->req->messages[i];
  const cJSON *part;
  size_t k = 0;
  cJSON *b;
  if (m->content) {
    if (!has_content(m->content))
      return LLMR_OK;
    if (!(b = text_block(m->content)))
      return LLMR_E_NOMEM;
    cJSON_AddItemToArray(c->system, b);
    return LLMR_OK;
  }
  cJSON_ArrayForEach(part, m->parts) {
    const char *text = llmr__json_str(part, "text");
    if (!is_type(part, "text") || !text)
      return failf(c->resp, LLMR_E_CAPABILITY,
                   "anthropic: messages[%zu].content[%zu]: system and "
                   "developer messages can only hold text",
                   i, k);
    k++;
    if (!has_content(text))
      continue;
    if (!(b = text_block(text)))
      return LLMR_E_NOMEM;
    cJSON_AddItemToArray(c->system, b);
  }
  return LLMR_OK;
}

static llmr_status add_message(build_ctx *c, size_t i) {
  const llmr__message *m = &c->req->messages[i];
  llmr_status st;
  size_t k;
  if (m->name && !c->warned_name) { /* no participant names in Messages */
    c->warned_name = 1;
    if ((st = warn(c->resp, "name")) != LLMR_OK)
      return st;
  }
  switch (m->role) {
  case LLMR_ROLE_SYSTEM:
  case LLMR_ROLE_DEVELOPER:
    return add_system(c, i);
  case LLMR_ROLE_USER:
    return content_to_turn(c, i, "user", 1);
  case LLMR_ROLE_ASSISTANT:
    if ((st = content_to_turn(c, i, "assistant", 0)) != LLMR_OK)
      return st;
    for (k = 0; k < m->n_tool_calls; k++) {
      cJSON *b = NULL;
      if ((st = tool_use_block(c, &m->tool_calls[k], i, k, &b)) != LLMR_OK ||
          (st = turn_add(c, "assistant", b)) != LLMR_OK)
        return st;
    }
    return LLMR_OK;
  case LLMR_ROLE_TOOL:
    return tool_result(c, i);
  }
  return failf(c->resp, LLMR_E_INVAL, "anthropic: messages[%zu]: bad role",
               i);
}

/* A final assistant turn is a prefill, and "The prefill content cannot end
 * with trailing whitespace" (a 400; docs, prefill-claudes-response): trim
 * its last text. has_content() kept the text non-blank. */
static void trim_prefill(cJSON *messages) {
  cJSON *last = cJSON_GetArrayItem(messages, cJSON_GetArraySize(messages) - 1);
  cJSON *content = cJSON_GetObjectItemCaseSensitive(last, "content");
  cJSON *b = cJSON_GetArrayItem(content, cJSON_GetArraySize(content) - 1);
  cJSON *t = cJSON_GetObjectItemCaseSensitive(b, "text");
  const char *role = llmr__json_str(last, "role");
  size_t n;
  if (!role || strcmp(role, "assistant") != 0 || !is_type(b, "text") ||
      !cJSON_IsString(t))
    return;
  n = strlen(t->valuestring);
  while (n > 0 && strchr(" \t\r\n", t->valuestring[n - 1]))
    n--;
  t->valuestring[n] = '\0'; /* shortening in place is safe */
}

/* ---- tools, tool_choice, JSON mode -------------------------------------- */

typedef enum { TC_UNSET, TC_AUTO, TC_NONE, TC_ANY, TC_TOOL } tc_kind;

/* OpenAI tools -> {name, description, input_schema}; a tool without
 * parameters gets an empty object schema (input_schema.type must be
 * "object"). */
static llmr_status add_tools(build_ctx *c, cJSON *out) {
  const cJSON *t;
  int warned_strict = 0;
  llmr_status st;
  cJSON_ArrayForEach(t, c->req->tools) {
    const cJSON *fn = cJSON_GetObjectItemCaseSensitive(t, "function");
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(fn, "parameters");
    const char *name = llmr__json_str(fn, "name");
    const char *desc = llmr__json_str(fn, "description");
    cJSON *tool, *schema;
    if (!name)
      return failf(c->resp, LLMR_E_INVAL, "anthropic: a tool has no name");
    if (strcmp(name, JSON_TOOL) == 0)
      return failf(c->resp, LLMR_E_INVAL,
                   "anthropic: the tool name \"" JSON_TOOL
                   "\" is reserved for JSON mode");
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(fn, "strict")) &&
        !warned_strict) {
      warned_strict = 1;
      if ((st = warn(c->resp, "function.strict")) != LLMR_OK)
        return st;
    }
    if (!(tool = cJSON_CreateObject()))
      return LLMR_E_NOMEM;
    cJSON_AddItemToArray(out, tool);
    if (cJSON_IsObject(params) && params->child) {
      schema = cJSON_Duplicate(params, 1);
      if (schema && !cJSON_HasObjectItem(schema, "type") &&
          !cJSON_AddStringToObject(schema, "type", "object")) {
        cJSON_Delete(schema);
        schema = NULL;
      }
    } else if ((schema = cJSON_CreateObject()) &&
               (!cJSON_AddStringToObject(schema, "type", "object") ||
                !cJSON_AddObjectToObject(schema, "properties"))) {
      cJSON_Delete(schema);
      schema = NULL;
    }
    if (!cJSON_AddStringToObject(tool, "name", name) ||
        (desc && !cJSON_AddStringToObject(tool, "description", desc)) ||
        put(tool, "input_schema", schema) != 0)
      return LLMR_E_NOMEM;
  }
  return LLMR_OK;
}

/* The JSON-mode tool: input_schema is the requested schema (json_schema)
 * or any object (json_object). The API wants an object at the root, as
 * OpenAI's structured outputs do. */
static llmr_status add_json_tool(build_ctx *c, cJSON *tools) {
  const cJSON *rf = c->req->response_format;
  const cJSON *js = cJSON_GetObjectItemCaseSensitive(rf, "json_schema");
  const cJSON *s = cJSON_GetObjectItemCaseSensitive(js, "schema");
  const char *desc = llmr__json_str(js, "description");
  const char *stype = llmr__json_str(s, "type");
  cJSON *tool, *schema;
  llmr_status st;
  if (s && !cJSON_IsObject(s))
    return failf(c->resp, LLMR_E_INVAL,
                 "anthropic: response_format.json_schema.schema: expected an "
                 "object");
  if (stype && strcmp(stype, "object") != 0)
    return failf(c->resp, LLMR_E_INVAL,
                 "anthropic: JSON mode needs an object at the root "
                 "(response_format.json_schema.schema.type is \"%s\")",
                 stype);
  if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(js, "strict")) &&
      (st = warn(c->resp, "json_schema.strict")) != LLMR_OK)
    return st;
  schema = s ? cJSON_Duplicate(s, 1) : cJSON_CreateObject();
  if (schema && !stype && !cJSON_AddStringToObject(schema, "type", "object")) {
    cJSON_Delete(schema);
    schema = NULL;
  }
  if (!schema || !(tool = cJSON_CreateObject())) {
    cJSON_Delete(schema);
    return LLMR_E_NOMEM;
  }
  cJSON_AddItemToArray(tools, tool);
  if (!cJSON_AddStringToObject(tool, "name", JSON_TOOL) ||
      !cJSON_AddStringToObject(tool, "description",
                               desc ? desc : JSON_TOOL_DESCRIPTION) ||
      put(tool, "input_schema", schema) != 0)
    return LLMR_E_NOMEM;
  return LLMR_OK;
}

/* OpenAI tool_choice: "auto" | "none" | "required" |
 * {"type":"function","function":{"name"}}; anything else is dropped. */
static llmr_status read_tool_choice(build_ctx *c, tc_kind *kind,
                                    const char **name) {
  const cJSON *tc = c->req->tool_choice;
  *kind = TC_UNSET;
  *name = NULL;
  if (!tc)
    return LLMR_OK;
  if (cJSON_IsString(tc)) {
    if (strcmp(tc->valuestring, "auto") == 0)
      *kind = TC_AUTO;
    else if (strcmp(tc->valuestring, "none") == 0)
      *kind = TC_NONE;
    else if (strcmp(tc->valuestring, "required") == 0)
      *kind = TC_ANY;
  } else if (is_type(tc, "function") &&
             (*name = llmr__json_str(
                  cJSON_GetObjectItemCaseSensitive(tc, "function"), "name"))) {
    *kind = TC_TOOL;
  }
  return *kind == TC_UNSET ? warn(c->resp, "tool_choice") : LLMR_OK;
}

/* Anthropic's tool_choice: {"type":"auto"|"none"|"any"|"tool"[,"name"]},
 * with disable_parallel_tool_use for all but none (ToolChoice*). */
static cJSON *tool_choice_json(tc_kind kind, const char *name,
                               int disable_parallel) {
  static const char *const types[] = {"auto", "auto", "none", "any", "tool"};
  cJSON *o = cJSON_CreateObject();
  if (!o || !cJSON_AddStringToObject(o, "type", types[kind]) ||
      (kind == TC_TOOL && !cJSON_AddStringToObject(o, "name", name)) ||
      (disable_parallel && kind != TC_NONE &&
       !cJSON_AddTrueToObject(o, "disable_parallel_tool_use"))) {
    cJSON_Delete(o);
    return NULL;
  }
  return o;
}

/* ---- thinking ----------------------------------------------------------- */

/* Thinking budget from the reasoning knob, 0 when off. An explicit budget
 * is raised to the documented minimum of 1024. Efforts map to budgets that
 * llmr__reasoning_effort() maps back to the same effort: minimal and low
 * get the minimum (the docs suggest starting there), medium 4096, high
 * 16384 (with the default answer room, max_tokens stays below the 21,333
 * above which the docs require streaming). */
static int64_t thinking_budget(const llmr_request *req) {
  const char *e = req->reasoning_effort;
  if (req->reasoning_budget > 0)
    return req->reasoning_budget < MIN_THINKING_BUDGET ? MIN_THINKING_BUDGET
                                                       : req->reasoning_budget;
  if (!e)
    return 0;
  if (strcmp(e, "high") == 0)
    return 16384;
  if (strcmp(e, "medium") == 0)
    return 4096;
  return MIN_THINKING_BUDGET;
}

/* Whether the conversation rules thinking out. "You cannot pre-fill
 * responses when thinking is enabled"; and while a tool loop runs, "a final
 * `assistant` message must start with a thinking block (preceeding the
 * lastmost set of `tool_use` and `tool_result` blocks)", a block with a
 * signature the canonical request cannot carry ("To avoid this
 * requirement, disable `thinking`", the API's 400). So: a final assistant
 * turn, or a last assistant turn that called tools. */
static int thinking_blocked(const cJSON *messages) {
  int i = cJSON_GetArraySize(messages);
  const cJSON *b;
  while (i-- > 0) {
    const cJSON *turn = cJSON_GetArrayItem(messages, i);
    const char *role = llmr__json_str(turn, "role");
    if (!role || strcmp(role, "assistant") != 0)
      continue;
    if (i == cJSON_GetArraySize(messages) - 1)
      return 1;
    cJSON_ArrayForEach(b, cJSON_GetObjectItemCaseSensitive(turn, "content")) {
      if (is_type(b, "tool_use"))
        return 1;
    }
    return 0;
  }
  return 0;
}

/* ---- build_request ------------------------------------------------------ */

/* Sampling and stop sequences; parameters the Messages API lacks (seed,
 * penalties, logprobs...) are dropped with a warning, as are the sampling
 * knobs thinking forbids ("Thinking isn't compatible with
 * temperature or top_k modifications as well as forced tool use. When
 * thinking is enabled, you can set top_p to values between 1 and 0.95.",
 * build-with-claude/extended-thinking). */
static llmr_status add_params(build_ctx *c, cJSON *body, int thinking) {
  const llmr_request *req = c->req;
  const cJSON *v;
  llmr_status st;
  int top_k = 0;
  if (req->has_temperature) {
    if (thinking) {
      if ((st = warn(c->resp, "temperature")) != LLMR_OK)
        return st;
    } else {
      /* the API's range is 0..1; OpenAI's is 0..2 */
      double t = req->temperature > 1.0 ? 1.0 : req->temperature;
      if (t != req->temperature &&
          (st = warn(c->resp, "temperature")) != LLMR_OK)
        return st;
      if (!cJSON_AddNumberToObject(body, "temperature", t))
        return LLMR_E_NOMEM;
    }
  }
  if (req->has_top_p) {
    if (thinking && req->top_p < 0.95) {
      if ((st = warn(c->resp, "top_p")) != LLMR_OK)
        return st;
    } else if (!cJSON_AddNumberToObject(body, "top_p", req->top_p)) {
      return LLMR_E_NOMEM;
    }
  }
  /* top_k is no OpenAI field, but hosts like OpenRouter accept it */
  v = cJSON_GetObjectItemCaseSensitive(req->extra, "top_k");
  if (cJSON_IsNumber(v) && !thinking) {
    if (!cJSON_AddNumberToObject(body, "top_k", v->valuedouble))
      return LLMR_E_NOMEM;
    top_k = 1;
  }
  if (req->n_stop) {
    cJSON *arr = cJSON_AddArrayToObject(body, "stop_sequences");
    size_t i;
    if (!arr)
      return LLMR_E_NOMEM;
    for (i = 0; i < req->n_stop; i++) {
      cJSON *s = cJSON_CreateString(req->stop[i]);
      if (!s)
        return LLMR_E_NOMEM;
      cJSON_AddItemToArray(arr, s);
    }
  }
  if (req->has_seed && (st = warn(c->resp, "seed")) != LLMR_OK)
    return st;
  /* every other unknown field: dropped and reported, in request order */
  cJSON_ArrayForEach(v, req->extra) {
    if (strcmp(v->string, "parallel_tool_calls") == 0 ||
        (strcmp(v->string, "top_k") == 0 && top_k))
      continue;
    if ((st = warn(c->resp, v->string)) != LLMR_OK)
      return st;
  }
  return LLMR_OK;
}

/* The documented headers (x-api-key, anthropic-version 2023-06-01,
 * content-type). The provider option "anthropic_version" overrides the
 * version. */
static llmr_status add_headers(const llmr_provider *p, int stream,
                               llmr_http_request *http) {
  const char *version = llmr_provider_option(p, "anthropic_version");
  const char *accept = stream ? "text/event-stream" : "application/json";
  const char *key = llmr_provider_api_key(p);
  llmr_status st;
  if ((st = llmr_http_request_add_header(http, "content-type",
                                         "application/json")) != LLMR_OK ||
      (st = llmr_http_request_add_header(http, "accept", accept)) != LLMR_OK ||
      (st = llmr_http_request_add_header(
           http, "anthropic-version", version ? version : ANTHROPIC_VERSION)) !=
          LLMR_OK)
    return st;
  return key ? llmr_http_request_add_header(http, "x-api-key", key) : LLMR_OK;
}

static llmr_status anthropic_build(const llmr_provider *p,
                                   const llmr_request *req,
                                   const char *native_model, int stream,
                                   llmr_http_request *http,
                                   llmr_response *resp) {
  build_ctx c;
  cJSON *body = NULL, *tools = NULL, *v;
  const cJSON *ptc;
  llmr__buf url = {0};
  char *text = NULL;
  const char *forced = NULL;
  tc_kind kind = TC_UNSET;
  int64_t budget = thinking_budget(req), max_tokens;
  int disable_parallel, n_tools;
  size_t i;
  llmr_status st = LLMR_E_NOMEM;

  memset(&c, 0, sizeof(c));
  c.req = req;
  c.resp = resp;
  if (!(body = cJSON_CreateObject()) || !(c.system = cJSON_CreateArray()) ||
      !(c.messages = cJSON_CreateArray()) || !(tools = cJSON_CreateArray()))
    goto out;
  for (i = 0; i < req->n_messages; i++)
    if ((st = add_message(&c, i)) != LLMR_OK)
      goto out;
  trim_prefill(c.messages);
  if (cJSON_GetArraySize(c.messages) == 0) {
    st = failf(resp, LLMR_E_INVAL,
               "anthropic: the request has no user or assistant content");
    goto out;
  }
  if ((st = add_tools(&c, tools)) != LLMR_OK ||
      (st = read_tool_choice(&c, &kind, &forced)) != LLMR_OK)
    goto out;
  n_tools = cJSON_GetArraySize(tools);
  /* JSON mode, unless the caller already forces a tool call: force the
   * JSON tool, or with tools of the caller's own in play require some tool
   * (theirs or the JSON one), which is OpenAI's "call tools or answer in
   * JSON". With tool_choice none the caller's tools stay declared (history
   * may use them) but only the JSON tool may be called. */
  if (llmr__request_wants_json(req) && kind != TC_ANY && kind != TC_TOOL) {
    if ((st = add_json_tool(&c, tools)) != LLMR_OK)
      goto out;
    if (kind == TC_NONE || n_tools == 0) {
      kind = TC_TOOL;
      forced = JSON_TOOL;
    } else {
      kind = TC_ANY;
    }
  }
  /* forced tool use and thinking exclude each other: the tool call is the
   * contract the caller relies on, so thinking goes; so it does when the
   * conversation rules it out */
  if (budget > 0 &&
      (kind == TC_ANY || kind == TC_TOOL || thinking_blocked(c.messages))) {
    if ((st = warn(resp, "reasoning")) != LLMR_OK)
      goto out;
    budget = 0;
  }
  ptc = cJSON_GetObjectItemCaseSensitive(req->extra, "parallel_tool_calls");
  disable_parallel = cJSON_IsFalse(ptc);

  /* max_tokens covers thinking and answer and must exceed the budget: with
   * no max_tokens the answer gets the default room on top of the budget;
   * a max_tokens at or below the budget is taken as the answer's room. */
  max_tokens = req->max_tokens > 0 ? req->max_tokens : DEFAULT_MAX_TOKENS;
  if (budget > 0 && (req->max_tokens <= 0 || max_tokens <= budget))
    max_tokens += budget;

  st = LLMR_E_NOMEM;
  if (!cJSON_AddStringToObject(body, "model", native_model) ||
      !cJSON_AddNumberToObject(body, "max_tokens", (double)max_tokens))
    goto out;
  if (cJSON_GetArraySize(c.system) == 1) {
    if (!cJSON_AddStringToObject(
            body, "system",
            llmr__json_str(cJSON_GetArrayItem(c.system, 0), "text")))
      goto out;
  } else if (cJSON_GetArraySize(c.system) > 1) {
    if (put(body, "system", c.system) != 0) {
      c.system = NULL;
      goto out;
    }
    c.system = NULL;
  }
  if (put(body, "messages", c.messages) != 0) {
    c.messages = NULL;
    goto out;
  }
  c.messages = NULL;
  if (cJSON_GetArraySize(tools) > 0) {
    if (put(body, "tools", tools) != 0) {
      tools = NULL;
      goto out;
    }
    tools = NULL;
  }
  /* auto and none mean nothing without tools; any and tool go out so that
   * the API reports the mistake */
  if ((kind != TC_UNSET || disable_parallel) &&
      (cJSON_HasObjectItem(body, "tools") || kind == TC_ANY ||
       kind == TC_TOOL) &&
      put(body, "tool_choice",
          tool_choice_json(kind, forced, disable_parallel)) != 0)
    goto out;
  if ((st = add_params(&c, body, budget > 0)) != LLMR_OK)
    goto out;
  st = LLMR_E_NOMEM;
  if (budget > 0) {
    cJSON *t = cJSON_AddObjectToObject(body, "thinking");
    if (!t || !cJSON_AddStringToObject(t, "type", "enabled") ||
        !cJSON_AddNumberToObject(t, "budget_tokens", (double)budget))
      goto out;
  }
  /* OpenAI's user tag is Anthropic's metadata.user_id (Metadata) */
  if (req->user && (!(v = cJSON_AddObjectToObject(body, "metadata")) ||
                    !cJSON_AddStringToObject(v, "user_id", req->user)))
    goto out;
  if (stream && !cJSON_AddTrueToObject(body, "stream"))
    goto out;

  if (!(text = cJSON_PrintUnformatted(body)) ||
      llmr__buf_printf(&url, "%s/v1/messages", llmr_provider_base_url(p)))
    goto out;
  if ((st = llmr_http_request_set_url(http, url.data)) != LLMR_OK ||
      (st = llmr_http_request_set_body(http, text, strlen(text))) != LLMR_OK ||
      (st = add_headers(p, stream, http)) != LLMR_OK)
    goto out;
  st = LLMR_OK;
out:
  llmr__buf_free(&url);
  cJSON_free(text);
  cJSON_Delete(c.system);
  cJSON_Delete(c.messages);
  cJSON_Delete(tools);
  cJSON_Delete(body);
  return st;
}

/* ---- parse_response ----------------------------------------------------- */

static llmr_status protocol_error(llmr_response *resp, const char *msg) {
  return llmr_response_set_error(resp, LLMR_E_PROTOCOL, NULL, msg, 0, -1) ==
                 LLMR_OK
             ? LLMR_E_PROTOCOL
             : LLMR_E_NOMEM;
}

/* Normalised finish reason (WIRE-NOTES "finish_reason"). The API may add
 * stop reasons; an unknown one ended the turn, so it is "stop". */
static const char *finish_reason(const char *native) {
  if (strcmp(native, "max_tokens") == 0 ||
      strcmp(native, "model_context_window_exceeded") == 0)
    return "length";
  if (strcmp(native, "tool_use") == 0)
    return "tool_calls";
  if (strcmp(native, "refusal") == 0)
    return "content_filter";
  return "stop"; /* end_turn, stop_sequence, pause_turn */
}

/* obj[key] as a token count: 1 when set, 0 when absent or null (*out = 0),
 * -1 when it is not a non-negative number. */
static int count(const cJSON *obj, const char *key, int64_t *out) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  *out = 0;
  if (!v || cJSON_IsNull(v))
    return 0;
  if (llmr__json_i64(obj, key, out) != 0 || *out < 0)
    return -1;
  return 1;
}

/* Token counts read from usage objects. The stream reports them in two
 * installments (message_start, then message_delta), so reading merges: a
 * count present overwrites, an absent one keeps what an earlier object
 * said. */
typedef struct an_usage {
  int64_t in, out, cread, cwrite, think;
  unsigned seen : 1;    /* a usage object was read */
  unsigned has_in : 1;  /* input_tokens was given */
  unsigned has_out : 1; /* output_tokens was given */
} an_usage;

/* Merge usage object u (absent or null: nothing) into acc. */
static llmr_status usage_merge(const cJSON *u, an_usage *acc,
                               llmr_response *resp) {
  const cJSON *d = cJSON_GetObjectItemCaseSensitive(u, "output_tokens_details");
  int64_t in, out, cread, cwrite, think;
  int has_in, has_out, has_cread, has_cwrite, has_think;
  if (!u || cJSON_IsNull(u))
    return LLMR_OK;
  if (!cJSON_IsObject(u))
    return protocol_error(resp, "usage is not an object");
  if (d && !cJSON_IsObject(d) && !cJSON_IsNull(d))
    return protocol_error(resp, "usage.output_tokens_details is not an object");
  if ((has_in = count(u, "input_tokens", &in)) < 0 ||
      (has_out = count(u, "output_tokens", &out)) < 0 ||
      (has_cread = count(u, "cache_read_input_tokens", &cread)) < 0 ||
      (has_cwrite = count(u, "cache_creation_input_tokens", &cwrite)) < 0 ||
      (has_think = count(d, "thinking_tokens", &think)) < 0)
    return protocol_error(resp, "usage holds a token count that is not a "
                                "non-negative number");
  acc->seen = 1;
  if (has_in) {
    acc->in = in;
    acc->has_in = 1;
  }
  if (has_out) {
    acc->out = out;
    acc->has_out = 1;
  }
  if (has_cread)
    acc->cread = cread;
  if (has_cwrite)
    acc->cwrite = cwrite;
  if (has_think)
    acc->think = think;
  return LLMR_OK;
}

/* Usage by WIRE-NOTES: input_tokens excludes cache reads and writes, so the
 * prompt is their sum; output_tokens includes thinking. with_output: also
 * the output side (completion, total, reasoning). */
static void usage_apply(const an_usage *acc, int with_output,
                        llmr_response *resp) {
  int64_t prompt = acc->in + acc->cread + acc->cwrite;
  if (!acc->seen)
    return;
  if (acc->has_in)
    llmr_response_set_tokens(resp, LLMR_TOKENS_PROMPT, prompt);
  llmr_response_set_tokens(resp, LLMR_TOKENS_CACHED, acc->cread);
  llmr_response_set_tokens(resp, LLMR_TOKENS_CACHE_WRITE, acc->cwrite);
  if (!with_output)
    return;
  if (acc->has_out)
    llmr_response_set_tokens(resp, LLMR_TOKENS_COMPLETION, acc->out);
  if (acc->has_in && acc->has_out)
    llmr_response_set_tokens(resp, LLMR_TOKENS_TOTAL, prompt + acc->out);
  llmr_response_set_tokens(resp, LLMR_TOKENS_REASONING, acc->think);
}

static llmr_status parse_usage(const cJSON *u, llmr_response *resp) {
  an_usage acc;
  llmr_status st;
  memset(&acc, 0, sizeof(acc));
  if ((st = usage_merge(u, &acc, resp)) != LLMR_OK)
    return st;
  usage_apply(&acc, 1, resp);
  return LLMR_OK;
}

static llmr_status anthropic_classify(const llmr_provider *p,
                                      const llmr_http_response *http,
                                      llmr_response *resp);

/* One content block. json_tool: the JSON-mode tool_use found beforehand
 * (its input is the text, and other text blocks are dropped so that the
 * text stays valid JSON). */
static llmr_status parse_block(const cJSON *b, const cJSON *json_tool,
                               llmr_response *resp) {
  const char *type = llmr__json_str(b, "type");
  const cJSON *v;
  if (!cJSON_IsObject(b) || !type)
    return protocol_error(resp, "a content block has no type");
  if (strcmp(type, "text") == 0) {
    v = cJSON_GetObjectItemCaseSensitive(b, "text");
    if (!cJSON_IsString(v))
      return protocol_error(resp, "a text block has no text string");
    return json_tool ? LLMR_OK
                     : llmr_response_append_text(resp, v->valuestring,
                                                 strlen(v->valuestring));
  }
  if (strcmp(type, "thinking") == 0) {
    v = cJSON_GetObjectItemCaseSensitive(b, "thinking");
    if (!cJSON_IsString(v))
      return protocol_error(resp, "a thinking block has no thinking string");
    return llmr_response_append_reasoning(resp, v->valuestring,
                                          strlen(v->valuestring));
  }
  if (strcmp(type, "tool_use") == 0) {
    const char *id = llmr__json_str(b, "id"), *name = llmr__json_str(b, "name");
    char idbuf[64], *args = NULL;
    llmr_status st;
    if (!name)
      return protocol_error(resp, "a tool_use block has no name");
    v = cJSON_GetObjectItemCaseSensitive(b, "input");
    if (v && !(args = llmr__json_print(v)))
      return LLMR_E_NOMEM;
    if (b == json_tool) {
      st = llmr_response_append_text(resp, args ? args : "{}",
                                     strlen(args ? args : "{}"));
    } else if (strcmp(name, JSON_TOOL) == 0) {
      st = LLMR_OK; /* a second JSON answer: the first one stands */
    } else {
      if (!id || !*id) {
        llmr__synth_call_id(idbuf, sizeof(idbuf));
        id = idbuf;
      }
      st = llmr_response_add_tool_call(resp, id, name, args);
    }
    llmr__free(args);
    return st;
  }
  /* redacted_thinking (opaque), server tool blocks and block types added
   * later carry nothing the normalised response holds */
  return LLMR_OK;
}

static llmr_status anthropic_parse(const llmr_provider *p,
                                   const llmr_http_response *http,
                                   llmr_response *resp) {
  size_t len;
  const char *body = llmr_http_response_body(http, &len);
  cJSON *root = cJSON_ParseWithLength(body, len);
  const cJSON *content, *b, *json_tool = NULL, *v;
  const char *type;
  llmr_status st = LLMR_OK;

  if (!cJSON_IsObject(root)) {
    cJSON_Delete(root);
    return protocol_error(resp, "response body is not a JSON object");
  }
  type = llmr__json_str(root, "type");
  if (type && strcmp(type, "error") == 0) { /* an error with a 2xx */
    cJSON_Delete(root);
    return anthropic_classify(p, http, resp);
  }
  content = cJSON_GetObjectItemCaseSensitive(root, "content");
  if (!cJSON_IsArray(content)) {
    st = protocol_error(resp, "response has no content array");
    goto out;
  }
  cJSON_ArrayForEach(b, content) {
    if (is_type(b, "tool_use") &&
        strcmp(llmr__json_str(b, "name") ? llmr__json_str(b, "name") : "",
               JSON_TOOL) == 0) {
      json_tool = b;
      break;
    }
  }
  cJSON_ArrayForEach(b, content) {
    if ((st = parse_block(b, json_tool, resp)) != LLMR_OK)
      goto out;
  }
  v = cJSON_GetObjectItemCaseSensitive(root, "id");
  if (v && !cJSON_IsString(v)) {
    st = protocol_error(resp, "response id is not a string");
    goto out;
  }
  if (v && (st = llmr_response_set_id(resp, v->valuestring)) != LLMR_OK)
    goto out;
  v = cJSON_GetObjectItemCaseSensitive(root, "stop_reason");
  if (cJSON_IsString(v)) {
    const char *fr = finish_reason(v->valuestring);
    /* the JSON tool answered: a plain stop unless real tools were called */
    if (json_tool && strcmp(fr, "tool_calls") == 0 &&
        llmr_response_tool_call_count(resp) == 0)
      fr = "stop";
    if ((st = llmr_response_set_finish_reason(resp, fr)) != LLMR_OK)
      goto out;
  } else if (v && !cJSON_IsNull(v)) {
    st = protocol_error(resp, "stop_reason is not a string");
    goto out;
  }
  st = parse_usage(cJSON_GetObjectItemCaseSensitive(root, "usage"), resp);
out:
  cJSON_Delete(root);
  return st;
}

/* ---- classify_error ----------------------------------------------------- */

static int has_text(const char *s, const char *w) {
  size_t n = strlen(w);
  for (; s && *s; s++)
    if (llmr__strncaseeq(s, w, n))
      return 1;
  return 0;
}

/* Error body {"type":"error","error":{"type","message"},"request_id"}; the
 * types are those of https://docs.claude.com/en/api/errors. */
static llmr_status anthropic_classify(const llmr_provider *p,
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
  if (!type) {
    /* the status class stands */
  } else if (strcmp(type, "overloaded_error") == 0) {
    st = LLMR_E_OVERLOADED;
    retryable = 1;
  } else if (strcmp(type, "rate_limit_error") == 0) {
    st = LLMR_E_RATE_LIMITED;
    retryable = 1;
  } else if (strcmp(type, "api_error") == 0) {
    st = LLMR_E_SERVER;
    retryable = 1;
  } else if (strcmp(type, "timeout_error") == 0) { /* 504 */
    st = LLMR_E_TIMEOUT;
    retryable = 1;
  } else if (strcmp(type, "authentication_error") == 0 ||
             strcmp(type, "permission_error") == 0) {
    st = LLMR_E_AUTH;
  } else if (strcmp(type, "billing_error") == 0) { /* 402 */
    st = LLMR_E_PAYMENT;
    retryable = 0;
  } else if (strcmp(type, "not_found_error") == 0) {
    st = LLMR_E_NOT_FOUND;
  } else if (strcmp(type, "request_too_large") == 0) { /* 413, bytes */
    st = LLMR_E_CONTEXT_LENGTH;
  } else if (strcmp(type, "invalid_request_error") == 0 &&
             (has_text(message, "prompt is too long") ||
              has_text(message, "exceed context limit"))) {
    /* "prompt is too long: 208656 tokens > 200000 maximum", "input length
     * and `max_tokens` exceed context limit: ..." */
    st = LLMR_E_CONTEXT_LENGTH;
  }
  /* x-should-retry (client.ts shouldRetry) and the body excerpt: shared */
  st = llmr__error_finish(http, resp, st, type, message, retryable,
                          llmr__retry_after_from_headers(http));
  cJSON_Delete(root);
  return st;
}

/* ---- streaming ---------------------------------------------------------- */

/*
 * The event stream (https://docs.anthropic.com/en/api/messages-streaming;
 * SDK src/core/streaming.ts and src/lib/MessageStream.ts): message_start
 * (the message with empty content, input and cache counts), per content
 * block content_block_start / content_block_delta... / content_block_stop
 * with its `index`, message_delta (stop_reason, cumulative output_tokens),
 * message_stop; `ping` and `error` anywhere. The answer it gives equals
 * what anthropic_parse() gives for the same message, with one exception:
 * text blocks that come before the JSON-mode tool are delivered (they
 * cannot be taken back), where the non-streamed parse drops them. JSON
 * mode forces tool use (tool_choice tool, or any beside the caller's
 * tools), and then the API has the model answer with tool_use blocks
 * alone, no text first, so that does not happen in practice.
 */

/* What a content block is, by its index (content_block_start says). */
enum {
  BK_NONE = 0, /* not started */
  BK_TEXT,     /* text: text_delta -> text */
  BK_THINKING, /* thinking: thinking_delta -> reasoning */
  BK_TOOL,     /* tool_use: input_json_delta -> tool-call fragments */
  BK_JSON,     /* the JSON-mode tool: input_json_delta -> text */
  BK_SKIP      /* any other block, or one dropped or stopped */
};

/* Blocks with an index below this are remembered in a table; a block at
 * or above it only while it is the latest one (blocks come one after
 * another: start, deltas, stop). */
#define AN_BLOCKS 256

/* Per-stream state; owns no memory. */
typedef struct anthropic_stream {
  an_usage usage;    /* merged from message_start and message_delta */
  int64_t start_out; /* message_start's output_tokens (a placeholder) */
  size_t json_at;    /* where the JSON tool's text starts in resp->text */
  size_t far_index;  /* the latest block at AN_BLOCKS or above */
  unsigned char far_kind;
  unsigned char kind[AN_BLOCKS];
  unsigned done : 1;          /* message_stop seen: nothing after it is read */
  unsigned has_start_out : 1; /* start_out was given */
  unsigned json_seen : 1;     /* the JSON tool's block has started */
} anthropic_stream;

static unsigned char *block_kind(anthropic_stream *s, size_t index) {
  if (index < AN_BLOCKS)
    return &s->kind[index];
  if (s->far_index != index) {
    s->far_index = index;
    s->far_kind = BK_NONE;
  }
  return &s->far_kind;
}

/* root.index as a block index; -1 when missing or not one. */
static int block_index(const cJSON *root, size_t *out) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "index");
  if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 1e6)
    return -1;
  *out = (size_t)v->valuedouble;
  return 0;
}

/* "<prefix><the first 40 bytes of data, printable ASCII>" */
static llmr_status data_error(llmr_response *resp, llmr_status st,
                              const char *prefix, const char *data,
                              size_t len) {
  char msg[160];
  size_t i, n = (size_t)snprintf(msg, sizeof(msg), "%s", prefix);
  for (i = 0; i < len && i < 40 && n + 1 < sizeof(msg); i++) {
    unsigned char c = (unsigned char)data[i];
    msg[n++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
  }
  msg[n] = '\0';
  return llmr_response_set_error(resp, st, NULL, msg, 0, -1) == LLMR_OK
             ? st
             : LLMR_E_NOMEM;
}

/* Re-print the JSON text b[at..] compactly, as anthropic_parse() prints a
 * tool input: the API's fragments have spaces after colons, the
 * non-streamed input is an object. Text that is not one whole JSON value
 * (a stream cut by max_tokens) stays as it came. The fragments already
 * delivered as events are the text as sent. */
static llmr_status compact_json(llmr__buf *b, size_t at) {
  const char *end = NULL;
  char *printed;
  cJSON *j;
  if (b->len <= at)
    return LLMR_OK;
  j = cJSON_ParseWithLengthOpts(b->data + at, b->len - at, &end, 0);
  if (!j)
    return LLMR_OK;
  while (end && end < b->data + b->len &&
         (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
    end++;
  if (end != b->data + b->len) {
    cJSON_Delete(j);
    return LLMR_OK;
  }
  printed = llmr__json_print(j);
  cJSON_Delete(j);
  if (!printed)
    return LLMR_E_NOMEM;
  b->len = at;
  b->data[at] = '\0';
  if (llmr__buf_puts(b, printed) != 0) {
    llmr__free(printed);
    return LLMR_E_NOMEM;
  }
  llmr__free(printed);
  return LLMR_OK;
}

static llmr_status stream_message_start(anthropic_stream *s, const cJSON *root,
                                        llmr_response *resp) {
  const cJSON *msg = cJSON_GetObjectItemCaseSensitive(root, "message");
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(msg, "id");
  llmr_status st;
  if (!cJSON_IsObject(msg))
    return protocol_error(resp, "message_start has no message object");
  if (v && !cJSON_IsString(v))
    return protocol_error(resp, "response id is not a string");
  if (v && !llmr_response_id(resp) &&
      (st = llmr_response_set_id(resp, v->valuestring)) != LLMR_OK)
    return st;
  if ((st = usage_merge(cJSON_GetObjectItemCaseSensitive(msg, "usage"),
                        &s->usage, resp)) != LLMR_OK)
    return st;
  /* output_tokens is a placeholder here (1): message_delta gives the real
   * count. Kept aside, so that a stream cut before then gets an estimate
   * of what it delivered rather than 1. */
  if (s->usage.has_out) {
    s->start_out = s->usage.out;
    s->has_start_out = 1;
    s->usage.out = 0;
    s->usage.has_out = 0;
  }
  usage_apply(&s->usage, 0, resp);
  return LLMR_OK;
}

static llmr_status stream_block_start(anthropic_stream *s, const cJSON *root,
                                      llmr_response *resp) {
  const cJSON *cb = cJSON_GetObjectItemCaseSensitive(root, "content_block");
  const char *type = llmr__json_str(cb, "type"), *name;
  const cJSON *v;
  unsigned char *kind;
  size_t index;
  if (block_index(root, &index) != 0)
    return protocol_error(resp, "content_block_start has no valid index");
  if (!cJSON_IsObject(cb) || !type)
    return protocol_error(resp, "a content block has no type");
  kind = block_kind(s, index);
  if (strcmp(type, "text") == 0) {
    /* with the JSON tool's answer, text would make the text invalid JSON:
     * dropped, as anthropic_parse() drops it */
    *kind = s->json_seen ? BK_SKIP : BK_TEXT;
    v = cJSON_GetObjectItemCaseSensitive(cb, "text");
    if (*kind == BK_TEXT && cJSON_IsString(v) && *v->valuestring)
      return llmr_response_append_text(resp, v->valuestring,
                                       strlen(v->valuestring));
    return LLMR_OK;
  }
  if (strcmp(type, "thinking") == 0) {
    *kind = BK_THINKING;
    v = cJSON_GetObjectItemCaseSensitive(cb, "thinking");
    if (cJSON_IsString(v) && *v->valuestring)
      return llmr_response_append_reasoning(resp, v->valuestring,
                                            strlen(v->valuestring));
    return LLMR_OK;
  }
  if (strcmp(type, "tool_use") == 0) {
    /* input is {} here; the real one comes as input_json_delta text */
    if (!(name = llmr__json_str(cb, "name")))
      return protocol_error(resp, "a tool_use block has no name");
    if (strcmp(name, JSON_TOOL) == 0) {
      /* a second JSON answer: the first one stands */
      *kind = s->json_seen ? BK_SKIP : BK_JSON;
      if (!s->json_seen) {
        s->json_seen = 1;
        s->json_at = resp->text.len;
      }
      return LLMR_OK;
    }
    *kind = BK_TOOL;
    /* announces the call: the block index is the call's index */
    return llmr_response_tool_call_delta(resp, index, llmr__json_str(cb, "id"),
                                         name, NULL, 0);
  }
  /* redacted_thinking, server tool blocks (their input_json_delta
   * included) and block types added later: nothing the normalised
   * response holds */
  *kind = BK_SKIP;
  return LLMR_OK;
}

/* delta[key] as a string, or a protocol error. */
static llmr_status delta_str(const cJSON *delta, const char *key,
                             const char **out, llmr_response *resp) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(delta, key);
  char msg[96];
  if (cJSON_IsString(v)) {
    *out = v->valuestring;
    return LLMR_OK;
  }
  snprintf(msg, sizeof(msg), "a %s has no %s string",
           llmr__json_str(delta, "type"), key);
  return protocol_error(resp, msg);
}

static llmr_status stream_block_delta(anthropic_stream *s, const cJSON *root,
                                      llmr_response *resp) {
  const cJSON *delta = cJSON_GetObjectItemCaseSensitive(root, "delta");
  const char *type = llmr__json_str(delta, "type"), *t = NULL;
  unsigned char kind;
  size_t index;
  llmr_status st;
  if (block_index(root, &index) != 0)
    return protocol_error(resp, "content_block_delta has no valid index");
  if (!cJSON_IsObject(delta) || !type)
    return protocol_error(resp, "content_block_delta has no delta type");
  kind = *block_kind(s, index);
  if (kind == BK_NONE)
    return protocol_error(resp, "content_block_delta for a block that did "
                                "not start");
  /* a delta that does not fit its block is ignored, as the SDK does;
   * signature_delta (the thinking block's signature), citations_delta and
   * delta types added later carry nothing the response holds */
  if (strcmp(type, "text_delta") == 0 && kind == BK_TEXT) {
    if ((st = delta_str(delta, "text", &t, resp)) != LLMR_OK)
      return st;
    return *t ? llmr_response_append_text(resp, t, strlen(t)) : LLMR_OK;
  }
  if (strcmp(type, "thinking_delta") == 0 && kind == BK_THINKING) {
    if ((st = delta_str(delta, "thinking", &t, resp)) != LLMR_OK)
      return st;
    return *t ? llmr_response_append_reasoning(resp, t, strlen(t)) : LLMR_OK;
  }
  if (strcmp(type, "input_json_delta") == 0 &&
      (kind == BK_TOOL || kind == BK_JSON)) {
    if ((st = delta_str(delta, "partial_json", &t, resp)) != LLMR_OK)
      return st;
    if (!*t) /* the first fragment is often empty */
      return LLMR_OK;
    return kind == BK_JSON
               ? llmr_response_append_text(resp, t, strlen(t))
               : llmr_response_tool_call_delta(resp, index, NULL, NULL, t,
                                               strlen(t));
  }
  return LLMR_OK;
}

static llmr_status stream_block_stop(anthropic_stream *s, const cJSON *root,
                                     llmr_response *resp) {
  unsigned char *kind;
  size_t index, i;
  llmr_status st = LLMR_OK;
  if (block_index(root, &index) != 0)
    return protocol_error(resp, "content_block_stop has no valid index");
  kind = block_kind(s, index);
  if (*kind == BK_TOOL) {
    /* the latest call under this index (tool_call_delta's rule) */
    for (i = resp->n_tool_calls; i-- > 0;)
      if (resp->tool_calls[i].index == index) {
        st = compact_json(&resp->tool_calls[i].args, 0);
        break;
      }
  } else if (*kind == BK_JSON) {
    /* a JSON answer with no input text is {} (what its start said) */
    st = resp->text.len == s->json_at
             ? llmr_response_append_text(resp, "{}", 2)
             : compact_json(&resp->text, s->json_at);
  }
  if (*kind != BK_NONE)
    *kind = BK_SKIP;
  return st;
}

static llmr_status stream_message_delta(anthropic_stream *s,
                                        const cJSON *root,
                                        llmr_response *resp) {
  const cJSON *delta = cJSON_GetObjectItemCaseSensitive(root, "delta");
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(delta, "stop_reason");
  llmr_status st;
  if (cJSON_IsString(v)) {
    const char *fr = finish_reason(v->valuestring);
    /* the JSON tool answered: a plain stop unless real tools were called */
    if (s->json_seen && strcmp(fr, "tool_calls") == 0 &&
        llmr_response_tool_call_count(resp) == 0)
      fr = "stop";
    if ((st = llmr_response_set_finish_reason(resp, fr)) != LLMR_OK)
      return st;
  } else if (v && !cJSON_IsNull(v)) {
    return protocol_error(resp, "stop_reason is not a string");
  }
  /* cumulative output_tokens: it replaces; input and cache counts that
   * newer servers repeat here overwrite */
  if ((st = usage_merge(cJSON_GetObjectItemCaseSensitive(root, "usage"),
                        &s->usage, resp)) != LLMR_OK)
    return st;
  usage_apply(&s->usage, 1, resp);
  return LLMR_OK;
}

static llmr_status anthropic_stream_event(const llmr_provider *p, void *state,
                                          const char *event, const char *data,
                                          size_t len, llmr_response *resp) {
  static const char *const known[] = {
      "message_start", "content_block_start", "content_block_delta",
      "content_block_stop", "message_delta", "message_stop", "error", NULL};
  anthropic_stream *s = state;
  const char *type = event;
  cJSON *root;
  llmr_status st = LLMR_OK;
  size_t i;
  int unnamed = strcmp(event, "message") == 0;
  (void)p;

  if (s->done)
    return LLMR_OK;
  /* The event name says what it is (the SDK dispatches on it). ping, and
   * event types added later, are skipped unread: "new event types may be
   * added" (versioning policy). An event without a name goes by its JSON
   * type. */
  for (i = 0; !unnamed && known[i] && strcmp(event, known[i]) != 0; i++)
    ;
  if (!unnamed && !known[i])
    return LLMR_OK;
  root = cJSON_ParseWithLength(data, len);
  if (!cJSON_IsObject(root)) {
    cJSON_Delete(root);
    if (strcmp(event, "error") == 0) /* the SDK throws it as an APIError */
      return data_error(resp, LLMR_E_PROVIDER, "error event: ", data, len);
    return data_error(resp, LLMR_E_PROTOCOL,
                      "stream event is not a JSON object: ", data, len);
  }
  if (unnamed && !(type = llmr__json_str(root, "type")))
    type = "";
  if (strcmp(type, "message_start") == 0) {
    st = stream_message_start(s, root, resp);
  } else if (strcmp(type, "content_block_start") == 0) {
    st = stream_block_start(s, root, resp);
  } else if (strcmp(type, "content_block_delta") == 0) {
    st = stream_block_delta(s, root, resp);
  } else if (strcmp(type, "content_block_stop") == 0) {
    st = stream_block_stop(s, root, resp);
  } else if (strcmp(type, "message_delta") == 0) {
    st = stream_message_delta(s, root, resp);
  } else if (strcmp(type, "message_stop") == 0) {
    /* a message_delta without output_tokens leaves message_start's */
    if (!s->usage.has_out && s->has_start_out) {
      s->usage.out = s->start_out;
      s->usage.has_out = 1;
    }
    usage_apply(&s->usage, 1, resp);
    s->done = 1;
    st = llmr_response_stream_done(resp);
  } else if (strcmp(type, "error") == 0) {
    /* {"type":"error","error":{"type":"overloaded_error","message":...}} */
    st = llmr__stream_error(resp, root);
  }
  cJSON_Delete(root);
  return st;
}

const llmr_provider_vt llmr__anthropic_vt = {
    "anthropic",              /* name */
    LLMR_PROVIDER_ABI_VERSION,
    sizeof(anthropic_stream), /* state_size */
    anthropic_build,          /* build_request */
    anthropic_parse,          /* parse_response */
    anthropic_stream_event,   /* stream_event */
    anthropic_classify,       /* classify_error */
};
