/* Axon: the supervisor actor: init (children started in order; on a failed
 * child init the started ones go to a reaper), the handling of child exits
 * (restart type, strategy, intensity), and the message loop. The stop
 * machinery is in supervisor_stop.c, requests in supervisor_req.c, packed
 * specs in supervisor_pack.c, the public calls in supervisor_api.c. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "supervisor/supervisor_int.h"

/* ---- logging ---- */

void ax__sup_log(ax_actor *self, const ax__sup *s, ax_log_level level, const char *fmt, ...) {
  char line[384];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof(line), fmt, ap); /* cut, like every log line, by design */
  va_end(ap);
  ax_log(ax_actor_system(self), level, "supervisor %s <%llx>: %s", s->name,
         (unsigned long long)ax_self(self).id, line);
}

static bool abnormal(ax_reason r) { return r != AX_REASON_NORMAL && r != AX_REASON_SHUTDOWN; }

/* ---- children ---- */

static void set_hdr_u64(void *blob, size_t off, uint64_t v) { memcpy((char *)blob + off, &v, 8); }

/* Makes a child from a packed record. A sub-supervisor's blob is copied
 * with this supervisor as its parent. tmpl (simple_one_for_one) supplies
 * everything but an optional arg. */
ax__sup_child *ax__sup_child_new(ax_actor *self, const ax__sup_rec *r, const char *id,
                                 const void *arg, const ax__sup_child *tmpl) {
  ax__sup_child *c = ax__calloc(sizeof(*c));
  if (!c) return NULL;
  if (tmpl) {
    memcpy(c->id, tmpl->id, sizeof(c->id));
    c->start = tmpl->start;
    c->restart = tmpl->restart;
    c->type = tmpl->type;
    c->shutdown = tmpl->shutdown;
    c->arg = tmpl->arg;
    c->arg_len = tmpl->arg_len;
    c->arg_shared = true;
  } else {
    memcpy(c->id, id, r->id_len);
    c->start = (const ax_actor_spec *)(uintptr_t)r->start;
    c->restart = (ax_restart)r->restart;
    c->type = (ax_child_type)r->type;
    c->shutdown = r->shutdown;
  }
  if (r->arg_len) {
    c->arg = ax__alloc(r->arg_len);
    if (!c->arg) {
      ax__free(c, sizeof(*c));
      return NULL;
    }
    memcpy(c->arg, arg, r->arg_len);
    c->arg_len = r->arg_len;
    c->arg_shared = false;
  }
  ax__sup_hdr h;
  if (c->start == &ax_supervisor_spec && !c->arg_shared && ax__sup_read_hdr(c->arg, c->arg_len, &h))
    set_hdr_u64(c->arg, offsetof(ax__sup_hdr, parent), ax_self(self).id);
  c->pid = AX_PID_NONE;
  return c;
}

void ax__sup_child_free(ax__sup *s, ax__sup_child *c) {
  (void)s;
  ax__exit_kit_free(&c->kit);
  if (!c->arg_shared) ax__free(c->arg, c->arg_len);
  ax__free(c, sizeof(*c));
}

static void append(ax__sup *s, ax__sup_child *c) {
  c->prev = s->tail;
  c->next = NULL;
  if (s->tail)
    s->tail->next = c;
  else
    s->head = c;
  s->tail = c;
  s->nchildren++;
}

void ax__sup_append(ax__sup *s, ax__sup_child *c) { append(s, c); }

static void pend_add(ax__sup *s, ax__sup_child *c) {
  if (c->needs_restart) return;
  c->needs_restart = true;
  c->pend_next = NULL;
  if (s->pend_tail)
    s->pend_tail->pend_next = c;
  else
    s->pend_head = c;
  s->pend_tail = c;
}

void ax__sup_pend_remove(ax__sup *s, ax__sup_child *c) {
  if (!c->needs_restart) return;
  c->needs_restart = false;
  ax__sup_child *prev = NULL;
  for (ax__sup_child *p = s->pend_head; p; prev = p, p = p->pend_next) {
    if (p != c) continue;
    if (prev)
      prev->pend_next = c->pend_next;
    else
      s->pend_head = c->pend_next;
    if (s->pend_tail == c) s->pend_tail = prev;
    return;
  }
}

/* Removes a child that is not running (nor being stopped) and frees it. */
void ax__sup_child_delete(ax__sup *s, ax__sup_child *c) {
  ax__sup_pend_remove(s, c);
  if (c->prev)
    c->prev->next = c->next;
  else
    s->head = c->next;
  if (c->next)
    c->next->prev = c->prev;
  else
    s->tail = c->prev;
  s->nchildren--;
  ax__sup_child_free(s, c);
}

ax__sup_child *ax__sup_find_id(ax__sup *s, const char *id, size_t len) {
  for (ax__sup_child *c = s->head; c; c = c->next)
    if (strlen(c->id) == len && memcmp(c->id, id, len) == 0) return c;
  return NULL;
}

/* ---- a failed start's cleanup, innermost first ----
 * A child supervisor's init runs on this thread, inside our spawn of it.
 * When that init fails, the reaper that finishes its cleanup is handed back
 * to us through this thread's slot (only by the supervisor whose parent set
 * the slot), and our own cleanup waits for that reaper before it stops our
 * older children: the inner tree stops first, as it does in OTP, where a
 * sub-supervisor's start returns only after its cleanup. */
typedef struct ax__sup_handoff {
  uint64_t parent; /* the supervisor whose spawn of a child is running */
  ax_pid reaper;   /* set by that child if its start failed with a reaper */
} ax__sup_handoff;

static _Thread_local ax__sup_handoff *tl_handoff;

/* Tells the parent (if it is starting us right now) who finishes our cleanup. */
static void hand_up(const ax__sup *s, ax_pid reaper) {
  if (tl_handoff && s->parent.id && tl_handoff->parent == s->parent.id)
    tl_handoff->reaper = reaper;
}

/* Starts one instance of c, linked. During the init of a blocking start,
 * a sub-supervisor child gets the start's waiter for its own reaper; during
 * any init, the reaper of its failed start comes back in s->inner_reaper. */
/* Kills a child (instance pid of c) this supervisor lets go of, with the
 * kill of c's kit (built before it started: needs no memory), and unlinks
 * it. Were the kill not sent, the link would stay: this supervisor's own
 * exit then reaches the child through it (reserved with the link,
 * docs/hardening.md); unlinked, it would be orphaned. */
static void kill_untracked(ax_actor *self, ax__sup_child *c, ax_pid pid) {
  ax_err e = ax__exit_kit_send(ax_actor_system(self), &c->kit, ax_self(self).id, pid.id,
                               AX_REASON_KILL);
  if (e == AX_OK || e == AX_ENOACTOR) ax_unlink(self, pid);
}

ax_err ax__sup_start_instance(ax_actor *self, ax__sup *s, ax__sup_child *c) {
  bool patch = s->waiter && !s->reaper && c->start == &ax_supervisor_spec && !c->arg_shared &&
               c->arg_len >= sizeof(ax__sup_hdr);
  if (patch) set_hdr_u64(c->arg, offsetof(ax__sup_hdr, waiter), (uint64_t)(uintptr_t)s->waiter);
  /* What stopping it will take, before it runs (kept across restarts;
   * only what a stop used up is built again). */
  if (ax__exit_kit_fill(&c->kit) != AX_OK) {
    ax__sup_log(self, s, AX_LOG_ERROR, "child %s failed to start: %s", c->id,
                ax_err_name(AX_ENOMEM));
    return AX_ENOMEM;
  }
  bool hand = s->starting && c->start == &ax_supervisor_spec;
  ax__sup_handoff h = {.parent = ax_self(self).id, .reaper = AX_PID_NONE}, *prev = tl_handoff;
  if (hand) tl_handoff = &h;
  ax_pid pid;
  ax_err e = ax_spawn_link(self, ax__sup_spawn_spec(c->start), c->arg, c->arg_len, &pid);
  if (hand) tl_handoff = prev;
  if (patch) set_hdr_u64(c->arg, offsetof(ax__sup_hdr, waiter), 0);
  if (e != AX_OK) {
    if (hand) s->inner_reaper = h.reaper;
    ax__sup_log(self, s, AX_LOG_ERROR, "child %s failed to start: %s", c->id, ax_err_name(e));
    return e;
  }
  if (!ax__u64map_put(&s->by_pid, pid.id, (uint64_t)(uintptr_t)c)) {
    kill_untracked(self, c, pid); /* untracked: stop it rather than lose it */
    return AX_ENOMEM;
  }
  c->pid = pid;
  ax__sup_log(self, s, AX_LOG_DEBUG, "started child %s <%llx>", c->id, (unsigned long long)pid.id);
  return AX_OK;
}

/* ---- restarts ---- */

/* Records a restart now; false when it makes more than intensity restarts
 * within the period. OTP's window keeps the restarts at times t with
 * t >= now - period: one exactly a period old still counts. */
static bool add_restart(ax_actor *self, ax__sup *s) {
  uint64_t now = ax__clock_ms(ax_actor_system(self));
  while (s->stamps_n && now - s->stamps[s->stamps_head] > s->period_ms) {
    s->stamps_head = (s->stamps_head + 1) % s->stamps_cap;
    s->stamps_n--;
  }
  if (s->stamps_n + 1 > s->intensity) return false;
  if (s->stamps_n == s->stamps_cap) {
    uint32_t ncap = s->stamps_cap ? s->stamps_cap * 2 : 4;
    if (ncap > s->intensity) ncap = s->intensity;
    uint64_t *n = ax__alloc(sizeof(uint64_t) * ncap);
    if (!n) return false; /* cannot count restarts: give up rather than storm */
    for (uint32_t i = 0; i < s->stamps_n; i++)
      n[i] = s->stamps[(s->stamps_head + i) % s->stamps_cap];
    ax__free(s->stamps, sizeof(uint64_t) * s->stamps_cap);
    s->stamps = n;
    s->stamps_cap = ncap;
    s->stamps_head = 0;
  }
  s->stamps[(s->stamps_head + s->stamps_n) % s->stamps_cap] = now;
  s->stamps_n++;
  return true;
}

/* A restart is retried through a message to self, so that other messages
 * (a parent's shutdown) get their turn between attempts. */
void ax__sup_retry_later(ax_actor *self, ax__sup *s, ax__sup_child *c) {
  pend_add(s, c);
  if (s->retry_queued) return;
  if (ax__send(ax_actor_system(self), ax__ctx_get(), ax_self(self).id, ax_self(self), AX__SUP_MSG_RETRY, 0, 0, NULL,
               0, NULL) == AX_OK) {
    s->retry_queued = true;
    return;
  }
  ax__sup_log(self, s, AX_LOG_ERROR, "cannot schedule a restart: shutting down");
  ax__sup_begin_shutdown(self, s, AX_REASON_SHUTDOWN);
}

void ax__sup_log_restart(ax_actor *self, ax__sup *s, ax__sup_child *c) {
  ax__sup_log(self, s, AX_LOG_WARN, "restarted child %s as <%llx> (restart %llu)", c->id,
              (unsigned long long)c->pid.id, (unsigned long long)s->restarts);
}

/* Applies the strategy to child c, whose restart is decided. */
static void restart(ax_actor *self, ax__sup *s, ax__sup_child *c) {
  if (!add_restart(self, s)) {
    ax__sup_log(self, s, AX_LOG_ERROR,
                "reached max restart intensity (%u in %u ms) at child %s: shutting down",
                s->intensity, s->period_ms, c->id);
    ax__sup_begin_shutdown(self, s, AX_REASON_SHUTDOWN);
    return;
  }
  s->restarts++;
  c->restarts++;
  ax__obs_restart(self);
  if (s->strategy == AX_SUP_ONE_FOR_ALL) {
    ax__sup_begin_group(self, s, s->head);
  } else if (s->strategy == AX_SUP_REST_FOR_ONE) {
    ax__sup_begin_group(self, s, c);
  } else if (ax__sup_start_instance(self, s, c) == AX_OK) {
    ax__sup_log_restart(self, s, c);
  } else {
    ax__sup_retry_later(self, s, c);
  }
}

static void report_exit(ax_actor *self, ax__sup *s, ax__sup_child *c, ax_pid pid, ax_reason r) {
  unsigned long long p = (unsigned long long)pid.id;
  if (c->type == AX_CHILD_SUPERVISOR && r == AX_REASON_SHUTDOWN) {
    s->escalations++;
    ax__sup_log(self, s, AX_LOG_ERROR, "child supervisor %s <%llx> gave up (exited: %s)", c->id,
                p, ax_reason_str(r));
  } else if (abnormal(r)) {
    s->failures++;
    ax__sup_log(self, s, AX_LOG_ERROR, "child %s <%llx> exited: %s", c->id, p, ax_reason_str(r));
  } else {
    ax__sup_log(self, s, AX_LOG_DEBUG, "child %s <%llx> exited: %s", c->id, p, ax_reason_str(r));
  }
}

static void on_child_exit(ax_actor *self, ax__sup *s, ax__sup_child *c, ax_reason r) {
  ax_pid pid = c->pid;
  /* A reaper's link to c was made by a signal, which c answers with an
   * exit (reason AX_ENOMEM) when it cannot hold the link: c may be alive.
   * The kill makes sure (AX_ENOACTOR, kit kept, if it is not). */
  if (s->reaper && !c->wait_only) ax__sup_signal(self, c, AX_REASON_KILL);
  ax__u64map_del(&s->by_pid, pid.id, NULL);
  c->pid = AX_PID_NONE;
  if (c->kill_timer.id) {
    (void)ax_timer_cancel(self, c->kill_timer);
    c->kill_timer = (ax_timer){0};
  }
  if (c->stopping) {
    ax__sup_stopped_one(self, s, c, pid, r);
    return;
  }
  report_exit(self, s, c, pid, r);
  if (c->marked) { /* in the stop set already: the job skips it */
    c->marked = false;
    return;
  }
  bool again = c->restart == AX_RESTART_PERMANENT ||
               (c->restart == AX_RESTART_TRANSIENT && abnormal(r));
  if (!again) {
    if (c->restart == AX_RESTART_TEMPORARY || s->strategy == AX_SUP_SIMPLE_ONE_FOR_ONE)
      ax__sup_child_delete(s, c);
    return;
  }
  if (s->job != AX__JOB_NONE || s->retry_queued || s->pend_head)
    pend_add(s, c); /* decided once the current work is done */
  else
    restart(self, s, c);
}

static void on_exit_msg(ax_actor *self, ax__sup *s, const ax_msg *msg) {
  ax_exit_info info;
  if (msg->len != sizeof(info)) return;
  memcpy(&info, msg->data, sizeof(info));
  uint64_t v;
  if (!ax_pid_is_none(info.pid) && ax__u64map_get(&s->by_pid, info.pid.id, &v)) {
    on_child_exit(self, s, (ax__sup_child *)(uintptr_t)v, info.reason);
  } else if (ax_pid_is_none(info.pid) || ax_pid_eq(info.pid, s->parent)) {
    ax__sup_begin_shutdown(self, s, info.reason);
  }
  /* Otherwise a child given up on (failed start, untracked) or a stray
   * signal: nothing to do. */
}

/* Work postponed while a job ran: decided restarts, then requests. */
static void resume(ax_actor *self, ax__sup *s) {
  while (!s->stopped && s->job == AX__JOB_NONE) {
    if (s->pend_head && !s->retry_queued) {
      ax__sup_child *c = s->pend_head;
      ax__sup_pend_remove(s, c);
      restart(self, s, c);
    } else if (s->def_head) {
      ax__sup_deferred *d = s->def_head;
      s->def_head = d->next;
      if (!s->def_head) s->def_tail = NULL;
      ax__sup_on_request(self, s, &d->msg);
      ax__free(d, d->size);
    } else {
      break;
    }
  }
}

/* ---- jobs end here ---- */

/* Starts the stopped children from s->group on, in order (a group restart
 * of one_for_all / rest_for_one). Temporary children are not restarted. */
static void restart_group(ax_actor *self, ax__sup *s) {
  for (ax__sup_child *c = s->group, *next; c; c = next) {
    next = c->next;
    if (!ax_pid_is_none(c->pid)) continue;
    ax__sup_pend_remove(s, c);
    if (c->restart == AX_RESTART_TEMPORARY) {
      ax__sup_child_delete(s, c);
      continue;
    }
    if (ax__sup_start_instance(self, s, c) != AX_OK) {
      ax__sup_retry_later(self, s, c); /* the retry restarts the group again */
      return;
    }
    ax__sup_log_restart(self, s, c);
  }
}

void ax__sup_job_done(ax_actor *self, ax__sup *s) {
  int job = s->job;
  ax__sup_child *c = s->cursor;
  s->job = AX__JOB_NONE;
  s->cursor = NULL;
  s->parallel = false;
  if (job == AX__JOB_SHUTDOWN) {
    s->stopped = true;
    ax__sup_flush_deferred(self, s, AX_ECLOSED);
    ax__sup_log(self, s, AX_LOG_DEBUG, "stopped its children; exiting: %s",
                ax_reason_str(s->exit_reason));
    ax_exit(self, ax_self(self), s->exit_reason);
    return;
  }
  if (job == AX__JOB_TERMINATE) {
    ax__sup_reply(self, &s->job_req->msg, AX_OK, AX_PID_NONE);
    ax__free(s->job_req, s->job_req->size);
    s->job_req = NULL;
    if (c->restart == AX_RESTART_TEMPORARY || s->strategy == AX_SUP_SIMPLE_ONE_FOR_ONE)
      ax__sup_child_delete(s, c);
  }
  if (s->shutdown_pending) {
    s->shutdown_pending = false;
    ax__sup_begin_shutdown(self, s, s->exit_reason);
    return;
  }
  if (job == AX__JOB_GROUP) restart_group(self, s);
}

/* ---- the actor ---- */

static void free_all(ax__sup *s) {
  for (ax__sup_child *c = s->head, *n; c; c = n) {
    n = c->next;
    ax__sup_child_free(s, c);
  }
  s->head = s->tail = s->pend_head = s->pend_tail = NULL;
  s->nchildren = 0;
  if (s->tmpl) ax__sup_child_free(s, s->tmpl);
  s->tmpl = NULL;
  ax__u64map_free(&s->by_pid);
  ax__free(s->stamps, sizeof(uint64_t) * s->stamps_cap);
  s->stamps = NULL;
  s->stamps_cap = s->stamps_n = 0;
}

/* Reads the children of a blob (in order); reaper lists carry pids. */
static ax_err load_children(ax_actor *self, ax__sup *s, const void *blob, size_t len,
                            const ax__sup_hdr *h) {
  size_t off = ax__sup_children_off(h);
  for (uint32_t i = 0; i < h->nchildren; i++) {
    ax__sup_rec r;
    const char *id;
    const void *arg;
    if (!ax__sup_read_rec(blob, len, &off, &r, &id, &arg) || !r.start) return AX_EINVAL;
    ax__sup_child *c = ax__sup_child_new(self, &r, id, arg, NULL);
    if (!c) return AX_ENOMEM;
    c->pid.id = h->magic == AX__REAP_MAGIC ? r.pid : 0;
    c->wait_only = h->magic == AX__REAP_MAGIC && r.restart == AX__RESTART_WAIT;
    if (h->strategy == AX_SUP_SIMPLE_ONE_FOR_ONE)
      s->tmpl = c;
    else
      append(s, c);
  }
  if (h->strategy == AX_SUP_SIMPLE_ONE_FOR_ONE && !s->tmpl) return AX_EINVAL;
  return AX_OK;
}

/* A failed start at child `failed`: hand the children already running to a
 * reaper (which links to them, waits for the reaper of failed's own start
 * if there is one, then stops them in reverse order by their shutdown
 * specs), unlink them, and let init fail. Without a reaper, kill them.
 * Returns the reaper that finishes the cleanup of this start, or none. */
static ax_pid hand_to_reaper(ax_actor *self, ax__sup *s, const ax__sup_child *failed) {
  bool running = false;
  for (ax__sup_child *c = s->head; c && !running; c = c->next) running = !ax_pid_is_none(c->pid);
  if (!running) return s->inner_reaper; /* nothing of ours to stop: pass it on */
  void *blob = NULL;
  size_t len = 0;
  ax_pid reaper = AX_PID_NONE;
  ax_err e = ax__sup_pack_reap(s, (uint64_t)(uintptr_t)s->waiter, s->inner_reaper, failed->id,
                               &blob, &len);
  if (e == AX_OK) e = ax_spawn(self, &ax__sup_actor_spec, blob, len, &reaper);
  if (blob) ax__free(blob, len);
  for (ax__sup_child *c = s->tail; c; c = c->prev) {
    if (ax_pid_is_none(c->pid)) continue;
    if (e == AX_OK)
      ax_unlink(self, c->pid); /* the reaper has it */
    else
      kill_untracked(self, c, c->pid); /* init fails: our exit follows */
  }
  return e == AX_OK ? reaper : s->inner_reaper;
}

static ax_err start_all(ax_actor *self, ax__sup *s) {
  for (ax__sup_child *c = s->head; c; c = c->next) {
    ax_err e = ax__sup_start_instance(self, s, c);
    if (e == AX_OK) continue;
    ax__sup_log(self, s, AX_LOG_ERROR, "start failed at child %s (%s)%s", c->id, ax_err_name(e),
                c == s->head ? "" : "; stopping the children started before it");
    hand_up(s, hand_to_reaper(self, s, c));
    return e;
  }
  return AX_OK;
}

/* A reaper links to its children and stops them all, then exits. Its
 * start fails (AX_ENOMEM) unless it holds every child it is to stop (link,
 * tracking, kit): the supervisor handing them over then kills them itself,
 * with its own kits. An inner reaper it cannot link to is not waited for. */
static ax_err reaper_start(ax_actor *self, ax__sup *s, uint64_t waiter) {
  s->reaper = true;
  for (ax__sup_child *c = s->head; c; c = c->next) {
    bool held = (c->wait_only || ax__exit_kit_fill(&c->kit) == AX_OK) &&
                ax_link(self, c->pid) == AX_OK &&
                ax__u64map_put(&s->by_pid, c->pid.id, (uint64_t)(uintptr_t)c);
    if (held) continue;
    if (!c->wait_only) return AX_ENOMEM;
    c->pid = AX_PID_NONE;
  }
  s->waiter = (ax__sup_waiter *)(uintptr_t)waiter;
  if (s->waiter) ax__sup_waiter_retain(s->waiter);
  ax__sup_begin_shutdown(self, s, AX_REASON_NORMAL);
  return AX_OK;
}

static ax_err sup_init(ax_actor *self, void *state, const void *arg, size_t len) {
  ax__sup *s = state;
  ax__sup_hdr h;
  if (!ax__sup_read_hdr(arg, len, &h) || h.strategy > AX_SUP_SIMPLE_ONE_FOR_ONE) return AX_EINVAL;
  if (h.name_len)
    memcpy(s->name, (const char *)arg + sizeof(h), h.name_len);
  else
    strcpy(s->name, h.magic == AX__REAP_MAGIC ? "reaper" : "supervisor");
  s->strategy = (ax_sup_strategy)h.strategy;
  s->intensity = h.intensity;
  s->period_ms = h.period_ms;
  s->parent.id = h.parent;
  ax_err e = ax_trap_exit(self, true);
  if (e != AX_OK) return e;
  if (h.reg_len && h.magic == AX__SUP_MAGIC) {
    /* Before the children start, so that they can find it (OTP's order). */
    char reg[AX__SUP_REG_MAX + 1];
    memcpy(reg, (const char *)arg + sizeof(h) + ((h.name_len + 7u) & ~(size_t)7u), h.reg_len);
    reg[h.reg_len] = '\0';
    if (strlen(reg) != h.reg_len) return AX_EINVAL;
    e = ax_register(ax_actor_system(self), reg, ax_self(self));
    if (e != AX_OK) return e;
  }
  e = load_children(self, s, arg, len, &h);
  if (e != AX_OK) {
    free_all(s);
    return e;
  }
  if (h.magic == AX__REAP_MAGIC) {
    e = reaper_start(self, s, h.waiter);
    if (e != AX_OK) free_all(s);
    return e;
  }
  s->waiter = (ax__sup_waiter *)(uintptr_t)h.waiter; /* borrowed during init only */
  s->starting = true;
  e = start_all(self, s);
  s->starting = false;
  s->waiter = NULL;
  if (e != AX_OK) free_all(s);
  return e;
}

static ax_err sup_behaviour(ax_actor *self, const ax_msg *msg) {
  ax__sup *s = ax_state(self);
  bool from_self = ax_pid_eq(msg->from, ax_self(self));
  if (msg->type == AX_MSG_EXIT) {
    on_exit_msg(self, s, msg);
  } else if (msg->type == AX__SUP_MSG_KILL && from_self && (msg->flags & AX_MSGF_TIMER)) {
    ax__sup_on_kill_timer(self, s, msg);
  } else if (msg->type == AX__SUP_MSG_RETRY && from_self) {
    s->retry_queued = false;
  } else if ((msg->flags & AX_MSGF_REQUEST) && msg->type >= AX_MSG_SUP_FIRST &&
             msg->type <= AX_MSG_SUP_LAST) {
    /* Only the runtime can send these types (public sends refuse them):
     * the request was made by ax_supervisor_* from its caller's arguments. */
    ax__sup_on_request(self, s, msg);
  } else if (msg->flags & AX_MSGF_REQUEST) {
    ax__sup_reply(self, msg, AX_ENOTSUP, AX_PID_NONE);
  }
  resume(self, s);
  return AX_OK;
}

static void sup_terminate(ax_actor *self, void *state, ax_reason reason) {
  ax__sup *s = state;
  if (s->job_req) {
    ax__sup_reply(self, &s->job_req->msg, AX_ECLOSED, AX_PID_NONE);
    ax__free(s->job_req, s->job_req->size);
    s->job_req = NULL;
  }
  ax__sup_flush_deferred(self, s, AX_ECLOSED);
  if (!s->stopped) /* killed, or stopped by the system without going through its children */
    ax__sup_log(self, s, reason == AX_REASON_SHUTDOWN ? AX_LOG_INFO : AX_LOG_WARN,
                "stopped abruptly: %s", ax_reason_str(reason));
  free_all(s);
  if (s->reaper && s->waiter) ax__sup_waiter_done(s->waiter);
  s->waiter = NULL;
}

/* The spec the runtime spawns supervisors and reapers from. It is not
 * public: its init argument (a packed blob) holds pointers (child specs, a
 * blocking start's waiter), so only the runtime's own packer may hand it
 * one. */
const ax_actor_spec ax__sup_actor_spec = {
    .name = "supervisor",
    .behaviour = sup_behaviour,
    .state_size = sizeof(ax__sup),
    .init = sup_init,
    .terminate = sup_terminate,
};

/* The public spec is only a marker for sub-supervisor child specs: spawned
 * directly, whatever the argument, it refuses to start. */
static ax_err marker_init(ax_actor *self, void *state, const void *arg, size_t len) {
  ax_log(ax_actor_system(self), AX_LOG_WARN,
         "ax_supervisor_spec cannot be spawned directly: use ax_supervisor_start* or a child spec");
  return AX_EINVAL;
}

static ax_err marker_behaviour(ax_actor *self, const ax_msg *msg) { return AX_OK; }

const ax_actor_spec ax_supervisor_spec = {
    .name = "supervisor",
    .behaviour = marker_behaviour,
    .init = marker_init,
};

const ax_actor_spec *ax__sup_spawn_spec(const ax_actor_spec *start) {
  return start == &ax_supervisor_spec ? &ax__sup_actor_spec : start;
}

bool ax__sup_is_spec(const ax_actor_spec *spec) { return spec == &ax__sup_actor_spec; }
