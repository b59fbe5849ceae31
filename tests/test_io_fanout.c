/* Axon tests: zero-copy fan-out. One room actor owns three connections:
 * a sender S, a fast reader F and a slow reader C that never reads. Every
 * read slice of S is forwarded with ax_conn_write_buf to F and C. Bytes
 * queued for C must not hold S's read slabs (which would stop S's reading
 * and so starve F): F receives the whole stream, while C fills its write
 * queue, gets BACKPRESSURE, then overflows the room's own bounded send
 * queue (the pattern of docs/io.md) and is disconnected. S paces itself
 * by F's progress, so F's queue never fills. Bounded waits only. */
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
#include "support/testutil.h"

#define WAIT_MS 20000
#define TOTAL (16u << 20)    /* bytes S sends */
#define WINDOW (512u << 10)  /* S's lead over F at most */
#define APP_LIMIT (256u << 10) /* the room's own queue per destination */

static struct {
  _Atomic uint64_t accepted, f_got, f_bad, c_bp, c_disconnects, c_closed_abort, f_disconnects;
  _Atomic uint16_t port;
  _Atomic bool stop;
} G;

static inline uint8_t pat(uint64_t i) { return (uint8_t)((i * 2654435761u) >> 13); }

/* ---- the room: the application-level send queue with a limit ---- */
typedef struct dest {
  ax_conn c;
  bool dead;
  ax_buf *q; /* copied bytes waiting for DRAINED (never the sender's slab) */
  size_t qlen;
} dest;

typedef struct room {
  ax_listener l;
  ax_conn s;
  dest d[2]; /* 0: F, 1: C */
} room;

static void dest_drop(dest *d, bool is_c) {
  ax_conn_abort(d->c);
  ax_buf_release(d->q);
  d->q = NULL;
  d->qlen = 0;
  d->dead = true;
  atomic_fetch_add(is_c ? &G.c_disconnects : &G.f_disconnects, 1);
}

/* Hands the waiting copy to the connection: true if it took it. */
static bool dest_flush(dest *d) {
  if (!d->q) return true;
  ax_err e = ax_conn_write_buf(d->c, d->q, 0, d->qlen);
  if (e == AX_EAGAIN) return false;
  ax_buf_release(d->q); /* sent or queued (the connection holds it), or closed */
  d->q = NULL;
  d->qlen = 0;
  if (e != AX_OK) d->dead = true;
  return true;
}

static void dest_send(dest *d, bool is_c, ax_buf *b, const char *p, size_t n) {
  if (d->dead) return;
  if (!d->q) {
    ax_err e = ax_conn_write_buf(d->c, b, (size_t)(p - (const char *)ax_buf_data(b)), n);
    if (e == AX_OK) return;
    if (e != AX_EAGAIN) {
      d->dead = true;
      return;
    }
    if (ax_buf_new(APP_LIMIT, &d->q) != AX_OK) return dest_drop(d, is_c);
  }
  if (d->qlen + n > APP_LIMIT) return dest_drop(d, is_c); /* too slow: disconnect */
  memcpy((char *)ax_buf_data(d->q) + d->qlen, p, n);
  d->qlen += n;
  ax_buf_set_len(d->q, d->qlen);
}

static ax_err room_init(ax_actor *self, void *state, const void *arg, size_t len) {
  (void)arg, (void)len;
  room *r = state;
  ax_err e = ax_listen(self, "127.0.0.1:0", NULL, &r->l);
  char a[AX_IO_ADDRSTRLEN];
  size_t n = sizeof a;
  if (e == AX_OK && ax_listener_addr(r->l, a, &n) == AX_OK)
    atomic_store(&G.port, (uint16_t)atoi(strrchr(a, ':') + 1));
  return e;
}

static void room_term(ax_actor *self, void *state, ax_reason why) {
  (void)self, (void)why;
  room *r = state;
  for (int i = 0; i < 2; i++) ax_buf_release(r->d[i].q);
}

static ax_err room_b(ax_actor *self, const ax_msg *m) {
  room *r = ax_state(self);
  switch (m->type) {
  case AX_MSG_IO_ACCEPTED: {
    ax_conn c = ((const ax_io_conn_info *)m->data)->conn;
    uint64_t i = atomic_load(&G.accepted);
    if (i == 0) r->s = c;
    else if (i <= 2) r->d[i - 1].c = c;
    ax_conn_resume_read(c);
    atomic_store(&G.accepted, i + 1);
    return AX_OK;
  }
  case AX_MSG_IO_DATA:
    if (m->ref != r->s.id) return AX_OK;
    for (int i = 0; i < 2; i++) dest_send(&r->d[i], i == 1, m->buf, m->data, m->len);
    return AX_OK;
  case AX_MSG_IO_BACKPRESSURE:
    if (m->ref == r->d[1].c.id) atomic_fetch_add(&G.c_bp, 1);
    return AX_OK;
  case AX_MSG_IO_DRAINED:
    for (int i = 0; i < 2; i++)
      if (m->ref == r->d[i].c.id && !r->d[i].dead) dest_flush(&r->d[i]);
    return AX_OK;
  case AX_MSG_IO_CLOSED: {
    const ax_io_event *ev = m->data;
    if (ev->conn.id && ev->conn.id == r->d[1].c.id && ev->reason == AX_IO_CLOSE_ABORT)
      atomic_fetch_add(&G.c_closed_abort, 1);
    return AX_OK;
  }
  default:
    return AX_OK;
  }
}

static const ax_actor_spec room_spec = {.name = "room", .behaviour = room_b,
                                        .state_size = sizeof(room), .init = room_init,
                                        .terminate = room_term};

static int cli(uint16_t port, int rcvbuf) {
  return ax_test_connect(port, rcvbuf, WAIT_MS / 1000, WAIT_MS / 1000);
}

typedef struct sender_arg {
  int fd;
  bool ok;
} sender_arg;

/* S: lines of 100 bytes in 4 KiB writes, never more than WINDOW ahead of
 * what F has received (each wait bounded). */
static void *sender(void *p) {
  sender_arg *a = p;
  char buf[4000];
  uint64_t sent = 0;
  a->ok = true;
  while (sent < TOTAL && !atomic_load(&G.stop)) {
    int waited = 0;
    while (sent - atomic_load(&G.f_got) > WINDOW && waited < WAIT_MS && !atomic_load(&G.stop)) {
      ax_test_sleep_ms(1);
      waited++;
    }
    if (waited >= WAIT_MS) {
      a->ok = false; /* F stopped receiving */
      break;
    }
    size_t n = TOTAL - sent < sizeof buf ? (size_t)(TOTAL - sent) : sizeof buf;
    for (size_t k = 0; k < n; k++) buf[k] = (char)pat(sent + k);
    if (send(a->fd, buf, n, MSG_NOSIGNAL) != (ssize_t)n) {
      a->ok = false;
      break;
    }
    sent += n;
  }
  return NULL;
}

static void *fast_reader(void *p) {
  int fd = *(int *)p;
  static char buf[65536];
  uint64_t got = 0, bad = 0;
  while (got < TOTAL) {
    ssize_t k = read(fd, buf, sizeof buf);
    if (k <= 0) break; /* timeout: F was starved */
    for (ssize_t j = 0; j < k; j++) bad += (uint8_t)buf[j] != pat(got + (uint64_t)j);
    got += (uint64_t)k;
    atomic_store(&G.f_got, got);
  }
  atomic_store(&G.f_bad, bad);
  return NULL;
}

static void test_io_fanout_slow_reader_does_not_freeze_the_room(void) {
  ax_system *sys = ax_test_system(2);
  memset(&G, 0, sizeof G);
  ax_pid pid;
  CU_ASSERT_FATAL(ax_system_spawn(sys, &room_spec, NULL, 0, &pid) == AX_OK);
  uint16_t port = atomic_load(&G.port);
  CU_ASSERT_FATAL(port != 0);
  int s = cli(port, 0);
  CU_ASSERT_FATAL(s >= 0 && ax_test_wait_count(&G.accepted, 1, WAIT_MS));
  int f = cli(port, 0);
  CU_ASSERT_FATAL(f >= 0 && ax_test_wait_count(&G.accepted, 2, WAIT_MS));
  int c = cli(port, 4096); /* never reads */
  CU_ASSERT_FATAL(c >= 0 && ax_test_wait_count(&G.accepted, 3, WAIT_MS));
  sender_arg sa = {s, false};
  pthread_t ts, tf;
  CU_ASSERT_FATAL(pthread_create(&tf, NULL, fast_reader, &f) == 0);
  CU_ASSERT_FATAL(pthread_create(&ts, NULL, sender, &sa) == 0);
  pthread_join(tf, NULL);
  atomic_store(&G.stop, true);
  pthread_join(ts, NULL);
  fprintf(stderr, "(F got %llu of %u; C: %llu backpressure, %llu disconnects) ",
          (unsigned long long)atomic_load(&G.f_got), TOTAL, (unsigned long long)atomic_load(&G.c_bp),
          (unsigned long long)atomic_load(&G.c_disconnects));
  CU_ASSERT(sa.ok);
  CU_ASSERT_EQUAL(atomic_load(&G.f_got), TOTAL); /* the fast reader got everything */
  CU_ASSERT_EQUAL(atomic_load(&G.f_bad), 0);
  CU_ASSERT_EQUAL(atomic_load(&G.f_disconnects), 0);
  CU_ASSERT(atomic_load(&G.c_bp) >= 1); /* the slow one reached its watermark */
  CU_ASSERT_EQUAL(atomic_load(&G.c_disconnects), 1); /* then the room's limit */
  CU_ASSERT(ax_test_wait_count(&G.c_closed_abort, 1, WAIT_MS));
  close(s);
  close(f);
  close(c);
  CU_ASSERT(ax_system_shutdown(sys) == AX_OK);
  ax_system_free(sys);
}

int main(void) {
  CU_pSuite s = ax_test_suite("io.fanout");
  CU_ADD_TEST(s, test_io_fanout_slow_reader_does_not_freeze_the_room);
  return ax_test_run();
}
