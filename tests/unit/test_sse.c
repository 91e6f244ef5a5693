/*
 * Unit tests for the incremental SSE parser (src/sse.c).
 *
 * Golden tests: each case is an input byte stream plus the expected event
 * log. Realistic streams live in tests/fixtures/sse/NAME.txt with the log in
 * NAME.expected (leading "# " lines are comments; "# max_line=N" and
 * "# abort_at=N" set options). The key property: every case must produce
 * the identical log whatever the chunking -- whole, split in two at every
 * offset, in three at every (i,j) for small inputs (sampled for big ones),
 * one byte at a time, and random chunkings. Each chunk is copied into its
 * own exact-size heap block so ASan catches any read past a chunk's end.
 *
 * Fixtures are found under $LLMR_SRCDIR (default ".", the repo root).
 *
 * SPDX-License-Identifier: MIT
 */
#define _POSIX_C_SOURCE 200809L

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sse.h"

/* Inputs up to this size get the full O(n^2) three-piece split. */
#define FULL_3WAY_MAX 800
#define SAMPLED_3WAY 3000
#define RANDOM_CHUNKINGS 300

/* ---- small string builder --------------------------------------------- */

typedef struct sbuf {
  char *p;
  size_t len, cap;
} sbuf;

static void sb_put(sbuf *b, const void *s, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1)
      cap *= 2;
    b->p = realloc(b->p, cap);
    assert_non_null(b->p);
    b->cap = cap;
  }
  if (n)
    memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

static void sb_puts(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_printf(sbuf *b, const char *fmt, ...) {
  char tmp[256];
  va_list ap;
  int n;
  va_start(ap, fmt);
  n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
  va_end(ap);
  assert_true(n >= 0 && (size_t)n < sizeof(tmp));
  sb_put(b, tmp, (size_t)n);
}

/* Escape control bytes and backslash; UTF-8 passes through. `spaces` also
 * escapes ' ' (event names and ids, to keep the log line unambiguous).
 * Must match tests/fixtures/sse/tools/ref.py. */
static void sb_esc(sbuf *b, const char *s, size_t n, int spaces) {
  size_t i;
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '\\')
      sb_puts(b, "\\\\");
    else if (c == '\n')
      sb_puts(b, "\\n");
    else if (c == '\r')
      sb_puts(b, "\\r");
    else if (c == '\t')
      sb_puts(b, "\\t");
    else if (c < 0x20 || c == 0x7f || (spaces && c == ' '))
      sb_printf(b, "\\x%02x", c);
    else
      sb_put(b, &s[i], 1);
  }
}

static const char *status_word(llmr_status st) {
  switch (st) {
  case LLMR_OK:
    return "OK";
  case LLMR_E_NOMEM:
    return "NOMEM";
  case LLMR_E_PROTOCOL:
    return "PROTOCOL";
  case LLMR_E_ABORTED:
    return "ABORTED";
  default:
    return "UNEXPECTED";
  }
}

/* ---- recording callback ------------------------------------------------- */

typedef struct recorder {
  sbuf log;
  int nev;
  int abort_at; /* return non-zero on this (1-based) event; 0 = never */
} recorder;

static int record_cb(void *user, const llmr__sse_event *ev) {
  recorder *r = user;
  /* Contract checks on every event of every test. */
  assert_non_null(ev->event);
  assert_int_equal(ev->event[ev->event_len], '\0');
  assert_non_null(ev->data);
  assert_int_equal(ev->data[ev->data_len], '\0');
  if (ev->id)
    assert_int_equal(ev->id[ev->id_len], '\0');
  else
    assert_int_equal(ev->id_len, 0);
  assert_true(ev->retry_ms >= -1);

  sb_puts(&r->log, "event=");
  sb_esc(&r->log, ev->event, ev->event_len, 1);
  sb_puts(&r->log, " id=");
  if (ev->id)
    sb_esc(&r->log, ev->id, ev->id_len, 1);
  else
    sb_puts(&r->log, "(none)");
  sb_printf(&r->log, " retry=%ld data=", ev->retry_ms);
  sb_esc(&r->log, ev->data, ev->data_len, 0);
  sb_puts(&r->log, "\n");
  r->nev++;
  return r->abort_at && r->nev == r->abort_at;
}

typedef struct case_opts {
  size_t max_line;
  int abort_at;
} case_opts;

/* Feed `in` cut at the offsets in cuts[] (ascending, may repeat: empty
 * chunks), then finish; return the log (caller frees). */
static char *run_chunked(const char *in, size_t n, const size_t *cuts,
                         size_t ncuts, const case_opts *o) {
  llmr__sse_parser p;
  recorder r;
  llmr_status first = LLMR_OK, st;
  size_t k, start = 0;

  memset(&r, 0, sizeof(r));
  r.abort_at = o->abort_at;
  llmr__sse_init(&p, o->max_line, record_cb, &r);
  for (k = 0; k <= ncuts; k++) {
    size_t end = k < ncuts ? cuts[k] : n;
    size_t len = end - start;
    char *chunk = malloc(len ? len : 1);
    assert_non_null(chunk);
    if (len)
      memcpy(chunk, in + start, len);
    st = llmr__sse_feed(&p, chunk, len);
    free(chunk);
    if (first != LLMR_OK)
      assert_int_equal(st, first); /* errors are sticky */
    else
      first = st;
    start = end;
  }
  st = llmr__sse_finish(&p);
  if (first != LLMR_OK)
    assert_int_equal(st, first);
  else
    first = st;
  assert_int_equal(llmr__sse_truncated(&p), p.truncated);
  sb_printf(&r.log, "end status=%s truncated=%d reconnect=%ld\n",
            status_word(first), llmr__sse_truncated(&p),
            llmr__sse_reconnect_ms(&p));
  llmr__sse_free(&p);
  if (!r.log.p)
    sb_puts(&r.log, "");
  return r.log.p;
}

static void describe_cuts(char *out, size_t outsz, const size_t *cuts,
                          size_t ncuts) {
  size_t k, used = 0;
  out[0] = '\0';
  for (k = 0; k < ncuts && used + 24 < outsz; k++) {
    int w = snprintf(out + used, outsz - used, "%s%zu", k ? "," : "", cuts[k]);
    used += (size_t)w;
  }
  if (k < ncuts)
    snprintf(out + used, outsz - used, ",...(%zu cuts)", ncuts);
}

/* Run one chunking and compare with the reference log. */
static void check_chunking(const char *name, const char *in, size_t n,
                           const size_t *cuts, size_t ncuts,
                           const case_opts *o, const char *want) {
  char *got = run_chunked(in, n, cuts, ncuts, o);
  if (strcmp(got, want) != 0) {
    char where[200];
    size_t d = 0;
    while (got[d] && got[d] == want[d])
      d++;
    describe_cuts(where, sizeof(where), cuts, ncuts);
    print_error("%s: chunking [%s] of %zu bytes: log differs at char %zu\n"
                "--- expected ---\n%s--- got ---\n%s",
                name, where, n, d, want, got);
    free(got);
    fail();
  }
  free(got);
}

static uint64_t rng_state = 0x9E3779B97F4A7C15u;
static size_t rnd(size_t bound) { /* xorshift64*, bound > 0 */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return (size_t)((rng_state * 2685821657736338717u) % bound);
}

static int cmp_size(const void *a, const void *b) {
  size_t x = *(const size_t *)a, y = *(const size_t *)b;
  return x < y ? -1 : x > y;
}

/* The golden check: whole input must give `expected` (if not NULL), and
 * every chunking must give the same log as the whole input. */
static void check_all_chunkings(const char *name, const char *in, size_t n,
                                const case_opts *o, const char *expected) {
  size_t i, j, k;
  size_t *cuts;
  char *whole = run_chunked(in, n, NULL, 0, o);

  if (expected && strcmp(whole, expected) != 0) {
    print_error("%s: whole-input log differs from the golden log\n"
                "--- expected ---\n%s--- got ---\n%s",
                name, expected, whole);
    free(whole);
    fail();
  }
  cuts = malloc((n + 2) * sizeof(*cuts));
  assert_non_null(cuts);

  for (i = 0; i <= n; i++) { /* two pieces, every offset (incl. empty) */
    cuts[0] = i;
    check_chunking(name, in, n, cuts, 1, o, whole);
  }
  if (n <= FULL_3WAY_MAX) { /* three pieces, every (i, j) */
    for (i = 0; i <= n; i++)
      for (j = i; j <= n; j++) {
        cuts[0] = i;
        cuts[1] = j;
        check_chunking(name, in, n, cuts, 2, o, whole);
      }
  } else {
    for (k = 0; k < SAMPLED_3WAY; k++) {
      cuts[0] = rnd(n + 1);
      cuts[1] = rnd(n + 1);
      qsort(cuts, 2, sizeof(*cuts), cmp_size);
      check_chunking(name, in, n, cuts, 2, o, whole);
    }
  }
  if (n > 1) { /* one byte at a time */
    for (i = 1; i < n; i++)
      cuts[i - 1] = i;
    check_chunking(name, in, n, cuts, n - 1, o, whole);
  }
  for (k = 0; k < RANDOM_CHUNKINGS && n > 0; k++) { /* random chunk sizes */
    size_t pos = 0, nc = 0, maxchunk = 1 + rnd(k % 2 ? 8 : n);
    while (nc < n) {
      pos += rnd(maxchunk + 1); /* 0 allowed: empty chunks */
      if (pos >= n)
        break;
      cuts[nc++] = pos;
    }
    check_chunking(name, in, n, cuts, nc, o, whole);
  }
  free(cuts);
  free(whole);
}

/* ---- fixtures ----------------------------------------------------------- */

typedef struct fixture {
  char name[128];
  char *input;
  size_t input_len;
  char *expected; /* comment lines stripped */
  case_opts opts;
} fixture;

static char *fixture_dir(void) {
  const char *root = getenv("LLMR_SRCDIR");
  sbuf b = {0};
  sb_puts(&b, root && *root ? root : ".");
  sb_puts(&b, "/tests/fixtures/sse");
  return b.p;
}

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  sbuf b = {0};
  char tmp[4096];
  size_t got;
  if (!f)
    return NULL;
  while ((got = fread(tmp, 1, sizeof(tmp), f)) > 0)
    sb_put(&b, tmp, got);
  fclose(f);
  sb_put(&b, "", 0);
  *len = b.len;
  return b.p;
}

static int fixture_load(fixture *fx, const char *dir, const char *name) {
  char path[1024];
  size_t elen;
  char *raw, *s;
  memset(fx, 0, sizeof(*fx));
  snprintf(fx->name, sizeof(fx->name), "%s", name);
  snprintf(path, sizeof(path), "%s/%s.txt", dir, name);
  fx->input = slurp(path, &fx->input_len);
  snprintf(path, sizeof(path), "%s/%s.expected", dir, name);
  raw = slurp(path, &elen);
  if (!fx->input || !raw) {
    free(fx->input);
    free(raw);
    return -1;
  }
  s = raw;
  while (*s == '#') { /* header: comments and options */
    char *eol = strchr(s, '\n');
    unsigned long v;
    if (sscanf(s, "# max_line=%lu", &v) == 1)
      fx->opts.max_line = (size_t)v;
    else if (sscanf(s, "# abort_at=%lu", &v) == 1)
      fx->opts.abort_at = (int)v;
    s = eol ? eol + 1 : s + strlen(s);
  }
  fx->expected = strdup(s);
  free(raw);
  return fx->expected ? 0 : -1;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted fixture names (without .txt); returns count, or -1. */
static int list_fixtures(const char *dir, char ***names_out) {
  DIR *d = opendir(dir);
  struct dirent *de;
  char **names = NULL;
  size_t n = 0;
  if (!d)
    return -1;
  while ((de = readdir(d)) != NULL) {
    size_t l = strlen(de->d_name);
    if (l > 4 && strcmp(de->d_name + l - 4, ".txt") == 0) {
      names = realloc(names, (n + 1) * sizeof(*names));
      names[n] = strndup(de->d_name, l - 4);
      n++;
    }
  }
  closedir(d);
  if (n)
    qsort(names, n, sizeof(*names), cmp_str);
  *names_out = names;
  return (int)n;
}

static void test_fixture(void **state) {
  const fixture *fx = *state;
  check_all_chunkings(fx->name, fx->input, fx->input_len, &fx->opts,
                      fx->expected);
}

/* ---- inline golden cases ------------------------------------------------ */

typedef struct inline_case {
  const char *name;
  const char *in;
  size_t len; /* sizeof(literal) - 1, so NULs count */
  case_opts opts;
  const char *want;
} inline_case;

#define IN(s) s, sizeof(s) - 1

static const inline_case inline_cases[] = {
    {"crlf_across_chunks", IN("data: a\r\n\r\ndata: b\r\n\r\n"), {0, 0},
     "event= id=(none) retry=-1 data=a\n"
     "event= id=(none) retry=-1 data=b\n"
     "end status=OK truncated=0 reconnect=-1\n"},
    {"cr_lf_cr_lf_is_two_line_ends", IN("data: a\r\n\r\n"), {0, 0},
     "event= id=(none) retry=-1 data=a\n"
     "end status=OK truncated=0 reconnect=-1\n"},
    {"lf_cr_is_blank_line", IN("data: a\n\rdata: b\n\n"), {0, 0},
     "event= id=(none) retry=-1 data=a\n"
     "event= id=(none) retry=-1 data=b\n"
     "end status=OK truncated=0 reconnect=-1\n"},
    {"cr_then_data_starting_with_lf_byte", IN("data: a\r\r\n\ndata: b\r\n"),
     {0, 0},
     "event= id=(none) retry=-1 data=a\n"
     "end status=OK truncated=1 reconnect=-1\n"},
    {"nul_everywhere", IN("\0data: x\n\ndata:\0\n\n\0\n\nid:\0\ndata: y\n\n"),
     {0, 0},
     "event= id=(none) retry=-1 data=\\x00\n"
     "event= id=(none) retry=-1 data=y\n"
     "end status=OK truncated=0 reconnect=-1\n"},
    {"bom_only", IN("\xEF\xBB\xBF"), {0, 0},
     "end status=OK truncated=0 reconnect=-1\n"},
    {"partial_bom_at_eof", IN("\xEF\xBB"), {0, 0},
     "end status=OK truncated=1 reconnect=-1\n"},
    {"bom_then_crlf", IN("\xEF\xBB\xBF\r\ndata: 1\r\n\r\n"), {0, 0},
     "event= id=(none) retry=-1 data=1\n"
     "end status=OK truncated=0 reconnect=-1\n"},
    {"max_line_1", IN("a\nb\n\n:\n\nda\n"), {1, 0},
     "end status=PROTOCOL truncated=1 reconnect=-1\n"},
    {"max_line_5_data_no_value", IN("data\n\ndata:\n\n"), {5, 0},
     "event= id=(none) retry=-1 data=\n"
     "event= id=(none) retry=-1 data=\n"
     "end status=OK truncated=0 reconnect=-1\n"},
    {"abort_first_event_rest_unparsed", IN("data: 1\n\ndata: 2\n\n"), {0, 1},
     "event= id=(none) retry=-1 data=1\n"
     "end status=ABORTED truncated=1 reconnect=-1\n"},
};

static void test_inline_cases(void **state) {
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(inline_cases) / sizeof(inline_cases[0]); i++) {
    const inline_case *c = &inline_cases[i];
    check_all_chunkings(c->name, c->in, c->len, &c->opts, c->want);
  }
}

/* ---- API behaviour ------------------------------------------------------ */

/* Feed a string literal, embedded NULs included. */
#define FEED_LIT(p, lit) llmr__sse_feed((p), (lit), sizeof(lit) - 1)

static int count_cb(void *user, const llmr__sse_event *ev) {
  (void)ev;
  ++*(int *)user;
  return 0;
}

static void test_zeroed_parser_is_usable(void **state) {
  llmr__sse_parser p;
  (void)state;
  memset(&p, 0, sizeof(p));
  llmr__sse_free(&p); /* no-op on a zeroed parser */
  assert_int_equal(FEED_LIT(&p, "data: x\n\n"), LLMR_OK);
  assert_int_equal(llmr__sse_finish(&p), LLMR_OK); /* cb NULL: dropped */
  assert_int_equal(llmr__sse_truncated(&p), 0);
  assert_int_equal(llmr__sse_reconnect_ms(&p), -1);
  llmr__sse_free(&p);
  llmr__sse_free(&p); /* twice is fine */
}

static void test_errors_sticky_until_reset(void **state) {
  llmr__sse_parser p;
  int n = 0;
  char big[100];
  (void)state;
  memset(big, 'x', sizeof(big));
  llmr__sse_init(&p, 32, count_cb, &n);
  assert_int_equal(FEED_LIT(&p, "data: "), LLMR_OK);
  assert_int_equal(llmr__sse_feed(&p, big, sizeof(big)), LLMR_E_PROTOCOL);
  assert_int_equal(FEED_LIT(&p, "\n\ndata: y\n\n"), LLMR_E_PROTOCOL);
  assert_int_equal(llmr__sse_feed(&p, NULL, 0), LLMR_E_PROTOCOL);
  assert_int_equal(llmr__sse_finish(&p), LLMR_E_PROTOCOL);
  assert_int_equal(llmr__sse_truncated(&p), 1);
  assert_int_equal(n, 0);
  llmr__sse_reset(&p);
  assert_int_equal(FEED_LIT(&p, "retry: 5\ndata: y\n\n"), LLMR_OK);
  assert_int_equal(n, 1);
  assert_int_equal(llmr__sse_reconnect_ms(&p), 5);
  llmr__sse_reset(&p); /* reset forgets stream-level state too */
  assert_int_equal(llmr__sse_reconnect_ms(&p), -1);
  llmr__sse_free(&p);
}

static int abort_cb(void *user, const llmr__sse_event *ev) {
  (void)ev;
  ++*(int *)user;
  return 1;
}

static void test_abort_sticky_until_reset(void **state) {
  llmr__sse_parser p;
  int n = 0;
  (void)state;
  llmr__sse_init(&p, 0, abort_cb, &n);
  assert_int_equal(FEED_LIT(&p, "data: 1\n\ndata: 2\n\n"),
                   LLMR_E_ABORTED);
  assert_int_equal(n, 1);
  assert_int_equal(FEED_LIT(&p, "data: 3\n\n"), LLMR_E_ABORTED);
  assert_int_equal(llmr__sse_finish(&p), LLMR_E_ABORTED);
  assert_int_equal(n, 1);
  llmr__sse_reset(&p);
  assert_int_equal(FEED_LIT(&p, "data: 4\n\n"), LLMR_E_ABORTED);
  assert_int_equal(n, 2);
  llmr__sse_free(&p);
}

typedef struct last_event {
  char data[64];
  size_t data_len;
  char id[16];
  int has_id;
} last_event;

static int last_cb(void *user, const llmr__sse_event *ev) {
  last_event *le = user;
  assert_true(ev->data_len < sizeof(le->data));
  memcpy(le->data, ev->data, ev->data_len + 1);
  le->data_len = ev->data_len;
  le->has_id = ev->id != NULL;
  if (ev->id) {
    assert_true(ev->id_len < sizeof(le->id));
    memcpy(le->id, ev->id, ev->id_len + 1);
  }
  return 0;
}

/* After the buffers have grown once, same-sized events reuse them. */
static void test_no_allocation_in_steady_state(void **state) {
  llmr__sse_parser p;
  last_event le;
  char *data_ptr, *event_ptr, *id_ptr, *line_ptr;
  size_t caps[4];
  int i;
  static const char ev[] = "event: content_block_delta\nid: 7\n"
                           "data: {\"text\":\"hello\"}\ndata: more\n\n";
  (void)state;
  llmr__sse_init(&p, 0, last_cb, &le);
  /* Warm up, including a line cut by a chunk boundary. */
  assert_int_equal(llmr__sse_feed(&p, ev, 40), LLMR_OK);
  assert_int_equal(llmr__sse_feed(&p, ev + 40, sizeof(ev) - 1 - 40), LLMR_OK);
  data_ptr = p.data.ptr;
  event_ptr = p.event.ptr;
  id_ptr = p.id.ptr;
  line_ptr = p.line.ptr;
  caps[0] = p.data.cap;
  caps[1] = p.event.cap;
  caps[2] = p.id.cap;
  caps[3] = p.line.cap;
  for (i = 0; i < 1000; i++) {
    size_t cut = (size_t)i % (sizeof(ev) - 1);
    assert_int_equal(llmr__sse_feed(&p, ev, cut), LLMR_OK);
    assert_int_equal(llmr__sse_feed(&p, ev + cut, sizeof(ev) - 1 - cut),
                     LLMR_OK);
  }
  assert_string_equal(le.data, "{\"text\":\"hello\"}\nmore");
  assert_string_equal(le.id, "7");
  assert_ptr_equal(p.data.ptr, data_ptr);
  assert_ptr_equal(p.event.ptr, event_ptr);
  assert_ptr_equal(p.id.ptr, id_ptr);
  assert_ptr_equal(p.line.ptr, line_ptr);
  assert_true(p.data.cap == caps[0] && p.event.cap == caps[1] &&
              p.id.cap == caps[2] && p.line.cap == caps[3]);
  llmr__sse_free(&p);
}

/* A line entirely inside one chunk is not copied into the carry buffer. */
static void test_complete_lines_not_carried(void **state) {
  llmr__sse_parser p;
  int n = 0;
  (void)state;
  llmr__sse_init(&p, 0, count_cb, &n);
  assert_int_equal(FEED_LIT(&p, "data: a\n\n: c\n"), LLMR_OK);
  assert_null(p.line.ptr);
  assert_int_equal(n, 1);
  llmr__sse_free(&p);
}

/* Big events under the default 1 MiB cap, and the cap itself. */
static void test_default_cap(void **state) {
  llmr__sse_parser p;
  int n = 0;
  size_t big = LLMR__SSE_DEFAULT_MAX_LINE, i;
  char *s = malloc(big + 16);
  (void)state;
  assert_non_null(s);
  /* data line of exactly 1 MiB (6 + big-6 bytes), fed in 1000-byte pieces */
  memcpy(s, "data: ", 6);
  memset(s + 6, 'q', big - 6);
  memcpy(s + big, "\n\n", 2);
  llmr__sse_init(&p, 0, count_cb, &n);
  for (i = 0; i < big + 2; i += 1000)
    assert_int_equal(
        llmr__sse_feed(&p, s + i, big + 2 - i < 1000 ? big + 2 - i : 1000),
        LLMR_OK);
  assert_int_equal(n, 1);
  /* one byte more is too long, whole or chunked */
  llmr__sse_reset(&p);
  memcpy(s + 6, "qq", 2);
  s[big] = 'q';
  memcpy(s + big + 1, "\n\n", 2);
  assert_int_equal(llmr__sse_feed(&p, s, big + 3), LLMR_E_PROTOCOL);
  llmr__sse_reset(&p);
  assert_int_equal(llmr__sse_feed(&p, s, 5000), LLMR_OK);
  assert_int_equal(llmr__sse_feed(&p, s + 5000, big + 3 - 5000),
                   LLMR_E_PROTOCOL);
  assert_int_equal(n, 1);
  llmr__sse_free(&p);
  free(s);
}

static void test_event_fields(void **state) {
  llmr__sse_parser p;
  last_event le;
  static const char huge_retry[] = "retry: 99999999999999999999999\n\n";
  (void)state;
  memset(&le, 0, sizeof(le));
  llmr__sse_init(&p, 0, last_cb, &le);
  assert_int_equal(FEED_LIT(&p, "data: a\n\n"), LLMR_OK);
  assert_int_equal(le.has_id, 0); /* never set: NULL */
  assert_int_equal(FEED_LIT(&p, "id\ndata: b\n\n"), LLMR_OK);
  assert_int_equal(le.has_id, 1); /* set to empty: "" */
  assert_string_equal(le.id, "");
  assert_int_equal(FEED_LIT(&p, "data: with\0nul\n\n"), LLMR_OK);
  assert_int_equal(le.data_len, 8);
  assert_memory_equal(le.data, "with\0nul", 9);
  /* retry: beyond LONG_MAX saturates (kept out of the fixtures: long is 32
   * bits on some platforms). */
  assert_int_equal(llmr__sse_feed(&p, huge_retry, sizeof(huge_retry) - 1),
                   LLMR_OK);
  assert_true(llmr__sse_reconnect_ms(&p) == LONG_MAX);
  llmr__sse_free(&p);
}

/* ---- main ----------------------------------------------------------------*/

int main(void) {
  static const struct CMUnitTest api_tests[] = {
      cmocka_unit_test(test_inline_cases),
      cmocka_unit_test(test_zeroed_parser_is_usable),
      cmocka_unit_test(test_errors_sticky_until_reset),
      cmocka_unit_test(test_abort_sticky_until_reset),
      cmocka_unit_test(test_no_allocation_in_steady_state),
      cmocka_unit_test(test_complete_lines_not_carried),
      cmocka_unit_test(test_default_cap),
      cmocka_unit_test(test_event_fields),
  };
  char *dir = fixture_dir();
  char **names = NULL;
  int nfx = list_fixtures(dir, &names), i, failed;
  fixture *fxs;
  struct CMUnitTest *fx_tests;

  failed = cmocka_run_group_tests_name("sse_api", api_tests, NULL, NULL);

  /* Fixtures: one cmocka test each. Refuse to pass vacuously. */
  if (nfx < 20) {
    fprintf(stderr, "test_sse: found %d fixtures in %s (expected >= 20); "
                    "run from the repo root or set LLMR_SRCDIR\n",
            nfx, dir);
    free(dir);
    return 1;
  }
  fxs = calloc((size_t)nfx, sizeof(*fxs));
  fx_tests = calloc((size_t)nfx, sizeof(*fx_tests));
  if (!fxs || !fx_tests)
    return 1;
  for (i = 0; i < nfx; i++) {
    if (fixture_load(&fxs[i], dir, names[i]) != 0) {
      fprintf(stderr, "test_sse: cannot load %s/%s.{txt,expected}\n", dir,
              names[i]);
      return 1;
    }
    fx_tests[i].name = fxs[i].name;
    fx_tests[i].test_func = test_fixture;
    fx_tests[i].initial_state = &fxs[i];
  }
  failed += _cmocka_run_group_tests("sse_fixtures", fx_tests, (size_t)nfx,
                                    NULL, NULL);
  for (i = 0; i < nfx; i++) {
    free(fxs[i].input);
    free(fxs[i].expected);
    free(names[i]);
  }
  free(names);
  free(fxs);
  free(fx_tests);
  free(dir);
  return failed ? 1 : 0;
}
