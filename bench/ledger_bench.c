/*
 * bench_ledger: the token ledger at scale.
 *
 *   bench_ledger [--records N] [--synced M] [--dir DIR]
 *
 * Appends N records (default 1,000,000) through the library's own append
 * path (format, SHA-256 chain, flock, catch-up, one write() each) with
 * fsync "never", then M more (default 2,000) with fsync "always"; then
 * times open (tail only, and with a budget: a full scan), queries (totals,
 * by model, by day, model x day series), verify, each in a child process
 * whose peak RSS is the memory that step used. Prints a Markdown table.
 * Measurements, not a test: nothing here asserts a number.
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

int main(int argc, char **argv) {
  long n = 1000000, synced = 2000;
  const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  char dir[512], path[600], spath[600], cmd[700];
  double secs;
  struct stat stb;
  int i;
  int64_t t0 = llmr__wall_ms() - 90LL * 86400000;
  static const char *const names[] = {
      "query: totals",       "query: by model",      "query: by day",
      "query: model x day",  "open (tail only)",     "open with a budget (full scan)",
      "verify (SHA-256 chain)"};
  static const int order[] = {4, 5, 0, 1, 2, 3, 6};

  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--records") == 0 && i + 1 < argc)
      n = atol(argv[++i]);
    else if (strcmp(argv[i], "--synced") == 0 && i + 1 < argc)
      synced = atol(argv[++i]);
    else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
      base = argv[++i];
    else {
      fprintf(stderr,
              "usage: bench_ledger [--records N] [--synced M] [--dir DIR]\n");
      return 2;
    }
  }
  snprintf(dir, sizeof(dir), "%s/llmr-ledger-bench-XXXXXX", base);
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    return 1;
  }
  snprintf(path, sizeof(path), "%s/ledger.jsonl", dir);
  snprintf(spath, sizeof(spath), "%s/synced.jsonl", dir);

  printf("## Ledger benchmark\n\n%ld records, file in %s\n\n", n, base);
  printf("| step | records | seconds | records/s | peak RSS |\n");
  printf("| --- | ---: | ---: | ---: | ---: |\n");
  if (append_many(path, "{\"fsync\":\"never\"}", n, t0, &secs) != 0)
    return 1;
  stat(path, &stb);
  printf("| append, fsync never | %ld | %.2f | %.0f | (%.0f MB file, %.0f "
         "bytes/record) |\n",
         n, secs, (double)n / secs, (double)stb.st_size / 1e6,
         (double)stb.st_size / (double)n);
  if (synced > 0) {
    if (append_many(spath, "{\"fsync\":\"always\"}", synced, t0, &secs) != 0)
      return 1;
    printf("| append, fsync always | %ld | %.2f | %.0f | |\n", synced, secs,
           (double)synced / secs);
  }
  fflush(stdout);
  for (i = 0; i < 7; i++) {
    step_result r = run_step(path, order[i]);
    long long recs = order[i] >= 4 && order[i] <= 5 ? n : r.records;
    char rate[32];
    if (order[i] == 4) /* reads the last lines only: no rate to speak of */
      snprintf(rate, sizeof(rate), "-");
    else
      snprintf(rate, sizeof(rate), "%.0f",
               r.secs > 0 ? (double)recs / r.secs : 0);
    printf("| %s | %lld | %.3f | %s | %.1f MB |%s\n", names[order[i]], recs,
           r.secs, rate, (double)r.maxrss_kb / 1024.0, r.ok ? "" : " FAILED");
    fflush(stdout);
  }
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  return system(cmd) == 0 ? 0 : 1;
}
