/* The JSON string writers of src/jscan.c (request bodies in cJSON's
 * style, ledger lines in the ledger's): checked byte for byte against a
 * plain reference escaper, for every byte value at every position of
 * strings long and short enough to take both the eight-at-a-time scan and
 * the byte loop, and, for cJSON's style, against cJSON's own printer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "internal.h"
#include "jscan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The escaper as a table lookup per byte: what json_str must write. */
static void reference(llmr__buf *b, const char *s, size_t n, int cjson) {
  size_t i;
  assert_int_equal(llmr__buf_append(b, "\"", 1), 0);
  for (i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    char tmp[8];
    if (ch == '"')
      strcpy(tmp, "\\\"");
    else if (ch == '\\')
      strcpy(tmp, "\\\\");
    else if (ch == '\n')
      strcpy(tmp, "\\n");
    else if (ch == '\r')
      strcpy(tmp, "\\r");
    else if (ch == '\t')
      strcpy(tmp, "\\t");
    else if (cjson && ch == '\b')
      strcpy(tmp, "\\b");
    else if (cjson && ch == '\f')
      strcpy(tmp, "\\f");
    else if (ch < 0x20 || (!cjson && ch == 0x7f))
      snprintf(tmp, sizeof(tmp), "\\u%04x", ch);
    else {
      tmp[0] = (char)ch;
      tmp[1] = '\0';
    }
    assert_int_equal(llmr__buf_append(b, tmp, strlen(tmp)), 0);
  }
  assert_int_equal(llmr__buf_append(b, "\"", 1), 0);
}

static void check(const char *s, size_t n) {
  llmr__buf got = {0}, want = {0};
  int cjson;
  for (cjson = 0; cjson <= 1; cjson++) {
    llmr__buf_reset(&got);
    llmr__buf_reset(&want);
    /* something before it, as in a body being written */
    assert_int_equal(llmr__buf_append(&got, "[", 1), 0);
    assert_int_equal(llmr__buf_append(&want, "[", 1), 0);
    if (cjson) {
      char *z = strndup(s, n); /* cJSON's style takes C strings */
      assert_non_null(z);
      assert_int_equal(llmr__buf_cjson_str(&got, z), 0);
      reference(&want, z, strlen(z), 1);
      free(z);
    } else {
      assert_int_equal(llmr__buf_json_strn(&got, s, n), 0);
      reference(&want, s, n, 0);
    }
    assert_int_equal(got.len, want.len);
    assert_memory_equal(got.data, want.data, got.len);
    assert_int_equal(got.data[got.len], '\0');
  }
  llmr__buf_free(&got);
  llmr__buf_free(&want);
}

static void test_every_byte_everywhere(void **state) {
  static const size_t lens[] = {1, 7, 8, 9, 15, 16, 17, 31, 40};
  char s[64];
  size_t li, pos;
  int ch;
  (void)state;
  for (li = 0; li < sizeof(lens) / sizeof(lens[0]); li++)
    for (pos = 0; pos < lens[li]; pos++)
      for (ch = 1; ch < 256; ch++) {
        memset(s, 'a', lens[li]);
        s[pos] = (char)ch;
        check(s, lens[li]);
      }
}

static void test_runs_of_escapes(void **state) {
  const char *cases[] = {
      "", "\"", "\\\\\\", "plain text with no escape at all, long enough",
      "\x7f\x7f\x7f\x7f\x7f\x7f\x7f\x7f\x7f", "tab\there\nnew \"quoted\"",
      "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 and \x01\x1f",
  };
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
    check(cases[i], strlen(cases[i]));
}

static void test_matches_cjson_printer(void **state) {
  char s[48];
  int ch, pos;
  (void)state;
  for (pos = 0; pos < 20; pos += 3)
    for (ch = 1; ch < 256; ch++) {
      llmr__buf got = {0};
      cJSON *str;
      char *printed;
      memset(s, 'x', 20);
      s[20] = '\0';
      s[pos] = (char)ch;
      assert_non_null(str = cJSON_CreateString(s));
      assert_non_null(printed = cJSON_PrintUnformatted(str));
      assert_int_equal(llmr__buf_cjson_str(&got, s), 0);
      assert_string_equal(got.data, printed);
      cJSON_free(printed);
      cJSON_Delete(str);
      llmr__buf_free(&got);
    }
}

static void test_null(void **state) {
  llmr__buf b = {0};
  (void)state;
  assert_int_equal(llmr__buf_cjson_str(&b, NULL), 0);
  assert_string_equal(b.data, "null");
  llmr__buf_free(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_every_byte_everywhere),
      cmocka_unit_test(test_runs_of_escapes),
      cmocka_unit_test(test_matches_cjson_printer),
      cmocka_unit_test(test_null),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
