/* Axon tests: shared helpers for the CUnit suites (runner, condition waits). */
#ifndef AX_TESTUTIL_H
#define AX_TESTUTIL_H

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "axon.h"

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

/* Keeps the calling thread busy (no sleep) for ns nanoseconds of the
 * monotonic clock: a behaviour whose run is long on purpose. */
void ax_test_busy_ns(uint64_t ns);

/* A new system with `workers` worker threads and the defaults otherwise;
 * a failure ends the running test (CU_ASSERT_FATAL). Free it with
 * ax_system_free. */
ax_system *ax_test_system(unsigned workers);

/* ax_test_system with a log sink: log_fn (any thread) gets the lines of
 * log_level and above, with log_arg. A failure ends the running test. */
ax_system *ax_test_system_log(unsigned workers, ax_log_fn log_fn, void *log_arg,
                              ax_log_level log_level);

/* A deterministic-mode system (cfg.deterministic_seed = seed, docs/testing.md);
 * log_fn, if not NULL, takes its log. A failure ends the running test. */
ax_system *ax_test_det_system(uint64_t seed, ax_log_fn log_fn);

/* A deterministic test's trace: one buffer appended to by the one thread
 * that runs the system. A line that does not fit is dropped. */
void ax_test_trace_reset(void);
void ax_test_tracef(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *ax_test_trace(size_t *len);

/* The port of listener l's "host:port" address; 0 if it cannot be read. */
uint16_t ax_test_listener_port(ax_listener l);

/* A blocking TCP socket (close-on-exec): rcvbuf, if non-zero, sets
 * SO_RCVBUF; rcv_s and snd_s, if non-zero, set SO_RCVTIMEO and SO_SNDTIMEO
 * in seconds. Returns the fd, or -1. */
int ax_test_socket(int rcvbuf, unsigned rcv_s, unsigned snd_s);

/* Connects fd to 127.0.0.1:port; true on success. */
bool ax_test_connect_fd(int fd, uint16_t port);

/* ax_test_socket then ax_test_connect_fd; returns the connected fd, or -1
 * (the socket closed, errno kept). */
int ax_test_connect(uint16_t port, int rcvbuf, unsigned rcv_s, unsigned snd_s);

#endif
