/* Axon benchmark suite: workloads over many actors: threadring, chameneos,
 * big, footprint. Each actor is written against <axon.h> only. */
#include <stdio.h>
#include <stdlib.h>

#include "axon_bench.h"

/* ---------------------------------------------------------- threadring */

typedef struct ring_state {
  int64_t id, r, h;
  ax_pid next;
  bench_sync *sync;
} ring_state;

static ax_err ring_init(ax_actor *self, void *state, const void *arg, size_t len) {
  if (len != sizeof(ring_state)) return AX_EINVAL;
  memcpy(state, arg, len);
  return AX_OK;
}

/* NEXT names the successor. TOKEN v: pass v-1 on, or at 0 check where the
 * token stopped and stop the ring: STOP travels round once, each member
 * forwarding it before it stops (the last forward finds the first member
 * gone, which is expected). */
static ax_err ring_behaviour(ax_actor *self, const ax_msg *msg) {
  ring_state *st = ax_state(self);
  switch (msg->type) {
  case MSG_NEXT:
    if (msg->len != sizeof(ax_pid)) bench_fail("threadring: bad NEXT");
    memcpy(&st->next, msg->data, sizeof(ax_pid));
    return AX_OK;
  case MSG_TOKEN: {
    int64_t v = msg_i64(msg);
    if (v > 0) return ax_send(self, st->next, MSG_TOKEN, &(int64_t){v - 1}, sizeof(int64_t));
    /* The token starts at member 0 with H hops left: it ends at H mod R. */
    if (st->id != st->h % st->r)
      bench_fail("threadring: token stopped at %lld, expected %lld", (long long)st->id,
                 (long long)(st->h % st->r));
    bench_finish(st->sync);
  } /* fall through */
  case MSG_STOP: {
    ax_err e = ax_send(self, st->next, MSG_STOP, NULL, 0);
    if (e != AX_OK && e != AX_ENOACTOR) return e;
    return ax_exit(self, ax_self(self), AX_REASON_NORMAL);
  }
  default:
    bench_fail("ring: unexpected message %u", msg->type);
  }
}

static const ax_actor_spec ring_spec = {.name = "ring",
                                        .behaviour = ring_behaviour,
                                        .state_size = sizeof(ring_state),
                                        .init = ring_init};

int bench_threadring(ax_system *sys, const int64_t *p, bench_result *out) {
  int64_t r = p[0], h = p[1];
  ax_pid *ring = calloc((size_t)r, sizeof(ax_pid));
  if (!ring) bench_fail("threadring: out of memory");
  bench_sync sync;
  bench_sync_init(&sync);
  double t0 = bench_now();
  for (int64_t i = 0; i < r; i++) {
    ring_state init = {.id = i, .r = r, .h = h, .sync = &sync};
    bench_check(ax_system_spawn(sys, &ring_spec, &init, sizeof(init), &ring[i]), "spawn ring");
  }
  /* Every NEXT is queued before the token exists, so each member knows its
   * successor before the token reaches it. */
  for (int64_t i = 0; i < r; i++)
    bench_check(ax_system_send(sys, ring[i], MSG_NEXT, &ring[(i + 1) % r], sizeof(ax_pid)),
                "threadring: next");
  bench_check(ax_system_send(sys, ring[0], MSG_TOKEN, &h, sizeof(h)), "threadring: token");
  out->wall = bench_await(sys, &sync, t0);
  free(ring);
  out->ops = h;
  out->unit = "hops";
  return 0;
}

/* ----------------------------------------------------------- chameneos */

enum { BLUE, RED, YELLOW };

/* The colour two chameneos take after meeting: the same if they were the
 * same, else the third one. */
static int complement(int a, int b) { return a == b ? a : 3 - a - b; }

typedef struct meet_msg {
  int64_t colour;
  ax_pid other; /* MEET: whom the receiver meets */
} meet_msg;

typedef struct cham_state {
  ax_pid mall;
  int64_t colour;
  int64_t meetings;
} cham_state;

/* A chameneo goes to the mall at once (init may send). */
static ax_err cham_init(ax_actor *self, void *state, const void *arg, size_t len) {
  cham_state *st = state;
  if (len != sizeof(cham_state)) return AX_EINVAL;
  memcpy(st, arg, len);
  meet_msg m = {.colour = st->colour};
  return ax_send(self, st->mall, MSG_MEET_REQ, &m, sizeof(m));
}

/* MEET (from the mall): met msg.other; take the complement colour, tell
 * the other, go back to the mall. CHANGE (from the other): take its colour,
 * go back. FADE: report the meeting count and stop. */
static ax_err cham_behaviour(ax_actor *self, const ax_msg *msg) {
  cham_state *st = ax_state(self);
  meet_msg m;
  if (msg->type == MSG_FADE) {
    ax_err e = ax_send(self, st->mall, MSG_COUNT, &st->meetings, sizeof(st->meetings));
    return e != AX_OK ? e : ax_exit(self, ax_self(self), AX_REASON_NORMAL);
  }
  if ((msg->type != MSG_MEET && msg->type != MSG_CHANGE) || msg->len != sizeof(m))
    bench_fail("chameneo: unexpected message %u", msg->type);
  memcpy(&m, msg->data, sizeof(m));
  st->meetings++;
  if (msg->type == MSG_MEET) {
    st->colour = complement((int)st->colour, (int)m.colour);
    meet_msg change = {.colour = st->colour};
    ax_err e = ax_send(self, m.other, MSG_CHANGE, &change, sizeof(change));
    if (e != AX_OK) return e;
  } else {
    st->colour = m.colour;
  }
  meet_msg req = {.colour = st->colour};
  return ax_send(self, st->mall, MSG_MEET_REQ, &req, sizeof(req));
}

static const ax_actor_spec cham_spec = {.name = "chameneo",
                                        .behaviour = cham_behaviour,
                                        .state_size = sizeof(cham_state),
                                        .init = cham_init};

typedef struct mall_state {
  int64_t m, n;
  int64_t left;      /* meetings still to arrange */
  ax_pid waiting;    /* a chameneo waiting for a partner, or none */
  int64_t faded, sum;
  bench_sync *sync;
} mall_state;

static ax_err mall_init(ax_actor *self, void *state, const void *arg, size_t len) {
  if (len != sizeof(mall_state)) return AX_EINVAL;
  memcpy(state, arg, len);
  return AX_OK;
}

/* Pairs arriving chameneos until N meetings are arranged, then fades every
 * arrival and sums their meeting counts: each meeting is counted by both
 * partners, so the sum must be 2N. */
static ax_err mall_behaviour(ax_actor *self, const ax_msg *msg) {
  mall_state *st = ax_state(self);
  if (msg->type == MSG_COUNT) {
    st->sum += msg_i64(msg);
    if (++st->faded < st->m) return AX_OK;
    if (st->left != 0 || st->sum != 2 * st->n)
      bench_fail("chameneos: mall arranged %lld meetings, chameneos counted %lld, expected %lld "
                 "and %lld",
                 (long long)(st->n - st->left), (long long)st->sum, (long long)st->n,
                 (long long)(2 * st->n));
    bench_finish(st->sync);
    return ax_exit(self, ax_self(self), AX_REASON_NORMAL);
  }
  meet_msg m;
  if (msg->type != MSG_MEET_REQ || msg->len != sizeof(m))
    bench_fail("mall: unexpected message %u", msg->type);
  if (st->left == 0) return ax_send(self, msg->from, MSG_FADE, NULL, 0);
  if (ax_pid_is_none(st->waiting)) {
    st->waiting = msg->from;
    return AX_OK;
  }
  memcpy(&m, msg->data, sizeof(m));
  m.other = msg->from;
  st->left--;
  ax_pid w = st->waiting;
  st->waiting = AX_PID_NONE;
  return ax_send(self, w, MSG_MEET, &m, sizeof(m));
}

static const ax_actor_spec mall_spec = {.name = "mall",
                                        .behaviour = mall_behaviour,
                                        .state_size = sizeof(mall_state),
                                        .init = mall_init};

int bench_chameneos(ax_system *sys, const int64_t *p, bench_result *out) {
  int64_t m = p[0], n = p[1];
  bench_sync sync;
  bench_sync_init(&sync);
  mall_state minit = {.m = m, .n = n, .left = n, .sync = &sync};
  double t0 = bench_now();
  cham_state cinit;
  bench_check(ax_system_spawn(sys, &mall_spec, &minit, sizeof(minit), &cinit.mall), "spawn mall");
  for (int64_t i = 0; i < m; i++) {
    cinit.colour = i % 3;
    cinit.meetings = 0;
    bench_check(ax_system_spawn(sys, &cham_spec, &cinit, sizeof(cinit), NULL), "spawn chameneo");
  }
  out->wall = bench_await(sys, &sync, t0);
  out->ops = n;
  out->unit = "meetings";
  return 0;
}

/* ----------------------------------------------------------------- big */

typedef struct big_state {
  int64_t id, a, m;
  int64_t pongs;
  uint64_t rng;         /* xorshift64 state, never 0 */
  ax_pid sink;
  ax_pid neighbours[];  /* a pids, from the LIST message */
} big_state;

static ax_err big_init(ax_actor *self, void *state, const void *arg, size_t len) {
  big_state *st = state;
  if (len != sizeof(big_state)) return AX_EINVAL;
  memcpy(st, arg, len);
  st->rng = 0x9E3779B97F4A7C15ull * (uint64_t)(st->id + 1);
  return AX_OK;
}

static uint64_t xorshift64(uint64_t *s) {
  uint64_t x = *s;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return *s = x;
}

/* Pings a random neighbour other than itself. */
static ax_err big_ping(ax_actor *self, big_state *st) {
  int64_t t = (int64_t)(xorshift64(&st->rng) % (uint64_t)(st->a - 1));
  if (t >= st->id) t++;
  return ax_send(self, st->neighbours[t], MSG_PING, NULL, 0);
}

/* LIST: keep the pids and start. PING: pong the sender. PONG: ping again
 * until M pongs, then tell the sink. STOP: stop. */
static ax_err big_behaviour(ax_actor *self, const ax_msg *msg) {
  big_state *st = ax_state(self);
  switch (msg->type) {
  case MSG_PING:
    return ax_send(self, msg->from, MSG_PONG, NULL, 0);
  case MSG_PONG:
    if (++st->pongs < st->m) return big_ping(self, st);
    return ax_send(self, st->sink, MSG_DONE, &st->pongs, sizeof(st->pongs));
  case MSG_LIST:
    if (msg->len != (size_t)st->a * sizeof(ax_pid)) bench_fail("big: bad LIST");
    memcpy(st->neighbours, msg->data, msg->len);
    return big_ping(self, st);
  case MSG_STOP:
    return ax_exit(self, ax_self(self), AX_REASON_NORMAL);
  default:
    bench_fail("big: unexpected message %u", msg->type);
  }
}

typedef struct sink_state {
  int64_t a, m;
  int64_t done;
  int64_t bad; /* a wrong pong count, or -1 */
  bench_sync *sync;
} sink_state;

static ax_err sink_init(ax_actor *self, void *state, const void *arg, size_t len) {
  if (len != sizeof(sink_state)) return AX_EINVAL;
  memcpy(state, arg, len);
  return AX_OK;
}

static ax_err sink_behaviour(ax_actor *self, const ax_msg *msg) {
  sink_state *st = ax_state(self);
  if (msg->type != MSG_DONE) bench_fail("sink: unexpected message %u", msg->type);
  int64_t pongs = msg_i64(msg);
  if (pongs != st->m) st->bad = pongs;
  if (++st->done < st->a) return AX_OK;
  if (st->bad >= 0)
    bench_fail("big: an actor got %lld pongs, expected %lld", (long long)st->bad,
               (long long)st->m);
  bench_finish(st->sync);
  return ax_exit(self, ax_self(self), AX_REASON_NORMAL);
}

static const ax_actor_spec sink_spec = {.name = "sink",
                                        .behaviour = sink_behaviour,
                                        .state_size = sizeof(sink_state),
                                        .init = sink_init};

int bench_big(ax_system *sys, const int64_t *p, bench_result *out) {
  int64_t a = p[0], m = p[1];
  ax_pid *pids = calloc((size_t)a, sizeof(ax_pid));
  if (!pids) bench_fail("big: out of memory");
  /* The state holds the neighbour list inline: its size is known only now.
   * The spec must outlive the actors, which bench_await guarantees. */
  ax_actor_spec spec = {.name = "big",
                        .behaviour = big_behaviour,
                        .state_size = sizeof(big_state) + (size_t)a * sizeof(ax_pid),
                        .init = big_init};
  bench_sync sync;
  bench_sync_init(&sync);
  sink_state sinit = {.a = a, .m = m, .bad = -1, .sync = &sync};
  big_state binit = {.a = a, .m = m};
  double t0 = bench_now();
  bench_check(ax_system_spawn(sys, &sink_spec, &sinit, sizeof(sinit), &binit.sink), "spawn sink");
  for (int64_t i = 0; i < a; i++) {
    binit.id = i;
    bench_check(ax_system_spawn(sys, &spec, &binit, sizeof(binit), &pids[i]), "spawn big");
  }
  for (int64_t i = 0; i < a; i++)
    bench_check(ax_system_send(sys, pids[i], MSG_LIST, pids, (size_t)a * sizeof(ax_pid)),
                "big: list");
  /* The actors must keep answering pings until everyone is done, so the
   * sink signals the end and main stops them afterwards. */
  out->wall = bench_wait_finish(sys, &sync, t0);
  for (int64_t i = 0; i < a; i++)
    bench_check(ax_system_send(sys, pids[i], MSG_STOP, NULL, 0), "big: stop");
  bench_wait_stopped(sys);
  free(pids);
  out->ops = 2 * a * m;
  out->unit = "msgs";
  return 0;
}

/* ----------------------------------------------------------- footprint */

/* An idle actor holding what every peer's idle actor holds: a reference to
 * its parent (8 bytes of state). WAKE is answered with ACK to the parent,
 * then it stops. */
static ax_err idle_init(ax_actor *self, void *state, const void *arg, size_t len) {
  (void)self;
  if (len != sizeof(ax_pid)) return AX_EINVAL;
  memcpy(state, arg, len);
  return AX_OK;
}

static ax_err idle_behaviour(ax_actor *self, const ax_msg *msg) {
  if (msg->type != MSG_WAKE) bench_fail("idle: unexpected message %u", msg->type);
  ax_pid parent;
  memcpy(&parent, ax_state(self), sizeof parent);
  if (!ax_pid_eq(parent, msg->from)) bench_fail("idle: woken by a stranger");
  ax_err e = ax_send(self, parent, MSG_ACK, NULL, 0);
  return e != AX_OK ? e : ax_exit(self, ax_self(self), AX_REASON_NORMAL);
}

static const ax_actor_spec idle_spec = {.name = "idle", .behaviour = idle_behaviour,
                                        .state_size = sizeof(ax_pid), .init = idle_init};

typedef struct waker_state {
  const ax_pid *pids; /* n entries, owned by main */
  int64_t n;
  int64_t woken, acks;
  bench_sync *sync;
} waker_state;

static ax_err waker_init(ax_actor *self, void *state, const void *arg, size_t len) {
  if (len != sizeof(waker_state)) return AX_EINVAL;
  memcpy(state, arg, len);
  return AX_OK;
}

/* Wakes the idle actors a chunk per run and counts their acks. */
static ax_err waker_behaviour(ax_actor *self, const ax_msg *msg) {
  waker_state *st = ax_state(self);
  if (msg->type == MSG_ACK) {
    if (++st->acks < st->n) return AX_OK;
    bench_finish(st->sync);
    return ax_exit(self, ax_self(self), AX_REASON_NORMAL);
  }
  if (msg->type != MSG_START && msg->type != MSG_MORE)
    bench_fail("waker: unexpected message %u", msg->type);
  int64_t end = st->woken + BENCH_CHUNK < st->n ? st->woken + BENCH_CHUNK : st->n;
  for (; st->woken < end; st->woken++)
    bench_check(ax_send(self, st->pids[st->woken], MSG_WAKE, NULL, 0), "footprint: wake");
  return st->woken < st->n ? ax_send(self, ax_self(self), MSG_MORE, NULL, 0) : AX_OK;
}

static const ax_actor_spec waker_spec = {.name = "waker",
                                         .behaviour = waker_behaviour,
                                         .state_size = sizeof(waker_state),
                                         .init = waker_init};

int bench_footprint(ax_system *sys, const int64_t *p, bench_result *out) {
  int64_t n = p[0];
  bench_sync sync;
  bench_sync_init(&sync);
  /* The handle array counts, as every peer's does: it is allocated and
   * written (resident) after the first reading. */
  int64_t before = bench_vmrss();
  double t0 = bench_now();
  ax_pid *pids = malloc((size_t)n * sizeof(ax_pid));
  if (!pids) bench_fail("footprint: out of memory");
  memset(pids, 0xff, (size_t)n * sizeof(ax_pid));
  /* The waker is every idle actor's parent: it is spawned first. */
  waker_state winit = {.pids = pids, .n = n, .sync = &sync};
  ax_pid waker;
  bench_check(ax_system_spawn(sys, &waker_spec, &winit, sizeof(winit), &waker), "spawn waker");
  for (int64_t i = 0; i < n; i++)
    bench_check(ax_system_spawn(sys, &idle_spec, &waker, sizeof waker, &pids[i]), "spawn idle");
  double spawn_s = bench_now() - t0;
  int64_t after = bench_vmrss();
  double t1 = bench_now();
  bench_check(ax_system_send(sys, waker, MSG_START, NULL, 0), "start");
  double wake_s = bench_await(sys, &sync, t1);
  free(pids);
  out->wall = spawn_s + wake_s;
  out->ops = n;
  out->unit = "actors";
  snprintf(out->extra, sizeof(out->extra), " bytes_per_actor=%.0f spawn_s=%.6f wake_s=%.6f",
           (double)(after - before) / (double)n, spawn_s, wake_s);
  return 0;
}
