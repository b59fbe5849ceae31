/* Tests for the spec's end-of-run hook (ax_actor_spec.flush): it follows
 * every run that delivered something, sees everything the run delivered,
 * is never called for a run that delivered nothing, coalesces a backlog
 * into runs of the batch budget, and stops the actor on error. */
#include <axon.h>
#include <pthread.h>
#include <semaphore.h>
#include <string.h>

#include "support/testutil.h"

enum { T_DATA = AX_MSG_USER, T_GATE, T_POKE };

typedef struct fl_shared {
  _Atomic uint64_t delivered;   /* behaviour calls */
  _Atomic uint64_t flushed;     /* sum of what each flush saw */
  _Atomic uint64_t flushes;     /* flush calls */
  _Atomic uint64_t empty;       /* flush calls that saw nothing */
  _Atomic uint64_t terminated;
  _Atomic int32_t reason;
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

int main(void) {
  CU_pSuite s = ax_test_suite("actor.flush");
  CU_add_test(s, "flush sees every message, never an empty run", test_flush_sees_every_message);
  CU_add_test(s, "a backlog is flushed once per batch budget", test_flush_coalesces_a_backlog);
  CU_add_test(s, "runs that deliver nothing get no flush", test_flush_skips_runs_without_delivery);
  CU_add_test(s, "a flush error stops the actor", test_flush_error_stops_the_actor);
  return ax_test_run();
}
