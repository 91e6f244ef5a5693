/*
 * The HTTP exchange objects that adapters fill and read, and the generic
 * error-reading rules every adapter shares (status classes, Retry-After,
 * the error object's message and type). No I/O here.
 */
#include "internal.h"

#include <curl/curl.h>
#include <math.h>
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A block from an exchange object's arena (llmr__arena_take), and whether
 * a block is in it. */
#define TAKE(h, n) llmr__arena_take((h)->arena, sizeof((h)->arena), \
                                    &(h)->arena_used, (n))
#define IN_ARENA(h, p) llmr__in_arena((h)->arena, sizeof((h)->arena), (p))

/* header_slot when the array is not set up or full. */
static llmr__header *header_slot_grow(llmr__header **arr, size_t n,
                                      size_t *cap, llmr__header *inl,
                                      size_t n_inl) {
  if (!*arr) {
    *arr = inl;
    *cap = n_inl;
  }
  if (llmr__grow_inline((void **)arr, cap, n, sizeof(**arr), inl) != 0)
    return NULL;
  return &(*arr)[n];
}

/* The next header slot of an array that starts inline (inl, n_inl slots)
 * and moves to the heap when it is full; NULL when out of memory. The
 * common case (a free slot) is inline, without a call. */
static inline llmr__header *header_slot(llmr__header **arr, size_t n,
                                        size_t *cap, llmr__header *inl,
                                        size_t n_inl) {
  if (*arr && n < *cap)
    return &(*arr)[n];
  return header_slot_grow(arr, n, cap, inl, n_inl);
}

/* A header's name and value share one allocation: a tag byte, then
 * "name\0value\0", the value right after the name (one malloc per header,
 * not two). A request header that carries a credential
 * (llmr__header_is_secret) is allocated in secret memory (out of core
 * dumps, wiped when freed) and tagged 1, so that freeing need not classify
 * it again. The value may come in two parts (pre + value), so that "Bearer
 * <key>" is assembled in place. */
static char *header_block(llmr_http_request *h, llmr__header *hd,
                          int secret, const char *name, size_t nlen,
                          const char *pre, size_t plen, const char *value,
                          size_t vlen) {
  char *b;
  if (vlen > SIZE_MAX - 3 || plen > SIZE_MAX - 3 - vlen ||
      nlen > SIZE_MAX - 3 - vlen - plen ||
      !(b = secret ? llmr__secret_alloc(nlen + plen + vlen + 3)
                   : TAKE(h, nlen + plen + vlen + 3)))
    return NULL;
  b[0] = (char)(secret != 0);
  memcpy(b + 1, name, nlen);
  b[1 + nlen] = '\0';
  if (plen)
    memcpy(b + 2 + nlen, pre, plen);
  memcpy(b + 2 + nlen + plen, value, vlen);
  b[2 + nlen + plen + vlen] = '\0';
  hd->name = b + 1;
  hd->value = b + 2 + nlen;
  /* noted here so that the transport need not look for them (the lengths
   * tell most names apart) */
  if (nlen == 10 && llmr__strncaseeq(name, "User-Agent", 10))
    h->has |= LLMR__HAS_USER_AGENT;
  else if (nlen == 15 && llmr__strncaseeq(name, "Accept-Encoding", 15))
    h->has |= LLMR__HAS_ACCEPT_ENCODING;
  return b;
}

/* d[0..n) = s[0..n) with ASCII A-Z lowercased, 8 bytes at a time (the
 * byte loop was ~9 Ir a byte of every reply header name, bench/PROFILE.md).
 * In each byte of w below 0x80, bit 7 of (w & 0x7f..) + 0x3f is set from
 * 'A' up and bit 7 of (w & 0x7f..) + 0x25 from past 'Z' up; no sum carries
 * into the next byte. The last word overlaps the one before it, which
 * writes the same bytes again. */
static void lower_copy(char *d, const char *s, size_t n) {
  const uint64_t h7 = 0x7f7f7f7f7f7f7f7fu, b7 = 0x8080808080808080u;
  size_t i;
  if (n < 8) {
    for (i = 0; i < n; i++) {
      unsigned char c = (unsigned char)s[i];
      d[i] = (char)((unsigned)(c - 'A') < 26u ? c | 0x20 : c);
    }
    return;
  }
  for (i = 0;; i += 8) {
    uint64_t w, lo;
    if (i > n - 8)
      i = n - 8;
    memcpy(&w, s + i, 8);
    lo = w & h7;
    w |= ((lo + 0x3f3f3f3f3f3f3f3fu) & ~(lo + 0x2525252525252525u) & ~w &
          b7) >> 2;
    memcpy(d + i, &w, 8);
    if (i == n - 8)
      return;
  }
}

/* A reply header: "name\0value\0" in one block, no tag (replies carry no
 * key of ours), in the reply's arena while it has room, else the heap; the
 * name lowercased. */
static char *reply_header_block(llmr_http_response *h, llmr__header *hd,
                                const char *name, size_t nlen,
                                const char *value, size_t vlen) {
  char *b;
  if (nlen > SIZE_MAX - 2 - vlen ||
      !(b = TAKE(h, nlen + vlen + 2)))
    return NULL;
  lower_copy(b, name, nlen);
  b[nlen] = '\0';
  memcpy(b + nlen + 1, value, vlen);
  b[nlen + 1 + vlen] = '\0';
  hd->name = b;
  hd->value = b + nlen + 1;
  return b;
}

/* name[0..len) ends in s (lowercase letters, n of them), ASCII
 * case-insensitively; compared from the end, where most names differ at
 * once. */
static int ends_with(const char *name, size_t len, const char *s, size_t n) {
  if (n > len)
    return 0;
  name += len - n;
  /* s is all letters: x | 0x20 equals a lowercase letter only for that
   * letter in either case */
  while (n-- > 0)
    if (((unsigned char)name[n] | 0x20) != (unsigned char)s[n])
      return 0;
  return 1;
}

int llmr__header_is_secret(const char *name, size_t len) {
  if (!len)
    return 0;
  /* | 0x20 lowercases a letter and turns no other byte into one */
  switch ((unsigned char)name[len - 1] | 0x20) {
  case 'n':
    return ends_with(name, len, "authorization", 13) ||
           ends_with(name, len, "token", 5);
  case 'y':
    return ends_with(name, len, "key", 3);
  case 't':
    return ends_with(name, len, "secret", 6);
  case 'e':
    return ends_with(name, len, "cookie", 6);
  case 'd':
    return ends_with(name, len, "password", 8);
  case 'l':
    return ends_with(name, len, "credential", 10);
  case 's':
    return ends_with(name, len, "credentials", 11);
  default:
    return 0;
  }
}

/* Request headers (header_block). Header values can carry keys:
 * credential headers are secret chunks (llmr__secret_free wipes all of
 * them); every other value is wiped as well, since an adapter may send a
 * key under a name we do not know (those in the arena with it, by
 * llmr__http_request_clear). */
static void headers_free(llmr_http_request *h) {
  size_t i;
  for (i = 0; i < h->n_headers; i++) {
    char *b = h->headers[i].name - 1; /* the tag byte */
    if (*b) {
      llmr__secret_free(b);
    } else if (!IN_ARENA(h, b)) {
      llmr__wipe(h->headers[i].value, strlen(h->headers[i].value));
      llmr__free(b);
    }
  }
  if (h->headers != h->inline_headers)
    llmr__free(h->headers);
}

void llmr__http_request_clear(llmr_http_request *h) {
  if (!IN_ARENA(h, h->url))
    llmr__free(h->url);
  headers_free(h);
  if (!IN_ARENA(h, h->body))
    llmr__free(h->body);
  llmr__wipe(h->arena, h->arena_used);
  llmr__http_request_init(h);
}

void llmr__http_request_init(llmr_http_request *h) {
  /* the inline array and the arena need no zeroing: arena_used says
   * what is in use, and clear wipes that */
  memset(h, 0, offsetof(llmr_http_request, inline_headers));
}

void llmr__http_response_clear(llmr_http_response *h) {
  size_t i;
  /* values are wiped (a reply may echo a key); the arena's blocks go
   * with the memset below */
  for (i = 0; i < h->n_headers; i++) {
    llmr__wipe(h->headers[i].value, strlen(h->headers[i].value));
    if (!IN_ARENA(h, h->headers[i].name))
      llmr__free(h->headers[i].name);
  }
  if (h->headers != h->inline_headers)
    llmr__free(h->headers);
  llmr__buf_free(&h->body);
  llmr__wipe(h->arena, h->arena_used);
  llmr__http_response_init(h);
}

void llmr__http_response_init(llmr_http_response *h) {
  /* the inline array and the arena need no zeroing: arena_used says
   * what is in use, and clear wipes that */
  memset(h, 0, offsetof(llmr_http_response, inline_headers));
}

/* The length of s, or SIZE_MAX when it holds one of the bytes of stop
 * (which may not be empty): the check and the strlen in one scan. */
static size_t len_without(const char *s, const char *stop) {
  size_t n = strcspn(s, stop);
  return s[n] ? SIZE_MAX : n;
}

LLMR_API llmr_status llmr_http_request_set_url(llmr_http_request *h,
                                               const char *url) {
  char *d;
  size_t n;
  if (!h || !url || (n = len_without(url, "\r\n")) == SIZE_MAX)
    return LLMR_E_INVAL;
  if (!(d = TAKE(h, n + 1)))
    return LLMR_E_NOMEM;
  memcpy(d, url, n + 1);
  if (!IN_ARENA(h, h->url))
    llmr__free(h->url);
  h->url = d;
  return LLMR_OK;
}

static llmr_status add_header(llmr_http_request *h, const char *name,
                              const char *pre, const char *value) {
  llmr__header *hd;
  size_t nlen, plen = 0, vlen;
  if (!h || !name || !*name || !value ||
      (nlen = len_without(name, ":\r\n")) == SIZE_MAX ||
      (*pre && (plen = len_without(pre, "\r\n")) == SIZE_MAX) ||
      (vlen = len_without(value, "\r\n")) == SIZE_MAX)
    return LLMR_E_INVAL;
  if (!(hd = header_slot(&h->headers, h->n_headers, &h->cap_headers,
                         h->inline_headers, LLMR__REQUEST_INLINE_HEADERS)))
    return LLMR_E_NOMEM;
  if (!header_block(h, hd, llmr__header_is_secret(name, nlen), name, nlen,
                    pre, plen, value, vlen))
    return LLMR_E_NOMEM;
  h->n_headers++;
  return LLMR_OK;
}

llmr_status llmr__http_request_add_header_n(llmr_http_request *h,
                                            const char *name, size_t nlen,
                                            const char *prefix, size_t plen,
                                            const char *value, size_t vlen) {
  llmr__header *hd;
  if (!(hd = header_slot(&h->headers, h->n_headers, &h->cap_headers,
                         h->inline_headers, LLMR__REQUEST_INLINE_HEADERS)) ||
      !header_block(h, hd, llmr__header_is_secret(name, nlen), name, nlen,
                    prefix, plen, value, vlen))
    return LLMR_E_NOMEM;
  h->n_headers++;
  return LLMR_OK;
}

LLMR_API llmr_status llmr_http_request_add_header(llmr_http_request *h,
                                                  const char *name,
                                                  const char *value) {
  return add_header(h, name, "", value);
}

llmr_status llmr__http_request_add_header_cat(llmr_http_request *h,
                                              const char *name,
                                              const char *prefix,
                                              const char *value) {
  return add_header(h, name, prefix ? prefix : "", value);
}

LLMR_API llmr_status llmr_http_request_set_body(llmr_http_request *h,
                                                const char *body, size_t len) {
  char *d;
  if (!h || (!body && len))
    return LLMR_E_INVAL;
  if (len == SIZE_MAX ||
      !(d = TAKE(h, len + 1)))
    return LLMR_E_NOMEM;
  if (len)
    memcpy(d, body, len);
  d[len] = '\0';
  if (!IN_ARENA(h, h->body))
    llmr__free(h->body);
  h->body = d;
  h->body_len = len;
  return LLMR_OK;
}

/* Store one raw header line ("Name: value\r\n"); the status line and the
 * blank line are ignored. Names are lowercased, values trimmed. */
llmr_status llmr__http_response_add_header(llmr_http_response *h,
                                           const char *line, size_t len) {
  const char *colon = memchr(line, ':', len);
  const char *v, *end = line + len;
  llmr__header *hd;
  size_t nlen;
  if (!colon || colon == line)
    return LLMR_OK;
  nlen = (size_t)(colon - line);
  v = colon + 1;
  while (v < end && (*v == ' ' || *v == '\t'))
    v++;
  while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' ||
                     end[-1] == '\t'))
    end--;
  if (!(hd = header_slot(&h->headers, h->n_headers, &h->cap_headers,
                         h->inline_headers, LLMR__REPLY_INLINE_HEADERS)) ||
      !reply_header_block(h, hd, line, nlen, v, (size_t)(end - v)))
    return LLMR_E_NOMEM;
  h->n_headers++;
  return LLMR_OK;
}

LLMR_API int llmr_http_response_status(const llmr_http_response *h) {
  return h ? (int)h->status : 0;
}

LLMR_API const char *llmr_http_response_body(const llmr_http_response *h,
                                             size_t *len) {
  if (len)
    *len = h ? h->body.len : 0;
  return h ? llmr__buf_str(&h->body) : "";
}

LLMR_API const char *llmr_http_response_header(const llmr_http_response *h,
                                               const char *name) {
  size_t i;
  if (!h || !name)
    return NULL;
  for (i = h->n_headers; i-- > 0;)
    if (llmr__strcaseeq(h->headers[i].name, name))
      return h->headers[i].value;
  return NULL;
}

/* ---- shared error rules (../shared/WIRE-NOTES.md, "errors") ------------- */

LLMR_API llmr_status llmr_status_from_http(int s) {
  if (s >= 200 && s < 300)
    return LLMR_OK;
  switch (s) {
  case 401:
  case 403:
    return LLMR_E_AUTH;
  case 402:
    return LLMR_E_PAYMENT;
  case 404:
    return LLMR_E_NOT_FOUND;
  case 408:
    return LLMR_E_TIMEOUT;
  case 413:
    return LLMR_E_CONTEXT_LENGTH;
  case 429:
    return LLMR_E_RATE_LIMITED;
  case 503:
  case 529:
    return LLMR_E_OVERLOADED;
  default:
    break;
  }
  if (s >= 500 && s < 600)
    return LLMR_E_SERVER;
  if (s >= 400 && s < 500)
    return LLMR_E_BAD_REQUEST;
  return LLMR_E_PROTOCOL;
}

LLMR_API double llmr_parse_retry_after(const char *v) {
  char *end;
  double d;
  time_t t;
  if (!v)
    return -1;
  while (*v == ' ' || *v == '\t')
    v++;
  if (*v >= '0' && *v <= '9') {
    d = strtod(v, &end);
    while (*end == ' ' || *end == '\t')
      end++;
    return (*end == '\0' && isfinite(d) && d >= 0) ? d : -1;
  }
  /* An HTTP-date; libcurl already knows every format RFC 9110 allows. */
  t = curl_getdate(v, NULL);
  if (t == (time_t)-1)
    return -1;
  d = difftime(t, time(NULL));
  return d > 0 ? d : 0;
}

double llmr__retry_after_from_headers(const llmr_http_response *http) {
  const char *ms = llmr_http_response_header(http, "retry-after-ms");
  double d;
  if (ms && (d = llmr_parse_retry_after(ms)) >= 0)
    return d / 1000.0;
  return llmr_parse_retry_after(llmr_http_response_header(http, "retry-after"));
}

void llmr__error_fields(const cJSON *body, const char **message,
                        const char **type, const char **code) {
  const cJSON *err = cJSON_GetObjectItemCaseSensitive(body, "error");
  const cJSON *v;
  if (!cJSON_IsObject(err))
    err = body;
  *message = llmr__json_str(err, "message");
  if (!*message) /* Mistral's {"detail": "Unauthorized"}, or error: "text" */
    *message = llmr__json_str(err, "detail");
  if (!*message)
    *message = llmr__json_str(body, "error");
  *type = llmr__json_str(err, "type");
  if (!*type)
    *type = llmr__json_str(err, "status");
  v = cJSON_GetObjectItemCaseSensitive(err, "code");
  *code = cJSON_IsString(v) ? v->valuestring : NULL;
  if (!*type)
    *type = *code;
}

int llmr__http_retryable(int code) {
  return code == 408 || code == 409 || code == 429 || code >= 500;
}

int llmr__contains(const char *s, const char *word) {
  return s && word && strstr(s, word) != NULL;
}

/* The last step of every adapter's classify_error: the server's own
 * x-should-retry verdict (the OpenAI and Anthropic SDKs honour it), a
 * printable excerpt of the body when it carried no message, and the
 * error recorded on the response. */
llmr_status llmr__error_finish(const llmr_http_response *http,
                               llmr_response *resp, llmr_status st,
                               const char *type, const char *message,
                               int retryable, double retry_after_s) {
  char fallback[192];
  const char *sr = llmr_http_response_header(http, "x-should-retry");
  if (sr && strcmp(sr, "true") == 0)
    retryable = 1;
  else if (sr && strcmp(sr, "false") == 0)
    retryable = 0;
  if (!message) {
    size_t len, i, n;
    const char *text = llmr_http_response_body(http, &len);
    n = (size_t)snprintf(fallback, sizeof(fallback), "HTTP %d: ",
                         llmr_http_response_status(http));
    for (i = 0; i < len && n + 1 < sizeof(fallback) && i < 120; i++) {
      unsigned char c = (unsigned char)text[i];
      fallback[n++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    fallback[n] = '\0';
    message = fallback;
  }
  if (st == LLMR_OK) /* an error object inside a 2xx */
    st = LLMR_E_PROVIDER;
  return llmr_response_set_error(resp, st, type, message, retryable,
                                 retry_after_s) == LLMR_OK
             ? st
             : LLMR_E_NOMEM;
}
