/* Test support: start/stop the provider emulator (tests/mock/emulator.py)
 * and talk to its control endpoints. */
#ifndef LLMR_TEST_EMU_H
#define LLMR_TEST_EMU_H

#include <cjson/cJSON.h>
#include <sys/types.h>

typedef struct emu {
  pid_t pid;
  int port;
  int tls;
  char base[128]; /* http(s)://127.0.0.1:PORT */
} emu;

/* The repository root (LLMR_SRCDIR or "."). */
const char *emu_srcdir(void);
/* Start the emulator; extra args (NULL-terminated list) are appended.
 * Returns 0 or -1. */
int emu_start(emu *e, const char *const *extra_args);
/* Start with TLS using certs in dir (made by tests/mock/make-certs.sh). */
int emu_start_tls(emu *e, const char *certdir);
void emu_stop(emu *e);
/* POST JSON to a control path; returns 0 on HTTP 200. */
int emu_post(const emu *e, const char *path, const char *json);
/* GET a control path, parsed; caller cJSON_Deletes. NULL on failure. */
cJSON *emu_get(const emu *e, const char *path);
int emu_script(const emu *e, const char *json);
int emu_reset(const emu *e);
/* Number of provider requests received (all models, or one model). */
int emu_count(const emu *e, const char *model);
/* The i-th received provider request (0-based; -1 = last); caller deletes. */
cJSON *emu_request(const emu *e, int i);
/* Script `model` to answer 200 with a verbatim body of the given content
 * type on every request. Returns 0 or -1. */
int emu_script_raw(const emu *e, const char *model, const char *body,
                   const char *content_type);
/* Milliseconds from a monotonic clock. */
double emu_now_ms(void);
/* A loopback port with nothing listening. */
int emu_free_port(void);
/* Make test certificates into a fresh temp dir; returns the dir (static
 * storage) or NULL. */
const char *emu_make_certs(void);
/* Router config JSON pointing openai + openrouter + mistral + ollama at the
 * emulator with test keys; extra is spliced into the top level ("" for
 * none), e.g. "\"timeout_ms\": 500". Caller frees. */
char *emu_config(const emu *e, const char *extra);

#endif
