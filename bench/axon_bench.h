/* Axon benchmark suite: what the workload files share. Every workload is
 * written against the public API only (<axon.h>), as a user would write it;
 * this header adds the harness: completion signalling, clocks, checks. */
#ifndef AXON_BENCH_H
#define AXON_BENCH_H

#include <axon.h>
#include <semaphore.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

/* Message types used across the workloads. */
enum {
  MSG_START = AX_MSG_USER, /* from main: begin */
  MSG_MORE,                /* to self: continue a long loop in the next run */
  MSG_STOP,                /* stop now */
  MSG_PING,
  MSG_PONG,
  MSG_INC,
  MSG_GET,
  MSG_TOTAL,
  MSG_WORK,
  MSG_REPORT,
  MSG_RESULT,
  MSG_NEXT,
  MSG_TOKEN,
  MSG_MEET_REQ,
  MSG_MEET,
  MSG_CHANGE,
  MSG_FADE,
  MSG_COUNT,
  MSG_LIST,
  MSG_DONE,
  MSG_WAKE,
  MSG_ACK
};

/* Messages a flooding actor sends per run before it continues through a
 * message to itself. A run that never returns would pin its worker and let
 * the receivers' mailboxes grow without bound (15M queued INCs in count);
 * this is how an actor yields. Kept below the default per-run batch (100)
 * so that a receiver can take a whole chunk in one run. */
#ifndef BENCH_CHUNK
#define BENCH_CHUNK 64
#endif

/* Mailbox limit of the flooded receivers (count's counter, fjthrput's
 * workers), with backpressure: a producer that runs ahead is muted until
 * the receiver catches up, so the queues stay small. 0: unbounded. */
#ifndef BENCH_FLOOD_LIMIT
#define BENCH_FLOOD_LIMIT (4 * BENCH_CHUNK)
#endif

/* How the final actor tells main that the workload is over: it stores its
 * results, then bench_finish records the end time and posts the semaphore
 * (sem_post/sem_wait order the result stores before main's reads). */
typedef struct bench_sync {
  sem_t done;
  double t_end;
} bench_sync;

/* What a workload hands back to main for the RESULT line. */
typedef struct bench_result {
  double wall;       /* seconds, workload only */
  int64_t ops;
  const char *unit;
  char extra[256];   /* " key=value..." or "" */
} bench_result;

/* A workload: params[] holds the parsed (or default) parameters. Returns 0
 * on success; on a failed check it prints to stderr and exits 1 itself. */
typedef int (*bench_fn)(ax_system *sys, const int64_t *params, bench_result *out);

/* Monotonic clock in seconds / nanoseconds. */
double bench_now(void);
int64_t bench_now_ns(void);

/* Prints "axon_bench: <message>" to stderr and exits 1. Callable from any
 * thread, workers included: a failed check must never look like a result. */
_Noreturn void bench_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A child process (the remote workloads' second node) that bench_fail
 * kills (SIGKILL) before exiting; 0: none. Set and cleared by its owner. */
extern volatile pid_t bench_child_pid;

/* Fails the run when an API call did not succeed. */
static inline void bench_check(ax_err e, const char *what) {
  if (e != AX_OK) bench_fail("%s: %s", what, ax_strerror(e));
}

/* The int64 / double payload of msg; fails on a malformed message. */
static inline int64_t msg_i64(const ax_msg *msg) {
  int64_t v;
  if (msg->len != sizeof(v)) bench_fail("message %u: bad payload length %zu", msg->type, msg->len);
  memcpy(&v, msg->data, sizeof(v));
  return v;
}

static inline double msg_f64(const ax_msg *msg) {
  double v;
  if (msg->len != sizeof(v)) bench_fail("message %u: bad payload length %zu", msg->type, msg->len);
  memcpy(&v, msg->data, sizeof(v));
  return v;
}

/* Savina's "performComputation": sin(theta)^2. */
double bench_compute(double theta);

/* Sorts n samples ascending; nearest-rank percentile q (0..1] of sorted
 * samples, as the peers compute it. */
void bench_sort_i64(int64_t *v, int64_t n);
int64_t bench_percentile(const int64_t *sorted, int64_t n, double q);
/* Sorts n round-trip samples (ns) and fills out: ops n, unit ns, and the
 * p50/p99/p99.9 extras; a non-positive sample fails the run. */
void bench_latency_result(int64_t *samples, int64_t n, const char *name, bench_result *out);

void bench_sync_init(bench_sync *s);
/* Called once by the final actor. Thread: any. */
void bench_finish(bench_sync *s);
/* Waits for bench_finish and returns the wall time from t0 to it. A hang
 * is reported (with the system's counters) and fails the run. */
double bench_wait_finish(ax_system *sys, bench_sync *s, double t0);
/* Waits until every actor has stopped; a straggler fails the run. */
void bench_wait_stopped(ax_system *sys);
/* Both: the usual ending of a workload. */
double bench_await(ax_system *sys, bench_sync *s, double t0);

/* Resident set size in bytes, from /proc/self/status. */
int64_t bench_vmrss(void);

/* Workloads (axon_bench_flow.c, axon_bench_graph.c). */
int bench_pingpong(ax_system *sys, const int64_t *p, bench_result *out);
int bench_count(ax_system *sys, const int64_t *p, bench_result *out);
int bench_fjthrput(ax_system *sys, const int64_t *p, bench_result *out);
int bench_fjcreate(ax_system *sys, const int64_t *p, bench_result *out);
int bench_latency(ax_system *sys, const int64_t *p, bench_result *out);
int bench_threadring(ax_system *sys, const int64_t *p, bench_result *out);
int bench_chameneos(ax_system *sys, const int64_t *p, bench_result *out);
int bench_big(ax_system *sys, const int64_t *p, bench_result *out);
int bench_footprint(ax_system *sys, const int64_t *p, bench_result *out);
/* axon_bench_cross.c: the ends of each pair on two one-worker systems. */
int bench_pingpong_x(ax_system *sys, const int64_t *p, bench_result *out);
int bench_latency_x(ax_system *sys, const int64_t *p, bench_result *out);
int bench_timers(ax_system *sys, const int64_t *p, bench_result *out);
int bench_timers_self(ax_system *sys, const int64_t *p, bench_result *out);

/* The remote workloads (axon_bench_remote.c): listed and run only when
 * bench_remote_available(): built with <axon/cluster.h>, or
 * AXON_BENCH_REMOTE_SELFTEST=1|2. bench_remote_node_main is the hidden
 * `axon_bench __node` (the second process). */
bool bench_remote_available(void);
int bench_remote_node_main(int argc, char **argv);
int bench_remote_pingpong(ax_system *sys, const int64_t *p, bench_result *out);
int bench_remote_bulk(ax_system *sys, const int64_t *p, bench_result *out);
int bench_node_down(ax_system *sys, const int64_t *p, bench_result *out);

#endif
