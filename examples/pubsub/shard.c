/* pubsub: a shard of the broker's subscription table, and the fan-out.
 *
 * "Who subscribes to what" lives here and only here (each conn keeps just
 * its own sets, for its replies). A shard owns the channels that hash to
 * it (shard_of) and a full copy of the pattern index (PSUBSCRIBE and
 * PUNSUBSCRIBE go to every shard), so a PUBLISH needs exactly one shard.
 *
 * Pattern index: patterns are bucketed by their literal prefix (the bytes
 * before the first `*?[\`, glob_literal_prefix) in a hash map prefix ->
 * patterns, and plen_cnt[L] counts the patterns whose prefix has length L.
 * PUBLISH on channel c looks up c[0..L) for each L in use (L <= |c|), so it
 * only runs the matcher on patterns whose prefix c starts with: patterns
 * like "news.*" cost nothing to a publish on "sport.x". Patterns with no
 * literal prefix ("*x") sit in the L = 0 bucket and are tried every time,
 * as they must be.
 *
 * Fan-out, batched per shard run: the publisher's conn built the RESP
 * "message" frame once, in one ax_buf. Every conn this shard talks to has
 * a `slot` (its pid, how many of its subscriptions live here, and an
 * output buffer of records). A publish appends the frame to each
 * subscriber's slot and the receiver count (REC_DONE) to the publisher's;
 * the shard's end-of-run hook (shard_flush) then sends each touched conn
 * ONE MSG_BATCH with everything the run had for it. Under load a run
 * handles up to the batch budget of publishes, so a subscriber gets one
 * message (and writes once) for many deliveries, and a publisher one for
 * many answers, instead of one each: the mailbox traffic and the socket
 * writes fall by that factor. Frames of BIG_FRAME bytes or more are not
 * copied: the slot's pending records go first, then the shared buffer by
 * reference (ax_send_buf, MSG_DELIVER), so order holds. A matching
 * pattern gets one pmessage frame of its own, shared likewise.
 *
 * Cluster mode: shard i of every node is a member of the process group
 * "pubsub:shard:<i>" (joined by main). shard_publish() fans out locally,
 * then sends the same bytes as a timed request (MSG_RPUBLISH) to every
 * other member of its group it knows at that moment (ax_pg_members: its
 * view is eventually consistent, so a node that just joined may be missed
 * by the first publishes), each of which fans out to its own node's
 * subscribers and answers its count. The publish's `pend` record sums the
 * answers and answers the publisher's conn once every request is answered
 * or has ended with AX_MSG_TIMEOUT: after cluster_timeout_ms, or at once
 * when the node goes down (the runtime ends a down node's pending
 * requests). Such a node contributes 0 and the reply goes out, so a slow,
 * stopped or dead node delays a publisher's reply by at most the bound and
 * never blocks this shard (it keeps serving while answers are pending).
 * Subscriptions never cross nodes: each node's table holds its own
 * subscribers only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "glob.h"
#include "map.h"
#include "pubsub.h"
#include "resp.h"

/* A conn this shard sends to: its records of the current run. */
typedef struct slot {
  ax_pid pid;
  uint32_t refs; /* its subscriptions (channels and patterns) in this shard */
  bool touched;  /* listed in shard.touched: records wait for shard_flush */
  obuf ob;       /* deliveries: rec_hdr + bytes, ... */
  obuf done;     /* answers to its publishes (REC_DONE records) */
} slot;

/* Another node's publish, answered after this run's deliveries are sent. */
typedef struct rdone {
  ax_reply_addr to;
  uint64_t n;
} rdone;

typedef struct sublist {
  slot **v;
  uint32_t n, cap;
} sublist;

typedef struct pat_ent {
  sublist subs;
  size_t prefix_len;
} pat_ent;

typedef struct patvec {
  map_ent **v; /* entries of shard.patterns */
  uint32_t n, cap;
} patvec;

/* A publish waiting for other nodes' counts (cluster mode). */
typedef struct pend {
  ax_pid conn;   /* the publisher's conn */
  uint64_t seq;  /* its reply slot */
  uint64_t n;    /* receivers counted so far */
  uint32_t need; /* requests not answered yet */
} pend;

typedef struct shard {
  map pending;  /* request ref (8 bytes) -> pend* (shared by its requests) */
  char group[32];
  map channels; /* channel -> sublist* */
  map patterns; /* pattern -> pat_ent* */
  map prefixes; /* literal prefix -> patvec* */
  uint32_t *plen_cnt;
  size_t plen_cap;
  map slots;      /* pid (8 bytes) -> slot* */
  slot **touched; /* slots with records for this run's flush */
  uint32_t ntouched, tcap;
  rdone *rd;      /* this run's answers to other nodes (MSG_RPUBLISH) */
  uint32_t nrd, rdcap;
} shard;

uint32_t shard_of(const char *ch, size_t len) {
  return g_cfg.nshards <= 1 ? 0 : (uint32_t)(map_hash(ch, len) % g_cfg.nshards);
}

/* ---- slots ---- */

static void slot_free(shard *s, slot *sl) {
  map_ent *e = map_get(&s->slots, &sl->pid, sizeof sl->pid);
  if (e) map_del(&s->slots, e);
  ob_free(&sl->ob);
  ob_free(&sl->done);
  free(sl);
}

/* pid's slot, made if absent; NULL when out of memory. */
static slot *slot_get(shard *s, ax_pid pid) {
  int created;
  map_ent *e = map_put(&s->slots, &pid, sizeof pid, &created);
  if (!e) return NULL;
  if (created) {
    slot *sl = calloc(1, sizeof *sl);
    if (!sl) {
      map_del(&s->slots, e);
      return NULL;
    }
    sl->pid = pid;
    e->val = sl;
  }
  return e->val;
}

/* A slot no subscription and no pending record needs is freed. */
static void slot_unref(shard *s, slot *sl) {
  if (--sl->refs == 0 && !sl->touched) slot_free(s, sl);
}

/* Sends records now (one MSG_BATCH) and empties their buffer. */
static void records_send(ax_actor *self, ax_pid to, obuf *o) {
  if (o->oom)
    ax_log(ax_actor_system(self), AX_LOG_WARN, "pubsub: out of memory: records to a client dropped");
  else if (o->len)
    ax_send(self, to, MSG_BATCH, o->p, o->len);
  o->len = 0;
  o->oom = false;
  if (o->cap > (1u << 20)) ob_free(o);
}

/* The lag rule's counters (pubsub.h): defined here, with the shards that
 * fill them, so every program linking the shards has them. */
_Atomic uint64_t g_unwritten, g_fanout_bytes;

static void unwritten_free(void *data, size_t cap, void *arg) {
  (void)arg;
  unwritten_sub(cap);
  free(data);
}

/* Sends the slot's deliveries now (one MSG_BATCH) and empties its buffer.
 * They travel in a buffer of their own, counted in g_unwritten until it is
 * freed (the conn took them, or its mailbox was dropped): the lag rule
 * sees the deliveries that wait in a deferred conn's mailbox. */
static void slot_send(ax_actor *self, slot *sl) {
  obuf *o = &sl->ob;
  char *p = o->oom || !o->len ? NULL : malloc(o->len);
  ax_buf *b = NULL;
  if (!p || ax_buf_wrap(p, o->len, unwritten_free, NULL, &b) != AX_OK) {
    free(p);
    records_send(self, sl->pid, o); /* nothing to send, or out of memory: by copy, uncounted */
    return;
  }
  memcpy(p, o->p, o->len);
  unwritten_add(o->len);
  /* failed (the conn is gone): the release below frees it, off the count */
  ax_send_buf(self, sl->pid, MSG_BATCH, b, 0, o->len);
  ax_buf_release(b);
  o->len = 0;
  if (o->cap > (1u << 20)) ob_free(o);
}

/* Appends one record for the end of this run; false when out of memory.
 * Answers (REC_DONE) are kept apart: they go after every delivery. */
static bool slot_add(shard *s, slot *sl, uint32_t kind, const void *data, size_t len) {
  if (!sl->touched) {
    if (s->ntouched == s->tcap) {
      uint32_t cap = s->tcap ? s->tcap * 2 : 64;
      slot **t = realloc(s->touched, cap * sizeof *t);
      if (!t) return false;
      s->touched = t;
      s->tcap = cap;
    }
    s->touched[s->ntouched++] = sl;
    sl->touched = true;
  }
  obuf *o = kind == REC_DONE ? &sl->done : &sl->ob;
  rec_hdr h = {kind, (uint32_t)len};
  ob_add(o, &h, sizeof h);
  ob_add(o, data, len);
  return !o->oom;
}

/* Sends every pending delivery now (the answers keep waiting). */
static void slot_send_all(ax_actor *self, shard *s) {
  for (uint32_t i = 0; i < s->ntouched; i++) slot_send(self, s->touched[i]);
}

/* The end of a run: one MSG_BATCH per conn with deliveries, then the
 * answers (to local publishers, then to other nodes' shards). Answers go
 * last so that they are causal: a publisher that got its count and then
 * publishes again, through another shard, can never overtake the delivery
 * of its first message at a subscriber, exactly as with Redis, where the
 * reply means the message is in every subscriber's output buffer. */
static ax_err shard_flush(ax_actor *self, void *state) {
  shard *s = state;
  slot_send_all(self, s);
  for (uint32_t i = 0; i < s->ntouched; i++) {
    slot *sl = s->touched[i];
    records_send(self, sl->pid, &sl->done);
    sl->touched = false;
    if (sl->refs == 0) slot_free(s, sl);
  }
  s->ntouched = 0;
  for (uint32_t i = 0; i < s->nrd; i++)
    ax_reply_to(self, s->rd[i].to, MSG_RPUBLISH_DONE, &s->rd[i].n, sizeof s->rd[i].n);
  s->nrd = 0;
  return AX_OK;
}

/* The publisher's answer: with the run's other records for it. */
static void answer(ax_actor *self, shard *s, ax_pid to, const publish_done *d) {
  slot *sl = slot_get(s, to);
  if (!sl || !slot_add(s, sl, REC_DONE, d, sizeof *d))
    ax_send(self, to, MSG_PUBLISH_DONE, d, sizeof *d);
}

static int sub_add(shard *s, sublist *l, ax_pid p) {
  if (l->n == l->cap) {
    uint32_t cap = l->cap ? l->cap * 2 : 4;
    slot **v = realloc(l->v, cap * sizeof *v);
    if (!v) return -1;
    l->v = v;
    l->cap = cap;
  }
  slot *sl = slot_get(s, p);
  if (!sl) return -1;
  sl->refs++;
  l->v[l->n++] = sl;
  return 0;
}

static void sub_del(shard *s, sublist *l, ax_pid p) {
  for (uint32_t i = 0; i < l->n; i++)
    if (ax_pid_eq(l->v[i]->pid, p)) {
      slot *sl = l->v[i];
      l->v[i] = l->v[--l->n];
      slot_unref(s, sl);
      return;
    }
}

static void subscribe(shard *s, ax_pid from, const char *ch, size_t len) {
  int created;
  map_ent *e = map_put(&s->channels, ch, len, &created);
  if (!e) return;
  if (created) {
    e->val = calloc(1, sizeof(sublist));
    if (!e->val) {
      map_del(&s->channels, e);
      return;
    }
  }
  sub_add(s, e->val, from);
}

static void unsubscribe(shard *s, ax_pid from, const char *ch, size_t len) {
  map_ent *e = map_get(&s->channels, ch, len);
  if (!e) return;
  sublist *l = e->val;
  sub_del(s, l, from);
  if (l->n == 0) {
    free(l->v);
    free(l);
    map_del(&s->channels, e);
  }
}

static void psubscribe(shard *s, ax_pid from, const char *pat, size_t len) {
  int created;
  map_ent *e = map_put(&s->patterns, pat, len, &created);
  if (!e) return;
  if (created) {
    pat_ent *pe = calloc(1, sizeof *pe);
    size_t pl = glob_literal_prefix(pat, len);
    map_ent *pv = pe ? map_put(&s->prefixes, pat, pl, NULL) : NULL;
    if (pv && !pv->val) pv->val = calloc(1, sizeof(patvec));
    if (pl >= s->plen_cap) {
      size_t cap = s->plen_cap ? s->plen_cap : 16;
      while (cap <= pl) cap *= 2;
      uint32_t *c = realloc(s->plen_cnt, cap * sizeof *c);
      if (c) {
        memset(c + s->plen_cap, 0, (cap - s->plen_cap) * sizeof *c);
        s->plen_cnt = c;
        s->plen_cap = cap;
      }
    }
    patvec *vec = pv ? pv->val : NULL;
    if (vec && vec->n == vec->cap) {
      uint32_t cap = vec->cap ? vec->cap * 2 : 4;
      map_ent **v = realloc(vec->v, cap * sizeof *v);
      if (v) {
        vec->v = v;
        vec->cap = cap;
      }
    }
    if (!pe || !vec || vec->n == vec->cap || pl >= s->plen_cap) { /* out of memory */
      free(pe);
      if (pv && vec && vec->n == 0) {
        free(vec->v);
        free(vec);
        map_del(&s->prefixes, pv);
      } else if (pv && !vec) {
        map_del(&s->prefixes, pv);
      }
      map_del(&s->patterns, e);
      return;
    }
    vec->v[vec->n++] = e;
    s->plen_cnt[pl]++;
    pe->prefix_len = pl;
    e->val = pe;
  }
  sub_add(s, &((pat_ent *)e->val)->subs, from);
}

static void punsubscribe(shard *s, ax_pid from, const char *pat, size_t len) {
  map_ent *e = map_get(&s->patterns, pat, len);
  if (!e) return;
  pat_ent *pe = e->val;
  sub_del(s, &pe->subs, from);
  if (pe->subs.n > 0) return;
  map_ent *pv = map_get(&s->prefixes, pat, pe->prefix_len);
  if (pv) {
    patvec *vec = pv->val;
    for (uint32_t i = 0; i < vec->n; i++)
      if (vec->v[i] == e) {
        vec->v[i] = vec->v[--vec->n];
        break;
      }
    if (vec->n == 0) {
      free(vec->v);
      free(vec);
      map_del(&s->prefixes, pv);
    }
  }
  s->plen_cnt[pe->prefix_len]--;
  free(pe->subs.v);
  free(pe);
  map_del(&s->patterns, e);
}

static void free_frame(void *data, size_t cap, void *arg) {
  (void)cap, (void)arg;
  free(data);
}

/* The pmessage frame for one pattern: wire_hdr + *4 pmessage pat ch payload. */
static ax_buf *pmessage_frame(const char *pat, size_t plen, const char *ch, size_t clen,
                              const char *pl, size_t pllen) {
  obuf f = {0};
  wire_hdr h = {0};
  ob_add(&f, &h, sizeof h);
  ob_addstr(&f, "*4\r\n$8\r\npmessage\r\n");
  ob_bulk(&f, pat, plen);
  h.pat_off = (uint32_t)(f.len - sizeof h - plen - 2);
  h.pat_len = (uint32_t)plen;
  h.is_pmessage = 1;
  ob_bulk(&f, ch, clen);
  h.ch_off = (uint32_t)(f.len - sizeof h - clen - 2);
  h.ch_len = (uint32_t)clen;
  ob_bulk(&f, pl, pllen);
  h.pl_off = (uint32_t)(f.len - sizeof h - pllen - 2);
  h.pl_len = (uint32_t)pllen;
  if (f.oom) {
    ob_free(&f);
    return NULL;
  }
  memcpy(f.p, &h, sizeof h);
  ax_buf *b;
  if (ax_buf_wrap(f.p, f.len, free_frame, NULL, &b) != AX_OK) {
    ob_free(&f);
    return NULL;
  }
  return b;
}

/* One delivery: a record in the subscriber's slot, or (a big frame) its
 * pending records then the shared buffer by reference. */
static bool deliver(ax_actor *self, shard *s, slot *sl, ax_buf *buf, size_t off, size_t len) {
  if (len - sizeof(wire_hdr) < BIG_FRAME)
    return slot_add(s, sl, REC_DELIVER, (const char *)ax_buf_data(buf) + off, len);
  slot_send(self, sl);
  return ax_send_buf(self, sl->pid, MSG_DELIVER, buf, off, len) == AX_OK;
}

/* Sends a published frame to every local subscriber of its channel and of
 * every matching pattern. Returns the number of receivers. */
static uint64_t fanout(ax_actor *self, shard *s, ax_buf *buf, size_t off, size_t len) {
  const char *base = (const char *)ax_buf_data(buf) + off;
  wire_hdr h;
  memcpy(&h, base, sizeof h);
  /* Another node's malformed frame: offsets outside it, or a publish that
   * claims to be a pmessage (only this fan-out makes those, per pattern;
   * a subscriber's conn would take it for one of its patterns'). */
  if (!wire_ok(&h, len - sizeof h) || h.is_pmessage) return 0;
  const char *frame = base + sizeof h;
  const char *ch = frame + h.ch_off, *pl = frame + h.pl_off;
  uint64_t n = 0;
  map_ent *e = map_get(&s->channels, ch, h.ch_len);
  if (e) {
    sublist *l = e->val;
    for (uint32_t i = 0; i < l->n; i++) n += deliver(self, s, l->v[i], buf, off, len);
  }
  if (s->patterns.n == 0) return n;
  size_t maxl = h.ch_len < s->plen_cap ? h.ch_len : s->plen_cap - 1;
  for (size_t L = 0; L <= maxl; L++) {
    if (!s->plen_cnt[L]) continue;
    map_ent *pv = map_get(&s->prefixes, ch, L);
    if (!pv) continue;
    patvec *vec = pv->val;
    for (uint32_t i = 0; i < vec->n; i++) {
      map_ent *pe_ent = vec->v[i];
      if (!glob_match(pe_ent->key, pe_ent->klen, ch, h.ch_len)) continue;
      pat_ent *pe = pe_ent->val;
      ax_buf *pb = pmessage_frame(pe_ent->key, pe_ent->klen, ch, h.ch_len, pl, h.pl_len);
      if (!pb) continue;
      for (uint32_t j = 0; j < pe->subs.n; j++)
        n += deliver(self, s, pe->subs.v[j], pb, 0, ax_buf_len(pb));
      ax_buf_release(pb);
    }
  }
  return n;
}

/* Sends each other node's shard of this index the publish (cluster mode)
 * and records the refs in p. Returns how many requests went out. */
static uint32_t forward(ax_actor *self, shard *s, const void *data, size_t len, pend *p) {
  ax_pid local[64], *mem = local;
  size_t n = 64;
  ax_system *sys = ax_actor_system(self);
  if (ax_pg_members(sys, s->group, mem, &n) != AX_OK) return 0;
  if (n > 64) { /* more nodes than the stack array: take them all */
    size_t want = n + 16, got = want;
    mem = malloc(want * sizeof *mem);
    if (!mem || ax_pg_members(sys, s->group, mem, &got) != AX_OK) {
      free(mem);
      return 0;
    }
    n = got < want ? got : want;
  }
  uint32_t sent = 0;
  ax_pid me = ax_self(self);
  for (size_t i = 0; i < n; i++) {
    ax_ref ref;
    if (ax_pid_eq(mem[i], me)) continue;
    if (ax_request(self, mem[i], MSG_RPUBLISH, data, len, g_cfg.cluster_timeout_ms,
                   &ref) != AX_OK)
      continue; /* down, congested (AX_EAGAIN): that node counts 0 */
    int created;
    map_ent *e = map_put(&s->pending, &ref, sizeof ref, &created);
    if (!e) continue; /* out of memory: its answer will be ignored */
    e->val = p;
    sent++;
  }
  if (mem != local) free(mem);
  return sent;
}

/* PUBLISH: local fan-out, then (cluster mode) the forward to the other
 * nodes, then the reply to the publisher once their counts are in. */
static void shard_publish(ax_actor *self, shard *s, ax_pid from, ax_buf *buf, size_t off,
                          size_t len) {
  const char *data = (const char *)ax_buf_data(buf) + off;
  wire_hdr h;
  memcpy(&h, data, sizeof h);
  publish_done d = {h.seq, fanout(self, s, buf, off, len)};
  fanout_note(d.receivers * (len - sizeof h)); /* the unit of the lag rule (conn.c) */
  if (g_cfg.cluster) {
    pend *p = malloc(sizeof *p);
    if (p) {
      *p = (pend){from, h.seq, d.receivers, 0};
      p->need = forward(self, s, data, len, p);
      if (p->need) return; /* answered by pend_done */
      free(p);
    }
  }
  answer(self, s, from, &d);
}

/* A conn's batch of publishes (MSG_PUBLISH), one record each, in order. */
static void shard_publishes(ax_actor *self, shard *s, const ax_msg *msg) {
  size_t base = (size_t)((const char *)msg->data - (const char *)ax_buf_data(msg->buf));
  size_t at = 0;
  while (msg->len - at >= sizeof(rec_hdr)) {
    rec_hdr r;
    memcpy(&r, (const char *)msg->data + at, sizeof r);
    at += sizeof r;
    if (r.len > msg->len - at) break;
    if (r.kind == REC_PUBLISH && r.len >= sizeof(wire_hdr))
      shard_publish(self, s, msg->from, msg->buf, base + at, r.len);
    at += r.len;
  }
}

/* One of a publish's requests ended: an answer (n receivers) or a timeout
 * (0). The last one answers the publisher. */
static void pend_done(ax_actor *self, shard *s, ax_ref ref, uint64_t n) {
  map_ent *e = map_get(&s->pending, &ref, sizeof ref);
  if (!e) return;
  pend *p = e->val;
  map_del(&s->pending, e);
  p->n += n;
  if (--p->need) return;
  publish_done d = {p->seq, p->n};
  answer(self, s, p->conn, &d);
  free(p);
}

/* Another node's publish (cluster mode): fan out to this node's
 * subscribers, answer the count. A message that crossed nodes arrives as a
 * copy (msg->buf NULL): it goes into one buffer, shared by the deliveries. */
static void shard_rpublish(ax_actor *self, shard *s, const ax_msg *msg) {
  uint64_t n = 0;
  if (msg->buf) {
    size_t off = (size_t)((const char *)msg->data - (const char *)ax_buf_data(msg->buf));
    n = fanout(self, s, msg->buf, off, msg->len);
  } else {
    void *copy = malloc(msg->len);
    ax_buf *b = NULL;
    if (copy) memcpy(copy, msg->data, msg->len);
    if (copy && ax_buf_wrap(copy, msg->len, free_frame, NULL, &b) != AX_OK) free(copy);
    if (b) {
      n = fanout(self, s, b, 0, msg->len);
      ax_buf_release(b);
    }
  }
  /* Answered by shard_flush, after the deliveries (see there). */
  if (s->nrd == s->rdcap) {
    uint32_t cap = s->rdcap ? s->rdcap * 2 : 16;
    rdone *v = realloc(s->rd, cap * sizeof *v);
    if (!v) { /* out of memory: answer now (order may suffer, the count not) */
      slot_send_all(self, s);
      ax_reply(self, msg, MSG_RPUBLISH_DONE, &n, sizeof n);
      return;
    }
    s->rd = v;
    s->rdcap = cap;
  }
  s->rd[s->nrd++] = (rdone){ax_reply_addr_of(msg), n};
}

static void shard_query(ax_actor *self, shard *s, const ax_msg *msg) {
  query_hdr q;
  memcpy(&q, msg->data, sizeof q);
  const char *p = (const char *)msg->data + sizeof q, *end = (const char *)msg->data + msg->len;
  obuf r = {0};
  ob_add(&r, &q, sizeof q);
  size_t len;
  const char *name;
  if (q.kind == Q_NUMSUB) {
    while ((name = strlist_next(&p, end, &len))) {
      map_ent *e = map_get(&s->channels, name, len);
      uint64_t n = e ? ((sublist *)e->val)->n : 0;
      ob_add(&r, &n, sizeof n);
    }
  } else if (q.kind == Q_CHANNELS) {
    const char *pat = NULL;
    size_t plen = 0;
    if (q.has_pattern) pat = strlist_next(&p, end, &plen);
    for (map_ent *e = map_first(&s->channels); e; e = map_next(&s->channels, e)) {
      if (pat && !glob_match(pat, plen, e->key, e->klen)) continue;
      uint32_t n = (uint32_t)e->klen;
      ob_add(&r, &n, sizeof n);
      ob_add(&r, e->key, e->klen);
    }
  } else if (q.kind == Q_NUMPAT) {
    uint64_t n = s->patterns.n;
    ob_add(&r, &n, sizeof n);
  }
  if (!r.oom) ax_send(self, msg->from, MSG_QUERY_REPLY, r.p, r.len);
  ob_free(&r);
}

static ax_err shard_behaviour(ax_actor *self, const ax_msg *msg) {
  shard *s = ax_state(self);
  /* An empty message (another node can send one) has no data: no NULL + 0. */
  const char *p = msg->data, *end = p ? p + msg->len : p, *name;
  size_t len;
  switch (msg->type) {
  case MSG_PUBLISH:
    if (msg->buf) shard_publishes(self, s, msg);
    break;
  case MSG_SUB:
    while ((name = strlist_next(&p, end, &len))) subscribe(s, msg->from, name, len);
    break;
  case MSG_UNSUB:
    while ((name = strlist_next(&p, end, &len))) unsubscribe(s, msg->from, name, len);
    break;
  case MSG_PSUB:
    while ((name = strlist_next(&p, end, &len))) psubscribe(s, msg->from, name, len);
    break;
  case MSG_PUNSUB:
    while ((name = strlist_next(&p, end, &len))) punsubscribe(s, msg->from, name, len);
    break;
  case MSG_QUERY:
    if (msg->len >= sizeof(query_hdr)) shard_query(self, s, msg);
    break;
  case MSG_RPUBLISH:
    if ((msg->flags & AX_MSGF_REQUEST) && msg->len >= sizeof(wire_hdr)) shard_rpublish(self, s, msg);
    break;
  case MSG_RPUBLISH_DONE: {
    uint64_t n = 0;
    if ((msg->flags & AX_MSGF_REPLY) && msg->len >= sizeof n) {
      memcpy(&n, msg->data, sizeof n);
      pend_done(self, s, msg->ref, n);
    }
    break;
  }
  case AX_MSG_TIMEOUT: /* a remote count not in time, or its node went down */
    pend_done(self, s, msg->ref, 0);
    break;
  default:
    break;
  }
  return AX_OK;
}

/* arg: the shard's index (uint32_t). */
static ax_err shard_init(ax_actor *self, void *state, const void *arg, size_t len) {
  shard *s = state;
  uint32_t idx = 0;
  (void)self;
  if (arg && len == sizeof idx) memcpy(&idx, arg, sizeof idx);
  snprintf(s->group, sizeof s->group, SHARD_GROUP_FMT, idx);
  return AX_OK;
}

static void shard_terminate(ax_actor *self, void *state, ax_reason reason) {
  shard *s = state;
  (void)self, (void)reason;
  /* Pending publishes: a pend is shared by its refs; free it with its last. */
  while (map_first(&s->pending)) {
    map_ent *e = map_first(&s->pending);
    pend *p = e->val;
    map_del(&s->pending, e);
    if (--p->need == 0) free(p);
  }
  map_free(&s->pending);
  for (map_ent *e = map_first(&s->channels); e; e = map_next(&s->channels, e)) {
    free(((sublist *)e->val)->v);
    free(e->val);
  }
  for (map_ent *e = map_first(&s->patterns); e; e = map_next(&s->patterns, e)) {
    free(((pat_ent *)e->val)->subs.v);
    free(e->val);
  }
  for (map_ent *e = map_first(&s->prefixes); e; e = map_next(&s->prefixes, e)) {
    free(((patvec *)e->val)->v);
    free(e->val);
  }
  map_free(&s->channels);
  map_free(&s->patterns);
  map_free(&s->prefixes);
  free(s->plen_cnt);
  /* Records not flushed (the run that stopped us) are dropped with us. */
  for (map_ent *e = map_first(&s->slots); e; e = map_next(&s->slots, e)) {
    ob_free(&((slot *)e->val)->ob);
    ob_free(&((slot *)e->val)->done);
    free(e->val);
  }
  map_free(&s->slots);
  free(s->touched);
  free(s->rd);
}

const ax_actor_spec shard_spec = {.name = "pubsub-shard",
                                  .behaviour = shard_behaviour,
                                  .state_size = sizeof(shard),
                                  .init = shard_init,
                                  .terminate = shard_terminate,
                                  .flush = shard_flush};
