/* Axon benchmark: the remote workloads (issue 11's benchmark), two nodes on
 * loopback, each its own process. Same protocol, checks and RESULT lines as
 * the peers (bench/peers/README.md, "Remote workloads"):
 *   axon_bench remote_pingpong WINDOW ROUND_TRIPS
 *     RESULT remote_pingpong axon <wall> <rt> <rt/s> rt window=W payload=32
 *   axon_bench remote_bulk MESSAGES
 *     RESULT remote_bulk axon <wall> <msgs> <msgs/s> msgs MB_s=<1e6 B/s> size=1048576
 *   axon_bench node_down SAMPLES
 *     RESULT node_down axon <wall> <samples> <samples/s> samples kill9_ms=<median>
 *            kill9_max_ms=<max> [sigstop_ms=<ms>]
 * The second node is this program re-executed from /proc/self/exe as
 * `axon_bench __node` (hidden: not in `list`): it starts its node, spawns
 * the node actor (echo + bulk sink), registers it as "bench_node", writes
 * its listen address on stdout (a pipe to the parent) and runs until its
 * stdin (a pipe from the parent) closes. It dies with its parent
 * (PR_SET_PDEATHSIG) and the parent kills it on a failed check
 * (bench_fail) and reaps it on every path.
 *
 * Everything here is written against the public API; remote pids are
 * transparent to ax_request / ax_reply / ax_send_buf / ax_monitor. The only
 * cluster-specific code is the glue below (bench_node_up, bench_node_find),
 * compiled when <axon/cluster.h> exists (AXON_BENCH_HAVE_CLUSTER); without
 * it the workloads are not listed by `axon_bench list`, so bench/run.sh
 * shows "–" for them.
 * AXON_BENCH_REMOTE_SELFTEST=1 runs them without a cluster, with the node
 * actor in the same system (no second process; node_down "kills" it with
 * ax_system_exit), to check the workload logic itself. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "axon_bench.h"

/* On when the cluster API is there (include/axon/cluster.h); -D to force. */
#if !defined(AXON_BENCH_HAVE_CLUSTER) && defined(__has_include)
#if __has_include(<axon/cluster.h>)
#define AXON_BENCH_HAVE_CLUSTER 1
#endif
#endif
#ifndef AXON_BENCH_HAVE_CLUSTER
#define AXON_BENCH_HAVE_CLUSTER 0
#endif

#define RB_PAYLOAD 32
#define RB_BULK_SIZE ((size_t)1 << 20)
#define RB_BULK_WINDOW 8
#define RB_NODE_NAME "bench_node"
#define RB_ADDR_MAX 256
#define RB_FIND_TIMEOUT_MS 10000
#define RB_KILL9_LIMIT_S 60
#define RB_SIGSTOP_LIMIT_S 150

enum { MSG_RPING = MSG_ACK + 100, MSG_RPONG, MSG_CHUNK, MSG_CHUNK_ACK };

/* ---- the glue: the only cluster-specific code ------------------------------
 *
 * bench_node_up makes sys a cluster node named after `name` ("bench_a@..."
 * for the benchmark, "bench_b@..." for the second process) plus the process
 * id (so a restarted second node has a name of its own), with the default
 * settings (heartbeat 1 s, down-after 3 s), the shared secret from the
 * environment variable AXON_BENCH_SECRET (set by the first process,
 * inherited by the second), listening on 127.0.0.1 port 0. It must run
 * before the first spawn on sys. It writes the contact string
 * "NODE_NAME LISTEN_ADDR" to addr. bench_node_find dials that address and
 * resolves the name registered on that node (ax_node_whereis), retrying
 * while the link is not up yet (10 s). */
#if AXON_BENCH_HAVE_CLUSTER
#include <axon/cluster.h>
static ax_err bench_node_up(ax_system *sys, const char *name, char *addr, size_t addrlen) {
  char nm[96];
  const char *at = strchr(name, '@');
  snprintf(nm, sizeof(nm), "%.*s%ld%s", (int)(at - name), name, (long)getpid(), at);
  ax_node_config c;
  ax_node_config_init(&c);
  c.name = nm;
  c.listen = "127.0.0.1:0";
  c.secret_env = "AXON_BENCH_SECRET";
  ax_err e = ax_node_start(sys, &c);
  if (e != AX_OK) return e;
  char a[AX_NODE_ADDR_MAX + 1];
  size_t al = sizeof(a);
  if ((e = ax_node_listen_addr(sys, a, &al)) != AX_OK) return e;
  snprintf(addr, addrlen, "%s %s", nm, a);
  return AX_OK;
}
static ax_err bench_node_find(ax_system *sys, const char *addr, const char *name, ax_pid *out) {
  char node[AX_NODE_NAME_MAX + 1], a[AX_NODE_ADDR_MAX + 1];
  if (sscanf(addr, "%255s %127s", node, a) != 2) return AX_EINVAL;
  ax_err e = ax_node_connect(sys, a);
  for (int i = 0; e == AX_OK || (e == AX_ENOACTOR && i < 1000); i++) {
    if (i) usleep(10000);
    e = ax_node_whereis(sys, node, name, RB_FIND_TIMEOUT_MS, out);
    if (e == AX_OK) return AX_OK;
  }
  return e;
}
#else
static int selftest(void);
static ax_err bench_node_up(ax_system *sys, const char *name, char *addr, size_t addrlen) {
  (void)sys, (void)name;
  snprintf(addr, addrlen, "selftest");
  return selftest() ? AX_OK : AX_ENOTSUP;
}
static ax_err bench_node_find(ax_system *sys, const char *addr, const char *name, ax_pid *out) {
  (void)addr;
  return ax_whereis(sys, name, out); /* selftest: the node actor is local */
}
#endif

/* 0: a real run; 1: selftest in one process; 2: selftest that also starts
 * (and stops, or kills) the second process, which does nothing. */
static int selftest(void) {
  const char *s = getenv("AXON_BENCH_REMOTE_SELFTEST");
  if (AXON_BENCH_HAVE_CLUSTER || !s) return 0;
  return strcmp(s, "1") == 0 ? 1 : strcmp(s, "2") == 0 ? 2 : 0;
}

bool bench_remote_available(void) { return AXON_BENCH_HAVE_CLUSTER != 0 || selftest() != 0; }

/* ---- the node actor (runs on the second node) -------------------------------- */

typedef struct node_state {
  int64_t next; /* bulk: next expected sequence number */
  int64_t bytes;
} node_state;

static inline uint8_t rb_pat(uint64_t seq, int i) { return (uint8_t)(seq * 131u + (unsigned)i * 7u + 1u); }

/* A request's payload: bytes 0..7 the sequence number, then its pattern. */
static void rb_payload(uint8_t *p, uint64_t seq) {
  memcpy(p, &seq, 8);
  for (int i = 8; i < RB_PAYLOAD; i++) p[i] = rb_pat(seq, i);
}

static ax_err node_behaviour(ax_actor *self, const ax_msg *msg) {
  node_state *st = ax_state(self);
  if (msg->type == MSG_RPING && (msg->flags & AX_MSGF_REQUEST))
    return ax_reply(self, msg, MSG_RPONG, msg->data, msg->len);
  if (msg->type == MSG_CHUNK) {
    int64_t a, b;
    if (msg->len != RB_BULK_SIZE) bench_fail("node: chunk of %zu bytes", msg->len);
    memcpy(&a, msg->data, 8);
    memcpy(&b, (const char *)msg->data + msg->len - 8, 8);
    if (a != st->next || b != st->next)
      bench_fail("node: chunk %lld/%lld, expected %lld", (long long)a, (long long)b, (long long)st->next);
    st->next++;
    st->bytes += (int64_t)msg->len;
    int64_t ack[2] = {a, st->bytes};
    return ax_send(self, msg->from, MSG_CHUNK_ACK, ack, sizeof(ack));
  }
  bench_fail("node: unexpected message %u", msg->type);
}

static const ax_actor_spec node_spec = {
    .name = "bench_node", .behaviour = node_behaviour, .state_size = sizeof(node_state)};

/* `axon_bench __node`: the second process. */
int bench_remote_node_main(int argc, char **argv) {
  (void)argc, (void)argv;
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  ax_system_config cfg;
  ax_system_config_init(&cfg);
  ax_system *sys;
  bench_check(ax_system_new(&cfg, &sys), "node: ax_system_new");
  char addr[RB_ADDR_MAX];
  bench_check(bench_node_up(sys, "bench_b@127.0.0.1", addr, sizeof(addr)), "node: start");
  ax_pid pid;
  bench_check(ax_system_spawn(sys, &node_spec, NULL, 0, &pid), "node: spawn");
  bench_check(ax_register(sys, RB_NODE_NAME, pid), "node: register");
  if (getenv("AXON_BENCH_NODE_FAIL")) bench_fail("node: failing on request (selftest)");
  printf("%s\n", addr);
  fflush(stdout);
  char c;
  while (read(0, &c, 1) > 0) {
  }
  ax_system_free(sys);
  return 0;
}

/* ---- the second process, seen from the benchmark ------------------------------ */

typedef struct rnode {
  pid_t pid;  /* 0 in selftest */
  int in_fd;  /* its stdin */
  ax_pid actor;
} rnode;

static void on_signal(int sig) {
  if (bench_child_pid > 0) kill(bench_child_pid, SIGKILL);
  signal(sig, SIG_DFL);
  raise(sig);
}

/* Starts the second node and resolves its node actor. */
static rnode rnode_start(ax_system *sys) {
  rnode n = {.pid = 0, .in_fd = -1};
  if (selftest()) {
    bench_check(ax_system_spawn(sys, &node_spec, NULL, 0, &n.actor), "selftest: spawn node actor");
    ax_unregister(sys, RB_NODE_NAME);
    bench_check(ax_register(sys, RB_NODE_NAME, n.actor), "selftest: register");
  }
  if (selftest() == 1) {
    bench_check(bench_node_find(sys, "selftest", RB_NODE_NAME, &n.actor), "selftest: find");
    return n;
  }
  static bool up;
  if (!up) {
    char secret[40];
    snprintf(secret, sizeof(secret), "%08lx%016llx", (unsigned long)getpid(), (unsigned long long)bench_now_ns());
    setenv("AXON_BENCH_SECRET", secret, 0);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGHUP, on_signal);
    signal(SIGPIPE, SIG_IGN);
    char me[RB_ADDR_MAX];
    bench_check(bench_node_up(sys, "bench_a@127.0.0.1", me, sizeof(me)), "start node");
    up = true;
  }
  int to_child[2], from_child[2];
  if (pipe(to_child) != 0 || pipe(from_child) != 0) bench_fail("pipe: %s", strerror(errno));
  pid_t parent = getpid();
  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) bench_fail("fork: %s", strerror(errno));
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);
    dup2(to_child[0], 0);
    dup2(from_child[1], 1);
    close(to_child[0]), close(to_child[1]), close(from_child[0]), close(from_child[1]);
    char *args[] = {"axon_bench", "__node", NULL};
    execv("/proc/self/exe", args);
    _exit(127);
  }
  bench_child_pid = n.pid = pid;
  close(to_child[0]);
  close(from_child[1]);
  n.in_fd = to_child[1];
  char addr[RB_ADDR_MAX];
  size_t len = 0;
  char c;
  while (len + 1 < sizeof(addr) && read(from_child[0], &c, 1) == 1 && c != '\n') addr[len++] = c;
  addr[len] = 0;
  close(from_child[0]);
  if (len == 0) bench_fail("the second node did not report its address");
  bench_check(bench_node_find(sys, addr, RB_NODE_NAME, &n.actor), "find the node actor");
  return n;
}

/* Stops the second node cleanly (it exits when its stdin closes) and checks
 * its exit status. */
static void rnode_stop(rnode *n) {
  if (n->pid <= 0) return;
  close(n->in_fd);
  int st = 0;
  for (int i = 0; i < 3000; i++) {
    pid_t r = waitpid(n->pid, &st, WNOHANG);
    if (r == n->pid) {
      bench_child_pid = n->pid = 0;
      if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) bench_fail("the second node failed (status 0x%x)", st);
      return;
    }
    usleep(10000);
  }
  bench_fail("the second node did not exit within 30 s");
}

/* Reaps a node that was killed. */
static void rnode_reap(rnode *n) {
  if (n->pid <= 0) return;
  kill(n->pid, SIGKILL);
  waitpid(n->pid, NULL, 0);
  close(n->in_fd);
  bench_child_pid = n->pid = 0;
}

/* The workload's actors have stopped or are stopping; a node keeps its
 * runtime actors (manager, connections) until the system is freed, so
 * bench_wait_stopped (all actors) only applies without a node. */
static void rb_wait_stopped(ax_system *sys) {
  if (selftest()) bench_wait_stopped(sys);
}

/* ---- remote_pingpong ------------------------------------------------------------ */

typedef struct pp_state {
  ax_pid node;
  int64_t window, n, sent, got;
  ax_ref *refs; /* ring of the outstanding requests' refs, oldest first */
  bench_sync *sync;
} pp_state;

static ax_err pp_init(ax_actor *self, void *state, const void *arg, size_t len) {
  (void)self;
  if (len != sizeof(pp_state)) return AX_EINVAL;
  memcpy(state, arg, len);
  return AX_OK;
}

static void pp_send(ax_actor *self, pp_state *st) {
  uint8_t p[RB_PAYLOAD];
  rb_payload(p, (uint64_t)st->sent);
  ax_ref ref;
  bench_check(ax_request(self, st->node, MSG_RPING, p, sizeof(p), AX_INFINITY, &ref), "remote_pingpong: request");
  st->refs[st->sent % st->window] = ref;
  st->sent++;
}

static ax_err pp_behaviour(ax_actor *self, const ax_msg *msg) {
  pp_state *st = ax_state(self);
  if (msg->type == MSG_START) {
    while (st->sent < st->window && st->sent < st->n) pp_send(self, st);
    return AX_OK;
  }
  if (msg->type == AX_MSG_TIMEOUT) bench_fail("remote_pingpong: request %lld timed out", (long long)st->got);
  if (msg->type != MSG_RPONG || !(msg->flags & AX_MSGF_REPLY))
    bench_fail("remote_pingpong: unexpected message %u", msg->type);
  if (msg->ref != st->refs[st->got % st->window])
    bench_fail("remote_pingpong: reply %lld out of order", (long long)st->got);
  uint8_t p[RB_PAYLOAD];
  rb_payload(p, (uint64_t)st->got);
  if (msg->len != RB_PAYLOAD || memcmp(msg->data, p, RB_PAYLOAD) != 0)
    bench_fail("remote_pingpong: reply %lld: payload corrupted", (long long)st->got);
  if (++st->got == st->n) {
    bench_finish(st->sync);
    return ax_exit(self, ax_self(self), AX_REASON_NORMAL);
  }
  if (st->sent < st->n) pp_send(self, st);
  return AX_OK;
}

static const ax_actor_spec pp_spec = {
    .name = "remote_pingpong", .behaviour = pp_behaviour, .state_size = sizeof(pp_state), .init = pp_init};

int bench_remote_pingpong(ax_system *sys, const int64_t *p, bench_result *out) {
  int64_t w = p[0], n = p[1];
  rnode node = rnode_start(sys);
  bench_sync sync;
  bench_sync_init(&sync);
  pp_state init = {.node = node.actor, .window = w, .n = n, .sync = &sync};
  init.refs = calloc((size_t)w, sizeof(ax_ref));
  if (!init.refs) bench_fail("remote_pingpong: out of memory");
  ax_pid client;
  double t0 = bench_now();
  bench_check(ax_system_spawn(sys, &pp_spec, &init, sizeof(init), &client), "spawn client");
  bench_check(ax_system_send(sys, client, MSG_START, NULL, 0), "start");
  out->wall = bench_wait_finish(sys, &sync, t0);
  rnode_stop(&node);
  if (selftest()) ax_system_exit(sys, node.actor, AX_REASON_SHUTDOWN);
  rb_wait_stopped(sys);
  free(init.refs);
  out->ops = n;
  out->unit = "rt";
  snprintf(out->extra, sizeof(out->extra), " window=%lld payload=%d", (long long)w, RB_PAYLOAD);
  return 0;
}

/* ---- remote_bulk ------------------------------------------------------------------ */

typedef struct bulk_state {
  ax_pid node;
  int64_t n, sent, acked, bytes;
  ax_buf *bufs[RB_BULK_WINDOW];
  bench_sync *sync;
} bulk_state;

static ax_err bulk_init(ax_actor *self, void *state, const void *arg, size_t len) {
  (void)self;
  if (len != sizeof(bulk_state)) return AX_EINVAL;
  memcpy(state, arg, len);
  return AX_OK;
}

/* Sends chunk `sent` from buffer sent % RB_BULK_WINDOW, stamped with its
 * sequence number. A buffer still referenced by the runtime (not yet
 * written out) is replaced, never modified. */
static void bulk_send(ax_actor *self, bulk_state *st) {
  ax_buf **b = &st->bufs[st->sent % RB_BULK_WINDOW];
  if (*b && ax_buf_refs(*b) != 1) {
    ax_buf_release(*b);
    *b = NULL;
  }
  if (!*b) {
    bench_check(ax_buf_new(RB_BULK_SIZE, b), "remote_bulk: buffer");
    uint8_t *d = ax_buf_data(*b);
    for (size_t i = 0; i < RB_BULK_SIZE; i++) d[i] = rb_pat(i, (int)(i >> 12));
    bench_check(ax_buf_set_len(*b, RB_BULK_SIZE), "remote_bulk: buffer length");
  }
  uint8_t *d = ax_buf_data(*b);
  memcpy(d, &st->sent, 8);
  memcpy(d + RB_BULK_SIZE - 8, &st->sent, 8);
  bench_check(ax_send_buf(self, st->node, MSG_CHUNK, *b, 0, RB_BULK_SIZE), "remote_bulk: send");
  st->sent++;
}

static ax_err bulk_behaviour(ax_actor *self, const ax_msg *msg) {
  bulk_state *st = ax_state(self);
  if (msg->type == MSG_START) {
    while (st->sent < RB_BULK_WINDOW && st->sent < st->n) bulk_send(self, st);
    return AX_OK;
  }
  if (msg->type != MSG_CHUNK_ACK || msg->len != 2 * sizeof(int64_t))
    bench_fail("remote_bulk: unexpected message %u", msg->type);
  int64_t ack[2];
  memcpy(ack, msg->data, sizeof(ack));
  if (ack[0] != st->acked) bench_fail("remote_bulk: ack %lld out of order", (long long)ack[0]);
  st->bytes = ack[1];
  if (++st->acked == st->n) {
    if (st->bytes != st->n * (int64_t)RB_BULK_SIZE)
      bench_fail("remote_bulk: the node got %lld bytes, expected %lld", (long long)st->bytes,
                 (long long)(st->n * (int64_t)RB_BULK_SIZE));
    bench_finish(st->sync);
    return ax_exit(self, ax_self(self), AX_REASON_NORMAL);
  }
  if (st->sent < st->n) bulk_send(self, st);
  return AX_OK;
}

static void bulk_terminate(ax_actor *self, void *state, ax_reason reason) {
  (void)self, (void)reason;
  bulk_state *st = state;
  for (int i = 0; i < RB_BULK_WINDOW; i++) ax_buf_release(st->bufs[i]);
}

static const ax_actor_spec bulk_spec = {.name = "remote_bulk",
                                        .behaviour = bulk_behaviour,
                                        .state_size = sizeof(bulk_state),
                                        .init = bulk_init,
                                        .terminate = bulk_terminate};

int bench_remote_bulk(ax_system *sys, const int64_t *p, bench_result *out) {
  int64_t n = p[0];
  rnode node = rnode_start(sys);
  bench_sync sync;
  bench_sync_init(&sync);
  bulk_state init = {.node = node.actor, .n = n, .sync = &sync};
  ax_pid sender;
  double t0 = bench_now();
  bench_check(ax_system_spawn(sys, &bulk_spec, &init, sizeof(init), &sender), "spawn sender");
  bench_check(ax_system_send(sys, sender, MSG_START, NULL, 0), "start");
  out->wall = bench_wait_finish(sys, &sync, t0); /* the sender checked the byte total */
  rnode_stop(&node);
  if (selftest()) ax_system_exit(sys, node.actor, AX_REASON_SHUTDOWN);
  rb_wait_stopped(sys);
  out->ops = n;
  out->unit = "msgs";
  snprintf(out->extra, sizeof(out->extra), " MB_s=%.1f size=%zu",
           (double)n * (double)RB_BULK_SIZE / 1e6 / out->wall, RB_BULK_SIZE);
  return 0;
}

/* ---- node_down ------------------------------------------------------------------- */

typedef struct watch_state {
  ax_pid target;
  ax_ref mref;
  sem_t *ready;
  bench_sync *sync;
  ax_reason reason;
} watch_state;

static ax_err watch_init(ax_actor *self, void *state, const void *arg, size_t len) {
  if (len != sizeof(watch_state)) return AX_EINVAL;
  memcpy(state, arg, len);
  watch_state *st = state;
  ax_err e = ax_monitor(self, st->target, &st->mref);
  if (e == AX_OK) sem_post(st->ready);
  return e;
}

static ax_err watch_behaviour(ax_actor *self, const ax_msg *msg) {
  watch_state *st = ax_state(self);
  if (msg->type != AX_MSG_DOWN || msg->len != sizeof(ax_down_info))
    bench_fail("node_down: unexpected message %u", msg->type);
  ax_down_info d;
  memcpy(&d, msg->data, sizeof(d));
  if (d.ref != st->mref) bench_fail("node_down: DOWN for another monitor");
  if (!selftest() && d.reason != AX_REASON_NOCONNECTION)
    bench_fail("node_down: DOWN with reason %s, expected noconnection", ax_reason_str(d.reason));
  st->reason = d.reason;
  bench_finish(st->sync);
  return ax_exit(self, ax_self(self), AX_REASON_NORMAL);
}

static const ax_actor_spec watch_spec = {
    .name = "node_down", .behaviour = watch_behaviour, .state_size = sizeof(watch_state), .init = watch_init};

/* One sample: ms from sending sig to the second node to the DOWN of its
 * node actor. */
static double detect(ax_system *sys, int sig, int limit_s) {
  rnode node = rnode_start(sys);
  /* one round trip: connected, and the node serves */
  uint8_t p[RB_PAYLOAD], r[RB_PAYLOAD];
  rb_payload(p, 7);
  size_t rlen = sizeof(r);
  bench_check(ax_call(sys, node.actor, MSG_RPING, p, sizeof(p), 30000, r, &rlen, NULL), "node_down: call");
  if (rlen != sizeof(r) || memcmp(p, r, sizeof(r)) != 0) bench_fail("node_down: bad answer");
  sem_t ready;
  sem_init(&ready, 0, 0);
  bench_sync sync;
  bench_sync_init(&sync);
  watch_state init = {.target = node.actor, .ready = &ready, .sync = &sync};
  bench_check(ax_system_spawn(sys, &watch_spec, &init, sizeof(init), NULL), "node_down: spawn watcher");
  while (sem_wait(&ready) != 0 && errno == EINTR) {
  }
  sem_destroy(&ready);
  double t0 = bench_now();
  if (node.pid > 0 && kill(node.pid, sig) != 0) bench_fail("kill: %s", strerror(errno));
  if (selftest()) bench_check(ax_system_exit(sys, node.actor, AX_REASON_KILL), "selftest: kill");
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += limit_s;
  while (sem_timedwait(&sync.done, &deadline) != 0) {
    if (errno == EINTR) continue;
    if (errno == ETIMEDOUT) bench_fail("node_down: no DOWN within %d s of signal %d", limit_s, sig);
    bench_fail("sem_timedwait: %s", strerror(errno));
  }
  sem_destroy(&sync.done);
  double ms = (sync.t_end - t0) * 1e3;
  rnode_reap(&node);
  return ms;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int bench_node_down(ax_system *sys, const int64_t *p, bench_result *out) {
  int64_t s = p[0];
  double *ms = calloc((size_t)s, sizeof(double));
  if (!ms) bench_fail("node_down: out of memory");
  double total = 0;
  for (int64_t k = 0; k < s; k++) total += ms[k] = detect(sys, SIGKILL, RB_KILL9_LIMIT_S);
  qsort(ms, (size_t)s, sizeof(double), cmp_double);
  int n = snprintf(out->extra, sizeof(out->extra), " kill9_ms=%.3f kill9_max_ms=%.3f", ms[(s - 1) / 2], ms[s - 1]);
  /* SIGSTOP: bounded by the default down-after (3 s), so measured unless
   * DETECT=0 (the peers measure it only with DETECT=1). */
  const char *d = getenv("DETECT");
  if (!selftest() && !(d && strcmp(d, "0") == 0))
    snprintf(out->extra + n, sizeof(out->extra) - (size_t)n, " sigstop_ms=%.1f",
             detect(sys, SIGSTOP, RB_SIGSTOP_LIMIT_S));
  rb_wait_stopped(sys);
  free(ms);
  out->wall = total / 1e3;
  out->ops = s;
  out->unit = "samples";
  return 0;
}
