/* Axon: the reactor thread's loop (see reactor.h). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "base/base.h"
#include "reactor/reactor.h"

#define EVENTS_PER_PASS 128

struct ax__reactor {
  ax__poller *poller;
  ax__reactor_tick_fn tick;
  void *arg;
  pthread_t thread;
  _Atomic bool stop; /* release by stop, acquire by the loop */
  bool joined;       /* the thread has been joined (stopper only) */
};

static void *reactor_main(void *p) {
  ax__reactor *r = p;
  ax__poll_event evs[EVENTS_PER_PASS];
  while (!atomic_load_explicit(&r->stop, memory_order_acquire)) {
    int timeout = r->tick(r->arg);
    if (atomic_load_explicit(&r->stop, memory_order_acquire)) break;
    int n = 0;
    if (ax__poller_wait(r->poller, evs, EVENTS_PER_PASS, timeout, &n) != AX_OK) continue;
    for (int i = 0; i < n; i++) {
      ax__io_handler *h = evs[i].udata;
      if (h) h->on_events(h, evs[i].events);
    }
  }
  return NULL;
}

ax_err ax__reactor_start(ax__reactor_tick_fn tick, void *arg, ax__reactor **out) {
  ax__reactor *r = ax__calloc(sizeof(*r));
  if (!r) return AX_ENOMEM;
  ax_err e = ax__poller_new(&r->poller);
  if (e != AX_OK) {
    ax__free(r, sizeof(*r));
    return e;
  }
  r->tick = tick;
  r->arg = arg;
  if (pthread_create(&r->thread, NULL, reactor_main, r) != 0) {
    ax__poller_free(r->poller);
    ax__free(r, sizeof(*r));
    return AX_ESYS;
  }
  *out = r;
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
  ax__poller_free(r->poller);
  ax__free(r, sizeof(*r));
}

void ax__reactor_wake(ax__reactor *r) { ax__poller_wake(r->poller); }

ax__poller *ax__reactor_poller(ax__reactor *r) { return r->poller; }
