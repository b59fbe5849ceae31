/* Axon: assertion failure and the monotonic clock. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "base/base.h"

_Noreturn void ax__assert_fail(const char *expr, const char *file, int line) {
  fprintf(stderr, "axon: assertion failed: %s (%s:%d)\n", expr, file, line);
  abort();
}

uint64_t ax__now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void ax__cond_init_monotonic(pthread_cond_t *cv) {
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(cv, &ca);
  pthread_condattr_destroy(&ca);
}

bool ax__cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *m, uint64_t deadline_ns) {
  if (!deadline_ns) {
    pthread_cond_wait(cv, m);
    return true;
  }
  if (ax__now_ns() >= deadline_ns) return false;
  struct timespec ts = {(time_t)(deadline_ns / 1000000000u), (long)(deadline_ns % 1000000000u)};
  pthread_cond_timedwait(cv, m, &ts);
  return true;
}
