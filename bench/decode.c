/*
 * Stream decode throughput (bench/README.md): for each provider stream
 * format, a large realistic stream is generated in memory and fed in
 * 16 KiB chunks through
 *   memchr   -- a memchr('\n') loop over the chunks (the floor: finding the
 *               line ends and nothing else),
 *   sse      -- the SSE parser alone (src/sse.c), events counted,
 *   decode   -- SSE parser + the adapter's stream_event, with a streaming
 *               sink whose callback counts the events, as llmr_stream()
 *               drives it (the response assembles the text as it does
 *               there).
 * Single thread, pinned to the CPU it starts on; every stage runs RUNS
 * times, interleaved; the median, min and max are reported as a Markdown
 * table on stdout. A format whose adapter has no stream_event is reported
 * "not yet"; a decoder that fails on the stream is reported as failed.
 *
 *   bench_decode [--mb N] [--runs N] [--chunk BYTES]
 *
 * SPDX-License-Identifier: MIT
 */
#define _GNU_SOURCE
#include "bench.h"

#include "internal.h"
#include "sse.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- realistic text --------------------------------------------------- */

/* Tokens as they appear inside a JSON string, and their decoded length.
 * Mostly English word pieces with a leading space, some punctuation,
 * escapes (\n, \") and multi-byte UTF-8. */
static const struct {
  const char *json;
  size_t len;
} tokens[] = {
    {" The", 4},       {" quick", 6},   {" brown", 6},    {" fox", 4},
    {" jumps", 6},     {" over", 5},    {" the", 4},      {" lazy", 5},
    {" dog", 4},       {".", 1},        {" In", 3},       {" practice", 9},
    {",", 1},          {" a", 2},       {" streaming", 10}, {" answer", 7},
    {" arrives", 8},   {" in", 3},      {" small", 6},    {" pieces", 7},
    {" of", 3},        {" text", 5},    {":", 1},         {" one", 4},
    {" token", 6},     {" at", 3},      {" time", 5},     {"\\n\\n", 2},
    {"##", 2},         {" Caf\xc3\xa9", 6}, {" \xe2\x80\x94", 4},
    {" r\xc3\xa9sum\xc3\xa9", 9},    {" \\\"quoted\\\"", 9},
    {" \xf0\x9f\x98\x80", 5}, {" code", 5}, {"`", 1},        {"int", 3},
    {" main", 5},      {"(void", 5},    {")", 1},         {" {", 2},
    {" return", 7},    {" 0", 2},       {";", 1},         {" }", 2},
    {" model", 6},     {"s", 1},        {" can", 4},      {" reason", 7},
    {" about", 6},     {" it", 3},      {" step", 5},     {" by", 3},
    {" and", 4},       {" then", 5},    {" answer", 7},   {" with", 5},
    {" confidence", 11}, {" 42", 3},    {"%", 1},         {" more", 5},
    {" or", 3},        {" less", 5},    {"!", 1},
};
#define N_TOKENS (sizeof(tokens) / sizeof(tokens[0]))

typedef struct gen {
  llmr__buf b;
  size_t text_len; /* decoded text bytes the stream carries */
  size_t events;   /* SSE events */
  size_t tok;      /* next token */
} gen;

static void die(const char *msg) {
  fprintf(stderr, "bench_decode: %s\n", msg);
  exit(1);
}

static void add(gen *g, const char *s) {
  if (llmr__buf_puts(&g->b, s) != 0)
    die("out of memory");
}

/* n tokens as JSON string content */
static void add_text(gen *g, int n) {
  int i;
  for (i = 0; i < n; i++) {
    size_t t = g->tok++ % N_TOKENS;
    add(g, tokens[t].json);
    g->text_len += tokens[t].len;
  }
}

/* ---- the three formats -------------------------------------------------- */

/* OpenAI Chat Completions with stream_options.include_usage: one token per
 * chunk, a finish chunk, the usage chunk, [DONE]. */
#define OAI_HEAD                                                              \
  "data: {\"id\":\"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT\",\"object\":"      \
  "\"chat.completion.chunk\",\"created\":1741569952,\"model\":\"gpt-4o-"      \
  "2024-08-06\",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_"    \
  "eb9dce56a8\",\"choices\":["
static void gen_openai(gen *g, size_t target) {
  add(g, OAI_HEAD "{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":"
             "\"\",\"refusal\":null},\"logprobs\":null,\"finish_reason\":null}"
             "],\"usage\":null}\n\n");
  g->events++;
  while (g->b.len < target) {
    add(g, OAI_HEAD "{\"index\":0,\"delta\":{\"content\":\"");
    add_text(g, 1);
    add(g, "\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n");
    g->events++;
  }
  add(g, OAI_HEAD "{\"index\":0,\"delta\":{},\"logprobs\":null,"
             "\"finish_reason\":\"stop\"}],\"usage\":null}\n\n");
  add(g, OAI_HEAD "],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":"
             "99999,\"total_tokens\":100011,\"prompt_tokens_details\":{"
             "\"cached_tokens\":0,\"audio_tokens\":0},"
             "\"completion_tokens_details\":{\"reasoning_tokens\":0,"
             "\"audio_tokens\":0,\"accepted_prediction_tokens\":0,"
             "\"rejected_prediction_tokens\":0}}}\n\n");
  add(g, "data: [DONE]\n\n");
  g->events += 3;
}

/* Anthropic Messages: message_start, a text block of text_delta events of
 * three tokens, a ping every 200 deltas, message_delta, message_stop. */
static void gen_anthropic(gen *g, size_t target) {
  size_t n = 0;
  add(g, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":"
         "{\"id\":\"msg_01XFDUDYJgAACzvnptvVoYEL\",\"type\":\"message\","
         "\"role\":\"assistant\",\"model\":\"claude-sonnet-4-20250514\","
         "\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,"
         "\"usage\":{\"input_tokens\":12,\"cache_creation_input_tokens\":0,"
         "\"cache_read_input_tokens\":0,\"output_tokens\":1,"
         "\"service_tier\":\"standard\"}}}\n\n"
         "event: content_block_start\ndata: {\"type\":\"content_block_start\","
         "\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
         "event: ping\ndata: {\"type\": \"ping\"}\n\n");
  g->events += 3;
  while (g->b.len < target) {
    add(g, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\","
           "\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"");
    add_text(g, 3);
    add(g, "\"}}\n\n");
    g->events++;
    if (++n % 200 == 0) {
      add(g, "event: ping\ndata: {\"type\": \"ping\"}\n\n");
      g->events++;
    }
  }
  add(g, "event: content_block_stop\ndata: {\"type\":\"content_block_stop\","
         "\"index\":0}\n\n"
         "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":"
         "{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":"
         "{\"output_tokens\":99999}}\n\n"
         "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
  g->events += 3;
}

/* Gemini streamGenerateContent?alt=sse: CRLF line ends, chunks of twelve
 * tokens, each with usageMetadata; the last one has finishReason. */
static void gen_gemini(gen *g, size_t target) {
  int last = 0;
  while (!last) {
    last = g->b.len >= target;
    add(g, "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"");
    add_text(g, 12);
    add(g, last ? "\"}], \"role\": \"model\"}, \"finishReason\": \"STOP\", "
                  "\"index\": 0}], \"usageMetadata\": {\"promptTokenCount\": 12, "
                  "\"candidatesTokenCount\": 99999, \"totalTokenCount\": 100011, "
                  "\"promptTokensDetails\": [{\"modality\": \"TEXT\", "
                  "\"tokenCount\": 12}]}, \"modelVersion\": \"gemini-2.0-flash\", "
                  "\"responseId\": \"4AXNaKXuD5qZkdUP8rOM8Qo\"}\r\n\r\n"
                : "\"}], \"role\": \"model\"}, \"index\": 0}], "
                  "\"usageMetadata\": {\"promptTokenCount\": 12, "
                  "\"totalTokenCount\": 12, \"promptTokensDetails\": "
                  "[{\"modality\": \"TEXT\", \"tokenCount\": 12}]}, "
                  "\"modelVersion\": \"gemini-2.0-flash\", \"responseId\": "
                  "\"4AXNaKXuD5qZkdUP8rOM8Qo\"}\r\n\r\n");
    g->events++;
  }
}

/* ---- the stages --------------------------------------------------------- */

typedef struct stage_ctx {
  const llmr_provider *p;
  llmr_response *resp;
  void *state;
  size_t events;
  size_t text_events;
  llmr_status st;
} stage_ctx;

static int count_event(void *user, const llmr__sse_event *ev) {
  stage_ctx *c = user;
  (void)ev;
  c->events++;
  return 0;
}

static int decode_event(void *user, const llmr__sse_event *ev) {
  stage_ctx *c = user;
  c->events++;
  c->st = c->p->vt->stream_event(c->p, c->state,
                                 ev->event_len ? ev->event : "message",
                                 ev->data, ev->data_len, c->resp);
  return c->st != LLMR_OK;
}

static int on_stream_event(const llmr_event *ev, void *user) {
  stage_ctx *c = user;
  c->text_events += ev->type == LLMR_EVENT_TEXT;
  return 0;
}

static size_t chunk_size = 16384;

static double run_memchr(const char *buf, size_t len, size_t *lines) {
  double t0 = bench_now_us();
  size_t off, n = 0;
  for (off = 0; off < len; off += chunk_size) {
    const char *p = buf + off;
    const char *end = p + (len - off < chunk_size ? len - off : chunk_size);
    while ((p = memchr(p, '\n', (size_t)(end - p)))) {
      n++;
      p++;
    }
  }
  *lines = n;
  return bench_now_us() - t0;
}

static double run_sse(const char *buf, size_t len, size_t *events) {
  llmr__sse_parser sse;
  stage_ctx c;
  size_t off;
  double t0, t;
  memset(&c, 0, sizeof(c));
  t0 = bench_now_us();
  llmr__sse_init(&sse, 0, count_event, &c);
  for (off = 0; off < len; off += chunk_size)
    if (llmr__sse_feed(&sse, buf + off,
                       len - off < chunk_size ? len - off : chunk_size) !=
        LLMR_OK)
      die("SSE parser failed on the generated stream");
  llmr__sse_finish(&sse);
  llmr__sse_free(&sse);
  t = bench_now_us() - t0;
  *events = c.events;
  return t;
}

/* < 0: the decoder failed (message in err). */
static double run_decode(const llmr_provider *p, const char *buf, size_t len,
                         size_t want_text, size_t *events, char *err,
                         size_t errsize) {
  llmr__sse_parser sse;
  llmr__sink sink;
  stage_ctx c;
  size_t off;
  double t0, t;
  llmr_status fst = LLMR_OK;
  memset(&c, 0, sizeof(c));
  memset(&sink, 0, sizeof(sink));
  sink.cb = on_stream_event;
  sink.user = &c;
  sink.model = "bench/model";
  sink.provider = p->name;
  sink.native_model = "model";
  c.p = p;
  t0 = bench_now_us();
  if (!(c.resp = llmr__response_new()) ||
      (p->vt->state_size && !(c.state = llmr__calloc(1, p->vt->state_size))))
    die("out of memory");
  c.resp->sink = &sink;
  llmr__sse_init(&sse, 0, decode_event, &c);
  for (off = 0; off < len && fst == LLMR_OK; off += chunk_size)
    fst = llmr__sse_feed(&sse, buf + off,
                         len - off < chunk_size ? len - off : chunk_size);
  if (fst == LLMR_OK)
    llmr__sse_finish(&sse);
  c.resp->sink = NULL;
  llmr__sse_free(&sse);
  t = bench_now_us() - t0;
  *events = c.events;
  if (c.st != LLMR_OK || fst != LLMR_OK)
    snprintf(err, errsize, "%s: %s",
             llmr_status_name(c.st != LLMR_OK ? c.st : fst),
             llmr_response_error(c.resp) ? llmr_response_error(c.resp)
                                         : "(no message)");
  else if (!c.resp->stream_done)
    snprintf(err, errsize, "no end marker seen");
  else if (c.resp->text.len != want_text)
    snprintf(err, errsize, "decoded %zu text bytes, expected %zu",
             c.resp->text.len, want_text);
  else
    err[0] = '\0';
  llmr__free(c.state);
  llmr_response_free(c.resp);
  return err[0] ? -1 : t;
}

/* ---- main --------------------------------------------------------------- */

typedef struct fmt {
  const char *label;
  const char *builtin;
  void (*gen)(gen *, size_t);
} fmt;

static const fmt fmts[] = {
    {"OpenAI chunks (1 token/event)", "openai", gen_openai},
    {"Anthropic events (3 tokens/delta)", "anthropic", gen_anthropic},
    {"Gemini CRLF chunks (12 tokens/chunk)", "google", gen_gemini},
};

static void row(const char *format, const char *stage, double *us, int runs,
                size_t bytes, size_t events, double ref_sse, double ref_mem) {
  double mb = (double)bytes / 1e6, med, lo, hi;
  char ev[64] = "-", r1[32] = "-", r2[32] = "-";
  med = bench_median(us, (size_t)runs);
  lo = us[0];
  hi = us[runs - 1];
  if (events)
    snprintf(ev, sizeof(ev), "%.2f M", (double)events / (med / 1e6) / 1e6);
  if (ref_sse > 0)
    snprintf(r1, sizeof(r1), "%.2f", (mb / (med / 1e6)) / ref_sse);
  if (ref_mem > 0)
    snprintf(r2, sizeof(r2), "%.3f", (mb / (med / 1e6)) / ref_mem);
  printf("| %s | %s | %.0f | %.0f – %.0f | %s | %s | %s |\n", format, stage,
         mb / (med / 1e6), mb / (hi / 1e6), mb / (lo / 1e6), ev, r1, r2);
}

int main(int argc, char **argv) {
  size_t mb = 32, f;
  int runs = 7, i;
  cpu_set_t cpus;
  int cpu = sched_getcpu();

  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--mb") == 0 && i + 1 < argc)
      mb = (size_t)strtoul(argv[++i], NULL, 10);
    else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
      runs = atoi(argv[++i]);
    else if (strcmp(argv[i], "--chunk") == 0 && i + 1 < argc)
      chunk_size = (size_t)strtoul(argv[++i], NULL, 10);
    else {
      fprintf(stderr, "usage: bench_decode [--mb N] [--runs N] [--chunk B]\n");
      return 2;
    }
  }
  if (mb < 1 || runs < 1 || chunk_size < 1)
    die("bad arguments");
  if (cpu >= 0) {
    CPU_ZERO(&cpus);
    CPU_SET((size_t)cpu, &cpus);
    sched_setaffinity(0, sizeof(cpus), &cpus); /* best effort */
  }

  printf("Streams of about %zu MiB per format, fed in %zu-byte chunks; %d "
         "runs per stage, interleaved, after one warm-up run; one thread "
         "pinned to CPU %d. MB = 10^6 bytes, throughput = stream bytes / "
         "wall time; events = SSE events dispatched.\n\n",
         mb, chunk_size, runs, cpu);
  printf("| format | stage | MB/s median | MB/s min – max | events/s median "
         "| × SSE alone | × memchr |\n");
  printf("| --- | --- | ---: | ---: | ---: | ---: | ---: |\n");

  for (f = 0; f < sizeof(fmts) / sizeof(fmts[0]); f++) {
    const llmr__builtin *b = llmr__builtin_find(fmts[f].builtin);
    llmr_provider *p = NULL;
    char err[512] = "";
    gen g;
    double *t_mem, *t_sse, *t_dec, sse_mbs, mem_mbs;
    size_t lines = 0, sse_events = 0, dec_events = 0;
    int r, failed = 0, can = b && b->vt->stream_event;

    memset(&g, 0, sizeof(g));
    fmts[f].gen(&g, mb << 20);
    if (b && llmr__provider_new(b->name, b->vt, b, NULL, 0, NULL, &p, err,
                                sizeof(err)) != LLMR_OK)
      die(err);
    t_mem = calloc((size_t)runs, sizeof(double));
    t_sse = calloc((size_t)runs, sizeof(double));
    t_dec = calloc((size_t)runs, sizeof(double));
    if (!t_mem || !t_sse || !t_dec)
      die("out of memory");
    /* warm-up (page faults, caches) */
    run_memchr(g.b.data, g.b.len, &lines);
    run_sse(g.b.data, g.b.len, &sse_events);
    if (can && run_decode(p, g.b.data, g.b.len, g.text_len, &dec_events, err,
                          sizeof(err)) < 0)
      failed = 1;
    for (r = 0; r < runs; r++) {
      t_mem[r] = run_memchr(g.b.data, g.b.len, &lines);
      t_sse[r] = run_sse(g.b.data, g.b.len, &sse_events);
      if (can && !failed &&
          (t_dec[r] = run_decode(p, g.b.data, g.b.len, g.text_len,
                                 &dec_events, err, sizeof(err))) < 0)
        failed = 1;
    }
    if (sse_events != g.events)
      die("the SSE parser saw a different number of events");
    mem_mbs = (double)g.b.len / 1e6 / (bench_median(t_mem, (size_t)runs) / 1e6);
    sse_mbs = (double)g.b.len / 1e6 / (bench_median(t_sse, (size_t)runs) / 1e6);
    {
      char label[160];
      snprintf(label, sizeof(label), "%s, %.1f MB, %zu events, %zu B/event",
               fmts[f].label, (double)g.b.len / 1e6, g.events,
               g.b.len / g.events);
      row(label, "memchr('\\n') loop", t_mem, runs, g.b.len, 0, 0, 0);
      row("", "SSE parser alone", t_sse, runs, g.b.len, sse_events, 0,
          mem_mbs);
      if (!can)
        printf("|  | SSE + stream_event | not yet (the %s adapter has no "
               "stream_event) | | | | |\n", b ? b->vt->name : fmts[f].builtin);
      else if (failed)
        printf("|  | SSE + stream_event | decoder failed: %s | | | | |\n", err);
      else
        row("", "SSE + stream_event + sink", t_dec, runs, g.b.len, dec_events,
            sse_mbs, mem_mbs);
    }
    fflush(stdout);
    free(t_mem);
    free(t_sse);
    free(t_dec);
    llmr__buf_free(&g.b);
    llmr__provider_free(p);
  }
  return 0;
}
