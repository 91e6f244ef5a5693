/*
 * The ledger file: one JSON record per line, appended with one write() in
 * O_APPEND mode while holding an exclusive flock(), each record's SHA-256
 * chained to the one before. A mutex guards the in-process state; the
 * flock keeps the chain linear across processes: whoever holds it first
 * reads what others appended since it last looked ("catch-up"), then
 * writes. Torn lines (a crash in mid-write) are skipped and never touched.
 * Budgets keep spend per window from the records plus the worst cases of
 * the attempts in flight (reservations).
 */
#include "ledger_int.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- small helpers ------------------------------------------------------ */

int64_t llmr__wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Request ids: 128 random bits each, taken 16 bytes at a time from a
 * per-thread pool filled by one getrandom() call (one system call per 32
 * ids rather than per id; docs/NOTES.md, "Hot path"). A fork bumps a
 * generation so a child never hands out the bytes its parent also holds.
 */
#define LLMR__ID_POOL 512
static atomic_uint id_fork_gen;
static pthread_once_t id_once = PTHREAD_ONCE_INIT;

static void id_after_fork(void) {
  atomic_fetch_add(&id_fork_gen, 1u);
}

static void id_register(void) {
  pthread_atfork(NULL, NULL, id_after_fork);
}

void llmr__random_id(char out[33]) {
  static const char hex[] = "0123456789abcdef";
  static _Thread_local unsigned char pool[LLMR__ID_POOL];
  static _Thread_local size_t pool_pos = LLMR__ID_POOL;
  static _Thread_local unsigned pool_gen;
  unsigned char r[16];
  size_t got = 0;
  unsigned gen;
  int i;
  pthread_once(&id_once, id_register);
  gen = atomic_load(&id_fork_gen);
  if (gen != pool_gen) {
    pool_gen = gen;
    pool_pos = LLMR__ID_POOL;
  }
  if (pool_pos > LLMR__ID_POOL - sizeof(r)) {
    size_t fill = 0;
    while (fill < sizeof(pool)) {
      ssize_t n = getrandom(pool + fill, sizeof(pool) - fill, 0);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        break;
      fill += (size_t)n;
    }
    if (fill == sizeof(pool))
      pool_pos = 0;
  }
  if (pool_pos <= LLMR__ID_POOL - sizeof(r)) {
    memcpy(r, pool + pool_pos, sizeof(r));
    memset(pool + pool_pos, 0, sizeof(r)); /* handed out: not again */
    pool_pos += sizeof(r);
    got = sizeof(r);
  }
  if (got < sizeof(r)) {
    /* no getrandom (very old kernel): time, address and a counter still
     * make ids unique, if not unpredictable */
    static unsigned long counter;
    uint64_t x = (uint64_t)llmr__wall_ms() ^ ((uint64_t)(uintptr_t)&got << 16) ^
                 (uint64_t)__atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED)
                     << 40;
    for (i = 0; i < 16; i++) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      r[i] = (unsigned char)(x >> 24);
    }
  }
  for (i = 0; i < 16; i++) {
    out[2 * i] = hex[r[i] >> 4];
    out[2 * i + 1] = hex[r[i] & 15];
  }
  out[32] = '\0';
}

static int digits(const char *s, int n, int *out) {
  int i, v = 0;
  for (i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return -1;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return 0;
}

int llmr__parse_time(const char *s, int64_t now_ms, int64_t *out) {
  struct tm tm;
  int y, mo, d, h = 0, mi = 0, sec = 0, ms = 0;
  const char *p;
  char *end;
  if (!s || !*s)
    return -1;
  if (strcmp(s, "now") == 0) {
    *out = now_ms;
    return 0;
  }
  if (s[0] == '-' && s[1] >= '0' && s[1] <= '9') { /* -7d, -12h */
    long long n;
    errno = 0;
    n = strtoll(s + 1, &end, 10);
    if (errno || n < 0 || n > 1000000 || (strcmp(end, "d") && strcmp(end, "h")))
      return -1;
    *out = now_ms - n * (*end == 'd' ? 86400000LL : 3600000LL);
    return 0;
  }
  if (strlen(s) >= 4 && strspn(s, "0123456789") == strlen(s)) {
    long long n;
    errno = 0;
    n = strtoll(s, &end, 10);
    if (errno || *end)
      return -1;
    *out = n;
    return 0;
  }
  if (strlen(s) < 10 || digits(s, 4, &y) || s[4] != '-' ||
      digits(s + 5, 2, &mo) || s[7] != '-' || digits(s + 8, 2, &d))
    return -1;
  p = s + 10;
  if (*p == 'T' || *p == ' ') {
    if (digits(p + 1, 2, &h) || p[3] != ':' || digits(p + 4, 2, &mi))
      return -1;
    p += 6;
    if (*p == ':') {
      if (digits(p + 1, 2, &sec))
        return -1;
      p += 3;
      if (*p == '.') {
        int k = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, k++)
          if (k < 3)
            ms = ms * 10 + (*p - '0');
        if (k == 0)
          return -1;
        for (; k < 3; k++)
          ms *= 10;
      }
    }
    if (*p == 'Z')
      p++;
  }
  if (*p || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
      sec > 60)
    return -1;
  memset(&tm, 0, sizeof(tm));
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = sec;
  *out = (int64_t)timegm(&tm) * 1000 + ms;
  return 0;
}

/* ---- the object --------------------------------------------------------- */

enum { FSYNC_ALWAYS, FSYNC_NEVER, FSYNC_INTERVAL };

typedef struct budget {
  char *app; /* NULL: every call */
  llmr_window window;
  int64_t limit; /* nano-USD */
} budget;

/* Spend of one key (an app with a budget, or everything) in the current
 * windows, from the records, plus what attempts in flight reserved. */
typedef struct spend {
  char *app; /* NULL: everything */
  int64_t day_id, day, month_id, month, all;
  int64_t reserved;
} spend;

typedef struct torn_line {
  uint64_t off;
  size_t bytes;
} torn_line;

#define TORN_KEEP 32

struct llmr_ledger {
  char *path;
  int fd;
  int readonly;
  pthread_mutex_t mu;
  /* the chain as far as this object has read the file */
  char head[65];
  int64_t next_n;
  uint64_t known;   /* bytes read and accounted for */
  int need_nl;      /* the file ends inside a torn line */
  int broken;       /* a line that is no record appeared: appends refused */
  char broken_why[LLMR_ERRBUF_SIZE];
  torn_line torn[TORN_KEEP];
  size_t n_torn;
  /* durability */
  int fsync_mode;
  long fsync_ms;
  double last_sync;
  /* budgets */
  budget *budgets;
  size_t n_budgets, cap_budgets;
  spend *spends;
  size_t n_spends, cap_spends;
  int tracking; /* spends are kept up to date */
  int budget_fallback;
  int allow_unpriced;
  /* statistics */
  uint64_t appended;
  uint64_t write_errors;
  char last_error[LLMR_ERRBUF_SIZE];
};

int llmr__ledger_fd(const llmr_ledger *l) { return l->fd; }
const char *llmr__ledger_path(const llmr_ledger *l) { return l->path; }

int llmr__ledger_budget_fallback(const llmr_ledger *l) {
  return l ? l->budget_fallback : 1;
}

int llmr__ledger_has_budgets(llmr_ledger *l) {
  int has;
  if (!l)
    return 0;
  pthread_mutex_lock(&l->mu);
  has = l->n_budgets > 0;
  pthread_mutex_unlock(&l->mu);
  return has;
}

static int lock_file(int fd, int op) {
  int rc;
  do
    rc = flock(fd, op);
  while (rc != 0 && errno == EINTR);
  return rc;
}

static void note_torn(llmr_ledger *l, uint64_t off, size_t bytes) {
  size_t i;
  for (i = 0; i < l->n_torn; i++)
    if (l->torn[i].off == off) {
      l->torn[i].bytes = bytes;
      return;
    }
  if (l->n_torn < TORN_KEEP) {
    l->torn[l->n_torn].off = off;
    l->torn[l->n_torn].bytes = bytes;
    l->n_torn++;
  }
}

/* ---- spend -------------------------------------------------------------- */

static spend *find_spend(llmr_ledger *l, const char *app) {
  size_t i;
  for (i = 0; i < l->n_spends; i++)
    if ((!app && !l->spends[i].app) ||
        (app && l->spends[i].app && strcmp(app, l->spends[i].app) == 0))
      return &l->spends[i];
  return NULL;
}

static void spend_add(spend *s, int64_t t, int64_t cost) {
  int64_t d = llmr__day_of(t), m = llmr__month_of(t);
  if (d == s->day_id) {
    s->day += cost;
  } else if (d > s->day_id) {
    s->day_id = d;
    s->day = cost;
  }
  if (m == s->month_id) {
    s->month += cost;
  } else if (m > s->month_id) {
    s->month_id = m;
    s->month = cost;
  }
  s->all += cost;
}

static int64_t spent_in(const spend *s, llmr_window w, int64_t now) {
  if (w == LLMR_WINDOW_DAY)
    return s->day_id == llmr__day_of(now) ? s->day : 0;
  if (w == LLMR_WINDOW_MONTH)
    return s->month_id == llmr__month_of(now) ? s->month : 0;
  return s->all;
}

/* A record's cost into the spends it belongs to. */
static void apply(llmr_ledger *l, int64_t t, const llmr__span *app,
                  int64_t cost) {
  size_t i;
  if (!l->tracking || cost <= 0)
    return;
  for (i = 0; i < l->n_spends; i++) {
    spend *s = &l->spends[i];
    if (!s->app || (!app->null && llmr__span_eq(app, s->app)))
      spend_add(s, t, cost);
  }
}

static void apply_str(llmr_ledger *l, int64_t t, const char *app,
                      int64_t cost) {
  llmr__span sp;
  memset(&sp, 0, sizeof(sp));
  sp.p = app;
  sp.n = app ? strlen(app) : 0;
  sp.null = app == NULL;
  apply(l, t, &sp, cost);
}

/* ---- reading the file --------------------------------------------------- */

#define SET_BROKEN(...)                                                        \
  do {                                                                         \
    snprintf(l->broken_why, sizeof(l->broken_why), __VA_ARGS__);               \
    l->broken = 1;                                                             \
  } while (0)

/*
 * Account for the bytes of the file from l->known up to its current size:
 * records move the head and add to spends; torn lines are noted and
 * skipped. `locked`: the caller holds the flock, so no writer is in
 * mid-line and a last piece without '\n' is torn; otherwise that piece is
 * left for later. Called with the mutex held.
 */
static llmr_status catch_up(llmr_ledger *l, int locked) {
  struct stat stb;
  llmr__lreader lr;
  const char *line;
  size_t len;
  uint64_t off;
  int nl, r;
  char why[160];
  llmr_status st = LLMR_OK;

  if (l->broken)
    return LLMR_E_CORRUPT;
  if (fstat(l->fd, &stb) != 0)
    return LLMR_E_IO;
  if ((uint64_t)stb.st_size < l->known) {
    SET_BROKEN("%s: the file shrank from %llu to %lld bytes: it was "
               "truncated or replaced",
               l->path, (unsigned long long)l->known, (long long)stb.st_size);
    return LLMR_E_CORRUPT;
  }
  if ((uint64_t)stb.st_size == l->known)
    return LLMR_OK;
  if (l->need_nl) {
    /* another writer ended our torn tail with the '\n' it wrote first */
    char c;
    if (pread(l->fd, &c, 1, (off_t)l->known) == 1 && c == '\n') {
      l->known++;
      l->need_nl = 0;
    }
  }
  llmr__lr_init(&lr, l->fd, l->known, (uint64_t)stb.st_size);
  while ((r = llmr__lr_next(&lr, &line, &len, &off, &nl)) != 0) {
    llmr__recview rv;
    int kind;
    if (r == -1) {
      st = lr.err == ENOMEM ? LLMR_E_NOMEM : LLMR_E_IO;
      break;
    }
    if (r == -2) {
      SET_BROKEN("%s: offset %llu: a line longer than 16 MiB: not a ledger "
                 "record",
                 l->path, (unsigned long long)off);
      st = LLMR_E_CORRUPT;
      break;
    }
    if (!nl && !locked) /* maybe a write in progress: look again later */
      break;
    kind = llmr__line_classify(line, len, &rv, why, sizeof(why));
    if (kind == LLMR__LINE_BAD) {
      SET_BROKEN("%s: offset %llu: not a ledger record: %s", l->path,
                 (unsigned long long)off, why);
      st = LLMR_E_CORRUPT;
      break;
    }
    if (kind == LLMR__LINE_TORN) {
      if (len)
        note_torn(l, off, len);
    } else {
      memcpy(l->head, rv.hash.p, 64);
      l->next_n = rv.n + 1;
      apply(l, rv.t, &rv.app, rv.cost);
    }
    l->known = off + len + (nl ? 1 : 0);
    l->need_nl = !nl;
  }
  llmr__lr_free(&lr);
  return st;
}

/* Recompute every spend from the whole file (when a budget starts being
 * tracked). Mutex held. */
static llmr_status rescan_spends(llmr_ledger *l) {
  llmr__lreader lr;
  const char *line;
  size_t len, i;
  uint64_t off;
  int nl, r;
  char why[160];
  llmr_status st = LLMR_OK;

  for (i = 0; i < l->n_spends; i++) {
    spend *s = &l->spends[i];
    s->day_id = s->month_id = INT64_MIN;
    s->day = s->month = s->all = 0;
  }
  l->tracking = 1;
  llmr__lr_init(&lr, l->fd, 0, l->known);
  while ((r = llmr__lr_next(&lr, &line, &len, &off, &nl)) != 0) {
    llmr__recview rv;
    if (r < 0) {
      st = r == -1 ? (lr.err == ENOMEM ? LLMR_E_NOMEM : LLMR_E_IO)
                   : LLMR_E_CORRUPT;
      if (st == LLMR_E_CORRUPT)
        SET_BROKEN("%s: offset %llu: a line longer than 16 MiB: not a "
                   "ledger record",
                   l->path, (unsigned long long)off);
      break;
    }
    switch (llmr__line_classify(line, len, &rv, why, sizeof(why))) {
    case LLMR__LINE_RECORD:
      apply(l, rv.t, &rv.app, rv.cost);
      break;
    case LLMR__LINE_TORN:
      break;
    default:
      SET_BROKEN("%s: offset %llu: not a ledger record: %s", l->path,
                 (unsigned long long)off, why);
      st = LLMR_E_CORRUPT;
      break;
    }
    if (st != LLMR_OK)
      break;
  }
  llmr__lr_free(&lr);
  if (st != LLMR_OK)
    l->tracking = 0;
  return st;
}

/*
 * Find the head without reading the whole file: the last record, looking
 * back from the end over torn lines, in a window that doubles until it
 * holds one. The first line is checked too, so that a file that is no
 * ledger at all is refused at once. Called under a shared flock.
 */
static llmr_status scan_tail(llmr_ledger *l, uint64_t size, char *errbuf,
                             size_t errsize) {
  uint64_t window = 65536;
  char why[160];
  int first_checked = 0;

  for (;;) {
    uint64_t from = size > window ? size - window : 0;
    llmr__lreader lr;
    const char *line;
    size_t len;
    uint64_t off;
    int nl, r, found = 0, skip_first = from > 0;
    llmr__recview rv;

    llmr__lr_init(&lr, l->fd, from, size);
    l->n_torn = 0;
    while ((r = llmr__lr_next(&lr, &line, &len, &off, &nl)) != 0) {
      int kind;
      if (r == -1) {
        llmr__errf(errbuf, errsize, "%s: read error: %s", l->path,
                   strerror(lr.err));
        llmr__lr_free(&lr);
        return lr.err == ENOMEM ? LLMR_E_NOMEM : LLMR_E_IO;
      }
      if (skip_first) { /* it began before the window */
        skip_first = 0;
        continue;
      }
      if (r == -2) {
        llmr__errf(errbuf, errsize,
                   "%s: offset %llu: a line longer than 16 MiB: not a "
                   "ledger record",
                   l->path, (unsigned long long)off);
        llmr__lr_free(&lr);
        return LLMR_E_CORRUPT;
      }
      kind = llmr__line_classify(line, len, &rv, why, sizeof(why));
      if (off == 0)
        first_checked = 1;
      if (kind == LLMR__LINE_BAD) {
        llmr__errf(errbuf, errsize, "%s: offset %llu: not a ledger record: %s",
                   l->path, (unsigned long long)off, why);
        llmr__lr_free(&lr);
        return LLMR_E_CORRUPT;
      }
      if (kind == LLMR__LINE_RECORD) {
        found = 1;
        memcpy(l->head, rv.hash.p, 64);
        l->next_n = rv.n + 1;
        l->n_torn = 0; /* only torn lines after the last record count */
        l->need_nl = !nl;
      } else if (len) {
        note_torn(l, off, len);
        l->need_nl = !nl;
      } else {
        l->need_nl = 0;
      }
    }
    llmr__lr_free(&lr);
    if (found || from == 0)
      break;
    window *= 2;
  }
  if (!first_checked && size > 0) {
    /* the first line: is this a ledger at all? */
    llmr__lreader lr;
    const char *line;
    size_t len;
    uint64_t off;
    int nl, r;
    llmr__recview rv;
    llmr__lr_init(&lr, l->fd, 0, size);
    r = llmr__lr_next(&lr, &line, &len, &off, &nl);
    if (r == 1 && llmr__line_classify(line, len, &rv, why, sizeof(why)) ==
                      LLMR__LINE_BAD) {
      llmr__errf(errbuf, errsize, "%s: offset 0: not a ledger record: %s",
                 l->path, why);
      llmr__lr_free(&lr);
      return LLMR_E_CORRUPT;
    }
    llmr__lr_free(&lr);
    if (r == -2) {
      llmr__errf(errbuf, errsize,
                 "%s: offset 0: a line longer than 16 MiB: not a ledger "
                 "record",
                 l->path);
      return LLMR_E_CORRUPT;
    }
  }
  l->known = size;
  return LLMR_OK;
}

/* ---- open / close ------------------------------------------------------- */

#define OPT_ERR(...)                                                           \
  do {                                                                         \
    llmr__errf(errbuf, errsize, __VA_ARGS__);                                  \
    st = LLMR_E_INVAL;                                                         \
    goto out;                                                                  \
  } while (0)

static const char *const window_names[] = {"day", "month", "all"};

static llmr_status add_budget(llmr_ledger *l, const char *app, llmr_window w,
                              int64_t limit, int *new_key) {
  size_t i;
  *new_key = 0;
  for (i = 0; i < l->n_budgets; i++) {
    budget *b = &l->budgets[i];
    if (b->window == w && ((!app && !b->app) ||
                           (app && b->app && strcmp(app, b->app) == 0))) {
      b->limit = limit;
      return LLMR_OK;
    }
  }
  if (llmr__grow((void **)&l->budgets, &l->cap_budgets, l->n_budgets + 1,
                 sizeof(*l->budgets)) != 0)
    return LLMR_E_NOMEM;
  if (!find_spend(l, app)) {
    spend *s;
    if (llmr__grow((void **)&l->spends, &l->cap_spends, l->n_spends + 1,
                   sizeof(*l->spends)) != 0)
      return LLMR_E_NOMEM;
    s = &l->spends[l->n_spends];
    memset(s, 0, sizeof(*s));
    s->day_id = s->month_id = INT64_MIN;
    if (app && !(s->app = llmr__strdup(app)))
      return LLMR_E_NOMEM;
    l->n_spends++;
    *new_key = 1;
  }
  l->budgets[l->n_budgets].app = NULL;
  if (app && !(l->budgets[l->n_budgets].app = llmr__strdup(app)))
    return LLMR_E_NOMEM;
  l->budgets[l->n_budgets].window = w;
  l->budgets[l->n_budgets].limit = limit;
  l->n_budgets++;
  return LLMR_OK;
}

static int64_t usd_to_nano(double usd) {
  return (int64_t)llround(usd * 1e9);
}

static llmr_status read_options(llmr_ledger *l, const cJSON *o, int *create,
                                char *errbuf, size_t errsize) {
  static const char *const keys[] = {"fsync",          "budgets",
                                     "budget_fallback", "allow_unpriced",
                                     "readonly",       "create",
                                     NULL};
  const cJSON *v, *k;
  llmr_status st = LLMR_OK;
  size_t i;
  if (!cJSON_IsObject(o))
    OPT_ERR("ledger options: expected a JSON object");
  cJSON_ArrayForEach(k, o) {
    for (i = 0; keys[i]; i++)
      if (strcmp(k->string, keys[i]) == 0)
        break;
    if (!keys[i])
      OPT_ERR("ledger options.%s: unknown setting", k->string);
  }
  if ((v = cJSON_GetObjectItemCaseSensitive(o, "fsync"))) {
    if (cJSON_IsString(v) && strcmp(v->valuestring, "always") == 0)
      l->fsync_mode = FSYNC_ALWAYS;
    else if (cJSON_IsString(v) && strcmp(v->valuestring, "never") == 0)
      l->fsync_mode = FSYNC_NEVER;
    else if (cJSON_IsNumber(v) && v->valuedouble >= 0 &&
             v->valuedouble <= 86400000.0) {
      l->fsync_ms = (long)v->valuedouble;
      l->fsync_mode = l->fsync_ms ? FSYNC_INTERVAL : FSYNC_ALWAYS;
    } else
      OPT_ERR("ledger options.fsync: expected \"always\", \"never\" or a "
              "number of milliseconds");
  }
#define BOOL_OPT(name, dst)                                                    \
  if ((v = cJSON_GetObjectItemCaseSensitive(o, name))) {                       \
    if (!cJSON_IsBool(v))                                                      \
      OPT_ERR("ledger options." name ": expected true or false");              \
    dst = cJSON_IsTrue(v);                                                     \
  }
  BOOL_OPT("budget_fallback", l->budget_fallback)
  BOOL_OPT("allow_unpriced", l->allow_unpriced)
  BOOL_OPT("readonly", l->readonly)
  BOOL_OPT("create", *create)
#undef BOOL_OPT
  if ((v = cJSON_GetObjectItemCaseSensitive(o, "budgets"))) {
    const cJSON *b;
    i = 0;
    if (!cJSON_IsArray(v))
      OPT_ERR("ledger options.budgets: expected a list");
    cJSON_ArrayForEach(b, v) {
      const cJSON *app = cJSON_GetObjectItemCaseSensitive(b, "app");
      const cJSON *win = cJSON_GetObjectItemCaseSensitive(b, "window");
      const cJSON *usd = cJSON_GetObjectItemCaseSensitive(b, "usd");
      int w, dummy;
      if (!cJSON_IsObject(b))
        OPT_ERR("ledger options.budgets[%zu]: expected an object", i);
      if (app && !cJSON_IsNull(app) && !cJSON_IsString(app))
        OPT_ERR("ledger options.budgets[%zu].app: expected a string", i);
      for (w = 0; w < 3; w++)
        if (cJSON_IsString(win) && strcmp(win->valuestring, window_names[w]) == 0)
          break;
      if (w == 3)
        OPT_ERR("ledger options.budgets[%zu].window: expected \"day\", "
                "\"month\" or \"all\"",
                i);
      if (!cJSON_IsNumber(usd) || usd->valuedouble < 0 ||
          usd->valuedouble > 9e9)
        OPT_ERR("ledger options.budgets[%zu].usd: expected a non-negative "
                "number of dollars",
                i);
      if ((st = add_budget(l, cJSON_IsString(app) ? app->valuestring : NULL,
                           (llmr_window)w, usd_to_nano(usd->valuedouble),
                           &dummy)) != LLMR_OK)
        goto out;
      i++;
    }
  }
out:
  return st;
}

LLMR_API void llmr_ledger_close(llmr_ledger *l) {
  size_t i;
  if (!l)
    return;
  if (l->fd >= 0) {
    if (!l->readonly && l->fsync_mode != FSYNC_NEVER && l->appended)
      fdatasync(l->fd);
    close(l->fd);
  }
  for (i = 0; i < l->n_budgets; i++)
    llmr__free(l->budgets[i].app);
  for (i = 0; i < l->n_spends; i++)
    llmr__free(l->spends[i].app);
  llmr__free(l->budgets);
  llmr__free(l->spends);
  llmr__free(l->path);
  pthread_mutex_destroy(&l->mu);
  llmr__free(l);
}

LLMR_API llmr_status llmr_ledger_open_ex(const char *path,
                                         const char *options_json,
                                         llmr_ledger **out, char *errbuf,
                                         size_t errsize) {
  llmr_ledger *l = NULL;
  cJSON *opts = NULL;
  struct stat stb;
  int create = 1, flags;
  llmr_status st = LLMR_E_NOMEM;

  if (errbuf && errsize)
    errbuf[0] = '\0';
  if (!out)
    return LLMR_E_INVAL;
  *out = NULL;
  if (!path || !*path) {
    llmr__errf(errbuf, errsize, "ledger: no path given");
    return LLMR_E_INVAL;
  }
  if (!(l = llmr__calloc(1, sizeof(*l))))
    goto out;
  l->fd = -1;
  pthread_mutex_init(&l->mu, NULL);
  memcpy(l->head, LLMR__GENESIS, 65);
  l->budget_fallback = 1;
  l->fsync_mode = FSYNC_ALWAYS;
  if (!(l->path = llmr__strdup(path)))
    goto out;
  if (options_json) {
    if (!(opts = cJSON_Parse(options_json))) {
      llmr__errf(errbuf, errsize, "ledger options: not valid JSON");
      st = LLMR_E_INVAL;
      goto out;
    }
    if ((st = read_options(l, opts, &create, errbuf, errsize)) != LLMR_OK)
      goto out;
  }
  flags = O_CLOEXEC | (l->readonly ? O_RDONLY : O_RDWR | O_APPEND) |
          (create && !l->readonly ? O_CREAT : 0);
  /* 0600: the ledger says who spent what; it is nobody else's business */
  if ((l->fd = open(path, flags, 0600)) < 0) {
    llmr__errf(errbuf, errsize, "cannot open %s: %s", path, strerror(errno));
    st = LLMR_E_IO;
    goto out;
  }
  if (fstat(l->fd, &stb) != 0 || !S_ISREG(stb.st_mode)) {
    llmr__errf(errbuf, errsize, "%s: not a regular file", path);
    st = LLMR_E_IO;
    goto out;
  }
  /* with a shared lock held no writer is in mid-line: a last line without
   * its newline is torn */
  if (lock_file(l->fd, LOCK_SH) != 0) {
    llmr__errf(errbuf, errsize, "%s: cannot lock: %s", path, strerror(errno));
    st = LLMR_E_IO;
    goto out;
  }
  if (fstat(l->fd, &stb) != 0) {
    st = LLMR_E_IO;
  } else {
    st = scan_tail(l, (uint64_t)stb.st_size, errbuf, errsize);
    if (st == LLMR_OK && l->n_budgets) {
      st = rescan_spends(l);
      if (st != LLMR_OK)
        llmr__errf(errbuf, errsize, "%s",
                   l->broken ? l->broken_why : "cannot read the ledger");
    }
  }
  lock_file(l->fd, LOCK_UN);
  if (st != LLMR_OK)
    goto out;
  l->last_sync = llmr__now_ms();
  st = LLMR_OK;
out:
  cJSON_Delete(opts);
  if (st != LLMR_OK) {
    if (st == LLMR_E_NOMEM)
      llmr__errf(errbuf, errsize, "out of memory");
    llmr_ledger_close(l);
    return st;
  }
  *out = l;
  return LLMR_OK;
}

LLMR_API llmr_status llmr_ledger_open(const char *path,
                                      const char *options_json,
                                      llmr_ledger **out) {
  return llmr_ledger_open_ex(path, options_json, out, NULL, 0);
}

/* ---- budgets ------------------------------------------------------------ */

LLMR_API llmr_status llmr_ledger_set_budget(llmr_ledger *l, const char *app,
                                            llmr_window window, double usd) {
  llmr_status st = LLMR_OK;
  int new_key = 0;
  size_t i;
  if (!l || (unsigned)window > LLMR_WINDOW_ALL || usd != usd || usd > 9e9)
    return LLMR_E_INVAL;
  pthread_mutex_lock(&l->mu);
  if (usd < 0) { /* remove */
    for (i = 0; i < l->n_budgets; i++) {
      budget *b = &l->budgets[i];
      if (b->window == window && ((!app && !b->app) ||
                                  (app && b->app && strcmp(app, b->app) == 0))) {
        llmr__free(b->app);
        l->budgets[i] = l->budgets[--l->n_budgets];
        break;
      }
    }
    pthread_mutex_unlock(&l->mu);
    return LLMR_OK;
  }
  st = add_budget(l, app, window, usd_to_nano(usd), &new_key);
  if (st == LLMR_OK && (new_key || !l->tracking)) {
    /* the records decide what this key has spent so far */
    lock_file(l->fd, LOCK_SH);
    st = rescan_spends(l);
    lock_file(l->fd, LOCK_UN);
  }
  pthread_mutex_unlock(&l->mu);
  return st;
}

static void fmt_usd(int64_t nano, char *out, size_t size) {
  llmr__usd_format(nano, out, size);
}

llmr_status llmr__ledger_reserve(llmr_ledger *l, const char *app,
                                 int64_t worst, llmr__reservation *res,
                                 char *why, size_t why_size) {
  int64_t now = llmr__wall_ms();
  size_t i;
  int applies = 0;
  spend *all, *mine;
  res->nanousd = 0;
  res->app = app;
  if (!l)
    return LLMR_OK;
  pthread_mutex_lock(&l->mu);
  for (i = 0; i < l->n_budgets; i++)
    if (!l->budgets[i].app || (app && strcmp(app, l->budgets[i].app) == 0))
      applies = 1;
  if (!applies) {
    pthread_mutex_unlock(&l->mu);
    return LLMR_OK;
  }
  /* what other processes spent since we last looked */
  catch_up(l, 0);
  if (!l->tracking || l->broken) {
    /* what was spent is not known: no limit can be kept, so none is
     * passed */
    llmr__errf(why, why_size, "budget: the ledger cannot be read: %s",
               l->broken ? l->broken_why : "see llmr_ledger_info()");
    pthread_mutex_unlock(&l->mu);
    return LLMR_E_BUDGET;
  }
  if (worst < 0) {
    if (!l->allow_unpriced) {
      pthread_mutex_unlock(&l->mu);
      llmr__errf(why, why_size,
                 "budget: the model's price is not in the catalog, so its "
                 "cost cannot be bounded (ledger option allow_unpriced)");
      return LLMR_E_BUDGET;
    }
    worst = 0;
  }
  for (i = 0; i < l->n_budgets; i++) {
    const budget *b = &l->budgets[i];
    const spend *s;
    int64_t spent;
    if (b->app && !(app && strcmp(app, b->app) == 0))
      continue;
    if (!(s = find_spend(l, b->app)))
      continue;
    spent = spent_in(s, b->window, now);
    if (spent + s->reserved + worst > b->limit) {
      char lim[40], sp[40], rs[40], wc[40];
      fmt_usd(b->limit, lim, sizeof(lim));
      fmt_usd(spent, sp, sizeof(sp));
      fmt_usd(s->reserved, rs, sizeof(rs));
      fmt_usd(worst, wc, sizeof(wc));
      llmr__errf(why, why_size,
                 "budget: %s%s%s %s limit $%s: spent $%s, reserved by calls "
                 "in flight $%s, this attempt could cost up to $%s",
                 b->app ? "app '" : "all calls", b->app ? b->app : "",
                 b->app ? "'" : "", window_names[b->window], lim, sp, rs, wc);
      pthread_mutex_unlock(&l->mu);
      return LLMR_E_BUDGET;
    }
  }
  all = find_spend(l, NULL);
  mine = app ? find_spend(l, app) : NULL;
  if (all)
    all->reserved += worst;
  if (mine)
    mine->reserved += worst;
  res->nanousd = worst;
  pthread_mutex_unlock(&l->mu);
  return LLMR_OK;
}

/* Mutex held. */
static void release_locked(llmr_ledger *l, llmr__reservation *res) {
  spend *s;
  if (!res || res->nanousd <= 0)
    return;
  if ((s = find_spend(l, NULL)))
    s->reserved = s->reserved > res->nanousd ? s->reserved - res->nanousd : 0;
  if (res->app && (s = find_spend(l, res->app)))
    s->reserved = s->reserved > res->nanousd ? s->reserved - res->nanousd : 0;
  res->nanousd = 0;
}

void llmr__ledger_release(llmr_ledger *l, llmr__reservation *res) {
  if (!l || !res || res->nanousd <= 0)
    return;
  pthread_mutex_lock(&l->mu);
  release_locked(l, res);
  pthread_mutex_unlock(&l->mu);
}

/* ---- append ------------------------------------------------------------- */

static int put_ms(llmr__buf *b, double ms) {
  long long us;
  if (!(ms >= 0)) /* negative or NaN */
    return llmr__buf_puts(b, "null");
  us = (long long)(ms * 1000.0 + 0.5);
  return llmr__buf_printf(b, "%lld.%03lld", us / 1000, us % 1000);
}

/* The record's content without its hash, ending in '}' that the hash
 * field replaces. */
static int format_record(llmr__buf *b, const llmr__ledger_rec *r, int64_t n) {
  size_t i;
  const llmr__usage *u = &r->usage;
  if (llmr__buf_printf(b, "{\"v\":1,\"n\":%lld,\"t\":%lld,\"id\":",
                       (long long)n, (long long)r->t_ms) ||
      llmr__buf_json_str(b, r->id ? r->id : "") ||
      llmr__buf_puts(b, ",\"app\":") || llmr__buf_json_str(b, r->app) ||
      llmr__buf_puts(b, ",\"user\":") || llmr__buf_json_str(b, r->user) ||
      llmr__buf_puts(b, ",\"asked\":["))
    return -1;
  for (i = 0; i < r->n_asked; i++)
    if ((i && llmr__buf_puts(b, ",")) ||
        llmr__buf_json_str(b, r->asked[i] ? r->asked[i] : ""))
      return -1;
  if (llmr__buf_puts(b, "],\"model\":") ||
      llmr__buf_json_str(b, r->model ? r->model : "") ||
      llmr__buf_puts(b, ",\"provider\":") ||
      llmr__buf_json_str(b, r->provider) ||
      llmr__buf_puts(b, ",\"native\":") || llmr__buf_json_str(b, r->native) ||
      llmr__buf_printf(b,
                       ",\"attempt\":%d,\"stream\":%s,\"status\":\"%s\","
                       "\"http\":%d,\"prompt\":%lld,\"completion\":%lld,"
                       "\"cached\":%lld,\"cache_write\":%lld,"
                       "\"reasoning\":%lld,\"estimated\":%s,\"cost_nanousd\":",
                       r->attempt, r->stream ? "true" : "false",
                       llmr_status_name(r->status), r->http_status,
                       (long long)(u->prompt > 0 ? u->prompt : 0),
                       (long long)(u->completion > 0 ? u->completion : 0),
                       (long long)(u->cached > 0 ? u->cached : 0),
                       (long long)(u->cache_write > 0 ? u->cache_write : 0),
                       (long long)(u->reasoning > 0 ? u->reasoning : 0),
                       r->estimated ? "true" : "false") ||
      (r->cost_nanousd >= 0
           ? llmr__buf_printf(b, "%lld", (long long)r->cost_nanousd)
           : llmr__buf_puts(b, "null")) ||
      llmr__buf_puts(b, ",\"latency_ms\":") ||
      put_ms(b, r->latency_ms >= 0 ? r->latency_ms : 0) ||
      llmr__buf_puts(b, ",\"ttft_ms\":") || put_ms(b, r->ttft_ms) ||
      llmr__buf_puts(b, "}"))
    return -1;
  return 0;
}

static void note_error(llmr_ledger *l, char *err, size_t err_size,
                       const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void note_error(llmr_ledger *l, char *err, size_t err_size,
                       const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(l->last_error, sizeof(l->last_error), fmt, ap);
  va_end(ap);
  l->write_errors++;
  llmr__errf(err, err_size, "%s", l->last_error);
}

llmr_status llmr__ledger_append(llmr_ledger *l, const llmr__ledger_rec *rec,
                                llmr__reservation *res, int64_t *n_out,
                                char *err, size_t err_size) {
  llmr__buf line = {0};
  char hash[65];
  size_t content_len, done = 0;
  llmr_status st = LLMR_OK;
  int do_sync = 0, locked = 0, prefix;

  if (!l || !rec)
    return LLMR_E_INVAL;
  pthread_mutex_lock(&l->mu);
  if (l->readonly) {
    st = LLMR_E_INVAL;
    note_error(l, err, err_size, "%s: opened read-only", l->path);
    goto out;
  }
  if (lock_file(l->fd, LOCK_EX) != 0) {
    st = LLMR_E_IO;
    note_error(l, err, err_size, "%s: cannot lock: %s", l->path,
               strerror(errno));
    goto out;
  }
  locked = 1;
  if ((st = catch_up(l, 1)) != LLMR_OK) {
    if (l->broken)
      note_error(l, err, err_size, "%s", l->broken_why);
    else
      note_error(l, err, err_size, "%s: cannot read: %s", l->path,
                 llmr_status_str(st));
    goto out;
  }
  /* a torn tail stays as it is; the record starts on a line of its own */
  prefix = l->need_nl;
  if ((l->need_nl && llmr__buf_puts(&line, "\n")) ||
      format_record(&line, rec, l->next_n)) {
    st = LLMR_E_NOMEM;
    note_error(l, err, err_size, "out of memory");
    goto out;
  }
  content_len = line.len - 1 - (size_t)l->need_nl; /* without the '}' */
  llmr__rec_hash(l->head, line.data + l->need_nl, content_len, hash);
  line.len--; /* drop the '}': the hash field closes the object */
  if (llmr__buf_printf(&line, ",\"hash\":\"%s\"}\n", hash)) {
    st = LLMR_E_NOMEM;
    note_error(l, err, err_size, "out of memory");
    goto out;
  }
  /* one write() per record; another only if a signal cut it short */
  while (done < line.len) {
    ssize_t w = write(l->fd, line.data + done, line.len - done);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0) {
      st = LLMR_E_IO;
      note_error(l, err, err_size, "%s: write failed: %s", l->path,
                 w < 0 ? strerror(errno) : "no progress");
      break;
    }
    done += (size_t)w;
  }
  if (done > 0) {
    l->known += done; /* we wrote at the end, holding the lock */
    if (done < line.len && done > (size_t)prefix) {
      /* our own torn tail: set aside like anyone else's */
      l->need_nl = 1;
      note_torn(l, l->known - done + (size_t)prefix, done - (size_t)prefix);
    } else if (done < line.len) {
      l->need_nl = 0; /* only the newline got out */
    }
  }
  if (st == LLMR_OK) {
    memcpy(l->head, hash, 65);
    if (n_out)
      *n_out = l->next_n;
    l->next_n++;
    l->need_nl = 0;
    l->appended++;
  }
  /* the money was spent whether or not the line reached the disk */
  apply_str(l, rec->t_ms, rec->app, rec->cost_nanousd);
  if (st == LLMR_OK && l->fsync_mode == FSYNC_ALWAYS)
    do_sync = 1;
  else if (st == LLMR_OK && l->fsync_mode == FSYNC_INTERVAL &&
           llmr__now_ms() - l->last_sync >= (double)l->fsync_ms) {
    do_sync = 1;
    l->last_sync = llmr__now_ms();
  }
out:
  if (locked)
    lock_file(l->fd, LOCK_UN);
  release_locked(l, res);
  pthread_mutex_unlock(&l->mu);
  llmr__buf_free(&line);
  if (do_sync && fdatasync(l->fd) != 0) {
    pthread_mutex_lock(&l->mu);
    note_error(l, err, err_size, "%s: fsync failed: %s", l->path,
               strerror(errno));
    pthread_mutex_unlock(&l->mu);
    st = LLMR_E_IO;
  }
  return st;
}

/* ---- info --------------------------------------------------------------- */

LLMR_API llmr_status llmr_ledger_info(llmr_ledger *l, char **info_json) {
  llmr__buf b = {0};
  size_t i;
  int oom;
  int64_t now = llmr__wall_ms();
  static const char *const sync_names[] = {"always", "never", "interval"};
  if (info_json)
    *info_json = NULL;
  if (!l || !info_json)
    return LLMR_E_INVAL;
  pthread_mutex_lock(&l->mu);
  catch_up(l, 0);
  oom = llmr__buf_puts(&b, "{\"path\":") || llmr__buf_json_str(&b, l->path) ||
        llmr__buf_printf(
            &b,
            ",\"readonly\":%s,\"records\":%lld,\"head\":\"%s\",\"bytes\":%llu,"
            "\"appended\":%llu,\"write_errors\":%llu,\"last_error\":",
            l->readonly ? "true" : "false", (long long)l->next_n, l->head,
            (unsigned long long)l->known, (unsigned long long)l->appended,
            (unsigned long long)l->write_errors) ||
        llmr__buf_json_str(&b, l->last_error[0] ? l->last_error : NULL) ||
        llmr__buf_puts(&b, ",\"broken\":") ||
        llmr__buf_json_str(&b, l->broken ? l->broken_why : NULL) ||
        llmr__buf_printf(&b, ",\"fsync\":\"%s\",\"fsync_ms\":%ld,\"torn\":[",
                         sync_names[l->fsync_mode], l->fsync_ms);
  for (i = 0; !oom && i < l->n_torn; i++)
    oom = llmr__buf_printf(&b, "%s{\"offset\":%llu,\"bytes\":%zu}",
                           i ? "," : "", (unsigned long long)l->torn[i].off,
                           l->torn[i].bytes);
  oom = oom || llmr__buf_printf(&b, "],\"budget_fallback\":%s,\"budgets\":[",
                                l->budget_fallback ? "true" : "false");
  for (i = 0; !oom && i < l->n_budgets; i++) {
    const budget *bu = &l->budgets[i];
    const spend *s = find_spend(l, bu->app);
    char lim[40], sp[40], rs[40];
    int64_t spent = s ? spent_in(s, bu->window, now) : 0;
    fmt_usd(bu->limit, lim, sizeof(lim));
    fmt_usd(spent, sp, sizeof(sp));
    fmt_usd(s ? s->reserved : 0, rs, sizeof(rs));
    oom = llmr__buf_puts(&b, i ? ",{\"app\":" : "{\"app\":") ||
          llmr__buf_json_str(&b, bu->app) ||
          llmr__buf_printf(&b,
                           ",\"window\":\"%s\",\"limit_nanousd\":%lld,"
                           "\"spent_nanousd\":%lld,\"reserved_nanousd\":%lld,"
                           "\"limit_usd\":\"%s\",\"spent_usd\":\"%s\","
                           "\"reserved_usd\":\"%s\"}",
                           window_names[bu->window], (long long)bu->limit,
                           (long long)spent,
                           (long long)(s ? s->reserved : 0), lim, sp, rs);
  }
  oom = oom || llmr__buf_puts(&b, "]}");
  pthread_mutex_unlock(&l->mu);
  if (oom) {
    llmr__buf_free(&b);
    return LLMR_E_NOMEM;
  }
  *info_json = b.data;
  return LLMR_OK;
}
