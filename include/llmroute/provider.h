/*
 * libllmroute provider adapter interface.
 *
 * UNSTABLE ABI until 1.0: the vtable carries abi_version so that a provider
 * built against an older layout is refused instead of misread.
 *
 * A provider adapter is a set of pure transforms. It never does I/O: the
 * library's transport sends what build_request produced and hands the reply
 * to parse_response or classify_error. Register one with
 * llmr_router_add_provider().
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef LLMROUTE_PROVIDER_H
#define LLMROUTE_PROVIDER_H

#include "../llmroute.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LLMR_PROVIDER_ABI_VERSION 1

/* A configured provider instance: its name, base URL, key and options.
 * Owned by the router; adapters only read it. */
typedef struct llmr_provider llmr_provider;

/* The HTTP request an adapter builds (URL, headers, body). */
typedef struct llmr_http_request llmr_http_request;

/* The HTTP reply an adapter reads (status, headers, body). */
typedef struct llmr_http_response llmr_http_response;

typedef struct llmr_provider_vt {
  /* Adapter name, e.g. "openai". Static string. */
  const char *name;

  /* Must be LLMR_PROVIDER_ABI_VERSION. */
  int abi_version;

  /* Bytes of per-stream state handed to stream_event, zeroed before each
   * streaming attempt and freed after it; 0 if none. There is no end hook,
   * so the state must not own memory. */
  size_t state_size;

  /* Fill `http` (URL, headers, JSON body) for `req` sent to `native_model`.
   * `stream` is non-zero for a streaming call. A request parameter the
   * provider does not support is dropped and noted on `resp` with
   * llmr_response_add_warning(). No I/O. Required. */
  llmr_status (*build_request)(const llmr_provider *p, const llmr_request *req,
                               const char *native_model, int stream,
                               llmr_http_request *http, llmr_response *resp);

  /* Parse a 2xx body into `resp` with the llmr_response_set_* functions.
   * Return LLMR_E_PROTOCOL (and set an error message) for a body that is not
   * what the provider documents. Required. */
  llmr_status (*parse_response)(const llmr_provider *p,
                                const llmr_http_response *http,
                                llmr_response *resp);

  /* Decode one server-sent event of a 2xx streaming reply into `resp`.
   * `event` is the SSE event type ("message" when the event had no
   * `event:` line); `data` is its data lines joined with '\n', data_len
   * bytes, NUL-terminated. Report what the event carries with the same
   * setters as parse_response: llmr_response_append_text() /
   * append_reasoning() for deltas, llmr_response_tool_call_delta() for
   * tool-call fragments (or llmr_response_add_tool_call() for a call that
   * arrives whole), set_tokens / set_finish_reason / set_id, and
   * llmr_response_stream_done() when the provider's end marker is seen: a
   * stream that ends without it is LLMR_E_PROTOCOL. During llmr_stream()
   * the setters also deliver the caller's events; when the caller cancels,
   * a setter returns LLMR_E_ABORTED and the adapter must return it. An
   * error the provider sends inside the stream: llmr_response_set_error()
   * and return its status. Any non-OK return ends the stream. A 2xx reply
   * that is a JSON document rather than an event stream goes to
   * parse_response instead. NULL when the adapter cannot stream:
   * llmr_stream() then sends a non-streaming request (build_request with
   * stream 0) and reports the whole answer as events once it arrives. */
  llmr_status (*stream_event)(const llmr_provider *p, void *state,
                              const char *event, const char *data,
                              size_t data_len, llmr_response *resp);

  /* Describe a non-2xx reply on `resp` with llmr_response_set_error(): status
   * class, the provider's message and error type, retryable, retry-after.
   * Returns the status it set. NULL means the library's generic mapping
   * (llmr_status_from_http() and the body's error.message). */
  llmr_status (*classify_error)(const llmr_provider *p,
                                const llmr_http_response *http,
                                llmr_response *resp);
} llmr_provider_vt;

/*
 * Register a provider named `name` (the slug prefix) that uses adapter `vt`.
 * A base URL is required: from config_json's "base_url" or the environment
 * (LLMR_<NAME>_BASE_URL); without one the call fails with LLMR_E_INVAL.
 * config_json may be NULL (then the environment must give the base URL) or
 * hold: "base_url", "api_key", "api_key_env"
 * (name of an environment variable holding the key), "key_required"
 * (bool, default true), "headers" (object of extra header strings) and
 * "options" (object of strings the adapter reads with
 * llmr_provider_option()). `vt` must stay valid for the router's lifetime;
 * `userdata` is handed back by llmr_provider_userdata(). A name already
 * registered is replaced. Not thread-safe against running calls: register
 * providers before sharing the router.
 */
LLMR_API llmr_status llmr_router_add_provider(llmr_router *r, const char *name,
                                              const llmr_provider_vt *vt,
                                              const char *config_json,
                                              void *userdata);

/* ---- reading the provider instance (borrowed strings) ------------------- */

LLMR_API const char *llmr_provider_name(const llmr_provider *p);
/* Base URL without a trailing slash. */
LLMR_API const char *llmr_provider_base_url(const llmr_provider *p);
/* The API key, or NULL when none is configured. Never log it. */
LLMR_API const char *llmr_provider_api_key(const llmr_provider *p);
/* An adapter option from the config's "options" object, or NULL. */
LLMR_API const char *llmr_provider_option(const llmr_provider *p,
                                          const char *key);
LLMR_API void *llmr_provider_userdata(const llmr_provider *p);

/* ---- building the HTTP request (arguments are copied) ------------------- */

LLMR_API llmr_status llmr_http_request_set_url(llmr_http_request *http,
                                               const char *url);
/* Add a header. `name` must not contain ':' or CR/LF, `value` no CR/LF. */
LLMR_API llmr_status llmr_http_request_add_header(llmr_http_request *http,
                                                  const char *name,
                                                  const char *value);
LLMR_API llmr_status llmr_http_request_set_body(llmr_http_request *http,
                                                const char *body, size_t len);

/* ---- reading the HTTP reply --------------------------------------------- */

LLMR_API int llmr_http_response_status(const llmr_http_response *http);
/* The body (NUL-terminated for convenience) and its length. Borrowed. */
LLMR_API const char *llmr_http_response_body(const llmr_http_response *http,
                                             size_t *len);
/* The last value of a header, matched case-insensitively, or NULL. */
LLMR_API const char *llmr_http_response_header(const llmr_http_response *http,
                                               const char *name);

/* ---- filling the response (arguments are copied) ------------------------ */

/* During llmr_stream() the text, reasoning and tool-call setters also
 * deliver the caller's events before they return, and return
 * LLMR_E_ABORTED (storing nothing) once the caller has cancelled. */

LLMR_API llmr_status llmr_response_append_text(llmr_response *resp,
                                               const char *text, size_t len);
LLMR_API llmr_status llmr_response_append_reasoning(llmr_response *resp,
                                                    const char *text,
                                                    size_t len);
/* Append a complete tool call. `arguments_json` NULL means "{}". */
LLMR_API llmr_status llmr_response_add_tool_call(llmr_response *resp,
                                                 const char *id,
                                                 const char *name,
                                                 const char *arguments_json);
/* A fragment of the streamed tool call the provider numbers `index` (its
 * own numbering: OpenAI's tool_calls[].index, Anthropic's block index).
 * The first fragment for an index creates the call; `id` and `name` may
 * come once, on any fragment (NULL when absent), and a call that never
 * gets an id receives a synthesised unique one. A fragment with a
 * different non-empty id than the call's starts a new call (hosts that
 * number every call 0). `args` (len bytes, NULL only when len is 0) is
 * appended to the arguments text; a call that ends with no argument text
 * has arguments "{}". */
LLMR_API llmr_status llmr_response_tool_call_delta(llmr_response *resp,
                                                   size_t index,
                                                   const char *id,
                                                   const char *name,
                                                   const char *args,
                                                   size_t len);
/* The provider's end-of-stream marker was seen: the answer is complete.
 * Events after it are still decoded (usage may follow the finish chunk). */
LLMR_API llmr_status llmr_response_stream_done(llmr_response *resp);
/* One of "stop", "length", "tool_calls", "content_filter", "error". */
LLMR_API llmr_status llmr_response_set_finish_reason(llmr_response *resp,
                                                     const char *reason);
LLMR_API llmr_status llmr_response_set_tokens(llmr_response *resp,
                                              llmr_tokens kind, int64_t n);
LLMR_API llmr_status llmr_response_set_id(llmr_response *resp,
                                          const char *id);
LLMR_API llmr_status llmr_response_add_warning(llmr_response *resp,
                                               const char *warning);
/* Record an error. `type` (the provider's error type) may be NULL;
 * retry_after_s < 0 means none. */
LLMR_API llmr_status llmr_response_set_error(llmr_response *resp,
                                             llmr_status status,
                                             const char *type,
                                             const char *message,
                                             int retryable,
                                             double retry_after_s);

/* Generic status class of an HTTP status code: 401/403 LLMR_E_AUTH,
 * 402 LLMR_E_PAYMENT, 404 LLMR_E_NOT_FOUND, 408 LLMR_E_TIMEOUT,
 * 413 LLMR_E_CONTEXT_LENGTH, 429 LLMR_E_RATE_LIMITED, 503/529
 * LLMR_E_OVERLOADED, other 5xx LLMR_E_SERVER, other 4xx
 * LLMR_E_BAD_REQUEST, 2xx LLMR_OK, anything else (1xx, 3xx)
 * LLMR_E_PROTOCOL. */
LLMR_API llmr_status llmr_status_from_http(int http_status);

/* Seconds to wait from a Retry-After value: delta-seconds or an HTTP-date.
 * -1 when it does not parse. */
LLMR_API double llmr_parse_retry_after(const char *value);

#ifdef __cplusplus
}
#endif

#endif /* LLMROUTE_PROVIDER_H */
