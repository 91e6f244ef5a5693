/*
 * Google Gemini adapter: the Gemini API's generateContent method
 * (POST {base}/v1beta/models/{model}:generateContent, or
 * :streamGenerateContent?alt=sse), translated to and from the canonical
 * OpenAI-shaped request and response.
 *
 * Wire facts: ../shared/WIRE-NOTES.md, "Gemini". Sources for the rules
 * below: the API reference (https://ai.google.dev/api/generate-content,
 * https://ai.google.dev/api/caching#Schema), the function-calling,
 * thinking, thought-signatures, file-input and troubleshooting guides under
 * https://ai.google.dev/gemini-api/docs/, and the official SDK
 * googleapis/js-genai (src/_transformers.ts: tModel, processJsonSchema;
 * src/converters/_models_converters.ts: what reaches the Gemini API).
 */
#include "../internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GEMINI_MAX_STOP 5 /* GenerationConfig.stopSequences: "up to 5" */
#define SCHEMA_MAX_DEPTH 32
#define SCHEMA_MAX_NODES 20000 /* bounds $ref expansion */

/* Documented stand-in for a thought signature the client does not have
 * (history written by another model or rebuilt from OpenAI form); see
 * https://ai.google.dev/gemini-api/docs/thought-signatures (FAQ). */
#define DUMMY_THOUGHT_SIGNATURE "skip_thought_signature_validator"

/* ---- small helpers ------------------------------------------------------ */

/* Attach `item` (deleted on failure); 0, or -1 on out-of-memory. */
static int put(cJSON *obj, const char *key, cJSON *item) {
  if (!item)
    return -1;
  if (!cJSON_AddItemToObject(obj, key, item)) {
    cJSON_Delete(item);
    return -1;
  }
  return 0;
}

static int push(cJSON *arr, cJSON *item) {
  if (!item)
    return -1;
  if (!cJSON_AddItemToArray(arr, item)) {
    cJSON_Delete(item);
    return -1;
  }
  return 0;
}

/* Record a build failure on resp as "google: <message>" and return st. */
static llmr_status build_fail(llmr_response *resp, llmr_status st,
                              const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static llmr_status build_fail(llmr_response *resp, llmr_status st,
                              const char *fmt, ...) {
  char msg[320];
  int n = snprintf(msg, sizeof(msg), "google: ");
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
  va_end(ap);
  return llmr_response_set_error(resp, st, NULL, msg, 0, -1) == LLMR_OK
             ? st
             : LLMR_E_NOMEM;
}

static llmr_status warn(llmr_response *resp, const char *field) {
  char w[160];
  snprintf(w, sizeof(w), "google: %s", field);
  return llmr_response_add_warning(resp, w);
}

/* Major version of a "gemini-N..." model id; -1 for a "gemini-" id without
 * one (aliases such as gemini-flash-latest), 0 for anything else. */
static int gemini_major(const char *model) {
  long v;
  if (strncmp(model, "gemini-", 7) != 0)
    return 0;
  model += 7;
  if (*model < '0' || *model > '9')
    return -1;
  v = strtol(model, NULL, 10);
  return v > 1000 ? 1000 : (int)v;
}

/* ---- JSON Schema -> Gemini Schema --------------------------------------- */

/*
 * FunctionDeclaration.parameters and GenerationConfig.responseSchema take
 * the Gemini Schema object, a subset of OpenAPI 3.0
 * (https://ai.google.dev/api/caching#Schema): type (upper-case enum),
 * format, title, description, nullable, enum (strings), items, minItems,
 * maxItems, properties, required, minProperties, maxProperties, minLength,
 * maxLength, pattern, example, anyOf, propertyOrdering, default, minimum,
 * maximum. Any other key is refused with 400 "Unknown name". So the schema
 * is rewritten, as js-genai's processJsonSchema does, plus the rules the
 * service enforces on top of the proto:
 *  - type names upper-cased; a type list or an anyOf/oneOf with "null"
 *    becomes nullable; one remaining alternative is merged in place;
 *  - local $ref (#/$defs/..., #/definitions/..., any JSON pointer) inlined,
 *    depth-bounded (a cycle is LLMR_E_INVAL); $defs and every unknown
 *    keyword (additionalProperties, $schema, examples, allOf, not, ...)
 *    dropped; const becomes a one-value enum; a single allOf is merged;
 *  - properties/required only on OBJECT, items only on ARRAY, required
 *    limited to declared properties, an empty properties map dropped
 *    ("properties: should be non-empty for OBJECT type");
 *  - enum only on STRING (values as strings: Schema.enum is string[]);
 *  - format kept only where the reference lists it: NUMBER float/double,
 *    INTEGER int32/int64, STRING enum/date-time.
 */

typedef struct schema_ctx {
  const cJSON *root; /* for $ref */
  size_t nodes;
  llmr_status st;
  char why[160];
} schema_ctx;

static const char *gemini_type(const char *t) {
  static const char *const map[][2] = {
      {"string", "STRING"},   {"number", "NUMBER"}, {"integer", "INTEGER"},
      {"boolean", "BOOLEAN"}, {"array", "ARRAY"},   {"object", "OBJECT"}};
  size_t i;
  for (i = 0; i < sizeof(map) / sizeof(map[0]); i++)
    if (llmr__strcaseeq(t, map[i][0]))
      return map[i][1];
  return NULL;
}

static int is_null_schema(const cJSON *s) {
  const char *t = llmr__json_str(s, "type");
  return t && strcmp(t, "null") == 0;
}

/* The node a local JSON pointer reference names, or NULL. */
static const cJSON *resolve_ref(const cJSON *root, const char *ref) {
  const cJSON *cur = root;
  char seg[128];
  if (ref[0] != '#')
    return NULL; /* remote references are not fetched */
  ref++;
  while (*ref == '/') {
    size_t n = 0;
    ref++;
    while (*ref && *ref != '/') {
      char c = *ref++;
      if (c == '~' && (*ref == '0' || *ref == '1'))
        c = *ref++ == '0' ? '~' : '/';
      if (n + 1 >= sizeof(seg))
        return NULL;
      seg[n++] = c;
    }
    seg[n] = '\0';
    if (cJSON_IsArray(cur)) {
      char *end;
      long idx = strtol(seg, &end, 10);
      if (*end || idx < 0 || idx > 100000)
        return NULL;
      cur = cJSON_GetArrayItem(cur, (int)idx);
    } else {
      cur = cJSON_GetObjectItemCaseSensitive(cur, seg);
    }
    if (!cur)
      return NULL;
  }
  return *ref ? NULL : cur;
}

/* A copy of `base` with the keys of `over` it lacks, except `skip1` and
 * `skip2`. NULL on out-of-memory. */
static cJSON *merge_schema(const cJSON *base, const cJSON *over,
                           const char *skip1, const char *skip2) {
  cJSON *m = cJSON_IsObject(base) ? cJSON_Duplicate(base, 1)
                                  : cJSON_CreateObject();
  const cJSON *v;
  if (!m)
    return NULL;
  cJSON_ArrayForEach(v, over) {
    if (strcmp(v->string, skip1) == 0 ||
        (skip2 && strcmp(v->string, skip2) == 0) ||
        cJSON_HasObjectItem(m, v->string))
      continue;
    if (put(m, v->string, cJSON_Duplicate(v, 1)) != 0) {
      cJSON_Delete(m);
      return NULL;
    }
  }
  return m;
}

static cJSON *clean_schema(schema_ctx *sc, const cJSON *s, int depth);

static cJSON *clean_merged(schema_ctx *sc, const cJSON *base,
                           const cJSON *over, const char *skip1,
                           const char *skip2, int depth) {
  cJSON *m = merge_schema(base, over, skip1, skip2), *out;
  if (!m) {
    sc->st = LLMR_E_NOMEM;
    return NULL;
  }
  out = clean_schema(sc, m, depth + 1);
  cJSON_Delete(m);
  return out;
}

static int fmt_allowed(const char *type, const char *f) {
  if (!type)
    return 0;
  if (strcmp(type, "STRING") == 0)
    return strcmp(f, "enum") == 0 || strcmp(f, "date-time") == 0;
  if (strcmp(type, "NUMBER") == 0)
    return strcmp(f, "float") == 0 || strcmp(f, "double") == 0;
  if (strcmp(type, "INTEGER") == 0)
    return strcmp(f, "int32") == 0 || strcmp(f, "int64") == 0;
  return 0;
}

/* Enum values as strings; 0, or -1 when a value cannot be one (the enum is
 * then dropped). A null member makes the schema nullable. */
static int enum_to_strings(cJSON *node, cJSON *en, int *nullable) {
  cJSON *out = cJSON_CreateArray(), *e;
  char num[64];
  if (!out)
    return -2;
  cJSON_ArrayForEach(e, en) {
    const char *s = NULL;
    if (cJSON_IsString(e)) {
      s = e->valuestring;
    } else if (cJSON_IsNumber(e)) {
      if (e->valuedouble == floor(e->valuedouble) &&
          fabs(e->valuedouble) < 1e15)
        snprintf(num, sizeof(num), "%.0f", e->valuedouble);
      else
        snprintf(num, sizeof(num), "%.17g", e->valuedouble);
      s = num;
    } else if (cJSON_IsBool(e)) {
      s = cJSON_IsTrue(e) ? "true" : "false";
    } else if (cJSON_IsNull(e)) {
      *nullable = 1;
      continue;
    } else {
      cJSON_Delete(out);
      return -1;
    }
    if (push(out, cJSON_CreateString(s)) != 0) {
      cJSON_Delete(out);
      return -2;
    }
  }
  if (cJSON_GetArraySize(out) == 0) {
    cJSON_Delete(out);
    return -1;
  }
  if (!cJSON_ReplaceItemInObjectCaseSensitive(node, "enum", out)) {
    cJSON_Delete(out);
    return -2;
  }
  return 0;
}

/* The service-side rules that need the whole node (see above). */
static int fix_node(cJSON *n, int *nullable) {
  const char *type = llmr__json_str(n, "type");
  cJSON *v, *props, *req;
  if (cJSON_HasObjectItem(n, "anyOf") && type) {
    /* js-genai: "type and anyOf cannot be both populated" */
    cJSON_DeleteItemFromObjectCaseSensitive(n, "type");
    type = NULL;
  }
  if (!type && !cJSON_HasObjectItem(n, "anyOf")) {
    const char *inferred =
        cJSON_HasObjectItem(n, "properties")
            ? "OBJECT"
            : cJSON_HasObjectItem(n, "items")
                  ? "ARRAY"
                  : cJSON_HasObjectItem(n, "enum") ? "STRING" : NULL;
    if (inferred && put(n, "type", cJSON_CreateString(inferred)) != 0)
      return -1;
    type = inferred;
  }
  if (type && strcmp(type, "OBJECT") != 0) {
    cJSON_DeleteItemFromObjectCaseSensitive(n, "properties");
    cJSON_DeleteItemFromObjectCaseSensitive(n, "required");
    cJSON_DeleteItemFromObjectCaseSensitive(n, "propertyOrdering");
    cJSON_DeleteItemFromObjectCaseSensitive(n, "minProperties");
    cJSON_DeleteItemFromObjectCaseSensitive(n, "maxProperties");
  }
  if (type && strcmp(type, "ARRAY") != 0) {
    cJSON_DeleteItemFromObjectCaseSensitive(n, "items");
    cJSON_DeleteItemFromObjectCaseSensitive(n, "minItems");
    cJSON_DeleteItemFromObjectCaseSensitive(n, "maxItems");
  }
  props = cJSON_GetObjectItemCaseSensitive(n, "properties");
  if (props && cJSON_GetArraySize(props) == 0) {
    cJSON_DeleteItemFromObjectCaseSensitive(n, "properties");
    props = NULL;
  }
  if ((req = cJSON_GetObjectItemCaseSensitive(n, "required"))) {
    cJSON *r = req->child, *next;
    for (; r; r = next) {
      next = r->next;
      if (!cJSON_IsString(r) || !cJSON_HasObjectItem(props, r->valuestring))
        cJSON_Delete(cJSON_DetachItemViaPointer(req, r));
    }
    if (cJSON_GetArraySize(req) == 0)
      cJSON_DeleteItemFromObjectCaseSensitive(n, "required");
  }
  if ((v = cJSON_GetObjectItemCaseSensitive(n, "enum"))) {
    int rc = (type && strcmp(type, "STRING") == 0)
                 ? enum_to_strings(n, v, nullable)
                 : -1;
    if (rc == -2)
      return -1;
    if (rc == -1)
      cJSON_DeleteItemFromObjectCaseSensitive(n, "enum");
  }
  if ((v = cJSON_GetObjectItemCaseSensitive(n, "format")) &&
      !fmt_allowed(type, v->valuestring))
    cJSON_DeleteItemFromObjectCaseSensitive(n, "format");
  return 0;
}

static int is_key(const char *k, const char *const *list) {
  for (; *list; list++)
    if (strcmp(k, *list) == 0)
      return 1;
  return 0;
}

/* A Gemini Schema for JSON Schema `s`; NULL with sc->st set on failure. */
static cJSON *clean_schema(schema_ctx *sc, const cJSON *s, int depth) {
  static const char *const strings[] = {"title", "description", "pattern",
                                        "format", NULL};
  static const char *const numbers[] = {
      "minItems",  "maxItems",  "minProperties", "maxProperties",
      "minLength", "maxLength", "minimum",       "maximum", NULL};
  const cJSON *v, *alts = NULL;
  const char *alts_key = NULL;
  cJSON *out;
  int nullable = 0, nonnull = 0;

  if (depth > SCHEMA_MAX_DEPTH || ++sc->nodes > SCHEMA_MAX_NODES) {
    sc->st = LLMR_E_INVAL;
    snprintf(sc->why, sizeof(sc->why),
             "schema nests too deeply (is there a $ref cycle?)");
    return NULL;
  }
  if (!cJSON_IsObject(s)) { /* true / {} : any value */
    if (!(out = cJSON_CreateObject()))
      sc->st = LLMR_E_NOMEM;
    return out;
  }
  if ((v = cJSON_GetObjectItemCaseSensitive(s, "$ref"))) {
    const cJSON *target =
        cJSON_IsString(v) ? resolve_ref(sc->root, v->valuestring) : NULL;
    if (!target) {
      sc->st = LLMR_E_INVAL;
      snprintf(sc->why, sizeof(sc->why), "cannot resolve $ref '%.100s'",
               cJSON_IsString(v) ? v->valuestring : "?");
      return NULL;
    }
    /* keywords beside $ref (often a description) apply too */
    return clean_merged(sc, target, s, "$ref", NULL, depth);
  }
  if (cJSON_IsArray(v = cJSON_GetObjectItemCaseSensitive(s, "anyOf")))
    alts = v, alts_key = "anyOf";
  else if (cJSON_IsArray(v = cJSON_GetObjectItemCaseSensitive(s, "oneOf")))
    alts = v, alts_key = "oneOf"; /* as anyOf for generation */
  if (alts) {
    const cJSON *only = NULL;
    cJSON_ArrayForEach(v, alts) {
      if (is_null_schema(v)) {
        nullable = 1;
      } else {
        nonnull++;
        only = v;
      }
    }
    if (nonnull == 1) {
      out = clean_merged(sc, only, s, "anyOf", "oneOf", depth);
      if (out && nullable && !cJSON_HasObjectItem(out, "nullable") &&
          put(out, "nullable", cJSON_CreateTrue()) != 0) {
        cJSON_Delete(out);
        sc->st = LLMR_E_NOMEM;
        return NULL;
      }
      return out;
    }
  }
  if (cJSON_IsArray(v = cJSON_GetObjectItemCaseSensitive(s, "allOf")) &&
      cJSON_GetArraySize(v) == 1)
    return clean_merged(sc, v->child, s, "allOf", NULL, depth);

  if (!(out = cJSON_CreateObject()))
    goto oom;
  cJSON_ArrayForEach(v, s) {
    const char *k = v->string;
    if (strcmp(k, "type") == 0) {
      if (cJSON_IsString(v)) {
        if (strcmp(v->valuestring, "null") == 0)
          nullable = 1;
        else if (gemini_type(v->valuestring) &&
                 put(out, "type",
                     cJSON_CreateString(gemini_type(v->valuestring))) != 0)
          goto oom;
      } else if (cJSON_IsArray(v)) {
        /* ["string","null"] -> STRING + nullable; several -> anyOf */
        const cJSON *t;
        cJSON *any = NULL;
        const char *first = NULL;
        int n = 0;
        cJSON_ArrayForEach(t, v) {
          const char *gt = cJSON_IsString(t) ? gemini_type(t->valuestring)
                                             : NULL;
          if (cJSON_IsString(t) && strcmp(t->valuestring, "null") == 0)
            nullable = 1;
          if (!gt)
            continue;
          if (n++ == 0)
            first = gt;
        }
        if (n == 1 && put(out, "type", cJSON_CreateString(first)) != 0)
          goto oom;
        if (n > 1 && !alts) {
          if (put(out, "anyOf", any = cJSON_CreateArray()) != 0)
            goto oom;
          cJSON_ArrayForEach(t, v) {
            cJSON *o;
            const char *gt = cJSON_IsString(t) ? gemini_type(t->valuestring)
                                               : NULL;
            if (!gt)
              continue;
            if (push(any, o = cJSON_CreateObject()) != 0 ||
                put(o, "type", cJSON_CreateString(gt)) != 0)
              goto oom;
          }
        }
      }
    } else if (alts_key && strcmp(k, alts_key) == 0) {
      const cJSON *a;
      cJSON *any;
      if (nonnull == 0)
        continue;
      if (put(out, "anyOf", any = cJSON_CreateArray()) != 0)
        goto oom;
      cJSON_ArrayForEach(a, v) {
        cJSON *c;
        if (is_null_schema(a))
          continue;
        if (!(c = clean_schema(sc, a, depth + 1)))
          goto fail;
        if (push(any, c) != 0)
          goto oom;
      }
    } else if (strcmp(k, "properties") == 0) {
      const cJSON *p;
      cJSON *props;
      if (!cJSON_IsObject(v))
        continue;
      if (put(out, "properties", props = cJSON_CreateObject()) != 0)
        goto oom;
      cJSON_ArrayForEach(p, v) {
        cJSON *c = clean_schema(sc, p, depth + 1);
        if (!c)
          goto fail;
        if (put(props, p->string, c) != 0)
          goto oom;
      }
    } else if (strcmp(k, "items") == 0) {
      cJSON *c;
      if (!cJSON_IsObject(v) && !cJSON_IsBool(v))
        continue; /* tuple form: Gemini has one item schema */
      if (!(c = clean_schema(sc, v, depth + 1)))
        goto fail;
      if (put(out, "items", c) != 0)
        goto oom;
    } else if (is_key(k, strings)) {
      if (cJSON_IsString(v) && put(out, k, cJSON_Duplicate(v, 1)) != 0)
        goto oom;
    } else if (is_key(k, numbers)) {
      if (cJSON_IsNumber(v) && put(out, k, cJSON_Duplicate(v, 1)) != 0)
        goto oom;
    } else if (strcmp(k, "required") == 0 ||
               strcmp(k, "propertyOrdering") == 0 ||
               strcmp(k, "enum") == 0) {
      if (cJSON_IsArray(v) && put(out, k, cJSON_Duplicate(v, 1)) != 0)
        goto oom;
    } else if (strcmp(k, "nullable") == 0) {
      if (cJSON_IsTrue(v))
        nullable = 1;
    } else if (strcmp(k, "default") == 0 || strcmp(k, "example") == 0) {
      if (put(out, k, cJSON_Duplicate(v, 1)) != 0)
        goto oom;
    } else if (strcmp(k, "const") == 0) {
      cJSON *e;
      if (cJSON_HasObjectItem(s, "enum"))
        continue;
      if (put(out, "enum", e = cJSON_CreateArray()) != 0 ||
          push(e, cJSON_Duplicate(v, 1)) != 0)
        goto oom;
    }
    /* anything else is not part of the Gemini Schema: dropped */
  }
  if (fix_node(out, &nullable) != 0)
    goto oom;
  if (nullable && put(out, "nullable", cJSON_CreateTrue()) != 0)
    goto oom;
  return out;
oom:
  sc->st = LLMR_E_NOMEM;
fail:
  cJSON_Delete(out);
  return NULL;
}

/* The cleaned schema for `schema`, or *out = NULL when nothing is left to
 * send (an object without properties: a function without parameters is
 * declared without `parameters`, per the FunctionDeclaration reference). */
static llmr_status convert_schema(const cJSON *schema, cJSON **out,
                                  llmr_response *resp, const char *where) {
  schema_ctx sc;
  cJSON *c;
  const char *t;
  memset(&sc, 0, sizeof(sc));
  sc.root = schema;
  *out = NULL;
  if (!(c = clean_schema(&sc, schema, 0))) {
    if (sc.st == LLMR_E_NOMEM)
      return LLMR_E_NOMEM;
    return build_fail(resp, LLMR_E_INVAL, "%s: %s", where, sc.why);
  }
  t = llmr__json_str(c, "type");
  if (!cJSON_HasObjectItem(c, "properties") &&
      ((t && strcmp(t, "OBJECT") == 0) ||
       (!t && !cJSON_HasObjectItem(c, "anyOf")))) {
    cJSON_Delete(c);
    return LLMR_OK;
  }
  *out = c;
  return LLMR_OK;
}

/* ---- request: messages -> contents -------------------------------------- */

typedef struct gem_build {
  const llmr_request *req;
  llmr_response *resp;
  cJSON *contents;  /* array of Content */
  cJSON *cur_parts; /* parts of the last Content */
  const char *cur_role;
  int cur_has_call; /* the last Content already holds a functionCall */
  cJSON *sys_parts; /* systemInstruction.parts */
  int dummy_sig;    /* add the documented dummy thoughtSignature */
  int warned_name;
} gem_build;

/* Append `part` to the last Content when it has the same role (Gemini
 * wants user and model turns to alternate), else start a new one. */
static llmr_status add_part(gem_build *g, const char *role, cJSON *part) {
  if (!part)
    return LLMR_E_NOMEM;
  if (!g->cur_role || strcmp(g->cur_role, role) != 0) {
    cJSON *c = cJSON_CreateObject();
    if (push(g->contents, c) != 0 ||
        put(c, "role", cJSON_CreateString(role)) != 0 ||
        put(c, "parts", g->cur_parts = cJSON_CreateArray()) != 0) {
      cJSON_Delete(part);
      return LLMR_E_NOMEM;
    }
    g->cur_role = role;
    g->cur_has_call = 0;
  }
  return push(g->cur_parts, part) == 0 ? LLMR_OK : LLMR_E_NOMEM;
}

static cJSON *text_part(const char *text) {
  cJSON *p = cJSON_CreateObject();
  if (p && put(p, "text", cJSON_CreateString(text)) != 0) {
    cJSON_Delete(p);
    return NULL;
  }
  return p;
}

/* {"inlineData"|"fileData": {mimeType, data|fileUri}} */
static cJSON *media_part(const char *kind, const char *mime, const char *key,
                         const char *value) {
  cJSON *p = cJSON_CreateObject(), *d;
  if (!p || put(p, kind, d = cJSON_CreateObject()) != 0 ||
      (mime && put(d, "mimeType", cJSON_CreateString(mime)) != 0) ||
      put(d, key, cJSON_CreateString(value)) != 0) {
    cJSON_Delete(p);
    return NULL;
  }
  return p;
}

/* MIME type from a URL's file extension, for the types the image and
 * document guides list; NULL when unknown (mimeType is then left out). */
static const char *mime_from_url(const char *url) {
  static const char *const map[][2] = {
      {"png", "image/png"},   {"jpg", "image/jpeg"}, {"jpeg", "image/jpeg"},
      {"webp", "image/webp"}, {"heic", "image/heic"}, {"heif", "image/heif"},
      {"pdf", "application/pdf"}};
  const char *end = url + strcspn(url, "?#"), *dot = NULL, *p;
  size_t i, n;
  for (p = url; p < end; p++) {
    if (*p == '/')
      dot = NULL;
    else if (*p == '.')
      dot = p;
  }
  if (!dot)
    return NULL;
  n = (size_t)(end - dot - 1);
  for (i = 0; i < sizeof(map) / sizeof(map[0]); i++)
    if (strlen(map[i][0]) == n && llmr__strncaseeq(dot + 1, map[i][0], n))
      return map[i][1];
  return NULL;
}

/* One OpenAI content part of message i (part k) as a Gemini part. */
static llmr_status convert_part(gem_build *g, const char *role, size_t i,
                                size_t k, const cJSON *p) {
  const char *type = llmr__json_str(p, "type");
  char mime[128];
  const char *data;
  if (!type)
    return build_fail(g->resp, LLMR_E_INVAL,
                      "messages[%zu].content[%zu]: part without a type", i, k);
  if (strcmp(type, "text") == 0) {
    const char *t = llmr__json_str(p, "text");
    /* an empty text part is refused by the API */
    return (t && *t) ? add_part(g, role, text_part(t)) : LLMR_OK;
  }
  if (strcmp(type, "image_url") == 0) {
    const cJSON *iu = cJSON_GetObjectItemCaseSensitive(p, "image_url");
    const char *url = cJSON_IsString(iu) ? iu->valuestring
                                         : llmr__json_str(iu, "url");
    if (!url)
      return build_fail(g->resp, LLMR_E_INVAL,
                        "messages[%zu].content[%zu].image_url.url: missing",
                        i, k);
    if (strncmp(url, "data:", 5) == 0) {
      if (llmr__parse_data_url(url, mime, sizeof(mime), &data) != 0)
        return build_fail(g->resp, LLMR_E_INVAL,
                          "messages[%zu].content[%zu].image_url.url: only "
                          "base64 data URLs with a MIME type can be sent",
                          i, k);
      return add_part(g, role, media_part("inlineData", mime, "data", data));
    }
    /* The API fetches public and signed http(s) URLs itself (file input
     * methods guide, "External URLs"); image detail has no equivalent. */
    return add_part(g, role,
                    media_part("fileData", mime_from_url(url), "fileUri", url));
  }
  if (strcmp(type, "input_audio") == 0) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(p, "input_audio");
    const char *b64 = llmr__json_str(a, "data");
    const char *fmt = llmr__json_str(a, "format");
    if (!b64 || !fmt || strlen(fmt) > 32)
      return build_fail(g->resp, LLMR_E_INVAL,
                        "messages[%zu].content[%zu].input_audio: needs data "
                        "and format",
                        i, k);
    snprintf(mime, sizeof(mime), "audio/%s", fmt); /* wav, mp3 */
    return add_part(g, role, media_part("inlineData", mime, "data", b64));
  }
  if (strcmp(type, "file") == 0) {
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(p, "file");
    const char *fd = llmr__json_str(f, "file_data");
    if (fd && llmr__parse_data_url(fd, mime, sizeof(mime), &data) == 0)
      return add_part(g, role, media_part("inlineData", mime, "data", data));
    if (fd && llmr__json_str(f, "filename") &&
        mime_from_url(llmr__json_str(f, "filename")))
      return add_part(g, role,
                      media_part("inlineData",
                                 mime_from_url(llmr__json_str(f, "filename")),
                                 "data", fd));
    /* an OpenAI file id means nothing to Gemini: let another model try */
    return build_fail(g->resp, LLMR_E_CAPABILITY,
                      "messages[%zu].content[%zu]: only inline file_data "
                      "(a base64 data URL) can be sent to Gemini",
                      i, k);
  }
  return build_fail(g->resp, LLMR_E_CAPABILITY,
                    "messages[%zu].content[%zu]: content part type '%.40s' "
                    "cannot be sent to Gemini",
                    i, k, type);
}

static llmr_status convert_content(gem_build *g, const char *role, size_t i,
                                   const llmr__message *m) {
  const cJSON *p;
  size_t k = 0;
  llmr_status st;
  if (m->content)
    return *m->content ? add_part(g, role, text_part(m->content)) : LLMR_OK;
  cJSON_ArrayForEach(p, m->parts) {
    if ((st = convert_part(g, role, i, k++, p)) != LLMR_OK)
      return st;
  }
  return LLMR_OK;
}

/* system and developer messages: systemInstruction is text only */
static llmr_status convert_system(gem_build *g, size_t i,
                                  const llmr__message *m) {
  const cJSON *p;
  size_t k = 0;
  char field[64];
  if (m->content)
    return *m->content && push(g->sys_parts, text_part(m->content)) != 0
               ? LLMR_E_NOMEM
               : LLMR_OK;
  cJSON_ArrayForEach(p, m->parts) {
    const char *type = llmr__json_str(p, "type");
    const char *t = llmr__json_str(p, "text");
    if (type && strcmp(type, "text") == 0) {
      if (t && *t && push(g->sys_parts, text_part(t)) != 0)
        return LLMR_E_NOMEM;
    } else {
      snprintf(field, sizeof(field), "messages[%zu].content[%zu]", i, k);
      if (warn(g->resp, field) != LLMR_OK)
        return LLMR_E_NOMEM;
    }
    k++;
  }
  return LLMR_OK;
}

/* Arguments text -> object: Gemini's FunctionCall.args is a Struct. Empty
 * text means no arguments; anything that is not a JSON object is refused
 * (LLMR_E_INVAL) rather than guessed at. */
static cJSON *parse_args(const char *text) {
  const char *s = text ? text : "";
  while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
    s++;
  if (!*s)
    return cJSON_CreateObject();
  return cJSON_ParseWithOpts(s, NULL, 1);
}

static llmr_status convert_tool_calls(gem_build *g, size_t i,
                                      const llmr__message *m) {
  size_t k;
  llmr_status st;
  for (k = 0; k < m->n_tool_calls; k++) {
    const llmr__tool_call *tc = &m->tool_calls[k];
    cJSON *args = parse_args(tc->arguments), *part, *fc;
    if (!cJSON_IsObject(args)) {
      cJSON_Delete(args);
      return build_fail(g->resp, LLMR_E_INVAL,
                        "messages[%zu].tool_calls[%zu].function.arguments: "
                        "not a JSON object (Gemini takes arguments as an "
                        "object)",
                        i, k);
    }
    if (!(part = cJSON_CreateObject()) ||
        put(part, "functionCall", fc = cJSON_CreateObject()) != 0 ||
        (tc->id && *tc->id && put(fc, "id", cJSON_CreateString(tc->id)) != 0) ||
        put(fc, "name", cJSON_CreateString(tc->name)) != 0) {
      cJSON_Delete(args);
      cJSON_Delete(part);
      return LLMR_E_NOMEM;
    }
    if (put(fc, "args", args) != 0) { /* put freed args */
      cJSON_Delete(part);
      return LLMR_E_NOMEM;
    }
    if ((st = add_part(g, "model", part)) != LLMR_OK)
      return st;
    /* Gemini 3 refuses a replayed function call whose step lacks a thought
     * signature; the canonical request does not carry one. */
    if (g->dummy_sig && !g->cur_has_call &&
        put(part, "thoughtSignature",
            cJSON_CreateString(DUMMY_THOUGHT_SIGNATURE)) != 0)
      return LLMR_E_NOMEM;
    g->cur_has_call = 1;
  }
  return LLMR_OK;
}

/* The function name answering tool_call_id: the latest earlier assistant
 * tool call with that id, else the tool message's own name. */
static const char *tool_name(const llmr_request *req, size_t i) {
  const llmr__message *m = &req->messages[i];
  size_t j = i, k;
  while (j-- > 0) {
    const llmr__message *a = &req->messages[j];
    if (a->role != LLMR_ROLE_ASSISTANT)
      continue;
    for (k = 0; k < a->n_tool_calls; k++)
      if (a->tool_calls[k].id && m->tool_call_id &&
          strcmp(a->tool_calls[k].id, m->tool_call_id) == 0)
        return a->tool_calls[k].name;
  }
  return m->name;
}

/* A tool result as functionResponse. FunctionResponse.response must be an
 * object; the reference says to use the "output" key for the function's
 * output (and "error" for a failure), so JSON object text is sent as is
 * and anything else as {"output": <JSON value or the text>}. */
static llmr_status convert_tool_result(gem_build *g, size_t i,
                                       const llmr__message *m) {
  const char *name = tool_name(g->req, i);
  llmr__buf text = {0};
  cJSON *val = NULL, *resp_obj = NULL, *part = NULL, *fr;
  const cJSON *p;
  llmr_status st = LLMR_E_NOMEM;
  if (!name)
    return build_fail(g->resp, LLMR_E_INVAL,
                      "messages[%zu].tool_call_id: '%.64s' matches no earlier "
                      "assistant tool call (Gemini needs the function name)",
                      i, m->tool_call_id ? m->tool_call_id : "");
  if (m->content) {
    if (llmr__buf_puts(&text, m->content))
      goto out;
  } else {
    cJSON_ArrayForEach(p, m->parts) {
      const char *t = llmr__json_str(p, "text");
      if (t && llmr__buf_puts(&text, t))
        goto out;
    }
  }
  val = cJSON_ParseWithOpts(llmr__buf_str(&text), NULL, 1);
  if (cJSON_IsObject(val)) {
    resp_obj = val;
    val = NULL;
  } else {
    if (!(resp_obj = cJSON_CreateObject()))
      goto out;
    if (!val && !(val = cJSON_CreateString(llmr__buf_str(&text))))
      goto out;
    if (put(resp_obj, "output", val) != 0) {
      val = NULL;
      goto out;
    }
    val = NULL;
  }
  if (!(part = cJSON_CreateObject()) ||
      put(part, "functionResponse", fr = cJSON_CreateObject()) != 0 ||
      (m->tool_call_id && *m->tool_call_id &&
       put(fr, "id", cJSON_CreateString(m->tool_call_id)) != 0) ||
      put(fr, "name", cJSON_CreateString(name)) != 0)
    goto out;
  if (put(fr, "response", resp_obj) != 0) {
    resp_obj = NULL;
    goto out;
  }
  resp_obj = NULL;
  st = add_part(g, "user", part);
  part = NULL;
out:
  cJSON_Delete(val);
  cJSON_Delete(resp_obj);
  cJSON_Delete(part);
  llmr__buf_free(&text);
  return st;
}

static llmr_status convert_messages(gem_build *g) {
  size_t i;
  llmr_status st = LLMR_OK;
  for (i = 0; i < g->req->n_messages && st == LLMR_OK; i++) {
    const llmr__message *m = &g->req->messages[i];
    if (m->name && m->role != LLMR_ROLE_TOOL && !g->warned_name) {
      /* participant names have no Gemini equivalent */
      g->warned_name = 1;
      if (warn(g->resp, "name") != LLMR_OK)
        return LLMR_E_NOMEM;
    }
    switch (m->role) {
    case LLMR_ROLE_SYSTEM:
    case LLMR_ROLE_DEVELOPER:
      st = convert_system(g, i, m);
      break;
    case LLMR_ROLE_USER:
      st = convert_content(g, "user", i, m);
      break;
    case LLMR_ROLE_ASSISTANT:
      if ((st = convert_content(g, "model", i, m)) == LLMR_OK)
        st = convert_tool_calls(g, i, m);
      break;
    case LLMR_ROLE_TOOL:
      st = convert_tool_result(g, i, m);
      break;
    default:
      st = build_fail(g->resp, LLMR_E_INVAL, "messages[%zu]: unknown role", i);
    }
  }
  if (st == LLMR_OK && cJSON_GetArraySize(g->contents) == 0)
    st = build_fail(g->resp, LLMR_E_INVAL,
                    "the request needs at least one non-empty user or "
                    "assistant message");
  return st;
}

/* ---- request: tools, tool_choice, generationConfig ---------------------- */

static llmr_status convert_tools(const llmr_request *req, cJSON *body,
                                 llmr_response *resp) {
  cJSON *tools, *tool, *decls;
  const cJSON *t;
  size_t k = 0;
  llmr_status st;
  char where[64];
  if (cJSON_GetArraySize(req->tools) == 0)
    return LLMR_OK;
  if (put(body, "tools", tools = cJSON_CreateArray()) != 0 ||
      push(tools, tool = cJSON_CreateObject()) != 0 ||
      put(tool, "functionDeclarations", decls = cJSON_CreateArray()) != 0)
    return LLMR_E_NOMEM;
  cJSON_ArrayForEach(t, req->tools) {
    const cJSON *fn = cJSON_GetObjectItemCaseSensitive(t, "function");
    const char *name = llmr__json_str(fn, "name");
    const char *desc = llmr__json_str(fn, "description");
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(fn, "parameters");
    cJSON *d, *schema = NULL;
    if (!name)
      return build_fail(resp, LLMR_E_INVAL, "tools[%zu].function.name: missing",
                        k);
    if (push(decls, d = cJSON_CreateObject()) != 0 ||
        put(d, "name", cJSON_CreateString(name)) != 0 ||
        (desc && put(d, "description", cJSON_CreateString(desc)) != 0))
      return LLMR_E_NOMEM;
    if (cJSON_IsObject(params)) {
      snprintf(where, sizeof(where), "tools[%zu].function.parameters", k);
      if ((st = convert_schema(params, &schema, resp, where)) != LLMR_OK)
        return st;
      if (schema && put(d, "parameters", schema) != 0)
        return LLMR_E_NOMEM;
    }
    k++;
  }
  return LLMR_OK;
}

/* tool_choice -> toolConfig.functionCallingConfig (function-calling guide:
 * AUTO, ANY, NONE; allowedFunctionNames only with ANY). */
static llmr_status convert_tool_choice(const llmr_request *req, cJSON *body,
                                       llmr_response *resp) {
  const cJSON *tc = req->tool_choice;
  const char *mode = NULL, *fname = NULL;
  cJSON *cfg, *fcc, *names;
  if (!tc)
    return LLMR_OK;
  if (cJSON_IsString(tc)) {
    if (strcmp(tc->valuestring, "auto") == 0)
      mode = "AUTO";
    else if (strcmp(tc->valuestring, "none") == 0)
      mode = "NONE";
    else if (strcmp(tc->valuestring, "required") == 0)
      mode = "ANY";
  } else if ((fname = llmr__json_str(
                  cJSON_GetObjectItemCaseSensitive(tc, "function"), "name"))) {
    mode = "ANY";
  }
  if (!mode || cJSON_GetArraySize(req->tools) == 0)
    return warn(resp, "tool_choice");
  if (put(body, "toolConfig", cfg = cJSON_CreateObject()) != 0 ||
      put(cfg, "functionCallingConfig", fcc = cJSON_CreateObject()) != 0 ||
      put(fcc, "mode", cJSON_CreateString(mode)) != 0)
    return LLMR_E_NOMEM;
  if (fname && (put(fcc, "allowedFunctionNames", names = cJSON_CreateArray()) !=
                    0 ||
                push(names, cJSON_CreateString(fname)) != 0))
    return LLMR_E_NOMEM;
  return LLMR_OK;
}

/*
 * The reasoning knob -> generationConfig.thinkingConfig (thinking guide):
 * a token budget is thinkingBudget (Gemini 2.5; Gemini 3 still accepts it
 * for compatibility). An effort alone is thinkingLevel on Gemini 3 and
 * later, which documents levels instead of budgets: LOW and HIGH are the
 * two every Gemini 3 model takes (3 Pro has no MINIMAL or MEDIUM), so
 * minimal/low -> LOW and medium/high -> HIGH. On older or unversioned ids
 * the effort becomes a budget inside every 2.5 model's documented range
 * (Pro 128-32768, Flash 0-24576, Flash-Lite 512-24576), chosen so that
 * llmr__reasoning_effort() maps it back to the same effort. The two fields
 * are never sent together (the API refuses that). Thought summaries are
 * asked for so reasoning text comes back.
 */
static llmr_status add_thinking(const llmr_request *req, const char *model,
                                cJSON *gc) {
  cJSON *tc;
  const char *effort = req->reasoning_effort;
  if (!llmr__request_wants_reasoning(req))
    return LLMR_OK;
  if (put(gc, "thinkingConfig", tc = cJSON_CreateObject()) != 0)
    return LLMR_E_NOMEM;
  if (req->reasoning_budget > 0) {
    int64_t b = req->reasoning_budget > 2147483647 ? 2147483647
                                                   : req->reasoning_budget;
    if (put(tc, "thinkingBudget", cJSON_CreateNumber((double)b)) != 0)
      return LLMR_E_NOMEM;
  } else if (gemini_major(model) >= 3) {
    const char *level = (strcmp(effort, "minimal") == 0 ||
                         strcmp(effort, "low") == 0)
                            ? "LOW"
                            : "HIGH";
    if (put(tc, "thinkingLevel", cJSON_CreateString(level)) != 0)
      return LLMR_E_NOMEM;
  } else {
    double b = strcmp(effort, "minimal") == 0 ? 512
               : strcmp(effort, "low") == 0   ? 1024
               : strcmp(effort, "medium") == 0 ? 4096
                                               : 24576;
    if (put(tc, "thinkingBudget", cJSON_CreateNumber(b)) != 0)
      return LLMR_E_NOMEM;
  }
  return put(tc, "includeThoughts", cJSON_CreateTrue()) == 0 ? LLMR_OK
                                                             : LLMR_E_NOMEM;
}

static llmr_status convert_config(const llmr_request *req, const char *model,
                                  cJSON *body, llmr_response *resp) {
  cJSON *gc = cJSON_CreateObject();
  const char *rf = llmr__json_str(req->response_format, "type");
  llmr_status st = LLMR_E_NOMEM;
  size_t i;
  if (!gc)
    return LLMR_E_NOMEM;
  if (req->has_temperature &&
      put(gc, "temperature", cJSON_CreateNumber(req->temperature)) != 0)
    goto out;
  if (req->has_top_p && put(gc, "topP", cJSON_CreateNumber(req->top_p)) != 0)
    goto out;
  if (req->max_tokens > 0 &&
      put(gc, "maxOutputTokens",
          cJSON_CreateNumber((double)(req->max_tokens > 2147483647
                                          ? 2147483647
                                          : req->max_tokens))) != 0)
    goto out;
  if (req->n_stop) {
    cJSON *arr;
    if (put(gc, "stopSequences", arr = cJSON_CreateArray()) != 0)
      goto out;
    for (i = 0; i < req->n_stop && i < GEMINI_MAX_STOP; i++)
      if (push(arr, cJSON_CreateString(req->stop[i])) != 0)
        goto out;
    if (req->n_stop > GEMINI_MAX_STOP &&
        warn(resp, "stop (only the first 5 sequences are sent)") != LLMR_OK)
      goto out;
  }
  if (req->has_seed) {
    /* GenerationConfig.seed is an int32 */
    if (req->seed < -2147483647 - 1 || req->seed > 2147483647) {
      if (warn(resp, "seed") != LLMR_OK)
        goto out;
    } else if (put(gc, "seed", cJSON_CreateNumber((double)req->seed)) != 0) {
      goto out;
    }
  }
  if (rf && strcmp(rf, "text") != 0) {
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(req->response_format,
                                                      "json_schema");
    const cJSON *schema = cJSON_GetObjectItemCaseSensitive(js, "schema");
    cJSON *clean = NULL;
    if (strcmp(rf, "json_object") != 0 && strcmp(rf, "json_schema") != 0) {
      if (warn(resp, "response_format") != LLMR_OK)
        goto out;
    } else {
      if (put(gc, "responseMimeType", cJSON_CreateString("application/json")))
        goto out;
      if (strcmp(rf, "json_schema") == 0 && cJSON_IsObject(schema)) {
        if ((st = convert_schema(schema, &clean, resp,
                                 "response_format.json_schema.schema")) !=
            LLMR_OK)
          goto out;
        st = LLMR_E_NOMEM;
        if (clean && put(gc, "responseSchema", clean) != 0)
          goto out;
      }
    }
  }
  if ((st = add_thinking(req, model, gc)) != LLMR_OK)
    goto out;
  if (cJSON_GetArraySize(gc) == 0) {
    cJSON_Delete(gc);
    return LLMR_OK;
  }
  return put(body, "generationConfig", gc) == 0 ? LLMR_OK : LLMR_E_NOMEM;
out:
  cJSON_Delete(gc);
  return st;
}

/* Parameters the Gemini API has no field for (or, like the penalties,
 * refuses on current models: "Penalty is not enabled for this model"). */
static llmr_status drop_unsupported(const llmr_request *req,
                                    llmr_response *resp) {
  const cJSON *v;
  if (req->user && warn(resp, "user") != LLMR_OK)
    return LLMR_E_NOMEM;
  cJSON_ArrayForEach(v, req->extra) {
    if (warn(resp, v->string) != LLMR_OK)
      return LLMR_E_NOMEM;
  }
  return LLMR_OK;
}

/* ---- request: URL and headers ------------------------------------------- */

/* Percent-encode everything but RFC 3986 unreserved characters, so a model
 * id cannot add path segments, a query or a second ":method". */
static int append_escaped(llmr__buf *b, const char *s) {
  static const char hex[] = "0123456789ABCDEF";
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    char enc[3];
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
        (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
        c == '~') {
      if (llmr__buf_append(b, (const char *)&c, 1))
        return -1;
      continue;
    }
    enc[0] = '%';
    enc[1] = hex[c >> 4];
    enc[2] = hex[c & 15];
    if (llmr__buf_append(b, enc, 3))
      return -1;
  }
  return 0;
}

/* {base}/{version}/models/{id}:method. A "models/" prefix is accepted and
 * "tunedModels/" kept, as js-genai's tModel does. */
static llmr_status build_url(const llmr_provider *p, const char *model,
                             int stream, llmr__buf *url) {
  const char *version = llmr_provider_option(p, "api_version");
  const char *coll = "models/";
  if (strncmp(model, "models/", 7) == 0) {
    model += 7;
  } else if (strncmp(model, "tunedModels/", 12) == 0) {
    model += 12;
    coll = "tunedModels/";
  }
  if (llmr__buf_puts(url, llmr_provider_base_url(p)) ||
      llmr__buf_puts(url, "/") ||
      append_escaped(url, version && *version ? version : "v1beta") ||
      llmr__buf_puts(url, "/") || llmr__buf_puts(url, coll) ||
      append_escaped(url, model) ||
      llmr__buf_puts(url, stream ? ":streamGenerateContent?alt=sse"
                                 : ":generateContent"))
    return LLMR_E_NOMEM;
  return LLMR_OK;
}

static llmr_status gemini_build(const llmr_provider *p,
                                const llmr_request *req,
                                const char *native_model, int stream,
                                llmr_http_request *http, llmr_response *resp) {
  gem_build g;
  llmr__buf url = {0};
  cJSON *body = cJSON_CreateObject(), *si;
  char *text = NULL;
  const char *model = native_model ? native_model : "";
  llmr_status st = LLMR_E_NOMEM;

  memset(&g, 0, sizeof(g));
  g.req = req;
  g.resp = resp;
  if (strncmp(model, "models/", 7) == 0)
    model += 7;
  /* Gemini 3 and unversioned gemini-* aliases (which may point at it) need
   * thought signatures on replayed calls; 1.x and 2.x do not. */
  g.dummy_sig = gemini_major(model) >= 3 || gemini_major(model) == -1;
  if (!body)
    return LLMR_E_NOMEM;
  if (!*model || strcmp(model, "tunedModels/") == 0) {
    st = build_fail(resp, LLMR_E_INVAL, "empty model id");
    goto out;
  }
  if (put(body, "contents", g.contents = cJSON_CreateArray()) != 0 ||
      !(g.sys_parts = cJSON_CreateArray()))
    goto out;
  if ((st = convert_messages(&g)) != LLMR_OK)
    goto out;
  st = LLMR_E_NOMEM;
  if (cJSON_GetArraySize(g.sys_parts) > 0) {
    /* several system/developer messages: one part each, in order */
    if (put(body, "systemInstruction", si = cJSON_CreateObject()) != 0)
      goto out;
    if (put(si, "parts", g.sys_parts) != 0) {
      g.sys_parts = NULL;
      goto out;
    }
    g.sys_parts = NULL;
  }
  if ((st = convert_tools(req, body, resp)) != LLMR_OK ||
      (st = convert_tool_choice(req, body, resp)) != LLMR_OK ||
      (st = convert_config(req, model, body, resp)) != LLMR_OK ||
      (st = drop_unsupported(req, resp)) != LLMR_OK ||
      (st = build_url(p, native_model ? native_model : "", stream, &url)) !=
          LLMR_OK)
    goto out;
  st = LLMR_E_NOMEM;
  if (!(text = cJSON_PrintUnformatted(body)))
    goto out;
  if ((st = llmr_http_request_set_url(http, url.data)) != LLMR_OK ||
      (st = llmr_http_request_set_body(http, text, strlen(text))) != LLMR_OK ||
      (st = llmr_http_request_add_header(http, "Content-Type",
                                         "application/json")) != LLMR_OK)
    goto out;
  /* The key goes in a header, never in ?key=: URLs end up in logs. */
  if (llmr_provider_api_key(p) &&
      (st = llmr_http_request_add_header(http, "x-goog-api-key",
                                         llmr_provider_api_key(p))) != LLMR_OK)
    goto out;
  st = LLMR_OK;
out:
  cJSON_Delete(g.sys_parts);
  cJSON_Delete(body);
  cJSON_free(text);
  llmr__buf_free(&url);
  return st;
}

/* ---- response ----------------------------------------------------------- */

static llmr_status protocol_error(llmr_response *resp, const char *msg) {
  return llmr_response_set_error(resp, LLMR_E_PROTOCOL, NULL, msg, 0, -1) ==
                 LLMR_OK
             ? LLMR_E_PROTOCOL
             : LLMR_E_NOMEM;
}

/* Candidate.finishReason -> normalised (WIRE-NOTES "finish_reason"). The
 * malformed/unexpected tool-call family means the turn failed: "error". */
static const char *finish_reason(const char *native, int has_calls) {
  static const char *const filtered[] = {
      "SAFETY", "RECITATION",       "BLOCKLIST",
      "PROHIBITED_CONTENT",         "SPII",
      "IMAGE_SAFETY",               "IMAGE_PROHIBITED_CONTENT",
      "IMAGE_RECITATION",           "LANGUAGE", NULL};
  static const char *const failed[] = {
      "MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL", "TOO_MANY_TOOL_CALLS",
      "MALFORMED_RESPONSE", "MISSING_THOUGHT_SIGNATURE", NULL};
  if (native && strcmp(native, "MAX_TOKENS") == 0)
    return "length";
  if (native && is_key(native, filtered))
    return "content_filter";
  if (native && is_key(native, failed))
    return "error";
  /* STOP (Gemini reports STOP for tool turns), OTHER, unset */
  return has_calls ? "tool_calls" : "stop";
}

static void parse_usage(const cJSON *u, llmr_response *resp) {
  int64_t prompt, cand = 0, thoughts = 0, v;
  if (!cJSON_IsObject(u))
    return;
  if (llmr__json_i64(u, "promptTokenCount", &prompt) == 0)
    llmr_response_set_tokens(resp, LLMR_TOKENS_PROMPT, prompt);
  llmr__json_i64(u, "candidatesTokenCount", &cand);
  llmr__json_i64(u, "thoughtsTokenCount", &thoughts);
  /* completion includes reasoning; promptTokenCount already includes the
   * cached tokens */
  llmr_response_set_tokens(resp, LLMR_TOKENS_COMPLETION,
                           cand >= 0 && thoughts >= 0 ? cand + thoughts : -1);
  llmr_response_set_tokens(resp, LLMR_TOKENS_REASONING,
                           thoughts >= 0 ? thoughts : -1);
  llmr_response_set_tokens(
      resp, LLMR_TOKENS_CACHED,
      llmr__json_i64(u, "cachedContentTokenCount", &v) == 0 && v >= 0 ? v : 0);
  if (llmr__json_i64(u, "totalTokenCount", &v) == 0)
    llmr_response_set_tokens(resp, LLMR_TOKENS_TOTAL, v);
}

static llmr_status parse_parts(const cJSON *parts, llmr_response *resp,
                               int *has_calls) {
  const cJSON *part;
  llmr_status st;
  cJSON_ArrayForEach(part, parts) {
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(part, "text");
    const cJSON *fc = cJSON_GetObjectItemCaseSensitive(part, "functionCall");
    if (!cJSON_IsObject(part))
      return protocol_error(resp, "candidates[0].content.parts[] is not an "
                                  "object");
    if (text) {
      if (!cJSON_IsString(text))
        return protocol_error(resp, "a part's text is not a string");
      st = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(part, "thought"))
               ? llmr_response_append_reasoning(resp, text->valuestring,
                                                strlen(text->valuestring))
               : llmr_response_append_text(resp, text->valuestring,
                                           strlen(text->valuestring));
      if (st != LLMR_OK)
        return st;
    } else if (fc) {
      const char *name = llmr__json_str(fc, "name");
      const char *id = llmr__json_str(fc, "id");
      const cJSON *args = cJSON_GetObjectItemCaseSensitive(fc, "args");
      char idbuf[64], *printed = NULL;
      if (!name)
        return protocol_error(resp, "functionCall without a name");
      if (args && !cJSON_IsObject(args) && !cJSON_IsNull(args))
        return protocol_error(resp, "functionCall.args is not an object");
      if (cJSON_IsObject(args) && !(printed = llmr__json_print(args)))
        return LLMR_E_NOMEM;
      if (!id || !*id) { /* Gemini 2.x sends no call ids */
        llmr__synth_call_id(idbuf, sizeof(idbuf));
        id = idbuf;
      }
      st = llmr_response_add_tool_call(resp, id, name,
                                       printed ? printed : "{}");
      llmr__free(printed);
      if (st != LLMR_OK)
        return st;
      *has_calls = 1;
    }
    /* inlineData, executableCode, signature-only parts...: not text */
  }
  return LLMR_OK;
}

static llmr_status gemini_classify(const llmr_provider *p,
                                   const llmr_http_response *http,
                                   llmr_response *resp);

static llmr_status gemini_parse(const llmr_provider *p,
                                const llmr_http_response *http,
                                llmr_response *resp) {
  size_t len, off;
  const char *body = llmr_http_response_body(http, &len), *end = NULL;
  cJSON *root = cJSON_ParseWithLengthOpts(body, len, &end, 0);
  const cJSON *cands, *cand, *content, *parts, *pf;
  const char *fr;
  int has_calls = 0;
  llmr_status st = LLMR_OK;

  if (root && end) /* only whitespace may follow the JSON value */
    for (off = (size_t)(end - body); off < len; off++)
      if (body[off] != ' ' && body[off] != '\n' && body[off] != '\r' &&
          body[off] != '\t') {
        cJSON_Delete(root);
        root = NULL;
        break;
      }
  if (!cJSON_IsObject(root)) {
    cJSON_Delete(root);
    return protocol_error(resp, "response body is not a JSON object");
  }
  if (cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(root, "error"))) {
    cJSON_Delete(root);
    return gemini_classify(p, http, resp);
  }
  cands = cJSON_GetObjectItemCaseSensitive(root, "candidates");
  if (cands && !cJSON_IsArray(cands)) {
    st = protocol_error(resp, "candidates is not an array");
    goto out;
  }
  cand = cJSON_GetArrayItem(cands, 0);
  pf = cJSON_GetObjectItemCaseSensitive(root, "promptFeedback");
  if (!cand) {
    /* The prompt itself was blocked: an answer with no text and finish
     * reason content_filter, as OpenAI reports a filtered completion. */
    if (!llmr__json_str(pf, "blockReason")) {
      st = protocol_error(resp, "response has no candidates");
      goto out;
    }
    fr = "content_filter";
  } else {
    if (!cJSON_IsObject(cand)) {
      st = protocol_error(resp, "candidates[0] is not an object");
      goto out;
    }
    content = cJSON_GetObjectItemCaseSensitive(cand, "content");
    parts = cJSON_GetObjectItemCaseSensitive(content, "parts");
    if ((content && !cJSON_IsObject(content)) ||
        (parts && !cJSON_IsArray(parts))) {
      st = protocol_error(resp, "candidates[0].content is not a Content");
      goto out;
    }
    if ((st = parse_parts(parts, resp, &has_calls)) != LLMR_OK)
      goto out;
    fr = finish_reason(llmr__json_str(cand, "finishReason"), has_calls);
  }
  if ((st = llmr_response_set_finish_reason(resp, fr)) != LLMR_OK ||
      (st = llmr_response_set_id(resp, llmr__json_str(root, "responseId"))) !=
          LLMR_OK)
    goto out;
  parse_usage(cJSON_GetObjectItemCaseSensitive(root, "usageMetadata"), resp);
out:
  cJSON_Delete(root);
  return st;
}

/* ---- errors ------------------------------------------------------------- */

/* The first error.details[] entry of the given @type. */
static const cJSON *detail(const cJSON *err, const char *type) {
  const cJSON *d;
  cJSON_ArrayForEach(d, cJSON_GetObjectItemCaseSensitive(err, "details")) {
    const char *t = llmr__json_str(d, "@type");
    if (t && strcmp(t, type) == 0)
      return d;
  }
  return NULL;
}

/* google.rpc.RetryInfo.retryDelay, a protobuf Duration in JSON: "37s",
 * "1.500s". -1 when absent or malformed. */
static double retry_delay(const cJSON *err) {
  const char *s = llmr__json_str(
      detail(err, "type.googleapis.com/google.rpc.RetryInfo"), "retryDelay");
  char *end;
  double d;
  if (!s || *s < '0' || *s > '9')
    return -1;
  d = strtod(s, &end);
  return (end[0] == 's' && end[1] == '\0' && isfinite(d) && d >= 0) ? d : -1;
}

/*
 * Error bodies are {"error": {"code", "message", "status", "details"}};
 * the status is the type (WIRE-NOTES "errors"). Classes from the
 * troubleshooting guide's table: an invalid key is 400 INVALID_ARGUMENT
 * with an ErrorInfo reason API_KEY_INVALID (-> auth); 400
 * FAILED_PRECONDITION means billing must be enabled (-> payment: try
 * another provider); the context-window error is a 400 "The input token
 * count (N) exceeds the maximum number of tokens allowed (M)."
 */
static llmr_status gemini_classify(const llmr_provider *p,
                                   const llmr_http_response *http,
                                   llmr_response *resp) {
  size_t len;
  const char *text = llmr_http_response_body(http, &len);
  cJSON *root = cJSON_ParseWithLength(text, len);
  const cJSON *err = cJSON_GetObjectItemCaseSensitive(root, "error");
  int code = llmr_http_response_status(http);
  const char *message = NULL, *type = NULL, *ecode = NULL, *reason;
  llmr_status st = llmr_status_from_http(code);
  int retryable = llmr__http_retryable(code);
  double after;
  (void)p;

  if (!cJSON_IsObject(err))
    err = root;
  if (root)
    llmr__error_fields(root, &message, &type, &ecode);
  reason = llmr__json_str(
      detail(err, "type.googleapis.com/google.rpc.ErrorInfo"), "reason");
  if (reason && strncmp(reason, "API_KEY_", 8) == 0) {
    st = LLMR_E_AUTH; /* API_KEY_INVALID, API_KEY_EXPIRED... */
    retryable = 0;
  } else if (type) {
    if (strcmp(type, "INVALID_ARGUMENT") == 0) {
      if (llmr__contains(message, "input token count") &&
          llmr__contains(message, "exceeds the maximum"))
        st = LLMR_E_CONTEXT_LENGTH;
    } else if (strcmp(type, "FAILED_PRECONDITION") == 0) {
      st = LLMR_E_PAYMENT;
      retryable = 0;
    } else if (strcmp(type, "UNAUTHENTICATED") == 0 ||
               strcmp(type, "PERMISSION_DENIED") == 0) {
      st = LLMR_E_AUTH;
      retryable = 0;
    } else if (strcmp(type, "NOT_FOUND") == 0) {
      st = LLMR_E_NOT_FOUND;
      retryable = 0;
    } else if (strcmp(type, "RESOURCE_EXHAUSTED") == 0) {
      st = LLMR_E_RATE_LIMITED;
      retryable = 1;
    } else if (strcmp(type, "INTERNAL") == 0) {
      st = LLMR_E_SERVER;
      retryable = 1;
    } else if (strcmp(type, "UNAVAILABLE") == 0) {
      st = LLMR_E_OVERLOADED;
      retryable = 1;
    } else if (strcmp(type, "DEADLINE_EXCEEDED") == 0) {
      st = LLMR_E_TIMEOUT;
      retryable = 1;
    }
  }
  if ((after = retry_delay(err)) < 0) /* Gemini sends no header, but */
    after = llmr__retry_after_from_headers(http);
  st = llmr__error_finish(http, resp, st, type, message, retryable, after);
  cJSON_Delete(root);
  return st;
}

/* ---- streaming ---------------------------------------------------------- */

/*
 * :streamGenerateContent?alt=sse sends `data: <GenerateContentResponse>`
 * events (CRLF framing, no event names) and no [DONE]: the stream simply
 * ends (js-genai ApiClient.processStreamResponse; WIRE-NOTES "Gemini").
 * Each chunk is a GenerateContentResponse holding the new parts only:
 * text, thought summaries (thought: true) and functionCall parts, which
 * the Gemini API sends whole, args an object (partial arguments exist only
 * behind toolConfig.functionCallingConfig.streamFunctionCallArguments,
 * which build_request never sets). usageMetadata is a running total (the
 * last one wins), finishReason comes on the last chunk and is the end
 * marker, and a data event {"error": {code, message, status}} may arrive
 * after the 200. A blocked prompt is one chunk with promptFeedback and no
 * candidates. Every chunk is read with parse_response's helpers, so the
 * final response equals the non-streaming one.
 */

/* Per-stream state; owns no memory. */
typedef struct gemini_stream {
  int has_calls;   /* a functionCall part came in some chunk */
  int finished;    /* a chunk carried a finishReason (or a blockReason) */
  int blocked;     /* promptFeedback.blockReason with no candidates */
  char native[48]; /* that finishReason, for finish_reason() */
} gemini_stream;

/* usageMetadata of a chunk: it replaces whatever an earlier chunk said. */
static void stream_usage(const cJSON *u, llmr_response *resp) {
  static const llmr_tokens kinds[] = {
      LLMR_TOKENS_PROMPT, LLMR_TOKENS_COMPLETION, LLMR_TOKENS_TOTAL,
      LLMR_TOKENS_CACHED, LLMR_TOKENS_REASONING};
  size_t i;
  if (!cJSON_IsObject(u))
    return;
  for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
    llmr_response_set_tokens(resp, kinds[i], -1);
  parse_usage(u, resp);
}

static llmr_status not_json(llmr_response *resp, const char *data,
                            size_t len) {
  char msg[128];
  size_t i, n = (size_t)snprintf(msg, sizeof(msg),
                                 "stream event is not a JSON object: ");
  for (i = 0; i < len && i < 40 && n + 1 < sizeof(msg); i++) {
    unsigned char c = (unsigned char)data[i];
    msg[n++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
  }
  msg[n] = '\0';
  return protocol_error(resp, msg);
}

static llmr_status gemini_stream_event(const llmr_provider *p, void *state,
                                       const char *event, const char *data,
                                       size_t len, llmr_response *resp) {
  gemini_stream *s = state;
  cJSON *root = cJSON_ParseWithLength(data, len);
  const cJSON *v, *cands, *cand, *content, *parts;
  const char *fr;
  llmr_status st = LLMR_OK;
  (void)p;
  (void)event; /* Gemini sends no event names */

  if (!cJSON_IsObject(root)) {
    cJSON_Delete(root);
    return not_json(resp, data, len);
  }
  /* an error after the 200: the type is its status (INTERNAL,
   * UNAVAILABLE...), and RetryInfo may say when to come back */
  v = cJSON_GetObjectItemCaseSensitive(root, "error");
  if (v && !cJSON_IsNull(v)) {
    double after = retry_delay(v);
    st = llmr__stream_error(resp, root);
    if (st != LLMR_E_NOMEM && after >= 0)
      resp->retry_after_s = after;
    cJSON_Delete(root);
    return st;
  }
  if (!llmr_response_id(resp) && llmr__json_str(root, "responseId") &&
      (st = llmr_response_set_id(resp, llmr__json_str(root, "responseId"))) !=
          LLMR_OK)
    goto out;
  cands = cJSON_GetObjectItemCaseSensitive(root, "candidates");
  if (cands && !cJSON_IsArray(cands)) {
    st = protocol_error(resp, "candidates is not an array");
    goto out;
  }
  if ((cand = cJSON_GetArrayItem(cands, 0))) {
    if (!cJSON_IsObject(cand)) {
      st = protocol_error(resp, "candidates[0] is not an object");
      goto out;
    }
    content = cJSON_GetObjectItemCaseSensitive(cand, "content");
    parts = cJSON_GetObjectItemCaseSensitive(content, "parts");
    if ((content && !cJSON_IsObject(content)) ||
        (parts && !cJSON_IsArray(parts))) {
      st = protocol_error(resp, "candidates[0].content is not a Content");
      goto out;
    }
    if ((st = parse_parts(parts, resp, &s->has_calls)) != LLMR_OK)
      goto out;
    /* proto3 JSON leaves the default enum value out; should it come
     * anyway, it says nothing about the end */
    fr = llmr__json_str(cand, "finishReason");
    if (fr && *fr && strcmp(fr, "FINISH_REASON_UNSPECIFIED") != 0) {
      snprintf(s->native, sizeof(s->native), "%s", fr);
      s->finished = 1;
    }
  } else if (llmr__json_str(
                 cJSON_GetObjectItemCaseSensitive(root, "promptFeedback"),
                 "blockReason")) {
    /* the prompt was blocked: as parse_response, no text and
     * content_filter; nothing follows */
    s->blocked = s->finished = 1;
  }
  /* a chunk without candidates (usage only) is not an error here */
  stream_usage(cJSON_GetObjectItemCaseSensitive(root, "usageMetadata"), resp);
  if (s->finished) {
    /* set again on any later chunk: a call after it would change STOP's
     * meaning */
    if ((st = llmr_response_set_finish_reason(
             resp, s->blocked ? "content_filter"
                              : finish_reason(s->native, s->has_calls))) !=
            LLMR_OK ||
        (st = llmr_response_stream_done(resp)) != LLMR_OK)
      goto out;
  }
out:
  cJSON_Delete(root);
  return st;
}

const llmr_provider_vt llmr__gemini_vt = {
    "gemini",               /* name */
    LLMR_PROVIDER_ABI_VERSION,
    sizeof(gemini_stream),  /* state_size */
    gemini_build,           /* build_request */
    gemini_parse,           /* parse_response */
    gemini_stream_event,    /* stream_event */
    gemini_classify,        /* classify_error */
};
