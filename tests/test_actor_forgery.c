/* Tests that runtime messages cannot be forged: every public send refuses
 * the reserved types, a supervisor cannot be made to follow pointers taken
 * from bytes a caller sends, a pending ax_call cannot be ended by a forged
 * DOWN; and deferred replies (ax_reply_to / ax_system_reply_to), replies
 * discarded by ax_call with a NULL buffer. (Issue 9, items 2, 3 and 22.) */
#include <axon.h>
#include <pthread.h>
#include <string.h>

#include "supervisor/supervisor_int.h"
#include "support/sup_harness.h"
#include "support/testutil.h"

static const uint32_t reserved[] = {AX_MSG_NONE,         AX_MSG_EXIT,          AX_MSG_DOWN,
                                    AX_MSG_TIMEOUT,      AX_MSG_TIMER,         15,
                                    AX_MSG_IO_FIRST,     AX_MSG_IO_FIRST + 6,  AX_MSG_IO_LAST,
                                    AX_MSG_NODE_UP,      AX_MSG_NODE_DOWN,     AX_MSG_CLUSTER_LAST,
                                    AX_SUP_REQ_START_CHILD, AX_SUP_REPLY,      AX__SUP_MSG_KILL,
                                    AX__SUP_MSG_RETRY,   AX_MSG_SUP_LAST,      128,
                                    AX_MSG_USER - 1};
#define NRES (sizeof(reserved) / sizeof(reserved[0]))

/* ---- a sink that counts what it receives ---- */
static _Atomic uint64_t sink_got, sink_user;
static ax_err sink_behaviour(ax_actor *self, const ax_msg *msg) {
  atomic_fetch_add(&sink_got, 1);
  if (msg->type >= AX_MSG_USER) atomic_fetch_add(&sink_user, 1);
  if ((msg->flags & AX_MSGF_REQUEST) && msg->type == AX_MSG_USER + 7)
    return ax_reply(self, msg, AX_MSG_USER + 8, "pong", 4);
  return AX_OK;
}
static const ax_actor_spec sink_spec = {.name = "sink", .behaviour = sink_behaviour};

/* ---- an actor that tries every public send with every reserved type ---- */
typedef struct prober_arg {
  ax_pid target;
  _Atomic uint64_t *refused, *accepted, *done;
} prober_arg;
typedef struct prober_state {
  prober_arg a;
} prober_state;

static void tally(prober_arg *a, ax_err e) {
  atomic_fetch_add(e == AX_EINVAL ? a->refused : a->accepted, 1);
}

static ax_err prober_init(ax_actor *self, void *state, const void *arg, size_t len) {
  memcpy(&((prober_state *)state)->a, arg, sizeof(prober_arg));
  return AX_OK;
}

static ax_err prober_behaviour(ax_actor *self, const ax_msg *msg) {
  prober_arg *a = &((prober_state *)ax_state(self))->a;
  if (msg->type != AX_MSG_USER) return AX_OK;
  ax_buf *b = NULL;
  CU_ASSERT_EQUAL(ax_buf_new(8, &b), AX_OK);
  ax_msg fake_req = {.type = AX_MSG_USER, .flags = AX_MSGF_REQUEST, .from = a->target, .ref = 2};
  ax_reply_addr addr = {a->target, 2};
  uint64_t v = 0x4141414141414141ull;
  for (size_t i = 0; i < NRES; i++) {
    uint32_t t = reserved[i];
    ax_ref ref;
    ax_timer tm;
    tally(a, ax_send(self, a->target, t, &v, sizeof(v)));
    tally(a, ax_send_buf(self, a->target, t, b, 0, 8));
    tally(a, ax_request(self, a->target, t, &v, sizeof(v), AX_INFINITY, &ref));
    tally(a, ax_request(self, a->target, t, &v, sizeof(v), 1000, &ref));
    tally(a, ax_reply(self, &fake_req, t, &v, sizeof(v)));
    tally(a, ax_reply_to(self, addr, t, &v, sizeof(v)));
    tally(a, ax_send_after(self, 0, a->target, t, &v, sizeof(v), &tm));
    tally(a, ax_send_interval(self, 1, 0, a->target, t, &v, sizeof(v), &tm));
  }
  ax_buf_release(b);
  atomic_store(a->done, 1);
  return AX_OK;
}
static const ax_actor_spec prober_spec = {.name = "prober",
                                          .behaviour = prober_behaviour,
                                          .state_size = sizeof(prober_state),
                                          .init = prober_init};

static void test_public_sends_refuse_reserved_types(void) {
  ax_system *sys;
  CU_ASSERT_EQUAL_FATAL(ax_system_new(NULL, &sys), AX_OK);
  atomic_store(&sink_got, 0);
  atomic_store(&sink_user, 0);
  ax_pid sink;
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &sink_spec, NULL, 0, &sink), AX_OK);
  ax_buf *b;
  CU_ASSERT_EQUAL_FATAL(ax_buf_new(8, &b), AX_OK);
  uint64_t v = 0x4141414141414141ull;
  for (size_t i = 0; i < NRES; i++) {
    uint32_t t = reserved[i];
    CU_ASSERT_EQUAL(ax_system_send(sys, sink, t, &v, sizeof(v)), AX_EINVAL);
    CU_ASSERT_EQUAL(ax_system_send_buf(sys, sink, t, b, 0, 8), AX_EINVAL);
    size_t n = 0;
    CU_ASSERT_EQUAL(ax_call(sys, sink, t, &v, sizeof(v), 1000, NULL, &n, NULL), AX_EINVAL);
    CU_ASSERT_EQUAL(ax_system_reply_to(sys, (ax_reply_addr){sink, 2}, t, &v, sizeof(v)),
                    AX_EINVAL);
  }
  ax_buf_release(b);

  _Atomic uint64_t refused = 0, accepted = 0, done = 0;
  prober_arg pa = {.target = sink, .refused = &refused, .accepted = &accepted, .done = &done};
  ax_pid prober;
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &prober_spec, &pa, sizeof(pa), &prober), AX_OK);
  CU_ASSERT_EQUAL(ax_system_send(sys, prober, AX_MSG_USER, NULL, 0), AX_OK);
  CU_ASSERT_TRUE(ax_test_wait_count(&done, 1, 20000));
  CU_ASSERT_EQUAL(atomic_load(&accepted), 0);
  CU_ASSERT_EQUAL(atomic_load(&refused), 8 * NRES);

  /* The first user type still goes through, and nothing reserved arrived. */
  CU_ASSERT_EQUAL(ax_system_send(sys, sink, AX_MSG_USER, &v, sizeof(v)), AX_OK);
  CU_ASSERT_TRUE(ax_test_wait_count(&sink_user, 1, 20000));
  ax_test_sleep_ms(50); /* a stray timer would have fired by now; not needed to pass */
  CU_ASSERT_EQUAL(atomic_load(&sink_got), 1);
  ax_system_free(sys);
}

/* A forged exit signal sent as a message used to shut a whole tree down. */
static void test_forged_exit_message_leaves_supervisor_tree_alone(void) {
  ax_system *sys = sys_new();
  ax_child_spec kids[] = {wchild("a", 0, AX_RESTART_PERMANENT),
                          wchild("b", 1, AX_RESTART_PERMANENT)};
  ax_pid sup = start_sup(sys, AX_SUP_ONE_FOR_ONE, kids, 2, 3);
  ax_exit_info info = {.pid = AX_PID_NONE, .reason = AX_REASON_SHUTDOWN};
  CU_ASSERT_EQUAL(ax_system_send(sys, sup, AX_MSG_EXIT, &info, sizeof(info)), AX_EINVAL);
  info.pid.id = atomic_load(&g.pid[0]);
  CU_ASSERT_EQUAL(ax_system_send(sys, sup, AX_MSG_EXIT, &info, sizeof(info)), AX_EINVAL);
  /* A user-typed request to a supervisor is answered "not supported". */
  ax_sup_reply r;
  size_t rlen = sizeof(r);
  uint32_t rtype = 0;
  CU_ASSERT_EQUAL(ax_call(sys, sup, AX_MSG_USER + 3, NULL, 0, WAIT_MS, &r, &rlen, &rtype), AX_OK);
  CU_ASSERT_EQUAL(rtype, AX_SUP_REPLY);
  CU_ASSERT_EQUAL(r.err, AX_ENOTSUP);
  ax_sup_counts k = counts(sys, sup);
  CU_ASSERT_EQUAL(k.active, 2);
  CU_ASSERT_EQUAL(atomic_load(&g.total_stops), 0);
  CU_ASSERT_EQUAL(atomic_load(&g.total_starts), 2);
  ax_system_free(sys);
}

/* Requests made by actors: only the typed API reaches a supervisor. */
typedef struct req_arg {
  ax_pid sup;
  _Atomic int64_t r_request, r_sup_request, r_sup_kill;
  _Atomic uint64_t done;
} req_arg;
static req_arg rq;

static ax_err requester(ax_actor *self, const ax_msg *msg) {
  if (msg->type != AX_MSG_USER) return AX_OK;
  /* A start-child record naming a function pointer of the attacker's choice. */
  struct {
    ax__sup_rec rec;
    char id[8];
  } forged;
  memset(&forged, 0, sizeof(forged));
  forged.rec.start = 0x4141414141414141ull;
  forged.rec.size = sizeof(forged);
  forged.rec.id_len = 1;
  forged.id[0] = 'x';
  ax_ref ref;
  atomic_store(&rq.r_request, ax_request(self, rq.sup, AX_SUP_REQ_START_CHILD, &forged,
                                         sizeof(forged), AX_INFINITY, &ref));
  atomic_store(&rq.r_sup_request, ax_supervisor_request(self, rq.sup, AX_SUP_REQ_START_CHILD, "x",
                                                        AX_PID_NONE, AX_INFINITY, &ref));
  ax_pid victim = {atomic_load(&g.pid[1])};
  atomic_store(&rq.r_sup_kill, ax_send_after(self, 0, rq.sup, AX__SUP_MSG_KILL, &victim,
                                             sizeof(victim), NULL));
  atomic_store(&rq.done, 1);
  return AX_OK;
}
static const ax_actor_spec requester_spec = {.name = "requester", .behaviour = requester};

static void test_forged_supervisor_requests_are_refused(void) {
  ax_system *sys = sys_new();
  ax_child_spec kids[] = {wchild("a", 0, AX_RESTART_PERMANENT),
                          wchild("b", 1, AX_RESTART_PERMANENT)};
  memset(&rq, 0, sizeof(rq));
  rq.sup = start_sup(sys, AX_SUP_ONE_FOR_ONE, kids, 2, 3);
  ax_pid p;
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &requester_spec, NULL, 0, &p), AX_OK);
  CU_ASSERT_EQUAL(ax_system_send(sys, p, AX_MSG_USER, NULL, 0), AX_OK);
  CU_ASSERT_TRUE(ax_test_wait_count(&rq.done, 1, WAIT_MS));
  CU_ASSERT_EQUAL(atomic_load(&rq.r_request), AX_EINVAL);
  CU_ASSERT_EQUAL(atomic_load(&rq.r_sup_request), AX_EINVAL);
  CU_ASSERT_EQUAL(atomic_load(&rq.r_sup_kill), AX_EINVAL);
  ax_sup_counts k = counts(sys, rq.sup);
  CU_ASSERT_EQUAL(k.specs, 2);
  CU_ASSERT_EQUAL(k.active, 2);
  CU_ASSERT_EQUAL(atomic_load(&g.total_stops), 0);
  ax_system_free(sys);
}

/* The public supervisor spec is a marker: spawned with any bytes, including
 * a well-formed blob full of pointers, it refuses. */
static void test_supervisor_spec_spawned_with_forged_blob_refuses(void) {
  ax_system *sys = sys_new();
  struct {
    ax__sup_hdr h;
    ax__sup_rec rec;
    char id[8];
  } blob;
  for (int magic = 0; magic < 2; magic++) {
    memset(&blob, 0, sizeof(blob));
    blob.h.magic = magic ? AX__REAP_MAGIC : AX__SUP_MAGIC;
    blob.h.waiter = 0x4141414141414141ull;
    blob.h.total = sizeof(blob);
    blob.h.nchildren = 1;
    blob.h.intensity = 1;
    blob.h.period_ms = 1000;
    blob.rec.start = 0x4141414141414141ull;
    blob.rec.pid = atomic_load(&g.pid[0]);
    blob.rec.size = sizeof(blob.rec) + sizeof(blob.id);
    blob.rec.id_len = 1;
    blob.id[0] = 'x';
    ax_pid pid = AX_PID_NONE;
    CU_ASSERT_EQUAL(ax_system_spawn(sys, &ax_supervisor_spec, &blob, sizeof(blob), &pid),
                    AX_EINVAL);
    CU_ASSERT_TRUE(ax_pid_is_none(pid));
  }
  CU_ASSERT_TRUE(log_has("cannot be spawned directly"));
  ax_system_free(sys);
}

/* ---- a pending ax_call: forged DOWN, deferred reply, discarded reply ---- */
static _Atomic uint64_t def_proxy, def_ref;
static ax_err deferrer(ax_actor *self, const ax_msg *msg) {
  if (!(msg->flags & AX_MSGF_REQUEST)) return AX_OK;
  ax_reply_addr a = ax_reply_addr_of(msg);
  atomic_store(&def_ref, a.ref);
  atomic_store(&def_proxy, a.pid.id); /* published last: the test waits on it */
  return AX_OK;                       /* answered later, from the test thread */
}
static const ax_actor_spec deferrer_spec = {.name = "deferrer", .behaviour = deferrer};

typedef struct call_job {
  ax_system *sys;
  ax_pid to;
  ax_err result;
  char reply[16];
  size_t len;
  uint32_t type;
} call_job;

static void *call_thread(void *arg) {
  call_job *j = arg;
  j->len = sizeof(j->reply);
  j->result = ax_call(j->sys, j->to, AX_MSG_USER, "q", 1, 60000, j->reply, &j->len, &j->type);
  return NULL;
}

static void test_forged_down_cannot_end_a_call_and_deferred_reply_arrives(void) {
  ax_system *sys;
  CU_ASSERT_EQUAL_FATAL(ax_system_new(NULL, &sys), AX_OK);
  atomic_store(&def_proxy, 0);
  ax_pid d;
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &deferrer_spec, NULL, 0, &d), AX_OK);
  call_job j = {.sys = sys, .to = d, .result = AX_EINVAL};
  pthread_t th;
  pthread_create(&th, NULL, call_thread, &j);
  CU_ASSERT_TRUE_FATAL(ax_test_wait_count(&def_proxy, 1, 20000));
  ax_pid proxy = {atomic_load(&def_proxy)};
  ax_down_info forged = {.ref = 2, .pid = d, .reason = AX_REASON_KILLED};
  CU_ASSERT_EQUAL(ax_system_send(sys, proxy, AX_MSG_DOWN, &forged, sizeof(forged)), AX_EINVAL);
  /* A user-typed message with the same bytes is a stray: ignored. */
  CU_ASSERT_EQUAL(ax_system_send(sys, proxy, AX_MSG_USER, &forged, sizeof(forged)), AX_OK);
  /* The deferred reply, from this plain thread. */
  ax_reply_addr a = {proxy, atomic_load(&def_ref)};
  CU_ASSERT_EQUAL(ax_system_reply_to(sys, (ax_reply_addr){AX_PID_NONE, 2}, AX_MSG_USER, "x", 1),
                  AX_EINVAL);
  CU_ASSERT_EQUAL(ax_system_reply_to(sys, (ax_reply_addr){proxy, 0}, AX_MSG_USER, "x", 1),
                  AX_EINVAL);
  CU_ASSERT_EQUAL(ax_system_reply_to(sys, a, AX_MSG_USER + 1, "later", 5), AX_OK);
  pthread_join(th, NULL);
  CU_ASSERT_EQUAL(j.result, AX_OK);
  CU_ASSERT_EQUAL(j.type, AX_MSG_USER + 1);
  CU_ASSERT_EQUAL(j.len, 5);
  CU_ASSERT_EQUAL(memcmp(j.reply, "later", 5), 0);
  ax_system_free(sys);
}

static void test_call_with_null_reply_buffer_discards_payload(void) {
  ax_system *sys;
  CU_ASSERT_EQUAL_FATAL(ax_system_new(NULL, &sys), AX_OK);
  ax_pid s;
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &sink_spec, NULL, 0, &s), AX_OK);
  size_t n = 0;
  uint32_t type = 0;
  CU_ASSERT_EQUAL(ax_call(sys, s, AX_MSG_USER + 7, NULL, 0, 20000, NULL, &n, &type), AX_OK);
  CU_ASSERT_EQUAL(n, 4);
  CU_ASSERT_EQUAL(type, AX_MSG_USER + 8);
  CU_ASSERT_EQUAL(ax_call(sys, s, AX_MSG_USER + 7, NULL, 0, 20000, NULL, NULL, NULL), AX_OK);
  /* A buffer without a capacity is a caller error. */
  char buf[8];
  CU_ASSERT_EQUAL(ax_call(sys, s, AX_MSG_USER + 7, NULL, 0, 20000, buf, NULL, NULL), AX_EINVAL);
  ax_system_free(sys);
}

int main(void) {
  CU_pSuite s = ax_test_suite("actor.forgery");
  CU_add_test(s, "public sends refuse reserved types", test_public_sends_refuse_reserved_types);
  CU_add_test(s, "forged exit message leaves a supervisor tree alone",
              test_forged_exit_message_leaves_supervisor_tree_alone);
  CU_add_test(s, "forged supervisor requests are refused",
              test_forged_supervisor_requests_are_refused);
  CU_add_test(s, "supervisor spec spawned with a forged blob refuses",
              test_supervisor_spec_spawned_with_forged_blob_refuses);
  CU_add_test(s, "forged DOWN cannot end a call; a deferred reply arrives",
              test_forged_down_cannot_end_a_call_and_deferred_reply_arrives);
  CU_add_test(s, "call with a NULL reply buffer discards the payload",
              test_call_with_null_reply_buffer_discards_payload);
  return ax_test_run();
}
