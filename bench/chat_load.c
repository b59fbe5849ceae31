/* chat_load: a closed-loop IRC load client, for bench/chat_bench.sh.
 *
 *   chat_load --port P [--clients N] [--channels C] [--size BYTES]
 *             [--window W] [--warmup SECS] [--seconds SECS] [--name NAME]
 *             [--impl IMPL] [--port2 P2] [--nick PREFIX]
 *
 * --nick: the clients' nicks are PREFIX0, PREFIX1, ... (default "l"); runs
 * one after another against a cluster use distinct prefixes, since a nick
 * released on one node reaches the others' directories asynchronously.
 * --port2: odd-numbered clients connect to P2 (another node of a chat
 * cluster), so channels span two nodes. Before sending, every client then
 * sends "sync <idx>" lines (again every second) until every other member
 * of its channel got one: the nodes' channel actors have found each other,
 * and a message lost after that is a real loss.
 *
 * N clients register, client i joins channel #b(i mod C), then every client
 * sends PRIVMSGs of BYTES bytes of text to its channel, keeping at most W of
 * its messages in flight: a message is complete when every other member of
 * the channel has received it, and only then may the sender send another
 * (closed loop). Every receipt is checked: per-sender order (sequence
 * numbers one by one, so nothing lost in between) and, at the end, every
 * message sent was received by every other member. Latency is from the
 * send to each receipt (one clock: all clients live in this process).
 * Prints
 *   RESULT <name> <impl> <secs> <deliveries> <deliveries/s> deliveries/s p50_us=.. p99_us=..
 * and exits non-zero on any loss, misorder or disconnection. Single
 * threaded (epoll), the same for every server measured. */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#define HIST_US 2000000 /* 1 us buckets up to 2 s, then one overflow bucket */

typedef struct client {
  int fd, idx, chan;
  char rbuf[1 << 16];
  size_t rlen;
  char *wbuf;
  size_t wlen, wcap;
  bool welcomed, joined;
  uint64_t next_seq, done_seq; /* sent, completed (all received) */
} client;

static int N = 50, C = 1, SIZE = 64, W = 4;
static double WARMUP = 1.0, SECONDS = 5.0;
static client *cl;
static uint32_t *expect;   /* expect[r * N + s]: next seq r expects from s */
static uint32_t *acks;     /* acks[s * W + seq % W] */
static int *members;       /* per channel */
static uint64_t hist[HIST_US + 1];
static uint64_t deliveries, measured, total_sent;
static int ep;
static bool sending, measuring;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "chat_load: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  exit(1);
}

static void flush_out(client *c) {
  while (c->wlen) {
    ssize_t n = send(c->fd, c->wbuf, c->wlen, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      if (errno == EINTR) continue;
      die("client %d: send: %s", c->idx, strerror(errno));
    }
    memmove(c->wbuf, c->wbuf + n, c->wlen - (size_t)n);
    c->wlen -= (size_t)n;
  }
  struct epoll_event ev = {.events = EPOLLIN | (c->wlen ? EPOLLOUT : 0), .data.ptr = c};
  epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void out(client *c, const char *fmt, ...) {
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (c->wlen + (size_t)n > c->wcap) {
    c->wcap = (c->wlen + (size_t)n) * 2;
    c->wbuf = realloc(c->wbuf, c->wcap);
    if (!c->wbuf) die("out of memory");
  }
  memcpy(c->wbuf + c->wlen, line, (size_t)n);
  c->wlen += (size_t)n;
  if (c->wlen == (size_t)n) flush_out(c);
}

/* Text: "<sender> <seq> <t_ns> " padded with 'x' to SIZE bytes. */
static void send_msg(client *c) {
  char text[4096];
  int n = snprintf(text, sizeof text, "%d %llu %llu ", c->idx, (unsigned long long)c->next_seq,
                   (unsigned long long)now_ns());
  while (n < SIZE && n < (int)sizeof text - 1) text[n++] = 'x';
  text[n] = '\0';
  acks[(size_t)c->idx * W + c->next_seq % W] = 0;
  c->next_seq++;
  total_sent++;
  out(c, "PRIVMSG #b%d :%s\r\n", c->chan, text);
}

static void maybe_send(client *c) {
  while (sending && c->next_seq - c->done_seq < (uint64_t)W) send_msg(c);
}

static void on_privmsg(client *r, const char *text) {
  char *end;
  long s = strtol(text, &end, 10);
  unsigned long long seq = strtoull(end, &end, 10);
  unsigned long long t = strtoull(end, &end, 10);
  if (s < 0 || s >= N || cl[s].chan != r->chan || s == r->idx) die("client %d: bad message '%.60s'", r->idx, text);
  uint32_t *e = &expect[(size_t)r->idx * N + (size_t)s];
  if (seq != *e) die("client %d: from %ld got seq %llu, expected %u (lost or reordered)", r->idx, s, seq, *e);
  (*e)++;
  deliveries++;
  if (measuring) {
    uint64_t us = (now_ns() - t) / 1000;
    hist[us < HIST_US ? us : HIST_US]++;
    measured++;
  }
  client *sc = &cl[s];
  uint32_t *a = &acks[(size_t)s * W + seq % W];
  if (++*a == (uint32_t)(members[sc->chan] - 1)) {
    if (seq != sc->done_seq) die("sender %ld: completion out of order", s);
    sc->done_seq++;
    maybe_send(sc);
  }
}

static int joined_count, welcomed_count;
static bool *syncd; /* syncd[r * N + s]: r got a sync line from s */
static int sync_count, sync_need;

static void on_sync(client *r, const char *text) {
  long s = strtol(text + 5, NULL, 10);
  if (s < 0 || s >= N || cl[s].chan != r->chan || s == r->idx) return;
  if (!syncd[(size_t)r->idx * N + (size_t)s]) {
    syncd[(size_t)r->idx * N + (size_t)s] = true;
    sync_count++;
  }
}

static void on_line(client *c, char *l) {
  if (strncmp(l, "PING ", 5) == 0) {
    out(c, "PONG %s\r\n", l + 5);
    return;
  }
  if (strncmp(l, "ERROR ", 6) == 0) die("client %d: %s", c->idx, l);
  char *sp = strchr(l, ' ');
  if (!sp) return;
  char *cmd = sp + 1;
  if (strncmp(cmd, "PRIVMSG ", 8) == 0) {
    char *t = strstr(cmd, " :");
    if (t && strncmp(t + 2, "sync ", 5) == 0) on_sync(c, t + 2);
    else if (t) on_privmsg(c, t + 2);
  } else if (strncmp(cmd, "001 ", 4) == 0 && !c->welcomed) {
    c->welcomed = true;
    welcomed_count++;
    out(c, "JOIN #b%d\r\n", c->chan);
  } else if (strncmp(cmd, "366 ", 4) == 0 && !c->joined) {
    c->joined = true;
    joined_count++;
  } else if (strncmp(cmd, "433 ", 4) == 0 || strncmp(cmd, "432 ", 4) == 0 ||
             strncmp(cmd, "405 ", 4) == 0 || strncmp(cmd, "404 ", 4) == 0) {
    die("client %d: %s", c->idx, l);
  }
}

static void on_readable(client *c) {
  for (;;) {
    ssize_t n = recv(c->fd, c->rbuf + c->rlen, sizeof c->rbuf - c->rlen, MSG_DONTWAIT);
    if (n == 0) die("client %d: the server closed the connection", c->idx);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      if (errno == EINTR) continue;
      die("client %d: recv: %s", c->idx, strerror(errno));
    }
    c->rlen += (size_t)n;
    char *p = c->rbuf, *end = c->rbuf + c->rlen, *nl;
    while ((nl = memchr(p, '\n', (size_t)(end - p)))) {
      *nl = '\0';
      if (nl > p && nl[-1] == '\r') nl[-1] = '\0';
      on_line(c, p);
      p = nl + 1;
    }
    c->rlen = (size_t)(end - p);
    memmove(c->rbuf, p, c->rlen);
    if (c->rlen == sizeof c->rbuf) die("client %d: line too long", c->idx);
  }
}

static void loop_until(bool (*cond)(void), double secs, const char *what) {
  uint64_t deadline = now_ns() + (uint64_t)(secs * 1e9);
  struct epoll_event evs[256];
  while (!cond()) {
    if (now_ns() > deadline) die("timed out: %s", what);
    int n = epoll_wait(ep, evs, 256, 50);
    for (int i = 0; i < n; i++) {
      client *c = evs[i].data.ptr;
      if (evs[i].events & EPOLLOUT) flush_out(c);
      if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_readable(c);
    }
  }
}

static uint64_t phase_end;
static bool all_joined(void) { return joined_count == N; }
static bool time_up(void) { return now_ns() >= phase_end; }
static bool synced_or_time_up(void) { return sync_count == sync_need || time_up(); }

/* The cluster barrier (--port2): see the header comment. */
static void sync_members(void) {
  for (int i = 0; i < N; i++) sync_need += members[cl[i].chan] - 1;
  for (int round = 0; round < 60 && sync_count < sync_need; round++) {
    for (int s = 0; s < N; s++) {
      bool missing = false;
      for (int r = 0; r < N; r++)
        if (r != s && cl[r].chan == cl[s].chan && !syncd[(size_t)r * N + (size_t)s]) missing = true;
      if (missing) out(&cl[s], "PRIVMSG #b%d :sync %d\r\n", cl[s].chan, s);
    }
    phase_end = now_ns() + 1000000000u;
    loop_until(synced_or_time_up, 10, "sync");
  }
  if (sync_count < sync_need) die("the channels did not span both nodes within 60 s");
}
static bool all_done(void) {
  for (int i = 0; i < N; i++)
    if (cl[i].done_seq != cl[i].next_seq) return false;
  return true;
}

static double pct(double p) {
  uint64_t want = (uint64_t)(p * (double)measured), acc = 0;
  for (size_t i = 0; i <= HIST_US; i++) {
    acc += hist[i];
    if (acc > want) return (double)i;
  }
  return HIST_US;
}

int main(int argc, char **argv) {
  int port = 0, port2 = 0;
  const char *name = "chat", *impl = "axon", *nick = "l";
  for (int i = 1; i + 1 < argc; i += 2) {
    const char *a = argv[i], *v = argv[i + 1];
    if (!strcmp(a, "--port")) port = atoi(v);
    else if (!strcmp(a, "--clients")) N = atoi(v);
    else if (!strcmp(a, "--channels")) C = atoi(v);
    else if (!strcmp(a, "--size")) SIZE = atoi(v);
    else if (!strcmp(a, "--window")) W = atoi(v);
    else if (!strcmp(a, "--warmup")) WARMUP = atof(v);
    else if (!strcmp(a, "--seconds")) SECONDS = atof(v);
    else if (!strcmp(a, "--name")) name = v;
    else if (!strcmp(a, "--impl")) impl = v;
    else if (!strcmp(a, "--port2")) port2 = atoi(v);
    else if (!strcmp(a, "--nick")) nick = v;
    else die("unknown option %s", a);
  }
  if (port <= 0 || N < 2 || C < 1 || C > N || SIZE < 48 || SIZE > 400 || W < 1)
    die("usage: chat_load --port P [--clients N] [--channels C] [--size 48..400] [--window W]");
  cl = calloc((size_t)N, sizeof *cl);
  expect = calloc((size_t)N * N, sizeof *expect);
  acks = calloc((size_t)N * W, sizeof *acks);
  members = calloc((size_t)C, sizeof *members);
  syncd = calloc((size_t)N * N, sizeof *syncd);
  if (!cl || !expect || !acks || !members || !syncd) die("out of memory");
  ep = epoll_create1(0);
  for (int i = 0; i < N; i++) {
    client *c = &cl[i];
    int p = port2 > 0 && (i & 1) ? port2 : port;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    c->idx = i;
    c->chan = i % C;
    members[c->chan]++;
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sa, sizeof sa) != 0)
      die("connect to port %d: %s", p, strerror(errno));
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
    out(c, "NICK %s%d\r\nUSER b 0 * :bench\r\n", nick, i);
  }
  loop_until(all_joined, 60, "every client joined");
  if (port2 > 0) sync_members();
  /* Let the JOIN lines settle, then run: warmup, measure, drain. */
  phase_end = now_ns() + 200000000u;
  loop_until(time_up, 10, "settle");
  sending = true;
  for (int i = 0; i < N; i++) maybe_send(&cl[i]);
  phase_end = now_ns() + (uint64_t)(WARMUP * 1e9);
  loop_until(time_up, WARMUP + 10, "warmup");
  measuring = true;
  uint64_t t0 = now_ns(), d0 = deliveries;
  phase_end = t0 + (uint64_t)(SECONDS * 1e9);
  loop_until(time_up, SECONDS + 10, "measure");
  uint64_t t1 = now_ns(), d1 = deliveries;
  measuring = false;
  sending = false;
  loop_until(all_done, 30, "every message sent was received by every other member (loss?)");
  for (int r = 0; r < N; r++)
    for (int s = 0; s < N; s++)
      if (s != r && cl[s].chan == cl[r].chan && expect[(size_t)r * N + s] != cl[s].next_seq)
        die("client %d got %u of %llu messages from %d", r, expect[(size_t)r * N + s],
            (unsigned long long)cl[s].next_seq, s);
  double secs = (double)(t1 - t0) / 1e9;
  double rate = (double)(d1 - d0) / secs;
  printf("RESULT %s %s %.3f %llu %.0f deliveries/s p50_us=%.0f p99_us=%.0f clients=%d channels=%d "
         "size=%d window=%d sent=%llu\n",
         name, impl, secs, (unsigned long long)(d1 - d0), rate, pct(0.50), pct(0.99), N, C, SIZE, W,
         (unsigned long long)total_sent);
  for (int i = 0; i < N; i++) close(cl[i].fd);
  return 0;
}
