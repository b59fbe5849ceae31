/* Axon: the work-stealing scheduler. One worker thread per core, each with a
 * fixed ring of runnable actors (Tokio's queue: the owner pushes at the tail,
 * pops at the head; thieves take half with one CAS), a LIFO slot for the
 * actor it just woke (capped so it cannot starve the ring), a due list of
 * actors woken by timer expiries (run first, oldest first, for at most
 * AX__DUE_NS in a row), a global inject queue for work from other threads,
 * and parking with no sleep-polling
 * (Tokio's idle protocol: at most half the workers search at once; a parked
 * worker is woken only when nobody is searching).
 *
 * A parking worker first tries to become the reactor's driver (Tokio's
 * driver): it blocks in the reactor's poller wait instead of on its
 * condition variable, and readiness it dispatches makes actors runnable on
 * its own LIFO slot and ring, which it runs at once: a socket
 * request/response costs one wake-up (the epoll_wait return), not two (the
 * reactor thread's, then this worker's futex). One parked worker drives;
 * the others sleep on park_cv; with none parked the reactor's own thread
 * drives (reactor.c). The park protocol, and why no wake-up is lost:
 *  - park() registers the worker as a sleeper (num_unparked--), then, after
 *    a seq_cst fence, rechecks every queue (Dekker with notify_parked).
 *  - Under park_lock it checks notified, sets driving, drops the lock and
 *    drives one pass; then, under park_lock again, clears driving and
 *    checks notified. notify_parked sets notified under park_lock and,
 *    reading driving under the same lock, wakes the reactor's poller (a
 *    sticky wakeup: a wait that starts later returns at once) when driving
 *    is set, else signals park_cv. So a notification either is seen before
 *    the pass, or ends the pass, or is seen right after it. The driver also
 *    rechecks notified in the pass itself, under drive_lock, just before
 *    the poller wait (drive_busy_fn): the poller wake is sticky only until
 *    some pass consumes it, and another thread's pass (a searcher's
 *    non-blocking poll) could consume it between our check before the pass
 *    and our taking of drive_lock, leaving us in a wait without a timeout,
 *    counted as searching, so that no later notify woke anyone (the
 *    sup.dynamic hang under load; sched.driver
 *    notify_wake_consumed_before_drive reproduces it). A driver that
 *    found the lock busy clears driving and rechecks notified under the lock
 *    before it waits on park_cv, so a poller wake meant for it is never the
 *    only signal it gets.
 *  - A driver whose pass made actors runnable on its own queues leaves the
 *    park by itself: it takes itself off the sleepers under idle_lock
 *    (num_unparked++); if a notifier popped it first, that notifier counted
 *    it unparked and searching and is about to set notified: it waits for
 *    that (bounded: the notifier holds no lock we hold) and takes the
 *    notifier's accounting. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "actor/actor_int.h"
#include "actor/qsbr.h"

_Thread_local ax__ctx ax__tls_ctx;

/* Search rounds before a worker parks (each ~16 pauses plus a steal pass). */
#define AX__SPIN_ROUNDS 64
/* A searching worker polls the reactor every this many rounds. */
#define AX__POLL_EVERY 8
/* How long a victim must stay in one run before a thief takes what it is
 * about to run itself (see steal_from): this long, or this many of the
 * thief's search rounds, whichever comes first (the rounds make sure one
 * search spin sees it on any machine). The old 8 rounds (~4 us here) were
 * shorter than fjthrput's producer's runs once other work slowed them, so
 * the producer moved to the thief and back. */
#define AX__STALL_NS 20000u
#define AX__STALL_ROUNDS (AX__SPIN_ROUNDS * 3 / 4)
/* A steal pays when the stolen actors kept the thief busy this long each. */
#define AX__STEAL_PAYS_NS 500u
/* The age a victim's ring must reach before a thief whose steals do not
 * pay takes from it: doubled from MIN to MAX per steal that did not pay. */
#define AX__STEAL_WAIT_MIN_NS 1000u
#define AX__STEAL_WAIT_MAX_NS 100000u
/* While a worker is patient, a worker wakes a sleeper for its own pushes at
 * most once per AX__PATIENT_NOTIFY_NS, judged once per AX__PATIENT_GATE of
 * its pushes or runs (see notify_parked_local). */
#define AX__PATIENT_NOTIFY_NS 1000000u
#define AX__PATIENT_GATE 64u
/* The parallelism probe (par_step): a warm-up, then a measured span, for
 * each of the two modes; the verdict then holds for a long phase, from MIN,
 * doubled per verdict equal to the last, up to MAX. */
#define AX__PAR_WARM_NS 500000u
#define AX__PAR_PROBE_NS 3000000u
/* An all-workers probe is judged early, this far into it (AX__PAR_ALL_PEEK). */
#define AX__PAR_PEEK_NS 1000000u
#define AX__PAR_LONG_MIN_NS 50000000u
#define AX__PAR_LONG_MAX_NS 1000000000u
/* All workers keep running only if they deliver this many percent of one
 * worker's message rate (they burn up to nworkers times its CPU). */
#define AX__PAR_GAIN_PCT 105u
/* A worker left out of a solo phase takes it over when the solo worker's
 * tick stood still this long (solo_takeover). */
#define AX__SOLO_TAKEOVER_NS 2000000u
/* A worker looks at the probe's clock and the solo phase once per this
 * many of its picks (+ 1). */
#define AX__PAR_CHECK_MASK 255u


static inline uint32_t hi32(uint64_t v) { return (uint32_t)(v >> 32); }
static inline uint32_t lo32(uint64_t v) { return (uint32_t)v; }
static inline uint64_t pack(uint32_t steal, uint32_t real) {
  return ((uint64_t)steal << 32) | real;
}

/* ---- inject queue ---- */

/* Pushes a batch linked through run_next. */
static void inject_push_batch(ax_system *sys, ax_actor *first, ax_actor *last, size_t n) {
  pthread_mutex_lock(&sys->inject_lock);
  ax__runq_append(&sys->inject_head, &sys->inject_tail, first, last);
  /* seq_cst: part of the Dekker pattern with park() (see notify_parked). */
  atomic_fetch_add_explicit(&sys->inject_len, n, memory_order_seq_cst);
  pthread_mutex_unlock(&sys->inject_lock);
}

static void inject_push(ax_system *sys, ax_actor *a) { inject_push_batch(sys, a, a, 1); }

static ax_actor *inject_pop(ax_system *sys) {
  if (atomic_load_explicit(&sys->inject_len, memory_order_relaxed) == 0) return NULL;
  pthread_mutex_lock(&sys->inject_lock);
  ax_actor *a = ax__runq_pop(&sys->inject_head, &sys->inject_tail);
  if (a) atomic_fetch_sub_explicit(&sys->inject_len, 1, memory_order_relaxed);
  pthread_mutex_unlock(&sys->inject_lock);
  return a;
}

/* A worker that a solo phase leaves out (sys->solo names another) runs
 * nothing: it gives what it has queued to the inject queue (solo_shed),
 * which it does not take from, and takes the phase over when the solo
 * worker is stuck or parked (solo_takeover). */
static inline bool solo_other(ax__worker *w) {
  /* relaxed: a hint (see the field) */
  uint32_t s = atomic_load_explicit(&w->sys->solo, memory_order_relaxed);
  return s != AX__SOLO_NONE && s != w->index;
}

static inline ax_actor *inject_pop_w(ax__worker *w) {
  /* relaxed: the same hint inject_pop tests first (an empty queue, the
   * common case, costs what it did before solo phases) */
  if (atomic_load_explicit(&w->sys->inject_len, memory_order_relaxed) == 0 ||
      AX_UNLIKELY(solo_other(w)))
    return NULL;
  return inject_pop(w->sys);
}

/* ---- the ring ---- */

static inline void ring_set(ax__worker *w, uint32_t i, ax_actor *a) {
  /* relaxed: published by the release store of tail */
  atomic_store_explicit(&w->ring[i & AX__RING_MASK], a, memory_order_relaxed);
}
static inline ax_actor *ring_get(ax__worker *w, uint32_t i) {
  return atomic_load_explicit(&w->ring[i & AX__RING_MASK], memory_order_relaxed);
}

/* Moves half of a full ring plus `a` to the inject queue. Returns false if
 * a thief moved the head meanwhile (the caller retries the push). */
static bool ring_overflow(ax__worker *w, uint32_t head, ax_actor *a) {
  const uint32_t half = AX__RING_SIZE / 2;
  uint64_t expect = pack(head, head);
  /* acq_rel: claims the half against thieves' CASes on the same word. */
  if (!atomic_compare_exchange_strong_explicit(&w->head, &expect, pack(head + half, head + half),
                                               memory_order_acq_rel, memory_order_relaxed))
    return false;
  ax_actor *first = ring_get(w, head), *prev = first;
  for (uint32_t i = 1; i < half; i++) {
    ax_actor *x = ring_get(w, head + i);
    prev->run_next = x;
    prev = x;
  }
  prev->run_next = a;
  inject_push_batch(w->sys, first, a, half + 1);
  return true;
}

static void ring_push_back(ax__worker *w, ax_actor *a) {
  for (;;) {
    /* acquire: see thieves' progress before judging fullness */
    uint64_t h = atomic_load_explicit(&w->head, memory_order_acquire);
    uint32_t steal = hi32(h), real = lo32(h);
    uint32_t tail = atomic_load_explicit(&w->tail, memory_order_relaxed);
    if (tail - steal < AX__RING_SIZE) {
      ring_set(w, tail, a);
      /* release: a thief that reads the new tail sees the slot's contents */
      atomic_store_explicit(&w->tail, tail + 1, memory_order_release);
      return;
    }
    if (steal != real) { /* a thief is mid-steal: the ring will shrink */
      inject_push(w->sys, a);
      return;
    }
    if (ring_overflow(w, real, a)) return;
  }
}

static ax_actor *ring_pop(ax__worker *w) {
  uint64_t h = atomic_load_explicit(&w->head, memory_order_acquire);
  for (;;) {
    uint32_t steal = hi32(h), real = lo32(h);
    uint32_t tail = atomic_load_explicit(&w->tail, memory_order_relaxed);
    if (real == tail) return NULL;
    uint32_t next_real = real + 1;
    uint64_t next = steal == real ? pack(next_real, next_real) : pack(steal, next_real);
    /* acq_rel: orders the slot read after winning the index against thieves */
    if (atomic_compare_exchange_weak_explicit(&w->head, &h, next, memory_order_acq_rel,
                                              memory_order_acquire))
      return ring_get(w, real);
  }
}

static bool ring_nonempty(ax__worker *w) {
  uint64_t h = atomic_load_explicit(&w->head, memory_order_seq_cst);
  return lo32(h) != atomic_load_explicit(&w->tail, memory_order_seq_cst);
}

/* Steals half of src's ring into dst's; returns one actor to run now and
 * sets *took to the number taken. */
static ax_actor *steal_into(ax__worker *src, ax__worker *dst, uint32_t *took) {
  uint32_t dst_tail = atomic_load_explicit(&dst->tail, memory_order_relaxed);
  uint64_t h = atomic_load_explicit(&src->head, memory_order_acquire);
  uint32_t n, real;
  for (;;) {
    uint32_t steal = hi32(h);
    real = lo32(h);
    if (steal != real) return NULL; /* another thief is active */
    uint32_t tail = atomic_load_explicit(&src->tail, memory_order_acquire);
    n = tail - real;
    n -= n / 2;
    if (n == 0) return NULL;
    if (n > AX__RING_SIZE / 2) n = AX__RING_SIZE / 2;
    /* acq_rel: claim [real, real+n) while keeping the steal index, so the
     * owner does not overwrite those slots until we finish. */
    if (atomic_compare_exchange_weak_explicit(&src->head, &h, pack(steal, real + n),
                                              memory_order_acq_rel, memory_order_acquire))
      break;
  }
  for (uint32_t i = 0; i < n; i++) ring_set(dst, dst_tail + i, ring_get(src, real + i));
  /* Release the claim: move the steal index up to the real head. */
  h = atomic_load_explicit(&src->head, memory_order_acquire);
  for (;;) {
    uint64_t next = pack(lo32(h), lo32(h));
    if (atomic_compare_exchange_weak_explicit(&src->head, &h, next, memory_order_acq_rel,
                                              memory_order_acquire))
      break;
  }
  *took = n;
  n--;
  ax_actor *ret = ring_get(dst, dst_tail + n);
  if (n) atomic_store_explicit(&dst->tail, dst_tail + n, memory_order_release);
  return ret;
}

/* The solo worker of a solo phase takes the inject queue in batches of up
 * to AX__INJECT_BATCH, the rest to its ring: what the others shed there
 * at the phase's start (their rings) would otherwise come back one actor
 * per AX__INJECT_INTERVAL picks while their senders wait on them (big: a
 * solo probe at 0.3M msgs/s against 24M). Others, and an inject queue of
 * one, as before. */
#define AX__INJECT_BATCH 64u
static ax_actor *inject_take(ax__worker *w) {
  ax_system *sys = w->sys;
  /* relaxed: hints, as in inject_pop_w; the pops decide under the lock */
  if (atomic_load_explicit(&sys->inject_len, memory_order_relaxed) < 2 ||
      atomic_load_explicit(&sys->solo, memory_order_relaxed) != w->index)
    return inject_pop_w(w);
  ax_actor *first = NULL, *last = NULL, *a;
  uint32_t n = 0;
  pthread_mutex_lock(&sys->inject_lock);
  while (n < AX__INJECT_BATCH && (a = ax__runq_pop(&sys->inject_head, &sys->inject_tail))) {
    ax__runq_append(&first, &last, a, a);
    n++;
  }
  /* relaxed: as inject_pop's */
  if (n) atomic_fetch_sub_explicit(&sys->inject_len, n, memory_order_relaxed);
  pthread_mutex_unlock(&sys->inject_lock);
  if (!n) return NULL;
  for (a = first->run_next; a;) {
    ax_actor *next = a->run_next; /* ring_push_back may relink a */
    ring_push_back(w, a);
    a = next;
  }
  return first;
}

/* ---- the due list ---- */

/* Appends first..last (n actors, linked through run_next) to w's due list. */
static void due_append(ax__worker *w, ax_actor *first, ax_actor *last, uint32_t n) {
  pthread_mutex_lock(&w->due_lock);
  ax__runq_append(&w->due_head, &w->due_tail, first, last);
  /* relaxed: written under the lock, which readers that act on it take;
   * the loads without it are hints (a stale one costs a lock, or a look
   * one run later) */
  atomic_store_explicit(&w->due_n, atomic_load_explicit(&w->due_n, memory_order_relaxed) + n,
                        memory_order_relaxed);
  pthread_mutex_unlock(&w->due_lock);
}

/* The oldest actor of w's due list, or NULL (a thief took them). */
static ax_actor *due_pop(ax__worker *w) {
  pthread_mutex_lock(&w->due_lock);
  ax_actor *a = ax__runq_pop(&w->due_head, &w->due_tail);
  if (a) {
    /* relaxed: as due_append */
    atomic_store_explicit(&w->due_n, atomic_load_explicit(&w->due_n, memory_order_relaxed) - 1,
                          memory_order_relaxed);
  }
  pthread_mutex_unlock(&w->due_lock);
  return a;
}

/* Moves the newer half (rounded up) of v's due list to the back of w's;
 * returns how many. */
static uint32_t due_steal(ax__worker *v, ax__worker *w) {
  ax_actor *first = NULL, *last = NULL;
  pthread_mutex_lock(&v->due_lock);
  /* relaxed: under the lock (as due_append) */
  uint32_t n = atomic_load_explicit(&v->due_n, memory_order_relaxed), k = n - n / 2;
  if (n) {
    last = v->due_tail;
    if (k == n) {
      first = v->due_head;
      v->due_head = v->due_tail = NULL;
    } else {
      ax_actor *keep = v->due_head;
      for (uint32_t i = 1; i < n - k; i++) keep = keep->run_next;
      first = keep->run_next;
      keep->run_next = NULL;
      v->due_tail = keep;
    }
    atomic_store_explicit(&v->due_n, n - k, memory_order_relaxed);
  }
  pthread_mutex_unlock(&v->due_lock);
  if (!first) return 0;
  due_append(w, first, last, k);
  return k;
}

bool ax__sched_due_share(ax_system *sys) {
  ax__worker *w = ax__tls_ctx.worker;
  /* relaxed: hints; due_steal decides under the victim's lock */
  if (!w || w->sys != sys || atomic_load_explicit(&w->due_n, memory_order_relaxed)) return false;
  for (uint32_t i = 0; i < sys->nworkers; i++) {
    ax__worker *v = &sys->workers[i];
    if (v != w && atomic_load_explicit(&v->due_n, memory_order_relaxed) >= 2 && due_steal(v, w)) return true;
  }
  return false;
}

/* ---- idle workers ---- */

/* Wakes one parked worker when nobody is searching. The seq_cst fence pairs
 * with the one in park(): either the parker sees our queued work, or we see
 * its decrement of num_unparked and wake it (Tokio idle.rs explains why
 * acquire/release is not enough here). */
static void notify_parked(ax_system *sys) {
  atomic_thread_fence(memory_order_seq_cst);
  if (atomic_load_explicit(&sys->num_searching, memory_order_seq_cst) != 0 ||
      atomic_load_explicit(&sys->num_unparked, memory_order_seq_cst) >= sys->nworkers)
    return;
  pthread_mutex_lock(&sys->idle_lock);
  if (atomic_load_explicit(&sys->num_searching, memory_order_relaxed) != 0 ||
      sys->nsleepers == 0) {
    pthread_mutex_unlock(&sys->idle_lock);
    return;
  }
  ax__worker *v = &sys->workers[sys->sleepers[--sys->nsleepers]];
  atomic_fetch_add_explicit(&sys->num_searching, 1, memory_order_seq_cst);
  atomic_fetch_add_explicit(&sys->num_unparked, 1, memory_order_seq_cst);
  pthread_mutex_unlock(&sys->idle_lock);
  pthread_mutex_lock(&v->park_lock);
  v->notified = true;
  if (v->driving)
    ax__reactor_wake(sys->reactor); /* ends (or pre-empts) its pass */
  else
    pthread_cond_signal(&v->park_cv);
  pthread_mutex_unlock(&v->park_lock);
}

void ax__sched_reactor_yield(void *arg) { notify_parked(arg); }

/* The cheap gate before notify_parked on a worker's own pushes: no fence,
 * relaxed loads of lines that change only when a worker starts or stops
 * searching, parks, or turns patient. Missing a parker here cannot strand
 * work: the pushing worker runs its own ring anyway; it only costs
 * parallelism until the next notify. Pushes from outside the workers
 * (inject) always take the full path. While some worker is patient (its
 * steals did not pay: it would leave fresh work to us anyway), a sleeper is
 * woken at most once per AX__PATIENT_NOTIFY_NS: waking it for every push
 * cost fjthrput a futex wake and a 64-round search spin (reading our
 * ring's lines) every few tens of microseconds. Woken, the patient worker
 * steals once our ring has aged, and if that steal pays it is no longer
 * patient; for work we queue and then sit on in a long run without
 * pushing again, sched_tick wakes it. */
static inline void notify_parked_local(ax__worker *w) {
  ax_system *sys = w->sys;
  if (atomic_load_explicit(&sys->num_searching, memory_order_relaxed) != 0 ||
      atomic_load_explicit(&sys->num_unparked, memory_order_relaxed) >= sys->nworkers)
    return;
  /* A solo phase: the others run nothing of ours unless we are stuck,
   * which sched_tick watches; a wake for a push cost us a futex or eventfd
   * write and the lock hand-offs of their park, ~2 per ms (fjthrput).
   * relaxed: a hint (see the field). */
  if (atomic_load_explicit(&sys->solo, memory_order_relaxed) != AX__SOLO_NONE) return;
  /* relaxed: a hint; a stale value costs a wake too many or too few */
  if (atomic_load_explicit(&sys->num_patient, memory_order_relaxed)) {
    /* The clock is read once per AX__PATIENT_GATE pushes or runs, not per
     * push (fjthrput's producer pushes ~6M times a second). relaxed: our
     * own counter. */
    uint32_t tick = atomic_load_explicit(&w->tick, memory_order_relaxed);
    if (++w->patient_pushes < AX__PATIENT_GATE && tick - w->notify_tick < AX__PATIENT_GATE)
      return;
    w->patient_pushes = 0;
    w->notify_tick = tick;
    uint64_t now = ax__now_ns();
    if (now - w->notify_ns < AX__PATIENT_NOTIFY_NS) return;
    w->notify_ns = now;
  }
  notify_parked(sys);
}

static bool any_work(ax_system *sys) {
  if (atomic_load_explicit(&sys->inject_len, memory_order_seq_cst)) return true;
  for (uint32_t i = 0; i < sys->nworkers; i++)
    /* relaxed due_n: a thief's hint, as notify_parked_local's (its owner
     * runs it anyway) */
    if (ring_nonempty(&sys->workers[i]) ||
        atomic_load_explicit(&sys->workers[i].due_n, memory_order_relaxed))
      return true;
  return false;
}

static bool local_work(ax__worker *w) {
  /* relaxed: our own slots (only a thief's CAS empties them besides us) */
  return atomic_load_explicit(&w->lifo, memory_order_relaxed) ||
         atomic_load_explicit(&w->yield, memory_order_relaxed) ||
         atomic_load_explicit(&w->due_n, memory_order_relaxed) || ring_nonempty(w);
}

/* The reactor's busy hook for a driving worker, read after the pass's ticks
 * and timers, with drive_lock held, just before the poller wait (timeout 0
 * if true): a tick or timer made actors runnable on its own queues, or a
 * notifier already set notified. The poller wake that notifier sent may
 * have been consumed by another thread's pass (a searcher's non-blocking
 * poll) between our check of notified before the pass and our taking of
 * drive_lock: the wake is sticky only until some wait consumes it, not
 * necessarily ours. Rechecking notified here, under drive_lock, closes that
 * window (and the same for stop_workers): a notify after this check wakes the poller while we hold
 * drive_lock, so only our wait can consume it. */
static bool drive_busy_fn(void *arg) {
  ax__worker *w = arg;
  if (local_work(w)) return true;
  /* seq_cst: sched_stop stores stop_workers, then wakes the poller; a
   * load that misses the store comes before it, so that wake comes while
   * we hold drive_lock (the same argument as for notified). */
  if (atomic_load_explicit(&w->sys->stop_workers, memory_order_seq_cst)) return true;
  pthread_mutex_lock(&w->park_lock);
  bool notified = w->notified;
  pthread_mutex_unlock(&w->park_lock);
  return notified;
}

/* A driver that got work from its pass leaves the park on its own (see the
 * protocol at the head). Returns true if a notifier had popped it (its
 * accounting holds: unparked and searching). */
static bool unpark_self(ax__worker *w) {
  ax_system *sys = w->sys;
  pthread_mutex_lock(&sys->idle_lock);
  for (uint32_t i = 0; i < sys->nsleepers; i++) {
    if (sys->sleepers[i] != w->index) continue;
    memmove(&sys->sleepers[i], &sys->sleepers[i + 1], (sys->nsleepers - i - 1) * sizeof(uint32_t));
    sys->nsleepers--;
    atomic_fetch_add_explicit(&sys->num_unparked, 1, memory_order_seq_cst);
    pthread_mutex_unlock(&sys->idle_lock);
    return false;
  }
  pthread_mutex_unlock(&sys->idle_lock);
  pthread_mutex_lock(&w->park_lock);
  while (!w->notified) pthread_cond_wait(&w->park_cv, &w->park_lock);
  w->notified = false;
  pthread_mutex_unlock(&w->park_lock);
  return true;
}

void (*_Atomic ax__sched_drive_hook)(ax_system *sys);

/* The wait of a park: drives the reactor while nobody else does, else
 * sleeps on park_cv. Returns true if a notifier woke us. */
static bool park_wait(ax__worker *w) {
  ax_system *sys = w->sys;
  ax__reactor *r = sys->reactor;
  bool try_drive = r != NULL, got_work = false;
  if (r) ax__reactor_standby(r, 1);
  pthread_mutex_lock(&w->park_lock);
  while (!w->notified && !atomic_load_explicit(&sys->stop_workers, memory_order_acquire)) {
    if (!try_drive) {
      pthread_cond_wait(&w->park_cv, &w->park_lock);
      continue;
    }
    w->driving = true;
    pthread_mutex_unlock(&w->park_lock);
    /* acquire: pairs with the test's seq_cst store of the hook, so what the
     * test wrote before installing it (its state) is seen by the hook */
    void (*hook)(ax_system *) = atomic_load_explicit(&ax__sched_drive_hook, memory_order_acquire);
    if (AX_UNLIKELY(hook != NULL)) hook(sys);
    ax__drive_result d = ax__reactor_drive(r, drive_busy_fn, w);
    pthread_mutex_lock(&w->park_lock);
    w->driving = false;
    if (d != AX__DRIVE_DROVE) {
      try_drive = false; /* someone else drives: sleep until notified */
    } else if (!w->notified && local_work(w)) {
      got_work = true;
      break;
    }
  }
  bool woken = w->notified;
  w->notified = false;
  pthread_mutex_unlock(&w->park_lock);
  if (r) ax__reactor_standby(r, -1);
  if (got_work) woken = unpark_self(w);
  return woken;
}

/* Called offline (worker_main: ax__qs_offline before it, so that a
 * reclaim waits for nobody asleep and what a reactor pass here delivers
 * takes table references); online again at its end. */
static void park(ax__worker *w) {
  ax_system *sys = w->sys;
  atomic_fetch_add_explicit(&w->parks, 1, memory_order_relaxed);
  pthread_mutex_lock(&sys->idle_lock);
  if (w->searching) atomic_fetch_sub_explicit(&sys->num_searching, 1, memory_order_seq_cst);
  w->searching = false;
  atomic_fetch_sub_explicit(&sys->num_unparked, 1, memory_order_seq_cst);
  sys->sleepers[sys->nsleepers++] = w->index;
  pthread_mutex_unlock(&sys->idle_lock);
  atomic_thread_fence(memory_order_seq_cst);
  /* A patient worker (steal_paid) rechecks only the inject queue: the work
   * in other workers' rings is theirs until it ages, and their wake-ups for
   * it are best effort anyway (notify_parked_local). Rechecking the rings
   * kept it out of its sleep for as long as fjthrput's producer's ring was
   * never empty (a park and a search spin every ~30 us). seq_cst: the
   * Dekker pattern with inject_push_batch and notify_parked, as any_work. */
  /* A worker left out of a solo phase rechecks nothing: it runs none of
   * that work (a notify for it only makes it look at the solo worker,
   * solo_takeover, and the solo worker's own park rechecks it all). */
  if ((solo_other(w) ? false
       : w->steal_wait ? atomic_load_explicit(&sys->inject_len, memory_order_seq_cst) != 0
                       : any_work(sys)) ||
      atomic_load_explicit(&sys->stop_workers, memory_order_seq_cst))
    notify_parked(sys);
  /* Busy time is the time not parked: two clock reads per park, none per
   * run. park_since lets a reader count a park still under way; seq_cst
   * (the park path is slow anyway) so that a reader seeing the same
   * park_since before and after its load of parked_ns got the parked_ns of
   * that moment (ax_worker_stats_get). */
#ifdef AX_NO_HOOKS /* measuring what metrics cost (AX__HOOKS_ON) */
  bool woken = park_wait(w);
#else
  uint64_t t0 = ax__now_ns();
  atomic_store_explicit(&w->park_since, t0, memory_order_seq_cst);
  bool woken = park_wait(w);
  uint64_t parked = atomic_load_explicit(&w->parked_ns, memory_order_relaxed) + (ax__now_ns() - t0);
  atomic_store_explicit(&w->parked_ns, parked, memory_order_seq_cst);
  atomic_store_explicit(&w->park_since, 0, memory_order_seq_cst);
#endif
  /* The notifier counted us as searching and unparked. */
  if (woken) w->searching = true;
  w->solo_woken = woken;
  ax__qs_online(w);
}

static bool start_searching(ax__worker *w) {
  if (w->searching) return true;
  ax_system *sys = w->sys;
  uint32_t s = atomic_load_explicit(&sys->num_searching, memory_order_seq_cst);
  if (2 * s >= sys->nworkers) return false;
  atomic_fetch_add_explicit(&sys->num_searching, 1, memory_order_seq_cst);
  w->searching = true;
  return true;
}

/* Leaves the searching state; `wake`: the last searcher to find work wakes
 * another so that someone keeps looking for what remains. A searcher whose
 * own reactor poll gave it work leaves without that wake (it would come for
 * every message of a socket ping-pong); work pushed from elsewhere while it
 * searched is not stranded: pushes from workers run on their own worker,
 * and the inject queue is read by its next_local after this run. seq_cst:
 * the Dekker pattern with notify_parked's load of num_searching. */
static void leave_searching(ax__worker *w, bool wake) {
  if (!w->searching) return;
  w->searching = false;
  ax_system *sys = w->sys;
  if (atomic_fetch_sub_explicit(&sys->num_searching, 1, memory_order_seq_cst) == 1 && wake)
    notify_parked(sys);
}

/* ---- the worker loop ---- */

static inline uint32_t rng_next(ax__worker *w) {
  w->rng ^= w->rng << 13;
  w->rng ^= w->rng >> 7;
  w->rng ^= w->rng << 17;
  return (uint32_t)w->rng;
}

/* The LIFO slot, the yield slot, the ring, the inject queue. */
static ax_actor *next_queued(ax__worker *w) {
  ax_actor *a;
  /* The relaxed load first: only this worker fills the slot (thieves only
   * empty it), so NULL here is NULL for good, and a run after which the
   * slot is empty (fjthrput's consumers: every other run) skips the locked
   * exchange. acq_rel on the exchange: pairs with a thief's CAS on the slot
   * (see steal_from). */
  if (atomic_load_explicit(&w->lifo, memory_order_relaxed) &&
      (a = atomic_exchange_explicit(&w->lifo, NULL, memory_order_acq_rel))) {
    if (w->lifo_runs < AX__LIFO_CAP) {
      w->lifo_runs++;
      return a;
    }
    ring_push_back(w, a);
  }
  w->lifo_runs = 0;
  /* The yielded actor runs once the ring has moved past what was queued
   * before it (popped here or stolen), or when the ring is empty. The
   * relaxed load is a hint (only a thief's CAS clears the slot besides us);
   * the exchange decides, acq_rel as the LIFO slot's. */
  if (atomic_load_explicit(&w->yield, memory_order_relaxed)) {
    /* relaxed: our own ring's head, moved by us or by a thief's CAS; an
     * old value only runs the yielded actor a little later */
    uint32_t head = lo32(atomic_load_explicit(&w->head, memory_order_relaxed));
    if ((int32_t)(head - w->yield_after) >= 0 &&
        (a = atomic_exchange_explicit(&w->yield, NULL, memory_order_acq_rel))) {
      w->quiet_runs = 0;
      return a;
    }
  }
  if ((a = ring_pop(w))) {
    w->quiet_runs = 0; /* the ring moved: a quiet streak may start again */
    return a;
  }
  /* acq_rel: as above */
  if ((a = atomic_exchange_explicit(&w->yield, NULL, memory_order_acq_rel))) {
    w->quiet_runs = 0;
    return a;
  }
  return inject_take(w);
}

_Atomic uint64_t ax__sched_due_ns = AX__DUE_NS;

/* A streak of runs (quiet re-runs, due runs) may go on: its first run
 * starts the clock at *since, and bound ns end it. One clock read per run
 * of a streak, none for other runs. */
static inline bool streak_young(bool first, uint64_t *since, uint64_t bound) {
  uint64_t now = ax__now_ns();
  if (first) {
    *since = now;
    return true;
  }
  return now - *since < bound;
}

/* A due streak may go on: AX__DUE_NS (ax__sched_due_ns) from its first run. */
static inline bool due_young(ax__worker *w) {
  bool first = !w->due_streak;
  w->due_streak = true;
  /* relaxed: a tunable the tests set before the workers start */
  return streak_young(first, &w->due_since, atomic_load_explicit(&ax__sched_due_ns, memory_order_relaxed));
}

/* Actors woken by timer expiries (the due list) first, oldest first: they
 * are due, and whatever is queued elsewhere can wait. They used to go to
 * the ring's front, where each pass's went in front of the last's and the
 * LIFO slot's actor was moved there too: a receiver woken in a 1M burst
 * sat under hundreds of later runs, setters' 0.3 ms chunks among them
 * (docs/ARCHITECTURE.md, "Timers"). After AX__DUE_NS of due runs in a
 * row, one other actor runs if there is one. */
static ax_actor *next_local(ax__worker *w) {
  ax_actor *a;
  uint32_t tick = atomic_load_explicit(&w->tick, memory_order_relaxed) + 1;
  atomic_store_explicit(&w->tick, tick, memory_order_relaxed);
  /* relaxed: a hint; due_pop decides under the lock */
  bool due = atomic_load_explicit(&w->due_n, memory_order_relaxed) != 0;
  if (tick % AX__INJECT_INTERVAL == 0 && (a = inject_take(w))) {
    w->due_streak = false;
    return a;
  }
  if (due && due_young(w) && (a = due_pop(w))) {
    w->lifo_runs = 0; /* as for a ring pop */
    return a;
  }
  if ((a = next_queued(w))) {
    w->due_streak = false;
    return a;
  }
  if (due && (a = due_pop(w))) w->lifo_runs = 0;
  return a;
}

/* ---- deferred flushes (ax_flush_later) ----
 *
 * An actor whose run ended with AX__RUN_DEFER is still scheduled (its
 * lanes were not marked idle, so no sender schedules it) and sits on this
 * worker's private FIFO, never seen by thieves. worker_main takes it back
 * when the worker's own queues are empty and its search spin found nothing
 * (steals, and a reactor poll: the first that brings nothing ends the
 * wait), before it would park, or next_run does,
 * first, once AX__DEFER_RUNS runs or cfg.flush_later_us have passed since
 * the list became non-empty; either way the list is then drained before
 * anything new (its runs never defer again, so it only shrinks). Owner-only
 * fields: no atomics. */
static void defer_push(ax__worker *w, ax_actor *a) {
  a->run_next = NULL;
  if (w->defer_tail) w->defer_tail->run_next = a;
  else {
    w->defer_head = a;
    w->defer_since_ns = ax__now_ns();
  }
  w->defer_tail = a;
}

static ax_actor *defer_pop(ax__worker *w) {
  ax_actor *a = w->defer_head;
  w->defer_head = a->run_next;
  if (!w->defer_head) {
    w->defer_tail = NULL;
    w->defer_runs = 0;
  }
  ax__tls_ctx.flush_owed = true; /* consumed by ax__actor_run, run next */
  return a;
}

/* The deferred list is due once AX__DEFER_RUNS runs or cfg.flush_later_us
 * have passed since it became non-empty; it is then drained before
 * anything new (defer_runs stays at the bound until it is empty). */
static ax_actor *next_run(ax__worker *w) {
  if (w->defer_head) {
    if (w->defer_runs < AX__DEFER_RUNS &&
        ax__now_ns() - w->defer_since_ns >= (uint64_t)w->sys->cfg.flush_later_us * 1000)
      w->defer_runs = AX__DEFER_RUNS;
    if (w->defer_runs >= AX__DEFER_RUNS) return defer_pop(w);
  }
  return next_local(w);
}

/* What a thief takes from victim v in one search round: the older half of
 * its ring once the victim has left the entries we watch there for this
 * thief's steal_wait (0 unless steals stopped paying; see steal_paid), and
 * what it is about to run itself (its LIFO and yield slots, and the ring
 * regardless of steal_wait) once it has stayed in one run (its tick
 * unchanged) for AX__STALL_NS: the actor would otherwise wait for that
 * whole run (a producer sending a long burst to an idle consumer). */
static ax_actor *steal_from(ax__worker *w, ax__worker *v) {
  /* acquire: as steal_into's own reads of the same words, and for the
   * slots as the CASes below, whose expected values these are */
  uint32_t head = lo32(atomic_load_explicit(&v->head, memory_order_acquire));
  uint32_t tail = atomic_load_explicit(&v->tail, memory_order_acquire);
  ax_actor *l = atomic_load_explicit(&v->lifo, memory_order_acquire);
  ax_actor *y = atomic_load_explicit(&v->yield, memory_order_acquire);
  /* relaxed: a hint; due_steal decides under the lock */
  uint32_t due = atomic_load_explicit(&v->due_n, memory_order_relaxed);
  if (head == tail && !l && !y && !due) return NULL;
  /* relaxed: a progress hint; a stale tick only delays a stall's verdict */
  uint32_t tick = atomic_load_explicit(&v->tick, memory_order_relaxed);
  uint64_t now = ax__now_ns();
  if (w->watch_victim != v->index) {
    w->watch_victim = v->index;
    w->watch_tail = tail;
    w->watch_tick = tick;
    w->watch_rounds = 0;
    w->ring_since = w->tick_since = now;
  }
  if ((int32_t)(head - w->watch_tail) >= 0) { /* v took what we watched */
    w->watch_tail = tail;
    w->ring_since = now;
  }
  if (tick != w->watch_tick) {
    w->watch_tick = tick;
    w->tick_since = now;
    w->watch_rounds = 0;
  }
  bool stalled = ++w->watch_rounds >= AX__STALL_ROUNDS || now - w->tick_since >= AX__STALL_NS;
  ax_actor *a;
  bool aged = stalled || now - w->ring_since >= w->steal_wait;
  /* Its due list as its ring, into ours, but only when its ring has
   * nothing: taking the ring's actors is what spreads the work over the
   * workers (a thief that preferred the due list kept taking expiry
   * receivers while every setter of `axon_bench timers` stayed on the
   * other worker: half the set rate). */
  if ((head != tail && aged && (a = steal_into(v, w, &w->stole_n))) ||
      (due && aged && (w->stole_n = due_steal(v, w)) && (a = due_pop(w)))) {
    w->watch_victim = UINT32_MAX;
    w->stole_at = now;
    return a;
  }
  if (!stalled) return NULL;
  /* acq_rel: on success we own the actor and see the scheduler's writes. */
  if (l && atomic_compare_exchange_strong_explicit(&v->lifo, &l, NULL, memory_order_acq_rel,
                                                   memory_order_relaxed))
    return l;
  if (y && atomic_compare_exchange_strong_explicit(&v->yield, &y, NULL, memory_order_acq_rel,
                                                   memory_order_relaxed))
    return y;
  return NULL;
}

/* Called when w runs out of local work after a ring steal: did the stolen
 * actors keep it busy for AX__STEAL_PAYS_NS? If so the next steal is
 * immediate again; if not, the next one waits twice as long (up to
 * AX__STEAL_WAIT_MAX_NS) for the victim's ring to age, so that a worker
 * that keeps up with its own short runs keeps them. */
_Atomic uint32_t ax__sched_steal_pays_ns = AX__STEAL_PAYS_NS;

static void steal_paid(ax__worker *w) {
  uint64_t busy = ax__now_ns() - w->stole_at;
  w->stole_at = 0;
  uint64_t was = w->steal_wait;
  /* relaxed: a tunable the tests set before the workers start */
  uint32_t pays = atomic_load_explicit(&ax__sched_steal_pays_ns, memory_order_relaxed);
  if (busy >= (uint64_t)w->stole_n * pays) {
    w->steal_wait = 0;
  } else {
    uint64_t next = was ? 2 * was : AX__STEAL_WAIT_MIN_NS;
    w->steal_wait = next < AX__STEAL_WAIT_MAX_NS ? next : AX__STEAL_WAIT_MAX_NS;
  }
  /* relaxed: num_patient is a hint for notify_parked_local */
  if (!was && w->steal_wait)
    atomic_fetch_add_explicit(&w->sys->num_patient, 1, memory_order_relaxed);
  else if (was && !w->steal_wait)
    atomic_fetch_sub_explicit(&w->sys->num_patient, 1, memory_order_relaxed);
}

/* A reactor tick (runs on whoever drives, once per pass, under the
 * reactor's drive lock: tick_seen is the ticks' own). While some worker is
 * patient, a parked one is not woken by the rings' owners for every push
 * (notify_parked_local) and does not recheck the rings when it parks, so
 * work queued behind one long run could wait for the whole run. The tick
 * wakes a sleeper when a worker with queued work has not started a run
 * since the previous pass, and keeps passes at most a millisecond apart
 * meanwhile; woken, the sleeper finds the victim stalled (steal_from). */
static int sched_tick(void *arg) {
  ax_system *sys = arg;
  /* relaxed: a hint, as in notify_parked_local */
  if (!atomic_load_explicit(&sys->num_patient, memory_order_relaxed) &&
      atomic_load_explicit(&sys->solo, memory_order_relaxed) == AX__SOLO_NONE)
    return -1;
  bool stuck = false, moved = false;
  /* relaxed: a hint (see the field) */
  uint32_t solo = atomic_load_explicit(&sys->solo, memory_order_relaxed);
  for (uint32_t i = 0; i < sys->nalloc; i++) {
    ax__worker *v = &sys->workers[i];
    /* relaxed: a progress hint; a stale value delays the wake by a pass */
    uint32_t tick = atomic_load_explicit(&v->tick, memory_order_relaxed);
    /* A solo worker also owns the inject queue (the others leave it). */
    if (tick == v->tick_seen &&
        (local_work(v) ||
         (i == solo && atomic_load_explicit(&sys->inject_len, memory_order_relaxed))))
      stuck = true;
    moved |= tick != v->tick_seen;
    v->tick_seen = tick;
  }
  if (stuck) notify_parked(sys);
  /* Nothing ran since the last pass and nothing waits: an idle system. A
   * solo phase ends here (no worker runs to judge it, and its ticks would
   * wake the driver every millisecond for as long as the system idles);
   * the next probe starts from all workers. relaxed: as par_set_solo. */
  if (solo != AX__SOLO_NONE && !moved && !stuck &&
      /* relaxed: a test knob, set before the workers start */
      atomic_load_explicit(&ax__sched_par_mode, memory_order_relaxed) != AX__PAR_MODE_SOLO)
    atomic_compare_exchange_strong_explicit(&sys->solo, &solo, AX__SOLO_NONE,
                                            memory_order_relaxed, memory_order_relaxed);
  return 1;
}

/* Is worker i parked (on the sleepers' list)? */
static bool is_sleeper(ax_system *sys, uint32_t i) {
  bool found = false;
  pthread_mutex_lock(&sys->idle_lock);
  for (uint32_t k = 0; k < sys->nsleepers && !found; k++) found = sys->sleepers[k] == i;
  pthread_mutex_unlock(&sys->idle_lock);
  return found;
}

/* Left out of a solo phase (sys->solo == solo, another worker o): takes
 * the phase over when o is stuck (its tick unchanged for
 * AX__SOLO_TAKEOVER_NS: a long run, or its thread preempted on a loaded
 * machine; sched_tick wakes us while o sits on queued work) or parked
 * while we were woken for work (a notifier wakes whichever worker parked
 * last). o gives us its queues when it next picks (solo_shed). A single
 * worker waits for a long run as long as it lasts; this one waits at most
 * the takeover time, and is otherwise one worker. */
static void solo_takeover(ax__worker *w, uint32_t solo) {
  ax_system *sys = w->sys;
  ax__worker *o = &sys->workers[solo];
  /* relaxed: a progress hint, as in steal_from */
  uint32_t tick = atomic_load_explicit(&o->tick, memory_order_relaxed);
  uint64_t now = ax__now_ns();
  bool woken = w->solo_woken;
  w->solo_woken = false;
  if (tick != w->solo_tick || !w->solo_since) {
    w->solo_tick = tick;
    w->solo_since = now;
  }
  bool stuck = now - w->solo_since >= AX__SOLO_TAKEOVER_NS;
  if (!stuck && !(woken && is_sleeper(sys, solo))) return;
  /* relaxed: as par_set_solo; a lost race leaves another's newer choice */
  if (atomic_compare_exchange_strong_explicit(&sys->solo, &solo, w->index, memory_order_relaxed,
                                              memory_order_relaxed))
    w->solo_since = 0;
}

static ax_actor *search(ax__worker *w) {
  ax_system *sys = w->sys;
  ax_actor *a = NULL;
  /* relaxed: a hint (see the field) */
  uint32_t solo = atomic_load_explicit(&sys->solo, memory_order_relaxed);
  if (AX_UNLIKELY(solo != AX__SOLO_NONE && solo != w->index && solo < sys->nworkers)) {
    solo_takeover(w, solo);
    if (solo_other(w)) return NULL;
  }
  if (sys->nworkers > 1 && start_searching(w)) {
    uint32_t start = rng_next(w) % sys->nworkers;
    for (uint32_t i = 0; i < sys->nworkers && !a; i++) {
      ax__worker *v = &sys->workers[(start + i) % sys->nworkers];
      if (v != w && (a = steal_from(w, v)))
        atomic_fetch_add_explicit(&w->steals, 1, memory_order_relaxed);
    }
  }
  if (!a) a = inject_pop(sys);
  return a;
}

/* A quiet streak may go on: its first re-run starts the clock, and
 * AX__QUIET_NS ends it. */
static inline bool quiet_young(ax__worker *w) {
  return streak_young(w->quiet_runs == 0, &w->quiet_since, AX__QUIET_NS);
}

static void run_one(ax__worker *w, ax_actor *a) {
  /* A worker that found work by any path (woken, inject, steal) stops
   * counting as searching before it runs it; a stale searcher count would
   * keep notify_parked from waking anyone while this behaviour runs. */
  if (w->searching) leave_searching(w, true);
  atomic_store_explicit(&w->running, a->pid, memory_order_relaxed);
  /* relaxed load and store, not an RMW: only this worker writes runs
   * (readers want a recent count, not an exact one; a locked add per run
   * was one of the run's few RMWs). */
  atomic_store_explicit(&w->runs, atomic_load_explicit(&w->runs, memory_order_relaxed) + 1,
                        memory_order_relaxed);
  if (w->defer_head) w->defer_runs++;
  uint32_t wakes = w->wakes;
  ax__run_result r = AX_UNLIKELY(a->obox == AX__OBOX_HINTED) ? ax__actor_run_stream(a)
                                                              : ax__actor_run(a);
  atomic_store_explicit(&w->running, 0, memory_order_relaxed);
  /* A run that ended with work left and woke nobody: the next one streams
   * (actor.c, "the outbox"). `a` is still ours here (nobody else
   * schedules it). */
  if (r == AX__RUN_AGAIN && w->wakes == wakes) {
    uint8_t o = a->obox;
    if (o == AX__OBOX_OFF) a->obox = AX__OBOX_HINTED;
    else if (o >= AX__OBOX_COOL_MIN && o != AX__OBOX_WIDE) /* cooling off */
      a->obox = o == AX__OBOX_COOL_MIN ? AX__OBOX_OFF : o - 1;
  }
  if (r == AX__RUN_DEFER) defer_push(w, a);
  if (r == AX__RUN_AGAIN && AX_UNLIKELY(ax__tls_ctx.expiries) && ax__actor_next_due(a)) {
    /* Its next message is a due expiry (a receiver that passes kept
     * feeding while it ran): the due list's back, with the others due.
     * Through the LIFO slot, a due run that ended with work left pushed
     * it out to the ring's back (behind `axon_bench timers`' setters:
     * receivers seen 4,700 runs and 60-90 ms later); and after its extra
     * run it went to the yield slot, which waits for the whole ring. */
    due_append(w, a, a, 1);
  } else if (r == AX__RUN_AGAIN && w->wakes == wakes && w->quiet_runs < AX__QUIET_RUNS &&
      !ax__tls_ctx.filling && quiet_young(w)) {
    /* A quiet run: work left, and it made nobody runnable here (what it
     * sent went to actors already queued, or to itself). Running it again
     * at once keeps the order it would get anyway (the actors it feeds are
     * queued already and wait either way) and gives them their mail in
     * larger batches: fjthrput's producer used to yield after two rounds
     * of 60 sends, so its consumers took ~2 messages a run. Not when the
     * run took a bounded lane past a quarter of its limit (ctx.filling: running
     * again would fill it and mute us; count's producer). Bounded by
     * AX__QUIET_RUNS re-runs, and AX__QUIET_NS, until the ring next gives
     * this worker an actor (next_local), so the ring is never held back for
     * long (timers' 1M burst: receivers woken by expiries waited behind
     * setters re-run 8 times, 0.3 ms each, p99 lateness 155 ms). Through
     * the LIFO slot as below, outside its cap (lifo_runs). */
    w->quiet_runs++;
    w->lifo_runs = 0;
    /* acq_rel: as the exchanges below */
    ax_actor *prev = atomic_exchange_explicit(&w->lifo, a, memory_order_acq_rel);
    if (prev) ring_push_back(w, prev);
  } else if (r == AX__RUN_AGAIN) {
    /* Work left (the budget, or mail that came during the run): run it
     * again at once, through the LIFO slot, ahead of what its run woke, up
     * to AX__AGAIN_RUNS times in a row (docs/ARCHITECTURE.md, "Scheduler
     * notes"); the actor it displaces goes to the ring. acq_rel: release
     * hands a's state to whoever takes the slot next (this worker or a
     * thief's CAS in steal_from); acquire: prev's, from whoever put it. */
    if (w->lifo_runs < AX__AGAIN_RUNS) {
      ax_actor *prev = atomic_exchange_explicit(&w->lifo, a, memory_order_acq_rel);
      if (prev) ring_push_back(w, prev);
    } else {
      /* relaxed: our own ring's tail (only we write it) */
      w->yield_after = atomic_load_explicit(&w->tail, memory_order_relaxed);
      /* acq_rel: as the LIFO slot's exchange above */
      ax_actor *prev = atomic_exchange_explicit(&w->yield, a, memory_order_acq_rel);
      if (prev) ring_push_back(w, prev);
    }
  }
  /* IDLE: unscheduled; MUTED: parked on a receiver; DEAD: freed; DEFER:
   * on the deferred list. */
}

/* ---- the parallelism probe ----
 *
 * Fine-grained message passing across cores can cost more than the second
 * core gives: on the 2-vCPU VM this was measured on, every cache line that
 * crosses costs ~100-400 ns, and fjthrput and big, whose runs take 40-100
 * ns a message, ran slower on two workers than on one (big: up to 2.7 s of
 * CPU for 12M messages against 0.44 s, depending on where the host put the
 * vCPUs). Whether parallel runs pay depends on the workload and on the
 * machine at that moment, so the scheduler measures it, as a bandit: a
 * probe runs all workers for AX__PAR_PROBE_NS and, when one worker was
 * saturated (the workers busy, not parked, for more than 1.02 workers'
 * worth), one worker alone (a solo phase) for as long, each after a
 * warm-up; the system's message rate (sends per ns, every worker's and
 * outside threads') decides which mode holds for the next long phase: all
 * workers only if they reach AX__PAR_GAIN_PCT of one's rate. A light load
 * never leaves all workers. In a solo phase the other workers give their
 * queued actors to the inject queue (solo_shed), neither steal nor take
 * from the inject queue, and are not woken for the solo worker's pushes;
 * one of them takes the phase over when the solo worker is stuck for
 * AX__SOLO_TAKEOVER_NS (sched_tick wakes it) or parked while it was woken
 * (solo_takeover), so no work waits long for a worker that does not run.
 * Judged by whoever sees the phase end first (a try-lock; the phase state
 * is the lock holder's). The rate is a hint, measured on a machine shared
 * with other work: a bad sample costs one long phase in the wrong mode (16
 * ms after a change of verdict), and the next probe corrects it. */
enum {
  AX__PAR_ALL_WARM,
  AX__PAR_ALL_PEEK, /* AX__PAR_PEEK_NS into the all-workers probe */
  AX__PAR_ALL,
  AX__PAR_SOLO_WARM,
  AX__PAR_SOLO,
  AX__PAR_LONG
};

/* Messages sent so far, system-wide. relaxed: counters, read once per
 * phase; a value a few sends old only blurs the rate. */
static uint64_t par_sent(ax_system *sys) {
  uint64_t n = atomic_load_explicit(&sys->sent, memory_order_relaxed);
  for (uint32_t i = 0; i < sys->nworkers; i++)
    n += atomic_load_explicit(&sys->workers[i].sent, memory_order_relaxed);
  return n;
}

/* Time the workers spent parked so far (ns, summed). relaxed: a park that
 * ends between the two loads may count twice, which understates contention
 * and keeps all workers running (the old rule); never worse. */
static uint64_t par_parked(ax_system *sys, uint64_t now) {
  uint64_t t = 0;
  for (uint32_t i = 0; i < sys->nworkers; i++) {
    ax__worker *v = &sys->workers[i];
    uint64_t since = atomic_load_explicit(&v->park_since, memory_order_relaxed);
    t += atomic_load_explicit(&v->parked_ns, memory_order_relaxed);
    if (since && now > since) t += now - since;
  }
  return t;
}

static void par_begin(ax_system *sys, uint32_t phase, uint64_t len, uint64_t now) {
  sys->par.phase = phase;
  sys->par.start_ns = now;
  sys->par.start_sent = par_sent(sys);
  sys->par.start_parked = par_parked(sys, now);
  /* relaxed: a hint for par_check; the step rechecks under the lock */
  atomic_store_explicit(&sys->par.next_ns, now + len, memory_order_relaxed);
}

static void par_set_solo(ax_system *sys, uint32_t owner) {
  /* relaxed: a hint (see the field); what a worker left out queued is
   * handed over through the inject queue's lock, and a missed change
   * costs one pick */
  uint32_t was = atomic_exchange_explicit(&sys->solo, owner, memory_order_relaxed);
  if (owner == AX__SOLO_NONE && was != AX__SOLO_NONE) notify_parked(sys); /* steal again */
}

static void par_verdict(ax_system *sys, bool solo, uint32_t owner, uint64_t now) {
  uint64_t len = sys->par.long_ns;
  if (len && solo == (sys->par.verdict != 0))
    len = 2 * len < AX__PAR_LONG_MAX_NS ? 2 * len : AX__PAR_LONG_MAX_NS;
  else
    len = AX__PAR_LONG_MIN_NS;
  sys->par.long_ns = len;
  sys->par.verdict = solo;
  /* relaxed: statistics */
  atomic_fetch_add_explicit(solo ? &sys->par.solo_phases : &sys->par.all_phases, 1,
                            memory_order_relaxed);
  par_set_solo(sys, solo ? owner : AX__SOLO_NONE);
  if (solo) sys->par.owner = owner;
  par_begin(sys, AX__PAR_LONG, len, now);
}

_Atomic uint32_t ax__sched_par_mode = AX__PAR_MODE_PROBE;

static void par_step(ax__worker *w, uint64_t now) {
  ax_system *sys = w->sys;
  uint64_t dt = now - sys->par.start_ns;
  /* relaxed: a test knob, set before the workers start */
  uint32_t mode = atomic_load_explicit(&ax__sched_par_mode, memory_order_relaxed);
  if (mode == AX__PAR_MODE_SOLO || mode == AX__PAR_MODE_ALL) { /* the tests' fixed modes */
    par_set_solo(sys, mode == AX__PAR_MODE_SOLO ? 0 : AX__SOLO_NONE);
    atomic_store_explicit(&sys->par.next_ns, UINT64_MAX, memory_order_relaxed);
    return;
  }
  /* The last solo worker again, if any: its caches hold the actors. */
  uint32_t owner = sys->par.owner != AX__SOLO_NONE ? sys->par.owner : w->index;
  switch (sys->par.phase) {
  case AX__PAR_ALL_WARM:
    par_begin(sys, AX__PAR_ALL_PEEK, AX__PAR_PEEK_NS, now);
    break;
  case AX__PAR_ALL_PEEK:
  case AX__PAR_ALL: {
    uint64_t parked = par_parked(sys, now) - sys->par.start_parked;
    uint64_t all = dt * sys->nworkers;
    sys->par.all_sent = par_sent(sys) - sys->par.start_sent;
    sys->par.all_ns = dt ? dt : 1;
    /* busy < 1.02 workers: no worker was saturated, so one worker would
     * deliver the same (a light load): nothing to judge */
    if (parked > all || 50 * (all - parked) < 51 * dt) {
      par_verdict(sys, false, AX__SOLO_NONE, now);
      break;
    }
    if (sys->par.phase == AX__PAR_ALL_PEEK) {
      /* Under half the last solo probe's rate after AX__PAR_PEEK_NS: all
       * workers lose by far (fjthrput's consumers shredded across the
       * cores ran at a fifth of it), so the rest of the probe would only
       * cost; the verdict is solo at once. */
      if (sys->par.solo_ns && (double)sys->par.all_sent * (double)sys->par.solo_ns * 2.0 <
                                  (double)sys->par.solo_sent * (double)dt) {
        par_verdict(sys, true, owner, now);
        break;
      }
      sys->par.phase = AX__PAR_ALL; /* the same span, measured to its end */
      /* relaxed: as in par_begin */
      atomic_store_explicit(&sys->par.next_ns, sys->par.start_ns + AX__PAR_PROBE_NS,
                            memory_order_relaxed);
      break;
    }
    par_set_solo(sys, owner);
    par_begin(sys, AX__PAR_SOLO_WARM, AX__PAR_WARM_NS, now);
    break;
  }
  case AX__PAR_SOLO_WARM:
    par_begin(sys, AX__PAR_SOLO, AX__PAR_PROBE_NS, now);
    break;
  case AX__PAR_SOLO: {
    uint64_t sent = par_sent(sys) - sys->par.start_sent;
    sys->par.solo_sent = sent;
    sys->par.solo_ns = dt ? dt : 1;
    /* all_sent / all_ns >= GAIN% of sent / dt, without a division */
    bool all = (double)sys->par.all_sent * (double)dt * 100.0 >=
               (double)sent * (double)sys->par.all_ns * AX__PAR_GAIN_PCT;
    /* relaxed: our own store, in par_step under the lock */
    par_verdict(sys, !all, atomic_load_explicit(&sys->solo, memory_order_relaxed), now);
    break;
  }
  default: /* the long phase ended: probe again */
    par_set_solo(sys, AX__SOLO_NONE);
    par_begin(sys, AX__PAR_ALL_WARM, AX__PAR_WARM_NS, now);
    break;
  }
}

/* Called once per AX__PAR_CHECK_MASK + 1 picks of a worker with work. */
static void par_check(ax__worker *w) {
  ax_system *sys = w->sys;
  uint64_t now = ax__now_ns();
  /* relaxed: a hint; rechecked under the lock */
  if (now < atomic_load_explicit(&sys->par.next_ns, memory_order_relaxed)) return;
  /* acquire: the phase state the previous holder wrote before its release */
  if (atomic_exchange_explicit(&sys->par.lock, true, memory_order_acquire)) return;
  /* relaxed: written under the lock we hold */
  if (now >= atomic_load_explicit(&sys->par.next_ns, memory_order_relaxed)) par_step(w, now);
  /* release: hands the phase state to the next holder */
  atomic_store_explicit(&sys->par.lock, false, memory_order_release);
}

/* Left out of a solo phase: hands our LIFO slot, yield slot and ring to
 * the inject queue, where the solo worker takes them (every
 * AX__INJECT_INTERVAL picks, and whenever its own queues are empty). Our
 * due list (timer wakes) and deferred flushes stay: we run those. */
static void solo_shed(ax__worker *w) {
  /* relaxed: our own slots and ring (only a thief's CAS empties them
   * besides us; the exchanges and ring_pop decide) */
  if (!atomic_load_explicit(&w->lifo, memory_order_relaxed) &&
      !atomic_load_explicit(&w->yield, memory_order_relaxed) &&
      lo32(atomic_load_explicit(&w->head, memory_order_relaxed)) ==
          atomic_load_explicit(&w->tail, memory_order_relaxed))
    return;
  ax_actor *first = NULL, *last = NULL, *a;
  size_t n = 0;
  /* acq_rel: as next_queued's exchanges of the same slots */
  ax_actor *slots[2] = {atomic_exchange_explicit(&w->yield, NULL, memory_order_acq_rel),
                        atomic_exchange_explicit(&w->lifo, NULL, memory_order_acq_rel)};
  for (int k = 0; k < 2; k++)
    if (slots[k]) {
      ax__runq_append(&first, &last, slots[k], slots[k]);
      n++;
    }
  while ((a = ring_pop(w))) {
    ax__runq_append(&first, &last, a, a);
    n++;
  }
  if (!n) return;
  inject_push_batch(w->sys, first, last, n);
  notify_parked(w->sys); /* the solo worker, if it parked */
}

static void *worker_main(void *arg) {
  ax__worker *w = arg;
  ax_system *sys = w->sys;
  ax__tls_ctx.worker = w;
  ax__msg_cache_enable();
  ax__qs_online(w);
  /* Set once a spin ran out into the deferred flushes; until other work
   * turns up, the spin before parking is one round (it was just done). */
  bool spun = false;
  while (!atomic_load_explicit(&sys->stop_workers, memory_order_acquire)) {
    ax__qs_point(w); /* between two runs: no send under way here */
    ax_actor *a = next_run(w);
    /* Timers due in any shard are fired by whoever gets there first: a
     * worker between runs or before it searches or parks, or the reactor. */
    if (!a && ax__timers_poll(sys, true)) a = next_local(w);
    /* Search a little before parking: while this worker counts as
     * searching nobody wakes a parked one, so work that arrives within the
     * spin costs no futex round trip (producer/consumer pairs hit this all
     * the time). The spin is bounded (~tens of µs), so an idle system still
     * parks and uses no CPU. */
    if (!a && w->stole_at) steal_paid(w);
    unsigned rounds = spun ? 1 : AX__SPIN_ROUNDS;
    for (unsigned spin = 0; !a && spin < rounds; spin++) {
      a = search(w);
      /* Left out of a solo phase: one look (solo_takeover), then park.
       * The full spin, reading the solo worker's lines every round, took
       * 15% of a core and slowed its pushes (fjthrput). */
      if (!a && AX_UNLIKELY(solo_other(w))) break;
      if (!a && spin + 1 < rounds) {
        for (int k = 0; k < 16; k++) ax__cpu_relax();
        /* Socket readiness that arrives while we search is ours at once
         * (a non-blocking pass, if nobody drives), rather than at the
         * park that ends the spin. */
        if (spin % AX__POLL_EVERY == AX__POLL_EVERY - 1 && sys->reactor) {
          if (ax__reactor_poll(sys->reactor) && local_work(w)) leave_searching(w, false);
          /* Deferred flushes wait for input that is already there (what
           * this poll brought: the rest of a wave), not for input still to
           * come: when it brought nothing, they go out now. */
          else if (w->defer_head) break;
        }
        a = next_local(w);
      }
    }
    /* Deferred flushes wait out the search, up to the first reactor poll
     * that brings nothing: what a thief steals and input that is already
     * waiting join them, as Linux's autocorking holds small writes only
     * while more is in the pipe; input still to come is not waited for
     * (a publisher paced by its replies would make every flush wait the
     * whole flush_later_us: 1 subscriber, window 1, p50 136 us against
     * 74 us this way and redis's 55). */
    if (a) spun = false;
    else if (w->defer_head) {
      a = defer_pop(w);
      spun = true;
    }
    if (a) {
      run_one(w, a);
      /* relaxed: our own counter */
      uint32_t tick = atomic_load_explicit(&w->tick, memory_order_relaxed);
      bool t16 = (tick & 15) == 0;
      ax__timers_poll(sys, t16);
      if (AX_UNLIKELY(t16)) ax__qs_tick(w);
      /* The probe's clock, and a solo phase that leaves us out, once per
       * AX__PAR_CHECK_MASK + 1 picks: a test per pick cost ~7 instructions
       * a message (pingpong, callgrind). Until we see it we run what we
       * have, as before the phase. */
      if (AX_UNLIKELY(t16) && (tick & AX__PAR_CHECK_MASK) == 0 && sys->nworkers > 1) {
        par_check(w);
        if (solo_other(w)) solo_shed(w);
      }
      continue;
    }
    if (ax__timers_poll(sys, true)) continue; /* a timer came due while searching */
    /* Offline before the park: the reclaim it runs may destroy actors whose
     * unmuted senders or drained signals make actors runnable here (a
     * patient worker's park rechecks only the inject queue, and parked
     * with them in its LIFO slot: sup.names hung under TSan). */
    ax__qs_offline(w);
    if (local_work(w)) {
      ax__qs_online(w);
      continue;
    }
    park(w);
  }
  ax__qs_offline(w);
  ax__tls_ctx.worker = NULL;
  ax__obox_free(&ax__tls_ctx);
  ax__msg_cache_flush();
  return NULL;
}

void ax__schedule(ax_system *sys, ax_actor *a) {
  ax__worker *w = ax__tls_ctx.worker;
  if (w && w->sys == sys) {
    w->wakes++;
    ax_actor *prev = atomic_exchange_explicit(&w->lifo, a, memory_order_acq_rel);
    if (!prev) return;
    ring_push_back(w, prev);
    notify_parked_local(w);
    return;
  }
  inject_push(sys, a);
  notify_parked(sys);
}

void ax__schedule_many(ax_system *sys, ax_actor *first, ax_actor *last, size_t n) {
  if (!n) return;
  inject_push_batch(sys, first, last, n);
  notify_parked(sys);
  if (n > 1) notify_parked(sys); /* enough work for a second worker */
}

void ax__schedule_back(ax_system *sys, ax_actor *a) {
  ax__worker *w = ax__tls_ctx.worker;
  if (w && w->sys == sys) {
    w->wakes++;
    ring_push_back(w, a);
    notify_parked_local(w);
  } else {
    inject_push(sys, a);
    notify_parked(sys);
  }
}

void ax__schedule_due(ax_system *sys, ax_actor *first, ax_actor *last, size_t n) {
  ax__worker *w = ax__tls_ctx.worker;
  if (!n) return;
  if (!(w && w->sys == sys)) {
    ax__schedule_many(sys, first, last, n);
    return;
  }
  w->wakes += (uint32_t)n;
  due_append(w, first, last, (uint32_t)n);
  notify_parked_local(w);
}

ax_actor *ax__sched_take(ax__worker *w) {
  /* relaxed: deterministic mode, one thread */
  ax_actor *a = atomic_load_explicit(&w->due_n, memory_order_relaxed) ? due_pop(w) : NULL;
  if (!a) a = atomic_exchange_explicit(&w->lifo, NULL, memory_order_relaxed);
  /* relaxed: deterministic mode, one thread (as the LIFO slot above) */
  if (!a) a = atomic_exchange_explicit(&w->yield, NULL, memory_order_relaxed);
  if (!a) a = ring_pop(w);
  if (!a) a = inject_pop(w->sys);
  return a;
}

ax_err ax__sched_start(ax_system *sys) {
  uint32_t n = sys->cfg.workers;
  sys->sleepers = ax__alloc(sizeof(uint32_t) * n);
  sys->workers = ax__alloc_aligned(sizeof(ax__worker) * n, 128);
  if (!sys->workers || !sys->sleepers) return AX_ENOMEM;
  memset(sys->workers, 0, sizeof(ax__worker) * n);
  for (uint32_t i = 0; i < n; i++) {
    ax__worker *w = &sys->workers[i];
    w->sys = sys;
    w->index = i;
    w->rng = 0x9E3779B97F4A7C15ull * (i + 1);
    w->watch_victim = UINT32_MAX;
    pthread_mutex_init(&w->park_lock, NULL);
    pthread_cond_init(&w->park_cv, NULL);
    pthread_mutex_init(&w->due_lock, NULL);
    atomic_store_explicit(&w->qs_seen, AX__QS_OFFLINE, memory_order_relaxed);
  }
  sys->nalloc = n;
  atomic_store(&sys->solo, AX__SOLO_NONE);
  sys->par.owner = AX__SOLO_NONE;
  if (sys->det) return AX_OK; /* no thread: the driving thread is worker 0 */
  if (n > 1 && sys->reactor) {
    ax_err e = ax__reactor_add_tick(sys->reactor, sched_tick, sys);
    if (e != AX_OK) return e;
  }
  sys->nworkers = n;
  atomic_store(&sys->num_unparked, n);
  sys->par.phase = AX__PAR_ALL_WARM;
  atomic_store(&sys->par.next_ns, ax__now_ns() + AX__PAR_WARM_NS);
  uint32_t mode = atomic_load(&ax__sched_par_mode);
  if (n > 1 && (mode == AX__PAR_MODE_SOLO || mode == AX__PAR_MODE_SOLO_START))
    atomic_store(&sys->solo, 0);
  for (uint32_t i = 0; i < n; i++) {
    sys->workers[i].start_ns = ax__now_ns();
    if (pthread_create(&sys->workers[i].thread, NULL, worker_main, &sys->workers[i]) != 0) {
      sys->nworkers = i; /* stop joins only the ones that started */
      return AX_ESYS;
    }
  }
  return AX_OK;
}

void ax__sched_stop(ax_system *sys) {
  if (!sys->workers) return;
  atomic_store_explicit(&sys->stop_workers, true, memory_order_seq_cst);
  ax__reactor_wake(sys->reactor); /* a worker driving the reactor */
  for (uint32_t i = 0; i < sys->nworkers; i++) {
    ax__worker *w = &sys->workers[i];
    pthread_mutex_lock(&w->park_lock);
    pthread_cond_signal(&w->park_cv);
    pthread_mutex_unlock(&w->park_lock);
  }
  for (uint32_t i = 0; i < sys->nworkers; i++) pthread_join(sys->workers[i].thread, NULL);
  ax__qs_drain(sys); /* every worker offline: what still waits goes now */
}

void ax__sched_free(ax_system *sys) {
  uint32_t n = sys->cfg.workers;
  if (sys->workers) {
    for (uint32_t i = 0; i < sys->nalloc; i++) {
      pthread_mutex_destroy(&sys->workers[i].park_lock);
      pthread_mutex_destroy(&sys->workers[i].due_lock);
      pthread_cond_destroy(&sys->workers[i].park_cv);
    }
    ax__free_aligned(sys->workers, sizeof(ax__worker) * n, 128);
  }
  ax__free(sys->sleepers, sizeof(uint32_t) * n);
}
