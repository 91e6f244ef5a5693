/*
 * The transport: the only file that calls libcurl.
 *
 * One share handle per router shares DNS, TLS sessions and the connection
 * cache across every easy handle, so keep-alive connections and TLS session
 * tickets are reused across calls and threads. Easy handles are pooled so
 * that their settings (and curl's internal buffers) survive between calls.
 */
#include "internal.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define LLMR__POOL_MAX 64

struct llmr__transport {
  CURLSH *share;
  pthread_mutex_t locks[CURL_LOCK_DATA_LAST];
  pthread_mutex_t pool_mu;
  CURL *pool[LLMR__POOL_MAX];
  size_t n_pool;
  long connect_timeout_ms;
  long timeout_ms;
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
  for (i = 0; i < t->n_pool; i++)
    curl_easy_cleanup(t->pool[i]);
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
  size_t cap;
  int too_large;
  int oom;
} xfer;

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *user) {
  xfer *x = user;
  size_t n = size * nmemb;
  if (x->resp->body.len + n > x->cap) {
    x->too_large = 1;
    return 0; /* makes curl fail with CURLE_WRITE_ERROR */
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

static CURL *handle_get(llmr__transport *t) {
  CURL *h = NULL;
  pthread_mutex_lock(&t->pool_mu);
  if (t->n_pool)
    h = t->pool[--t->n_pool];
  pthread_mutex_unlock(&t->pool_mu);
  return h ? h : handle_new(t);
}

static void handle_put(llmr__transport *t, CURL *h) {
  /* drop pointers to this call's stack before the handle is parked */
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, NULL);
  pthread_mutex_lock(&t->pool_mu);
  if (t->n_pool < LLMR__POOL_MAX) {
    t->pool[t->n_pool++] = h;
    h = NULL;
  }
  pthread_mutex_unlock(&t->pool_mu);
  if (h)
    curl_easy_cleanup(h);
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

llmr_status llmr__transport_perform(llmr__transport *t,
                                    const llmr_http_request *req,
                                    llmr_http_response *resp, char *errbuf,
                                    size_t errbuf_size) {
  char cerr[CURL_ERROR_SIZE];
  struct curl_slist *hdrs = NULL, *tmp;
  llmr__buf line = {0};
  xfer x;
  CURL *h;
  CURLcode rc;
  llmr_status st;
  size_t i;

  if (!req->url)
    return LLMR_E_INVAL;
  if (!(h = handle_get(t)))
    return LLMR_E_NOMEM;
  for (i = 0; i < req->n_headers; i++) {
    llmr__buf_reset(&line);
    if (llmr__buf_printf(&line, "%s: %s", req->headers[i].name,
                         req->headers[i].value) != 0 ||
        !(tmp = curl_slist_append(hdrs, line.data))) {
      st = LLMR_E_NOMEM;
      goto done_nocall;
    }
    hdrs = tmp;
  }
  /* curl would send "Expect: 100-continue" for larger bodies: one more
   * round trip for nothing against every provider we know */
  if (!(tmp = curl_slist_append(hdrs, "Expect:"))) {
    st = LLMR_E_NOMEM;
    goto done_nocall;
  }
  hdrs = tmp;

  x.resp = resp;
  x.cap = t->max_response_bytes;
  x.too_large = 0;
  x.oom = 0;
  cerr[0] = '\0';
  curl_easy_setopt(h, CURLOPT_URL, req->url);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body ? req->body : "");
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &x);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);

  rc = curl_easy_perform(h);
  st = class_of(rc, &x);
  if (st == LLMR_OK) {
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
  } else if (st == LLMR_E_TOO_LARGE) {
    llmr__errf(errbuf, errbuf_size,
               "response larger than the cap of %zu bytes",
               t->max_response_bytes);
  } else {
    llmr__errf(errbuf, errbuf_size, "%s", cerr[0] ? cerr
                                                  : curl_easy_strerror(rc));
  }
  handle_put(t, h);
  h = NULL;
done_nocall:
  if (h)
    handle_put(t, h);
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
