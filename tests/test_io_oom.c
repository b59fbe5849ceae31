/* Axon tests: the socket layer out of memory. With the fail-the-Nth-
 * allocation hook (src/base/alloc.c) armed over a socket's whole life
 * (accept, reads, the peer's half-close, the owner's close), for every N:
 * the owner gets AX_MSG_IO_CLOSED exactly once for every connection it
 * was told about (and none for one it was not), PEER_SHUTDOWN at most once
 * and always before a close it caused, and the peer always sees its
 * connection end. Both one failure at N and every allocation from N on. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "axon.h"
#include "base/base.h"
#include "support/testutil.h"

#define WAIT_MS 10000

static struct {
  _Atomic uint64_t accepted, closed, peer_shutdowns, other_closed, bytes;
  _Atomic int reason;
  _Atomic uint16_t port;
  _Atomic uint64_t conn;
} G;

static ax_err own_init(ax_actor *self, void *state, const void *arg, size_t len) {
  (void)state, (void)arg, (void)len;
  ax_listener l;
  ax_err e = ax_listen(self, "127.0.0.1:0", NULL, &l);
  if (e == AX_OK) atomic_store(&G.port, ax_test_listener_port(l));
  return e;
}

/* The owner keeps its connections (no spawn: its own work allocates
 * nothing, so it keeps running however memory fails). */
static ax_err own_b(ax_actor *self, const ax_msg *m) {
  ax_conn c = ax_io_msg_conn(self, m);
  switch (m->type) {
  case AX_MSG_IO_ACCEPTED:
    c = ((const ax_io_conn_info *)m->data)->conn;
    atomic_store(&G.conn, c.id);
    atomic_fetch_add(&G.accepted, 1);
    ax_conn_resume_read(c);
    return AX_OK;
  case AX_MSG_IO_DATA:
    atomic_fetch_add(&G.bytes, m->len);
    return AX_OK;
  case AX_MSG_IO_PEER_SHUTDOWN:
    atomic_fetch_add(&G.peer_shutdowns, 1);
    ax_conn_close(c);
    return AX_OK;
  case AX_MSG_IO_CLOSED: {
    const ax_io_event *ev = m->data;
    if (!ev->conn.id) return AX_OK; /* the listener, at shutdown */
    if (ev->conn.id == atomic_load(&G.conn)) {
      atomic_store(&G.reason, ev->reason);
      atomic_fetch_add(&G.closed, 1);
    } else {
      atomic_fetch_add(&G.other_closed, 1);
    }
    return AX_OK;
  }
  default:
    return AX_OK;
  }
}

static const ax_actor_spec own_spec = {.name = "owner", .behaviour = own_b, .init = own_init};

/* A client that sends, half-closes and reads to the end (EOF or reset);
 * false if the end never came (a read timeout). */
static bool client_run(uint16_t port) {
  int fd = ax_test_socket(0, WAIT_MS / 1000, WAIT_MS / 1000);
  if (fd < 0) return false;
  bool ended = false;
  if (ax_test_connect_fd(fd, port)) {
    (void)send(fd, "hello", 5, MSG_NOSIGNAL);
    (void)shutdown(fd, SHUT_WR);
    char b[64];
    for (;;) {
      ssize_t k = read(fd, b, sizeof b);
      if (k > 0) continue;
      ended = k == 0 || (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
      break;
    }
  } else {
    ended = true; /* refused outright: nothing to wait for */
  }
  close(fd);
  return ended;
}

/* One scenario with allocation n (and, sticky, every later one) failing.
 * Returns false once n is past the scenario's allocations. */
static bool scenario(long n, int sticky) {
  ax_system *sys = ax_test_system(2);
  memset(&G, 0, sizeof G);
  ax_pid owner;
  CU_ASSERT_FATAL(ax_system_spawn(sys, &own_spec, NULL, 0, &owner) == AX_OK);
  CU_ASSERT_FATAL(atomic_load(&G.port) != 0);
  long before = ax__alloc_failures();
  ax__alloc_fail_after(n, sticky);
  bool ended = client_run(atomic_load(&G.port));
  /* Every connection the owner was told about ends in exactly one CLOSED,
   * even while memory keeps failing. */
  bool all_closed = ax_test_wait_count(&G.closed, atomic_load(&G.accepted), WAIT_MS);
  ax_test_sleep_ms(5); /* a duplicate would show up meanwhile */
  ax__alloc_fail_after(0, 0);
  bool failed = ax__alloc_failures() != before;
  uint64_t acc = atomic_load(&G.accepted), closed = atomic_load(&G.closed);
  uint64_t ps = atomic_load(&G.peer_shutdowns);
  if (!ended || !all_closed || closed != acc || ps > 1 || atomic_load(&G.other_closed) ||
      (closed && atomic_load(&G.reason) == AX_IO_CLOSE_LOCAL && ps != 1))
    fprintf(stderr, "\n  n=%ld sticky=%d: ended=%d accepted=%llu closed=%llu peer_shutdowns=%llu "
                    "reason=%d other=%llu",
            n, sticky, ended, (unsigned long long)acc, (unsigned long long)closed,
            (unsigned long long)ps, atomic_load(&G.reason),
            (unsigned long long)atomic_load(&G.other_closed));
  CU_ASSERT(ended);
  CU_ASSERT(all_closed);
  CU_ASSERT_EQUAL(closed, acc);
  CU_ASSERT(acc <= 1);
  CU_ASSERT(ps <= 1);
  CU_ASSERT_EQUAL(atomic_load(&G.other_closed), 0);
  /* The owner closes only on PEER_SHUTDOWN: a LOCAL close means it came. */
  if (closed && atomic_load(&G.reason) == AX_IO_CLOSE_LOCAL) CU_ASSERT_EQUAL(ps, 1);
  CU_ASSERT(ax_system_shutdown(sys) == AX_OK);
  ax_system_free(sys);
  return failed;
}

static void run_all(int sticky) {
  long n = 1;
  int quiet = 0;
  /* Past the scenario's last allocation no failure happens; a few quiet
   * runs in a row end the loop (bounded anyway). */
  for (; n <= 200 && quiet < 3; n++) quiet = scenario(n, sticky) ? 0 : quiet + 1;
  fprintf(stderr, "(%ld values of N) ", n - 1);
  CU_ASSERT(n > 4);
}

static void test_io_oom_one_failure_closed_exactly_once(void) { run_all(0); }
static void test_io_oom_failures_from_n_closed_exactly_once(void) { run_all(1); }

/* ---- BACKPRESSURE then DRAINED, out of memory ----
 * A writer (a plain thread: no node cache) fills a connection whose peer
 * does not read until ax_conn_write refuses with AX_EAGAIN; then the peer
 * reads everything. With allocation N failing, the owner that was refused
 * must still hear DRAINED, or CLOSED if the connection gave up: never
 * silence, which would leave it waiting forever. */
static struct {
  _Atomic uint64_t conn, drained, closed;
} B;

static ax_err bp_init(ax_actor *self, void *state, const void *arg, size_t len) {
  (void)state, (void)arg, (void)len;
  ax_io_opts o;
  ax_io_opts_init(&o);
  o.high_watermark = 64 * 1024;
  o.low_watermark = 16 * 1024;
  ax_listener l;
  ax_err e = ax_listen(self, "127.0.0.1:0", &o, &l);
  if (e == AX_OK) atomic_store(&G.port, ax_test_listener_port(l));
  return e;
}

static ax_err bp_b(ax_actor *self, const ax_msg *m) {
  switch (m->type) {
  case AX_MSG_IO_ACCEPTED:
    atomic_store(&B.conn, ((const ax_io_conn_info *)m->data)->conn.id);
    return AX_OK;
  case AX_MSG_IO_DRAINED: atomic_fetch_add(&B.drained, 1); return AX_OK;
  case AX_MSG_IO_CLOSED:
    if (((const ax_io_event *)m->data)->conn.id) atomic_fetch_add(&B.closed, 1);
    return AX_OK;
  default: return AX_OK;
  }
}
static const ax_actor_spec bp_spec = {.name = "bp", .behaviour = bp_b, .init = bp_init};

static bool bp_scenario(long n) {
  ax_system *sys = ax_test_system(2);
  memset(&G, 0, sizeof G);
  memset(&B, 0, sizeof B);
  ax_pid owner;
  CU_ASSERT_FATAL(ax_system_spawn(sys, &bp_spec, NULL, 0, &owner) == AX_OK);
  int fd = ax_test_socket(4096, 0, 0);
  CU_ASSERT_FATAL(ax_test_connect_fd(fd, atomic_load(&G.port)));
  CU_ASSERT_FATAL(ax_test_wait_count(&B.conn, 1, WAIT_MS));
  ax_conn c;
  memset(&c, 0, sizeof c);
  c.sys = sys;
  c.id = atomic_load(&B.conn);
  static char chunk[8192];
  long before = ax__alloc_failures();
  ax__alloc_fail_after(n, 0);
  uint64_t written = 0;
  bool refused = false;
  for (int i = 0; i < 100000 && !refused; i++) {
    ax_err e = ax_conn_write(c, chunk, sizeof chunk);
    if (e == AX_OK) written += sizeof chunk;
    else if (e == AX_EAGAIN) refused = true;
    else if (e != AX_ENOMEM) break; /* closed: nothing more to wait for */
  }
  /* The peer reads everything that was accepted (or the connection ends). */
  struct timeval tv = {WAIT_MS / 1000, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  uint64_t got = 0;
  char b[65536];
  while (got < written) {
    ssize_t k = read(fd, b, sizeof b);
    if (k <= 0) break;
    got += (uint64_t)k;
  }
  bool told = true;
  if (refused) {
    for (int i = 0; i < WAIT_MS && !atomic_load(&B.drained) && !atomic_load(&B.closed); i++)
      ax_test_sleep_ms(1);
    told = atomic_load(&B.drained) || atomic_load(&B.closed);
  }
  ax__alloc_fail_after(0, 0);
  bool failed = ax__alloc_failures() != before;
  if (!told)
    fprintf(stderr, "\n  n=%ld: refused with EAGAIN, read %llu of %llu, never DRAINED nor CLOSED", n,
            (unsigned long long)got, (unsigned long long)written);
  CU_ASSERT(told);
  close(fd);
  CU_ASSERT(ax_system_shutdown(sys) == AX_OK);
  ax_system_free(sys);
  return failed;
}

static void test_io_oom_refused_writer_always_hears_drained_or_closed(void) {
  long n = 1;
  int quiet = 0;
  for (; n <= 300 && quiet < 3; n++) quiet = bp_scenario(n) ? 0 : quiet + 1;
  fprintf(stderr, "(%ld values of N) ", n - 1);
  CU_ASSERT(n > 4);
}

int main(void) {
  CU_pSuite s = ax_test_suite("io.oom");
  CU_ADD_TEST(s, test_io_oom_one_failure_closed_exactly_once);
  CU_ADD_TEST(s, test_io_oom_failures_from_n_closed_exactly_once);
  CU_ADD_TEST(s, test_io_oom_refused_writer_always_hears_drained_or_closed);
  return ax_test_run();
}
