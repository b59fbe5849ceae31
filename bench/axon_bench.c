/* Axon benchmark suite: the driver. `axon_bench NAME [PARAMS...]` runs one
 * Savina-style workload on a default system (one worker per core) and
 * prints exactly one line on stdout:
 *   RESULT <name> axon <wall_seconds> <ops> <ops_per_second> <unit>[ key=value...]
 * wall_seconds runs from just before the workload's actors are spawned (as
 * the peers time it) to the final actor's verified end; system creation and
 * teardown are outside it. `axon_bench list` prints the workload names.
 * Unknown names and bad parameters print the usage and exit 2; a failed
 * check exits 1.
 * For diagnosis only: AXON_BENCH_STATS=1 adds the system's counters on
 * stderr; AXON_BENCH_WORKERS=n overrides the worker count (default: one per
 * core). */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "axon_bench.h"

/* How long main waits for a workload before calling it a hang. */
#define BENCH_TIMEOUT_S 600
/* How long the actors may take to stop once the workload is over. */
#define BENCH_STOP_TIMEOUT_MS 30000

typedef struct workload {
  const char *name;
  bench_fn fn;
  int nparams;
  const char *param_names[2];
  int64_t defaults[2];
  int64_t minimum[2];
  bool remote; /* a remote workload: see bench_remote_available */
} workload;

static const workload workloads[] = {
    {"pingpong", bench_pingpong, 1, {"N"}, {3000000}, {1}, false},
    {"count", bench_count, 1, {"N"}, {15000000}, {1}, false},
    {"fjthrput", bench_fjthrput, 2, {"A", "N"}, {60, 200000}, {1, 1}, false},
    {"fjcreate", bench_fjcreate, 1, {"N"}, {1000000}, {1}, false},
    {"threadring", bench_threadring, 2, {"R", "H"}, {503, 10000000}, {1, 1}, false},
    {"chameneos", bench_chameneos, 2, {"M", "N"}, {100, 2000000}, {2, 1}, false},
    {"big", bench_big, 2, {"A", "M"}, {120, 50000}, {2, 1}, false},
    {"footprint", bench_footprint, 1, {"N"}, {1000000}, {1}, false},
    {"latency", bench_latency, 1, {"N"}, {1000000}, {1}, false},
    {"pingpong_x", bench_pingpong_x, 2, {"P", "N"}, {4, 500000}, {1, 1}, false},
    {"latency_x", bench_latency_x, 1, {"N"}, {200000}, {1}, false},
    {"timers", bench_timers, 2, {"N", "CHUNK"}, {1000000, 1000}, {100, 1}, false},
    {"timers_self", bench_timers_self, 2, {"N", "CHUNK"}, {1000000, 1000}, {100, 1}, false},
    {"remote_pingpong", bench_remote_pingpong, 2, {"WINDOW", "ROUND_TRIPS"}, {1, 100000}, {1, 1}, true},
    {"remote_bulk", bench_remote_bulk, 1, {"MESSAGES"}, {1000}, {1}, true},
    {"node_down", bench_node_down, 1, {"SAMPLES"}, {5}, {1}, true},
};
#define NWORKLOADS (sizeof(workloads) / sizeof(workloads[0]))

volatile pid_t bench_child_pid;

/* Whether workload w can run in this build (and is listed). */
static bool available(const workload *w) { return !w->remote || bench_remote_available(); }

double bench_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int64_t bench_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void bench_fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("axon_bench: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  fflush(stderr);
  if (bench_child_pid > 0) kill(bench_child_pid, SIGKILL);
  /* _Exit: other workers are still running actors; no atexit work. */
  _Exit(1);
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

void bench_sort_i64(int64_t *v, int64_t n) { qsort(v, (size_t)n, sizeof(int64_t), cmp_i64); }

int64_t bench_percentile(const int64_t *s, int64_t n, double q) {
  int64_t i = (int64_t)ceil(q * (double)n) - 1;
  if (i < 0) i = 0;
  if (i >= n) i = n - 1;
  return s[i];
}

void bench_latency_result(int64_t *samples, int64_t n, const char *name, bench_result *out) {
  bench_sort_i64(samples, n);
  if (samples[0] <= 0) bench_fail("%s: non-positive round trip", name);
  out->ops = n;
  out->unit = "ns";
  snprintf(out->extra, sizeof(out->extra), " p50_ns=%lld p99_ns=%lld p999_ns=%lld",
           (long long)bench_percentile(samples, n, 0.50), (long long)bench_percentile(samples, n, 0.99),
           (long long)bench_percentile(samples, n, 0.999));
}

double bench_compute(double theta) {
  double s = sin(theta);
  return s * s;
}

void bench_sync_init(bench_sync *s) {
  if (sem_init(&s->done, 0, 0) != 0) bench_fail("sem_init: %s", strerror(errno));
  s->t_end = 0;
}

void bench_finish(bench_sync *s) {
  s->t_end = bench_now();
  sem_post(&s->done);
}

/* Per worker, on stderr: a slow mode shows as one worker's runs, steals or
 * parks apart from the other's. */
static void print_worker_stats(ax_system *sys) {
  for (uint32_t i = 0; i < ax_system_workers(sys); i++) {
    ax_worker_stats ws;
    if (ax_worker_stats_get(sys, i, &ws) != AX_OK) continue;
    fprintf(stderr, "stats: worker %u runs=%llu steals=%llu parks=%llu sent=%llu busy_ms=%.1f\n", i,
            (unsigned long long)ws.runs, (unsigned long long)ws.steals,
            (unsigned long long)ws.parks, (unsigned long long)ws.messages_sent,
            (double)ws.busy_ns / 1e6);
  }
}

static void report_hang(ax_system *sys, const char *what) {
  ax_system_stats st;
  ax_system_stats_get(sys, &st);
  print_worker_stats(sys); /* which worker stalled */
  bench_fail("%s: alive=%llu spawned=%llu stopped=%llu sent=%llu dead_letters=%llu runs=%llu "
             "steals=%llu parks=%llu",
             what, (unsigned long long)st.actors_alive, (unsigned long long)st.actors_spawned,
             (unsigned long long)st.actors_stopped, (unsigned long long)st.messages_sent,
             (unsigned long long)st.dead_letters, (unsigned long long)st.runs,
             (unsigned long long)st.steals, (unsigned long long)st.parks);
}

double bench_wait_finish(ax_system *sys, bench_sync *s, double t0) {
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += BENCH_TIMEOUT_S;
  while (sem_timedwait(&s->done, &deadline) != 0) {
    if (errno == EINTR) continue;
    if (errno == ETIMEDOUT) report_hang(sys, "workload did not finish (hang)");
    bench_fail("sem_timedwait: %s", strerror(errno));
  }
  sem_destroy(&s->done);
  return s->t_end - t0;
}

void bench_wait_stopped(ax_system *sys) {
  if (ax_system_wait(sys, BENCH_STOP_TIMEOUT_MS) != AX_OK)
    report_hang(sys, "actors still alive after the workload");
}

double bench_await(ax_system *sys, bench_sync *s, double t0) {
  double wall = bench_wait_finish(sys, s, t0);
  bench_wait_stopped(sys);
  return wall;
}

int64_t bench_vmrss(void) {
  FILE *f = fopen("/proc/self/status", "r");
  if (!f) bench_fail("open /proc/self/status: %s", strerror(errno));
  char line[256];
  long long kb = -1;
  while (fgets(line, sizeof(line), f))
    if (sscanf(line, "VmRSS: %lld kB", &kb) == 1) break;
  fclose(f);
  if (kb < 0) bench_fail("no VmRSS in /proc/self/status");
  return (int64_t)kb * 1024;
}

/* AXON_BENCH_STATS=1: the system's counters after the run, on stderr. */
static void print_stats(ax_system *sys) {
  ax_system_stats st;
  ax_system_stats_get(sys, &st);
  fprintf(stderr,
          "stats: workers=%u spawned=%llu sent=%llu dead_letters=%llu dropped=%llu runs=%llu "
          "steals=%llu parks=%llu\n",
          ax_system_workers(sys), (unsigned long long)st.actors_spawned,
          (unsigned long long)st.messages_sent, (unsigned long long)st.dead_letters,
          (unsigned long long)st.dropped, (unsigned long long)st.runs,
          (unsigned long long)st.steals, (unsigned long long)st.parks);
  print_worker_stats(sys);
}

static void usage(FILE *out) {
  fputs("usage: axon_bench NAME [PARAMS...]   (axon_bench list: the names)\n", out);
  for (size_t i = 0; i < NWORKLOADS; i++) {
    const workload *w = &workloads[i];
    if (!available(w)) continue;
    fprintf(out, "  %-10s", w->name);
    for (int j = 0; j < w->nparams; j++)
      fprintf(out, " %s=%lld", w->param_names[j], (long long)w->defaults[j]);
    fputc('\n', out);
  }
}

/* Parses a decimal parameter >= min; false on anything else. */
static bool parse_param(const char *s, int64_t min, int64_t *out) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || end == s || *end || v < min) return false;
  *out = v;
  return true;
}

static const workload *find_workload(const char *name) {
  for (size_t i = 0; i < NWORKLOADS; i++)
    if (strcmp(workloads[i].name, name) == 0) return available(&workloads[i]) ? &workloads[i] : NULL;
  return NULL;
}

int axon_bench_echo(int argc, char **argv);

/* AXON_BENCH_METRICS measures what metrics cost (bench/metrics_cost.sh):
 * "counts" / "hist" track every actor (ax_metrics_track_all); unset, only
 * the always-on system and worker counters run. */
static void bench_metrics(ax_system *sys) {
  const char *m = getenv("AXON_BENCH_METRICS");
  if (!m || !*m || strcmp(m, "on") == 0) return;
  unsigned what = strcmp(m, "hist") == 0     ? AX_METRICS_HISTOGRAMS
                  : strcmp(m, "counts") == 0 ? AX_METRICS_COUNTS
                                             : 0;
  if (!what) bench_fail("AXON_BENCH_METRICS: on, counts or hist");
  ax_err e = ax_metrics_track_all(sys, what);
  if (e != AX_OK) bench_fail("metrics: %s", ax_strerror(e));
}

int main(int argc, char **argv) {
  /* echo runs its own systems (server and load client) and prints one
   * RESULT line per case for Axon and for the epoll peer. */
  if (argc > 1 && strcmp(argv[1], "echo") == 0) return axon_bench_echo(argc - 1, argv + 1);
  /* hidden: the remote workloads' second node (a process of its own) */
  if (argc > 1 && strcmp(argv[1], "__node") == 0) return bench_remote_node_main(argc - 1, argv + 1);
  if (argc == 2 && strcmp(argv[1], "list") == 0) {
    for (size_t i = 0; i < NWORKLOADS; i++)
      if (available(&workloads[i])) puts(workloads[i].name);
    return 0;
  }
  const workload *w = argc >= 2 ? find_workload(argv[1]) : NULL;
  if (!w || argc - 2 > w->nparams) {
    if (argc >= 2 && !w) fprintf(stderr, "axon_bench: unknown workload '%s'\n", argv[1]);
    usage(stderr);
    return 2;
  }
  int64_t params[2];
  for (int j = 0; j < w->nparams; j++) {
    params[j] = w->defaults[j];
    if (2 + j < argc && !parse_param(argv[2 + j], w->minimum[j], &params[j])) {
      fprintf(stderr, "axon_bench: %s: bad %s '%s' (an integer >= %lld)\n", w->name,
              w->param_names[j], argv[2 + j], (long long)w->minimum[j]);
      usage(stderr);
      return 2;
    }
  }
  ax_system_config cfg;
  ax_system_config_init(&cfg);
  const char *wk = getenv("AXON_BENCH_WORKERS");
  if (wk) cfg.workers = (uint32_t)strtoul(wk, NULL, 10);
  ax_system *sys;
  ax_err e = ax_system_new(&cfg, &sys);
  if (e != AX_OK) bench_fail("ax_system_new: %s", ax_strerror(e));
  bench_metrics(sys);
  bench_result r = {.unit = "ops"};
  w->fn(sys, params, &r);
  if (getenv("AXON_BENCH_STATS")) print_stats(sys);
  ax_system_free(sys);
  if (!(r.wall > 0)) bench_fail("%s: non-positive wall time", w->name);
  printf("RESULT %s axon %.6f %lld %.1f %s%s\n", w->name, r.wall, (long long)r.ops,
         (double)r.ops / r.wall, r.unit, r.extra);
  return 0;
}
