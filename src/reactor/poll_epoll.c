/* Axon: the Linux poll backend: epoll in edge-triggered mode, plus an eventfd
 * whose writes are coalesced by an atomic flag for cross-thread wakeups (see
 * reactor/poll.h for the contract). */
#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "reactor/poll.h"

/* Events fetched per epoll_wait; a larger caller array is simply not filled
 * beyond it (the rest stay in epoll's ready list for the next wait). */
#define BATCH 128

#define ALL_BITS                                                             \
  ((uint32_t)(AX__POLL_IN | AX__POLL_OUT | AX__POLL_ERR | AX__POLL_HUP |     \
              AX__POLL_RDHUP))

struct ax__poller {
  int epfd;   /* loop thread (immutable after new) */
  int wakefd; /* eventfd; any thread writes, the loop reads */
  /* any: set by wakers with an acq_rel exchange, cleared by the loop with an
   * acq_rel exchange after draining the eventfd. True means "a wakeup is in
   * flight, no need to write again". See ax__poller_wake and consume_wake
   * for why those orders suffice. */
  _Atomic bool wake_pending;
  /* any: a statistic only, so relaxed increments suffice (no other memory
   * is published through it). */
  _Atomic uint64_t wake_writes;
  struct epoll_event buf[BATCH]; /* loop thread only */
};

/* Maps the current errno to a status; errno is left as it is. */
static ax_err sys_err(void) { return errno == ENOMEM ? AX_ENOMEM : AX_ESYS; }

ax_err ax__poller_new(ax__poller **out) {
  ax__poller *p = ax__alloc(sizeof *p);
  if (!p) return AX_ENOMEM;
  atomic_init(&p->wake_pending, false);
  atomic_init(&p->wake_writes, 0);
  p->wakefd = -1;
  p->epfd = epoll_create1(EPOLL_CLOEXEC);
  if (p->epfd >= 0) p->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (p->wakefd >= 0) {
    /* Level-triggered on purpose: an undrained eventfd keeps reporting, so
     * a wakeup can never be lost to a missed edge. The udata is the address
     * of a poller field, which no caller can hold. */
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &p->wakefd};
    if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->wakefd, &ev) == 0) {
      *out = p;
      return AX_OK;
    }
  }
  int saved = errno;
  ax_err err = sys_err();
  if (p->wakefd >= 0) close(p->wakefd);
  if (p->epfd >= 0) close(p->epfd);
  ax__free(p, sizeof *p);
  errno = saved;
  return err;
}

void ax__poller_free(ax__poller *p) {
  if (!p) return;
  close(p->wakefd);
  close(p->epfd);
  ax__free(p, sizeof *p);
}

static ax_err ctl(ax__poller *p, int op, int fd, uint32_t interest,
                  void *udata) {
  if (interest & ~ALL_BITS) return AX_EINVAL;
  /* Always edge-triggered with RDHUP; ERR and HUP are implicit in epoll. */
  uint32_t e = EPOLLET | EPOLLRDHUP;
  if (interest & AX__POLL_IN) e |= EPOLLIN;
  if (interest & AX__POLL_OUT) e |= EPOLLOUT;
  struct epoll_event ev = {.events = e, .data.ptr = udata};
  return epoll_ctl(p->epfd, op, fd, &ev) == 0 ? AX_OK : sys_err();
}

ax_err ax__poller_add(ax__poller *p, int fd, uint32_t interest, void *udata) {
  return ctl(p, EPOLL_CTL_ADD, fd, interest, udata);
}

ax_err ax__poller_mod(ax__poller *p, int fd, uint32_t interest, void *udata) {
  return ctl(p, EPOLL_CTL_MOD, fd, interest, udata);
}

ax_err ax__poller_del(ax__poller *p, int fd) {
  /* A non-NULL event keeps pre-2.6.9 kernels happy; it is ignored. */
  struct epoll_event ev = {0};
  return epoll_ctl(p->epfd, EPOLL_CTL_DEL, fd, &ev) == 0 ? AX_OK : sys_err();
}

/* Drains the eventfd, then clears the flag. The order matters: clearing
 * first would let a waker write the eventfd in between, the read would eat
 * that write, and the flag would stay set with nothing left to wake us. The
 * acq_rel exchange's release half keeps the read (and its kernel accesses)
 * before the clear; its acquire half pairs with the release of every waker
 * whose set the flag carried (a run of exchanges is one release sequence),
 * so their earlier writes are visible once wait returns. */
static void consume_wake(ax__poller *p) {
  uint64_t count;
  ssize_t r;
  do {
    r = read(p->wakefd, &count, sizeof count);
  } while (r < 0 && errno == EINTR);
  atomic_exchange_explicit(&p->wake_pending, false, memory_order_acq_rel);
}

static uint32_t from_epoll(uint32_t e) {
  return (e & EPOLLIN ? AX__POLL_IN : 0u) | (e & EPOLLOUT ? AX__POLL_OUT : 0u) |
         (e & EPOLLERR ? AX__POLL_ERR : 0u) | (e & EPOLLHUP ? AX__POLL_HUP : 0u) |
         (e & EPOLLRDHUP ? AX__POLL_RDHUP : 0u);
}

/* epoll_pwait2 (Linux 5.11; glibc 2.35 wraps it, older ones get the raw
 * syscall), or -1 with ENOSYS where neither exists. */
static int pwait2(int epfd, struct epoll_event *evs, int max, const struct timespec *ts) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 35))
  return epoll_pwait2(epfd, evs, max, ts, NULL);
#elif defined(SYS_epoll_pwait2)
  return (int)syscall(SYS_epoll_pwait2, epfd, evs, max, ts, NULL, (size_t)0);
#else
  (void)epfd, (void)evs, (void)max, (void)ts;
  errno = ENOSYS;
  return -1;
#endif
}

/* The kernel has epoll_pwait2 until a call says ENOSYS. relaxed: every
 * thread finds the same answer; the flag only saves the failed calls. */
static _Atomic bool no_pwait2;

void ax__poller_test_no_pwait2(bool on) { atomic_store_explicit(&no_pwait2, on, memory_order_relaxed); }

/* One epoll wait of timeout_ns (negative: forever). */
static int wait_ns(ax__poller *p, int max, int64_t timeout_ns) {
  if (timeout_ns > 0 && !atomic_load_explicit(&no_pwait2, memory_order_relaxed)) {
    struct timespec ts = {(time_t)(timeout_ns / 1000000000), (long)(timeout_ns % 1000000000)};
    int n = pwait2(p->epfd, p->buf, max, &ts);
    if (n >= 0 || errno != ENOSYS) return n;
    atomic_store_explicit(&no_pwait2, true, memory_order_relaxed);
  }
  int ms = -1;
  if (timeout_ns >= 0) {
    int64_t up = timeout_ns / 1000000 + (timeout_ns % 1000000 != 0); /* never shorter */
    ms = up > INT_MAX ? INT_MAX : (int)up;
  }
  return epoll_wait(p->epfd, p->buf, max, ms);
}

ax_err ax__poller_wait(ax__poller *p, ax__poll_event *evs, int max,
                       int timeout_ms, int *n_out) {
  return ax__poller_wait_ns(p, evs, max, timeout_ms < 0 ? -1 : (int64_t)timeout_ms * 1000000, n_out);
}

ax_err ax__poller_wait_ns(ax__poller *p, ax__poll_event *evs, int max,
                          int64_t timeout_ns, int *n_out) {
  *n_out = 0;
  if (!evs || max < 1) return AX_EINVAL;
  int n = wait_ns(p, max < BATCH ? max : BATCH, timeout_ns);
  if (n < 0) return errno == EINTR ? AX_OK : sys_err();
  int k = 0;
  for (int i = 0; i < n; i++) {
    if (p->buf[i].data.ptr == &p->wakefd) {
      consume_wake(p);
      continue;
    }
    evs[k].udata = p->buf[i].data.ptr;
    evs[k].events = from_epoll(p->buf[i].events);
    k++;
  }
  *n_out = k;
  return AX_OK;
}

void ax__poller_wake(ax__poller *p) {
  /* Release publishes the caller's earlier writes: a waker that finds the
   * flag already set skips the write, yet its exchange sits in the release
   * sequence that the loop's clearing exchange reads, so the loop still sees
   * those writes. Acquire: if this exchange reads the loop's clear, the
   * loop's eventfd drain happens-before our write below, so that drain
   * cannot have eaten it and left the flag set with nothing to wake on. */
  if (atomic_exchange_explicit(&p->wake_pending, true, memory_order_acq_rel))
    return;
  int saved = errno; /* callable from any context: leave errno alone */
  uint64_t one = 1;
  ssize_t r;
  /* EAGAIN means the counter is already non-zero: a wakeup is pending. */
  do {
    r = write(p->wakefd, &one, sizeof one);
  } while (r < 0 && errno == EINTR);
  atomic_fetch_add_explicit(&p->wake_writes, 1, memory_order_relaxed);
  errno = saved;
}

uint64_t ax__poller_wake_writes(const ax__poller *p) {
  /* Relaxed: a statistic, read without ordering anything else. */
  return atomic_load_explicit(&p->wake_writes, memory_order_relaxed);
}
