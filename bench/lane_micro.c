/* lane_micro: the user lane alone, without the runtime. P producer threads
 * each send N messages round-robin to K lanes; one consumer thread runs the
 * lanes the producers woke (the runtime's wake protocol: the push that finds
 * a lane idle puts it on a run queue; the consumer takes up to BATCH
 * messages a run and marks the lane idle when it found it empty). Each lane
 * is bounded (LIMIT messages accepted and not consumed: a producer waits,
 * as a muted sender would). Compares today's node lane (mailbox.h: a node
 * allocated per message, freed by the consumer, through the node cache)
 * with a segment lane (lane_micro_seg.h: 32-byte inline slots, two a cache
 * line). Every message carries its producer and sequence number; the
 * consumer checks per-producer FIFO order and the counts.
 *
 *   lane_micro node|seg K N [WORK] [CPU_PRODUCER CPU_CONSUMER]
 *
 * WORK: per-message work in the consumer: 0 none, 1 one sin() as
 * fjthrput's workers. CPUs: pin the first producer and the consumer (-1: no
 * pin; other producers are not pinned). Env PRODUCERS (1), BATCH (100),
 * LIMIT (256: per producer and lane). Prints messages/s, ns a message
 * (wall), runs and the check; exit status 1 on a mismatch. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lane_micro_seg.h"
#include "mailbox/mailbox.h"

#define MAXK 1024
#define MAXP 16

typedef struct lane {
  /* node lane (one of the two is used) */
  _Alignas(64) _Atomic uintptr_t head;
  _Alignas(64) ax__mlink *tail;
  ax__mlink stub;
  /* segment lane: producers' half, then the consumer's */
  _Alignas(64) seg_lane_p sp;
  _Alignas(64) seg_lane_c sc;
  seg_t *pend;
  /* consumed per producer, written by the consumer at a run's end */
  _Alignas(64) _Atomic uint64_t consumed[MAXP];
  uint64_t got[MAXP];
  uint64_t bad;
} lane;

static lane *lanes;
static int K, P = 1, use_seg, work, batch = 100;
static uint64_t N, limit = 256;

/* The run queue: a ring of lane indexes written by the producers' wakes (a
 * lane is on it at most once: its wake is one per idle epoch); the
 * consumer's re-runs go on its own local FIFO. 0 = not written yet. */
static _Atomic uint64_t rq_tail;
static _Alignas(64) uint64_t rq_head;
static _Atomic int rq[MAXK * 2];

static void rq_push(int k) {
  /* relaxed claim: the entry's release store publishes it. */
  uint64_t t = atomic_fetch_add_explicit(&rq_tail, 1, memory_order_relaxed);
  atomic_store_explicit(&rq[t % (MAXK * 2)], k + 1, memory_order_release);
}
static int rq_pop(void) {
  _Atomic int *e = &rq[rq_head % (MAXK * 2)];
  /* acquire: pairs with rq_push's release (and the push before it). */
  int k = atomic_load_explicit(e, memory_order_acquire);
  if (!k) return -1;
  atomic_store_explicit(e, 0, memory_order_relaxed);
  rq_head++;
  return k - 1;
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void pin(int cpu) {
  if (cpu < 0) return;
  cpu_set_t s;
  CPU_ZERO(&s);
  CPU_SET(cpu, &s);
  pthread_setaffinity_np(pthread_self(), sizeof(s), &s);
}

static int cpu_p = 0, cpu_c = 1;
static volatile double sink;

static void *producer(void *arg) {
  uint64_t id = (uint64_t)(uintptr_t)arg;
  if (id == 0) pin(cpu_p);
  ax__msg_cache_enable();
  uint64_t *sent = calloc((size_t)K, sizeof(uint64_t));
  if (!sent) abort();
  for (uint64_t i = 0; i < N; i++) {
    for (int k = 0; k < K; k++) {
      lane *l = &lanes[k];
      while (sent[k] - atomic_load_explicit(&l->consumed[id], memory_order_acquire) >= limit)
        __builtin_ia32_pause();
      uint64_t seq = sent[k]++;
      bool wake;
      if (use_seg) {
        wake = seg_lane_push(&l->sp, &l->sc, NULL, 7, id, &seq, sizeof seq);
      } else {
        ax__mnode *n = ax__msg_new(7, 0, id, (uint64_t)k, 0, &seq, sizeof seq, NULL);
        if (!n) abort();
        wake = ax__lane_push(&l->head, &n->link);
      }
      if (wake) rq_push(k);
    }
  }
  free(sent);
  ax__msg_cache_flush();
  return NULL;
}

static uint64_t runs;

static inline void take(lane *l, uint32_t type, uint64_t from, const void *data) {
  uint64_t seq;
  memcpy(&seq, data, sizeof seq);
  if (type != 7 || from >= (uint64_t)P || seq != l->got[from]) l->bad++;
  if (from < (uint64_t)P) l->got[from]++;
  if (work) sink += sin((double)seq);
}

/* One run of lane l: up to batch messages; returns true if it must run
 * again (budget used up, or mail raced in). */
static bool run(lane *l) {
  int taken = 0;
  runs++;
  if (use_seg) {
    seg_slot *s;
    while (taken < batch && (s = seg_lane_peek(&l->sp, &l->sc, &l->pend))) {
      take(l, s->type, s->from, s->u.payload);
      seg_lane_advance(&l->sc);
      taken++;
    }
  } else {
    ax__mlink *x, *old;
    while (taken < batch && (x = ax__lane_pop(&l->tail, &old))) {
      if (old != &l->stub) ax__msg_free(ax__mnode_of(old));
      ax__mnode *n = ax__mnode_of(x);
      take(l, n->msg.type, n->msg.from.id, n->msg.data);
      taken++;
    }
  }
  /* release: the producers' acquire load orders our reads of the slots
   * before their reuse. */
  for (int p = 0; p < P; p++) atomic_store_explicit(&l->consumed[p], l->got[p], memory_order_release);
  if (taken == batch) return true;
  if (use_seg) return !seg_lane_mark_idle(&l->sp, &l->sc);
  return !ax__lane_mark_idle(&l->head, l->tail);
}

static uint64_t lane_got(lane *l) {
  uint64_t g = 0;
  for (int p = 0; p < P; p++) g += l->got[p];
  return g;
}

static void *consumer(void *arg) {
  (void)arg;
  pin(cpu_c);
  ax__msg_cache_enable();
  int *local = malloc(sizeof(int) * (size_t)(K + 1));
  if (!local) abort();
  int lh = 0, lt = 0; /* local FIFO of re-runs (at most K entries) */
  uint64_t total = N * (uint64_t)K * (uint64_t)P, got = 0;
  while (got < total) {
    int k = rq_pop();
    if (k < 0) {
      if (lh == lt) {
        __builtin_ia32_pause();
        continue;
      }
      k = local[lh];
      lh = (lh + 1) % (K + 1);
    }
    uint64_t before = lane_got(&lanes[k]);
    bool again = run(&lanes[k]);
    got += lane_got(&lanes[k]) - before;
    if (again) {
      local[lt] = k;
      lt = (lt + 1) % (K + 1);
    }
  }
  free(local);
  ax__msg_cache_flush();
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: lane_micro node|seg K N [WORK] [CPU_P CPU_C]\n");
    return 2;
  }
  use_seg = !strcmp(argv[1], "seg");
  K = atoi(argv[2]);
  N = strtoull(argv[3], NULL, 10);
  if (argc > 4) work = atoi(argv[4]);
  if (argc > 6) {
    cpu_p = atoi(argv[5]);
    cpu_c = atoi(argv[6]);
  }
  if (getenv("PRODUCERS")) P = atoi(getenv("PRODUCERS"));
  if (getenv("BATCH")) batch = atoi(getenv("BATCH"));
  if (getenv("LIMIT")) limit = strtoull(getenv("LIMIT"), NULL, 10);
  if (K < 1 || K > MAXK || P < 1 || P > MAXP || batch < 1 || limit < 1) return 2;
  lanes = aligned_alloc(64, sizeof(lane) * (size_t)K);
  if (!lanes) return 1;
  memset(lanes, 0, sizeof(lane) * (size_t)K);
  for (int k = 0; k < K; k++) {
    ax__lane_init(&lanes[k].head, &lanes[k].tail, &lanes[k].stub, true);
    seg_lane_init(&lanes[k].sp, &lanes[k].sc, true);
  }
  pthread_t c, p[MAXP];
  uint64_t t0 = now_ns();
  pthread_create(&c, NULL, consumer, NULL);
  for (int i = 0; i < P; i++) pthread_create(&p[i], NULL, producer, (void *)(uintptr_t)i);
  for (int i = 0; i < P; i++) pthread_join(p[i], NULL);
  pthread_join(c, NULL);
  uint64_t dt = now_ns() - t0;
  uint64_t total = N * (uint64_t)K * (uint64_t)P, got = 0, bad = 0;
  for (int k = 0; k < K; k++) {
    got += lane_got(&lanes[k]);
    bad += lanes[k].bad;
    /* the node lane's last node is its stub */
    if (lanes[k].tail != &lanes[k].stub) ax__msg_free(ax__mnode_of(lanes[k].tail));
    seg_lane_destroy(&lanes[k].sp, &lanes[k].sc, &lanes[k].pend);
  }
  bool ok = got == total && bad == 0;
  printf("%s K=%d N=%llu P=%d work=%d: %.2fM msgs/s, %.1f ns/msg, runs %llu (%.1f msgs/run) %s\n",
         argv[1], K, (unsigned long long)N, P, work, total / (dt / 1e3), (double)dt / total,
         (unsigned long long)runs, (double)total / runs, ok ? "ok" : "MISMATCH");
  free(lanes);
  return ok ? 0 : 1;
}
