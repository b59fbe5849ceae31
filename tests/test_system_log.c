/* Logging: the level filter applies to every sink (custom log_fn too), and a
 * shutdown kept waiting by a behaviour that never returns says which actor
 * it waits for. */
#include <axon.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "actor/actor_int.h" /* ax__system_set_stall_warn_ms */
#include "support/testutil.h"

enum { T_BLOCK = AX_MSG_USER, T_FAIL };

/* A sink that records what it gets. */
typedef struct sink {
  pthread_mutex_t lock;
  _Atomic uint64_t lines;
  _Atomic uint64_t below_warn; /* lines of level DEBUG or INFO */
  _Atomic uint64_t matched;    /* lines containing both needles */
  char needle1[64], needle2[64];
  char last[512];
} sink;

static sink snk = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void sink_fn(ax_log_level level, const char *line, void *arg) {
  sink *s = arg;
  pthread_mutex_lock(&s->lock);
  atomic_fetch_add(&s->lines, 1);
  if (level < AX_LOG_WARN) atomic_fetch_add(&s->below_warn, 1);
  if (s->needle1[0] && strstr(line, s->needle1) && strstr(line, s->needle2)) {
    atomic_fetch_add(&s->matched, 1);
    snprintf(s->last, sizeof(s->last), "%s", line);
  }
  pthread_mutex_unlock(&s->lock);
}

static void sink_reset(void) {
  pthread_mutex_lock(&snk.lock);
  atomic_store(&snk.lines, 0);
  atomic_store(&snk.below_warn, 0);
  atomic_store(&snk.matched, 0);
  snk.needle1[0] = snk.needle2[0] = snk.last[0] = 0;
  pthread_mutex_unlock(&snk.lock);
}

static ax_system *sys_with_sink(ax_log_level level) {
  return ax_test_system_log(2, sink_fn, &snk, level);
}

/* ---- item 20 ---- */

static _Atomic uint64_t failed;
static ax_err failer(ax_actor *self, const ax_msg *msg) {
  atomic_fetch_add(&failed, 1);
  return AX_EINVAL; /* stops with an error reason: logged at DEBUG */
}
static const ax_actor_spec failer_spec = {.name = "failer", .behaviour = failer};

static void test_system_log_level_filters_custom_sink(void) {
  sink_reset();
  ax_system *sys = sys_with_sink(AX_LOG_WARN);
  ax_log(sys, AX_LOG_DEBUG, "debug %d", 1);
  ax_log(sys, AX_LOG_INFO, "info %d", 2);
  CU_ASSERT_EQUAL(atomic_load(&snk.lines), 0);
  ax_log(sys, AX_LOG_WARN, "warn %d", 3);
  ax_log(sys, AX_LOG_ERROR, "error %d", 4);
  CU_ASSERT_EQUAL(atomic_load(&snk.lines), 2);
  /* the runtime's own DEBUG lines are filtered too */
  ax_pid p;
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &failer_spec, NULL, 0, &p), AX_OK);
  CU_ASSERT_EQUAL(ax_system_send(sys, p, T_FAIL, NULL, 0), AX_OK);
  CU_ASSERT_EQUAL(ax_system_wait(sys, 10000), AX_OK);
  CU_ASSERT_EQUAL(atomic_load(&failed), 1);
  CU_ASSERT_EQUAL(atomic_load(&snk.below_warn), 0);
  ax_system_free(sys);

  /* and a sink that asks for DEBUG gets it */
  sink_reset();
  sys = sys_with_sink(AX_LOG_DEBUG);
  ax_log(sys, AX_LOG_DEBUG, "debug %d", 1);
  CU_ASSERT_EQUAL(atomic_load(&snk.below_warn), 1);
  ax_system_free(sys);
}

/* ---- item 21 ---- */

static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static bool gate_open;
static _Atomic uint64_t blocked;

static ax_err sleeper(ax_actor *self, const ax_msg *msg) {
  if (msg->type != T_BLOCK) return AX_OK;
  atomic_fetch_add(&blocked, 1);
  pthread_mutex_lock(&gate_lock); /* blocks until the test opens the gate */
  while (!gate_open) pthread_cond_wait(&gate_cv, &gate_lock);
  pthread_mutex_unlock(&gate_lock);
  return AX_OK;
}
static const ax_actor_spec sleeper_spec = {.name = "sleeper", .behaviour = sleeper};

typedef struct shut_arg {
  ax_system *sys;
  _Atomic int result;
  _Atomic uint64_t done;
} shut_arg;

static void *shut_thread(void *p) {
  shut_arg *a = p;
  atomic_store(&a->result, ax_system_shutdown(a->sys));
  atomic_store(&a->done, 1);
  return NULL;
}

static void test_system_shutdown_names_a_blocked_actor(void) {
  sink_reset();
  ax_system *sys = sys_with_sink(AX_LOG_WARN);
  ax__system_set_stall_warn_ms(sys, 50);
  ax_pid p;
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &sleeper_spec, NULL, 0, &p), AX_OK);
  pthread_mutex_lock(&snk.lock);
  snprintf(snk.needle1, sizeof(snk.needle1), "sleeper");
  snprintf(snk.needle2, sizeof(snk.needle2), "<%llx>", (unsigned long long)p.id);
  pthread_mutex_unlock(&snk.lock);
  CU_ASSERT_EQUAL(ax_system_send(sys, p, T_BLOCK, NULL, 0), AX_OK);
  CU_ASSERT_TRUE(ax_test_wait_count(&blocked, 1, 10000));

  static shut_arg sa;
  sa.sys = sys;
  atomic_store(&sa.result, -1);
  atomic_store(&sa.done, 0);
  pthread_t th;
  pthread_create(&th, NULL, shut_thread, &sa);
  CU_ASSERT_TRUE(ax_test_wait_count(&snk.matched, 1, 10000));
  CU_ASSERT_EQUAL(atomic_load(&sa.done), 0); /* still waiting for the sleeper */
  pthread_mutex_lock(&snk.lock);
  printf("(\"%s\") ", snk.last);
  pthread_mutex_unlock(&snk.lock);

  pthread_mutex_lock(&gate_lock);
  gate_open = true;
  pthread_cond_broadcast(&gate_cv);
  pthread_mutex_unlock(&gate_lock);
  CU_ASSERT_TRUE(ax_test_wait_count(&sa.done, 1, 10000));
  pthread_join(th, NULL);
  CU_ASSERT_EQUAL(atomic_load(&sa.result), AX_OK);
  ax_system_free(sys);
}

int main(void) {
  CU_pSuite s = ax_test_suite("system.log");
  CU_ADD_TEST(s, test_system_log_level_filters_custom_sink);
  CU_ADD_TEST(s, test_system_shutdown_names_a_blocked_actor);
  return ax_test_run();
}
