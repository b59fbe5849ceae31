/* Axon tests: the socket layer's command queue (any thread -> reactor).
 * A waker that lands inside the reactor's command pass must never be lost:
 * forced deterministically through the test hook ax__io_cmd_hook (which
 * runs at the one point of the pass where a waker can interleave), and
 * exercised for real by bounded storms of client resets and of aborts
 * racing the flush of a full write queue to a peer that reads. After each,
 * a fresh client (and a brand-new listener) must still be served. Every
 * wait is on a condition with a generous bound. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "axon.h"
#include "io/socket.h"
#include "support/testutil.h"

#define WAIT_MS 30000
enum { MSG_ABORT = AX_MSG_USER, MSG_FLOOD };

static struct {
  _Atomic uint64_t accepted, closed, aborted, reset_closed, echo_bytes;
  _Atomic uint64_t conn[8]; /* first accepted conn ids (mode 0) */
  _Atomic uint16_t port;
  _Atomic uint64_t cur;     /* the flooder's current conn */
  _Atomic int abort_rc;
} G;

static ax_system *sys_new(void) {
  ax_system *sys = ax_test_system(2);
  memset(&G, 0, sizeof G);
  return sys;
}

static void sys_free(ax_system *sys) {
  atomic_store(&ax__io_cmd_hook, NULL);
  CU_ASSERT(ax_system_shutdown(sys) == AX_OK);
  ax_system_free(sys);
}

/* A blocking client with 10 s timeouts (a lost command shows as a timeout). */
static int cli(uint16_t port) { return ax_test_connect(port, 0, 10, 10); }

static void rst_close(int fd) {
  struct linger lg = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  close(fd);
}

/* One byte there and back, then a half-close that must end in EOF. */
static bool served(uint16_t port) {
  int fd = cli(port);
  if (fd < 0) return false;
  char c = 'q', r = 0;
  bool ok = send(fd, &c, 1, MSG_NOSIGNAL) == 1 && read(fd, &r, 1) == 1 && r == 'q';
  ok = ok && shutdown(fd, SHUT_WR) == 0 && read(fd, &r, 1) == 0;
  close(fd);
  return ok;
}

/* ---- echo: the connection's own actor (handed over) ---- */
typedef struct echo_st {
  ax_conn c;
  ax_buf *q[64];
  size_t off[64], len[64], n;
  bool closing;
} echo_st;

static bool echo_flush(echo_st *s) {
  size_t i = 0;
  for (; i < s->n; i++) {
    ax_err e = ax_conn_write_buf(s->c, s->q[i], s->off[i], s->len[i]);
    if (e == AX_EAGAIN) break;
    ax_buf_release(s->q[i]);
  }
  memmove(s->q, s->q + i, (s->n - i) * sizeof s->q[0]);
  memmove(s->off, s->off + i, (s->n - i) * sizeof s->off[0]);
  memmove(s->len, s->len + i, (s->n - i) * sizeof s->len[0]);
  s->n -= i;
  return s->n == 0;
}

static ax_err echo_init(ax_actor *self, void *state, const void *arg, size_t len) {
  (void)self;
  memcpy(&((echo_st *)state)->c, arg, len);
  return AX_OK;
}

static void echo_term(ax_actor *self, void *state, ax_reason r) {
  (void)self, (void)r;
  echo_st *s = state;
  for (size_t i = 0; i < s->n; i++) ax_buf_release(s->q[i]);
}

static ax_err echo_b(ax_actor *self, const ax_msg *m) {
  echo_st *s = ax_state(self);
  switch (m->type) {
  case AX_MSG_IO_DATA:
    atomic_fetch_add(&G.echo_bytes, m->len);
    if (s->n == 64) return AX_OK; /* cannot happen: paused below */
    ax_buf_retain(m->buf);
    s->q[s->n] = m->buf;
    s->off[s->n] = (size_t)((const char *)m->data - (const char *)ax_buf_data(m->buf));
    s->len[s->n++] = m->len;
    if (!echo_flush(s)) ax_conn_pause_read(s->c);
    return AX_OK;
  case AX_MSG_IO_DRAINED:
    if (echo_flush(s)) {
      if (s->closing) return ax_conn_close(s->c) == AX_OK ? AX_OK : AX_OK;
      ax_conn_resume_read(s->c);
    }
    return AX_OK;
  case AX_MSG_IO_PEER_SHUTDOWN:
    s->closing = true;
    if (s->n == 0) ax_conn_close(s->c);
    return AX_OK;
  case AX_MSG_IO_CLOSED:
    atomic_fetch_add(&G.closed, 1);
    if (((const ax_io_event *)m->data)->reason == AX_IO_CLOSE_ERROR)
      atomic_fetch_add(&G.reset_closed, 1);
    return ax_exit(self, ax_self(self), AX_REASON_NORMAL);
  default:
    return AX_OK;
  }
}

static const ax_actor_spec echo_spec = {.name = "echo", .behaviour = echo_b,
                                        .state_size = sizeof(echo_st), .init = echo_init,
                                        .terminate = echo_term};

/* ---- the listener's owner: mode 0 keeps its connections, mode 1 hands
 * each one to an echo actor ---- */
static ax_err srv_init(ax_actor *self, void *state, const void *arg, size_t len) {
  (void)len;
  *(int *)state = *(const int *)arg;
  ax_listener l;
  ax_err e = ax_listen(self, "127.0.0.1:0", NULL, &l);
  if (e == AX_OK) atomic_store(&G.port, ax_test_listener_port(l));
  return e;
}

static ax_err srv_b(ax_actor *self, const ax_msg *m) {
  int mode = *(int *)ax_state(self);
  ax_conn c = ax_io_msg_conn(self, m);
  switch (m->type) {
  case AX_MSG_IO_ACCEPTED: {
    c = ((const ax_io_conn_info *)m->data)->conn;
    uint64_t i = atomic_fetch_add(&G.accepted, 1);
    if (i < 8) atomic_store(&G.conn[i], c.id);
    if (mode == 1) {
      ax_pid child;
      if (ax_spawn(self, &echo_spec, &c, sizeof c, &child) != AX_OK) return ax_conn_abort(c), AX_OK;
      ax_conn_set_owner(c, child);
    }
    ax_conn_resume_read(c);
    return AX_OK;
  }
  case AX_MSG_IO_DATA: {
    size_t off = (size_t)((const char *)m->data - (const char *)ax_buf_data(m->buf));
    ax_conn_write_buf(c, m->buf, off, m->len);
    return AX_OK;
  }
  case AX_MSG_IO_PEER_SHUTDOWN:
    ax_conn_close(c);
    return AX_OK;
  case AX_MSG_IO_CLOSED:
    if (((const ax_io_event *)m->data)->conn.id) atomic_fetch_add(&G.closed, 1);
    return AX_OK;
  default:
    return AX_OK;
  }
}

static const ax_actor_spec srv_spec = {.name = "srv", .behaviour = srv_b,
                                       .state_size = sizeof(int), .init = srv_init};

static ax_pid start_srv(ax_system *sys, int mode) {
  ax_pid pid;
  atomic_store(&G.port, 0);
  CU_ASSERT_FATAL(ax_system_spawn(sys, &srv_spec, &mode, sizeof mode, &pid) == AX_OK);
  CU_ASSERT_FATAL(atomic_load(&G.port) != 0);
  return pid;
}

/* ---- the hook: a waker from "another thread" inside the window ---- */
static ax_system *hook_sys;
static _Atomic uint64_t hook_target;
static _Atomic int hook_armed, hook_fired;

static void window_hook(ax__io *io) {
  (void)io;
  if (!atomic_exchange(&hook_armed, 0)) return;
  /* A command on an object that is not queued: it appends and wakes. */
  ax_conn_resume_read((ax_conn){hook_sys, atomic_load(&hook_target)});
  atomic_store(&hook_fired, 1);
}

/* Arms the hook for one pass (its waker targets conn id `target`), starts
 * a pass with a command on conn `kick`, and waits until the hook ran. */
static void force_window_waker(ax_system *sys, uint64_t target, uint64_t kick) {
  hook_sys = sys;
  atomic_store(&hook_target, target);
  atomic_store(&hook_fired, 0);
  atomic_store(&hook_armed, 1);
  atomic_store(&ax__io_cmd_hook, window_hook);
  CU_ASSERT(ax_conn_resume_read((ax_conn){sys, kick}) == AX_OK);
  bool fired = false;
  for (int i = 0; i < WAIT_MS && !(fired = atomic_load(&hook_fired)); i++) ax_test_sleep_ms(1);
  CU_ASSERT_FATAL(fired);
}

/* Item 1, forced: a waker lands between the two steps of the reactor's
 * command pass. Every later command must still run: a fresh client is
 * served, and a peer's half-close ends in EOF. */
static void test_io_cmd_waker_in_window_is_not_lost(void) {
  ax_system *sys = sys_new();
  start_srv(sys, 0);
  uint16_t port = atomic_load(&G.port);
  int a = cli(port), b = cli(port);
  CU_ASSERT_FATAL(a >= 0 && b >= 0);
  CU_ASSERT_FATAL(ax_test_wait_count(&G.accepted, 2, WAIT_MS));
  force_window_waker(sys, atomic_load(&G.conn[1]), atomic_load(&G.conn[0]));
  /* Commands after the pass: the close of a (on its half-close), the
   * READ of a fresh connection. */
  char r;
  CU_ASSERT(shutdown(a, SHUT_WR) == 0);
  CU_ASSERT_EQUAL(read(a, &r, 1), 0); /* EOF (a timeout is -1) */
  CU_ASSERT(served(port));
  close(a);
  close(b);
  sys_free(sys);
}

/* Item 1, for real: rounds of connections that reset (SO_LINGER 0) while
 * the server is writing to them, a few seconds in all; then every one of
 * them has been closed and a fresh client is served. */
static void test_io_reset_storm_keeps_serving(void) {
  enum { PER_ROUND = 200, MAX_ROUNDS = 400, PAYLOAD = 32768 };
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur < 4 * PER_ROUND + 100 && rl.rlim_max >= 4 * PER_ROUND + 100) {
    rl.rlim_cur = 4 * PER_ROUND + 100;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  ax_system *sys = sys_new();
  start_srv(sys, 1);
  uint16_t port = atomic_load(&G.port);
  static char payload[PAYLOAD];
  memset(payload, 'z', sizeof payload);
  static int fds[PER_ROUND];
  struct timespec t0, t;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  uint64_t opened = 0;
  int rounds = 0;
  for (; rounds < MAX_ROUNDS; rounds++) {
    for (int i = 0; i < PER_ROUND; i++) {
      fds[i] = cli(port);
      if (fds[i] < 0) continue;
      opened++;
      /* Non-blocking send: part of it is echoed back while we reset. */
      (void)send(fds[i], payload, sizeof payload, MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    for (int i = 0; i < PER_ROUND; i++)
      if (fds[i] >= 0) rst_close(fds[i]);
    clock_gettime(CLOCK_MONOTONIC, &t);
    if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 > 3000) break;
  }
  fprintf(stderr, "(%d rounds, %llu connections) ", rounds + 1, (unsigned long long)opened);
  CU_ASSERT(opened > 0);
  CU_ASSERT(ax_test_wait_count(&G.accepted, opened, WAIT_MS));
  CU_ASSERT(ax_test_wait_count(&G.closed, opened, WAIT_MS)); /* each one closed */
  CU_ASSERT(served(port));
  sys_free(sys);
}

/* ---- item 17: aborts racing the flush of a full queue to a reading peer ---- */
static char flood_data[65536];

static void flood(ax_conn c) {
  while (ax_conn_write(c, flood_data, sizeof flood_data) == AX_OK) {
  }
}

static ax_err fl_init(ax_actor *self, void *state, const void *arg, size_t len) {
  (void)state, (void)arg, (void)len;
  ax_listener l;
  ax_err e = ax_listen(self, "127.0.0.1:0", NULL, &l);
  if (e == AX_OK) atomic_store(&G.port, ax_test_listener_port(l));
  return e;
}

static ax_err fl_b(ax_actor *self, const ax_msg *m) {
  ax_conn cur = {ax_actor_system(self), atomic_load(&G.cur)};
  switch (m->type) {
  case AX_MSG_IO_ACCEPTED:
    cur = ((const ax_io_conn_info *)m->data)->conn;
    atomic_store(&G.cur, cur.id);
    atomic_fetch_add(&G.accepted, 1);
    ax_conn_resume_read(cur);
    flood(cur);
    return AX_OK;
  case AX_MSG_IO_DRAINED:
    if (m->ref == cur.id) flood(cur);
    return AX_OK;
  case MSG_ABORT:
    atomic_store(&G.abort_rc, ax_conn_abort(cur));
    return AX_OK;
  case AX_MSG_IO_CLOSED: {
    const ax_io_event *ev = m->data;
    if (!ev->conn.id) return AX_OK;
    atomic_fetch_add(&G.closed, 1);
    if (ev->reason == AX_IO_CLOSE_ABORT) atomic_fetch_add(&G.aborted, 1);
    return AX_OK;
  }
  default:
    return AX_OK;
  }
}

static const ax_actor_spec fl_spec = {.name = "flooder", .behaviour = fl_b, .init = fl_init};

/* Spawns the flooder (its data filled in); returns its listener's port. */
static uint16_t start_flooder(ax_system *sys, ax_pid *fl) {
  memset(flood_data, 'f', sizeof flood_data);
  CU_ASSERT_FATAL(ax_system_spawn(sys, &fl_spec, NULL, 0, fl) == AX_OK);
  return atomic_load(&G.port);
}

/* One round: connect, read while the server floods, ask for the abort
 * after `before` bytes, keep reading: the stream must end in a reset (or
 * EOF) rather than a read timeout, and CLOSED(ABORT) must follow. */
static bool abort_round(ax_system *sys, ax_pid fl, uint16_t port, size_t before, int *fd_out) {
  uint64_t n0 = atomic_load(&G.aborted);
  int fd = cli(port);
  if (fd < 0) return false;
  static char buf[65536];
  size_t got = 0;
  bool asked = false, ended = false;
  for (;;) {
    ssize_t k = read(fd, buf, sizeof buf);
    if (k > 0) {
      got += (size_t)k;
      if (!asked && got >= before) {
        asked = true;
        if (fd_out) *fd_out = fd; /* the caller forces the window now */
        if (fd_out) return true;
        CU_ASSERT(ax_system_send(sys, fl, MSG_ABORT, NULL, 0) == AX_OK);
      }
      continue;
    }
    ended = k == 0 || (k < 0 && errno == ECONNRESET);
    break;
  }
  close(fd);
  bool closed = ax_test_wait_count(&G.aborted, n0 + 1, WAIT_MS);
  return ended && closed && atomic_load(&G.abort_rc) == AX_OK;
}

/* Reads fd until it ends: true for a reset or EOF, false for a timeout. */
static bool reads_to_end(int fd) {
  static char buf[65536];
  for (;;) {
    ssize_t k = read(fd, buf, sizeof buf);
    if (k > 0) continue;
    return k == 0 || (k < 0 && errno == ECONNRESET);
  }
}

/* Item 17, forced: a waker lands in the command pass's window while the
 * reactor flushes a full queue to a reading peer; the abort that follows
 * must still reset the peer and close the connection. */
static void test_io_abort_after_window_waker_not_lost(void) {
  ax_system *sys = sys_new();
  ax_pid fl;
  uint16_t port = start_flooder(sys, &fl);
  /* An idle second connection is the hook's waker target. */
  int idle = cli(port);
  CU_ASSERT_FATAL(idle >= 0);
  CU_ASSERT_FATAL(ax_test_wait_count(&G.accepted, 1, WAIT_MS));
  uint64_t idle_id = atomic_load(&G.cur);
  int fd = -1;
  CU_ASSERT_FATAL(abort_round(sys, fl, port, 256 * 1024, &fd));
  uint64_t flooded = atomic_load(&G.cur);
  CU_ASSERT_FATAL(flooded != idle_id);
  force_window_waker(sys, idle_id, flooded);
  CU_ASSERT(ax_system_send(sys, fl, MSG_ABORT, NULL, 0) == AX_OK);
  CU_ASSERT(reads_to_end(fd)); /* a lost abort: the whole queue, then a timeout */
  close(fd);
  CU_ASSERT(ax_test_wait_count(&G.aborted, 1, WAIT_MS));
  CU_ASSERT_EQUAL(atomic_load(&G.abort_rc), AX_OK);
  rst_close(idle);
  sys_free(sys);
}

/* Item 17, for real: rounds of abort-while-flushing for a few seconds;
 * every abort resets its peer and closes with reason ABORT, and afterwards
 * a brand-new listener serves a client. */
static void test_io_abort_racing_flush_storm(void) {
  ax_system *sys = sys_new();
  ax_pid fl;
  uint16_t port = start_flooder(sys, &fl);
  struct timespec t0, t;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  int rounds = 0, ok = 0; /* rounds tried, rounds that passed */
  while (rounds < 2000) {
    size_t before = (size_t)(rounds % 64) * 8192 + 1; /* vary the moment */
    bool r = abort_round(sys, fl, port, before, NULL);
    rounds++;
    ok += r;
    if (!r) break;
    clock_gettime(CLOCK_MONOTONIC, &t);
    if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 > 3000) break;
  }
  fprintf(stderr, "(%d rounds) ", ok);
  /* (It said ok == rounds + 1, true only when the 3 s bound ended the
   * loop: a fast machine finishing all 2000 rounds failed it.) */
  CU_ASSERT_EQUAL(ok, rounds);
  /* A brand-new listener (its REGISTER is a command) is served. */
  start_srv(sys, 1);
  CU_ASSERT(served(atomic_load(&G.port)));
  sys_free(sys);
}

/* ---- an owner change racing the close ---- */
static _Atomic uint64_t fin_target, fin_owner;
static _Atomic int fin_fired, fin_indexed;

static void finalize_hook(ax__iobj *o) {
  if (o->id != atomic_load(&fin_target) || atomic_load(&fin_fired)) return;
  /* An API caller that acquired the handle before the close moves the
   * socket to another owner now, between the close's removal from the
   * owner index and the kill of the handle. */
  ax_conn_set_owner((ax_conn){hook_sys, o->id}, (ax_pid){atomic_load(&fin_owner)});
  atomic_store(&fin_indexed, o->indexed);
  atomic_store(&fin_fired, 1);
}

static ax_err idle_b(ax_actor *self, const ax_msg *m) {
  (void)self, (void)m;
  return AX_OK;
}

/* ax_conn_set_owner landing inside a close put the closing socket back in
 * the owner index, where nothing removed it: the graveyard freed it and the
 * new owner's stop then walked freed memory (TSan: heap-use-after-free in
 * io_on_stop, io.cmdq reset storm and introspect.serve, ~1 run in 30).
 * Forced here with the hook; a finalized socket must never be indexed. */
static void test_io_set_owner_racing_close_not_indexed(void) {
  static const ax_actor_spec idle_spec = {.name = "idle", .behaviour = idle_b};
  ax_system *sys = sys_new();
  start_srv(sys, 0);
  uint16_t port = atomic_load(&G.port);
  int a = cli(port);
  CU_ASSERT_FATAL(a >= 0);
  CU_ASSERT_FATAL(ax_test_wait_count(&G.accepted, 1, WAIT_MS));
  ax_pid other;
  CU_ASSERT_FATAL(ax_system_spawn(sys, &idle_spec, NULL, 0, &other) == AX_OK);
  hook_sys = sys;
  atomic_store(&fin_owner, other.id);
  atomic_store(&fin_fired, 0);
  atomic_store(&fin_target, atomic_load(&G.conn[0]));
  atomic_store(&ax__io_finalize_hook, finalize_hook);
  CU_ASSERT(ax_conn_abort((ax_conn){sys, atomic_load(&G.conn[0])}) == AX_OK);
  bool fired = false;
  for (int i = 0; i < WAIT_MS && !(fired = atomic_load(&fin_fired)); i++) ax_test_sleep_ms(1);
  atomic_store(&ax__io_finalize_hook, NULL);
  CU_ASSERT_FATAL(fired);
  CU_ASSERT_EQUAL(atomic_load(&fin_indexed), 0);
  /* Passes for the graveyard, then the other owner stops: its on-stop
   * must not meet the freed socket (ASan/TSan would report it). */
  CU_ASSERT(served(port));
  CU_ASSERT(served(port));
  CU_ASSERT(ax_system_exit(sys, other, AX_REASON_KILL) == AX_OK);
  CU_ASSERT(served(port));
  close(a);
  sys_free(sys);
}

int main(void) {
  CU_pSuite s = ax_test_suite("io.cmdq");
  const char *only = getenv("AX_TEST_ONLY"); /* a substring of the test names to run */
#define ADD(t) \
  if (!only || strstr(#t, only)) CU_ADD_TEST(s, t)
  ADD(test_io_cmd_waker_in_window_is_not_lost);
  ADD(test_io_reset_storm_keeps_serving);
  ADD(test_io_abort_after_window_waker_not_lost);
  ADD(test_io_abort_racing_flush_storm);
  ADD(test_io_set_owner_racing_close_not_indexed);
  return ax_test_run();
}
