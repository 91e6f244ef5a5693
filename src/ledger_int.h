/*
 * Ledger internals shared by src/ledger.c (the file, appends, budgets),
 * src/ledger_read.c (record parser, line reader, verify) and
 * src/ledger_query.c (totals and breakdowns). Not installed.
 */
#ifndef LLMR_LEDGER_INT_H
#define LLMR_LEDGER_INT_H

#include "internal.h"
#include "jscan.h"

#include <stdint.h>
#include <sys/types.h>

/* Every record line starts with these bytes; an unparseable line that
 * starts with a prefix of them is a torn write. */
#define LLMR__REC_PREFIX "{\"v\":"
/* The longest line a reader accepts. */
#define LLMR__MAX_LINE ((size_t)16 << 20)
/* The chain's first "previous hash". */
#define LLMR__GENESIS                                                          \
  "0000000000000000000000000000000000000000000000000000000000000000"

/* A parsed record; spans point into the line. */
typedef struct llmr__recview {
  int64_t v, n, t, attempt, http;
  llmr__span id, app, user, asked, model, provider, native, status, hash;
  int stream, estimated;
  int64_t prompt, completion, cached, cache_write, reasoning;
  int64_t cost;       /* nano-USD; -1: null (unknown) */
  int64_t latency_us; /* -1: absent */
  int64_t ttft_us;    /* -1: null */
  size_t hash_comma;  /* offset of the ',' before "hash": the content ends */
} llmr__recview;

enum { LLMR__LINE_RECORD = 0, LLMR__LINE_TORN = 1, LLMR__LINE_BAD = 2 };

/* Parse one line (without its '\n') as a record: 0, or -1 with the reason
 * in why ("binary data", "record has no \"t\" field", ...), or -2 when
 * the line is valid as far as it goes but ends early (a torn write). */
int llmr__rec_parse(const char *line, size_t n, llmr__recview *rv, char *why,
                    size_t why_size);
/* RECORD (rv filled), TORN (an empty line, or one that starts like a
 * record and is right up to where it ends early: a write a crash cut
 * short) or BAD (why says). */
int llmr__line_classify(const char *line, size_t n, llmr__recview *rv,
                        char *why, size_t why_size);
/* SHA-256 of prev_hex (64 hex digits) and the record's content (the line
 * up to its hash field, closed with '}'), as 64 hex digits + NUL. */
void llmr__rec_hash(const char *prev_hex, const char *line, size_t content_len,
                    char out[65]);
/* Reads a file's lines with pread() from `from` up to `limit`. */
typedef struct llmr__lreader {
  int fd;
  char *buf;
  size_t cap;
  size_t start, end; /* unread bytes are buf[start..end) */
  uint64_t buf_off;  /* file offset of buf[0] */
  uint64_t pos;      /* next file offset to read */
  uint64_t limit;
  int err; /* errno of a failed read */
} llmr__lreader;

void llmr__lr_init(llmr__lreader *lr, int fd, uint64_t from, uint64_t limit);
void llmr__lr_free(llmr__lreader *lr);
/* 1: a line (without '\n') at file offset *off; *nl is 0 only for a last
 * piece that reached `limit` without a '\n'. 0: the end. -1: a read
 * failed (lr->err) or out of memory; -2: a line longer than
 * LLMR__MAX_LINE (it is skipped: *off says where it began). The line stays
 * valid until the next call. */
int llmr__lr_next(llmr__lreader *lr, const char **line, size_t *len,
                  uint64_t *off, int *nl);

/* Time helpers (UTC). */
int64_t llmr__day_of(int64_t t_ms);   /* days since 1970-01-01 */
int64_t llmr__month_of(int64_t t_ms); /* year * 12 + month - 1 */
/* Start of the bucket (0 hour, 1 day, 2 month) holding t, and its label
 * ("2026-11-24T13:00Z", "2026-11-24", "2026-11") into label[32]. */
int64_t llmr__bucket_of(int unit, int64_t t_ms, char label[32]);

/* The file descriptor and path of an open ledger, for queries. */
int llmr__ledger_fd(const llmr_ledger *l);
const char *llmr__ledger_path(const llmr_ledger *l);

#endif
