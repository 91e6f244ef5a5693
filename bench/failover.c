/*
 * What a failover costs (bench/README.md): the time from llmr_stream() to
 * the first text event when the first slug fails and the second answers,
 * against a direct call to the second slug. Scenarios, interleaved in
 * every round:
 *   direct   [good]            the second slug alone
 *   refused  [refused, good]   the first slug's port has no listener
 *   503      [bad, good]       the first slug answers 503 "overloaded"
 *                              (bench_server's /fail503/ path)
 *   cooling  [bad, good]       the first slug's circuit is open: skipped
 *                              without a request (a second router)
 *   stall    [stall, good]     the first slug accepts the request and never
 *                              answers (bench_server's /stall/ path) until
 *                              the policy's attempt_timeout_ms (--stall-ms,
 *                              default 200) cuts it: a third router. Each
 *                              call costs that long, so this one runs its
 *                              own --stall-rounds (default 30), each paired
 *                              with a direct call on the same router.
 * The first two routers have cooldowns off, so every round really tries
 * the failing slug. Prints a Markdown table on stdout (times in ms).
 *
 *   bench_failover --server PATH [--rounds N] [--warmup N]
 *                  [--stall-rounds N] [--stall-ms MS]
 *
 * SPDX-License-Identifier: MIT
 */
#include "bench.h"

#include <llmroute.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

enum { DIRECT, REFUSED, FAIL503, COOLING, N_SCEN };

static const char *const scen_name[N_SCEN] = {
    "direct call to the second slug", "first slug refused (no listener)",
    "first slug answers 503", "first slug cooling down (skipped)"};

static void die(const char *msg) {
  fprintf(stderr, "bench_failover: %s\n", msg);
  exit(1);
}

typedef struct probe {
  double t0, first;
} probe;

static int on_event(const llmr_event *ev, void *user) {
  probe *p = user;
  if (ev->type == LLMR_EVENT_TEXT && p->first < 0)
    p->first = bench_now_us();
  return 0;
}

static pid_t start_server(const char *path, int *port, int *keep_fd) {
  int out[2], in[2];
  pid_t pid;
  char line[64];
  FILE *f;
  if (pipe(out) != 0 || pipe(in) != 0)
    die("pipe");
  if ((pid = fork()) < 0)
    die("fork");
  if (pid == 0) {
    dup2(out[1], 1);
    dup2(in[0], 0); /* the server exits when this pipe closes */
    close(out[0]);
    close(out[1]);
    close(in[0]);
    close(in[1]);
    execl(path, path, "--events", "3", "--interval-ms", "1", (char *)NULL);
    _exit(127);
  }
  close(out[1]);
  close(in[0]);
  *keep_fd = in[1];
  if (!(f = fdopen(out[0], "r")) || !fgets(line, sizeof(line), f) ||
      sscanf(line, "PORT %d", port) != 1)
    die("the server did not start");
  fclose(f);
  return pid;
}

/* A loopback port with nothing listening. */
static int free_port(void) {
  struct sockaddr_in a;
  socklen_t len = sizeof(a);
  int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;
  if (fd < 0)
    die("socket");
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
      getsockname(fd, (struct sockaddr *)&a, &len) == 0)
    port = ntohs(a.sin_port);
  close(fd);
  return port;
}

static llmr_router *router(int port, int dead, const char *policy) {
  char config[1536], err[LLMR_ERRBUF_SIZE];
  llmr_router *r = NULL;
  snprintf(config, sizeof(config),
           "{\"use_env\": false, \"policy\": %s, \"providers\": {"
           "\"good\": {\"base_url\": \"http://127.0.0.1:%d/v1\", "
           "\"api_key\": \"sk-bench\"},"
           "\"bad\": {\"base_url\": \"http://127.0.0.1:%d/fail503/v1\", "
           "\"api_key\": \"sk-bench\"},"
           "\"refused\": {\"base_url\": \"http://127.0.0.1:%d/v1\", "
           "\"api_key\": \"sk-bench\"},"
           "\"stall\": {\"base_url\": \"http://127.0.0.1:%d/stall/v1\", "
           "\"api_key\": \"sk-bench\"}}}",
           policy, port, port, dead, port);
  if (llmr_router_new_ex(config, &r, err, sizeof(err)) != LLMR_OK)
    die(err);
  return r;
}

/* One streamed call; the time to its first text event in µs. */
static double one(llmr_router *r, const char *const *models, size_t n,
                  const llmr_request *req, size_t want_attempts) {
  probe p = {0, -1};
  llmr_response *resp = NULL;
  llmr_status st;
  p.t0 = bench_now_us();
  st = llmr_stream(r, models, n, req, on_event, &p, &resp);
  if (st != LLMR_OK || p.first < 0 ||
      llmr_response_attempt_count(resp) != want_attempts) {
    fprintf(stderr, "bench_failover: %s (%zu attempts): %s\n",
            llmr_status_name(st), llmr_response_attempt_count(resp),
            llmr_response_error(resp) ? llmr_response_error(resp) : "-");
    exit(1);
  }
  llmr_response_free(resp);
  return p.first - p.t0;
}

int main(int argc, char **argv) {
  const char *server = NULL;
  const char *direct[] = {"good/gpt-4o-mini"};
  const char *refused[] = {"refused/gpt-4o-mini", "good/gpt-4o-mini"};
  const char *failing[] = {"bad/gpt-4o-mini", "good/gpt-4o-mini"};
  const char *stalling[] = {"stall/gpt-4o-mini", "good/gpt-4o-mini"};
  int rounds = 300, warmup = 20, port = 0, keep_fd, i, s;
  int stall_rounds = 30, stall_ms = 200;
  double *t[N_SCEN], *paired[N_SCEN], *ts, *tsd, *tsp;
  llmr_router *plain, *cooling, *stall;
  char stall_policy[128];
  llmr_request *req;
  pid_t pid;

  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--server") == 0 && i + 1 < argc)
      server = argv[++i];
    else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
      rounds = atoi(argv[++i]);
    else if (strcmp(argv[i], "--warmup") == 0 && i + 1 < argc)
      warmup = atoi(argv[++i]);
    else if (strcmp(argv[i], "--stall-rounds") == 0 && i + 1 < argc)
      stall_rounds = atoi(argv[++i]);
    else if (strcmp(argv[i], "--stall-ms") == 0 && i + 1 < argc)
      stall_ms = atoi(argv[++i]);
    else
      server = NULL, i = argc;
  }
  if (!server || rounds < 5 || warmup < 0 || stall_rounds < 5 ||
      stall_ms < 1) {
    fprintf(stderr, "usage: bench_failover --server PATH [--rounds N >= 5] "
                    "[--warmup N] [--stall-rounds N >= 5] [--stall-ms MS]\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  pid = start_server(server, &port, &keep_fd);
  plain = router(port, free_port(), "{\"cooldown\": false}");
  /* one failure opens the circuit for an hour: every later call skips */
  cooling = router(port, free_port(),
                   "{\"cooldown\": {\"failures\": 1, \"cooldown_ms\": "
                   "3600000}}");
  snprintf(stall_policy, sizeof(stall_policy),
           "{\"cooldown\": false, \"attempt_timeout_ms\": %d}", stall_ms);
  stall = router(port, free_port(), stall_policy);
  if (llmr_request_new(&req) != LLMR_OK ||
      llmr_request_add_message(req, LLMR_ROLE_USER, "Say hello.") != LLMR_OK)
    die("request");
  one(cooling, failing, 2, req, 2); /* opens "bad/gpt-4o-mini" */

  for (s = 0; s < N_SCEN; s++) {
    t[s] = calloc((size_t)rounds, sizeof(double));
    paired[s] = calloc((size_t)rounds, sizeof(double));
    if (!t[s] || !paired[s])
      die("out of memory");
  }
  for (i = 0; i < rounds + warmup; i++) {
    double v[N_SCEN];
    int k;
    /* rotate the order so that no scenario always follows another */
    for (k = 0; k < N_SCEN; k++) {
      s = (k + i) % N_SCEN;
      switch (s) {
      case DIRECT:
        v[s] = one(plain, direct, 1, req, 1);
        break;
      case REFUSED:
        v[s] = one(plain, refused, 2, req, 2);
        break;
      case FAIL503:
        v[s] = one(plain, failing, 2, req, 2);
        break;
      default:
        v[s] = one(cooling, failing, 2, req, 2);
        break;
      }
    }
    if (i < warmup)
      continue;
    for (s = 0; s < N_SCEN; s++) {
      t[s][i - warmup] = v[s] / 1000.0;
      paired[s][i - warmup] = (v[s] - v[DIRECT]) / 1000.0;
    }
  }
  /* the stall: its own rounds (each costs stall_ms), two warm-up rounds */
  ts = calloc((size_t)stall_rounds, sizeof(double));
  tsd = calloc((size_t)stall_rounds, sizeof(double));
  tsp = calloc((size_t)stall_rounds, sizeof(double));
  if (!ts || !tsd || !tsp)
    die("out of memory");
  for (i = 0; i < stall_rounds + 2; i++) {
    double d, w;
    if (i % 2) {
      d = one(stall, direct, 1, req, 1);
      w = one(stall, stalling, 2, req, 2);
    } else {
      w = one(stall, stalling, 2, req, 2);
      d = one(stall, direct, 1, req, 1);
    }
    if (i < 2)
      continue;
    ts[i - 2] = w / 1000.0;
    tsd[i - 2] = d / 1000.0;
    tsp[i - 2] = (w - d) / 1000.0;
  }

  printf("%d rounds after %d warm-up rounds; each round streams one call per "
         "scenario (rotating order) from bench_server on loopback, keep-alive "
         "connections warm. Time to first text event in ms; \"added\" is the "
         "scenario's median minus the direct call's median, and the median "
         "of the per-round differences.\n\n",
         rounds, warmup);
  printf("| scenario | TTFT median | TTFT p90 | added (medians) | added "
         "(paired median) | paired p90 |\n");
  printf("| --- | ---: | ---: | ---: | ---: | ---: |\n");
  {
    double direct_med;
    double *copy = calloc((size_t)rounds, sizeof(double));
    if (!copy)
      die("out of memory");
    memcpy(copy, t[DIRECT], (size_t)rounds * sizeof(double));
    direct_med = bench_median(copy, (size_t)rounds);
    for (s = 0; s < N_SCEN; s++) {
      double med, p90, pm, pp90;
      memcpy(copy, t[s], (size_t)rounds * sizeof(double));
      med = bench_median(copy, (size_t)rounds);
      p90 = bench_quantile(copy, (size_t)rounds, 0.90);
      pm = bench_median(paired[s], (size_t)rounds);
      pp90 = bench_quantile(paired[s], (size_t)rounds, 0.90);
      if (s == DIRECT)
        printf("| %s | %.3f | %.3f | - | - | - |\n", scen_name[s], med, p90);
      else
        printf("| %s | %.3f | %.3f | %+.3f | %+.3f | %+.3f |\n",
               scen_name[s], med, p90, med - direct_med, pm, pp90);
    }
    free(copy);
  }
  {
    double dmed = bench_median(tsd, (size_t)stall_rounds);
    double med = bench_median(ts, (size_t)stall_rounds);
    double p90 = bench_quantile(ts, (size_t)stall_rounds, 0.90);
    double pm = bench_median(tsp, (size_t)stall_rounds);
    double pp90 = bench_quantile(tsp, (size_t)stall_rounds, 0.90);
    printf("| first slug stalls (attempt_timeout_ms %d; %d rounds of its "
           "own, direct median %.3f) | %.3f | %.3f | %+.3f | %+.3f | %+.3f "
           "|\n",
           stall_ms, stall_rounds, dmed, med, p90, med - dmed, pm, pp90);
  }
  free(ts);
  free(tsd);
  free(tsp);
  for (s = 0; s < N_SCEN; s++) {
    free(t[s]);
    free(paired[s]);
  }
  llmr_request_free(req);
  llmr_router_free(plain);
  llmr_router_free(cooling);
  llmr_router_free(stall);
  close(keep_fd);
  kill(pid, SIGTERM);
  waitpid(pid, NULL, 0);
  return 0;
}
