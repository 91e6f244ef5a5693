/* The model catalog: the built-in table's integrity, slug lookup, user files
 * merged over it, bad files refused with the field named, capability checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "internal.h"

#include <stdio.h>
#include <string.h>

static void test_builtin_table(void **state) {
  llmr__catalog c = {0};
  char err[LLMR_ERRBUF_SIZE] = "";
  size_t i, providers = 0;
  const char *seen[16];
  (void)state;
  assert_int_equal(llmr__catalog_load_builtin(&c, err, sizeof(err)), LLMR_OK);
  assert_true(c.n >= 40);
  for (i = 0; i < c.n; i++) {
    const llmr__model_info *m = &c.v[i];
    size_t k;
    /* every entry routes to a built-in provider, with prices and a window */
    if (!llmr__builtin_find(m->provider))
      fprintf(stderr, "%s: unknown provider %s\n", m->slug, m->provider);
    assert_non_null(llmr__builtin_find(m->provider));
    assert_true(m->price_input >= 0 && m->price_output >= 0);
    assert_true(m->context_window > 0);
    assert_true(m->caps_known);
    if (i > 0) /* sorted and unique */
      assert_true(strcmp(c.v[i - 1].slug, m->slug) < 0);
    for (k = 0; k < providers; k++)
      if (strcmp(seen[k], m->provider) == 0)
        break;
    if (k == providers && providers < 16)
      seen[providers++] = m->provider;
  }
  assert_true(providers >= 8);
  llmr__catalog_free(&c);
}

static void test_lookup(void **state) {
  llmr__catalog c = {0};
  const llmr__model_info *m;
  (void)state;
  assert_int_equal(llmr__catalog_load_builtin(&c, NULL, 0), LLMR_OK);
  m = llmr__catalog_find(&c, "anthropic/claude-3.5-sonnet");
  assert_non_null(m);
  assert_string_equal(m->provider, "anthropic");
  assert_string_equal(m->model, "claude-3-5-sonnet-20241022");
  assert_true(m->price_input == 3.0 && m->price_output == 15.0);
  assert_true(m->price_cache_read == 0.30 && m->price_cache_write == 3.75);
  m = llmr__catalog_find(&c, "google/gemini-2.5-flash");
  assert_non_null(m);
  assert_string_equal(m->provider, "google");
  assert_string_equal(m->model, "gemini-2.5-flash");
  m = llmr__catalog_find(&c, "meta-llama/llama-3.1-70b-instruct");
  assert_non_null(m);
  assert_string_equal(m->provider, "openrouter");
  assert_string_equal(m->model, "meta-llama/llama-3.1-70b-instruct");
  assert_null(llmr__catalog_find(&c, "openai/no-such-model"));
  assert_true(m->price_cache_write == -1); /* not given: unknown */
  llmr__catalog_free(&c);
}

static void test_user_file_merges(void **state) {
  llmr__catalog c = {0};
  const char *user =
      "{\"models\":[{\"slug\":\"openai/gpt-4o\",\"provider\":\"openai\","
      "\"model\":\"gpt-4o-2024-11-20\",\"price\":{\"input\":2,\"output\":8}},"
      "{\"slug\":\"mycorp/fast\",\"provider\":\"openai\",\"model\":"
      "\"gpt-4o-mini\",\"capabilities\":[\"tools\"]}]}";
  const llmr__model_info *m;
  size_t before;
  (void)state;
  assert_int_equal(llmr__catalog_load_builtin(&c, NULL, 0), LLMR_OK);
  before = c.n;
  assert_int_equal(llmr__catalog_merge_json(&c, user, strlen(user), "user",
                                            NULL, 0),
                   LLMR_OK);
  assert_int_equal(c.n, before + 1);
  m = llmr__catalog_find(&c, "openai/gpt-4o");
  assert_string_equal(m->model, "gpt-4o-2024-11-20");
  assert_true(m->price_input == 2 && m->price_output == 8);
  assert_false(m->caps_known); /* no list given: nothing is checked */
  m = llmr__catalog_find(&c, "mycorp/fast");
  assert_non_null(m);
  assert_int_equal(m->caps, LLMR__CAP_TOOLS);
  llmr__catalog_free(&c);
}

static void test_bad_files(void **state) {
  static const struct {
    const char *json;
    const char *error;
  } cases[] = {
      {"", "expected a JSON object"},
      {"\x01\x02garbage\xff", "expected a JSON object"},
      {"{\"models\":{}}", "expected a JSON object with a \"models\" array"},
      {"{\"models\":[1]}", "models[0]: expected an object"},
      {"{\"models\":[{\"provider\":\"openai\",\"model\":\"m\"}]}",
       "models[0].slug"},
      {"{\"models\":[{\"slug\":\"a/b\",\"model\":\"m\"}]}",
       "models[0].provider"},
      {"{\"models\":[{\"slug\":\"a/b\",\"provider\":\"openai\"}]}",
       "models[0].model"},
      {"{\"models\":[{\"slug\":\"a/b\",\"provider\":\"openai\",\"model\":\"m\","
       "\"price\":{\"input\":-1}}]}",
       "models[0].price.input"},
      {"{\"models\":[{\"slug\":\"a/b\",\"provider\":\"openai\",\"model\":\"m\","
       "\"price\":{\"output\":\"cheap\"}}]}",
       "models[0].price.output"},
      {"{\"models\":[{\"slug\":\"a/b\",\"provider\":\"openai\",\"model\":\"m\","
       "\"capabilities\":[\"telepathy\"]}]}",
       "models[0].capabilities: unknown capability"},
      {"{\"models\":[{\"slug\":\"a/b\",\"provider\":\"openai\",\"model\":\"m\","
       "\"context_window\":0}]}",
       "models[0].context_window"},
  };
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    llmr__catalog c = {0};
    char err[LLMR_ERRBUF_SIZE] = "";
    assert_int_equal(llmr__catalog_merge_json(&c, cases[i].json,
                                              strlen(cases[i].json), "f.json",
                                              err, sizeof(err)),
                     LLMR_E_INVAL);
    if (!strstr(err, cases[i].error))
      fprintf(stderr, "case %zu: '%s'\n", i, err);
    assert_non_null(strstr(err, cases[i].error));
    assert_non_null(strstr(err, "f.json"));
    llmr__catalog_free(&c);
  }
  {
    llmr__catalog c = {0};
    char err[LLMR_ERRBUF_SIZE] = "";
    assert_int_equal(llmr__catalog_load_file(&c, "/nonexistent/models.json",
                                             err, sizeof(err)),
                     LLMR_E_INVAL);
    assert_non_null(strstr(err, "cannot open"));
  }
}

static void test_capabilities(void **state) {
  llmr__catalog c = {0};
  llmr_request *req;
  (void)state;
  assert_int_equal(llmr__catalog_load_builtin(&c, NULL, 0), LLMR_OK);
  assert_int_equal(llmr_request_new(&req), LLMR_OK);
  assert_int_equal(llmr_request_add_message(req, LLMR_ROLE_USER, "look"),
                   LLMR_OK);
  assert_null(llmr__capability_missing(
      llmr__catalog_find(&c, "deepseek/deepseek-reasoner"), req));
  assert_int_equal(llmr_request_add_image(req, "https://example.org/a.png",
                                          NULL),
                   LLMR_OK);
  assert_string_equal(llmr__capability_missing(
                          llmr__catalog_find(&c, "openai/o3-mini"), req),
                      "vision");
  assert_null(llmr__capability_missing(
      llmr__catalog_find(&c, "openai/gpt-4o"), req));
  assert_null(llmr__capability_missing(NULL, req)); /* unknown model */
  assert_int_equal(llmr_request_add_tool(req, "f", NULL, NULL), LLMR_OK);
  assert_string_equal(
      llmr__capability_missing(
          llmr__catalog_find(&c, "deepseek/deepseek-reasoner"), req),
      "tools");
  llmr_request_free(req);
  assert_int_equal(llmr_request_new(&req), LLMR_OK);
  assert_int_equal(llmr_request_add_message(req, LLMR_ROLE_USER, "x"),
                   LLMR_OK);
  assert_int_equal(llmr_request_set_reasoning(req, "high", 0), LLMR_OK);
  assert_string_equal(llmr__capability_missing(
                          llmr__catalog_find(&c, "openai/gpt-4o"), req),
                      "reasoning");
  assert_int_equal(llmr_request_set_response_format(
                       req, "{\"type\":\"json_object\"}"),
                   LLMR_OK);
  /* reasoning + json: deepseek-reasoner has both */
  assert_null(llmr__capability_missing(
      llmr__catalog_find(&c, "deepseek/deepseek-reasoner"), req));
  {
    const char *nojson = "{\"models\":[{\"slug\":\"x/plain\",\"provider\":"
                         "\"openai\",\"model\":\"p\",\"capabilities\":["
                         "\"reasoning\"]}]}";
    assert_int_equal(llmr__catalog_merge_json(&c, nojson, strlen(nojson), "u",
                                              NULL, 0),
                     LLMR_OK);
    assert_string_equal(
        llmr__capability_missing(llmr__catalog_find(&c, "x/plain"), req),
        "json");
  }
  llmr_request_free(req);
  llmr__catalog_free(&c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_builtin_table),
      cmocka_unit_test(test_lookup),
      cmocka_unit_test(test_user_file_merges),
      cmocka_unit_test(test_bad_files),
      cmocka_unit_test(test_capabilities),
  };
  return cmocka_run_group_tests_name("unit/catalog", tests, NULL, NULL);
}
