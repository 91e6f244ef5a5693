/*
 * Incremental Server-Sent-Events parser. See sse.h for the contract.
 *
 * Lines that lie complete inside a chunk are parsed in place; only a line
 * cut by the end of a chunk is copied into the carry buffer. A CR ends a
 * line at once (so an event can dispatch without waiting for the next
 * chunk) and leaves `cr` set so that an LF that follows, possibly at the
 * start of the next chunk, is swallowed as the second half of a CRLF.
 *
 * SPDX-License-Identifier: MIT
 */
#include "sse.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

static const unsigned char bom_bytes[3] = {0xEF, 0xBB, 0xBF};

static size_t max_line_of(const llmr__sse_parser *p) {
  return p->max_line ? p->max_line : LLMR__SSE_DEFAULT_MAX_LINE;
}

/* Make room for `extra` more bytes plus a NUL. */
static int buf_reserve(llmr__sse_buf *b, size_t extra) {
  size_t need, cap;
  char *np;
  if (extra > SIZE_MAX - 1 - b->len)
    return -1;
  need = b->len + extra + 1;
  if (need <= b->cap)
    return 0;
  cap = b->cap ? b->cap : 64;
  while (cap < need)
    cap = cap > SIZE_MAX / 2 ? need : cap * 2;
  np = realloc(b->ptr, cap);
  if (!np)
    return -1;
  b->ptr = np;
  b->cap = cap;
  return 0;
}

/* Append and keep the buffer NUL-terminated. */
static int buf_append(llmr__sse_buf *b, const char *s, size_t n) {
  if (buf_reserve(b, n))
    return -1;
  if (n)
    memcpy(b->ptr + b->len, s, n);
  b->len += n;
  b->ptr[b->len] = '\0';
  return 0;
}

static int buf_set(llmr__sse_buf *b, const char *s, size_t n) {
  b->len = 0;
  return buf_append(b, s, n);
}

static void buf_free(llmr__sse_buf *b) {
  free(b->ptr);
  b->ptr = NULL;
  b->len = b->cap = 0;
}

static llmr_status fail(llmr__sse_parser *p, llmr_status st) {
  p->err = st;
  return st;
}

/* Per-stream state back to the start; buffers, cb, user, max_line stay. */
static void clear_state(llmr__sse_parser *p) {
  p->line.len = p->data.len = p->event.len = p->id.len = 0;
  p->retry_ms = p->reconnect_ms = 0;
  p->err = LLMR_OK;
  p->bom = 0;
  p->cr = p->in_event = p->has_id = p->has_retry = p->has_reconnect = 0;
  p->truncated = 0;
}

void llmr__sse_init(llmr__sse_parser *p, size_t max_line,
                    llmr__sse_event_cb cb, void *user) {
  memset(p, 0, sizeof(*p));
  p->cb = cb;
  p->user = user;
  p->max_line = max_line;
}

void llmr__sse_reset(llmr__sse_parser *p) { clear_state(p); }

void llmr__sse_free(llmr__sse_parser *p) {
  buf_free(&p->line);
  buf_free(&p->data);
  buf_free(&p->event);
  buf_free(&p->id);
  clear_state(p);
}

int llmr__sse_truncated(const llmr__sse_parser *p) { return p->truncated; }

long llmr__sse_reconnect_ms(const llmr__sse_parser *p) {
  return p->has_reconnect ? p->reconnect_ms : -1;
}

/* Blank line: "dispatch the event". */
static llmr_status dispatch(llmr__sse_parser *p) {
  llmr__sse_event ev;
  int rc = 0;
  p->in_event = 0;
  if (p->data.len == 0) {
    p->event.len = 0;
    p->has_retry = 0;
    return LLMR_OK;
  }
  /* The data buffer always ends in the '\n' appended after each value. */
  p->data.len--;
  p->data.ptr[p->data.len] = '\0';
  ev.event = p->event.len ? p->event.ptr : "";
  ev.event_len = p->event.len;
  ev.data = p->data.ptr;
  ev.data_len = p->data.len;
  ev.id = p->has_id ? (p->id.len ? p->id.ptr : "") : NULL;
  ev.id_len = p->id.len;
  ev.retry_ms = p->has_retry ? p->retry_ms : -1;
  if (p->cb)
    rc = p->cb(p->user, &ev);
  p->data.len = 0;
  p->event.len = 0;
  p->has_retry = 0;
  return rc ? fail(p, LLMR_E_ABORTED) : LLMR_OK;
}

/* retry: only ASCII digits, at least one (an empty value is ignored, as
 * browsers do). Saturates instead of overflowing. */
static void field_retry(llmr__sse_parser *p, const char *v, size_t n) {
  long ms = 0;
  size_t i;
  if (n == 0)
    return;
  for (i = 0; i < n; i++)
    if (v[i] < '0' || v[i] > '9')
      return;
  for (i = 0; i < n; i++) {
    long d = (long)(v[i] - '0');
    ms = ms > (LONG_MAX - d) / 10 ? LONG_MAX : ms * 10 + d;
  }
  p->retry_ms = p->reconnect_ms = ms;
  p->has_retry = p->has_reconnect = 1;
}

/* One complete line, without its terminator. `line` may point into the
 * caller's chunk or into p->line; it never aliases data/event/id. */
static llmr_status process_line(llmr__sse_parser *p, const char *line,
                                size_t n) {
  const char *colon, *value;
  size_t name_len, vlen;
  if (n == 0)
    return dispatch(p);
  if (line[0] == ':')
    return LLMR_OK; /* comment */
  colon = memchr(line, ':', n);
  if (colon) {
    name_len = (size_t)(colon - line);
    value = colon + 1;
    vlen = n - name_len - 1;
    if (vlen && value[0] == ' ') {
      value++;
      vlen--;
    }
  } else {
    name_len = n;
    value = line + n;
    vlen = 0;
  }
  p->in_event = 1;
  if (name_len == 4 && memcmp(line, "data", 4) == 0) {
    size_t max = max_line_of(p);
    /* Joined data (final '\n' excluded) must stay within max_line. */
    if (vlen > max || p->data.len > max - vlen)
      return fail(p, LLMR_E_PROTOCOL);
    if (buf_reserve(&p->data, vlen + 1))
      return fail(p, LLMR_E_NOMEM);
    (void)buf_append(&p->data, value, vlen);
    (void)buf_append(&p->data, "\n", 1);
  } else if (name_len == 5 && memcmp(line, "event", 5) == 0) {
    if (buf_set(&p->event, value, vlen))
      return fail(p, LLMR_E_NOMEM);
  } else if (name_len == 2 && memcmp(line, "id", 2) == 0) {
    if (!memchr(value, '\0', vlen)) {
      if (buf_set(&p->id, value, vlen))
        return fail(p, LLMR_E_NOMEM);
      p->has_id = 1;
    }
  } else if (name_len == 5 && memcmp(line, "retry", 5) == 0) {
    field_retry(p, value, vlen);
  }
  /* Any other field is ignored. */
  return LLMR_OK;
}

/* Carry part of a line over to the next chunk, within the cap. */
static llmr_status carry(llmr__sse_parser *p, const char *s, size_t n) {
  if (n > max_line_of(p) - p->line.len)
    return fail(p, LLMR_E_PROTOCOL);
  if (buf_append(&p->line, s, n))
    return fail(p, LLMR_E_NOMEM);
  return LLMR_OK;
}

llmr_status llmr__sse_feed(llmr__sse_parser *p, const char *buf, size_t len) {
  size_t i = 0;
  llmr_status st;

  if (p->err)
    return p->err;

  /* One leading BOM is skipped, even if it arrives a byte at a time. On a
   * mismatch the bytes matched so far start the first line. */
  while (p->bom < 3 && i < len) {
    if ((unsigned char)buf[i] == bom_bytes[p->bom]) {
      p->bom++;
      i++;
    } else {
      size_t matched = p->bom;
      p->bom = 3;
      if (matched && (st = carry(p, (const char *)bom_bytes, matched)))
        return st;
    }
  }

  while (i < len) {
    size_t j, n;
    const char *line;

    if (p->cr) {
      p->cr = 0;
      if (buf[i] == '\n') {
        i++;
        continue;
      }
    }
    for (j = i; j < len && buf[j] != '\n' && buf[j] != '\r'; j++)
      ;
    if (j == len)
      return carry(p, buf + i, len - i);

    if (p->line.len) {
      if ((st = carry(p, buf + i, j - i)))
        return st;
      line = p->line.ptr;
      n = p->line.len;
    } else {
      line = buf + i;
      n = j - i;
      if (n > max_line_of(p))
        return fail(p, LLMR_E_PROTOCOL);
    }
    p->cr = buf[j] == '\r';
    i = j + 1;
    st = process_line(p, line, n);
    p->line.len = 0;
    if (st)
      return st;
  }
  return LLMR_OK;
}

llmr_status llmr__sse_finish(llmr__sse_parser *p) {
  if (p->err) {
    p->truncated = 1;
    return p->err;
  }
  /* A partial BOM at the very end is a partial line too. */
  p->truncated = (unsigned char)(p->line.len > 0 || p->in_event ||
                                 (p->bom > 0 && p->bom < 3));
  /* The pending event, if any, is discarded. */
  p->line.len = p->data.len = p->event.len = 0;
  p->in_event = p->has_retry = p->cr = 0;
  return LLMR_OK;
}
