/*
 * Small shared helpers: allocation, growable buffers, strings, clocks and
 * one-time global initialisation.
 */
#include "internal.h"

#include <curl/curl.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void *llmr__malloc(size_t n) { return malloc(n ? n : 1); }

void *llmr__calloc(size_t n, size_t size) {
  return calloc(n ? n : 1, size ? size : 1);
}

void *llmr__realloc(void *p, size_t n) { return realloc(p, n ? n : 1); }

void llmr__free(void *p) { free(p); }

LLMR_API void llmr_free(void *ptr) { free(ptr); }

char *llmr__strndup(const char *s, size_t n) {
  char *d;
  if (!s)
    return NULL;
  d = llmr__malloc(n + 1);
  if (!d)
    return NULL;
  memcpy(d, s, n);
  d[n] = '\0';
  return d;
}

char *llmr__strdup(const char *s) {
  return s ? llmr__strndup(s, strlen(s)) : NULL;
}

void llmr__free_secret(char *s) {
  if (s) {
    /* volatile so the compiler cannot drop the wipe before free() */
    volatile char *v = s;
    while (*v)
      *v++ = '\0';
    free(s);
  }
}

int llmr__grow(void **arr, size_t *cap, size_t need, size_t size) {
  size_t ncap;
  void *p;
  if (need <= *cap)
    return 0;
  ncap = *cap ? *cap : 4;
  while (ncap < need) {
    if (ncap > SIZE_MAX / 2)
      return -1;
    ncap *= 2;
  }
  if (ncap > SIZE_MAX / size)
    return -1;
  p = llmr__realloc(*arr, ncap * size);
  if (!p)
    return -1;
  *arr = p;
  *cap = ncap;
  return 0;
}

/* llmr__grow_inline once the array is full */
int llmr__grow_inline_full(void **arr, size_t *cap, size_t n, size_t size,
                           const void *inl) {
  void *p;
  if (*arr != inl)
    return llmr__grow(arr, cap, n + 1, size);
  /* the inline array is full: move to the heap, leaving it unused */
  if (*cap > SIZE_MAX / 2 / size)
    return -1;
  if (!(p = llmr__malloc(2 * *cap * size)))
    return -1;
  memcpy(p, *arr, n * size);
  *arr = p;
  *cap *= 2;
  return 0;
}

/* ---- buffers ------------------------------------------------------------ */

static int buf_reserve(llmr__buf *b, size_t extra) {
  size_t need, ncap;
  char *p;
  if (extra > SIZE_MAX - b->len - 1)
    return -1;
  need = b->len + extra + 1;
  if (need <= b->cap)
    return 0;
  ncap = b->cap ? b->cap : 64;
  while (ncap < need)
    ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
  p = llmr__realloc(b->data, ncap);
  if (!p)
    return -1;
  b->data = p;
  b->cap = ncap;
  return 0;
}

int llmr__buf_reserve(llmr__buf *b, size_t extra) {
  return buf_reserve(b, extra);
}

int llmr__buf_append(llmr__buf *b, const char *s, size_t n) {
  if (buf_reserve(b, n) != 0)
    return -1;
  if (n)
    memcpy(b->data + b->len, s, n);
  b->len += n;
  b->data[b->len] = '\0';
  return 0;
}

int llmr__buf_puts(llmr__buf *b, const char *s) {
  return llmr__buf_append(b, s, strlen(s));
}

int llmr__buf_printf(llmr__buf *b, const char *fmt, ...) {
  va_list ap;
  int n;
  char small[256];
  va_start(ap, fmt);
  n = vsnprintf(small, sizeof(small), fmt, ap);
  va_end(ap);
  if (n < 0)
    return -1;
  if ((size_t)n < sizeof(small))
    return llmr__buf_append(b, small, (size_t)n);
  if (buf_reserve(b, (size_t)n) != 0)
    return -1;
  va_start(ap, fmt);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
  return 0;
}

void llmr__buf_reset(llmr__buf *b) {
  b->len = 0;
  if (b->data)
    b->data[0] = '\0';
}

void llmr__buf_free(llmr__buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

const char *llmr__buf_str(const llmr__buf *b) {
  return b->data ? b->data : "";
}

void llmr__errf(char *errbuf, size_t size, const char *fmt, ...) {
  va_list ap;
  if (!errbuf || size == 0)
    return;
  va_start(ap, fmt);
  vsnprintf(errbuf, size, fmt, ap);
  va_end(ap);
}

/* ---- strings and clocks ------------------------------------------------- */

static int lower(int c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

int llmr__strncaseeq(const char *a, const char *b, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) {
    if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
      return 0;
    if (a[i] == '\0')
      return 1;
  }
  return 1;
}

int llmr__strcaseeq(const char *a, const char *b) {
  for (; *a && *b; a++, b++)
    if (lower((unsigned char)*a) != lower((unsigned char)*b))
      return 0;
  return *a == *b;
}

double llmr__now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_OK;

static void global_init(void) { global_rc = curl_global_init(CURL_GLOBAL_ALL); }

llmr_status llmr__global_once(void) {
  pthread_once(&global_once, global_init);
  return global_rc == CURLE_OK ? LLMR_OK : LLMR_E_NOMEM;
}

void llmr__synth_call_id(char *out, size_t n) {
  static atomic_ulong counter;
  unsigned long k = atomic_fetch_add(&counter, 1UL);
  snprintf(out, n, "call_llmr_%lx_%lu", (unsigned long)time(NULL), k);
}

int llmr__parse_data_url(const char *url, char *mime, size_t size,
                         const char **data) {
  const char *comma = strchr(url, ','), *semi;
  size_t i, n;
  if (strncmp(url, "data:", 5) != 0 || !comma)
    return -1;
  url += 5;
  semi = memchr(url, ';', (size_t)(comma - url));
  n = (size_t)((semi ? semi : comma) - url);
  if (n == 0 || n >= size || comma - url < 7 ||
      !llmr__strncaseeq(comma - 7, ";base64", 7))
    return -1;
  for (i = 0; i < n; i++) /* media types are case-insensitive */
    mime[i] = (url[i] >= 'A' && url[i] <= 'Z') ? (char)(url[i] + 32) : url[i];
  mime[n] = '\0';
  *data = comma + 1;
  return 0;
}

/* ---- status table and version ------------------------------------------- */

LLMR_API const char *llmr_status_str(llmr_status status) {
  switch (status) {
#define XX(name, val, desc)                                                    \
  case LLMR_##name:                                                            \
    return desc;
    LLMR_STATUS_MAP(XX)
#undef XX
  }
  return "unknown status";
}

LLMR_API const char *llmr_status_name(llmr_status status) {
  switch (status) {
#define XX(name, val, desc)                                                    \
  case LLMR_##name:                                                            \
    return "LLMR_" #name;
    LLMR_STATUS_MAP(XX)
#undef XX
  }
  return "LLMR_E_UNKNOWN";
}

LLMR_API const char *llmr_version(void) { return LLMR_VERSION_STRING; }

LLMR_API unsigned llmr_version_num(void) { return LLMR_VERSION_NUM; }

/* ---- JSON helpers ------------------------------------------------------- */

const char *llmr__json_str(const cJSON *obj, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

int llmr__json_i64(const cJSON *obj, const char *key, int64_t *out) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  if (!cJSON_IsNumber(v))
    return -1;
  if (v->valuedouble >= 9.2e18 || v->valuedouble <= -9.2e18)
    return -1;
  *out = (int64_t)v->valuedouble;
  return 0;
}

char *llmr__json_print(const cJSON *j) {
  char *s = cJSON_PrintUnformatted(j);
  char *d;
  if (!s)
    return NULL;
  /* cJSON's allocator and ours are both malloc today; copy anyway so the
   * ownership rule (llmr_free) holds whatever cJSON hooks are installed. */
  d = llmr__strdup(s);
  cJSON_free(s);
  return d;
}

cJSON *llmr__json_add_str_or_null(cJSON *obj, const char *key, const char *s) {
  return s ? cJSON_AddStringToObject(obj, key, s)
           : cJSON_AddNullToObject(obj, key);
}
