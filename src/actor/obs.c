/* Axon: what the actor layer measures for metrics and traces: the blocks
 * of tracked actors (ax_metrics_track: counters and histograms written by
 * their owner, one counter by their senders), the workers' busy time, and
 * the tracing hooks' events. The cost for untracked actors is one byte
 * tested on the send path (see struct ax_actor.obs). */
#include <string.h>

#include "actor/actor_int.h"

typedef struct ax__hist {
  _Atomic uint64_t b[AX_METRICS_BUCKETS];
  _Atomic uint64_t sum_ns;
} ax__hist;

/* A tracked actor's metrics. enq is the senders'; the rest are written by
 * the owner only (a relaxed load and store, no RMW) and read by anyone
 * (relaxed: counters need no ordering). */
struct ax__obs {
  _Alignas(AX_CACHELINE) _Atomic uint64_t enq; /* senders: user messages pushed (relaxed add) */
  _Alignas(AX_CACHELINE) _Atomic uint64_t popped; /* ... and the owner's pops of them */
  _Atomic uint64_t in, out, peak, dead, restarts;
  _Atomic unsigned what;
  uint64_t pid;
  char name[64];
  ax__hist wait, handle;
};

static inline void owner_add(_Atomic uint64_t *x, uint64_t v) {
  atomic_store_explicit(x, atomic_load_explicit(x, memory_order_relaxed) + v,
                        memory_order_relaxed);
}

/* Bucket i holds (le(i-1), le(i)], le(i) = 1024 ns << 2i (metrics.h). */
static unsigned bucket_of(uint64_t ns) {
  if (ns <= 1024) return 0;
  unsigned i = (unsigned)(64 - __builtin_clzll(ns - 1) - 9) / 2;
  return i < AX_METRICS_BUCKETS - 1 ? i : AX_METRICS_BUCKETS - 1;
}

static void hist_add(ax__hist *h, uint64_t ns) {
  owner_add(&h->b[bucket_of(ns)], 1);
  owner_add(&h->sum_ns, ns);
}

static void hist_read(const ax__hist *h, ax_histogram *out) {
  out->count = 0;
  out->sum_ns = atomic_load_explicit(&h->sum_ns, memory_order_relaxed);
  for (unsigned i = 0; i < AX_METRICS_BUCKETS; i++) {
    out->buckets[i] = atomic_load_explicit(&h->b[i], memory_order_relaxed);
    out->count += out->buckets[i];
  }
}

/* ---- tracking ---- */

/* Makes a tracked (or adds bits). Thread: a's owner (or its spawner
 * before init). */
static ax_err track(ax_actor *a, unsigned what) {
  if (what & AX_METRICS_HISTOGRAMS) what |= AX_METRICS_COUNTS;
  ax__actor_ext *x = ax__ext(a);
  if (!x) return AX_ENOMEM;
  struct ax__obs *o = x->obs;
  if (!o) {
    if (!(o = ax__alloc_aligned(sizeof(*o), AX_CACHELINE))) return AX_ENOMEM;
    memset(o, 0, sizeof(*o));
    o->pid = a->pid;
    if (a->spec->name) {
      strncpy(o->name, a->spec->name, sizeof(o->name) - 1);
    }
    ax_system *sys = a->sys;
    pthread_mutex_lock(&sys->obs_lock);
    bool ok = ax__u64map_put(&sys->obs_pids, a->pid, 0);
    pthread_mutex_unlock(&sys->obs_lock);
    if (!ok) {
      ax__free_aligned(o, sizeof(*o), AX_CACHELINE);
      return AX_ENOMEM;
    }
    x->obs = o;
  }
  what |= atomic_load_explicit(&o->what, memory_order_relaxed);
  atomic_store_explicit(&o->what, what, memory_order_relaxed);
  /* release: a sender that sees the bits (acquire) sees ext and the block. */
  atomic_store_explicit(&a->obs, (uint8_t)what, memory_order_release);
  atomic_store_explicit(&a->sys->hooks_any, 1, memory_order_relaxed);
  return AX_OK;
}

/* A build without the hooks (AX__HOOKS_ON, actor_int.h) cannot track. */
#ifdef AX_NO_HOOKS
#define NO_HOOKS_RETURN() return AX_ENOTSUP
#else
#define NO_HOOKS_RETURN() (void)0
#endif

ax_err ax_metrics_track(ax_actor *self, unsigned what) {
  if (!self || (what & ~(unsigned)(AX_METRICS_COUNTS | AX_METRICS_HISTOGRAMS))) return AX_EINVAL;
  NO_HOOKS_RETURN();
  ax_err e = track(self, what ? what : AX_METRICS_COUNTS);
  ax__ctx *c = ax__ctx_get();
  if (e == AX_OK && c->current == self) { /* count from now on */
    c->obs = self->ext->obs;
    c->hooks = true;
  }
  return e;
}

ax_err ax_metrics_track_all(ax_system *sys, unsigned what) {
  if (!sys || (what & ~(unsigned)(AX_METRICS_COUNTS | AX_METRICS_HISTOGRAMS))) return AX_EINVAL;
  NO_HOOKS_RETURN();
  atomic_store_explicit(&sys->obs_default, what, memory_order_relaxed);
  /* Spawns test obs_default only once hooks_any is set. Relaxed, like
   * every hooks_any store: a spawn on another thread racing this call may
   * see neither store, or only one, and start untracked; spawns ordered
   * after the call (its thread, or synchronized with it) see both. */
  if (what) atomic_store_explicit(&sys->hooks_any, 1, memory_order_relaxed);
  return AX_OK;
}

void ax__obs_on_spawn(ax_actor *a) {
  unsigned what = atomic_load_explicit(&a->sys->obs_default, memory_order_relaxed);
  if (what && track(a, what) != AX_OK)
    ax_log(a->sys, AX_LOG_DEBUG, "metrics: no memory to track <%llx>", (unsigned long long)a->pid);
}

void ax__obs_on_stop(ax_actor *a) {
  pthread_mutex_lock(&a->sys->obs_lock);
  ax__u64map_del(&a->sys->obs_pids, a->pid, NULL);
  pthread_mutex_unlock(&a->sys->obs_lock);
}

void ax__obs_free(ax_actor *a) {
  if (a->ext->obs) ax__free_aligned(a->ext->obs, sizeof(struct ax__obs), AX_CACHELINE);
  a->ext->obs = NULL;
}

/* ---- the hooks ---- */

static uint64_t depth_of(ax_actor *a, struct ax__obs *o);

/* peak = max(peak, d), by any thread (senders and the owner both raise it:
 * a plain store could lower what another just raised). Relaxed is enough:
 * the CAS alone makes the maximum monotonic; the value orders nothing else
 * (readers take it as a statistic; metrics.counters runs under TSan). */
static void peak_max(struct ax__obs *o, uint64_t d) {
  uint64_t pk = atomic_load_explicit(&o->peak, memory_order_relaxed);
  while (d > pk &&
         !atomic_compare_exchange_weak_explicit(&o->peak, &pk, d, memory_order_relaxed,
                                                memory_order_relaxed)) {
  }
}

static void on_push(ax_actor *r, ax__mnode *n, unsigned bits) {
  /* r->ext was set before the bits were published (see track). */
  struct ax__obs *o = r->ext->obs;
  atomic_fetch_add_explicit(&o->enq, 1, memory_order_relaxed);
  /* The peak is taken where the depth grows: at a push. Sampled only when
   * a run starts, a backlog that arrived while a run was under way and was
   * partly consumed by it was never seen (metrics.counters
   * mailbox_depth_and_peak: depth 10 read, peak 6 reported). */
  peak_max(o, depth_of(r, o));
  n->msg.flags |= AX__MSGF_COUNTED;
  if (bits & AX_METRICS_HISTOGRAMS) {
    n->to = ax__now_ns(); /* a user message's `to` is not read after the push */
    n->msg.flags |= AX__MSGF_STAMPED;
  }
}

void ax__obs_on_send(ax_system *sys, ax_actor *r, ax__mnode *n, uint64_t from) {
  /* acquire: pairs with track's release (ext and the block are set). */
  unsigned bits = atomic_load_explicit(&r->obs, memory_order_acquire);
  if (bits) on_push(r, n, bits);
  const ax_tracer *t = ax__tracer(sys);
  if (t) ax__trace_msg(t, AX_TRACE_SEND, from, r->pid, &n->msg);
}

static uint64_t depth_of(ax_actor *a, struct ax__obs *o) {
  if (a->limit) return ax__actor_depth(a);
  uint64_t popped = atomic_load_explicit(&o->popped, memory_order_relaxed);
  uint64_t enq = atomic_load_explicit(&o->enq, memory_order_relaxed);
  return enq > popped ? enq - popped : 0; /* a reader may see a pop before its push */
}

static void run_start(ax_actor *a) {
  struct ax__obs *o = a->ext->obs;
  peak_max(o, depth_of(a, o));
}

void ax__obs_run_begin(ax_actor *a, ax__ctx *c) {
  /* The owner set its obs bits itself: relaxed is enough. */
  if (atomic_load_explicit(&a->obs, memory_order_relaxed)) {
    c->obs = a->ext->obs;
    run_start(a);
  }
  c->hooks = c->obs != NULL || atomic_load_explicit(&a->sys->tracer, memory_order_relaxed);
}

void ax__obs_on_pop(struct ax__obs *o, ax__mnode *n) {
  uint32_t f = n->msg.flags;
  if (!(f & AX__MSGF_COUNTED)) return; /* pushed before tracking began */
  owner_add(&o->popped, 1);
  if (f & AX__MSGF_STAMPED) {
    uint64_t now = ax__now_ns();
    hist_add(&o->wait, now > n->to ? now - n->to : 0);
  }
  n->msg.flags = f & ~(AX__MSGF_COUNTED | AX__MSGF_STAMPED);
}

ax_err ax__obs_deliver(ax_actor *a, ax__ctx *c, ax__mnode *n) {
  const ax_tracer *t = ax__tracer(a->sys); /* NULL if removed since the run began */
  if (t) ax__trace_msg(t, AX_TRACE_RECEIVE, a->pid, n->msg.from.id, &n->msg);
  struct ax__obs *o = c->obs;
  if (!o) return a->behaviour(a, &n->msg);
  owner_add(&o->in, 1);
  if (!(atomic_load_explicit(&o->what, memory_order_relaxed) & AX_METRICS_HISTOGRAMS))
    return a->behaviour(a, &n->msg);
  uint64_t t0 = ax__now_ns();
  ax_err e = a->behaviour(a, &n->msg);
  hist_add(&o->handle, ax__now_ns() - t0);
  return e;
}

void ax__obs_count_out(struct ax__obs *o) { owner_add(&o->out, 1); }
void ax__obs_dead_letter(struct ax__obs *o) { owner_add(&o->dead, 1); }

void ax__obs_restart(ax_actor *self) {
  atomic_fetch_add_explicit(&self->sys->restarts, 1, memory_order_relaxed);
  if (atomic_load_explicit(&self->obs, memory_order_relaxed)) owner_add(&self->ext->obs->restarts, 1);
}

/* ---- reading ---- */

static void snapshot(ax_actor *a, ax_actor_metrics *m) {
  struct ax__obs *o = a->ext->obs;
  memset(m, 0, sizeof(*m));
  m->pid.id = a->pid;
  memcpy(m->name, o->name, sizeof(m->name));
  m->what = atomic_load_explicit(&o->what, memory_order_relaxed);
  m->messages_in = atomic_load_explicit(&o->in, memory_order_relaxed);
  m->messages_out = atomic_load_explicit(&o->out, memory_order_relaxed);
  m->mailbox_depth = depth_of(a, o);
  m->mailbox_peak = atomic_load_explicit(&o->peak, memory_order_relaxed);
  if (m->mailbox_peak < m->mailbox_depth) m->mailbox_peak = m->mailbox_depth;
  m->dead_letters = atomic_load_explicit(&o->dead, memory_order_relaxed);
  m->restarts = atomic_load_explicit(&o->restarts, memory_order_relaxed);
  if (a->limit) { /* an unbounded lane neither drops nor mutes */
    m->dropped = atomic_load_explicit(&ax__actor_bounded(a)->drops, memory_order_relaxed);
    m->mutes = atomic_load_explicit(&ax__actor_bounded(a)->mutes, memory_order_relaxed);
  }
  hist_read(&o->wait, &m->mailbox_wait);
  hist_read(&o->handle, &m->handling);
}

ax_err ax_actor_metrics_get(ax_system *sys, ax_pid pid, ax_actor_metrics *out) {
  if (!sys || !out) return AX_EINVAL;
  ax_actor *a = ax__table_acquire(&sys->table, pid.id);
  if (!a) return AX_ENOACTOR;
  /* acquire: pairs with track's release (ext and the block are set). */
  bool tracked = atomic_load_explicit(&a->obs, memory_order_acquire) != 0;
  if (tracked) snapshot(a, out);
  ax__table_release(&sys->table, pid.id);
  return tracked ? AX_OK : AX_ENOTFOUND;
}

ax_err ax_metrics_foreach_actor(ax_system *sys, ax_actor_metrics_fn fn, void *arg) {
  if (!sys || !fn) return AX_EINVAL;
  pthread_mutex_lock(&sys->obs_lock);
  uint32_t n = sys->obs_pids.count, k = 0;
  uint64_t *pids = n ? ax__alloc(n * sizeof(uint64_t)) : NULL;
  if (n && !pids) {
    pthread_mutex_unlock(&sys->obs_lock);
    return AX_ENOMEM;
  }
  for (uint32_t i = 0; i < sys->obs_pids.cap && k < n; i++)
    if (ax__u64map_live(&sys->obs_pids, i)) pids[k++] = ax__u64map_key(&sys->obs_pids, i);
  pthread_mutex_unlock(&sys->obs_lock);
  ax_actor_metrics m;
  for (uint32_t i = 0; i < k; i++)
    if (ax_actor_metrics_get(sys, (ax_pid){pids[i]}, &m) == AX_OK) fn(&m, arg);
  if (pids) ax__free(pids, n * sizeof(uint64_t));
  return AX_OK;
}

ax_err ax_worker_stats_get(ax_system *sys, uint32_t i, ax_worker_stats *out) {
  if (!sys || !out) return AX_EINVAL;
  if (i >= sys->nworkers) return AX_ENOTFOUND;
  ax__worker *w = &sys->workers[i];
  out->runs = atomic_load_explicit(&w->runs, memory_order_relaxed);
  out->steals = atomic_load_explicit(&w->steals, memory_order_relaxed);
  out->parks = atomic_load_explicit(&w->parks, memory_order_relaxed);
  out->messages_sent = atomic_load_explicit(&w->sent, memory_order_relaxed);
  /* A consistent pair (see park in sched.c): parked_ns read while
   * park_since did not change, so a park is counted once, and busy time
   * never goes back. */
  uint64_t parked = 0, since = 0, now = 0;
  for (int tries = 0; tries < 100; tries++) {
    since = atomic_load_explicit(&w->park_since, memory_order_seq_cst);
    parked = atomic_load_explicit(&w->parked_ns, memory_order_seq_cst);
    now = ax__now_ns();
    if (atomic_load_explicit(&w->park_since, memory_order_seq_cst) == since) break;
  }
  if (since && since < now) parked += now - since; /* parked right now */
  uint64_t up = now > w->start_ns ? now - w->start_ns : 0;
  uint64_t busy = up > parked ? up - parked : 0;
  /* The worker reads the clock just before it publishes park_since, so a
   * reader between the two can count a few ns too many: report the highest
   * value any reader reported, so the counter never goes back. */
  uint64_t hw = atomic_load_explicit(&w->busy_hw, memory_order_relaxed);
  while (busy > hw && !atomic_compare_exchange_weak_explicit(&w->busy_hw, &hw, busy,
                                                              memory_order_relaxed,
                                                              memory_order_relaxed)) {
  }
  out->busy_ns = busy > hw ? busy : hw;
  return AX_OK;
}

/* ---- tracing ---- */

ax_err ax_trace_set(ax_system *sys, const ax_tracer *t) {
  if (!sys || (t && !t->fn)) return AX_EINVAL;
  NO_HOOKS_RETURN();
  atomic_store_explicit(&sys->tracer, t, memory_order_release);
  if (t) atomic_store_explicit(&sys->hooks_any, 1, memory_order_relaxed);
  return AX_OK;
}

const char *ax_trace_kind_str(ax_trace_kind k) {
  switch (k) {
  case AX_TRACE_SPAWN: return "spawn";
  case AX_TRACE_SEND: return "send";
  case AX_TRACE_RECEIVE: return "receive";
  case AX_TRACE_STOP: return "stop";
  }
  return "?";
}

void ax__trace_actor(const ax_tracer *t, ax_trace_kind kind, ax_actor *a, uint64_t peer,
                     ax_reason reason) {
  ax_trace_event ev = {.kind = kind, .actor = {a->pid}, .peer = {peer}, .reason = reason,
                       .name = a->spec->name};
  t->fn(&ev, t->arg);
}

void ax__trace_msg(const ax_tracer *t, ax_trace_kind kind, uint64_t actor, uint64_t peer,
                   const ax_msg *m) {
  ax_trace_event ev = {.kind = kind, .actor = {actor}, .peer = {peer}, .type = m->type,
                       .flags = m->flags & ~(uint32_t)(AX__MSGF_INTERNAL | AX__MSGF_COUNTED |
                                                        AX__MSGF_STAMPED),
                       .len = m->len};
  t->fn(&ev, t->arg);
}
