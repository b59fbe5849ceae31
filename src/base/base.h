/* Axon: the base layer every src/ folder may use: the allocation shim,
 * assertions, the monotonic clock, the cache-line size. Internal. */
#ifndef AX_BASE_H
#define AX_BASE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "axon/error.h"

#define AX_CACHELINE 64

#ifndef AX_DEBUG
#define AX_DEBUG 1
#endif

/* Internal invariants only; never on user or network input. Always compiled,
 * gated by a constant, no side effects in e. */
#define AX_ASSERT(e)                                                         \
  do {                                                                       \
    if (AX_DEBUG && !(e)) ax__assert_fail(#e, __FILE__, __LINE__);           \
  } while (0)

_Noreturn void ax__assert_fail(const char *expr, const char *file, int line);

#define AX_LIKELY(x) __builtin_expect(!!(x), 1)
#define AX_UNLIKELY(x) __builtin_expect(!!(x), 0)
/* Out of line and opaque to interprocedural analysis, so a caller's tail
 * jump keeps its arguments in place (gcc's noipa; clang has no such
 * attribute, so there it is noinline only). */
#if defined(__clang__)
#define AX_NOIPA __attribute__((noinline))
#else
#define AX_NOIPA __attribute__((noinline, noipa))
#endif

/* Allocation shim: jemalloc (mallocx/sdallocx) in normal builds, the system
 * allocator under sanitizers. ax__alloc returns NULL on failure (never
 * aborts). ax__free takes the size given to ax__alloc (sized free). */
void *ax__alloc(size_t n);
void *ax__calloc(size_t n);
void ax__free(void *p, size_t n);
/* Aligned allocation (align is a power of two <= 4096); free with
 * ax__free_aligned and the same size and alignment. */
void *ax__alloc_aligned(size_t n, size_t align);
void ax__free_aligned(void *p, size_t n, size_t align);
/* The bytes an ax__alloc_aligned(n, align) block really takes: jemalloc's
 * size class (nallocx); without jemalloc, n (the system allocator does not
 * say). For footprint checks. Thread: any. */
size_t ax__alloc_class(size_t n, size_t align);
/* ax__realloc grows or shrinks p from old to n bytes; NULL on failure with p
 * untouched. */
void *ax__realloc(void *p, size_t old, size_t n);
char *ax__strdup(const char *s, size_t *out_size);

/* The one checked size computation for every "header + payload" allocation
 * (messages, timers, buffers): *out = hdr + len, or false when the sum
 * overflows or exceeds AX__ALLOC_MAX (PTRDIFF_MAX: no C object can be larger,
 * and allocators refuse such sizes). Callers turn false into AX_ENOMEM, or
 * AX_EINVAL where their contract says so, before touching the payload. */
#define AX__ALLOC_MAX ((size_t)PTRDIFF_MAX)
static inline bool ax__size_add(size_t hdr, size_t len, size_t *out) {
  if (len > AX__ALLOC_MAX || hdr > AX__ALLOC_MAX - len) return false;
  *out = hdr + len;
  return true;
}

/* Test hook: make the Nth allocation from now fail (1 = the next one), and
 * every one after it when sticky is set; 0 disables. Thread: any. */
void ax__alloc_fail_after(long n, int sticky);
/* Generalised: allocation n from now fails, and the count-1 after it
 * (count < 0: every one from n on; count 0 disables). Thread: any. */
void ax__alloc_fail_range(long n, long count);
/* Number of allocations failed by the hook so far. */
long ax__alloc_failures(void);
/* Allocations left before the next injected failure (0: hook off). */
long ax__alloc_countdown(void);
/* Test-only, for programs run as processes (the example servers): reads
 * AXON_TEST_FAIL_ALLOC=N[,COUNT|,sticky] once per process and arms the hook
 * with it (N counted from this call; COUNT consecutive failures, default 1;
 * sticky: every one from N on). A malformed value is ignored with a line on
 * stderr. Called by ax_system_new. ax__alloc_env_report prints, when the
 * variable armed the hook, "axon: AXON_TEST_FAIL_ALLOC: injected=<k>" and,
 * when k is 0, "allocations=<a>" (how many were counted) on stderr; called
 * by ax_system_free. Never set it in production: allocations fail on
 * purpose. Thread: any. */
void ax__alloc_fail_from_env(void);
void ax__alloc_env_report(void);

/* The release function of a buffer made by ax_buf_wrap (NULL otherwise):
 * lets the socket layer recognise its own read slabs. Thread: any. */
#include "axon/buf.h"
ax_buf_free_fn ax__buf_free_fn(const ax_buf *b);

/* Monotonic clock. */
uint64_t ax__now_ns(void);
static inline uint64_t ax__now_ms(void) { return ax__now_ns() / 1000000u; }

/* Monotonic condition variables (CLOCK_MONOTONIC). ax__cond_wait_until
 * waits once on cv (mutex held) until signalled or the absolute monotonic
 * deadline in ns (0 = no deadline); returns false once the deadline has
 * passed. Callers loop on their own predicate. */
#include <pthread.h>
void ax__cond_init_monotonic(pthread_cond_t *cv);
bool ax__cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *m, uint64_t deadline_ns);

/* Spin-wait hint for short waits. */
static inline void ax__cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

#endif
