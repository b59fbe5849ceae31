/* supervision: a three-level supervision tree whose workers crash at random,
 * for a few seconds, then an orderly shutdown (newest children first).
 * Shows: declaring a tree with ax_sup_spec / ax_child_spec and AX_SUP_CHILD,
 * the strategies, restart intensity, and the log hook, which reports every
 * crash, restart and escalation. Usage: supervision [SECONDS] (default 3).
 *   app (one_for_one) -+- db (one_for_all): conn1 conn2
 *                      +- web (rest_for_one): listener, handlers (one_for_one): h1 h2
 * Expected output (pids, counts and order vary from run to run):
 *   [error] supervisor db <...>: child conn2 <...> exited: AX_EINVAL
 *   [warn] supervisor db <...>: restarted child conn1 as <...> (restart 1)
 *   [error] supervisor db <...>: reached max restart intensity (2 in 1000 ms) at child
 *           conn1: shutting down   (one line)
 *   [error] supervisor app <...>: child supervisor db <...> gave up (exited: shutdown)
 *   [warn] supervisor app <...>: restarted child db as <...> (restart 1)
 *   app after 3 s: 2 restarts, 2 escalations below it, 2 of 2 children running
 *   done */
#include <axon.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

enum { MSG_TICK = AX_MSG_USER };

typedef struct worker {
  uint64_t rng;  /* xorshift state */
  uint32_t odds; /* crashes on about one tick in odds */
} worker;

static ax_err worker_init(ax_actor *self, void *state, const void *arg, size_t len) {
  worker *w = state;
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  w->rng = (ax_self(self).id * 0x9E3779B97F4A7C15ull) ^ (uint64_t)now.tv_nsec;
  w->rng |= 1;
  w->odds = len == sizeof(uint32_t) ? *(const uint32_t *)arg : 100;
  return ax_send_interval(self, 50, AX_TIMER_SKIP_MISSED, ax_self(self), MSG_TICK, NULL, 0, NULL);
}

static ax_err worker_behaviour(ax_actor *self, const ax_msg *msg) {
  worker *w = ax_state(self);
  if (msg->type != MSG_TICK) return AX_OK;
  w->rng ^= w->rng << 13;
  w->rng ^= w->rng >> 7;
  w->rng ^= w->rng << 17;
  return w->rng % w->odds == 0 ? AX_EINVAL : AX_OK; /* an error return is a crash */
}

static const ax_actor_spec worker_spec = {.name = "worker", .behaviour = worker_behaviour,
                                          .state_size = sizeof(worker), .init = worker_init};

static const uint32_t often = 30, rarely = 150;

static const ax_child_spec handler_kids[] = {
    {.id = "h1", .start = &worker_spec, .arg = &often, .arg_len = sizeof(often)},
    {.id = "h2", .start = &worker_spec, .arg = &rarely, .arg_len = sizeof(rarely),
     .restart = AX_RESTART_TRANSIENT, .shutdown = 100},
};
static const ax_sup_spec handlers = {.name = "handlers", .strategy = AX_SUP_ONE_FOR_ONE,
                                     .intensity = 3, .period_ms = 1000,
                                     .children = handler_kids, .nchildren = 2};

static const ax_child_spec web_kids[] = {
    {.id = "listener", .start = &worker_spec, .arg = &rarely, .arg_len = sizeof(rarely)},
    AX_SUP_CHILD("handlers", &handlers),
};
static const ax_sup_spec web = {.name = "web", .strategy = AX_SUP_REST_FOR_ONE, .intensity = 3,
                                .period_ms = 2000, .children = web_kids, .nchildren = 2};

static const ax_child_spec db_kids[] = {
    {.id = "conn1", .start = &worker_spec, .arg = &often, .arg_len = sizeof(often)},
    {.id = "conn2", .start = &worker_spec, .arg = &often, .arg_len = sizeof(often),
     .shutdown = AX_SHUTDOWN_BRUTAL_KILL},
};
static const ax_sup_spec db = {.name = "db", .strategy = AX_SUP_ONE_FOR_ALL, .intensity = 2,
                               .period_ms = 1000, .children = db_kids, .nchildren = 2};

static const ax_child_spec app_kids[] = {AX_SUP_CHILD("db", &db), AX_SUP_CHILD("web", &web)};
static const ax_sup_spec app = {.name = "app", .strategy = AX_SUP_ONE_FOR_ONE, .intensity = 10,
                                .period_ms = 5000, .children = app_kids, .nchildren = 2};

/* The log hook: may be called from any thread at once (printf locks). */
static void log_line(ax_log_level level, const char *line, void *arg) {
  (void)arg;
  if (level >= AX_LOG_WARN) printf("[%s] %s\n", level == AX_LOG_WARN ? "warn" : "error", line);
}

int main(int argc, char **argv) {
  int secs = argc > 1 ? atoi(argv[1]) : 3;
  if (secs <= 0) secs = 1;
  ax_system_config cfg;
  ax_system_config_init(&cfg);
  cfg.log_fn = log_line;
  ax_system *sys;
  ax_err e = ax_system_new(&cfg, &sys);
  if (e != AX_OK) {
    fprintf(stderr, "ax_system_new: %s\n", ax_strerror(e));
    return 1;
  }
  ax_pid top;
  if ((e = ax_supervisor_start(sys, &app, &top)) != AX_OK) {
    fprintf(stderr, "ax_supervisor_start: %s\n", ax_strerror(e));
    ax_system_free(sys);
    return 1;
  }
  struct timespec ts = {secs, 0};
  while (nanosleep(&ts, &ts) != 0) {
  }
  ax_sup_counts k;
  if ((e = ax_supervisor_count_children(sys, top, 5000, &k)) == AX_OK)
    printf("app after %d s: %llu restarts, %llu escalations below it, %u of %u children running\n",
           secs, (unsigned long long)k.restarts, (unsigned long long)k.escalations, k.active,
           k.specs);
  else
    printf("app is gone (%s): it reached its own restart intensity\n", ax_strerror(e));
  ax_system_free(sys); /* stops the tree first: web then db, each newest child first */
  printf("done\n");
  return 0;
}
