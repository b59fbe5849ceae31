/* Axon tests: the supervisor suites' shared harness: probe workers that
 * record starts, stops, reasons and order; a system with a manual clock and
 * a captured log; small helpers over the supervisor API. */
#ifndef AX_SUP_HARNESS_H
#define AX_SUP_HARNESS_H

#include <axon.h>

#include "support/testutil.h"

enum { W_CRASH = AX_MSG_USER, W_NORMAL, W_SHUTDOWN };
enum { WF_TRAP = 1, WF_CRASH_AT_ONCE = 2 };
#define NW 16
#define WAIT_MS 20000
typedef struct wctx {
  _Atomic uint64_t starts[NW], stops[NW], pid[NW], token[NW], exits_seen[NW];
  _Atomic uint64_t total_starts, total_stops;
  _Atomic int32_t reason[NW];
  _Atomic int fail_init[NW];
  _Atomic uint32_t nstart, nstop;
  _Atomic int start_order[256], stop_order[256];
} wctx;
typedef struct warg {
  wctx *ctx;
  uint32_t idx, flags;
  uint64_t token;
} warg;
typedef struct wstate {
  wctx *ctx;
  uint32_t idx;
} wstate;

extern wctx g;              /* what the probes record (reset by sys_new) */
extern warg wa[NW];         /* the probes' init arguments */
extern const ax_actor_spec w_spec;
extern _Atomic uint64_t clock_now;

ax_err w_init(ax_actor *self, void *state, const void *arg, size_t len);
ax_err w_behaviour(ax_actor *self, const ax_msg *msg);
void w_terminate(ax_actor *self, void *state, ax_reason reason);
ax_child_spec wchild(const char *id, uint32_t idx, ax_restart r);
void log_fn(ax_log_level level, const char *line, void *arg);
bool log_has(const char *s);
uint64_t manual_clock(void *arg);
ax_system *sys_new(void); /* workers 2, manual clock, captured log; resets g */
ax_system *sys_new_real_clock(void); /* the same with the real clock */
void advance(ax_system *sys, uint64_t ms);
bool pid_dead(ax_system *sys, ax_pid p);
bool wait_n(_Atomic uint64_t *c, uint64_t n);
void crash(ax_system *sys, uint32_t idx, uint32_t how);
ax_pid start_sup(ax_system *sys, ax_sup_strategy strat, const ax_child_spec *kids, size_t n, uint32_t intensity);
size_t which(ax_system *sys, ax_pid sup, ax_sup_child_info *out, size_t cap);
ax_sup_counts counts(ax_system *sys, ax_pid sup);

#endif
