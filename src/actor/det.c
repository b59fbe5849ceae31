/* Axon: the deterministic test mode (cfg.deterministic_seed, docs/testing.md).
 * No worker thread runs: the thread that calls ax_system_step,
 * ax_system_run_until_idle or ax_system_advance (or ax_call, ax_system_wait
 * and ax_system_shutdown, which drive the system while they wait) becomes
 * the one worker for the length of the call. Each step gathers every
 * runnable actor (worker 0's LIFO slot and ring, then the inject queue, in
 * that order) into a set, adds the timer service when a timer is due, and
 * lets a PRNG seeded from the seed choose one: an actor runs once (at most
 * cfg.batch messages, default 1), the timer service fires the timers due on
 * the virtual clock. The normal scheduler is untouched: only the system's
 * start, stop and waits look at sys->det. */
#include <string.h>

#include "actor/actor_int.h"

struct ax__det {
  uint64_t rng;            /* xorshift64* state, never 0 */
  _Atomic uint64_t now;    /* the virtual clock (ms): any thread reads it,
                              only the driver moves it (relaxed: nothing is
                              published through it) */
  ax_actor **run;          /* the runnable set, in the order gathered */
  size_t n, cap;
  uint64_t quiet_at;       /* fire found nothing due at this time ... */
  uint64_t quiet_cmds;     /* ... after this many timer commands */
  bool driving;            /* a drive is under way (no nesting) */
};

/* An unbounded wait's horizon. */
#define DET_FOREVER UINT64_MAX

static uint64_t det_clock(void *arg) {
  return atomic_load_explicit(&((ax__det *)arg)->now, memory_order_relaxed);
}

ax_err ax__det_new(ax_system *sys) {
  if (sys->cfg.clock_ms) return AX_EINVAL; /* the mode brings its own clock */
  ax__det *d = ax__calloc(sizeof(*d));
  if (!d) return AX_ENOMEM;
  /* splitmix64 of the seed: nearby seeds give unrelated streams. */
  uint64_t z = sys->cfg.deterministic_seed + 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  d->rng = (z ^ (z >> 31)) | 1;
  d->quiet_at = UINT64_MAX;
  sys->det = d;
  sys->cfg.clock_ms = det_clock;
  sys->cfg.clock_arg = d;
  sys->cfg.workers = 1; /* one worker's queues, and no thread */
  if (!sys->cfg.batch) sys->cfg.batch = 1;
  return AX_OK;
}

void ax__det_free(ax_system *sys) {
  ax__det *d = sys->det;
  if (!d) return;
  ax__free(d->run, d->cap * sizeof(ax_actor *));
  ax__free(d, sizeof(*d));
  sys->det = NULL;
}

static uint64_t det_rand(ax__det *d) {
  d->rng ^= d->rng >> 12;
  d->rng ^= d->rng << 25;
  d->rng ^= d->rng >> 27;
  return d->rng * 0x2545F4914F6CDD1Dull;
}

/* Moves every runnable actor into the set. Returns an actor to run at once
 * when the set cannot grow (out of memory: still deterministic). */
static ax_actor *gather(ax_system *sys, ax__det *d) {
  ax_actor *a;
  while ((a = ax__sched_take(&sys->workers[0]))) {
    if (d->n == d->cap) {
      size_t ncap = d->cap ? d->cap * 2 : 64;
      ax_actor **r = ax__realloc(d->run, d->cap * sizeof(*r), ncap * sizeof(*r));
      if (!r) return a;
      d->run = r;
      d->cap = ncap;
    }
    d->run[d->n++] = a;
  }
  return NULL;
}

/* True when the timer service has something due on the virtual clock
 * (commands are run first: they only change the wheel). */
static bool timers_due(ax_system *sys, ax__det *d) {
  uint64_t cmds = ax__timers_det_commands(sys);
  uint64_t now = det_clock(d);
  if (d->quiet_at == now && d->quiet_cmds == cmds) return false;
  return ax__timers_det_next(sys) <= now;
}

static void run_actor(ax_system *sys, ax_actor *a) {
  ax__worker *w = &sys->workers[0];
  atomic_store_explicit(&w->running, a->pid, memory_order_relaxed);
  atomic_store_explicit(&w->runs, atomic_load_explicit(&w->runs, memory_order_relaxed) + 1,
                        memory_order_relaxed);
  ax__run_result r = ax__actor_run(a);
  atomic_store_explicit(&w->running, 0, memory_order_relaxed);
  if (r == AX__RUN_AGAIN) ax__schedule_back(sys, a); /* gathered next step */
}

/* One scheduling decision; false when nothing is runnable or due. */
static bool step(ax_system *sys, ax__det *d) {
  ax_actor *now_a = gather(sys, d);
  if (now_a) {
    run_actor(sys, now_a);
    return true;
  }
  bool due = timers_due(sys, d);
  if (!d->n && !due) return false;
  uint64_t pick = det_rand(d) % (d->n + (due ? 1 : 0));
  if (pick == d->n) {
    uint64_t now = det_clock(d);
    if (ax__timers_det_fire(sys, now) == 0) { /* a lower bound, not a deadline */
      d->quiet_at = now;
      d->quiet_cmds = ax__timers_det_commands(sys);
    }
    return true;
  }
  /* Keep the set's order (the gather order) for what stays. */
  ax_actor *a = d->run[pick];
  memmove(&d->run[pick], &d->run[pick + 1], (d->n - pick - 1) * sizeof(ax_actor *));
  d->n--;
  run_actor(sys, a);
  return true;
}

/* Makes this thread the system's worker for one drive. */
static ax_err drive_begin(ax_system *sys, ax__ctx **cp, ax__worker **saved) {
  if (!sys) return AX_EINVAL;
  ax__ctx *c = ax__ctx_get();
  if (!sys->det || c->current || c->worker || sys->det->driving) return AX_ESTATE;
  if (atomic_load_explicit(&sys->state, memory_order_acquire) == AX__STOPPED) return AX_ECLOSED;
  sys->det->driving = true;
  *saved = c->worker;
  c->worker = &sys->workers[0];
  *cp = c;
  return AX_OK;
}

static void drive_end(ax_system *sys, ax__ctx *c, ax__worker *saved) {
  c->worker = saved;
  sys->det->driving = false;
}

/* Runs until idle or max steps (0: no bound); counts steps into *steps. */
static bool run_idle(ax_system *sys, uint64_t max, uint64_t *steps) {
  for (;;) {
    if (max && *steps >= max) return false;
    if (!step(sys, sys->det)) return true;
    ++*steps;
  }
}

/* Moves the clock to t (never back). */
static void set_now(ax__det *d, uint64_t t) {
  if (t > det_clock(d)) atomic_store_explicit(&d->now, t, memory_order_relaxed);
}

ax_err ax_system_step(ax_system *sys, bool *ran) {
  ax__ctx *c;
  ax__worker *saved;
  ax_err e = drive_begin(sys, &c, &saved);
  if (e != AX_OK) return e;
  bool r = step(sys, sys->det);
  drive_end(sys, c, saved);
  if (ran) *ran = r;
  return AX_OK;
}

ax_err ax_system_run_until_idle(ax_system *sys, uint64_t max_steps, uint64_t *steps) {
  ax__ctx *c;
  ax__worker *saved;
  ax_err e = drive_begin(sys, &c, &saved);
  if (e != AX_OK) return e;
  uint64_t n = 0;
  bool idle = run_idle(sys, max_steps, &n);
  drive_end(sys, c, saved);
  if (steps) *steps = n;
  return idle ? AX_OK : AX_EAGAIN;
}

/* Runs until idle, then moves the clock to the next timer deadline up to
 * `until` and again, until the clock reaches `until` or stop(arg) holds. */
static bool advance_to(ax_system *sys, uint64_t until, bool (*stop)(void *), void *arg) {
  ax__det *d = sys->det;
  uint64_t steps = 0;
  for (;;) {
    run_idle(sys, 0, &steps);
    if (stop && stop(arg)) return true;
    (void)ax__timers_det_commands(sys);
    uint64_t next = ax__timers_det_next(sys), now = det_clock(d);
    if (next > until || next == UINT64_MAX) {
      /* Nothing more before `until`: an unbounded wait stops here rather
       * than send the clock to the end of time. */
      if (until != DET_FOREVER) {
        set_now(d, until);
        run_idle(sys, 0, &steps);
      }
      return stop ? stop(arg) : true;
    }
    if (next <= now) next = now + 1; /* a lower bound already passed */
    set_now(d, next);
  }
}

ax_err ax_system_advance(ax_system *sys, uint64_t ms) {
  ax__ctx *c;
  ax__worker *saved;
  ax_err e = drive_begin(sys, &c, &saved);
  if (e != AX_OK) return e;
  uint64_t now = det_clock(sys->det);
  advance_to(sys, ms >= DET_FOREVER - now ? DET_FOREVER - 1 : now + ms, NULL, NULL);
  drive_end(sys, c, saved);
  return AX_OK;
}

ax_err ax_system_now(ax_system *sys, uint64_t *ms) {
  if (!sys || !ms) return AX_EINVAL;
  if (!sys->det) return AX_ESTATE;
  *ms = det_clock(sys->det);
  return AX_OK;
}

bool ax__det_on(const ax_system *sys) { return sys->det != NULL; }

bool ax__det_run_until(ax_system *sys, bool (*done)(void *arg), void *arg, uint32_t timeout_ms) {
  ax__ctx *c;
  ax__worker *saved;
  if (drive_begin(sys, &c, &saved) != AX_OK) return done(arg);
  uint64_t now = det_clock(sys->det);
  uint64_t until = timeout_ms == AX_INFINITY ? DET_FOREVER : now + timeout_ms;
  bool r = advance_to(sys, until, done, arg);
  drive_end(sys, c, saved);
  return r;
}

/* One round of a waiting shutdown: run until idle, then let virtual time
 * reach the next deadline (a supervisor's shutdown timeout). */
void ax__det_settle(ax_system *sys) {
  ax__ctx *c;
  ax__worker *saved;
  if (drive_begin(sys, &c, &saved) != AX_OK) return;
  uint64_t steps = 0;
  run_idle(sys, 0, &steps);
  (void)ax__timers_det_commands(sys);
  uint64_t next = ax__timers_det_next(sys);
  if (next != UINT64_MAX) {
    set_now(sys->det, next > det_clock(sys->det) ? next : det_clock(sys->det) + 1);
    run_idle(sys, 0, &steps);
  }
  drive_end(sys, c, saved);
}
