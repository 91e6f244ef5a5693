/*
 * A fast, event-driven fake OpenAI upstream for the non-streaming
 * benchmarks (bench/README.md): bench_overhead, bench-peers, the profile.
 *
 * Answers every request on a keep-alive HTTP/1.1 connection with a fixed
 * chat.completion document (Content-Length, four headers), as soon as the
 * request body is in:
 *   any path            the small answer (about 600 bytes, the shape
 *                       api.openai.com sends for a short reply)
 *   a path under /big/  the same document whose content is --big-bytes
 *                       bytes of text (default 1 MiB)
 *   GET /last-request   the last POST whose path starts with /capture/,
 *                       as received (request line, headers, body): how the
 *                       benchmarks learn the exact bytes llmr_complete sent
 *
 *   bench_upstream [--threads N] [--big-bytes N]
 *
 * N threads (default 2), each an epoll loop with its own SO_REUSEPORT
 * listening socket on one port, so the kernel spreads connections over
 * them; no locks on the request path. Pipelined requests are answered in
 * order, and the answers to all the complete requests one read brings go
 * out in one sendmsg() (up to OUT_Q at a time); a request split over
 * several reads waits for the rest. Binds 127.0.0.1 on a free port and
 * prints "PORT <n>" on stdout. Exits on SIGTERM/SIGINT (default actions)
 * or when stdin reaches EOF (so it dies with a parent that holds the other
 * end of a pipe).
 *
 * SPDX-License-Identifier: MIT
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define IN_CAP (256 * 1024) /* largest request accepted */
#define MAX_EVENTS 256

static const char small_content[] = "Hello! How can I help you today?";

#define DOC_HEAD                                                              \
  "{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion\",\"created\":"    \
  "1741569952,\"model\":\"gpt-4o-mini-2024-07-18\",\"choices\":[{\"index\":"  \
  "0,\"message\":{\"role\":\"assistant\",\"content\":\""
#define DOC_TAIL                                                              \
  "\",\"refusal\":null,\"annotations\":[]},\"logprobs\":null,"                \
  "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":9,"              \
  "\"completion_tokens\":9,\"total_tokens\":18,\"prompt_tokens_details\":{"   \
  "\"cached_tokens\":0,\"audio_tokens\":0},\"completion_tokens_details\":{"   \
  "\"reasoning_tokens\":0,\"audio_tokens\":0,\"accepted_prediction_tokens\":" \
  "0,\"rejected_prediction_tokens\":0}},\"service_tier\":\"default\","        \
  "\"system_fingerprint\":\"fp_bench\"}"

typedef struct answer {
  char *data;
  size_t len;
} answer;

static answer small_ans, big_ans;

static pthread_mutex_t cap_mu = PTHREAD_MUTEX_INITIALIZER;
static char *captured;
static size_t captured_len;

/* Answers queued on one connection: a read that brings several complete
 * (pipelined) requests gets all their answers in one sendmsg(). */
#define OUT_Q 128

typedef struct conn {
  int fd;
  char *in;
  size_t have; /* bytes in `in` */
  size_t off;  /* where the first request not yet answered starts */
  /* answers still to be sent, in order: q[q_head .. q_head + q_n) */
  struct iovec q[OUT_Q];
  char *owned[OUT_Q]; /* q[i]'s buffer when it is a /last-request answer */
  int q_head, q_n;
  unsigned events; /* the epoll interest set */
} conn;

static void die(const char *what) {
  perror(what);
  exit(2);
}

static answer make_answer(const char *content, size_t clen) {
  static const char hfmt[] = "HTTP/1.1 200 OK\r\n"
                             "Content-Type: application/json\r\n"
                             "Content-Length: %zu\r\n"
                             "x-request-id: req_bench\r\n"
                             "openai-processing-ms: 0\r\n\r\n";
  size_t blen = sizeof(DOC_HEAD) - 1 + clen + sizeof(DOC_TAIL) - 1;
  char head[256];
  int hl = snprintf(head, sizeof(head), hfmt, blen);
  answer a;
  a.len = (size_t)hl + blen;
  if (!(a.data = malloc(a.len)))
    die("malloc");
  memcpy(a.data, head, (size_t)hl);
  memcpy(a.data + hl, DOC_HEAD, sizeof(DOC_HEAD) - 1);
  memcpy(a.data + (size_t)hl + sizeof(DOC_HEAD) - 1, content, clen);
  memcpy(a.data + (size_t)hl + sizeof(DOC_HEAD) - 1 + clen, DOC_TAIL,
         sizeof(DOC_TAIL) - 1);
  return a;
}

static void conn_close(int ep, conn *c) {
  int i;
  epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  for (i = 0; i < c->q_n; i++)
    free(c->owned[c->q_head + i]);
  free(c->in);
  free(c);
}

/* Send the queued answers, as many per sendmsg() as are queued; 0 when
 * all are out, 1 when the socket is full, -1 on error. */
static int flush_out(conn *c) {
  while (c->q_n > 0) {
    struct msghdr m;
    size_t w;
    ssize_t r;
    memset(&m, 0, sizeof(m));
    m.msg_iov = c->q + c->q_head;
    m.msg_iovlen = (size_t)c->q_n;
    r = sendmsg(c->fd, &m, MSG_NOSIGNAL);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return 1;
    if (r <= 0)
      return -1;
    for (w = (size_t)r; w > 0 && c->q_n > 0;) {
      struct iovec *v = &c->q[c->q_head];
      if (w < v->iov_len) { /* partly sent */
        v->iov_base = (char *)v->iov_base + w;
        v->iov_len -= w;
        break;
      }
      w -= v->iov_len;
      free(c->owned[c->q_head]);
      c->owned[c->q_head] = NULL;
      c->q_head++;
      c->q_n--;
    }
  }
  c->q_head = 0;
  return 0;
}

static void queue_answer(conn *c, const char *p, size_t len, char *owned) {
  int i = c->q_head + c->q_n;
  c->q[i].iov_base = (void *)p;
  c->q[i].iov_len = len;
  c->owned[i] = owned;
  c->q_n++;
}

/* Queue the answer to the complete request at c->in + c->off, if there is
 * one: 1 when queued, 0 when the request is not all in yet, -1 when it is
 * too large. The buffer is NUL-terminated at c->have. */
static int next_request(conn *c) {
  char *req = c->in + c->off, *end, *p, *line_end;
  size_t avail = c->have - c->off, hlen, body = 0, total;
  if (avail == 0)
    return 0;
  if (!(end = memmem(req, avail, "\r\n\r\n", 4)))
    return avail >= IN_CAP - 1 ? -1 : 0;
  hlen = (size_t)(end - req) + 4;
  /* the first header line named Content-Length */
  for (p = req; (p = memchr(p, '\r', (size_t)(end - p))) != NULL; p++)
    if (p[1] == '\n' && strncasecmp(p + 2, "content-length:", 15) == 0) {
      body = (size_t)strtoul(p + 17, NULL, 10);
      break;
    }
  total = hlen + body;
  if (total >= IN_CAP)
    return -1;
  if (avail < total)
    return 0;
  line_end = memchr(req, '\r', hlen);
  if (strncmp(req, "GET /last-request", 17) == 0) {
    char head[128], *owned;
    int hl;
    pthread_mutex_lock(&cap_mu);
    hl = snprintf(head, sizeof(head),
                  "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                  "Content-Length: %zu\r\n\r\n",
                  captured_len);
    if (!(owned = malloc((size_t)hl + captured_len + 1)))
      die("malloc");
    memcpy(owned, head, (size_t)hl);
    if (captured_len)
      memcpy(owned + hl, captured, captured_len);
    queue_answer(c, owned, (size_t)hl + captured_len, owned);
    pthread_mutex_unlock(&cap_mu);
  } else {
    const char *path = memchr(req, ' ', (size_t)(line_end - req));
    path = path ? path + 1 : "";
    if (strncmp(path, "/capture/", 9) == 0) {
      pthread_mutex_lock(&cap_mu);
      free(captured);
      if (!(captured = malloc(total)))
        die("malloc");
      memcpy(captured, req, total);
      captured_len = total;
      pthread_mutex_unlock(&cap_mu);
    }
    if (strncmp(path, "/big/", 5) == 0)
      queue_answer(c, big_ans.data, big_ans.len, NULL);
    else
      queue_answer(c, small_ans.data, small_ans.len, NULL);
  }
  c->off += total;
  return 1;
}

/* Answer the complete requests in c->in, in order: queue an answer for
 * each (up to OUT_Q), send them together, repeat; stops when the socket
 * is full (the rest waits for EPOLLOUT). -1: close. */
static int serve_requests(conn *c) {
  int n = 1, r;
  c->in[c->have] = '\0';
  for (;;) {
    while (c->q_head + c->q_n < OUT_Q && (n = next_request(c)) > 0)
      ;
    r = flush_out(c);
    if (n <= 0 || r != 0) /* all answered, a bad request, or socket full */
      break;
  }
  if (c->off > 0) { /* keep only what is not answered yet */
    memmove(c->in, c->in + c->off, c->have - c->off);
    c->have -= c->off;
    c->off = 0;
  }
  return n < 0 || r < 0 ? -1 : 0;
}

/* Read while there is room, write while answers are queued. */
static void set_interest(int ep, conn *c) {
  unsigned want =
      (c->have < IN_CAP - 1 ? EPOLLIN : 0u) | (c->q_n ? EPOLLOUT : 0u);
  if (want != c->events) {
    struct epoll_event ev;
    ev.events = want;
    ev.data.ptr = c;
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->events = want;
  }
}

static int listener(int port_in, int *port_out) {
  struct sockaddr_in a;
  socklen_t alen = sizeof(a);
  int ls, one = 1;
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons((uint16_t)port_in);
  if ((ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)) < 0 ||
      setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
      setsockopt(ls, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
      bind(ls, (struct sockaddr *)&a, sizeof(a)) != 0 ||
      listen(ls, 1024) != 0 ||
      getsockname(ls, (struct sockaddr *)&a, &alen) != 0)
    die("bench_upstream: listen");
  *port_out = ntohs(a.sin_port);
  return ls;
}

static void *loop(void *arg) {
  int ls = (int)(long)arg, ep, one = 1;
  struct epoll_event ev, evs[MAX_EVENTS];
  if ((ep = epoll_create1(0)) < 0)
    die("epoll_create1");
  ev.events = EPOLLIN;
  ev.data.ptr = NULL; /* the listener */
  if (epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev) != 0)
    die("epoll_ctl");
  for (;;) {
    int n = epoll_wait(ep, evs, MAX_EVENTS, -1), i;
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      die("epoll_wait");
    for (i = 0; i < n; i++) {
      conn *c = evs[i].data.ptr;
      if (!c) {
        int fd;
        while ((fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
          conn *nc = calloc(1, sizeof(*nc));
          if (!nc || !(nc->in = malloc(IN_CAP)))
            die("malloc");
          nc->fd = fd;
          nc->events = EPOLLIN;
          setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
          ev.events = EPOLLIN;
          ev.data.ptr = nc;
          if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0)
            die("epoll_ctl");
        }
        continue;
      }
      if (evs[i].events & (EPOLLERR | EPOLLHUP)) {
        conn_close(ep, c);
        continue;
      }
      if ((evs[i].events & EPOLLIN) && c->have < IN_CAP - 1) {
        ssize_t r = recv(c->fd, c->in + c->have, IN_CAP - 1 - c->have, 0);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
          conn_close(ep, c);
          continue;
        }
        if (r > 0)
          c->have += (size_t)r;
      }
      if (serve_requests(c) < 0) {
        conn_close(ep, c);
        continue;
      }
      set_interest(ep, c);
    }
  }
  return NULL;
}

static void *watch_stdin(void *arg) {
  char c;
  (void)arg;
  while (read(0, &c, 1) > 0)
    ;
  exit(0);
}

int main(int argc, char **argv) {
  int threads = 2, port = 0, i;
  size_t big = 1024 * 1024;
  pthread_t t;
  char *text;
  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
      threads = atoi(argv[++i]);
    else if (strcmp(argv[i], "--big-bytes") == 0 && i + 1 < argc)
      big = (size_t)strtoul(argv[++i], NULL, 10);
    else {
      fprintf(stderr, "usage: bench_upstream [--threads N] [--big-bytes N]\n");
      return 2;
    }
  }
  if (threads < 1 || threads > 64)
    return 2;
  small_ans = make_answer(small_content, sizeof(small_content) - 1);
  if (!(text = malloc(big + 1)))
    die("malloc");
  for (i = 0; (size_t)i < big; i++) /* JSON-safe words and spaces */
    text[i] = (char)((i % 8 == 7) ? ' ' : 'a' + i % 26);
  big_ans = make_answer(text, big);
  free(text);
  {
    int first = listener(0, &port), p2;
    if (pthread_create(&t, NULL, loop, (void *)(long)first) != 0)
      die("pthread_create");
    pthread_detach(t);
    for (i = 1; i < threads; i++) {
      int ls = listener(port, &p2);
      if (pthread_create(&t, NULL, loop, (void *)(long)ls) != 0)
        die("pthread_create");
      pthread_detach(t);
    }
  }
  printf("PORT %d\n", port);
  fflush(stdout);
  watch_stdin(NULL);
  return 0;
}
