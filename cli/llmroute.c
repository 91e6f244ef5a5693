/*
 * llmroute - command-line client for libllmroute.
 *
 *   llmroute -m SLUG[,SLUG...] [--system TEXT] [--max-tokens N]
 *            [--temperature T] [--stream] [--json] [--trace] PROMPT|-
 *   llmroute --request FILE|- [-m SLUG[,SLUG...]] [--stream] [--json]
 *   (both take --ledger FILE --app TAG to record what the call spent, and
 *   --config FILE, --policy JSON, --retries N, --deadline-ms N,
 *   --hedge-ms N for the fallback policy)
 *   llmroute ledger report|verify ...        (cli/ledger_cmd.c)
 *
 * Keys come from the environment only (OPENAI_API_KEY, ...) and are never
 * printed. Exit status: 0 success, 1 the call failed, 2 usage error.
 */
#include <llmroute.h>

#include "ledger_cmd.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SLUGS 64

static void usage(FILE *f) {
  fputs(
      "usage: llmroute -m SLUG[,SLUG...] [options] PROMPT   (PROMPT - reads stdin)\n"
      "       llmroute --request FILE [-m SLUG[,SLUG...]] [options]  (FILE - is stdin)\n"
      "\n"
      "  -m, --model SLUGS      provider/model slugs, tried in order (comma-separated)\n"
      "  -s, --system TEXT      system message\n"
      "      --max-tokens N     cap on generated tokens\n"
      "  -t, --temperature T    sampling temperature (0..2)\n"
      "  -r, --request FILE     an OpenAI chat request JSON (messages, tools, ...)\n"
      "  -j, --json             print the OpenAI chat.completion JSON (or error JSON)\n"
      "  -S, --stream           print the answer as it arrives; with --json, one\n"
      "                         chat.completion.chunk JSON per line, then the\n"
      "                         chat.completion JSON as the last line\n"
      "      --trace            print the attempt trace (and the cost) on stderr\n"
      "      --ledger FILE      record every attempt in the ledger FILE\n"
      "      --app TAG          the app tag of the call (ledger and reports)\n"
      "      --user TAG         the user tag (also sent as OpenAI's user)\n"
      "      --config FILE      a router config JSON (llmr_router_new(3)): providers,\n"
      "                         timeouts, \"policy\", \"groups\", ...\n"
      "      --policy JSON      this call's fallback policy (llmroute-errors(3)),\n"
      "                         e.g. '{\"retries\":2,\"fallback_on\":{\"bad_request\":true}}'\n"
      "      --retries N        retries of one slug before moving on (policy retries)\n"
      "      --deadline-ms N    a deadline for the whole call (policy deadline_ms)\n"
      "      --hedge-ms N       start the next slug in parallel when the first has\n"
      "                         sent no byte after N ms (policy hedge_ms)\n"
      "  -h, --help             this text;  -V, --version  the library version\n"
      "\n"
      "Keys: OPENAI_API_KEY, OPENROUTER_API_KEY, MISTRAL_API_KEY, GROQ_API_KEY, ...\n"
      "Base URLs: LLMR_<PROVIDER>_BASE_URL (e.g. LLMR_OPENAI_BASE_URL).\n"
      "Spend: llmroute ledger report FILE   (llmroute ledger --help)\n"
      "Exit status: 0 success, 1 the call failed, 2 usage error.\n",
      f);
}

static char *read_all(FILE *f, size_t *len) {
  size_t cap = 4096, n = 0, got;
  char *buf = malloc(cap), *p;
  if (!buf)
    return NULL;
  while ((got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
    n += got;
    if (cap - n - 1 == 0) {
      if (!(p = realloc(buf, cap * 2))) {
        free(buf);
        return NULL;
      }
      buf = p;
      cap *= 2;
    }
  }
  if (ferror(f)) {
    free(buf);
    return NULL;
  }
  buf[n] = '\0';
  *len = n;
  return buf;
}

static char *read_path(const char *path, size_t *len) {
  FILE *f;
  char *s;
  if (strcmp(path, "-") == 0)
    return read_all(stdin, len);
  if (!(f = fopen(path, "rb")))
    return NULL;
  s = read_all(f, len);
  fclose(f);
  return s;
}

static int fail_usage(const char *msg, const char *arg) {
  fprintf(stderr, "llmroute: %s%s%s\n", msg, arg ? ": " : "", arg ? arg : "");
  fprintf(stderr, "Try 'llmroute --help'.\n");
  return 2;
}

/* --stream: answer text as it arrives */
static int on_event(const llmr_event *ev, void *user) {
  int *last_nl = user;
  if (ev->type == LLMR_EVENT_TEXT && ev->len) {
    fwrite(ev->text, 1, ev->len, stdout);
    fflush(stdout);
    *last_nl = ev->text[ev->len - 1] == '\n';
  }
  return 0;
}

/* --stream --json: one chunk per line */
static int on_chunk(const char *chunk_json, void *user) {
  (void)user;
  fputs(chunk_json, stdout);
  putchar('\n');
  fflush(stdout);
  return 0;
}

static void print_cost(int64_t nano) {
  if (nano < 0)
    fprintf(stderr, "cost: unknown (a model is not priced in the catalog)\n");
  else
    fprintf(stderr, "cost: $%lld.%09lld\n", (long long)(nano / 1000000000),
            (long long)(nano % 1000000000));
}

/* One trace line: slug, HTTP status, outcome, flags, time, bytes, error. */
static void trace_line(size_t i, const char *model, int http,
                       const char *status, int skipped, int hedge,
                       int retryable, double ms, double bytes,
                       const char *err) {
  fprintf(stderr, "  attempt %zu: %-40s ", i + 1, model ? model : "");
  if (http)
    fprintf(stderr, "HTTP %d ", http);
  fprintf(stderr, "%s%s%s%s", err ? status : "ok", skipped ? " skipped" : "",
          hedge ? " hedge" : "", err && retryable ? " retryable" : "");
  if (skipped)
    fprintf(stderr, "%s%s\n", err ? ": " : "", err ? err : "");
  else
    fprintf(stderr, " (%.1f ms, %.0f B)%s%s\n", ms, bytes, err ? ": " : "",
            err ? err : "");
}

static void print_trace(const llmr_response *resp) {
  size_t i, n = llmr_response_attempt_count(resp);
  for (i = 0; i < n; i++)
    trace_line(i, llmr_response_attempt_model(resp, i),
               llmr_response_attempt_http_status(resp, i),
               llmr_status_name(llmr_response_attempt_status(resp, i)),
               llmr_response_attempt_skipped(resp, i),
               llmr_response_attempt_hedged(resp, i),
               llmr_response_attempt_retryable(resp, i),
               llmr_response_attempt_duration_ms(resp, i),
               (double)llmr_response_attempt_bytes(resp, i),
               llmr_response_attempt_error(resp, i));
  print_cost(llmr_response_cost_nanousd(resp));
  fprintf(stderr, "request id: %s\n", llmr_response_request_id(resp));
}

/* --trace for --stream --json: the trace of the final document */
static void print_trace_json(const char *final) {
  cJSON *d = cJSON_Parse(final);
  const cJSON *lr = cJSON_GetObjectItemCaseSensitive(d, "llmroute");
  const cJSON *a, *m = cJSON_GetObjectItemCaseSensitive(d, "model");
  size_t i = 0;
  fprintf(stderr, "answered by: %s\n",
          cJSON_IsString(m) ? m->valuestring : "(none)");
  cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(lr, "attempts")) {
    const cJSON *am = cJSON_GetObjectItemCaseSensitive(a, "model");
    const cJSON *http = cJSON_GetObjectItemCaseSensitive(a, "http_status");
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(a, "error");
    const cJSON *stat = cJSON_GetObjectItemCaseSensitive(a, "status");
    const cJSON *dur = cJSON_GetObjectItemCaseSensitive(a, "duration_ms");
    const cJSON *bytes = cJSON_GetObjectItemCaseSensitive(a, "bytes");
    trace_line(i++, cJSON_IsString(am) ? am->valuestring : "",
               cJSON_IsNumber(http) ? http->valueint : 0,
               cJSON_IsString(stat) ? stat->valuestring : "?",
               cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "skipped")),
               cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "hedge")),
               cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "retryable")),
               cJSON_IsNumber(dur) ? dur->valuedouble : 0.0,
               cJSON_IsNumber(bytes) ? bytes->valuedouble : 0.0,
               cJSON_IsString(err) ? err->valuestring : NULL);
  }
  a = cJSON_GetObjectItemCaseSensitive(lr, "cost_nanousd");
  print_cost(cJSON_IsNumber(a) ? (int64_t)a->valuedouble : -1);
  cJSON_Delete(d);
}

int main(int argc, char **argv) {
  static const struct option opts[] = {
      {"model", required_argument, NULL, 'm'},
      {"system", required_argument, NULL, 's'},
      {"max-tokens", required_argument, NULL, 'M'},
      {"temperature", required_argument, NULL, 't'},
      {"request", required_argument, NULL, 'r'},
      {"json", no_argument, NULL, 'j'},
      {"stream", no_argument, NULL, 'S'},
      {"trace", no_argument, NULL, 'T'},
      {"help", no_argument, NULL, 'h'},
      {"version", no_argument, NULL, 'V'},
      {"ledger", required_argument, NULL, 'L'},
      {"app", required_argument, NULL, 'A'},
      {"user", required_argument, NULL, 'U'},
      {"config", required_argument, NULL, 'C'},
      {"policy", required_argument, NULL, 'P'},
      {"retries", required_argument, NULL, 'R'},
      {"deadline-ms", required_argument, NULL, 'D'},
      {"hedge-ms", required_argument, NULL, 'H'},
      {NULL, 0, NULL, 0}};
  const char *system_msg = NULL, *request_path = NULL, *ledger_path = NULL;
  const char *app = NULL, *user = NULL, *config_path = NULL;
  const char *policy_arg = NULL;
  long retries = -1, deadline_ms = -1, hedge_ms = -1;
  char *config = NULL;
  llmr_ledger *ledger = NULL;
  char *models_arg = NULL, *text = NULL, *body = NULL, *end;
  const char *slugs[MAX_SLUGS];
  size_t n_slugs = 0, len;
  long max_tokens = 0;
  double temperature = -1;
  int json = 0, trace = 0, stream = 0, c, rc = 2;
  cJSON *doc = NULL, *msgs, *v;
  llmr_router *router = NULL;
  llmr_request *req = NULL;
  llmr_response *resp = NULL;
  char err[LLMR_ERRBUF_SIZE];
  llmr_status st;

  if (argc > 1 && strcmp(argv[1], "ledger") == 0)
    return llmroute_ledger_main(argc - 1, argv + 1);
  while ((c = getopt_long(argc, argv, "m:s:t:r:jShV", opts, NULL)) != -1) {
    switch (c) {
    case 'm':
      models_arg = optarg;
      break;
    case 's':
      system_msg = optarg;
      break;
    case 'M':
      errno = 0;
      max_tokens = strtol(optarg, &end, 10);
      if (errno || *end || max_tokens < 1)
        return fail_usage("--max-tokens expects a positive integer", optarg);
      break;
    case 't':
      errno = 0;
      temperature = strtod(optarg, &end);
      if (errno || *end || !(temperature >= 0 && temperature <= 2))
        return fail_usage("--temperature expects a number from 0 to 2",
                          optarg);
      break;
    case 'r':
      request_path = optarg;
      break;
    case 'j':
      json = 1;
      break;
    case 'S':
      stream = 1;
      break;
    case 'T':
      trace = 1;
      break;
    case 'h':
      usage(stdout);
      return 0;
    case 'V':
      printf("llmroute %s\n", llmr_version());
      return 0;
    case 'L':
      ledger_path = optarg;
      break;
    case 'A':
      app = optarg;
      break;
    case 'U':
      user = optarg;
      break;
    case 'C':
      config_path = optarg;
      break;
    case 'P':
      policy_arg = optarg;
      break;
    case 'R':
    case 'D':
    case 'H': {
      long n;
      errno = 0;
      n = strtol(optarg, &end, 10);
      if (errno || *end || n < 0 || n > 2147483647L)
        return fail_usage(c == 'R'   ? "--retries expects an integer >= 0"
                          : c == 'D' ? "--deadline-ms expects an integer >= 0"
                                     : "--hedge-ms expects an integer >= 0",
                          optarg);
      if (c == 'R')
        retries = n;
      else if (c == 'D')
        deadline_ms = n;
      else
        hedge_ms = n;
      break;
    }
    default:
      usage(stderr);
      return 2;
    }
  }

  /* the request document: from --request, or built from the prompt */
  if (request_path) {
    if (optind < argc)
      return fail_usage("a PROMPT and --request exclude each other",
                        argv[optind]);
    if (!(body = read_path(request_path, &len)))
      return fail_usage("cannot read the request file", request_path);
    doc = cJSON_ParseWithLength(body, len);
    free(body);
    if (!cJSON_IsObject(doc)) {
      cJSON_Delete(doc);
      return fail_usage("the request file is not a JSON object",
                        request_path);
    }
  } else {
    if (optind != argc - 1) {
      usage(stderr);
      return 2;
    }
    if (strcmp(argv[optind], "-") == 0) {
      if (!(text = read_all(stdin, &len)))
        return fail_usage("cannot read the prompt from stdin", NULL);
    } else if (!(text = strdup(argv[optind]))) {
      return 1;
    }
    doc = cJSON_CreateObject();
    msgs = cJSON_AddArrayToObject(doc, "messages");
    v = cJSON_CreateObject();
    cJSON_AddStringToObject(v, "role", "user");
    cJSON_AddStringToObject(v, "content", text);
    cJSON_AddItemToArray(msgs, v);
    free(text);
  }
  if (system_msg) {
    msgs = cJSON_GetObjectItemCaseSensitive(doc, "messages");
    if (cJSON_IsArray(msgs)) {
      v = cJSON_CreateObject();
      cJSON_AddStringToObject(v, "role", "system");
      cJSON_AddStringToObject(v, "content", system_msg);
      cJSON_InsertItemInArray(msgs, 0, v);
    }
  }
  if (max_tokens) {
    cJSON_DeleteItemFromObjectCaseSensitive(doc, "max_completion_tokens");
    cJSON_DeleteItemFromObjectCaseSensitive(doc, "max_tokens");
    cJSON_AddNumberToObject(doc, "max_tokens", (double)max_tokens);
  }
  if (temperature >= 0) {
    cJSON_DeleteItemFromObjectCaseSensitive(doc, "temperature");
    cJSON_AddNumberToObject(doc, "temperature", temperature);
  }
  if (app) {
    cJSON_DeleteItemFromObjectCaseSensitive(doc, "app");
    cJSON_AddStringToObject(doc, "app", app);
  }
  if (user) {
    cJSON_DeleteItemFromObjectCaseSensitive(doc, "user");
    cJSON_AddStringToObject(doc, "user", user);
  }
  /* the call's policy: "llmroute": {"policy": ...} of the document, then
   * --policy over it, then the single-key options */
  if (policy_arg || retries >= 0 || deadline_ms >= 0 || hedge_ms >= 0) {
    cJSON *lr = cJSON_GetObjectItemCaseSensitive(doc, "llmroute");
    cJSON *pol, *k;
    if (!cJSON_IsObject(lr)) {
      cJSON_DeleteItemFromObjectCaseSensitive(doc, "llmroute");
      lr = cJSON_AddObjectToObject(doc, "llmroute");
    }
    pol = cJSON_GetObjectItemCaseSensitive(lr, "policy");
    if (!cJSON_IsObject(pol)) {
      cJSON_DeleteItemFromObjectCaseSensitive(lr, "policy");
      pol = cJSON_AddObjectToObject(lr, "policy");
    }
    if (policy_arg) {
      cJSON *given = cJSON_Parse(policy_arg);
      if (!cJSON_IsObject(given)) {
        cJSON_Delete(given);
        rc = fail_usage("--policy expects a JSON object", policy_arg);
        goto out;
      }
      while ((k = given->child)) {
        cJSON_DetachItemViaPointer(given, k);
        cJSON_DeleteItemFromObjectCaseSensitive(pol, k->string);
        cJSON_AddItemToObject(pol, k->string, k);
      }
      cJSON_Delete(given);
    }
    if (retries >= 0) {
      cJSON_DeleteItemFromObjectCaseSensitive(pol, "retries");
      cJSON_AddNumberToObject(pol, "retries", (double)retries);
    }
    if (deadline_ms >= 0) {
      cJSON_DeleteItemFromObjectCaseSensitive(pol, "deadline_ms");
      cJSON_AddNumberToObject(pol, "deadline_ms", (double)deadline_ms);
    }
    if (hedge_ms >= 0) {
      cJSON_DeleteItemFromObjectCaseSensitive(pol, "hedge_ms");
      cJSON_AddNumberToObject(pol, "hedge_ms", (double)hedge_ms);
    }
  }

  /* the slugs: -m overrides the document's model / models */
  if (models_arg) {
    char *tok, *save = NULL;
    for (tok = strtok_r(models_arg, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
      if (!*tok)
        continue;
      if (n_slugs == MAX_SLUGS) {
        rc = fail_usage("too many models", NULL);
        goto out;
      }
      slugs[n_slugs++] = tok;
    }
  } else if (cJSON_IsArray(v = cJSON_GetObjectItemCaseSensitive(doc, "models"))) {
    const cJSON *s;
    cJSON_ArrayForEach(s, v) {
      if (!cJSON_IsString(s) || !*s->valuestring) {
        rc = fail_usage("the request's \"models\" must be slug strings", NULL);
        goto out;
      }
      if (n_slugs == MAX_SLUGS) {
        rc = fail_usage("too many models (at most 64)", NULL);
        goto out;
      }
      slugs[n_slugs++] = s->valuestring;
    }
  } else if (cJSON_IsString(v = cJSON_GetObjectItemCaseSensitive(doc, "model"))) {
    slugs[n_slugs++] = v->valuestring;
  }
  if (n_slugs == 0) {
    rc = fail_usage("no model given (-m provider/model)", NULL);
    goto out;
  }

  body = cJSON_PrintUnformatted(doc);
  st = body ? llmr_request_from_json(body, 0, &req, err, sizeof(err))
            : LLMR_E_NOMEM;
  cJSON_free(body);
  if (st != LLMR_OK) {
    rc = fail_usage("invalid request", st == LLMR_E_NOMEM ? "out of memory" : err);
    goto out;
  }
  if (config_path && !(config = read_path(config_path, &len))) {
    rc = fail_usage("cannot read the config file", config_path);
    goto out;
  }
  if ((st = llmr_router_new_ex(config, &router, err, sizeof(err))) !=
      LLMR_OK) {
    fprintf(stderr, "llmroute: %s%s%s\n", config_path ? config_path : "",
            config_path ? ": " : "", err);
    rc = 1;
    goto out;
  }
  if (ledger_path) {
    /* budgets come from the library's API or a router config; the CLI
     * records */
    if (llmr_ledger_open_ex(ledger_path, NULL, &ledger, err, sizeof(err)) !=
        LLMR_OK) {
      fprintf(stderr, "llmroute: ledger: %s\n", err);
      rc = 1;
      goto out;
    }
    llmr_router_set_ledger(router, ledger);
  }

  if (stream && json) {
    /* llmr_stream_json takes the slugs from the document */
    char *final = NULL;
    cJSON *arr = cJSON_CreateArray();
    size_t k;
    for (k = 0; arr && k < n_slugs; k++)
      cJSON_AddItemToArray(arr, cJSON_CreateString(slugs[k]));
    cJSON_DeleteItemFromObjectCaseSensitive(doc, "model");
    if (arr) {
      /* slugs may point into doc's own "models": replace it only now */
      cJSON_DeleteItemFromObjectCaseSensitive(doc, "models");
      cJSON_AddItemToObject(doc, "models", arr);
    }
    body = cJSON_PrintUnformatted(doc);
    st = body ? llmr_stream_json(router, body, on_chunk, NULL, &final)
              : LLMR_E_NOMEM;
    cJSON_free(body);
    if (final) {
      puts(final);
      fflush(stdout);
      if (trace)
        print_trace_json(final);
      llmr_free(final);
    } else {
      fprintf(stderr, "llmroute: out of memory\n");
    }
    rc = st == LLMR_OK ? 0 : 1;
    goto out;
  }
  if (stream) {
    int last_nl = 1;
    st = llmr_stream(router, slugs, n_slugs, req, on_event, &last_nl, &resp);
    if (!last_nl)
      putchar('\n');
    fflush(stdout);
  } else {
    st = llmr_complete(router, slugs, n_slugs, req, &resp);
  }
  if (!resp) {
    fprintf(stderr, "llmroute: out of memory\n");
    rc = 1;
    goto out;
  }
  if (json) {
    char *out = llmr_response_to_json(resp);
    if (out) {
      puts(out);
      llmr_free(out);
    }
  } else if (st == LLMR_OK) {
    const char *answer = llmr_response_text(resp);
    size_t i, n = llmr_response_tool_call_count(resp);
    if (!stream) { /* streamed text is out already */
      fputs(answer, stdout);
      if (*answer && answer[strlen(answer) - 1] != '\n')
        putchar('\n');
    }
    for (i = 0; i < n; i++)
      printf("[tool call %s] %s(%s)\n", llmr_response_tool_call_id(resp, i),
             llmr_response_tool_call_name(resp, i),
             llmr_response_tool_call_arguments(resp, i));
  } else {
    fprintf(stderr, "llmroute: %s: %s\n", llmr_status_name(st),
            llmr_response_error(resp));
  }
  if (trace) {
    fprintf(stderr, "answered by: %s\n",
            llmr_response_model(resp) ? llmr_response_model(resp) : "(none)");
    print_trace(resp);
  }
  rc = st == LLMR_OK ? 0 : 1;
out:
  llmr_response_free(resp);
  llmr_request_free(req);
  llmr_router_free(router);
  llmr_ledger_close(ledger); /* after the router that borrowed it */
  cJSON_Delete(doc);
  free(config);
  return rc;
}
