/* Axon tests: the socket layer on loopback (127.0.0.1, ::1, Unix sockets):
 * addresses, listen/connect/accept and handoff, echo streams with byte
 * checks, backpressure both ways, resets, close with pending writes, owner
 * death, half-close, zerocopy, many connections. Plain blocking sockets
 * are the peers; every wait is on a condition with a generous bound. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "axon.h"
#include "io/socket.h"
#include "support/testutil.h"

#define WAIT_MS 60000
enum { MSG_GO = AX_MSG_USER, MSG_BLAST };

/* ---- what the actors observe (test thread reads) ---- */
static struct {
  _Atomic uint64_t accepted, closed, peer_shutdowns, data_bytes, bp, drained, errors, connected;
  _Atomic uint64_t reasons[8];
  _Atomic int last_error;
  _Atomic bool ready;
  char addr[AX_IO_ADDRSTRLEN];
  ax_listener lsn;
  _Atomic uint64_t conn_id; /* last accepted conn */
  pthread_mutex_t log_lock;
  char log[4096];
} G;

static void reset_g(void) {
  pthread_mutex_t l = G.log_lock;
  memset(&G, 0, sizeof G);
  G.log_lock = l;
}

static void capture_log(ax_log_level level, const char *line, void *arg) {
  (void)level;
  (void)arg;
  pthread_mutex_lock(&G.log_lock);
  size_t n = strlen(G.log);
  snprintf(G.log + n, sizeof G.log - n, "%s\n", line);
  pthread_mutex_unlock(&G.log_lock);
}

static ax_system *sys_new(void) {
  ax_system *sys = ax_test_system_log(2, capture_log, NULL, AX_LOG_WARN);
  reset_g();
  return sys;
}

static void sys_free(ax_system *sys) {
  CU_ASSERT(ax_system_shutdown(sys) == AX_OK);
  ax_system_free(sys);
}

static bool wait_ge(_Atomic uint64_t *v, uint64_t n) { return ax_test_wait_count(v, n, WAIT_MS); }

/* ---- the echo actor: one per connection, zero-copy, honours backpressure ---- */
typedef struct pend {
  ax_buf *buf;
  size_t off, len;
} pend;

typedef struct echo_st {
  ax_conn conn;
  pend q[256];
  size_t n;
  bool close_when_flushed;
} echo_st;

static void echo_release(echo_st *s) {
  for (size_t i = 0; i < s->n; i++) ax_buf_release(s->q[i].buf);
  s->n = 0;
}

static void echo_flush(echo_st *s) {
  size_t i = 0;
  for (; i < s->n; i++) {
    ax_err e = ax_conn_write_buf(s->conn, s->q[i].buf, s->q[i].off, s->q[i].len);
    if (e == AX_EAGAIN) break;
    ax_buf_release(s->q[i].buf);
  }
  memmove(s->q, s->q + i, (s->n - i) * sizeof(pend));
  s->n -= i;
  if (s->n == 0) {
    if (s->close_when_flushed)
      ax_conn_close(s->conn);
    else
      ax_conn_resume_read(s->conn);
  }
}

static ax_err echo_init(ax_actor *self, void *state, const void *arg, size_t len) {
  (void)self;
  echo_st *s = state;
  memcpy(&s->conn, arg, len);
  return AX_OK;
}

static void echo_term(ax_actor *self, void *state, ax_reason r) {
  (void)self;
  (void)r;
  echo_release(state);
}

static ax_err echo_b(ax_actor *self, const ax_msg *m) {
  echo_st *s = ax_state(self);
  const ax_io_event *ev = m->data;
  switch (m->type) {
  case AX_MSG_IO_DATA: {
    atomic_fetch_add(&G.data_bytes, m->len);
    size_t off = (size_t)((const char *)m->data - (const char *)ax_buf_data(m->buf));
    if (s->n == 0) {
      ax_err e = ax_conn_write_buf(s->conn, m->buf, off, m->len);
      if (e != AX_EAGAIN) return AX_OK; /* sent, or closed (CLOSED follows) */
      ax_conn_pause_read(s->conn);
    }
    if (s->n == 256) return AX_ENOBUFS; /* cannot happen with the read bound */
    ax_buf_retain(m->buf);
    s->q[s->n++] = (pend){m->buf, off, m->len};
    return AX_OK;
  }
  case AX_MSG_IO_BACKPRESSURE:
    atomic_fetch_add(&G.bp, 1);
    return AX_OK;
  case AX_MSG_IO_DRAINED:
    atomic_fetch_add(&G.drained, 1);
    echo_flush(s);
    return AX_OK;
  case AX_MSG_IO_PEER_SHUTDOWN:
    atomic_fetch_add(&G.peer_shutdowns, 1);
    if (s->n == 0) {
      ax_conn_write(s->conn, "bye", 3);
      ax_conn_close(s->conn);
    } else {
      s->close_when_flushed = true;
    }
    return AX_OK;
  case AX_MSG_IO_CLOSED:
    atomic_fetch_add(&G.closed, 1);
    atomic_fetch_add(&G.reasons[ev->reason & 7], 1);
    atomic_store(&G.last_error, ev->code);
    echo_release(s);
    return ax_exit(self, ax_self(self), AX_REASON_NORMAL);
  default:
    return AX_OK;
  }
}

static const ax_actor_spec echo_spec = {.name = "echo", .behaviour = echo_b,
                                        .state_size = sizeof(echo_st), .init = echo_init,
                                        .terminate = echo_term};

/* ---- the listener actor ---- */
typedef struct lsn_cfg {
  const char *addr;
  ax_io_opts opts;
  int mode; /* 0 echo children, 1 hold until MSG_GO, 2 keep conns itself */
} lsn_cfg;

typedef struct lsn_st {
  ax_listener l;
  int mode;
  ax_conn held[16];
  size_t nheld;
} lsn_st;

static void handoff(ax_actor *self, ax_conn c) {
  ax_pid child;
  if (ax_spawn(self, &echo_spec, &c, sizeof c, &child) != AX_OK) {
    ax_conn_abort(c);
    return;
  }
  CU_ASSERT(ax_conn_set_owner(c, child) == AX_OK);
  CU_ASSERT(ax_conn_resume_read(c) == AX_OK);
}

static ax_err lsn_init(ax_actor *self, void *state, const void *arg, size_t len) {
  (void)len;
  const lsn_cfg *cfg = arg;
  lsn_st *s = state;
  s->mode = cfg->mode;
  ax_err e = ax_listen(self, cfg->addr, &cfg->opts, &s->l);
  if (e != AX_OK) return e;
  size_t n = sizeof G.addr;
  CU_ASSERT(ax_listener_addr(s->l, G.addr, &n) == AX_OK);
  G.lsn = s->l;
  atomic_store(&G.ready, true);
  return AX_OK;
}

static ax_err lsn_b(ax_actor *self, const ax_msg *m) {
  lsn_st *s = ax_state(self);
  if (m->type == AX_MSG_IO_ACCEPTED) {
    const ax_io_conn_info *info = m->data;
    CU_ASSERT(info->listener.id == s->l.id && m->ref == s->l.id);
    CU_ASSERT(strncmp(info->peer, "127.0.0.1:", 10) == 0 || strncmp(info->peer, "[::1]:", 6) == 0 ||
              strncmp(info->peer, "unix:", 5) == 0);
    atomic_store(&G.conn_id, info->conn.id);
    if (s->mode == 0)
      handoff(self, info->conn);
    else if (s->nheld < 16)
      s->held[s->nheld++] = info->conn;
    atomic_fetch_add(&G.accepted, 1);
  } else if (m->type == MSG_GO) {
    for (size_t i = 0; i < s->nheld; i++) handoff(self, s->held[i]);
    s->nheld = 0;
  } else if (m->type == AX_MSG_IO_ERROR) {
    /* The code first: the test thread reads it once it sees the count. */
    atomic_store(&G.last_error, ((const ax_io_event *)m->data)->code);
    atomic_fetch_add(&G.errors, 1);
  }
  return AX_OK;
}

static const ax_actor_spec lsn_spec = {.name = "listener", .behaviour = lsn_b,
                                       .state_size = sizeof(lsn_st), .init = lsn_init};

static ax_pid start_server(ax_system *sys, const char *addr, const ax_io_opts *opts, int mode) {
  lsn_cfg cfg = {.addr = addr, .mode = mode};
  if (opts)
    cfg.opts = *opts;
  else
    ax_io_opts_init(&cfg.opts);
  ax_pid pid;
  CU_ASSERT_FATAL(ax_system_spawn(sys, &lsn_spec, &cfg, sizeof cfg, &pid) == AX_OK);
  CU_ASSERT_FATAL(atomic_load(&G.ready));
  return pid;
}

/* ---- plain client sockets ---- */
static int cli_connect(const char *addr) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  socklen_t sl;
  if (strncmp(addr, "unix:", 5) == 0) {
    struct sockaddr_un *un = (struct sockaddr_un *)&ss;
    un->sun_family = AF_UNIX;
    snprintf(un->sun_path, sizeof un->sun_path, "%s", addr + 5);
    sl = sizeof *un;
  } else if (addr[0] == '[') {
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    s6->sin6_family = AF_INET6;
    inet_pton(AF_INET6, "::1", &s6->sin6_addr);
    s6->sin6_port = htons((uint16_t)atoi(strrchr(addr, ':') + 1));
    sl = sizeof *s6;
  } else {
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    s4->sin_family = AF_INET;
    s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s4->sin_port = htons((uint16_t)atoi(strrchr(addr, ':') + 1));
    sl = sizeof *s4;
  }
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  struct timeval tv = {60, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (connect(fd, (struct sockaddr *)&ss, sl) != 0) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

static bool write_all(int fd, const void *p, size_t n) {
  const char *c = p;
  while (n) {
    ssize_t k = send(fd, c, n, MSG_NOSIGNAL);
    if (k <= 0) {
      if (k < 0 && errno == EINTR) continue;
      return false;
    }
    c += k;
    n -= (size_t)k;
  }
  return true;
}

static bool read_full(int fd, void *p, size_t n) {
  char *c = p;
  while (n) {
    ssize_t k = read(fd, c, n);
    if (k <= 0) {
      if (k < 0 && errno == EINTR) continue;
      return false;
    }
    c += k;
    n -= (size_t)k;
  }
  return true;
}

/* Reads until EOF; returns the byte count (or -1 on error). */
static long read_to_eof(int fd, char *buf, size_t cap) {
  size_t n = 0;
  for (;;) {
    ssize_t k = read(fd, buf + n, cap - n);
    if (k == 0) return (long)n;
    if (k < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    n += (size_t)k;
    if (n == cap) return (long)n;
  }
}

static inline uint8_t pat(uint64_t i) { return (uint8_t)((i * 2654435761u) >> 13); }

typedef struct stream_arg {
  int fd;
  uint64_t total;
  bool ok;
} stream_arg;

static void *stream_writer(void *p) {
  stream_arg *a = p;
  char buf[65536];
  uint64_t i = 0;
  a->ok = true;
  while (i < a->total) {
    size_t n = a->total - i < sizeof buf ? (size_t)(a->total - i) : sizeof buf;
    for (size_t k = 0; k < n; k++) buf[k] = (char)pat(i + k);
    if (!write_all(a->fd, buf, n)) {
      a->ok = false;
      break;
    }
    i += n;
  }
  return NULL;
}

/* Streams total pattern bytes through an echo connection and checks each
 * one that comes back. */
static void echo_stream(const char *addr, uint64_t total) {
  int fd = cli_connect(addr);
  CU_ASSERT_FATAL(fd >= 0);
  stream_arg a = {fd, total, false};
  pthread_t t;
  CU_ASSERT_FATAL(pthread_create(&t, NULL, stream_writer, &a) == 0);
  char buf[65536];
  uint64_t got = 0, bad = 0;
  while (got < total) {
    ssize_t k = read(fd, buf, sizeof buf);
    if (k <= 0) break;
    for (ssize_t j = 0; j < k; j++) bad += (uint8_t)buf[j] != pat(got + (uint64_t)j);
    got += (uint64_t)k;
  }
  pthread_join(t, NULL);
  CU_ASSERT(a.ok);
  CU_ASSERT_EQUAL(got, total);
  CU_ASSERT_EQUAL(bad, 0);
  close(fd);
}

/* ---- tests ---- */

static void test_io_bad_address_is_einval(void) {
  ax_system *sys = sys_new();
  ax_listener l;
  ax_conn c;
  const char *bad[] = {"nonsense", "127.0.0.1", "127.0.0.1:99999", "[::1", "[::1]6667", "unix:",
                       "localhost:80", "::1:80", "1.2.3:80", "127.0.0.1:"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    CU_ASSERT_EQUAL(ax_system_listen(sys, AX_PID_NONE, bad[i], NULL, &l), AX_EINVAL);
    CU_ASSERT_EQUAL(ax_system_connect(sys, AX_PID_NONE, bad[i], NULL, &c), AX_EINVAL);
  }
  CU_ASSERT_EQUAL(ax_system_connect(sys, AX_PID_NONE, "127.0.0.1:0", NULL, &c), AX_EINVAL);
  pthread_mutex_lock(&G.log_lock);
  CU_ASSERT(strstr(G.log, "bad address \"nonsense\"") != NULL);
  CU_ASSERT(strstr(G.log, "port is not a number") != NULL);
  pthread_mutex_unlock(&G.log_lock);
  ax_io_opts o;
  ax_io_opts_init(&o);
  o.low_watermark = o.high_watermark + 1;
  CU_ASSERT_EQUAL(ax_system_listen(sys, AX_PID_NONE, "127.0.0.1:0", &o, &l), AX_EINVAL);
  sys_free(sys);
}

/* The client side as an actor: connects, sends three pieces at once,
 * expects them back (the server hands the connection over only later). */
typedef struct cli_st {
  ax_conn c;
  char got[64];
  size_t n;
} cli_st;

static _Atomic uint64_t cli_done;

static ax_err cli_b(ax_actor *self, const ax_msg *m) {
  cli_st *s = ax_state(self);
  if (m->type == MSG_GO) {
    CU_ASSERT(ax_connect(self, G.addr, NULL, &s->c) == AX_OK);
  } else if (m->type == AX_MSG_IO_CONNECTED) {
    const ax_io_conn_info *info = m->data;
    CU_ASSERT(info->conn.id == s->c.id && m->ref == s->c.id);
    CU_ASSERT(strcmp(info->peer, G.addr) == 0);
    atomic_fetch_add(&G.connected, 1);
    CU_ASSERT(ax_conn_write(s->c, "one,", 4) == AX_OK);
    CU_ASSERT(ax_conn_write(s->c, "two,", 4) == AX_OK);
    CU_ASSERT(ax_conn_write(s->c, "three", 5) == AX_OK);
  } else if (m->type == AX_MSG_IO_DATA) {
    CU_ASSERT(ax_io_msg_conn(self, m).id == s->c.id);
    if (s->n + m->len <= sizeof s->got) memcpy(s->got + s->n, m->data, m->len);
    s->n += m->len;
    if (s->n == 13) {
      CU_ASSERT(memcmp(s->got, "one,two,three", 13) == 0);
      atomic_fetch_add(&cli_done, 1);
      ax_conn_close(s->c);
    }
  } else if (m->type == AX_MSG_IO_CLOSED) {
    atomic_fetch_add(&cli_done, 1);
    return ax_exit(self, ax_self(self), AX_REASON_NORMAL);
  }
  return AX_OK;
}

static const ax_actor_spec cli_spec = {.name = "client", .behaviour = cli_b,
                                       .state_size = sizeof(cli_st)};

static void handoff_case(const char *addr) {
  ax_system *sys = sys_new();
  atomic_store(&cli_done, 0);
  ax_pid srv = start_server(sys, addr, NULL, 1);
  ax_pid cli;
  CU_ASSERT_FATAL(ax_system_spawn(sys, &cli_spec, NULL, 0, &cli) == AX_OK);
  CU_ASSERT(ax_system_send(sys, cli, MSG_GO, NULL, 0) == AX_OK);
  CU_ASSERT(wait_ge(&G.accepted, 1));
  CU_ASSERT(wait_ge(&G.connected, 1));
  ax_test_sleep_ms(20); /* let the client's bytes reach the server's socket */
  CU_ASSERT(ax_system_send(sys, srv, MSG_GO, NULL, 0) == AX_OK);
  CU_ASSERT(ax_test_wait_count(&cli_done, 2, WAIT_MS));
  CU_ASSERT(wait_ge(&G.closed, 1)); /* the echo child saw the close */
  CU_ASSERT_EQUAL(atomic_load(&G.data_bytes), 13);
  sys_free(sys);
}

static void test_io_listen_connect_accept_handoff(void) { handoff_case("127.0.0.1:0"); }
static void test_io_ipv6_handoff(void) { handoff_case("[::1]:0"); }

static void test_io_echo_one_byte(void) {
  ax_system *sys = sys_new();
  start_server(sys, "127.0.0.1:0", NULL, 0);
  int fd = cli_connect(G.addr);
  CU_ASSERT_FATAL(fd >= 0);
  char c = 'x', r = 0;
  CU_ASSERT(write_all(fd, &c, 1));
  CU_ASSERT(read_full(fd, &r, 1));
  CU_ASSERT_EQUAL(r, 'x');
  close(fd);
  CU_ASSERT(wait_ge(&G.closed, 1));
  sys_free(sys);
}

static void test_io_echo_1mib_stream(void) {
  ax_system *sys = sys_new();
  start_server(sys, "127.0.0.1:0", NULL, 0);
  echo_stream(G.addr, 1u << 20);
  sys_free(sys);
}

static void test_io_echo_100mib_stream(void) {
  ax_system *sys = sys_new();
  start_server(sys, "127.0.0.1:0", NULL, 0);
  echo_stream(G.addr, 100u << 20);
  CU_ASSERT_EQUAL(atomic_load(&G.data_bytes), 100u << 20);
  sys_free(sys);
}

static void test_io_unix_socket_echo(void) {
  char path[96], addr[128];
  snprintf(path, sizeof path, "/tmp/axon-io-test-%d.sock", (int)getpid());
  snprintf(addr, sizeof addr, "unix:%s", path);
  unlink(path);
  ax_system *sys = sys_new();
  start_server(sys, addr, NULL, 0);
  CU_ASSERT(strcmp(G.addr, addr) == 0);
  echo_stream(addr, 3u << 20);
  CU_ASSERT(ax_listener_close(G.lsn) == AX_OK);
  CU_ASSERT(ax_listener_close(G.lsn) == AX_ECLOSED);
  sys_free(sys);
  CU_ASSERT(access(path, F_OK) != 0); /* the listener removed its path */
}

static void test_io_half_close_reported(void) {
  ax_system *sys = sys_new();
  start_server(sys, "127.0.0.1:0", NULL, 0);
  int fd = cli_connect(G.addr);
  CU_ASSERT_FATAL(fd >= 0);
  CU_ASSERT(write_all(fd, "abc", 3));
  CU_ASSERT(shutdown(fd, SHUT_WR) == 0);
  char buf[16];
  long n = read_to_eof(fd, buf, sizeof buf); /* the server writes after the half-close */
  if (n != 6) fprintf(stderr, "half-close: n=%ld errno=%d buf=%.*s\n", n, errno, (int)(n > 0 ? n : 0), buf);
  CU_ASSERT_EQUAL(n, 6);
  CU_ASSERT(n == 6 && memcmp(buf, "abcbye", 6) == 0);
  CU_ASSERT(wait_ge(&G.closed, 1));
  CU_ASSERT_EQUAL(atomic_load(&G.peer_shutdowns), 1);
  CU_ASSERT_EQUAL(atomic_load(&G.reasons[AX_IO_CLOSE_LOCAL]), 1);
  close(fd);
  sys_free(sys);
}

static void test_io_connect_refused_is_error(void) {
  ax_system *sys = sys_new();
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t al = sizeof a;
  CU_ASSERT_FATAL(bind(s, (struct sockaddr *)&a, al) == 0);
  CU_ASSERT_FATAL(getsockname(s, (struct sockaddr *)&a, &al) == 0);
  close(s); /* nobody listens on that port now */
  ax_pid pid = start_server(sys, "127.0.0.1:0", NULL, 0); /* it collects the ERROR */
  ax_conn c;
  snprintf(G.addr, sizeof G.addr, "127.0.0.1:%u", ntohs(a.sin_port));
  CU_ASSERT(ax_system_connect(sys, pid, G.addr, NULL, &c) == AX_OK);
  CU_ASSERT(wait_ge(&G.errors, 1));
  CU_ASSERT_EQUAL(atomic_load(&G.last_error), ECONNREFUSED);
  CU_ASSERT_EQUAL(ax_conn_write(c, "x", 1), AX_ECLOSED);
  sys_free(sys);
}

/* ---- writers: backpressure, close with pending data, reset, zerocopy ---- */
typedef struct wr_cfg {
  int mode;     /* 0: flood until refused; 1: 8 MiB then close; 2: blast forever; 3: one big buf */
  size_t chunk;
} wr_cfg;

static struct {
  _Atomic uint64_t refused, written, max_queued, write_after_close;
  _Atomic uint64_t buf_freed;
} W;

typedef struct wr_st {
  ax_listener l;
  ax_conn c;
  int mode;
  size_t chunk;
  char *data;
} wr_st;

static ax_err wr_init(ax_actor *self, void *state, const void *arg, size_t len) {
  (void)len;
  wr_st *s = state;
  const wr_cfg *cfg = arg;
  s->mode = cfg->mode;
  s->chunk = cfg->chunk;
  s->data = malloc(s->chunk);
  if (!s->data) return AX_ENOMEM;
  for (size_t i = 0; i < s->chunk; i++) s->data[i] = (char)pat(i);
  ax_io_opts o;
  ax_io_opts_init(&o);
  if (s->mode == 1) o.high_watermark = 16u << 20;
  ax_err e = ax_listen(self, "127.0.0.1:0", &o, &s->l);
  size_t n = sizeof G.addr;
  if (e == AX_OK) ax_listener_addr(s->l, G.addr, &n);
  atomic_store(&G.ready, e == AX_OK);
  return e;
}

static void wr_term(ax_actor *self, void *state, ax_reason r) {
  (void)self;
  (void)r;
  free(((wr_st *)state)->data);
}

static void note_queued(ax_conn c) {
  ax_conn_stats st;
  if (ax_conn_stats_get(c, &st) != AX_OK) return;
  uint64_t m = atomic_load(&W.max_queued);
  while (st.queued > m && !atomic_compare_exchange_weak(&W.max_queued, &m, st.queued)) {
  }
}

/* Writes chunks until refused (mode 0, 2) or n bytes (mode 1). */
static void wr_flood(wr_st *s, uint64_t limit) {
  for (;;) {
    if (limit && atomic_load(&W.written) >= limit) return;
    ax_err e = ax_conn_write(s->c, s->data, s->chunk);
    note_queued(s->c);
    if (e == AX_EAGAIN) {
      atomic_fetch_add(&W.refused, 1);
      return;
    }
    if (e != AX_OK) return;
    atomic_fetch_add(&W.written, s->chunk);
  }
}

static void big_free(void *data, size_t cap, void *arg) {
  (void)cap;
  (void)arg;
  free(data);
  atomic_fetch_add(&W.buf_freed, 1);
}

static ax_err wr_b(ax_actor *self, const ax_msg *m) {
  wr_st *s = ax_state(self);
  (void)self;
  switch (m->type) {
  case AX_MSG_IO_ACCEPTED:
    s->c = ((const ax_io_conn_info *)m->data)->conn;
    atomic_fetch_add(&G.accepted, 1);
    CU_ASSERT(ax_conn_resume_read(s->c) == AX_OK); /* to see the peer's EOF */
    if (s->mode == 1) {
      wr_flood(s, 8u << 20);
      CU_ASSERT(ax_conn_close(s->c) == AX_OK);
      if (ax_conn_write(s->c, "x", 1) == AX_ECLOSED) atomic_fetch_add(&W.write_after_close, 1);
    } else if (s->mode == 3) {
      size_t n = 4u << 20;
      char *p = malloc(n);
      for (size_t i = 0; i < n; i++) p[i] = (char)pat(i);
      ax_buf *b;
      CU_ASSERT_FATAL(ax_buf_wrap(p, n, big_free, NULL, &b) == AX_OK);
      CU_ASSERT(ax_conn_write_buf(s->c, b, 0, n) == AX_OK);
      ax_buf_release(b);
      CU_ASSERT(ax_conn_close(s->c) == AX_OK);
    } else {
      wr_flood(s, 0);
    }
    return AX_OK;
  case AX_MSG_IO_BACKPRESSURE:
    atomic_fetch_add(&G.bp, 1);
    return AX_OK;
  case AX_MSG_IO_DRAINED:
    atomic_fetch_add(&G.drained, 1);
    if (s->mode == 2) wr_flood(s, 0);
    return AX_OK;
  case AX_MSG_IO_PEER_SHUTDOWN:
    ax_conn_close(s->c);
    return AX_OK;
  case AX_MSG_IO_CLOSED: {
    const ax_io_event *ev = m->data;
    if (ev->conn.id) {
      atomic_fetch_add(&G.reasons[ev->reason & 7], 1);
      atomic_store(&G.last_error, ev->code);
      atomic_fetch_add(&G.closed, 1);
      if (ax_conn_write(s->c, "x", 1) == AX_ECLOSED) atomic_fetch_add(&W.write_after_close, 1);
    }
    return AX_OK;
  }
  default:
    return AX_OK;
  }
}

static const ax_actor_spec wr_spec = {.name = "writer", .behaviour = wr_b,
                                      .state_size = sizeof(wr_st), .init = wr_init,
                                      .terminate = wr_term};

static ax_system *start_writer(int mode, size_t chunk) {
  ax_system *sys = sys_new();
  memset(&W, 0, sizeof W);
  ax_pid pid;
  CU_ASSERT_FATAL(ax_system_spawn(sys, &wr_spec, &(wr_cfg){mode, chunk}, sizeof(wr_cfg), &pid) ==
                  AX_OK);
  return sys;
}

static void test_io_slow_reader_backpressure_bounded(void) {
  ax_system *sys = start_writer(0, 100000);
  int fd = cli_connect(G.addr);
  CU_ASSERT_FATAL(fd >= 0);
  CU_ASSERT(wait_ge(&G.bp, 1)); /* the peer never reads: the queue fills */
  CU_ASSERT(wait_ge(&W.refused, 1));
  ax_test_sleep_ms(50);
  CU_ASSERT(atomic_load(&W.max_queued) <= (1u << 20));
  CU_ASSERT(atomic_load(&W.max_queued) >= (1u << 20) - 100000);
  uint64_t written = atomic_load(&W.written);
  /* Now read everything that was accepted; DRAINED must follow. */
  char *buf = malloc(1 << 16);
  uint64_t got = 0, bad = 0;
  while (got < written) {
    ssize_t k = read(fd, buf, 1 << 16);
    if (k <= 0) break;
    for (ssize_t j = 0; j < k; j++) bad += (uint8_t)buf[j] != pat((got + (uint64_t)j) % 100000);
    got += (uint64_t)k;
  }
  free(buf);
  CU_ASSERT_EQUAL(got, written);
  CU_ASSERT_EQUAL(bad, 0);
  CU_ASSERT(wait_ge(&G.drained, 1));
  close(fd);
  CU_ASSERT(wait_ge(&G.closed, 1));
  sys_free(sys);
}

static void test_io_close_with_pending_writes_delivers_all(void) {
  ax_system *sys = start_writer(1, 65536);
  int fd = cli_connect(G.addr);
  CU_ASSERT_FATAL(fd >= 0);
  CU_ASSERT(wait_ge(&G.accepted, 1));
  ax_test_sleep_ms(50); /* the server has queued MiBs and asked to close */
  char *buf = malloc(9u << 20);
  long n = read_to_eof(fd, buf, 9u << 20);
  CU_ASSERT_EQUAL(n, 8l << 20);
  uint64_t bad = 0;
  for (long i = 0; i < n; i++) bad += (uint8_t)buf[i] != pat((uint64_t)i % 65536);
  CU_ASSERT_EQUAL(bad, 0);
  free(buf);
  CU_ASSERT(wait_ge(&G.closed, 1));
  CU_ASSERT_EQUAL(atomic_load(&G.reasons[AX_IO_CLOSE_LOCAL]), 1);
  CU_ASSERT_EQUAL(atomic_load(&W.write_after_close), 2);
  close(fd);
  sys_free(sys);
}

static void test_io_peer_reset_mid_write(void) {
  ax_system *sys = start_writer(2, 65536);
  int fd = cli_connect(G.addr);
  CU_ASSERT_FATAL(fd >= 0);
  char buf[4096];
  CU_ASSERT(read_full(fd, buf, sizeof buf));
  CU_ASSERT(wait_ge(&W.refused, 1));
  struct linger lg = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  close(fd); /* RST while the server has a full queue */
  /* Drain so that the server notices at once: read some more. */
  CU_ASSERT(wait_ge(&G.closed, 1));
  CU_ASSERT_EQUAL(atomic_load(&G.reasons[AX_IO_CLOSE_ERROR]), 1);
  int code = atomic_load(&G.last_error);
  CU_ASSERT(code == ECONNRESET || code == EPIPE);
  CU_ASSERT_EQUAL(atomic_load(&W.write_after_close), 1);
  ax_test_sleep_ms(20);
  CU_ASSERT_EQUAL(atomic_load(&G.closed), 1); /* exactly once */
  sys_free(sys);
}

static void test_io_zerocopy_large_write_buf(void) {
  ax_system *sys = start_writer(3, 16);
  int fd = cli_connect(G.addr);
  CU_ASSERT_FATAL(fd >= 0);
  size_t n = 4u << 20;
  char *buf = malloc(n + 1);
  long got = read_to_eof(fd, buf, n + 1);
  CU_ASSERT_EQUAL(got, (long)n);
  uint64_t bad = 0;
  for (long i = 0; i < got; i++) bad += (uint8_t)buf[i] != pat((uint64_t)i);
  CU_ASSERT_EQUAL(bad, 0);
  free(buf);
  CU_ASSERT(wait_ge(&G.closed, 1));
  CU_ASSERT(wait_ge(&W.buf_freed, 1)); /* held until sent (and completed) */
  close(fd);
  sys_free(sys);
}

/* ---- the read side: a hoarding owner bounds what the server reads ---- */
static struct {
  ax_buf *held[64];
  _Atomic uint64_t n, bytes;
  _Atomic uint64_t max_inflight;
} H;

static ax_err hoard_b(ax_actor *self, const ax_msg *m) {
  (void)self;
  if (m->type == AX_MSG_IO_ACCEPTED) {
    ax_conn c = ((const ax_io_conn_info *)m->data)->conn;
    atomic_store(&G.conn_id, c.id);
    CU_ASSERT(ax_conn_resume_read(c) == AX_OK);
  } else if (m->type == AX_MSG_IO_DATA) {
    atomic_fetch_add(&H.bytes, m->len);
    uint64_t i = atomic_load(&H.n);
    if (i < 64 && (i == 0 || H.held[i - 1] != m->buf)) {
      ax_buf_retain(m->buf);
      H.held[i] = m->buf;
      atomic_store(&H.n, i + 1);
    }
    ax_conn_stats st;
    if (ax_conn_stats_get(ax_io_msg_conn(self, m), &st) == AX_OK &&
        st.read_inflight > atomic_load(&H.max_inflight))
      atomic_store(&H.max_inflight, st.read_inflight);
  } else if (m->type == MSG_GO) {
    uint64_t n = atomic_exchange(&H.n, 0);
    for (uint64_t i = 0; i < n; i++) ax_buf_release(H.held[i]);
  }
  return AX_OK;
}

static ax_err hoard_init(ax_actor *self, void *state, const void *arg, size_t len) {
  (void)state;
  (void)arg;
  (void)len;
  ax_listener l;
  ax_err e = ax_listen(self, "127.0.0.1:0", NULL, &l);
  size_t n = sizeof G.addr;
  if (e == AX_OK) ax_listener_addr(l, G.addr, &n);
  return e;
}

static const ax_actor_spec hoard_spec = {.name = "hoarder", .behaviour = hoard_b, .init = hoard_init};

static void *blast_client(void *p) {
  stream_arg *a = p;
  stream_writer(a);
  return NULL;
}

static void test_io_slow_owner_bounds_reads(void) {
  ax_system *sys = sys_new();
  memset(&H, 0, sizeof H);
  ax_pid pid;
  CU_ASSERT_FATAL(ax_system_spawn(sys, &hoard_spec, NULL, 0, &pid) == AX_OK);
  int fd = cli_connect(G.addr);
  CU_ASSERT_FATAL(fd >= 0);
  stream_arg a = {fd, 64u << 20, false};
  pthread_t t;
  CU_ASSERT_FATAL(pthread_create(&t, NULL, blast_client, &a) == 0);
  /* The owner keeps every slab: reading stops at the bound (256 KiB). */
  CU_ASSERT(wait_ge(&H.n, 16));
  ax_test_sleep_ms(100);
  CU_ASSERT(atomic_load(&H.n) <= 16);
  CU_ASSERT(atomic_load(&H.max_inflight) <= 256u << 10);
  CU_ASSERT(atomic_load(&H.bytes) <= 256u << 10);
  /* Release: reading resumes; keep releasing until the stream is in. */
  while (atomic_load(&H.bytes) < a.total) {
    ax_system_send(sys, pid, MSG_GO, NULL, 0);
    ax_test_sleep_ms(1);
  }
  pthread_join(t, NULL);
  CU_ASSERT(a.ok);
  CU_ASSERT_EQUAL(atomic_load(&H.bytes), a.total);
  close(fd);
  ax_system_send(sys, pid, MSG_GO, NULL, 0);
  sys_free(sys);
}

/* ---- owner death ---- */
static void test_io_owner_death_closes_sockets(void) {
  ax_system *sys = sys_new();
  ax_pid srv = start_server(sys, "127.0.0.1:0", NULL, 2); /* keeps its conns */
  int fd = cli_connect(G.addr);
  CU_ASSERT_FATAL(fd >= 0);
  CU_ASSERT(wait_ge(&G.accepted, 1));
  CU_ASSERT(ax_system_exit(sys, srv, AX_REASON_KILL) == AX_OK);
  char b;
  CU_ASSERT_EQUAL(read(fd, &b, 1), 0); /* EOF: the connection closed */
  close(fd);
  /* The listener closed too: connects are refused (eventually: the close
   * runs on the reactor). */
  bool refused = false;
  for (int i = 0; i < 6000 && !refused; i++) {
    int f = cli_connect(G.addr);
    if (f < 0 && errno == ECONNREFUSED) refused = true;
    if (f >= 0) close(f);
    if (!refused) ax_test_sleep_ms(10);
  }
  CU_ASSERT(refused);
  CU_ASSERT_EQUAL(ax_listener_close(G.lsn), AX_ECLOSED);
  sys_free(sys);
}

/* ---- many connections ---- */
static void test_io_thousand_connections(void) {
  enum { N = 1000 };
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur < 2 * N + 100) {
    rl.rlim_cur = rl.rlim_max < 4096 ? rl.rlim_max : 4096;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  CU_ASSERT_FATAL(rl.rlim_cur >= 2 * N + 100);
  ax_system *sys = sys_new();
  start_server(sys, "127.0.0.1:0", NULL, 0);
  static int fds[N];
  int opened = 0;
  for (int i = 0; i < N; i++) {
    fds[i] = cli_connect(G.addr);
    if (fds[i] >= 0) opened++;
  }
  CU_ASSERT_EQUAL(opened, N);
  CU_ASSERT(wait_ge(&G.accepted, N));
  int ok = 0;
  for (int i = 0; i < N; i++) {
    uint16_t v = (uint16_t)i;
    if (fds[i] >= 0 && write_all(fds[i], &v, 2)) ok++;
  }
  int echoed = 0;
  for (int i = 0; i < N; i++) {
    uint16_t r = 0;
    if (fds[i] >= 0 && read_full(fds[i], &r, 2) && r == (uint16_t)i) echoed++;
  }
  CU_ASSERT_EQUAL(ok, N);
  CU_ASSERT_EQUAL(echoed, N);
  for (int i = 0; i < N; i++)
    if (fds[i] >= 0) close(fds[i]);
  CU_ASSERT(wait_ge(&G.closed, N));
  sys_free(sys);
}

int main(void) {
  pthread_mutex_init(&G.log_lock, NULL);
  CU_pSuite s = ax_test_suite("io.socket");
  CU_ADD_TEST(s, test_io_bad_address_is_einval);
  CU_ADD_TEST(s, test_io_listen_connect_accept_handoff);
  CU_ADD_TEST(s, test_io_ipv6_handoff);
  CU_ADD_TEST(s, test_io_echo_one_byte);
  CU_ADD_TEST(s, test_io_echo_1mib_stream);
  CU_ADD_TEST(s, test_io_echo_100mib_stream);
  CU_ADD_TEST(s, test_io_unix_socket_echo);
  CU_ADD_TEST(s, test_io_half_close_reported);
  CU_ADD_TEST(s, test_io_connect_refused_is_error);
  CU_ADD_TEST(s, test_io_slow_reader_backpressure_bounded);
  CU_ADD_TEST(s, test_io_close_with_pending_writes_delivers_all);
  CU_ADD_TEST(s, test_io_peer_reset_mid_write);
  CU_ADD_TEST(s, test_io_zerocopy_large_write_buf);
  CU_ADD_TEST(s, test_io_slow_owner_bounds_reads);
  CU_ADD_TEST(s, test_io_owner_death_closes_sockets);
  CU_ADD_TEST(s, test_io_thousand_connections);
  return ax_test_run();
}
