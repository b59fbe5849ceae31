/* pubsub_load: a RESP pub/sub load client (one process, one thread, epoll)
 * for examples/pubsub and redis-server alike.
 *
 *   pubsub_load --port P [--host 127.0.0.1] [--subs 50] [--channels 10]
 *               [--pubs 4] [--size 64] [--window 16] [--messages 20000]
 *               [--name LABEL] [--pub-port P2]
 *
 * --pub-port: the publishers connect to P2 (another broker of a cluster)
 * while the subscribers stay on P. Before the run, short probe PUBLISHes
 * (payloads under 16 bytes, which subscribers skip) go to every channel
 * through P2 until each reply counts all of the channel's subscribers:
 * the subscriptions have reached P2's node.
 *
 * Subscriber i subscribes to channel i % channels. Publisher j sends
 * `messages` PUBLISHes, message k to channel k % channels, keeping at most
 * `window` unanswered. Each payload carries {publisher, sequence, send time};
 * every subscriber checks that each publisher's sequence numbers arrive in
 * increasing order and, at the end, that none is missing. Prints
 *   RESULT pubsub <name> <seconds> <deliveries> <deliveries/s> deliveries/s
 *          p50_us=<end-to-end p50> p99_us=<p99> lost=<n> order_errors=<n>
 * and exits 1 when anything was lost or out of order.
 *
 * PUBSUB_LOAD_DUMP=FILE also writes one line per delivery (up to 4M):
 * "<ns since the start> <end-to-end latency ns>", in receive order, to see
 * whether a tail is spread out or comes in bursts (a stalled server or
 * client). */

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct peer {
  int fd;
  int is_pub, idx;
  char *in;
  size_t inlen, incap;
  /* subscriber */
  uint32_t *last; /* per publisher: last sequence + 1 */
  uint64_t got;
  int confirmed;
  /* publisher */
  uint64_t sent, acked;
  char *out;
  size_t outlen, outoff, outcap;
  int want_out; /* EPOLLOUT armed (flush_pub) */
} peer;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static const char *host = "127.0.0.1", *name = "server";
static int port, pub_port, nsubs = 50, nchan = 10, npubs = 4, size = 64, window = 16;
static long nmsg = 20000;
static uint64_t deliveries, order_errors, *lat;
static size_t nlat, latcap;
static uint64_t *lat_at; /* PUBSUB_LOAD_DUMP: receive time of each */
static int epfd;

static void die(const char *what) {
  perror(what);
  exit(2);
}

static int dial_port(int to) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)to)};
  inet_pton(AF_INET, host, &a.sin_addr);
  if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) die("connect");
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}
static int dial(void) { return dial_port(port); }

static void send_all(int fd, const void *p, size_t n) {
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0) die("write");
    p = (const char *)p + w;
    n -= (size_t)w;
  }
}

static void outq(peer *p, const void *d, size_t n) {
  if (p->outlen + n > p->outcap) {
    p->outcap = (p->outlen + n) * 2;
    p->out = realloc(p->out, p->outcap);
  }
  memcpy(p->out + p->outlen, d, n);
  p->outlen += n;
}

/* Writes what is queued. A publisher waits for EPOLLOUT only while a
 * write was refused (want_out): an always-armed EPOLLOUT would wake the
 * loop for every ack that frees send-buffer space, with nothing to write. */
static void flush_pub(peer *p) {
  while (p->outoff < p->outlen) {
    ssize_t w = write(p->fd, p->out + p->outoff, p->outlen - p->outoff);
    if (w < 0) {
      if (errno == EAGAIN) break;
      die("write");
    }
    p->outoff += (size_t)w;
  }
  if (p->outoff == p->outlen) p->outoff = p->outlen = 0;
  int want = p->outlen > 0;
  if (want != p->want_out) {
    struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0u), .data.ptr = p};
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, p->fd, &ev) != 0) die("epoll_ctl");
    p->want_out = want;
  }
}

static void publish_more(peer *p) {
  char hdr[128], payload[65536];
  while (p->sent < (uint64_t)nmsg && p->sent - p->acked < (uint64_t)window) {
    uint32_t seq = (uint32_t)p->sent, pub = (uint32_t)p->idx;
    uint64_t ts = now_ns();
    memset(payload, 'x', (size_t)size);
    memcpy(payload, &pub, 4);
    memcpy(payload + 4, &seq, 4);
    memcpy(payload + 8, &ts, 8);
    char ch[32];
    int cl = snprintf(ch, sizeof ch, "ch%ld", (long)(p->sent % (uint64_t)nchan));
    int n = snprintf(hdr, sizeof hdr, "*3\r\n$7\r\nPUBLISH\r\n$%d\r\n%s\r\n$%d\r\n", cl, ch, size);
    outq(p, hdr, (size_t)n);
    outq(p, payload, (size_t)size);
    outq(p, "\r\n", 2);
    p->sent++;
  }
  flush_pub(p);
}

/* Parses one line-terminated header at s (len n): returns bytes used or 0. */
static size_t line(const char *s, size_t n, long long *v) {
  const char *cr = memchr(s, '\r', n);
  if (!cr || (size_t)(cr - s) + 2 > n) return 0;
  /* The digits of a count or length ([-]digits), by hand: strtoll showed
   * in this client's profile, once per frame header. */
  const char *d = s + 1;
  int neg = d < cr && *d == '-';
  long long x = 0;
  for (d += neg; d < cr; d++) x = x * 10 + (*d - '0');
  *v = neg ? -x : x;
  return (size_t)(cr - s) + 2;
}

static void on_message(peer *p, const char *pl, size_t n) {
  if (n < 16) return;
  uint32_t pub, seq;
  uint64_t ts;
  memcpy(&pub, pl, 4);
  memcpy(&seq, pl + 4, 4);
  memcpy(&ts, pl + 8, 8);
  if (pub >= (uint32_t)npubs || seq < p->last[pub]) order_errors++;
  else p->last[pub] = seq + 1;
  p->got++;
  deliveries++;
  if (nlat < latcap) {
    uint64_t t = now_ns();
    if (lat_at) lat_at[nlat] = t;
    lat[nlat++] = t - ts;
  }
}

/* Consumes the complete frames in p->in. */
static void parse(peer *p) {
  size_t off = 0;
  for (;;) {
    const char *s = p->in + off;
    size_t n = p->inlen - off, u;
    long long v;
    if (n == 0) break;
    if (s[0] == ':') { /* PUBLISH reply */
      if (!(u = line(s, n, &v))) break;
      p->acked++;
      off += u;
      continue;
    }
    if (s[0] == '-') {
      fprintf(stderr, "pubsub_load: error reply: %.*s\n", (int)(n < 200 ? n : 200), s);
      exit(2);
    }
    /* *3 $7 message|$9 subscribe ... */
    size_t at = 0;
    long long cnt;
    if (!(u = line(s, n, &cnt))) break;
    at += u;
    long long kl;
    if (!(u = line(s + at, n - at, &kl))) break;
    at += u;
    if (n - at < (size_t)kl + 2) break;
    const char *kind = s + at;
    at += (size_t)kl + 2;
    long long cl;
    if (!(u = line(s + at, n - at, &cl))) break;
    at += u;
    if (n - at < (size_t)cl + 2) break;
    at += (size_t)cl + 2;
    if (kl == 9 && memcmp(kind, "subscribe", 9) == 0) {
      if (!(u = line(s + at, n - at, &v))) break;
      p->confirmed = 1;
      off += at + u;
      continue;
    }
    long long pl;
    if (!(u = line(s + at, n - at, &pl))) break;
    at += u;
    if (n - at < (size_t)pl + 2) break;
    on_message(p, s + at, (size_t)pl);
    off += at + (size_t)pl + 2;
  }
  memmove(p->in, p->in + off, p->inlen - off);
  p->inlen -= off;
}

/* One read per readiness: every socket is level-triggered, so what a read
 * leaves behind is reported by the next epoll_wait. Reading again until
 * EAGAIN would cost each readiness one read that returns nothing (about a
 * third of this client's syscalls in the fan-out run). A read that filled
 * the buffer is repeated (after the buffer grew), the usual case of a
 * subscriber that fell behind. */
static void read_peer(peer *p) {
  for (;;) {
    if (p->incap - p->inlen < 65536) {
      p->incap = p->incap * 2 + 65536;
      p->in = realloc(p->in, p->incap);
    }
    size_t room = p->incap - p->inlen;
    ssize_t r = read(p->fd, p->in + p->inlen, room);
    if (r < 0) {
      if (errno == EAGAIN) return;
      die("read");
    }
    if (r == 0) {
      fprintf(stderr, "pubsub_load: server closed a connection\n");
      exit(2);
    }
    p->inlen += (size_t)r;
    parse(p);
    if ((size_t)r < room) return;
  }
}

/* --pub-port: see the header comment. Blocking; bounded to 60 s. */
static void probe_subscriptions(void) {
  int fd = dial_port(pub_port);
  uint64_t deadline = now_ns() + 60ull * 1000000000ull;
  for (int c = 0; c < nchan; c++) {
    long want = 0;
    for (int i = 0; i < nsubs; i++) want += (i % nchan) == c;
    for (;;) {
      char buf[128], rep[64];
      char ch[32];
      int cl = snprintf(ch, sizeof ch, "ch%d", c);
      int n = snprintf(buf, sizeof buf, "*3\r\n$7\r\nPUBLISH\r\n$%d\r\n%s\r\n$5\r\nprobe\r\n", cl, ch);
      send_all(fd, buf, (size_t)n);
      size_t got = 0;
      while (got < sizeof rep - 1 && (got == 0 || rep[got - 1] != '\n')) {
        ssize_t r = read(fd, rep + got, 1);
        if (r <= 0) die("probe");
        got += (size_t)r;
      }
      rep[got] = 0;
      if (rep[0] == ':' && atol(rep + 1) >= want) break;
      if (now_ns() > deadline) {
        fprintf(stderr, "pubsub_load: %s's subscriptions did not reach port %d in 60 s\n", ch,
                pub_port);
        exit(2);
      }
      usleep(50000);
    }
  }
  close(fd);
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  for (int i = 1; i + 1 < argc; i += 2) {
    const char *a = argv[i], *v = argv[i + 1];
    if (!strcmp(a, "--port")) port = atoi(v);
    else if (!strcmp(a, "--host")) host = v;
    else if (!strcmp(a, "--subs")) nsubs = atoi(v);
    else if (!strcmp(a, "--channels")) nchan = atoi(v);
    else if (!strcmp(a, "--pubs")) npubs = atoi(v);
    else if (!strcmp(a, "--size")) size = atoi(v);
    else if (!strcmp(a, "--window")) window = atoi(v);
    else if (!strcmp(a, "--messages")) nmsg = atol(v);
    else if (!strcmp(a, "--name")) name = v;
    else if (!strcmp(a, "--pub-port")) pub_port = atoi(v);
    else {
      fprintf(stderr, "pubsub_load: unknown option %s\n", a);
      return 2;
    }
  }
  if (!port || nsubs < 0 || nchan < 1 || npubs < 1 || size < 16 || size > 65536 || window < 1) {
    fprintf(stderr, "pubsub_load: bad arguments (see the header comment)\n");
    return 2;
  }
  epfd = epoll_create1(0);
  peer *subs = calloc((size_t)nsubs, sizeof *subs), *pubs = calloc((size_t)npubs, sizeof *pubs);
  for (int i = 0; i < nsubs; i++) {
    peer *p = &subs[i];
    p->fd = dial();
    p->idx = i;
    p->last = calloc((size_t)npubs, sizeof *p->last);
    char buf[128];
    char ch[32];
    int cl = snprintf(ch, sizeof ch, "ch%d", i % nchan);
    int n = snprintf(buf, sizeof buf, "*2\r\n$9\r\nSUBSCRIBE\r\n$%d\r\n%s\r\n", cl, ch);
    send_all(p->fd, buf, (size_t)n);
  }
  for (int i = 0; i < nsubs; i++) { /* wait for every confirmation (blocking) */
    peer *p = &subs[i];
    while (!p->confirmed) {
      if (p->incap - p->inlen < 4096) p->in = realloc(p->in, p->incap = p->incap * 2 + 4096);
      ssize_t r = read(p->fd, p->in + p->inlen, p->incap - p->inlen);
      if (r <= 0) die("subscribe");
      p->inlen += (size_t)r;
      parse(p);
    }
  }
  if (pub_port && nsubs > 0) probe_subscriptions();
  uint64_t expect = 0; /* deliveries expected in all */
  for (int c = 0; c < nchan; c++) {
    long subs_on_c = 0;
    for (int i = 0; i < nsubs; i++) subs_on_c += (i % nchan) == c;
    long msgs_on_c = nmsg / nchan + (c < nmsg % nchan);
    expect += (uint64_t)subs_on_c * (uint64_t)msgs_on_c * (uint64_t)npubs;
  }
  latcap = expect < 4000000 ? expect : 4000000;
  lat = malloc((latcap + 1) * sizeof *lat);
  if (getenv("PUBSUB_LOAD_DUMP")) lat_at = malloc((latcap + 1) * sizeof *lat_at);
  struct epoll_event ev;
  for (int i = 0; i < nsubs; i++) {
    ev.events = EPOLLIN;
    ev.data.ptr = &subs[i];
    epoll_ctl(epfd, EPOLL_CTL_ADD, subs[i].fd, &ev);
    subs[i].is_pub = 0;
    int flags = 1;
    ioctl(subs[i].fd, FIONBIO, &flags);
  }
  uint64_t t0 = now_ns();
  for (int j = 0; j < npubs; j++) {
    peer *p = &pubs[j];
    p->fd = pub_port ? dial_port(pub_port) : dial();
    p->is_pub = 1;
    p->idx = j;
    int flags = 1;
    ioctl(p->fd, FIONBIO, &flags);
    ev.events = EPOLLIN; /* level-triggered, like the subscribers (read_peer) */
    ev.data.ptr = p;
    epoll_ctl(epfd, EPOLL_CTL_ADD, p->fd, &ev);
    publish_more(p);
  }
  struct epoll_event evs[256];
  uint64_t last_progress = now_ns(), tlast = t0;
  while (deliveries < expect) {
    int n = epoll_wait(epfd, evs, 256, 1000);
    for (int i = 0; i < n; i++) {
      peer *p = evs[i].data.ptr;
      if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) read_peer(p);
      if (p->is_pub) publish_more(p); /* acks opened the window, or EPOLLOUT */
    }
    uint64_t t = now_ns();
    if (n > 0) {
      last_progress = t;
      tlast = t;
    } else if (t - last_progress > 10ull * 1000000000ull) {
      break; /* nothing for 10 s: count what is missing */
    }
  }
  double secs = (double)(tlast - t0) / 1e9;
  if (lat_at) {
    FILE *f = fopen(getenv("PUBSUB_LOAD_DUMP"), "w");
    for (size_t i = 0; f && i < nlat; i++) fprintf(f, "%llu %llu\n", (unsigned long long)(lat_at[i] - t0), (unsigned long long)lat[i]);
    if (f) fclose(f);
  }
  qsort(lat, nlat, sizeof *lat, cmp_u64);
  double p50 = nlat ? (double)lat[nlat / 2] / 1000.0 : 0, p99 = nlat ? (double)lat[nlat * 99 / 100] / 1000.0 : 0;
  uint64_t lost = expect - (deliveries < expect ? deliveries : expect);
  printf("RESULT pubsub %s %.3f %llu %.0f deliveries/s p50_us=%.1f p99_us=%.1f lost=%llu order_errors=%llu\n",
         name, secs, (unsigned long long)deliveries, secs > 0 ? (double)deliveries / secs : 0, p50, p99,
         (unsigned long long)lost, (unsigned long long)order_errors);
  return lost || order_errors ? 1 : 0;
}
