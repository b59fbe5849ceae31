/* Tests for registered names and supervision: a stopped actor's name is
 * released before its exit signal or DOWN can be observed (as in Erlang),
 * so a supervised child that registers its name in init restarts every
 * time, and every observer (a monitor's DOWN, a trapped link EXIT, an
 * ax_call that ends because its target stopped) finds the name free. */
#include <axon.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "support/sup_harness.h"

enum { N_CRASH = AX_MSG_USER + 200, N_WATCH, N_STOP_NOW, N_CALL_STOP };

/* ---- a named worker ---- */

static _Atomic uint64_t n_starts, n_init_fail, n_pid;

static ax_err named_init(ax_actor *self, void *state, const void *arg, size_t len) {
  (void)state;
  ax_err e = ax_register(ax_actor_system(self), (const char *)arg, ax_self(self));
  if (e != AX_OK) {
    atomic_fetch_add(&n_init_fail, 1);
    return e;
  }
  (void)len;
  atomic_store(&n_pid, ax_self(self).id);
  atomic_fetch_add(&n_starts, 1);
  return AX_OK;
}

static ax_err named_behaviour(ax_actor *self, const ax_msg *msg) {
  if (msg->type == N_CRASH) return AX_EINVAL;
  /* stops at once without answering (ax_call's target) */
  if (msg->type == N_STOP_NOW || msg->type == N_CALL_STOP)
    return ax_exit(self, ax_self(self), AX_REASON_USER + 1);
  return AX_OK;
}

static const ax_actor_spec named_spec = {.name = "named", .behaviour = named_behaviour,
                                         .init = named_init};

#define NCRASH 2000

static void test_sup_named_child_restarts_every_time(void) {
  ax_system *sys = sys_new();
  atomic_store(&n_starts, 0);
  atomic_store(&n_init_fail, 0);
  static const char name[] = "named-worker";
  ax_child_spec kid = {.id = "w", .start = &named_spec, .arg = name, .arg_len = sizeof(name)};
  ax_sup_spec spec = {.name = "top", .intensity = 10 * NCRASH, .period_ms = 5000,
                      .children = &kid, .nchildren = 1};
  ax_pid sup;
  CU_ASSERT_EQUAL_FATAL(ax_supervisor_start(sys, &spec, &sup), AX_OK);
  uint64_t i;
  for (i = 1; i <= NCRASH; i++) {
    if (!wait_n(&n_starts, i)) break;
    CU_ASSERT_EQUAL(ax_system_send(sys, (ax_pid){atomic_load(&n_pid)}, N_CRASH, NULL, 0), AX_OK);
  }
  printf("\n    crashes driven: %llu, failed starts: %llu\n", (unsigned long long)i - 1,
         (unsigned long long)atomic_load(&n_init_fail));
  CU_ASSERT_EQUAL(i, NCRASH + 1);
  CU_ASSERT(wait_n(&n_starts, NCRASH + 1));
  ax_sup_counts k = counts(sys, sup);
  CU_ASSERT_EQUAL(atomic_load(&n_init_fail), 0); /* no start failed on a stale name */
  CU_ASSERT_EQUAL(k.restarts, NCRASH);           /* one restart per crash */
  CU_ASSERT_EQUAL(k.failures, NCRASH);
  CU_ASSERT_EQUAL(k.active, 1);
  CU_ASSERT(!log_has("failed to start"));
  ax_pid where;
  CU_ASSERT_EQUAL(ax_whereis(sys, name, &where), AX_OK);
  CU_ASSERT_EQUAL(where.id, atomic_load(&n_pid));
  ax_system_free(sys);
}

/* ---- observers of a stop find the name free ---- */

#define NROUNDS 300
#define NMON 64
enum { MODE_MONITOR = 1, MODE_LINK = 2 };
static _Atomic uint64_t seen, name_taken, wrong;
static const char tgt_name[] = "observed";

/* Watches the target named in N_WATCH {pid, mode}, stops it, and on its
 * DOWN or EXIT checks that the name is already free. */
static ax_err watcher_behaviour(ax_actor *self, const ax_msg *msg) {
  ax_system *sys = ax_actor_system(self);
  if (msg->type == N_WATCH) {
    uint64_t w[2];
    memcpy(w, msg->data, sizeof(w));
    ax_pid t = {w[0]};
    /* Many monitors: the target sends many DOWNs as it stops, which gives
     * the first ones time to be handled while it is still stopping. */
    ax_err e = w[1] == MODE_LINK ? ax_link(self, t) : AX_OK;
    for (int i = 0; i < NMON && e == AX_OK; i++) e = ax_monitor(self, t, NULL);
    if (e != AX_OK) atomic_fetch_add(&wrong, 1);
    return ax_send(self, t, N_STOP_NOW, NULL, 0);
  }
  if (msg->type == AX_MSG_DOWN || msg->type == AX_MSG_EXIT) {
    ax_pid p;
    if (ax_whereis(sys, tgt_name, &p) == AX_OK) atomic_fetch_add(&name_taken, 1);
    atomic_fetch_add(&seen, 1);
  }
  return AX_OK;
}

static ax_err watcher_init(ax_actor *self, void *state, const void *arg, size_t len) {
  ax_trap_exit(self, true);
  return AX_OK;
}

static const ax_actor_spec watcher_spec = {.name = "watcher", .behaviour = watcher_behaviour,
                                           .init = watcher_init};

static void test_sup_name_released_before_down_or_exit(void) {
  ax_system *sys = sys_new();
  atomic_store(&seen, 0);
  atomic_store(&name_taken, 0);
  atomic_store(&wrong, 0);
  atomic_store(&n_init_fail, 0);
  ax_pid watcher;
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &watcher_spec, NULL, 0, &watcher), AX_OK);
  uint64_t round, expect = 0;
  for (round = 0; round < 2 * NROUNDS; round++) {
    ax_pid t;
    if (ax_system_spawn(sys, &named_spec, tgt_name, sizeof(tgt_name), &t) != AX_OK) break;
    uint64_t w[2] = {t.id, round % 2 ? MODE_LINK : MODE_MONITOR};
    CU_ASSERT_EQUAL(ax_system_send(sys, watcher, N_WATCH, w, sizeof(w)), AX_OK);
    expect += NMON + (round % 2 ? 1 : 0);
    if (!wait_n(&seen, expect)) break;
    /* ax_call's proxy: the call ends (ENOACTOR) only once the name is free */
    if (ax_system_spawn(sys, &named_spec, tgt_name, sizeof(tgt_name), &t) != AX_OK) break;
    char reply[16];
    size_t rlen = sizeof(reply);
    CU_ASSERT_EQUAL(ax_call(sys, t, N_CALL_STOP, NULL, 0, WAIT_MS, reply, &rlen, NULL),
                    AX_ENOACTOR);
    ax_pid p;
    if (ax_whereis(sys, tgt_name, &p) == AX_OK) atomic_fetch_add(&name_taken, 1);
  }
  CU_ASSERT_EQUAL(round, 2 * NROUNDS); /* every target registered: the name was free */
  CU_ASSERT_EQUAL(atomic_load(&name_taken), 0);
  CU_ASSERT_EQUAL(atomic_load(&wrong), 0);
  CU_ASSERT_EQUAL(atomic_load(&n_init_fail), 0);
  ax_system_free(sys);
}

int main(void) {
  CU_pSuite s = ax_test_suite("sup.names");
  CU_ADD_TEST(s, test_sup_named_child_restarts_every_time);
  CU_ADD_TEST(s, test_sup_name_released_before_down_or_exit);
  return ax_test_run();
}
