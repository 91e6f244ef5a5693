/*
 * The same program against OpenAI, Anthropic and Gemini through the
 * emulator, changing only the slug: a multi-turn tool-use conversation must
 * give the same normalised answer, tool calls, finish reasons and usage from
 * all three (issue 3's "done when"). The emulator validates each dialect's
 * request like the real service (tool_result pairing, roles, schema
 * keywords), so a 200 means the translation was accepted.
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

static emu E;
static llmr_router *R;

typedef struct provider_case {
  const char *slug;
  const char *native;  /* the model id the emulator sees */
  const char *usage1;  /* native usage of turn 1 */
  const char *usage2;  /* native usage of turn 2 */
  const char *extra;   /* dialect-specific fields of the ok action */
  const char *dialect; /* as the emulator logs it */
} provider_case;

/* Normalised: turn 1 prompt 50 (10 cached), completion 20; turn 2 prompt
 * 80 (0 cached), completion 12 including 4 reasoning tokens. */
static const provider_case cases[] = {
    {"openai/gpt-4o", "gpt-4o",
     "{\"prompt_tokens\":50,\"completion_tokens\":20,\"total_tokens\":70,"
     "\"prompt_tokens_details\":{\"cached_tokens\":10},"
     "\"completion_tokens_details\":{\"reasoning_tokens\":0}}",
     "{\"prompt_tokens\":80,\"completion_tokens\":12,\"total_tokens\":92,"
     "\"prompt_tokens_details\":{\"cached_tokens\":0},"
     "\"completion_tokens_details\":{\"reasoning_tokens\":4}}",
     "", "openai"},
    /* Anthropic: input_tokens excludes cache reads and writes */
    {"anthropic/claude-sonnet-4.5", "claude-sonnet-4-5-20250929",
     "{\"input_tokens\":40,\"output_tokens\":20,"
     "\"cache_read_input_tokens\":10,\"cache_creation_input_tokens\":0}",
     "{\"input_tokens\":80,\"output_tokens\":12,"
     "\"cache_read_input_tokens\":0,\"cache_creation_input_tokens\":0,"
     "\"output_tokens_details\":{\"thinking_tokens\":4}}",
     "", "anthropic"},
    /* Gemini: candidates exclude thoughts; prompt includes cached */
    {"google/gemini-2.5-flash", "gemini-2.5-flash",
     "{\"promptTokenCount\":50,\"candidatesTokenCount\":20,"
     "\"cachedContentTokenCount\":10,\"totalTokenCount\":70}",
     "{\"promptTokenCount\":80,\"candidatesTokenCount\":8,"
     "\"thoughtsTokenCount\":4,\"totalTokenCount\":92}",
     ",\"with_ids\":true", "gemini"},
};

static const char *const answer = "Paris: 18C and sunny. Oslo: -3C and snow.";

static void script(const provider_case *c) {
  char s[4096];
  snprintf(s, sizeof(s),
           "{\"model\":\"%s\",\"steps\":["
           "{\"kind\":\"ok\",\"text\":null,\"tool_calls\":["
           "{\"id\":\"call_p\",\"name\":\"get_weather\",\"arguments\":{"
           "\"city\":\"Paris\"}},"
           "{\"id\":\"call_o\",\"name\":\"get_weather\",\"arguments\":{"
           "\"city\":\"Oslo\",\"unit\":\"celsius\"}}],\"usage\":%s%s},"
           "{\"kind\":\"ok\",\"text\":\"%s\",\"usage\":%s}]}",
           c->native, c->usage1, c->extra, answer, c->usage2);
  assert_int_equal(emu_script(&E, s), 0);
}

static llmr_request *first_turn(void) {
  llmr_request *req;
  assert_int_equal(llmr_request_new(&req), LLMR_OK);
  assert_int_equal(llmr_request_add_message(req, LLMR_ROLE_SYSTEM,
                                            "You answer weather questions."),
                   LLMR_OK);
  assert_int_equal(llmr_request_add_message(req, LLMR_ROLE_USER,
                                            "Weather in Paris and Oslo?"),
                   LLMR_OK);
  assert_int_equal(
      llmr_request_add_tool(
          req, "get_weather", "Current weather for a city",
          "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":"
          "\"string\"},\"unit\":{\"type\":\"string\",\"enum\":[\"celsius\","
          "\"fahrenheit\"]}},\"required\":[\"city\"],"
          "\"additionalProperties\":false}"),
      LLMR_OK);
  assert_int_equal(llmr_request_set_max_tokens(req, 256), LLMR_OK);
  return req;
}

static void assert_json_equal(const char *a, const char *b) {
  cJSON *ja = cJSON_Parse(a), *jb = cJSON_Parse(b);
  if (!cJSON_Compare(ja, jb, 1))
    fprintf(stderr, "JSON differs: %s vs %s\n", a, b);
  assert_true(cJSON_Compare(ja, jb, 1));
  cJSON_Delete(ja);
  cJSON_Delete(jb);
}

static void run_case(const provider_case *c) {
  llmr_request *req = first_turn();
  llmr_response *resp = NULL;
  const char *slugs[1];
  cJSON *got;
  size_t i;

  slugs[0] = c->slug;
  script(c);
  /* turn 1: two parallel tool calls */
  if (llmr_complete(R, slugs, 1, req, &resp) != LLMR_OK)
    fprintf(stderr, "%s turn 1: %s\n", c->slug, llmr_response_error(resp));
  assert_int_equal(llmr_response_status(resp), LLMR_OK);
  assert_string_equal(llmr_response_model(resp), c->slug);
  assert_string_equal(llmr_response_native_model(resp), c->native);
  assert_string_equal(llmr_response_finish_reason(resp), "tool_calls");
  assert_string_equal(llmr_response_text(resp), "");
  assert_int_equal(llmr_response_tool_call_count(resp), 2);
  assert_string_equal(llmr_response_tool_call_id(resp, 0), "call_p");
  assert_string_equal(llmr_response_tool_call_id(resp, 1), "call_o");
  assert_string_equal(llmr_response_tool_call_name(resp, 0), "get_weather");
  assert_json_equal(llmr_response_tool_call_arguments(resp, 0),
                    "{\"city\":\"Paris\"}");
  assert_json_equal(llmr_response_tool_call_arguments(resp, 1),
                    "{\"city\":\"Oslo\",\"unit\":\"celsius\"}");
  assert_int_equal(llmr_response_tokens(resp, LLMR_TOKENS_PROMPT), 50);
  assert_int_equal(llmr_response_tokens(resp, LLMR_TOKENS_COMPLETION), 20);
  assert_int_equal(llmr_response_tokens(resp, LLMR_TOKENS_CACHED), 10);
  assert_int_equal(llmr_response_tokens(resp, LLMR_TOKENS_REASONING), 0);
  got = emu_request(&E, -1);
  assert_string_equal(cJSON_GetObjectItem(got, "dialect")->valuestring,
                      c->dialect);
  cJSON_Delete(got);

  /* turn 2: the assistant's calls and both results go back */
  assert_int_equal(llmr_request_add_message(req, LLMR_ROLE_ASSISTANT, NULL),
                   LLMR_OK);
  for (i = 0; i < 2; i++)
    assert_int_equal(
        llmr_request_add_tool_call(req, llmr_response_tool_call_id(resp, i),
                                   llmr_response_tool_call_name(resp, i),
                                   llmr_response_tool_call_arguments(resp, i)),
        LLMR_OK);
  assert_int_equal(llmr_request_add_tool_result(req, "call_p",
                                                "{\"temp_c\":18,\"sky\":"
                                                "\"sunny\"}"),
                   LLMR_OK);
  assert_int_equal(
      llmr_request_add_tool_result(req, "call_o",
                                   "{\"temp_c\":-3,\"sky\":\"snow\"}"),
      LLMR_OK);
  llmr_response_free(resp);
  resp = NULL;
  if (llmr_complete(R, slugs, 1, req, &resp) != LLMR_OK)
    fprintf(stderr, "%s turn 2: %s\n", c->slug, llmr_response_error(resp));
  assert_int_equal(llmr_response_status(resp), LLMR_OK);
  assert_string_equal(llmr_response_text(resp), answer);
  assert_string_equal(llmr_response_finish_reason(resp), "stop");
  assert_int_equal(llmr_response_tool_call_count(resp), 0);
  assert_int_equal(llmr_response_tokens(resp, LLMR_TOKENS_PROMPT), 80);
  assert_int_equal(llmr_response_tokens(resp, LLMR_TOKENS_COMPLETION), 12);
  assert_int_equal(llmr_response_tokens(resp, LLMR_TOKENS_TOTAL), 92);
  assert_int_equal(llmr_response_tokens(resp, LLMR_TOKENS_REASONING), 4);
  assert_int_equal(llmr_response_tokens(resp, LLMR_TOKENS_CACHED), 0);
  assert_int_equal(emu_count(&E, c->native), 2);
  llmr_response_free(resp);
  llmr_request_free(req);
}

static void test_openai(void **state) {
  (void)state;
  run_case(&cases[0]);
}
static void test_anthropic(void **state) {
  (void)state;
  run_case(&cases[1]);
}
static void test_gemini(void **state) {
  (void)state;
  run_case(&cases[2]);
}

/* The same failure from each provider, in its own words, comes back as the
 * same normalised error class. */
static void test_errors_normalise(void **state) {
  static const char *const presets[] = {"rate_limit", "overloaded",
                                        "server_error", "auth", "not_found",
                                        "context_length"};
  static const llmr_status expect[] = {
      LLMR_E_RATE_LIMITED, LLMR_E_OVERLOADED, LLMR_E_SERVER,
      LLMR_E_AUTH,         LLMR_E_NOT_FOUND,  LLMR_E_CONTEXT_LENGTH};
  size_t p, k;
  (void)state;
  for (p = 0; p < sizeof(presets) / sizeof(presets[0]); p++) {
    for (k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
      char s[512];
      const char *slugs[1];
      llmr_request *req = first_turn();
      llmr_response *resp = NULL;
      slugs[0] = cases[k].slug;
      if (k == 2 && expect[p] == LLMR_E_CONTEXT_LENGTH)
        /* the emulator has no Gemini preset for it: Google's own words */
        snprintf(s, sizeof(s),
                 "{\"model\":\"%s\",\"steps\":[{\"kind\":\"error\","
                 "\"status\":400,\"body\":{\"error\":{\"code\":400,"
                 "\"message\":\"The input token count (1200000) exceeds the "
                 "maximum number of tokens allowed (1048576).\",\"status\":"
                 "\"INVALID_ARGUMENT\"}}}]}",
                 cases[k].native);
      else
        snprintf(s, sizeof(s),
                 "{\"model\":\"%s\",\"steps\":[{\"kind\":\"error\","
                 "\"preset\":\"%s\"}]}",
                 cases[k].native, presets[p]);
      assert_int_equal(emu_script(&E, s), 0);
      llmr_complete(R, slugs, 1, req, &resp);
      if (llmr_response_status(resp) != expect[p])
        fprintf(stderr, "%s %s: %s (%s)\n", cases[k].slug, presets[p],
                llmr_status_name(llmr_response_status(resp)),
                llmr_response_error(resp));
      assert_int_equal(llmr_response_status(resp), expect[p]);
      assert_non_null(llmr_response_error_type(resp));
      assert_int_equal(llmr_response_retryable(resp),
                       expect[p] == LLMR_E_RATE_LIMITED ||
                           expect[p] == LLMR_E_OVERLOADED ||
                           expect[p] == LLMR_E_SERVER);
      if (expect[p] == LLMR_E_RATE_LIMITED && k == 2) /* Gemini RetryInfo */
        assert_true(llmr_response_retry_after(resp) > 0);
      llmr_response_free(resp);
      llmr_request_free(req);
    }
  }
}

/* Several system messages, merged user turns, an image, stop, seed and a
 * reasoning budget go through every dialect's validator (models with
 * vision and reasoning in the catalog). */
static void test_breadth_accepted(void **state) {
  static const char *const slugs_native[][2] = {
      {"openai/o4-mini", "o4-mini"},
      {"anthropic/claude-sonnet-4.5", "claude-sonnet-4-5-20250929"},
      {"google/gemini-2.5-flash", "gemini-2.5-flash"}};
  size_t k;
  (void)state;
  for (k = 0; k < 3; k++) {
    const char *slugs[1];
    llmr_request *req;
    llmr_response *resp = NULL;
    char s[256];
    slugs[0] = slugs_native[k][0];
    snprintf(s, sizeof(s),
             "{\"model\":\"%s\",\"steps\":[{\"kind\":\"ok\",\"text\":"
             "\"{\\\"ok\\\":true}\"}]}",
             slugs_native[k][1]);
    assert_int_equal(emu_script(&E, s), 0);
    assert_int_equal(llmr_request_new(&req), LLMR_OK);
    assert_int_equal(llmr_request_add_message(req, LLMR_ROLE_SYSTEM, "sys"),
                     LLMR_OK);
    assert_int_equal(llmr_request_add_message(req, LLMR_ROLE_SYSTEM, "sys2"),
                     LLMR_OK);
    assert_int_equal(llmr_request_add_message(req, LLMR_ROLE_USER, "a"),
                     LLMR_OK);
    assert_int_equal(llmr_request_add_message(req, LLMR_ROLE_USER, "b"),
                     LLMR_OK);
    assert_int_equal(
        llmr_request_add_image(req, "data:image/png;base64,iVBORw0KGgo=", NULL),
        LLMR_OK);
    assert_int_equal(llmr_request_set_temperature(req, 0.5), LLMR_OK);
    assert_int_equal(llmr_request_add_stop(req, "END"), LLMR_OK);
    assert_int_equal(llmr_request_set_seed(req, 3), LLMR_OK);
    assert_int_equal(llmr_request_set_reasoning(req, NULL, 2048), LLMR_OK);
    assert_int_equal(llmr_request_set_max_tokens(req, 4096), LLMR_OK);
    llmr_complete(R, slugs, 1, req, &resp);
    if (llmr_response_status(resp) != LLMR_OK)
      fprintf(stderr, "%s: %s\n", slugs[0], llmr_response_error(resp));
    assert_int_equal(llmr_response_status(resp), LLMR_OK);
    assert_string_equal(llmr_response_text(resp), "{\"ok\":true}");
    llmr_response_free(resp);
    llmr_request_free(req);
  }
}

static int setup(void **state) {
  char conf[1024];
  (void)state;
  if (emu_start(&E, NULL) != 0)
    return -1;
  snprintf(conf, sizeof(conf),
           "{\"use_env\": false, \"policy\": {\"cooldown\": false}, "
           "\"providers\": {"
           "\"openai\": {\"base_url\": \"%s/v1\", \"api_key\": \"sk-t\"},"
           "\"anthropic\": {\"base_url\": \"%s\", \"api_key\": \"sk-ant-t\"},"
           "\"google\": {\"base_url\": \"%s\", \"api_key\": \"g-t\"}}}",
           E.base, E.base, E.base);
  return llmr_router_new(conf, &R) == LLMR_OK ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  llmr_router_free(R);
  emu_stop(&E);
  return 0;
}

static int reset(void **state) {
  (void)state;
  return emu_reset(&E);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(test_openai, reset),
      cmocka_unit_test_setup(test_anthropic, reset),
      cmocka_unit_test_setup(test_gemini, reset),
      cmocka_unit_test_setup(test_errors_normalise, reset),
      cmocka_unit_test_setup(test_breadth_accepted, reset),
  };
  return cmocka_run_group_tests_name("integration/providers", tests, setup,
                                     teardown);
}
