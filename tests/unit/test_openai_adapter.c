/* The OpenAI-compatible adapter as pure transforms: request bodies it
 * builds, response bodies it parses, error replies it classifies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "internal.h"

#include <stdio.h>
#include <string.h>

static llmr_provider *provider(const char *name, const char *conf_json) {
  cJSON *conf = conf_json ? cJSON_Parse(conf_json) : NULL;
  llmr_provider *p = NULL;
  assert_int_equal(llmr__provider_new(name, &llmr__openai_vt,
                                      llmr__builtin_find(name), conf, 0, NULL,
                                      &p, NULL, 0),
                   LLMR_OK);
  cJSON_Delete(conf);
  return p;
}

static void reply(llmr_http_response *h, int status, const char *body) {
  memset(h, 0, sizeof(*h));
  h->status = status;
  assert_int_equal(llmr__buf_puts(&h->body, body), 0);
}

static void test_build_stream_request(void **state) {
  llmr_provider *p = provider("openai", "{\"api_key\":\"sk-1\"}");
  llmr_provider *m = provider("mistral", "{\"api_key\":\"m-1\"}");
  llmr_request *req;
  llmr_response *resp = llmr__response_new();
  llmr_http_request http;
  (void)state;
  assert_int_equal(llmr_request_new(&req), LLMR_OK);
  assert_int_equal(llmr_request_add_message(req, LLMR_ROLE_USER, "hi"),
                   LLMR_OK);
  memset(&http, 0, sizeof(http));
  assert_int_equal(p->vt->build_request(p, req, "gpt-4o", 1, &http, resp),
                   LLMR_OK);
  assert_string_equal(http.url, "https://api.openai.com/v1/chat/completions");
  assert_string_equal(http.body,
                      "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\","
                      "\"content\":\"hi\"}],\"stream\":true,"
                      "\"stream_options\":{\"include_usage\":true}}");
  assert_string_equal(llmr_http_response_header(NULL, "x") ? "" : "ok", "ok");
  llmr__http_request_clear(&http);
  /* Mistral: no stream_options (usage rides on the finish chunk) */
  assert_int_equal(m->vt->build_request(m, req, "mistral-small", 1, &http,
                                        resp),
                   LLMR_OK);
  assert_string_equal(http.url, "https://api.mistral.ai/v1/chat/completions");
  assert_null(strstr(http.body, "stream_options"));
  llmr__http_request_clear(&http);
  llmr_request_free(req);
  llmr_response_free(resp);
  llmr__provider_free(p);
  llmr__provider_free(m);
}

/* The headers of a built request: the two fixed ones, then
 * "Authorization: Bearer <key>" in secret memory (its block's tag byte);
 * a key holding CR or LF is refused on every build, as the header checks
 * refuse it; no key, no Authorization. */
static void test_build_headers(void **state) {
  static const char *const bad[] = {"{\"api_key\":\"sk-1\\r\\nX-A: b\"}",
                                    "{\"api_key\":\"\\nsk\"}",
                                    "{\"api_key\":\"sk\\r\"}"};
  llmr_provider *p = provider("openai", "{\"api_key\":\"sk-1\"}");
  llmr_provider *none = provider("ollama", NULL);
  llmr_request *req;
  llmr_response *resp = llmr__response_new();
  llmr_http_request http;
  size_t i;
  int stream, round;
  (void)state;
  assert_int_equal(llmr_request_new(&req), LLMR_OK);
  assert_int_equal(llmr_request_add_message(req, LLMR_ROLE_USER, "hi"),
                   LLMR_OK);
  llmr__http_request_init(&http);
  for (stream = 0; stream <= 1; stream++)
    for (round = 0; round < 2; round++) {
      assert_int_equal(
          p->vt->build_request(p, req, "gpt-4o", stream, &http, resp),
          LLMR_OK);
      assert_int_equal(http.n_headers, 3);
      assert_string_equal(http.headers[0].name, "Content-Type");
      assert_string_equal(http.headers[0].value, "application/json");
      assert_int_equal(http.headers[0].name[-1], 0);
      assert_string_equal(http.headers[1].name, "Accept");
      assert_string_equal(http.headers[1].value,
                          stream ? "text/event-stream" : "application/json");
      assert_string_equal(http.headers[2].name, "Authorization");
      assert_string_equal(http.headers[2].value, "Bearer sk-1");
      assert_int_equal(http.headers[2].name[-1], 1); /* secret memory */
      llmr__http_request_clear(&http);
    }
  assert_int_equal(
      none->vt->build_request(none, req, "llama3", 0, &http, resp), LLMR_OK);
  assert_int_equal(http.n_headers, 2);
  assert_null(strstr(http.headers[1].name, "Authorization"));
  llmr__http_request_clear(&http);
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    llmr_provider *b = provider("openai", bad[i]);
    for (round = 0; round < 2; round++) {
      assert_int_equal(b->vt->build_request(b, req, "gpt-4o", 0, &http, resp),
                       LLMR_E_INVAL);
      llmr__http_request_clear(&http);
    }
    llmr__provider_free(b);
  }
  llmr_request_free(req);
  llmr_response_free(resp);
  llmr__provider_free(p);
  llmr__provider_free(none);
}

static void test_parse_bodies(void **state) {
  llmr_provider *p = provider("openrouter", NULL);
  llmr_http_response h;
  llmr_response *resp;
  (void)state;

  /* OpenRouter: leading whitespace, reasoning, cost-bearing usage */
  reply(&h, 200,
        "\n  {\"id\":\"gen-1\",\"provider\":\"Anthropic\",\"model\":\"x\","
        "\"choices\":[{\"index\":0,\"finish_reason\":\"stop\","
        "\"native_finish_reason\":\"end_turn\",\"message\":{\"role\":"
        "\"assistant\",\"content\":\"4\",\"reasoning\":\"2+2\"}}],"
        "\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":5,"
        "\"total_tokens\":15,\"cost\":0.0001}}");
  resp = llmr__response_new();
  assert_int_equal(p->vt->parse_response(p, &h, resp), LLMR_OK);
  assert_string_equal(llmr_response_text(resp), "4");
  assert_string_equal(llmr_response_reasoning(resp), "2+2");
  assert_string_equal(llmr_response_finish_reason(resp), "stop");
  assert_int_equal(llmr_response_tokens(resp, LLMR_TOKENS_PROMPT), 10);
  assert_int_equal(llmr_response_tokens(resp, LLMR_TOKENS_CACHED), 0);
  assert_int_equal(llmr_response_tokens(resp, LLMR_TOKENS_REASONING), 0);
  llmr_response_free(resp);
  llmr__http_response_clear(&h);

  /* Mistral model_length -> length; DeepSeek reasoning_content */
  reply(&h, 200,
        "{\"choices\":[{\"finish_reason\":\"model_length\",\"message\":{"
        "\"content\":\"abc\",\"reasoning_content\":\"think\"}}]}");
  resp = llmr__response_new();
  assert_int_equal(p->vt->parse_response(p, &h, resp), LLMR_OK);
  assert_string_equal(llmr_response_finish_reason(resp), "length");
  assert_string_equal(llmr_response_reasoning(resp), "think");
  /* no usage at all: counts stay unknown (-1) */
  assert_int_equal(llmr_response_tokens(resp, LLMR_TOKENS_PROMPT), -1);
  llmr_response_free(resp);
  llmr__http_response_clear(&h);

  /* OpenRouter: a 200 that carries an error object is an error */
  reply(&h, 200,
        "{\"error\":{\"code\":502,\"message\":\"Provider returned error\"}}");
  resp = llmr__response_new();
  assert_int_equal(p->vt->parse_response(p, &h, resp), LLMR_E_PROVIDER);
  assert_string_equal(llmr_response_error(resp), "Provider returned error");
  assert_null(llmr_response_error_type(resp));
  llmr_response_free(resp);
  llmr__http_response_clear(&h);
  llmr__provider_free(p);
}

static void test_classify_non_json(void **state) {
  llmr_provider *p = provider("openai", NULL);
  llmr_http_response h;
  llmr_response *resp = llmr__response_new();
  (void)state;
  reply(&h, 500, "\xff\xfe<html>\x01oops");
  assert_int_equal(p->vt->classify_error(p, &h, resp), LLMR_E_SERVER);
  /* the message quotes the body, printable ASCII only */
  assert_string_equal(llmr_response_error(resp), "HTTP 500: ?" "?<html>?oops");
  assert_true(llmr_response_retryable(resp));
  llmr_response_free(resp);
  llmr__http_response_clear(&h);
  llmr__provider_free(p);
}

/* Reply headers: the first ones in the reply's own arena and array, more
 * (and longer) ones on the heap; all of them found, case-insensitively,
 * the later of two same-named ones winning; clear releases everything
 * (ASan would see a leak) and the reply is usable again. */
/* Header i's value: 1,500 bytes for every third, else 10 + i, each its
 * own letter with i at the end. */
static void value_of(int i, char want[2100]) {
  size_t vlen = i % 3 == 0 ? 1500 : (size_t)(10 + i);
  memset(want, 'a' + i % 26, vlen);
  want[vlen] = '\0';
  want[vlen - 1] = (char)('0' + i % 10);
}

static void test_reply_headers(void **state) {
  llmr_http_response h;
  char line[2200], name[32], want[2100];
  int round, i;
  (void)state;
  llmr__http_response_init(&h);
  for (round = 0; round < 2; round++) {
    for (i = 0; i < 40; i++) {
      value_of(i, want);
      snprintf(line, sizeof(line), "X-Test-%d:  %s \r\n", i, want);
      assert_int_equal(
          llmr__http_response_add_header(&h, line, strlen(line)), LLMR_OK);
    }
    assert_int_equal(llmr__http_response_add_header(&h, "x-test-5: again\r\n",
                                                    17),
                     LLMR_OK);
    for (i = 0; i < 40; i++) {
      snprintf(name, sizeof(name), "x-TEST-%d", i);
      value_of(i, want);
      assert_string_equal(llmr_http_response_header(&h, name),
                          i == 5 ? "again" : want);
    }
    assert_null(llmr_http_response_header(&h, "x-test-40"));
    llmr__http_response_clear(&h);
    assert_int_equal(h.n_headers, 0);
    assert_null(llmr_http_response_header(&h, "x-test-1"));
  }
}

/* Reply header names are stored lowercased (A-Z only: every other byte,
 * those above 0x7f included, as it came), whatever their length (the
 * copy goes by 8 bytes with a byte loop under 8); values as they came. */
static void test_reply_header_names(void **state) {
  static const char alphabet[] = "AZaz@[`{09-_\xc1\xdaQ\x80\xffM";
  llmr_http_response h;
  char line[128], want[64];
  size_t n, i, k;
  (void)state;
  for (n = 1; n <= 40; n++) {
    llmr__http_response_init(&h);
    for (k = 0; k < sizeof(alphabet) - 1; k++) {
      for (i = 0; i < n; i++) {
        unsigned char c =
            (unsigned char)alphabet[(i + k) % (sizeof(alphabet) - 1)];
        line[i] = (char)c;
        want[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
      }
      want[n] = '\0';
      memcpy(line + n, ": Va L\r\n", 9);
      assert_int_equal(llmr__http_response_add_header(&h, line, n + 8),
                       LLMR_OK);
      assert_int_equal(h.n_headers, k + 1);
      assert_memory_equal(h.headers[k].name, want, n + 1);
      assert_string_equal(h.headers[k].value, "Va L");
    }
    llmr__http_response_clear(&h);
  }
}

/* Request parts: the URL, a short body and plain headers in the request's
 * own arena, longer ones and more than 8 headers on the heap, credentials
 * in secret memory; setting the URL and body again replaces them; clear
 * releases everything (ASan would see a leak) and the request is usable
 * again. */
static void test_request_parts(void **state) {
  llmr_http_request h;
  char name[32], want[2100], url[700];
  int round, i;
  (void)state;
  llmr__http_request_init(&h);
  for (round = 0; round < 2; round++) {
    assert_int_equal(llmr_http_request_set_url(&h, "https://a.example/v1"),
                     LLMR_OK);
    memset(url, 'u', sizeof(url) - 1);
    url[sizeof(url) - 1] = '\0';
    memcpy(url, "https://", 8);
    assert_int_equal(llmr_http_request_set_url(&h, round ? url : "https://b"),
                     LLMR_OK);
    assert_int_equal(llmr_http_request_set_body(&h, "{}", 2), LLMR_OK);
    value_of(3, want);
    assert_int_equal(llmr_http_request_set_body(&h, want, strlen(want)),
                     LLMR_OK);
    assert_int_equal(llmr__http_request_add_header_cat(&h, "Authorization",
                                                       "Bearer ", "sk-1"),
                     LLMR_OK);
    for (i = 0; i < 20; i++) {
      snprintf(name, sizeof(name), "X-Part-%d", i);
      value_of(i, want);
      assert_int_equal(llmr_http_request_add_header(&h, name, want), LLMR_OK);
    }
    assert_string_equal(h.url, round ? url : "https://b");
    value_of(3, want);
    assert_int_equal(h.body_len, strlen(want));
    assert_string_equal(h.body, want);
    assert_int_equal(h.n_headers, 21);
    assert_string_equal(h.headers[0].value, "Bearer sk-1");
    for (i = 0; i < 20; i++) {
      snprintf(name, sizeof(name), "X-Part-%d", i);
      value_of(i, want);
      assert_string_equal(h.headers[i + 1].name, name);
      assert_string_equal(h.headers[i + 1].value, want);
    }
    llmr__http_request_clear(&h);
    assert_null(h.url);
    assert_int_equal(h.n_headers, 0);
  }
}

/* What a request refuses: a header name that is empty or holds a colon,
 * CR or LF, a value or a value prefix with CR or LF (wherever it is), a
 * URL with CR or LF, NULLs; each leaves the request as it was. */
static void test_request_refusals(void **state) {
  static const char *const bad_names[] = {"",     ":",    "X:y",  "X\r",
                                          "\nX", "X\ry", "X-Y:", "A\nB"};
  static const char *const bad_values[] = {"\r", "\n", "a\r\nb", "ab\n",
                                           "\rab"};
  llmr_http_request h;
  size_t i;
  (void)state;
  llmr__http_request_init(&h);
  assert_int_equal(llmr_http_request_set_url(&h, "https://a.example/v1"),
                   LLMR_OK);
  assert_int_equal(llmr_http_request_set_url(&h, "https://b\r\nX: y"),
                   LLMR_E_INVAL);
  assert_int_equal(llmr_http_request_set_url(&h, "https://b/\n"),
                   LLMR_E_INVAL);
  assert_int_equal(llmr_http_request_set_url(&h, NULL), LLMR_E_INVAL);
  assert_string_equal(h.url, "https://a.example/v1");
  for (i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++)
    assert_int_equal(llmr_http_request_add_header(&h, bad_names[i], "v"),
                     LLMR_E_INVAL);
  for (i = 0; i < sizeof(bad_values) / sizeof(bad_values[0]); i++) {
    assert_int_equal(llmr_http_request_add_header(&h, "X-A", bad_values[i]),
                     LLMR_E_INVAL);
    assert_int_equal(llmr__http_request_add_header_cat(&h, "Authorization",
                                                       "Bearer ",
                                                       bad_values[i]),
                     LLMR_E_INVAL);
    assert_int_equal(llmr__http_request_add_header_cat(&h, "Authorization",
                                                       bad_values[i], "k"),
                     LLMR_E_INVAL);
  }
  assert_int_equal(llmr_http_request_add_header(&h, NULL, "v"), LLMR_E_INVAL);
  assert_int_equal(llmr_http_request_add_header(&h, "X-A", NULL),
                   LLMR_E_INVAL);
  assert_int_equal(h.n_headers, 0);
  /* a value may hold a colon, and be empty; the name keeps its case */
  assert_int_equal(llmr_http_request_add_header(&h, "X-Colon", "a:b: c"),
                   LLMR_OK);
  assert_int_equal(llmr__http_request_add_header_cat(&h, "Authorization",
                                                     NULL, ""),
                   LLMR_OK);
  assert_int_equal(h.n_headers, 2);
  assert_string_equal(h.headers[0].name, "X-Colon");
  assert_string_equal(h.headers[0].value, "a:b: c");
  assert_string_equal(h.headers[1].name, "Authorization");
  assert_string_equal(h.headers[1].value, "");
  llmr__http_request_clear(&h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_reply_headers),
      cmocka_unit_test(test_reply_header_names),
      cmocka_unit_test(test_request_parts),
      cmocka_unit_test(test_request_refusals),
      cmocka_unit_test(test_build_stream_request),
      cmocka_unit_test(test_build_headers),
      cmocka_unit_test(test_parse_bodies),
      cmocka_unit_test(test_classify_non_json),
  };
  return cmocka_run_group_tests_name("unit/openai_adapter", tests, NULL, NULL);
}
