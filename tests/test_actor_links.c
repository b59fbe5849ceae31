/* Links, monitors and exit signals with Erlang semantics: propagation,
 * trapping, kill, noproc, unlink/demonitor races, and order against the
 * messages the stopping actor sent before. */
#include <axon.h>
#include <string.h>

#include "support/testutil.h"

enum { C_LINK = AX_MSG_USER, C_UNLINK, C_MONITOR, C_DEMONITOR, C_DIE, C_BLOCK, C_SEND, C_DATA };

typedef struct probe {
  bool trap;
  _Atomic uint64_t exits, downs, data, data_before_down, terminated;
  _Atomic int32_t exit_reason, down_reason, term_reason;
  _Atomic uint64_t exit_from, down_pid, down_ref, last_ref;
  _Atomic bool gate, blocked;
  _Atomic int demon_result;
} probe;

typedef struct cmd {
  ax_pid pid;
  int32_t reason;
  uint64_t n;
  ax_ref ref;
} cmd;

static ax_err probe_init(ax_actor *self, void *state, const void *arg, size_t len) {
  probe *p = *(probe *const *)arg;
  memcpy(state, arg, sizeof(probe *));
  if (p->trap) ax_trap_exit(self, true);
  return AX_OK;
}

static ax_err probe_behaviour(ax_actor *self, const ax_msg *msg) {
  probe *p = *(probe **)ax_state(self);
  cmd c = {0};
  if (msg->len == sizeof(c)) memcpy(&c, msg->data, sizeof(c));
  switch (msg->type) {
  case C_LINK: return ax_link(self, c.pid);
  case C_UNLINK: return ax_unlink(self, c.pid);
  case C_MONITOR: {
    ax_ref r;
    ax_err e = ax_monitor(self, c.pid, &r);
    atomic_store(&p->last_ref, r);
    return e;
  }
  case C_DEMONITOR: atomic_store(&p->demon_result, ax_demonitor(self, c.ref, AX_DEMONITOR_FLUSH)); return AX_OK;
  case C_DIE: return ax_exit(self, ax_self(self), c.reason);
  case C_BLOCK:
    atomic_store(&p->blocked, true);
    while (!atomic_load(&p->gate)) ax_test_sleep_ms(1);
    if (c.ref) atomic_store(&p->demon_result, ax_demonitor(self, c.ref, 0));
    if (!ax_pid_is_none(c.pid)) ax_unlink(self, c.pid);
    return AX_OK;
  case C_SEND:
    for (uint64_t i = 0; i < c.n; i++) ax_send(self, c.pid, C_DATA, NULL, 0);
    return c.reason ? ax_exit(self, ax_self(self), c.reason) : AX_OK;
  case C_DATA: atomic_fetch_add(&p->data, 1); return AX_OK;
  case AX_MSG_EXIT: {
    const ax_exit_info *i = msg->data;
    atomic_store(&p->exit_reason, i->reason);
    atomic_store(&p->exit_from, i->pid.id);
    atomic_fetch_add(&p->exits, 1);
    return AX_OK;
  }
  case AX_MSG_DOWN: {
    const ax_down_info *d = msg->data;
    atomic_store(&p->down_reason, d->reason);
    atomic_store(&p->down_pid, d->pid.id);
    atomic_store(&p->down_ref, d->ref);
    atomic_store(&p->data_before_down, atomic_load(&p->data));
    atomic_fetch_add(&p->downs, 1);
    return AX_OK;
  }
  default: return AX_OK;
  }
}

static void probe_term(ax_actor *self, void *state, ax_reason reason) {
  probe *p = *(probe **)state;
  atomic_store(&p->term_reason, reason);
  atomic_fetch_add(&p->terminated, 1);
}

static const ax_actor_spec probe_spec = {.name = "probe", .behaviour = probe_behaviour,
                                         .state_size = sizeof(void *), .init = probe_init,
                                         .terminate = probe_term};

static ax_system *sys;

static ax_pid spawn_probe(probe *p, bool trap) {
  memset(p, 0, sizeof(*p));
  atomic_store(&p->exit_reason, -1);
  atomic_store(&p->down_reason, -1);
  p->trap = trap;
  ax_pid pid;
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &probe_spec, &p, sizeof(p), &pid), AX_OK);
  return pid;
}

static void send_cmd(ax_pid to, uint32_t type, cmd c) {
  CU_ASSERT_EQUAL(ax_system_send(sys, to, type, &c, sizeof(c)), AX_OK);
}

static int setup(void) {
  return ax_system_new(NULL, &sys) == AX_OK ? 0 : 1;
}
static int teardown(void) {
  ax_system_free(sys);
  return 0;
}

static void link_pair(ax_pid a, ax_pid b, probe *pa) {
  uint64_t want = atomic_load(&pa->data) + 1;
  send_cmd(a, C_LINK, (cmd){.pid = b});
  send_cmd(a, C_SEND, (cmd){.pid = a, .n = 1}); /* a's own data: link done before it */
  CU_ASSERT_TRUE(ax_test_wait_count(&pa->data, want, 10000));
}

static void test_link_abnormal_exit_stops_non_trapping_with_same_reason(void) {
  static probe a, b;
  ax_pid pa = spawn_probe(&a, false), pb = spawn_probe(&b, false);
  link_pair(pa, pb, &a);
  send_cmd(pb, C_DIE, (cmd){.reason = AX_REASON_USER + 9});
  CU_ASSERT_TRUE(ax_test_wait_count(&a.terminated, 1, 10000));
  CU_ASSERT_EQUAL(atomic_load(&a.term_reason), AX_REASON_USER + 9);
}

static void test_link_normal_exit_ignored_by_non_trapping(void) {
  static probe a, b;
  ax_pid pa = spawn_probe(&a, false), pb = spawn_probe(&b, false);
  link_pair(pa, pb, &a);
  send_cmd(pb, C_DIE, (cmd){.reason = AX_REASON_NORMAL});
  CU_ASSERT_TRUE(ax_test_wait_count(&b.terminated, 1, 10000));
  send_cmd(pa, C_SEND, (cmd){.pid = pa, .n = 1});
  CU_ASSERT_TRUE(ax_test_wait_count(&a.data, 2, 10000));
  CU_ASSERT_EQUAL(atomic_load(&a.terminated), 0);
}

static void test_link_trapping_actor_receives_exit_message(void) {
  static probe a, b;
  ax_pid pa = spawn_probe(&a, true), pb = spawn_probe(&b, false);
  link_pair(pa, pb, &a);
  send_cmd(pb, C_DIE, (cmd){.reason = AX_REASON_NORMAL});
  CU_ASSERT_TRUE(ax_test_wait_count(&a.exits, 1, 10000));
  CU_ASSERT_EQUAL(atomic_load(&a.exit_reason), AX_REASON_NORMAL);
  CU_ASSERT_EQUAL(atomic_load(&a.exit_from), pb.id);
  CU_ASSERT_EQUAL(atomic_load(&a.terminated), 0);
}

static void test_link_is_bidirectional(void) {
  static probe a, b;
  ax_pid pa = spawn_probe(&a, false), pb = spawn_probe(&b, true);
  link_pair(pa, pb, &a);
  send_cmd(pa, C_DIE, (cmd){.reason = AX_REASON_USER});
  CU_ASSERT_TRUE(ax_test_wait_count(&b.exits, 1, 10000));
  CU_ASSERT_EQUAL(atomic_load(&b.exit_reason), AX_REASON_USER);
}

static void test_link_kill_is_untrappable_and_becomes_killed(void) {
  static probe a, b, c;
  ax_pid pa = spawn_probe(&a, true), pb = spawn_probe(&b, true), pc = spawn_probe(&c, false);
  link_pair(pb, pa, &b);
  link_pair(pc, pa, &c);
  CU_ASSERT_EQUAL(ax_system_exit(sys, pa, AX_REASON_KILL), AX_OK); /* a traps, yet dies */
  CU_ASSERT_TRUE(ax_test_wait_count(&a.terminated, 1, 10000));
  CU_ASSERT_EQUAL(atomic_load(&a.term_reason), AX_REASON_KILLED);
  CU_ASSERT_TRUE(ax_test_wait_count(&b.exits, 1, 10000));
  CU_ASSERT_EQUAL(atomic_load(&b.exit_reason), AX_REASON_KILLED); /* links see killed */
  CU_ASSERT_TRUE(ax_test_wait_count(&c.terminated, 1, 10000));
  CU_ASSERT_EQUAL(atomic_load(&c.term_reason), AX_REASON_KILLED);
}

static void test_link_to_dead_pid_delivers_noproc(void) {
  static probe a, b, t;
  ax_pid pa = spawn_probe(&a, true), pb = spawn_probe(&b, false), pt = spawn_probe(&t, false);
  send_cmd(pt, C_DIE, (cmd){.reason = AX_REASON_NORMAL});
  CU_ASSERT_TRUE(ax_test_wait_count(&t.terminated, 1, 10000));
  send_cmd(pa, C_LINK, (cmd){.pid = pt});
  CU_ASSERT_TRUE(ax_test_wait_count(&a.exits, 1, 10000));
  CU_ASSERT_EQUAL(atomic_load(&a.exit_reason), AX_REASON_NOPROC);
  send_cmd(pb, C_LINK, (cmd){.pid = pt}); /* not trapping: dies with noproc */
  CU_ASSERT_TRUE(ax_test_wait_count(&b.terminated, 1, 10000));
  CU_ASSERT_EQUAL(atomic_load(&b.term_reason), AX_REASON_NOPROC);
}

static void test_unlink_drops_exit_signal_already_in_flight(void) {
  static probe a, b;
  ax_pid pa = spawn_probe(&a, true), pb = spawn_probe(&b, false);
  link_pair(pa, pb, &a);
  send_cmd(pa, C_BLOCK, (cmd){.pid = pb}); /* unlinks after the gate opens */
  for (int i = 0; i < 10000 && !atomic_load(&a.blocked); i++) ax_test_sleep_ms(1);
  send_cmd(pb, C_DIE, (cmd){.reason = AX_REASON_USER});
  CU_ASSERT_TRUE(ax_test_wait_count(&b.terminated, 1, 10000)); /* its signal is queued at a */
  atomic_store(&a.gate, true);
  send_cmd(pa, C_SEND, (cmd){.pid = pa, .n = 1});
  CU_ASSERT_TRUE(ax_test_wait_count(&a.data, 2, 10000));
  CU_ASSERT_EQUAL(atomic_load(&a.exits), 0);
}

/* spawn_link from inside an actor: the child stops during its init. */
static ax_err stop_in_init(ax_actor *self, void *state, const void *arg, size_t len) {
  return ax_exit(self, ax_self(self), AX_REASON_USER + 5);
}
static ax_err noop(ax_actor *self, const ax_msg *msg) { return AX_OK; }
static const ax_actor_spec quick_spec = {.name = "quick", .behaviour = noop, .init = stop_in_init};

static ax_err parent_behaviour(ax_actor *self, const ax_msg *msg) {
  if (msg->type == C_DATA) return ax_spawn_link(self, &quick_spec, NULL, 0, NULL);
  return probe_behaviour(self, msg);
}
static const ax_actor_spec parent_spec = {.name = "parent", .behaviour = parent_behaviour,
                                          .state_size = sizeof(void *), .init = probe_init};

static void test_spawn_link_sees_exit_during_init(void) {
  static probe a;
  memset(&a, 0, sizeof(a));
  a.trap = true;
  probe *ap = &a;
  ax_pid pa;
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &parent_spec, &ap, sizeof(ap), &pa), AX_OK);
  ax_system_send(sys, pa, C_DATA, NULL, 0);
  CU_ASSERT_TRUE(ax_test_wait_count(&a.exits, 1, 10000));
  CU_ASSERT_EQUAL(atomic_load(&a.exit_reason), AX_REASON_USER + 5);
}

static void test_monitor_delivers_one_down_with_reason(void) {
  static probe w, t;
  ax_pid pw = spawn_probe(&w, false), pt = spawn_probe(&t, false);
  send_cmd(pw, C_MONITOR, (cmd){.pid = pt});
  send_cmd(pw, C_SEND, (cmd){.pid = pw, .n = 1});
  CU_ASSERT_TRUE(ax_test_wait_count(&w.data, 1, 10000));
  send_cmd(pt, C_DIE, (cmd){.reason = AX_REASON_USER + 2});
  CU_ASSERT_TRUE(ax_test_wait_count(&w.downs, 1, 10000));
  CU_ASSERT_EQUAL(atomic_load(&w.down_reason), AX_REASON_USER + 2);
  CU_ASSERT_EQUAL(atomic_load(&w.down_pid), pt.id);
  CU_ASSERT_EQUAL(atomic_load(&w.down_ref), atomic_load(&w.last_ref));
  CU_ASSERT_EQUAL(atomic_load(&w.terminated), 0); /* monitors never kill */
  /* the DOWN used up the monitor */
  send_cmd(pw, C_DEMONITOR, (cmd){.ref = atomic_load(&w.last_ref)});
  send_cmd(pw, C_SEND, (cmd){.pid = pw, .n = 1});
  CU_ASSERT_TRUE(ax_test_wait_count(&w.data, 2, 10000));
  CU_ASSERT_EQUAL(atomic_load(&w.demon_result), AX_ENOTFOUND);
  CU_ASSERT_EQUAL(atomic_load(&w.downs), 1);
}

static void test_monitor_dead_pid_gets_noproc_at_once(void) {
  static probe w, t;
  ax_pid pw = spawn_probe(&w, false), pt = spawn_probe(&t, false);
  send_cmd(pt, C_DIE, (cmd){.reason = AX_REASON_NORMAL});
  CU_ASSERT_TRUE(ax_test_wait_count(&t.terminated, 1, 10000));
  send_cmd(pw, C_MONITOR, (cmd){.pid = pt});
  CU_ASSERT_TRUE(ax_test_wait_count(&w.downs, 1, 10000));
  CU_ASSERT_EQUAL(atomic_load(&w.down_reason), AX_REASON_NOPROC);
}

static void test_demonitor_flush_no_down_after(void) {
  static probe w, t;
  ax_pid pw = spawn_probe(&w, false), pt = spawn_probe(&t, false);
  send_cmd(pw, C_MONITOR, (cmd){.pid = pt});
  send_cmd(pw, C_SEND, (cmd){.pid = pw, .n = 1});
  CU_ASSERT_TRUE(ax_test_wait_count(&w.data, 1, 10000));
  send_cmd(pw, C_BLOCK, (cmd){.ref = atomic_load(&w.last_ref)}); /* demonitors after the gate */
  for (int i = 0; i < 10000 && !atomic_load(&w.blocked); i++) ax_test_sleep_ms(1);
  send_cmd(pt, C_DIE, (cmd){.reason = AX_REASON_USER});
  CU_ASSERT_TRUE(ax_test_wait_count(&t.terminated, 1, 10000)); /* DOWN queued at w */
  atomic_store(&w.gate, true);
  send_cmd(pw, C_SEND, (cmd){.pid = pw, .n = 1});
  CU_ASSERT_TRUE(ax_test_wait_count(&w.data, 2, 10000));
  CU_ASSERT_EQUAL(atomic_load(&w.demon_result), AX_OK);
  CU_ASSERT_EQUAL(atomic_load(&w.downs), 0);
}

static void test_monitor_down_arrives_after_earlier_messages(void) {
  static probe w, t;
  ax_pid pw = spawn_probe(&w, false), pt = spawn_probe(&t, false);
  send_cmd(pw, C_MONITOR, (cmd){.pid = pt});
  send_cmd(pw, C_SEND, (cmd){.pid = pw, .n = 1});
  CU_ASSERT_TRUE(ax_test_wait_count(&w.data, 1, 10000));
  send_cmd(pt, C_SEND, (cmd){.pid = pw, .n = 1000, .reason = AX_REASON_USER}); /* then dies */
  CU_ASSERT_TRUE(ax_test_wait_count(&w.downs, 1, 10000));
  CU_ASSERT_EQUAL(atomic_load(&w.data_before_down), 1001);
}

static void test_monitors_stack_and_each_fires(void) {
  static probe w, t;
  ax_pid pw = spawn_probe(&w, false), pt = spawn_probe(&t, false);
  for (int i = 0; i < 3; i++) send_cmd(pw, C_MONITOR, (cmd){.pid = pt});
  send_cmd(pw, C_SEND, (cmd){.pid = pw, .n = 1});
  CU_ASSERT_TRUE(ax_test_wait_count(&w.data, 1, 10000));
  send_cmd(pt, C_DIE, (cmd){.reason = AX_REASON_USER});
  CU_ASSERT_TRUE(ax_test_wait_count(&w.downs, 3, 10000));
}

int main(void) {
  CU_pSuite s = ax_test_suite("actor.links");
  s->pInitializeFunc = setup;
  s->pCleanupFunc = teardown;
  CU_ADD_TEST(s, test_link_abnormal_exit_stops_non_trapping_with_same_reason);
  CU_ADD_TEST(s, test_link_normal_exit_ignored_by_non_trapping);
  CU_ADD_TEST(s, test_link_trapping_actor_receives_exit_message);
  CU_ADD_TEST(s, test_link_is_bidirectional);
  CU_ADD_TEST(s, test_link_kill_is_untrappable_and_becomes_killed);
  CU_ADD_TEST(s, test_link_to_dead_pid_delivers_noproc);
  CU_ADD_TEST(s, test_unlink_drops_exit_signal_already_in_flight);
  CU_ADD_TEST(s, test_spawn_link_sees_exit_during_init);
  CU_ADD_TEST(s, test_monitor_delivers_one_down_with_reason);
  CU_ADD_TEST(s, test_monitor_dead_pid_gets_noproc_at_once);
  CU_ADD_TEST(s, test_demonitor_flush_no_down_after);
  CU_ADD_TEST(s, test_monitor_down_arrives_after_earlier_messages);
  CU_ADD_TEST(s, test_monitors_stack_and_each_fires);
  return ax_test_run();
}
