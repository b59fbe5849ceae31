/* Axon: the reactor's pass, its drivers and its thread (see reactor.h).
 *
 * Who drives. A pass (ticks, reactor timers, the poller wait, handlers)
 * runs under drive_lock, so handlers stay mutually exclusive whoever runs
 * them. Two kinds of drivers take it:
 *  - standby threads (the scheduler's parking workers) with
 *    ax__reactor_drive: trylock, one blocking pass, unlock. Readiness
 *    dispatched there lands on the driving worker's own queue, so a
 *    request/response costs one wake-up (the epoll_wait return) instead
 *    of two (reactor thread, then the worker's futex).
 *  - the reactor thread, the fallback that keeps I/O and timers going when
 *    nobody else does, and the extra hand when every worker is saturated.
 *    It drives, until a standby driver asks for the lock, once a whole
 *    watch interval went by in which no pass ended (every worker inside
 *    runs that never search, or the last driver left to run work and the
 *    other standby workers sleep on their futex), or in which no worker
 *    stood by at all (none parked: saturated; the thread's reads then run
 *    beside the workers' runs). Not merely because nobody stands by at the
 *    moment it looks: a worker busy with socket work parks between its
 *    bursts, and the thread taking the lock then turned each of those into
 *    a handover (yield_req, the thread's wake-up, a futex wake of the
 *    parked worker): one worker's pub/sub broker under redis-benchmark's
 *    PING -P16 spent 15% of its CPU on the thread, 23k of its context
 *    switches a run. Otherwise it sleeps on thr_cv: WATCH_MS at a time, or
 *    without a timeout (deep) while a standby driver sits blocked in the
 *    poller wait (an idle system costs no CPU).
 *
 * The handover protocol (each step's memory order is at its atomic):
 *  1. A would-be driver counts itself in standby before trying the lock. If
 *     the lock is busy and the reactor thread is the holder
 *     (thread_driving), it sets yield_req and wakes the poller: the thread
 *     finishes its pass, sees yield_req, unlocks and calls the yield hook
 *     (the scheduler wakes a parked worker, which then takes the lock).
 *     Dekker: the thread stores thread_driving then runs passes; the
 *     driver increments standby then loads thread_driving (both seq_cst):
 *     a driver that misses thread_driving just sleeps on its futex, which
 *     is the old protocol (the thread injects and wakes it), never a loss.
 *  2. A standby driver that ends a pass increments passes (before it
 *     unlocks) then loads deep; the thread stores deep then re-loads
 *     passes before sleeping without a timeout (all seq_cst): either the
 *     thread sees the progress and keeps its timed watch, or the driver
 *     sees deep and kicks it, so the thread never sleeps forever while no
 *     one drives.
 *  3. ax__reactor_wake wakes whoever waits in the poller, or the next
 *     pass's wait (the wakeup is sticky until a wait consumes it).
 *  4. Stop: stop is set, the poller and the thread woken, the thread
 *     joined; every driver checks stop under the lock before its pass, and
 *     ax__reactor_stop then takes the lock once, so no pass runs after it. */
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "base/base.h"
#include "reactor/reactor.h"

#define EVENTS_PER_PASS 128
/* The reactor thread's watch interval while standby drivers drive. */
#define WATCH_MS 1

typedef struct ax__rtick {
  ax__reactor_tick_fn fn;
  void *arg;
} ax__rtick;

struct ax__reactor {
  ax__poller *poller;
  ax__reactor_clock_fn clock; /* NULL: monotonic */
  void *clock_arg;
  /* Ticks: appended under tick_lock, published by a release store of
   * nticks; the loop reads nticks with acquire. */
  pthread_mutex_t tick_lock;
  ax__rtick ticks[AX__REACTOR_MAX_TICKS];
  _Atomic uint32_t nticks;
  ax__wheel wheel; /* the driver only (under drive_lock, after start) */
  uint64_t until_ns; /* the driver only: this pass's ax__reactor_wait_until */
  pthread_t thread;
  _Atomic bool stop; /* release by stop, acquire by the drivers */
  bool joined;       /* the thread has been joined (stopper only) */
  /* Driving (see the head of this file). */
  pthread_mutex_t drive_lock;      /* held for a pass */
  _Atomic uint32_t standby;        /* threads parked as would-be drivers */
  _Atomic uint64_t stood;          /* standby entries so far (a hint) */
  _Atomic uint64_t passes;         /* passes ended, by any driver */
  _Atomic bool thread_driving;     /* the reactor thread holds drive_lock */
  _Atomic bool yield_req;          /* a standby driver wants the lock */
  _Atomic bool deep;               /* the thread sleeps without a timeout */
  pthread_mutex_t thr_lock;        /* guards kicked; thr_cv's mutex */
  pthread_cond_t thr_cv;
  bool kicked;
  ax__reactor_yield_fn yield_fn;   /* set at start, read by the thread */
  void *yield_arg;
};

uint64_t ax__reactor_now(ax__reactor *r) {
  return r->clock ? r->clock(r->clock_arg) : ax__now_ns() / 1000000u;
}

static uint64_t now_ceil(ax__reactor *r) {
  return r->clock ? r->clock(r->clock_arg) : (ax__now_ns() + 999999u) / 1000000u;
}

void ax__rtimer_set(ax__reactor *r, ax__rtimer *t, uint32_t delay_ms) {
  ax__wheel_insert(&r->wheel, &t->wt, now_ceil(r) + delay_ms);
}

void ax__rtimer_cancel(ax__reactor *r, ax__rtimer *t) { ax__wheel_cancel(&r->wheel, &t->wt); }

static int min_timeout(int a, int b) {
  if (a < 0) return b;
  if (b < 0) return a;
  return a < b ? a : b;
}

/* Fires the due reactor timers; returns the wait they allow. */
static int fire_timers(ax__reactor *r) {
  if (!ax__wheel_count(&r->wheel)) return -1;
  uint64_t now = ax__reactor_now(r);
  ax__wlist out = {NULL, NULL};
  ax__wheel_advance(&r->wheel, now, &out);
  for (ax__wtimer *w = out.head, *wn; w; w = wn) {
    wn = w->next; /* fire may set the timer again */
    ax__rtimer *t = (ax__rtimer *)((char *)w - offsetof(ax__rtimer, wt));
    t->fire(t);
  }
  uint64_t next = ax__wheel_next_deadline(&r->wheel);
  if (next == UINT64_MAX) return -1;
  now = ax__reactor_now(r);
  if (next <= now) return 0;
  if (r->clock) return -1; /* a manual clock moves only when told */
  return next - now > INT_MAX ? INT_MAX : (int)(next - now);
}

/* One pass: ticks, reactor timers, the poller wait (bounded by both; 0
 * when !block or when busy(busy_arg) says the driver got work from the
 * ticks or timers), then the handlers. drive_lock held. */
static void pass(ax__reactor *r, bool block, ax__reactor_busy_fn busy, void *busy_arg) {
  ax__poll_event evs[EVENTS_PER_PASS];
  int timeout = -1;
  r->until_ns = UINT64_MAX;
  uint32_t n = atomic_load_explicit(&r->nticks, memory_order_acquire);
  for (uint32_t i = 0; i < n; i++) timeout = min_timeout(timeout, r->ticks[i].fn(r->ticks[i].arg));
  timeout = min_timeout(timeout, fire_timers(r));
  if (!block || (busy && busy(busy_arg))) timeout = 0;
  int64_t timeout_ns = timeout < 0 ? -1 : (int64_t)timeout * 1000000;
  if (timeout != 0 && r->until_ns != UINT64_MAX) { /* a tick's precise deadline */
    uint64_t now = ax__now_ns();
    uint64_t left = r->until_ns > now ? r->until_ns - now : 0;
    int64_t until = left > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)left;
    if (timeout_ns < 0 || until < timeout_ns) timeout_ns = until;
  }
  int nev = 0;
  if (!atomic_load_explicit(&r->stop, memory_order_acquire) &&
      ax__poller_wait_ns(r->poller, evs, EVENTS_PER_PASS, timeout_ns, &nev) == AX_OK) {
    for (int i = 0; i < nev; i++) {
      ax__io_handler *h = evs[i].udata;
      if (h) h->on_events(h, evs[i].events);
    }
  }
  /* seq_cst: step 2 of the protocol (a pass ended, then deep is read). */
  atomic_fetch_add_explicit(&r->passes, 1, memory_order_seq_cst);
}

static void kick_thread(ax__reactor *r) {
  pthread_mutex_lock(&r->thr_lock);
  r->kicked = true;
  pthread_cond_signal(&r->thr_cv);
  pthread_mutex_unlock(&r->thr_lock);
}

/* One pass with drive_lock held by the caller (taken by trylock), which it
 * releases; then step 2. STOPPED (no pass) if the reactor stopped. */
static ax__drive_result pass_and_unlock(ax__reactor *r, bool wait, ax__reactor_busy_fn busy,
                                        void *busy_arg) {
  if (atomic_load_explicit(&r->stop, memory_order_acquire)) {
    pthread_mutex_unlock(&r->drive_lock);
    return AX__DRIVE_STOPPED;
  }
  pass(r, wait, busy, busy_arg);
  pthread_mutex_unlock(&r->drive_lock);
  /* seq_cst: step 2 (after the pass's increment of passes). */
  if (atomic_load_explicit(&r->deep, memory_order_seq_cst)) kick_thread(r);
  return AX__DRIVE_DROVE;
}

ax__drive_result ax__reactor_drive(ax__reactor *r, ax__reactor_busy_fn busy, void *busy_arg) {
  if (atomic_load_explicit(&r->stop, memory_order_acquire)) return AX__DRIVE_STOPPED;
  if (pthread_mutex_trylock(&r->drive_lock) != 0) {
    /* seq_cst: step 1 (our standby increment, then this load). */
    if (atomic_load_explicit(&r->thread_driving, memory_order_seq_cst)) {
      /* relaxed: the poller wake orders it before the thread's next check */
      atomic_store_explicit(&r->yield_req, true, memory_order_relaxed);
      ax__poller_wake(r->poller);
    }
    return AX__DRIVE_BUSY;
  }
  return pass_and_unlock(r, true, busy, busy_arg);
}

bool ax__reactor_poll(ax__reactor *r) {
  if (atomic_load_explicit(&r->stop, memory_order_acquire) || pthread_mutex_trylock(&r->drive_lock) != 0)
    return false;
  return pass_and_unlock(r, false, NULL, NULL) == AX__DRIVE_DROVE;
}

void ax__reactor_standby(ax__reactor *r, int delta) {
  /* seq_cst: step 1 (before the trylock and the load of thread_driving). */
  atomic_fetch_add_explicit(&r->standby, (uint32_t)delta, memory_order_seq_cst);
  /* relaxed: the thread's saturation hint; a stale read costs one watch
   * interval of driving or not driving, never a lost wake-up (step 1 is
   * the standby count's) */
  if (delta > 0) atomic_fetch_add_explicit(&r->stood, 1, memory_order_relaxed);
}

/* The thread drives until asked to yield (standby drivers waiting) or
 * stopped. drive_lock held. */
static void thread_drive(ax__reactor *r) {
  /* seq_cst: step 1 (the store, then the passes that read yield_req). */
  atomic_store_explicit(&r->thread_driving, true, memory_order_seq_cst);
  bool yielded = false;
  while (!atomic_load_explicit(&r->stop, memory_order_acquire)) {
    pass(r, true, NULL, NULL);
    /* relaxed: a requester wrote yield_req before its poller wake, which
     * the pass's wait consumed (ax__poller_wait orders it for us). */
    if (atomic_exchange_explicit(&r->yield_req, false, memory_order_relaxed) &&
        atomic_load_explicit(&r->standby, memory_order_seq_cst) > 0) {
      yielded = true;
      break;
    }
  }
  atomic_store_explicit(&r->thread_driving, false, memory_order_seq_cst);
  pthread_mutex_unlock(&r->drive_lock);
  if (yielded && r->yield_fn) r->yield_fn(r->yield_arg);
}

static void *reactor_main(void *p) {
  ax__reactor *r = p;
  uint64_t last = UINT64_MAX, last_stood = UINT64_MAX;
  while (!atomic_load_explicit(&r->stop, memory_order_acquire)) {
    uint64_t now = atomic_load_explicit(&r->passes, memory_order_seq_cst);
    bool idle_watch = now == last; /* no pass ended during the last interval */
    last = now;
    /* relaxed: a hint (ax__reactor_standby) */
    uint64_t stood = atomic_load_explicit(&r->stood, memory_order_relaxed);
    bool saturated = stood == last_stood && atomic_load_explicit(&r->standby, memory_order_seq_cst) == 0;
    last_stood = stood;
    if (idle_watch || saturated) {
      if (pthread_mutex_trylock(&r->drive_lock) == 0) {
        thread_drive(r);
        last = last_stood = UINT64_MAX; /* a full watch interval before driving again */
        continue;
      }
    }
    /* A standby driver drives, or drove during the interval. Sleep a watch
     * interval; without a timeout while a driver sits in one long pass. */
    bool deep = false;
    if (idle_watch) {
      /* seq_cst: step 2 (store deep, then re-load passes). */
      atomic_store_explicit(&r->deep, true, memory_order_seq_cst);
      deep = atomic_load_explicit(&r->passes, memory_order_seq_cst) == last;
      if (!deep) atomic_store_explicit(&r->deep, false, memory_order_seq_cst);
    }
    pthread_mutex_lock(&r->thr_lock);
    if (!r->kicked && !atomic_load_explicit(&r->stop, memory_order_acquire)) {
      if (deep)
        pthread_cond_wait(&r->thr_cv, &r->thr_lock);
      else
        ax__cond_wait_until(&r->thr_cv, &r->thr_lock, ax__now_ns() + WATCH_MS * 1000000u);
    }
    r->kicked = false;
    pthread_mutex_unlock(&r->thr_lock);
    if (deep) atomic_store_explicit(&r->deep, false, memory_order_seq_cst);
  }
  return NULL;
}

static void destroy_locks(ax__reactor *r) {
  pthread_mutex_destroy(&r->tick_lock);
  pthread_mutex_destroy(&r->drive_lock);
  pthread_mutex_destroy(&r->thr_lock);
  pthread_cond_destroy(&r->thr_cv);
}

ax_err ax__reactor_start(ax__reactor_clock_fn clock, void *clock_arg, ax__reactor_yield_fn yield_fn,
                         void *yield_arg, ax__reactor **out) {
  ax__reactor *r = ax__calloc(sizeof(*r));
  if (!r) return AX_ENOMEM;
  ax_err e = ax__poller_new(&r->poller);
  if (e != AX_OK) {
    ax__free(r, sizeof(*r));
    return e;
  }
  r->clock = clock;
  r->clock_arg = clock_arg;
  r->yield_fn = yield_fn;
  r->yield_arg = yield_arg;
  pthread_mutex_init(&r->tick_lock, NULL);
  pthread_mutex_init(&r->drive_lock, NULL);
  pthread_mutex_init(&r->thr_lock, NULL);
  ax__cond_init_monotonic(&r->thr_cv);
  ax__wheel_init(&r->wheel, ax__reactor_now(r));
  if (pthread_create(&r->thread, NULL, reactor_main, r) != 0) {
    ax__wheel_fini(&r->wheel);
    destroy_locks(r);
    ax__poller_free(r->poller);
    ax__free(r, sizeof(*r));
    return AX_ESYS;
  }
  *out = r;
  return AX_OK;
}

ax_err ax__reactor_add_tick(ax__reactor *r, ax__reactor_tick_fn fn, void *arg) {
  pthread_mutex_lock(&r->tick_lock);
  uint32_t n = atomic_load_explicit(&r->nticks, memory_order_relaxed);
  if (n == AX__REACTOR_MAX_TICKS) {
    pthread_mutex_unlock(&r->tick_lock);
    return AX_ENOMEM;
  }
  r->ticks[n] = (ax__rtick){fn, arg};
  /* release: the loop that sees the count sees the slot */
  atomic_store_explicit(&r->nticks, n + 1, memory_order_release);
  pthread_mutex_unlock(&r->tick_lock);
  ax__reactor_wake(r);
  return AX_OK;
}

void ax__reactor_stop(ax__reactor *r) {
  if (!r || r->joined) return;
  atomic_store_explicit(&r->stop, true, memory_order_release);
  ax__poller_wake(r->poller);
  kick_thread(r);
  pthread_join(r->thread, NULL);
  /* A standby driver may be inside a pass (the wake above ends its wait);
   * later ones see stop under the lock. */
  pthread_mutex_lock(&r->drive_lock);
  pthread_mutex_unlock(&r->drive_lock);
  r->joined = true;
}

bool ax__reactor_stopped(const ax__reactor *r) { return !r || r->joined; }

void ax__reactor_free(ax__reactor *r) {
  if (!r) return;
  ax__reactor_stop(r);
  ax__wheel_fini(&r->wheel);
  destroy_locks(r);
  ax__poller_free(r->poller);
  ax__free(r, sizeof(*r));
}

void ax__reactor_wake(ax__reactor *r) {
  if (r) ax__poller_wake(r->poller);
}

void ax__reactor_wait_until(ax__reactor *r, uint64_t at_ns) {
  if (at_ns < r->until_ns) r->until_ns = at_ns;
}

ax__poller *ax__reactor_poller(ax__reactor *r) { return r->poller; }
