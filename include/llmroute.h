/*
 * libllmroute - one C API for every hosted LLM, with fallback across models,
 * streaming and a local ledger. No daemon, no middleman.
 *
 * This is the only header an application includes.
 *
 * Conventions (see llmroute(3)):
 *  - Every function that can fail returns an llmr_status (LLMR_OK == 0,
 *    errors are negative). Out-parameters come last.
 *  - A `const char *` argument is borrowed for the duration of the call only;
 *    the library copies whatever it keeps.
 *  - A `const char *` return value is borrowed from the object it came from
 *    and stays valid until that object is freed.
 *  - A `char *` return value belongs to the caller: release it with
 *    llmr_free().
 *  - Every *_new has a matching *_free, and *_free(NULL) does nothing.
 *  - The library never prints, never calls abort() or exit().
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef LLMROUTE_H
#define LLMROUTE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- version ------------------------------------------------------------ */

#define LLMR_VERSION_MAJOR 0
#define LLMR_VERSION_MINOR 1
#define LLMR_VERSION_PATCH 0
#define LLMR_VERSION_STRING "0.1.0"
/* 0xMMmmpp: compare with >= to test for a feature's presence. */
#define LLMR_VERSION_NUM                                                       \
  ((LLMR_VERSION_MAJOR << 16) | (LLMR_VERSION_MINOR << 8) | LLMR_VERSION_PATCH)

/* ---- symbol export ------------------------------------------------------ */

#if defined(LLMR_STATIC)
#define LLMR_API
#elif defined(_WIN32)
#ifdef LLMR_BUILDING
#define LLMR_API __declspec(dllexport)
#else
#define LLMR_API __declspec(dllimport)
#endif
#elif defined(__GNUC__) || defined(__clang__)
#define LLMR_API __attribute__((visibility("default")))
#else
#define LLMR_API
#endif

/* ---- status codes ------------------------------------------------------- */

/*
 * X-macro table: NAME, value, description. Codes are only ever appended;
 * a value is never reused or removed.
 */
#define LLMR_STATUS_MAP(XX)                                                    \
  XX(OK, 0, "success")                                                         \
  XX(E_NOMEM, -1, "out of memory")                                             \
  XX(E_INVAL, -2, "invalid argument")                                          \
  XX(E_TRANSPORT, -3, "could not connect to the provider")                     \
  XX(E_TIMEOUT, -4, "timed out")                                               \
  XX(E_TLS, -5, "TLS handshake or certificate verification failed")            \
  XX(E_AUTH, -6, "authentication failed or permission denied")                 \
  XX(E_RATE_LIMITED, -7, "rate limited by the provider")                       \
  XX(E_OVERLOADED, -8, "provider overloaded")                                  \
  XX(E_SERVER, -9, "provider server error")                                    \
  XX(E_BAD_REQUEST, -10, "request rejected by the provider")                   \
  XX(E_NOT_FOUND, -11, "model or endpoint not found")                          \
  XX(E_PAYMENT, -12, "insufficient credits or quota")                          \
  XX(E_CONTEXT_LENGTH, -13, "prompt exceeds the model's context window")       \
  XX(E_CONTENT_FILTER, -14, "blocked by the provider's content filter")        \
  XX(E_PROTOCOL, -15, "malformed response from the provider")                  \
  XX(E_TOO_LARGE, -16, "response exceeded the size cap")                       \
  XX(E_ABORTED, -17, "aborted by the caller")                                  \
  XX(E_ALL_FAILED, -18, "every model in the fallback list failed")             \
  XX(E_NO_PROVIDER, -19, "no provider registered for the model slug")          \
  XX(E_NO_KEY, -20, "no API key configured for the provider")                  \
  XX(E_CAPABILITY, -21, "model lacks a capability the request needs")          \
  XX(E_BUDGET, -22, "the call would exceed a budget")                          \
  XX(E_PROVIDER, -23, "provider returned an error")                            \
  XX(E_IO, -24, "a file could not be read or written")                        \
  XX(E_CORRUPT, -25, "the ledger file is damaged or was altered")            \
  XX(E_COOLDOWN, -26, "skipped: the model is cooling down after failures")

typedef enum llmr_status {
#define LLMR__STATUS_ENUM(name, val, desc) LLMR_##name = val,
  LLMR_STATUS_MAP(LLMR__STATUS_ENUM)
#undef LLMR__STATUS_ENUM
} llmr_status;

/* Human-readable description of a status ("timed out"). Never NULL; a static
 * string. Thread-safe. */
LLMR_API const char *llmr_status_str(llmr_status status);

/* The status's symbolic name ("LLMR_E_TIMEOUT"), or "LLMR_E_UNKNOWN" for a
 * value not in the table. A static string. Thread-safe. */
LLMR_API const char *llmr_status_name(llmr_status status);

/* Runtime version string, e.g. "0.1.0". Static. */
LLMR_API const char *llmr_version(void);

/* Runtime version number (LLMR_VERSION_NUM of the library actually loaded). */
LLMR_API unsigned llmr_version_num(void);

/* Release memory the library handed to the caller as `char *`. NULL is fine. */
LLMR_API void llmr_free(void *ptr);

/* Size of the error buffers the *_ex functions take; shorter buffers are
 * allowed and get a truncated message. */
#define LLMR_ERRBUF_SIZE 256

/* ---- opaque types ------------------------------------------------------- */

typedef struct llmr_router llmr_router;     /* thread-safe, shared */
typedef struct llmr_request llmr_request;   /* one thread at a time */
typedef struct llmr_response llmr_response; /* one thread at a time */
typedef struct llmr_ledger llmr_ledger;     /* thread-safe, shared */

/* ---- requests ----------------------------------------------------------- */

typedef enum llmr_role {
  LLMR_ROLE_SYSTEM = 0,
  LLMR_ROLE_USER = 1,
  LLMR_ROLE_ASSISTANT = 2,
  LLMR_ROLE_TOOL = 3,
  LLMR_ROLE_DEVELOPER = 4 /* OpenAI's newer name for system */
} llmr_role;

/* Create an empty chat request. *out is set to NULL on failure.
 * Free with llmr_request_free(). */
LLMR_API llmr_status llmr_request_new(llmr_request **out);

/* Free a request and everything it holds. NULL is a no-op. */
LLMR_API void llmr_request_free(llmr_request *req);

/* Parse an OpenAI Chat Completions request body (model, messages, tools,
 * tool_choice, response_format, temperature, top_p, max_tokens or
 * max_completion_tokens, stop, seed, user, reasoning_effort...).
 * `model`, `models`, `stream` and `stream_options` are accepted and ignored
 * here (the call decides them); "llmroute": {"policy": {...}} is the
 * library's own and sets the call's policy as llmr_request_set_policy()
 * does (never sent); other unknown fields are kept and passed through
 * unchanged to OpenAI-compatible providers.
 * On failure *out is NULL and, if errbuf is not NULL, errbuf receives a
 * NUL-terminated message naming the bad field, e.g.
 * "messages[1].role: expected one of system, developer, user, assistant, tool".
 * `json` is borrowed; len may be 0 when json is NUL-terminated. */
LLMR_API llmr_status llmr_request_from_json(const char *json, size_t len,
                                            llmr_request **out, char *errbuf,
                                            size_t errbuf_size);

/* The request as an OpenAI Chat Completions JSON body, without `model`.
 * Caller frees the result with llmr_free(). NULL on out-of-memory. */
LLMR_API char *llmr_request_to_json(const llmr_request *req);

/* Append a message with text content. `content` may be NULL for an assistant
 * message that only carries tool calls. LLMR_ROLE_TOOL is refused here
 * (LLMR_E_INVAL): a tool result needs its call id, so use
 * llmr_request_add_tool_result(). Copies its arguments. */
LLMR_API llmr_status llmr_request_add_message(llmr_request *req,
                                              llmr_role role,
                                              const char *content);

/* Add a tool call to the last message, which must be an assistant message
 * (LLMR_E_INVAL otherwise). `arguments_json` is the JSON text of the
 * arguments, as OpenAI sends it ("{\"city\":\"Paris\"}"). */
LLMR_API llmr_status llmr_request_add_tool_call(llmr_request *req,
                                                const char *id,
                                                const char *name,
                                                const char *arguments_json);

/* Append a tool-result message (role tool) answering tool call `tool_call_id`. */
LLMR_API llmr_status llmr_request_add_tool_result(llmr_request *req,
                                                  const char *tool_call_id,
                                                  const char *content);

/* Declare a function tool. `parameters_json` is a JSON Schema object as text,
 * or NULL for a tool without parameters. LLMR_E_INVAL if it does not parse. */
LLMR_API llmr_status llmr_request_add_tool(llmr_request *req, const char *name,
                                           const char *description,
                                           const char *parameters_json);

/* Sampling and limits. Values out of range give LLMR_E_INVAL and leave the
 * request unchanged: temperature 0..2, top_p 0..1, max_tokens >= 1. */
LLMR_API llmr_status llmr_request_set_temperature(llmr_request *req,
                                                  double temperature);
LLMR_API llmr_status llmr_request_set_top_p(llmr_request *req, double top_p);
LLMR_API llmr_status llmr_request_set_max_tokens(llmr_request *req,
                                                 int64_t max_tokens);
LLMR_API llmr_status llmr_request_set_seed(llmr_request *req, int64_t seed);

/* Append one stop sequence (at most 16; OpenAI itself takes 4). */
LLMR_API llmr_status llmr_request_add_stop(llmr_request *req,
                                           const char *stop);

/* Tags recorded with the call (and, later, in the ledger). The user tag is
 * also sent as OpenAI's `user` where the provider accepts it. NULL clears. */
LLMR_API llmr_status llmr_request_set_app(llmr_request *req, const char *app);
LLMR_API llmr_status llmr_request_set_user(llmr_request *req,
                                           const char *user);

/* Reasoning ("thinking") knob, one for every provider: an effort
 * ("minimal", "low", "medium", "high") and/or a token budget (0 = none).
 * Each adapter maps it to its provider (OpenAI reasoning_effort, Anthropic
 * thinking.budget_tokens, Gemini thinkingConfig.thinkingBudget). effort
 * NULL and budget 0 clear it. LLMR_E_INVAL for an unknown effort or a
 * negative budget. */
LLMR_API llmr_status llmr_request_set_reasoning(llmr_request *req,
                                                const char *effort,
                                                int64_t budget_tokens);

/* Tool choice: "auto", "none", "required", or the name of one declared
 * function to force. NULL clears. */
LLMR_API llmr_status llmr_request_set_tool_choice(llmr_request *req,
                                                  const char *choice);

/* Response format as OpenAI's JSON object, e.g. {"type":"json_object"} or
 * {"type":"json_schema","json_schema":{"name":..,"schema":{..}}}. NULL
 * clears. LLMR_E_INVAL if it does not parse or has no known type. */
LLMR_API llmr_status llmr_request_set_response_format(llmr_request *req,
                                                      const char *json);

/* Append an image to the last message (which must be a user message):
 * an http(s) URL or a data URL ("data:image/png;base64,...").
 * `detail` ("low", "high", "auto") may be NULL. */
LLMR_API llmr_status llmr_request_add_image(llmr_request *req,
                                            const char *url,
                                            const char *detail);

/* Number of messages in the request. */
LLMR_API size_t llmr_request_message_count(const llmr_request *req);

/* Fallback policy for calls made with this request, over the router's
 * (config key "policy"): a JSON object with the same keys, e.g.
 * {"retries": 2, "deadline_ms": 8000, "hedge_ms": 400,
 *  "fallback_on": {"bad_request": true, "rate_limited": "fallback"}}.
 * Only "cooldown": true | false is allowed here (the circuit settings are
 * the router's). NULL clears. LLMR_E_INVAL, leaving the request unchanged,
 * for a document that does not parse or has an unknown key or value.
 * llmr_request_from_json() reads the same object from "llmroute":
 * {"policy": {...}}. See llmroute-errors(3) for the table. */
LLMR_API llmr_status llmr_request_set_policy(llmr_request *req,
                                             const char *policy_json);

/* ---- router ------------------------------------------------------------- */

/*
 * Create a router. config_json may be NULL: every built-in provider is then
 * configured from the environment (<PROVIDER>_API_KEY for keys,
 * LLMR_<PROVIDER>_BASE_URL for base URLs). A config JSON document can set
 * timeouts, caps, TLS trust and per-provider settings, and can add more
 * OpenAI-compatible hosts; see llmr_router_new(3) for its fields.
 *
 * The router is thread-safe: any number of threads may call llmr_complete()
 * on it at once. Free it with llmr_router_free() once no call is running.
 */
LLMR_API llmr_status llmr_router_new(const char *config_json,
                                     llmr_router **out);

/* Same as llmr_router_new(), with a message on failure in errbuf (may be
 * NULL), e.g. "providers.openai.base_url: expected a string". */
LLMR_API llmr_status llmr_router_new_ex(const char *config_json,
                                        llmr_router **out, char *errbuf,
                                        size_t errbuf_size);

/* Free a router, its connection pool and providers. NULL is a no-op. No call
 * may be running on it. */
LLMR_API void llmr_router_free(llmr_router *r);

/*
 * Run a chat completion, trying each slug of `models` in order
 * ("provider/model-id"; the model id may itself contain '/').
 * The router moves on to the next slug when a model is unreachable, times
 * out, fails TLS, is rate limited or overloaded, answers 5xx or garbage,
 * refuses the key (401/403) or the credit (402), does not know the model
 * (404), finds the prompt too long, lacks a capability the request needs
 * (model catalog), or its provider is unknown or has no key. It stops at
 * errors the request itself caused (400/422, LLMR_E_INVAL), at a content
 * filter, at the response size cap and on out-of-memory. That is the
 * default fallback policy (table in llmroute-errors(3)); the router config
 * key "policy" and llmr_request_set_policy() change it per error class and
 * add retries (backoff, Retry-After), a deadline, per-attempt limits and
 * hedging. Slugs whose model or provider is cooling down after failures or
 * a rate limit are skipped (LLMR_E_COOLDOWN in the trace); when all are,
 * the call fails at once with LLMR_E_ALL_FAILED and
 * llmr_response_retry_after() says when to try again. An entry of `models`
 * may be "slug|slug" or a group of the config key "groups" (load balancing,
 * llmr_router_new(3)).
 *
 * *out always receives a response object (unless out is NULL or memory ran
 * out), success or not, which the caller frees with llmr_response_free().
 * The return value equals llmr_response_status(*out).
 * Thread-safe; `req` is only read.
 */
LLMR_API llmr_status llmr_complete(llmr_router *r, const char *const *models,
                                   size_t n_models, const llmr_request *req,
                                   llmr_response **out);

/*
 * JSON in, JSON out, for FFI callers: an OpenAI Chat Completions request
 * with `model` (a slug) or `models` (an array of slugs), optionally
 * "llmroute": {"policy": {...}} (see llmr_request_set_policy()), and an OpenAI
 * chat.completion document back, with an extra "llmroute" object (provider,
 * native model, attempts). On failure the document is
 * {"error": {"message", "type", "code", "http_status", "retryable",
 * "retry_after_s"}, "llmroute": {...}}. *response_json is set in both cases
 * (NULL only on out-of-memory) and the caller frees it with llmr_free().
 */
LLMR_API llmr_status llmr_complete_json(llmr_router *r,
                                        const char *request_json,
                                        char **response_json);

/* ---- streaming ---------------------------------------------------------- */

/* What an event reports. Values are only ever appended. */
typedef enum llmr_event_type {
  LLMR_EVENT_ATTEMPT = 0,   /* a slug is about to be tried */
  LLMR_EVENT_TEXT = 1,      /* a piece of the answer text */
  LLMR_EVENT_REASONING = 2, /* a piece of reasoning text */
  LLMR_EVENT_TOOL_CALL = 3, /* a piece of a tool call's arguments */
  LLMR_EVENT_USAGE = 4,     /* token counts are final (before DONE) */
  LLMR_EVENT_FALLBACK = 5,  /* the attempt failed before any content; the
                               next slug is tried */
  LLMR_EVENT_DONE = 6,      /* the answer is complete (the last event) */
  LLMR_EVENT_ERROR = 7      /* the call failed (the last event) */
} llmr_event_type;

/*
 * One streaming event. The library allocates it and fills it; the callback
 * only reads it. Fields may be appended in later versions (never removed or
 * reordered), so do not allocate, copy by value or sizeof() this struct.
 * Every pointer is valid only during the callback; fields that do not apply
 * to an event are NULL / 0.
 */
typedef struct llmr_event {
  llmr_event_type type;
  /* TEXT / REASONING: the delta; TOOL_CALL: an argument fragment (may be
   * empty on a call's first event). `len` bytes, also NUL-terminated. */
  const char *text;
  size_t len;
  /* TOOL_CALL: the call's position in the response, as for
   * llmr_response_tool_call_id(response, tool_index). */
  size_t tool_index;
  /* TOOL_CALL: id and name on the first event of each call, NULL after. */
  const char *tool_id;
  const char *tool_name;
  /* The slug being tried ("openai/gpt-4o"), its provider ("openai") and the
   * provider's model id ("gpt-4o"): set from ATTEMPT on, for every event of
   * that attempt. provider / native_model are NULL when the slug names no
   * registered provider. */
  const char *model;
  const char *provider;
  const char *native_model;
  /* DONE: the normalised finish reason ("stop", "length", "tool_calls",
   * "content_filter"), or NULL when the provider gave none. */
  const char *finish_reason;
  /* FALLBACK: the failed attempt's status, message and HTTP status (0 when
   * no HTTP reply came). ERROR: the call's final status and message, as
   * llmr_response_status() / llmr_response_error() will report them. */
  llmr_status status;
  const char *error;
  int http_status;
  /* The response being built (text so far, tool calls, usage via
   * llmr_response_tokens()). Read it with the llmr_response_* getters only;
   * never free it. Strings read from it are valid during the callback. */
  const llmr_response *response;
} llmr_event;

/* Called on the thread that called llmr_stream(), in order: ATTEMPT, then
 * content events, and USAGE + DONE, or FALLBACK and the next ATTEMPT (the
 * next slug, or the same one again when the policy retries it), or ERROR.
 * A hedge that wins sends its own ATTEMPT before its first content. Return 0 to go on; non-zero cancels the call (LLMR_E_ABORTED) and
 * the callback is not called again. The return value of USAGE, DONE and
 * ERROR is ignored (nothing is left to cancel). The callback may call the
 * library (even start another call), but must not free ev->response. */
typedef int (*llmr_stream_cb)(const llmr_event *ev, void *user);

/*
 * Like llmr_complete(), but the answer arrives through `cb` as the provider
 * produces it. Same slugs, catalog routing, capability skips and fallback
 * table, with one rule more: the router moves to the next slug only while
 * no content event (TEXT, REASONING, TOOL_CALL) has reached the callback.
 * A failure after that is an ERROR event and a failed response that keeps
 * the partial text, tool calls and token counts (estimated when the
 * provider sent none): output is never spliced from two models.
 *
 * A stream that ends before its provider's end marker (OpenAI-compatible
 * hosts: `data: [DONE]` or a chunk with a finish_reason) is LLMR_E_PROTOCOL,
 * however cleanly the connection closed; a broken connection is
 * LLMR_E_TRANSPORT; the router's first_byte_timeout_ms / idle_timeout_ms
 * are LLMR_E_TIMEOUT. An error the provider sends inside the stream is
 * reported with its own type, message and retryable flag.
 *
 * On success the response holds the assembled text, reasoning, tool calls
 * (complete argument strings), usage and finish reason: what llmr_complete()
 * returns for the same answer. *out is always set as for llmr_complete()
 * (NULL only when out is NULL or memory ran out); the return value equals
 * llmr_response_status(*out). `cb` may be NULL: nothing is reported, and
 * with no callback to have seen content the router falls back as
 * llmr_complete() does.
 * Invalid arguments return LLMR_E_INVAL without calling the callback.
 * Thread-safe like llmr_complete(); `req` is only read.
 */
LLMR_API llmr_status llmr_stream(llmr_router *r, const char *const *models,
                                 size_t n_models, const llmr_request *req,
                                 llmr_stream_cb cb, void *user,
                                 llmr_response **out);

/* Receives one OpenAI chat.completion.chunk JSON document (NUL-terminated,
 * valid during the call only). Non-zero cancels, as for llmr_stream_cb. */
typedef int (*llmr_stream_json_cb)(const char *chunk_json, void *user);

/*
 * llmr_stream() for JSON callers: the request as for llmr_complete_json()
 * (`stream` and `stream_options` are ignored). `cb` receives OpenAI
 * chat.completion.chunk documents as the answer arrives: one per content
 * event (the first carries delta.role "assistant"; content, reasoning or
 * tool_calls deltas, a call's first fragment with index, id, type and
 * function.name, later ones with index and function.arguments), then one
 * with the finish_reason, then one with "choices": [] and the usage.
 * `model` in every chunk is the slug that answers. *response_json receives
 * the final chat.completion (or error) document exactly as
 * llmr_complete_json() returns it; the caller frees it with llmr_free().
 */
LLMR_API llmr_status llmr_stream_json(llmr_router *r, const char *request_json,
                                      llmr_stream_json_cb cb, void *user,
                                      char **response_json);

/* ---- responses ---------------------------------------------------------- */

typedef enum llmr_tokens {
  LLMR_TOKENS_PROMPT = 0,     /* includes cached tokens */
  LLMR_TOKENS_COMPLETION = 1, /* includes reasoning tokens */
  LLMR_TOKENS_TOTAL = 2,
  LLMR_TOKENS_CACHED = 3,     /* prompt tokens read from a cache */
  LLMR_TOKENS_REASONING = 4,  /* completion tokens spent reasoning */
  LLMR_TOKENS_CACHE_WRITE = 5 /* prompt tokens written to a cache */
} llmr_tokens;

/* Free a response. NULL is a no-op. */
LLMR_API void llmr_response_free(llmr_response *resp);

/* The call's outcome; LLMR_OK when some model answered. */
LLMR_API llmr_status llmr_response_status(const llmr_response *resp);

/* Answer text ("" when none). Borrowed. */
LLMR_API const char *llmr_response_text(const llmr_response *resp);

/* Reasoning text the provider returned apart from the answer ("" if none). */
LLMR_API const char *llmr_response_reasoning(const llmr_response *resp);

/* Normalised finish reason: "stop", "length", "tool_calls",
 * "content_filter", "error"; a value no rule maps is passed through as the
 * provider sent it. NULL when no model answered. */
LLMR_API const char *llmr_response_finish_reason(const llmr_response *resp);

/* Token counts with OpenAI semantics; -1 when the provider did not say. */
LLMR_API int64_t llmr_response_tokens(const llmr_response *resp,
                                      llmr_tokens kind);

/* 1 when the provider reported no usage and the library estimated the
 * token counts instead (about 4 characters a token of the prompt's message
 * text, and of the answer text, reasoning and tool-call arguments it
 * received); 0 when the counts are the provider's (or unknown). */
LLMR_API int llmr_response_usage_estimated(const llmr_response *resp);

/* Tool calls the model asked for. Index 0..count-1; out of range gives NULL.
 * Arguments are the JSON text of the arguments. Borrowed. */
LLMR_API size_t llmr_response_tool_call_count(const llmr_response *resp);
LLMR_API const char *llmr_response_tool_call_id(const llmr_response *resp,
                                                size_t i);
LLMR_API const char *llmr_response_tool_call_name(const llmr_response *resp,
                                                  size_t i);
LLMR_API const char *
llmr_response_tool_call_arguments(const llmr_response *resp, size_t i);

/* Who answered: the slug as asked ("openai/gpt-4o-mini"), the provider name
 * ("openai") and the provider's own model id ("gpt-4o-mini"). NULL when no
 * model answered. Borrowed. */
LLMR_API const char *llmr_response_model(const llmr_response *resp);
LLMR_API const char *llmr_response_provider(const llmr_response *resp);
LLMR_API const char *llmr_response_native_model(const llmr_response *resp);

/* The provider's response id ("chatcmpl-..."), or NULL. */
LLMR_API const char *llmr_response_id(const llmr_response *resp);

/* Error details of a failed call (of its last attempt). The message is never
 * NULL for a failed call (except after LLMR_E_NOMEM); the type is the provider's own error type
 * ("rate_limit_error"), or NULL. http_status is 0 when no HTTP response was
 * received. retry_after is in seconds, or -1 when the provider gave none. */
LLMR_API const char *llmr_response_error(const llmr_response *resp);
LLMR_API const char *llmr_response_error_type(const llmr_response *resp);
LLMR_API int llmr_response_http_status(const llmr_response *resp);
LLMR_API int llmr_response_retryable(const llmr_response *resp);
LLMR_API double llmr_response_retry_after(const llmr_response *resp);

/* Parameters a provider does not support and that were dropped, as
 * "provider: field" strings. */
LLMR_API size_t llmr_response_warning_count(const llmr_response *resp);
LLMR_API const char *llmr_response_warning(const llmr_response *resp,
                                           size_t i);

/* The attempt trace: one entry per try, in order. */
LLMR_API size_t llmr_response_attempt_count(const llmr_response *resp);
LLMR_API const char *llmr_response_attempt_model(const llmr_response *resp,
                                                 size_t i);
LLMR_API const char *
llmr_response_attempt_provider(const llmr_response *resp, size_t i);
LLMR_API llmr_status llmr_response_attempt_status(const llmr_response *resp,
                                                  size_t i);
LLMR_API int llmr_response_attempt_http_status(const llmr_response *resp,
                                               size_t i);
/* Error message of attempt i, or NULL when it succeeded. */
LLMR_API const char *llmr_response_attempt_error(const llmr_response *resp,
                                                 size_t i);
LLMR_API double llmr_response_attempt_duration_ms(const llmr_response *resp,
                                                  size_t i);
/* Whether a later try of attempt i's slug could succeed (408, 409, 429,
 * 5xx, connection failures, timeouts, or the provider's x-should-retry). */
LLMR_API int llmr_response_attempt_retryable(const llmr_response *resp,
                                             size_t i);
/* Reply body bytes attempt i received (0 when none). */
LLMR_API size_t llmr_response_attempt_bytes(const llmr_response *resp,
                                            size_t i);
/* 1 when attempt i sent nothing: its model was cooling down
 * (LLMR_E_COOLDOWN), its provider refused the key earlier in the call,
 * or it had no key, no provider, a missing capability or no budget (the
 * attempt's status says which). Such an attempt leaves no ledger record. */
LLMR_API int llmr_response_attempt_skipped(const llmr_response *resp,
                                           size_t i);
/* 1 when attempt i was a hedge: started in parallel with the attempt
 * before it because that one had received no byte after hedge_ms. */
LLMR_API int llmr_response_attempt_hedged(const llmr_response *resp,
                                          size_t i);

/* The response as an OpenAI chat.completion JSON document (or an error
 * document), as llmr_complete_json() returns it. Caller frees with
 * llmr_free(). NULL on out-of-memory. */
LLMR_API char *llmr_response_to_json(const llmr_response *resp);

/* The call's id: 32 lowercase hex digits from the system's random source,
 * new for every llmr_complete()/llmr_stream() call, and the "id" of every
 * ledger record the call leaves. Borrowed; NULL only for a NULL resp. */
LLMR_API const char *llmr_response_request_id(const llmr_response *resp);

/* What the call cost, in nano-dollars (1e-9 USD): the sum over its attempts
 * that reached a provider, priced from the model catalog (see
 * llmroute-ledger(3) for the arithmetic and its single rounding). 0 when no
 * attempt reached a provider; -1 when some attempt used tokens of a model
 * whose price is not known. Works with or without a ledger. */
LLMR_API int64_t llmr_response_cost_nanousd(const llmr_response *resp);

/* The cost of attempt i alone, as above; -1 when unknown or out of range. */
LLMR_API int64_t llmr_response_attempt_cost_nanousd(const llmr_response *resp,
                                                    size_t i);

/* ---- ledger ------------------------------------------------------------- */

/*
 * A local, append-only, hash-chained record of every attempt that reached a
 * provider: tokens, cost, latency, who answered, app and user tags; never
 * prompt text or keys. The file format, pricing and budget rules are in
 * llmroute-ledger(3).
 */

/* Budget windows (UTC calendar day, UTC calendar month, all time). */
typedef enum llmr_window {
  LLMR_WINDOW_DAY = 0,
  LLMR_WINDOW_MONTH = 1,
  LLMR_WINDOW_ALL = 2
} llmr_window;

/*
 * Open (or create) the ledger file `path`. options_json may be NULL, or an
 * object with "fsync" ("always" (default), "never", or a number of
 * milliseconds), "budgets" ([{"app": TAG or absent, "window": "day" |
 * "month" | "all", "usd": N}, ...]), "budget_fallback" (true: a call refused
 * by a budget moves on to the next slug; default true), "allow_unpriced"
 * (default false), "readonly" (default false) and "create" (default true).
 * A torn last line (a crash in mid-write) is found, reported by
 * llmr_ledger_info() and set aside; it is never truncated or rewritten.
 * A file that is not a ledger (binary data, other JSON, a record with a
 * missing field) is refused with LLMR_E_CORRUPT and left untouched.
 * Thread-safe; several processes may share the file, each with a ledger
 * of its own (after fork(), open another in the child).
 * Close with llmr_ledger_close().
 */
LLMR_API llmr_status llmr_ledger_open(const char *path,
                                      const char *options_json,
                                      llmr_ledger **out);

/* llmr_ledger_open() with a message on failure in errbuf (may be NULL),
 * e.g. "ledger.jsonl: offset 0: not a ledger record: binary data". */
LLMR_API llmr_status llmr_ledger_open_ex(const char *path,
                                         const char *options_json,
                                         llmr_ledger **out, char *errbuf,
                                         size_t errbuf_size);

/* Flush (fsync unless the policy is "never") and close. NULL is a no-op.
 * No router may still use the ledger. */
LLMR_API void llmr_ledger_close(llmr_ledger *l);

/* Set the spending limit of one app tag (app NULL: all calls together) in
 * one window, in US dollars; a negative usd removes it. Before each
 * attempt the router reserves the attempt's worst case and refuses it
 * with LLMR_E_BUDGET, before any network traffic, when that would not fit.
 * Thread-safe. */
LLMR_API llmr_status llmr_ledger_set_budget(llmr_ledger *l, const char *app,
                                            llmr_window window, double usd);

/*
 * Totals and breakdowns. query_json may be NULL or an object with "by"
 * ("model", "provider", "native", "app", "user", "status", "hour", "day",
 * "month"), "bucket" ("hour", "day", "month": a time series per group),
 * "since" / "until" (Unix milliseconds, or "2026-11-24",
 * "2026-11-24T10:00:00Z", "-7d", "-12h"; since inclusive, until exclusive),
 * "app" and "model" (keep only these). *result_json receives a JSON
 * document (caller frees with llmr_free()) with "total", "groups" and
 * "series"; costs are integer nano-dollars plus an exact "cost_usd"
 * string. See llmr_ledger_query(3). Thread-safe.
 */
LLMR_API llmr_status llmr_ledger_query(llmr_ledger *l, const char *query_json,
                                       char **result_json);

/* Check the hash chain of the ledger file at `path` without opening it for
 * writing. LLMR_OK when every record is intact and in order (torn lines set
 * aside after a crash are reported but allowed), LLMR_E_CORRUPT when a
 * record was edited, dropped, reordered or is not a record, LLMR_E_IO when
 * the file cannot be read. *report_json (may be NULL) receives the details
 * in every case but LLMR_E_NOMEM / LLMR_E_INVAL; caller frees. */
LLMR_API llmr_status llmr_ledger_verify(const char *path, char **report_json);

/* The ledger's state as JSON: path, record count, head hash, torn lines set
 * aside, records this object appended, write errors and the last one,
 * budgets with what they have spent and reserved. Caller frees. */
LLMR_API llmr_status llmr_ledger_info(llmr_ledger *l, char **info_json);

/* Attach a ledger to a router (NULL detaches). The ledger is borrowed: it
 * must stay open until the router is freed or another ledger is set. Set
 * it before calls start, not while they run. A router created with the
 * config key "ledger" owns that ledger; setting another one closes it. */
LLMR_API llmr_status llmr_router_set_ledger(llmr_router *r, llmr_ledger *l);

#ifdef __cplusplus
}
#endif

#endif /* LLMROUTE_H */
