/* Axon tests: workers that drive the reactor when they park (sched.c,
 * reactor.c). A lost wake-up in the park/drive/unpark protocol shows as a
 * reply that never comes: every wait here is bounded (10 s socket
 * timeouts, 30 s condition waits), never a timing assertion.
 *  - idle rounds: request/reply over a socket with every worker parked in
 *    between (one of them blocked in the poller as the driver);
 *  - replies sent from a timer, and reading resumed from another thread:
 *    the work (the timer message, the data read by the socket layer's
 *    command tick) appears inside the driver's own pass, before its
 *    poller wait, which then must not block;
 *  - all workers busy: the reactor thread must keep I/O going;
 *  - unpark from a plain thread while a worker drives: the notify must
 *    reach it through the poller, not its condition variable;
 *  - a notify whose poller wake another thread's pass consumed before the
 *    notified worker began its own pass (a test hook in park_wait places
 *    both at that point): the driver must not block in the poller. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "actor/actor_int.h" /* ax__sched_drive_hook */
#include "axon.h"
#include "reactor/reactor.h"
#include "support/testutil.h"

#define WAIT_MS 30000
enum { MSG_REPLY = AX_MSG_USER, MSG_SPIN, MSG_PING };
enum { MODE_DIRECT, MODE_TIMER, MODE_RESUME };

static struct {
  _Atomic uint16_t port;
  _Atomic uint64_t pings, spins, closed;
  _Atomic uint64_t new_conn; /* MODE_RESUME: an accepted conn not reading yet */
  _Atomic bool stop_spin;
  int mode;
} G;

typedef struct conn_state {
  ax_conn conn;
} conn_state;

static ax_err conn_init(ax_actor *self, void *state, const void *arg, size_t len) {
  (void)self;
  memcpy(&((conn_state *)state)->conn, arg, len);
  return AX_OK;
}

static ax_err conn_b(ax_actor *self, const ax_msg *m) {
  conn_state *s = ax_state(self);
  switch (m->type) {
  case AX_MSG_IO_DATA:
    if (G.mode == MODE_TIMER)
      return ax_send_after(self, 0, ax_self(self), MSG_REPLY, m->data, m->len, NULL);
    return ax_conn_write(s->conn, m->data, m->len);
  case MSG_REPLY:
    return ax_conn_write(s->conn, m->data, m->len);
  case AX_MSG_IO_PEER_SHUTDOWN:
    return ax_conn_close(s->conn);
  case AX_MSG_IO_CLOSED:
    atomic_fetch_add(&G.closed, 1);
    return ax_exit(self, ax_self(self), AX_REASON_NORMAL);
  default:
    return AX_OK;
  }
}

static const ax_actor_spec conn_spec = {.name = "drv-conn", .behaviour = conn_b,
                                        .state_size = sizeof(conn_state), .init = conn_init};

static ax_err lsn_init(ax_actor *self, void *state, const void *arg, size_t len) {
  (void)state, (void)arg, (void)len;
  ax_listener l;
  ax_err e = ax_system_listen(ax_actor_system(self), ax_self(self), "127.0.0.1:0", NULL, &l);
  if (e == AX_OK) atomic_store(&G.port, ax_test_listener_port(l));
  return e;
}

static ax_err lsn_b(ax_actor *self, const ax_msg *m) {
  if (m->type != AX_MSG_IO_ACCEPTED) return AX_OK;
  ax_conn c = ((const ax_io_conn_info *)m->data)->conn;
  ax_pid child;
  if (ax_spawn(self, &conn_spec, &c, sizeof c, &child) != AX_OK || ax_conn_set_owner(c, child) != AX_OK)
    ax_conn_abort(c);
  else if (G.mode == MODE_RESUME)
    atomic_store(&G.new_conn, c.id); /* the test resumes it */
  else if (ax_conn_resume_read(c) != AX_OK)
    ax_conn_abort(c);
  return AX_OK;
}

static const ax_actor_spec lsn_spec = {.name = "drv-listener", .behaviour = lsn_b, .init = lsn_init};

static ax_system *start(int mode) {
  memset(&G, 0, sizeof G);
  G.mode = mode;
  ax_system *sys = ax_test_system(2);
  ax_pid lp;
  CU_ASSERT_FATAL(ax_system_spawn(sys, &lsn_spec, NULL, 0, &lp) == AX_OK);
  CU_ASSERT_FATAL(atomic_load(&G.port) != 0);
  return sys;
}

static void stop(ax_system *sys) {
  CU_ASSERT(ax_system_shutdown(sys) == AX_OK);
  ax_system_free(sys);
}

/* rounds request/reply round trips of one byte on one connection; every
 * pause_every rounds the client waits a little so that every worker parks
 * (one in the poller as the driver). Returns the rounds completed. */
static int round_trips(int rounds, int pause_every) {
  int fd = ax_test_connect(atomic_load(&G.port), 0, 10, 10);
  if (fd < 0) return 0;
  int done = 0;
  for (; done < rounds; done++) {
    char out = (char)done, in = 0;
    if (send(fd, &out, 1, MSG_NOSIGNAL) != 1) break;
    ssize_t n;
    do n = read(fd, &in, 1);
    while (n < 0 && errno == EINTR);
    if (n != 1 || in != out) break; /* a timeout: a lost wake-up */
    if (pause_every && done % pause_every == 0) ax_test_sleep_ms(2);
  }
  close(fd);
  if (done != rounds) fprintf(stderr, "\n  %d of %d round trips", done, rounds);
  return done;
}

static void test_idle_round_trips(void) {
  ax_system *sys = start(MODE_DIRECT);
  CU_ASSERT_EQUAL(round_trips(3000, 20), 3000);
  stop(sys);
}

static void test_timer_replies(void) {
  ax_system *sys = start(MODE_TIMER);
  CU_ASSERT_EQUAL(round_trips(1500, 10), 1500);
  stop(sys);
}

/* The test thread resumes reading on a new connection (whose byte is
 * already in the socket) while every worker is parked, one blocked in the
 * poller as the driver: the command's wake ends that wait, and the
 * driver's next pass runs the command in the socket layer's tick, which
 * reads the byte and delivers it to the owner on the driving worker's own
 * queue. Nothing else happens on the socket until the reply, so a driver
 * that then blocks in the poller wait on its own work never replies. */
static void test_resume_from_tick(void) {
  ax_system *sys = start(MODE_RESUME);
  uint64_t i = 0;
  for (; i < 300; i++) {
    int fd = ax_test_connect(atomic_load(&G.port), 0, 10, 10);
    if (fd < 0) break;
    char b = 'x';
    bool ok = send(fd, &b, 1, MSG_NOSIGNAL) == 1 && ax_test_wait_count(&G.new_conn, 1, WAIT_MS);
    ax_conn c = {sys, atomic_exchange(&G.new_conn, 0)};
    ax_test_sleep_ms(1); /* let every worker park */
    ok = ok && ax_conn_resume_read(c) == AX_OK;
    ssize_t n;
    do n = read(fd, &b, 1); /* the echo */
    while (n < 0 && errno == EINTR);
    close(fd);
    if (!ok || n != 1) break;
  }
  if (i != 300) fprintf(stderr, "\n  %llu of 300 echoes after a resume", (unsigned long long)i);
  CU_ASSERT_EQUAL(i, 300);
  stop(sys);
}

/* ---- every worker busy ---- */

static ax_err spin_b(ax_actor *self, const ax_msg *m) {
  if (m->type != MSG_SPIN || atomic_load(&G.stop_spin)) return AX_OK;
  ax_test_busy_ns(5000000); /* ~5 ms of work per run */
  atomic_fetch_add(&G.spins, 1);
  return ax_send(self, ax_self(self), MSG_SPIN, NULL, 0);
}

static const ax_actor_spec spin_spec = {.name = "drv-spin", .behaviour = spin_b};

static void test_busy_workers_io(void) {
  ax_system *sys = start(MODE_DIRECT);
  uint32_t n = ax_system_workers(sys);
  for (uint32_t i = 0; i < n; i++) {
    ax_pid p;
    CU_ASSERT_FATAL(ax_system_spawn(sys, &spin_spec, NULL, 0, &p) == AX_OK);
    CU_ASSERT_FATAL(ax_system_send(sys, p, MSG_SPIN, NULL, 0) == AX_OK);
  }
  CU_ASSERT(ax_test_wait_count(&G.spins, 2ull * n, WAIT_MS));
  CU_ASSERT_EQUAL(round_trips(200, 0), 200);
  atomic_store(&G.stop_spin, true);
  stop(sys);
}

/* ---- unpark of a driving worker from a plain thread ---- */

static ax_err ping_b(ax_actor *self, const ax_msg *m) {
  (void)self;
  if (m->type == MSG_PING) atomic_fetch_add(&G.pings, 1);
  return AX_OK;
}

static const ax_actor_spec ping_spec = {.name = "drv-ping", .behaviour = ping_b};

static void test_unpark_driver_from_thread(void) {
  ax_system *sys = start(MODE_DIRECT);
  ax_pid p;
  CU_ASSERT_FATAL(ax_system_spawn(sys, &ping_spec, NULL, 0, &p) == AX_OK);
  uint64_t i = 0;
  for (; i < 2000; i++) {
    if (ax_system_send(sys, p, MSG_PING, NULL, 0) != AX_OK ||
        !ax_test_wait_count(&G.pings, i + 1, WAIT_MS))
      break;
    if (i % 20 == 0) ax_test_sleep_ms(2); /* every worker parks */
  }
  CU_ASSERT_EQUAL(i, 2000);
  stop(sys);
}

/* ---- a notify's poller wake consumed by another pass ---- */

static struct {
  ax_system *sys;
  ax_pid target;
  _Atomic bool armed, go, sent, fired, quit;
  _Atomic uint64_t got;
} H;

static ax_err count_b(ax_actor *self, const ax_msg *m) {
  (void)self;
  if (m->type == MSG_PING) atomic_fetch_add(&H.got, 1);
  return AX_OK;
}

/* A plain thread's send, on request: inject + notify_parked, which finds
 * the only worker parked with driving set and wakes the poller. */
static void *hook_sender(void *arg) {
  (void)arg;
  while (!atomic_load(&H.quit)) {
    if (!atomic_exchange(&H.go, false)) {
      sched_yield();
      continue;
    }
    ax_system_send(H.sys, H.target, MSG_PING, NULL, 0);
    atomic_store(&H.sent, true);
  }
  return NULL;
}

/* In the parking worker, between driving = true and its pass: the notify
 * arrives, then another pass (a searching worker's non-blocking poll)
 * consumes its poller wake. Bounded: the sender answers within 10 s. */
static void drive_hook(ax_system *sys) {
  if (sys != H.sys || !atomic_exchange(&H.armed, false)) return;
  atomic_store(&H.go, true);
  for (int i = 0; i < 10000 && !atomic_load(&H.sent); i++) ax_test_sleep_ms(1);
  ax__reactor_poll(sys->reactor);
  atomic_store(&H.fired, true);
}

static bool wait_flag(_Atomic bool *f, unsigned ms) {
  for (unsigned i = 0; i < ms && !atomic_load(f); i++) ax_test_sleep_ms(1);
  return atomic_load(f);
}

static void test_notify_wake_consumed_before_drive(void) {
  static const ax_actor_spec spec = {.name = "count", .behaviour = count_b};
  memset(&H, 0, sizeof(H));
  H.sys = ax_test_system(1);
  CU_ASSERT_FATAL(ax_system_spawn(H.sys, &spec, NULL, 0, &H.target) == AX_OK);
  pthread_t t;
  CU_ASSERT_FATAL(pthread_create(&t, NULL, hook_sender, NULL) == 0);
  atomic_store(&ax__sched_drive_hook, drive_hook);
  uint64_t rounds = 0;
  for (; rounds < 20; rounds++) {
    atomic_store(&H.sent, false);
    atomic_store(&H.fired, false);
    atomic_store(&H.armed, true);
    /* The worker runs this ping, parks, and the hook fires at its park. */
    CU_ASSERT_EQUAL(ax_system_send(H.sys, H.target, MSG_PING, NULL, 0), AX_OK);
    if (!ax_test_wait_count(&H.got, 2 * rounds + 2, 10000)) break; /* both pings ran */
    if (!wait_flag(&H.fired, 10000)) break;
  }
  if (rounds != 20)
    fprintf(stderr, "\n  %llu of 20 rounds, %llu of %llu pings ran", (unsigned long long)rounds,
            (unsigned long long)atomic_load(&H.got), (unsigned long long)(2 * rounds + 2));
  CU_ASSERT_EQUAL(rounds, 20);
  atomic_store(&ax__sched_drive_hook, NULL);
  /* A driver stuck in the poller (the failure) would hold up the shutdown's
   * wait for the actor: end its wait so the test ends. */
  if (rounds != 20) ax__reactor_wake(H.sys->reactor);
  atomic_store(&H.armed, false);
  atomic_store(&H.quit, true);
  pthread_join(t, NULL);
  ax_system_free(H.sys); /* stopping wakes the poller: bounded either way */
}

int main(void) {
  CU_pSuite s = ax_test_suite("sched.driver");
  CU_add_test(s, "idle_round_trips", test_idle_round_trips);
  CU_add_test(s, "timer_replies", test_timer_replies);
  CU_add_test(s, "resume_from_tick", test_resume_from_tick);
  CU_add_test(s, "busy_workers_io", test_busy_workers_io);
  CU_add_test(s, "unpark_driver_from_thread", test_unpark_driver_from_thread);
  CU_add_test(s, "notify_wake_consumed_before_drive", test_notify_wake_consumed_before_drive);
  return ax_test_run();
}
