/*
 * Reading the ledger: the record parser (a strict reader for one flat JSON
 * object, faster than a general parser and exact for 64-bit integers), the
 * line reader, the hash, time buckets, and llmr_ledger_verify().
 */
#include "ledger_int.h"

#include <errno.h>
#include <fcntl.h>
#include <mbedtls/sha256.h>
#include <mbedtls/version.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- hashing ------------------------------------------------------------ */

#if MBEDTLS_VERSION_NUMBER >= 0x03000000
#define SHA256_STARTS(c) mbedtls_sha256_starts((c), 0)
#define SHA256_UPDATE(c, p, n) mbedtls_sha256_update((c), (p), (n))
#define SHA256_FINISH(c, o) mbedtls_sha256_finish((c), (o))
#else
#define SHA256_STARTS(c) mbedtls_sha256_starts_ret((c), 0)
#define SHA256_UPDATE(c, p, n) mbedtls_sha256_update_ret((c), (p), (n))
#define SHA256_FINISH(c, o) mbedtls_sha256_finish_ret((c), (o))
#endif

void llmr__rec_hash(const char *prev_hex, const char *line, size_t content_len,
                    char out[65]) {
  static const char hex[] = "0123456789abcdef";
  mbedtls_sha256_context c;
  unsigned char d[32];
  int i;
  mbedtls_sha256_init(&c);
  SHA256_STARTS(&c);
  SHA256_UPDATE(&c, (const unsigned char *)prev_hex, 64);
  SHA256_UPDATE(&c, (const unsigned char *)line, content_len);
  SHA256_UPDATE(&c, (const unsigned char *)"}", 1);
  SHA256_FINISH(&c, d);
  mbedtls_sha256_free(&c);
  for (i = 0; i < 32; i++) {
    out[2 * i] = hex[d[i] >> 4];
    out[2 * i + 1] = hex[d[i] & 15];
  }
  out[64] = '\0';
}

/* ---- the record parser -------------------------------------------------- */

/* llmr__js_walk's callback for scan_str_array: elements are strings. */
static int str_each(llmr__jcur *c, const llmr__span *key, void *user) {
  llmr__span el;
  (void)key;
  (void)user;
  return *c->p == '"' ? llmr__js_string(c, &el) : -1;
}

/* An array of strings (the asked slugs): its text into sp. */
static int scan_str_array(llmr__jcur *c, llmr__span *sp) {
  const char *start = c->p;
  int r;
  if ((r = llmr__js_walk(c, str_each, NULL)) != 0)
    return r;
  memset(sp, 0, sizeof(*sp));
  sp->p = start;
  sp->n = (size_t)(c->p - start);
  return 0;
}

/* "12.345" milliseconds to microseconds (locale-free; at most 3
 * decimals are kept). */
static int span_ms_us(const llmr__span *sp, int64_t *out) {
  const char *q = sp->p, *e = sp->p + sp->n;
  int64_t ms = 0, frac = 0;
  int k = 0;
  if (q >= e || *q < '0' || *q > '9')
    return -1;
  for (; q < e && *q >= '0' && *q <= '9'; q++)
    if (__builtin_mul_overflow(ms, 10, &ms) ||
        __builtin_add_overflow(ms, *q - '0', &ms))
      return -1;
  if (q < e && *q == '.') {
    for (q++; q < e && *q >= '0' && *q <= '9'; q++)
      if (k < 3) {
        frac = frac * 10 + (*q - '0');
        k++;
      }
    if (k == 0)
      return -1;
  }
  if (q != e || ms > INT64_MAX / 1000 - 1000)
    return -1;
  while (k++ < 3)
    frac *= 10;
  *out = ms * 1000 + frac;
  return 0;
}

enum { V_STR, V_NUM, V_TRUE, V_FALSE, V_NULL, V_ARR };

/* field flags, to find the missing ones */
enum {
  F_V = 1 << 0, F_N = 1 << 1, F_T = 1 << 2, F_ID = 1 << 3, F_MODEL = 1 << 4,
  F_PROVIDER = 1 << 5, F_STATUS = 1 << 6, F_PROMPT = 1 << 7,
  F_COMPLETION = 1 << 8, F_COST = 1 << 9, F_HASH = 1 << 10
};
static const char *const req_names[] = {
    "v",      "n",      "t",          "id",           "model", "provider",
    "status", "prompt", "completion", "cost_nanousd", "hash"};

#define WHY(...) FAIL(-1, __VA_ARGS__)
/* code -2: the line ended early, as a torn write does */
#define FAIL(code, ...)                                                        \
  do {                                                                         \
    if (why && why_size)                                                       \
      snprintf(why, why_size, __VA_ARGS__);                                    \
    return (code);                                                             \
  } while (0)
#define AT_END(r) ((r) == -2 || c.p >= c.e ? -2 : -1)


int llmr__rec_parse(const char *line, size_t n, llmr__recview *rv, char *why,
                    size_t why_size) {
  llmr__jcur c;
  size_t i;
  unsigned seen = 0;
  int hash_last = 0;
  const char *sep; /* the '{' or ',' before the current member */

  for (i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)line[i];
    if ((ch < 0x20 && ch != '\t' && ch != '\r') || ch == 0x7f)
      WHY("binary data (byte 0x%02x at column %zu)", ch, i + 1);
  }
  memset(rv, 0, sizeof(*rv));
  rv->cost = rv->latency_us = rv->ttft_us = -1;
  rv->app.null = rv->user.null = rv->native.null = 1;
  rv->provider.null = rv->asked.null = 1;
  c.p = line;
  c.e = line + n;
  llmr__js_ws(&c);
  if (c.p >= c.e || *c.p != '{')
    WHY("not a JSON object");
  sep = c.p++;
  llmr__js_ws(&c);
  if (c.p < c.e && *c.p == '}') {
    c.p++;
    goto end;
  }
  for (;;) {
    llmr__span k, v;
    int type, r = -1;
    llmr__js_ws(&c);
    if (c.p >= c.e || *c.p != '"' || (r = llmr__js_string(&c, &k)) != 0)
      FAIL(AT_END(r), "not valid JSON (a key expected at column %zu)",
           (size_t)(c.p - line) + 1);
    llmr__js_ws(&c);
    if (c.p >= c.e || *c.p != ':')
      FAIL(AT_END(0), "not valid JSON (':' expected at column %zu)",
           (size_t)(c.p - line) + 1);
    c.p++;
    llmr__js_ws(&c);
    if (c.p >= c.e)
      FAIL(-2, "not valid JSON (the line ends inside the object)");
    memset(&v, 0, sizeof(v));
    switch (*c.p) {
    case '"':
      type = V_STR;
      if ((r = llmr__js_string(&c, &v)) != 0)
        FAIL(r, "not valid JSON (bad string at column %zu)",
             (size_t)(c.p - line) + 1);
      break;
    case '[':
      type = V_ARR;
      if ((r = scan_str_array(&c, &v)) != 0)
        FAIL(r, "not valid JSON or not a list of strings at column %zu",
             (size_t)(c.p - line) + 1);
      break;
    case '{':
      WHY("field \"%.*s\": a nested object is not part of a record",
          (int)(k.n > 40 ? 40 : k.n), k.p);
    case 't':
      type = V_TRUE;
      if ((r = llmr__js_literal(&c, "true")) != 0)
        FAIL(r, "not valid JSON at column %zu", (size_t)(c.p - line) + 1);
      break;
    case 'f':
      type = V_FALSE;
      if ((r = llmr__js_literal(&c, "false")) != 0)
        FAIL(r, "not valid JSON at column %zu", (size_t)(c.p - line) + 1);
      break;
    case 'n':
      type = V_NULL;
      if ((r = llmr__js_literal(&c, "null")) != 0)
        FAIL(r, "not valid JSON at column %zu", (size_t)(c.p - line) + 1);
      v.null = 1;
      break;
    default:
      type = V_NUM;
      if ((r = llmr__js_number(&c, &v)) != 0)
        FAIL(r, "not valid JSON at column %zu", (size_t)(c.p - line) + 1);
      break;
    }
    hash_last = 0;
    if (c.p >= c.e) /* no '}' can follow: cut short (maybe mid-number) */
      FAIL(-2, "not valid JSON (the line ends inside the object)");

#define NEED(cond, what)                                                       \
  do {                                                                         \
    if (!(cond))                                                               \
      WHY("field \"%.*s\": expected %s", (int)k.n, k.p, what);                 \
  } while (0)
#define INT_FIELD(name, flag, dst)                                             \
  if (llmr__span_is(&k, name)) {                                                      \
    NEED(type == V_NUM && llmr__span_i64(&v, &(dst)) == 0, "an integer");            \
    seen |= (flag);                                                            \
  } else
#define STR_FIELD(name, flag, dst, nullable)                                   \
  if (llmr__span_is(&k, name)) {                                                      \
    NEED(type == V_STR || ((nullable) && type == V_NULL),                      \
         (nullable) ? "a string or null" : "a string");                        \
    (dst) = v;                                                                 \
    seen |= (flag);                                                            \
  } else
#define BOOL_FIELD(name, dst)                                                  \
  if (llmr__span_is(&k, name)) {                                                      \
    NEED(type == V_TRUE || type == V_FALSE, "true or false");                  \
    (dst) = type == V_TRUE;                                                    \
  } else

    INT_FIELD("v", F_V, rv->v)
    INT_FIELD("n", F_N, rv->n)
    INT_FIELD("t", F_T, rv->t)
    STR_FIELD("id", F_ID, rv->id, 0)
    STR_FIELD("app", 0, rv->app, 1)
    STR_FIELD("user", 0, rv->user, 1)
    STR_FIELD("model", F_MODEL, rv->model, 0)
    STR_FIELD("provider", F_PROVIDER, rv->provider, 1)
    STR_FIELD("native", 0, rv->native, 1)
    STR_FIELD("status", F_STATUS, rv->status, 0)
    INT_FIELD("attempt", 0, rv->attempt)
    INT_FIELD("http", 0, rv->http)
    INT_FIELD("prompt", F_PROMPT, rv->prompt)
    INT_FIELD("completion", F_COMPLETION, rv->completion)
    INT_FIELD("cached", 0, rv->cached)
    INT_FIELD("cache_write", 0, rv->cache_write)
    INT_FIELD("reasoning", 0, rv->reasoning)
    BOOL_FIELD("stream", rv->stream)
    BOOL_FIELD("estimated", rv->estimated)
    if (llmr__span_is(&k, "asked")) {
      NEED(type == V_ARR, "a list of strings");
      rv->asked = v;
    } else if (llmr__span_is(&k, "cost_nanousd")) {
      NEED(type == V_NULL || (type == V_NUM && llmr__span_i64(&v, &rv->cost) == 0 &&
                              rv->cost >= 0),
           "a non-negative integer or null");
      if (type == V_NULL)
        rv->cost = -1;
      seen |= F_COST;
    } else if (llmr__span_is(&k, "latency_ms")) {
      NEED(type == V_NUM && span_ms_us(&v, &rv->latency_us) == 0,
           "a number of milliseconds");
    } else if (llmr__span_is(&k, "ttft_ms")) {
      NEED(type == V_NULL ||
               (type == V_NUM && span_ms_us(&v, &rv->ttft_us) == 0),
           "a number of milliseconds or null");
    } else if (llmr__span_is(&k, "hash")) {
      size_t j;
      NEED(type == V_STR && !v.esc && v.n == 64, "64 hex digits");
      for (j = 0; j < 64; j++)
        NEED((v.p[j] >= '0' && v.p[j] <= '9') ||
                 (v.p[j] >= 'a' && v.p[j] <= 'f'),
             "64 lowercase hex digits");
      rv->hash = v;
      rv->hash_comma = (size_t)(sep - line);
      seen |= F_HASH;
      hash_last = 1;
    }
    /* other fields: a later version's, kept and ignored */
#undef NEED
#undef INT_FIELD
#undef STR_FIELD
#undef BOOL_FIELD
    llmr__js_ws(&c);
    if (c.p < c.e && *c.p == ',') {
      sep = c.p++;
      continue;
    }
    if (c.p < c.e && *c.p == '}') {
      c.p++;
      break;
    }
    FAIL(AT_END(0), "not valid JSON (',' or '}' expected at column %zu)",
         (size_t)(c.p - line) + 1);
  }
end:
  llmr__js_ws(&c);
  if (c.p != c.e)
    WHY("not valid JSON (text after the object at column %zu)",
        (size_t)(c.p - line) + 1);
  for (i = 0; i < sizeof(req_names) / sizeof(req_names[0]); i++)
    if (!(seen & (1u << i)))
      WHY("record has no \"%s\" field", req_names[i]);
  if (rv->v != 1)
    WHY("record version %lld is not supported (this library writes 1)",
        (long long)rv->v);
  if (!hash_last || rv->hash_comma == 0 || line[rv->hash_comma] != ',')
    WHY("\"hash\" is not the record's last field");
  return 0;
}

int llmr__line_classify(const char *line, size_t n, llmr__recview *rv,
                        char *why, size_t why_size) {
  static const char prefix[] = LLMR__REC_PREFIX;
  size_t k = n < sizeof(prefix) - 1 ? n : sizeof(prefix) - 1;
  int r;
  if (n == 0)
    return LLMR__LINE_TORN;
  if ((r = llmr__rec_parse(line, n, rv, why, why_size)) == 0)
    return LLMR__LINE_RECORD;
  /* a write cut short is a prefix of a record: it starts like one, and
   * everything in it is right up to where it stops */
  if (r == -2 && memcmp(line, prefix, k) == 0)
    return LLMR__LINE_TORN;
  return LLMR__LINE_BAD;
}

/* ---- the line reader ---------------------------------------------------- */

#define LR_CHUNK ((size_t)1 << 20)

void llmr__lr_init(llmr__lreader *lr, int fd, uint64_t from, uint64_t limit) {
  memset(lr, 0, sizeof(*lr));
  lr->fd = fd;
  lr->buf_off = lr->pos = from;
  lr->limit = limit;
}

void llmr__lr_free(llmr__lreader *lr) {
  llmr__free(lr->buf);
  lr->buf = NULL;
}

/* Read more bytes into the buffer: 1, 0 at the limit, -1 on error. */
static int lr_fill(llmr__lreader *lr) {
  size_t want;
  ssize_t got;
  if (lr->pos >= lr->limit)
    return 0;
  if (lr->start > 0) { /* keep only the unread bytes */
    memmove(lr->buf, lr->buf + lr->start, lr->end - lr->start);
    lr->buf_off += lr->start;
    lr->end -= lr->start;
    lr->start = 0;
  }
  if (lr->end == lr->cap) {
    size_t ncap = lr->cap ? lr->cap * 2 : 0;
    char *nb;
    if (!ncap) { /* a small read needs a small buffer */
      uint64_t left = lr->limit - lr->pos;
      ncap = left < LR_CHUNK ? (size_t)left + 1 : LR_CHUNK;
      if (ncap < 4096)
        ncap = 4096;
    }
    if (!(nb = llmr__realloc(lr->buf, ncap))) {
      lr->err = ENOMEM;
      return -1;
    }
    lr->buf = nb;
    lr->cap = ncap;
  }
  want = lr->cap - lr->end;
  if ((uint64_t)want > lr->limit - lr->pos)
    want = (size_t)(lr->limit - lr->pos);
  do
    got = pread(lr->fd, lr->buf + lr->end, want, (off_t)lr->pos);
  while (got < 0 && errno == EINTR);
  if (got < 0) {
    lr->err = errno;
    return -1;
  }
  if (got == 0) { /* the file is shorter than it was: stop there */
    lr->limit = lr->pos;
    return 0;
  }
  lr->end += (size_t)got;
  lr->pos += (uint64_t)got;
  return 1;
}

int llmr__lr_next(llmr__lreader *lr, const char **line, size_t *len,
                  uint64_t *off, int *nl) {
  size_t scanned = 0;
  for (;;) {
    char *start = lr->buf + lr->start;
    size_t avail = lr->end - lr->start;
    char *q = avail > scanned ? memchr(start + scanned, '\n', avail - scanned)
                              : NULL;
    int r;
    if (q) {
      *line = start;
      *len = (size_t)(q - start);
      *off = lr->buf_off + lr->start;
      *nl = 1;
      lr->start += *len + 1;
      if (*len > LLMR__MAX_LINE)
        return -2;
      return 1;
    }
    scanned = avail;
    if (avail > LLMR__MAX_LINE) {
      /* skip to the next newline without keeping the bytes */
      *off = lr->buf_off + lr->start;
      for (;;) {
        lr->start = lr->end;
        if ((r = lr_fill(lr)) <= 0)
          return r < 0 ? -1 : -2;
        q = memchr(lr->buf, '\n', lr->end);
        if (q) {
          lr->start = (size_t)(q - lr->buf) + 1;
          return -2;
        }
      }
    }
    r = lr_fill(lr);
    if (r < 0)
      return -1;
    if (r == 0) {
      if (lr->end == lr->start)
        return 0;
      *line = lr->buf + lr->start;
      *len = lr->end - lr->start;
      *off = lr->buf_off + lr->start;
      *nl = 0;
      lr->start = lr->end;
      return 1;
    }
    /* the unread bytes moved to the buffer's start: `scanned` of them
     * are known to hold no newline */
  }
}

/* ---- time --------------------------------------------------------------- */

static int64_t floordiv(int64_t a, int64_t b) {
  return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

int64_t llmr__day_of(int64_t t_ms) { return floordiv(t_ms, 86400000); }

int64_t llmr__month_of(int64_t t_ms) {
  time_t s = (time_t)floordiv(t_ms, 1000);
  struct tm tm;
  if (!gmtime_r(&s, &tm))
    return 0;
  return (int64_t)(tm.tm_year + 1900) * 12 + tm.tm_mon;
}

int64_t llmr__bucket_of(int unit, int64_t t_ms, char label[32]) {
  time_t s;
  struct tm tm;
  int64_t start;
  if (unit == 0)
    start = floordiv(t_ms, 3600000) * 3600000;
  else
    start = floordiv(t_ms, 86400000) * 86400000;
  s = (time_t)(start / 1000);
  if (!gmtime_r(&s, &tm))
    memset(&tm, 0, sizeof(tm));
  /* strftime: no truncation warnings, and the fields are in range */
  if (unit == 2) {
    tm.tm_mday = 1;
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    start = (int64_t)timegm(&tm) * 1000;
    strftime(label, 32, "%Y-%m", &tm);
  } else if (unit == 1) {
    strftime(label, 32, "%Y-%m-%d", &tm);
  } else {
    strftime(label, 32, "%Y-%m-%dT%H:00Z", &tm);
  }
  return start;
}

/* ---- verify ------------------------------------------------------------- */

#define VERIFY_LIST_MAX 100

typedef struct vstate {
  llmr__buf torn, problems; /* JSON array items, comma-separated */
  size_t n_torn, n_problems;
} vstate;

static int add_item(llmr__buf *b, size_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int add_item(llmr__buf *b, size_t *n, const char *fmt, ...) {
  char tmp[512];
  va_list ap;
  if ((*n)++ >= VERIFY_LIST_MAX)
    return 0;
  va_start(ap, fmt);
  vsnprintf(tmp, sizeof(tmp), fmt, ap);
  va_end(ap);
  if (b->len && llmr__buf_append(b, ",", 1) != 0)
    return -1;
  return llmr__buf_puts(b, tmp);
}

static int add_problem(vstate *v, uint64_t line, uint64_t off, int64_t n,
                       const char *text) {
  llmr__buf item = {0};
  int rc;
  if (v->n_problems >= VERIFY_LIST_MAX) {
    v->n_problems++;
    return 0;
  }
  if (llmr__buf_printf(&item, "{\"line\":%llu,\"offset\":%llu,\"n\":",
                       (unsigned long long)line, (unsigned long long)off) ||
      (n >= 0 ? llmr__buf_printf(&item, "%lld", (long long)n)
              : llmr__buf_puts(&item, "null")) ||
      llmr__buf_puts(&item, ",\"problem\":") ||
      llmr__buf_json_str(&item, text) || llmr__buf_puts(&item, "}")) {
    llmr__buf_free(&item);
    return -1;
  }
  rc = add_item(&v->problems, &v->n_problems, "%s", item.data);
  llmr__buf_free(&item);
  return rc;
}

LLMR_API llmr_status llmr_ledger_verify(const char *path,
                                        char **report_json) {
  llmr__lreader lr;
  llmr__buf out = {0};
  vstate v;
  struct stat stb;
  char prev[65] = LLMR__GENESIS, why[160], msg[320];
  const char *line;
  size_t len;
  uint64_t off, lineno = 0, records = 0;
  int64_t prev_n = -1, first_t = 0, last_t = 0;
  int nl, r, fd, have_t = 0, oom = 0, io = 0;
  llmr_status st;

  if (report_json)
    *report_json = NULL;
  if (!path)
    return LLMR_E_INVAL;
  memset(&v, 0, sizeof(v));
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0 || fstat(fd, &stb) != 0 || !S_ISREG(stb.st_mode)) {
    int e = fd < 0 ? errno : 0;
    if (fd >= 0)
      close(fd);
    if (report_json) {
      snprintf(msg, sizeof(msg), "cannot open %s: %s", path,
               e ? strerror(e) : "not a regular file");
      if (llmr__buf_puts(&out, "{\"path\":") || llmr__buf_json_str(&out, path) ||
          llmr__buf_puts(&out, ",\"ok\":false,\"error\":") ||
          llmr__buf_json_str(&out, msg) || llmr__buf_puts(&out, "}"))
        return LLMR_E_NOMEM;
      *report_json = out.data;
    }
    return LLMR_E_IO;
  }
  llmr__lr_init(&lr, fd, 0, (uint64_t)stb.st_size);
  while ((r = llmr__lr_next(&lr, &line, &len, &off, &nl)) != 0) {
    llmr__recview rv;
    int kind;
    lineno++;
    if (r == -1) {
      io = 1;
      break;
    }
    if (r == -2) {
      oom |= add_problem(&v, lineno, off, -1,
                         "a line longer than 16 MiB: not a ledger record");
      continue;
    }
    kind = llmr__line_classify(line, len, &rv, why, sizeof(why));
    if (kind == LLMR__LINE_TORN) {
      oom |= add_item(&v.torn, &v.n_torn,
                      "{\"line\":%llu,\"offset\":%llu,\"bytes\":%zu}",
                      (unsigned long long)lineno, (unsigned long long)off,
                      len);
      continue;
    }
    if (kind == LLMR__LINE_BAD) {
      snprintf(msg, sizeof(msg), "not a ledger record: %s", why);
      oom |= add_problem(&v, lineno, off, -1, msg);
      continue;
    }
    {
      char h[65];
      llmr__rec_hash(prev, line, rv.hash_comma, h);
      records++;
      if (rv.n != prev_n + 1) {
        snprintf(msg, sizeof(msg),
                 "sequence number %lld follows %lld: records are missing or "
                 "out of order here",
                 (long long)rv.n, (long long)prev_n);
        oom |= add_problem(&v, lineno, off, rv.n, msg);
      } else if (memcmp(h, rv.hash.p, 64) != 0) {
        oom |= add_problem(&v, lineno, off, rv.n,
                           "hash mismatch: this record was altered, or the "
                           "record before it was altered or removed");
      }
      memcpy(prev, rv.hash.p, 64); /* go on from what the file says */
      prev_n = rv.n;
      if (!have_t || rv.t < first_t)
        first_t = rv.t;
      if (!have_t || rv.t > last_t)
        last_t = rv.t;
      have_t = 1;
    }
  }
  llmr__lr_free(&lr);
  close(fd);
  if (io) {
    snprintf(msg, sizeof(msg), "read error: %s", strerror(lr.err));
    oom |= add_problem(&v, lineno, lr.pos, -1, msg);
  }
  st = io ? LLMR_E_IO : v.n_problems ? LLMR_E_CORRUPT : LLMR_OK;
  if (!report_json) {
    llmr__buf_free(&v.torn);
    llmr__buf_free(&v.problems);
    return oom ? LLMR_E_NOMEM : st;
  }
  oom |= llmr__buf_puts(&out, "{\"path\":") || llmr__buf_json_str(&out, path) ||
         llmr__buf_printf(&out,
                          ",\"ok\":%s,\"records\":%llu,\"lines\":%llu,"
                          "\"bytes\":%llu,\"head\":",
                          st == LLMR_OK ? "true" : "false",
                          (unsigned long long)records,
                          (unsigned long long)lineno,
                          (unsigned long long)stb.st_size) ||
         (records ? llmr__buf_printf(&out, "\"%s\"", prev)
                  : llmr__buf_puts(&out, "null"));
  if (have_t)
    oom |= llmr__buf_printf(&out, ",\"first_t\":%lld,\"last_t\":%lld",
                            (long long)first_t, (long long)last_t);
  else
    oom |= llmr__buf_puts(&out, ",\"first_t\":null,\"last_t\":null");
  oom |= llmr__buf_printf(&out, ",\"torn_total\":%zu,\"torn\":[%s]",
                          v.n_torn, llmr__buf_str(&v.torn)) ||
         llmr__buf_printf(&out, ",\"problems_total\":%zu,\"problems\":[%s]}",
                          v.n_problems, llmr__buf_str(&v.problems));
  llmr__buf_free(&v.torn);
  llmr__buf_free(&v.problems);
  if (oom) {
    llmr__buf_free(&out);
    return LLMR_E_NOMEM;
  }
  *report_json = out.data;
  return st;
}
