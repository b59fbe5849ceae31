/* Tests for timers whose message goes to another actor than their owner
 * (ax_send_after's `to`), and for where a woken actor is queued. An expiry
 * for another local actor goes to that actor directly: it must not wait
 * for its owner's next run (a busy owner would hold it back); a cancel
 * returns AX_OK and stops it until the timer fires, and fails once its
 * message has been sent. And an actor woken by an expiry runs before the actors already
 * queued on the worker that wakes it (they can wait; it is due). The clock
 * is injected (manual): no real sleep decides an outcome. Actors that must
 * hold still (an owner busy in one run, a target that has not run yet)
 * wait for a gate inside their behaviour. */
#include <axon.h>
#include <semaphore.h>
#include <stdio.h>
#include <string.h>

#include "actor/actor_int.h"
#include "support/testutil.h"
#include "support/timer_clock.h"

enum { T_SET = AX_MSG_USER, T_BLOCK, T_BLOCK_CANCEL, T_CANCEL, T_TICK, T_SYNC, T_FILL, T_SELF };

typedef struct tshared {
  _Atomic bool gate, blocked;
  _Atomic uint64_t ticks, bad, syncs, sets, cancels, done;
  _Atomic uint64_t mapped;            /* the owner's live timer ids, at its last T_SYNC */
  _Atomic int cancel_result;
  _Atomic uint64_t order, tick_order; /* run order: the next number; the tick's */
  ax_pid target;                      /* the owner's timers go there */
  ax_pid owner;                       /* what the target expects as from */
  ax_timer t;                         /* the owner's last timer */
} tshared;

static void wait_gate(tshared *sh) {
  atomic_store(&sh->blocked, true);
  for (int i = 0; i < 30000 && !atomic_load(&sh->gate); i++) ax_test_sleep_ms(1);
  atomic_store(&sh->blocked, false);
  atomic_fetch_add(&sh->done, 1);
}

/* Owner and target both: which role is in the messages it gets. */
static ax_err actor_b(ax_actor *self, const ax_msg *msg) {
  tshared *sh = *(tshared **)ax_state(self);
  switch (msg->type) {
  case T_SET: /* a 5 ms timer to the target */
    if (ax_send_after(self, 5, sh->target, T_TICK, NULL, 0, &sh->t) != AX_OK) atomic_fetch_add(&sh->bad, 1);
    atomic_fetch_add(&sh->sets, 1);
    return AX_OK;
  case T_SELF: /* a 5 ms timer to itself */
    if (ax_send_after(self, 5, ax_self(self), T_TICK, NULL, 0, &sh->t) != AX_OK) atomic_fetch_add(&sh->bad, 1);
    atomic_fetch_add(&sh->sets, 1);
    return AX_OK;
  case T_BLOCK: /* sets its timer, then holds its worker */
    if (msg->len && ax_send_after(self, 5, sh->target, T_TICK, NULL, 0, &sh->t) != AX_OK)
      atomic_fetch_add(&sh->bad, 1);
    wait_gate(sh);
    return AX_OK;
  case T_BLOCK_CANCEL: /* holds its worker, then cancels in the same run */
    wait_gate(sh);
    /* fallthrough */
  case T_CANCEL:
    atomic_store(&sh->cancel_result, ax_timer_cancel(self, sh->t));
    atomic_fetch_add(&sh->cancels, 1);
    return AX_OK;
  case T_TICK:
    if (!(msg->flags & AX_MSGF_TIMER) || msg->from.id != sh->owner.id || msg->ref != sh->t.id)
      atomic_fetch_add(&sh->bad, 1);
    atomic_store(&sh->tick_order, atomic_fetch_add(&sh->order, 1));
    atomic_fetch_add(&sh->ticks, 1);
    return AX_OK;
  case T_SYNC:
    atomic_store(&sh->mapped, self->ext ? self->ext->timers.count : 0);
    atomic_fetch_add(&sh->syncs, 1);
    return AX_OK;
  default: atomic_fetch_add(&sh->bad, 1); return AX_OK;
  }
}

static ax_err actor_init(ax_actor *self, void *state, const void *arg, size_t len) {
  (void)self, (void)len;
  memcpy(state, arg, sizeof(tshared *));
  return AX_OK;
}
static const ax_actor_spec actor_spec = {.name = "tgt", .behaviour = actor_b,
                                         .state_size = sizeof(tshared *), .init = actor_init};

static ax_pid spawn(ax_system *sys, tshared *sh) {
  ax_pid p;
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &actor_spec, &sh, sizeof(sh), &p), AX_OK);
  return p;
}

/* Owner o and target r share one tshared each (the owner's knows r). */
static void pair(ax_system *sys, tshared *os, tshared *rs, ax_pid *o, ax_pid *r) {
  memset(os, 0, sizeof(*os));
  memset(rs, 0, sizeof(*rs));
  *r = spawn(sys, rs);
  os->target = *r;
  *o = spawn(sys, os);
  rs->owner = *o;
  rs->t.id = 0; /* set below, once the owner has set it */
}

static bool is_blocked(void *arg) { return atomic_load(&((tshared *)arg)->blocked); }

static void block(ax_system *sys, ax_pid p, tshared *sh, uint32_t type, bool with_timer) {
  atomic_store(&sh->gate, false);
  CU_ASSERT_EQUAL(ax_system_send(sys, p, type, with_timer ? "t" : NULL, with_timer), AX_OK);
  CU_ASSERT_TRUE_FATAL(ax_test_wait(is_blocked, sh, 10000));
}

static void release(tshared *sh) {
  uint64_t want = atomic_load(&sh->done) + 1;
  atomic_store(&sh->gate, true);
  CU_ASSERT_TRUE(ax_test_wait_count(&sh->done, want, 10000));
}

static void sync_with(ax_system *sys, ax_pid p, tshared *sh) {
  uint64_t want = atomic_load(&sh->syncs) + 1;
  CU_ASSERT_EQUAL(ax_system_send(sys, p, T_SYNC, NULL, 0), AX_OK);
  CU_ASSERT_TRUE(ax_test_wait_count(&sh->syncs, want, 10000));
}

static uint64_t fired(ax_system *sys) {
  ax_system_stats st;
  ax_system_stats_get(sys, &st);
  return st.timers_fired;
}

static bool fired_one(void *arg) { return fired(arg) >= 1; }

static bool timer_pending_many(void *arg) {
  ax_system_stats st;
  ax_system_stats_get(arg, &st);
  return st.timers_pending == 50;
}

/* The owner sets a timer for another actor and then stays inside one long
 * run: the expiry reaches the target while the owner is still busy. (It
 * used to go to the owner first, which forwarded it at its next run: a
 * busy owner held its targets' timers back, by as long as it was busy.) */
static void test_timer_expiry_for_another_actor_skips_its_busy_owner(void) {
  static tshared os, rs;
  ax_pid o, r;
  ax_system *sys = timer_clock_system(2);
  pair(sys, &os, &rs, &o, &r);
  block(sys, o, &os, T_BLOCK, true); /* sets the timer, then holds a worker */
  rs.t = os.t;
  timer_clock_advance(sys, 5);
  /* Bounded: before the fix the tick never came while the owner held on. */
  CU_ASSERT_TRUE(ax_test_wait_count(&rs.ticks, 1, 3000));
  CU_ASSERT_TRUE(atomic_load(&os.blocked)); /* delivered while the owner was busy */
  release(&os);
  CU_ASSERT_TRUE(ax_test_wait_count(&rs.ticks, 1, 10000));
  sync_with(sys, o, &os); /* the owner has forgotten the timer: it fired */
  CU_ASSERT_EQUAL(ax_system_send(sys, o, T_CANCEL, NULL, 0), AX_OK);
  CU_ASSERT_TRUE(ax_test_wait_count(&os.cancels, 1, 10000));
  CU_ASSERT_EQUAL(atomic_load(&os.cancel_result), AX_ENOTFOUND);
  sync_with(sys, r, &rs);
  CU_ASSERT_EQUAL(atomic_load(&rs.ticks), 1);
  CU_ASSERT_EQUAL(atomic_load(&rs.bad), 0);
  CU_ASSERT_EQUAL(atomic_load(&os.bad), 0);
  CU_ASSERT_TRUE(ax_test_wait(timer_pending_zero, sys, 10000));
  ax_system_free(sys);
}

/* On the real clock: a timer for another actor fires, and no timer comes
 * after it. The owner forgets it when its reap list comes; reap lists
 * are held for a few ms to go out together (one per owner, not one per
 * owner per pass), so a list must still go out when no later pass
 * would carry it: the reactor's tick sends it. */
static void test_timer_reap_list_reaches_an_owner_without_a_later_pass(void) {
  static tshared os, rs;
  ax_pid o, r;
  ax_system *sys = ax_test_system(2);
  pair(sys, &os, &rs, &o, &r);
  CU_ASSERT_EQUAL(ax_system_send(sys, o, T_SET, NULL, 0), AX_OK);
  CU_ASSERT_TRUE(ax_test_wait_count(&os.sets, 1, 10000));
  /* (rs.t stays 0: on the real clock the tick may come before we could
   * tell the target its id, so its id check counts one "bad" here.) */
  CU_ASSERT_TRUE(ax_test_wait_count(&rs.ticks, 1, 10000));
  sync_with(sys, o, &os);
  for (int i = 0; i < 10000 && atomic_load(&os.mapped); i++) {
    ax_test_sleep_ms(1);
    sync_with(sys, o, &os);
  }
  CU_ASSERT_EQUAL(atomic_load(&os.mapped), 0);
  CU_ASSERT_EQUAL(atomic_load(&rs.ticks), 1);
  CU_ASSERT_EQUAL(atomic_load(&os.bad), 0);
  ax_system_free(sys);
}

/* A cancel before the timer fires returns AX_OK and its message never
 * comes; once it has fired, the message is sent (it may still sit in the
 * target's mailbox, as any message sent) and a cancel fails. Here the
 * owner is busy in one run while it fires, then cancels in that run. */
static void test_timer_cancel_of_a_sent_timer_fails_before_it_wins(void) {
  static tshared os, rs;
  ax_pid o, r;
  ax_system *sys = timer_clock_system(2);
  pair(sys, &os, &rs, &o, &r);
  CU_ASSERT_EQUAL(ax_system_send(sys, o, T_SET, NULL, 0), AX_OK);
  CU_ASSERT_TRUE(ax_test_wait_count(&os.sets, 1, 10000));
  CU_ASSERT_EQUAL(ax_system_send(sys, o, T_CANCEL, NULL, 0), AX_OK);
  CU_ASSERT_TRUE(ax_test_wait_count(&os.cancels, 1, 10000));
  CU_ASSERT_EQUAL(atomic_load(&os.cancel_result), AX_OK);
  timer_clock_advance(sys, 10);
  CU_ASSERT_EQUAL(ax_system_send(sys, o, T_SET, NULL, 0), AX_OK);
  CU_ASSERT_TRUE(ax_test_wait_count(&os.sets, 2, 10000));
  rs.t = os.t;
  block(sys, o, &os, T_BLOCK_CANCEL, false); /* the owner holds a worker */
  timer_clock_advance(sys, 5);
  CU_ASSERT_TRUE(ax_test_wait_count(&rs.ticks, 1, 10000)); /* sent while the owner is busy */
  release(&os); /* cancels in the same run: too late */
  CU_ASSERT_TRUE(ax_test_wait_count(&os.cancels, 2, 10000));
  CU_ASSERT_EQUAL(atomic_load(&os.cancel_result), AX_ENOTFOUND);
  sync_with(sys, r, &rs);
  sync_with(sys, o, &os);
  CU_ASSERT_EQUAL(atomic_load(&rs.ticks), 1);
  CU_ASSERT_EQUAL(atomic_load(&rs.bad), 0);
  CU_ASSERT_EQUAL(atomic_load(&os.bad), 0);
  CU_ASSERT_TRUE(ax_test_wait(timer_pending_zero, sys, 10000));
  ax_system_free(sys);
}

/* Many owners, one target each and a shared one, cancels racing the
 * expiries: every timer is seen at most once, and exactly once unless its
 * cancel returned AX_OK. (Clock steps, no gates: the race is real.) */
enum { OWNERS = 16, ROUNDS = 40 };

static void test_timer_cancel_or_delivery_never_both(void) {
  static tshared os[OWNERS], rs[OWNERS];
  ax_pid o[OWNERS], r[OWNERS];
  ax_system *sys = timer_clock_system(2);
  for (int i = 0; i < OWNERS; i++) pair(sys, &os[i], &rs[i], &o[i], &r[i]);
  uint64_t ok = 0, total = 0;
  for (int round = 0; round < ROUNDS; round++) {
    for (int i = 0; i < OWNERS; i++) {
      uint64_t want = atomic_load(&os[i].sets) + 1;
      CU_ASSERT_EQUAL(ax_system_send(sys, o[i], T_SET, NULL, 0), AX_OK);
      CU_ASSERT_TRUE(ax_test_wait_count(&os[i].sets, want, 10000));
      rs[i].t = os[i].t;
    }
    timer_clock_advance(sys, 5);
    for (int i = 0; i < OWNERS; i++) {
      uint64_t want = atomic_load(&os[i].cancels) + 1;
      CU_ASSERT_EQUAL(ax_system_send(sys, o[i], T_CANCEL, NULL, 0), AX_OK);
      CU_ASSERT_TRUE(ax_test_wait_count(&os[i].cancels, want, 10000));
      ok += atomic_load(&os[i].cancel_result) == AX_OK;
    }
    total += OWNERS;
    for (int i = 0; i < OWNERS; i++) sync_with(sys, r[i], &rs[i]);
    uint64_t seen = 0;
    for (int i = 0; i < OWNERS; i++) seen += atomic_load(&rs[i].ticks);
    CU_ASSERT_EQUAL(seen + ok, total);
  }
  for (int i = 0; i < OWNERS; i++) {
    CU_ASSERT_EQUAL(atomic_load(&rs[i].bad), 0);
    CU_ASSERT_EQUAL(atomic_load(&os[i].bad), 0);
  }
  CU_ASSERT_TRUE(ax_test_wait(timer_pending_zero, sys, 10000));
  ax_system_free(sys);
}

/* One worker: a hog makes 50 actors runnable on it (they queue behind the
 * hog on its worker, the last in its LIFO slot) and holds the worker while
 * the reactor fires an actor's timer. When the hog returns, the woken actor
 * runs before the 50, the LIFO slot's included: it is due, they can wait.
 * (Its wake used to go to the inject queue once the handoff had waited a
 * millisecond, which a busy worker reads once in 61 runs; or to the back
 * of the worker's queue; then behind the LIFO slot, which in `axon_bench
 * timers` holds a setter whose run of 1000 sets is ~0.3 ms.) */
enum { FILLERS = 50 };
static ax_pid fillers[FILLERS];
static _Atomic uint64_t run_seq, filler_runs, woken_at;

static ax_err filler_b(ax_actor *self, const ax_msg *msg) {
  tshared *sh = *(tshared **)ax_state(self);
  if (msg->type == T_FILL) { /* the hog: queue the fillers, then hold on */
    for (int i = 0; i < FILLERS; i++)
      if (ax_send(self, fillers[i], T_SYNC, NULL, 0) != AX_OK) atomic_fetch_add(&sh->bad, 1);
    wait_gate(sh);
  } else if (msg->type == T_SYNC) {
    atomic_fetch_add(&run_seq, 1);
    atomic_fetch_add(&filler_runs, 1);
  }
  return AX_OK;
}
static const ax_actor_spec filler_spec = {.name = "filler", .behaviour = filler_b,
                                          .state_size = sizeof(tshared *), .init = actor_init};

static ax_err woken_b(ax_actor *self, const ax_msg *msg) {
  if (msg->type == T_TICK) atomic_store(&woken_at, atomic_fetch_add(&run_seq, 1));
  return actor_b(self, msg);
}
static const ax_actor_spec woken_spec = {.name = "woken", .behaviour = woken_b,
                                         .state_size = sizeof(tshared *), .init = actor_init};

static void test_timer_woken_owner_runs_before_queued_actors(void) {
  static tshared hs, ws, fs;
  memset(&hs, 0, sizeof(hs));
  memset(&ws, 0, sizeof(ws));
  memset(&fs, 0, sizeof(fs));
  atomic_store(&run_seq, 0);
  atomic_store(&filler_runs, 0);
  atomic_store(&woken_at, UINT64_MAX);
  ax_system *sys = timer_clock_system(1);
  ax_pid h, w;
  tshared *p = &hs;
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &filler_spec, &p, sizeof(p), &h), AX_OK);
  p = &ws;
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &woken_spec, &p, sizeof(p), &w), AX_OK);
  p = &fs;
  for (int i = 0; i < FILLERS; i++)
    CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &filler_spec, &p, sizeof(p), &fillers[i]), AX_OK);
  ws.owner = w;
  CU_ASSERT_EQUAL(ax_system_send(sys, w, T_SELF, NULL, 0), AX_OK);
  CU_ASSERT_TRUE(ax_test_wait_count(&ws.sets, 1, 10000));
  block(sys, h, &hs, T_FILL, false);
  timer_clock_advance(sys, 5);
  CU_ASSERT_TRUE(ax_test_wait(fired_one, sys, 10000)); /* by the reactor: the worker is held */
  ax_test_sleep_ms(20); /* several ticks of the reactor meanwhile (not a timing assertion) */
  release(&hs);
  CU_ASSERT_TRUE(ax_test_wait_count(&ws.ticks, 1, 10000));
  CU_ASSERT_TRUE(ax_test_wait_count(&filler_runs, FILLERS, 10000));
  /* First, before the last filler queued, which sat in the LIFO slot. */
  if (atomic_load(&woken_at) > 0)
    fprintf(stderr, "the woken actor ran as number %llu\n", (unsigned long long)atomic_load(&woken_at));
  CU_ASSERT_EQUAL(atomic_load(&woken_at), 0);
  CU_ASSERT_EQUAL(atomic_load(&ws.bad), 0);
  CU_ASSERT_EQUAL(atomic_load(&hs.bad), 0);
  ax_system_free(sys);
}

/* One worker: actors woken by expiries run in the order their timers came
 * due, across passes, and before the LIFO slot's actor. F and R1 come due
 * together (the reactor fires them while a hog holds the worker); F runs
 * first, makes S runnable (the LIFO slot) and holds the worker while R2
 * comes due. R1, queued before R2 came due, must run before R2, and S
 * after both. They used to go to the front of the worker's ring, each
 * pass's in front of the last's, and a pass moved the LIFO slot's actor
 * there too: R2, then S, then R1. In `axon_bench timers` (1M timers) a
 * receiver queued so sat under 290 later runs (setters' 0.3 ms chunks
 * among them): p99 lateness of tens of ms. */
static _Atomic uint64_t due_seq, r1_at, r2_at, s_at;
static ax_pid due_s;

enum { T_SET6 = T_SELF + 100 };

static ax_err due_b(ax_actor *self, const ax_msg *msg) {
  tshared *sh = *(tshared **)ax_state(self);
  switch (msg->type) {
  case T_SELF: /* 5 ms */
  case T_SET6: /* 6 ms */
    if (ax_send_after(self, msg->type == T_SELF ? 5 : 6, ax_self(self), T_TICK, NULL, 0, NULL) != AX_OK)
      atomic_fetch_add(&sh->bad, 1);
    atomic_fetch_add(&sh->sets, 1);
    return AX_OK;
  case T_TICK:
    if (sh->owner.id == 1) { /* F: wake S, then hold the worker */
      if (ax_send(self, due_s, T_SYNC, NULL, 0) != AX_OK) atomic_fetch_add(&sh->bad, 1);
      atomic_fetch_add(&due_seq, 1);
      wait_gate(sh);
    } else {
      atomic_store(sh->owner.id == 2 ? &r1_at : &r2_at, atomic_fetch_add(&due_seq, 1));
    }
    atomic_fetch_add(&sh->ticks, 1);
    return AX_OK;
  case T_SYNC: /* S */
    atomic_store(&s_at, atomic_fetch_add(&due_seq, 1));
    atomic_fetch_add(&sh->syncs, 1);
    return AX_OK;
  case T_FILL: /* the hog */
    wait_gate(sh);
    return AX_OK;
  default: atomic_fetch_add(&sh->bad, 1); return AX_OK;
  }
}
static uint64_t due_fired; /* fired_due's target */
static bool fired_due(void *arg) { return fired(arg) >= due_fired; }

static const ax_actor_spec due_spec = {.name = "due", .behaviour = due_b,
                                       .state_size = sizeof(tshared *), .init = actor_init};

/* The scenario above; returns with r1_at, r2_at and s_at set (run order
 * after F). */
static void due_scenario(void) {
  static tshared hs, fs, r1s, r2s, ss;
  tshared *all[] = {&hs, &fs, &r1s, &r2s, &ss};
  for (int i = 0; i < 5; i++) memset(all[i], 0, sizeof(tshared));
  fs.owner.id = 1; /* roles, by the owner field (unused otherwise here) */
  r1s.owner.id = 2;
  r2s.owner.id = 3;
  atomic_store(&due_seq, 0);
  atomic_store(&r1_at, UINT64_MAX);
  atomic_store(&r2_at, UINT64_MAX);
  atomic_store(&s_at, UINT64_MAX);
  ax_system *sys = timer_clock_system(1);
  ax_pid p[5];
  for (int i = 0; i < 5; i++) {
    tshared *sh = all[i];
    CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &due_spec, &sh, sizeof(sh), &p[i]), AX_OK);
  }
  due_s = p[4];
  /* F's timer before R1's (same deadline: they fire in the order set). */
  CU_ASSERT_EQUAL(ax_system_send(sys, p[1], T_SELF, NULL, 0), AX_OK);
  CU_ASSERT_TRUE_FATAL(ax_test_wait_count(&fs.sets, 1, 10000));
  CU_ASSERT_EQUAL(ax_system_send(sys, p[2], T_SELF, NULL, 0), AX_OK);
  CU_ASSERT_EQUAL(ax_system_send(sys, p[3], T_SET6, NULL, 0), AX_OK);
  CU_ASSERT_TRUE_FATAL(ax_test_wait_count(&r1s.sets, 1, 10000));
  CU_ASSERT_TRUE_FATAL(ax_test_wait_count(&r2s.sets, 1, 10000));
  block(sys, p[0], &hs, T_FILL, false);
  timer_clock_advance(sys, 5); /* F and R1: fired by the reactor (the worker is held) */
  due_fired = 2;
  CU_ASSERT_TRUE_FATAL(ax_test_wait(fired_due, sys, 10000));
  release(&hs); /* F runs, wakes S and holds the worker */
  CU_ASSERT_TRUE_FATAL(ax_test_wait(is_blocked, &fs, 10000));
  timer_clock_advance(sys, 1); /* R2 */
  due_fired = 3;
  CU_ASSERT_TRUE_FATAL(ax_test_wait(fired_due, sys, 10000));
  release(&fs);
  CU_ASSERT_TRUE(ax_test_wait_count(&r1s.ticks, 1, 10000));
  CU_ASSERT_TRUE(ax_test_wait_count(&r2s.ticks, 1, 10000));
  CU_ASSERT_TRUE(ax_test_wait_count(&ss.syncs, 1, 10000));
  for (int i = 0; i < 5; i++) CU_ASSERT_EQUAL(atomic_load(&all[i]->bad), 0);
  ax_system_free(sys);
}

/* Runs the scenario with a due streak bound (ns) and checks the order
 * after F: R1, R2 and S ran as numbers r1, r2 and s. */
static void due_order(uint64_t due_ns, uint64_t r1, uint64_t r2, uint64_t s) {
  uint64_t bound = atomic_exchange(&ax__sched_due_ns, due_ns);
  due_scenario();
  atomic_store(&ax__sched_due_ns, bound);
  if (atomic_load(&r1_at) != r1 || atomic_load(&r2_at) != r2 || atomic_load(&s_at) != s)
    fprintf(stderr, "after F: R1 ran %llu, R2 %llu, S %llu\n", (unsigned long long)atomic_load(&r1_at),
            (unsigned long long)atomic_load(&r2_at), (unsigned long long)atomic_load(&s_at));
  CU_ASSERT_EQUAL(atomic_load(&r1_at), r1);
  CU_ASSERT_EQUAL(atomic_load(&r2_at), r2);
  CU_ASSERT_EQUAL(atomic_load(&s_at), s);
}

/* No bound on the due streak (F's run, held by the test, must not count):
 * R1, R2, then S. */
static void test_timer_woken_actors_run_in_due_order_across_passes(void) { due_order(UINT64_MAX, 1, 2, 3); }

/* The same with a due streak bound of 0: after each due run, another
 * actor that is queued runs first (S, then R1; then R2, nothing else
 * being queued). Expiries cannot starve the other actors of a worker. */
static void test_timer_due_streak_lets_queued_actors_run(void) { due_order(0, 2, 3, 1); }

/* One worker: a receiver whose expiries keep coming while it runs (another
 * pass pushes them, so it is not woken: it is running) and whose runs wake
 * other actors (so they are not quiet re-runs) used its extra run through
 * the LIFO slot and then went to the yield slot, which waits until the ring
 * has moved past everything queued before it: in `axon_bench timers`, a
 * round of the setters' 0.3 ms runs. An actor whose next message is a due
 * expiry now goes to the due list: its third expiry is seen before the
 * actors its runs made runnable. */
enum { FEEDERS = 5, T_SET3 = T_SELF + 101 };
static ax_pid feeders[FEEDERS + 1];
static _Atomic uint64_t feed_seq, feed_tick3_at, feed_first_filler_at;

static ax_err feed_b(ax_actor *self, const ax_msg *msg) {
  tshared *sh = *(tshared **)ax_state(self);
  switch (msg->type) {
  case T_SET3: /* the receiver: three timers to itself, due at +5, +6, +7 */
    for (uint32_t d = 5; d <= 7; d++)
      if (ax_send_after(self, d, ax_self(self), T_TICK, NULL, 0, NULL) != AX_OK) atomic_fetch_add(&sh->bad, 1);
    atomic_fetch_add(&sh->sets, 1);
    return AX_OK;
  case T_TICK: {
    uint64_t n = atomic_fetch_add(&sh->ticks, 1) + 1;
    if (n == 1) /* the fillers, queued on the ring behind the LIFO slot */
      for (int i = 0; i < FEEDERS; i++)
        if (ax_send(self, feeders[i], T_SYNC, NULL, 0) != AX_OK) atomic_fetch_add(&sh->bad, 1);
    if (n == 2 && ax_send(self, feeders[FEEDERS], T_SYNC, NULL, 0) != AX_OK) atomic_fetch_add(&sh->bad, 1);
    if (n == 3) atomic_store(&feed_tick3_at, atomic_fetch_add(&feed_seq, 1));
    if (n < 3) { /* held while the next expiry comes */
      atomic_store(&sh->gate, false);
      wait_gate(sh);
    }
    return AX_OK;
  }
  case T_SYNC: { /* a filler */
    uint64_t at = atomic_fetch_add(&feed_seq, 1), none = UINT64_MAX;
    atomic_compare_exchange_strong(&feed_first_filler_at, &none, at);
    atomic_fetch_add(&sh->syncs, 1);
    return AX_OK;
  }
  default: atomic_fetch_add(&sh->bad, 1); return AX_OK;
  }
}
static const ax_actor_spec feed_spec = {.name = "feed", .behaviour = feed_b,
                                        .state_size = sizeof(tshared *), .init = actor_init};

static void test_timer_receiver_fed_while_running_stays_due(void) {
  static tshared rs, fs;
  memset(&rs, 0, sizeof(rs));
  memset(&fs, 0, sizeof(fs));
  atomic_store(&feed_seq, 0);
  atomic_store(&feed_tick3_at, UINT64_MAX);
  atomic_store(&feed_first_filler_at, UINT64_MAX);
  uint64_t bound = atomic_exchange(&ax__sched_due_ns, UINT64_MAX); /* the test's held runs must not count */
  ax_system *sys = timer_clock_system(1);
  ax_pid r;
  tshared *p = &rs;
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &feed_spec, &p, sizeof(p), &r), AX_OK);
  p = &fs;
  for (int i = 0; i <= FEEDERS; i++)
    CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &feed_spec, &p, sizeof(p), &feeders[i]), AX_OK);
  CU_ASSERT_EQUAL(ax_system_send(sys, r, T_SET3, NULL, 0), AX_OK);
  CU_ASSERT_TRUE_FATAL(ax_test_wait_count(&rs.sets, 1, 10000));
  timer_clock_advance(sys, 5); /* the first expiry */
  for (uint64_t k = 1; k <= 2; k++) {
    CU_ASSERT_TRUE_FATAL(ax_test_wait(is_blocked, &rs, 10000)); /* its run k, held */
    timer_clock_advance(sys, 1); /* expiry k + 1, pushed while it runs */
    due_fired = k + 1;
    CU_ASSERT_TRUE_FATAL(ax_test_wait(fired_due, sys, 10000));
    release(&rs);
  }
  CU_ASSERT_TRUE(ax_test_wait_count(&rs.ticks, 3, 10000));
  CU_ASSERT_TRUE(ax_test_wait_count(&fs.syncs, FEEDERS + 1, 10000));
  atomic_store(&ax__sched_due_ns, bound);
  if (atomic_load(&feed_tick3_at) > atomic_load(&feed_first_filler_at))
    fprintf(stderr, "third expiry seen as number %llu, the first filler ran as %llu\n",
            (unsigned long long)atomic_load(&feed_tick3_at), (unsigned long long)atomic_load(&feed_first_filler_at));
  CU_ASSERT_TRUE(atomic_load(&feed_tick3_at) < atomic_load(&feed_first_filler_at));
  CU_ASSERT_EQUAL(atomic_load(&rs.bad), 0);
  CU_ASSERT_EQUAL(atomic_load(&fs.bad), 0);
  ax_system_free(sys);
}

/* A pass that finds 50 timers due for one actor pushes them as one chain;
 * with a batch budget of 10 the actor took them 10 per run, and between
 * its runs it went behind the actors queued on its worker (the LIFO slot
 * once, then the yield slot and the ring's back): in `axon_bench timers`
 * a receiver that fell behind waited a round of the setters' 0.3 ms runs
 * for each 100 expiries, and fell further behind (recv p99 207 ms, 30 ms
 * with an unbounded budget). Expiries are due: they do not count against
 * the budget, so it takes them all in one run. */
enum { MANY = 50 };
static _Atomic uint64_t many_ticks, many_runs;

static ax_err many_b(ax_actor *self, const ax_msg *msg) {
  ax_pid to;
  switch (msg->type) {
  case T_SET: /* the owner: MANY 5 ms timers for the pid in the message */
    memcpy(&to, msg->data, sizeof(to));
    for (int i = 0; i < MANY; i++)
      if (ax_send_after(self, 5, to, T_TICK, NULL, 0, NULL) != AX_OK) return AX_ENOMEM;
    return AX_OK;
  case T_TICK: atomic_fetch_add(&many_ticks, 1); return AX_OK;
  default: return AX_EINVAL;
  }
}
static ax_err many_flush(ax_actor *self, void *state) {
  (void)self, (void)state;
  atomic_fetch_add(&many_runs, 1); /* a run that delivered something */
  return AX_OK;
}
static const ax_actor_spec many_spec = {.name = "many", .behaviour = many_b, .flush = many_flush};

/* One worker, batch 10 (the budget the two tests below count runs
 * against), the counters reset; with the test's clock when manual_clock. */
static ax_system *one_worker_batch_10(bool manual_clock) {
  ax_system_config cfg;
  ax_system_config_init(&cfg);
  cfg.workers = 1;
  cfg.batch = 10;
  if (manual_clock) {
    cfg.clock_ms = timer_clock_read;
    atomic_store(&timer_clock_ms, 1000);
  }
  atomic_store(&many_ticks, 0);
  atomic_store(&many_runs, 0);
  ax_system *sys = NULL;
  CU_ASSERT_EQUAL(ax_system_new(&cfg, &sys), AX_OK);
  return sys;
}

static void test_timer_due_expiries_do_not_count_against_the_batch(void) {
  ax_system *sys = one_worker_batch_10(true);
  CU_ASSERT_PTR_NOT_NULL_FATAL(sys);
  ax_pid o, r;
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &many_spec, NULL, 0, &o), AX_OK);
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &many_spec, NULL, 0, &r), AX_OK);
  CU_ASSERT_EQUAL(ax_system_send(sys, o, T_SET, &r, sizeof(r)), AX_OK);
  CU_ASSERT_TRUE(ax_test_wait(timer_pending_many, sys, 10000));
  CU_ASSERT_TRUE(ax_test_wait_count(&many_runs, 1, 10000)); /* the owner's run has ended */
  uint64_t runs = atomic_load(&many_runs);
  timer_clock_advance(sys, 5);
  CU_ASSERT_TRUE(ax_test_wait_count(&many_ticks, MANY, 10000));
  if (atomic_load(&many_runs) - runs != 1)
    fprintf(stderr, "%d expiries took %llu runs\n", MANY, (unsigned long long)(atomic_load(&many_runs) - runs));
  CU_ASSERT_EQUAL(atomic_load(&many_runs) - runs, 1);
  ax_system_free(sys);
}

/* The exemption is for this node's own expiries only. AX_MSGF_TIMER also
 * arrives on a peer's SEND (the cluster keeps it, so that a remote timer's
 * message says what it is), and bytes from a peer must not buy an actor an
 * unbudgeted run: MANY such messages queued while the actor is busy take
 * MANY / batch runs, as any message does. The gate holds the actor in a run
 * while they are queued, so all of them are present when its next run
 * starts. */
static sem_t peer_gate;
static _Atomic uint64_t peer_gated;
static ax_err peer_b(ax_actor *self, const ax_msg *msg) {
  (void)self;
  if (msg->type == T_BLOCK) {
    atomic_store(&peer_gated, 1);
    sem_wait(&peer_gate);
    return AX_OK;
  }
  if (msg->type == T_TICK) atomic_fetch_add(&many_ticks, 1);
  return AX_OK;
}
static const ax_actor_spec peer_spec = {.name = "peer-timer", .behaviour = peer_b, .flush = many_flush};

static void test_timer_flag_from_elsewhere_counts_against_the_batch(void) {
  atomic_store(&peer_gated, 0);
  sem_init(&peer_gate, 0, 0);
  ax_system *sys = one_worker_batch_10(false);
  CU_ASSERT_PTR_NOT_NULL_FATAL(sys);
  ax_pid r;
  CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &peer_spec, NULL, 0, &r), AX_OK);
  CU_ASSERT_EQUAL(ax_system_send(sys, r, T_BLOCK, NULL, 0), AX_OK);
  CU_ASSERT_TRUE(ax_test_wait_count(&peer_gated, 1, 10000));
  for (int i = 0; i < MANY; i++) /* as cluster/conn.c replays a peer's SEND */
    CU_ASSERT_EQUAL(ax__send(sys, ax__ctx_get(), r.id, r, T_TICK, AX_MSGF_TIMER, 0, NULL, 0, NULL),
                    AX_OK);
  sem_post(&peer_gate);
  CU_ASSERT_TRUE(ax_test_wait_count(&many_ticks, MANY, 10000));
  CU_ASSERT_TRUE(ax_test_wait_count(&many_runs, 1 + MANY / 10, 10000));
  CU_ASSERT_EQUAL(atomic_load(&many_runs), 1 + MANY / 10); /* the gate's run, then 10 a run */
  ax_system_free(sys);
  sem_destroy(&peer_gate);
}


/* An owner whose direct timers a pass sent gets a reap list (its ids, so
 * it frees them); one that is idle is woken by it alone. Nothing is due
 * then, and it used to go onto the due list with the pass's receivers
 * (on a manual clock its list is made first, so it ran first): after
 * `axon_bench timers`' burst, 100 idle setters' reap runs sat among the
 * receivers every 4 ms. Now receivers first: OWNERS2 owners, each with a
 * direct timer to its own target, all due in one pass; each target, when
 * its expiry runs, looks at its owner's map (one worker: the owner is not
 * running), which still holds the timer if the reap list has not run.
 * Counted: targets that ran after their owner's reap list (all of them
 * before the change, none now); and every reap list still arrives. */
enum { OWNERS2 = 8, T_REAP_SET = T_SELF + 201, T_REAP_TICK };
static _Atomic uint64_t reap_ticks, reap_after_owner, reap_bad, reap_syncs, reap_mapped;

static ax_err reap_b(ax_actor *self, const ax_msg *msg) {
  ax_pid peer = *(ax_pid *)ax_state(self); /* an owner's target; a target's owner */
  switch (msg->type) {
  case T_REAP_SET:
    if (ax_send_after(self, 5, peer, T_REAP_TICK, NULL, 0, NULL) != AX_OK) atomic_fetch_add(&reap_bad, 1);
    atomic_fetch_add(&reap_syncs, 1);
    return AX_OK;
  case T_REAP_TICK: {
    ax_actor *o = ax__table_acquire(&self->sys->table, peer.id);
    if (!o) {
      atomic_fetch_add(&reap_bad, 1);
      return AX_OK;
    }
    if (!o->ext || o->ext->timers.count == 0) atomic_fetch_add(&reap_after_owner, 1);
    ax__table_release(&self->sys->table, peer.id);
    atomic_fetch_add(&reap_ticks, 1);
    return AX_OK;
  }
  case T_SYNC:
    atomic_fetch_add(&reap_mapped, self->ext ? self->ext->timers.count : 0);
    atomic_fetch_add(&reap_syncs, 1);
    return AX_OK;
  default: atomic_fetch_add(&reap_bad, 1); return AX_OK;
  }
}

static ax_err reap_init(ax_actor *self, void *state, const void *arg, size_t len) {
  (void)self;
  memcpy(state, arg, len);
  return AX_OK;
}
static const ax_actor_spec reap_spec = {.name = "reap", .behaviour = reap_b, .state_size = sizeof(ax_pid),
                                        .init = reap_init};

static void test_timer_reap_list_alone_waits_for_the_due(void) {
  atomic_store(&reap_ticks, 0);
  atomic_store(&reap_after_owner, 0);
  atomic_store(&reap_bad, 0);
  atomic_store(&reap_syncs, 0);
  atomic_store(&reap_mapped, 0);
  ax_system *sys = timer_clock_system(1);
  ax_pid owners[OWNERS2];
  for (int i = 0; i < OWNERS2; i++) {
    ax_pid t, none = {0};
    CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &reap_spec, &none, sizeof(none), &t), AX_OK);
    CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &reap_spec, &t, sizeof(t), &owners[i]), AX_OK);
    /* the target learns its owner: a second spawn is simpler than a message */
    ax_actor *ta = ax__table_acquire(&sys->table, t.id);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ta);
    *(ax_pid *)ax_state(ta) = owners[i]; /* before anything is sent to it */
    ax__table_release(&sys->table, t.id);
    CU_ASSERT_EQUAL(ax_system_send(sys, owners[i], T_REAP_SET, NULL, 0), AX_OK);
  }
  CU_ASSERT_TRUE_FATAL(ax_test_wait_count(&reap_syncs, OWNERS2, 10000));
  timer_clock_advance(sys, 5); /* one pass fires all of them */
  CU_ASSERT_TRUE(ax_test_wait_count(&reap_ticks, OWNERS2, 10000));
  /* Every owner's reap list still comes: its map empties. */
  for (int i = 0; i < OWNERS2; i++) CU_ASSERT_EQUAL(ax_system_send(sys, owners[i], T_SYNC, NULL, 0), AX_OK);
  CU_ASSERT_TRUE(ax_test_wait_count(&reap_syncs, 2 * OWNERS2, 10000));
  CU_ASSERT_EQUAL(atomic_load(&reap_mapped), 0);
  if (atomic_load(&reap_after_owner))
    fprintf(stderr, "%llu of %d targets ran after their owner's reap list\n",
            (unsigned long long)atomic_load(&reap_after_owner), OWNERS2);
  CU_ASSERT_EQUAL(atomic_load(&reap_after_owner), 0);
  CU_ASSERT_EQUAL(atomic_load(&reap_bad), 0);
  ax_system_free(sys);
}

int main(void) {
  CU_pSuite s = ax_test_suite("timer.target");
  CU_ADD_TEST(s, test_timer_expiry_for_another_actor_skips_its_busy_owner);
  CU_ADD_TEST(s, test_timer_cancel_of_a_sent_timer_fails_before_it_wins);
  CU_ADD_TEST(s, test_timer_reap_list_reaches_an_owner_without_a_later_pass);
  CU_ADD_TEST(s, test_timer_cancel_or_delivery_never_both);
  CU_ADD_TEST(s, test_timer_woken_owner_runs_before_queued_actors);
  CU_ADD_TEST(s, test_timer_woken_actors_run_in_due_order_across_passes);
  CU_ADD_TEST(s, test_timer_due_streak_lets_queued_actors_run);
  CU_ADD_TEST(s, test_timer_receiver_fed_while_running_stays_due);
  CU_ADD_TEST(s, test_timer_due_expiries_do_not_count_against_the_batch);
  CU_ADD_TEST(s, test_timer_flag_from_elsewhere_counts_against_the_batch);
  CU_ADD_TEST(s, test_timer_reap_list_alone_waits_for_the_due);
  return ax_test_run();
}
