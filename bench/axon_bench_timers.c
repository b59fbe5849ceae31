/* Axon benchmark suite: timers. A setters (100) share N timers.
 * Phase 1: each setter sets and at once cancels its share (set+cancel
 * throughput, measured at the setters). Between the phases the benchmark
 * waits until the service has digested that storm (a 1 ms probe timer set
 * after it has fired), so phase 2 measures firing, not the backlog of
 * phase 1. Phase 2: each setter sets its share, CHUNK timers per run, with
 * random delays of 1..1000 ms, so up to N timers are pending at once, and
 * the benchmark records how late each one is seen against (time set +
 * delay), and the set rate measured from the first set to the last (not N
 * over the delay range). Checks: every timer fires exactly once, to the
 * right actor, none early, no cancelled one ever.
 *
 * Two workloads, one code:
 *  - `timers`: each setter's timers go (ax_send_after's `to`) to its own
 *    receiver, one of 100 actors that do nothing else. The lateness is
 *    then the timer service's (and the scheduler's: how soon a receiver
 *    woken by an expiry runs while the setters keep both cores busy),
 *    which is what issue 16's target is about: p50_us, p99_us, max_us.
 *  - `timers_self`: the timers go to their setter itself (the workload
 *    before the split). A timer due during the set burst is then seen at
 *    its setter's next run, after a round of every other setter's chunk:
 *    the setter's own queueing, not the service's.
 * Both also report which share of the timers came due while the setters
 * were still setting (burst_share: due before the last set) with their
 * p99 lateness (burst_p99_us), and the p99 lateness of the others
 * (after_burst_p99_us), due when every setter is done. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "axon_bench.h"

#define TIMER_ACTORS 100
/* CHUNK (second parameter, default 1000): timers set per message. In
 * `timers_self` an expiry waits for its setter's next run, so during the
 * set burst the lateness includes a round of every setter's chunk (about
 * CHUNK x 100 setters x the set cost / workers): with 1000 that round is
 * several ms. */

/* A delivered timer's entry in late_ns: its lateness (ns, low LATE_BITS)
 * and when it was due (us after phase 2 began, the bits above; clamped):
 * one store per timer. Each receiver appends to its own slice in the
 * order it sees its timers, and checks exactly-once on a bitmap of its
 * slice (`seen`, 1.25 KiB per receiver): stored at the timer's own slot,
 * as before, the store and its check were a cache miss per expiry (the
 * slots come due in random order over 8 MB), 95% of the receivers'
 * behaviour and 12% of all samples of the run (perf), which the
 * receivers' runs, and so the lateness, paid for the bench's bookkeeping. */
#define LATE_BITS 40
#define DUE_MAX ((INT64_C(1) << (63 - LATE_BITS)) - 1)

typedef struct timers_shared {
  int64_t n, chunk;
  int64_t *late_ns;      /* one entry per timer: see LATE_BITS */
  uint64_t *seen;        /* one bit per timer, fired already: each actor's own lines */
  int64_t t1_ns;         /* phase 2 began (before any of its sets) */
  _Atomic int64_t phase1_left;
  _Atomic int64_t phase2_left;
  double phase1_end;     /* written before phase1_done is released */
  _Atomic bool phase1_done;
  _Atomic bool probe_fired;
  _Atomic int64_t first_set_ns; /* phase 2: earliest set, latest set */
  _Atomic int64_t last_set_ns;
  bool self_target;      /* timers_self: each setter is its timers' target */
  bench_sync sync;
} timers_shared;

typedef struct tactor {
  timers_shared *sh;
  int64_t first, count;  /* this actor's slice of late_ns */
  uint64_t *seen;        /* its bits in sh->seen, bit k for timer first + k */
  int64_t done1, set2, fired;
  int64_t first_set_ns, last_set_ns; /* this actor's phase 2 sets */
  uint64_t rng;
  ax_pid target;         /* phase 2's `to`: its receiver, or itself */
  ax_pid setter;         /* a receiver's setter (told to exit when done) */
} tactor;

typedef struct fire_payload {
  int64_t slot;
  int64_t set_ns;
  int64_t delay_ms;
} fire_payload;

static ax_err tactor_init(ax_actor *self, void *state, const void *arg, size_t len) {
  if (len != sizeof(tactor)) return AX_EINVAL;
  memcpy(state, arg, len);
  return AX_OK;
}

static ax_err phase1(ax_actor *self, tactor *st) {
  for (int64_t i = 0; i < st->sh->chunk && st->done1 < st->count; i++, st->done1++) {
    ax_timer t;
    bench_check(ax_send_after(self, 1000000, ax_self(self), MSG_WORK, NULL, 0, &t), "timers: set");
    bench_check(ax_timer_cancel(self, t), "timers: cancel");
  }
  if (st->done1 < st->count) return ax_send(self, ax_self(self), MSG_MORE, NULL, 0);
  if (atomic_fetch_sub(&st->sh->phase1_left, 1) == 1) {
    st->sh->phase1_end = bench_now();
    atomic_store_explicit(&st->sh->phase1_done, true, memory_order_release);
  }
  return AX_OK;
}

static void atomic_min_i64(_Atomic int64_t *a, int64_t v) {
  int64_t cur = atomic_load(a);
  while (v < cur && !atomic_compare_exchange_weak(a, &cur, v)) {
  }
}

static void atomic_max_i64(_Atomic int64_t *a, int64_t v) {
  int64_t cur = atomic_load(a);
  while (v > cur && !atomic_compare_exchange_weak(a, &cur, v)) {
  }
}

static ax_err phase2(ax_actor *self, tactor *st) {
  if (st->set2 == 0) st->first_set_ns = bench_now_ns();
  for (int64_t i = 0; i < st->sh->chunk && st->set2 < st->count; i++, st->set2++) {
    st->rng ^= st->rng << 13;
    st->rng ^= st->rng >> 7;
    st->rng ^= st->rng << 17;
    fire_payload f = {st->first + st->set2, bench_now_ns(), 1 + (int64_t)(st->rng % 1000)};
    bench_check(ax_send_after(self, (uint32_t)f.delay_ms, st->target, MSG_PONG, &f, sizeof(f), NULL),
                "timers: set");
  }
  if (st->set2 == st->count) {
    st->last_set_ns = bench_now_ns();
    atomic_min_i64(&st->sh->first_set_ns, st->first_set_ns);
    atomic_max_i64(&st->sh->last_set_ns, st->last_set_ns);
  }
  return st->set2 < st->count ? ax_send(self, ax_self(self), MSG_STOP, NULL, 0) : AX_OK;
}

static ax_err tactor_behaviour(ax_actor *self, const ax_msg *msg) {
  tactor *st = ax_state(self);
  switch (msg->type) {
  case MSG_START:
  case MSG_MORE: return phase1(self, st);
  case MSG_PING: /* from main: phase 2, with the timers' target */
    if (msg->len != sizeof(ax_pid)) bench_fail("timers: bad phase 2 start");
    memcpy(&st->target, msg->data, sizeof(ax_pid));
    return phase2(self, st);
  case MSG_STOP: return phase2(self, st); /* STOP here means "set more" */
  case MSG_WORK: bench_fail("timers: a cancelled timer fired");
  case MSG_DONE: /* from its receiver: every timer of this setter fired */
    return ax_exit(self, ax_self(self), AX_REASON_NORMAL);
  case MSG_GET: /* from main: set the probe */
    return ax_send_after(self, 1, ax_self(self), MSG_TOTAL, NULL, 0, NULL);
  case MSG_TOTAL:
    atomic_store(&st->sh->probe_fired, true);
    return AX_OK;
  case MSG_PONG: {
    fire_payload f;
    if (msg->len != sizeof(f) || !(msg->flags & AX_MSGF_TIMER)) bench_fail("timers: bad expiry");
    memcpy(&f, msg->data, sizeof(f));
    int64_t due = f.set_ns + f.delay_ms * 1000000, late = bench_now_ns() - due;
    if (late < 0) bench_fail("timers: fired %lld ns early", (long long)-late);
    if (late >> LATE_BITS) bench_fail("timers: a timer fired %lld s late", (long long)(late / 1000000000));
    int64_t k = f.slot - st->first;
    uint64_t bit = UINT64_C(1) << (k & 63);
    if (k < 0 || k >= st->count || (st->seen[k >> 6] & bit))
      bench_fail("timers: timer %lld fired twice or to the wrong actor", (long long)f.slot);
    st->seen[k >> 6] |= bit;
    int64_t due_us = (due - st->sh->t1_ns) / 1000;
    st->sh->late_ns[st->first + st->fired] = late | (due_us < DUE_MAX ? due_us : DUE_MAX) << LATE_BITS;
    if (++st->fired == st->count) {
      if (atomic_fetch_sub(&st->sh->phase2_left, 1) == 1) bench_finish(&st->sh->sync);
      /* A setter stays until its timers have fired: its exit cancels them. */
      if (st->setter.id) bench_check(ax_send(self, st->setter, MSG_DONE, NULL, 0), "timers: setter done");
      return ax_exit(self, ax_self(self), AX_REASON_NORMAL);
    }
    return AX_OK;
  }
  default: bench_fail("timers: unexpected message %u", msg->type);
  }
}

static const ax_actor_spec tactor_spec = {.name = "timers", .behaviour = tactor_behaviour,
                                          .state_size = sizeof(tactor), .init = tactor_init};

/* AXON_BENCH_TIMELINE=B: the lateness by when the timers were due, in
 * buckets of B ms after phase 2 began (count, p50, p99, max), on stderr,
 * to see where in the burst the late ones are. */
static void timeline(const timers_shared *sh, int bucket_ms, int64_t burst_end_us) {
  int64_t nb = 1100 / bucket_ms + 2, n = sh->n;
  int64_t *at = calloc((size_t)nb + 1, sizeof(int64_t)), *v = malloc(sizeof(int64_t) * (size_t)n);
  if (!at || !v) bench_fail("timers: out of memory");
  for (int pass = 0; pass < 2; pass++) { /* count per bucket, then place */
    for (int64_t i = 0; i < n; i++) {
      int64_t b = (sh->late_ns[i] >> LATE_BITS) / 1000 / bucket_ms;
      b = b < nb ? b : nb - 1;
      if (pass == 0) at[b + 1]++;
      else v[at[b]++] = sh->late_ns[i] & ((INT64_C(1) << LATE_BITS) - 1);
    }
    if (pass == 0)
      for (int64_t b = 0; b < nb; b++) at[b + 1] += at[b];
  }
  fprintf(stderr, "timeline: burst ended at %.1f ms; due_ms count p50_us p99_us max_us\n", burst_end_us / 1e3);
  for (int64_t b = 0, from = 0; b < nb; from = at[b++]) { /* at[b]: the end of bucket b now */
    int64_t k = at[b] - from;
    if (!k) continue;
    bench_sort_i64(v + from, k);
    fprintf(stderr, "timeline: %5lld %7lld %7lld %7lld %7lld\n", (long long)(b * bucket_ms), (long long)k,
            (long long)bench_percentile(v + from, k, 0.5) / 1000,
            (long long)bench_percentile(v + from, k, 0.99) / 1000, (long long)v[from + k - 1] / 1000);
  }
  free(at);
  free(v);
}

static int run_timers(ax_system *sys, const int64_t *p, bench_result *out, bool self_target) {
  static timers_shared sh;
  int64_t n = p[0], a = n < TIMER_ACTORS ? n : TIMER_ACTORS;
  sh.n = n;
  sh.self_target = self_target;
  sh.chunk = p[1];
  sh.late_ns = calloc((size_t)n, sizeof(int64_t));
  if (!sh.late_ns) bench_fail("timers: out of memory");
  for (int64_t i = 0; i < n; i++) sh.late_ns[i] = -1;
  /* whole cache lines per actor: no line written by two of them */
  int64_t words = ((n - n / a * (a - 1)) / 64 + 1 + 7) & ~INT64_C(7);
  sh.seen = calloc((size_t)(words * a), sizeof(uint64_t));
  if (!sh.seen) bench_fail("timers: out of memory");
  atomic_store(&sh.phase1_left, a);
  atomic_store(&sh.phase2_left, a);
  atomic_store(&sh.phase1_done, false);
  atomic_store(&sh.probe_fired, false);
  atomic_store(&sh.first_set_ns, INT64_MAX);
  atomic_store(&sh.last_set_ns, 0);
  bench_sync_init(&sh.sync);
  ax_pid pids[TIMER_ACTORS], recv[TIMER_ACTORS];
  for (int64_t i = 0; i < a; i++) {
    tactor init = {.sh = &sh, .first = n / a * i, .count = i == a - 1 ? n - n / a * i : n / a,
                   .seen = sh.seen + words * i,
                   .rng = 0x9E3779B97F4A7C15ull * (uint64_t)(i + 1)};
    bench_check(ax_system_spawn(sys, &tactor_spec, &init, sizeof(init), &pids[i]), "timers: spawn");
    if (self_target) continue;
    /* Its receiver: the same slice of late_ns, nothing to set. */
    init.setter = pids[i];
    bench_check(ax_system_spawn(sys, &tactor_spec, &init, sizeof(init), &recv[i]), "timers: spawn");
  }
  double t0 = bench_now();
  for (int64_t i = 0; i < a; i++) bench_check(ax_system_send(sys, pids[i], MSG_START, NULL, 0), "start");
  struct timespec ms = {0, 1000000};
  for (int i = 0; !atomic_load_explicit(&sh.phase1_done, memory_order_acquire); i++) {
    if (i > 600000) bench_fail("timers: set+cancel phase did not finish");
    nanosleep(&ms, NULL);
  }
  double set_cancel = (double)n / (sh.phase1_end - t0);
  atomic_store(&sh.probe_fired, false);
  bench_check(ax_system_send(sys, pids[0], MSG_GET, NULL, 0), "probe");
  for (int i = 0; !atomic_load(&sh.probe_fired); i++) {
    if (i > 600000) bench_fail("timers: the probe timer never fired");
    nanosleep(&ms, NULL);
  }
  double t1 = bench_now();
  sh.t1_ns = bench_now_ns(); /* before the sends below publish it */
  for (int64_t i = 0; i < a; i++) {
    ax_pid to = self_target ? pids[i] : recv[i];
    bench_check(ax_system_send(sys, pids[i], MSG_PING, &to, sizeof(to)), "phase 2");
  }
  out->wall = bench_await(sys, &sh.sync, t1);
  int64_t burst_end_us = (atomic_load(&sh.last_set_ns) - sh.t1_ns) / 1000, after = 0, during = 0;
  const char *tl = getenv("AXON_BENCH_TIMELINE");
  if (tl) timeline(&sh, atoi(tl) > 0 ? atoi(tl) : 10, burst_end_us);
  /* lateness of the timers due after the burst (from the front) and during
   * it (from the back) */
  int64_t *after_ns = malloc(sizeof(int64_t) * (size_t)n);
  if (!after_ns) bench_fail("timers: out of memory");
  for (int64_t i = 0; i < n; i++) {
    if (sh.late_ns[i] < 0) bench_fail("timers: timer %lld never fired", (long long)i);
    int64_t late = sh.late_ns[i] & ((INT64_C(1) << LATE_BITS) - 1);
    if (sh.late_ns[i] >> LATE_BITS > burst_end_us)
      after_ns[after++] = late;
    else
      after_ns[n - ++during] = late;
    sh.late_ns[i] = late;
  }
  bench_sort_i64(after_ns, after);
  int64_t after_p99 = after ? bench_percentile(after_ns, after, 0.99) : 0;
  bench_sort_i64(after_ns + n - during, during);
  int64_t during_p99 = during ? bench_percentile(after_ns + n - during, during, 0.99) : 0;
  free(after_ns);
  bench_sort_i64(sh.late_ns, n);
  out->ops = n;
  out->unit = "timers";
  double set_s = (double)(atomic_load(&sh.last_set_ns) - atomic_load(&sh.first_set_ns)) / 1e9;
  snprintf(out->extra, sizeof(out->extra),
           " set_per_s=%.0f set_cancel_per_s=%.0f p50_us=%lld p99_us=%lld max_us=%lld burst_share=%.3f"
           " after_burst_p99_us=%lld burst_p99_us=%lld",
           set_s > 0 ? (double)n / set_s : 0.0, set_cancel, (long long)bench_percentile(sh.late_ns, n, 0.50) / 1000,
           (long long)bench_percentile(sh.late_ns, n, 0.99) / 1000, (long long)sh.late_ns[n - 1] / 1000,
           (double)(n - after) / (double)n, (long long)after_p99 / 1000, (long long)during_p99 / 1000);
  free(sh.late_ns);
  free(sh.seen);
  return 0;
}

int bench_timers(ax_system *sys, const int64_t *p, bench_result *out) { return run_timers(sys, p, out, false); }

int bench_timers_self(ax_system *sys, const int64_t *p, bench_result *out) { return run_timers(sys, p, out, true); }
