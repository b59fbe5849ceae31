/* Tests for supervisor restart rules: the strategies (one_for_one,
 * one_for_all, rest_for_one), the restart types (permanent, transient,
 * temporary), start order and start failure, re-init from the kept
 * argument, and restart intensity (escalation to the parent, the period,
 * nested trees). Time only matters for intensity, and the clock is manual. */
#include <axon.h>
#include <pthread.h>
#include <string.h>


#include "support/sup_harness.h"

/* Polls count_children until fn(counts) holds (generous bound). */
static bool wait_counts(ax_system *sys, ax_pid sup, bool (*fn)(const ax_sup_counts *)) {
  for (int i = 0; i < WAIT_MS; i++) {
    ax_sup_counts k;
    if (ax_supervisor_count_children(sys, sup, WAIT_MS, &k) == AX_OK && fn(&k)) return true;
    ax_test_sleep_ms(1);
  }
  return false;
}

static bool none_active(const ax_sup_counts *k) { return k->active == 0; }
static bool one_spec(const ax_sup_counts *k) { return k->specs == 1; }
static bool one_active(const ax_sup_counts *k) { return k->active == 1; }

/* ---- strategies ---- */

static void test_sup_one_for_one_restarts_only_failed_child(void) {
  ax_system *sys = sys_new();
  ax_child_spec kids[3] = {wchild("a", 0, 0), wchild("b", 1, 0), wchild("c", 2, 0)};
  ax_pid sup = start_sup(sys, AX_SUP_ONE_FOR_ONE, kids, 3, 10);
  uint64_t p0 = atomic_load(&g.pid[0]), p2 = atomic_load(&g.pid[2]);
  crash(sys, 1, W_CRASH);
  CU_ASSERT(wait_n(&g.starts[1], 2));
  ax_sup_counts k = counts(sys, sup); /* answered after the restart */
  CU_ASSERT_EQUAL(k.restarts, 1);
  CU_ASSERT_EQUAL(k.active, 3);
  CU_ASSERT_EQUAL(atomic_load(&g.starts[0]), 1);
  CU_ASSERT_EQUAL(atomic_load(&g.starts[2]), 1);
  CU_ASSERT_EQUAL(atomic_load(&g.stops[0]) + atomic_load(&g.stops[2]), 0);
  ax_sup_child_info info[3];
  CU_ASSERT_EQUAL(which(sys, sup, info, 3), 3);
  CU_ASSERT_EQUAL(info[0].pid.id, p0);
  CU_ASSERT_EQUAL(info[2].pid.id, p2);
  CU_ASSERT_EQUAL(info[1].pid.id, atomic_load(&g.pid[1]));
  CU_ASSERT(log_has("child b <"));
  CU_ASSERT(log_has("exited: AX_EINVAL"));
  CU_ASSERT(log_has("restarted child b as <"));
  ax_system_free(sys);
}

static void test_sup_one_for_all_restarts_all_children(void) {
  ax_system *sys = sys_new();
  ax_child_spec kids[3] = {wchild("a", 0, 0), wchild("b", 1, 0), wchild("c", 2, 0)};
  ax_pid sup = start_sup(sys, AX_SUP_ONE_FOR_ALL, kids, 3, 10);
  crash(sys, 1, W_CRASH);
  CU_ASSERT(wait_n(&g.starts[2], 2));
  CU_ASSERT_EQUAL(counts(sys, sup).restarts, 1);
  for (int i = 0; i < 3; i++) {
    CU_ASSERT_EQUAL(atomic_load(&g.starts[i]), 2);
    CU_ASSERT_EQUAL(atomic_load(&g.stops[i]), 1);
  }
  /* b crashed; the others were stopped newest first: c, a. */
  CU_ASSERT_EQUAL(atomic_load(&g.stop_order[0]), 1);
  CU_ASSERT_EQUAL(atomic_load(&g.stop_order[1]), 2);
  CU_ASSERT_EQUAL(atomic_load(&g.stop_order[2]), 0);
  CU_ASSERT_EQUAL(atomic_load(&g.reason[0]), AX_REASON_SHUTDOWN);
  /* then all started again in order */
  for (int i = 0; i < 3; i++) CU_ASSERT_EQUAL(atomic_load(&g.start_order[3 + i]), i);
  ax_system_free(sys);
}

static void test_sup_rest_for_one_restarts_later_children(void) {
  ax_system *sys = sys_new();
  ax_child_spec kids[4] = {wchild("a", 0, 0), wchild("b", 1, 0), wchild("c", 2, 0),
                           wchild("d", 3, 0)};
  ax_pid sup = start_sup(sys, AX_SUP_REST_FOR_ONE, kids, 4, 10);
  crash(sys, 1, W_CRASH);
  CU_ASSERT(wait_n(&g.starts[3], 2));
  CU_ASSERT_EQUAL(counts(sys, sup).active, 4);
  CU_ASSERT_EQUAL(atomic_load(&g.starts[0]), 1);
  CU_ASSERT_EQUAL(atomic_load(&g.stops[0]), 0);
  CU_ASSERT_EQUAL(atomic_load(&g.stop_order[0]), 1);
  CU_ASSERT_EQUAL(atomic_load(&g.stop_order[1]), 3);
  CU_ASSERT_EQUAL(atomic_load(&g.stop_order[2]), 2);
  CU_ASSERT_EQUAL(atomic_load(&g.nstop), 3);
  CU_ASSERT_EQUAL(atomic_load(&g.start_order[4]), 1);
  CU_ASSERT_EQUAL(atomic_load(&g.start_order[5]), 2);
  CU_ASSERT_EQUAL(atomic_load(&g.start_order[6]), 3);
  ax_system_free(sys);
}

/* ---- restart types ---- */

static void test_sup_permanent_always_restarted(void) {
  ax_system *sys = sys_new();
  ax_child_spec kids[1] = {wchild("p", 0, AX_RESTART_PERMANENT)};
  ax_pid sup = start_sup(sys, AX_SUP_ONE_FOR_ONE, kids, 1, 10);
  crash(sys, 0, W_NORMAL);
  CU_ASSERT(wait_n(&g.starts[0], 2));
  crash(sys, 0, W_SHUTDOWN);
  CU_ASSERT(wait_n(&g.starts[0], 3));
  crash(sys, 0, W_CRASH);
  CU_ASSERT(wait_n(&g.starts[0], 4));
  ax_sup_counts k = counts(sys, sup);
  CU_ASSERT_EQUAL(k.restarts, 3);
  CU_ASSERT_EQUAL(k.failures, 1); /* only the crash was abnormal */
  ax_system_free(sys);
}

static void test_sup_transient_not_restarted_on_normal_exit(void) {
  ax_system *sys = sys_new();
  ax_child_spec kids[2] = {wchild("t", 0, AX_RESTART_TRANSIENT),
                           wchild("u", 1, AX_RESTART_TRANSIENT)};
  ax_pid sup = start_sup(sys, AX_SUP_ONE_FOR_ONE, kids, 2, 10);
  crash(sys, 0, W_NORMAL);
  crash(sys, 1, W_SHUTDOWN);
  CU_ASSERT(wait_counts(sys, sup, none_active)); /* both EXITs handled */
  ax_sup_counts k = counts(sys, sup);
  ax_sup_child_info info[2];
  CU_ASSERT_EQUAL(which(sys, sup, info, 2), 2); /* specs stay */
  CU_ASSERT(ax_pid_is_none(info[0].pid) && ax_pid_is_none(info[1].pid));
  CU_ASSERT_EQUAL(k.active, 0);
  CU_ASSERT_EQUAL(k.restarts, 0);
  CU_ASSERT_EQUAL(atomic_load(&g.starts[0]), 1);
  ax_system_free(sys);
}

static void test_sup_transient_restarted_on_abnormal_exit(void) {
  ax_system *sys = sys_new();
  ax_child_spec kids[1] = {wchild("t", 0, AX_RESTART_TRANSIENT)};
  ax_pid sup = start_sup(sys, AX_SUP_ONE_FOR_ONE, kids, 1, 10);
  crash(sys, 0, W_CRASH);
  CU_ASSERT(wait_n(&g.starts[0], 2));
  CU_ASSERT_EQUAL(counts(sys, sup).active, 1);
  ax_system_free(sys);
}

static void test_sup_temporary_never_restarted(void) {
  ax_system *sys = sys_new();
  ax_child_spec kids[2] = {wchild("t", 0, AX_RESTART_TEMPORARY), wchild("k", 1, 0)};
  ax_pid sup = start_sup(sys, AX_SUP_ONE_FOR_ONE, kids, 2, 10);
  crash(sys, 0, W_CRASH);
  CU_ASSERT(wait_counts(sys, sup, one_spec)); /* its spec is gone */
  ax_sup_counts k = counts(sys, sup);
  CU_ASSERT_EQUAL(k.active, 1);
  CU_ASSERT_EQUAL(k.restarts, 0);
  ax_sup_child_info info[2];
  CU_ASSERT_EQUAL(which(sys, sup, info, 2), 1);
  CU_ASSERT_STRING_EQUAL(info[0].id, "k");
  CU_ASSERT_EQUAL(atomic_load(&g.starts[0]), 1);
  ax_system_free(sys);
}

/* ---- starting ---- */

static void test_sup_children_start_in_order(void) {
  ax_system *sys = sys_new();
  ax_child_spec kids[5];
  const char *ids[5] = {"c0", "c1", "c2", "c3", "c4"};
  for (uint32_t i = 0; i < 5; i++) kids[i] = wchild(ids[i], i, 0);
  ax_pid sup = start_sup(sys, AX_SUP_ONE_FOR_ONE, kids, 5, 0);
  /* Children's inits ran on this thread, in order, before the start returned. */
  CU_ASSERT_EQUAL(atomic_load(&g.nstart), 5);
  for (int i = 0; i < 5; i++) CU_ASSERT_EQUAL(atomic_load(&g.start_order[i]), i);
  ax_child_spec extra = wchild("c5", 5, 0);
  CU_ASSERT_EQUAL(ax_supervisor_start_child(sys, sup, &extra, WAIT_MS, NULL), AX_OK);
  ax_sup_child_info info[6];
  CU_ASSERT_EQUAL(which(sys, sup, info, 6), 6);
  for (int i = 0; i < 5; i++) CU_ASSERT_STRING_EQUAL(info[i].id, ids[i]);
  CU_ASSERT_STRING_EQUAL(info[5].id, "c5");
  ax_system_free(sys);
}

static void test_sup_start_fails_when_child_init_fails(void) {
  ax_system *sys = sys_new();
  ax_child_spec kids[4] = {wchild("a", 0, 0), wchild("b", 1, 0), wchild("bad", 2, 0),
                           wchild("d", 3, 0)};
  atomic_store(&g.fail_init[2], 1);
  ax_sup_spec spec = {.name = "failing", .children = kids, .nchildren = 4};
  ax_pid sup = AX_PID_NONE;
  CU_ASSERT_EQUAL(ax_supervisor_start(sys, &spec, &sup), AX_EINVAL); /* the child's error */
  CU_ASSERT(ax_pid_is_none(sup));
  /* a and b were stopped, newest first, before the start returned; d never started */
  CU_ASSERT_EQUAL(atomic_load(&g.nstop), 2);
  CU_ASSERT_EQUAL(atomic_load(&g.stop_order[0]), 1);
  CU_ASSERT_EQUAL(atomic_load(&g.stop_order[1]), 0);
  CU_ASSERT_EQUAL(atomic_load(&g.reason[0]), AX_REASON_SHUTDOWN);
  CU_ASSERT_EQUAL(atomic_load(&g.starts[3]), 0);
  CU_ASSERT(log_has("supervisor failing <"));
  CU_ASSERT(log_has("child bad failed to start: AX_EINVAL"));
  CU_ASSERT_EQUAL(ax_system_wait(sys, WAIT_MS), AX_OK); /* nothing left alive */
  ax_system_free(sys);
}

/* A failed start deep in a tree is cleaned up innermost first, as OTP does:
 * the inner supervisor's started children stop before its start returns
 * (to its parent), and only then do the parent's older children stop.
 * Tree: top [a, mid [b, inner [c, bad]]] (with_b) or top [a, mid [inner
 * [c, bad]]]; bad fails its init; c traps exits and only stops when its
 * shutdown timeout (manual clock) kills it, so a cleanup that does not wait
 * for it stops b and a first. */
static _Atomic int clock_thread_stop;

static void *advance_clock_when_c_is_stubborn(void *arg) {
  ax_system *sys = arg;
  /* c got its exit(shutdown) and ignored it: only its timeout stops it. */
  for (int i = 0; i < WAIT_MS && atomic_load(&g.exits_seen[2]) == 0; i++) ax_test_sleep_ms(1);
  ax_test_sleep_ms(20); /* lets a wrong order show; the right order does not depend on it */
  for (int i = 0; i < WAIT_MS && !atomic_load(&clock_thread_stop); i++) {
    advance(sys, 100);
    ax_test_sleep_ms(1);
  }
  return NULL;
}

static void nested_start_failure(bool with_b) {
  ax_system *sys = sys_new();
  ax_child_spec inner_kids[2] = {wchild("c", 2, 0), wchild("bad", 3, 0)};
  wa[2].flags = WF_TRAP;
  inner_kids[0].shutdown = 100;
  atomic_store(&g.fail_init[3], 1);
  ax_sup_spec inner = {.name = "inner", .children = inner_kids, .nchildren = 2};
  ax_child_spec mid_kids[2] = {wchild("b", 1, 0), AX_SUP_CHILD("inner", &inner)};
  ax_sup_spec mid = {.name = "mid", .children = with_b ? mid_kids : &mid_kids[1],
                     .nchildren = with_b ? 2 : 1};
  ax_child_spec top_kids[2] = {wchild("a", 0, 0), AX_SUP_CHILD("mid", &mid)};
  ax_sup_spec top = {.name = "top", .children = top_kids, .nchildren = 2};
  atomic_store(&clock_thread_stop, 0);
  pthread_t th;
  CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, advance_clock_when_c_is_stubborn, sys), 0);
  ax_pid sup = AX_PID_NONE;
  CU_ASSERT_EQUAL(ax_supervisor_start(sys, &top, &sup), AX_EINVAL);
  atomic_store(&clock_thread_stop, 1);
  pthread_join(th, NULL);
  uint32_t n = with_b ? 3 : 2;
  int expect[3] = {2, 1, 0}; /* c (innermost), then b, then a */
  if (!with_b) expect[1] = 0;
  CU_ASSERT_EQUAL(atomic_load(&g.nstop), n);
  for (uint32_t i = 0; i < n; i++) CU_ASSERT_EQUAL(atomic_load(&g.stop_order[i]), expect[i]);
  CU_ASSERT_EQUAL(atomic_load(&g.reason[2]), AX_REASON_KILLED);
  CU_ASSERT_EQUAL(atomic_load(&g.reason[0]), AX_REASON_SHUTDOWN);
  CU_ASSERT(log_has("child bad failed to start: AX_EINVAL"));
  CU_ASSERT_EQUAL(ax_system_wait(sys, WAIT_MS), AX_OK); /* nothing left alive */
  ax_system_free(sys);
}

static void test_sup_nested_start_failure_stops_innermost_first(void) {
  nested_start_failure(true);
}

static void test_sup_nested_start_failure_without_middle_children(void) {
  nested_start_failure(false);
}

static void test_sup_restart_reinits_from_kept_arg(void) {
  ax_system *sys = sys_new();
  ax_pid sup;
  {
    warg arg = {.ctx = &g, .idx = 0, .token = 42};
    ax_child_spec kid = {.id = "k", .start = &w_spec, .arg = &arg, .arg_len = sizeof(arg)};
    ax_sup_spec spec = {.children = &kid, .nchildren = 1, .intensity = 10};
    CU_ASSERT_EQUAL_FATAL(ax_supervisor_start(sys, &spec, &sup), AX_OK);
    arg.token = 99; /* the caller's copy changes (and then goes out of scope) */
    memset(&kid, 0, sizeof(kid));
  }
  CU_ASSERT_EQUAL(atomic_load(&g.token[0]), 42);
  atomic_store(&g.token[0], 0);
  crash(sys, 0, W_CRASH);
  CU_ASSERT(wait_n(&g.starts[0], 2));
  CU_ASSERT_EQUAL(atomic_load(&g.token[0]), 42);
  crash(sys, 0, W_CRASH);
  CU_ASSERT(wait_n(&g.starts[0], 3));
  CU_ASSERT_EQUAL(atomic_load(&g.token[0]), 42);
  ax_system_free(sys);
}

/* ---- intensity ---- */

/* The pid of child `id` of sup. */
static ax_pid child_pid(ax_system *sys, ax_pid sup, const char *id) {
  ax_sup_child_info info[8];
  size_t n = which(sys, sup, info, 8);
  for (size_t i = 0; i < n; i++)
    if (strcmp(info[i].id, id) == 0) return info[i].pid;
  return AX_PID_NONE;
}

static void test_sup_intensity_exceeded_escalates_to_parent(void) {
  ax_system *sys = sys_new();
  ax_child_spec leaf_kids[1] = {wchild("w", 0, 0)};
  ax_sup_spec inner = {.name = "inner", .intensity = 2, .period_ms = 5000,
                       .children = leaf_kids, .nchildren = 1};
  ax_child_spec top_kids[2] = {AX_SUP_CHILD("inner", &inner), wchild("other", 1, 0)};
  ax_pid top = start_sup(sys, AX_SUP_ONE_FOR_ONE, top_kids, 2, 10);
  ax_pid in1 = child_pid(sys, top, "inner");
  crash(sys, 0, W_CRASH); /* restart 1 of 2 */
  CU_ASSERT(wait_n(&g.starts[0], 2));
  crash(sys, 0, W_CRASH); /* restart 2 of 2 */
  CU_ASSERT(wait_n(&g.starts[0], 3));
  CU_ASSERT_EQUAL(counts(sys, top).restarts, 0); /* the parent saw nothing yet */
  crash(sys, 0, W_CRASH); /* a third within the period: inner gives up */
  CU_ASSERT(pid_dead(sys, in1));
  CU_ASSERT(wait_n(&g.starts[0], 4)); /* the parent restarted inner, and so w */
  ax_sup_counts k = counts(sys, top);
  CU_ASSERT_EQUAL(k.restarts, 1);
  CU_ASSERT_EQUAL(k.escalations, 1);
  CU_ASSERT_EQUAL(atomic_load(&g.starts[1]), 1); /* one_for_one: other untouched */
  CU_ASSERT(log_has("supervisor inner <"));
  CU_ASSERT(log_has("reached max restart intensity (2 in 5000 ms) at child w: shutting down"));
  CU_ASSERT(log_has("child supervisor inner <"));
  ax_pid in2 = child_pid(sys, top, "inner");
  CU_ASSERT(!ax_pid_is_none(in2) && !ax_pid_eq(in1, in2));
  CU_ASSERT_EQUAL(counts(sys, in2).restarts, 0); /* a fresh supervisor */
  ax_system_free(sys);
}

static void test_sup_intensity_period_forgets_old_restarts(void) {
  ax_system *sys = sys_new();
  ax_child_spec kids[1] = {wchild("w", 0, 0)};
  ax_sup_spec spec = {.intensity = 1, .period_ms = 1000, .children = kids, .nchildren = 1};
  ax_pid sup;
  CU_ASSERT_EQUAL_FATAL(ax_supervisor_start(sys, &spec, &sup), AX_OK);
  for (uint64_t i = 2; i <= 6; i++) { /* one restart per period: never too many */
    crash(sys, 0, W_CRASH);
    CU_ASSERT(wait_n(&g.starts[0], i));
    advance(sys, 1001); /* a restart exactly one period old would still count */
  }
  CU_ASSERT_EQUAL(counts(sys, sup).restarts, 5);
  crash(sys, 0, W_CRASH);
  CU_ASSERT(wait_n(&g.starts[0], 7));
  crash(sys, 0, W_CRASH); /* second within one period: escalation */
  CU_ASSERT(pid_dead(sys, sup));
  CU_ASSERT_EQUAL(atomic_load(&g.starts[0]), 7);
  ax_system_free(sys);
}

/* OTP keeps the restarts at times R >= now - period: a restart exactly one
 * period old still counts; one a millisecond older does not. */
static void test_sup_intensity_restart_exactly_one_period_old_counts(void) {
  ax_system *sys = sys_new();
  ax_child_spec kids[1] = {wchild("w", 0, 0)};
  ax_sup_spec spec = {.intensity = 1, .period_ms = 1000, .children = kids, .nchildren = 1};
  ax_pid sup;
  CU_ASSERT_EQUAL_FATAL(ax_supervisor_start(sys, &spec, &sup), AX_OK);
  crash(sys, 0, W_CRASH); /* restart at T */
  CU_ASSERT(wait_n(&g.starts[0], 2));
  advance(sys, 1001);
  crash(sys, 0, W_CRASH); /* T is 1001 ms old: forgotten, restart at T + 1001 */
  CU_ASSERT(wait_n(&g.starts[0], 3));
  CU_ASSERT_EQUAL(counts(sys, sup).restarts, 2);
  advance(sys, 1000);
  crash(sys, 0, W_CRASH); /* T + 1001 is exactly one period old: 2 in the window */
  CU_ASSERT(pid_dead(sys, sup));
  CU_ASSERT_EQUAL(atomic_load(&g.starts[0]), 3);
  CU_ASSERT(log_has("reached max restart intensity (1 in 1000 ms)"));
  ax_system_free(sys);
}

static void test_sup_nested_crash_climbs_only_as_far_as_intensity(void) {
  ax_system *sys = sys_new();
  ax_child_spec leaf_kids[1] = {wchild("w", 0, 0)};
  ax_sup_spec leaf = {.name = "leaf", .intensity = 1, .children = leaf_kids, .nchildren = 1};
  ax_child_spec mid_kids[2] = {AX_SUP_CHILD("leaf", &leaf), wchild("m", 1, 0)};
  ax_sup_spec mid = {.name = "mid", .strategy = AX_SUP_ONE_FOR_ONE, .intensity = 1,
                     .children = mid_kids, .nchildren = 2};
  ax_child_spec top_kids[2] = {wchild("t", 2, 0), AX_SUP_CHILD("mid", &mid)};
  ax_pid top = start_sup(sys, AX_SUP_ONE_FOR_ONE, top_kids, 2, 10);
  ax_pid mid1 = child_pid(sys, top, "mid");
  /* Two crashes at the leaf: the leaf restarts once, then gives up; mid
   * restarts the leaf (its first restart); top sees nothing. */
  crash(sys, 0, W_CRASH);
  CU_ASSERT(wait_n(&g.starts[0], 2));
  crash(sys, 0, W_CRASH);
  CU_ASSERT(wait_n(&g.starts[0], 3));
  ax_sup_counts km = counts(sys, mid1);
  CU_ASSERT_EQUAL(km.restarts, 1);
  CU_ASSERT_EQUAL(km.escalations, 1);
  CU_ASSERT_EQUAL(counts(sys, top).restarts, 0);
  CU_ASSERT_EQUAL(atomic_load(&g.starts[1]), 1);
  /* Two more: the new leaf gives up again, and that is mid's second
   * restart within its period: mid gives up, top restarts mid. */
  crash(sys, 0, W_CRASH);
  CU_ASSERT(wait_n(&g.starts[0], 4));
  crash(sys, 0, W_CRASH);
  CU_ASSERT(pid_dead(sys, mid1));
  CU_ASSERT(wait_n(&g.starts[0], 5));
  CU_ASSERT(wait_n(&g.starts[1], 2)); /* m restarted with the new mid */
  ax_sup_counts kt = counts(sys, top);
  CU_ASSERT_EQUAL(kt.restarts, 1);
  CU_ASSERT_EQUAL(kt.escalations, 1);
  CU_ASSERT_EQUAL(atomic_load(&g.starts[2]), 1); /* t never touched */
  ax_system_free(sys);
}

static void test_sup_transient_child_supervisor_not_restarted_after_giving_up(void) {
  ax_system *sys = sys_new();
  ax_child_spec leaf_kids[1] = {wchild("w", 0, 0)};
  ax_sup_spec inner = {.name = "inner", .intensity = AX_SUP_NO_RESTARTS, .children = leaf_kids,
                       .nchildren = 1};
  ax_child_spec top_kids[2] = {AX_SUP_CHILD("inner", &inner), wchild("other", 1, 0)};
  top_kids[0].restart = AX_RESTART_TRANSIENT; /* shutdown is not abnormal: OTP leaves it */
  ax_pid top = start_sup(sys, AX_SUP_ONE_FOR_ONE, top_kids, 2, 10);
  ax_pid in1 = child_pid(sys, top, "inner");
  crash(sys, 0, W_CRASH); /* no restart allowed: inner gives up at once */
  CU_ASSERT(pid_dead(sys, in1));
  CU_ASSERT(wait_counts(sys, top, one_active));
  ax_sup_counts k = counts(sys, top);
  CU_ASSERT_EQUAL(k.escalations, 1);
  CU_ASSERT_EQUAL(k.restarts, 0);
  CU_ASSERT_EQUAL(k.specs, 2);
  CU_ASSERT_EQUAL(k.supervisors, 1);
  CU_ASSERT_EQUAL(atomic_load(&g.starts[0]), 1);
  ax_system_free(sys);
}

int main(void) {
  CU_pSuite s = ax_test_suite("sup.strategies");
  CU_ADD_TEST(s, test_sup_one_for_one_restarts_only_failed_child);
  CU_ADD_TEST(s, test_sup_one_for_all_restarts_all_children);
  CU_ADD_TEST(s, test_sup_rest_for_one_restarts_later_children);
  CU_ADD_TEST(s, test_sup_permanent_always_restarted);
  CU_ADD_TEST(s, test_sup_transient_not_restarted_on_normal_exit);
  CU_ADD_TEST(s, test_sup_transient_restarted_on_abnormal_exit);
  CU_ADD_TEST(s, test_sup_temporary_never_restarted);
  CU_ADD_TEST(s, test_sup_children_start_in_order);
  CU_ADD_TEST(s, test_sup_start_fails_when_child_init_fails);
  CU_ADD_TEST(s, test_sup_nested_start_failure_stops_innermost_first);
  CU_ADD_TEST(s, test_sup_nested_start_failure_without_middle_children);
  CU_ADD_TEST(s, test_sup_restart_reinits_from_kept_arg);
  CU_ADD_TEST(s, test_sup_intensity_exceeded_escalates_to_parent);
  CU_ADD_TEST(s, test_sup_intensity_period_forgets_old_restarts);
  CU_ADD_TEST(s, test_sup_intensity_restart_exactly_one_period_old_counts);
  CU_ADD_TEST(s, test_sup_nested_crash_climbs_only_as_far_as_intensity);
  CU_ADD_TEST(s, test_sup_transient_child_supervisor_not_restarted_after_giving_up);
  return ax_test_run();
}
