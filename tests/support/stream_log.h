/*
 * Helpers shared by the end-to-end stream tests (tests/integration/
 * test_stream*.c, test_openai.c): a router at the emulator, the hello
 * request, an llmr_stream() event log and its checks, and comparing two
 * final responses to one answer.
 *
 * Include after <cmocka.h>.
 */
#ifndef LLMR_TEST_STREAM_LOG_H
#define LLMR_TEST_STREAM_LOG_H

#include "emu.h"
#include <llmroute.h>

#include <stddef.h>
#include <stdint.h>

/* A router from config JSON (asserts it is accepted; prints the error). */
llmr_router *slog_router_new(const char *conf);
/* A router from emu_config(e, extra). */
llmr_router *slog_router_with(const emu *e, const char *extra);
/* system "Be terse.", user "hello" */
llmr_request *slog_hello(void);

/* ---- an event log -------------------------------------------------------- */

#define SLOG_MAX_EV 4096

typedef struct slog_rec {
  llmr_event_type type;
  char *text;
  size_t len;
  size_t tool_index;
  char *tool_id, *tool_name, *model, *finish;
  llmr_status status;
  int http;
  double t_ms; /* since slog_new() */
  int64_t completion_tokens;
} slog_rec;

typedef struct slog {
  slog_rec ev[SLOG_MAX_EV];
  size_t n;
  int cancel_at_content; /* cancel on this content event (1-based); 0 never */
  int cancel_at_attempt;
  size_t content;
  double t0;
} slog;

int slog_is_content(llmr_event_type t);
/* The llmr_event_cb: records each event into the slog `user`. */
int slog_cb(const llmr_event *ev, void *user);
slog *slog_new(void);
void slog_free(slog *g);
size_t slog_count(const slog *g, llmr_event_type t);
/* The concatenation of one kind of delta (tool calls: of call `idx`). */
char *slog_joined(const slog *g, llmr_event_type t, size_t idx);

/* slog_check_shape flags */
enum {
  SLOG_USAGE_TOKENS = 1, /* USAGE carries the final completion tokens */
  SLOG_JSON_TEXT = 2     /* text deltas add up to the same JSON value */
};

/* ATTEMPT first, USAGE then DONE last, content only after the last
 * ATTEMPT, DONE's finish reason and model, text and reasoning deltas
 * adding up to the response. */
void slog_check_shape(const slog *g, const llmr_response *resp,
                      unsigned flags);

/* ---- comparing final responses ------------------------------------------- */

/* slog_strip_volatile flags */
enum { SLOG_SYNTH_IDS = 1 }; /* synthesised tool-call ids become <synth> */

/* Drop the fields of the final JSON that differ between two calls of one
 * answer: id, created, request_id, attempt durations and wire bytes. */
void slog_strip_volatile(cJSON *j, unsigned flags);
/* a and b print the same JSON once stripped */
void slog_assert_same_answer(const llmr_response *a, const llmr_response *b,
                             unsigned flags);

#endif
