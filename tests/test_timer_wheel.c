/* Axon tests: the hierarchical timing wheel (src/timer/wheel.c), driven by a
 * manual clock: placement, cascading at every level boundary, cancel, the
 * next-deadline bound, ordering, and large seeded random runs. */
#include <stdlib.h>
#include <string.h>

#include "support/testutil.h"
#include "timer/timer.h"

#define L1 ((uint64_t)64)
#define L2 (L1 * 64)
#define L3 (L2 * 64)
#define L4 (L3 * 64)
#define L5 (L4 * 64)
#define L6 (L5 * 64) /* 2^36: the end of the wheel's range */

/* splitmix64: a seeded PRNG so every run is replayable. */
static uint64_t rng_next(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15u);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
  return z ^ (z >> 31);
}

/* Uniform in [lo, hi]. */
static uint64_t rng_range(uint64_t *s, uint64_t lo, uint64_t hi) {
  return lo + rng_next(s) % (hi - lo + 1);
}

/* Advances w to now and copies the fired timers into fired[] (up to cap);
 * returns how many fired. Checks the list and the return value agree. */
static size_t fire(ax__wheel *w, uint64_t now, ax__wtimer **fired, size_t cap) {
  ax__wlist out = {NULL, NULL};
  size_t n = ax__wheel_advance(w, now, &out), seen = 0;
  for (ax__wtimer *t = out.head; t; t = t->next) {
    CU_ASSERT(t->state == AX__WTIMER_FIRED);
    CU_ASSERT(t->deadline <= now);
    if (seen < cap) fired[seen] = t;
    seen++;
  }
  CU_ASSERT_EQUAL(seen, n);
  return n;
}

/* The level-0 refinement the generic tests below run with: 0, then
 * AX__WHEEL_FINE_MAX (the timer service's wheels: quarter-ms ticks, upper
 * levels in ms) by the test_timer_fine_* variants. */
static unsigned g_fine;

static void winit(ax__wheel *w, uint64_t now) { ax__wheel_init_fine(w, now, g_fine); }

static void with_fine(void (*test)(void)) {
  g_fine = AX__WHEEL_FINE_MAX;
  test();
  g_fine = 0;
}

static void test_timer_placement_by_level(void) {
  static const struct {
    uint64_t now, deadline;
    unsigned level, slot;
  } cases[] = {
      {0, 1, 0, 1},           {0, 63, 0, 63},         {0, 64, 1, 1},
      {0, 4095, 1, 63},       {0, L2, 2, 1},          {0, L3 - 1, 2, 63},
      {0, L3, 3, 1},          {0, L4 - 1, 3, 63},     {0, L4, 4, 1},
      {0, L5 - 1, 4, 63},     {0, L5, 5, 1},          {0, L6 - 1, 5, 63},
      {0, L6, 6, 0},          {0, 0, 0, 0},           {1000, 1001, 0, 105},
      {1000, 1023, 0, 127},   {1000, 1024, 1, 16},    {1000, 999, 0, 104},
      {1000, 1000, 0, 104},   {L6 + 5, L6 + 70, 1, 1}, {L6 + 5, 2 * L6, 6, 0},
      {L6 - 1, L6, 6, 0},     {L5 + 3, L5 + 9, 0, 9}, {L5 + 3, L5 + L4, 4, 1},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    ax__wheel w;
    ax__wtimer t = {0};
    ax__wheel_init(&w, cases[i].now);
    ax__wheel_insert(&w, &t, cases[i].deadline);
    CU_ASSERT_EQUAL(t.level, cases[i].level);
    CU_ASSERT_EQUAL(t.slot, cases[i].slot);
    CU_ASSERT(ax__wheel_pending(&t));
    CU_ASSERT_EQUAL(ax__wheel_count(&w), 1);
    if (cases[i].level == 0) { /* the ring: slot deadline & 127, or now & 127 if due */
      CU_ASSERT_EQUAL(w.ring_occ[cases[i].slot >> 6], (uint64_t)1 << (cases[i].slot & 63));
    } else if (cases[i].level < AX__WHEEL_LEVELS) {
      CU_ASSERT_EQUAL(w.occupied[cases[i].level], (uint64_t)1 << cases[i].slot);
    }
    ax__wheel_fini(&w);
  }
}

/* Around C = k * 64^level: timers at C-1, C, C+1 each fire exactly when the
 * clock reaches them, whether the clock jumps or steps 1 ms at a time. */
static void check_boundary(uint64_t base, uint64_t span, bool step) {
  uint64_t c = (base / span + 1) * span;
  ax__wheel w;
  ax__wtimer t[3] = {{0}};
  ax__wtimer *fired[4];
  winit(&w, base);
  for (int i = 0; i < 3; i++) ax__wheel_insert(&w, &t[i], c - 1 + (uint64_t)i);
  CU_ASSERT(t[0].level < t[1].level); /* c - 1 and c straddle the boundary */
  CU_ASSERT_EQUAL(fire(&w, c - 3, fired, 4), 0);
  if (step) CU_ASSERT_EQUAL(fire(&w, c - 2, fired, 4), 0);
  CU_ASSERT(ax__wheel_next_deadline(&w) <= c - 1);
  for (int i = 0; i < 3; i++) {
    CU_ASSERT_EQUAL(fire(&w, c - 2 + (uint64_t)i, fired, 4), 0);
    CU_ASSERT(ax__wheel_pending(&t[i]));
    CU_ASSERT_EQUAL_FATAL(fire(&w, c - 1 + (uint64_t)i, fired, 4), 1);
    CU_ASSERT_PTR_EQUAL(fired[0], &t[i]);
    CU_ASSERT(!ax__wheel_pending(&t[i]));
  }
  CU_ASSERT_EQUAL(ax__wheel_count(&w), 0);
  CU_ASSERT_EQUAL(ax__wheel_next_deadline(&w), UINT64_MAX);
  ax__wheel_fini(&w);
}

static void test_timer_cascades_at_every_level_boundary(void) {
  uint64_t spans[] = {L1 << g_fine, L2 << g_fine, L3 << g_fine, L4 << g_fine, L5 << g_fine, L6 << g_fine};
  static const uint64_t bases[] = {0, 7, 12345, L5 + 77, 3 * L6 + 1};
  for (size_t s = 0; s < 6; s++) {
    for (size_t b = 0; b < sizeof bases / sizeof bases[0]; b++) {
      check_boundary(bases[b] << g_fine, spans[s], false);
      check_boundary(bases[b] << g_fine, spans[s], true);
    }
  }
  /* From 0, the pairs 63/64 ... 64^6-1/64^6 straddle levels 0..5 and the
   * overflow list; both fire on time after every cascade. */
  ax__wheel w;
  winit(&w, 0);
  ax__wtimer t[12] = {{0}};
  for (int k = 1; k <= 6; k++) {
    uint64_t span = spans[k - 1];
    ax__wheel_insert(&w, &t[2 * k - 2], span - 1);
    ax__wheel_insert(&w, &t[2 * k - 1], span);
    CU_ASSERT_EQUAL(t[2 * k - 2].level, k - 1);
    CU_ASSERT_EQUAL(t[2 * k - 1].level, k);
  }
  ax__wtimer *fired[2];
  uint64_t now = 0;
  for (int i = 0; i < 12; i++) {
    uint64_t d = t[i].deadline;
    CU_ASSERT_EQUAL(fire(&w, d - 1, fired, 2), 0);
    CU_ASSERT_EQUAL_FATAL(fire(&w, d, fired, 2), 1);
    CU_ASSERT_PTR_EQUAL(fired[0], &t[i]);
    now = d;
  }
  CU_ASSERT_EQUAL(now, L6 << g_fine);
  ax__wheel_fini(&w);
}

static void test_timer_cancel_from_each_level(void) {
  static const uint64_t ds[] = {10, 100, 5000, 300000, 20000000,
                                1500000000, L6 + 5};
  enum { N = sizeof ds / sizeof ds[0] };
  ax__wheel w;
  ax__wtimer keep[N], gone[N], overdue = {0}, cascaded = {0};
  ax__wheel_init(&w, 0);
  for (int i = 0; i < N; i++) {
    ax__wtimer_init(&keep[i]);
    ax__wtimer_init(&gone[i]);
    ax__wheel_insert(&w, &gone[i], ds[i]);
    ax__wheel_insert(&w, &keep[i], ds[i]);
    CU_ASSERT_EQUAL(gone[i].level, i);
  }
  ax__wheel_insert(&w, &cascaded, 5001);
  ax__wheel_insert(&w, &overdue, 0);
  CU_ASSERT_EQUAL(ax__wheel_count(&w), 2 * N + 2);
  for (int i = 0; i < N; i++) {
    ax__wheel_cancel(&w, &gone[i]);
    CU_ASSERT(!ax__wheel_pending(&gone[i]));
    ax__wheel_cancel(&w, &gone[i]); /* twice: no-op */
  }
  ax__wheel_cancel(&w, &overdue);
  CU_ASSERT_EQUAL(ax__wheel_count(&w), N + 1);
  ax__wtimer *fired[16];
  /* Cancel after the timer has been cascaded down from level 2. */
  CU_ASSERT_EQUAL(fire(&w, L2, fired, 16), 2); /* keep[0], keep[1] */
  CU_ASSERT(cascaded.level < 2);
  ax__wheel_cancel(&w, &cascaded);
  CU_ASSERT_EQUAL(fire(&w, 2 * L6, fired, 16), N - 2);
  for (int i = 2; i < N; i++) CU_ASSERT_PTR_EQUAL(fired[i - 2], &keep[i]);
  /* Cancelling a fired timer is a no-op and leaves the wheel alone. */
  ax__wheel_cancel(&w, &keep[0]);
  CU_ASSERT_EQUAL(keep[0].state, AX__WTIMER_FIRED);
  CU_ASSERT_EQUAL(ax__wheel_count(&w), 0);
  CU_ASSERT_EQUAL(ax__wheel_next_deadline(&w), UINT64_MAX);
  ax__wheel_fini(&w);
}

/* Reactor-style loop: advance to next_deadline until t fires; checks the
 * bound is never late and the loop converges in a handful of wake-ups. */
static void check_reactor_loop(ax__wheel *w, ax__wtimer *t) {
  ax__wtimer *fired[1];
  int wakeups = 0;
  while (ax__wheel_pending(t) && wakeups < 10) {
    uint64_t nd = ax__wheel_next_deadline(w);
    CU_ASSERT(nd <= t->deadline);
    CU_ASSERT(nd >= ax__wheel_elapsed(w) || nd == t->deadline);
    size_t n = fire(w, nd, fired, 1);
    CU_ASSERT(n == 0 || nd == t->deadline);
    wakeups++;
  }
  CU_ASSERT(!ax__wheel_pending(t));
  CU_ASSERT(wakeups <= AX__WHEEL_LEVELS + 2);
}

static void test_timer_next_deadline_is_a_safe_bound(void) {
  ax__wheel w;
  ax__wtimer a = {0}, b = {0}, c = {0};
  ax__wheel_init(&w, 0);
  CU_ASSERT_EQUAL(ax__wheel_next_deadline(&w), UINT64_MAX);
  ax__wheel_insert(&w, &a, 30);
  CU_ASSERT_EQUAL(ax__wheel_next_deadline(&w), 30); /* level 0: exact */
  ax__wheel_insert(&w, &b, 10);
  CU_ASSERT_EQUAL(ax__wheel_next_deadline(&w), 10);
  ax__wheel_cancel(&w, &b);
  CU_ASSERT_EQUAL(ax__wheel_next_deadline(&w), 30);
  ax__wheel_cancel(&w, &a);
  CU_ASSERT_EQUAL(ax__wheel_next_deadline(&w), UINT64_MAX);
  /* Higher levels give the slot start: a bound, converging on advance. */
  ax__wheel_insert(&w, &a, 5000);
  CU_ASSERT_EQUAL(ax__wheel_next_deadline(&w), L2);
  check_reactor_loop(&w, &a);
  ax__wheel_insert(&w, &a, ax__wheel_elapsed(&w) + L6 + 12345); /* overflow */
  CU_ASSERT(ax__wheel_next_deadline(&w) <= a.deadline);
  check_reactor_loop(&w, &a);
  /* Overdue timers: the bound is at or before their deadlines. */
  uint64_t now = ax__wheel_elapsed(&w);
  ax__wheel_insert(&w, &b, now - 40);
  ax__wheel_insert(&w, &c, now - 50);
  CU_ASSERT(ax__wheel_next_deadline(&w) <= now - 50);
  ax__wheel_insert(&w, &a, now + 1);
  CU_ASSERT(ax__wheel_next_deadline(&w) <= now - 50);
  ax__wtimer *fired[3];
  CU_ASSERT_EQUAL(fire(&w, now, fired, 3), 2);
  CU_ASSERT_EQUAL(ax__wheel_next_deadline(&w), now + 1);
  /* Property: over random deadlines the bound never passes the minimum. */
  uint64_t seed = 42, min = UINT64_MAX;
  ax__wtimer many[64];
  ax__wheel_fini(&w);
  ax__wheel_init(&w, 1000);
  for (int i = 0; i < 64; i++) {
    ax__wtimer_init(&many[i]);
    uint64_t d = 1000 + (rng_next(&seed) >> (1 + rng_next(&seed) % 63));
    ax__wheel_insert(&w, &many[i], d);
    if (d < min) min = d;
    CU_ASSERT(ax__wheel_next_deadline(&w) <= min);
  }
  ax__wheel_fini(&w);
}

static void test_timer_never_fires_early(void) {
  uint64_t seed = 7;
  ax__wtimer *fired[1];
  for (int i = 0; i < 3000; i++) {
    ax__wheel w;
    ax__wtimer t = {0};
    uint64_t base = rng_next(&seed) >> 20;
    /* Log-uniform distances so every level is exercised. */
    uint64_t dist = 1 + (rng_next(&seed) >> (64 - 1 - rng_next(&seed) % (38 + g_fine)));
    winit(&w, base);
    ax__wheel_insert(&w, &t, base + dist);
    uint64_t now = base;
    while (now + 1 < t.deadline) { /* random jumps up to deadline - 1 */
      now += 1 + rng_next(&seed) % (t.deadline - 1 - now);
      CU_ASSERT_EQUAL(fire(&w, now, fired, 1), 0);
      CU_ASSERT(ax__wheel_next_deadline(&w) <= t.deadline);
    }
    CU_ASSERT(ax__wheel_pending(&t));
    CU_ASSERT_EQUAL(fire(&w, t.deadline, fired, 1), 1);
    ax__wheel_fini(&w);
  }
}

static void test_timer_same_deadline_fires_in_insertion_order(void) {
  ax__wheel w;
  ax__wtimer t[8];
  ax__wtimer *fired[8];
  for (int i = 0; i < 8; i++) ax__wtimer_init(&t[i]);
  ax__wheel_init(&w, 0);
  ax__wheel_insert(&w, &t[0], 5000); /* level 2 */
  CU_ASSERT_EQUAL(fire(&w, L2, fired, 8), 0);
  CU_ASSERT_EQUAL(t[0].level, 1);     /* cascaded */
  ax__wheel_insert(&w, &t[1], 5000); /* level 1, inserted later */
  CU_ASSERT_EQUAL(fire(&w, 4995, fired, 8), 0);
  CU_ASSERT_EQUAL(t[0].level, 0);     /* cascaded again, with t[1] */
  CU_ASSERT_EQUAL(t[1].level, 0);
  ax__wheel_insert(&w, &t[2], 5000); /* level 0 */
  ax__wheel_insert(&w, &t[3], 4999);
  CU_ASSERT_EQUAL_FATAL(fire(&w, 5000, fired, 8), 4);
  CU_ASSERT_PTR_EQUAL(fired[0], &t[3]);
  for (int i = 0; i < 3; i++) CU_ASSERT_PTR_EQUAL(fired[i + 1], &t[i]);
  /* Overdue timers come out by deadline, then insertion order. */
  ax__wheel_insert(&w, &t[4], 4500);
  ax__wheel_insert(&w, &t[5], 4400);
  ax__wheel_insert(&w, &t[6], 4500);
  ax__wheel_insert(&w, &t[7], 5001);
  CU_ASSERT_EQUAL_FATAL(fire(&w, 5001, fired, 8), 4);
  CU_ASSERT_PTR_EQUAL(fired[0], &t[5]);
  CU_ASSERT_PTR_EQUAL(fired[1], &t[4]);
  CU_ASSERT_PTR_EQUAL(fired[2], &t[6]);
  CU_ASSERT_PTR_EQUAL(fired[3], &t[7]);
  /* Across the overflow list: inserted beyond range first, then in range. */
  uint64_t d = 2 * L6 + 3;
  ax__wheel_insert(&w, &t[0], d);
  CU_ASSERT_EQUAL(t[0].level, AX__WHEEL_LEVELS);
  CU_ASSERT_EQUAL(fire(&w, d - L5, fired, 8), 0);
  ax__wheel_insert(&w, &t[1], d);
  CU_ASSERT_EQUAL(fire(&w, d - 1, fired, 8), 0);
  CU_ASSERT(t[0].level < AX__WHEEL_LEVELS && t[1].level < AX__WHEEL_LEVELS);
  ax__wheel_insert(&w, &t[2], d);
  CU_ASSERT_EQUAL_FATAL(fire(&w, d, fired, 8), 3);
  for (int i = 0; i < 3; i++) CU_ASSERT_PTR_EQUAL(fired[i], &t[i]);
  ax__wheel_fini(&w);
}

/* One huge batch: a million timers on one far deadline, inserted across
 * several cascades, come out in one advance, in insertion order. */
static void test_timer_million_same_deadline_in_one_batch(void) {
  enum { N = 1000000 };
  const uint64_t d = 3 * L3 + 2 * L2 + 5 * L1 + 17;
  /* Clock positions from which the deadline sits at level 3, 2, 1, 0. */
  const uint64_t clock[4] = {0, 3 * L3, 3 * L3 + 2 * L2, d - 17};
  ax__wtimer *ts = calloc(N, sizeof *ts);
  CU_ASSERT_FATAL(ts != NULL);
  ax__wheel w;
  ax__wheel_init(&w, 0);
  for (uint32_t i = 0; i < N; i++) {
    if (i % (N / 4) == 0) { /* later quarters are inserted lower */
      ax__wlist none = {NULL, NULL};
      CU_ASSERT_EQUAL(ax__wheel_advance(&w, clock[i / (N / 4)], &none), 0);
    }
    ax__wheel_insert(&w, &ts[i], d);
    if (i % (N / 4) == 0) CU_ASSERT_EQUAL(ts[i].level, 3 - i / (N / 4));
  }
  ax__wlist out = {NULL, NULL};
  CU_ASSERT_EQUAL(ax__wheel_advance(&w, d - 1, &out), 0);
  CU_ASSERT_EQUAL(ax__wheel_advance(&w, d, &out), N);
  size_t i = 0;
  bool ordered = true;
  for (ax__wtimer *t = out.head; t; t = t->next, i++) ordered &= t == &ts[i];
  CU_ASSERT(ordered);
  CU_ASSERT_EQUAL(i, N);
  CU_ASSERT_PTR_EQUAL(out.tail, &ts[N - 1]);
  free(ts);
  ax__wheel_fini(&w);
}

/* A random run's timers: the wheel entry plus the test's expectations. */
typedef struct rt {
  ax__wtimer t; /* first: fired entries cast back to rt */
  uint32_t fires;
  bool live; /* expected pending */
} rt;

/* Checks one advance of a random run: every fired timer was live, due in
 * (prev, now] (not early, not late), and the batch continues the global
 * (deadline, seq) order kept in *last. Returns how many fired. */
static size_t check_batch(ax__wheel *w, uint64_t prev, uint64_t now,
                          ax__wtimer *last) {
  ax__wlist out = {NULL, NULL};
  size_t n = ax__wheel_advance(w, now, &out), seen = 0;
  bool ok = true;
  for (ax__wtimer *t = out.head; t; t = t->next, seen++) {
    rt *r = (rt *)t;
    ok &= r->live && t->deadline > prev && t->deadline <= now;
    ok &= t->deadline > last->deadline ||
          (t->deadline == last->deadline && t->seq > last->seq);
    *last = *t;
    r->live = false;
    r->fires++;
  }
  CU_ASSERT(ok);
  CU_ASSERT_EQUAL(seen, n);
  return n;
}

static void test_timer_million_random_timers_fire_once_in_order(void) {
  enum { N = 1000000, HORIZON = 2000000 };
  rt *ts = calloc(N, sizeof *ts);
  uint32_t *due = calloc(HORIZON + 1, sizeof *due); /* timers per deadline */
  CU_ASSERT_FATAL(ts && due);
  uint64_t seed = 0xA1;
  ax__wheel w;
  winit(&w, 0);
  for (uint32_t i = 0; i < N; i++) {
    uint64_t d = rng_range(&seed, 1, HORIZON);
    ax__wheel_insert(&w, &ts[i].t, d);
    CU_ASSERT_EQUAL(ts[i].t.seq, i);
    ts[i].live = true;
    due[d]++;
  }
  CU_ASSERT_EQUAL(ax__wheel_count(&w), N);
  ax__wtimer last = {0};
  uint64_t now = 0, expected = 0, total = 0;
  bool bound_ok = true;
  while (now < HORIZON) {
    uint64_t next = now + rng_range(&seed, 1, 4000);
    if (next > HORIZON) next = HORIZON;
    for (uint64_t d = now + 1; d <= next; d++) expected += due[d];
    bound_ok &= ax__wheel_next_deadline(&w) > now;
    total += check_batch(&w, now, next, &last);
    CU_ASSERT_EQUAL(total, expected); /* none late, none early */
    now = next;
  }
  CU_ASSERT(bound_ok);
  CU_ASSERT_EQUAL(total, N);
  CU_ASSERT_EQUAL(ax__wheel_count(&w), 0);
  bool once = true;
  for (uint32_t i = 0; i < N; i++) once &= ts[i].fires == 1;
  CU_ASSERT(once);
  free(ts);
  free(due);
  ax__wheel_fini(&w);
}

/* Random cancels and re-arms between random advances. */
static void random_churn(ax__wheel *w, rt *ts, size_t n, uint64_t now,
                         uint64_t *seed, size_t *live) {
  for (int k = 0; k < 300; k++) {
    rt *r = &ts[rng_next(seed) % n];
    if (rng_next(seed) & 1) {
      if (r->live) (*live)--;
      ax__wheel_cancel(w, &r->t);
      r->live = false;
    } else {
      if (!r->live) (*live)++;
      uint64_t dist = 1 + (rng_next(seed) >> (64 - 1 - rng_next(seed) % 23));
      ax__wheel_insert(w, &r->t, now + dist);
      r->live = true;
    }
  }
}

/* The end of a churning run: nothing left live, every fire counted in a
 * batch, and most timers fired. */
static void check_churn_end(const rt *ts, size_t n, size_t fired) {
  size_t still_live = 0, fired_flags = 0;
  for (size_t i = 0; i < n; i++) {
    still_live += ts[i].live;
    fired_flags += ts[i].fires;
  }
  CU_ASSERT_EQUAL(still_live, 0);
  CU_ASSERT_EQUAL(fired_flags, fired); /* no timer fired outside a batch */
  CU_ASSERT(fired > n / 2);
}

static void test_timer_random_cancels_interleaved(void) {
  enum { N = 200000, HORIZON = 2000000 };
  rt *ts = calloc(N, sizeof *ts);
  CU_ASSERT_FATAL(ts != NULL);
  uint64_t seed = 0xC0FFEE;
  size_t live = N, fired = 0;
  ax__wheel w;
  winit(&w, 0);
  for (uint32_t i = 0; i < N; i++) {
    ax__wheel_insert(&w, &ts[i].t, rng_range(&seed, 1, HORIZON));
    ts[i].live = true;
  }
  ax__wtimer last = {0};
  uint64_t now = 0;
  while (ax__wheel_count(&w) > 0) {
    if (now < HORIZON) random_churn(&w, ts, N, now, &seed, &live);
    CU_ASSERT_EQUAL(ax__wheel_count(&w), live);
    uint64_t next = now + rng_range(&seed, 1, 6000);
    size_t n = check_batch(&w, now, next, &last);
    fired += n;
    live -= n;
    now = next;
  }
  check_churn_end(ts, N, fired);
  free(ts);
  ax__wheel_fini(&w);
}

/* As above, with the cascades done a random part at a time ahead of the
 * advances (ax__wheel_prepare with random budgets), short steps so that
 * inserts and cancels land in a cascade under way, and now and then a
 * jump: still every timer fires once, on time, in order. */
static void test_timer_random_with_prepare(void) {
  enum { N = 100000, HORIZON = 3000000 };
  rt *ts = calloc(N, sizeof *ts);
  CU_ASSERT_FATAL(ts != NULL);
  uint64_t seed = 0xBEEF;
  size_t live = N, fired = 0, prepared = 0;
  ax__wheel w;
  winit(&w, 5);
  for (uint32_t i = 0; i < N; i++) {
    ax__wheel_insert(&w, &ts[i].t, 5 + rng_range(&seed, 1, i % 2 ? 200 : HORIZON));
    ts[i].live = true;
  }
  ax__wtimer last = {0};
  uint64_t now = 5;
  bool bound_ok = true;
  for (int step = 0; ax__wheel_count(&w) > 0; step++) {
    if (now < HORIZON && step % 4 == 0) random_churn(&w, ts, N, now, &seed, &live);
    for (int k = (int)(rng_next(&seed) % 4); k > 0; k--)
      prepared += ax__wheel_prepare(&w, (size_t)rng_range(&seed, 1, 3000));
    CU_ASSERT_EQUAL(ax__wheel_count(&w), live);
    bound_ok &= ax__wheel_next_deadline(&w) > now;
    if (step % 64 == 0) { /* a lower bound of every pending deadline: a pass is never missed */
      uint64_t min = UINT64_MAX;
      for (uint32_t i = 0; i < N; i++)
        if (ts[i].live && ts[i].t.deadline < min) min = ts[i].t.deadline;
      bound_ok &= ax__wheel_next_deadline(&w) <= min;
    }
    uint64_t next = now + (step % 50 == 49 ? rng_range(&seed, 1, 20000) : rng_range(&seed, 1, 40));
    size_t n = check_batch(&w, now, next, &last);
    fired += n;
    live -= n;
    now = next;
  }
  CU_ASSERT(bound_ok);
  CU_ASSERT(prepared > N / 2); /* most cascading was done ahead */
  check_churn_end(ts, N, fired);
  free(ts);
  ax__wheel_fini(&w);
}

static void test_timer_overdue_and_rearm(void) {
  ax__wheel w;
  ax__wtimer a = {0}, b = {0};
  ax__wtimer *fired[2];
  ax__wheel_init(&w, 100);
  ax__wheel_insert(&w, &a, 50); /* already due */
  CU_ASSERT_EQUAL(fire(&w, 99, fired, 2), 1); /* time never runs back */
  CU_ASSERT_EQUAL(ax__wheel_elapsed(&w), 100);
  ax__wheel_insert(&w, &a, 200);
  uint64_t seq = a.seq;
  ax__wheel_insert(&w, &a, 300000); /* re-arm moves it */
  CU_ASSERT(a.seq > seq);
  CU_ASSERT_EQUAL(ax__wheel_count(&w), 1);
  ax__wheel_insert(&w, &b, 250);
  CU_ASSERT_EQUAL_FATAL(fire(&w, 1000, fired, 2), 1);
  CU_ASSERT_PTR_EQUAL(fired[0], &b);
  CU_ASSERT_EQUAL(fire(&w, 299999, fired, 2), 0);
  CU_ASSERT_EQUAL(fire(&w, 300000, fired, 2), 1);
  CU_ASSERT_EQUAL(ax__wheel_count(&w), 0);
  ax__wheel_fini(&w);
}

/* A block's timers (64k, as `axon_bench timers` has with 1000 timers per
 * ms) are cascaded down while the clock is still in the block before, a
 * bounded amount per ax__wheel_prepare call, so the advance that reaches
 * them only hands them out: no cascade of the whole slot then, while they
 * are due (it held the timer service for 1.5-8 ms every 64 ms). */
static void test_timer_prepare_cascades_before_the_block_is_due(void) {
  enum { N = 65536, BUDGET = 2048 };
  ax__wtimer *ts = calloc(N, sizeof *ts);
  CU_ASSERT_FATAL(ts != NULL);
  uint64_t B = L1 << g_fine; /* a block */
  ax__wheel w;
  winit(&w, 0);
  for (uint32_t i = 0; i < N; i++) ax__wheel_insert(&w, &ts[i], 2 * B + i % B); /* block 2 */
  CU_ASSERT_EQUAL(ts[0].level, 1);
  ax__wlist out = {NULL, NULL};
  CU_ASSERT_EQUAL(ax__wheel_advance(&w, B, &out), 0); /* block 1: block 2 is next */
  size_t moved = 0, most = 0;
  for (uint64_t now = B; now < 2 * B; now++) {
    CU_ASSERT_EQUAL(ax__wheel_advance(&w, now, &out), 0);
    size_t m = ax__wheel_prepare(&w, BUDGET);
    moved += m;
    if (m > most) most = m;
    CU_ASSERT(ax__wheel_next_deadline(&w) >= 2 * B); /* nothing is due early */
  }
  CU_ASSERT_EQUAL(moved, N);       /* all of it ahead of time */
  CU_ASSERT(most <= 2 * BUDGET);   /* a bounded amount per call */
  uint64_t before = w.cascaded;
  uint64_t now = 2 * B, total = 0;
  bool ordered = true;
  for (; now < 3 * B; now++) {
    ax__wlist batch = {NULL, NULL};
    size_t n = ax__wheel_advance(&w, now, &batch);
    for (ax__wtimer *t = batch.head; t; t = t->next) ordered &= t->deadline == now;
    CU_ASSERT_EQUAL(n, N / B);
    total += n;
  }
  CU_ASSERT_EQUAL(w.cascaded, before); /* nothing left to cascade when due */
  CU_ASSERT(ordered);
  CU_ASSERT_EQUAL(total, N);
  CU_ASSERT_EQUAL(ax__wheel_count(&w), 0);
  free(ts);
  ax__wheel_fini(&w);
}

/* Fine 2 (the timer service's wheels): level 0 has 256 quarter-ms slots
 * per block and the upper levels keep 1 ms wheels' spans, so a 1000 ms
 * timer (4000 ticks) sits on level 1 as it did, not on level 2. */
static void test_timer_fine_ring_keeps_upper_levels(void) {
  static const struct {
    uint64_t now, deadline;
    unsigned level, slot;
  } cases[] = {
      {0, 1, 0, 1},       {0, 255, 0, 255},   {0, 256, 1, 1},    {0, 4000, 1, 15},
      {0, 4 * L2 - 1, 1, 63}, {0, 4 * L2, 2, 1}, {0, 4 * L6 - 1, 5, 63}, {0, 4 * L6, 6, 0},
      {1000, 1001, 0, 489}, {1000, 1023, 0, 511}, {1000, 1024, 1, 4}, {1000, 999, 0, 488},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    ax__wheel w;
    ax__wtimer t = {0};
    ax__wheel_init_fine(&w, cases[i].now, 2);
    ax__wheel_insert(&w, &t, cases[i].deadline);
    CU_ASSERT_EQUAL(t.level, cases[i].level);
    CU_ASSERT_EQUAL(t.slot, cases[i].slot);
    ax__wtimer *fired[1];
    CU_ASSERT_EQUAL(fire(&w, cases[i].deadline > cases[i].now ? cases[i].deadline - 1 : cases[i].now - 1, fired, 1),
                    cases[i].deadline < cases[i].now ? 1 : 0); /* an overdue one fires at once */
    if (cases[i].deadline >= cases[i].now) CU_ASSERT_EQUAL(fire(&w, cases[i].deadline, fired, 1), 1);
    CU_ASSERT_EQUAL(ax__wheel_count(&w), 0);
    ax__wheel_fini(&w);
  }
}

static void test_timer_fine_cascades_at_every_level_boundary(void) {
  with_fine(test_timer_cascades_at_every_level_boundary);
}
static void test_timer_fine_never_fires_early(void) { with_fine(test_timer_never_fires_early); }
static void test_timer_fine_million_random_timers_fire_once_in_order(void) {
  with_fine(test_timer_million_random_timers_fire_once_in_order);
}
static void test_timer_fine_random_cancels_interleaved(void) { with_fine(test_timer_random_cancels_interleaved); }
static void test_timer_fine_random_with_prepare(void) { with_fine(test_timer_random_with_prepare); }
static void test_timer_fine_prepare_cascades_before_the_block_is_due(void) {
  with_fine(test_timer_prepare_cascades_before_the_block_is_due);
}

int main(void) {
  CU_pSuite s = ax_test_suite("timer.wheel");
  CU_ADD_TEST(s, test_timer_placement_by_level);
  CU_ADD_TEST(s, test_timer_cascades_at_every_level_boundary);
  CU_ADD_TEST(s, test_timer_cancel_from_each_level);
  CU_ADD_TEST(s, test_timer_next_deadline_is_a_safe_bound);
  CU_ADD_TEST(s, test_timer_never_fires_early);
  CU_ADD_TEST(s, test_timer_same_deadline_fires_in_insertion_order);
  CU_ADD_TEST(s, test_timer_million_random_timers_fire_once_in_order);
  CU_ADD_TEST(s, test_timer_million_same_deadline_in_one_batch);
  CU_ADD_TEST(s, test_timer_random_cancels_interleaved);
  CU_ADD_TEST(s, test_timer_overdue_and_rearm);
  CU_ADD_TEST(s, test_timer_prepare_cascades_before_the_block_is_due);
  CU_ADD_TEST(s, test_timer_random_with_prepare);
  CU_ADD_TEST(s, test_timer_fine_ring_keeps_upper_levels);
  CU_ADD_TEST(s, test_timer_fine_cascades_at_every_level_boundary);
  CU_ADD_TEST(s, test_timer_fine_never_fires_early);
  CU_ADD_TEST(s, test_timer_fine_million_random_timers_fire_once_in_order);
  CU_ADD_TEST(s, test_timer_fine_random_cancels_interleaved);
  CU_ADD_TEST(s, test_timer_fine_random_with_prepare);
  CU_ADD_TEST(s, test_timer_fine_prepare_cascades_before_the_block_is_due);
  return ax_test_run();
}
