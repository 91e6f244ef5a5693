/*
 * bench_ledger: the token ledger at scale.
 *
 *   bench_ledger [--records N] [--synced M] [--interval K] [--runs R]
 *                [--dir DIR]
 *
 * Appends N records (default 1,000,000) through the library's own append
 * path (format, SHA-256 chain, flock, catch-up, one write() each) with
 * each fsync policy: "never" (N records), a 100 ms interval (K, default
 * 100,000) and "always" (M, default 2,000), each into a fresh file, R
 * times (default 5). Then, on the last N-record file, times open (tail
 * only, and with a budget: a full scan), queries (totals, by model, by
 * day, model x day series) and verify, R times each, each in a child
 * process whose peak RSS is the memory that step used. Prints a Markdown
 * table: median of the R runs (min - max). Measurements, not a test:
 * nothing here asserts a number.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *const models[] = {
    "openai/gpt-4o",         "openai/gpt-4o-mini",
    "openai/gpt-5",          "openai/gpt-5-mini",
    "anthropic/claude-sonnet-4.5", "anthropic/claude-haiku-4.5",
    "google/gemini-2.5-flash", "google/gemini-2.5-pro",
    "mistral/mistral-small-latest", "groq/llama-3.1-8b-instant",
    "deepseek/deepseek-chat", "openrouter/meta-llama/llama-3.1-70b-instruct"};
static const char *const apps[] = {"search", "chat", "billing", NULL};

static int append_many(const char *path, const char *opts, long n,
                       int64_t t0, double *secs) {
  llmr_ledger *l;
  char err[LLMR_ERRBUF_SIZE], id[33];
  unsigned x = 12345;
  long i;
  double t;
  if (llmr_ledger_open_ex(path, opts, &l, err, sizeof(err)) != LLMR_OK) {
    fprintf(stderr, "open: %s\n", err);
    return -1;
  }
  llmr__random_id(id);
  t = now_s();
  for (i = 0; i < n; i++) {
    llmr__ledger_rec r;
    const char *asked[2];
    x = x * 1664525u + 1013904223u;
    memset(&r, 0, sizeof(r));
    if (i % 3 == 0)
      llmr__random_id(id);
    r.t_ms = t0 + (int64_t)((double)i / (double)n * 90.0 * 86400000.0);
    r.id = id;
    r.app = apps[(x >> 8) % 4];
    r.user = "user-1234";
    r.model = models[(x >> 12) % 12];
    asked[0] = "openai/gpt-4o";
    asked[1] = r.model;
    r.asked = asked;
    r.n_asked = 2;
    r.provider = "openai";
    r.native = strchr(r.model, '/') + 1;
    r.attempt = 1 + (int)(i % 3 == 2);
    r.stream = (int)(x & 1);
    r.status = (x >> 20) % 10 ? LLMR_OK : LLMR_E_OVERLOADED;
    r.http_status = r.status == LLMR_OK ? 200 : 503;
    r.usage.prompt = (x >> 4) % 4000;
    r.usage.completion = (x >> 6) % 900;
    r.usage.cached = (x >> 3) % 200;
    r.usage.reasoning = (x >> 5) % 50;
    r.cost_nanousd = (int64_t)((x >> 2) % 5000000);
    r.latency_ms = (double)((x >> 9) % 3000) + 0.25;
    r.ttft_ms = r.stream ? 120.5 : -1;
    if (llmr__ledger_append(l, &r, NULL, NULL, err, sizeof(err)) != LLMR_OK) {
      fprintf(stderr, "append: %s\n", err);
      llmr_ledger_close(l);
      return -1;
    }
  }
  llmr_ledger_close(l); /* includes the final sync when there is one */
  *secs = now_s() - t;
  return 0;
}

/* Run one read step in a child; its peak RSS is the step's memory. */
typedef struct step_result {
  double secs;
  long maxrss_kb;
  long long records;
  int ok;
} step_result;

static int do_step(const char *path, int kind, long long *records) {
  llmr_ledger *l;
  char *res = NULL;
  int rc = 0;
  static const char *const queries[] = {
      NULL, "{\"by\":\"model\"}", "{\"by\":\"day\"}",
      "{\"by\":\"model\",\"bucket\":\"day\"}"};
  *records = 0;
  if (kind == 4) { /* open: the tail */
    rc = llmr_ledger_open(path, NULL, &l) == LLMR_OK ? 0 : -1;
    llmr_ledger_close(rc ? NULL : l);
    return rc;
  }
  if (kind == 5) { /* open with a budget: the whole file */
    rc = llmr_ledger_open(path,
                          "{\"budgets\":[{\"window\":\"month\",\"usd\":100}]}",
                          &l) == LLMR_OK
             ? 0
             : -1;
    llmr_ledger_close(rc ? NULL : l);
    return rc;
  }
  if (kind == 6) { /* verify */
    cJSON *d;
    if (llmr_ledger_verify(path, &res) != LLMR_OK)
      rc = -1;
    d = cJSON_Parse(res);
    *records = (long long)cJSON_GetNumberValue(cJSON_GetObjectItem(d, "records"));
    cJSON_Delete(d);
    llmr_free(res);
    return rc;
  }
  if (llmr_ledger_open(path, "{\"readonly\":true}", &l) != LLMR_OK)
    return -1;
  if (llmr_ledger_query(l, queries[kind], &res) != LLMR_OK) {
    rc = -1;
  } else {
    cJSON *d = cJSON_Parse(res);
    *records = (long long)cJSON_GetNumberValue(
        cJSON_GetObjectItem(cJSON_GetObjectItem(d, "total"), "records"));
    cJSON_Delete(d);
  }
  llmr_free(res);
  llmr_ledger_close(l);
  return rc;
}

static step_result run_step(const char *path, int kind) {
  step_result r;
  int fds[2], status;
  pid_t pid;
  memset(&r, 0, sizeof(r));
  if (pipe(fds) != 0)
    return r;
  pid = fork();
  if (pid == 0) {
    struct rusage ru;
    double t = now_s();
    step_result c;
    memset(&c, 0, sizeof(c));
    c.ok = do_step(path, kind, &c.records) == 0;
    c.secs = now_s() - t;
    getrusage(RUSAGE_SELF, &ru);
    c.maxrss_kb = ru.ru_maxrss;
    if (write(fds[1], &c, sizeof(c)) != (ssize_t)sizeof(c))
      _exit(2);
    _exit(0);
  }
  close(fds[1]);
  if (read(fds[0], &r, sizeof(r)) != (ssize_t)sizeof(r))
    r.ok = 0;
  close(fds[0]);
  waitpid(pid, &status, 0);
  return r;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* "median (min - max)" of v[0..n), prec decimals, into out (sorts v). */
static void mmm(double *v, int n, int prec, char *out, size_t size) {
  qsort(v, (size_t)n, sizeof(*v), cmp_d);
  snprintf(out, size, "%.*f (%.*f – %.*f)", prec,
           n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2, prec, v[0],
           prec, v[n - 1]);
}

#define MAX_RUNS 64

int main(int argc, char **argv) {
  long n = 1000000, synced = 2000, interval = 100000;
  int runs = 5;
  const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  char dir[512], path[600], cmd[700], c1[128], c2[128], c3[128];
  double secs[MAX_RUNS], rate[MAX_RUNS], rss[MAX_RUNS];
  struct stat stb;
  int i, k;
  int64_t t0 = llmr__wall_ms() - 90LL * 86400000;
  static const char *const names[] = {
      "query: totals",       "query: by model",      "query: by day",
      "query: model x day",  "open (tail only)",     "open with a budget (full scan)",
      "verify (SHA-256 chain)"};
  static const int order[] = {4, 5, 0, 1, 2, 3, 6};
  static const struct {
    const char *name, *opts;
  } policies[] = {{"never", "{\"fsync\":\"never\"}"},
                  {"every 100 ms", "{\"fsync\":100}"},
                  {"always", "{\"fsync\":\"always\"}"}};

  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--records") == 0 && i + 1 < argc)
      n = atol(argv[++i]);
    else if (strcmp(argv[i], "--synced") == 0 && i + 1 < argc)
      synced = atol(argv[++i]);
    else if (strcmp(argv[i], "--interval") == 0 && i + 1 < argc)
      interval = atol(argv[++i]);
    else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
      runs = atoi(argv[++i]);
    else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
      base = argv[++i];
    else {
      fprintf(stderr, "usage: bench_ledger [--records N] [--synced M] "
                      "[--interval K] [--runs R] [--dir DIR]\n");
      return 2;
    }
  }
  if (runs < 1 || runs > MAX_RUNS || n < 1) {
    fprintf(stderr, "bench_ledger: --runs 1..%d, --records >= 1\n", MAX_RUNS);
    return 2;
  }
  snprintf(dir, sizeof(dir), "%s/llmr-ledger-bench-XXXXXX", base);
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    return 1;
  }

  printf("%ld records, file system of %s; %d runs of each step, median "
         "(min – max)\n\n",
         n, base, runs);
  printf("| step | records | seconds | records/s | peak RSS, MB |\n");
  printf("| --- | ---: | ---: | ---: | ---: |\n");
  for (k = 0; k < 3; k++) {
    long count = k == 0 ? n : k == 1 ? interval : synced;
    if (count <= 0)
      continue;
    for (i = 0; i < runs; i++) {
      snprintf(path, sizeof(path), "%s/append-%d-%d.jsonl", dir, k, i);
      if (append_many(path, policies[k].opts, count, t0, &secs[i]) != 0)
        return 1;
      rate[i] = (double)count / secs[i];
      if (k == 0 && i == runs - 1)
        break; /* the last big file stays for the reads below */
      unlink(path);
    }
    mmm(secs, runs, 2, c1, sizeof(c1));
    mmm(rate, runs, 0, c2, sizeof(c2));
    if (k == 0) {
      stat(path, &stb);
      printf("| append, fsync %s | %ld | %s | %s | (%.0f MB file, %.0f "
             "bytes/record) |\n",
             policies[k].name, count, c1, c2, (double)stb.st_size / 1e6,
             (double)stb.st_size / (double)count);
    } else {
      printf("| append, fsync %s | %ld | %s | %s | |\n", policies[k].name,
             count, c1, c2);
    }
    fflush(stdout);
  }
  snprintf(path, sizeof(path), "%s/append-0-%d.jsonl", dir, runs - 1);
  for (k = 0; k < 7; k++) {
    long long recs = 0;
    int ok = 1;
    for (i = 0; i < runs; i++) {
      step_result r = run_step(path, order[k]);
      recs = order[k] >= 4 && order[k] <= 5 ? n : r.records;
      ok &= r.ok;
      secs[i] = r.secs;
      rate[i] = r.secs > 0 ? (double)recs / r.secs : 0;
      rss[i] = (double)r.maxrss_kb / 1024.0;
    }
    mmm(secs, runs, 3, c1, sizeof(c1));
    mmm(rate, runs, 0, c2, sizeof(c2));
    mmm(rss, runs, 1, c3, sizeof(c3));
    /* open (tail only) reads the last lines: no rate to speak of */
    printf("| %s | %lld | %s | %s | %s |%s\n", names[order[k]], recs, c1,
           order[k] == 4 ? "-" : c2, c3, ok ? "" : " FAILED");
    fflush(stdout);
  }
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  return system(cmd) == 0 ? 0 : 1;
}
