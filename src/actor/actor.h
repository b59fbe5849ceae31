/* Axon: the interface of src/actor for the folders above it (supervisor,
 * io, next cluster): sending with full control of the envelope, signals,
 * the runtime's own requests and timers, the system's clock and reactor,
 * the layer table, this node's number and the route for pids of other
 * nodes. Nothing here exposes struct ax_actor's or struct ax_system's
 * fields: the rest of src/actor lives in actor/actor_int.h, which no other
 * folder may include. Internal to src/. */
#ifndef AX_ACTOR_H
#define AX_ACTOR_H

#include <stdbool.h>
#include <stdint.h>

#include "axon/actor.h"
#include "axon/stats.h"
#include "axon/system.h"
#include "axon/timer.h"
#include "base/base.h"
#include "base/table.h"
#include "base/u64map.h"
#include "mailbox/mailbox.h"
#include "reactor/reactor.h"

/* The thread's run context (opaque here): pass it to ax__send. */
typedef struct ax__ctx ax__ctx;
/* The calling thread's context (defined in sched.c); inline because every
 * send and run asks for it. */
extern _Thread_local ax__ctx ax__tls_ctx;
static inline ax__ctx *ax__ctx_get(void) {
  ax__ctx *c = &ax__tls_ctx;
  /* An opaque copy: through TLS descriptors (CMakeLists.txt) GCC otherwise
   * keeps the thread pointer, the offset and their sum in three registers
   * across a function (ax__actor_run: +1% instructions on pingpong). The
   * same empty asm of the same address is merged: one register. */
  __asm__("" : "+r"(c));
  if (!c) __builtin_unreachable(); /* the asm hid that it is an object's address */
  return c;
}
/* True on a worker thread (of any system): a call that blocks must refuse
 * there (AX_ESTATE). */
bool ax__on_worker(void);

/* ---- the layer table: layers above actor ---- */
typedef enum ax__layer_id {
  AX__LAYER_IO = 0,      /* the socket layer (src/io) */
  AX__LAYER_CLUSTER = 1, /* next: src/cluster */
  AX__LAYER_METRICS = 2, /* later */
  AX__LAYER_COUNT
} ax__layer_id;

/* What a layer registers. state: its own, opaque here. on_actor_stop
 * (optional) runs on the stopping actor's thread for every actor that
 * stops, after the actor is unreachable and before its memory goes; it must
 * be cheap for an actor the layer knows nothing of. fini (optional) frees
 * state at ax_system_free, after the reactor has stopped, layers in
 * reverse id order. */
typedef struct ax__layer {
  void *state;
  void (*on_actor_stop)(ax_system *sys, void *state, uint64_t pid);
  void (*fini)(ax_system *sys, void *state);
} ax__layer;

/* Makes a layer's state. Runs at most once per layer and system, under
 * the system's lock, while the system runs and its reactor runs. */
typedef ax_err (*ax__layer_start_fn)(ax_system *sys, void *arg, ax__layer *out);

/* Returns layer id's state, or NULL if it has not started. Lock-free (an
 * acquire load). Thread: any. */
void *ax__layer_get(ax_system *sys, ax__layer_id id);
/* Returns layer id's state in *state, starting it with start(sys, arg) on
 * first use. Errors: AX_ECLOSED (the system is shutting down or stopped),
 * whatever start returns. Thread: any (not from inside start). */
ax_err ax__layer_start(ax_system *sys, ax__layer_id id, ax__layer_start_fn start, void *arg,
                       void **state);
/* The system's reactor (running from ax_system_new to its shutdown). */
ax__reactor *ax__system_reactor(ax_system *sys);
/* True if pid names a live local actor (a snapshot). Thread: any. */
bool ax__pid_alive(ax_system *sys, uint64_t pid);
/* True in deterministic test mode (cfg.deterministic_seed). Thread: any. */
bool ax__det_on(const ax_system *sys);
/* Deterministic mode: a thread that would block waiting for actors drives
 * the system instead (docs/testing.md): runs until done(arg) holds, moving
 * the virtual clock up to timeout_ms (AX_INFINITY: no limit, and the clock
 * then moves only to pending deadlines). Returns done(arg). Called from an
 * actor or while another drive runs it only returns done(arg). Thread: the
 * driving thread. */
bool ax__det_run_until(ax_system *sys, bool (*done)(void *arg), void *arg, uint32_t timeout_ms);

/* ---- introspection (inspect.c): snapshots of actors and workers ---- */

/* One actor as introspection sees it (a relaxed snapshot). */
typedef struct ax__actor_info {
  uint64_t pid;
  const ax_actor_spec *spec; /* compare only: it may go with the actor */
  char spec_name[64];        /* spec->name, cut to fit ("" if none) */
  char name[64];             /* registered name, cut to fit ("" if none) */
  uint64_t processed;        /* user-lane messages taken by its runs */
  uint32_t queued;           /* bounded mailboxes: messages waiting */
  uint32_t limit;            /* its mailbox limit (0: unbounded) */
} ax__actor_info;
/* Fills *out for a live local actor. Errors: AX_ENOACTOR. Thread: any. */
ax_err ax__actor_info_get(ax_system *sys, uint64_t pid, ax__actor_info *out);
/* Calls fn with every live local actor's pid (table order). Thread: any. */
void ax__actors_foreach(ax_system *sys, void (*fn)(uint64_t pid, void *arg), void *arg);

typedef struct ax__worker_info {
  uint64_t runs, steals, parks, sent;
  uint64_t running; /* the pid it runs now, 0 if none */
} ax__worker_info;
/* Writes up to cap workers' counters into out; returns the number of
 * workers (deterministic mode: its one threadless worker). Thread: any. */
size_t ax__workers_info(ax_system *sys, ax__worker_info *out, size_t cap);

/* Asks `pid` (local) for the depth of its user lane: it answers, when it
 * next runs, with an AX__MSG_PROBE_REPLY (ax__probe_reply, ref = ref, a
 * system message) to `asker`. Errors: AX_ENOACTOR, AX_ENOMEM. Thread: any. */
ax_err ax__probe(ax_system *sys, uint64_t asker, uint64_t pid, ax_ref ref);
enum { AX__MSG_PROBE_REPLY = 14 }; /* in the core range, never public */
typedef struct ax__probe_reply {
  uint64_t pid;
  uint64_t depth;     /* user messages queued (counted up to 2^24) */
  uint64_t processed; /* as ax__actor_info */
} ax__probe_reply;

/* ---- this node, and the route for pids of other nodes ---- */

/* A pid's node field (base/table.h: node 12 | index 26 | generation 26)
 * names the node whose actor it is. Node 0 means "not clustered": every
 * system is node 0 until the cluster gives it a number (ax__system_set_node,
 * at ax_node_start), before the first spawn, so every local pid carries the
 * same node bits and ax_pid_eq stays a plain compare. */
#define AX__NODE_MAX ((UINT32_C(1) << (64 - AX__GEN_BITS - AX__IDX_BITS)) - 1)
/* This system's node number. Thread: any. */
uint32_t ax__system_node(const ax_system *sys);
/* Sets this system's node number. Errors: AX_EINVAL (node > AX__NODE_MAX),
 * AX_ESTATE (an actor has been spawned: its pid has the old number).
 * Thread: one ordered before every spawn (the cluster's start). */
ax_err ax__system_set_node(ax_system *sys, uint32_t node);
/* True for a pid of another node: node bits neither 0 nor this node's. */
bool ax__pid_remote(const ax_system *sys, uint64_t pid);

/* The route: where every path that takes a pid (ax__send and the public
 * sends, requests, replies and ax_call's proxy; ax__signal: exits, links,
 * unlinks, monitors, demonitors; DOWNs and link exits of a stopping actor)
 * hands a pid of another node. The cluster registers one; with none, such
 * a pid is treated as a dead local one (AX_ENOACTOR; noproc for links and
 * monitors). Both functions run on the sender's thread, must not block for
 * long, and return AX_OK (accepted for delivery, best effort as a local
 * send to a live actor), AX_ENOACTOR (no such node, or not connected) or
 * AX_ENOMEM.
 *  send:   a message. flags: AX_MSGF_REQUEST / AX_MSGF_REPLY /
 *          AX_MSGF_TIMER / AX_MSGF_SYSTEM (runtime messages: a DOWN to a
 *          remote watcher); ref as in ax_msg; the payload is data/len, and
 *          buf, if not NULL, is the buffer data points into (borrowed:
 *          retain it to keep it).
 *  signal: a system-lane signal of type AX__SIG_EXIT or AX__SIG_LINK_EXIT
 *          (payload ax_exit_info; a kill arrives as AX__SIG_EXIT with
 *          AX_REASON_KILL), AX__SIG_LINK or AX__SIG_UNLINK (payload: the
 *          sender's pid, uint64_t), AX__SIG_MONITOR (payload ax_down_info
 *          {ref, pid = the watcher}) or AX__SIG_DEMONITOR (payload: the
 *          ref). The receiving node replays it with ax__signal. */
typedef struct ax__route {
  void *state;
  ax_err (*send)(void *state, uint64_t from, uint64_t to, uint32_t type, uint32_t flags, ax_ref ref,
                 const void *data, size_t len, ax_buf *buf);
  ax_err (*signal)(void *state, uint64_t from, uint64_t to, uint32_t type, const void *data,
                   size_t len);
  /* Optional: called on a worker at the end of an actor run (after the
   * spec's flush) in which the route held frames (ax__run_route_held), so
   * it may hold what a run sent (ax__in_run) and write it once. */
  void (*flush)(void *state);
} ax__route;
/* True while an actor callback runs on a worker thread: the run's end
 * calls the route's flush on this thread. Thread: any. */
bool ax__in_run(void);
/* The end of a run: the route's flush, if any (actor.c). */
void ax__route_run_end(ax_system *sys);
/* The route tells the runtime it holds frames for this run's end, so that
 * ax__route_run_end calls its flush; runs that held nothing pay one test
 * of a thread-local flag. Thread: a worker, inside a run. */
void ax__run_route_held(void);
/* Registers (or, with NULL, removes) the route. r must stay valid until it
 * is replaced and no send can still be using it (in practice: until
 * ax_system_free). Thread: any. */
void ax__route_set(ax_system *sys, const ax__route *r);

/* The system's clock in ms, rounded up (deadlines) and down (expiries):
 * cfg.clock_ms if set, else the monotonic clock. Thread: any. */
uint64_t ax__clock_ms(ax_system *sys);
uint64_t ax__clock_floor_ms(ax_system *sys);

/* Counts a child restart by supervisor self (the system's total and, if
 * self is tracked, its own). Thread: owner. */
void ax__obs_restart(ax_actor *self);

/* ax_send_after without the reserved-type check: for the runtime's own
 * timed messages (supervisor kill timers). Thread: owner. */
ax_err ax__send_after(ax_actor *self, uint32_t delay_ms, ax_pid to, uint32_t type,
                      const void *data, size_t len, ax_timer *out);
/* ax_send_interval without the reserved-type check: a periodic timer is
 * allocated once, so a tick that must never stop for lack of memory (a
 * cluster connection's) is one. Thread: owner. */
ax_err ax__send_interval(ax_actor *self, uint32_t period_ms, uint32_t flags, ax_pid to,
                         uint32_t type, const void *data, size_t len, ax_timer *out);

/* Internal signal types on the system lane (never seen by behaviours). */
enum {
  AX__SIG_EXIT = 0x7fff0001, /* sent with payload ax_exit_info; queued as an
                                exit notice (see ax__signal) */
  AX__SIG_STOP = 0x7fff0002, /* untrappable stop with a reason (shutdown, kill) */
  AX__WAKE = 0x7fff0003,     /* user-lane marker that wakes an actor for a
                                system-lane signal; skipped by the run loop */
  AX__SIG_LINK = 0x7fff0004,      /* payload: the linker's pid */
  AX__SIG_UNLINK = 0x7fff0005,    /* payload: the unlinker's pid */
  AX__SIG_LINK_EXIT = 0x7fff0006, /* as AX__SIG_EXIT: a linked actor stopped */
  AX__SIG_MONITOR = 0x7fff0007,   /* payload ax_down_info {ref, watcher} */
  AX__SIG_DEMONITOR = 0x7fff0008, /* payload: the monitor's ref */
  AX__SIG_PROBE = 0x7fff0009,     /* payload: the asker's pid (see ax__probe) */
  AX__TIMER_REAP = 0x7fff000a     /* user lane: ids of an owner's fired direct
                                     timers, to forget (timers.c) */
};

/* Sends one message, from any thread, with full control of the envelope. */
ax_err ax__send(ax_system *sys, ax__ctx *ctx, uint64_t from, ax_pid to, uint32_t type,
                uint32_t flags, ax_ref ref, const void *data, size_t len, ax_buf *buf);
/* Sends a system-lane signal. AX__SIG_EXIT and AX__SIG_LINK_EXIT (payload
 * ax_exit_info) are exit signals: a kill becomes AX__SIG_STOP(killed); any
 * other goes out as a pair (see "Exit signals" in docs/ARCHITECTURE.md): an
 * ax__exit_notice on the system lane, acted on at once by a non-trapping
 * target, and an AX_MSG_EXIT placeholder on the user lane, in order with the
 * sender's messages, delivered if the notice found the target trapping. */
ax_err ax__signal(ax_system *sys, uint64_t from, uint64_t to, uint32_t type, const void *data,
                  size_t len);

/* An exit kit: an exit signal and a kill built ahead, so that sending
 * them needs no memory. Whoever must be able to stop an actor whatever
 * happens (a supervisor its children, docs/hardening.md "Out of memory")
 * holds one per target; link exits are reserved the same way. Zero-
 * initialised is empty. Owned by one thread at a time. */
typedef struct ax__exit_kit {
  struct ax__mnode *exit;        /* an exit pair's notice (see ax__signal) */
  struct ax__mnode *stop, *wake; /* a kill: the untrappable stop, its wake-up */
} ax__exit_kit;
/* Builds what k lacks (both parts). AX_ENOMEM: what was built stays in k
 * (a later fill completes it). Thread: any. */
ax_err ax__exit_kit_fill(ax__exit_kit *k);
/* Sends `to` the exit signal (from, reason), as ax_exit does, using k's
 * part for it (the kill for AX_REASON_KILL, else the exit pair), which is
 * then used up; a part k lacks (or a remote `to`) is allocated as by
 * ax__signal. AX_ENOACTOR: `to` is gone, k unchanged. Thread: any. */
ax_err ax__exit_kit_send(ax_system *sys, ax__exit_kit *k, uint64_t from, uint64_t to,
                         ax_reason reason);
/* Frees what k holds; k is empty after. */
void ax__exit_kit_free(ax__exit_kit *k);

/* ax_request / ax_reply_to without the reserved-type check: for the
 * runtime's own requests and replies (supervisor management). The reply
 * goes out from the running actor of sys on this thread, if any. */
ax_err ax__request(ax_actor *self, ax_pid to, uint32_t type, const void *data, size_t len,
                   uint32_t timeout_ms, ax_ref *ref_out);
ax_err ax__reply(ax_system *sys, ax_reply_addr to, uint32_t type, const void *data, size_t len);
/* Records in self's monitors a monitor `ref` that someone else sets up on
 * self's behalf (a remote spawn with the monitor option): its DOWN is
 * accepted as one of ax_monitor's, and ax_demonitor(ref) ends it (target
 * 0 while unknown: the DOWN is then dropped on arrival). Thread: owner.
 * Errors: AX_ENOMEM. */
ax_err ax__monitor_expect(ax_actor *self, ax_ref ref, uint64_t target);
/* ax_call without the reserved-type check (call.c). */
ax_err ax__call(ax_system *sys, ax_pid to, uint32_t type, const void *data, size_t len,
                uint32_t timeout_ms, void *reply, size_t *reply_len, uint32_t *reply_type);

/* Registers pid as a top-level supervisor: ax_system_shutdown sends it an
 * exit signal (AX_REASON_SHUTDOWN, from AX_PID_NONE) and waits for it to stop,
 * in reverse registration order, before stopping any other actor.
 * Thread: any. Errors: AX_ENOMEM. */
ax_err ax__system_add_top(ax_system *sys, ax_pid pid);

/* Pushes a runtime message (DOWN, I/O events) on to's user lane, flagged
 * AX_MSGF_SYSTEM | flags: never limited, never dropped while `to` lives.
 * data/len/buf as ax__msg_new. Thread: any. */
ax_err ax__send_sys(ax_system *sys, uint64_t from, uint64_t to, uint32_t type, uint32_t flags,
                    ax_ref ref, const void *data, size_t len, ax_buf *buf);
/* ax__send_sys for a node the caller allocated earlier (ax__msg_alloc /
 * ax__msg_new, envelope filled, n->to = the receiver): a notification that
 * must not fail for lack of memory reserves its node up front. Takes n on
 * AX_OK; on AX_ENOACTOR the caller still owns it. Never allocates.
 * Thread: any. */
ax_err ax__send_sys_node(ax_system *sys, ax__mnode *n);

#endif
