/* Tests for expiries that are never delivered. A fired one-shot's expiry
 * carries one of its timer's two references (src/actor/timers.c), so an
 * expiry dropped instead of delivered must release it: an owner that stops
 * with the expiry still in its mailbox (the drained mailbox), and one that
 * cancels the timer after it fired but before the expiry was delivered.
 * A missing release is a leak, which the ASan configuration reports; the
 * clock is injected (manual): no real sleep decides an outcome. */
#include <axon.h>
#include <sched.h>
#include <string.h>

#include "support/testutil.h"
#include "support/timer_clock.h"

enum { D_ARM = AX_MSG_USER, D_HOLD, D_TICK, D_CANCEL };

typedef struct dshared {
  _Atomic uint64_t armed, holding, ticks, cancelled, stopped;
  _Atomic bool release;
} dshared;

typedef struct dstate {
  dshared *sh;
  ax_timer t;
} dstate;

/* Spins (bounded: 10 s) until the test releases it. */
static void hold(dshared *sh) {
  atomic_fetch_add(&sh->holding, 1);
  for (int i = 0; i < 10000000 && !atomic_load(&sh->release); i++) sched_yield();
}

static ax_err holder_b(ax_actor *self, const ax_msg *msg) {
  dstate *st = ax_state(self);
  dshared *sh = st->sh;
  switch (msg->type) {
  case D_ARM: {
    char payload[40] = "an expiry with a payload"; /* a payload: the timer's size comes from it */
    ax_err e = ax_send_after(self, 5, ax_self(self), D_TICK, payload, sizeof payload, &st->t);
    atomic_fetch_add(&sh->armed, 1);
    return e;
  }
  case D_HOLD: /* the expiry is queued meanwhile; then stop without reading it */
    hold(sh);
    return AX_ECLOSED;
  case D_CANCEL: /* the expiry is queued behind this message: cancel it first */
    hold(sh);
    if (ax_timer_cancel(self, st->t) == AX_OK) atomic_fetch_add(&sh->cancelled, 1);
    return AX_OK;
  case D_TICK: atomic_fetch_add(&sh->ticks, 1); return AX_OK;
  default: return AX_OK;
  }
}

static ax_err holder_init(ax_actor *self, void *state, const void *arg, size_t len) {
  (void)self, (void)len;
  memcpy(&((dstate *)state)->sh, arg, sizeof(dshared *));
  return AX_OK;
}

static void holder_terminate(ax_actor *self, void *state, ax_reason reason) {
  (void)self, (void)reason;
  atomic_fetch_add(&((dstate *)state)->sh->stopped, 1);
}

static const ax_actor_spec holder_spec = {.name = "holder", .behaviour = holder_b, .state_size = sizeof(dstate),
                                          .init = holder_init, .terminate = holder_terminate};

static bool fired_one(void *arg) {
  ax_system_stats st;
  ax_system_stats_get(arg, &st);
  return st.timers_fired >= 1;
}

/* Arms the holder's timer, puts the holder in a long run (`what`), lets
 * the timer fire meanwhile: its expiry is queued behind that run. */
static ax_pid arm_and_fire_while_busy(ax_system *sys, dshared *sh, uint32_t what) {
  memset(sh, 0, sizeof(*sh));
  ax_pid p;
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &holder_spec, &sh, sizeof(sh), &p), AX_OK);
  CU_ASSERT_EQUAL_FATAL(ax_system_send(sys, p, D_ARM, NULL, 0), AX_OK);
  CU_ASSERT_TRUE_FATAL(ax_test_wait_count(&sh->armed, 1, 10000));
  CU_ASSERT_EQUAL_FATAL(ax_system_send(sys, p, what, NULL, 0), AX_OK);
  CU_ASSERT_TRUE_FATAL(ax_test_wait_count(&sh->holding, 1, 10000));
  timer_clock_advance(sys, 10);
  CU_ASSERT_TRUE(ax_test_wait(fired_one, sys, 10000));
  atomic_store(&sh->release, true);
  return p;
}

static void test_timer_expiry_in_a_stopped_owners_mailbox_is_released(void) {
  ax_system *sys = timer_clock_system(2);
  static dshared sh;
  arm_and_fire_while_busy(sys, &sh, D_HOLD);
  CU_ASSERT_TRUE(ax_test_wait_count(&sh.stopped, 1, 10000));
  CU_ASSERT_EQUAL(atomic_load(&sh.ticks), 0); /* never delivered: the owner stopped first */
  ax_system_free(sys);                       /* ASan: the timer must not leak */
}

static void test_timer_cancel_after_fire_releases_the_queued_expiry(void) {
  ax_system *sys = timer_clock_system(2);
  static dshared sh;
  ax_pid p = arm_and_fire_while_busy(sys, &sh, D_CANCEL);
  CU_ASSERT_TRUE(ax_test_wait_count(&sh.cancelled, 1, 10000));
  /* The expiry queued behind D_CANCEL is judged after it: dropped. A sync
   * message after it shows it has been (mailbox order). */
  CU_ASSERT_EQUAL(ax_system_send(sys, p, D_ARM, NULL, 0), AX_OK);
  CU_ASSERT_TRUE(ax_test_wait_count(&sh.armed, 2, 10000));
  CU_ASSERT_EQUAL(atomic_load(&sh.ticks), 0); /* cancelled: never delivered */
  ax_system_free(sys);                       /* ASan: neither timer leaks */
}

int main(void) {
  CU_pSuite s = ax_test_suite("timer.drop");
  CU_ADD_TEST(s, test_timer_expiry_in_a_stopped_owners_mailbox_is_released);
  CU_ADD_TEST(s, test_timer_cancel_after_fire_releases_the_queued_expiry);
  return ax_test_run();
}
