/* Tests for the core actor runtime: spawn, init, send, become, exits,
 * terminate, pids, zero-copy buffers, request/reply, ax_call, exclusivity
 * and delivery under load. */
#include <axon.h>
#include <pthread.h>
#include <string.h>

#include "support/testutil.h"

enum { T_DATA = AX_MSG_USER, T_STOP, T_FAIL, T_ADD, T_GET, T_SWITCH, T_FWD };

static ax_system *new_sys(uint32_t workers) {
  ax_system_config cfg;
  ax_system_config_init(&cfg);
  cfg.workers = workers;
  ax_system *sys = NULL;
  CU_ASSERT_EQUAL_FATAL(ax_system_new(&cfg, &sys), AX_OK);
  return sys;
}

/* ---- a recorder actor: counts, sums, remembers the last payload ---- */
typedef struct rec_shared {
  _Atomic uint64_t count;
  _Atomic uint64_t sum;
  _Atomic uint64_t terminated;
  _Atomic int32_t reason;
  _Atomic uint64_t inside; /* exclusivity probe */
  _Atomic uint64_t overlaps;
  char last[64];
} rec_shared;

typedef struct rec_state {
  rec_shared *sh;
} rec_state;

static ax_err rec_init(ax_actor *self, void *state, const void *arg, size_t len) {
  if (len != sizeof(rec_shared *)) return AX_EINVAL;
  memcpy(&((rec_state *)state)->sh, arg, len);
  return AX_OK;
}

static ax_err rec_behaviour(ax_actor *self, const ax_msg *msg) {
  rec_shared *sh = ((rec_state *)ax_state(self))->sh;
  if (atomic_fetch_add(&sh->inside, 1) != 0) atomic_fetch_add(&sh->overlaps, 1);
  ax_err r = AX_OK;
  switch (msg->type) {
  case T_DATA:
    if (msg->len && msg->len <= sizeof(sh->last)) memcpy(sh->last, msg->data, msg->len);
    if (msg->len == sizeof(uint64_t)) {
      uint64_t v;
      memcpy(&v, msg->data, sizeof(v));
      atomic_fetch_add(&sh->sum, v);
    }
    break;
  case T_STOP: r = ax_exit(self, ax_self(self), AX_REASON_USER + 7); break;
  case T_FAIL: r = AX_EINVAL; break;
  default: break;
  }
  atomic_fetch_sub(&sh->inside, 1);
  atomic_fetch_add(&sh->count, 1);
  return r;
}

static void rec_terminate(ax_actor *self, void *state, ax_reason reason) {
  rec_shared *sh = ((rec_state *)state)->sh;
  atomic_store(&sh->reason, reason);
  atomic_fetch_add(&sh->terminated, 1);
}

static const ax_actor_spec rec_spec = {.name = "rec", .behaviour = rec_behaviour,
                                       .state_size = sizeof(rec_state), .init = rec_init,
                                       .terminate = rec_terminate};

static ax_pid spawn_rec(ax_system *sys, rec_shared *sh) {
  ax_pid p;
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &rec_spec, &sh, sizeof(sh), &p), AX_OK);
  return p;
}

static void test_actor_send_copies_payload_and_delivers(void) {
  ax_system *sys = new_sys(2);
  rec_shared sh = {0};
  ax_pid p = spawn_rec(sys, &sh);
  char buf[16] = "hello";
  CU_ASSERT_EQUAL(ax_system_send(sys, p, T_DATA, buf, 6), AX_OK);
  strcpy(buf, "XXXXX"); /* the message holds its own copy */
  CU_ASSERT_TRUE(ax_test_wait_count(&sh.count, 1, 10000));
  CU_ASSERT_STRING_EQUAL(sh.last, "hello");
  CU_ASSERT_EQUAL(ax_system_send(sys, p, T_DATA, NULL, 3), AX_EINVAL);
  ax_system_free(sys);
  CU_ASSERT_EQUAL(atomic_load(&sh.terminated), 1);
  CU_ASSERT_EQUAL(atomic_load(&sh.reason), AX_REASON_SHUTDOWN);
}

static void test_actor_init_failure_fails_spawn_without_terminate(void) {
  ax_system *sys = new_sys(1);
  ax_pid p = AX_PID_NONE;
  /* rec_init rejects a wrong-sized argument */
  CU_ASSERT_EQUAL(ax_system_spawn(sys, &rec_spec, "x", 1, &p), AX_EINVAL);
  CU_ASSERT_TRUE(ax_pid_is_none(p));
  ax_system_stats st;
  ax_system_stats_get(sys, &st);
  CU_ASSERT_EQUAL(st.actors_alive, 0);
  ax_actor_spec bad = {.name = "nobehaviour"};
  CU_ASSERT_EQUAL(ax_system_spawn(sys, &bad, NULL, 0, &p), AX_EINVAL);
  ax_system_free(sys);
}

static void test_actor_error_return_stops_with_error_reason(void) {
  ax_system *sys = new_sys(2);
  rec_shared sh = {0};
  ax_pid p = spawn_rec(sys, &sh);
  CU_ASSERT_EQUAL(ax_system_send(sys, p, T_FAIL, NULL, 0), AX_OK);
  CU_ASSERT_EQUAL(ax_system_wait(sys, 10000), AX_OK);
  CU_ASSERT_EQUAL(atomic_load(&sh.terminated), 1);
  CU_ASSERT_EQUAL(atomic_load(&sh.reason), AX_REASON_ERROR + AX_EINVAL);
  CU_ASSERT_STRING_EQUAL(ax_reason_str(atomic_load(&sh.reason)), "AX_EINVAL");
  /* the pid is dead now */
  CU_ASSERT_EQUAL(ax_system_send(sys, p, T_DATA, NULL, 0), AX_ENOACTOR);
  ax_system_free(sys);
  CU_ASSERT_EQUAL(atomic_load(&sh.terminated), 1); /* once, not again at shutdown */
}

static void test_actor_exit_self_stops_after_callback(void) {
  ax_system *sys = new_sys(2);
  rec_shared sh = {0};
  ax_pid p = spawn_rec(sys, &sh);
  CU_ASSERT_EQUAL(ax_system_send(sys, p, T_STOP, NULL, 0), AX_OK);
  CU_ASSERT_EQUAL(ax_system_wait(sys, 10000), AX_OK);
  CU_ASSERT_EQUAL(atomic_load(&sh.reason), AX_REASON_USER + 7);
  CU_ASSERT_EQUAL(atomic_load(&sh.count), 1);
  ax_system_free(sys);
}

static void test_actor_exit_signals_kill_normal_and_reason(void) {
  ax_system *sys = new_sys(2);
  rec_shared a = {0}, b = {0}, c = {0};
  ax_pid pa = spawn_rec(sys, &a), pb = spawn_rec(sys, &b), pc = spawn_rec(sys, &c);
  /* normal is ignored by a non-trapping actor */
  CU_ASSERT_EQUAL(ax_system_exit(sys, pa, AX_REASON_NORMAL), AX_OK);
  CU_ASSERT_EQUAL(ax_system_send(sys, pa, T_DATA, NULL, 0), AX_OK);
  CU_ASSERT_TRUE(ax_test_wait_count(&a.count, 1, 10000));
  CU_ASSERT_EQUAL(atomic_load(&a.terminated), 0);
  /* kill becomes killed */
  CU_ASSERT_EQUAL(ax_system_exit(sys, pb, AX_REASON_KILL), AX_OK);
  CU_ASSERT_TRUE(ax_test_wait_count(&b.terminated, 1, 10000));
  CU_ASSERT_EQUAL(atomic_load(&b.reason), AX_REASON_KILLED);
  /* any other reason stops it with that reason */
  CU_ASSERT_EQUAL(ax_system_exit(sys, pc, AX_REASON_USER + 1), AX_OK);
  CU_ASSERT_TRUE(ax_test_wait_count(&c.terminated, 1, 10000));
  CU_ASSERT_EQUAL(atomic_load(&c.reason), AX_REASON_USER + 1);
  CU_ASSERT_EQUAL(ax_system_exit(sys, pc, AX_REASON_KILL), AX_ENOACTOR);
  ax_system_free(sys);
}

/* ---- trapping exits ---- */
typedef struct trap_state {
  _Atomic uint64_t *exits;
  _Atomic int32_t *reason;
  _Atomic uint64_t *data_before_exit;
} trap_state;

static ax_err trap_init(ax_actor *self, void *state, const void *arg, size_t len) {
  memcpy(state, arg, sizeof(trap_state));
  ax_trap_exit(self, true);
  return AX_OK;
}

static ax_err trap_behaviour(ax_actor *self, const ax_msg *msg) {
  trap_state *st = ax_state(self);
  if (msg->type == AX_MSG_EXIT) {
    const ax_exit_info *info = msg->data;
    atomic_store(st->reason, info->reason);
    atomic_fetch_add(st->exits, 1);
  } else if (msg->type == T_DATA && atomic_load(st->exits) == 0) {
    atomic_fetch_add(st->data_before_exit, 1);
  }
  return AX_OK;
}

static const ax_actor_spec trap_spec = {.name = "trap", .behaviour = trap_behaviour,
                                        .state_size = sizeof(trap_state), .init = trap_init};

/* Sends 1000 messages then an exit signal from the same actor. */
static ax_err sender_behaviour(ax_actor *self, const ax_msg *msg) {
  ax_pid target;
  memcpy(&target, msg->data, sizeof(target));
  for (int i = 0; i < 1000; i++) ax_send(self, target, T_DATA, NULL, 0);
  ax_exit(self, target, AX_REASON_USER + 3);
  return ax_exit(self, ax_self(self), AX_REASON_NORMAL);
}
static const ax_actor_spec sender_spec = {.name = "sender", .behaviour = sender_behaviour};

static void test_actor_trapped_exit_arrives_after_earlier_messages(void) {
  ax_system *sys = new_sys(2);
  _Atomic uint64_t exits = 0, before = 0;
  _Atomic int32_t reason = -1;
  trap_state ts = {&exits, &reason, &before};
  ax_pid t, s;
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &trap_spec, &ts, sizeof(ts), &t), AX_OK);
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &sender_spec, NULL, 0, &s), AX_OK);
  CU_ASSERT_EQUAL(ax_system_send(sys, s, T_DATA, &t, sizeof(t)), AX_OK);
  CU_ASSERT_TRUE(ax_test_wait_count(&exits, 1, 10000));
  CU_ASSERT_EQUAL(atomic_load(&reason), AX_REASON_USER + 3);
  CU_ASSERT_EQUAL(atomic_load(&before), 1000); /* all data came first */
  /* kill is untrappable */
  CU_ASSERT_EQUAL(ax_system_exit(sys, t, AX_REASON_KILL), AX_OK);
  CU_ASSERT_EQUAL(ax_system_wait(sys, 10000), AX_OK);
  CU_ASSERT_EQUAL(atomic_load(&exits), 1);
  ax_system_free(sys);
}

/* ---- become ---- */
static ax_err second_behaviour(ax_actor *self, const ax_msg *msg);
static ax_err first_behaviour(ax_actor *self, const ax_msg *msg) {
  _Atomic uint64_t *counters = *(_Atomic uint64_t **)ax_state(self);
  atomic_fetch_add(&counters[0], 1);
  if (msg->type == T_SWITCH) ax_become(self, second_behaviour);
  return AX_OK;
}
static ax_err second_behaviour(ax_actor *self, const ax_msg *msg) {
  _Atomic uint64_t *counters = *(_Atomic uint64_t **)ax_state(self);
  atomic_fetch_add(&counters[1], 1);
  return AX_OK;
}
static ax_err ptr_init(ax_actor *self, void *state, const void *arg, size_t len) {
  memcpy(state, arg, len);
  return AX_OK;
}
static const ax_actor_spec become_spec = {.name = "become", .behaviour = first_behaviour,
                                          .state_size = sizeof(void *), .init = ptr_init};

static void test_actor_become_switches_behaviour_for_next_message(void) {
  ax_system *sys = new_sys(2);
  _Atomic uint64_t counters[2] = {0, 0};
  _Atomic uint64_t *cp = counters;
  ax_pid p;
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &become_spec, &cp, sizeof(cp), &p), AX_OK);
  ax_system_send(sys, p, T_DATA, NULL, 0);
  ax_system_send(sys, p, T_SWITCH, NULL, 0);
  ax_system_send(sys, p, T_DATA, NULL, 0);
  ax_system_send(sys, p, T_DATA, NULL, 0);
  CU_ASSERT_TRUE(ax_test_wait_count(&counters[1], 2, 10000));
  CU_ASSERT_EQUAL(atomic_load(&counters[0]), 2);
  CU_ASSERT_EQUAL(atomic_load(&counters[1]), 2);
  ax_system_free(sys);
}

/* ---- pids: churn with slot reuse and stale pids ---- */
static ax_err quit_behaviour(ax_actor *self, const ax_msg *msg) {
  return ax_exit(self, ax_self(self), AX_REASON_NORMAL);
}
static const ax_actor_spec quit_spec = {.name = "quit", .behaviour = quit_behaviour};

static void test_actor_stale_pids_fail_after_slot_reuse(void) {
  ax_system *sys = new_sys(2);
  enum { ROUNDS = 20, PER = 1000 };
  static ax_pid old[ROUNDS * PER];
  size_t n = 0;
  for (int r = 0; r < ROUNDS; r++) {
    for (int i = 0; i < PER; i++) {
      CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &quit_spec, NULL, 0, &old[n]), AX_OK);
      CU_ASSERT_EQUAL(ax_system_send(sys, old[n], T_DATA, NULL, 0), AX_OK);
      n++;
    }
    CU_ASSERT_EQUAL_FATAL(ax_system_wait(sys, 30000), AX_OK);
  }
  /* Slots were reused (20,000 actors, at most ~2,000 slots live at once),
   * yet every old pid is dead, and pids are all distinct. */
  for (size_t i = 0; i < n; i++) {
    CU_ASSERT_EQUAL(ax_system_send(sys, old[i], T_DATA, NULL, 0), AX_ENOACTOR);
    if (i) CU_ASSERT_NOT_EQUAL(old[i].id, old[i - 1].id);
  }
  ax_system_stats st;
  ax_system_stats_get(sys, &st);
  CU_ASSERT_EQUAL(st.actors_spawned, n);
  CU_ASSERT_EQUAL(st.actors_stopped, n);
  ax_system_free(sys);
}

/* Senders hammer a pid while it dies and its slot is reused: every send is
 * OK or ENOACTOR, nothing touches freed memory (ASan/TSan runs check). */
typedef struct hammer_arg {
  ax_system *sys;
  ax_pid *targets;
  size_t n;
  _Atomic bool *stop;
} hammer_arg;

static void *hammer(void *p) {
  hammer_arg *h = p;
  while (!atomic_load(h->stop))
    for (size_t i = 0; i < h->n; i++) {
      ax_err e = ax_system_send(h->sys, h->targets[i], T_DATA, NULL, 0);
      CU_ASSERT(e == AX_OK || e == AX_ENOACTOR);
    }
  return NULL;
}

static void test_actor_send_races_with_stop_and_reuse(void) {
  ax_system *sys = new_sys(2);
  enum { N = 64 };
  ax_pid targets[N];
  for (int i = 0; i < N; i++) ax_system_spawn(sys, &quit_spec, NULL, 0, &targets[i]);
  _Atomic bool stop = false;
  hammer_arg h = {sys, targets, N, &stop};
  pthread_t th;
  pthread_create(&th, NULL, hammer, &h);
  for (int r = 0; r < 200; r++) { /* churn: new actors reuse slots */
    ax_pid p;
    if (ax_system_spawn(sys, &quit_spec, NULL, 0, &p) == AX_OK) ax_system_send(sys, p, T_DATA, NULL, 0);
  }
  CU_ASSERT_EQUAL(ax_system_wait(sys, 30000), AX_OK);
  atomic_store(&stop, true);
  pthread_join(th, NULL);
  for (int i = 0; i < N; i++) CU_ASSERT_EQUAL(ax_system_send(sys, targets[i], T_DATA, NULL, 0), AX_ENOACTOR);
  ax_system_free(sys);
}

/* ---- zero-copy buffers ---- */
typedef struct buf_probe {
  _Atomic(ax_buf *) seen;
  _Atomic(const void *) data;
  _Atomic uint64_t got;
} buf_probe;

static ax_err keep_buf_behaviour(ax_actor *self, const ax_msg *msg) {
  buf_probe *pr = *(buf_probe **)ax_state(self);
  ax_buf_retain(msg->buf); /* keep it past the callback */
  atomic_store(&pr->seen, msg->buf);
  atomic_store(&pr->data, msg->data);
  atomic_fetch_add(&pr->got, 1);
  return AX_OK;
}
static const ax_actor_spec keep_spec = {.name = "keep", .behaviour = keep_buf_behaviour,
                                        .state_size = sizeof(void *), .init = ptr_init};

static void count_free(void *data, size_t cap, void *arg) { atomic_fetch_add((_Atomic int *)arg, 1); }

static void test_actor_send_buf_shares_without_copy(void) {
  ax_system *sys = new_sys(2);
  static char storage[100] = "0123456789";
  _Atomic int freed = 0;
  ax_buf *b;
  CU_ASSERT_EQUAL_FATAL(ax_buf_wrap(storage, sizeof(storage), count_free, &freed, &b), AX_OK);
  buf_probe pr;
  memset(&pr, 0, sizeof(pr));
  buf_probe *pp = &pr;
  ax_pid p;
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &keep_spec, &pp, sizeof(pp), &p), AX_OK);
  CU_ASSERT_EQUAL(ax_system_send_buf(sys, p, T_DATA, b, 101, 0), AX_EINVAL);
  CU_ASSERT_EQUAL(ax_system_send_buf(sys, p, T_DATA, b, 90, 11), AX_EINVAL);
  CU_ASSERT_EQUAL(ax_system_send_buf(sys, p, T_DATA, b, 3, 4), AX_OK);
  CU_ASSERT_TRUE(ax_test_wait_count(&pr.got, 1, 10000));
  CU_ASSERT_PTR_EQUAL(atomic_load(&pr.seen), b);
  CU_ASSERT_PTR_EQUAL(atomic_load(&pr.data), storage + 3); /* no copy */
  ax_system_free(sys);
  /* ours + the receiver's retained one; the message's own was released */
  CU_ASSERT_EQUAL(ax_buf_refs(b), 2);
  ax_buf_release(b);
  CU_ASSERT_EQUAL(atomic_load(&freed), 0);
  ax_buf_release(b);
  CU_ASSERT_EQUAL(atomic_load(&freed), 1);
}

/* ---- exclusivity and exactly-once delivery under load ---- */
static void *flood(void *p) {
  void **a = p;
  ax_system *sys = a[0];
  ax_pid *targets = a[1];
  for (uint64_t i = 1; i <= 20000; i++)
    for (int t = 0; t < 8; t++) {
      ax_err e;
      while ((e = ax_system_send(sys, targets[t], T_DATA, &i, sizeof(i))) == AX_ENOMEM) {
      }
      CU_ASSERT_EQUAL(e, AX_OK);
    }
  return NULL;
}

static void test_actor_never_runs_on_two_threads_and_delivers_exactly_once(void) {
  ax_system *sys = new_sys(2);
  static rec_shared sh[8];
  memset(sh, 0, sizeof(sh));
  ax_pid targets[8];
  for (int t = 0; t < 8; t++) targets[t] = spawn_rec(sys, &sh[t]);
  pthread_t th[3];
  void *args[2] = {sys, targets};
  for (int i = 0; i < 3; i++) pthread_create(&th[i], NULL, flood, args);
  for (int i = 0; i < 3; i++) pthread_join(th[i], NULL);
  const uint64_t per = 3 * 20000, sum = 3ull * 20000 * 20001 / 2;
  for (int t = 0; t < 8; t++) {
    CU_ASSERT_TRUE(ax_test_wait_count(&sh[t].count, per, 60000));
    CU_ASSERT_EQUAL(atomic_load(&sh[t].count), per);
    CU_ASSERT_EQUAL(atomic_load(&sh[t].sum), sum);
    CU_ASSERT_EQUAL(atomic_load(&sh[t].overlaps), 0);
  }
  ax_system_free(sys);
}

/* Many actors forward a token around a ring: actor-to-actor sends under
 * stealing, each hop counted exactly once. */
typedef struct ring_state {
  ax_pid next;
  _Atomic uint64_t *hops;
} ring_state;

static ax_err ring_behaviour(ax_actor *self, const ax_msg *msg) {
  ring_state *st = ax_state(self);
  if (msg->type == T_FWD) { /* learn the next actor */
    memcpy(&st->next, msg->data, sizeof(ax_pid));
    return AX_OK;
  }
  uint64_t left;
  memcpy(&left, msg->data, sizeof(left));
  atomic_fetch_add(st->hops, 1);
  if (left == 0) return AX_OK;
  left--;
  return ax_send(self, st->next, T_DATA, &left, sizeof(left));
}

static ax_err ring_init(ax_actor *self, void *state, const void *arg, size_t len) {
  memcpy(&((ring_state *)state)->hops, arg, len);
  return AX_OK;
}
static const ax_actor_spec ring_spec = {.name = "ring", .behaviour = ring_behaviour,
                                        .state_size = sizeof(ring_state), .init = ring_init};

static void test_actor_many_actors_many_messages_exactly_once(void) {
  ax_system *sys = new_sys(2);
  enum { N = 500, TOKENS = 50, HOPS = 2000 };
  static ax_pid ring[N];
  _Atomic uint64_t hops = 0;
  _Atomic uint64_t *hp = &hops;
  for (int i = 0; i < N; i++)
    CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &ring_spec, &hp, sizeof(hp), &ring[i]), AX_OK);
  for (int i = 0; i < N; i++) ax_system_send(sys, ring[i], T_FWD, &ring[(i + 1) % N], sizeof(ax_pid));
  uint64_t left = HOPS - 1;
  for (int t = 0; t < TOKENS; t++) ax_system_send(sys, ring[t * 7 % N], T_DATA, &left, sizeof(left));
  CU_ASSERT_TRUE(ax_test_wait_count(&hops, (uint64_t)TOKENS * HOPS, 60000));
  ax_test_sleep_ms(20);
  CU_ASSERT_EQUAL(atomic_load(&hops), (uint64_t)TOKENS * HOPS);
  ax_system_free(sys);
}

/* ---- request / reply and ax_call ---- */
static ax_err adder_behaviour(ax_actor *self, const ax_msg *msg) {
  uint64_t *total = ax_state(self);
  if (msg->type == T_ADD && msg->len == sizeof(uint64_t)) {
    uint64_t v;
    memcpy(&v, msg->data, sizeof(v));
    *total += v;
  } else if (msg->type == T_GET && (msg->flags & AX_MSGF_REQUEST)) {
    return ax_reply(self, msg, T_GET, total, sizeof(*total));
  } else if (msg->type == T_STOP && (msg->flags & AX_MSGF_REQUEST)) {
    return AX_OK; /* never answers */
  }
  return AX_OK;
}
static const ax_actor_spec adder_spec = {.name = "adder", .behaviour = adder_behaviour,
                                         .state_size = sizeof(uint64_t)};

static void test_actor_call_from_plain_thread(void) {
  ax_system *sys = new_sys(2);
  ax_pid p;
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &adder_spec, NULL, 0, &p), AX_OK);
  for (uint64_t i = 1; i <= 100; i++) ax_system_send(sys, p, T_ADD, &i, sizeof(i));
  uint64_t total = 0;
  size_t len = sizeof(total);
  uint32_t type = 0;
  CU_ASSERT_EQUAL(ax_call(sys, p, T_GET, NULL, 0, 10000, &total, &len, &type), AX_OK);
  CU_ASSERT_EQUAL(total, 5050); /* the call came after the adds from this thread */
  CU_ASSERT_EQUAL(len, sizeof(total));
  CU_ASSERT_EQUAL(type, T_GET);
  /* a too-small buffer says how much is needed */
  char small[2];
  len = sizeof(small);
  CU_ASSERT_EQUAL(ax_call(sys, p, T_GET, NULL, 0, 10000, small, &len, NULL), AX_ENOBUFS);
  CU_ASSERT_EQUAL(len, sizeof(uint64_t));
  /* no answer: times out */
  len = sizeof(total);
  CU_ASSERT_EQUAL(ax_call(sys, p, T_STOP, NULL, 0, 50, &total, &len, NULL), AX_ETIMEDOUT);
  /* a target that stops without answering ends the call at once */
  rec_shared dies = {0};
  ax_pid d = spawn_rec(sys, &dies);
  len = sizeof(total);
  CU_ASSERT_EQUAL(ax_call(sys, d, T_FAIL, NULL, 0, 60000, &total, &len, NULL), AX_ENOACTOR);
  /* dead target */
  ax_system_exit(sys, p, AX_REASON_KILL);
  CU_ASSERT_EQUAL(ax_system_wait(sys, 10000), AX_OK);
  CU_ASSERT_EQUAL(ax_call(sys, p, T_GET, NULL, 0, 1000, &total, &len, NULL), AX_ENOACTOR);
  ax_system_free(sys);
}

/* An actor asks another with ax_request and checks the reply's ref. */
typedef struct asker_state {
  ax_pid adder;
  ax_ref ref;
  _Atomic uint64_t *result;
} asker_state;

static ax_err asker_behaviour(ax_actor *self, const ax_msg *msg) {
  asker_state *st = ax_state(self);
  if (msg->type == T_DATA) {
    uint64_t v = 42;
    ax_err e = ax_send(self, st->adder, T_ADD, &v, sizeof(v));
    if (e == AX_OK) e = ax_request(self, st->adder, T_GET, NULL, 0, AX_INFINITY, &st->ref);
    return e;
  }
  if ((msg->flags & AX_MSGF_REPLY) && msg->ref == st->ref && msg->len == sizeof(uint64_t)) {
    uint64_t v;
    memcpy(&v, msg->data, sizeof(v));
    atomic_store(st->result, v);
  }
  return AX_OK;
}
static ax_err asker_init(ax_actor *self, void *state, const void *arg, size_t len) {
  memcpy(state, arg, len);
  return AX_OK;
}
static const ax_actor_spec asker_spec = {.name = "asker", .behaviour = asker_behaviour,
                                         .state_size = sizeof(asker_state), .init = asker_init};

static void test_actor_request_reply_carries_ref(void) {
  ax_system *sys = new_sys(2);
  _Atomic uint64_t result = 0;
  asker_state init = {.result = &result};
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &adder_spec, NULL, 0, &init.adder), AX_OK);
  ax_pid asker;
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &asker_spec, &init, sizeof(init), &asker), AX_OK);
  ax_system_send(sys, asker, T_DATA, NULL, 0);
  CU_ASSERT_TRUE(ax_test_wait_count(&result, 42, 10000));
  CU_ASSERT_EQUAL(atomic_load(&result), 42);
  ax_system_free(sys);
}

static void test_actor_shutdown_runs_every_terminate_once(void) {
  ax_system *sys = new_sys(2);
  enum { N = 2000 };
  static rec_shared sh[N];
  memset(sh, 0, sizeof(sh));
  for (int i = 0; i < N; i++) spawn_rec(sys, &sh[i]);
  CU_ASSERT_EQUAL(ax_system_shutdown(sys), AX_OK);
  CU_ASSERT_EQUAL(ax_system_shutdown(sys), AX_OK); /* idempotent */
  for (int i = 0; i < N; i++) CU_ASSERT_EQUAL(sh[i].terminated, 1);
  ax_pid p;
  CU_ASSERT_EQUAL(ax_system_spawn(sys, &rec_spec, NULL, 0, &p), AX_ECLOSED);
  ax_system_free(sys);
}

int main(void) {
  CU_pSuite s = ax_test_suite("actor.core");
  CU_ADD_TEST(s, test_actor_send_copies_payload_and_delivers);
  CU_ADD_TEST(s, test_actor_init_failure_fails_spawn_without_terminate);
  CU_ADD_TEST(s, test_actor_error_return_stops_with_error_reason);
  CU_ADD_TEST(s, test_actor_exit_self_stops_after_callback);
  CU_ADD_TEST(s, test_actor_exit_signals_kill_normal_and_reason);
  CU_ADD_TEST(s, test_actor_trapped_exit_arrives_after_earlier_messages);
  CU_ADD_TEST(s, test_actor_become_switches_behaviour_for_next_message);
  CU_ADD_TEST(s, test_actor_stale_pids_fail_after_slot_reuse);
  CU_ADD_TEST(s, test_actor_send_races_with_stop_and_reuse);
  CU_ADD_TEST(s, test_actor_send_buf_shares_without_copy);
  CU_ADD_TEST(s, test_actor_never_runs_on_two_threads_and_delivers_exactly_once);
  CU_ADD_TEST(s, test_actor_many_actors_many_messages_exactly_once);
  CU_ADD_TEST(s, test_actor_call_from_plain_thread);
  CU_ADD_TEST(s, test_actor_request_reply_carries_ref);
  CU_ADD_TEST(s, test_actor_shutdown_runs_every_terminate_once);
  return ax_test_run();
}
