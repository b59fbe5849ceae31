/* Axon: timers: delayed and periodic messages, cancellation, receive
 * timeouts. Timers live in hierarchical timing wheels (one per worker,
 * 1 ms resolution, monotonic clock), fired by the workers between runs
 * or by the thread driving the reactor. */
#ifndef AXON_TIMER_H
#define AXON_TIMER_H

#include "axon/common.h"
#include "axon/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A timer's handle. Typed (a struct, as nng's handles) so that it cannot be
 * passed where a ref or a pid is expected, nor a ref to ax_timer_cancel:
 * those mix-ups do not compile. id is a system-unique ref, never 0; a
 * timer's messages carry it as their ref (msg->ref == t.id). */
typedef struct ax_timer {
  uint64_t id;
} ax_timer;

/* Options of ax_send_interval. */
typedef enum ax_timer_flags {
  AX_TIMER_SKIP_MISSED = 0, /* a period that falls behind skips the ticks it
                               missed (default) */
  AX_TIMER_KEEP_MISSED = 1  /* every missed tick is still delivered, one per
                               reactor pass, until it has caught up */
} ax_timer_flags;

/* ax_send_after sends {type, data[0..len)} (copied now) from self to `to`
 * after delay_ms. The timer belongs to self: it fires no earlier than
 * delay_ms from now (the deadline is rounded up to the ms; plus the
 * scheduling delay), is cancelled when self stops, and after
 * ax_timer_cancel returns AX_OK self never sends that timer's message. A
 * timer to self is delivered through self's mailbox, where a cancel still
 * wins over an expiry already queued. A timer to another actor of this
 * node (without a mailbox bound) is sent to it when it fires, whatever
 * self is doing; a cancel after that fails (AX_ENOTFOUND: the message is
 * on its way, as any message sent). To an actor of another node or with a
 * bound, self forwards it at its next run, as a send from self. Timers
 * with the same deadline fire in the order they were set. The message
 * arrives with from = self, ref = the timer's id and AX_MSGF_TIMER set.
 * *out (may be NULL) gets the handle.
 * Timers are accepted while the system shuts down (they fire until every
 * actor has stopped: a supervisor's shutdown timeouts stay exact then).
 * Thread: owner. Errors: AX_ENOMEM, AX_EINVAL, AX_ECLOSED (the system has
 * stopped). */
AX_API ax_err ax_send_after(ax_actor *self, uint32_t delay_ms, ax_pid to, uint32_t type,
                            const void *data, size_t len, ax_timer *out);

/* ax_send_interval is ax_send_after repeating every period_ms (>= 1) until
 * cancelled or self stops. flags: ax_timer_flags. Thread: owner.
 * Errors: as ax_send_after; AX_EINVAL for a zero period. */
AX_API ax_err ax_send_interval(ax_actor *self, uint32_t period_ms, uint32_t flags, ax_pid to,
                               uint32_t type, const void *data, size_t len, ax_timer *out);

/* ax_timer_cancel stops timer t of self. Afterwards self never sends its
 * message. Thread: owner. Errors: AX_ENOTFOUND (not an active timer of self:
 * already fired, cancelled, or someone else's). */
AX_API ax_err ax_timer_cancel(ax_actor *self, ax_timer t);

/* ax_set_receive_timeout: self gets an AX_MSG_TIMEOUT (ref 0, from self)
 * when no message has arrived for ms milliseconds; it re-arms after each
 * timeout. AX_INFINITY turns it off. Thread: owner. Errors: AX_ENOMEM. */
AX_API ax_err ax_set_receive_timeout(ax_actor *self, uint32_t ms);

#ifdef __cplusplus
}
#endif

#endif
