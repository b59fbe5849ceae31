/* Axon benchmark: TCP echo over loopback. The Axon echo server (one actor
 * per connection, zero-copy echo of the read slabs) runs in-process; so
 * does the cost floor, a plain single-threaded epoll echo server
 * (peers/epoll_echo.c), on a thread. The same load client, a plain C epoll
 * loop on its own thread, drives both: C connections, messages of S bytes,
 * W messages in flight per connection; every echoed byte is checked
 * against the pattern that was sent (a mismatch exits 1). Per case and
 * server, three runs; the median run's line is printed:
 *   RESULT echo <axon|epoll> <wall_s> <msgs> <msgs_per_s> msgs c=.. s=.. w=.. MB_s=.. p99_us=..
 * Usage: axon_bench echo [axon|epoll|both] [runs]     (default: both 3)
 * AXON_BENCH_ECHO_SCALE=f scales the message counts (e.g. 0.1 for a smoke
 * run).
 *
 * External mode (each side its own process, as a user would measure; see
 * bench/echo_bench.sh, which runs both servers and interleaves clients):
 *   axon_bench echo serve <axon|epoll> [port]    listens on 127.0.0.1:port
 *       (0: any), prints "PORT <n>", serves until stdin closes or SIGTERM
 *   axon_bench echo client <host:port> <conns> <size> <window> <msgs>
 *       prints RESULT echo ext <wall_s> <msgs> <msgs_per_s> msgs c=.. s=..
 *       w=.. MB_s=.. p50_us=.. p99_us=.. (exit 1 on any wrong byte/count) */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <axon.h>

int axon_bench_echo(int argc, char **argv);
int epoll_echo_serve(int lfd, int stop_fd);

typedef struct echo_case {
  int c, s, w;
  long msgs; /* total, over all connections */
} echo_case;

static const echo_case cases[] = {
    {1, 64, 1, 40000}, {50, 64, 16, 1000000}, {50, 4096, 4, 400000}, {1, 65536, 4, 6000}};

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static _Noreturn void die(const char *what) {
  fprintf(stderr, "axon_bench echo: %s: %s\n", what, strerror(errno));
  exit(1);
}

/* The byte at offset x of connection k's stream. */
static inline uint8_t pat(uint64_t x, int k) { return (uint8_t)((x * 131u + (uint64_t)k * 7u) ^ (x >> 9)); }

/* ---- the load client ---- */
typedef struct cconn {
  int fd, k;
  long sent, recvd, target; /* messages */
  uint64_t tx, rx;          /* stream offsets */
  size_t part;              /* bytes of the message being sent */
  int64_t *t_sent;          /* ring of W send times */
  bool want_out;
} cconn;

typedef struct client {
  const echo_case *ec;
  uint16_t port;
  uint32_t host; /* network order; 0: loopback */
  int64_t *lat; /* ns per message */
  long nlat;
  uint64_t bad;
  double wall;
} client;

static bool send_more(client *cl, cconn *c, char *buf) {
  const echo_case *ec = cl->ec;
  while (c->sent < c->target && c->sent - c->recvd < ec->w) {
    size_t left = (size_t)ec->s - c->part;
    for (size_t i = 0; i < left; i++) buf[i] = (char)pat(c->tx + i, c->k);
    if (c->part == 0) c->t_sent[c->sent % ec->w] = now_ns();
    ssize_t n = send(c->fd, buf, left, MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN) die("client send");
    if (n < 0) n = 0;
    c->tx += (uint64_t)n;
    c->part += (size_t)n;
    if (c->part < (size_t)ec->s) return true; /* wait for EPOLLOUT */
    c->part = 0;
    c->sent++;
  }
  return false;
}

static void on_read(client *cl, cconn *c, char *buf) {
  const echo_case *ec = cl->ec;
  for (;;) {
    ssize_t n = read(c->fd, buf, 1 << 16);
    if (n == 0) die("client: server closed");
    if (n < 0) {
      if (errno == EAGAIN) return;
      die("client read");
    }
    for (ssize_t i = 0; i < n; i++) cl->bad += (uint8_t)buf[i] != pat(c->rx + (uint64_t)i, c->k);
    uint64_t before = c->rx / (uint64_t)ec->s;
    c->rx += (uint64_t)n;
    uint64_t after = c->rx / (uint64_t)ec->s;
    int64_t t = now_ns();
    for (uint64_t m = before; m < after; m++) cl->lat[cl->nlat++] = t - c->t_sent[m % (uint64_t)ec->w];
    c->recvd = (long)after;
  }
}

static void *client_main(void *p) {
  client *cl = p;
  const echo_case *ec = cl->ec;
  int ep = epoll_create1(EPOLL_CLOEXEC);
  cconn *cs = calloc((size_t)ec->c, sizeof *cs);
  char *buf = malloc((size_t)ec->s), *rbuf = malloc(1 << 16);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(cl->port),
                          .sin_addr.s_addr = cl->host ? cl->host : htonl(INADDR_LOOPBACK)};
  long per = ec->msgs / ec->c;
  for (int k = 0; k < ec->c; k++) {
    cconn *c = &cs[k];
    c->k = k;
    c->target = per;
    c->t_sent = calloc((size_t)ec->w, sizeof(int64_t));
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&a, sizeof a) != 0) die("client connect");
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK) != 0) die("fcntl");
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
  }
  double t0 = now_s();
  for (int k = 0; k < ec->c; k++) {
    cconn *c = &cs[k];
    if (send_more(cl, c, buf) != c->want_out) {
      c->want_out = !c->want_out;
      struct epoll_event ev = {.events = EPOLLIN | (c->want_out ? EPOLLOUT : 0u), .data.ptr = c};
      epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    }
  }
  long done = 0;
  struct epoll_event evs[64];
  while (done < ec->c) {
    int n = epoll_wait(ep, evs, 64, 60000);
    if (n == 0) {
      errno = ETIMEDOUT;
      die("client: no progress for 60 s");
    }
    for (int i = 0; i < n; i++) {
      cconn *c = evs[i].data.ptr;
      bool finished_before = c->recvd == c->target;
      if (evs[i].events & EPOLLIN) on_read(cl, c, rbuf);
      bool out = send_more(cl, c, buf);
      if (out != c->want_out) {
        c->want_out = out;
        struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0u), .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
      }
      if (!finished_before && c->recvd == c->target) done++;
    }
  }
  cl->wall = now_s() - t0;
  for (int k = 0; k < ec->c; k++) {
    close(cs[k].fd);
    free(cs[k].t_sent);
  }
  free(cs);
  free(buf);
  free(rbuf);
  close(ep);
  return NULL;
}

/* ---- the Axon echo server: one actor per connection ---- */
#define MAXQ 64
typedef struct econn {
  ax_conn conn;
  ax_buf *q[MAXQ];
  size_t off[MAXQ], len[MAXQ], n;
} econn;

static bool eflush(econn *s) {
  size_t i = 0;
  for (; i < s->n; i++) {
    if (ax_conn_write_buf(s->conn, s->q[i], s->off[i], s->len[i]) == AX_EAGAIN) break;
    ax_buf_release(s->q[i]);
  }
  memmove(s->q, s->q + i, (s->n - i) * sizeof s->q[0]);
  memmove(s->off, s->off + i, (s->n - i) * sizeof s->off[0]);
  memmove(s->len, s->len + i, (s->n - i) * sizeof s->len[0]);
  s->n -= i;
  return s->n == 0;
}

static ax_err econn_init(ax_actor *self, void *state, const void *arg, size_t len) {
  (void)self;
  memcpy(&((econn *)state)->conn, arg, len);
  return AX_OK;
}

static void econn_term(ax_actor *self, void *state, ax_reason r) {
  econn *s = state;
  (void)self, (void)r;
  for (size_t i = 0; i < s->n; i++) ax_buf_release(s->q[i]);
}

static ax_err econn_b(ax_actor *self, const ax_msg *m) {
  econn *s = ax_state(self);
  switch (m->type) {
  case AX_MSG_IO_DATA: {
    size_t off = (size_t)((const char *)m->data - (const char *)ax_buf_data(m->buf));
    if (s->n == 0) {
      ax_err e = ax_conn_write_buf(s->conn, m->buf, off, m->len);
      if (e != AX_EAGAIN) return AX_OK;
      ax_conn_pause_read(s->conn);
    }
    if (s->n == MAXQ) return AX_ENOBUFS;
    ax_buf_retain(m->buf);
    s->q[s->n] = m->buf;
    s->off[s->n] = off;
    s->len[s->n++] = m->len;
    return AX_OK;
  }
  case AX_MSG_IO_DRAINED:
    if (eflush(s)) ax_conn_resume_read(s->conn);
    return AX_OK;
  case AX_MSG_IO_PEER_SHUTDOWN:
    return ax_conn_close(s->conn);
  case AX_MSG_IO_CLOSED:
    return ax_exit(self, ax_self(self), AX_REASON_NORMAL);
  default:
    return AX_OK;
  }
}

static const ax_actor_spec econn_spec = {.name = "echo-conn", .behaviour = econn_b,
                                         .state_size = sizeof(econn), .init = econn_init,
                                         .terminate = econn_term};

static ax_err elsn_b(ax_actor *self, const ax_msg *m) {
  if (m->type == AX_MSG_IO_ACCEPTED) {
    ax_conn c = ((const ax_io_conn_info *)m->data)->conn;
    ax_pid child;
    if (ax_spawn(self, &econn_spec, &c, sizeof c, &child) != AX_OK ||
        ax_conn_set_owner(c, child) != AX_OK || ax_conn_resume_read(c) != AX_OK)
      ax_conn_abort(c);
  }
  return AX_OK;
}

static const ax_actor_spec elsn_spec = {.name = "echo-listener", .behaviour = elsn_b};

/* ---- running one case on one server ---- */
typedef struct run_result {
  double wall, msgs_s, mb_s, p50_us, p99_us;
  long msgs;
} run_result;

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

static void run_client_at(const echo_case *ec, uint32_t host, uint16_t port, run_result *r) {
  client cl = {.ec = ec, .port = port, .host = host};
  long per = ec->msgs / ec->c;
  cl.lat = malloc(sizeof(int64_t) * (size_t)(per * ec->c + 1));
  pthread_t t;
  if (pthread_create(&t, NULL, client_main, &cl) != 0) die("pthread_create");
  pthread_join(t, NULL);
  if (cl.bad || cl.nlat != per * ec->c) {
    fprintf(stderr, "axon_bench echo: %llu bad bytes, %ld of %ld messages\n",
            (unsigned long long)cl.bad, cl.nlat, per * ec->c);
    exit(1);
  }
  qsort(cl.lat, (size_t)cl.nlat, sizeof(int64_t), cmp_i64);
  r->msgs = cl.nlat;
  r->wall = cl.wall;
  r->msgs_s = (double)cl.nlat / cl.wall;
  r->mb_s = (double)cl.nlat * ec->s / cl.wall / 1e6;
  r->p50_us = (double)cl.lat[(size_t)((double)(cl.nlat - 1) * 0.50)] / 1000.0;
  r->p99_us = (double)cl.lat[(size_t)((double)(cl.nlat - 1) * 0.99)] / 1000.0;
  free(cl.lat);
}

static void run_client(const echo_case *ec, uint16_t port, run_result *r) {
  run_client_at(ec, 0, port, r);
}

static uint32_t env_workers(void) {
  const char *w = getenv("AXON_BENCH_WORKERS");
  return w ? (uint32_t)atoi(w) : 0;
}

static ax_system *axon_serve(const char *at, uint16_t *port) {
  ax_system_config cfg;
  ax_system_config_init(&cfg);
  cfg.workers = env_workers();
  ax_system *sys;
  ax_pid lp;
  ax_listener l;
  char addr[AX_IO_ADDRSTRLEN];
  size_t n = sizeof addr;
  if (ax_system_new(&cfg, &sys) != AX_OK || ax_system_spawn(sys, &elsn_spec, NULL, 0, &lp) != AX_OK ||
      ax_system_listen(sys, lp, at, NULL, &l) != AX_OK || ax_listener_addr(l, addr, &n) != AX_OK)
    die("axon server start");
  *port = (uint16_t)atoi(strrchr(addr, ':') + 1);
  return sys;
}

static void run_axon(const echo_case *ec, run_result *r) {
  uint16_t port;
  ax_system *sys = axon_serve("127.0.0.1:0", &port);
  run_client(ec, port, r);
  ax_system_free(sys);
}

typedef struct peer_arg {
  int lfd, stop;
} peer_arg;

static void *peer_main(void *p) {
  peer_arg *a = p;
  if (epoll_echo_serve(a->lfd, a->stop) != 0) die("epoll peer");
  return NULL;
}

/* A listening socket on 127.0.0.1:port (0: any); *port gets the port. */
static int epoll_listen(uint16_t *port) {
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(*port),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t sl = sizeof sa;
  if (lfd >= 0) setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sl) != 0 || listen(lfd, 511) != 0 ||
      getsockname(lfd, (struct sockaddr *)&sa, &sl) != 0)
    die("epoll peer listen");
  *port = ntohs(sa.sin_port);
  return lfd;
}

static void run_epoll(const echo_case *ec, run_result *r) {
  peer_arg a;
  uint16_t port = 0;
  a.lfd = epoll_listen(&port);
  a.stop = eventfd(0, EFD_CLOEXEC);
  pthread_t t;
  if (pthread_create(&t, NULL, peer_main, &a) != 0) die("pthread_create");
  run_client(ec, port, r);
  uint64_t one = 1;
  if (write(a.stop, &one, sizeof one) != sizeof one) die("eventfd");
  pthread_join(t, NULL);
  close(a.lfd);
  close(a.stop);
}

static int cmp_run(const void *a, const void *b) {
  double x = ((const run_result *)a)->msgs_s, y = ((const run_result *)b)->msgs_s;
  return x < y ? -1 : x > y;
}

/* ---- external mode ---- */

/* Serves until stdin reaches EOF (the script closes it) or a signal. */
static int ext_serve(int argc, char **argv) {
  if (argc < 3 || (strcmp(argv[2], "axon") && strcmp(argv[2], "epoll"))) {
    fprintf(stderr, "usage: axon_bench echo serve <axon|epoll> [port]\n");
    return 2;
  }
  uint16_t port = argc > 3 ? (uint16_t)atoi(argv[3]) : 0;
  char buf[64];
  if (!strcmp(argv[2], "axon")) {
    char at[32];
    snprintf(at, sizeof at, "127.0.0.1:%u", (unsigned)port);
    ax_system *sys = axon_serve(at, &port);
    printf("PORT %u\n", (unsigned)port);
    fflush(stdout);
    while (read(0, buf, sizeof buf) > 0) {
    }
    ax_system_free(sys);
    return 0;
  }
  peer_arg a;
  a.lfd = epoll_listen(&port);
  a.stop = eventfd(0, EFD_CLOEXEC);
  pthread_t t;
  if (pthread_create(&t, NULL, peer_main, &a) != 0) die("pthread_create");
  printf("PORT %u\n", (unsigned)port);
  fflush(stdout);
  while (read(0, buf, sizeof buf) > 0) {
  }
  uint64_t one = 1;
  if (write(a.stop, &one, sizeof one) != sizeof one) die("eventfd");
  pthread_join(t, NULL);
  return 0;
}

static int ext_client(int argc, char **argv) {
  const char *colon = argc == 7 ? strrchr(argv[2], ':') : NULL;
  echo_case ec = {0};
  if (colon) ec = (echo_case){atoi(argv[3]), atoi(argv[4]), atoi(argv[5]), atol(argv[6])};
  char host[64];
  struct in_addr ia;
  size_t hl = colon ? (size_t)(colon - argv[2]) : 0;
  if (!colon || hl >= sizeof host || ec.c < 1 || ec.s < 1 || ec.w < 1 || ec.msgs < ec.c) {
    fprintf(stderr, "usage: axon_bench echo client <ipv4:port> <conns> <size> <window> <msgs>\n");
    return 2;
  }
  memcpy(host, argv[2], hl);
  host[hl] = 0;
  if (inet_pton(AF_INET, host, &ia) != 1) {
    fprintf(stderr, "axon_bench echo client: bad IPv4 address '%s'\n", host);
    return 2;
  }
  run_result r;
  run_client_at(&ec, ia.s_addr, (uint16_t)atoi(colon + 1), &r);
  printf("RESULT echo ext %.3f %ld %.0f msgs c=%d s=%d w=%d MB_s=%.1f p50_us=%.1f p99_us=%.1f\n",
         r.wall, r.msgs, r.msgs_s, ec.c, ec.s, ec.w, r.mb_s, r.p50_us, r.p99_us);
  return 0;
}

int axon_bench_echo(int argc, char **argv) {
  const char *which = argc > 1 ? argv[1] : "both";
  if (!strcmp(which, "serve")) return ext_serve(argc, argv);
  if (!strcmp(which, "client")) return ext_client(argc, argv);
  int runs = argc > 2 ? atoi(argv[2]) : 3;
  if ((strcmp(which, "axon") && strcmp(which, "epoll") && strcmp(which, "both")) || runs < 1 ||
      runs > 15) {
    fprintf(stderr, "usage: axon_bench echo [axon|epoll|both] [runs 1..15]\n");
    return 2;
  }
  const char *sc = getenv("AXON_BENCH_ECHO_SCALE");
  double scale = sc ? atof(sc) : 1.0;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    echo_case ec = cases[i];
    ec.msgs = (long)((double)ec.msgs * scale);
    if (ec.msgs < ec.c) ec.msgs = ec.c;
    for (int impl = 0; impl < 2; impl++) {
      const char *name = impl ? "epoll" : "axon";
      if (strcmp(which, "both") && strcmp(which, name)) continue;
      run_result rr[15];
      for (int k = 0; k < runs; k++) (impl ? run_epoll : run_axon)(&ec, &rr[k]);
      qsort(rr, (size_t)runs, sizeof rr[0], cmp_run);
      run_result *m = &rr[runs / 2];
      printf("RESULT echo %s %.3f %ld %.0f msgs c=%d s=%d w=%d MB_s=%.1f p99_us=%.1f\n", name,
             m->wall, m->msgs, m->msgs_s, ec.c, ec.s, ec.w, m->mb_s, m->p99_us);
      fflush(stdout);
    }
  }
  return 0;
}

#ifdef AXON_BENCH_ECHO_MAIN
int main(int argc, char **argv) { return axon_bench_echo(argc, argv); }
#endif
