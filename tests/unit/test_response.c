/* The response object's storage: small strings in its own arena (heap once
 * it is full), the inline attempt array, strings moved between responses
 * by llmr__response_move_attempt (hedging), and a response reused after
 * errors. Run under `make asan` these also catch a string left pointing
 * into a freed response's arena, and leaks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "internal.h"

#include <stdio.h>
#include <string.h>

/* Whether p points into r's own struct (its arena), not the heap. */
static int inside(const llmr_response *r, const void *p) {
  return (uintptr_t)p >= (uintptr_t)r && (uintptr_t)p < (uintptr_t)(r + 1);
}

static llmr__attempt plain_attempt(const char *model, const char *provider,
                                   const char *error) {
  llmr__attempt a;
  memset(&a, 0, sizeof(a));
  a.model = (char *)model;
  a.provider = (char *)provider;
  a.error = (char *)error;
  a.status = error ? LLMR_E_SERVER : LLMR_OK;
  a.http_status = error ? 500 : 200;
  a.cost_nanousd = 7;
  return a;
}

static void test_strings_in_arena(void **state) {
  llmr_response *r = llmr__response_new();
  llmr__attempt a = plain_attempt("openai/gpt-4o-mini", "openai", NULL);
  char slug[] = "openai/gpt-4o-mini";
  (void)state;
  assert_non_null(r);
  assert_int_equal(llmr_response_attempt_count(r), 0);
  assert_null(llmr_response_id(r));
  assert_int_equal(llmr__response_add_attempt(r, &a), LLMR_OK);
  assert_int_equal(llmr_response_set_id(r, "chatcmpl-123"), LLMR_OK);
  assert_int_equal(llmr_response_set_finish_reason(r, "stop"), LLMR_OK);
  assert_int_equal(llmr__response_set_answered(r, slug, "openai", "gpt-4o"),
                   LLMR_OK);
  slug[0] = 'X'; /* copied, not borrowed */
  assert_string_equal(llmr_response_model(r), "openai/gpt-4o-mini");
  assert_string_equal(llmr_response_provider(r), "openai");
  assert_string_equal(llmr_response_native_model(r), "gpt-4o");
  assert_string_equal(llmr_response_id(r), "chatcmpl-123");
  assert_string_equal(llmr_response_finish_reason(r), "stop");
  assert_string_equal(llmr_response_attempt_model(r, 0), "openai/gpt-4o-mini");
  assert_string_equal(llmr_response_attempt_provider(r, 0), "openai");
  assert_null(llmr_response_attempt_error(r, 0));
  assert_int_equal(llmr_response_attempt_cost_nanousd(r, 0), 7);
  /* a plain answer's strings take no allocation of their own */
  assert_true(inside(r, llmr_response_model(r)));
  assert_true(inside(r, llmr_response_id(r)));
  assert_true(inside(r, llmr_response_finish_reason(r)));
  assert_true(inside(r, llmr_response_attempt_model(r, 0)));
  /* NULL clears; a replaced string is a new copy */
  assert_int_equal(llmr_response_set_finish_reason(r, NULL), LLMR_OK);
  assert_null(llmr_response_finish_reason(r));
  assert_int_equal(llmr_response_set_id(r, "chatcmpl-456"), LLMR_OK);
  assert_string_equal(llmr_response_id(r), "chatcmpl-456");
  llmr_response_free(r);
  llmr_response_free(NULL);
}

/* The same text again keeps the copy (a stream repeats its id on every
 * chunk), also when the new value is the response's own string. */
static void test_same_text_kept(void **state) {
  llmr_response *r = llmr__response_new();
  const char *id, *err, *type;
  char again[] = "chatcmpl-1";
  (void)state;
  assert_int_equal(llmr_response_set_id(r, "chatcmpl-1"), LLMR_OK);
  id = llmr_response_id(r);
  assert_int_equal(llmr_response_set_id(r, again), LLMR_OK);
  assert_ptr_equal(llmr_response_id(r), id);
  assert_int_equal(llmr_response_set_error(r, LLMR_E_SERVER, "server_error",
                                           "boom", 1, 2.5),
                   LLMR_OK);
  err = llmr_response_error(r);
  type = llmr_response_error_type(r);
  /* what the router does when it rewrites an error: its own strings in */
  assert_int_equal(llmr_response_set_error(r, LLMR_E_ALL_FAILED, type, err,
                                           0, -1),
                   LLMR_OK);
  assert_string_equal(llmr_response_error(r), "boom");
  assert_string_equal(llmr_response_error_type(r), "server_error");
  assert_int_equal(llmr_response_status(r), LLMR_E_ALL_FAILED);
  llmr_response_free(r);
}

/* Past the arena and the two inline attempts: the heap, all freed. */
static void test_overflow_to_heap(void **state) {
  llmr_response *r = llmr__response_new();
  char model[64], err[200];
  size_t i;
  (void)state;
  for (i = 0; i < 40; i++) {
    llmr__attempt a;
    snprintf(model, sizeof(model), "vendor/model-%zu", i);
    memset(err, 'e', sizeof(err) - 1);
    err[sizeof(err) - 1] = '\0';
    snprintf(err, 20, "failure %zu ", i);
    err[strlen(err)] = 'e'; /* keep it long */
    a = plain_attempt(model, "vendor", err);
    assert_int_equal(llmr__response_add_attempt(r, &a), LLMR_OK);
    assert_int_equal(llmr_response_set_error(r, LLMR_E_SERVER, "t", err, 1,
                                             -1),
                     LLMR_OK);
  }
  assert_int_equal(llmr_response_attempt_count(r), 40);
  for (i = 0; i < 40; i++) {
    snprintf(model, sizeof(model), "vendor/model-%zu", i);
    assert_string_equal(llmr_response_attempt_model(r, i), model);
    assert_string_equal(llmr_response_attempt_provider(r, i), "vendor");
    snprintf(err, 20, "failure %zu ", i);
    assert_memory_equal(llmr_response_attempt_error(r, i), err, strlen(err));
    assert_int_equal(strlen(llmr_response_attempt_error(r, i)), 199);
    assert_int_equal(llmr_response_attempt_http_status(r, i), 500);
  }
  /* the arena is full by now: these come from the heap */
  assert_int_equal(llmr__response_set_answered(r, "vendor/model-39", "vendor",
                                               NULL),
                   LLMR_OK);
  assert_false(inside(r, llmr_response_model(r)));
  assert_null(llmr_response_native_model(r));
  llmr_response_free(r); /* leaks show under make asan */
}

/* llmr__grow_inline, the growth that attempts, a call's candidates and
 * header lists share: in place while the inline array has room, then one
 * move to the heap with every element kept, then plain growth. */
static void test_grow_inline(void **state) {
  int inl[3];
  int *arr = inl;
  size_t cap = 3, n;
  (void)state;
  for (n = 0; n < 100; n++) {
    assert_int_equal(llmr__grow_inline((void **)&arr, &cap, n, sizeof(*arr),
                                       inl),
                     0);
    assert_true(n < cap);
    if (n < 3)
      assert_ptr_equal(arr, inl);
    else
      assert_ptr_not_equal(arr, inl);
    if (n == 3)
      assert_int_equal(cap, 6);
    arr[n] = (int)(n * 7 + 1);
  }
  for (n = 0; n < 100; n++)
    assert_int_equal(arr[n], (int)(n * 7 + 1));
  llmr__free(arr);
}

/* A response reused attempt after attempt: reset, fail, reset, answer. */
static void test_reuse_after_errors(void **state) {
  llmr_response *r = llmr__response_new();
  char msg[300];
  int i;
  (void)state;
  for (i = 0; i < 50; i++) {
    llmr__response_reset_attempt(r);
    assert_null(llmr_response_error(r));
    assert_null(llmr_response_id(r));
    /* 100 + i bytes: the arena fills up and later ones go to the heap */
    memset(msg, 'm', sizeof(msg));
    snprintf(msg, 32, "attempt %d failed", i);
    msg[strlen(msg)] = ' ';
    msg[100 + i] = '\0';
    assert_int_equal(llmr_response_set_error(r, LLMR_E_SERVER,
                                             i % 2 ? "server_error" : NULL,
                                             msg, 1, -1),
                     LLMR_OK);
    assert_int_equal(llmr_response_set_id(r, i % 3 ? "id-a" : "id-b"),
                     LLMR_OK);
    assert_int_equal(llmr_response_add_warning(r, "dropped: logprobs"),
                     LLMR_OK);
    assert_string_equal(llmr_response_error(r), msg);
  }
  llmr__response_reset_attempt(r);
  assert_int_equal(llmr_response_warning_count(r), 0);
  assert_int_equal(llmr_response_append_text(r, "hi", 2), LLMR_OK);
  assert_int_equal(llmr_response_set_finish_reason(r, "stop"), LLMR_OK);
  assert_int_equal(llmr_response_add_tool_call(r, "call_1", "f", NULL),
                   LLMR_OK);
  assert_string_equal(llmr_response_text(r), "hi");
  assert_string_equal(llmr_response_finish_reason(r), "stop");
  assert_null(llmr_response_error(r));
  llmr_response_free(r);
}

/* What a hedge does: the scratch response's answer (its strings in the
 * scratch's arena) moves to the call's response, then the scratch is
 * freed. dst_full: the call's arena has no room left, so the moved
 * strings go to the heap. */
static void move_case(int dst_full) {
  llmr_response *dst = llmr__response_new(), *src = llmr__response_new();
  char big[LLMR__RESPONSE_ARENA];
  char *json;
  assert_non_null(dst);
  assert_non_null(src);
  /* dst holds an earlier attempt's failure (reset by the move) */
  assert_int_equal(llmr_response_set_error(dst, LLMR_E_TIMEOUT, "timeout",
                                           "first leg timed out", 1, -1),
                   LLMR_OK);
  assert_int_equal(llmr_response_set_id(dst, "id-first"), LLMR_OK);
  if (dst_full) {
    /* a model name that leaves one byte of the arena */
    size_t n = sizeof(dst->arena) - dst->arena_used - 2;
    llmr__attempt a;
    memset(big, 'x', n);
    big[n] = '\0';
    a = plain_attempt(big, "p", NULL);
    assert_int_equal(llmr__response_add_attempt(dst, &a), LLMR_OK);
    assert_int_equal(dst->arena_used, sizeof(dst->arena) - 1);
    assert_string_equal(llmr_response_attempt_model(dst, 0), big);
  }
  assert_int_equal(llmr_response_set_id(src, "chatcmpl-hedge"), LLMR_OK);
  assert_int_equal(llmr_response_set_finish_reason(src, "length"), LLMR_OK);
  assert_int_equal(llmr_response_append_text(src, "hedged answer", 13),
                   LLMR_OK);
  assert_int_equal(llmr_response_add_tool_call(src, "call_9", "g", "{}"),
                   LLMR_OK);
  assert_int_equal(llmr_response_set_tokens(src, LLMR_TOKENS_PROMPT, 11),
                   LLMR_OK);
  assert_true(inside(src, llmr_response_id(src)));
  assert_int_equal(llmr__response_move_attempt(dst, src), LLMR_OK);
  /* src has dst's reset state: nothing of the first leg is left */
  assert_null(llmr_response_id(src));
  assert_null(llmr_response_error(src));
  assert_null(llmr_response_error_type(src));
  assert_null(llmr_response_finish_reason(src));
  assert_string_equal(llmr_response_text(src), "");
  llmr_response_free(src); /* its arena goes with it */
  assert_string_equal(llmr_response_id(dst), "chatcmpl-hedge");
  assert_string_equal(llmr_response_finish_reason(dst), "length");
  assert_null(llmr_response_error(dst));
  assert_null(llmr_response_error_type(dst));
  assert_string_equal(llmr_response_text(dst), "hedged answer");
  assert_int_equal(llmr_response_tool_call_count(dst), 1);
  assert_string_equal(llmr_response_tool_call_id(dst, 0), "call_9");
  assert_int_equal(llmr_response_tokens(dst, LLMR_TOKENS_PROMPT), 11);
  assert_true(inside(dst, llmr_response_id(dst)) == !dst_full);
  dst->status = LLMR_OK; /* as run_call sets it once the hedge answered */
  json = llmr_response_to_json(dst);
  assert_non_null(json);
  assert_non_null(strstr(json, "\"chatcmpl-hedge\""));
  llmr_free(json);
  llmr_response_free(dst);
}

static void test_move_attempt(void **state) {
  (void)state;
  move_case(0);
  move_case(1);
}

/* A failed hedge's error moves too, and outlives the scratch response. */
static void test_move_error(void **state) {
  llmr_response *dst = llmr__response_new(), *src = llmr__response_new();
  (void)state;
  assert_int_equal(llmr_response_set_error(src, LLMR_E_RATE_LIMITED,
                                           "rate_limit_exceeded",
                                           "slow down", 1, 3),
                   LLMR_OK);
  assert_int_equal(llmr__response_move_attempt(dst, src), LLMR_OK);
  llmr_response_free(src);
  assert_string_equal(llmr_response_error(dst), "slow down");
  assert_string_equal(llmr_response_error_type(dst), "rate_limit_exceeded");
  assert_true(llmr_response_retry_after(dst) == 3);
  llmr_response_free(dst);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_strings_in_arena),
      cmocka_unit_test(test_same_text_kept),
      cmocka_unit_test(test_overflow_to_heap),
      cmocka_unit_test(test_grow_inline),
      cmocka_unit_test(test_reuse_after_errors),
      cmocka_unit_test(test_move_attempt),
      cmocka_unit_test(test_move_error),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
