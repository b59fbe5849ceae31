/* Axon tests: the cluster out of memory. With the fail-Nth allocation hook
 * (src/base/alloc.c; one hook for the whole process, so both nodes of the
 * scenario share it) armed before anything is set up, one two-node
 * scenario runs end to end: node a starts, node b starts with a as its
 * seed (the handshake, both sides), an echo actor on b, then from a: a
 * plain send and a request/reply to it (frames out and in), a watcher actor
 * on a that links to and monitors it (LINK, MONITOR frames), b joins it to
 * a process group (PG_JOIN, seen by a), and a drops its connection to b
 * (node down, then the reconnect from b's seed list). For each N (one
 * failure, and bursts of 8):
 *  - every call returns AX_OK or one of the errors a lost allocation or a
 *    closed connection explains (AX_ENOMEM, AX_ETIMEDOUT, AX_ENOACTOR, ...),
 *    never a crash or a hang (every wait is bounded);
 *  - once the hook is off, everything works on the same two systems: the
 *    nodes are (or get) connected on their own (a dial lost to the failure
 *    is retried by the runtime), a request/reply round trip succeeds, a
 *    group join reaches the other node, and a DOWN for a remote actor that
 *    stops arrives;
 *  - nothing leaks (LeakSanitizer in the ASan build checks at exit).
 * CLUSTER_OOM_N starts at another N, CLUSTER_OOM_SECONDS bounds the loop
 * (default 120 s; it stops early once a run injects nothing). */
#include <axon.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "support/cluster_harness.h"
#include "support/testutil.h"

#define WAIT_MS 20000
#define SECRET "cluster-oom-tests-share-a-secret"

static char g_dir[64], secret_path[256];
static _Atomic uint64_t downs, exits;

static void quiet(ax_log_level level, const char *line, void *arg) {
  (void)level, (void)line, (void)arg;
  if (getenv("CLUSTER_OOM_TRACE")) fprintf(stderr, "{%s}", line);
}

/* Answers every request with its own bytes. */
static ax_err echo_behave(ax_actor *self, const ax_msg *m) {
  if (m->flags & AX_MSGF_REQUEST) (void)ax_reply(self, m, m->type, m->data, m->len);
  return AX_OK;
}
static const ax_actor_spec echo_spec = {.name = "oom-echo", .behaviour = echo_behave};

/* Links to and monitors the pid its init gets (trapping exits). */
static ax_err watch_init(ax_actor *self, void *state, const void *arg, size_t len) {
  (void)state;
  ax_pid t;
  if (len != sizeof t) return AX_EINVAL;
  memcpy(&t, arg, sizeof t);
  ax_err e = ax_trap_exit(self, true);
  if (e == AX_OK) e = ax_monitor(self, t, NULL);
  if (e == AX_OK) e = ax_link(self, t);
  return e;
}
static ax_err watch_behave(ax_actor *self, const ax_msg *m) {
  (void)self;
  if (m->type == AX_MSG_DOWN) atomic_fetch_add(&downs, 1);
  if (m->type == AX_MSG_EXIT) atomic_fetch_add(&exits, 1);
  return AX_OK;
}
static const ax_actor_spec watch_spec = {
    .name = "oom-watch", .behaviour = watch_behave, .init = watch_init};

/* Out of memory, or what a connection lost to it explains. */
static bool explained(ax_err e) {
  return e == AX_OK || e == AX_ENOMEM || e == AX_ETIMEDOUT ||
         e == AX_ENOACTOR || e == AX_EAGAIN || e == AX_ECLOSED || e == AX_ENOTFOUND;
}

#define EXPECT(call, what)                                                                    \
  do {                                                                                        \
    ax_err e_ = (call);                                                                       \
    if (!explained(e_) || getenv("CLUSTER_OOM_TRACE"))                                         \
      fprintf(stderr, "\n  n=%ld count=%ld: %s: %s", n, count, what,                         \
                                ax_strerror(e_));                                             \
    CU_ASSERT(explained(e_));                                                                 \
  } while (0)

static ax_err start(axh_node *x, const char *name, const char *seed) {
  const char *seeds[] = {seed};
  axh_node_opts o = {.secret_file = secret_path,
                     .seeds = seed ? seeds : NULL,
                     .nseeds = seed ? 1 : 0,
                     .heartbeat_ms = 200,
                     .down_after_ms = 2000};
  if (x->sys) { /* the system is there, its node did not start */
    ax_err e = axh_node_start(x->sys, name, &o, x->addr, sizeof x->addr);
    if (e == AX_OK) snprintf(x->name, sizeof x->name, "%s", name);
    return e;
  }
  return axh_node_up(x, name, &o, quiet, AX_LOG_DEBUG);
}

/* The node runs and its address is known (asking for it may itself have
 * failed for memory: asked again). */
static bool up(axh_node *x) {
  if (!x->sys || !ax_node_self(x->sys)) return false;
  size_t len = sizeof x->addr;
  return x->addr[0] || ax_node_listen_addr(x->sys, x->addr, &len) == AX_OK;
}

/* b's pid p as a sees it. */
static ax_pid at_a(axh_node *a, ax_pid p) {
  ax_pid out = AX_PID_NONE;
  (void)ax_node_pid(a->sys, "b@127.0.0.1", ax_node_pid_id(p), &out);
  return out;
}

typedef struct pgq {
  ax_system *sys;
  const char *group;
} pgq;
static bool pg_seen(void *arg) {
  pgq *q = arg;
  ax_pid m[4];
  size_t k = 4;
  return ax_pg_members(q->sys, q->group, m, &k) == AX_OK && k >= 1;
}
static bool downs_reach(void *arg) { return atomic_load(&downs) >= *(uint64_t *)arg; }

/* The scenario; returns whether the hook failed an allocation. */
static bool scenario(long n, long count) {
  axh_node a = {0}, b = {0};
  atomic_store(&downs, 0);
  atomic_store(&exits, 0);
  long before = ax__alloc_failures();
  ax__alloc_fail_range(n, count);
  /* ---- under the hook ---- */
  EXPECT(start(&a, "a@127.0.0.1", NULL), "start a");
  EXPECT(up(&a) ? start(&b, "b@127.0.0.1", a.addr) : AX_ENOMEM, "start b");
  ax_pid echo = AX_PID_NONE;
  if (up(&a) && up(&b)) {
    (void)axh_wait_nodes(a.sys, 1, true, 2000);
    EXPECT(ax_system_spawn(b.sys, &echo_spec, NULL, 0, &echo), "spawn echo");
  }
  ax_pid r = echo.id ? at_a(&a, echo) : AX_PID_NONE; /* none: b is not known to a (yet) */
  if (r.id) {
    EXPECT(ax_system_send(a.sys, r, AX_MSG_USER, "hi", 2), "send");
    char buf[16];
    size_t blen = sizeof buf;
    EXPECT(ax_call(a.sys, r, AX_MSG_USER + 1, "ping", 4, 1000, buf, &blen, NULL), "call");
    ax_pid w;
    EXPECT(ax_system_spawn(a.sys, &watch_spec, &r, sizeof r, &w), "watch (link, monitor)");
    EXPECT(ax_pg_join(b.sys, "oom:g", echo), "pg join");
    EXPECT(ax_node_disconnect(a.sys, "b@127.0.0.1"), "disconnect");
  }
  /* ---- memory is back ---- */
  ax__alloc_fail_after(0, 0);
  bool failed = ax__alloc_failures() != before;
  ax_err se = up(&a) ? AX_OK : start(&a, "a@127.0.0.1", NULL);
  if (se == AX_OK && !up(&b)) se = start(&b, "b@127.0.0.1", a.addr);
  if (se != AX_OK)
    fprintf(stderr, "\n  n=%ld count=%ld: a node does not start with memory back: %s", n, count,
            ax_err_name(se));
  CU_ASSERT_EQUAL_FATAL(se, AX_OK);
  /* b reaches a on its own (again, after the disconnect): a dial lost to
   * the failure (a seed's, a peer list's, a redial's) is retried by the
   * runtime once memory is back (docs/hardening.md). Then a round trip
   * must succeed. */
  ax_pid e2;
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(b.sys, &echo_spec, NULL, 0, &e2), AX_OK);
  ax_err ce = AX_ETIMEDOUT;
  ax_pid r2 = AX_PID_NONE;
  char buf[16];
  uint64_t t0 = ax__now_ms();
  while (ce != AX_OK && ax__now_ms() - t0 < WAIT_MS) {
    r2 = at_a(&a, e2);
    size_t blen = sizeof buf;
    ce = r2.id ? ax_call(a.sys, r2, AX_MSG_USER + 1, "ping", 4, 1000, buf, &blen, NULL)
               : AX_ENOTFOUND;
    if (ce != AX_OK) ax_test_sleep_ms(50);
  }
  if (ce != AX_OK)
    fprintf(stderr, "\n  n=%ld count=%ld: no round trip with memory back (nodes %s): %s", n,
            count, at_a(&a, e2).id ? "known" : "apart", ax_strerror(ce));
  CU_ASSERT_EQUAL_FATAL(ce, AX_OK);
  CU_ASSERT_EQUAL(memcmp(buf, "ping", 4), 0);
  CU_ASSERT_EQUAL(ax_pg_join(b.sys, "oom:fresh", e2), AX_OK);
  pgq q = {a.sys, "oom:fresh"};
  CU_ASSERT(ax_test_wait(pg_seen, &q, WAIT_MS));
  uint64_t want = atomic_load(&downs) + 1;
  ax_pid w;
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(a.sys, &watch_spec, &r2, sizeof r2, &w), AX_OK);
  /* The MONITOR frame is on its way: the stop comes after it on the same
   * connection, so the DOWN says killed (or noproc if it raced). */
  CU_ASSERT_EQUAL(ax_system_exit(b.sys, e2, AX_REASON_KILL), AX_OK);
  bool down = ax_test_wait(downs_reach, &want, WAIT_MS);
  if (!down) fprintf(stderr, "\n  n=%ld count=%ld: no DOWN for the remote actor", n, count);
  CU_ASSERT(down);
  axh_node_free(&b);
  axh_node_free(&a);
  return failed;
}

static void run_all(long count) {
  long n = getenv("CLUSTER_OOM_N") ? atol(getenv("CLUSTER_OOM_N")) : 1;
  double secs = getenv("CLUSTER_OOM_SECONDS") ? atof(getenv("CLUSTER_OOM_SECONDS")) : 120;
  uint64_t t0 = ax__now_ns();
  int quiet_runs = 0;
  long runs = 0;
  /* N one by one to 60, then every 7th (the handshake and the first frames
   * are where the allocations differ most), until a run injects nothing. */
  for (; quiet_runs < 3 && (double)(ax__now_ns() - t0) / 1e9 < secs; n += n < 60 ? 1 : 7) {
    quiet_runs = scenario(n, count) ? 0 : quiet_runs + 1;
    runs++;
  }
  fprintf(stderr, "(%ld runs, N up to %ld%s) ", runs, n, quiet_runs < 3 ? ", time bound" : "");
  CU_ASSERT(runs > 20);
}

static void test_cluster_oom_one_failure(void) { run_all(1); }
static void test_cluster_oom_burst_of_8(void) { run_all(8); }

/* ax_node_stop with no memory at all: it stops the manager and every
 * connection actor (a's accepted connection from b and its dialler of b)
 * from exit kits built before they ran, so it returns AX_OK (every one of
 * them ended: its wait is over), not AX_ETIMEDOUT after its 30 s bound
 * with an actor left running; a later start works. */
static void test_cluster_oom_stop_without_memory(void) {
  axh_node a = {0}, b = {0};
  CU_ASSERT_EQUAL_FATAL(start(&a, "a@127.0.0.1", NULL), AX_OK);
  CU_ASSERT_EQUAL_FATAL(start(&b, "b@127.0.0.1", a.addr), AX_OK);
  CU_ASSERT_FATAL(axh_wait_nodes(a.sys, 1, false, WAIT_MS));
  CU_ASSERT_FATAL(axh_wait_nodes(b.sys, 1, false, WAIT_MS));
  ax__alloc_fail_range(1, -1); /* every allocation from now on fails */
  ax_err e = ax_node_stop(a.sys);
  ax__alloc_fail_after(0, 0);
  if (e != AX_OK) fprintf(stderr, "\n  ax_node_stop without memory: %s", ax_err_name(e));
  CU_ASSERT_EQUAL(e, AX_OK);
  CU_ASSERT_EQUAL(ax_node_list(a.sys, NULL, 0), 0);
  /* Stopped for good: a restart is not refused as still stopping. */
  CU_ASSERT_EQUAL(start(&a, "a@127.0.0.1", NULL), AX_OK);
  axh_node_free(&b);
  axh_node_free(&a);
}

int main(void) {
  if (!axh_tmpdir(g_dir, sizeof g_dir, "/tmp/ax-cluster-oom-XXXXXX") ||
      !axh_write_secret(g_dir, "secret", SECRET, secret_path, sizeof secret_path))
    return 1;
  CU_pSuite s = ax_test_suite("cluster.oom");
  CU_ADD_TEST(s, test_cluster_oom_one_failure);
  CU_ADD_TEST(s, test_cluster_oom_burst_of_8);
  CU_ADD_TEST(s, test_cluster_oom_stop_without_memory);
  int rc = ax_test_run();
  char path[320];
  snprintf(path, sizeof path, "%s/secret", g_dir);
  unlink(path);
  rmdir(g_dir);
  return rc;
}
