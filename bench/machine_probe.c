/* machine_probe: what this machine's cores cost right now, in ~0.2 s.
 *
 * The benchmark machine is a 2-vCPU VM on a shared host, and the same binary
 * of the same workload spreads +-30% from run to run (fjthrput on one
 * worker: 32M or 50M msgs/s). Two things move under it, and this prints
 * both so that a series can be read against them (bench/run.sh prints a
 * probe before each workload's runs):
 *
 *   c2c_ns   the round trip of one cache line between two threads pinned to
 *            CPUs 0 and 1 (a store, then a spin until the other thread's
 *            answer): where the host put the two vCPUs. Measured 55-80 ns
 *            in some minutes and 260-330 ns in others, minutes apart. Every
 *            message between workers pays a few such transfers.
 *   sin_ns   one sin() of fjthrput's argument, single-threaded: how fast a
 *            core computes at the moment (9.7-15 ns seen: the host's other
 *            load on the same physical core, its clock).
 *
 * Usage: machine_probe [ROUND_TRIPS]   (default 500000)
 * Prints: PROBE c2c_ns=<median of 5 batches> sin_ns=<median of 5 batches>
 * On a single-CPU machine c2c_ns is "-"; where pinning is refused the two
 * threads run unpinned (still a cross-thread round trip, maybe on one CPU). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define BATCHES 5

/* The one line that crosses: each side stores its value and spins until
 * the other's appears. Nothing else is shared, so acquire/release only keep
 * the compiler from caching the load; the cost measured is the line's. */
static _Alignas(64) _Atomic long line;
static long trips;

static double now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static bool pin(int cpu) {
  cpu_set_t s;
  CPU_ZERO(&s);
  CPU_SET(cpu, &s);
  return pthread_setaffinity_np(pthread_self(), sizeof s, &s) == 0;
}

/* The answering side: waits for each odd value, answers with the next even
 * one. */
static void *answer(void *arg) {
  (void)arg;
  (void)pin(1); /* unpinned (a restricted cpuset), still thread to thread */
  for (long b = 0; b < BATCHES; b++)
    for (long i = 0; i < trips; i++) {
      long want = 2 * (b * trips + i) + 1;
      while (atomic_load_explicit(&line, memory_order_acquire) != want) {
      }
      atomic_store_explicit(&line, want + 1, memory_order_release);
    }
  return NULL;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v) {
  qsort(v, BATCHES, sizeof *v, cmp_double);
  return v[BATCHES / 2];
}

int main(int argc, char **argv) {
  trips = argc > 1 ? atol(argv[1]) : 500000;
  if (trips <= 0) {
    fprintf(stderr, "usage: machine_probe [ROUND_TRIPS > 0]\n");
    return 2;
  }
  double c2c[BATCHES], sins[BATCHES];
  bool two = sysconf(_SC_NPROCESSORS_ONLN) >= 2;
  pthread_t th;
  if (two && pthread_create(&th, NULL, answer, NULL) != 0) two = false;
  if (two) (void)pin(0); /* unpinned, the round trips are still thread to thread */
  for (long b = 0; b < BATCHES; b++) {
    if (!two) break;
    double t0 = now_ns();
    for (long i = 0; i < trips; i++) {
      long v = 2 * (b * trips + i) + 1;
      atomic_store_explicit(&line, v, memory_order_release);
      /* bounded: an answering thread that never runs ends the probe */
      for (long spin = 0; atomic_load_explicit(&line, memory_order_acquire) != v + 1; spin++)
        if (spin > 1000000000L) {
          fprintf(stderr, "machine_probe: no answer from the other thread\n");
          return 1;
        }
    }
    c2c[b] = (now_ns() - t0) / (double)trips;
  }
  if (two) pthread_join(th, NULL);
  /* sin: fjthrput's argument, varied by a hair so it is not hoisted */
  volatile double sink = 0;
  for (int b = 0; b < BATCHES; b++) {
    double t0 = now_ns(), s = 0;
    for (int i = 0; i < 2000000; i++) {
      double x = sin(37.2 + (double)i * 1e-12);
      s += x * x;
    }
    sink += s;
    sins[b] = (now_ns() - t0) / 2e6;
  }
  (void)sink;
  if (two) printf("PROBE c2c_ns=%.0f sin_ns=%.1f\n", median(c2c), median(sins));
  else printf("PROBE c2c_ns=- sin_ns=%.1f\n", median(sins));
  return 0;
}
