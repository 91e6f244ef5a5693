/*
 * libFuzzer target: the gemini adapter -- its stream_event behind the SSE
 * parser (when it has one), parse_response and classify_error, all on the
 * same input (tests/fuzz/harness.c).
 *
 * SPDX-License-Identifier: MIT
 */
#include "harness.h"

static const char *const builtins[] = {"google"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  return fz_provider_run(builtins, sizeof(builtins) / sizeof(builtins[0]),
                         data, size);
}
