/* Axon: the wire protocol's framing and header codec (docs/PROTOCOL.md).
 * The only file that includes the protobuf-c generated code: headers are
 * unpacked with an allocator bound to the ax__ shim, converted to the
 * plain structs of wire.h and validated field by field; encoding validates
 * the same way and packs. */
#include <string.h>

#include "axon.pb-c.h"
#include "base/base.h"
#include "cluster/nodes.h"
#include "cluster/wire.h"

#define PB(x) Axon__Wire__V1__##x

#define HDR_MAX AX__HDR_MAX

/* ---- protobuf-c allocator over the shim (sized free: size in a prefix) ---- */

#define PB_PREFIX 16u

/* data: NULL, or a bool set when an allocation fails (protobuf-c reports
 * out of memory and malformed input alike as NULL). */
static void *pb_alloc(void *data, size_t n) {
  size_t t;
  uint8_t *p = ax__size_add(PB_PREFIX, n, &t) ? ax__alloc(t) : NULL;
  if (!p) {
    if (data) *(bool *)data = true;
    return NULL;
  }
  memcpy(p, &t, sizeof t);
  return p + PB_PREFIX;
}

static void pb_free(void *data, void *ptr) {
  (void)data;
  if (!ptr) return;
  uint8_t *b = (uint8_t *)ptr - PB_PREFIX;
  size_t t;
  memcpy(&t, b, sizeof t);
  ax__free(b, t);
}

static ProtobufCAllocator pb_allocator = {pb_alloc, pb_free, NULL};

/* ---- tables ---- */

typedef struct kind_info {
  const char *name;
  const ProtobufCMessageDescriptor *desc;
  uint64_t feature;
  bool payload;
} kind_info;

static const kind_info *kind_get(int kind) {
  static const kind_info hs[] = {
      [AX__K_HELLO] = {"HELLO", &axon__wire__v1__hello__descriptor, 0, false},
      [AX__K_CHALLENGE_REPLY] = {"CHALLENGE_REPLY", &axon__wire__v1__challenge_reply__descriptor, 0,
                                 false},
      [AX__K_REJECT] = {"REJECT", &axon__wire__v1__reject__descriptor, 0, false},
  };
  static const kind_info k[] = {
      [AX__K_SEND - 16] = {"SEND", &axon__wire__v1__send__descriptor, 0, true},
      [AX__K_SEND_BEGIN - 16] = {"SEND_BEGIN", &axon__wire__v1__send__descriptor,
                                 AX__FEAT_FRAGMENTS, true},
      [AX__K_SEND_MORE - 16] = {"SEND_MORE", &axon__wire__v1__send_more__descriptor,
                                AX__FEAT_FRAGMENTS, true},
      [AX__K_LINK - 16] = {"LINK", &axon__wire__v1__link__descriptor, 0, false},
      [AX__K_UNLINK - 16] = {"UNLINK", &axon__wire__v1__link__descriptor, 0, false},
      [AX__K_EXIT - 16] = {"EXIT", &axon__wire__v1__exit__descriptor, 0, false},
      [AX__K_MONITOR - 16] = {"MONITOR", &axon__wire__v1__monitor__descriptor, 0, false},
      [AX__K_DEMONITOR - 16] = {"DEMONITOR", &axon__wire__v1__monitor__descriptor, 0, false},
      [AX__K_DOWN - 16] = {"DOWN", &axon__wire__v1__down__descriptor, 0, false},
      [AX__K_SPAWN_REQ - 16] = {"SPAWN_REQ", &axon__wire__v1__spawn_req__descriptor,
                                AX__FEAT_SPAWN, true},
      [AX__K_SPAWN_REPLY - 16] = {"SPAWN_REPLY", &axon__wire__v1__spawn_reply__descriptor,
                                  AX__FEAT_SPAWN, false},
      [AX__K_WHEREIS_REQ - 16] = {"WHEREIS_REQ", &axon__wire__v1__whereis_req__descriptor, 0,
                                  false},
      [AX__K_WHEREIS_REPLY - 16] = {"WHEREIS_REPLY", &axon__wire__v1__whereis_reply__descriptor,
                                    0, false},
      [AX__K_PG_JOIN - 16] = {"PG_JOIN", &axon__wire__v1__pg_group__descriptor, AX__FEAT_PG,
                              false},
      [AX__K_PG_LEAVE - 16] = {"PG_LEAVE", &axon__wire__v1__pg_group__descriptor, AX__FEAT_PG,
                               false},
      [AX__K_PG_SYNC - 16] = {"PG_SYNC", &axon__wire__v1__pg_sync__descriptor, AX__FEAT_PG, false},
      [AX__K_HEARTBEAT - 16] = {"HEARTBEAT", &axon__wire__v1__heartbeat__descriptor, 0, false},
      [AX__K_PEER_LIST - 16] = {"PEER_LIST", &axon__wire__v1__peer_list__descriptor,
                                AX__FEAT_PEERS, false},
      [AX__K_BYE - 16] = {"BYE", &axon__wire__v1__bye__descriptor, 0, false},
      [AX__K_ELECT - 16] = {"ELECT", &axon__wire__v1__elect__descriptor, AX__FEAT_ELECT, false},
  };
  if (kind >= AX__K_HELLO && kind <= AX__K_REJECT) return &hs[kind];
  if (kind >= AX__K_SEND && kind <= AX__K_ELECT) return &k[kind - 16];
  return NULL;
}

const char *ax__fkind_name(int kind) {
  const kind_info *ki = kind_get(kind);
  return ki ? ki->name : "?";
}

uint64_t ax__fkind_feature(int kind) {
  const kind_info *ki = kind_get(kind);
  return ki ? ki->feature : 0;
}

const char *ax__perr_str(ax__perr p) {
  switch (p) {
  case AX__PE_OK: return "no error";
  case AX__PE_TOO_LONG: return "frame length above the maximum frame size";
  case AX__PE_TOO_SHORT: return "frame length below the fixed frame header";
  case AX__PE_HEADER_LEN: return "header length beyond the frame or its bound";
  case AX__PE_KIND: return "unknown or unexpected frame kind";
  case AX__PE_PROTOBUF: return "malformed protobuf header";
  case AX__PE_FIELD: return "missing or invalid header field";
  case AX__PE_STREAM: return "invalid fragment stream";
  case AX__PE_REASM_LIMIT: return "reassembly memory bound exceeded";
  case AX__PE_PAYLOAD: return "payload on a frame kind that has none";
  }
  return "unknown protocol error";
}

static ax_err fail(ax__perr *perr, ax__perr why) {
  if (perr) *perr = why;
  return AX_EINVAL;
}

/* ---- framing ---- */

static uint32_t get_u32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_u32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

/* Validates the fixed 9 bytes; *flen gets the frame's total size. */
static ax_err check_prefix(const uint8_t *p, uint32_t max_frame, size_t *flen, ax__perr *perr) {
  uint32_t len = get_u32(p);
  uint32_t hlen = get_u32(p + 5);
  if (len > max_frame) return fail(perr, AX__PE_TOO_LONG);
  if (len < AX__FRAME_MIN_LEN) return fail(perr, AX__PE_TOO_SHORT);
  if (hlen > len - AX__FRAME_MIN_LEN || hlen > HDR_MAX) return fail(perr, AX__PE_HEADER_LEN);
  *flen = (size_t)len + 4;
  return AX_OK;
}

ax_err ax__frame_parse(const uint8_t *p, size_t n, uint32_t max_frame, ax__frame *f, size_t *need,
                       ax__perr *perr) {
  if (perr) *perr = AX__PE_OK;
  if (!f || (!p && n)) return AX_EINVAL;
  if (n < AX__FRAME_PREFIX) {
    /* A too-long or too-short length is known from 4 bytes already. */
    if (n >= 4) {
      uint32_t len = get_u32(p);
      if (len > max_frame) return fail(perr, AX__PE_TOO_LONG);
      if (len < AX__FRAME_MIN_LEN) return fail(perr, AX__PE_TOO_SHORT);
    }
    if (need) *need = AX__FRAME_PREFIX;
    return AX_EAGAIN;
  }
  size_t flen;
  ax_err e = check_prefix(p, max_frame, &flen, perr);
  if (e != AX_OK) return e;
  if (need) *need = flen;
  if (n < flen) return AX_EAGAIN;
  f->kind = p[4];
  f->header_len = get_u32(p + 5);
  f->header = p + AX__FRAME_PREFIX;
  f->payload = f->header + f->header_len;
  f->payload_len = flen - AX__FRAME_PREFIX - f->header_len;
  f->frame_len = flen;
  return AX_OK;
}

ax_err ax__fdec_init(ax__fdec *d, uint32_t max_frame) {
  if (!d || max_frame < AX__FRAME_MIN_LEN) return AX_EINVAL;
  memset(d, 0, sizeof *d);
  d->max_frame = max_frame;
  return AX_OK;
}

void ax__fdec_fini(ax__fdec *d) {
  if (!d) return;
  ax__free(d->buf, d->cap);
  d->buf = NULL;
  d->cap = d->len = d->need = 0;
}

ax_err ax__fdec_feed(ax__fdec *d, const uint8_t *p, size_t n, size_t *consumed, ax__frame *f,
                     ax__perr *perr) {
  if (perr) *perr = AX__PE_OK;
  if (consumed) *consumed = 0;
  if (!d || !f || !consumed || (!p && n)) return AX_EINVAL;
  if (d->failed) return fail(perr, d->err);
  size_t used = 0;
  if (d->len == 0) {
    /* Fast path: the whole frame is in the caller's bytes. */
    ax_err e = ax__frame_parse(p, n, d->max_frame, f, NULL, &d->err);
    if (e == AX_OK) {
      *consumed = f->frame_len;
      return AX_OK;
    }
    if (e != AX_EAGAIN) goto bad;
  }
  if (d->need == 0) {
    /* The prefix goes to the inline pre[]: nothing is allocated before the
     * length has been validated. */
    size_t take = AX__FRAME_PREFIX - d->len;
    if (take > n) take = n;
    if (take) memcpy(d->pre + d->len, p, take);
    d->len += take;
    used = take;
    size_t need;
    ax_err e = ax__frame_parse(d->pre, d->len, d->max_frame, f, &need, &d->err);
    if (e == AX_EINVAL) goto bad;
    if (e == AX_OK) { /* a frame of only the fixed header */
      d->len = 0;
      *consumed = used;
      return AX_OK;
    }
    if (d->len < AX__FRAME_PREFIX) {
      *consumed = used;
      return AX_EAGAIN;
    }
    if (need > d->cap) {
      uint8_t *nb = ax__alloc(need);
      if (!nb) {
        d->len -= take; /* as if this call had not happened */
        return AX_ENOMEM;
      }
      ax__free(d->buf, d->cap);
      d->buf = nb;
      d->cap = need;
    }
    memcpy(d->buf, d->pre, AX__FRAME_PREFIX);
    d->need = need;
  }
  size_t take = d->need - d->len;
  if (take > n - used) take = n - used;
  if (take) memcpy(d->buf + d->len, p + used, take);
  d->len += take;
  used += take;
  *consumed = used;
  if (d->len < d->need) return AX_EAGAIN;
  ax_err e = ax__frame_parse(d->buf, d->len, d->max_frame, f, NULL, &d->err);
  AX_ASSERT(e == AX_OK); /* the prefix was validated */
  /* The view into buf stays valid: buf is reused only by the next feed. */
  d->len = 0;
  d->need = 0;
  return e;
bad:
  d->failed = true;
  *consumed = used;
  return fail(perr, d->err);
}

/* ---- field validation (shared by decode and encode) ---- */

/* Generic names (behaviours, registered names, groups): 1..255 bytes, no
 * control characters. */
static bool name_ok(const char *s) {
  if (!s) return false;
  size_t n = strnlen(s, AX__NAME_MAX + 1);
  if (n == 0 || n > AX__NAME_MAX) return false;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c < 0x20 || c == 0x7f) return false;
  }
  return true;
}

static bool addr_ok(const char *s) { return !s || strnlen(s, AX__ADDR_MAX + 1) <= AX__ADDR_MAX; }

/* The node bits of a wire id must be clear (docs/PROTOCOL.md "Pids"). */
#define WIRE_ID_BITS 52

static bool wpid_ok(const ax__wpid *w, bool required) {
  if (w->id >> WIRE_ID_BITS) return false;
  if (required && w->id == 0) return false;
  if (w->scope > AX__WPID_NAMED) return false;
  if (w->scope == AX__WPID_NAMED)
    return ax__node_name_check(w->node) == AX_OK && w->incarnation != 0;
  return (!w->node || !w->node[0]) && w->incarnation == 0;
}

static bool group_ok(const ax__wgroup *g) {
  if (!name_ok(g->group)) return false;
  if (g->npids && !g->pids) return false;
  for (size_t i = 0; i < g->npids; i++)
    if (!wpid_ok(&g->pids[i], true)) return false;
  return true;
}

static bool peer_ok(const ax__wpeer *p) {
  return ax__node_name_check(p->name) == AX_OK && p->incarnation != 0 && addr_ok(p->addr);
}

static bool wmsg_fields_ok(const ax__wmsg *m, size_t payload_len) {
  switch (m->kind) {
  case AX__K_HELLO:
    return ax__node_name_check(m->u.hello.name) == AX_OK && m->u.hello.challenge &&
           addr_ok(m->u.hello.listen);
  case AX__K_CHALLENGE_REPLY: return m->u.reply.mac != NULL;
  case AX__K_REJECT: return true;
  case AX__K_SEND:
    return wpid_ok(&m->u.send.to, true) && wpid_ok(&m->u.send.from, false) &&
           m->u.send.stream == 0 && m->u.send.total == 0;
  case AX__K_SEND_BEGIN:
    return wpid_ok(&m->u.send.to, true) && wpid_ok(&m->u.send.from, false) &&
           m->u.send.stream != 0 && payload_len > 0 && m->u.send.total > payload_len;
  case AX__K_SEND_MORE: return m->u.more.stream != 0 && payload_len > 0;
  case AX__K_LINK:
  case AX__K_UNLINK: return wpid_ok(&m->u.link.from, true) && wpid_ok(&m->u.link.to, true);
  case AX__K_EXIT: return wpid_ok(&m->u.exit.from, false) && wpid_ok(&m->u.exit.to, true);
  case AX__K_MONITOR:
  case AX__K_DEMONITOR:
    return wpid_ok(&m->u.monitor.watcher, true) && wpid_ok(&m->u.monitor.target, true) &&
           m->u.monitor.ref != 0;
  case AX__K_DOWN:
    return wpid_ok(&m->u.down.pid, true) && wpid_ok(&m->u.down.watcher, true) &&
           m->u.down.ref != 0;
  case AX__K_SPAWN_REQ:
    return name_ok(m->u.spawn_req.behaviour) && wpid_ok(&m->u.spawn_req.requester, true) &&
           m->u.spawn_req.options <= (AX__SPAWN_LINK | AX__SPAWN_MONITOR);
  case AX__K_SPAWN_REPLY:
    return wpid_ok(&m->u.spawn_reply.requester, true) && wpid_ok(&m->u.spawn_reply.pid, false);
  case AX__K_WHEREIS_REQ:
    return name_ok(m->u.whereis_req.name) && wpid_ok(&m->u.whereis_req.requester, false);
  case AX__K_WHEREIS_REPLY:
    return wpid_ok(&m->u.whereis_reply.requester, false) &&
           wpid_ok(&m->u.whereis_reply.pid, false);
  case AX__K_PG_JOIN:
  case AX__K_PG_LEAVE: return group_ok(&m->u.pg);
  case AX__K_PG_SYNC:
    if (m->u.pg_sync.ngroups && !m->u.pg_sync.groups) return false;
    for (size_t i = 0; i < m->u.pg_sync.ngroups; i++)
      if (!group_ok(&m->u.pg_sync.groups[i])) return false;
    return true;
  case AX__K_HEARTBEAT:
  case AX__K_BYE:
  case AX__K_ELECT: return true;
  case AX__K_PEER_LIST:
    if (m->u.peers.npeers && !m->u.peers.peers) return false;
    for (size_t i = 0; i < m->u.peers.npeers; i++)
      if (!peer_ok(&m->u.peers.peers[i])) return false;
    return true;
  }
  return false;
}

/* ---- decode ---- */

static void from_pb_pid(const PB(Pid) *p, ax__wpid *w) {
  memset(w, 0, sizeof *w);
  if (!p) return;
  w->id = p->id;
  w->scope = p->scope;
  w->node = p->node && p->node[0] ? p->node : NULL;
  w->incarnation = p->incarnation;
}

static const char *str_or_null(const char *s) { return s && s[0] ? s : NULL; }

/* base + off inside one block laid out for repeated fields. An empty list
 * has no block (base NULL, every offset 0): offsetting NULL, even by 0, is
 * undefined behaviour, so that case gives NULL without arithmetic. */
static void *mem_at(void *base, size_t off) { return base ? (uint8_t *)base + off : NULL; }

/* Arrays for repeated fields: one allocation in m->aux_. */
static void *aux_alloc(ax__wmsg *m, size_t n, size_t size) {
  if (n == 0) return NULL;
  if (n > AX__ALLOC_MAX / size) return NULL;
  m->aux_ = ax__alloc(n * size);
  if (m->aux_) m->aux_size_ = n * size;
  return m->aux_;
}


/* Fills pids from a repeated Pid field; a missing element is an error. */
static bool from_pb_pids(PB(Pid) *const *src, size_t n, ax__wpid *dst) {
  for (size_t i = 0; i < n; i++) {
    if (!src[i]) return false;
    from_pb_pid(src[i], &dst[i]);
  }
  return true;
}

/* PG_JOIN/PG_LEAVE (one group, sync false) and PG_SYNC (sync true). */
static ax_err from_pb_groups(ax__wmsg *m, PB(PgGroup) *const *g, size_t ng, bool sync) {
  size_t npids = 0;
  for (size_t i = 0; i < ng; i++) {
    if (!g[i]) return AX_EINVAL;
    npids += g[i]->n_pids; /* bounded by the header size: no overflow */
  }
  size_t gsz = sync ? ng * sizeof(ax__wgroup) : 0;
  size_t total = gsz + npids * sizeof(ax__wpid);
  uint8_t *mem = total ? aux_alloc(m, total, 1) : NULL;
  if (total && !mem) return AX_ENOMEM;
  ax__wgroup *groups = sync ? (ax__wgroup *)(void *)mem : &m->u.pg;
  ax__wpid *pids = mem_at(mem, gsz);
  for (size_t i = 0; i < ng; i++) {
    groups[i].group = str_or_null(g[i]->group);
    groups[i].npids = g[i]->n_pids;
    groups[i].pids = g[i]->n_pids ? pids : NULL;
    if (!from_pb_pids(g[i]->pids, g[i]->n_pids, pids)) return AX_EINVAL;
    pids = mem_at(pids, g[i]->n_pids * sizeof *pids);
  }
  if (sync) {
    m->u.pg_sync.groups = ng ? groups : NULL;
    m->u.pg_sync.ngroups = ng;
  }
  return AX_OK;
}

static ax_err from_pb_peers(ax__wmsg *m, const PB(PeerList) *pl) {
  ax__wpeer *peers = aux_alloc(m, pl->n_peers, sizeof(ax__wpeer));
  if (pl->n_peers && !peers) return AX_ENOMEM;
  for (size_t i = 0; i < pl->n_peers; i++) {
    if (!pl->peers[i]) return AX_EINVAL;
    peers[i].name = str_or_null(pl->peers[i]->name);
    peers[i].incarnation = pl->peers[i]->incarnation;
    peers[i].addr = str_or_null(pl->peers[i]->addr);
  }
  m->u.peers.peers = peers;
  m->u.peers.npeers = pl->n_peers;
  return AX_OK;
}

/* Converts the unpacked header pb of m->kind into m->u. AX_EINVAL for a
 * structurally wrong header (a wrong-length challenge or MAC, a NULL
 * repeated element), AX_ENOMEM. Field values are checked afterwards. */
static ax_err from_pb(ax__wmsg *m, const ProtobufCMessage *pb) {
  switch (m->kind) {
  case AX__K_HELLO: {
    const PB(Hello) *h = (const PB(Hello) *)pb;
    if (h->challenge.len != AX__CHALLENGE_LEN) return AX_EINVAL;
    m->u.hello.version = h->version;
    m->u.hello.name = str_or_null(h->name);
    m->u.hello.incarnation = h->incarnation;
    m->u.hello.features = h->features;
    m->u.hello.max_frame = h->max_frame;
    m->u.hello.challenge = h->challenge.data;
    m->u.hello.listen = str_or_null(h->listen);
    return AX_OK;
  }
  case AX__K_CHALLENGE_REPLY: {
    const PB(ChallengeReply) *r = (const PB(ChallengeReply) *)pb;
    if (r->mac.len != AX__MAC_LEN) return AX_EINVAL;
    m->u.reply.mac = r->mac.data;
    m->u.reply.features = r->features;
    return AX_OK;
  }
  case AX__K_REJECT: m->u.reject.code = ((const PB(Reject) *)pb)->code; return AX_OK;
  case AX__K_SEND:
  case AX__K_SEND_BEGIN: {
    const PB(Send) *s = (const PB(Send) *)pb;
    from_pb_pid(s->to, &m->u.send.to);
    from_pb_pid(s->from, &m->u.send.from);
    m->u.send.type = s->type;
    m->u.send.flags = s->flags;
    m->u.send.ref = s->ref;
    m->u.send.stream = s->stream;
    m->u.send.total = s->total;
    return AX_OK;
  }
  case AX__K_SEND_MORE: m->u.more.stream = ((const PB(SendMore) *)pb)->stream; return AX_OK;
  case AX__K_LINK:
  case AX__K_UNLINK: {
    const PB(Link) *l = (const PB(Link) *)pb;
    from_pb_pid(l->from, &m->u.link.from);
    from_pb_pid(l->to, &m->u.link.to);
    return AX_OK;
  }
  case AX__K_EXIT: {
    const PB(Exit) *x = (const PB(Exit) *)pb;
    from_pb_pid(x->from, &m->u.exit.from);
    from_pb_pid(x->to, &m->u.exit.to);
    m->u.exit.reason = x->reason;
    m->u.exit.link = x->link != 0;
    return AX_OK;
  }
  case AX__K_MONITOR:
  case AX__K_DEMONITOR: {
    const PB(Monitor) *x = (const PB(Monitor) *)pb;
    from_pb_pid(x->watcher, &m->u.monitor.watcher);
    from_pb_pid(x->target, &m->u.monitor.target);
    m->u.monitor.ref = x->ref;
    return AX_OK;
  }
  case AX__K_DOWN: {
    const PB(Down) *x = (const PB(Down) *)pb;
    m->u.down.ref = x->ref;
    from_pb_pid(x->pid, &m->u.down.pid);
    from_pb_pid(x->watcher, &m->u.down.watcher);
    m->u.down.reason = x->reason;
    return AX_OK;
  }
  case AX__K_SPAWN_REQ: {
    const PB(SpawnReq) *x = (const PB(SpawnReq) *)pb;
    m->u.spawn_req.behaviour = str_or_null(x->behaviour);
    from_pb_pid(x->requester, &m->u.spawn_req.requester);
    m->u.spawn_req.ref = x->ref;
    m->u.spawn_req.options = x->options;
    return AX_OK;
  }
  case AX__K_SPAWN_REPLY: {
    const PB(SpawnReply) *x = (const PB(SpawnReply) *)pb;
    m->u.spawn_reply.ref = x->ref;
    from_pb_pid(x->requester, &m->u.spawn_reply.requester);
    from_pb_pid(x->pid, &m->u.spawn_reply.pid);
    m->u.spawn_reply.status = x->status;
    return AX_OK;
  }
  case AX__K_WHEREIS_REQ: {
    const PB(WhereisReq) *x = (const PB(WhereisReq) *)pb;
    m->u.whereis_req.name = str_or_null(x->name);
    from_pb_pid(x->requester, &m->u.whereis_req.requester);
    m->u.whereis_req.ref = x->ref;
    return AX_OK;
  }
  case AX__K_WHEREIS_REPLY: {
    const PB(WhereisReply) *x = (const PB(WhereisReply) *)pb;
    m->u.whereis_reply.ref = x->ref;
    from_pb_pid(x->requester, &m->u.whereis_reply.requester);
    from_pb_pid(x->pid, &m->u.whereis_reply.pid);
    return AX_OK;
  }
  case AX__K_PG_JOIN:
  case AX__K_PG_LEAVE: {
    PB(PgGroup) *g = (PB(PgGroup) *)pb;
    return from_pb_groups(m, &g, 1, false);
  }
  case AX__K_PG_SYNC: {
    const PB(PgSync) *x = (const PB(PgSync) *)pb;
    return from_pb_groups(m, x->groups, x->n_groups, true);
  }
  case AX__K_HEARTBEAT: m->u.heartbeat.seq = ((const PB(Heartbeat) *)pb)->seq; return AX_OK;
  case AX__K_PEER_LIST: return from_pb_peers(m, (const PB(PeerList) *)pb);
  case AX__K_BYE: m->u.bye.reason = ((const PB(Bye) *)pb)->reason; return AX_OK;
  case AX__K_ELECT: return AX_OK;
  }
  return AX_EINVAL;
}

ax_err ax__wmsg_decode(const ax__frame *f, uint64_t allowed, bool handshake, ax__wmsg *out,
                       ax__perr *perr) {
  if (perr) *perr = AX__PE_OK;
  if (!out) return AX_EINVAL;
  memset(out, 0, sizeof *out);
  if (!f) return AX_EINVAL;
  const kind_info *ki = kind_get(f->kind);
  if (!ki) return fail(perr, AX__PE_KIND);
  bool hs_kind = f->kind <= AX__K_REJECT;
  if (f->kind != AX__K_REJECT && hs_kind != handshake) return fail(perr, AX__PE_KIND);
  if (ki->feature && !(allowed & ki->feature)) return fail(perr, AX__PE_KIND);
  if (!ki->payload && f->payload_len) return fail(perr, AX__PE_PAYLOAD);
  if (f->header_len > HDR_MAX) return fail(perr, AX__PE_HEADER_LEN);
  bool oom = false;
  ProtobufCAllocator a = {pb_alloc, pb_free, &oom};
  ProtobufCMessage *pb = protobuf_c_message_unpack(ki->desc, &a, f->header_len, f->header);
  if (!pb) return oom ? AX_ENOMEM : fail(perr, AX__PE_PROTOBUF);
  out->kind = f->kind;
  out->pb_ = pb;
  out->payload = f->payload_len ? f->payload : NULL;
  out->payload_len = f->payload_len;
  ax_err e = from_pb(out, pb);
  if (e == AX_OK && !wmsg_fields_ok(out, f->payload_len)) e = AX_EINVAL;
  if (e != AX_OK) {
    ax__wmsg_fini(out);
    return e == AX_EINVAL ? fail(perr, AX__PE_FIELD) : e;
  }
  return AX_OK;
}

void ax__wmsg_fini(ax__wmsg *m) {
  if (!m) return;
  if (m->pb_) protobuf_c_message_free_unpacked(m->pb_, &pb_allocator);
  ax__free(m->aux_, m->aux_size_);
  memset(m, 0, sizeof *m);
}

/* ---- encode ---- */

/* The protobuf form of one message being encoded: fixed kinds use the
 * inline structs; repeated fields use one temporary allocation. */
typedef struct pb_out {
  union {
    PB(Hello) hello;
    PB(ChallengeReply) reply;
    PB(Reject) reject;
    PB(Send) send;
    PB(SendMore) more;
    PB(Link) link;
    PB(Exit) exit;
    PB(Monitor) monitor;
    PB(Down) down;
    PB(SpawnReq) spawn_req;
    PB(SpawnReply) spawn_reply;
    PB(WhereisReq) whereis_req;
    PB(WhereisReply) whereis_reply;
    PB(PgGroup) pg;
    PB(PgSync) pg_sync;
    PB(Heartbeat) heartbeat;
    PB(PeerList) peers;
    PB(Bye) bye;
    PB(Elect) elect;
  } u;
  PB(Pid) pid[3];
  void *mem;
  size_t mem_size;
} pb_out;

/* Absent (NULL) for "no pid" (id 0, sender scope). */
static PB(Pid) *to_pb_pid(const ax__wpid *w, PB(Pid) *slot) {
  if (w->id == 0 && w->scope == AX__WPID_SENDER) return NULL;
  axon__wire__v1__pid__init(slot);
  slot->id = w->id;
  slot->scope = w->scope;
  slot->node = (char *)(w->node ? w->node : "");
  slot->incarnation = w->incarnation;
  return slot;
}

static char *cs(const char *s) { return (char *)(s ? s : ""); }

/* Lays out groups (one, or pg_sync's) into o->mem. */
static ax_err to_pb_groups(pb_out *o, const ax__wgroup *g, size_t ng, PB(PgGroup) *one) {
  size_t np = 0;
  for (size_t i = 0; i < ng; i++) np += g[i].npids;
  size_t gsz = one ? 0 : ng * (sizeof(PB(PgGroup)) + sizeof(PB(PgGroup) *));
  size_t total = gsz + np * (sizeof(PB(Pid)) + sizeof(PB(Pid) *));
  if (total) {
    o->mem = ax__alloc(total);
    if (!o->mem) return AX_ENOMEM;
    o->mem_size = total;
  }
  uint8_t *mem = o->mem;
  PB(PgGroup) *gs = one ? one : (PB(PgGroup) *)(void *)mem;
  PB(PgGroup) **gp = mem_at(mem, one ? 0 : ng * sizeof(PB(PgGroup)));
  PB(Pid) *ps = mem_at(mem, gsz);
  PB(Pid) **pp = mem_at(mem, gsz + np * sizeof(PB(Pid)));
  for (size_t i = 0; i < ng; i++) {
    axon__wire__v1__pg_group__init(&gs[i]);
    gs[i].group = cs(g[i].group);
    gs[i].n_pids = g[i].npids;
    gs[i].pids = g[i].npids ? pp : NULL;
    for (size_t j = 0; j < g[i].npids; j++) *pp++ = to_pb_pid(&g[i].pids[j], ps++);
    if (!one) gp[i] = &gs[i];
  }
  if (!one) {
    o->u.pg_sync.n_groups = ng;
    o->u.pg_sync.groups = ng ? gp : NULL;
  }
  return AX_OK;
}

static ax_err to_pb_peers(pb_out *o, const ax__wpeer *p, size_t n) {
  size_t total = n * (sizeof(PB(Peer)) + sizeof(PB(Peer) *));
  if (total) {
    o->mem = ax__alloc(total);
    if (!o->mem) return AX_ENOMEM;
    o->mem_size = total;
  }
  PB(Peer) *ps = o->mem;
  PB(Peer) **pp = mem_at(o->mem, n * sizeof(PB(Peer)));
  for (size_t i = 0; i < n; i++) {
    axon__wire__v1__peer__init(&ps[i]);
    ps[i].name = cs(p[i].name);
    ps[i].incarnation = p[i].incarnation;
    ps[i].addr = cs(p[i].addr);
    pp[i] = &ps[i];
  }
  o->u.peers.n_peers = n;
  o->u.peers.peers = n ? pp : NULL;
  return AX_OK;
}

/* Builds the protobuf form of m (already validated). */
static ax_err to_pb(const ax__wmsg *m, pb_out *o) {
  const kind_info *ki = kind_get(m->kind);
  protobuf_c_message_init(ki->desc, &o->u);
  switch (m->kind) {
  case AX__K_HELLO:
    o->u.hello.version = m->u.hello.version;
    o->u.hello.name = cs(m->u.hello.name);
    o->u.hello.incarnation = m->u.hello.incarnation;
    o->u.hello.features = m->u.hello.features;
    o->u.hello.challenge.data = (uint8_t *)m->u.hello.challenge;
    o->u.hello.challenge.len = AX__CHALLENGE_LEN;
    o->u.hello.max_frame = m->u.hello.max_frame;
    o->u.hello.listen = cs(m->u.hello.listen);
    return AX_OK;
  case AX__K_CHALLENGE_REPLY:
    o->u.reply.mac.data = (uint8_t *)m->u.reply.mac;
    o->u.reply.mac.len = AX__MAC_LEN;
    o->u.reply.features = m->u.reply.features;
    return AX_OK;
  case AX__K_REJECT: o->u.reject.code = m->u.reject.code; return AX_OK;
  case AX__K_SEND:
  case AX__K_SEND_BEGIN:
    o->u.send.to = to_pb_pid(&m->u.send.to, &o->pid[0]);
    o->u.send.from = to_pb_pid(&m->u.send.from, &o->pid[1]);
    o->u.send.type = m->u.send.type;
    o->u.send.flags = m->u.send.flags;
    o->u.send.ref = m->u.send.ref;
    o->u.send.stream = m->u.send.stream;
    o->u.send.total = m->u.send.total;
    return AX_OK;
  case AX__K_SEND_MORE: o->u.more.stream = m->u.more.stream; return AX_OK;
  case AX__K_LINK:
  case AX__K_UNLINK:
    o->u.link.from = to_pb_pid(&m->u.link.from, &o->pid[0]);
    o->u.link.to = to_pb_pid(&m->u.link.to, &o->pid[1]);
    return AX_OK;
  case AX__K_EXIT:
    o->u.exit.from = to_pb_pid(&m->u.exit.from, &o->pid[0]);
    o->u.exit.to = to_pb_pid(&m->u.exit.to, &o->pid[1]);
    o->u.exit.reason = m->u.exit.reason;
    o->u.exit.link = m->u.exit.link;
    return AX_OK;
  case AX__K_MONITOR:
  case AX__K_DEMONITOR:
    o->u.monitor.watcher = to_pb_pid(&m->u.monitor.watcher, &o->pid[0]);
    o->u.monitor.target = to_pb_pid(&m->u.monitor.target, &o->pid[1]);
    o->u.monitor.ref = m->u.monitor.ref;
    return AX_OK;
  case AX__K_DOWN:
    o->u.down.ref = m->u.down.ref;
    o->u.down.pid = to_pb_pid(&m->u.down.pid, &o->pid[0]);
    o->u.down.watcher = to_pb_pid(&m->u.down.watcher, &o->pid[1]);
    o->u.down.reason = m->u.down.reason;
    return AX_OK;
  case AX__K_SPAWN_REQ:
    o->u.spawn_req.behaviour = cs(m->u.spawn_req.behaviour);
    o->u.spawn_req.requester = to_pb_pid(&m->u.spawn_req.requester, &o->pid[0]);
    o->u.spawn_req.ref = m->u.spawn_req.ref;
    o->u.spawn_req.options = m->u.spawn_req.options;
    return AX_OK;
  case AX__K_SPAWN_REPLY:
    o->u.spawn_reply.ref = m->u.spawn_reply.ref;
    o->u.spawn_reply.requester = to_pb_pid(&m->u.spawn_reply.requester, &o->pid[0]);
    o->u.spawn_reply.pid = to_pb_pid(&m->u.spawn_reply.pid, &o->pid[1]);
    o->u.spawn_reply.status = m->u.spawn_reply.status;
    return AX_OK;
  case AX__K_WHEREIS_REQ:
    o->u.whereis_req.name = cs(m->u.whereis_req.name);
    o->u.whereis_req.requester = to_pb_pid(&m->u.whereis_req.requester, &o->pid[0]);
    o->u.whereis_req.ref = m->u.whereis_req.ref;
    return AX_OK;
  case AX__K_WHEREIS_REPLY:
    o->u.whereis_reply.ref = m->u.whereis_reply.ref;
    o->u.whereis_reply.requester = to_pb_pid(&m->u.whereis_reply.requester, &o->pid[0]);
    o->u.whereis_reply.pid = to_pb_pid(&m->u.whereis_reply.pid, &o->pid[1]);
    return AX_OK;
  case AX__K_PG_JOIN:
  case AX__K_PG_LEAVE: return to_pb_groups(o, &m->u.pg, 1, &o->u.pg);
  case AX__K_PG_SYNC: return to_pb_groups(o, m->u.pg_sync.groups, m->u.pg_sync.ngroups, NULL);
  case AX__K_HEARTBEAT: o->u.heartbeat.seq = m->u.heartbeat.seq; return AX_OK;
  case AX__K_PEER_LIST: return to_pb_peers(o, m->u.peers.peers, m->u.peers.npeers);
  case AX__K_BYE: o->u.bye.reason = m->u.bye.reason; return AX_OK;
  case AX__K_ELECT: return AX_OK;
  }
  return AX_EINVAL;
}

/* Validates and converts; *hlen gets the packed header size. */
static ax_err encode_prep(const ax__wmsg *m, size_t payload_len, uint32_t max_frame, pb_out *o,
                          size_t *hlen, size_t *frame) {
  memset(o, 0, sizeof *o);
  const kind_info *ki = m ? kind_get(m->kind) : NULL;
  if (!ki || (!ki->payload && payload_len) || !wmsg_fields_ok(m, payload_len)) return AX_EINVAL;
  ax_err e = to_pb(m, o);
  if (e != AX_OK) return e;
  *hlen = protobuf_c_message_get_packed_size(&o->u.send.base);
  if (*hlen > HDR_MAX) return AX_ELIMIT;
  /* The length prefix counts kind, header_len, header and payload. */
  size_t body;
  if (!ax__size_add(AX__FRAME_MIN_LEN + *hlen, payload_len, &body) || body > max_frame)
    return AX_ELIMIT;
  *frame = body + 4;
  return AX_OK;
}

static void write_prefix(uint8_t *buf, int kind, size_t frame, size_t hlen) {
  put_u32(buf, (uint32_t)(frame - 4));
  buf[4] = (uint8_t)kind;
  put_u32(buf + 5, (uint32_t)hlen);
}

ax_err ax__wmsg_encode_hdr(const ax__wmsg *m, size_t payload_len, uint32_t max_frame, uint8_t *buf,
                           size_t cap, size_t *len) {
  if (!m || !len || (!buf && cap)) return AX_EINVAL;
  pb_out o;
  size_t hlen, frame;
  ax_err e = encode_prep(m, payload_len, max_frame, &o, &hlen, &frame);
  if (e == AX_OK) {
    *len = AX__FRAME_PREFIX + hlen;
    if (cap < *len) {
      e = AX_ENOBUFS;
    } else {
      write_prefix(buf, m->kind, frame, hlen);
      protobuf_c_message_pack(&o.u.send.base, buf + AX__FRAME_PREFIX);
    }
  }
  ax__free(o.mem, o.mem_size);
  return e;
}

ax_err ax__wmsg_encode(const ax__wmsg *m, uint32_t max_frame, uint8_t **out, size_t *out_len) {
  if (!m || !out || !out_len || (!m->payload && m->payload_len)) return AX_EINVAL;
  pb_out o;
  size_t hlen, frame;
  ax_err e = encode_prep(m, m->payload_len, max_frame, &o, &hlen, &frame);
  if (e == AX_OK) {
    uint8_t *buf = ax__alloc(frame);
    if (!buf) {
      e = AX_ENOMEM;
    } else {
      write_prefix(buf, m->kind, frame, hlen);
      protobuf_c_message_pack(&o.u.send.base, buf + AX__FRAME_PREFIX);
      if (m->payload_len) memcpy(buf + AX__FRAME_PREFIX + hlen, m->payload, m->payload_len);
      *out = buf;
      *out_len = frame;
    }
  }
  ax__free(o.mem, o.mem_size);
  return e;
}
