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
 * order. Binds 127.0.0.1 on a free port and prints "PORT <n>" on stdout.
 * Exits on SIGTERM/SIGINT (default actions) or when stdin reaches EOF (so
 * it dies with a parent that holds the other end of a pipe).
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

typedef struct conn {
  int fd;
  char *in;
  size_t have;
  /* what is still to be sent: a pending answer (borrowed or owned) */
  const char *out;
  size_t out_len, out_off;
  char *owned; /* a /last-request answer */
  int want_out;
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
  epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  free(c->in);
  free(c->owned);
  free(c);
}

/* Send what is pending; 0 when all is out, 1 when the socket is full,
 * -1 on error. */
static int flush_out(conn *c) {
  while (c->out_off < c->out_len) {
    ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
                     MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return 1;
    if (w <= 0)
      return -1;
    c->out_off += (size_t)w;
  }
  free(c->owned);
  c->owned = NULL;
  c->out = NULL;
  c->out_len = c->out_off = 0;
  return 0;
}

/* Answer the complete requests in c->in; stops early when a reply does
 * not fit in the socket (the rest waits for EPOLLOUT). -1: close. */
static int serve_requests(conn *c) {
  for (;;) {
    char *end, *cl, *line_end;
    size_t hlen, body = 0, total;
    int r;
    if (c->out) {
      if ((r = flush_out(c)) != 0)
        return r < 0 ? -1 : 0;
    }
    if (c->have == 0)
      return 0;
    c->in[c->have] = '\0';
    if (!(end = strstr(c->in, "\r\n\r\n")))
      return c->have >= IN_CAP - 1 ? -1 : 0;
    hlen = (size_t)(end - c->in) + 4;
    cl = strcasestr(c->in, "\r\ncontent-length:");
    if (cl && cl < end)
      body = (size_t)strtoul(cl + 17, NULL, 10);
    total = hlen + body;
    if (total >= IN_CAP)
      return -1;
    if (c->have < total)
      return 0;
    line_end = memchr(c->in, '\r', hlen);
    if (strncmp(c->in, "GET /last-request", 17) == 0) {
      char head[128];
      int hl;
      pthread_mutex_lock(&cap_mu);
      hl = snprintf(head, sizeof(head),
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                    "Content-Length: %zu\r\n\r\n",
                    captured_len);
      if (!(c->owned = malloc((size_t)hl + captured_len + 1)))
        die("malloc");
      memcpy(c->owned, head, (size_t)hl);
      if (captured_len)
        memcpy(c->owned + hl, captured, captured_len);
      c->out = c->owned;
      c->out_len = (size_t)hl + captured_len;
      pthread_mutex_unlock(&cap_mu);
    } else {
      const char *path = memchr(c->in, ' ', (size_t)(line_end - c->in));
      path = path ? path + 1 : "";
      if (strncmp(path, "/capture/", 9) == 0) {
        pthread_mutex_lock(&cap_mu);
        free(captured);
        if (!(captured = malloc(total)))
          die("malloc");
        memcpy(captured, c->in, total);
        captured_len = total;
        pthread_mutex_unlock(&cap_mu);
      }
      if (strncmp(path, "/big/", 5) == 0) {
        c->out = big_ans.data;
        c->out_len = big_ans.len;
      } else {
        c->out = small_ans.data;
        c->out_len = small_ans.len;
      }
    }
    c->out_off = 0;
    memmove(c->in, c->in + total, c->have - total);
    c->have -= total;
  }
}

static void set_out_interest(int ep, conn *c) {
  int want = c->out != NULL;
  if (want != c->want_out) {
    struct epoll_event ev;
    ev.events = EPOLLIN | (want ? EPOLLOUT : 0u);
    ev.data.ptr = c;
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = want;
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
      if (evs[i].events & EPOLLIN) {
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
      set_out_interest(ep, c);
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
    text[i] = (i % 8 == 7) ? ' ' : (char)('a' + i % 26);
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
