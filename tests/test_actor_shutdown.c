/* Shutdown: full mailboxes are dropped with every buffer released, every
 * terminate runs once, timers and names go away, and nothing leaks (ASan's
 * leak checker and valgrind runs see the whole process). */
#include <axon.h>
#include <string.h>

#include "support/testutil.h"

enum { T_DATA = AX_MSG_USER };

typedef struct slow_shared {
  _Atomic uint64_t delivered;
  _Atomic uint64_t terminated;
} slow_shared;

static ax_err slow(ax_actor *self, const ax_msg *msg) {
  slow_shared *sh = *(slow_shared **)ax_state(self);
  atomic_fetch_add(&sh->delivered, 1);
  if (atomic_load(&sh->delivered) % 64 == 0) ax_test_sleep_ms(1); /* slow consumer */
  return AX_OK;
}
static void slow_term(ax_actor *self, void *state, ax_reason reason) {
  slow_shared *sh = *(slow_shared **)state;
  atomic_fetch_add(&sh->terminated, 1);
}
static ax_err ptr_init(ax_actor *self, void *state, const void *arg, size_t len) {
  memcpy(state, arg, len);
  return AX_OK;
}
static const ax_actor_spec slow_spec = {.name = "slow", .behaviour = slow,
                                        .state_size = sizeof(void *), .init = ptr_init,
                                        .terminate = slow_term};

static void on_free(void *data, size_t cap, void *arg) { atomic_fetch_add((_Atomic uint64_t *)arg, 1); }

static void test_shutdown_with_full_mailboxes_releases_everything(void) {
  ax_system *sys;
  CU_ASSERT_EQUAL_FATAL(ax_system_new(NULL, &sys), AX_OK);
  static slow_shared sh;
  memset(&sh, 0, sizeof(sh));
  slow_shared *shp = &sh;
  enum { ACTORS = 8, PER = 2000 };
  ax_pid pids[ACTORS];
  for (int i = 0; i < ACTORS; i++)
    CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &slow_spec, &shp, sizeof(shp), &pids[i]), AX_OK);
  static char payload[32];
  _Atomic uint64_t freed = 0;
  uint64_t sent = 0;
  for (int k = 0; k < PER; k++) {
    for (int i = 0; i < ACTORS; i++) {
      ax_buf *b;
      CU_ASSERT_EQUAL_FATAL(ax_buf_wrap(payload, sizeof(payload), on_free, &freed, &b), AX_OK);
      if (ax_system_send_buf(sys, pids[i], T_DATA, b, 0, 16) == AX_OK) sent++;
      ax_system_send(sys, pids[i], T_DATA, payload, sizeof(payload)); /* copied ones too */
      ax_buf_release(b);
    }
  }
  CU_ASSERT_EQUAL(sent, (uint64_t)ACTORS * PER);
  CU_ASSERT_EQUAL(ax_system_shutdown(sys), AX_OK);
  ax_system_stats st;
  ax_system_stats_get(sys, &st);
  CU_ASSERT_EQUAL(atomic_load(&sh.terminated), ACTORS);
  /* every message was either delivered or dropped as a dead letter */
  CU_ASSERT_EQUAL(atomic_load(&sh.delivered) + st.dead_letters, 2 * sent);
  CU_ASSERT_EQUAL(atomic_load(&freed), sent); /* every buffer released */
  CU_ASSERT_EQUAL(st.actors_alive, 0);
  ax_system_free(sys);
}

/* An actor with pending timers and a name at shutdown. */
static ax_err timer_owner(ax_actor *self, const ax_msg *msg) {
  for (int i = 0; i < 100; i++) {
    ax_err e = ax_send_after(self, 60000 + (uint32_t)i, ax_self(self), T_DATA, &i, sizeof(i), NULL);
    if (e != AX_OK) return e;
  }
  return ax_send_interval(self, 1000, 0, ax_self(self), T_DATA, NULL, 0, NULL);
}
static const ax_actor_spec timer_owner_spec = {.name = "timer_owner", .behaviour = timer_owner};

static void test_shutdown_with_timers_and_names_leaks_nothing(void) {
  ax_system *sys;
  CU_ASSERT_EQUAL_FATAL(ax_system_new(NULL, &sys), AX_OK);
  for (int i = 0; i < 20; i++) {
    ax_pid p;
    char name[16];
    CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &timer_owner_spec, NULL, 0, &p), AX_OK);
    snprintf(name, sizeof(name), "owner%d", i);
    CU_ASSERT_EQUAL(ax_register(sys, name, p), AX_OK);
    CU_ASSERT_EQUAL(ax_system_send(sys, p, T_DATA, NULL, 0), AX_OK);
  }
  ax_test_sleep_ms(20);
  CU_ASSERT_EQUAL(ax_system_shutdown(sys), AX_OK);
  ax_pid f;
  CU_ASSERT_EQUAL(ax_whereis(sys, "owner3", &f), AX_ENOTFOUND);
  ax_system_free(sys); /* LSan checks the timers' memory */
}

static void test_shutdown_from_worker_is_refused(void);

int main(void) {
  CU_pSuite s = ax_test_suite("actor.shutdown");
  CU_ADD_TEST(s, test_shutdown_with_full_mailboxes_releases_everything);
  CU_ADD_TEST(s, test_shutdown_with_timers_and_names_leaks_nothing);
  CU_ADD_TEST(s, test_shutdown_from_worker_is_refused);
  return ax_test_run();
}

static _Atomic int shutdown_result = -1;
static ax_err try_shutdown(ax_actor *self, const ax_msg *msg) {
  atomic_store(&shutdown_result, ax_system_shutdown(ax_actor_system(self)));
  return AX_OK;
}
static const ax_actor_spec try_spec = {.name = "try", .behaviour = try_shutdown};

static void test_shutdown_from_worker_is_refused(void) {
  ax_system *sys;
  CU_ASSERT_EQUAL_FATAL(ax_system_new(NULL, &sys), AX_OK);
  ax_pid p;
  ax_system_spawn(sys, &try_spec, NULL, 0, &p);
  ax_system_send(sys, p, T_DATA, NULL, 0);
  for (int i = 0; i < 10000 && atomic_load(&shutdown_result) < 0; i++) ax_test_sleep_ms(1);
  CU_ASSERT_EQUAL(atomic_load(&shutdown_result), AX_ESTATE);
  ax_system_free(sys);
}
