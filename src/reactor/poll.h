/* Axon: the reactor's readiness poller, a thin edge-triggered wrapper over
 * epoll (Linux, poll_epoll.c) or kqueue (BSD/macOS, poll_kqueue.c), chosen by
 * CMake, with a coalescing cross-thread wakeup. Internal to src/ (the
 * reactor loop, reactor.h, is built on it).
 *
 * Thread: every function is loop-thread only (the thread driving the
 * reactor that owns the poller: inside a pass, under its drive lock), except ax__poller_wake and ax__poller_wake_writes (any).
 *
 * The errors below are epoll's; kqueue differs where it must (add of a known
 * fd updates it, mod of an unknown fd registers it, HUP comes only with
 * OUT interest): see the head of poll_kqueue.c. */
#ifndef AX_IO_POLL_H
#define AX_IO_POLL_H

#include <stdbool.h>
#include <stdint.h>

#include "axon/error.h"

typedef struct ax__poller ax__poller;

/* Readiness bits. IN and OUT are the interests one may register; ERR, HUP
 * and RDHUP (peer shut down its write side) are always reported. */
enum {
  AX__POLL_IN = 1,
  AX__POLL_OUT = 2,
  AX__POLL_ERR = 4,
  AX__POLL_HUP = 8,
  AX__POLL_RDHUP = 16
};

/* One readiness report: the udata given at add/mod, and AX__POLL_* bits. On
 * kqueue an fd ready both ways may come as two events, one per direction. */
typedef struct ax__poll_event {
  void *udata;
  uint32_t events;
} ax__poll_event;

/* ax__poller_new creates a poller and its wakeup channel (an eventfd, or a
 * pipe on kqueue), both close-on-exec. Errors: AX_ENOMEM, AX_ESYS (errno
 * kept, e.g. EMFILE); *out is untouched on error. */
ax_err ax__poller_new(ax__poller **out);

/* ax__poller_free closes the poller's descriptors (not the registered fds)
 * and frees it. NULL is a no-op. No wake may run concurrently or later. */
void ax__poller_free(ax__poller *p);

/* ax__poller_add registers fd, edge-triggered: an event is reported once per
 * readiness edge (new data, new buffer space, peer shutdown), so the owner
 * must read/write until EAGAIN before expecting another. interest is a mix
 * of AX__POLL_IN and AX__POLL_OUT (other bits are ignored); udata comes back
 * in the events. Errors: AX_EINVAL (interest has bits beyond AX__POLL_*),
 * AX_ENOMEM, AX_ESYS (errno kept: EBADF, EEXIST if already added, EPERM for
 * a regular file on epoll, ...). */
ax_err ax__poller_add(ax__poller *p, int fd, uint32_t interest, void *udata);

/* ax__poller_mod replaces the interest and udata of a registered fd; if the
 * fd is ready for the new interest now, that is reported as a new edge.
 * Errors: as add (ENOENT if fd is not registered). */
ax_err ax__poller_mod(ax__poller *p, int fd, uint32_t interest, void *udata);

/* ax__poller_del unregisters fd. Events already returned by a wait may still
 * carry its udata: the owner must not free that until it has processed the
 * batch. Closing an fd also unregisters it (when its last duplicate goes).
 * Errors: AX_ESYS (errno kept: ENOENT if not registered, EBADF), AX_ENOMEM. */
ax_err ax__poller_del(ax__poller *p, int fd);

/* ax__poller_wait blocks up to timeout_ms (negative: forever, 0: poll) and
 * writes at most max events to evs; *n_out gets their number. A wakeup makes
 * it return early; wakeups are consumed, never reported as events, so a
 * woken wait may return AX_OK with *n_out == 0 (as do a timeout and EINTR).
 * After it returns, every wake that happened before the wait consumed the
 * wakeup is visible to the caller (see ax__poller_wake). Errors: AX_EINVAL
 * (max < 1 or evs NULL), AX_ESYS (errno kept), AX_ENOMEM; *n_out is 0. */
ax_err ax__poller_wait(ax__poller *p, ax__poll_event *evs, int max,
                       int timeout_ms, int *n_out);

/* ax__poller_wait_ns is ax__poller_wait with the timeout in nanoseconds
 * (negative: forever, 0: poll). epoll: epoll_pwait2, whose timeout is a
 * timespec; where the kernel lacks it (ENOSYS, remembered) the timeout is
 * rounded up to whole ms for epoll_wait: never shorter, up to a ms longer.
 * kqueue takes a timespec anyway. */
ax_err ax__poller_wait_ns(ax__poller *p, ax__poll_event *evs, int max,
                          int64_t timeout_ns, int *n_out);

/* Tests only: on = the epoll backend behaves as if the kernel lacked
 * epoll_pwait2 from now on (off: tries it again); a no-op on kqueue.
 * Thread: any, with no wait running. */
void ax__poller_test_no_pwait2(bool on);

/* ax__poller_wake makes the current or next wait return early. Writes made
 * by the caller before the wake happen-before the return of that wait.
 * Coalesces: any number of wakes before the wait consumes one cost a single
 * write to the wakeup channel. Thread: any. Blocking: never. */
void ax__poller_wake(ax__poller *p);

/* ax__poller_wake_writes counts the writes to the wakeup channel so far
 * (statistics and tests: coalescing shows as wakes >> writes). Thread: any. */
uint64_t ax__poller_wake_writes(const ax__poller *p);

#endif
