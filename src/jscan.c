/*
 * The strict JSON scanner of src/jscan.h: the ledger's record parser and
 * the OpenAI adapter's non-streaming answer reader walk text with it.
 *
 * SPDX-License-Identifier: MIT
 */
#include "jscan.h"

#include <string.h>

static int hexval(char ch) {
  if (ch >= '0' && ch <= '9')
    return ch - '0';
  if (ch >= 'a' && ch <= 'f')
    return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F')
    return ch - 'A' + 10;
  return -1;
}

/* The code unit of the 4 hex digits at p (checked by the scanner). */
static unsigned long hex4(const char *p) {
  return (unsigned long)(hexval(p[0]) << 12 | hexval(p[1]) << 8 |
                         hexval(p[2]) << 4 | hexval(p[3]));
}

/* q at the 'u' of "\uXXXX" (inside [q, e)): the code unit, -1 when the
 * digits are not hex, -2 when the text ends first. */
static long u_escape(const char *q, const char *e) {
  int k;
  for (k = 1; k <= 4; k++) {
    if (q + k >= e)
      return -2;
    if (hexval(q[k]) < 0)
      return -1;
  }
  return (long)hex4(q + 1);
}

/* jscan.h */
const unsigned char llmr__js_stop[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    ['"'] = 1, ['\\'] = 1};

int llmr__js_string(llmr__jcur *c, llmr__span *sp) {
  const char *q = c->p + 1, *e = c->e;
  memset(sp, 0, sizeof(*sp));
  for (;;) {
    if ((q = llmr__js_plain(q, e)) >= e)
      return -2;
    if (*q == '"')
      break;
    if (*q != '\\')
      return -1; /* a control character */
    sp->esc = 1;
    if (++q >= e)
      return -2;
    if (*q == 'u') {
      long u = u_escape(q, e);
      if (u < 0)
        return (int)u;
      q += 4;
      if (u == 0 || (u >= 0xDC00 && u < 0xE000))
        return -1; /* \u0000 or a lone low surrogate */
      if (u >= 0xD800 && u < 0xDC00) { /* a high one needs its low half */
        long lo;
        if (q + 2 >= e)
          return -2;
        if (q[1] != '\\' || q[2] != 'u')
          return -1;
        if ((lo = u_escape(q + 2, e)) < 0)
          return (int)lo;
        if (lo < 0xDC00 || lo >= 0xE000)
          return -1;
        q += 6;
      }
    } else if (!strchr("\"\\/bfnrt", *q) || !*q) {
      return -1;
    }
    q++;
  }
  sp->p = c->p + 1;
  sp->n = (size_t)(q - sp->p);
  c->p = q + 1;
  return 0;
}

/* Past the digits at p; *r is -1 (or -2 at the end of the text) when
 * there are none. */
static const char *digits(const char *p, const char *e, int *r) {
  const char *s = p;
  while (p < e && *p >= '0' && *p <= '9')
    p++;
  *r = p > s ? 0 : p >= e ? -2 : -1;
  return p;
}

/* The cursor kept in locals; c->p ends past the number, or where it
 * fails. */
int llmr__js_number(llmr__jcur *c, llmr__span *sp) {
  const char *s = c->p, *p = s, *e = c->e;
  int r = 0;
  sp->p = NULL;
  sp->n = 0;
  sp->esc = sp->null = 0;
  if (p < e && *p == '-')
    p++;
  if (p >= e) {
    r = -2;
    goto out;
  }
  if (*p == '0')
    p++; /* no leading zeros */
  else if (p = digits(p, e, &r), r != 0)
    goto out;
  if (p < e && *p == '.' && (p = digits(p + 1, e, &r), r != 0))
    goto out;
  if (p < e && (*p == 'e' || *p == 'E')) {
    if (++p < e && (*p == '+' || *p == '-'))
      p++;
    if (p = digits(p, e, &r), r != 0)
      goto out;
  }
  sp->p = s;
  sp->n = (size_t)(p - s);
out:
  c->p = p;
  return r;
}

int llmr__js_literal(llmr__jcur *c, const char *word) {
  size_t n = strlen(word), have = (size_t)(c->e - c->p);
  if (have < n)
    return memcmp(c->p, word, have) == 0 ? -2 : -1;
  if (memcmp(c->p, word, n) != 0)
    return -1;
  c->p += n;
  return 0;
}

int llmr__js_walk(llmr__jcur *c, llmr__js_each each, void *user) {
  char close;
  llmr__span key;
  int r;
  if (c->p >= c->e)
    return -2;
  if (*c->p != '{' && *c->p != '[')
    return -1;
  close = *c->p++ == '{' ? '}' : ']';
  llmr__js_ws(c);
  if (c->p < c->e && *c->p == close) {
    c->p++;
    return 0;
  }
  for (;;) {
    llmr__js_ws(c);
    if (close == '}') {
      if (c->p >= c->e)
        return -2;
      if (*c->p != '"')
        return -1;
      if ((r = llmr__js_string(c, &key)) != 0)
        return r;
      llmr__js_ws(c);
      if (c->p >= c->e)
        return -2;
      if (*c->p++ != ':')
        return -1;
      llmr__js_ws(c);
    }
    if (c->p >= c->e)
      return -2;
    if ((r = each(c, close == '}' ? &key : NULL, user)) != 0)
      return r;
    llmr__js_ws(c);
    if (c->p >= c->e)
      return -2;
    if (*c->p == ',') {
      c->p++;
      continue;
    }
    return *c->p++ == close ? 0 : -1;
  }
}

/* llmr__js_walk's callback for llmr__js_skip: user is the depth left. */
static int skip_each(llmr__jcur *c, const llmr__span *key, void *user) {
  (void)key;
  return llmr__js_skip(c, *(int *)user);
}

int llmr__js_skip(llmr__jcur *c, int max_depth) {
  llmr__span sp;
  if (c->p >= c->e)
    return -2;
  switch (*c->p) {
  case '"': return llmr__js_string(c, &sp);
  case '{':
  case '[': {
    int depth = max_depth - 1;
    if (max_depth <= 0)
      return -1;
    return llmr__js_walk(c, skip_each, &depth);
  }
  case 't': return llmr__js_literal(c, "true");
  case 'f': return llmr__js_literal(c, "false");
  case 'n': return llmr__js_literal(c, "null");
  default:
    if (*c->p == '-' || (*c->p >= '0' && *c->p <= '9'))
      return llmr__js_number(c, &sp);
    return -1;
  }
}

/* ---- spans -------------------------------------------------------------- */

int llmr__span_i64(const llmr__span *sp, int64_t *out) {
  const char *q = sp->p, *e = sp->p + sp->n;
  int neg = 0;
  int64_t v = 0;
  if (sp->null)
    return -1;
  if (q < e && *q == '-') {
    neg = 1;
    q++;
  }
  if (q >= e)
    return -1;
  for (; q < e; q++) {
    if (*q < '0' || *q > '9')
      return -1;
    if (__builtin_mul_overflow(v, 10, &v) ||
        __builtin_add_overflow(v, *q - '0', &v))
      return -1;
  }
  *out = neg ? -v : v;
  return 0;
}

static size_t put_utf8(char *o, unsigned long cp) {
  if (cp < 0x80) {
    o[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    o[0] = (char)(0xC0 | (cp >> 6));
    o[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    o[0] = (char)(0xE0 | (cp >> 12));
    o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  o[0] = (char)(0xF0 | (cp >> 18));
  o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
  o[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

int llmr__span_append(llmr__buf *b, const llmr__span *sp) {
  char out[4];
  size_t i, run = 0;
  if (!sp->esc)
    return llmr__buf_append(b, sp->p, sp->n);
  /* decoded, the value is never longer than its escaped text: one
   * allocation however many runs follow */
  if (llmr__buf_reserve(b, sp->n) != 0)
    return -1;
  /* plain runs go straight from the text; each escape is decoded in out */
  for (i = 0; i < sp->n; i++) {
    unsigned long cp;
    if (sp->p[i] != '\\')
      continue;
    if (llmr__buf_append(b, sp->p + run, i - run) != 0)
      return -1;
    switch (sp->p[++i]) { /* the scanner checked every escape */
    case 'b': cp = '\b'; break;
    case 'f': cp = '\f'; break;
    case 'n': cp = '\n'; break;
    case 'r': cp = '\r'; break;
    case 't': cp = '\t'; break;
    case 'u':
      cp = hex4(sp->p + i + 1);
      i += 4;
      if (cp >= 0xD800 && cp < 0xDC00 && i + 6 < sp->n &&
          sp->p[i + 1] == '\\' && sp->p[i + 2] == 'u') {
        unsigned long lo = hex4(sp->p + i + 3);
        if (lo >= 0xDC00 && lo < 0xE000) {
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          i += 6;
        }
      }
      if (cp == 0 || (cp >= 0xD800 && cp < 0xE000))
        cp = 0xFFFD; /* only reached for text the scanner did not check */
      break;
    default: cp = (unsigned char)sp->p[i]; break; /* " \ / */
    }
    if (llmr__buf_append(b, out, put_utf8(out, cp)) != 0)
      return -1;
    run = i + 1;
  }
  return llmr__buf_append(b, sp->p + run, sp->n - run);
}

char *llmr__span_dup(const llmr__span *sp) {
  llmr__buf t = {0};
  if (sp->null)
    return NULL;
  if (!sp->esc)
    return llmr__strndup(sp->p, sp->n);
  if (llmr__span_append(&t, sp) != 0) {
    llmr__buf_free(&t);
    return NULL;
  }
  return t.data ? t.data : llmr__strndup("", 0);
}

int llmr__span_eq(const llmr__span *sp, const char *s) {
  char *d;
  int eq;
  if (sp->null || !s)
    return sp->null && !s;
  if (!sp->esc)
    return strlen(s) == sp->n && memcmp(sp->p, s, sp->n) == 0;
  d = llmr__span_dup(sp);
  eq = d && strcmp(d, s) == 0;
  llmr__free(d);
  return eq;
}

/* ---- JSON out --------------------------------------------------------------
 * Strings are escaped here, in one of two styles: cJSON's (what
 * cJSON_PrintUnformatted writes: \" \\ \b \f \n \r \t, \u00xx for the other
 * control characters, everything else as is) for request bodies that must
 * match the tree writer byte for byte, and the ledger's (\b and \f as
 * \u00xx, DEL escaped too: a ledger line holds no control byte). Numbers
 * are printed by cJSON itself (cJSON_PrintPreallocated on an item on the
 * stack). */

/* The DEL bytes (0x7f) of the 8 at p, as llmr__js_stop8 marks its own. */
static uint64_t del8(const char *p) {
  const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
  uint64_t w, d;
  memcpy(&w, p, 8);
  d = w ^ (ones * 0x7f);
  return (d - ones) & ~d & high;
}

/* How many bytes at s go out as they are: in cJSON's style all but '"',
 * '\\' and the control characters (llmr__js_stop's set), the ledger's DEL
 * too. */
static size_t plain_len(const char *s, size_t n, int cjson) {
  size_t i = 0;
  while (n - i >= 8) {
    uint64_t m = llmr__js_stop8(s + i) | (cjson ? 0 : del8(s + i));
    if (m) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
      return i + (size_t)(__builtin_ctzll(m) >> 3);
#else
      break;
#endif
    }
    i += 8;
  }
  while (i < n && !llmr__js_stop[(unsigned char)s[i]] &&
         (cjson || s[i] != 0x7f))
    i++;
  return i;
}

static int json_str(llmr__buf *b, const char *s, size_t n, int cjson) {
  static const char hex[] = "0123456789abcdef";
  size_t i = 0;
  if (!s)
    return llmr__buf_put(b, "null", 4);
  /* the quotes and the text as is: one reservation for the common string
   * that needs no escape */
  if (n > SIZE_MAX - 2 || llmr__buf_reserve(b, n + 2) != 0 ||
      llmr__buf_put(b, "\"", 1) != 0)
    return -1;
  for (;;) {
    size_t run = plain_len(s + i, n - i, cjson);
    unsigned char ch;
    char esc[7];
    size_t en = 2;
    if (llmr__buf_put(b, s + i, run) != 0)
      return -1;
    if ((i += run) >= n)
      break;
    ch = (unsigned char)s[i++];
    esc[0] = '\\';
    switch (ch) {
    case '"': esc[1] = '"'; break;
    case '\\': esc[1] = '\\'; break;
    case '\n': esc[1] = 'n'; break;
    case '\r': esc[1] = 'r'; break;
    case '\t': esc[1] = 't'; break;
    case '\b':
    case '\f':
      if (cjson) {
        esc[1] = ch == '\b' ? 'b' : 'f';
        break;
      }
      /* fall through */
    default:
      memcpy(esc + 1, "u00", 3);
      esc[4] = hex[ch >> 4];
      esc[5] = hex[ch & 15];
      en = 6;
    }
    if (llmr__buf_put(b, esc, en) != 0)
      return -1;
  }
  return llmr__buf_put(b, "\"", 1);
}

int llmr__buf_cjson_str(llmr__buf *b, const char *s) {
  return json_str(b, s, s ? strlen(s) : 0, 1);
}

int llmr__buf_json_strn(llmr__buf *b, const char *s, size_t n) {
  return json_str(b, s, n, 0);
}

int llmr__buf_json_str(llmr__buf *b, const char *s) {
  return json_str(b, s, s ? strlen(s) : 0, 0);
}

int llmr__buf_cjson_num(llmr__buf *b, double d) {
  char tmp[64];
  cJSON item;
  memset(&item, 0, sizeof(item));
  item.type = cJSON_Number;
  cJSON_SetNumberHelper(&item, d);
  if (!cJSON_PrintPreallocated(&item, tmp, (int)sizeof(tmp), 0))
    return -1;
  return llmr__buf_puts(b, tmp);
}
