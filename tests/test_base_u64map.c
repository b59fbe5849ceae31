/* Axon tests: the owner-only u64 map (src/base/u64map.c): put/get/del
 * against a reference array under seeded random operations (probe runs
 * that wrap around the table's end, deletes in the middle of runs), a
 * walk over the cells, and the footprint of a map that keeps churning
 * (deletes must not make it grow: an actor with 10k pending timers sets
 * and fires them for as long as it lives). */
#include <stdlib.h>
#include <string.h>

#include "base/u64map.h"
#include "support/testutil.h"

static uint64_t rng_next(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15u);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
  return z ^ (z >> 31);
}

/* Keys 2..KEYS+1; ref[k] is key k's value, 0 when absent. */
enum { KEYS = 3000, OPS = 400000 };

static void check_all(const ax__u64map *m, const uint64_t *ref) {
  uint32_t live = 0, walked = 0;
  for (uint64_t k = 2; k < KEYS + 2; k++) {
    uint64_t v = 0;
    bool found = ax__u64map_get(m, k, &v);
    CU_ASSERT_EQUAL(found, ref[k] != 0);
    if (found) CU_ASSERT_EQUAL(v, ref[k]);
    live += ref[k] != 0;
  }
  CU_ASSERT_EQUAL(m->count, live);
  for (uint32_t i = 0; i < m->cap; i++) {
    if (!ax__u64map_live(m, i)) continue;
    walked++;
    uint64_t k = ax__u64map_key(m, i);
    CU_ASSERT_FATAL(k >= 2 && k < KEYS + 2);
    CU_ASSERT_EQUAL(ax__u64map_val(m, i), ref[k]);
  }
  CU_ASSERT_EQUAL(walked, live);
}

static void test_base_u64map_matches_reference_under_random_ops(void) {
  static uint64_t ref[KEYS + 2];
  memset(ref, 0, sizeof(ref));
  ax__u64map m = {0};
  uint64_t seed = 16;
  for (uint32_t op = 0; op < OPS; op++) {
    uint64_t r = rng_next(&seed), k = 2 + r % KEYS, v = 0;
    switch ((r >> 32) % 3) {
    case 0:
    case 1: /* put (new or replace) */
      CU_ASSERT_TRUE_FATAL(ax__u64map_put(&m, k, (r >> 8) | 1));
      ref[k] = (r >> 8) | 1;
      break;
    default: /* del */
      CU_ASSERT_EQUAL_FATAL(ax__u64map_del(&m, k, &v), ref[k] != 0);
      if (ref[k]) CU_ASSERT_EQUAL(v, ref[k]);
      ref[k] = 0;
    }
    if (op % 50000 == 0) check_all(&m, ref);
  }
  check_all(&m, ref);
  for (uint64_t k = 2; k < KEYS + 2; k++)
    if (ref[k]) CU_ASSERT_TRUE(ax__u64map_del(&m, k, NULL));
  CU_ASSERT_EQUAL(m.count, 0);
  ax__u64map_free(&m);
}

/* Keys chosen to share a home cell and to wrap around the end: deleting
 * from the front, the middle and the end of such a run keeps the others. */
static void test_base_u64map_delete_inside_wrapping_runs(void) {
  ax__u64map m = {0};
  CU_ASSERT_TRUE_FATAL(ax__u64map_put(&m, 2, 2)); /* 8 cells */
  uint32_t cap = m.cap;
  uint64_t keys[5];
  uint32_t n = 0;
  /* Five more keys homed in the last cell (the map's hash, u64map.c). */
  for (uint64_t k = 3; n < 5; k++)
    if ((uint32_t)((k * 0x9E3779B97F4A7C15ull) >> 32) % cap == cap - 1) keys[n++] = k;
  for (uint32_t i = 0; i < 5; i++) CU_ASSERT_TRUE_FATAL(ax__u64map_put(&m, keys[i], keys[i]));
  CU_ASSERT_EQUAL_FATAL(m.cap, cap); /* 6 of 8: no growth, so the run wraps */
  uint32_t order[5] = {2, 0, 4, 1, 3};
  for (uint32_t d = 0; d < 5; d++) {
    CU_ASSERT_TRUE(ax__u64map_del(&m, keys[order[d]], NULL));
    for (uint32_t i = 0; i < 5; i++) {
      bool gone = false;
      for (uint32_t e = 0; e <= d; e++) gone |= i == order[e];
      uint64_t v = 0;
      CU_ASSERT_EQUAL(ax__u64map_get(&m, keys[i], &v), !gone);
      if (!gone) CU_ASSERT_EQUAL(v, keys[i]);
    }
    CU_ASSERT_TRUE(ax__u64map_get(&m, 2, NULL));
  }
  ax__u64map_free(&m);
}

/* 10k live keys, then a million rounds of put-new/delete-oldest: the table
 * stays at the smallest power of two that holds 10k keys at <= 3/4 load. */
static void test_base_u64map_churn_keeps_the_table_small(void) {
  enum { LIVE = 10000, ROUNDS = 1000000 };
  ax__u64map m = {0};
  for (uint64_t k = 0; k < LIVE; k++) CU_ASSERT_TRUE_FATAL(ax__u64map_put(&m, 2 + 2 * k, k));
  for (uint64_t k = LIVE; k < LIVE + ROUNDS; k++) {
    CU_ASSERT_TRUE_FATAL(ax__u64map_put(&m, 2 + 2 * k, k));
    uint64_t v;
    CU_ASSERT_TRUE_FATAL(ax__u64map_del(&m, 2 + 2 * (k - LIVE), &v));
    CU_ASSERT_EQUAL_FATAL(v, k - LIVE);
  }
  CU_ASSERT_EQUAL(m.count, LIVE);
  CU_ASSERT_EQUAL(m.cap, 16384);
  ax__u64map_free(&m);
}

int main(void) {
  CU_pSuite s = ax_test_suite("base.u64map");
  CU_ADD_TEST(s, test_base_u64map_matches_reference_under_random_ops);
  CU_ADD_TEST(s, test_base_u64map_delete_inside_wrapping_runs);
  CU_ADD_TEST(s, test_base_u64map_churn_keeps_the_table_small);
  return ax_test_run();
}
