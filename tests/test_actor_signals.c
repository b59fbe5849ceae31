/* Exit signals against messages: a trapped exit keeps its place among the
 * messages of its sender (OTP's per-pair order) even when the receiver is
 * busy while they arrive; non-trapping and kill stops stay prompt; link exits
 * and DOWNs come after the dying actor's messages; and an actor whose init
 * fails still signals the links and monitors it made during init. */
#include <axon.h>
#include <string.h>

#include "support/testutil.h"

enum { S_BLOCK = AX_MSG_USER, S_VAL, S_SCRIPT, S_SPAWN_FAILING, S_PING };
enum { LOGN = 64 };

/* A recording receiver: blocks in S_BLOCK until the gate opens, then logs
 * every S_VAL value, and every EXIT / DOWN as a negative entry. */
typedef struct rec {
  bool trap;
  _Atomic bool gate, blocked;
  _Atomic uint64_t n, terminated, exits, downs;
  _Atomic int64_t log[LOGN];
  _Atomic int32_t term_reason, exit_reason;
  _Atomic uint64_t exit_from, self_pid;
} rec;

enum { EV_EXIT = -1, EV_DOWN = -2 };

static void rec_log(rec *r, int64_t v) {
  uint64_t i = atomic_fetch_add(&r->n, 1);
  if (i < LOGN) atomic_store(&r->log[i], v);
}

static ax_err rec_init(ax_actor *self, void *state, const void *arg, size_t len) {
  rec *r = *(rec *const *)arg;
  memcpy(state, arg, sizeof(rec *));
  atomic_store(&r->self_pid, ax_self(self).id);
  if (r->trap) ax_trap_exit(self, true);
  return AX_OK;
}

static ax_err rec_behaviour(ax_actor *self, const ax_msg *msg) {
  rec *r = *(rec **)ax_state(self);
  switch (msg->type) {
  case S_BLOCK:
    atomic_store(&r->blocked, true);
    for (int i = 0; i < 30000 && !atomic_load(&r->gate); i++) ax_test_sleep_ms(1);
    return AX_OK;
  case S_VAL: {
    int64_t v;
    memcpy(&v, msg->data, sizeof(v));
    rec_log(r, v);
    return AX_OK;
  }
  case AX_MSG_EXIT: {
    const ax_exit_info *i = msg->data;
    atomic_store(&r->exit_reason, i->reason);
    atomic_store(&r->exit_from, i->pid.id);
    atomic_fetch_add(&r->exits, 1);
    rec_log(r, EV_EXIT);
    return AX_OK;
  }
  case AX_MSG_DOWN: atomic_fetch_add(&r->downs, 1); rec_log(r, EV_DOWN); return AX_OK;
  default: return AX_OK;
  }
}

static void rec_term(ax_actor *self, void *state, ax_reason reason) {
  rec *r = *(rec **)state;
  atomic_store(&r->term_reason, reason);
  atomic_fetch_add(&r->terminated, 1);
}

static const ax_actor_spec rec_spec = {.name = "rec", .behaviour = rec_behaviour,
                                       .state_size = sizeof(void *), .init = rec_init,
                                       .terminate = rec_term};

static ax_system *sys;

/* Clears r for a new receiver that traps exits if trap. */
static void rec_reset(rec *r, bool trap) {
  memset(r, 0, sizeof(*r));
  atomic_store(&r->term_reason, -1);
  atomic_store(&r->exit_reason, -1);
  r->trap = trap;
}

static ax_pid spawn_rec(rec *r, bool trap) {
  rec_reset(r, trap);
  ax_pid pid;
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &rec_spec, &r, sizeof(r), &pid), AX_OK);
  return pid;
}

/* Blocks r in a behaviour call the test releases with its gate. */
static void block_rec(ax_pid p, rec *r) {
  CU_ASSERT_EQUAL_FATAL(ax_system_send(sys, p, S_BLOCK, NULL, 0), AX_OK);
  for (int i = 0; i < 10000 && !atomic_load(&r->blocked); i++) ax_test_sleep_ms(1);
  CU_ASSERT_TRUE_FATAL(atomic_load(&r->blocked));
}

/* Kills p and waits until r saw its terminate. */
static void kill_rec(ax_pid p, rec *r) {
  ax_system_exit(sys, p, AX_REASON_KILL);
  CU_ASSERT_TRUE(ax_test_wait_count(&r->terminated, 1, 10000));
}

/* Checks that r logged want[0..n) first. */
static void expect_log(rec *r, const int64_t *want, int n) {
  for (int i = 0; i < n; i++) CU_ASSERT_EQUAL(atomic_load(&r->log[i]), want[i]);
}

/* From this thread: S_VAL 1, an exit signal with reason, S_VAL 3. */
static void send_val_exit_val(ax_pid p, ax_reason reason) {
  int64_t v = 1;
  CU_ASSERT_EQUAL(ax_system_send(sys, p, S_VAL, &v, sizeof(v)), AX_OK);
  CU_ASSERT_EQUAL(ax_system_exit(sys, p, reason), AX_OK);
  v = 3;
  CU_ASSERT_EQUAL(ax_system_send(sys, p, S_VAL, &v, sizeof(v)), AX_OK);
}

/* Waits (bounded) until p is gone: sends to it fail. */
static void wait_gone(ax_pid p) {
  for (int i = 0; i < 10000 && ax_system_send(sys, p, S_VAL, NULL, 0) == AX_OK; i++)
    ax_test_sleep_ms(1);
}

/* A scripted sender: on S_SCRIPT it runs a script of sends and exits to
 * `to`, then optionally stops itself with `die` (its links and monitors then
 * fire after everything it sent). */
typedef struct script {
  ax_pid to;
  int n;
  int64_t step[8]; /* >= 0: send S_VAL step; EV_EXIT: ax_exit(to, reason) */
  ax_reason reason;
  bool link, monitor_by_to, die;
  ax_reason die_reason;
  _Atomic uint64_t done, pings;
} script;

/* Clears s and sets it to run steps[0..n) (see step) to `to`, exits with reason. */
static void script_init(script *s, ax_pid to, const int64_t *steps, int n, ax_reason reason) {
  memset(s, 0, sizeof(*s));
  s->to = to;
  s->n = n;
  memcpy(s->step, steps, (size_t)n * sizeof steps[0]);
  s->reason = reason;
}

static ax_err scripter(ax_actor *self, const ax_msg *msg) {
  script *s = *(script **)ax_state(self);
  if (msg->type == S_PING) atomic_fetch_add(&s->pings, 1);
  if (msg->type != S_SCRIPT) return AX_OK;
  if (s->link) CU_ASSERT_EQUAL(ax_link(self, s->to), AX_OK);
  for (int i = 0; i < s->n; i++) {
    if (s->step[i] >= 0) {
      CU_ASSERT_EQUAL(ax_send(self, s->to, S_VAL, &s->step[i], sizeof(int64_t)), AX_OK);
    } else {
      CU_ASSERT_EQUAL(ax_exit(self, s->to, s->reason), AX_OK);
    }
  }
  atomic_fetch_add(&s->done, 1);
  if (s->die) return ax_exit(self, ax_self(self), s->die_reason);
  return AX_OK;
}

static ax_err ptr_init(ax_actor *self, void *state, const void *arg, size_t len) {
  memcpy(state, arg, len);
  return AX_OK;
}

static const ax_actor_spec script_spec = {.name = "script", .behaviour = scripter,
                                          .state_size = sizeof(void *), .init = ptr_init};

static ax_pid spawn_script(script *s) {
  ax_pid pid;
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &script_spec, &s, sizeof(s), &pid), AX_OK);
  return pid;
}

static void run_script(ax_pid sp, script *s) {
  CU_ASSERT_EQUAL(ax_system_send(sys, sp, S_SCRIPT, NULL, 0), AX_OK);
  CU_ASSERT_TRUE(ax_test_wait_count(&s->done, 1, 10000));
}

/* ---- item: a trapped exit keeps its place among its sender's messages ---- */

static void test_trapped_exit_keeps_order_with_senders_messages_while_busy(void) {
  static rec a;
  static script s;
  ax_pid pa = spawn_rec(&a, true);
  script_init(&s, pa, (const int64_t[]){1, EV_EXIT, 3}, 3, AX_REASON_USER + 1);
  ax_pid sp = spawn_script(&s);
  block_rec(pa, &a);
  run_script(sp, &s); /* m1, exit, m3 all queued while a is busy */
  atomic_store(&a.gate, true);
  CU_ASSERT_TRUE(ax_test_wait_count(&a.n, 3, 10000));
  expect_log(&a, (const int64_t[]){1, EV_EXIT, 3}, 3);
  CU_ASSERT_EQUAL(atomic_load(&a.exit_reason), AX_REASON_USER + 1);
  CU_ASSERT_EQUAL(atomic_load(&a.exit_from), sp.id);
  CU_ASSERT_EQUAL(atomic_load(&a.terminated), 0);
  ax_system_exit(sys, sp, AX_REASON_KILL);
  kill_rec(pa, &a);
}

/* Same from a non-actor thread (the sender is AX_PID_NONE). */
static void test_trapped_exit_keeps_order_from_thread_sender(void) {
  static rec a;
  ax_pid pa = spawn_rec(&a, true);
  block_rec(pa, &a);
  send_val_exit_val(pa, AX_REASON_NORMAL);
  atomic_store(&a.gate, true);
  CU_ASSERT_TRUE(ax_test_wait_count(&a.n, 3, 10000));
  expect_log(&a, (const int64_t[]){1, EV_EXIT, 3}, 3);
  CU_ASSERT_EQUAL(atomic_load(&a.exit_reason), AX_REASON_NORMAL);
  kill_rec(pa, &a);
}

/* A non-trapping target stops at once, before the messages queued ahead of
 * the signal; kill stops a trapping one at once. */
static void test_untrapped_and_kill_stops_stay_prompt(void) {
  static rec a, b;
  static script s;
  ax_pid pa = spawn_rec(&a, false), pb = spawn_rec(&b, true);
  script_init(&s, pa, (const int64_t[]){1, EV_EXIT, 3}, 3, AX_REASON_USER + 2);
  ax_pid sp = spawn_script(&s);
  block_rec(pa, &a);
  run_script(sp, &s);
  atomic_store(&a.gate, true);
  CU_ASSERT_TRUE(ax_test_wait_count(&a.terminated, 1, 10000));
  CU_ASSERT_EQUAL(atomic_load(&a.term_reason), AX_REASON_USER + 2);
  CU_ASSERT_EQUAL(atomic_load(&a.n), 0); /* m1 and m3 never delivered */

  block_rec(pb, &b);
  int64_t v = 1;
  CU_ASSERT_EQUAL(ax_system_send(sys, pb, S_VAL, &v, sizeof(v)), AX_OK);
  CU_ASSERT_EQUAL(ax_system_exit(sys, pb, AX_REASON_KILL), AX_OK);
  atomic_store(&b.gate, true);
  CU_ASSERT_TRUE(ax_test_wait_count(&b.terminated, 1, 10000));
  CU_ASSERT_EQUAL(atomic_load(&b.term_reason), AX_REASON_KILLED);
  CU_ASSERT_EQUAL(atomic_load(&b.n), 0);
  ax_system_exit(sys, sp, AX_REASON_KILL);
}

/* A normal exit to a non-trapping target is ignored, and the target does not
 * turn it into an EXIT message later. */
static void test_normal_exit_to_non_trapping_is_ignored_in_order(void) {
  static rec a;
  ax_pid pa = spawn_rec(&a, false);
  block_rec(pa, &a);
  send_val_exit_val(pa, AX_REASON_NORMAL);
  atomic_store(&a.gate, true);
  CU_ASSERT_TRUE(ax_test_wait_count(&a.n, 2, 10000));
  ax_test_sleep_ms(10);
  CU_ASSERT_EQUAL(atomic_load(&a.n), 2);
  expect_log(&a, (const int64_t[]){1, 3}, 2);
  CU_ASSERT_EQUAL(atomic_load(&a.terminated), 0);
  kill_rec(pa, &a);
}

/* A linked and monitored sender: m1, exit, m3, then it dies; the busy
 * trapping receiver sees m1, EXIT(signal), m3, then the link EXIT and the
 * DOWN, after every message the dying actor sent. */
static void test_link_exit_and_down_come_after_dying_senders_messages(void) {
  static rec a;
  static script s;
  ax_pid pa = spawn_rec(&a, true);
  script_init(&s, pa, (const int64_t[]){1, EV_EXIT, 3, 4}, 4, AX_REASON_USER + 3);
  s.link = true;
  s.die = true;
  s.die_reason = AX_REASON_USER + 4;
  ax_pid sp = spawn_script(&s);
  block_rec(pa, &a);
  run_script(sp, &s);
  /* The sender is dead once its pid is: wait for that, then open the gate
   * (its link exit is queued at a by then). */
  wait_gone(sp);
  atomic_store(&a.gate, true);
  CU_ASSERT_TRUE(ax_test_wait_count(&a.n, 5, 10000));
  expect_log(&a, (const int64_t[]){1, EV_EXIT, 3, 4, EV_EXIT}, 5);
  CU_ASSERT_EQUAL(atomic_load(&a.exit_reason), AX_REASON_USER + 4);
  kill_rec(pa, &a);
}

/* A watcher that monitors a dying sender, busy while it sends and dies. */
static ax_err watcher_behaviour(ax_actor *self, const ax_msg *msg) {
  if (msg->type == S_SCRIPT) {
    rec *r = *(rec **)ax_state(self);
    ax_pid t;
    memcpy(&t, msg->data, sizeof(t));
    ax_err e = ax_monitor(self, t, NULL);
    atomic_store(&r->exit_from, 1); /* monitoring */
    return e;
  }
  return rec_behaviour(self, msg);
}
static const ax_actor_spec watcher_spec = {.name = "watcher", .behaviour = watcher_behaviour,
                                           .state_size = sizeof(void *), .init = rec_init,
                                           .terminate = rec_term};

static void test_down_comes_after_dying_senders_messages_while_busy(void) {
  static rec w;
  static script s;
  memset(&w, 0, sizeof(w));
  rec *wp = &w;
  ax_pid pw;
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &watcher_spec, &wp, sizeof(wp), &pw), AX_OK);
  script_init(&s, pw, (const int64_t[]){1, 2}, 2, 0);
  s.die = true;
  s.die_reason = AX_REASON_NORMAL;
  ax_pid sp = spawn_script(&s);
  CU_ASSERT_EQUAL(ax_system_send(sys, pw, S_SCRIPT, &sp, sizeof(sp)), AX_OK); /* monitor */
  for (int i = 0; i < 10000 && !atomic_load(&w.exit_from); i++) ax_test_sleep_ms(1);
  /* The monitor signal scheduled sp on the watcher's worker: let sp run
   * before that worker blocks in the watcher. */
  CU_ASSERT_EQUAL(ax_system_send(sys, sp, S_PING, NULL, 0), AX_OK);
  CU_ASSERT_TRUE(ax_test_wait_count(&s.pings, 1, 10000));
  block_rec(pw, &w);
  run_script(sp, &s);
  wait_gone(sp);
  atomic_store(&w.gate, true);
  CU_ASSERT_TRUE(ax_test_wait_count(&w.n, 3, 10000));
  expect_log(&w, (const int64_t[]){1, 2, EV_DOWN}, 3);
  kill_rec(pw, &w);
}

/* ---- item: a failed init signals the links it made ---- */

typedef struct failing_arg {
  rec *child;        /* spawn_link this (non-NULL) in init */
  bool child_trap;
  ax_pid partner;    /* ax_link this (if not none) in init */
  _Atomic uint64_t self_pid;
  _Atomic int spawn_result;
  _Atomic uint64_t spawned;
} failing_arg;

static ax_err failing_init(ax_actor *self, void *state, const void *arg, size_t len) {
  failing_arg *f = *(failing_arg *const *)arg;
  atomic_store(&f->self_pid, ax_self(self).id);
  if (f->child) {
    rec *r = f->child;
    rec_reset(r, f->child_trap);
    ax_pid c;
    ax_err e = ax_spawn_link(self, &rec_spec, &r, sizeof(r), &c);
    if (e != AX_OK) return e;
  }
  if (!ax_pid_is_none(f->partner)) {
    ax_err e = ax_link(self, f->partner);
    if (e != AX_OK) return e;
  }
  return AX_EINVAL; /* init fails after linking */
}
static const ax_actor_spec failing_spec = {.name = "failing", .behaviour = rec_behaviour,
                                           .init = failing_init};

/* Spawns a failing actor from inside an actor (ax_spawn), as supervisors do. */
static ax_err spawner(ax_actor *self, const ax_msg *msg) {
  failing_arg *f = *(failing_arg **)ax_state(self);
  if (msg->type != S_SPAWN_FAILING) return AX_OK;
  atomic_store(&f->spawn_result, ax_spawn(self, &failing_spec, &f, sizeof(f), NULL));
  atomic_fetch_add(&f->spawned, 1);
  return AX_OK;
}
static const ax_actor_spec spawner_spec = {.name = "spawner", .behaviour = spawner,
                                           .state_size = sizeof(void *), .init = ptr_init};

static void run_failing(failing_arg *f, bool from_actor) {
  if (from_actor) {
    ax_pid sp;
    CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &spawner_spec, &f, sizeof(f), &sp), AX_OK);
    CU_ASSERT_EQUAL(ax_system_send(sys, sp, S_SPAWN_FAILING, NULL, 0), AX_OK);
    CU_ASSERT_TRUE(ax_test_wait_count(&f->spawned, 1, 10000));
    CU_ASSERT_EQUAL(atomic_load(&f->spawn_result), AX_EINVAL);
    ax_system_exit(sys, sp, AX_REASON_KILL);
  } else {
    CU_ASSERT_EQUAL(ax_system_spawn(sys, &failing_spec, &f, sizeof(f), NULL), AX_EINVAL);
  }
}

static void test_failed_init_stops_non_trapping_spawn_linked_child(void) {
  static rec child;
  static failing_arg f;
  memset(&f, 0, sizeof(f));
  f.child = &child;
  run_failing(&f, true);
  CU_ASSERT_TRUE(ax_test_wait_count(&child.terminated, 1, 10000));
  CU_ASSERT_EQUAL(atomic_load(&child.term_reason), AX_REASON_ERROR + AX_EINVAL);
}

static void test_failed_init_sends_exit_to_trapping_spawn_linked_child(void) {
  static rec child;
  static failing_arg f;
  memset(&f, 0, sizeof(f));
  f.child = &child;
  f.child_trap = true;
  run_failing(&f, false);
  CU_ASSERT_TRUE(ax_test_wait_count(&child.exits, 1, 10000));
  CU_ASSERT_EQUAL(atomic_load(&child.exit_reason), AX_REASON_ERROR + AX_EINVAL);
  CU_ASSERT_EQUAL(atomic_load(&child.exit_from), atomic_load(&f.self_pid));
  CU_ASSERT_EQUAL(atomic_load(&child.terminated), 0);
  kill_rec((ax_pid){atomic_load(&child.self_pid)}, &child);
}

static void test_failed_init_sends_exit_to_partner_linked_in_init(void) {
  static rec partner, quiet;
  static failing_arg f;
  ax_pid pp = spawn_rec(&partner, true), pq = spawn_rec(&quiet, false);
  memset(&f, 0, sizeof(f));
  f.partner = pp;
  run_failing(&f, true);
  CU_ASSERT_TRUE(ax_test_wait_count(&partner.exits, 1, 10000));
  CU_ASSERT_EQUAL(atomic_load(&partner.exit_reason), AX_REASON_ERROR + AX_EINVAL);
  CU_ASSERT_EQUAL(atomic_load(&partner.exit_from), atomic_load(&f.self_pid));
  /* A non-trapping partner stops with the init error. */
  memset(&f, 0, sizeof(f));
  f.partner = pq;
  run_failing(&f, false);
  CU_ASSERT_TRUE(ax_test_wait_count(&quiet.terminated, 1, 10000));
  CU_ASSERT_EQUAL(atomic_load(&quiet.term_reason), AX_REASON_ERROR + AX_EINVAL);
  kill_rec(pp, &partner);
}

static int setup(void) { return ax_system_new(NULL, &sys) == AX_OK ? 0 : 1; }
static int teardown(void) {
  ax_system_free(sys);
  return 0;
}

int main(void) {
  CU_pSuite s = ax_test_suite("actor.signals");
  s->pInitializeFunc = setup;
  s->pCleanupFunc = teardown;
  CU_ADD_TEST(s, test_trapped_exit_keeps_order_with_senders_messages_while_busy);
  CU_ADD_TEST(s, test_trapped_exit_keeps_order_from_thread_sender);
  CU_ADD_TEST(s, test_untrapped_and_kill_stops_stay_prompt);
  CU_ADD_TEST(s, test_normal_exit_to_non_trapping_is_ignored_in_order);
  CU_ADD_TEST(s, test_link_exit_and_down_come_after_dying_senders_messages);
  CU_ADD_TEST(s, test_down_comes_after_dying_senders_messages_while_busy);
  CU_ADD_TEST(s, test_failed_init_stops_non_trapping_spawn_linked_child);
  CU_ADD_TEST(s, test_failed_init_sends_exit_to_trapping_spawn_linked_child);
  CU_ADD_TEST(s, test_failed_init_sends_exit_to_partner_linked_in_init);
  return ax_test_run();
}
