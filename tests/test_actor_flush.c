/* Tests for the spec's end-of-run hook (ax_actor_spec.flush): it follows
 * every run that delivered something, sees everything the run delivered,
 * is never called for a run that delivered nothing, coalesces a backlog
 * into runs of the batch budget, and stops the actor on error. And
 * ax_flush_later: a run's flush waits for the end of the worker's pass;
 * messages that arrive meanwhile are delivered before it; it always comes,
 * within AX_FLUSH_LATER_RUNS runs of other actors even on a worker that
 * never runs dry; a deferred actor is never run by two workers at once and
 * loses or reorders nothing; no effect without a flush, nor for a stopping
 * actor. */
#include <axon.h>
#include <pthread.h>
#include <semaphore.h>
#include <string.h>

#include "support/testutil.h"

enum { T_DATA = AX_MSG_USER, T_GATE, T_POKE, T_FIRST, T_MORE, T_SPIN, T_GO, T_EXIT };

typedef struct fl_shared {
  _Atomic uint64_t delivered;   /* behaviour calls */
  _Atomic uint64_t flushed;     /* sum of what each flush saw */
  _Atomic uint64_t flushes;     /* flush calls */
  _Atomic uint64_t empty;       /* flush calls that saw nothing */
  _Atomic uint64_t terminated;
  _Atomic int32_t reason;
  _Atomic uint64_t last_seen;   /* what the last flush saw */
  _Atomic uint64_t *spins;      /* test_flush_later_busy_worker: the spinner's count */
  _Atomic uint64_t spins_at_defer, spins_at_flush;
  ax_err flush_result;          /* what flush returns */
  sem_t gate;                   /* T_GATE waits on it */
  sem_t in_gate;                /* posted when T_GATE is waiting */
} fl_shared;

typedef struct fl_state {
  fl_shared *sh;
  uint64_t pending; /* delivered since the last flush */
} fl_state;

static ax_err fl_init(ax_actor *self, void *state, const void *arg, size_t len) {
  (void)self;
  if (len != sizeof(fl_shared *)) return AX_EINVAL;
  memcpy(&((fl_state *)state)->sh, arg, len);
  return AX_OK;
}

static ax_err fl_behaviour(ax_actor *self, const ax_msg *msg) {
  fl_state *st = ax_state(self);
  if (msg->type == T_GATE) {
    sem_post(&st->sh->in_gate);
    sem_wait(&st->sh->gate);
  }
  st->pending++;
  atomic_fetch_add(&st->sh->delivered, 1);
  return AX_OK;
}

static ax_err fl_flush(ax_actor *self, void *state) {
  (void)self;
  fl_state *st = state;
  if (!st->pending) atomic_fetch_add(&st->sh->empty, 1);
  if (st->sh->spins) atomic_store(&st->sh->spins_at_flush, atomic_load(st->sh->spins));
  atomic_store(&st->sh->last_seen, st->pending);
  atomic_fetch_add(&st->sh->flushed, st->pending);
  st->pending = 0;
  atomic_fetch_add(&st->sh->flushes, 1);
  return st->sh->flush_result;
}

static void fl_terminate(ax_actor *self, void *state, ax_reason reason) {
  (void)self;
  fl_shared *sh = ((fl_state *)state)->sh;
  atomic_store(&sh->reason, (int32_t)reason);
  atomic_fetch_add(&sh->terminated, 1);
}

static const ax_actor_spec fl_spec = {.name = "flush", .behaviour = fl_behaviour,
                                      .state_size = sizeof(fl_state), .init = fl_init,
                                      .terminate = fl_terminate, .flush = fl_flush};

static void fl_shared_init(fl_shared *sh) {
  memset(sh, 0, sizeof(*sh));
  sem_init(&sh->gate, 0, 0);
  sem_init(&sh->in_gate, 0, 0);
}

static void fl_shared_fini(fl_shared *sh) {
  sem_destroy(&sh->gate);
  sem_destroy(&sh->in_gate);
}

static ax_pid spawn_fl(ax_system *sys, fl_shared *sh) {
  ax_pid p = AX_PID_NONE;
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &fl_spec, &sh, sizeof(sh), &p), AX_OK);
  return p;
}

/* 20,000 messages from two threads' worth of sends: every message is seen
 * by a flush, and no flush runs with nothing delivered. */
static void test_flush_sees_every_message(void) {
  ax_system *sys = ax_test_system(2);
  fl_shared sh;
  fl_shared_init(&sh);
  ax_pid p = spawn_fl(sys, &sh);
  enum { N = 20000 };
  for (uint64_t i = 0; i < N; i++) CU_ASSERT_EQUAL(ax_system_send(sys, p, T_DATA, &i, sizeof(i)), AX_OK);
  CU_ASSERT_TRUE(ax_test_wait_count(&sh.flushed, N, 10000));
  CU_ASSERT_EQUAL(atomic_load(&sh.delivered), N);
  CU_ASSERT_EQUAL(atomic_load(&sh.empty), 0);
  CU_ASSERT_TRUE(atomic_load(&sh.flushes) >= 1);
  CU_ASSERT_TRUE(atomic_load(&sh.flushes) <= N);
  ax_system_free(sys);
  CU_ASSERT_EQUAL(atomic_load(&sh.terminated), 1);
  fl_shared_fini(&sh);
}

/* A backlog queued while the actor is busy is handled in runs of the batch
 * budget, each followed by one flush: 1 (the gate's run) + 500/100. */
static void test_flush_coalesces_a_backlog(void) {
  ax_system_config cfg;
  ax_system_config_init(&cfg);
  cfg.workers = 2;
  cfg.batch = 100;
  ax_system *sys = NULL;
  CU_ASSERT_EQUAL_FATAL(ax_system_new(&cfg, &sys), AX_OK);
  fl_shared sh;
  fl_shared_init(&sh);
  ax_pid p = spawn_fl(sys, &sh);
  CU_ASSERT_EQUAL(ax_system_send(sys, p, T_GATE, NULL, 0), AX_OK);
  sem_wait(&sh.in_gate); /* the actor is inside its first run */
  enum { N = 500 };
  for (uint64_t i = 0; i < N; i++) CU_ASSERT_EQUAL(ax_system_send(sys, p, T_DATA, &i, sizeof(i)), AX_OK);
  sem_post(&sh.gate);
  CU_ASSERT_TRUE(ax_test_wait_count(&sh.flushed, N + 1, 10000));
  CU_ASSERT_EQUAL(atomic_load(&sh.flushes), 1 + N / 100);
  CU_ASSERT_EQUAL(atomic_load(&sh.empty), 0);
  ax_system_free(sys);
  fl_shared_fini(&sh);
}

/* Runs that deliver nothing (monitor signals handled on the system lane)
 * get no flush: after 50 monitors and one message, exactly one flush. */
typedef struct poker_state {
  ax_pid target;
} poker_state;

static ax_err poker_behaviour(ax_actor *self, const ax_msg *msg) {
  poker_state *st = ax_state(self);
  if (msg->type != T_POKE) return AX_OK;
  memcpy(&st->target, msg->data, sizeof(st->target));
  for (int i = 0; i < 50; i++) {
    ax_ref ref;
    ax_err e = ax_monitor(self, st->target, &ref);
    if (e != AX_OK) return e;
  }
  return ax_send(self, st->target, T_DATA, NULL, 0);
}

static const ax_actor_spec poker_spec = {.name = "poker", .behaviour = poker_behaviour,
                                         .state_size = sizeof(poker_state)};

static void test_flush_skips_runs_without_delivery(void) {
  ax_system *sys = ax_test_system(2);
  fl_shared sh;
  fl_shared_init(&sh);
  ax_pid p = spawn_fl(sys, &sh);
  ax_pid poker = AX_PID_NONE;
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &poker_spec, NULL, 0, &poker), AX_OK);
  CU_ASSERT_EQUAL(ax_system_send(sys, poker, T_POKE, &p, sizeof(p)), AX_OK);
  CU_ASSERT_TRUE(ax_test_wait_count(&sh.flushed, 1, 10000));
  CU_ASSERT_EQUAL(atomic_load(&sh.flushes), 1);
  CU_ASSERT_EQUAL(atomic_load(&sh.empty), 0);
  ax_system_free(sys);
  fl_shared_fini(&sh);
}

/* A flush error stops the actor like a behaviour error; terminate runs. */
static void test_flush_error_stops_the_actor(void) {
  ax_system *sys = ax_test_system(1);
  fl_shared sh;
  fl_shared_init(&sh);
  sh.flush_result = AX_EINVAL;
  ax_pid p = spawn_fl(sys, &sh);
  CU_ASSERT_EQUAL(ax_system_send(sys, p, T_DATA, NULL, 0), AX_OK);
  CU_ASSERT_TRUE(ax_test_wait_count(&sh.terminated, 1, 10000));
  CU_ASSERT_EQUAL(atomic_load(&sh.reason), (int32_t)(AX_REASON_ERROR + (ax_reason)AX_EINVAL));
  CU_ASSERT_EQUAL(atomic_load(&sh.flushes), 1);
  ax_system_free(sys);
  fl_shared_fini(&sh);
}

/* ---- ax_flush_later ---- */

/* The deferring actor: fl_behaviour after ax_flush_later; T_FIRST asks the
 * driver (pid in the payload) for more, T_EXIT stops. */
static ax_err dl_behaviour(ax_actor *self, const ax_msg *msg) {
  fl_state *st = ax_state(self);
  fl_shared *sh = st->sh;
  ax_flush_later(self);
  if (st->pending == 0 && sh->spins) atomic_store(&sh->spins_at_defer, atomic_load(sh->spins));
  ax_err e = fl_behaviour(self, msg);
  if (e != AX_OK) return e;
  if (msg->type == T_FIRST) {
    ax_pid d;
    memcpy(&d, msg->data, sizeof d);
    return ax_send(self, d, T_MORE, NULL, 0);
  }
  if (msg->type == T_EXIT) return ax_exit(self, ax_self(self), AX_REASON_NORMAL);
  return AX_OK;
}

static const ax_actor_spec dl_spec = {.name = "flush-later", .behaviour = dl_behaviour,
                                      .state_size = sizeof(fl_state), .init = fl_init,
                                      .terminate = fl_terminate, .flush = fl_flush};

/* One worker; batch and flush_later_us as given (0: the defaults). */
static ax_system *one_worker_with(uint32_t batch, uint32_t flush_later_us) {
  ax_system_config cfg;
  ax_system_config_init(&cfg);
  cfg.workers = 1;
  cfg.batch = batch;
  cfg.flush_later_us = flush_later_us;
  ax_system *sys = NULL;
  CU_ASSERT_FATAL(ax_system_new(&cfg, &sys) == AX_OK);
  return sys;
}

static ax_system *one_worker(uint32_t batch) { return one_worker_with(batch, 0); }

/* ---- messages that arrive while deferred come before the flush ---- */

enum { MORE = 50 };

static ax_err driver_behaviour(ax_actor *self, const ax_msg *msg) {
  if (msg->type != T_MORE) return AX_OK;
  for (uint64_t i = 0; i < MORE; i++) {
    ax_err e = ax_send(self, msg->from, T_DATA, &i, sizeof i);
    if (e != AX_OK) return e;
  }
  return AX_OK;
}

static const ax_actor_spec driver_spec = {.name = "driver", .behaviour = driver_behaviour};

/* One worker: X's first run asks the driver for MORE messages and defers
 * its flush; the driver runs next (X's send made it runnable on this
 * worker) and sends them while X waits on the deferred list; then the
 * worker runs dry and runs X again: X handles the MORE messages, then
 * flushes once, having seen all 1 + MORE. Without the deferral the first
 * run's flush would have seen 1 and a second flush MORE. */
static void test_messages_while_deferred_come_first(void) {
  ax_system *sys = one_worker(1000);
  fl_shared sh;
  fl_shared_init(&sh);
  fl_shared *shp = &sh;
  ax_pid x, d;
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &dl_spec, &shp, sizeof shp, &x), AX_OK);
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &driver_spec, NULL, 0, &d), AX_OK);
  CU_ASSERT_EQUAL(ax_system_send(sys, x, T_FIRST, &d, sizeof d), AX_OK);
  CU_ASSERT_TRUE(ax_test_wait_count(&sh.flushed, 1 + MORE, 10000));
  CU_ASSERT_EQUAL(atomic_load(&sh.delivered), 1 + MORE);
  CU_ASSERT_EQUAL(atomic_load(&sh.flushes), 1);
  CU_ASSERT_EQUAL(atomic_load(&sh.last_seen), 1 + MORE);
  ax_system_free(sys);
  CU_ASSERT_EQUAL(atomic_load(&sh.terminated), 1);
  fl_shared_fini(&sh);
}

/* ---- the flush comes within the bound on a worker that never runs dry ---- */

typedef struct spin_shared {
  _Atomic uint64_t spins;
  _Atomic int stop;
  uint64_t busy_ns; /* each message keeps the spinner busy this long */
} spin_shared;


static ax_err spin_init(ax_actor *self, void *state, const void *arg, size_t len) {
  (void)self;
  if (len != sizeof(spin_shared *)) return AX_EINVAL;
  memcpy(state, arg, len);
  return AX_OK;
}

static ax_err spin_behaviour(ax_actor *self, const ax_msg *msg) {
  spin_shared *sp = *(spin_shared **)ax_state(self);
  if (msg->type != T_SPIN) return AX_OK;
  ax_test_busy_ns(sp->busy_ns);
  atomic_fetch_add(&sp->spins, 1);
  if (atomic_load(&sp->stop)) return AX_OK;
  return ax_send(self, ax_self(self), T_SPIN, NULL, 0); /* always runnable */
}

static const ax_actor_spec spin_spec = {.name = "spinner", .behaviour = spin_behaviour,
                                        .state_size = sizeof(spin_shared *), .init = spin_init};

/* Starts the spinner (each of its messages keeps the worker busy for
 * busy_ns) on sys, waits until it has made `warm` runs, has X defer its
 * flush and returns how many spinner messages were handled between X's
 * deferring run and its flush (UINT64_MAX if the flush never came). Frees
 * sys. */
static uint64_t spins_before_flush(ax_system *sys, uint64_t busy_ns, uint64_t warm) {
  spin_shared sp;
  memset(&sp, 0, sizeof sp);
  sp.busy_ns = busy_ns;
  spin_shared *spp = &sp;
  fl_shared sh;
  fl_shared_init(&sh);
  sh.spins = &sp.spins;
  fl_shared *shp = &sh;
  ax_pid s, x;
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &spin_spec, &spp, sizeof spp, &s), AX_OK);
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &dl_spec, &shp, sizeof shp, &x), AX_OK);
  CU_ASSERT_EQUAL(ax_system_send(sys, s, T_SPIN, NULL, 0), AX_OK);
  CU_ASSERT_TRUE(ax_test_wait_count(&sp.spins, warm, 10000)); /* spinning */
  CU_ASSERT_EQUAL(ax_system_send(sys, x, T_DATA, NULL, 0), AX_OK);
  bool flushed = ax_test_wait_count(&sh.flushes, 1, 10000);
  atomic_store(&sp.stop, 1);
  CU_ASSERT_TRUE(flushed);
  CU_ASSERT_EQUAL(atomic_load(&sh.flushed), 1);
  uint64_t waited = atomic_load(&sh.spins_at_flush) - atomic_load(&sh.spins_at_defer);
  ax_system_free(sys);
  fl_shared_fini(&sh);
  return flushed ? waited : UINT64_MAX;
}

/* One worker kept busy by an actor that always has a message for itself
 * (its queues never run dry): a deferred flush still comes, after at most
 * AX_FLUSH_LATER_RUNS runs of the spinner (each at most `batch` messages;
 * one more for the run under way when X deferred). Counts, not time: the
 * spinner is still spinning when the flush comes. */
static void test_flush_comes_on_a_busy_worker(void) {
  enum { BATCH = 10 };
  uint64_t waited = spins_before_flush(one_worker(BATCH), 0, 1000);
  CU_ASSERT_TRUE(waited <= (uint64_t)(AX_FLUSH_LATER_RUNS + 1) * BATCH);
}

/* The same with long runs: each of the spinner's messages keeps the worker
 * busy for 5 ms, and flush_later_us is 1 ms, so the flush is due when the
 * run under way when X deferred ends, long before AX_FLUSH_LATER_RUNS runs
 * (which would be 128 * 5 ms): it comes after at most that run and the
 * one that may have started before X's message was queued. Counts again:
 * the clock only decides the bound, which a 5 ms run always passes. */
static void test_flush_comes_within_flush_later_us(void) {
  CU_ASSERT_TRUE(spins_before_flush(one_worker_with(1, 1000), 5000000, 2) <= 2);
}

/* A worker that runs out of work does not wait for the bound: with
 * flush_later_us at 60 s and nothing else to run, the deferred flush comes
 * within the test's 10 s wait, so it came from the idle worker's search
 * ending, not from the clock. Twice: a second deferral after the first
 * flush is handled the same way. */
static void test_idle_worker_flushes_without_the_bound(void) {
  ax_system *sys = one_worker_with(0, 60u * 1000 * 1000);
  fl_shared sh;
  fl_shared_init(&sh);
  fl_shared *shp = &sh;
  ax_pid x;
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &dl_spec, &shp, sizeof shp, &x), AX_OK);
  for (uint64_t i = 1; i <= 2; i++) {
    CU_ASSERT_EQUAL(ax_system_send(sys, x, T_DATA, NULL, 0), AX_OK);
    CU_ASSERT_TRUE(ax_test_wait_count(&sh.flushes, i, 10000));
    CU_ASSERT_EQUAL(atomic_load(&sh.flushed), i);
  }
  ax_system_free(sys);
  fl_shared_fini(&sh);
}

/* ---- many workers: no concurrent run, no loss, per-sender order ---- */

enum { NRECV = 8, NSEND = 6, PER = 3000, CHUNK = 16 };

typedef struct ord_shared {
  _Atomic uint64_t delivered, flushed, overlaps, order_errors;
  ax_pid recv[NRECV];
} ord_shared;

typedef struct ord_state {
  ord_shared *sh;
  _Atomic int inside; /* set while a callback of this actor runs */
  uint64_t pending;
  uint32_t next[NSEND]; /* per sender: the next sequence expected */
} ord_state;

typedef struct ord_msg {
  uint32_t sender, seq;
} ord_msg;

static ax_err ord_init(ax_actor *self, void *state, const void *arg, size_t len) {
  (void)self;
  if (len != sizeof(ord_shared *)) return AX_EINVAL;
  memcpy(&((ord_state *)state)->sh, arg, len);
  return AX_OK;
}

static void enter(ord_state *st) {
  if (atomic_exchange(&st->inside, 1)) atomic_fetch_add(&st->sh->overlaps, 1);
}

static ax_err ord_behaviour(ax_actor *self, const ax_msg *msg) {
  ord_state *st = ax_state(self);
  enter(st);
  if (msg->type == T_DATA && msg->len == sizeof(ord_msg)) {
    ord_msg m;
    memcpy(&m, msg->data, sizeof m);
    if (m.sender >= NSEND || m.seq != st->next[m.sender]) atomic_fetch_add(&st->sh->order_errors, 1);
    else st->next[m.sender]++;
    st->pending++;
    atomic_fetch_add(&st->sh->delivered, 1);
    if (m.seq % 3 != 0) ax_flush_later(self); /* most runs defer, some do not */
  }
  atomic_store(&st->inside, 0);
  return AX_OK;
}

static ax_err ord_flush(ax_actor *self, void *state) {
  (void)self;
  ord_state *st = state;
  enter(st);
  atomic_fetch_add(&st->sh->flushed, st->pending);
  st->pending = 0;
  atomic_store(&st->inside, 0);
  return AX_OK;
}

static const ax_actor_spec ord_spec = {.name = "deferring", .behaviour = ord_behaviour,
                                       .state_size = sizeof(ord_state), .init = ord_init,
                                       .flush = ord_flush};

typedef struct sender_state {
  ord_shared *sh;
  uint32_t index, seq;
} sender_state;

static ax_err sender_init(ax_actor *self, void *state, const void *arg, size_t len) {
  (void)self;
  if (len != sizeof(sender_state)) return AX_EINVAL;
  memcpy(state, arg, len);
  return AX_OK;
}

/* Sends CHUNK messages to every receiver per run, then a T_GO to itself,
 * so that its runs interleave with the receivers' deferred ones. */
static ax_err sender_behaviour(ax_actor *self, const ax_msg *msg) {
  sender_state *st = ax_state(self);
  if (msg->type != T_GO) return AX_OK;
  for (uint32_t k = 0; k < CHUNK && st->seq < PER; k++, st->seq++)
    for (uint32_t r = 0; r < NRECV; r++) {
      ord_msg m = {st->index, st->seq};
      ax_err e = ax_send(self, st->sh->recv[r], T_DATA, &m, sizeof m);
      if (e != AX_OK) return e;
    }
  if (st->seq < PER) return ax_send(self, ax_self(self), T_GO, NULL, 0);
  return AX_OK;
}

static const ax_actor_spec sender_spec = {.name = "sender", .behaviour = sender_behaviour,
                                          .state_size = sizeof(sender_state),
                                          .init = sender_init};

static void test_no_concurrent_run_no_loss_in_order(void) {
  ax_system *sys = ax_test_system(4);
  ord_shared sh;
  memset(&sh, 0, sizeof sh);
  ord_shared *shp = &sh;
  for (int r = 0; r < NRECV; r++)
    CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &ord_spec, &shp, sizeof shp, &sh.recv[r]), AX_OK);
  for (uint32_t j = 0; j < NSEND; j++) {
    sender_state init = {&sh, j, 0};
    ax_pid p;
    CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &sender_spec, &init, sizeof init, &p), AX_OK);
    CU_ASSERT_EQUAL(ax_system_send(sys, p, T_GO, NULL, 0), AX_OK);
  }
  const uint64_t total = (uint64_t)NRECV * NSEND * PER;
  CU_ASSERT_TRUE(ax_test_wait_count(&sh.delivered, total, 30000));
  /* Every deferred flush comes: all that was delivered is flushed. */
  CU_ASSERT_TRUE(ax_test_wait_count(&sh.flushed, total, 30000));
  CU_ASSERT_EQUAL(atomic_load(&sh.delivered), total);
  CU_ASSERT_EQUAL(atomic_load(&sh.flushed), total);
  CU_ASSERT_EQUAL(atomic_load(&sh.overlaps), 0);
  CU_ASSERT_EQUAL(atomic_load(&sh.order_errors), 0);
  ax_system_free(sys);
}

/* ---- no effect: no flush, a stopping actor, NULL ---- */

static _Atomic uint64_t plain_delivered;

static ax_err plain_behaviour(ax_actor *self, const ax_msg *msg) {
  (void)msg;
  ax_flush_later(self); /* no flush: the run ends as any other */
  atomic_fetch_add(&plain_delivered, 1);
  return AX_OK;
}

static const ax_actor_spec plain_spec = {.name = "plain", .behaviour = plain_behaviour};

static void test_no_effect_without_flush_or_when_stopping(void) {
  ax_system *sys = ax_test_system(2);
  ax_flush_later(NULL); /* ignored */
  atomic_store(&plain_delivered, 0);
  ax_pid p;
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &plain_spec, NULL, 0, &p), AX_OK);
  for (int i = 0; i < 100; i++) CU_ASSERT_EQUAL(ax_system_send(sys, p, T_DATA, NULL, 0), AX_OK);
  CU_ASSERT_TRUE(ax_test_wait_count(&plain_delivered, 100, 10000));
  /* A run that asks for a later flush and stops: terminate, no flush. */
  fl_shared sh;
  fl_shared_init(&sh);
  fl_shared *shp = &sh;
  ax_pid x;
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &dl_spec, &shp, sizeof shp, &x), AX_OK);
  CU_ASSERT_EQUAL(ax_system_send(sys, x, T_EXIT, NULL, 0), AX_OK);
  CU_ASSERT_TRUE(ax_test_wait_count(&sh.terminated, 1, 10000));
  CU_ASSERT_EQUAL(atomic_load(&sh.flushes), 0);
  ax_system_free(sys);
  fl_shared_fini(&sh);
}

int main(void) {
  CU_pSuite s = ax_test_suite("actor.flush");
  CU_add_test(s, "flush sees every message, never an empty run", test_flush_sees_every_message);
  CU_add_test(s, "a backlog is flushed once per batch budget", test_flush_coalesces_a_backlog);
  CU_add_test(s, "runs that deliver nothing get no flush", test_flush_skips_runs_without_delivery);
  CU_add_test(s, "a flush error stops the actor", test_flush_error_stops_the_actor);
  CU_add_test(s, "flush_later: messages that arrive while deferred come before the one flush",
              test_messages_while_deferred_come_first);
  CU_add_test(s, "flush_later: the flush comes within the bound on a busy worker",
              test_flush_comes_on_a_busy_worker);
  CU_add_test(s, "flush_later: the flush comes within flush_later_us when runs are long",
              test_flush_comes_within_flush_later_us);
  CU_add_test(s, "flush_later: an idle worker flushes without waiting for flush_later_us",
              test_idle_worker_flushes_without_the_bound);
  CU_add_test(s, "flush_later: four workers, no concurrent run, no loss, per-sender order",
              test_no_concurrent_run_no_loss_in_order);
  CU_add_test(s, "flush_later: no effect without a flush or when stopping",
              test_no_effect_without_flush_or_when_stopping);
  return ax_test_run();
}
