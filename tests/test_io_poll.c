/* Axon tests: the reactor's poll backend (src/io/poll_*.c): readiness on
 * pipes and socketpairs, edge-triggered semantics, peer shutdown, del/mod,
 * argument errors, and the coalescing cross-thread wakeup (run under TSan
 * too: payloads handed over by a wake are plain, non-atomic fields). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "reactor/poll.h"
#include "support/testutil.h"

#define MAXEV 16

/* Distinct addresses used as udata tags. */
static char tag_a, tag_b;

static void set_nonblock(int fd) {
  CU_ASSERT_FATAL(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) == 0);
}

static ax__poller *new_poller(void) {
  ax__poller *p = NULL;
  CU_ASSERT_FATAL(ax__poller_new(&p) == AX_OK);
  CU_ASSERT_FATAL(p != NULL);
  return p;
}

/* One wait; returns the number of events (asserting AX_OK). */
static int poll_once(ax__poller *p, int timeout_ms, ax__poll_event *evs) {
  int n = -1;
  CU_ASSERT_EQUAL(ax__poller_wait(p, evs, MAXEV, timeout_ms, &n), AX_OK);
  CU_ASSERT(n >= 0 && n <= MAXEV);
  return n < 0 ? 0 : n;
}

/* Waits once and returns the OR of the bits reported for tag; *count gets
 * how many events carried it. */
static uint32_t bits_for(ax__poller *p, int timeout_ms, void *tag, int *count) {
  ax__poll_event evs[MAXEV];
  int n = poll_once(p, timeout_ms, evs);
  uint32_t bits = 0;
  *count = 0;
  for (int i = 0; i < n; i++) {
    if (evs[i].udata != tag) continue;
    bits |= evs[i].events;
    (*count)++;
  }
  return bits;
}

static void write_byte(int fd) {
  CU_ASSERT_EQUAL(write(fd, "x", 1), 1);
}

static void drain(int fd) {
  char buf[256];
  while (read(fd, buf, sizeof buf) > 0) {}
}

static uint64_t ms_since(uint64_t t0_ns) {
  return (ax__now_ns() - t0_ns) / 1000000u;
}

static void test_io_pipe_readiness_in_and_out(void) {
  ax__poller *p = new_poller();
  int fds[2], c;
  CU_ASSERT_FATAL(pipe(fds) == 0);
  set_nonblock(fds[0]);
  set_nonblock(fds[1]);
  CU_ASSERT_EQUAL(ax__poller_add(p, fds[0], AX__POLL_IN, &tag_a), AX_OK);
  CU_ASSERT_EQUAL(ax__poller_add(p, fds[1], AX__POLL_OUT, &tag_b), AX_OK);
  /* The empty pipe is writable, not readable. */
  ax__poll_event evs[MAXEV];
  int n = poll_once(p, 0, evs);
  CU_ASSERT_EQUAL_FATAL(n, 1);
  CU_ASSERT_PTR_EQUAL(evs[0].udata, &tag_b);
  CU_ASSERT(evs[0].events & AX__POLL_OUT);
  CU_ASSERT(!(evs[0].events & AX__POLL_IN));
  write_byte(fds[1]);
  uint32_t bits = bits_for(p, 1000, &tag_a, &c);
  CU_ASSERT_EQUAL(c, 1);
  CU_ASSERT(bits & AX__POLL_IN);
  CU_ASSERT(!(bits & (AX__POLL_HUP | AX__POLL_ERR | AX__POLL_RDHUP)));
  close(fds[0]);
  close(fds[1]);
  ax__poller_free(p);
}

static void test_io_edge_triggered_one_event_per_edge(void) {
  ax__poller *p = new_poller();
  int fds[2], c;
  CU_ASSERT_FATAL(pipe(fds) == 0);
  set_nonblock(fds[0]);
  CU_ASSERT_EQUAL(ax__poller_add(p, fds[0], AX__POLL_IN, &tag_a), AX_OK);
  CU_ASSERT_EQUAL(bits_for(p, 0, &tag_a, &c), 0);
  write_byte(fds[1]);
  CU_ASSERT(bits_for(p, 1000, &tag_a, &c) & AX__POLL_IN);
  CU_ASSERT_EQUAL(c, 1);
  /* Unread data is no new edge: nothing more until new data arrives. */
  CU_ASSERT_EQUAL(bits_for(p, 0, &tag_a, &c), 0);
  CU_ASSERT_EQUAL(bits_for(p, 20, &tag_a, &c), 0);
  write_byte(fds[1]);
  CU_ASSERT(bits_for(p, 1000, &tag_a, &c) & AX__POLL_IN);
  CU_ASSERT_EQUAL(c, 1);
  drain(fds[0]);
  CU_ASSERT_EQUAL(bits_for(p, 0, &tag_a, &c), 0);
  write_byte(fds[1]);
  CU_ASSERT(bits_for(p, 1000, &tag_a, &c) & AX__POLL_IN);
  close(fds[0]);
  close(fds[1]);
  ax__poller_free(p);
}

static void test_io_timeout_without_events_returns_zero(void) {
  ax__poller *p = new_poller();
  ax__poll_event evs[MAXEV];
  CU_ASSERT_EQUAL(poll_once(p, 0, evs), 0);
  uint64_t t0 = ax__now_ns();
  CU_ASSERT_EQUAL(poll_once(p, 30, evs), 0);
  CU_ASSERT(ms_since(t0) >= 25); /* it did wait, no event came */
  ax__poller_free(p);
}

static void test_io_del_stops_events(void) {
  ax__poller *p = new_poller();
  int fds[2], c;
  CU_ASSERT_FATAL(pipe(fds) == 0);
  CU_ASSERT_EQUAL(ax__poller_add(p, fds[0], AX__POLL_IN, &tag_a), AX_OK);
  CU_ASSERT_EQUAL(ax__poller_del(p, fds[0]), AX_OK);
  write_byte(fds[1]);
  CU_ASSERT_EQUAL(bits_for(p, 20, &tag_a, &c), 0);
  CU_ASSERT_EQUAL(c, 0);
  errno = 0;
  CU_ASSERT_EQUAL(ax__poller_del(p, fds[0]), AX_ESYS);
  CU_ASSERT_EQUAL(errno, ENOENT);
  /* Re-adding works and reports the pending data as a fresh edge. */
  CU_ASSERT_EQUAL(ax__poller_add(p, fds[0], AX__POLL_IN, &tag_b), AX_OK);
  CU_ASSERT(bits_for(p, 1000, &tag_b, &c) & AX__POLL_IN);
  close(fds[0]);
  close(fds[1]);
  ax__poller_free(p);
}

static void test_io_mod_changes_interest_and_udata(void) {
  ax__poller *p = new_poller();
  int sv[2], c;
  CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
  set_nonblock(sv[0]);
  CU_ASSERT_EQUAL(ax__poller_add(p, sv[0], AX__POLL_IN, &tag_a), AX_OK);
  CU_ASSERT_EQUAL(bits_for(p, 0, &tag_a, &c), 0); /* writable, not asked */
  CU_ASSERT_EQUAL(ax__poller_mod(p, sv[0], AX__POLL_OUT, &tag_b), AX_OK);
  uint32_t bits = bits_for(p, 1000, &tag_b, &c);
  CU_ASSERT(bits & AX__POLL_OUT);
  CU_ASSERT(!(bits & AX__POLL_IN));
  write_byte(sv[1]); /* readable now, but IN is no longer asked for */
  CU_ASSERT_EQUAL(bits_for(p, 20, &tag_a, &c), 0);
  CU_ASSERT_EQUAL(ax__poller_mod(p, sv[0], AX__POLL_IN, &tag_a), AX_OK);
  CU_ASSERT(bits_for(p, 1000, &tag_a, &c) & AX__POLL_IN);
  close(sv[0]);
  close(sv[1]);
  ax__poller_free(p);
}

static void test_io_peer_shutdown_reports_rdhup_then_hup(void) {
  ax__poller *p = new_poller();
  int sv[2], c;
  CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
  set_nonblock(sv[0]);
  CU_ASSERT_EQUAL(ax__poller_add(p, sv[0], AX__POLL_IN | AX__POLL_OUT, &tag_a),
                  AX_OK);
  uint32_t bits = bits_for(p, 1000, &tag_a, &c); /* initial writability */
  CU_ASSERT(bits & AX__POLL_OUT);
  CU_ASSERT(!(bits & (AX__POLL_RDHUP | AX__POLL_HUP)));
  /* Half close: the peer stops writing, we may still write. */
  CU_ASSERT_FATAL(shutdown(sv[1], SHUT_WR) == 0);
  bits = bits_for(p, 1000, &tag_a, &c);
  CU_ASSERT(bits & AX__POLL_RDHUP);
  CU_ASSERT(bits & AX__POLL_IN); /* read() now returns 0 */
  CU_ASSERT(!(bits & AX__POLL_HUP));
  /* Full close: both directions are gone. */
  close(sv[1]);
  bits = bits_for(p, 1000, &tag_a, &c);
  CU_ASSERT(bits & AX__POLL_HUP);
  close(sv[0]);
  ax__poller_free(p);
}

static void test_io_invalid_arguments_are_errors(void) {
  ax__poller *p = new_poller();
  ax__poll_event evs[1];
  int n = 7, fds[2];
  CU_ASSERT_FATAL(pipe(fds) == 0);
  errno = 0;
  CU_ASSERT_EQUAL(ax__poller_add(p, -1, AX__POLL_IN, NULL), AX_ESYS);
  CU_ASSERT_EQUAL(errno, EBADF);
  CU_ASSERT_EQUAL(ax__poller_add(p, fds[0], 1u << 20, NULL), AX_EINVAL);
  CU_ASSERT_EQUAL(ax__poller_wait(p, evs, 0, 0, &n), AX_EINVAL);
  CU_ASSERT_EQUAL(n, 0);
  CU_ASSERT_EQUAL(ax__poller_wait(p, NULL, 4, 0, &n), AX_EINVAL);
  /* Failed adds registered nothing. */
  write_byte(fds[1]);
  CU_ASSERT_EQUAL(poll_once(p, 0, evs), 0);
  ax__poller_free(NULL);
  close(fds[0]);
  close(fds[1]);
  ax__poller_free(p);
}

/* A waker thread hands a plain payload over through the wake. */
typedef struct waker {
  ax__poller *p;
  int payload; /* written before the wake, read after the wait */
  unsigned delay_ms;
} waker;

static void *wake_later(void *arg) {
  waker *w = arg;
  ax_test_sleep_ms(w->delay_ms); /* let the main thread block first */
  w->payload = 42;
  ax__poller_wake(w->p);
  return NULL;
}

static void test_io_wake_from_thread_returns_wait_early(void) {
  waker w = {new_poller(), 0, 20};
  pthread_t th;
  ax__poll_event evs[MAXEV];
  uint64_t t0 = ax__now_ns();
  CU_ASSERT_FATAL(pthread_create(&th, NULL, wake_later, &w) == 0);
  int n = poll_once(w.p, 10000, evs);
  CU_ASSERT_EQUAL(n, 0); /* the wakeup itself is not an event */
  CU_ASSERT(ms_since(t0) < 5000);
  CU_ASSERT_EQUAL(w.payload, 42); /* visible: the wake published it */
  pthread_join(th, NULL);
  ax__poller_free(w.p);
}

static void *wake_many(void *arg) {
  for (int i = 0; i < 1000; i++) ax__poller_wake(arg);
  return NULL;
}

static void test_io_wakes_coalesce(void) {
  ax__poller *p = new_poller();
  ax__poll_event evs[MAXEV];
  pthread_t th[4];
  for (int i = 0; i < 4; i++)
    CU_ASSERT_FATAL(pthread_create(&th[i], NULL, wake_many, p) == 0);
  for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
  CU_ASSERT_EQUAL(ax__poller_wake_writes(p), 1); /* 4000 wakes, one write */
  uint64_t t0 = ax__now_ns();
  CU_ASSERT_EQUAL(poll_once(p, 10000, evs), 0);
  CU_ASSERT(ms_since(t0) < 5000); /* a wake before the wait is not lost */
  /* The one wait consumed them all: the next one times out. */
  t0 = ax__now_ns();
  CU_ASSERT_EQUAL(poll_once(p, 30, evs), 0);
  CU_ASSERT(ms_since(t0) >= 25);
  ax__poller_wake(p);
  ax__poller_wake(p);
  CU_ASSERT_EQUAL(ax__poller_wake_writes(p), 2);
  t0 = ax__now_ns();
  CU_ASSERT_EQUAL(poll_once(p, 10000, evs), 0);
  CU_ASSERT(ms_since(t0) < 5000);
  ax__poller_free(p);
}

/* A coalesced wake (flag already set, no write of its own) must still
 * publish the waker's writes to the wait that consumes the wakeup. */
typedef struct late_waker {
  ax__poller *p;
  int payload;
  _Atomic int done; /* relaxed: the handover must come from the poller */
} late_waker;

static void *wake_coalesced(void *arg) {
  late_waker *lw = arg;
  lw->payload = 7;
  ax__poller_wake(lw->p);
  atomic_store_explicit(&lw->done, 1, memory_order_relaxed);
  return NULL;
}

static void test_io_coalesced_wake_still_publishes(void) {
  late_waker lw = {.p = new_poller()};
  ax__poll_event evs[MAXEV];
  pthread_t th;
  ax__poller_wake(lw.p); /* the write in flight */
  CU_ASSERT_FATAL(pthread_create(&th, NULL, wake_coalesced, &lw) == 0);
  while (!atomic_load_explicit(&lw.done, memory_order_relaxed)) ax__cpu_relax();
  CU_ASSERT_EQUAL(ax__poller_wake_writes(lw.p), 1); /* it was coalesced */
  CU_ASSERT_EQUAL(poll_once(lw.p, 0, evs), 0);
  CU_ASSERT_EQUAL(lw.payload, 7); /* TSan: ordered by the wake flag alone */
  pthread_join(th, NULL);
  ax__poller_free(lw.p);
}

/* Ping-pong: the producer posts item i (plain payload + relaxed counter) and
 * wakes; the loop waits, sees it, acknowledges. A lost wakeup shows as a
 * wait that times out with an item posted; a missing happens-before as a
 * TSan report on the payload. */
enum { PINGS = 2000 };
typedef struct pingpong {
  ax__poller *p;
  int payload;
  _Atomic int posted; /* relaxed: ordering must come from the poller */
  _Atomic int acked;  /* loop -> producer: release/acquire */
} pingpong;

static void *producer(void *arg) {
  pingpong *pp = arg;
  for (int i = 1; i <= PINGS; i++) {
    while (atomic_load_explicit(&pp->acked, memory_order_acquire) != i - 1)
      ax__cpu_relax();
    pp->payload = i;
    atomic_store_explicit(&pp->posted, i, memory_order_relaxed);
    ax__poller_wake(pp->p);
  }
  return NULL;
}

static void test_io_wake_is_never_lost_in_ping_pong(void) {
  pingpong pp = {.p = new_poller()};
  ax__poll_event evs[MAXEV];
  pthread_t th;
  CU_ASSERT_FATAL(pthread_create(&th, NULL, producer, &pp) == 0);
  int got = 0;
  bool ok = true;
  while (got < PINGS && ok) {
    int n = 0;
    uint64_t t0 = ax__now_ns();
    ok = ax__poller_wait(pp.p, evs, MAXEV, 5000, &n) == AX_OK && n == 0;
    ok &= ms_since(t0) < 4000; /* the producer never pauses that long */
    int posted = atomic_load_explicit(&pp.posted, memory_order_relaxed);
    if (posted == got) continue; /* an older wake: wait again */
    ok &= posted == got + 1 && pp.payload == posted;
    got = posted;
    atomic_store_explicit(&pp.acked, got, memory_order_release);
  }
  CU_ASSERT(ok);
  CU_ASSERT_EQUAL(got, PINGS);
  while (got < PINGS) { /* on failure, let the producer finish */
    got = atomic_load_explicit(&pp.posted, memory_order_acquire);
    atomic_store_explicit(&pp.acked, got, memory_order_release);
  }
  pthread_join(th, NULL);
  CU_ASSERT(ax__poller_wake_writes(pp.p) <= PINGS);
  ax__poller_free(pp.p);
}

/* A nanosecond timeout (the reactor's precise wake for timers) ends the
 * wait, never before it has passed, with epoll_pwait2 and with the
 * fallback for kernels without it (whole ms, rounded up); a wake still
 * ends it early. Only lower bounds on the elapsed time: never a timing
 * assertion the other way. */
static void test_io_wait_ns_never_returns_before_its_timeout(void) {
  ax__poller *p = new_poller();
  ax__poll_event evs[MAXEV];
  const int64_t timeouts[] = {1, 250000, 1300000};
  for (int fallback = 0; fallback < 2; fallback++) {
    ax__poller_test_no_pwait2(fallback);
    for (size_t i = 0; i < sizeof timeouts / sizeof timeouts[0]; i++) {
      uint64_t t0 = ax__now_ns();
      int n = -1;
      CU_ASSERT_EQUAL(ax__poller_wait_ns(p, evs, MAXEV, timeouts[i], &n), AX_OK);
      uint64_t took = ax__now_ns() - t0;
      CU_ASSERT_EQUAL(n, 0);
      CU_ASSERT(took >= (uint64_t)timeouts[i]);
    }
    ax__poller_wake(p);
    int n = -1;
    CU_ASSERT_EQUAL(ax__poller_wait_ns(p, evs, MAXEV, -1, &n), AX_OK); /* returns: woken */
    CU_ASSERT_EQUAL(n, 0);
  }
  ax__poller_test_no_pwait2(false);
  ax__poller_free(p);
}

int main(void) {
  CU_pSuite s = ax_test_suite("io.poll");
  CU_ADD_TEST(s, test_io_pipe_readiness_in_and_out);
  CU_ADD_TEST(s, test_io_edge_triggered_one_event_per_edge);
  CU_ADD_TEST(s, test_io_timeout_without_events_returns_zero);
  CU_ADD_TEST(s, test_io_del_stops_events);
  CU_ADD_TEST(s, test_io_mod_changes_interest_and_udata);
  CU_ADD_TEST(s, test_io_peer_shutdown_reports_rdhup_then_hup);
  CU_ADD_TEST(s, test_io_invalid_arguments_are_errors);
  CU_ADD_TEST(s, test_io_wake_from_thread_returns_wait_early);
  CU_ADD_TEST(s, test_io_wakes_coalesce);
  CU_ADD_TEST(s, test_io_coalesced_wake_still_publishes);
  CU_ADD_TEST(s, test_io_wake_is_never_lost_in_ping_pong);
  CU_ADD_TEST(s, test_io_wait_ns_never_returns_before_its_timeout);
  return ax_test_run();
}
