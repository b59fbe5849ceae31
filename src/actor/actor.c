/* Axon: actors: spawn, send, the run loop, exit signals, backpressure muting
 * and the stop path. The lane protocol is in mailbox/mailbox.h; the run
 * queues in sched.c; pids in table.c. */
#include <sched.h>
#include <string.h>

#include "actor/actor_int.h"
#include "actor/qsbr.h"

/* A sender parked on a receiver's mute stack. */
typedef struct ax__mute_entry {
  struct ax__mute_entry *next;
  uint64_t pid;  /* the muted sender */
  uint32_t seq;  /* its mute_state (sequence | MUTED) when muted */
} ax__mute_entry;


/* `hooked` (a constant in each copy of the send and run paths below) says
 * whether metrics or tracing may be in use (ax_system.hooks_any, which is
 * never cleared once set): the copies without hooks carry no test of them,
 * so a program that never turns them on pays one branch per send and one
 * per run (measured: the tests inline cost fjthrput 9%, docs/observability.md). */
/* n messages sent from this thread: its worker's counter (relaxed load and
 * store, not an RMW: only the worker writes it, readers want a recent
 * count), or the system's for other threads. */
static inline __attribute__((always_inline)) void add_sent(ax_system *sys, ax__ctx *c,
                                                           uint64_t n) {
  if (c->worker && c->worker->sys == sys)
    atomic_store_explicit(&c->worker->sent,
                          atomic_load_explicit(&c->worker->sent, memory_order_relaxed) + n,
                          memory_order_relaxed);
  else
    atomic_fetch_add_explicit(&sys->sent, n, memory_order_relaxed);
}

static inline __attribute__((always_inline)) void count_sent(ax_system *sys, ax__ctx *c,
                                                             const bool hooked) {
  if (hooked && AX_UNLIKELY(c->obs != NULL)) ax__obs_count_out(c->obs);
  add_sent(sys, c, 1);
}

/* ---- muting (Pony-style backpressure) ---- */

/* Unmutes pid if its mute_state still equals `expect` (ignoring NAMED), or
 * if expect is 0, whatever muting is in force. The winner of the CAS
 * schedules the actor: exactly one party does. */
static void try_unmute(ax_system *sys, uint64_t pid, uint32_t expect) {
  ax_actor *s = ax__table_acquire(&sys->table, pid);
  if (!s) return;
  uint32_t st = atomic_load_explicit(&s->mute_state, memory_order_acquire);
  for (;;) {
    if (!(st & AX__MS_MUTED) || (expect && (st & ~AX__MS_NAMED) != expect)) break;
    uint32_t next = (st + AX__MS_SEQ_ONE) & ~AX__MS_MUTED;
    /* acq_rel: the winner takes over scheduling of the muted actor and must
     * see the muter's writes to it. */
    if (atomic_compare_exchange_weak_explicit(&s->mute_state, &st, next, memory_order_acq_rel,
                                              memory_order_acquire)) {
      ax__schedule_back(sys, s);
      break;
    }
  }
  ax__table_release(&sys->table, pid);
}

/* Unmutes every sender waiting on r. */
static void unmute_senders(ax_actor *r) {
  uintptr_t top = atomic_exchange_explicit(&ax__actor_bounded(r)->mute_stack, 0, memory_order_seq_cst);
  for (ax__mute_entry *e = (ax__mute_entry *)top, *next; e; e = next) {
    next = e->next;
    try_unmute(r->sys, e->pid, e->seq);
    ax__free(e, sizeof(*e));
  }
}

/* After a run that sent to an overloaded receiver: park the actor on the
 * receiver's mute stack. The re-check after the push pairs (seq_cst) with
 * the receiver's decrement of queued followed by its load of mute_stack: one
 * of the two sees the other, so a mute is never stranded. */
static ax__run_result mute_self(ax_actor *a, uint64_t receiver) {
  ax_system *sys = a->sys;
  uint64_t self_pid = a->pid;
  ax__mute_entry *e = ax__alloc(sizeof(*e));
  if (!e) return AX__RUN_AGAIN; /* cannot park: keep running (no loss) */
  uint32_t st = atomic_load_explicit(&a->mute_state, memory_order_relaxed), next;
  do {
    next = (st + AX__MS_SEQ_ONE) | AX__MS_MUTED;
  } while (!atomic_compare_exchange_weak_explicit(&a->mute_state, &st, next, memory_order_acq_rel,
                                                  memory_order_relaxed));
  uint32_t seq = next & ~AX__MS_NAMED;
  e->pid = self_pid;
  e->seq = seq;
  ax_actor *r = ax__table_acquire(&sys->table, receiver);
  if (!r) {
    ax__free(e, sizeof(*e));
    try_unmute(sys, self_pid, seq);
    return AX__RUN_MUTED; /* try_unmute rescheduled us */
  }
  /* Only a bounded (backpressure) lane mutes its senders (admit_slow), so
   * r has a bounded block. */
  _Atomic uintptr_t *stack = &ax__actor_bounded(r)->mute_stack;
  uintptr_t top = atomic_load_explicit(stack, memory_order_relaxed);
  do {
    e->next = (ax__mute_entry *)top;
  } while (!atomic_compare_exchange_weak_explicit(stack, &top, (uintptr_t)e,
                                                  memory_order_seq_cst, memory_order_relaxed));
  bool over = atomic_load_explicit(&r->queued, memory_order_seq_cst) >= r->limit;
  ax__table_release(&sys->table, receiver);
  /* From here `a` may already run elsewhere: only its pid is used. And e
   * belongs to the receiver once pushed (its unmute_senders frees it), so
   * the sequence comes from the local copy. */
  if (!over) try_unmute(sys, self_pid, seq);
  return AX__RUN_MUTED;
}

/* ---- sending ---- */

/* DROP_OLD lanes: the owner's pops and a sender's trimming exclude each
 * other with lane_lock, held for a few instructions at a time (never while
 * a behaviour runs). */
static inline void lane_lock(ax_actor *a) {
  /* acquire on the winning exchange pairs with lane_unlock's release; the
   * waiters spin on a relaxed load (test-and-test-and-set) so they do not
   * bounce the line with writes while the holder works. */
  for (unsigned i = 0; atomic_exchange_explicit(&a->lane_lock, 1, memory_order_acquire); i++) {
    while (atomic_load_explicit(&a->lane_lock, memory_order_relaxed)) {
      if (i++ < 64)
        ax__cpu_relax();
      else
        sched_yield(); /* the holder was preempted */
    }
  }
}
static inline void lane_unlock(ax_actor *a) {
  atomic_store_explicit(&a->lane_lock, 0, memory_order_release);
}
/* For the depth probe (inspect.c), off the hot path. */
void ax__lane_lock(ax_actor *a) { lane_lock(a); }
void ax__lane_unlock(ax_actor *a) { lane_unlock(a); }

/* DROP_OLD bounds memory at the sender: every send to a DROP_OLD lane pushes
 * under lane_lock, and one that went past the limit then drops the oldest
 * user messages down to the limit itself, whether or not the receiver runs.
 * Pushing under the lock means no other user message is ever half-linked
 * while a sender trims, so the lane holds at most limit + 1 user messages
 * (the +1: the newest node is never unlinked, since its successor's link may
 * be in flight). Runtime messages (DOWN, exits, timers) are not counted and
 * never dropped; they push without the lock, so a user message queued behind
 * one whose link is still in flight is out of reach until it is linked.
 * Caller holds lane_lock. */
static void trim_old(ax_system *sys, ax_actor *r) {
  ax__mlink *prev = r->user_tail;
  uint32_t dropped = 0;
  while (atomic_load_explicit(&r->queued, memory_order_relaxed) > r->limit) {
    ax__mlink *x = atomic_load_explicit(&prev->next, memory_order_acquire);
    if (x && (ax__mnode_of(x)->msg.flags & AX_MSGF_SYSTEM)) {
      prev = x;
      continue;
    }
    if (!(x = ax__lane_unlink_next(prev))) break;
    ax__msg_free(ax__mnode_of(x));
    /* seq_cst as the owner's decrement (mute_self's pairing is unused by
     * DROP_OLD, but the counter stays one protocol). */
    atomic_fetch_sub_explicit(&r->queued, 1, memory_order_seq_cst);
    dropped++;
  }
  if (dropped) {
    atomic_fetch_add_explicit(&ax__actor_bounded(r)->drops, dropped, memory_order_relaxed);
    atomic_fetch_add_explicit(&sys->dropped, dropped, memory_order_relaxed);
  }
}

/* How admit let a message in (bits). */
enum {
  ADM_COUNTED = 1, /* queued was incremented (undo on a later failure) */
  ADM_DISCARD = 2, /* DROP_NEW: report AX_OK, send nothing */
  ADM_LOCKED = 4,  /* DROP_OLD: push under lane_lock ... */
  ADM_TRIM = 8     /* ... and trim_old after the push (over the limit) */
};

/* The bounded lane at or over its limit, or a DROP_OLD lane (out of line:
 * the common bounded send is below its limit). */
__attribute__((noinline)) static ax_err admit_slow(ax_system *sys, ax__ctx *c, ax_actor *r,
                                                   uint32_t q, unsigned *how) {
  uint32_t limit = r->limit;
  ax_overflow pol = (ax_overflow)r->overflow;
  if (pol != AX_OVERFLOW_DROP_OLD) {
    /* queued still counts what the receiver's current run took (subtracted
     * at its end): judge by the depth. Read after our add: see
     * process_user_as for why that never understates it. */
    uint32_t t = ax__actor_taken(r);
    if (t && q >= t && q - t < limit) {
      *how = ADM_COUNTED;
      return AX_OK;
    }
  }
  if (pol == AX_OVERFLOW_DROP_OLD) {
    *how = ADM_COUNTED | ADM_LOCKED | (q >= limit ? ADM_TRIM : 0);
    return AX_OK;
  }
  bool actor_sender = c->current && c->worker && c->current->sys == sys && c->current != r;
  if (pol == AX_OVERFLOW_BACKPRESSURE && actor_sender) {
    ax_actor *s = c->current;
    bool overloaded = s->limit && ax__actor_depth(s) >= s->limit;
    if (!overloaded && !c->mute_on) {
      c->mute_on = r->pid;
      atomic_fetch_add_explicit(&ax__actor_bounded(r)->mutes, 1, memory_order_relaxed);
    }
    *how = ADM_COUNTED;
    return AX_OK;
  }
  atomic_fetch_sub_explicit(&r->queued, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&ax__actor_bounded(r)->drops, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&sys->dropped, 1, memory_order_relaxed);
  if (pol == AX_OVERFLOW_DROP_NEW) {
    *how = ADM_DISCARD;
    return AX_OK;
  }
  *how = 0;
  return pol == AX_OVERFLOW_FAIL ? AX_EFULL : AX_EAGAIN;
}

/* The bounded-lane admission check: AX_OK to push (*how says how), or an
 * error to refuse. */
static inline ax_err admit(ax_system *sys, ax__ctx *c, ax_actor *r, unsigned *how) {
  uint32_t limit = r->limit;
  *how = 0;
  if (!limit) return AX_OK;
  /* seq_cst: pairs with mute_self's re-check (see there). */
  uint32_t q = atomic_fetch_add_explicit(&r->queued, 1, memory_order_seq_cst);
  if (AX_LIKELY(q < limit) && r->overflow != AX_OVERFLOW_DROP_OLD) {
    *how = ADM_COUNTED;
    /* A quarter full: this run is not quiet (sched.c, run_one): running
     * the sender again at once would fill the receiver and mute it, and
     * the receiver has a batch to take already. Tested for the send that
     * reaches the quarter, not for every send past it (a store per send
     * cost count ~7 instructions a message); a run that misses it (another
     * sender took that count) gets one more quiet re-run at most. */
    if (AX_UNLIKELY(q == limit / 4)) c->filling = true;
    return AX_OK;
  }
  return admit_slow(sys, c, r, q, how);
}

/* ---- pids of other nodes: the route ---- */

bool ax__pid_remote(const ax_system *sys, uint64_t pid) {
  uint32_t node = ax__pid_node(pid);
  return node != 0 && node != sys->table.node;
}

/* Off the hot path: a pid whose node bits are not this node's. */
AX_NOIPA static ax_err route_send(ax_system *sys, ax__ctx *c, uint64_t from, ax_pid to,
                                  uint32_t type, uint32_t flags, ax_ref ref, const void *data,
                                  size_t len, ax_buf *buf) {
  (void)c;
  if (len && !data) return AX_EINVAL;
  const ax__route *rt = atomic_load_explicit(&sys->route, memory_order_acquire);
  /* node 0 on a numbered node: never a pid of ours, nor anyone's */
  if (!rt || !ax__pid_remote(sys, to.id)) return AX_ENOACTOR;
  return rt->send(rt->state, from, to.id, type, flags, ref, data, len, buf);
}

__attribute__((noinline, cold)) static ax_err route_signal(ax_system *sys, uint64_t from,
                                                           uint64_t to, uint32_t type,
                                                           const void *data, size_t len) {
  const ax__route *rt = atomic_load_explicit(&sys->route, memory_order_acquire);
  if (!rt || !ax__pid_remote(sys, to)) return AX_ENOACTOR;
  return rt->signal(rt->state, from, to, type, data, len);
}

/* A send to a pid of this node, in two copies (with and without the hooks).
 * Kept out of line so that ax__send is a compare of the node bits and a
 * tail jump here, with the arguments where they came (measured: folding the
 * route into this body made the compiler spill the stack arguments on every
 * send). */
typedef struct obox_ent obox_ent;
static void obox_learn(ax__ctx *c, ax_actor *r, obox_ent *e);

/* The receiver of a local send, or NULL. On an online worker of sys
 * without a table reference (*slot NULL): its destroy waits until this
 * worker is between two runs (qsbr.h), and the pointer does not outlive
 * the send. Elsewhere with one, which recv_put drops. */
static inline ax_actor *recv_get(ax_system *sys, ax__ctx *c, uint64_t pid, ax__slot **slot) {
  if (c && c->qs_sys == sys) {
    *slot = NULL;
    return ax__table_peek(&sys->table, pid);
  }
  return ax__table_acquire_at(&sys->table, pid, slot);
}

static inline void recv_put(ax__slot *slot) {
  if (slot) ax__table_release_slot(slot);
}
static ax_err send_other(ax_system *sys, uint64_t from, ax_pid to, uint32_t type,
                         const void *data, size_t len);

static inline __attribute__((always_inline)) ax_err send_local_as(
    ax_system *sys, ax__ctx *c, uint64_t from, ax_pid to, uint32_t type, uint32_t flags,
    ax_ref ref, const void *data, size_t len, ax_buf *buf, const bool hooked, obox_ent *learn) {
  if (len && !data) return AX_EINVAL;
  ax__slot *slot;
  ax_actor *r = recv_get(sys, c, to.id, &slot);
  if (!r) {
    if (hooked && AX_UNLIKELY(c && c->obs)) ax__obs_dead_letter(c->obs);
    return AX_ENOACTOR;
  }
  unsigned how;
  ax_err e = admit(sys, c, r, &how);
  if (e != AX_OK || (how & ADM_DISCARD)) goto out;
  ax__mnode *n = ax__msg_new(type, flags, from, to.id, ref, data, len, buf);
  if (!n) {
    if (how & ADM_COUNTED) atomic_fetch_sub_explicit(&r->queued, 1, memory_order_relaxed);
    e = AX_ENOMEM;
    goto out;
  }
  /* Metrics and tracing: before the push (n is ours until then, and a SEND
   * must precede its RECEIVE). */
  if (hooked) ax__obs_on_send(sys, r, n, from);
  if (AX_UNLIKELY(how & ADM_LOCKED)) { /* DROP_OLD: see trim_old */
    lane_lock(r);
    bool idle = ax__lane_push(&r->user_head, &n->link);
    if (how & ADM_TRIM) trim_old(sys, r);
    lane_unlock(r);
    if (idle) ax__schedule(sys, r);
  } else if (ax__lane_push(&r->user_head, &n->link)) {
    ax__schedule(sys, r);
  }
  count_sent(sys, c, hooked);
  if (learn) obox_learn(c, r, learn); /* a constant NULL but in obox_first */
out:
  recv_put(slot);
  return e;
}

AX_NOIPA static ax_err send_local(ax_system *sys, ax__ctx *c, uint64_t from, ax_pid to,
                                  uint32_t type, uint32_t flags, ax_ref ref, const void *data,
                                  size_t len, ax_buf *buf) {
  return send_local_as(sys, c, from, to, type, flags, ref, data, len, buf, false, NULL);
}

AX_NOIPA static ax_err send_local_hooked(
    ax_system *sys, ax__ctx *c, uint64_t from, ax_pid to, uint32_t type, uint32_t flags,
    ax_ref ref, const void *data, size_t len, ax_buf *buf) {
  return send_local_as(sys, c, from, to, type, flags, ref, data, len, buf, true, NULL);
}

/* ---- the outbox: a streaming run's sends, one push per receiver ----
 *
 * A run that follows a run which ended with work left and woke nobody
 * (sched.c hints it: a producer that sends in chunks and continues through
 * a message to itself, as fjthrput's and count's) streams: its plain sends
 * (ax_send: no flags, ref or buffer, up to 64 payload bytes) to a receiver
 * whose lane takes chains are linked into one chain per receiver, and each
 * chain is pushed with one exchange, one `queued` add, one table reference
 * and at most one wake-up, when the run ends (or when it reaches
 * AX__OBOX_CHAIN messages), where each send paid all four. A lane takes
 * chains when it is unbounded or BACKPRESSURE (FAIL and DROP_NEW answer each
 * send, DROP_OLD trims under its lock) and is not the sender's own. The
 * first send to a receiver goes as any send and records that verdict in the
 * thread's outbox, which keeps it while the same actor streams here again
 * (another streamer clears it). A streaming run takes up to AX__OBOX_ROUNDS
 * snapshots of its mailbox while it wakes nobody (the continuation it sent
 * itself), so its chains hold several rounds. A run that chained streams
 * again next time; one that chained nothing (each send to another
 * receiver) cools off for a while (AX__OBOX_COOL, sched.c); a fan-out wider
 * than AX__OBOX_MAX receivers pushes its chains and never streams again.
 *
 * Per sender and receiver the order is kept: every other kind of send,
 * signal or exit from this thread pushes the pending chains first
 * (obox_settle), and the run's end pushes them all before the actor can be
 * muted, stopped or run anywhere else. What it costs: a chained message
 * reaches its receiver at the end of the run that sent it, not at the send
 * (a run is bounded by its budget, which its snapshots share,
 * AX__OBOX_ROUNDS, AX__OBOX_RUN_SENDS and AX__QUIET_NS), and a chain to an
 * idle receiver wakes it then. A BACKPRESSURE limit is
 * judged on our estimate of the lane's depth (read at our last push, plus
 * what we chained since, which overstates it while the receiver drains;
 * read afresh wherever sends may have bypassed it, obox_forget): a
 * send the estimate puts at the limit pushes the chain, and if the depth
 * read then is still at the limit it goes alone through the usual
 * admission, so muting is exact for one sender (several can each overshoot
 * by a chain, as each can by a behaviour call's sends without the outbox).
 * A stopped receiver's chain counts as dead letters, and the next send to
 * it answers AX_ENOACTOR. A lane a quarter full makes the run not
 * quiet (ctx.filling, as admit). Hooks (metrics, tracing) are decided at
 * the run's start: a streaming run has none.
 *
 * A chain's plain messages (payload 0 or 8..16 bytes) travel in bundles
 * (actor_int.h): slots side by side in one node, 8 bytes for a message
 * without payload, so the producer writes and the receiver reads a line
 * per eight of them, with one node from the cache per bundle, not per
 * message; the receiver's run delivers each slot as a message, within its
 * budget (a bundle it does not finish stays at the lane's head). Measured:
 * docs/ARCHITECTURE.md, "Scheduler notes". */
#define AX__OBOX_SLOTS 128      /* open addressing; a power of two */
#define AX__OBOX_MAX 96         /* receivers with an entry (more: direct) */
#define AX__OBOX_CHAIN 256      /* a chain is pushed once it holds this many */
#define AX__OBOX_ROUNDS 16      /* mailbox snapshots a streaming run may take
                                   (<= AX__QUIET_RUNS: they count as quiet re-runs) */
#define AX__OBOX_RUN_SENDS 2048 /* ... while it has chained fewer than this */

enum { OBOX_FREE = 0, OBOX_CHAIN, OBOX_DIRECT };

/* One receiver's entry: 64 bytes, the fast path's fields in the first half.
 * Entries sit in the order first sent to, so that a streamer's sends round
 * its receivers walk them in address order (the hash index finds the rest):
 * measured, the entries scattered over a hash table with a successor link
 * were a dependent miss a send once a round's receivers outgrew L1. */
struct obox_ent {
  uint64_t pid;            /* 0: free */
  /* The bundle being filled, last in the chain (NULL: none open): where its
   * next slot goes and the bytes left in it. */
  char *bpos;
  /* Messages the fast path may chain before the slow path must look again
   * (the chain's cap, a bounded lane's quarter or limit by our estimate). */
  uint32_t room;
  uint32_t bleft;
  uint32_t n;              /* messages in the chain */
  uint8_t mode;
  uint8_t stale;           /* bounded: room must be read afresh (obox_forget) */
  ax__mnode *first, *last; /* the chain, linked through link.next */
  uint32_t limit;          /* the receiver's bounded limit, 0 unbounded */
  uint32_t depth;          /* bounded: its depth by our estimate when room
                              was set (room then counts what we add) */
  uint32_t span;           /* room when it was set */
};
_Static_assert(sizeof(struct obox_ent) == 64, "an outbox entry is one line");

typedef struct obox {
  ax_actor *live;     /* the actor streaming now on this thread, or NULL */
  ax_system *sys;     /* of the entries' owner */
  uint64_t owner;     /* the streaming actor whose verdicts the entries hold */
  obox_ent *cur;      /* the entry last used (e[0] when there is none) */
  uint32_t used;      /* entries e[0..used), in the order made */
  uint32_t pending;   /* entries holding a chain */
  uint32_t bounded;   /* entries made chaining to a bounded lane: a hint
                         that obox_forget has work */
  uint64_t seen;      /* the owner's processed count when its last
                         streaming run here ended (obox_begin) */
  uint32_t sent;      /* messages chained in this run */
  uint32_t wakes;     /* the worker's wakes when the run began */
  uint64_t t0;        /* when its second snapshot began (ns), 0 before */
  uint8_t hidx[AX__OBOX_SLOTS]; /* open addressing by pid: entry index + 1, 0 empty */
  /* e[used] is always free (pid 0): the fast path's look past the last
   * entry finds no match there and wraps to e[0]. */
  obox_ent e[AX__OBOX_MAX + 1];
} obox;

/* Per worker thread (ctx.obox, made by its first streaming run, freed by
 * ax__obox_free when the worker ends): a worker runs one actor at a time. */
void ax__obox_free(ax__ctx *c) {
  ax__free(c->obox, sizeof(obox));
  c->obox = NULL;
}

/* The index cell for pid: its entry's (index + 1), or the empty cell where
 * it would go (at most AX__OBOX_MAX of the AX__OBOX_SLOTS cells are used). */
static uint8_t *obox_cell(obox *o, uint64_t pid) {
  for (uint32_t i = (uint32_t)((pid * UINT64_C(0x9E3779B97F4A7C15)) >> 57);;
       i = (i + 1) & (AX__OBOX_SLOTS - 1)) {
    uint8_t *h = &o->hidx[i];
    if (!*h || o->e[*h - 1].pid == pid) return h;
  }
}

/* Sets e's room from its depth estimate d (bounded) and its chain. */
static void obox_room(ax__ctx *c, obox_ent *e, uint32_t d) {
  uint32_t room = AX__OBOX_CHAIN - e->n;
  if (e->limit) {
    uint32_t quarter = e->limit / 4;
    if (d >= quarter) c->filling = true; /* not quiet (admit) */
    uint32_t to_limit = d + 1 < e->limit ? e->limit - 1 - d : 0;
    if (to_limit < room) room = to_limit;
    if (d < quarter && quarter - d < room) room = quarter - d;
  }
  e->depth = d;
  e->room = e->span = room;
}

/* The first send's verdict on its receiver r (send_local_as calls it with
 * r still referenced, after the push). */
static void obox_learn(ax__ctx *c, ax_actor *r, obox_ent *e) {
  bool chain = r != c->current && (!r->limit || r->overflow == AX_OVERFLOW_BACKPRESSURE);
  e->mode = chain ? OBOX_CHAIN : OBOX_DIRECT;
  e->limit = r->limit;
  e->stale = 0;
  obox_room(c, e, r->limit ? ax__actor_depth(r) : 0);
  if (!chain) e->room = 0; /* the fast path chains only where room > 0 */
}

/* A chain took a BACKPRESSURE lane past its limit (q: queued after our
 * add): mute the sender at the run's end, as admit_slow does for a single
 * send. */
static void obox_over(ax_system *sys, ax__ctx *c, ax_actor *r, uint32_t q) {
  uint32_t t = ax__actor_taken(r);
  if (t && q >= t && q - t <= r->limit) return;
  ax_actor *s = c->current;
  if (!s || s->sys != sys || s == r || c->mute_on) return;
  if (s->limit && ax__actor_depth(s) >= s->limit) return; /* as admit_slow */
  c->mute_on = r->pid;
  atomic_fetch_add_explicit(&ax__actor_bounded(r)->mutes, 1, memory_order_relaxed);
}

/* Closes the bundle being filled: its slot count goes in its header. */
static inline void obox_seal(obox_ent *e) {
  e->last->msg.type = (uint32_t)(e->bpos - e->last->payload);
  e->bpos = NULL;
  e->bleft = 0;
}

/* Pushes e's chain (e->n > 0). */
static void obox_push(obox *o, ax__ctx *c, obox_ent *e) {
  ax_system *sys = o->sys;
  if (e->bpos) obox_seal(e);
  uint32_t n = e->n;
  ax__mnode *first = e->first, *last = e->last;
  e->n = 0;
  o->pending--;
  ax__slot *slot;
  ax_actor *r = recv_get(sys, c, e->pid, &slot);
  if (!r) {
    /* Stopped since our first send: dead letters, as its drained mailbox's. */
    for (ax__mnode *m = first, *next; m; m = next) {
      /* relaxed: our own nodes, never published */
      next = m == last ? NULL
                       : ax__mnode_of(atomic_load_explicit(&m->link.next, memory_order_relaxed));
      ax__msg_free(m);
    }
    atomic_fetch_add_explicit(&sys->dead_letters, n, memory_order_relaxed);
    e->mode = OBOX_DIRECT; /* its sends now answer AX_ENOACTOR */
    e->room = 0;
    return;
  }
  uint32_t d = 0;
  if (e->limit) {
    /* seq_cst: pairs with mute_self's re-check, as admit's add. */
    uint32_t q = atomic_fetch_add_explicit(&r->queued, n, memory_order_seq_cst) + n;
    uint32_t t = ax__actor_taken(r);
    d = q >= t ? q - t : q;
    if (AX_UNLIKELY(q > e->limit)) obox_over(sys, c, r, q);
  }
  if (ax__lane_push_chain(&r->user_head, &first->link, &last->link)) {
    ax__schedule(sys, r);
  }
  recv_put(slot);
  add_sent(sys, c, n);
  /* relaxed load and store: owner-only, as add_sent's (streaming runs are
   * on this system's workers only: obox_begin) */
  atomic_store_explicit(&c->worker->chained,
                        atomic_load_explicit(&c->worker->chained, memory_order_relaxed) + n,
                        memory_order_relaxed);
  /* A lane a quarter full or more: the next send looks again (so a later
   * run learns afresh whether it is filling). */
  if (e->limit && d >= e->limit / 4) {
    e->depth = d;
    e->room = e->span = 0;
  } else {
    obox_room(c, e, d);
  }
}

/* Pushes every pending chain. */
static void obox_push_all(ax__ctx *c) {
  obox *o = c->obox;
  for (uint32_t i = 0; i < o->used && o->pending; i++) {
    obox_ent *e = &o->e[i];
    if (e->n) obox_push(o, c, e);
  }
}

/* Marks every bounded chaining entry's estimate stale (their chains
 * pushed): the next send to each reads the lane's depth afresh
 * (obox_refresh) before it chains. For when sends the entries did not see
 * may have filled those lanes: the runs between two streaming runs, and
 * the sends a streaming run makes outside the outbox (a request, a buffer).
 * Else a room set when the lane was near empty would let the next chain
 * carry the lane past its limit by up to that room. (Sent alone instead,
 * each run's first send to each receiver woke it, which ended the run's
 * snapshots: fjthrput on one worker fell from ~40M to ~27M msgs/s.) */
static void obox_forget(obox *o) {
  for (uint32_t i = 0; i < o->used; i++) {
    obox_ent *e = &o->e[i];
    if (e->limit && e->mode == OBOX_CHAIN) {
      e->room = e->span = 0;
      e->stale = 1;
    }
  }
}

/* A stale entry learns its receiver's verdict again, without a send
 * (nothing chained: its chain went with obox_forget, and a stale entry
 * chains nothing). A receiver gone leaves the room at 0: the send goes
 * alone and learns it. */
__attribute__((noinline)) static void obox_refresh(ax_system *sys, ax__ctx *c, obox_ent *e) {
  e->stale = 0;
  ax__slot *slot;
  ax_actor *r = recv_get(sys, c, e->pid, &slot);
  if (!r) return;
  obox_learn(c, r, e);
  recv_put(slot);
}

/* Before any other kind of send, signal or exit from this thread: what the
 * streaming run chained goes first, and bounded estimates are dropped. */
__attribute__((noinline)) static void obox_settle_slow(ax__ctx *c) {
  if (c->obox->pending) obox_push_all(c);
  if (c->obox->bounded) obox_forget(c->obox);
}
static inline void obox_settle(ax__ctx *c) {
  if (AX_UNLIKELY(c->obox_on) && (c->obox->pending | c->obox->bounded)) obox_settle_slow(c);
}

/* A streaming run may begin (a->obox hinted; not on a deterministic
 * system, not with the hooks: their sends take other paths). */
__attribute__((noinline)) static bool obox_begin(ax_actor *a, ax__ctx *c) {
  a->obox = AX__OBOX_OFF; /* hinted: set again by the run's end */
  if (!c->worker || c->worker->sys != a->sys || a->sys->det || c->hooks) return false;
  if (!c->obox && !(c->obox = ax__calloc(sizeof(obox)))) return false; /* stream later */
  obox *o = c->obox;
  if (o->owner != a->pid || o->sys != a->sys || !o->cur) {
    memset(o->e, 0, o->used * sizeof(obox_ent));
    memset(o->hidx, 0, sizeof o->hidx);
    o->used = 0;
    o->bounded = 0;
    o->cur = &o->e[0];
    o->owner = a->pid;
    o->sys = a->sys;
  } else if (o->bounded && ax__actor_processed(a) != o->seen) {
    /* (processed: a relaxed load of what earlier runs stored, ordered
     * before this run by the scheduling hand-off that gave us a.) */
    /* It ran since its last streaming run here (on another worker, or
     * without streaming): what those runs sent, the estimates did not see.
     * A run delivers a message for every behaviour call (its sends), and
     * adds what it took to processed. */
    obox_forget(o);
  }
  o->sent = 0;
  o->wakes = c->worker->wakes;
  o->t0 = 0; /* read by obox_rounds, if the run gets there */
  o->live = a;
  a->obox = AX__OBOX_STREAMING;
  c->obox_on = true;
  return true;
}

/* The streaming run ends: every chain is pushed (the verdicts stay). A run
 * that chained streams again next time (its wake-ups came at its end, so
 * sched.c's test, which wakes nobody, would miss it), and the snapshots it
 * took count as quiet re-runs (sched.c). */
__attribute__((noinline)) static void obox_end(ax_actor *a, ax__ctx *c, uint32_t rounds) {
  obox *o = c->obox;
  if (o->pending) obox_push_all(c);
  o->seen = ax__actor_processed(a); /* this run's count added (actor_run_as) */
  o->live = NULL;
  c->obox_on = false;
  /* One that chained nothing (big's actors: a send a run, each to another
   * neighbour) paid the outbox for nothing: it cools off. */
  if (a->obox != AX__OBOX_WIDE) a->obox = o->sent ? AX__OBOX_HINTED : AX__OBOX_COOL;
  c->worker->quiet_runs += rounds;
}

/* A send as any, which then records its receiver's verdict in e (when it
 * exists and took the message). */
__attribute__((noinline)) static ax_err send_learn(ax_system *sys, ax__ctx *c, uint64_t from,
                                                   ax_pid to, uint32_t type, const void *data,
                                                   size_t len, obox_ent *e) {
  return send_local_as(sys, c, from, to, type, 0, 0, data, len, NULL, false, e);
}

/* Appends a new node to e's chain. */
static inline __attribute__((always_inline)) void obox_append(obox *o, obox_ent *e,
                                                              ax__mnode *n) {
  if (e->bpos) obox_seal(e);
  e->room--;
  if (e->n++) {
    /* relaxed: the chain is ours until ax__lane_push_chain, whose release
     * store of its first link publishes every link and node before it. */
    atomic_store_explicit(&e->last->link.next, &n->link, memory_order_relaxed);
  } else {
    e->first = n;
    o->pending++;
  }
  e->last = n;
  o->sent++;
}

/* Writes a message (payload 0 or 8..16 bytes) into the open bundle's next
 * slot (room for it checked). */
static inline __attribute__((always_inline)) void obox_put(obox *o, obox_ent *e, uint32_t type,
                                                           const void *data, size_t len) {
  uint32_t size = ax__bslot_size(len);
  ax__bslot *s = (ax__bslot *)e->bpos;
  e->bpos += size;
  e->bleft -= size;
  s->type = type;
  s->len = (uint32_t)len;
  if (len) {
    /* 8..16 bytes: two overlapping copies, as ax__msg_fill's */
    memcpy(s + 1, data, 8);
    memcpy((char *)(s + 1) + len - 8, (const char *)data + len - 8, 8);
  }
  e->room--;
  e->n++;
  o->sent++;
}

/* Opens a new bundle at the end of e's chain (sealing a full one before
 * it). False on out of memory (the slow path then tries a plain node). */
__attribute__((noinline)) static bool obox_bundle(obox *o, obox_ent *e, ax_actor *self) {
  ax__mnode *b = ax__ncache_pop(2);
  if (!b && !(b = ax__alloc(AX__NCACHE_BIG))) return false;
  if (e->bpos) obox_seal(e);
  ax__msg_fill(b, 0, AX__MSGF_BUNDLE, self->pid, e->pid, 0, NULL, 0);
  b->msg.len = AX__BUNDLE_BYTES; /* the size ax__msg_free frees */
  b->msg.data = b->payload;
  if (e->n) {
    /* relaxed: as obox_append's */
    atomic_store_explicit(&e->last->link.next, &b->link, memory_order_relaxed);
  } else {
    e->first = b;
    o->pending++;
  }
  e->last = b;
  e->bpos = b->payload;
  e->bleft = AX__BUNDLE_BYTES;
  return true;
}

/* Everything obox_send's fast path leaves: not streaming here, a receiver
 * without an entry or not the likely one, a message that is not plain, an
 * empty node cache, or no room (the chain's cap, a quarter or the limit). */
__attribute__((noinline)) static ax_err obox_send_slow(ax_actor *self, ax_pid to, uint32_t type,
                                                       const void *data, size_t len) {
  ax_system *sys = self->sys;
  ax__ctx *c = ax__ctx_get();
  obox *o = c->obox;
  if (!o || o->live != self || c->current != self || ax__pid_node(to.id) != sys->table.node)
    return send_other(sys, self->pid, to, type, data, len);
  /* The fast path's entry when it found one (it came here for room, a
   * bundle or the payload): no lookup. */
  obox_ent *e = o->cur;
  if (e->pid == to.id && to.id) goto found;
  uint8_t *h = obox_cell(o, to.id);
  if (!*h) {
    if (o->used >= AX__OBOX_MAX) {
      /* A fan-out wider than the outbox (a pub/sub channel's 1,000
       * subscribers): every send past its entries would pay a failed
       * lookup on top of a send. Its chains go now, and it never streams
       * again (its sends from here on take the common path). */
      if (o->pending) obox_push_all(c);
      self->obox = AX__OBOX_WIDE;
      return send_local(sys, c, self->pid, to, type, 0, 0, data, len, NULL);
    }
    obox_ent tmp = {.mode = OBOX_FREE};
    ax_err err = send_learn(sys, c, self->pid, to, type, data, len, &tmp);
    if (tmp.mode != OBOX_FREE) { /* the receiver exists: keep its verdict */
      tmp.pid = to.id;
      o->bounded += tmp.limit && tmp.mode == OBOX_CHAIN;
      e = &o->e[o->used++];
      *e = tmp;
      *h = (uint8_t)o->used;
      o->cur = e;
    }
    return err;
  }
  e = &o->e[*h - 1];
  o->cur = e;
found:
  if (e->mode != OBOX_CHAIN || len > 64 || (len && !data)) {
    if (e->n) obox_push(o, c, e); /* any other message keeps its place */
    /* A chaining bounded lane's estimate counts this one too (it reads
     * the depth); a lane that never chains needs none. */
    if (e->mode == OBOX_CHAIN && e->limit)
      return send_learn(sys, c, self->pid, to, type, data, len, e);
    return send_local(sys, c, self->pid, to, type, 0, 0, data, len, NULL);
  }
  if (AX_UNLIKELY(e->stale) && !e->room) obox_refresh(sys, c, e);
  if (!e->room) {
    if (e->n >= AX__OBOX_CHAIN || (e->limit && e->n && e->depth + (e->span - e->room) + 1 >= e->limit))
      obox_push(o, c, e); /* which reads the depth */
    if (!e->room) {
      uint32_t d = e->depth + (e->span - e->room);
      if (e->limit && (d + 1 >= e->limit || !e->n))
        /* At the limit by the depth read at our last push, or nothing
         * chained to measure since: this one goes alone, through the usual
         * admission (exact muting), and reads the depth afresh. */
        return send_learn(sys, c, self->pid, to, type, data, len, e);
      obox_room(c, e, d);
      if (!e->room) return send_learn(sys, c, self->pid, to, type, data, len, e);
    }
  }
  /* A bundle's slot for a payload of 0 or 8..16 bytes (a new bundle when
   * the open one is full), else a node of its own. */
  if ((!len || (len >= 8 && len <= 16 && data)) &&
      (e->bleft >= ax__bslot_size(len) || obox_bundle(o, e, self))) {
    obox_put(o, e, type, data, len);
    return AX_OK;
  }
  ax__mnode *n = ax__msg_new(type, 0, self->pid, to.id, 0, data, len, NULL);
  if (AX_UNLIKELY(!n)) return AX_ENOMEM;
  obox_append(o, e, n);
  return AX_OK;
}

/* ax_send in a streaming run (ax_send tests self->obox: a jump with its own
 * arguments). The fast path: the receiver is the one last sent to or the
 * next in the order first sent to, the message is plain, its chain has
 * room, and the node cache has a node (filled as ax__msg_new fills). */
__attribute__((noinline)) static ax_err obox_send(ax_actor *self, ax_pid to, uint32_t type,
                                                  const void *data, size_t len) {
  obox *o = ax__ctx_get()->obox; /* set: self streams on this thread, or misuses ax_send */
  if (AX_UNLIKELY(!o)) return obox_send_slow(self, to, type, data, len);
  obox_ent *e = o->cur;
  if (AX_UNLIKELY(e->pid != to.id)) {
    e++; /* the next receiver first sent to, or the free entry after the last */
    if (AX_UNLIKELY(e->pid != to.id)) {
      e = o->e;
      if (AX_UNLIKELY(e->pid != to.id)) return obox_send_slow(self, to, type, data, len);
    }
    o->cur = e;
  }
  /* Payloads of 0 or 8..16 bytes (a pid, a counter) here, so that the
   * fill copies them without a call; the rest there (ax__msg_new). */
  if (AX_UNLIKELY(!e->room || (len && (len - 8 > 8 || !data)) || o->live != self))
    return obox_send_slow(self, to, type, data, len);
  if (AX_UNLIKELY(e->bleft < ax__bslot_size(len))) return obox_send_slow(self, to, type, data, len);
  obox_put(o, e, type, data, len);
  return AX_OK;
}

/* ax__send's body, inlined into ax_send and ax_send_buf too. */
static inline __attribute__((always_inline)) ax_err send_to(ax_system *sys, ax__ctx *c,
                                                            uint64_t from, ax_pid to,
                                                            uint32_t type, uint32_t flags,
                                                            ax_ref ref, const void *data,
                                                            size_t len, ax_buf *buf) {
  /* One predictable branch on the node bits, one on the hooks (a
   * read-mostly byte until metrics or tracing are used). */
  obox_settle(c);
  if (AX_UNLIKELY(ax__pid_node(to.id) != sys->table.node))
    return route_send(sys, c, from, to, type, flags, ref, data, len, buf);
  if (AX__HOOKS_ON(sys))
    return send_local_hooked(sys, c, from, to, type, flags, ref, data, len, buf);
  return send_local(sys, c, from, to, type, flags, ref, data, len, buf);
}

ax_err ax__send(ax_system *sys, ax__ctx *c, uint64_t from, ax_pid to, uint32_t type,
                uint32_t flags, ax_ref ref, const void *data, size_t len, ax_buf *buf) {
  return send_to(sys, c, from, to, type, flags, ref, data, len, buf);
}

ax_err ax__send_sys(ax_system *sys, uint64_t from, uint64_t to, uint32_t type, uint32_t flags,
                    ax_ref ref, const void *data, size_t len, ax_buf *buf) {
  if (AX_UNLIKELY(ax__pid_node(to) != sys->table.node))
    return route_send(sys, NULL, from, (ax_pid){to}, type, AX_MSGF_SYSTEM | flags, ref, data, len,
                      buf);
  ax__mnode *n = ax__msg_new(type, AX_MSGF_SYSTEM | flags, from, to, ref, data, len, buf);
  if (!n) return AX_ENOMEM;
  ax_err e = ax__send_sys_node(sys, n); /* the one push of a runtime message */
  if (e != AX_OK) ax__msg_free(n);
  return e;
}

ax_err ax__send_sys_node(ax_system *sys, ax__mnode *n) {
  obox_settle(ax__ctx_get());
  uint64_t to = n->to; /* n may be consumed once pushed */
  ax_actor *r = ax__table_acquire(&sys->table, to);
  if (!r) return AX_ENOACTOR;
  n->msg.flags |= AX_MSGF_SYSTEM;
  if (ax__lane_push(&r->user_head, &n->link)) ax__schedule(sys, r);
  ax__table_release(&sys->table, to);
  return AX_OK;
}

/* Builds the two halves of a trappable exit signal (see ax__signal): the
 * notice for the system lane and the placeholder for the user lane. */
static bool exit_pair(uint32_t type, uint64_t from, uint64_t to, const ax_exit_info *info,
                      ax__mnode **notice, ax__mnode **ph) {
  uint32_t f = AX_MSGF_SYSTEM | AX__MSGF_XPEND | (type == AX__SIG_LINK_EXIT ? AX__MSGF_LINKEXIT : 0);
  *ph = ax__msg_new(AX_MSG_EXIT, f, from, to, 0, info, sizeof(*info), NULL);
  if (!*ph) return false;
  ax__exit_notice nt = {.info = *info, .ph = *ph};
  *notice = ax__msg_new(type, AX_MSGF_SYSTEM, from, to, 0, &nt, sizeof(nt), NULL);
  if (*notice) return true;
  ax__msg_free(*ph);
  return false;
}

/* Pushes a signal's node n (system lane) and wake (user lane: the exit
 * placeholder of a pair, else a bare wake-up) to r, acquired by the caller. */
static void push_signal(ax_system *sys, ax_actor *r, uint64_t to, ax__mnode *n, ax__mnode *wake,
                        bool pair) {
  obox_settle(ax__ctx_get());
  /* The notice goes first: once the placeholder is visible, so is it (up to
   * another producer still linking its own node ahead of it). */
  if (ax__lane_push(&r->sys_head, &n->link) || pair) {
    /* The system lane was idle: the actor may be idle too. Waking it goes
     * through the user lane, whose idle bit is the one scheduling word. */
    if (ax__lane_push(&r->user_head, &wake->link)) ax__schedule(sys, r);
  } else {
    ax__msg_free(wake);
  }
  /* A muted actor must run to see the signal. */
  if (atomic_load_explicit(&r->mute_state, memory_order_acquire) & AX__MS_MUTED)
    try_unmute(sys, to, 0);
}

ax_err ax__signal(ax_system *sys, uint64_t from, uint64_t to, uint32_t type, const void *data,
                  size_t len) {
  /* One predictable branch on the node bits. */
  if (AX_UNLIKELY(ax__pid_node(to) != sys->table.node))
    return route_signal(sys, from, to, type, data, len);
  ax_exit_info info;
  ax_reason killed = AX_REASON_KILLED;
  if (type == AX__SIG_EXIT || type == AX__SIG_LINK_EXIT) {
    memcpy(&info, data, sizeof(info));
    if (type == AX__SIG_EXIT && info.reason == AX_REASON_KILL) {
      type = AX__SIG_STOP; /* untrappable: acts on arrival */
      data = &killed;
      len = sizeof(killed);
    }
  }
  ax_actor *r = ax__table_acquire(&sys->table, to);
  if (!r) return AX_ENOACTOR;
  ax__mnode *n, *wake;
  bool ok, pair = type == AX__SIG_EXIT || type == AX__SIG_LINK_EXIT;
  if (pair) {
    ok = exit_pair(type, from, to, &info, &n, &wake); /* the placeholder wakes */
  } else {
    n = ax__msg_new(type, AX_MSGF_SYSTEM, from, to, 0, data, len, NULL);
    wake = ax__msg_new(AX__WAKE, AX_MSGF_SYSTEM, 0, to, 0, NULL, 0, NULL);
    ok = n && wake;
    if (!ok) {
      if (n) ax__msg_free(n);
      if (wake) ax__msg_free(wake);
    }
  }
  if (!ok) {
    ax__table_release(&sys->table, to);
    return AX_ENOMEM;
  }
  push_signal(sys, r, to, n, wake, pair);
  ax__table_release(&sys->table, to);
  return AX_OK;
}

ax__mnode *ax__link_exit_reserve(uint64_t from, uint64_t to) {
  ax_exit_info info = {.pid = {from}, .reason = AX_REASON_NORMAL};
  ax__mnode *n, *ph;
  return exit_pair(AX__SIG_LINK_EXIT, from, to, &info, &n, &ph) ? n : NULL;
}

void ax__link_exit_unreserve(ax__mnode *notice) {
  ax__exit_notice nt;
  memcpy(&nt, notice->payload, sizeof(nt));
  ax__msg_free(nt.ph);
  ax__msg_free(notice);
}

/* Fills in a reserved exit pair's sender, target and reason (notice and
 * placeholder alike). */
static void exit_pair_set(ax__mnode *notice, uint64_t from, uint64_t to, ax_reason reason) {
  ax__exit_notice nt;
  memcpy(&nt, notice->payload, sizeof(nt));
  nt.info.pid.id = from;
  nt.info.reason = reason;
  memcpy(notice->payload, &nt, sizeof(nt));
  memcpy(nt.ph->payload, &nt.info, sizeof(nt.info));
  notice->msg.from.id = nt.ph->msg.from.id = from;
  notice->to = nt.ph->to = to;
}

ax_err ax__link_exit_send(ax_system *sys, ax__mnode *notice, ax_reason reason) {
  ax__exit_notice nt;
  memcpy(&nt, notice->payload, sizeof(nt));
  exit_pair_set(notice, nt.info.pid.id, notice->to, reason);
  uint64_t to = notice->to;
  ax_actor *r = ax__table_acquire(&sys->table, to);
  if (!r) {
    ax__link_exit_unreserve(notice);
    return AX_ENOACTOR;
  }
  push_signal(sys, r, to, notice, nt.ph, true);
  ax__table_release(&sys->table, to);
  return AX_OK;
}

/* ---- exit kits: an exit signal and a kill built ahead ---- */

ax_err ax__exit_kit_fill(ax__exit_kit *k) {
  if (!k->exit) {
    ax_exit_info info = {.pid = AX_PID_NONE, .reason = AX_REASON_SHUTDOWN};
    ax__mnode *ph;
    if (!exit_pair(AX__SIG_EXIT, 0, 0, &info, &k->exit, &ph)) {
      k->exit = NULL;
      return AX_ENOMEM;
    }
  }
  ax_reason killed = AX_REASON_KILLED;
  if (!k->stop &&
      !(k->stop = ax__msg_new(AX__SIG_STOP, AX_MSGF_SYSTEM, 0, 0, 0, &killed, sizeof(killed), NULL)))
    return AX_ENOMEM;
  if (!k->wake && !(k->wake = ax__msg_new(AX__WAKE, AX_MSGF_SYSTEM, 0, 0, 0, NULL, 0, NULL)))
    return AX_ENOMEM;
  return AX_OK;
}

void ax__exit_kit_free(ax__exit_kit *k) {
  if (k->exit) ax__link_exit_unreserve(k->exit);
  if (k->stop) ax__msg_free(k->stop);
  if (k->wake) ax__msg_free(k->wake);
  *k = (ax__exit_kit){0};
}

ax_err ax__exit_kit_send(ax_system *sys, ax__exit_kit *k, uint64_t from, uint64_t to,
                         ax_reason reason) {
  bool kill = reason == AX_REASON_KILL;
  if (ax__pid_node(to) != sys->table.node || (kill ? !k->stop || !k->wake : !k->exit)) {
    ax_exit_info info = {.pid = {from}, .reason = reason}; /* not reserved: as ax_exit */
    return ax__signal(sys, from, to, AX__SIG_EXIT, &info, sizeof(info));
  }
  ax_actor *r = ax__table_acquire(&sys->table, to);
  if (!r) return AX_ENOACTOR; /* the kit stays whole */
  if (kill) {
    k->stop->msg.from.id = from;
    k->stop->to = k->wake->to = to;
    push_signal(sys, r, to, k->stop, k->wake, false);
    k->stop = k->wake = NULL;
  } else {
    exit_pair_set(k->exit, from, to, reason);
    ax__exit_notice nt;
    memcpy(&nt, k->exit->payload, sizeof(nt));
    push_signal(sys, r, to, k->exit, nt.ph, true);
    k->exit = NULL;
  }
  ax__table_release(&sys->table, to);
  return AX_OK;
}

/* ---- the run loop ---- */

static void free_old(ax_actor *a, ax__mlink *old) {
  if (old != &a->user_stub && old != &a->sys_stub) ax__msg_free(ax__mnode_of(old));
}

static void request_exit(ax__ctx *c, ax_reason reason) {
  if (!c->exiting) {
    c->exiting = true;
    c->reason = reason;
  }
}

ax__actor_ext *ax__ext(ax_actor *a) {
  if (!a->ext) a->ext = ax__calloc(sizeof(ax__actor_ext));
  return a->ext;
}

/* Delivers n to the behaviour, then drops the buffer reference at once (the
 * node itself lives on as the lane's stub until the next pop). Inline in the
 * run loop: a call per message was ~12 of the receive's instructions (count,
 * one worker). */
static inline __attribute__((always_inline)) void deliver_as(ax_actor *a, ax__ctx *c,
                                                             ax__mnode *n, const bool hooked) {
  ax_err e;
  c->delivered = true;
  /* Tracked actors and tracing take the instrumented path (obs.c). */
  if (hooked && AX_UNLIKELY(c->hooks))
    e = ax__obs_deliver(a, c, n);
  else
    e = a->behaviour(a, &n->msg);
  if (n->msg.buf) {
    ax_buf_release(n->msg.buf);
    n->msg.buf = NULL;
    n->msg.len = 0; /* the node's size is now the bare header */
  }
  if (e != AX_OK) request_exit(c, AX_REASON_ERROR + (ax_reason)e);
}


/* Handles the notice of an exit signal: a non-trapping target acts now (an
 * abnormal reason stops it; normal is ignored), a trapping one lets the
 * placeholder on its user lane be delivered in its place among the sender's
 * messages. A link exit counts only while the link exists. */
static void exit_notice(ax_actor *a, ax__ctx *c, const ax__mnode *n) {
  ax__exit_notice nt;
  memcpy(&nt, n->payload, sizeof(nt));
  bool link = n->msg.type == AX__SIG_LINK_EXIT;
  uint32_t decided = AX__MSGF_XDONE;
  if (link && (!a->ext || !ax__u64map_get(&a->ext->links, nt.info.pid.id, NULL))) {
    /* unlinked: dropped */
  } else if (a->ext && a->ext->trap_exit) {
    decided |= AX__MSGF_XTRAP; /* a link exit is checked again at delivery */
  } else {
    if (link) ax__link_del(a->ext, nt.info.pid.id);
    if (nt.info.reason != AX_REASON_NORMAL) request_exit(c, nt.info.reason);
  }
  /* The placeholder is still on the user lane, where a DROP_OLD sender's
   * trim_old reads node flags under lane_lock: write them under it too. */
  bool locked = a->limit && a->overflow == AX_OVERFLOW_DROP_OLD;
  if (locked) lane_lock(a);
  nt.ph->msg.flags |= decided;
  if (locked) lane_unlock(a);
}

static void handle_signal(ax_actor *a, ax__ctx *c, ax__mnode *n) {
  if (n->msg.type == AX__SIG_STOP) {
    ax_reason r;
    memcpy(&r, n->payload, sizeof(r));
    request_exit(c, r);
  } else if (n->msg.type == AX__SIG_EXIT || n->msg.type == AX__SIG_LINK_EXIT) {
    exit_notice(a, c, n);
  } else if (n->msg.type == AX__SIG_PROBE) {
    ax__probe_answer(a, n);
  } else {
    ax__links_signal(a, c, n);
  }
}

static void process_sys(ax_actor *a, ax__ctx *c) {
  ax__mlink *l, *old;
  while (!c->exiting && (l = ax__lane_pop(&a->sys_tail, &old))) {
    free_old(a, old);
    handle_signal(a, c, ax__mnode_of(l));
  }
}

/* An exit placeholder n, just popped (old: the previous tail), reached on
 * the user lane: its notice was sent before it, so handle the system lane
 * now. False only while another producer is still linking a node ahead of
 * the notice: n is then put back (un-pop) for the next run. */
__attribute__((noinline)) static bool exit_decided(ax_actor *a, ax__ctx *c, const ax__mnode *n,
                                                   ax__mlink *old, bool locked) {
  if (n->msg.flags & AX__MSGF_XDONE) return true;
  process_sys(a, c);
  if ((n->msg.flags & AX__MSGF_XDONE) || c->exiting) return true;
  if (locked) lane_lock(a);
  a->user_tail = old; /* un-pop: the consumer state is just the tail */
  if (locked) lane_unlock(a);
  return false;
}

__attribute__((noinline)) static ax__mlink *pop_locked(ax_actor *a, ax__mlink **old) {
  lane_lock(a);
  ax__mlink *l = ax__lane_pop(&a->user_tail, old);
  lane_unlock(a);
  return l;
}

/* Fills m (type, length, data) from the bundle slot at p; returns the
 * slot's size. */
static inline __attribute__((always_inline)) uint32_t bslot_take(ax_msg *m, const char *p) {
  const ax__bslot *s = (const ax__bslot *)p;
  uint32_t len = s->len;
  m->type = s->type;
  m->len = len;
  m->data = len ? (const void *)(s + 1) : NULL;
  return ax__bslot_size(len);
}

/* A batched run publishes d slots taken from a bundle (see bundle_run). */
static inline __attribute__((always_inline)) void bslot_taken(ax_actor *a, uint64_t stub_base,
                                                              uint64_t word, uint32_t d) {
  if (stub_base)
    /* relaxed: as the run loop's store of the same word */
    atomic_store_explicit(&a->user_stub_word, word + ((uint64_t)d << 1), memory_order_relaxed);
}

/* Delivers a bundle's slots from its cursor, up to budget, each as a plain
 * message from the bundle's sender (the slot is the payload: borrowed,
 * as any message's), stopping where the run loop would. Returns the slots
 * delivered (>= 1: the loop calls it with off < end, budget left and no
 * reason to stop) and moves the cursor past them. stub_base (batched
 * runs, else 0): each slot is counted in *taken and published as the
 * loop's pops are (stub_base | taken << 1, whose taken bits are 0 in
 * stub_base: the base plus twice the count).
 * noipa: constant-propagated, c became the thread-local's address, whose
 * base and offset then took two registers across the behaviour's call. */
AX_NOIPA static uint32_t bundle_run(ax_actor *a, ax__ctx *c, ax__mnode *b, uint32_t budget,
                                    bool hooked, uint64_t stub_base, uint32_t *taken) {
  const char *p = b->payload + (uint32_t)b->msg.ref, *q = b->payload + b->msg.type;
  const uint64_t word = stub_base + ((uint64_t)*taken << 1);
  uint32_t d = 0;
  ax__mnode v;
  v.msg = (ax_msg){.from = b->msg.from};
  v.to = b->to;
  if (AX_UNLIKELY(hooked && c->hooks)) {
    /* Metrics or tracing: each slot through deliver_as, as a node. */
    do {
      p += bslot_take(&v.msg, p);
      bslot_taken(a, stub_base, word, ++d);
      deliver_as(a, c, &v, true);
    } while (!c->exiting && !c->mute_on && p < q && d < budget);
  } else {
    /* The behaviour directly: a slot has no buffer, and the delivered flag
     * is set once. The behaviour is read each time (ax_become may change
     * it). Little lives across the call (the cursor, the count, the bounds,
     * the word), so little is spilled. */
    c->delivered = true;
    do {
      p += bslot_take(&v.msg, p);
      bslot_taken(a, stub_base, word, ++d);
      ax_err e = a->behaviour(a, &v.msg);
      if (AX_UNLIKELY(e != AX_OK)) {
        request_exit(c, AX_REASON_ERROR + (ax_reason)e);
        break;
      }
      /* hooks turned on (ax_metrics_track on itself): the rest goes
       * through a hooked run, as the run loop's rule (one branch for the
       * three) */
      if (AX_UNLIKELY(c->exiting | (c->mute_on != 0) | c->hooks)) break;
    } while (p < q && d < budget);
  }
  if (stub_base) *taken += d;
  b->msg.ref = (uint32_t)(p - b->payload);
  return d;
}

/* Returns the messages popped (for the processed count). Two copies, with
 * and without the hooks: the one without ends the run when a behaviour
 * turns them on (ax_metrics_track on itself), so the rest of the mailbox
 * is counted by a hooked run. */
static inline __attribute__((always_inline)) uint32_t process_user_as(ax_actor *a, ax__ctx *c,
                                                                      uint32_t budget,
                                                                      const bool hooked,
                                                                      const bool batched) {
  /* Never run past the messages present at the start of the run. */
  uintptr_t snap = atomic_load_explicit(&a->user_head, memory_order_acquire) & ~AX__LANE_IDLE;
  if ((ax__mlink *)snap == a->user_tail) return 0;
  uint32_t popped = 0;
  uint32_t limit = a->limit;
  bool locked = limit && a->overflow == AX_OVERFLOW_DROP_OLD; /* see trim_old */
  /* batched (the copy for bounded lanes other than DROP_OLD, without
   * hooks): what the run took is subtracted from `queued` once, at its end
   * (taken), and the count is published after each pop in the retired
   * stub's word (a plain store on line 0, which the run's end touches
   * anyway) for senders at the limit, which judge by queued - taken
   * (admit_slow). The locked subtract per message was fjthrput's
   * consumers' one RMW of their own (docs/ARCHITECTURE.md "Scheduler
   * notes"). A copy of its own: the extra state in the loop of every
   * actor's copy cost big (unbounded) 7% CPU on one worker. */
  uint32_t taken = 0;
  /* The word with taken 0 (the stub may be retired only by this run's
   * first pop: then processed is 0, and the word is 1). A budget within
   * the word's field bounds taken: the expiries that raise the budget are
   * not counted (an owner's own take the TFIRE branch; direct ones, which
   * would reach the counting branch, are only ever sent to unbounded
   * lanes: timers.c direct_ok). */
  uint64_t stub_base = 0;
  if (batched) {
    stub_base = (ax__actor_processed(a) << AX__STUB_PROC_SHIFT) | 1;
    if (budget > AX__STUB_TAKEN_MAX) budget = AX__STUB_TAKEN_MAX;
  }
  ax__mlink *l, *old;
  bool active = false;
  while (budget-- && (l = AX_UNLIKELY(locked) ? pop_locked(a, &old)
                                              : ax__lane_pop(&a->user_tail, &old))) {
    popped++;
    ax__mnode *n = ax__mnode_of(l);
    /* Timer expiries (a direct one's message, an owner's expiry or reap
     * list) are due: they do not count against the budget, so an actor
     * that fell behind takes them all in this run (the run still ends at
     * the messages present at its start) instead of 100 per turn behind
     * the worker's queue (timers.c; docs/ARCHITECTURE.md, "Timers"). Only
     * this node's: they carry internal flags (TDIRECT is cleared here, the
     * behaviour sees AX_MSGF_TIMER), whereas AX_MSGF_TIMER alone also comes
     * on a peer's SEND, whose bytes must not buy an unbudgeted run. A
     * bundle (the outbox's) shares the test: one for both rare kinds. */
    if (AX_UNLIKELY(n->msg.flags & (AX__MSGF_TDIRECT | AX__MSGF_TFIRE | AX__MSGF_BUNDLE))) {
      if (n->msg.flags & AX__MSGF_BUNDLE) {
        /* Never on a DROP_OLD lane (not locked): the outbox chains only to
         * unbounded and BACKPRESSURE lanes. */
        uint32_t d = bundle_run(a, c, n, budget + 1, hooked, batched ? stub_base : 0, &taken);
        popped += d - 1;
        budget -= d - 1;
        active = true;
        if (!batched && limit) atomic_fetch_sub_explicit(&a->queued, d, memory_order_seq_cst);
        if ((uint32_t)n->msg.ref != n->msg.type) {
          a->user_tail = old; /* un-pop: the rest waits for the next run */
          break;
        }
        free_old(a, old);
        if (l == (ax__mlink *)snap || c->exiting || c->mute_on || (!hooked && c->hooks)) break;
        continue;
      }
      budget++;
      c->expiries = true;
      n->msg.flags &= ~AX__MSGF_TDIRECT;
    }
    if (AX_UNLIKELY(n->msg.flags & AX__MSGF_XPEND) && !exit_decided(a, c, n, old, locked))
      break;
    free_old(a, old);
    if (hooked && AX_UNLIKELY(c->obs != NULL) && !(n->msg.flags & AX_MSGF_SYSTEM))
      ax__obs_on_pop(c->obs, n);
    if (n->msg.flags & AX_MSGF_SYSTEM) {
      if (n->msg.flags & AX__MSGF_XPEND) {
        if ((n->msg.flags & AX__MSGF_XTRAP) && !c->exiting && ax__links_accept(a, n)) {
          n->msg.flags &= ~AX__MSGF_INTERNAL;
          deliver_as(a, c, n, hooked);
          active = true;
        }
      } else if (n->msg.flags & AX__MSGF_TFIRE) {
        bool recv = (n->msg.flags & AX__MSGF_TRECV) != 0;
        if (ax__timers_on_fire(a, n)) {
          deliver_as(a, c, n, hooked);
          active |= !recv;
        }
      } else if (n->msg.type != AX__WAKE && ax__links_accept(a, n)) {
        n->msg.flags &= ~AX__MSGF_INTERNAL;
        deliver_as(a, c, n, hooked);
        active = true;
      }
    } else if ((n->msg.flags & AX_MSGF_REPLY) && (n->msg.ref & 1) && !ax__timers_on_reply(a, n)) {
      if (limit) atomic_fetch_sub_explicit(&a->queued, 1, memory_order_seq_cst);
    } else {
      active = true;
      if (batched) {
        /* relaxed: senders only need to see it eventually (a stale,
         * smaller count makes them judge the lane fuller than it is). */
        atomic_store_explicit(&a->user_stub_word, stub_base | ((uint64_t)++taken << 1),
                              memory_order_relaxed);
      } else if (limit) {
        /* seq_cst: pairs with mute_self's push-then-check. */
        uint32_t q = atomic_fetch_sub_explicit(&a->queued, 1, memory_order_seq_cst);
        if (q > limit && a->overflow == AX_OVERFLOW_DROP_OLD) {
          atomic_fetch_add_explicit(&ax__actor_bounded(a)->drops, 1, memory_order_relaxed);
          atomic_fetch_add_explicit(&a->sys->dropped, 1, memory_order_relaxed);
          if (l == (ax__mlink *)snap) break;
          continue;
        }
      }
      deliver_as(a, c, n, hooked);
    }
    /* The snapshot's end first: most runs take one message. */
    if (l == (ax__mlink *)snap || c->exiting || c->mute_on || (!hooked && c->hooks)) break;
  }
  if (batched && taken) {
    /* taken back to 0 before the subtract (relaxed, ordered by the
     * subtract's release): a sender whose add comes after the subtract
     * reads 0 or a later count, never one the subtract already covered, so
     * queued - taken never understates the depth. seq_cst: the subtract
     * pairs with mute_self's push-then-check (ax__actor_run then loads the
     * mute stack). */
    atomic_store_explicit(&a->user_stub_word, stub_base, memory_order_relaxed);
    atomic_fetch_sub_explicit(&a->queued, taken, memory_order_seq_cst);
  }
  if (active && a->ext && a->ext->recv_ms) ax__timers_activity(a);
  return popped;
}

bool ax__actor_next_due(ax_actor *a) {
  /* acquire: the node's fields, written before its push (release) */
  ax__mlink *l = atomic_load_explicit(&a->user_tail->next, memory_order_acquire);
  return l && (ax__mnode_of(l)->msg.flags & (AX__MSGF_TDIRECT | AX__MSGF_TFIRE));
}

static inline __attribute__((always_inline)) uint32_t process_user(ax_actor *a, ax__ctx *c,
                                                                   uint32_t budget) {
  return process_user_as(a, c, budget, false, false);
}

__attribute__((noinline)) static uint32_t process_user_batched(ax_actor *a, ax__ctx *c,
                                                               uint32_t budget) {
  return process_user_as(a, c, budget, false, true);
}

/* The unbounded loop for a streaming run's further snapshots: a copy of
 * its own, so that process_user stays inline in ax__actor_run. */
__attribute__((noinline)) static uint32_t process_user_again(ax_actor *a, ax__ctx *c,
                                                             uint32_t budget) {
  return process_user_as(a, c, budget, false, false);
}

__attribute__((noinline)) static uint32_t process_user_hooked(ax_actor *a, ax__ctx *c,
                                                              uint32_t budget) {
  return process_user_as(a, c, budget, true, false);
}

/* A streaming run takes its mailbox's next snapshot while it has woken
 * nobody (its sends went to actors already queued, or are chained), its
 * mailbox has more (the continuation it sent itself), no signal waits, it
 * neither fills a bounded lane past a quarter nor is muted, within the
 * run's budget (cfg.batch messages in all its snapshots), AX__OBOX_ROUNDS
 * snapshots, AX__OBOX_RUN_SENDS chained sends and AX__QUIET_NS: so its
 * chains hold several rounds of sends (fjthrput's producer sends one
 * message to each of 60 actors a round). The same test as sched.c's quiet
 * re-runs, which count its snapshots as re-runs; a run stays a run (one
 * budget, one flush). */
__attribute__((noinline)) static uint32_t obox_rounds(ax_actor *a, ax__ctx *c, uint32_t n,
                                                      uint32_t *rounds) {
  obox *o = c->obox;
  ax__worker *w = c->worker;
  bool batched = a->limit && a->overflow != AX_OVERFLOW_DROP_OLD;
  uint32_t batch = a->sys->cfg.batch;
  for (uint32_t round = 1; round < AX__OBOX_ROUNDS && n < batch; round++) {
    if (c->exiting || c->mute_on || c->filling || w->wakes != o->wakes) break;
    if (o->sent >= AX__OBOX_RUN_SENDS) break;
    /* acquire: as release_run's loads */
    if (atomic_load_explicit(&a->sys_tail->next, memory_order_acquire)) break;
    if (!atomic_load_explicit(&a->user_tail->next, memory_order_acquire)) break;
    /* The clock last, counted from the second snapshot (the first is
     * bounded by the budget): most streaming runs never get here (count's
     * producer stops at its bounded lane's quarter), and a read at every
     * run's start was 4-5% of count's time on one worker. */
    uint64_t now = ax__now_ns();
    if (!o->t0) o->t0 = now;
    else if (now - o->t0 >= AX__QUIET_NS) break;
    n += batched ? process_user_batched(a, c, batch - n) : process_user_again(a, c, batch - n);
    ++*rounds;
  }
  return n;
}

/* Ends a run (or an init): the actor goes idle unless work arrived. Returns
 * true when the caller must schedule it again. Mark the system lane idle
 * first: a signal pushed after that sees the idle bit and pushes a wake
 * node to the user lane, which then either makes our user-lane CAS fail or
 * finds the user lane idle and schedules the actor itself. */
static bool release_run(ax_actor *a) {
  /* An idle system lane is empty (a push clears the bit), so the usual
   * case is one load. acquire: as ax__lane_empty's load of the head. */
  if (!(atomic_load_explicit(&a->sys_head, memory_order_acquire) & AX__LANE_IDLE) &&
      (!ax__lane_empty(&a->sys_head, a->sys_tail) ||
       !ax__lane_mark_idle(&a->sys_head, a->sys_tail)))
    return true;
  if (atomic_load_explicit(&a->user_tail->next, memory_order_acquire)) return true;
  return !ax__lane_mark_idle(&a->user_head, a->user_tail);
}

static void finalize(ax_actor *a, ax__ctx *c, ax_reason reason, bool started);

/* The spec's end-of-run hook (see ax_flush_fn): an error stops the actor
 * as a behaviour's would. */
static void run_flush(ax_actor *a, ax__ctx *c) {
  ax_err e = a->spec->flush(a, ax__actor_state(a));
  if (e != AX_OK) request_exit(c, AX_REASON_ERROR + (ax_reason)e);
}

/* The run, in two copies: ax__actor_run, and ax__actor_run_stream for an
 * actor hinted to stream (the outbox), so that the common run carries no
 * test of it (a streaming test in the shared body cost pingpong ~12
 * instructions a run). */
static inline __attribute__((always_inline)) ax__run_result actor_run_as(ax_actor *a,
                                                                       const bool stream) {
  ax__ctx *c = ax__ctx_get();
  c->current = a;
  c->exiting = false;
  c->delivered = false;
  c->mute_on = 0;
  c->flush_later = false;
  c->filling = false;
  c->expiries = false;
  bool owed = c->flush_owed; /* run from the deferred list: flush at the end */
  c->flush_owed = false;
  /* Metrics and tracing are decided once per run (a tracer set meanwhile
   * sees this actor's receives from its next run), with one test of a
   * read-mostly byte until either is used. */
  c->obs = NULL;
  c->hooks = false;
  bool hooked = false;
  if (AX__HOOKS_ON(a->sys)) {
    ax__obs_run_begin(a, c);
    hooked = c->hooks;
  }
  /* A streaming run (the outbox): c->obox_on is false outside one. */
  bool streaming = stream && obox_begin(a, c);
  uint32_t rounds = 0;
  /* The system lane is almost always empty: test it inline (process_sys
   * is out of line since exit placeholders call it too). */
  if (AX_UNLIKELY(atomic_load_explicit(&a->sys_tail->next, memory_order_acquire) != NULL))
    process_sys(a, c);
  if (!c->exiting) {
    uint32_t n = AX_UNLIKELY(hooked) ? process_user_hooked(a, c, a->sys->cfg.batch)
                 : a->limit && a->overflow != AX_OVERFLOW_DROP_OLD
                     ? process_user_batched(a, c, a->sys->cfg.batch)
                 : stream ? process_user_again(a, c, a->sys->cfg.batch)
                          : process_user(a, c, a->sys->cfg.batch);
    if (stream && streaming) n = obox_rounds(a, c, n, &rounds);
    /* The processed count, in the retired stub (actor_int.h): owner-only,
     * a plain add once per run, on the line release_run touches anyway. */
    if (n && a->user_tail != &a->user_stub)
      atomic_store_explicit(&a->user_stub_word,
                            ((ax__actor_processed(a) + n) << AX__STUB_PROC_SHIFT) | 1,
                            memory_order_relaxed);
  }
  /* A flush asked to wait (ax_flush_later) is deferred unless it is owed
   * already (never twice in a row), the run mutes us (a muted actor is not
   * scheduled, so nobody would run it) or no scheduler worker runs us. */
  bool defer = false;
  if (AX_UNLIKELY(a->spec->flush != NULL) && (c->delivered || owed) && !c->exiting) {
    if (c->flush_later && !owed && !c->mute_on && c->worker && !a->sys->det) defer = true;
    else run_flush(a, c);
  }
  /* The chains first: before the actor can be muted, stopped or run
   * elsewhere (the outbox). */
  if (stream && streaming) obox_end(a, c, rounds);
  /* What the run sent to other nodes, in one write (tested here: a call
   * per run for a flag that is almost never set). */
  if (AX_UNLIKELY(c->route_held)) ax__route_run_end(a->sys);
  c->current = NULL;
  if (c->exiting) {
    finalize(a, c, c->reason, true);
    c->obs = NULL; /* freed with a */
    return AX__RUN_DEAD;
  }
  /* Unmute our own waiting senders before we may mute ourselves: two
   * actors muted on each other would otherwise wait forever. */
  if (a->limit && a->overflow == AX_OVERFLOW_BACKPRESSURE &&
      atomic_load_explicit(&ax__actor_bounded(a)->mute_stack, memory_order_seq_cst) &&
      atomic_load_explicit(&a->queued, memory_order_seq_cst) < a->limit)
    unmute_senders(a);
  if (c->mute_on) {
    uint64_t r = c->mute_on;
    c->mute_on = 0;
    return mute_self(a, r);
  }
  if (defer) return AX__RUN_DEFER; /* still scheduled: the worker runs us again */
  return release_run(a) ? AX__RUN_AGAIN : AX__RUN_IDLE;
}

ax__run_result ax__actor_run(ax_actor *a) { return actor_run_as(a, false); }

ax__run_result ax__actor_run_stream(ax_actor *a) { return actor_run_as(a, true); }

void ax_flush_later(ax_actor *self) {
  if (!self) return;
  ax__ctx *c = ax__ctx_get();
  if (c->current == self) c->flush_later = true;
}

/* ---- stopping ---- */

static uint64_t drain_lane(ax_actor *a, ax__mlink **tail) {
  uint64_t lost = 0;
  ax__mlink *l, *old;
  while ((l = ax__lane_pop(tail, &old))) {
    free_old(a, old);
    ax__mnode *n = ax__mnode_of(l);
    if (!(n->msg.flags & AX_MSGF_SYSTEM)) {
      lost += ax__node_msgs(n);
    } else {
      ax__links_on_drained(a->sys, a->pid, n);
      ax__timers_on_drained(n); /* an expiry may hold its timer */
    }
  }
  free_old(a, *tail);
  return lost;
}

/* Frees everything of an actor whose pid is already unreachable and whose
 * grace period is over (qsbr.c: no send without a reference can still
 * reach it). Thread: any. */
void ax__actor_destroy(ax_actor *a) {
  ax_system *sys = a->sys;
  uint64_t lost = drain_lane(a, &a->user_tail) + drain_lane(a, &a->sys_tail);
  if (lost) atomic_fetch_add_explicit(&sys->dead_letters, lost, memory_order_relaxed);
  if (a->limit) unmute_senders(a);
  if (a->ext) {
    ax__obs_free(a);
    ax__u64map_free(&a->ext->timers);
    ax__links_free(a->ext);
    ax__free(a->ext, sizeof(ax__actor_ext));
  }
  ax__table_remove(&sys->table, a->pid);
  ax__free_aligned(a, ax__actor_size(a->spec), AX_CACHELINE);
  atomic_fetch_add_explicit(&sys->stopped, 1, memory_order_relaxed);
  if (atomic_fetch_sub_explicit(&sys->live, 1, memory_order_acq_rel) == 1) {
    pthread_mutex_lock(&sys->wait_lock);
    pthread_cond_broadcast(&sys->wait_cv);
    pthread_mutex_unlock(&sys->wait_lock);
  }
}

/* Makes the pid dead for every sender and drops the actor's name. The name
 * check comes after the kill: ax_register holds a table reference while it
 * sets NAMED, so once the kill has waited out every reference the bit is
 * final. */
static void unreachable(ax_actor *a) {
  ax__table_kill(&a->sys->table, a->pid);
  if (atomic_load_explicit(&a->mute_state, memory_order_acquire) & AX__MS_NAMED)
    ax__registry_drop_pid(a->sys, a->pid);
}

/* The stop path. started is false for an actor whose init failed: it gets
 * no terminate, but everything it made during init (timers, links, monitors
 * on it, sockets, its name) is undone and signalled as for any stop. */
static void finalize(ax_actor *a, ax__ctx *c, ax_reason reason, bool started) {
  if (started && a->spec->terminate) {
    ax__ctx saved = *c;
    c->current = a;
    c->exiting = true; /* ax_exit(self, self) inside terminate is a no-op */
    c->mute_on = 0;
    c->obox_on = false;
    a->spec->terminate(a, ax__actor_state(a), reason);
    bool held = c->route_held; /* frames it sent stay due at the run's end */
    *c = saved;
    c->route_held |= held;
  }
  if (ax_reason_is_error(reason))
    ax_log(a->sys, AX_LOG_DEBUG, "actor %s <%llx> stopped: %s",
           a->spec->name ? a->spec->name : "?", (unsigned long long)a->pid, ax_reason_str(reason));
  if (AX__HOOKS_ON(a->sys)) {
    const ax_tracer *t = ax__tracer(a->sys);
    if (t) ax__trace_actor(t, AX_TRACE_STOP, a, 0, reason);
    if (a->ext && a->ext->obs) ax__obs_on_stop(a);
  }
  /* Its timers go first: one for another actor is sent by the pass that
   * fires it, so once the pid is dead none may still fire (the timer.*
   * suites wait for that). */
  if (a->ext) ax__timers_on_stop(a);
  /* Dead and nameless before anyone can tell it stopped (as in Erlang):
   * whoever handles its exit signal or DOWN (a supervisor restarting it, a
   * monitor, ax_call) finds the pid dead and the name free. */
  unreachable(a);
  if (a->ext) ax__links_on_stop(a, reason);
  ax__layers_on_actor_stop(a->sys, a->pid);
  ax_system *sys = a->sys;
  ax__qs_retire(sys, a); /* its destroy, once no send can reach it */
  if (c->worker) ax__route_run_end(sys); /* what terminate sent to other nodes */
}

/* ---- spawning ---- */

/* Links a new child (still owned by this thread) with its parent (running
 * on this thread) before the child's init. */
static ax_err link_child(ax_actor *child, ax_actor *parent) {
  ax__actor_ext *cx = ax__ext(child), *px = ax__ext(parent);
  if (!cx || !px || !ax__link_put(child->sys, cx, child->pid, parent->pid)) return AX_ENOMEM;
  if (!ax__link_put(parent->sys, px, parent->pid, child->pid)) return AX_ENOMEM;
  return AX_OK;
}

ax_err ax__spawn(ax_system *sys, const ax_actor_spec *spec, const void *arg, size_t len,
                 ax_pid *out, ax_actor *link_to) {
  if (!sys || !spec || !spec->behaviour || (len && !arg)) return AX_EINVAL;
  /* Shutdown waits for spawns in flight; from here until the actor counts
   * as live (or the spawn fails) this one is. */
  if (!ax__spawn_enter(sys)) return AX_ECLOSED;
  size_t size = ax__actor_size(spec);
  ax_actor *a = ax__alloc_aligned(size, AX_CACHELINE);
  if (!a) {
    ax__spawn_leave(sys, false);
    return AX_ENOMEM;
  }
  memset(a, 0, size);
  /* Both lanes start owned (not idle): messages sent during init queue up
   * without scheduling the actor; release_run below hands it over. */
  ax__lane_init(&a->user_head, &a->user_tail, &a->user_stub, false);
  ax__lane_init(&a->sys_head, &a->sys_tail, &a->sys_stub, false);
  a->spec = spec;
  a->limit = spec->mailbox_limit;
  a->overflow = (unsigned)spec->overflow > UINT8_MAX ? UINT8_MAX : (uint8_t)spec->overflow;
  a->behaviour = spec->behaviour;
  a->sys = sys;
  ax_err e = ax__table_insert(&sys->table, a, &a->pid);
  uint64_t pid = a->pid;
  if (e != AX_OK) {
    ax__free_aligned(a, size, AX_CACHELINE);
    ax__spawn_leave(sys, false);
    return e;
  }
  atomic_fetch_add_explicit(&sys->live, 1, memory_order_relaxed);
  ax__spawn_leave(sys, true); /* after live: see ax__spawn_leave */
  atomic_fetch_add_explicit(&sys->spawned, 1, memory_order_relaxed);
  ax__ctx *c = ax__ctx_get();
  ax__ctx saved = *c;
  if (AX__HOOKS_ON(sys)) {
    const ax_tracer *t = ax__tracer(sys);
    if (t)
      ax__trace_actor(t, AX_TRACE_SPAWN, a,
                      c->current && c->current->sys == sys ? c->current->pid : 0, 0);
    if (atomic_load_explicit(&sys->obs_default, memory_order_relaxed)) ax__obs_on_spawn(a);
  }
  c->current = a;
  c->exiting = false;
  c->mute_on = 0;
  c->obs = NULL;
  c->hooks = false;
  c->obox_on = false; /* the spawner's chains wait for its run's end */
  e = link_to ? link_child(a, link_to) : AX_OK;
  if (e == AX_OK && spec->init) e = spec->init(a, ax__actor_state(a), arg, len);
  bool exiting = c->exiting;
  ax_reason reason = c->reason;
  bool held = c->route_held; /* frames init sent stay due at the run's end */
  *c = saved;
  c->route_held |= held;
  if (e != AX_OK) {
    /* The spawner learns of the failure from the error: its link half goes
     * (so the exit below is ignored by it); everyone else linked or
     * monitoring during init is told, with the init error as reason. */
    if (link_to && link_to->ext) ax__link_del(link_to->ext, pid);
    if (link_to && a->ext) ax__link_del(a->ext, link_to->pid);
    finalize(a, c, AX_REASON_ERROR + (ax_reason)e, false);
    /* From a plain thread, a failed spawn leaves nothing alive when it
     * returns: wait out the destroy's grace period (qsbr.h; on a worker
     * the retire waits on its own list, as any stop). */
    if (c->qs_sys != sys) ax__qs_sync(sys);
    return e;
  }
  if (out) out->id = pid;
  if (exiting) {
    finalize(a, c, reason, true);
    if (c->qs_sys != sys) ax__qs_sync(sys); /* as above: an init that exits */
  }
  else if (release_run(a))
    ax__schedule(sys, a);
  return AX_OK;
}

/* ---- public API ---- */

ax_err ax_spawn(ax_actor *self, const ax_actor_spec *spec, const void *arg, size_t len,
                ax_pid *out) {
  if (!self) return AX_EINVAL;
  return ax__spawn(self->sys, spec, arg, len, out, NULL);
}

ax_err ax_system_spawn(ax_system *sys, const ax_actor_spec *spec, const void *arg, size_t len,
                       ax_pid *out) {
  return ax__spawn(sys, spec, arg, len, out, NULL);
}

ax_pid ax_self(const ax_actor *self) { return self ? (ax_pid){self->pid} : AX_PID_NONE; }
void *ax_state(ax_actor *self) { return self ? ax__actor_state(self) : NULL; }
ax_system *ax_actor_system(const ax_actor *self) { return self ? self->sys : NULL; }

void ax_become(ax_actor *self, ax_behaviour behaviour) {
  if (self && behaviour) self->behaviour = behaviour;
}

/* ax_send off its common case: a pid of another node, or hooks in use. */
AX_NOIPA static ax_err send_other(ax_system *sys, uint64_t from, ax_pid to, uint32_t type,
                                  const void *data, size_t len) {
  return send_to(sys, ax__ctx_get(), from, to, type, 0, 0, data, len, NULL);
}

/* The common case (a local pid, no hooks) is the send path inline, with no
 * flags, ref or buffer, behind two tests; the rest goes through send_other.
 * Measured on `count`, one worker: the ten-argument call to send_local
 * (stack arguments, two frames) was ~45 of ~330 instructions a message, a
 * six-argument copy of it ~8 more than this. */
/* ax_send but for a streaming sender: out of line, so that ax_send's test
 * of the streaming byte comes before any register is saved (inline, the
 * compiler saved six around it: ~14 instructions of every streamed send). */
__attribute__((noinline)) static ax_err send_plain(ax_actor *self, ax_pid to, uint32_t type,
                                                   const void *data, size_t len) {
  if (!self || ax_msg_type_reserved(type)) return AX_EINVAL;
  ax_system *sys = self->sys;
  if (AX_LIKELY(ax__pid_node(to.id) == sys->table.node) && !AX__HOOKS_ON(sys))
    return send_local_as(sys, ax__ctx_get(), self->pid, to, type, 0, 0, data, len, NULL, false,
                         NULL);
  return send_other(sys, self->pid, to, type, data, len);
}

ax_err ax_send(ax_actor *self, ax_pid to, uint32_t type, const void *data, size_t len) {
  /* A streaming run (the outbox, above): one test of a byte on the
   * sender's first line, and a jump with the arguments where they came. */
  if (AX_LIKELY(self != NULL) && AX_UNLIKELY(self->obox == AX__OBOX_STREAMING) &&
      AX_LIKELY(!ax_msg_type_reserved(type)))
    return obox_send(self, to, type, data, len);
  return send_plain(self, to, type, data, len);
}

static ax_err check_slice(ax_buf *buf, size_t off, size_t len) {
  if (!buf || off > ax_buf_len(buf) || len > ax_buf_len(buf) - off) return AX_EINVAL;
  return AX_OK;
}

ax_err ax_send_buf(ax_actor *self, ax_pid to, uint32_t type, ax_buf *buf, size_t off, size_t len) {
  if (!self || ax_msg_type_reserved(type)) return AX_EINVAL;
  ax_err e = check_slice(buf, off, len);
  if (e != AX_OK) return e;
  return send_to(self->sys, ax__ctx_get(), self->pid, to, type, 0, 0,
                 (char *)ax_buf_data(buf) + off, len, buf);
}

/* The sender seen from an arbitrary thread: the running actor of this
 * system, if any. */
static uint64_t current_pid(ax_system *sys, ax__ctx *c) {
  return c->current && c->current->sys == sys ? c->current->pid : 0;
}

ax_err ax_system_send(ax_system *sys, ax_pid to, uint32_t type, const void *data, size_t len) {
  if (!sys || ax_msg_type_reserved(type)) return AX_EINVAL;
  ax__ctx *c = ax__ctx_get();
  return ax__send(sys, c, current_pid(sys, c), to, type, 0, 0, data, len, NULL);
}

ax_err ax_system_send_buf(ax_system *sys, ax_pid to, uint32_t type, ax_buf *buf, size_t off,
                          size_t len) {
  if (!sys || ax_msg_type_reserved(type)) return AX_EINVAL;
  ax_err e = check_slice(buf, off, len);
  if (e != AX_OK) return e;
  ax__ctx *c = ax__ctx_get();
  return ax__send(sys, c, current_pid(sys, c), to, type, 0, 0, (char *)ax_buf_data(buf) + off,
                  len, buf);
}

ax_err ax__request(ax_actor *self, ax_pid to, uint32_t type, const void *data, size_t len,
                   uint32_t timeout_ms, ax_ref *ref_out) {
  ax_ref ref = ax__new_ref(self->sys);
  if (timeout_ms != AX_INFINITY) {
    ax_err e = ax__timers_request(self, ref, timeout_ms);
    if (e != AX_OK) return e;
    ref |= 1; /* marks a timed request: see ax__new_ref */
  }
  ax_err e = ax__send(self->sys, ax__ctx_get(), self->pid, to, type, AX_MSGF_REQUEST, ref, data,
                      len, NULL);
  if (e != AX_OK && (ref & 1)) ax__timers_forget(self, ref);
  if (e == AX_OK && ref_out) *ref_out = ref;
  return e;
}

ax_err ax_request(ax_actor *self, ax_pid to, uint32_t type, const void *data, size_t len,
                  uint32_t timeout_ms, ax_ref *ref_out) {
  if (!self || ax_msg_type_reserved(type)) return AX_EINVAL;
  return ax__request(self, to, type, data, len, timeout_ms, ref_out);
}

ax_err ax__reply(ax_system *sys, ax_reply_addr to, uint32_t type, const void *data, size_t len) {
  if (ax_pid_is_none(to.pid) || !to.ref) return AX_EINVAL;
  ax__ctx *c = ax__ctx_get();
  return ax__send(sys, c, current_pid(sys, c), to.pid, type, AX_MSGF_REPLY, to.ref, data, len,
                  NULL);
}

ax_err ax_reply(ax_actor *self, const ax_msg *req, uint32_t type, const void *data, size_t len) {
  if (!self || !req || ax_msg_type_reserved(type)) return AX_EINVAL;
  return ax__reply(self->sys, ax_reply_addr_of(req), type, data, len);
}

ax_err ax_reply_to(ax_actor *self, ax_reply_addr to, uint32_t type, const void *data, size_t len) {
  if (!self || ax_msg_type_reserved(type)) return AX_EINVAL;
  return ax__reply(self->sys, to, type, data, len);
}

ax_err ax_system_reply_to(ax_system *sys, ax_reply_addr to, uint32_t type, const void *data,
                          size_t len) {
  if (!sys || ax_msg_type_reserved(type)) return AX_EINVAL;
  return ax__reply(sys, to, type, data, len);
}

static ax_err exit_signal(ax_system *sys, uint64_t from, ax_pid target, ax_reason reason) {
  ax_exit_info info = {.pid = {from}, .reason = reason};
  return ax__signal(sys, from, target.id, AX__SIG_EXIT, &info, sizeof(info));
}

ax_err ax_exit(ax_actor *self, ax_pid target, ax_reason reason) {
  if (!self) return AX_EINVAL;
  if (target.id == self->pid) {
    ax__ctx *c = ax__ctx_get();
    if (c->current == self) {
      request_exit(c, reason == AX_REASON_KILL ? AX_REASON_KILLED : reason);
      return AX_OK;
    }
  }
  return exit_signal(self->sys, self->pid, target, reason);
}

ax_err ax_system_exit(ax_system *sys, ax_pid target, ax_reason reason) {
  if (!sys) return AX_EINVAL;
  ax__ctx *c = ax__ctx_get();
  return exit_signal(sys, current_pid(sys, c), target, reason);
}

ax_err ax_trap_exit(ax_actor *self, bool on) {
  if (!self) return AX_EINVAL;
  ax__actor_ext *x = ax__ext(self);
  if (!x) return AX_ENOMEM;
  x->trap_exit = on;
  return AX_OK;
}

const char *ax_reason_str(ax_reason reason) {
  switch (reason) {
  case AX_REASON_NORMAL: return "normal";
  case AX_REASON_SHUTDOWN: return "shutdown";
  case AX_REASON_KILL: return "kill";
  case AX_REASON_KILLED: return "killed";
  case AX_REASON_NOPROC: return "noproc";
  case AX_REASON_NOCONNECTION: return "noconnection";
  default: break;
  }
  if (ax_reason_is_error(reason)) return ax_err_name((ax_err)(reason - AX_REASON_ERROR));
  return reason >= AX_REASON_USER ? "user" : "unknown";
}

ax_err ax_actor_stats_get(ax_system *sys, ax_pid pid, ax_actor_stats *out) {
  if (!sys || !out) return AX_EINVAL;
  ax_actor *a = ax__table_acquire(&sys->table, pid.id);
  if (!a) return AX_ENOACTOR;
  memset(out, 0, sizeof(*out));
  if (a->limit) { /* an unbounded lane neither drops nor mutes */
    ax__bounded *b = ax__actor_bounded(a);
    uint64_t drops = atomic_load_explicit(&b->drops, memory_order_relaxed);
    out->mutes = atomic_load_explicit(&b->mutes, memory_order_relaxed);
    out->queued = ax__actor_depth(a);
    switch (a->spec->overflow) {
    case AX_OVERFLOW_DROP_NEW: out->dropped_new = drops; break;
    case AX_OVERFLOW_DROP_OLD: out->dropped_old = drops; break;
    default: out->rejected = drops; break;
    }
  }
  ax__table_release(&sys->table, pid.id);
  return AX_OK;
}
