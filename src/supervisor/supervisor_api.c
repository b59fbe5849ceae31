/* Axon: the public supervisor calls: starting (from a thread or linked to
 * an actor), the blocking management calls (ax_call to the supervisor) and
 * their asynchronous forms for actors (ax_request). */
#include <string.h>

#include "supervisor/supervisor_int.h"

ax_err ax_supervisor_start(ax_system *sys, const ax_sup_spec *spec, ax_pid *out) {
  if (!sys || !spec) return AX_EINVAL;
  if (ax__on_worker()) return AX_ESTATE; /* may wait for a reaper */
  /* The stop for a tree that started but cannot be registered, built
   * first: it must not need memory then (docs/hardening.md). */
  ax__exit_kit kit = {0};
  if (ax__exit_kit_fill(&kit) != AX_OK) {
    ax__exit_kit_free(&kit);
    return AX_ENOMEM;
  }
  ax__sup_waiter *w = ax__sup_waiter_new();
  if (!w) {
    ax__exit_kit_free(&kit);
    return AX_ENOMEM;
  }
  void *blob;
  size_t len;
  ax_err e = ax__sup_pack(spec, 0, (uint64_t)(uintptr_t)w, &blob, &len);
  ax_pid pid = AX_PID_NONE;
  if (e == AX_OK) {
    e = ax_system_spawn(sys, &ax__sup_actor_spec, blob, len, &pid);
    ax__free(blob, len);
  }
  /* Reapers of a failed start joined the waiter inside the spawn (on this
   * thread); wait until they have stopped what was started (deterministic
   * mode: this thread runs them meanwhile). */
  if (ax__det_on(sys)) ax__det_run_until(sys, ax__sup_waiter_idle, w, AX_INFINITY);
  ax__sup_waiter_wait(w);
  ax__sup_waiter_release(w);
  if (e == AX_OK && (e = ax__system_add_top(sys, pid)) != AX_OK)
    (void)ax__exit_kit_send(sys, &kit, 0, pid.id, AX_REASON_SHUTDOWN); /* from none: its parent */
  ax__exit_kit_free(&kit);
  if (e != AX_OK) return e;
  if (out) *out = pid;
  return AX_OK;
}

ax_err ax_supervisor_start_link(ax_actor *self, const ax_sup_spec *spec, ax_pid *out) {
  if (!self || !spec) return AX_EINVAL;
  void *blob;
  size_t len;
  ax_err e = ax__sup_pack(spec, ax_self(self).id, 0, &blob, &len);
  if (e != AX_OK) return e;
  e = ax_spawn_link(self, &ax__sup_actor_spec, blob, len, out);
  ax__free(blob, len);
  return e;
}

/* ---- blocking calls ---- */

/* A request answered by an ax_sup_reply. */
static ax_err call_status(ax_system *sys, ax_pid sup, uint32_t type, const void *data, size_t len,
                          uint32_t timeout_ms, ax_pid *pid_out) {
  ax_sup_reply r;
  size_t rlen = sizeof(r);
  uint32_t rtype = 0;
  ax_err e = ax__call(sys, sup, type, data, len, timeout_ms, &r, &rlen, &rtype);
  if (e == AX_ENOBUFS) return AX_ENOTSUP;
  if (e != AX_OK) return e;
  if (rtype != AX_SUP_REPLY || rlen != sizeof(r)) return AX_ENOTSUP;
  if (pid_out && r.err == AX_OK) *pid_out = r.pid;
  return r.err;
}

static ax_err make_ref(const char *id, ax_pid child, ax_sup_child_ref *ref) {
  memset(ref, 0, sizeof(*ref));
  if (id) {
    size_t n = strnlen(id, sizeof(ref->id));
    if (!n || n == sizeof(ref->id)) return AX_EINVAL;
    memcpy(ref->id, id, n);
  } else {
    ref->pid = child;
  }
  return AX_OK;
}

ax_err ax_supervisor_start_child(ax_system *sys, ax_pid sup, const ax_child_spec *spec,
                                 uint32_t timeout_ms, ax_pid *out) {
  if (!sys) return AX_EINVAL;
  void *rec;
  size_t len;
  /* The record is packed as for a static child when the spec allows it;
   * a dynamic supervisor ignores everything but the arg. */
  ax_err e = spec && spec->id ? ax__sup_pack_child(spec, false, &rec, &len)
                              : ax__sup_pack_child(spec, true, &rec, &len);
  if (e != AX_OK) return e;
  e = call_status(sys, sup, AX_SUP_REQ_START_CHILD, rec, len, timeout_ms, out);
  ax__free(rec, len);
  return e;
}

static ax_err call_ref(ax_system *sys, ax_pid sup, uint32_t type, const char *id, ax_pid child,
                       uint32_t timeout_ms, ax_pid *out) {
  ax_sup_child_ref ref;
  ax_err e = make_ref(id, child, &ref);
  if (e != AX_OK) return e;
  return call_status(sys, sup, type, &ref, sizeof(ref), timeout_ms, out);
}

ax_err ax_supervisor_terminate_child(ax_system *sys, ax_pid sup, const char *id, ax_pid child,
                                     uint32_t timeout_ms) {
  if (!id && ax_pid_is_none(child)) return AX_EINVAL;
  return call_ref(sys, sup, AX_SUP_REQ_TERMINATE_CHILD, id, child, timeout_ms, NULL);
}

ax_err ax_supervisor_restart_child(ax_system *sys, ax_pid sup, const char *id, uint32_t timeout_ms,
                                   ax_pid *out) {
  if (!id) return AX_EINVAL;
  return call_ref(sys, sup, AX_SUP_REQ_RESTART_CHILD, id, AX_PID_NONE, timeout_ms, out);
}

ax_err ax_supervisor_delete_child(ax_system *sys, ax_pid sup, const char *id, uint32_t timeout_ms) {
  if (!id) return AX_EINVAL;
  return call_ref(sys, sup, AX_SUP_REQ_DELETE_CHILD, id, AX_PID_NONE, timeout_ms, NULL);
}

/* The reply is either the children (AX_SUP_REPLY_CHILDREN) or a status; a
 * scratch buffer fits both, so the caller's array is only written on
 * success. */
ax_err ax_supervisor_which_children(ax_system *sys, ax_pid sup, uint32_t timeout_ms,
                                    ax_sup_child_info *out, size_t *n) {
  if (!n || (*n && !out) || *n > SIZE_MAX / sizeof(ax_sup_child_info)) return AX_EINVAL;
  size_t cap = *n * sizeof(ax_sup_child_info);
  if (cap < sizeof(ax_sup_reply)) cap = sizeof(ax_sup_reply);
  void *buf = ax__alloc(cap);
  if (!buf) return AX_ENOMEM;
  size_t len = cap;
  uint32_t type = 0;
  ax_err e = ax__call(sys, sup, AX_SUP_REQ_WHICH_CHILDREN, NULL, 0, timeout_ms, buf, &len, &type);
  if (e == AX_ENOBUFS) {
    *n = len / sizeof(ax_sup_child_info);
  } else if (e == AX_OK && type == AX_SUP_REPLY_CHILDREN && len % sizeof(ax_sup_child_info) == 0) {
    if (len) memcpy(out, buf, len);
    *n = len / sizeof(ax_sup_child_info);
  } else if (e == AX_OK && type == AX_SUP_REPLY && len == sizeof(ax_sup_reply)) {
    ax_sup_reply r;
    memcpy(&r, buf, sizeof(r));
    e = r.err == AX_OK ? AX_ENOTSUP : r.err;
  } else if (e == AX_OK) {
    e = AX_ENOTSUP;
  }
  ax__free(buf, cap);
  return e;
}

ax_err ax_supervisor_count_children(ax_system *sys, ax_pid sup, uint32_t timeout_ms,
                                    ax_sup_counts *out) {
  if (!out) return AX_EINVAL;
  union {
    ax_sup_counts k;
    ax_sup_reply r;
  } u;
  size_t len = sizeof(u);
  uint32_t type = 0;
  ax_err e = ax__call(sys, sup, AX_SUP_REQ_COUNT_CHILDREN, NULL, 0, timeout_ms, &u, &len, &type);
  if (e == AX_ENOBUFS) return AX_ENOTSUP;
  if (e != AX_OK) return e;
  if (type == AX_SUP_REPLY_COUNTS && len == sizeof(u.k)) {
    *out = u.k;
    return AX_OK;
  }
  if (type == AX_SUP_REPLY && len == sizeof(u.r) && u.r.err != AX_OK) return u.r.err;
  return AX_ENOTSUP;
}

/* ---- asynchronous forms ---- */

ax_err ax_supervisor_request_start_child(ax_actor *self, ax_pid sup, const ax_child_spec *spec,
                                         uint32_t timeout_ms, ax_ref *ref) {
  if (!self) return AX_EINVAL;
  void *rec;
  size_t len;
  ax_err e = spec && spec->id ? ax__sup_pack_child(spec, false, &rec, &len)
                              : ax__sup_pack_child(spec, true, &rec, &len);
  if (e != AX_OK) return e;
  e = ax__request(self, sup, AX_SUP_REQ_START_CHILD, rec, len, timeout_ms, ref);
  ax__free(rec, len);
  return e;
}

ax_err ax_supervisor_request(ax_actor *self, ax_pid sup, uint32_t type, const char *id,
                             ax_pid child, uint32_t timeout_ms, ax_ref *ref) {
  if (!self) return AX_EINVAL;
  if (type == AX_SUP_REQ_WHICH_CHILDREN || type == AX_SUP_REQ_COUNT_CHILDREN)
    return ax__request(self, sup, type, NULL, 0, timeout_ms, ref);
  if (type != AX_SUP_REQ_TERMINATE_CHILD && type != AX_SUP_REQ_RESTART_CHILD &&
      type != AX_SUP_REQ_DELETE_CHILD)
    return AX_EINVAL;
  ax_sup_child_ref r;
  ax_err e = make_ref(id, child, &r);
  if (e != AX_OK) return e;
  return ax__request(self, sup, type, &r, sizeof(r), timeout_ms, ref);
}
