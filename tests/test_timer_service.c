/* Tests for the timer service with an injected manual clock (no real
 * sleeps decide an outcome): send-after, cancel against an already-queued
 * expiry, timers of stopped actors, interval skip/keep, same-deadline order,
 * request timeout versus reply, receive timeout. */
#include <axon.h>
#include <string.h>

#include "support/testutil.h"
#include "support/timer_clock.h"

enum { T_ARM = AX_MSG_USER, T_TICK, T_BLOCK, T_SYNC, T_ASK, T_ANSWER, T_STOPME, T_SETRECV };

static uint64_t fired(ax_system *sys) {
  ax_system_stats st;
  ax_system_stats_get(sys, &st);
  return st.timers_fired;
}

/* ---- a timer user: arms on request, counts ticks, can block and cancel ---- */
typedef struct tshared {
  _Atomic uint64_t ticks;
  _Atomic uint64_t syncs;
  _Atomic bool gate;
  _Atomic bool blocked;
  _Atomic int cancel_result;
  _Atomic uint64_t order_bad;
  _Atomic uint64_t last_seq;
  _Atomic uint64_t timeouts;
  _Atomic int32_t flags_seen;
} tshared;

typedef struct arm_req {
  uint32_t delay;
  uint32_t period; /* 0: one-shot */
  uint32_t flags;
  uint32_t count;  /* how many timers */
  ax_pid to;       /* AX_PID_NONE: self */
} arm_req;

typedef struct tstate {
  tshared *sh;
  ax_timer last;
} tstate;

static ax_err tuser(ax_actor *self, const ax_msg *msg) {
  tstate *st = ax_state(self);
  tshared *sh = st->sh;
  switch (msg->type) {
  case T_ARM: {
    arm_req r;
    memcpy(&r, msg->data, sizeof(r));
    ax_pid to = ax_pid_is_none(r.to) ? ax_self(self) : r.to;
    for (uint32_t i = 0; i < r.count; i++) {
      uint64_t seq = i + 1;
      ax_err e = r.period ? ax_send_interval(self, r.period, r.flags, to, T_TICK, &seq, sizeof(seq), &st->last)
                          : ax_send_after(self, r.delay, to, T_TICK, &seq, sizeof(seq), &st->last);
      if (e != AX_OK) return e;
    }
    return AX_OK;
  }
  case T_TICK: {
    uint64_t seq;
    memcpy(&seq, msg->data, sizeof(seq));
    if (seq <= atomic_load(&sh->last_seq)) atomic_fetch_add(&sh->order_bad, 1);
    atomic_store(&sh->last_seq, seq);
    atomic_store(&sh->flags_seen, (int32_t)msg->flags);
    atomic_fetch_add(&sh->ticks, 1);
    return AX_OK;
  }
  case T_BLOCK:
    atomic_store(&sh->blocked, true);
    while (!atomic_load(&sh->gate)) ax_test_sleep_ms(1);
    atomic_store(&sh->cancel_result, ax_timer_cancel(self, st->last));
    return AX_OK;
  case T_SYNC: atomic_fetch_add(&sh->syncs, 1); return AX_OK;
  case T_STOPME: return ax_exit(self, ax_self(self), AX_REASON_NORMAL);
  case T_SETRECV: {
    uint32_t ms;
    memcpy(&ms, msg->data, sizeof(ms));
    return ax_set_receive_timeout(self, ms);
  }
  case AX_MSG_TIMEOUT: atomic_fetch_add(&sh->timeouts, 1); return AX_OK;
  default: return AX_OK;
  }
}

static ax_err tuser_init(ax_actor *self, void *state, const void *arg, size_t len) {
  memcpy(&((tstate *)state)->sh, arg, sizeof(tshared *));
  return AX_OK;
}
static const ax_actor_spec tuser_spec = {.name = "tuser", .behaviour = tuser,
                                         .state_size = sizeof(tstate), .init = tuser_init};

static ax_pid spawn_tuser(ax_system *sys, tshared *sh) {
  memset(sh, 0, sizeof(*sh));
  ax_pid p;
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &tuser_spec, &sh, sizeof(sh), &p), AX_OK);
  return p;
}

static void arm(ax_system *sys, ax_pid p, arm_req r) {
  CU_ASSERT_EQUAL(ax_system_send(sys, p, T_ARM, &r, sizeof(r)), AX_OK);
}

/* Sends T_SYNC and waits for it: everything queued before it was handled. */
static void sync_with(ax_system *sys, ax_pid p, tshared *sh) {
  uint64_t want = atomic_load(&sh->syncs) + 1;
  ax_system_send(sys, p, T_SYNC, NULL, 0);
  CU_ASSERT_TRUE(ax_test_wait_count(&sh->syncs, want, 10000));
}

static void test_timer_send_after_fires_at_deadline_not_before(void) {
  ax_system *sys = timer_clock_system(2);
  static tshared sh;
  ax_pid p = spawn_tuser(sys, &sh);
  arm(sys, p, (arm_req){.delay = 100, .count = 1});
  sync_with(sys, p, &sh);
  timer_clock_advance(sys, 99);
  sync_with(sys, p, &sh);
  ax_test_sleep_ms(20);
  sync_with(sys, p, &sh);
  CU_ASSERT_EQUAL(atomic_load(&sh.ticks), 0); /* never early */
  timer_clock_advance(sys, 1);
  CU_ASSERT_TRUE(ax_test_wait_count(&sh.ticks, 1, 10000));
  CU_ASSERT_EQUAL(atomic_load(&sh.flags_seen) & AX_MSGF_TIMER, AX_MSGF_TIMER);
  CU_ASSERT_TRUE(ax_test_wait(timer_pending_zero, sys, 10000));
  ax_system_free(sys);
}

static void test_timer_cancel_wins_over_queued_expiry(void) {
  ax_system *sys = timer_clock_system(2);
  static tshared sh;
  ax_pid p = spawn_tuser(sys, &sh);
  arm(sys, p, (arm_req){.delay = 10, .count = 1});
  sync_with(sys, p, &sh);
  ax_system_send(sys, p, T_BLOCK, NULL, 0);
  for (int i = 0; i < 10000 && !atomic_load(&sh.blocked); i++) ax_test_sleep_ms(1);
  uint64_t before = fired(sys);
  timer_clock_advance(sys, 20); /* the expiry is queued behind the blocked behaviour */
  for (int i = 0; i < 10000 && fired(sys) == before; i++) ax_test_sleep_ms(1);
  CU_ASSERT_EQUAL(fired(sys), before + 1);
  atomic_store(&sh.gate, true); /* now the owner cancels */
  sync_with(sys, p, &sh);
  CU_ASSERT_EQUAL(atomic_load(&sh.cancel_result), AX_OK);
  CU_ASSERT_EQUAL(atomic_load(&sh.ticks), 0);
  ax_system_free(sys);
}

static void test_timer_cancel_of_unknown_timer_is_enotfound(void) {
  ax_system *sys = timer_clock_system(2);
  static tshared sh;
  ax_pid p = spawn_tuser(sys, &sh);
  arm(sys, p, (arm_req){.delay = 5, .count = 1});
  sync_with(sys, p, &sh);
  timer_clock_advance(sys, 5);
  CU_ASSERT_TRUE(ax_test_wait_count(&sh.ticks, 1, 10000));
  atomic_store(&sh.gate, true);
  ax_system_send(sys, p, T_BLOCK, NULL, 0); /* cancels the fired timer */
  sync_with(sys, p, &sh);
  CU_ASSERT_EQUAL(atomic_load(&sh.cancel_result), AX_ENOTFOUND);
  ax_system_free(sys);
}

static void test_timer_stopped_actor_timers_vanish(void) {
  ax_system *sys = timer_clock_system(2);
  static tshared owner, target;
  ax_pid o = spawn_tuser(sys, &owner), t = spawn_tuser(sys, &target);
  arm(sys, o, (arm_req){.delay = 50, .count = 10, .to = t});
  arm(sys, o, (arm_req){.period = 10, .count = 3, .to = t});
  sync_with(sys, o, &owner);
  ax_system_send(sys, o, T_STOPME, NULL, 0);
  for (int i = 0; i < 10000; i++) {
    ax_actor_stats st;
    if (ax_actor_stats_get(sys, o, &st) == AX_ENOACTOR) break;
    ax_test_sleep_ms(1);
  }
  timer_clock_advance(sys, 100);
  CU_ASSERT_TRUE(ax_test_wait(timer_pending_zero, sys, 10000));
  timer_clock_advance(sys, 100);
  sync_with(sys, t, &target);
  CU_ASSERT_EQUAL(atomic_load(&target.ticks), 0);
  ax_system_free(sys);
}

static void test_timer_interval_skips_missed_ticks_by_default(void) {
  ax_system *sys = timer_clock_system(2);
  static tshared sh;
  ax_pid p = spawn_tuser(sys, &sh);
  arm(sys, p, (arm_req){.period = 10, .count = 1});
  sync_with(sys, p, &sh);
  timer_clock_advance(sys, 10);
  CU_ASSERT_TRUE(ax_test_wait_count(&sh.ticks, 1, 10000));
  timer_clock_advance(sys, 45); /* now 55 past start: ticks at 20..50 missed */
  CU_ASSERT_TRUE(ax_test_wait_count(&sh.ticks, 2, 10000));
  ax_test_sleep_ms(20);
  sync_with(sys, p, &sh);
  CU_ASSERT_EQUAL(atomic_load(&sh.ticks), 2);
  timer_clock_advance(sys, 5); /* 60: the next period boundary */
  CU_ASSERT_TRUE(ax_test_wait_count(&sh.ticks, 3, 10000));
  ax_system_free(sys);
}

static void test_timer_interval_keep_missed_delivers_each_tick(void) {
  ax_system *sys = timer_clock_system(2);
  static tshared sh;
  ax_pid p = spawn_tuser(sys, &sh);
  arm(sys, p, (arm_req){.period = 10, .count = 1, .flags = AX_TIMER_KEEP_MISSED});
  sync_with(sys, p, &sh);
  timer_clock_advance(sys, 55); /* due: 10, 20, 30, 40, 50 */
  CU_ASSERT_TRUE(ax_test_wait_count(&sh.ticks, 5, 10000));
  ax_test_sleep_ms(20);
  sync_with(sys, p, &sh);
  CU_ASSERT_EQUAL(atomic_load(&sh.ticks), 5);
  ax_system_free(sys);
}

static void test_timer_same_deadline_fires_in_set_order(void) {
  ax_system *sys = timer_clock_system(2);
  static tshared sh;
  ax_pid p = spawn_tuser(sys, &sh);
  arm(sys, p, (arm_req){.delay = 30, .count = 500});
  sync_with(sys, p, &sh);
  timer_clock_advance(sys, 30);
  CU_ASSERT_TRUE(ax_test_wait_count(&sh.ticks, 500, 10000));
  CU_ASSERT_EQUAL(atomic_load(&sh.order_bad), 0);
  CU_ASSERT_EQUAL(atomic_load(&sh.last_seq), 500);
  ax_system_free(sys);
}

/* ---- requests with timeouts ---- */
typedef struct rshared {
  _Atomic uint64_t replies, timeouts, held;
  _Atomic bool hold; /* the server keeps requests unanswered */
} rshared;

typedef struct server_state {
  rshared *sh;
  ax_pid waiting_from;
  ax_ref waiting_ref;
} server_state;

static ax_err server(ax_actor *self, const ax_msg *msg) {
  server_state *st = ax_state(self);
  if (msg->type == T_ASK && (msg->flags & AX_MSGF_REQUEST)) {
    if (!atomic_load(&st->sh->hold)) return ax_reply(self, msg, T_ANSWER, NULL, 0);
    atomic_fetch_add(&st->sh->held, 1);
    st->waiting_from = msg->from;
    st->waiting_ref = msg->ref;
  } else if (msg->type == T_ANSWER) { /* answer the held request now */
    ax_msg req = {.type = T_ASK, .flags = AX_MSGF_REQUEST, .from = st->waiting_from,
                  .ref = st->waiting_ref};
    return ax_reply(self, &req, T_ANSWER, NULL, 0);
  }
  return AX_OK;
}

typedef struct client_state {
  rshared *sh;
  ax_pid server;
  ax_ref ref;
} client_state;

static ax_err client(ax_actor *self, const ax_msg *msg) {
  client_state *st = ax_state(self);
  if (msg->type == T_ASK) {
    uint32_t timeout;
    memcpy(&timeout, msg->data, sizeof(timeout));
    return ax_request(self, st->server, T_ASK, NULL, 0, timeout, &st->ref);
  }
  if (msg->type == T_ANSWER && (msg->flags & AX_MSGF_REPLY) && msg->ref == st->ref)
    atomic_fetch_add(&st->sh->replies, 1);
  if (msg->type == AX_MSG_TIMEOUT && msg->ref == st->ref) atomic_fetch_add(&st->sh->timeouts, 1);
  return AX_OK;
}

static ax_err copy_init(ax_actor *self, void *state, const void *arg, size_t len) {
  memcpy(state, arg, len);
  return AX_OK;
}
static const ax_actor_spec server_spec = {.name = "server", .behaviour = server,
                                          .state_size = sizeof(server_state), .init = copy_init};
static const ax_actor_spec client_spec = {.name = "client", .behaviour = client,
                                          .state_size = sizeof(client_state), .init = copy_init};

/* Spawns a server and a client of it; returns the server, *cli the client. */
static ax_pid spawn_pair(ax_system *sys, rshared *sh, ax_pid *cli) {
  server_state ss = {.sh = sh};
  client_state cs = {.sh = sh};
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &server_spec, &ss, sizeof(ss), &cs.server), AX_OK);
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &client_spec, &cs, sizeof(cs), cli), AX_OK);
  return cs.server;
}

static void ask(ax_system *sys, ax_pid c, uint32_t timeout) {
  ax_system_send(sys, c, T_ASK, &timeout, sizeof(timeout));
}

static void test_timer_request_timeout_then_late_reply_is_dropped(void) {
  ax_system *sys = timer_clock_system(2);
  static rshared sh;
  memset(&sh, 0, sizeof(sh));
  atomic_store(&sh.hold, true);
  ax_pid cli, srv = spawn_pair(sys, &sh, &cli);
  ask(sys, cli, 100);
  CU_ASSERT_TRUE(ax_test_wait_count(&sh.held, 1, 10000));
  timer_clock_advance(sys, 100);
  CU_ASSERT_TRUE(ax_test_wait_count(&sh.timeouts, 1, 10000));
  ax_system_send(sys, srv, T_ANSWER, NULL, 0); /* too late */
  for (int i = 0; i < 10000; i++) {
    ax_system_stats st;
    ax_system_stats_get(sys, &st);
    if (st.late_replies) break;
    ax_test_sleep_ms(1);
  }
  ax_system_stats st;
  ax_system_stats_get(sys, &st);
  CU_ASSERT_EQUAL(st.late_replies, 1);
  CU_ASSERT_EQUAL(atomic_load(&sh.replies), 0);
  ax_system_free(sys);
}

static void test_timer_request_reply_before_timeout_cancels_it(void) {
  ax_system *sys = timer_clock_system(2);
  static rshared sh;
  memset(&sh, 0, sizeof(sh));
  ax_pid cli;
  spawn_pair(sys, &sh, &cli);
  ask(sys, cli, 100);
  CU_ASSERT_TRUE(ax_test_wait_count(&sh.replies, 1, 10000));
  timer_clock_advance(sys, 200);
  CU_ASSERT_TRUE(ax_test_wait(timer_pending_zero, sys, 10000));
  ax_test_sleep_ms(10);
  CU_ASSERT_EQUAL(atomic_load(&sh.timeouts), 0);
  ax_system_free(sys);
}

/* Replies and timeouts racing: each request gets exactly one of them. */
static void test_timer_request_reply_or_timeout_never_both(void) {
  ax_system *sys = timer_clock_system(2);
  static rshared sh;
  memset(&sh, 0, sizeof(sh));
  ax_pid cli;
  spawn_pair(sys, &sh, &cli);
  enum { N = 300 };
  for (int i = 0; i < N; i++) {
    ask(sys, cli, 1);
    timer_clock_advance(sys, 1); /* the timeout races with the immediate reply */
    for (int k = 0; k < 10000 && atomic_load(&sh.replies) + atomic_load(&sh.timeouts) < (uint64_t)i + 1; k++)
      ax_test_sleep_ms(1);
  }
  timer_clock_advance(sys, 10);
  ax_test_sleep_ms(20);
  CU_ASSERT_EQUAL(atomic_load(&sh.replies) + atomic_load(&sh.timeouts), N);
  ax_system_stats st;
  ax_system_stats_get(sys, &st);
  CU_ASSERT_EQUAL(st.late_replies, atomic_load(&sh.timeouts));
  ax_system_free(sys);
}

static void test_timer_receive_timeout_fires_after_silence(void) {
  ax_system *sys = timer_clock_system(2);
  static tshared sh;
  ax_pid p = spawn_tuser(sys, &sh);
  uint32_t ms = 100;
  ax_system_send(sys, p, T_SETRECV, &ms, sizeof(ms));
  sync_with(sys, p, &sh);
  timer_clock_advance(sys, 60);
  sync_with(sys, p, &sh); /* activity at +60 */
  timer_clock_advance(sys, 60);       /* +120: silence only since +60 */
  ax_test_sleep_ms(20);
  sync_with(sys, p, &sh);
  CU_ASSERT_EQUAL(atomic_load(&sh.timeouts), 0);
  timer_clock_advance(sys, 130); /* +250: more than 100 ms of silence */
  CU_ASSERT_TRUE(ax_test_wait_count(&sh.timeouts, 1, 10000));
  ms = AX_INFINITY;
  ax_system_send(sys, p, T_SETRECV, &ms, sizeof(ms));
  sync_with(sys, p, &sh);
  uint64_t t = atomic_load(&sh.timeouts);
  timer_clock_advance(sys, 1000);
  ax_test_sleep_ms(20);
  sync_with(sys, p, &sh);
  CU_ASSERT_EQUAL(atomic_load(&sh.timeouts), t);
  ax_system_free(sys);
}

/* ---- payload lengths near SIZE_MAX (issue 9 item 4) ---- */
enum { T_HUGE = T_SETRECV + 1, T_GOT };

typedef struct huge_shared {
  _Atomic uint64_t accepted; /* calls that returned AX_OK */
  _Atomic uint64_t bad_err;  /* errors other than AX_ENOMEM / AX_EINVAL */
  _Atomic uint64_t got;      /* T_GOT messages delivered */
  _Atomic uint64_t done;
} huge_shared;

static ax_err huge_actor(ax_actor *self, const ax_msg *msg) {
  huge_shared *sh = *(huge_shared **)ax_state(self);
  if (msg->type == T_GOT) {
    atomic_fetch_add(&sh->got, 1);
    return AX_OK;
  }
  if (msg->type != T_HUGE) return AX_OK;
  static const char small[16];
  /* Every length whose header + payload sum wraps, and then some. */
  for (size_t k = 0; k <= 1024; k++) {
    size_t len = SIZE_MAX - k;
    ax_err e[3] = {ax_send_after(self, 0, ax_self(self), T_GOT, small, len, NULL),
                   ax_send_interval(self, 1, 0, ax_self(self), T_GOT, small, len, NULL),
                   ax_send(self, ax_self(self), T_GOT, small, len)};
    for (int i = 0; i < 3; i++) {
      if (e[i] == AX_OK) atomic_fetch_add(&sh->accepted, 1);
      else if (e[i] != AX_ENOMEM && e[i] != AX_EINVAL) atomic_fetch_add(&sh->bad_err, 1);
    }
  }
  atomic_fetch_add(&sh->done, 1);
  return AX_OK;
}
static const ax_actor_spec huge_spec = {.name = "huge", .behaviour = huge_actor,
                                        .state_size = sizeof(void *), .init = tuser_init};

static void test_timer_payload_near_size_max_is_refused(void) {
  ax_system *sys = timer_clock_system(2);
  static huge_shared sh;
  memset(&sh, 0, sizeof(sh));
  huge_shared *shp = &sh;
  ax_pid p;
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &huge_spec, &shp, sizeof(shp), &p), AX_OK);
  CU_ASSERT_EQUAL(ax_system_send(sys, p, T_HUGE, NULL, 0), AX_OK);
  CU_ASSERT_TRUE(ax_test_wait_count(&sh.done, 1, 10000));
  CU_ASSERT_EQUAL(atomic_load(&sh.accepted), 0);
  CU_ASSERT_EQUAL(atomic_load(&sh.bad_err), 0);
  timer_clock_advance(sys, 1000);
  CU_ASSERT_TRUE(ax_test_wait(timer_pending_zero, sys, 10000));
  ax_test_sleep_ms(20); /* a wrongly queued expiry would have a chance to arrive */
  CU_ASSERT_EQUAL(atomic_load(&sh.got), 0);
  CU_ASSERT_EQUAL(fired(sys), 0);
  ax_system_free(sys);
}

int main(void) {
  CU_pSuite s = ax_test_suite("timer.service");
  CU_ADD_TEST(s, test_timer_send_after_fires_at_deadline_not_before);
  CU_ADD_TEST(s, test_timer_cancel_wins_over_queued_expiry);
  CU_ADD_TEST(s, test_timer_cancel_of_unknown_timer_is_enotfound);
  CU_ADD_TEST(s, test_timer_stopped_actor_timers_vanish);
  CU_ADD_TEST(s, test_timer_interval_skips_missed_ticks_by_default);
  CU_ADD_TEST(s, test_timer_interval_keep_missed_delivers_each_tick);
  CU_ADD_TEST(s, test_timer_same_deadline_fires_in_set_order);
  CU_ADD_TEST(s, test_timer_request_timeout_then_late_reply_is_dropped);
  CU_ADD_TEST(s, test_timer_request_reply_before_timeout_cancels_it);
  CU_ADD_TEST(s, test_timer_request_reply_or_timeout_never_both);
  CU_ADD_TEST(s, test_timer_receive_timeout_fires_after_silence);
  CU_ADD_TEST(s, test_timer_payload_near_size_max_is_refused);
  return ax_test_run();
}
