/* Tests for the name registry: register, whereis, unregister, duplicates,
 * and release of a name when its actor stops. */
#include <axon.h>
#include <string.h>

#include "support/testutil.h"

static ax_err quit_on_msg(ax_actor *self, const ax_msg *msg) {
  return ax_exit(self, ax_self(self), AX_REASON_NORMAL);
}
static const ax_actor_spec quitter = {.name = "quitter", .behaviour = quit_on_msg};

static ax_system *sys_new(void) {
  ax_system *sys;
  CU_ASSERT_EQUAL_FATAL(ax_system_new(NULL, &sys), AX_OK);
  return sys;
}

static void test_registry_register_whereis_unregister(void) {
  ax_system *sys = sys_new();
  ax_pid a, b, found = AX_PID_NONE;
  ax_system_spawn(sys, &quitter, NULL, 0, &a);
  ax_system_spawn(sys, &quitter, NULL, 0, &b);
  CU_ASSERT_EQUAL(ax_register(sys, "alpha", a), AX_OK);
  CU_ASSERT_EQUAL(ax_whereis(sys, "alpha", &found), AX_OK);
  CU_ASSERT_TRUE(ax_pid_eq(found, a));
  CU_ASSERT_EQUAL(ax_whereis(sys, "beta", &found), AX_ENOTFOUND);
  CU_ASSERT_EQUAL(ax_unregister(sys, "alpha"), AX_OK);
  CU_ASSERT_EQUAL(ax_whereis(sys, "alpha", &found), AX_ENOTFOUND);
  CU_ASSERT_EQUAL(ax_unregister(sys, "alpha"), AX_ENOTFOUND);
  CU_ASSERT_EQUAL(ax_register(sys, "alpha", b), AX_OK); /* name free again */
  ax_system_free(sys);
}

static void test_registry_duplicate_name_is_eexist(void) {
  ax_system *sys = sys_new();
  ax_pid a, b, found;
  ax_system_spawn(sys, &quitter, NULL, 0, &a);
  ax_system_spawn(sys, &quitter, NULL, 0, &b);
  CU_ASSERT_EQUAL(ax_register(sys, "svc", a), AX_OK);
  CU_ASSERT_EQUAL(ax_register(sys, "svc", b), AX_EEXIST);
  CU_ASSERT_EQUAL(ax_register(sys, "other", a), AX_EEXIST); /* one name per actor */
  CU_ASSERT_EQUAL(ax_whereis(sys, "svc", &found), AX_OK);
  CU_ASSERT_TRUE(ax_pid_eq(found, a));
  ax_system_free(sys);
}

static void test_registry_bad_names_and_dead_pids(void) {
  ax_system *sys = sys_new();
  ax_pid a;
  ax_system_spawn(sys, &quitter, NULL, 0, &a);
  char longname[300];
  memset(longname, 'x', sizeof(longname) - 1);
  longname[sizeof(longname) - 1] = 0;
  CU_ASSERT_EQUAL(ax_register(sys, "", a), AX_EINVAL);
  CU_ASSERT_EQUAL(ax_register(sys, NULL, a), AX_EINVAL);
  CU_ASSERT_EQUAL(ax_register(sys, longname, a), AX_EINVAL);
  ax_system_send(sys, a, AX_MSG_USER, NULL, 0);
  CU_ASSERT_EQUAL(ax_system_wait(sys, 10000), AX_OK);
  CU_ASSERT_EQUAL(ax_register(sys, "late", a), AX_ENOACTOR);
  ax_system_free(sys);
}

static void test_registry_name_released_when_actor_stops(void) {
  ax_system *sys = sys_new();
  ax_pid a, b, found;
  ax_system_spawn(sys, &quitter, NULL, 0, &a);
  CU_ASSERT_EQUAL(ax_register(sys, "worker", a), AX_OK);
  ax_system_send(sys, a, AX_MSG_USER, NULL, 0);
  CU_ASSERT_EQUAL(ax_system_wait(sys, 10000), AX_OK);
  CU_ASSERT_EQUAL(ax_whereis(sys, "worker", &found), AX_ENOTFOUND);
  ax_system_spawn(sys, &quitter, NULL, 0, &b);
  CU_ASSERT_EQUAL(ax_register(sys, "worker", b), AX_OK);
  ax_system_free(sys);
}

static void test_registry_many_names(void) {
  ax_system *sys = sys_new();
  enum { N = 5000 };
  static ax_pid pids[N];
  char name[32];
  for (int i = 0; i < N; i++) {
    ax_system_spawn(sys, &quitter, NULL, 0, &pids[i]);
    snprintf(name, sizeof(name), "n%d", i);
    CU_ASSERT_EQUAL(ax_register(sys, name, pids[i]), AX_OK);
  }
  for (int i = 0; i < N; i += 7) {
    ax_pid f = AX_PID_NONE;
    snprintf(name, sizeof(name), "n%d", i);
    CU_ASSERT_EQUAL(ax_whereis(sys, name, &f), AX_OK);
    CU_ASSERT_TRUE(ax_pid_eq(f, pids[i]));
  }
  for (int i = 0; i < N; i += 2) ax_system_send(sys, pids[i], AX_MSG_USER, NULL, 0);
  ax_test_sleep_ms(1);
  for (int i = 0; i < N; i += 2) {
    snprintf(name, sizeof(name), "n%d", i);
    ax_pid f;
    for (int tries = 0; tries < 10000 && ax_whereis(sys, name, &f) == AX_OK; tries++)
      ax_test_sleep_ms(1);
    CU_ASSERT_EQUAL(ax_whereis(sys, name, &f), AX_ENOTFOUND);
  }
  snprintf(name, sizeof(name), "n%d", 1);
  ax_pid f;
  CU_ASSERT_EQUAL(ax_whereis(sys, name, &f), AX_OK);
  ax_system_free(sys);
}

int main(void) {
  CU_pSuite s = ax_test_suite("actor.registry");
  CU_ADD_TEST(s, test_registry_register_whereis_unregister);
  CU_ADD_TEST(s, test_registry_duplicate_name_is_eexist);
  CU_ADD_TEST(s, test_registry_bad_names_and_dead_pids);
  CU_ADD_TEST(s, test_registry_name_released_when_actor_stops);
  CU_ADD_TEST(s, test_registry_many_names);
  return ax_test_run();
}
