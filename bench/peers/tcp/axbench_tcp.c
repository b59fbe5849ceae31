/* Plain TCP peer of the Axon remote benchmarks: the physical limit of two
 * processes talking over loopback, with no runtime in between.
 *
 * Build:  cc -O2 -std=gnu11 -o axbench_tcp axbench_tcp.c
 * Usage:  axbench_tcp remote_pingpong [WINDOW [ROUND_TRIPS]]   (default 1 100000)
 *         axbench_tcp remote_bulk [MESSAGES]                   (default 1000)
 *         axbench_tcp node_down [SAMPLES]                      (default 5)
 * Each prints exactly one line on stdout:
 *   RESULT <name> tcp <wall_seconds> <ops> <ops_per_second> <unit>[ key=value...]
 * and exits 1 with a message on stderr when a check fails (2: bad usage).
 *
 * The second process (the "node") is this program re-executed from
 * /proc/self/exe with the hidden subcommand `__node MODE ...`; it inherits
 * the listening socket (127.0.0.1, port 0) and accepts one connection. It
 * dies with its parent (PR_SET_PDEATHSIG) and the parent kills and reaps it
 * on every exit path. wall_seconds excludes process start and connecting.
 *
 * remote_pingpong: a request is a frame of 44 bytes: u32 length (40, native
 *   byte order), u64 sequence number, 32 bytes of payload (a pattern of the
 *   sequence number). The node parses every frame and echoes it. The client
 *   keeps WINDOW requests in flight (closed loop: one new request per
 *   reply, all the requests a read() made possible go out in one write),
 *   checks every reply (length, sequence number in order, payload bytes)
 *   and the count. Both sockets TCP_NODELAY, blocking. WINDOW <= 1024 so
 *   that the bytes in flight (<= 45 KiB each way) always fit the socket
 *   buffers and two blocking writers can never deadlock.
 *   RESULT remote_pingpong tcp <wall> <round_trips> <rt/s> rt window=W payload=32
 * remote_bulk: MESSAGES messages of 1 MiB payload, each with a 16-byte
 *   header (u32 magic, u32 length, u64 sequence number); the payload's first
 *   and last 8 bytes carry the sequence number. The node reads each message
 *   whole into one 1 MiB buffer (as a runtime must, to deliver it),
 *   checks header, order and the two stamps, and after the last one sends
 *   back the payload byte total, which the client checks. wall runs from the
 *   first write to that acknowledgement.
 *   RESULT remote_bulk tcp <wall> <msgs> <msgs/s> msgs MB_s=<payload 1e6 bytes/s> size=1048576
 * node_down: SAMPLES times: start a node, exchange one byte, kill -9 it and
 *   time until read() on the connection returns end-of-file (the kernel
 *   closes the dead process's socket). Plain TCP has no liveness protocol,
 *   so a SIGSTOPped peer is never detected (keepalive: 2 h by default); not
 *   measured.
 *   RESULT node_down tcp <wall> <samples> <samples/s> samples kill9_ms=<median> kill9_max_ms=<max>
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAYLOAD 32
#define FRAME (4 + 8 + PAYLOAD)
#define MAX_WINDOW 1024
#define BULK_SIZE (1u << 20)
#define BULK_MAGIC 0x41584231u /* "AXB1" */
#define HDR 16

static pid_t child_pid = -1;

static void kill_child(void) {
  if (child_pid > 0) {
    kill(child_pid, SIGKILL);
    waitpid(child_pid, NULL, 0);
    child_pid = -1;
  }
}

static _Noreturn void fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("axbench tcp: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  kill_child();
  exit(1);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_signal(int sig) {
  if (child_pid > 0) kill(child_pid, SIGKILL);
  signal(sig, SIG_DFL);
  raise(sig);
}

static inline uint8_t pat(uint64_t seq, int i) { return (uint8_t)(seq * 131u + (unsigned)i * 7u + 1u); }

static void write_all(int fd, const void *buf, size_t n) {
  const char *p = buf;
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      fail("write: %s", strerror(errno));
    }
    p += w;
    n -= (size_t)w;
  }
}

/* Reads exactly n bytes; false on end-of-file before the first byte. */
static bool read_full(int fd, void *buf, size_t n) {
  char *p = buf;
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(fd, p + got, n - got);
    if (r < 0) {
      if (errno == EINTR) continue;
      fail("read: %s", strerror(errno));
    }
    if (r == 0) {
      if (got == 0) return false;
      fail("read: end of stream inside a message");
    }
    got += (size_t)r;
  }
  return true;
}

static void nodelay(int fd) {
  int one = 1;
  if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0)
    fail("TCP_NODELAY: %s", strerror(errno));
}

/* ---- the node (second process) ---- */

static int node_accept(int lfd) {
  int fd = accept(lfd, NULL, NULL);
  if (fd < 0) fail("node: accept: %s", strerror(errno));
  close(lfd);
  nodelay(fd);
  return fd;
}

static int node_pingpong(int fd) {
  static char in[1 << 16], out[1 << 16];
  size_t have = 0;
  for (;;) {
    ssize_t r = read(fd, in + have, sizeof(in) - have);
    if (r < 0) {
      if (errno == EINTR) continue;
      fail("node: read: %s", strerror(errno));
    }
    if (r == 0) return have == 0 ? 0 : 1;
    have += (size_t)r;
    size_t off = 0, olen = 0;
    while (have - off >= 4) {
      uint32_t len;
      memcpy(&len, in + off, 4);
      if (len != FRAME - 4) fail("node: bad frame length %" PRIu32, len);
      if (have - off < FRAME) break;
      memcpy(out + olen, in + off, FRAME);
      olen += FRAME;
      off += FRAME;
    }
    memmove(in, in + off, have - off);
    have -= off;
    if (olen) write_all(fd, out, olen);
  }
}

static int node_bulk(int fd, uint64_t n) {
  char *buf = malloc(BULK_SIZE);
  if (!buf) fail("node: out of memory");
  uint64_t total = 0;
  for (uint64_t seq = 0; seq < n; seq++) {
    unsigned char h[HDR];
    if (!read_full(fd, h, HDR)) fail("node: stream ended after %" PRIu64 " messages", seq);
    uint32_t magic, len;
    uint64_t s, a, b;
    memcpy(&magic, h, 4);
    memcpy(&len, h + 4, 4);
    memcpy(&s, h + 8, 8);
    if (magic != BULK_MAGIC || len != BULK_SIZE || s != seq)
      fail("node: bad header at message %" PRIu64, seq);
    if (!read_full(fd, buf, len)) fail("node: stream ended inside message %" PRIu64, seq);
    memcpy(&a, buf, 8);
    memcpy(&b, buf + len - 8, 8);
    if (a != seq || b != seq) fail("node: bad payload stamps in message %" PRIu64, seq);
    total += len;
  }
  unsigned char ack[HDR];
  uint32_t magic = BULK_MAGIC, z = 0;
  memcpy(ack, &magic, 4);
  memcpy(ack + 4, &z, 4);
  memcpy(ack + 8, &total, 8);
  write_all(fd, ack, HDR);
  char c;
  while (read(fd, &c, 1) > 0) {
  }
  free(buf);
  return 0;
}

static int node_idle(int fd) {
  char c;
  if (!read_full(fd, &c, 1)) return 1;
  write_all(fd, &c, 1);
  while (read(fd, &c, 1) > 0) {
  }
  return 0;
}

static int node_main(int argc, char **argv) {
  /* __node MODE LISTEN_FD [N] */
  if (argc < 4) fail("node: bad arguments");
  int lfd = atoi(argv[3]);
  int fd = node_accept(lfd);
  if (strcmp(argv[2], "pingpong") == 0) return node_pingpong(fd);
  if (strcmp(argv[2], "bulk") == 0 && argc >= 5) return node_bulk(fd, strtoull(argv[4], NULL, 10));
  if (strcmp(argv[2], "idle") == 0) return node_idle(fd);
  fail("node: unknown mode '%s'", argv[2]);
}

/* ---- the client ---- */

/* Starts the node (MODE, extra argument or NULL) and returns the connected
 * socket. */
static int start_node(const char *mode, const char *arg) {
  int lfd = socket(AF_INET, SOCK_STREAM, 0);
  if (lfd < 0) fail("socket: %s", strerror(errno));
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t sl = sizeof(sa);
  if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(lfd, 4) != 0 ||
      getsockname(lfd, (struct sockaddr *)&sa, &sl) != 0)
    fail("listen: %s", strerror(errno));
  char fdbuf[16];
  snprintf(fdbuf, sizeof(fdbuf), "%d", lfd);
  pid_t parent = getpid();
  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) fail("fork: %s", strerror(errno));
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);
    char *args[] = {"axbench_tcp", "__node", (char *)mode, fdbuf, (char *)arg, NULL};
    execv("/proc/self/exe", args);
    _exit(127);
  }
  child_pid = pid;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
    fail("connect: %s", strerror(errno));
  close(lfd);
  nodelay(fd);
  return fd;
}

/* Closes the connection and checks that the node ended cleanly. */
static void stop_node(int fd) {
  close(fd);
  int st;
  if (waitpid(child_pid, &st, 0) != child_pid) fail("waitpid: %s", strerror(errno));
  child_pid = -1;
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) fail("node failed (status 0x%x)", st);
}

static void put_frame(char *p, uint64_t seq) {
  uint32_t len = FRAME - 4;
  memcpy(p, &len, 4);
  memcpy(p + 4, &seq, 8);
  for (int i = 0; i < PAYLOAD; i++) p[12 + i] = (char)pat(seq, i);
}

static void remote_pingpong(int64_t window, int64_t n) {
  if (window > MAX_WINDOW) fail("remote_pingpong: WINDOW > %d", MAX_WINDOW);
  int fd = start_node("pingpong", NULL);
  static char in[(MAX_WINDOW + 1) * FRAME], out[(MAX_WINDOW + 1) * FRAME];
  uint64_t sent = 0, got = 0;
  double t0 = now_s();
  size_t olen = 0;
  while ((int64_t)sent < window && (int64_t)sent < n) put_frame(out + olen, sent++), olen += FRAME;
  write_all(fd, out, olen);
  size_t have = 0;
  while ((int64_t)got < n) {
    ssize_t r = read(fd, in + have, sizeof(in) - have);
    if (r < 0) {
      if (errno == EINTR) continue;
      fail("read: %s", strerror(errno));
    }
    if (r == 0) fail("node closed the connection after %" PRIu64 " replies", got);
    have += (size_t)r;
    size_t off = 0;
    olen = 0;
    while (have - off >= FRAME) {
      const char *f = in + off;
      uint32_t len;
      uint64_t seq;
      memcpy(&len, f, 4);
      memcpy(&seq, f + 4, 8);
      if (len != FRAME - 4) fail("bad reply length %" PRIu32, len);
      if (seq != got) fail("reply %" PRIu64 " out of order (expected %" PRIu64 ")", seq, got);
      for (int i = 0; i < PAYLOAD; i++)
        if ((uint8_t)f[12 + i] != pat(seq, i)) fail("reply %" PRIu64 ": payload corrupted", seq);
      got++;
      off += FRAME;
      if ((int64_t)sent < n) put_frame(out + olen, sent++), olen += FRAME;
    }
    memmove(in, in + off, have - off);
    have -= off;
    if (olen) write_all(fd, out, olen);
  }
  double wall = now_s() - t0;
  if ((int64_t)got != n || sent != got) fail("remote_pingpong: %" PRIu64 " replies, expected %" PRId64, got, n);
  stop_node(fd);
  printf("RESULT remote_pingpong tcp %.6f %" PRId64 " %.1f rt window=%" PRId64 " payload=%d\n", wall, n,
         (double)n / wall, window, PAYLOAD);
}

static void remote_bulk(int64_t n) {
  char arg[32];
  snprintf(arg, sizeof(arg), "%" PRId64, n);
  int fd = start_node("bulk", arg);
  char *payload = malloc(BULK_SIZE);
  if (!payload) fail("out of memory");
  for (uint32_t i = 0; i < BULK_SIZE; i++) payload[i] = (char)pat(i, (int)(i >> 12));
  double t0 = now_s();
  for (uint64_t seq = 0; seq < (uint64_t)n; seq++) {
    unsigned char h[HDR];
    uint32_t magic = BULK_MAGIC, len = BULK_SIZE;
    memcpy(h, &magic, 4);
    memcpy(h + 4, &len, 4);
    memcpy(h + 8, &seq, 8);
    memcpy(payload, &seq, 8);
    memcpy(payload + BULK_SIZE - 8, &seq, 8);
    struct iovec iov[2] = {{h, HDR}, {payload, BULK_SIZE}};
    size_t left = HDR + BULK_SIZE;
    int i = 0;
    while (left > 0) {
      ssize_t w = writev(fd, iov + i, 2 - i);
      if (w < 0) {
        if (errno == EINTR) continue;
        fail("writev: %s", strerror(errno));
      }
      left -= (size_t)w;
      while (w > 0) {
        if ((size_t)w >= iov[i].iov_len) {
          w -= (ssize_t)iov[i].iov_len;
          iov[i].iov_len = 0;
          i++;
        } else {
          iov[i].iov_base = (char *)iov[i].iov_base + w;
          iov[i].iov_len -= (size_t)w;
          w = 0;
        }
      }
    }
  }
  unsigned char ack[HDR];
  if (!read_full(fd, ack, HDR)) fail("remote_bulk: node closed without acknowledging");
  double wall = now_s() - t0;
  uint32_t magic;
  uint64_t total;
  memcpy(&magic, ack, 4);
  memcpy(&total, ack + 8, 8);
  if (magic != BULK_MAGIC || total != (uint64_t)n * BULK_SIZE)
    fail("remote_bulk: node got %" PRIu64 " bytes, expected %" PRIu64, total, (uint64_t)n * BULK_SIZE);
  stop_node(fd);
  free(payload);
  printf("RESULT remote_bulk tcp %.6f %" PRId64 " %.1f msgs MB_s=%.1f size=%u\n", wall, n, (double)n / wall,
         (double)total / 1e6 / wall, BULK_SIZE);
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static void node_down(int64_t samples) {
  double *ms = calloc((size_t)samples, sizeof(double));
  if (!ms) fail("out of memory");
  double t_all = 0;
  for (int64_t s = 0; s < samples; s++) {
    int fd = start_node("idle", NULL);
    char c = 'x';
    write_all(fd, &c, 1);
    if (!read_full(fd, &c, 1) || c != 'x') fail("node_down: node did not answer");
    double t0 = now_s();
    if (kill(child_pid, SIGKILL) != 0) fail("kill: %s", strerror(errno));
    ssize_t r;
    do r = read(fd, &c, 1);
    while (r < 0 && errno == EINTR);
    double t1 = now_s();
    if (r != 0 && !(r < 0 && errno == ECONNRESET)) fail("node_down: read after kill -9 returned %zd", r);
    ms[s] = (t1 - t0) * 1e3;
    t_all += t1 - t0;
    close(fd);
    waitpid(child_pid, NULL, 0);
    child_pid = -1;
  }
  qsort(ms, (size_t)samples, sizeof(double), cmp_d);
  printf("RESULT node_down tcp %.6f %" PRId64 " %.1f samples kill9_ms=%.3f kill9_max_ms=%.3f\n", t_all, samples,
         (double)samples / t_all, ms[(samples - 1) / 2], ms[samples - 1]);
  free(ms);
}

static int64_t param(int argc, char **argv, int i, int64_t def) {
  if (i >= argc) return def;
  char *end;
  errno = 0;
  long long v = strtoll(argv[i], &end, 10);
  if (errno || end == argv[i] || *end || v <= 0) {
    fprintf(stderr, "axbench tcp: bad parameter '%s'\n", argv[i]);
    exit(2);
  }
  return v;
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  if (argc >= 2 && strcmp(argv[1], "__node") == 0) return node_main(argc, argv);
  signal(SIGTERM, on_signal);
  signal(SIGINT, on_signal);
  signal(SIGHUP, on_signal);
  if (argc >= 2 && strcmp(argv[1], "remote_pingpong") == 0)
    remote_pingpong(param(argc, argv, 2, 1), param(argc, argv, 3, 100000));
  else if (argc >= 2 && strcmp(argv[1], "remote_bulk") == 0)
    remote_bulk(param(argc, argv, 2, 1000));
  else if (argc >= 2 && strcmp(argv[1], "node_down") == 0)
    node_down(param(argc, argv, 2, 5));
  else {
    fprintf(stderr, "usage: axbench_tcp remote_pingpong [WINDOW ROUND_TRIPS] | remote_bulk [MESSAGES] | "
                    "node_down [SAMPLES]\n");
    return 2;
  }
  return 0;
}
