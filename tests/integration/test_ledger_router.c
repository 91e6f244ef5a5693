/*
 * The ledger through the router, against the provider emulator: one record
 * per attempt that reached a provider (fallbacks, failures, a cancelled
 * and a broken stream), the call's cost and id on the response, budget
 * refusals with no network traffic (the emulator counts requests), the
 * move to a cheaper slug, the router config key, a damaged file never
 * rewritten.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "emu.h"
#include <llmroute.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static emu E;
static char dir[256];
static int file_no;

static int group_setup(void **state) {
  (void)state;
  snprintf(dir, sizeof(dir), "%s/llmr-ledger-it-XXXXXX",
           getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  if (!mkdtemp(dir))
    return -1;
  return emu_start(&E, NULL);
}

static int group_teardown(void **state) {
  char cmd[300];
  (void)state;
  emu_stop(&E);
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  return system(cmd) == 0 ? 0 : -1;
}

static int reset(void **state) {
  (void)state;
  return emu_reset(&E);
}

static const char *new_path(char *buf, size_t n) {
  snprintf(buf, n, "%s/l%d.jsonl", dir, ++file_no);
  return buf;
}

static llmr_router *router_with(const char *extra) {
  char *conf = emu_config(&E, extra);
  char err[LLMR_ERRBUF_SIZE] = "";
  llmr_router *r = NULL;
  llmr_status st = llmr_router_new_ex(conf, &r, err, sizeof(err));
  if (st != LLMR_OK)
    fprintf(stderr, "router: %s\n", err);
  assert_int_equal(st, LLMR_OK);
  free(conf);
  return r;
}

static llmr_ledger *ledger(const char *path, const char *opts) {
  llmr_ledger *l = NULL;
  char err[LLMR_ERRBUF_SIZE] = "";
  llmr_status st = llmr_ledger_open_ex(path, opts, &l, err, sizeof(err));
  if (st != LLMR_OK)
    fprintf(stderr, "ledger: %s\n", err);
  assert_int_equal(st, LLMR_OK);
  return l;
}

static llmr_request *hello(const char *app, int64_t max_tokens) {
  llmr_request *req;
  assert_int_equal(llmr_request_new(&req), LLMR_OK);
  assert_int_equal(llmr_request_add_message(req, LLMR_ROLE_USER,
                                            "hello secret prompt text"),
                   LLMR_OK);
  if (app)
    assert_int_equal(llmr_request_set_app(req, app), LLMR_OK);
  if (max_tokens)
    assert_int_equal(llmr_request_set_max_tokens(req, max_tokens), LLMR_OK);
  return req;
}

/* The file's records, parsed; torn lines are skipped. */
static cJSON *records(const char *path) {
  FILE *f = fopen(path, "rb");
  cJSON *arr = cJSON_CreateArray();
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  if (!f)
    return arr;
  while ((n = getline(&line, &cap, f)) > 0) {
    cJSON *j;
    if (line[n - 1] != '\n')
      break;
    if ((j = cJSON_Parse(line)))
      cJSON_AddItemToArray(arr, j);
  }
  free(line);
  fclose(f);
  return arr;
}

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  char *b;
  long n;
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  n = ftell(f);
  fseek(f, 0, SEEK_SET);
  b = calloc(1, (size_t)n + 1);
  assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  return b;
}

static const char *s_of(const cJSON *o, const char *k) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double n_of(const cJSON *o, const char *k) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  assert_true(cJSON_IsNumber(v));
  return v->valuedouble;
}

static int is_null(const cJSON *o, const char *k) {
  return cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(o, k));
}

static int is_true(const cJSON *o, const char *k) {
  return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, k));
}

static const char *const usage_1000_500_400 =
    "\"usage\":{\"prompt_tokens\":1000,\"completion_tokens\":500,"
    "\"total_tokens\":1500,\"prompt_tokens_details\":{\"cached_tokens\":400}}";

/* ---- one record per attempt --------------------------------------------- */

static void test_records_per_attempt(void **state) {
  const char *slugs[] = {"openai/gpt-down", "openai/gpt-4o-mini"};
  char path[300], script[512], *json, *file;
  llmr_router *r = router_with("");
  llmr_ledger *l = ledger(new_path(path, sizeof(path)), "{\"fsync\":\"never\"}");
  llmr_request *req = hello("billing", 0);
  llmr_response *resp = NULL;
  cJSON *recs, *a, *b, *doc;
  (void)state;
  assert_int_equal(emu_script(&E, "{\"model\":\"gpt-down\",\"default\":{"
                                  "\"kind\":\"error\",\"preset\":\"overloaded\"}}"),
                   0);
  snprintf(script, sizeof(script),
           "{\"model\":\"gpt-4o-mini\",\"default\":{\"kind\":\"ok\",%s}}",
           usage_1000_500_400);
  assert_int_equal(emu_script(&E, script), 0);
  assert_int_equal(llmr_request_set_user(req, "u-7"), LLMR_OK);
  assert_int_equal(llmr_router_set_ledger(r, l), LLMR_OK);
  assert_int_equal(llmr_complete(r, slugs, 2, req, &resp), LLMR_OK);

  /* by hand: 600 uncached x $0.15 + 400 cached x $0.075 + 500 x $0.60 per
   * Mtok = 90,000 + 30,000 + 300,000 nano-dollars */
  assert_int_equal(llmr_response_cost_nanousd(resp), 420000);
  assert_int_equal(llmr_response_attempt_cost_nanousd(resp, 0), 0);
  assert_int_equal(llmr_response_attempt_cost_nanousd(resp, 1), 420000);
  assert_int_equal(llmr_response_attempt_cost_nanousd(resp, 2), -1);
  assert_int_equal(strlen(llmr_response_request_id(resp)), 32);

  recs = records(path);
  assert_int_equal(cJSON_GetArraySize(recs), 2);
  a = cJSON_GetArrayItem(recs, 0);
  b = cJSON_GetArrayItem(recs, 1);
  assert_string_equal(s_of(a, "id"), llmr_response_request_id(resp));
  assert_string_equal(s_of(b, "id"), llmr_response_request_id(resp));
  assert_int_equal((int)n_of(a, "n"), 0);
  assert_int_equal((int)n_of(b, "n"), 1);
  assert_int_equal((int)n_of(a, "attempt"), 1);
  assert_int_equal((int)n_of(b, "attempt"), 2);
  assert_string_equal(s_of(a, "model"), "openai/gpt-down");
  assert_string_equal(s_of(a, "status"), "LLMR_E_OVERLOADED");
  assert_int_equal((int)n_of(a, "http"), 503);
  assert_int_equal((int)n_of(a, "prompt"), 0);
  assert_int_equal((int)n_of(a, "cost_nanousd"), 0);
  assert_string_equal(s_of(b, "model"), "openai/gpt-4o-mini");
  assert_string_equal(s_of(b, "provider"), "openai");
  assert_string_equal(s_of(b, "native"), "gpt-4o-mini");
  assert_string_equal(s_of(b, "status"), "LLMR_OK");
  assert_int_equal((int)n_of(b, "http"), 200);
  assert_int_equal((int)n_of(b, "prompt"), 1000);
  assert_int_equal((int)n_of(b, "completion"), 500);
  assert_int_equal((int)n_of(b, "cached"), 400);
  assert_int_equal((int)n_of(b, "cost_nanousd"), 420000);
  assert_false(is_true(b, "estimated"));
  assert_false(is_true(b, "stream"));
  assert_true(is_null(b, "ttft_ms"));
  assert_true(n_of(b, "latency_ms") >= 0);
  assert_true(n_of(b, "t") > 1.6e12);
  assert_string_equal(s_of(b, "app"), "billing");
  assert_string_equal(s_of(b, "user"), "u-7");
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(b, "asked")), 2);
  assert_string_equal(
      cJSON_GetArrayItem(cJSON_GetObjectItem(b, "asked"), 0)->valuestring,
      "openai/gpt-down");
  cJSON_Delete(recs);

  /* never prompt text, never a key */
  file = slurp(path);
  assert_null(strstr(file, "secret prompt"));
  assert_null(strstr(file, "sk-test"));
  free(file);

  /* the JSON form carries id and cost too */
  json = llmr_response_to_json(resp);
  doc = cJSON_Parse(json);
  llmr_free(json);
  assert_string_equal(
      s_of(cJSON_GetObjectItem(doc, "llmroute"), "request_id"),
      llmr_response_request_id(resp));
  assert_int_equal((int)n_of(cJSON_GetObjectItem(doc, "llmroute"),
                             "cost_nanousd"),
                   420000);
  cJSON_Delete(doc);
  assert_int_equal(llmr_ledger_verify(path, NULL), LLMR_OK);

  llmr_response_free(resp);
  llmr_request_free(req);
  llmr_router_free(r);
  llmr_ledger_close(l);
}

static void test_cost_without_ledger_and_unpriced(void **state) {
  const char *mini[] = {"openai/gpt-4o-mini"};
  const char *unknown[] = {"openai/gpt-unknown-9"};
  char script[512];
  llmr_router *r = router_with("");
  llmr_request *req = hello(NULL, 0);
  llmr_response *resp = NULL, *resp2 = NULL;
  (void)state;
  snprintf(script, sizeof(script),
           "{\"model\":\"*\",\"default\":{\"kind\":\"ok\",%s}}",
           usage_1000_500_400);
  assert_int_equal(emu_script(&E, script), 0);
  assert_int_equal(llmr_complete(r, mini, 1, req, &resp), LLMR_OK);
  assert_int_equal(llmr_response_cost_nanousd(resp), 420000);
  /* a model the catalog does not price: unknown, never a silent zero */
  assert_int_equal(llmr_complete(r, unknown, 1, req, &resp2), LLMR_OK);
  assert_int_equal(llmr_response_cost_nanousd(resp2), -1);
  assert_string_not_equal(llmr_response_request_id(resp),
                          llmr_response_request_id(resp2));
  llmr_response_free(resp);
  llmr_response_free(resp2);
  llmr_request_free(req);
  llmr_router_free(r);
}

/* ---- streams that end early --------------------------------------------- */

static int cancel_after_two(const llmr_event *ev, void *user) {
  int *n = user;
  return ev->type == LLMR_EVENT_TEXT && ++*n >= 2;
}

static void test_stream_cancelled_and_broken(void **state) {
  const char *slow[] = {"openai/gpt-4o"};
  const char *drop[] = {"openai/gpt-4.1"};
  char path[300];
  llmr_router *r = router_with("");
  llmr_ledger *l = ledger(new_path(path, sizeof(path)), "{\"fsync\":\"never\"}");
  llmr_request *req = hello("streams", 0);
  llmr_response *resp = NULL;
  cJSON *recs, *a;
  int n = 0;
  (void)state;
  assert_int_equal(
      emu_script(&E, "{\"model\":\"gpt-4o\",\"default\":{\"kind\":\"ok\","
                     "\"text\":\"one two three four five six seven eight\","
                     "\"piece_chars\":4,\"event_delay_ms\":10}}"),
      0);
  assert_int_equal(
      emu_script(&E, "{\"model\":\"gpt-4.1\",\"default\":{\"kind\":\"ok\","
                     "\"text\":\"abcdefghijklmnop\",\"drop_after_events\":3}}"),
      0);
  llmr_router_set_ledger(r, l);
  assert_int_equal(llmr_stream(r, slow, 1, req, cancel_after_two, &n, &resp),
                   LLMR_E_ABORTED);
  assert_true(llmr_response_cost_nanousd(resp) > 0);
  llmr_response_free(resp);
  assert_int_equal(llmr_stream(r, drop, 1, req, NULL, NULL, &resp),
                   LLMR_E_TRANSPORT);
  llmr_response_free(resp);

  recs = records(path);
  assert_int_equal(cJSON_GetArraySize(recs), 2);
  a = cJSON_GetArrayItem(recs, 0);
  assert_string_equal(s_of(a, "status"), "LLMR_E_ABORTED");
  assert_true(is_true(a, "stream"));
  assert_true(is_true(a, "estimated"));
  assert_true(n_of(a, "completion") > 0);
  assert_true(n_of(a, "prompt") > 0);
  assert_true(n_of(a, "ttft_ms") >= 0);
  assert_true(n_of(a, "cost_nanousd") > 0);
  a = cJSON_GetArrayItem(recs, 1);
  assert_string_equal(s_of(a, "status"), "LLMR_E_TRANSPORT");
  assert_true(is_true(a, "estimated"));
  assert_true(n_of(a, "completion") > 0);
  cJSON_Delete(recs);
  llmr_request_free(req);
  llmr_router_free(r);
  llmr_ledger_close(l);
}

/* ---- budgets ------------------------------------------------------------ */

static void test_budget_refusal_sends_nothing(void **state) {
  const char *slugs[] = {"openai/gpt-4o"};
  char path[300], *info;
  llmr_router *r = router_with("");
  llmr_ledger *l = ledger(new_path(path, sizeof(path)),
                          "{\"fsync\":\"never\",\"budgets\":[{\"window\":"
                          "\"all\",\"usd\":0.000001}]}");
  llmr_request *req = hello(NULL, 100);
  llmr_response *resp = NULL;
  cJSON *d;
  (void)state;
  llmr_router_set_ledger(r, l);
  assert_int_equal(llmr_complete(r, slugs, 1, req, &resp), LLMR_E_BUDGET);
  assert_non_null(strstr(llmr_response_error(resp), "budget"));
  assert_non_null(strstr(llmr_response_error(resp), "openai/gpt-4o"));
  assert_int_equal(llmr_response_attempt_count(resp), 1);
  assert_int_equal(llmr_response_attempt_status(resp, 0), LLMR_E_BUDGET);
  assert_int_equal(llmr_response_attempt_http_status(resp, 0), 0);
  assert_int_equal(llmr_response_cost_nanousd(resp), 0);
  assert_int_equal(emu_count(&E, NULL), 0); /* not one byte went out */
  llmr_response_free(resp);
  /* streaming is refused the same way */
  assert_int_equal(llmr_stream(r, slugs, 1, req, NULL, NULL, &resp),
                   LLMR_E_BUDGET);
  llmr_response_free(resp);
  assert_int_equal(emu_count(&E, NULL), 0);
  assert_int_equal(llmr_ledger_info(l, &info), LLMR_OK);
  d = cJSON_Parse(info);
  llmr_free(info);
  assert_int_equal((int)n_of(d, "records"), 0);
  cJSON_Delete(d);
  llmr_request_free(req);
  llmr_router_free(r);
  llmr_ledger_close(l);
}

static void test_budget_moves_to_cheaper_slug(void **state) {
  const char *slugs[] = {"openai/gpt-4o", "openai/gpt-4o-mini"};
  char path[300], *info;
  llmr_router *r = router_with("");
  /* max_tokens 1000: gpt-4o could cost 1000 x $10/Mtok = $0.01, more than
   * the $0.002 left; gpt-4o-mini at most about $0.0006 */
  llmr_ledger *l = ledger(new_path(path, sizeof(path)),
                          "{\"fsync\":\"never\",\"budgets\":[{\"app\":"
                          "\"tight\",\"window\":\"day\",\"usd\":0.002}]}");
  llmr_request *req = hello("tight", 1000), *other = hello("free", 1000);
  llmr_response *resp = NULL;
  cJSON *recs, *d, *b;
  (void)state;
  llmr_router_set_ledger(r, l);
  assert_int_equal(llmr_complete(r, slugs, 2, req, &resp), LLMR_OK);
  assert_string_equal(llmr_response_model(resp), "openai/gpt-4o-mini");
  assert_int_equal(llmr_response_attempt_status(resp, 0), LLMR_E_BUDGET);
  assert_int_equal(emu_count(&E, "gpt-4o"), 0);
  assert_int_equal(emu_count(&E, "gpt-4o-mini"), 1);
  recs = records(path);
  assert_int_equal(cJSON_GetArraySize(recs), 1);
  assert_int_equal((int)n_of(cJSON_GetArrayItem(recs, 0), "attempt"), 1);
  cJSON_Delete(recs);
  /* the reservation was settled at the real cost */
  assert_int_equal(llmr_ledger_info(l, &info), LLMR_OK);
  d = cJSON_Parse(info);
  llmr_free(info);
  b = cJSON_GetArrayItem(cJSON_GetObjectItem(d, "budgets"), 0);
  assert_int_equal((int64_t)n_of(b, "reserved_nanousd"), 0);
  assert_int_equal((int64_t)n_of(b, "spent_nanousd"),
                   llmr_response_cost_nanousd(resp));
  cJSON_Delete(d);
  llmr_response_free(resp);
  /* another app has no budget: gpt-4o answers */
  assert_int_equal(llmr_complete(r, slugs, 2, other, &resp), LLMR_OK);
  assert_string_equal(llmr_response_model(resp), "openai/gpt-4o");
  llmr_response_free(resp);
  llmr_router_free(r);
  llmr_ledger_close(l);

  /* budget_fallback false: a refusal ends the call */
  emu_reset(&E);
  r = router_with("");
  l = ledger(new_path(path, sizeof(path)),
             "{\"fsync\":\"never\",\"budget_fallback\":false,\"budgets\":[{"
             "\"window\":\"month\",\"usd\":0.002}]}");
  llmr_router_set_ledger(r, l);
  assert_int_equal(llmr_complete(r, slugs, 2, req, &resp), LLMR_E_BUDGET);
  assert_int_equal(llmr_response_attempt_count(resp), 1);
  assert_int_equal(emu_count(&E, NULL), 0);
  llmr_response_free(resp);

  /* a model without a price cannot be bounded: refused unless allowed */
  {
    const char *unpriced[] = {"openai/gpt-unknown-9"};
    assert_int_equal(llmr_complete(r, unpriced, 1, req, &resp), LLMR_E_BUDGET);
    assert_non_null(strstr(llmr_response_error(resp), "price"));
    llmr_response_free(resp);
    assert_int_equal(emu_count(&E, NULL), 0);
  }
  llmr_request_free(req);
  llmr_request_free(other);
  llmr_router_free(r);
  llmr_ledger_close(l);
}

/* ---- the router config key and the JSON API ----------------------------- */

static void test_config_key_and_json_api(void **state) {
  char path[300], extra[400], *out = NULL, err[LLMR_ERRBUF_SIZE];
  llmr_router *r;
  cJSON *recs, *doc;
  char *conf;
  (void)state;
  new_path(path, sizeof(path));
  snprintf(extra, sizeof(extra),
           "\"ledger\": {\"path\": \"%s\", \"fsync\": \"never\"}", path);
  r = router_with(extra);
  assert_int_equal(
      llmr_complete_json(r,
                         "{\"model\":\"openai/gpt-4o-mini\",\"app\":\"json-app\","
                         "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
                         &out),
      LLMR_OK);
  doc = cJSON_Parse(out);
  llmr_free(out);
  recs = records(path);
  assert_int_equal(cJSON_GetArraySize(recs), 1);
  assert_string_equal(s_of(cJSON_GetArrayItem(recs, 0), "app"), "json-app");
  assert_string_equal(s_of(cJSON_GetArrayItem(recs, 0), "id"),
                      s_of(cJSON_GetObjectItem(doc, "llmroute"), "request_id"));
  cJSON_Delete(recs);
  cJSON_Delete(doc);
  llmr_router_free(r); /* closes the ledger it opened */

  conf = emu_config(&E, "\"ledger\": 5");
  assert_int_equal(llmr_router_new_ex(conf, &r, err, sizeof(err)),
                   LLMR_E_INVAL);
  assert_non_null(strstr(err, "config.ledger"));
  free(conf);
  snprintf(extra, sizeof(extra),
           "\"ledger\": {\"path\": \"%s\", \"fsync\": \"often\"}", path);
  conf = emu_config(&E, extra);
  assert_int_equal(llmr_router_new_ex(conf, &r, err, sizeof(err)),
                   LLMR_E_INVAL);
  assert_non_null(strstr(err, "fsync"));
  free(conf);
}

/* ---- a damaged file ------------------------------------------------------ */

static void test_damaged_file_is_left_alone(void **state) {
  const char *slugs[] = {"openai/gpt-4o-mini"};
  char path[300], *before, *after;
  llmr_router *r = router_with("");
  llmr_ledger *l = ledger(new_path(path, sizeof(path)), "{\"fsync\":\"never\"}");
  llmr_request *req = hello(NULL, 0);
  llmr_response *resp = NULL;
  FILE *f;
  size_t i;
  int warned = 0;
  (void)state;
  llmr_router_set_ledger(r, l);
  assert_int_equal(llmr_complete(r, slugs, 1, req, &resp), LLMR_OK);
  llmr_response_free(resp);
  /* someone appends a line that is no record */
  f = fopen(path, "ab");
  fputs("this is not a record\n", f);
  fclose(f);
  before = slurp(path);
  /* the call still works; the ledger refuses to append and says why */
  assert_int_equal(llmr_complete(r, slugs, 1, req, &resp), LLMR_OK);
  for (i = 0; i < llmr_response_warning_count(resp); i++)
    if (strstr(llmr_response_warning(resp, i), "ledger:") &&
        strstr(llmr_response_warning(resp, i), "not a ledger record"))
      warned = 1;
  assert_true(warned);
  llmr_response_free(resp);
  after = slurp(path);
  assert_string_equal(after, before);
  free(before);
  free(after);
  assert_int_equal(llmr_ledger_verify(path, NULL), LLMR_E_CORRUPT);
  llmr_request_free(req);
  llmr_router_free(r);
  llmr_ledger_close(l);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(test_records_per_attempt, reset),
      cmocka_unit_test_setup(test_cost_without_ledger_and_unpriced, reset),
      cmocka_unit_test_setup(test_stream_cancelled_and_broken, reset),
      cmocka_unit_test_setup(test_budget_refusal_sends_nothing, reset),
      cmocka_unit_test_setup(test_budget_moves_to_cheaper_slug, reset),
      cmocka_unit_test_setup(test_config_key_and_json_api, reset),
      cmocka_unit_test_setup(test_damaged_file_is_left_alone, reset),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
