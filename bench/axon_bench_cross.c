/* Axon benchmark suite: the cross-core variants of pingpong and latency.
 *
 * pingpong and latency keep both ends on one worker: a woken actor goes to
 * its waker's LIFO slot, so a pair never leaves its core. Here the ends of
 * every pair are forced apart: they live in two systems of one worker each
 * ("left" and "right", two threads), and every message is sent with
 * ax_system_send to the other system, so each hand-off goes through the
 * receiver's mailbox and its worker's run queue on the other thread (and,
 * when that worker has parked, a wake-up). This is what a thread-to-thread
 * message costs: the path of an actor woken by the reactor or by any thread
 * outside its worker.
 *
 *   pingpong_x P N: P pairs (default 4: twice as many busy pairs as the two
 *     workers), N round trips each, one message in flight per pair; ops =
 *     every message (2 P N).
 *   latency_x N: one pair, one message in flight, each round trip timed;
 *     p50/p99/p99.9 in ns.
 * The peers' equivalents (bench/peers) pin each end to its own thread or
 * scheduler the way each runtime allows. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "axon_bench.h"

static ax_system *one_worker_system(void) {
  ax_system_config cfg;
  ax_system_config_init(&cfg);
  cfg.workers = 1;
  ax_system *s;
  bench_check(ax_system_new(&cfg, &s), "cross: ax_system_new");
  return s;
}

/* The far end: answers PING with PONG (same payload) to `peer` in `home`;
 * STOP stops it. */
typedef struct xecho_state {
  ax_system *home; /* the pinger's system */
  ax_pid peer;
} xecho_state;

static ax_err xecho_init(ax_actor *self, void *state, const void *arg, size_t len) {
  (void)self;
  if (len != sizeof(xecho_state)) return AX_EINVAL;
  memcpy(state, arg, len);
  return AX_OK;
}

static ax_err xecho_behaviour(ax_actor *self, const ax_msg *msg) {
  xecho_state *st = ax_state(self);
  if (msg->type == MSG_PING) return ax_system_send(st->home, st->peer, MSG_PONG, msg->data, msg->len);
  if (msg->type == MSG_STOP) return ax_exit(self, ax_self(self), AX_REASON_NORMAL);
  bench_fail("cross echo: unexpected message %u", msg->type);
}

static const ax_actor_spec xecho_spec = {.name = "xecho",
                                         .behaviour = xecho_behaviour,
                                         .state_size = sizeof(xecho_state),
                                         .init = xecho_init};

/* The near end: N round trips (the payload is the trip number, checked), or
 * with samples, each round trip timed. The last pair to finish ends the run. */
typedef struct xping_state {
  ax_system *far; /* the echo's system */
  ax_pid echo;
  int64_t n, trips;
  int64_t t0;
  int64_t *samples; /* latency_x: n entries, owned by main; NULL otherwise */
  _Atomic int64_t *pairs_left;
  bench_sync *sync;
} xping_state;

static ax_err xping_init(ax_actor *self, void *state, const void *arg, size_t len) {
  (void)self;
  if (len != sizeof(xping_state)) return AX_EINVAL;
  memcpy(state, arg, len);
  return AX_OK;
}

static ax_err xping_behaviour(ax_actor *self, const ax_msg *msg) {
  xping_state *st = ax_state(self);
  if (msg->type == MSG_LIST) { /* from main, before START: the echo's pid */
    if (msg->len != sizeof(ax_pid)) bench_fail("cross: bad LIST");
    memcpy(&st->echo, msg->data, sizeof(ax_pid));
    return AX_OK;
  }
  if (msg->type == MSG_PONG) {
    int64_t t1 = st->samples ? bench_now_ns() : 0;
    int64_t v = msg_i64(msg);
    if (v != st->trips)
      bench_fail("cross: got %lld, expected %lld", (long long)v, (long long)st->trips);
    if (st->samples) st->samples[st->trips] = t1 - st->t0;
    if (++st->trips == st->n) {
      bench_check(ax_system_send(st->far, st->echo, MSG_STOP, NULL, 0), "cross: stop");
      /* acq_rel: the last pair's decrement sees every other pair done. */
      if (atomic_fetch_sub_explicit(st->pairs_left, 1, memory_order_acq_rel) == 1)
        bench_finish(st->sync);
      return ax_exit(self, ax_self(self), AX_REASON_NORMAL);
    }
  } else if (msg->type != MSG_START) {
    bench_fail("cross ping: unexpected message %u", msg->type);
  }
  if (st->samples) st->t0 = bench_now_ns();
  return ax_system_send(st->far, st->echo, MSG_PING, &st->trips, sizeof(st->trips));
}

static const ax_actor_spec xping_spec = {.name = "xping",
                                         .behaviour = xping_behaviour,
                                         .state_size = sizeof(xping_state),
                                         .init = xping_init};

/* Runs pairs pairs of n round trips across two one-worker systems; returns
 * the wall time. samples (n entries) only with one pair. */
static double run_cross(int64_t pairs, int64_t n, int64_t *samples) {
  ax_system *left = one_worker_system(), *right = one_worker_system();
  bench_sync sync;
  bench_sync_init(&sync);
  _Atomic int64_t pairs_left = pairs;
  ax_pid *pings = calloc((size_t)pairs, sizeof(ax_pid));
  if (!pings) bench_fail("cross: out of memory");
  double t0 = bench_now();
  for (int64_t i = 0; i < pairs; i++) {
    /* The echo needs the ping's pid: spawn the ping first (it waits for
     * START), then the echo, then tell the ping where the echo is (LIST). */
    xping_state pi = {.far = right, .n = n, .samples = samples, .pairs_left = &pairs_left,
                      .sync = &sync};
    xecho_state ei = {.home = left};
    bench_check(ax_system_spawn(left, &xping_spec, &pi, sizeof pi, &pings[i]), "spawn xping");
    ei.peer = pings[i];
    ax_pid echo;
    bench_check(ax_system_spawn(right, &xecho_spec, &ei, sizeof ei, &echo), "spawn xecho");
    bench_check(ax_system_send(left, pings[i], MSG_LIST, &echo, sizeof echo), "cross: list");
  }
  for (int64_t i = 0; i < pairs; i++)
    bench_check(ax_system_send(left, pings[i], MSG_START, NULL, 0), "cross: start");
  double wall = bench_wait_finish(left, &sync, t0);
  bench_wait_stopped(left);
  bench_wait_stopped(right);
  ax_system_free(left);
  ax_system_free(right);
  free(pings);
  return wall;
}

int bench_pingpong_x(ax_system *sys, const int64_t *p, bench_result *out) {
  (void)sys; /* the workload runs its own two systems */
  out->wall = run_cross(p[0], p[1], NULL);
  out->ops = 2 * p[0] * p[1];
  out->unit = "msgs";
  return 0;
}

int bench_latency_x(ax_system *sys, const int64_t *p, bench_result *out) {
  (void)sys;
  int64_t n = p[0];
  int64_t *samples = calloc((size_t)n, sizeof(int64_t));
  if (!samples) bench_fail("latency_x: out of memory");
  out->wall = run_cross(1, n, samples);
  bench_latency_result(samples, n, "latency_x", out);
  free(samples);
  return 0;
}
