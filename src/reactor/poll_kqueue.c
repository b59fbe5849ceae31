/* Axon: the BSD/macOS poll backend: kqueue with EV_CLEAR (edge-triggered),
 * one read and one write filter per fd, plus a non-blocking pipe whose writes
 * are coalesced by an atomic flag for cross-thread wakeups (see reactor/poll.h for
 * the contract). Differences from epoll, inherent to kqueue: add on an fd
 * already added updates it instead of failing with EEXIST, mod of an unknown
 * fd registers it, a readable-and-writable fd yields two events, and HUP
 * comes only from the write filter (EV_EOF there), RDHUP from the read one. */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/types.h>
#include <sys/event.h>
#include <sys/time.h>
#include <unistd.h>

#include "base/base.h"
#include "reactor/poll.h"

/* Events fetched per kevent; a larger caller array is simply not filled
 * beyond it (the rest are returned by the next wait). */
#define BATCH 128

#define ALL_BITS                                                             \
  ((uint32_t)(AX__POLL_IN | AX__POLL_OUT | AX__POLL_ERR | AX__POLL_HUP |     \
              AX__POLL_RDHUP))

struct ax__poller {
  int kq;      /* loop thread (immutable after new) */
  int wake_rd; /* pipe read end: the loop drains it */
  int wake_wr; /* pipe write end: any thread writes one byte */
  /* any: set by wakers with an acq_rel exchange, cleared by the loop with an
   * acq_rel exchange after draining the pipe. True means "a wakeup is in
   * flight, no need to write again". See ax__poller_wake and consume_wake
   * for why those orders suffice. */
  _Atomic bool wake_pending;
  /* any: a statistic only, so relaxed increments suffice (no other memory
   * is published through it). */
  _Atomic uint64_t wake_writes;
  struct kevent buf[BATCH]; /* loop thread only */
};

/* Maps the current errno to a status; errno is left as it is. */
static ax_err sys_err(void) { return errno == ENOMEM ? AX_ENOMEM : AX_ESYS; }

/* Applies one filter change. kevent without an event list does not wait, so
 * EINTR is only retried for form's sake. */
static int change(ax__poller *p, int fd, int filter, int flags, void *udata) {
  struct kevent kev;
  EV_SET(&kev, (uintptr_t)fd, filter, flags, 0, 0, udata);
  int r;
  do {
    r = kevent(p->kq, &kev, 1, NULL, 0, NULL);
  } while (r < 0 && errno == EINTR);
  return r;
}

static int set_flags(int fd, bool nonblock) {
  if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) return -1;
  return nonblock ? fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) : 0;
}

/* Opens the kqueue and the wakeup pipe and registers the pipe (level
 * triggered: an undrained pipe keeps reporting, so no wakeup is lost). The
 * udata is the address of a poller field, which no caller can hold. */
static int open_fds(ax__poller *p) {
  int fds[2];
  if ((p->kq = kqueue()) < 0 || set_flags(p->kq, false) < 0) return -1;
  if (pipe(fds) < 0) return -1;
  p->wake_rd = fds[0];
  p->wake_wr = fds[1];
  if (set_flags(p->wake_rd, true) < 0 || set_flags(p->wake_wr, true) < 0)
    return -1;
  return change(p, p->wake_rd, EVFILT_READ, EV_ADD, &p->wake_rd);
}

ax_err ax__poller_new(ax__poller **out) {
  ax__poller *p = ax__alloc(sizeof *p);
  if (!p) return AX_ENOMEM;
  atomic_init(&p->wake_pending, false);
  atomic_init(&p->wake_writes, 0);
  p->kq = p->wake_rd = p->wake_wr = -1;
  if (open_fds(p) == 0) {
    *out = p;
    return AX_OK;
  }
  int saved = errno;
  ax_err err = sys_err();
  if (p->wake_wr >= 0) close(p->wake_wr);
  if (p->wake_rd >= 0) close(p->wake_rd);
  if (p->kq >= 0) close(p->kq);
  ax__free(p, sizeof *p);
  errno = saved;
  return err;
}

void ax__poller_free(ax__poller *p) {
  if (!p) return;
  close(p->wake_wr);
  close(p->wake_rd);
  close(p->kq);
  ax__free(p, sizeof *p);
}

/* Brings fd's two filters in line with interest. With no interest at all a
 * disabled read filter is kept, so the fd stays registered and del finds
 * it. Deleting a filter that is not there is not an error. */
static ax_err apply(ax__poller *p, int fd, uint32_t interest, void *udata) {
  if (interest & ~ALL_BITS) return AX_EINVAL;
  bool rd = interest & AX__POLL_IN, wr = interest & AX__POLL_OUT;
  int rf = rd   ? EV_ADD | EV_ENABLE | EV_CLEAR
           : wr ? EV_DELETE
                : EV_ADD | EV_DISABLE | EV_CLEAR;
  int wf = wr ? EV_ADD | EV_ENABLE | EV_CLEAR : EV_DELETE;
  if (change(p, fd, EVFILT_READ, rf, udata) < 0 &&
      !(rf == EV_DELETE && errno == ENOENT))
    return sys_err();
  if (change(p, fd, EVFILT_WRITE, wf, udata) < 0 &&
      !(wf == EV_DELETE && errno == ENOENT))
    return sys_err();
  return AX_OK;
}

ax_err ax__poller_add(ax__poller *p, int fd, uint32_t interest, void *udata) {
  ax_err err = apply(p, fd, interest, udata);
  if (err == AX_ESYS || err == AX_ENOMEM) {
    int saved = errno; /* undo a half-made registration, keep the cause */
    (void)ax__poller_del(p, fd);
    errno = saved;
  }
  return err;
}

ax_err ax__poller_mod(ax__poller *p, int fd, uint32_t interest, void *udata) {
  return apply(p, fd, interest, udata);
}

ax_err ax__poller_del(ax__poller *p, int fd) {
  int r = change(p, fd, EVFILT_READ, EV_DELETE, NULL);
  int rerr = errno;
  int w = change(p, fd, EVFILT_WRITE, EV_DELETE, NULL);
  if (r == 0 || w == 0) return AX_OK;
  if (rerr != ENOENT) errno = rerr; /* report the more telling failure */
  return sys_err();
}

/* Drains the pipe, then clears the flag. The order matters: clearing first
 * would let a waker write in between, the drain would eat that byte, and the
 * flag would stay set with nothing left to wake us. The acq_rel exchange's
 * release half keeps the drain before the clear; its acquire half pairs with
 * the release of every waker whose set the flag carried (a run of exchanges
 * is one release sequence), so their writes are visible once wait returns. */
static void consume_wake(ax__poller *p) {
  char sink[64];
  ssize_t r;
  do {
    r = read(p->wake_rd, sink, sizeof sink);
  } while (r > 0 || (r < 0 && errno == EINTR));
  atomic_exchange_explicit(&p->wake_pending, false, memory_order_acq_rel);
}

static uint32_t from_kevent(const struct kevent *ev) {
  if (ev->flags & EV_ERROR) return AX__POLL_ERR;
  /* On EV_EOF, fflags holds the socket error, if any. */
  uint32_t err = (ev->flags & EV_EOF) && ev->fflags ? AX__POLL_ERR : 0u;
  if (ev->filter == EVFILT_READ)
    return AX__POLL_IN | err | (ev->flags & EV_EOF ? AX__POLL_RDHUP : 0u);
  return AX__POLL_OUT | err | (ev->flags & EV_EOF ? AX__POLL_HUP : 0u);
}

ax_err ax__poller_wait(ax__poller *p, ax__poll_event *evs, int max,
                       int timeout_ms, int *n_out) {
  return ax__poller_wait_ns(p, evs, max, timeout_ms < 0 ? -1 : (int64_t)timeout_ms * 1000000, n_out);
}

ax_err ax__poller_wait_ns(ax__poller *p, ax__poll_event *evs, int max,
                          int64_t timeout_ns, int *n_out) {
  *n_out = 0;
  if (!evs || max < 1) return AX_EINVAL;
  struct timespec ts = {(time_t)(timeout_ns / 1000000000), (long)(timeout_ns % 1000000000)};
  int n = kevent(p->kq, NULL, 0, p->buf, max < BATCH ? max : BATCH,
                 timeout_ns < 0 ? NULL : &ts);
  if (n < 0) return errno == EINTR ? AX_OK : sys_err();
  int k = 0;
  for (int i = 0; i < n; i++) {
    if (p->buf[i].udata == (void *)&p->wake_rd) {
      consume_wake(p);
      continue;
    }
    evs[k].udata = p->buf[i].udata;
    evs[k].events = from_kevent(&p->buf[i]);
    k++;
  }
  *n_out = k;
  return AX_OK;
}

void ax__poller_test_no_pwait2(bool on) { (void)on; }

void ax__poller_wake(ax__poller *p) {
  /* Release publishes the caller's earlier writes: a waker that finds the
   * flag already set skips the write, yet its exchange sits in the release
   * sequence that the loop's clearing exchange reads, so the loop still sees
   * those writes. Acquire: if this exchange reads the loop's clear, the
   * loop's drain happens-before our write below, so that drain cannot have
   * eaten it and left the flag set with nothing to wake on. */
  if (atomic_exchange_explicit(&p->wake_pending, true, memory_order_acq_rel))
    return;
  int saved = errno; /* callable from any context: leave errno alone */
  char one = 1;
  ssize_t r;
  /* EAGAIN means the pipe is full of unread wakeups: nothing to add. */
  do {
    r = write(p->wake_wr, &one, 1);
  } while (r < 0 && errno == EINTR);
  atomic_fetch_add_explicit(&p->wake_writes, 1, memory_order_relaxed);
  errno = saved;
}

uint64_t ax__poller_wake_writes(const ax__poller *p) {
  /* Relaxed: a statistic, read without ordering anything else. */
  return atomic_load_explicit(&p->wake_writes, memory_order_relaxed);
}
