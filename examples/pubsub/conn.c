/* pubsub: one actor per client connection.
 *
 * Input: bytes are appended to the parser's query buffer and commands run
 * one after the other, as Redis runs them; replies are coalesced in `out`
 * and written once per read (one write for a pipeline of 16 PINGs).
 *
 * Replies that need a shard (PUBLISH's receiver count, PUBSUB NUMSUB /
 * CHANNELS / NUMPAT) take a numbered slot, a "hole", in the reply stream;
 * replies of later commands wait behind it (in the hole's `after`), so the
 * client sees them in command order however the shards interleave. At most
 * MAX_HOLES are outstanding: then the connection stops parsing and reading
 * until answers come back (a pipelining publisher is paced by the broker,
 * never the other way round).
 *
 * Deliveries (records of a shard's MSG_BATCH, or MSG_DELIVER for a big
 * frame) are checked against the client's own sets (a message in flight
 * when the client unsubscribed is dropped), then copied into `out`, which
 * the end-of-run hook (conn_flush) writes: everything one run of this
 * actor produced -- replies to a pipeline, the deliveries of several shard
 * batches -- goes out in one write. A run that got deliveries asks for its
 * flush at the end of the worker's pass instead (ax_flush_later), so the
 * batches of every publisher the pass handled go out in one write, as
 * Redis writes each client once per event-loop pass: writes per delivery,
 * which decide the broker's CPU (the loopback send path), fell by half
 * with one worker (docs/ARCHITECTURE.md, "Deferred flushes"). Replies to
 * the client's own commands (a batch with publish answers, IO_DATA) are
 * not deferred: a pipelining publisher waits on them.
 *
 * Lag: ... unless the deliveries are too far behind. A publisher that gets
 * its answers at once runs ahead of the deferred deliveries (its window no
 * longer bounds them), and each delivery waiting for a deferred write is
 * one more in flight, i.e. latency (Little's law: the client keeps its
 * window full either way). So the answers wait for the deferred flush too
 * -- they go out right after the deliveries of that pass, as Redis writes
 * both in the same pass -- while the deliveries not written yet (in shard
 * batches their conn has not taken, or in conns' `out`: g_unwritten, in
 * bytes) amount to more than g_cfg.publish_ahead publishes
 * (--publish-ahead, 100) at the average bytes of deliveries per publish
 * (g_fanout_bytes). Below the bound publishers keep the broker busy while
 * the deliveries gather (the batching that makes writes cheap); above it
 * their answers wait (not their publishes: those go to the shards at
 * once), the pass soon runs dry and flushes. Counted in publishes, not
 * bytes, so that a wide fan-out (1,000 subscribers: 95 KB a publish) is
 * not held on every publish: a byte bound that suits 50 subscribers (48
 * KiB) tripled its p99. A slow subscriber never holds publishers: bytes
 * its socket refused leave the count at its flush (they wait in `q`,
 * under the output limits below); and a held answer waits one pass at
 * most (ax_flush_later's bound). The measurements: docs/ARCHITECTURE.md,
 * "Deferred flushes".
 *
 * A frame
 * of BIG_FRAME bytes or more is written by reference instead (the one
 * shared buffer, no copy).
 *
 * Slow clients: when the socket's write queue refuses (AX_EAGAIN), what is
 * left waits in this actor's queue `q` (references, never read slabs) and
 * the connection stops reading until AX_MSG_IO_DRAINED. A client with
 * subscriptions is limited like Redis's client-output-buffer-limit pubsub:
 * over limit_hard bytes queued, or over limit_soft for limit_soft_s seconds,
 * it is disconnected. Publishers and other subscribers never wait for it. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "map.h"
#include "pubsub.h"
#include "resp.h"

#define MAX_HOLES 1024

enum { H_PUBLISH = 1, H_NUMSUB, H_CHANNELS, H_NUMPAT };

typedef struct qent {
  ax_buf *b;
  size_t off, len;
} qent;

typedef struct hole {
  uint64_t seq;
  uint32_t kind, need;
  uint64_t n;
  obuf acc;         /* NUMSUB: the names (strlist); CHANNELS: bulk strings */
  uint64_t *counts; /* NUMSUB */
  size_t ncounts;
  obuf after; /* replies that follow this one */
} hole;

typedef struct conn {
  ax_conn c;
  long long id;
  resp_parser in;
  map chans, pats;
  obuf out;
  bool blocked, read_paused, closing, closed, peer_eof;
  qent *q;
  size_t qhead, qn, qcap;
  uint64_t qbytes;
  hole *holes;
  size_t hhead, hn, hcap;
  uint64_t next_seq;
  uint64_t soft_since_ms;
  obuf *pub; /* per shard: this run's publishes (rec_hdr + wire_hdr + frame) */
  uint64_t owed; /* bytes of deliveries in `out` counted in g_unwritten */
  bool held;     /* this run's replies wait for the deferred flush ("Lag") */
} conn;

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void free_mem(void *data, size_t cap, void *arg) {
  (void)cap, (void)arg;
  free(data);
}

/* ---- output ---- */

static size_t nsubs(const conn *s) { return s->chans.n + s->pats.n; }

/* Where the next reply goes: behind the last hole, or straight out. */
static obuf *rb(conn *s) { return s->hn ? &s->holes[s->hhead + s->hn - 1].after : &s->out; }

static void q_push(conn *s, ax_buf *b, size_t off, size_t len) {
  if (s->qhead + s->qn == s->qcap) {
    if (s->qhead > 0) {
      memmove(s->q, s->q + s->qhead, s->qn * sizeof *s->q);
      s->qhead = 0;
    } else {
      size_t cap = s->qcap ? s->qcap * 2 : 16;
      qent *q = realloc(s->q, cap * sizeof *q);
      if (!q) {
        ax_buf_release(b);
        ax_conn_abort(s->c);
        s->closed = true;
        return;
      }
      s->q = q;
      s->qcap = cap;
    }
  }
  s->q[s->qhead + s->qn++] = (qent){b, off, len};
  s->qbytes += len;
}

static void q_clear(conn *s) {
  for (size_t i = 0; i < s->qn; i++) ax_buf_release(s->q[s->qhead + i].b);
  s->qhead = s->qn = 0;
  s->qbytes = 0;
}

static void disconnect(ax_actor *self, conn *s, const char *why) {
  if (s->closed) return;
  ax_log(ax_actor_system(self), AX_LOG_WARN,
         "pubsub: client id=%lld closed for overcoming of output buffer limits (%s, %llu bytes)",
         s->id, why, (unsigned long long)(s->qbytes + s->out.len));
  ax_conn_abort(s->c);
  s->closed = true;
  q_clear(s);
  s->out.len = 0;
}

/* Redis's client-output-buffer-limit pubsub, for clients with
 * subscriptions. Others are bounded by not reading while blocked. */
static void check_limits(ax_actor *self, conn *s) {
  if (nsubs(s) == 0 || s->closed) return;
  uint64_t used = s->qbytes + s->out.len;
  if (g_cfg.limit_hard && used > g_cfg.limit_hard) {
    disconnect(self, s, "hard limit");
    return;
  }
  if (g_cfg.limit_soft && used > g_cfg.limit_soft) {
    uint64_t now = now_ms();
    if (s->soft_since_ms == 0) s->soft_since_ms = now;
    else if (now - s->soft_since_ms > (uint64_t)g_cfg.limit_soft_s * 1000)
      disconnect(self, s, "soft limit");
  } else {
    s->soft_since_ms = 0;
  }
}

static void try_close(conn *s) {
  if (s->closing && !s->closed && s->hn == 0 && !s->blocked && s->out.len == 0) {
    ax_conn_close(s->c);
    s->closed = true;
  }
}

static void set_reading(conn *s, bool on) {
  if (s->closed || on == !s->read_paused) return;
  s->read_paused = !on;
  if (on) ax_conn_resume_read(s->c);
  else ax_conn_pause_read(s->c);
}

/* Writes `out` (or queues it behind what is already waiting). */
static void flush_out(ax_actor *self, conn *s) {
  if (s->closed) {
    s->out.len = 0;
    return;
  }
  if (s->out.len) {
    if (!s->blocked) {
      ax_err e = ax_conn_write(s->c, s->out.p, s->out.len);
      if (e == AX_EAGAIN) s->blocked = true;
      else s->out.len = 0; /* written, or the connection is gone (CLOSED follows) */
      if (s->out.cap > (1u << 20) && s->out.len == 0) ob_free(&s->out);
    }
    if (s->blocked && s->out.len) {
      size_t len;
      char *p = ob_take(&s->out, &len);
      ax_buf *b;
      if (ax_buf_wrap(p, len, free_mem, NULL, &b) != AX_OK) {
        free(p);
        ax_conn_abort(s->c);
        s->closed = true;
        return;
      }
      q_push(s, b, 0, len);
    }
    if (s->blocked) set_reading(s, false);
    check_limits(self, s);
  }
  try_close(s);
}

/* Writes a slice of a shared buffer by reference, in order. */
static void write_ref(ax_actor *self, conn *s, ax_buf *b, size_t off, size_t len) {
  flush_out(self, s);
  if (s->closed) return;
  if (!s->blocked) {
    ax_err e = ax_conn_write_buf(s->c, b, off, len);
    if (e != AX_EAGAIN) return;
    s->blocked = true;
    set_reading(s, false);
  }
  ax_buf_retain(b);
  q_push(s, b, off, len);
  check_limits(self, s);
}

/* ---- holes ---- */

static hole *hole_push(conn *s, uint32_t kind, uint32_t need) {
  if (s->hhead + s->hn == s->hcap) {
    if (s->hhead > 0) {
      memmove(s->holes, s->holes + s->hhead, s->hn * sizeof *s->holes);
      s->hhead = 0;
    } else {
      size_t cap = s->hcap ? s->hcap * 2 : 16;
      hole *h = realloc(s->holes, cap * sizeof *h);
      if (!h) return NULL;
      s->holes = h;
      s->hcap = cap;
    }
  }
  hole *h = &s->holes[s->hhead + s->hn++];
  memset(h, 0, sizeof *h);
  h->seq = s->next_seq++;
  h->kind = kind;
  h->need = need;
  return h;
}

static hole *hole_find(conn *s, uint64_t seq) {
  if (s->hn == 0) return NULL;
  uint64_t first = s->holes[s->hhead].seq;
  if (seq < first || seq - first >= s->hn) return NULL;
  return &s->holes[s->hhead + (seq - first)];
}

static void process(ax_actor *self, conn *s);
static void pub_flush_all(ax_actor *self, conn *s);

/* Writes every answered hole at the head, then what follows it. */
static void holes_drain(ax_actor *self, conn *s) {
  bool any = false;
  while (s->hn && s->holes[s->hhead].need == 0) {
    hole *h = &s->holes[s->hhead];
    obuf *o = &s->out;
    switch (h->kind) {
    case H_PUBLISH:
    case H_NUMPAT:
      ob_int(o, (long long)h->n);
      break;
    case H_NUMSUB: {
      ob_arr(o, (long long)h->ncounts * 2);
      const char *p = h->acc.p, *end = p + h->acc.len, *name;
      size_t len, i = 0;
      while ((name = strlist_next(&p, end, &len)) && i < h->ncounts) {
        ob_bulk(o, name, len);
        ob_int(o, (long long)h->counts[i++]);
      }
      break;
    }
    case H_CHANNELS:
      ob_arr(o, (long long)h->n);
      ob_add(o, h->acc.p, h->acc.len);
      break;
    }
    ob_add(o, h->after.p, h->after.len);
    ob_free(&h->acc);
    ob_free(&h->after);
    free(h->counts);
    s->hhead++;
    if (--s->hn == 0) s->hhead = 0;
    any = true;
  }
  if (!any) return;
  /* Too many deliveries behind: these answers wait for the deferred
   * flush too (header comment, "Lag"). Relaxed: a hint (pubsub.h). */
  if (g_cfg.publish_ahead &&
      atomic_load_explicit(&g_unwritten, memory_order_relaxed) >
          g_cfg.publish_ahead * atomic_load_explicit(&g_fanout_bytes, memory_order_relaxed)) {
    ax_flush_later(self);
    s->held = true;
  }
  process(self, s); /* parsing may have stopped at MAX_HOLES */
  /* Held replies only: the publishes go to the shards now. */
  if (s->held) pub_flush_all(self, s);
}

/* ---- commands ---- */

#define ARG(i) resp_argp(&s->in, (i))
#define ALEN(i) (s->in.args[(i)].len)

static inline unsigned char lower(unsigned char c) {
  return c >= 'A' && c <= 'Z' ? (unsigned char)(c + ('a' - 'A')) : c;
}

/* p[0..n) equals the literal lit, ASCII case-insensitively (Redis's command
 * lookup; no locale, no strlen or library call per candidate: this runs
 * for every command of a pipeline). */
static bool eqi(const char *p, size_t n, const char *lit) {
  for (size_t i = 0; i < n; i++)
    if (lit[i] == 0 || lower((unsigned char)p[i]) != lower((unsigned char)lit[i])) return false;
  return lit[n] == 0;
}

/* Length as a C string (Redis formats arguments with %s). */
static size_t clen(const char *p, size_t n) {
  const char *z = memchr(p, 0, n);
  return z ? (size_t)(z - p) : n;
}

/* Redis's '%.128s' of an argument. */
static int cap128(const char *p, size_t n) {
  size_t l = clen(p, n);
  return (int)(l > 128 ? 128 : l);
}

static void err_arity(conn *s, const char *fullname) {
  ob_errf(rb(s), "wrong number of arguments for '%s' command", fullname);
}

/* ---- publishes, batched per run ---- */

/* A batch that could not be sent: its publishes answer 0. */
static void pub_failed(conn *s, const char *p, size_t len) {
  const char *end = p + len;
  while ((size_t)(end - p) >= sizeof(rec_hdr) + sizeof(wire_hdr)) {
    rec_hdr r;
    wire_hdr w;
    memcpy(&r, p, sizeof r);
    memcpy(&w, p + sizeof r, sizeof w);
    hole *h = hole_find(s, w.seq);
    if (h) h->need = 0;
    p += sizeof r + r.len;
  }
}

/* Sends shard i this run's publishes in one MSG_PUBLISH (one buffer). */
static void pub_flush(ax_actor *self, conn *s, uint32_t i) {
  obuf *o = &s->pub[i];
  if (!o->len) return;
  if (o->oom) {
    pub_failed(s, o->p, o->len);
    ob_free(o);
    return;
  }
  size_t len;
  char *p = ob_take(o, &len);
  ax_buf *b = NULL;
  if (ax_buf_wrap(p, len, free_mem, NULL, &b) != AX_OK) {
    pub_failed(s, p, len);
    free(p);
    return;
  }
  if (ax_send_buf(self, g_cfg.shards[i], MSG_PUBLISH, b, 0, len) != AX_OK) pub_failed(s, p, len);
  ax_buf_release(b);
}

/* Before anything else goes to the shards (a SUBSCRIBE after a PUBLISH in
 * one pipeline must reach the shard after it), and at the end of a run. */
static void pub_flush_all(ax_actor *self, conn *s) {
  if (!s->pub) return;
  for (uint32_t i = 0; i < g_cfg.nshards; i++) pub_flush(self, s, i);
}

/* Sends one name list message per shard (SUB/UNSUB by the channel's shard;
 * PSUB/PUNSUB to all). */
typedef struct batch {
  obuf *per; /* nshards */
} batch;

static void batch_add(batch *b, uint32_t shard, const char *name, size_t len) {
  if (!b->per) {
    b->per = calloc(g_cfg.nshards, sizeof(obuf));
    if (!b->per) return;
  }
  uint32_t n = (uint32_t)len;
  ob_add(&b->per[shard], &n, sizeof n);
  ob_add(&b->per[shard], name, len);
}

static void batch_send(ax_actor *self, conn *s, batch *b, uint32_t type, bool to_all) {
  if (!b->per) return;
  pub_flush_all(self, s);
  for (uint32_t i = 0; i < g_cfg.nshards; i++) {
    obuf *o = to_all ? &b->per[0] : &b->per[i];
    if (o->len && !o->oom) ax_send(self, g_cfg.shards[i], type, o->p, o->len);
  }
  for (uint32_t i = 0; i < g_cfg.nshards; i++) ob_free(&b->per[i]);
  free(b->per);
  b->per = NULL;
}

static void sub_reply(conn *s, const char *kind, const char *name, size_t len, bool null) {
  obuf *o = rb(s);
  ob_arr(o, 3);
  ob_bulkstr(o, kind);
  if (null) ob_nullbulk(o);
  else ob_bulk(o, name, len);
  ob_int(o, (long long)nsubs(s));
}

static void cmd_subscribe(ax_actor *self, conn *s, bool pattern) {
  map *m = pattern ? &s->pats : &s->chans;
  batch b = {0};
  for (size_t i = 1; i < s->in.argc; i++) {
    int created;
    map_ent *e = map_put(m, ARG(i), ALEN(i), &created);
    if (e && created) batch_add(&b, pattern ? 0 : shard_of(ARG(i), ALEN(i)), ARG(i), ALEN(i));
    sub_reply(s, pattern ? "psubscribe" : "subscribe", ARG(i), ALEN(i), false);
  }
  /* Sent before the replies are written: a PUBLISH made after the client
   * read its reply reaches the shard after this. */
  batch_send(self, s, &b, pattern ? MSG_PSUB : MSG_SUB, pattern);
}

static void drop_all(ax_actor *self, conn *s, bool pattern, bool notify) {
  map *m = pattern ? &s->pats : &s->chans;
  batch b = {0};
  map_ent *e = map_first(m);
  while (e) {
    map_ent *next = map_next(m, e);
    batch_add(&b, pattern ? 0 : shard_of(e->key, e->klen), e->key, e->klen);
    char *name = NULL;
    size_t len = e->klen;
    if (notify && (name = malloc(len + 1))) memcpy(name, e->key, len);
    map_del(m, e);
    if (notify && name) sub_reply(s, pattern ? "punsubscribe" : "unsubscribe", name, len, false);
    free(name);
    e = next;
  }
  batch_send(self, s, &b, pattern ? MSG_PUNSUB : MSG_UNSUB, pattern);
}

static void cmd_unsubscribe(ax_actor *self, conn *s, bool pattern) {
  map *m = pattern ? &s->pats : &s->chans;
  const char *kind = pattern ? "punsubscribe" : "unsubscribe";
  if (s->in.argc == 1) {
    if (m->n == 0) sub_reply(s, kind, NULL, 0, true);
    else drop_all(self, s, pattern, true);
    return;
  }
  batch b = {0};
  for (size_t i = 1; i < s->in.argc; i++) {
    map_ent *e = map_get(m, ARG(i), ALEN(i));
    if (e) {
      batch_add(&b, pattern ? 0 : shard_of(ARG(i), ALEN(i)), ARG(i), ALEN(i));
      map_del(m, e);
    }
    sub_reply(s, kind, ARG(i), ALEN(i), false);
  }
  batch_send(self, s, &b, pattern ? MSG_PUNSUB : MSG_UNSUB, pattern);
}

static void cmd_publish(ax_actor *self, conn *s) {
  const char *ch = ARG(1), *pl = ARG(2);
  size_t cl = ALEN(1), pll = ALEN(2);
  hole *h = hole_push(s, H_PUBLISH, 1);
  if (!h) {
    ob_err(rb(s), "OOM", 3);
    return;
  }
  if (!s->pub && !(s->pub = calloc(g_cfg.nshards, sizeof(obuf)))) {
    h->need = 0; /* out of memory: answers 0 */
    return;
  }
  /* One record of this run's batch for the channel's shard (pub_flush):
   * rec_hdr, wire_hdr, then the "message" frame the subscribers get. */
  obuf *f = &s->pub[shard_of(ch, cl)];
  size_t start = f->len;
  rec_hdr r = {REC_PUBLISH, 0};
  wire_hdr w = {0};
  w.seq = h->seq;
  ob_add(f, &r, sizeof r);
  ob_add(f, &w, sizeof w);
  size_t frame = f->len;
  ob_add(f, "*3\r\n$7\r\nmessage\r\n", 17);
  ob_bulk(f, ch, cl);
  w.ch_off = (uint32_t)(f->len - frame - cl - 2);
  w.ch_len = (uint32_t)cl;
  ob_bulk(f, pl, pll);
  w.pl_off = (uint32_t)(f->len - frame - pll - 2);
  w.pl_len = (uint32_t)pll;
  if (f->oom) {
    h->need = 0; /* out of memory: answers 0 (the batch is dropped whole) */
    return;
  }
  r.len = (uint32_t)(f->len - start - sizeof r);
  memcpy(f->p + start, &r, sizeof r);
  memcpy(f->p + start + sizeof r, &w, sizeof w);
  /* A big message goes at once, so the batch never holds more than one. */
  if (r.len >= BIG_FRAME) pub_flush(self, s, shard_of(ch, cl));
}

static const char *pubsub_help[] = {
    "CHANNELS [<pattern>]",
    "    Return the currently active channels matching a <pattern> (default: '*').",
    "NUMPAT",
    "    Return number of subscriptions to patterns.",
    "NUMSUB [<channel> ...]",
    "    Return the number of subscribers for the specified channels, excluding",
    "    pattern subscriptions(default: no channels).",
    "SHARDCHANNELS [<pattern>]",
    "    Return the currently active shard level channels matching a <pattern> (default: '*').",
    "SHARDNUMSUB [<shardchannel> ...]",
    "    Return the number of subscribers for the specified shard level channel(s)",
    "HELP",
    "    Prints this help.",
    NULL};

static void send_query(ax_actor *self, conn *s, uint32_t kind, uint32_t hkind, size_t first,
                       bool all) {
  uint32_t need = all ? g_cfg.nshards : 1;
  hole *h = hole_push(s, hkind, need);
  if (!h) {
    ob_err(rb(s), "OOM", 3);
    return;
  }
  obuf m = {0};
  query_hdr q = {h->seq, kind, (uint32_t)(kind == Q_CHANNELS && s->in.argc > first)};
  ob_add(&m, &q, sizeof q);
  for (size_t i = first; i < s->in.argc; i++) {
    uint32_t n = (uint32_t)ALEN(i);
    ob_add(&m, &n, sizeof n);
    ob_add(&m, ARG(i), ALEN(i));
    if (kind == Q_NUMSUB) {
      ob_add(&h->acc, &n, sizeof n);
      ob_add(&h->acc, ARG(i), ALEN(i));
    }
  }
  if (kind == Q_NUMSUB) {
    h->ncounts = s->in.argc - first;
    h->counts = calloc(h->ncounts + 1, sizeof *h->counts);
  }
  pub_flush_all(self, s);
  for (uint32_t i = 0; i < need; i++)
    if (m.oom || ax_send(self, g_cfg.shards[i], MSG_QUERY, m.p, m.len) != AX_OK) h->need--;
  ob_free(&m);
}

static void cmd_pubsub(ax_actor *self, conn *s) {
  const char *sub = ARG(1);
  size_t sl = ALEN(1), argc = s->in.argc;
  if (eqi(sub, sl, "channels") || eqi(sub, sl, "shardchannels")) {
    if (argc > 3) {
      ob_errf(rb(s), "unknown subcommand or wrong number of arguments for '%.*s'. Try PUBSUB HELP.",
              cap128(sub, sl), sub);
      return;
    }
    if (eqi(sub, sl, "shardchannels")) ob_arr(rb(s), 0); /* no sharded pub/sub here */
    else send_query(self, s, Q_CHANNELS, H_CHANNELS, 2, true);
  } else if (eqi(sub, sl, "numsub")) {
    send_query(self, s, Q_NUMSUB, H_NUMSUB, 2, true);
  } else if (eqi(sub, sl, "shardnumsub")) {
    obuf *o = rb(s);
    ob_arr(o, (long long)(argc - 2) * 2);
    for (size_t i = 2; i < argc; i++) {
      ob_bulk(o, ARG(i), ALEN(i));
      ob_int(o, 0);
    }
  } else if (eqi(sub, sl, "numpat")) {
    send_query(self, s, Q_NUMPAT, H_NUMPAT, 2, false);
  } else { /* help */
    obuf *o = rb(s);
    ob_arr(o, 14);
    ob_addstr(o, "+PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:\r\n");
    for (int i = 0; pubsub_help[i]; i++) {
      ob_add(o, "+", 1);
      ob_addstr(o, pubsub_help[i]);
      ob_add(o, "\r\n", 2);
    }
  }
}

static void cmd_hello(conn *s) {
  size_t argc = s->in.argc, j = 1;
  if (argc >= 2) {
    long long ver;
    j = 2;
    if (!resp_str2ll(ARG(1), ALEN(1), &ver)) {
      ob_addstr(rb(s), "-ERR Protocol version is not an integer or out of range\r\n");
      return;
    }
    if (ver != 2) { /* RESP3 is not spoken here */
      ob_addstr(rb(s), "-NOPROTO unsupported protocol version\r\n");
      return;
    }
  }
  for (; j < argc; j++) {
    size_t more = argc - 1 - j;
    if (eqi(ARG(j), ALEN(j), "AUTH") && more >= 2) {
      /* No ACLs: the only user is "default", with no password. */
      if (!(ALEN(j + 1) == 7 && memcmp(ARG(j + 1), "default", 7) == 0)) {
        ob_addstr(rb(s), "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
        return;
      }
      j += 2;
    } else if (eqi(ARG(j), ALEN(j), "SETNAME") && more) {
      for (size_t i = 0; i < ALEN(j + 1); i++)
        if (ARG(j + 1)[i] < '!' || ARG(j + 1)[i] > '~') {
          ob_addstr(rb(s),
                    "-ERR Client names cannot contain spaces, newlines or special characters.\r\n");
          return;
        }
      j++;
    } else {
      ob_errf(rb(s), "Syntax error in HELLO option '%.*s'", (int)clen(ARG(j), ALEN(j)), ARG(j));
      return;
    }
  }
  obuf *o = rb(s);
  ob_arr(o, 14);
  ob_bulkstr(o, "server");
  ob_bulkstr(o, "axon-pubsub");
  ob_bulkstr(o, "version");
  ob_bulkstr(o, "7.0.0");
  ob_bulkstr(o, "proto");
  ob_int(o, 2);
  ob_bulkstr(o, "id");
  ob_int(o, s->id);
  ob_bulkstr(o, "mode");
  ob_bulkstr(o, "standalone");
  ob_bulkstr(o, "role");
  ob_bulkstr(o, "master");
  ob_bulkstr(o, "modules");
  ob_arr(o, 0);
}

typedef struct cmd_def {
  const char *name;
  int arity; /* Redis's: n exact, -n at least n */
  bool sub_ok; /* allowed in subscribed mode (RESP2) */
  const struct cmd_def *subs; /* subcommands (PUBSUB's), or NULL */
} cmd_def;

static const cmd_def pubsub_subs[] = {
    {"channels", -2, false, NULL}, {"numsub", -2, false, NULL},      {"numpat", 2, false, NULL},
    {"help", 2, false, NULL},      {"shardchannels", -2, false, NULL}, {"shardnumsub", -2, false, NULL},
    {NULL, 0, false, NULL}};

static const cmd_def cmds[] = {
    {"ping", -1, true, NULL},       {"subscribe", -2, true, NULL},
    {"unsubscribe", -1, true, NULL}, {"psubscribe", -2, true, NULL},
    {"punsubscribe", -1, true, NULL}, {"quit", -1, true, NULL},
    {"reset", 1, true, NULL},       {"publish", 3, false, NULL},
    {"pubsub", -2, false, pubsub_subs}, {"echo", 2, false, NULL},
    {"hello", -1, false, NULL},     {NULL, 0, false, NULL}};

static bool arity_ok(int arity, size_t argc) {
  return arity > 0 ? (size_t)arity == argc : argc >= (size_t)-arity;
}

static void exec(ax_actor *self, conn *s) {
  size_t argc = s->in.argc;
  const char *name = ARG(0);
  size_t nl = ALEN(0);
  if (eqi(name, nl, "host:") || eqi(name, nl, "post")) { /* Redis: an HTTP attack; drop it */
    s->closing = true;
    s->out.len = 0;
    return;
  }
  const cmd_def *c = cmds;
  while (c->name && !eqi(name, nl, c->name)) c++;
  if (!c->name) {
    char args[400];
    size_t al = 0;
    for (size_t i = 1; i < argc && al < 128; i++) {
      int take = (int)clen(ARG(i), ALEN(i));
      if (take > (int)(128 - al)) take = (int)(128 - al);
      al += (size_t)snprintf(args + al, sizeof args - al, "'%.*s' ", take, ARG(i));
    }
    args[al] = 0;
    ob_errf(rb(s), "unknown command '%.*s', with args beginning with: %s", cap128(name, nl), name,
            args);
    return;
  }
  /* The name in errors: the command's, or "<command>|<subcommand>". */
  char fullname[64];
  const char *fname = c->name;
  if (c->subs && argc >= 2) {
    const cmd_def *sc = c->subs;
    while (sc->name && !eqi(ARG(1), ALEN(1), sc->name)) sc++;
    if (!sc->name) {
      ob_errf(rb(s), "unknown subcommand '%.*s'. Try PUBSUB HELP.", cap128(ARG(1), ALEN(1)),
              ARG(1));
      return;
    }
    snprintf(fullname, sizeof fullname, "%s|%s", c->name, sc->name);
    fname = fullname;
    if (!arity_ok(sc->arity, argc)) {
      err_arity(s, fname);
      return;
    }
  } else if (!arity_ok(c->arity, argc)) {
    err_arity(s, fname);
    return;
  }
  if (nsubs(s) > 0 && !c->sub_ok) {
    ob_errf(rb(s),
            "Can't execute '%s': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET "
            "are allowed in this context",
            fname);
    return;
  }
  obuf *o = rb(s);
  switch (c - cmds) {
  case 0: /* ping */
    if (argc > 2) {
      err_arity(s, "ping");
    } else if (nsubs(s) > 0) {
      ob_addstr(o, "*2\r\n$4\r\npong\r\n");
      if (argc == 1) ob_bulk(o, "", 0);
      else ob_bulk(o, ARG(1), ALEN(1));
    } else if (argc == 1) {
      ob_add(o, "+PONG\r\n", 7);
    } else {
      ob_bulk(o, ARG(1), ALEN(1));
    }
    break;
  case 1: cmd_subscribe(self, s, false); break;
  case 2: cmd_unsubscribe(self, s, false); break;
  case 3: cmd_subscribe(self, s, true); break;
  case 4: cmd_unsubscribe(self, s, true); break;
  case 5: /* quit */
    ob_add(o, "+OK\r\n", 5);
    s->closing = true;
    break;
  case 6: /* reset */
    drop_all(self, s, false, false);
    drop_all(self, s, true, false);
    ob_add(rb(s), "+RESET\r\n", 8);
    break;
  case 7: cmd_publish(self, s); break;
  case 8: cmd_pubsub(self, s); break;
  case 9: ob_bulk(o, ARG(1), ALEN(1)); break;
  case 10: cmd_hello(s); break;
  }
}

/* Runs every complete command in the query buffer, unless the connection
 * must wait (too many holes, output refused) or is closing. */
static void process(ax_actor *self, conn *s) {
  bool stalled = false;
  while (!s->closing && !s->closed) {
    if (s->hn >= MAX_HOLES || s->blocked) {
      stalled = true;
      break;
    }
    int r = resp_next(&s->in);
    if (r == RESP_NEED) break;
    if (r == RESP_ERROR) {
      ob_err(rb(s), s->in.err, strlen(s->in.err));
      s->closing = true;
      break;
    }
    if (r == RESP_NOMEM) {
      ax_conn_abort(s->c);
      s->closed = true;
      return;
    }
    exec(self, s);
  }
  resp_compact(&s->in);
  if (s->peer_eof && !stalled) s->closing = true;
  set_reading(s, !stalled && !s->closing);
  /* The replies go out at the end of the run (conn_flush). */
}

/* ---- the actor ---- */

static ax_err conn_init(ax_actor *self, void *state, const void *arg, size_t len) {
  static _Atomic long long next_id = 1;
  conn *s = state;
  (void)self, (void)len;
  memcpy(&s->c, arg, sizeof s->c);
  s->id = next_id++;
  s->in.max_bulk = g_cfg.max_bulk;
  return AX_OK;
}

/* One delivery: data[0..len) = wire_hdr + frame; buf (MSG_DELIVER) holds
 * it when it is big enough to be written by reference. */
static void on_deliver(ax_actor *self, conn *s, const char *data, size_t len, ax_buf *buf) {
  if (s->closing || s->closed || len < sizeof(wire_hdr)) return;
  wire_hdr h;
  memcpy(&h, data, sizeof h);
  const char *frame = data + sizeof h;
  size_t flen = len - sizeof h;
  if (!wire_ok(&h, flen)) return;
  bool subscribed = h.is_pmessage ? map_get(&s->pats, frame + h.pat_off, h.pat_len) != NULL
                              : map_get(&s->chans, frame + h.ch_off, h.ch_len) != NULL;
  if (!subscribed) return; /* unsubscribed while it was on its way */
  if (s->hn || !buf || flen < BIG_FRAME) {
    ob_add(rb(s), frame, flen);
    s->owed += flen; /* counted in g_unwritten by the caller (owed_count) */
  } else {
    size_t off = (size_t)(frame - (const char *)ax_buf_data(buf));
    write_ref(self, s, buf, off, flen);
  }
  check_limits(self, s);
}

/* Adds the deliveries copied since `before` (s->owed then) to g_unwritten:
 * once per message, not per delivery. */
static void owed_count(conn *s, uint64_t before) {
  if (s->owed != before) unwritten_add(s->owed - before);
}

/* A publish's receiver count: fills its hole. */
static void on_publish_done(conn *s, const publish_done *d) {
  hole *h = hole_find(s, d->seq);
  if (h && h->need) {
    h->n += d->receivers;
    h->need--;
  }
}

/* A shard's batch: its records in order. */
static void on_batch(ax_actor *self, conn *s, const char *p, size_t len) {
  const char *end = p + len;
  bool done = false;
  uint64_t owed = s->owed;
  while ((size_t)(end - p) >= sizeof(rec_hdr)) {
    rec_hdr r;
    memcpy(&r, p, sizeof r);
    p += sizeof r;
    if (r.len > (size_t)(end - p)) break;
    if (r.kind == REC_DELIVER) {
      on_deliver(self, s, p, r.len, NULL);
    } else if (r.kind == REC_DONE && r.len >= sizeof(publish_done)) {
      publish_done d;
      memcpy(&d, p, sizeof d);
      on_publish_done(s, &d);
      done = true;
    }
    p += r.len;
  }
  owed_count(s, owed);
  if (done) holes_drain(self, s);
  else ax_flush_later(self); /* deliveries only (header comment) */
}

static void on_drained(ax_actor *self, conn *s) {
  while (s->qn) {
    qent *e = &s->q[s->qhead];
    ax_err r = ax_conn_write_buf(s->c, e->b, e->off, e->len);
    if (r == AX_EAGAIN) return;
    ax_buf_release(e->b);
    s->qbytes -= e->len;
    s->qhead++;
    s->qn--;
  }
  s->qhead = 0;
  s->blocked = false;
  s->soft_since_ms = 0;
  process(self, s);
}

static ax_err conn_behaviour(ax_actor *self, const ax_msg *msg) {
  conn *s = ax_state(self);
  switch (msg->type) {
  case AX_MSG_IO_DATA:
    if (s->closing || s->closed) return AX_OK;
    if (resp_feed(&s->in, msg->data, msg->len) != 0) {
      ax_conn_abort(s->c);
      s->closed = true;
      return AX_OK;
    }
    process(self, s);
    if (s->held) pub_flush_all(self, s); /* as in holes_drain */
    return AX_OK;
  case MSG_DELIVER:
    ax_flush_later(self); /* one write per pass (header comment) */
    if (msg->buf) {
      uint64_t owed = s->owed;
      on_deliver(self, s, msg->data, msg->len, msg->buf);
      owed_count(s, owed);
    }
    return AX_OK;
  case MSG_BATCH:
    on_batch(self, s, msg->data, msg->len);
    return AX_OK;
  case MSG_PUBLISH_DONE: {
    publish_done d;
    if (msg->len < sizeof d) return AX_OK;
    memcpy(&d, msg->data, sizeof d);
    on_publish_done(s, &d);
    holes_drain(self, s);
    return AX_OK;
  }
  case MSG_QUERY_REPLY: {
    query_hdr q;
    if (msg->len < sizeof q) return AX_OK;
    memcpy(&q, msg->data, sizeof q);
    hole *h = hole_find(s, q.seq);
    if (!h || !h->need) return AX_OK;
    const char *p = (const char *)msg->data + sizeof q, *end = (const char *)msg->data + msg->len;
    if (h->kind == H_NUMSUB) {
      for (size_t i = 0; i < h->ncounts && (size_t)(end - p) >= 8; i++, p += 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        if (h->counts) h->counts[i] += v;
      }
    } else if (h->kind == H_CHANNELS) {
      const char *name;
      size_t len;
      while ((name = strlist_next(&p, end, &len))) {
        ob_bulk(&h->acc, name, len);
        h->n++;
      }
    } else if (h->kind == H_NUMPAT && (size_t)(end - p) >= 8) {
      memcpy(&h->n, p, 8);
    }
    h->need--;
    holes_drain(self, s);
    return AX_OK;
  }
  case AX_MSG_IO_DRAINED:
    on_drained(self, s);
    return AX_OK;
  case AX_MSG_IO_PEER_SHUTDOWN:
    s->peer_eof = true;
    process(self, s);
    return AX_OK;
  case AX_MSG_IO_CLOSED:
    s->closed = true;
    return ax_exit(self, ax_self(self), AX_REASON_NORMAL);
  default:
    return AX_OK;
  }
}

/* The deliveries in `out` leave g_unwritten: written, queued or dropped. */
static void owed_clear(conn *s) {
  if (!s->owed) return;
  unwritten_sub(s->owed);
  s->owed = 0;
}

static void conn_terminate(ax_actor *self, void *state, ax_reason reason) {
  conn *s = state;
  (void)reason;
  owed_clear(s); /* a stopping actor's last run has no flush */
  drop_all(self, s, false, false);
  drop_all(self, s, true, false);
  map_free(&s->chans);
  map_free(&s->pats);
  q_clear(s);
  free(s->q);
  for (size_t i = 0; i < s->hn; i++) {
    hole *h = &s->holes[s->hhead + i];
    ob_free(&h->acc);
    ob_free(&h->after);
    free(h->counts);
  }
  free(s->holes);
  if (s->pub)
    for (uint32_t i = 0; i < g_cfg.nshards; i++) ob_free(&s->pub[i]);
  free(s->pub);
  ob_free(&s->out);
  resp_free(&s->in);
}

/* The end of a run: one write for everything it produced. */
static ax_err conn_flush(ax_actor *self, void *state) {
  owed_clear(state);
  ((conn *)state)->held = false;
  pub_flush_all(self, state);
  flush_out(self, state);
  return AX_OK;
}

const ax_actor_spec conn_spec = {.name = "pubsub-conn",
                                 .behaviour = conn_behaviour,
                                 .state_size = sizeof(conn),
                                 .init = conn_init,
                                 .terminate = conn_terminate,
                                 .flush = conn_flush};
