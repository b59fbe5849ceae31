/* Axon tests: the route for pids of other nodes. A fake route (what the
 * cluster will register) records what reaches it: sends, send_buf,
 * requests, replies, exits, links, unlinks, monitors, demonitors, ax_call,
 * and the DOWNs and link exits a stopping actor owes remote watchers and
 * links. Without a route such pids fail as dead local ones. */
#include <pthread.h>
#include <string.h>

#include "actor/actor.h"
#include "axon.h"
#include "support/testutil.h"

#define WAIT_MS 30000
enum { MSG_OP = AX_MSG_USER, MSG_PING, MSG_PONG, MSG_CALL };
enum { OP_SEND, OP_SEND_BUF, OP_REQUEST, OP_EXIT, OP_LINK, OP_UNLINK, OP_MONITOR, OP_DEMONITOR, OP_N };

/* ---- the fake route ---- */
typedef struct rec {
  int kind; /* 1 send, 2 signal */
  uint64_t from, to;
  uint32_t type, flags;
  ax_ref ref;
  size_t len;
  char data[32];
  bool buf;
} rec;

static struct {
  pthread_mutex_t lock;
  rec r[64];
  _Atomic uint64_t n;
  ax_system *sys;
} R;

static void record(int kind, uint64_t from, uint64_t to, uint32_t type, uint32_t flags, ax_ref ref,
                   const void *data, size_t len, ax_buf *buf) {
  pthread_mutex_lock(&R.lock);
  uint64_t i = atomic_load(&R.n);
  if (i < 64) {
    rec *x = &R.r[i];
    *x = (rec){kind, from, to, type, flags, ref, len, {0}, buf != NULL};
    memcpy(x->data, data, len < sizeof x->data ? len : sizeof x->data);
    atomic_store(&R.n, i + 1);
  }
  pthread_mutex_unlock(&R.lock);
}

static ax_err fake_send(void *state, uint64_t from, uint64_t to, uint32_t type, uint32_t flags,
                        ax_ref ref, const void *data, size_t len, ax_buf *buf) {
  CU_ASSERT(state == &R);
  record(1, from, to, type, flags, ref, data, len, buf);
  if (type == MSG_CALL && (flags & AX_MSGF_REQUEST)) /* the remote actor answers */
    return ax_system_reply_to(R.sys, (ax_reply_addr){{from}, ref}, MSG_PONG, "ok", 2);
  return AX_OK;
}

static ax_err fake_signal(void *state, uint64_t from, uint64_t to, uint32_t type, const void *data,
                          size_t len) {
  CU_ASSERT(state == &R);
  record(2, from, to, type, 0, 0, data, len, NULL);
  return AX_OK;
}

static const ax__route fake = {.state = &R, .send = fake_send, .signal = fake_signal};

/* The last record of kind and type, copied; false if none. */
static bool find(int kind, uint32_t type, rec *out) {
  bool found = false;
  pthread_mutex_lock(&R.lock);
  for (uint64_t i = 0; i < atomic_load(&R.n); i++)
    if (R.r[i].kind == kind && R.r[i].type == type) {
      *out = R.r[i];
      found = true;
    }
  pthread_mutex_unlock(&R.lock);
  return found;
}

/* ---- a driver actor: does one operation on a pid per MSG_OP ---- */
typedef struct op_msg {
  int op;
  uint64_t pid;
} op_msg;

static struct {
  _Atomic uint64_t done, exits, downs;
  _Atomic int res[OP_N];
  _Atomic uint64_t ref[OP_N];
  _Atomic uint64_t exit_reason, down_reason;
} D;

static ax_err drv_init(ax_actor *self, void *state, const void *arg, size_t len) {
  (void)state, (void)arg, (void)len;
  return ax_trap_exit(self, true);
}

static ax_err drv_b(ax_actor *self, const ax_msg *m) {
  if (m->type == AX_MSG_EXIT) {
    atomic_store(&D.exit_reason, ((const ax_exit_info *)m->data)->reason);
    atomic_fetch_add(&D.exits, 1);
    return AX_OK;
  }
  if (m->type == AX_MSG_DOWN) {
    atomic_store(&D.down_reason, ((const ax_down_info *)m->data)->reason);
    atomic_fetch_add(&D.downs, 1);
    return AX_OK;
  }
  if (m->type != MSG_OP) return AX_OK;
  op_msg o;
  memcpy(&o, m->data, sizeof o);
  ax_pid to = {o.pid};
  ax_err e = AX_OK;
  ax_ref ref = 0;
  ax_buf *b = NULL;
  switch (o.op) {
  case OP_SEND: e = ax_send(self, to, MSG_PING, "abc", 3); break;
  case OP_SEND_BUF:
    e = ax_buf_copy("hello", 5, &b);
    if (e == AX_OK) e = ax_send_buf(self, to, MSG_PING, b, 1, 3);
    ax_buf_release(b);
    break;
  case OP_REQUEST: e = ax_request(self, to, MSG_PING, "q", 1, AX_INFINITY, &ref); break;
  case OP_EXIT: e = ax_exit(self, to, AX_REASON_USER + 1); break;
  case OP_LINK: e = ax_link(self, to); break;
  case OP_UNLINK: e = ax_unlink(self, to); break;
  case OP_MONITOR: e = ax_monitor(self, to, &ref); break;
  case OP_DEMONITOR: e = ax_demonitor(self, atomic_load(&D.ref[OP_MONITOR]), 0); break;
  }
  atomic_store(&D.ref[o.op], ref);
  atomic_store(&D.res[o.op], e);
  atomic_fetch_add(&D.done, 1);
  return AX_OK;
}

static const ax_actor_spec drv_spec = {.name = "driver", .behaviour = drv_b, .init = drv_init};

static ax_err idle_b(ax_actor *self, const ax_msg *m) {
  (void)self, (void)m;
  return AX_OK;
}
static const ax_actor_spec idle_spec = {.name = "idle", .behaviour = idle_b};

static ax_system *sys_new(uint32_t node) {
  ax_system_config cfg;
  ax_system_config_init(&cfg);
  cfg.workers = 2;
  ax_system *sys = NULL;
  CU_ASSERT_FATAL(ax_system_new(&cfg, &sys) == AX_OK);
  if (node) CU_ASSERT_FATAL(ax__system_set_node(sys, node) == AX_OK);
  memset(&D, 0, sizeof D);
  pthread_mutex_lock(&R.lock);
  atomic_store(&R.n, 0);
  pthread_mutex_unlock(&R.lock);
  R.sys = sys;
  return sys;
}

static void sys_free(ax_system *sys) {
  CU_ASSERT(ax_system_shutdown(sys) == AX_OK);
  ax_system_free(sys);
}

static void run_op(ax_system *sys, ax_pid drv, int op, uint64_t pid) {
  uint64_t before = atomic_load(&D.done);
  op_msg o = {op, pid};
  CU_ASSERT_FATAL(ax_system_send(sys, drv, MSG_OP, &o, sizeof o) == AX_OK);
  CU_ASSERT_FATAL(ax_test_wait_count(&D.done, before + 1, WAIT_MS));
}

static const uint64_t REMOTE_NODE = 7;
static uint64_t remote_pid(void) { return ax__pid_make(REMOTE_NODE, 5, 2); }

/* ---- tests ---- */

static void test_route_node_number(void) {
  ax_system *sys = sys_new(3);
  CU_ASSERT_EQUAL(ax__system_node(sys), 3);
  CU_ASSERT_EQUAL(ax__system_set_node(sys, AX__NODE_MAX + 1), AX_EINVAL);
  ax_pid a;
  CU_ASSERT_FATAL(ax_system_spawn(sys, &idle_spec, NULL, 0, &a) == AX_OK);
  CU_ASSERT_EQUAL(ax__pid_node(a.id), 3); /* local pids carry the node */
  CU_ASSERT_FALSE(ax__pid_remote(sys, a.id));
  CU_ASSERT_FALSE(ax__pid_remote(sys, 0));
  CU_ASSERT(ax__pid_remote(sys, remote_pid()));
  CU_ASSERT_EQUAL(ax__system_set_node(sys, 4), AX_ESTATE); /* too late */
  CU_ASSERT_EQUAL(ax_system_send(sys, a, MSG_PING, NULL, 0), AX_OK);
  sys_free(sys);
}

static void test_route_none_fails_as_dead_pid(void) {
  ax_system *sys = sys_new(1);
  ax_pid drv;
  CU_ASSERT_FATAL(ax_system_spawn(sys, &drv_spec, NULL, 0, &drv) == AX_OK);
  ax_pid r = {remote_pid()};
  CU_ASSERT_EQUAL(ax_system_send(sys, r, MSG_PING, "x", 1), AX_ENOACTOR);
  CU_ASSERT_EQUAL(ax_system_exit(sys, r, AX_REASON_USER), AX_ENOACTOR);
  CU_ASSERT_EQUAL(ax_system_reply_to(sys, (ax_reply_addr){r, 42}, MSG_PONG, NULL, 0), AX_ENOACTOR);
  CU_ASSERT_EQUAL(ax_call(sys, r, MSG_CALL, NULL, 0, 1000, NULL, NULL, NULL), AX_ENOACTOR);
  run_op(sys, drv, OP_SEND, r.id);
  CU_ASSERT_EQUAL(atomic_load(&D.res[OP_SEND]), AX_ENOACTOR);
  run_op(sys, drv, OP_REQUEST, r.id);
  CU_ASSERT_EQUAL(atomic_load(&D.res[OP_REQUEST]), AX_ENOACTOR);
  run_op(sys, drv, OP_EXIT, r.id);
  CU_ASSERT_EQUAL(atomic_load(&D.res[OP_EXIT]), AX_ENOACTOR);
  /* A link or monitor to a pid of a node we cannot reach: EXIT and DOWN
   * noconnection (as Erlang's; a dead local pid's are noproc) */
  run_op(sys, drv, OP_LINK, r.id);
  CU_ASSERT_EQUAL(atomic_load(&D.res[OP_LINK]), AX_OK);
  CU_ASSERT(ax_test_wait_count(&D.exits, 1, WAIT_MS));
  CU_ASSERT_EQUAL(atomic_load(&D.exit_reason), AX_REASON_NOCONNECTION);
  run_op(sys, drv, OP_MONITOR, r.id);
  CU_ASSERT_EQUAL(atomic_load(&D.res[OP_MONITOR]), AX_OK);
  CU_ASSERT(ax_test_wait_count(&D.downs, 1, WAIT_MS));
  CU_ASSERT_EQUAL(atomic_load(&D.down_reason), AX_REASON_NOCONNECTION);
  CU_ASSERT_EQUAL(atomic_load(&R.n), 0);
  sys_free(sys);
}

static void test_route_gets_every_path(void) {
  ax_system *sys = sys_new(1);
  ax__route_set(sys, &fake);
  ax_pid drv;
  CU_ASSERT_FATAL(ax_system_spawn(sys, &drv_spec, NULL, 0, &drv) == AX_OK);
  uint64_t r = remote_pid();
  rec x;

  run_op(sys, drv, OP_SEND, r);
  CU_ASSERT_EQUAL(atomic_load(&D.res[OP_SEND]), AX_OK);
  CU_ASSERT_FATAL(find(1, MSG_PING, &x));
  CU_ASSERT(x.from == drv.id && x.to == r && x.flags == 0 && x.ref == 0 && x.len == 3 && !x.buf);
  CU_ASSERT(memcmp(x.data, "abc", 3) == 0);

  run_op(sys, drv, OP_SEND_BUF, r);
  CU_ASSERT_EQUAL(atomic_load(&D.res[OP_SEND_BUF]), AX_OK);
  CU_ASSERT_FATAL(find(1, MSG_PING, &x));
  CU_ASSERT(x.buf && x.len == 3 && memcmp(x.data, "ell", 3) == 0);

  run_op(sys, drv, OP_REQUEST, r);
  CU_ASSERT_EQUAL(atomic_load(&D.res[OP_REQUEST]), AX_OK);
  CU_ASSERT_FATAL(find(1, MSG_PING, &x));
  CU_ASSERT(x.flags == AX_MSGF_REQUEST && x.ref == atomic_load(&D.ref[OP_REQUEST]) && x.ref);

  CU_ASSERT_EQUAL(ax_system_reply_to(sys, (ax_reply_addr){{r}, 42}, MSG_PONG, "r", 1), AX_OK);
  CU_ASSERT_FATAL(find(1, MSG_PONG, &x));
  CU_ASSERT(x.flags == AX_MSGF_REPLY && x.ref == 42 && x.to == r && x.len == 1);

  run_op(sys, drv, OP_EXIT, r);
  CU_ASSERT_EQUAL(atomic_load(&D.res[OP_EXIT]), AX_OK);
  CU_ASSERT_FATAL(find(2, AX__SIG_EXIT, &x));
  ax_exit_info info;
  memcpy(&info, x.data, sizeof info);
  CU_ASSERT(x.from == drv.id && x.to == r && x.len == sizeof info);
  CU_ASSERT(info.pid.id == drv.id && info.reason == AX_REASON_USER + 1);

  run_op(sys, drv, OP_LINK, r);
  CU_ASSERT_EQUAL(atomic_load(&D.res[OP_LINK]), AX_OK);
  CU_ASSERT_FATAL(find(2, AX__SIG_LINK, &x));
  uint64_t v;
  memcpy(&v, x.data, sizeof v);
  CU_ASSERT(x.to == r && v == drv.id);
  run_op(sys, drv, OP_UNLINK, r);
  CU_ASSERT_EQUAL(atomic_load(&D.res[OP_UNLINK]), AX_OK);
  CU_ASSERT_FATAL(find(2, AX__SIG_UNLINK, &x));
  memcpy(&v, x.data, sizeof v);
  CU_ASSERT(x.to == r && v == drv.id);

  run_op(sys, drv, OP_MONITOR, r);
  CU_ASSERT_EQUAL(atomic_load(&D.res[OP_MONITOR]), AX_OK);
  CU_ASSERT_FATAL(find(2, AX__SIG_MONITOR, &x));
  ax_down_info d;
  memcpy(&d, x.data, sizeof d);
  CU_ASSERT(x.to == r && d.ref == atomic_load(&D.ref[OP_MONITOR]) && d.pid.id == drv.id);
  run_op(sys, drv, OP_DEMONITOR, r);
  CU_ASSERT_EQUAL(atomic_load(&D.res[OP_DEMONITOR]), AX_OK);
  CU_ASSERT_FATAL(find(2, AX__SIG_DEMONITOR, &x));
  memcpy(&v, x.data, sizeof v);
  CU_ASSERT(x.to == r && v == atomic_load(&D.ref[OP_MONITOR]));
  CU_ASSERT_EQUAL(atomic_load(&D.exits) + atomic_load(&D.downs), 0); /* no noproc */

  /* ax_call: its proxy monitors the target and sends the request; the
   * route's remote actor answers. */
  char reply[8] = {0};
  size_t rlen = sizeof reply;
  uint32_t rtype = 0;
  CU_ASSERT_EQUAL(ax_call(sys, (ax_pid){r}, MSG_CALL, "c", 1, WAIT_MS, reply, &rlen, &rtype), AX_OK);
  CU_ASSERT(rlen == 2 && rtype == MSG_PONG && memcmp(reply, "ok", 2) == 0);
  CU_ASSERT_FATAL(find(1, MSG_CALL, &x));
  CU_ASSERT(x.flags == AX_MSGF_REQUEST && x.to == r);
  rec m;
  CU_ASSERT_FATAL(find(2, AX__SIG_MONITOR, &m));
  memcpy(&d, m.data, sizeof d);
  CU_ASSERT(d.pid.id == x.from); /* the proxy watches the target */

  /* A dead local pid and AX_PID_NONE are not the route's. */
  uint64_t n = atomic_load(&R.n);
  ax_pid a;
  CU_ASSERT_FATAL(ax_system_spawn(sys, &idle_spec, NULL, 0, &a) == AX_OK);
  CU_ASSERT(ax_system_exit(sys, a, AX_REASON_KILL) == AX_OK);
  for (int i = 0; i < WAIT_MS && ax_system_send(sys, a, MSG_PING, NULL, 0) == AX_OK; i++)
    ax_test_sleep_ms(1);
  CU_ASSERT_EQUAL(ax_system_send(sys, a, MSG_PING, NULL, 0), AX_ENOACTOR);
  CU_ASSERT_EQUAL(ax_system_send(sys, AX_PID_NONE, MSG_PING, NULL, 0), AX_ENOACTOR);
  CU_ASSERT_EQUAL(atomic_load(&R.n), n);
  sys_free(sys);
}

/* A stopping actor owes a remote watcher a DOWN and a remote link an exit
 * signal: both go to the route. */
static void test_route_gets_stop_notices(void) {
  ax_system *sys = sys_new(1);
  ax__route_set(sys, &fake);
  uint64_t r = remote_pid();
  ax_pid a;
  CU_ASSERT_FATAL(ax_system_spawn(sys, &idle_spec, NULL, 0, &a) == AX_OK);
  /* What the cluster replays for a remote monitor and a remote link. */
  ax_down_info mon = {.ref = 77, .pid = {r}};
  CU_ASSERT_FATAL(ax__signal(sys, r, a.id, AX__SIG_MONITOR, &mon, sizeof mon) == AX_OK);
  CU_ASSERT_FATAL(ax__signal(sys, r, a.id, AX__SIG_LINK, &r, sizeof r) == AX_OK);
  CU_ASSERT_FATAL(ax_system_exit(sys, a, AX_REASON_USER + 2) == AX_OK);
  rec x;
  bool got = false;
  for (int i = 0; i < WAIT_MS && !(got = find(1, AX_MSG_DOWN, &x) && find(2, AX__SIG_LINK_EXIT, &x)); i++)
    ax_test_sleep_ms(1);
  CU_ASSERT_FATAL(got);
  CU_ASSERT_FATAL(find(1, AX_MSG_DOWN, &x));
  ax_down_info d;
  memcpy(&d, x.data, sizeof d);
  CU_ASSERT(x.to == r && x.from == a.id && (x.flags & AX_MSGF_SYSTEM));
  CU_ASSERT(d.ref == 77 && d.pid.id == a.id && d.reason == AX_REASON_USER + 2);
  CU_ASSERT_FATAL(find(2, AX__SIG_LINK_EXIT, &x));
  ax_exit_info info;
  memcpy(&info, x.data, sizeof info);
  CU_ASSERT(x.to == r && info.pid.id == a.id && info.reason == AX_REASON_USER + 2);
  sys_free(sys);
}

int main(void) {
  pthread_mutex_init(&R.lock, NULL);
  CU_pSuite s = ax_test_suite("actor.route");
  CU_ADD_TEST(s, test_route_node_number);
  CU_ADD_TEST(s, test_route_none_fails_as_dead_pid);
  CU_ADD_TEST(s, test_route_gets_every_path);
  CU_ADD_TEST(s, test_route_gets_stop_notices);
  return ax_test_run();
}
