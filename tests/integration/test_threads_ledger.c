/*
 * The ledger under concurrency: 4 processes x 4 threads appending to one
 * file (every record present exactly once, the chain verifying), several
 * ledger objects on one file in one process, and budget reservations that
 * keep 8 concurrent calls from overshooting a limit together (the
 * emulator counts what went out).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "emu.h"
#include "internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define PROCS 4
#define THREADS 4
#define PER_THREAD 150

static char dir[256];
static int file_no;
static emu E;

static int group_setup(void **state) {
  (void)state;
  snprintf(dir, sizeof(dir), "%s/llmr-ledger-mt-XXXXXX",
           getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  return mkdtemp(dir) ? 0 : -1;
}

static int group_teardown(void **state) {
  char cmd[300];
  (void)state;
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  return system(cmd) == 0 ? 0 : -1;
}

static const char *new_path(char *buf, size_t n) {
  snprintf(buf, n, "%s/l%d.jsonl", dir, ++file_no);
  return buf;
}

typedef struct writer {
  llmr_ledger *l;
  int proc, thread, count, failures;
} writer;

static void *write_records(void *arg) {
  writer *w = arg;
  static const char *const asked[] = {"openai/gpt-4o"};
  char id[64], user[32];
  int i;
  for (i = 0; i < w->count; i++) {
    llmr__ledger_rec r;
    memset(&r, 0, sizeof(r));
    snprintf(id, sizeof(id), "p%d-t%d", w->proc, w->thread);
    snprintf(user, sizeof(user), "%d", i);
    r.t_ms = llmr__wall_ms();
    r.id = id;
    r.app = "mt";
    r.user = user;
    r.asked = asked;
    r.n_asked = 1;
    r.model = "openai/gpt-4o";
    r.provider = "openai";
    r.native = "gpt-4o";
    r.attempt = 1;
    r.status = LLMR_OK;
    r.http_status = 200;
    r.usage.prompt = i;
    r.cost_nanousd = 1000 + i;
    r.latency_ms = 1;
    r.ttft_ms = -1;
    if (llmr__ledger_append(w->l, &r, NULL, NULL, NULL, 0) != LLMR_OK)
      w->failures++;
  }
  return NULL;
}

/* Check the file: verify passes, and (proc, thread, i) appears exactly
 * once for every writer, with n counting up in file order. */
static void check_file(const char *path, int procs, int threads, int per) {
  char *rep = NULL, line[4096];
  cJSON *d;
  FILE *f;
  unsigned char *seen = calloc((size_t)(procs * threads * per), 1);
  long n = 0;
  assert_int_equal(llmr_ledger_verify(path, &rep), LLMR_OK);
  d = cJSON_Parse(rep);
  llmr_free(rep);
  assert_int_equal((long)cJSON_GetObjectItem(d, "records")->valuedouble,
                   (long)procs * threads * per);
  assert_int_equal((int)cJSON_GetObjectItem(d, "torn_total")->valuedouble, 0);
  cJSON_Delete(d);
  f = fopen(path, "r");
  assert_non_null(f);
  while (fgets(line, sizeof(line), f)) {
    cJSON *rec = cJSON_Parse(line);
    int p, t, i;
    size_t k;
    assert_non_null(rec);
    assert_int_equal((long)cJSON_GetObjectItem(rec, "n")->valuedouble, n);
    assert_int_equal(sscanf(cJSON_GetObjectItem(rec, "id")->valuestring,
                            "p%d-t%d", &p, &t),
                     2);
    i = atoi(cJSON_GetObjectItem(rec, "user")->valuestring);
    assert_true(p >= 0 && p < procs && t >= 0 && t < threads && i >= 0 &&
                i < per);
    assert_int_equal((int)cJSON_GetObjectItem(rec, "prompt")->valuedouble, i);
    k = (size_t)((p * threads + t) * per + i);
    assert_int_equal(seen[k], 0); /* never twice */
    seen[k] = 1;
    cJSON_Delete(rec);
    n++;
  }
  fclose(f);
  assert_int_equal(n, (long)procs * threads * per);
  for (n = 0; n < (long)procs * threads * per; n++)
    assert_int_equal(seen[n], 1); /* every one */
  free(seen);
}

static void test_processes_and_threads(void **state) {
  char path[300];
  pid_t pids[PROCS];
  int p, status;
  (void)state;
  new_path(path, sizeof(path));
  for (p = 0; p < PROCS; p++) {
    pids[p] = fork();
    assert_true(pids[p] >= 0);
    if (pids[p] == 0) {
      llmr_ledger *l;
      pthread_t th[THREADS];
      writer w[THREADS];
      int t, bad = 0;
      if (llmr_ledger_open(path, "{\"fsync\":\"never\"}", &l) != LLMR_OK)
        _exit(3);
      for (t = 0; t < THREADS; t++) {
        w[t].l = l;
        w[t].proc = p;
        w[t].thread = t;
        w[t].count = PER_THREAD;
        w[t].failures = 0;
        pthread_create(&th[t], NULL, write_records, &w[t]);
      }
      for (t = 0; t < THREADS; t++) {
        pthread_join(th[t], NULL);
        bad += w[t].failures;
      }
      llmr_ledger_close(l);
      _exit(bad ? 4 : 0);
    }
  }
  for (p = 0; p < PROCS; p++) {
    assert_int_equal(waitpid(pids[p], &status, 0), pids[p]);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
  }
  check_file(path, PROCS, THREADS, PER_THREAD);
}

/* Two ledger objects on one file in one process (separate open file
 * descriptions, as two libraries in one program would have), 8 threads. */
static void test_two_objects_one_file(void **state) {
  char path[300];
  llmr_ledger *a, *b;
  pthread_t th[8];
  writer w[8];
  int t;
  (void)state;
  new_path(path, sizeof(path));
  assert_int_equal(llmr_ledger_open(path, "{\"fsync\":\"never\"}", &a), LLMR_OK);
  assert_int_equal(llmr_ledger_open(path, "{\"fsync\":20}", &b), LLMR_OK);
  for (t = 0; t < 8; t++) {
    w[t].l = t % 2 ? b : a;
    w[t].proc = 0;
    w[t].thread = t;
    w[t].count = 100;
    w[t].failures = 0;
    pthread_create(&th[t], NULL, write_records, &w[t]);
  }
  for (t = 0; t < 8; t++) {
    pthread_join(th[t], NULL);
    assert_int_equal(w[t].failures, 0);
  }
  llmr_ledger_close(a);
  llmr_ledger_close(b);
  check_file(path, 1, 8, 100);
}

/* ---- reservations ------------------------------------------------------- */

typedef struct caller {
  llmr_router *r;
  pthread_barrier_t *go;
  llmr_status st;
} caller;

static void *call_once(void *arg) {
  caller *c = arg;
  const char *slugs[] = {"openai/gpt-4o-mini"};
  llmr_request *req;
  llmr_response *resp = NULL;
  llmr_request_new(&req);
  llmr_request_add_message(req, LLMR_ROLE_USER, "hi");
  llmr_request_set_max_tokens(req, 1000);
  llmr_request_set_app(req, "burst");
  pthread_barrier_wait(c->go);
  c->st = llmr_complete(c->r, slugs, 1, req, &resp);
  llmr_response_free(resp);
  llmr_request_free(req);
  return NULL;
}

static void test_reservations_hold_concurrent_calls(void **state) {
  char path[300], *conf, *info;
  llmr_router *r;
  llmr_ledger *l;
  pthread_barrier_t go;
  pthread_t th[8];
  caller c[8];
  int i, ok = 0, refused = 0;
  cJSON *d, *b;
  /* worst case of one call: 1 prompt token ("hi") x $0.15/Mtok + 1000 x
   * $0.60/Mtok = 150 + 600,000 = 600,150 nano-$. Room for 3.5 of them. */
  const char *opts = "{\"fsync\":\"never\",\"budgets\":[{\"app\":\"burst\","
                     "\"window\":\"day\",\"usd\":0.002100525}]}";
  (void)state;
  assert_int_equal(emu_start(&E, NULL), 0);
  /* slow answers: all 8 calls are in flight at once */
  assert_int_equal(emu_script(&E, "{\"model\":\"gpt-4o-mini\",\"default\":{"
                                  "\"kind\":\"ok\",\"delay_ms\":1000}}"),
                   0);
  conf = emu_config(&E, "");
  assert_int_equal(llmr_router_new(conf, &r), LLMR_OK);
  free(conf);
  assert_int_equal(llmr_ledger_open(new_path(path, sizeof(path)), opts, &l),
                   LLMR_OK);
  llmr_router_set_ledger(r, l);
  pthread_barrier_init(&go, NULL, 8);
  for (i = 0; i < 8; i++) {
    c[i].r = r;
    c[i].go = &go;
    pthread_create(&th[i], NULL, call_once, &c[i]);
  }
  for (i = 0; i < 8; i++) {
    pthread_join(th[i], NULL);
    ok += c[i].st == LLMR_OK;
    refused += c[i].st == LLMR_E_BUDGET;
  }
  pthread_barrier_destroy(&go);
  assert_int_equal(ok, 3);
  assert_int_equal(refused, 5);
  assert_int_equal(emu_count(&E, NULL), 3);
  assert_int_equal(llmr_ledger_info(l, &info), LLMR_OK);
  d = cJSON_Parse(info);
  llmr_free(info);
  b = cJSON_GetArrayItem(cJSON_GetObjectItem(d, "budgets"), 0);
  assert_int_equal((long)cJSON_GetObjectItem(b, "reserved_nanousd")->valuedouble,
                   0);
  assert_true(cJSON_GetObjectItem(b, "spent_nanousd")->valuedouble <=
              cJSON_GetObjectItem(b, "limit_nanousd")->valuedouble);
  assert_int_equal((int)cJSON_GetObjectItem(d, "records")->valuedouble, 3);
  cJSON_Delete(d);
  llmr_router_free(r);
  llmr_ledger_close(l);
  emu_stop(&E);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_processes_and_threads),
      cmocka_unit_test(test_two_objects_one_file),
      cmocka_unit_test(test_reservations_hold_concurrent_calls),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
