/* Axon: the private header of src/actor: the actor's layout, workers and
 * the scheduler, the registry, the timer service's state, struct
 * ax_system's fields. Only files of src/actor (and tests) include it;
 * other folders use actor/actor.h (scripts/check-layers.sh enforces it). */
#ifndef AX_ACTOR_INT_H
#define AX_ACTOR_INT_H

#include <pthread.h>
#include <stdbool.h>

#include "axon/actor.h"
#include "axon/stats.h"
#include "axon/metrics.h"
#include "axon/timer.h"
#include "axon/system.h"
#include "axon/trace.h"
#include "actor/actor.h"
#include "base/base.h"
#include "base/table.h"
#include "base/u64map.h"
#include "reactor/reactor.h"
#include "mailbox/mailbox.h"
#include "timer/timer.h"

/* ---- the actor: one allocation, a 128-byte header, then the state ---- */

/* mute_state bits: MUTED, NAMED (has a registry name), then a sequence. */
#define AX__MS_MUTED 1u
#define AX__MS_NAMED 2u
#define AX__MS_SEQ_ONE 4u

/* Rarely used per-actor data, allocated on first use (owner-only). */
typedef struct ax__actor_ext {
  bool trap_exit;
  ax__u64map timers;       /* active timers: id (timed requests: ref & ~1) -> ax__tmr* */
  ax__u64map links;        /* linked pid -> its reserved exit signal
                              (ax__mnode *, 0 for a remote pid) */
  ax__u64map monitors;     /* as watcher: monitor ref -> target pid */
  ax__u64map watchers;     /* as target: monitor ref -> watcher pid */
  uint32_t recv_ms;        /* receive timeout, 0 = off */
  uint64_t recv_id;        /* its armed timer's id */
  struct ax__tmr *recv_tmr; /* ... and the owner's reference to it */
  uint64_t recv_armed_at;  /* clock (ms) when armed */
  uint64_t last_activity;  /* clock (ms) at the end of the last run that
                              delivered a message */
  uint64_t direct_pid;     /* the last `to` of a timer checked for direct
                              delivery (timers.c, direct_ok), and the answer */
  bool direct_yes;
  struct ax__obs *obs;     /* metrics block (ax_metrics_track), or NULL:
                              set once before obs is published, freed by
                              destroy; senders read it after acquiring
                              ax_actor.obs */
} ax__actor_ext;

struct ax_actor {
  /* Line 0: written by other threads. */
  _Atomic uintptr_t user_head; /* producers: lane push (see mailbox.h) */
  _Atomic uintptr_t sys_head;  /* producers: system lane push */
  /* Embedded first stubs; producers write next. The user lane's stub is
   * retired by the first pop (the popped node becomes the stub, as Pony
   * runs the queue) and never linked again; its word then holds the
   * processed count (see ax__actor_processed). */
  union {
    ax__mlink user_stub;
    _Atomic uint64_t user_stub_word;
  };
  ax__mlink sys_stub;
  /* Immutable after spawn. Here rather than on the owner's line: the owner
   * reads it at a run's end (flush), when it touches this line anyway (the
   * mark-idle CAS), and senders to a bounded lane find the bounded block
   * with it (ax__actor_bounded). */
  const ax_actor_spec *spec;
  /* The link in the inject queue (or in a worker's deferred list), written
   * by whoever holds the right to schedule the actor (most often the
   * producer that just pushed to user_head, on this line) and read by the
   * worker that pops it. */
  struct ax_actor *run_next;
  _Atomic uint32_t queued;     /* bounded lanes: messages accepted, not yet
                                  popped (senders add, owner subtracts: per
                                  message for DROP_OLD, else once per run,
                                  ax__actor_taken meanwhile) */
  _Atomic uint32_t mute_state; /* AX__MS_* bits + sequence */
  uint32_t limit;              /* spec->mailbox_limit and spec->overflow, */
  uint8_t overflow;            /* copied here: senders read them without
                                  touching the owner's cache line */
  _Atomic uint8_t lane_lock;   /* DROP_OLD lanes only: held by the owner
                                  while it pops, and by a sender while it
                                  pushes and trims the oldest messages
                                  (trim_old in actor.c) */
  _Atomic uint8_t obs;         /* AX_METRICS_* bits of a tracked actor, 0
                                  otherwise: the owner stores (release)
                                  after ext->obs is set; senders test it
                                  (acquire) with the line they write anyway */
  uint8_t obox;                /* AX__OBOX_*: its next run streams, or it
                                  streams now (actor.c, "the outbox");
                                  written by the thread holding the actor,
                                  read by its own ax_send; here for the
                                  line's last free byte */

  /* Line 1: touched only by the thread holding the actor (running it, or
   * moving it between run queues). */
  _Alignas(AX_CACHELINE) ax__mlink *user_tail;
  ax__mlink *sys_tail;
  ax_behaviour behaviour;
  ax_system *sys;
  uint64_t pid;
  ax__actor_ext *ext;
  /* The state follows at offset 112 (16-byte aligned, as malloc's blocks),
   * still on the owner's line: a state of up to 16 bytes keeps the actor
   * in one 128-byte block. sizeof counts the line's padding (128); the
   * header ends here. */
  _Alignas(16) char tail[];
};

/* a->obox (actor.c, "the outbox"): off; its next run streams; it streams
 * now; a streaming run of it chained nothing (each send went to another
 * receiver), so the next COOL - COOL_MIN + 1 runs that would stream do not
 * (sched.c counts them down); it fanned out wider than the outbox once and
 * never streams. */
enum {
  AX__OBOX_OFF = 0,
  AX__OBOX_HINTED = 1,
  AX__OBOX_STREAMING = 2,
  AX__OBOX_COOL_MIN = 3,
  AX__OBOX_COOL = 66,
  AX__OBOX_WIDE = 255
};

#define AX__ACTOR_HDR 112
_Static_assert(offsetof(struct ax_actor, tail) == AX__ACTOR_HDR, "actor header is 112 bytes");
_Static_assert(AX__ACTOR_HDR % 16 == 0, "the state is 16-byte aligned");
_Static_assert(offsetof(struct ax_actor, user_tail) == 64, "owner fields start on line 1");
_Static_assert(offsetof(struct ax_actor, obs) < 64, "the metrics bit sits on the senders' line");
_Static_assert(offsetof(struct ax_actor, run_next) < 64, "the inject link sits on the wakers' line");

static inline void *ax__actor_state(ax_actor *a) { return (char *)a + AX__ACTOR_HDR; }

/* What only a bounded lane (mailbox_limit > 0) needs, in a block after the
 * state (8-aligned), so that unbounded actors do not carry it: the senders
 * muted by this actor (a Treiber stack of ax__mute_entry, taken whole:
 * backpressure lanes only) and the overflow counters. Senders reach it
 * under a table reference, on their slow paths only (over the limit). */
typedef struct ax__bounded {
  _Atomic uintptr_t mute_stack;
  _Atomic uint32_t drops; /* overflow drops/rejections (relaxed counter) */
  _Atomic uint32_t mutes; /* times this actor muted a sender (relaxed) */
} ax__bounded;

static inline size_t ax__bounded_off(const ax_actor_spec *spec) {
  return (AX__ACTOR_HDR + spec->state_size + 7) & ~(size_t)7;
}
/* Only for an actor with a->limit != 0. */
static inline ax__bounded *ax__actor_bounded(ax_actor *a) {
  return (ax__bounded *)(void *)((char *)a + ax__bounded_off(a->spec));
}
/* The allocation's size: header, state, and the bounded block if any. */
static inline size_t ax__actor_size(const ax_actor_spec *spec) {
  return spec->mailbox_limit ? ax__bounded_off(spec) + sizeof(ax__bounded)
                             : AX__ACTOR_HDR + spec->state_size;
}

/* The messages an actor's runs have taken from its user lane, kept where
 * the header has room: the retired user-lane stub (above). Once the stub
 * is retired the owner writes (processed << AX__STUB_PROC_SHIFT) | (taken
 * << 1) | 1 there: processed at the end of a run; taken (bounded lanes
 * other than DROP_OLD: the messages this run popped that are not yet
 * subtracted from `queued`, see process_user_as in actor.c) after each
 * pop, and 0 again at the run's end. An even word is still the live
 * stub's link (a pointer, or NULL), and means no message was taken yet.
 * Readers holding a table reference load it relaxed. */
#define AX__STUB_TAKEN_MAX 0x7fffu
#define AX__STUB_PROC_SHIFT 16
static inline uint64_t ax__actor_processed(ax_actor *a) {
  uint64_t w = atomic_load_explicit(&a->user_stub_word, memory_order_relaxed);
  return w & 1 ? w >> AX__STUB_PROC_SHIFT : 0;
}
static inline uint32_t ax__actor_taken(ax_actor *a) {
  uint64_t w = atomic_load_explicit(&a->user_stub_word, memory_order_relaxed);
  return w & 1 ? (uint32_t)(w >> 1) & AX__STUB_TAKEN_MAX : 0;
}
/* A bounded lane's depth: accepted, not yet taken (queued counts the
 * running owner's taken messages until its run ends). */
static inline uint32_t ax__actor_depth(ax_actor *a) {
  uint32_t q = atomic_load_explicit(&a->queued, memory_order_relaxed);
  uint32_t t = ax__actor_taken(a);
  return q > t ? q - t : 0;
}
_Static_assert(sizeof(ax__mlink) == sizeof(uint64_t), "the stub's word holds the count");

/* A FIFO of actors linked through run_next (the inject queue, the timers'
 * handoff list, a worker's due list), under its owner's lock: appends
 * first..last, and takes the oldest (NULL if empty). */
static inline void ax__runq_append(ax_actor **head, ax_actor **tail, ax_actor *first, ax_actor *last) {
  last->run_next = NULL;
  if (*tail)
    (*tail)->run_next = first;
  else
    *head = first;
  *tail = last;
}
static inline ax_actor *ax__runq_pop(ax_actor **head, ax_actor **tail) {
  ax_actor *a = *head;
  if (a && !(*head = a->run_next)) *tail = NULL;
  return a;
}

/* Owner side, after a run that ended with work left: whether the next
 * message in a's user lane is a timer expiry of this node (due). */
bool ax__actor_next_due(ax_actor *a);

/* Owner side, probe (inspect.c): answers an AX__SIG_PROBE from the system
 * lane with the user lane's depth. */
void ax__probe_answer(ax_actor *a, const ax__mnode *n);
/* DROP_OLD lanes' lock (actor.c: see trim_old), for owner-side walks. */
void ax__lane_lock(ax_actor *a);
void ax__lane_unlock(ax_actor *a);

/* ---- workers and the scheduler ---- */

#define AX__RING_SIZE 256u
#define AX__RING_MASK (AX__RING_SIZE - 1)
#define AX__LIFO_CAP 3
/* Consecutive extra runs an actor whose run ended with work left gets
 * through the LIFO slot before it queues at the back of the ring (sched.c,
 * run_one); at most AX__LIFO_CAP. */
#define AX__AGAIN_RUNS 1
/* Quiet re-runs (sched.c, run_one): an actor whose run ended with work left
 * and made nobody runnable on its worker runs again at once, up to this
 * many times until the ring next gives the worker an actor (and
 * AX__QUIET_NS). 16, as a streaming run's snapshots (actor.c
 * AX__OBOX_ROUNDS), which count as such re-runs. */
#ifndef AX__QUIET_RUNS
#define AX__QUIET_RUNS 16
#endif
/* ... and only while the streak is younger than this (ns, from the first
 * re-run): quiet re-runs amortise the per-run cost of short runs; an
 * actor whose runs are long (a timer setter's 1000-timer chunk, 0.3 ms)
 * gains nothing from them and would hold the ring back for 8 of them. */
#ifndef AX__QUIET_NS
#define AX__QUIET_NS 50000
#endif
/* Runs from the due list (actors woken by timer expiries) come before any
 * other for at most this long in a row (ns): then one other actor runs, if
 * there is one, so that a stream of expiries cannot starve the ring. */
#ifndef AX__DUE_NS
#define AX__DUE_NS 1000000
#endif
#define AX__INJECT_INTERVAL 61
/* The most runs of other actors a worker makes while a flush deferred by
 * ax_flush_later waits (its header's bound). */
#define AX__DEFER_RUNS AX_FLUSH_LATER_RUNS

typedef struct ax__worker {
  /* Ring of runnable actors (Tokio's queue): head packs the steal index
   * (high 32) and the real head (low 32); only the owner writes tail. */
  _Atomic uint64_t head;
  _Atomic uint32_t tail;
  _Atomic(ax_actor *) ring[AX__RING_SIZE];

  /* The LIFO slot: the owner exchanges it; a thief may take it with a CAS,
   * but only when the owner's tick has not moved for a while (the owner is
   * stuck in one long run), so ping-pong pairs stay on one core. */
  _Atomic(ax_actor *) lifo;
  /* Runs started by the owner (relaxed; thieves read it to spot a stall). */
  _Atomic uint32_t tick;
  /* The yield slot: an actor whose run ended with work left after its
   * AX__AGAIN_RUNS extra runs (a producer sending in chunks), kept by its
   * worker rather than put in the stealable ring, and run once the ring
   * entries queued before it are gone (yield_after: the ring's tail then).
   * The owner exchanges it; a thief takes it with a CAS only from a stalled
   * owner, as the LIFO slot (sched.c, steal_from). */
  _Atomic(ax_actor *) yield;
  /* The due list: actors a timer pass woke (timers.c), in firing order,
   * linked through run_next. The owner runs them before its LIFO slot,
   * yield slot and ring (next_local), oldest first; a thief takes its
   * newer half as it would the ring's (steal_from). due_head and due_tail
   * under due_lock; due_n is their count, written under it, read without
   * it as a hint. */
  _Atomic uint32_t due_n;
  ax_actor *due_head, *due_tail;
  pthread_mutex_t due_lock;

  /* Owner-only. */
  _Alignas(AX_CACHELINE) ax_system *sys;
  uint32_t index;
  uint32_t lifo_runs;
  uint32_t wakes;       /* actors this worker made runnable (ax__schedule*) */
  uint32_t quiet_runs;  /* quiet re-runs since the ring last gave us an actor */
  uint64_t quiet_since; /* when the first of them was granted (ns) */
  uint32_t yield_after;  /* ring tail when the yield slot was filled */
  bool due_streak;       /* the last actor run came from the due list... */
  uint64_t due_since;    /* ...and the due runs in a row began then (ns) */
  /* Thief side (steal_from): the victim we watch, its ring's tail and its
   * tick when we started watching them, and since when (ns). */
  uint32_t watch_victim;
  uint32_t watch_tail;
  uint32_t watch_tick;
  uint32_t watch_rounds; /* our search rounds since its tick last moved */
  uint64_t ring_since;
  uint64_t tick_since;
  uint64_t stole_at;   /* when we last took from a ring (0: judged) */
  uint64_t steal_wait; /* the ring age we wait for (see steal_paid) */
  uint32_t stole_n;    /* how many actors that steal took */
  /* Solo phases (sys->solo names another worker): the solo worker's tick
   * as we last saw it and since when (ns); whether our last park ended by
   * a notify (sched.c solo_takeover). */
  uint32_t solo_tick;
  uint64_t solo_since;
  bool solo_woken;
  /* Pusher side, while some worker is patient (notify_parked_local): our
   * tick and clock at our last wake of a sleeper for a push, and pushes
   * since we last judged. */
  uint32_t notify_tick;
  uint32_t patient_pushes;
  uint64_t notify_ns;
  /* Its tick as the scheduler's reactor tick last saw it (sched.c
   * sched_tick; written by whoever drives, under the drive lock). */
  uint32_t tick_seen;
  uint64_t rng;
  bool searching;
  pthread_t thread;
  /* Actors whose flush waits for the end of this worker's pass
   * (ax_flush_later), linked through run_next, FIFO; defer_runs counts
   * the runs since the list became non-empty (sched.c). */
  ax_actor *defer_head, *defer_tail;
  uint32_t defer_runs;
  uint64_t defer_since_ns; /* when the list became non-empty */

  /* Parking: notified and driving are guarded by park_lock. driving: the
   * parked worker is (about to be) inside a reactor pass, so a notifier
   * wakes it through the reactor (its poller), not park_cv. */
  pthread_mutex_t park_lock;
  pthread_cond_t park_cv;
  bool notified;
  bool driving;

  /* The pid being run (0 between runs): owner writes (relaxed); a waiting
   * shutdown reads it with runs to spot a callback that never returns
   * (relaxed is enough: a stuck worker's last stores are long visible). */
  _Atomic uint64_t running;
  /* Deferred destroys (qsbr.c): the epoch this worker last acknowledged
   * between two runs (AX__QS_OFFLINE while parked or not started: it holds
   * no actor found without a reference). Owner writes (release), a
   * reclaimer reads (acquire); qs_local is the owner's copy. */
  _Atomic uint64_t qs_seen;
  uint64_t qs_local;
  /* Actors this worker retired, not yet handed to the system's limbo
   * (linked through run_next; qs_nmine of them, qs_age ticks since the
   * first: qsbr.h). */
  ax_actor *qs_mine;
  uint32_t qs_nmine, qs_age;
  /* Shutdown thread only: the stall watch (system.c). */
  uint64_t watch_pid, watch_runs, watch_since_ns, watch_warned_ns;

  /* Counters: owner writes (relaxed), stats readers read. */
  _Atomic uint64_t parked_ns;  /* total time parked */
  _Atomic uint64_t park_since; /* clock (ns) when the current park began, 0 when not parked */
  uint64_t start_ns;           /* set before the thread starts; immutable */
  _Atomic uint64_t busy_hw;    /* readers: the highest busy time reported (CAS max) */
  _Atomic uint64_t runs;
  _Atomic uint64_t steals;
  _Atomic uint64_t parks;
  _Atomic uint64_t sent;
  _Atomic uint64_t chained; /* of sent: pushed in chains (actor.c, "the outbox") */
} ax__worker;

/* The thread's run context: which actor is running here, what it asked for. */
struct ax__ctx {
  ax__worker *worker; /* NULL on a non-worker thread */
  ax_actor *current;  /* the actor whose callback is running, or NULL */
  bool exiting;       /* the current actor asked to stop */
  bool delivered;     /* the behaviour ran in this run (flush is due) */
  bool route_held;    /* the route held frames in this run (ax__run_route_held) */
  ax_reason reason;
  uint64_t mute_on;   /* pid of a receiver that should mute the current actor */
  struct ax__obs *obs; /* the current actor's metrics block while it runs, else NULL */
  bool hooks;          /* this run delivers through ax__obs_deliver (obs or a tracer) */
  bool flush_later;    /* the current actor called ax_flush_later in this run */
  bool flush_owed;     /* set by the scheduler before it runs an actor from its
                          deferred list: this run flushes, whatever it delivers */
  bool filling;        /* this run's sends took a bounded lane past a quarter of its
                          limit (admit): the run is not quiet (sched.c) */
  bool expiries;       /* this run took a timer expiry of this node (sched.c: an
                          actor with more of them next goes to the due list) */
  bool obox_on;        /* a streaming run is on: its plain sends are chained
                          (actor.c, "the outbox"); false outside one */
  /* The system whose workers' sends find receivers without a table
   * reference (qsbr.c): set while this thread is one of its workers and
   * online (between its parks); NULL elsewhere, where sends take one. */
  struct ax_system *qs_sys;
  struct obox *obox;   /* the worker thread's outbox (actor.c), made by its
                          first streaming run; ax__obox_free */
};


/* ---- the registry ---- */
typedef struct ax__reg_entry ax__reg_entry;
typedef struct ax__registry {
  pthread_mutex_t lock;
  ax__reg_entry **by_name;
  ax__reg_entry **by_pid;
  size_t nbuckets;
  size_t count;
} ax__registry;

ax_err ax__registry_init(ax__registry *r);
void ax__registry_fini(ax__registry *r);
/* Copies pid's registered name into buf[0..cap) ("" when it has none);
 * cut to fit. */
void ax__registry_name_of(ax_system *sys, uint64_t pid, char *buf, size_t cap);
/* Removes pid's name, if any (actor stop). */
void ax__registry_drop_pid(ax_system *sys, uint64_t pid);

/* ---- the timer service (timers.c): sharded wheels, fired by any thread ---- */
typedef struct ax__tmr ax__tmr;
typedef struct ax__tshard ax__tshard;
typedef struct ax__timers {
  /* One shard (a locked wheel) per worker, plus a central one (the last)
   * for timers set off the workers. Allocated by ax__timers_start, freed
   * by ax__timers_free; immutable in between. */
  ax__tshard *shards;
  uint32_t nshards;
  /* Started and not stopped. release/acquire: a worker that sees it set
   * sees shards and nshards (workers run before the service starts). */
  _Atomic bool started;
  /* One fire pass at a time (a try-lock taken by the reactor's tick or a
   * worker's poll): acquire/release around the scratch below. */
  _Atomic bool firing;
  /* The latest time (in ticks, the unit of every deadline of the
   * service: timers.c, TICK_SHIFT) by which the reactor runs the tick again
   * (UINT64_MAX: only when woken). A worker that lowers a shard's earliest
   * deadline below it wakes the reactor. seq_cst: see lower_next. */
  _Atomic uint64_t reactor_at;
  /* The reactor's tick waits for no deadline before this (ticks): a
   * millisecond after its last wake-up that found one due, so a sleeping
   * system wakes for timers at most once a millisecond however fine the
   * ticks (timers.c, timers_tick). Written by the tick before reactor_at;
   * relaxed: read after reactor_at's seq_cst load (see lower_next). */
  _Atomic uint64_t quiet_until;
  /* The lowest of the shards' published deadlines, for workers' polls
   * (one load per run). seq_cst: see lower_next and fire_pass. */
  _Alignas(AX_CACHELINE) _Atomic uint64_t earliest;
  /* Set by the reactor's tick when a deadline has come and it leaves the
   * pass to an awake worker: a poll after a run then reads the clock.
   * relaxed: a hint; the tick fires itself a millisecond later. */
  _Atomic bool kick;
  /* Set by a pass that woke fewer than half of its recipients (the others
   * were busy: they read their expiries at their next run anyway):
   * workers' polls between runs then fire on half ms (COARSE_TICKS) until
   * a pass wakes more (timers.c). relaxed: a hint. */
  _Atomic bool coarse;
  /* Owners woken by a pass of the reactor while a worker was awake, for
   * the workers' polls to put on their own queues (linked by run_next;
   * under handoff_lock). A tick moves what is still there a pass later to
   * the inject queue, so nothing waits on a worker that went to sleep.
   * handoff_n: relaxed, a hint for the polls; written under the lock. */
  _Atomic size_t handoff_n;
  pthread_mutex_t handoff_lock;
  ax_actor *handoff_head, *handoff_tail;
  /* Fire pass scratch (the holder of `firing` only). */
  _Alignas(AX_CACHELINE) ax__wlist *lists;          /* one expired list per shard */
  struct ax__tgroup *groups; /* one expiry chain per owner per pass; clean between passes */
  size_t groups_cap;
  size_t *groups_used;       /* the cells a pass filled (at most groups_cap / 2) */
  size_t ngroups_used;
  /* The ids of fired direct timers, chained per owner (see ax__tgroup):
   * groups_cap / 4 entries, at least one per expiry of the pass. */
  struct ax__treap *reaps;
  size_t nreaps;
  /* Direct timers sent and not yet on a reap list: reap lists go out
   * every few ms, not every pass (timers.c, pend_add). */
  struct ax__tpend *pend;
} ax__timers;

/* Starts the service: registers its tick with sys->reactor (running). */
ax_err ax__timers_start(ax_system *sys);
/* Releases every timer left once sys->reactor has stopped (every actor has
 * stopped by then); the shards stay until ax__timers_free (idle workers
 * may still poll). Idempotent. Thread: the stopping thread. */
void ax__timers_stop(ax_system *sys);
/* Frees the shards once the workers have stopped. Idempotent. */
void ax__timers_free(ax_system *sys);
/* A worker's hook (sched.c, after each run and before searching): fires
 * whatever is due in any shard, unless another thread is firing; the
 * owners it wakes go onto this worker's queue. Returns true if it
 * delivered expiries. Cost: one relaxed load when no timer is pending; a
 * clock read when `clock` (every 16 runs, and before searching), when the
 * earliest deadline is within a millisecond of the worker's last reading,
 * or when the reactor's tick saw a deadline come (kick). Thread: a worker. */
bool ax__timers_poll_slow(ax_system *sys, bool clock);
/* Timers pending in all shards (ax_system_stats). Thread: any. */
size_t ax__timers_pending(ax_system *sys);
/* Deterministic mode (det.c), on the driving thread: run every queued
 * command and return how many have run since the start; the wheel's next
 * deadline (a lower bound, UINT64_MAX: none); fire the first timer due at
 * now (deadline, then the order they were set) and return how many fired
 * (0 or 1). */
uint64_t ax__timers_det_commands(ax_system *sys);
uint64_t ax__timers_det_next(ax_system *sys);
size_t ax__timers_det_fire(ax_system *sys, uint64_t now);
/* Owner side: handles a timer node popped from the user lane; returns true
 * if n was turned into a message for the behaviour. */
bool ax__timers_on_fire(ax_actor *a, ax__mnode *n);
/* Owner side: a node of a stopped actor's mailbox, freed undelivered:
 * releases the timer an expiry holds (a no-op for other nodes). */
void ax__timers_on_drained(ax__mnode *n);
/* Owner side: a reply to a timed request; false if it came too late. */
bool ax__timers_on_reply(ax_actor *a, ax__mnode *n);
/* Owner side: record activity for the receive timeout. */
void ax__timers_activity(ax_actor *a);
/* Owner side: cancels every timer of a stopping actor. */
void ax__timers_on_stop(ax_actor *a);
/* Owner side: arms the timeout of a timed request; the request travels
 * with ref | 1, the timer's id is ref. */
ax_err ax__timers_request(ax_actor *a, ax_ref ref, uint32_t timeout_ms);
/* Owner side: withdraws a timed request whose send failed. */
void ax__timers_forget(ax_actor *a, ax_ref ref);

/* Internal message flags on timer nodes (never seen by behaviours). */
#define AX__MSGF_TFIRE (1u << 31)  /* a timer expiry for the owner */
#define AX__MSGF_TREQ (1u << 30)   /* ... of a request timeout */
#define AX__MSGF_TRECV (1u << 29)  /* ... of the receive timeout */
#define AX__MSGF_TREPEAT (1u << 28)/* ... of an interval timer */
#define AX__MSGF_TDIRECT (1u << 21)/* on a timer: for another actor, sent by the firing pass;
                                      * on a message: an expiry of this node's timers (actor.c) */
#define AX__MSGF_TREAP (1u << 20)  /* the owner's list of fired direct timers to forget */
#define AX__MSGF_INTERNAL                                                                     \
  (AX__MSGF_TFIRE | AX__MSGF_TREQ | AX__MSGF_TRECV | AX__MSGF_TREPEAT | AX__MSGF_TDIRECT | \
   AX__MSGF_TREAP | (0xfu << 24))

/* ---- the system ---- */
typedef struct ax__det ax__det; /* deterministic mode's state (det.c) */
enum { AX__RUNNING = 0, AX__STOPPING = 1, AX__STOPPED = 2 };

/* Runs every started layer's on_actor_stop for pid (the stop path). */
void ax__layers_on_actor_stop(ax_system *sys, uint64_t pid);

struct ax_system {
  ax_system_config cfg;
  /* Read on every send and delivery, written rarely: next to cfg, away from
   * the counters below. */
  _Atomic(const ax_tracer *) tracer; /* ax_trace_set (acquire/release) */
  _Atomic unsigned obs_default;      /* ax_metrics_track_all (relaxed) */
  /* 1 once a tracer was set or an actor tracked (never cleared): until
   * then a send and a run test only this byte (relaxed: a hook turned on
   * concurrently applies from the next send or run that sees it). */
  _Atomic uint8_t hooks_any;
  /* Deferred destroys (qsbr.c), read by every worker between two runs:
   * the epoch (bumped when a batch starts its grace period) and whether
   * any destroy waits (limbo or batch). */
  _Atomic uint64_t qs_epoch;
  _Atomic uint32_t qs_pending;
  uint32_t nworkers;  /* worker threads running */
  uint32_t nalloc;    /* workers allocated */
  /* AX__SOLO_NONE while every worker runs; else the index of the one
   * worker that does (a solo phase of the parallelism probe, sched.c
   * par_step): the others give their queued actors to the inject queue
   * and steal only from a stuck owner. Written once per phase (ms apart),
   * read at every pick (relaxed: a hint; a stale value costs one pick of
   * the wrong mode, never an actor). */
  _Atomic uint32_t solo;
  ax__worker *workers;
  ax__table table;
  ax__registry registry;

  /* Inject queue for work from outside the workers. inject_len is read
   * without the lock to skip it cheaply. */
  pthread_mutex_t inject_lock;
  ax_actor *inject_head;
  ax_actor *inject_tail;
  _Atomic size_t inject_len;

  /* Idle workers (Tokio's idle protocol). */
  pthread_mutex_t idle_lock;
  uint32_t *sleepers;
  uint32_t nsleepers;
  _Atomic uint32_t num_searching;
  _Atomic uint32_t num_unparked;
  /* Workers whose steals stopped paying (steal_wait > 0, sched.c
   * steal_paid): while any, workers wake sleepers for their own pushes at
   * most once per AX__PATIENT_NOTIFY_RUNS runs. relaxed: a hint. */
  _Atomic uint32_t num_patient;
  _Atomic bool stop_workers;

  _Atomic int state; /* AX__RUNNING / STOPPING / STOPPED */
  pthread_mutex_t wait_lock;
  pthread_cond_t wait_cv;

  _Atomic uint64_t live;
  _Atomic uint64_t spawning; /* spawns in flight (ax__spawn_enter) */
  _Atomic uint64_t spawned;
  _Atomic uint64_t stopped;
  _Atomic uint64_t next_ref;
  _Atomic uint64_t sent;
  _Atomic uint64_t dead_letters;
  _Atomic uint64_t dropped;
  _Atomic uint64_t late_replies;
  /* Deferred destroys (qsbr.c): stopped actors not yet destroyed, a stack
   * linked through run_next (pushed by any thread); the batch waiting out
   * its grace period and the epoch it waits for, under qs_lock. */
  _Atomic(ax_actor *) qs_limbo;
  pthread_mutex_t qs_lock;
  ax_actor *qs_wait;
  uint64_t qs_wait_epoch;
  uint64_t qs_batches; /* batches destroyed so far (ax__qs_sync), under qs_lock */
  /* Top-level supervisors in start order (ax__system_add_top), stopped in
   * reverse order first at shutdown. Guarded by wait_lock. */
  uint64_t *tops;
  size_t ntops, tops_cap;
  /* The layers above actor (ax__layer_start): a slot's hooks are written
   * before its state is published (release); readers acquire the state. */
  struct {
    _Atomic(void *) state;
    void (*on_actor_stop)(ax_system *sys, void *state, uint64_t pid);
    void (*fini)(ax_system *sys, void *state);
  } layers[AX__LAYER_COUNT];
  /* The route for pids of other nodes (ax__route_set), or NULL. */
  _Atomic(const ax__route *) route;
  uint32_t stall_warn_ms; /* set before shutdown; read by the shutdown thread */
  _Atomic uint64_t timers_fired;
  _Atomic uint64_t restarts; /* supervisor restarts (ax__obs_restart) */
  /* Tracked actors (obs.c): pid -> 0, under obs_lock. */
  pthread_mutex_t obs_lock;
  ax__u64map obs_pids;
  /* The reactor: started by ax_system_new, stopped by ax_system_shutdown
   * (after every actor), freed only by ax_system_free, so a late
   * ax_system_clock_moved stays harmless. */
  ax__reactor *reactor;
  ax__timers timers;
  ax__det *det; /* deterministic mode, or NULL (set before the start) */
  /* The parallelism probe (sched.c par_step): the phase's state, guarded by
   * `lock` (a try-lock: whoever sees the phase end first judges it; the
   * others go on); next_ns is read without it as a hint. */
  struct {
    _Atomic bool lock;
    _Atomic uint64_t next_ns; /* when the current phase ends */
    uint32_t phase;           /* AX__PAR_* (sched.c) */
    uint32_t verdict;         /* the last long phase: 1 solo, 0 all workers */
    uint32_t owner;           /* the last solo phase's worker, or AX__SOLO_NONE */
    uint64_t long_ns;         /* the long phase's length (doubles per equal verdict) */
    uint64_t start_ns, start_sent, start_parked; /* the measured span's start */
    uint64_t all_sent, all_ns;                   /* the all-workers probe's result */
    uint64_t solo_sent, solo_ns;                 /* the last solo probe's (0: none yet) */
    _Atomic uint64_t solo_phases, all_phases;    /* verdicts so far (stats) */
  } par;
};
#define AX__SOLO_NONE UINT32_MAX
/* The parallelism probe's mode (sched.c par_step; tests set it before a
 * system starts): PROBE measures and decides; SOLO makes worker 0 run
 * alone throughout (a takeover aside); ALL never leaves all workers;
 * SOLO_START starts with worker 0 alone, then probes as PROBE. */
enum {
  AX__PAR_MODE_PROBE = 0,
  AX__PAR_MODE_SOLO = 1,
  AX__PAR_MODE_ALL = 2,
  AX__PAR_MODE_SOLO_START = 3
};
extern _Atomic uint32_t ax__sched_par_mode;

/* deterministic mode (det.c) */
/* Sets sys up for the mode (cfg.deterministic_seed != 0), before the
 * scheduler starts. Errors: AX_EINVAL (cfg.clock_ms set), AX_ENOMEM. */
ax_err ax__det_new(ax_system *sys);
void ax__det_free(ax_system *sys);
/* A waiting shutdown's round: run until idle, then move the clock to the
 * next timer deadline and run again. */
void ax__det_settle(ax_system *sys);

/* scheduler (sched.c) */
ax_err ax__sched_start(ax_system *sys);
void ax__sched_stop(ax_system *sys);
void ax__sched_free(ax_system *sys);
/* Makes a runnable: the current worker's LIFO slot when called on one of
 * sys's workers, else the inject queue (waking a parked worker). */
void ax__schedule(ax_system *sys, ax_actor *a);
/* Makes a whole list of actors (linked through run_next) runnable with one
 * inject push and one wake-up: for the reactor driver's batches. */
void ax__schedule_many(ax_system *sys, ax_actor *first, ax_actor *last, size_t n);
/* Puts a at the back of the current worker's ring (or inject). */
void ax__schedule_back(ax_system *sys, ax_actor *a);
/* Makes a list of actors (linked through run_next, in firing order)
 * runnable at the back of the current worker's due list, which it runs
 * first, oldest first (before its LIFO slot and ring); off the workers,
 * the inject queue (as ax__schedule_many): for actors woken by timer
 * expiries (timers.c). */
void ax__schedule_due(ax_system *sys, ax_actor *first, ax_actor *last, size_t n);
/* On a worker of sys whose due list is empty: takes the newer half of
 * another worker's due list (of at least two) onto its own, so that the
 * worker whose passes woke them does not run every receiver (timers.c's
 * polls, between runs). Returns true if it took any. */
bool ax__sched_due_share(ax_system *sys);
/* The reactor's yield hook (ax__reactor_start): the reactor thread handed
 * the driver's role to the parked workers; wake one (arg: the system). */
void ax__sched_reactor_yield(void *arg);
/* Tests only (NULL otherwise): called by a parking worker after it set
 * driving and dropped park_lock, just before its reactor pass, so a test
 * can interleave a notify and another thread's pass at that point. */
extern void (*_Atomic ax__sched_drive_hook)(ax_system *sys);
/* Tests only: a steal pays when the stolen actors kept the thief busy this
 * many ns each (default AX__STEAL_PAYS_NS, sched.c steal_paid); set before
 * the system's workers start. */
extern _Atomic uint32_t ax__sched_steal_pays_ns;
/* Tests only: the bound of a due streak (default AX__DUE_NS, sched.c
 * next_local), so that a test's long runs do not decide an order; set
 * before the system's workers start. */
extern _Atomic uint64_t ax__sched_due_ns;
/* Deterministic mode: takes the next runnable actor of w (its LIFO slot,
 * its ring, then the inject queue), or NULL. The driving thread only. */
ax_actor *ax__sched_take(ax__worker *w);

/* actor.c */
/* AX__RUN_DEFER: the run ended without its flush (ax_flush_later); the
 * actor stays scheduled and the worker must run it again, with
 * ctx.flush_owed set, at the end of its pass (sched.c, "deferred flushes"). */
typedef enum {
  AX__RUN_IDLE,
  AX__RUN_AGAIN,
  AX__RUN_MUTED,
  AX__RUN_DEAD,
  AX__RUN_DEFER
} ax__run_result;
ax__run_result ax__actor_run(ax_actor *a);
/* ax__actor_run for an actor hinted to stream (a->obox: actor.c, "the
 * outbox"); the same contract. */
ax__run_result ax__actor_run_stream(ax_actor *a);
/* Frees the calling worker thread's outbox (at its end; it holds no chain
 * between runs). */
void ax__obox_free(ax__ctx *c);

/* The system-lane half of an exit signal: the placeholder it decides. The
 * placeholder is never freed before its notice is handled (the run loop does
 * not pass an undecided placeholder), except by the target's death, and a
 * dead actor's drained notices are never read. */
typedef struct ax__exit_notice {
  ax_exit_info info;
  ax__mnode *ph;
} ax__exit_notice;

/* A spawn in flight (system.c). ax__spawn_enter counts one and returns true
 * while the system runs; false (nothing counted) once shutdown has begun.
 * ax__spawn_leave ends it: with counted = true after sys->live counts the
 * new actor, false on a failed spawn. Shutdown and ax_system_wait wait until
 * none is in flight and none is live. Thread: any. */
bool ax__spawn_enter(ax_system *sys);
void ax__spawn_leave(ax_system *sys, bool counted);
/* Sets how often a waiting shutdown logs actors stuck in one callback
 * (default AX__STALL_WARN_MS). Before ax_system_shutdown; for tests. */
#define AX__STALL_WARN_MS 5000u
void ax__system_set_stall_warn_ms(ax_system *sys, uint32_t ms);

/* Spawn without the context checks (used by ax_call's proxy). link_to, if
 * not NULL, is the calling actor, linked to the child before init runs. */
ax_err ax__spawn(ax_system *sys, const ax_actor_spec *spec, const void *arg, size_t len,
                 ax_pid *out, ax_actor *link_to);

/* links.c */
/* Handles a link/monitor signal from the system lane (owner). */
void ax__links_signal(ax_actor *a, ax__ctx *c, ax__mnode *n);
/* Decides at delivery whether a DOWN or a trapped link exit is still wanted. */
bool ax__links_accept(ax_actor *a, const ax__mnode *n);
/* A link's half: other linked to self in x->links, with the exit signal
 * self will send other at its death built now (other local), so that a
 * death never needs memory to reach its links (docs/hardening.md). false
 * on out of memory (nothing added). Replacing an existing half keeps its
 * reservation. ax__link_del removes a half and frees its reservation;
 * false if absent. Owner only. */
bool ax__link_put(ax_system *sys, ax__actor_ext *x, uint64_t self, uint64_t other);
bool ax__link_del(ax__actor_ext *x, uint64_t other);
/* actor.c: the reserved exit signal of a link (the notice node; its
 * payload holds the placeholder); NULL on out of memory. _send fills in
 * the reason and pushes it (AX_ENOACTOR, freed, if the target is gone);
 * _unreserve frees it unsent. */
ax__mnode *ax__link_exit_reserve(uint64_t from, uint64_t to);
void ax__link_exit_unreserve(ax__mnode *notice);
ax_err ax__link_exit_send(ax_system *sys, ax__mnode *notice, ax_reason reason);
/* Tells links and watchers that a stops with reason (owner, at stop). */
void ax__links_on_stop(ax_actor *a, ax_reason reason);
/* Answers link/monitor requests found in a dead actor's system lane. */
void ax__links_on_drained(ax_system *sys, uint64_t dead, const ax__mnode *n);
/* Frees the link/monitor maps. */
void ax__links_free(ax__actor_ext *x);

/* Internal flag on a trapped link exit (checked against links at delivery). */
#define AX__MSGF_LINKEXIT (1u << 27)
/* Exit placeholders on the user lane: XPEND marks one; its notice sets
 * XDONE when handled, plus XTRAP when the target trapped (deliver it). */
#define AX__MSGF_XPEND (1u << 26)
#define AX__MSGF_XDONE (1u << 25)
#define AX__MSGF_XTRAP (1u << 24)

/* Refs are even; a request with a timeout uses ref | 1, so a reply says by
 * its ref alone whether a timeout may have claimed it. */
static inline ax_ref ax__new_ref(ax_system *sys) {
  return atomic_fetch_add_explicit(&sys->next_ref, 2, memory_order_relaxed);
}

ax__actor_ext *ax__ext(ax_actor *a);

/* ---- metrics and tracing (obs.c) ---- */
/* Sender side, once hooks_any is set, before user message n is pushed to
 * r: counts the push and stamps n for the wait histogram (r tracked),
 * reports the SEND (a tracer). */
void ax__obs_on_send(ax_system *sys, ax_actor *r, ax__mnode *n, uint64_t from);
/* Owner side, once hooks_any is set, at the start of a's run: sets
 * c->obs (a tracked: depth, peak) and c->hooks. */
void ax__obs_run_begin(ax_actor *a, ax__ctx *c);
/* Owner side: a user message popped from the lane (depth, wait time). */
void ax__obs_on_pop(struct ax__obs *o, ax__mnode *n);
/* Owner side: runs the behaviour on n with the hooks (receive event,
 * messages in, handling time). */
ax_err ax__obs_deliver(ax_actor *a, ax__ctx *c, ax__mnode *n);
/* Counters kept by the running actor (owner side). */
void ax__obs_count_out(struct ax__obs *o);
void ax__obs_dead_letter(struct ax__obs *o);
/* Spawn: applies track_all; stop: forgets the actor, frees its block. */
void ax__obs_on_spawn(ax_actor *a);
void ax__obs_on_stop(ax_actor *a);
void ax__obs_free(ax_actor *a);
/* Trace events (t: the tracer loaded by the caller, not NULL). */
void ax__trace_actor(const ax_tracer *t, ax_trace_kind kind, ax_actor *a, uint64_t peer,
                     ax_reason reason);
void ax__trace_msg(const ax_tracer *t, ax_trace_kind kind, uint64_t actor, uint64_t peer,
                   const ax_msg *m);
/* True once metrics or tracing may be in use (ax_system.hooks_any). A build
 * with AX_NO_HOOKS (cmake -DAX_NO_HOOKS=ON: for measuring what the hooks
 * cost on the same tree, bench/metrics_cost.sh) compiles every hook out:
 * ax_trace_set and ax_metrics_track* then return AX_ENOTSUP. */
#ifdef AX_NO_HOOKS
#define AX__HOOKS_ON(sys) ((void)(sys), false)
#else
#define AX__HOOKS_ON(sys) \
  AX_UNLIKELY(atomic_load_explicit(&(sys)->hooks_any, memory_order_relaxed) != 0)
#endif
static inline const ax_tracer *ax__tracer(ax_system *sys) {
  /* acquire: pairs with ax_trace_set, so t's fields are visible. */
  return atomic_load_explicit(&sys->tracer, memory_order_acquire);
}
/* Internal flags set by ax__obs_on_push, cleared at the pop: COUNTED (the
 * push was counted in the depth), STAMPED (n->to holds the push time, ns). */
#define AX__MSGF_COUNTED (1u << 23)
#define AX__MSGF_STAMPED (1u << 22)

/* A bundle: one user-lane node that carries several plain messages of one
 * sender (the outbox's chains, actor.c), each a slot in its payload: the
 * slots sit side by side, so a streaming producer writes and its receiver
 * reads them a line at a time (a message without payload is 8 bytes, eight
 * a line), where a node each cost a line each (and the node cache's
 * pointer chase). A slot is its type and length, then 16 payload bytes
 * when the length is not 0 (the outbox's fast path takes 0 or 8..16).
 * Header: msg.from the sender, msg.type the bytes written (set when the
 * outbox seals it, before the push), msg.ref the receiver's cursor (bytes
 * delivered; owner only), msg.len the payload's size (so ax__msg_free
 * frees the right class), to the receiver. Made only by the outbox; a
 * peer's or caller's flags never carry the bit (conn.c masks remote flags
 * to the public ones; ax_send takes none). */
#define AX__MSGF_BUNDLE (1u << 19)
#define AX__BUNDLE_BYTES 384u /* + the 64-byte header: the node cache's AX__NCACHE_BIG */
typedef struct ax__bslot {
  uint32_t type;
  uint32_t len; /* 0, or 8..16 bytes follow */
} ax__bslot;
static inline uint32_t ax__bslot_size(size_t len) { return len ? 24u : 8u; }
_Static_assert(sizeof(ax__mnode) + AX__BUNDLE_BYTES == AX__NCACHE_BIG, "a bundle is the node cache's third class");
/* The messages a lane node still holds: a bundle's undelivered slots, else
 * 1. Owner only (the cursor); a walk, for the drain and the probe. */
static inline uint32_t ax__node_msgs(const ax__mnode *n) {
  if (AX_LIKELY(!(n->msg.flags & AX__MSGF_BUNDLE))) return 1;
  uint32_t k = 0;
  for (uint32_t off = (uint32_t)n->msg.ref; off < n->msg.type; k++)
    off += ax__bslot_size(((const ax__bslot *)(n->payload + off))->len);
  return k;
}

/* The worker's timer hook (see ax__timers_poll_slow), inline for its
 * common case: no timer pending and nothing handed off, two relaxed loads
 * from one line (hints: the reactor's tick is the backstop). */
static inline bool ax__timers_poll(ax_system *sys, bool clock) {
  ax__timers *T = &sys->timers;
  if (atomic_load_explicit(&T->earliest, memory_order_relaxed) == UINT64_MAX &&
      !atomic_load_explicit(&T->handoff_n, memory_order_relaxed))
    return false;
  return ax__timers_poll_slow(sys, clock);
}

#endif
