/*
 * Internal declarations shared by the library's modules. Not installed.
 * Non-static internal symbols use the llmr__ prefix and hidden visibility.
 */
#ifndef LLMR_INTERNAL_H
#define LLMR_INTERNAL_H

#include "llmroute.h"
#include "llmroute/provider.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* ---- allocation --------------------------------------------------------- */

void *llmr__malloc(size_t n);
void *llmr__calloc(size_t n, size_t size);
void *llmr__realloc(void *p, size_t n);
void llmr__free(void *p);
char *llmr__strdup(const char *s);
char *llmr__strndup(const char *s, size_t n);
/* Overwrite then free a string that held a secret. */
void llmr__free_secret(char *s);

/* ---- secret storage (src/secret.c) --------------------------------------
 * For the library's own copies of API keys and of the header lines that
 * carry them: pages kept out of core dumps (MADV_DONTDUMP), mlock()ed when
 * allowed, wiped on free. Thread-safe; a chunk of up to 1 KiB that was
 * freed before is handed out again without a lock or a system call.
 * Without MADV_DONTDUMP (not Linux/BSD) the ordinary heap, still wiped. */

/* n bytes (at least 1), zeroed, 16-byte aligned; NULL when out of memory.
 * Only llmr__secret_free may free it. */
void *llmr__secret_alloc(size_t n);
/* Wipe all of p's chunk, then release it; NULL does nothing. */
void llmr__secret_free(void *p);
/* Copies in secret memory; NULL for a NULL s or out of memory. */
char *llmr__secret_strdup(const char *s);
char *llmr__secret_strndup(const char *s, size_t n);
/* The usable size of p's chunk (>= what was asked for). */
size_t llmr__secret_size(const void *p);
/* Zero n bytes in a way the compiler cannot drop (explicit_bzero). */
void llmr__wipe(void *p, size_t n);

typedef struct llmr__secret_stats {
  int dontdump;     /* 1: dump-excluded pages; 0: the wiped-heap fallback */
  size_t page_size;
  size_t pages;     /* pages of small chunks mapped */
  size_t large;     /* allocations over 1 KiB (a mapping each) alive */
  size_t in_use;    /* small chunks handed out and not freed */
  size_t cached;    /* freed small chunks kept for lock-free reuse */
} llmr__secret_stats;
/* A snapshot, exact only while no other thread allocates (for tests). */
void llmr__secret_get_stats(llmr__secret_stats *s);
/* Tests: called by llmr__secret_free with the chunk after it was wiped,
 * before it is reused or unmapped. Set it while no other thread uses the
 * allocator; NULL removes it. */
typedef void (*llmr__secret_free_hook)(const void *p, size_t n);
void llmr__secret_set_free_hook(llmr__secret_free_hook hook);

/* Grow *arr (of elements of `size` bytes) so that it holds at least `need`
 * elements; *cap is updated. Returns 0 or -1 on out-of-memory/overflow. */
int llmr__grow(void **arr, size_t *cap, size_t need, size_t size);
/* Room for element n (0-based) of *arr, which starts as the caller's inline
 * array `inl` of *cap elements (*cap > 0): when that is full, the elements
 * move to a heap array of twice as many, and later growth is llmr__grow's.
 * The caller frees *arr only when it is no longer `inl`. 0 or -1. */
int llmr__grow_inline_full(void **arr, size_t *cap, size_t n, size_t size,
                           const void *inl);
static inline int llmr__grow_inline(void **arr, size_t *cap, size_t n,
                                    size_t size, const void *inl) {
  return n < *cap ? 0 : llmr__grow_inline_full(arr, cap, n, size, inl);
}

/* The inline arenas of the HTTP exchange objects and of the response: n
 * bytes from a struct's arena (cap bytes, *used taken) while they fit,
 * else the heap (NULL when out of memory). Nothing in an arena is freed
 * on its own; free a block only when it is not in the arena. */
static inline char *llmr__arena_take(char *arena, size_t cap, size_t *used,
                                     size_t n) {
  char *b;
  if (n <= cap - *used) {
    b = arena + *used;
    *used += n;
    return b;
  }
  return llmr__malloc(n);
}

static inline int llmr__in_arena(const char *arena, size_t cap,
                                 const void *p) {
  return (uintptr_t)p >= (uintptr_t)arena &&
         (uintptr_t)p < (uintptr_t)(arena + cap);
}

/* ---- growable byte buffer ----------------------------------------------- */

typedef struct llmr__buf {
  char *data; /* always NUL-terminated when non-NULL */
  size_t len;
  size_t cap;
} llmr__buf;

int llmr__buf_append(llmr__buf *b, const char *s, size_t n);
/* llmr__buf_append with its common case inline (the bytes fit): for the
 * loops that add many short pieces (request bodies, JSON strings). */
static inline int llmr__buf_put(llmr__buf *b, const char *s, size_t n) {
  if (b->data && n < b->cap - b->len) {
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
  }
  return llmr__buf_append(b, s, n);
}
/* Room for extra more bytes (and the NUL) without moving; -1 on OOM. */
int llmr__buf_reserve(llmr__buf *b, size_t extra);
int llmr__buf_puts(llmr__buf *b, const char *s);
int llmr__buf_printf(llmr__buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void llmr__buf_reset(llmr__buf *b);
void llmr__buf_free(llmr__buf *b);
/* The contents, "" when empty (never NULL). */
const char *llmr__buf_str(const llmr__buf *b);

/* snprintf into a caller error buffer when it is not NULL. */
void llmr__errf(char *errbuf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ASCII case-insensitive compare (locale independent). */
int llmr__strcaseeq(const char *a, const char *b);
int llmr__strncaseeq(const char *a, const char *b, size_t n);

/* A unique id for a tool call a provider sent without one
 * ("call_llmr_<time>_<n>"); out should hold 64 bytes. */
void llmr__synth_call_id(char *out, size_t n);

/* "data:<mime>[;param]*;base64,<data>": the MIME type (lowercased) into
 * mime, *data at the payload. -1 when it is not a base64 data URL with a
 * type that fits. */
int llmr__parse_data_url(const char *url, char *mime, size_t size,
                         const char **data);

/* Milliseconds from a monotonic clock. */
double llmr__now_ms(void);

/* One-time process initialisation (curl_global_init); thread-safe. */
llmr_status llmr__global_once(void);

/* ---- request model ------------------------------------------------------ */

typedef struct llmr__tool_call {
  char *id;
  char *name;
  char *arguments; /* JSON text */
} llmr__tool_call;

typedef struct llmr__message {
  llmr_role role;
  char *content; /* text content; NULL when parts is set or content is null */
  cJSON *parts;  /* array of OpenAI content parts, or NULL */
  char *name;
  char *tool_call_id; /* role tool */
  llmr__tool_call *tool_calls;
  size_t n_tool_calls;
  size_t cap_tool_calls;
} llmr__message;

struct llmr_request {
  llmr__message *messages;
  size_t n_messages;
  size_t cap_messages;
  cJSON *tools;           /* array of OpenAI tool objects, or NULL */
  cJSON *tool_choice;     /* string or object, or NULL */
  cJSON *response_format; /* object, or NULL */
  cJSON *extra;           /* unknown top-level fields, passed through */
  char **stop;
  size_t n_stop;
  char *app;
  char *user;
  char *reasoning_effort;   /* "minimal" | "low" | "medium" | "high" */
  int64_t reasoning_budget; /* thinking tokens; 0: not set */
  double temperature;
  double top_p;
  int64_t max_tokens; /* 0: not set */
  int64_t seed;
  cJSON *policy; /* a validated policy object (llmr_request_set_policy) */
  unsigned has_temperature : 1;
  unsigned has_top_p : 1;
  unsigned has_seed : 1;
};

const char *llmr__role_name(llmr_role role);
/* Whether the request uses images / tools / a JSON response format /
 * reasoning (for capability checks). */
int llmr__request_has_images(const llmr_request *req);
int llmr__request_wants_json(const llmr_request *req);
int llmr__request_wants_reasoning(const llmr_request *req);
/* Effort implied by the knob: the effort if set, else from the budget
 * (< 2048 low, < 8192 medium, else high); NULL when no knob is set. */
const char *llmr__reasoning_effort(const llmr_request *req);

/* ---- response model ----------------------------------------------------- */

typedef struct llmr__attempt {
  char *model;
  char *provider;
  char *error; /* NULL on success */
  llmr_status status;
  int http_status;
  int retryable;
  double duration_ms;
  int64_t cost_nanousd; /* 0: did not reach a provider; -1: unknown */
  size_t bytes;         /* reply body bytes received */
  unsigned skipped : 1; /* nothing was sent (cooldown, key, capability...) */
  unsigned hedge : 1;   /* started in parallel with the attempt before it */
} llmr__attempt;

/* A tool call of the answer. Streamed calls grow fragment by fragment. */
typedef struct llmr__out_call {
  char *id;       /* "" until known */
  char *name;     /* "" until known */
  llmr__buf args; /* JSON text so far */
  size_t index;   /* the provider's index for llmr_response_tool_call_delta */
  unsigned id_synth : 1;  /* id was synthesised: a real one may replace it */
  unsigned announced : 1; /* its first TOOL_CALL event was delivered */
} llmr__out_call;

/* The streaming sink of llmr_stream(): while a response has one, the
 * adapter setters also deliver events to the caller's callback. */
typedef struct llmr__sink {
  llmr_stream_cb cb; /* may be NULL */
  void *user;
  /* the current attempt (borrowed) */
  const char *model;
  const char *provider;
  const char *native_model;
  int content_started; /* a TEXT/REASONING/TOOL_CALL event reached cb */
  double first_content_ms; /* llmr__now_ms() of that first content event */
  int cancelled;       /* cb returned non-zero: deliver nothing more */
} llmr__sink;

#define LLMR__RESPONSE_INLINE_ATTEMPTS 2
#define LLMR__RESPONSE_ARENA 384

/* Not to be copied by value: attempts may point at inline_attempts, and
 * the small strings (model, provider, native_model, id, finish_reason,
 * error, error_type, the attempts' model, provider and error) live in the
 * struct's own arena while it has room, else the heap. Only response.c
 * sets or frees them (it tells the two apart by address). */
struct llmr_response {
  llmr_status status;
  llmr__buf text;
  llmr__buf reasoning;
  char *finish_reason;
  int64_t tokens[6];
  llmr__out_call *tool_calls;
  size_t n_tool_calls;
  size_t cap_tool_calls;
  char *model;
  char *provider;
  char *native_model;
  char *id;
  int64_t created;
  char *error;
  char *error_type;
  int http_status;
  int retryable;
  double retry_after_s;
  char **warnings;
  size_t n_warnings;
  size_t cap_warnings;
  llmr__attempt *attempts; /* inline_attempts, or the heap past 2 */
  size_t n_attempts;
  size_t cap_attempts;
  llmr__sink *sink;             /* non-NULL during llmr_stream() */
  char request_id[33];          /* 32 hex digits, set when the call starts */
  int64_t cost_nanousd;         /* sum over attempts; -1 unknown */
  unsigned stream_done : 1;     /* the provider's end marker was seen */
  unsigned usage_estimated : 1; /* tokens[] were estimated */
  size_t arena_used;
  /* not zeroed by llmr__response_new: n_attempts and arena_used say what
   * is in use */
  llmr__attempt inline_attempts[LLMR__RESPONSE_INLINE_ATTEMPTS];
  char arena[LLMR__RESPONSE_ARENA];
};

llmr_response *llmr__response_new(void);
/* Clear what one attempt wrote (answer, usage, error) before the next. */
void llmr__response_reset_attempt(llmr_response *resp);
llmr_status llmr__response_add_attempt(llmr_response *resp,
                                       const llmr__attempt *a);
/* Move what one attempt wrote into src (answer, usage, error, warnings)
 * over to dst, replacing dst's; src keeps dst's old attempt state. The
 * strings that lived in src's arena are copied into dst's (or the heap),
 * so dst owns all it holds and src may be freed first. LLMR_E_NOMEM when
 * a copy failed (that string is then NULL on dst). */
llmr_status llmr__response_move_attempt(llmr_response *dst,
                                        llmr_response *src);
llmr_status llmr__response_set_answered(llmr_response *resp, const char *slug,
                                        const char *provider,
                                        const char *native_model);
/* Build the OpenAI-shaped chat.completion / error document. */
cJSON *llmr__response_to_cjson(const llmr_response *resp);
/* The usage object of that document. NULL on OOM. */
cJSON *llmr__usage_to_cjson(const llmr_response *resp);

/* Fill in ev's attempt fields and response, and deliver it to the sink's
 * callback. LLMR_OK, or LLMR_E_ABORTED when the callback cancels now or
 * did before (then the response's error says so). No sink: LLMR_OK. */
llmr_status llmr__emit(llmr_response *resp, llmr_event *ev);
/* Once an attempt has succeeded: tool calls without argument text get
 * "{}"; a streamed call that never got a name is LLMR_E_PROTOCOL. */
llmr_status llmr__response_finish_calls(llmr_response *resp);
/* Estimate the prompt and completion counts the provider did not report
 * (about 4 characters a token), and mark the usage estimated. */
void llmr__response_estimate_usage(llmr_response *resp,
                                   const llmr_request *req);
/* The prompt-token estimate of llmr__response_estimate_usage (about 4
 * characters a token of the message text). */
int64_t llmr__request_prompt_estimate(const llmr_request *req);
/* Whether the response holds any answer content (text, reasoning, calls). */
int llmr__response_has_content(const llmr_response *resp);
/* An error a provider sent inside a 2xx stream or body (`body` is the
 * JSON document holding `error`): set it on resp with the WIRE-NOTES rules
 * for type and retryable, and return its status class. */
llmr_status llmr__stream_error(llmr_response *resp, const cJSON *body);
/* Number of UTF-8 characters in s[0..n) (bytes that start a character). */
size_t llmr__utf8_chars(const char *s, size_t n);

/* ---- HTTP exchange (filled by adapters, performed by the transport) ----- */

typedef struct llmr__header {
  char *name; /* lowercase for replies */
  char *value;
} llmr__header;

#define LLMR__REQUEST_INLINE_HEADERS 8
#define LLMR__REQUEST_ARENA 512

/* Like llmr_http_response below: not to be copied by value once filled
 * (the URL, a short body and the headers other than credentials may live
 * in the struct's own arena). Start it with llmr__http_request_init (or
 * zero it); llmr__http_request_clear releases it and starts it again. */
struct llmr_http_request {
  char *url;
  llmr__header *headers; /* inline_headers, or the heap past 8 */
  size_t n_headers;
  size_t cap_headers;
  char *body;
  size_t body_len;
  size_t arena_used;
  unsigned has; /* LLMR__HAS_*: headers of these names were added */
  llmr__header inline_headers[LLMR__REQUEST_INLINE_HEADERS];
  char arena[LLMR__REQUEST_ARENA];
};

/* llmr_http_request.has: names the transport adds a line of its own for
 * unless the request brings one (any case). */
#define LLMR__HAS_USER_AGENT 1u
#define LLMR__HAS_ACCEPT_ENCODING 2u

#define LLMR__REPLY_INLINE_HEADERS 16
#define LLMR__REPLY_ARENA 1024

/* Not to be copied by value once a header is in: headers may point into
 * the struct itself (the inline array and arena: no allocation per
 * header for a usual reply). Start it with llmr__http_response_init (or
 * zero it); llmr__http_response_clear releases it and starts it again. */
struct llmr_http_response {
  long status;
  llmr__header *headers; /* inline_headers, or the heap past 16 */
  size_t n_headers;
  size_t cap_headers;
  llmr__buf body;
  size_t arena_used;
  llmr__header inline_headers[LLMR__REPLY_INLINE_HEADERS];
  char arena[LLMR__REPLY_ARENA]; /* "name\0value\0" blocks, while they fit */
};

void llmr__http_request_clear(llmr_http_request *h);
/* An empty request (zeroing all of it works too). */
void llmr__http_request_init(llmr_http_request *h);
void llmr__http_response_clear(llmr_http_response *h);
/* An empty reply (zeroing all of it works too). */
void llmr__http_response_init(llmr_http_response *h);
llmr_status llmr__http_response_add_header(llmr_http_response *h,
                                           const char *line, size_t len);
/* Whether a header of this name carries a credential: the name ends (ASCII
 * case-insensitively) in "authorization", "key", "token", "secret",
 * "cookie", "password" or "credential(s)". Such a request header's name
 * and value live in secret memory (llmr__secret_alloc). */
int llmr__header_is_secret(const char *name, size_t len);
/* llmr_http_request_add_header with the value prefix + value, assembled
 * in place: for a credential header ("Authorization", "Bearer ", key) that
 * is secret memory, so no other copy of the key is made. */
llmr_status llmr__http_request_add_header_cat(llmr_http_request *h,
                                              const char *name,
                                              const char *prefix,
                                              const char *value);

/* llmr__http_request_add_header_cat for parts of known lengths that are
 * known to hold no CR or LF (and the name no colon): string literals of
 * the library's own (llmr__http_request_add_lit) or a value checked once
 * (llmr_provider.api_key_len). They are not scanned again on every call. */
llmr_status llmr__http_request_add_header_n(llmr_http_request *h,
                                            const char *name, size_t nlen,
                                            const char *prefix, size_t plen,
                                            const char *value, size_t vlen);
#define llmr__http_request_add_lit(h, name, value)                           \
  llmr__http_request_add_header_n((h), "" name, sizeof(name) - 1, "", 0,     \
                                  "" value, sizeof(value) - 1)

/* ---- transport (src/http_curl.c: the only file that calls libcurl) ------ */

typedef struct llmr__transport llmr__transport;

typedef struct llmr__transport_opts {
  long connect_timeout_ms;
  long timeout_ms;
  long first_byte_timeout_ms; /* streams: 0 = none */
  long idle_timeout_ms;       /* streams: 0 = none */
  size_t max_response_bytes;
  const char *ca_file; /* NULL: the system trust store */
  const char *user_agent;
} llmr__transport_opts;

llmr_status llmr__transport_new(const llmr__transport_opts *opts,
                                llmr__transport **out);
void llmr__transport_free(llmr__transport *t);
/* Receives the body of a 2xx reply as it arrives, chunk by chunk; `head`
 * already holds the status and headers. Non-zero aborts the transfer. */
typedef int (*llmr__body_sink)(void *user, const llmr_http_response *head,
                               const char *data, size_t len);

/* One exchange for llmr__transport_run / llmr__transport_race. */
typedef struct llmr__xfer {
  /* in */
  const llmr_http_request *req;
  llmr_http_response *resp; /* status and headers; the body unless sunk */
  /* NULL: buffer the whole body into resp. Otherwise a 2xx body goes to
   * sink as it arrives and is not kept (any other body is buffered for
   * classify_error); the first-byte and idle limits apply. */
  llmr__body_sink sink;
  void *user;
  long timeout_ms; /* the whole exchange; <= 0: the transport's timeout_ms */
  /* out */
  llmr_status st; /* LLMR_OK for an HTTP reply of any status; else the
                   * transport failure's class (LLMR_E_TRANSPORT,
                   * LLMR_E_TIMEOUT, LLMR_E_TLS, LLMR_E_TOO_LARGE...), or
                   * LLMR_E_ABORTED when the sink stopped it or it lost a
                   * race (cancelled) */
  size_t bytes;   /* body bytes received */
  int started;    /* the transfer was started */
  int sent;       /* request bytes went out on a connection */
  int cancelled;  /* stopped because the other leg won */
  /* the failure's message; last, so that a setter may zero everything up
   * to its first byte only (router.c, leg_build) */
  char err[LLMR_ERRBUF_SIZE];
} llmr__xfer;

/* Perform one exchange; returns x->st. resp->status is set whenever a
 * status line arrived, even if the transfer then failed. */
llmr_status llmr__transport_run(llmr__transport *t, llmr__xfer *x);

/*
 * A hedged exchange: start a; if a has received no byte after hedge_ms,
 * start b as well, on the same multi handle. The first of the two whose
 * 2xx body begins (or whose 2xx reply ends) wins and runs to its end; the
 * other is cancelled at once (st LLMR_E_ABORTED, cancelled 1; its
 * connection is closed). A transfer that fails leaves the other running
 * alone. When a ends before hedge_ms, b is never started (started 0).
 * Only the winner's sink is ever called. Returns the winner's index (0 or
 * 1) when it ended LLMR_OK, else -1.
 */
int llmr__transport_race(llmr__transport *t, llmr__xfer *a, llmr__xfer *b,
                         long hedge_ms);

/* ---- providers ---------------------------------------------------------- */

struct llmr_provider {
  char *name;
  const llmr_provider_vt *vt;
  char *base_url; /* no trailing '/' */
  char *api_key;  /* NULL when none */
  size_t api_key_len; /* its length when it holds no CR or LF, else 0 */
  int key_required;
  cJSON *options;    /* object of strings, or NULL */
  llmr__header *headers; /* extra static headers */
  size_t n_headers;
  void *userdata;
  /* Made once when the provider is complete (llmr__provider_new) for what
   * the OpenAI adapter looks up on every call; the option strings are
   * borrowed from options, NULL when unset. */
  char *chat_url; /* base_url + "/chat/completions" */
  const char *dialect, *http_referer, *x_title;
};

/* Built-in provider defaults (src/providers/registry.c). */
typedef struct llmr__builtin {
  const char *name;
  const llmr_provider_vt *vt;
  const char *base_url;
  const char *key_env;  /* NULL: no key variable */
  const char *key_env2; /* a second variable tried when the first is unset */
  int key_required;
  const char *dialect; /* option "dialect" for the OpenAI adapter */
} llmr__builtin;

extern const llmr__builtin llmr__builtins[];
extern const size_t llmr__n_builtins;
extern const llmr_provider_vt llmr__openai_vt;
/* The OpenAI adapter's two readers of a non-streaming answer, for tests:
 * the fast path returns 0 (declined: resp untouched) or 1 with the result
 * in *st; the tree path reads any answer with cJSON. */
int llmr__openai_parse_fast(const llmr_http_response *http,
                            llmr_response *resp, llmr_status *st);
llmr_status llmr__openai_parse_tree(const llmr_provider *p,
                                    const llmr_http_response *http,
                                    llmr_response *resp);
/* Its two writers of a request body into out: the direct one returns 1
 * (written), 0 (declined: out and resp untouched) or -1 (out of memory);
 * the tree one writes any request. */
int llmr__openai_body_direct(const llmr_provider *p, const llmr_request *req,
                             const char *native_model, int stream,
                             llmr__buf *out, llmr_response *resp);
llmr_status llmr__openai_body_tree(const llmr_provider *p,
                                   const llmr_request *req,
                                   const char *native_model, int stream,
                                   llmr__buf *out, llmr_response *resp);
extern const llmr_provider_vt llmr__anthropic_vt;
extern const llmr_provider_vt llmr__gemini_vt;

const llmr__builtin *llmr__builtin_find(const char *name);
/* Zero a provider config's "api_key" and credential header values in
 * place (the parsed copy; cJSON_Delete does not wipe). */
void llmr__conf_wipe_secrets(const cJSON *conf);
/* The provider an alias stands for ("gemini" -> "google"), or NULL. */
const char *llmr__provider_alias(const char *name, size_t len);
/* Build a provider instance: defaults from `def` (may be NULL), then the
 * environment when use_env, then `conf` (may be NULL). */
llmr_status llmr__provider_new(const char *name, const llmr_provider_vt *vt,
                               const llmr__builtin *def, const cJSON *conf,
                               int use_env, void *userdata,
                               llmr_provider **out, char *errbuf,
                               size_t errsize);
void llmr__provider_free(llmr_provider *p);

/* The canonical request as an OpenAI body (shared by the OpenAI adapter and
 * llmr_request_to_json). `model` may be NULL. Returns NULL on OOM. */
cJSON *llmr__request_to_openai(const llmr_request *req, const char *model);

/* Parse an OpenAI-format request JSON object into a request. */
llmr_status llmr__request_from_cjson(const cJSON *root, llmr_request **out,
                                     char *errbuf, size_t errbuf_size);

/* Shared error-body reader: the error object (body.error when it is an
 * object, else the body), its message, and its type by the WIRE-NOTES rule
 * (type if string, else status, else code if string). */
void llmr__error_fields(const cJSON *body, const char **message,
                        const char **type, const char **code);

/* 408, 409, 429 and 5xx: a later try may succeed (WIRE-NOTES). */
int llmr__http_retryable(int code);
/* strstr that takes NULL. */
int llmr__contains(const char *s, const char *word);
/* The common tail of classify_error: x-should-retry, a body excerpt when
 * there is no message, and llmr_response_set_error. Returns the status. */
llmr_status llmr__error_finish(const llmr_http_response *http,
                               llmr_response *resp, llmr_status st,
                               const char *type, const char *message,
                               int retryable, double retry_after_s);

/* Retry-After from the reply headers (retry-after-ms, then retry-after). */
double llmr__retry_after_from_headers(const llmr_http_response *http);

/* ---- model catalog (src/catalog.c) -------------------------------------- */

#define LLMR__CAP_TOOLS 1u
#define LLMR__CAP_VISION 2u
#define LLMR__CAP_JSON 4u
#define LLMR__CAP_REASONING 8u

typedef struct llmr__model_info {
  char *slug;     /* "anthropic/claude-3.5-sonnet" */
  char *provider; /* "anthropic" */
  char *model;    /* "claude-3-5-sonnet-20241022" */
  int64_t context_window;    /* -1: unknown */
  int64_t max_output_tokens; /* -1: unknown */
  /* USD per million tokens; -1: unknown */
  double price_input;
  double price_output;
  double price_cache_read;
  double price_cache_write;
  double price_reasoning; /* when it differs from output */
  double price_request;   /* USD per request */
  /* The same prices as integers, for exact cost arithmetic: micro-USD per
   * million tokens (= pico-USD per token), and pico-USD per request;
   * -1: unknown. */
  int64_t upm_input;
  int64_t upm_output;
  int64_t upm_cache_read;
  int64_t upm_cache_write;
  int64_t upm_reasoning;
  int64_t fee_pico;
  unsigned caps;       /* LLMR__CAP_* */
  unsigned caps_known; /* 0: no capability list given, nothing is checked */
} llmr__model_info;

typedef struct llmr__catalog {
  llmr__model_info *v; /* sorted by slug */
  size_t n;
  size_t cap;
} llmr__catalog;

llmr_status llmr__catalog_load_builtin(llmr__catalog *c, char *errbuf,
                                       size_t errsize);
llmr_status llmr__catalog_load_file(llmr__catalog *c, const char *path,
                                    char *errbuf, size_t errsize);
llmr_status llmr__catalog_merge_json(llmr__catalog *c, const char *json,
                                     size_t len, const char *origin,
                                     char *errbuf, size_t errsize);
const llmr__model_info *llmr__catalog_find(const llmr__catalog *c,
                                           const char *slug);
/* The entry whose provider and native model id are these, or NULL. */
const llmr__model_info *llmr__catalog_find_native(const llmr__catalog *c,
                                                  const char *provider,
                                                  const char *model);
void llmr__catalog_free(llmr__catalog *c);
/* The first capability the request needs that the model lacks, or NULL. */
const char *llmr__capability_missing(const llmr__model_info *m,
                                     const llmr_request *req);

/* ---- prices (src/prices.c) ---------------------------------------------- */

/* USD per million tokens (as the catalog holds it) to micro-USD per million
 * tokens, rounded to the nearest; -1 stays -1. */
int64_t llmr__price_upm(double usd_per_million);
/* USD to pico-USD, rounded to the nearest; -1 stays -1. */
int64_t llmr__price_pico(double usd);

/* Token counts of one attempt, OpenAI semantics: prompt includes cached
 * and cache-write tokens, completion includes reasoning tokens; negative
 * counts are taken as 0. */
typedef struct llmr__usage {
  int64_t prompt;
  int64_t completion;
  int64_t cached;
  int64_t cache_write;
  int64_t reasoning;
} llmr__usage;

/* Cost in nano-USD of one attempt priced by m (NULL: not in the catalog):
 *   (prompt - cached - cache_write) x input + cached x cache_read
 *   + cache_write x cache_write_price + (completion - reasoning) x output
 *   + reasoning x reasoning_price (+ the request fee when `answered`),
 * summed exactly in pico-USD and rounded half up to nano-USD once.
 * A missing cache_read / cache_write price is the input price, a missing
 * reasoning price the output price. -1 when a price the counts need is
 * unknown (or the sum would overflow). */
int64_t llmr__cost_nanousd(const llmr__model_info *m, const llmr__usage *u,
                           int answered);
/* The most an attempt can cost: prompt_tokens at the higher of the input
 * and cache-write prices, max_output at the higher of the output and
 * reasoning prices, plus the request fee; rounded up. -1 when unknown. */
int64_t llmr__worst_case_nanousd(const llmr__model_info *m,
                                 int64_t prompt_tokens, int64_t max_output);
/* "12.345678901" for nano-USD n (exact; "-" prefix when negative). */
void llmr__usd_format(int64_t nano, char *out, size_t size);

/* ---- ledger (src/ledger.c) ---------------------------------------------- */

/* One record: one attempt that reached a provider. Strings are borrowed
 * for the duration of llmr__ledger_append; NULL tags are written as null. */
typedef struct llmr__ledger_rec {
  int64_t t_ms; /* UTC milliseconds when the attempt started */
  const char *id;
  const char *app;
  const char *user;
  const char *const *asked; /* the slugs the call was given */
  size_t n_asked;
  const char *model;    /* the slug of this attempt */
  const char *provider; /* may be NULL */
  const char *native;   /* may be NULL */
  int attempt;          /* 1 = the call's first attempt that reached one */
  int stream;
  llmr_status status;
  int http_status;
  llmr__usage usage;
  int estimated;
  int64_t cost_nanousd; /* -1: unknown */
  double latency_ms;
  double ttft_ms; /* < 0: none */
} llmr__ledger_rec;

/* A budget reservation held by one attempt (see llmr__ledger_reserve). */
typedef struct llmr__reservation {
  int64_t nanousd; /* 0: nothing reserved */
  const char *app; /* borrowed from the request */
} llmr__reservation;

/* Reserve the worst case of an attempt for `app` (NULL: untagged) against
 * every budget that applies. worst < 0 means the price is unknown. Returns
 * LLMR_OK (res filled; nothing reserved when no budget applies) or
 * LLMR_E_BUDGET with a message in why. */
llmr_status llmr__ledger_reserve(llmr_ledger *l, const char *app,
                                 int64_t worst, llmr__reservation *res,
                                 char *why, size_t why_size);
/* Give a reservation back without a record. */
void llmr__ledger_release(llmr_ledger *l, llmr__reservation *res);
/* Append one record (and settle res, which may be NULL, in the same step).
 * *n_out (may be NULL) receives the record's sequence number. */
llmr_status llmr__ledger_append(llmr_ledger *l, const llmr__ledger_rec *rec,
                                llmr__reservation *res, int64_t *n_out,
                                char *err, size_t err_size);
/* Whether a call refused by a budget moves on to the next slug. */
int llmr__ledger_budget_fallback(const llmr_ledger *l);
/* Whether any budget is set (reservations are needed). */
int llmr__ledger_has_budgets(llmr_ledger *l);
/* Parse a time for a query: "2026-11-24", "2026-11-24T10:00[:00[.123]]Z",
 * "-7d", "-12h", "now", or digits (Unix ms). 0 on success. */
int llmr__parse_time(const char *s, int64_t now_ms, int64_t *out);
/* UTC milliseconds now. */
int64_t llmr__wall_ms(void);
/* 32 random lowercase hex digits and a NUL into out[33]. */
void llmr__random_id(char out[33]);

/* ---- JSON helpers ------------------------------------------------------- */

/* Non-NULL string value of obj[key], or NULL. */
const char *llmr__json_str(const cJSON *obj, const char *key);
/* Integer value of obj[key] into *out; 0 if present and a number, else -1. */
int llmr__json_i64(const cJSON *obj, const char *key, int64_t *out);
/* Print compactly into a library-owned string (free with llmr_free). */
char *llmr__json_print(const cJSON *j);
/* Add a string or null when s is NULL. NULL on OOM. */
cJSON *llmr__json_add_str_or_null(cJSON *obj, const char *key, const char *s);

#endif /* LLMR_INTERNAL_H */
