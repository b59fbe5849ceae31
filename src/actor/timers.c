/* Axon: the timer service. Timers belong to actors; the wheel belongs to the
 * reactor thread. An owner sets or cancels a timer by pushing a command on
 * an MPSC queue and waking the system's reactor (a tick registered with it); the reactor advances the wheel and
 * pushes expiries, grouped per owner, onto the owners' user lanes. The owner
 * keeps its live timers in a map (id -> timer), so a cancel is decided on
 * the owner's own thread: an expiry whose id is no longer in the map (the
 * "generation tag") is dropped at delivery, even if it was already queued.
 * A timer is reference-counted by its two holders, the reactor (while it is
 * in the wheel) and the owner (while it is in the map); it carries its own
 * add and cancel commands, so neither needs an allocation or a lookup on
 * the reactor. Request timeouts and receive timeouts are timers too. */
#include <limits.h>
#include <string.h>

#include "actor/actor_int.h"

enum { CMD_ADD = 1, CMD_CANCEL = 2 };
#define KEEP_MISSED (1u << 26) /* arm() flag: an interval keeps missed ticks */
#define COMMAND_BUDGET 4096    /* commands per reactor pass before firing */

/* A command embedded in its timer. */
typedef struct ax__tcmd {
  ax__mlink link;
  uint32_t kind;
} ax__tcmd;

struct ax__tmr {
  ax__tcmd add;    /* pushed once by arm() */
  ax__tcmd cancel; /* pushed at most once, by the owner's cancel */
  ax__wtimer wt;
  /* Reactor-only: the cancel was run before the add (the two commands can
   * travel different queues when the owner moved between workers). */
  bool cancelled_early;
  /* Holders: the reactor (wheel) and the owner (map). acq_rel: the last
   * releaser frees and must see the other's writes. */
  _Atomic uint32_t refs;
  uint32_t type;
  uint32_t period; /* 0: one-shot */
  uint32_t flags;  /* AX__MSGF_T* for the expiry nodes */
  uint32_t keep_missed;
  uint64_t id;
  uint64_t owner;
  uint64_t to;
  uint64_t due; /* absolute ms */
  size_t len;
  char payload[];
};

static void tmr_release(ax__tmr *t) {
  if (atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) == 1)
    ax__free(t, sizeof(*t) + t->len); /* checked by arm() */
}

/* ---- clock and commands ---- */

/* Deadlines are computed from the clock rounded up and expiries judged by
 * the clock rounded down, so a timer set at t for d ms never fires before
 * t + d, however the two readings fall within a millisecond. */
uint64_t ax__clock_ms(ax_system *sys) {
  if (sys->cfg.clock_ms) return sys->cfg.clock_ms(sys->cfg.clock_arg);
  return (ax__now_ns() + 999999u) / 1000000u;
}

uint64_t ax__clock_floor_ms(ax_system *sys) {
  if (sys->cfg.clock_ms) return sys->cfg.clock_ms(sys->cfg.clock_arg);
  return ax__now_ns() / 1000000u;
}

static uint64_t clock_floor_ms(ax_system *sys) { return ax__clock_floor_ms(sys); }

/* A worker's command ring: single producer (the worker), single consumer
 * (the reactor). Entries are timer pointers with the low bit set for a
 * cancel. Indices are free-running; head and tail sit on their own lines. */
#define RING_SIZE 4096u
typedef struct ax__tring {
  _Alignas(AX_CACHELINE) _Atomic uint32_t tail; /* producer: release-stores */
  uint32_t head_seen;                           /* producer's copy of head */
  _Alignas(AX_CACHELINE) _Atomic uint32_t head; /* consumer: release-stores */
  _Alignas(AX_CACHELINE) uintptr_t slots[RING_SIZE];
} ax__tring;

static bool ring_push(ax__tring *r, uintptr_t entry) {
  uint32_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
  if (tail - r->head_seen >= RING_SIZE) {
    /* acquire: the reactor is done with the slots it released */
    r->head_seen = atomic_load_explicit(&r->head, memory_order_acquire);
    if (tail - r->head_seen >= RING_SIZE) return false;
  }
  r->slots[tail & (RING_SIZE - 1)] = entry;
  /* release: the reactor that sees the new tail sees the slot and the timer */
  atomic_store_explicit(&r->tail, tail + 1, memory_order_release);
  return true;
}

static void push_cmd(ax_system *sys, ax__tmr *t, uint32_t kind) {
  ax__timers *T = &sys->timers;
  ax__worker *w = ax__ctx_get()->worker;
  ax__tcmd *cmd = kind == CMD_ADD ? &t->add : &t->cancel;
  cmd->kind = kind;
  if (!(w && w->sys == sys && w->index < T->nrings &&
        ring_push(&T->rings[w->index], (uintptr_t)t | (kind == CMD_CANCEL))))
    ax__lane_push(&T->q_head, &cmd->link); /* not a worker, or its ring is full */
  ax__reactor_wake(sys->reactor);
}

/* The owner lets go of t: its reference travels with the cancel command,
 * which also takes t out of the wheel early. Owner side, once per timer. */
static void cancel_tmr(ax_system *sys, ax__tmr *t) { push_cmd(sys, t, CMD_CANCEL); }

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
  t->id = id;
  t->owner = a->pid;
  t->to = to;
  t->due = ax__clock_ms(sys) + delay;
  t->type = type;
  t->period = period;
  t->flags = flags & ~KEEP_MISSED;
  t->keep_missed = (flags & KEEP_MISSED) != 0;
  t->len = len;
  if (len) memcpy(t->payload, data, len);
  if (out) *out = t;
  push_cmd(sys, t, CMD_ADD);
  return AX_OK;
}

/* ---- the reactor side ---- */

static void run_add(ax__timers *T, ax__tmr *t) {
  T->det_commands++;
  if (t->cancelled_early)
    tmr_release(t); /* the wheel's: it never gets in */
  else
    ax__wheel_insert(&T->wheel, &t->wt, t->due);
}

static void run_cancel(ax__timers *T, ax__tmr *t) {
  T->det_commands++;
  if (t->wt.state == AX__WTIMER_PENDING) {
    ax__wheel_cancel(&T->wheel, &t->wt);
    tmr_release(t); /* the wheel's */
  } else if (t->wt.state == AX__WTIMER_IDLE) {
    t->cancelled_early = true; /* its add is still on its way */
  }
  tmr_release(t); /* the owner's, carried by the command */
}

/* Drains up to budget entries of one ring, prefetching the timers ahead
 * (they were written on another core). */
static size_t run_ring(ax__timers *T, ax__tring *r, size_t budget) {
  uint32_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
  /* acquire: pairs with ring_push's release of tail */
  uint32_t n = atomic_load_explicit(&r->tail, memory_order_acquire) - head;
  if (n > budget) n = (uint32_t)budget;
  for (uint32_t i = 0; i < n; i++) {
    if (i + 8 < n) __builtin_prefetch((void *)(r->slots[(head + i + 8) & (RING_SIZE - 1)] & ~(uintptr_t)1));
    uintptr_t e = r->slots[(head + i) & (RING_SIZE - 1)];
    ax__tmr *t = (ax__tmr *)(e & ~(uintptr_t)1);
    if (e & 1)
      run_cancel(T, t);
    else
      run_add(T, t);
  }
  /* release: the producer may reuse the slots once it sees the new head */
  atomic_store_explicit(&r->head, head + n, memory_order_release);
  return n;
}

/* Runs up to `budget` queued commands; returns true if it stopped early.
 * The budget keeps a flood of new timers from delaying due ones. */
static bool run_commands(ax__timers *T, size_t budget) {
  for (uint32_t i = 0; i < T->nrings; i++) budget -= run_ring(T, &T->rings[i], budget);
  ax__mlink *l = NULL;
  while (budget && (l = ax__lane_pop_detached(&T->q_head, &T->q_tail, &T->q_stub))) {
    budget--;
    ax__tcmd *c = (ax__tcmd *)l;
    if (c->kind == CMD_ADD)
      run_add(T, (ax__tmr *)((char *)c - offsetof(ax__tmr, add)));
    else
      run_cancel(T, (ax__tmr *)((char *)c - offsetof(ax__tmr, cancel)));
  }
  return budget == 0;
}

static ax__tmr *tmr_of_node(const ax__mnode *n) { return (ax__tmr *)(uintptr_t)n->to; }

/* A dead owner's chain: its one-shot timers are already out of the wheel
 * and its cancel commands are on their way; interval timers still pending
 * are taken out now so they stop firing even if those commands never came. */
static void drop_chain_timers(ax__timers *T, ax__mnode *first, ax__mnode *last) {
  for (ax__mnode *n = first;; n = (ax__mnode *)atomic_load_explicit(&n->link.next, memory_order_relaxed)) {
    ax__tmr *t = tmr_of_node(n);
    if (t->period && ax__wheel_pending(&t->wt)) {
      ax__wheel_cancel(&T->wheel, &t->wt);
      tmr_release(t);
    }
    if (n == last) break;
  }
}

static ax__mnode *expiry_node(ax__tmr *t) {
  /* `to` carries the timer: valid for the owner while the id is in its map */
  return ax__msg_new(t->type, AX_MSGF_SYSTEM | AX__MSGF_TFIRE | t->flags, 0, (uintptr_t)t, t->id,
                     t->payload, t->len, NULL);
}

/* Re-arms an interval timer after it fired at `now`. */
static void rearm(ax__timers *T, ax__tmr *t, uint64_t now) {
  uint64_t next = t->due + t->period;
  if (!t->keep_missed && next <= now) next += ((now - next) / t->period + 1) * t->period;
  t->due = next;
  ax__wheel_insert(&T->wheel, &t->wt, next);
}

/* One owner's expiries in this pass, in firing order. */
typedef struct ax__tgroup {
  uint64_t owner; /* 0: unused cell */
  ax__mnode *first, *last;
} ax__tgroup;

/* Finds or makes owner's group in the scratch table (open addressing, sized
 * to at least twice the expiries of the pass, so it never fills). */
static ax__tgroup *group_of(ax__timers *T, uint64_t owner) {
  size_t i = (size_t)((owner * 0x9E3779B97F4A7C15ull) >> 24) & (T->groups_cap - 1);
  while (T->groups[i].owner && T->groups[i].owner != owner) i = (i + 1) & (T->groups_cap - 1);
  T->groups[i].owner = owner;
  return &T->groups[i];
}

static bool groups_reserve(ax__timers *T, size_t expired) {
  size_t need = 16;
  while (need < expired * 2) need *= 2;
  if (need <= T->groups_cap) {
    memset(T->groups, 0, sizeof(ax__tgroup) * T->groups_cap);
    return true;
  }
  ax__tgroup *g = ax__calloc(sizeof(ax__tgroup) * need);
  if (!g) return false; /* the pass retries every expiry a millisecond later */
  ax__free(T->groups, sizeof(ax__tgroup) * T->groups_cap);
  T->groups = g;
  T->groups_cap = need;
  return true;
}

/* Pushes each owner's chain with one exchange; owners that were idle are
 * scheduled together (one inject push, one wake-up) at the end. A chain
 * whose owner died also takes that owner's interval timers out. */
static void deliver_groups(ax_system *sys) {
  ax__timers *T = &sys->timers;
  ax_actor *wake_first = NULL, *wake_last = NULL;
  size_t nwake = 0;
  for (size_t i = 0; i < T->groups_cap; i++) {
    ax__tgroup *g = &T->groups[i];
    if (!g->owner) continue;
    ax_actor *a = ax__table_acquire(&sys->table, g->owner);
    if (!a) {
      drop_chain_timers(T, g->first, g->last);
      for (ax__mnode *n = g->first, *next; n; n = next) {
        next = n == g->last ? NULL : (ax__mnode *)atomic_load_explicit(&n->link.next, memory_order_relaxed);
        ax__msg_free(n);
      }
      continue;
    }
    if (ax__lane_push_chain(&a->user_head, &g->first->link, &g->last->link)) {
      a->run_next = NULL; /* we hold the right to schedule it */
      if (wake_last)
        wake_last->run_next = a;
      else
        wake_first = a;
      wake_last = a;
      nwake++;
    }
    ax__table_release(&sys->table, g->owner);
  }
  ax__schedule_many(sys, wake_first, wake_last, nwake);
}

/* Fires the timers due at now, at most `limit` of them (deterministic mode
 * fires one per step; the rest go back, due, in their order). Returns how
 * many fired. */
static size_t fire_due(ax_system *sys, uint64_t now, size_t limit) {
  ax__timers *T = &sys->timers;
  ax__wlist out = {NULL, NULL};
  size_t k = ax__wheel_advance(&T->wheel, now, &out), fired = 0;
  if (!k) return 0;
  bool grouped = groups_reserve(T, k);
  for (ax__wtimer *w = out.head, *wn; w; w = wn) {
    wn = w->next;
    if (wn) __builtin_prefetch((char *)wn - offsetof(ax__tmr, wt) + offsetof(ax__tmr, id));
    ax__tmr *t = (ax__tmr *)((char *)w - offsetof(ax__tmr, wt));
    if (fired == limit) {
      ax__wheel_insert(&T->wheel, &t->wt, t->due);
      continue;
    }
    ax__mnode *n = grouped ? expiry_node(t) : NULL;
    if (!n) { /* no memory for the message: try again in a millisecond */
      t->due = now + 1;
      ax__wheel_insert(&T->wheel, &t->wt, t->due);
      continue;
    }
    ax__tgroup *g = group_of(T, t->owner);
    if (!g->first)
      g->first = n;
    else
      atomic_store_explicit(&g->last->link.next, &n->link, memory_order_relaxed);
    g->last = n;
    fired++;
    atomic_fetch_add_explicit(&sys->timers_fired, 1, memory_order_relaxed);
    if (t->period)
      rearm(T, t, now);
    else
      tmr_release(t); /* the wheel's; the owner still holds one */
  }
  deliver_groups(sys);
  return fired;
}

static int timers_tick(void *arg) {
  ax_system *sys = arg;
  ax__timers *T = &sys->timers;
  bool more = run_commands(T, COMMAND_BUDGET);
  uint64_t now = clock_floor_ms(sys);
  fire_due(sys, now, SIZE_MAX);
  atomic_store_explicit(&sys->timers_pending, ax__wheel_count(&T->wheel), memory_order_relaxed);
  uint64_t next = ax__wheel_next_deadline(&T->wheel);
  now = clock_floor_ms(sys);
  /* A manual clock only moves when told (ax_system_clock_moved). */
  if (more) return 0;
  if (next == UINT64_MAX || (sys->cfg.clock_ms && next > now)) return -1;
  return next <= now ? 0 : (int)(next - now > INT_MAX ? INT_MAX : next - now);
}

ax_err ax__timers_start(ax_system *sys) {
  ax__timers *T = &sys->timers;
  ax__lane_init(&T->q_head, &T->q_tail, &T->q_stub, false);
  T->nrings = sys->nworkers;
  T->rings = ax__alloc_aligned(sizeof(ax__tring) * T->nrings, AX_CACHELINE);
  if (!T->rings) return AX_ENOMEM;
  for (uint32_t i = 0; i < T->nrings; i++) {
    atomic_init(&T->rings[i].tail, 0);
    atomic_init(&T->rings[i].head, 0);
    T->rings[i].head_seen = 0;
  }
  ax__wheel_init(&T->wheel, clock_floor_ms(sys));
  T->started = true;
  /* Deterministic mode: the driver runs the service (ax__timers_det_*). */
  if (ax__det_on(sys)) return AX_OK;
  return ax__reactor_add_tick(sys->reactor, timers_tick, sys);
}

uint64_t ax__timers_det_commands(ax_system *sys) {
  ax__timers *T = &sys->timers;
  while (run_commands(T, COMMAND_BUDGET)) {
  }
  return T->det_commands;
}

uint64_t ax__timers_det_next(ax_system *sys) { return ax__wheel_next_deadline(&sys->timers.wheel); }

size_t ax__timers_det_fire(ax_system *sys, uint64_t now) {
  ax__timers *T = &sys->timers;
  size_t k = fire_due(sys, now, 1);
  atomic_store_explicit(&sys->timers_pending, ax__wheel_count(&T->wheel), memory_order_relaxed);
  return k;
}

void ax__timers_stop(ax_system *sys) {
  ax__timers *T = &sys->timers;
  if (!T->started) return; /* never started, or already stopped */
  T->started = false;
  AX_ASSERT(ax__reactor_stopped(sys->reactor));
  /* Every actor has stopped, so their cancels are queued: run them, then
   * release whatever the wheel still holds (timers whose owner could not
   * send its cancel). */
  run_commands(T, SIZE_MAX);
  while (ax__wheel_count(&T->wheel)) {
    ax__wlist out = {NULL, NULL};
    ax__wheel_advance(&T->wheel, UINT64_MAX >> 1, &out);
    for (ax__wtimer *w = out.head, *wn; w; w = wn) {
      wn = w->next;
      tmr_release((ax__tmr *)((char *)w - offsetof(ax__tmr, wt)));
    }
  }
  ax__wheel_fini(&T->wheel);
  ax__free(T->groups, sizeof(ax__tgroup) * T->groups_cap);
  T->groups = NULL;
  T->groups_cap = 0;
  ax__free_aligned(T->rings, sizeof(ax__tring) * T->nrings, AX_CACHELINE);
  T->rings = NULL;
  T->nrings = 0;
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
  if (n->msg.ref != x->recv_id || !x->recv_ms) return false; /* stale */
  tmr_release(x->recv_tmr); /* fired one-shot: the owner's reference */
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

bool ax__timers_on_fire(ax_actor *a, ax__mnode *n) {
  ax__actor_ext *x = a->ext;
  uint32_t f = n->msg.flags;
  uint64_t id = n->msg.ref, tv;
  if (!x) return false;
  if (f & AX__MSGF_TRECV) return recv_fired(a, x, n);
  bool repeat = (f & AX__MSGF_TREPEAT) != 0;
  if (!(repeat ? ax__u64map_get(&x->timers, id, &tv) : ax__u64map_del(&x->timers, id, &tv)))
    return false; /* cancelled, or the reply won the race */
  ax__tmr *t = (ax__tmr *)(uintptr_t)tv;
  uint64_t to = t->to;
  if (!repeat) tmr_release(t); /* done with it: the owner's reference */
  n->msg.from.id = a->pid;
  if (f & AX__MSGF_TREQ) {
    n->msg.flags = AX_MSGF_SYSTEM;
    n->msg.ref = id | 1; /* the request's ref */
    return true;
  }
  n->msg.flags = AX_MSGF_TIMER;
  if (to == a->pid) return true;
  /* Another target: forward now that the owner has said yes. */
  ax__send(a->sys, ax__ctx_get(), a->pid, (ax_pid){to}, n->msg.type, AX_MSGF_TIMER, id,
           n->msg.data, n->msg.len, NULL);
  return false;
}

/* Takes id out of the owner's map and cancels its timer; false if absent. */
static bool cancel_id(ax_actor *a, uint64_t id) {
  uint64_t tv;
  if (!a->ext || !ax__u64map_del(&a->ext->timers, id, &tv)) return false;
  cancel_tmr(a->sys, (ax__tmr *)(uintptr_t)tv);
  return true;
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
    if (ax__u64map_live(m, i)) cancel_tmr(a->sys, (ax__tmr *)(uintptr_t)m->vals[i]);
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
