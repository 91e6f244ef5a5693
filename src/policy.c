/*
 * Retry and routing policy building blocks: see policy.h for the contracts.
 *
 * SPDX-License-Identifier: MIT
 */
#include "policy.h"
#include "internal.h"

#include <curl/curl.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>
#include <time.h>

#if defined(__linux__) && defined(__has_include)
#if __has_include(<sys/random.h>)
#include <sys/random.h>
#define LLMR__HAVE_GETRANDOM 1
#endif
#endif

/* ---- clocks ------------------------------------------------------------- */

static int64_t clock_ms(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (int64_t)ts.tv_sec * 1000 + (int64_t)(ts.tv_nsec / 1000000);
}

int64_t llmr__monotonic_ms(void) { return clock_ms(CLOCK_MONOTONIC); }
int64_t llmr__realtime_ms(void) { return clock_ms(CLOCK_REALTIME); }

/* a + b for b >= 0, saturating at INT64_MAX */
static int64_t sat_add(int64_t a, int64_t b) {
  return a > INT64_MAX - b ? INT64_MAX : a + b;
}

/* ---- PRNG --------------------------------------------------------------- */

/* splitmix64 (Steele, Lea, Flood 2014; public-domain reference code by
 * Sebastiano Vigna): one 64-bit word of state, every value valid, passes
 * BigCrush. Jitter and load balancing need speed, not secrecy. */
uint64_t llmr__rng_next(uint64_t *rng) {
  uint64_t z = (*rng += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

void llmr__rng_seed(uint64_t *rng) {
  static atomic_uint_fast64_t counter;
  uint64_t s = 0, k;
  struct timespec a, b;
#ifdef LLMR__HAVE_GETRANDOM
  if (getrandom(&s, sizeof(s), GRND_NONBLOCK) == (ssize_t)sizeof(s)) {
    *rng = s;
    return;
  }
#endif
  clock_gettime(CLOCK_REALTIME, &a);
  clock_gettime(CLOCK_MONOTONIC, &b);
  k = (uint64_t)atomic_fetch_add(&counter, 1);
  s = ((uint64_t)a.tv_sec << 30) ^ (uint64_t)a.tv_nsec ^
      ((uint64_t)b.tv_nsec << 17) ^ (uint64_t)(uintptr_t)rng ^
      (k * 0xD1B54A32D192ED03ull);
  *rng = s;
  *rng = llmr__rng_next(rng); /* spread the low-entropy bits */
}

/* A per-thread state for callers that pass NULL. */
static uint64_t *rng_state(uint64_t *rng) {
  static _Thread_local uint64_t tls;
  static _Thread_local int seeded;
  if (rng)
    return rng;
  if (!seeded) {
    llmr__rng_seed(&tls);
    seeded = 1;
  }
  return &tls;
}

uint64_t llmr__rng_below(uint64_t *rng, uint64_t n) {
  uint64_t threshold, r;
  if (n == 0)
    return 0;
  rng = rng_state(rng);
  /* reject the first 2^64 mod n values so every residue is equally likely */
  threshold = (0 - n) % n;
  do
    r = llmr__rng_next(rng);
  while (r < threshold);
  return r % n;
}

double llmr__rng_unit(uint64_t *rng) {
  return (double)(llmr__rng_next(rng_state(rng)) >> 11) * 0x1.0p-53;
}

/* ---- backoff and Retry-After -------------------------------------------- */

int64_t llmr__backoff_ms(unsigned attempt, int64_t base_ms, int64_t cap_ms,
                         uint64_t *rng) {
  uint64_t cap, bound;
  if (base_ms <= 0)
    return 0;
  cap = cap_ms <= 0 ? (uint64_t)INT64_MAX : (uint64_t)cap_ms;
  /* base * 2^attempt > cap  <=>  base > cap >> attempt: no overflow */
  if (attempt >= 63 || (uint64_t)base_ms > (cap >> attempt))
    bound = cap;
  else
    bound = (uint64_t)base_ms << attempt;
  /* bound <= INT64_MAX, so bound + 1 does not wrap */
  return (int64_t)llmr__rng_below(rng, bound + 1);
}

/* Seconds (or ms, with scale 1) to whole ms, rounded up; rounding to the
 * microsecond first keeps 1.1 s at 1100 ms despite binary fractions. */
static int64_t to_ms_ceil(double v, double us_per_unit) {
  double us = v * us_per_unit;
  if (!(us < 9.0e18))
    return INT64_MAX;
  return ((int64_t)llround(us) + 999) / 1000;
}

int64_t llmr__retry_wait_ms(double retry_after_s, int64_t backoff_ms,
                            int64_t longest_wait_ms) {
  int64_t b = backoff_ms < 0 ? 0 : backoff_ms, ra;
  if (longest_wait_ms >= 0 && b > longest_wait_ms)
    b = longest_wait_ms;
  if (!(retry_after_s >= 0)) /* none, or NaN */
    return b;
  ra = to_ms_ceil(retry_after_s, 1e6);
  if (longest_wait_ms >= 0 && ra > longest_wait_ms)
    return -1;
  return ra > b ? ra : b;
}

/* ---- header value parsers ------------------------------------------------ */

static const char *skip_blank(const char *s) {
  while (*s == ' ' || *s == '\t')
    s++;
  return s;
}

/* Go's time.ParseDuration grammar, non-negative only:
 * [+] ("0" | (decimal unit)+), decimal = digits [. digits] | . digits */
int llmr__parse_duration_ms(const char *s, int64_t *out_ms) {
  static const struct {
    const char *name;
    double ns;
  } units[] = {
      /* clang-format off */
      /* longest first where one is a prefix of another ("ms" vs "m") */
      {"ns", 1},
      {"us", 1e3},
      {"\xc2\xb5s", 1e3}, /* U+00B5 micro sign */
      {"\xce\xbcs", 1e3}, /* U+03BC Greek mu */
      {"ms", 1e6},
      {"s", 1e9},
      {"m", 60e9},
      {"h", 3600e9},
      /* clang-format on */
  };
  const double max_ns = 1e16; /* about 115 days */
  double total = 0;
  int64_t ns;
  if (!s || !out_ms)
    return -1;
  s = skip_blank(s);
  if (*s == '+')
    s++;
  if (s[0] == '0' && *skip_blank(s + 1) == '\0') {
    *out_ms = 0;
    return 0;
  }
  if (*skip_blank(s) == '\0')
    return -1;
  while (*s && *s != ' ' && *s != '\t') {
    double v = 0, scale = 1;
    int digits = 0;
    size_t u, len = 0;
    while (*s >= '0' && *s <= '9') {
      v = v * 10 + (*s++ - '0');
      digits++;
    }
    if (*s == '.') {
      s++;
      while (*s >= '0' && *s <= '9') {
        scale /= 10;
        v += (*s++ - '0') * scale;
        digits++;
      }
    }
    if (digits == 0 || v > max_ns)
      return -1;
    for (u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
      len = strlen(units[u].name);
      if (strncmp(s, units[u].name, len) == 0)
        break;
    }
    if (u == sizeof(units) / sizeof(units[0]))
      return -1; /* missing or unknown unit */
    s += len;
    total += v * units[u].ns;
    if (total > max_ns)
      return -1;
  }
  if (*skip_blank(s) != '\0')
    return -1;
  ns = (int64_t)llround(total);
  *out_ms = (ns + 999999) / 1000000;
  return 0;
}

/* Exactly n decimal digits. */
static int fixed_digits(const char **p, int n, int *out) {
  int v = 0, i;
  for (i = 0; i < n; i++) {
    char c = (*p)[i];
    if (c < '0' || c > '9')
      return -1;
    v = v * 10 + (c - '0');
  }
  *p += n;
  *out = v;
  return 0;
}

static int leap_year(int y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* RFC 3339 section 5.6 date-time (the profile the `-reset` headers use). */
int llmr__parse_rfc3339_ms(const char *s, int64_t *out_ms) {
  static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  int y, mo, d, h, mi, sec, ms = 0, off = 0, oh, om, n;
  struct tm tm;
  time_t t;
  if (!s || !out_ms)
    return -1;
  s = skip_blank(s);
  if (fixed_digits(&s, 4, &y) || *s++ != '-' || fixed_digits(&s, 2, &mo) ||
      *s++ != '-' || fixed_digits(&s, 2, &d))
    return -1;
  if (*s != 'T' && *s != 't' && *s != ' ')
    return -1;
  s++;
  if (fixed_digits(&s, 2, &h) || *s++ != ':' || fixed_digits(&s, 2, &mi) ||
      *s++ != ':' || fixed_digits(&s, 2, &sec))
    return -1;
  if (*s == '.') {
    s++;
    if (*s < '0' || *s > '9')
      return -1;
    for (n = 0; *s >= '0' && *s <= '9'; s++, n++)
      if (n < 3)
        ms = ms * 10 + (*s - '0');
    for (; n < 3; n++)
      ms *= 10;
  }
  if (*s == 'Z' || *s == 'z') {
    s++;
  } else if (*s == '+' || *s == '-') {
    int sign = *s++ == '-' ? -1 : 1;
    if (fixed_digits(&s, 2, &oh) || *s++ != ':' || fixed_digits(&s, 2, &om) ||
        oh > 23 || om > 59)
      return -1;
    off = sign * (oh * 60 + om);
  } else {
    return -1;
  }
  if (*skip_blank(s) != '\0')
    return -1;
  if (mo < 1 || mo > 12 || d < 1 ||
      d > mdays[mo - 1] + (mo == 2 && leap_year(y)) || h > 23 || mi > 59 ||
      sec > 60)
    return -1;
  memset(&tm, 0, sizeof(tm));
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = sec; /* a leap second normalises to :00 of the next minute */
  t = timegm(&tm);
  *out_ms = (int64_t)t * 1000 + ms - (int64_t)off * 60000;
  return 0;
}

/* ---- rate-limit headers -------------------------------------------------- */

/* A remaining count that is exactly zero. */
static int is_zero_count(const char *v) {
  char *end;
  double d;
  if (!v)
    return 0;
  v = skip_blank(v);
  if (*v < '0' || *v > '9')
    return 0; /* "-1" (Azure: not applicable), empty, garbage */
  d = strtod(v, &end);
  return *skip_blank(end) == '\0' && d == 0;
}

/* A reset value as a wait in ms from now, or -1. */
static int64_t reset_wait_ms(const char *v, int64_t now_rt) {
  int64_t ms;
  char *end;
  double d;
  if (!v)
    return -1;
  if (llmr__parse_duration_ms(v, &ms) == 0)
    return ms;
  v = skip_blank(v);
  if (*v >= '0' && *v <= '9') {
    d = strtod(v, &end); /* a bare number: seconds (Azure OpenAI) */
    if (*skip_blank(end) == '\0' && isfinite(d) && d >= 0)
      return to_ms_ceil(d, 1e6);
  }
  if (llmr__parse_rfc3339_ms(v, &ms) == 0)
    return ms > now_rt ? ms - now_rt : 0;
  return -1;
}

static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* Whether s starts with the literal lit, ASCII case-insensitively. */
#define STARTS_CI(s, lit) llmr__strncaseeq((s), (lit), sizeof(lit) - 1)

int llmr__ratelimit_headers_present(const llmr_http_response *http) {
  size_t i;
  if (!http)
    return 0;
  for (i = 0; i < http->n_headers; i++) {
    const char *n = http->headers[i].name;
    /* by the first letter (| 0x20 maps only 'R' and 'r' to 'r', ...) */
    switch (n[0] | 0x20) {
    case 'r':
      if (STARTS_CI(n + 1, "etry-after"))
        return 1;
      break;
    case 'x':
      if (STARTS_CI(n + 1, "-ratelimit-"))
        return 1;
      break;
    case 'a':
      if (STARTS_CI(n + 1, "nthropic-ratelimit-"))
        return 1;
      break;
    default:
      break;
    }
  }
  return 0;
}

int64_t llmr__ratelimit_cooldown_ms(const llmr_http_response *http,
                                    int64_t now_ms_realtime) {
  static const char *const pairs[][2] = {
      {"x-ratelimit-remaining-requests", "x-ratelimit-reset-requests"},
      {"x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens"},
      {"anthropic-ratelimit-requests-remaining",
       "anthropic-ratelimit-requests-reset"},
      {"anthropic-ratelimit-tokens-remaining",
       "anthropic-ratelimit-tokens-reset"},
      {"anthropic-ratelimit-input-tokens-remaining",
       "anthropic-ratelimit-input-tokens-reset"},
      {"anthropic-ratelimit-output-tokens-remaining",
       "anthropic-ratelimit-output-tokens-reset"},
  };
  const char *v;
  int64_t wait = 0;
  size_t i;
  /* one pass over the names first: most replies carry none of these */
  if (!llmr__ratelimit_headers_present(http))
    return 0;

  /* Retry-After: retry-after-ms wins, as in llmr__retry_after_from_headers
   * (the OpenAI SDKs' rule); an HTTP-date counts from our clock. */
  v = llmr_http_response_header(http, "retry-after-ms");
  if (v) {
    char *end = NULL;
    double d = -1;
    v = skip_blank(v);
    if (*v >= '0' && *v <= '9')
      d = strtod(v, &end);
    if (end && *skip_blank(end) == '\0' && isfinite(d))
      wait = to_ms_ceil(d, 1e3);
    else
      v = NULL; /* malformed: fall back to retry-after */
  }
  if (!v && (v = llmr_http_response_header(http, "retry-after")) != NULL) {
    const char *p = skip_blank(v);
    if (*p >= '0' && *p <= '9') {
      double d = llmr_parse_retry_after(p);
      if (d >= 0)
        wait = to_ms_ceil(d, 1e6);
    } else {
      time_t t = curl_getdate(p, NULL);
      if (t != (time_t)-1) {
        int64_t at = (int64_t)t * 1000;
        wait = at > now_ms_realtime ? at - now_ms_realtime : 0;
      }
    }
  }

  for (i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
    if (is_zero_count(llmr_http_response_header(http, pairs[i][0])))
      wait = max64(wait,
                   reset_wait_ms(llmr_http_response_header(http, pairs[i][1]),
                                 now_ms_realtime));
  }
  return wait > LLMR__COOLDOWN_MAX_MS ? LLMR__COOLDOWN_MAX_MS : wait;
}

/* ---- circuit breaker / cooldown table ------------------------------------ */

#define LLMR__HEALTH_MAX_FAILURES 256

typedef struct hentry {
  struct hentry *next; /* hash chain */
  uint64_t hash;
  int64_t open_until;  /* valid while is_open */
  int64_t trial_start; /* valid while trial */
  int64_t last_fail;   /* most recent counted failure (valid if nfail) */
  int64_t last_used;   /* for LRU eviction */
  unsigned nfail;      /* failures in the ring */
  unsigned head;       /* next ring slot to write (= the oldest when full) */
  unsigned char is_open;
  unsigned char trial; /* a TRIAL holder has not reported yet */
  int64_t *fails;      /* ring of h->failures timestamps */
  char *key;
} hentry;

struct llmr__health {
  pthread_mutex_t mu;
  hentry **buckets;
  size_t nbuckets; /* a power of two */
  size_t count;
  size_t max_keys;
  unsigned failures; /* 0: counting disabled */
  int64_t window_ms;
  int64_t cooldown_ms;
  int64_t trial_timeout_ms;
  /* Bit b is set while some stored key has filter bit b: a clear bit
   * proves the key has nothing stored, without taking the lock. */
  atomic_uint_fast64_t filter;
  unsigned filter_count[64]; /* under mu */
};

static uint64_t hash_key(const char *s) {
  uint64_t x = 0xcbf29ce484222325ull; /* FNV-1a */
  for (; *s; s++)
    x = (x ^ (unsigned char)*s) * 0x100000001b3ull;
  return x ^ (x >> 29);
}

static uint64_t filter_bit(uint64_t hash) { return 1ull << (hash >> 58); }

static int maybe_stored(llmr__health *h, uint64_t hash) {
  return (atomic_load_explicit(&h->filter, memory_order_acquire) &
          filter_bit(hash)) != 0;
}

llmr__health *llmr__health_new(const llmr__health_opts *o) {
  llmr__health_opts d = {0, 0, 0, 0, 0};
  llmr__health *h;
  if (o)
    d = *o;
  h = llmr__calloc(1, sizeof(*h));
  if (!h)
    return NULL;
  h->failures = d.failures < 0    ? 0u
                : d.failures == 0 ? 3u
                : d.failures > LLMR__HEALTH_MAX_FAILURES
                    ? LLMR__HEALTH_MAX_FAILURES
                    : (unsigned)d.failures;
  h->window_ms = d.window_ms > 0 ? d.window_ms : 60000;
  h->cooldown_ms = d.cooldown_ms > 0 ? d.cooldown_ms : 30000;
  h->trial_timeout_ms = d.trial_timeout_ms > 0 ? d.trial_timeout_ms : 600000;
  h->max_keys = d.max_keys ? d.max_keys : 1024;
  h->nbuckets = 16;
  while (h->nbuckets < h->max_keys && h->nbuckets < ((size_t)1 << 20))
    h->nbuckets <<= 1;
  h->buckets = llmr__calloc(h->nbuckets, sizeof(*h->buckets));
  if (!h->buckets || pthread_mutex_init(&h->mu, NULL) != 0) {
    llmr__free(h->buckets);
    llmr__free(h);
    return NULL;
  }
  atomic_init(&h->filter, 0);
  return h;
}

void llmr__health_free(llmr__health *h) {
  size_t i;
  if (!h)
    return;
  for (i = 0; i < h->nbuckets; i++) {
    hentry *e = h->buckets[i], *next;
    for (; e; e = next) {
      next = e->next;
      llmr__free(e);
    }
  }
  llmr__free(h->buckets);
  pthread_mutex_destroy(&h->mu);
  llmr__free(h);
}

static hentry *find(llmr__health *h, const char *key, uint64_t hash) {
  hentry *e = h->buckets[hash & (h->nbuckets - 1)];
  for (; e; e = e->next)
    if (e->hash == hash && strcmp(e->key, key) == 0)
      return e;
  return NULL;
}

static void unlink_entry(llmr__health *h, hentry *e) {
  hentry **pp = &h->buckets[e->hash & (h->nbuckets - 1)];
  unsigned b = (unsigned)(e->hash >> 58);
  while (*pp != e)
    pp = &(*pp)->next;
  *pp = e->next;
  h->count--;
  if (--h->filter_count[b] == 0)
    atomic_fetch_and_explicit(&h->filter, ~filter_bit(e->hash),
                              memory_order_release);
  llmr__free(e);
}

/* Which stored key to drop for a new one (see policy.h), or NULL. */
static hentry *eviction_victim(llmr__health *h, int64_t now) {
  hentry *idle = NULL, *closed = NULL, *open = NULL;
  size_t i;
  for (i = 0; i < h->nbuckets; i++) {
    hentry *e;
    for (e = h->buckets[i]; e; e = e->next) {
      if (e->trial)
        continue;
      if (e->is_open) {
        if (!open || e->open_until < open->open_until)
          open = e;
      } else if (e->nfail == 0 || now - e->last_fail > h->window_ms) {
        if (!idle || e->last_used < idle->last_used)
          idle = e;
      } else if (!closed || e->last_used < closed->last_used) {
        closed = e;
      }
    }
  }
  return idle ? idle : closed ? closed : open;
}

static hentry *insert(llmr__health *h, const char *key, uint64_t hash,
                      int64_t now) {
  size_t klen = strlen(key), ring = h->failures * sizeof(int64_t);
  hentry *e, **bucket;
  unsigned b = (unsigned)(hash >> 58);
  if (h->count >= h->max_keys) {
    hentry *victim = eviction_victim(h, now);
    if (!victim)
      return NULL;
    unlink_entry(h, victim);
  }
  /* one block: the entry, its failure ring, its key (struct size keeps
   * the ring 8-byte aligned) */
  e = llmr__calloc(1, sizeof(*e) + ring + klen + 1);
  if (!e)
    return NULL;
  e->hash = hash;
  e->fails = (int64_t *)(void *)(e + 1);
  e->key = (char *)(e + 1) + ring;
  memcpy(e->key, key, klen + 1);
  e->last_used = now;
  bucket = &h->buckets[hash & (h->nbuckets - 1)];
  e->next = *bucket;
  *bucket = e;
  h->count++;
  if (h->filter_count[b]++ == 0)
    atomic_fetch_or_explicit(&h->filter, filter_bit(hash),
                             memory_order_release);
  return e;
}

static void open_until_at_least(hentry *e, int64_t until) {
  if (!e->is_open || until > e->open_until)
    e->open_until = until;
  e->is_open = 1;
}

static void record_failure(llmr__health *h, hentry *e, int64_t now) {
  if (h->failures == 0)
    return;
  e->fails[e->head] = now;
  e->head = (e->head + 1) % h->failures;
  if (e->nfail < h->failures)
    e->nfail++;
  e->last_fail = now;
  /* full ring: the slot to write next holds the oldest of the last N */
  if (e->nfail == h->failures && now - e->fails[e->head] <= h->window_ms) {
    open_until_at_least(e, sat_add(now, h->cooldown_ms));
    e->nfail = 0;
    e->head = 0;
  }
}

static void reset_failures(hentry *e) {
  e->nfail = 0;
  e->head = 0;
}

/* Drop an entry that has nothing left to remember. */
static void maybe_forget(llmr__health *h, hentry *e) {
  if (!e->is_open && !e->trial && e->nfail == 0)
    unlink_entry(h, e);
}

uint64_t llmr__health_hash(const char *key) { return hash_key(key); }

int llmr__health_idle(llmr__health *h) {
  return atomic_load_explicit(&h->filter, memory_order_acquire) == 0;
}

llmr__health_decision llmr__health_check(llmr__health *h, const char *key,
                                         int64_t now_ms, int64_t *until_ms) {
  return llmr__health_check_hashed(h, key, key ? hash_key(key) : 0, now_ms,
                                   until_ms);
}

llmr__health_decision llmr__health_check_hashed(llmr__health *h,
                                                const char *key,
                                                uint64_t hash, int64_t now_ms,
                                                int64_t *until_ms) {
  llmr__health_decision d = LLMR__HEALTH_ALLOW;
  int64_t until = now_ms;
  hentry *e;
  if (!h || !key)
    goto out;
  if (!maybe_stored(h, hash))
    goto out;
  pthread_mutex_lock(&h->mu);
  e = find(h, key, hash);
  if (e) {
    e->last_used = now_ms;
    if (!e->is_open) {
      d = LLMR__HEALTH_ALLOW;
    } else if (now_ms < e->open_until) {
      d = LLMR__HEALTH_SKIP;
      until = e->open_until;
    } else if (e->trial && now_ms - e->trial_start < h->trial_timeout_ms) {
      d = LLMR__HEALTH_SKIP; /* another caller's trial is in flight */
    } else {
      d = LLMR__HEALTH_TRIAL;
      e->trial = 1;
      e->trial_start = now_ms;
    }
  }
  pthread_mutex_unlock(&h->mu);
out:
  if (until_ms)
    *until_ms = until;
  return d;
}

void llmr__health_report_hashed(llmr__health *h, const char *key,
                                uint64_t hash, int64_t now_ms, int ok,
                                int64_t hint, int is_trial) {
  hentry *e;
  if (!h || !key)
    return;
  /* the common case, a success for a key with nothing stored: no lock */
  if (ok && hint <= 0 && !maybe_stored(h, hash))
    return;
  pthread_mutex_lock(&h->mu);
  e = find(h, key, hash);
  if (!e) {
    /* nothing to remember: a success, or a failure nobody counts */
    if (hint <= 0 && (ok || (h->failures == 0 && !is_trial)))
      goto out;
    e = insert(h, key, hash, now_ms);
    if (!e)
      goto out;
  }
  e->last_used = now_ms;
  if (is_trial)
    e->trial = 0;
  if (ok) {
    reset_failures(e);
    /* close only once the cooldown has passed: never shorten it */
    if (e->is_open && now_ms >= e->open_until)
      e->is_open = 0;
  } else if (is_trial) {
    open_until_at_least(e, sat_add(now_ms, h->cooldown_ms));
  } else if (!e->is_open) {
    record_failure(h, e, now_ms);
  }
  if (hint > 0)
    open_until_at_least(e, sat_add(now_ms, hint));
  maybe_forget(h, e);
out:
  pthread_mutex_unlock(&h->mu);
}

void llmr__health_report(llmr__health *h, const char *key, int64_t now_ms,
                         int ok, int64_t cooldown_hint_ms) {
  llmr__health_report_hashed(h, key, key ? hash_key(key) : 0, now_ms, ok,
                             cooldown_hint_ms, 0);
}

void llmr__health_report_trial(llmr__health *h, const char *key, int64_t now_ms,
                               int ok, int64_t cooldown_hint_ms) {
  llmr__health_report_hashed(h, key, key ? hash_key(key) : 0, now_ms, ok,
                             cooldown_hint_ms, 1);
}

int64_t llmr__health_earliest(llmr__health *h, const char *const *keys,
                              size_t n, int64_t now_ms) {
  int64_t best = INT64_MAX;
  size_t i;
  if (!h || n == 0)
    return now_ms;
  for (i = 0; i < n; i++)
    if (!keys[i] || !maybe_stored(h, hash_key(keys[i])))
      return now_ms; /* nothing stored: closed */
  pthread_mutex_lock(&h->mu);
  for (i = 0; i < n && best > now_ms; i++) {
    hentry *e = find(h, keys[i], hash_key(keys[i]));
    if (!e || !e->is_open || e->open_until <= now_ms)
      best = now_ms; /* closed, half-open, or a trial that may close it */
    else if (e->open_until < best)
      best = e->open_until;
  }
  pthread_mutex_unlock(&h->mu);
  return best < now_ms ? now_ms : best;
}

size_t llmr__health_size(llmr__health *h) {
  size_t n;
  if (!h)
    return 0;
  pthread_mutex_lock(&h->mu);
  n = h->count;
  pthread_mutex_unlock(&h->mu);
  return n;
}

void llmr__health_release_trial(llmr__health *h, const char *key) {
  llmr__health_release_trial_hashed(h, key, key ? hash_key(key) : 0);
}

void llmr__health_release_trial_hashed(llmr__health *h, const char *key,
                                       uint64_t hash) {
  hentry *e;
  if (!h || !key)
    return;
  if (!maybe_stored(h, hash))
    return;
  pthread_mutex_lock(&h->mu);
  if ((e = find(h, key, hash)) != NULL && e->trial) {
    e->trial = 0;
    maybe_forget(h, e);
  }
  pthread_mutex_unlock(&h->mu);
}

/* ---- the fallback policy ------------------------------------------------- */

static const struct {
  const char *name;
  unsigned char action; /* llmr__action */
  unsigned char scope;  /* llmr__scope */
} eclasses[LLMR__EC_COUNT] = {
    /* clang-format off */
    [LLMR__EC_CONNECT]         = {"connect",         LLMR__ACT_RETRY,    LLMR__SCOPE_PROVIDER},
    [LLMR__EC_TLS]             = {"tls",             LLMR__ACT_FALLBACK, LLMR__SCOPE_PROVIDER},
    [LLMR__EC_TIMEOUT]         = {"timeout",         LLMR__ACT_RETRY,    LLMR__SCOPE_MODEL},
    [LLMR__EC_REQUEST_TIMEOUT] = {"request_timeout", LLMR__ACT_RETRY,    LLMR__SCOPE_MODEL},
    [LLMR__EC_CONFLICT]        = {"conflict",        LLMR__ACT_RETRY,    LLMR__SCOPE_NONE},
    [LLMR__EC_RATE_LIMITED]    = {"rate_limited",    LLMR__ACT_RETRY,    LLMR__SCOPE_MODEL},
    [LLMR__EC_SERVER_ERROR]    = {"server_error",    LLMR__ACT_RETRY,    LLMR__SCOPE_MODEL},
    [LLMR__EC_OVERLOADED]      = {"overloaded",      LLMR__ACT_RETRY,    LLMR__SCOPE_MODEL},
    [LLMR__EC_PAYMENT]         = {"payment",         LLMR__ACT_FALLBACK, LLMR__SCOPE_PROVIDER},
    [LLMR__EC_CONTEXT_LENGTH]  = {"context_length",  LLMR__ACT_FALLBACK, LLMR__SCOPE_NONE},
    [LLMR__EC_CONTENT_FILTER]  = {"content_filter",  LLMR__ACT_STOP,     LLMR__SCOPE_NONE},
    [LLMR__EC_AUTH]            = {"auth",            LLMR__ACT_FALLBACK, LLMR__SCOPE_PROVIDER},
    [LLMR__EC_BAD_REQUEST]     = {"bad_request",     LLMR__ACT_STOP,     LLMR__SCOPE_NONE},
    [LLMR__EC_NOT_FOUND]       = {"not_found",       LLMR__ACT_FALLBACK, LLMR__SCOPE_NONE},
    [LLMR__EC_PROTOCOL]        = {"protocol",        LLMR__ACT_FALLBACK, LLMR__SCOPE_MODEL},
    [LLMR__EC_PROVIDER_ERROR]  = {"provider_error",  LLMR__ACT_RETRY,    LLMR__SCOPE_MODEL},
    [LLMR__EC_TOO_LARGE]       = {"too_large",       LLMR__ACT_STOP,     LLMR__SCOPE_NONE},
    [LLMR__EC_NO_KEY]          = {"no_key",          LLMR__ACT_FALLBACK, LLMR__SCOPE_NONE},
    [LLMR__EC_NO_PROVIDER]     = {"no_provider",     LLMR__ACT_FALLBACK, LLMR__SCOPE_NONE},
    [LLMR__EC_CAPABILITY]      = {"capability",      LLMR__ACT_FALLBACK, LLMR__SCOPE_NONE},
    [LLMR__EC_BUDGET]          = {"budget",          LLMR__ACT_FALLBACK, LLMR__SCOPE_NONE},
    /* clang-format on */
};

const char *llmr__eclass_name(int cls) {
  return cls >= 0 && cls < LLMR__EC_COUNT ? eclasses[cls].name : NULL;
}

const char *llmr__action_name(int act) {
  return act == LLMR__ACT_RETRY      ? "retry"
         : act == LLMR__ACT_FALLBACK ? "fallback"
                                     : "stop";
}

llmr__scope llmr__eclass_scope(int cls) {
  return cls >= 0 && cls < LLMR__EC_COUNT ? (llmr__scope)eclasses[cls].scope
                                          : LLMR__SCOPE_NONE;
}

llmr__action llmr__eclass_default(int cls) {
  return cls >= 0 && cls < LLMR__EC_COUNT ? (llmr__action)eclasses[cls].action
                                          : LLMR__ACT_STOP;
}

int llmr__eclass_of(llmr_status st, int http) {
  switch (st) {
  case LLMR_E_TRANSPORT:
    return LLMR__EC_CONNECT;
  case LLMR_E_TLS:
    return LLMR__EC_TLS;
  case LLMR_E_TIMEOUT:
    return http == 408 ? LLMR__EC_REQUEST_TIMEOUT : LLMR__EC_TIMEOUT;
  case LLMR_E_RATE_LIMITED:
    return LLMR__EC_RATE_LIMITED;
  case LLMR_E_SERVER:
    return LLMR__EC_SERVER_ERROR;
  case LLMR_E_OVERLOADED:
    /* 503 is a 5xx row of the table; 529 and an "overloaded"
     * error type (any status, or inside a stream) are their own row */
    return (http >= 500 && http < 600 && http != 529) ? LLMR__EC_SERVER_ERROR
                                                      : LLMR__EC_OVERLOADED;
  case LLMR_E_PAYMENT:
    return LLMR__EC_PAYMENT;
  case LLMR_E_CONTEXT_LENGTH:
    return LLMR__EC_CONTEXT_LENGTH;
  case LLMR_E_CONTENT_FILTER:
    return LLMR__EC_CONTENT_FILTER;
  case LLMR_E_AUTH:
    return LLMR__EC_AUTH;
  case LLMR_E_BAD_REQUEST:
    return http == 409 ? LLMR__EC_CONFLICT : LLMR__EC_BAD_REQUEST;
  case LLMR_E_NOT_FOUND:
    return LLMR__EC_NOT_FOUND;
  case LLMR_E_PROTOCOL:
    return LLMR__EC_PROTOCOL;
  case LLMR_E_PROVIDER:
    return LLMR__EC_PROVIDER_ERROR;
  case LLMR_E_TOO_LARGE:
    return LLMR__EC_TOO_LARGE;
  case LLMR_E_NO_KEY:
    return LLMR__EC_NO_KEY;
  case LLMR_E_NO_PROVIDER:
    return LLMR__EC_NO_PROVIDER;
  case LLMR_E_CAPABILITY:
    return LLMR__EC_CAPABILITY;
  case LLMR_E_BUDGET:
    return LLMR__EC_BUDGET;
  default:
    return -1;
  }
}

void llmr__policy_defaults(llmr__policy *p) {
  int i;
  memset(p, 0, sizeof(*p));
  p->retries = 0;
  p->backoff_ms = 200;
  p->backoff_cap_ms = 5000;
  p->longest_wait_ms = 10000;
  p->cooldown = 1;
  p->rate_limit_headers = 1;
  for (i = 0; i < LLMR__EC_COUNT; i++)
    p->action[i] = eclasses[i].action;
}

#define POL_ERR(...)                                                           \
  do {                                                                         \
    llmr__errf(errbuf, errsize, __VA_ARGS__);                                  \
    return LLMR_E_INVAL;                                                       \
  } while (0)

/* A whole number in [min, max] into *out; -1 when v is not one. */
static int pol_int(const cJSON *v, double min, double max, int64_t *out) {
  if (!cJSON_IsNumber(v) || !(v->valuedouble >= min) ||
      !(v->valuedouble <= max) || v->valuedouble != floor(v->valuedouble))
    return -1;
  *out = (int64_t)v->valuedouble;
  return 0;
}

#define POL_MS_MAX 2147483647.0 /* what CURLOPT_TIMEOUT_MS takes (a long) */

static llmr_status apply_fallback_on(llmr__policy *p, const cJSON *obj,
                                     const char *where, char *errbuf,
                                     size_t errsize) {
  const cJSON *v;
  if (!cJSON_IsObject(obj))
    POL_ERR("%s.fallback_on: expected an object of error class -> "
            "true, false, \"retry\", \"fallback\" or \"stop\"",
            where);
  cJSON_ArrayForEach(v, obj) {
    int c;
    unsigned char act;
    for (c = 0; c < LLMR__EC_COUNT; c++)
      if (strcmp(v->string, eclasses[c].name) == 0)
        break;
    if (c == LLMR__EC_COUNT)
      POL_ERR("%s.fallback_on.%s: unknown error class", where, v->string);
    if (cJSON_IsTrue(v)) {
      act = eclasses[c].action != LLMR__ACT_STOP ? eclasses[c].action
                                                 : LLMR__ACT_FALLBACK;
    } else if (cJSON_IsFalse(v)) {
      act = LLMR__ACT_STOP;
    } else if (cJSON_IsString(v) && strcmp(v->valuestring, "retry") == 0) {
      act = LLMR__ACT_RETRY;
    } else if (cJSON_IsString(v) && strcmp(v->valuestring, "fallback") == 0) {
      act = LLMR__ACT_FALLBACK;
    } else if (cJSON_IsString(v) && strcmp(v->valuestring, "stop") == 0) {
      act = LLMR__ACT_STOP;
    } else {
      POL_ERR("%s.fallback_on.%s: expected true, false, \"retry\", "
              "\"fallback\" or \"stop\"",
              where, v->string);
    }
    if (act == LLMR__ACT_RETRY &&
        (c == LLMR__EC_AUTH || c == LLMR__EC_NO_KEY ||
         c == LLMR__EC_NO_PROVIDER || c == LLMR__EC_CAPABILITY ||
         c == LLMR__EC_BUDGET))
      POL_ERR("%s.fallback_on.%s: \"retry\" is not allowed: the same %s "
              "would give the same answer",
              where, v->string, c == LLMR__EC_AUTH ? "key" : "check");
    p->action[c] = act;
    p->explicit_[c] = 1;
  }
  return LLMR_OK;
}

static llmr_status apply_cooldown(llmr__policy *p, const cJSON *v,
                                  llmr__health_opts *hopts, int *cooldown_on,
                                  const char *where, char *errbuf,
                                  size_t errsize) {
  const cJSON *k;
  int64_t n;
  if (cJSON_IsBool(v)) {
    p->cooldown = cJSON_IsTrue(v);
    if (cooldown_on)
      *cooldown_on = p->cooldown;
    return LLMR_OK;
  }
  if (!hopts)
    POL_ERR("%s.cooldown: expected true or false (the circuit settings are "
            "the router's)",
            where);
  if (!cJSON_IsObject(v))
    POL_ERR("%s.cooldown: expected false or an object with failures, "
            "window_ms, cooldown_ms, rate_limit_headers",
            where);
  cJSON_ArrayForEach(k, v) {
    if (strcmp(k->string, "failures") == 0) {
      if (pol_int(k, 0, 256, &n))
        POL_ERR("%s.cooldown.failures: expected an integer from 0 (never "
                "open on failures) to 256",
                where);
      hopts->failures = n == 0 ? -1 : (int)n;
    } else if (strcmp(k->string, "window_ms") == 0) {
      if (pol_int(k, 1, POL_MS_MAX, &n))
        POL_ERR("%s.cooldown.window_ms: expected a positive integer", where);
      hopts->window_ms = n;
    } else if (strcmp(k->string, "cooldown_ms") == 0) {
      if (pol_int(k, 1, POL_MS_MAX, &n))
        POL_ERR("%s.cooldown.cooldown_ms: expected a positive integer",
                where);
      hopts->cooldown_ms = n;
    } else if (strcmp(k->string, "rate_limit_headers") == 0) {
      if (!cJSON_IsBool(k))
        POL_ERR("%s.cooldown.rate_limit_headers: expected true or false",
                where);
      p->rate_limit_headers = cJSON_IsTrue(k);
    } else {
      POL_ERR("%s.cooldown.%s: unknown setting", where, k->string);
    }
  }
  p->cooldown = 1;
  if (cooldown_on)
    *cooldown_on = 1;
  return LLMR_OK;
}

llmr_status llmr__policy_apply(llmr__policy *p, const cJSON *obj,
                               llmr__health_opts *hopts, int *cooldown_on,
                               const char *where, char *errbuf,
                               size_t errsize) {
  static const struct {
    const char *key;
    double min;
  } ms_keys[] = {{"backoff_ms", 0},      {"backoff_cap_ms", 0},
                 {"longest_wait_ms", 0}, {"deadline_ms", 0},
                 {"attempt_timeout_ms", 0}, {"hedge_ms", 0}};
  const cJSON *v;
  llmr_status st;
  int64_t n;
  size_t i;
  if (!cJSON_IsObject(obj))
    POL_ERR("%s: expected an object", where);
  cJSON_ArrayForEach(v, obj) {
    const char *k = v->string;
    if (strcmp(k, "retries") == 0) {
      if (pol_int(v, 0, 100, &n))
        POL_ERR("%s.retries: expected an integer from 0 to 100", where);
      p->retries = (int)n;
      continue;
    }
    if (strcmp(k, "fallback_on") == 0) {
      if ((st = apply_fallback_on(p, v, where, errbuf, errsize)) != LLMR_OK)
        return st;
      continue;
    }
    if (strcmp(k, "cooldown") == 0) {
      if ((st = apply_cooldown(p, v, hopts, cooldown_on, where, errbuf,
                               errsize)) != LLMR_OK)
        return st;
      continue;
    }
    for (i = 0; i < sizeof(ms_keys) / sizeof(ms_keys[0]); i++)
      if (strcmp(k, ms_keys[i].key) == 0)
        break;
    if (i == sizeof(ms_keys) / sizeof(ms_keys[0]))
      POL_ERR("%s.%s: unknown setting", where, k);
    if (pol_int(v, ms_keys[i].min, POL_MS_MAX, &n))
      POL_ERR("%s.%s: expected a whole number of milliseconds (0 or more)",
              where, k);
    switch (i) {
    case 0:
      p->backoff_ms = n;
      break;
    case 1:
      p->backoff_cap_ms = n;
      break;
    case 2:
      p->longest_wait_ms = n;
      break;
    case 3:
      p->deadline_ms = n;
      break;
    case 4:
      p->attempt_timeout_ms = n;
      break;
    default:
      p->hedge_ms = n;
      break;
    }
  }
  return LLMR_OK;
}

/* ---- load balancing ------------------------------------------------------ */

static int usable_weight(double w) { return w > 0 && isfinite(w); }

size_t llmr__pick_weighted(const double *weights, size_t n, uint64_t *rng) {
  double total = 0, r;
  size_t i, last = 0;
  if (n == 0 || !weights)
    return 0;
  for (i = 0; i < n; i++)
    if (usable_weight(weights[i]))
      total += weights[i];
  if (!(total > 0) || !isfinite(total))
    return (size_t)llmr__rng_below(rng, n);
  r = llmr__rng_unit(rng) * total;
  for (i = 0; i < n; i++) {
    if (!usable_weight(weights[i]))
      continue;
    last = i;
    if (r < weights[i])
      return i;
    r -= weights[i];
  }
  return last; /* rounding left r just above the last weight */
}

void llmr__rr_init(llmr__rr *rr, size_t start) {
  atomic_init(&rr->next, start);
}

size_t llmr__rr_next(llmr__rr *rr, size_t n) {
  if (n == 0)
    return 0;
  return atomic_fetch_add_explicit(&rr->next, 1, memory_order_relaxed) % n;
}
