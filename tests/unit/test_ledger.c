/*
 * The ledger without a network: exact cost arithmetic against figures
 * worked out by hand, the hash chain and what verify finds (edited,
 * dropped, reordered lines), torn-line recovery, bad files (never
 * rewritten), budgets and reservations, queries on generated data
 * against a brute-force count, time parsing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "internal.h"
#include "ledger_int.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char dir[256];
static int file_no;

static int setup(void **state) {
  (void)state;
  snprintf(dir, sizeof(dir), "%s/llmr-ledger-XXXXXX",
           getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state) {
  char cmd[300];
  (void)state;
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  return system(cmd) == 0 ? 0 : -1;
}

static const char *new_path(char *buf, size_t n) {
  snprintf(buf, n, "%s/l%d.jsonl", dir, ++file_no);
  return buf;
}

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  char *b;
  long n;
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  n = ftell(f);
  fseek(f, 0, SEEK_SET);
  b = malloc((size_t)n + 1);
  assert_non_null(b);
  assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
  b[n] = '\0';
  fclose(f);
  if (len)
    *len = (size_t)n;
  return b;
}

static void spit(const char *path, const char *data, size_t len, int append) {
  FILE *f = fopen(path, append ? "ab" : "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(data, 1, len, f), len);
  fclose(f);
}

static llmr_ledger *open_ok(const char *path, const char *opts) {
  llmr_ledger *l = NULL;
  char err[LLMR_ERRBUF_SIZE] = "";
  llmr_status st = llmr_ledger_open_ex(path, opts, &l, err, sizeof(err));
  if (st != LLMR_OK)
    fprintf(stderr, "open %s: %s\n", path, err);
  assert_int_equal(st, LLMR_OK);
  return l;
}

static llmr__ledger_rec rec_of(int64_t t, const char *app, const char *model,
                               int64_t cost) {
  static const char *const asked[] = {"openai/gpt-4o-mini"};
  llmr__ledger_rec r;
  memset(&r, 0, sizeof(r));
  r.t_ms = t;
  r.id = "0123456789abcdef0123456789abcdef";
  r.app = app;
  r.user = "u1";
  r.asked = asked;
  r.n_asked = 1;
  r.model = model;
  r.provider = "openai";
  r.native = strchr(model, '/') ? strchr(model, '/') + 1 : model;
  r.attempt = 1;
  r.status = LLMR_OK;
  r.http_status = 200;
  r.usage.prompt = 10;
  r.usage.completion = 5;
  r.cost_nanousd = cost;
  r.latency_ms = 100.5;
  r.ttft_ms = -1;
  return r;
}

static void append_ok(llmr_ledger *l, const llmr__ledger_rec *r) {
  char err[LLMR_ERRBUF_SIZE] = "";
  llmr_status st = llmr__ledger_append(l, r, NULL, NULL, err, sizeof(err));
  if (st != LLMR_OK)
    fprintf(stderr, "append: %s\n", err);
  assert_int_equal(st, LLMR_OK);
}

static const char *make_ledger(char *path, size_t n, int records) {
  llmr_ledger *l = open_ok(new_path(path, n), "{\"fsync\":\"never\"}");
  int i;
  for (i = 0; i < records; i++) {
    llmr__ledger_rec r = rec_of(1764000000000LL + i * 1000, "app", "openai/gpt-4o",
                                1000 + i);
    append_ok(l, &r);
  }
  llmr_ledger_close(l);
  return path;
}

static cJSON *verify_json(const char *path, llmr_status expect) {
  char *rep = NULL;
  cJSON *d;
  llmr_status st = llmr_ledger_verify(path, &rep);
  if (st != expect)
    fprintf(stderr, "verify: %s\n", rep ? rep : "(no report)");
  assert_int_equal(st, expect);
  assert_non_null(rep);
  d = cJSON_Parse(rep);
  llmr_free(rep);
  assert_non_null(d);
  return d;
}

static double num(const cJSON *o, const char *k) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  assert_true(cJSON_IsNumber(v));
  return v->valuedouble;
}

/* ---- cost arithmetic ---------------------------------------------------- */

static llmr__model_info priced(double in, double out, double cr, double cw,
                               double reas, double fee) {
  llmr__model_info m;
  memset(&m, 0, sizeof(m));
  m.upm_input = llmr__price_upm(in);
  m.upm_output = llmr__price_upm(out);
  m.upm_cache_read = llmr__price_upm(cr);
  m.upm_cache_write = llmr__price_upm(cw);
  m.upm_reasoning = llmr__price_upm(reas);
  m.fee_pico = llmr__price_pico(fee);
  return m;
}

static int64_t cost(const llmr__model_info *m, int64_t prompt, int64_t cached,
                    int64_t cache_write, int64_t completion, int64_t reasoning,
                    int answered) {
  llmr__usage u = {prompt, completion, cached, cache_write, reasoning};
  return llmr__cost_nanousd(m, &u, answered);
}

static void test_price_units(void **state) {
  (void)state;
  /* $/Mtok -> micro-$ per Mtok (= pico-$ per token), exact */
  assert_int_equal(llmr__price_upm(0.15), 150000);
  assert_int_equal(llmr__price_upm(0.1), 100000);
  assert_int_equal(llmr__price_upm(2.5), 2500000);
  assert_int_equal(llmr__price_upm(0.0375), 37500);
  assert_int_equal(llmr__price_upm(0.000001), 1);
  assert_int_equal(llmr__price_upm(-1), -1);
  assert_int_equal(llmr__price_pico(0.005), 5000000000LL);
  assert_int_equal(llmr__price_pico(-1), -1);
}

static void test_cost_by_hand(void **state) {
  llmr__model_info mini = priced(0.15, 0.6, 0.075, -1, -1, -1);
  llmr__model_info sonnet = priced(3, 15, 0.3, 3.75, -1, -1);
  llmr__model_info thinker = priced(1, 10, -1, -1, 20, -1);
  llmr__model_info search = priced(1, 1, -1, -1, -1, 0.005);
  (void)state;
  /* 600 uncached x $0.15 + 400 cached x $0.075 + 500 out x $0.60, per Mtok:
   * 90,000 + 30,000 + 300,000 = 420,000 nano-$ */
  assert_int_equal(cost(&mini, 1000, 400, 0, 500, 0, 1), 420000);
  /* Anthropic-style: 10,000 prompt tokens of which 6,000 read from the
   * cache and 2,000 written to it; 1,200 out (200 of them thinking, no
   * reasoning price: output price):
   * 2,000 x 3 + 6,000 x 0.3 + 2,000 x 3.75 + 1,200 x 15 ($/Mtok)
   * = 0.006 + 0.0018 + 0.0075 + 0.018 = $0.0333 = 33,300,000 nano-$ */
  assert_int_equal(cost(&sonnet, 10000, 6000, 2000, 1200, 200, 1), 33300000);
  /* reasoning at its own price ($1 = 1,000 n$ a token per Mtok):
   * 60 x 10,000 + 40 x 20,000 = 1,400,000 n$; 100 prompt x 1,000 */
  assert_int_equal(cost(&thinker, 100, 0, 0, 100, 40, 1), 1500000);
  /* no cache_read price: cached tokens at the input price */
  assert_int_equal(cost(&thinker, 100, 100, 0, 0, 0, 1), 100000);
  /* a per-request fee ($0.005 = 5,000,000 n$), only when answered */
  assert_int_equal(cost(&search, 1000, 0, 0, 1000, 0, 1), 2000000 + 5000000);
  assert_int_equal(cost(&search, 1000, 0, 0, 1000, 0, 0), 2000000);
  /* nothing used, nothing answered: free even without prices */
  assert_int_equal(cost(NULL, 0, 0, 0, 0, 0, 0), 0);
  assert_int_equal(cost(&mini, 0, 0, 0, 0, 0, 0), 0);
  /* counts that disagree never bill a token twice or negatively */
  assert_int_equal(cost(&mini, 100, 150, 0, 0, 0, 1), 7500);
}

static void test_cost_rounds_once_half_up(void **state) {
  llmr__model_info cheap = priced(0.0375, 0.0375, 0.0375, -1, -1, -1);
  llmr__model_info cheaper = priced(0.0374, 0.0374, -1, -1, -1, -1);
  (void)state;
  /* 1 token x 37,500 pico-$ = 37.5 nano-$ -> 38 (half up) */
  assert_int_equal(cost(&cheap, 1, 0, 0, 0, 0, 1), 38);
  /* 3 x 37.5 = 112.5 -> 113 */
  assert_int_equal(cost(&cheap, 3, 0, 0, 0, 0, 1), 113);
  /* 1 uncached + 1 cached = 75.0 exactly: rounded once per record, not
   * 38 + 38 */
  assert_int_equal(cost(&cheap, 2, 1, 0, 0, 0, 1), 75);
  assert_int_equal(cost(&cheap, 1, 0, 0, 1, 0, 1), 75);
  /* 37.4 -> 37 */
  assert_int_equal(cost(&cheaper, 1, 0, 0, 0, 0, 1), 37);
}

static void test_cost_unknown(void **state) {
  llmr__model_info noout = priced(1, -1, -1, -1, -1, -1);
  (void)state;
  assert_int_equal(cost(NULL, 10, 0, 0, 0, 0, 1), -1);
  assert_int_equal(cost(NULL, 0, 0, 0, 0, 0, 1), -1); /* a fee may apply */
  assert_int_equal(cost(&noout, 10, 0, 0, 1, 0, 1), -1);
  assert_int_equal(cost(&noout, 10, 0, 0, 0, 0, 1), 10000);
  /* an overflow is unknown, not a wrapped number */
  assert_int_equal(cost(&noout, INT64_MAX / 2, 0, 0, 0, 0, 1), -1);
  assert_int_equal(llmr__worst_case_nanousd(NULL, 1, 1), -1);
  assert_int_equal(llmr__worst_case_nanousd(&noout, 1, 1), -1);
}

static void test_worst_case_and_format(void **state) {
  llmr__model_info m = priced(3, 15, 0.3, 3.75, -1, 0.001);
  char s[40];
  (void)state;
  /* 100 x max(3, 3.75) + 50 x 15 per Mtok + $0.001 fee:
   * 375,000 + 750,000 + 1,000,000 nano */
  assert_int_equal(llmr__worst_case_nanousd(&m, 100, 50), 2125000);
  m = priced(0.0375, 0.0375, -1, -1, -1, -1);
  assert_int_equal(llmr__worst_case_nanousd(&m, 1, 0), 38);
  llmr__usd_format(1, s, sizeof(s));
  assert_string_equal(s, "0.000000001");
  llmr__usd_format(1234567890123LL, s, sizeof(s));
  assert_string_equal(s, "1234.567890123");
  llmr__usd_format(0, s, sizeof(s));
  assert_string_equal(s, "0.000000000");
}

static void test_catalog_integer_prices(void **state) {
  llmr__catalog c;
  const llmr__model_info *m;
  char err[256];
  (void)state;
  memset(&c, 0, sizeof(c));
  assert_int_equal(llmr__catalog_load_builtin(&c, err, sizeof(err)), LLMR_OK);
  m = llmr__catalog_find(&c, "openai/gpt-4o-mini");
  assert_non_null(m);
  assert_int_equal(m->upm_input, 150000);
  assert_int_equal(m->upm_output, 600000);
  assert_int_equal(m->upm_cache_read, 75000);
  assert_int_equal(m->upm_cache_write, -1);
  assert_ptr_equal(llmr__catalog_find_native(&c, "openai", "gpt-4o-mini"), m);
  assert_null(llmr__catalog_find_native(&c, "openai", "no-such-model"));
  /* the user's file replaces a price */
  {
    const char *user =
        "{\"models\":[{\"slug\":\"openai/gpt-4o-mini\",\"provider\":"
        "\"openai\",\"model\":\"gpt-4o-mini\",\"price\":{\"input\":0.2,"
        "\"output\":0.8,\"request\":0.001}}]}";
    assert_int_equal(llmr__catalog_merge_json(&c, user, strlen(user), "user",
                                              err, sizeof(err)),
                     LLMR_OK);
  }
  m = llmr__catalog_find(&c, "openai/gpt-4o-mini");
  assert_int_equal(m->upm_input, 200000);
  assert_int_equal(m->upm_cache_read, -1);
  assert_int_equal(m->fee_pico, 1000000000);
  llmr__catalog_free(&c);
}

/* ---- the chain ---------------------------------------------------------- */

static void test_append_verify(void **state) {
  char path[300], *info = NULL;
  llmr_ledger *l;
  cJSON *d, *i;
  int64_t n = -1;
  llmr__ledger_rec r = rec_of(1764000000000LL, "billing", "openai/gpt-4o", 42);
  (void)state;
  l = open_ok(new_path(path, sizeof(path)), "{\"fsync\":\"always\"}");
  r.app = "we \"quote\"\n and \\ escape \x01";
  assert_int_equal(llmr__ledger_append(l, &r, NULL, &n, NULL, 0), LLMR_OK);
  assert_int_equal(n, 0);
  r.app = NULL;
  r.cost_nanousd = -1;
  r.ttft_ms = 12.25;
  assert_int_equal(llmr__ledger_append(l, &r, NULL, &n, NULL, 0), LLMR_OK);
  assert_int_equal(n, 1);
  assert_int_equal(llmr_ledger_info(l, &info), LLMR_OK);
  i = cJSON_Parse(info);
  llmr_free(info);
  assert_int_equal((int)num(i, "records"), 2);
  assert_int_equal((int)num(i, "appended"), 2);
  llmr_ledger_close(l);
  d = verify_json(path, LLMR_OK);
  assert_int_equal((int)num(d, "records"), 2);
  assert_string_equal(cJSON_GetObjectItem(d, "head")->valuestring,
                      cJSON_GetObjectItem(i, "head")->valuestring);
  assert_int_equal((int)num(d, "problems_total"), 0);
  cJSON_Delete(d);
  cJSON_Delete(i);
  /* the file: 0600, lines parse back to what was written */
  {
    struct stat stb;
    size_t len;
    char *b = slurp(path, &len), *nl = strchr(b, '\n');
    llmr__recview rv;
    char *app;
    assert_int_equal(stat(path, &stb), 0);
    assert_int_equal(stb.st_mode & 0777, 0600);
    assert_int_equal(llmr__rec_parse(b, (size_t)(nl - b), &rv, NULL, 0), 0);
    app = llmr__span_dup(&rv.app);
    assert_string_equal(app, "we \"quote\"\n and \\ escape \x01");
    llmr__free(app);
    assert_int_equal(rv.cost, 42);
    assert_int_equal(rv.latency_us, 100500);
    assert_int_equal(rv.ttft_us, -1);
    assert_int_equal(llmr__rec_parse(nl + 1, strlen(nl + 1) - 1, &rv, NULL, 0),
                     0);
    assert_true(rv.app.null);
    assert_int_equal(rv.cost, -1);
    assert_int_equal(rv.ttft_us, 12250);
    assert_null(strstr(b, "prompt text"));
    free(b);
  }
}

/* Lines of a file, for editing. */
typedef struct lines {
  char *buf;
  char *v[256];
  int n;
} lines;

static void split(const char *path, lines *ls) {
  char *p;
  ls->buf = slurp(path, NULL);
  ls->n = 0;
  for (p = ls->buf; *p && ls->n < 256;) {
    char *nl = strchr(p, '\n');
    ls->v[ls->n++] = p;
    if (!nl)
      break;
    *nl = '\0';
    p = nl + 1;
  }
}

static void join(const char *path, const lines *ls) {
  int i;
  spit(path, "", 0, 0);
  for (i = 0; i < ls->n; i++) {
    spit(path, ls->v[i], strlen(ls->v[i]), 1);
    spit(path, "\n", 1, 1);
  }
}

static const cJSON *first_problem(const cJSON *d) {
  return cJSON_GetArrayItem(cJSON_GetObjectItem(d, "problems"), 0);
}

static void test_verify_finds_edits(void **state) {
  char path[300], copy[320];
  lines ls;
  cJSON *d;
  char *p;
  (void)state;
  make_ledger(path, sizeof(path), 10);
  snprintf(copy, sizeof(copy), "%s.edit", path);

  /* an edited number on line 5 */
  split(path, &ls);
  p = strstr(ls.v[4], "\"prompt\":10");
  assert_non_null(p);
  p[10] = '9';
  join(copy, &ls);
  free(ls.buf);
  d = verify_json(copy, LLMR_E_CORRUPT);
  assert_int_equal((int)num(d, "problems_total"), 1);
  assert_int_equal((int)num(first_problem(d), "line"), 5);
  assert_non_null(strstr(cJSON_GetObjectItem(first_problem(d), "problem")
                             ->valuestring,
                         "altered"));
  cJSON_Delete(d);

  /* a dropped line 7 */
  split(path, &ls);
  memmove(&ls.v[6], &ls.v[7], sizeof(char *) * 3);
  ls.n--;
  join(copy, &ls);
  free(ls.buf);
  d = verify_json(copy, LLMR_E_CORRUPT);
  assert_int_equal((int)num(d, "problems_total"), 1);
  assert_int_equal((int)num(first_problem(d), "line"), 7);
  assert_non_null(strstr(cJSON_GetObjectItem(first_problem(d), "problem")
                             ->valuestring,
                         "missing"));
  cJSON_Delete(d);

  /* lines 3 and 4 swapped */
  split(path, &ls);
  p = ls.v[2];
  ls.v[2] = ls.v[3];
  ls.v[3] = p;
  join(copy, &ls);
  free(ls.buf);
  d = verify_json(copy, LLMR_E_CORRUPT);
  assert_true(num(d, "problems_total") >= 1);
  assert_int_equal((int)num(first_problem(d), "line"), 3);
  cJSON_Delete(d);

  /* the hash field itself edited */
  split(path, &ls);
  p = strstr(ls.v[1], "\"hash\":\"");
  p[8] = p[8] == 'a' ? 'b' : 'a';
  join(copy, &ls);
  free(ls.buf);
  d = verify_json(copy, LLMR_E_CORRUPT);
  assert_int_equal((int)num(first_problem(d), "line"), 2);
  cJSON_Delete(d);

  /* the last line removed: the chain cannot see it, but the head moves
   * (and the record count), which verify reports */
  split(path, &ls);
  ls.n--;
  join(copy, &ls);
  free(ls.buf);
  d = verify_json(copy, LLMR_OK);
  assert_int_equal((int)num(d, "records"), 9);
  cJSON_Delete(d);
  d = verify_json(path, LLMR_OK);
  assert_int_equal((int)num(d, "records"), 10);
  cJSON_Delete(d);
}

/* ---- torn lines --------------------------------------------------------- */

static void test_torn_tail_recovery(void **state) {
  char path[300], *info = NULL, *res = NULL;
  char *before, *after;
  size_t blen, alen, torn_at;
  llmr_ledger *l;
  lines ls;
  cJSON *d, *i;
  (void)state;
  make_ledger(path, sizeof(path), 5);
  /* a crash in mid-write: the first 120 bytes of a record */
  split(path, &ls);
  {
    struct stat stb;
    assert_int_equal(stat(path, &stb), 0);
    torn_at = (size_t)stb.st_size;
  }
  spit(path, ls.v[1], 120, 1);
  free(ls.buf);
  before = slurp(path, &blen);

  l = open_ok(path, "{\"fsync\":\"never\"}");
  assert_int_equal(llmr_ledger_info(l, &info), LLMR_OK);
  i = cJSON_Parse(info);
  llmr_free(info);
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(i, "torn")), 1);
  assert_int_equal(
      (int)num(cJSON_GetArrayItem(cJSON_GetObjectItem(i, "torn"), 0), "offset"),
      (int)torn_at);
  assert_int_equal(
      (int)num(cJSON_GetArrayItem(cJSON_GetObjectItem(i, "torn"), 0), "bytes"),
      120);
  assert_int_equal((int)num(i, "records"), 5);
  cJSON_Delete(i);
  {
    llmr__ledger_rec r = rec_of(1764000100000LL, "app", "openai/gpt-4o", 7);
    append_ok(l, &r);
    append_ok(l, &r);
  }
  /* queries skip the torn line */
  assert_int_equal(llmr_ledger_query(l, NULL, &res), LLMR_OK);
  d = cJSON_Parse(res);
  llmr_free(res);
  assert_int_equal((int)num(cJSON_GetObjectItem(d, "total"), "records"), 7);
  assert_int_equal((int)num(d, "torn"), 1);
  cJSON_Delete(d);
  llmr_ledger_close(l);

  /* never truncated or rewritten: the old bytes are all still there */
  after = slurp(path, &alen);
  assert_true(alen > blen);
  assert_memory_equal(after, before, blen);
  assert_int_equal(after[blen], '\n'); /* the new record on a fresh line */
  assert_memory_equal(after + blen + 1, "{\"v\":1,\"n\":5,", 13);
  free(after);
  free(before);

  d = verify_json(path, LLMR_OK);
  assert_int_equal((int)num(d, "records"), 7);
  assert_int_equal((int)num(d, "torn_total"), 1);
  assert_int_equal(
      (int)num(cJSON_GetArrayItem(cJSON_GetObjectItem(d, "torn"), 0), "line"),
      6);
  cJSON_Delete(d);
}

/* Every prefix of a record is a torn line; a changed byte is not. */
static void test_torn_prefixes(void **state) {
  char path[300], why[160];
  char *b, *nl;
  size_t len, k;
  llmr__recview rv;
  llmr_ledger *l = open_ok(new_path(path, sizeof(path)), "{\"fsync\":\"never\"}");
  llmr__ledger_rec r = rec_of(1764000000000LL, "a\\b\"c\u00e9", "openai/gpt-4o", -1);
  (void)state;
  r.ttft_ms = 3.5;
  append_ok(l, &r);
  llmr_ledger_close(l);
  b = slurp(path, &len);
  nl = strchr(b, '\n');
  len = (size_t)(nl - b);
  assert_int_equal(llmr__line_classify(b, len, &rv, why, sizeof(why)),
                   LLMR__LINE_RECORD);
  for (k = 0; k < len; k++) {
    int kind = llmr__line_classify(b, k, &rv, why, sizeof(why));
    if (kind != LLMR__LINE_TORN)
      fprintf(stderr, "prefix %zu: %s\n", k, why);
    assert_int_equal(kind, LLMR__LINE_TORN);
  }
  /* not torn: wrong from the middle on */
  b[40] = '\x01';
  assert_int_equal(llmr__line_classify(b, 60, &rv, why, sizeof(why)),
                   LLMR__LINE_BAD);
  assert_int_equal(llmr__line_classify("{\"v\":1,\"n\":[3", 13, &rv, why,
                                       sizeof(why)),
                   LLMR__LINE_BAD);
  assert_int_equal(llmr__line_classify("{\"v\":1,\"n\":2}", 13, &rv, why,
                                       sizeof(why)),
                   LLMR__LINE_BAD);
  assert_non_null(strstr(why, "has no \"t\""));
  free(b);
}

static void test_torn_record_missing_newline(void **state) {
  char path[300];
  char *b;
  size_t len;
  llmr_ledger *l;
  cJSON *d;
  (void)state;
  /* a crash one byte short: a whole record without its '\n' counts */
  make_ledger(path, sizeof(path), 3);
  b = slurp(path, &len);
  spit(path, b, len - 1, 0);
  free(b);
  l = open_ok(path, "{\"fsync\":\"never\"}");
  {
    llmr__ledger_rec r = rec_of(1764000100000LL, NULL, "openai/gpt-4o", 7);
    append_ok(l, &r);
  }
  llmr_ledger_close(l);
  d = verify_json(path, LLMR_OK);
  assert_int_equal((int)num(d, "records"), 4);
  assert_int_equal((int)num(d, "torn_total"), 0);
  cJSON_Delete(d);
}

static void test_torn_repeatedly(void **state) {
  char path[300];
  lines ls;
  llmr_ledger *l;
  cJSON *d;
  int round;
  (void)state;
  make_ledger(path, sizeof(path), 2);
  split(path, &ls);
  for (round = 0; round < 3; round++) {
    llmr__ledger_rec r = rec_of(1764000100000LL + round, "a", "openai/gpt-4o", 1);
    /* two torn writes in a row, then one that works */
    spit(path, ls.v[0], 30, 1);
    l = open_ok(path, "{\"fsync\":\"never\"}");
    llmr_ledger_close(l);
    spit(path, "\n", 1, 1);
    spit(path, ls.v[1], 5, 1);
    l = open_ok(path, "{\"fsync\":\"never\"}");
    append_ok(l, &r);
    llmr_ledger_close(l);
  }
  free(ls.buf);
  d = verify_json(path, LLMR_OK);
  assert_int_equal((int)num(d, "records"), 5);
  assert_int_equal((int)num(d, "torn_total"), 6);
  cJSON_Delete(d);
}

/* ---- bad files ---------------------------------------------------------- */

/* open refuses `content` with a message containing `expect`, and nothing
 * touches the file: open, verify, append attempts leave every byte. */
static void refuse(const char *content, size_t len, const char *expect) {
  char path[300], err[LLMR_ERRBUF_SIZE] = "", *rep = NULL, *after;
  size_t alen;
  llmr_ledger *l = NULL;
  struct stat st1, st2;
  new_path(path, sizeof(path));
  spit(path, content, len, 0);
  assert_int_equal(stat(path, &st1), 0);
  assert_int_equal(llmr_ledger_open_ex(path, NULL, &l, err, sizeof(err)),
                   LLMR_E_CORRUPT);
  assert_null(l);
  if (!strstr(err, expect))
    fprintf(stderr, "message: %s (want %s)\n", err, expect);
  assert_non_null(strstr(err, expect));
  assert_non_null(strstr(err, path));
  assert_int_equal(llmr_ledger_open_ex(path, "{\"readonly\":true}", &l, err,
                                       sizeof(err)),
                   LLMR_E_CORRUPT);
  assert_int_equal(llmr_ledger_verify(path, &rep), LLMR_E_CORRUPT);
  {
    cJSON *d = cJSON_Parse(rep);
    const cJSON *p = cJSON_GetObjectItem(
        cJSON_GetArrayItem(cJSON_GetObjectItem(d, "problems"), 0), "problem");
    assert_true(cJSON_IsString(p));
    assert_non_null(strstr(p->valuestring, expect));
    cJSON_Delete(d);
  }
  llmr_free(rep);
  after = slurp(path, &alen);
  assert_int_equal(alen, len);
  assert_memory_equal(after, content, len);
  free(after);
  assert_int_equal(stat(path, &st2), 0);
  assert_int_equal(st1.st_size, st2.st_size);
  assert_int_equal(st1.st_mtim.tv_sec, st2.st_mtim.tv_sec);
  assert_int_equal(st1.st_mtim.tv_nsec, st2.st_mtim.tv_nsec);
}

static void test_bad_files(void **state) {
  char garbage[4096], path[300], *b, *p, *q;
  size_t i, len;
  unsigned x = 12345;
  (void)state;
  for (i = 0; i < sizeof(garbage); i++) {
    x = x * 1103515245u + 12345u;
    garbage[i] = (char)(x >> 16);
  }
  garbage[0] = '\x7f'; /* ELF-ish, whatever: not '{' */
  refuse(garbage, sizeof(garbage), "not a ledger record");
  refuse("\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16, "not a JSON object");
  refuse("\x1a\x00\x01\x02 data\n", 10, "binary data");
  refuse("{\"hello\":\"world\"}\n", 18, "record has no \"v\" field");
  refuse("[1,2,3]\n", 8, "not a JSON object");
  refuse("model,cost\nx,1\n", 15, "not a JSON object");
  refuse("{\"v\":1,\"n\":1,\"x\":{}}\n", 20, "nested object");
  /* a real record with its "t" removed */
  make_ledger(path, sizeof(path), 2);
  b = slurp(path, &len);
  p = strstr(b, "\"t\":");
  q = strchr(p, ',');
  memmove(p, q + 1, strlen(q + 1) + 1);
  refuse(b, strlen(b), "record has no \"t\" field");
  free(b);
  /* a good ledger with garbage appended after it */
  make_ledger(path, sizeof(path), 2);
  b = slurp(path, &len);
  b = realloc(b, len + 20);
  memcpy(b + len, "not json at all\n", 16);
  refuse(b, len + 16, "not a ledger record");
  free(b);
}

static void test_bad_line_in_the_middle(void **state) {
  char path[300], *res = NULL, *before, *after;
  size_t blen, alen;
  lines ls;
  llmr_ledger *l;
  cJSON *d;
  int i;
  (void)state;
  /* 64 lines hold more than open's 64 KiB tail window: open reads the
   * first line and the tail; queries and verify read everything */
  make_ledger(path, sizeof(path), 6);
  {
    llmr_ledger *w = open_ok(path, "{\"fsync\":\"never\"}");
    static char big[2048];
    llmr__ledger_rec r = rec_of(1764000200000LL, "app", "openai/gpt-4o", 1);
    memset(big, 'u', sizeof(big) - 1);
    r.user = big;
    for (i = 0; i < 40; i++)
      append_ok(w, &r);
    llmr_ledger_close(w);
  }
  split(path, &ls);
  assert_int_equal(ls.n, 46);
  ls.v[2] = "{\"who\":\"cares\"}";
  join(path, &ls);
  free(ls.buf);
  before = slurp(path, &blen);
  l = open_ok(path, "{\"readonly\":true}");
  assert_int_equal(llmr_ledger_query(l, NULL, &res), LLMR_E_CORRUPT);
  assert_non_null(strstr(res, "line 3"));
  assert_non_null(strstr(res, "record has no \\\"v\\\" field"));
  llmr_free(res);
  llmr_ledger_close(l);
  d = verify_json(path, LLMR_E_CORRUPT);
  assert_int_equal((int)num(first_problem(d), "line"), 3);
  cJSON_Delete(d);
  after = slurp(path, &alen);
  assert_int_equal(alen, blen);
  assert_memory_equal(after, before, blen);
  free(after);
  free(before);
}

static void test_open_errors(void **state) {
  char path[300], err[LLMR_ERRBUF_SIZE];
  llmr_ledger *l = NULL;
  (void)state;
  new_path(path, sizeof(path));
  assert_int_equal(
      llmr_ledger_open_ex(path, "{\"readonly\":true}", &l, err, sizeof(err)),
      LLMR_E_IO);
  assert_non_null(strstr(err, "No such file"));
  assert_int_equal(
      llmr_ledger_open_ex(path, "{\"create\":false}", &l, err, sizeof(err)),
      LLMR_E_IO);
  assert_int_equal(llmr_ledger_open_ex(dir, NULL, &l, err, sizeof(err)),
                   LLMR_E_IO);
  assert_int_equal(llmr_ledger_open_ex(path, "{\"fsync\":\"sometimes\"}", &l,
                                       err, sizeof(err)),
                   LLMR_E_INVAL);
  assert_non_null(strstr(err, "options.fsync"));
  assert_int_equal(llmr_ledger_open_ex(path, "{\"budget\":1}", &l, err,
                                       sizeof(err)),
                   LLMR_E_INVAL);
  assert_non_null(strstr(err, "options.budget: unknown"));
  assert_int_equal(
      llmr_ledger_open_ex(path, "{\"budgets\":[{\"window\":\"week\",\"usd\":1}]}",
                          &l, err, sizeof(err)),
      LLMR_E_INVAL);
  assert_non_null(strstr(err, "budgets[0].window"));
  assert_int_equal(llmr_ledger_open_ex(path, "not json", &l, err, sizeof(err)),
                   LLMR_E_INVAL);
  assert_int_equal(llmr_ledger_open(NULL, NULL, &l), LLMR_E_INVAL);
  assert_int_equal(llmr_ledger_open(path, NULL, NULL), LLMR_E_INVAL);
  assert_null(l);
  /* an empty file is an empty ledger; read-only refuses appends */
  spit(path, "", 0, 0);
  l = open_ok(path, "{\"readonly\":true,\"fsync\":50}");
  {
    llmr__ledger_rec r = rec_of(1, NULL, "openai/gpt-4o", 1);
    assert_int_equal(llmr__ledger_append(l, &r, NULL, NULL, err, sizeof(err)),
                     LLMR_E_INVAL);
  }
  llmr_ledger_close(l);
  llmr_ledger_close(NULL);
  assert_int_equal(llmr_ledger_verify(dir, NULL), LLMR_E_IO);
}

/* ---- budgets ------------------------------------------------------------ */

static void test_budget_reservations(void **state) {
  char path[300], why[LLMR_ERRBUF_SIZE];
  llmr_ledger *l, *l2;
  llmr__reservation a, b, c;
  int64_t now = llmr__wall_ms();
  const int64_t usd = 1000000000;
  llmr__ledger_rec r;
  (void)state;
  l = open_ok(new_path(path, sizeof(path)),
              "{\"fsync\":\"never\",\"budgets\":[{\"window\":\"day\",\"usd\":1}]}");
  /* 0.6 fits, another 0.5 does not while the first is in flight */
  assert_int_equal(llmr__ledger_reserve(l, NULL, usd * 6 / 10, &a, why,
                                        sizeof(why)),
                   LLMR_OK);
  assert_int_equal(llmr__ledger_reserve(l, "x", usd / 2, &b, why, sizeof(why)),
                   LLMR_E_BUDGET);
  assert_non_null(strstr(why, "all calls day limit $1.000000000"));
  assert_non_null(strstr(why, "reserved by calls in flight $0.600000000"));
  assert_int_equal(b.nanousd, 0);
  /* settled at its real cost, 0.7 */
  r = rec_of(now, NULL, "openai/gpt-4o", usd * 7 / 10);
  assert_int_equal(llmr__ledger_append(l, &r, &a, NULL, NULL, 0), LLMR_OK);
  assert_int_equal(a.nanousd, 0);
  assert_int_equal(llmr__ledger_reserve(l, NULL, usd * 4 / 10, &b, why,
                                        sizeof(why)),
                   LLMR_E_BUDGET);
  assert_non_null(strstr(why, "spent $0.700000000"));
  /* exactly up to the limit fits */
  assert_int_equal(llmr__ledger_reserve(l, NULL, usd * 3 / 10, &b, why,
                                        sizeof(why)),
                   LLMR_OK);
  llmr__ledger_release(l, &b);
  /* unknown prices are refused while a budget applies */
  assert_int_equal(llmr__ledger_reserve(l, NULL, -1, &c, why, sizeof(why)),
                   LLMR_E_BUDGET);
  assert_non_null(strstr(why, "not in the catalog"));

  /* an app budget counts that app only; records from 40 days ago count
   * in "all" but not in "day" or "month" */
  assert_int_equal(llmr_ledger_set_budget(l, NULL, LLMR_WINDOW_DAY, -1),
                   LLMR_OK);
  assert_int_equal(llmr_ledger_set_budget(l, "billing", LLMR_WINDOW_MONTH, 0.5),
                   LLMR_OK);
  r = rec_of(now - 40LL * 86400000, "billing", "openai/gpt-4o", usd);
  assert_int_equal(llmr__ledger_append(l, &r, NULL, NULL, NULL, 0), LLMR_OK);
  r = rec_of(now, "search", "openai/gpt-4o", usd);
  assert_int_equal(llmr__ledger_append(l, &r, NULL, NULL, NULL, 0), LLMR_OK);
  assert_int_equal(llmr__ledger_reserve(l, "billing", usd / 2, &a, why,
                                        sizeof(why)),
                   LLMR_OK);
  llmr__ledger_release(l, &a);
  assert_int_equal(llmr__ledger_reserve(l, "search", usd * 100, &a, why,
                                        sizeof(why)),
                   LLMR_OK); /* no budget applies to it */
  assert_int_equal(a.nanousd, 0);
  /* all time: $1 spent 40 days ago */
  assert_int_equal(llmr_ledger_set_budget(l, "billing", LLMR_WINDOW_ALL, 1.4),
                   LLMR_OK);
  assert_int_equal(llmr__ledger_reserve(l, "billing", usd / 2, &a, why,
                                        sizeof(why)),
                   LLMR_E_BUDGET);
  assert_non_null(strstr(why, "app 'billing' all limit $1.400000000"));
  assert_non_null(strstr(why, "spent $1.000000000"));
  assert_int_equal(llmr__ledger_reserve(l, "billing", usd * 4 / 10, &a, why,
                                        sizeof(why)),
                   LLMR_OK);
  llmr__ledger_release(l, &a);

  /* another open file description (as another process has) sees what
   * this one spends, and the budgets of a fresh open count the past */
  l2 = open_ok(path, "{\"fsync\":\"never\",\"budgets\":[{\"app\":\"billing\","
                     "\"window\":\"all\",\"usd\":1.5}]}");
  r = rec_of(now, "billing", "openai/gpt-4o", usd / 4);
  assert_int_equal(llmr__ledger_append(l2, &r, NULL, NULL, NULL, 0), LLMR_OK);
  /* l (all: $1.4) sees $1.25 spent; l2 (all: $1.5) too */
  assert_int_equal(llmr__ledger_reserve(l, "billing", usd * 15 / 100, &a, why,
                                        sizeof(why)),
                   LLMR_OK);
  llmr__ledger_release(l, &a);
  assert_int_equal(llmr__ledger_reserve(l, "billing", usd * 15 / 100 + 1, &a,
                                        why, sizeof(why)),
                   LLMR_E_BUDGET);
  assert_int_equal(llmr__ledger_reserve(l2, "billing", usd / 4, &a, why,
                                        sizeof(why)),
                   LLMR_OK);
  llmr__ledger_release(l2, &a);
  assert_int_equal(llmr__ledger_reserve(l2, "billing", usd / 4 + 1, &a, why,
                                        sizeof(why)),
                   LLMR_E_BUDGET);
  llmr_ledger_close(l2);
  {
    char *info;
    cJSON *d;
    assert_int_equal(llmr_ledger_info(l, &info), LLMR_OK);
    d = cJSON_Parse(info);
    llmr_free(info);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(d, "budgets")), 2);
    cJSON_Delete(d);
  }
  assert_int_equal(llmr_ledger_set_budget(l, NULL, (llmr_window)7, 1),
                   LLMR_E_INVAL);
  assert_int_equal(llmr_ledger_set_budget(NULL, NULL, LLMR_WINDOW_DAY, 1),
                   LLMR_E_INVAL);
  llmr_ledger_close(l);

  l = open_ok(path, "{\"allow_unpriced\":true,\"budgets\":[{\"window\":"
                    "\"all\",\"usd\":100}]}");
  assert_int_equal(llmr__ledger_reserve(l, NULL, -1, &c, why, sizeof(why)),
                   LLMR_OK);
  llmr_ledger_close(l);
}

/* A budget cannot be kept when the ledger cannot be read: refuse. */
static void test_budget_on_damaged_file(void **state) {
  char path[300], why[LLMR_ERRBUF_SIZE];
  llmr_ledger *l;
  llmr__reservation a;
  llmr__ledger_rec r = rec_of(1764000000000LL, NULL, "openai/gpt-4o", 5);
  (void)state;
  l = open_ok(new_path(path, sizeof(path)),
              "{\"fsync\":\"never\",\"budgets\":[{\"window\":\"all\","
              "\"usd\":10}]}");
  append_ok(l, &r);
  assert_int_equal(llmr__ledger_reserve(l, NULL, 1, &a, why, sizeof(why)),
                   LLMR_OK);
  llmr__ledger_release(l, &a);
  spit(path, "garbage\n", 8, 1);
  assert_int_equal(llmr__ledger_reserve(l, NULL, 1, &a, why, sizeof(why)),
                   LLMR_E_BUDGET);
  assert_non_null(strstr(why, "cannot be read"));
  assert_non_null(strstr(why, "not a ledger record"));
  assert_int_equal(llmr__ledger_append(l, &r, NULL, NULL, why, sizeof(why)),
                   LLMR_E_CORRUPT);
  llmr_ledger_close(l);
}

/* ---- queries ------------------------------------------------------------ */

#define NGEN 3000
typedef struct gen {
  int64_t t, cost;
  const char *app, *model, *provider;
  int ok, first;
  int64_t prompt;
} gen;
static gen G[NGEN];

static const char *const gen_apps[] = {"billing", "search", "chat \"beta\"",
                                       NULL};
static const char *const gen_models[] = {"openai/gpt-4o", "openai/gpt-4o-mini",
                                         "anthropic/claude-3.5-haiku",
                                         "google/gemini-2.5-flash"};

static const char *make_generated(char *path, size_t n) {
  llmr_ledger *l = open_ok(new_path(path, n), "{\"fsync\":\"never\"}");
  unsigned x = 777;
  int i;
  /* 2025-12-20 .. about 90 days on, across two month ends */
  const int64_t t0 = 1766188800000LL;
  for (i = 0; i < NGEN; i++) {
    llmr__ledger_rec r;
    gen *g = &G[i];
    x = x * 1664525u + 1013904223u;
    g->t = t0 + (int64_t)(x % 90000u) * 86400;
    if (i % 500 == 0)
      g->t = t0 + 86400000LL * 12; /* exactly on a day boundary */
    g->app = gen_apps[(x >> 8) % 4];
    g->model = gen_models[(x >> 12) % 4];
    g->provider = strncmp(g->model, "openai", 6) == 0 ? "openai"
                  : g->model[0] == 'a'                ? "anthropic"
                                                      : "google";
    g->cost = (x >> 4) % 7 == 0 ? -1 : (int64_t)((x >> 3) % 1000000);
    g->ok = (x >> 20) % 5 != 0;
    g->first = (x >> 22) % 3 != 0;
    g->prompt = (int64_t)((x >> 5) % 5000);
    r = rec_of(g->t, g->app, g->model, g->cost);
    r.provider = g->provider;
    r.status = g->ok ? LLMR_OK : LLMR_E_OVERLOADED;
    r.attempt = g->first ? 1 : 2;
    r.usage.prompt = g->prompt;
    append_ok(l, &r);
  }
  llmr_ledger_close(l);
  return path;
}

static cJSON *query(llmr_ledger *l, const char *q) {
  char *res = NULL;
  cJSON *d;
  llmr_status st = llmr_ledger_query(l, q, &res);
  if (st != LLMR_OK)
    fprintf(stderr, "query %s: %s\n", q, res ? res : "");
  assert_int_equal(st, LLMR_OK);
  d = cJSON_Parse(res);
  llmr_free(res);
  assert_non_null(d);
  return d;
}

typedef struct expect {
  int64_t records, calls, errors, cost, unpriced, prompt;
} expect;

static void add_exp(expect *e, const gen *g) {
  e->records++;
  e->calls += g->first;
  e->errors += !g->ok;
  if (g->cost < 0)
    e->unpriced++;
  else
    e->cost += g->cost;
  e->prompt += g->prompt;
}

static void check_agg(const cJSON *a, const expect *e) {
  char usd[40];
  assert_int_equal((int64_t)num(a, "records"), e->records);
  assert_int_equal((int64_t)num(a, "calls"), e->calls);
  assert_int_equal((int64_t)num(a, "errors"), e->errors);
  assert_int_equal((int64_t)num(a, "unpriced"), e->unpriced);
  assert_int_equal((int64_t)num(a, "cost_nanousd"), e->cost);
  assert_int_equal((int64_t)num(a, "prompt"), e->prompt);
  llmr__usd_format(e->cost, usd, sizeof(usd));
  assert_string_equal(cJSON_GetObjectItem(a, "cost_usd")->valuestring, usd);
}

static const char *key_of(const gen *g, const char *by, char label[32]) {
  if (strcmp(by, "model") == 0)
    return g->model;
  if (strcmp(by, "app") == 0)
    return g->app;
  if (strcmp(by, "provider") == 0)
    return g->provider;
  llmr__bucket_of(strcmp(by, "hour") == 0  ? 0
                  : strcmp(by, "day") == 0 ? 1
                                           : 2,
                  g->t, label);
  return label;
}

static void check_query(llmr_ledger *l, const char *by, int64_t since,
                        int64_t until) {
  char q[256], label[32];
  cJSON *d;
  const cJSON *grp;
  expect total;
  int i, n_groups = 0;
  snprintf(q, sizeof(q), "{\"by\":\"%s\",\"since\":%lld,\"until\":%lld}", by,
           (long long)since, (long long)until);
  d = query(l, q);
  memset(&total, 0, sizeof(total));
  for (i = 0; i < NGEN; i++)
    if (G[i].t >= since && G[i].t < until)
      add_exp(&total, &G[i]);
  check_agg(cJSON_GetObjectItem(d, "total"), &total);
  cJSON_ArrayForEach(grp, cJSON_GetObjectItem(d, "groups")) {
    const cJSON *k = cJSON_GetObjectItem(grp, "key");
    expect e;
    memset(&e, 0, sizeof(e));
    for (i = 0; i < NGEN; i++) {
      const char *gk;
      if (G[i].t < since || G[i].t >= until)
        continue;
      gk = key_of(&G[i], by, label);
      if (cJSON_IsNull(k) ? gk == NULL : gk && strcmp(gk, k->valuestring) == 0)
        add_exp(&e, &G[i]);
    }
    assert_true(e.records > 0);
    check_agg(grp, &e);
    n_groups++;
  }
  /* every record is in exactly one group */
  {
    int64_t sum = 0;
    cJSON_ArrayForEach(grp, cJSON_GetObjectItem(d, "groups")) sum +=
        (int64_t)num(grp, "records");
    assert_int_equal(sum, total.records);
  }
  assert_true(n_groups > 0 || total.records == 0);
  cJSON_Delete(d);
}

static void test_query_generated(void **state) {
  char path[300];
  llmr_ledger *l;
  const int64_t t0 = 1766188800000LL, all_until = t0 + 100LL * 86400000;
  cJSON *d;
  const cJSON *s;
  int64_t cost_sum = 0, rec_sum = 0;
  (void)state;
  make_generated(path, sizeof(path));
  l = open_ok(path, "{\"readonly\":true}");
  check_query(l, "model", 0, all_until);
  check_query(l, "app", 0, all_until);
  check_query(l, "provider", t0 + 10LL * 86400000, t0 + 40LL * 86400000);
  /* since inclusive, until exclusive, on the exact boundary records */
  check_query(l, "day", t0 + 12LL * 86400000, t0 + 20LL * 86400000);
  check_query(l, "day", t0, t0 + 12LL * 86400000);
  check_query(l, "month", 0, all_until);
  check_query(l, "hour", t0 + 86400000LL * 12, t0 + 86400000LL * 13);

  /* ISO times and the filters */
  d = query(l, "{\"by\":\"none\",\"since\":\"2026-01-01\",\"until\":"
               "\"2026-02-01T00:00:00Z\",\"app\":\"billing\"}");
  {
    expect e;
    int i;
    memset(&e, 0, sizeof(e));
    for (i = 0; i < NGEN; i++)
      if (G[i].t >= 1767225600000LL && G[i].t < 1769904000000LL && G[i].app &&
          strcmp(G[i].app, "billing") == 0)
        add_exp(&e, &G[i]);
    check_agg(cJSON_GetObjectItem(d, "total"), &e);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(d, "groups")), 0);
  }
  cJSON_Delete(d);
  d = query(l, "{\"model\":\"openai/gpt-4o\",\"app\":\"chat \\\"beta\\\"\"}");
  {
    expect e;
    int i;
    memset(&e, 0, sizeof(e));
    for (i = 0; i < NGEN; i++)
      if (strcmp(G[i].model, "openai/gpt-4o") == 0 && G[i].app &&
          strcmp(G[i].app, "chat \"beta\"") == 0)
        add_exp(&e, &G[i]);
    check_agg(cJSON_GetObjectItem(d, "total"), &e);
  }
  cJSON_Delete(d);

  /* a series: model x day, summing to the totals, sorted by time */
  d = query(l, "{\"by\":\"model\",\"bucket\":\"day\"}");
  {
    int64_t prev = INT64_MIN;
    cJSON_ArrayForEach(s, cJSON_GetObjectItem(d, "series")) {
      int64_t t = (int64_t)num(s, "t");
      char label[32];
      assert_true(t >= prev);
      prev = t;
      llmr__bucket_of(1, t, label);
      assert_string_equal(cJSON_GetObjectItem(s, "bucket")->valuestring,
                          label);
      cost_sum += (int64_t)num(s, "cost_nanousd");
      rec_sum += (int64_t)num(s, "records");
    }
    assert_int_equal(rec_sum, NGEN);
    assert_int_equal(cost_sum,
                     (int64_t)num(cJSON_GetObjectItem(d, "total"),
                                  "cost_nanousd"));
  }
  cJSON_Delete(d);
  /* month labels */
  d = query(l, "{\"by\":\"month\"}");
  assert_string_equal(
      cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(d, "groups"), 0),
                          "key")
          ->valuestring,
      "2025-12");
  assert_int_equal(
      (int64_t)num(cJSON_GetArrayItem(cJSON_GetObjectItem(d, "groups"), 1), "t"),
      1767225600000LL); /* 2026-01-01 */
  cJSON_Delete(d);

  /* bad queries say what is wrong */
  {
    char *res = NULL;
    assert_int_equal(llmr_ledger_query(l, "{\"by\":\"colour\"}", &res),
                     LLMR_E_INVAL);
    assert_non_null(strstr(res, "query.by"));
    llmr_free(res);
    assert_int_equal(llmr_ledger_query(l, "{\"since\":\"yesterday\"}", &res),
                     LLMR_E_INVAL);
    assert_non_null(strstr(res, "since"));
    llmr_free(res);
    assert_int_equal(llmr_ledger_query(l, "{\"sort\":1}", &res), LLMR_E_INVAL);
    llmr_free(res);
    assert_int_equal(llmr_ledger_query(l, "[]", &res), LLMR_E_INVAL);
    llmr_free(res);
    assert_int_equal(llmr_ledger_query(NULL, NULL, &res), LLMR_E_INVAL);
  }
  llmr_ledger_close(l);
}

static void test_parse_time(void **state) {
  int64_t t;
  const int64_t now = 1764000000000LL;
  (void)state;
  assert_int_equal(llmr__parse_time("2026-11-24", now, &t), 0);
  assert_int_equal(t, 1795478400000LL);
  assert_int_equal(llmr__parse_time("2026-11-24T10:30:00Z", now, &t), 0);
  assert_int_equal(t, 1795478400000LL + 37800000LL);
  assert_int_equal(llmr__parse_time("2026-11-24T10:30", now, &t), 0);
  assert_int_equal(t, 1795478400000LL + 37800000LL);
  assert_int_equal(llmr__parse_time("2026-11-24T10:30:00.25Z", now, &t), 0);
  assert_int_equal(t, 1795478400000LL + 37800250LL);
  assert_int_equal(llmr__parse_time("-7d", now, &t), 0);
  assert_int_equal(t, now - 7 * 86400000LL);
  assert_int_equal(llmr__parse_time("-12h", now, &t), 0);
  assert_int_equal(t, now - 12 * 3600000LL);
  assert_int_equal(llmr__parse_time("now", now, &t), 0);
  assert_int_equal(t, now);
  assert_int_equal(llmr__parse_time("1764000000123", now, &t), 0);
  assert_int_equal(t, 1764000000123LL);
  assert_int_equal(llmr__parse_time("yesterday", now, &t), -1);
  assert_int_equal(llmr__parse_time("2026-13-01", now, &t), -1);
  assert_int_equal(llmr__parse_time("2026-11-24X", now, &t), -1);
  assert_int_equal(llmr__parse_time("-7w", now, &t), -1);
  assert_int_equal(llmr__parse_time("", now, &t), -1);
}

static void test_random_ids(void **state) {
  char a[33], b[33];
  size_t i;
  (void)state;
  llmr__random_id(a);
  llmr__random_id(b);
  assert_int_equal(strlen(a), 32);
  assert_string_not_equal(a, b);
  for (i = 0; i < 32; i++)
    assert_non_null(strchr("0123456789abcdef", a[i]));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_price_units),
      cmocka_unit_test(test_cost_by_hand),
      cmocka_unit_test(test_cost_rounds_once_half_up),
      cmocka_unit_test(test_cost_unknown),
      cmocka_unit_test(test_worst_case_and_format),
      cmocka_unit_test(test_catalog_integer_prices),
      cmocka_unit_test(test_append_verify),
      cmocka_unit_test(test_verify_finds_edits),
      cmocka_unit_test(test_torn_tail_recovery),
      cmocka_unit_test(test_torn_prefixes),
      cmocka_unit_test(test_torn_record_missing_newline),
      cmocka_unit_test(test_torn_repeatedly),
      cmocka_unit_test(test_bad_files),
      cmocka_unit_test(test_bad_line_in_the_middle),
      cmocka_unit_test(test_open_errors),
      cmocka_unit_test(test_budget_reservations),
      cmocka_unit_test(test_budget_on_damaged_file),
      cmocka_unit_test(test_query_generated),
      cmocka_unit_test(test_parse_time),
      cmocka_unit_test(test_random_ids),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
