/* The metrics the actor layer keeps: an untracked actor's header stays 112
 * bytes and gets no metrics block; tracked actors count messages in and out,
 * mailbox depth and peak, dead letters and restarts, and fill their
 * histograms; workers count busy time. No timing assertions: every wait is
 * on a condition with a generous bound. */
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "actor/actor_int.h"
#include "support/testutil.h"

enum { T_PING = AX_MSG_USER, T_GATE, T_FWD };

_Static_assert(offsetof(struct ax_actor, tail) == AX__ACTOR_HDR, "the actor header is 112 bytes");

static _Atomic uint64_t handled, gates_entered;
static _Atomic int gate_open;

static ax_err sink_b(ax_actor *self, const ax_msg *m) {
  (void)self;
  if (m->type == T_GATE) { /* holds the worker until the test opens gate k (bounded) */
    int k = 1;
    if (m->len == sizeof k) memcpy(&k, m->data, sizeof k);
    atomic_fetch_add(&gates_entered, 1);
    for (int i = 0; i < 30000 && atomic_load(&gate_open) < k; i++) ax_test_sleep_ms(1);
  }
  atomic_fetch_add(&handled, 1);
  return AX_OK;
}
static const ax_actor_spec sink_spec = {.name = "sink", .behaviour = sink_b};

static ax_err tracked_init(ax_actor *self, void *state, const void *arg, size_t len) {
  (void)state, (void)len;
  return ax_metrics_track(self, arg ? *(const unsigned *)arg : 0);
}
static const ax_actor_spec tracked_sink_spec = {.name = "tracked \"sink\"", .behaviour = sink_b,
                                                .init = tracked_init};

/* Forwards every T_FWD payload (a pid) a T_PING. */
static ax_err fwd_b(ax_actor *self, const ax_msg *m) {
  if (m->type == T_FWD) {
    ax_pid to;
    memcpy(&to, m->data, sizeof to);
    ax_send(self, to, T_PING, NULL, 0); /* may be AX_ENOACTOR: a dead letter */
  }
  atomic_fetch_add(&handled, 1);
  return AX_OK;
}
static const ax_actor_spec fwd_spec = {.name = "fwd", .behaviour = fwd_b, .init = tracked_init};

static bool handled_is(uint64_t n) { return ax_test_wait_count(&handled, n, 20000); }

static void test_metrics_untracked_actor_has_no_block(void) {
  atomic_store(&handled, 0);
  ax_system *sys = ax_test_system(2);
  ax_pid p;
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &sink_spec, NULL, 0, &p), AX_OK);
  for (int i = 0; i < 100; i++) CU_ASSERT_EQUAL(ax_system_send(sys, p, T_PING, "x", 1), AX_OK);
  CU_ASSERT(handled_is(100));
  ax_actor *a = ax__table_acquire(&sys->table, p.id);
  CU_ASSERT_PTR_NOT_NULL_FATAL(a);
  CU_ASSERT_EQUAL(atomic_load(&a->obs), 0);
  CU_ASSERT_PTR_NULL(a->ext); /* no block, not even the ext */
  ax__table_release(&sys->table, p.id);
  ax_actor_metrics m;
  CU_ASSERT_EQUAL(ax_actor_metrics_get(sys, p, &m), AX_ENOTFOUND);
  CU_ASSERT_EQUAL(ax_actor_metrics_get(sys, AX_PID_NONE, &m), AX_ENOACTOR);
  CU_ASSERT_EQUAL(ax_metrics_track(NULL, 0), AX_EINVAL);
  CU_ASSERT_EQUAL(ax_metrics_track_all(sys, 4), AX_EINVAL);
  ax_system_free(sys);
}

static void test_metrics_counts_in_out_and_histograms(void) {
  atomic_store(&handled, 0);
  ax_system *sys = ax_test_system(2);
  unsigned hist = AX_METRICS_HISTOGRAMS, counts = AX_METRICS_COUNTS;
  ax_pid sink, fwd;
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &tracked_sink_spec, &hist, sizeof hist, &sink), AX_OK);
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &fwd_spec, &counts, sizeof counts, &fwd), AX_OK);
  enum { N = 500 };
  for (int i = 0; i < N; i++)
    CU_ASSERT_EQUAL(ax_system_send(sys, fwd, T_FWD, &sink, sizeof sink), AX_OK);
  CU_ASSERT(handled_is(2 * N));
  ax_actor_metrics f, s;
  CU_ASSERT_EQUAL_FATAL(ax_actor_metrics_get(sys, fwd, &f), AX_OK);
  CU_ASSERT_EQUAL_FATAL(ax_actor_metrics_get(sys, sink, &s), AX_OK);
  CU_ASSERT_EQUAL(f.messages_in, N);
  CU_ASSERT_EQUAL(f.messages_out, N);
  CU_ASSERT_EQUAL(f.what, AX_METRICS_COUNTS);
  CU_ASSERT_STRING_EQUAL(f.name, "fwd");
  CU_ASSERT_EQUAL(f.mailbox_wait.count, 0); /* counts only */
  CU_ASSERT_EQUAL(s.messages_in, N);
  CU_ASSERT_EQUAL(s.messages_out, 0);
  CU_ASSERT_EQUAL(s.what, AX_METRICS_COUNTS | AX_METRICS_HISTOGRAMS);
  CU_ASSERT_EQUAL(s.mailbox_depth, 0);
  CU_ASSERT_EQUAL(s.mailbox_wait.count, N);
  CU_ASSERT_EQUAL(s.handling.count, N);
  uint64_t sum = 0;
  for (unsigned i = 0; i < AX_METRICS_BUCKETS; i++) sum += s.handling.buckets[i];
  CU_ASSERT_EQUAL(sum, N);
  /* A send to a dead pid counts as the sender's dead letter. */
  CU_ASSERT_EQUAL(ax_system_exit(sys, sink, AX_REASON_KILL), AX_OK);
  for (int i = 0; i < 20000 && ax_actor_metrics_get(sys, sink, &s) != AX_ENOACTOR; i++)
    ax_test_sleep_ms(1);
  CU_ASSERT_EQUAL(ax_system_send(sys, fwd, T_FWD, &sink, sizeof sink), AX_OK);
  CU_ASSERT(handled_is(2 * N + 1));
  CU_ASSERT_EQUAL_FATAL(ax_actor_metrics_get(sys, fwd, &f), AX_OK);
  CU_ASSERT_EQUAL(f.dead_letters, 1);
  CU_ASSERT_EQUAL(f.messages_out, N);
  ax_system_free(sys);
}

static void test_metrics_mailbox_depth_and_peak(void) {
  atomic_store(&handled, 0);
  atomic_store(&gate_open, 0);
  ax_system *sys = ax_test_system(2);
  ax_pid p;
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &tracked_sink_spec, NULL, 0, &p), AX_OK);
  CU_ASSERT_EQUAL(ax_system_send(sys, p, T_GATE, NULL, 0), AX_OK);
  for (int i = 0; i < 10; i++) CU_ASSERT_EQUAL(ax_system_send(sys, p, T_PING, NULL, 0), AX_OK);
  ax_actor_metrics m;
  /* The gate message is being handled (or about to be): the 10 wait. */
  bool ten = false;
  for (int i = 0; i < 20000 && !ten; i++) {
    CU_ASSERT_EQUAL_FATAL(ax_actor_metrics_get(sys, p, &m), AX_OK);
    ten = m.mailbox_depth == 10;
    if (!ten) ax_test_sleep_ms(1);
  }
  CU_ASSERT(ten);
  atomic_store(&gate_open, 1);
  CU_ASSERT(handled_is(11));
  CU_ASSERT_EQUAL_FATAL(ax_actor_metrics_get(sys, p, &m), AX_OK);
  CU_ASSERT_EQUAL(m.mailbox_depth, 0);
  CU_ASSERT(m.mailbox_peak >= 10);
  CU_ASSERT(m.mailbox_peak <= 11);
  CU_ASSERT_EQUAL(m.messages_in, 11);
  ax_system_free(sys);
}

/* The peak of a backlog that grows while a run is under way and is partly
 * consumed by that run: run 2 starts with gate 2 and 5 pings (depth 6),
 * 5 more arrive while gate 2 holds it (depth 10); run 2 then takes its 5,
 * run 3 the other 5. Sampled only at run starts (1, 6, 5) the peak was 6. */
static void test_metrics_peak_of_a_backlog_grown_during_a_run(void) {
  atomic_store(&handled, 0);
  atomic_store(&gates_entered, 0);
  atomic_store(&gate_open, 0);
  ax_system *sys = ax_test_system(2);
  ax_pid p;
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &tracked_sink_spec, NULL, 0, &p), AX_OK);
  int one = 1, two = 2;
  CU_ASSERT_EQUAL(ax_system_send(sys, p, T_GATE, &one, sizeof one), AX_OK);
  CU_ASSERT_FATAL(ax_test_wait_count(&gates_entered, 1, 20000));
  CU_ASSERT_EQUAL(ax_system_send(sys, p, T_GATE, &two, sizeof two), AX_OK);
  for (int i = 0; i < 5; i++) CU_ASSERT_EQUAL(ax_system_send(sys, p, T_PING, NULL, 0), AX_OK);
  atomic_store(&gate_open, 1);
  CU_ASSERT_FATAL(ax_test_wait_count(&gates_entered, 2, 20000));
  for (int i = 0; i < 5; i++) CU_ASSERT_EQUAL(ax_system_send(sys, p, T_PING, NULL, 0), AX_OK);
  atomic_store(&gate_open, 2);
  CU_ASSERT(handled_is(12));
  ax_actor_metrics m;
  CU_ASSERT_EQUAL_FATAL(ax_actor_metrics_get(sys, p, &m), AX_OK);
  CU_ASSERT_EQUAL(m.mailbox_depth, 0);
  CU_ASSERT(m.mailbox_peak >= 10);
  CU_ASSERT(m.mailbox_peak <= 11);
  ax_system_free(sys);
}

static void count_actor(const ax_actor_metrics *m, void *arg) {
  (void)m;
  (*(int *)arg)++;
}

static void test_metrics_track_all_and_foreach(void) {
  atomic_store(&handled, 0);
  ax_system *sys = ax_test_system(2);
  CU_ASSERT_EQUAL(ax_metrics_track_all(sys, AX_METRICS_COUNTS), AX_OK);
  ax_pid p[5];
  for (int i = 0; i < 5; i++) CU_ASSERT_EQUAL(ax_system_spawn(sys, &sink_spec, NULL, 0, &p[i]), AX_OK);
  CU_ASSERT_EQUAL(ax_metrics_track_all(sys, 0), AX_OK);
  ax_pid q;
  CU_ASSERT_EQUAL(ax_system_spawn(sys, &sink_spec, NULL, 0, &q), AX_OK);
  int n = 0;
  CU_ASSERT_EQUAL(ax_metrics_foreach_actor(sys, count_actor, &n), AX_OK);
  CU_ASSERT_EQUAL(n, 5);
  ax_actor_metrics m;
  CU_ASSERT_EQUAL(ax_actor_metrics_get(sys, q, &m), AX_ENOTFOUND);
  CU_ASSERT_EQUAL(ax_system_exit(sys, p[0], AX_REASON_KILL), AX_OK);
  for (int i = 0; i < 20000 && n != 4; i++) {
    n = 0;
    ax_metrics_foreach_actor(sys, count_actor, &n);
    if (n != 4) ax_test_sleep_ms(1);
  }
  CU_ASSERT_EQUAL(n, 4); /* a stopped actor leaves the list */
  ax_system_free(sys);
}

static void test_metrics_worker_stats(void) {
  atomic_store(&handled, 0);
  ax_system *sys = ax_test_system(2);
  ax_pid p;
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &sink_spec, NULL, 0, &p), AX_OK);
  for (int i = 0; i < 1000; i++) ax_system_send(sys, p, T_PING, NULL, 0);
  CU_ASSERT(handled_is(1000));
  ax_worker_stats w[2];
  CU_ASSERT_EQUAL(ax_worker_stats_get(sys, 2, &w[0]), AX_ENOTFOUND);
  CU_ASSERT_EQUAL(ax_worker_stats_get(NULL, 0, &w[0]), AX_EINVAL);
  ax_system_stats before, after;
  CU_ASSERT_EQUAL(ax_system_stats_get(sys, &before), AX_OK);
  CU_ASSERT_EQUAL(ax_worker_stats_get(sys, 0, &w[0]), AX_OK);
  CU_ASSERT_EQUAL(ax_worker_stats_get(sys, 1, &w[1]), AX_OK);
  CU_ASSERT_EQUAL(ax_system_stats_get(sys, &after), AX_OK);
  uint64_t runs = w[0].runs + w[1].runs;
  CU_ASSERT(runs >= before.runs && runs <= after.runs);
  CU_ASSERT(w[0].busy_ns + w[1].busy_ns > 0); /* they ran 1000 messages */
  ax_system_free(sys);
}

/* Busy time never goes back: a reader racing a worker that wakes from a
 * park must not count that park twice (once in parked_ns, once as the park
 * still under way). Workers park and wake thousands of times while this
 * thread reads their stats; bounded by a park count and a generous time. */
static _Atomic int stop_feeding;
static void *feeder(void *arg) {
  ax_system *sys = ((void **)arg)[0];
  ax_pid p = *(ax_pid *)((void **)arg)[1];
  while (!atomic_load(&stop_feeding)) {
    ax_system_send(sys, p, T_PING, NULL, 0);
    struct timespec ts = {0, 200000}; /* let the workers park in between */
    nanosleep(&ts, NULL);
  }
  return NULL;
}

static void test_metrics_worker_busy_time_never_goes_back(void) {
  ax_system *sys = ax_test_system(2);
  ax_pid p;
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &sink_spec, NULL, 0, &p), AX_OK);
  atomic_store(&stop_feeding, 0);
  void *args[2] = {sys, &p};
  pthread_t th;
  CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, feeder, args), 0);
  uint64_t last[2] = {0, 0}, parks = 0, backwards = 0;
  uint64_t deadline = ax__now_ns() + 30000000000ull;
  while (parks < 20000 && ax__now_ns() < deadline && !backwards) {
    parks = 0;
    for (uint32_t i = 0; i < 2; i++) {
      ax_worker_stats w;
      CU_ASSERT_EQUAL_FATAL(ax_worker_stats_get(sys, i, &w), AX_OK);
      if (w.busy_ns < last[i]) {
        fprintf(stderr, "worker %u: busy %llu ns after %llu ns\n", i,
                (unsigned long long)w.busy_ns, (unsigned long long)last[i]);
        backwards++;
      }
      last[i] = w.busy_ns;
      parks += w.parks;
    }
  }
  atomic_store(&stop_feeding, 1);
  pthread_join(th, NULL);
  CU_ASSERT_EQUAL(backwards, 0);
  CU_ASSERT(parks > 0);
  ax_system_free(sys);
}

/* A supervisor restarting a child counts the restart (the system's total). */
static _Atomic uint64_t child_starts;
static ax_err crash_init(ax_actor *self, void *state, const void *arg, size_t len) {
  (void)self, (void)state, (void)arg, (void)len;
  atomic_fetch_add(&child_starts, 1);
  return AX_OK;
}
static ax_err crash_b(ax_actor *self, const ax_msg *m) {
  (void)self, (void)m;
  return AX_EINVAL; /* any message stops it abnormally */
}
static const ax_actor_spec crash_spec = {.name = "crash", .behaviour = crash_b, .init = crash_init};

static void test_metrics_supervisor_restarts_counted(void) {
  ax_system *sys = ax_test_system(2);
  ax_child_spec c = {.id = "c", .start = &crash_spec, .restart = AX_RESTART_PERMANENT};
  ax_sup_spec s = {.name = "sup", .intensity = 10, .period_ms = 60000, .children = &c,
                   .nchildren = 1};
  ax_pid sup;
  CU_ASSERT_EQUAL_FATAL(ax_supervisor_start(sys, &s, &sup), AX_OK);
  /* Crash the running child until it has been restarted 3 times (a ping
   * may find a child already dead: then nothing happens, and we retry). */
  for (int i = 0; i < 20000 && atomic_load(&child_starts) < 4; i++) {
    ax_sup_child_info info[1];
    size_t n = 1;
    if (ax_supervisor_which_children(sys, sup, 10000, info, &n) == AX_OK && n == 1 &&
        !ax_pid_is_none(info[0].pid))
      ax_system_send(sys, info[0].pid, T_PING, NULL, 0);
    ax_test_sleep_ms(1);
  }
  CU_ASSERT(atomic_load(&child_starts) >= 4);
  /* Every start after the first is a restart (quiet once the last child has
   * started and no ping is in flight). */
  ax_system_stats st;
  bool match = false;
  for (int i = 0; i < 20000 && !match; i++) {
    ax_system_stats_get(sys, &st);
    match = st.restarts == atomic_load(&child_starts) - 1;
    if (!match) ax_test_sleep_ms(1);
  }
  CU_ASSERT(match);
  ax_system_free(sys);
}

int main(void) {
  CU_pSuite s = ax_test_suite("metrics.counters");
  CU_ADD_TEST(s, test_metrics_untracked_actor_has_no_block);
  CU_ADD_TEST(s, test_metrics_counts_in_out_and_histograms);
  CU_ADD_TEST(s, test_metrics_mailbox_depth_and_peak);
  CU_ADD_TEST(s, test_metrics_peak_of_a_backlog_grown_during_a_run);
  CU_ADD_TEST(s, test_metrics_track_all_and_foreach);
  CU_ADD_TEST(s, test_metrics_worker_stats);
  CU_ADD_TEST(s, test_metrics_worker_busy_time_never_goes_back);
  CU_ADD_TEST(s, test_metrics_supervisor_restarts_counted);
  return ax_test_run();
}
