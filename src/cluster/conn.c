/* Axon: connection actors, the frame dispatcher and the route (docs/
 * cluster.md). One actor per connection owns its ax_conn: it runs the
 * handshake, decodes frames and replays them locally, pumps big messages
 * out as fragments, sends heartbeats, detects silence, and on loss takes
 * the node down (links, monitors, requests, node monitors). Diallers are
 * connection actors that redial with backoff. The route (any thread)
 * writes frames on the live connection under the peer's write lock. */
#include <stdio.h>
#include <string.h>

#include "cluster/node_int.h"

#define SMALL_FRAME 4096u           /* header + payload copied into one write */
#define PUMP_HIGH (1024u * 1024u)   /* the pump stops with this much in the socket queue */
#define PUMP_LOW (768u * 1024u)     /* and resumes on AX_MSG_IO_BELOW at this much */
#define BACKOFF_MIN 100u
#define BACKOFF_MAX 5000u
#define NONE_SENDER 2u              /* the senders map's key for AX_PID_NONE */

/* PH_ELECT: handshake done, waiting for the peer's ELECT (or BYE). */
enum { PH_IDLE, PH_CONNECTING, PH_HANDSHAKE, PH_ELECT, PH_UP, PH_DONE };

/* A host name being resolved for a dialler by a short-lived thread
 * (getaddrinfo blocks: never on the reactor, never in a behaviour). Held
 * by both; the thread sends its answer only while the dialler has not let
 * go (the dialler's terminate or its answer lets go), so it never touches
 * a system whose actor is gone. */
typedef struct resolve_req {
  pthread_mutex_t mu;
  int refs;
  bool gone;
  ax_system *sys;
  uint64_t pid;
  char addr[AX__ADDR_MAX + 1];
} resolve_req;

typedef struct cl_conn {
  ax__cluster *cl;
  ax_conn conn;
  bool dialler, stop, hs_live, dec_live, initiator;
  bool redial;                 /* PH_UP: the dial of plisten was lost to memory: on_tick retries */
  int phase;
  uint64_t me;                 /* this actor's pid */
  char addr[AX__ADDR_MAX + 1];
  char name[AX__NAME_MAX + 1]; /* the peer's name once known */
  ax__peer *peer;              /* PH_UP */
  ax__peer *cand;              /* PH_ELECT, PH_UP: the node of this connection */
  char plisten[AX__ADDR_MAX + 1]; /* the peer's listen address ("" if none) */
  uint32_t peer_max;           /* the peer's max frame */
  uint64_t elect_by;           /* PH_ELECT: the deadline for ELECT */
  resolve_req *rq;             /* a host name being resolved */
  char resolved[AX__ADDR_MAX + 1]; /* its numeric address, for the next dial */
  uint64_t features;
  uint64_t last_rx, last_tx, next_dial, hb_seq;
  uint32_t backoff;
  ax__reasm reasm;
  ax__fdec dec;
  ax__hs hs;
  ax__exit_kit kit;            /* ax_node_stop's stop for this actor (owned under cl->mu) */
} cl_conn;

static uint64_t now_ms(ax__cluster *cl) { return ax__clock_ms(cl->sys); }

/* ---- writing frames (under p->wmu) ---- */

static ax_err conn_err(ax_err e) { return e == AX_ECLOSED || e == AX_ESTATE ? AX_ENOACTOR : e; }

/* ---- holding a run's frames ----
 *
 * Inside an actor run on a worker (ax__in_run), small frames are appended
 * to the peer's buffer (p->ob) and the peer is noted in this thread's list;
 * the run's end (the route's flush, ax__route_run_end) writes each noted
 * peer's buffer with one write: a run that sends 100 messages to a node
 * makes one syscall, not 100. Any other write to the connection first
 * takes what is held (in the same vector write), so order is kept. Outside
 * a run (a plain thread, the reactor) frames go out at once. */
#define DIRTY_MAX 8
static _Thread_local ax__peer *t_dirty[DIRTY_MAX];
static _Thread_local unsigned t_ndirty;

static void sent(ax__cluster *cl, ax__peer *p, uint64_t frames, size_t bytes) {
  AX__CL_STAT(cl, frames_out, frames);
  AX__CL_STAT(cl, bytes_out, bytes);
  atomic_store_explicit(&p->tx, true, memory_order_relaxed);
}

/* Writes what p holds; p->wmu held. Out of memory keeps it (a later write
 * or the connection actor's KICK retries); a failed connection drops it
 * (its node down follows), counted as lost. */
static ax_err ob_flush(ax__cluster *cl, ax__peer *p) {
  if (!p->ob_len) return AX_OK;
  ax_err e = ax_conn_write(p->conn, p->ob, p->ob_len);
  if (e == AX_OK) sent(cl, p, p->ob_frames, p->ob_len);
  else if (e != AX_ENOMEM) AX__CL_STAT(cl, lost_on_down, p->ob_frames);
  if (e != AX_ENOMEM) {
    p->ob_len = 0;
    p->ob_frames = 0;
  }
  return conn_err(e);
}

/* Holds frame hdr+data in p->ob for the end of this run; p->wmu held.
 * false: not held (not in a run, too big, no memory): write it now. */
static bool ob_hold(ax__cluster *cl, ax__peer *p, const uint8_t *hdr, size_t hl, const void *data,
                    size_t len) {
  if (hl + len > SMALL_FRAME || !ax__in_run()) return false;
  if (!p->ob && !(p->ob = ax__alloc(AX__CL_OB_CAP))) return false;
  if (p->ob_len + hl + len > AX__CL_OB_CAP && ob_flush(cl, p) != AX_OK) return false;
  unsigned i = 0;
  while (i < t_ndirty && t_dirty[i] != p) i++;
  if (i == t_ndirty) {
    if (t_ndirty == DIRTY_MAX) return false; /* many peers in one run: no holding */
    if (!t_ndirty) ax__run_route_held();
    t_dirty[t_ndirty++] = p;
  }
  memcpy(p->ob + p->ob_len, hdr, hl);
  if (len) memcpy(p->ob + p->ob_len + hl, data, len);
  p->ob_len += hl + len;
  p->ob_frames++;
  atomic_store_explicit(&p->tx, true, memory_order_relaxed);
  return true;
}

static void kick(ax__cluster *cl, ax__peer *p);

void ax__cl_route_flush(void *st) {
  ax__cluster *cl = st;
  for (unsigned i = 0; i < t_ndirty; i++) {
    ax__peer *p = t_dirty[i];
    pthread_mutex_lock(&p->wmu);
    ax_err e = atomic_load(&p->up) ? ob_flush(cl, p) : AX_OK;
    pthread_mutex_unlock(&p->wmu);
    if (e == AX_ENOMEM) kick(cl, p); /* its connection actor retries */
  }
  t_ndirty = 0;
}

/* Writes header hdr[0..hl) and the payload as one frame; p->wmu held.
 * Held for the end of the run if small and in a run; else one vector
 * write, after what p holds: the frame is queued whole or not at all
 * (never half a frame on the wire); the payload goes by reference when it
 * has a buf. */
static ax_err write_frame(ax__cluster *cl, ax__peer *p, const uint8_t *hdr, size_t hl,
                          const void *data, size_t len, ax_buf *buf) {
  if (ob_hold(cl, p, hdr, hl, data, len)) return AX_OK;
  ax_err e;
  size_t held = p->ob_len;
  if (held) {
    ax_iov v[3] = {{p->ob, held, NULL}, {hdr, hl, NULL}, {data, len, buf}};
    e = ax_conn_writev(p->conn, v, len ? 3 : 2);
    if (e == AX_OK) {
      sent(cl, p, p->ob_frames, held);
      p->ob_len = 0;
      p->ob_frames = 0;
    }
  } else if (hl + len <= SMALL_FRAME) {
    uint8_t one[SMALL_FRAME];
    memcpy(one, hdr, hl);
    if (len) memcpy(one + hl, data, len);
    e = ax_conn_write(p->conn, one, hl + len);
  } else {
    ax_iov v[2] = {{hdr, hl, NULL}, {data, len, buf}};
    e = ax_conn_writev(p->conn, v, 2);
  }
  if (e == AX_OK) sent(cl, p, 1, hl + len);
  return conn_err(e);
}

static uint64_t sender_key(uint64_t from) { return from ? from : NONE_SENDER; }

static bool sender_pending(ax__peer *p, uint64_t from) {
  return p->bq && ax__u64map_get(&p->senders, sender_key(from), NULL);
}

static void enqueue(ax__peer *p, ax__clq *q) {
  uint64_t k = sender_key(q->sender), v = 0;
  ax__u64map_get(&p->senders, k, &v);
  ax__u64map_put(&p->senders, k, v + 1); /* room reserved by the caller */
  q->next = NULL;
  if (p->bq_tail) p->bq_tail->next = q;
  else p->bq = q;
  p->bq_tail = q;
  p->bq_bytes += q->len + q->blen;
}

static void clq_free(ax__clq *q) {
  if (q->buf) ax_buf_release(q->buf);
  if (q->bytes) ax__free(q->bytes, q->blen);
  ax__free(q, sizeof(*q));
}

static void dequeue_head(ax__peer *p) {
  ax__clq *q = p->bq;
  p->bq = q->next;
  if (!p->bq) p->bq_tail = NULL;
  p->bq_bytes -= q->len + q->blen;
  uint64_t k = sender_key(q->sender), v = 0;
  if (ax__u64map_get(&p->senders, k, &v)) {
    if (v <= 1) ax__u64map_del(&p->senders, k, NULL);
    else ax__u64map_put(&p->senders, k, v - 1);
  }
  clq_free(q);
}

/* Makes sure the senders map can take one more key without allocating. */
static bool senders_reserve(ax__peer *p, uint64_t from) {
  uint64_t k = sender_key(from), v = 0;
  if (ax__u64map_get(&p->senders, k, &v)) return ax__u64map_put(&p->senders, k, v);
  if (!ax__u64map_put(&p->senders, k, 0)) return false;
  ax__u64map_del(&p->senders, k, NULL);
  return true;
}

/* A control frame (any kind but SEND), from `sender`: written now, or
 * queued behind the sender's pending big message. p->wmu held, p up. */
static ax_err control_frame(ax__cluster *cl, ax__peer *p, uint64_t sender, const ax__wmsg *m,
                            bool *kick) {
  uint8_t hdr[AX__FRAG_SCRATCH + 512];
  size_t hl;
  ax_err e = ax__wmsg_encode_hdr(m, 0, p->max_frame, hdr, sizeof hdr, &hl);
  if (e != AX_OK) return e;
  if (!sender_pending(p, sender)) return write_frame(cl, p, hdr, hl, NULL, 0, NULL);
  ax__clq *q = ax__calloc(sizeof(*q));
  if (!q || !(q->bytes = ax__alloc(hl)) || !senders_reserve(p, sender)) {
    if (q) {
      if (q->bytes) ax__free(q->bytes, hl);
      ax__free(q, sizeof(*q));
    }
    return AX_ENOMEM;
  }
  memcpy(q->bytes, hdr, hl);
  q->blen = hl;
  q->encoded = true;
  q->sender = sender;
  *kick = !p->bq;
  enqueue(p, q);
  return AX_OK;
}

ax_err ax__cl_ctl_write(ax__cluster *cl, ax__peer *p, uint64_t sender, const ax__wmsg *m) {
  uint8_t *b = NULL;
  size_t bl = 0;
  bool k = false;
  ax_err e = AX_ENOACTOR;
  pthread_mutex_lock(&p->wmu);
  if (atomic_load(&p->up)) e = ax__wmsg_encode(m, p->max_frame, &b, &bl);
  if (e == AX_OK) {
    if (!sender_pending(p, sender)) {
      e = write_frame(cl, p, b, bl, NULL, 0, NULL);
    } else {
      ax__clq *q = ax__calloc(sizeof(*q));
      if (!q || !senders_reserve(p, sender)) {
        if (q) ax__free(q, sizeof(*q));
        e = AX_ENOMEM;
      } else {
        q->bytes = b;
        q->blen = bl;
        q->encoded = true;
        q->sender = sender;
        b = NULL;
        k = !p->bq;
        enqueue(p, q);
      }
    }
  }
  pthread_mutex_unlock(&p->wmu);
  if (b) ax__free(b, bl);
  if (k) kick(cl, p);
  return e;
}

static void kick(ax__cluster *cl, ax__peer *p) {
  pthread_mutex_lock(&p->wmu);
  uint64_t pid = atomic_load(&p->up) ? p->conn_pid : 0;
  pthread_mutex_unlock(&p->wmu);
  if (pid) ax__send_sys(cl->sys, 0, pid, AX__CL_KICK, 0, 0, NULL, 0, NULL);
}

static ax__peer *peer_of(ax__cluster *cl, uint64_t pid) {
  uint32_t node = ax__pid_node(pid);
  return atomic_load_explicit(&cl->peers[node], memory_order_acquire);
}

/* ---- the route ---- */

ax_err ax__cl_route_send(void *st, uint64_t from, uint64_t to, uint32_t type, uint32_t flags,
                         ax_ref ref, const void *data, size_t len, ax_buf *buf) {
  ax__cluster *cl = st;
  ax__peer *p = peer_of(cl, to);
  if (!p || !atomic_load_explicit(&p->up, memory_order_acquire)) {
    AX__CL_STAT(cl, no_node, 1);
    return AX_ENOACTOR;
  }
  ax__wmsg m;
  memset(&m, 0, sizeof m);
  char nb[AX__NAME_MAX + 1], nb2[AX__NAME_MAX + 1];
  bool is_down = false;
  ax_down_info d;
  if (flags & AX_MSGF_SYSTEM) {
    /* The one runtime message that travels as a message: a stopping
     * actor's DOWN to a remote watcher (its own frame kind). */
    if (type != AX_MSG_DOWN || len != sizeof d) return AX_ENOTSUP;
    memcpy(&d, data, sizeof d);
    m.kind = AX__K_DOWN;
    m.u.down.ref = d.ref;
    m.u.down.reason = d.reason;
    ax__cl_pid_out(cl, p, d.pid.id, &m.u.down.pid, nb);
    ax__cl_pid_out(cl, p, to, &m.u.down.watcher, nb2);
    is_down = true;
  } else {
    if (ax_msg_type_reserved(type)) return AX_ENOTSUP; /* runtime requests stay local */
    m.kind = AX__K_SEND;
    ax__cl_pid_out(cl, p, to, &m.u.send.to, nb2);
    ax__cl_pid_out(cl, p, from, &m.u.send.from, nb);
    m.u.send.type = type;
    m.u.send.flags = flags & (AX_MSGF_REQUEST | AX_MSGF_REPLY | AX_MSGF_TIMER);
    m.u.send.ref = ref;
  }
  bool k = false;
  ax_err e;
  pthread_mutex_lock(&p->wmu);
  if (!atomic_load(&p->up)) {
    pthread_mutex_unlock(&p->wmu);
    AX__CL_STAT(cl, no_node, 1);
    return AX_ENOACTOR;
  }
  if (is_down) {
    e = control_frame(cl, p, from, &m, &k);
    if (e == AX_OK) {
      pthread_mutex_lock(&p->tmu);
      ax__u64map_del(&p->mi_w, d.ref, NULL);
      ax__u64map_del(&p->mi_t, d.ref, NULL);
      pthread_mutex_unlock(&p->tmu);
    }
    goto out;
  }
  if (len > p->max_frame) {
    e = AX_ELIMIT; /* larger than the peer accepts as one message */
    goto out;
  }
  ax_conn_stats cs = {0};
  ax_conn_stats_get(p->conn, &cs);
  if (cs.queued + p->bq_bytes + p->ob_len > cl->sendq_max) {
    AX__CL_STAT(cl, congested, 1);
    e = AX_EAGAIN;
    goto out;
  }
  if (!ax__frag_splits(len, 0) && !sender_pending(p, from)) {
    uint8_t hdr[AX__FRAG_SCRATCH + 512];
    size_t hl;
    e = ax__wmsg_encode_hdr(&m, len, p->max_frame, hdr, sizeof hdr, &hl);
    if (e == AX_OK) e = write_frame(cl, p, hdr, hl, data, len, buf);
  } else {
    /* A big message (or one behind its sender's big message): the
     * connection actor writes it as fragments while the socket drains. */
    ax__clq *q = ax__calloc(sizeof(*q));
    e = AX_ENOMEM;
    if (q && senders_reserve(p, from)) {
      if (buf) {
        ax_buf_retain(buf);
        q->buf = buf;
        q->off = (size_t)((const uint8_t *)data - (const uint8_t *)ax_buf_data(buf));
        e = AX_OK;
      } else {
        e = ax_buf_copy(data, len, &q->buf);
        q->off = 0;
      }
    }
    if (e == AX_OK) {
      q->len = len;
      q->sender = from;
      q->m = m;
      if (m.u.send.from.node) {
        memcpy(q->from_node, nb, sizeof nb);
        q->m.u.send.from.node = q->from_node;
      }
      k = !p->bq;
      enqueue(p, q);
    } else if (q) {
      ax__free(q, sizeof(*q));
    }
  }
  if (e == AX_OK && (flags & AX_MSGF_REQUEST) && (ref & 1) && from) {
    pthread_mutex_lock(&p->tmu); /* a timed request: ended at once by a node down */
    ax__u64map_put(&p->pend, ref, from);
    pthread_mutex_unlock(&p->tmu);
  }
out:
  pthread_mutex_unlock(&p->wmu);
  if (k) kick(cl, p);
  if (e == AX_ENOACTOR) AX__CL_STAT(cl, no_node, 1);
  return e;
}

ax_err ax__cl_route_signal(void *st, uint64_t from, uint64_t to, uint32_t type, const void *data,
                           size_t len) {
  ax__cluster *cl = st;
  ax__peer *p = peer_of(cl, to);
  if (!p || !atomic_load_explicit(&p->up, memory_order_acquire)) {
    AX__CL_STAT(cl, no_node, 1);
    return AX_ENOACTOR;
  }
  ax__wmsg m;
  memset(&m, 0, sizeof m);
  char nb[AX__NAME_MAX + 1], nb2[AX__NAME_MAX + 1];
  ax_exit_info xi;
  ax_down_info d;
  uint64_t ref = 0;
  switch (type) {
  case AX__SIG_EXIT:
  case AX__SIG_LINK_EXIT:
    if (len != sizeof xi) return AX_EINVAL;
    memcpy(&xi, data, sizeof xi);
    m.kind = AX__K_EXIT;
    ax__cl_pid_out(cl, p, from, &m.u.exit.from, nb);
    ax__cl_pid_out(cl, p, to, &m.u.exit.to, nb2);
    m.u.exit.reason = xi.reason;
    m.u.exit.link = type == AX__SIG_LINK_EXIT;
    break;
  case AX__SIG_LINK:
  case AX__SIG_UNLINK:
    if (!from) return AX_EINVAL;
    m.kind = type == AX__SIG_LINK ? AX__K_LINK : AX__K_UNLINK;
    ax__cl_pid_out(cl, p, from, &m.u.link.from, nb);
    ax__cl_pid_out(cl, p, to, &m.u.link.to, nb2);
    break;
  case AX__SIG_MONITOR:
    if (len != sizeof d || !from) return AX_EINVAL;
    memcpy(&d, data, sizeof d);
    ref = d.ref;
    m.kind = AX__K_MONITOR;
    goto mon;
  case AX__SIG_DEMONITOR:
    if (len != sizeof ref || !from) return AX_EINVAL;
    memcpy(&ref, data, sizeof ref);
    m.kind = AX__K_DEMONITOR;
  mon:
    ax__cl_pid_out(cl, p, from, &m.u.monitor.watcher, nb);
    ax__cl_pid_out(cl, p, to, &m.u.monitor.target, nb2);
    m.u.monitor.ref = ref;
    break;
  default: return AX_ENOTSUP;
  }
  bool k = false;
  pthread_mutex_lock(&p->wmu);
  ax_err e = AX_ENOACTOR;
  if (atomic_load(&p->up)) e = control_frame(cl, p, from, &m, &k);
  if (e == AX_OK) {
    pthread_mutex_lock(&p->tmu);
    switch (type) {
    case AX__SIG_LINK: ax__pairset_put(&p->links, from, to); break;
    case AX__SIG_UNLINK:
    case AX__SIG_LINK_EXIT: ax__pairset_del(&p->links, from, to); break;
    case AX__SIG_MONITOR:
      if (ref >= 2 && ax__u64map_put(&p->mo_w, ref, from) && !ax__u64map_put(&p->mo_t, ref, to))
        ax__u64map_del(&p->mo_w, ref, NULL);
      break;
    case AX__SIG_DEMONITOR:
      ax__u64map_del(&p->mo_w, ref, NULL);
      ax__u64map_del(&p->mo_t, ref, NULL);
      break;
    default: break;
    }
    pthread_mutex_unlock(&p->tmu);
  }
  pthread_mutex_unlock(&p->wmu);
  if (k) kick(cl, p);
  if (e == AX_ENOACTOR) AX__CL_STAT(cl, no_node, 1);
  return e;
}

/* ---- the connection actor ---- */

/* The next tick: every tick_ms, and for an up peer no later than the
 * moment its silence reaches down_ms, so a silent node is declared down at
 * down_after (plus timer lateness), not up to a tick later. */
/* The tick: a periodic timer every tick_ms, armed once in init (allocated
 * once: one timer that cannot be re-armed for lack of memory would stop
 * the connection's heartbeats, down detection and redials for good; the
 * OOM loop cluster.oom found it). An up peer whose silence reaches
 * down_after before the next periodic tick gets one extra tick at that
 * moment; if that one cannot be armed, the periodic tick is at most one
 * tick late. */
static void arm_tick(ax_actor *self, cl_conn *c) {
  if (c->phase != PH_UP) return;
  uint64_t now = now_ms(c->cl), due = c->last_rx + c->cl->down_ms;
  uint64_t d = due <= now ? 1 : due - now;
  if (d < c->cl->tick_ms)
    (void)ax__send_after(self, (uint32_t)d, ax_self(self), AX__CL_TICK, NULL, 0, NULL);
}

static void hs_flush(cl_conn *c) {
  const uint8_t *b;
  size_t n;
  ax__hs_output(&c->hs, &b, &n);
  if (n && ax_conn_write(c->conn, b, n) == AX_OK) ax__hs_sent(&c->hs, n);
}

static void reset_codec(cl_conn *c) {
  if (c->hs_live) ax__hs_fini(&c->hs);
  if (c->dec_live) {
    ax__fdec_fini(&c->dec);
    ax__reasm_fini(&c->reasm);
  }
  c->hs_live = c->dec_live = false;
}

static void conn_lost(ax_actor *self, cl_conn *c, int reason);
static void backoff(cl_conn *c);
static void proto_fail(ax_actor *self, cl_conn *c, const char *what, ax__perr pe);

static void begin_handshake(ax_actor *self, cl_conn *c) {
  ax__cluster *cl = c->cl;
  ax__hs_cfg h = {.self_name = cl->name,
                  .incarnation = cl->incarnation,
                  .features = AX__FEAT_ALL_V1 | AX__FEAT_ELECT,
                  .max_frame = cl->max_frame,
                  .listen = cl->listening ? cl->listen_addr : NULL,
                  .secret = &cl->secret,
                  .initiator = c->dialler,
                  .deadline_ms = now_ms(cl) + cl->hs_ms};
  (void)self;
  if (ax__hs_init(&c->hs, &h) != AX_OK) {
    ax_log(cl->sys, AX_LOG_ERROR, "cluster %s: cannot start a handshake", cl->name);
    ax_conn_abort(c->conn);
    return;
  }
  c->hs_live = true;
  c->phase = PH_HANDSHAKE;
  hs_flush(c);
}

/* Sends PEER_LIST: the nodes we are connected to, except p itself. */
static void send_peers(ax__cluster *cl, ax__peer *p) {
  enum { CHUNK = 128 };
  static _Thread_local ax__wpeer list[CHUNK];
  static _Thread_local char names[CHUNK][AX__NAME_MAX + 1], addrs[CHUNK][AX__ADDR_MAX + 1];
  uint32_t i = 1;
  while (i <= AX__NODES_MAX) {
    size_t n = 0;
    pthread_mutex_lock(&cl->mu);
    for (; i <= AX__NODES_MAX && n < CHUNK; i++) {
      ax__peer *q = atomic_load(&cl->peers[i]);
      if (!q || q == p || !atomic_load(&q->up) || !q->addr[0]) continue;
      snprintf(names[n], sizeof names[n], "%s", q->name);
      snprintf(addrs[n], sizeof addrs[n], "%s", q->addr);
      list[n] = (ax__wpeer){names[n], q->incarnation, addrs[n]};
      n++;
    }
    pthread_mutex_unlock(&cl->mu);
    if (!n) break;
    ax__wmsg m;
    memset(&m, 0, sizeof m);
    m.kind = AX__K_PEER_LIST;
    m.u.peers.peers = list;
    m.u.peers.npeers = n;
    bool k = false;
    pthread_mutex_lock(&p->wmu);
    if (atomic_load(&p->up)) control_frame(cl, p, 0, &m, &k);
    pthread_mutex_unlock(&p->wmu);
  }
}

/* How a connection whose handshake finished becomes the node's link
 * (docs/PROTOCOL.md "Simultaneous connect"). */
enum {
  UP_LEGACY,  /* a peer without ELECT: the tie-break of ax__hs_tiebreak_keep */
  UP_ELECTOR, /* ELECT, our name is smaller: we choose (the first one wins) */
  UP_ELECTED  /* ELECT, the peer chose this connection (ELECT arrived) */
};

/* Turns a duplicate connection down: BYE(duplicate), close; a dialler
 * stands by while the node is linked through the other connection. */
static void refuse_duplicate(ax_actor *self, cl_conn *c) {
  ax__wmsg m;
  memset(&m, 0, sizeof m);
  m.kind = AX__K_BYE;
  m.u.bye.reason = AX__HSR_DUPLICATE;
  uint8_t *b;
  size_t bl;
  if (ax__wmsg_encode(&m, c->peer_max, &b, &bl) == AX_OK) {
    ax_conn_write(c->conn, b, bl);
    ax__free(b, bl);
  }
  ax_conn_close(c->conn);
  c->conn = (ax_conn){0};
  conn_lost(self, c, AX_NODE_CLOSED);
}

static void peer_down(ax__cluster *cl, ax__peer *p, uint64_t owner, int reason);

/* Makes this connection node c->cand's link. Frames of the route go out on
 * a connection only from here on: with ELECT, only on the connection the
 * node with the smaller name chose, so nothing is ever written on a
 * connection the other side drops. */
static void go_up(ax_actor *self, cl_conn *c, int mode) {
  ax__cluster *cl = c->cl;
  ax__peer *p = c->cand;
  uint64_t me = ax_self(self).id;
  ax_conn superseded = {0};
  pthread_mutex_lock(&p->wmu);
  while (mode == UP_ELECTED && atomic_load(&p->up) && p->conn_pid != me) {
    /* The elector chooses only while it has no link to us: the old link
     * is gone on its side (we had not noticed yet). Take it down first. */
    uint64_t old = p->conn_pid;
    ax_conn oc = p->conn;
    pthread_mutex_unlock(&p->wmu);
    ax_conn_abort(oc);
    peer_down(cl, p, old, AX_NODE_CLOSED);
    pthread_mutex_lock(&p->wmu);
  }
  if (atomic_load(&p->up) && p->conn_pid != me) {
    if (mode == UP_ELECTOR || !ax__hs_tiebreak_keep(cl->name, c->name, c->initiator)) {
      pthread_mutex_unlock(&p->wmu);
      refuse_duplicate(self, c); /* the other connection stays */
      return;
    }
    ob_flush(cl, p); /* what is held belongs to the old connection's stream */
    superseded = p->conn; /* legacy: this one wins the tie-break */
    for (ax__clq *q = p->bq; q; q = q->next) q->started = false; /* restart on the new link */
  }
  p->conn = c->conn;
  p->conn_pid = me;
  p->features = c->features;
  p->max_frame = c->peer_max;
  if (mode == UP_ELECTOR) {
    /* ELECT first: the peer uses this connection from then on. */
    ax__wmsg m;
    memset(&m, 0, sizeof m);
    m.kind = AX__K_ELECT;
    uint8_t hdr[32];
    size_t hl;
    ax_err e = ax__wmsg_encode_hdr(&m, 0, p->max_frame, hdr, sizeof hdr, &hl);
    if (e == AX_OK) e = write_frame(cl, p, hdr, hl, NULL, 0, NULL);
    if (e != AX_OK) {
      p->conn = (ax_conn){0};
      p->conn_pid = 0;
      pthread_mutex_unlock(&p->wmu);
      ax_log(cl->sys, AX_LOG_WARN, "cluster %s: cannot elect the link to %s: %s", cl->name,
             c->name, ax_err_name(e));
      conn_lost(self, c, AX_NODE_CLOSED);
      return;
    }
  }
  bool was_up = atomic_load(&p->up);
  atomic_store_explicit(&p->up, true, memory_order_release);
  bool pending = p->bq != NULL;
  pthread_mutex_unlock(&p->wmu);
  if (superseded.id) ax_conn_close(superseded);
  c->peer = p;
  c->phase = PH_UP;
  c->backoff = 0;
  c->last_rx = c->last_tx = now_ms(cl);
  if (!was_up) {
    AX__CL_STAT(cl, up, 1);
    ax_log(cl->sys, AX_LOG_INFO, "cluster %s: node %s up", cl->name, p->name);
    ax__cl_notify(cl, AX_MSG_NODE_UP, p->name, p->incarnation, AX_NODE_CONNECTED);
  }
  if (c->features & AX__FEAT_PEERS) send_peers(cl, p);
  ax__cl_pg_peer_up(cl, p, me); /* our groups' local members (pg.c) */
  /* Keep redialling it (after a node down); a record lost to memory is
   * asked for again on the tick. */
  c->redial = c->plisten[0] && ax__cl_dial(cl, c->plisten, p->name) == AX_ENOMEM;
  if (pending) ax__send_sys(cl->sys, 0, me, AX__CL_KICK, 0, 0, NULL, 0, NULL);
}

/* The handshake finished: the connection becomes the node's link now, or
 * when the peer elects it, or is refused as a duplicate. */
static void established(ax_actor *self, cl_conn *c) {
  ax__cluster *cl = c->cl;
  ax__hs_result r;
  ax__hs_result_get(&c->hs, &r);
  snprintf(c->name, sizeof c->name, "%s", r.peer);
  uint32_t idx = 0, replaced = 0;
  pthread_mutex_lock(&cl->mu);
  ax_err e = ax__nodes_intern(cl->nodes, r.peer, r.peer_incarnation, &idx, &replaced);
  ax__peer *p = e == AX_OK ? ax__cl_peer_make(cl, idx) : NULL;
  ax__peer *old = replaced ? atomic_load(&cl->peers[replaced]) : NULL;
  if (p) {
    /* Written only when they change (a new or reused index): another
     * connection of the same node reads them without mu (simultaneous
     * connects complete together). */
    if (strcmp(p->name, r.peer) != 0) snprintf(p->name, sizeof p->name, "%s", r.peer);
    if (p->incarnation != r.peer_incarnation) p->incarnation = r.peer_incarnation;
    if (r.peer_listen[0] && strcmp(p->addr, r.peer_listen) != 0)
      snprintf(p->addr, sizeof p->addr, "%s", r.peer_listen);
  }
  pthread_mutex_unlock(&cl->mu);
  if (!p) {
    ax_log(cl->sys, AX_LOG_WARN, "cluster %s: node %s refused: %s", cl->name, r.peer,
           e == AX_ECLOSED ? "a retired incarnation" : ax_err_name(e));
    conn_lost(self, c, AX_NODE_CLOSED);
    return;
  }
  if (old) { /* a new incarnation: the old one is gone for good */
    pthread_mutex_lock(&old->wmu);
    uint64_t op = atomic_load(&old->up) ? old->conn_pid : 0;
    pthread_mutex_unlock(&old->wmu);
    if (op) ax__send_sys(cl->sys, 0, op, AX__CL_GONE, 0, 0, NULL, 0, NULL);
  }
  c->cand = p;
  c->features = r.features;
  c->peer_max = r.peer_max_frame;
  c->initiator = r.initiator;
  snprintf(c->plisten, sizeof c->plisten, "%s", r.peer_listen);
  AX__CL_STAT(cl, hs_ok, 1);
  ax__fdec_init(&c->dec, cl->max_frame);
  ax__reasm_init(&c->reasm, (size_t)AX__REASM_FACTOR * cl->max_frame, cl->max_frame);
  c->dec_live = true;
  c->last_rx = c->last_tx = now_ms(cl);
  if (!(r.features & AX__FEAT_ELECT)) {
    go_up(self, c, UP_LEGACY);
  } else if (strcmp(cl->name, r.peer) < 0) {
    go_up(self, c, UP_ELECTOR);
  } else {
    c->phase = PH_ELECT; /* until the peer's ELECT or BYE (bounded: on_tick) */
    c->elect_by = c->last_rx + cl->hs_ms;
  }
}

/* A frame while waiting for ELECT: only ELECT, BYE (a duplicate) and
 * HEARTBEAT may come. Returns false when the connection closed. */
static bool elect_frame(ax_actor *self, cl_conn *c, const ax__frame *f) {
  ax__wmsg m;
  ax__perr pe = AX__PE_OK;
  ax_err e = ax__wmsg_decode(f, c->features, false, &m, &pe);
  int kind = m.kind;
  ax__wmsg_fini(&m);
  if (e == AX_ENOMEM) {
    conn_lost(self, c, AX_NODE_CLOSED);
    return false;
  }
  if (e != AX_OK) {
    proto_fail(self, c, "bad frame", pe);
    return false;
  }
  switch (kind) {
  case AX__K_ELECT: go_up(self, c, UP_ELECTED); return c->phase == PH_UP;
  case AX__K_HEARTBEAT: return true;
  case AX__K_BYE: conn_lost(self, c, AX_NODE_CLOSED); return false; /* a duplicate */
  default: proto_fail(self, c, "a frame before ELECT", AX__PE_KIND); return false;
  }
}

/* Node p is down if its link is still connection actor `owner`'s: undo
 * what crossed it (once: the first caller for that link does it). */
static void peer_down(ax__cluster *cl, ax__peer *p, uint64_t owner, int reason) {
  ax__clq *bq = NULL;
  pthread_mutex_lock(&p->wmu);
  bool active = atomic_load(&p->up) && p->conn_pid == owner;
  if (active) {
    atomic_store(&p->up, false);
    p->conn = (ax_conn){0};
    p->conn_pid = 0;
    bq = p->bq;
    p->bq = p->bq_tail = NULL;
    p->bq_bytes = 0;
    ax__u64map_free(&p->senders);
    if (p->ob_frames) AX__CL_STAT(cl, lost_on_down, p->ob_frames); /* never written */
    p->ob_len = 0;
    p->ob_frames = 0;
  }
  pthread_mutex_unlock(&p->wmu);
  if (!active) return;
  ax__cl_pg_peer_down(cl, p, owner); /* its members leave (pg.c) */
  ax__pairset links;
  ax__u64map mo_w, mo_t, mi_w, mi_t, pend;
  pthread_mutex_lock(&p->tmu);
  links = p->links;
  mo_w = p->mo_w, mo_t = p->mo_t, mi_w = p->mi_w, mi_t = p->mi_t, pend = p->pend;
  p->links = (ax__pairset){0};
  p->mo_w = p->mo_t = p->mi_w = p->mi_t = p->pend = (ax__u64map){0};
  pthread_mutex_unlock(&p->tmu);
  ax_system *sys = cl->sys;
  uint64_t lost = 0;
  for (ax__clq *q = bq, *n; q; q = n) {
    n = q->next;
    if (!q->encoded) lost++;
    clq_free(q);
  }
  if (lost) AX__CL_STAT(cl, lost_on_down, lost);
  for (uint32_t i = 0; i < links.cap; i++) {
    if (links.k[i][0] < 2) continue;
    uint64_t l = links.k[i][0], r = links.k[i][1];
    ax_exit_info xi = {.pid = {r}, .reason = AX_REASON_NOCONNECTION};
    ax__signal(sys, r, l, AX__SIG_LINK_EXIT, &xi, sizeof xi);
  }
  for (uint32_t i = 0; i < mo_w.cap; i++) {
    if (!ax__u64map_live(&mo_w, i)) continue;
    uint64_t ref = ax__u64map_key(&mo_w, i), w = ax__u64map_val(&mo_w, i), t = 0;
    ax__u64map_get(&mo_t, ref, &t);
    ax_down_info d = {.ref = ref, .pid = {t}, .reason = AX_REASON_NOCONNECTION};
    ax__send_sys(sys, t, w, AX_MSG_DOWN, 0, 0, &d, sizeof d, NULL);
  }
  for (uint32_t i = 0; i < mi_w.cap; i++) {
    if (!ax__u64map_live(&mi_w, i)) continue;
    uint64_t ref = ax__u64map_key(&mi_w, i), w = ax__u64map_val(&mi_w, i), t = 0;
    if (ax__u64map_get(&mi_t, ref, &t)) ax__signal(sys, w, t, AX__SIG_DEMONITOR, &ref, sizeof ref);
  }
  ax_node_timeout nt = {AX_REASON_NOCONNECTION};
  for (uint32_t i = 0; i < pend.cap; i++) {
    if (!ax__u64map_live(&pend, i)) continue;
    uint64_t ref = ax__u64map_key(&pend, i), who = ax__u64map_val(&pend, i);
    /* A reply-flagged timeout: the requester's run loop ends the timed
     * request with it (its timer is cancelled), exactly once. */
    ax__send(sys, ax__ctx_get(), who, (ax_pid){who}, AX_MSG_TIMEOUT, AX_MSGF_REPLY, ref, &nt,
             sizeof nt, NULL);
  }
  ax__pairset_free(&links);
  ax__u64map_free(&mo_w);
  ax__u64map_free(&mo_t);
  ax__u64map_free(&mi_w);
  ax__u64map_free(&mi_t);
  ax__u64map_free(&pend);
  AX__CL_STAT(cl, down, 1);
  static const char *const why[] = {"connected", "closed", "timeout", "disconnected",
                                    "stopped", "restarted", "protocol error"};
  ax_log(sys, reason == AX_NODE_STOPPED || reason == AX_NODE_DISCONNECTED ? AX_LOG_INFO : AX_LOG_WARN,
         "cluster %s: node %s down (%s)", cl->name, p->name,
         reason >= 0 && reason <= 6 ? why[reason] : "?");
  ax__cl_notify(cl, AX_MSG_NODE_DOWN, p->name, p->incarnation, reason);
}

/* The node behind this connection is down: undo what crossed it. */
static void node_down(ax_actor *self, cl_conn *c, int reason) {
  ax__peer *p = c->peer;
  c->peer = NULL;
  if (p) peer_down(c->cl, p, ax_self(self).id, reason);
}

/* The connection is gone (or must go): take the node down, then redial or
 * stop. */
static void conn_lost(ax_actor *self, cl_conn *c, int reason) {
  if (c->phase == PH_UP) node_down(self, c, reason);
  if (c->conn.id) {
    if (reason == AX_NODE_DISCONNECTED || reason == AX_NODE_STOPPED) ax_conn_close(c->conn);
    else ax_conn_abort(c->conn);
  }
  c->conn = (ax_conn){0};
  reset_codec(c);
  if (c->dialler && !c->stop && atomic_load(&c->cl->state) == 1) {
    c->phase = PH_IDLE;
    backoff(c);
  } else {
    c->phase = PH_DONE;
    ax_exit(self, ax_self(self), AX_REASON_NORMAL);
  }
}

static void proto_fail(ax_actor *self, cl_conn *c, const char *what, ax__perr pe) {
  ax__cluster *cl = c->cl;
  AX__CL_STAT(cl, proto, 1);
  ax_log(cl->sys, AX_LOG_WARN, "cluster %s: node %s: %s (%s): connection closed", cl->name,
         c->name[0] ? c->name : "?", what, ax__perr_str(pe));
  conn_lost(self, c, AX_NODE_PROTOCOL);
}

/* This connection is its node's link (a superseded one no longer is). */
static bool peer_active(cl_conn *c) {
  return c->peer && atomic_load(&c->peer->up) && atomic_load(&c->peer->conn_pid) == c->me;
}

/* Replays one SEND (whole or reassembled) locally. */
static bool deliver_send(ax_actor *self, cl_conn *c, const ax__wmsg *m, const void *data,
                         size_t len, ax_buf *buf) {
  ax__cluster *cl = c->cl;
  if (ax_msg_type_reserved(m->u.send.type)) {
    AX__CL_STAT(cl, refused_types, 1);
    ax_log(cl->sys, AX_LOG_WARN,
           "cluster %s: node %s sent a message of reserved type %u: connection closed", cl->name,
           c->name, m->u.send.type);
    conn_lost(self, c, AX_NODE_PROTOCOL);
    return false;
  }
  uint64_t to = ax__cl_pid_in(cl, c->peer, &m->u.send.to);
  uint64_t from = ax__cl_pid_in(cl, c->peer, &m->u.send.from);
  uint32_t flags = m->u.send.flags & (AX_MSGF_REQUEST | AX_MSGF_REPLY | AX_MSGF_TIMER);
  if (!to || ax__pid_node(to) != cl->self_idx) { /* no relaying */
    AX__CL_STAT(cl, unknown_pid, 1);
    return true;
  }
  if (flags & AX_MSGF_REPLY) {
    pthread_mutex_lock(&c->peer->tmu);
    ax__u64map_del(&c->peer->pend, m->u.send.ref, NULL);
    pthread_mutex_unlock(&c->peer->tmu);
  }
  ax_err e = ax__send(cl->sys, ax__ctx_get(), from, (ax_pid){to}, m->u.send.type, flags,
                      m->u.send.ref, data, len, buf);
  if (e != AX_OK) AX__CL_STAT(cl, unknown_pid, 1);
  return true;
}

/* One frame after the handshake. Returns false when the connection closed. */
static bool dispatch(ax_actor *self, cl_conn *c, const ax__frame *f) {
  ax__cluster *cl = c->cl;
  ax__peer *p = c->peer;
  ax__wmsg m;
  ax__perr pe = AX__PE_OK;
  ax_err e = ax__wmsg_decode(f, c->features, false, &m, &pe);
  if (e != AX_OK) {
    ax__wmsg_fini(&m);
    if (e == AX_ENOMEM) {
      ax_log(cl->sys, AX_LOG_ERROR, "cluster %s: out of memory decoding a frame", cl->name);
      conn_lost(self, c, AX_NODE_CLOSED);
    } else {
      proto_fail(self, c, "bad frame", pe);
    }
    return false;
  }
  bool ok = true;
  ax_system *sys = cl->sys;
  switch (m.kind) {
  case AX__K_SEND: ok = deliver_send(self, c, &m, m.payload, m.payload_len, NULL); break;
  case AX__K_SEND_BEGIN:
  case AX__K_SEND_MORE: {
    bool done = false;
    ax__wmsg hdr;
    memset(&hdr, 0, sizeof hdr);
    ax_buf *payload = NULL;
    e = ax__reasm_feed(&c->reasm, &m, &done, &hdr, &payload, &pe);
    if (e != AX_OK) {
      ax__wmsg_fini(&m);
      if (e == AX_ENOMEM) conn_lost(self, c, AX_NODE_CLOSED);
      else proto_fail(self, c, "bad fragment", pe);
      return false;
    }
    if (done) {
      ok = deliver_send(self, c, &hdr, ax_buf_data(payload), ax_buf_len(payload), payload);
      ax_buf_release(payload);
      ax__wmsg_fini(&hdr);
    }
    break;
  }
  case AX__K_LINK:
  case AX__K_UNLINK: {
    uint64_t from = ax__cl_pid_in(cl, p, &m.u.link.from), to = ax__cl_pid_in(cl, p, &m.u.link.to);
    if (!from || !to || ax__pid_node(to) != cl->self_idx || ax__pid_node(from) != p->idx) {
      AX__CL_STAT(cl, unknown_pid, 1);
      break;
    }
    bool link = m.kind == AX__K_LINK;
    pthread_mutex_lock(&p->tmu);
    /* The peer chooses `from`: bound the pairs it can make us track. */
    bool room = !link || p->links.count < AX__CL_LINKS_MAX;
    if (link && room) room = ax__pairset_put(&p->links, to, from);
    else if (!link) ax__pairset_del(&p->links, to, from);
    pthread_mutex_unlock(&p->tmu);
    if (!room) { /* refused: the linker hears it as an exit, as on OOM locally */
      AX__CL_STAT(cl, unknown_pid, 1);
      ax_exit_info xi = {.pid = {to}, .reason = AX_REASON_ERROR + AX_ELIMIT};
      ax__cl_route_signal(cl, to, from, AX__SIG_LINK_EXIT, &xi, sizeof xi);
      break;
    }
    e = ax__signal(sys, from, to, link ? AX__SIG_LINK : AX__SIG_UNLINK, &from, sizeof from);
    if (e == AX_ENOACTOR && link) {
      /* Dead already: the linker gets noproc, as locally. */
      pthread_mutex_lock(&p->tmu);
      ax__pairset_del(&p->links, to, from);
      pthread_mutex_unlock(&p->tmu);
      AX__CL_STAT(cl, unknown_pid, 1);
      ax_exit_info xi = {.pid = {to}, .reason = AX_REASON_NOPROC};
      ax__cl_route_signal(cl, to, from, AX__SIG_LINK_EXIT, &xi, sizeof xi);
    }
    break;
  }
  case AX__K_EXIT: {
    uint64_t from = ax__cl_pid_in(cl, p, &m.u.exit.from), to = ax__cl_pid_in(cl, p, &m.u.exit.to);
    if (!to || ax__pid_node(to) != cl->self_idx) {
      AX__CL_STAT(cl, unknown_pid, 1);
      break;
    }
    if (m.u.exit.link) {
      pthread_mutex_lock(&p->tmu);
      ax__pairset_del(&p->links, to, from);
      pthread_mutex_unlock(&p->tmu);
    }
    ax_exit_info xi = {.pid = {from}, .reason = m.u.exit.reason};
    if (ax__signal(sys, from, to, m.u.exit.link ? AX__SIG_LINK_EXIT : AX__SIG_EXIT, &xi,
                   sizeof xi) != AX_OK)
      AX__CL_STAT(cl, unknown_pid, 1);
    break;
  }
  case AX__K_MONITOR:
  case AX__K_DEMONITOR: {
    uint64_t w = ax__cl_pid_in(cl, p, &m.u.monitor.watcher),
             t = ax__cl_pid_in(cl, p, &m.u.monitor.target), ref = m.u.monitor.ref;
    if (!w || !t || ax__pid_node(t) != cl->self_idx || ax__pid_node(w) != p->idx || ref < 2) {
      AX__CL_STAT(cl, unknown_pid, 1);
      break;
    }
    if (m.kind == AX__K_DEMONITOR) {
      pthread_mutex_lock(&p->tmu);
      ax__u64map_del(&p->mi_w, ref, NULL);
      ax__u64map_del(&p->mi_t, ref, NULL);
      pthread_mutex_unlock(&p->tmu);
      ax__signal(sys, w, t, AX__SIG_DEMONITOR, &ref, sizeof ref);
      break;
    }
    pthread_mutex_lock(&p->tmu);
    if (ax__u64map_put(&p->mi_w, ref, w) && !ax__u64map_put(&p->mi_t, ref, t))
      ax__u64map_del(&p->mi_w, ref, NULL);
    pthread_mutex_unlock(&p->tmu);
    ax_down_info d = {.ref = ref, .pid = {w}};
    if (ax__signal(sys, w, t, AX__SIG_MONITOR, &d, sizeof d) == AX_ENOACTOR) {
      pthread_mutex_lock(&p->tmu);
      ax__u64map_del(&p->mi_w, ref, NULL);
      ax__u64map_del(&p->mi_t, ref, NULL);
      pthread_mutex_unlock(&p->tmu);
      AX__CL_STAT(cl, unknown_pid, 1);
      d.pid.id = t;
      d.reason = AX_REASON_NOPROC;
      ax__cl_route_send(cl, t, w, AX_MSG_DOWN, AX_MSGF_SYSTEM, 0, &d, sizeof d, NULL);
    }
    break;
  }
  case AX__K_DOWN: {
    uint64_t pid = ax__cl_pid_in(cl, p, &m.u.down.pid), w = ax__cl_pid_in(cl, p, &m.u.down.watcher);
    if (!w || ax__pid_node(w) != cl->self_idx) {
      AX__CL_STAT(cl, unknown_pid, 1);
      break;
    }
    pthread_mutex_lock(&p->tmu);
    ax__u64map_del(&p->mo_w, m.u.down.ref, NULL);
    ax__u64map_del(&p->mo_t, m.u.down.ref, NULL);
    pthread_mutex_unlock(&p->tmu);
    ax_down_info d = {.ref = m.u.down.ref, .pid = {pid}, .reason = m.u.down.reason};
    if (ax__send_sys(sys, pid, w, AX_MSG_DOWN, 0, 0, &d, sizeof d, NULL) != AX_OK)
      AX__CL_STAT(cl, unknown_pid, 1);
    break;
  }
  case AX__K_PEER_LIST:
    for (size_t i = 0; i < m.u.peers.npeers; i++) {
      const ax__wpeer *w = &m.u.peers.peers[i];
      if (strcmp(w->name, cl->name) == 0 || !w->addr || !w->addr[0] ||
          ax__cluster_addr_check(w->addr) != AX_OK)
        continue;
      if (ax__cl_dial(cl, w->addr, w->name) == AX_ENOMEM) {
        /* The list comes once per link: a dial lost to memory is retried
         * by linking again (the peer sends it again). */
        ax_log(cl->sys, AX_LOG_WARN,
               "cluster %s: no memory to dial %s (peer list of %s): reconnecting", cl->name,
               w->name, c->name);
        ax__wmsg_fini(&m);
        conn_lost(self, c, AX_NODE_CLOSED);
        return false;
      }
    }
    break;
  case AX__K_HEARTBEAT: break;
  case AX__K_BYE:
    ax__wmsg_fini(&m);
    conn_lost(self, c, AX_NODE_CLOSED);
    return false;
  case AX__K_REJECT:
    ax__wmsg_fini(&m);
    proto_fail(self, c, "REJECT after the handshake", AX__PE_OK);
    return false;
  default: /* WHEREIS, SPAWN, PG (services.c, pg.c) */
    ok = ax__cl_svc_frame(cl, p, ax_self(self).id, &m);
    break;
  }
  ax__wmsg_fini(&m);
  return ok;
}

static void feed_frames(ax_actor *self, cl_conn *c, const uint8_t *d, size_t n) {
  while (n && ((c->phase == PH_UP && peer_active(c)) || c->phase == PH_ELECT)) {
    size_t used = 0;
    ax__frame f;
    ax__perr pe = AX__PE_OK;
    ax_err e = ax__fdec_feed(&c->dec, d, n, &used, &f, &pe);
    d += used;
    n -= used;
    if (e == AX_EAGAIN) return;
    if (e == AX_ENOMEM) {
      ax_log(c->cl->sys, AX_LOG_ERROR, "cluster %s: out of memory reading a frame", c->cl->name);
      conn_lost(self, c, AX_NODE_CLOSED);
      return;
    }
    if (e != AX_OK) {
      proto_fail(self, c, "bad framing", pe);
      return;
    }
    AX__CL_STAT(c->cl, frames_in, 1);
    if (!(c->phase == PH_ELECT ? elect_frame(self, c, &f) : dispatch(self, c, &f))) return;
  }
}

static void on_data(ax_actor *self, cl_conn *c, const uint8_t *d, size_t n) {
  ax__cluster *cl = c->cl;
  AX__CL_STAT(cl, bytes_in, n);
  c->last_rx = now_ms(cl); /* any byte is liveness */
  if (c->phase == PH_HANDSHAKE) {
    size_t used = 0;
    ax__hs_state s = ax__hs_feed(&c->hs, d, n, &used);
    hs_flush(c);
    if (s == AX__HS_RUNNING) return;
    if (s == AX__HS_FAILED) {
      AX__CL_STAT(cl, hs_failed, 1);
      ax_log(cl->sys, AX_LOG_WARN, "cluster %s: handshake with %s failed: %s", cl->name,
             c->addr[0] ? c->addr : "an accepted peer", ax__hs_why(&c->hs));
      ax_conn_close(c->conn); /* the REJECT goes out first */
      c->conn = (ax_conn){0};
      conn_lost(self, c, AX_NODE_CLOSED);
      return;
    }
    established(self, c);
    if (c->phase != PH_UP && c->phase != PH_ELECT) return;
    d += used;
    n -= used;
  }
  if (c->phase == PH_UP || c->phase == PH_ELECT) feed_frames(self, c, d, n);
}

/* Writes queued frames while the socket's queue is short; past PUMP_HIGH
 * it asks the socket for AX_MSG_IO_BELOW at PUMP_LOW and stops until then
 * (no polling; the notice refuses no write, so control frames and small
 * messages still go straight out meanwhile). */
static void pump(ax_actor *self, cl_conn *c) {
  ax__cluster *cl = c->cl;
  ax__peer *p = c->peer;
  if (!p) return;
  bool more = false, armed = false;
  pthread_mutex_lock(&p->wmu);
  if (!atomic_load(&p->up) || p->conn_pid != ax_self(self).id) goto out;
  if (ob_flush(cl, p) == AX_ENOMEM) more = true; /* held frames first (a KICK retries) */
  while (p->bq) {
    ax_conn_stats cs = {0};
    if (ax_conn_stats_get(p->conn, &cs) != AX_OK) break; /* closing: CLOSED follows */
    if (cs.queued >= PUMP_HIGH) {
      /* Out of memory for the notice: poll instead (below). A closed
       * connection's CLOSED takes the node down, which drops the queue. */
      ax_err e = ax_conn_notify_below(p->conn, PUMP_LOW);
      armed = e == AX_OK || e == AX_ECLOSED;
      break;
    }
    ax__clq *q = p->bq;
    ax_err e;
    if (q->encoded) {
      e = write_frame(cl, p, q->bytes, q->blen, NULL, 0, NULL);
      if (e == AX_OK) dequeue_head(p);
    } else {
      if (!q->started) {
        uint32_t s = p->next_stream++;
        if (!s) s = p->next_stream++;
        e = ax__frag_init(&q->frag, &q->m, (const uint8_t *)ax_buf_data(q->buf) + q->off, q->len,
                          s, 0, p->max_frame);
        if (e != AX_OK) { /* cannot be framed: drop it (counted) */
          AX__CL_STAT(cl, lost_on_down, 1);
          dequeue_head(p);
          continue;
        }
        q->started = true;
      }
      struct iovec iov[2];
      int niov = 0;
      bool last = false;
      e = ax__frag_next(&q->frag, iov, &niov, &last);
      if (e != AX_OK) {
        dequeue_head(p);
        continue;
      }
      const uint8_t *pl = niov > 1 ? iov[1].iov_base : NULL;
      e = write_frame(cl, p, iov[0].iov_base, iov[0].iov_len, pl, niov > 1 ? iov[1].iov_len : 0,
                      q->buf);
      if (e == AX_OK && last) dequeue_head(p);
    }
    if (e == AX_ENOMEM) break; /* nothing of it went out (a vector write): retry */
    if (e != AX_OK) { /* the connection failed: its CLOSED takes the node down */
      ax_conn_abort(p->conn);
      break;
    }
  }
  more = more || (p->bq != NULL && !armed);
out:
  pthread_mutex_unlock(&p->wmu);
  if (more) ax__send_after(self, 1, ax_self(self), AX__CL_KICK, NULL, 0, NULL);
}

static void resolve_unref(resolve_req *r) {
  pthread_mutex_lock(&r->mu);
  bool last = --r->refs == 0;
  pthread_mutex_unlock(&r->mu);
  if (last) {
    pthread_mutex_destroy(&r->mu);
    ax__free(r, sizeof(*r));
  }
}

/* The dialler lets go of its resolution (answered, or stopping). */
static void resolve_drop(cl_conn *c) {
  resolve_req *r = c->rq;
  if (!r) return;
  c->rq = NULL;
  pthread_mutex_lock(&r->mu);
  r->gone = true;
  pthread_mutex_unlock(&r->mu);
  resolve_unref(r);
}

static void *resolve_thread(void *arg) {
  resolve_req *r = arg;
  char out[AX__ADDR_MAX + 1] = "";
  if (ax__cluster_resolve(r->addr, out, sizeof out) != AX_OK) out[0] = 0;
  pthread_mutex_lock(&r->mu);
  if (!r->gone) /* the dialler lives, so does its system */
    ax__send_sys(r->sys, 0, r->pid, AX__CL_RESOLVED, 0, 0, out, strlen(out) + 1, NULL);
  pthread_mutex_unlock(&r->mu);
  resolve_unref(r);
  return NULL;
}

static void backoff(cl_conn *c) {
  c->backoff = c->backoff ? (c->backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : c->backoff * 2)
                          : BACKOFF_MIN;
  c->next_dial = now_ms(c->cl) + c->backoff;
}

/* Starts resolving c->addr (a host name) on a thread of its own. */
static void resolve_start(ax_actor *self, cl_conn *c) {
  resolve_req *r = ax__calloc(sizeof(*r));
  if (!r) {
    backoff(c);
    return;
  }
  pthread_mutex_init(&r->mu, NULL);
  r->refs = 2;
  r->sys = c->cl->sys;
  r->pid = ax_self(self).id;
  snprintf(r->addr, sizeof r->addr, "%s", c->addr);
  pthread_attr_t at;
  pthread_t t;
  bool ok = pthread_attr_init(&at) == 0;
  if (ok) {
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    ok = pthread_create(&t, &at, resolve_thread, r) == 0;
    pthread_attr_destroy(&at);
  }
  if (!ok) {
    pthread_mutex_destroy(&r->mu);
    ax__free(r, sizeof(*r));
    backoff(c);
    return;
  }
  c->rq = r;
}

static void dial(ax_actor *self, cl_conn *c);

/* The answer of resolve_thread: dial the address, or back off. */
static void on_resolved(ax_actor *self, cl_conn *c, const ax_msg *m) {
  if (!c->rq) return;
  resolve_drop(c);
  const char *a = m->data;
  if (!m->len || a[m->len - 1] != 0 || !a[0]) {
    ax_log(c->cl->sys, AX_LOG_WARN, "cluster %s: cannot resolve %s", c->cl->name, c->addr);
    backoff(c);
    return;
  }
  snprintf(c->resolved, sizeof c->resolved, "%s", a);
  if (c->phase == PH_IDLE && !c->stop && atomic_load(&c->cl->state) == 1) dial(self, c);
}

static void dial(ax_actor *self, cl_conn *c) {
  const char *to = c->addr;
  if (ax__cluster_addr_is_name(c->addr)) {
    /* A host name: resolved anew for every dial, off this thread. */
    if (c->rq) return; /* under way */
    if (!c->resolved[0]) {
      resolve_start(self, c);
      return;
    }
    to = c->resolved;
  }
  ax_io_opts o;
  ax_io_opts_init(&o);
  /* The cluster bounds its own queue (messages only: control frames are
   * never refused, which a socket watermark cannot express; docs/cluster.md). */
  o.high_watermark = SIZE_MAX / 4;
  o.low_watermark = 0;
  ax_err e = ax_connect(self, to, &o, &c->conn);
  c->resolved[0] = 0;
  if (e != AX_OK) {
    c->conn = (ax_conn){0};
    backoff(c);
    return;
  }
  c->phase = PH_CONNECTING;
}

static bool name_up(ax__cluster *cl, const char *name) {
  if (!name[0]) return false;
  bool up = false;
  uint32_t idx;
  pthread_mutex_lock(&cl->mu);
  if (ax__nodes_find_name(cl->nodes, name, &idx, NULL) == AX_OK) {
    ax__peer *p = atomic_load(&cl->peers[idx]);
    up = p && atomic_load(&p->up);
  }
  pthread_mutex_unlock(&cl->mu);
  return up;
}

static void send_heartbeat(cl_conn *c) {
  ax__peer *p = c->peer;
  ax__wmsg m;
  memset(&m, 0, sizeof m);
  m.kind = AX__K_HEARTBEAT;
  m.u.heartbeat.seq = ++c->hb_seq;
  uint8_t hdr[64];
  size_t hl;
  if (ax__wmsg_encode_hdr(&m, 0, p->max_frame, hdr, sizeof hdr, &hl) != AX_OK) return;
  pthread_mutex_lock(&p->wmu);
  /* Straight out, never behind queued bulk: the pump keeps the socket's
   * queue short, so this is at most ~1 MiB behind. */
  if (atomic_load(&p->up) && p->conn_pid == c->me && write_frame(c->cl, p, hdr, hl, NULL, 0, NULL) == AX_OK)
    AX__CL_STAT(c->cl, hb_out, 1);
  pthread_mutex_unlock(&p->wmu);
}

static void on_tick(ax_actor *self, cl_conn *c) {
  ax__cluster *cl = c->cl;
  uint64_t now = now_ms(cl);
  switch (c->phase) {
  case PH_HANDSHAKE:
    if (ax__hs_tick(&c->hs, now) == AX__HS_FAILED) {
      hs_flush(c);
      AX__CL_STAT(cl, hs_failed, 1);
      ax_log(cl->sys, AX_LOG_WARN, "cluster %s: handshake with %s failed: %s", cl->name,
             c->addr[0] ? c->addr : "an accepted peer", ax__hs_why(&c->hs));
      conn_lost(self, c, AX_NODE_CLOSED);
    }
    break;
  case PH_ELECT:
    if (now >= c->elect_by) {
      AX__CL_STAT(cl, hs_failed, 1);
      ax_log(cl->sys, AX_LOG_WARN, "cluster %s: %s did not elect the connection in time",
             cl->name, c->name);
      conn_lost(self, c, AX_NODE_CLOSED);
    }
    break;
  case PH_UP:
    if (!peer_active(c)) break;
    if (now - c->last_rx >= cl->down_ms) {
      AX__CL_STAT(cl, timeouts, 1);
      conn_lost(self, c, AX_NODE_TIMEOUT);
      break;
    }
    if (c->redial && ax__cl_dial(cl, c->plisten, c->name) != AX_ENOMEM) c->redial = false;
    if (atomic_exchange_explicit(&c->peer->tx, false, memory_order_relaxed)) c->last_tx = now;
    if (now - c->last_tx >= cl->hb_ms) {
      send_heartbeat(c);
      atomic_store_explicit(&c->peer->tx, false, memory_order_relaxed);
      c->last_tx = now;
    }
    break;
  case PH_IDLE:
    if (c->dialler && now >= c->next_dial && atomic_load(&cl->state) == 1) {
      if (name_up(cl, c->name)) c->next_dial = now + BACKOFF_MAX / 5; /* linked already */
      else dial(self, c);
    }
    break;
  default: break;
  }
  if (c->phase != PH_DONE) arm_tick(self, c);
}

static ax_err conn_behave(ax_actor *self, const ax_msg *m) {
  cl_conn *c = ax_state(self);
  bool mine = c->conn.id && m->ref == c->conn.id;
  switch (m->type) {
  case AX_MSG_IO_CONNECTED:
    if (mine && c->phase == PH_CONNECTING) begin_handshake(self, c);
    break;
  case AX_MSG_IO_ERROR:
    if (mine && c->phase == PH_CONNECTING) {
      c->conn = (ax_conn){0};
      conn_lost(self, c, AX_NODE_CLOSED);
    }
    break;
  case AX_MSG_IO_DATA:
    if (mine && (c->phase == PH_HANDSHAKE || c->phase == PH_ELECT || c->phase == PH_UP))
      on_data(self, c, m->data, m->len);
    break;
  case AX_MSG_IO_PEER_SHUTDOWN:
  case AX_MSG_IO_CLOSED:
    if (mine) {
      if (m->type == AX_MSG_IO_CLOSED) c->conn = (ax_conn){0};
      if (c->phase == PH_HANDSHAKE) {
        AX__CL_STAT(c->cl, hs_failed, 1);
        ax_log(c->cl->sys, AX_LOG_WARN, "cluster %s: %s closed during the handshake", c->cl->name,
               c->addr[0] ? c->addr : "an accepted peer");
      }
      conn_lost(self, c, AX_NODE_CLOSED);
    }
    break;
  case AX__CL_TICK: on_tick(self, c); break;
  case AX__CL_RESOLVED: on_resolved(self, c, m); break;
  case AX__CL_KICK:
    if (c->phase == PH_UP) pump(self, c);
    break;
  case AX_MSG_IO_BELOW: /* the socket queue drained to PUMP_LOW */
    if (mine && c->phase == PH_UP) pump(self, c);
    break;
  case AX__CL_STOP:
    c->stop = true;
    if (c->phase == PH_UP && c->peer) { /* an orderly goodbye */
      ax__wmsg b;
      memset(&b, 0, sizeof b);
      b.kind = AX__K_BYE;
      bool k = false;
      pthread_mutex_lock(&c->peer->wmu);
      if (atomic_load(&c->peer->up) && c->peer->conn_pid == c->me &&
          control_frame(c->cl, c->peer, 0, &b, &k) == AX_OK)
        ob_flush(c->cl, c->peer); /* out before the close below */
      pthread_mutex_unlock(&c->peer->wmu);
    }
    conn_lost(self, c, AX_NODE_DISCONNECTED);
    break;
  case AX__CL_GONE:
    if (c->phase == PH_UP) conn_lost(self, c, AX_NODE_RESTARTED);
    break;
  default: break;
  }
  return AX_OK;
}

static ax_err conn_init(ax_actor *self, void *state, const void *arg, size_t len) {
  cl_conn *c = state;
  ax__conn_arg a;
  if (len != sizeof a) return AX_EINVAL;
  memcpy(&a, arg, sizeof a);
  c->cl = a.cl;
  c->me = ax_self(self).id;
  /* The tick first (see arm_tick): a failed init undoes it. */
  ax_err te = ax__send_interval(self, c->cl->tick_ms, 0, ax_self(self), AX__CL_TICK, NULL, 0, NULL);
  if (te != AX_OK) return te;
  /* Its stop, built now: ax_node_stop must not need memory. */
  if (ax__exit_kit_fill(&c->kit) != AX_OK) {
    ax__exit_kit_free(&c->kit);
    return AX_ENOMEM;
  }
  /* Registered under mu, where ax_node_stop stops the actors: one started
   * after that is refused (the node is stopping). A dialler's record
   * learns its pid here, before anything can stop it. */
  pthread_mutex_lock(&c->cl->mu);
  bool running = atomic_load(&c->cl->state) == 1;
  bool ok = running && ax__u64map_put(&c->cl->conns, c->me, (uint64_t)(uintptr_t)&c->kit);
  if (ok && a.dial) a.dial->pid = c->me;
  pthread_mutex_unlock(&c->cl->mu);
  if (!ok) ax__exit_kit_free(&c->kit);
  if (!running) return AX_ECLOSED;
  if (!ok) return AX_ENOMEM;
  if (a.addr) {
    c->dialler = true;
    snprintf(c->addr, sizeof c->addr, "%s", a.addr);
    if (a.name) snprintf(c->name, sizeof c->name, "%s", a.name);
    c->phase = PH_IDLE;
    c->next_dial = 0;
    if (!name_up(c->cl, c->name)) dial(self, c);
  } else {
    c->conn = a.conn;
    begin_handshake(self, c);
  }
  return AX_OK;
}

static void conn_terminate(ax_actor *self, void *state, ax_reason reason) {
  cl_conn *c = state;
  ax__cluster *cl = c->cl;
  (void)reason;
  resolve_drop(c);
  if (c->phase == PH_UP) node_down(self, c, AX_NODE_STOPPED);
  reset_codec(c);
  uint64_t me = ax_self(self).id;
  pthread_mutex_lock(&cl->mu);
  ax__u64map_del(&cl->conns, me, NULL);
  ax__exit_kit_free(&c->kit); /* under mu: ax_node_stop may be using it */
  for (ax__dial **pp = &cl->dials; *pp; pp = &(*pp)->next)
    if ((*pp)->pid == me) {
      ax__dial *d = *pp;
      d->pid = 0;
      if (!d->spawning) { /* else its spawner frees it */
        *pp = d->next;
        ax__free(d, sizeof(*d));
      }
      break;
    }
  pthread_cond_broadcast(&cl->cv); /* ax_node_stop waits for the last one */
  pthread_mutex_unlock(&cl->mu);
}

const ax_actor_spec ax__cl_conn_spec = {.name = "ax.node.conn",
                                        .behaviour = conn_behave,
                                        .state_size = sizeof(cl_conn),
                                        .init = conn_init,
                                        .terminate = conn_terminate};
