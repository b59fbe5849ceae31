/* Axon tests: shared helpers for the CUnit suites. */
#include "support/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

CU_pSuite ax_test_suite(const char *name) {
  if (CU_initialize_registry() != CUE_SUCCESS) {
    fprintf(stderr, "CUnit: cannot initialise the registry\n");
    exit(2);
  }
  CU_pSuite s = CU_add_suite(name, NULL, NULL);
  if (!s) {
    fprintf(stderr, "CUnit: cannot add suite %s\n", name);
    exit(2);
  }
  return s;
}

int ax_test_run(void) {
  CU_basic_set_mode(CU_BRM_VERBOSE);
  CU_basic_run_tests();
  unsigned failures = CU_get_number_of_failures();
  unsigned run = CU_get_number_of_tests_run();
  CU_cleanup_registry();
  if (run == 0) return 3;
  return failures != 0;
}

void ax_test_sleep_ms(unsigned ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

bool ax_test_wait(bool (*pred)(void *arg), void *arg, unsigned timeout_ms) {
  for (unsigned i = 0; i < timeout_ms; i++) {
    if (pred(arg)) return true;
    ax_test_sleep_ms(1);
  }
  return pred(arg);
}

static bool count_reached(void *arg) {
  void **a = arg;
  return atomic_load((_Atomic uint64_t *)a[0]) >= *(uint64_t *)a[1];
}

bool ax_test_wait_count(_Atomic uint64_t *counter, uint64_t target, unsigned timeout_ms) {
  void *a[2] = {counter, &target};
  return ax_test_wait(count_reached, a, timeout_ms);
}
