/* A declarations-only stand-in for BSD/macOS <sys/event.h>, written from
 * the kqueue(2) manual page, so that Linux CI can compile-check
 * src/reactor/poll_kqueue.c (ctest portability.kqueue). Nothing is linked
 * or run against it: the backend is compiled, not tested, on Linux. */
#ifndef AX_KQUEUE_SHIM_SYS_EVENT_H
#define AX_KQUEUE_SHIM_SYS_EVENT_H

#include <stdint.h>
#include <time.h>

struct kevent {
  uintptr_t ident;     /* identifier for this event (an fd) */
  short filter;        /* filter for event */
  unsigned short flags;/* action flags for kqueue */
  unsigned int fflags; /* filter flag value */
  intptr_t data;       /* filter data value */
  void *udata;         /* opaque user data identifier */
};

#define EVFILT_READ (-1)
#define EVFILT_WRITE (-2)

#define EV_ADD 0x0001
#define EV_DELETE 0x0002
#define EV_ENABLE 0x0004
#define EV_DISABLE 0x0008
#define EV_ONESHOT 0x0010
#define EV_CLEAR 0x0020
#define EV_ERROR 0x4000
#define EV_EOF 0x8000

#define EV_SET(kevp, a, b, c, d, e, f)                                                       \
  do {                                                                                       \
    struct kevent *ev_ = (kevp);                                                             \
    ev_->ident = (a);                                                                        \
    ev_->filter = (b);                                                                       \
    ev_->flags = (c);                                                                        \
    ev_->fflags = (d);                                                                       \
    ev_->data = (e);                                                                         \
    ev_->udata = (f);                                                                        \
  } while (0)

int kqueue(void);
int kevent(int kq, const struct kevent *changelist, int nchanges, struct kevent *eventlist,
           int nevents, const struct timespec *timeout);

#endif
