/* Axon: the system object: creation, waiting, orderly shutdown, logging and
 * system-wide counters. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "actor/actor_int.h"

void ax_system_config_init(ax_system_config *cfg) {
  if (!cfg) return;
  memset(cfg, 0, sizeof(*cfg));
  cfg->log_level = AX_LOG_WARN;
}

static uint32_t online_cpus(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (uint32_t)n : 1;
}

static void stderr_log(ax_log_level level, const char *line, void *arg) {
  static const char *names[] = {"debug", "info", "warn", "error"};
  (void)arg;
  fprintf(stderr, "axon %s: %s\n", names[level], line);
}

void ax_log(ax_system *sys, ax_log_level level, const char *fmt, ...) {
  /* One filter for every sink; an out-of-range level counts as an error. */
  if ((unsigned)level > AX_LOG_ERROR) level = AX_LOG_ERROR;
  if (level < (sys ? sys->cfg.log_level : AX_LOG_WARN)) return; /* no system: the defaults */
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof(line), fmt, ap); /* long lines are cut, by design */
  va_end(ap);
  if (sys && sys->cfg.log_fn)
    sys->cfg.log_fn(level, line, sys->cfg.log_arg);
  else
    stderr_log(level, line, NULL);
}

bool ax__on_worker(void) { return ax__ctx_get()->worker != NULL; }

bool ax__in_run(void) {
  ax__ctx *c = ax__ctx_get();
  return c->worker != NULL && c->current != NULL;
}

void ax__run_route_held(void) { ax__ctx_get()->route_held = true; }

void ax__route_run_end(ax_system *sys) {
  ax__ctx *c = ax__ctx_get();
  if (!c->route_held) return; /* the common case: nothing held, no load, no call */
  c->route_held = false;
  const ax__route *r = atomic_load_explicit(&sys->route, memory_order_acquire);
  if (r && r->flush) r->flush(r->state);
}

/* A worker thread, or an actor callback running on any thread (an init runs
 * on the spawner's thread): blocking there for the whole system to stop
 * would wait for the caller itself. */
static bool in_actor(void) {
  ax__ctx *c = ax__ctx_get();
  return c->worker != NULL || c->current != NULL;
}

/* Dekker pairing: spawn_enter increments spawning, then loads state;
 * shutdown CASes state, then loads spawning, then live (all seq_cst). Either
 * the spawn sees STOPPING and backs out, or shutdown sees it in flight and
 * waits; and a waiter that sees spawning drop to 0 also sees the live count
 * it was dropped after. */
bool ax__spawn_enter(ax_system *sys) {
  atomic_fetch_add_explicit(&sys->spawning, 1, memory_order_seq_cst);
  if (atomic_load_explicit(&sys->state, memory_order_seq_cst) == AX__RUNNING) return true;
  ax__spawn_leave(sys, false);
  return false;
}

void ax__spawn_leave(ax_system *sys, bool counted) {
  /* A spawn that counted its actor live needs no wake-up: the waiters wait
   * for live now, and that actor's destroy (which happens after this) wakes
   * them. A failed spawn may be the last thing a waiter waits for. */
  if (atomic_fetch_sub_explicit(&sys->spawning, 1, memory_order_seq_cst) == 1 && !counted) {
    pthread_mutex_lock(&sys->wait_lock);
    pthread_cond_broadcast(&sys->wait_cv);
    pthread_mutex_unlock(&sys->wait_lock);
  }
}

/* Nothing alive and no spawn in flight (spawning first: see above). */
static bool quiet(ax_system *sys) {
  return atomic_load_explicit(&sys->spawning, memory_order_seq_cst) == 0 &&
         atomic_load_explicit(&sys->live, memory_order_seq_cst) == 0;
}

static bool quiet_arg(void *sys) { return quiet(sys); }
static bool wait_dead(ax_system *sys, uint64_t deadline_ns);

/* A waiting shutdown's wait: for the workers (until the deadline), or in
 * deterministic mode a round of driving the system on this thread. */
static bool settle(ax_system *sys, uint64_t deadline_ns) {
  if (!sys->det) return wait_dead(sys, deadline_ns);
  ax__det_settle(sys);
  return quiet(sys);
}

/* The reactor's view of an injected clock (rounded down, as expiries). */
static uint64_t reactor_clock(void *arg) { return ax__clock_floor_ms(arg); }

ax_err ax_system_new(const ax_system_config *cfg, ax_system **out) {
  if (!out) return AX_EINVAL;
  ax__alloc_fail_from_env(); /* test-only: AXON_TEST_FAIL_ALLOC */
  ax_system *sys = ax__calloc(sizeof(*sys));
  if (!sys) {
    ax__alloc_env_report(); /* test-only: as ax_system_free does */
    return AX_ENOMEM;
  }
  if (cfg)
    sys->cfg = *cfg;
  else
    ax_system_config_init(&sys->cfg);
  if (!sys->cfg.workers) sys->cfg.workers = online_cpus();
  if (!sys->cfg.max_actors || sys->cfg.max_actors > AX__MAX_ACTORS)
    sys->cfg.max_actors = AX__MAX_ACTORS;
  ax_err e = sys->cfg.workers > 1024 ? AX_EINVAL : AX_OK;
  if (e == AX_OK && sys->cfg.deterministic_seed) e = ax__det_new(sys);
  if (e != AX_OK) {
    ax__free(sys, sizeof(*sys));
    return e;
  }
  if (!sys->cfg.batch) sys->cfg.batch = 100;
  if (!sys->cfg.flush_later_us) sys->cfg.flush_later_us = AX_FLUSH_LATER_US;
  sys->stall_warn_ms = AX__STALL_WARN_MS;
  atomic_init(&sys->next_ref, 2);
  ax__cond_init_monotonic(&sys->wait_cv);
  pthread_mutex_init(&sys->wait_lock, NULL);
  pthread_mutex_init(&sys->qs_lock, NULL);
  pthread_mutex_init(&sys->inject_lock, NULL);
  pthread_mutex_init(&sys->idle_lock, NULL);
  pthread_mutex_init(&sys->obs_lock, NULL);
  e = ax__table_init(&sys->table, sys->cfg.max_actors, 0);
  if (e == AX_OK) e = ax__registry_init(&sys->registry);
  /* The reactor first: the workers drive it when they park. */
  if (e == AX_OK)
    e = ax__reactor_start(sys->cfg.clock_ms ? reactor_clock : NULL, sys, ax__sched_reactor_yield, sys,
                          &sys->reactor);
  if (e == AX_OK) e = ax__sched_start(sys);
  if (e == AX_OK) e = ax__timers_start(sys);
  if (e != AX_OK) {
    ax_system_free(sys);
    return e;
  }
  *out = sys;
  return AX_OK;
}

uint32_t ax_system_workers(const ax_system *sys) { return sys ? sys->nworkers : 0; }

void ax__system_set_stall_warn_ms(ax_system *sys, uint32_t ms) { sys->stall_warn_ms = ms; }

/* Waits on wait_cv until nothing is alive or being spawned, or until the
 * absolute monotonic deadline (0 = forever). Returns true if quiet. */
static bool wait_dead(ax_system *sys, uint64_t deadline_ns) {
  pthread_mutex_lock(&sys->wait_lock);
  while (!quiet(sys) && ax__cond_wait_until(&sys->wait_cv, &sys->wait_lock, deadline_ns)) {
  }
  bool done = quiet(sys);
  pthread_mutex_unlock(&sys->wait_lock);
  return done;
}

ax_err ax_system_wait(ax_system *sys, uint32_t timeout_ms) {
  if (!sys) return AX_EINVAL;
  if (in_actor()) return AX_ESTATE;
  if (sys->det) /* virtual time: the caller drives the system meanwhile */
    return ax__det_run_until(sys, quiet_arg, sys, timeout_ms) ? AX_OK : AX_ETIMEDOUT;
  uint64_t deadline = timeout_ms == AX_INFINITY ? 0 : ax__now_ns() + (uint64_t)timeout_ms * 1000000u;
  return wait_dead(sys, deadline) ? AX_OK : AX_ETIMEDOUT;
}

ax_err ax__system_add_top(ax_system *sys, ax_pid pid) {
  pthread_mutex_lock(&sys->wait_lock);
  if (sys->ntops == sys->tops_cap) {
    size_t ncap = sys->tops_cap ? sys->tops_cap * 2 : 8;
    uint64_t *n = ax__realloc(sys->tops, sys->tops_cap * sizeof(uint64_t), ncap * sizeof(uint64_t));
    if (!n) {
      pthread_mutex_unlock(&sys->wait_lock);
      return AX_ENOMEM;
    }
    sys->tops = n;
    sys->tops_cap = ncap;
  }
  sys->tops[sys->ntops++] = pid.id;
  pthread_mutex_unlock(&sys->wait_lock);
  return AX_OK;
}

bool ax__pid_alive(ax_system *sys, uint64_t pid) {
  ax_actor *a = ax__table_acquire(&sys->table, pid);
  if (a) ax__table_release(&sys->table, pid);
  return a != NULL;
}


ax__reactor *ax__system_reactor(ax_system *sys) { return sys->reactor; }

void *ax__layer_get(ax_system *sys, ax__layer_id id) {
  return atomic_load_explicit(&sys->layers[id].state, memory_order_acquire);
}

ax_err ax__layer_start(ax_system *sys, ax__layer_id id, ax__layer_start_fn start, void *arg,
                       void **state) {
  void *st = ax__layer_get(sys, id);
  if (AX_LIKELY(st != NULL)) {
    *state = st;
    return AX_OK;
  }
  /* Deterministic mode runs on one thread and a virtual clock: no sockets,
   * no cluster (docs/testing.md). */
  if (sys->det && (id == AX__LAYER_IO || id == AX__LAYER_CLUSTER)) return AX_ENOTSUP;
  ax_err e = AX_ECLOSED;
  /* wait_lock serialises the one-time start (it guards nothing hot). */
  pthread_mutex_lock(&sys->wait_lock);
  st = ax__layer_get(sys, id);
  if (st) {
    e = AX_OK;
  } else if (atomic_load(&sys->state) == AX__RUNNING && sys->reactor &&
             !ax__reactor_stopped(sys->reactor)) {
    ax__layer l = {0};
    e = start(sys, arg, &l);
    if (e == AX_OK) {
      sys->layers[id].on_actor_stop = l.on_actor_stop;
      sys->layers[id].fini = l.fini;
      st = l.state;
      /* release: a reader of the state sees the hooks and the state */
      atomic_store_explicit(&sys->layers[id].state, st, memory_order_release);
    }
  }
  pthread_mutex_unlock(&sys->wait_lock);
  *state = e == AX_OK ? st : NULL;
  return e;
}

uint32_t ax__system_node(const ax_system *sys) { return sys->table.node; }

ax_err ax__system_set_node(ax_system *sys, uint32_t node) {
  if (node > AX__NODE_MAX) return AX_EINVAL;
  pthread_mutex_lock(&sys->wait_lock);
  bool fresh = atomic_load(&sys->spawned) == 0 && atomic_load(&sys->spawning) == 0 &&
               atomic_load(&sys->live) == 0;
  if (fresh) sys->table.node = node;
  pthread_mutex_unlock(&sys->wait_lock);
  return fresh ? AX_OK : AX_ESTATE;
}

void ax__route_set(ax_system *sys, const ax__route *r) {
  atomic_store_explicit(&sys->route, r, memory_order_release);
}

/* Every stopping actor (actor.c's stop path). */
void ax__layers_on_actor_stop(ax_system *sys, uint64_t pid) {
  for (int i = 0; i < AX__LAYER_COUNT; i++) {
    void *st = ax__layer_get(sys, (ax__layer_id)i);
    if (st && sys->layers[i].on_actor_stop) sys->layers[i].on_actor_stop(sys, st, pid);
  }
}

static void layers_fini(ax_system *sys) {
  for (int i = AX__LAYER_COUNT - 1; i >= 0; i--) {
    void *st = ax__layer_get(sys, (ax__layer_id)i);
    if (!st) continue;
    atomic_store_explicit(&sys->layers[i].state, NULL, memory_order_release);
    if (sys->layers[i].fini) sys->layers[i].fini(sys, st);
  }
}

/* The stall watch of a waiting shutdown: a worker whose run count and
 * running pid have not moved for stall_warn_ms is stuck in one callback of
 * that actor; say so every stall_warn_ms. The watch_* fields belong to the
 * shutdown thread (one at a time: later callers wait for the first). */
static void log_stall(ax_system *sys, uint64_t pid, uint64_t ms) {
  /* The reference keeps the actor (and so its spec) from going away. */
  ax_actor *a = ax__table_acquire(&sys->table, pid);
  const char *name = a && a->spec->name ? a->spec->name : "?";
  ax_log(sys, AX_LOG_WARN,
         "shutdown is waiting for actor %s <%llx>: one callback has been running for at "
         "least %llu ms (behaviours, init and terminate must not block)",
         name, (unsigned long long)pid, (unsigned long long)ms);
  if (a) ax__table_release(&sys->table, pid);
}

static void watch_stalls(ax_system *sys) {
  uint64_t now = ax__now_ns(), every = (uint64_t)sys->stall_warn_ms * 1000000u;
  for (uint32_t i = 0; i < sys->nworkers; i++) {
    ax__worker *w = &sys->workers[i];
    uint64_t pid = atomic_load_explicit(&w->running, memory_order_relaxed);
    uint64_t runs = atomic_load_explicit(&w->runs, memory_order_relaxed);
    if (!pid || pid != w->watch_pid || runs != w->watch_runs) {
      w->watch_pid = pid;
      w->watch_runs = runs;
      w->watch_since_ns = w->watch_warned_ns = now;
    } else if (now - w->watch_warned_ns >= every) {
      w->watch_warned_ns = now;
      log_stall(sys, pid, (now - w->watch_since_ns) / 1000000u);
    }
  }
}

/* Stops the top-level supervisors, newest first, each fully (its own
 * children per their shutdown specs) before the next. */
static void stop_tops(ax_system *sys) {
  for (;;) {
    pthread_mutex_lock(&sys->wait_lock);
    uint64_t pid = sys->ntops ? sys->tops[--sys->ntops] : 0;
    pthread_mutex_unlock(&sys->wait_lock);
    if (!pid) return;
    ax_reason r = AX_REASON_SHUTDOWN;
    ax_exit_info info = {.pid = AX_PID_NONE, .reason = r};
    while (ax__pid_alive(sys, pid)) {
      if (ax__signal(sys, 0, pid, AX__SIG_EXIT, &info, sizeof(info)) != AX_ENOMEM) break;
      settle(sys, ax__now_ns() + 10u * 1000000u);
      watch_stalls(sys);
    }
    /* Supervisors may take as long as their children's shutdown specs say. */
    while (ax__pid_alive(sys, pid)) {
      settle(sys, ax__now_ns() + 20u * 1000000u);
      watch_stalls(sys);
    }
  }
}

static void send_stop(uint64_t pid, void *arg) {
  ax_system *sys = arg;
  ax_reason r = AX_REASON_SHUTDOWN;
  /* ENOACTOR (it stopped meanwhile) and ENOMEM (retried on the next pass)
   * are both fine here. */
  (void)ax__signal(sys, 0, pid, AX__SIG_STOP, &r, sizeof(r));
}

/* A second caller waits for the first to finish (the state turns STOPPED
 * under wait_lock, with a broadcast). */
static void wait_stopped(ax_system *sys) {
  pthread_mutex_lock(&sys->wait_lock);
  while (atomic_load_explicit(&sys->state, memory_order_acquire) != AX__STOPPED)
    pthread_cond_wait(&sys->wait_cv, &sys->wait_lock);
  pthread_mutex_unlock(&sys->wait_lock);
}

ax_err ax_system_shutdown(ax_system *sys) {
  if (!sys) return AX_EINVAL;
  if (in_actor()) return AX_ESTATE;
  int expect = AX__RUNNING;
  /* seq_cst: pairs with ax__spawn_enter (see there). */
  if (!atomic_compare_exchange_strong_explicit(&sys->state, &expect, AX__STOPPING,
                                               memory_order_seq_cst, memory_order_seq_cst)) {
    wait_stopped(sys); /* another thread is shutting down, or has */
    return AX_OK;
  }
  stop_tops(sys);
  /* Stop every actor; actors that a terminate spawned before the state
   * change was seen, spawns not yet in the table, and actors whose stop
   * signal found no memory are caught by a later pass. */
  while (!quiet(sys)) {
    ax__table_foreach_live(&sys->table, send_stop, sys);
    settle(sys, ax__now_ns() + 200u * 1000000u);
    watch_stalls(sys);
  }
  /* Stopped, not freed: ax_system_clock_moved from another thread may still
   * wake it until ax_system_free. */
  ax__reactor_stop(sys->reactor);
  ax__timers_stop(sys);
  ax__sched_stop(sys);
  pthread_mutex_lock(&sys->wait_lock);
  atomic_store_explicit(&sys->state, AX__STOPPED, memory_order_release);
  pthread_cond_broadcast(&sys->wait_cv);
  pthread_mutex_unlock(&sys->wait_lock);
  return AX_OK;
}

void ax_system_free(ax_system *sys) {
  if (!sys) return;
  if (in_actor()) {
    /* Freeing would pull the system from under the caller's own worker. */
    ax_log(sys, AX_LOG_ERROR, "ax_system_free called from inside an actor: refused, nothing freed");
    return;
  }
  if (sys->workers && (sys->nworkers || sys->det)) ax_system_shutdown(sys);
  /* No-ops unless system creation failed midway. */
  ax__reactor_stop(sys->reactor);
  ax__timers_stop(sys);
  layers_fini(sys);
  ax__reactor_free(sys->reactor);
  sys->reactor = NULL;
  ax__sched_free(sys);
  ax__timers_free(sys); /* after the workers: they poll the shards */
  ax__registry_fini(&sys->registry);
  ax__table_fini(&sys->table);
  ax__free(sys->tops, sys->tops_cap * sizeof(uint64_t));
  pthread_mutex_destroy(&sys->wait_lock);
  pthread_mutex_destroy(&sys->qs_lock);
  pthread_cond_destroy(&sys->wait_cv);
  pthread_mutex_destroy(&sys->inject_lock);
  pthread_mutex_destroy(&sys->idle_lock);
  ax__u64map_free(&sys->obs_pids);
  pthread_mutex_destroy(&sys->obs_lock);
  ax__det_free(sys);
  ax__free(sys, sizeof(*sys));
  ax__alloc_env_report(); /* test-only: AXON_TEST_FAIL_ALLOC */
}

void ax_system_clock_moved(ax_system *sys) {
  if (sys) ax__reactor_wake(sys->reactor);
}

ax_err ax_system_stats_get(ax_system *sys, ax_system_stats *out) {
  if (!sys || !out) return AX_EINVAL;
  memset(out, 0, sizeof(*out));
  out->actors_alive = atomic_load_explicit(&sys->live, memory_order_relaxed);
  out->actors_spawned = atomic_load_explicit(&sys->spawned, memory_order_relaxed);
  out->actors_stopped = atomic_load_explicit(&sys->stopped, memory_order_relaxed);
  out->messages_sent = atomic_load_explicit(&sys->sent, memory_order_relaxed);
  out->dead_letters = atomic_load_explicit(&sys->dead_letters, memory_order_relaxed);
  out->dropped = atomic_load_explicit(&sys->dropped, memory_order_relaxed);
  out->late_replies = atomic_load_explicit(&sys->late_replies, memory_order_relaxed);
  out->timers_fired = atomic_load_explicit(&sys->timers_fired, memory_order_relaxed);
  out->timers_pending = ax__timers_pending(sys);
  out->restarts = atomic_load_explicit(&sys->restarts, memory_order_relaxed);
  /* nalloc: deterministic mode has a worker and no thread. */
  for (uint32_t i = 0; i < sys->nalloc; i++) {
    ax__worker *w = &sys->workers[i];
    out->messages_sent += atomic_load_explicit(&w->sent, memory_order_relaxed);
    out->runs += atomic_load_explicit(&w->runs, memory_order_relaxed);
    out->steals += atomic_load_explicit(&w->steals, memory_order_relaxed);
    out->parks += atomic_load_explicit(&w->parks, memory_order_relaxed);
  }
  return AX_OK;
}
