/* Tests for how supervisors stop children: reverse order, a timeout then
 * kill (manual clock), brutal kill, infinity for a sub-supervisor (its whole
 * tree first), a parent's exit stopping a linked supervisor, and
 * ax_system_shutdown stopping top-level supervisors first, newest first. */
#include <axon.h>
#include <pthread.h>
#include <string.h>


#include "support/sup_harness.h"

/* ---- reverse order and shutdown specs ---- */

static void test_sup_shutdown_reverse_order(void) {
  ax_system *sys = sys_new();
  ax_child_spec kids[5];
  const char *ids[5] = {"c0", "c1", "c2", "c3", "c4"};
  for (uint32_t i = 0; i < 5; i++) kids[i] = wchild(ids[i], i, 0);
  ax_pid sup = start_sup(sys, AX_SUP_ONE_FOR_ALL, kids, 5, 1);
  CU_ASSERT_EQUAL(ax_system_exit(sys, sup, AX_REASON_SHUTDOWN), AX_OK);
  CU_ASSERT(pid_dead(sys, sup));
  CU_ASSERT_EQUAL(atomic_load(&g.nstop), 5);
  for (int i = 0; i < 5; i++) {
    CU_ASSERT_EQUAL(atomic_load(&g.stop_order[i]), 4 - i);
    CU_ASSERT_EQUAL(atomic_load(&g.reason[i]), AX_REASON_SHUTDOWN);
  }
  ax_system_free(sys);
}

static void test_sup_shutdown_timeout_then_kill(void) {
  ax_system *sys = sys_new();
  ax_child_spec kids[2] = {wchild("a", 0, 0), wchild("stubborn", 1, 0)};
  wa[1].flags = WF_TRAP; /* traps exits and ignores the shutdown */
  kids[1].shutdown = 1000;
  ax_pid sup = start_sup(sys, AX_SUP_ONE_FOR_ONE, kids, 2, 1);
  CU_ASSERT_EQUAL(ax_system_exit(sys, sup, AX_REASON_SHUTDOWN), AX_OK);
  CU_ASSERT(wait_n(&g.exits_seen[1], 1)); /* it got exit(shutdown) and ignored it */
  CU_ASSERT_EQUAL(atomic_load(&g.stops[1]), 0); /* the clock has not moved */
  CU_ASSERT_EQUAL(atomic_load(&g.stops[0]), 0); /* a waits its turn */
  advance(sys, 1000);
  CU_ASSERT(wait_n(&g.stops[1], 1));
  CU_ASSERT_EQUAL(atomic_load(&g.reason[1]), AX_REASON_KILLED);
  CU_ASSERT(pid_dead(sys, sup));
  CU_ASSERT_EQUAL(atomic_load(&g.stop_order[0]), 1);
  CU_ASSERT_EQUAL(atomic_load(&g.stop_order[1]), 0);
  CU_ASSERT_EQUAL(atomic_load(&g.reason[0]), AX_REASON_SHUTDOWN);
  CU_ASSERT(log_has("child stubborn <"));
  CU_ASSERT(log_has("did not stop within 1000 ms: killing it"));
  ax_system_free(sys);
}

static void test_sup_shutdown_brutal_kill(void) {
  ax_system *sys = sys_new();
  ax_child_spec kids[2] = {wchild("a", 0, 0), wchild("b", 1, 0)};
  wa[0].flags = wa[1].flags = WF_TRAP;
  kids[0].shutdown = kids[1].shutdown = AX_SHUTDOWN_BRUTAL_KILL;
  ax_pid sup = start_sup(sys, AX_SUP_ONE_FOR_ONE, kids, 2, 1);
  CU_ASSERT_EQUAL(ax_system_exit(sys, sup, AX_REASON_SHUTDOWN), AX_OK);
  CU_ASSERT(pid_dead(sys, sup));
  CU_ASSERT_EQUAL(atomic_load(&g.nstop), 2);
  CU_ASSERT_EQUAL(atomic_load(&g.stop_order[0]), 1);
  CU_ASSERT_EQUAL(atomic_load(&g.stop_order[1]), 0);
  for (int i = 0; i < 2; i++) {
    CU_ASSERT_EQUAL(atomic_load(&g.reason[i]), AX_REASON_KILLED);
    CU_ASSERT_EQUAL(atomic_load(&g.exits_seen[i]), 0); /* no chance to trap anything */
  }
  ax_system_free(sys);
}

static void test_sup_shutdown_infinity_waits_for_subtree(void) {
  ax_system *sys = sys_new();
  ax_child_spec sub_kids[2] = {wchild("s1", 1, 0), wchild("s2", 2, 0)};
  wa[2].flags = WF_TRAP; /* slow to stop: only a timeout gets it */
  sub_kids[1].shutdown = 500;
  ax_sup_spec sub = {.name = "sub", .children = sub_kids, .nchildren = 2};
  ax_child_spec kids[2] = {wchild("w0", 0, 0), AX_SUP_CHILD("sub", &sub)};
  ax_pid sup = start_sup(sys, AX_SUP_ONE_FOR_ONE, kids, 2, 1);
  CU_ASSERT_EQUAL(ax_system_exit(sys, sup, AX_REASON_SHUTDOWN), AX_OK);
  CU_ASSERT(wait_n(&g.exits_seen[2], 1));
  CU_ASSERT_EQUAL(atomic_load(&g.nstop), 0); /* sub (infinity) holds top */
  advance(sys, 500);
  CU_ASSERT(pid_dead(sys, sup));
  CU_ASSERT_EQUAL(atomic_load(&g.nstop), 3);
  CU_ASSERT_EQUAL(atomic_load(&g.stop_order[0]), 2);
  CU_ASSERT_EQUAL(atomic_load(&g.stop_order[1]), 1);
  CU_ASSERT_EQUAL(atomic_load(&g.stop_order[2]), 0);
  ax_system_free(sys);
}

/* ---- a linked supervisor follows its parent ---- */

enum { P_START = AX_MSG_USER + 100, P_STOP };
static _Atomic uint64_t linked_sup;
static ax_child_spec p_kids[3];
static ax_sup_spec p_spec = {.name = "linked", .children = p_kids, .nchildren = 3};

static ax_err parent_behaviour(ax_actor *self, const ax_msg *msg) {
  if (msg->type == P_START) {
    ax_pid sup;
    ax_err e = ax_supervisor_start_link(self, &p_spec, &sup);
    if (e == AX_OK) atomic_store(&linked_sup, sup.id);
    return e;
  }
  if (msg->type == P_STOP) return ax_exit(self, ax_self(self), AX_REASON_USER + 1);
  return AX_OK;
}

static const ax_actor_spec parent_spec = {.name = "parent", .behaviour = parent_behaviour};

static bool linked_started(void *arg) { return atomic_load(&linked_sup) != 0; }

static void test_sup_start_link_parent_exit_stops_children(void) {
  ax_system *sys = sys_new();
  atomic_store(&linked_sup, 0);
  p_kids[0] = wchild("a", 0, 0);
  p_kids[1] = wchild("b", 1, 0);
  p_kids[2] = wchild("c", 2, 0);
  ax_pid parent;
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &parent_spec, NULL, 0, &parent), AX_OK);
  CU_ASSERT_EQUAL(ax_system_send(sys, parent, P_START, NULL, 0), AX_OK);
  CU_ASSERT_FATAL(ax_test_wait(linked_started, NULL, WAIT_MS));
  ax_pid sup = {atomic_load(&linked_sup)};
  CU_ASSERT_EQUAL(counts(sys, sup).active, 3);
  CU_ASSERT_EQUAL(ax_system_send(sys, parent, P_STOP, NULL, 0), AX_OK);
  CU_ASSERT(pid_dead(sys, sup));
  CU_ASSERT_EQUAL(atomic_load(&g.nstop), 3);
  for (int i = 0; i < 3; i++) CU_ASSERT_EQUAL(atomic_load(&g.stop_order[i]), 2 - i);
  CU_ASSERT_EQUAL(ax_system_wait(sys, WAIT_MS), AX_OK);
  ax_system_free(sys);
}

/* ---- system shutdown ---- */

static void test_sup_system_shutdown_stops_top_level_supervisors_first(void) {
  ax_system *sys = sys_new();
  ax_child_spec a_kids[2] = {wchild("a0", 0, 0), wchild("a1", 1, 0)};
  ax_child_spec b_kids[2] = {wchild("b0", 2, 0), wchild("b1", 3, 0)};
  ax_pid a = start_sup(sys, AX_SUP_ONE_FOR_ONE, a_kids, 2, 1);
  ax_pid b = start_sup(sys, AX_SUP_REST_FOR_ONE, b_kids, 2, 1);
  warg lone = {.ctx = &g, .idx = 4};
  CU_ASSERT_EQUAL(ax_system_spawn(sys, &w_spec, &lone, sizeof(lone), NULL), AX_OK);
  CU_ASSERT_EQUAL(ax_system_shutdown(sys), AX_OK);
  /* b (newest) first, each newest child first, then the plain actor */
  CU_ASSERT_EQUAL(atomic_load(&g.nstop), 5);
  int expect[5] = {3, 2, 1, 0, 4};
  for (int i = 0; i < 5; i++) {
    CU_ASSERT_EQUAL(atomic_load(&g.stop_order[i]), expect[i]);
    CU_ASSERT_EQUAL(atomic_load(&g.reason[i]), AX_REASON_SHUTDOWN);
  }
  (void)a;
  (void)b;
  ax_system_free(sys);
}

/* During ax_system_shutdown a timed shutdown is still exact: the supervisor
 * signals, waits for the timeout (timers are accepted while the system is
 * stopping), and only then kills. The real clock here (a manual one would
 * have to be moved by another thread while the system tears down): the
 * kill coming from the timer, not at once (the fallback when no timer can
 * be armed), is what the timer's log line shows, whatever the timing. */
static void test_sup_system_shutdown_waits_for_timed_shutdown(void) {
  ax_system *sys = sys_new_real_clock();
  ax_child_spec kids[2] = {wchild("a", 0, 0), wchild("stubborn", 1, 0)};
  wa[1].flags = WF_TRAP; /* ignores exit(shutdown) */
  kids[1].shutdown = 200;
  start_sup(sys, AX_SUP_ONE_FOR_ONE, kids, 2, 1);
  CU_ASSERT_EQUAL(ax_system_shutdown(sys), AX_OK);
  CU_ASSERT_EQUAL(atomic_load(&g.exits_seen[1]), 1); /* signalled, and it ignored it */
  CU_ASSERT_EQUAL(atomic_load(&g.reason[1]), AX_REASON_KILLED);
  CU_ASSERT(log_has("child stubborn <"));
  CU_ASSERT(log_has("did not stop within 200 ms: killing it")); /* the timer killed it */
  CU_ASSERT_EQUAL(atomic_load(&g.stop_order[0]), 1);
  CU_ASSERT_EQUAL(atomic_load(&g.stop_order[1]), 0);
  CU_ASSERT_EQUAL(atomic_load(&g.reason[0]), AX_REASON_SHUTDOWN);
  ax_system_free(sys);
}

int main(void) {
  CU_pSuite s = ax_test_suite("sup.shutdown");
  CU_ADD_TEST(s, test_sup_shutdown_reverse_order);
  CU_ADD_TEST(s, test_sup_shutdown_timeout_then_kill);
  CU_ADD_TEST(s, test_sup_shutdown_brutal_kill);
  CU_ADD_TEST(s, test_sup_shutdown_infinity_waits_for_subtree);
  CU_ADD_TEST(s, test_sup_start_link_parent_exit_stops_children);
  CU_ADD_TEST(s, test_sup_system_shutdown_stops_top_level_supervisors_first);
  CU_ADD_TEST(s, test_sup_system_shutdown_waits_for_timed_shutdown);
  return ax_test_run();
}
