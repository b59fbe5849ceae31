/* Axon: the timer service. Timers belong to actors; the wheels are sharded:
 * one per worker and a central one for other threads, each behind its own
 * lock. An owner sets a timer by inserting it into the wheel of the worker
 * it runs on (a lock nobody else usually touches, a timer still in this
 * core's cache), and cancels it by taking it out of whichever shard holds
 * it, at once. Firing is a pass over every shard's due timers, merged in
 * deadline order and pushed, grouped per owner, onto the owners' user
 * lanes; whoever gets there first runs it: a worker between runs or before
 * it searches for work (ax__timers_poll), or the reactor's tick, which only
 * needs the earliest deadline of all shards to know how long it may sleep.
 * The owner keeps its live timers in a map (id -> timer), so a cancel is
 * decided on the owner's own thread: an expiry whose id is no longer in the
 * map (the "generation tag") is dropped at delivery, even if it was
 * already queued. A timer is reference-counted by its two holders, its
 * shard's wheel (while pending or being fired; a fired one-shot's expiry
 * message carries that reference on to the owner) and the owner (while it
 * is in the map). The expiry carries everything the owner needs (target,
 * type, payload, the timer's size), so an owner that accepts a one-shot
 * frees it without reading it: the timer was last written by the firing
 * thread, often on the other core. A one-shot for another local actor
 * (unbounded) is sent to it by the pass that fires it, not through its
 * owner, which may be busy for a long time: a CAS on the timer decides
 * between that send and the owner's cancel, and the owner forgets the
 * timer when its per-pass reap list comes. Actors woken by a pass go to
 * the firing worker's due list (an owner woken by its reap list alone: its
 * ring's back), which it runs first, oldest first (sched.c
 * ax__schedule_due); a worker whose due list is empty takes half of
 * another's at its poll (ax__sched_due_share). Deadlines are in ticks (a
 * quarter ms, TICK_SHIFT); the reactor sleeps to the nanosecond
 * (ax__reactor_wait_until); a pass cascades the next 64 ticks' timers into
 * the wheels' rings while they are not due yet (prepare_shards). Request timeouts and receive
 * timeouts are timers too. */
#include <limits.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>

#include "actor/actor_int.h"

#define KEEP_MISSED (1u << 26) /* arm() flag, kept in ax__tmr.flags: an interval keeps missed ticks */

/* A shard: a wheel and its lock. The lock is held only for a wheel
 * operation (insert, cancel, one advance), never while running code of an
 * actor or delivering, and never together with another shard's lock. */
struct ax__tshard {
  pthread_mutex_t lock;
  ax__wheel wheel;
  uint64_t low;   /* under lock: the value last published in next */
  uint64_t ops;   /* under lock: owner inserts and cancels (det mode's progress) */
  _Atomic size_t pending; /* the wheel's count (relaxed: a statistic) */
  /* A lower bound of the earliest deadline in the wheel (UINT64_MAX when
   * empty), read by pollers and the tick without the lock; on its own
   * line, since those reads are frequent and its writes rare. */
  _Alignas(AX_CACHELINE) _Atomic uint64_t next;
};

/* 96 bytes before the payload: with a small payload (up to 32 bytes) a
 * timer takes a 128-byte allocation; a million pending ones are that much
 * fresh memory to write while they are set. */
struct ax__tmr {
  ax__wtimer wt;  /* under the shard's lock; wt.deadline: when it is due */
  uint32_t shard; /* the shard whose wheel holds it; set once by arm() */
  /* Under the shard's lock: the owner let go. A pass that holds it fired
   * (out of the wheel) never puts it back. */
  bool cancelled;
  /* A direct one-shot's (AX__MSGF_TDIRECT) fate once out of the wheel:
   * CLAIM_OPEN until the pass that fired it sends its message
   * (CLAIM_SENT) or its owner cancels it (CLAIM_CANCELLED), whichever
   * comes first; see direct_claim. */
  _Atomic uint8_t claim;
  /* Holders: the wheel and the owner. acq_rel: the last releaser frees
   * and must see the other's writes. */
  _Atomic uint32_t refs;
  uint32_t type;
  uint32_t period; /* 0: one-shot */
  uint32_t flags;  /* AX__MSGF_T* for the expiry nodes, and KEEP_MISSED */
  uint64_t id;
  uint64_t owner;
  uint64_t to;
  size_t len;
  char payload[];
};

/* Frees a timer of payload length len (the size arm() checked), without
 * reading it. */
static void tmr_free_len(ax__tmr *t, size_t len) { ax__free(t, sizeof(*t) + len); }

static void tmr_free(ax__tmr *t) { tmr_free_len(t, t->len); }

_Static_assert(sizeof(ax__tmr) <= 96, "a timer with a 32-byte payload fits 128 bytes");

enum { CLAIM_OPEN = 0, CLAIM_SENT = 1, CLAIM_CANCELLED = 2 };

/* Decides a fired direct timer's fate: true if `to` (CLAIM_SENT: the pass
 * that fired it, CLAIM_CANCELLED: its owner) got there first. A sent one
 * is its owner's alone (the wheel's reference ends with the claim): the
 * owner frees it when its reap list names it, or at a cancel, which then
 * fails; so the pass must not touch it after its claim, and its reads
 * before must happen-before that free: acq_rel on success (the pass's
 * release), acquire on failure (the owner's). A cancelled one keeps both
 * references, dropped by the pass and the owner (tmr_release's acq_rel
 * hands the memory over). */
static bool direct_claim(ax__tmr *t, uint8_t to) {
  uint8_t open = CLAIM_OPEN;
  return atomic_compare_exchange_strong_explicit(&t->claim, &open, to, memory_order_acq_rel,
                                                 memory_order_acquire);
}

static void tmr_release(ax__tmr *t) {
  if (atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) == 1) tmr_free(t);
}

static ax__tmr *tmr_of(ax__wtimer *w) { return (ax__tmr *)((char *)w - offsetof(ax__tmr, wt)); }

/* ---- clock ---- */

/* The wheels count in ticks of 2^-TICK_SHIFT ms (a quarter ms); a
 * deadline is rounded up to the next tick, and a pass fires a tick's
 * timers once the clock rounded down has reached it. With 1 ms ticks
 * that rounding alone was half a ms of every timer's lateness on average
 * (up to 1 ms). The wheels' level 0 has a slot per tick and their upper
 * levels keep 1 ms wheels' spans (ax__wheel_init_fine), so a 1000 ms
 * timer is cascaded as often as before; 1/8 ms ticks on a plain wheel put
 * it a level up (a cascade more per timer). A sleeping system still wakes
 * for timers at most once a millisecond (quiet_until). See
 * docs/ARCHITECTURE.md, "Timers". A manual clock moves in whole ms: its
 * ticks are ms << TICK_SHIFT. */
#ifndef TICK_SHIFT
#define TICK_SHIFT 2
#endif
_Static_assert(TICK_SHIFT <= AX__WHEEL_FINE_MAX, "the wheels' level 0 has a slot per tick");
#define TICK_NS (1000000u >> TICK_SHIFT)
#define MS_TICKS ((uint64_t)1 << TICK_SHIFT)
/* A deadline just reached is left to an awake worker for GRACE ticks (a
 * ms) before the reactor's tick fires it. */
#define GRACE MS_TICKS
/* While passes find their recipients busy (coarse), the polls between
 * runs fire on multiples of COARSE_TICKS (half a ms; a power of two). */
#ifndef COARSE_TICKS
#define COARSE_TICKS (MS_TICKS / 2 ? MS_TICKS / 2 : 1)
#endif


/* Deadlines are computed from the clock rounded up and expiries judged by
 * the clock rounded down, so a timer set at t for d ms never fires before
 * t + d, however the two readings fall within a tick (or a ms). */
uint64_t ax__clock_ms(ax_system *sys) {
  if (sys->cfg.clock_ms) return sys->cfg.clock_ms(sys->cfg.clock_arg);
  return (ax__now_ns() + 999999u) / 1000000u;
}

uint64_t ax__clock_floor_ms(ax_system *sys) {
  if (sys->cfg.clock_ms) return sys->cfg.clock_ms(sys->cfg.clock_arg);
  return ax__now_ns() / 1000000u;
}

static uint64_t ticks_ceil(ax_system *sys) {
  if (sys->cfg.clock_ms) return sys->cfg.clock_ms(sys->cfg.clock_arg) << TICK_SHIFT;
  return (ax__now_ns() + TICK_NS - 1) / TICK_NS;
}

static uint64_t ticks_floor(ax_system *sys) {
  if (sys->cfg.clock_ms) return sys->cfg.clock_ms(sys->cfg.clock_arg) << TICK_SHIFT;
  return ax__now_ns() / TICK_NS;
}

/* ---- shards ---- */

static void shard_lock(ax__tshard *s) { pthread_mutex_lock(&s->lock); }
static void shard_unlock(ax__tshard *s) { pthread_mutex_unlock(&s->lock); }

/* The calling thread's shard: its worker's, else the central one. */
static uint32_t my_shard(ax_system *sys) {
  ax__worker *w = ax__ctx_get()->worker;
  uint32_t central = sys->timers.nshards - 1;
  return w && w->sys == sys && w->index < central ? w->index : central;
}

/* Lowest published deadline over all shards. */
static uint64_t shards_next(ax__timers *T, memory_order mo) {
  uint64_t m = UINT64_MAX;
  for (uint32_t i = 0; i < T->nshards; i++) {
    uint64_t v = atomic_load_explicit(&T->shards[i].next, mo);
    if (v < m) m = v;
  }
  return m;
}

/* Under s's lock, after the wheel's earliest deadline may have moved
 * later (a pass advanced it): publishes the new lower bound. relaxed: a
 * reader that sees the older, lower value only wakes early. */
static void republish(ax__tshard *s) {
  s->low = ax__wheel_next_deadline(&s->wheel);
  atomic_store_explicit(&s->next, s->low, memory_order_relaxed);
  atomic_store_explicit(&s->pending, ax__wheel_count(&s->wheel), memory_order_relaxed);
}

/* Under s's lock, after inserting a timer due at `due`: publishes it if it
 * is the shard's new earliest, and returns true if the reactor must be
 * woken to see it (the caller wakes it after unlocking). seq_cst, with the
 * tick's store of reactor_at and its second reading of the shards: either
 * we see the tick's new reactor_at (and wake it if we are earlier), or the
 * tick sees our deadline and runs again at once. */
static bool lower_next(ax__timers *T, ax__tshard *s, uint64_t due) {
  atomic_store_explicit(&s->pending, ax__wheel_count(&s->wheel), memory_order_relaxed);
  if (due >= s->low) return false;
  s->low = due;
  atomic_store_explicit(&s->next, due, memory_order_seq_cst);
  /* seq_cst, with fire_pass's store of earliest and its second reading of
   * the shards (the same pattern): our lower value is never lost. */
  uint64_t e = atomic_load_explicit(&T->earliest, memory_order_seq_cst);
  while (due < e && !atomic_compare_exchange_weak_explicit(&T->earliest, &e, due, memory_order_seq_cst,
                                                          memory_order_seq_cst)) {
  }
  uint64_t at = atomic_load_explicit(&T->reactor_at, memory_order_seq_cst);
  /* relaxed: the tick stored quiet_until before reactor_at (seq_cst), so
   * the value that goes with `at` is seen; an older one is lower and only
   * wakes the reactor for nothing. A deadline inside the quiet
   * millisecond is looked at when it ends, not before. */
  uint64_t quiet = atomic_load_explicit(&T->quiet_until, memory_order_relaxed);
  return (due > quiet ? due : quiet) < at;
}

/* The firer, after a pass moved shard deadlines later: recomputes the
 * lowest. A lower deadline published meanwhile shows in the second
 * reading, or its inserter's CAS comes after our store. */
static void update_earliest(ax__timers *T) {
  uint64_t m = shards_next(T, memory_order_seq_cst);
  atomic_store_explicit(&T->earliest, m, memory_order_seq_cst);
  uint64_t again = shards_next(T, memory_order_seq_cst);
  if (again < m) atomic_store_explicit(&T->earliest, again, memory_order_seq_cst);
}

/* Puts a timer that a pass took out back into its shard's wheel, due at
 * `due` (an interval's next tick, an expiry that found no memory, one past
 * deterministic mode's limit), unless its owner cancelled it meanwhile:
 * then the wheel's reference is dropped instead. Caller: the firer. */
static void put_back(ax_system *sys, ax__tmr *t, uint64_t due) {
  ax__timers *T = &sys->timers;
  ax__tshard *s = &T->shards[t->shard];
  bool wake = false, drop;
  shard_lock(s);
  drop = t->cancelled;
  if (!drop) {
    ax__wheel_insert(&s->wheel, &t->wt, due);
    wake = lower_next(T, s, due);
  }
  shard_unlock(s);
  if (drop) tmr_release(t); /* the wheel's */
  if (wake) ax__reactor_wake(sys->reactor);
}

/* Inserts a new timer, due at `due`, into the calling thread's shard.
 * now_ceil is the clock arm() read: an empty wheel's clock is first moved
 * to just before it (nothing to fire), so the timer lands on a low level. */
static void insert_new(ax_system *sys, ax__tmr *t, uint64_t now_ceil, uint64_t due) {
  ax__timers *T = &sys->timers;
  t->shard = my_shard(sys);
  ax__tshard *s = &T->shards[t->shard];
  shard_lock(s);
  if (!ax__wheel_count(&s->wheel) && now_ceil > ax__wheel_elapsed(&s->wheel) + 1) {
    ax__wlist none = {NULL, NULL};
    ax__wheel_advance(&s->wheel, now_ceil - 1, &none);
  }
  ax__wheel_insert(&s->wheel, &t->wt, due);
  s->ops++;
  bool wake = lower_next(T, s, due);
  shard_unlock(s);
  if (wake) ax__reactor_wake(sys->reactor);
}

/* The owner lets go of t, at once and for good: out of the wheel if it is
 * there; if a pass holds it (fired), that pass sees `cancelled` and drops
 * it. Both references are ours when it was pending. Returns false if it
 * came too late: a direct timer its target already took. Owner side. */
static bool cancel_tmr(ax_system *sys, ax__tmr *t) {
  ax__tshard *s = &sys->timers.shards[t->shard];
  shard_lock(s);
  t->cancelled = true;
  bool held = ax__wheel_pending(&t->wt);
  if (held) {
    ax__wheel_cancel(&s->wheel, &t->wt);
    atomic_store_explicit(&s->pending, ax__wheel_count(&s->wheel), memory_order_relaxed);
  }
  s->ops++;
  shard_unlock(s);
  if (held) {
    tmr_free(t); /* nobody else holds it: an expiry already queued is judged by the map */
    return true;
  }
  /* Fired. An owner-bound expiry is judged by the map at delivery; a
   * direct one by its claim. */
  if ((t->flags & AX__MSGF_TDIRECT) && !direct_claim(t, CLAIM_CANCELLED)) {
    tmr_free(t); /* sent: ours alone */
    return false;
  }
  tmr_release(t); /* the owner's; the pass that fired it, or its expiry, holds the wheel's */
  return true;
}

/* Whether a one-shot from a to `to` is sent to `to` by the pass that
 * fires it (AX__MSGF_TDIRECT) rather than through a, which would accept
 * and forward it at its next run: a busy owner would hold it back by as
 * long as it stays busy. Only for a live local actor without a mailbox bound (a bounded one
 * gets the forward, which its overflow policy judges), and not while
 * metrics or tracing hooks are on (they count the forward as a send) nor
 * in deterministic mode (its traces stay as they were). The answer for the
 * last `to` is kept: pids are not reused and a bound never changes (a
 * target that dies later gets nothing, as a forward to it would). */
static bool direct_ok(ax_system *sys, ax_actor *a, ax__actor_ext *x, uint64_t to) {
  if (to == a->pid || ax__det_on(sys) || AX__HOOKS_ON(sys) || ax__pid_node(to) != sys->table.node)
    return false;
  if (x->direct_pid == to) return x->direct_yes;
  ax_actor *r = ax__table_acquire(&sys->table, to);
  bool yes = r && !r->limit;
  if (r) ax__table_release(&sys->table, to);
  x->direct_pid = to;
  x->direct_yes = yes;
  return yes;
}

/* Creates and submits a timer owned by a. Unless it is the receive timer
 * (kept in ext->recv_tmr), its id goes into a's map first, so its expiry is
 * accepted. */
static ax_err arm(ax_actor *a, uint64_t id, uint32_t delay, uint32_t period, uint32_t flags,
                  uint64_t to, uint32_t type, const void *data, size_t len, ax__tmr **out) {
  ax_system *sys = a->sys;
  /* Allowed while stopping: supervisors time their children's shutdown
   * then, and the reactor runs until every actor has stopped. */
  if (atomic_load_explicit(&sys->state, memory_order_acquire) == AX__STOPPED) return AX_ECLOSED;
  if (len && !data) return AX_EINVAL;
  size_t size;
  if (!ax__size_add(sizeof(ax__tmr), len, &size)) return AX_ENOMEM; /* as ax_send */
  ax__actor_ext *x = ax__ext(a);
  ax__tmr *t = ax__alloc(size);
  if (!x || !t) {
    ax__free(t, size);
    return AX_ENOMEM;
  }
  memset(t, 0, sizeof(*t));
  if (!(flags & AX__MSGF_TRECV) && !ax__u64map_put(&x->timers, id, (uintptr_t)t)) {
    ax__free(t, size);
    return AX_ENOMEM;
  }
  atomic_init(&t->refs, 2);
  if (!flags && !period && direct_ok(sys, a, x, to)) flags = AX__MSGF_TDIRECT;
  uint64_t now = ticks_ceil(sys);
  t->id = id;
  t->owner = a->pid;
  t->to = to;
  t->type = type;
  t->period = period;
  t->flags = flags;
  t->len = len;
  if (len) memcpy(t->payload, data, len);
  if (out) *out = t;
  insert_new(sys, t, now, now + ((uint64_t)delay << TICK_SHIFT));
  return AX_OK;
}

/* ---- firing ---- */

/* The expiry message of t: `from` carries the target (the owner sets it
 * to itself at delivery), `to` the timer (a direct one's is the message
 * itself, from the owner to its target), which a one-shot's expiry holds the wheel's
 * reference to (see ax__timers_on_fire; an interval stays in the wheel);
 * msg.len is the timer's payload length, so its size. */
static ax__mnode *expiry_node(ax__tmr *t) {
  if (t->flags & AX__MSGF_TDIRECT) /* the message itself, from the owner */
    return ax__msg_new(t->type, AX_MSGF_TIMER | AX__MSGF_TDIRECT, t->owner, t->to, t->id,
                       t->payload, t->len, NULL);
  return ax__msg_new(t->type, AX_MSGF_SYSTEM | AX__MSGF_TFIRE | (t->flags & ~KEEP_MISSED), t->to,
                     (uintptr_t)t, t->id, t->payload, t->len, NULL);
}

/* An expiry that will not be delivered (cancelled meanwhile, a stale
 * receive timeout, a dead owner): drops the timer reference it carries.
 * An owner's reap list carries none, nor does a direct timer's message. */
static void expiry_drop(ax__mnode *n) {
  uint32_t f = n->msg.flags;
  if ((f & AX__MSGF_TFIRE) && !(f & (AX__MSGF_TREPEAT | AX__MSGF_TREAP)))
    tmr_release((ax__tmr *)(uintptr_t)n->to);
}

void ax__timers_on_drained(ax__mnode *n) {
  if (n->msg.flags & AX__MSGF_TFIRE) expiry_drop(n);
}

/* An interval's next tick after it fired at `now` (its deadline). */
static uint64_t next_tick(const ax__tmr *t, uint64_t now) {
  uint64_t period = (uint64_t)t->period << TICK_SHIFT;
  uint64_t next = t->wt.deadline + period;
  if (!(t->flags & KEEP_MISSED) && next <= now) next += ((now - next) / period + 1) * period;
  return next;
}

/* One recipient's expiries in this pass, in firing order (the owner's,
 * or a direct timer's target's), and, for an owner, its direct timers sent
 * in this pass (reaps[reap_first - 1], linked by next, 0 ends): its reap
 * list, which tells it to forget and free them. */
typedef struct ax__tgroup {
  uint64_t owner; /* the recipient; 0: unused cell */
  ax__mnode *first, *last;
  size_t reap_first, reap_last, nreap;
} ax__tgroup;

typedef struct ax__treap {
  uint64_t id, len; /* the timer's id and payload length (its size) */
  size_t next;
} ax__treap;

/* Finds or makes owner's group in the scratch table (open addressing, sized
 * to at least four times the expiries of the pass: each makes at most two
 * groups, its recipient's and its owner's, so it is never more than half
 * full). */
static ax__tgroup *group_of(ax__timers *T, uint64_t owner) {
  size_t i = (size_t)((owner * 0x9E3779B97F4A7C15ull) >> 24) & (T->groups_cap - 1);
  while (T->groups[i].owner && T->groups[i].owner != owner) i = (i + 1) & (T->groups_cap - 1);
  if (!T->groups[i].owner) T->groups_used[T->ngroups_used++] = i;
  T->groups[i].owner = owner;
  return &T->groups[i];
}

/* Makes the table big enough for `expired` expiries. The table is clean
 * (delivery clears the cells it used), so a pass costs its owners, not the
 * table's size: one big catch-up pass must not tax every later one. */
static void groups_free(ax__timers *T) {
  ax__free(T->groups, sizeof(ax__tgroup) * T->groups_cap);
  ax__free(T->groups_used, sizeof(size_t) * (T->groups_cap / 2));
  ax__free(T->reaps, sizeof(ax__treap) * (T->groups_cap / 4));
  T->groups = NULL;
  T->groups_used = NULL;
  T->reaps = NULL;
  T->groups_cap = 0;
}

static bool groups_reserve(ax__timers *T, size_t expired) {
  size_t need = 16;
  while (need < expired * 4) need *= 2;
  T->ngroups_used = 0;
  T->nreaps = 0;
  if (need <= T->groups_cap) return true;
  ax__tgroup *g = ax__calloc(sizeof(ax__tgroup) * need);
  size_t *used = ax__alloc(sizeof(size_t) * (need / 2));
  ax__treap *reaps = ax__alloc(sizeof(ax__treap) * (need / 4));
  if (!g || !used || !reaps) { /* the pass retries every expiry a millisecond later */
    ax__free(g, sizeof(ax__tgroup) * need);
    ax__free(used, sizeof(size_t) * (need / 2));
    ax__free(reaps, sizeof(ax__treap) * (need / 4));
    return false;
  }
  groups_free(T);
  T->groups = g;
  T->groups_used = used;
  T->reaps = reaps;
  T->groups_cap = need;
  return true;
}

/* Adds a fired direct timer's id to its owner's reap list. */
static void reap_add(ax__timers *T, uint64_t owner, uint64_t id, uint64_t len) {
  ax__tgroup *g = group_of(T, owner);
  size_t i = T->nreaps++;
  T->reaps[i] = (ax__treap){id, len, 0};
  if (g->reap_last)
    T->reaps[g->reap_last - 1].next = i + 1;
  else
    g->reap_first = i + 1;
  g->reap_last = i + 1;
  g->nreap++;
}

/* Direct timers sent by passes and not yet on a reap list. A reap list
 * per owner per pass was a message per owner every pass: with quarter-ms
 * ticks, `axon_bench timers` (1M) sent 490k of them (192k with 1 ms ticks),
 * more than its actors' runs, each an allocation, a push and a cold pop
 * on the owner's side. They only let owners free timers that are theirs
 * alone already, so they wait: every REAP_TICKS (or PEND_MAX entries),
 * each owner gets one list of everything sent meanwhile. Pass scratch:
 * the holder of `firing` only, except the hints (relaxed: the tick's; a
 * stale one costs a pass for nothing or a flush one tick later). */
typedef struct ax__tpend {
  struct ax__tpent {
    uint64_t owner, id, len;
  } *v;
  size_t n, cap;
  _Atomic uint64_t flush_at; /* ticks: the first pass at or after it sends them */
  _Atomic bool waiting;      /* n > 0 */
} ax__tpend;

#define REAP_TICKS (4 * MS_TICKS)
#define PEND_MAX 65536u

/* Keeps a sent direct timer for its owner's next reap list; false when
 * PEND_MAX are waiting (the array stays small) or without memory: then it
 * goes on this pass's list, and the pass sends the waiting ones too. */
static bool pend_add(ax__timers *T, uint64_t owner, uint64_t id, uint64_t len, uint64_t now) {
  ax__tpend *p = T->pend;
  if (!p || p->n >= PEND_MAX) return false;
  if (p->n == p->cap) {
    size_t ncap = p->cap ? p->cap * 2 : 1024;
    void *v = ax__realloc(p->v, sizeof(*p->v) * p->cap, sizeof(*p->v) * ncap);
    if (!v) return false;
    p->v = v;
    p->cap = ncap;
  }
  if (!p->n) {
    atomic_store_explicit(&p->flush_at, now + REAP_TICKS, memory_order_relaxed);
    atomic_store_explicit(&p->waiting, true, memory_order_relaxed);
  }
  p->v[p->n++] = (struct ax__tpent){owner, id, len};
  return true;
}

static size_t pend_count(const ax__timers *T) { return T->pend ? T->pend->n : 0; }

/* Whether the pending lists go out in a pass at `now`. */
static bool pend_due(const ax__timers *T, uint64_t now) {
  const ax__tpend *p = T->pend;
  return p && p->n && (p->n >= PEND_MAX || now >= atomic_load_explicit(&p->flush_at, memory_order_relaxed));
}

/* Moves every pending entry onto this pass's reap lists (the group table
 * was reserved for them). */
static void pend_flush(ax__timers *T) {
  ax__tpend *p = T->pend;
  for (size_t i = 0; i < p->n; i++) reap_add(T, p->v[i].owner, p->v[i].id, p->v[i].len);
  p->n = 0;
  atomic_store_explicit(&p->waiting, false, memory_order_relaxed);
}

static void pend_free(ax__timers *T) {
  if (!T->pend) return;
  ax__free(T->pend->v, sizeof(*T->pend->v) * T->pend->cap);
  ax__free(T->pend, sizeof(*T->pend));
  T->pend = NULL;
}

/* The owner's reap list as a message, pairs (id, payload length),
 * appended to its group's chain (no memory: the owner keeps those timers
 * in its map until it cancels them, which frees them and fails, or
 * stops). */
static void reap_node(ax__timers *T, ax__tgroup *g) {
  ax__mnode *n = ax__msg_alloc(g->nreap * 2 * sizeof(uint64_t));
  if (!n) return;
  n->msg.type = AX__TIMER_REAP;
  n->msg.flags = AX_MSGF_SYSTEM | AX__MSGF_TFIRE | AX__MSGF_TREAP;
  n->msg.from.id = g->owner;
  uint64_t *ids = (uint64_t *)n->payload;
  for (size_t i = g->reap_first, k = 0; i; i = T->reaps[i - 1].next) {
    ids[k++] = T->reaps[i - 1].id;
    ids[k++] = T->reaps[i - 1].len;
  }
  if (g->first)
    atomic_store_explicit(&g->last->link.next, &n->link, memory_order_relaxed);
  else
    g->first = n;
  g->last = n;
}

/* Schedules the n actors first..last (linked by run_next) that a pass woke
 * with expiries. */
static void wake_due(ax_system *sys, ax_actor *wake_first, ax_actor *wake_last, size_t nwake, bool local) {
  ax__timers *T = &sys->timers;
  if (!nwake) return;
  /* Each destination ends the list (ax__runq_append). */
  if (local) { /* a worker's pass: its own due list */
    ax__schedule_due(sys, wake_first, wake_last, nwake);
    return;
  }
  /* relaxed: a heuristic (see the tick's grace). */
  if (!ax__det_on(sys) && atomic_load_explicit(&sys->num_unparked, memory_order_relaxed) > 0) {
    pthread_mutex_lock(&T->handoff_lock);
    ax__runq_append(&T->handoff_head, &T->handoff_tail, wake_first, wake_last);
    atomic_store_explicit(&T->handoff_n, atomic_load_explicit(&T->handoff_n, memory_order_relaxed) + nwake,
                          memory_order_relaxed);
    pthread_mutex_unlock(&T->handoff_lock);
    return;
  }
  ax__schedule_many(sys, wake_first, wake_last, nwake);
}

/* Pushes each recipient's chain with one exchange (an owner's reap list
 * last in its chain). Recipients that were idle go onto the firing
 * worker's due list, in firing order, which it runs before anything else
 * (ax__schedule_due): they are due, and the actors queued there can wait;
 * at the back of its ring (or on the inject queue, which a busy worker
 * looks at once in 61 runs) they would wait behind whatever keeps that
 * worker busy (a burst of long runs: `axon_bench timers`). Off the workers
 * (the reactor), they go to the handoff list for the awake workers' polls,
 * or, with every worker asleep, onto the inject queue with one push and
 * one wake-up. An owner woken by its reap list alone has nothing due: it
 * goes after them, to the ring's back (below). Returns how many actors
 * with expiries it woke; *npushed gets how many it pushed expiries to.
 * A dead recipient's chain is dropped: an owner's stop
 * cancelled (or will cancel) every timer it had, which keeps intervals
 * from firing again; a dead target's expiries are lost, as a forward to it
 * would be. */
static size_t deliver_groups(ax_system *sys, size_t *npushed) {
  ax__timers *T = &sys->timers;
  ax_actor *wake_first = NULL, *wake_last = NULL, *lazy_first = NULL, *lazy_last = NULL;
  size_t nwake = 0, nlazy = 0, pushed = 0;
  ax__worker *w = ax__ctx_get()->worker;
  bool local = w && w->sys == sys && !ax__det_on(sys);
  /* Backwards, linking each woken actor in front of the last: the list
   * ends up in firing order. */
  for (size_t u = T->ngroups_used; u-- > 0;) {
    ax__tgroup *g = &T->groups[T->groups_used[u]], cell = *g;
    *g = (ax__tgroup){0}; /* clean for the next pass */
    g = &cell;
    bool expiries = g->first != NULL; /* not just a reap list */
    if (g->nreap) reap_node(T, g);
    if (!g->first) continue; /* a reap list without memory */
    ax_actor *a = ax__table_acquire(&sys->table, g->owner);
    if (!a) {
      for (ax__mnode *n = g->first, *next; n; n = next) {
        next = n == g->last ? NULL : (ax__mnode *)atomic_load_explicit(&n->link.next, memory_order_relaxed);
        expiry_drop(n);
        ax__msg_free(n);
      }
      continue;
    }
    pushed += expiries;
    bool wk = ax__lane_push_chain(&a->user_head, &g->first->link, &g->last->link);
    if (wk && !expiries && !ax__det_on(sys)) {
      /* Woken by its reap list alone: nothing is due, so not with the
       * actors this pass made due (below). */
      a->run_next = lazy_first;
      lazy_first = a;
      if (!lazy_last) lazy_last = a;
      nlazy++;
    } else if (wk) {
      a->run_next = wake_first; /* we hold the right to schedule it */
      wake_first = a;
      if (!wake_last) wake_last = a;
      nwake++;
    }
    ax__table_release(&sys->table, g->owner);
  }
  if (npushed) *npushed = pushed;
  /* Owners woken by their reap lists alone, after those: every
   * REAP_TICKS each owner gets one, and after `axon_bench timers`' burst
   * its 100 idle setters went onto the due list with the receivers of the
   * passes that sent them (~7 us a run: 0.7 ms of due runs every 4 ms,
   * ahead of and among the receivers; a worker whose due list was empty
   * took the newer half, the setters). On a worker they go to its ring's
   * back: they run when nothing due is waiting (on the due list behind
   * the pass's own receivers instead, the 1M bench under load had p99 18
   * ms against 7.7 ms this way). Off the workers they end the pass's
   * list, the way it goes: the handoff list behind its receivers, or the
   * inject queue with its one wake-up. The cost: ~15% more context
   * switches in `timers 100000` (probably its idle setters' reap runs on
   * the ring waking the other worker to steal them), task-clock within noise;
   * docs/ARCHITECTURE.md, "Timers". */
  if (local) {
    wake_due(sys, wake_first, wake_last, nwake, true);
    for (ax_actor *a = lazy_first, *next; a; a = next) {
      next = a == lazy_last ? NULL : a->run_next;
      ax__schedule_back(sys, a);
    }
  } else {
    if (nlazy) {
      if (wake_last)
        wake_last->run_next = lazy_first;
      else
        wake_first = lazy_first;
      wake_last = lazy_last;
    }
    wake_due(sys, wake_first, wake_last, nwake + nlazy, false);
  }
  return nwake;
}

/* Takes the whole handoff list (NULL if empty); *n gets its length. */
static ax_actor *handoff_take(ax__timers *T, ax_actor **last, size_t *n) {
  pthread_mutex_lock(&T->handoff_lock);
  ax_actor *first = T->handoff_head;
  *last = T->handoff_tail;
  *n = atomic_load_explicit(&T->handoff_n, memory_order_relaxed);
  T->handoff_head = T->handoff_tail = NULL;
  atomic_store_explicit(&T->handoff_n, 0, memory_order_relaxed);
  pthread_mutex_unlock(&T->handoff_lock);
  return first;
}

/* A worker's poll: the owners the reactor woke go onto this worker's due
 * list, in firing order. */
static bool handoff_run(ax_system *sys) {
  ax_actor *last;
  size_t n;
  ax_actor *first = handoff_take(&sys->timers, &last, &n);
  if (first) ax__schedule_due(sys, first, last, n);
  return n > 0;
}

/* Takes the earliest timer, by (deadline, id), off the shards' expired
 * lists (each already in (deadline, seq) order): a k-way merge, k small. */
static ax__tmr *pop_earliest(ax__timers *T) {
  ax__wlist *best = NULL;
  for (uint32_t i = 0; i < T->nshards; i++) {
    ax__wlist *l = &T->lists[i];
    if (!l->head) continue;
    if (!best || l->head->deadline < best->head->deadline ||
        (l->head->deadline == best->head->deadline && tmr_of(l->head)->id < tmr_of(best->head)->id))
      best = l;
  }
  if (!best) return NULL;
  ax__wtimer *w = best->head;
  best->head = w->next;
  if (!best->head) best->tail = NULL;
  if (w->next) __builtin_prefetch(tmr_of(w->next));
  return tmr_of(w);
}

/* Takes the timers due at `lim` out of every shard whose published
 * deadline has come; returns how many. */
static size_t collect(ax__timers *T, uint64_t lim) {
  size_t k = 0;
  for (uint32_t i = 0; i < T->nshards; i++) {
    ax__tshard *s = &T->shards[i];
    /* relaxed: a deadline published just now is seen by the next pass
     * (its inserter woke the reactor if it had to). */
    if (atomic_load_explicit(&s->next, memory_order_relaxed) > lim) continue;
    shard_lock(s);
    k += ax__wheel_advance(&s->wheel, lim, &T->lists[i]);
    republish(s);
    shard_unlock(s);
  }
  update_earliest(T);
  return k;
}

/* Fires the k collected timers in deadline order, at most `limit` (the
 * rest go back, due, in their order); returns how many fired. */
static size_t fire_collected(ax_system *sys, size_t k, uint64_t now, size_t limit) {
  ax__timers *T = &sys->timers;
  size_t fired = 0;
  bool manual = sys->cfg.clock_ms != NULL;
  /* Each pending reap makes at most one group, its owner's. */
  bool grouped = groups_reserve(T, k + pend_count(T));
  for (ax__tmr *t; (t = pop_earliest(T));) {
    if (fired == limit) {
      put_back(sys, t, t->wt.deadline);
      continue;
    }
    ax__mnode *n = grouped ? expiry_node(t) : NULL;
    if (!n) { /* no memory for the message: try again in a millisecond */
      put_back(sys, t, now + MS_TICKS);
      continue;
    }
    /* A direct one is sent to its target now, unless its owner cancelled
     * it first; then it is the owner's alone (which may free it at once:
     * read before the claim), and on its reap list. */
    bool direct = (t->flags & AX__MSGF_TDIRECT) != 0;
    uint64_t to = direct ? t->to : t->owner;
    if (direct) {
      uint64_t owner = t->owner, id = t->id, len = t->len;
      if (!direct_claim(t, CLAIM_SENT)) {
        ax__msg_free(n);
        tmr_release(t); /* the wheel's */
        continue;
      }
      /* A manual clock may not move again: its reap lists go now. */
      if (manual || !pend_add(T, owner, id, len, now)) reap_add(T, owner, id, len);
    }
    ax__tgroup *g = group_of(T, to);
    if (!g->first)
      g->first = n;
    else
      atomic_store_explicit(&g->last->link.next, &n->link, memory_order_relaxed);
    g->last = n;
    fired++;
    atomic_fetch_add_explicit(&sys->timers_fired, 1, memory_order_relaxed);
    /* A one-shot's wheel reference goes on with its expiry, which is
     * pushed after this loop: nothing here touches t after that. */
    if (!direct && t->period) put_back(sys, t, next_tick(t, now));
  }
  if (grouped && (pend_due(T, now) || T->nreaps)) pend_flush(T); /* with this pass's own, if any */
  if (grouped) {
    /* Woke fewer than half of its recipients: the others were running or
     * queued, and read their expiries at their next run, however soon
     * they are pushed; quarter-ms passes would only push them in more,
     * smaller chains (`axon_bench timers_self`: 1.17x the CPU). relaxed:
     * a hint for the polls. */
    size_t pushed = 0, woke = deliver_groups(sys, &pushed);
    bool busy = fired > 0 && woke * 2 < pushed;
    /* Stored only when it changes: it shares earliest's line, which every
     * worker's poll reads after each run. */
    if (atomic_load_explicit(&T->coarse, memory_order_relaxed) != busy)
      atomic_store_explicit(&T->coarse, busy, memory_order_relaxed);
  }
  return fired;
}

/* Timers a pass moves ahead per shard, at least (ax__wheel_prepare: more
 * when the next block is close): 64k timers due in the next 64 ms block
 * (1000 per ms) take ~1.5 ms to cascade, ~50 us a pass in parts of 2k. */
#define PREPARE_BUDGET 1024

/* After a pass has delivered: cascades the next block's timers into each
 * shard's ring, a part at a time, while they are not due yet. An advance
 * that reached them cascaded a whole upper slot at once while they were
 * due (64k timers: 1.5 ms every 64 ms with 1000 timers per ms, 8 ms at the
 * 4096 ms boundaries, with the shard locked): in `axon_bench timers`, the
 * timers due then were that late. */
static void prepare_shards(ax__timers *T) {
  bool again = false;
  for (uint32_t i = 0; i < T->nshards; i++) {
    ax__tshard *s = &T->shards[i];
    /* relaxed: a statistic; a shard filled just now is prepared next pass */
    if (!atomic_load_explicit(&s->pending, memory_order_relaxed)) continue;
    /* Busy (its owner inserting): the next pass prepares it; never wait
     * here, the advance that needs it moves whatever is left. */
    if (pthread_mutex_trylock(&s->lock) != 0) continue;
    bool moved = ax__wheel_prepare(&s->wheel, PREPARE_BUDGET) > 0;
    if (moved) republish(s);
    shard_unlock(s);
    if (moved) again = true;
  }
  if (again) update_earliest(T); /* published bounds only rose: a stale one wakes early */
}

/* One fire pass: fires every timer due at `now`, in deadline order, at
 * most `limit` (deterministic mode fires one per step). A pass that is
 * behind catches up a step at a time, to the lowest published deadline
 * (a millisecond's worth): each step's timers are still in cache when
 * their expiries are made, where one step of the whole backlog would walk
 * them all twice from memory. Returns how many fired; 0 as well if another
 * thread is running a pass (it fires what is due) or the service has
 * stopped. */
static size_t fire_pass(ax_system *sys, uint64_t now, size_t limit) {
  ax__timers *T = &sys->timers;
  /* acquire: we see the previous firer's scratch writes (its release). */
  if (atomic_exchange_explicit(&T->firing, true, memory_order_acquire)) return 0;
  atomic_store_explicit(&T->kick, false, memory_order_relaxed); /* a hint: see ax__timers */
  size_t fired = 0;
  /* acquire: as ax__timers_poll (a worker may get here first). */
  bool started = atomic_load_explicit(&T->started, memory_order_acquire); /* stop holds `firing` */
  for (uint64_t prev = 0, lim; started && fired < limit && prev < now; prev = lim) {
    lim = shards_next(T, memory_order_relaxed);
    if (lim > now) break;
    if (lim <= prev) lim = now; /* no progress by steps (a lower bound): the rest at once */
    size_t k = collect(T, lim);
    if (k) fired += fire_collected(sys, k, now, limit - fired);
  }
  /* Reap lists whose time has come, in a pass that fired nothing. */
  if (started && pend_due(T, now) && groups_reserve(T, pend_count(T))) {
    pend_flush(T);
    deliver_groups(sys, NULL);
  }
  if (started && !ax__det_on(sys)) prepare_shards(T); /* det mode: its traces stay as they were */
  /* release: the next firer sees our scratch writes. */
  atomic_store_explicit(&T->firing, false, memory_order_release);
  return fired;
}

size_t ax__timers_pending(ax_system *sys) {
  ax__timers *T = &sys->timers;
  size_t n = 0;
  /* acquire: as ax__timers_poll (shards); stopped: they hold nothing. */
  if (!atomic_load_explicit(&T->started, memory_order_acquire)) return 0;
  for (uint32_t i = 0; i < T->nshards; i++)
    n += atomic_load_explicit(&T->shards[i].pending, memory_order_relaxed);
  return n;
}

/* The clock this worker thread last read in a poll (ticks, rounded down). */
static _Thread_local uint64_t poll_seen;

bool ax__timers_poll_slow(ax_system *sys, bool clock) {
  ax__timers *T = &sys->timers;
  /* relaxed: hints; a deadline missed here is seen at a later poll, and
   * the reactor's tick is the backstop. (Before the service starts
   * earliest reads 0 and fire_pass finds it not started.) */
  bool woke = atomic_load_explicit(&T->handoff_n, memory_order_relaxed) && handoff_run(sys);
  /* Receivers another worker's pass woke and it has not run yet: half of
   * them here, while ours is empty (one worker ran every receiver of
   * `axon_bench timers` while the other only set: its due list queued a
   * round of 0.3-1 ms runs, every receiver's backlog). */
  woke |= sys->nworkers > 1 && ax__sched_due_share(sys);
  uint64_t e = atomic_load_explicit(&T->earliest, memory_order_relaxed);
  if (e == UINT64_MAX) return woke;
  /* The clock costs ~20 ns: read it when told to, when the earliest
   * deadline is within a millisecond of the last reading, or when the
   * reactor saw a deadline come. */
  if (!clock && e > poll_seen + MS_TICKS && !atomic_load_explicit(&T->kick, memory_order_relaxed))
    return woke;
  uint64_t now = poll_seen = ticks_floor(sys);
  bool kick = atomic_load_explicit(&T->kick, memory_order_relaxed);
  if (e > now) { /* a stale kick (a pass ran meanwhile): clocks read for nothing */
    if (kick) atomic_store_explicit(&T->kick, false, memory_order_relaxed);
    return woke;
  }
  /* While passes find their recipients busy (coarse), the polls between runs fire on
   * half ms (COARSE_TICKS; whole ms, as 1 ms ticks did, until measured:
   * docs/ARCHITECTURE.md, "Timers"). Not a poll before searching or parking
   * (`clock`; also every 16th run's): a worker about to park must not
   * leave a due tick to the reactor's next wake-up; nor once the
   * reactor's tick has left a deadline to the awake workers (kick). */
  if (!clock && !kick && atomic_load_explicit(&T->coarse, memory_order_relaxed)) {
    now &= ~((uint64_t)COARSE_TICKS - 1);
    if (e > now) return woke;
  }
  return fire_pass(sys, now, SIZE_MAX) > 0 || woke;
}

/* The reactor's tick: fires what is due, then tells the reactor how long
 * it may wait (until the earliest deadline of all shards). While a worker
 * is awake, a deadline just reached is left to it for a millisecond (the
 * kick makes its next poll read the clock): the owners it wakes go onto
 * its own queue, where a pass of the reactor would put them on the inject
 * queue, read once in 61 runs by a busy worker. */
static int timers_tick(void *arg) {
  ax_system *sys = arg;
  ax__timers *T = &sys->timers;
  /* Owners handed off at an earlier pass and still not taken, while a
   * worker sleeps: the inject queue, which wakes it. While every worker
   * is awake they stay: each worker's poll takes them after its current
   * run and puts them on its due list, run first, where the inject queue
   * would leave them behind its queue (a busy worker reads inject once in
   * 61 runs). relaxed: a heuristic; a worker that parks just after this
   * reading leaves them here one more tick. */
  if (atomic_load_explicit(&T->handoff_n, memory_order_relaxed) &&
      atomic_load_explicit(&sys->num_unparked, memory_order_relaxed) < sys->nworkers) {
    ax_actor *last;
    size_t n;
    ax_actor *first = handoff_take(T, &last, &n);
    if (first) ax__schedule_many(sys, first, last, n);
  }
  uint64_t now = ticks_floor(sys);
  uint64_t due = shards_next(T, memory_order_relaxed);
  bool manual = sys->cfg.clock_ms != NULL;
  /* Due, but left to an awake worker for a while (the grace: relaxed, a
   * heuristic; a stale count only moves the pass to us or delays it by
   * the grace), and for good while every worker is awake: each fires at
   * its next poll (the kick makes it read the clock), and what a pass of
   * ours would push waits for a worker anyway. Ours was a third thread
   * wanting a core while both workers were busy (`axon_bench timers`:
   * passes of 5-20 ms on the reactor, preempted holding `firing`, and
   * workers preempted for a 4 ms slice in the middle of theirs;
   * docs/ARCHITECTURE.md, "Timers"). */
  uint32_t awake = manual ? 0 : atomic_load_explicit(&sys->num_unparked, memory_order_relaxed);
  bool grace = due <= now && awake > 0 && (now - due < GRACE || awake >= sys->nworkers);
  /* Reap lists waiting (relaxed: hints, see ax__tpend): a pass sends them
   * when their time has come, if no pass for a timer does first (a
   * worker's, in the grace: it sends them with its timers). */
  bool reaps = T->pend && atomic_load_explicit(&T->pend->waiting, memory_order_relaxed);
  uint64_t reap_at = reaps ? atomic_load_explicit(&T->pend->flush_at, memory_order_relaxed) : UINT64_MAX;
  if (!grace && (due <= now || reap_at <= now)) fire_pass(sys, now, SIZE_MAX);
  if (grace) atomic_store_explicit(&T->kick, true, memory_order_relaxed); /* a hint */
  /* Woken for a deadline: the next wake-up for one is a millisecond from
   * now at the earliest (relaxed: see quiet_until). Ticks are finer than
   * a millisecond, so an awake worker's poll fires each as it comes, but
   * a sleeping system woken at each of them paid a wake-up, a pass and a
   * search spin per tick: `axon_bench timers 100000` took twice the CPU
   * with quarter-ms ticks. At most one wake-up a millisecond is what 1 ms
   * ticks cost; a lone timer still fires at its own tick. */
  if (due <= now && !manual) atomic_store_explicit(&T->quiet_until, now + MS_TICKS, memory_order_relaxed);
  uint64_t quiet = atomic_load_explicit(&T->quiet_until, memory_order_relaxed);
  uint64_t next = shards_next(T, memory_order_seq_cst);
  bool deferred = next <= now && grace;
  uint64_t seen = next; /* what the second reading below compares with */
  if (deferred) {
    /* the grace's end, or (every worker awake) a grace from now */
    next = due + GRACE > now ? due + GRACE : now + GRACE;
  } else {
    if (reap_at > now && reap_at < next) next = reap_at;
    if (next > now && next < quiet) next = quiet;
  }
  /* seq_cst: see lower_next. A deadline published after our first
   * reading shows in the second; otherwise its inserter sees reactor_at.
   * (Deferred, we come back for whatever is due by then anyway.) */
  atomic_store_explicit(&T->reactor_at, next, memory_order_seq_cst);
  if (!deferred && shards_next(T, memory_order_seq_cst) < seen) return 0;
  now = ticks_floor(sys);
  bool handed = atomic_load_explicit(&T->handoff_n, memory_order_relaxed) != 0;
  if (handed && next > now + MS_TICKS) next = now + MS_TICKS; /* check on the handoff */
  /* Due already (a pass on a worker holds them, or a lower bound): come
   * back in a millisecond rather than spin on the busy firer. */
  if (next <= now) return atomic_load_explicit(&T->firing, memory_order_relaxed) ? 1 : 0;
  /* A manual clock only moves when told (ax_system_clock_moved). */
  if (next == UINT64_MAX || sys->cfg.clock_ms) return handed ? 1 : -1;
  /* The poller wakes at `next` itself (to the ns where it can: the
   * returned timeout counts whole ms from now, up to a ms late). */
  ax__reactor_wait_until(sys->reactor, next * TICK_NS);
  uint64_t ms = (next - now + MS_TICKS - 1) >> TICK_SHIFT;
  return handed ? 1 : ms > INT_MAX ? INT_MAX : (int)ms;
}

ax_err ax__timers_start(ax_system *sys) {
  ax__timers *T = &sys->timers;
  uint32_t n = sys->nalloc + 1; /* deterministic mode: worker 0 and central */
  T->shards = ax__alloc_aligned(sizeof(ax__tshard) * n, AX_CACHELINE);
  T->lists = ax__calloc(sizeof(ax__wlist) * n);
  if (!T->shards || !T->lists) {
    ax__free_aligned(T->shards, sizeof(ax__tshard) * n, AX_CACHELINE);
    ax__free(T->lists, sizeof(ax__wlist) * n);
    T->shards = NULL;
    T->lists = NULL;
    return AX_ENOMEM;
  }
  T->nshards = n;
  T->pend = ax__calloc(sizeof(ax__tpend)); /* NULL: a reap list per pass, as before */
  uint64_t now = ticks_floor(sys);
  for (uint32_t i = 0; i < n; i++) {
    ax__tshard *s = &T->shards[i];
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->lock, NULL);
    ax__wheel_init_fine(&s->wheel, now, TICK_SHIFT); /* upper levels in ms, as before */
    s->low = UINT64_MAX;
    atomic_init(&s->next, UINT64_MAX);
    atomic_init(&s->pending, 0);
  }
  /* Workers already poll (firing, kick and handoff_n are still zero from
   * the system's allocation): atomic stores, not atomic_init. relaxed:
   * published by the release of started below; a poll that reads the
   * zero earliest before that finds the service not started. */
  atomic_store_explicit(&T->earliest, UINT64_MAX, memory_order_relaxed);
  pthread_mutex_init(&T->handoff_lock, NULL);
  T->handoff_head = T->handoff_tail = NULL;
  /* Deterministic mode: the driver runs the service (ax__timers_det_*),
   * nothing wakes the reactor. */
  atomic_init(&T->reactor_at, ax__det_on(sys) ? 0 : UINT64_MAX);
  /* release: pairs with the acquire loads of fire_pass and ax__timers_pending. */
  atomic_store_explicit(&T->started, true, memory_order_release);
  if (ax__det_on(sys)) return AX_OK;
  return ax__reactor_add_tick(sys->reactor, timers_tick, sys);
}

uint64_t ax__timers_det_commands(ax_system *sys) {
  ax__timers *T = &sys->timers;
  uint64_t n = 0;
  for (uint32_t i = 0; i < T->nshards; i++) n += T->shards[i].ops; /* one thread in det mode */
  return n;
}

/* The published bound, which fire_pass goes by (the wheel's own bound may
 * be lower: a pass at the published time cascades down to the timer). */
uint64_t ax__timers_det_next(ax_system *sys) {
  uint64_t v = shards_next(&sys->timers, memory_order_relaxed);
  return v == UINT64_MAX ? v : v >> TICK_SHIFT; /* still a lower bound, in ms */
}

size_t ax__timers_det_fire(ax_system *sys, uint64_t now) { return fire_pass(sys, now << TICK_SHIFT, 1); }

void ax__timers_stop(ax_system *sys) {
  ax__timers *T = &sys->timers;
  if (!T->shards || !atomic_load_explicit(&T->started, memory_order_relaxed)) return;
  AX_ASSERT(ax__reactor_stopped(sys->reactor));
  /* Wait out a worker's pass, and keep further ones out. acquire: as
   * fire_pass. */
  while (atomic_exchange_explicit(&T->firing, true, memory_order_acquire)) sched_yield();
  atomic_store_explicit(&T->started, false, memory_order_relaxed);
  /* Every actor has stopped, so every timer it held was cancelled: release
   * whatever the wheels still hold (timers whose owner never let go). */
  for (uint32_t i = 0; i < T->nshards; i++) {
    ax__tshard *s = &T->shards[i];
    shard_lock(s);
    while (ax__wheel_count(&s->wheel)) {
      ax__wlist out = {NULL, NULL};
      ax__wheel_advance(&s->wheel, UINT64_MAX >> 1, &out);
      for (ax__wtimer *w = out.head, *wn; w; w = wn) {
        wn = w->next;
        tmr_release(tmr_of(w));
      }
    }
    republish(s);
    shard_unlock(s);
  }
  atomic_store_explicit(&T->earliest, UINT64_MAX, memory_order_relaxed);
  groups_free(T);
  if (T->pend) { /* ids only: every owner has stopped */
    T->pend->n = 0;
    atomic_store_explicit(&T->pend->waiting, false, memory_order_relaxed);
  }
  atomic_store_explicit(&T->firing, false, memory_order_release);
}

void ax__timers_free(ax_system *sys) {
  ax__timers *T = &sys->timers;
  if (!T->shards) return;
  ax__timers_stop(sys);
  for (uint32_t i = 0; i < T->nshards; i++) {
    ax__wheel_fini(&T->shards[i].wheel);
    pthread_mutex_destroy(&T->shards[i].lock);
  }
  pthread_mutex_destroy(&T->handoff_lock);
  ax__free_aligned(T->shards, sizeof(ax__tshard) * T->nshards, AX_CACHELINE);
  ax__free(T->lists, sizeof(ax__wlist) * T->nshards);
  pend_free(T);
  T->shards = NULL;
  T->lists = NULL;
  T->nshards = 0;
}

/* ---- the owner side ---- */

static void arm_recv(ax_actor *a, ax__actor_ext *x, uint32_t delay) {
  x->recv_id = ax__new_ref(a->sys);
  x->recv_armed_at = ax__clock_ms(a->sys);
  if (arm(a, x->recv_id, delay, 0, AX__MSGF_TRECV, a->pid, AX_MSG_TIMEOUT, NULL, 0, &x->recv_tmr) !=
      AX_OK) {
    x->recv_id = 0; /* re-armed by the next ax_set_receive_timeout */
    x->recv_tmr = NULL;
  }
}

static void disarm_recv(ax_actor *a, ax__actor_ext *x) {
  if (x->recv_tmr) cancel_tmr(a->sys, x->recv_tmr);
  x->recv_tmr = NULL;
  x->recv_id = 0;
}

/* The receive timer fired: deliver a timeout, or re-arm from the last
 * activity if something arrived meanwhile. */
static bool recv_fired(ax_actor *a, ax__actor_ext *x, ax__mnode *n) {
  if (n->msg.ref != x->recv_id || !x->recv_ms) { /* stale */
    expiry_drop(n);
    return false;
  }
  /* A fired one-shot: the owner's reference and the expiry's. */
  tmr_free_len(x->recv_tmr, n->msg.len);
  x->recv_tmr = NULL;
  if (x->last_activity > x->recv_armed_at) {
    uint64_t due = x->last_activity + x->recv_ms, now = ax__clock_ms(a->sys);
    arm_recv(a, x, due > now ? (uint32_t)(due - now) : 0);
    return false;
  }
  arm_recv(a, x, x->recv_ms);
  n->msg.ref = 0;
  n->msg.flags = AX_MSGF_SYSTEM;
  n->msg.from.id = a->pid;
  return true;
}

/* The owner's reap list: its direct timers sent in a pass; forgets and
 * frees those still in its map (a cancel freed the others), without a
 * look at them: they are its alone, last written on the firing thread. */
static void reap(ax__actor_ext *x, const ax__mnode *n) {
  const uint64_t *ids = (const uint64_t *)n->msg.data;
  uint64_t tv;
  for (size_t i = 0; x && i + 1 < n->msg.len / sizeof(uint64_t); i += 2)
    if (ax__u64map_del(&x->timers, ids[i], &tv)) tmr_free_len((ax__tmr *)(uintptr_t)tv, (size_t)ids[i + 1]);
}

bool ax__timers_on_fire(ax_actor *a, ax__mnode *n) {
  ax__actor_ext *x = a->ext;
  uint32_t f = n->msg.flags;
  uint64_t id = n->msg.ref, to = n->msg.from.id, tv;
  if (f & AX__MSGF_TREAP) {
    reap(x, n);
    return false;
  }
  if (!x) { /* cannot happen: arm() made it */
    expiry_drop(n);
    return false;
  }
  if (f & AX__MSGF_TRECV) return recv_fired(a, x, n);
  bool repeat = (f & AX__MSGF_TREPEAT) != 0;
  if (!(repeat ? ax__u64map_get(&x->timers, id, &tv) : ax__u64map_del(&x->timers, id, &tv))) {
    expiry_drop(n); /* cancelled, or the reply won the race */
    return false;
  }
  /* A one-shot: both references are ours now (the map's and the one its
   * expiry carried), so free it without a look at it. */
  if (!repeat) tmr_free_len((ax__tmr *)(uintptr_t)tv, n->msg.len);
  n->msg.from.id = a->pid;
  if (f & AX__MSGF_TREQ) {
    n->msg.flags = AX_MSGF_SYSTEM;
    n->msg.ref = id | 1; /* the request's ref */
    return true;
  }
  n->msg.flags = AX_MSGF_TIMER;
  if (to == a->pid) return true;
  /* Another target: forward now that the owner has said yes. */
  ax__send(a->sys, ax__ctx_get(), a->pid, (ax_pid){to}, n->msg.type,
           AX_MSGF_TIMER | AX__MSGF_TDIRECT, id, n->msg.data, n->msg.len, NULL);
  return false;
}

/* Takes id out of the owner's map and cancels its timer; false if absent. */
static bool cancel_id(ax_actor *a, uint64_t id) {
  uint64_t tv;
  if (!a->ext || !ax__u64map_del(&a->ext->timers, id, &tv)) return false;
  return cancel_tmr(a->sys, (ax__tmr *)(uintptr_t)tv);
}

bool ax__timers_on_reply(ax_actor *a, ax__mnode *n) {
  if (cancel_id(a, n->msg.ref & ~(uint64_t)1)) return true;
  atomic_fetch_add_explicit(&a->sys->late_replies, 1, memory_order_relaxed);
  return false;
}

void ax__timers_activity(ax_actor *a) { a->ext->last_activity = ax__clock_ms(a->sys); }

void ax__timers_forget(ax_actor *a, ax_ref ref) { cancel_id(a, ref & ~(uint64_t)1); }

void ax__timers_on_stop(ax_actor *a) {
  ax__actor_ext *x = a->ext;
  if (!x) return;
  ax__u64map *m = &x->timers;
  for (uint32_t i = 0; i < m->cap; i++)
    if (ax__u64map_live(m, i)) cancel_tmr(a->sys, (ax__tmr *)(uintptr_t)ax__u64map_val(m, i));
  ax__u64map_free(m);
  disarm_recv(a, x);
  x->recv_ms = 0;
}

/* ---- public API ---- */

ax_err ax__send_after(ax_actor *self, uint32_t delay_ms, ax_pid to, uint32_t type,
                      const void *data, size_t len, ax_timer *out) {
  uint64_t id = ax__new_ref(self->sys);
  ax_err e = arm(self, id, delay_ms, 0, 0, to.id, type, data, len, NULL);
  if (e == AX_OK && out) out->id = id;
  return e;
}

ax_err ax_send_after(ax_actor *self, uint32_t delay_ms, ax_pid to, uint32_t type, const void *data,
                     size_t len, ax_timer *out) {
  if (!self || ax_msg_type_reserved(type) || (len && !data)) return AX_EINVAL;
  return ax__send_after(self, delay_ms, to, type, data, len, out);
}

ax_err ax_send_interval(ax_actor *self, uint32_t period_ms, uint32_t flags, ax_pid to,
                        uint32_t type, const void *data, size_t len, ax_timer *out) {
  if (!self || ax_msg_type_reserved(type)) return AX_EINVAL;
  return ax__send_interval(self, period_ms, flags, to, type, data, len, out);
}

ax_err ax__send_interval(ax_actor *self, uint32_t period_ms, uint32_t flags, ax_pid to,
                         uint32_t type, const void *data, size_t len, ax_timer *out) {
  if (!self || (len && !data) || !period_ms || (flags & ~(uint32_t)AX_TIMER_KEEP_MISSED)) return AX_EINVAL;
  uint64_t id = ax__new_ref(self->sys);
  uint32_t f = AX__MSGF_TREPEAT | ((flags & AX_TIMER_KEEP_MISSED) ? KEEP_MISSED : 0);
  ax_err e = arm(self, id, period_ms, period_ms, f, to.id, type, data, len, NULL);
  if (e == AX_OK && out) out->id = id;
  return e;
}

ax_err ax_timer_cancel(ax_actor *self, ax_timer t) {
  if (!self) return AX_EINVAL;
  return !(t.id & 1) && cancel_id(self, t.id) ? AX_OK : AX_ENOTFOUND;
}

ax_err ax_set_receive_timeout(ax_actor *self, uint32_t ms) {
  if (!self) return AX_EINVAL;
  ax__actor_ext *x = ax__ext(self);
  if (!x) return AX_ENOMEM;
  disarm_recv(self, x);
  x->recv_ms = ms == AX_INFINITY ? 0 : (ms ? ms : 1);
  if (x->recv_ms) arm_recv(self, x, x->recv_ms);
  return AX_OK;
}

ax_err ax__timers_request(ax_actor *a, ax_ref ref, uint32_t timeout_ms) {
  return arm(a, ref & ~(uint64_t)1, timeout_ms, 0, AX__MSGF_TREQ, a->pid, AX_MSG_TIMEOUT, NULL, 0,
             NULL);
}
