/* Axon tests: the cluster's services between nodes inside one process
 * (separate systems on loopback): remote whereis (found, not found, this
 * node, a node that went down; the actor form's reply and timeout
 * messages), spawn by behaviour name (allowed, refused by a node without
 * allow_remote_spawn, unregistered, a bad argument refused by init, an
 * oversized argument, the link option carrying the spawned actor's exit to
 * the spawner), and process groups across three nodes (joins visible
 * everywhere, including through PG_SYNC for a node that joined before it
 * connected; ax_pg_send reaching every member once; a stopped member
 * leaving everywhere; a node down taking its members with it). Every wait
 * is on a condition with a generous bound. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "axon.h"
#include "support/cluster_harness.h"
#include "support/testutil.h"

#define WAIT_MS 30000
#define SECRET "cluster-services-tests-secret!"

enum { T_ECHO = AX_MSG_USER, T_CMD, T_STOPME, T_PGMSG, T_GETARG };
enum { OP_WHEREIS, OP_SPAWN, OP_PGMON };

static char g_dir[64], secret_path[128];

/* ---- nodes ---- */
typedef axh_node node;

static ax_err node_up(node *n, const char *name, const char **seeds, size_t nseeds, bool spawn) {
  axh_node_opts o = {
      .secret_file = secret_path, .seeds = seeds, .nseeds = nseeds, .allow_remote_spawn = spawn};
  return axh_node_up(n, name, &o, NULL, AX_LOG_ERROR);
}
#define node_free axh_node_free
static bool wait_nodes(node *n, size_t want) { return axh_wait_nodes(n->sys, want, false, WAIT_MS); }

/* ---- actors ---- */

/* A worker: a spawnable behaviour whose init wants a 4-byte argument. */
typedef struct worker {
  char arg[4];
} worker;
static ax_err worker_init(ax_actor *self, void *st, const void *arg, size_t len) {
  (void)self;
  if (len != 4 || !arg) return AX_EINVAL;
  memcpy(((worker *)st)->arg, arg, 4);
  return AX_OK;
}
static ax_err worker_behave(ax_actor *self, const ax_msg *m) {
  worker *w = ax_state(self);
  if (m->type == T_GETARG && (m->flags & AX_MSGF_REQUEST)) return ax_reply(self, m, T_GETARG, w->arg, 4);
  if (m->type == T_STOPME) return ax_exit(self, ax_self(self), AX_REASON_USER + 7);
  return AX_OK;
}
static const ax_actor_spec worker_spec = {.name = "worker",
                                          .behaviour = worker_behave,
                                          .state_size = sizeof(worker),
                                          .init = worker_init};

static ax_err echo_behave(ax_actor *self, const ax_msg *m) {
  if (m->type == T_ECHO && (m->flags & AX_MSGF_REQUEST)) return ax_reply(self, m, T_ECHO, m->data, m->len);
  return AX_OK;
}
static const ax_actor_spec echo_spec = {.name = "echo", .behaviour = echo_behave};

/* The probe: runs service requests on command, records what comes back. */
typedef struct cmd {
  int op;
  char node[64], name[64];
  uint32_t flags, timeout, len;
  char arg[8];
} cmd;

typedef struct rec {
  uint32_t type, flags;
  int32_t status; /* ax_node_reply.status, the call's error, or a timeout's reason */
  uint64_t pid, ref;
} rec;
static pthread_mutex_t rec_mu = PTHREAD_MUTEX_INITIALIZER;
static rec recs[256];
static size_t nrec;
static void rec_add(rec r) {
  pthread_mutex_lock(&rec_mu);
  if (nrec < 256) recs[nrec++] = r;
  pthread_mutex_unlock(&rec_mu);
}
static void rec_reset(void) {
  pthread_mutex_lock(&rec_mu);
  nrec = 0;
  pthread_mutex_unlock(&rec_mu);
}
static bool rec_get(uint32_t type, rec *out) {
  bool found = false;
  pthread_mutex_lock(&rec_mu);
  for (size_t i = 0; i < nrec && !found; i++)
    if (recs[i].type == type) {
      *out = recs[i];
      found = true;
    }
  pthread_mutex_unlock(&rec_mu);
  return found;
}
static size_t rec_count(uint32_t type) {
  size_t n = 0;
  pthread_mutex_lock(&rec_mu);
  for (size_t i = 0; i < nrec; i++) n += recs[i].type == type;
  pthread_mutex_unlock(&rec_mu);
  return n;
}
static bool rec_pred(void *a) {
  rec r;
  return rec_get(*(uint32_t *)a, &r);
}
static bool wait_rec(uint32_t type, rec *out) {
  if (!ax_test_wait(rec_pred, &type, WAIT_MS)) return false;
  return rec_get(type, out);
}

enum { REC_CALL = 0xffff0001 }; /* the request call's own result */

static ax_err probe_init(ax_actor *self, void *st, const void *arg, size_t len) {
  (void)st, (void)arg, (void)len;
  return ax_trap_exit(self, true);
}
static ax_err probe_behave(ax_actor *self, const ax_msg *m) {
  rec r = {.type = m->type, .flags = m->flags, .ref = m->ref, .status = -100};
  switch (m->type) {
  case T_CMD: {
    cmd c;
    memcpy(&c, m->data, sizeof c);
    if (c.op == OP_PGMON) {
      rec_add((rec){.type = REC_CALL, .status = ax_pg_monitor(self, c.name[0] ? c.name : NULL,
                                                              c.flags != 0)});
      return AX_OK;
    }
    ax_ref ref = 0;
    ax_err e = c.op == OP_WHEREIS
                   ? ax_whereis_on(self, c.node, c.name, c.timeout, &ref)
                   : ax_spawn_on(self, c.node, c.name, c.arg, c.len, c.flags, c.timeout, &ref);
    rec_add((rec){.type = REC_CALL, .status = e, .ref = ref});
    return AX_OK;
  }
  case AX_MSG_WHEREIS_REPLY:
  case AX_MSG_SPAWN_REPLY: {
    ax_node_reply x;
    CU_ASSERT_EQUAL(m->len, sizeof x);
    CU_ASSERT(m->flags & AX_MSGF_REPLY);
    memcpy(&x, m->data, sizeof x);
    r.status = x.status;
    r.pid = x.pid.id;
    break;
  }
  case AX_MSG_TIMEOUT:
    r.status = m->len == sizeof(ax_node_timeout) ? ((const ax_node_timeout *)m->data)->reason : -1;
    break;
  case AX_MSG_EXIT: {
    const ax_exit_info *x = m->data;
    r.status = (int32_t)x->reason;
    r.pid = x->pid.id;
    break;
  }
  case AX_MSG_PG_JOIN:
  case AX_MSG_PG_LEAVE: {
    const ax_pg_event *x = m->data;
    CU_ASSERT_EQUAL(m->len, sizeof *x);
    CU_ASSERT_STRING_EQUAL(x->group, "g");
    r.pid = x->pid.id;
    break;
  }
  case AX_MSG_DOWN: {
    const ax_down_info *d = m->data;
    CU_ASSERT_EQUAL(m->len, sizeof *d);
    r.status = (int32_t)d->reason;
    r.pid = d->pid.id;
    r.ref = d->ref;
    break;
  }
  default: break;
  }
  rec_add(r);
  return AX_OK;
}
static const ax_actor_spec probe_spec = {.name = "probe", .behaviour = probe_behave, .init = probe_init};

/* Waits for the probe's reply of type, checks that the call which asked for
 * it succeeded and that the reply carries that call's ref. */
static void wait_reply(uint32_t type, rec *r) {
  rec c;
  CU_ASSERT_FATAL(wait_rec(type, r));
  CU_ASSERT_FATAL(rec_get(REC_CALL, &c));
  CU_ASSERT_EQUAL(c.status, AX_OK);
  CU_ASSERT_EQUAL(r->ref, c.ref);
}

static void probe_cmd(node *n, ax_pid probe, int op, const char *to, const char *name,
                      const void *arg, uint32_t len, uint32_t flags, uint32_t timeout) {
  cmd c;
  memset(&c, 0, sizeof c);
  c.op = op;
  snprintf(c.node, sizeof c.node, "%s", to);
  snprintf(c.name, sizeof c.name, "%s", name);
  c.flags = flags;
  c.timeout = timeout;
  c.len = len;
  if (len) memcpy(c.arg, arg, len);
  CU_ASSERT_EQUAL(ax_system_send(n->sys, probe, T_CMD, &c, sizeof c), AX_OK);
}

static void pair(node *a, node *b, bool a_spawns, bool b_spawns) {
  CU_ASSERT_EQUAL_FATAL(node_up(a, "a@127.0.0.1", NULL, 0, a_spawns), AX_OK);
  const char *seeds[] = {a->addr};
  CU_ASSERT_EQUAL_FATAL(node_up(b, "b@127.0.0.1", seeds, 1, b_spawns), AX_OK);
  CU_ASSERT_FATAL(wait_nodes(a, 1));
  CU_ASSERT_FATAL(wait_nodes(b, 1));
}

/* ---- whereis ---- */

static void test_whereis(void) {
  node a, b;
  pair(&a, &b, false, false);
  ax_pid e;
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(b.sys, &echo_spec, NULL, 0, &e), AX_OK);
  CU_ASSERT_EQUAL(ax_register(b.sys, "echo", e), AX_OK);
  /* Blocking form: found, usable, the same pid ax_node_pid gives. */
  ax_pid got = AX_PID_NONE, want = AX_PID_NONE;
  CU_ASSERT_EQUAL(ax_node_whereis(a.sys, b.name, "echo", 20000, &got), AX_OK);
  CU_ASSERT_EQUAL(ax_node_pid(a.sys, b.name, ax_node_pid_id(e), &want), AX_OK);
  CU_ASSERT_EQUAL(got.id, want.id);
  char rep[8];
  size_t rl = sizeof rep;
  CU_ASSERT_EQUAL(ax_call(a.sys, got, T_ECHO, "ping", 4, 20000, rep, &rl, NULL), AX_OK);
  CU_ASSERT_EQUAL(rl, 4);
  /* Not found; this node's own registry through the same call. */
  CU_ASSERT_EQUAL(ax_node_whereis(a.sys, b.name, "nobody", 20000, &got), AX_ENOTFOUND);
  CU_ASSERT_EQUAL(ax_node_whereis(b.sys, b.name, "echo", 20000, &got), AX_OK);
  CU_ASSERT_EQUAL(got.id, e.id);
  /* Bad arguments. */
  CU_ASSERT_EQUAL(ax_node_whereis(a.sys, "no-at-sign", "echo", 1000, &got), AX_EINVAL);
  CU_ASSERT_EQUAL(ax_node_whereis(a.sys, b.name, "", 1000, &got), AX_EINVAL);
  CU_ASSERT_EQUAL(ax_node_whereis(a.sys, b.name, "bad\nname", 1000, &got), AX_EINVAL);
  CU_ASSERT_EQUAL(ax_node_whereis(a.sys, "zz@127.0.0.1", "echo", 1000, &got), AX_ENOACTOR);

  /* The actor form: one reply message each, with the request's ref. */
  rec_reset();
  ax_pid pr;
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(a.sys, &probe_spec, NULL, 0, &pr), AX_OK);
  probe_cmd(&a, pr, OP_WHEREIS, b.name, "echo", NULL, 0, 0, 20000);
  rec r, c;
  wait_reply(AX_MSG_WHEREIS_REPLY, &r);
  CU_ASSERT_EQUAL(r.status, AX_OK);
  CU_ASSERT_EQUAL(r.pid, want.id);
  rec_reset();
  probe_cmd(&a, pr, OP_WHEREIS, b.name, "nobody", NULL, 0, 0, AX_INFINITY);
  CU_ASSERT_FATAL(wait_rec(AX_MSG_WHEREIS_REPLY, &r));
  CU_ASSERT_EQUAL(r.status, AX_ENOTFOUND);
  CU_ASSERT_EQUAL(r.pid, 0);

  /* A node that went down: refused at once, nothing arrives. */
  node_free(&b);
  CU_ASSERT(wait_nodes(&a, 0));
  CU_ASSERT_EQUAL(ax_node_whereis(a.sys, "b@127.0.0.1", "echo", 20000, &got), AX_ENOACTOR);
  rec_reset();
  probe_cmd(&a, pr, OP_WHEREIS, "b@127.0.0.1", "echo", NULL, 0, 0, 20000);
  CU_ASSERT_FATAL(wait_rec(REC_CALL, &c));
  CU_ASSERT_EQUAL(c.status, AX_ENOACTOR);
  node_free(&a);
}

/* ---- spawn ---- */

static void test_spawn(void) {
  node a, b;
  pair(&a, &b, true, false); /* a serves remote spawns, b refuses them */
  CU_ASSERT_EQUAL(ax_behaviour_register(a.sys, "worker", &worker_spec), AX_OK);
  CU_ASSERT_EQUAL(ax_behaviour_register(a.sys, "worker", &worker_spec), AX_EEXIST);
  CU_ASSERT_EQUAL(ax_behaviour_register(b.sys, "worker", &worker_spec), AX_OK);
  CU_ASSERT_EQUAL(ax_behaviour_register(a.sys, "", &worker_spec), AX_EINVAL);
  CU_ASSERT_EQUAL(ax_behaviour_register(a.sys, "x", &(ax_actor_spec){0}), AX_EINVAL);

  /* Allowed: the actor runs on a with a copy of the argument. */
  ax_pid w = AX_PID_NONE;
  CU_ASSERT_EQUAL(ax_node_spawn(b.sys, a.name, "worker", "abcd", 4, 20000, &w), AX_OK);
  char rep[8];
  size_t rl = sizeof rep;
  CU_ASSERT_EQUAL(ax_call(b.sys, w, T_GETARG, NULL, 0, 20000, rep, &rl, NULL), AX_OK);
  CU_ASSERT(rl == 4 && memcmp(rep, "abcd", 4) == 0);
  char nm[64];
  CU_ASSERT_EQUAL(ax_node_of(b.sys, w, nm, sizeof nm), AX_OK);
  CU_ASSERT_STRING_EQUAL(nm, a.name);
  /* Unregistered, a bad argument (init's error), refused by b. */
  CU_ASSERT_EQUAL(ax_node_spawn(b.sys, a.name, "nobody", "abcd", 4, 20000, &w), AX_ENOTFOUND);
  CU_ASSERT_EQUAL(ax_node_spawn(b.sys, a.name, "worker", "abc", 3, 20000, &w), AX_EINVAL);
  CU_ASSERT_EQUAL(ax_node_spawn(a.sys, b.name, "worker", "abcd", 4, 20000, &w), AX_ENOTSUP);
  /* Locally (b's own node) the flag does not apply. */
  CU_ASSERT_EQUAL(ax_node_spawn(b.sys, b.name, "worker", "abcd", 4, 20000, &w), AX_OK);
  /* Oversized or missing argument: refused before anything is sent. */
  static char big[AX_SPAWN_ARG_MAX + 1];
  CU_ASSERT_EQUAL(ax_node_spawn(b.sys, a.name, "worker", big, sizeof big, 20000, &w), AX_ELIMIT);
  CU_ASSERT_EQUAL(ax_node_spawn(b.sys, a.name, "worker", NULL, 4, 20000, &w), AX_EINVAL);
  ax_node_stats st;
  CU_ASSERT_EQUAL(ax_node_stats_get(a.sys, &st), AX_OK);
  CU_ASSERT_EQUAL(st.spawns_served, 1);
  CU_ASSERT_EQUAL(st.spawns_refused, 2);
  CU_ASSERT_EQUAL(ax_node_stats_get(b.sys, &st), AX_OK);
  CU_ASSERT_EQUAL(st.spawns_refused, 1);

  /* The actor form with the link option: the spawned actor's exit comes
   * back to the spawner as a link exit with its reason. */
  rec_reset();
  ax_pid pr;
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(b.sys, &probe_spec, NULL, 0, &pr), AX_OK);
  probe_cmd(&b, pr, OP_SPAWN, a.name, "worker", "wxyz", 4, AX_SPAWN_LINK, 20000);
  rec r;
  wait_reply(AX_MSG_SPAWN_REPLY, &r);
  CU_ASSERT_EQUAL_FATAL(r.status, AX_OK);
  CU_ASSERT_EQUAL(ax_system_send(b.sys, (ax_pid){r.pid}, T_STOPME, NULL, 0), AX_OK);
  rec x;
  CU_ASSERT_FATAL(wait_rec(AX_MSG_EXIT, &x));
  CU_ASSERT_EQUAL(x.pid, r.pid);
  CU_ASSERT_EQUAL(x.status, AX_REASON_USER + 7);
  /* A failed init with the link option sends no exit, only the error. */
  rec_reset();
  probe_cmd(&b, pr, OP_SPAWN, a.name, "worker", "xy", 2, AX_SPAWN_LINK, 20000);
  CU_ASSERT_FATAL(wait_rec(AX_MSG_SPAWN_REPLY, &r));
  CU_ASSERT_EQUAL(r.status, AX_EINVAL);
  CU_ASSERT_EQUAL(r.pid, 0);
  /* A refusal in the actor form. */
  rec_reset();
  probe_cmd(&b, pr, OP_SPAWN, a.name, "nobody", NULL, 0, 0, 20000);
  CU_ASSERT_FATAL(wait_rec(AX_MSG_SPAWN_REPLY, &r));
  CU_ASSERT_EQUAL(r.status, AX_ENOTFOUND);
  /* Nothing else came (the failed init's exit would have been recorded
   * before this reply: the same connection, in order). */
  CU_ASSERT_EQUAL(rec_count(AX_MSG_EXIT), 0);
  node_free(&b);
  node_free(&a);
}

/* The monitor option: one DOWN under the request's ref, with the actor's
 * exit reason; noproc (no pid) when nothing was spawned; the same for a
 * spawn on this node; noconnection when the node goes down. */
static void test_spawn_monitor(void) {
  node a, b;
  pair(&a, &b, true, false);
  CU_ASSERT_EQUAL(ax_behaviour_register(a.sys, "worker", &worker_spec), AX_OK);
  CU_ASSERT_EQUAL(ax_behaviour_register(b.sys, "worker", &worker_spec), AX_OK);
  ax_pid pr;
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(b.sys, &probe_spec, NULL, 0, &pr), AX_OK);
  const char *where[2] = {a.name, b.name}; /* another node, then this one */
  for (int i = 0; i < 2; i++) {
    rec_reset();
    probe_cmd(&b, pr, OP_SPAWN, where[i], "worker", "wxyz", 4, AX_SPAWN_MONITOR, 20000);
    rec r, c, d;
    wait_reply(AX_MSG_SPAWN_REPLY, &r);
    CU_ASSERT_EQUAL_FATAL(r.status, AX_OK);
    CU_ASSERT_FATAL(rec_get(REC_CALL, &c));
    CU_ASSERT_EQUAL(ax_system_send(b.sys, (ax_pid){r.pid}, T_STOPME, NULL, 0), AX_OK);
    CU_ASSERT_FATAL(wait_rec(AX_MSG_DOWN, &d));
    CU_ASSERT_EQUAL(d.ref, c.ref);
    CU_ASSERT_EQUAL(d.pid, r.pid);
    CU_ASSERT_EQUAL(d.status, AX_REASON_USER + 7);
    /* Nothing was spawned (init refused the argument): the reply's error
     * and a DOWN noproc without a pid. */
    rec_reset();
    probe_cmd(&b, pr, OP_SPAWN, where[i], "worker", "xy", 2, AX_SPAWN_MONITOR, 20000);
    CU_ASSERT_FATAL(wait_rec(AX_MSG_SPAWN_REPLY, &r));
    CU_ASSERT_EQUAL(r.status, AX_EINVAL);
    CU_ASSERT_FATAL(wait_rec(AX_MSG_DOWN, &d));
    CU_ASSERT_FATAL(rec_get(REC_CALL, &c));
    CU_ASSERT_EQUAL(d.ref, c.ref);
    CU_ASSERT_EQUAL(d.pid, 0);
    CU_ASSERT_EQUAL(d.status, AX_REASON_NOPROC);
    CU_ASSERT_EQUAL(rec_count(AX_MSG_EXIT), 0);
  }
  /* The node goes down: noconnection, with the actor's pid. */
  rec_reset();
  probe_cmd(&b, pr, OP_SPAWN, a.name, "worker", "wxyz", 4, AX_SPAWN_MONITOR, 20000);
  rec r, c, d;
  wait_reply(AX_MSG_SPAWN_REPLY, &r);
  CU_ASSERT_EQUAL_FATAL(r.status, AX_OK);
  CU_ASSERT_FATAL(rec_get(REC_CALL, &c));
  node_free(&a);
  CU_ASSERT_FATAL(wait_rec(AX_MSG_DOWN, &d));
  CU_ASSERT_EQUAL(d.ref, c.ref);
  CU_ASSERT_EQUAL(d.pid, r.pid);
  CU_ASSERT_EQUAL(d.status, AX_REASON_NOCONNECTION);
  CU_ASSERT_EQUAL(rec_count(AX_MSG_DOWN), 1);
  /* Unknown flags are refused. */
  rec_reset();
  probe_cmd(&b, pr, OP_SPAWN, b.name, "worker", "wxyz", 4, 4, 20000);
  CU_ASSERT_FATAL(wait_rec(REC_CALL, &c));
  CU_ASSERT_EQUAL(c.status, AX_EINVAL);
  node_free(&b);
}

/* ---- process groups ---- */

static _Atomic uint64_t pg_got[16];
static ax_err member_behave(ax_actor *self, const ax_msg *m) {
  uint32_t *slot = ax_state(self);
  if (m->type == T_PGMSG) atomic_fetch_add(&pg_got[*slot], 1);
  if (m->type == T_STOPME) return ax_exit(self, ax_self(self), AX_REASON_NORMAL);
  return AX_OK;
}
static ax_err member_init(ax_actor *self, void *st, const void *arg, size_t len) {
  (void)self;
  CU_ASSERT_EQUAL(len, sizeof(uint32_t));
  memcpy(st, arg, sizeof(uint32_t));
  return AX_OK;
}
static const ax_actor_spec member_spec = {.name = "member",
                                          .behaviour = member_behave,
                                          .state_size = sizeof(uint32_t),
                                          .init = member_init};

typedef struct pgw {
  node *n;
  size_t want;
} pgw;
static bool pg_is(void *a) {
  pgw *w = a;
  size_t n = 0;
  return ax_pg_members(w->n->sys, "g", NULL, &n) == AX_OK && n == w->want;
}
static bool wait_pg(node *n, size_t want) {
  pgw w = {n, want};
  return ax_test_wait(pg_is, &w, WAIT_MS);
}
static bool got_total(void *a) {
  uint64_t s = 0;
  for (int i = 0; i < 16; i++) s += atomic_load(&pg_got[i]);
  return s >= *(uint64_t *)a;
}

static void test_pg_three_nodes(void) {
  node a, b, c;
  for (int i = 0; i < 16; i++) atomic_store(&pg_got[i], 0);
  CU_ASSERT_EQUAL_FATAL(node_up(&a, "a@127.0.0.1", NULL, 0, false), AX_OK);
  const char *seeds[] = {a.addr};
  CU_ASSERT_EQUAL_FATAL(node_up(&b, "b@127.0.0.1", seeds, 1, false), AX_OK);
  /* c joins its members before it connects: they reach the others as
   * PG_SYNC; a's and b's reach c the same way. */
  CU_ASSERT_EQUAL_FATAL(node_up(&c, "c@127.0.0.1", NULL, 0, false), AX_OK);
  node *ns[3] = {&a, &b, &c};
  ax_pid m[6];
  for (uint32_t i = 0; i < 6; i++) {
    CU_ASSERT_EQUAL_FATAL(ax_system_spawn(ns[i / 2]->sys, &member_spec, &i, sizeof i, &m[i]), AX_OK);
    CU_ASSERT_EQUAL(ax_pg_join(ns[i / 2]->sys, "g", m[i]), AX_OK);
    CU_ASSERT_EQUAL(ax_pg_join(ns[i / 2]->sys, "g", m[i]), AX_OK); /* once only */
  }
  CU_ASSERT_EQUAL(ax_pg_join(c.sys, "other", m[4]), AX_OK);
  CU_ASSERT_EQUAL(ax_node_connect(c.sys, a.addr), AX_OK);
  for (int i = 0; i < 3; i++) CU_ASSERT_FATAL(wait_nodes(ns[i], 2));
  for (int i = 0; i < 3; i++) CU_ASSERT(wait_pg(ns[i], 6));
  size_t n = 6;
  ax_pid local[6];
  CU_ASSERT_EQUAL(ax_pg_local_members(b.sys, "g", local, &n), AX_OK);
  CU_ASSERT_EQUAL(n, 2);
  n = 0;
  CU_ASSERT_EQUAL(ax_pg_members(a.sys, "other", NULL, &n), AX_OK);
  CU_ASSERT_EQUAL(n, 1);
  n = 0;
  CU_ASSERT_EQUAL(ax_pg_members(a.sys, "nosuch", NULL, &n), AX_OK);
  CU_ASSERT_EQUAL(n, 0);
  /* a member pid as another node names it: the same actor. */
  ax_pid all[8];
  n = 8;
  CU_ASSERT_EQUAL(ax_pg_members(a.sys, "g", all, &n), AX_OK);
  CU_ASSERT_EQUAL(n, 6);
  size_t of_c = 0;
  for (size_t i = 0; i < n; i++) {
    char nm[64];
    CU_ASSERT_EQUAL(ax_node_of(a.sys, all[i], nm, sizeof nm), AX_OK);
    if (strcmp(nm, c.name) == 0) of_c++;
  }
  CU_ASSERT_EQUAL(of_c, 2);

  /* Every member on every node, once per send. */
  size_t sent = 0;
  CU_ASSERT_EQUAL(ax_system_pg_send(b.sys, "g", T_PGMSG, "x", 1, &sent), AX_OK);
  CU_ASSERT_EQUAL(sent, 6);
  uint64_t want = 6;
  CU_ASSERT(ax_test_wait(got_total, &want, WAIT_MS));
  CU_ASSERT_EQUAL(ax_system_pg_send(c.sys, "g", T_PGMSG, "y", 1, &sent), AX_OK);
  CU_ASSERT_EQUAL(sent, 6);
  want = 12;
  CU_ASSERT(ax_test_wait(got_total, &want, WAIT_MS));
  for (int i = 0; i < 6; i++) CU_ASSERT_EQUAL(atomic_load(&pg_got[i]), 2);
  CU_ASSERT_EQUAL(ax_system_pg_send(b.sys, "g", 1, "x", 1, &sent), AX_EINVAL); /* reserved type */

  /* A member that stops leaves everywhere; one that leaves likewise. */
  CU_ASSERT_EQUAL(ax_system_send(b.sys, m[2], T_STOPME, NULL, 0), AX_OK);
  for (int i = 0; i < 3; i++) CU_ASSERT(wait_pg(ns[i], 5));
  CU_ASSERT_EQUAL(ax_pg_leave(a.sys, "g", m[0]), AX_OK);
  CU_ASSERT_EQUAL(ax_pg_leave(a.sys, "g", m[0]), AX_ENOTFOUND);
  for (int i = 0; i < 3; i++) CU_ASSERT(wait_pg(ns[i], 4));
  /* A node that goes down takes its members with it. */
  node_free(&c);
  CU_ASSERT(wait_pg(&a, 2));
  CU_ASSERT(wait_pg(&b, 2));
  n = 0;
  CU_ASSERT_EQUAL(ax_pg_members(a.sys, "other", NULL, &n), AX_OK);
  CU_ASSERT_EQUAL(n, 0);
  node_free(&b);
  CU_ASSERT(wait_pg(&a, 1));
  node_free(&a);
}

/* ax_pg_monitor: joins and leaves of local and remote members, a stopped
 * member, a node going down; the events of one subscriber in order. */
static size_t rec_count_pid(uint32_t type, uint64_t pid) {
  size_t n = 0;
  pthread_mutex_lock(&rec_mu);
  for (size_t i = 0; i < nrec; i++) n += recs[i].type == type && recs[i].pid == pid;
  pthread_mutex_unlock(&rec_mu);
  return n;
}
typedef struct pidw {
  uint32_t type;
  uint64_t pid;
  size_t n;
} pidw;
static bool pid_pred(void *a) {
  pidw *w = a;
  return rec_count_pid(w->type, w->pid) >= w->n;
}
static bool wait_pid(uint32_t type, uint64_t pid, size_t n) {
  pidw w = {type, pid, n};
  return ax_test_wait(pid_pred, &w, WAIT_MS);
}

static void test_pg_monitor(void) {
  node a, b;
  pair(&a, &b, false, false);
  rec_reset();
  ax_pid pr;
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(a.sys, &probe_spec, NULL, 0, &pr), AX_OK);
  probe_cmd(&a, pr, OP_PGMON, "", "g", NULL, 0, 1, 0);
  rec c;
  CU_ASSERT_FATAL(wait_rec(REC_CALL, &c));
  CU_ASSERT_EQUAL(c.status, AX_OK);
  uint32_t slot = 0;
  ax_pid la, lb;
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(a.sys, &member_spec, &slot, sizeof slot, &la), AX_OK);
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(b.sys, &member_spec, &slot, sizeof slot, &lb), AX_OK);
  ax_pid rb = AX_PID_NONE; /* lb as a names it */
  CU_ASSERT_EQUAL(ax_node_pid(a.sys, b.name, ax_node_pid_id(lb), &rb), AX_OK);
  CU_ASSERT_EQUAL(ax_pg_join(a.sys, "g", la), AX_OK);
  CU_ASSERT(wait_pid(AX_MSG_PG_JOIN, la.id, 1));
  CU_ASSERT_EQUAL(ax_pg_join(b.sys, "g", lb), AX_OK);
  CU_ASSERT(wait_pid(AX_MSG_PG_JOIN, rb.id, 1));
  CU_ASSERT_EQUAL(ax_pg_join(a.sys, "other", la), AX_OK); /* another group: not heard */
  CU_ASSERT_EQUAL(ax_pg_leave(b.sys, "g", lb), AX_OK);
  CU_ASSERT(wait_pid(AX_MSG_PG_LEAVE, rb.id, 1));
  CU_ASSERT_EQUAL(ax_system_send(a.sys, la, T_STOPME, NULL, 0), AX_OK); /* stops: leaves */
  CU_ASSERT(wait_pid(AX_MSG_PG_LEAVE, la.id, 1));
  CU_ASSERT_EQUAL(ax_pg_join(b.sys, "g", lb), AX_OK);
  CU_ASSERT(wait_pid(AX_MSG_PG_JOIN, rb.id, 2));
  node_free(&b); /* its members leave here */
  CU_ASSERT(wait_pid(AX_MSG_PG_LEAVE, rb.id, 2));
  CU_ASSERT_EQUAL(rec_count(AX_MSG_PG_JOIN), 3);
  CU_ASSERT_EQUAL(rec_count(AX_MSG_PG_LEAVE), 3);
  /* Unsubscribed: nothing more. */
  rec_reset();
  probe_cmd(&a, pr, OP_PGMON, "", "g", NULL, 0, 0, 0);
  CU_ASSERT_FATAL(wait_rec(REC_CALL, &c));
  CU_ASSERT_EQUAL(ax_system_spawn(a.sys, &member_spec, &slot, sizeof slot, &la), AX_OK);
  CU_ASSERT_EQUAL(ax_pg_join(a.sys, "g", la), AX_OK);
  CU_ASSERT_EQUAL(ax_pg_leave(a.sys, "g", la), AX_OK);
  probe_cmd(&a, pr, OP_PGMON, "", "bad\nname", NULL, 0, 1, 0);
  rec_reset();
  probe_cmd(&a, pr, OP_PGMON, "", "bad\x01", NULL, 0, 1, 0);
  CU_ASSERT_FATAL(wait_rec(REC_CALL, &c));
  CU_ASSERT_EQUAL(c.status, AX_EINVAL);
  CU_ASSERT_EQUAL(rec_count(AX_MSG_PG_JOIN) + rec_count(AX_MSG_PG_LEAVE), 0);
  node_free(&a);
}

static void test_pg_args(void) {
  node a;
  ax_system *plain;
  ax_system_config sc;
  ax_system_config_init(&sc);
  CU_ASSERT_EQUAL_FATAL(ax_system_new(&sc, &plain), AX_OK);
  ax_pid x;
  CU_ASSERT_EQUAL(ax_system_spawn(plain, &echo_spec, NULL, 0, &x), AX_OK);
  CU_ASSERT_EQUAL(ax_pg_join(plain, "g", x), AX_ESTATE); /* not a node */
  CU_ASSERT_EQUAL(ax_behaviour_register(plain, "w", &worker_spec), AX_ESTATE);
  ax_system_free(plain);
  CU_ASSERT_EQUAL_FATAL(node_up(&a, "a@127.0.0.1", NULL, 0, false), AX_OK);
  ax_pid p;
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(a.sys, &echo_spec, NULL, 0, &p), AX_OK);
  CU_ASSERT_EQUAL(ax_pg_join(a.sys, NULL, p), AX_EINVAL);
  CU_ASSERT_EQUAL(ax_pg_join(a.sys, "", p), AX_EINVAL);
  CU_ASSERT_EQUAL(ax_pg_join(a.sys, "a\tb", p), AX_EINVAL);
  CU_ASSERT_EQUAL(ax_pg_join(a.sys, "g", AX_PID_NONE), AX_EINVAL);
  ax_pid remote = {p.id + (UINT64_C(5) << 52)};
  CU_ASSERT_EQUAL(ax_pg_join(a.sys, "g", remote), AX_EINVAL);
  CU_ASSERT_EQUAL(ax_system_exit(a.sys, p, AX_REASON_KILL), AX_OK);
  /* A dead pid: refused (once the stop is visible). */
  for (int i = 0; i < 3000 && ax_system_send(a.sys, p, T_ECHO, NULL, 0) == AX_OK; i++)
    ax_test_sleep_ms(1);
  CU_ASSERT_EQUAL(ax_pg_join(a.sys, "g", p), AX_ENOACTOR);
  size_t n = 1;
  CU_ASSERT_EQUAL(ax_pg_members(a.sys, "g", NULL, &n), AX_EINVAL); /* cap without out */
  CU_ASSERT_EQUAL(ax_pg_leave(a.sys, "g", p), AX_ENOTFOUND);
  node_free(&a);
}

int main(void) {
  if (!axh_tmpdir(g_dir, sizeof g_dir, "/tmp/axon-svc-XXXXXX")) return 1;
  if (!axh_write_secret(g_dir, "secret", SECRET, secret_path, sizeof secret_path)) return 1;
  CU_pSuite s = ax_test_suite("cluster.services");
  CU_add_test(s, "whereis: found, not found, self, down node", test_whereis);
  CU_add_test(s, "spawn: allowed, refused, unregistered, bad arg, link", test_spawn);
  CU_add_test(s, "spawn with the monitor option", test_spawn_monitor);
  CU_add_test(s, "pg across three nodes", test_pg_three_nodes);
  CU_add_test(s, "pg arguments", test_pg_args);
  CU_add_test(s, "pg monitor: joins and leaves", test_pg_monitor);
  int rc = ax_test_run();
  unlink(secret_path);
  rmdir(g_dir);
  return rc;
}
