/* Axon tests: the deterministic test mode (cfg.deterministic_seed): one
 * thread, a seeded choice among runnable actors, the virtual clock. A run
 * records its trace (every delivery: actor, type, payload); the same seed
 * must give a byte-identical trace, another seed another interleaving. */
#include <stdio.h>
#include <string.h>

#include "support/testutil.h"

enum { M_GO = AX_MSG_USER, M_NEXT, M_DATA, M_TICK, M_REQ, M_ANSWER, M_PROBE };

/* ---- the trace: one line per delivery (tests/support: one thread) ---- */

static void trace_add(ax_actor *self, const ax_msg *m) {
  uint32_t v = 0;
  if (m->len >= sizeof v) memcpy(&v, m->data, sizeof v);
  uint64_t now = 0;
  ax_system_now(ax_actor_system(self), &now);
  ax_test_tracef("t=%llu %llx <- %llx type %u val %u\n", (unsigned long long)now,
                 (unsigned long long)ax_self(self).id, (unsigned long long)m->from.id, m->type, v);
}

static size_t trace_length(void) {
  size_t n;
  ax_test_trace(&n);
  return n;
}

static ax_system *det_system(uint64_t seed) { return ax_test_det_system(seed, NULL); }

/* ---- scenario 1: three producers, one consumer ---- */

typedef struct prod_st {
  ax_pid to;
  uint32_t left, base;
} prod_st;

static ax_err consumer_b(ax_actor *self, const ax_msg *m) {
  trace_add(self, m);
  return AX_OK;
}
static const ax_actor_spec consumer_spec = {.name = "consumer", .behaviour = consumer_b};

static ax_err prod_init(ax_actor *self, void *state, const void *arg, size_t len) {
  (void)self;
  if (len != sizeof(prod_st)) return AX_EINVAL;
  memcpy(state, arg, len);
  return AX_OK;
}

/* One message per run: each send is a scheduling point. */
static ax_err prod_b(ax_actor *self, const ax_msg *m) {
  prod_st *s = ax_state(self);
  if ((m->type != M_GO && m->type != M_NEXT) || !s->left) return AX_OK;
  uint32_t v = s->base + s->left--;
  ax_err e = ax_send(self, s->to, M_DATA, &v, sizeof v);
  if (e == AX_OK && s->left) e = ax_send(self, ax_self(self), M_NEXT, NULL, 0);
  return e;
}
static const ax_actor_spec prod_spec = {.name = "producer", .behaviour = prod_b,
                                        .init = prod_init, .state_size = sizeof(prod_st)};

/* Runs scenario 1 with seed; leaves its trace in ax_test_trace. */
static void run_producers(uint64_t seed) {
  ax_test_trace_reset();
  ax_system *sys = det_system(seed);
  ax_pid c, p[3];
  CU_ASSERT_FATAL(ax_system_spawn(sys, &consumer_spec, NULL, 0, &c) == AX_OK);
  for (uint32_t i = 0; i < 3; i++) {
    prod_st st = {.to = c, .left = 5, .base = 100 * (i + 1)};
    CU_ASSERT_FATAL(ax_system_spawn(sys, &prod_spec, &st, sizeof st, &p[i]) == AX_OK);
  }
  for (int i = 0; i < 3; i++) CU_ASSERT(ax_system_send(sys, p[i], M_GO, NULL, 0) == AX_OK);
  uint64_t steps = 0;
  CU_ASSERT(ax_system_run_until_idle(sys, 100000, &steps) == AX_OK);
  CU_ASSERT(steps > 0);
  CU_ASSERT(ax_system_shutdown(sys) == AX_OK);
  ax_system_free(sys);
}

static size_t count_lines(const char *s) {
  size_t n = 0;
  for (; *s; s++) n += *s == '\n';
  return n;
}

static void test_system_det_same_seed_same_trace(void) {
  static char first[1 << 17];
  run_producers(42);
  CU_ASSERT_EQUAL(count_lines(ax_test_trace(NULL)), 15);
  memcpy(first, ax_test_trace(NULL), trace_length() + 1);
  size_t first_len = trace_length();
  run_producers(42);
  CU_ASSERT_EQUAL(trace_length(), first_len);
  CU_ASSERT(memcmp(first, ax_test_trace(NULL), first_len) == 0);
}

static void test_system_det_other_seed_other_interleaving(void) {
  static char first[1 << 17];
  run_producers(1);
  memcpy(first, ax_test_trace(NULL), trace_length() + 1);
  size_t first_len = trace_length();
  run_producers(2);
  /* The same deliveries (same lines, 15 of them), in another order. */
  CU_ASSERT_EQUAL(count_lines(ax_test_trace(NULL)), 15);
  CU_ASSERT_EQUAL(trace_length(), first_len);
  CU_ASSERT(memcmp(first, ax_test_trace(NULL), first_len) != 0);
}

/* Many seeds: the per-sender order always holds, and the seeds do not all
 * give the same interleaving. */
static void test_system_det_fifo_per_sender_under_every_seed(void) {
  static char first[1 << 17];
  bool differs = false;
  for (uint64_t seed = 1; seed <= 20; seed++) {
    run_producers(seed);
    uint32_t last[4] = {1000, 1000, 1000, 1000};
    for (const char *s = ax_test_trace(NULL); *s;) {
      unsigned v = 0;
      const char *val = strstr(s, "val ");
      CU_ASSERT_PTR_NOT_NULL_FATAL(val);
      sscanf(val, "val %u", &v);
      unsigned who = v / 100, left = v % 100;
      CU_ASSERT(who >= 1 && who <= 3 && left < last[who]); /* counts down */
      if (who <= 3) last[who] = left;
      s = strchr(s, '\n') + 1;
    }
    if (seed == 1)
      memcpy(first, ax_test_trace(NULL), trace_length() + 1);
    else
      differs |= strcmp(first, ax_test_trace(NULL)) != 0;
  }
  CU_ASSERT(differs);
}

/* ---- scenario 2: a timer race (a reply against a request timeout) ---- */

/* The server answers every request it holds on its tick (an interval timer
 * set first, so at t=10 it fires before the client's timeout). */
typedef struct srv_st {
  ax_reply_addr held[4];
  uint32_t n;
} srv_st;

static ax_err srv_init(ax_actor *self, void *state, const void *arg, size_t len) {
  (void)state, (void)arg, (void)len;
  return ax_send_interval(self, 10, 0, ax_self(self), M_TICK, NULL, 0, NULL);
}

static ax_err srv_b(ax_actor *self, const ax_msg *m) {
  srv_st *s = ax_state(self);
  trace_add(self, m);
  if (m->type == M_REQ && s->n < 4) s->held[s->n++] = ax_reply_addr_of(m);
  if (m->type == M_TICK) {
    for (uint32_t i = 0; i < s->n; i++) {
      uint32_t v = 7;
      ax_err e = ax_reply_to(self, s->held[i], M_ANSWER, &v, sizeof v);
      if (e != AX_OK) return e;
    }
    s->n = 0;
  }
  return AX_OK;
}
static const ax_actor_spec srv_spec = {.name = "server", .behaviour = srv_b, .init = srv_init,
                                       .state_size = sizeof(srv_st)};

typedef struct cli_st {
  ax_pid srv;
} cli_st;

static ax_err cli_b(ax_actor *self, const ax_msg *m) {
  cli_st *s = ax_state(self);
  trace_add(self, m);
  if (m->type == M_GO) {
    memcpy(&s->srv, m->data, sizeof s->srv);
    return ax_request(self, s->srv, M_REQ, NULL, 0, 10, NULL);
  }
  return AX_OK;
}
static const ax_actor_spec cli_spec = {.name = "client", .behaviour = cli_b,
                                       .state_size = sizeof(cli_st)};

/* Counts how the client's request ended in the trace. */
static void run_timer_race(uint64_t seed, bool *answered, bool *timed_out) {
  ax_test_trace_reset();
  ax_system *sys = det_system(seed);
  ax_pid srv, cli;
  CU_ASSERT_FATAL(ax_system_spawn(sys, &srv_spec, NULL, 0, &srv) == AX_OK);
  CU_ASSERT_FATAL(ax_system_spawn(sys, &cli_spec, NULL, 0, &cli) == AX_OK);
  CU_ASSERT(ax_system_send(sys, cli, M_GO, &srv, sizeof srv) == AX_OK);
  CU_ASSERT(ax_system_run_until_idle(sys, 0, NULL) == AX_OK);
  uint64_t now = 1;
  CU_ASSERT(ax_system_now(sys, &now) == AX_OK);
  CU_ASSERT_EQUAL(now, 0); /* the clock moves only when told */
  CU_ASSERT(ax_system_advance(sys, 10) == AX_OK);
  CU_ASSERT(ax_system_now(sys, &now) == AX_OK);
  CU_ASSERT_EQUAL(now, 10);
  char ans[64], tmo[64];
  snprintf(ans, sizeof ans, "%llx <- %llx type %u", (unsigned long long)cli.id,
           (unsigned long long)srv.id, (unsigned)M_ANSWER);
  snprintf(tmo, sizeof tmo, "%llx <- %llx type %u", (unsigned long long)cli.id,
           (unsigned long long)cli.id, (unsigned)AX_MSG_TIMEOUT);
  *answered = strstr(ax_test_trace(NULL), ans) != NULL;
  *timed_out = strstr(ax_test_trace(NULL), tmo) != NULL;
  CU_ASSERT(strstr(ax_test_trace(NULL), "t=10 ") != NULL); /* everything at t=10 says so */
  CU_ASSERT(ax_system_shutdown(sys) == AX_OK);
  ax_system_free(sys);
}

/* Exactly one of the reply and the timeout reaches the client (the request
 * contract), whichever the seed lets win; both outcomes occur among the
 * seeds, and each seed replays its own. */
static void test_system_det_timer_race_explores_both_outcomes(void) {
  static char first[1 << 17];
  unsigned answers = 0, timeouts = 0;
  for (uint64_t seed = 1; seed <= 32; seed++) {
    bool a, t;
    run_timer_race(seed, &a, &t);
    CU_ASSERT(a != t);
    answers += a;
    timeouts += t;
    memcpy(first, ax_test_trace(NULL), trace_length() + 1);
    bool a2, t2;
    run_timer_race(seed, &a2, &t2);
    CU_ASSERT(a2 == a && t2 == t);
    CU_ASSERT(strcmp(first, ax_test_trace(NULL)) == 0);
  }
  CU_ASSERT(answers > 0);
  CU_ASSERT(timeouts > 0);
}

/* ---- the virtual clock, stepping, and what the mode refuses ---- */

static ax_err ticker_init(ax_actor *self, void *state, const void *arg, size_t len) {
  (void)state, (void)arg, (void)len;
  return ax_send_after(self, 250, ax_self(self), M_TICK, NULL, 0, NULL);
}
static const ax_actor_spec ticker_spec = {.name = "ticker", .behaviour = consumer_b,
                                          .init = ticker_init};

static void test_system_det_virtual_clock(void) {
  ax_test_trace_reset();
  ax_system *sys = det_system(7);
  CU_ASSERT_EQUAL(ax_system_workers(sys), 0);
  ax_pid p;
  CU_ASSERT_FATAL(ax_system_spawn(sys, &ticker_spec, NULL, 0, &p) == AX_OK);
  CU_ASSERT(ax_system_advance(sys, 249) == AX_OK);
  CU_ASSERT_EQUAL(trace_length(), 0); /* not a millisecond early */
  CU_ASSERT(ax_system_advance(sys, 1000) == AX_OK);
  CU_ASSERT(strstr(ax_test_trace(NULL), "t=250 ") == ax_test_trace(NULL)); /* at its exact virtual time */
  uint64_t now = 0;
  CU_ASSERT(ax_system_now(sys, &now) == AX_OK);
  CU_ASSERT_EQUAL(now, 1249);
  bool ran = true;
  CU_ASSERT(ax_system_step(sys, &ran) == AX_OK);
  CU_ASSERT(!ran); /* idle */
  CU_ASSERT(ax_system_shutdown(sys) == AX_OK);
  CU_ASSERT(ax_system_step(sys, &ran) == AX_ECLOSED);
  ax_system_free(sys);
}

static void test_system_det_bounded_steps(void) {
  ax_system *sys = det_system(3);
  ax_pid c, p;
  CU_ASSERT_FATAL(ax_system_spawn(sys, &consumer_spec, NULL, 0, &c) == AX_OK);
  prod_st st = {.to = c, .left = 50, .base = 100};
  CU_ASSERT_FATAL(ax_system_spawn(sys, &prod_spec, &st, sizeof st, &p) == AX_OK);
  CU_ASSERT(ax_system_send(sys, p, M_GO, NULL, 0) == AX_OK);
  uint64_t steps = 0;
  CU_ASSERT(ax_system_run_until_idle(sys, 10, &steps) == AX_EAGAIN);
  CU_ASSERT_EQUAL(steps, 10);
  CU_ASSERT(ax_system_run_until_idle(sys, 0, &steps) == AX_OK);
  CU_ASSERT(ax_system_shutdown(sys) == AX_OK);
  ax_system_free(sys);
}

static _Atomic int listen_result;
static ax_err lis_init(ax_actor *self, void *state, const void *arg, size_t len) {
  (void)state, (void)arg, (void)len;
  ax_listener l;
  atomic_store(&listen_result, (int)ax_listen(self, "127.0.0.1:0", NULL, &l));
  return AX_OK;
}
static const ax_actor_spec lis_spec = {.name = "listener", .behaviour = consumer_b,
                                       .init = lis_init};

static void test_system_det_refuses_what_it_cannot_replay(void) {
  ax_system *sys = det_system(5);
  ax_pid p;
  CU_ASSERT_FATAL(ax_system_spawn(sys, &lis_spec, NULL, 0, &p) == AX_OK);
  CU_ASSERT_EQUAL(atomic_load(&listen_result), AX_ENOTSUP); /* sockets */
  ax_system_free(sys);
  /* The calls that drive need the mode. */
  ax_system *plain = ax_test_system(1);
  bool ran;
  uint64_t now;
  CU_ASSERT(ax_system_step(plain, &ran) == AX_ESTATE);
  CU_ASSERT(ax_system_run_until_idle(plain, 0, NULL) == AX_ESTATE);
  CU_ASSERT(ax_system_advance(plain, 1) == AX_ESTATE);
  CU_ASSERT(ax_system_now(plain, &now) == AX_ESTATE);
  ax_system_free(plain);
  CU_ASSERT(ax_system_step(NULL, &ran) == AX_EINVAL);
}

static uint64_t fixed_clock(void *arg) {
  (void)arg;
  return 5;
}

static void test_system_det_brings_its_own_clock(void) {
  ax_system_config cfg;
  ax_system_config_init(&cfg);
  cfg.deterministic_seed = 1;
  cfg.clock_ms = fixed_clock;
  ax_system *sys = NULL;
  CU_ASSERT(ax_system_new(&cfg, &sys) == AX_EINVAL);
  CU_ASSERT_PTR_NULL(sys);
}

/* ax_call and ax_system_wait drive the system while they wait. */
static ax_err echo_b(ax_actor *self, const ax_msg *m) {
  if (m->type == M_PROBE) return ax_reply(self, m, M_ANSWER, m->data, m->len);
  if (m->type == M_GO) return ax_exit(self, ax_self(self), AX_REASON_NORMAL);
  return AX_OK;
}
static const ax_actor_spec echo_spec = {.name = "echo", .behaviour = echo_b};

static void test_system_det_call_and_wait_drive(void) {
  ax_system *sys = det_system(9);
  ax_pid p;
  CU_ASSERT_FATAL(ax_system_spawn(sys, &echo_spec, NULL, 0, &p) == AX_OK);
  uint32_t v = 99, out = 0;
  size_t len = sizeof out;
  uint32_t type = 0;
  CU_ASSERT(ax_call(sys, p, M_PROBE, &v, sizeof v, 1000, &out, &len, &type) == AX_OK);
  CU_ASSERT_EQUAL(out, 99);
  CU_ASSERT_EQUAL(type, M_ANSWER);
  /* A call nobody answers times out in virtual time. */
  CU_ASSERT(ax_call(sys, p, M_DATA, NULL, 0, 500, NULL, NULL, NULL) == AX_ETIMEDOUT);
  uint64_t now = 0;
  CU_ASSERT(ax_system_now(sys, &now) == AX_OK);
  CU_ASSERT_EQUAL(now, 500);
  CU_ASSERT(ax_system_wait(sys, 100) == AX_ETIMEDOUT);
  CU_ASSERT(ax_system_send(sys, p, M_GO, NULL, 0) == AX_OK);
  CU_ASSERT(ax_system_wait(sys, AX_INFINITY) == AX_OK);
  ax_system_free(sys);
}

int main(void) {
  CU_pSuite s = ax_test_suite("system.det");
  CU_ADD_TEST(s, test_system_det_same_seed_same_trace);
  CU_ADD_TEST(s, test_system_det_other_seed_other_interleaving);
  CU_ADD_TEST(s, test_system_det_fifo_per_sender_under_every_seed);
  CU_ADD_TEST(s, test_system_det_timer_race_explores_both_outcomes);
  CU_ADD_TEST(s, test_system_det_virtual_clock);
  CU_ADD_TEST(s, test_system_det_bounded_steps);
  CU_ADD_TEST(s, test_system_det_refuses_what_it_cannot_replay);
  CU_ADD_TEST(s, test_system_det_brings_its_own_clock);
  CU_ADD_TEST(s, test_system_det_call_and_wait_drive);
  return ax_test_run();
}
