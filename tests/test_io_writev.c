/* Axon tests: vector writes (ax_conn_writev) and the queue-level notice
 * (ax_conn_notify_below). Writes are all-or-nothing as a whole: a frame of
 * several parts is refused whole under a full queue and never interleaves
 * with another thread's frame; every check reads the peer's bytes (a plain
 * blocking socket) and parses them as frames. Zero-copy parts are held by
 * reference until sent, read-slab parts are copied when queued, MSG_ZEROCOPY
 * parts complete; out of memory leaves nothing partial. BELOW comes once
 * per arming, at once when already below, never refuses a write, and
 * arrives even when memory fails after it was armed. Every wait is on a
 * condition with a generous bound. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "axon.h"
#include "base/base.h"
#include "support/testutil.h"

#define WAIT_MS 30000
#define MAGIC 0xA5F00D5Au
#define MAXC 8

/* ---- the owner: records its connections and what it hears ---- */
static struct {
  _Atomic uint16_t port;
  _Atomic uint64_t conns[MAXC], nconn;
  _Atomic uint64_t below, below_bytes, below_after_close;
  _Atomic uint64_t closed, close_reason, close_code;
  _Atomic bool forward;          /* DATA is forwarded to conns[0] with writev */
  _Atomic uint64_t fwd_ok, fwd_refused, fwd_bytes;
} G;

typedef struct own_arg {
  ax_io_opts o;
} own_arg;

static uint16_t port_of(ax_listener l) {
  char a[AX_IO_ADDRSTRLEN];
  size_t n = sizeof a;
  if (ax_listener_addr(l, a, &n) != AX_OK) return 0;
  return (uint16_t)atoi(strrchr(a, ':') + 1);
}

static ax_err own_init(ax_actor *self, void *state, const void *arg, size_t len) {
  (void)state;
  if (len != sizeof(own_arg)) return AX_EINVAL;
  const own_arg *a = arg;
  ax_listener l;
  ax_err e = ax_listen(self, "127.0.0.1:0", &a->o, &l);
  if (e == AX_OK) atomic_store(&G.port, port_of(l));
  return e;
}

static ax_err own_b(ax_actor *self, const ax_msg *m) {
  switch (m->type) {
  case AX_MSG_IO_ACCEPTED: {
    ax_conn c = ((const ax_io_conn_info *)m->data)->conn;
    uint64_t i = atomic_load(&G.nconn);
    if (i < MAXC) atomic_store(&G.conns[i], c.id);
    atomic_store(&G.nconn, i + 1);
    if (atomic_load(&G.forward) && i > 0) ax_conn_resume_read(c); /* the source */
    return AX_OK;
  }
  case AX_MSG_IO_DATA: {
    if (!atomic_load(&G.forward)) return AX_OK;
    /* A 4-byte length header (copied) and the read slab's slice (by
     * reference): queued slab bytes must be copied, so this reader's
     * slabs are free as soon as the behaviour returns. */
    ax_conn dst = {ax_actor_system(self), atomic_load(&G.conns[0])};
    uint32_t h = (uint32_t)m->len;
    ax_iov v[2] = {{&h, sizeof h, NULL}, {m->data, m->len, m->buf}};
    ax_err e = ax_conn_writev(dst, v, 2);
    if (e == AX_OK) {
      atomic_fetch_add(&G.fwd_ok, 1);
      atomic_fetch_add(&G.fwd_bytes, m->len);
    } else {
      atomic_fetch_add(&G.fwd_refused, 1);
    }
    return AX_OK;
  }
  case AX_MSG_IO_BELOW: {
    const ax_io_event *ev = m->data;
    CU_ASSERT_EQUAL(m->len, sizeof *ev);
    CU_ASSERT_EQUAL(ev->conn.id, m->ref);
    if (atomic_load(&G.closed)) atomic_fetch_add(&G.below_after_close, 1);
    atomic_store(&G.below_bytes, ev->bytes);
    atomic_fetch_add(&G.below, 1);
    return AX_OK;
  }
  case AX_MSG_IO_CLOSED: {
    const ax_io_event *ev = m->data;
    if (!ev->conn.id) return AX_OK; /* the listener */
    atomic_store(&G.close_reason, (uint64_t)ev->reason);
    atomic_store(&G.close_code, (uint64_t)ev->code);
    atomic_fetch_add(&G.closed, 1);
    return AX_OK;
  }
  default: return AX_OK;
  }
}

static const ax_actor_spec own_spec = {.name = "writev-owner", .behaviour = own_b,
                                       .init = own_init};

static ax_system *start(const ax_io_opts *o) {
  ax_system_config cfg;
  ax_system_config_init(&cfg);
  cfg.workers = 2;
  ax_system *sys = NULL;
  CU_ASSERT_FATAL(ax_system_new(&cfg, &sys) == AX_OK);
  memset(&G, 0, sizeof G);
  own_arg a;
  if (o) a.o = *o;
  else ax_io_opts_init(&a.o);
  ax_pid pid;
  CU_ASSERT_FATAL(ax_system_spawn(sys, &own_spec, &a, sizeof a, &pid) == AX_OK);
  CU_ASSERT_FATAL(atomic_load(&G.port) != 0);
  return sys;
}

static void stop(ax_system *sys) {
  CU_ASSERT(ax_system_shutdown(sys) == AX_OK);
  ax_system_free(sys);
}

/* A blocking peer (rcvbuf > 0: that receive buffer, so that a peer that
 * does not read fills up soon); *c gets the accepted connection. */
static int peer(ax_system *sys, int rcvbuf, ax_conn *c) {
  uint64_t before = atomic_load(&G.nconn);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (rcvbuf > 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  struct timeval tv = {WAIT_MS / 1000, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atomic_load(&G.port)),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
      !ax_test_wait_count(&G.nconn, before + 1, WAIT_MS)) {
    close(fd);
    return -1;
  }
  c->sys = sys;
  c->id = atomic_load(&G.conns[before]);
  return fd;
}

/* Reads to EOF (or an error/timeout) into a growing buffer; *n its size. */
static uint8_t *read_all(int fd, size_t *n) {
  size_t cap = 1 << 20, len = 0;
  uint8_t *b = malloc(cap);
  for (;;) {
    if (len == cap) b = realloc(b, cap *= 2);
    ssize_t k = read(fd, b + len, cap - len);
    if (k <= 0) break;
    len += (size_t)k;
  }
  *n = len;
  return b;
}

/* ---- frames: header {magic, writer, seq, len}, payload pat(writer, i) ---- */
typedef struct fhdr {
  uint32_t magic, writer, seq, len;
} fhdr;

static uint8_t pat(uint32_t w, size_t i) { return (uint8_t)(i * 31u + w * 97u + (i >> 9)); }

/* Parses b[0..n) as whole frames; per writer, seqs 0, 1, 2... in order.
 * Returns the number of frames, or -1 (and says why) on any defect: a bad
 * magic or payload (a torn or interleaved frame), a gap, trailing bytes. */
static long parse_frames(const uint8_t *b, size_t n, uint32_t writers, uint32_t *next) {
  size_t off = 0;
  long frames = 0;
  memset(next, 0, writers * sizeof *next);
  while (off < n) {
    fhdr h;
    if (n - off < sizeof h) {
      fprintf(stderr, "\n  %zu trailing bytes at %zu", n - off, off);
      return -1;
    }
    memcpy(&h, b + off, sizeof h);
    if (h.magic != MAGIC || h.writer >= writers || h.len > (1u << 24)) {
      fprintf(stderr, "\n  bad header at %zu (magic %08x writer %u)", off, h.magic, h.writer);
      return -1;
    }
    if (h.seq != next[h.writer]) {
      fprintf(stderr, "\n  writer %u: seq %u, expected %u", h.writer, h.seq, next[h.writer]);
      return -1;
    }
    off += sizeof h;
    if (n - off < h.len) {
      fprintf(stderr, "\n  a torn payload at %zu (%u of %zu bytes)", off, h.len, n - off);
      return -1;
    }
    for (size_t i = 0; i < h.len; i++)
      if (b[off + i] != pat(h.writer, i)) {
        fprintf(stderr, "\n  writer %u seq %u: payload byte %zu differs", h.writer, h.seq, i);
        return -1;
      }
    off += h.len;
    next[h.writer]++;
    frames++;
  }
  return frames;
}

static _Atomic uint64_t bufs_freed;
static void pat_free(void *data, size_t cap, void *arg) {
  (void)cap, (void)arg;
  free(data);
  atomic_fetch_add(&bufs_freed, 1);
}

/* A buffer holding pat(w, 0..len). */
static ax_buf *pat_buf(uint32_t w, size_t len) {
  uint8_t *p = malloc(len);
  for (size_t i = 0; i < len; i++) p[i] = pat(w, i);
  ax_buf *b = NULL;
  CU_ASSERT_FATAL(ax_buf_wrap(p, len, pat_free, NULL, &b) == AX_OK);
  return b;
}

/* One frame of `len` payload bytes in three parts: the header (copied), the
 * first `split` payload bytes by reference to zb (pat(w, ...)), the rest
 * copied from plain memory pb. */
static ax_err write_frame(ax_conn c, uint32_t w, uint32_t seq, uint32_t len, size_t split,
                          ax_buf *zb, const uint8_t *pb) {
  fhdr h = {MAGIC, w, seq, len};
  if (split > len) split = len;
  ax_iov v[3] = {{&h, sizeof h, NULL},
                 {ax_buf_data(zb), split, zb},
                 {pb + split, len - split, NULL}};
  return ax_conn_writev(c, v, 3);
}

/* Writes chunks to c (whose peer does not read) until at least min bytes
 * wait in its queue (or a refusal); *written gets the bytes accepted. */
static void fill(ax_conn c, size_t min, uint64_t *written) {
  static char chunk[32768];
  for (int i = 0; i < 10000; i++) {
    ax_conn_stats st;
    if (ax_conn_stats_get(c, &st) != AX_OK || st.queued >= min) return;
    if (ax_conn_write(c, chunk, sizeof chunk) != AX_OK) return;
    *written += sizeof chunk;
  }
}

static uint64_t read_n(int fd, uint64_t want) {
  char *b = malloc(1 << 16);
  uint64_t got = 0;
  while (got < want) {
    ssize_t k = read(fd, b, 1 << 16);
    if (k <= 0) break;
    got += (uint64_t)k;
  }
  free(b);
  return got;
}

/* ---- tests ---- */

static void test_io_writev_arguments(void) {
  ax_system *sys = start(NULL);
  ax_conn c;
  int fd = peer(sys, 0, &c);
  CU_ASSERT_FATAL(fd >= 0);
  char x[8] = "abcdefg";
  ax_buf *b = NULL;
  CU_ASSERT_FATAL(ax_buf_copy(x, sizeof x, &b) == AX_OK);
  ax_iov ok[2] = {{x, 3, NULL}, {(char *)ax_buf_data(b) + 3, 5, b}};
  CU_ASSERT_EQUAL(ax_conn_writev((ax_conn){0}, ok, 2), AX_EINVAL);
  CU_ASSERT_EQUAL(ax_conn_writev(c, NULL, 1), AX_EINVAL);
  CU_ASSERT_EQUAL(ax_conn_writev(c, ok, AX_IOV_MAX + 1), AX_EINVAL);
  ax_iov nul[1] = {{NULL, 1, NULL}};
  CU_ASSERT_EQUAL(ax_conn_writev(c, nul, 1), AX_EINVAL);
  ax_iov out1[1] = {{(char *)ax_buf_data(b) + 4, 5, b}}; /* past the end */
  CU_ASSERT_EQUAL(ax_conn_writev(c, out1, 1), AX_EINVAL);
  ax_iov out2[1] = {{x, 2, b}}; /* not inside b at all */
  CU_ASSERT_EQUAL(ax_conn_writev(c, out2, 1), AX_EINVAL);
  ax_iov big[2] = {{x, SIZE_MAX / 2 + 1, NULL}, {x, SIZE_MAX / 2 + 1, NULL}};
  CU_ASSERT_EQUAL(ax_conn_writev(c, big, 2), AX_EINVAL);
  CU_ASSERT_EQUAL(ax_conn_writev(c, NULL, 0), AX_OK);
  ax_iov empty[2] = {{NULL, 0, NULL}, {x, 0, b}};
  CU_ASSERT_EQUAL(ax_conn_writev(c, empty, 2), AX_OK);
  CU_ASSERT_EQUAL(ax_conn_writev(c, ok, 2), AX_OK);
  CU_ASSERT_EQUAL(ax_conn_notify_below((ax_conn){0}, 0), AX_EINVAL);
  CU_ASSERT_EQUAL(ax_conn_close(c), AX_OK);
  CU_ASSERT_EQUAL(ax_conn_writev(c, ok, 2), AX_ECLOSED);
  CU_ASSERT_EQUAL(ax_conn_notify_below(c, 0), AX_ECLOSED);
  size_t n;
  uint8_t *got = read_all(fd, &n);
  CU_ASSERT_EQUAL(n, 8);
  CU_ASSERT(n == 8 && memcmp(got, x, 8) == 0);
  free(got);
  ax_buf_release(b);
  close(fd);
  stop(sys);
}

/* A system whose connections have a 64 KiB high watermark, and a peer with
 * a 4 KiB receive buffer that does not read yet: the queue fills soon. */
static ax_system *start_tight(ax_io_opts *o, ax_conn *c, int *fd) {
  ax_io_opts_init(o);
  o->high_watermark = 64 * 1024;
  o->low_watermark = 16 * 1024;
  ax_system *sys = start(o);
  *fd = peer(sys, 4096, c);
  CU_ASSERT_FATAL(*fd >= 0);
  return sys;
}

/* The queue is near the watermark: a frame whose header would still fit
 * but whose whole would not is refused whole (two writes would have
 * queued the header and then been refused the payload: a torn stream). */
static void test_io_writev_refused_whole_under_full_queue(void) {
  ax_io_opts o;
  ax_conn c;
  int fd;
  ax_system *sys = start_tight(&o, &c, &fd);
  enum { PAY = 6000 };
  atomic_store(&bufs_freed, 0);
  ax_buf *zb = pat_buf(0, PAY);
  static uint8_t pb[PAY];
  for (size_t i = 0; i < PAY; i++) pb[i] = pat(0, i);
  uint32_t seq = 0, refused = 0;
  for (int i = 0; i < 100000 && refused < 50; i++) {
    /* Varied splits and sizes, so that the queue sits at every distance
     * from the mark. */
    uint32_t len = 1000 + (uint32_t)(i * 977) % (PAY - 1000);
    ax_err e = write_frame(c, 0, seq, len, (size_t)(i * 131) % len, zb, pb);
    if (e == AX_OK) {
      seq++;
    } else {
      CU_ASSERT_EQUAL_FATAL(e, AX_EAGAIN);
      refused++;
    }
  }
  CU_ASSERT(refused == 50);
  CU_ASSERT(seq > 10);
  ax_conn_stats st;
  CU_ASSERT(ax_conn_stats_get(c, &st) == AX_OK);
  CU_ASSERT(st.queued <= o.high_watermark);
  /* The queue holds its own references to zb's slices. */
  ax_buf_release(zb);
  CU_ASSERT_EQUAL(atomic_load(&bufs_freed), 0);
  CU_ASSERT_EQUAL(ax_conn_close(c), AX_OK); /* flushes, then EOF */
  size_t n;
  uint8_t *got = read_all(fd, &n);
  uint32_t next[1];
  long frames = parse_frames(got, n, 1, next);
  CU_ASSERT_EQUAL(frames, (long)seq);
  free(got);
  CU_ASSERT(ax_test_wait_count(&bufs_freed, 1, WAIT_MS)); /* released once sent */
  close(fd);
  stop(sys);
}

/* ---- many writers, one connection ---- */
enum { WRITERS = 4, FRAMES = 1500, MAXPAY = 20000 };

typedef struct wr_arg {
  ax_conn c;
  uint32_t w;
  ax_buf *zb;
  uint8_t *pb;
  _Atomic uint64_t *failures;
} wr_arg;

static void *writer_thread(void *p) {
  wr_arg *a = p;
  unsigned r = a->w * 7919u + 1;
  for (uint32_t seq = 0; seq < FRAMES; seq++) {
    r = r * 1103515245u + 12345u;
    uint32_t len = (r >> 8) % MAXPAY;
    size_t split = (r >> 3) % (len + 1);
    ax_err e;
    int tries = 0;
    /* Refused under a full queue: wait for room (bounded). */
    while ((e = write_frame(a->c, a->w, seq, len, split, a->zb, a->pb)) == AX_EAGAIN &&
           tries++ < 20000)
      ax_test_sleep_ms(1);
    if (e != AX_OK) {
      atomic_fetch_add(a->failures, 1);
      return NULL;
    }
  }
  return NULL;
}

typedef struct rd_arg {
  int fd;
  uint8_t *b;
  size_t n;
} rd_arg;

static void *reader_thread(void *p) {
  rd_arg *a = p;
  a->b = read_all(a->fd, &a->n);
  return NULL;
}

static void test_io_writev_threads_never_interleave(void) {
  ax_io_opts o;
  ax_io_opts_init(&o);
  o.high_watermark = 256 * 1024; /* refusals happen, and whole frames wait */
  o.low_watermark = 64 * 1024;
  ax_system *sys = start(&o);
  ax_conn c;
  int fd = peer(sys, 16384, &c);
  CU_ASSERT_FATAL(fd >= 0);
  atomic_store(&bufs_freed, 0);
  _Atomic uint64_t failures = 0;
  wr_arg wa[WRITERS];
  pthread_t wt[WRITERS], rt;
  rd_arg ra = {fd, NULL, 0};
  CU_ASSERT_FATAL(pthread_create(&rt, NULL, reader_thread, &ra) == 0);
  for (uint32_t w = 0; w < WRITERS; w++) {
    wa[w] = (wr_arg){c, w, pat_buf(w, MAXPAY), malloc(MAXPAY), &failures};
    for (size_t i = 0; i < MAXPAY; i++) wa[w].pb[i] = pat(w, i);
  }
  for (uint32_t w = 0; w < WRITERS; w++)
    CU_ASSERT_FATAL(pthread_create(&wt[w], NULL, writer_thread, &wa[w]) == 0);
  for (uint32_t w = 0; w < WRITERS; w++) pthread_join(wt[w], NULL);
  CU_ASSERT_EQUAL(atomic_load(&failures), 0);
  for (uint32_t w = 0; w < WRITERS; w++) ax_buf_release(wa[w].zb); /* the queue keeps its own */
  CU_ASSERT_EQUAL(ax_conn_close(c), AX_OK);
  pthread_join(rt, NULL);
  uint32_t next[WRITERS];
  long frames = parse_frames(ra.b, ra.n, WRITERS, next);
  CU_ASSERT_EQUAL(frames, (long)WRITERS * FRAMES);
  for (uint32_t w = 0; w < WRITERS; w++) CU_ASSERT_EQUAL(next[w], FRAMES);
  /* Every referenced buffer is released once sent. */
  CU_ASSERT(ax_test_wait_count(&bufs_freed, WRITERS, WAIT_MS));
  free(ra.b);
  for (uint32_t w = 0; w < WRITERS; w++) free(wa[w].pb);
  close(fd);
  stop(sys);
}

/* Referenced parts: a buffer is held by the queue until its bytes are
 * sent (the caller releases at once); MSG_ZEROCOPY parts (TCP, at least
 * zerocopy_min) complete and are released; read-slab parts are copied
 * when queued, so forwarding to a peer that does not read never stops the
 * reader (its slabs are free when the behaviour returns). */
static void test_io_writev_zero_copy_parts(void) {
  ax_io_opts o;
  ax_io_opts_init(&o);
  o.high_watermark = 64u << 20; /* no refusals: every forward is queued */
  o.zerocopy_min = 64 * 1024;
  ax_system *sys = start(&o);
  ax_conn c;
  /* A default receive buffer and a reader from the start: with a tiny
   * one, TCP on loopback (64 KiB MSS) falls back to window probes with
   * backoff and stalls for seconds, with or without zerocopy. */
  int fd = peer(sys, 0, &c);
  CU_ASSERT_FATAL(fd >= 0);
  rd_arg ra = {fd, NULL, 0};
  pthread_t rt;
  CU_ASSERT_FATAL(pthread_create(&rt, NULL, reader_thread, &ra) == 0);
  atomic_store(&bufs_freed, 0);
  enum { BIG = 1u << 20 };
  ax_buf *zb = pat_buf(0, BIG);
  static uint8_t pb[BIG];
  for (size_t i = 0; i < BIG; i++) pb[i] = pat(0, i);
  uint32_t seq = 0;
  for (; seq < 8; seq++) CU_ASSERT_EQUAL(write_frame(c, 0, seq, BIG, BIG - seq * 100, zb, pb), AX_OK);
  for (; seq < 16; seq++) CU_ASSERT_EQUAL(write_frame(c, 0, seq, 5000, seq * 300, zb, pb), AX_OK);
  ax_buf_release(zb);
  CU_ASSERT(ax_test_wait_count(&bufs_freed, 1, WAIT_MS)); /* sent, completed, released */
  ax_conn_stats st;
  CU_ASSERT(ax_conn_stats_get(c, &st) == AX_OK);
  fprintf(stderr, "(zerocopy sends %llu) ", (unsigned long long)st.zerocopy_sends);
  CU_ASSERT_EQUAL(ax_conn_close(c), AX_OK);
  pthread_join(rt, NULL);
  uint32_t next[1];
  CU_ASSERT_EQUAL(parse_frames(ra.b, ra.n, 1, next), 16);
  free(ra.b);
  close(fd);

  /* Read slabs: conns[1] (the source) is forwarded to conns[0] (this
   * destination, whose peer does not read). */
  ax_conn dst;
  int dfd = peer(sys, 4096, &dst);
  CU_ASSERT_FATAL(dfd >= 0);
  atomic_store(&G.conns[0], dst.id);
  atomic_store(&G.nconn, 1);
  atomic_store(&G.forward, true);
  ax_conn src;
  int sfd = peer(sys, 0, &src);
  CU_ASSERT_FATAL(sfd >= 0);
  enum { TOTAL = 16u << 20 }; /* 64 times the reader's 256 KiB slab bound */
  static uint8_t chunk[65536];
  for (size_t i = 0; i < sizeof chunk; i++) chunk[i] = (uint8_t)i;
  size_t sent = 0;
  while (sent < TOTAL) {
    ssize_t k = write(sfd, chunk, sizeof chunk);
    if (k <= 0) break;
    sent += (size_t)k;
  }
  CU_ASSERT_EQUAL(sent, TOTAL); /* the reader never stopped */
  CU_ASSERT(ax_test_wait_count(&G.fwd_bytes, TOTAL, WAIT_MS));
  CU_ASSERT_EQUAL(atomic_load(&G.fwd_refused), 0);
  ax_conn_stats ss, ds;
  CU_ASSERT(ax_conn_stats_get(src, &ss) == AX_OK);
  CU_ASSERT(ax_conn_stats_get(dst, &ds) == AX_OK);
  CU_ASSERT(ss.read_inflight <= 256 * 1024);
  /* Much more than the reader's bound waits in dst's queue: copies. */
  CU_ASSERT(ds.queued > 1u << 20);
  /* The destination's peer gets every byte, each read behind its header. */
  CU_ASSERT_EQUAL(ax_conn_close(dst), AX_OK);
  size_t n;
  uint8_t *got = read_all(dfd, &n);
  size_t off = 0, body = 0, bad = 0;
  while (off + 4 <= n) {
    uint32_t h;
    memcpy(&h, got + off, 4);
    off += 4;
    if (h > n - off) break;
    for (uint32_t i = 0; i < h; i++) bad += got[off + i] != (uint8_t)(body + i);
    body += h;
    off += h;
  }
  CU_ASSERT_EQUAL(off, n);
  CU_ASSERT_EQUAL(body, TOTAL);
  CU_ASSERT_EQUAL(bad, 0);
  free(got);
  close(sfd);
  close(dfd);
  stop(sys);
}

/* Out of memory while queueing a frame's parts: every allocation N fails
 * in turn; the frame is queued whole (AX_OK) or not at all (AX_ENOMEM),
 * and the peer reads exactly the frames that were accepted, whole. */
static bool oom_scenario(long nth) {
  ax_io_opts o;
  ax_io_opts_init(&o);
  o.high_watermark = 16u << 20;
  ax_system *sys = start(&o);
  ax_conn c;
  int fd = peer(sys, 4096, &c);
  CU_ASSERT_FATAL(fd >= 0);
  enum { PAY = 9000 };
  ax_buf *zb = pat_buf(0, PAY);
  static uint8_t pb[PAY];
  for (size_t i = 0; i < PAY; i++) pb[i] = pat(0, i);
  uint32_t seq = 0;
  /* A queue to append to: the peer does not read yet. */
  for (int i = 0; i < 2000; i++) {
    ax_conn_stats st;
    if (ax_conn_stats_get(c, &st) != AX_OK || st.queued >= 256 * 1024) break;
    if (write_frame(c, 0, seq, PAY, 4000, zb, pb) == AX_OK) seq++;
  }
  long before = ax__alloc_failures();
  ax__alloc_fail_after(nth, 0);
  int nomem = 0;
  for (int i = 0; i < 4; i++) {
    ax_err e = write_frame(c, 0, seq, PAY, (size_t)i * 2000, zb, pb);
    if (e == AX_OK) seq++;
    else if (e == AX_ENOMEM) nomem++;
    else CU_ASSERT_EQUAL(e, AX_OK);
  }
  ax__alloc_fail_after(0, 0);
  bool failed = ax__alloc_failures() != before;
  ax_buf_release(zb);
  CU_ASSERT_EQUAL(ax_conn_close(c), AX_OK);
  size_t n;
  uint8_t *got = read_all(fd, &n);
  uint32_t next[1];
  long frames = parse_frames(got, n, 1, next);
  if (frames != (long)seq) fprintf(stderr, "\n  nth=%ld: %ld frames, %u accepted", nth, frames, seq);
  CU_ASSERT_EQUAL(frames, (long)seq);
  free(got);
  close(fd);
  stop(sys);
  return failed;
}

static void test_io_writev_oom_whole_or_nothing(void) {
  long n = 1;
  int quiet = 0;
  for (; n <= 60 && quiet < 3; n++) quiet = oom_scenario(n) ? 0 : quiet + 1;
  fprintf(stderr, "(%ld values of N) ", n - 1);
  CU_ASSERT(n > 4);
}

/* The queue is empty and the socket takes only part of a big writev: the
 * rest cannot be queued out of memory, and half a write is on the wire,
 * so the connection closes (ERROR, ENOMEM) and the call says AX_ECLOSED. */
static void test_io_writev_oom_after_partial_send_closes(void) {
  ax_system *sys = start(NULL);
  ax_conn c;
  int fd = peer(sys, 4096, &c);
  CU_ASSERT_FATAL(fd >= 0);
  enum { PAY = 8u << 20 };
  uint8_t *pb = malloc(PAY);
  memset(pb, 7, PAY);
  fhdr h = {MAGIC, 0, 0, PAY};
  ax_iov v[2] = {{&h, sizeof h, NULL}, {pb, PAY, NULL}};
  ax__alloc_fail_after(1, 1);
  ax_err e = ax_conn_writev(c, v, 2);
  ax__alloc_fail_after(0, 0);
  CU_ASSERT_EQUAL(e, AX_ECLOSED);
  CU_ASSERT(ax_test_wait_count(&G.closed, 1, WAIT_MS));
  CU_ASSERT_EQUAL(atomic_load(&G.close_reason), AX_IO_CLOSE_ERROR);
  CU_ASSERT_EQUAL(atomic_load(&G.close_code), ENOMEM);
  free(pb);
  close(fd);
  stop(sys);
}

/* ---- BELOW ---- */

static void test_io_below_at_once_when_already_below(void) {
  ax_system *sys = start(NULL);
  ax_conn c;
  int fd = peer(sys, 0, &c);
  CU_ASSERT_FATAL(fd >= 0);
  CU_ASSERT_EQUAL(ax_conn_notify_below(c, 0), AX_OK);
  CU_ASSERT(ax_test_wait_count(&G.below, 1, WAIT_MS));
  CU_ASSERT_EQUAL(atomic_load(&G.below_bytes), 0);
  ax_test_sleep_ms(20);
  CU_ASSERT_EQUAL(atomic_load(&G.below), 1); /* one per arming */
  CU_ASSERT_EQUAL(ax_conn_notify_below(c, 100), AX_OK);
  CU_ASSERT(ax_test_wait_count(&G.below, 2, WAIT_MS));
  CU_ASSERT_EQUAL(ax_conn_close(c), AX_OK);
  CU_ASSERT(ax_test_wait_count(&G.closed, 1, WAIT_MS));
  close(fd);
  CU_ASSERT_EQUAL(ax_conn_notify_below(c, 0), AX_ECLOSED);
  stop(sys);
}

/* Armed above the level: nothing until the peer reads; then exactly one
 * BELOW with the queue at or below the level. It refuses no write (the
 * queue goes far past the level, the watermarks alone bound writes), and
 * calling again while armed replaces the level. */
static void test_io_below_one_shot_refuses_nothing(void) {
  ax_system *sys = start(NULL); /* 1 MiB high watermark */
  ax_conn c;
  int fd = peer(sys, 4096, &c);
  CU_ASSERT_FATAL(fd >= 0);
  static char chunk[32768];
  uint64_t written = 0;
  fill(c, 128 * 1024, &written);
  ax_conn_stats st;
  CU_ASSERT(ax_conn_stats_get(c, &st) == AX_OK);
  CU_ASSERT_FATAL(st.queued >= 128 * 1024);
  CU_ASSERT_EQUAL(ax_conn_notify_below(c, 1024), AX_OK);
  CU_ASSERT_EQUAL(ax_conn_notify_below(c, 16 * 1024), AX_OK); /* replaces 1 KiB */
  for (int i = 0; i < 8; i++) {
    CU_ASSERT_EQUAL(ax_conn_write(c, chunk, sizeof chunk), AX_OK); /* never refused */
    written += sizeof chunk;
  }
  ax_test_sleep_ms(20);
  CU_ASSERT_EQUAL(atomic_load(&G.below), 0); /* the peer has not read */
  uint64_t got = read_n(fd, written);
  CU_ASSERT_EQUAL(got, written);
  CU_ASSERT(ax_test_wait_count(&G.below, 1, WAIT_MS));
  CU_ASSERT(atomic_load(&G.below_bytes) <= 16 * 1024);
  ax_test_sleep_ms(20);
  CU_ASSERT_EQUAL(atomic_load(&G.below), 1);
  /* Armed at close: CLOSED comes, never a BELOW after it. */
  fill(c, 64 * 1024, &written);
  CU_ASSERT_EQUAL(ax_conn_notify_below(c, 0), AX_OK);
  CU_ASSERT_EQUAL(ax_conn_abort(c), AX_OK);
  CU_ASSERT(ax_test_wait_count(&G.closed, 1, WAIT_MS));
  ax_test_sleep_ms(20);
  CU_ASSERT_EQUAL(atomic_load(&G.below_after_close), 0);
  close(fd);
  stop(sys);
}

/* Armed, then every allocation fails: BELOW still arrives (its node was
 * reserved by the call). Arming out of memory fails with AX_ENOMEM. */
static void test_io_below_survives_oom(void) {
  ax_system *sys = start(NULL);
  ax_conn c;
  int fd = peer(sys, 4096, &c);
  CU_ASSERT_FATAL(fd >= 0);
  uint64_t written = 0;
  fill(c, 64 * 1024, &written);
  ax_conn_stats st;
  CU_ASSERT(ax_conn_stats_get(c, &st) == AX_OK);
  CU_ASSERT_FATAL(st.queued >= 64 * 1024);
  ax__alloc_fail_after(1, 1);
  CU_ASSERT_EQUAL(ax_conn_notify_below(c, 0), AX_ENOMEM);
  ax__alloc_fail_after(0, 0);
  CU_ASSERT_EQUAL(ax_conn_notify_below(c, 0), AX_OK);
  ax__alloc_fail_after(1, 1);
  uint64_t got = read_n(fd, written);
  bool came = ax_test_wait_count(&G.below, 1, WAIT_MS);
  ax__alloc_fail_after(0, 0);
  CU_ASSERT_EQUAL(got, written);
  CU_ASSERT(came);
  CU_ASSERT_EQUAL(atomic_load(&G.below_bytes), 0);
  close(fd);
  stop(sys);
}

/* ---- write batches (ax_wbatch) ---- */

/* Adds frame seq of `len` payload bytes to b: the header copied, the
 * payload as a slice of zb (copied below AX_WBATCH_REF_MIN, referenced
 * above). */
static ax_err batch_frame(ax_wbatch *b, uint32_t seq, uint32_t len, ax_buf *zb) {
  fhdr h = {MAGIC, 0, seq, len};
  ax_err e = ax_wbatch_add(b, &h, sizeof h);
  if (e == AX_OK) e = ax_wbatch_add_buf(b, zb, 0, len);
  return e;
}

/* Flushes, waiting for room while the queue is over its mark (bounded). */
static ax_err flush_retry(ax_wbatch *b, ax_conn c) {
  ax_err e;
  for (int tries = 0; (e = ax_wbatch_flush(b, c)) == AX_EAGAIN && tries < 30000; tries++)
    ax_test_sleep_ms(1);
  return e;
}

/* 5,000 frames of every size from 0 to 6,000 bytes (small ones copied,
 * large ones referenced), flushed every 37 frames while a reader drains:
 * the peer parses every frame whole and in order, and the payload buffer
 * is freed once the last reference is written. */
static void test_io_wbatch_frames_in_order(void) {
  ax_system *sys = start(NULL);
  ax_conn c;
  int fd = peer(sys, 0, &c);
  CU_ASSERT_FATAL(fd >= 0);
  rd_arg ra = {.fd = fd};
  pthread_t rt;
  CU_ASSERT_FATAL(pthread_create(&rt, NULL, reader_thread, &ra) == 0);
  atomic_store(&bufs_freed, 0);
  enum { PAY = 6000, N = 5000 };
  ax_buf *zb = pat_buf(0, PAY);
  ax_wbatch *b = NULL;
  CU_ASSERT_FATAL(ax_wbatch_new(&b) == AX_OK);
  uint32_t written = 0;
  for (uint32_t seq = 0; seq < N; seq++) {
    uint32_t len = (seq * 977u) % (PAY + 1);
    CU_ASSERT_EQUAL_FATAL(batch_frame(b, seq, len, zb), AX_OK);
    if (seq % 37 == 36 || seq == N - 1) {
      CU_ASSERT_EQUAL_FATAL(flush_retry(b, c), AX_OK);
      CU_ASSERT_EQUAL(ax_wbatch_len(b), 0);
      written = seq + 1;
    }
  }
  CU_ASSERT_EQUAL(written, N);
  ax_buf_release(zb);
  ax_wbatch_free(b);
  CU_ASSERT_EQUAL(ax_conn_close(c), AX_OK);
  pthread_join(rt, NULL);
  uint32_t next[1];
  CU_ASSERT_EQUAL(parse_frames(ra.b, ra.n, 1, next), (long)N);
  free(ra.b);
  CU_ASSERT(ax_test_wait_count(&bufs_freed, 1, WAIT_MS));
  close(fd);
  stop(sys);
}

/* A flush refused by a full queue keeps what it did not write, in order:
 * flushed again once the peer reads, the stream has every frame once. */
static void test_io_wbatch_refusal_keeps_the_rest(void) {
  ax_io_opts o;
  ax_conn c;
  int fd;
  ax_system *sys = start_tight(&o, &c, &fd);
  ax_buf *zb = pat_buf(0, 5000);
  ax_wbatch *b = NULL;
  CU_ASSERT_FATAL(ax_wbatch_new(&b) == AX_OK);
  uint32_t seq = 0;
  ax_err e = AX_OK;
  /* 100 parts per flush (more than AX_IOV_MAX): refused in the middle. */
  for (int round = 0; round < 1000 && e == AX_OK; round++) {
    for (int i = 0; i < 50; i++, seq++) CU_ASSERT_EQUAL_FATAL(batch_frame(b, seq, 100 + (seq * 131u) % 4900, zb), AX_OK);
    e = ax_wbatch_flush(b, c);
  }
  CU_ASSERT_EQUAL_FATAL(e, AX_EAGAIN);
  CU_ASSERT(ax_wbatch_len(b) > 0);
  rd_arg ra = {.fd = fd};
  pthread_t rt;
  CU_ASSERT_FATAL(pthread_create(&rt, NULL, reader_thread, &ra) == 0);
  CU_ASSERT_EQUAL(flush_retry(b, c), AX_OK);
  CU_ASSERT_EQUAL(ax_wbatch_len(b), 0);
  CU_ASSERT_EQUAL(ax_conn_close(c), AX_OK);
  pthread_join(rt, NULL);
  uint32_t next[1];
  CU_ASSERT_EQUAL(parse_frames(ra.b, ra.n, 1, next), (long)seq);
  free(ra.b);
  ax_wbatch_free(b);
  ax_buf_release(zb);
  close(fd);
  stop(sys);
}

/* Arguments, out of memory (nothing appended, no reference kept), and
 * clear/free releasing held references. */
static void test_io_wbatch_arguments_oom_clear(void) {
  ax_wbatch *b = NULL;
  CU_ASSERT_EQUAL(ax_wbatch_new(NULL), AX_EINVAL);
  CU_ASSERT_FATAL(ax_wbatch_new(&b) == AX_OK);
  atomic_store(&bufs_freed, 0);
  ax_buf *zb = pat_buf(0, 8192);
  CU_ASSERT_EQUAL(ax_wbatch_add(NULL, "x", 1), AX_EINVAL);
  CU_ASSERT_EQUAL(ax_wbatch_add(b, NULL, 1), AX_EINVAL);
  CU_ASSERT_EQUAL(ax_wbatch_add(b, NULL, 0), AX_OK);
  CU_ASSERT_EQUAL(ax_wbatch_add_buf(b, NULL, 0, 1), AX_EINVAL);
  CU_ASSERT_EQUAL(ax_wbatch_add_buf(b, zb, 8000, 193), AX_EINVAL);
  CU_ASSERT_EQUAL(ax_wbatch_add_buf(b, zb, 8193, 0), AX_EINVAL);
  CU_ASSERT_EQUAL(ax_wbatch_add_buf(b, zb, (size_t)-1, 2), AX_EINVAL);
  CU_ASSERT_EQUAL(ax_wbatch_flush(NULL, (ax_conn){0}), AX_EINVAL);
  CU_ASSERT_EQUAL(ax_wbatch_len(b), 0);
  CU_ASSERT_EQUAL(ax_wbatch_len(NULL), 0);
  /* Empty: flushing makes no call, so even a zero handle is fine. */
  CU_ASSERT_EQUAL(ax_wbatch_flush(b, (ax_conn){0}), AX_OK);
  ax__alloc_fail_after(1, 0);
  CU_ASSERT_EQUAL(ax_wbatch_add(b, "abc", 3), AX_ENOMEM);
  CU_ASSERT_EQUAL(ax_wbatch_len(b), 0);
  ax__alloc_fail_after(1, 0);
  CU_ASSERT_EQUAL(ax_wbatch_add_buf(b, zb, 0, 4096), AX_ENOMEM);
  ax__alloc_fail_after(0, 0);
  CU_ASSERT_EQUAL(ax_wbatch_len(b), 0);
  CU_ASSERT_EQUAL(ax_wbatch_add(b, "abc", 3), AX_OK);
  CU_ASSERT_EQUAL(ax_wbatch_add_buf(b, zb, 0, 4096), AX_OK);
  CU_ASSERT_EQUAL(ax_wbatch_add_buf(b, zb, 10, 10), AX_OK);
  CU_ASSERT_EQUAL(ax_wbatch_len(b), 3 + 4096 + 10);
  /* A flush to a dead handle fails and keeps everything. */
  CU_ASSERT_NOT_EQUAL(ax_wbatch_flush(b, (ax_conn){0}), AX_OK);
  CU_ASSERT_EQUAL(ax_wbatch_len(b), 3 + 4096 + 10);
  ax_buf_release(zb);
  CU_ASSERT_EQUAL(atomic_load(&bufs_freed), 0); /* the batch holds it */
  ax_wbatch_clear(b);
  CU_ASSERT_EQUAL(atomic_load(&bufs_freed), 1);
  CU_ASSERT_EQUAL(ax_wbatch_len(b), 0);
  zb = pat_buf(0, 8192);
  CU_ASSERT_EQUAL(ax_wbatch_add_buf(b, zb, 0, 8192), AX_OK);
  ax_buf_release(zb);
  ax_wbatch_free(b); /* drops its reference too */
  CU_ASSERT_EQUAL(atomic_load(&bufs_freed), 2);
  ax_wbatch_free(NULL);
}

/* ---- the last words: ax_conn_close_with ---- */

/* Over its high watermark, a connection refuses a plain write, but
 * ax_conn_close_with queues its bytes behind everything and closes: the
 * peer reads every frame written, then the final line, then EOF. */
static void test_io_close_with_past_the_mark(void) {
  ax_io_opts o;
  ax_conn c;
  int fd;
  ax_system *sys = start_tight(&o, &c, &fd);
  ax_buf *zb = pat_buf(0, 5000);
  static uint8_t pb[5000];
  for (size_t i = 0; i < sizeof pb; i++) pb[i] = pat(0, i);
  /* Fill the queue to within a header (16 bytes) of its mark: frames of
   * 3000 bytes until refused, then ever smaller ones down to empty. */
  uint32_t seq = 0, len = 3000;
  ax_err e = AX_OK;
  for (int i = 0; i < 200000; i++) {
    if ((e = write_frame(c, 0, seq, len, len / 3, zb, pb)) == AX_OK) seq++;
    else if (e != AX_EAGAIN || len == 0) break;
    else len /= 2;
  }
  CU_ASSERT_EQUAL_FATAL(e, AX_EAGAIN);
  static const char bye[] = "ERROR :Closing Link: you (SendQ exceeded)\r\n";
  CU_ASSERT_EQUAL(ax_conn_write(c, bye, sizeof bye - 1), AX_EAGAIN); /* the gap it fills */
  char big[AX_CONN_FINAL_MAX + 1];
  memset(big, 'x', sizeof big);
  CU_ASSERT_EQUAL(ax_conn_close_with(c, big, sizeof big), AX_EINVAL);
  CU_ASSERT_EQUAL(ax_conn_close_with(c, NULL, 1), AX_EINVAL);
  CU_ASSERT_EQUAL(ax_conn_close_with((ax_conn){0}, bye, 1), AX_EINVAL);
  CU_ASSERT_EQUAL(ax_conn_close_with(c, bye, sizeof bye - 1), AX_OK);
  CU_ASSERT_EQUAL(ax_conn_close_with(c, bye, sizeof bye - 1), AX_ECLOSED);
  CU_ASSERT_EQUAL(ax_conn_write(c, bye, 1), AX_ECLOSED);
  size_t n;
  uint8_t *got = read_all(fd, &n);
  CU_ASSERT_FATAL(n >= sizeof bye - 1);
  CU_ASSERT(memcmp(got + n - (sizeof bye - 1), bye, sizeof bye - 1) == 0);
  uint32_t next[1];
  CU_ASSERT_EQUAL(parse_frames(got, n - (sizeof bye - 1), 1, next), (long)seq);
  free(got);
  CU_ASSERT(ax_test_wait_count(&G.closed, 1, WAIT_MS));
  CU_ASSERT_EQUAL(atomic_load(&G.close_reason), AX_IO_CLOSE_LOCAL);
  ax_buf_release(zb);
  close(fd);
  stop(sys);
}

int main(void) {
  CU_pSuite s = ax_test_suite("io.writev");
  CU_ADD_TEST(s, test_io_writev_arguments);
  CU_ADD_TEST(s, test_io_writev_refused_whole_under_full_queue);
  CU_ADD_TEST(s, test_io_writev_threads_never_interleave);
  CU_ADD_TEST(s, test_io_writev_zero_copy_parts);
  CU_ADD_TEST(s, test_io_writev_oom_whole_or_nothing);
  CU_ADD_TEST(s, test_io_writev_oom_after_partial_send_closes);
  CU_ADD_TEST(s, test_io_below_at_once_when_already_below);
  CU_ADD_TEST(s, test_io_below_one_shot_refuses_nothing);
  CU_ADD_TEST(s, test_io_below_survives_oom);
  CU_ADD_TEST(s, test_io_wbatch_frames_in_order);
  CU_ADD_TEST(s, test_io_wbatch_refusal_keeps_the_rest);
  CU_ADD_TEST(s, test_io_wbatch_arguments_oom_clear);
  CU_ADD_TEST(s, test_io_close_with_past_the_mark);
  return ax_test_run();
}
