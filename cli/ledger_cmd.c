/*
 * llmroute ledger report|verify: what a hosted gateway's dashboard shows,
 * from the local ledger file.
 *
 *   llmroute ledger report [--ledger] FILE [--by KEY] [--since T] [--until T]
 *                          [--app TAG] [--model SLUG] [--json|--csv]
 *                          [--html OUT.html]
 *   llmroute ledger verify [--json] FILE
 *
 * Uses only the public API (llmr_ledger_query, llmr_ledger_verify).
 */
#include "ledger_cmd.h"

#include <llmroute.h>

#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void ledger_usage(FILE *f) {
  fputs(
      "usage: llmroute ledger report [--ledger] FILE [--by KEY] [--since T] [--until T]\n"
      "                              [--app TAG] [--model SLUG] [--json | --csv]\n"
      "                              [--html OUT.html]\n"
      "       llmroute ledger verify [--json] FILE\n"
      "\n"
      "report: totals and a breakdown of the ledger FILE as an aligned table\n"
      "  --by KEY        model (default), provider, native, app, user, status,\n"
      "                  hour, day or month\n"
      "  --since T       from T (inclusive); --until T  to T (exclusive). T is\n"
      "                  2026-11-24, 2026-11-24T10:00:00Z, -7d, -12h, now, or Unix ms\n"
      "  --app TAG       only calls tagged TAG;  --model SLUG  only that slug\n"
      "  --json          the query result JSON;  --csv  comma-separated rows\n"
      "  --html OUT      also write one self-contained page with a chart of\n"
      "                  spend over time by model\n"
      "verify: check the hash chain; exit 0 intact, 1 altered or unreadable\n"
      "Exit status: 0 success, 1 failure, 2 usage error.\n",
      f);
}

static int usage_error(const char *msg, const char *arg) {
  fprintf(stderr, "llmroute ledger: %s%s%s\n", msg, arg ? ": " : "",
          arg ? arg : "");
  fprintf(stderr, "Try 'llmroute ledger --help'.\n");
  return 2;
}

static const char *jstr(const cJSON *o, const char *k) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double jnum(const cJSON *o, const char *k) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

/* ---- verify ------------------------------------------------------------- */

static int cmd_verify(int argc, char **argv) {
  static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  int json = 0, c;
  char *report = NULL;
  cJSON *d;
  const cJSON *it;
  llmr_status st;
  const char *path;

  optind = 1;
  while ((c = getopt_long(argc, argv, "jh", opts, NULL)) != -1) {
    if (c == 'j')
      json = 1;
    else if (c == 'h') {
      ledger_usage(stdout);
      return 0;
    } else
      return usage_error("unknown option", NULL);
  }
  if (optind != argc - 1)
    return usage_error("verify takes one FILE", NULL);
  path = argv[optind];
  st = llmr_ledger_verify(path, &report);
  if (!report) {
    fprintf(stderr, "llmroute ledger: %s\n", llmr_status_str(st));
    return 1;
  }
  if (json) {
    puts(report);
    llmr_free(report);
    return st == LLMR_OK ? 0 : 1;
  }
  d = cJSON_Parse(report);
  llmr_free(report);
  if (jstr(d, "error")) {
    fprintf(stderr, "llmroute ledger: %s\n", jstr(d, "error"));
    cJSON_Delete(d);
    return 1;
  }
  if (st == LLMR_OK)
    printf("%s: %.0f records, chain intact, head %s\n", path,
           jnum(d, "records"), jstr(d, "head") ? jstr(d, "head") : "(empty)");
  else
    printf("%s: %.0f records, %.0f problem(s): the file was altered or "
           "damaged\n",
           path, jnum(d, "records"), jnum(d, "problems_total"));
  cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(d, "problems")) {
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(it, "n");
    printf("  line %.0f (offset %.0f", jnum(it, "line"), jnum(it, "offset"));
    if (cJSON_IsNumber(n))
      printf(", record %.0f", n->valuedouble);
    printf("): %s\n", jstr(it, "problem") ? jstr(it, "problem") : "");
  }
  cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(d, "torn"))
    printf("  line %.0f (offset %.0f, %.0f bytes): torn write set aside\n",
           jnum(it, "line"), jnum(it, "offset"), jnum(it, "bytes"));
  cJSON_Delete(d);
  return st == LLMR_OK ? 0 : 1;
}

/* ---- report: table and CSV ---------------------------------------------- */

static const char *const num_cols[] = {"records",    "calls",  "errors",
                                       "prompt",     "completion", "cached",
                                       "cache_write", "reasoning", NULL};

/* One row's cells: [0] unused (the key is printed apart), the numbers,
 * the cost. */
static void row_cells(const cJSON *g, char cells[][48]) {
  size_t i;
  cells[0][0] = '\0';
  for (i = 0; num_cols[i]; i++)
    snprintf(cells[i + 1], 48, "%.0f", jnum(g, num_cols[i]));
  snprintf(cells[i + 1], 48, "%s", jstr(g, "cost_usd") ? jstr(g, "cost_usd") : "?");
}

#define NCOLS 10 /* key + 8 numbers + cost */

static void print_table(const cJSON *res, const char *by) {
  const cJSON *groups = cJSON_GetObjectItemCaseSensitive(res, "groups");
  const cJSON *total = cJSON_GetObjectItemCaseSensitive(res, "total");
  const cJSON *g;
  int n = cJSON_GetArraySize(groups), i, k;
  size_t w[NCOLS];
  char(*cells)[NCOLS][48] = calloc((size_t)n + 2, sizeof(*cells));
  const char **keys = calloc((size_t)n + 2, sizeof(*keys));
  const char *head[NCOLS] = {by, "attempts", "calls", "errors", "prompt",
                             "completion", "cached", "cache_write",
                             "reasoning", "cost_usd"};
  if (!cells || !keys) {
    free(cells);
    free(keys);
    return;
  }
  i = 0;
  cJSON_ArrayForEach(g, groups) {
    const char *key = jstr(g, "key");
    keys[i] = key ? key : "(none)";
    row_cells(g, cells[i]);
    i++;
  }
  keys[n] = "TOTAL";
  row_cells(total, cells[n]);
  for (k = 0; k < NCOLS; k++) {
    w[k] = strlen(head[k]);
    for (i = 0; i <= n; i++) {
      size_t len = k == 0 ? strlen(keys[i]) : strlen(cells[i][k]);
      if (len > w[k])
        w[k] = len;
    }
  }
  printf("%-*s", (int)w[0], head[0]);
  for (k = 1; k < NCOLS; k++)
    printf("  %*s", (int)w[k], head[k]);
  putchar('\n');
  for (i = 0; i <= n; i++) {
    if (i == n) { /* a rule above the totals */
      size_t rule = w[0];
      for (k = 1; k < NCOLS; k++)
        rule += 2 + w[k];
      while (rule--)
        putchar('-');
      putchar('\n');
    }
    printf("%-*s", (int)w[0], keys[i]);
    for (k = 1; k < NCOLS; k++)
      printf("  %*s", (int)w[k], cells[i][k]);
    putchar('\n');
  }
  free(cells);
  free(keys);
}

static void csv_field(const char *s) {
  if (!strpbrk(s, ",\"\r\n")) {
    fputs(s, stdout);
    return;
  }
  putchar('"');
  for (; *s; s++) {
    if (*s == '"')
      putchar('"');
    putchar(*s);
  }
  putchar('"');
}

static void csv_row(const char *key, const cJSON *g) {
  static const char *const cols[] = {
      "records", "calls", "errors", "prompt", "completion", "cached",
      "cache_write", "reasoning", "estimated", "unpriced", "cost_nanousd",
      NULL};
  size_t i;
  csv_field(key);
  for (i = 0; cols[i]; i++)
    printf(",%.0f", jnum(g, cols[i]));
  printf(",%s\n", jstr(g, "cost_usd") ? jstr(g, "cost_usd") : "");
}

static void print_csv(const cJSON *res, const char *by) {
  const cJSON *g;
  csv_field(by);
  puts(",records,calls,errors,prompt,completion,cached,cache_write,reasoning,"
       "estimated,unpriced,cost_nanousd,cost_usd");
  cJSON_ArrayForEach(g, cJSON_GetObjectItemCaseSensitive(res, "groups"))
    csv_row(jstr(g, "key") ? jstr(g, "key") : "", g);
  csv_row("TOTAL", cJSON_GetObjectItemCaseSensitive(res, "total"));
}

/* ---- report: HTML ------------------------------------------------------- */

static void html_esc(FILE *f, const char *s) {
  for (; s && *s; s++) {
    switch (*s) {
    case '&': fputs("&amp;", f); break;
    case '<': fputs("&lt;", f); break;
    case '>': fputs("&gt;", f); break;
    case '"': fputs("&quot;", f); break;
    case '\'': fputs("&#39;", f); break;
    default: fputc(*s, f);
    }
  }
}

/* Bucket start and label, as the library makes them (UTC). */
static long long bucket_start(int unit, long long t, char label[32]) {
  time_t s;
  struct tm tm;
  long long day = 86400000LL, start;
  start = unit == 0 ? (t >= 0 ? t / 3600000 : (t - 3599999) / 3600000) * 3600000
                    : (t >= 0 ? t / day : (t - day + 1) / day) * day;
  s = (time_t)(start / 1000);
  gmtime_r(&s, &tm);
  if (unit == 2) {
    tm.tm_mday = 1;
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    start = (long long)timegm(&tm) * 1000;
    strftime(label, 32, "%Y-%m", &tm);
  } else if (unit == 1) {
    strftime(label, 32, "%Y-%m-%d", &tm);
  } else {
    strftime(label, 32, "%Y-%m-%dT%H:00Z", &tm);
  }
  return start;
}

static long long next_bucket(int unit, long long start) {
  char label[32];
  if (unit == 0)
    return start + 3600000LL;
  if (unit == 1)
    return start + 86400000LL;
  return bucket_start(2, start + 32LL * 86400000LL, label);
}

#define MAX_SERIES 10 /* 9 models and "other" */
#define MAX_BUCKETS 800

static const char *const palette[MAX_SERIES] = {
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
    "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"};

/* A round step for about 5 gridlines up to max. */
static double nice_step(double max) {
  double raw = max / 5, mag = 1, f;
  if (raw <= 0)
    return 1;
  while (raw >= 10 * mag)
    mag *= 10;
  while (raw < mag)
    mag /= 10;
  f = raw / mag;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
}

static int write_html(const char *out, const char *ledger_path,
                      const cJSON *res, int unit) {
  static const char *const unit_names[] = {"hour", "day", "month"};
  const cJSON *groups = cJSON_GetObjectItemCaseSensitive(res, "groups");
  const cJSON *series = cJSON_GetObjectItemCaseSensitive(res, "series");
  const cJSON *total = cJSON_GetObjectItemCaseSensitive(res, "total");
  const cJSON *g, *s;
  const char *names[MAX_SERIES];
  int n_names = 0, n_models = cJSON_GetArraySize(groups), nb = 0, i, k;
  long long first, last, t;
  double(*val)[MAX_SERIES] = NULL, ymax = 0, step, total_usd;
  long long *bt = NULL;
  char(*blabel)[32] = NULL;
  char label[32];
  FILE *f;
  const double W = 960, H = 380, ml = 70, mr = 20, mt = 20, mb = 60;
  double pw = W - ml - mr, ph = H - mt - mb, bw;

  cJSON_ArrayForEach(g, groups) {
    if (n_names == MAX_SERIES - 1 && n_models > MAX_SERIES) {
      names[n_names++] = "other";
      break;
    }
    names[n_names++] = jstr(g, "key") ? jstr(g, "key") : "(none)";
    if (n_names == MAX_SERIES)
      break;
  }
  if (!(f = fopen(out, "w"))) {
    fprintf(stderr, "llmroute ledger: cannot write %s\n", out);
    return -1;
  }
  /* the buckets, empty ones included */
  if (jnum(total, "records") > 0) {
    first = bucket_start(unit, (long long)jnum(total, "first_t"), label);
    last = (long long)jnum(total, "last_t");
    for (t = first; t <= last && nb < MAX_BUCKETS; t = next_bucket(unit, t))
      nb++;
    val = calloc((size_t)nb + 1, sizeof(*val));
    bt = calloc((size_t)nb + 1, sizeof(*bt));
    blabel = calloc((size_t)nb + 1, sizeof(*blabel));
    if (!val || !bt || !blabel)
      nb = 0;
    for (i = 0, t = first; i < nb; i++, t = next_bucket(unit, t)) {
      bt[i] = t;
      bucket_start(unit, t, blabel[i]);
    }
    cJSON_ArrayForEach(s, series) {
      const char *key = jstr(s, "key") ? jstr(s, "key") : "(none)";
      long long st = (long long)jnum(s, "t");
      int si = n_names - 1;
      for (k = 0; k < n_names; k++)
        if (strcmp(names[k], key) == 0 &&
            !(k == n_names - 1 && n_models > MAX_SERIES))
          si = k;
      for (i = 0; i < nb; i++)
        if (bt[i] == st) {
          val[i][si] += jnum(s, "cost_nanousd") / 1e9;
          break;
        }
    }
    for (i = 0; i < nb; i++) {
      double sum = 0;
      for (k = 0; k < n_names; k++)
        sum += val[i][k];
      if (sum > ymax)
        ymax = sum;
    }
  }
  step = nice_step(ymax);
  if (ymax <= 0)
    ymax = step * 5;
  else
    ymax = step * (double)(long long)(ymax / step + 0.999999);
  total_usd = jnum(total, "cost_nanousd") / 1e9;

  fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
        "<title>llmroute ledger report</title>\n<style>\n"
        "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;"
        "margin:2em;color:#222}\n"
        "h1{font-size:1.4em}table{border-collapse:collapse;margin-top:1em}\n"
        "th,td{padding:.25em .8em;border-bottom:1px solid #ddd;"
        "text-align:right}\nth:first-child,td:first-child{text-align:left}\n"
        "tfoot td{font-weight:bold;border-top:2px solid #888}\n"
        ".legend span{display:inline-block;margin-right:1.2em}\n"
        ".sw{display:inline-block;width:.9em;height:.9em;margin-right:.3em;"
        "vertical-align:middle}\n.muted{color:#777}\n"
        "</style></head><body>\n<h1>Spend by model</h1>\n<p class=\"muted\">",
        f);
  html_esc(f, ledger_path);
  fprintf(f, " &middot; %.0f records, %.0f calls &middot; total $%s",
          jnum(total, "records"), jnum(total, "calls"),
          jstr(total, "cost_usd") ? jstr(total, "cost_usd") : "0");
  if (nb)
    fprintf(f, " &middot; %s to %s, per %s", blabel[0], blabel[nb - 1],
            unit_names[unit]);
  fputs("</p>\n<div class=\"legend\">", f);
  for (k = 0; k < n_names; k++) {
    fprintf(f, "<span><i class=\"sw\" style=\"background:%s\"></i>",
            palette[k]);
    html_esc(f, names[k]);
    fputs("</span>", f);
  }
  fprintf(f,
          "</div>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" "
          "height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" role=\"img\" "
          "aria-label=\"spend over time by model\" "
          "font-family=\"system-ui,sans-serif\" font-size=\"11\">\n",
          W, H, W, H);
  /* gridlines and dollar labels */
  for (i = 0; i <= 5 && step > 0; i++) {
    double v = step * i, y = mt + ph - (ymax > 0 ? v / ymax * ph : 0);
    if (v > ymax + step / 2)
      break;
    fprintf(f,
            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
            "stroke=\"#e5e5e5\"/>\n<text x=\"%.1f\" y=\"%.1f\" "
            "text-anchor=\"end\" fill=\"#555\">$%.*f</text>\n",
            ml, y, ml + pw, y, ml - 6, y + 4,
            step >= 1 ? 0 : step >= 0.01 ? 2 : step >= 0.0001 ? 4 : 6, v);
  }
  bw = nb ? pw / nb : pw;
  for (i = 0; i < nb; i++) {
    double y = mt + ph, x = ml + i * bw + bw * 0.1;
    int every = nb > 12 ? (nb + 11) / 12 : 1;
    for (k = 0; k < n_names; k++) {
      double h = ymax > 0 ? val[i][k] / ymax * ph : 0;
      if (val[i][k] <= 0)
        continue;
      y -= h;
      fprintf(f,
              "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" "
              "fill=\"%s\"><title>",
              x, y, bw * 0.8, h, palette[k]);
      html_esc(f, blabel[i]);
      fputs(" ", f);
      html_esc(f, names[k]);
      fprintf(f, ": $%.9f</title></rect>\n", val[i][k]);
    }
    if (i % every == 0) {
      fprintf(f,
              "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" "
              "fill=\"#555\">",
              ml + i * bw + bw / 2, mt + ph + 16);
      html_esc(f, blabel[i]);
      fputs("</text>\n", f);
    }
  }
  fprintf(f,
          "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
          "stroke=\"#888\"/>\n</svg>\n",
          ml, mt + ph, ml + pw, mt + ph);
  /* the table */
  fputs("<table><thead><tr><th>model</th><th>records</th><th>calls</th>"
        "<th>errors</th><th>prompt</th><th>completion</th><th>cached</th>"
        "<th>reasoning</th><th>cost (USD)</th><th>share</th></tr></thead>"
        "<tbody>\n",
        f);
  cJSON_ArrayForEach(g, groups) {
    fputs("<tr><td>", f);
    html_esc(f, jstr(g, "key") ? jstr(g, "key") : "(none)");
    fprintf(f,
            "</td><td>%.0f</td><td>%.0f</td><td>%.0f</td><td>%.0f</td>"
            "<td>%.0f</td><td>%.0f</td><td>%.0f</td><td>",
            jnum(g, "records"), jnum(g, "calls"), jnum(g, "errors"),
            jnum(g, "prompt"), jnum(g, "completion"), jnum(g, "cached"),
            jnum(g, "reasoning"));
    html_esc(f, jstr(g, "cost_usd"));
    fprintf(f, "</td><td>%.1f%%</td></tr>\n",
            total_usd > 0 ? jnum(g, "cost_nanousd") / 1e9 / total_usd * 100
                          : 0.0);
  }
  fprintf(f,
          "</tbody><tfoot><tr><td>total</td><td>%.0f</td><td>%.0f</td>"
          "<td>%.0f</td><td>%.0f</td><td>%.0f</td><td>%.0f</td><td>%.0f</td>"
          "<td>",
          jnum(total, "records"), jnum(total, "calls"), jnum(total, "errors"),
          jnum(total, "prompt"), jnum(total, "completion"),
          jnum(total, "cached"), jnum(total, "reasoning"));
  html_esc(f, jstr(total, "cost_usd"));
  fputs("</td><td>100%</td></tr></tfoot></table>\n", f);
  if (jnum(total, "unpriced") > 0)
    fprintf(f,
            "<p class=\"muted\">%.0f records have no price (the model is not "
            "in the catalog); their cost is not in these sums.</p>\n",
            jnum(total, "unpriced"));
  fputs("<p class=\"muted\">Generated by llmroute ledger report.</p>\n"
        "</body></html>\n",
        f);
  free(val);
  free(bt);
  free(blabel);
  if (fclose(f) != 0) {
    fprintf(stderr, "llmroute ledger: cannot write %s\n", out);
    return -1;
  }
  return 0;
}

/* ---- report ------------------------------------------------------------- */

/* Run a query; NULL (message printed) on failure, *st set. */
static cJSON *run_query(llmr_ledger *l, const char *by, const char *bucket,
                        const char *since, const char *until, const char *app,
                        const char *model, llmr_status *st, char **raw) {
  cJSON *q = cJSON_CreateObject(), *res = NULL;
  char *qs, *out = NULL;
  cJSON_AddStringToObject(q, "by", by);
  if (bucket)
    cJSON_AddStringToObject(q, "bucket", bucket);
  if (since)
    cJSON_AddStringToObject(q, "since", since);
  if (until)
    cJSON_AddStringToObject(q, "until", until);
  if (app)
    cJSON_AddStringToObject(q, "app", app);
  if (model)
    cJSON_AddStringToObject(q, "model", model);
  qs = cJSON_PrintUnformatted(q);
  cJSON_Delete(q);
  *st = qs ? llmr_ledger_query(l, qs, &out) : LLMR_E_NOMEM;
  cJSON_free(qs);
  if (out)
    res = cJSON_Parse(out);
  if (*st != LLMR_OK) {
    fprintf(stderr, "llmroute ledger: %s\n",
            jstr(res, "error") ? jstr(res, "error") : llmr_status_str(*st));
    cJSON_Delete(res);
    llmr_free(out);
    return NULL;
  }
  if (raw)
    *raw = out;
  else
    llmr_free(out);
  return res;
}

static int cmd_report(int argc, char **argv) {
  static const struct option opts[] = {
      {"ledger", required_argument, NULL, 'l'},
      {"by", required_argument, NULL, 'b'},
      {"since", required_argument, NULL, 's'},
      {"until", required_argument, NULL, 'u'},
      {"app", required_argument, NULL, 'a'},
      {"model", required_argument, NULL, 'm'},
      {"json", no_argument, NULL, 'j'},
      {"csv", no_argument, NULL, 'c'},
      {"html", required_argument, NULL, 'H'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  const char *path = NULL, *by = "model", *since = NULL, *until = NULL,
             *app = NULL, *model = NULL, *html = NULL;
  int json = 0, csv = 0, c, rc = 1;
  llmr_ledger *l = NULL;
  cJSON *res = NULL;
  char err[LLMR_ERRBUF_SIZE], *raw = NULL;
  llmr_status st;

  optind = 1;
  while ((c = getopt_long(argc, argv, "l:b:s:u:a:m:jcH:h", opts, NULL)) !=
         -1) {
    switch (c) {
    case 'l': path = optarg; break;
    case 'b': by = optarg; break;
    case 's': since = optarg; break;
    case 'u': until = optarg; break;
    case 'a': app = optarg; break;
    case 'm': model = optarg; break;
    case 'j': json = 1; break;
    case 'c': csv = 1; break;
    case 'H': html = optarg; break;
    case 'h': ledger_usage(stdout); return 0;
    default: return usage_error("unknown option", NULL);
    }
  }
  if (!path && optind < argc)
    path = argv[optind++];
  if (!path)
    return usage_error("no ledger file (--ledger FILE)", NULL);
  if (optind < argc)
    return usage_error("unexpected argument", argv[optind]);
  if (json && csv)
    return usage_error("--json and --csv exclude each other", NULL);
  if (llmr_ledger_open_ex(path, "{\"readonly\":true}", &l, err, sizeof(err)) !=
      LLMR_OK) {
    fprintf(stderr, "llmroute ledger: %s\n", err);
    return 1;
  }
  res = run_query(l, by, NULL, since, until, app, model, &st,
                  json ? &raw : NULL);
  if (!res) {
    rc = st == LLMR_E_INVAL ? 2 : 1;
    goto out;
  }
  if (json) {
    puts(raw);
  } else if (csv) {
    print_csv(res, by);
  } else {
    const cJSON *total = cJSON_GetObjectItemCaseSensitive(res, "total");
    print_table(res, by);
    if (jnum(total, "unpriced") > 0)
      printf("%.0f record(s) have no price (model not in the catalog); their "
             "cost is not in the sums\n",
             jnum(total, "unpriced"));
    if (jnum(res, "torn") > 0)
      printf("%.0f torn line(s) skipped (a crash in mid-write; see "
             "'llmroute ledger verify')\n",
             jnum(res, "torn"));
  }
  if (html) {
    /* spend over time by model: the bucket follows the time span */
    const cJSON *total = cJSON_GetObjectItemCaseSensitive(res, "total");
    double span = jnum(total, "last_t") - jnum(total, "first_t");
    int unit = span <= 2 * 86400000.0 ? 0 : span <= 400 * 86400000.0 ? 1 : 2;
    static const char *const units[] = {"hour", "day", "month"};
    cJSON *chart = run_query(l, "model", units[unit], since, until, app,
                             model, &st, NULL);
    if (!chart || write_html(html, path, chart, unit) != 0) {
      cJSON_Delete(chart);
      goto out;
    }
    cJSON_Delete(chart);
  }
  rc = 0;
out:
  cJSON_Delete(res);
  llmr_free(raw);
  llmr_ledger_close(l);
  return rc;
}

int llmroute_ledger_main(int argc, char **argv) {
  if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
      strcmp(argv[1], "-h") == 0) {
    ledger_usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  if (strcmp(argv[1], "report") == 0)
    return cmd_report(argc - 1, argv + 1);
  if (strcmp(argv[1], "verify") == 0)
    return cmd_verify(argc - 1, argv + 1);
  return usage_error("unknown command (report, verify)", argv[1]);
}
