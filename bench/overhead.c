/*
 * What llmr_complete() adds per non-streaming call over raw libcurl, and
 * what the library holds in memory (bench/README.md).
 *
 *   bench_overhead [run] --upstream PATH [--threads 1,4,16] [--rounds 7]
 *                  [--seconds 1] [--warmup-s 0.3] [--capacity-conns 32]
 *                  [--capacity-depth 16] [--capacity-pin 1]
 *       Starts bench_upstream (PATH) and, in interleaved rounds at each
 *       thread count, runs raw libcurl and llmr_complete() against it for
 *       --seconds each, after one warm-up run of each. Every round also
 *       measures the upstream's own capacity with a light epoll client,
 *       pipelining --capacity-depth requests per connection and again one
 *       at a time. Prints Markdown.
 *   bench_overhead memory --upstream PATH [--runs 5] [--threads 16]
 *                  [--calls 10000,100000]
 *       Resident memory of a process with one router and --threads threads
 *       after each number of calls, one fresh process per run; then the
 *       peak memory of one call with a 1 MiB answer (llmr_complete and raw
 *       libcurl), one fresh process per run. Prints Markdown.
 *   bench_overhead profile --upstream PATH [--calls 2000]
 *       --calls (+ 20 warm-up) calls each in profile_llmr() (llmr_complete),
 *       profile_raw() (raw libcurl) and profile_rawx() (raw libcurl set up
 *       and driven like src/http_curl.c), for valgrind --tool=callgrind
 *       --toggle-collect=profile_llmr ... (bench/profile.sh).
 *   bench_overhead client --kind raw|rawx|llmr --base URL
 *                  [--header 'K: V']... [--body-from http://HOST:PORT]
 *                  [--threads N] [--seconds S] [--warmup-s S] [--stream]
 *       One measured run against any OpenAI-compatible base URL (for the
 *       peers benchmark, bench/peers.mjs); prints one JSON line.
 *   bench_overhead capacity --port N --pid N --body-from http://HOST:PORT
 *                  [--capacity-conns N] [--capacity-depth D]
 *                  [--capacity-pin 0|1] [--seconds S]
 *       The upstream's capacity alone (at depth D only); one JSON line.
 *
 * The raw client sends exactly the bytes llmr_complete() sends: the
 * upstream records one llmr_complete() request (path /capture/...) and
 * the raw client replays its headers and body (GET /last-request).
 *
 * SPDX-License-Identifier: MIT
 */
#define _GNU_SOURCE
#include "bench.h"

#include <llmroute.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 64
#define MAX_HEADERS 32
#define MODEL "openai/gpt-4o-mini"

enum { RAW = 0, LLMR = 1, RAWX = 2 };
static const char *kind_name[] = {"raw libcurl", "llmr_complete"};

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void die(const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "bench_overhead: ");
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  exit(1);
}

/* ---- small utilities ----------------------------------------------------- */

typedef struct buf {
  char *p;
  size_t len, cap;
} buf;

static void buf_add(buf *b, const char *p, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t c = b->cap ? b->cap : 4096;
    while (c < b->len + n + 1)
      c *= 2;
    if (!(b->p = realloc(b->p, c)))
      die("out of memory");
    b->cap = c;
  }
  memcpy(b->p + b->len, p, n);
  b->len += n;
  b->p[b->len] = '\0';
}

static size_t on_body_buf(char *p, size_t size, size_t n, void *user) {
  buf_add(user, p, size * n);
  return size * n;
}

/* kB from /proc/self/status ("VmRSS", "VmHWM"); -1 if not found. */
static long status_kb(const char *key) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  size_t kl = strlen(key);
  long v = -1;
  if (!f)
    return -1;
  while (fgets(line, sizeof(line), f))
    if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
      v = atol(line + kl + 1);
      break;
    }
  fclose(f);
  return v;
}

/* CPU time (user + system) of this process in µs; *csw: voluntary +
 * involuntary context switches. */
static double cpu_us(long *csw) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  if (csw)
    *csw = ru.ru_nvcsw + ru.ru_nivcsw;
  return (double)ru.ru_utime.tv_sec * 1e6 + (double)ru.ru_utime.tv_usec +
         (double)ru.ru_stime.tv_sec * 1e6 + (double)ru.ru_stime.tv_usec;
}

/* CPU time (user + system) of another process in µs, from /proc; clock
 * ticks, so 10 ms resolution at the usual 100 Hz. */
static double proc_cpu_us(pid_t pid) {
  char path[64], line[1024], *p;
  unsigned long ut = 0, st = 0;
  FILE *f;
  int i;
  snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
  if (!(f = fopen(path, "r")))
    return 0;
  if (!fgets(line, sizeof(line), f)) {
    fclose(f);
    return 0;
  }
  fclose(f);
  /* fields after the ")" of the command: state is field 3; utime 14,
   * stime 15 */
  if (!(p = strrchr(line, ')')))
    return 0;
  p += 2;
  for (i = 3; i < 14 && p; i++) {
    p = strchr(p, ' ');
    if (p)
      p++;
  }
  if (!p || sscanf(p, "%lu %lu", &ut, &st) != 2)
    return 0;
  return (double)(ut + st) * 1e6 / (double)sysconf(_SC_CLK_TCK);
}

static int parse_list(const char *s, long *out, int max) {
  int n = 0;
  while (*s && n < max) {
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || v < 1)
      return -1;
    out[n++] = v;
    s = *end == ',' ? end + 1 : end;
  }
  return n;
}

/* ---- the upstream -------------------------------------------------------- */

static pid_t upstream_pid;
static int upstream_fd = -1;
static int upstream_port;

static void upstream_start(const char *path) {
  int out[2], in[2];
  char line[64];
  FILE *f;
  if (pipe(out) != 0 || pipe(in) != 0)
    die("pipe");
  if ((upstream_pid = fork()) < 0)
    die("fork");
  if (upstream_pid == 0) {
    dup2(out[1], 1);
    dup2(in[0], 0); /* the server exits when this pipe closes */
    close(out[0]);
    close(out[1]);
    close(in[0]);
    close(in[1]);
    execl(path, path, "--threads", "2", (char *)NULL);
    _exit(127);
  }
  close(out[1]);
  close(in[0]);
  upstream_fd = in[1];
  if (!(f = fdopen(out[0], "r")) || !fgets(line, sizeof(line), f) ||
      sscanf(line, "PORT %d", &upstream_port) != 1)
    die("the upstream %s did not start", path);
  fclose(f);
}

static void upstream_stop(void) {
  if (upstream_pid <= 0)
    return;
  close(upstream_fd);
  kill(upstream_pid, SIGTERM);
  waitpid(upstream_pid, NULL, 0);
  upstream_pid = 0;
}

/* ---- the exact request llmr_complete() sends ----------------------------- */

typedef struct wire {
  char *headers[MAX_HEADERS]; /* "Name: value", without Host/Content-Length */
  int n_headers;
  char *body;
  size_t body_len;
  char *raw; /* the whole request as sent (for the capacity client) */
  size_t raw_len;
} wire;

static llmr_router *router_new(const char *base) {
  char config[512], err[LLMR_ERRBUF_SIZE];
  llmr_router *r;
  snprintf(config, sizeof(config),
           "{\"use_env\": false, \"providers\": {\"openai\": {\"base_url\": "
           "\"%s\", \"api_key\": \"sk-bench-0000\"}}}",
           base);
  if (llmr_router_new_ex(config, &r, err, sizeof(err)) != LLMR_OK)
    die("router: %s", err);
  return r;
}

static llmr_request *request_new(void) {
  llmr_request *req;
  if (llmr_request_new(&req) != LLMR_OK ||
      llmr_request_add_message(req, LLMR_ROLE_USER, "Say hello.") != LLMR_OK)
    die("request");
  return req;
}

/* Fetch the last /capture/ request from the upstream at base_host
 * ("http://127.0.0.1:PORT") and split it. */
static void wire_fetch(const char *host, wire *w) {
  char url[256], *p, *end, *line;
  buf b = {0};
  CURL *h = curl_easy_init();
  long code = 0;
  snprintf(url, sizeof(url), "%s/last-request", host);
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body_buf);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
  if (curl_easy_perform(h) != CURLE_OK ||
      curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code) != CURLE_OK ||
      code != 200 || !b.p || !(end = strstr(b.p, "\r\n\r\n")))
    die("could not read the captured request from %s", url);
  curl_easy_cleanup(h);
  memset(w, 0, sizeof(*w));
  w->raw = b.p;
  w->raw_len = b.len;
  w->body_len = b.len - (size_t)(end + 4 - b.p);
  if (!(w->body = malloc(w->body_len + 1)))
    die("out of memory");
  memcpy(w->body, end + 4, w->body_len);
  w->body[w->body_len] = '\0';
  /* headers: the lines after the request line */
  p = strstr(b.p, "\r\n") + 2;
  while (p < end + 2) {
    char *nl = strstr(p, "\r\n");
    size_t n = (size_t)(nl - p);
    if (!(line = strndup(p, n)))
      die("out of memory");
    if (strncasecmp(line, "Host:", 5) != 0 &&
        strncasecmp(line, "Content-Length:", 15) != 0 &&
        w->n_headers < MAX_HEADERS - 1)
      w->headers[w->n_headers++] = line;
    else
      free(line);
    p = nl + 2;
  }
  /* never let curl add "Expect: 100-continue" (llmr_complete does not) */
  w->headers[w->n_headers++] = strdup("Expect:");
}

static void wire_free(wire *w) {
  int i;
  free(w->raw);
  free(w->body);
  for (i = 0; i < w->n_headers; i++)
    free(w->headers[i]);
  memset(w, 0, sizeof(*w));
}

/* Make llmr_complete() send one request through /capture/ and read it
 * back. */
static void wire_capture(wire *w) {
  char host[64], base[128];
  const char *models[] = {MODEL};
  llmr_router *r;
  llmr_request *req = request_new();
  llmr_response *resp = NULL;
  snprintf(host, sizeof(host), "http://127.0.0.1:%d", upstream_port);
  snprintf(base, sizeof(base), "%s/capture/v1", host);
  r = router_new(base);
  if (llmr_complete(r, models, 1, req, &resp) != LLMR_OK)
    die("llmr_complete through /capture/: %s", llmr_response_error(resp));
  llmr_response_free(resp);
  llmr_request_free(req);
  llmr_router_free(r);
  wire_fetch(host, w);
}

/* ---- one client thread --------------------------------------------------- */

typedef struct client {
  int kind;
  int stream;
  /* raw (and RAWX: raw libcurl set up and driven like the library) */
  CURL *h;
  CURLM *multi; /* RAWX */
  CURLU *uh;    /* RAWX */
  struct curl_slist *hdrs;
  buf body;
  double t0, first; /* stream: the first body byte / TEXT event */
  /* llmr */
  llmr_router *router;
  const char *model;
  llmr_request *req;
} client;

static size_t on_body_first(char *p, size_t size, size_t n, void *user) {
  client *c = user;
  if (c->first == 0)
    c->first = bench_now_us();
  buf_add(&c->body, p, size * n);
  return size * n;
}

static int on_event(const llmr_event *ev, void *user) {
  client *c = user;
  if (ev->type == LLMR_EVENT_TEXT && c->first == 0)
    c->first = bench_now_us();
  return 0;
}

static void client_raw_init(client *c, const char *url, const wire *w,
                            char *const *extra, int n_extra) {
  int i;
  memset(c, 0, sizeof(*c));
  c->kind = RAW;
  if (!(c->h = curl_easy_init()))
    die("curl_easy_init");
  for (i = 0; i < w->n_headers; i++)
    c->hdrs = curl_slist_append(c->hdrs, w->headers[i]);
  for (i = 0; i < n_extra; i++)
    c->hdrs = curl_slist_append(c->hdrs, extra[i]);
  curl_easy_setopt(c->h, CURLOPT_URL, url);
  curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, c->hdrs);
  curl_easy_setopt(c->h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)w->body_len);
  curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, w->body);
  curl_easy_setopt(c->h, CURLOPT_WRITEFUNCTION, on_body_first);
  curl_easy_setopt(c->h, CURLOPT_WRITEDATA, c);
  curl_easy_setopt(c->h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c->h, CURLOPT_TCP_NODELAY, 1L);
}

/* RAWX, for the profile only: the raw client with the easy-handle options
 * src/http_curl.c sets (share handle for DNS and TLS sessions, content
 * decoding, timeouts, protocol list...) and driven by its own multi handle
 * with curl_multi_perform/curl_multi_poll, as the library drives it; what
 * is left between this and llmr_complete is libllmroute's own work. */
static CURLSH *rawx_share;
static pthread_mutex_t rawx_mu[CURL_LOCK_DATA_LAST];

static void rawx_lock(CURL *h, curl_lock_data d, curl_lock_access a, void *u) {
  (void)h;
  (void)a;
  (void)u;
  pthread_mutex_lock(&rawx_mu[d]);
}

static void rawx_unlock(CURL *h, curl_lock_data d, void *u) {
  (void)h;
  (void)u;
  pthread_mutex_unlock(&rawx_mu[d]);
}

static void client_rawx_init(client *c, const char *url, const wire *w) {
  int i;
  client_raw_init(c, url, w, NULL, 0);
  c->kind = RAWX;
  if (!rawx_share) {
    for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
      pthread_mutex_init(&rawx_mu[i], NULL);
    rawx_share = curl_share_init();
    curl_share_setopt(rawx_share, CURLSHOPT_LOCKFUNC, rawx_lock);
    curl_share_setopt(rawx_share, CURLSHOPT_UNLOCKFUNC, rawx_unlock);
    curl_share_setopt(rawx_share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(rawx_share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
  }
  curl_easy_setopt(c->h, CURLOPT_SHARE, rawx_share);
  curl_easy_setopt(c->h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
  curl_easy_setopt(c->h, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(c->h, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(c->h, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c->h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c->h, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(c->h, CURLOPT_SSL_VERIFYHOST, 2L);
  curl_easy_setopt(c->h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)64 << 20);
  curl_easy_setopt(c->h, CURLOPT_TIMEOUT_MS, 600000L);
  curl_easy_setopt(c->h, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
  /* with no proxy variable, the library says NOPROXY "*", and it hands
   * curl the URL parsed once (CURLOPT_CURLU) */
  curl_easy_setopt(c->h, CURLOPT_NOPROXY, "*");
  if (!(c->uh = curl_url()) ||
      curl_url_set(c->uh, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) !=
          CURLUE_OK)
    die("curl_url_set");
  curl_easy_setopt(c->h, CURLOPT_CURLU, c->uh);
  if (!(c->multi = curl_multi_init()))
    die("curl_multi_init");
}

static CURLcode rawx_perform(client *c) {
  CURLcode rc = CURLE_OK;
  CURLMsg *msg;
  int running = 1, left;
  curl_multi_add_handle(c->multi, c->h);
  for (;;) {
    if (curl_multi_perform(c->multi, &running) != CURLM_OK || !running)
      break;
    if (curl_multi_poll(c->multi, NULL, 0, 1000, NULL) != CURLM_OK)
      break;
  }
  while ((msg = curl_multi_info_read(c->multi, &left)))
    if (msg->msg == CURLMSG_DONE)
      rc = msg->data.result;
  curl_multi_remove_handle(c->multi, c->h);
  return rc;
}

static void client_llmr_init(client *c, llmr_router *r, const char *model) {
  memset(c, 0, sizeof(*c));
  c->kind = LLMR;
  c->router = r;
  c->model = model;
  c->req = request_new();
}

static void client_free(client *c) {
  if (c->multi)
    curl_multi_cleanup(c->multi);
  if (c->h)
    curl_easy_cleanup(c->h);
  curl_url_cleanup(c->uh);
  curl_slist_free_all(c->hdrs);
  free(c->body.p);
  llmr_request_free(c->req);
  memset(c, 0, sizeof(*c));
}

/* One call; 0 on success. */
static int client_call(client *c, char *err, size_t errsz) {
  c->first = 0;
  c->t0 = bench_now_us();
  if (c->kind == RAW || c->kind == RAWX) {
    long code = 0;
    CURLcode rc;
    c->body.len = 0;
    rc = c->kind == RAW ? curl_easy_perform(c->h) : rawx_perform(c);
    curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &code);
    if (rc != CURLE_OK || code != 200 || c->body.len == 0) {
      snprintf(err, errsz, "raw libcurl: %s, HTTP %ld",
               curl_easy_strerror(rc), code);
      return -1;
    }
  } else {
    const char *models[1];
    llmr_response *resp = NULL;
    llmr_status st;
    models[0] = c->model;
    if (c->stream)
      st = llmr_stream(c->router, models, 1, c->req, on_event, c, &resp);
    else
      st = llmr_complete(c->router, models, 1, c->req, &resp);
    if (st != LLMR_OK || !*llmr_response_text(resp)) {
      snprintf(err, errsz, "llmr: %s",
               resp && llmr_response_error(resp) ? llmr_response_error(resp)
                                                 : llmr_status_name(st));
      llmr_response_free(resp);
      return -1;
    }
    llmr_response_free(resp);
  }
  return 0;
}

/* ---- one timed run: N threads for S seconds ----------------------------- */

typedef struct samples {
  double *v;
  size_t n, cap;
} samples;

static void samples_add(samples *s, double x) {
  if (s->n == s->cap) {
    s->cap = s->cap ? s->cap * 2 : 8192;
    if (!(s->v = realloc(s->v, s->cap * sizeof(double))))
      die("out of memory");
  }
  s->v[s->n++] = x;
}

typedef struct worker {
  client *c;
  pthread_barrier_t *bar;
  double seconds;
  long max_calls; /* 0: no limit */
  double start, finish;
  long calls;
  samples lat, ttft;
  char err[256];
  int failed;
} worker;

static void *worker_main(void *arg) {
  worker *w = arg;
  double end;
  pthread_barrier_wait(w->bar);
  w->start = bench_now_us();
  end = w->start + w->seconds * 1e6;
  for (;;) {
    double t1;
    if (client_call(w->c, w->err, sizeof(w->err)) != 0) {
      w->failed = 1;
      break;
    }
    t1 = bench_now_us();
    w->calls++;
    samples_add(&w->lat, t1 - w->c->t0);
    if (w->c->first > 0)
      samples_add(&w->ttft, w->c->first - w->c->t0);
    if (t1 >= end || (w->max_calls && w->calls >= w->max_calls))
      break;
  }
  w->finish = bench_now_us();
  return NULL;
}

typedef struct result {
  double rps, cpu_per_call, csw_per_call, p50, p99, ttft50;
  double up_cpu_per_call; /* the upstream's CPU time per call */
  long calls;
} result;

static result timed_run(client *cs, int n, double seconds, long max_calls) {
  worker w[MAX_THREADS];
  pthread_t t[MAX_THREADS];
  pthread_barrier_t bar;
  samples all = {0}, ttft = {0};
  double c0, c1, u0, u1, first = 0, last = 0;
  long x0, x1;
  result r;
  int i;
  size_t k;
  memset(&r, 0, sizeof(r));
  memset(w, 0, sizeof(w));
  pthread_barrier_init(&bar, NULL, (unsigned)n + 1);
  for (i = 0; i < n; i++) {
    w[i].c = &cs[i];
    w[i].bar = &bar;
    w[i].seconds = seconds;
    w[i].max_calls = max_calls;
    if (pthread_create(&t[i], NULL, worker_main, &w[i]) != 0)
      die("pthread_create");
  }
  c0 = cpu_us(&x0);
  u0 = upstream_pid > 0 ? proc_cpu_us(upstream_pid) : 0;
  pthread_barrier_wait(&bar);
  for (i = 0; i < n; i++)
    pthread_join(t[i], NULL);
  c1 = cpu_us(&x1);
  u1 = upstream_pid > 0 ? proc_cpu_us(upstream_pid) : 0;
  pthread_barrier_destroy(&bar);
  for (i = 0; i < n; i++) {
    if (w[i].failed)
      die("%s", w[i].err);
    if (i == 0 || w[i].start < first)
      first = w[i].start;
    if (w[i].finish > last)
      last = w[i].finish;
    r.calls += w[i].calls;
    for (k = 0; k < w[i].lat.n; k++)
      samples_add(&all, w[i].lat.v[k]);
    for (k = 0; k < w[i].ttft.n; k++)
      samples_add(&ttft, w[i].ttft.v[k]);
    free(w[i].lat.v);
    free(w[i].ttft.v);
  }
  r.rps = (double)r.calls / ((last - first) / 1e6);
  r.cpu_per_call = (c1 - c0) / (double)r.calls;
  r.csw_per_call = (double)(x1 - x0) / (double)r.calls;
  r.up_cpu_per_call = (u1 - u0) / (double)r.calls;
  r.p50 = bench_median(all.v, all.n);
  r.p99 = bench_quantile(all.v, all.n, 0.99);
  r.ttft50 = ttft.n ? bench_median(ttft.v, ttft.n) : 0;
  free(all.v);
  free(ttft.v);
  return r;
}

/* ---- the upstream's capacity: a light pipelining epoll client ----------- */

#define CAP_MAX_DEPTH 256

typedef struct lconn {
  int fd;
  int out;     /* EPOLLOUT is in the interest set */
  size_t owe;  /* request bytes still to be sent */
  size_t pos;  /* where the next byte to send is in one request */
  size_t body; /* bytes left of the answer body being read */
  int in_body;
  char head[2048]; /* an answer's header block split over reads */
  size_t have;
} lconn;

/* The capacity client's stream of requests: depth + 1 copies of the
 * request, so that any `owe` (at most depth requests) starting at any
 * `pos` is one contiguous run. */
typedef struct lreq {
  char *many;
  size_t len; /* of one request */
} lreq;

typedef struct capres {
  double rps;            /* answers per second */
  double up_cpu_per_req; /* the upstream's CPU time per answer, µs */
  double up_cores;       /* the upstream's CPU time / wall time */
  double gen_cores;      /* this client's CPU time / wall time */
  long answers;          /* whole answers read */
} capres;

static double thread_cpu_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* The length of the body that follows the answer header block h (hl
 * bytes, ending in CRLF CRLF); dies on anything but a 200 with one
 * Content-Length. */
static size_t answer_body_len(const char *h, size_t hl) {
  const char *p = h, *end = h + hl - 2, *nl;
  size_t len = 0;
  int n_cl = 0;
  if (hl < 13 || memcmp(h, "HTTP/1.1 200 ", 13) != 0)
    die("capacity: unexpected answer: %.*s",
        (int)((nl = memchr(h, '\r', hl)) ? nl - h : (ptrdiff_t)hl), h);
  while ((nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
    p = nl + 1; /* the start of a header line */
    if ((size_t)(end - p) > 15 && strncasecmp(p, "content-length:", 15) == 0) {
      const char *d = p + 15;
      size_t v = 0;
      while (*d == ' ' || *d == '\t')
        d++;
      if (*d < '0' || *d > '9')
        die("capacity: bad Content-Length in the answer");
      while (*d >= '0' && *d <= '9' && v <= ((size_t)1 << 30))
        v = v * 10 + (size_t)(*d++ - '0');
      while (*d == ' ' || *d == '\t')
        d++;
      if (*d != '\r' || v > ((size_t)1 << 30))
        die("capacity: bad Content-Length in the answer");
      len = v;
      n_cl++;
    } else if ((size_t)(end - p) > 18 &&
               strncasecmp(p, "transfer-encoding:", 18) == 0)
      die("capacity: a Transfer-Encoding answer (expected Content-Length)");
  }
  if (n_cl != 1)
    die("capacity: %d Content-Length headers in an answer", n_cl);
  return len;
}

/* Send what `c` owes, as much as the socket takes. */
static void lconn_send(int ep, lconn *c, const lreq *q) {
  struct epoll_event ev;
  int want;
  while (c->owe > 0) {
    ssize_t r = send(c->fd, q->many + c->pos, c->owe, MSG_NOSIGNAL);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      break;
    if (r <= 0)
      die("capacity: send: %s", strerror(errno));
    c->owe -= (size_t)r;
    c->pos = (c->pos + (size_t)r) % q->len;
  }
  want = c->owe > 0;
  if (want != c->out) {
    ev.events = EPOLLIN | (want ? EPOLLOUT : 0u);
    ev.data.ptr = c;
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->out = want;
  }
}

/* Count the whole answers in p[0, n) (continuing the one `c` is in the
 * middle of); every byte must belong to an answer to a request sent. */
static long lconn_answers(lconn *c, const char *p, size_t n, long in_flight) {
  long done = 0;
  while (n > 0) {
    const char *h, *e;
    size_t hl;
    if (c->in_body) {
      size_t k = n < c->body ? n : c->body;
      p += k;
      n -= k;
      if ((c->body -= k) == 0) {
        c->in_body = 0;
        done++;
      }
      continue;
    }
    if (done >= in_flight)
      die("capacity: %zu bytes from the upstream with no request in flight",
          n);
    if (c->have == 0 && (e = memmem(p, n, "\r\n\r\n", 4)) != NULL) {
      h = p; /* the whole header block is in this read */
      hl = (size_t)(e + 4 - p);
    } else { /* collect it in c->head */
      size_t from = c->have >= 3 ? c->have - 3 : 0;
      size_t k = n < sizeof(c->head) - c->have ? n : sizeof(c->head) - c->have;
      memcpy(c->head + c->have, p, k);
      if (!(e = memmem(c->head + from, c->have + k - from, "\r\n\r\n", 4))) {
        if (c->have + k == sizeof(c->head))
          die("capacity: answer header longer than %zu bytes",
              sizeof(c->head));
        c->have += k;
        p += k;
        n -= k;
        continue;
      }
      h = c->head;
      hl = (size_t)(e + 4 - c->head);
    }
    c->body = answer_body_len(h, hl);
    p += hl - c->have;
    n -= hl - c->have;
    c->have = 0;
    if (c->body > 0)
      c->in_body = 1;
    else
      done++;
  }
  return done;
}

/* During a capacity measurement (pin > 0): this thread on the first
 * allowed CPU, the upstream's threads on the others, so that neither
 * takes time from the other; pin == 0 puts back the masks the pinning
 * call saved. Nothing is done with one CPU or no upstream PID. */
typedef struct pinning {
  int on; /* this thread was pinned */
  cpu_set_t self;
  int n;
  pid_t tid[64];
  cpu_set_t up[64];
} pinning;

static void pin_set(pinning *pn, int pin) {
  char path[64];
  DIR *d;
  struct dirent *de;
  cpu_set_t gen, rest;
  size_t cpu, first = CPU_SETSIZE;
  int i;
  if (!pin) {
    if (!pn->on)
      return;
    sched_setaffinity(0, sizeof(cpu_set_t), &pn->self);
    for (i = 0; i < pn->n; i++)
      sched_setaffinity(pn->tid[i], sizeof(cpu_set_t), &pn->up[i]);
    pn->on = 0;
    return;
  }
  pn->n = pn->on = 0;
  if (upstream_pid <= 0 ||
      sched_getaffinity(0, sizeof(cpu_set_t), &pn->self) != 0)
    return;
  CPU_ZERO(&gen);
  rest = pn->self;
  for (cpu = 0; cpu < CPU_SETSIZE && first == CPU_SETSIZE; cpu++)
    if (CPU_ISSET(cpu, &pn->self))
      first = cpu;
  if (first == CPU_SETSIZE)
    return;
  CPU_SET(first, &gen);
  CPU_CLR(first, &rest);
  if (CPU_COUNT(&rest) == 0)
    return; /* one CPU: nothing to split */
  snprintf(path, sizeof(path), "/proc/%d/task", (int)upstream_pid);
  if (!(d = opendir(path)))
    die("capacity: %s: %s", path, strerror(errno));
  if (sched_setaffinity(0, sizeof(cpu_set_t), &gen) != 0)
    die("capacity: sched_setaffinity: %s", strerror(errno));
  pn->on = 1;
  while ((de = readdir(d)) != NULL && pn->n < 64) {
    pid_t tid = (pid_t)atoi(de->d_name);
    if (tid <= 0 ||
        sched_getaffinity(tid, sizeof(cpu_set_t), &pn->up[pn->n]) != 0)
      continue;
    if (sched_setaffinity(tid, sizeof(cpu_set_t), &rest) != 0)
      die("capacity: pinning the upstream: %s", strerror(errno));
    pn->tid[pn->n++] = tid;
  }
  closedir(d);
}

/* Answers per second the upstream serves to `conns` keep-alive
 * connections for `seconds`, each connection keeping `depth` requests in
 * flight (HTTP/1.1 pipelining; depth 1: one request, read the whole
 * answer, the next): the first `depth` requests go out in one send(), and
 * as answers come back as many new requests go out, again in one send().
 * The request is the captured one with the path the clients use. One
 * thread, epoll; `pin`: see pin_set(). */
static capres capacity(const wire *w, int conns, int depth, double seconds,
                       int pin) {
  lconn *cs = calloc((size_t)conns, sizeof(*cs));
  struct epoll_event ev, evs[256];
  struct sockaddr_in a;
  static char rbuf[256 * 1024];
  int ep = epoll_create1(0), i, one = 1;
  long done = 0;
  double t0, end, u0, g0;
  lreq q;
  pinning pn;
  capres res;
  const char *sp = memchr(w->raw, ' ', w->raw_len);
  size_t cut = 0; /* "/capture" in the request line */
  if (!cs || ep < 0 || !sp || depth < 1 || depth > CAP_MAX_DEPTH)
    die("capacity: setup");
  if ((size_t)(sp + 1 - w->raw) + 9 < w->raw_len &&
      memcmp(sp + 1, "/capture/", 9) == 0)
    cut = 8;
  q.len = w->raw_len - cut;
  if (!(q.many = malloc(q.len * (size_t)(depth + 1))))
    die("out of memory");
  for (i = 0; i <= depth; i++) {
    char *dst = q.many + q.len * (size_t)i;
    size_t head = (size_t)(sp + 1 - w->raw);
    memcpy(dst, w->raw, head);
    memcpy(dst + head, w->raw + head + cut, w->raw_len - head - cut);
  }
  pin_set(&pn, pin);
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons((uint16_t)upstream_port);
  for (i = 0; i < conns; i++) {
    if ((cs[i].fd = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
        connect(cs[i].fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        fcntl(cs[i].fd, F_SETFL, O_NONBLOCK) != 0)
      die("capacity: connect");
    setsockopt(cs[i].fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    ev.events = EPOLLIN;
    ev.data.ptr = &cs[i];
    epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev);
  }
  u0 = proc_cpu_us(upstream_pid);
  g0 = thread_cpu_us();
  t0 = bench_now_us();
  end = t0 + seconds * 1e6;
  for (i = 0; i < conns; i++) {
    cs[i].owe = q.len * (size_t)depth;
    lconn_send(ep, &cs[i], &q);
  }
  for (;;) {
    int n = epoll_wait(ep, evs, 256, 1000), j;
    double now;
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      die("capacity: the upstream stopped answering");
    for (j = 0; j < n; j++) {
      lconn *c = evs[j].data.ptr;
      if (evs[j].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        /* requests sent or owed and not yet answered */
        long in_flight = depth - (long)(c->owe / q.len), k;
        ssize_t r = recv(c->fd, rbuf, sizeof(rbuf), 0);
        if (r == 0)
          die("capacity: the upstream closed a connection");
        if (r < 0 && errno != EAGAIN && errno != EINTR)
          die("capacity: recv: %s", strerror(errno));
        if (r > 0 && (k = lconn_answers(c, rbuf, (size_t)r, in_flight)) > 0) {
          done += k;
          c->owe += q.len * (size_t)k; /* top up to depth */
        }
      }
      lconn_send(ep, c, &q);
    }
    now = bench_now_us();
    if (now >= end) {
      double wall = now - t0;
      res.answers = done;
      res.rps = (double)done / (wall / 1e6);
      res.up_cpu_per_req = (proc_cpu_us(upstream_pid) - u0) / (double)done;
      res.up_cores = (proc_cpu_us(upstream_pid) - u0) / wall;
      res.gen_cores = (thread_cpu_us() - g0) / wall;
      for (i = 0; i < conns; i++)
        close(cs[i].fd); /* requests may still be in flight: fine */
      close(ep);
      free(cs);
      free(q.many);
      pin_set(&pn, 0);
      return res;
    }
  }
}

enum { C_RPS, C_CPU, C_UP, C_GEN, CN }; /* the fields of capres */

static void capres_store(double **v, int i, capres c) {
  v[C_RPS][i] = c.rps;
  v[C_CPU][i] = c.up_cpu_per_req;
  v[C_UP][i] = c.up_cores;
  v[C_GEN][i] = c.gen_cores;
}

/* ---- run: throughput, latency and CPU per call --------------------------- */

typedef struct stat3 {
  double med, min, max;
} stat3;

static stat3 st3(const double *v, int n) {
  double *c = malloc((size_t)n * sizeof(double));
  stat3 s;
  int i;
  if (!c)
    die("out of memory");
  memcpy(c, v, (size_t)n * sizeof(double));
  s.med = bench_median(c, (size_t)n);
  s.min = s.max = c[0];
  for (i = 1; i < n; i++) {
    if (c[i] < s.min)
      s.min = c[i];
    if (c[i] > s.max)
      s.max = c[i];
  }
  free(c);
  return s;
}

static int cmd_run(const char *upstream, long *threads, int n_threads,
                   int rounds, double seconds, double warmup, int conns,
                   int depth, int pin) {
  char host[64], url[192], base[128];
  wire w;
  llmr_router *router;
  client *raw = calloc(MAX_THREADS, sizeof(client));
  client *lib = calloc(MAX_THREADS, sizeof(client));
  /* the upstream's capacity, every round: [0] pipelined at `depth`, [1]
   * at depth 1 */
  double *cv[2][CN];
  stat3 cs[2][CN];
  int ti, r, i, k, n_cap = 0, best_ti = 0;
  /* per thread count: per round values */
  enum { RPS_RAW, RPS_LIB, RATIO, CPU_RAW, CPU_LIB, CPU_ADD, P50_RAW, P50_LIB,
         P50_ADD, P99_RAW, P99_LIB, P99_ADD, CSW_RAW, CSW_LIB, UP_RAW, UP_LIB,
         NV };
  double *v[NV];
  stat3 s[8][NV];
  double best = 0, fastest_run = 0, up_cores;
  const char *fig;
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

  if (!raw || !lib || n_threads > 8)
    die("setup");
  for (k = 0; k < 2; k++)
    for (i = 0; i < CN; i++)
      if (!(cv[k][i] = calloc((size_t)(rounds * n_threads), sizeof(double))))
        die("out of memory");
  upstream_start(upstream);
  wire_capture(&w);
  snprintf(host, sizeof(host), "http://127.0.0.1:%d", upstream_port);
  snprintf(url, sizeof(url), "%s/v1/chat/completions", host);
  snprintf(base, sizeof(base), "%s/v1", host);
  router = router_new(base);
  for (i = 0; i < MAX_THREADS; i++) {
    client_raw_init(&raw[i], url, &w, NULL, 0);
    client_llmr_init(&lib[i], router, MODEL);
  }
  for (i = 0; i < NV; i++)
    if (!(v[i] = calloc((size_t)rounds, sizeof(double))))
      die("out of memory");

  for (ti = 0; ti < n_threads; ti++) {
    int n = (int)threads[ti];
    if (n > MAX_THREADS)
      die("at most 64 threads");
    timed_run(raw, n, warmup, 0);
    timed_run(lib, n, warmup, 0);
    for (r = 0; r < rounds; r++) {
      result ra, rb;
      if (depth == 1) { /* one measurement serves as both */
        capres cr = capacity(&w, conns, 1, seconds, pin);
        capres_store(cv[0], n_cap, cr);
        capres_store(cv[1], n_cap, cr);
      } else
        for (k = 0; k < 2; k++) { /* [0]: depth, [1]: depth 1; alternating */
          int which = r % 2 ? 1 - k : k;
          capres_store(cv[which], n_cap,
                       capacity(&w, conns, which ? 1 : depth, seconds, pin));
        }
      n_cap++;
      if (r % 2 == 0) {
        ra = timed_run(raw, n, seconds, 0);
        rb = timed_run(lib, n, seconds, 0);
      } else {
        rb = timed_run(lib, n, seconds, 0);
        ra = timed_run(raw, n, seconds, 0);
      }
      v[RPS_RAW][r] = ra.rps;
      v[RPS_LIB][r] = rb.rps;
      v[RATIO][r] = rb.rps / ra.rps;
      v[CPU_RAW][r] = ra.cpu_per_call;
      v[CPU_LIB][r] = rb.cpu_per_call;
      v[CPU_ADD][r] = rb.cpu_per_call - ra.cpu_per_call;
      v[P50_RAW][r] = ra.p50;
      v[P50_LIB][r] = rb.p50;
      v[P50_ADD][r] = rb.p50 - ra.p50;
      v[P99_RAW][r] = ra.p99;
      v[P99_LIB][r] = rb.p99;
      v[P99_ADD][r] = rb.p99 - ra.p99;
      v[CSW_RAW][r] = ra.csw_per_call;
      v[CSW_LIB][r] = rb.csw_per_call;
      v[UP_RAW][r] = ra.up_cpu_per_call;
      v[UP_LIB][r] = rb.up_cpu_per_call;
      if (ra.rps > fastest_run)
        fastest_run = ra.rps;
      if (rb.rps > fastest_run)
        fastest_run = rb.rps;
    }
    for (i = 0; i < NV; i++)
      s[ti][i] = st3(v[i], rounds);
    for (i = RPS_RAW; i <= RPS_LIB; i++)
      if (s[ti][i].med > best) {
        best = s[ti][i].med;
        best_ti = ti;
      }
  }
  for (k = 0; k < 2; k++)
    for (i = 0; i < CN; i++)
      cs[k][i] = st3(cv[k][i], n_cap);
  /* cores the upstream used during the fastest client's runs */
  up_cores = best * (s[best_ti][RPS_RAW].med >= s[best_ti][RPS_LIB].med
                         ? s[best_ti][UP_RAW].med
                         : s[best_ti][UP_LIB].med) / 1e6;

  printf("Request body %zu bytes (what llmr_complete sends for one user "
         "message, replayed byte for byte by the raw client with the same "
         "%d headers), answer about 600 bytes (an OpenAI chat.completion "
         "with usage). %d rounds per thread count, each round one run of "
         "raw libcurl and one of llmr_complete (alternating which goes "
         "first) of %.1f s each, after a %.1f s warm-up run of each; every "
         "thread keeps its own warm connection (raw: one reused easy handle "
         "per thread; llmr: one router shared by all threads). Figures: "
         "median of the rounds (min – max).\n\n",
         w.body_len, w.n_headers - 1, rounds, seconds, warmup);
  fig = depth > 1 ? "pipelined" : "depth-1";
  printf("**Upstream capacity.** bench_upstream (2 epoll threads), measured "
         "before every round (%d runs of %.1f s) by a one-thread epoll client "
         "on %d keep-alive connections with %d request%s in flight on each "
         "(%s): **%.0f req/s** (%.0f – %.0f), **%.1f×** the fastest client's "
         "median (%.0f req/s, %s at %ld threads); the lowest capacity run is "
         "%.1f× the fastest single client run. ",
         n_cap, seconds, conns, depth, depth == 1 ? "" : "s",
         depth > 1 ? "HTTP/1.1 pipelining" : "no pipelining",
         cs[0][C_RPS].med, cs[0][C_RPS].min, cs[0][C_RPS].max,
         cs[0][C_RPS].med / best, best,
         s[best_ti][RPS_RAW].med >= s[best_ti][RPS_LIB].med ? "raw libcurl"
                                                            : "llmr_complete",
         threads[best_ti], cs[0][C_RPS].min / fastest_run);
  if (cs[0][C_RPS].min / fastest_run >= 3)
    printf("Judged on this %s figure, the upstream is not the bottleneck: "
           "≥ 3× the fastest client in every run.\n\n",
           fig);
  else if (cs[0][C_RPS].med / best >= 3)
    printf("Judged on this %s figure: ≥ 3× the fastest client by the "
           "medians, not in every run.\n\n",
           fig);
  else
    printf("**Judged on this %s figure, the measured capacity is below 3× "
           "the fastest client**: on %ld cores the clients at the highest "
           "rates are bound by the machine's CPU, which they share with the "
           "upstream (its %.2f cores below), not by the upstream's speed; "
           "raw and llmr pay the same upstream share, which pulls their "
           "ratio towards 1 there.\n\n",
           fig, ncpu, up_cores);
  if (depth > 1)
    printf("Method: HTTP/1.1 pipelining, the way wrk's pipelining script and "
           "TechEmpower's plaintext test load a server: each connection "
           "sends its first %d requests in one send() and one more for each "
           "answer it reads back (each answer's status and Content-Length "
           "parsed, answers counted exactly). The generator then makes a few "
           "system calls per %d answers instead of several per answer, so "
           "one core of it drives many times more answers than at depth 1. ",
           depth, depth);
  if (pin && ncpu > 1)
    printf("For every capacity run (both depths) the generator is pinned to "
           "one CPU and the upstream's threads to the other%s "
           "(sched_setaffinity, undone after the run; `--capacity-pin 0` "
           "turns this off), which gave higher and steadier figures than "
           "leaving both to the scheduler when this was set up "
           "(bench/README.md): the figure is what the upstream serves with "
           "%ld core%s of its own. ",
           ncpu > 2 ? "s" : "", ncpu - 1, ncpu > 2 ? "s" : "");
  else
    printf("The generator shares the %ld cores with the upstream, so the "
           "figure is a floor. ",
           ncpu);
  printf("Medians during these runs: upstream %.2f of a core, generator "
         "%.2f (loopback TCP work done in interrupt context is charged to "
         "neither)",
         cs[0][C_UP].med, cs[0][C_GEN].med);
  if (pin && ncpu == 2 && cs[0][C_UP].med >= 0.95 &&
      cs[0][C_GEN].med < cs[0][C_UP].med)
    printf(": the upstream's core was the busy one, so the upstream, not "
           "the generator, set the pace.");
  else
    printf(": the upstream did not keep a core of its own busy, so this "
           "figure may be bound by the generator or the machine, not only "
           "by the upstream.");
  if (depth > 1)
    printf(" Pipelining also lets the upstream take a batch with one read "
           "and answer it with one write, so a request costs it less here "
           "than under the clients' one-at-a-time load; the depth-1 figures "
           "below are for that load.");
  printf("\n\n");
  printf("Secondary: at depth 1 (one request in flight per connection, "
         "the same connections, in the same rounds) %.0f req/s (%.0f – "
         "%.0f), %.1f× the fastest client, a floor, since the generator "
         "itself then takes %.2f of a core. The upstream's CPU per request "
         "(/proc/PID/stat) at depth 1 is %.1f µs (%.1f – %.1f), i.e. "
         "**%.0f req/s** with the %ld cores to itself, %.1f× the fastest "
         "client",
         cs[1][C_RPS].med, cs[1][C_RPS].min, cs[1][C_RPS].max,
         cs[1][C_RPS].med / best, cs[1][C_GEN].med, cs[1][C_CPU].med,
         cs[1][C_CPU].min, cs[1][C_CPU].max,
         (double)ncpu * 1e6 / cs[1][C_CPU].med, ncpu,
         (double)ncpu * 1e6 / cs[1][C_CPU].med / best);
  if (depth > 1)
    printf("; pipelined, %.1f µs (%.1f – %.1f)", cs[0][C_CPU].med,
           cs[0][C_CPU].min, cs[0][C_CPU].max);
  printf(". During the fastest client's runs the upstream used %.2f of the "
         "%ld cores.\n\n",
         up_cores, ncpu);

  printf("| threads | raw libcurl req/s | llmr_complete req/s | llmr/raw "
         "| goal | met |\n");
  printf("| ---: | ---: | ---: | ---: | ---: | :---: |\n");
  for (ti = 0; ti < n_threads; ti++) {
    double goal = threads[ti] >= 16 ? 0.95 : (threads[ti] == 1 ? 0.90 : 0);
    printf("| %ld | %.0f (%.0f – %.0f) | %.0f (%.0f – %.0f) | %.3f (%.3f – "
           "%.3f) | ",
           threads[ti], s[ti][RPS_RAW].med, s[ti][RPS_RAW].min,
           s[ti][RPS_RAW].max, s[ti][RPS_LIB].med, s[ti][RPS_LIB].min,
           s[ti][RPS_LIB].max, s[ti][RATIO].med, s[ti][RATIO].min,
           s[ti][RATIO].max);
    if (goal > 0)
      printf("≥ %.2f | %s |\n", goal,
             s[ti][RATIO].med >= goal ? "yes" : "**no**");
    else
      printf("- | - |\n");
  }
  printf("\nllmr/raw is the median of the per-round ratios. CPU is "
         "user + system time of the client process (getrusage) over one "
         "run divided by its calls (the upstream is another process); "
         "switches are its voluntary + involuntary context switches per "
         "call. Latency is per call, from before the call to its return; "
         "\"added\" is llmr minus raw within a round, median of the rounds "
         "(min – max). Times in µs.\n\n");
  printf("| threads | CPU/call raw | CPU/call llmr | CPU added | switches/call "
         "raw | llmr |\n");
  printf("| ---: | ---: | ---: | ---: | ---: | ---: |\n");
  for (ti = 0; ti < n_threads; ti++)
    printf("| %ld | %.1f (%.1f – %.1f) | %.1f (%.1f – %.1f) | %+.1f (%+.1f – "
           "%+.1f) | %.2f | %.2f |\n",
           threads[ti], s[ti][CPU_RAW].med, s[ti][CPU_RAW].min,
           s[ti][CPU_RAW].max, s[ti][CPU_LIB].med, s[ti][CPU_LIB].min,
           s[ti][CPU_LIB].max, s[ti][CPU_ADD].med, s[ti][CPU_ADD].min,
           s[ti][CPU_ADD].max, s[ti][CSW_RAW].med, s[ti][CSW_LIB].med);
  printf("\n| threads | p50 raw | p50 llmr | p50 added | p99 raw | p99 llmr | "
         "p99 added |\n");
  printf("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
  for (ti = 0; ti < n_threads; ti++)
    printf("| %ld | %.0f (%.0f – %.0f) | %.0f (%.0f – %.0f) | "
           "%+.1f (%+.1f – %+.1f) | %.0f (%.0f – %.0f) | %.0f (%.0f – %.0f) | "
           "%+.0f (%+.0f – %+.0f) |\n",
           threads[ti], s[ti][P50_RAW].med, s[ti][P50_RAW].min,
           s[ti][P50_RAW].max, s[ti][P50_LIB].med, s[ti][P50_LIB].min,
           s[ti][P50_LIB].max, s[ti][P50_ADD].med, s[ti][P50_ADD].min,
           s[ti][P50_ADD].max, s[ti][P99_RAW].med, s[ti][P99_RAW].min,
           s[ti][P99_RAW].max, s[ti][P99_LIB].med, s[ti][P99_LIB].min,
           s[ti][P99_LIB].max, s[ti][P99_ADD].med, s[ti][P99_ADD].min,
           s[ti][P99_ADD].max);

  for (i = 0; i < MAX_THREADS; i++) {
    client_free(&raw[i]);
    client_free(&lib[i]);
  }
  for (i = 0; i < NV; i++)
    free(v[i]);
  free(raw);
  free(lib);
  for (k = 0; k < 2; k++)
    for (i = 0; i < CN; i++)
      free(cv[k][i]);
  wire_free(&w);
  llmr_router_free(router);
  upstream_stop();
  return 0;
}

/* ---- memory -------------------------------------------------------------- */

typedef struct mworker {
  client *c;
  atomic_long *issued;
  long target;
  char err[256];
  int failed;
} mworker;

static void *mworker_main(void *arg) {
  mworker *w = arg;
  while (atomic_fetch_add(w->issued, 1) < w->target)
    if (client_call(w->c, w->err, sizeof(w->err)) != 0) {
      w->failed = 1;
      break;
    }
  return NULL;
}

/* One process: one router, n threads, RSS after each checkpoint. Prints
 * "rss_kb after_calls" lines. */
static int cmd_memory_run(int port, int n, long *calls, int n_calls) {
  char base[128];
  llmr_router *router;
  client cs[MAX_THREADS];
  mworker w[MAX_THREADS];
  pthread_t t[MAX_THREADS];
  atomic_long issued = 0;
  int i, k;
  snprintf(base, sizeof(base), "http://127.0.0.1:%d/v1", port);
  router = router_new(base);
  for (i = 0; i < n; i++)
    client_llmr_init(&cs[i], router, MODEL);
  printf("start %ld\n", status_kb("VmRSS"));
  for (k = 0; k < n_calls; k++) {
    for (i = 0; i < n; i++) {
      memset(&w[i], 0, sizeof(w[i]));
      w[i].c = &cs[i];
      w[i].issued = &issued;
      w[i].target = calls[k];
      pthread_create(&t[i], NULL, mworker_main, &w[i]);
    }
    for (i = 0; i < n; i++) {
      pthread_join(t[i], NULL);
      if (w[i].failed)
        die("%s", w[i].err);
    }
    atomic_store(&issued, calls[k]);
    printf("%ld %ld %ld\n", calls[k], status_kb("VmRSS"), status_kb("VmHWM"));
    fflush(stdout);
  }
  for (i = 0; i < n; i++)
    client_free(&cs[i]);
  llmr_router_free(router);
  return 0;
}

/* One process, one call with the 1 MiB answer; prints "hwm_before
 * hwm_after rss_after text_bytes". */
static int cmd_big_run(int port, int kind) {
  char host[64], base[128], url[192], err[256];
  client c;
  llmr_router *router = NULL;
  long h0, h1, rss;
  size_t text = 0;
  snprintf(host, sizeof(host), "http://127.0.0.1:%d", port);
  if (kind == LLMR) {
    const char *models[] = {MODEL};
    llmr_response *resp = NULL;
    /* warm: one small call, so that the peak below is the big answer */
    snprintf(base, sizeof(base), "%s/v1", host);
    router = router_new(base);
    client_llmr_init(&c, router, MODEL);
    if (client_call(&c, err, sizeof(err)) != 0)
      die("%s", err);
    llmr_router_free(router);
    snprintf(base, sizeof(base), "%s/big/v1", host);
    router = router_new(base);
    h0 = status_kb("VmHWM");
    if (llmr_complete(router, models, 1, c.req, &resp) != LLMR_OK)
      die("big: %s", llmr_response_error(resp));
    text = strlen(llmr_response_text(resp));
    h1 = status_kb("VmHWM");
    rss = status_kb("VmRSS");
    llmr_response_free(resp);
  } else {
    wire w;
    memset(&w, 0, sizeof(w));
    w.body = strdup("{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":"
                    "\"user\",\"content\":\"Say hello.\"}]}");
    w.body_len = strlen(w.body);
    w.headers[w.n_headers++] = strdup("Content-Type: application/json");
    w.headers[w.n_headers++] = strdup("Expect:");
    snprintf(url, sizeof(url), "%s/v1/chat/completions", host);
    client_raw_init(&c, url, &w, NULL, 0);
    if (client_call(&c, err, sizeof(err)) != 0)
      die("%s", err);
    snprintf(url, sizeof(url), "%s/big/v1/chat/completions", host);
    curl_easy_setopt(c.h, CURLOPT_URL, url);
    h0 = status_kb("VmHWM");
    if (client_call(&c, err, sizeof(err)) != 0)
      die("%s", err);
    text = c.body.len;
    h1 = status_kb("VmHWM");
    rss = status_kb("VmRSS");
  }
  printf("%ld %ld %ld %zu\n", h0, h1, rss, text);
  client_free(&c);
  llmr_router_free(router);
  return 0;
}

/* Run this program again with args; read its stdout into b. */
static void run_self(char *const *args, buf *b) {
  int p[2];
  pid_t pid;
  char tmp[4096];
  ssize_t r;
  int status;
  if (pipe(p) != 0 || (pid = fork()) < 0)
    die("fork");
  if (pid == 0) {
    dup2(p[1], 1);
    close(p[0]);
    close(p[1]);
    close(upstream_fd);
    execv("/proc/self/exe", args);
    _exit(127);
  }
  close(p[1]);
  b->len = 0;
  while ((r = read(p[0], tmp, sizeof(tmp))) > 0)
    buf_add(b, tmp, (size_t)r);
  close(p[0]);
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || !b->p)
    die("a measuring process failed");
}

static int cmd_memory(const char *upstream, int runs, int n, long *calls,
                      int n_calls) {
  char port[16], nt[16], list[128] = "";
  buf b = {0};
  double start[32], rss[8][32], hwm[8][32];
  double big[2][3][32]; /* kind, (peak added, hwm after, text) */
  int r, k, kind;
  size_t off = 0;
  if (runs > 32 || n_calls > 8)
    die("too many runs or checkpoints");
  upstream_start(upstream);
  snprintf(port, sizeof(port), "%d", upstream_port);
  snprintf(nt, sizeof(nt), "%d", n);
  for (k = 0; k < n_calls; k++)
    off += (size_t)snprintf(list + off, sizeof(list) - off, "%s%ld",
                            k ? "," : "", calls[k]);
  for (r = 0; r < runs; r++) {
    char *args[] = {"bench_overhead", "memory-run", "--port", port,
                    "--threads", nt, "--calls", list, NULL};
    char *p;
    run_self(args, &b);
    p = b.p;
    if (sscanf(p, "start %lf", &start[r]) != 1)
      die("memory-run: %s", b.p);
    for (k = 0; k < n_calls; k++) {
      long c;
      p = strchr(p, '\n') + 1;
      if (sscanf(p, "%ld %lf %lf", &c, &rss[k][r], &hwm[k][r]) != 3)
        die("memory-run: %s", b.p);
    }
  }
  for (kind = 0; kind < 2; kind++)
    for (r = 0; r < runs; r++) {
      char *args[] = {"bench_overhead", "big-run", "--port", port, "--kind",
                      kind == RAW ? "raw" : "llmr", NULL};
      double h0, h1, rs, text;
      run_self(args, &b);
      if (sscanf(b.p, "%lf %lf %lf %lf", &h0, &h1, &rs, &text) != 4)
        die("big-run: %s", b.p);
      big[kind][0][r] = (h1 - h0) / 1024;
      big[kind][1][r] = h1 / 1024;
      big[kind][2][r] = text;
    }
  upstream_stop();

  printf("One process per run (%d runs): one router, %d threads calling "
         "llmr_complete() on it (small answer, as above) until the total "
         "reaches each count; VmRSS from /proc/self/status then. MiB, "
         "median (min – max).\n\n",
         runs, n);
  printf("| after | resident (VmRSS) | peak so far (VmHWM) |\n");
  printf("| --- | ---: | ---: |\n");
  {
    stat3 s0 = st3(start, runs);
    printf("| router + %d requests, before any call | %.1f (%.1f – %.1f) | "
           "|\n",
           n, s0.med / 1024, s0.min / 1024, s0.max / 1024);
  }
  for (k = 0; k < n_calls; k++) {
    stat3 a = st3(rss[k], runs), h = st3(hwm[k], runs);
    printf("| %ld calls | %.1f (%.1f – %.1f) | %.1f (%.1f – %.1f) |\n",
           calls[k], a.med / 1024, a.min / 1024, a.max / 1024, h.med / 1024,
           h.min / 1024, h.max / 1024);
  }
  if (n_calls >= 2) {
    double d[32];
    stat3 s;
    for (r = 0; r < runs; r++)
      d[r] = (rss[n_calls - 1][r] - rss[0][r]) / 1024;
    s = st3(d, runs);
    printf("\nGrowth from %ld to %ld calls: %+.2f MiB (%+.2f – %+.2f), "
           "%+.1f bytes per call (a leak of one small allocation per call "
           "would be ≥ 16): %s.\n",
           calls[0], calls[n_calls - 1], s.med, s.min, s.max,
           s.med * 1048576.0 / (double)(calls[n_calls - 1] - calls[0]),
           s.med * 1048576.0 / (double)(calls[n_calls - 1] - calls[0]) < 16
               ? "no growth beyond allocator noise"
               : "**the process grows**");
  }
  printf("\nOne call whose answer carries 1 MiB of text (bench_upstream "
         "/big/), one fresh process per run (%d runs) after one small call; "
         "peak added = VmHWM after the call minus VmHWM before it. The raw "
         "client keeps the body in one growing buffer and parses nothing. "
         "MiB, median (min – max).\n\n",
         runs);
  printf("| client | peak added by the call | process peak (VmHWM) | text "
         "bytes |\n| --- | ---: | ---: | ---: |\n");
  for (kind = 1; kind >= 0; kind--) {
    stat3 a = st3(big[kind][0], runs), h = st3(big[kind][1], runs),
          t = st3(big[kind][2], runs);
    printf("| %s | %.1f (%.1f – %.1f) | %.1f (%.1f – %.1f) | %.0f |\n",
           kind_name[kind], a.med, a.min, a.max, h.med, h.min, h.max, t.med);
  }
  free(b.p);
  return 0;
}

/* ---- profile ------------------------------------------------------------- */

__attribute__((noinline)) void profile_llmr(client *c, long n);
__attribute__((noinline)) void profile_raw(client *c, long n);
__attribute__((noinline)) void profile_rawx(client *c, long n);

__attribute__((noinline)) void profile_rawx(client *c, long n) {
  char err[256];
  long i;
  for (i = 0; i < n; i++)
    if (client_call(c, err, sizeof(err)) != 0)
      die("%s", err);
}

__attribute__((noinline)) void profile_llmr(client *c, long n) {
  char err[256];
  long i;
  for (i = 0; i < n; i++)
    if (client_call(c, err, sizeof(err)) != 0)
      die("%s", err);
}

__attribute__((noinline)) void profile_raw(client *c, long n) {
  char err[256];
  long i;
  for (i = 0; i < n; i++)
    if (client_call(c, err, sizeof(err)) != 0)
      die("%s", err);
}

static int cmd_profile(const char *upstream, long calls) {
  char host[64], url[192], base[128];
  wire w;
  llmr_router *router;
  client raw, rawx, lib;
  upstream_start(upstream);
  wire_capture(&w);
  snprintf(host, sizeof(host), "http://127.0.0.1:%d", upstream_port);
  snprintf(url, sizeof(url), "%s/v1/chat/completions", host);
  snprintf(base, sizeof(base), "%s/v1", host);
  router = router_new(base);
  client_raw_init(&raw, url, &w, NULL, 0);
  client_rawx_init(&rawx, url, &w);
  client_llmr_init(&lib, router, MODEL);
  /* 20 warm-up calls each, inside the same functions: callgrind counts
   * them too (bench/profile.sh divides by calls + 20) */
  profile_llmr(&lib, 20);
  profile_raw(&raw, 20);
  profile_rawx(&rawx, 20);
  profile_llmr(&lib, calls);
  profile_raw(&raw, calls);
  profile_rawx(&rawx, calls);
  printf("profile: %ld + 20 calls each: llmr_complete, raw libcurl, raw "
         "libcurl set up like the library\n",
         calls);
  client_free(&raw);
  client_free(&rawx);
  client_free(&lib);
  wire_free(&w);
  llmr_router_free(router);
  upstream_stop();
  return 0;
}

/* ---- client: one run against any base URL (bench/peers.mjs) ------------- */

static int cmd_client(int kind, const char *base, char **extra, int n_extra,
                      const char *body_from, int n, double seconds,
                      double warmup, long max_calls, int stream) {
  client cs[MAX_THREADS];
  llmr_router *router = NULL;
  wire w;
  result res;
  long warm_calls = 0;
  char url[512];
  int i;
  snprintf(url, sizeof(url), "%s/chat/completions", base);
  if (kind == RAW || kind == RAWX) {
    if (!body_from)
      die("--kind raw needs --body-from URL");
    wire_fetch(body_from, &w);
    if (stream) {
      /* the same request with "stream": true, as llmr_stream sends it */
      const char *add = "\"stream\":true,\"stream_options\":"
                        "{\"include_usage\":true},";
      char *b = malloc(w.body_len + strlen(add) + 1);
      if (!b || w.body[0] != '{')
        die("stream body");
      sprintf(b, "{%s%s", add, w.body + 1);
      w.body = b;
      w.body_len = strlen(b);
      for (i = 0; i < w.n_headers; i++)
        if (strncasecmp(w.headers[i], "Accept:", 7) == 0)
          w.headers[i] = strdup("Accept: text/event-stream");
    }
  } else {
    router = router_new(base);
  }
  for (i = 0; i < n; i++) {
    if (kind == RAW)
      client_raw_init(&cs[i], url, &w, extra, n_extra);
    else if (kind == RAWX)
      client_rawx_init(&cs[i], url, &w);
    else
      client_llmr_init(&cs[i], router, MODEL);
    cs[i].stream = stream;
  }
  if (warmup > 0)
    warm_calls = timed_run(cs, n, warmup, 0).calls;
  res = timed_run(cs, n, seconds, max_calls);
  printf("{\"kind\":\"%s\",\"threads\":%d,\"calls\":%ld,"
         "\"all_calls\":%ld,\"rps\":%.1f,"
         "\"p50_us\":%.1f,\"p99_us\":%.1f,\"ttft_p50_us\":%.1f,"
         "\"cpu_us_per_call\":%.1f,\"rss_kb\":%ld,\"hwm_kb\":%ld}\n",
         kind == RAW ? "raw" : kind == RAWX ? "rawx" : "llmr", n, res.calls,
         res.calls + warm_calls,
         res.rps, res.p50, res.p99,
         res.ttft50, res.cpu_per_call, status_kb("VmRSS"),
         status_kb("VmHWM"));
  for (i = 0; i < n; i++)
    client_free(&cs[i]);
  llmr_router_free(router);
  return 0;
}

/* ---- capacity: the upstream's rate alone (bench/peers.mjs) -------------- */

static int cmd_capacity(int port, int pid, const char *body_from, int conns,
                        int depth, int pin, double seconds) {
  wire w;
  capres c;
  upstream_port = port;
  upstream_pid = pid; /* read for its CPU time, pinned; never signalled */
  wire_fetch(body_from, &w);
  c = capacity(&w, conns, depth, seconds, pin);
  upstream_pid = 0;
  printf("{\"kind\":\"capacity\",\"conns\":%d,\"depth\":%d,"
         "\"pin\":%d,\"rps\":%.1f,\"upstream_cpu_us_per_req\":%.2f,"
         "\"upstream_cores\":%.2f,\"client_cores\":%.2f,\"answers\":%ld}\n",
         conns, depth, pin, c.rps, c.up_cpu_per_req, c.up_cores, c.gen_cores,
         c.answers);
  wire_free(&w);
  return 0;
}

/* ---- main ---------------------------------------------------------------- */

static void usage(void) {
  fprintf(stderr,
          "usage: bench_overhead [run] --upstream PATH [--threads 1,4,16] "
          "[--rounds N] [--seconds S] [--warmup-s S] [--capacity-conns N] "
          "[--capacity-depth D] [--capacity-pin 0|1]\n"
          "       bench_overhead memory --upstream PATH [--runs N] "
          "[--threads N] [--calls 10000,100000]\n"
          "       bench_overhead profile --upstream PATH [--calls N]\n"
          "       bench_overhead capacity --port N --pid N --body-from HOST "
          "[--capacity-conns N] [--capacity-depth D] [--capacity-pin 0|1] "
          "[--seconds S]\n"
          "       bench_overhead client --kind raw|rawx|llmr --base URL "
          "[--header 'K: V']... [--body-from HOST] [--threads N] "
          "[--seconds S] [--warmup-s S] [--max-calls N] [--stream]\n");
  exit(2);
}

int main(int argc, char **argv) {
  const char *mode = "run", *upstream = NULL, *base = NULL, *body_from = NULL;
  long threads[8] = {1, 4, 16}, calls[8] = {10000, 100000}, max_calls = 0;
  int n_threads = 3, n_calls = 2, rounds = 7, runs = 5, conns = 32, i = 1;
  int depth = 16, pin = 1;
  int port = 0, pid = 0, kind = LLMR, stream = 0, n_extra = 0, rc;
  double seconds = 1.0, warmup = 0.3;
  char *extra[16];
  long profile_calls = 2000;
  int calls_set = 0, threads_set = 0;

  if (argc > 1 && argv[1][0] != '-')
    mode = argv[i++];
  for (; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!v && strcmp(a, "--stream") != 0)
      usage();
    if (strcmp(a, "--upstream") == 0)
      upstream = v;
    else if (strcmp(a, "--threads") == 0) {
      if ((n_threads = parse_list(v, threads, 8)) < 1)
        usage();
      threads_set = 1;
    } else if (strcmp(a, "--calls") == 0) {
      if ((n_calls = parse_list(v, calls, 8)) < 1)
        usage();
      profile_calls = calls[0];
      calls_set = 1;
    } else if (strcmp(a, "--rounds") == 0)
      rounds = atoi(v);
    else if (strcmp(a, "--runs") == 0)
      runs = atoi(v);
    else if (strcmp(a, "--seconds") == 0)
      seconds = atof(v);
    else if (strcmp(a, "--warmup-s") == 0)
      warmup = atof(v);
    else if (strcmp(a, "--capacity-conns") == 0)
      conns = atoi(v);
    else if (strcmp(a, "--capacity-depth") == 0)
      depth = atoi(v);
    else if (strcmp(a, "--capacity-pin") == 0)
      pin = atoi(v) != 0;
    else if (strcmp(a, "--port") == 0)
      port = atoi(v);
    else if (strcmp(a, "--pid") == 0)
      pid = atoi(v);
    else if (strcmp(a, "--kind") == 0)
      kind = strcmp(v, "raw") == 0 ? RAW : strcmp(v, "rawx") == 0 ? RAWX : LLMR;
    else if (strcmp(a, "--base") == 0)
      base = v;
    else if (strcmp(a, "--body-from") == 0)
      body_from = v;
    else if (strcmp(a, "--max-calls") == 0)
      max_calls = atol(v);
    else if (strcmp(a, "--header") == 0 && n_extra < 16)
      extra[n_extra++] = argv[i + 1];
    else if (strcmp(a, "--stream") == 0) {
      stream = 1;
      continue;
    } else
      usage();
    i++;
  }
  if (rounds < 1 || runs < 1 || runs > 32 || seconds <= 0 || conns < 1 ||
      depth < 1 || depth > CAP_MAX_DEPTH || warmup < 0)
    usage();
  signal(SIGPIPE, SIG_IGN);
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
    die("curl_global_init");
  if (strcmp(mode, "run") == 0 && upstream)
    rc = cmd_run(upstream, threads, n_threads, rounds, seconds, warmup, conns,
                 depth, pin);
  else if (strcmp(mode, "memory") == 0 && upstream) {
    if (!calls_set)
      calls[0] = 10000, calls[1] = 100000, n_calls = 2;
    rc = cmd_memory(upstream, runs, threads_set ? (int)threads[0] : 16, calls,
                    n_calls);
  } else if (strcmp(mode, "memory-run") == 0 && port)
    rc = cmd_memory_run(port, (int)threads[0], calls, n_calls);
  else if (strcmp(mode, "big-run") == 0 && port)
    rc = cmd_big_run(port, kind);
  else if (strcmp(mode, "profile") == 0 && upstream)
    rc = cmd_profile(upstream, profile_calls);
  else if (strcmp(mode, "capacity") == 0 && port && body_from)
    rc = cmd_capacity(port, pid, body_from, conns, depth, pin, seconds);
  else if (strcmp(mode, "client") == 0 && base)
    rc = cmd_client(kind, base, extra, n_extra, body_from, (int)threads[0],
                    seconds, warmup, max_calls, stream);
  else
    usage();
  curl_global_cleanup();
  return rc;
}
