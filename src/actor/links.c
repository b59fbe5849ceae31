/* Axon: links and monitors (Erlang semantics). Each side keeps its half in
 * its own ext maps (owner-only); the halves are kept in step by signals on
 * the system lane. Decisions that race with an unlink or a demonitor are
 * taken at delivery, on the owner's thread: a DOWN whose ref is no longer a
 * monitor, or a trapped link exit whose pid is no longer linked, is dropped. */
#include <string.h>

#include "actor/actor_int.h"

static void link_exit_to(ax_system *sys, uint64_t from, uint64_t to, ax_reason reason) {
  ax_exit_info info = {.pid = {from}, .reason = reason};
  ax_err e = ax__signal(sys, from, to, AX__SIG_LINK_EXIT, &info, sizeof(info));
  if (e == AX_ENOMEM)
    ax_log(sys, AX_LOG_ERROR, "out of memory: exit signal from <%llx> to <%llx> (%s) lost",
           (unsigned long long)from, (unsigned long long)to, ax_reason_str(reason));
}

static void down_to(ax_system *sys, uint64_t from, uint64_t watcher, ax_ref ref, ax_reason reason) {
  ax_down_info d = {.ref = ref, .pid = {from}, .reason = reason};
  ax_err e = ax__send_sys(sys, from, watcher, AX_MSG_DOWN, 0, 0, &d, sizeof(d), NULL);
  if (e == AX_ENOMEM)
    ax_log(sys, AX_LOG_ERROR, "out of memory: DOWN from <%llx> to <%llx> lost",
           (unsigned long long)from, (unsigned long long)watcher);
}

bool ax__link_put(ax_system *sys, ax__actor_ext *x, uint64_t self, uint64_t other) {
  uint64_t have;
  if (ax__u64map_get(&x->links, other, &have)) return true;
  ax__mnode *r = NULL;
  if (ax__pid_node(other) == sys->table.node && !(r = ax__link_exit_reserve(self, other)))
    return false;
  if (ax__u64map_put(&x->links, other, (uint64_t)(uintptr_t)r)) return true;
  if (r) ax__link_exit_unreserve(r);
  return false;
}

bool ax__link_del(ax__actor_ext *x, uint64_t other) {
  uint64_t r;
  if (!ax__u64map_del(&x->links, other, &r)) return false;
  if (r) ax__link_exit_unreserve((ax__mnode *)(uintptr_t)r);
  return true;
}

void ax__links_signal(ax_actor *a, ax__ctx *c, ax__mnode *n) {
  ax__actor_ext *x = ax__ext(a);
  uint64_t v;
  ax_down_info d;
  switch (n->msg.type) {
  case AX__SIG_LINK:
    memcpy(&v, n->payload, sizeof(v));
    if (!x || !ax__link_put(a->sys, x, a->pid, v))
      link_exit_to(a->sys, a->pid, v, AX_REASON_ERROR + AX_ENOMEM); /* cannot hold the link */
    break;
  case AX__SIG_UNLINK:
    memcpy(&v, n->payload, sizeof(v));
    if (x) ax__link_del(x, v);
    break;
  case AX__SIG_MONITOR:
    memcpy(&d, n->payload, sizeof(d));
    if (!x || !ax__u64map_put(&x->watchers, d.ref, d.pid.id))
      down_to(a->sys, a->pid, d.pid.id, d.ref, AX_REASON_ERROR + AX_ENOMEM);
    break;
  case AX__SIG_DEMONITOR:
    memcpy(&v, n->payload, sizeof(v));
    if (x) ax__u64map_del(&x->watchers, v, NULL);
    break;
  default: break;
  }
  (void)c;
}

bool ax__links_accept(ax_actor *a, const ax__mnode *n) {
  ax__actor_ext *x = a->ext;
  if (n->msg.type == AX_MSG_DOWN) {
    ax_down_info d;
    memcpy(&d, n->payload, sizeof(d));
    return x && ax__u64map_del(&x->monitors, d.ref, NULL); /* one DOWN per monitor */
  }
  if (n->msg.flags & AX__MSGF_LINKEXIT) {
    ax_exit_info info;
    memcpy(&info, n->payload, sizeof(info));
    return x && ax__link_del(x, info.pid.id);
  }
  return true;
}

void ax__links_on_stop(ax_actor *a, ax_reason reason) {
  ax__actor_ext *x = a->ext;
  if (!x) return;
  for (uint32_t i = 0; i < x->links.cap; i++) {
    if (!ax__u64map_live(&x->links, i)) continue;
    if (ax__u64map_val(&x->links, i)) /* reserved: needs no memory */
      (void)ax__link_exit_send(a->sys, (ax__mnode *)(uintptr_t)ax__u64map_val(&x->links, i), reason);
    else
      link_exit_to(a->sys, a->pid, ax__u64map_key(&x->links, i), reason);
    ax__u64map_set_val(&x->links, i, 0); /* sent (or freed): not the map's any more */
  }
  for (uint32_t i = 0; i < x->watchers.cap; i++)
    if (ax__u64map_live(&x->watchers, i))
      down_to(a->sys, a->pid, ax__u64map_val(&x->watchers, i), ax__u64map_key(&x->watchers, i), reason);
}

void ax__links_on_drained(ax_system *sys, uint64_t dead, const ax__mnode *n) {
  if (n->msg.type == AX__SIG_LINK) {
    uint64_t linker;
    memcpy(&linker, n->payload, sizeof(linker));
    link_exit_to(sys, dead, linker, AX_REASON_NOPROC);
  } else if (n->msg.type == AX__SIG_MONITOR) {
    ax_down_info d;
    memcpy(&d, n->payload, sizeof(d));
    down_to(sys, dead, d.pid.id, d.ref, AX_REASON_NOPROC);
  }
}

void ax__links_free(ax__actor_ext *x) {
  for (uint32_t i = 0; i < x->links.cap; i++)
    if (ax__u64map_live(&x->links, i) && ax__u64map_val(&x->links, i))
      ax__link_exit_unreserve((ax__mnode *)(uintptr_t)ax__u64map_val(&x->links, i));
  ax__u64map_free(&x->links);
  ax__u64map_free(&x->monitors);
  ax__u64map_free(&x->watchers);
}

/* ---- public API ---- */

/* The reason a link or monitor gets when its signal finds no target: noproc
 * for a pid of this node (it does not exist), noconnection for another
 * node's (a signal to a remote pid fails only when its node is not
 * connected: a connected node answers for its own dead pids, with noproc).
 * As Erlang's link and monitor to a pid on an unreachable node. */
static ax_reason unreachable_reason(ax_system *sys, uint64_t pid) {
  return ax__pid_remote(sys, pid) ? AX_REASON_NOCONNECTION : AX_REASON_NOPROC;
}

ax_err ax_link(ax_actor *self, ax_pid other) {
  if (!self || ax_pid_is_none(other) || other.id == self->pid) return AX_EINVAL;
  ax__actor_ext *x = ax__ext(self);
  if (!x) return AX_ENOMEM;
  if (ax__u64map_get(&x->links, other.id, NULL)) return AX_OK;
  if (!ax__link_put(self->sys, x, self->pid, other.id)) return AX_ENOMEM;
  ax_err e = ax__signal(self->sys, self->pid, other.id, AX__SIG_LINK, &self->pid, sizeof(uint64_t));
  if (e == AX_OK) return AX_OK;
  ax__link_del(x, other.id);
  if (e != AX_ENOACTOR) return e;
  /* Dead already, or its node is not connected: an exit signal with noproc
   * or noconnection, as if from it. */
  ax_exit_info info = {.pid = other, .reason = unreachable_reason(self->sys, other.id)};
  return ax__signal(self->sys, other.id, self->pid, AX__SIG_EXIT, &info, sizeof(info));
}

ax_err ax_unlink(ax_actor *self, ax_pid other) {
  if (!self) return AX_EINVAL;
  if (!self->ext || !ax__link_del(self->ext, other.id)) return AX_OK;
  ax_err e = ax__signal(self->sys, self->pid, other.id, AX__SIG_UNLINK, &self->pid, sizeof(uint64_t));
  /* If the signal cannot go out, the other side keeps a stale half: its
   * eventual exit signal is ignored here because the pid is not linked. */
  return e == AX_ENOMEM ? AX_ENOMEM : AX_OK;
}

ax_err ax_spawn_link(ax_actor *self, const ax_actor_spec *spec, const void *arg, size_t len,
                     ax_pid *out) {
  if (!self) return AX_EINVAL;
  return ax__spawn(self->sys, spec, arg, len, out, self);
}

ax_err ax_monitor(ax_actor *self, ax_pid target, ax_ref *ref_out) {
  if (!self || ax_pid_is_none(target) || target.id == self->pid) return AX_EINVAL;
  ax__actor_ext *x = ax__ext(self);
  if (!x) return AX_ENOMEM;
  ax_ref ref = ax__new_ref(self->sys);
  if (!ax__u64map_put(&x->monitors, ref, target.id)) return AX_ENOMEM;
  ax_down_info d = {.ref = ref, .pid = {self->pid}};
  ax_err e = ax__signal(self->sys, self->pid, target.id, AX__SIG_MONITOR, &d, sizeof(d));
  if (e == AX_ENOACTOR) {
    d.pid = target;
    d.reason = unreachable_reason(self->sys, target.id);
    e = ax__send_sys(self->sys, target.id, self->pid, AX_MSG_DOWN, 0, 0, &d, sizeof(d), NULL);
  }
  if (e != AX_OK) {
    ax__u64map_del(&x->monitors, ref, NULL);
    return e;
  }
  if (ref_out) *ref_out = ref;
  return AX_OK;
}

ax_err ax__monitor_expect(ax_actor *self, ax_ref ref, uint64_t target) {
  ax__actor_ext *x = ax__ext(self);
  return x && ax__u64map_put(&x->monitors, ref, target) ? AX_OK : AX_ENOMEM;
}

ax_err ax_demonitor(ax_actor *self, ax_ref ref, uint32_t flags) {
  uint64_t target;
  (void)flags; /* flushing is always done: see ax__links_accept */
  if (!self) return AX_EINVAL;
  if (!self->ext || !ax__u64map_del(&self->ext->monitors, ref, &target)) return AX_ENOTFOUND;
  /* If this cannot be sent (or the target is not known yet: a spawn
   * monitor before its reply), the target's DOWN is dropped on arrival. */
  if (target) (void)ax__signal(self->sys, self->pid, target, AX__SIG_DEMONITOR, &ref, sizeof(ref));
  return AX_OK;
}
