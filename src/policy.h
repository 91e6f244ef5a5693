/*
 * Retry and routing policy building blocks (internal): jittered backoff,
 * Retry-After and rate-limit header rules, a per-key circuit breaker /
 * cooldown table shared by the threads of a router, and load-balancing
 * picks. Issue 5 (fallback, retries, cooldowns, deadlines, hedging).
 *
 * Nothing here does I/O or sleeps, and every clock is an argument, so the
 * rules are testable with fixed times. Two clocks appear:
 *   - monotonic ms (llmr__monotonic_ms): every llmr__health_* call and any
 *     "until" the router compares with "now";
 *   - realtime ms since the epoch (llmr__realtime_ms): only to turn the
 *     absolute times some headers carry (HTTP-date, RFC 3339) into waits.
 * A wait in ms is the bridge between them: cooldown = until_rt - now_rt,
 * then until_mono = now_mono + cooldown.
 *
 * Thread safety: an llmr__health table may be used by any number of
 * threads at once. A PRNG state (uint64_t) belongs to one thread at a time.
 * An llmr__rr counter may be shared. Everything else is a pure function.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef LLMR_POLICY_H
#define LLMR_POLICY_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "llmroute.h"
#include "llmroute/provider.h"
#include <cjson/cJSON.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- clocks ------------------------------------------------------------- */

/* Milliseconds from CLOCK_MONOTONIC (the clock of the llmr__health table). */
int64_t llmr__monotonic_ms(void);
/* Milliseconds since the Unix epoch (CLOCK_REALTIME). */
int64_t llmr__realtime_ms(void);

/* ---- PRNG (splitmix64; fast, not cryptographic: jitter and picks) ------- */

/* Seed *rng from getrandom(); if that fails, from the clocks, the address
 * of rng and a process-wide counter (so two threads seeding in the same
 * nanosecond still differ). Never fails. */
void llmr__rng_seed(uint64_t *rng);
/* The next 64 random bits; advances *rng. Any state value is valid. */
uint64_t llmr__rng_next(uint64_t *rng);
/* Uniform in [0, n) without modulo bias; 0 when n == 0. */
uint64_t llmr__rng_below(uint64_t *rng, uint64_t n);
/* Uniform double in [0, 1) (53 random bits). */
double llmr__rng_unit(uint64_t *rng);

/* ---- backoff and Retry-After -------------------------------------------- */

/*
 * Exponential backoff with full jitter (AWS Architecture Blog, "Exponential
 * Backoff And Jitter"): uniform in [0, min(cap_ms, base_ms * 2^attempt)],
 * both ends included. attempt 0 is the wait before the first retry.
 * Overflow-safe for every attempt (a bound past cap_ms is cap_ms).
 * base_ms <= 0 gives 0; cap_ms <= 0 means no cap (INT64_MAX).
 */
int64_t llmr__backoff_ms(unsigned attempt, int64_t base_ms, int64_t cap_ms,
                         uint64_t *rng);

/*
 * How long to wait before retrying the same slug.
 *   retry_after_s   the provider's Retry-After in seconds (the response's
 *                   retry_after_s); < 0 or NaN: none was sent.
 *   backoff_ms      our own backoff (llmr__backoff_ms).
 *   longest_wait_ms the longest wait the caller accepts; < 0: no limit.
 * Returns max(Retry-After rounded up to ms, backoff), or -1 when the
 * provider asks for more than longest_wait_ms (the caller moves on to the
 * next slug instead of waiting). Our own backoff is never a reason for -1:
 * it is clamped to longest_wait_ms.
 */
int64_t llmr__retry_wait_ms(double retry_after_s, int64_t backoff_ms,
                            int64_t longest_wait_ms);

/* ---- rate-limit headers -------------------------------------------------- */

/* Cooldowns read from headers are capped here (24 h: the longest window a
 * provider documents is a day, Groq's requests-per-day). */
#define LLMR__COOLDOWN_MAX_MS ((int64_t)24 * 3600 * 1000)

/*
 * A Go time.Duration string ("1s", "6m0s", "20ms", "1m30.5s", "2h3m",
 * "7.66s", "500us"; units ns us µs μs ms s m h; "0" alone) as ms, rounded
 * up to the next ms. This is the format of OpenAI's and Groq's
 * x-ratelimit-reset-* headers and of Gemini's RetryInfo.retryDelay ("37s").
 * Returns 0 and sets *out_ms, or -1 (negative, empty, malformed, or more
 * than ~100 days). Surrounding blanks are allowed.
 */
int llmr__parse_duration_ms(const char *s, int64_t *out_ms);

/*
 * An RFC 3339 date-time ("2025-08-21T12:40:59Z", "...T12:40:59.123Z",
 * "...T14:40:59+02:00"; 'T' may be 't' or a space, 'Z' may be 'z';
 * fractional seconds of any length, truncated to ms; second 60 accepted)
 * as ms since the epoch. Returns 0 and sets *out_ms, or -1. libcurl's
 * curl_getdate() does not parse this format, hence a parser of our own.
 */
int llmr__parse_rfc3339_ms(const char *s, int64_t *out_ms);

/*
 * How long the reply's headers say this provider/model should not be
 * called ("cool down until now + result"), in ms; 0 when they say nothing.
 * now_ms_realtime is llmr__realtime_ms() (fixed in tests). Reads:
 *   retry-after-ms (ms) or else retry-after (seconds, or an HTTP-date via
 *     curl_getdate, relative to now_ms_realtime): the same precedence as
 *     llmr__retry_after_from_headers;
 *   x-ratelimit-remaining-{requests,tokens} == 0 with the matching
 *     x-ratelimit-reset-{requests,tokens} (Go duration; a bare number is
 *     taken as seconds, an RFC 3339 time is accepted too): OpenAI, Groq,
 *     xAI, Together, Azure OpenAI;
 *   anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-
 *     remaining == 0 with the matching -reset (RFC 3339).
 * Only a remaining count of exactly 0 arms its reset (Azure sends -1 for
 * "not applicable"). The longest applicable wait wins, capped at
 * LLMR__COOLDOWN_MAX_MS. http may be NULL (returns 0).
 */
int64_t llmr__ratelimit_cooldown_ms(const llmr_http_response *http,
                                    int64_t now_ms_realtime);
/* Whether the reply has any header llmr__ratelimit_cooldown_ms reads
 * (retry-after*, x-ratelimit-*, anthropic-ratelimit-*): when it has none
 * the caller need not read the realtime clock for it. NULL: 0. */
int llmr__ratelimit_headers_present(const llmr_http_response *http);

/* ---- circuit breaker / cooldown table ------------------------------------ */

typedef struct llmr__health llmr__health;

typedef struct llmr__health_opts {
  /* Failures within window_ms that open a key's circuit. 0: 3. < 0: never
   * open on failure counts (only cooldown hints and failed trials open).
   * Values above 256 are taken as 256. */
  int failures;
  int64_t window_ms;   /* sliding window for those failures; <= 0: 60000 */
  int64_t cooldown_ms; /* how long an opened circuit stays open; <= 0: 30000 */
  /* How long a TRIAL may stay unreported before another caller may take
   * a new TRIAL (a caller that crashed or forgot). Set it to at least the
   * per-attempt timeout. <= 0: 600000 (the router's default timeout). */
  int64_t trial_timeout_ms;
  size_t max_keys; /* keys tracked at most; 0: 1024 */
} llmr__health_opts;

typedef enum llmr__health_decision {
  LLMR__HEALTH_ALLOW = 0, /* closed: go ahead */
  LLMR__HEALTH_SKIP = 1,  /* cooling down, or another caller's trial runs */
  LLMR__HEALTH_TRIAL = 2  /* half-open: you are the one probe; report it
                           * with llmr__health_report_trial */
} llmr__health_decision;

/*
 * A table of per-key circuits. Keys are strings chosen by the caller: a
 * provider name ("openai") or "provider/model"; they are copied. Each key
 * is CLOSED (calls allowed; failures counted), OPEN until a time, or
 * HALF-OPEN once that time has passed: the next llmr__health_check gets
 * TRIAL, and every other caller gets SKIP until that trial reports.
 *
 * Memory is bounded by max_keys. Only keys with something to remember
 * (recent failures, a cooldown, a trial) are stored: a success that closes
 * a key forgets it. When the table is full, a new key evicts, in order:
 * the least recently used closed key whose failures are all older than
 * the window, then the least recently used closed key, then the open key
 * whose cooldown ends first. A key with a trial in flight is never
 * evicted; if every key has one, the new key is not stored (its report is
 * dropped). Out of memory also drops the report; nothing else can fail.
 *
 * All functions are thread-safe (one mutex). A check or a plain success
 * report for a key that has nothing stored takes no lock: one atomic load
 * of a 64-bit filter.
 *
 * Returns NULL on out of memory. o may be NULL (all defaults).
 */
llmr__health *llmr__health_new(const llmr__health_opts *o);
/* Free the table. No other thread may be using it. NULL is a no-op. */
void llmr__health_free(llmr__health *h);

/*
 * May `key` be tried at now_ms (monotonic)?
 *   ALLOW  closed.
 *   SKIP   open: *until_ms = when it may be tried again; or a trial by
 *          another caller is in flight: *until_ms = now_ms (the key may
 *          close as soon as that trial reports; when is not known).
 *   TRIAL  the cooldown has passed and the caller is the single probe.
 *          The caller must end the attempt with llmr__health_report_trial
 *          (else others get SKIP until trial_timeout_ms has passed; then
 *          the next caller gets a new TRIAL, and a late report from the
 *          first holder ends that one too: the table holds no tokens).
 * until_ms may be NULL; it is set (to now_ms) for ALLOW and TRIAL too.
 */
llmr__health_decision llmr__health_check(llmr__health *h, const char *key,
                                         int64_t now_ms, int64_t *until_ms);

/*
 * The outcome of an attempt admitted with ALLOW (or made without a check).
 *   ok != 0  success: forget the failure count; close the key if its
 *            cooldown has passed (a success never shortens a cooldown: a
 *            call that started before the key opened does not close it).
 *   ok == 0  failure: counted in the window while the key is closed; the
 *            failures-th one within window_ms opens the key for
 *            cooldown_ms. Failures while it is open change nothing.
 *   cooldown_hint_ms > 0 (rate-limit headers, Retry-After; see
 *            llmr__ratelimit_cooldown_ms) opens the key at once until
 *            now_ms + hint, whatever ok is; a cooldown already running
 *            is extended, never shortened.
 */
void llmr__health_report(llmr__health *h, const char *key, int64_t now_ms,
                         int ok, int64_t cooldown_hint_ms);

/*
 * The outcome of the attempt that was given TRIAL. Ends the trial.
 *   ok != 0  closes the key (unless a hint given meanwhile, or this one,
 *            keeps it open: cooldowns are never shortened).
 *   ok == 0  reopens it until max(now_ms + cooldown_ms, now_ms + hint,
 *            the current cooldown).
 */
void llmr__health_report_trial(llmr__health *h, const char *key, int64_t now_ms,
                               int ok, int64_t cooldown_hint_ms);

/*
 * The earliest time (>= now_ms) at which any of keys[0..n) may be tried:
 * now_ms if one is closed, half-open with no trial, or has a trial in
 * flight (it may close any moment); else the smallest cooldown end. For
 * "every slug is cooling down: fail at once with LLMR_E_ALL_FAILED and
 * the time a retry could succeed". n == 0 returns now_ms. Takes no lock
 * when none of the keys has anything stored.
 */
int64_t llmr__health_earliest(llmr__health *h, const char *const *keys,
                              size_t n, int64_t now_ms);

/* Number of keys stored (for tests and debug dumps). */
size_t llmr__health_size(llmr__health *h);

/*
 * End a TRIAL without an outcome: the caller took TRIAL for this key but
 * did not send the attempt after all (another key of the same attempt said
 * SKIP). The key stays half-open and the next check may take a new TRIAL.
 * Does nothing when the key holds no trial.
 */
void llmr__health_release_trial(llmr__health *h, const char *key);

/*
 * The same four calls with the key's hash given (llmr__health_hash): an
 * attempt checks and then reports its two keys, and hashing each once
 * instead of at every call is ~250 Ir less per call. hash must be
 * llmr__health_hash(key).
 */
uint64_t llmr__health_hash(const char *key);
/* Whether the table holds no key at all (one atomic load, no lock): then
 * every check says ALLOW and a success with no hint changes nothing, so a
 * caller may skip both, and the key building and hashing before them. */
int llmr__health_idle(llmr__health *h);
llmr__health_decision llmr__health_check_hashed(llmr__health *h,
                                                const char *key,
                                                uint64_t hash, int64_t now_ms,
                                                int64_t *until_ms);
void llmr__health_report_hashed(llmr__health *h, const char *key,
                                uint64_t hash, int64_t now_ms, int ok,
                                int64_t cooldown_hint_ms, int is_trial);
void llmr__health_release_trial_hashed(llmr__health *h, const char *key,
                                       uint64_t hash);

/* ---- the fallback policy ------------------------------------------------- */

/*
 * One row of the fallback policy: the class of a failed attempt. The
 * config names are in llmr__eclass_name(); README.md and llmroute-errors(3)
 * hold the default table.
 */
typedef enum llmr__eclass {
  LLMR__EC_CONNECT = 0,     /* LLMR_E_TRANSPORT: connect, DNS, reset */
  LLMR__EC_TLS,             /* LLMR_E_TLS */
  LLMR__EC_TIMEOUT,         /* our clock: timeout_ms, deadline, stream limits */
  LLMR__EC_REQUEST_TIMEOUT, /* HTTP 408 */
  LLMR__EC_CONFLICT,        /* HTTP 409 */
  LLMR__EC_RATE_LIMITED,    /* HTTP 429 (not insufficient_quota) */
  LLMR__EC_SERVER_ERROR,    /* HTTP 500, 502, 503, 504, other 5xx */
  LLMR__EC_OVERLOADED,      /* HTTP 529, "overloaded" errors */
  LLMR__EC_PAYMENT,         /* HTTP 402, insufficient_quota */
  LLMR__EC_CONTEXT_LENGTH,  /* the prompt is too long for the model */
  LLMR__EC_CONTENT_FILTER,  /* the provider's filter refused the request */
  LLMR__EC_AUTH,            /* HTTP 401, 403 */
  LLMR__EC_BAD_REQUEST,     /* HTTP 400, 422, other 4xx */
  LLMR__EC_NOT_FOUND,       /* HTTP 404 */
  LLMR__EC_PROTOCOL,        /* a reply that is not the provider's protocol */
  LLMR__EC_PROVIDER_ERROR,  /* an error object inside a 2xx reply */
  LLMR__EC_TOO_LARGE,       /* the response size cap */
  LLMR__EC_NO_KEY,          /* no key configured: nothing sent */
  LLMR__EC_NO_PROVIDER,     /* unknown provider: nothing sent */
  LLMR__EC_CAPABILITY,      /* the catalog says the model cannot: nothing sent */
  LLMR__EC_BUDGET,          /* a ledger budget refused it: nothing sent */
  LLMR__EC_COUNT
} llmr__eclass;

/* What the router does after a failed attempt of a class. */
typedef enum llmr__action {
  LLMR__ACT_STOP = 0,     /* end the call with this error */
  LLMR__ACT_FALLBACK = 1, /* move on to the next slug at once */
  LLMR__ACT_RETRY = 2     /* retry the same slug (policy retries), then move on */
} llmr__action;

/* Which circuit a failure of a class counts against. */
typedef enum llmr__scope {
  LLMR__SCOPE_NONE = 0,     /* none: the request's fault, or nothing sent */
  LLMR__SCOPE_MODEL = 1,    /* "provider/native-model" */
  LLMR__SCOPE_PROVIDER = 2  /* the provider name: its host or its key */
} llmr__scope;

/* The effective policy of one call: the router's, then the call's
 * overrides. Plain data; copy it freely. */
typedef struct llmr__policy {
  int retries;                /* retries of one slug; default 0 */
  int64_t backoff_ms;         /* full-jitter base; default 200 */
  int64_t backoff_cap_ms;     /* default 5000 */
  int64_t longest_wait_ms;    /* longest Retry-After honoured; default 10000 */
  int64_t deadline_ms;        /* the whole call; 0: none */
  int64_t attempt_timeout_ms; /* one attempt; 0: the router's timeout_ms */
  int64_t hedge_ms;           /* 0: no hedging */
  int cooldown;               /* skip slugs whose circuit is open; default 1 */
  int rate_limit_headers;     /* cool a model down from its headers; 1 */
  unsigned char action[LLMR__EC_COUNT];   /* llmr__action */
  unsigned char explicit_[LLMR__EC_COUNT]; /* the config named this row */
} llmr__policy;

/* The config name of a class ("rate_limited"), or NULL out of range. */
const char *llmr__eclass_name(int cls);
/* "retry", "fallback", "stop". */
const char *llmr__action_name(int act);
/* The class of a failed attempt from its status and HTTP status (0: no
 * reply), or -1 for a status no policy row covers (LLMR_E_INVAL,
 * LLMR_E_NOMEM, LLMR_E_ABORTED...: the call always stops). */
int llmr__eclass_of(llmr_status st, int http_status);
/* The circuit a failure of this class counts against. */
llmr__scope llmr__eclass_scope(int cls);
/* The default action of a class (the README table). */
llmr__action llmr__eclass_default(int cls);

/* The defaults: the table, retries 0, backoff 200/5000, longest wait
 * 10000, no deadline, no hedging, cooldowns on. */
void llmr__policy_defaults(llmr__policy *p);

/*
 * Apply a policy JSON object over *p: keys retries, backoff_ms,
 * backoff_cap_ms, longest_wait_ms, deadline_ms, attempt_timeout_ms,
 * hedge_ms, fallback_on (an object of class -> true | false | "retry" |
 * "fallback" | "stop"; true keeps a class's moving-on default or gives
 * "fallback", false is "stop") and cooldown. For a router (hopts not
 * NULL) cooldown is false or {"failures", "window_ms", "cooldown_ms",
 * "rate_limit_headers"}, written into *hopts; for a call (hopts NULL)
 * only true or false. `where` prefixes messages ("config.policy",
 * "policy", "llmroute.policy"). An unknown key is an error. On failure *p
 * may be partly changed; LLMR_E_INVAL with a message in errbuf.
 */
llmr_status llmr__policy_apply(llmr__policy *p, const cJSON *obj,
                               llmr__health_opts *hopts, int *cooldown_on,
                               const char *where, char *errbuf,
                               size_t errsize);

/* ---- load balancing ------------------------------------------------------ */

/*
 * Weighted random pick: index i with probability weights[i] / sum. A weight
 * that is <= 0, NaN or infinite is never picked (a drained deployment),
 * unless all are, then the pick is uniform over all n. n must be > 0
 * (returns 0 when n == 0).
 */
size_t llmr__pick_weighted(const double *weights, size_t n, uint64_t *rng);

/* A round-robin counter shared by threads ("chosen in order"). Zeroed
 * memory is not portable C11 atomic initialisation: call llmr__rr_init. */
typedef struct llmr__rr {
  atomic_size_t next;
} llmr__rr;

/* Start at `start` (e.g. a random value, so that processes do not all
 * begin with the same deployment). */
void llmr__rr_init(llmr__rr *rr, size_t start);
/* The next index in [0, n), cycling; 0 when n == 0. Lock-free. */
size_t llmr__rr_next(llmr__rr *rr, size_t n);

#ifdef __cplusplus
}
#endif

#endif /* LLMR_POLICY_H */
