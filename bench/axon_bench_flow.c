/* Axon benchmark suite: message-flow workloads: pingpong, latency, count,
 * fjthrput, fjcreate. Each actor is written against <axon.h> only. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "axon_bench.h"

/* ---------------------------------------------------------------- echo */

/* Answers every PING with a PONG carrying the same payload; STOP stops it.
 * Stateless: the reply goes to the sender. Used by pingpong and latency. */
static ax_err echo_behaviour(ax_actor *self, const ax_msg *msg) {
  if (msg->type == MSG_PING) return ax_send(self, msg->from, MSG_PONG, msg->data, msg->len);
  if (msg->type == MSG_STOP) return ax_exit(self, ax_self(self), AX_REASON_NORMAL);
  bench_fail("echo: unexpected message %u", msg->type);
}

static const ax_actor_spec echo_spec = {.name = "echo", .behaviour = echo_behaviour};

/* ------------------------------------------------------------ pingpong */

typedef struct ping_state {
  ax_pid peer;
  int64_t n;
  int64_t trips;
  bench_sync *sync;
} ping_state;

static ax_err ping_init(ax_actor *self, void *state, const void *arg, size_t len) {
  if (len != sizeof(ping_state)) return AX_EINVAL;
  memcpy(state, arg, len);
  return AX_OK;
}

/* N round trips with one message in flight; the payload is the trip
 * number, checked on every pong. */
static ax_err ping_behaviour(ax_actor *self, const ax_msg *msg) {
  ping_state *st = ax_state(self);
  if (msg->type == MSG_PONG) {
    int64_t v = msg_i64(msg);
    if (v != st->trips) bench_fail("pingpong: got %lld, expected %lld", (long long)v,
                                   (long long)st->trips);
    if (++st->trips == st->n) {
      bench_check(ax_send(self, st->peer, MSG_STOP, NULL, 0), "pingpong: stop");
      bench_finish(st->sync);
      return ax_exit(self, ax_self(self), AX_REASON_NORMAL);
    }
  } else if (msg->type != MSG_START) {
    bench_fail("ping: unexpected message %u", msg->type);
  }
  return ax_send(self, st->peer, MSG_PING, &st->trips, sizeof(st->trips));
}

static const ax_actor_spec ping_spec = {.name = "ping",
                                        .behaviour = ping_behaviour,
                                        .state_size = sizeof(ping_state),
                                        .init = ping_init};

int bench_pingpong(ax_system *sys, const int64_t *p, bench_result *out) {
  bench_sync sync;
  bench_sync_init(&sync);
  ping_state init = {.n = p[0], .sync = &sync};
  ax_pid ping;
  double t0 = bench_now();
  bench_check(ax_system_spawn(sys, &echo_spec, NULL, 0, &init.peer), "spawn pong");
  bench_check(ax_system_spawn(sys, &ping_spec, &init, sizeof(init), &ping), "spawn ping");
  bench_check(ax_system_send(sys, ping, MSG_START, NULL, 0), "start");
  out->wall = bench_await(sys, &sync, t0);
  out->ops = 2 * p[0];
  out->unit = "msgs";
  return 0;
}

/* ------------------------------------------------------------- latency */

typedef struct timer_state {
  ax_pid echo;
  int64_t n;
  int64_t i;
  int64_t t0;
  int64_t *samples; /* n entries, owned by main */
  bench_sync *sync;
} timer_state;

static ax_err timer_init(ax_actor *self, void *state, const void *arg, size_t len) {
  if (len != sizeof(timer_state)) return AX_EINVAL;
  memcpy(state, arg, len);
  return AX_OK;
}

/* One message in flight; each round trip is timed from just before the
 * send to the start of the pong's handling. */
static ax_err timer_behaviour(ax_actor *self, const ax_msg *msg) {
  timer_state *st = ax_state(self);
  if (msg->type == MSG_PONG) {
    int64_t t1 = bench_now_ns();
    int64_t v = msg_i64(msg);
    if (v != st->i) bench_fail("latency: got %lld, expected %lld", (long long)v, (long long)st->i);
    st->samples[st->i] = t1 - st->t0;
    if (++st->i == st->n) {
      bench_check(ax_send(self, st->echo, MSG_STOP, NULL, 0), "latency: stop");
      bench_finish(st->sync);
      return ax_exit(self, ax_self(self), AX_REASON_NORMAL);
    }
  } else if (msg->type != MSG_START) {
    bench_fail("timer: unexpected message %u", msg->type);
  }
  st->t0 = bench_now_ns();
  return ax_send(self, st->echo, MSG_PING, &st->i, sizeof(st->i));
}

static const ax_actor_spec timer_spec = {.name = "timer",
                                         .behaviour = timer_behaviour,
                                         .state_size = sizeof(timer_state),
                                         .init = timer_init};


int bench_latency(ax_system *sys, const int64_t *p, bench_result *out) {
  int64_t n = p[0];
  int64_t *samples = calloc((size_t)n, sizeof(int64_t));
  if (!samples) bench_fail("latency: out of memory");
  bench_sync sync;
  bench_sync_init(&sync);
  timer_state init = {.n = n, .samples = samples, .sync = &sync};
  ax_pid timer;
  double t0 = bench_now();
  bench_check(ax_system_spawn(sys, &echo_spec, NULL, 0, &init.echo), "spawn echo");
  bench_check(ax_system_spawn(sys, &timer_spec, &init, sizeof(init), &timer), "spawn timer");
  bench_check(ax_system_send(sys, timer, MSG_START, NULL, 0), "start");
  out->wall = bench_await(sys, &sync, t0);
  bench_latency_result(samples, n, "latency", out);
  free(samples);
  return 0;
}

/* --------------------------------------------------------------- count */

typedef struct counter_state {
  int64_t total;
} counter_state;

/* Counts INCs; answers the GET request with the total and stops. */
static ax_err counter_behaviour(ax_actor *self, const ax_msg *msg) {
  counter_state *st = ax_state(self);
  if (msg->type == MSG_INC) {
    st->total++;
    return AX_OK;
  }
  if (msg->type == MSG_GET) {
    ax_err e = ax_reply(self, msg, MSG_TOTAL, &st->total, sizeof(st->total));
    return e != AX_OK ? e : ax_exit(self, ax_self(self), AX_REASON_NORMAL);
  }
  bench_fail("counter: unexpected message %u", msg->type);
}

static const ax_actor_spec counter_spec = {.name = "counter",
                                           .behaviour = counter_behaviour,
                                           .state_size = sizeof(counter_state),
                                           .mailbox_limit = BENCH_FLOOD_LIMIT,
                                           .overflow = AX_OVERFLOW_BACKPRESSURE};

typedef struct producer_state {
  ax_pid counter;
  int64_t n;
  int64_t sent;
  ax_ref ref;
  bench_sync *sync;
} producer_state;

static ax_err producer_init(ax_actor *self, void *state, const void *arg, size_t len) {
  if (len != sizeof(producer_state)) return AX_EINVAL;
  memcpy(state, arg, len);
  return AX_OK;
}

static ax_err producer_behaviour(ax_actor *self, const ax_msg *msg) {
  producer_state *st = ax_state(self);
  if (msg->type == MSG_TOTAL && (msg->flags & AX_MSGF_REPLY)) {
    int64_t total = msg_i64(msg);
    if (msg->ref != st->ref) bench_fail("count: reply to an unknown request");
    if (total != st->n)
      bench_fail("count: total %lld, expected %lld", (long long)total, (long long)st->n);
    bench_finish(st->sync);
    return ax_exit(self, ax_self(self), AX_REASON_NORMAL);
  }
  if (msg->type != MSG_START && msg->type != MSG_MORE)
    bench_fail("producer: unexpected message %u", msg->type);
  int64_t end = st->sent + BENCH_CHUNK < st->n ? st->sent + BENCH_CHUNK : st->n;
  for (; st->sent < end; st->sent++)
    bench_check(ax_send(self, st->counter, MSG_INC, NULL, 0), "count: inc");
  if (st->sent < st->n) return ax_send(self, ax_self(self), MSG_MORE, NULL, 0);
  return ax_request(self, st->counter, MSG_GET, NULL, 0, AX_INFINITY, &st->ref);
}

static const ax_actor_spec producer_spec = {.name = "producer",
                                            .behaviour = producer_behaviour,
                                            .state_size = sizeof(producer_state),
                                            .init = producer_init};

int bench_count(ax_system *sys, const int64_t *p, bench_result *out) {
  bench_sync sync;
  bench_sync_init(&sync);
  producer_state init = {.n = p[0], .sync = &sync};
  ax_pid producer;
  double t0 = bench_now();
  bench_check(ax_system_spawn(sys, &counter_spec, NULL, 0, &init.counter), "spawn counter");
  bench_check(ax_system_spawn(sys, &producer_spec, &init, sizeof(init), &producer),
              "spawn producer");
  bench_check(ax_system_send(sys, producer, MSG_START, NULL, 0), "start");
  out->wall = bench_await(sys, &sync, t0);
  out->ops = p[0];
  out->unit = "msgs";
  return 0;
}

/* ------------------------------------------------------------ fjthrput */

typedef struct fj_state {
  double theta;
  int64_t got;
  double sum;
} fj_state;

typedef struct fj_report {
  int64_t got;
  double sum;
} fj_report;

static ax_err fj_init(ax_actor *self, void *state, const void *arg, size_t len) {
  if (len != sizeof(double)) return AX_EINVAL;
  memcpy(&((fj_state *)state)->theta, arg, len);
  return AX_OK;
}

/* One computation per WORK message; STOP reports to the sender and stops.
 * The sum keeps the computation from being optimised away. */
static ax_err fj_behaviour(ax_actor *self, const ax_msg *msg) {
  fj_state *st = ax_state(self);
  if (msg->type == MSG_WORK) {
    st->got++;
    st->sum += bench_compute(st->theta);
    return AX_OK;
  }
  if (msg->type == MSG_STOP) {
    fj_report r = {st->got, st->sum};
    ax_err e = ax_send(self, msg->from, MSG_REPORT, &r, sizeof(r));
    return e != AX_OK ? e : ax_exit(self, ax_self(self), AX_REASON_NORMAL);
  }
  bench_fail("fj worker: unexpected message %u", msg->type);
}

static const ax_actor_spec fj_spec = {.name = "fj",
                                      .behaviour = fj_behaviour,
                                      .state_size = sizeof(fj_state),
                                      .init = fj_init,
                                      .mailbox_limit = BENCH_FLOOD_LIMIT,
                                      .overflow = AX_OVERFLOW_BACKPRESSURE};

typedef struct fjp_state {
  const ax_pid *workers; /* a entries, owned by main */
  int64_t a, n;
  int64_t round;         /* rounds sent: one WORK to every worker each */
  int64_t reports;
  int64_t bad;           /* a report's count that was wrong, or -1 */
  bench_sync *sync;
} fjp_state;

static ax_err fjp_init(ax_actor *self, void *state, const void *arg, size_t len) {
  if (len != sizeof(fjp_state)) return AX_EINVAL;
  memcpy(state, arg, len);
  return AX_OK;
}

/* Sends N rounds of one WORK to each worker, then STOP to each, then
 * collects the A reports. */
static ax_err fjp_behaviour(ax_actor *self, const ax_msg *msg) {
  fjp_state *st = ax_state(self);
  if (msg->type == MSG_REPORT) {
    fj_report r;
    if (msg->len != sizeof(r)) bench_fail("fjthrput: bad report");
    memcpy(&r, msg->data, sizeof(r));
    if (r.got != st->n || !(r.sum > 0)) st->bad = r.got;
    if (++st->reports < st->a) return AX_OK;
    if (st->bad >= 0)
      bench_fail("fjthrput: an actor got %lld messages, expected %lld", (long long)st->bad,
                 (long long)st->n);
    bench_finish(st->sync);
    return ax_exit(self, ax_self(self), AX_REASON_NORMAL);
  }
  if (msg->type != MSG_START && msg->type != MSG_MORE)
    bench_fail("fj producer: unexpected message %u", msg->type);
  int64_t rounds = BENCH_CHUNK / st->a > 0 ? BENCH_CHUNK / st->a : 1;
  for (; rounds > 0 && st->round < st->n; rounds--, st->round++)
    for (int64_t i = 0; i < st->a; i++)
      bench_check(ax_send(self, st->workers[i], MSG_WORK, NULL, 0), "fjthrput: work");
  if (st->round < st->n) return ax_send(self, ax_self(self), MSG_MORE, NULL, 0);
  for (int64_t i = 0; i < st->a; i++)
    bench_check(ax_send(self, st->workers[i], MSG_STOP, NULL, 0), "fjthrput: stop");
  return AX_OK;
}

static const ax_actor_spec fjp_spec = {.name = "fj-producer",
                                       .behaviour = fjp_behaviour,
                                       .state_size = sizeof(fjp_state),
                                       .init = fjp_init};

int bench_fjthrput(ax_system *sys, const int64_t *p, bench_result *out) {
  int64_t a = p[0];
  ax_pid *workers = calloc((size_t)a, sizeof(ax_pid));
  if (!workers) bench_fail("fjthrput: out of memory");
  bench_sync sync;
  bench_sync_init(&sync);
  fjp_state init = {.workers = workers, .a = a, .n = p[1], .bad = -1, .sync = &sync};
  double theta = 37.2;
  ax_pid producer;
  double t0 = bench_now();
  for (int64_t i = 0; i < a; i++)
    bench_check(ax_system_spawn(sys, &fj_spec, &theta, sizeof(theta), &workers[i]), "spawn fj");
  bench_check(ax_system_spawn(sys, &fjp_spec, &init, sizeof(init), &producer), "spawn producer");
  bench_check(ax_system_send(sys, producer, MSG_START, NULL, 0), "start");
  out->wall = bench_await(sys, &sync, t0);
  free(workers);
  out->ops = a * p[1];
  out->unit = "msgs";
  return 0;
}

/* ------------------------------------------------------------ fjcreate */

typedef struct fjc_state {
  ax_pid collector;
} fjc_state;

static ax_err fjc_init(ax_actor *self, void *state, const void *arg, size_t len) {
  if (len != sizeof(fjc_state)) return AX_EINVAL;
  memcpy(state, arg, len);
  return AX_OK;
}

/* A fork-join actor: one WORK message, compute, reply, stop. */
static ax_err fjc_behaviour(ax_actor *self, const ax_msg *msg) {
  fjc_state *st = ax_state(self);
  if (msg->type != MSG_WORK) bench_fail("fjcreate worker: unexpected message %u", msg->type);
  double v = bench_compute(msg_f64(msg));
  ax_err e = ax_send(self, st->collector, MSG_RESULT, &v, sizeof(v));
  return e != AX_OK ? e : ax_exit(self, ax_self(self), AX_REASON_NORMAL);
}

static const ax_actor_spec fjc_spec = {.name = "fjc",
                                       .behaviour = fjc_behaviour,
                                       .state_size = sizeof(fjc_state),
                                       .init = fjc_init};

typedef struct collector_state {
  int64_t n;
  int64_t got;
  bench_sync *sync;
} collector_state;

static ax_err collector_init(ax_actor *self, void *state, const void *arg, size_t len) {
  if (len != sizeof(collector_state)) return AX_EINVAL;
  memcpy(state, arg, len);
  return AX_OK;
}

static ax_err collector_behaviour(ax_actor *self, const ax_msg *msg) {
  collector_state *st = ax_state(self);
  if (msg->type != MSG_RESULT) bench_fail("collector: unexpected message %u", msg->type);
  double v = msg_f64(msg);
  if (!(v > 0)) bench_fail("fjcreate: bad reply %f", v);
  if (++st->got < st->n) return AX_OK;
  bench_finish(st->sync);
  return ax_exit(self, ax_self(self), AX_REASON_NORMAL);
}

static const ax_actor_spec collector_spec = {.name = "collector",
                                             .behaviour = collector_behaviour,
                                             .state_size = sizeof(collector_state),
                                             .init = collector_init};

typedef struct spawner_state {
  ax_pid collector;
  int64_t n;
  int64_t spawned;
} spawner_state;

static ax_err spawner_init(ax_actor *self, void *state, const void *arg, size_t len) {
  if (len != sizeof(spawner_state)) return AX_EINVAL;
  memcpy(state, arg, len);
  return AX_OK;
}

/* Spawns the N fork-join actors, a chunk per run, and sends each its work;
 * stops when all are spawned. */
static ax_err spawner_behaviour(ax_actor *self, const ax_msg *msg) {
  spawner_state *st = ax_state(self);
  if (msg->type != MSG_START && msg->type != MSG_MORE)
    bench_fail("spawner: unexpected message %u", msg->type);
  fjc_state arg = {st->collector};
  double theta = 37.2;
  int64_t end = st->spawned + BENCH_CHUNK < st->n ? st->spawned + BENCH_CHUNK : st->n;
  for (; st->spawned < end; st->spawned++) {
    ax_pid w;
    bench_check(ax_spawn(self, &fjc_spec, &arg, sizeof(arg), &w), "fjcreate: spawn");
    bench_check(ax_send(self, w, MSG_WORK, &theta, sizeof(theta)), "fjcreate: work");
  }
  if (st->spawned < st->n) return ax_send(self, ax_self(self), MSG_MORE, NULL, 0);
  return ax_exit(self, ax_self(self), AX_REASON_NORMAL);
}

static const ax_actor_spec spawner_spec = {.name = "spawner",
                                           .behaviour = spawner_behaviour,
                                           .state_size = sizeof(spawner_state),
                                           .init = spawner_init};

int bench_fjcreate(ax_system *sys, const int64_t *p, bench_result *out) {
  bench_sync sync;
  bench_sync_init(&sync);
  collector_state cinit = {.n = p[0], .sync = &sync};
  spawner_state sinit = {.n = p[0]};
  ax_pid spawner;
  double t0 = bench_now();
  bench_check(ax_system_spawn(sys, &collector_spec, &cinit, sizeof(cinit), &sinit.collector),
              "spawn collector");
  bench_check(ax_system_spawn(sys, &spawner_spec, &sinit, sizeof(sinit), &spawner),
              "spawn spawner");
  bench_check(ax_system_send(sys, spawner, MSG_START, NULL, 0), "start");
  out->wall = bench_await(sys, &sync, t0);
  out->ops = p[0];
  out->unit = "actors";
  return 0;
}
