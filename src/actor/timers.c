/* Axon: the timer service. Timers belong to actors; the wheel belongs to the
 * reactor thread. An owner sets or cancels a timer by pushing a command on
 * an MPSC queue and waking the reactor; the reactor advances the wheel and
 * pushes expiries, batched per owner, onto the owner's user lane. The owner
 * keeps the ids of its live timers in a set, so a cancel is decided on the
 * owner's own thread: an expiry whose id is no longer in the set (the
 * "generation tag") is dropped at delivery, even if it was already queued.
 * Request timeouts and receive timeouts are timers of the same kind. */
#include <limits.h>
#include <string.h>

#include "actor/actor.h"

enum { CMD_ADD = 1, CMD_CANCEL = 2 };
#define KEEP_MISSED (1u << 27) /* arm() flag: an interval keeps missed ticks */

/* A command node: either a timer to add (the timer itself) or a list of ids
 * to cancel. */
typedef struct ax__tcmd {
  ax__mlink link;
  uint32_t kind;
  uint32_t n; /* CMD_CANCEL: number of ids */
} ax__tcmd;

typedef struct ax__tcancel {
  ax__tcmd hdr;
  uint64_t ids[];
} ax__tcancel;

struct ax__tmr {
  ax__tcmd hdr; /* first: the timer travels as its own ADD command */
  ax__wtimer wt;
  ax__tmr *hnext;
  uint64_t id;
  uint64_t owner;
  uint64_t to;
  uint64_t due; /* absolute ms */
  uint32_t type;
  uint32_t period; /* 0: one-shot */
  uint32_t flags;  /* AX__MSGF_T* for the expiry nodes */
  uint32_t keep_missed;
  size_t len;
  char payload[];
};

/* ---- clock and commands ---- */

uint64_t ax__clock_ms(ax_system *sys) {
  if (sys->cfg.clock_ms) return sys->cfg.clock_ms(sys->cfg.clock_arg);
  /* Round up: a timer due at ceil(now) + delay never fires early. */
  return (ax__now_ns() + 999999u) / 1000000u;
}

static void push_cmd(ax_system *sys, ax__tcmd *cmd) {
  ax__lane_push(&sys->timers.q_head, &cmd->link);
  ax__reactor_wake(sys->timers.reactor);
}

static void cancel_ids(ax_system *sys, const uint64_t *ids, uint32_t n) {
  ax__tcancel *c = ax__alloc(sizeof(*c) + sizeof(uint64_t) * n);
  /* Without memory the wheel keeps the timers until they fire; their
   * expiries are then dropped by the owner's set (or its death). */
  if (!c) return;
  c->hdr.kind = CMD_CANCEL;
  c->hdr.n = n;
  memcpy(c->ids, ids, sizeof(uint64_t) * n);
  push_cmd(sys, &c->hdr);
}

/* Creates and submits a timer owned by a; the id is registered in a's set
 * first, so its expiry is accepted. */
static ax_err arm(ax_actor *a, uint64_t id, uint32_t delay, uint32_t period, uint32_t flags,
                  uint64_t to, uint32_t type, const void *data, size_t len) {
  ax_system *sys = a->sys;
  if (atomic_load_explicit(&sys->state, memory_order_acquire) != AX__RUNNING) return AX_ECLOSED;
  if (len && !data) return AX_EINVAL;
  ax__actor_ext *x = ax__ext(a);
  ax__tmr *t = ax__alloc(sizeof(*t) + len);
  if (!x || !t) {
    ax__free(t, sizeof(*t) + len);
    return AX_ENOMEM;
  }
  if (!(flags & AX__MSGF_TRECV) && !ax__u64map_put(&x->timers, id, 0)) {
    ax__free(t, sizeof(*t) + len);
    return AX_ENOMEM;
  }
  memset(t, 0, sizeof(*t));
  t->hdr.kind = CMD_ADD;
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
  push_cmd(sys, &t->hdr);
  return AX_OK;
}

/* ---- the reactor side ---- */

static size_t map_bucket(const ax__timers *T, uint64_t id) {
  return (size_t)((id * 0x9E3779B97F4A7C15ull) >> 20) & (T->map_cap - 1);
}

static void map_grow(ax__timers *T) {
  size_t ncap = T->map_cap ? T->map_cap * 2 : 1024;
  ax__tmr **nm = ax__calloc(sizeof(void *) * ncap);
  if (!nm) return; /* chains just get longer */
  ax__tmr **old = T->map;
  size_t ocap = T->map_cap;
  T->map = nm;
  T->map_cap = ncap;
  for (size_t i = 0; i < ocap; i++) {
    for (ax__tmr *t = old[i], *n; t; t = n) {
      n = t->hnext;
      size_t b = map_bucket(T, t->id);
      t->hnext = nm[b];
      nm[b] = t;
    }
  }
  ax__free(old, sizeof(void *) * ocap);
}

static void map_put(ax__timers *T, ax__tmr *t) {
  if (T->map_count >= T->map_cap) map_grow(T);
  size_t b = map_bucket(T, t->id);
  t->hnext = T->map[b];
  T->map[b] = t;
  T->map_count++;
}

static ax__tmr *map_take(ax__timers *T, uint64_t id) {
  if (!T->map_cap) return NULL;
  for (ax__tmr **p = &T->map[map_bucket(T, id)]; *p; p = &(*p)->hnext) {
    if ((*p)->id == id) {
      ax__tmr *t = *p;
      *p = t->hnext;
      T->map_count--;
      return t;
    }
  }
  return NULL;
}

static void tmr_free(ax__tmr *t) { ax__free(t, sizeof(*t) + t->len); }

static void run_commands(ax__timers *T) {
  ax__mlink *l;
  while ((l = ax__lane_pop_detached(&T->q_head, &T->q_tail, &T->q_stub))) {
    ax__tcmd *c = (ax__tcmd *)l;
    if (c->kind == CMD_ADD) {
      ax__tmr *t = (ax__tmr *)c;
      map_put(T, t);
      ax__wheel_insert(&T->wheel, &t->wt, t->due);
    } else {
      ax__tcancel *cc = (ax__tcancel *)c;
      for (uint32_t i = 0; i < cc->hdr.n; i++) {
        ax__tmr *t = map_take(T, cc->ids[i]);
        if (!t) continue;
        ax__wheel_cancel(&T->wheel, &t->wt);
        tmr_free(t);
      }
      ax__free(cc, sizeof(ax__tcancel) + sizeof(uint64_t) * cc->hdr.n);
    }
  }
}

static ax__mnode *expiry_node(const ax__tmr *t) {
  ax__mnode *n = ax__msg_alloc(t->len);
  if (!n) return NULL;
  n->msg.type = t->type;
  n->msg.flags = AX_MSGF_SYSTEM | AX__MSGF_TFIRE | t->flags;
  n->msg.ref = t->id;
  n->to = t->to;
  if (t->len) memcpy(n->payload, t->payload, t->len);
  return n;
}

/* Re-arms an interval timer after it fired at `now`. */
static void rearm(ax__timers *T, ax__tmr *t, uint64_t now) {
  uint64_t next = t->due + t->period;
  if (!t->keep_missed && next <= now) next += ((now - next) / t->period + 1) * t->period;
  t->due = next;
  ax__wheel_insert(&T->wheel, &t->wt, next);
}

/* Fires everything due: expiries are grouped into one chain per run of the
 * same owner (one exchange per batch, not per timer). A chain whose owner
 * died also takes that owner's interval timers out of the wheel. */
static void drop_chain_timers(ax__timers *T, ax__mnode *first, ax__mnode *last) {
  for (ax__mnode *n = first;; n = (ax__mnode *)atomic_load_explicit(&n->link.next, memory_order_relaxed)) {
    ax__tmr *t = map_take(T, n->msg.ref);
    if (t) {
      ax__wheel_cancel(&T->wheel, &t->wt);
      tmr_free(t);
    }
    if (n == last) break;
  }
}

static void flush(ax_system *sys, uint64_t owner, ax__mnode *first, ax__mnode *last) {
  ax_actor *a = ax__table_acquire(&sys->table, owner);
  if (!a) {
    drop_chain_timers(&sys->timers, first, last);
    for (ax__mnode *n = first, *next; n; n = next) {
      next = n == last ? NULL : (ax__mnode *)atomic_load_explicit(&n->link.next, memory_order_relaxed);
      ax__msg_free(n);
    }
    return;
  }
  if (ax__lane_push_chain(&a->user_head, &first->link, &last->link)) ax__schedule(sys, a);
  ax__table_release(&sys->table, owner);
}

static void fire_due(ax_system *sys, uint64_t now) {
  ax__timers *T = &sys->timers;
  ax__wlist out = {NULL, NULL};
  ax__wheel_advance(&T->wheel, now, &out);
  ax__mnode *first = NULL, *last = NULL;
  uint64_t owner = 0;
  for (ax__wtimer *w = out.head, *wn; w; w = wn) {
    wn = w->next;
    ax__tmr *t = (ax__tmr *)((char *)w - offsetof(ax__tmr, wt));
    ax__mnode *n = expiry_node(t);
    if (!n) { /* no memory for the message: try again in a millisecond */
      t->due = now + 1;
      ax__wheel_insert(&T->wheel, &t->wt, t->due);
      continue;
    }
    if (first && t->owner != owner) {
      flush(sys, owner, first, last);
      first = NULL;
    }
    if (!first)
      first = n;
    else
      atomic_store_explicit(&last->link.next, &n->link, memory_order_relaxed);
    last = n;
    owner = t->owner;
    atomic_fetch_add_explicit(&sys->timers_fired, 1, memory_order_relaxed);
    if (t->period) {
      rearm(T, t, now);
    } else {
      map_take(T, t->id);
      tmr_free(t);
    }
  }
  if (first) flush(sys, owner, first, last);
}

static int timers_tick(void *arg) {
  ax_system *sys = arg;
  ax__timers *T = &sys->timers;
  run_commands(T);
  uint64_t now = ax__clock_ms(sys);
  fire_due(sys, now);
  atomic_store_explicit(&sys->timers_pending, T->map_count, memory_order_relaxed);
  uint64_t next = ax__wheel_next_deadline(&T->wheel);
  now = ax__clock_ms(sys);
  /* A manual clock only moves when told (ax_system_clock_moved). */
  if (next == UINT64_MAX || (sys->cfg.clock_ms && next > now)) return -1;
  return next <= now ? 0 : (int)(next - now > INT_MAX ? INT_MAX : next - now);
}

ax_err ax__timers_start(ax_system *sys) {
  ax__timers *T = &sys->timers;
  ax__lane_init(&T->q_head, &T->q_tail, &T->q_stub, false);
  ax__wheel_init(&T->wheel, ax__clock_ms(sys));
  map_grow(T); /* the map always has buckets; later growth is optional */
  if (!T->map) return AX_ENOMEM;
  return ax__reactor_start(timers_tick, sys, &T->reactor);
}

void ax__timers_stop(ax_system *sys) {
  ax__timers *T = &sys->timers;
  if (T->reactor) ax__reactor_stop(T->reactor);
  T->reactor = NULL;
  if (!T->map) return; /* never started, or already stopped */
  run_commands(T); /* adopt what is still queued, then free everything */
  for (size_t i = 0; i < T->map_cap; i++) {
    for (ax__tmr *t = T->map[i], *n; t; t = n) {
      n = t->hnext;
      tmr_free(t);
    }
  }
  ax__free(T->map, sizeof(void *) * T->map_cap);
  T->map = NULL;
  T->map_cap = T->map_count = 0;
}

void ax_system_clock_moved(ax_system *sys) {
  if (sys->timers.reactor) ax__reactor_wake(sys->timers.reactor);
}

/* ---- the owner side ---- */

static void arm_recv(ax_actor *a, ax__actor_ext *x, uint32_t delay) {
  x->recv_id = ax__new_ref(a->sys);
  x->recv_armed_at = ax__clock_ms(a->sys);
  if (arm(a, x->recv_id, delay, 0, AX__MSGF_TRECV, a->pid, AX_MSG_TIMEOUT, NULL, 0) != AX_OK)
    x->recv_id = 0; /* re-armed by the next ax_set_receive_timeout */
}

bool ax__timers_on_fire(ax_actor *a, ax__mnode *n) {
  ax__actor_ext *x = a->ext;
  uint32_t f = n->msg.flags;
  uint64_t id = n->msg.ref;
  if (!x) return false;
  if (f & AX__MSGF_TRECV) {
    if (id != x->recv_id || !x->recv_ms) return false; /* stale */
    if (x->last_activity > x->recv_armed_at) { /* something arrived: later */
      uint64_t due = x->last_activity + x->recv_ms, now = ax__clock_ms(a->sys);
      arm_recv(a, x, due > now ? (uint32_t)(due - now) : 0);
      return false;
    }
    arm_recv(a, x, x->recv_ms);
    n->msg.ref = 0;
  } else if (!(f & AX__MSGF_TREPEAT) ? !ax__u64map_del(&x->timers, id, NULL) : !ax__u64map_get(&x->timers, id, NULL)) {
    return false; /* cancelled, or the reply won the race */
  }
  n->msg.from.id = a->pid;
  if (f & AX__MSGF_TREQ) {
    n->msg.flags = AX_MSGF_SYSTEM;
    n->msg.ref = id | 1; /* the request's ref */
    return true;
  }
  n->msg.flags = (f & AX__MSGF_TRECV) ? AX_MSGF_SYSTEM : AX_MSGF_TIMER;
  if (n->to == a->pid) return true;
  /* Another target: forward now that the owner has said yes. */
  ax__send(a->sys, ax__ctx_get(), a->pid, (ax_pid){n->to}, n->msg.type, AX_MSGF_TIMER, id,
           n->msg.data, n->msg.len, NULL);
  return false;
}

bool ax__timers_on_reply(ax_actor *a, ax__mnode *n) {
  uint64_t timer_id = n->msg.ref & ~(uint64_t)1;
  if (a->ext && ax__u64map_del(&a->ext->timers, timer_id, NULL)) {
    cancel_ids(a->sys, &timer_id, 1);
    return true;
  }
  atomic_fetch_add_explicit(&a->sys->late_replies, 1, memory_order_relaxed);
  return false;
}

void ax__timers_activity(ax_actor *a) { a->ext->last_activity = ax__clock_ms(a->sys); }

void ax__timers_forget(ax_actor *a, ax_ref ref) {
  uint64_t id = ref & ~(uint64_t)1;
  if (a->ext && ax__u64map_del(&a->ext->timers, id, NULL)) cancel_ids(a->sys, &id, 1);
}

void ax__timers_on_stop(ax_actor *a) {
  ax__actor_ext *x = a->ext;
  if (!x) return;
  ax__u64map *m = &x->timers;
  uint32_t n = 0;
  /* Compact the live ids into the key array itself (n <= i always). */
  for (uint32_t i = 0; i < m->cap; i++)
    if (ax__u64map_live(m, i)) m->keys[n++] = m->keys[i];
  if (x->recv_id && n < m->cap) m->keys[n++] = x->recv_id;
  if (n) cancel_ids(a->sys, m->keys, n);
  else if (x->recv_id) cancel_ids(a->sys, &x->recv_id, 1);
  ax__u64map_free(m);
}

/* ---- public API ---- */

ax_err ax_send_after(ax_actor *self, uint32_t delay_ms, ax_pid to, uint32_t type, const void *data,
                     size_t len, ax_timer *out) {
  uint64_t id = ax__new_ref(self->sys);
  ax_err e = arm(self, id, delay_ms, 0, 0, to.id, type, data, len);
  if (e == AX_OK && out) *out = id;
  return e;
}

ax_err ax_send_interval(ax_actor *self, uint32_t period_ms, uint32_t flags, ax_pid to,
                        uint32_t type, const void *data, size_t len, ax_timer *out) {
  if (!period_ms || (flags & ~(uint32_t)AX_TIMER_KEEP_MISSED)) return AX_EINVAL;
  uint64_t id = ax__new_ref(self->sys);
  uint32_t f = AX__MSGF_TREPEAT | ((flags & AX_TIMER_KEEP_MISSED) ? KEEP_MISSED : 0);
  ax_err e = arm(self, id, period_ms, period_ms, f, to.id, type, data, len);
  if (e == AX_OK && out) *out = id;
  return e;
}

ax_err ax_timer_cancel(ax_actor *self, ax_timer t) {
  if (!self->ext || (t & 1) || !ax__u64map_del(&self->ext->timers, t, NULL)) return AX_ENOTFOUND;
  cancel_ids(self->sys, &t, 1);
  return AX_OK;
}

ax_err ax_set_receive_timeout(ax_actor *self, uint32_t ms) {
  ax__actor_ext *x = ax__ext(self);
  if (!x) return AX_ENOMEM;
  if (x->recv_id) cancel_ids(self->sys, &x->recv_id, 1);
  x->recv_id = 0;
  x->recv_ms = ms == AX_INFINITY ? 0 : (ms ? ms : 1);
  if (x->recv_ms) arm_recv(self, x, x->recv_ms);
  return AX_OK;
}

ax_err ax__timers_request(ax_actor *a, ax_ref ref, uint32_t timeout_ms) {
  return arm(a, ref & ~(uint64_t)1, timeout_ms, 0, AX__MSGF_TREQ, a->pid, AX_MSG_TIMEOUT, NULL, 0);
}
