/*
 * Unit tests for the retry/routing policy building blocks (src/policy.c):
 * jittered backoff, Retry-After rules, rate-limit header parsing with fixed
 * clocks, the circuit breaker / cooldown table, weighted and round-robin
 * picks.
 *
 * SPDX-License-Identifier: MIT
 */
/* cmocka.h needs these first */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "policy.h"

/* 2025-08-21T12:40:00Z: the fixed realtime clock of the header tests */
#define NOW_RT INT64_C(1755780000000)

/* ---- PRNG and backoff ---------------------------------------------------- */

static void test_rng_basics(void **state) {
  uint64_t a, b, r = 42;
  int seen[7] = {0}, i;
  (void)state;
  llmr__rng_seed(&a);
  llmr__rng_seed(&b);
  assert_true(a != b); /* 2^-64 chance of a false failure */
  assert_int_equal(llmr__rng_below(&r, 0), 0);
  assert_int_equal(llmr__rng_below(&r, 1), 0);
  for (i = 0; i < 70000; i++) {
    uint64_t v = llmr__rng_below(&r, 7);
    double u = llmr__rng_unit(&r);
    assert_true(v < 7);
    assert_true(u >= 0 && u < 1);
    seen[v]++;
  }
  for (i = 0; i < 7; i++) /* 10000 expected each, sd ~93 */
    assert_true(seen[i] > 9500 && seen[i] < 10500);
  /* NULL: a per-thread state */
  for (i = 0; i < 1000; i++)
    assert_true(llmr__rng_below(NULL, 5) < 5);
}

static void test_backoff_bounds_and_distribution(void **state) {
  const int64_t base = 100, cap = 10000;
  const int samples = 20000;
  uint64_t rng = 12345;
  unsigned attempt;
  (void)state;
  for (attempt = 0; attempt <= 12; attempt++) {
    int64_t bound = base << attempt, mx = 0;
    double sum = 0, mean;
    int i;
    if (bound > cap)
      bound = cap;
    for (i = 0; i < samples; i++) {
      int64_t v = llmr__backoff_ms(attempt, base, cap, &rng);
      assert_true(v >= 0 && v <= bound);
      sum += (double)v;
      if (v > mx)
        mx = v;
    }
    mean = sum / samples;
    /* uniform on [0, bound]: mean bound/2, sd of the mean ~0.2% of bound */
    assert_true(fabs(mean - (double)bound / 2) < (double)bound * 0.02);
    assert_true(mx >= bound - bound / 50);
  }
  /* the bound doubles per attempt until the cap: 100 200 ... 6400 10000 */
  {
    double m6 = 0, m7 = 0, m5 = 0;
    int i;
    for (i = 0; i < samples; i++) {
      m5 += (double)llmr__backoff_ms(5, base, cap, &rng);
      m6 += (double)llmr__backoff_ms(6, base, cap, &rng);
      m7 += (double)llmr__backoff_ms(7, base, cap, &rng);
    }
    assert_true(fabs(m6 / m5 - 2.0) < 0.1);
    assert_true(fabs(m7 / m6 - 10000.0 / 6400.0) < 0.1);
  }
  /* both ends of [0, bound] are reachable, evenly */
  {
    int seen[3] = {0}, i;
    for (i = 0; i < 30000; i++) {
      int64_t v = llmr__backoff_ms(1, 1, 100, &rng);
      assert_true(v >= 0 && v <= 2);
      seen[v]++;
    }
    for (i = 0; i < 3; i++)
      assert_true(seen[i] > 9500 && seen[i] < 10500);
  }
}

static void test_backoff_overflow_and_edges(void **state) {
  static const unsigned attempts[] = {30, 31, 32, 52,  53,   61,      62,
                                      63, 64, 65, 100, 1000, UINT_MAX};
  uint64_t rng = 7;
  size_t k;
  int i;
  (void)state;
  for (k = 0; k < sizeof(attempts) / sizeof(attempts[0]); k++)
    for (i = 0; i < 200; i++) {
      int64_t v = llmr__backoff_ms(attempts[k], 1000, 30000, &rng);
      assert_true(v >= 0 && v <= 30000);
      /* no cap: bounded by INT64_MAX, never negative */
      v = llmr__backoff_ms(attempts[k], 1000, 0, &rng);
      assert_true(v >= 0);
      v = llmr__backoff_ms(attempts[k], INT64_MAX, INT64_MAX, &rng);
      assert_true(v >= 0);
    }
  /* at a huge attempt the cap is the bound: mean near cap / 2 */
  {
    double sum = 0;
    for (i = 0; i < 20000; i++)
      sum += (double)llmr__backoff_ms(UINT_MAX, 1000, 30000, &rng);
    assert_true(fabs(sum / 20000 - 15000) < 600);
  }
  /* base above the cap: the cap wins from attempt 0 */
  for (i = 0; i < 1000; i++)
    assert_true(llmr__backoff_ms(0, 5000, 300, &rng) <= 300);
  assert_int_equal(llmr__backoff_ms(3, 0, 1000, &rng), 0);
  assert_int_equal(llmr__backoff_ms(3, -5, 1000, &rng), 0);
  /* NULL rng: a per-thread state */
  assert_true(llmr__backoff_ms(2, 100, 1000, NULL) <= 400);
}

static void test_retry_wait(void **state) {
  (void)state;
  /* no Retry-After (or NaN): the backoff */
  assert_int_equal(llmr__retry_wait_ms(-1, 500, 10000), 500);
  assert_int_equal(llmr__retry_wait_ms(NAN, 500, 10000), 500);
  /* the longer of the two */
  assert_int_equal(llmr__retry_wait_ms(2.0, 500, 10000), 2000);
  assert_int_equal(llmr__retry_wait_ms(0.2, 500, 10000), 500);
  assert_int_equal(llmr__retry_wait_ms(0, 500, 10000), 500);
  /* rounded up to whole ms, without binary-fraction surprises */
  assert_int_equal(llmr__retry_wait_ms(1.1, 0, 10000), 1100);
  assert_int_equal(llmr__retry_wait_ms(0.0001, 0, 10000), 1);
  /* more than the longest wait: -1 (move on); exactly the limit is fine */
  assert_int_equal(llmr__retry_wait_ms(30, 500, 10000), -1);
  assert_int_equal(llmr__retry_wait_ms(10.0, 500, 10000), 10000);
  assert_int_equal(llmr__retry_wait_ms(10.0005, 500, 10000), -1);
  assert_int_equal(llmr__retry_wait_ms(INFINITY, 500, 10000), -1);
  /* no limit */
  assert_int_equal(llmr__retry_wait_ms(3600, 500, -1), 3600000);
  assert_int_equal(llmr__retry_wait_ms(INFINITY, 500, -1), INT64_MAX);
  /* our own backoff never causes -1: it is clamped */
  assert_int_equal(llmr__retry_wait_ms(-1, 50000, 10000), 10000);
  assert_int_equal(llmr__retry_wait_ms(5, 50000, 10000), 10000);
  assert_int_equal(llmr__retry_wait_ms(-1, -3, 10000), 0);
  /* a limit of 0: never wait for the provider */
  assert_int_equal(llmr__retry_wait_ms(0.5, 100, 0), -1);
  assert_int_equal(llmr__retry_wait_ms(0, 100, 0), 0);
}

/* ---- header value parsers ------------------------------------------------ */

static void test_parse_duration(void **state) {
  static const struct {
    const char *in;
    int64_t ms;
  } ok[] = {
      /* OpenAI guide examples, "x-ratelimit-reset-*" */
      {"1s", 1000},
      {"6m0s", 360000},
      /* observed OpenAI values */
      {"12ms", 12},
      {"20ms", 20},
      /* Groq docs examples */
      {"2m59.56s", 179560},
      {"7.66s", 7660},
      /* Go time.Duration forms */
      {"1m30.5s", 90500},
      {"2h3m", 7380000},
      {"1h2m3s", 3723000},
      {"1.5h", 5400000},
      {".5s", 500},
      {"1.s", 1000},
      {"+1s", 1000},
      {"0", 0},
      {"0s", 0},
      {"  1s \t", 1000},
      {"37s", 37000}, /* Gemini RetryInfo.retryDelay */
      /* sub-ms rounds up */
      {"500us", 1},
      {"1500\xc2\xb5s", 2},
      {"1500\xce\xbcs", 2},
      {"100ns", 1},
      {"1000000ns", 1},
      {"1000001ns", 2},
      {"1ms500us", 2},
  };
  static const char *const bad[] = {
      "",   "  ",        "s",    "1",    "12",    "-1s",
      "1x", "1s2",       "1 s",  "abc",  "1e3s",  "1.2.3s",
      ".s", "99999999h", "1sms", "--1s", "0x10s", "1S",
  };
  size_t i;
  int64_t ms;
  (void)state;
  for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
    ms = -7;
    if (llmr__parse_duration_ms(ok[i].in, &ms) != 0 || ms != ok[i].ms)
      fail_msg("duration '%s': got %lld, want %lld", ok[i].in, (long long)ms,
               (long long)ok[i].ms);
  }
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    if (llmr__parse_duration_ms(bad[i], &ms) == 0)
      fail_msg("duration '%s' accepted as %lld", bad[i], (long long)ms);
  assert_int_equal(llmr__parse_duration_ms(NULL, &ms), -1);
}

static void test_parse_rfc3339(void **state) {
  static const struct {
    const char *in;
    int64_t ms;
  } ok[] = {
      /* Anthropic's form (docs: RFC 3339; observed "...T12:40:59Z") */
      {"2025-08-21T12:40:59Z", INT64_C(1755780059000)},
      {"2025-08-21T12:40:59.5Z", INT64_C(1755780059500)},
      {"2025-08-21T12:40:59.123Z", INT64_C(1755780059123)},
      {"2025-08-21T12:40:59.123456789Z", INT64_C(1755780059123)},
      {"2025-08-21T12:40:59.01Z", INT64_C(1755780059010)},
      {"2025-08-21T14:40:59+02:00", INT64_C(1755780059000)},
      {"2025-08-21T07:10:59-05:30", INT64_C(1755780059000)},
      {"2025-08-21T12:40:59.250+00:00", INT64_C(1755780059250)},
      {"2025-08-21T12:40:59-00:00", INT64_C(1755780059000)},
      {"2025-08-21t12:40:59z", INT64_C(1755780059000)},
      {"2025-08-21 12:40:59Z", INT64_C(1755780059000)},
      {" 2025-08-21T12:40:59Z ", INT64_C(1755780059000)},
      {"1970-01-01T00:00:00Z", 0},
      {"2024-02-29T00:00:00Z", INT64_C(1709164800000)},
      {"2016-12-31T23:59:60Z", INT64_C(1483228800000)}, /* leap second */
  };
  static const char *const bad[] = {
      "",
      "2025-08-21T12:40:59",       /* no offset */
      "2025-08-21",                /* date only */
      "2025-13-01T00:00:00Z",      /* month */
      "2025-02-29T00:00:00Z",      /* not a leap year */
      "2025-04-31T00:00:00Z",      /* day */
      "2025-08-21T24:00:00Z",      /* hour */
      "2025-08-21T12:60:00Z",      /* minute */
      "2025-08-21T12:40:61Z",      /* second */
      "2025-08-21T12:40:59.Z",     /* empty fraction */
      "2025-8-21T12:40:59Z",       /* short field */
      "2025-08-21T12:40:59+25:00", /* offset hour */
      "2025-08-21T12:40:59+0200",  /* offset without colon */
      "2025-08-21T12:40:59Zjunk",  /* trailing garbage */
      "2025-08-21X12:40:59Z",      /* separator */
      "Thu, 21 Aug 2025 12:41:00 GMT",
  };
  size_t i;
  int64_t ms;
  (void)state;
  for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
    ms = -7;
    if (llmr__parse_rfc3339_ms(ok[i].in, &ms) != 0 || ms != ok[i].ms)
      fail_msg("rfc3339 '%s': got %lld, want %lld", ok[i].in, (long long)ms,
               (long long)ok[i].ms);
  }
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    if (llmr__parse_rfc3339_ms(bad[i], &ms) == 0)
      fail_msg("rfc3339 '%s' accepted as %lld", bad[i], (long long)ms);
  assert_int_equal(llmr__parse_rfc3339_ms(NULL, &ms), -1);
}

/* ---- rate-limit headers -------------------------------------------------- */

/* The cooldown for a reply with these header lines (NULL-terminated). */
static int64_t cooldown(const char *first, ...) {
  llmr_http_response http;
  const char *line;
  va_list ap;
  int64_t ms;
  memset(&http, 0, sizeof(http));
  http.status = 429;
  va_start(ap, first);
  for (line = first; line; line = va_arg(ap, const char *))
    assert_int_equal(llmr__http_response_add_header(&http, line, strlen(line)),
                     LLMR_OK);
  va_end(ap);
  ms = llmr__ratelimit_cooldown_ms(&http, NOW_RT);
  llmr__http_response_clear(&http);
  return ms;
}

/* The name pass before the clock is read: any case, and names that
 * start alike but are not rate-limit headers. The names are set directly
 * (add_header lowercases them). */
static void test_ratelimit_headers_present(void **state) {
  static const struct {
    const char *name;
    int yes;
  } cases[] = {
      {"retry-after", 1},
      {"Retry-After-Ms", 1},
      {"RETRY-AFTER", 1},
      {"x-ratelimit-remaining-requests", 1},
      {"X-RateLimit-Reset-Tokens", 1},
      {"anthropic-ratelimit-tokens-remaining", 1},
      {"Anthropic-RateLimit-Requests-Reset", 1},
      {"retry", 0},
      {"retry_after", 0},
      {"x-request-id", 0},
      {"x-ratelimit", 0},
      {"anthropic-version", 0},
      {"ratelimit-remaining", 0},
      {"content-type", 0},
      {"", 0},
  };
  llmr_http_response http;
  llmr__header h[2];
  size_t i;
  (void)state;
  assert_int_equal(llmr__ratelimit_headers_present(NULL), 0);
  memset(&http, 0, sizeof(http));
  http.headers = h;
  h[0].name = (char *)"date";
  h[0].value = h[1].value = (char *)"0";
  for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    h[1].name = (char *)cases[i].name;
    http.n_headers = 2;
    if (llmr__ratelimit_headers_present(&http) != cases[i].yes)
      fail_msg("'%s': expected %d", cases[i].name, cases[i].yes);
  }
  http.n_headers = 0;
  assert_int_equal(llmr__ratelimit_headers_present(&http), 0);
}

static void test_cooldown_retry_after(void **state) {
  (void)state;
  assert_int_equal(llmr__ratelimit_cooldown_ms(NULL, NOW_RT), 0);
  assert_int_equal(cooldown(NULL), 0);
  assert_int_equal(cooldown("content-type: application/json", NULL), 0);
  /* seconds */
  assert_int_equal(cooldown("retry-after: 2", NULL), 2000);
  assert_int_equal(cooldown("Retry-After: 1.5\r\n", NULL), 1500);
  assert_int_equal(cooldown("retry-after: 0", NULL), 0);
  assert_int_equal(cooldown("retry-after: soon", NULL), 0);
  /* ms, which wins over retry-after (OpenAI SDK rule) */
  assert_int_equal(cooldown("retry-after-ms: 250", NULL), 250);
  assert_int_equal(cooldown("retry-after: 10", "retry-after-ms: 250", NULL),
                   250);
  assert_int_equal(cooldown("retry-after-ms: 0.5", NULL), 1);
  /* a malformed retry-after-ms falls back to retry-after */
  assert_int_equal(cooldown("retry-after-ms: abc", "retry-after: 3", NULL),
                   3000);
  assert_int_equal(cooldown("retry-after-ms: -5", "retry-after: 3", NULL),
                   3000);
  /* HTTP-date, against the given clock (12:40:00) */
  assert_int_equal(cooldown("retry-after: Thu, 21 Aug 2025 12:40:30 GMT", NULL),
                   30000);
  assert_int_equal(
      cooldown("retry-after: Thursday, 21-Aug-25 12:41:00 GMT", NULL), 60000);
  assert_int_equal(cooldown("retry-after: Thu Aug 21 12:40:05 2025", NULL),
                   5000);
  assert_int_equal(cooldown("retry-after: Thu, 21 Aug 2025 12:39:00 GMT", NULL),
                   0); /* in the past */
}

static void test_cooldown_openai_style(void **state) {
  (void)state;
  /* OpenAI: remaining 0 arms the matching Go-duration reset */
  assert_int_equal(cooldown("x-ratelimit-remaining-requests: 0",
                            "x-ratelimit-reset-requests: 1s", NULL),
                   1000);
  assert_int_equal(cooldown("x-ratelimit-remaining-tokens: 0",
                            "x-ratelimit-reset-tokens: 6m0s", NULL),
                   360000);
  assert_int_equal(cooldown("x-ratelimit-remaining-requests: 0",
                            "x-ratelimit-reset-requests: 20ms", NULL),
                   20);
  assert_int_equal(cooldown("x-ratelimit-remaining-tokens: 0",
                            "x-ratelimit-reset-tokens: 1m30.5s", NULL),
                   90500);
  assert_int_equal(cooldown("x-ratelimit-remaining-tokens: 0",
                            "x-ratelimit-reset-tokens: 2h3m", NULL),
                   7380000);
  /* a remaining count above 0 is ignored; so is Azure's -1 */
  assert_int_equal(cooldown("x-ratelimit-remaining-requests: 59",
                            "x-ratelimit-reset-requests: 1s",
                            "x-ratelimit-remaining-tokens: 149984",
                            "x-ratelimit-reset-tokens: 6m0s", NULL),
                   0);
  assert_int_equal(cooldown("x-ratelimit-remaining-tokens: -1",
                            "x-ratelimit-reset-tokens: 0", NULL),
                   0);
  /* the pairs do not mix: tokens exhausted, requests reset irrelevant */
  assert_int_equal(cooldown("x-ratelimit-remaining-requests: 5",
                            "x-ratelimit-reset-requests: 9s",
                            "x-ratelimit-remaining-tokens: 0",
                            "x-ratelimit-reset-tokens: 2s", NULL),
                   2000);
  /* both exhausted: the longer wait */
  assert_int_equal(cooldown("x-ratelimit-remaining-requests: 0",
                            "x-ratelimit-reset-requests: 9s",
                            "x-ratelimit-remaining-tokens: 0",
                            "x-ratelimit-reset-tokens: 2s", NULL),
                   9000);
  /* Groq's documented values, with its retry-after on the 429 */
  assert_int_equal(cooldown("retry-after: 2",
                            "x-ratelimit-remaining-requests: 0",
                            "x-ratelimit-reset-requests: 2m59.56s",
                            "x-ratelimit-remaining-tokens: 17997",
                            "x-ratelimit-reset-tokens: 7.66s", NULL),
                   179560);
  /* retry-after longer than the reset */
  assert_int_equal(cooldown("retry-after: 20",
                            "x-ratelimit-remaining-tokens: 0",
                            "x-ratelimit-reset-tokens: 7.66s", NULL),
                   20000);
  /* a bare number is seconds (Azure OpenAI) */
  assert_int_equal(cooldown("x-ratelimit-remaining-tokens: 0",
                            "x-ratelimit-reset-tokens: 7", NULL),
                   7000);
  /* an unparsable or missing reset arms nothing */
  assert_int_equal(cooldown("x-ratelimit-remaining-tokens: 0",
                            "x-ratelimit-reset-tokens: later", NULL),
                   0);
  assert_int_equal(cooldown("x-ratelimit-remaining-tokens: 0", NULL), 0);
  /* header names are case-insensitive */
  assert_int_equal(cooldown("X-RateLimit-Remaining-Requests: 0",
                            "X-RateLimit-Reset-Requests: 3s", NULL),
                   3000);
  /* capped at a day */
  assert_int_equal(cooldown("x-ratelimit-remaining-requests: 0",
                            "x-ratelimit-reset-requests: 48h", NULL),
                   LLMR__COOLDOWN_MAX_MS);
}

static void test_cooldown_anthropic(void **state) {
  (void)state;
  /* the clock is 12:40:00Z */
  assert_int_equal(
      cooldown("anthropic-ratelimit-requests-remaining: 0",
               "anthropic-ratelimit-requests-reset: 2025-08-21T12:40:59Z",
               NULL),
      59000);
  assert_int_equal(
      cooldown("anthropic-ratelimit-tokens-remaining: 0",
               "anthropic-ratelimit-tokens-reset: 2025-08-21T12:41:00.250Z",
               NULL),
      60250);
  assert_int_equal(cooldown("anthropic-ratelimit-input-tokens-remaining: 0",
                            "anthropic-ratelimit-input-tokens-reset: "
                            "2025-08-21T14:40:10+02:00",
                            NULL),
                   10000);
  assert_int_equal(cooldown("anthropic-ratelimit-output-tokens-remaining: 0",
                            "anthropic-ratelimit-output-tokens-reset: "
                            "2025-08-21T12:40:01.5Z",
                            NULL),
                   1500);
  /* the real header set of a healthy reply: nothing */
  assert_int_equal(
      cooldown("anthropic-ratelimit-input-tokens-limit: 80000",
               "anthropic-ratelimit-input-tokens-remaining: 80000",
               "anthropic-ratelimit-input-tokens-reset: 2025-08-21T12:40:59Z",
               "anthropic-ratelimit-output-tokens-limit: 16000",
               "anthropic-ratelimit-output-tokens-remaining: 16000",
               "anthropic-ratelimit-output-tokens-reset: 2025-08-21T12:41:00Z",
               "anthropic-ratelimit-requests-limit: 1000",
               "anthropic-ratelimit-requests-remaining: 999",
               "anthropic-ratelimit-requests-reset: 2025-08-21T12:40:59Z",
               "anthropic-ratelimit-tokens-limit: 96000",
               "anthropic-ratelimit-tokens-remaining: 96000",
               "anthropic-ratelimit-tokens-reset: 2025-08-21T12:40:59Z", NULL),
      0);
  /* several exhausted, plus retry-after: the longest */
  assert_int_equal(
      cooldown("retry-after: 5", "anthropic-ratelimit-requests-remaining: 0",
               "anthropic-ratelimit-requests-reset: 2025-08-21T12:40:20Z",
               "anthropic-ratelimit-output-tokens-remaining: 0",
               "anthropic-ratelimit-output-tokens-reset: 2025-08-21T12:40:45Z",
               NULL),
      45000);
  /* a reset already past: 0 */
  assert_int_equal(
      cooldown("anthropic-ratelimit-requests-remaining: 0",
               "anthropic-ratelimit-requests-reset: 2025-08-21T12:39:00Z",
               NULL),
      0);
}

/* ---- circuit breaker ----------------------------------------------------- */

static llmr__health *new_health(int failures, size_t max_keys) {
  llmr__health_opts o;
  llmr__health *h;
  memset(&o, 0, sizeof(o));
  o.failures = failures;
  o.window_ms = 10000;
  o.cooldown_ms = 5000;
  o.trial_timeout_ms = 60000;
  o.max_keys = max_keys;
  h = llmr__health_new(&o);
  assert_non_null(h);
  return h;
}

static llmr__health_decision chk(llmr__health *h, const char *key, int64_t now,
                                 int64_t *until) {
  int64_t u = -999;
  llmr__health_decision d = llmr__health_check(h, key, now, &u);
  if (until)
    *until = u;
  return d;
}

static void test_breaker_opens_after_n(void **state) {
  llmr__health *h = new_health(3, 0);
  int64_t until;
  (void)state;
  assert_int_equal(chk(h, "openai", 0, &until), LLMR__HEALTH_ALLOW);
  assert_int_equal(until, 0);
  assert_int_equal(llmr__health_size(h), 0);
  llmr__health_report(h, "openai", 100, 0, 0);
  llmr__health_report(h, "openai", 200, 0, 0);
  assert_int_equal(chk(h, "openai", 250, NULL), LLMR__HEALTH_ALLOW);
  assert_int_equal(llmr__health_size(h), 1);
  llmr__health_report(h, "openai", 300, 0, 0);
  assert_int_equal(chk(h, "openai", 301, &until), LLMR__HEALTH_SKIP);
  assert_int_equal(until, 5300);
  /* other keys are independent */
  assert_int_equal(chk(h, "openai/gpt-4o", 301, NULL), LLMR__HEALTH_ALLOW);
  assert_int_equal(chk(h, "anthropic", 301, NULL), LLMR__HEALTH_ALLOW);
  /* failures while open change nothing */
  llmr__health_report(h, "openai", 400, 0, 0);
  assert_int_equal(chk(h, "openai", 401, &until), LLMR__HEALTH_SKIP);
  assert_int_equal(until, 5300);
  /* a success resets the count: 2 + success + 2 stays closed */
  llmr__health_report(h, "b", 0, 0, 0);
  llmr__health_report(h, "b", 1, 0, 0);
  llmr__health_report(h, "b", 2, 1, 0);
  assert_int_equal(llmr__health_size(h), 1); /* "b" forgotten */
  llmr__health_report(h, "b", 3, 0, 0);
  llmr__health_report(h, "b", 4, 0, 0);
  assert_int_equal(chk(h, "b", 5, NULL), LLMR__HEALTH_ALLOW);
  llmr__health_report(h, "b", 6, 0, 0);
  assert_int_equal(chk(h, "b", 7, NULL), LLMR__HEALTH_SKIP);
  llmr__health_free(h);
}

static void test_breaker_window(void **state) {
  llmr__health *h = new_health(3, 0);
  (void)state;
  /* 3 failures spread over more than window_ms (10 s) do not open it */
  llmr__health_report(h, "k", 0, 0, 0);
  llmr__health_report(h, "k", 6000, 0, 0);
  llmr__health_report(h, "k", 12000, 0, 0);
  assert_int_equal(chk(h, "k", 12001, NULL), LLMR__HEALTH_ALLOW);
  /* the window slides: 6000, 12000, 13000 are within 10 s */
  llmr__health_report(h, "k", 13000, 0, 0);
  assert_int_equal(chk(h, "k", 13001, NULL), LLMR__HEALTH_SKIP);
  /* exactly window_ms apart still counts */
  llmr__health_report(h, "w", 20000, 0, 0);
  llmr__health_report(h, "w", 25000, 0, 0);
  llmr__health_report(h, "w", 30000, 0, 0);
  assert_int_equal(chk(h, "w", 30000, NULL), LLMR__HEALTH_SKIP);
  llmr__health_free(h);
}

/* Open `key` at `t` (3 failures); it may be tried from t + 5000. */
static void open_key(llmr__health *h, const char *key, int64_t t) {
  int i;
  for (i = 0; i < 3; i++)
    llmr__health_report(h, key, t, 0, 0);
  assert_int_equal(chk(h, key, t, NULL), LLMR__HEALTH_SKIP);
}

static void test_breaker_half_open_single_trial(void **state) {
  llmr__health *h = new_health(3, 0);
  const char *keys[] = {"k"};
  int64_t until;
  (void)state;
  open_key(h, "k", 1000);
  assert_int_equal(chk(h, "k", 5999, &until), LLMR__HEALTH_SKIP);
  assert_int_equal(until, 6000);
  assert_int_equal(llmr__health_earliest(h, keys, 1, 5999), 6000);
  /* the first caller after the cooldown is the one probe */
  assert_int_equal(chk(h, "k", 6000, &until), LLMR__HEALTH_TRIAL);
  assert_int_equal(until, 6000);
  /* everyone else: SKIP while it runs, "may be any moment" */
  assert_int_equal(chk(h, "k", 6001, &until), LLMR__HEALTH_SKIP);
  assert_int_equal(until, 6001);
  assert_int_equal(chk(h, "k", 9000, NULL), LLMR__HEALTH_SKIP);
  assert_int_equal(llmr__health_earliest(h, keys, 1, 9000), 9000);
  /* an ordinary failure (a straggler) does not end the trial */
  llmr__health_report(h, "k", 9100, 0, 0);
  assert_int_equal(chk(h, "k", 9200, NULL), LLMR__HEALTH_SKIP);
  /* the trial succeeds: closed, and forgotten */
  llmr__health_report_trial(h, "k", 9500, 1, 0);
  assert_int_equal(chk(h, "k", 9501, NULL), LLMR__HEALTH_ALLOW);
  assert_int_equal(chk(h, "k", 9502, NULL), LLMR__HEALTH_ALLOW);
  assert_int_equal(llmr__health_size(h), 0);
  /* closed means the count starts over: two failures do not reopen */
  llmr__health_report(h, "k", 9600, 0, 0);
  llmr__health_report(h, "k", 9700, 0, 0);
  assert_int_equal(chk(h, "k", 9800, NULL), LLMR__HEALTH_ALLOW);
  llmr__health_free(h);
}

static void test_breaker_trial_failure_reopens(void **state) {
  llmr__health *h = new_health(3, 0);
  int64_t until;
  (void)state;
  open_key(h, "k", 0);
  assert_int_equal(chk(h, "k", 5000, NULL), LLMR__HEALTH_TRIAL);
  llmr__health_report_trial(h, "k", 7000, 0, 0);
  assert_int_equal(chk(h, "k", 7001, &until), LLMR__HEALTH_SKIP);
  assert_int_equal(until, 12000);
  assert_int_equal(chk(h, "k", 11999, NULL), LLMR__HEALTH_SKIP);
  /* a new trial after the new cooldown, again only one */
  assert_int_equal(chk(h, "k", 12000, NULL), LLMR__HEALTH_TRIAL);
  assert_int_equal(chk(h, "k", 12000, NULL), LLMR__HEALTH_SKIP);
  /* failed trial with a longer hint: the hint wins */
  llmr__health_report_trial(h, "k", 13000, 0, 20000);
  assert_int_equal(chk(h, "k", 13001, &until), LLMR__HEALTH_SKIP);
  assert_int_equal(until, 33000);
  llmr__health_free(h);
}

static void test_breaker_trial_timeout(void **state) {
  llmr__health *h = new_health(3, 0);
  (void)state;
  open_key(h, "k", 0);
  assert_int_equal(chk(h, "k", 5000, NULL), LLMR__HEALTH_TRIAL);
  /* never reported: others wait out trial_timeout_ms (60 s) */
  assert_int_equal(chk(h, "k", 64999, NULL), LLMR__HEALTH_SKIP);
  assert_int_equal(chk(h, "k", 65000, NULL), LLMR__HEALTH_TRIAL);
  assert_int_equal(chk(h, "k", 65001, NULL), LLMR__HEALTH_SKIP);
  llmr__health_free(h);
}

static void test_breaker_hints(void **state) {
  llmr__health *h = new_health(3, 0);
  int64_t until;
  (void)state;
  /* a hint opens at once, without N failures */
  llmr__health_report(h, "k", 100, 0, 20000);
  assert_int_equal(chk(h, "k", 101, &until), LLMR__HEALTH_SKIP);
  assert_int_equal(until, 20100);
  /* a shorter second cooldown does not shorten the first */
  llmr__health_report(h, "k", 200, 0, 5000);
  assert_int_equal(chk(h, "k", 201, &until), LLMR__HEALTH_SKIP);
  assert_int_equal(until, 20100);
  /* a longer one extends it */
  llmr__health_report(h, "k", 300, 0, 30000);
  assert_int_equal(chk(h, "k", 301, &until), LLMR__HEALTH_SKIP);
  assert_int_equal(until, 30300);
  /* a straggler's success (it began before the key opened) keeps it open */
  llmr__health_report(h, "k", 1000, 1, 0);
  assert_int_equal(chk(h, "k", 1001, &until), LLMR__HEALTH_SKIP);
  assert_int_equal(until, 30300);
  /* a success that says "remaining 0" opens the key too */
  llmr__health_report(h, "r", 0, 1, 1500);
  assert_int_equal(chk(h, "r", 1, &until), LLMR__HEALTH_SKIP);
  assert_int_equal(until, 1500);
  /* a hint during a trial: the trial's success does not shorten it */
  assert_int_equal(chk(h, "r", 1500, NULL), LLMR__HEALTH_TRIAL);
  llmr__health_report(h, "r", 1600, 0, 10000);
  llmr__health_report_trial(h, "r", 1700, 1, 0);
  assert_int_equal(chk(h, "r", 1701, &until), LLMR__HEALTH_SKIP);
  assert_int_equal(until, 11600);
  /* ...and after it the next caller gets a fresh trial */
  assert_int_equal(chk(h, "r", 11600, NULL), LLMR__HEALTH_TRIAL);
  llmr__health_report_trial(h, "r", 11700, 1, 0);
  assert_int_equal(chk(h, "r", 11701, NULL), LLMR__HEALTH_ALLOW);
  /* a hint-opened key with failures < 0 (counting off) */
  llmr__health_free(h);
  h = new_health(-1, 0);
  llmr__health_report(h, "k", 0, 0, 0);
  llmr__health_report(h, "k", 0, 0, 0);
  llmr__health_report(h, "k", 0, 0, 0);
  llmr__health_report(h, "k", 0, 0, 0);
  assert_int_equal(chk(h, "k", 1, NULL), LLMR__HEALTH_ALLOW);
  assert_int_equal(llmr__health_size(h), 0);
  llmr__health_report(h, "k", 0, 0, 700);
  assert_int_equal(chk(h, "k", 1, &until), LLMR__HEALTH_SKIP);
  assert_int_equal(until, 700);
  llmr__health_free(h);
}

static void test_breaker_success_in_half_open(void **state) {
  llmr__health *h = new_health(3, 0);
  (void)state;
  /* the cooldown passed and no trial was taken yet: a success closes */
  open_key(h, "k", 0);
  llmr__health_report(h, "k", 6000, 1, 0);
  assert_int_equal(chk(h, "k", 6001, NULL), LLMR__HEALTH_ALLOW);
  assert_int_equal(llmr__health_size(h), 0);
  /* an ordinary success during a trial closes it too, but the trial
   * holder still owns the trial until it reports: no second TRIAL */
  open_key(h, "j", 10000);
  assert_int_equal(chk(h, "j", 15000, NULL), LLMR__HEALTH_TRIAL);
  llmr__health_report(h, "j", 15100, 1, 0);
  assert_int_equal(chk(h, "j", 15200, NULL), LLMR__HEALTH_ALLOW);
  open_key(h, "j", 15300);
  assert_int_equal(chk(h, "j", 20300, NULL), LLMR__HEALTH_SKIP);
  llmr__health_report_trial(h, "j", 20400, 0, 0);
  assert_int_equal(chk(h, "j", 20401, NULL), LLMR__HEALTH_SKIP);
  assert_int_equal(chk(h, "j", 25400, NULL), LLMR__HEALTH_TRIAL);
  llmr__health_free(h);
}

static void test_breaker_earliest(void **state) {
  llmr__health *h = new_health(3, 0);
  const char *abc[] = {"a", "b", "c"};
  const char *ab[] = {"a", "b"};
  (void)state;
  assert_int_equal(llmr__health_earliest(h, abc, 3, 100), 100);
  assert_int_equal(llmr__health_earliest(h, abc, 0, 100), 100);
  llmr__health_report(h, "a", 0, 0, 5000);
  llmr__health_report(h, "b", 0, 0, 3000);
  /* c has nothing stored: now */
  assert_int_equal(llmr__health_earliest(h, abc, 3, 100), 100);
  /* a and b cooling down: the earlier end */
  assert_int_equal(llmr__health_earliest(h, ab, 2, 100), 3000);
  /* c has failures but is closed: now */
  llmr__health_report(h, "c", 0, 0, 0);
  assert_int_equal(llmr__health_earliest(h, abc, 3, 100), 100);
  /* once b's cooldown passes: now */
  assert_int_equal(llmr__health_earliest(h, ab, 2, 3000), 3000);
  assert_int_equal(llmr__health_earliest(h, ab, 2, 2999), 3000);
  llmr__health_free(h);
}

static void test_breaker_eviction(void **state) {
  llmr__health *h = new_health(3, 8);
  char key[32];
  int i;
  (void)state;
  /* many keys: the table never holds more than max_keys */
  for (i = 0; i < 1000; i++) {
    snprintf(key, sizeof(key), "p%d/model", i);
    llmr__health_report(h, key, i, 0, (i % 3) ? 0 : 100000);
    assert_true(llmr__health_size(h) <= 8);
  }
  assert_int_equal(llmr__health_size(h), 8);
  llmr__health_free(h);

  /* closed keys go before open ones; idle closed keys go first */
  h = new_health(3, 4);
  llmr__health_report(h, "o1", 0, 0, 100000);
  llmr__health_report(h, "o2", 0, 0, 200000);
  llmr__health_report(h, "old", 0, 0, 0);   /* failure older than window */
  llmr__health_report(h, "c", 50000, 0, 0); /* recent failure */
  assert_int_equal(chk(h, "old", 54000, NULL), LLMR__HEALTH_ALLOW); /* LRU */
  llmr__health_report(h, "n1", 55000, 0, 0);
  /* "old" went (idle) although "c" was used less recently */
  assert_int_equal(llmr__health_size(h), 4);
  llmr__health_report(h, "c", 55001, 0, 0);
  llmr__health_report(h, "c", 55002, 0, 0);
  assert_int_equal(chk(h, "c", 55003, NULL), LLMR__HEALTH_SKIP); /* kept */
  /* now o1, o2, c open and n1 closed: the next new key evicts n1 */
  llmr__health_report(h, "n2", 56000, 0, 0);
  assert_int_equal(chk(h, "o1", 56001, NULL), LLMR__HEALTH_SKIP);
  assert_int_equal(chk(h, "o2", 56001, NULL), LLMR__HEALTH_SKIP);
  llmr__health_report(h, "n1", 56002, 0, 0);
  llmr__health_report(h, "n1", 56003, 0, 0);
  /* n1 restarted from zero (it was evicted): 2 failures, still closed */
  assert_int_equal(chk(h, "n1", 56004, NULL), LLMR__HEALTH_ALLOW);
  /* only open keys: the one whose cooldown ends first goes */
  llmr__health_free(h);
  h = new_health(3, 3);
  llmr__health_report(h, "x", 0, 0, 3000);
  llmr__health_report(h, "y", 0, 0, 1000);
  llmr__health_report(h, "z", 0, 0, 2000);
  llmr__health_report(h, "w", 0, 0, 9000);
  assert_int_equal(llmr__health_size(h), 3);
  assert_int_equal(chk(h, "y", 1, NULL), LLMR__HEALTH_ALLOW);
  assert_int_equal(chk(h, "x", 1, NULL), LLMR__HEALTH_SKIP);
  assert_int_equal(chk(h, "z", 1, NULL), LLMR__HEALTH_SKIP);
  assert_int_equal(chk(h, "w", 1, NULL), LLMR__HEALTH_SKIP);
  llmr__health_free(h);

  /* a key with a trial in flight is never evicted */
  h = new_health(3, 2);
  llmr__health_report(h, "t1", 0, 0, 10);
  llmr__health_report(h, "t2", 0, 0, 10);
  assert_int_equal(chk(h, "t1", 10, NULL), LLMR__HEALTH_TRIAL);
  assert_int_equal(chk(h, "t2", 10, NULL), LLMR__HEALTH_TRIAL);
  for (i = 0; i < 50; i++) {
    snprintf(key, sizeof(key), "new%d", i);
    llmr__health_report(h, key, 20, 0, 5000); /* dropped: table is full */
    assert_int_equal(chk(h, key, 21, NULL), LLMR__HEALTH_ALLOW);
  }
  assert_int_equal(llmr__health_size(h), 2);
  assert_int_equal(chk(h, "t1", 30, NULL), LLMR__HEALTH_SKIP);
  assert_int_equal(chk(h, "t2", 30, NULL), LLMR__HEALTH_SKIP);
  llmr__health_free(h);
}

static void test_breaker_defaults_and_null(void **state) {
  llmr__health *h = llmr__health_new(NULL);
  int64_t until = -1;
  int i;
  (void)state;
  assert_non_null(h);
  /* defaults: 3 failures in 60 s open for 30 s */
  for (i = 0; i < 3; i++)
    llmr__health_report(h, "k", 1000, 0, 0);
  assert_int_equal(chk(h, "k", 1000, &until), LLMR__HEALTH_SKIP);
  assert_int_equal(until, 31000);
  assert_int_equal(llmr__health_check(h, NULL, 5, &until), LLMR__HEALTH_ALLOW);
  assert_int_equal(until, 5);
  assert_int_equal(llmr__health_check(NULL, "k", 5, NULL), LLMR__HEALTH_ALLOW);
  llmr__health_report(NULL, "k", 0, 0, 0);
  llmr__health_report(h, NULL, 0, 0, 0);
  llmr__health_report_trial(h, "nope", 0, 1, 0);
  assert_int_equal(llmr__health_earliest(NULL, NULL, 0, 9), 9);
  assert_int_equal(llmr__health_size(NULL), 0);
  llmr__health_free(h);
  llmr__health_free(NULL);
}

/* ---- load balancing ------------------------------------------------------ */

static void test_pick_weighted(void **state) {
  const double w[] = {1, 3, 0, 6};
  const double odd[] = {-1, NAN, 2, INFINITY, 2};
  const double zero[] = {0, 0, 0};
  int seen[5] = {0}, i;
  const int n = 100000;
  uint64_t rng = 99;
  (void)state;
  for (i = 0; i < n; i++)
    seen[llmr__pick_weighted(w, 4, &rng)]++;
  assert_int_equal(seen[2], 0);
  assert_true(fabs(seen[0] / (double)n - 0.1) < 0.01);
  assert_true(fabs(seen[1] / (double)n - 0.3) < 0.01);
  assert_true(fabs(seen[3] / (double)n - 0.6) < 0.01);
  /* negative, NaN, infinite weights are never picked */
  memset(seen, 0, sizeof(seen));
  for (i = 0; i < 10000; i++)
    seen[llmr__pick_weighted(odd, 5, &rng)]++;
  assert_int_equal(seen[0] + seen[1] + seen[3], 0);
  assert_true(seen[2] > 4500 && seen[4] > 4500);
  /* all unusable: uniform over all */
  memset(seen, 0, sizeof(seen));
  for (i = 0; i < 30000; i++)
    seen[llmr__pick_weighted(zero, 3, &rng)]++;
  for (i = 0; i < 3; i++)
    assert_true(seen[i] > 9500 && seen[i] < 10500);
  assert_int_equal(llmr__pick_weighted(w, 1, &rng), 0);
  assert_int_equal(llmr__pick_weighted(w, 0, &rng), 0);
}

static void test_round_robin(void **state) {
  llmr__rr rr;
  int i;
  (void)state;
  llmr__rr_init(&rr, 0);
  for (i = 0; i < 9; i++)
    assert_int_equal(llmr__rr_next(&rr, 3), (size_t)(i % 3));
  llmr__rr_init(&rr, 5);
  assert_int_equal(llmr__rr_next(&rr, 3), 2);
  assert_int_equal(llmr__rr_next(&rr, 3), 0);
  assert_int_equal(llmr__rr_next(&rr, 0), 0);
}

/* ---- the fallback policy table and its config --------------------------- */

static void test_release_trial(void **state) {
  llmr__health_opts o = {1, 60000, 100, 0, 0};
  llmr__health *h = llmr__health_new(&o);
  (void)state;
  llmr__health_report(h, "k", 0, 0, 0); /* opens until 100 */
  assert_int_equal(llmr__health_check(h, "k", 150, NULL), LLMR__HEALTH_TRIAL);
  assert_int_equal(llmr__health_check(h, "k", 151, NULL), LLMR__HEALTH_SKIP);
  llmr__health_release_trial(h, "k"); /* not sent after all */
  assert_int_equal(llmr__health_check(h, "k", 152, NULL), LLMR__HEALTH_TRIAL);
  llmr__health_report_trial(h, "k", 160, 1, 0);
  assert_int_equal(llmr__health_check(h, "k", 161, NULL), LLMR__HEALTH_ALLOW);
  llmr__health_release_trial(h, "k"); /* no trial held: nothing */
  llmr__health_release_trial(h, "unknown");
  llmr__health_release_trial(NULL, "k");
  assert_int_equal(llmr__health_size(h), 0);
  llmr__health_free(h);
}

static void test_eclass_table(void **state) {
  (void)state;
  assert_int_equal(llmr__eclass_of(LLMR_E_TRANSPORT, 0), LLMR__EC_CONNECT);
  assert_int_equal(llmr__eclass_of(LLMR_E_TLS, 0), LLMR__EC_TLS);
  assert_int_equal(llmr__eclass_of(LLMR_E_TIMEOUT, 0), LLMR__EC_TIMEOUT);
  assert_int_equal(llmr__eclass_of(LLMR_E_TIMEOUT, 408),
                   LLMR__EC_REQUEST_TIMEOUT);
  assert_int_equal(llmr__eclass_of(LLMR_E_BAD_REQUEST, 409),
                   LLMR__EC_CONFLICT);
  assert_int_equal(llmr__eclass_of(LLMR_E_BAD_REQUEST, 422),
                   LLMR__EC_BAD_REQUEST);
  assert_int_equal(llmr__eclass_of(LLMR_E_OVERLOADED, 503),
                   LLMR__EC_SERVER_ERROR);
  assert_int_equal(llmr__eclass_of(LLMR_E_OVERLOADED, 529),
                   LLMR__EC_OVERLOADED);
  assert_int_equal(llmr__eclass_of(LLMR_E_OVERLOADED, 200),
                   LLMR__EC_OVERLOADED); /* an error event in a stream */
  assert_int_equal(llmr__eclass_of(LLMR_E_SERVER, 502),
                   LLMR__EC_SERVER_ERROR);
  assert_int_equal(llmr__eclass_of(LLMR_E_AUTH, 403), LLMR__EC_AUTH);
  assert_int_equal(llmr__eclass_of(LLMR_E_PAYMENT, 429), LLMR__EC_PAYMENT);
  assert_int_equal(llmr__eclass_of(LLMR_E_INVAL, 0), -1);
  assert_int_equal(llmr__eclass_of(LLMR_E_ABORTED, 200), -1);
  assert_int_equal(llmr__eclass_of(LLMR_E_COOLDOWN, 0), -1);
  assert_int_equal(llmr__eclass_default(LLMR__EC_BAD_REQUEST),
                   LLMR__ACT_STOP);
  assert_int_equal(llmr__eclass_default(LLMR__EC_CONTENT_FILTER),
                   LLMR__ACT_STOP);
  assert_int_equal(llmr__eclass_default(LLMR__EC_AUTH), LLMR__ACT_FALLBACK);
  assert_int_equal(llmr__eclass_default(LLMR__EC_RATE_LIMITED),
                   LLMR__ACT_RETRY);
  assert_int_equal(llmr__eclass_scope(LLMR__EC_AUTH), LLMR__SCOPE_PROVIDER);
  assert_int_equal(llmr__eclass_scope(LLMR__EC_RATE_LIMITED),
                   LLMR__SCOPE_MODEL);
  assert_int_equal(llmr__eclass_scope(LLMR__EC_CONTEXT_LENGTH),
                   LLMR__SCOPE_NONE);
  assert_string_equal(llmr__eclass_name(LLMR__EC_SERVER_ERROR),
                      "server_error");
  assert_null(llmr__eclass_name(LLMR__EC_COUNT));
}

static llmr_status apply(llmr__policy *p, const char *json,
                         llmr__health_opts *ho, char *err) {
  cJSON *j = cJSON_Parse(json);
  llmr_status st;
  assert_non_null(j);
  err[0] = '\0';
  st = llmr__policy_apply(p, j, ho, NULL, "policy", err, LLMR_ERRBUF_SIZE);
  cJSON_Delete(j);
  return st;
}

static void test_policy_apply(void **state) {
  llmr__policy p;
  llmr__health_opts ho;
  char err[LLMR_ERRBUF_SIZE];
  (void)state;
  llmr__policy_defaults(&p);
  assert_int_equal(p.retries, 0);
  assert_int_equal(p.backoff_ms, 200);
  assert_int_equal(p.longest_wait_ms, 10000);
  assert_int_equal(p.cooldown, 1);
  memset(&ho, 0, sizeof(ho));
  assert_int_equal(
      apply(&p,
            "{\"retries\": 2, \"backoff_ms\": 10, \"backoff_cap_ms\": 0,"
            " \"longest_wait_ms\": 0, \"deadline_ms\": 900, \"hedge_ms\": 5,"
            " \"attempt_timeout_ms\": 300, \"fallback_on\": {\"bad_request\":"
            " true, \"rate_limited\": false, \"not_found\": \"retry\","
            " \"server_error\": true}, \"cooldown\": {\"failures\": 0,"
            " \"window_ms\": 5, \"cooldown_ms\": 7, \"rate_limit_headers\":"
            " false}}",
            &ho, err),
      LLMR_OK);
  assert_int_equal(p.retries, 2);
  assert_int_equal(p.backoff_cap_ms, 0);
  assert_int_equal(p.deadline_ms, 900);
  assert_int_equal(p.hedge_ms, 5);
  assert_int_equal(p.attempt_timeout_ms, 300);
  assert_int_equal(p.action[LLMR__EC_BAD_REQUEST], LLMR__ACT_FALLBACK);
  assert_int_equal(p.action[LLMR__EC_RATE_LIMITED], LLMR__ACT_STOP);
  assert_int_equal(p.action[LLMR__EC_NOT_FOUND], LLMR__ACT_RETRY);
  assert_int_equal(p.action[LLMR__EC_SERVER_ERROR], LLMR__ACT_RETRY);
  assert_int_equal(p.explicit_[LLMR__EC_NOT_FOUND], 1);
  assert_int_equal(p.explicit_[LLMR__EC_AUTH], 0);
  assert_int_equal(ho.failures, -1);
  assert_int_equal(ho.window_ms, 5);
  assert_int_equal(ho.cooldown_ms, 7);
  assert_int_equal(p.rate_limit_headers, 0);
  /* a call may only switch cooldowns on or off */
  assert_int_equal(apply(&p, "{\"cooldown\": false}", NULL, err), LLMR_OK);
  assert_int_equal(p.cooldown, 0);
  assert_int_equal(apply(&p, "{\"cooldown\": {}}", NULL, err), LLMR_E_INVAL);
  assert_non_null(strstr(err, "policy.cooldown"));
  assert_int_equal(apply(&p, "{\"fallback_on\": {\"auth\": \"retry\"}}",
                         NULL, err),
                   LLMR_E_INVAL);
  assert_int_equal(apply(&p, "{\"fallback_on\": {\"budget\": \"retry\"}}",
                         NULL, err),
                   LLMR_E_INVAL);
  assert_int_equal(apply(&p, "{\"retries\": 101}", NULL, err), LLMR_E_INVAL);
  assert_int_equal(apply(&p, "{\"deadline_ms\": 1e12}", NULL, err),
                   LLMR_E_INVAL);
  assert_int_equal(apply(&p, "[]", NULL, err), LLMR_E_INVAL);
  assert_non_null(strstr(err, "expected an object"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_rng_basics),
      cmocka_unit_test(test_backoff_bounds_and_distribution),
      cmocka_unit_test(test_backoff_overflow_and_edges),
      cmocka_unit_test(test_retry_wait),
      cmocka_unit_test(test_parse_duration),
      cmocka_unit_test(test_parse_rfc3339),
      cmocka_unit_test(test_ratelimit_headers_present),
      cmocka_unit_test(test_cooldown_retry_after),
      cmocka_unit_test(test_cooldown_openai_style),
      cmocka_unit_test(test_cooldown_anthropic),
      cmocka_unit_test(test_breaker_opens_after_n),
      cmocka_unit_test(test_breaker_window),
      cmocka_unit_test(test_breaker_half_open_single_trial),
      cmocka_unit_test(test_breaker_trial_failure_reopens),
      cmocka_unit_test(test_breaker_trial_timeout),
      cmocka_unit_test(test_breaker_hints),
      cmocka_unit_test(test_breaker_success_in_half_open),
      cmocka_unit_test(test_breaker_earliest),
      cmocka_unit_test(test_breaker_eviction),
      cmocka_unit_test(test_breaker_defaults_and_null),
      cmocka_unit_test(test_pick_weighted),
      cmocka_unit_test(test_round_robin),
      cmocka_unit_test(test_release_trial),
      cmocka_unit_test(test_eclass_table),
      cmocka_unit_test(test_policy_apply),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
