/* TLS through the real verification path: a test CA made at test time,
 * trusted by config (ca_file); a certificate from another CA is refused. */
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
static const char *certdir;

static llmr_response *call_with_ca(const char *ca, const char *host,
                                   llmr_status expect) {
  char conf[1024];
  const char *slugs[] = {"openai/gpt-4o-mini"};
  llmr_router *r;
  llmr_request *req;
  llmr_response *resp = NULL;
  llmr_status st;
  snprintf(conf, sizeof(conf),
           "{\"use_env\": false, \"ca_file\": \"%s/%s\", \"providers\": {"
           "\"openai\": {\"base_url\": \"https://%s:%d/v1\", \"api_key\": "
           "\"sk-test-0000\"}}}",
           certdir, ca, host, E.port);
  assert_int_equal(llmr_router_new(conf, &r), LLMR_OK);
  assert_int_equal(llmr_request_new(&req), LLMR_OK);
  assert_int_equal(llmr_request_add_message(req, LLMR_ROLE_USER, "hi"),
                   LLMR_OK);
  st = llmr_complete(r, slugs, 1, req, &resp);
  if (st != expect)
    fprintf(stderr, "%s: %s\n", llmr_status_name(st),
            llmr_response_error(resp));
  assert_int_equal(st, expect);
  llmr_request_free(req);
  llmr_router_free(r);
  return resp;
}

static void test_trusted_ca(void **state) {
  llmr_response *resp;
  (void)state;
  resp = call_with_ca("ca.pem", "127.0.0.1", LLMR_OK);
  assert_string_equal(llmr_response_text(resp), "Hello from gpt-4o-mini!");
  llmr_response_free(resp);
  resp = call_with_ca("ca.pem", "localhost", LLMR_OK);
  llmr_response_free(resp);
}

static void test_other_ca_refused(void **state) {
  llmr_response *resp;
  (void)state;
  resp = call_with_ca("other-ca.pem", "127.0.0.1", LLMR_E_TLS);
  assert_non_null(llmr_response_error(resp));
  assert_int_equal(llmr_response_http_status(resp), 0);
  assert_int_equal(emu_count(&E, NULL), 0); /* nothing reached the server */
  llmr_response_free(resp);
}

static void test_system_store_refuses_test_ca(void **state) {
  /* no ca_file: the system trust store must not accept the test CA */
  char conf[512];
  const char *slugs[] = {"openai/gpt-4o-mini"};
  llmr_router *r;
  llmr_request *req;
  llmr_response *resp = NULL;
  (void)state;
  snprintf(conf, sizeof(conf),
           "{\"use_env\": false, \"providers\": {\"openai\": {\"base_url\": "
           "\"https://127.0.0.1:%d/v1\", \"api_key\": \"k\"}}}",
           E.port);
  assert_int_equal(llmr_router_new(conf, &r), LLMR_OK);
  assert_int_equal(llmr_request_new(&req), LLMR_OK);
  assert_int_equal(llmr_request_add_message(req, LLMR_ROLE_USER, "hi"),
                   LLMR_OK);
  assert_int_equal(llmr_complete(r, slugs, 1, req, &resp), LLMR_E_TLS);
  llmr_response_free(resp);
  llmr_request_free(req);
  llmr_router_free(r);
}

static int setup(void **state) {
  (void)state;
  if (!(certdir = emu_make_certs()))
    return -1;
  return emu_start_tls(&E, certdir);
}

static int teardown(void **state) {
  char cmd[512];
  (void)state;
  emu_stop(&E);
  snprintf(cmd, sizeof(cmd), "rm -rf %s", certdir);
  return system(cmd) == 0 ? 0 : -1;
}

static int reset(void **state) {
  (void)state;
  return emu_reset(&E);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(test_trusted_ca, reset),
      cmocka_unit_test_setup(test_other_ca_refused, reset),
      cmocka_unit_test_setup(test_system_store_refuses_test_ca, reset),
  };
  return cmocka_run_group_tests_name("integration/tls", tests, setup,
                                     teardown);
}
