/* Axon: ax_call, the blocking request for non-actor threads. A small proxy
 * actor owns the request's return address; it copies the reply into the
 * caller's waiter and stops. The waiter is shared by the caller and the
 * proxy and freed by whichever lets go last. */
#include <string.h>
#include <time.h>

#include "actor/actor_int.h"

typedef struct call_waiter {
  pthread_mutex_t lock;
  pthread_cond_t cv;
  bool done;
  ax_err result;
  ax_ref ref;
  ax_pid target; /* monitored by the proxy: its death ends the call */
  void *reply;
  size_t cap;
  size_t len;
  uint32_t type;
  _Atomic int refs; /* caller + proxy; acq_rel so the last one sees all writes */
} call_waiter;

typedef struct proxy_state {
  call_waiter *w;
} proxy_state;

static void waiter_release(call_waiter *w) {
  if (atomic_fetch_sub_explicit(&w->refs, 1, memory_order_acq_rel) != 1) return;
  pthread_mutex_destroy(&w->lock);
  pthread_cond_destroy(&w->cv);
  ax__free(w, sizeof(*w));
}

/* Records the outcome once; later outcomes (a reply after the timeout) are
 * ignored. Returns true if this call set it. */
static bool waiter_finish(call_waiter *w, ax_err result, const ax_msg *reply) {
  pthread_mutex_lock(&w->lock);
  bool first = !w->done;
  if (first) {
    w->done = true;
    w->result = result;
    if (reply) {
      w->type = reply->type;
      w->len = reply->len;
      if (!w->reply)
        ; /* the caller discards the payload */
      else if (reply->len > w->cap)
        w->result = AX_ENOBUFS;
      else if (reply->len)
        memcpy(w->reply, reply->data, reply->len);
    }
    pthread_cond_signal(&w->cv);
  }
  pthread_mutex_unlock(&w->lock);
  return first;
}

static ax_err proxy_init(ax_actor *self, void *state, const void *arg, size_t len) {
  (void)len;
  call_waiter *w;
  memcpy(&w, arg, sizeof(w));
  ((proxy_state *)state)->w = w;
  /* A target that stops without answering ends the call at once (its DOWN
   * comes after any reply it sent, so no reply is lost to it). */
  return ax_monitor(self, w->target, NULL);
}

static ax_err proxy_behaviour(ax_actor *self, const ax_msg *msg) {
  proxy_state *st = ax_state(self);
  /* Types below AX_MSG_USER only ever come from the runtime (public sends
   * refuse them), and a DOWN is always a system message: belt and braces. */
  if (msg->type == AX_MSG_DOWN && (msg->flags & AX_MSGF_SYSTEM)) {
    /* A target that could not record the monitor (out of memory) answers
     * with a DOWN of reason ENOMEM while it lives on: report that. */
    const ax_down_info *d = msg->data;
    bool oom = msg->len == sizeof(*d) && d->reason == AX_REASON_ERROR + AX_ENOMEM;
    waiter_finish(st->w, oom ? AX_ENOMEM : AX_ENOACTOR, NULL);
    return ax_exit(self, ax_self(self), AX_REASON_NORMAL);
  }
  if (!(msg->flags & AX_MSGF_REPLY) || msg->ref != st->w->ref) return AX_OK; /* stray */
  if (!waiter_finish(st->w, AX_OK, msg))
    atomic_fetch_add_explicit(&ax_actor_system(self)->late_replies, 1, memory_order_relaxed);
  return ax_exit(self, ax_self(self), AX_REASON_NORMAL);
}

static void proxy_terminate(ax_actor *self, void *state, ax_reason reason) {
  (void)self;
  call_waiter *w = ((proxy_state *)state)->w;
  waiter_finish(w, AX_ECLOSED, NULL); /* no-op if already answered */
  waiter_release(w);
}

static const ax_actor_spec proxy_spec = {
    .name = "ax_call",
    .behaviour = proxy_behaviour,
    .state_size = sizeof(proxy_state),
    .init = proxy_init,
    .terminate = proxy_terminate,
};

static call_waiter *waiter_new(void *reply, size_t cap) {
  call_waiter *w = ax__calloc(sizeof(*w));
  if (!w) return NULL;
  pthread_mutex_init(&w->lock, NULL);
  ax__cond_init_monotonic(&w->cv);
  w->reply = reply;
  w->cap = cap;
  atomic_init(&w->refs, 2);
  return w;
}

static bool waiter_done(void *arg) {
  call_waiter *w = arg;
  pthread_mutex_lock(&w->lock);
  bool done = w->done;
  pthread_mutex_unlock(&w->lock);
  return done;
}

/* Blocks until the waiter is done or the deadline (0 = none) passes. */
static void waiter_wait(call_waiter *w, uint64_t deadline_ns) {
  pthread_mutex_lock(&w->lock);
  while (!w->done && ax__cond_wait_until(&w->cv, &w->lock, deadline_ns)) {
  }
  pthread_mutex_unlock(&w->lock);
}

ax_err ax_call(ax_system *sys, ax_pid to, uint32_t type, const void *data, size_t len,
               uint32_t timeout_ms, void *reply, size_t *reply_len, uint32_t *reply_type) {
  if (ax_msg_type_reserved(type)) return AX_EINVAL;
  return ax__call(sys, to, type, data, len, timeout_ms, reply, reply_len, reply_type);
}

ax_err ax__call(ax_system *sys, ax_pid to, uint32_t type, const void *data, size_t len,
                uint32_t timeout_ms, void *reply, size_t *reply_len, uint32_t *reply_type) {
  if (!sys || (len && !data) || (reply && !reply_len)) return AX_EINVAL;
  if (ax__ctx_get()->worker) return AX_ESTATE; /* actors must never block */
  uint64_t deadline = timeout_ms == AX_INFINITY ? 0 : ax__now_ns() + (uint64_t)timeout_ms * 1000000u;
  call_waiter *w = waiter_new(reply, reply && reply_len ? *reply_len : 0);
  if (!w) return AX_ENOMEM;
  w->ref = ax__new_ref(sys);
  w->target = to;
  ax_pid proxy;
  ax_err e = ax__spawn(sys, &proxy_spec, &w, sizeof(w), &proxy, NULL);
  if (e != AX_OK) {
    atomic_store(&w->refs, 1); /* the proxy never took its reference */
    waiter_release(w);
    return e;
  }
  ax__ctx *c = ax__ctx_get();
  e = ax__send(sys, c, proxy.id, to, type, AX_MSGF_REQUEST, w->ref, data, len, NULL);
  if (e == AX_OK) {
    if (sys->det) /* this thread runs the actors meanwhile, in virtual time */
      ax__det_run_until(sys, waiter_done, w, timeout_ms);
    else
      waiter_wait(w, deadline);
    waiter_finish(w, AX_ETIMEDOUT, NULL); /* no-op if answered */
    e = w->result;
  }
  if (e != AX_OK) ax_system_exit(sys, proxy, AX_REASON_KILL); /* the proxy may be gone: fine */
  if (reply_len && (e == AX_OK || e == AX_ENOBUFS)) *reply_len = w->len;
  if (reply_type && e == AX_OK) *reply_type = w->type;
  waiter_release(w);
  return e;
}
