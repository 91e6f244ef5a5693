/*
 * Shared libFuzzer harness (tests/fuzz/README.md).
 *
 * The input is used verbatim as a byte stream or a body; everything else a
 * run needs (where the stream is cut into chunks, when the callback
 * cancels, which HTTP status an error body comes with) is drawn from a
 * PRNG seeded by a hash of the input, so every mutation also moves the
 * cut points and a crash file reproduces exactly.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef LLMR_FUZZ_HARNESS_H
#define LLMR_FUZZ_HARNESS_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct fz_rng {
  uint64_t s;
} fz_rng;

/* Seed from the input bytes (FNV-1a, then splitmix64 steps). */
void fz_seed(fz_rng *r, const uint8_t *data, size_t size);
uint64_t fz_next(fz_rng *r);
/* Uniform in [0, n); 0 when n is 0. */
size_t fz_below(fz_rng *r, size_t n);

/* How a stream is cut: fz_cutter_init picks a style (whole, byte by
 * byte, small, large, mixed with empty feeds) and fz_cut returns the next
 * chunk length, 0..left (0 only as an extra empty feed while left > 0). */
typedef struct fz_cutter {
  fz_rng *rng;
  int style;
} fz_cutter;
void fz_cutter_init(fz_cutter *c, fz_rng *r);
size_t fz_cut(fz_cutter *c, size_t left);

/*
 * One run of a provider adapter on the input, as the router drives it:
 *  1. vt->stream_event (when the adapter has one) behind the real SSE
 *     parser, the input cut by the cutter, with a sink whose callback reads
 *     every event and sometimes cancels; then what the router does at the
 *     end of a stream (finish_calls or estimate_usage, the response
 *     document);
 *  2. vt->parse_response with the input as a 200 body;
 *  3. vt->classify_error with the input as the body of an error status.
 * `builtins` names built-in providers whose adapter is fuzzed (one is
 * picked per input, so dialect options vary too); they must share one
 * adapter. Returns 0.
 */
int fz_provider_run(const char *const *builtins, size_t n_builtins,
                    const uint8_t *data, size_t size);

#endif
