/* Axon: connections. The thread driving the reactor reads into reference-counted slabs
 * and pushes each read to the owner as AX_MSG_IO_DATA (a slice, no copy),
 * bounded by the slabs the owner has not released yet. Writes happen on the
 * caller's thread while the queue is empty, else they are queued and the
 * reactor flushes them with sendmsg (an iovec per chunk) on writability.
 * Closing flushes, shuts down the write side, then closes. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "io/socket.h"

#define IOV_BATCH 64
/* A slab with less room than this is retired before the next read. */
#define MIN_READ 1024
/* Queued copies go into buffers of at least this size, filled in turn. */
#define COPY_CHUNK 4096
/* A closing connection discards at most this much unread input. */
#define DISCARD_MAX (1u << 20)

typedef struct slab {
  ax__conn *c;
  size_t cap;
  char data[];
} slab;

static int state_of(ax__conn *c) {
  /* acquire: pairs with set_state's release. */
  return atomic_load_explicit(&c->state_pub, memory_order_acquire);
}

static void set_state(ax__conn *c, int s) { /* under wlock */
  c->state = s;
  atomic_store_explicit(&c->state_pub, s, memory_order_release);
}

static size_t max_slabs(const ax__conn *c) {
  size_t n = c->o.opts.read_inflight_max / c->o.opts.read_slab;
  return n ? n : 1;
}

ax__conn *ax__conn_new(ax__io *io, int fd, const ax_io_opts *opts, int state) {
  ax__conn *c = ax__calloc(sizeof(*c));
  if (!c) return NULL;
  /* The messages that must arrive get their memory now (see
   * ax__io_event_reserved): CLOSED (or a failed connect's ERROR) and
   * PEER_SHUTDOWN. */
  c->o.kind = AX__IO_CONN;
  atomic_fetch_add_explicit(&io->conns_opened, 1, memory_order_relaxed);
  c->o.last_msg = ax__io_reserve();
  c->eof_msg = ax__io_reserve();
  if (!c->o.last_msg || !c->eof_msg) {
    ax__iobj_free_reserved(&c->o);
    ax__free(c, sizeof(*c));
    return NULL;
  }
  c->o.h.on_events = ax__conn_on_events;
  c->o.kind = AX__IO_CONN;
  c->o.io = io;
  c->o.fd = fd;
  c->o.opts = *opts;
  atomic_init(&c->o.refs, 1);
  atomic_init(&c->o.close_req, -1);
  pthread_mutex_init(&c->wlock, NULL);
  c->state = state;
  atomic_init(&c->state_pub, state);
  c->rd_ready = true;
  return c;
}

void ax__conn_sockopts(ax__conn *c) {
  int one = 1;
  /* Fails harmlessly on Unix sockets. */
  if (c->o.opts.no_delay) (void)setsockopt(c->o.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* ---- the write queue (under wlock) ---- */

static void chunk_free(ax__wchunk *w) {
  ax_buf_release(w->buf);
  ax__free(w, sizeof *w);
}

static uint64_t drop_queue(ax__conn *c) {
  uint64_t n = c->wq_bytes;
  while (c->wq_head) {
    ax__wchunk *w = c->wq_head;
    c->wq_head = w->next;
    chunk_free(w);
  }
  c->wq_tail = NULL;
  c->wq_bytes = 0;
  while (c->zc_head) {
    ax__zcwait *z = c->zc_head;
    c->zc_head = z->next;
    ax_buf_release(z->buf);
    ax__free(z, sizeof *z);
  }
  c->zc_tail = NULL;
  atomic_store_explicit(&c->queued_pub, 0, memory_order_relaxed);
  return n;
}

/* Consumes n sent bytes from the head of the queue. */
static void advance(ax__conn *c, size_t n) {
  c->wq_bytes -= n;
  atomic_fetch_add_explicit(&c->bytes_written, n, memory_order_relaxed);
  while (n) {
    ax__wchunk *w = c->wq_head;
    size_t k = n < w->len ? n : w->len;
    w->p += k;
    w->len -= k;
    n -= k;
    if (w->len) break;
    c->wq_head = w->next;
    if (!c->wq_head) c->wq_tail = NULL;
    chunk_free(w);
  }
  atomic_store_explicit(&c->queued_pub, c->wq_bytes, memory_order_relaxed);
}

/* One send of the head: a zerocopy chunk alone, else up to IOV_BATCH plain
 * chunks. Returns bytes sent or -1 with errno (EINTR: just retry). */
static ssize_t send_head(ax__conn *c) {
  ax__wchunk *w = c->wq_head;
  if (w->zc) {
    /* The wait is allocated first: once the kernel has pinned the pages,
     * the buffer must be held until the completion. */
    ax__zcwait *z = ax__alloc(sizeof *z);
    ssize_t n = z ? ax__zc_send(c, w->p, w->len) : -1;
    if (n > 0) {
      ax_buf_retain(w->buf);
      z->buf = w->buf;
      z->seq = c->zc_next++;
      z->next = NULL;
      if (c->zc_tail)
        c->zc_tail->next = z;
      else
        c->zc_head = z;
      c->zc_tail = z;
      atomic_fetch_add_explicit(&c->zc_sends, 1, memory_order_relaxed);
      return n;
    }
    if (z) ax__free(z, sizeof *z);
    if (!z || errno == ENOBUFS) { /* no memory, or the optmem limit: go plain */
      w->zc = false;
      errno = EINTR;
    }
    return -1;
  }
  struct iovec iov[IOV_BATCH];
  int k = 0;
  for (ax__wchunk *x = w; x && !x->zc && k < IOV_BATCH; x = x->next) {
    iov[k].iov_base = (void *)x->p;
    iov[k].iov_len = x->len;
    k++;
  }
  struct msghdr m;
  memset(&m, 0, sizeof m);
  m.msg_iov = iov;
  m.msg_iovlen = (size_t)k;
  return sendmsg(c->o.fd, &m, AX__OS_SEND_FLAGS);
}

/* Sends as much of the queue as the socket takes. Returns 0 or an errno
 * (the connection has failed). Sends DRAINED and an armed BELOW on the way
 * down (under wlock, so before any CLOSED). */
static int flush_locked(ax__conn *c) {
  int err = 0;
  while (c->wq_head) {
    ssize_t n = send_head(c);
    if (n >= 0) {
      advance(c, (size_t)n);
      continue;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) err = errno;
    break;
  }
  if (c->over_high && c->wq_bytes <= c->o.opts.low_watermark && !err) {
    c->over_high = false;
    /* Reserved when BACKPRESSURE went out: an owner waiting for it must
     * not wait forever because memory was short just now. */
    ax__io_event_reserved(&c->o, &c->drained_msg, AX_MSG_IO_DRAINED, 0, 0, c->wq_bytes);
  }
  if (c->below_armed && c->wq_bytes <= c->below_at && !err) {
    c->below_armed = false; /* one-shot; its node was reserved when armed */
    ax__io_event_reserved(&c->o, &c->below_msg, AX_MSG_IO_BELOW, 0, 0, c->wq_bytes);
  }
  return err;
}

static void slab_free(void *data, size_t cap, void *arg);

/* A read slab (of any connection): its bytes are copied when queued, so a
 * write queue never keeps another reader's slab alive (docs/ARCHITECTURE.md,
 * "Fan-out"). */
static bool is_read_slab(const ax_buf *b) { return ax__buf_free_fn(b) == slab_free; }

/* Queues [p, p+len): by reference to buf, or (buf NULL) as a copy, appended
 * to the tail's copy buffer while it has room. */
static ax_err enqueue(ax__conn *c, const char *p, size_t len, ax_buf *buf, bool zc) {
  ax__wchunk *t = c->wq_tail;
  if (!buf && t && t->own) {
    char *end = (char *)t->p + t->len;
    size_t room = (size_t)((char *)ax_buf_data(t->buf) + ax_buf_cap(t->buf) - end);
    if (room >= len) {
      memcpy(end, p, len);
      t->len += len;
      c->wq_bytes += len;
      atomic_store_explicit(&c->queued_pub, c->wq_bytes, memory_order_relaxed);
      return AX_OK;
    }
  }
  ax__wchunk *w = ax__alloc(sizeof *w);
  if (!w) return AX_ENOMEM;
  w->own = !buf;
  if (buf) {
    ax_buf_retain(buf);
  } else if (ax_buf_new(len > COPY_CHUNK ? len : COPY_CHUNK, &buf) != AX_OK) {
    ax__free(w, sizeof *w);
    return AX_ENOMEM;
  } else {
    memcpy(ax_buf_data(buf), p, len);
    p = ax_buf_data(buf);
  }
  w->next = NULL;
  w->buf = buf;
  w->p = p;
  w->len = len;
  w->zc = zc;
  if (c->wq_tail)
    c->wq_tail->next = w;
  else
    c->wq_head = w;
  c->wq_tail = w;
  c->wq_bytes += len;
  atomic_store_explicit(&c->queued_pub, c->wq_bytes, memory_order_relaxed);
  return AX_OK;
}

/* The connection failed on a writer's thread: no more writes; the reactor
 * closes it and tells the owner. */
static ax_err fail_locked(ax__conn *c, int reason, int code) {
  set_state(c, AX__CS_CLOSING);
  ax__io_close_req(&c->o, reason, code, AX__CMD_ABORT);
  return AX_ECLOSED;
}

/* Signals the crossing of the high watermark (or aborts, per opts). */
static ax_err over_high(ax__conn *c) {
  if (c->o.opts.close_on_backpressure) return fail_locked(c, AX_IO_CLOSE_BACKPRESSURE, 0);
  if (!c->over_high) {
    /* The DRAINED that must follow is reserved now; without memory for it
     * the owner could wait forever, so the connection closes instead. A
     * BACKPRESSURE lost to memory is harmless: writes past the mark are
     * refused with AX_EAGAIN, and DRAINED still comes. */
    if (!c->drained_msg && !(c->drained_msg = ax__io_reserve()))
      return fail_locked(c, AX_IO_CLOSE_ERROR, ENOMEM);
    c->over_high = true;
    atomic_fetch_add_explicit(&c->bp_events, 1, memory_order_relaxed);
    ax__io_event(&c->o, AX_MSG_IO_BACKPRESSURE, 0, 0, c->wq_bytes);
  }
  return AX_OK;
}

/* Takes back what enqueue added after (tail, tail_len, bytes) were noted,
 * so that a write that could not be queued whole leaves no part behind. */
static void unqueue(ax__conn *c, ax__wchunk *tail, size_t tail_len, size_t bytes) {
  ax__wchunk *w = tail ? tail->next : c->wq_head;
  while (w) {
    ax__wchunk *next = w->next;
    chunk_free(w);
    w = next;
  }
  if (tail) {
    tail->next = NULL;
    tail->len = tail_len; /* bytes appended to its copy buffer are dropped */
  } else {
    c->wq_head = NULL;
  }
  c->wq_tail = tail;
  c->wq_bytes = bytes;
  atomic_store_explicit(&c->queued_pub, c->wq_bytes, memory_order_relaxed);
}

/* The one write path: iov[0..n) (validated; total bytes in all) as one
 * contiguous write, all of it queued or none. ax_conn_write and
 * ax_conn_write_buf are the one-part case. */
static ax_err write_locked(ax__conn *c, const ax_iov *iov, size_t n, size_t total, bool final) {
  if (c->state == AX__CS_CONNECTING) return AX_ESTATE;
  if (c->state != AX__CS_OPEN) return AX_ECLOSED;
  if (!total) return AX_OK;
  if (!final && c->wq_head && c->wq_bytes + total > c->o.opts.high_watermark) {
    ax_err e = over_high(c);
    return e == AX_OK ? AX_EAGAIN : e;
  }
  /* Per part: a read slab is never held by the queue (nor pinned by
   * zerocopy): what the socket does not take now is copied. */
  ax_buf *bufs[AX_IOV_MAX];
  bool zcs[AX_IOV_MAX], any_zc = false;
  for (size_t i = 0; i < n; i++) {
    ax_buf *b = iov[i].len ? iov[i].buf : NULL;
    if (b && is_read_slab(b)) b = NULL;
    bufs[i] = b;
    zcs[i] = b && c->o.opts.zerocopy_min && iov[i].len >= c->o.opts.zerocopy_min &&
             ax__zc_enable(c);
    any_zc |= zcs[i];
  }
  size_t done = 0;
  if (!c->wq_head && !any_zc) {
    struct iovec v[AX_IOV_MAX];
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
      if (iov[i].len) v[k++] = (struct iovec){(void *)iov[i].data, iov[i].len};
    ssize_t r;
    if (k == 1) {
      do {
        r = send(c->o.fd, v[0].iov_base, v[0].iov_len, AX__OS_SEND_FLAGS);
      } while (r < 0 && errno == EINTR);
    } else {
      struct msghdr m;
      memset(&m, 0, sizeof m);
      m.msg_iov = v;
      m.msg_iovlen = k;
      do {
        r = sendmsg(c->o.fd, &m, AX__OS_SEND_FLAGS);
      } while (r < 0 && errno == EINTR);
    }
    if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
      return fail_locked(c, AX_IO_CLOSE_ERROR, errno);
    done = r > 0 ? (size_t)r : 0;
    atomic_fetch_add_explicit(&c->bytes_written, done, memory_order_relaxed);
    if (done == total) return AX_OK;
  }
  /* Queue what the socket did not take, part by part. */
  bool was_empty = !c->wq_head;
  ax__wchunk *tail = c->wq_tail;
  size_t tail_len = tail ? tail->len : 0, bytes = c->wq_bytes, skip = done;
  for (size_t i = 0; i < n; i++) {
    size_t len = iov[i].len;
    if (skip >= len) {
      skip -= len;
      continue;
    }
    ax_err e = enqueue(c, (const char *)iov[i].data + skip, len - skip, bufs[i], zcs[i]);
    skip = 0;
    if (e != AX_OK) {
      unqueue(c, tail, tail_len, bytes);
      /* Part of it may be on the wire: the stream cannot be kept intact. */
      return done ? fail_locked(c, AX_IO_CLOSE_ERROR, ENOMEM) : e;
    }
  }
  if (any_zc && was_empty) {
    int err = flush_locked(c);
    if (err) return fail_locked(c, AX_IO_CLOSE_ERROR, err);
  }
  if (!final && c->wq_bytes >= c->o.opts.high_watermark) return over_high(c);
  return AX_OK;
}

static ax_err conn_write(ax_conn h, const ax_iov *iov, size_t n, size_t total) {
  if (!h.sys) return AX_EINVAL;
  ax__conn *c = (ax__conn *)ax__iobj_get(h.sys, h.id, AX__IO_CONN);
  if (!c) return AX_ECLOSED;
  pthread_mutex_lock(&c->wlock);
  ax_err e = write_locked(c, iov, n, total, false);
  pthread_mutex_unlock(&c->wlock);
  ax__iobj_put(&c->o);
  return e;
}

ax_err ax_conn_write(ax_conn c, const void *data, size_t len) {
  if (!data && len) return AX_EINVAL;
  ax_iov v = {data, len, NULL};
  return conn_write(c, &v, 1, len);
}

ax_err ax_conn_write_buf(ax_conn c, ax_buf *buf, size_t off, size_t len) {
  if (!buf || off > ax_buf_len(buf) || len > ax_buf_len(buf) - off) return AX_EINVAL;
  ax_iov v = {(const char *)ax_buf_data(buf) + off, len, buf};
  return conn_write(c, &v, 1, len);
}

ax_err ax_conn_writev(ax_conn c, const ax_iov *iov, size_t n) {
  if ((!iov && n) || n > AX_IOV_MAX) return AX_EINVAL;
  size_t total = 0;
  for (size_t i = 0; i < n; i++) {
    size_t len = iov[i].len;
    if (!len) continue;
    if (!iov[i].data || !ax__size_add(total, len, &total)) return AX_EINVAL;
    if (iov[i].buf) {
      uintptr_t b = (uintptr_t)ax_buf_data(iov[i].buf), p = (uintptr_t)iov[i].data;
      size_t blen = ax_buf_len(iov[i].buf);
      if (p < b || p - b > blen || len > blen - (p - b)) return AX_EINVAL;
    }
  }
  return conn_write(c, iov, n, total);
}

ax_err ax_conn_notify_below(ax_conn h, size_t bytes) {
  if (!h.sys) return AX_EINVAL;
  ax__conn *c = (ax__conn *)ax__iobj_get(h.sys, h.id, AX__IO_CONN);
  if (!c) return AX_ECLOSED;
  ax_err e = AX_OK;
  pthread_mutex_lock(&c->wlock);
  if (c->state == AX__CS_CONNECTING) {
    e = AX_ESTATE;
  } else if (c->state != AX__CS_OPEN) {
    e = AX_ECLOSED;
  } else if (!c->below_msg && !(c->below_msg = ax__io_reserve())) {
    e = AX_ENOMEM; /* nothing armed (an armed level always has its node) */
  } else if (c->wq_bytes <= bytes) {
    c->below_armed = false; /* already there: now, under the lock, so it
                               precedes any later CLOSED */
    ax__io_event_reserved(&c->o, &c->below_msg, AX_MSG_IO_BELOW, 0, 0, c->wq_bytes);
  } else {
    c->below_armed = true; /* flush_locked sends it on the way down */
    c->below_at = bytes;
  }
  pthread_mutex_unlock(&c->wlock);
  ax__iobj_put(&c->o);
  return e;
}

/* ---- reading (reactor) ---- */

static void slab_free(void *data, size_t cap, void *arg) {
  slab *s = arg;
  ax__conn *c = s->c;
  (void)data;
  /* seq_cst with the reactor's store of rd_stalled then load of slabs:
   * either it sees this decrement, or this sees its stall and kicks it. */
  uint32_t left = atomic_fetch_sub_explicit(&c->slabs, 1, memory_order_seq_cst) - 1;
  if (left <= max_slabs(c) / 2 && atomic_load_explicit(&c->rd_stalled, memory_order_seq_cst) &&
      atomic_exchange_explicit(&c->rd_stalled, false, memory_order_seq_cst) &&
      state_of(c) == AX__CS_OPEN)
    ax__io_cmd(&c->o, AX__CMD_READ);
  ax__free(s, sizeof(slab) + cap);
  ax__iobj_release(&c->o);
}

static void slab_drop(ax__conn *c) {
  ax_buf *b = c->rd_slab;
  c->rd_slab = NULL;
  ax_buf_release(b);
}

static bool slab_new(ax__conn *c) {
  size_t cap = c->o.opts.read_slab, size;
  if (!ax__size_add(sizeof(slab), cap, &size)) return false; /* as out of memory */
  slab *s = ax__alloc(size);
  if (!s) return false;
  s->c = c;
  s->cap = cap;
  if (ax_buf_wrap(s->data, cap, slab_free, s, &c->rd_slab) != AX_OK) {
    ax__free(s, size);
    return false;
  }
  ax__iobj_retain(&c->o);
  atomic_fetch_add_explicit(&c->slabs, 1, memory_order_seq_cst);
  c->rd_off = 0;
  return true;
}

/* Makes room for the next read: false when the in-flight bound stalls
 * reading (a slab release will kick it) or memory ran out (*oom). */
static bool slab_ready(ax__conn *c, bool *oom) {
  if (c->rd_slab && c->o.opts.read_slab - c->rd_off >= MIN_READ) return true;
  if (c->rd_slab) slab_drop(c);
  while (atomic_load_explicit(&c->slabs, memory_order_seq_cst) >= max_slabs(c)) {
    atomic_store_explicit(&c->rd_stalled, true, memory_order_seq_cst);
    if (atomic_load_explicit(&c->slabs, memory_order_seq_cst) >= max_slabs(c)) return false;
    atomic_store_explicit(&c->rd_stalled, false, memory_order_seq_cst);
  }
  if (slab_new(c)) return true;
  *oom = true;
  return false;
}

static void conn_shut(ax__conn *c, int reason, int code, bool rst);

/* Reads until EAGAIN, a short read, the in-flight bound, a pause or EOF.
 * Edge-triggered: every new arrival raises a new event, so stopping after
 * a short read (the socket was empty at that moment) loses nothing, except
 * a FIN that arrived before the read: its event carried RDHUP (rd_hup), and
 * then we read on to EOF. When reading stops early rd_ready stays set and a
 * resume reads again. */
static void do_read(ax__conn *c) {
  while (c->rd_ready && !c->rd_eof && state_of(c) == AX__CS_OPEN &&
         !atomic_load_explicit(&c->rd_paused, memory_order_relaxed)) {
    bool oom = false;
    if (!slab_ready(c, &oom)) {
      if (oom) conn_shut(c, AX_IO_CLOSE_ERROR, ENOMEM, true);
      return;
    }
    char *p = (char *)ax_buf_data(c->rd_slab) + c->rd_off;
    size_t room = c->o.opts.read_slab - c->rd_off;
    ssize_t n = read(c->o.fd, p, room);
    if (n > 0) {
      atomic_fetch_add_explicit(&c->bytes_read, (uint64_t)n, memory_order_relaxed);
      ax_err e = ax__io_notify(&c->o, AX_MSG_IO_DATA, p, (size_t)n, c->rd_slab);
      if (e != AX_OK) {
        if (e == AX_ENOMEM) ax_log(c->o.io->sys, AX_LOG_ERROR, "io: out of memory delivering data");
        conn_shut(c, e == AX_ENOMEM ? AX_IO_CLOSE_ERROR : AX_IO_CLOSE_OWNER,
                  e == AX_ENOMEM ? ENOMEM : 0, true);
        return;
      }
      c->rd_off += (size_t)n;
      if ((size_t)n < room && !c->rd_hup) c->rd_ready = false;
    } else if (n == 0) {
      c->rd_eof = true;
      c->rd_ready = false;
      slab_drop(c);
      ax__io_event_reserved(&c->o, &c->eof_msg, AX_MSG_IO_PEER_SHUTDOWN, 0, 0, 0);
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      c->rd_ready = false;
    } else if (errno != EINTR) {
      conn_shut(c, AX_IO_CLOSE_ERROR, errno, false);
      return;
    }
  }
}

/* ---- closing (reactor) ---- */

/* The end: out of the poller, fd closed (with RST if rst), queue dropped,
 * then the CLOSED message (reason < 0: none, for failed connects). */
static void conn_shut(ax__conn *c, int reason, int code, bool rst) {
  if (c->o.finalized) return;
  pthread_mutex_lock(&c->wlock);
  uint64_t unsent = drop_queue(c);
  if (c->o.fd >= 0) {
    if (rst) {
      struct linger lg = {1, 0};
      (void)setsockopt(c->o.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    if (c->o.registered) ax__poller_del(c->o.io->poller, c->o.fd);
    close(c->o.fd);
    c->o.fd = -1;
  }
  set_state(c, AX__CS_DEAD);
  pthread_mutex_unlock(&c->wlock);
  if (c->rd_slab) slab_drop(c);
  atomic_store_explicit(&c->rd_stalled, false, memory_order_seq_cst);
  ax__io_finalize(&c->o, reason, code, unsent);
}

static int close_reason(ax__conn *c) {
  int r = atomic_load_explicit(&c->o.close_req, memory_order_relaxed);
  return r < 0 ? AX_IO_CLOSE_LOCAL : r;
}

/* Finishes a graceful close once the queue (and zerocopy) is done: FIN,
 * discard unread input (closing with unread input would reset the peer
 * and could destroy what it has not read yet), close. */
static void try_finish_close(ax__conn *c) {
  pthread_mutex_lock(&c->wlock);
  ax__zc_reap(c);
  int err = flush_locked(c);
  bool done = !c->wq_head && !c->zc_head;
  pthread_mutex_unlock(&c->wlock);
  if (err) {
    conn_shut(c, AX_IO_CLOSE_ERROR, err, true);
    return;
  }
  if (!done) {
    if (!ax__io_timer_armed(&c->o)) {
      uint32_t ms = c->o.opts.close_timeout_ms ? c->o.opts.close_timeout_ms : 1;
      ax__io_timer_set(&c->o, ms);
    }
    return;
  }
  shutdown(c->o.fd, SHUT_WR);
  char sink[4096];
  size_t total = 0;
  ssize_t n;
  while (total < DISCARD_MAX && ((n = read(c->o.fd, sink, sizeof sink)) > 0 || (n < 0 && errno == EINTR)))
    total += n > 0 ? (size_t)n : 0;
  conn_shut(c, close_reason(c), atomic_load_explicit(&c->o.close_code, memory_order_relaxed), false);
}

static void begin_close(ax__conn *c) {
  pthread_mutex_lock(&c->wlock);
  if (c->state == AX__CS_OPEN || c->state == AX__CS_CONNECTING) set_state(c, AX__CS_CLOSING);
  pthread_mutex_unlock(&c->wlock);
  if (!c->connected) {
    conn_shut(c, close_reason(c), 0, false);
    return;
  }
  if (c->rd_slab) slab_drop(c);
  try_finish_close(c);
}

void ax__conn_discard(ax__conn *c) { conn_shut(c, -1, 0, true); }

void ax__conn_on_timer(ax__conn *c) {
  if (!c->o.finalized) conn_shut(c, AX_IO_CLOSE_TIMEOUT, 0, true);
}

/* ---- events and commands (reactor) ---- */

static void flush_event(ax__conn *c) {
  pthread_mutex_lock(&c->wlock);
  int err = 0;
  ax__zc_reap(c);
  if (c->state == AX__CS_OPEN || c->state == AX__CS_CLOSING) err = flush_locked(c);
  int st = c->state;
  pthread_mutex_unlock(&c->wlock);
  if (err)
    conn_shut(c, AX_IO_CLOSE_ERROR, err, true);
  else if (st == AX__CS_CLOSING && atomic_load_explicit(&c->o.close_req, memory_order_relaxed) >= 0 &&
           ax__io_timer_armed(&c->o))
    try_finish_close(c); /* a close waiting for the queue */
}

static void connect_done(ax__conn *c, uint32_t events) {
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(c->o.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  if (!err && !(events & (AX__POLL_OUT | AX__POLL_ERR | AX__POLL_HUP))) return;
  if (!err && (events & (AX__POLL_ERR | AX__POLL_HUP))) err = ECONNREFUSED;
  if (err) {
    ax__io_event_reserved(&c->o, &c->o.last_msg, AX_MSG_IO_ERROR, 0, err, 0);
    conn_shut(c, -1, 0, false);
    return;
  }
  pthread_mutex_lock(&c->wlock);
  bool open = c->state == AX__CS_CONNECTING;
  if (open) set_state(c, AX__CS_OPEN);
  pthread_mutex_unlock(&c->wlock);
  if (!open) return; /* closing: the CLOSE command finishes it */
  c->connected = true;
  ax__conn_sockopts(c);
  ax_io_conn_info info;
  memset(&info, 0, sizeof info);
  info.conn = (ax_conn){c->o.io->sys, c->o.id};
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  if (getpeername(c->o.fd, (struct sockaddr *)&ss, &sl) == 0)
    ax__addr_format((struct sockaddr *)&ss, sl, info.peer, sizeof info.peer);
  ax_err e = ax__io_notify(&c->o, AX_MSG_IO_CONNECTED, &info, sizeof info, NULL);
  if (e != AX_OK) {
    /* The owner waits for CONNECTED or ERROR: out of memory, it gets the
     * ERROR (reserved), and the handle is dead as for any failed connect. */
    if (e == AX_ENOMEM) ax__io_event_reserved(&c->o, &c->o.last_msg, AX_MSG_IO_ERROR, 0, ENOMEM, 0);
    conn_shut(c, -1, 0, true);
    return;
  }
  c->rd_ready = true;
  do_read(c);
}

/* A socket error: zerocopy completions first (they raise ERR too), then
 * the pending error, if any, is fatal. Returns false if c was closed. */
static bool error_event(ax__conn *c) {
  pthread_mutex_lock(&c->wlock);
  ax__zc_reap(c);
  pthread_mutex_unlock(&c->wlock);
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(c->o.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  if (!err) return true;
  conn_shut(c, AX_IO_CLOSE_ERROR, err, false);
  return false;
}

void ax__conn_on_events(ax__io_handler *h, uint32_t events) {
  ax__conn *c = (ax__conn *)h;
  if (c->o.finalized) return;
  if (state_of(c) == AX__CS_CONNECTING) {
    connect_done(c, events);
    return;
  }
  if ((events & AX__POLL_ERR) && !error_event(c)) return;
  if (events & (AX__POLL_IN | AX__POLL_RDHUP | AX__POLL_HUP)) {
    c->rd_ready = true;
    if (events & (AX__POLL_RDHUP | AX__POLL_HUP)) c->rd_hup = true;
    do_read(c);
    if (c->o.finalized) return;
  }
  if (events & (AX__POLL_OUT | AX__POLL_HUP | AX__POLL_ERR)) flush_event(c);
}

void ax__conn_command(ax__conn *c, uint32_t bits) {
  if ((bits & AX__CMD_REGISTER) && c->connect_err) {
    ax__io_event_reserved(&c->o, &c->o.last_msg, AX_MSG_IO_ERROR, 0, c->connect_err, 0);
    conn_shut(c, -1, 0, false);
    return;
  }
  if (bits & AX__CMD_REGISTER) {
    if (ax__poller_add(c->o.io->poller, c->o.fd, AX__POLL_IN | AX__POLL_OUT, &c->o.h) == AX_OK) {
      c->o.registered = true;
    } else {
      int err = errno;
      if (!c->connected) ax__io_event_reserved(&c->o, &c->o.last_msg, AX_MSG_IO_ERROR, 0, err, 0);
      conn_shut(c, c->connected ? AX_IO_CLOSE_ERROR : -1, err, false);
      return;
    }
  }
  if (bits & AX__CMD_ABORT) {
    conn_shut(c, close_reason(c), atomic_load_explicit(&c->o.close_code, memory_order_relaxed),
              true);
    return;
  }
  if (bits & AX__CMD_CLOSE) {
    begin_close(c);
    return;
  }
  if ((bits & AX__CMD_READ) && c->connected) {
    c->rd_ready = true;
    do_read(c);
  }
  if ((bits & AX__CMD_FLUSH) && !c->o.finalized) flush_event(c);
}

/* ---- teardown ---- */

void ax__conn_teardown(ax__conn *c) {
  pthread_mutex_lock(&c->wlock);
  drop_queue(c);
  if (c->o.fd >= 0) close(c->o.fd);
  c->o.fd = -1;
  set_state(c, AX__CS_DEAD);
  pthread_mutex_unlock(&c->wlock);
  atomic_store_explicit(&c->rd_stalled, false, memory_order_seq_cst);
  if (c->rd_slab) slab_drop(c);
}

void ax__conn_destroy(ax__conn *c) {
  AX_ASSERT(!c->wq_head && !c->zc_head && !c->rd_slab);
  if (c->o.fd >= 0) close(c->o.fd); /* never published (a failed start) */
  ax__iobj_free_reserved(&c->o);
  pthread_mutex_destroy(&c->wlock);
  ax__free(c, sizeof(*c));
}

/* ---- the public calls ---- */

ax_err ax_conn_close(ax_conn h) {
  if (!h.sys) return AX_EINVAL;
  ax__conn *c = (ax__conn *)ax__iobj_get(h.sys, h.id, AX__IO_CONN);
  if (!c) return AX_ECLOSED;
  pthread_mutex_lock(&c->wlock);
  bool ok = c->state == AX__CS_OPEN || c->state == AX__CS_CONNECTING;
  if (ok) set_state(c, AX__CS_CLOSING);
  pthread_mutex_unlock(&c->wlock);
  if (ok) ax__io_close_req(&c->o, AX_IO_CLOSE_LOCAL, 0, AX__CMD_CLOSE);
  ax__iobj_put(&c->o);
  return ok ? AX_OK : AX_ECLOSED;
}

ax_err ax_conn_close_with(ax_conn h, const void *data, size_t len) {
  if (!h.sys || (!data && len) || len > AX_CONN_FINAL_MAX) return AX_EINVAL;
  ax__conn *c = (ax__conn *)ax__iobj_get(h.sys, h.id, AX__IO_CONN);
  if (!c) return AX_ECLOSED;
  pthread_mutex_lock(&c->wlock);
  ax_iov v = {data, len, NULL};
  ax_err e = write_locked(c, &v, 1, len, true); /* past the watermark */
  bool close = e == AX_OK || e == AX_ENOMEM;
  if (close) set_state(c, AX__CS_CLOSING);
  pthread_mutex_unlock(&c->wlock);
  if (close) ax__io_close_req(&c->o, AX_IO_CLOSE_LOCAL, 0, AX__CMD_CLOSE);
  ax__iobj_put(&c->o);
  return e;
}

ax_err ax_conn_abort(ax_conn h) {
  if (!h.sys) return AX_EINVAL;
  ax__conn *c = (ax__conn *)ax__iobj_get(h.sys, h.id, AX__IO_CONN);
  if (!c) return AX_ECLOSED;
  pthread_mutex_lock(&c->wlock);
  bool ok = c->state != AX__CS_DEAD;
  if (ok) set_state(c, AX__CS_CLOSING);
  pthread_mutex_unlock(&c->wlock);
  if (ok) ax__io_close_req(&c->o, AX_IO_CLOSE_ABORT, 0, AX__CMD_ABORT);
  ax__iobj_put(&c->o);
  return ok ? AX_OK : AX_ECLOSED;
}

static ax_err set_paused(ax_conn h, bool paused) {
  if (!h.sys) return AX_EINVAL;
  ax__conn *c = (ax__conn *)ax__iobj_get(h.sys, h.id, AX__IO_CONN);
  if (!c) return AX_ECLOSED;
  ax_err e = AX_ECLOSED;
  if (state_of(c) <= AX__CS_OPEN) {
    atomic_store_explicit(&c->rd_paused, paused, memory_order_relaxed);
    if (!paused) ax__io_cmd(&c->o, AX__CMD_READ);
    e = AX_OK;
  }
  ax__iobj_put(&c->o);
  return e;
}

ax_err ax_conn_pause_read(ax_conn c) { return set_paused(c, true); }
ax_err ax_conn_resume_read(ax_conn c) { return set_paused(c, false); }

ax_err ax_conn_set_owner(ax_conn h, ax_pid pid) {
  if (!h.sys) return AX_EINVAL;
  ax__conn *c = (ax__conn *)ax__iobj_get(h.sys, h.id, AX__IO_CONN);
  if (!c) return AX_ECLOSED;
  ax_err e = AX_OK;
  if (!ax__pid_alive(h.sys, pid.id))
    e = AX_ENOACTOR;
  else
    ax__io_set_owner(&c->o, pid.id);
  ax__iobj_put(&c->o);
  return e;
}

ax_err ax_conn_stats_get(ax_conn h, ax_conn_stats *out) {
  if (!h.sys || !out) return AX_EINVAL;
  ax__conn *c = (ax__conn *)ax__iobj_get(h.sys, h.id, AX__IO_CONN);
  if (!c) return AX_ECLOSED;
  memset(out, 0, sizeof *out);
  out->queued = atomic_load_explicit(&c->queued_pub, memory_order_relaxed);
  out->read_inflight =
      (uint64_t)atomic_load_explicit(&c->slabs, memory_order_relaxed) * c->o.opts.read_slab;
  out->bytes_read = atomic_load_explicit(&c->bytes_read, memory_order_relaxed);
  out->bytes_written = atomic_load_explicit(&c->bytes_written, memory_order_relaxed);
  out->zerocopy_sends = atomic_load_explicit(&c->zc_sends, memory_order_relaxed);
  ax__iobj_put(&c->o);
  return AX_OK;
}

ax_conn ax_io_msg_conn(ax_actor *self, const ax_msg *msg) {
  if (!self || !msg) return (ax_conn){NULL, 0};
  return (ax_conn){ax_actor_system(self), msg->ref};
}
