/* Axon tests: shared helpers for the CUnit suites (runner, condition waits). */
#ifndef AX_TESTUTIL_H
#define AX_TESTUTIL_H

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* Creates the registry and one suite named name; returns the suite or exits. */
CU_pSuite ax_test_suite(const char *name);

/* Runs every registered test in verbose basic mode, prints the CUnit summary,
 * cleans up, and returns the process exit status (non-zero on any failure). */
int ax_test_run(void);

/* Polls pred(arg) every millisecond until it is true or timeout_ms passed.
 * Returns the last value of pred. Generous bounds only: never a timing test. */
bool ax_test_wait(bool (*pred)(void *arg), void *arg, unsigned timeout_ms);

/* Waits until *counter >= target (generous bound); returns the final test. */
bool ax_test_wait_count(_Atomic uint64_t *counter, uint64_t target, unsigned timeout_ms);

/* Sleeps ms milliseconds (for giving threads a chance; never for timing). */
void ax_test_sleep_ms(unsigned ms);

#endif
