/*
 * libFuzzer target: the OpenAI adapter's fast reader of a non-streaming
 * answer against its cJSON tree reader (tests/support/answer_diff.c). A
 * body the fast path reads must give the very response the tree path
 * gives; a body it declines must leave the response untouched. A
 * difference aborts, so libFuzzer keeps the input.
 *
 * SPDX-License-Identifier: MIT
 */
#include "harness.h"

#include "answer_diff.h"

#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static char why[16384];
  if (answer_diff((const char *)data, size, why, sizeof(why)) ==
      ADIFF_DIFFERENT) {
    fprintf(stderr, "fast and cJSON readers differ:\n%s\n", why);
    abort();
  }
  return 0;
}
