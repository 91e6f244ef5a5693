/*
 * A strict JSON scanner over a byte range (internal).
 *
 * cJSON builds a tree: one allocation per value, key and string, numbers
 * through strtod. Two readers cannot afford that: the ledger's record
 * parser (a million lines per query, exact 64-bit integers) and the
 * non-streaming OpenAI answer on the request hot path (bench/PROFILE.md:
 * cJSON parse + delete were over half of what llmr_complete added to a
 * call). Both walk the text with this scanner instead, taking spans that
 * point into it; nothing is allocated until a caller copies a value out.
 *
 * The scanner is stricter than cJSON on purpose (RFC 8259 grammar, no
 * control characters in strings, no lone UTF-16 surrogates, no \u0000), so
 * a reader that falls back to cJSON whenever the scanner refuses never
 * accepts a document cJSON would reject.
 *
 * Return codes of the scanning functions: 0 done (the cursor is past the
 * value), -1 not valid JSON at the cursor, -2 the text ends inside the
 * value (a torn ledger line tells the two apart).
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef LLMR_JSCAN_H
#define LLMR_JSCAN_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "internal.h"

/* A JSON value inside the text: a string's contents (between the quotes,
 * still escaped when esc is set), a number's text, an array's text. */
typedef struct llmr__span {
  const char *p;
  size_t n;
  unsigned esc : 1;  /* the string holds backslash escapes */
  unsigned null : 1; /* the value was null (or absent) */
} llmr__span;

typedef struct llmr__jcur {
  const char *p, *e; /* position, end of the text */
} llmr__jcur;

/* Past the JSON white space (space, tab, CR, LF) at p, up to e; a byte
 * above ' ' ends it with one compare. */
static inline const char *llmr__js_ws_at(const char *p, const char *e) {
  while (p < e && (unsigned char)*p <= ' ' &&
         (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
    p++;
  return p;
}

/* Skips JSON whitespace at the cursor. */
static inline void llmr__js_ws(llmr__jcur *c) {
  c->p = llmr__js_ws_at(c->p, c->e);
}
/* The bytes that end a run of plain string text: '"', '\\' and the
 * control characters (1 for those, 0 for the rest). */
extern const unsigned char llmr__js_stop[256];

/* The bytes of the 8 at p that are one of llmr__js_stop's, as the high
 * bit of their lane (SWAR: a byte is below 0x20, or equal to '"' or
 * '\\', exactly when its lane of the word below has its high bit set).
 * The lowest set lane is always a true one: a test's borrow only runs
 * into higher lanes, from a lane that already matches. */
static inline uint64_t llmr__js_stop8(const char *p) {
  const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
  uint64_t w, q, b;
  memcpy(&w, p, 8);
  q = w ^ (ones * '"');
  b = w ^ (ones * '\\');
  return ((w - ones * 0x20) | (q - ones) | (b - ones)) & ~w & high;
}

/* The first byte in [q, e) that ends a run of plain string text, or e:
 * eight bytes at a time while they last (the first stop found in a word
 * located from its mask, on little-endian machines). */
static inline const char *llmr__js_plain(const char *q, const char *e) {
  while (e - q >= 8) {
    uint64_t m = llmr__js_stop8(q);
    if (m) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
      return q + (__builtin_ctzll(m) >> 3);
#else
      break;
#endif
    }
    q += 8;
  }
  while (q < e && !llmr__js_stop[(unsigned char)*q])
    q++;
  return q;
}

/* c->p at '"': the string's contents into sp (escapes checked). */
int llmr__js_string(llmr__jcur *c, llmr__span *sp);
/* c->p at a number: its text into sp (RFC 8259 grammar). */
int llmr__js_number(llmr__jcur *c, llmr__span *sp);
/* c->p at "true", "false" or "null": word must be the one expected. */
int llmr__js_literal(llmr__jcur *c, const char *word);
/* Skips one value of any type, nested at most max_depth deep (deeper is
 * -1: a caller with a fallback hands such documents to cJSON). */
int llmr__js_skip(llmr__jcur *c, int max_depth);

/* c->p at '{' or '[': calls each(c, key, user) for every member (key: its
 * name, still escaped when key->esc) or element (key NULL), with c->p at
 * the value, which each must consume. A nonzero return from each stops
 * the walk and is returned (use codes other than -1 and -2 to tell them
 * apart); else 0 with c->p past the closing bracket. The ledger reads
 * arrays with it and llmr__js_skip skips containers with it; the OpenAI
 * answer reader has its own member loop (a cursor kept in registers, no
 * callback per member) and hands everything else to these readers. */
typedef int (*llmr__js_each)(llmr__jcur *c, const llmr__span *key,
                             void *user);
int llmr__js_walk(llmr__jcur *c, llmr__js_each each, void *user);

/* Whether a key span is exactly name (an escaped key never matches);
 * inline so a literal name's length is a constant. */
static inline int llmr__span_is(const llmr__span *sp, const char *name) {
  size_t n = strlen(name);
  return !sp->esc && !sp->null && sp->n == n && memcmp(sp->p, name, n) == 0;
}
/* A number span that is a plain integer (no fraction or exponent) into
 * *out; -1 when it is not one or does not fit. */
int llmr__span_i64(const llmr__span *sp, int64_t *out);
/* A string span's value unescaped into a fresh NUL-terminated string
 * (NULL for a null span, or on OOM: check sp->null). */
char *llmr__span_dup(const llmr__span *sp);
/* A string span's value unescaped and appended to b; -1 on OOM. */
int llmr__span_append(llmr__buf *b, const llmr__span *sp);
/* Whether a string span equals s (NULL s matches a null span). */
int llmr__span_eq(const llmr__span *sp, const char *s);

/* s (NUL-terminated) as a JSON string and d as a JSON number, appended
 * to b byte for byte as cJSON_PrintUnformatted() writes them; -1 on OOM.
 * A NULL s is null. */
int llmr__buf_cjson_str(llmr__buf *b, const char *s);
int llmr__buf_cjson_num(llmr__buf *b, double d);
/* s as a JSON string for a ledger line: no control byte or DEL left raw
 * (null for a NULL s); -1 on OOM. */
int llmr__buf_json_str(llmr__buf *b, const char *s);
int llmr__buf_json_strn(llmr__buf *b, const char *s, size_t n);

/* A string span's value appended to a response's text (reasoning = 0)
 * or reasoning (1), with llmr_response_append_text()'s contract: the
 * stream callback sees it, a cancelled call gets LLMR_E_ABORTED.
 * (src/response.c) */
llmr_status llmr__response_append_span(llmr_response *r, int reasoning,
                                       const llmr__span *sp);

#endif
