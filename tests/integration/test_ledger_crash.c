/*
 * Crash safety: writer processes append to one ledger and are killed with
 * SIGKILL at random moments, round after round; each round's writers open
 * the file the last round's left (torn tail and all). Every record a
 * writer was told was complete must be in the file exactly once and
 * intact, and the chain must verify, torn lines set aside.
 *
 * LLMR_CRASH_ROUNDS (default 50) and LLMR_CRASH_SEED change the run.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WRITERS 3
#define ID_LEN 24            /* "r000-w0-000000", padded */
#define SMALL_CAP 400        /* records per small writer per round */
#define BIG_CAP 20           /* records per big writer per round */
#define BIG_USER (32 * 1024) /* a big record takes a while to write */

static char dir[256];

static int setup(void **state) {
  (void)state;
  snprintf(dir, sizeof(dir), "%s/llmr-ledger-crash-XXXXXX",
           getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state) {
  char cmd[300];
  (void)state;
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  return system(cmd) == 0 ? 0 : -1;
}

/* A writer: append until killed, reporting each completed record's id on
 * the pipe (one write of ID_LEN bytes: atomic on a pipe). */
static void writer(const char *path, int round, int k, int fd) {
  static char big[BIG_USER + 1];
  static const char *const asked[] = {"openai/gpt-4o"};
  llmr_ledger *l;
  char id[64], err[LLMR_ERRBUF_SIZE];
  int i, cap = k == WRITERS - 1 ? BIG_CAP : SMALL_CAP;
  if (llmr_ledger_open_ex(path, "{\"fsync\":\"never\"}", &l, err,
                          sizeof(err)) != LLMR_OK) {
    fprintf(stderr, "writer: open: %s\n", err);
    _exit(3);
  }
  memset(big, 'x', BIG_USER);
  for (i = 0; i < cap; i++) {
    llmr__ledger_rec r;
    memset(&r, 0, sizeof(r));
    /* fixed width: "r000-w0-000000" padded with spaces */
    snprintf(id, sizeof(id), "r%03d-w%d-%06d%*s", round, k, i, ID_LEN - 14,
             "");
    id[ID_LEN] = '\0';
    r.t_ms = llmr__wall_ms();
    r.id = id;
    r.app = "crash";
    r.user = k == WRITERS - 1 ? big : "small";
    r.asked = asked;
    r.n_asked = 1;
    r.model = "openai/gpt-4o";
    r.provider = "openai";
    r.native = "gpt-4o";
    r.attempt = 1;
    r.status = LLMR_OK;
    r.http_status = 200;
    r.usage.prompt = i;
    r.usage.completion = round;
    r.cost_nanousd = i * 10 + k;
    r.latency_ms = 1;
    r.ttft_ms = -1;
    if (llmr__ledger_append(l, &r, NULL, NULL, err, sizeof(err)) != LLMR_OK) {
      fprintf(stderr, "writer: append: %s\n", err);
      _exit(4);
    }
    if (write(fd, id, ID_LEN) != ID_LEN)
      _exit(5);
  }
  for (;;) /* wait for the kill */
    pause();
}

static int cmp_id(const void *a, const void *b) {
  return memcmp(a, b, ID_LEN);
}

static void test_sigkill_rounds(void **state) {
  char path[300], *rep = NULL, *line = NULL;
  int rounds = getenv("LLMR_CRASH_ROUNDS") ? atoi(getenv("LLMR_CRASH_ROUNDS"))
                                           : 50;
  unsigned seed = getenv("LLMR_CRASH_SEED")
                      ? (unsigned)atoi(getenv("LLMR_CRASH_SEED"))
                      : (unsigned)time(NULL);
  char *reported = NULL, *present = NULL;
  size_t n_rep = 0, cap_rep = 0, n_pres = 0, cap_pres = 0, cap = 0, i;
  int round, k, killed_mid = 0;
  ssize_t len;
  cJSON *d;
  FILE *f;
  (void)state;
  snprintf(path, sizeof(path), "%s/crash.jsonl", dir);
  fprintf(stderr, "LLMR_CRASH_SEED=%u rounds=%d\n", seed, rounds);
  srand(seed);

  for (round = 0; round < rounds; round++) {
    pid_t pid[WRITERS];
    int fds[WRITERS][2], status;
    for (k = 0; k < WRITERS; k++) {
      assert_int_equal(pipe(fds[k]), 0);
      pid[k] = fork();
      assert_true(pid[k] >= 0);
      if (pid[k] == 0) {
        int j;
        for (j = 0; j <= k; j++)
          close(fds[j][0]);
        writer(path, round, k, fds[k][1]);
      }
      close(fds[k][1]);
    }
    usleep((useconds_t)(1000 + rand() % 12000));
    for (k = 0; k < WRITERS; k++)
      kill(pid[k], SIGKILL);
    for (k = 0; k < WRITERS; k++) {
      char buf[ID_LEN * 64];
      ssize_t got;
      size_t have = 0;
      assert_int_equal(waitpid(pid[k], &status, 0), pid[k]);
      if (!WIFSIGNALED(status))
        fprintf(stderr, "writer %d of round %d exited with %d\n", k, round,
                WEXITSTATUS(status));
      assert_true(WIFSIGNALED(status));
      assert_int_equal(WTERMSIG(status), SIGKILL);
      /* what it reported complete before it died */
      while ((got = read(fds[k][0], buf + have, sizeof(buf) - have)) > 0 ||
             (got < 0 && errno == EINTR)) {
        size_t whole;
        if (got < 0)
          continue;
        have += (size_t)got;
        whole = have - have % ID_LEN;
        if (n_rep + whole / ID_LEN > cap_rep) {
          cap_rep = (n_rep + whole / ID_LEN) * 2 + 64;
          reported = realloc(reported, cap_rep * ID_LEN);
        }
        memcpy(reported + n_rep * ID_LEN, buf, whole);
        n_rep += whole / ID_LEN;
        memmove(buf, buf + whole, have - whole);
        have -= whole;
      }
      assert_int_equal(have, 0);
      close(fds[k][0]);
    }
  }

  /* the chain verifies; torn lines are only set aside */
  assert_int_equal(llmr_ledger_verify(path, &rep), LLMR_OK);
  d = cJSON_Parse(rep);
  llmr_free(rep);
  assert_int_equal((int)cJSON_GetObjectItem(d, "problems_total")->valuedouble,
                   0);
  killed_mid = (int)cJSON_GetObjectItem(d, "torn_total")->valuedouble;
  fprintf(stderr, "%d rounds: %zu records reported complete, %.0f in the "
                  "file, %d torn writes set aside\n",
          rounds, n_rep, cJSON_GetObjectItem(d, "records")->valuedouble,
          killed_mid);
  cJSON_Delete(d);

  /* every record in the file, intact */
  f = fopen(path, "r");
  assert_non_null(f);
  while ((len = getline(&line, &cap, f)) > 0) {
    cJSON *rec;
    const char *id, *user;
    int r_round, r_k, r_i;
    if (line[len - 1] != '\n')
      break; /* a torn tail */
    if (!(rec = cJSON_Parse(line)))
      continue; /* a torn line, set aside (verify counted it) */
    id = cJSON_GetObjectItem(rec, "id")->valuestring;
    user = cJSON_GetObjectItem(rec, "user")->valuestring;
    assert_int_equal(strlen(id), ID_LEN);
    assert_int_equal(sscanf(id, "r%d-w%d-%d", &r_round, &r_k, &r_i), 3);
    assert_int_equal((int)cJSON_GetObjectItem(rec, "prompt")->valuedouble, r_i);
    assert_int_equal((int)cJSON_GetObjectItem(rec, "completion")->valuedouble,
                     r_round);
    assert_int_equal(
        (int)cJSON_GetObjectItem(rec, "cost_nanousd")->valuedouble,
        r_i * 10 + r_k);
    assert_int_equal(strlen(user), r_k == WRITERS - 1 ? BIG_USER : 5);
    if (n_pres == cap_pres) {
      cap_pres = cap_pres * 2 + 1024;
      present = realloc(present, cap_pres * ID_LEN);
    }
    memcpy(present + n_pres++ * ID_LEN, id, ID_LEN);
    cJSON_Delete(rec);
  }
  free(line);
  fclose(f);

  /* no record twice; every reported one present */
  qsort(present, n_pres, ID_LEN, cmp_id);
  for (i = 1; i < n_pres; i++)
    assert_true(memcmp(present + (i - 1) * ID_LEN, present + i * ID_LEN,
                       ID_LEN) != 0);
  for (i = 0; i < n_rep; i++) {
    if (!bsearch(reported + i * ID_LEN, present, n_pres, ID_LEN, cmp_id)) {
      fprintf(stderr, "lost: %.*s\n", ID_LEN, reported + i * ID_LEN);
      fail();
    }
  }
  assert_true(n_pres >= n_rep);
  assert_true(n_rep > 0);
  free(reported);
  free(present);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sigkill_rounds),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
