/*
 * A minimal paced SSE server for bench_ttft (bench/README.md).
 *
 * Answers every POST, on any path, with an OpenAI chat.completion.chunk
 * stream over HTTP/1.1 chunked encoding, keep-alive: the status line,
 * headers and the first text event in one write, as soon as the request
 * body is in; then one text event every --interval-ms (default 5) until
 * --events text events (default 10) were sent, the last together with the
 * finish chunk, [DONE] and the terminating chunk. Each event is one HTTP
 * chunk and one send() (TCP_NODELAY). One thread per connection.
 *
 * A request whose path contains "/fail503/" gets OpenAI's 503 "overloaded"
 * error instead (JSON with Content-Length, keep-alive): the failing first
 * slug of bench_failover. One whose path contains "/stall/" is read and
 * never answered (the connection is held until the client closes it): the
 * stalling first slug.
 *
 *   bench_server [--events N] [--interval-ms MS]
 *
 * Binds 127.0.0.1 on a free port and prints "PORT <n>" on stdout. Exits on
 * SIGTERM/SIGINT (default actions) or when stdin reaches EOF (so it dies
 * with a parent that holds the other end of a pipe).
 *
 * SPDX-License-Identifier: MIT
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int n_events = 10;
static long interval_ms = 5;

#define CHUNK_HEAD                                                            \
  "{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\","          \
  "\"created\":1741569952,\"model\":\"gpt-4o-mini\",\"system_fingerprint\":"  \
  "\"fp_bench\",\"choices\":["

static int send_all(int fd, const char *p, size_t n) {
  while (n) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Append one SSE event (data: json) as one HTTP chunk to out. */
static size_t put_event(char *out, size_t cap, const char *json) {
  char ev[1024];
  int n = snprintf(ev, sizeof(ev), "data: %s\n\n", json);
  int m = snprintf(out, cap, "%x\r\n%s\r\n", n, ev);
  return m > 0 ? (size_t)m : 0;
}

static size_t text_event(char *out, size_t cap, int i) {
  char json[512];
  if (i == 0)
    snprintf(json, sizeof(json),
             CHUNK_HEAD "{\"index\":0,\"delta\":{\"role\":\"assistant\","
                        "\"content\":\"Hello\"},\"logprobs\":null,"
                        "\"finish_reason\":null}]}");
  else
    snprintf(json, sizeof(json),
             CHUNK_HEAD "{\"index\":0,\"delta\":{\"content\":\" token%d\"},"
                        "\"logprobs\":null,\"finish_reason\":null}]}",
             i);
  return put_event(out, cap, json);
}

static void sleep_until(const struct timespec *t0, long ms) {
  struct timespec t = *t0;
  t.tv_sec += ms / 1000;
  t.tv_nsec += (ms % 1000) * 1000000L;
  if (t.tv_nsec >= 1000000000L) {
    t.tv_sec++;
    t.tv_nsec -= 1000000000L;
  }
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL) == EINTR)
    ;
}

/* Read one request (headers + Content-Length body). 0, or -1 at EOF.
 * *fail is 1 when the request path contains "/fail503/", 2 for "/stall/". */
static int read_request(int fd, char *buf, size_t cap, size_t *have,
                        int *fail) {
  char *end;
  size_t hlen, body = 0;
  const char *cl;
  for (;;) {
    ssize_t r;
    buf[*have] = '\0';
    if ((end = strstr(buf, "\r\n\r\n")))
      break;
    if (*have + 1 >= cap)
      return -1;
    r = recv(fd, buf + *have, cap - 1 - *have, 0);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return -1;
    *have += (size_t)r;
  }
  hlen = (size_t)(end - buf) + 4;
  {
    const char *eol = strstr(buf, "\r\n"), *f = strstr(buf, "/fail503/");
    const char *w = strstr(buf, "/stall/");
    *fail = f && eol && f < eol ? 1 : w && eol && w < eol ? 2 : 0;
  }
  cl = strcasestr(buf, "\r\ncontent-length:");
  if (cl && cl < end)
    body = (size_t)strtoul(cl + 17, NULL, 10);
  while (*have < hlen + body) {
    ssize_t r;
    if (hlen + body >= cap)
      return -1;
    r = recv(fd, buf + *have, cap - 1 - *have, 0);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return -1;
    *have += (size_t)r;
  }
  /* keep what follows (a pipelined request) */
  memmove(buf, buf + hlen + body, *have - hlen - body);
  *have -= hlen + body;
  return 0;
}

static void *serve(void *arg) {
  int fd = (int)(long)arg, one = 1, i;
  static const char head[] = "HTTP/1.1 200 OK\r\n"
                             "Content-Type: text/event-stream; charset=utf-8\r\n"
                             "Cache-Control: no-cache\r\n"
                             "Transfer-Encoding: chunked\r\n\r\n";
  static const char err503[] =
      "{\n  \"error\": {\n    \"message\": \"The server is overloaded or not "
      "ready yet.\",\n    \"type\": \"server_error\",\n    \"param\": null,\n"
      "    \"code\": null\n  }\n}\n";
  char in[65536], out[8192];
  size_t have = 0, n;
  struct timespec t0;
  int fail = 0;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  while (read_request(fd, in, sizeof(in), &have, &fail) == 0) {
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (fail == 2) { /* stall: hold the connection until the client goes */
      for (;;) {
        ssize_t r = recv(fd, in, sizeof(in), 0);
        if (r == 0 || (r < 0 && errno != EINTR))
          break;
      }
      goto done;
    }
    if (fail) {
      int m = snprintf(out, sizeof(out),
                       "HTTP/1.1 503 Service Unavailable\r\n"
                       "Content-Type: application/json\r\n"
                       "Content-Length: %zu\r\n\r\n%s",
                       sizeof(err503) - 1, err503);
      if (m < 0 || send_all(fd, out, (size_t)m) != 0)
        goto done;
      continue;
    }
    memcpy(out, head, sizeof(head) - 1);
    n = sizeof(head) - 1;
    n += text_event(out + n, sizeof(out) - n, 0);
    for (i = 1;; i++) {
      if (i == n_events) { /* the end rides with the last text event */
        n += put_event(out + n, sizeof(out) - n,
                       CHUNK_HEAD "{\"index\":0,\"delta\":{},\"logprobs\":"
                                  "null,\"finish_reason\":\"stop\"}]}");
        n += put_event(out + n, sizeof(out) - n, "[DONE]");
        n += (size_t)snprintf(out + n, sizeof(out) - n, "0\r\n\r\n");
      }
      if (send_all(fd, out, n) != 0)
        goto done;
      if (i == n_events)
        break;
      sleep_until(&t0, (long)i * interval_ms);
      n = text_event(out, sizeof(out), i);
    }
  }
done:
  close(fd);
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
  struct sockaddr_in a;
  socklen_t alen = sizeof(a);
  pthread_t t;
  int ls, i, one = 1;
  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--events") == 0 && i + 1 < argc)
      n_events = atoi(argv[++i]);
    else if (strcmp(argv[i], "--interval-ms") == 0 && i + 1 < argc)
      interval_ms = atol(argv[++i]);
    else {
      fprintf(stderr, "usage: bench_server [--events N] [--interval-ms MS]\n");
      return 2;
    }
  }
  if (n_events < 1 || interval_ms < 0)
    return 2;
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if ((ls = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
      setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
      bind(ls, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(ls, 64) != 0 ||
      getsockname(ls, (struct sockaddr *)&a, &alen) != 0) {
    perror("bench_server");
    return 2;
  }
  printf("PORT %d\n", ntohs(a.sin_port));
  fflush(stdout);
  if (pthread_create(&t, NULL, watch_stdin, NULL) == 0)
    pthread_detach(t);
  for (;;) {
    int fd = accept(ls, NULL, NULL);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED)
        continue;
      perror("accept");
      return 1;
    }
    if (pthread_create(&t, NULL, serve, (void *)(long)fd) != 0) {
      close(fd);
      continue;
    }
    pthread_detach(t);
  }
}
