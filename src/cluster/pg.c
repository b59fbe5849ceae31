/* Axon: process groups spanning the cluster, eventually consistent like
 * OTP's pg (docs/cluster.md "Process groups"). Every node owns its local
 * members and tells its connected peers about them: PG_JOIN / PG_LEAVE as
 * they change, and its whole local membership as PG_SYNC when a connection
 * comes up. A node keeps every node's members in one table: a remote member
 * is tagged with the connection actor that announced it, and leaves when
 * that connection's node goes down. Local members leave when they stop
 * (the layer's on_actor_stop hook: one atomic load for an actor in no
 * group). One mutex (pg->mu) guards the table and orders the broadcasts
 * (taken before a peer's wmu, never after). */
#include <stdio.h>
#include <string.h>

#include "cluster/node_int.h"

typedef struct pg_mem {
  uint64_t pid;
  uint64_t conn; /* remote: the connection actor that announced it; local: 0 */
} pg_mem;

typedef struct pg_group {
  char name[AX__NAME_MAX + 1];
  pg_mem *m;
  uint32_t n, cap;
} pg_group;

struct ax__pg {
  pthread_mutex_t mu;
  pg_group **g;
  size_t ng, capg;
  ax__u64map local;         /* local member pid -> groups it is in */
  _Atomic size_t nlocal;    /* local memberships (the stop hook's fast path) */
  uint32_t per_peer[AX__NODES_MAX + 1]; /* remote memberships per node index */
  ax__subs mons;            /* ax_pg_monitor subscriptions */
};

/* A membership change as this node sees it: its monitors hear it. */
static void changed(ax__cluster *cl, struct ax__pg *pg, const char *group, uint64_t pid,
                    bool join) {
  if (!atomic_load_explicit(&pg->mons.live, memory_order_relaxed)) return;
  ax_pg_event ev;
  memset(&ev, 0, sizeof ev);
  snprintf(ev.group, sizeof ev.group, "%s", group);
  ev.pid.id = pid;
  ax__subs_notify(&pg->mons, cl->sys, join ? AX_MSG_PG_JOIN : AX_MSG_PG_LEAVE, group, &ev,
                  sizeof ev);
}

static bool name_ok(const char *s) {
  if (!s) return false;
  size_t n = strnlen(s, AX__NAME_MAX + 1);
  if (n == 0 || n > AX__NAME_MAX) return false;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) return false;
  return true;
}

static struct ax__pg *pg_of(ax__cluster *cl) {
  return atomic_load_explicit(&cl->pg, memory_order_acquire);
}

static ax__cluster *cl_running(ax_system *sys) {
  ax__cluster *cl = sys ? ax__layer_get(sys, AX__LAYER_CLUSTER) : NULL;
  return cl && atomic_load(&cl->state) == 1 && pg_of(cl) ? cl : NULL;
}

ax_err ax__cl_pg_init(ax__cluster *cl) {
  /* Made by an earlier start that failed after it (out of memory, before
   * the service actor ran): kept, not made again over it (a leak that
   * cluster.oom found under ASan). */
  if (pg_of(cl)) return AX_OK;
  struct ax__pg *pg = ax__calloc(sizeof(*pg));
  if (!pg) return AX_ENOMEM;
  pthread_mutex_init(&pg->mu, NULL);
  ax__subs_init(&pg->mons);
  atomic_store_explicit(&cl->pg, pg, memory_order_release);
  return AX_OK;
}

void ax__cl_pg_fini(ax__cluster *cl) {
  struct ax__pg *pg = pg_of(cl);
  if (!pg) return;
  for (size_t i = 0; i < pg->ng; i++) {
    if (pg->g[i]->m) ax__free(pg->g[i]->m, sizeof(pg_mem) * pg->g[i]->cap);
    ax__free(pg->g[i], sizeof(pg_group));
  }
  if (pg->g) ax__free(pg->g, sizeof(pg_group *) * pg->capg);
  ax__u64map_free(&pg->local);
  ax__subs_fini(&pg->mons);
  pthread_mutex_destroy(&pg->mu);
  ax__free(pg, sizeof(*pg));
  atomic_store(&cl->pg, NULL);
}

/* ---- the table (pg->mu held) ---- */

static pg_group *grp_find(struct ax__pg *pg, const char *name, size_t *at) {
  for (size_t i = 0; i < pg->ng; i++)
    if (strcmp(pg->g[i]->name, name) == 0) {
      if (at) *at = i;
      return pg->g[i];
    }
  return NULL;
}

static ax_err grp_make(struct ax__pg *pg, const char *name, pg_group **out) {
  if ((*out = grp_find(pg, name, NULL))) return AX_OK;
  if (pg->ng >= AX_PG_GROUPS_MAX) return AX_ELIMIT;
  if (pg->ng == pg->capg) {
    size_t nc = pg->capg ? pg->capg * 2 : 8;
    pg_group **ng = ax__realloc(pg->g, sizeof(pg_group *) * pg->capg, sizeof(pg_group *) * nc);
    if (!ng) return AX_ENOMEM;
    pg->g = ng;
    pg->capg = nc;
  }
  pg_group *g = ax__calloc(sizeof(*g));
  if (!g) return AX_ENOMEM;
  snprintf(g->name, sizeof g->name, "%s", name);
  pg->g[pg->ng++] = g;
  *out = g;
  return AX_OK;
}

static void grp_drop_if_empty(struct ax__pg *pg, pg_group *g) {
  if (g->n) return;
  size_t at;
  if (!grp_find(pg, g->name, &at)) return;
  pg->g[at] = pg->g[--pg->ng];
  if (g->m) ax__free(g->m, sizeof(pg_mem) * g->cap);
  ax__free(g, sizeof(*g));
}

static pg_mem *mem_find(pg_group *g, uint64_t pid) {
  for (uint32_t i = 0; i < g->n; i++)
    if (g->m[i].pid == pid) return &g->m[i];
  return NULL;
}

/* Adds pid; *added false when it was a member already (conn updated). */
static ax_err mem_add(pg_group *g, uint64_t pid, uint64_t conn, bool *added) {
  pg_mem *x = mem_find(g, pid);
  *added = false;
  if (x) {
    x->conn = conn;
    return AX_OK;
  }
  if (g->n >= AX_PG_MEMBERS_MAX) return AX_ELIMIT;
  if (g->n == g->cap) {
    uint32_t nc = g->cap ? g->cap * 2 : 4;
    pg_mem *nm = ax__realloc(g->m, sizeof(pg_mem) * g->cap, sizeof(pg_mem) * nc);
    if (!nm) return AX_ENOMEM;
    g->m = nm;
    g->cap = nc;
  }
  g->m[g->n++] = (pg_mem){pid, conn};
  *added = true;
  return AX_OK;
}

static bool mem_del(pg_group *g, uint64_t pid) {
  pg_mem *x = mem_find(g, pid);
  if (!x) return false;
  *x = g->m[--g->n];
  return true;
}

/* Tells every connected peer that offers PG (pg->mu held). */
static void broadcast(ax__cluster *cl, int kind, const char *group, uint64_t pid) {
  for (uint32_t i = 1; i <= AX__NODES_MAX; i++) {
    ax__peer *p = atomic_load_explicit(&cl->peers[i], memory_order_acquire);
    if (!p || !atomic_load_explicit(&p->up, memory_order_acquire)) continue;
    pthread_mutex_lock(&p->wmu);
    bool pgok = (p->features & AX__FEAT_PG) != 0;
    pthread_mutex_unlock(&p->wmu);
    if (!pgok) continue;
    ax__wpid w;
    char nb[AX__NAME_MAX + 1];
    ax__cl_pid_out(cl, p, pid, &w, nb);
    ax__wmsg m;
    memset(&m, 0, sizeof m);
    m.kind = kind;
    m.u.pg.group = group;
    m.u.pg.pids = &w;
    m.u.pg.npids = 1;
    ax__cl_ctl_write(cl, p, 0, &m); /* a peer that just went down: its own sync covers it */
  }
}

/* Removes local pid from group g (pg->mu held); tells the peers. */
static bool local_leave(ax__cluster *cl, struct ax__pg *pg, pg_group *g, uint64_t pid) {
  if (!mem_del(g, pid)) return false;
  uint64_t c = 0;
  if (ax__u64map_get(&pg->local, pid, &c)) {
    if (c <= 1) ax__u64map_del(&pg->local, pid, NULL);
    else ax__u64map_put(&pg->local, pid, c - 1);
  }
  atomic_fetch_sub_explicit(&pg->nlocal, 1, memory_order_relaxed);
  broadcast(cl, AX__K_PG_LEAVE, g->name, pid);
  changed(cl, pg, g->name, pid, false);
  grp_drop_if_empty(pg, g);
  return true;
}

/* ---- the stop hook ---- */

void ax__cl_on_actor_stop(ax_system *sys, void *state, uint64_t pid) {
  (void)sys;
  ax__cluster *cl = state;
  ax__subs_drop_pid(&cl->nmons, pid); /* its node monitors go */
  struct ax__pg *pg = pg_of(cl);
  if (pg) ax__subs_drop_pid(&pg->mons, pid); /* and its group monitors */
  if (!pg || !atomic_load_explicit(&pg->nlocal, memory_order_relaxed)) return;
  pthread_mutex_lock(&pg->mu);
  if (ax__u64map_get(&pg->local, pid, NULL)) {
    for (size_t i = pg->ng; i-- > 0;) { /* local_leave may drop g[i] (moves the last here) */
      if (i >= pg->ng) continue;
      local_leave(cl, pg, pg->g[i], pid);
    }
  }
  pthread_mutex_unlock(&pg->mu);
}

/* ---- peers ---- */

void ax__cl_pg_peer_up(ax__cluster *cl, ax__peer *p, uint64_t conn_pid) {
  struct ax__pg *pg = pg_of(cl);
  (void)conn_pid;
  if (!pg) return;
  pthread_mutex_lock(&p->wmu);
  bool pgok = (p->features & AX__FEAT_PG) != 0;
  size_t budget = p->max_frame < AX__HDR_MAX ? p->max_frame : AX__HDR_MAX;
  pthread_mutex_unlock(&p->wmu);
  if (!pgok) return;
  /* One group (or a slice of a big one) per PG_SYNC: a scope-0 pid takes
   * at most 12 bytes in the header; the name and framing at most 300. */
  size_t chunk = (budget - AX__FRAME_PREFIX - AX__NAME_MAX - 64) / 12;
  ax__wpid *w = ax__alloc(sizeof(ax__wpid) * chunk);
  if (!w) {
    ax_log(cl->sys, AX_LOG_ERROR, "cluster %s: out of memory for PG_SYNC to %s", cl->name,
           p->name);
    return;
  }
  char nb[AX__NAME_MAX + 1];
  pthread_mutex_lock(&pg->mu);
  for (size_t i = 0; i < pg->ng; i++) {
    pg_group *g = pg->g[i];
    size_t k = 0;
    for (uint32_t j = 0; j <= g->n; j++) {
      if (j < g->n && ax__pid_node(g->m[j].pid) == cl->self_idx)
        ax__cl_pid_out(cl, p, g->m[j].pid, &w[k++], nb); /* local: scope 0, no name */
      if (k && (k == chunk || j == g->n)) {
        ax__wgroup wg = {.group = g->name, .pids = w, .npids = k};
        ax__wmsg m;
        memset(&m, 0, sizeof m);
        m.kind = AX__K_PG_SYNC;
        m.u.pg_sync.groups = &wg;
        m.u.pg_sync.ngroups = 1;
        ax__cl_ctl_write(cl, p, 0, &m);
        k = 0;
      }
    }
  }
  pthread_mutex_unlock(&pg->mu);
  ax__free(w, sizeof(ax__wpid) * chunk);
}

void ax__cl_pg_peer_down(ax__cluster *cl, ax__peer *p, uint64_t conn_pid) {
  struct ax__pg *pg = pg_of(cl);
  if (!pg) return;
  pthread_mutex_lock(&pg->mu);
  for (size_t i = pg->ng; i-- > 0;) {
    if (i >= pg->ng) continue;
    pg_group *g = pg->g[i];
    for (uint32_t j = g->n; j-- > 0;)
      if (g->m[j].conn == conn_pid && ax__pid_node(g->m[j].pid) == p->idx) {
        uint64_t gone = g->m[j].pid;
        g->m[j] = g->m[--g->n];
        if (pg->per_peer[p->idx]) pg->per_peer[p->idx]--;
        changed(cl, pg, g->name, gone, false);
      }
    grp_drop_if_empty(pg, g);
  }
  pthread_mutex_unlock(&pg->mu);
}

/* Applies one group of a JOIN/SYNC (join) or LEAVE from peer p. */
static void apply(ax__cluster *cl, struct ax__pg *pg, ax__peer *p, uint64_t conn_pid,
                  const ax__wgroup *wg, bool join) {
  for (size_t i = 0; i < wg->npids; i++) {
    uint64_t pid = ax__cl_pid_in(cl, p, &wg->pids[i]); /* may take cl->mu: before pg->mu */
    if (!pid || ax__pid_node(pid) != p->idx) { /* only the sender's own actors */
      AX__CL_STAT(cl, pg_dropped, 1);
      continue;
    }
    pthread_mutex_lock(&pg->mu);
    if (join) {
      pg_group *g = NULL;
      bool added = false;
      ax_err e = pg->per_peer[p->idx] >= AX_PG_MEMBERS_MAX ? AX_ELIMIT
                                                            : grp_make(pg, wg->group, &g);
      if (e == AX_OK) e = mem_add(g, pid, conn_pid, &added);
      if (e == AX_OK && added) {
        pg->per_peer[p->idx]++;
        changed(cl, pg, wg->group, pid, true);
      }
      if (e != AX_OK) {
        AX__CL_STAT(cl, pg_dropped, 1);
        if (g) grp_drop_if_empty(pg, g);
      }
    } else {
      pg_group *g = grp_find(pg, wg->group, NULL);
      if (g && mem_del(g, pid)) {
        if (pg->per_peer[p->idx]) pg->per_peer[p->idx]--;
        changed(cl, pg, wg->group, pid, false);
        grp_drop_if_empty(pg, g);
      }
    }
    pthread_mutex_unlock(&pg->mu);
  }
}

bool ax__cl_pg_frame(ax__cluster *cl, ax__peer *p, uint64_t conn_pid, const ax__wmsg *m) {
  struct ax__pg *pg = pg_of(cl);
  if (!pg) return true;
  switch (m->kind) {
  case AX__K_PG_JOIN: apply(cl, pg, p, conn_pid, &m->u.pg, true); break;
  case AX__K_PG_LEAVE: apply(cl, pg, p, conn_pid, &m->u.pg, false); break;
  case AX__K_PG_SYNC:
    for (size_t i = 0; i < m->u.pg_sync.ngroups; i++)
      apply(cl, pg, p, conn_pid, &m->u.pg_sync.groups[i], true);
    break;
  default: AX__CL_STAT(cl, unknown_pid, 1); break;
  }
  return true;
}

/* ---- public API ---- */

ax_err ax_pg_join(ax_system *sys, const char *group, ax_pid pid) {
  if (!sys || !group || !name_ok(group) || ax_pid_is_none(pid)) return AX_EINVAL;
  ax__cluster *cl = cl_running(sys);
  if (!cl) return AX_ESTATE;
  if (ax__pid_node(pid.id) != cl->self_idx) return AX_EINVAL; /* local pids only, as pg */
  if (!ax__pid_alive(sys, pid.id)) return AX_ENOACTOR;
  struct ax__pg *pg = pg_of(cl);
  pthread_mutex_lock(&pg->mu);
  pg_group *g = NULL;
  bool added = false;
  uint64_t c = 0;
  ax_err e = grp_make(pg, group, &g);
  if (e == AX_OK) {
    ax__u64map_get(&pg->local, pid.id, &c);
    if (!mem_find(g, pid.id) && !ax__u64map_put(&pg->local, pid.id, c + 1)) e = AX_ENOMEM;
  }
  if (e == AX_OK) {
    e = mem_add(g, pid.id, 0, &added);
    if (e != AX_OK) { /* undo the count */
      if (c) ax__u64map_put(&pg->local, pid.id, c);
      else ax__u64map_del(&pg->local, pid.id, NULL);
    }
  }
  if (added) {
    atomic_fetch_add_explicit(&pg->nlocal, 1, memory_order_relaxed);
    broadcast(cl, AX__K_PG_JOIN, group, pid.id);
    changed(cl, pg, group, pid.id, true);
  }
  if (e != AX_OK && g) grp_drop_if_empty(pg, g);
  pthread_mutex_unlock(&pg->mu);
  /* An actor that stopped meanwhile: its stop hook may have run before the
   * join; take it out again. */
  if (e == AX_OK && added && !ax__pid_alive(sys, pid.id)) {
    pthread_mutex_lock(&pg->mu);
    if ((g = grp_find(pg, group, NULL))) local_leave(cl, pg, g, pid.id);
    pthread_mutex_unlock(&pg->mu);
    e = AX_ENOACTOR;
  }
  return e;
}

ax_err ax_pg_monitor(ax_actor *self, const char *group, bool on) {
  if (!self || (group && !name_ok(group))) return AX_EINVAL;
  ax__cluster *cl = cl_running(ax_actor_system(self));
  if (!cl) return AX_ESTATE;
  struct ax__pg *pg = pg_of(cl);
  uint64_t pid = ax_self(self).id;
  if (!on) {
    ax__subs_del(&pg->mons, pid, group);
    return AX_OK;
  }
  return ax__subs_add(&pg->mons, pid, group);
}

ax_err ax_pg_leave(ax_system *sys, const char *group, ax_pid pid) {
  if (!sys || !group || !name_ok(group)) return AX_EINVAL;
  ax__cluster *cl = cl_running(sys);
  if (!cl) return AX_ESTATE;
  if (ax__pid_node(pid.id) != cl->self_idx) return AX_EINVAL;
  struct ax__pg *pg = pg_of(cl);
  pthread_mutex_lock(&pg->mu);
  pg_group *g = grp_find(pg, group, NULL);
  bool ok = g && local_leave(cl, pg, g, pid.id);
  pthread_mutex_unlock(&pg->mu);
  return ok ? AX_OK : AX_ENOTFOUND;
}

static ax_err members(ax_system *sys, const char *group, ax_pid *out, size_t *n, bool local) {
  if (!sys || !group || !n || !name_ok(group) || (*n && !out)) return AX_EINVAL;
  ax__cluster *cl = cl_running(sys);
  if (!cl) return AX_ESTATE;
  struct ax__pg *pg = pg_of(cl);
  size_t cap = *n, k = 0;
  pthread_mutex_lock(&pg->mu);
  pg_group *g = grp_find(pg, group, NULL);
  for (uint32_t i = 0; g && i < g->n; i++) {
    if (local && ax__pid_node(g->m[i].pid) != cl->self_idx) continue;
    if (k < cap) out[k].id = g->m[i].pid;
    k++;
  }
  pthread_mutex_unlock(&pg->mu);
  *n = k;
  return AX_OK;
}

ax_err ax_pg_members(ax_system *sys, const char *group, ax_pid *out, size_t *n) {
  return members(sys, group, out, n, false);
}

ax_err ax_pg_local_members(ax_system *sys, const char *group, ax_pid *out, size_t *n) {
  return members(sys, group, out, n, true);
}

static ax_err pg_send(ax_system *sys, ax_actor *self, const char *group, uint32_t type,
                      const void *data, size_t len, size_t *sent) {
  if (sent) *sent = 0;
  if (!sys || !group || !name_ok(group) || ax_msg_type_reserved(type) || (len && !data))
    return AX_EINVAL;
  ax__cluster *cl = cl_running(sys);
  if (!cl) return AX_ESTATE;
  struct ax__pg *pg = pg_of(cl);
  uint64_t stack[64], *pids = stack;
  size_t n = 0, cap = 64;
  pthread_mutex_lock(&pg->mu);
  pg_group *g = grp_find(pg, group, NULL);
  if (g && g->n > cap) {
    cap = g->n;
    pids = ax__alloc(sizeof(uint64_t) * cap);
  }
  if (pids)
    for (uint32_t i = 0; g && i < g->n; i++) pids[n++] = g->m[i].pid;
  pthread_mutex_unlock(&pg->mu);
  if (!pids) return AX_ENOMEM;
  size_t ok = 0;
  for (size_t i = 0; i < n; i++) {
    ax_err e = self ? ax_send(self, (ax_pid){pids[i]}, type, data, len)
                    : ax_system_send(sys, (ax_pid){pids[i]}, type, data, len);
    if (e == AX_OK) ok++;
  }
  if (pids != stack) ax__free(pids, sizeof(uint64_t) * cap);
  if (sent) *sent = ok;
  return AX_OK;
}

ax_err ax_pg_send(ax_actor *self, const char *group, uint32_t type, const void *data, size_t len,
                  size_t *sent) {
  if (!self) return AX_EINVAL;
  return pg_send(ax_actor_system(self), self, group, type, data, len, sent);
}

ax_err ax_system_pg_send(ax_system *sys, const char *group, uint32_t type, const void *data,
                         size_t len, size_t *sent) {
  return pg_send(sys, NULL, group, type, data, len, sent);
}
