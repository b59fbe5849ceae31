/* Axon tests: whole socket scenarios out of memory. With the fail-Nth
 * allocation hook (src/base/alloc.c) armed before anything is set up, one
 * scenario runs end to end: an actor listens (in its init), accepts a
 * client, echoes every read as a three-part ax_conn_writev (a copied "[",
 * the read slab by reference, a copied "]") followed by a 64 KiB
 * ax_conn_write to a client that does not read yet (so the write queue
 * grows), then closes gracefully on the client's half-close; meanwhile it
 * dials its own listener with ax_connect, writes and closes that one too.
 * For every N (one failure at N, and every allocation from N on):
 *  - each call fails with AX_ENOMEM or works (spawn of the listener: its
 *    init's ax_listen error);
 *  - the client sees a well-formed prefix of the echo, in order, then the
 *    end of the stream (no hang, no corrupted or reordered bytes);
 *  - the client's connection, which reached the listener, is either
 *    accepted (the owner is told) or dropped with a log line, never
 *    silently;
 *  - the owner hears exactly one CLOSED per connection it was told about,
 *    counted once the listener has taken every connection made to it (a
 *    probe connection, made last, accepted last: the backlog's order);
 *  - once the hook is off a fresh scenario of the same kind succeeds
 *    completely on a new system;
 *  - nothing leaks (LeakSanitizer in the ASan build checks at exit). */
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
#define BIG 65536
#define LINES 4

enum { T_DIAL = AX_MSG_USER };

static struct {
  _Atomic uint64_t accepted, closed, other_closed, write_enomem, write_other, dial_ok, dial_closed,
      dial_err, dial_write_ok;
  _Atomic uint16_t port;
  _Atomic uint64_t conn, dial;
  _Atomic int listen_err;
  _Atomic uint64_t accept_dropped; /* log lines of a connection accepted and dropped */
  _Atomic uint16_t probe_port;     /* the probe's own port, set before it connects */
  _Atomic uint64_t probe_conn, probe_closed;
} G;

/* The system's log: counts the lines of an accepted connection dropped
 * (src/io/socket_listen.c, accepted()), and prints every line as the
 * default sink would. Any thread. */
static void log_sink(ax_log_level level, const char *line, void *arg) {
  (void)level, (void)arg;
  if (strstr(line, "accepting on") || strstr(line, "an accepted") ||
      strstr(line, "dropped a connection"))
    atomic_fetch_add(&G.accept_dropped, 1);
  fprintf(stderr, "axon: %s\n", line);
}

/* The port of "host:port" (an ax_io_conn_info's peer), or 0. */
static uint16_t peer_port(const char *peer) {
  const char *colon = strrchr(peer, ':');
  return colon ? (uint16_t)strtoul(colon + 1, NULL, 10) : 0;
}

static char big[BIG];

static ax_err own_init(ax_actor *self, void *state, const void *arg, size_t len) {
  (void)state, (void)arg, (void)len;
  ax_io_opts o;
  ax_io_opts_init(&o);
  o.zerocopy_min = 0;
  ax_listener l;
  ax_err e = ax_listen(self, "127.0.0.1:0", &o, &l);
  atomic_store(&G.listen_err, e);
  if (e == AX_OK) atomic_store(&G.port, ax_test_listener_port(l));
  return e;
}

static void count_write(ax_conn c, ax_err e) {
  if (e == AX_OK) return;
  if (e == AX_ENOMEM) {
    atomic_fetch_add(&G.write_enomem, 1);
    ax_conn_abort(c); /* the stream would have a hole: end it */
  } else if (e != AX_ECLOSED) {
    atomic_fetch_add(&G.write_other, 1);
    ax_conn_abort(c);
  }
}

static ax_err own_b(ax_actor *self, const ax_msg *m) {
  ax_conn c = ax_io_msg_conn(self, m);
  switch (m->type) {
  case T_DIAL: {
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%u", (unsigned)atomic_load(&G.port));
    ax_conn d;
    ax_err e = ax_connect(self, addr, NULL, &d);
    if (e == AX_OK) atomic_store(&G.dial, d.id);
    else if (e == AX_ENOMEM) atomic_fetch_add(&G.dial_err, 1);
    else atomic_fetch_add(&G.write_other, 1);
    return AX_OK;
  }
  case AX_MSG_IO_CONNECTED: {
    atomic_fetch_add(&G.dial_ok, 1);
    ax_err e = ax_conn_write(c, "dial", 4);
    if (e == AX_OK) atomic_fetch_add(&G.dial_write_ok, 1);
    else count_write(c, e);
    ax_conn_close(c);
    return AX_OK;
  }
  case AX_MSG_IO_ERROR:
    if (((const ax_io_event *)m->data)->conn.id == atomic_load(&G.dial))
      atomic_fetch_add(&G.dial_err, 1);
    return AX_OK;
  case AX_MSG_IO_ACCEPTED: {
    c = ((const ax_io_conn_info *)m->data)->conn;
    uint16_t pp = atomic_load(&G.probe_port);
    if (pp && peer_port(((const ax_io_conn_info *)m->data)->peer) == pp)
      atomic_store(&G.probe_conn, c.id);
    if (atomic_load(&G.conn) == 0) {
      atomic_store(&G.conn, c.id);
      atomic_fetch_add(&G.accepted, 1);
    } else {
      /* our own dial, accepted: read it to the end and close */
      atomic_fetch_add(&G.accepted, 1);
    }
    ax_err e = ax_conn_resume_read(c);
    if (e != AX_OK && e != AX_ECLOSED) atomic_fetch_add(&G.write_other, 1);
    return AX_OK;
  }
  case AX_MSG_IO_DATA:
    if (c.id == atomic_load(&G.conn)) {
      ax_iov v[3] = {{"[", 1, NULL}, {m->data, m->len, m->buf}, {"]", 1, NULL}};
      ax_err e = ax_conn_writev(c, v, 3);
      if (e == AX_OK) e = ax_conn_write(c, big, BIG);
      count_write(c, e);
    }
    return AX_OK;
  case AX_MSG_IO_PEER_SHUTDOWN:
    ax_conn_close(c);
    return AX_OK;
  case AX_MSG_IO_CLOSED: {
    const ax_io_event *ev = m->data;
    if (!ev->conn.id) return AX_OK; /* the listener, at shutdown */
    if (ev->conn.id == atomic_load(&G.dial)) atomic_fetch_add(&G.dial_closed, 1);
    else atomic_fetch_add(&G.closed, 1);
    if (ev->conn.id == atomic_load(&G.probe_conn)) atomic_store(&G.probe_closed, 1);
    return AX_OK;
  }
  default:
    return AX_OK;
  }
}

static const ax_actor_spec own_spec = {.name = "owner", .behaviour = own_b, .init = own_init};

/* Checks that got[0..n) is a well-formed prefix of the echo of sent:
 * records "[" data "]" then BIG bytes of big; the data of all records
 * concatenated is a prefix of sent. Returns the bytes of sent echoed. */
static long parse_echo(const char *got, size_t n, const char *sent, size_t sent_n) {
  size_t i = 0, echoed = 0;
  while (i < n) {
    if (got[i] != '[') return -1;
    i++;
    while (i < n && got[i] != ']') {
      if (echoed >= sent_n || got[i] != sent[echoed]) return -1;
      echoed++, i++;
    }
    if (i == n) break;
    i++; /* ']' */
    size_t k = n - i < BIG ? n - i : BIG;
    if (memcmp(got + i, big, k) != 0) return -1;
    i += k;
  }
  return (long)echoed;
}

/* The client: sends LINES lines, half-closes, reads to the end. */
static bool client_run(uint16_t port, long *echoed, bool *complete, bool *connected) {
  int fd = ax_test_socket(4096, WAIT_MS / 1000, WAIT_MS / 1000);
  *echoed = 0;
  *complete = false;
  *connected = false;
  if (fd < 0) return false;
  char sent[LINES * 16];
  size_t sn = 0;
  for (int i = 0; i < LINES; i++) sn += (size_t)snprintf(sent + sn, sizeof sent - sn, "line %d\n", i);
  bool ended = true;
  if (ax_test_connect_fd(fd, port)) {
    *connected = true;
    (void)send(fd, sent, sn, MSG_NOSIGNAL);
    (void)shutdown(fd, SHUT_WR);
    size_t cap = (LINES + 1) * (BIG + 64), n = 0;
    char *got = malloc(cap);
    ended = false;
    for (;;) {
      ssize_t k = read(fd, got + n, cap - n);
      if (k > 0) {
        n += (size_t)k;
        if (n == cap) break;
        continue;
      }
      ended = k == 0 || (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
      break;
    }
    *echoed = parse_echo(got, n, sent, sn);
    /* complete: every byte echoed, each followed by its block */
    *complete = *echoed == (long)sn && ended;
    free(got);
  }
  close(fd);
  return ended;
}

typedef struct outcome {
  bool failed, complete;
} outcome;

static bool client_accounted(void *arg) {
  (void)arg;
  return atomic_load(&G.conn) != 0 || atomic_load(&G.accept_dropped) != 0;
}

/* Connects from a port set in G.probe_port first (so that the owner can
 * tell its ACCEPTED from the others) and closes at once: the owner reads
 * the end and closes its side. False if the probe could not connect. */
static bool probe_connect(uint16_t port) {
  int fd = ax_test_socket(4096, WAIT_MS / 1000, WAIT_MS / 1000);
  if (fd < 0) return false;
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t al = sizeof a;
  bool ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
            getsockname(fd, (struct sockaddr *)&a, &al) == 0;
  if (ok) {
    atomic_store(&G.probe_port, ntohs(a.sin_port));
    ok = ax_test_connect_fd(fd, port);
  }
  close(fd);
  return ok;
}

static outcome scenario(long n, long count) {
  memset(&G, 0, sizeof G);
  ax_system *sys = ax_test_system_log(2, log_sink, NULL, AX_LOG_WARN);
  long before = ax__alloc_failures();
  ax__alloc_fail_range(n, count);
  ax_pid owner;
  ax_err se = ax_system_spawn(sys, &own_spec, NULL, 0, &owner);
  bool complete = false;
  if (se != AX_OK) {
    /* the listener could not be set up: its error, or the spawn's own */
    if (se != AX_ENOMEM && !((int)se == atomic_load(&G.listen_err)))
      fprintf(stderr, "\n  n=%ld count=%ld: spawn %s listen %s", n, count, ax_strerror(se),
              ax_strerror(atomic_load(&G.listen_err)));
    CU_ASSERT(se == AX_ENOMEM || ((int)se == atomic_load(&G.listen_err)));
  } else {
    uint16_t port = atomic_load(&G.port);
    CU_ASSERT_FATAL(port != 0);
    long echoed;
    bool connected;
    bool ended = client_run(port, &echoed, &complete, &connected);
    /* Its connection reached the listener: accepted, or dropped with a
     * log line, never silently */
    if (connected) {
      bool accounted = ax_test_wait(client_accounted, NULL, WAIT_MS);
      if (!accounted) fprintf(stderr, "\n  n=%ld count=%ld: the client's connection vanished", n, count);
      CU_ASSERT(accounted);
    }
    /* then the dial (after the client: the first accepted is the client) */
    ax_test_wait_count(&G.closed, atomic_load(&G.accepted), WAIT_MS);
    atomic_store(&G.conn, ~0ull);
    ax_err de = ax_system_send(sys, owner, T_DIAL, NULL, 0);
    CU_ASSERT(de == AX_OK || de == AX_ENOMEM);
    if (de == AX_OK)
      for (int i = 0; i < WAIT_MS && !atomic_load(&G.dial) && !atomic_load(&G.dial_err) &&
                      !atomic_load(&G.write_other); i++)
        ax_test_sleep_ms(1);
    if (!ended || echoed < 0)
      fprintf(stderr, "\n  n=%ld count=%ld: ended=%d echoed=%ld", n, count, ended, echoed);
    CU_ASSERT(ended);
    CU_ASSERT(echoed >= 0);
    if (de == AX_OK && atomic_load(&G.dial)) {
      /* the dial ends: CONNECTED then CLOSED, or ERROR */
      for (int i = 0; i < WAIT_MS && !atomic_load(&G.dial_closed) && !atomic_load(&G.dial_err); i++)
        ax_test_sleep_ms(1);
      CU_ASSERT(atomic_load(&G.dial_closed) + atomic_load(&G.dial_err) == 1);
    }
    /* The dial's own connection, if its connect reached the kernel, may
     * still wait in the listener's backlog when the dialing side is done
     * (its ACCEPTED came after this count once: accepted 2, closed 1). A
     * probe made now is accepted after it: once the owner has seen the
     * probe closed, every connection it will ever be told of was. With
     * the hook off, so that the probe is accepted. */
    ax__alloc_fail_after(0, 0);
    bool probed = probe_connect(port);
    CU_ASSERT(probed);
    if (probed) {
      bool seen = ax_test_wait_count(&G.probe_closed, 1, WAIT_MS);
      if (!seen) fprintf(stderr, "\n  n=%ld count=%ld: the probe was not seen closed", n, count);
      CU_ASSERT(seen);
    }
    /* every connection the owner heard of closes exactly once */
    bool all = ax_test_wait_count(&G.closed, atomic_load(&G.accepted), WAIT_MS);
    ax_test_sleep_ms(2); /* a duplicate CLOSED would show up meanwhile */
    if (!all || atomic_load(&G.closed) != atomic_load(&G.accepted) || atomic_load(&G.write_other))
      fprintf(stderr, "\n  n=%ld count=%ld: accepted=%llu closed=%llu other_errors=%llu", n, count,
              (unsigned long long)atomic_load(&G.accepted),
              (unsigned long long)atomic_load(&G.closed),
              (unsigned long long)atomic_load(&G.write_other));
    CU_ASSERT(all);
    CU_ASSERT_EQUAL(atomic_load(&G.closed), atomic_load(&G.accepted));
    CU_ASSERT_EQUAL(atomic_load(&G.write_other), 0);
  }
  ax__alloc_fail_after(0, 0);
  outcome o = {.failed = ax__alloc_failures() != before, .complete = complete};
  CU_ASSERT(ax_system_shutdown(sys) == AX_OK);
  ax_system_free(sys);
  return o;
}

static void run_all(long count) {
  memset(big, 'z', sizeof big);
  long n = 1;
  int quiet = 0;
  /* Past the scenario's last allocation no failure happens; a few quiet
   * runs in a row end the loop (bounded anyway). */
  for (; n <= 600 && quiet < 3; n++) {
    outcome o = scenario(n, count);
    quiet = o.failed ? 0 : quiet + 1;
    /* memory is back: the same scenario on a fresh system succeeds */
    outcome again = scenario(1000000, 1);
    CU_ASSERT(!again.failed && again.complete);
    if (!again.complete) fprintf(stderr, "\n  after n=%ld: a fresh scenario did not complete", n);
  }
  fprintf(stderr, "(%ld values of N) ", n - 1);
  CU_ASSERT(n > 20);
}

static void test_io_oom_scenarios_one_failure(void) { run_all(1); }
static void test_io_oom_scenarios_failures_from_n(void) { run_all(-1); }
static void test_io_oom_scenarios_burst_of_16(void) { run_all(16); }

int main(void) {
  CU_pSuite s = ax_test_suite("io.oom_scenarios");
  CU_ADD_TEST(s, test_io_oom_scenarios_one_failure);
  CU_ADD_TEST(s, test_io_oom_scenarios_failures_from_n);
  CU_ADD_TEST(s, test_io_oom_scenarios_burst_of_16);
  return ax_test_run();
}
