/*
 * The transport: the only file that calls libcurl.
 *
 * One share handle per router shares DNS and TLS sessions across every
 * handle. Transfers run on pooled slots, each an easy handle with a multi
 * handle of its own: the multi keeps that slot's warm keep-alive
 * connections (what curl_easy_perform's hidden multi did before, see
 * docs/NOTES.md), and driving it ourselves lets a streaming transfer check
 * its first-byte and idle deadlines to the millisecond and stop at once.
 *
 * A hedged exchange (llmr__transport_race) runs two transfers on the first
 * one's multi handle: the second starts when the first has received no
 * byte after the hedge delay, the first 2xx reply to begin its body wins,
 * and the other is removed mid-transfer (which closes its connection).
 */
#include "internal.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LLMR__POOL_MAX 64

/* Longest sleep of the transfer loop; curl's own timers and our deadlines
 * make it shorter. */
#define LLMR__POLL_MAX_MS 1000

typedef struct slot {
  CURL *easy;
  CURLM *multi;
  pthread_t owner; /* the thread that used it last */
  char *url;       /* the URL set on easy, NULL: none */
  CURLU *uh;       /* url parsed, given as CURLOPT_CURLU; NULL: none */
  struct curl_slist *hdrs; /* the header lines of its last transfer, in
                            * secret memory (hdrs_build) */
  size_t hdrs_n;           /* how many of them came from the request */
  unsigned hdrs_extra;     /* EXTRA_*: the transport's lines that follow */
  /* what easy was last given, so that an unchanged value is not set
   * again (curl_easy_setopt is ~60 Ir a call); -1: not set */
  curl_off_t set_body_len;
  long set_timeout_ms, set_connect_ms;
} slot;

/*
 * The header list of a slot holds the Authorization (or x-api-key) line,
 * so it lives in secret memory (src/secret.c: out of core dumps, wiped
 * when freed): one block with the list nodes first, then the lines.
 * CURLOPT_HTTPHEADER only reads a curl_slist, whose layout is public API;
 * the block is never given to curl_slist_free_all.
 */
/* At most this many lines of the transport's own after a request's (its
 * User-Agent and Accept-Encoding: hdrs_extra). */
#define HDRS_EXTRA 2

static struct curl_slist *hdrs_build(const llmr_http_request *r,
                                     const char *const *extra, size_t n_extra) {
  static const char expect[] = "Expect:";
  struct curl_slist *nodes;
  size_t i, n = r->n_headers, k, need, nlen, vlen;
  char *d;
  if (n > (SIZE_MAX - sizeof(expect)) / sizeof(*nodes) - 1 - HDRS_EXTRA)
    return NULL;
  need = (n + n_extra + 1) * sizeof(*nodes) + sizeof(expect);
  for (i = 0; i < n; i++) {
    nlen = strlen(r->headers[i].name);
    vlen = strlen(r->headers[i].value);
    if (nlen > SIZE_MAX / 2 - 3 || vlen > SIZE_MAX / 2 ||
        nlen + vlen + 3 > SIZE_MAX - need)
      return NULL;
    need += nlen + vlen + 3; /* "name: value\0" */
  }
  for (i = 0; i < n_extra; i++)
    need += strlen(extra[i]) + 1; /* short lines of the transport's */
  if (!(nodes = llmr__secret_alloc(need)))
    return NULL;
  d = (char *)(nodes + n + n_extra + 1);
  for (i = 0; i < n; i++) {
    nlen = strlen(r->headers[i].name);
    vlen = strlen(r->headers[i].value);
    nodes[i].data = d;
    nodes[i].next = &nodes[i + 1];
    memcpy(d, r->headers[i].name, nlen);
    memcpy(d + nlen, ": ", 2);
    memcpy(d + nlen + 2, r->headers[i].value, vlen);
    d += nlen + vlen + 3; /* the block is zeroed: the NUL is there */
  }
  for (k = 0; k < n_extra; k++) {
    nlen = strlen(extra[k]);
    memcpy(d, extra[k], nlen);
    nodes[n + k].data = d;
    nodes[n + k].next = &nodes[n + k + 1];
    d += nlen + 1;
  }
  /* curl would send "Expect: 100-continue" for larger bodies: one more
   * round trip for nothing against every provider we know */
  memcpy(d, expect, sizeof(expect));
  nodes[n + n_extra].data = d;
  nodes[n + n_extra].next = NULL;
  return nodes;
}

static void hdrs_free(struct curl_slist *l) { llmr__secret_free(l); }

struct llmr__transport {
  CURLSH *share;
  pthread_mutex_t locks[CURL_LOCK_DATA_LAST];
  pthread_mutex_t pool_mu;
  slot pool[LLMR__POOL_MAX];
  size_t n_pool;
  long connect_timeout_ms;
  long timeout_ms;
  long first_byte_timeout_ms;
  long idle_timeout_ms;
  size_t max_response_bytes;
  char *ca_file;
  char *user_agent;
  /* Header lines curl would otherwise format for every transfer, sent
   * from the cached list instead (bench/PROFILE.md): "User-Agent: ..."
   * and the "Accept-Encoding: ..." that CURLOPT_ACCEPT_ENCODING "" makes
   * curl send (the same list, read from curl's features); NULL: none. */
  char *ua_line;
  char *ae_line;
  int proxy_env; /* a proxy variable was set when the router was made */
};

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access,
                       void *user) {
  llmr__transport *t = user;
  (void)h;
  (void)access;
  pthread_mutex_lock(&t->locks[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *user) {
  llmr__transport *t = user;
  (void)h;
  pthread_mutex_unlock(&t->locks[data]);
}

/* t->ua_line and t->ae_line; -1 on out of memory. */
static int lines_init(llmr__transport *t) {
  static const char *const proxy_vars[] = {"http_proxy",  "https_proxy",
                                           "HTTPS_PROXY", "all_proxy",
                                           "ALL_PROXY"};
  const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
  llmr__buf b = {0};
  size_t i;
  for (i = 0; i < sizeof(proxy_vars) / sizeof(proxy_vars[0]); i++) {
    const char *e = getenv(proxy_vars[i]);
    if (e && *e)
      t->proxy_env = 1;
  }
  if (*t->user_agent &&
      (llmr__buf_puts(&b, "User-Agent: ") ||
       llmr__buf_puts(&b, t->user_agent) || !(t->ua_line = b.data)))
    goto oom;
  b = (llmr__buf){0};
  /* libcurl's own list for CURLOPT_ACCEPT_ENCODING "" (lib/content_encoding.c:
   * its decoders in this order, ", " between); decoding stays curl's */
  if (v && (v->features & CURL_VERSION_LIBZ) &&
      llmr__buf_puts(&b, "Accept-Encoding: deflate, gzip"))
    goto oom;
#ifdef CURL_VERSION_BROTLI
  if (b.len && v && (v->features & CURL_VERSION_BROTLI) &&
      llmr__buf_puts(&b, ", br"))
    goto oom;
#endif
#ifdef CURL_VERSION_ZSTD
  if (b.len && v && (v->features & CURL_VERSION_ZSTD) &&
      llmr__buf_puts(&b, ", zstd"))
    goto oom;
#endif
  t->ae_line = b.data;
  return 0;
oom:
  llmr__buf_free(&b);
  return -1;
}

llmr_status llmr__transport_new(const llmr__transport_opts *o,
                                llmr__transport **out) {
  llmr__transport *t;
  int i;
  *out = NULL;
  if (llmr__global_once() != LLMR_OK)
    return LLMR_E_NOMEM;
  if (!(t = llmr__calloc(1, sizeof(*t))))
    return LLMR_E_NOMEM;
  for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
    pthread_mutex_init(&t->locks[i], NULL);
  pthread_mutex_init(&t->pool_mu, NULL);
  t->connect_timeout_ms = o->connect_timeout_ms;
  t->timeout_ms = o->timeout_ms;
  t->first_byte_timeout_ms = o->first_byte_timeout_ms;
  t->idle_timeout_ms = o->idle_timeout_ms;
  t->max_response_bytes = o->max_response_bytes;
  if ((o->ca_file && !(t->ca_file = llmr__strdup(o->ca_file))) ||
      !(t->user_agent = llmr__strdup(o->user_agent ? o->user_agent
                                                   : "libllmroute/" LLMR_VERSION_STRING)) ||
      !(t->share = curl_share_init()) || lines_init(t) != 0)
    goto fail;
  curl_share_setopt(t->share, CURLSHOPT_LOCKFUNC, share_lock);
  curl_share_setopt(t->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
  curl_share_setopt(t->share, CURLSHOPT_USERDATA, t);
  curl_share_setopt(t->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
  curl_share_setopt(t->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
  /* Connections are not shared through the share handle: with easy
   * handles on several threads libcurl prunes the shared cache to four per
   * handle and most calls reconnect (seen in tests/integration/
   * test_threads.c). Each pooled handle keeps its own warm connections. */
  *out = t;
  return LLMR_OK;
fail:
  llmr__transport_free(t);
  return LLMR_E_NOMEM;
}

void llmr__transport_free(llmr__transport *t) {
  size_t i;
  int k;
  if (!t)
    return;
  for (i = 0; i < t->n_pool; i++) {
    curl_multi_cleanup(t->pool[i].multi);
    curl_easy_cleanup(t->pool[i].easy);
    llmr__free(t->pool[i].url);
    curl_url_cleanup(t->pool[i].uh);
    hdrs_free(t->pool[i].hdrs);
  }
  if (t->share)
    curl_share_cleanup(t->share);
  for (k = 0; k < CURL_LOCK_DATA_LAST; k++)
    pthread_mutex_destroy(&t->locks[k]);
  pthread_mutex_destroy(&t->pool_mu);
  llmr__free(t->ca_file);
  llmr__free(t->user_agent);
  llmr__free(t->ua_line);
  llmr__free(t->ae_line);
  llmr__free(t);
}

/* ---- per-transfer callbacks --------------------------------------------- */

/* Who won a hedged pair: -1 while undecided. */
typedef struct race_state {
  int winner;
} race_state;

typedef struct xfer {
  llmr_http_response *resp;
  CURL *h;
  size_t cap;   /* response size cap, streamed bytes included */
  size_t total; /* body bytes received */
  llmr__body_sink sink; /* NULL: buffer the whole body */
  void *user;
  race_state *race; /* NULL outside a race */
  int idx;          /* this transfer's index in the race */
  double start_ms; /* read for a stream or a hedge only (leg_start) */
  double last_ms;  /* when the last byte (header or body) of a stream came */
  int got_body;
  int got_any;
  int too_large;
  int oom;
  int sink_stop;
  int lost; /* the other transfer of the race won */
} xfer;

/* last_ms only feeds the streaming idle limit: a buffered transfer does
 * not read the clock here (curl calls us once per header line and body
 * chunk, and clock_gettime is not free on every VM). */
static void note_byte(xfer *x) {
  if (x->sink)
    x->last_ms = llmr__now_ms();
  x->got_any = 1;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *user) {
  xfer *x = user;
  size_t n = size * nmemb;
  long code = 0;
  note_byte(x);
  x->got_body = 1;
  if (n > x->cap - x->total) {
    x->too_large = 1;
    return 0; /* makes curl fail with CURLE_WRITE_ERROR */
  }
  x->total += n;
  curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &code);
  x->resp->status = code;
  if (x->race && code >= 200 && code < 300) {
    /* the first 2xx body to begin wins the race; the other stops here */
    if (x->race->winner < 0)
      x->race->winner = x->idx;
    else if (x->race->winner != x->idx) {
      x->lost = 1;
      return 0;
    }
  }
  if (x->sink && code >= 200 && code < 300) {
    if (x->sink(x->user, x->resp, ptr, n) != 0) {
      x->sink_stop = 1;
      return 0;
    }
    return n;
  }
  if (!x->resp->body.data) {
    /* room for the whole body at once when its length is announced (one
     * allocation, no doubling past it); the size cap still applies */
    curl_off_t cl = -1;
    if (curl_easy_getinfo(x->h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl) ==
            CURLE_OK &&
        cl > 0 && (uint64_t)cl <= (uint64_t)x->cap &&
        llmr__buf_reserve(&x->resp->body, (size_t)cl) != 0) {
      x->oom = 1;
      return 0;
    }
  }
  if (llmr__buf_append(&x->resp->body, ptr, n) != 0) {
    x->oom = 1;
    return 0;
  }
  return n;
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *user) {
  xfer *x = user;
  size_t n = size * nmemb;
  note_byte(x);
  if (n >= 5 && memcmp(ptr, "HTTP/", 5) == 0) {
    /* a new response (after 100 Continue, say): forget earlier headers */
    llmr_http_response *r = x->resp;
    llmr__buf saved = r->body;
    r->body = (llmr__buf){0};
    llmr__http_response_clear(r);
    r->body = saved;
    return n;
  }
  if (llmr__http_response_add_header(x->resp, ptr, n) != LLMR_OK) {
    x->oom = 1;
    return 0;
  }
  return n;
}

/* Settings that stay the same for every transfer of this transport. */
static CURL *handle_new(llmr__transport *t) {
  CURL *h = curl_easy_init();
  if (!h)
    return NULL;
  curl_easy_setopt(h, CURLOPT_SHARE, t->share);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
  curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
  curl_easy_setopt(h, CURLOPT_PROTOCOLS, CURLPROTO_HTTP | CURLPROTO_HTTPS);
#endif
  /* Verification is libcurl's default; say so explicitly all the same. */
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
  if (t->ca_file)
    curl_easy_setopt(h, CURLOPT_CAINFO, t->ca_file);
  /* The server gets the User-Agent from the cached list (lines_init).
   * The option only matters for a proxy's CONNECT, and costs a format on
   * every transfer even when the list has the line (~3.4k Ir per call,
   * bench/PROFILE.md): set it only when the environment names a proxy
   * (libcurl takes proxies from there; the router has no proxy option).
   * With no proxy variable set when the router was made, the router never
   * proxies: NOPROXY "*" spares libcurl the dozen getenv() calls and the
   * no_proxy match it would make on every transfer (~2.3k Ir per call,
   * bench/PROFILE.md); a variable set later is not seen, like the rest of
   * the environment (llmr_router_new(3)). */
  if (t->proxy_env)
    curl_easy_setopt(h, CURLOPT_USERAGENT, t->user_agent);
  else
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE,
                   (curl_off_t)t->max_response_bytes);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
  return h;
}

/*
 * Slots are handed back to the thread that used them last when it is
 * parked in the pool: the easy handle's buffers, its connection and the
 * memory curl allocated for them stay in that thread's malloc arena and
 * caches (docs/NOTES.md, "Hot path"). Otherwise the most recently parked
 * slot, as before.
 */
static int slot_get(llmr__transport *t, slot *s) {
  pthread_t self = pthread_self();
  size_t i;
  int have = 0;
  pthread_mutex_lock(&t->pool_mu);
  if (t->n_pool) {
    i = t->n_pool - 1;
    while (i > 0 && !pthread_equal(t->pool[i].owner, self))
      i--;
    if (!pthread_equal(t->pool[i].owner, self))
      i = t->n_pool - 1;
    *s = t->pool[i];
    t->pool[i] = t->pool[--t->n_pool];
    have = 1;
  }
  pthread_mutex_unlock(&t->pool_mu);
  if (have)
    return 0;
  s->url = NULL;
  s->uh = NULL;
  s->hdrs = NULL;
  s->set_body_len = -1;
  s->set_timeout_ms = s->set_connect_ms = -1;
  s->easy = handle_new(t);
  s->multi = curl_multi_init();
  if (!s->easy || !s->multi) {
    curl_easy_cleanup(s->easy);
    curl_multi_cleanup(s->multi);
    return -1;
  }
  return 0;
}

static void slot_put(llmr__transport *t, slot *s) {
  /* drop pointers to this call's stack and request before the handle is
   * parked (the header list is the slot's own and stays set: it goes
   * with the handle) */
  curl_easy_setopt(s->easy, CURLOPT_ERRORBUFFER, NULL);
  curl_easy_setopt(s->easy, CURLOPT_POSTFIELDS, NULL);
  curl_easy_setopt(s->easy, CURLOPT_WRITEDATA, NULL);
  curl_easy_setopt(s->easy, CURLOPT_HEADERDATA, NULL);
  s->owner = pthread_self();
  pthread_mutex_lock(&t->pool_mu);
  if (t->n_pool < LLMR__POOL_MAX) {
    t->pool[t->n_pool++] = *s;
    s->easy = NULL;
  }
  pthread_mutex_unlock(&t->pool_mu);
  if (s->easy) {
    curl_multi_cleanup(s->multi);
    curl_easy_cleanup(s->easy);
    llmr__free(s->url);
    curl_url_cleanup(s->uh);
    hdrs_free(s->hdrs);
  }
  s->url = NULL;
  s->uh = NULL;
  s->hdrs = NULL;
}

static llmr_status class_of(CURLcode rc, const xfer *x) {
  switch (rc) {
  case CURLE_OK:
    return LLMR_OK;
  case CURLE_OUT_OF_MEMORY:
    return LLMR_E_NOMEM;
  case CURLE_OPERATION_TIMEDOUT:
    return LLMR_E_TIMEOUT;
  case CURLE_FILESIZE_EXCEEDED:
    return LLMR_E_TOO_LARGE;
  case CURLE_WRITE_ERROR:
    if (x->sink_stop || x->lost)
      return LLMR_E_ABORTED;
    return x->too_large ? LLMR_E_TOO_LARGE
                        : (x->oom ? LLMR_E_NOMEM : LLMR_E_TRANSPORT);
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CERTPROBLEM:
  case CURLE_SSL_CIPHER:
  case CURLE_SSL_CACERT_BADFILE:
  case CURLE_SSL_ISSUER_ERROR:
  case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
  case CURLE_SSL_INVALIDCERTSTATUS:
  case CURLE_SSL_CRL_BADFILE:
    return LLMR_E_TLS;
  case CURLE_UNSUPPORTED_PROTOCOL:
  case CURLE_URL_MALFORMAT:
    return LLMR_E_INVAL;
  default:
    return LLMR_E_TRANSPORT;
  }
}

/* Which streaming deadline fired, if any. */
enum { LIMIT_NONE, LIMIT_FIRST_BYTE, LIMIT_IDLE };

/* One transfer of a run: the caller's description, the pooled slot, and
 * the callback state. */
typedef struct leg {
  llmr__xfer *x;
  slot s;
  int have_slot;
  xfer cb;
  char cerr[CURL_ERROR_SIZE];
  int active; /* in the multi handle */
  int done;
  CURLcode rc;
  CURLMcode mc;
  int limit;
  long timeout_ms;
} leg;

/* slot.hdrs_extra: which of the transport's lines a list carries */
#define EXTRA_UA 1u
#define EXTRA_AE 2u

/* Does s hold exactly the lines leg_prepare would build for r with the
 * transport's lines `mask`? Those and the closing "Expect:" are the
 * transport's own (hdrs_build): the mask and the count stand for them. */
static int hdrs_match(const slot *s, const llmr_http_request *r,
                      unsigned mask) {
  const struct curl_slist *l = s->hdrs;
  size_t i, n;
  if (!l || s->hdrs_n != r->n_headers || s->hdrs_extra != mask)
    return 0;
  for (i = 0; i < r->n_headers; i++, l = l->next) {
    const char *name = r->headers[i].name;
    n = strlen(name);
    if (strncmp(l->data, name, n) != 0 || l->data[n] != ':' ||
        l->data[n + 1] != ' ' || strcmp(l->data + n + 2, r->headers[i].value))
      return 0;
  }
  return 1;
}

/* The transport's lines to add after r's, each unless r has its own
 * (llmr_http_request.has); their EXTRA_* mask. */
static unsigned hdrs_extra(const llmr__transport *t,
                           const llmr_http_request *r,
                           const char *extra[HDRS_EXTRA], size_t *n) {
  unsigned mask = 0;
  *n = 0;
  if (t->ua_line && !(r->has & LLMR__HAS_USER_AGENT)) {
    extra[(*n)++] = t->ua_line;
    mask |= EXTRA_UA;
  }
  if (t->ae_line && !(r->has & LLMR__HAS_ACCEPT_ENCODING)) {
    extra[(*n)++] = t->ae_line;
    mask |= EXTRA_AE;
  }
  return mask;
}

/* Get a slot and set up the transfer; LLMR_OK or the failure (on x). */
static llmr_status leg_prepare(llmr__transport *t, leg *l, race_state *race,
                               int idx) {
  llmr__xfer *x = l->x;
  const char *extra[HDRS_EXTRA];
  size_t n_extra;
  unsigned mask;
  long connect_ms;
  llmr_status st = LLMR_OK;

  if (!x->req->url)
    return LLMR_E_INVAL;
  if (slot_get(t, &l->s) != 0)
    return LLMR_E_NOMEM;
  l->have_slot = 1;
  /* the header lines stay on the slot between transfers and are built
   * again only when they differ (a different provider, key or stream) */
  mask = hdrs_extra(t, x->req, extra, &n_extra);
  if (!hdrs_match(&l->s, x->req, mask)) {
    hdrs_free(l->s.hdrs);
    l->s.hdrs = hdrs_build(x->req, extra, n_extra);
    /* set whenever it changes (NULL too: curl must not keep the old) */
    curl_easy_setopt(l->s.easy, CURLOPT_HTTPHEADER, l->s.hdrs);
    if (!l->s.hdrs) {
      st = LLMR_E_NOMEM;
      goto out;
    }
    l->s.hdrs_n = x->req->n_headers;
    l->s.hdrs_extra = mask;
  }

  memset(&l->cb, 0, sizeof(l->cb));
  l->cb.resp = x->resp;
  l->cb.h = l->s.easy;
  l->cb.cap = t->max_response_bytes;
  l->cb.sink = x->sink;
  l->cb.user = x->user;
  l->cb.race = race;
  l->cb.idx = idx;
  l->cerr[0] = '\0';
  l->timeout_ms = x->timeout_ms > 0 ? x->timeout_ms : t->timeout_ms;
  connect_ms = t->connect_timeout_ms < l->timeout_ms ? t->connect_timeout_ms
                                                     : l->timeout_ms;
  /* curl parses the URL again when it is set: skip it when this slot's
   * last transfer went to the same one. It is handed over parsed
   * (CURLOPT_CURLU, the slot's CURLU): given as text, libcurl 7.88 parses
   * it and prints it back normalised on every transfer, reused connection
   * or not (about 13k Ir of a 85k-Ir call, bench/PROFILE.md). The flags
   * are those curl parses CURLOPT_URL with; a URL that parse refuses goes
   * as text, so that curl refuses it as before (test_url_forms). */
  if (!l->s.url || strcmp(l->s.url, x->req->url) != 0) {
    llmr__free(l->s.url);
    l->s.url = NULL;
    if (!l->s.uh)
      l->s.uh = curl_url();
    if (l->s.uh && curl_url_set(l->s.uh, CURLUPART_URL, x->req->url,
                                CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK) {
      curl_easy_setopt(l->s.easy, CURLOPT_CURLU, l->s.uh);
    } else {
      curl_easy_setopt(l->s.easy, CURLOPT_CURLU, NULL);
      if (curl_easy_setopt(l->s.easy, CURLOPT_URL, x->req->url) != CURLE_OK) {
        st = LLMR_E_NOMEM;
        goto out;
      }
    }
    l->s.url = llmr__strdup(x->req->url); /* NULL: set it again next time */
  }
  if (l->s.set_body_len != (curl_off_t)x->req->body_len) {
    curl_easy_setopt(l->s.easy, CURLOPT_POSTFIELDSIZE_LARGE,
                     (curl_off_t)x->req->body_len);
    l->s.set_body_len = (curl_off_t)x->req->body_len;
  }
  curl_easy_setopt(l->s.easy, CURLOPT_POSTFIELDS,
                   x->req->body ? x->req->body : "");
  curl_easy_setopt(l->s.easy, CURLOPT_WRITEDATA, &l->cb);
  curl_easy_setopt(l->s.easy, CURLOPT_HEADERDATA, &l->cb);
  curl_easy_setopt(l->s.easy, CURLOPT_ERRORBUFFER, l->cerr);
  /* per transfer: a call's deadline may shorten the router's limits */
  if (l->s.set_timeout_ms != l->timeout_ms) {
    curl_easy_setopt(l->s.easy, CURLOPT_TIMEOUT_MS, l->timeout_ms);
    l->s.set_timeout_ms = l->timeout_ms;
  }
  if (l->s.set_connect_ms != connect_ms) {
    curl_easy_setopt(l->s.easy, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
    l->s.set_connect_ms = connect_ms;
  }
out:
  return st;
}

/* Start the prepared transfer on multi handle m. Its start time only
 * feeds a stream's limits and the hedge delay (a transfer of a pair has
 * cb.race set): a lone buffered transfer does not read the clock. */
static llmr_status leg_start(leg *l, CURLM *m) {
  CURLMcode mc;
  if (l->cb.sink || l->cb.race)
    l->cb.start_ms = l->cb.last_ms = llmr__now_ms();
  l->x->started = 1;
  if ((mc = curl_multi_add_handle(m, l->s.easy)) != CURLM_OK) {
    l->mc = mc;
    l->done = 1;
    return mc == CURLM_OUT_OF_MEMORY ? LLMR_E_NOMEM : LLMR_E_TRANSPORT;
  }
  l->active = 1;
  return LLMR_OK;
}

static void leg_stop(leg *l, CURLM *m) {
  if (l->active)
    curl_multi_remove_handle(m, l->s.easy);
  l->active = 0;
  l->done = 1;
}

/* The streaming limit that is due for l (-1: none) and whether it fired. */
static double leg_limit_due(llmr__transport *t, leg *l, double now) {
  long first_byte = l->cb.sink ? t->first_byte_timeout_ms : 0;
  long idle = l->cb.sink ? t->idle_timeout_ms : 0;
  double due = -1;
  if (first_byte > 0 && !l->cb.got_body) {
    due = l->cb.start_ms + (double)first_byte;
    if (now >= due)
      l->limit = LIMIT_FIRST_BYTE;
  } else if (idle > 0 && l->cb.got_body) {
    due = l->cb.last_ms + (double)idle;
    if (now >= due)
      l->limit = LIMIT_IDLE;
  }
  return due;
}

/*
 * Drive one or two transfers on the first one's multi handle until every
 * started one has ended. The deadlines are checked each time the loop
 * wakes: curl_multi_poll() sleeps until data arrives, curl's own timer
 * fires, or the nearest deadline (a stream limit, the hedge delay) is due,
 * so a limit fires within a millisecond or two of its value (never more
 * than LLMR__POLL_MAX_MS late). Leaving a transfer early (a limit, a
 * cancel, a lost race) removes its handle, which closes an HTTP/1
 * connection: curl does not reuse one with a half-read reply.
 */
static void run(llmr__transport *t, leg *legs, int n, race_state *race,
                long hedge_ms) {
  CURLM *m = legs[0].s.multi;
  double hedge_due = -1;
  int i;

  if (leg_start(&legs[0], m) != LLMR_OK)
    return;
  if (n > 1 && hedge_ms > 0)
    hedge_due = legs[0].cb.start_ms + (double)hedge_ms;
  for (;;) {
    double now, wait_due = -1;
    int running, left, wait = LLMR__POLL_MAX_MS, busy = 0, timed;
    CURLMcode mc;
    CURLMsg *msg;

    if ((mc = curl_multi_perform(m, &running)) != CURLM_OK) {
      for (i = 0; i < n; i++)
        if (legs[i].active) {
          legs[i].mc = mc;
          leg_stop(&legs[i], m);
        }
      break;
    }
    while ((msg = curl_multi_info_read(m, &left))) {
      if (msg->msg != CURLMSG_DONE)
        continue;
      for (i = 0; i < n; i++)
        if (legs[i].active && msg->easy_handle == legs[i].s.easy) {
          legs[i].rc = msg->data.result;
          leg_stop(&legs[i], m);
        }
    }
    /* a race: a 2xx that ended before its body began also wins */
    for (i = 0; race && race->winner < 0 && i < n; i++) {
      long code = 0;
      if (legs[i].done && legs[i].rc == CURLE_OK && legs[i].mc == CURLM_OK &&
          curl_easy_getinfo(legs[i].s.easy, CURLINFO_RESPONSE_CODE, &code) ==
              CURLE_OK &&
          code >= 200 && code < 300)
        race->winner = i;
    }
    if (race && race->winner >= 0) {
      for (i = 0; i < n; i++)
        if (i != race->winner && legs[i].active) {
          legs[i].cb.lost = 1;
          leg_stop(&legs[i], m);
        }
    }
    /* the clock is only needed for a hedge or a stream's limits */
    timed = hedge_due >= 0;
    for (i = 0; i < n; i++)
      timed |= legs[i].active && legs[i].cb.sink != NULL;
    now = timed ? llmr__now_ms() : 0;
    for (i = 0; i < n; i++) {
      double due;
      if (!legs[i].active)
        continue;
      due = leg_limit_due(t, &legs[i], now);
      if (legs[i].limit != LIMIT_NONE) {
        leg_stop(&legs[i], m);
        continue;
      }
      if (due >= 0 && (wait_due < 0 || due < wait_due))
        wait_due = due;
    }
    /* the hedge: the first transfer has had no byte for hedge_ms */
    if (hedge_due >= 0 && !legs[1].x->started) {
      if (legs[0].done || legs[0].cb.got_any) {
        hedge_due = -1; /* it answered (or failed): no hedge */
      } else if (now >= hedge_due) {
        hedge_due = -1;
        leg_start(&legs[1], m);
        continue; /* perform at once: the hedge's connect starts now */
      } else if (wait_due < 0 || hedge_due < wait_due) {
        wait_due = hedge_due;
      }
    }
    for (i = 0; i < n; i++)
      busy |= legs[i].active;
    if (!busy && hedge_due < 0)
      break;
    if (wait_due >= 0 && wait_due - now < (double)wait)
      wait = wait_due > now ? (int)(wait_due - now) + 1 : 0;
    if ((mc = curl_multi_poll(m, NULL, 0, wait, NULL)) != CURLM_OK) {
      for (i = 0; i < n; i++)
        if (legs[i].active) {
          legs[i].mc = mc;
          leg_stop(&legs[i], m);
        }
      break;
    }
  }
}

/* Fill in x's results from a transfer that ran (or could not start). */
static void fail_xfer(llmr__xfer *x, llmr_status st) {
  x->st = st;
  llmr__errf(x->err, sizeof(x->err), "%s", llmr_status_str(st));
}

static void leg_result(llmr__transport *t, leg *l) {
  llmr__xfer *x = l->x;
  long code = 0, reqsize = 0;
  if (curl_easy_getinfo(l->s.easy, CURLINFO_RESPONSE_CODE, &code) ==
          CURLE_OK &&
      code > 0)
    x->resp->status = code;
  if (curl_easy_getinfo(l->s.easy, CURLINFO_REQUEST_SIZE, &reqsize) ==
          CURLE_OK &&
      reqsize > 0)
    x->sent = 1;
  x->bytes = l->cb.total;
  x->err[0] = '\0';
  if (l->cb.lost) {
    x->st = LLMR_E_ABORTED;
    x->cancelled = 1;
    llmr__errf(x->err, sizeof(x->err),
               "cancelled: the hedged request answered first");
  } else if (l->limit == LIMIT_FIRST_BYTE) {
    x->st = LLMR_E_TIMEOUT;
    llmr__errf(x->err, sizeof(x->err),
               "no reply byte within first_byte_timeout_ms (%ld ms)",
               t->first_byte_timeout_ms);
  } else if (l->limit == LIMIT_IDLE) {
    x->st = LLMR_E_TIMEOUT;
    llmr__errf(x->err, sizeof(x->err),
               "stream idle for more than idle_timeout_ms (%ld ms)",
               t->idle_timeout_ms);
  } else if (l->mc != CURLM_OK) {
    x->st = l->mc == CURLM_OUT_OF_MEMORY ? LLMR_E_NOMEM : LLMR_E_TRANSPORT;
    llmr__errf(x->err, sizeof(x->err), "%s", curl_multi_strerror(l->mc));
  } else if ((x->st = class_of(l->rc, &l->cb)) == LLMR_E_TOO_LARGE) {
    llmr__errf(x->err, sizeof(x->err),
               "response larger than the cap of %zu bytes",
               t->max_response_bytes);
  } else if (x->st == LLMR_E_ABORTED) {
    llmr__errf(x->err, sizeof(x->err), "stopped by the stream consumer");
  } else if (x->st == LLMR_E_TIMEOUT) {
    llmr__errf(x->err, sizeof(x->err), "%s (timeout %ld ms)",
               l->cerr[0] ? l->cerr : curl_easy_strerror(l->rc),
               l->timeout_ms);
  } else if (x->st != LLMR_OK) {
    llmr__errf(x->err, sizeof(x->err), "%s",
               l->cerr[0] ? l->cerr : curl_easy_strerror(l->rc));
  }
}

static void leg_release(llmr__transport *t, leg *l) {
  if (l->have_slot)
    slot_put(t, &l->s);
  l->have_slot = 0;
}

static void xfer_reset(llmr__xfer *x) {
  x->st = LLMR_OK;
  x->err[0] = '\0';
  x->bytes = 0;
  x->started = 0;
  x->sent = 0;
  x->cancelled = 0;
}

int llmr__transport_race(llmr__transport *t, llmr__xfer *a, llmr__xfer *b,
                         long hedge_ms) {
  leg legs[2];
  race_state race = {-1};
  llmr_status st;
  int n = b ? 2 : 1, i;

  memset(legs, 0, sizeof(legs));
  legs[0].x = a;
  legs[1].x = b;
  for (i = 0; i < n; i++)
    xfer_reset(legs[i].x);
  if ((st = leg_prepare(t, &legs[0], n > 1 ? &race : NULL, 0)) != LLMR_OK) {
    leg_release(t, &legs[0]);
    fail_xfer(a, st);
    if (b)
      fail_xfer(b, LLMR_E_ABORTED);
    return -1;
  }
  if (n > 1 && (st = leg_prepare(t, &legs[1], &race, 1)) != LLMR_OK) {
    leg_release(t, &legs[1]);
    n = 1; /* no hedge then; the first runs alone */
    legs[0].cb.race = NULL;
    fail_xfer(b, st);
  }
  run(t, legs, n, n > 1 ? &race : NULL, hedge_ms);
  /* two replies that both ended in one loop turn (empty 2xx bodies): only
   * the winner's counts */
  for (i = 0; n > 1 && race.winner >= 0 && i < n; i++) {
    long code = 0;
    if (i != race.winner && legs[i].x->started && legs[i].rc == CURLE_OK &&
        legs[i].mc == CURLM_OK && legs[i].limit == LIMIT_NONE &&
        curl_easy_getinfo(legs[i].s.easy, CURLINFO_RESPONSE_CODE, &code) ==
            CURLE_OK &&
        code >= 200 && code < 300)
      legs[i].cb.lost = 1;
  }
  for (i = 0; i < n; i++) {
    if (legs[i].x->started)
      leg_result(t, &legs[i]);
    else if (i > 0)
      legs[i].x->st = LLMR_E_ABORTED; /* never started: nothing happened */
    leg_release(t, &legs[i]);
  }
  if (n == 1)
    return a->st == LLMR_OK ? 0 : -1;
  return race.winner >= 0 && legs[race.winner].x->st == LLMR_OK ? race.winner
                                                                 : -1;
}

llmr_status llmr__transport_run(llmr__transport *t, llmr__xfer *x) {
  llmr__transport_race(t, x, NULL, 0);
  return x->st;
}
