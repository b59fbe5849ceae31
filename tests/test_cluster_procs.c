/* Axon tests: nodes in separate processes (tests/cluster/testnode.c, an echo
 * actor behind a node) against a node in this process: kill -9 of the peer
 * process fires EXIT and DOWN noconnection; SIGSTOP is detected by the
 * heartbeat silence (NODE_DOWN reason timeout); a restarted peer (same
 * name, same port, new incarnation) is redialled by this node, its old
 * pids stay dead and its new ones answer; and the Python client
 * (tests/cluster/py_handshake.py --connect) handshakes with a running node
 * and gets its echo's reply. Every wait is bounded and on a condition. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "axon.h"
#include "support/cluster_harness.h"
#include "support/testutil.h"

#define WAIT_MS 30000
#define SECRET "multi-process-cluster-secret"
enum { T_ECHO = AX_MSG_USER + 1, T_CMD };
enum { OP_LINK, OP_MONITOR, OP_NODEMON };

static char g_dir[64], secret_path[128];
/* Extra testnode flags for the next proc_start (NULL-terminated). */
static const char *g_extra[8];

typedef axh_proc proc;

static bool proc_start(proc *p, const char *name, const char *listen, const char *seed,
                       const char *hb, const char *down) {
  return axh_proc_start(p, AX_TESTNODE, name, listen, secret_path, seed, hb, down, g_extra,
                        WAIT_MS);
}
#define proc_end axh_proc_end

/* ---- the local node and its probe ---- */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int32_t seen[4][8]; /* [kind][reason] counts: 0 EXIT, 1 DOWN, 2 NODE_UP, 3 NODE_DOWN */

typedef struct cmd {
  int op;
  ax_pid pid;
} cmd;

static ax_err probe_init(ax_actor *self, void *st, const void *arg, size_t len) {
  (void)st, (void)arg, (void)len;
  return ax_trap_exit(self, true);
}
static void note(int k, int32_t r) {
  pthread_mutex_lock(&mu);
  if (r >= 0 && r < 8) seen[k][r]++;
  pthread_mutex_unlock(&mu);
}
static ax_err probe(ax_actor *self, const ax_msg *m) {
  if (m->type == T_CMD) {
    const cmd *c = m->data;
    if (c->op == OP_LINK) CU_ASSERT_EQUAL(ax_link(self, c->pid), AX_OK);
    if (c->op == OP_MONITOR) CU_ASSERT_EQUAL(ax_monitor(self, c->pid, NULL), AX_OK);
    if (c->op == OP_NODEMON) CU_ASSERT_EQUAL(ax_node_monitor(self, NULL, true), AX_OK);
  } else if (m->type == AX_MSG_EXIT) {
    note(0, ((const ax_exit_info *)m->data)->reason);
  } else if (m->type == AX_MSG_DOWN) {
    note(1, ((const ax_down_info *)m->data)->reason);
  } else if (m->type == AX_MSG_NODE_UP || m->type == AX_MSG_NODE_DOWN) {
    note(m->type == AX_MSG_NODE_UP ? 2 : 3, ((const ax_node_event *)m->data)->reason);
  }
  return AX_OK;
}
static const ax_actor_spec probe_spec = {.behaviour = probe, .init = probe_init};

typedef struct want {
  int k, r, n;
} want;
static int32_t seen_count(int k, int r) {
  pthread_mutex_lock(&mu);
  int32_t n = seen[k][r];
  pthread_mutex_unlock(&mu);
  return n;
}
static bool seen_pred(void *a) {
  want *w = a;
  return seen_count(w->k, w->r) >= w->n;
}

static bool wait_seen(int k, int r, int n) {
  want w = {k, r, n};
  return ax_test_wait(seen_pred, &w, WAIT_MS);
}

/* listen NULL: 127.0.0.1:0. */
static ax_system *local_node_at(const char *listen, const char *hb, const char *down, char *addr,
                                ax_pid *pr) {
  ax_system *sys;
  ax_system_config sc;
  ax_system_config_init(&sc);
  sc.workers = 2;
  if (ax_system_new(&sc, &sys) != AX_OK) return NULL;
  axh_node_opts o = {.secret_file = secret_path,
                     .heartbeat_ms = hb ? (uint32_t)atoi(hb) : 0,
                     .down_after_ms = down ? (uint32_t)atoi(down) : 0};
  ax_node_config c;
  axh_node_config(&c, "local@127.0.0.1", &o);
  if (listen) c.listen = listen;
  CU_ASSERT_EQUAL(ax_node_start(sys, &c), AX_OK);
  size_t len = 128;
  CU_ASSERT_EQUAL(ax_node_listen_addr(sys, addr, &len), AX_OK);
  CU_ASSERT_EQUAL(ax_system_spawn(sys, &probe_spec, NULL, 0, pr), AX_OK);
  memset(seen, 0, sizeof seen);
  ax_system_send(sys, *pr, T_CMD, &(cmd){OP_NODEMON, AX_PID_NONE}, sizeof(cmd));
  return sys;
}

static ax_system *local_node(const char *hb, const char *down, char *addr, ax_pid *pr) {
  return local_node_at(NULL, hb, down, addr, pr);
}

static bool wait_nodes(ax_system *sys, size_t n) { return axh_wait_nodes(sys, n, false, WAIT_MS); }

static ax_pid echo_pid(ax_system *sys, const char *node, uint64_t id) {
  ax_pid p = AX_PID_NONE;
  CU_ASSERT_EQUAL(ax_node_pid(sys, node, id, &p), AX_OK);
  return p;
}

static ax_err echo_call(ax_system *sys, ax_pid p) {
  char rep[8];
  size_t rl = sizeof rep;
  ax_err e = ax_call(sys, p, T_ECHO, "ping", 4, 20000, rep, &rl, NULL);
  if (e == AX_OK && (rl != 4 || memcmp(rep, "ping", 4))) e = AX_EINVAL;
  return e;
}

/* The local node (local_node) and one test node p@127.0.0.1 seeded with it,
 * both with heartbeat hb and down_after down; returns once they are
 * connected (a failure ends the test). */
static ax_system *local_with_peer(const char *hb, const char *down, ax_pid *pr, proc *p) {
  char addr[128];
  ax_system *sys = local_node(hb, down, addr, pr);
  CU_ASSERT_PTR_NOT_NULL_FATAL(sys);
  CU_ASSERT_FATAL(proc_start(p, "p@127.0.0.1", "127.0.0.1:0", addr, hb, down));
  CU_ASSERT_FATAL(wait_nodes(sys, 1));
  return sys;
}

static void test_kill9(void) {
  ax_pid pr;
  proc p;
  ax_system *sys = local_with_peer(NULL, NULL, &pr, &p);
  ax_pid e = echo_pid(sys, "p@127.0.0.1", p.echo_id);
  CU_ASSERT_EQUAL(echo_call(sys, e), AX_OK);
  ax_system_send(sys, pr, T_CMD, &(cmd){OP_LINK, e}, sizeof(cmd));
  ax_system_send(sys, pr, T_CMD, &(cmd){OP_MONITOR, e}, sizeof(cmd));
  ax_test_sleep_ms(100);
  proc_end(&p, SIGKILL);
  CU_ASSERT(wait_seen(0, AX_REASON_NOCONNECTION, 1));
  CU_ASSERT(wait_seen(1, AX_REASON_NOCONNECTION, 1));
  CU_ASSERT(wait_seen(3, AX_NODE_CLOSED, 1));
  ax_system_free(sys);
}

static void test_sigstop(void) {
  ax_pid pr;
  proc p;
  ax_system *sys = local_with_peer("100", "1000", &pr, &p);
  kill(p.pid, SIGSTOP);
  CU_ASSERT(wait_seen(3, AX_NODE_TIMEOUT, 1)); /* found by silence, not by a close */
  kill(p.pid, SIGCONT);
  proc_end(&p, SIGKILL);
  ax_system_free(sys);
}

static void test_restart_new_incarnation(void) {
  ax_pid pr;
  proc p;
  ax_system *sys = local_with_peer(NULL, NULL, &pr, &p);
  ax_node_info i1;
  CU_ASSERT_EQUAL(ax_node_list(sys, &i1, 1), 1);
  ax_pid old = echo_pid(sys, "p@127.0.0.1", p.echo_id);
  CU_ASSERT_EQUAL(echo_call(sys, old), AX_OK);
  char port_addr[128];
  snprintf(port_addr, sizeof port_addr, "%s", p.addr);
  proc_end(&p, SIGKILL);
  CU_ASSERT(wait_seen(3, AX_NODE_CLOSED, 1));
  /* Back on the same port with no seed: this node redials it. */
  CU_ASSERT_FATAL(proc_start(&p, "p@127.0.0.1", port_addr, NULL, NULL, NULL));
  CU_ASSERT(wait_seen(2, AX_NODE_CONNECTED, 2));
  ax_node_info i2;
  CU_ASSERT_EQUAL(ax_node_list(sys, &i2, 1), 1);
  CU_ASSERT_STRING_EQUAL(i2.name, "p@127.0.0.1");
  CU_ASSERT_NOT_EQUAL(i1.incarnation, i2.incarnation);
  /* The old incarnation's pids are dead, even with the same id. */
  CU_ASSERT_EQUAL(ax_system_send(sys, old, T_ECHO, "x", 1), AX_ENOACTOR);
  ax_pid now = echo_pid(sys, "p@127.0.0.1", p.echo_id);
  CU_ASSERT_NOT_EQUAL(now.id, old.id);
  CU_ASSERT_EQUAL(echo_call(sys, now), AX_OK);
  proc_end(&p, SIGKILL);
  ax_system_free(sys);
}

typedef struct pgw {
  ax_system *sys;
  size_t n;
} pgw;
static bool pg_pred(void *a) {
  pgw *w = a;
  size_t n = 0;
  return ax_pg_members(w->sys, "g", NULL, &n) == AX_OK && n == w->n;
}

/* Services across processes: whereis and spawn by name on a peer process,
 * refused by one that does not allow it; a pg group across three processes
 * (this one and two testnodes) that loses the members of a peer killed with
 * kill -9; and a whereis to a SIGSTOPped node that ends with the request's
 * timeout (down_after is long here, so the node stays up meanwhile). */
static void test_services(void) {
  char addr[128];
  ax_pid pr;
  ax_system *sys = local_node("1000", "60000", addr, &pr);
  CU_ASSERT_PTR_NOT_NULL_FATAL(sys);
  proc p, q;
  const char *ep[] = {"--spawnable", "1", "--pg", "g", NULL};
  memcpy(g_extra, ep, sizeof ep);
  CU_ASSERT_FATAL(proc_start(&p, "p@127.0.0.1", "127.0.0.1:0", addr, "1000", "60000"));
  const char *eq[] = {"--pg", "g", NULL};
  memcpy(g_extra, eq, sizeof eq);
  CU_ASSERT_FATAL(proc_start(&q, "q@127.0.0.1", "127.0.0.1:0", addr, "1000", "60000"));
  g_extra[0] = NULL;
  CU_ASSERT_FATAL(wait_nodes(sys, 2));
  /* whereis on another process: the echo's pid. */
  ax_pid got = AX_PID_NONE;
  CU_ASSERT_EQUAL(ax_node_whereis(sys, "p@127.0.0.1", "echo", 20000, &got), AX_OK);
  CU_ASSERT_EQUAL(got.id, echo_pid(sys, "p@127.0.0.1", p.echo_id).id);
  CU_ASSERT_EQUAL(ax_node_whereis(sys, "q@127.0.0.1", "none", 20000, &got), AX_ENOTFOUND);
  /* spawn by name: p allows it, q does not. */
  ax_pid s = AX_PID_NONE;
  CU_ASSERT_EQUAL(ax_node_spawn(sys, "p@127.0.0.1", "echo", NULL, 0, 20000, &s), AX_OK);
  CU_ASSERT_EQUAL(echo_call(sys, s), AX_OK);
  CU_ASSERT_EQUAL(ax_node_spawn(sys, "q@127.0.0.1", "echo", NULL, 0, 20000, &s), AX_ENOTSUP);
  CU_ASSERT_EQUAL(ax_node_spawn(sys, "p@127.0.0.1", "nope", NULL, 0, 20000, &s), AX_ENOTFOUND);
  /* pg: this node's probe and the two echoes. */
  CU_ASSERT_EQUAL(ax_pg_join(sys, "g", pr), AX_OK);
  pgw w = {sys, 3};
  CU_ASSERT(ax_test_wait(pg_pred, &w, WAIT_MS));
  size_t sent = 0;
  CU_ASSERT_EQUAL(ax_system_pg_send(sys, "g", T_ECHO, "x", 1, &sent), AX_OK);
  CU_ASSERT_EQUAL(sent, 3);
  proc_end(&q, SIGKILL);
  w.n = 2;
  CU_ASSERT(ax_test_wait(pg_pred, &w, WAIT_MS));
  /* A stopped node: the request times out (no answer, no node down). */
  kill(p.pid, SIGSTOP);
  int st = 0; /* wait until it has stopped (kill only starts the stop) */
  while (waitpid(p.pid, &st, WUNTRACED) < 0 && errno == EINTR) {
  }
  CU_ASSERT(WIFSTOPPED(st));
  CU_ASSERT_EQUAL(ax_node_whereis(sys, "p@127.0.0.1", "echo", 300, &got), AX_ETIMEDOUT);
  kill(p.pid, SIGCONT);
  proc_end(&p, SIGKILL);
  ax_system_free(sys);
}

/* The Unix-socket transport between processes: both nodes listen on
 * unix:/path; send, request/reply, link and monitor; kill -9 fires
 * noconnection; the peer restarted on the same path (its old socket file
 * still there) is redialled, with a new incarnation. */
static void test_unix_socket(void) {
  char laddr[128], paddr[128], addr[128];
  snprintf(laddr, sizeof laddr, "unix:%s/local.sock", g_dir);
  snprintf(paddr, sizeof paddr, "unix:%s/p.sock", g_dir);
  ax_pid pr;
  ax_system *sys = local_node_at(laddr, NULL, NULL, addr, &pr);
  CU_ASSERT_PTR_NOT_NULL_FATAL(sys);
  CU_ASSERT_STRING_EQUAL(addr, laddr);
  proc p;
  CU_ASSERT_FATAL(proc_start(&p, "p@127.0.0.1", paddr, laddr, NULL, NULL));
  CU_ASSERT_STRING_EQUAL(p.addr, paddr);
  CU_ASSERT_FATAL(wait_nodes(sys, 1));
  ax_node_info i1;
  CU_ASSERT_EQUAL(ax_node_list(sys, &i1, 1), 1);
  CU_ASSERT_STRING_EQUAL(i1.addr, paddr);
  ax_pid e = echo_pid(sys, "p@127.0.0.1", p.echo_id);
  CU_ASSERT_EQUAL(ax_system_send(sys, e, T_ECHO, "x", 1), AX_OK);
  CU_ASSERT_EQUAL(echo_call(sys, e), AX_OK);
  ax_system_send(sys, pr, T_CMD, &(cmd){OP_LINK, e}, sizeof(cmd));
  ax_system_send(sys, pr, T_CMD, &(cmd){OP_MONITOR, e}, sizeof(cmd));
  /* The probe runs its link and monitor when it gets to them, which may
   * be after the kill below (the call here does not wait for the probe):
   * before the node is seen down, they cross and the node's down fires
   * them; after, they find no connection. Either way noconnection (CI saw
   * the second order, when the second answered noproc). */
  CU_ASSERT_EQUAL(echo_call(sys, e), AX_OK);
  proc_end(&p, SIGKILL);
  CU_ASSERT(wait_seen(0, AX_REASON_NOCONNECTION, 1));
  CU_ASSERT(wait_seen(1, AX_REASON_NOCONNECTION, 1));
  CU_ASSERT(wait_seen(3, AX_NODE_CLOSED, 1));
  CU_ASSERT_EQUAL(ax_system_send(sys, e, T_ECHO, "x", 1), AX_ENOACTOR);
  /* A link and a monitor to a pid of the node that is down now: at once,
   * noconnection (as Erlang's), not noproc (the pid may well live). */
  ax_system_send(sys, pr, T_CMD, &(cmd){OP_LINK, e}, sizeof(cmd));
  ax_system_send(sys, pr, T_CMD, &(cmd){OP_MONITOR, e}, sizeof(cmd));
  CU_ASSERT(wait_seen(0, AX_REASON_NOCONNECTION, 2));
  CU_ASSERT(wait_seen(1, AX_REASON_NOCONNECTION, 2));
  CU_ASSERT(seen_count(0, AX_REASON_NOPROC) == 0 && seen_count(1, AX_REASON_NOPROC) == 0);
  /* Back on the same path (the killed process left its socket file). */
  CU_ASSERT_FATAL(proc_start(&p, "p@127.0.0.1", paddr, NULL, NULL, NULL));
  CU_ASSERT(wait_seen(2, AX_NODE_CONNECTED, 2));
  ax_node_info i2;
  CU_ASSERT_EQUAL(ax_node_list(sys, &i2, 1), 1);
  CU_ASSERT_NOT_EQUAL(i1.incarnation, i2.incarnation);
  CU_ASSERT_EQUAL(ax_system_send(sys, e, T_ECHO, "x", 1), AX_ENOACTOR); /* old pid: dead */
  CU_ASSERT_EQUAL(echo_call(sys, echo_pid(sys, "p@127.0.0.1", p.echo_id)), AX_OK);
  proc_end(&p, SIGKILL);
  ax_system_free(sys);
  unlink(laddr + 5);
  unlink(paddr + 5);
}

static void test_python_client(void) {
  if (!AX_PYTHON3[0]) {
    fprintf(stderr, "(no python3: skipped) ");
    return;
  }
  proc p;
  CU_ASSERT_FATAL(proc_start(&p, "p@127.0.0.1", "127.0.0.1:0", NULL, NULL, NULL));
  char to[32];
  snprintf(to, sizeof to, "%llu", (unsigned long long)p.echo_id);
  pid_t py = fork();
  if (py == 0) {
    setenv("AXON_TEST_SECRET", SECRET, 1);
    execl(AX_PYTHON3, AX_PYTHON3, AX_PY_SCRIPT, "--connect", p.addr, "--to", to, "--pb-dir",
          AX_PB_PY_DIR, (char *)NULL);
    _exit(127);
  }
  int st = 0;
  while (waitpid(py, &st, 0) < 0 && errno == EINTR) {
  }
  int rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
  if (rc == 77) fprintf(stderr, "(no python3-protobuf: skipped) ");
  else CU_ASSERT_EQUAL(rc, 0);
  proc_end(&p, SIGKILL);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  if (!axh_tmpdir(g_dir, sizeof g_dir, "/tmp/axon-procs-XXXXXX")) return 1;
  if (!axh_write_secret(g_dir, "secret", SECRET, secret_path, sizeof secret_path)) return 1;
  CU_pSuite s = ax_test_suite("cluster.procs");
  CU_add_test(s, "kill -9 fires noconnection", test_kill9);
  CU_add_test(s, "SIGSTOP found by silence", test_sigstop);
  CU_add_test(s, "restart: new incarnation, redial", test_restart_new_incarnation);
  CU_add_test(s, "python client talks to a running node", test_python_client);
  CU_add_test(s, "unix sockets: send, request, link, monitor, kill -9, restart", test_unix_socket);
  CU_add_test(s, "services: whereis, spawn, pg with kill -9, timeout", test_services);
  int rc = ax_test_run();
  unlink(secret_path);
  rmdir(g_dir);
  return rc;
}
