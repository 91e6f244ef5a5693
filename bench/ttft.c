/*
 * Time to first token and inter-chunk gaps that libllmroute adds over raw
 * libcurl reading the same stream from the same local server
 * (bench/README.md).
 *
 * Starts bench_server (a paced OpenAI-style SSE stream: first text event
 * at once, then one every --interval-ms) and, in interleaved rounds, reads
 * one stream with
 *   raw  -- a plain libcurl easy handle (reused, so its connection stays
 *           warm) POSTing a similar JSON body; its write callback notes the
 *           time of every body chunk, the first one being the TTFT;
 *   llmr -- llmr_stream() on a router whose "openai" provider points at
 *           the server; its callback notes the time of every TEXT event,
 *           the first one being the TTFT.
 * t0 is taken just before curl_easy_perform() / llmr_stream(). The first
 * --warmup rounds of each are dropped. Prints a Markdown table on stdout.
 *
 *   bench_ttft --server PATH [--rounds N] [--warmup N] [--events N]
 *              [--interval-ms MS]
 *
 * SPDX-License-Identifier: MIT
 */
#include "bench.h"

#include <llmroute.h>

#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_EVENTS 256

typedef struct sample {
  double t0;
  double t[MAX_EVENTS]; /* arrival of each chunk / TEXT event */
  int n;
} sample;

static void die(const char *msg) {
  fprintf(stderr, "bench_ttft: %s\n", msg);
  exit(1);
}

static size_t on_body(char *p, size_t size, size_t n, void *user) {
  sample *s = user;
  (void)p;
  if (s->n < MAX_EVENTS)
    s->t[s->n++] = bench_now_us();
  return size * n;
}

static int on_event(const llmr_event *ev, void *user) {
  sample *s = user;
  if (ev->type == LLMR_EVENT_TEXT && s->n < MAX_EVENTS)
    s->t[s->n++] = bench_now_us();
  return 0;
}

static pid_t start_server(const char *path, int events, long interval,
                          int *port, int *keep_fd) {
  int out[2], in[2];
  pid_t pid;
  char line[64], ev[24], iv[24];
  FILE *f;
  if (pipe(out) != 0 || pipe(in) != 0)
    die("pipe");
  snprintf(ev, sizeof(ev), "%d", events);
  snprintf(iv, sizeof(iv), "%ld", interval);
  if ((pid = fork()) < 0)
    die("fork");
  if (pid == 0) {
    dup2(out[1], 1);
    dup2(in[0], 0); /* the server exits when this pipe closes */
    close(out[0]);
    close(out[1]);
    close(in[0]);
    close(in[1]);
    execl(path, path, "--events", ev, "--interval-ms", iv, (char *)NULL);
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

typedef struct stats {
  double ttft_med, ttft_p99, ttft_min;
  double gap_med, gap_p99;
  double last_med; /* t0 -> last event */
} stats;

static void summarise(sample *s, int n, int events, stats *st) {
  double *ttft = calloc((size_t)n, sizeof(double));
  double *last = calloc((size_t)n, sizeof(double));
  double *gaps = calloc((size_t)n * MAX_EVENTS, sizeof(double));
  size_t ng = 0;
  int i, j;
  if (!ttft || !last || !gaps)
    die("out of memory");
  for (i = 0; i < n; i++) {
    if (s[i].n < 1)
      die("a stream delivered nothing");
    ttft[i] = s[i].t[0] - s[i].t0;
    last[i] = s[i].t[(s[i].n < events ? s[i].n : events) - 1] - s[i].t0;
    for (j = 1; j < s[i].n && j < events; j++)
      gaps[ng++] = s[i].t[j] - s[i].t[j - 1];
  }
  st->ttft_med = bench_median(ttft, (size_t)n);
  st->ttft_min = ttft[0];
  st->ttft_p99 = bench_quantile(ttft, (size_t)n, 0.99);
  st->last_med = bench_median(last, (size_t)n);
  st->gap_med = bench_median(gaps, ng);
  st->gap_p99 = bench_quantile(gaps, ng, 0.99);
  free(ttft);
  free(last);
  free(gaps);
}

int main(int argc, char **argv) {
  const char *server = NULL;
  int rounds = 300, warmup = 20, events = 10, port = 0, keep_fd, i;
  long interval = 5;
  pid_t pid;
  char url[192], base[128], config[512];
  const char *models[] = {"openai/gpt-4o-mini"};
  static const char body[] =
      "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\","
      "\"content\":\"Say hello.\"}],\"stream\":true,\"stream_options\":"
      "{\"include_usage\":true}}";
  struct curl_slist *hdr = NULL;
  llmr_router *router = NULL;
  llmr_request *req = NULL;
  CURL *h;
  sample *raw, *lib;
  stats sr, sl;
  double *diff;
  char err[256];

  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--server") == 0 && i + 1 < argc)
      server = argv[++i];
    else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
      rounds = atoi(argv[++i]);
    else if (strcmp(argv[i], "--warmup") == 0 && i + 1 < argc)
      warmup = atoi(argv[++i]);
    else if (strcmp(argv[i], "--events") == 0 && i + 1 < argc)
      events = atoi(argv[++i]);
    else if (strcmp(argv[i], "--interval-ms") == 0 && i + 1 < argc)
      interval = atol(argv[++i]);
    else
      server = NULL, i = argc;
  }
  if (!server || rounds < 1 || warmup < 0 || events < 1 ||
      events > MAX_EVENTS || interval < 0) {
    fprintf(stderr, "usage: bench_ttft --server PATH [--rounds N] [--warmup "
                    "N] [--events N] [--interval-ms MS]\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  pid = start_server(server, events, interval, &port, &keep_fd);
  snprintf(base, sizeof(base), "http://127.0.0.1:%d/v1", port);
  snprintf(url, sizeof(url), "%s/chat/completions", base);
  snprintf(config, sizeof(config),
           "{\"use_env\": false, \"providers\": {\"openai\": {\"base_url\": "
           "\"%s\", \"api_key\": \"sk-bench-0000\"}}}",
           base);

  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
      !(h = curl_easy_init()))
    die("curl init");
  hdr = curl_slist_append(hdr, "Content-Type: application/json");
  hdr = curl_slist_append(hdr, "Authorization: Bearer sk-bench-0000");
  hdr = curl_slist_append(hdr, "Accept: text/event-stream");
  hdr = curl_slist_append(hdr, "Expect:");
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);

  if (llmr_router_new_ex(config, &router, err, sizeof(err)) != LLMR_OK)
    die(err);
  if (llmr_request_new(&req) != LLMR_OK ||
      llmr_request_add_message(req, LLMR_ROLE_USER, "Say hello.") != LLMR_OK)
    die("request");

  raw = calloc((size_t)(rounds + warmup), sizeof(*raw));
  lib = calloc((size_t)(rounds + warmup), sizeof(*lib));
  diff = calloc((size_t)rounds, sizeof(double));
  if (!raw || !lib || !diff)
    die("out of memory");
  for (i = 0; i < rounds + warmup; i++) {
    llmr_response *resp = NULL;
    llmr_status st;
    CURLcode rc;
    long code = 0;
    /* alternate which goes first, so neither always follows the other */
    int k;
    for (k = 0; k < 2; k++) {
      if ((k == 0) == (i % 2 == 0)) {
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &raw[i]);
        raw[i].t0 = bench_now_us();
        rc = curl_easy_perform(h);
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
        if (rc != CURLE_OK || code != 200)
          die("raw libcurl transfer failed");
      } else {
        lib[i].t0 = bench_now_us();
        st = llmr_stream(router, models, 1, req, on_event, &lib[i], &resp);
        if (st != LLMR_OK) {
          fprintf(stderr, "bench_ttft: llmr_stream: %s\n",
                  llmr_response_error(resp) ? llmr_response_error(resp)
                                            : llmr_status_name(st));
          exit(1);
        }
        llmr_response_free(resp);
        resp = NULL;
      }
    }
  }
  for (i = 0; i < rounds; i++)
    diff[i] = (lib[warmup + i].t[0] - lib[warmup + i].t0) -
              (raw[warmup + i].t[0] - raw[warmup + i].t0);
  summarise(raw + warmup, rounds, events, &sr);
  summarise(lib + warmup, rounds, events, &sl);

  printf("%d rounds after %d warm-up rounds; each round reads one stream "
         "with raw libcurl and one with llmr_stream(), alternating which "
         "goes first. Stream: %d text events, the first at once, then one "
         "every %ld ms (bench_server). Times in µs.\n\n",
         rounds, warmup, events, interval);
  printf("| measure | raw libcurl | llmr_stream | added by libllmroute |\n");
  printf("| --- | ---: | ---: | ---: |\n");
  printf("| TTFT median | %.0f | %.0f | %+.0f (× %.2f) |\n", sr.ttft_med,
         sl.ttft_med, sl.ttft_med - sr.ttft_med, sl.ttft_med / sr.ttft_med);
  printf("| TTFT p99 | %.0f | %.0f | %+.0f |\n", sr.ttft_p99, sl.ttft_p99,
         sl.ttft_p99 - sr.ttft_p99);
  printf("| TTFT min | %.0f | %.0f | %+.0f |\n", sr.ttft_min, sl.ttft_min,
         sl.ttft_min - sr.ttft_min);
  printf("| TTFT added, paired per round: median | | | %+.0f |\n",
         bench_median(diff, (size_t)rounds));
  printf("| TTFT added, paired per round: p99 | | | %+.0f |\n",
         bench_quantile(diff, (size_t)rounds, 0.99));
  printf("| inter-chunk gap median | %.0f | %.0f | %+.0f |\n", sr.gap_med,
         sl.gap_med, sl.gap_med - sr.gap_med);
  printf("| inter-chunk gap p99 | %.0f | %.0f | %+.0f |\n", sr.gap_p99,
         sl.gap_p99, sl.gap_p99 - sr.gap_p99);
  printf("| t0 → last text, median | %.0f | %.0f | %+.0f |\n", sr.last_med,
         sl.last_med, sl.last_med - sr.last_med);

  llmr_request_free(req);
  llmr_router_free(router);
  curl_slist_free_all(hdr);
  curl_easy_cleanup(h);
  curl_global_cleanup();
  free(raw);
  free(lib);
  free(diff);
  close(keep_fd);
  kill(pid, SIGTERM);
  waitpid(pid, NULL, 0);
  return 0;
}
