/* Axon tests: the supervisor suites' shared harness (see sup_harness.h). */
#include <pthread.h>
#include <string.h>

#include "support/sup_harness.h"
/* ---- harness: probe workers that record what happens to them ---- */





wctx g;

ax_err w_init(ax_actor *self, void *state, const void *arg, size_t len) {
  warg a;
  if (len != sizeof(a)) return AX_EINVAL;
  memcpy(&a, arg, sizeof(a));
  wstate *st = state;
  st->ctx = a.ctx;
  st->idx = a.idx % NW;
  wctx *c = a.ctx;
  if (atomic_load(&c->fail_init[st->idx])) return AX_EINVAL;
  atomic_store(&c->token[st->idx], a.token);
  atomic_store(&c->pid[st->idx], ax_self(self).id);
  uint32_t k = atomic_fetch_add(&c->nstart, 1);
  if (k < 256) atomic_store(&c->start_order[k], (int)st->idx);
  atomic_fetch_add(&c->starts[st->idx], 1);
  atomic_fetch_add(&c->total_starts, 1);
  if (a.flags & WF_TRAP) ax_trap_exit(self, true);
  if (a.flags & WF_CRASH_AT_ONCE) return ax_send(self, ax_self(self), W_CRASH, NULL, 0);
  return AX_OK;
}

ax_err w_behaviour(ax_actor *self, const ax_msg *msg) {
  switch (msg->type) {
  case W_CRASH: return AX_EINVAL;
  case W_NORMAL: return ax_exit(self, ax_self(self), AX_REASON_NORMAL);
  case W_SHUTDOWN: return ax_exit(self, ax_self(self), AX_REASON_SHUTDOWN);
  case AX_MSG_EXIT: { /* only trapping probes see these: they ignore them */
    wstate *st = ax_state(self);
    atomic_fetch_add(&st->ctx->exits_seen[st->idx], 1);
    return AX_OK;
  }
  default: return AX_OK;
  }
}

void w_terminate(ax_actor *self, void *state, ax_reason reason) {
  wstate *st = state;
  wctx *c = st->ctx;
  atomic_store(&c->reason[st->idx], reason);
  uint32_t k = atomic_fetch_add(&c->nstop, 1);
  if (k < 256) atomic_store(&c->stop_order[k], (int)st->idx);
  atomic_fetch_add(&c->stops[st->idx], 1);
  atomic_fetch_add(&c->total_stops, 1);
}

const ax_actor_spec w_spec = {.name = "probe", .behaviour = w_behaviour,
                                     .state_size = sizeof(wstate), .init = w_init,
                                     .terminate = w_terminate};

warg wa[NW];

ax_child_spec wchild(const char *id, uint32_t idx, ax_restart r) {
  wa[idx] = (warg){.ctx = &g, .idx = idx, .token = idx};
  return (ax_child_spec){.id = id, .start = &w_spec, .arg = &wa[idx], .arg_len = sizeof(warg),
                         .restart = r};
}

/* ---- log capture ---- */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char log_buf[1 << 20];
size_t log_len;

void log_fn(ax_log_level level, const char *line, void *arg) {
  if (level == AX_LOG_DEBUG) return;
  pthread_mutex_lock(&log_lock);
  size_t n = strlen(line);
  if (log_len + n + 2 < sizeof(log_buf)) {
    memcpy(log_buf + log_len, line, n);
    log_len += n;
    log_buf[log_len++] = '\n';
    log_buf[log_len] = 0;
  }
  pthread_mutex_unlock(&log_lock);
}

bool log_has(const char *s) {
  pthread_mutex_lock(&log_lock);
  bool r = strstr(log_buf, s) != NULL;
  pthread_mutex_unlock(&log_lock);
  return r;
}

/* ---- system with a manual clock ---- */
_Atomic uint64_t clock_now;
uint64_t manual_clock(void *arg) { return atomic_load(&clock_now); }

static ax_system *make_sys(bool manual) {
  memset(&g, 0, sizeof(g));
  pthread_mutex_lock(&log_lock);
  log_len = 0;
  log_buf[0] = 0;
  pthread_mutex_unlock(&log_lock);
  atomic_store(&clock_now, 1000000);
  ax_system_config cfg;
  ax_system_config_init(&cfg);
  cfg.workers = 2;
  if (manual) cfg.clock_ms = manual_clock;
  cfg.log_fn = log_fn;
  ax_system *sys = NULL;
  CU_ASSERT_EQUAL_FATAL(ax_system_new(&cfg, &sys), AX_OK);
  return sys;
}

ax_system *sys_new(void) { return make_sys(true); }
ax_system *sys_new_real_clock(void) { return make_sys(false); }

void advance(ax_system *sys, uint64_t ms) {
  atomic_fetch_add(&clock_now, ms);
  ax_system_clock_moved(sys);
}

bool pid_dead(ax_system *sys, ax_pid p) {
  for (int i = 0; i < WAIT_MS; i++) {
    ax_actor_stats st;
    if (ax_actor_stats_get(sys, p, &st) == AX_ENOACTOR) return true;
    ax_test_sleep_ms(1);
  }
  return false;
}

bool wait_n(_Atomic uint64_t *c, uint64_t n) { return ax_test_wait_count(c, n, WAIT_MS); }

void crash(ax_system *sys, uint32_t idx, uint32_t how) {
  CU_ASSERT_EQUAL(ax_system_send(sys, (ax_pid){atomic_load(&g.pid[idx])}, how, NULL, 0), AX_OK);
}

ax_pid start_sup(ax_system *sys, ax_sup_strategy strat, const ax_child_spec *kids,
                        size_t n, uint32_t intensity) {
  ax_sup_spec spec = {.name = "top", .strategy = strat, .intensity = intensity,
                      .children = kids, .nchildren = n};
  ax_pid sup = AX_PID_NONE;
  CU_ASSERT_EQUAL_FATAL(ax_supervisor_start(sys, &spec, &sup), AX_OK);
  return sup;
}

/* which_children into a small array; returns the count. */
size_t which(ax_system *sys, ax_pid sup, ax_sup_child_info *out, size_t cap) {
  size_t n = cap;
  CU_ASSERT_EQUAL(ax_supervisor_which_children(sys, sup, WAIT_MS, out, &n), AX_OK);
  return n;
}

ax_sup_counts counts(ax_system *sys, ax_pid sup) {
  ax_sup_counts k;
  memset(&k, 0, sizeof(k));
  CU_ASSERT_EQUAL(ax_supervisor_count_children(sys, sup, WAIT_MS, &k), AX_OK);
  return k;
}
