/* Reclaiming stopped actors (docs/ARCHITECTURE.md, "Stopping an actor"):
 * senders on every worker and an outside thread race with receivers that
 * stop after a few messages and with the reuse of their slots: every send
 * returns AX_OK or AX_ENOACTOR (or AX_EAGAIN from outside to a full
 * backpressure lane), no message reaches an actor other than the one its
 * pid named, every accepted message is delivered, dropped or counted as a
 * dead letter, and a stopped pid stays dead after its slot was reused.
 * ASan sees any touch of freed memory; its leak checker any lost node. The
 * stress test for any change to how senders find and hold a receiver:
 * workers' sends now take no slot reference (src/actor/qsbr.h); with the
 * destroy made immediate at the stop, ASan reports a use after free here
 * (ax__lane_push, 3 of 3 runs). */
#include <axon.h>
#include <pthread.h>
#include <string.h>

#include "actor/qsbr.h"
#include "support/testutil.h"

enum { T_WORK = AX_MSG_USER, T_MORE, T_START };
enum { SLOTS = 32, SENDERS = 4, DEATHS = 4000, PER_RUN = 64, GRAVES = 512 };

typedef struct race {
  _Atomic uint64_t dir[SLOTS]; /* the current target of each slot */
  _Atomic uint64_t graves[GRAVES]; /* pids of the last stopped targets */
  _Atomic bool stop;
  _Atomic uint64_t sent_ok, delivered, enoactor, rejected, bad_err, misdelivered, deaths,
      respawn_fail;
  _Atomic uint64_t senders_done;
} race;

static race R;

/* ---- targets: stop after a few messages; terminate spawns the slot's next one ---- */

typedef struct target_state {
  uint32_t slot;
  uint32_t quota;
  uint32_t got;
} target_state;

static ax_err target_init(ax_actor *self, void *state, const void *arg, size_t len) {
  target_state *st = state;
  memcpy(&st->slot, arg, sizeof(st->slot));
  st->quota = 1 + (uint32_t)(ax_self(self).id % 40);
  return AX_OK;
}

static ax_err target(ax_actor *self, const ax_msg *msg) {
  target_state *st = ax_state(self);
  atomic_fetch_add(&R.delivered, 1);
  uint64_t meant;
  if (msg->type != T_WORK || msg->len != sizeof(meant)) {
    atomic_fetch_add(&R.misdelivered, 1);
    return AX_OK;
  }
  memcpy(&meant, msg->data, sizeof(meant));
  if (meant != ax_self(self).id) atomic_fetch_add(&R.misdelivered, 1);
  if (++st->got >= st->quota) return ax_exit(self, ax_self(self), AX_REASON_NORMAL);
  return AX_OK;
}

static void target_term(ax_actor *self, void *state, ax_reason reason);

/* Three kinds of lanes: unbounded, bounded with backpressure (senders get
 * muted and unmuted by a stop), DROP_OLD (its senders take the counted path). */
static const ax_actor_spec target_specs[3] = {
    {.name = "target", .behaviour = target, .state_size = sizeof(target_state),
     .init = target_init, .terminate = target_term},
    {.name = "target-bp", .behaviour = target, .state_size = sizeof(target_state),
     .init = target_init, .terminate = target_term, .mailbox_limit = 4,
     .overflow = AX_OVERFLOW_BACKPRESSURE},
    {.name = "target-old", .behaviour = target, .state_size = sizeof(target_state),
     .init = target_init, .terminate = target_term, .mailbox_limit = 4,
     .overflow = AX_OVERFLOW_DROP_OLD},
};

static void target_term(ax_actor *self, void *state, ax_reason reason) {
  (void)reason;
  target_state *st = state;
  uint64_t d = atomic_fetch_add(&R.deaths, 1);
  atomic_store(&R.graves[d % GRAVES], ax_self(self).id);
  if (atomic_load(&R.stop)) return;
  ax_pid next;
  uint32_t slot = st->slot;
  if (ax_spawn(self, &target_specs[slot % 3], &slot, sizeof(slot), &next) == AX_OK)
    atomic_store(&R.dir[slot], next.id);
  else
    atomic_fetch_add(&R.respawn_fail, 1);
}

/* ---- senders: PER_RUN sends to random slots per run, then a self-send ---- */

static void count_send(ax_err e) {
  if (e == AX_OK)
    atomic_fetch_add(&R.sent_ok, 1);
  else if (e == AX_ENOACTOR)
    atomic_fetch_add(&R.enoactor, 1);
  else if (e == AX_EAGAIN) /* a full backpressure lane refuses outside threads */
    atomic_fetch_add(&R.rejected, 1);
  else
    atomic_fetch_add(&R.bad_err, 1);
}

static ax_err sender(ax_actor *self, const ax_msg *msg) {
  uint64_t *rng = ax_state(self);
  if (msg->type != T_START && msg->type != T_MORE) {
    atomic_fetch_add(&R.misdelivered, 1);
    return AX_OK;
  }
  atomic_fetch_add(&R.delivered, 1);
  if (atomic_load(&R.stop)) {
    atomic_fetch_add(&R.senders_done, 1);
    return ax_exit(self, ax_self(self), AX_REASON_NORMAL);
  }
  for (int i = 0; i < PER_RUN; i++) {
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    uint64_t to = atomic_load(&R.dir[*rng % SLOTS]);
    count_send(ax_send(self, (ax_pid){to}, T_WORK, &to, sizeof(to)));
  }
  ax_err e = ax_send(self, ax_self(self), T_MORE, NULL, 0);
  count_send(e);
  return e;
}

static ax_err sender_init(ax_actor *self, void *state, const void *arg, size_t len) {
  (void)self;
  memcpy(state, arg, len);
  return AX_OK;
}

static const ax_actor_spec sender_spec = {.name = "sender", .behaviour = sender,
                                          .state_size = sizeof(uint64_t), .init = sender_init};

static bool enough_deaths(void *arg) {
  (void)arg;
  return atomic_load(&R.deaths) >= DEATHS;
}

static bool senders_done(void *arg) {
  (void)arg;
  return atomic_load(&R.senders_done) == SENDERS;
}

static void test_senders_race_stops_and_slot_reuse(void) {
  memset(&R, 0, sizeof(R));
  ax_system *sys = ax_test_system(3); /* more workers than cores: more interleavings */
  for (uint32_t i = 0; i < SLOTS; i++) {
    ax_pid p;
    CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &target_specs[i % 3], &i, sizeof(i), &p), AX_OK);
    atomic_store(&R.dir[i], p.id);
  }
  for (uint64_t i = 0; i < SENDERS; i++) {
    ax_pid p;
    uint64_t seed = 0x9E3779B97F4A7C15ull * (i + 1);
    CU_ASSERT_EQUAL_FATAL(ax_system_spawn(sys, &sender_spec, &seed, sizeof(seed), &p), AX_OK);
    count_send(ax_system_send(sys, p, T_START, NULL, 0));
  }
  /* This thread sends too (the counted path), until enough targets died
   * (bounded: 60 s). */
  uint64_t rng = 88172645463325252ull;
  for (int round = 0; round < 60000 && !enough_deaths(NULL); round++) {
    for (int i = 0; i < 16; i++) {
      rng ^= rng << 13;
      rng ^= rng >> 7;
      rng ^= rng << 17;
      uint64_t to = atomic_load(&R.dir[rng % SLOTS]);
      count_send(ax_system_send(sys, (ax_pid){to}, T_WORK, &to, sizeof(to)));
    }
    ax_test_sleep_ms(1);
  }
  CU_ASSERT(enough_deaths(NULL));
  atomic_store(&R.stop, true);
  CU_ASSERT(ax_test_wait(senders_done, NULL, 30000));
  CU_ASSERT_EQUAL(ax_system_shutdown(sys), AX_OK);
  ax_system_stats st;
  ax_system_stats_get(sys, &st);
  CU_ASSERT_EQUAL(atomic_load(&R.bad_err), 0);
  CU_ASSERT_EQUAL(atomic_load(&R.misdelivered), 0);
  CU_ASSERT_EQUAL(atomic_load(&R.respawn_fail), 0);
  /* Stopped pids stay dead, also those whose slot was reused since. */
  for (int i = 0; i < GRAVES; i++)
    CU_ASSERT_EQUAL(ax_system_send(sys, (ax_pid){atomic_load(&R.graves[i])}, T_WORK, NULL, 0),
                    AX_ENOACTOR);
  /* Every accepted message was delivered, dropped (DROP_OLD) or counted
   * as a dead letter, also those pushed after their receiver's stop
   * (dropped also counts the refusals). */
  uint64_t accounted =
      atomic_load(&R.delivered) + st.dead_letters + st.dropped - atomic_load(&R.rejected);
  CU_ASSERT_EQUAL(accounted, atomic_load(&R.sent_ok));
  if (accounted != atomic_load(&R.sent_ok))
    fprintf(stderr, "sent_ok %llu delivered %llu dead %llu dropped %llu\n",
            (unsigned long long)atomic_load(&R.sent_ok), (unsigned long long)atomic_load(&R.delivered),
            (unsigned long long)st.dead_letters, (unsigned long long)st.dropped);
  CU_ASSERT_EQUAL(st.actors_alive, 0);
  ax_system_free(sys);
}

/* ---- a stop's deferred destroy finishes on its own (src/actor/qsbr.h) ---- */

static _Atomic bool busy_running, busy_release;

/* Holds its worker in one run until released (bounded: 60 s). */
static ax_err busy(ax_actor *self, const ax_msg *msg) {
  (void)self, (void)msg;
  atomic_store(&busy_running, true);
  for (int i = 0; i < 60000 && !atomic_load(&busy_release); i++) ax_test_sleep_ms(1);
  return AX_OK;
}
static const ax_actor_spec busy_spec = {.name = "busy", .behaviour = busy};

/* A system of `workers` workers, one held in the busy actor's run (until
 * busy_release); NULL if that run never started (60 s). */
static ax_system *busy_system(unsigned workers) {
  atomic_store(&busy_running, false);
  atomic_store(&busy_release, false);
  ax_system *sys = ax_test_system(workers);
  ax_pid b;
  if (ax_system_spawn(sys, &busy_spec, NULL, 0, &b) != AX_OK ||
      ax_system_send(sys, b, T_START, NULL, 0) != AX_OK)
    return NULL;
  for (int i = 0; i < 60000 && !atomic_load(&busy_running); i++) ax_test_sleep_ms(1);
  return atomic_load(&busy_running) ? sys : NULL;
}

static ax_err victim(ax_actor *self, const ax_msg *msg) {
  (void)msg;
  return ax_exit(self, ax_self(self), AX_REASON_NORMAL);
}
static const ax_actor_spec victim_spec = {.name = "victim", .behaviour = victim};

typedef struct stop_wait {
  ax_system *sys;
  ax_pid pid;
  uint64_t stopped;
} stop_wait;

static bool victim_dead(void *arg) {
  stop_wait *w = arg;
  return ax_system_send(w->sys, w->pid, T_WORK, NULL, 0) == AX_ENOACTOR;
}

/* Spawns a victim and tells it to stop; *w records it and the stopped
 * count before. */
static ax_err victim_start(ax_system *sys, stop_wait *w) {
  ax_system_stats st;
  ax_system_stats_get(sys, &st);
  *w = (stop_wait){sys, AX_PID_NONE, st.actors_stopped};
  ax_err e = ax_system_spawn(sys, &victim_spec, NULL, 0, &w->pid);
  return e != AX_OK ? e : ax_system_send(sys, w->pid, T_WORK, NULL, 0);
}

static bool victim_destroyed(void *arg) {
  stop_wait *w = arg;
  ax_system_stats st;
  ax_system_stats_get(w->sys, &st);
  return st.actors_stopped > w->stopped && st.actors_alive == 1;
}

/* A worker stays in one run while an actor stops on the other: the stop's
 * destroy waits for that worker to be between runs (its sends find
 * receivers without a reference), and happens once it is, with nothing
 * else sent or run: the live count reaches the busy actor alone. Failed
 * (the destroy never came in 30 s) with neither a worker acknowledging
 * the epoch nor one going offline to park trying the reclaim. */
static void test_a_stop_is_destroyed_after_a_long_run_elsewhere(void) {
  ax_system *sys = busy_system(2);
  CU_ASSERT_PTR_NOT_NULL_FATAL(sys);
  stop_wait w;
  CU_ASSERT_EQUAL_FATAL(victim_start(sys, &w), AX_OK);
  CU_ASSERT(ax_test_wait(victim_dead, &w, 30000)); /* stopped on the other worker */
  atomic_store(&busy_release, true);
  CU_ASSERT(ax_test_wait(victim_destroyed, &w, 30000));
  ax_system_free(sys);
}

/* Two workers go offline to park at once (src/actor/qsbr.c): the first,
 * offline, holds the reclaim lock and finds the second still online, and
 * is held there (a test hook) until the second has gone offline too and
 * tried its own reclaim, or 2 s. The batch must still be destroyed with
 * nothing else running. Failed (the stopped actor was never destroyed, and
 * shutdown, which waits for the live count, would hang: CI saw sup.names
 * time out under TSan) when a reclaim only tried the lock: the second's
 * try lost to the first, which had judged before the second went offline. */
static _Atomic(ax__worker *) hook_holder;
static _Atomic bool hook_second_done;

static void park_race_hook(ax__worker *w, int where) {
  if (!w) return;
  if (where == AX__QS_HOOK_WAITING &&
      atomic_load(&w->qs_seen) == AX__QS_OFFLINE) { /* a worker going offline judged */
    ax__worker *expect = NULL;
    if (!atomic_compare_exchange_strong(&hook_holder, &expect, w)) return;
    for (int i = 0; i < 2000 && !atomic_load(&hook_second_done); i++) ax_test_sleep_ms(1);
  } else if (where == AX__QS_HOOK_OFFLINE) {
    ax__worker *h = atomic_load(&hook_holder);
    if (h && h != w) atomic_store(&hook_second_done, true);
  }
}

static bool hook_engaged(void *arg) {
  (void)arg;
  return atomic_load(&hook_holder) != NULL;
}

static void test_two_workers_parking_at_once_keep_the_reclaim(void) {
  atomic_store(&hook_holder, NULL);
  atomic_store(&hook_second_done, false);
  ax_system *sys = busy_system(2);
  CU_ASSERT_PTR_NOT_NULL_FATAL(sys);
  atomic_store(&ax__qs_test_hook, park_race_hook);
  stop_wait w;
  CU_ASSERT_EQUAL_FATAL(victim_start(sys, &w), AX_OK);
  /* the victim stops on the free worker, which parks: offline, it judges
   * the batch, finds the busy worker online and is held */
  CU_ASSERT(ax_test_wait(hook_engaged, NULL, 30000));
  atomic_store(&busy_release, true); /* the busy worker's run ends; it parks too */
  CU_ASSERT(ax_test_wait(victim_destroyed, &w, 30000));
  atomic_store(&ax__qs_test_hook, NULL);
  ax_system_free(sys);
}

/* A spawn from a plain thread whose init fails leaves nothing alive when it
 * returns, also while a worker is in the middle of a long run (its stop's
 * destroy waits for that worker: the spawn waits with it). Failed (alive 2
 * right after the spawn, CI saw it in actor.core under ASan) before
 * ax__qs_sync. The busy run is released by a second thread after 200 ms,
 * so that the spawn is called while it lasts. */
static ax_err fail_init(ax_actor *self, void *state, const void *arg, size_t len) {
  (void)self, (void)state, (void)arg, (void)len;
  return AX_EINVAL;
}
static const ax_actor_spec fail_spec = {.name = "fails", .behaviour = victim, .init = fail_init};

static void *release_later(void *arg) {
  (void)arg;
  ax_test_sleep_ms(200);
  atomic_store(&busy_release, true);
  return NULL;
}

static void test_failed_spawn_from_a_thread_leaves_nothing_alive(void) {
  ax_system *sys = busy_system(1);
  CU_ASSERT_PTR_NOT_NULL_FATAL(sys);
  ax_pid f = AX_PID_NONE;
  pthread_t t;
  CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, release_later, NULL), 0);
  CU_ASSERT_EQUAL(ax_system_spawn(sys, &fail_spec, NULL, 0, &f), AX_EINVAL);
  ax_system_stats st;
  ax_system_stats_get(sys, &st);
  CU_ASSERT_EQUAL(st.actors_alive, 1); /* the busy one */
  pthread_join(t, NULL);
  ax_system_free(sys);
}

int main(void) {
  CU_pSuite s = ax_test_suite("actor.reclaim");
  CU_add_test(s, "senders_race_stops_and_slot_reuse", test_senders_race_stops_and_slot_reuse);
  CU_add_test(s, "a_stop_is_destroyed_after_a_long_run_elsewhere",
              test_a_stop_is_destroyed_after_a_long_run_elsewhere);
  CU_add_test(s, "failed_spawn_from_a_thread_leaves_nothing_alive",
              test_failed_spawn_from_a_thread_leaves_nothing_alive);
  CU_add_test(s, "two_workers_parking_at_once_keep_the_reclaim",
              test_two_workers_parking_at_once_keep_the_reclaim);
  return ax_test_run();
}
