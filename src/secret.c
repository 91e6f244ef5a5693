/*
 * Secret storage: memory for the library's copies of API keys and of the
 * header lines that carry them, kept out of core dumps.
 *
 * Memory comes from anonymous private mmap() pages marked
 * madvise(MADV_DONTDUMP) (FreeBSD: MADV_NOCORE), so neither the kernel's
 * core dump nor gdb's gcore writes them, and mlock()ed where
 * RLIMIT_MEMLOCK allows (never swapped; a failure is ignored). A request
 * of up to 1 KiB gets a chunk of a power-of-two class (16..1024 bytes)
 * from a page of that class; anything larger gets a mapping of its own,
 * unmapped when freed. Freeing wipes the whole chunk first, so a free
 * chunk is all zeros and every allocation comes back zeroed.
 *
 * Pages start with a header (class, bitmap of chunks in use) and are found
 * from a chunk by rounding its address down to the page, so freeing needs
 * no lookup. The bitmaps are under one mutex; in front of it, each class
 * keeps up to MAG_SLOTS freed chunks in an array of atomic pointers (taken
 * with an exchange, put back with a compare-and-swap: no ABA, since a slot
 * only ever holds one owner's pointer). A call's header value is one chunk
 * taken from and returned to that array, so the per-call path takes no
 * lock and makes no system call.
 *
 * Small pages are never unmapped (the library holds a few keys), only
 * reused. After fork() the child abandons every page it inherited (their
 * chunks stay valid and are still wiped when freed, but are not reused),
 * so a child never hands out memory its parent's objects still hold.
 *
 * MADV_WIPEONFORK is not applied unless built with -DLLMR_SECRET_WIPEONFORK:
 * MADV_DONTDUMP is inherited by a child anyway, and wipe-on-fork would
 * silently empty the keys of a router created before fork() (docs/NOTES.md,
 * "Secrets in memory").
 *
 * Without MADV_DONTDUMP/MADV_NOCORE (not Linux, not a BSD) secrets live in
 * the ordinary heap, still wiped before free(); llmr__secret_get_stats()
 * says which.
 */
#include "internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(MADV_DONTDUMP)
#define LLMR__MADV_NODUMP MADV_DONTDUMP
#elif defined(MADV_NOCORE)
#define LLMR__MADV_NODUMP MADV_NOCORE
#endif

#if !defined(MAP_ANONYMOUS) && defined(MAP_ANON)
#define MAP_ANONYMOUS MAP_ANON
#endif

void llmr__wipe(void *p, size_t n) {
  if (!p || !n)
    return;
#if (defined(__GLIBC__) &&                                                     \
     (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 25))) ||          \
    defined(__OpenBSD__) || defined(__FreeBSD__)
  explicit_bzero(p, n);
#else
  {
    /* a call through a volatile pointer cannot be proven dead */
    static void *(*const volatile memset_v)(void *, int, size_t) = memset;
    memset_v(p, 0, n);
  }
#endif
}

static llmr__secret_free_hook free_hook;

void llmr__secret_set_free_hook(llmr__secret_free_hook hook) {
  free_hook = hook;
}

char *llmr__secret_strndup(const char *s, size_t n) {
  char *d;
  if (!s || n == SIZE_MAX || !(d = llmr__secret_alloc(n + 1)))
    return NULL;
  memcpy(d, s, n);
  d[n] = '\0'; /* already zero; said for the reader */
  return d;
}

char *llmr__secret_strdup(const char *s) {
  return s ? llmr__secret_strndup(s, strlen(s)) : NULL;
}

#ifdef LLMR__MADV_NODUMP

#define MAGIC_SMALL 0x53726d6cu
#define MAGIC_LARGE 0x4c726d6cu
#define MIN_SHIFT 4                            /* 16-byte chunks */
#define N_CLASS 7                              /* 16 .. 1024 */
#define MAX_SMALL ((size_t)1 << (MIN_SHIFT + N_CLASS - 1))
#define MAG_SLOTS 32

/* The header at the start of every page of chunks and of every large
 * mapping. */
typedef struct spage {
  uint32_t magic;
  unsigned gen;       /* the fork generation that mapped it */
  unsigned cls;       /* small: the class */
  unsigned nfree;     /* small: chunks not in use */
  unsigned nchunks;   /* small */
  size_t len;         /* the mapping's length */
  struct spage *next; /* small: the next page of the class */
  uint64_t bits[];    /* small: 1 = in use (or parked in the magazine) */
} spage;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static size_t pagesz; /* set once */
static size_t hdrsz;  /* header bytes before the first chunk, 16-aligned */
static spage *pages[N_CLASS];     /* under mu */
static size_t n_pages;            /* under mu */
static atomic_size_t n_large;     /* large mappings alive */
static atomic_uint gen;           /* bumped in a forked child */
static _Atomic(void *) mag[N_CLASS][MAG_SLOTS];

static void fork_prepare(void) { pthread_mutex_lock(&mu); }
static void fork_parent(void) { pthread_mutex_unlock(&mu); }

/* The child is single-threaded here. Every page it inherited is abandoned
 * (see the top of the file); mappings stay, so pointers into them stay
 * valid. */
static void fork_child(void) {
  int c, i;
  atomic_fetch_add(&gen, 1u);
  for (c = 0; c < N_CLASS; c++) {
    pages[c] = NULL;
    for (i = 0; i < MAG_SLOTS; i++)
      atomic_store_explicit(&mag[c][i], NULL, memory_order_relaxed);
  }
  n_pages = 0;
  atomic_store(&n_large, 0);
  pthread_mutex_unlock(&mu);
}

static void init(void) {
  long ps = sysconf(_SC_PAGESIZE);
  size_t words;
  pagesz = ps > 0 ? (size_t)ps : 4096;
  /* enough bits for a page of the smallest class */
  words = (pagesz >> MIN_SHIFT) / 64 + 1;
  hdrsz = (offsetof(spage, bits) + words * sizeof(uint64_t) + 15) & ~(size_t)15;
  pthread_atfork(fork_prepare, fork_parent, fork_child);
}

static spage *page_of(const void *p) {
  return (spage *)((uintptr_t)p & ~(uintptr_t)(pagesz - 1));
}

/* A fresh mapping of len bytes (a multiple of the page size), zeroed. */
static void *map_secret(size_t len) {
  void *m = mmap(NULL, len, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED)
    return NULL;
  /* Best effort, both: an old kernel without the advice still gets wiped
   * memory, and mlock is limited by RLIMIT_MEMLOCK. */
  (void)madvise(m, len, LLMR__MADV_NODUMP);
#if defined(MADV_WIPEONFORK) && defined(LLMR_SECRET_WIPEONFORK)
  (void)madvise(m, len, MADV_WIPEONFORK);
#endif
  (void)mlock(m, len);
  return m;
}

static size_t class_of(size_t n) {
  size_t c = 0;
  while (((size_t)1 << (MIN_SHIFT + c)) < n)
    c++;
  return c;
}

/* Under mu. */
static void *small_alloc_locked(size_t c) {
  size_t csize = (size_t)1 << (MIN_SHIFT + c), i;
  spage *pg;
  for (pg = pages[c]; pg && !pg->nfree; pg = pg->next)
    ;
  if (!pg) {
    if (!(pg = map_secret(pagesz)))
      return NULL;
    pg->magic = MAGIC_SMALL;
    pg->gen = atomic_load(&gen);
    pg->cls = (unsigned)c;
    pg->nchunks = (unsigned)((pagesz - hdrsz) / csize);
    pg->nfree = pg->nchunks;
    pg->len = pagesz;
    pg->next = pages[c];
    pages[c] = pg;
    n_pages++;
  }
  for (i = 0; i < pg->nchunks; i++)
    if (!(pg->bits[i / 64] & ((uint64_t)1 << (i % 64))))
      break;
  pg->bits[i / 64] |= (uint64_t)1 << (i % 64);
  pg->nfree--;
  return (char *)pg + hdrsz + i * csize;
}

static void *large_alloc(size_t n) {
  size_t len;
  spage *pg;
  if (n > SIZE_MAX - hdrsz - pagesz)
    return NULL;
  len = (hdrsz + n + pagesz - 1) & ~(pagesz - 1);
  if (!(pg = map_secret(len)))
    return NULL;
  pg->magic = MAGIC_LARGE;
  pg->gen = atomic_load(&gen);
  pg->len = len;
  atomic_fetch_add(&n_large, 1);
  return (char *)pg + hdrsz;
}

void *llmr__secret_alloc(size_t n) {
  size_t c, i;
  void *p;
  if (n <= MAX_SMALL) {
    c = class_of(n ? n : 1);
    /* the lock-free path: a chunk freed earlier, already wiped (its page
     * was mapped after init() ran, and the exchange orders us after it) */
    for (i = 0; i < MAG_SLOTS; i++)
      if (atomic_load_explicit(&mag[c][i], memory_order_relaxed) &&
          (p = atomic_exchange_explicit(&mag[c][i], NULL,
                                        memory_order_acquire)))
        return p;
  }
  pthread_once(&once, init);
  if (n > MAX_SMALL)
    return large_alloc(n);
  pthread_mutex_lock(&mu);
  p = small_alloc_locked(c);
  pthread_mutex_unlock(&mu);
  return p;
}

size_t llmr__secret_size(const void *p) {
  const spage *pg;
  if (!p)
    return 0;
  pthread_once(&once, init);
  pg = page_of(p);
  if (pg->magic == MAGIC_SMALL)
    return (size_t)1 << (MIN_SHIFT + pg->cls);
  if (pg->magic == MAGIC_LARGE)
    return pg->len - hdrsz;
  return 0;
}

void llmr__secret_free(void *p) {
  spage *pg;
  size_t i, n, c;
  if (!p)
    return;
  /* p came from llmr__secret_alloc, so init() has run before */
  pg = page_of(p);
  if (pg->magic == MAGIC_LARGE) {
    n = pg->len - hdrsz;
    llmr__wipe(p, n);
    if (free_hook)
      free_hook(p, n);
    if (pg->gen == atomic_load_explicit(&gen, memory_order_relaxed))
      atomic_fetch_sub(&n_large, 1);
    munmap(pg, pg->len);
    return;
  }
  /* Not ours to account for any more: a page zeroed by MADV_WIPEONFORK in
   * a forked child (nothing left to wipe) */
  if (pg->magic != MAGIC_SMALL)
    return;
  c = pg->cls;
  n = (size_t)1 << (MIN_SHIFT + c);
  llmr__wipe(p, n);
  if (free_hook)
    free_hook(p, n);
  if (pg->gen != atomic_load_explicit(&gen, memory_order_relaxed))
    return; /* inherited across fork(): abandoned, wiped, never reused */
  for (i = 0; i < MAG_SLOTS; i++) {
    void *expect = NULL;
    if (!atomic_load_explicit(&mag[c][i], memory_order_relaxed) &&
        atomic_compare_exchange_strong_explicit(&mag[c][i], &expect, p,
                                                memory_order_release,
                                                memory_order_relaxed))
      return;
  }
  i = (size_t)((char *)p - ((char *)pg + hdrsz)) / n;
  pthread_mutex_lock(&mu);
  pg->bits[i / 64] &= ~((uint64_t)1 << (i % 64));
  pg->nfree++;
  pthread_mutex_unlock(&mu);
}

void llmr__secret_get_stats(llmr__secret_stats *s) {
  size_t c, i;
  spage *pg;
  memset(s, 0, sizeof(*s));
  pthread_once(&once, init);
  s->dontdump = 1;
  s->page_size = pagesz;
  pthread_mutex_lock(&mu);
  s->pages = n_pages;
  for (c = 0; c < N_CLASS; c++) {
    for (pg = pages[c]; pg; pg = pg->next)
      s->in_use += pg->nchunks - pg->nfree;
    for (i = 0; i < MAG_SLOTS; i++)
      if (atomic_load(&mag[c][i])) {
        s->cached++;
        s->in_use--;
      }
  }
  pthread_mutex_unlock(&mu);
  s->large = atomic_load(&n_large);
}

#else /* no MADV_DONTDUMP: the heap, wiped (documented in docs/NOTES.md) */

/* The size before the bytes, so that free can wipe all of them. */
#define HDR 16

static atomic_size_t n_live;

void *llmr__secret_alloc(size_t n) {
  unsigned char *b;
  if (n > SIZE_MAX - HDR || !(b = calloc(1, HDR + (n ? n : 1))))
    return NULL;
  memcpy(b, &n, sizeof(n));
  atomic_fetch_add(&n_live, 1);
  return b + HDR;
}

size_t llmr__secret_size(const void *p) {
  size_t n = 0;
  if (p)
    memcpy(&n, (const unsigned char *)p - HDR, sizeof(n));
  return n;
}

void llmr__secret_free(void *p) {
  size_t n;
  if (!p)
    return;
  n = llmr__secret_size(p);
  llmr__wipe(p, n);
  if (free_hook)
    free_hook(p, n);
  atomic_fetch_sub(&n_live, 1);
  free((unsigned char *)p - HDR);
}

void llmr__secret_get_stats(llmr__secret_stats *s) {
  long ps = sysconf(_SC_PAGESIZE);
  memset(s, 0, sizeof(*s));
  s->page_size = ps > 0 ? (size_t)ps : 4096;
  s->in_use = atomic_load(&n_live);
}

#endif
