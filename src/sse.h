/*
 * Incremental Server-Sent-Events parser (internal).
 *
 * Implements WHATWG HTML "Interpreting an event stream" for byte chunks of
 * any size, as libcurl's write callback delivers them: chunks are not
 * NUL-terminated, may end anywhere (inside a line, a CRLF pair, the BOM or a
 * UTF-8 sequence) and may contain NUL bytes. The body is never copied whole:
 * only a line cut by a chunk boundary is carried, and only the current
 * event's data / event name / last id are buffered. Buffers grow to the
 * largest event seen and are reused, so steady state does not allocate.
 *
 * Deviation from the spec, on purpose: bytes are not UTF-8-decoded, so an
 * invalid UTF-8 sequence reaches the callback as-is instead of as U+FFFD.
 * Line splitting is unaffected (CR and LF never occur inside UTF-8
 * sequences); the consumer's JSON parser sees the original bytes.
 *
 * Not thread-safe per parser; none of these functions may be called on a
 * parser from inside its own callback.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef LLMR_SSE_H
#define LLMR_SSE_H

#include <stddef.h>

#include "llmroute.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Default cap for llmr__sse_init(max_line = 0): 1 MiB. */
#define LLMR__SSE_DEFAULT_MAX_LINE ((size_t)1 << 20)

/* One dispatched event. Every pointer is valid only during the callback. */
typedef struct llmr__sse_event {
  /* Value of the last `event:` field of this event, "" / 0 if none. The
   * spec's default type "message" is left to the caller. NUL-terminated. */
  const char *event;
  size_t event_len;
  /* The event's `data:` values joined with '\n' (final '\n' removed).
   * NUL-terminated; may also contain NUL bytes, so use data_len. */
  const char *data;
  size_t data_len;
  /* Last event ID: the last valid `id:` field seen so far in the stream
   * (it persists across events, per spec). NULL / 0 if the stream never
   * set one; "" / 0 after an empty `id:`. NUL-terminated. */
  const char *id;
  size_t id_len;
  /* The value of a valid `retry:` field inside this event, in ms (values
   * too large for a long are clamped to LONG_MAX); -1 if none. */
  long retry_ms;
} llmr__sse_event;

/* Called once per dispatched event. Return 0 to go on, non-zero to abort:
 * the feed then returns LLMR_E_ABORTED, and so does every later feed/finish
 * until llmr__sse_reset(). */
typedef int (*llmr__sse_event_cb)(void *user, const llmr__sse_event *ev);

/* A growable byte buffer; internal. */
typedef struct llmr__sse_buf {
  char *ptr;
  size_t len;
  size_t cap;
} llmr__sse_buf;

/*
 * Parser state. Fields are private except `truncated`. An all-zero struct
 * is valid: it behaves as after llmr__sse_init(p, 0, NULL, NULL) (events
 * are parsed and dropped), and llmr__sse_free() on it is a no-op.
 */
typedef struct llmr__sse_parser {
  llmr__sse_event_cb cb;
  void *user;
  size_t max_line;     /* 0 = LLMR__SSE_DEFAULT_MAX_LINE */
  llmr__sse_buf line;  /* carry: a line cut by a chunk boundary */
  llmr__sse_buf data;  /* data buffer, each value followed by '\n' */
  llmr__sse_buf event; /* event type buffer */
  llmr__sse_buf id;    /* last event ID buffer */
  long retry_ms;       /* retry: of the current event (if has_retry) */
  long reconnect_ms;   /* stream's reconnection time (if has_reconnect) */
  llmr_status err;     /* sticky: PROTOCOL, NOMEM or ABORTED */
  unsigned char bom;   /* BOM bytes matched at stream start; 3 = past it */
  unsigned char cr;    /* last byte seen was a CR: skip a following LF */
  unsigned char in_event;  /* a field line was seen since the blank line */
  unsigned char has_id;    /* an id: field has been accepted */
  unsigned char has_retry; /* the current event carried a valid retry: */
  unsigned char has_reconnect;
  /* Public, set by llmr__sse_finish(): 1 if the stream did not end on an
   * event boundary (see there). */
  unsigned char truncated;
} llmr__sse_parser;

/* Initialize *p. max_line caps one line and one event's joined data, in
 * bytes (0 = 1 MiB). cb may be NULL (events are dropped). Allocates
 * nothing. Pair with llmr__sse_free(). */
void llmr__sse_init(llmr__sse_parser *p, size_t max_line,
                    llmr__sse_event_cb cb, void *user);

/*
 * Parse the next len bytes of the stream (buf need not be NUL-terminated;
 * len 0 is fine). Calls the callback for each event completed by a blank
 * line, in order, before returning.
 * Returns LLMR_OK, or a sticky error (every later feed/finish returns it
 * until llmr__sse_reset()):
 *  - LLMR_E_PROTOCOL: a line, or the joined data of one event, is longer
 *    than max_line. Raised as soon as the limit is crossed, even before the
 *    line ends, so memory stays bounded.
 *  - LLMR_E_NOMEM: a buffer could not grow.
 *  - LLMR_E_ABORTED: the callback returned non-zero.
 * Events dispatched before the error have been delivered.
 */
llmr_status llmr__sse_feed(llmr__sse_parser *p, const char *buf, size_t len);

/*
 * End of stream. Per spec an event not yet ended by a blank line is
 * discarded, never dispatched. Sets p->truncated to 1 when the stream did
 * not end on an event boundary: it stopped inside a line, or a field line
 * (anything but a comment) came after the last blank line -- for instance
 * a final "data: x\n" with no blank line after it. Comment lines after the
 * last event do not count. Returns LLMR_OK, or the sticky error (then
 * truncated is 1). Call llmr__sse_reset() before parsing another stream.
 */
llmr_status llmr__sse_finish(llmr__sse_parser *p);

/* 1 if the last llmr__sse_finish() found the stream truncated, else 0. */
int llmr__sse_truncated(const llmr__sse_parser *p);

/* The stream's reconnection time from the last valid `retry:` field, even
 * one in a block that dispatched nothing; -1 if none. */
long llmr__sse_reconnect_ms(const llmr__sse_parser *p);

/* Back to the initial state for a new stream (also clears a sticky error,
 * the last event ID and the reconnection time). Keeps cb, user, max_line
 * and the allocated buffers. */
void llmr__sse_reset(llmr__sse_parser *p);

/* Free the buffers. The parser may be re-initialized afterwards. A zeroed
 * parser is fine. */
void llmr__sse_free(llmr__sse_parser *p);

#ifdef __cplusplus
}
#endif

#endif /* LLMR_SSE_H */
