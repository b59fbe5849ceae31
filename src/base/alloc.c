/* Axon: the allocation shim. The only file that includes jemalloc. Under a
 * sanitizer (AX_USE_JEMALLOC=0) it uses the system allocator so the
 * sanitizer sees every allocation. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

#if AX_USE_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

/* Test-only fail-Nth hook. Relaxed atomics: the hook is set before the
 * tested calls and only needs eventual consistency across threads.
 * fail_countdown counts allocations down to the first one that fails;
 * fail_more is how many more fail right after it (-1: all of them). */
static _Atomic long fail_countdown;
static _Atomic long fail_more;
static _Atomic long fail_count;

void ax__alloc_fail_range(long n, long count) {
  atomic_store_explicit(&fail_more, count < 0 ? -1 : (count > 0 ? count - 1 : 0),
                        memory_order_relaxed);
  atomic_store_explicit(&fail_countdown, count == 0 ? 0 : n, memory_order_relaxed);
}

void ax__alloc_fail_after(long n, int sticky) { ax__alloc_fail_range(n, sticky ? -1 : 1); }

long ax__alloc_failures(void) {
  return atomic_load_explicit(&fail_count, memory_order_relaxed);
}

long ax__alloc_countdown(void) {
  return atomic_load_explicit(&fail_countdown, memory_order_relaxed);
}

static inline int should_fail(void) {
  if (AX_LIKELY(atomic_load_explicit(&fail_countdown, memory_order_relaxed) == 0))
    return 0;
  long left = atomic_fetch_sub_explicit(&fail_countdown, 1, memory_order_relaxed);
  if (left == 1) {
    long more = atomic_load_explicit(&fail_more, memory_order_relaxed);
    if (more < 0) {
      atomic_store_explicit(&fail_countdown, 1, memory_order_relaxed);
    } else if (more > 0) {
      atomic_store_explicit(&fail_more, more - 1, memory_order_relaxed);
      atomic_store_explicit(&fail_countdown, 1, memory_order_relaxed);
    }
    atomic_fetch_add_explicit(&fail_count, 1, memory_order_relaxed);
    return 1;
  }
  if (left <= 0) { /* raced with a reset: undo */
    atomic_store_explicit(&fail_countdown, 0, memory_order_relaxed);
  }
  return 0;
}

/* AXON_TEST_FAIL_ALLOC=N[,COUNT|,sticky] (test-only, docs/hardening.md):
 * read once per process, by the first ax_system_new. */
static _Atomic int env_state; /* 0 unread, 1 not set, 2 armed */
static long env_n;

static bool parse_long(const char *s, char **end, long *out) {
  errno = 0;
  long v = strtol(s, end, 10);
  if (errno || *end == s || v < 0) return false;
  *out = v;
  return true;
}

void ax__alloc_fail_from_env(void) {
  int expect = 0;
  if (!atomic_compare_exchange_strong(&env_state, &expect, 1)) return;
  const char *v = getenv("AXON_TEST_FAIL_ALLOC");
  if (!v || !*v) return;
  char *end;
  long n = 0, count = 1;
  bool ok = parse_long(v, &end, &n) && n > 0;
  if (ok && *end == ',') {
    const char *c = end + 1;
    if (strcmp(c, "sticky") == 0) {
      count = -1;
      end = (char *)c + 6;
    } else {
      ok = parse_long(c, &end, &count) && count > 0;
    }
  }
  if (!ok || *end) {
    fprintf(stderr, "axon: AXON_TEST_FAIL_ALLOC=%s ignored (want N[,COUNT|,sticky], N >= 1)\n", v);
    return;
  }
  env_n = n;
  fprintf(stderr, "axon: AXON_TEST_FAIL_ALLOC: allocation %ld from now fails (%s)\n", n,
          count < 0 ? "and every later one" : count == 1 ? "once" : "and the next ones");
  ax__alloc_fail_range(n, count);
  atomic_store(&env_state, 2);
}

void ax__alloc_env_report(void) {
  if (atomic_load(&env_state) != 2) return;
  long failures = ax__alloc_failures();
  if (failures)
    fprintf(stderr, "axon: AXON_TEST_FAIL_ALLOC: injected=%ld\n", failures);
  else
    fprintf(stderr, "axon: AXON_TEST_FAIL_ALLOC: injected=0 allocations=%ld\n",
            env_n - ax__alloc_countdown());
}

void *ax__alloc(size_t n) {
  if (should_fail()) return NULL;
#if AX_USE_JEMALLOC
  return mallocx(n ? n : 1, 0);
#else
  return malloc(n ? n : 1);
#endif
}

void *ax__calloc(size_t n) {
  if (should_fail()) return NULL;
#if AX_USE_JEMALLOC
  return mallocx(n ? n : 1, MALLOCX_ZERO);
#else
  return calloc(1, n ? n : 1);
#endif
}

void ax__free(void *p, size_t n) {
  if (!p) return;
#if AX_USE_JEMALLOC
  sdallocx(p, n ? n : 1, 0);
#else
  (void)n;
  free(p);
#endif
}

void *ax__alloc_aligned(size_t n, size_t align) {
  if (should_fail()) return NULL;
#if AX_USE_JEMALLOC
  return mallocx(n ? n : 1, MALLOCX_ALIGN(align));
#else
  void *p = NULL;
  if (align < sizeof(void *)) align = sizeof(void *);
  return posix_memalign(&p, align, n ? n : 1) == 0 ? p : NULL;
#endif
}

void ax__free_aligned(void *p, size_t n, size_t align) {
  if (!p) return;
#if AX_USE_JEMALLOC
  sdallocx(p, n ? n : 1, MALLOCX_ALIGN(align));
#else
  (void)n;
  (void)align;
  free(p);
#endif
}

size_t ax__alloc_class(size_t n, size_t align) {
#if AX_USE_JEMALLOC
  return nallocx(n ? n : 1, MALLOCX_ALIGN(align));
#else
  (void)align;
  return n;
#endif
}

void *ax__realloc(void *p, size_t old, size_t n) {
  if (!p) return ax__alloc(n);
  if (should_fail()) return NULL;
#if AX_USE_JEMALLOC
  (void)old;
  return rallocx(p, n ? n : 1, 0);
#else
  (void)old;
  return realloc(p, n ? n : 1);
#endif
}

char *ax__strdup(const char *s, size_t *out_size) {
  size_t n = strlen(s) + 1;
  char *d = ax__alloc(n);
  if (d) memcpy(d, s, n);
  if (out_size) *out_size = n;
  return d;
}
