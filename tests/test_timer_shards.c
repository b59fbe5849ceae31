/* Tests for the sharded timer service: one wheel per worker. Timers set on
 * one worker and cancelled after the owner moved to another, expiries of a
 * shard whose worker is busy in a long run or parked, deadline order across
 * shards, many owners on both workers, a timer set off the workers. The
 * clock is injected (manual): no real sleep decides an outcome. A "hog"
 * actor pins a worker (it waits for a gate inside its behaviour), which is
 * how a test makes the owner run on the other worker. */
#include <axon.h>
#include <string.h>

#include "actor/actor_int.h"
#include "support/testutil.h"
#include "support/timer_clock.h"

enum { S_SET = AX_MSG_USER, S_CANCEL, S_TICK, S_SYNC, H_BLOCK };

#define MAX_TIMERS 256

static int worker_index(void) {
  ax__worker *w = ax__ctx_get()->worker;
  return w ? (int)w->index : -1;
}

/* ---- the owner: sets, cancels, records its expiries ---- */
typedef struct oshared {
  _Atomic uint64_t syncs, ticks, order_bad, cancel_ok, sets;
  _Atomic uint64_t last_due; /* the deadline carried by the last expiry */
  _Atomic int set_on, cancel_on;
  _Atomic uint64_t seen[MAX_TIMERS]; /* expiries per timer index */
} oshared;

typedef struct set_req {
  uint32_t count;
  uint32_t delay0, step; /* timer i: delay0 + i * step (mod 64 when step) */
  uint32_t cancel_mod;   /* cancel, right after setting, every timer i with i % cancel_mod == 0 (0: none) */
} set_req;

typedef struct ostate {
  oshared *sh;
  uint32_t n;
  ax_timer t[MAX_TIMERS];
} ostate;

typedef struct tick {
  uint32_t index;
  uint64_t due;
} tick;

static uint32_t delay_of(const set_req *r, uint32_t i) { return r->step ? r->delay0 + (i * r->step) % 64 : r->delay0; }

static ax_err owner_b(ax_actor *self, const ax_msg *msg) {
  ostate *st = ax_state(self);
  oshared *sh = st->sh;
  switch (msg->type) {
  case S_SET: {
    set_req r;
    memcpy(&r, msg->data, sizeof(r));
    atomic_store(&sh->set_on, worker_index());
    for (uint32_t i = 0; i < r.count && st->n < MAX_TIMERS; i++) {
      tick k = {st->n, timer_clock_now() + delay_of(&r, i)};
      ax_err e = ax_send_after(self, delay_of(&r, i), ax_self(self), S_TICK, &k, sizeof(k), &st->t[st->n]);
      if (e != AX_OK) return e;
      if (r.cancel_mod && i % r.cancel_mod == 0 && ax_timer_cancel(self, st->t[st->n]) == AX_OK)
        atomic_fetch_add(&sh->cancel_ok, 1);
      st->n++;
    }
    atomic_fetch_add(&sh->sets, 1);
    return AX_OK;
  }
  case S_CANCEL: { /* cancels the timers with even index */
    atomic_store(&sh->cancel_on, worker_index());
    for (uint32_t i = 0; i < st->n; i += 2)
      if (ax_timer_cancel(self, st->t[i]) == AX_OK) atomic_fetch_add(&sh->cancel_ok, 1);
    return AX_OK;
  }
  case S_TICK: {
    tick k;
    if (msg->len != sizeof(k)) return AX_EINVAL;
    memcpy(&k, msg->data, sizeof(k));
    if (k.due < atomic_load(&sh->last_due)) atomic_fetch_add(&sh->order_bad, 1);
    atomic_store(&sh->last_due, k.due);
    if (k.index < MAX_TIMERS) atomic_fetch_add(&sh->seen[k.index], 1);
    atomic_fetch_add(&sh->ticks, 1);
    return AX_OK;
  }
  case S_SYNC: atomic_fetch_add(&sh->syncs, 1); return AX_OK;
  default: return AX_OK;
  }
}

static ax_err owner_init(ax_actor *self, void *state, const void *arg, size_t len) {
  (void)self, (void)len;
  memcpy(&((ostate *)state)->sh, arg, sizeof(oshared *));
  return AX_OK;
}
static const ax_actor_spec owner_spec = {.name = "owner", .behaviour = owner_b,
                                         .state_size = sizeof(ostate), .init = owner_init};

static ax_pid spawn_owner(ax_system *sys, oshared *sh) {
  memset(sh, 0, sizeof(*sh));
  atomic_store(&sh->set_on, -1);
  atomic_store(&sh->cancel_on, -1);
  ax_pid p;
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &owner_spec, &sh, sizeof(sh), &p), AX_OK);
  return p;
}

static void sync_with(ax_system *sys, ax_pid p, oshared *sh) {
  uint64_t want = atomic_load(&sh->syncs) + 1;
  CU_ASSERT_EQUAL(ax_system_send(sys, p, S_SYNC, NULL, 0), AX_OK);
  CU_ASSERT_TRUE(ax_test_wait_count(&sh->syncs, want, 10000));
}

static void set_timers(ax_system *sys, ax_pid p, oshared *sh, set_req r) {
  uint64_t want = atomic_load(&sh->sets) + 1;
  CU_ASSERT_EQUAL(ax_system_send(sys, p, S_SET, &r, sizeof(r)), AX_OK);
  CU_ASSERT_TRUE(ax_test_wait_count(&sh->sets, want, 10000));
}

/* ---- hogs: pin a worker inside a behaviour until released ---- */
typedef struct hog {
  _Atomic bool blocked, gate;
  _Atomic int on;
  _Atomic uint64_t done;
  ax_pid pid;
} hog;

static ax_err hog_b(ax_actor *self, const ax_msg *msg) {
  hog *h = *(hog **)ax_state(self);
  if (msg->type != H_BLOCK) return AX_OK;
  atomic_store(&h->on, worker_index());
  atomic_store(&h->blocked, true);
  for (int i = 0; i < 30000 && !atomic_load(&h->gate); i++) ax_test_sleep_ms(1);
  atomic_store(&h->blocked, false);
  atomic_fetch_add(&h->done, 1);
  return AX_OK;
}

static ax_err hog_init(ax_actor *self, void *state, const void *arg, size_t len) {
  (void)self, (void)len;
  memcpy(state, arg, sizeof(hog *));
  return AX_OK;
}
static const ax_actor_spec hog_spec = {.name = "hog", .behaviour = hog_b,
                                       .state_size = sizeof(hog *), .init = hog_init};

static void hog_spawn(ax_system *sys, hog *h) {
  memset(h, 0, sizeof(*h));
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &hog_spec, &h, sizeof(h), &h->pid), AX_OK);
}

static bool hog_blocked(void *arg) { return atomic_load(&((hog *)arg)->blocked); }

static void hog_block(ax_system *sys, hog *h) {
  atomic_store(&h->gate, false);
  CU_ASSERT_EQUAL(ax_system_send(sys, h->pid, H_BLOCK, NULL, 0), AX_OK);
  CU_ASSERT_TRUE_FATAL(ax_test_wait(hog_blocked, h, 10000));
}

static void hog_release(hog *h) {
  uint64_t want = atomic_load(&h->done) + 1;
  atomic_store(&h->gate, true);
  CU_ASSERT_TRUE(ax_test_wait_count(&h->done, want, 10000));
}

/* Pins worker w (of two) with a hog: a hog lands on whichever worker takes
 * it; if that is the other one, a second hog must land on w, and the first
 * is released. Returns the hog that holds w. */
static hog *pin_worker(ax_system *sys, hog *h1, hog *h2, int w) {
  hog_block(sys, h1);
  if (atomic_load(&h1->on) == w) return h1;
  hog_block(sys, h2); /* the other worker is busy with h1 */
  CU_ASSERT_EQUAL(atomic_load(&h2->on), w);
  hog_release(h1);
  return h2;
}

/* A system on the manual clock with an owner and two hogs. */
static ax_system *owner_and_hogs(oshared *sh, hog *h1, hog *h2, ax_pid *o) {
  ax_system *sys = timer_clock_system(2);
  hog_spawn(sys, h1);
  hog_spawn(sys, h2);
  *o = spawn_owner(sys, sh);
  return sys;
}

/* Sets timers, then pins the worker they were set on (its shard) with a
 * hog, so the owner's next run is on the other worker. */
static hog *set_then_pin(ax_system *sys, ax_pid o, oshared *sh, set_req r, hog *h1, hog *h2) {
  set_timers(sys, o, sh, r);
  int first = atomic_load(&sh->set_on);
  CU_ASSERT_TRUE_FATAL(first == 0 || first == 1);
  return pin_worker(sys, h1, h2, first);
}

/* Set on one worker, cancelled from the other after the owner moved: the
 * cancel reaches into the first worker's shard. Only the uncancelled fire,
 * each once. */
static void test_timer_cancel_after_owner_moved_to_other_worker(void) {
  static oshared sh;
  static hog h1, h2;
  ax_pid o;
  ax_system *sys = owner_and_hogs(&sh, &h1, &h2, &o);
  hog *pin = set_then_pin(sys, o, &sh, (set_req){.count = 100, .delay0 = 1, .step = 7}, &h1, &h2);
  int first = atomic_load(&sh.set_on);
  CU_ASSERT_EQUAL(ax_system_send(sys, o, S_CANCEL, NULL, 0), AX_OK);
  sync_with(sys, o, &sh);
  CU_ASSERT_EQUAL(atomic_load(&sh.cancel_on), 1 - first); /* it moved */
  CU_ASSERT_EQUAL(atomic_load(&sh.cancel_ok), 50);
  hog_release(pin);
  ax_system_stats st;
  ax_system_stats_get(sys, &st);
  CU_ASSERT_EQUAL(st.timers_pending, 50); /* cancels take effect at once */
  timer_clock_advance(sys, 100);
  CU_ASSERT_TRUE(ax_test_wait_count(&sh.ticks, 50, 10000));
  CU_ASSERT_TRUE(ax_test_wait(timer_pending_zero, sys, 10000));
  timer_clock_advance(sys, 100);
  sync_with(sys, o, &sh);
  CU_ASSERT_EQUAL(atomic_load(&sh.ticks), 50);
  CU_ASSERT_EQUAL(atomic_load(&sh.order_bad), 0);
  for (uint32_t i = 0; i < 100; i++) CU_ASSERT_EQUAL(atomic_load(&sh.seen[i]), i % 2 ? 1u : 0u);
  ax_system_free(sys);
}

/* The worker whose shard holds a due timer is stuck in a long run: the
 * other worker (or the reactor) fires it, and the owner runs there. */
static void test_timer_shard_of_busy_worker_still_fires(void) {
  static oshared sh;
  static hog h1, h2;
  ax_pid o;
  ax_system *sys = owner_and_hogs(&sh, &h1, &h2, &o);
  hog *pin = set_then_pin(sys, o, &sh, (set_req){.count = 10, .delay0 = 10}, &h1, &h2);
  timer_clock_advance(sys, 10);
  CU_ASSERT_TRUE(ax_test_wait_count(&sh.ticks, 10, 10000));
  CU_ASSERT_TRUE(atomic_load(&pin->blocked)); /* fired while its worker was busy */
  hog_release(pin);
  CU_ASSERT_EQUAL(atomic_load(&sh.order_bad), 0);
  CU_ASSERT_TRUE(ax_test_wait(timer_pending_zero, sys, 10000));
  ax_system_free(sys);
}

static bool all_parked(void *arg) {
  ax_system *sys = arg;
  for (uint32_t i = 0; i < sys->nworkers; i++)
    if (!atomic_load(&sys->workers[i].park_since)) return false;
  return true;
}

/* Every worker is parked when the deadline comes: the reactor fires. */
static void test_timer_fires_while_every_worker_is_parked(void) {
  ax_system *sys = timer_clock_system(2);
  static oshared sh;
  ax_pid o = spawn_owner(sys, &sh);
  set_timers(sys, o, &sh, (set_req){.count = 20, .delay0 = 5, .step = 3});
  CU_ASSERT_TRUE(ax_test_wait(all_parked, sys, 10000));
  timer_clock_advance(sys, 100);
  CU_ASSERT_TRUE(ax_test_wait_count(&sh.ticks, 20, 10000));
  CU_ASSERT_EQUAL(atomic_load(&sh.order_bad), 0);
  CU_ASSERT_TRUE(ax_test_wait(timer_pending_zero, sys, 10000));
  ax_system_free(sys);
}

/* A timer set on one worker and a shorter one set later on the other,
 * due in the same pass: they fire in deadline order, not shard order. */
static void test_timer_deadline_order_across_shards(void) {
  static oshared sh;
  static hog h1, h2;
  ax_pid o;
  ax_system *sys = owner_and_hogs(&sh, &h1, &h2, &o);
  for (uint32_t round = 0; round < 8; round++) {
    hog *pin = set_then_pin(sys, o, &sh, (set_req){.count = 4, .delay0 = 40 - round}, &h1, &h2); /* long ones */
    int first = atomic_load(&sh.set_on);
    set_timers(sys, o, &sh, (set_req){.count = 4, .delay0 = 10 + round}); /* short ones */
    CU_ASSERT_EQUAL(atomic_load(&sh.set_on), 1 - first);
    hog_release(pin);
  }
  timer_clock_advance(sys, 100); /* everything due at once */
  CU_ASSERT_TRUE(ax_test_wait_count(&sh.ticks, 64, 10000));
  CU_ASSERT_EQUAL(atomic_load(&sh.order_bad), 0);
  ax_system_free(sys);
}

/* Many owners on both workers set timers, cancel some at once, and the
 * clock moves in steps: each owner gets exactly its uncancelled timers,
 * once each, in deadline order. */
enum { OWNERS = 64, PER_OWNER = 40 };

static void test_timer_many_owners_across_workers(void) {
  ax_system *sys = timer_clock_system(2);
  static oshared sh[OWNERS];
  ax_pid p[OWNERS];
  for (int i = 0; i < OWNERS; i++) p[i] = spawn_owner(sys, &sh[i]);
  for (int i = 0; i < OWNERS; i++) {
    set_req r = {.count = PER_OWNER, .delay0 = 1 + (uint32_t)i % 5, .step = 7, .cancel_mod = 3};
    CU_ASSERT_EQUAL(ax_system_send(sys, p[i], S_SET, &r, sizeof(r)), AX_OK);
  }
  for (int i = 0; i < OWNERS; i++) CU_ASSERT_TRUE(ax_test_wait_count(&sh[i].sets, 1, 10000));
  const uint64_t cancelled = (PER_OWNER + 2) / 3, want = PER_OWNER - cancelled;
  for (int step = 0; step < 30; step++) timer_clock_advance(sys, 3);
  for (int i = 0; i < OWNERS; i++) {
    CU_ASSERT_TRUE(ax_test_wait_count(&sh[i].ticks, want, 10000));
    CU_ASSERT_EQUAL(atomic_load(&sh[i].cancel_ok), cancelled);
  }
  CU_ASSERT_TRUE(ax_test_wait(timer_pending_zero, sys, 10000));
  timer_clock_advance(sys, 100);
  for (int i = 0; i < OWNERS; i++) {
    sync_with(sys, p[i], &sh[i]);
    CU_ASSERT_EQUAL(atomic_load(&sh[i].ticks), want);
    CU_ASSERT_EQUAL(atomic_load(&sh[i].order_bad), 0);
    for (uint32_t k = 0; k < PER_OWNER; k++)
      CU_ASSERT_EQUAL(atomic_load(&sh[i].seen[k]), k % 3 ? 1u : 0u);
  }
  ax_system_stats st;
  ax_system_stats_get(sys, &st);
  CU_ASSERT_EQUAL(st.timers_fired, OWNERS * want);
  bool both = false; /* the owners ran on both workers (else the test proved less) */
  ax_worker_stats w0, w1;
  if (ax_worker_stats_get(sys, 0, &w0) == AX_OK && ax_worker_stats_get(sys, 1, &w1) == AX_OK)
    both = w0.runs > 0 && w1.runs > 0;
  CU_ASSERT_TRUE(both);
  ax_system_free(sys);
}

/* A timer set in an init run on the spawning thread (not a worker) goes to
 * the central shard; it fires, and one set there can be cancelled from a
 * worker. */
static ax_err init_setter(ax_actor *self, void *state, const void *arg, size_t len) {
  (void)len;
  ostate *st = state;
  memcpy(&st->sh, arg, sizeof(oshared *));
  atomic_store(&st->sh->set_on, worker_index());
  tick k0 = {0, timer_clock_now() + 5}, k1 = {1, timer_clock_now() + 6};
  ax_err e = ax_send_after(self, 5, ax_self(self), S_TICK, &k0, sizeof(k0), &st->t[0]);
  if (e == AX_OK) e = ax_send_after(self, 6, ax_self(self), S_TICK, &k1, sizeof(k1), &st->t[1]);
  st->n = 2;
  return e;
}
static const ax_actor_spec init_setter_spec = {.name = "init_setter", .behaviour = owner_b,
                                               .state_size = sizeof(ostate), .init = init_setter};

static void test_timer_set_off_the_workers_uses_central_shard(void) {
  ax_system *sys = timer_clock_system(2);
  static oshared sh;
  memset(&sh, 0, sizeof(sh));
  oshared *shp = &sh;
  ax_pid o;
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &init_setter_spec, &shp, sizeof(shp), &o), AX_OK);
  CU_ASSERT_EQUAL(ax_system_send(sys, o, S_CANCEL, NULL, 0), AX_OK); /* timer 0 */
  sync_with(sys, o, &sh);
  CU_ASSERT_EQUAL(atomic_load(&sh.cancel_ok), 1);
  timer_clock_advance(sys, 10);
  CU_ASSERT_TRUE(ax_test_wait_count(&sh.ticks, 1, 10000));
  CU_ASSERT_TRUE(ax_test_wait(timer_pending_zero, sys, 10000));
  sync_with(sys, o, &sh);
  CU_ASSERT_EQUAL(atomic_load(&sh.seen[0]), 0);
  CU_ASSERT_EQUAL(atomic_load(&sh.seen[1]), 1);
  ax_system_free(sys);
}

/* ---- the real clock: a timer never fires before its delay ---- */

/* The wheels count in quarter-ms ticks: a deadline is the set time rounded
 * up to a tick plus the delay, and a pass fires it once the clock rounded
 * down has reached it. On the real clock, with sets spread over every
 * phase of a millisecond (a few us apart), each expiry is checked against
 * the monotonic clock read just before its ax_send_after. Only a lower
 * bound is asserted: how late they are is the bench's. */
enum { RC_OWNERS = 4, RC_TIMERS = 300 };
static _Atomic uint64_t rc_fired, rc_early;

typedef struct rc_tick {
  uint64_t set_ns, delay_ms;
} rc_tick;

static ax_err rc_b(ax_actor *self, const ax_msg *msg) {
  uint64_t *left = ax_state(self);
  if (msg->type == S_SET) { /* one timer a run, a few us apart: every phase of a tick */
    uint64_t seed = *left * 0x9E3779B97F4A7C15ull + ax_self(self).id;
    uint64_t spin = ax__now_ns() + (seed >> 40) % 40000; /* up to 40 us */
    while (ax__now_ns() < spin) {
    }
    rc_tick k = {ax__now_ns(), 1 + (seed >> 20) % 4};
    ax_err e = ax_send_after(self, (uint32_t)k.delay_ms, ax_self(self), S_TICK, &k, sizeof(k), NULL);
    if (e != AX_OK) return e;
    return --*left ? ax_send(self, ax_self(self), S_SET, NULL, 0) : AX_OK;
  }
  if (msg->type == S_TICK) {
    rc_tick k;
    memcpy(&k, msg->data, sizeof(k));
    if (ax__now_ns() < k.set_ns + k.delay_ms * 1000000u) atomic_fetch_add(&rc_early, 1);
    atomic_fetch_add(&rc_fired, 1);
  }
  return AX_OK;
}

static ax_err rc_init(ax_actor *self, void *state, const void *arg, size_t len) {
  *(uint64_t *)state = RC_TIMERS;
  return AX_OK;
}
static const ax_actor_spec rc_spec = {.name = "rc", .behaviour = rc_b, .state_size = sizeof(uint64_t),
                                      .init = rc_init};

static void test_timer_never_fires_early_on_the_real_clock(void) {
  ax_system *sys = ax_test_system(2);
  atomic_store(&rc_fired, 0);
  atomic_store(&rc_early, 0);
  for (int i = 0; i < RC_OWNERS; i++) {
    ax_pid p;
    CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &rc_spec, NULL, 0, &p), AX_OK);
    CU_ASSERT_EQUAL(ax_system_send(sys, p, S_SET, NULL, 0), AX_OK);
  }
  CU_ASSERT_TRUE(ax_test_wait_count(&rc_fired, RC_OWNERS * RC_TIMERS, 20000));
  CU_ASSERT_EQUAL(atomic_load(&rc_early), 0);
  ax_system_free(sys);
}

/* Every worker awake (both pinned by hogs inside their behaviours, on the
 * real clock): the reactor's tick leaves a due timer to the workers' next
 * polls and fires nothing itself; once a worker is free it fires. A pass
 * of the reactor's while both workers were busy was a third thread
 * wanting a core (`axon_bench timers`: reactor passes of 5-20 ms,
 * preempted while holding `firing`); what it pushed waited for a worker
 * anyway. Failed before (the tick fired it a grace after its deadline). */
static void test_timer_left_to_the_workers_while_all_are_awake(void) {
  static oshared sh;
  static hog h1, h2;
  ax_system *sys = ax_test_system(2);
  hog_spawn(sys, &h1);
  hog_spawn(sys, &h2);
  ax_pid o = spawn_owner(sys, &sh);
  ax_system_stats st;
  bool pinned = false;
  uint32_t delay = 0;
  uint64_t set = 0; /* timers set so far, one per round */
  /* A timer that fired before both workers were pinned voids the round:
   * again with a longer delay (the test waits on no timing of its own). */
  for (uint32_t d = 50; d <= 6400 && !pinned; d *= 4) {
    delay = d;
    ax_system_stats_get(sys, &st);
    uint64_t fired0 = st.timers_fired;
    set_timers(sys, o, &sh, (set_req){.count = 1, .delay0 = d});
    set++;
    hog_block(sys, &h1);
    hog_block(sys, &h2);
    ax_system_stats_get(sys, &st);
    pinned = st.timers_fired == fired0;
    if (!pinned) {
      hog_release(&h1);
      hog_release(&h2);
      CU_ASSERT_TRUE(ax_test_wait_count(&sh.ticks, set, 10000));
    }
  }
  CU_ASSERT_TRUE_FATAL(pinned);
  CU_ASSERT_NOT_EQUAL(atomic_load(&h1.on), atomic_load(&h2.on));
  uint64_t ticks0 = set - 1;
  ax_system_stats_get(sys, &st);
  uint64_t fired0 = st.timers_fired;
  ax_test_sleep_ms(delay + 100); /* past its deadline, both workers still pinned */
  ax_system_stats_get(sys, &st);
  CU_ASSERT_EQUAL(st.timers_fired, fired0); /* nobody fired it: not the reactor */
  CU_ASSERT_EQUAL(atomic_load(&sh.ticks), ticks0);
  hog_release(&h1);
  CU_ASSERT_TRUE(ax_test_wait_count(&sh.ticks, ticks0 + 1, 10000)); /* the free worker's poll */
  hog_release(&h2);
  ax_system_free(sys);
}

/* One worker pinned, the other idle (it parks): the reactor's tick fires
 * the due timer after its grace, and the idle worker runs the owner. The
 * other half of the rule above. */
static void test_timer_fires_with_one_worker_pinned_and_one_idle(void) {
  static oshared sh;
  static hog h1;
  ax_system *sys = ax_test_system(2);
  hog_spawn(sys, &h1);
  ax_pid o = spawn_owner(sys, &sh);
  set_timers(sys, o, &sh, (set_req){.count = 1, .delay0 = 20});
  hog_block(sys, &h1);
  CU_ASSERT_TRUE(ax_test_wait_count(&sh.ticks, 1, 10000));
  CU_ASSERT_EQUAL(atomic_load(&h1.done), 0); /* while the hog still held its worker */
  hog_release(&h1);
  ax_system_free(sys);
}

int main(void) {
  CU_pSuite s = ax_test_suite("timer.shards");
  CU_ADD_TEST(s, test_timer_cancel_after_owner_moved_to_other_worker);
  CU_ADD_TEST(s, test_timer_shard_of_busy_worker_still_fires);
  CU_ADD_TEST(s, test_timer_fires_while_every_worker_is_parked);
  CU_ADD_TEST(s, test_timer_deadline_order_across_shards);
  CU_ADD_TEST(s, test_timer_many_owners_across_workers);
  CU_ADD_TEST(s, test_timer_set_off_the_workers_uses_central_shard);
  CU_ADD_TEST(s, test_timer_never_fires_early_on_the_real_clock);
  CU_ADD_TEST(s, test_timer_left_to_the_workers_while_all_are_awake);
  CU_ADD_TEST(s, test_timer_fires_with_one_worker_pinned_and_one_idle);
  return ax_test_run();
}
