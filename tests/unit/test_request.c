/* The request model: the C builder, OpenAI JSON parsing with errors that
 * name the bad field, and the OpenAI JSON it writes back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "internal.h"

#include <stdio.h>
#include <string.h>

static void test_builder(void **state) {
  llmr_request *req;
  char *json;
  (void)state;
  assert_int_equal(llmr_request_new(&req), LLMR_OK);
  assert_int_equal(llmr_request_add_message(req, LLMR_ROLE_SYSTEM, "sys"),
                   LLMR_OK);
  assert_int_equal(llmr_request_add_message(req, LLMR_ROLE_USER, "weather?"),
                   LLMR_OK);
  assert_int_equal(llmr_request_add_message(req, LLMR_ROLE_ASSISTANT, NULL),
                   LLMR_OK);
  assert_int_equal(llmr_request_add_tool_call(req, "call_1", "get_weather",
                                              "{\"city\":\"Oslo\"}"),
                   LLMR_OK);
  assert_int_equal(llmr_request_add_tool_result(req, "call_1", "-3C"),
                   LLMR_OK);
  assert_int_equal(
      llmr_request_add_tool(req, "get_weather", "Weather for a city",
                            "{\"type\":\"object\",\"properties\":{\"city\":{"
                            "\"type\":\"string\"}}}"),
      LLMR_OK);
  assert_int_equal(llmr_request_set_temperature(req, 1.5), LLMR_OK);
  assert_int_equal(llmr_request_set_max_tokens(req, 100), LLMR_OK);
  assert_int_equal(llmr_request_add_stop(req, "\n\n"), LLMR_OK);
  assert_int_equal(llmr_request_set_app(req, "cli"), LLMR_OK);
  assert_int_equal(llmr_request_message_count(req), 4);
  json = llmr_request_to_json(req);
  assert_string_equal(
      json,
      "{\"messages\":[{\"role\":\"system\",\"content\":\"sys\"},{\"role\":"
      "\"user\",\"content\":\"weather?\"},{\"role\":\"assistant\",\"content\":"
      "null,\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\","
      "\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":"
      "\\\"Oslo\\\"}\"}}]},{\"role\":\"tool\",\"content\":\"-3C\","
      "\"tool_call_id\":\"call_1\"}],\"tools\":[{\"type\":\"function\","
      "\"function\":{\"name\":\"get_weather\",\"description\":\"Weather for a "
      "city\",\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{"
      "\"type\":\"string\"}}}}}],\"temperature\":1.5,\"max_tokens\":100,"
      "\"stop\":[\"\\n\\n\"]}");
  llmr_free(json);
  llmr_request_free(req);
}

static void test_builder_rejects(void **state) {
  llmr_request *req;
  (void)state;
  assert_int_equal(llmr_request_new(NULL), LLMR_E_INVAL);
  assert_int_equal(llmr_request_new(&req), LLMR_OK);
  /* a tool call needs an assistant message before it */
  assert_int_equal(llmr_request_add_tool_call(req, "c", "f", "{}"),
                   LLMR_E_INVAL);
  assert_int_equal(llmr_request_add_message(req, LLMR_ROLE_USER, NULL),
                   LLMR_E_INVAL);
  assert_int_equal(llmr_request_add_message(req, (llmr_role)99, "x"),
                   LLMR_E_INVAL);
  /* a tool result needs its call id: add_tool_result, not add_message */
  assert_int_equal(llmr_request_add_message(req, LLMR_ROLE_TOOL, "x"),
                   LLMR_E_INVAL);
  assert_int_equal(llmr_request_set_reasoning(req, "extreme", 0),
                   LLMR_E_INVAL);
  assert_int_equal(llmr_request_set_reasoning(req, NULL, -1), LLMR_E_INVAL);
  assert_int_equal(llmr_request_set_response_format(req, "{\"type\":\"xml\"}"),
                   LLMR_E_INVAL);
  assert_int_equal(llmr_request_add_image(req, "ftp://x/y.png", NULL),
                   LLMR_E_INVAL); /* no message yet */
  assert_int_equal(llmr_request_add_message(req, LLMR_ROLE_USER, "x"),
                   LLMR_OK);
  assert_int_equal(llmr_request_add_tool_call(req, "c", "f", "{}"),
                   LLMR_E_INVAL);
  assert_int_equal(llmr_request_set_temperature(req, 2.5), LLMR_E_INVAL);
  assert_int_equal(llmr_request_set_temperature(req, -0.1), LLMR_E_INVAL);
  assert_int_equal(llmr_request_set_top_p(req, 1.1), LLMR_E_INVAL);
  assert_int_equal(llmr_request_set_max_tokens(req, 0), LLMR_E_INVAL);
  assert_int_equal(llmr_request_add_tool(req, "f", NULL, "[1]"), LLMR_E_INVAL);
  assert_int_equal(llmr_request_add_tool(req, "f", NULL, "{oops"),
                   LLMR_E_INVAL);
  assert_int_equal(llmr_request_add_tool(req, "", NULL, NULL), LLMR_E_INVAL);
  assert_int_equal(llmr_request_add_stop(req, ""), LLMR_E_INVAL);
  /* nothing above changed the request */
  {
    char *json = llmr_request_to_json(req);
    assert_string_equal(json, "{\"messages\":[{\"role\":\"user\",\"content\":"
                              "\"x\"}]}");
    llmr_free(json);
  }
  llmr_request_free(req);
  llmr_request_free(NULL);
}

typedef struct bad_case {
  const char *json;
  const char *error; /* a substring the message must contain */
} bad_case;

static const bad_case bad_cases[] = {
    {"", "invalid JSON"},
    {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]", "invalid JSON"},
    {"[]", "expected a JSON object"},
    {"{}", "messages: required"},
    {"{\"messages\":{}}", "messages: expected an array"},
    {"{\"messages\":[]}", "messages: must contain at least one"},
    {"{\"messages\":[42]}", "messages[0]: expected an object"},
    {"{\"messages\":[{\"content\":\"x\"}]}", "messages[0].role"},
    {"{\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":"
     "\"robot\",\"content\":\"x\"}]}",
     "messages[1].role: expected one of"},
    {"{\"messages\":[{\"role\":\"user\"}]}",
     "messages[0].content: required for role user"},
    {"{\"messages\":[{\"role\":\"user\",\"content\":7}]}",
     "messages[0].content: expected a string"},
    {"{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"video\"}]}]}",
     "messages[0].content[0].type: unknown content part type 'video'"},
    {"{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\"}]}]}",
     "messages[0].content[0].text"},
    {"{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
     "\"image_url\":{}}]}]}",
     "messages[0].content[0].image_url.url"},
    {"{\"messages\":[{\"role\":\"tool\",\"content\":\"x\"}]}",
     "messages[0].tool_call_id: required"},
    {"{\"messages\":[{\"role\":\"assistant\"}]}",
     "messages[0].content: an assistant message needs"},
    {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\",\"tool_calls\":[]}]}",
     "messages[0].tool_calls: only assistant"},
    {"{\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"function\":{"
     "\"name\":\"f\"}}]}]}",
     "messages[0].tool_calls[0].id"},
    {"{\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"c\","
     "\"function\":{}}]}]}",
     "messages[0].tool_calls[0].function.name"},
    {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":"
     "\"hot\"}",
     "temperature: expected a number from 0 to 2"},
    {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":3}",
     "temperature"},
    {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"top_p\":-1}",
     "top_p"},
    {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":1.5}",
     "max_tokens: expected a positive integer"},
    {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
     "\"max_completion_tokens\":0}",
     "max_completion_tokens"},
    {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"seed\":\"1\"}",
     "seed: expected an integer"},
    {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stop\":5}",
     "stop: expected a string or an array"},
    {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stop\":[\"\"]}",
     "stop: expected non-empty strings"},
    {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{"
     "\"type\":\"function\",\"function\":{}}]}",
     "tools[0].function.name"},
    {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{"
     "\"type\":\"retrieval\"}]}",
     "tools[0].type"},
    {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{"
     "\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":[]}}]}",
     "tools[0].function.parameters"},
    {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tool_choice\":3}",
     "tool_choice"},
    {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
     "\"response_format\":{}}",
     "response_format.type"},
    {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
     "\"response_format\":{\"type\":\"json_schema\"}}",
     "response_format.json_schema"},
    {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"n\":2}",
     "n: only n=1"},
    {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stop\":\"\"}",
     "stop: expected a non-empty string"},
    {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
     "\"response_format\":{\"type\":\"xml\"}}",
     "response_format.type"},
    {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
     "\"reasoning_effort\":\"extreme\"}",
     "reasoning_effort"},
    {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
     "\"reasoning\":{\"max_tokens\":-5}}",
     "reasoning.max_tokens"},
    {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"user\":1}",
     "user: expected a string"},
};

static void test_from_json_errors(void **state) {
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
    char err[LLMR_ERRBUF_SIZE] = "";
    llmr_request *req = (llmr_request *)&req; /* must be reset to NULL */
    llmr_status st = llmr_request_from_json(bad_cases[i].json, 0, &req, err,
                                            sizeof(err));
    if (st != LLMR_E_INVAL || !strstr(err, bad_cases[i].error))
      fprintf(stderr, "case %zu: status %d, message '%s'\n", i, st, err);
    assert_int_equal(st, LLMR_E_INVAL);
    assert_null(req);
    assert_non_null(strstr(err, bad_cases[i].error));
  }
}

static void test_from_json_round_trip(void **state) {
  const char *in =
      "{\"model\":\"openai/gpt-4o\",\"stream\":true,\"messages\":["
      "{\"role\":\"developer\",\"content\":\"d\"},"
      "{\"role\":\"user\",\"name\":\"ann\",\"content\":[{\"type\":\"text\","
      "\"text\":\"look\"},{\"type\":\"image_url\",\"image_url\":{\"url\":"
      "\"https://example.org/a.png\",\"detail\":\"low\"}}]},"
      "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":"
      "\"c1\",\"type\":\"function\",\"function\":{\"name\":\"f\","
      "\"arguments\":{\"a\":1}}}]},"
      "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"ok\"}],"
      "\"tool_choice\":\"auto\",\"response_format\":{\"type\":\"json_object\"},"
      "\"max_completion_tokens\":9,\"stop\":\"x\",\"seed\":3,\"app\":\"a1\","
      "\"reasoning_effort\":\"low\",\"frequency_penalty\":0.5,"
      "\"temperature\":null}";
  char err[LLMR_ERRBUF_SIZE] = "";
  llmr_request *req = NULL;
  char *out;
  (void)state;
  assert_int_equal(llmr_request_from_json(in, 0, &req, err, sizeof(err)),
                   LLMR_OK);
  assert_string_equal(req->app, "a1");
  assert_int_equal(req->max_tokens, 9);
  out = llmr_request_to_json(req);
  /* model/stream are the call's; arguments given as an object become JSON
   * text; unknown fields (frequency_penalty) pass through */
  assert_string_equal(
      out,
      "{\"messages\":[{\"role\":\"developer\",\"content\":\"d\"},{\"role\":"
      "\"user\",\"content\":[{\"type\":\"text\",\"text\":\"look\"},{\"type\":"
      "\"image_url\",\"image_url\":{\"url\":\"https://example.org/a.png\","
      "\"detail\":\"low\"}}],\"name\":\"ann\"},{\"role\":\"assistant\","
      "\"content\":null,\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\","
      "\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\":1}\"}}]},{"
      "\"role\":\"tool\",\"content\":\"ok\",\"tool_call_id\":\"c1\"}],"
      "\"tool_choice\":\"auto\",\"response_format\":{\"type\":"
      "\"json_object\"},\"max_tokens\":9,\"stop\":[\"x\"],\"seed\":3,"
      "\"reasoning_effort\":\"low\",\"frequency_penalty\":0.5}");
  llmr_free(out);
  llmr_request_free(req);
}

static void test_knobs(void **state) {
  llmr_request *req;
  char *json;
  (void)state;
  assert_int_equal(llmr_request_new(&req), LLMR_OK);
  assert_int_equal(llmr_request_add_message(req, LLMR_ROLE_USER, "see"),
                   LLMR_OK);
  assert_int_equal(
      llmr_request_add_image(req, "data:image/png;base64,AAAA", "low"),
      LLMR_OK);
  assert_int_equal(llmr_request_add_image(req, "https://e.org/b.jpg", NULL),
                   LLMR_OK);
  assert_int_equal(llmr_request_set_tool_choice(req, "get_weather"), LLMR_OK);
  assert_int_equal(llmr_request_set_response_format(
                       req, "{\"type\":\"json_object\"}"),
                   LLMR_OK);
  assert_int_equal(llmr_request_set_reasoning(req, "high", 0), LLMR_OK);
  json = llmr_request_to_json(req);
  assert_string_equal(
      json,
      "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\","
      "\"text\":\"see\"},{\"type\":\"image_url\",\"image_url\":{\"url\":"
      "\"data:image/png;base64,AAAA\",\"detail\":\"low\"}},{\"type\":"
      "\"image_url\",\"image_url\":{\"url\":\"https://e.org/b.jpg\"}}]}],"
      "\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":"
      "\"get_weather\"}},\"response_format\":{\"type\":\"json_object\"},"
      "\"reasoning_effort\":\"high\"}");
  llmr_free(json);
  /* a budget has no OpenAI field: the unified reasoning object keeps it */
  assert_int_equal(llmr_request_set_reasoning(req, NULL, 3000), LLMR_OK);
  assert_string_equal(llmr__reasoning_effort(req), "medium");
  assert_int_equal(llmr_request_set_tool_choice(req, "required"), LLMR_OK);
  assert_int_equal(llmr_request_set_response_format(req, NULL), LLMR_OK);
  json = llmr_request_to_json(req);
  assert_non_null(strstr(json, "\"tool_choice\":\"required\""));
  assert_non_null(strstr(json, "\"reasoning\":{\"max_tokens\":3000}"));
  assert_null(strstr(json, "response_format"));
  llmr_free(json);
  assert_int_equal(llmr_request_set_reasoning(req, NULL, 0), LLMR_OK);
  assert_null(llmr__reasoning_effort(req));
  llmr_request_free(req);
}

static void test_status_table(void **state) {
  (void)state;
  assert_string_equal(llmr_status_name(LLMR_OK), "LLMR_OK");
  assert_string_equal(llmr_status_name(LLMR_E_TIMEOUT), "LLMR_E_TIMEOUT");
  assert_string_equal(llmr_status_name(LLMR_E_ALL_FAILED),
                      "LLMR_E_ALL_FAILED");
  assert_string_equal(llmr_status_name((llmr_status)-999), "LLMR_E_UNKNOWN");
  assert_string_equal(llmr_status_str(LLMR_E_TIMEOUT), "timed out");
  assert_string_equal(llmr_status_str((llmr_status)12345), "unknown status");
  assert_string_equal(llmr_version(), LLMR_VERSION_STRING);
  assert_int_equal(llmr_version_num(), LLMR_VERSION_NUM);
  assert_int_equal(llmr_status_from_http(200), LLMR_OK);
  assert_int_equal(llmr_status_from_http(401), LLMR_E_AUTH);
  assert_int_equal(llmr_status_from_http(402), LLMR_E_PAYMENT);
  assert_int_equal(llmr_status_from_http(404), LLMR_E_NOT_FOUND);
  assert_int_equal(llmr_status_from_http(408), LLMR_E_TIMEOUT);
  assert_int_equal(llmr_status_from_http(422), LLMR_E_BAD_REQUEST);
  assert_int_equal(llmr_status_from_http(429), LLMR_E_RATE_LIMITED);
  assert_int_equal(llmr_status_from_http(500), LLMR_E_SERVER);
  assert_int_equal(llmr_status_from_http(503), LLMR_E_OVERLOADED);
  assert_int_equal(llmr_status_from_http(529), LLMR_E_OVERLOADED);
  assert_int_equal(llmr_status_from_http(302), LLMR_E_PROTOCOL);
}

static void test_retry_after(void **state) {
  (void)state;
  assert_true(llmr_parse_retry_after("7") == 7);
  assert_true(llmr_parse_retry_after(" 12 ") == 12);
  assert_true(llmr_parse_retry_after("0.5") == 0.5);
  assert_true(llmr_parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0);
  {
    double d = llmr_parse_retry_after("Fri, 01 Jan 2100 00:00:00 GMT");
    assert_true(d > 1e9);
  }
  assert_true(llmr_parse_retry_after("soon") == -1);
  assert_true(llmr_parse_retry_after("-3") == -1);
  assert_true(llmr_parse_retry_after("5x") == -1);
  assert_true(llmr_parse_retry_after("") == -1);
  assert_true(llmr_parse_retry_after(NULL) == -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_builder),
      cmocka_unit_test(test_builder_rejects),
      cmocka_unit_test(test_from_json_errors),
      cmocka_unit_test(test_from_json_round_trip),
      cmocka_unit_test(test_knobs),
      cmocka_unit_test(test_status_table),
      cmocka_unit_test(test_retry_after),
  };
  return cmocka_run_group_tests_name("unit/request", tests, NULL, NULL);
}
