/*
 * libFuzzer target: the SSE parser (src/sse.c).
 *
 * The input is a byte stream. It is parsed twice -- fed whole, and cut into
 * chunks at points drawn from the input's hash (harness.h), on the same
 * parser after llmr__sse_reset() -- and the two event logs (every field of
 * every event, the final status, truncated, reconnection time) must be
 * identical: chunking must never change what the parser reports. Each
 * event is also checked against the header's promises (NUL-terminated
 * fields, no CR/LF in a name or id, no CR in data, data within the cap).
 * The line cap and the event at which the callback aborts are drawn from
 * the hash too.
 *
 * SPDX-License-Identifier: MIT
 */
#include "harness.h"

#include "internal.h"
#include "sse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct log_ctx {
  llmr__buf log;
  size_t cap; /* effective max_line */
  int events;
  int abort_at; /* 0: never */
} log_ctx;

static void fail(const char *what) {
  fprintf(stderr, "fuzz_sse: %s\n", what);
  abort();
}

static void put(llmr__buf *b, const void *p, size_t n) {
  if (llmr__buf_append(b, (const char *)&n, sizeof(n)) != 0 ||
      (n && llmr__buf_append(b, p, n) != 0))
    fail("out of memory");
}

static int on_event(void *user, const llmr__sse_event *ev) {
  log_ctx *c = user;
  if (!ev->event || ev->event[ev->event_len] != '\0' ||
      memchr(ev->event, '\r', ev->event_len) ||
      memchr(ev->event, '\n', ev->event_len))
    fail("bad event name");
  if (!ev->data || ev->data[ev->data_len] != '\0' ||
      memchr(ev->data, '\r', ev->data_len))
    fail("bad data");
  if (ev->data_len > c->cap)
    fail("data longer than max_line");
  if (ev->id && (ev->id[ev->id_len] != '\0' ||
                 memchr(ev->id, '\0', ev->id_len) ||
                 memchr(ev->id, '\r', ev->id_len) ||
                 memchr(ev->id, '\n', ev->id_len)))
    fail("bad id");
  if (!ev->id && ev->id_len)
    fail("id_len without id");
  if (ev->retry_ms < -1)
    fail("bad retry");
  put(&c->log, ev->event, ev->event_len);
  put(&c->log, ev->data, ev->data_len);
  put(&c->log, ev->id ? "I" : "N", 1);
  if (ev->id)
    put(&c->log, ev->id, ev->id_len);
  put(&c->log, &ev->retry_ms, sizeof(ev->retry_ms));
  return ++c->events == c->abort_at;
}

static void end_log(log_ctx *c, llmr__sse_parser *p, llmr_status st) {
  long reconnect = llmr__sse_reconnect_ms(p);
  int truncated = llmr__sse_truncated(p);
  put(&c->log, "E", 1);
  put(&c->log, &st, sizeof(st));
  put(&c->log, &truncated, sizeof(truncated));
  put(&c->log, &reconnect, sizeof(reconnect));
  if (st == LLMR_E_ABORTED && c->events != c->abort_at)
    fail("ABORTED without the callback asking");
  if (st != LLMR_OK && !truncated)
    fail("an error but not truncated");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *d = (const char *)data;
  llmr__sse_parser p, zero;
  log_ctx whole, cut;
  fz_rng rng;
  fz_cutter cutter;
  size_t max_line, off = 0, guard = 0;
  llmr_status st;
  int abort_at;

  fz_seed(&rng, data, size);
  max_line = fz_below(&rng, 2) ? 0 : 1 + fz_below(&rng, 256);
  abort_at = fz_below(&rng, 4) == 0 ? 1 + (int)fz_below(&rng, 6) : 0;
  memset(&whole, 0, sizeof(whole));
  memset(&cut, 0, sizeof(cut));
  whole.cap = cut.cap = max_line ? max_line : LLMR__SSE_DEFAULT_MAX_LINE;
  whole.abort_at = cut.abort_at = abort_at;

  /* 1. fed whole */
  llmr__sse_init(&p, max_line, on_event, &whole);
  st = llmr__sse_feed(&p, d, size);
  if (st == LLMR_OK)
    st = llmr__sse_finish(&p);
  else if (llmr__sse_finish(&p) != st)
    fail("finish forgot the sticky error");
  end_log(&whole, &p, st);

  /* 2. cut into chunks, same parser after a reset */
  llmr__sse_reset(&p);
  p.user = &cut;
  fz_cutter_init(&cutter, &rng);
  st = LLMR_OK;
  while (off < size && st == LLMR_OK) {
    size_t n = fz_cut(&cutter, size - off);
    if (n == 0 && ++guard > 64)
      n = 1;
    st = llmr__sse_feed(&p, d + off, n);
    off += n;
  }
  if (st == LLMR_OK)
    st = llmr__sse_finish(&p);
  else if (llmr__sse_finish(&p) != st)
    fail("finish forgot the sticky error");
  end_log(&cut, &p, st);
  llmr__sse_free(&p);

  if (whole.log.len != cut.log.len ||
      memcmp(whole.log.data, cut.log.data, whole.log.len) != 0) {
    fprintf(stderr,
            "fuzz_sse: chunking changed the result: whole %d events, cut "
            "%d events (max_line %zu, abort_at %d, cut style %d)\n",
            whole.events, cut.events, max_line, abort_at, cutter.style);
    abort();
  }
  llmr__buf_free(&whole.log);
  llmr__buf_free(&cut.log);

  /* 3. an all-zero parser is valid: events are parsed and dropped */
  memset(&zero, 0, sizeof(zero));
  if (llmr__sse_feed(&zero, d, size) == LLMR_OK)
    (void)llmr__sse_finish(&zero);
  llmr__sse_free(&zero);
  return 0;
}
