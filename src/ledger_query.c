/*
 * llmr_ledger_query(): one pass over the file, totals per group and per
 * time bucket in a small hash table. Memory grows with the number of
 * groups, never with the number of records. The file is read without a
 * lock; a last line still being written is left out.
 */
#include "ledger_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct agg {
  int64_t records, calls, errors, prompt, completion, cached, cache_write,
      reasoning, estimated, unpriced, cost, lat_sum, lat_n, ttft_sum, ttft_n;
  int64_t first_t, last_t; /* valid when records > 0 */
} agg;

typedef struct group {
  char *key;   /* NULL: the null tag */
  size_t klen; /* strlen(key) */
  int64_t t;   /* bucket start, or 0 */
  uint64_t hash;
  int used;
  agg a;
} group;

typedef struct table {
  group *v;
  size_t cap, n;
} table;

enum { DIM_NONE, DIM_MODEL, DIM_PROVIDER, DIM_NATIVE, DIM_APP, DIM_USER,
       DIM_STATUS, DIM_HOUR, DIM_DAY, DIM_MONTH };
static const char *const dim_names[] = {"none", "model", "provider", "native",
                                        "app",  "user",  "status",   "hour",
                                        "day",  "month", NULL};

static uint64_t fnv(const char *p, size_t n, int is_null, int64_t t) {
  uint64_t h = UINT64_C(1469598103934665603);
  size_t i;
  for (i = 0; i < n; i++) {
    h ^= (unsigned char)p[i];
    h *= UINT64_C(1099511628211);
  }
  h ^= (uint64_t)is_null * UINT64_C(0x9e3779b97f4a7c15);
  h ^= (uint64_t)t * UINT64_C(0xff51afd7ed558ccd);
  return h ^ (h >> 29);
}

static void table_free(table *tb) {
  size_t i;
  for (i = 0; i < tb->cap; i++)
    if (tb->v[i].used)
      llmr__free(tb->v[i].key);
  llmr__free(tb->v);
  memset(tb, 0, sizeof(*tb));
}

static int table_grow(table *tb) {
  size_t ncap = tb->cap ? tb->cap * 2 : 64, i;
  group *nv = llmr__calloc(ncap, sizeof(*nv));
  if (!nv)
    return -1;
  for (i = 0; i < tb->cap; i++) {
    size_t j;
    if (!tb->v[i].used)
      continue;
    for (j = tb->v[i].hash & (ncap - 1); nv[j].used; j = (j + 1) & (ncap - 1))
      ;
    nv[j] = tb->v[i];
  }
  llmr__free(tb->v);
  tb->v = nv;
  tb->cap = ncap;
  return 0;
}

/* The group of (key, t); key NULL is the null tag. NULL on OOM. */
static group *table_get(table *tb, const char *key, size_t klen, int64_t t) {
  uint64_t h = fnv(key ? key : "", key ? klen : 0, key == NULL, t);
  size_t j;
  if ((tb->n + 1) * 4 > tb->cap * 3 && table_grow(tb) != 0)
    return NULL;
  for (j = h & (tb->cap - 1); tb->v[j].used; j = (j + 1) & (tb->cap - 1)) {
    group *g = &tb->v[j];
    if (g->hash == h && g->t == t && (g->key == NULL) == (key == NULL) &&
        (!key || (g->klen == klen && memcmp(g->key, key, klen) == 0)))
      return g;
  }
  tb->v[j].used = 1;
  tb->v[j].hash = h;
  tb->v[j].t = t;
  tb->v[j].klen = klen;
  tb->v[j].key = NULL;
  memset(&tb->v[j].a, 0, sizeof(agg));
  if (key && !(tb->v[j].key = llmr__strndup(key, klen))) {
    tb->v[j].used = 0;
    return NULL;
  }
  tb->n++;
  return &tb->v[j];
}

static void agg_add(agg *a, const llmr__recview *rv, int ok) {
  if (!a->records || rv->t < a->first_t)
    a->first_t = rv->t;
  if (!a->records || rv->t > a->last_t)
    a->last_t = rv->t;
  a->records++;
  a->calls += rv->attempt == 1;
  a->errors += !ok;
  a->prompt += rv->prompt;
  a->completion += rv->completion;
  a->cached += rv->cached;
  a->cache_write += rv->cache_write;
  a->reasoning += rv->reasoning;
  a->estimated += rv->estimated;
  if (rv->cost < 0)
    a->unpriced++;
  else
    a->cost += rv->cost;
  if (rv->latency_us >= 0) {
    a->lat_sum += rv->latency_us;
    a->lat_n++;
  }
  if (rv->ttft_us >= 0) {
    a->ttft_sum += rv->ttft_us;
    a->ttft_n++;
  }
}

static int put_avg_ms(llmr__buf *b, int64_t sum_us, int64_t n) {
  int64_t us;
  if (!n)
    return llmr__buf_puts(b, "null");
  us = (sum_us + n / 2) / n;
  return llmr__buf_printf(b, "%lld.%03lld", (long long)(us / 1000),
                          (long long)(us % 1000));
}

static int agg_json(llmr__buf *b, const agg *a) {
  char usd[40];
  llmr__usd_format(a->cost, usd, sizeof(usd));
  return llmr__buf_printf(
             b,
             "\"records\":%lld,\"calls\":%lld,\"errors\":%lld,\"prompt\":%lld,"
             "\"completion\":%lld,\"cached\":%lld,\"cache_write\":%lld,"
             "\"reasoning\":%lld,\"estimated\":%lld,\"unpriced\":%lld,"
             "\"cost_nanousd\":%lld,\"cost_usd\":\"%s\",\"avg_latency_ms\":",
             (long long)a->records, (long long)a->calls, (long long)a->errors,
             (long long)a->prompt, (long long)a->completion,
             (long long)a->cached, (long long)a->cache_write,
             (long long)a->reasoning, (long long)a->estimated,
             (long long)a->unpriced, (long long)a->cost, usd) ||
         put_avg_ms(b, a->lat_sum, a->lat_n) ||
         llmr__buf_puts(b, ",\"avg_ttft_ms\":") ||
         put_avg_ms(b, a->ttft_sum, a->ttft_n) ||
         (a->records ? llmr__buf_printf(b, ",\"first_t\":%lld,\"last_t\":%lld",
                                        (long long)a->first_t,
                                        (long long)a->last_t)
                     : llmr__buf_puts(b, ",\"first_t\":null,\"last_t\":null"));
}

static int by_cost(const void *x, const void *y) {
  const group *a = *(const group *const *)x, *b = *(const group *const *)y;
  if (a->a.cost != b->a.cost)
    return a->a.cost < b->a.cost ? 1 : -1;
  if (a->a.records != b->a.records)
    return a->a.records < b->a.records ? 1 : -1;
  if (!a->key || !b->key)
    return (a->key == NULL) - (b->key == NULL);
  return strcmp(a->key, b->key);
}

static int by_time(const void *x, const void *y) {
  const group *a = *(const group *const *)x, *b = *(const group *const *)y;
  if (a->t != b->t)
    return a->t < b->t ? -1 : 1;
  if (!a->key || !b->key)
    return (a->key == NULL) - (b->key == NULL);
  return strcmp(a->key, b->key);
}

/* The table's groups, sorted, as a JSON array. */
static int table_json(llmr__buf *b, const table *tb, int time_sort,
                      int unit, int is_series) {
  group **v;
  size_t i, k = 0;
  int rc = 0;
  if (!tb->n)
    return llmr__buf_puts(b, "[]");
  if (!(v = llmr__malloc(tb->n * sizeof(*v))))
    return -1;
  for (i = 0; i < tb->cap; i++)
    if (tb->v[i].used)
      v[k++] = &tb->v[i];
  qsort(v, k, sizeof(*v), time_sort ? by_time : by_cost);
  rc = llmr__buf_puts(b, "[");
  for (i = 0; !rc && i < k; i++) {
    char label[32];
    rc = llmr__buf_puts(b, i ? ",{" : "{");
    if (!rc && (is_series || time_sort)) {
      llmr__bucket_of(unit, v[i]->t, label);
      rc = llmr__buf_printf(b, "\"t\":%lld,\"bucket\":\"%s\",",
                            (long long)v[i]->t, label);
    }
    if (!rc && (is_series || !time_sort))
      rc = llmr__buf_puts(b, "\"key\":") || llmr__buf_json_str(b, v[i]->key) ||
           llmr__buf_puts(b, ",");
    else if (!rc)
      rc = llmr__buf_printf(b, "\"key\":\"%s\",", label);
    rc = rc || agg_json(b, &v[i]->a) || llmr__buf_puts(b, "}");
  }
  rc = rc || llmr__buf_puts(b, "]");
  llmr__free(v);
  return rc;
}

static const llmr__span *dim_span(const llmr__recview *rv, int dim) {
  switch (dim) {
  case DIM_MODEL: return &rv->model;
  case DIM_PROVIDER: return &rv->provider;
  case DIM_NATIVE: return &rv->native;
  case DIM_APP: return &rv->app;
  case DIM_USER: return &rv->user;
  default: return &rv->status;
  }
}

/* Month buckets call gmtime: remember the last month's bounds. */
typedef struct month_cache {
  int64_t start, end;
} month_cache;

static int64_t bucket_start(int unit, int64_t t, month_cache *mc) {
  char label[32];
  if (unit != 2)
    return llmr__bucket_of(unit, t, label);
  if (t >= mc->start && t < mc->end)
    return mc->start;
  mc->start = llmr__bucket_of(2, t, label);
  /* the next month starts within 32 days */
  mc->end = llmr__bucket_of(2, mc->start + 32LL * 86400000, label);
  return mc->start;
}

static llmr_status fail(char **result_json, llmr_status st, const char *msg) {
  llmr__buf b = {0};
  if (llmr__buf_puts(&b, "{\"error\":") || llmr__buf_json_str(&b, msg) ||
      llmr__buf_puts(&b, "}")) {
    llmr__buf_free(&b);
    return LLMR_E_NOMEM;
  }
  *result_json = b.data;
  return st;
}

static int time_arg(const cJSON *v, int64_t now, int64_t *out) {
  if (!v || cJSON_IsNull(v))
    return 1;
  if (cJSON_IsNumber(v) && v->valuedouble > -9e15 && v->valuedouble < 9e15) {
    *out = (int64_t)v->valuedouble;
    return 0;
  }
  if (cJSON_IsString(v) && llmr__parse_time(v->valuestring, now, out) == 0)
    return 0;
  return -1;
}

LLMR_API llmr_status llmr_ledger_query(llmr_ledger *l, const char *query_json,
                                       char **result_json) {
  cJSON *q = NULL;
  const cJSON *v;
  int dim = DIM_NONE, unit = -1, has_since = 0, has_until = 0, r, nl;
  int time_groups;
  int64_t since = 0, until = 0, now = llmr__wall_ms();
  const char *f_app = NULL, *f_model = NULL;
  table groups = {0}, series = {0};
  agg total;
  llmr__lreader lr;
  struct stat stb;
  const char *line;
  size_t len;
  uint64_t off, lineno = 0, matched = 0, torn = 0;
  month_cache mc = {1, 0};
  llmr__buf out = {0};
  char msg[512], why[160];
  llmr_status st = LLMR_OK;
  int fd;

  if (!result_json)
    return LLMR_E_INVAL;
  *result_json = NULL;
  if (!l)
    return LLMR_E_INVAL;
  memset(&total, 0, sizeof(total));
  if (query_json) {
    if (!(q = cJSON_Parse(query_json)) || !cJSON_IsObject(q)) {
      cJSON_Delete(q);
      return fail(result_json, LLMR_E_INVAL,
                  "query: expected a JSON object");
    }
    cJSON_ArrayForEach(v, q) {
      static const char *const keys[] = {"by",  "bucket", "since", "until",
                                         "app", "model",  NULL};
      size_t i;
      for (i = 0; keys[i] && strcmp(keys[i], v->string); i++)
        ;
      if (!keys[i]) {
        snprintf(msg, sizeof(msg), "query.%s: unknown field", v->string);
        cJSON_Delete(q);
        return fail(result_json, LLMR_E_INVAL, msg);
      }
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(q, "by")) && !cJSON_IsNull(v)) {
      for (dim = 0; dim_names[dim]; dim++)
        if (cJSON_IsString(v) && strcmp(v->valuestring, dim_names[dim]) == 0)
          break;
      if (!dim_names[dim]) {
        cJSON_Delete(q);
        return fail(result_json, LLMR_E_INVAL,
                    "query.by: expected one of none, model, provider, native, "
                    "app, user, status, hour, day, month");
      }
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(q, "bucket")) &&
        !cJSON_IsNull(v)) {
      for (unit = 0; unit < 3; unit++)
        if (cJSON_IsString(v) &&
            strcmp(v->valuestring, dim_names[DIM_HOUR + unit]) == 0)
          break;
      if (unit == 3) {
        cJSON_Delete(q);
        return fail(result_json, LLMR_E_INVAL,
                    "query.bucket: expected hour, day or month");
      }
    }
    r = time_arg(cJSON_GetObjectItemCaseSensitive(q, "since"), now, &since);
    has_since = r == 0;
    if (r < 0 || (r = time_arg(cJSON_GetObjectItemCaseSensitive(q, "until"),
                               now, &until)) < 0) {
      cJSON_Delete(q);
      return fail(result_json, LLMR_E_INVAL,
                  "query.since/until: expected Unix milliseconds or a time "
                  "like 2026-11-24, 2026-11-24T10:00:00Z, -7d, -12h, now");
    }
    has_until = r == 0;
    if ((v = cJSON_GetObjectItemCaseSensitive(q, "app")) && !cJSON_IsNull(v)) {
      if (!cJSON_IsString(v)) {
        cJSON_Delete(q);
        return fail(result_json, LLMR_E_INVAL, "query.app: expected a string");
      }
      f_app = v->valuestring;
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(q, "model")) &&
        !cJSON_IsNull(v)) {
      if (!cJSON_IsString(v)) {
        cJSON_Delete(q);
        return fail(result_json, LLMR_E_INVAL,
                    "query.model: expected a string");
      }
      f_model = v->valuestring;
    }
  }
  time_groups = dim >= DIM_HOUR;
  if (time_groups)
    unit = -1; /* the groups are the buckets already */

  fd = llmr__ledger_fd(l);
  if (fstat(fd, &stb) != 0) {
    cJSON_Delete(q);
    return fail(result_json, LLMR_E_IO, "cannot read the ledger file");
  }
  llmr__lr_init(&lr, fd, 0, (uint64_t)stb.st_size);
  while ((r = llmr__lr_next(&lr, &line, &len, &off, &nl)) != 0) {
    llmr__recview rv;
    int kind, ok;
    lineno++;
    if (r == -1) {
      st = lr.err == ENOMEM ? LLMR_E_NOMEM : LLMR_E_IO;
      snprintf(msg, sizeof(msg), "%s: read error at offset %llu",
               llmr__ledger_path(l), (unsigned long long)lr.pos);
      break;
    }
    if (r == -2) {
      st = LLMR_E_CORRUPT;
      snprintf(msg, sizeof(msg),
               "%s: line %llu (offset %llu): longer than 16 MiB: not a ledger "
               "record",
               llmr__ledger_path(l), (unsigned long long)lineno,
               (unsigned long long)off);
      break;
    }
    kind = llmr__line_classify(line, len, &rv, why, sizeof(why));
    if (!nl && kind != LLMR__LINE_RECORD)
      continue; /* a last line being written now, or torn: not yet a record
                   (a whole record missing only its '\n' counts, as for
                   writers and verify) */
    if (kind == LLMR__LINE_TORN) {
      torn += len > 0;
      continue;
    }
    if (kind == LLMR__LINE_BAD) {
      st = LLMR_E_CORRUPT;
      snprintf(msg, sizeof(msg),
               "%s: line %llu (offset %llu): not a ledger record: %s",
               llmr__ledger_path(l), (unsigned long long)lineno,
               (unsigned long long)off, why);
      break;
    }
    if ((has_since && rv.t < since) || (has_until && rv.t >= until))
      continue;
    if ((f_app && !llmr__span_eq(&rv.app, f_app)) ||
        (f_model && !llmr__span_eq(&rv.model, f_model)))
      continue;
    matched++;
    ok = rv.status.n == 7 && memcmp(rv.status.p, "LLMR_OK", 7) == 0;
    agg_add(&total, &rv, ok);
    if (dim != DIM_NONE || unit >= 0) {
      const char *key = NULL;
      char *dup = NULL;
      size_t klen = 0;
      group *g;
      if (dim != DIM_NONE && !time_groups) {
        const llmr__span *sp = dim_span(&rv, dim);
        if (!sp->null) {
          if (sp->esc) {
            if (!(dup = llmr__span_dup(sp))) {
              st = LLMR_E_NOMEM;
              break;
            }
            key = dup;
            klen = strlen(dup);
          } else {
            key = sp->p;
            klen = sp->n;
          }
        }
      }
      if (dim != DIM_NONE) {
        g = table_get(&groups, key, klen,
                      time_groups ? bucket_start(dim - DIM_HOUR, rv.t, &mc)
                                  : 0);
        if (!g) {
          llmr__free(dup);
          st = LLMR_E_NOMEM;
          break;
        }
        agg_add(&g->a, &rv, ok);
      }
      if (unit >= 0) {
        g = table_get(&series, key, klen, bucket_start(unit, rv.t, &mc));
        if (!g) {
          llmr__free(dup);
          st = LLMR_E_NOMEM;
          break;
        }
        agg_add(&g->a, &rv, ok);
      }
      llmr__free(dup);
    }
  }
  llmr__lr_free(&lr);
  if (st != LLMR_OK) {
    table_free(&groups);
    table_free(&series);
    cJSON_Delete(q);
    if (st == LLMR_E_NOMEM)
      return st;
    return fail(result_json, st, msg);
  }

  /* the answer */
  r = llmr__buf_printf(&out, "{\"query\":{\"by\":\"%s\",\"bucket\":",
                       dim_names[dim]) ||
      (unit >= 0 ? llmr__buf_printf(&out, "\"%s\"", dim_names[DIM_HOUR + unit])
                 : llmr__buf_puts(&out, "null")) ||
      llmr__buf_puts(&out, ",\"since\":") ||
      (has_since ? llmr__buf_printf(&out, "%lld", (long long)since)
                 : llmr__buf_puts(&out, "null")) ||
      llmr__buf_puts(&out, ",\"until\":") ||
      (has_until ? llmr__buf_printf(&out, "%lld", (long long)until)
                 : llmr__buf_puts(&out, "null")) ||
      llmr__buf_puts(&out, ",\"app\":") || llmr__buf_json_str(&out, f_app) ||
      llmr__buf_puts(&out, ",\"model\":") ||
      llmr__buf_json_str(&out, f_model) ||
      llmr__buf_printf(&out,
                       "},\"lines\":%llu,\"matched\":%llu,\"torn\":%llu,"
                       "\"total\":{",
                       (unsigned long long)lineno,
                       (unsigned long long)matched, (unsigned long long)torn) ||
      agg_json(&out, &total) || llmr__buf_puts(&out, "},\"groups\":") ||
      table_json(&out, &groups, time_groups,
                 time_groups ? dim - DIM_HOUR : 0, 0) ||
      llmr__buf_puts(&out, ",\"series\":") ||
      table_json(&out, &series, 1, unit >= 0 ? unit : 0, 1) ||
      llmr__buf_puts(&out, "}");
  table_free(&groups);
  table_free(&series);
  cJSON_Delete(q);
  if (r) {
    llmr__buf_free(&out);
    return LLMR_E_NOMEM;
  }
  *result_json = out.data;
  return LLMR_OK;
}
