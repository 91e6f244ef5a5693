/* The OpenAI adapter's fast answer reader (src/providers/openai.c, on the
 * scanner of src/jscan.h) against its cJSON tree reader: for every body
 * the fast path accepts, both give the same response byte for byte; for
 * every body it declines, it leaves the response untouched. Bodies: the
 * shapes providers send, then each of them cut at every length and with
 * every byte replaced by, or preceded by, each byte that matters to JSON.
 * And the request side: the direct body writer against the cJSON tree,
 * byte for byte, for requests of every shape and every dialect. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "answer_diff.h"
#include "internal.h"
#include "jscan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define USAGE                                                                  \
  "\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":12,"                   \
  "\"total_tokens\":21,\"prompt_tokens_details\":{\"cached_tokens\":3,"        \
  "\"audio_tokens\":0},\"completion_tokens_details\":{\"reasoning_tokens\":"  \
  "4,\"audio_tokens\":0}}"

/* Bodies the fast path must read itself (not decline). */
static const char *const accepted[] = {
    /* api.openai.com, as bench_upstream answers */
    "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"created\":"
    "1741569952,\"model\":\"gpt-4o-mini-2024-07-18\",\"choices\":[{\"index\":"
    "0,\"message\":{\"role\":\"assistant\",\"content\":\"Hello! How can I "
    "help?\",\"refusal\":null,\"annotations\":[]},\"logprobs\":null,"
    "\"finish_reason\":\"stop\"}]," USAGE ",\"service_tier\":\"default\","
    "\"system_fingerprint\":\"fp_1\"}",
    /* escapes of every kind, a surrogate pair, raw UTF-8 */
    "{\"id\":\"a\\/b\",\"choices\":[{\"message\":{\"content\":"
    "\"l1\\nl2\\t\\\"q\\\" \\\\ \\b\\f\\r \\u00e9\\u20AC\\ud83d\\ude00 "
    "\xc3\xa9\"},\"finish_reason\":\"length\"}]}",
    /* OpenRouter: leading white space, reasoning, cost in usage */
    "\n  {\"id\":\"gen-1\",\"provider\":\"Anthropic\",\"choices\":[{"
    "\"finish_reason\":\"stop\",\"native_finish_reason\":\"end_turn\","
    "\"message\":{\"role\":\"assistant\",\"content\":\"4\",\"reasoning\":"
    "\"2+2\"}}],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":5,"
    "\"total_tokens\":15,\"cost\":0.0001,\"is_byok\":false}}\r\n",
    /* DeepSeek: reasoning_content, cache hit fields */
    "{\"id\":\"d\",\"choices\":[{\"message\":{\"content\":\"x\","
    "\"reasoning_content\":\"think\"},\"finish_reason\":\"stop\"}],"
    "\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":6,"
    "\"prompt_cache_hit_tokens\":0,\"prompt_cache_miss_tokens\":5}}",
    /* Mistral's model_length, a null content, empty tool_calls */
    "{\"id\":\"m\",\"created\":1,\"choices\":[{\"message\":{\"content\":null,"
    "\"tool_calls\":[ ]},\"finish_reason\":\"model_length\"}]}",
    /* no usage, no id, nulls where strings go, a second choice */
    "{\"choices\":[{\"message\":{\"content\":\"\"},\"finish_reason\":null},"
    "{\"message\":{\"content\":\"second\"}}],\"id\":null,\"usage\":null}",
    /* usage integers of other types, negative, -0; deep extra fields */
    "{\"choices\":[{\"message\":{\"content\":\"y\"}}],\"usage\":{"
    "\"prompt_tokens\":\"9\",\"completion_tokens\":-0,\"total_tokens\":-3,"
    "\"prompt_tokens_details\":null,\"completion_tokens_details\":[]},"
    "\"x\":[[[{\"a\":[1,2.5e-3,-0.0E+2,true,false,null,\"s\"]}]]]}",
};

/* Bodies it must decline (the cJSON path reads them). */
static const char *const declined[] = {
    "{\"choices\":[{\"message\":{\"content\":\"x\",\"tool_calls\":[{\"id\":"
    "\"c\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":"
    "\"{}\"}}]}}]}",
    "{\"error\":{\"message\":\"no\",\"code\":502}}",
    "{\"choices\":[{\"message\":{\"content\":\"a\",\"content\":\"b\"}}]}",
    "{\"created\":1.5e9,\"choices\":[{\"message\":{\"content\":\"a\"}}]}",
    "{\"choices\":[{\"message\":{\"content\":\"\\u0000\"}}]}",
    "{\"choices\":[{\"message\":{\"content\":\"\\ud83d\"}}]}",
    "{\"choices\":[{\"message\":{\"con\\u0074ent\":\"a\"}}]}",
    "{\"choices\":[]}",
    "{\"choices\":{\"0\":{\"message\":{\"content\":\"a\"}}}}",
    "{\"choices\":[{\"message\":{\"content\":7}}]}",
    "{\"choices\":[{\"message\":{\"content\":\"a\"}}]} trailing",
    "\xef\xbb\xbf{\"choices\":[{\"message\":{\"content\":\"a\"}}]}",
    "{\"choices\":[{\"message\":{\"content\":\"a\"}}],"
    "\"usage\":{\"prompt_tokens\":12345678901234567}}",
    "[]",
    "",
};

static void check(const char *body, size_t len, int *outcome) {
  char why[8192];
  int r = answer_diff(body, len, why, sizeof(why));
  if (r == ADIFF_DIFFERENT)
    fail_msg("body (%zu bytes) \"%.*s\":\n%s", len, (int)len, body, why);
  *outcome = r;
}

static void test_accepts_and_agrees(void **state) {
  size_t i;
  int r;
  (void)state;
  for (i = 0; i < sizeof(accepted) / sizeof(accepted[0]); i++) {
    check(accepted[i], strlen(accepted[i]), &r);
    if (r != ADIFF_SAME)
      fail_msg("fast path declined body %zu: %s", i, accepted[i]);
  }
}

static void test_declines(void **state) {
  size_t i;
  int r;
  (void)state;
  for (i = 0; i < sizeof(declined) / sizeof(declined[0]); i++) {
    check(declined[i], strlen(declined[i]), &r);
    if (r != ADIFF_DECLINED)
      fail_msg("fast path read body %zu itself: %s", i, declined[i]);
  }
}

/* The values the test's first body should give, checked directly too (the
 * differential check alone would pass two equally wrong readers). */
static void test_values(void **state) {
  llmr_http_response h;
  llmr_response *r = llmr__response_new();
  llmr_status st = LLMR_E_INVAL;
  (void)state;
  memset(&h, 0, sizeof(h));
  assert_int_equal(llmr__buf_puts(&h.body, accepted[1]), 0);
  assert_int_equal(llmr__openai_parse_fast(&h, r, &st), 1);
  assert_int_equal(st, LLMR_OK);
  assert_string_equal(llmr_response_text(r),
                      "l1\nl2\t\"q\" \\ \b\f\r \xc3\xa9\xe2\x82\xac"
                      "\xf0\x9f\x98\x80 \xc3\xa9");
  assert_string_equal(llmr_response_id(r), "a/b");
  assert_string_equal(llmr_response_finish_reason(r), "length");
  llmr_response_free(r);
  llmr__http_response_clear(&h);

  memset(&h, 0, sizeof(h));
  r = llmr__response_new();
  assert_int_equal(llmr__buf_puts(&h.body, accepted[0]), 0);
  assert_int_equal(llmr__openai_parse_fast(&h, r, &st), 1);
  assert_int_equal(llmr_response_tokens(r, LLMR_TOKENS_PROMPT), 9);
  assert_int_equal(llmr_response_tokens(r, LLMR_TOKENS_COMPLETION), 12);
  assert_int_equal(llmr_response_tokens(r, LLMR_TOKENS_CACHED), 3);
  assert_int_equal(llmr_response_tokens(r, LLMR_TOKENS_REASONING), 4);
  assert_int_equal(r->created, 1741569952);
  llmr_response_free(r);
  llmr__http_response_clear(&h);
}

/* Every base body cut at every length, each byte replaced by and preceded
 * by each of these, and each byte deleted. */
static const char subs[] = "\"\\{}[],:0-1eE.+ \tnutx\x01\x7f\xff";

static void sweep(const char *base, size_t *same, size_t *declined_n) {
  size_t n = strlen(base), i, k;
  char *m = malloc(n + 2);
  int r;
  assert_non_null(m);
  for (i = 0; i <= n; i++) {
    check(base, i, &r); /* cut */
    *same += r == ADIFF_SAME;
    *declined_n += r == ADIFF_DECLINED;
  }
  for (i = 0; i < n; i++) {
    for (k = 0; k < sizeof(subs) - 1; k++) {
      memcpy(m, base, n); /* replaced */
      m[i] = subs[k];
      check(m, n, &r);
      *same += r == ADIFF_SAME;
      *declined_n += r == ADIFF_DECLINED;
      memcpy(m, base, i); /* inserted */
      m[i] = subs[k];
      memcpy(m + i + 1, base + i, n - i);
      check(m, n + 1, &r);
      *same += r == ADIFF_SAME;
      *declined_n += r == ADIFF_DECLINED;
    }
    memcpy(m, base, i); /* deleted */
    memcpy(m + i, base + i + 1, n - i - 1);
    check(m, n - 1, &r);
    *same += r == ADIFF_SAME;
    *declined_n += r == ADIFF_DECLINED;
  }
  free(m);
}

static void test_mutations(void **state) {
  size_t i, same = 0, dec = 0;
  (void)state;
  for (i = 0; i < sizeof(accepted) / sizeof(accepted[0]); i++)
    sweep(accepted[i], &same, &dec);
  for (i = 0; i < sizeof(declined) / sizeof(declined[0]); i++)
    sweep(declined[i], &same, &dec);
  print_message("mutations: %zu read by the fast path, %zu declined\n", same,
                dec);
  /* both outcomes must occur many times, or the sweep proves nothing */
  assert_true(same > 1000);
  assert_true(dec > 1000);
}

/* llmr__js_plain, the string scanner's word-at-a-time run: against a byte
 * loop, for every byte value at every position of runs up to 40 bytes
 * (past several words and every tail length), over plain and high-bit
 * filler, alone and followed by a second stop byte. */
static void test_plain_runs(void **state) {
  static const char fill[] = {'a', '\xe9', '\x7f'};
  char buf[48];
  size_t len, i, f;
  int b;
  (void)state;
  for (f = 0; f < sizeof(fill); f++)
    for (len = 0; len <= 40; len++)
      for (i = 0; i < len; i++)
        for (b = 0; b < 256; b++) {
          size_t want, got, j;
          int stop = b < 0x20 || b == '"' || b == '\\';
          memset(buf, fill[f], sizeof(buf));
          buf[i] = (char)b;
          want = stop ? i : len;
          got = (size_t)(llmr__js_plain(buf, buf + len) - buf);
          if (got != want)
            fail_msg("byte %d at %zu of %zu: stop at %zu, want %zu", b, i,
                     len, got, want);
          assert_int_equal(llmr__js_stop[(unsigned char)b], stop);
          j = i + 1 + (size_t)b % 9; /* a second stop after it */
          if (j < len) {
            buf[j] = '"';
            got = (size_t)(llmr__js_plain(buf, buf + len) - buf);
            if (got != (stop ? i : j))
              fail_msg("byte %d at %zu, '\"' at %zu of %zu: stop at %zu", b,
                       i, j, len, got);
          }
        }
}

/* The scanner's own grammar, on values alone. */
static void test_scanner(void **state) {
  static const struct {
    const char *text;
    int want;
  } rows[] = {
      {"0", 0},          {"-0", 0},          {"12.5e+3", 0},
      {"01", 0},         /* 0, then "1" is left: the caller sees it */
      {"-", -2},         {"1.", -2},         {"1e", -2},
      {"1e+", -2},       {".5", -1},         {"+1", -1},
      {"\"a", -2},       {"\"a\\", -2},      {"\"\\x\"", -1},
      {"\"\\u12\"", -1}, {"\"\\u12", -2},    {"\"\x1f\"", -1},
      {"\"\\udc00\"", -1}, {"\"\\ud800x\"", -1}, {"\"\\ud800\\u0041\"", -1},
      {"\"\\ud800", -2}, {"\"\\u0000\"", -1}, {"[1,]", -1},
      {"[1", -2},        {"{\"a\":1,}", -1}, {"{\"a\" 1}", -1},
      {"{1:1}", -1},     {"tru", -2},        {"trux", -1},
  };
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
    llmr__jcur c;
    int r;
    c.p = rows[i].text;
    c.e = rows[i].text + strlen(rows[i].text);
    r = llmr__js_skip(&c, 64);
    if (r != rows[i].want)
      fail_msg("scanning %s: %d, want %d", rows[i].text, r, rows[i].want);
  }
  { /* 64 deep is read, 65 is too deep for the limit */
    char deep[2 * 65 + 1];
    llmr__jcur c;
    memset(deep, '[', 65);
    memset(deep + 65, ']', 65);
    deep[130] = '\0';
    c.p = deep + 1;
    c.e = deep + 129;
    assert_int_equal(llmr__js_skip(&c, 64), 0);
    assert_true(c.p == c.e);
    c.p = deep;
    c.e = deep + 130;
    assert_int_equal(llmr__js_skip(&c, 64), -1);
  }
}


/* ---- request bodies -------------------------------------------------------- */

/* Requests as OpenAI JSON; those marked 1 must be written directly. */
static const struct {
  const char *json;
  int direct;
} bodies[] = {
    {"{\"messages\":[{\"role\":\"user\",\"content\":\"Say hello.\"}]}", 1},
    {"{\"messages\":[{\"role\":\"system\",\"content\":\"Be \\\"terse\\\".\\n\"},"
     "{\"role\":\"user\",\"content\":\"tab\\there \\u0001\\u001f \\u007f "
     "\\\\ / \\b\\f\\r \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"},"
     "{\"role\":\"assistant\",\"content\":\"ok\"},"
     "{\"role\":\"user\",\"content\":\"\",\"name\":\"bob\"}],"
     "\"temperature\":0.7,\"top_p\":1,\"max_tokens\":1024,\"seed\":-42,"
     "\"stop\":[\"\\n\\n\",\"END\"],\"user\":\"u-1\"}", 1},
    {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
     "\"temperature\":0.30000000000000004,\"top_p\":1e-7,"
     "\"max_tokens\":3000000000,\"seed\":4294967296}", 1},
    {"{\"messages\":[{\"role\":\"developer\",\"content\":\"d\"},"
     "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"42\"}],"
     "\"temperature\":2}", 1},
    /* not plain: the tree writes them */
    {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{"
     "\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{"
     "\"type\":\"object\"}}}],\"tool_choice\":\"auto\"}", 0},
    {"{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\","
     "\"text\":\"hi\"}]}]}", 0},
    {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
     "\"response_format\":{\"type\":\"json_object\"}}", 0},
    {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
     "\"reasoning_effort\":\"low\",\"max_tokens\":5}", 0},
    {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
     "\"logit_bias\":{\"1\":2}}", 0},
    {"{\"messages\":[{\"role\":\"assistant\",\"content\":null,\"tool_calls\":"
     "[{\"id\":\"c\",\"type\":\"function\",\"function\":{\"name\":\"f\","
     "\"arguments\":\"{}\"}}]},{\"role\":\"tool\",\"tool_call_id\":\"c\","
     "\"content\":\"ok\"}]}", 0},
};

static void warnings(llmr__buf *b, const llmr_response *r) {
  size_t i;
  for (i = 0; i < llmr_response_warning_count(r); i++)
    llmr__buf_printf(b, "%s;", llmr_response_warning(r, i));
}

static void test_request_bodies(void **state) {
  static const char *const hosts[] = {"openai", "openrouter", "mistral",
                                      "groq",   "deepseek",   "ollama"};
  size_t i, h;
  int stream;
  (void)state;
  for (h = 0; h < sizeof(hosts) / sizeof(hosts[0]); h++) {
    llmr_provider *p = NULL;
    assert_int_equal(llmr__provider_new(hosts[h], &llmr__openai_vt,
                                        llmr__builtin_find(hosts[h]), NULL, 0,
                                        NULL, &p, NULL, 0),
                     LLMR_OK);
    for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
      for (stream = 0; stream <= 1; stream++) {
        llmr_request *req = NULL;
        llmr_response *rd = llmr__response_new(), *rt = llmr__response_new();
        llmr__buf d = {0}, t = {0}, wd = {0}, wt = {0};
        char err[256];
        int r;
        if (llmr_request_from_json(bodies[i].json, 0, &req, err,
                                   sizeof(err)) != LLMR_OK)
          fail_msg("body %zu: %s", i, err);
        r = llmr__openai_body_direct(p, req, "m-1", stream, &d, rd);
        assert_int_equal(llmr__openai_body_tree(p, req, "m-1", stream, &t, rt),
                         LLMR_OK);
        if (r != bodies[i].direct)
          fail_msg("%s body %zu stream %d: direct writer returned %d",
                   hosts[h], i, stream, r);
        warnings(&wd, rd);
        warnings(&wt, rt);
        if (r == 1) {
          assert_string_equal(llmr__buf_str(&d), llmr__buf_str(&t));
          assert_string_equal(llmr__buf_str(&wd), llmr__buf_str(&wt));
        } else { /* declined: nothing written, nothing warned */
          assert_int_equal(d.len, 0);
          assert_int_equal(llmr_response_warning_count(rd), 0);
        }
        llmr__buf_free(&d);
        llmr__buf_free(&t);
        llmr__buf_free(&wd);
        llmr__buf_free(&wt);
        llmr_request_free(req);
        llmr_response_free(rd);
        llmr_response_free(rt);
      }
    llmr__provider_free(p);
  }
}

/* Every byte value in a message, one at a time, both writers. */
static void test_request_bytes(void **state) {
  llmr_provider *p = NULL;
  int c;
  (void)state;
  assert_int_equal(llmr__provider_new("openai", &llmr__openai_vt,
                                      llmr__builtin_find("openai"), NULL, 0,
                                      NULL, &p, NULL, 0),
                   LLMR_OK);
  for (c = 1; c < 256; c++) {
    char text[8] = {'a', (char)c, 'b', (char)c, '\0'};
    llmr_request *req = NULL;
    llmr_response *r = llmr__response_new();
    llmr__buf d = {0}, t = {0};
    assert_int_equal(llmr_request_new(&req), LLMR_OK);
    assert_int_equal(llmr_request_add_message(req, LLMR_ROLE_USER, text),
                     LLMR_OK);
    assert_int_equal(llmr__openai_body_direct(p, req, "m", 0, &d, r), 1);
    assert_int_equal(llmr__openai_body_tree(p, req, "m", 0, &t, r), LLMR_OK);
    assert_string_equal(llmr__buf_str(&d), llmr__buf_str(&t));
    llmr__buf_free(&d);
    llmr__buf_free(&t);
    llmr_request_free(req);
    llmr_response_free(r);
  }
  llmr__provider_free(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_scanner),
      cmocka_unit_test(test_plain_runs),
      cmocka_unit_test(test_accepts_and_agrees),
      cmocka_unit_test(test_declines),
      cmocka_unit_test(test_values),
      cmocka_unit_test(test_mutations),
      cmocka_unit_test(test_request_bodies),
      cmocka_unit_test(test_request_bytes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
