/* Axon: the node runtime: ax_node_* (include/axon/cluster.h), the cluster
 * layer (AX__LAYER_CLUSTER), the manager actor that owns the listener, the
 * dial list, node monitors, pid translation. The connection actors, the
 * dispatcher and the route are in conn.c. See docs/cluster.md. */
#include <errno.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cluster/node_int.h"

/* ---- a set of pid pairs ---- */

static uint64_t pair_hash(uint64_t a, uint64_t b) {
  uint64_t h = a * 0x9e3779b97f4a7c15ull ^ (b + 0x632be59bd9b4e019ull + (a << 6));
  return h ^ (h >> 29);
}

static bool pairset_grow(ax__pairset *s) {
  uint32_t ncap = s->cap ? s->cap * 2 : 16;
  if (s->count * 4 < s->cap) ncap = s->cap; /* mostly tombstones: rehash in place size */
  uint64_t(*nk)[2] = ax__calloc(sizeof(*nk) * ncap);
  if (!nk) return false;
  for (uint32_t i = 0; i < s->cap; i++) {
    if (s->k[i][0] < 2) continue;
    uint32_t j = (uint32_t)pair_hash(s->k[i][0], s->k[i][1]) & (ncap - 1);
    while (nk[j][0]) j = (j + 1) & (ncap - 1);
    nk[j][0] = s->k[i][0];
    nk[j][1] = s->k[i][1];
  }
  if (s->k) ax__free(s->k, sizeof(*s->k) * s->cap);
  s->k = nk;
  s->cap = ncap;
  s->used = s->count;
  return true;
}

bool ax__pairset_put(ax__pairset *s, uint64_t a, uint64_t b) {
  if ((s->used + 1) * 4 > s->cap * 3 && !pairset_grow(s)) return false;
  uint32_t j = (uint32_t)pair_hash(a, b) & (s->cap - 1), tomb = UINT32_MAX;
  while (s->k[j][0]) {
    if (s->k[j][0] == a && s->k[j][1] == b) return true;
    if (s->k[j][0] == 1 && tomb == UINT32_MAX) tomb = j;
    j = (j + 1) & (s->cap - 1);
  }
  if (tomb != UINT32_MAX) j = tomb;
  else s->used++;
  s->k[j][0] = a;
  s->k[j][1] = b;
  s->count++;
  return true;
}

bool ax__pairset_del(ax__pairset *s, uint64_t a, uint64_t b) {
  if (!s->cap) return false;
  uint32_t j = (uint32_t)pair_hash(a, b) & (s->cap - 1);
  while (s->k[j][0]) {
    if (s->k[j][0] == a && s->k[j][1] == b) {
      s->k[j][0] = 1;
      s->k[j][1] = 0;
      s->count--;
      return true;
    }
    j = (j + 1) & (s->cap - 1);
  }
  return false;
}

void ax__pairset_free(ax__pairset *s) {
  if (s->k) ax__free(s->k, sizeof(*s->k) * s->cap);
  *s = (ax__pairset){0};
}

/* ---- peers, pids ---- */

ax__peer *ax__cl_peer_make(ax__cluster *cl, uint32_t idx) {
  ax__peer *p = atomic_load_explicit(&cl->peers[idx], memory_order_acquire);
  if (p) return p;
  p = ax__calloc(sizeof(*p));
  if (!p) return NULL;
  p->idx = idx;
  pthread_mutex_init(&p->wmu, NULL);
  pthread_mutex_init(&p->tmu, NULL);
  p->next_stream = 1;
  atomic_store_explicit(&cl->peers[idx], p, memory_order_release);
  return p;
}

static void peer_free(ax__peer *p) {
  for (ax__clq *q = p->bq, *n; q; q = n) {
    n = q->next;
    if (q->buf) ax_buf_release(q->buf);
    if (q->bytes) ax__free(q->bytes, q->blen);
    ax__free(q, sizeof(*q));
  }
  ax__u64map_free(&p->senders);
  if (p->ob) ax__free(p->ob, AX__CL_OB_CAP);
  ax__pairset_free(&p->links);
  ax__u64map_free(&p->mo_w);
  ax__u64map_free(&p->mo_t);
  ax__u64map_free(&p->mi_w);
  ax__u64map_free(&p->mi_t);
  ax__u64map_free(&p->pend);
  pthread_mutex_destroy(&p->wmu);
  pthread_mutex_destroy(&p->tmu);
  ax__free(p, sizeof(*p));
}

#define ID_MASK ((UINT64_C(1) << (AX__GEN_BITS + AX__IDX_BITS)) - 1)

uint64_t ax__cl_pid_in(ax__cluster *cl, const ax__peer *p, const ax__wpid *w) {
  if (!w->id) return 0;
  switch (w->scope) {
  case AX__WPID_SENDER: return ax__pid_make(p->idx, 0, 0) | w->id;
  case AX__WPID_RECEIVER: return ax__pid_make(cl->self_idx, 0, 0) | w->id;
  default: break;
  }
  if (!w->node) return 0;
  if (w->incarnation == cl->incarnation && strcmp(w->node, cl->name) == 0)
    return ax__pid_make(cl->self_idx, 0, 0) | w->id;
  uint32_t idx = 0;
  pthread_mutex_lock(&cl->mu);
  ax_err e = ax__nodes_find(cl->nodes, w->node, w->incarnation, &idx);
  if (e == AX_ENOTFOUND) {
    uint32_t replaced = 0;
    e = ax__nodes_intern(cl->nodes, w->node, w->incarnation, &idx, &replaced);
    /* A node we only heard of: it is not connected, so nothing of the old
     * incarnation is live here (if it were, its connection finds out). */
  }
  pthread_mutex_unlock(&cl->mu);
  if ((e != AX_OK && e != AX_ECLOSED) || !idx) return 0;
  return ax__pid_make(idx, 0, 0) | w->id;
}

void ax__cl_pid_out(ax__cluster *cl, const ax__peer *p, uint64_t pid, ax__wpid *w,
                    char namebuf[AX__NAME_MAX + 1]) {
  *w = (ax__wpid){0};
  if (!pid) return;
  uint32_t node = ax__pid_node(pid);
  w->id = pid & ID_MASK;
  if (node == cl->self_idx || node == 0) {
    w->scope = AX__WPID_SENDER;
  } else if (node == p->idx) {
    w->scope = AX__WPID_RECEIVER;
  } else {
    const char *nm = NULL;
    uint64_t inc = 0;
    pthread_mutex_lock(&cl->mu);
    if (ax__nodes_get(cl->nodes, node, &nm, &inc, NULL) == AX_OK) {
      snprintf(namebuf, AX__NAME_MAX + 1, "%s", nm);
      w->scope = AX__WPID_NAMED;
      w->node = namebuf;
      w->incarnation = inc;
    } else {
      w->id = 0; /* a node never known: no pid */
    }
    pthread_mutex_unlock(&cl->mu);
  }
}

/* ---- node monitors ---- */

void ax__cl_notify(ax__cluster *cl, uint32_t type, const char *name, uint64_t inc, int reason) {
  ax_node_event ev;
  memset(&ev, 0, sizeof ev);
  snprintf(ev.name, sizeof ev.name, "%s", name);
  ev.incarnation = inc;
  ev.reason = reason;
  ax__subs_notify(&cl->nmons, cl->sys, type, name, &ev, sizeof ev);
}

/* ---- the manager: owns the listener, respawns lost diallers ---- */

static void dials_retry(ax__cluster *cl);

static ax_err mgr_behave(ax_actor *self, const ax_msg *m) {
  ax__cluster *cl = *(ax__cluster **)ax_state(self);
  if (m->type == AX_MSG_IO_ACCEPTED && m->len == sizeof(ax_io_conn_info)) {
    const ax_io_conn_info *info = m->data;
    ax_pid child;
    ax__conn_arg a = {.cl = cl, .conn = info->conn};
    if (atomic_load(&cl->state) != 1 ||
        ax_spawn(self, &ax__cl_conn_spec, &a, sizeof a, &child) != AX_OK) {
      ax_conn_abort(info->conn);
      return AX_OK;
    }
    if (ax_conn_set_owner(info->conn, child) != AX_OK) {
      ax_conn_abort(info->conn);
      ax_exit(self, child, AX_REASON_SHUTDOWN);
      return AX_OK;
    }
    ax_conn_resume_read(info->conn);
  } else if (m->type == AX_MSG_IO_ERROR && m->len == sizeof(ax_io_event)) {
    const ax_io_event *ev = m->data;
    ax_log(cl->sys, AX_LOG_WARN, "cluster %s: accept failed: %s", cl->name, strerror(ev->code));
  } else if (m->type == AX__CL_TICK) {
    dials_retry(cl);
  }
  return AX_OK;
}

static ax_err mgr_init(ax_actor *self, void *state, const void *arg, size_t len) {
  (void)len;
  memcpy(state, arg, sizeof(ax__cluster *));
  ax__cluster *cl = *(ax__cluster **)state;
  /* A periodic tick, allocated once: it respawns the diallers lost to
   * out of memory (dials_retry). */
  return ax__send_interval(self, cl->tick_ms, 0, ax_self(self), AX__CL_TICK, NULL, 0, NULL);
}

static void mgr_terminate(ax_actor *self, void *state, ax_reason reason) {
  ax__cluster *cl = *(ax__cluster **)state;
  (void)reason;
  pthread_mutex_lock(&cl->mu);
  if (cl->mgr_pid == ax_self(self).id) cl->mgr_pid = 0;
  pthread_cond_broadcast(&cl->cv);
  pthread_mutex_unlock(&cl->mu);
}

static const ax_actor_spec mgr_spec = {.name = "ax.node",
                                       .behaviour = mgr_behave,
                                       .state_size = sizeof(void *),
                                       .init = mgr_init,
                                       .terminate = mgr_terminate};

/* ---- dialling ----
 *
 * A dial record (ax__dial) is what this node wants a link to; its dialler
 * actor redials with backoff while the record lives. A dialler that cannot
 * be spawned for memory leaves the record without one (pid 0) and the
 * manager's tick spawns it again: a dial lost to a failed allocation is
 * retried once memory is back (docs/hardening.md). */

/* The record for addr (or node name), made if missing; *fresh: made now.
 * NULL: out of memory. Under mu. */
static ax__dial *dial_record(ax__cluster *cl, const char *addr, const char *name, bool *fresh) {
  *fresh = false;
  for (ax__dial *d = cl->dials; d; d = d->next)
    if (strcmp(d->addr, addr) == 0 || (name && name[0] && strcmp(d->name, name) == 0)) {
      if (name && !d->name[0]) snprintf(d->name, sizeof d->name, "%s", name);
      return d;
    }
  ax__dial *d = ax__calloc(sizeof(*d));
  if (!d) return NULL;
  snprintf(d->addr, sizeof d->addr, "%s", addr);
  if (name) snprintf(d->name, sizeof d->name, "%s", name);
  d->next = cl->dials;
  cl->dials = d;
  *fresh = true;
  return d;
}

static void dial_unlink(ax__cluster *cl, ax__dial *d) {
  for (ax__dial **pp = &cl->dials; *pp; pp = &(*pp)->next)
    if (*pp == d) {
      *pp = d->next;
      ax__free(d, sizeof(*d));
      return;
    }
}

/* Frees the records without a dialler (and none being spawned) whose name
 * is `name` (NULL: all). Under mu. */
static void dials_drop_idle(ax__cluster *cl, const char *name) {
  for (ax__dial **pp = &cl->dials; *pp;) {
    ax__dial *d = *pp;
    if (!d->pid && !d->spawning && (!name || strcmp(d->name, name) == 0)) {
      *pp = d->next;
      ax__free(d, sizeof(*d));
    } else {
      pp = &d->next;
    }
  }
}

/* Spawns the dialler of record d, which the caller marked spawning under
 * mu (so d stays: only the spawner frees a spawning record). Its init sets
 * d->pid. Out of memory keeps d for the manager's tick while running; any
 * other failure (the node stopping) drops it. */
static ax_err dial_spawn(ax__cluster *cl, ax__dial *d) {
  char addr[AX__ADDR_MAX + 1], name[AX__NAME_MAX + 1];
  pthread_mutex_lock(&cl->mu);
  snprintf(addr, sizeof addr, "%s", d->addr);
  snprintf(name, sizeof name, "%s", d->name);
  pthread_mutex_unlock(&cl->mu);
  ax__conn_arg a = {.cl = cl, .addr = addr, .name = name[0] ? name : NULL, .dial = d};
  ax_pid pid;
  /* The dialler's init takes mu (to register): not held here. */
  ax_err e = ax_system_spawn(cl->sys, &ax__cl_conn_spec, &a, sizeof a, &pid);
  pthread_mutex_lock(&cl->mu);
  d->spawning = false;
  /* Out of memory (or of actor slots) passes: kept for the manager's tick. */
  bool keep = (e == AX_ENOMEM || e == AX_ELIMIT) && atomic_load(&cl->state) == 1;
  /* pid 0 after a spawn that worked: the dialler ended already (stopped). */
  if (!d->pid && !keep) dial_unlink(cl, d);
  pthread_mutex_unlock(&cl->mu);
  return e;
}

/* Spawns a dialler for every record without one (the manager's tick, and
 * the seeds at start). */
static void dials_retry(ax__cluster *cl) {
  for (;;) {
    ax__dial *todo = NULL;
    pthread_mutex_lock(&cl->mu);
    if (atomic_load(&cl->state) == 1)
      for (ax__dial *d = cl->dials; d && !todo; d = d->next)
        if (!d->pid && !d->spawning) todo = d;
    if (todo) todo->spawning = true;
    pthread_mutex_unlock(&cl->mu);
    ax_err e = todo ? dial_spawn(cl, todo) : AX_OK;
    if (!todo || e == AX_ENOMEM || e == AX_ELIMIT) return; /* the next tick tries again */
  }
}

ax_err ax__cl_dial(ax__cluster *cl, const char *addr, const char *name) {
  if (!addr || !addr[0] || strlen(addr) > AX__ADDR_MAX) return AX_EINVAL;
  if (atomic_load(&cl->state) != 1) return AX_ESTATE;
  if (cl->listening && strcmp(addr, cl->listen_addr) == 0) return AX_OK; /* ourselves */
  bool fresh;
  pthread_mutex_lock(&cl->mu);
  ax__dial *d = dial_record(cl, addr, name, &fresh);
  if (d && fresh) d->spawning = true;
  pthread_mutex_unlock(&cl->mu);
  if (!d) return AX_ENOMEM;
  if (!fresh) return AX_OK;
  ax_err e = dial_spawn(cl, d);
  return e == AX_ENOMEM || e == AX_ELIMIT ? AX_OK : e; /* kept: the manager's tick spawns it */
}

/* ---- the layer ---- */

static void cl_fini(ax_system *sys, void *state) {
  (void)sys;
  ax__cluster *cl = state;
  ax__route_set(cl->sys, NULL);
  ax__cl_svc_fini(cl);
  for (uint32_t i = 0; i <= AX__NODES_MAX; i++) {
    ax__peer *p = atomic_load(&cl->peers[i]);
    if (p) peer_free(p);
  }
  for (ax__dial *d = cl->dials, *n; d; d = n) {
    n = d->next;
    ax__free(d, sizeof(*d));
  }
  ax__subs_fini(&cl->nmons);
  ax__u64map_free(&cl->conns);
  ax__exit_kit_free(&cl->mgr_kit);
  ax__nodes_free(cl->nodes);
  ax__secret_wipe(&cl->secret);
  pthread_cond_destroy(&cl->cv);
  pthread_mutex_destroy(&cl->mu);
  ax__free(cl, sizeof(*cl));
}

static ax_err cl_start(ax_system *sys, void *arg, ax__layer *out) {
  ax__cluster *cl = ax__calloc(sizeof(*cl));
  (void)arg;
  if (!cl) return AX_ENOMEM;
  cl->sys = sys;
  pthread_mutex_init(&cl->mu, NULL);
  pthread_cond_init(&cl->cv, NULL);
  ax__subs_init(&cl->nmons);
  out->state = cl;
  out->on_actor_stop = ax__cl_on_actor_stop; /* pg members leave (pg.c) */
  out->fini = cl_fini;
  return AX_OK;
}

static ax__cluster *cl_get(ax_system *sys) {
  return sys ? ax__layer_get(sys, AX__LAYER_CLUSTER) : NULL;
}
static ax__cluster *cl_running(ax_system *sys) {
  ax__cluster *cl = cl_get(sys);
  return cl && atomic_load(&cl->state) == 1 ? cl : NULL;
}

/* ---- public API ---- */

void ax_node_config_init(ax_node_config *c) {
  if (!c) return;
  memset(c, 0, sizeof *c);
  c->heartbeat_ms = 1000;
  c->down_after_ms = 3000;
  c->max_frame = AX__MAX_FRAME_DEFAULT;
  c->send_queue_max = 8u * 1024 * 1024;
}

/* A Unix socket file left by a node that died without closing its
 * listener (kill -9) would make the bind fail: remove it when nothing
 * accepts on it (a connect is refused). A live listener's file, or any
 * file that is not a socket, stays (the bind then fails: AX_ESYS). */
static void clear_stale_socket(ax_system *sys, const char *addr) {
  if (strncmp(addr, "unix:", 5) != 0) return;
  struct sockaddr_un un;
  memset(&un, 0, sizeof un);
  un.sun_family = AF_UNIX;
  size_t n = strlen(addr + 5);
  struct stat st;
  if (n == 0 || n >= sizeof un.sun_path || lstat(addr + 5, &st) != 0 || !S_ISSOCK(st.st_mode))
    return;
  memcpy(un.sun_path, addr + 5, n);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  if (connect(fd, (struct sockaddr *)&un, sizeof un) != 0 && errno == ECONNREFUSED) {
    if (unlink(addr + 5) == 0)
      ax_log(sys, AX_LOG_INFO, "cluster: removed the stale socket file %s", addr + 5);
  }
  close(fd);
}

/* The first start on sys: the node number, the layer (state 3: being
 * started). */
static ax_err first_start(ax_system *sys, ax__cluster **out) {
  /* Node 1 is this node in its own table (the first index handed out). */
  ax_err e = ax__system_set_node(sys, 1);
  if (e != AX_OK) {
    if (e == AX_ESTATE)
      ax_log(sys, AX_LOG_ERROR, "ax_node_start: called after the first spawn (pids would lack "
                                "the node number): call it before spawning any actor");
    return e;
  }
  void *state = NULL;
  e = ax__layer_start(sys, AX__LAYER_CLUSTER, cl_start, NULL, &state);
  if (e != AX_OK) return e;
  ax__cluster *cl = state;
  int expect = 0;
  if (!atomic_compare_exchange_strong(&cl->state, &expect, 3)) return AX_ESTATE;
  *out = cl;
  return AX_OK;
}

static ax_err stop_wait(ax__cluster *cl);

ax_err ax_node_start(ax_system *sys, const ax_node_config *cfg) {
  if (!sys || !cfg) return AX_EINVAL;
  if (ax__node_name_check(cfg->name) != AX_OK) {
    ax_log(sys, AX_LOG_ERROR, "ax_node_start: bad node name (want name@host)");
    return AX_EINVAL;
  }
  if (!cfg->secret_file == !cfg->secret_env || !cfg->heartbeat_ms || !cfg->down_after_ms ||
      cfg->down_after_ms <= cfg->heartbeat_ms || cfg->max_frame < AX__MAX_FRAME_MIN ||
      (cfg->nseeds && !cfg->seeds) ||
      (cfg->listen && ax__cluster_addr_check(cfg->listen) != AX_OK)) {
    ax_log(sys, AX_LOG_ERROR,
           "ax_node_start: bad config (exactly one secret source, heartbeat_ms < down_after_ms, "
           "max_frame >= 4096, a valid listen address)");
    return AX_EINVAL;
  }
  for (size_t i = 0; i < cfg->nseeds; i++)
    if (!cfg->seeds[i] || ax__cluster_addr_check(cfg->seeds[i]) != AX_OK) return AX_EINVAL;
  /* Started before: a restart once the last stop has finished (its
   * connection actors and manager gone); not while running or stopping. */
  ax__cluster *cl = ax__layer_get(sys, AX__LAYER_CLUSTER);
  bool restart = cl != NULL;
  if (restart) {
    int expect = 2;
    pthread_mutex_lock(&cl->mu);
    bool idle = cl->conns.count == 0 && cl->mgr_pid == 0;
    bool ok = idle && atomic_compare_exchange_strong(&cl->state, &expect, 3);
    pthread_mutex_unlock(&cl->mu);
    if (!ok) return AX_ESTATE;
  }
  ax__secret sec;
  char why[256] = "";
  ax_pid mgr = AX_PID_NONE;
  ax_err e = cfg->secret_file ? ax__secret_from_file(cfg->secret_file, &sec, why, sizeof why)
                              : ax__secret_from_env(cfg->secret_env, &sec, why, sizeof why);
  if (e != AX_OK) {
    ax_log(sys, AX_LOG_ERROR, "ax_node_start: secret: %s", why);
    if (restart) atomic_store(&cl->state, 2);
    return e;
  }
  if (!restart) e = first_start(sys, &cl);
  if (e != AX_OK) {
    ax__secret_wipe(&sec);
    return e;
  }
  ax__secret_wipe(&cl->secret); /* a restart's old one */
  cl->secret = sec;
  ax__secret_wipe(&sec);
  uint64_t old_inc = cl->incarnation;
  if (strcmp(cl->name, cfg->name) != 0) snprintf(cl->name, sizeof cl->name, "%s", cfg->name);
  cl->hb_ms = cfg->heartbeat_ms;
  cl->down_ms = cfg->down_after_ms;
  cl->max_frame = cfg->max_frame;
  cl->sendq_max = cfg->send_queue_max ? cfg->send_queue_max : 8u * 1024 * 1024;
  cl->allow_spawn = cfg->allow_remote_spawn;
  cl->tick_ms = cl->hb_ms / 4;
  if (cl->tick_ms < 5) cl->tick_ms = 5;
  if (cl->tick_ms > 250) cl->tick_ms = 250;
  cl->hs_ms = cl->down_ms > 1000 ? cl->down_ms : 1000;
  cl->listening = false;
  cl->listen_addr[0] = 0;
  do {
    if (RAND_bytes((unsigned char *)&cl->incarnation, sizeof cl->incarnation) != 1) {
      e = AX_ESYS;
      goto fail;
    }
  } while (!cl->incarnation || cl->incarnation == old_inc);
  /* A first start that failed (out of memory) may have stopped before or
   * after it made the node table: a later start is a restart as far as the
   * layer goes, but makes the table if there is none. */
  if (cl->nodes) {
    /* Same index (1: carried by every local pid), new incarnation: peers
     * see a new node, local actors live on. */
    pthread_mutex_lock(&cl->mu);
    e = ax__nodes_rebind(cl->nodes, cl->self_idx, cl->name, cl->incarnation);
    pthread_mutex_unlock(&cl->mu);
    if (e != AX_OK) goto fail;
  } else {
    e = ax__nodes_new(AX__NODES_MAX, &cl->nodes);
    if (e != AX_OK) goto fail;
    e = ax__nodes_intern(cl->nodes, cl->name, cl->incarnation, &cl->self_idx, NULL);
    if (e == AX_OK && cl->self_idx != 1) e = AX_ESTATE;
    if (e != AX_OK) { /* no table without this node in it */
      ax__nodes_free(cl->nodes);
      cl->nodes = NULL;
      goto fail;
    }
  }
  ax__cluster *arg = cl;
  /* The manager's stop (should a step after its spawn fail, and at
   * ax_node_stop), built before it runs: a stop must not need memory
   * (docs/hardening.md). What a last stop used up is built again. */
  pthread_mutex_lock(&cl->mu);
  e = ax__exit_kit_fill(&cl->mgr_kit);
  pthread_mutex_unlock(&cl->mu);
  if (e == AX_OK) e = ax_system_spawn(sys, &mgr_spec, &arg, sizeof arg, &mgr);
  if (e != AX_OK) goto fail;
  pthread_mutex_lock(&cl->mu);
  cl->mgr_pid = mgr.id;
  pthread_mutex_unlock(&cl->mu);
  if (!cl->svc) {
    e = ax__cl_svc_start(cl); /* services.c: the service actor, groups */
    if (e != AX_OK) goto fail;
  }
  if (cfg->listen) {
    ax_io_opts o;
    ax_io_opts_init(&o);
    o.high_watermark = SIZE_MAX / 4; /* the cluster bounds its own queue (docs/cluster.md) */
    o.low_watermark = 0;
    /* A host name is resolved here (this call may block: the caller is a
     * plain thread). */
    char where[AX__ADDR_MAX + 1];
    e = ax__cluster_resolve(cfg->listen, where, sizeof where);
    if (e != AX_OK) {
      ax_log(sys, AX_LOG_ERROR, "ax_node_start: cannot resolve the listen address %s",
             cfg->listen);
      goto fail;
    }
    clear_stale_socket(sys, where);
    e = ax_system_listen(sys, mgr, where, &o, &cl->lst);
    if (e != AX_OK) goto fail;
    size_t n = sizeof cl->listen_addr;
    if (ax_listener_addr(cl->lst, cl->listen_addr, &n) != AX_OK) cl->listen_addr[0] = 0;
    cl->listening = true;
  }
  /* The seeds' dial records, made now (a start without them fails with
   * AX_ENOMEM); their diallers are spawned below and, where that fails for
   * memory, by the manager's tick. */
  pthread_mutex_lock(&cl->mu);
  for (size_t i = 0; i < cfg->nseeds && e == AX_OK; i++) {
    bool fresh;
    if (!cl->listening || strcmp(cfg->seeds[i], cl->listen_addr) != 0)
      e = dial_record(cl, cfg->seeds[i], NULL, &fresh) ? AX_OK : AX_ENOMEM;
  }
  pthread_mutex_unlock(&cl->mu);
  if (e != AX_OK) goto fail;
  if (!cl->route.send) /* set once (a restart keeps it: workers read it) */
    cl->route = (ax__route){.state = cl,
                            .send = ax__cl_route_send,
                            .signal = ax__cl_route_signal,
                            .flush = ax__cl_route_flush};
  ax__route_set(sys, &cl->route);
  atomic_store(&cl->state, 1);
  ax_log(sys, AX_LOG_INFO, "cluster: node %s started (listening on %s)", cl->name,
         cl->listening ? cl->listen_addr : "nothing");
  dials_retry(cl);
  return AX_OK;
fail:
  /* As if never started: the listener closed, the seeds' records gone,
   * the manager (if it runs) stopped and waited for, so that a retry (once
   * memory is back) is not refused with AX_ESTATE while it is still
   * stopping. */
  if (cl->listening) {
    ax_listener_close(cl->lst);
    cl->listening = false;
    cl->listen_addr[0] = 0;
  }
  pthread_mutex_lock(&cl->mu);
  dials_drop_idle(cl, NULL);
  if (mgr.id) (void)ax__exit_kit_send(sys, &cl->mgr_kit, 0, mgr.id, AX_REASON_SHUTDOWN);
  pthread_mutex_unlock(&cl->mu);
  if (mgr.id) (void)stop_wait(cl);
  ax__secret_wipe(&cl->secret);
  atomic_store(&cl->state, 2);
  return e;
}

/* Waits (bounded) until every connection actor and the manager have
 * ended: their terminate ran (node downs done, events sent). */
static ax_err stop_wait(ax__cluster *cl) {
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += 30;
  ax_err e = AX_OK;
  pthread_mutex_lock(&cl->mu);
  while (cl->conns.count || cl->mgr_pid) {
    if (pthread_cond_timedwait(&cl->cv, &cl->mu, &until) == ETIMEDOUT) {
      e = AX_ETIMEDOUT;
      break;
    }
  }
  pthread_mutex_unlock(&cl->mu);
  return e;
}

ax_err ax_node_stop(ax_system *sys) {
  ax__cluster *cl = cl_get(sys);
  int expect = 1;
  if (!cl || !atomic_compare_exchange_strong(&cl->state, &expect, 2)) return sys ? AX_ESTATE : AX_EINVAL;
  ax_log(sys, AX_LOG_INFO, "cluster: node %s stopping", cl->name);
  if (cl->listening) ax_listener_close(cl->lst);
  /* Every actor to stop, under mu: a connection actor starting after this
   * sees state 2 in its init and is refused. Each is stopped from its exit
   * kit, built before it ran (no allocation: out of memory cannot leave
   * one running). A kit lives in its actor's state, freed by its terminate
   * under mu: valid while mu is held and the actor is registered. */
  pthread_mutex_lock(&cl->mu);
  dials_drop_idle(cl, NULL); /* no dialler will be spawned for them now */
  if (cl->mgr_pid) (void)ax__exit_kit_send(sys, &cl->mgr_kit, 0, cl->mgr_pid, AX_REASON_SHUTDOWN);
  for (uint32_t i = 0; i < cl->conns.cap; i++)
    if (ax__u64map_live(&cl->conns, i))
      (void)ax__exit_kit_send(sys, (ax__exit_kit *)(uintptr_t)ax__u64map_val(&cl->conns, i), 0,
                              ax__u64map_key(&cl->conns, i), AX_REASON_SHUTDOWN);
  pthread_mutex_unlock(&cl->mu);
  /* An actor must not block: from a worker the stop goes on after the
   * return (ax_node_start refuses a restart until it has finished). */
  return ax__on_worker() ? AX_OK : stop_wait(cl);
}

ax_err ax_node_connect(ax_system *sys, const char *addr) {
  if (!sys || !addr) return AX_EINVAL;
  ax__cluster *cl = cl_running(sys);
  if (!cl) return AX_ESTATE;
  if (ax__cluster_addr_check(addr) != AX_OK) return AX_EINVAL;
  return ax__cl_dial(cl, addr, NULL);
}

ax_err ax_node_disconnect(ax_system *sys, const char *name) {
  if (!sys || !name) return AX_EINVAL;
  ax__cluster *cl = cl_running(sys);
  if (!cl) return AX_ESTATE;
  uint64_t pids[8];
  size_t n = 0;
  bool found = false;
  pthread_mutex_lock(&cl->mu);
  uint32_t idx;
  if (ax__nodes_find_name(cl->nodes, name, &idx, NULL) == AX_OK) {
    ax__peer *p = atomic_load(&cl->peers[idx]);
    if (p) {
      pthread_mutex_lock(&p->wmu);
      if (atomic_load(&p->up)) {
        pids[n++] = p->conn_pid;
        found = true;
      }
      pthread_mutex_unlock(&p->wmu);
    }
  }
  for (ax__dial *d = cl->dials; d && n < 8; d = d->next)
    if (strcmp(d->name, name) == 0 && d->pid) pids[n++] = d->pid;
  dials_drop_idle(cl, name); /* not redialled from this side */
  pthread_mutex_unlock(&cl->mu);
  for (size_t i = 0; i < n; i++)
    ax__send_sys(sys, 0, pids[i], AX__CL_STOP, 0, 0, NULL, 0, NULL);
  return found ? AX_OK : AX_ENOTFOUND;
}

size_t ax_node_list(ax_system *sys, ax_node_info *out, size_t cap) {
  ax__cluster *cl = cl_get(sys);
  if (!cl || atomic_load(&cl->state) == 0 || atomic_load(&cl->state) == 3) return 0;
  size_t n = 0;
  pthread_mutex_lock(&cl->mu);
  for (uint32_t i = 1; i <= AX__NODES_MAX; i++) {
    ax__peer *p = atomic_load(&cl->peers[i]);
    if (!p || !atomic_load(&p->up)) continue;
    if (out && n < cap) {
      memset(&out[n], 0, sizeof out[n]);
      snprintf(out[n].name, sizeof out[n].name, "%s", p->name);
      out[n].incarnation = p->incarnation;
      snprintf(out[n].addr, sizeof out[n].addr, "%s", p->addr);
    }
    n++;
  }
  pthread_mutex_unlock(&cl->mu);
  return n;
}

const char *ax_node_self(ax_system *sys) {
  ax__cluster *cl = cl_get(sys);
  if (!cl) return NULL;
  int s = atomic_load(&cl->state);
  return s == 1 || s == 2 ? cl->name : NULL;
}

ax_err ax_node_listen_addr(ax_system *sys, char *buf, size_t *len) {
  if (!sys || !len) return AX_EINVAL;
  ax__cluster *cl = cl_get(sys);
  if (!cl || atomic_load(&cl->state) != 1) return AX_ESTATE;
  if (!cl->listening) return AX_ENOTFOUND;
  size_t n = strlen(cl->listen_addr), cap = *len;
  *len = n;
  if (!buf || cap <= n) return AX_ENOBUFS;
  memcpy(buf, cl->listen_addr, n + 1);
  return AX_OK;
}

ax_err ax_node_of(ax_system *sys, ax_pid pid, char *buf, size_t cap) {
  if (!sys || !buf) return AX_EINVAL;
  ax__cluster *cl = cl_get(sys);
  if (!cl || (atomic_load(&cl->state) != 1 && atomic_load(&cl->state) != 2)) return AX_ESTATE;
  if (ax_pid_is_none(pid)) return AX_ENOTFOUND;
  uint32_t node = ax__pid_node(pid.id);
  const char *nm = NULL;
  ax_err e = AX_OK;
  pthread_mutex_lock(&cl->mu);
  if (node == 0 || node == cl->self_idx) nm = cl->name;
  else if (ax__nodes_get(cl->nodes, node, &nm, NULL, NULL) != AX_OK) e = AX_ENOTFOUND;
  if (e == AX_OK) {
    size_t n = strlen(nm);
    if (n >= cap) e = AX_ENOBUFS;
    else memcpy(buf, nm, n + 1);
  }
  pthread_mutex_unlock(&cl->mu);
  return e;
}

ax_err ax_node_monitor(ax_actor *self, const char *name, bool on) {
  if (!self) return AX_EINVAL;
  ax__cluster *cl = cl_running(ax_actor_system(self));
  if (!cl) return AX_ESTATE;
  if (name && ax__node_name_check(name) != AX_OK) return AX_EINVAL;
  uint64_t pid = ax_self(self).id;
  if (!on) {
    ax__subs_del(&cl->nmons, pid, name);
    return AX_OK;
  }
  return ax__subs_add(&cl->nmons, pid, name);
}

ax_err ax_node_stats_get(ax_system *sys, ax_node_stats *o) {
  if (!sys || !o) return AX_EINVAL;
  ax__cluster *cl = cl_get(sys);
  if (!cl) return AX_ESTATE;
#define L(f) atomic_load_explicit(&cl->st.f, memory_order_relaxed)
  *o = (ax_node_stats){.frames_in = L(frames_in),
                       .frames_out = L(frames_out),
                       .bytes_in = L(bytes_in),
                       .bytes_out = L(bytes_out),
                       .handshakes_ok = L(hs_ok),
                       .handshakes_failed = L(hs_failed),
                       .protocol_errors = L(proto),
                       .refused_types = L(refused_types),
                       .unknown_pid = L(unknown_pid),
                       .send_congested = L(congested),
                       .send_no_node = L(no_node),
                       .lost_on_down = L(lost_on_down),
                       .nodes_up = L(up),
                       .nodes_down = L(down),
                       .heartbeats_out = L(hb_out),
                       .timeouts = L(timeouts),
                       .spawns_served = L(spawned),
                       .spawns_refused = L(spawn_refused),
                       .pg_dropped = L(pg_dropped)};
  o->node_monitors = ax__subs_count(&cl->nmons);
#undef L
  return AX_OK;
}

ax_err ax_node_pid(ax_system *sys, const char *name, uint64_t id, ax_pid *out) {
  if (!sys || !name || !out || !id || (id & ~ID_MASK) || ax__node_name_check(name) != AX_OK)
    return AX_EINVAL;
  ax__cluster *cl = cl_get(sys);
  if (!cl || (atomic_load(&cl->state) != 1 && atomic_load(&cl->state) != 2)) return AX_ESTATE;
  uint32_t idx = 0;
  ax_err e = AX_OK;
  pthread_mutex_lock(&cl->mu);
  if (strcmp(name, cl->name) == 0) idx = cl->self_idx;
  else if (ax__nodes_find_name(cl->nodes, name, &idx, NULL) != AX_OK) e = AX_ENOTFOUND;
  pthread_mutex_unlock(&cl->mu);
  if (e == AX_OK) out->id = ax__pid_make(idx, 0, 0) | id;
  return e;
}
