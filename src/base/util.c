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
