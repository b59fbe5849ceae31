/* Axon tests: the parallelism probe's solo phases (sched.c par_step,
 * solo_shed, solo_takeover). In a solo phase one worker runs everything;
 * the others hand it what they queued and run nothing. Promised here:
 *  - no message is lost or reordered per sender while work moves to the
 *    solo worker (queued actors shed through the inject queue, sends from
 *    outside the workers);
 *  - a solo worker stuck in one long run does not strand what it queued:
 *    another worker takes the phase over and runs it (the stuck actor
 *    waits, bounded, for the queued one to run);
 *  - the probe itself (PROBE mode: phases switching under a fan-out flood)
 *    delivers everything;
 *  - a system that idles in a solo phase leaves it.
 * Every wait is bounded (seconds), never a timing assertion. */
#include <stdatomic.h>
#include <string.h>

#include "actor/actor_int.h" /* ax__sched_par_mode: the tests' fixed modes */
#include "axon.h"
#include "support/testutil.h"

#define WAIT_MS 30000
#define SINKS 40
#define ROUNDS 5000
#define OUTSIDE 2000 /* messages the test thread sends to every sink */
/* How long the stuck actor waits for the queued one: far beyond the
 * takeover time (2 ms) and the scheduler tick that notices it (1 ms). */
#define STUCK_WAIT_NS (10ull * 1000 * 1000 * 1000)

enum { MSG_START = AX_MSG_USER, MSG_WORK, MSG_EXT, MSG_STOP, MSG_MORE, MSG_PING };

static struct {
  _Atomic uint64_t sinks_ok;  /* sinks that stopped with every message, in order */
  _Atomic uint64_t sinks_bad; /* ... with a gap or a reordering */
  _Atomic uint64_t done;      /* the producer finished */
  _Atomic uint64_t flag;      /* stuck test: the queued actor ran */
  _Atomic uint64_t stuck_done, stuck_ok;
} G;

static void reset(void) { memset(&G, 0, sizeof(G)); }

static ax_err copy_init(ax_actor *self, void *state, const void *arg, size_t len) {
  (void)self;
  memcpy(state, arg, len);
  return AX_OK;
}

/* Counts WORK (from the producer) and EXT (from the test thread), each
 * numbered from 0 by its sender; any gap or reordering is bad. It ends
 * once it has STOP and every message: order holds per sender only, and
 * the producer's last WORKs may come after the test thread's STOP (they
 * are delivered by the end of the producer's run, after it set `done`:
 * the outbox). A lost message leaves it waiting (the test's wait fails). */
typedef struct sink {
  uint64_t work, ext;
  bool bad, stopped;
} sink;

static ax_err sink_b(ax_actor *self, const ax_msg *m) {
  sink *s = ax_state(self);
  uint64_t n = 0;
  if (m->len == sizeof(n)) memcpy(&n, m->data, sizeof(n));
  if (m->type == MSG_WORK) {
    if (n != s->work++) s->bad = true;
  } else if (m->type == MSG_EXT) {
    if (n != s->ext++) s->bad = true;
  } else if (m->type == MSG_STOP) {
    s->stopped = true;
  }
  if (s->stopped && s->work >= ROUNDS && s->ext >= OUTSIDE) {
    bool ok = !s->bad && s->work == ROUNDS && s->ext == OUTSIDE;
    atomic_fetch_add(ok ? &G.sinks_ok : &G.sinks_bad, 1);
    return ax_exit(self, ax_self(self), AX_REASON_NORMAL);
  }
  return AX_OK;
}
static const ax_actor_spec sink_spec = {.name = "sink", .behaviour = sink_b, .state_size = sizeof(sink)};

typedef struct producer {
  ax_pid to[SINKS];
  uint64_t round;
} producer;

/* fjthrput's shape: one numbered WORK to each sink per run, then a message
 * to itself; after ROUNDS, done (the test thread sends the STOPs once its
 * own messages are out and `done` is set: its last WORKs may still be on
 * their way then, see sink_b). */
static ax_err producer_b(ax_actor *self, const ax_msg *m) {
  (void)m;
  producer *p = ax_state(self);
  uint64_t n = p->round++;
  for (int i = 0; i < SINKS; i++) {
    ax_err e = ax_send(self, p->to[i], MSG_WORK, &n, sizeof(n));
    if (e != AX_OK) return e;
  }
  if (p->round < ROUNDS) return ax_send(self, ax_self(self), MSG_MORE, NULL, 0);
  atomic_store(&G.done, 1);
  return ax_exit(self, ax_self(self), AX_REASON_NORMAL);
}
static const ax_actor_spec producer_spec = {
    .name = "producer", .behaviour = producer_b, .init = copy_init, .state_size = sizeof(producer)};

static void fan_out(uint32_t mode) {
  reset();
  atomic_store(&ax__sched_par_mode, mode);
  ax_system *sys = ax_test_system(2);
  producer p = {.round = 0};
  for (int i = 0; i < SINKS; i++)
    CU_ASSERT_FATAL(ax_system_spawn(sys, &sink_spec, NULL, 0, &p.to[i]) == AX_OK);
  ax_pid prod;
  CU_ASSERT_FATAL(ax_system_spawn(sys, &producer_spec, &p, sizeof(p), &prod) == AX_OK);
  CU_ASSERT_FATAL(ax_system_send(sys, prod, MSG_START, NULL, 0) == AX_OK);
  /* Meanwhile, from outside the workers (the inject queue). */
  for (uint64_t n = 0; n < OUTSIDE; n++)
    for (int i = 0; i < SINKS; i++)
      CU_ASSERT_FATAL(ax_system_send(sys, p.to[i], MSG_EXT, &n, sizeof(n)) == AX_OK);
  CU_ASSERT_FATAL(ax_test_wait_count(&G.done, 1, WAIT_MS));
  for (int i = 0; i < SINKS; i++)
    CU_ASSERT_FATAL(ax_system_send(sys, p.to[i], MSG_STOP, NULL, 0) == AX_OK);
  CU_ASSERT(ax_test_wait_count(&G.sinks_ok, SINKS, WAIT_MS));
  CU_ASSERT(atomic_load(&G.sinks_bad) == 0);
  ax_system_free(sys);
  atomic_store(&ax__sched_par_mode, AX__PAR_MODE_PROBE);
}

static void test_solo_phase_keeps_every_message(void) { fan_out(AX__PAR_MODE_SOLO); }
static void test_probe_phases_keep_every_message(void) { fan_out(AX__PAR_MODE_PROBE); }

/* ---- a stuck solo worker ---- */

/* Wakes the helper (queued behind this run on this worker), then waits,
 * bounded, for it to have run: only another worker can run it. */
static ax_err stuck_b(ax_actor *self, const ax_msg *m) {
  ax_pid helper;
  memcpy(&helper, m->data, sizeof(helper));
  ax_err e = ax_send(self, helper, MSG_PING, NULL, 0);
  if (e != AX_OK) return e;
  uint64_t t0 = ax__now_ns();
  while (!atomic_load(&G.flag) && ax__now_ns() - t0 < STUCK_WAIT_NS) ax_test_busy_ns(100000);
  atomic_store(&G.stuck_ok, atomic_load(&G.flag));
  atomic_store(&G.stuck_done, 1);
  return AX_OK;
}
static const ax_actor_spec stuck_spec = {.name = "stuck", .behaviour = stuck_b};

static ax_err helper_b(ax_actor *self, const ax_msg *m) {
  (void)self;
  (void)m;
  atomic_store(&G.flag, 1);
  return AX_OK;
}
static const ax_actor_spec helper_spec = {.name = "helper", .behaviour = helper_b};

static void test_stuck_solo_worker_is_taken_over(void) {
  for (int round = 0; round < 3; round++) {
    reset();
    atomic_store(&ax__sched_par_mode, AX__PAR_MODE_SOLO);
    ax_system *sys = ax_test_system(2);
    ax_pid stuck, helper;
    CU_ASSERT_FATAL(ax_system_spawn(sys, &helper_spec, NULL, 0, &helper) == AX_OK);
    CU_ASSERT_FATAL(ax_system_spawn(sys, &stuck_spec, NULL, 0, &stuck) == AX_OK);
    CU_ASSERT_FATAL(ax_system_send(sys, stuck, MSG_START, &helper, sizeof(helper)) == AX_OK);
    CU_ASSERT(ax_test_wait_count(&G.stuck_done, 1, WAIT_MS));
    CU_ASSERT(atomic_load(&G.stuck_ok) == 1);
    ax_system_free(sys);
    atomic_store(&ax__sched_par_mode, AX__PAR_MODE_PROBE);
    if (!atomic_load(&G.stuck_ok)) break;
  }
}

/* ---- an idle system ---- */

/* A system that goes idle in a solo phase leaves it: no worker runs to
 * judge the phase, and while it lasts the scheduler tick keeps the
 * reactor's driver waking every millisecond (sched.c sched_tick). Before,
 * it stayed solo, ticking, for as long as it idled. */
static void test_idle_system_leaves_solo_phase(void) {
  atomic_store(&ax__sched_par_mode, AX__PAR_MODE_SOLO_START);
  ax_system *sys = ax_test_system(2);
  bool left = false;
  /* relaxed: polling a hint */
  for (int i = 0; i < WAIT_MS / 10 && !left; i++) {
    left = atomic_load_explicit(&sys->solo, memory_order_relaxed) == AX__SOLO_NONE;
    if (!left) ax_test_sleep_ms(10);
  }
  CU_ASSERT(left);
  ax_system_free(sys);
  atomic_store(&ax__sched_par_mode, AX__PAR_MODE_PROBE);
}

int main(void) {
  CU_pSuite s = ax_test_suite("sched.solo");
  CU_add_test(s, "solo_phase_keeps_every_message", test_solo_phase_keeps_every_message);
  CU_add_test(s, "probe_phases_keep_every_message", test_probe_phases_keep_every_message);
  CU_add_test(s, "stuck_solo_worker_is_taken_over", test_stuck_solo_worker_is_taken_over);
  CU_add_test(s, "idle_system_leaves_solo_phase", test_idle_system_leaves_solo_phase);
  return ax_test_run();
}
