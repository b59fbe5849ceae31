/* Axon: deferred destroys (qsbr.h). One batch at a time waits out its
 * grace period: a reclaimer takes every retired actor from the limbo stack,
 * bumps the epoch, and the batch is destroyed once every other online
 * worker has acknowledged that epoch (or is offline). The thread that
 * reclaims is itself outside any send, so it does not wait for itself. */
#include "actor/qsbr.h"

#include <pthread.h>
#include <sched.h>
#include <time.h>

#include "actor/actor.h"

void ax__actor_destroy(ax_actor *a); /* actor.c */

void (*_Atomic ax__qs_test_hook)(ax__worker *w, int where);

static void test_hook(int where) {
  /* relaxed: tests set it before the workers could call it */
  void (*hook)(ax__worker *, int) = atomic_load_explicit(&ax__qs_test_hook, memory_order_relaxed);
  if (AX_UNLIKELY(hook != NULL)) hook(ax__ctx_get()->worker, where);
}

/* True when every online worker of sys but the caller has acknowledged e. */
static bool grace_over(ax_system *sys, uint64_t e) {
  ax__worker *self = ax__ctx_get()->worker;
  /* seq_cst: the Dekker pair with ax__qs_online's store and fence: either
   * this load sees the waking worker online (and waits for it), or that
   * worker's slot loads see the kills of the batch. */
  atomic_thread_fence(memory_order_seq_cst);
  for (uint32_t i = 0; i < sys->nworkers; i++) {
    ax__worker *w = &sys->workers[i];
    if (w == self) continue;
    /* acquire: pairs with the acknowledgement's release (qsbr.h) */
    uint64_t s = atomic_load_explicit(&w->qs_seen, memory_order_acquire);
    if (s != AX__QS_OFFLINE && s < e) return false;
  }
  return true;
}

static void destroy_list(ax_actor *a) {
  while (a) {
    ax_actor *next = a->run_next;
    ax__actor_destroy(a);
    a = next;
  }
}

/* The reclaim under qs_lock. Every change a grace period waits for (an
 * acknowledgement, a worker going offline, a retire) is followed by a
 * reclaim that waits for the lock, so the last of them judges after all
 * the others: with a try-lock two workers parking at once could each find
 * the other still online, lose the lock to it, and leave the batch (and
 * shutdown, which waits for the live count) waiting for ever (CI, TSan:
 * sup.names hung). */
static void reclaim_locked(ax_system *sys) {
  for (;;) {
    if (sys->qs_wait) {
      if (!grace_over(sys, sys->qs_wait_epoch)) {
        test_hook(AX__QS_HOOK_WAITING);
        break;
      }
      ax_actor *done = sys->qs_wait;
      sys->qs_wait = NULL;
      destroy_list(done);
      sys->qs_batches++;
    }
    /* acquire: the retirers' pushes (and the kills before them) */
    ax_actor *batch = atomic_exchange_explicit(&sys->qs_limbo, NULL, memory_order_acq_rel);
    if (!batch) {
      /* Nothing waits: clear the hint, then look again (a retire between
       * the exchange and the clear set it after its push, or its push is
       * seen here). seq_cst: pairs with ax__qs_retire's. */
      atomic_store_explicit(&sys->qs_pending, 0, memory_order_seq_cst);
      if (!atomic_load_explicit(&sys->qs_limbo, memory_order_seq_cst)) break;
      atomic_store_explicit(&sys->qs_pending, 1, memory_order_relaxed);
      continue;
    }
    sys->qs_wait = batch;
    /* seq_cst (release at least): a worker that acquires the new epoch
     * sees the batch's kills in its later slot loads. */
    sys->qs_wait_epoch = atomic_fetch_add_explicit(&sys->qs_epoch, 1, memory_order_seq_cst) + 1;
  }
}

void ax__qs_reclaim(ax_system *sys) {
  pthread_mutex_lock(&sys->qs_lock);
  reclaim_locked(sys);
  pthread_mutex_unlock(&sys->qs_lock);
}

/* Pushes the list first..last onto the limbo (the caller reclaims). */
static void limbo_push(ax_system *sys, ax_actor *first, ax_actor *last) {
  ax_actor *top = atomic_load_explicit(&sys->qs_limbo, memory_order_relaxed);
  do {
    last->run_next = top;
    /* seq_cst (release at least): the kills and everything the stops
     * wrote, for the reclaimer's exchange; the order with the hint's store
     * below pairs with the reclaim's clear-then-look */
  } while (!atomic_compare_exchange_weak_explicit(&sys->qs_limbo, &top, first,
                                                  memory_order_seq_cst, memory_order_relaxed));
  atomic_store_explicit(&sys->qs_pending, 1, memory_order_seq_cst);
}

/* Hands the worker's own retired actors to the limbo; true if it had any. */
static bool flush_mine(ax__worker *w) {
  ax_actor *first = w->qs_mine, *last = first;
  if (!first) return false;
  while (last->run_next) last = last->run_next;
  w->qs_mine = NULL;
  w->qs_nmine = 0;
  limbo_push(w->sys, first, last);
  return true;
}

static void flush_and_reclaim(ax__worker *w) {
  if (flush_mine(w)) ax__qs_reclaim(w->sys);
}

void ax__qs_retire(ax_system *sys, ax_actor *a) {
  ax__ctx *c = ax__ctx_get();
  if (c->qs_sys == sys) { /* an online worker of sys: its own list first */
    ax__worker *w = c->worker;
    a->run_next = w->qs_mine; /* free to reuse: a stopped actor is never scheduled */
    if (!w->qs_mine) w->qs_age = 0;
    w->qs_mine = a;
    if (++w->qs_nmine >= AX__QS_BATCH) flush_and_reclaim(w);
    return;
  }
  limbo_push(sys, a, a);
  ax__qs_reclaim(sys);
}

void ax__qs_tick(ax__worker *w) {
  if (w->qs_mine && ++w->qs_age >= AX__QS_AGE) flush_and_reclaim(w);
  /* relaxed: a hint; only a try (a poll: the changes' own reclaims wait) */
  ax_system *sys = w->sys;
  if (atomic_load_explicit(&sys->qs_pending, memory_order_relaxed) &&
      pthread_mutex_trylock(&sys->qs_lock) == 0) {
    reclaim_locked(sys);
    pthread_mutex_unlock(&sys->qs_lock);
  }
}

void ax__qs_sync(ax_system *sys) {
  /* A batch waiting now may not hold our actors; the next one takes them
   * (with whatever was retired since). */
  pthread_mutex_lock(&sys->qs_lock);
  uint64_t start = sys->qs_batches;
  pthread_mutex_unlock(&sys->qs_lock);
  for (unsigned spins = 0;; spins++) {
    pthread_mutex_lock(&sys->qs_lock);
    reclaim_locked(sys);
    bool done = sys->qs_batches >= start + 2 ||
                (!sys->qs_wait && !atomic_load_explicit(&sys->qs_limbo, memory_order_acquire));
    pthread_mutex_unlock(&sys->qs_lock);
    if (done) return;
    if (spins < 64) sched_yield();
    else {
      struct timespec ts = {0, 50000}; /* 50 us: a worker in a long run */
      nanosleep(&ts, NULL);
    }
  }
}

void ax__qs_drain(ax_system *sys) {
  /* Every worker is offline or gone: two passes (the waiting batch, then
   * the limbo as a batch of its own) finish. */
  while (atomic_load_explicit(&sys->qs_limbo, memory_order_acquire) || sys->qs_wait)
    ax__qs_reclaim(sys);
}

void ax__qs_offline(ax__worker *w) {
  (void)flush_mine(w); /* reclaimed below, once offline */
  ax__ctx_get()->qs_sys = NULL;
  /* release: the sends so far happen before a reclaimer's acquire load */
  atomic_store_explicit(&w->qs_seen, AX__QS_OFFLINE, memory_order_release);
  /* Always, under the lock: a look at the pending hint here could be
   * ordered before the store above (store then load: a reclaimer that
   * judged meanwhile saw us online, we saw no batch, and both sides
   * parked; CI under TSan, sup.names, hung on it). The lock orders us
   * after that reclaimer, or it after us. A park is slow anyway. */
  ax__qs_reclaim(w->sys);
  test_hook(AX__QS_HOOK_OFFLINE);
}

void ax__qs_online(ax__worker *w) {
  ax_system *sys = w->sys;
  uint64_t e = atomic_load_explicit(&sys->qs_epoch, memory_order_acquire);
  w->qs_local = e;
  atomic_store_explicit(&w->qs_seen, e, memory_order_relaxed);
  /* seq_cst: the Dekker pair with grace_over: the store above is seen by a
   * reclaimer that then waits for us, or our slot loads see its kills. */
  atomic_thread_fence(memory_order_seq_cst);
  ax__ctx_get()->qs_sys = sys;
}
