/* Tests for dynamic supervision and management: simple_one_for_one with
 * 10,000 children, which/count/terminate/restart/delete_child, requests from
 * actors (replies as messages, queued behind a running stop), restart storms
 * and failing restarts that end in escalation, and rejected specs. */
#include <axon.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>


#include "support/sup_harness.h"

/* ---- simple_one_for_one ---- */

#define NDYN 10000

static void test_sup_simple_one_for_one_10000_children(void) {
  ax_system *sys = sys_new();
  ax_child_spec tmpl = wchild("dyn", 0, AX_RESTART_PERMANENT);
  ax_sup_spec spec = {.name = "pool", .strategy = AX_SUP_SIMPLE_ONE_FOR_ONE, .intensity = 10,
                      .children = &tmpl, .nchildren = 1};
  ax_pid sup;
  CU_ASSERT_EQUAL_FATAL(ax_supervisor_start(sys, &spec, &sup), AX_OK);
  CU_ASSERT_EQUAL(counts(sys, sup).specs, 1); /* the template; none started at first */
  ax_pid *pids = calloc(NDYN, sizeof(ax_pid));
  CU_ASSERT_FATAL(pids != NULL);
  size_t ok = 0;
  for (size_t i = 0; i < NDYN; i++)
    ok += ax_supervisor_start_child(sys, sup, NULL, WAIT_MS, &pids[i]) == AX_OK;
  CU_ASSERT_EQUAL(ok, NDYN);
  warg own = {.ctx = &g, .idx = 1, .token = 7}; /* a dynamic child with its own arg */
  ax_child_spec one = {.arg = &own, .arg_len = sizeof(own)};
  CU_ASSERT_EQUAL(ax_supervisor_start_child(sys, sup, &one, WAIT_MS, NULL), AX_OK);
  CU_ASSERT_EQUAL(atomic_load(&g.token[1]), 7);
  ax_sup_counts k = counts(sys, sup);
  CU_ASSERT_EQUAL(k.specs, 1); /* OTP: one spec, the template */
  CU_ASSERT_EQUAL(k.active, NDYN + 1);
  CU_ASSERT_EQUAL(k.workers, NDYN + 1);
  ax_sup_child_info small[4];
  size_t n = 4;
  CU_ASSERT_EQUAL(ax_supervisor_which_children(sys, sup, WAIT_MS, small, &n), AX_ENOBUFS);
  CU_ASSERT_EQUAL(n, NDYN + 1);
  ok = 0;
  for (size_t i = 0; i < NDYN / 2; i++)
    ok += ax_supervisor_terminate_child(sys, sup, NULL, pids[i], WAIT_MS) == AX_OK;
  CU_ASSERT_EQUAL(ok, NDYN / 2);
  CU_ASSERT_EQUAL(atomic_load(&g.stops[0]), NDYN / 2); /* each reply came after the stop */
  CU_ASSERT_EQUAL(ax_supervisor_terminate_child(sys, sup, NULL, pids[0], WAIT_MS), AX_ENOTFOUND);
  k = counts(sys, sup);
  CU_ASSERT_EQUAL(k.specs, 1);
  CU_ASSERT_EQUAL(k.workers, NDYN / 2 + 1); /* terminated dynamic children are gone */
  CU_ASSERT_EQUAL(k.active, NDYN / 2 + 1);
  CU_ASSERT_EQUAL(ax_system_send(sys, pids[NDYN - 1], W_CRASH, NULL, 0), AX_OK);
  CU_ASSERT(wait_n(&g.total_starts, NDYN + 2)); /* permanent: restarted */
  CU_ASSERT_EQUAL(ax_supervisor_restart_child(sys, sup, "dyn", WAIT_MS, NULL), AX_ENOTSUP);
  CU_ASSERT_EQUAL(ax_system_exit(sys, sup, AX_REASON_SHUTDOWN), AX_OK);
  CU_ASSERT(pid_dead(sys, sup));
  CU_ASSERT_EQUAL(atomic_load(&g.total_stops), NDYN + 2);
  CU_ASSERT_EQUAL(ax_system_wait(sys, WAIT_MS), AX_OK);
  free(pids);
  ax_system_free(sys);
}

/* ---- management calls ---- */

/* a (permanent), b (transient), c (temporary) under one_for_one. */
static ax_pid abc_sup(ax_system *sys) {
  ax_child_spec kids[3] = {wchild("a", 0, 0), wchild("b", 1, AX_RESTART_TRANSIENT),
                           wchild("c", 2, AX_RESTART_TEMPORARY)};
  return start_sup(sys, AX_SUP_ONE_FOR_ONE, kids, 3, 10);
}

static void test_sup_which_children_lists_in_start_order(void) {
  ax_system *sys = sys_new();
  ax_pid sup = abc_sup(sys);
  ax_sup_child_info info[4];
  size_t n = 1;
  CU_ASSERT_EQUAL(ax_supervisor_which_children(sys, sup, WAIT_MS, info, &n), AX_ENOBUFS);
  CU_ASSERT_EQUAL(n, 3);
  CU_ASSERT_EQUAL(which(sys, sup, info, 4), 3);
  const char *ids[3] = {"a", "b", "c"};
  for (int i = 0; i < 3; i++) {
    CU_ASSERT_STRING_EQUAL(info[i].id, ids[i]);
    CU_ASSERT_EQUAL(info[i].pid.id, atomic_load(&g.pid[i]));
    CU_ASSERT_EQUAL(info[i].type, AX_CHILD_WORKER);
  }
  CU_ASSERT_EQUAL(info[1].restart, AX_RESTART_TRANSIENT);
  ax_sup_counts k = counts(sys, sup);
  CU_ASSERT_EQUAL(k.specs, 3);
  CU_ASSERT_EQUAL(k.active, 3);
  CU_ASSERT_EQUAL(k.workers, 3);
  CU_ASSERT_EQUAL(k.supervisors, 0);
  ax_system_free(sys);
}

static void test_sup_terminate_child_stops_without_restart(void) {
  ax_system *sys = sys_new();
  ax_pid sup = abc_sup(sys);
  CU_ASSERT_EQUAL(ax_supervisor_terminate_child(sys, sup, "a", AX_PID_NONE, WAIT_MS), AX_OK);
  CU_ASSERT_EQUAL(atomic_load(&g.stops[0]), 1); /* stopped before the reply */
  CU_ASSERT_EQUAL(atomic_load(&g.reason[0]), AX_REASON_SHUTDOWN);
  ax_sup_counts k = counts(sys, sup);
  CU_ASSERT_EQUAL(k.specs, 3); /* spec kept */
  CU_ASSERT_EQUAL(k.active, 2);
  CU_ASSERT_EQUAL(k.restarts, 0);
  CU_ASSERT_EQUAL(ax_supervisor_terminate_child(sys, sup, "a", AX_PID_NONE, WAIT_MS), AX_OK);
  ax_pid b = {atomic_load(&g.pid[1])};
  CU_ASSERT_EQUAL(ax_supervisor_terminate_child(sys, sup, NULL, b, WAIT_MS), AX_OK); /* by pid */
  CU_ASSERT_EQUAL(ax_supervisor_terminate_child(sys, sup, "c", AX_PID_NONE, WAIT_MS), AX_OK);
  ax_sup_child_info info[4];
  CU_ASSERT_EQUAL(which(sys, sup, info, 4), 2); /* a temporary child's spec goes with it */
  CU_ASSERT_EQUAL(ax_supervisor_terminate_child(sys, sup, "nope", AX_PID_NONE, WAIT_MS),
                  AX_ENOTFOUND);
  CU_ASSERT_EQUAL(counts(sys, sup).active, 0);
  ax_system_free(sys);
}

static void test_sup_restart_child_restarts_a_stopped_child(void) {
  ax_system *sys = sys_new();
  ax_pid sup = abc_sup(sys);
  CU_ASSERT_EQUAL(ax_supervisor_restart_child(sys, sup, "b", WAIT_MS, NULL), AX_ESTATE);
  CU_ASSERT_EQUAL(ax_supervisor_terminate_child(sys, sup, "b", AX_PID_NONE, WAIT_MS), AX_OK);
  ax_pid b2;
  CU_ASSERT_EQUAL(ax_supervisor_restart_child(sys, sup, "b", WAIT_MS, &b2), AX_OK);
  CU_ASSERT_EQUAL(b2.id, atomic_load(&g.pid[1]));
  CU_ASSERT_EQUAL(atomic_load(&g.starts[1]), 2);
  CU_ASSERT_EQUAL(ax_supervisor_restart_child(sys, sup, "zz", WAIT_MS, NULL), AX_ENOTFOUND);
  CU_ASSERT_EQUAL(counts(sys, sup).restarts, 0); /* not a policy restart */
  ax_system_free(sys);
}

static void test_sup_delete_child_only_when_stopped(void) {
  ax_system *sys = sys_new();
  ax_pid sup = abc_sup(sys);
  CU_ASSERT_EQUAL(ax_supervisor_delete_child(sys, sup, "b", WAIT_MS), AX_ESTATE);
  CU_ASSERT_EQUAL(ax_supervisor_terminate_child(sys, sup, "b", AX_PID_NONE, WAIT_MS), AX_OK);
  CU_ASSERT_EQUAL(ax_supervisor_delete_child(sys, sup, "b", WAIT_MS), AX_OK);
  CU_ASSERT_EQUAL(ax_supervisor_delete_child(sys, sup, "b", WAIT_MS), AX_ENOTFOUND);
  CU_ASSERT_EQUAL(ax_supervisor_restart_child(sys, sup, "b", WAIT_MS, NULL), AX_ENOTFOUND);
  ax_sup_child_info info[4];
  CU_ASSERT_EQUAL(which(sys, sup, info, 4), 2);
  CU_ASSERT_STRING_EQUAL(info[0].id, "a");
  CU_ASSERT_STRING_EQUAL(info[1].id, "c");
  ax_system_free(sys);
}

static void test_sup_start_child_appends_and_refuses_duplicates(void) {
  ax_system *sys = sys_new();
  ax_pid sup = abc_sup(sys);
  ax_child_spec dup = wchild("a", 3, 0);
  CU_ASSERT_EQUAL(ax_supervisor_start_child(sys, sup, &dup, WAIT_MS, NULL), AX_EEXIST);
  ax_child_spec d = wchild("d", 3, 0);
  ax_pid dp;
  CU_ASSERT_EQUAL(ax_supervisor_start_child(sys, sup, &d, WAIT_MS, &dp), AX_OK);
  CU_ASSERT_EQUAL(dp.id, atomic_load(&g.pid[3]));
  atomic_store(&g.fail_init[4], 1);
  ax_child_spec bad = wchild("e", 4, 0);
  CU_ASSERT_EQUAL(ax_supervisor_start_child(sys, sup, &bad, WAIT_MS, NULL), AX_EINVAL);
  ax_child_spec noid = {.start = &w_spec};
  CU_ASSERT_EQUAL(ax_supervisor_start_child(sys, sup, &noid, WAIT_MS, NULL), AX_EINVAL);
  ax_sup_child_info info[5];
  CU_ASSERT_EQUAL(which(sys, sup, info, 5), 4); /* e was not added */
  CU_ASSERT_STRING_EQUAL(info[3].id, "d");
  ax_system_free(sys);
}

/* OTP's count_children of a simple_one_for_one supervisor: one spec (the
 * template), and the dynamic children counted as active and as workers (or
 * supervisors, by the template's type). */
static void test_sup_simple_one_for_one_counts_one_spec(void) {
  ax_system *sys = sys_new();
  ax_child_spec tmpl = wchild("dyn", 0, AX_RESTART_TEMPORARY);
  ax_sup_spec spec = {.name = "pool", .strategy = AX_SUP_SIMPLE_ONE_FOR_ONE, .intensity = 10,
                      .children = &tmpl, .nchildren = 1};
  ax_pid sup;
  CU_ASSERT_EQUAL_FATAL(ax_supervisor_start(sys, &spec, &sup), AX_OK);
  ax_sup_counts k = counts(sys, sup);
  CU_ASSERT_EQUAL(k.specs, 1);
  CU_ASSERT_EQUAL(k.active, 0);
  CU_ASSERT_EQUAL(k.workers, 0);
  CU_ASSERT_EQUAL(k.supervisors, 0);
  ax_pid kids[3];
  for (int i = 0; i < 3; i++)
    CU_ASSERT_EQUAL(ax_supervisor_start_child(sys, sup, NULL, WAIT_MS, &kids[i]), AX_OK);
  k = counts(sys, sup);
  CU_ASSERT_EQUAL(k.specs, 1);
  CU_ASSERT_EQUAL(k.active, 3);
  CU_ASSERT_EQUAL(k.workers, 3);
  CU_ASSERT_EQUAL(k.supervisors, 0);
  CU_ASSERT_EQUAL(ax_supervisor_terminate_child(sys, sup, NULL, kids[1], WAIT_MS), AX_OK);
  k = counts(sys, sup);
  CU_ASSERT_EQUAL(k.specs, 1);
  CU_ASSERT_EQUAL(k.active, 2);
  CU_ASSERT_EQUAL(k.workers, 2);
  ax_system_free(sys);
}

static void test_sup_bad_specs_are_rejected(void) {
  ax_system *sys = sys_new();
  ax_pid sup;
  ax_child_spec two[2] = {wchild("x", 0, 0), wchild("x", 1, 0)};
  ax_sup_spec spec = {.children = two, .nchildren = 2};
  CU_ASSERT_EQUAL(ax_supervisor_start(sys, &spec, &sup), AX_EINVAL); /* duplicate id */
  two[1].id = NULL;
  CU_ASSERT_EQUAL(ax_supervisor_start(sys, &spec, &sup), AX_EINVAL); /* no id */
  two[1].id = "0123456789012345678901234567890123456789012345678901234567890123";
  CU_ASSERT_EQUAL(ax_supervisor_start(sys, &spec, &sup), AX_EINVAL); /* 64 bytes */
  two[1].id = "y";
  two[1].start = NULL;
  CU_ASSERT_EQUAL(ax_supervisor_start(sys, &spec, &sup), AX_EINVAL); /* no start */
  two[1].start = &w_spec;
  spec.strategy = AX_SUP_SIMPLE_ONE_FOR_ONE;
  CU_ASSERT_EQUAL(ax_supervisor_start(sys, &spec, &sup), AX_EINVAL); /* two templates */
  spec.strategy = AX_SUP_ONE_FOR_ONE;
  ax_sup_spec self_ref = {.name = "loop", .nchildren = 1};
  ax_child_spec loop = AX_SUP_CHILD("loop", &self_ref);
  self_ref.children = &loop;
  CU_ASSERT_EQUAL(ax_supervisor_start(sys, &self_ref, &sup), AX_EINVAL); /* endless nesting */
  ax_child_spec short_arg = {.id = "s", .start = &ax_supervisor_spec, .arg = &spec, .arg_len = 3};
  spec.children = &short_arg;
  spec.nchildren = 1;
  CU_ASSERT_EQUAL(ax_supervisor_start(sys, &spec, &sup), AX_EINVAL); /* not a sup spec */
  CU_ASSERT_EQUAL(ax_system_spawn(sys, &ax_supervisor_spec, "junk", 4, NULL), AX_EINVAL);
  CU_ASSERT_EQUAL(atomic_load(&g.total_starts), 0);
  ax_system_free(sys);
}

/* ---- requests from actors ---- */

enum { C_GO = AX_MSG_USER + 200 };
enum { GO_PIPELINE, GO_DURING_STOP };
#define NREPLY 8

typedef struct creply {
  ax_ref ref;
  uint32_t type;
  ax_err err;
  size_t len;
  uint32_t active; /* counts replies */
  ax_pid pid0;     /* which replies: first child's pid */
} creply;

static struct {
  ax_pid sup;
  ax_ref refs[NREPLY];
  _Atomic uint64_t nreq, nrep;
  creply rep[NREPLY];
  _Atomic int sent_err;
} cl;

static void client_record(const ax_msg *msg) {
  uint64_t i = atomic_load(&cl.nrep);
  if (i >= NREPLY) return;
  creply *r = &cl.rep[i];
  r->ref = msg->ref;
  r->type = msg->type;
  r->len = msg->len;
  if (msg->type == AX_SUP_REPLY && msg->len == sizeof(ax_sup_reply)) {
    ax_sup_reply s;
    memcpy(&s, msg->data, sizeof(s));
    r->err = s.err;
    r->pid0 = s.pid;
  } else if (msg->type == AX_SUP_REPLY_COUNTS && msg->len == sizeof(ax_sup_counts)) {
    ax_sup_counts k;
    memcpy(&k, msg->data, sizeof(k));
    r->active = k.active;
  } else if (msg->type == AX_SUP_REPLY_CHILDREN && msg->len >= sizeof(ax_sup_child_info)) {
    ax_sup_child_info c;
    memcpy(&c, msg->data, sizeof(c));
    r->pid0 = c.pid;
  }
  atomic_store(&cl.nrep, i + 1); /* publishes the record */
}

/* Sends request `type` about child id (NULL for which/count), keeping its ref. */
static ax_err client_req(ax_actor *self, uint32_t type, const char *id) {
  uint64_t k = atomic_load(&cl.nreq);
  ax_err e = ax_supervisor_request(self, cl.sup, type, id, AX_PID_NONE, AX_INFINITY, &cl.refs[k]);
  if (e == AX_OK) atomic_store(&cl.nreq, k + 1);
  return e;
}

/* Sends a batch of requests in one callback: they are queued back to back. */
static ax_err client_go(ax_actor *self, int what) {
  ax_err e;
  if (what == GO_PIPELINE) {
    ax_child_spec x = wchild("x", 2, 0);
    e = ax_supervisor_request_start_child(self, cl.sup, &x, AX_INFINITY, &cl.refs[0]);
    if (e == AX_OK) atomic_store(&cl.nreq, 1);
    if (!e) e = client_req(self, AX_SUP_REQ_WHICH_CHILDREN, NULL);
    if (!e) e = client_req(self, AX_SUP_REQ_TERMINATE_CHILD, "x");
    if (!e) e = client_req(self, AX_SUP_REQ_DELETE_CHILD, "x");
    if (!e) e = client_req(self, AX_SUP_REQ_COUNT_CHILDREN, NULL);
  } else {
    e = client_req(self, AX_SUP_REQ_TERMINATE_CHILD, "slow");
    if (!e) e = client_req(self, AX_SUP_REQ_WHICH_CHILDREN, NULL);
    if (!e) e = client_req(self, AX_SUP_REQ_COUNT_CHILDREN, NULL);
  }
  atomic_store(&cl.sent_err, e);
  return AX_OK;
}

static ax_err client_behaviour(ax_actor *self, const ax_msg *msg) {
  if (msg->type == C_GO && msg->len == sizeof(int)) {
    int what;
    memcpy(&what, msg->data, sizeof(what));
    return client_go(self, what);
  }
  if (msg->flags & AX_MSGF_REPLY) client_record(msg);
  return AX_OK;
}

static const ax_actor_spec client_spec = {.name = "client", .behaviour = client_behaviour};

static void client_start(ax_system *sys, ax_pid sup, int what) {
  memset(&cl, 0, sizeof(cl));
  cl.sup = sup;
  ax_pid c;
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &client_spec, NULL, 0, &c), AX_OK);
  CU_ASSERT_EQUAL(ax_system_send(sys, c, C_GO, &what, sizeof(what)), AX_OK);
}

static void test_sup_requests_from_actor_get_replies_as_messages(void) {
  ax_system *sys = sys_new();
  ax_child_spec kids[1] = {wchild("a", 0, 0)};
  ax_pid sup = start_sup(sys, AX_SUP_ONE_FOR_ONE, kids, 1, 10);
  client_start(sys, sup, GO_PIPELINE);
  CU_ASSERT(wait_n(&cl.nrep, 5));
  CU_ASSERT_EQUAL(atomic_load(&cl.sent_err), AX_OK);
  uint32_t types[5] = {AX_SUP_REPLY, AX_SUP_REPLY_CHILDREN, AX_SUP_REPLY, AX_SUP_REPLY,
                       AX_SUP_REPLY_COUNTS};
  for (int i = 0; i < 5; i++) {
    CU_ASSERT_EQUAL(cl.rep[i].ref, cl.refs[i]); /* in request order */
    CU_ASSERT_EQUAL(cl.rep[i].type, types[i]);
  }
  CU_ASSERT_EQUAL(cl.rep[0].err, AX_OK);
  CU_ASSERT_EQUAL(cl.rep[0].pid0.id, atomic_load(&g.pid[2])); /* x started */
  CU_ASSERT_EQUAL(cl.rep[1].len, 2 * sizeof(ax_sup_child_info));
  CU_ASSERT_EQUAL(cl.rep[2].err, AX_OK);
  CU_ASSERT_EQUAL(cl.rep[3].err, AX_OK);
  CU_ASSERT_EQUAL(cl.rep[4].active, 1);
  CU_ASSERT_EQUAL(atomic_load(&g.stops[2]), 1);
  ax_system_free(sys);
}

static void test_sup_requests_during_a_stop_wait_their_turn(void) {
  ax_system *sys = sys_new();
  ax_child_spec kids[2] = {wchild("slow", 0, 0), wchild("b", 1, 0)};
  wa[0].flags = WF_TRAP;
  kids[0].shutdown = 1000;
  ax_pid sup = start_sup(sys, AX_SUP_ONE_FOR_ONE, kids, 2, 10);
  client_start(sys, sup, GO_DURING_STOP);
  CU_ASSERT(wait_n(&g.exits_seen[0], 1)); /* the terminate is under way */
  CU_ASSERT(wait_n(&cl.nreq, 3));
  CU_ASSERT_EQUAL(atomic_load(&cl.nrep), 0); /* which/count wait behind it */
  advance(sys, 1000);
  CU_ASSERT(wait_n(&cl.nrep, 3));
  CU_ASSERT_EQUAL(cl.rep[0].ref, cl.refs[0]);
  CU_ASSERT_EQUAL(cl.rep[0].err, AX_OK);
  CU_ASSERT_EQUAL(atomic_load(&g.reason[0]), AX_REASON_KILLED);
  CU_ASSERT_EQUAL(cl.rep[1].ref, cl.refs[1]);
  CU_ASSERT(ax_pid_is_none(cl.rep[1].pid0)); /* slow is stopped by then */
  CU_ASSERT_EQUAL(cl.rep[2].ref, cl.refs[2]);
  CU_ASSERT_EQUAL(cl.rep[2].active, 1);
  ax_system_free(sys);
}

static void test_sup_shutdown_during_a_stop_answers_eclosed(void) {
  ax_system *sys = sys_new();
  ax_child_spec kids[2] = {wchild("b", 1, 0), wchild("slow", 0, 0)};
  wa[0].flags = WF_TRAP;
  kids[1].shutdown = 1000;
  ax_pid sup = start_sup(sys, AX_SUP_ONE_FOR_ONE, kids, 2, 10);
  client_start(sys, sup, GO_DURING_STOP);
  CU_ASSERT(wait_n(&g.exits_seen[0], 1));
  CU_ASSERT_EQUAL(ax_system_exit(sys, sup, AX_REASON_SHUTDOWN), AX_OK);
  CU_ASSERT(wait_n(&cl.nrep, 2)); /* the queued requests are refused at once */
  CU_ASSERT_EQUAL(cl.rep[0].ref, cl.refs[1]);
  CU_ASSERT_EQUAL(cl.rep[0].err, AX_ECLOSED);
  CU_ASSERT_EQUAL(cl.rep[1].err, AX_ECLOSED);
  advance(sys, 1000); /* the terminate completes, then the shutdown */
  CU_ASSERT(pid_dead(sys, sup));
  CU_ASSERT(wait_n(&cl.nrep, 3));
  CU_ASSERT_EQUAL(cl.rep[2].ref, cl.refs[0]);
  CU_ASSERT_EQUAL(cl.rep[2].err, AX_OK);
  CU_ASSERT_EQUAL(atomic_load(&g.stops[1]), 1);
  CU_ASSERT_EQUAL(atomic_load(&g.reason[1]), AX_REASON_SHUTDOWN);
  ax_system_free(sys);
}

/* ---- storms ---- */

static void test_sup_restart_storm_ends_in_escalation_without_leaks(void) {
  ax_system *sys = sys_new();
  ax_child_spec leaf_kids[1] = {wchild("storm", 0, 0)};
  wa[0].flags = WF_CRASH_AT_ONCE;
  ax_sup_spec mid = {.name = "mid", .intensity = 100, .children = leaf_kids, .nchildren = 1};
  ax_child_spec top_kids[1] = {AX_SUP_CHILD("mid", &mid)};
  ax_sup_spec top = {.name = "top", .intensity = 3, .children = top_kids, .nchildren = 1};
  ax_pid sup;
  CU_ASSERT_EQUAL_FATAL(ax_supervisor_start(sys, &top, &sup), AX_OK);
  CU_ASSERT(pid_dead(sys, sup)); /* the storm climbed to the top, which gave up */
  CU_ASSERT_EQUAL(ax_system_wait(sys, WAIT_MS), AX_OK);
  /* mid ran 4 times (start + 3 restarts), each time 1 start + 100 restarts */
  CU_ASSERT_EQUAL(atomic_load(&g.starts[0]), 4 * 101);
  CU_ASSERT_EQUAL(atomic_load(&g.stops[0]), 4 * 101);
  CU_ASSERT(log_has("supervisor top <"));
  CU_ASSERT(log_has("reached max restart intensity (3 in 5000 ms) at child mid"));
  CU_ASSERT(log_has("reached max restart intensity (100 in 5000 ms) at child storm"));
  ax_system_stats st;
  ax_system_stats_get(sys, &st);
  CU_ASSERT_EQUAL(st.actors_alive, 0);
  CU_ASSERT_EQUAL(st.timers_pending, 0);
  ax_system_free(sys); /* leaks are LeakSanitizer's to find (asan build) */
}

static void test_sup_failing_restart_retried_until_intensity(void) {
  ax_system *sys = sys_new();
  ax_child_spec kids[1] = {wchild("f", 0, 0)};
  ax_sup_spec spec = {.name = "retry", .intensity = 5, .children = kids, .nchildren = 1};
  ax_pid sup;
  CU_ASSERT_EQUAL_FATAL(ax_supervisor_start(sys, &spec, &sup), AX_OK);
  atomic_store(&g.fail_init[0], 1); /* every restart's init fails from now on */
  crash(sys, 0, W_CRASH);
  CU_ASSERT(pid_dead(sys, sup));
  CU_ASSERT_EQUAL(atomic_load(&g.starts[0]), 1);
  CU_ASSERT(log_has("child f failed to start: AX_EINVAL"));
  CU_ASSERT(log_has("reached max restart intensity (5 in 5000 ms) at child f"));
  ax_system_free(sys);
}

int main(void) {
  CU_pSuite s = ax_test_suite("sup.dynamic");
  CU_ADD_TEST(s, test_sup_simple_one_for_one_10000_children);
  CU_ADD_TEST(s, test_sup_which_children_lists_in_start_order);
  CU_ADD_TEST(s, test_sup_terminate_child_stops_without_restart);
  CU_ADD_TEST(s, test_sup_restart_child_restarts_a_stopped_child);
  CU_ADD_TEST(s, test_sup_delete_child_only_when_stopped);
  CU_ADD_TEST(s, test_sup_start_child_appends_and_refuses_duplicates);
  CU_ADD_TEST(s, test_sup_simple_one_for_one_counts_one_spec);
  CU_ADD_TEST(s, test_sup_bad_specs_are_rejected);
  CU_ADD_TEST(s, test_sup_requests_from_actor_get_replies_as_messages);
  CU_ADD_TEST(s, test_sup_requests_during_a_stop_wait_their_turn);
  CU_ADD_TEST(s, test_sup_shutdown_during_a_stop_answers_eclosed);
  CU_ADD_TEST(s, test_sup_restart_storm_ends_in_escalation_without_leaks);
  CU_ADD_TEST(s, test_sup_failing_restart_retried_until_intensity);
  return ax_test_run();
}
