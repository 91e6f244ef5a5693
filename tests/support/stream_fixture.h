/*
 * The offline stream-fixture driver shared by tests/unit/test_*_stream.c:
 * feed a recorded stream (tests/fixtures/DIR/NAME.sse) through the real SSE
 * parser into a provider's stream_event, whole, split in two at every
 * offset, one byte at a time and in random chunks, and compare each run's
 * event log and final response with NAME.expected.
 *
 * Include after <cmocka.h>.
 */
#ifndef LLMR_TEST_STREAM_FIXTURE_H
#define LLMR_TEST_STREAM_FIXTURE_H

#include "internal.h"
#include "sse.h"

#include <stddef.h>

/* sfx_opts.flags: extra lines in the final-response summary */
enum {
  SFX_SUM_CACHE_WRITE = 1, /* "cache_write=" in the tokens line */
  SFX_SUM_RETRY_AFTER = 2  /* "retry_after=" in the error line */
};

typedef struct sfx_opts {
  const char *model; /* the sink's model name */
  unsigned flags;    /* SFX_SUM_* */
  /* what sfx_run_split returns through *final for a complete stream */
  char *(*final_json)(llmr_response *resp);
} sfx_opts;

/* One run: bytes -> SSE parser -> adapter -> events. */
typedef struct sfx_run {
  llmr_provider *p;
  llmr_response *resp;
  void *state;
  llmr_status st; /* what stream_event returned last (first failure) */
  llmr__buf log;
  int content_events;
  int cancel_at; /* 0: never */
} sfx_run;

/* The SSE callback: hands one event to r->p's stream_event. */
int sfx_on_sse(void *user, const llmr__sse_event *ev);

/* Feed `data` in the chunks cut[0..ncut) name (offsets, increasing) and
 * return the log (caller frees). With `final`, a complete answer is also
 * returned as o->final_json() makes it (NULL when the stream did not
 * complete). */
char *sfx_run_split(const sfx_opts *o, llmr_provider *p, const char *data,
                    size_t len, const size_t *cuts, size_t ncut,
                    int cancel_at, char **final);

typedef struct sfx_fixture {
  char name[128];
  char *data;
  size_t len;
  char *expected; /* without the leading comment lines */
  int cancel_at;
  int no_parse_check;
  char *json; /* NAME.json when there is one, else NULL */
  size_t json_len;
} sfx_fixture;

/* $LLMR_SRCDIR/tests/fixtures/SUB (a static buffer). */
const char *sfx_fixture_dir(const char *sub);

/* Run the fixture whole (*final as in sfx_run_split), split in two at every
 * offset, byte by byte and in random chunks; every log must be expected. */
void sfx_run_fixture(const sfx_opts *o, llmr_provider *p,
                     const sfx_fixture *fx, char **final);

/* Load every fixture under tests/fixtures/SUB (at least min_fixtures), make
 * a test of each running test_fixture with the sfx_fixture as its state,
 * append the `nextra` other tests and run them all as `group`. */
int sfx_main(const char *prog, const char *group, const char *sub,
             size_t min_fixtures, CMUnitTestFunction test_fixture,
             const struct CMUnitTest *extra, size_t nextra);

#endif
