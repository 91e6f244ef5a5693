#include "emu.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *emu_srcdir(void) {
  const char *s = getenv("LLMR_SRCDIR");
  return (s && *s) ? s : ".";
}

static int start(emu *e, const char *const *extra, const char *cert,
                 const char *key) {
  int fds[2];
  char script[1024], line[128];
  FILE *f;
  memset(e, 0, sizeof(*e));
  snprintf(script, sizeof(script), "%s/tests/mock/emulator.py", emu_srcdir());
  if (pipe(fds) != 0)
    return -1;
  e->pid = fork();
  if (e->pid < 0)
    return -1;
  if (e->pid == 0) {
    const char *argv[32];
    int n = 0, i;
    dup2(fds[1], 1);
    close(fds[0]);
    close(fds[1]);
    argv[n++] = "python3";
    argv[n++] = script;
    argv[n++] = "--port";
    argv[n++] = "0";
    argv[n++] = "--quiet";
    if (cert) {
      argv[n++] = "--tls-cert";
      argv[n++] = cert;
      argv[n++] = "--tls-key";
      argv[n++] = key;
    }
    for (i = 0; extra && extra[i] && n < 30; i++)
      argv[n++] = extra[i];
    argv[n] = NULL;
    execvp("python3", (char *const *)argv);
    _exit(127);
  }
  close(fds[1]);
  f = fdopen(fds[0], "r");
  if (!f || !fgets(line, sizeof(line), f) ||
      sscanf(line, "PORT %d", &e->port) != 1) {
    if (f)
      fclose(f);
    emu_stop(e);
    return -1;
  }
  fclose(f);
  e->tls = cert != NULL;
  snprintf(e->base, sizeof(e->base), "%s://127.0.0.1:%d",
           cert ? "https" : "http", e->port);
  return 0;
}

int emu_start(emu *e, const char *const *extra) {
  return start(e, extra, NULL, NULL);
}

int emu_start_tls(emu *e, const char *dir) {
  char cert[512], key[512];
  snprintf(cert, sizeof(cert), "%s/server.pem", dir);
  snprintf(key, sizeof(key), "%s/server.key", dir);
  return start(e, NULL, cert, key);
}

void emu_stop(emu *e) {
  if (e->pid > 0) {
    kill(e->pid, SIGTERM);
    waitpid(e->pid, NULL, 0);
  }
  e->pid = 0;
}

typedef struct {
  char *data;
  size_t len;
} sink;

static size_t on_data(char *p, size_t s, size_t n, void *u) {
  sink *k = u;
  char *d = realloc(k->data, k->len + s * n + 1);
  if (!d)
    return 0;
  memcpy(d + k->len, p, s * n);
  k->len += s * n;
  d[k->len] = '\0';
  k->data = d;
  return s * n;
}

/* Control requests always go over plain http: with TLS on, the control
 * endpoints are on the same TLS port, so trust nothing and skip checks only
 * for this loopback control channel. */
static char *control(const emu *e, const char *path, const char *post,
                     long *status) {
  CURL *h = curl_easy_init();
  char url[512];
  sink k = {NULL, 0};
  struct curl_slist *hd = NULL;
  CURLcode rc;
  if (!h)
    return NULL;
  snprintf(url, sizeof(url), "%s%s", e->base, path);
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &k);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
  curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
  if (e->tls) {
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  if (post) {
    hd = curl_slist_append(hd, "Content-Type: application/json");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, post);
  }
  rc = curl_easy_perform(h);
  *status = 0;
  if (rc == CURLE_OK)
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
  curl_slist_free_all(hd);
  curl_easy_cleanup(h);
  if (rc != CURLE_OK) {
    free(k.data);
    return NULL;
  }
  return k.data ? k.data : calloc(1, 1);
}

int emu_post(const emu *e, const char *path, const char *json) {
  long status;
  char *body = control(e, path, json, &status);
  free(body);
  return (body && status == 200) ? 0 : -1;
}

cJSON *emu_get(const emu *e, const char *path) {
  long status;
  char *body = control(e, path, NULL, &status);
  cJSON *j = (body && status == 200) ? cJSON_Parse(body) : NULL;
  free(body);
  return j;
}

int emu_script(const emu *e, const char *json) {
  return emu_post(e, "/_emu/script", json);
}

int emu_reset(const emu *e) { return emu_post(e, "/_emu/reset", "{}"); }

int emu_count(const emu *e, const char *model) {
  cJSON *s = emu_get(e, "/_emu/stats");
  const cJSON *v;
  int n = -1;
  if (!s)
    return -1;
  if (model) {
    v = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(s, "by_model"), model);
    n = cJSON_IsNumber(v) ? v->valueint : 0;
  } else {
    v = cJSON_GetObjectItemCaseSensitive(s, "requests");
    n = cJSON_IsNumber(v) ? v->valueint : -1;
  }
  cJSON_Delete(s);
  return n;
}

cJSON *emu_request(const emu *e, int i) {
  cJSON *all = emu_get(e, "/_emu/requests"), *item;
  int n;
  if (!all)
    return NULL;
  n = cJSON_GetArraySize(all);
  if (i < 0)
    i = n + i;
  item = (i >= 0 && i < n) ? cJSON_DetachItemFromArray(all, i) : NULL;
  cJSON_Delete(all);
  return item;
}

int emu_free_port(void) {
  struct sockaddr_in a;
  socklen_t len = sizeof(a);
  int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;
  if (fd < 0)
    return -1;
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
      getsockname(fd, (struct sockaddr *)&a, &len) == 0)
    port = ntohs(a.sin_port);
  close(fd);
  return port;
}

const char *emu_make_certs(void) {
  static char dir[256];
  char cmd[1024];
  snprintf(dir, sizeof(dir), "/tmp/llmr-certs-XXXXXX");
  if (!mkdtemp(dir))
    return NULL;
  snprintf(cmd, sizeof(cmd), "bash %s/tests/mock/make-certs.sh %s >/dev/null",
           emu_srcdir(), dir);
  return system(cmd) == 0 ? dir : NULL;
}

char *emu_config(const emu *e, const char *extra) {
  size_t n = 2048 + strlen(extra);
  char *s = malloc(n);
  if (!s)
    return NULL;
  snprintf(s, n,
           "{\"use_env\": false,%s%s \"providers\": {"
           "\"openai\": {\"base_url\": \"%s/v1\", \"api_key\": \"sk-test-0000\"},"
           "\"openrouter\": {\"base_url\": \"%s/api/v1\", \"api_key\": \"sk-or-test-0000\"},"
           "\"mistral\": {\"base_url\": \"%s/v1\", \"api_key\": \"mistral-test-0000\"},"
           "\"groq\": {\"base_url\": \"%s/openai/v1\", \"api_key\": \"gsk-test-0000\"},"
           "\"ollama\": {\"base_url\": \"%s/v1\"}}}",
           extra, *extra ? "," : "", e->base, e->base, e->base, e->base,
           e->base);
  return s;
}

int emu_script_raw(const emu *e, const char *model, const char *body,
                   const char *content_type) {
  cJSON *s = cJSON_CreateObject(), *d = cJSON_CreateObject(), *h;
  char *txt;
  int rc = -1;
  if (s && d && cJSON_AddStringToObject(s, "model", model) &&
      cJSON_AddStringToObject(d, "kind", "raw") &&
      cJSON_AddNumberToObject(d, "status", 200) &&
      cJSON_AddStringToObject(d, "body", body) &&
      (h = cJSON_AddObjectToObject(d, "headers")) &&
      cJSON_AddStringToObject(h, "Content-Type", content_type)) {
    cJSON_AddItemToObject(s, "default", d);
    d = NULL;
    if ((txt = cJSON_PrintUnformatted(s))) {
      rc = emu_script(e, txt);
      cJSON_free(txt);
    }
  }
  cJSON_Delete(d);
  cJSON_Delete(s);
  return rc;
}

double emu_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}
