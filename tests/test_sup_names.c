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

/* ---- registered supervisors (ax_sup_spec.register_name) ---- */

/* A worker that looks its supervisor up by name in init and records it. */
static _Atomic uint64_t finder_starts, finder_saw;

static ax_err finder_init(ax_actor *self, void *state, const void *arg, size_t len) {
  (void)state, (void)len;
  ax_pid p = AX_PID_NONE;
  if (ax_whereis(ax_actor_system(self), (const char *)arg, &p) == AX_OK) atomic_store(&finder_saw, p.id);
  atomic_fetch_add(&finder_starts, 1);
  return AX_OK;
}

static const ax_actor_spec finder_spec = {.name = "finder", .behaviour = named_behaviour,
                                          .init = finder_init};

/* A registered sub-supervisor is found by its children during their init
 * and by anyone after; killed, it is restarted by its parent under the same
 * name with a new pid, and its new children find the new one. */
static void test_sup_registered_supervisor_follows_restarts(void) {
  ax_system *sys = sys_new();
  atomic_store(&finder_starts, 0);
  atomic_store(&finder_saw, 0);
  static const char reg[] = "the-sub";
  ax_child_spec kid = {.id = "finder", .start = &finder_spec, .arg = reg, .arg_len = sizeof(reg)};
  ax_sup_spec sub = {.name = "sub", .children = &kid, .nchildren = 1, .register_name = reg};
  ax_child_spec top_kids[] = {AX_SUP_CHILD("sub", &sub)};
  ax_sup_spec top = {.name = "top", .intensity = 10, .children = top_kids, .nchildren = 1};
  ax_pid top_pid;
  CU_ASSERT_EQUAL_FATAL(ax_supervisor_start(sys, &top, &top_pid), AX_OK);
  ax_pid first = AX_PID_NONE;
  CU_ASSERT_EQUAL_FATAL(ax_whereis(sys, reg, &first), AX_OK);
  CU_ASSERT(wait_n(&finder_starts, 1));
  CU_ASSERT_EQUAL(atomic_load(&finder_saw), first.id); /* found during its init */
  ax_sup_child_info info[2];
  CU_ASSERT_EQUAL_FATAL(which(sys, top_pid, info, 2), 1);
  CU_ASSERT_EQUAL(info[0].pid.id, first.id);

  CU_ASSERT_EQUAL(ax_system_exit(sys, first, AX_REASON_KILL), AX_OK);
  CU_ASSERT(wait_n(&finder_starts, 2));
  ax_pid second = AX_PID_NONE;
  CU_ASSERT_EQUAL(ax_whereis(sys, reg, &second), AX_OK);
  CU_ASSERT(!ax_pid_eq(first, second));
  CU_ASSERT_EQUAL(atomic_load(&finder_saw), second.id);
  CU_ASSERT(pid_dead(sys, first));
  CU_ASSERT_EQUAL(counts(sys, top_pid).restarts, 1);
  ax_system_free(sys);
}

/* A name already taken fails the start (AX_EEXIST) and leaves nothing
 * behind; bad names are refused before anything starts. */
static void test_sup_register_name_taken_or_bad(void) {
  ax_system *sys = sys_new();
  static const char reg[] = "taken";
  ax_sup_spec a = {.name = "a", .register_name = reg};
  ax_pid pa, pb = AX_PID_NONE, where;
  CU_ASSERT_EQUAL_FATAL(ax_supervisor_start(sys, &a, &pa), AX_OK);
  ax_sup_spec b = {.name = "b", .register_name = reg};
  CU_ASSERT_EQUAL(ax_supervisor_start(sys, &b, &pb), AX_EEXIST);
  CU_ASSERT_EQUAL(ax_whereis(sys, reg, &where), AX_OK);
  CU_ASSERT_EQUAL(where.id, pa.id);
  char longname[300];
  memset(longname, 'n', sizeof longname - 1);
  longname[sizeof longname - 1] = '\0';
  ax_sup_spec c = {.name = "c", .register_name = longname};
  CU_ASSERT_EQUAL(ax_supervisor_start(sys, &c, &pb), AX_EINVAL);
  ax_sup_spec d = {.name = "d", .register_name = ""};
  CU_ASSERT_EQUAL(ax_supervisor_start(sys, &d, &pb), AX_EINVAL);
  longname[255] = '\0'; /* 255 bytes: the registry's longest */
  ax_sup_spec e = {.name = "e", .register_name = longname};
  CU_ASSERT_EQUAL(ax_supervisor_start(sys, &e, &pb), AX_OK);
  CU_ASSERT_EQUAL(ax_whereis(sys, longname, &where), AX_OK);
  CU_ASSERT_EQUAL(where.id, pb.id);
  ax_system_free(sys);
}

int main(void) {
  CU_pSuite s = ax_test_suite("sup.names");
  CU_ADD_TEST(s, test_sup_named_child_restarts_every_time);
  CU_ADD_TEST(s, test_sup_name_released_before_down_or_exit);
  CU_ADD_TEST(s, test_sup_registered_supervisor_follows_restarts);
  CU_ADD_TEST(s, test_sup_register_name_taken_or_bad);
  return ax_test_run();
}
