/*
 * The transport: the only file that calls libcurl.
 *
 * One share handle per router shares DNS and TLS sessions across every
 * handle. Transfers run on pooled slots, each an easy handle with a multi
 * handle of its own: the multi keeps that slot's warm keep-alive
 * connections (what curl_easy_perform's hidden multi did before, see
 * docs/NOTES.md), and driving it ourselves lets a streaming transfer check
 * its first-byte and idle deadlines to the millisecond and stop at once.
 */
#include "internal.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define LLMR__POOL_MAX 64

/* Longest sleep of the transfer loop; curl's own timers and our deadlines
 * make it shorter. */
#define LLMR__POLL_MAX_MS 1000

typedef struct slot {
  CURL *easy;
  CURLM *multi;
} slot;

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
      !(t->share = curl_share_init()))
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
  }
  if (t->share)
    curl_share_cleanup(t->share);
  for (k = 0; k < CURL_LOCK_DATA_LAST; k++)
    pthread_mutex_destroy(&t->locks[k]);
  pthread_mutex_destroy(&t->pool_mu);
  llmr__free(t->ca_file);
  llmr__free(t->user_agent);
  llmr__free(t);
}

/* ---- per-transfer callbacks --------------------------------------------- */

typedef struct xfer {
  llmr_http_response *resp;
  CURL *h;
  size_t cap;   /* response size cap, streamed bytes included */
  size_t total; /* body bytes received */
  llmr__body_sink sink; /* NULL: buffer the whole body */
  void *user;
  double start_ms;
  double last_ms; /* when the last byte (header or body) arrived */
  int got_body;
  int too_large;
  int oom;
  int sink_stop;
} xfer;

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *user) {
  xfer *x = user;
  size_t n = size * nmemb;
  x->last_ms = llmr__now_ms();
  x->got_body = 1;
  if (n > x->cap - x->total) {
    x->too_large = 1;
    return 0; /* makes curl fail with CURLE_WRITE_ERROR */
  }
  x->total += n;
  if (x->sink) {
    long code = 0;
    curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &code);
    x->resp->status = code;
    if (code >= 200 && code < 300) {
      if (x->sink(x->user, x->resp, ptr, n) != 0) {
        x->sink_stop = 1;
        return 0;
      }
      return n;
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
  x->last_ms = llmr__now_ms();
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
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, t->connect_timeout_ms);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, t->timeout_ms);
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
  curl_easy_setopt(h, CURLOPT_USERAGENT, t->user_agent);
  curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE,
                   (curl_off_t)t->max_response_bytes);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
  return h;
}

static int slot_get(llmr__transport *t, slot *s) {
  int have = 0;
  pthread_mutex_lock(&t->pool_mu);
  if (t->n_pool) {
    *s = t->pool[--t->n_pool];
    have = 1;
  }
  pthread_mutex_unlock(&t->pool_mu);
  if (have)
    return 0;
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
  /* drop pointers to this call's stack before the handle is parked */
  curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, NULL);
  curl_easy_setopt(s->easy, CURLOPT_ERRORBUFFER, NULL);
  curl_easy_setopt(s->easy, CURLOPT_POSTFIELDS, NULL);
  curl_easy_setopt(s->easy, CURLOPT_WRITEDATA, NULL);
  curl_easy_setopt(s->easy, CURLOPT_HEADERDATA, NULL);
  pthread_mutex_lock(&t->pool_mu);
  if (t->n_pool < LLMR__POOL_MAX) {
    t->pool[t->n_pool++] = *s;
    s->easy = NULL;
  }
  pthread_mutex_unlock(&t->pool_mu);
  if (s->easy) {
    curl_multi_cleanup(s->multi);
    curl_easy_cleanup(s->easy);
  }
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
    if (x->sink_stop)
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

/*
 * Drive one transfer on the slot's multi handle until it ends, a streaming
 * deadline passes, or a callback stops it. The deadlines are checked each
 * time the loop wakes: curl_multi_poll() sleeps until data arrives, curl's
 * own timer fires, or the nearest deadline is due, so a limit fires within
 * a millisecond or two of its value (never more than LLMR__POLL_MAX_MS
 * late). Leaving the loop early and removing the handle closes an HTTP/1
 * connection (curl does not reuse a connection with a half-read reply).
 */
static CURLcode run(llmr__transport *t, slot *s, xfer *x, int *limit,
                    CURLMcode *mc_out) {
  long first_byte = x->sink ? t->first_byte_timeout_ms : 0;
  long idle = x->sink ? t->idle_timeout_ms : 0;
  CURLcode rc = CURLE_OK;
  CURLMcode mc;
  CURLMsg *msg;
  int running = 1, left;

  *limit = LIMIT_NONE;
  *mc_out = CURLM_OK;
  if ((mc = curl_multi_add_handle(s->multi, s->easy)) != CURLM_OK) {
    *mc_out = mc;
    return CURLE_FAILED_INIT;
  }
  for (;;) {
    double now, due = -1;
    int wait = LLMR__POLL_MAX_MS;
    if ((mc = curl_multi_perform(s->multi, &running)) != CURLM_OK) {
      *mc_out = mc;
      break;
    }
    if (!running)
      break;
    now = llmr__now_ms();
    if (first_byte > 0 && !x->got_body) {
      due = x->start_ms + (double)first_byte;
      if (now >= due) {
        *limit = LIMIT_FIRST_BYTE;
        break;
      }
    } else if (idle > 0 && x->got_body) {
      due = x->last_ms + (double)idle;
      if (now >= due) {
        *limit = LIMIT_IDLE;
        break;
      }
    }
    if (due >= 0 && due - now < (double)wait)
      wait = (int)(due - now) + 1;
    if ((mc = curl_multi_poll(s->multi, NULL, 0, wait, NULL)) != CURLM_OK) {
      *mc_out = mc;
      break;
    }
  }
  if (!running && *mc_out == CURLM_OK) {
    while ((msg = curl_multi_info_read(s->multi, &left)))
      if (msg->msg == CURLMSG_DONE && msg->easy_handle == s->easy)
        rc = msg->data.result;
  }
  curl_multi_remove_handle(s->multi, s->easy);
  return rc;
}

static llmr_status transfer(llmr__transport *t, const llmr_http_request *req,
                            llmr_http_response *resp, llmr__body_sink sink,
                            void *user, char *errbuf, size_t errbuf_size) {
  char cerr[CURL_ERROR_SIZE];
  struct curl_slist *hdrs = NULL, *tmp;
  llmr__buf line = {0};
  xfer x;
  slot s;
  CURLcode rc;
  CURLMcode mc;
  llmr_status st;
  int limit;
  long code = 0;
  size_t i;

  if (!req->url)
    return LLMR_E_INVAL;
  if (slot_get(t, &s) != 0)
    return LLMR_E_NOMEM;
  for (i = 0; i < req->n_headers; i++) {
    llmr__buf_reset(&line);
    if (llmr__buf_printf(&line, "%s: %s", req->headers[i].name,
                         req->headers[i].value) != 0 ||
        !(tmp = curl_slist_append(hdrs, line.data))) {
      st = LLMR_E_NOMEM;
      goto done;
    }
    hdrs = tmp;
  }
  /* curl would send "Expect: 100-continue" for larger bodies: one more
   * round trip for nothing against every provider we know */
  if (!(tmp = curl_slist_append(hdrs, "Expect:"))) {
    st = LLMR_E_NOMEM;
    goto done;
  }
  hdrs = tmp;

  memset(&x, 0, sizeof(x));
  x.resp = resp;
  x.h = s.easy;
  x.cap = t->max_response_bytes;
  x.sink = sink;
  x.user = user;
  x.start_ms = x.last_ms = llmr__now_ms();
  cerr[0] = '\0';
  curl_easy_setopt(s.easy, CURLOPT_URL, req->url);
  curl_easy_setopt(s.easy, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(s.easy, CURLOPT_POSTFIELDSIZE_LARGE,
                   (curl_off_t)req->body_len);
  curl_easy_setopt(s.easy, CURLOPT_POSTFIELDS, req->body ? req->body : "");
  curl_easy_setopt(s.easy, CURLOPT_WRITEDATA, &x);
  curl_easy_setopt(s.easy, CURLOPT_HEADERDATA, &x);
  curl_easy_setopt(s.easy, CURLOPT_ERRORBUFFER, cerr);

  rc = run(t, &s, &x, &limit, &mc);
  if (curl_easy_getinfo(s.easy, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK &&
      code > 0)
    resp->status = code;
  if (limit == LIMIT_FIRST_BYTE) {
    st = LLMR_E_TIMEOUT;
    llmr__errf(errbuf, errbuf_size,
               "no reply byte within first_byte_timeout_ms (%ld ms)",
               t->first_byte_timeout_ms);
  } else if (limit == LIMIT_IDLE) {
    st = LLMR_E_TIMEOUT;
    llmr__errf(errbuf, errbuf_size,
               "stream idle for more than idle_timeout_ms (%ld ms)",
               t->idle_timeout_ms);
  } else if (mc != CURLM_OK) {
    st = mc == CURLM_OUT_OF_MEMORY ? LLMR_E_NOMEM : LLMR_E_TRANSPORT;
    llmr__errf(errbuf, errbuf_size, "%s", curl_multi_strerror(mc));
  } else if ((st = class_of(rc, &x)) == LLMR_E_TOO_LARGE) {
    llmr__errf(errbuf, errbuf_size,
               "response larger than the cap of %zu bytes",
               t->max_response_bytes);
  } else if (st == LLMR_E_ABORTED) {
    llmr__errf(errbuf, errbuf_size, "stopped by the stream consumer");
  } else if (st != LLMR_OK) {
    llmr__errf(errbuf, errbuf_size, "%s",
               cerr[0] ? cerr : curl_easy_strerror(rc));
  }
done:
  slot_put(t, &s);
  /* the slist holds the Authorization header: wipe before freeing */
  for (tmp = hdrs; tmp; tmp = tmp->next) {
    volatile char *v = tmp->data;
    while (*v)
      *v++ = '\0';
  }
  curl_slist_free_all(hdrs);
  if (line.data)
    memset(line.data, 0, line.cap);
  llmr__buf_free(&line);
  return st;
}

llmr_status llmr__transport_perform(llmr__transport *t,
                                    const llmr_http_request *req,
                                    llmr_http_response *resp, char *errbuf,
                                    size_t errbuf_size) {
  return transfer(t, req, resp, NULL, NULL, errbuf, errbuf_size);
}

llmr_status llmr__transport_stream(llmr__transport *t,
                                   const llmr_http_request *req,
                                   llmr_http_response *resp,
                                   llmr__body_sink sink, void *user,
                                   char *errbuf, size_t errbuf_size) {
  if (!sink)
    return LLMR_E_INVAL;
  return transfer(t, req, resp, sink, user, errbuf, errbuf_size);
}
