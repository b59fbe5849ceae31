/* Axon: the allocation shim. The only file that includes jemalloc. Under a
 * sanitizer (AX_USE_JEMALLOC=0) it uses the system allocator so the
 * sanitizer sees every allocation. */
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

#if AX_USE_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

/* Test-only fail-Nth hook. Relaxed atomics: the hook is set before the
 * tested calls and only needs eventual consistency across threads. */
static _Atomic long fail_countdown;
static _Atomic int fail_sticky;
static _Atomic long fail_count;

void ax__alloc_fail_after(long n, int sticky) {
  atomic_store_explicit(&fail_sticky, sticky, memory_order_relaxed);
  atomic_store_explicit(&fail_countdown, n, memory_order_relaxed);
}

long ax__alloc_failures(void) {
  return atomic_load_explicit(&fail_count, memory_order_relaxed);
}

static inline int should_fail(void) {
  if (AX_LIKELY(atomic_load_explicit(&fail_countdown, memory_order_relaxed) == 0))
    return 0;
  long left = atomic_fetch_sub_explicit(&fail_countdown, 1, memory_order_relaxed);
  if (left == 1) {
    if (atomic_load_explicit(&fail_sticky, memory_order_relaxed))
      atomic_store_explicit(&fail_countdown, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&fail_count, 1, memory_order_relaxed);
    return 1;
  }
  if (left <= 0) { /* raced with a reset: undo */
    atomic_store_explicit(&fail_countdown, 0, memory_order_relaxed);
  }
  return 0;
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
