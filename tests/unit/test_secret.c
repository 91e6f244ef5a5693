/*
 * Secret storage (src/secret.c) and its users: sizes, wipe on free, reuse,
 * threads, fork; credential headers, the provider's key and the cached
 * curl header list in dump-excluded memory (/proc/self/smaps "dd"); and
 * end to end, a core dump of this process taken with gdb's gcore after a
 * call against the emulator, searched for the key.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "emu.h"
#include "internal.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <sys/statvfs.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZED 1
#endif
#endif

/* ---- the free hook: every freed chunk must read back as zeros ----------- */

static atomic_long hook_calls;
static atomic_long hook_dirty; /* chunks with a non-zero byte after free */

static void check_wiped(const void *p, size_t n) {
  const unsigned char *b = p;
  size_t i;
  atomic_fetch_add(&hook_calls, 1);
  for (i = 0; i < n; i++)
    if (b[i]) {
      atomic_fetch_add(&hook_dirty, 1);
      return;
    }
}

static int hook_setup(void **state) {
  (void)state;
  atomic_store(&hook_calls, 0);
  atomic_store(&hook_dirty, 0);
  llmr__secret_set_free_hook(check_wiped);
  return 0;
}

static int hook_teardown(void **state) {
  (void)state;
  llmr__secret_set_free_hook(NULL);
  return 0;
}

static size_t page_size(void) {
  llmr__secret_stats st;
  llmr__secret_get_stats(&st);
  return st.page_size;
}

static int all_zero(const void *p, size_t n) {
  const volatile unsigned char *b = p;
  size_t i;
  for (i = 0; i < n; i++)
    if (b[i])
      return 0;
  return 1;
}

/* Sizes around every class boundary and the page size, and some large. */
static void test_sizes_and_wipe(void **state) {
  size_t ps = page_size();
  size_t sizes[64], n = 0, i, k;
  llmr__secret_stats before, after;
  (void)state;
  llmr__secret_get_stats(&before);
  for (k = 16; k <= 2048; k *= 2) {
    sizes[n++] = k - 1;
    sizes[n++] = k;
    sizes[n++] = k + 1;
  }
  sizes[n++] = 0;
  sizes[n++] = 1;
  sizes[n++] = ps - 1;
  sizes[n++] = ps;
  sizes[n++] = ps + 1;
  sizes[n++] = 3 * ps + 5;
  sizes[n++] = 1 << 20;
  for (i = 0; i < n; i++) {
    size_t sz = sizes[i], usable;
    unsigned char *p = llmr__secret_alloc(sz);
    long calls = atomic_load(&hook_calls);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % 16, 0);
    usable = llmr__secret_size(p);
    assert_true(usable >= (sz ? sz : 1));
    assert_true(all_zero(p, usable)); /* handed out zeroed */
    memset(p, 0xA5, usable);
    llmr__secret_free(p);
    assert_int_equal(atomic_load(&hook_calls), calls + 1);
    if (usable <= 1024) /* a small chunk: its page stays; read it back */
      assert_true(all_zero(p, usable));
  }
  assert_int_equal(atomic_load(&hook_dirty), 0);
  llmr__secret_get_stats(&after);
  assert_int_equal(after.in_use, before.in_use);
  assert_int_equal(after.large, before.large);
#ifdef __linux__
  assert_int_equal(after.dontdump, 1);
#endif
}

/* More chunks than a page holds: more pages; all come back. */
static void test_many_and_reuse(void **state) {
  enum { N = 3000 };
  static unsigned char *p[N];
  llmr__secret_stats before, mid, after;
  size_t i;
  (void)state;
  llmr__secret_get_stats(&before);
  for (i = 0; i < N; i++) {
    size_t sz = 1 + (i * 37) % 900;
    assert_non_null(p[i] = llmr__secret_alloc(sz));
    memset(p[i], (int)(i & 0xff) | 1, sz);
  }
  for (i = 0; i < N; i++) /* no chunk was handed out twice */
    assert_int_equal(p[i][0], (unsigned char)((i & 0xff) | 1));
  llmr__secret_get_stats(&mid);
  assert_int_equal(mid.in_use, before.in_use + N);
  assert_true(mid.pages > before.pages);
  for (i = 0; i < N; i++)
    llmr__secret_free(p[i]);
  llmr__secret_get_stats(&after);
  assert_int_equal(after.in_use, before.in_use);
  assert_int_equal(after.pages, mid.pages); /* pages are kept, reused */
  assert_int_equal(atomic_load(&hook_dirty), 0);
  /* a freed chunk comes back (lock-free) for the next of its class */
  p[0] = llmr__secret_alloc(100);
  llmr__secret_free(p[0]);
  p[1] = llmr__secret_alloc(120);
  assert_ptr_equal(p[0], p[1]);
  llmr__secret_free(p[1]);
}

static void test_strdup(void **state) {
  char *a = llmr__secret_strdup("sk-abc"), *b;
  (void)state;
  assert_string_equal(a, "sk-abc");
  assert_non_null(b = llmr__secret_strndup("sk-abcdef", 4));
  assert_string_equal(b, "sk-a");
  assert_null(llmr__secret_strdup(NULL));
  llmr__secret_free(a);
  llmr__secret_free(b);
  llmr__secret_free(NULL);
}

/* ---- threads ------------------------------------------------------------- */

#define THREADS 8
#define ROUNDS 20000

static atomic_int thread_errors;

static void *worker(void *arg) {
  unsigned seed = (unsigned)(uintptr_t)arg * 2654435761u + 1;
  unsigned char *held[16] = {0};
  size_t sizes[16] = {0};
  unsigned char tag = (unsigned char)(uintptr_t)arg + 1;
  int r, k;
  for (r = 0; r < ROUNDS; r++) {
    size_t sz;
    seed = seed * 1103515245u + 12345u;
    k = (int)((seed >> 8) % 16);
    if (held[k]) {
      size_t i;
      for (i = 0; i < sizes[k]; i++)
        if (held[k][i] != tag) { /* somebody else got the same chunk */
          atomic_fetch_add(&thread_errors, 1);
          break;
        }
      llmr__secret_free(held[k]);
      held[k] = NULL;
      continue;
    }
    sz = (seed >> 16) % 64 == 0 ? 5000 : 1 + (seed >> 12) % 1024;
    if (!(held[k] = llmr__secret_alloc(sz))) {
      atomic_fetch_add(&thread_errors, 1);
      continue;
    }
    sizes[k] = sz;
    memset(held[k], tag, sz);
  }
  for (k = 0; k < 16; k++)
    llmr__secret_free(held[k]);
  return NULL;
}

static void test_threads(void **state) {
  pthread_t th[THREADS];
  llmr__secret_stats before, after;
  uintptr_t t;
  (void)state;
  llmr__secret_get_stats(&before);
  atomic_store(&thread_errors, 0);
  for (t = 0; t < THREADS; t++)
    assert_int_equal(pthread_create(&th[t], NULL, worker, (void *)t), 0);
  for (t = 0; t < THREADS; t++)
    pthread_join(th[t], NULL);
  assert_int_equal(atomic_load(&thread_errors), 0);
  assert_int_equal(atomic_load(&hook_dirty), 0);
  llmr__secret_get_stats(&after);
  assert_int_equal(after.in_use, before.in_use);
  assert_int_equal(after.large, before.large);
}

/* ---- fork ---------------------------------------------------------------- */

/* The child abandons inherited pages: what it allocates never overlaps a
 * chunk its parent's objects hold, and freeing an inherited chunk wipes
 * it without handing it out again. */
static void test_fork(void **state) {
  char *parent = llmr__secret_strdup("parent-secret");
  char *spare = llmr__secret_alloc(16); /* freed in the child only */
  pid_t pid;
  int status;
  (void)state;
  assert_non_null(parent);
  assert_non_null(spare);
  pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    char *c[64];
    int i, bad = 0;
    llmr__secret_set_free_hook(NULL);
    llmr__secret_free(spare);
    for (i = 0; i < 64; i++) {
      c[i] = llmr__secret_alloc(16);
      if (!c[i] || c[i] == spare || c[i] == parent)
        bad = 1;
    }
    /* the inherited copy is readable (or zero with MADV_WIPEONFORK) */
    if (strcmp(parent, "parent-secret") != 0 && parent[0] != '\0')
      bad = 1;
    llmr__secret_free(parent);
    if (!all_zero(parent, 14))
      bad = 1;
    for (i = 0; i < 64; i++)
      llmr__secret_free(c[i]);
    _exit(bad ? 1 : 0);
  }
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  assert_string_equal(parent, "parent-secret");
  llmr__secret_free(parent);
  llmr__secret_free(spare);
}

/* ---- which memory holds what: /proc/self/smaps --------------------------- */

/* 1: the mapping holding addr has VmFlags "dd"; 0: it has not; -1: no
 * /proc or no such mapping. */
static int dontdump_at(const void *addr) {
  FILE *f = fopen("/proc/self/smaps", "r");
  char line[512];
  int in = 0, found = -1;
  uintptr_t a = (uintptr_t)addr;
  if (!f)
    return -1;
  while (fgets(line, sizeof(line), f)) {
    unsigned long lo, hi;
    if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) { /* a mapping's line */
      in = a >= lo && a < hi;
      continue;
    }
    /* "VmFlags: rd wr mr mw me dd ac sd" */
    if (in && strncmp(line, "VmFlags:", 8) == 0) {
      found = strstr(line, " dd") != NULL;
      break;
    }
  }
  fclose(f);
  return found;
}

static int have_proc(void) { return access("/proc/self/smaps", R_OK) == 0; }

static void test_header_names(void **state) {
  static const char *const yes[] = {
      "Authorization", "authorization", "Proxy-Authorization", "x-api-key",
      "X-Goog-Api-Key", "api-key", "Ocp-Apim-Subscription-Key",
      "X-Auth-Token", "Cookie", "client-secret", "x-password",
      "x-credentials"};
  static const char *const no[] = {
      "Content-Type", "Accept", "anthropic-version", "anthropic-beta",
      "HTTP-Referer", "X-Title", "x-keys-used", "", "Expect"};
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
    assert_true(llmr__header_is_secret(yes[i], strlen(yes[i])));
  for (i = 0; i < sizeof(no) / sizeof(no[0]); i++)
    assert_false(llmr__header_is_secret(no[i], strlen(no[i])));
}

/* Credential headers of a request are secret chunks; others are not. */
static void test_request_headers(void **state) {
  llmr_http_request h;
  (void)state;
  memset(&h, 0, sizeof(h));
  assert_int_equal(
      llmr_http_request_add_header(&h, "Content-Type", "application/json"),
      LLMR_OK);
  assert_int_equal(llmr_http_request_add_header(&h, "x-api-key", "sk-ant-1"),
                   LLMR_OK);
  assert_int_equal(llmr__http_request_add_header_cat(&h, "Authorization",
                                                     "Bearer ", "sk-2"),
                   LLMR_OK);
  assert_int_equal(llmr__http_request_add_header_cat(&h, "Authorization",
                                                     "Bearer\r\n", "sk-2"),
                   LLMR_E_INVAL);
  assert_int_equal(h.n_headers, 3);
  assert_string_equal(h.headers[1].value, "sk-ant-1");
  assert_string_equal(h.headers[2].name, "Authorization");
  assert_string_equal(h.headers[2].value, "Bearer sk-2");
  if (have_proc()) {
    assert_int_equal(dontdump_at(h.headers[0].value), 0);
    assert_int_equal(dontdump_at(h.headers[1].value), 1);
    assert_int_equal(dontdump_at(h.headers[2].value), 1);
  }
  llmr__http_request_clear(&h);
  assert_int_equal(atomic_load(&hook_dirty), 0);
}

/* The provider's key (and a credential header from its config) are in
 * dump-excluded memory, and the parsed config no longer holds them. */
static void test_provider_key(void **state) {
  cJSON *conf = cJSON_Parse(
      "{\"api_key\": \"sk-provider-key-123\", \"headers\": "
      "{\"api-key\": \"azure-secret-456\", \"X-Title\": \"app\"}}");
  const llmr__builtin *b = llmr__builtin_find("openai");
  llmr_provider *p = NULL;
  const cJSON *hd;
  size_t i;
  (void)state;
  if (!have_proc()) {
    cJSON_Delete(conf);
    print_message("no /proc/self/smaps: the dd flag cannot be checked\n");
    skip();
  }
  assert_non_null(conf);
  assert_int_equal(llmr__provider_new("openai", b->vt, b, conf, 0, NULL, &p,
                                      NULL, 0),
                   LLMR_OK);
  assert_string_equal(llmr_provider_api_key(p), "sk-provider-key-123");
  assert_int_equal(dontdump_at(llmr_provider_api_key(p)), 1);
  for (i = 0; i < p->n_headers; i++)
    assert_int_equal(dontdump_at(p->headers[i].value),
                     strcmp(p->headers[i].name, "api-key") == 0);
  /* the router's parsed copy: wiped */
  assert_string_equal(llmr__json_str(conf, "api_key"), "");
  hd = cJSON_GetObjectItemCaseSensitive(conf, "headers");
  assert_string_equal(llmr__json_str(hd, "api-key"), "");
  assert_string_equal(llmr__json_str(hd, "X-Title"), "app");
  llmr__provider_free(p);
  cJSON_Delete(conf);
  assert_int_equal(atomic_load(&hook_dirty), 0);
}

/* ---- end to end: a core dump after a call --------------------------------- */

static emu E;
static char core_dir[64]; /* removed by the group teardown */

static void remove_core_dir(void) {
  char cmd[128];
  if (!core_dir[0])
    return;
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", core_dir);
  if (system(cmd) != 0)
    print_message("could not remove %s\n", core_dir);
  core_dir[0] = '\0';
}

/* What gcore will write: every readable mapping without "dd", whole (it
 * writes the mapping's size, not its resident part). */
static unsigned long long dump_bytes(void) {
  FILE *f = fopen("/proc/self/smaps", "r");
  char line[512];
  unsigned long long total = 0, size = 0;
  int readable = 0;
  assert_non_null(f);
  while (fgets(line, sizeof(line), f)) {
    unsigned long lo, hi;
    char perms[8];
    if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) == 3) {
      size = hi - lo;
      readable = perms[0] == 'r';
    } else if (strncmp(line, "VmFlags:", 8) == 0 && readable &&
               !strstr(line, " dd")) {
      total += size;
    }
  }
  fclose(f);
  return total;
}

/* A secret string builder: append s to the secret buffer d of size cap. */
static void sappend(char *d, size_t cap, size_t *len, const char *s) {
  size_t n = strlen(s);
  assert_true(*len + n < cap);
  memcpy(d + *len, s, n);
  *len += n;
}

/* gcore on PATH? */
static int have_gcore(void) {
  const char *path = getenv("PATH");
  char buf[1024];
  const char *p = path ? path : "/usr/bin:/bin";
  while (*p) {
    const char *e = strchr(p, ':');
    size_t n = e ? (size_t)(e - p) : strlen(p);
    snprintf(buf, sizeof(buf), "%.*s/gcore", (int)n, p);
    if (n && access(buf, X_OK) == 0)
      return 1;
    p += n + (e ? 1 : 0);
  }
  return 0;
}

/* Dump this process with gcore into dir; the core's path into out. */
static void dump_self(const char *dir, const char *tag, char *out, size_t n) {
  char prefix[600], pidstr[32], log[700];
  pid_t self = getpid(), pid;
  int status, fd;
  struct stat sb;
  struct statvfs vfs;
  unsigned long long need = dump_bytes(), avail;
  /* never fill the disk: a process with huge mappings (a sanitizer's
   * shadow, say) would make a core of that size */
  assert_int_equal(statvfs(dir, &vfs), 0);
  avail = (unsigned long long)vfs.f_bavail * vfs.f_frsize;
  if (need > (1ULL << 30) || need > avail / 4)
    fail_msg("a core of this process would take %llu MiB (%llu MiB free in "
             "%s): not dumping",
             need >> 20, avail >> 20, dir);
  snprintf(prefix, sizeof(prefix), "%s/%s", dir, tag);
  snprintf(pidstr, sizeof(pidstr), "%ld", (long)self);
  snprintf(log, sizeof(log), "%s.log", prefix);
  pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    if ((fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600)) >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    execlp("gcore", "gcore", "-o", prefix, pidstr, (char *)NULL);
    _exit(127);
  }
  while (waitpid(pid, &status, 0) < 0)
    assert_int_equal(errno, EINTR);
  snprintf(out, n, "%s.%s", prefix, pidstr);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || stat(out, &sb) != 0) {
    char cmd[800];
    snprintf(cmd, sizeof(cmd), "cat '%s' >&2", log);
    if (system(cmd) != 0)
      print_message("(no gcore log)\n");
    fail_msg("gcore could not dump this process (status %d); can gdb "
             "ptrace here?",
             status);
  }
}

/* memmem (a GNU extension) */
static const unsigned char *find(const unsigned char *h, size_t n,
                                 const void *needle, size_t m) {
  const unsigned char *p = h, *end = h + n;
  if (!m || m > n)
    return NULL;
  while ((p = memchr(p, *(const unsigned char *)needle,
                     (size_t)(end - p) - m + 1)) != NULL) {
    if (memcmp(p, needle, m) == 0)
      return p;
    p++;
    if ((size_t)(end - p) < m)
      return NULL;
  }
  return NULL;
}

typedef struct hit {
  uint64_t vaddr; /* where the key (or the part found) starts */
  int part;       /* 0: the whole key, 1: its head only, 2: its tail only */
  int wire;       /* in a CRLF-delimited header line: a request as sent */
  char where[96]; /* the mapping's name */
} hit;

#define HEAD 24 /* "sk-llmr-core-" and 11 random hex digits */
#define TAIL 16 /* the last 16 random hex digits */

/* Whether the key part at seg[off..off+len) sits in an HTTP/1.1 header
 * line as sent: ": " and the header name after a CRLF before it, and (when
 * the key's end is there) a CRLF after it. The library's own copies are
 * NUL-terminated, never CRLF-delimited; only libcurl's request is. */
static int in_wire_line(const unsigned char *seg, size_t segn, size_t off,
                        size_t len, int has_end) {
  size_t i, lim = off > 128 ? off - 128 : 0;
  int colon = 0;
  for (i = off; i-- > lim;) {
    if (seg[i] == ':' && i + 1 < off && seg[i + 1] == ' ')
      colon = 1;
    if (seg[i] == '\n')
      break;
    if (seg[i] < 0x20 || seg[i] > 0x7e)
      return 0;
  }
  if (i == (size_t)-1 || i < lim || i == 0 || seg[i] != '\n' ||
      seg[i - 1] != '\r' || !colon)
    return 0;
  if (has_end)
    return off + len + 2 <= segn && seg[off + len] == '\r' &&
           seg[off + len + 1] == '\n';
  return 1;
}

static void mapping_name(const char *maps, uint64_t addr, char *out,
                         size_t n);

/* Every copy of the key in the core's memory segments, and of its head or
 * its tail alone (a copy whose other end was overwritten, e.g. by the
 * allocator's bookkeeping in a freed block). */
static size_t search_core(const char *path, const char *key, const char *maps,
                          hit *hits, size_t max) {
  int fd = open(path, O_RDONLY);
  struct stat sb;
  const unsigned char *m;
  const Elf64_Ehdr *eh;
  size_t klen = strlen(key), nh = 0, i;
  assert_true(klen > HEAD + TAIL);
  assert_true(fd >= 0);
  assert_int_equal(fstat(fd, &sb), 0);
  m = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
  assert_true(m != MAP_FAILED);
  close(fd);
  eh = (const Elf64_Ehdr *)m;
  assert_memory_equal(eh->e_ident, ELFMAG, SELFMAG);
  assert_int_equal(eh->e_ident[EI_CLASS], ELFCLASS64);
  for (i = 0; i < eh->e_phnum; i++) {
    const Elf64_Phdr *ph =
        (const Elf64_Phdr *)(m + eh->e_phoff + i * eh->e_phentsize);
    const unsigned char *seg = m + ph->p_offset, *at;
    size_t segn = ph->p_filesz, off;
    int pass;
    if (ph->p_type != PT_LOAD || !segn || ph->p_offset > (uint64_t)sb.st_size ||
        segn > (uint64_t)sb.st_size - ph->p_offset)
      continue;
    /* pass 0: heads (whole keys and heads alone); pass 1: tails alone */
    for (pass = 0; pass < 2; pass++) {
      const char *needle = pass ? key + klen - TAIL : key;
      size_t nlen = pass ? TAIL : HEAD;
      for (at = seg; (at = find(at, segn - (size_t)(at - seg), needle,
                                nlen)) != NULL;
           at += nlen) {
        int part;
        off = (size_t)(at - seg);
        if (pass == 0) {
          part = off + klen <= segn && memcmp(at, key, klen) == 0 ? 0 : 1;
        } else {
          if (off >= klen - TAIL &&
              memcmp(at - (klen - TAIL), key, HEAD) == 0)
            continue; /* the tail of a head found in pass 0 */
          part = 2;
        }
        if (nh < max) {
          hit *h = &hits[nh];
          h->vaddr = ph->p_vaddr + off;
          h->part = part;
          h->wire = part == 2
                        ? off + TAIL + 2 <= segn && at[TAIL] == '\r' &&
                              at[TAIL + 1] == '\n'
                        : in_wire_line(seg, segn, off, klen, part == 0);
          mapping_name(maps, h->vaddr, h->where, sizeof(h->where));
        }
        nh++;
      }
    }
  }
  munmap((void *)m, (size_t)sb.st_size);
  return nh;
}

/* The mapping holding addr, from a /proc/self/maps snapshot. */
static void mapping_name(const char *maps, uint64_t addr, char *out,
                         size_t n) {
  const char *l = maps;
  snprintf(out, n, "?");
  while (l && *l) {
    unsigned long lo, hi;
    const char *nl = strchr(l, '\n');
    if (sscanf(l, "%lx-%lx", &lo, &hi) == 2 && addr >= lo && addr < hi) {
      const char *name = l;
      int field;
      size_t len;
      for (field = 0; field < 5 && name; field++) {
        name = strchr(name, ' ');
        while (name && *name == ' ')
          name++;
      }
      len = name ? (size_t)((nl ? nl : name + strlen(name)) - name) : 0;
      if (len)
        snprintf(out, n, "%.*s", (int)len, name);
      else
        snprintf(out, n, "[anonymous]");
      return;
    }
    l = nl ? nl + 1 : NULL;
  }
}

static char *read_maps(void) {
  FILE *f = fopen("/proc/self/maps", "r");
  char *buf = calloc(1, 1 << 20);
  size_t n;
  assert_non_null(f);
  assert_non_null(buf);
  n = fread(buf, 1, (1 << 20) - 1, f);
  buf[n] = '\0';
  fclose(f);
  return buf;
}

/* Search a fresh dump for the key; print what was found. Returns the
 * number of copies that are neither libcurl's request as sent nor on the
 * stack. */
static size_t dump_and_search(const char *dir, const char *tag,
                              const char *label, const char *key,
                              size_t *total) {
  static const char *const part[] = {"", " (head only)", " (tail only)"};
  char core[800], *maps = read_maps();
  hit hits[64];
  size_t n, i, bad = 0;
  dump_self(dir, tag, core, sizeof(core));
  n = search_core(core, key, maps, hits, 64);
  unlink(core);
  free(maps);
  print_message("core %s: %zu cop%s of the key\n", label, n,
                n == 1 ? "y" : "ies");
  assert_true(n <= 64);
  for (i = 0; i < n; i++) {
    int stack = strcmp(hits[i].where, "[stack]") == 0;
    print_message("  0x%llx %s%s: %s\n", (unsigned long long)hits[i].vaddr,
                  hits[i].where, part[hits[i].part],
                  hits[i].wire ? "libcurl's request as sent (CRLF header line)"
                  : stack      ? "stack (a register spill, not a header line)"
                               : "UNEXPECTED: a copy outside libcurl's request");
    if (!hits[i].wire && !stack)
      bad++;
  }
  *total = n;
  return bad;
}

/*
 * A distinctive key, made at run time in secret memory (so that the
 * needle itself is not in the dump), configured through JSON, used for
 * one call to the emulator. Core dumps (gcore) before and after the call
 * may hold it only where the library cannot reach: libcurl's request as
 * sent (freed heap buffers libcurl does not wipe), and stale stack bytes
 * where the dynamic linker's lazy-binding trampoline or a signal frame
 * saved vector registers that had just copied it (docs/NOTES.md, "Secrets
 * in memory"). Every copy is printed with the mapping it is in.
 */
static void test_core_dump(void **state) {
  static const char hexd[] = "0123456789abcdef";
  const char *slugs[] = {"openai/gpt-4o-mini"};
  char *key = llmr__secret_alloc(64), *conf = llmr__secret_alloc(1024);
  unsigned char rnd[16];
  size_t i, len = 0, n;
  llmr_router *r = NULL;
  llmr_request *req;
  llmr_response *resp = NULL;
  FILE *ur;
  (void)state;
#ifndef __linux__
  print_message("not Linux: no gcore, no /proc\n");
  skip();
#endif
#ifdef SANITIZED
  /* ASan and TSan map terabytes of shadow and allocator space; gcore
   * would write all of it */
  print_message("a sanitizer build: its core dump would be terabytes\n");
  skip();
#endif
  if (!have_gcore())
    fail_msg("gcore (from gdb) is not on PATH: this test needs it "
             "(`sh scripts/deps.sh test` installs gdb)");
  assert_non_null(key);
  assert_non_null(conf);
  assert_non_null(ur = fopen("/dev/urandom", "rb"));
  assert_int_equal(fread(rnd, 1, sizeof(rnd), ur), sizeof(rnd));
  fclose(ur);
  memcpy(key, "sk-llmr-core-", 13);
  for (i = 0; i < sizeof(rnd); i++) {
    key[13 + 2 * i] = hexd[rnd[i] >> 4];
    key[14 + 2 * i] = hexd[rnd[i] & 15];
  }
  llmr__wipe(rnd, sizeof(rnd));
  sappend(conf, 1024, &len, "{\"use_env\": false, \"providers\": "
                            "{\"openai\": {\"base_url\": \"");
  sappend(conf, 1024, &len, E.base);
  sappend(conf, 1024, &len, "/v1\", \"api_key\": \"");
  sappend(conf, 1024, &len, key);
  sappend(conf, 1024, &len, "\"}}}");
  assert_int_equal(llmr_router_new(conf, &r), LLMR_OK);
  llmr__secret_free(conf);
#ifdef PR_SET_PTRACER
  (void)prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0); /* Yama */
#endif
  snprintf(core_dir, sizeof(core_dir), "/tmp/llmr-core-XXXXXX");
  assert_non_null(mkdtemp(core_dir));

  /* 1. configured, no call yet */
  assert_int_equal(dump_and_search(core_dir, "before", "before any call", key, &n), 0);

  /* 2. after a call: the library's copies (provider key, request header,
   * the slot's curl header list) must not be there */
  assert_int_equal(llmr_request_new(&req), LLMR_OK);
  assert_int_equal(llmr_request_add_message(req, LLMR_ROLE_USER, "hello"),
                   LLMR_OK);
  assert_int_equal(llmr_complete(r, slugs, 1, req, &resp), LLMR_OK);
  assert_int_equal(dump_and_search(core_dir, "after", "after a call", key, &n), 0);

  remove_core_dir();
  llmr_response_free(resp);
  llmr_request_free(req);
  llmr_router_free(r);
  llmr__secret_free(key);
}

/* One group (tests/run.sh reads the last cmocka summary): the emulator
 * for the end-to-end test, the wipe check for all. */
static int group_setup(void **state) {
  hook_setup(state);
  return emu_start(&E, NULL);
}

static int group_teardown(void **state) {
  remove_core_dir(); /* also after a failed assertion */
  emu_stop(&E);
  return hook_teardown(state);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sizes_and_wipe),
      cmocka_unit_test(test_many_and_reuse),
      cmocka_unit_test(test_strdup),
      cmocka_unit_test(test_threads),
      cmocka_unit_test(test_fork),
      cmocka_unit_test(test_header_names),
      cmocka_unit_test(test_request_headers),
      cmocka_unit_test(test_provider_key),
      cmocka_unit_test(test_core_dump),
  };
  return cmocka_run_group_tests_name("secret", tests, group_setup,
                                     group_teardown);
}
