/* Axon tests: shared helpers for the CUnit suites. */
#include "support/testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

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

/* For hunting a rare failure by hand (never set by ctest):
 * AX_TEST_ONLY=<substring> runs only the tests whose names contain it, and
 * AX_TEST_REPEAT=<n> runs the selection up to n times, stopping at the
 * first round with a failure. */
int ax_test_run(void) {
  const char *only = getenv("AX_TEST_ONLY");
  if (only && *only) {
    CU_set_fail_on_inactive(CU_FALSE);
    for (CU_pSuite s = CU_get_registry()->pSuite; s; s = s->pNext)
      for (CU_pTest t = s->pTest; t; t = t->pNext)
        CU_set_test_active(t, strstr(t->pName, only) ? CU_TRUE : CU_FALSE);
  }
  long rounds = getenv("AX_TEST_REPEAT") ? atol(getenv("AX_TEST_REPEAT")) : 1;
  if (rounds < 1) rounds = 1;
  CU_basic_set_mode(rounds > 1 ? CU_BRM_SILENT : CU_BRM_VERBOSE);
  unsigned failures = 0, run = 0;
  for (long i = 0; i < rounds && !failures; i++) {
    CU_basic_run_tests();
    failures = CU_get_number_of_failures();
    run += CU_get_number_of_tests_run();
    if (failures && rounds > 1) {
      fprintf(stderr, "round %ld of %ld failed:\n", i + 1, rounds);
      CU_basic_show_failures(CU_get_failure_list());
      fprintf(stderr, "\n");
    }
  }
  CU_cleanup_registry();
  if (run == 0) return 3;
  return failures != 0;
}

void ax_test_sleep_ms(unsigned ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void ax_test_busy_ns(uint64_t ns) {
  for (uint64_t until = mono_ns() + ns; mono_ns() < until;) {
  }
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

ax_system *ax_test_system(unsigned workers) {
  ax_system_config cfg;
  ax_system_config_init(&cfg);
  cfg.workers = workers;
  ax_system *sys = NULL;
  CU_ASSERT_FATAL(ax_system_new(&cfg, &sys) == AX_OK);
  return sys;
}

ax_system *ax_test_system_log(unsigned workers, ax_log_fn log_fn, void *log_arg,
                              ax_log_level log_level) {
  ax_system_config cfg;
  ax_system_config_init(&cfg);
  cfg.workers = workers;
  cfg.log_fn = log_fn;
  cfg.log_arg = log_arg;
  cfg.log_level = log_level;
  ax_system *sys = NULL;
  CU_ASSERT_FATAL(ax_system_new(&cfg, &sys) == AX_OK);
  return sys;
}

ax_system *ax_test_det_system(uint64_t seed, ax_log_fn log_fn) {
  ax_system_config cfg;
  ax_system_config_init(&cfg);
  cfg.deterministic_seed = seed;
  cfg.log_fn = log_fn;
  ax_system *sys = NULL;
  CU_ASSERT_FATAL(ax_system_new(&cfg, &sys) == AX_OK);
  return sys;
}

static char trace_buf[1 << 17];
static size_t trace_len;

void ax_test_trace_reset(void) {
  trace_len = 0;
  trace_buf[0] = 0;
}

void ax_test_tracef(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(trace_buf + trace_len, sizeof trace_buf - trace_len, fmt, ap);
  va_end(ap);
  if (n > 0 && (size_t)n < sizeof trace_buf - trace_len)
    trace_len += (size_t)n;
  else
    trace_buf[trace_len] = 0;
}

const char *ax_test_trace(size_t *len) {
  if (len) *len = trace_len;
  return trace_buf;
}

uint16_t ax_test_listener_port(ax_listener l) {
  char a[AX_IO_ADDRSTRLEN];
  size_t n = sizeof a;
  if (ax_listener_addr(l, a, &n) != AX_OK) return 0;
  return (uint16_t)atoi(strrchr(a, ':') + 1);
}

int ax_test_socket(int rcvbuf, unsigned rcv_s, unsigned snd_s) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (rcv_s) {
    struct timeval tv = {(time_t)rcv_s, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  if (snd_s) {
    struct timeval tv = {(time_t)snd_s, 0};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  }
  if (rcvbuf) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  return fd;
}

bool ax_test_connect_fd(int fd, uint16_t port) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  return connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
}

int ax_test_connect(uint16_t port, int rcvbuf, unsigned rcv_s, unsigned snd_s) {
  int fd = ax_test_socket(rcvbuf, rcv_s, snd_s);
  if (fd < 0) return -1;
  if (!ax_test_connect_fd(fd, port)) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  return fd;
}
