/* Axon: the reactor thread: one thread per system that waits on the poller
 * (epoll/kqueue) with the nearest timer deadline as its timeout, runs a tick
 * callback each pass (the timer service) and dispatches fd readiness to
 * handlers. This part of src/io sits below src/actor: it knows nothing of
 * actors; the socket layer above actor registers handlers. Internal. */
#ifndef AX_IO_REACTOR_H
#define AX_IO_REACTOR_H

#include "axon/error.h"
#include "reactor/poll.h"

typedef struct ax__reactor ax__reactor;

/* Runs on the reactor thread once per pass, before waiting; returns the
 * wait timeout in ms (negative: until woken). */
typedef int (*ax__reactor_tick_fn)(void *arg);

/* An fd's handler: embed it, register its address as the poller udata. */
typedef struct ax__io_handler {
  void (*on_events)(struct ax__io_handler *h, uint32_t events);
} ax__io_handler;

/* Starts the reactor thread. Errors: AX_ENOMEM, AX_ESYS. Thread: any. */
ax_err ax__reactor_start(ax__reactor_tick_fn tick, void *arg, ax__reactor **out);
/* Stops and joins the thread; idempotent. The reactor stays allocated, so
 * a late ax__reactor_wake (a clock moved during shutdown) is harmless.
 * Thread: any other, one at a time. */
void ax__reactor_stop(ax__reactor *r);
/* True once ax__reactor_stop has joined the thread (or r is NULL). */
bool ax__reactor_stopped(const ax__reactor *r);
/* Stops if needed, then frees the reactor. NULL is a no-op. Thread: any
 * other, when nothing can wake it any more (ax_system_free). */
void ax__reactor_free(ax__reactor *r);
/* Makes the reactor run a pass soon (coalesced). Thread: any. */
void ax__reactor_wake(ax__reactor *r);
/* The reactor's poller, for registering handlers. */
ax__poller *ax__reactor_poller(ax__reactor *r);

#endif
