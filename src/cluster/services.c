/* Axon: the cluster's request services (docs/cluster.md "Services"):
 * remote whereis (ax_whereis_on, ax_node_whereis), the behaviour registry
 * and spawn by behaviour name (ax_behaviour_register, ax_spawn_on,
 * ax_node_spawn), and the frames that carry them (WHEREIS_REQ/REPLY,
 * SPAWN_REQ/REPLY). A request goes from the requester (an actor, or an
 * ax_call proxy for the blocking forms) to the node's service actor
 * (ax.node.svc) as a runtime request, so the requester's own request
 * machinery (ref, timeout, reply) handles the answer; the service actor
 * writes the frame to the peer and records the ref in the peer's pending
 * map, so a node down ends it at once. The answering node serves the frame
 * on its connection actor. Process groups are in pg.c. */
#include <stdio.h>
#include <string.h>

#include "cluster/node_int.h"

enum { OP_WHEREIS = 1, OP_SPAWN = 2 };

/* The request the service actor receives (followed by the spawn arg). */
typedef struct svc_req {
  uint32_t op, options;
  char node[AX__NAME_MAX + 1];
  char name[AX__NAME_MAX + 1];
} svc_req;

typedef struct beh {
  char name[AX__NAME_MAX + 1];
  const ax_actor_spec *user;
  ax_actor_spec wrapped; /* user's, with init = wrap_init */
} beh;

struct ax__svc {
  pthread_mutex_t mu; /* behs */
  beh **behs;
  size_t nbehs, capbehs;
  uint64_t pid; /* the service actor */
};

/* What wrap_init gets before the user's argument. Built by this node only
 * (never from the wire), so the pointer is ours. */
typedef struct spawn_hdr {
  const beh *b;
  ax__cluster *cl;
  uint64_t requester;
  uint32_t options;
  ax_ref ref;     /* the request's ref (the monitor's ref) */
  ax__peer *peer; /* the requester's node (NULL: this node) */
  bool *replied;  /* set when init wrote the SPAWN_REPLY */
} spawn_hdr;

static bool name_ok(const char *s) {
  if (!s) return false;
  size_t n = strnlen(s, AX__NAME_MAX + 1);
  if (n == 0 || n > AX__NAME_MAX) return false;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) return false;
  return true;
}

static ax__cluster *cl_running(ax_system *sys) {
  ax__cluster *cl = sys ? ax__layer_get(sys, AX__LAYER_CLUSTER) : NULL;
  return cl && atomic_load(&cl->state) == 1 && cl->svc ? cl : NULL;
}

ax__peer *ax__cl_peer_up(ax__cluster *cl, const char *name) {
  ax__peer *p = NULL;
  uint32_t idx;
  pthread_mutex_lock(&cl->mu);
  if (ax__nodes_find_name(cl->nodes, name, &idx, NULL) == AX_OK) {
    p = atomic_load(&cl->peers[idx]);
    if (p && !atomic_load(&p->up)) p = NULL;
  }
  pthread_mutex_unlock(&cl->mu);
  return p;
}

/* Writes SPAWN_REPLY {ref, who, pid, status} to peer p (sender `pid`: behind
 * anything that actor already sent). */
static void spawn_reply(ax__cluster *cl, ax__peer *p, uint64_t who, ax_ref ref, uint64_t pid,
                        ax_err status) {
  char nb[AX__NAME_MAX + 1], nb2[AX__NAME_MAX + 1];
  ax__wmsg r;
  memset(&r, 0, sizeof r);
  r.kind = AX__K_SPAWN_REPLY;
  r.u.spawn_reply.status = (uint32_t)status;
  r.u.spawn_reply.ref = ref;
  ax__cl_pid_out(cl, p, who, &r.u.spawn_reply.requester, nb2);
  ax__cl_pid_out(cl, p, pid, &r.u.spawn_reply.pid, nb);
  ax__cl_ctl_write(cl, p, pid, &r);
}

/* A spawn with the monitor option that spawned nothing: its one DOWN
 * (noproc, or noconnection when the node is not there), so the requester's
 * monitor ends. */
static void spawn_down(ax__cluster *cl, uint64_t who, ax_ref ref, ax_reason reason) {
  ax_down_info d = {.ref = ref, .pid = AX_PID_NONE, .reason = reason};
  ax__send_sys(cl->sys, 0, who, AX_MSG_DOWN, 0, 0, &d, sizeof d, NULL);
}

/* ---- spawning a registered behaviour ---- */

static ax_err wrap_init(ax_actor *self, void *state, const void *arg, size_t len) {
  spawn_hdr h;
  if (len < sizeof h) return AX_EINVAL;
  memcpy(&h, arg, sizeof h);
  const void *ua = len > sizeof h ? (const char *)arg + sizeof h : NULL;
  if (h.b->user->init) {
    ax_err e = h.b->user->init(self, state, ua, len - sizeof h);
    if (e != AX_OK) return e;
  }
  /* After a successful init, so a failed one sends the requester no exit
   * (the reply carries the error), as ax_spawn_link. */
  if ((h.options & AX_SPAWN_LINK) && h.requester) {
    ax_err e = ax_link(self, (ax_pid){h.requester});
    if (e != AX_OK) return e;
  }
  uint64_t me = ax_self(self).id;
  if ((h.options & AX_SPAWN_MONITOR) && h.requester) {
    /* The requester watches us under the request's ref, as if it had sent
     * MONITOR: our DOWN reaches it when we stop (noconnection if its node
     * goes down first, from its side). */
    if (h.peer) {
      pthread_mutex_lock(&h.peer->tmu);
      bool ok = ax__u64map_put(&h.peer->mi_w, h.ref, h.requester);
      if (ok && !ax__u64map_put(&h.peer->mi_t, h.ref, me)) {
        ax__u64map_del(&h.peer->mi_w, h.ref, NULL);
        ok = false;
      }
      pthread_mutex_unlock(&h.peer->tmu);
      if (!ok) return AX_ENOMEM;
    }
    ax_down_info d = {.ref = h.ref, .pid = {h.requester}};
    ax_err e = ax__signal(h.cl->sys, h.requester, me, AX__SIG_MONITOR, &d, sizeof d);
    if (e != AX_OK) return e;
  }
  if (h.peer && h.replied) {
    /* The reply now, before the new actor can run: it precedes anything
     * the actor sends (messages, its EXIT, its DOWN). */
    spawn_reply(h.cl, h.peer, h.requester, h.ref, me, AX_OK);
    *h.replied = true;
  }
  return AX_OK;
}

static beh *beh_find(struct ax__svc *s, const char *name) {
  for (size_t i = 0; i < s->nbehs; i++)
    if (strcmp(s->behs[i]->name, name) == 0) return s->behs[i];
  return NULL;
}

/* Spawns behaviour `name` for requester (a pid as this node numbers it).
 * remote: the request came from another node (allow_remote_spawn). */
static ax_err serve_spawn(ax__cluster *cl, uint64_t requester, const char *name, uint32_t options,
                          const void *arg, size_t len, ax__peer *peer, ax_ref ref, bool *replied,
                          ax_pid *out) {
  bool remote = peer != NULL;
  struct ax__svc *s = cl->svc;
  *out = AX_PID_NONE;
  ax_err e = AX_OK;
  beh *b = NULL;
  if (remote && !cl->allow_spawn) e = AX_ENOTSUP;
  else if (len > AX_SPAWN_ARG_MAX || (options & ~(uint32_t)(AX_SPAWN_LINK | AX_SPAWN_MONITOR)))
    e = AX_EINVAL;
  else {
    pthread_mutex_lock(&s->mu);
    b = beh_find(s, name); /* entries live until the layer's fini */
    pthread_mutex_unlock(&s->mu);
    if (!b) e = AX_ENOTFOUND;
  }
  if (e != AX_OK) {
    AX__CL_STAT(cl, spawn_refused, 1);
    ax_log(cl->sys, AX_LOG_INFO, "cluster %s: spawn of \"%s\" refused: %s", cl->name, name,
           ax_err_name(e));
    return e;
  }
  size_t n = sizeof(spawn_hdr) + len;
  uint8_t *buf = ax__alloc(n);
  if (!buf) return AX_ENOMEM;
  spawn_hdr h = {.b = b,
                 .cl = cl,
                 .requester = requester,
                 .options = options,
                 .ref = ref,
                 .peer = peer,
                 .replied = replied};
  memcpy(buf, &h, sizeof h);
  if (len) memcpy(buf + sizeof h, arg, len);
  e = ax_system_spawn(cl->sys, &b->wrapped, buf, n, out);
  ax__free(buf, n);
  if (e == AX_OK) AX__CL_STAT(cl, spawned, 1);
  else AX__CL_STAT(cl, spawn_refused, 1);
  return e;
}

/* ---- answering a requester ---- */

static void answer(ax__cluster *cl, uint64_t who, uint32_t type, ax_ref ref, ax_pid pid,
                   ax_err status) {
  ax_node_reply r;
  memset(&r, 0, sizeof r);
  r.pid = pid;
  r.status = (int32_t)status;
  /* A reply (not a system message): the requester's run loop matches it
   * with its timed request and cancels the timer. */
  ax__send(cl->sys, ax__ctx_get(), 0, (ax_pid){who}, type, AX_MSGF_REPLY, ref, &r, sizeof r, NULL);
}

/* The node is not there (or went away): the request ends as one that a
 * node down ends (docs/cluster.md). */
static void answer_gone(ax__cluster *cl, uint64_t who, ax_ref ref) {
  ax_node_timeout nt = {AX_REASON_NOCONNECTION};
  ax__send(cl->sys, ax__ctx_get(), 0, (ax_pid){who}, AX_MSG_TIMEOUT, AX_MSGF_REPLY, ref, &nt,
           sizeof nt, NULL);
}

/* ---- the service actor ---- */

static ax_err svc_behave(ax_actor *self, const ax_msg *msg) {
  ax__cluster *cl = *(ax__cluster **)ax_state(self);
  svc_req r;
  if (msg->type != AX__CL_SVC || !(msg->flags & AX_MSGF_REQUEST) || msg->len < sizeof r ||
      ax_pid_is_none(msg->from))
    return AX_OK;
  memcpy(&r, msg->data, sizeof r);
  const uint8_t *arg = (const uint8_t *)msg->data + sizeof r;
  size_t alen = msg->len - sizeof r;
  uint64_t who = msg->from.id;
  ax_ref ref = msg->ref;
  uint32_t rtype = r.op == OP_WHEREIS ? AX_MSG_WHEREIS_REPLY : AX_MSG_SPAWN_REPLY;
  if (strcmp(r.node, cl->name) == 0) { /* this node: served here, same answers */
    ax_pid pid = AX_PID_NONE;
    ax_err e = r.op == OP_WHEREIS
                   ? ax_whereis(cl->sys, r.name, &pid)
                   : serve_spawn(cl, who, r.name, r.options, arg, alen, NULL, ref, NULL, &pid);
    answer(cl, who, rtype, ref, pid, e);
    if (e != AX_OK && r.op == OP_SPAWN && (r.options & AX_SPAWN_MONITOR))
      spawn_down(cl, who, ref, AX_REASON_NOPROC);
    return AX_OK;
  }
  bool mon = r.op == OP_SPAWN && (r.options & AX_SPAWN_MONITOR);
  ax__peer *p = ax__cl_peer_up(cl, r.node);
  if (!p) {
    answer_gone(cl, who, ref);
    if (mon) spawn_down(cl, who, ref, AX_REASON_NOCONNECTION);
    return AX_OK;
  }
  pthread_mutex_lock(&p->wmu);
  uint64_t feats = p->features;
  pthread_mutex_unlock(&p->wmu);
  if (r.op == OP_SPAWN && !(feats & AX__FEAT_SPAWN)) {
    answer(cl, who, rtype, ref, AX_PID_NONE, AX_ENOTSUP);
    if (mon) spawn_down(cl, who, ref, AX_REASON_NOPROC);
    return AX_OK;
  }
  ax__wmsg m;
  memset(&m, 0, sizeof m);
  char nb[AX__NAME_MAX + 1];
  if (r.op == OP_WHEREIS) {
    m.kind = AX__K_WHEREIS_REQ;
    m.u.whereis_req.name = r.name;
    m.u.whereis_req.ref = ref;
    ax__cl_pid_out(cl, p, who, &m.u.whereis_req.requester, nb);
  } else {
    m.kind = AX__K_SPAWN_REQ;
    m.u.spawn_req.behaviour = r.name;
    m.u.spawn_req.ref = ref;
    m.u.spawn_req.options = r.options & (AX__SPAWN_LINK | AX__SPAWN_MONITOR);
    ax__cl_pid_out(cl, p, who, &m.u.spawn_req.requester, nb);
    m.payload = arg;
    m.payload_len = alen;
  }
  /* Pending before the frame goes out: a fast answer finds it, and a node
   * down after the write ends it. */
  /* A spawn monitor is tracked like a MONITOR sent (target unknown until
   * the reply), so a node down ends it with DOWN noconnection. */
  pthread_mutex_lock(&p->tmu);
  bool ok = ax__u64map_put(&p->pend, ref, who);
  if (ok && mon && ax__u64map_put(&p->mo_w, ref, who) && !ax__u64map_put(&p->mo_t, ref, 0))
    ax__u64map_del(&p->mo_w, ref, NULL);
  if (ok && mon && !ax__u64map_get(&p->mo_w, ref, NULL)) {
    ax__u64map_del(&p->pend, ref, NULL);
    ok = false;
  }
  pthread_mutex_unlock(&p->tmu);
  ax_err e = ok ? ax__cl_ctl_write(cl, p, who, &m) : AX_ENOMEM;
  if (e != AX_OK) {
    pthread_mutex_lock(&p->tmu);
    bool mine = !ok || ax__u64map_del(&p->pend, ref, NULL);
    if (mine && mon) {
      ax__u64map_del(&p->mo_w, ref, NULL);
      ax__u64map_del(&p->mo_t, ref, NULL);
    }
    pthread_mutex_unlock(&p->tmu);
    if (!mine) return AX_OK; /* a node down took it and answered */
    if (e == AX_ENOACTOR) answer_gone(cl, who, ref);
    else answer(cl, who, rtype, ref, AX_PID_NONE, e);
    if (mon) spawn_down(cl, who, ref, e == AX_ENOACTOR ? AX_REASON_NOCONNECTION : AX_REASON_NOPROC);
  }
  return AX_OK;
}

static ax_err svc_init(ax_actor *self, void *state, const void *arg, size_t len) {
  (void)self;
  (void)len;
  memcpy(state, arg, sizeof(ax__cluster *));
  return AX_OK;
}

static const ax_actor_spec svc_spec = {
    .name = "ax.node.svc", .behaviour = svc_behave, .state_size = sizeof(void *), .init = svc_init};

ax_err ax__cl_svc_start(ax__cluster *cl) {
  ax_err e = ax__cl_pg_init(cl);
  if (e != AX_OK) return e;
  struct ax__svc *s = ax__calloc(sizeof(*s));
  if (!s) return AX_ENOMEM;
  pthread_mutex_init(&s->mu, NULL);
  ax__cluster *arg = cl;
  ax_pid pid;
  e = ax_system_spawn(cl->sys, &svc_spec, &arg, sizeof arg, &pid);
  if (e != AX_OK) {
    pthread_mutex_destroy(&s->mu);
    ax__free(s, sizeof(*s));
    return e;
  }
  s->pid = pid.id;
  cl->svc = s;
  return AX_OK;
}

void ax__cl_svc_fini(ax__cluster *cl) {
  struct ax__svc *s = cl->svc;
  ax__cl_pg_fini(cl);
  if (!s) return;
  for (size_t i = 0; i < s->nbehs; i++) ax__free(s->behs[i], sizeof(beh));
  if (s->behs) ax__free(s->behs, sizeof(beh *) * s->capbehs);
  pthread_mutex_destroy(&s->mu);
  ax__free(s, sizeof(*s));
  cl->svc = NULL;
}

/* ---- frames ---- */

bool ax__cl_svc_frame(ax__cluster *cl, ax__peer *p, uint64_t conn_pid, const ax__wmsg *m) {
  ax_system *sys = cl->sys;
  char nb[AX__NAME_MAX + 1], nb2[AX__NAME_MAX + 1];
  switch (m->kind) {
  case AX__K_WHEREIS_REQ:
  case AX__K_SPAWN_REQ: {
    bool wh = m->kind == AX__K_WHEREIS_REQ;
    const ax__wpid *rq = wh ? &m->u.whereis_req.requester : &m->u.spawn_req.requester;
    uint64_t who = ax__cl_pid_in(cl, p, rq);
    if (!who || ax__pid_node(who) == cl->self_idx) { /* nobody to answer */
      AX__CL_STAT(cl, unknown_pid, 1);
      return true;
    }
    ax_pid pid = AX_PID_NONE;
    if (wh) {
      ax__wmsg r;
      memset(&r, 0, sizeof r);
      ax_whereis(sys, m->u.whereis_req.name, &pid);
      r.kind = AX__K_WHEREIS_REPLY;
      r.u.whereis_reply.ref = m->u.whereis_req.ref;
      ax__cl_pid_out(cl, p, who, &r.u.whereis_reply.requester, nb2);
      ax__cl_pid_out(cl, p, pid.id, &r.u.whereis_reply.pid, nb);
      ax__cl_ctl_write(cl, p, 0, &r);
    } else {
      /* A successful spawn's reply is written by the new actor's init
       * (wrap_init: after its LINK, before anything it can send later). */
      bool replied = false;
      ax_err e = serve_spawn(cl, who, m->u.spawn_req.behaviour, m->u.spawn_req.options,
                             m->payload, m->payload_len, p, m->u.spawn_req.ref, &replied, &pid);
      if (!replied) spawn_reply(cl, p, who, m->u.spawn_req.ref, e == AX_OK ? pid.id : 0, e);
    }
    (void)conn_pid;
    return true;
  }
  case AX__K_WHEREIS_REPLY:
  case AX__K_SPAWN_REPLY: {
    bool wh = m->kind == AX__K_WHEREIS_REPLY;
    uint64_t who = ax__cl_pid_in(cl, p, wh ? &m->u.whereis_reply.requester
                                            : &m->u.spawn_reply.requester);
    uint64_t ref = wh ? m->u.whereis_reply.ref : m->u.spawn_reply.ref, pend = 0;
    uint64_t pid = ax__cl_pid_in(cl, p, wh ? &m->u.whereis_reply.pid : &m->u.spawn_reply.pid);
    /* Only an answer to a request we sent to this peer reaches anyone. */
    pthread_mutex_lock(&p->tmu);
    bool mine = who && ax__u64map_get(&p->pend, ref, &pend) && pend == who;
    if (mine) ax__u64map_del(&p->pend, ref, NULL);
    pthread_mutex_unlock(&p->tmu);
    if (!mine) {
      AX__CL_STAT(cl, unknown_pid, 1);
      return true;
    }
    ax_err st;
    bool down = false;
    if (wh) st = pid ? AX_OK : AX_ENOTFOUND;
    else {
      st = (ax_err)m->u.spawn_reply.status;
      if (st == AX_OK && !pid) st = AX_ENOTFOUND; /* a pid we cannot name */
      if (st != AX_OK) pid = 0;
      /* A spawn monitor: on its target now, or ended (nothing spawned). */
      uint64_t w = 0;
      pthread_mutex_lock(&p->tmu);
      if (ax__u64map_get(&p->mo_w, ref, &w) && w == who) {
        if (st == AX_OK) {
          ax__u64map_put(&p->mo_t, ref, pid); /* the key exists: no allocation */
        } else {
          ax__u64map_del(&p->mo_w, ref, NULL);
          ax__u64map_del(&p->mo_t, ref, NULL);
          down = true;
        }
      }
      pthread_mutex_unlock(&p->tmu);
    }
    answer(cl, who, wh ? AX_MSG_WHEREIS_REPLY : AX_MSG_SPAWN_REPLY, ref, (ax_pid){pid}, st);
    if (down) spawn_down(cl, who, ref, AX_REASON_NOPROC);
    return true;
  }
  default: return ax__cl_pg_frame(cl, p, conn_pid, m);
  }
}

/* ---- public API ---- */

ax_err ax_behaviour_register(ax_system *sys, const char *name, const ax_actor_spec *spec) {
  if (!sys || !name || !spec || !spec->behaviour || !name_ok(name)) return AX_EINVAL;
  ax__cluster *cl = cl_running(sys);
  if (!cl) return AX_ESTATE;
  struct ax__svc *s = cl->svc;
  ax_err e = AX_OK;
  pthread_mutex_lock(&s->mu);
  if (beh_find(s, name)) e = AX_EEXIST;
  else if (s->nbehs >= AX_BEHAVIOURS_MAX) e = AX_ELIMIT;
  else if (s->nbehs == s->capbehs) {
    size_t nc = s->capbehs ? s->capbehs * 2 : 8;
    beh **nb = ax__realloc(s->behs, sizeof(beh *) * s->capbehs, sizeof(beh *) * nc);
    if (!nb) e = AX_ENOMEM;
    else {
      s->behs = nb;
      s->capbehs = nc;
    }
  }
  if (e == AX_OK) {
    beh *b = ax__calloc(sizeof(*b));
    if (!b) e = AX_ENOMEM;
    else {
      snprintf(b->name, sizeof b->name, "%s", name);
      b->user = spec;
      b->wrapped = *spec;
      b->wrapped.init = wrap_init;
      s->behs[s->nbehs++] = b;
    }
  }
  pthread_mutex_unlock(&s->mu);
  return e;
}

/* Checks and builds a request; *req is allocated (size *n). */
static ax_err make_req(ax__cluster *cl, uint32_t op, const char *node, const char *name,
                       uint32_t options, const void *arg, size_t len, svc_req **req, size_t *n) {
  if (!node || !name || !name_ok(name) || ax__node_name_check(node) != AX_OK || (len && !arg))
    return AX_EINVAL;
  if (len > AX_SPAWN_ARG_MAX) return AX_ELIMIT;
  if (strcmp(node, cl->name) != 0 && !ax__cl_peer_up(cl, node)) {
    AX__CL_STAT(cl, no_node, 1);
    return AX_ENOACTOR;
  }
  *n = sizeof(svc_req) + len;
  svc_req *r = ax__calloc(*n);
  if (!r) return AX_ENOMEM;
  r->op = op;
  r->options = options;
  snprintf(r->node, sizeof r->node, "%s", node);
  snprintf(r->name, sizeof r->name, "%s", name);
  if (len) memcpy(r + 1, arg, len);
  *req = r;
  return AX_OK;
}

static ax_err request(ax_actor *self, uint32_t op, const char *node, const char *name,
                      uint32_t options, const void *arg, size_t len, uint32_t timeout_ms,
                      ax_ref *ref_out) {
  if (!self) return AX_EINVAL;
  ax__cluster *cl = cl_running(ax_actor_system(self));
  if (!cl) return AX_ESTATE;
  svc_req *r;
  size_t n;
  ax_err e = make_req(cl, op, node, name, options, arg, len, &r, &n);
  if (e != AX_OK) return e;
  e = ax__request(self, (ax_pid){cl->svc->pid}, AX__CL_SVC, r, n, timeout_ms, ref_out);
  ax__free(r, n);
  if (e == AX_ENOACTOR) e = AX_ECLOSED; /* the service actor is gone: stopping */
  return e;
}

static ax_err call(ax_system *sys, uint32_t op, const char *node, const char *name,
                   const void *arg, size_t len, uint32_t timeout_ms, ax_pid *out) {
  if (!sys || !out) return AX_EINVAL;
  ax__cluster *cl = cl_running(sys);
  if (!cl) return AX_ESTATE;
  svc_req *r;
  size_t n;
  ax_err e = make_req(cl, op, node, name, 0, arg, len, &r, &n);
  if (e != AX_OK) return e;
  union {
    ax_node_reply r;
    ax_node_timeout t;
  } rep;
  size_t rl = sizeof rep;
  uint32_t rtype = 0;
  e = ax__call(sys, (ax_pid){cl->svc->pid}, AX__CL_SVC, r, n, timeout_ms, &rep, &rl, &rtype);
  ax__free(r, n);
  if (e != AX_OK) return e == AX_ENOACTOR ? AX_ECLOSED : e;
  if (rtype == AX_MSG_TIMEOUT) return AX_ENOACTOR; /* the node went down */
  if (rl != sizeof rep.r) return AX_EINVAL;
  if (rep.r.status == AX_OK) *out = rep.r.pid;
  return (ax_err)rep.r.status;
}

ax_err ax_whereis_on(ax_actor *self, const char *node, const char *name, uint32_t timeout_ms,
                     ax_ref *ref_out) {
  return request(self, OP_WHEREIS, node, name, 0, NULL, 0, timeout_ms, ref_out);
}

ax_err ax_node_whereis(ax_system *sys, const char *node, const char *name, uint32_t timeout_ms,
                       ax_pid *out) {
  return call(sys, OP_WHEREIS, node, name, NULL, 0, timeout_ms, out);
}

ax_err ax_spawn_on(ax_actor *self, const char *node, const char *behaviour, const void *arg,
                   size_t len, uint32_t flags, uint32_t timeout_ms, ax_ref *ref_out) {
  if (flags & ~(uint32_t)(AX_SPAWN_LINK | AX_SPAWN_MONITOR)) return AX_EINVAL;
  ax_ref ref = 0;
  ax_err e = request(self, OP_SPAWN, node, behaviour, flags, arg, len, timeout_ms, &ref);
  if (e != AX_OK) return e;
  if (ref_out) *ref_out = ref;
  /* The DOWN of the spawn monitor comes under the request's ref: accepted
   * as one of self's monitors (the request is out: on failure here the
   * DOWN will be dropped, and the caller hears AX_ENOMEM). */
  if (flags & AX_SPAWN_MONITOR) return ax__monitor_expect(self, ref, 0);
  return AX_OK;
}

ax_err ax_node_spawn(ax_system *sys, const char *node, const char *behaviour, const void *arg,
                     size_t len, uint32_t timeout_ms, ax_pid *out) {
  return call(sys, OP_SPAWN, node, behaviour, arg, len, timeout_ms, out);
}
