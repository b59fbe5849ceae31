/* Axon: the reactor: one per system, owned by the system (started by
 * ax_system_new, stopped at shutdown, freed by ax_system_free). Each pass
 * runs the registered tick callbacks (the actor timer service; next the
 * cluster), fires its own timers (socket close timeouts, accept retries;
 * next cluster heartbeats) from a timing wheel on the system's clock, and
 * waits on the poller (epoll/kqueue) for the nearest of their deadlines,
 * dispatching fd readiness to handlers. Passes are driven by the thread
 * driving the reactor: a parking scheduler worker (ax__reactor_drive), or
 * else the reactor's own thread (see reactor.c for the handover); one pass
 * at a time, so ticks, timers and handlers are mutually exclusive and
 * ordered (each pass happens-after the previous one), whoever runs them.
 * "Thread: the driver" below means inside a pass. It knows nothing of
 * actors; layers above register with it through this interface. Internal. */
#ifndef AX_REACTOR_REACTOR_H
#define AX_REACTOR_REACTOR_H

#include <stdbool.h>
#include <stdint.h>

#include "axon/error.h"
#include "reactor/poll.h"
#include "timer/timer.h"

typedef struct ax__reactor ax__reactor;

/* The clock in whole ms, rounded down (an expiry is judged by it). NULL
 * when starting the reactor: the monotonic clock; otherwise a manual
 * (injected) clock, which moves only when told: the reactor then never
 * sleeps towards a deadline, it waits for ax__reactor_wake. */
typedef uint64_t (*ax__reactor_clock_fn)(void *arg);

/* A tick: runs on the driver once per pass, before waiting; returns
 * the longest wait it allows in ms (negative: until woken). */
typedef int (*ax__reactor_tick_fn)(void *arg);

/* At most this many ticks (one per layer that needs one). */
#define AX__REACTOR_MAX_TICKS 8

/* An fd's handler: embed it, register its address as the poller udata. */
typedef struct ax__io_handler {
  void (*on_events)(struct ax__io_handler *h, uint32_t events);
} ax__io_handler;

/* A reactor timer: embed it (zeroed), set fire, then ax__rtimer_set. fire
 * runs on the driver when the deadline has passed on the reactor's
 * clock; it may set the timer again. The owner keeps the memory alive while
 * the timer is pending (cancel it before freeing), or until the reactor is
 * freed. */
typedef struct ax__rtimer {
  ax__wtimer wt;
  void (*fire)(struct ax__rtimer *t);
} ax__rtimer;

/* Called by the reactor thread after it handed the driver's role to the
 * standby threads (one asked for it): wake one of them so that it drives.
 * Runs outside any pass. */
typedef void (*ax__reactor_yield_fn)(void *arg);

/* Starts the reactor thread on clock (NULL: monotonic) with clock_arg;
 * yield_fn(yield_arg) (may be NULL) as above. Errors: AX_ENOMEM, AX_ESYS.
 * Thread: any. */
ax_err ax__reactor_start(ax__reactor_clock_fn clock, void *clock_arg, ax__reactor_yield_fn yield_fn,
                         void *yield_arg, ax__reactor **out);

/* Driving from a standby thread (a parking worker). The thread counts
 * itself with ax__reactor_standby(r, +1) before its first
 * ax__reactor_drive and ax__reactor_standby(r, -1) when it stops standing
 * by (both Thread: that one). ax__reactor_drive runs one pass if nobody
 * else drives: it blocks in the poller wait until readiness, the nearest
 * tick/timer deadline, or ax__reactor_wake, runs the handlers on the
 * calling thread, and returns AX__DRIVE_DROVE. AX__DRIVE_BUSY: another
 * thread drives (if it is the reactor thread, it has been asked to yield
 * and will call the yield hook); AX__DRIVE_STOPPED: the reactor is
 * stopping. To end another thread's blocking pass early (an unpark), call
 * ax__reactor_wake. Never from inside a pass. */
typedef enum { AX__DRIVE_DROVE, AX__DRIVE_BUSY, AX__DRIVE_STOPPED } ax__drive_result;
/* busy(arg), asked after the ticks and timers and before the poller wait:
 * true when they gave the driver work of its own (then the wait only
 * polls: the driver must not sleep on work it holds). */
typedef bool (*ax__reactor_busy_fn)(void *arg);
ax__drive_result ax__reactor_drive(ax__reactor *r, ax__reactor_busy_fn busy, void *busy_arg);
void ax__reactor_standby(ax__reactor *r, int delta);
/* One pass that does not block (its wait only polls), if nobody drives:
 * for a worker that searches for work before parking, so that readiness
 * arriving meanwhile is dispatched at once onto its queues. Returns false
 * if another thread drives or the reactor is stopping. Thread: any but a
 * driver. */
bool ax__reactor_poll(ax__reactor *r);
/* Adds a tick run every pass from the next one on (ticks are never
 * removed; arg must outlive the reactor's thread). Errors: AX_ENOMEM when
 * AX__REACTOR_MAX_TICKS are registered. Thread: any. */
ax_err ax__reactor_add_tick(ax__reactor *r, ax__reactor_tick_fn fn, void *arg);
/* Stops and joins the thread, and waits for a standby driver's pass to
 * end (none starts after); idempotent. The reactor stays allocated, so
 * a late ax__reactor_wake (a clock moved during shutdown) is harmless.
 * Thread: any other, one at a time. */
void ax__reactor_stop(ax__reactor *r);
/* True once ax__reactor_stop has joined the thread (or r is NULL). */
bool ax__reactor_stopped(const ax__reactor *r);
/* Stops if needed, then frees the reactor (pending timers are forgotten:
 * they belong to their owners). NULL is a no-op. Thread: any other, when
 * nothing can wake it any more (ax_system_free). */
void ax__reactor_free(ax__reactor *r);
/* Makes the reactor run a pass soon (coalesced). NULL is a no-op.
 * Thread: any. */
void ax__reactor_wake(ax__reactor *r);
/* Ends this pass's poller wait no later than at_ns (ax__now_ns's clock),
 * to the nanosecond where the poller can (ax__poller_wait_ns): for a tick
 * whose deadline falls inside a millisecond, since a tick's own return
 * counts whole ms from whenever it ran. The earliest request of the pass
 * wins; each pass starts without one. Thread: the driver, in a tick. */
void ax__reactor_wait_until(ax__reactor *r, uint64_t at_ns);
/* The reactor's poller, for registering handlers. */
ax__poller *ax__reactor_poller(ax__reactor *r);
/* The reactor's clock now, in ms rounded down. Thread: any. */
uint64_t ax__reactor_now(ax__reactor *r);
/* Arms (or re-arms) t to fire delay_ms from now: never early (the deadline
 * is computed from the clock rounded up). Thread: the driver. */
void ax__rtimer_set(ax__reactor *r, ax__rtimer *t, uint32_t delay_ms);
/* Disarms t; a no-op if it is not pending. Thread: the driver. */
void ax__rtimer_cancel(ax__reactor *r, ax__rtimer *t);
/* True while t is armed and has not fired. Thread: the driver. */
static inline bool ax__rtimer_pending(const ax__rtimer *t) { return ax__wheel_pending(&t->wt); }

#endif
