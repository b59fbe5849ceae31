/* Tests for bounded mailboxes: each overflow policy, its counters, and
 * backpressure muting (including a cycle of overloaded actors). */
#include <axon.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "support/testutil.h"

enum { T_BLOCK = AX_MSG_USER, T_VAL, T_TICK, T_BALL };
enum { LIMIT = 10 };

/* A receiver that blocks in its first T_BLOCK message until the gate opens,
 * then records every T_VAL in order. */
typedef struct gate_rx {
  _Atomic bool open;
  _Atomic bool blocked;
  _Atomic uint64_t got;
  _Atomic uint64_t misordered;
  _Atomic uint64_t max_queued;
  uint64_t vals[4096];
  ax_system *sys;
} gate_rx;

static ax_err gate_behaviour(ax_actor *self, const ax_msg *msg) {
  gate_rx *g = *(gate_rx **)ax_state(self);
  if (msg->type == T_BLOCK) {
    atomic_store(&g->blocked, true);
    while (!atomic_load(&g->open)) ax_test_sleep_ms(1);
    return AX_OK;
  }
  if (msg->type != T_VAL) return AX_OK;
  ax_actor_stats st;
  if (ax_actor_stats_get(g->sys, ax_self(self), &st) == AX_OK && st.queued > atomic_load(&g->max_queued))
    atomic_store(&g->max_queued, st.queued);
  uint64_t v;
  memcpy(&v, msg->data, sizeof(v));
  uint64_t i = atomic_load(&g->got);
  if (i < 4096) g->vals[i] = v;
  if (i && i < 4096 && g->vals[i - 1] >= v) atomic_fetch_add(&g->misordered, 1);
  atomic_fetch_add(&g->got, 1);
  return AX_OK;
}

static ax_err ptr_init(ax_actor *self, void *state, const void *arg, size_t len) {
  memcpy(state, arg, len);
  return AX_OK;
}

#define GATE_SPEC(NAME, POLICY)                                                                  \
  static const ax_actor_spec NAME = {.name = #NAME, .behaviour = gate_behaviour,                 \
                                     .state_size = sizeof(void *), .init = ptr_init,             \
                                     .mailbox_limit = LIMIT, .overflow = POLICY}
GATE_SPEC(fail_spec, AX_OVERFLOW_FAIL);
GATE_SPEC(dropnew_spec, AX_OVERFLOW_DROP_NEW);
GATE_SPEC(dropold_spec, AX_OVERFLOW_DROP_OLD);
GATE_SPEC(bp_spec, AX_OVERFLOW_BACKPRESSURE);

static ax_system *sys_new(void) {
  ax_system_config cfg;
  ax_system_config_init(&cfg);
  cfg.workers = 2;
  ax_system *sys;
  CU_ASSERT_EQUAL_FATAL(ax_system_new(&cfg, &sys), AX_OK);
  return sys;
}

/* Spawns a gated receiver and blocks it in its first message. */
static ax_pid blocked_rx(ax_system *sys, const ax_actor_spec *spec, gate_rx *g) {
  memset(g, 0, sizeof(*g));
  g->sys = sys;
  ax_pid p;
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, spec, &g, sizeof(g), &p), AX_OK);
  CU_ASSERT_EQUAL_FATAL(ax_system_send(sys, p, T_BLOCK, NULL, 0), AX_OK);
  for (int i = 0; i < 10000 && !atomic_load(&g->blocked); i++) ax_test_sleep_ms(1);
  CU_ASSERT_TRUE_FATAL(atomic_load(&g->blocked));
  return p;
}

static ax_err send_val(ax_system *sys, ax_pid p, uint64_t v) {
  return ax_system_send(sys, p, T_VAL, &v, sizeof(v));
}

static void test_overflow_fail_returns_efull_and_counts(void) {
  ax_system *sys = sys_new();
  static gate_rx g;
  ax_pid p = blocked_rx(sys, &fail_spec, &g);
  for (uint64_t i = 1; i <= LIMIT; i++) CU_ASSERT_EQUAL(send_val(sys, p, i), AX_OK);
  CU_ASSERT_EQUAL(send_val(sys, p, 99), AX_EFULL);
  CU_ASSERT_EQUAL(send_val(sys, p, 100), AX_EFULL);
  ax_actor_stats st;
  CU_ASSERT_EQUAL(ax_actor_stats_get(sys, p, &st), AX_OK);
  CU_ASSERT_EQUAL(st.rejected, 2);
  CU_ASSERT_EQUAL(st.queued, LIMIT);
  atomic_store(&g.open, true);
  CU_ASSERT_TRUE(ax_test_wait_count(&g.got, LIMIT, 10000));
  CU_ASSERT_EQUAL(g.vals[LIMIT - 1], LIMIT);
  CU_ASSERT_EQUAL(atomic_load(&g.misordered), 0);
  CU_ASSERT_EQUAL(send_val(sys, p, 11), AX_OK); /* room again */
  ax_system_free(sys);
}

static void test_overflow_drop_new_discards_newest_and_counts(void) {
  ax_system *sys = sys_new();
  static gate_rx g;
  ax_pid p = blocked_rx(sys, &dropnew_spec, &g);
  for (uint64_t i = 1; i <= LIMIT + 5; i++) CU_ASSERT_EQUAL(send_val(sys, p, i), AX_OK);
  ax_actor_stats st;
  ax_actor_stats_get(sys, p, &st);
  CU_ASSERT_EQUAL(st.dropped_new, 5);
  atomic_store(&g.open, true);
  CU_ASSERT_TRUE(ax_test_wait_count(&g.got, LIMIT, 10000));
  ax_test_sleep_ms(10);
  CU_ASSERT_EQUAL(atomic_load(&g.got), LIMIT);
  CU_ASSERT_EQUAL(g.vals[0], 1);
  CU_ASSERT_EQUAL(g.vals[LIMIT - 1], LIMIT); /* the oldest were kept */
  ax_system_stats ss;
  ax_system_stats_get(sys, &ss);
  CU_ASSERT_EQUAL(ss.dropped, 5);
  ax_system_free(sys);
}

static void test_overflow_drop_old_discards_oldest_and_counts(void) {
  ax_system *sys = sys_new();
  static gate_rx g;
  ax_pid p = blocked_rx(sys, &dropold_spec, &g);
  for (uint64_t i = 1; i <= LIMIT + 5; i++) CU_ASSERT_EQUAL(send_val(sys, p, i), AX_OK);
  atomic_store(&g.open, true);
  CU_ASSERT_TRUE(ax_test_wait_count(&g.got, LIMIT, 10000));
  ax_test_sleep_ms(10);
  CU_ASSERT_EQUAL(atomic_load(&g.got), LIMIT);
  CU_ASSERT_EQUAL(g.vals[0], 6); /* 1..5 dropped */
  CU_ASSERT_EQUAL(g.vals[LIMIT - 1], LIMIT + 5);
  ax_actor_stats st;
  ax_actor_stats_get(sys, p, &st);
  CU_ASSERT_EQUAL(st.dropped_old, 5);
  ax_system_free(sys);
}

/* DROP_OLD bounds memory at the sender: a producer flooding a blocked
 * receiver never leaves more than the limit (plus the documented slack of
 * one per concurrent sender) queued, and the receiver then sees only the
 * newest messages, in order, with every other one counted as dropped. */
enum { FLOOD_LIMIT = 16, FLOOD_N = 100000, FLOOD_SLACK = 1 };
static const ax_actor_spec dropold16_spec = {.name = "dropold16", .behaviour = gate_behaviour,
                                             .state_size = sizeof(void *), .init = ptr_init,
                                             .mailbox_limit = FLOOD_LIMIT,
                                             .overflow = AX_OVERFLOW_DROP_OLD};

static void test_overflow_drop_old_bounds_queue_at_the_sender(void) {
  ax_system *sys = sys_new();
  static gate_rx g;
  ax_pid p = blocked_rx(sys, &dropold16_spec, &g);
  uint32_t max_seen = 0;
  ax_actor_stats st;
  for (uint64_t i = 1; i <= FLOOD_N; i++) {
    CU_ASSERT_EQUAL_FATAL(send_val(sys, p, i), AX_OK);
    if (i % 1000 == 0 || i == FLOOD_N) {
      CU_ASSERT_EQUAL_FATAL(ax_actor_stats_get(sys, p, &st), AX_OK);
      if (st.queued > max_seen) max_seen = st.queued;
    }
  }
  CU_ASSERT(max_seen <= FLOOD_LIMIT + FLOOD_SLACK);
  CU_ASSERT_EQUAL(ax_actor_stats_get(sys, p, &st), AX_OK);
  CU_ASSERT(st.queued <= FLOOD_LIMIT + FLOOD_SLACK);
  CU_ASSERT(st.dropped_old >= FLOOD_N - FLOOD_LIMIT - FLOOD_SLACK);
  atomic_store(&g.open, true);
  /* The newest message always survives: wait for it. */
  for (int i = 0; i < 10000 && (atomic_load(&g.got) == 0 ||
                                g.vals[atomic_load(&g.got) - 1] != FLOOD_N); i++)
    ax_test_sleep_ms(1);
  uint64_t got = atomic_load(&g.got);
  CU_ASSERT(got >= 1 && got <= FLOOD_LIMIT);
  CU_ASSERT_EQUAL(g.vals[got - 1], FLOOD_N);
  CU_ASSERT_EQUAL(g.vals[0], FLOOD_N - got + 1); /* the newest, none missing */
  CU_ASSERT_EQUAL(atomic_load(&g.misordered), 0);
  CU_ASSERT_EQUAL(ax_actor_stats_get(sys, p, &st), AX_OK);
  CU_ASSERT_EQUAL(st.dropped_old, FLOOD_N - got);
  CU_ASSERT_EQUAL(st.queued, 0);
  ax_system_stats ss;
  ax_system_stats_get(sys, &ss);
  CU_ASSERT_EQUAL(ss.dropped, FLOOD_N - got);
  ax_system_free(sys);
}

/* Stress: several threads flood a DROP_OLD receiver that keeps running, so
 * senders' trims race the owner's pops. Per-sender order holds, the queue
 * stays within limit + one per sender, and every message is either
 * delivered or counted as dropped. Bounded to a fixed number of sends. */
enum { STRESS_SENDERS = 3, STRESS_PER = 60000 };
typedef struct stress_rx {
  _Atomic uint64_t got, misordered;
  uint64_t last[STRESS_SENDERS];
} stress_rx;
static ax_err stress_behaviour(ax_actor *self, const ax_msg *msg) {
  stress_rx *g = *(stress_rx **)ax_state(self);
  if (msg->type != T_VAL) return AX_OK;
  uint64_t v;
  memcpy(&v, msg->data, sizeof(v));
  uint64_t who = v >> 32, seq = v & 0xffffffffu;
  if (who < STRESS_SENDERS) {
    if (seq <= g->last[who]) atomic_fetch_add(&g->misordered, 1);
    g->last[who] = seq;
  }
  atomic_fetch_add(&g->got, 1);
  return AX_OK;
}
static const ax_actor_spec stress_spec = {.name = "stress", .behaviour = stress_behaviour,
                                          .state_size = sizeof(void *), .init = ptr_init,
                                          .mailbox_limit = FLOOD_LIMIT,
                                          .overflow = AX_OVERFLOW_DROP_OLD};
typedef struct stress_tx {
  ax_system *sys;
  ax_pid to;
  uint64_t who;
  _Atomic uint32_t max_queued;
  _Atomic uint64_t errors;
} stress_tx;
static void *stress_sender(void *arg) {
  stress_tx *t = arg;
  for (uint64_t i = 1; i <= STRESS_PER; i++) {
    uint64_t v = t->who << 32 | i;
    if (send_val(t->sys, t->to, v) != AX_OK) atomic_fetch_add(&t->errors, 1);
    if (i % 64 == 0) {
      ax_actor_stats st;
      if (ax_actor_stats_get(t->sys, t->to, &st) == AX_OK && st.queued > atomic_load(&t->max_queued))
        atomic_store(&t->max_queued, st.queued);
    }
  }
  return NULL;
}
static bool queue_empty(void *arg) {
  stress_tx *t = arg;
  ax_actor_stats st;
  return ax_actor_stats_get(t->sys, t->to, &st) == AX_OK && st.queued == 0;
}

static void test_overflow_drop_old_stress_senders_race_owner(void) {
  ax_system *sys = sys_new();
  static stress_rx g;
  memset(&g, 0, sizeof(g));
  stress_rx *gp = &g;
  ax_pid p;
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &stress_spec, &gp, sizeof(gp), &p), AX_OK);
  static stress_tx tx[STRESS_SENDERS];
  pthread_t th[STRESS_SENDERS];
  for (int i = 0; i < STRESS_SENDERS; i++) {
    memset(&tx[i], 0, sizeof(tx[i]));
    tx[i].sys = sys;
    tx[i].to = p;
    tx[i].who = (uint64_t)i;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, stress_sender, &tx[i]), 0);
  }
  for (int i = 0; i < STRESS_SENDERS; i++) pthread_join(th[i], NULL);
  CU_ASSERT_TRUE(ax_test_wait(queue_empty, &tx[0], 10000));
  ax_actor_stats st;
  CU_ASSERT_EQUAL(ax_actor_stats_get(sys, p, &st), AX_OK);
  for (int i = 0; i < STRESS_SENDERS; i++) {
    CU_ASSERT_EQUAL(atomic_load(&tx[i].errors), 0);
    if (atomic_load(&tx[i].max_queued) > FLOOD_LIMIT + STRESS_SENDERS)
      fprintf(stderr, "max queued %u\n", atomic_load(&tx[i].max_queued));
    CU_ASSERT(atomic_load(&tx[i].max_queued) <= FLOOD_LIMIT + STRESS_SENDERS);
  }
  CU_ASSERT_EQUAL(atomic_load(&g.misordered), 0);
  CU_ASSERT_EQUAL(atomic_load(&g.got) + st.dropped_old, (uint64_t)STRESS_SENDERS * STRESS_PER);
  ax_system_free(sys);
}

/* Exit signals to a trapping DROP_OLD receiver while senders trim its lane:
 * every exit arrives (a runtime message is never dropped) and, under TSan,
 * the placeholder's flags are never written while a trimming sender reads
 * them (found in review: the owner marked it without the lane lock). */
enum { XT_EXITS = 2000, XT_SENDS = 40000 };
static _Atomic uint64_t xt_exits, xt_user;
static ax_err xt_init(ax_actor *self, void *state, const void *arg, size_t len) {
  return ax_trap_exit(self, true);
}
static ax_err xt_behaviour(ax_actor *self, const ax_msg *msg) {
  atomic_fetch_add(msg->type == AX_MSG_EXIT ? &xt_exits : &xt_user, 1);
  return AX_OK;
}
static const ax_actor_spec xt_spec = {.name = "xt",
                                      .behaviour = xt_behaviour,
                                      .init = xt_init,
                                      .mailbox_limit = 4,
                                      .overflow = AX_OVERFLOW_DROP_OLD};
typedef struct xt_arg {
  ax_system *sys;
  ax_pid to;
} xt_arg;
static void *xt_sender(void *p) {
  xt_arg *a = p;
  for (uint64_t i = 0; i < XT_SENDS; i++) (void)ax_system_send(a->sys, a->to, AX_MSG_USER, &i, sizeof i);
  return NULL;
}
static void *xt_exiter(void *p) {
  xt_arg *a = p;
  for (int i = 0; i < XT_EXITS; i++) (void)ax_system_exit(a->sys, a->to, AX_REASON_USER);
  return NULL;
}
static void test_overflow_drop_old_trapped_exits_while_senders_trim(void) {
  ax_system *sys = sys_new();
  atomic_store(&xt_exits, 0);
  atomic_store(&xt_user, 0);
  xt_arg a = {.sys = sys};
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &xt_spec, NULL, 0, &a.to), AX_OK);
  pthread_t th[3];
  pthread_create(&th[0], NULL, xt_sender, &a);
  pthread_create(&th[1], NULL, xt_sender, &a);
  pthread_create(&th[2], NULL, xt_exiter, &a);
  for (int i = 0; i < 3; i++) pthread_join(th[i], NULL);
  CU_ASSERT_TRUE(ax_test_wait_count(&xt_exits, XT_EXITS, 20000));
  CU_ASSERT_EQUAL(atomic_load(&xt_exits), XT_EXITS);
  ax_system_free(sys);
}

static void test_overflow_backpressure_non_actor_sender_gets_eagain(void) {
  ax_system *sys = sys_new();
  static gate_rx g;
  ax_pid p = blocked_rx(sys, &bp_spec, &g);
  for (uint64_t i = 1; i <= LIMIT; i++) CU_ASSERT_EQUAL(send_val(sys, p, i), AX_OK);
  CU_ASSERT_EQUAL(send_val(sys, p, 11), AX_EAGAIN);
  ax_actor_stats st;
  ax_actor_stats_get(sys, p, &st);
  CU_ASSERT_EQUAL(st.rejected, 1);
  atomic_store(&g.open, true);
  CU_ASSERT_TRUE(ax_test_wait_count(&g.got, LIMIT, 10000));
  ax_system_free(sys);
}

/* A backpressure actor filled to its limit by a non-actor sender while it
 * was blocked, which on its first T_VAL sends itself a T_TICK: the messages
 * its runs took are out of the lane, so the lane has room and the self-send
 * is admitted (AX_OK), not refused as over the limit. (A variant that
 * subtracted a run's messages from queued only at the run's end failed
 * this when admission judged by queued alone.) */
static _Atomic int self_send_err = -1;
static _Atomic uint64_t self_ticks;

static ax_err selfsend_behaviour(ax_actor *self, const ax_msg *msg) {
  if (msg->type == T_TICK) {
    atomic_fetch_add(&self_ticks, 1);
    return AX_OK;
  }
  if (msg->type == T_VAL) {
    uint64_t v;
    memcpy(&v, msg->data, sizeof(v));
    if (v == 1) atomic_store(&self_send_err, (int)ax_send(self, ax_self(self), T_TICK, NULL, 0));
  }
  return gate_behaviour(self, msg);
}
static const ax_actor_spec selfsend_spec = {.name = "selfsend", .behaviour = selfsend_behaviour,
                                            .state_size = sizeof(void *), .init = ptr_init,
                                            .mailbox_limit = LIMIT,
                                            .overflow = AX_OVERFLOW_BACKPRESSURE};

static void test_overflow_backpressure_self_send_after_taking_is_admitted(void) {
  ax_system *sys = sys_new();
  static gate_rx g;
  atomic_store(&self_send_err, -1);
  atomic_store(&self_ticks, 0);
  ax_pid p = blocked_rx(sys, &selfsend_spec, &g);
  /* T_BLOCK was taken: the lane has room for exactly LIMIT more. */
  for (uint64_t i = 1; i <= LIMIT; i++) CU_ASSERT_EQUAL(send_val(sys, p, i), AX_OK);
  CU_ASSERT_EQUAL(send_val(sys, p, 99), AX_EAGAIN);
  ax_actor_stats st;
  CU_ASSERT_EQUAL(ax_actor_stats_get(sys, p, &st), AX_OK);
  CU_ASSERT_EQUAL(st.queued, LIMIT);
  atomic_store(&g.open, true);
  CU_ASSERT_TRUE(ax_test_wait_count(&g.got, LIMIT, 10000));
  CU_ASSERT_TRUE(ax_test_wait_count(&self_ticks, 1, 10000));
  CU_ASSERT_EQUAL(atomic_load(&self_send_err), AX_OK);
  CU_ASSERT_EQUAL(ax_actor_stats_get(sys, p, &st), AX_OK);
  CU_ASSERT_EQUAL(st.queued, 0);
  ax_system_free(sys);
}

/* A producer actor sends bursts of BURST values per tick to a receiver. */
enum { BURST = 20, TOTAL = 2000 };
typedef struct producer {
  ax_pid rx;
  uint64_t next;
  _Atomic uint64_t *sent;
} producer;

static ax_err producer_behaviour(ax_actor *self, const ax_msg *msg) {
  producer *st = ax_state(self);
  for (int i = 0; i < BURST && st->next < TOTAL; i++) {
    uint64_t v = ++st->next;
    ax_err e = ax_send(self, st->rx, T_VAL, &v, sizeof(v));
    if (e != AX_OK) return e;
    atomic_fetch_add(st->sent, 1);
  }
  return st->next < TOTAL ? ax_send(self, ax_self(self), T_TICK, NULL, 0) : AX_OK;
}
static const ax_actor_spec producer_spec = {.name = "producer", .behaviour = producer_behaviour,
                                            .state_size = sizeof(producer), .init = ptr_init};

static void test_overflow_backpressure_mutes_actor_sender_and_loses_nothing(void) {
  ax_system *sys = sys_new();
  static gate_rx g;
  ax_pid rx = blocked_rx(sys, &bp_spec, &g);
  _Atomic uint64_t sent = 0;
  producer init = {.rx = rx, .sent = &sent};
  ax_pid prod;
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &producer_spec, &init, sizeof(init), &prod), AX_OK);
  ax_system_send(sys, prod, T_TICK, NULL, 0);
  CU_ASSERT_TRUE(ax_test_wait_count(&sent, BURST, 10000));
  ax_test_sleep_ms(50); /* a muted producer sends nothing more meanwhile */
  CU_ASSERT_EQUAL(atomic_load(&sent), BURST);
  ax_actor_stats st;
  ax_actor_stats_get(sys, rx, &st);
  CU_ASSERT_EQUAL(st.mutes, 1);
  atomic_store(&g.open, true);
  CU_ASSERT_TRUE(ax_test_wait_count(&g.got, TOTAL, 60000));
  CU_ASSERT_EQUAL(atomic_load(&g.got), TOTAL);
  CU_ASSERT_EQUAL(atomic_load(&g.misordered), 0);
  /* memory stayed bounded: never more than a burst past the limit */
  CU_ASSERT_TRUE(atomic_load(&g.max_queued) <= LIMIT + BURST);
  ax_system_free(sys);
}

/* Two bounded actors bounce balls at each other, each ball spawning two,
 * until a budget is spent: both mailboxes overflow, both mute, neither may
 * deadlock, and every ball is received. */
typedef struct cycle_shared {
  _Atomic uint64_t budget;
  _Atomic uint64_t received;
  ax_pid peer[2];
} cycle_shared;

enum { BALLS = 20000 };

static ax_err cycle_behaviour(ax_actor *self, const ax_msg *msg) {
  cycle_shared *sh = *(cycle_shared **)ax_state(self);
  atomic_fetch_add(&sh->received, 1);
  ax_pid other = ax_pid_eq(ax_self(self), sh->peer[0]) ? sh->peer[1] : sh->peer[0];
  for (int i = 0; i < 2; i++) {
    if (atomic_fetch_add(&sh->budget, 1) >= BALLS) break;
    ax_err e = ax_send(self, other, T_BALL, NULL, 0);
    if (e != AX_OK) return e;
  }
  return AX_OK;
}
static const ax_actor_spec cycle_spec = {.name = "cycle", .behaviour = cycle_behaviour,
                                         .state_size = sizeof(void *), .init = ptr_init,
                                         .mailbox_limit = 8};

static void test_overflow_backpressure_cycle_does_not_deadlock(void) {
  ax_system *sys = sys_new();
  static cycle_shared sh;
  memset(&sh, 0, sizeof(sh));
  cycle_shared *shp = &sh;
  for (int i = 0; i < 2; i++)
    CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &cycle_spec, &shp, sizeof(shp), &sh.peer[i]), AX_OK);
  CU_ASSERT_EQUAL(ax_system_send(sys, sh.peer[0], T_BALL, NULL, 0), AX_OK);
  CU_ASSERT_TRUE(ax_test_wait_count(&sh.received, BALLS + 1, 60000));
  CU_ASSERT_EQUAL(atomic_load(&sh.received), BALLS + 1);
  ax_actor_stats a, b;
  ax_actor_stats_get(sys, sh.peer[0], &a);
  ax_actor_stats_get(sys, sh.peer[1], &b);
  CU_ASSERT_EQUAL(a.queued + b.queued, 0);
  ax_system_free(sys);
}

/* A FAIL lane whose owner subtracts a run's messages from its count only at
 * the run's end (publishing how many it took meanwhile): an outside sender
 * racing it never gets more than LIMIT messages into the lane (accepted
 * minus delivered, both as this thread sees them, stays within LIMIT plus
 * the one being delivered), every accepted message is delivered in order,
 * and the lane is not refused for long (the sender's refusals end once the
 * receiver drains). */
static void test_overflow_fail_lane_bound_holds_while_owner_drains(void) {
  ax_system *sys = sys_new();
  static gate_rx g;
  memset(&g, 0, sizeof(g));
  g.sys = sys;
  atomic_store(&g.open, true);
  ax_pid p;
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &fail_spec, &(gate_rx *){&g}, sizeof(void *), &p),
                        AX_OK);
  enum { VALS = 4000 };
  uint64_t accepted = 0, refused = 0, over = 0, bad = 0;
  for (uint64_t v = 1, tries = 0; accepted < VALS && tries < 50000000; tries++) {
    ax_err e = send_val(sys, p, v);
    if (e == AX_OK) {
      accepted++;
      v++;
      if (accepted - atomic_load(&g.got) > LIMIT + 1) over++;
    } else if (e == AX_EFULL) {
      refused++;
    } else {
      bad++;
    }
  }
  CU_ASSERT_EQUAL(accepted, VALS);
  CU_ASSERT_EQUAL(over, 0);
  CU_ASSERT_EQUAL(bad, 0);
  CU_ASSERT_TRUE(ax_test_wait_count(&g.got, VALS, 10000));
  CU_ASSERT_EQUAL(atomic_load(&g.misordered), 0);
  /* (Not max_queued: a refused send's add counts until it is undone, so
   * the depth read mid-run may pass LIMIT by the refusals in flight.) */
  ax_actor_stats st;
  CU_ASSERT_EQUAL(ax_actor_stats_get(sys, p, &st), AX_OK);
  CU_ASSERT_EQUAL(st.queued, 0);
  CU_ASSERT_EQUAL(st.rejected, refused);
  ax_system_free(sys);
}

int main(void) {
  CU_pSuite s = ax_test_suite("actor.overflow");
  CU_ADD_TEST(s, test_overflow_fail_lane_bound_holds_while_owner_drains);
  CU_ADD_TEST(s, test_overflow_fail_returns_efull_and_counts);
  CU_ADD_TEST(s, test_overflow_drop_new_discards_newest_and_counts);
  CU_ADD_TEST(s, test_overflow_drop_old_discards_oldest_and_counts);
  CU_ADD_TEST(s, test_overflow_drop_old_bounds_queue_at_the_sender);
  CU_ADD_TEST(s, test_overflow_drop_old_stress_senders_race_owner);
  CU_ADD_TEST(s, test_overflow_drop_old_trapped_exits_while_senders_trim);
  CU_ADD_TEST(s, test_overflow_backpressure_non_actor_sender_gets_eagain);
  CU_ADD_TEST(s, test_overflow_backpressure_mutes_actor_sender_and_loses_nothing);
  CU_ADD_TEST(s, test_overflow_backpressure_cycle_does_not_deadlock);
  CU_ADD_TEST(s, test_overflow_backpressure_self_send_after_taking_is_admitted);
  return ax_test_run();
}
