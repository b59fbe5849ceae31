/* Axon: the supervisor's management requests (start, terminate, restart,
 * delete a child; which/count children). A request that arrives while a
 * job runs (children being stopped) waits in a queue, as it would wait in
 * an OTP supervisor's mailbox, and is answered after the job. */
#include <string.h>

#include "supervisor/supervisor_int.h"

void ax__sup_reply(ax_actor *self, const ax_msg *req, ax_err err, ax_pid pid) {
  ax_sup_reply r;
  memset(&r, 0, sizeof(r));
  r.err = err;
  r.pid = pid;
  (void)ax__reply(ax_actor_system(self), ax_reply_addr_of(req), AX_SUP_REPLY, &r, sizeof(r)); /* requester gone: fine */
}

static ax__sup_deferred *copy_request(const ax_msg *msg) {
  size_t size = sizeof(ax__sup_deferred) + msg->len;
  ax__sup_deferred *d = ax__alloc(size);
  if (!d) return NULL;
  d->next = NULL;
  d->size = size;
  d->msg = *msg;
  d->msg.buf = NULL;
  if (msg->len) memcpy(d->payload, msg->data, msg->len);
  d->msg.data = msg->len ? d->payload : NULL;
  return d;
}

void ax__sup_flush_deferred(ax_actor *self, ax__sup *s, ax_err err) {
  while (s->def_head) {
    ax__sup_deferred *d = s->def_head;
    s->def_head = d->next;
    ax__sup_reply(self, &d->msg, err, AX_PID_NONE);
    ax__free(d, d->size);
  }
  s->def_tail = NULL;
}

/* Reads an ax_sup_child_ref payload and finds the child: by id, or by pid
 * (running children only) when the id is empty. */
static ax_err find_child(ax__sup *s, const ax_msg *msg, bool need_id, ax__sup_child **out) {
  ax_sup_child_ref ref;
  if (msg->len != sizeof(ref)) return AX_EINVAL;
  memcpy(&ref, msg->data, sizeof(ref));
  size_t n = strnlen(ref.id, sizeof(ref.id));
  if (n == sizeof(ref.id) || (need_id && !n)) return AX_EINVAL;
  uint64_t v;
  if (n)
    *out = ax__sup_find_id(s, ref.id, n);
  else
    *out = !ax_pid_is_none(ref.pid) && ax__u64map_get(&s->by_pid, ref.pid.id, &v)
               ? (ax__sup_child *)(uintptr_t)v
               : NULL;
  return *out ? AX_OK : AX_ENOTFOUND;
}

static void req_start_child(ax_actor *self, ax__sup *s, const ax_msg *msg) {
  ax__sup_rec r;
  const char *id;
  const void *arg;
  size_t off = 0;
  bool simple = s->strategy == AX_SUP_SIMPLE_ONE_FOR_ONE;
  if (!ax__sup_read_rec(msg->data, msg->len, &off, &r, &id, &arg) || off != msg->len ||
      (!simple && (!r.start || !r.id_len))) {
    ax__sup_reply(self, msg, AX_EINVAL, AX_PID_NONE);
    return;
  }
  if (!simple && ax__sup_find_id(s, id, r.id_len)) {
    ax__sup_reply(self, msg, AX_EEXIST, AX_PID_NONE);
    return;
  }
  ax__sup_child *c = ax__sup_child_new(self, &r, id, arg, simple ? s->tmpl : NULL);
  ax_err e = c ? ax__sup_start_instance(self, s, c) : AX_ENOMEM;
  if (e != AX_OK) {
    if (c) ax__sup_child_free(s, c);
    ax__sup_reply(self, msg, e, AX_PID_NONE);
    return;
  }
  ax__sup_append(s, c);
  ax__sup_reply(self, msg, AX_OK, c->pid);
}

static void req_terminate(ax_actor *self, ax__sup *s, const ax_msg *msg) {
  ax__sup_child *c;
  ax_err e = find_child(s, msg, false, &c);
  if (e != AX_OK || ax_pid_is_none(c->pid)) {
    if (e == AX_OK) ax__sup_pend_remove(s, c); /* no restart for it now */
    ax__sup_reply(self, msg, e, AX_PID_NONE);
    return;
  }
  ax__sup_deferred *req = copy_request(msg);
  if (!req) {
    ax__sup_reply(self, msg, AX_ENOMEM, AX_PID_NONE);
    return;
  }
  ax__sup_begin_terminate(self, s, c, req);
}

static void req_restart(ax_actor *self, ax__sup *s, const ax_msg *msg) {
  ax__sup_child *c;
  ax_err e = s->strategy == AX_SUP_SIMPLE_ONE_FOR_ONE ? AX_ENOTSUP : find_child(s, msg, true, &c);
  if (e == AX_OK && (!ax_pid_is_none(c->pid) || c->needs_restart)) e = AX_ESTATE;
  if (e == AX_OK) e = ax__sup_start_instance(self, s, c);
  ax__sup_reply(self, msg, e, e == AX_OK ? c->pid : AX_PID_NONE);
}

static void req_delete(ax_actor *self, ax__sup *s, const ax_msg *msg) {
  ax__sup_child *c;
  ax_err e = s->strategy == AX_SUP_SIMPLE_ONE_FOR_ONE ? AX_ENOTSUP : find_child(s, msg, true, &c);
  if (e == AX_OK && (!ax_pid_is_none(c->pid) || c->needs_restart)) e = AX_ESTATE;
  if (e == AX_OK) ax__sup_child_delete(s, c);
  ax__sup_reply(self, msg, e, AX_PID_NONE);
}

static void req_which(ax_actor *self, ax__sup *s, const ax_msg *msg) {
  size_t n = s->nchildren, size = n * sizeof(ax_sup_child_info);
  ax_sup_child_info *out = n ? ax__calloc(size) : NULL;
  if (n && !out) {
    ax__sup_reply(self, msg, AX_ENOMEM, AX_PID_NONE);
    return;
  }
  size_t i = 0;
  for (ax__sup_child *c = s->head; c; c = c->next, i++) {
    memcpy(out[i].id, c->id, sizeof(out[i].id));
    out[i].pid = c->pid;
    out[i].type = c->type;
    out[i].restart = c->restart;
  }
  if (ax__reply(ax_actor_system(self), ax_reply_addr_of(msg), AX_SUP_REPLY_CHILDREN, out, size) == AX_ENOMEM)
    ax__sup_reply(self, msg, AX_ENOMEM, AX_PID_NONE);
  ax__free(out, size);
}

/* As OTP: a simple_one_for_one supervisor has one spec, its template, and
 * counts its dynamic children as supervisors or workers by its type. */
static void req_count(ax_actor *self, ax__sup *s, const ax_msg *msg) {
  ax_sup_counts k;
  memset(&k, 0, sizeof(k));
  for (ax__sup_child *c = s->head; c; c = c->next) {
    k.specs++;
    k.active += !ax_pid_is_none(c->pid);
    if (c->type == AX_CHILD_SUPERVISOR)
      k.supervisors++;
    else
      k.workers++;
  }
  if (s->tmpl) k.specs = 1;
  k.restarts = s->restarts;
  k.failures = s->failures;
  k.escalations = s->escalations;
  if (ax__reply(ax_actor_system(self), ax_reply_addr_of(msg), AX_SUP_REPLY_COUNTS, &k, sizeof(k)) == AX_ENOMEM)
    ax__sup_reply(self, msg, AX_ENOMEM, AX_PID_NONE);
}

/* The introspection's view (supervisor/supervisor.h): flags, counters, and
 * each child with the restarts its exits caused. */
static void req_inspect(ax_actor *self, ax__sup *s, const ax_msg *msg) {
  size_t listed = s->nchildren < AX__SUP_INSPECT_MAX ? s->nchildren : AX__SUP_INSPECT_MAX;
  size_t size = sizeof(ax__sup_inspect) + listed * sizeof(ax__sup_inspect_child);
  unsigned char *out = ax__calloc(size);
  if (!out) {
    ax__sup_reply(self, msg, AX_ENOMEM, AX_PID_NONE);
    return;
  }
  ax__sup_inspect h = {.strategy = (uint32_t)s->strategy, .intensity = s->intensity,
                       .period_ms = s->period_ms, .nchildren = (uint32_t)s->nchildren,
                       .listed = (uint32_t)listed, .reaper = s->reaper, .parent = s->parent.id,
                       .restarts = s->restarts, .failures = s->failures,
                       .escalations = s->escalations};
  memcpy(h.name, s->name, sizeof h.name);
  memcpy(out, &h, sizeof h);
  size_t i = 0;
  for (ax__sup_child *c = s->head; c && i < listed; c = c->next, i++) {
    ax__sup_inspect_child k = {.pid = c->pid.id, .type = (uint32_t)c->type,
                               .restart = (uint32_t)c->restart, .restarts = c->restarts};
    memcpy(k.id, c->id, sizeof k.id);
    memcpy(out + sizeof h + i * sizeof k, &k, sizeof k);
  }
  if (ax__reply(ax_actor_system(self), ax_reply_addr_of(msg), AX__SUP_REPLY_INSPECT, out, size) ==
      AX_ENOMEM)
    ax__sup_reply(self, msg, AX_ENOMEM, AX_PID_NONE);
  ax__free(out, size);
}

void ax__sup_on_request(ax_actor *self, ax__sup *s, const ax_msg *msg) {
  if (s->stopped || s->shutdown_pending || s->job == AX__JOB_SHUTDOWN) {
    ax__sup_reply(self, msg, AX_ECLOSED, AX_PID_NONE);
    return;
  }
  if (s->job != AX__JOB_NONE) {
    ax__sup_deferred *d = copy_request(msg);
    if (!d) {
      ax__sup_reply(self, msg, AX_ENOMEM, AX_PID_NONE);
      return;
    }
    if (s->def_tail)
      s->def_tail->next = d;
    else
      s->def_head = d;
    s->def_tail = d;
    return;
  }
  switch (msg->type) {
  case AX_SUP_REQ_START_CHILD: req_start_child(self, s, msg); break;
  case AX_SUP_REQ_TERMINATE_CHILD: req_terminate(self, s, msg); break;
  case AX_SUP_REQ_RESTART_CHILD: req_restart(self, s, msg); break;
  case AX_SUP_REQ_DELETE_CHILD: req_delete(self, s, msg); break;
  case AX_SUP_REQ_WHICH_CHILDREN: req_which(self, s, msg); break;
  case AX_SUP_REQ_COUNT_CHILDREN: req_count(self, s, msg); break;
  case AX__SUP_REQ_INSPECT: req_inspect(self, s, msg); break;
  default: ax__sup_reply(self, msg, AX_ENOTSUP, AX_PID_NONE); break;
  }
}
