/* The tracing hooks (ax_trace_set): spawn, send, receive and stop events
 * arrive with the right pids and types, in the actor's own order; a SEND
 * comes before its RECEIVE; a failed init gives SPAWN then STOP; with the
 * tracer removed nothing more arrives. */
#include <pthread.h>
#include <string.h>

#include "support/testutil.h"

enum { T_SELF = AX_MSG_USER + 1, T_PING, T_DONE };
enum { MAXEV = 256 };

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static ax_trace_event evs[MAXEV];
static size_t nev;

static void record(const ax_trace_event *ev, void *arg) {
  (void)arg;
  pthread_mutex_lock(&lock);
  if (nev < MAXEV) {
    evs[nev] = *ev;
    evs[nev].name = NULL; /* borrowed for the call only */
    nev++;
  }
  pthread_mutex_unlock(&lock);
}
static const ax_tracer tracer = {record, NULL};

static ax_err a_init(ax_actor *self, void *state, const void *arg, size_t len) {
  (void)state, (void)arg, (void)len;
  return ax_send(self, ax_self(self), T_SELF, "s", 1);
}
static ax_err a_b(ax_actor *self, const ax_msg *m) {
  int *pings = ax_state(self);
  if (m->type == T_PING && ++*pings == 3) return ax_send(self, ax_self(self), T_DONE, NULL, 0);
  if (m->type == T_DONE) return ax_exit(self, ax_self(self), AX_REASON_NORMAL);
  return AX_OK;
}
static const ax_actor_spec a_spec = {.name = "traced", .behaviour = a_b, .init = a_init,
                                     .state_size = sizeof(int)};

static ax_err fail_init(ax_actor *self, void *state, const void *arg, size_t len) {
  (void)self, (void)state, (void)arg, (void)len;
  return AX_ENOMEM;
}
static const ax_actor_spec fail_spec = {.name = "fails", .behaviour = a_b, .init = fail_init};

typedef struct want {
  ax_trace_kind kind;
  uint64_t peer;
  uint32_t type;
} want;

static void test_metrics_trace_single_actor_events_in_order(void) {
  nev = 0;
  ax_system *sys = ax_test_system(2);
  const ax_tracer bad = {NULL, NULL};
  CU_ASSERT_EQUAL(ax_trace_set(sys, &bad), AX_EINVAL);
  CU_ASSERT_EQUAL(ax_trace_set(NULL, &tracer), AX_EINVAL);
  CU_ASSERT_EQUAL_FATAL(ax_trace_set(sys, &tracer), AX_OK);
  ax_pid a;
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &a_spec, NULL, 0, &a), AX_OK);
  for (int i = 0; i < 3; i++) CU_ASSERT_EQUAL(ax_system_send(sys, a, T_PING, "pp", 2), AX_OK);
  CU_ASSERT_EQUAL_FATAL(ax_system_wait(sys, 20000), AX_OK);
  CU_ASSERT_EQUAL(ax_trace_set(sys, NULL), AX_OK);
  size_t before = nev;
  ax_pid b;
  CU_ASSERT_EQUAL(ax_system_spawn(sys, &fail_spec, NULL, 0, &b), AX_ENOMEM);
  CU_ASSERT_EQUAL(nev, before); /* off: nothing more */

  const want w[] = {{AX_TRACE_SPAWN, 0, 0},         {AX_TRACE_SEND, a.id, T_SELF},
                    {AX_TRACE_RECEIVE, a.id, T_SELF}, {AX_TRACE_RECEIVE, 0, T_PING},
                    {AX_TRACE_RECEIVE, 0, T_PING},  {AX_TRACE_RECEIVE, 0, T_PING},
                    {AX_TRACE_SEND, a.id, T_DONE},  {AX_TRACE_RECEIVE, a.id, T_DONE},
                    {AX_TRACE_STOP, 0, 0}};
  size_t k = 0, sends_from_outside = 0;
  for (size_t i = 0; i < before; i++) {
    const ax_trace_event *e = &evs[i];
    if (e->kind == AX_TRACE_SEND && ax_pid_is_none(e->actor)) {
      /* main's sends: each before the RECEIVE it causes */
      CU_ASSERT_EQUAL(e->peer.id, a.id);
      CU_ASSERT_EQUAL(e->type, T_PING);
      CU_ASSERT_EQUAL(e->len, 2);
      size_t recv_seen = 0;
      for (size_t j = 0; j < i; j++)
        recv_seen += evs[j].kind == AX_TRACE_RECEIVE && evs[j].type == T_PING;
      CU_ASSERT(recv_seen <= sends_from_outside);
      sends_from_outside++;
      continue;
    }
    CU_ASSERT_EQUAL(e->actor.id, a.id);
    if (k >= sizeof w / sizeof w[0]) {
      CU_FAIL("more events than expected");
      continue;
    }
    CU_ASSERT_EQUAL(e->kind, w[k].kind);
    CU_ASSERT_EQUAL(e->peer.id, w[k].peer);
    CU_ASSERT_EQUAL(e->type, w[k].type);
    if (e->kind == AX_TRACE_STOP) CU_ASSERT_EQUAL(e->reason, AX_REASON_NORMAL);
    k++;
  }
  CU_ASSERT_EQUAL(k, sizeof w / sizeof w[0]);
  CU_ASSERT_EQUAL(sends_from_outside, 3);
  ax_system_free(sys);
}

static void test_metrics_trace_failed_init_is_spawn_then_stop(void) {
  nev = 0;
  ax_system *sys = ax_test_system(1);
  CU_ASSERT_EQUAL_FATAL(ax_trace_set(sys, &tracer), AX_OK);
  ax_pid b;
  CU_ASSERT_EQUAL(ax_system_spawn(sys, &fail_spec, NULL, 0, &b), AX_ENOMEM);
  CU_ASSERT_EQUAL_FATAL(nev, 2);
  CU_ASSERT_EQUAL(evs[0].kind, AX_TRACE_SPAWN);
  CU_ASSERT_EQUAL(evs[1].kind, AX_TRACE_STOP);
  CU_ASSERT_EQUAL(evs[0].actor.id, evs[1].actor.id);
  CU_ASSERT_EQUAL(evs[1].reason, AX_REASON_ERROR + AX_ENOMEM);
  CU_ASSERT_STRING_EQUAL(ax_trace_kind_str(AX_TRACE_RECEIVE), "receive");
  CU_ASSERT_STRING_EQUAL(ax_trace_kind_str((ax_trace_kind)99), "?");
  ax_system_free(sys);
}

int main(void) {
  CU_pSuite s = ax_test_suite("metrics.trace");
  CU_ADD_TEST(s, test_metrics_trace_single_actor_events_in_order);
  CU_ADD_TEST(s, test_metrics_trace_failed_init_is_spawn_then_stop);
  return ax_test_run();
}
