/* System lifecycle races: spawns racing ax_system_shutdown (every started
 * actor is stopped, its terminate run once), two concurrent shutdowns, and
 * ax_system_free / ax_system_shutdown called from inside an actor (refused,
 * logged, nothing touched). */
#include <axon.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "support/testutil.h"

enum { T_SPAWN = AX_MSG_USER, T_PING, T_FREE, T_STOP };

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- item 5: spawns racing shutdown ---- */

typedef struct life_counts {
  _Atomic uint64_t inits;      /* inits that returned AX_OK */
  _Atomic uint64_t terminates; /* terminate calls */
  _Atomic uint64_t twice;      /* terminates of an actor already terminated */
} life_counts;

static life_counts lc;

typedef struct life_state {
  bool terminated;
} life_state;

/* Short-lived actors keep the live count low, so shutdown reaches "nothing
 * alive" while spawns are still under way: the window of the race. */
static const char RELAY[] = "relay", IDLE[] = "idle";
static ax_err life_init(ax_actor *self, void *state, const void *arg, size_t len) {
  atomic_fetch_add(&lc.inits, 1);
  if (arg != RELAY && arg != IDLE) (void)ax_send(self, ax_self(self), T_STOP, NULL, 0);
  return AX_OK;
}
static void life_term(ax_actor *self, void *state, ax_reason reason) {
  life_state *st = state;
  if (st->terminated) atomic_fetch_add(&lc.twice, 1);
  st->terminated = true;
  atomic_fetch_add(&lc.terminates, 1);
}
static ax_err life_beh(ax_actor *self, const ax_msg *msg);
static const ax_actor_spec life_spec = {.name = "life", .behaviour = life_beh,
                                        .state_size = sizeof(life_state), .init = life_init,
                                        .terminate = life_term};

/* T_SPAWN: a relay on the workers: spawn a short-lived actor and a
 * successor, hand the successor the baton and stop (until spawns are
 * refused). T_STOP: stop. */
static ax_err life_beh(ax_actor *self, const ax_msg *msg) {
  if (msg->type == T_SPAWN) {
    ax_pid next;
    (void)ax_spawn(self, &life_spec, NULL, 0, NULL);
    if (ax_spawn(self, &life_spec, RELAY, 0, &next) == AX_OK)
      (void)ax_send(self, next, T_SPAWN, NULL, 0);
    return ax_exit(self, ax_self(self), AX_REASON_NORMAL);
  }
  if (msg->type == T_STOP) return ax_exit(self, ax_self(self), AX_REASON_NORMAL);
  return AX_OK;
}

typedef struct spawner_arg {
  ax_system *sys;
  _Atomic bool go;
} spawner_arg;

static void *spawner(void *p) {
  spawner_arg *a = p;
  while (!atomic_load(&a->go)) {
  }
  /* Bounded: stops at the first refusal (the system is stopping). */
  for (int i = 0; i < 100000; i++)
    if (ax_system_spawn(a->sys, &life_spec, NULL, 0, NULL) != AX_OK) break;
  return NULL;
}

static void test_system_spawn_racing_shutdown_never_survives(void) {
  memset(&lc, 0, sizeof(lc));
  uint64_t start = now_ms();
  int iters = 0;
  uint64_t alive_after = 0;
  for (; iters < 300 && now_ms() - start < 3000; iters++) {
    ax_system_config cfg;
    ax_system_config_init(&cfg);
    cfg.workers = 2;
    ax_system *sys;
    CU_ASSERT_EQUAL_FATAL(ax_system_new(&cfg, &sys), AX_OK);
    /* spawns from the workers... */
    for (int i = 0; i < 2; i++) {
      ax_pid p;
      CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &life_spec, RELAY, 0, &p), AX_OK);
      CU_ASSERT_EQUAL(ax_system_send(sys, p, T_SPAWN, NULL, 0), AX_OK);
    }
    /* ...and from outside */
    spawner_arg sa = {.sys = sys};
    pthread_t th[2];
    for (int i = 0; i < 2; i++) pthread_create(&th[i], NULL, spawner, &sa);
    atomic_store(&sa.go, true);
    struct timespec ts = {0, (long)(iters % 4) * 250000L}; /* vary the moment */
    nanosleep(&ts, NULL);
    CU_ASSERT_EQUAL(ax_system_shutdown(sys), AX_OK);
    ax_system_stats st;
    ax_system_stats_get(sys, &st);
    alive_after += st.actors_alive;
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    ax_system_free(sys);
  }
  printf("(%d iterations, %llu inits) ", iters, (unsigned long long)atomic_load(&lc.inits));
  CU_ASSERT_EQUAL(alive_after, 0);
  CU_ASSERT_EQUAL(atomic_load(&lc.terminates), atomic_load(&lc.inits));
  CU_ASSERT_EQUAL(atomic_load(&lc.twice), 0);
}

/* ---- item 7: two concurrent shutdowns ---- */

typedef struct dual {
  ax_system *sys;
  _Atomic int go;
  _Atomic int done;
  _Atomic int not_ok;     /* a shutdown that did not return AX_OK */
  _Atomic int incomplete; /* a shutdown that returned before the work was done */
} dual;

static void *dual_shutdown(void *p) {
  dual *d = p;
  atomic_fetch_add(&d->go, 1);
  while (atomic_load(&d->go) < 2) {
  }
  if (ax_system_shutdown(d->sys) != AX_OK) atomic_fetch_add(&d->not_ok, 1);
  ax_system_stats st;
  ax_system_stats_get(d->sys, &st);
  if (st.actors_alive != 0 || atomic_load(&lc.terminates) != atomic_load(&lc.inits))
    atomic_fetch_add(&d->incomplete, 1);
  atomic_fetch_add(&d->done, 1);
  return NULL;
}

static bool both_done(void *p) { return atomic_load(&((dual *)p)->done) == 2; }

static void test_system_concurrent_shutdowns_both_return_ok(void) {
  memset(&lc, 0, sizeof(lc));
  for (int it = 0; it < 50; it++) {
    ax_system_config cfg;
    ax_system_config_init(&cfg);
    cfg.workers = 2;
    static dual d;
    memset(&d, 0, sizeof(d));
    CU_ASSERT_EQUAL_FATAL(ax_system_new(&cfg, &d.sys), AX_OK);
    for (int i = 0; i < 100; i++) ax_system_spawn(d.sys, &life_spec, IDLE, 0, NULL);
    pthread_t th[2];
    for (int i = 0; i < 2; i++) pthread_create(&th[i], NULL, dual_shutdown, &d);
    if (!ax_test_wait(both_done, &d, 10000)) {
      CU_FAIL("two concurrent ax_system_shutdown calls did not both return");
      return; /* the threads are stuck: leave them (and the system) */
    }
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    CU_ASSERT_EQUAL(atomic_load(&d.not_ok), 0);
    CU_ASSERT_EQUAL(atomic_load(&d.incomplete), 0);
    CU_ASSERT_EQUAL(ax_system_shutdown(d.sys), AX_OK); /* and a third, later */
    ax_system_free(d.sys);
  }
}

/* ---- a clock moved from another thread while the system shuts down ----
 * (found while fixing the supervisor items: the wake raced the reactor's
 * teardown; TSan and ASan saw it as a use of the freed poller). */

static uint64_t fixed_clock(void *arg) { return (uint64_t)(uintptr_t)arg; }

typedef struct mover {
  ax_system *sys;
  _Atomic bool stop;
  _Atomic uint64_t moves;
} mover;

static void *move_clock(void *p) {
  mover *m = p;
  while (!atomic_load(&m->stop)) {
    ax_system_clock_moved(m->sys);
    atomic_fetch_add(&m->moves, 1);
  }
  return NULL;
}

static void test_system_clock_moved_during_shutdown_is_safe(void) {
  for (int it = 0; it < 30; it++) {
    ax_system_config cfg;
    ax_system_config_init(&cfg);
    cfg.workers = 2;
    cfg.clock_ms = fixed_clock;
    cfg.clock_arg = (void *)(uintptr_t)1000;
    static mover m;
    memset(&m, 0, sizeof(m));
    CU_ASSERT_EQUAL_FATAL(ax_system_new(&cfg, &m.sys), AX_OK);
    for (int i = 0; i < 20; i++) ax_system_spawn(m.sys, &life_spec, IDLE, 0, NULL);
    pthread_t th;
    pthread_create(&th, NULL, move_clock, &m);
    while (atomic_load(&m.moves) < 10) ax_test_sleep_ms(1);
    CU_ASSERT_EQUAL(ax_system_shutdown(m.sys), AX_OK);
    ax_system_clock_moved(m.sys); /* after shutdown: still harmless */
    atomic_store(&m.stop, true);
    pthread_join(th, NULL);
    ax_system_free(m.sys);
  }
}

/* ---- item 8: ax_system_free / ax_system_shutdown from inside an actor ---- */

static _Atomic uint64_t refusals_logged;
static void count_errors(ax_log_level level, const char *line, void *arg) {
  if (level == AX_LOG_ERROR && strstr(line, "refused")) atomic_fetch_add(&refusals_logged, 1);
}

static _Atomic uint64_t pings, frees_returned;
static _Atomic int init_shutdown_result = -1;

static ax_err freer(ax_actor *self, const ax_msg *msg) {
  if (msg->type == T_FREE) {
    ax_system_free(ax_actor_system(self)); /* must be refused */
    atomic_fetch_add(&frees_returned, 1);
  } else if (msg->type == T_PING) {
    atomic_fetch_add(&pings, 1);
  }
  return AX_OK;
}
/* init runs on the spawning thread, here the test's main thread (not a
 * worker): still inside an actor, so both calls must be refused too. */
static ax_err freer_init(ax_actor *self, void *state, const void *arg, size_t len) {
  atomic_store(&init_shutdown_result, ax_system_shutdown(ax_actor_system(self)));
  ax_system_free(ax_actor_system(self));
  atomic_fetch_add(&frees_returned, 1);
  return AX_OK;
}
static const ax_actor_spec freer_spec = {.name = "freer", .behaviour = freer, .init = freer_init};

static void test_system_free_from_actor_is_refused(void) {
  atomic_store(&refusals_logged, 0);
  atomic_store(&pings, 0);
  atomic_store(&frees_returned, 0);
  ax_system *sys = ax_test_system_log(2, count_errors, NULL, AX_LOG_WARN);
  ax_pid p;
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &freer_spec, NULL, 0, &p), AX_OK);
  CU_ASSERT_EQUAL(atomic_load(&init_shutdown_result), AX_ESTATE);
  CU_ASSERT_EQUAL(atomic_load(&frees_returned), 1);
  CU_ASSERT_EQUAL(ax_system_send(sys, p, T_FREE, NULL, 0), AX_OK);
  if (!ax_test_wait_count(&frees_returned, 2, 10000)) {
    CU_FAIL("ax_system_free called from a behaviour did not return");
    return; /* the system is wrecked: leave it */
  }
  /* Nothing was touched: the actor still runs and the system still works. */
  CU_ASSERT_EQUAL(ax_system_send(sys, p, T_PING, NULL, 0), AX_OK);
  CU_ASSERT_TRUE(ax_test_wait_count(&pings, 1, 10000));
  CU_ASSERT_EQUAL(atomic_load(&refusals_logged), 2);
  CU_ASSERT_EQUAL(ax_system_shutdown(sys), AX_OK);
  ax_system_free(sys);
}

int main(void) {
  CU_pSuite s = ax_test_suite("system.lifecycle");
  CU_ADD_TEST(s, test_system_spawn_racing_shutdown_never_survives);
  CU_ADD_TEST(s, test_system_concurrent_shutdowns_both_return_ok);
  CU_ADD_TEST(s, test_system_free_from_actor_is_refused);
  CU_ADD_TEST(s, test_system_clock_moved_during_shutdown_is_safe);
  return ax_test_run();
}
