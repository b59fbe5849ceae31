/* Axon tests: a system on a manual clock, for the timer suites (no real
 * sleep decides an outcome). One clock per test executable. */
#ifndef AX_TIMER_CLOCK_H
#define AX_TIMER_CLOCK_H

#include "support/testutil.h"

static _Atomic uint64_t timer_clock_ms;

static uint64_t timer_clock_read(void *arg) {
  (void)arg;
  return atomic_load(&timer_clock_ms);
}

static inline uint64_t timer_clock_now(void) { return atomic_load(&timer_clock_ms); }

/* A system with `workers` workers whose clock starts at 1000 ms and moves
 * only by timer_clock_advance. */
static inline ax_system *timer_clock_system(uint32_t workers) {
  ax_system_config cfg;
  ax_system_config_init(&cfg);
  cfg.workers = workers;
  cfg.clock_ms = timer_clock_read;
  atomic_store(&timer_clock_ms, 1000);
  ax_system *sys;
  CU_ASSERT_EQUAL_FATAL(ax_system_new(&cfg, &sys), AX_OK);
  return sys;
}

/* Moves the clock forward and tells the timer service. */
static inline void timer_clock_advance(ax_system *sys, uint64_t ms) {
  atomic_fetch_add(&timer_clock_ms, ms);
  ax_system_clock_moved(sys);
}

/* ax_test_wait predicate: no timer pending in the system (arg). */
static inline bool timer_pending_zero(void *arg) {
  ax_system_stats st;
  ax_system_stats_get(arg, &st);
  return st.timers_pending == 0;
}

#endif
