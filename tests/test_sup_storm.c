/* Axon tests: supervisor restart storms in deterministic mode
 * (cfg.deterministic_seed). Crasher actors send crash orders to named
 * workers while their supervisor restarts them; which order reaches which
 * incarnation depends on the interleaving. A seed replays its run byte for
 * byte (the trace of every start, delivery and stop, and the supervisor's
 * counters read with ax_call), and other seeds explore other runs. */
#include <stdio.h>
#include <string.h>

#include "support/testutil.h"

enum { M_GO = AX_MSG_USER, M_NEXT, M_CRASH, M_WORK };
#define NWORKERS 4

#define TRACE_MAX (1 << 17)

/* ---- workers: named w0..w3, crash on M_CRASH ---- */

typedef struct wk_st {
  uint32_t idx;
} wk_st;

static ax_err wk_init(ax_actor *self, void *state, const void *arg, size_t len) {
  wk_st *s = state;
  if (len != sizeof s->idx) return AX_EINVAL;
  memcpy(&s->idx, arg, len);
  char name[8];
  snprintf(name, sizeof name, "w%u", s->idx);
  ax_test_tracef("start w%u %llx\n", s->idx, (unsigned long long)ax_self(self).id);
  return ax_register(ax_actor_system(self), name, ax_self(self));
}

static ax_err wk_b(ax_actor *self, const ax_msg *m) {
  wk_st *s = ax_state(self);
  uint32_t v = 0;
  if (m->len == sizeof v) memcpy(&v, m->data, sizeof v);
  ax_test_tracef("w%u %llx <- %llx type %u val %u\n", s->idx, (unsigned long long)ax_self(self).id,
         (unsigned long long)m->from.id, m->type, v);
  return m->type == M_CRASH ? AX_EINVAL : AX_OK;
}

static void wk_term(ax_actor *self, void *state, ax_reason r) {
  (void)self;
  ax_test_tracef("stop w%u %s\n", ((wk_st *)state)->idx, ax_reason_str(r));
}

static const ax_actor_spec wk_spec = {.name = "worker", .behaviour = wk_b, .init = wk_init,
                                      .terminate = wk_term, .state_size = sizeof(wk_st)};

/* ---- crashers: one order per run, to the worker that has the name now ---- */

typedef struct cr_st {
  uint32_t id, left, next;
} cr_st;

static ax_err cr_init(ax_actor *self, void *state, const void *arg, size_t len) {
  (void)self;
  if (len != sizeof(cr_st)) return AX_EINVAL;
  memcpy(state, arg, len);
  return AX_OK;
}

static ax_err cr_b(ax_actor *self, const ax_msg *m) {
  cr_st *s = ax_state(self);
  if ((m->type != M_GO && m->type != M_NEXT) || !s->left) return AX_OK;
  s->left--;
  char name[8];
  snprintf(name, sizeof name, "w%u", s->next);
  s->next = (s->next + 1 + s->id) % NWORKERS;
  ax_pid to;
  uint32_t v = s->id * 1000 + s->left;
  /* Between a worker's crash and its restart the name is free: a miss. */
  if (ax_whereis(ax_actor_system(self), name, &to) != AX_OK)
    ax_test_tracef("c%u miss %s\n", s->id, name);
  else if (ax_send(self, to, s->left % 3 ? M_WORK : M_CRASH, &v, sizeof v) != AX_OK)
    ax_test_tracef("c%u dead %s\n", s->id, name);
  return s->left ? ax_send(self, ax_self(self), M_NEXT, NULL, 0) : AX_OK;
}

static const ax_actor_spec cr_spec = {.name = "crasher", .behaviour = cr_b, .init = cr_init,
                                      .state_size = sizeof(cr_st)};

/* ---- a watcher that records its supervisor's end ---- */

static ax_err watch_init(ax_actor *self, void *state, const void *arg, size_t len) {
  (void)state;
  ax_pid sup;
  if (len != sizeof sup) return AX_EINVAL;
  memcpy(&sup, arg, len);
  return ax_monitor(self, sup, NULL);
}

static ax_err watch_b(ax_actor *self, const ax_msg *m) {
  (void)self;
  if (m->type == AX_MSG_DOWN) {
    const ax_down_info *d = m->data;
    ax_test_tracef("supervisor down: %s\n", ax_reason_str(d->reason));
  }
  return AX_OK;
}

static const ax_actor_spec watch_spec = {.name = "watcher", .behaviour = watch_b,
                                         .init = watch_init};

static void quiet_log(ax_log_level level, const char *line, void *arg) {
  (void)level, (void)line, (void)arg; /* a storm logs every crash */
}

/* Runs one storm: strategy, intensity, seed; the trace stays in ax_test_trace. */
static void storm(ax_sup_strategy strat, uint32_t intensity, uint64_t seed) {
  ax_test_trace_reset();
  ax_system *sys = ax_test_det_system(seed, quiet_log);
  static uint32_t idx[NWORKERS] = {0, 1, 2, 3};
  ax_child_spec kids[NWORKERS];
  char ids[NWORKERS][8];
  for (int i = 0; i < NWORKERS; i++) {
    snprintf(ids[i], sizeof ids[i], "k%d", i);
    kids[i] = (ax_child_spec){.id = ids[i], .start = &wk_spec, .arg = &idx[i],
                              .arg_len = sizeof idx[i], .shutdown = 100};
  }
  ax_sup_spec spec = {.name = "storm", .strategy = strat, .intensity = intensity,
                      .period_ms = 5000, .children = kids, .nchildren = NWORKERS};
  ax_pid sup, w, c[3];
  CU_ASSERT_FATAL(ax_supervisor_start(sys, &spec, &sup) == AX_OK);
  CU_ASSERT_FATAL(ax_system_spawn(sys, &watch_spec, &sup, sizeof sup, &w) == AX_OK);
  for (uint32_t i = 0; i < 3; i++) {
    cr_st st = {.id = i, .left = 12, .next = i};
    CU_ASSERT_FATAL(ax_system_spawn(sys, &cr_spec, &st, sizeof st, &c[i]) == AX_OK);
    CU_ASSERT(ax_system_send(sys, c[i], M_GO, NULL, 0) == AX_OK);
  }
  CU_ASSERT(ax_system_run_until_idle(sys, 1000000, NULL) == AX_OK);
  CU_ASSERT(ax_system_advance(sys, 1000) == AX_OK);
  ax_sup_counts k;
  ax_err e = ax_supervisor_count_children(sys, sup, 1000, &k);
  if (e == AX_OK)
    ax_test_tracef("counts: active %u restarts %llu failures %llu\n", k.active,
           (unsigned long long)k.restarts, (unsigned long long)k.failures);
  else
    ax_test_tracef("counts: %s\n", ax_err_name(e));
  CU_ASSERT(ax_system_shutdown(sys) == AX_OK);
  ax_system_free(sys);
}

/* Checks that seed replays byte for byte, and returns its trace. */
static void replay(ax_sup_strategy strat, uint32_t intensity, uint64_t seed, char *out) {
  storm(strat, intensity, seed);
  snprintf(out, TRACE_MAX, "%s", ax_test_trace(NULL));
  storm(strat, intensity, seed);
  CU_ASSERT_STRING_EQUAL(out, ax_test_trace(NULL));
}

static void storms(ax_sup_strategy strat, uint32_t intensity) {
  static char a[TRACE_MAX], b[TRACE_MAX];
  replay(strat, intensity, 11, a);
  CU_ASSERT(strstr(a, "counts: ") != NULL);
  bool differs = false;
  for (uint64_t seed = 12; seed < 20 && !differs; seed++) {
    replay(strat, intensity, seed, b);
    differs = strcmp(a, b) != 0;
  }
  CU_ASSERT(differs);
}

static void test_sup_storm_one_for_one_replays(void) {
  storms(AX_SUP_ONE_FOR_ONE, 1000);
  const char *counts = strstr(ax_test_trace(NULL), "counts: active 4 restarts ");
  const char *down = strstr(ax_test_trace(NULL), "supervisor down");
  CU_ASSERT(counts != NULL);
  CU_ASSERT(!down || down > counts); /* only at the system's shutdown */
}

static void test_sup_storm_one_for_all_replays(void) { storms(AX_SUP_ONE_FOR_ALL, 1000); }

static void test_sup_storm_rest_for_one_replays(void) { storms(AX_SUP_REST_FOR_ONE, 1000); }

/* A storm past the intensity: the supervisor gives up, at a point that
 * depends on the seed, and the same point for the same seed. */
static void test_sup_storm_escalation_replays(void) {
  storms(AX_SUP_ONE_FOR_ONE, 3);
  CU_ASSERT(strstr(ax_test_trace(NULL), "supervisor down: shutdown") != NULL);
  CU_ASSERT(strstr(ax_test_trace(NULL), "counts: AX_ENOACTOR") != NULL);
}

int main(void) {
  CU_pSuite s = ax_test_suite("sup.storm");
  CU_ADD_TEST(s, test_sup_storm_one_for_one_replays);
  CU_ADD_TEST(s, test_sup_storm_one_for_all_replays);
  CU_ADD_TEST(s, test_sup_storm_rest_for_one_replays);
  CU_ADD_TEST(s, test_sup_storm_escalation_replays);
  return ax_test_run();
}
