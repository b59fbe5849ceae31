/* Axon: how a supervisor stops children. Stopping takes messages (each
 * child's EXIT), so a stop is a job: mark the children to stop, signal them
 * newest first, one at a time (or all at once for simple_one_for_one, as
 * OTP does), and finish the job when the last is down. A finite shutdown
 * arms a timer on the supervisor itself that kills a child still alive when
 * it fires. */
#include <string.h>

#include "supervisor/supervisor_int.h"

/* Sends child c the exit signal reason from its kit (built when c started:
 * needs no memory). ENOACTOR: its EXIT is on its way. */
void ax__sup_signal(ax_actor *self, ax__sup_child *c, ax_reason reason) {
  (void)ax__exit_kit_send(ax_actor_system(self), &c->kit, ax_self(self).id, c->pid.id, reason);
}

/* Sends c its stop: kill for brutal_kill, else exit(shutdown), with the kill
 * timer armed first, so its deadline counts from before the signal. */
void ax__sup_stop_signal(ax_actor *self, ax__sup *s, ax__sup_child *c) {
  c->marked = c->stopping = true;
  if (c->wait_only) return; /* an inner reaper (of a reaper) stops by itself */
  if (c->shutdown == AX_SHUTDOWN_BRUTAL_KILL) {
    ax__sup_signal(self, c, AX_REASON_KILL);
    return;
  }
  ax_err e = AX_OK;
  if (c->shutdown != AX_SHUTDOWN_INFINITY)
    e = ax__send_after(self, c->shutdown, ax_self(self), AX__SUP_MSG_KILL, &c->pid,
                      sizeof(c->pid), &c->kill_timer);
  ax__sup_signal(self, c, AX_REASON_SHUTDOWN);
  if (e == AX_OK) return;
  /* No timer (no memory; timers are accepted while the system shuts
   * down): a child that does not stop on the signal would hold its
   * supervisor forever, so the kill follows at once. A non-trapping child
   * still stops with shutdown: the two signals arrive in order. */
  c->kill_timer = (ax_timer){0};
  ax__sup_log(self, s, e == AX_ECLOSED ? AX_LOG_DEBUG : AX_LOG_WARN,
              "cannot arm the %u ms shutdown timer of child %s (%s): killing it after the signal",
              c->shutdown, c->id, ax_err_name(e));
  ax__sup_signal(self, c, AX_REASON_KILL);
}

void ax__sup_stop_next(ax_actor *self, ax__sup *s) {
  ax__sup_child *c = s->cursor ? s->cursor->prev : s->tail;
  for (; c; c = c->prev) {
    if (!c->marked) continue;
    if (ax_pid_is_none(c->pid)) { /* died on its own meanwhile */
      c->marked = false;
      continue;
    }
    s->cursor = c;
    ax__sup_stop_signal(self, s, c);
    return;
  }
  ax__sup_job_done(self, s);
}

void ax__sup_stop_parallel(ax_actor *self, ax__sup *s) {
  s->parallel = true;
  s->pending = 0;
  for (ax__sup_child *c = s->tail; c; c = c->prev) {
    if (!c->marked) continue;
    if (ax_pid_is_none(c->pid)) {
      c->marked = false;
      continue;
    }
    s->pending++;
    ax__sup_stop_signal(self, s, c);
  }
  if (!s->pending) ax__sup_job_done(self, s);
}

void ax__sup_on_kill_timer(ax_actor *self, ax__sup *s, const ax_msg *msg) {
  ax_pid pid;
  uint64_t v;
  if (msg->len != sizeof(pid)) return;
  memcpy(&pid, msg->data, sizeof(pid));
  if (!ax__u64map_get(&s->by_pid, pid.id, &v)) return;
  ax__sup_child *c = (ax__sup_child *)(uintptr_t)v;
  if (!c->stopping || c->kill_timer.id != msg->ref) return;
  c->kill_timer = (ax_timer){0};
  ax__sup_log(self, s, AX_LOG_WARN, "child %s <%llx> did not stop within %u ms: killing it", c->id,
              (unsigned long long)pid.id, c->shutdown);
  ax__sup_signal(self, c, AX_REASON_KILL);
}

void ax__sup_stopped_one(ax_actor *self, ax__sup *s, ax__sup_child *c, ax_pid pid, ax_reason r) {
  c->stopping = c->marked = false;
  bool expected = r == AX_REASON_SHUTDOWN || r == AX_REASON_KILLED || c->wait_only;
  ax__sup_log(self, s, expected ? AX_LOG_DEBUG : AX_LOG_WARN, "child %s <%llx> stopped: %s", c->id,
              (unsigned long long)pid.id, ax_reason_str(r));
  if (s->job == AX__JOB_TERMINATE) {
    ax__sup_job_done(self, s);
  } else if (s->parallel) {
    if (--s->pending == 0) ax__sup_job_done(self, s);
  } else {
    ax__sup_stop_next(self, s);
  }
}

void ax__sup_begin_shutdown(ax_actor *self, ax__sup *s, ax_reason reason) {
  if (s->stopped || s->job == AX__JOB_SHUTDOWN) return;
  s->exit_reason = reason;
  if (s->job != AX__JOB_NONE) { /* after the current job; queued requests are refused now */
    s->shutdown_pending = true;
    ax__sup_flush_deferred(self, s, AX_ECLOSED);
    return;
  }
  s->job = AX__JOB_SHUTDOWN;
  ax__sup_flush_deferred(self, s, AX_ECLOSED);
  for (ax__sup_child *c = s->head; c; c = c->next) c->marked = !ax_pid_is_none(c->pid);
  s->cursor = NULL;
  if (s->strategy == AX_SUP_SIMPLE_ONE_FOR_ONE)
    ax__sup_stop_parallel(self, s);
  else
    ax__sup_stop_next(self, s);
}

void ax__sup_begin_group(ax_actor *self, ax__sup *s, ax__sup_child *from) {
  s->job = AX__JOB_GROUP;
  s->group = from;
  s->cursor = NULL;
  for (ax__sup_child *c = from; c; c = c->next) c->marked = !ax_pid_is_none(c->pid);
  ax__sup_stop_next(self, s);
}

void ax__sup_begin_terminate(ax_actor *self, ax__sup *s, ax__sup_child *c,
                             ax__sup_deferred *req) {
  s->job = AX__JOB_TERMINATE;
  s->job_req = req;
  s->cursor = c;
  ax__sup_stop_signal(self, s, c);
}
