/* Axon: the reactor thread's loop (see reactor.h). */
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "base/base.h"
#include "reactor/reactor.h"

#define EVENTS_PER_PASS 128

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
  ax__wheel wheel; /* reactor thread only (after start) */
  pthread_t thread;
  _Atomic bool stop; /* release by stop, acquire by the loop */
  bool joined;       /* the thread has been joined (stopper only) */
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

static void *reactor_main(void *p) {
  ax__reactor *r = p;
  ax__poll_event evs[EVENTS_PER_PASS];
  while (!atomic_load_explicit(&r->stop, memory_order_acquire)) {
    int timeout = -1;
    uint32_t n = atomic_load_explicit(&r->nticks, memory_order_acquire);
    for (uint32_t i = 0; i < n; i++) timeout = min_timeout(timeout, r->ticks[i].fn(r->ticks[i].arg));
    timeout = min_timeout(timeout, fire_timers(r));
    if (atomic_load_explicit(&r->stop, memory_order_acquire)) break;
    int nev = 0;
    if (ax__poller_wait(r->poller, evs, EVENTS_PER_PASS, timeout, &nev) != AX_OK) continue;
    for (int i = 0; i < nev; i++) {
      ax__io_handler *h = evs[i].udata;
      if (h) h->on_events(h, evs[i].events);
    }
  }
  return NULL;
}

ax_err ax__reactor_start(ax__reactor_clock_fn clock, void *clock_arg, ax__reactor **out) {
  ax__reactor *r = ax__calloc(sizeof(*r));
  if (!r) return AX_ENOMEM;
  ax_err e = ax__poller_new(&r->poller);
  if (e != AX_OK) {
    ax__free(r, sizeof(*r));
    return e;
  }
  r->clock = clock;
  r->clock_arg = clock_arg;
  pthread_mutex_init(&r->tick_lock, NULL);
  ax__wheel_init(&r->wheel, ax__reactor_now(r));
  if (pthread_create(&r->thread, NULL, reactor_main, r) != 0) {
    ax__wheel_fini(&r->wheel);
    pthread_mutex_destroy(&r->tick_lock);
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
  pthread_join(r->thread, NULL);
  r->joined = true;
}

bool ax__reactor_stopped(const ax__reactor *r) { return !r || r->joined; }

void ax__reactor_free(ax__reactor *r) {
  if (!r) return;
  ax__reactor_stop(r);
  ax__wheel_fini(&r->wheel);
  pthread_mutex_destroy(&r->tick_lock);
  ax__poller_free(r->poller);
  ax__free(r, sizeof(*r));
}

void ax__reactor_wake(ax__reactor *r) {
  if (r) ax__poller_wake(r->poller);
}

ax__poller *ax__reactor_poller(ax__reactor *r) { return r->poller; }
