/* Tests for the two-lane mailbox's MPSC lane (mailbox/mailbox.h): FIFO,
 * the idle bit that elects exactly one waker, and multi-producer stress. */
#include <pthread.h>
#include <stdlib.h>

#include "mailbox/mailbox.h"
#include "support/testutil.h"

typedef struct lane {
  _Atomic uintptr_t head;
  ax__mlink *tail;
  ax__mlink stub;
} lane;

static ax__mnode *node(uint32_t producer, uint32_t seq) {
  ax__mnode *n = ax__msg_alloc(0);
  CU_ASSERT_PTR_NOT_NULL_FATAL(n);
  n->msg.type = producer;
  n->msg.ref = seq;
  return n;
}

static ax__mnode *pop(lane *l) {
  ax__mlink *old;
  ax__mlink *x = ax__lane_pop(&l->tail, &old);
  if (x && old != &l->stub) ax__msg_free(ax__mnode_of(old));
  return x ? ax__mnode_of(x) : NULL;
}

static void drain_free(lane *l) {
  while (pop(l)) {
  }
  if (l->tail != &l->stub) ax__msg_free(ax__mnode_of(l->tail));
}

static void test_mailbox_single_thread_fifo(void) {
  lane l;
  ax__lane_init(&l.head, &l.tail, &l.stub, false);
  for (uint32_t i = 0; i < 1000; i++) ax__lane_push(&l.head, &node(0, i)->link);
  for (uint32_t i = 0; i < 1000; i++) {
    ax__mnode *n = pop(&l);
    CU_ASSERT_PTR_NOT_NULL_FATAL(n);
    CU_ASSERT_EQUAL(n->msg.ref, i);
  }
  CU_ASSERT_PTR_NULL(pop(&l));
  CU_ASSERT_TRUE(ax__lane_empty(&l.head, l.tail));
  drain_free(&l);
}

static void test_mailbox_push_on_idle_elects_one_waker(void) {
  lane l;
  ax__lane_init(&l.head, &l.tail, &l.stub, true);
  CU_ASSERT_TRUE(ax__lane_push(&l.head, &node(0, 0)->link));  /* was idle */
  CU_ASSERT_FALSE(ax__lane_push(&l.head, &node(0, 1)->link)); /* already woken */
  CU_ASSERT_FALSE(ax__lane_mark_idle(&l.head, l.tail));        /* not empty: refused */
  CU_ASSERT_PTR_NOT_NULL(pop(&l));
  CU_ASSERT_PTR_NOT_NULL(pop(&l));
  CU_ASSERT_TRUE(ax__lane_mark_idle(&l.head, l.tail));
  CU_ASSERT_TRUE(ax__lane_push(&l.head, &node(0, 2)->link)); /* idle again: wakes */
  CU_ASSERT_PTR_NOT_NULL(pop(&l));
  drain_free(&l);
}

static void test_mailbox_owned_lane_push_never_wakes(void) {
  lane l;
  ax__lane_init(&l.head, &l.tail, &l.stub, false);
  CU_ASSERT_FALSE(ax__lane_push(&l.head, &node(0, 0)->link));
  drain_free(&l);
}

enum { PRODUCERS = 4, PER_PRODUCER = 200000 };

typedef struct mp_arg {
  lane *l;
  uint32_t id;
  _Atomic int *wakes;
} mp_arg;

static void *producer(void *p) {
  mp_arg *a = p;
  for (uint32_t i = 0; i < PER_PRODUCER; i++)
    if (ax__lane_push(&a->l->head, &node(a->id, i)->link)) atomic_fetch_add(a->wakes, 1);
  return NULL;
}

/* Several producers, one consumer that goes idle whenever it sees nothing:
 * per-producer order holds, nothing is lost or duplicated, and every idle
 * period ends with exactly one wake. */
static void test_mailbox_multi_producer_stress(void) {
  lane l;
  ax__lane_init(&l.head, &l.tail, &l.stub, true);
  _Atomic int wakes = 0;
  int idles = 0;
  pthread_t th[PRODUCERS];
  mp_arg args[PRODUCERS];
  for (uint32_t i = 0; i < PRODUCERS; i++) {
    args[i] = (mp_arg){&l, i, &wakes};
    pthread_create(&th[i], NULL, producer, &args[i]);
  }
  uint32_t next[PRODUCERS] = {0};
  uint64_t got = 0;
  bool ordered = true;
  while (got < (uint64_t)PRODUCERS * PER_PRODUCER) {
    ax__mnode *n = pop(&l);
    if (!n) {
      if (ax__lane_mark_idle(&l.head, l.tail)) idles++;
      continue;
    }
    if (n->msg.ref != next[n->msg.type]) ordered = false;
    next[n->msg.type] = (uint32_t)n->msg.ref + 1;
    got++;
  }
  for (int i = 0; i < PRODUCERS; i++) pthread_join(th[i], NULL);
  CU_ASSERT_TRUE(ordered);
  CU_ASSERT_EQUAL(got, (uint64_t)PRODUCERS * PER_PRODUCER);
  for (int i = 0; i < PRODUCERS; i++) CU_ASSERT_EQUAL(next[i], PER_PRODUCER);
  CU_ASSERT_PTR_NULL(pop(&l));
  /* Every idle period was ended by exactly one waking push (plus the first
   * push on the initially idle lane). */
  CU_ASSERT_EQUAL(atomic_load(&wakes), idles + 1);
  drain_free(&l);
}

/* The node cache's depot (mailbox.c): nodes allocated on one thread and
 * freed on another (a producer's and its consumer's workers) come back to
 * the first through the depot, not the allocator, once the freeing thread
 * holds two full magazines; the last thread to flush its cache empties
 * the depot. */
#define DEPOT_MAG AX__NCACHE_MAG(0)
#define DEPOT_N (2 * DEPOT_MAG + 1)

static void *free_on_other_thread(void *arg) {
  ax__mnode **nodes = arg;
  ax__msg_cache_enable_always();
  for (uint32_t i = 0; i < DEPOT_N; i++) ax__msg_free(nodes[i]);
  ax__msg_cache_flush(); /* its list and spare magazine go to the allocator */
  return NULL;
}

static void test_mailbox_cache_depot(void) {
  ax__msg_cache_enable_always(); /* also under the sanitizers */
  static ax__mnode *nodes[DEPOT_N];
  for (uint32_t i = 0; i < DEPOT_N; i++) {
    nodes[i] = ax__msg_alloc(0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(nodes[i]);
  }
  CU_ASSERT_EQUAL(ax__ncache_depot_len(0), 0);
  pthread_t th;
  CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, free_on_other_thread, nodes), 0);
  pthread_join(th, NULL);
  /* The first full magazine went to the depot when the second filled; we
   * are still a user, so the other thread's flush left it there. */
  CU_ASSERT_EQUAL(ax__ncache_depot_len(0), 1);
  /* Our empty list takes that magazine: the other thread's first frees. */
  ax__mnode *got[DEPOT_MAG];
  uint32_t from_depot = 0;
  for (uint32_t i = 0; i < DEPOT_MAG; i++) {
    got[i] = ax__msg_alloc(0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got[i]);
    for (uint32_t j = 0; j < DEPOT_MAG; j++)
      if (got[i] == nodes[j]) {
        from_depot++;
        break;
      }
  }
  CU_ASSERT_EQUAL(from_depot, DEPOT_MAG);
  CU_ASSERT_EQUAL(ax__ncache_depot_len(0), 0);
  for (uint32_t i = 0; i < DEPOT_MAG; i++) ax__msg_free(got[i]);
  /* Again, and this time we flush with a magazine in the depot: the last
   * user empties it (what the allocator gets back, ASan and valgrind see). */
  for (uint32_t i = 0; i < DEPOT_N; i++) {
    nodes[i] = ax__msg_alloc(0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(nodes[i]);
  }
  CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, free_on_other_thread, nodes), 0);
  pthread_join(th, NULL);
  CU_ASSERT_EQUAL(ax__ncache_depot_len(0), 1);
  ax__msg_cache_flush();
  CU_ASSERT_EQUAL(ax__ncache_depot_len(0), 0);
}

/* The depot under concurrency (run under TSan and ASan too): a producer
 * thread allocates every node (its list runs empty and takes magazines
 * from the depot) and a consumer frees them all (its lists fill and spill
 * into the depot), at the same time, through a lane; every message
 * arrives, in order, and the depot is empty once both have flushed. */
#define DEPOT_STRESS 200000u

static _Atomic bool depot_oom;

static void *depot_producer(void *arg) {
  lane *l = arg;
  ax__msg_cache_enable_always();
  for (uint32_t i = 0; i < DEPOT_STRESS; i++) {
    ax__mnode *n = ax__msg_alloc(0); /* no CUnit call off the main thread */
    if (!n) {
      atomic_store(&depot_oom, true);
      break;
    }
    n->msg.ref = i;
    ax__lane_push(&l->head, &n->link);
  }
  ax__msg_cache_flush();
  return NULL;
}

static void test_mailbox_cache_depot_concurrent(void) {
  ax__msg_cache_enable_always();
  lane l;
  ax__lane_init(&l.head, &l.tail, &l.stub, false);
  pthread_t th;
  CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, depot_producer, &l), 0);
  uint32_t got = 0;
  bool ordered = true;
  while (got < DEPOT_STRESS && !atomic_load(&depot_oom)) {
    ax__mnode *n = pop(&l);
    if (!n) continue;
    if (n->msg.ref != got) ordered = false;
    got++;
  }
  pthread_join(th, NULL);
  CU_ASSERT_FALSE(atomic_load(&depot_oom));
  CU_ASSERT_TRUE(ordered);
  CU_ASSERT_EQUAL(got, DEPOT_STRESS);
  drain_free(&l);
  ax__msg_cache_flush(); /* the last user: the depot is emptied */
  CU_ASSERT_EQUAL(ax__ncache_depot_len(0), 0);
}

int main(void) {
  CU_pSuite s = ax_test_suite("mailbox.lane");
  CU_ADD_TEST(s, test_mailbox_single_thread_fifo);
  CU_ADD_TEST(s, test_mailbox_push_on_idle_elects_one_waker);
  CU_ADD_TEST(s, test_mailbox_owned_lane_push_never_wakes);
  CU_ADD_TEST(s, test_mailbox_multi_producer_stress);
  CU_ADD_TEST(s, test_mailbox_cache_depot);
  CU_ADD_TEST(s, test_mailbox_cache_depot_concurrent);
  return ax_test_run();
}
