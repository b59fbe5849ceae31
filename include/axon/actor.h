/* Axon: actors: specs, spawning, sending, request/reply, exits. Functions
 * taking `ax_actor *self` are called from inside that actor's callbacks
 * (Thread: owner); the ax_system_* forms work from any thread. */
#ifndef AXON_ACTOR_H
#define AXON_ACTOR_H

#include "axon/buf.h"
#include "axon/common.h"
#include "axon/error.h"
#include "axon/msg.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The behaviour: called with one message at a time, never on two threads at
 * once. Return AX_OK to go on; any other value stops the actor with reason
 * AX_REASON_ERROR + err (terminate still runs). */
typedef ax_err (*ax_behaviour)(ax_actor *self, const ax_msg *msg);

/* init runs once, on the spawning thread, before ax_spawn returns and before
 * any message is delivered. state is zeroed, state_size bytes. arg/len are
 * the caller's init argument, borrowed for the duration of init only: copy
 * what you keep into state. A non-OK return fails the spawn with that code
 * (terminate is not called); the actor then stops like any other with
 * reason AX_REASON_ERROR + that code: actors it linked to (ax_link,
 * ax_spawn_link) get that exit signal and monitors on it fire, its timers,
 * sockets and name go; only the spawner's own link from ax_spawn_link is
 * removed first (the spawner learns of it from the error). May send, spawn,
 * link and register. */
typedef ax_err (*ax_init_fn)(ax_actor *self, void *state, const void *arg, size_t len);

/* terminate always runs exactly once when a started actor stops, whatever the
 * reason (including system shutdown), on a worker thread. It may send. */
typedef void (*ax_terminate_fn)(ax_actor *self, void *state, ax_reason reason);

/* flush runs after a run of messages: when the actor has handled one or
 * more messages (behaviour calls) in a run on a worker and is about to give
 * the worker back, whether its mailbox is empty or its batch budget
 * (ax_system_config.batch) is spent. It is the place to write out what the
 * run accumulated: one vectored socket write for many replies (see
 * ax_conn_writev), one frame for many small sends. Never called for a run
 * that delivered nothing, nor while the actor is stopping (terminate runs
 * instead: write out there too). Thread: owner, like the behaviour; it may
 * send, spawn and write. Its sends, as the run's, are delivered by the end
 * of the run at the latest (ax_send): the run's messages may still be on
 * their way while flush runs. Return AX_OK to go on; any other value stops
 * the actor with reason AX_REASON_ERROR + err, as from the behaviour. */
typedef ax_err (*ax_flush_fn)(ax_actor *self, void *state);

/* The most runs of other actors a worker makes before a flush deferred by
 * ax_flush_later is called. */
#define AX_FLUSH_LATER_RUNS 128

/* The default longest wait, in µs, of a flush deferred by ax_flush_later
 * (ax_system_config.flush_later_us sets it per system). Chosen by
 * measurement: the pub/sub example's fan-out, where 150 µs kept the
 * 99th-percentile delivery latency at redis-server's while writing each
 * subscriber once per several publishes (docs/ARCHITECTURE.md, "Deferred
 * flushes"). */
#define AX_FLUSH_LATER_US 150

/* ax_flush_later lets this run's flush wait until the end of the current
 * pass of the worker running the actor, so that what several runs produce
 * goes out in one flush (one socket write for the deliveries of many
 * publishers: Redis writes each client once per event-loop pass too).
 * Called from the behaviour; it applies to the current run only.
 * At the end of such a run the flush is not called and the actor stays
 * scheduled on that worker's deferred list: no other worker runs or steals
 * it, and messages sent to it meanwhile only queue. The worker runs it
 * again (1) when it has run out of work: its own run queues are empty and
 * its short search for more found nothing (stealing from other workers,
 * and a poll of the reactor, which may deliver more to it: input already
 * waiting is taken in first, input still to come is not waited for),
 * before it would park, or (2) after at most AX_FLUSH_LATER_RUNS runs of other
 * actors or ax_system_config.flush_later_us, whichever comes first. That
 * run delivers what arrived meanwhile (up to the batch budget, in order,
 * as any run) and then calls flush even if nothing arrived; a flush is
 * never deferred twice in a row (ax_flush_later in that run is ignored).
 * So every deferred flush comes, after the messages that arrived before
 * it, within one pass of one worker. Latency: the flush waits for the
 * worker's other runnable work and its search, at most
 * AX_FLUSH_LATER_RUNS runs or flush_later_us (plus the run under way, each
 * run bounded by the batch budget); use it for throughput, not for replies
 * a client waits on one at a time. No effect (the flush runs at the end of
 * the run) when the actor has no flush, is stopping, is muted by
 * backpressure at the end of the run, or runs outside the worker threads
 * (deterministic mode). Thread: owner. Never fails; NULL is ignored. */
AX_API void ax_flush_later(ax_actor *self);

/* What happens when a bounded mailbox (mailbox_limit > 0) is full. System
 * signals (exits, monitors, stop) are never limited or dropped. */
typedef enum ax_overflow {
  /* Accept the message; a sending actor is muted (not scheduled) until the
   * receiver drains below its limit, as Pony does. A non-actor sender gets
   * AX_EAGAIN and the message is not sent. Overloaded senders are never
   * muted, which keeps cycles of actors from deadlocking. */
  AX_OVERFLOW_BACKPRESSURE = 0,
  AX_OVERFLOW_FAIL = 1,     /* the send fails with AX_EFULL (counted) */
  AX_OVERFLOW_DROP_NEW = 2, /* the new message is discarded, send is AX_OK (counted) */
  /* The send is AX_OK and the oldest queued user message is discarded
   * (counted) by the sender itself, so memory stays bounded while the
   * receiver is busy: at most mailbox_limit + 1 user messages are queued,
   * and the receiver sees at most mailbox_limit of the newest, in order.
   * Runtime messages (exits, DOWN, timeouts) are never dropped. Senders to
   * a DROP_OLD mailbox take a short per-mailbox lock. */
  AX_OVERFLOW_DROP_OLD = 3
} ax_overflow;

/* How to make an actor. The spec is borrowed by every actor spawned from it:
 * it must outlive them (a static const spec is the usual form). */
typedef struct ax_actor_spec {
  const char *name;          /* for logs and stats; may be NULL */
  ax_behaviour behaviour;    /* required */
  size_t state_size;         /* bytes of inline state, zeroed, 16-byte aligned
                                (ax_state); may be 0. Up to 16 bytes keep an
                                actor in one 128-byte block */
  ax_init_fn init;           /* optional */
  ax_terminate_fn terminate; /* optional */
  uint32_t mailbox_limit;    /* 0: unbounded user lane */
  ax_overflow overflow;      /* policy when the limit is reached */
  ax_flush_fn flush;         /* optional: end of each run (see ax_flush_fn) */
} ax_actor_spec;

/* ax_spawn starts a new actor from inside another actor's callback. On AX_OK
 * *out holds its pid (out may be NULL). Thread: owner. Blocking: runs init.
 * Errors: AX_EINVAL (no behaviour), AX_ENOMEM, AX_ELIMIT (actor table full),
 * AX_ECLOSED (system shutting down), or init's error. */
AX_API ax_err ax_spawn(ax_actor *self, const ax_actor_spec *spec, const void *arg, size_t len,
                       ax_pid *out);

/* ax_system_spawn is ax_spawn from any thread. Thread: any. From a thread
 * that is not one of sys's workers, a spawn whose init fails (or exits)
 * returns once the failed actor is gone (counted stopped, its memory
 * freed): it may wait until every worker has ended the run it is in. */
AX_API ax_err ax_system_spawn(ax_system *sys, const ax_actor_spec *spec, const void *arg,
                              size_t len, ax_pid *out);

/* Identity and state of the running actor. Thread: owner. Never fail. */
AX_API ax_pid ax_self(const ax_actor *self);
AX_API void *ax_state(ax_actor *self);
AX_API ax_system *ax_actor_system(const ax_actor *self);

/* ax_become replaces the behaviour from the next message on. behaviour must
 * not be NULL (ignored if it is). Thread: owner. */
AX_API void ax_become(ax_actor *self, ax_behaviour behaviour);

/* ax_send copies data[0..len) into a message of the given type (>=
 * AX_MSG_USER for user messages) to `to`. Messages from one sender to one
 * receiver arrive in send order, also against its other sends, requests,
 * replies and exit signals to that receiver. A message is delivered by the
 * end of the sender's current run at the latest: an actor that streams
 * (whose previous run ended with mail left and woke nobody) has its sends
 * to each receiver linked and pushed together when its run ends (see
 * docs/ARCHITECTURE.md, "the outbox"); so a behaviour must not wait inside
 * its callback for an effect of a message it sent. Thread: owner.
 * Blocking: never.
 * Errors: AX_ENOACTOR (to is dead or never existed; nothing is sent; a
 * streaming sender may learn of a receiver's stop one push late: messages
 * accepted meanwhile count as dead letters, as those left in a stopped
 * actor's mailbox do),
 * AX_ENOMEM, AX_EFULL (receiver's FAIL policy), AX_EINVAL (type below
 * AX_MSG_USER, which only the runtime may send; data NULL with len > 0;
 * NULL self), AX_EAGAIN (a self-send into one's own full BACKPRESSURE
 * mailbox: an actor cannot be muted by itself, so the message is refused
 * and not sent). */
AX_API ax_err ax_send(ax_actor *self, ax_pid to, uint32_t type, const void *data, size_t len);

/* ax_send_buf sends buf's bytes [off, off+len) without copying: the message
 * takes its own reference to buf; the caller keeps its reference. The
 * receiver sees msg->buf == buf and msg->data pointing at the slice.
 * Thread: owner. Errors: as ax_send; AX_EINVAL if the slice is out of range. */
AX_API ax_err ax_send_buf(ax_actor *self, ax_pid to, uint32_t type, ax_buf *buf, size_t off,
                          size_t len);

/* ax_system_send / ax_system_send_buf send from any thread (the message's
 * `from` is AX_PID_NONE when the caller is not an actor). A backpressure
 * receiver at its limit returns AX_EAGAIN. Thread: any. */
AX_API ax_err ax_system_send(ax_system *sys, ax_pid to, uint32_t type, const void *data,
                             size_t len);
AX_API ax_err ax_system_send_buf(ax_system *sys, ax_pid to, uint32_t type, ax_buf *buf,
                                 size_t off, size_t len);

/* ax_request sends like ax_send, flagged AX_MSGF_REQUEST with a fresh ref
 * (*ref_out). The receiver answers with ax_reply; the answer arrives as a
 * message with AX_MSGF_REPLY and the same ref. With a finite timeout_ms,
 * exactly one of the reply and an AX_MSG_TIMEOUT carrying the ref (from
 * self) arrives; a reply after the timeout is dropped and counted
 * (ax_system_stats.late_replies). AX_INFINITY: no timeout. Thread: owner.
 * Errors: as ax_send; AX_ECLOSED while shutting down (timed requests). */
AX_API ax_err ax_request(ax_actor *self, ax_pid to, uint32_t type, const void *data, size_t len,
                         uint32_t timeout_ms, ax_ref *ref_out);

/* ax_reply answers request `req` (a message with AX_MSGF_REQUEST) with type
 * and a copied payload. Thread: owner. Errors: AX_EINVAL (req is not a
 * request, or type is reserved), AX_ENOACTOR (requester gone), AX_ENOMEM,
 * AX_EFULL (the requester's FAIL policy). */
AX_API ax_err ax_reply(ax_actor *self, const ax_msg *req, uint32_t type, const void *data,
                       size_t len);

/* Deferred replies: a request's return address, kept by value (it holds no
 * pointer) to answer after the behaviour has returned: keep
 * ax_reply_addr_of(msg) in the actor's state, answer later with
 * ax_reply_to (from the actor) or ax_system_reply_to (from any thread, for
 * example a thread pool finishing the work). Exactly like an immediate
 * reply: a requester that timed out drops it (counted as a late reply), an
 * ax_call caller that gave up ignores it. Answer each request at most once. */
typedef struct ax_reply_addr {
  ax_pid pid; /* the requester (for ax_call: its proxy) */
  ax_ref ref; /* the request's ref; 0 when the message was not a request */
} ax_reply_addr;

/* ax_reply_addr_of gives req's return address, or {AX_PID_NONE, 0} when
 * req is NULL or not a request. Thread: any. Never fails. */
static inline ax_reply_addr ax_reply_addr_of(const ax_msg *req) {
  ax_reply_addr a = {AX_PID_NONE, 0};
  if (req && (req->flags & AX_MSGF_REQUEST)) {
    a.pid = req->from;
    a.ref = req->ref;
  }
  return a;
}

/* ax_reply_to answers the request whose address is `to` (see above).
 * Thread: owner. Errors: AX_EINVAL (an empty address, reserved type, NULL
 * self), AX_ENOACTOR, AX_ENOMEM, AX_EFULL. */
AX_API ax_err ax_reply_to(ax_actor *self, ax_reply_addr to, uint32_t type, const void *data,
                          size_t len);

/* ax_system_reply_to is ax_reply_to from any thread (the reply's `from` is
 * the running actor of sys on this thread, else AX_PID_NONE). Thread: any.
 * Errors: as ax_reply_to; AX_EINVAL for a NULL sys. */
AX_API ax_err ax_system_reply_to(ax_system *sys, ax_reply_addr to, uint32_t type,
                                 const void *data, size_t len);

/* ax_exit sends an exit signal. target == self: the actor stops with reason
 * once the current callback returns. Another target: a non-trapping target
 * stops with reason, except that AX_REASON_NORMAL is ignored; a trapping one
 * receives AX_MSG_EXIT; AX_REASON_KILL is untrappable and stops it with
 * AX_REASON_KILLED. Exit signals keep their order relative to messages from
 * the same sender: a trapping target receives the AX_MSG_EXIT after every
 * message the sender sent before the signal and before every message it
 * sent after, even when they all arrive while the target is busy. Stops act
 * on arrival: a non-trapping target (or a killed one) stops when its current
 * callback returns, without handling the messages queued before the signal,
 * as in Erlang. The same holds for link exits and DOWNs: they come after
 * every message the stopped actor sent. Thread: owner.
 * Errors: AX_ENOACTOR, AX_ENOMEM. */
AX_API ax_err ax_exit(ax_actor *self, ax_pid target, ax_reason reason);

/* ax_system_exit sends an exit signal from outside any actor (as if from
 * AX_PID_NONE). Thread: any. Errors: AX_ENOACTOR, AX_ENOMEM. */
AX_API ax_err ax_system_exit(ax_system *sys, ax_pid target, ax_reason reason);

/* ax_trap_exit: when on, exit signals other than kill arrive as AX_MSG_EXIT
 * messages instead of stopping the actor. Thread: owner. Errors: AX_EINVAL
 * (self NULL), AX_ENOMEM (the actor's rarely-used data block could not be
 * allocated: the setting is unchanged). */
AX_API ax_err ax_trap_exit(ax_actor *self, bool on);

/* ---- links and monitors (Erlang semantics) ---- */

/* ax_link links self and other, both ways; idempotent. When either stops
 * with a reason, the other gets an exit signal from it: `normal` is ignored
 * unless the receiver traps exits; any other reason stops a non-trapping
 * receiver with that same reason (kill arrives as killed); a trapping one
 * receives AX_MSG_EXIT {pid, reason}. Linking to a dead or unknown pid
 * delivers an exit signal with AX_REASON_NOPROC at once (a non-trapping
 * caller then stops with noproc, as in Erlang); to a pid of another node
 * that is not connected, with AX_REASON_NOCONNECTION. Thread: owner.
 * Errors: AX_ENOMEM, AX_EINVAL (other is self or none). */
AX_API ax_err ax_link(ax_actor *self, ax_pid other);

/* ax_unlink removes the link; afterwards no exit signal caused by that link
 * reaches self, even one already in flight. Idempotent. Thread: owner.
 * Errors: AX_ENOMEM. */
AX_API ax_err ax_unlink(ax_actor *self, ax_pid other);

/* ax_spawn_link spawns and links atomically: the link exists before the
 * child's init runs, so no exit of the child can be missed. If the child's
 * init fails, the call returns its error and the caller gets no exit signal
 * for it (the link is gone); the child's other links are signalled (see
 * ax_init_fn). Thread: owner. Errors: as ax_spawn. */
AX_API ax_err ax_spawn_link(ax_actor *self, const ax_actor_spec *spec, const void *arg,
                            size_t len, ax_pid *out);

/* ax_monitor makes self watch target: exactly one AX_MSG_DOWN {ref, pid,
 * reason} arrives when target stops (after every message target sent self
 * before stopping), at once with AX_REASON_NOPROC if it is already dead
 * (AX_REASON_NOCONNECTION if it is on another node that is not connected).
 * Monitors are one-way and stack (each call gets its own ref). *ref_out gets
 * the monitor's ref. If the target has no memory to record the monitor, the
 * DOWN comes at once with reason AX_REASON_ERROR + AX_ENOMEM (the target
 * lives on; likewise a link it cannot record sends that exit reason).
 * Thread: owner. Errors: AX_ENOMEM, AX_EINVAL. */
AX_API ax_err ax_monitor(ax_actor *self, ax_pid target, ax_ref *ref_out);

/* ax_demonitor removes monitor ref. No AX_MSG_DOWN for it is delivered
 * afterwards, including one already queued (AX_DEMONITOR_FLUSH is accepted
 * and always implied). Thread: owner. Errors: AX_ENOTFOUND (not an active
 * monitor of self, e.g. its DOWN was already delivered). */
enum { AX_DEMONITOR_FLUSH = 1 };
AX_API ax_err ax_demonitor(ax_actor *self, ax_ref ref, uint32_t flags);

/* ax_call sends a request from a non-actor thread and blocks until the reply
 * or the timeout. The reply payload is copied into reply[0..*reply_len);
 * on entry *reply_len is its capacity, on return the reply's length.
 * reply_type (may be NULL) gets the reply's type. Thread: any non-worker
 * thread (AX_ESTATE from inside an actor, which must never block).
 * A target that stops without replying ends the call with AX_ENOACTOR.
 * reply == NULL discards the reply's payload (any size): *reply_len, if
 * given, gets its length. The target may answer later from anywhere with
 * ax_reply_to / ax_system_reply_to (deferred replies).
 * Errors: AX_ETIMEDOUT, AX_ENOACTOR, AX_ENOBUFS (reply too large: *reply_len
 * is set to the size needed; the reply is lost), AX_ENOMEM, AX_ECLOSED,
 * AX_EINVAL (NULL sys, reserved type, data NULL with len > 0), AX_EAGAIN
 * (a BACKPRESSURE target at its limit: the request is not sent). */
AX_API ax_err ax_call(ax_system *sys, ax_pid to, uint32_t type, const void *data, size_t len,
                      uint32_t timeout_ms, void *reply, size_t *reply_len, uint32_t *reply_type);

/* Reason helpers: a reason's printable name ("normal", "killed", ...); for
 * AX_REASON_ERROR + e the error's name. Never NULL. Thread: any. */
AX_API const char *ax_reason_str(ax_reason reason);
static inline bool ax_reason_is_error(ax_reason r) { return r >= AX_REASON_ERROR; }

#ifdef __cplusplus
}
#endif

#endif
