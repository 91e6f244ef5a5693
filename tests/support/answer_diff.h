/*
 * The OpenAI adapter's fast answer reader against its cJSON tree reader
 * (src/providers/openai.c): one body through both, the two responses
 * compared field by field. Used by tests/unit/test_openai_fast.c and the
 * fuzz target tests/fuzz/fuzz_openai_answer.c.
 */
#ifndef LLMR_TEST_ANSWER_DIFF_H
#define LLMR_TEST_ANSWER_DIFF_H

#include <stddef.h>

enum {
  ADIFF_DECLINED = 0, /* the fast path left it to cJSON, resp untouched */
  ADIFF_SAME = 1,     /* the fast path read it, exactly as cJSON's did */
  ADIFF_DIFFERENT = -1
};

/* why (when not NULL) gets both readings on ADIFF_DIFFERENT. */
int answer_diff(const char *body, size_t len, char *why, size_t why_size);

#endif
