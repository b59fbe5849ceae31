/* Axon: the socket layer's per-system state (layer AX__LAYER_IO): started on first
 * use, it owns the handle table for connections and listeners, the command
 * queue that hands work to the thread driving the reactor, the close/retry timers
 * (reactor timers on the system's clock), the
 * owner index used when an actor stops, and the graveyard that frees
 * objects only once no poller event can still name them. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "io/socket.h"

/* The layer's state is the system's AX__LAYER_IO slot: published once by
 * ax__layer_start and read lock-free; ax_system_free calls its fini
 * (io_layer_fini) after the reactor has stopped. */
static ax__io *io_load(ax_system *sys) { return ax__layer_get(sys, AX__LAYER_IO); }

static void io_wake(ax__io *io) {
  /* acq_rel: see io_tick, which clears the flag, then takes the queue.
   * Only the waker that sets the flag wakes the reactor; the reactor's wake
   * makes what we wrote before it visible to the pass it starts (poll.h). */
  if (atomic_exchange_explicit(&io->wake_pending, true, memory_order_acq_rel)) return;
  ax__reactor_wake(io->reactor);
}

/* ---- references ---- */

void ax__iobj_retain(ax__iobj *o) { atomic_fetch_add_explicit(&o->refs, 1, memory_order_relaxed); }

void ax__iobj_release(ax__iobj *o) {
  /* acq_rel: the freeing thread sees every other holder's writes. */
  if (atomic_fetch_sub_explicit(&o->refs, 1, memory_order_acq_rel) != 1) return;
  if (o->kind == AX__IO_CONN) {
    ax__conn_destroy((ax__conn *)o);
  } else {
    ax__iobj_free_reserved(o);
    ax__free(o, sizeof(ax__listener));
  }
}

ax__iobj *ax__iobj_get(ax_system *sys, uint64_t id, int kind) {
  ax__io *io = sys ? io_load(sys) : NULL;
  if (!io || !id) return NULL;
  ax__iobj *o = ax__table_acquire(&io->table, id);
  if (o && o->kind != kind) {
    ax__table_release(&io->table, id);
    return NULL;
  }
  return o;
}

void ax__iobj_put(ax__iobj *o) { ax__table_release(&o->io->table, o->id); }

/* ---- the command queue ---- */

_Atomic(ax__io_hook_fn) ax__io_cmd_hook;
_Atomic(ax__io_obj_hook_fn) ax__io_finalize_hook;

void ax__io_cmd(ax__iobj *o, uint32_t bits) {
  /* A non-zero previous value means o is queued (or being handled: the
   * reactor exchanges the bits to 0 only after unlinking o), so these bits
   * ride along. acq_rel: the reactor's exchange sees what we wrote before. */
  if (atomic_fetch_or_explicit(&o->cmd, bits, memory_order_acq_rel) != 0) return;
  ax__io *io = o->io;
  ax__iobj_retain(o);
  pthread_mutex_lock(&io->cmd_lock);
  o->cmd_next = NULL;
  if (io->cmd_tail)
    io->cmd_tail->cmd_next = o;
  else
    io->cmd_head = o;
  io->cmd_tail = o;
  pthread_mutex_unlock(&io->cmd_lock);
  io_wake(io);
}

void ax__io_close_req(ax__iobj *o, int reason, int code, uint32_t cmd) {
  int expect = -1;
  /* The first reason wins, except that an abort always says so. relaxed:
   * the command that follows publishes it (acq_rel fetch_or). */
  if (atomic_compare_exchange_strong_explicit(&o->close_req, &expect, reason, memory_order_relaxed,
                                              memory_order_relaxed) ||
      reason == AX_IO_CLOSE_ABORT) {
    if (reason == AX_IO_CLOSE_ABORT) atomic_store_explicit(&o->close_req, reason, memory_order_relaxed);
    atomic_store_explicit(&o->close_code, code, memory_order_relaxed);
  }
  ax__io_cmd(o, cmd);
}

/* Frees the objects finalised two command passes ago: the command pass is
 * a reactor tick, which runs once per reactor pass before the poller wait,
 * so every batch of events that could still carry their handlers has been
 * dispatched. */
static void graveyard(ax__io *io) {
  ax__iobj *o = io->reap;
  io->reap = io->dying;
  io->dying = NULL;
  while (o) {
    ax__iobj *next = o->grave_next;
    ax__iobj_release(o);
    o = next;
  }
  if (io->reap) io_wake(io);
}

/* The command pass: the layer's reactor tick (no fd of its own; the
 * reactor's wake is the only wakeup, on every platform). */
static int io_tick(void *arg) {
  ax__io *io = arg;
  /* relaxed: a waker sets the flag before it wakes the reactor, and what
   * it wrote before the wake happens-before the return of the poller wait
   * that consumes the wake (poll.h), which precedes this pass: the flag is
   * seen. Passes with socket events only stop here. */
  if (!atomic_load_explicit(&io->wake_pending, memory_order_relaxed)) return -1;
  /* Clear, then take the list. A waker that finds the flag set here
   * appended before our clear (its exchange is in the release sequence our
   * acq_rel clear reads), so the list taken below holds its object; one
   * that finds it clear wakes the reactor, and the next pass runs. */
  ax__io_hook_fn hook = atomic_load_explicit(&ax__io_cmd_hook, memory_order_acquire);
  if (AX_UNLIKELY(hook != NULL)) hook(io);
  atomic_exchange_explicit(&io->wake_pending, false, memory_order_acq_rel);
  graveyard(io);
  pthread_mutex_lock(&io->cmd_lock);
  ax__iobj *o = io->cmd_head;
  io->cmd_head = io->cmd_tail = NULL;
  pthread_mutex_unlock(&io->cmd_lock);
  while (o) {
    ax__iobj *next = o->cmd_next;
    uint32_t bits = atomic_exchange_explicit(&o->cmd, 0, memory_order_acq_rel);
    if (!o->finalized) {
      if (o->kind == AX__IO_CONN)
        ax__conn_command((ax__conn *)o, bits);
      else
        ax__listener_command((ax__listener *)o, bits);
    }
    ax__iobj_release(o);
    o = next;
  }
  return -1;
}

/* ---- timers (close deadlines, accept retries): reactor only ---- */

static void on_timer(ax__rtimer *t) {
  ax__iobj *o = (ax__iobj *)((char *)t - offsetof(ax__iobj, tmr));
  if (o->kind == AX__IO_CONN)
    ax__conn_on_timer((ax__conn *)o);
  else
    ax__listener_on_timer((ax__listener *)o);
}

void ax__io_timer_set(ax__iobj *o, uint32_t delay_ms) {
  o->tmr.fire = on_timer;
  ax__rtimer_set(o->io->reactor, &o->tmr, delay_ms);
}

void ax__io_timer_cancel(ax__iobj *o) { ax__rtimer_cancel(o->io->reactor, &o->tmr); }

/* ---- the owner index (io->owners_lock) ---- */

static bool index_add(ax__io *io, ax__iobj *o, uint64_t pid) {
  uint64_t head = 0;
  bool had = ax__u64map_get(&io->owners, pid, &head);
  if (!ax__u64map_put(&io->owners, pid, (uint64_t)(uintptr_t)o)) return false;
  o->o_prev = NULL;
  o->o_next = had ? (ax__iobj *)(uintptr_t)head : NULL;
  if (o->o_next) o->o_next->o_prev = o;
  o->indexed = true;
  /* release: a reader of owner sees the object's state as of the move. */
  atomic_store_explicit(&o->owner, pid, memory_order_release);
  return true;
}

static void index_del(ax__io *io, ax__iobj *o) {
  if (!o->indexed) return;
  uint64_t pid = atomic_load_explicit(&o->owner, memory_order_relaxed);
  if (o->o_prev) {
    o->o_prev->o_next = o->o_next;
  } else if (o->o_next) {
    ax__u64map_put(&io->owners, pid, (uint64_t)(uintptr_t)o->o_next); /* key exists: no alloc */
  } else {
    ax__u64map_del(&io->owners, pid, NULL);
  }
  if (o->o_next) o->o_next->o_prev = o->o_prev;
  o->o_prev = o->o_next = NULL;
  o->indexed = false;
}

static bool owner_alive(ax_system *sys, uint64_t pid) { return ax__pid_alive(sys, pid); }

void ax__io_set_owner(ax__iobj *o, uint64_t pid) {
  ax__io *io = o->io;
  pthread_mutex_lock(&io->owners_lock);
  if (o->retired) { /* closed meanwhile (the caller held the handle): the
                       index is for live sockets only, nothing to move */
    pthread_mutex_unlock(&io->owners_lock);
    return;
  }
  index_del(io, o);
  bool ok = index_add(io, o, pid);
  pthread_mutex_unlock(&io->owners_lock);
  if (!ok) {
    ax_log(io->sys, AX_LOG_ERROR, "io: out of memory indexing a socket's owner: closing it");
    ax__io_close_req(o, AX_IO_CLOSE_ERROR, ENOMEM, AX__CMD_ABORT);
  } else if (!owner_alive(io->sys, pid)) {
    /* The new owner stopped meanwhile (its on-stop pass may have missed
     * the object): close as its stop would have. */
    ax__io_close_req(o, AX_IO_CLOSE_OWNER, 0, AX__CMD_CLOSE);
  }
}

ax_err ax__iobj_publish(ax__io *io, ax__iobj *o, uint64_t owner) {
  ax_err e = ax__table_insert(&io->table, o, &o->id);
  if (e != AX_OK) return e;
  pthread_mutex_lock(&io->owners_lock);
  bool ok = index_add(io, o, owner);
  pthread_mutex_unlock(&io->owners_lock);
  if (ok && owner_alive(io->sys, owner)) return AX_OK;
  if (ok) {
    pthread_mutex_lock(&io->owners_lock);
    index_del(io, o);
    pthread_mutex_unlock(&io->owners_lock);
  }
  ax__table_kill(&io->table, o->id);
  ax__table_remove(&io->table, o->id);
  return ok ? AX_ENOACTOR : AX_ENOMEM;
}

/* The on-stop hook: closes every socket the stopping actor owns. For an
 * actor that owns none, one map lookup under the lock. */
static void io_on_stop(ax_system *sys, void *state, uint64_t pid) {
  ax__io *io = state;
  (void)sys;
  pthread_mutex_lock(&io->owners_lock);
  uint64_t head;
  if (ax__u64map_del(&io->owners, pid, &head)) {
    /* Lock order: owners_lock, then cmd_lock (inside ax__io_cmd). */
    for (ax__iobj *o = (ax__iobj *)(uintptr_t)head, *next; o; o = next) {
      next = o->o_next;
      o->o_prev = o->o_next = NULL;
      o->indexed = false;
      ax__io_close_req(o, AX_IO_CLOSE_OWNER, 0, AX__CMD_CLOSE);
    }
  }
  pthread_mutex_unlock(&io->owners_lock);
}

/* ---- messages to owners ---- */

ax_err ax__io_notify(ax__iobj *o, uint32_t type, const void *data, size_t len, ax_buf *buf) {
  ax_system *sys = o->io->sys;
  uint64_t to = atomic_load_explicit(&o->owner, memory_order_acquire);
  if (!to) return AX_ENOACTOR;
  /* I/O messages bypass the mailbox limit (the socket layer bounds them)
   * and carry the socket's id as their ref. */
  return ax__send_sys(sys, 0, to, type, 0, o->id, data, len, buf);
}

static void event_fill(ax__iobj *o, ax_io_event *ev, int reason, int code, uint64_t bytes) {
  memset(ev, 0, sizeof *ev);
  if (o->kind == AX__IO_CONN)
    ev->conn = (ax_conn){o->io->sys, o->id};
  else
    ev->listener = (ax_listener){o->io->sys, o->id};
  ev->reason = reason;
  ev->code = code;
  ev->bytes = bytes;
}

ax_err ax__io_event(ax__iobj *o, uint32_t type, int reason, int code, uint64_t bytes) {
  ax_io_event ev;
  event_fill(o, &ev, reason, code, bytes);
  return ax__io_notify(o, type, &ev, sizeof ev, NULL);
}

ax__mnode *ax__io_reserve(void) { return ax__msg_alloc(sizeof(ax_io_event)); }

void ax__iobj_free_reserved(ax__iobj *o) {
  if (o->last_msg) ax__msg_free(o->last_msg);
  o->last_msg = NULL;
  if (o->kind == AX__IO_CONN) {
    ax__conn *c = (ax__conn *)o;
    if (c->eof_msg) ax__msg_free(c->eof_msg);
    c->eof_msg = NULL;
    if (c->drained_msg) ax__msg_free(c->drained_msg);
    c->drained_msg = NULL;
    if (c->below_msg) ax__msg_free(c->below_msg);
    c->below_msg = NULL;
  }
}

ax_err ax__io_event_reserved(ax__iobj *o, ax__mnode **slot, uint32_t type, int reason, int code,
                             uint64_t bytes) {
  ax__mnode *n = *slot;
  *slot = NULL;
  if (!n) return ax__io_event(o, type, reason, code, bytes); /* cannot happen: used once */
  uint64_t to = atomic_load_explicit(&o->owner, memory_order_acquire);
  n->msg.type = type;
  n->msg.flags = AX_MSGF_SYSTEM;
  n->msg.from.id = 0;
  n->msg.ref = o->id;
  n->to = to;
  ax_io_event ev;
  event_fill(o, &ev, reason, code, bytes);
  memcpy(n->payload, &ev, sizeof ev); /* msg.data already points there */
  ax_err e = to ? ax__send_sys_node(o->io->sys, n) : AX_ENOACTOR;
  if (e != AX_OK) ax__msg_free(n);
  return e;
}

void ax__io_finalize(ax__iobj *o, int reason, int code, uint64_t unsent) {
  if (o->finalized) return;
  ax__io *io = o->io;
  o->finalized = true;
  ax__io_timer_cancel(o);
  pthread_mutex_lock(&io->owners_lock);
  o->retired = true; /* an owner change still holding the handle must not re-index it */
  index_del(io, o);
  pthread_mutex_unlock(&io->owners_lock);
  /* acquire: a test installs the hook (and its state) before the close */
  ax__io_obj_hook_fn hook = atomic_load_explicit(&ax__io_finalize_hook, memory_order_acquire);
  if (AX_UNLIKELY(hook != NULL)) hook(o);
  /* Holders of the handle are inside an API call that sees the socket
   * closed and returns; kill waits for them. */
  ax__table_kill(&io->table, o->id);
  if (o->kind == AX__IO_CONN) { /* its counters join the closed totals after
                                 the kill: a scrape never counts it twice */
    ax__conn *c = (ax__conn *)o;
    atomic_fetch_add_explicit(&io->conns_closed, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&io->closed_read,
                              atomic_load_explicit(&c->bytes_read, memory_order_relaxed),
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&io->closed_written,
                              atomic_load_explicit(&c->bytes_written, memory_order_relaxed),
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&io->closed_bp,
                              atomic_load_explicit(&c->bp_events, memory_order_relaxed),
                              memory_order_relaxed);
  }
  /* The reserved node: CLOSED cannot be lost for lack of memory. */
  if (reason >= 0) ax__io_event_reserved(o, &o->last_msg, AX_MSG_IO_CLOSED, reason, code, unsent);
  ax__table_remove(&io->table, o->id);
  o->grave_next = io->dying;
  io->dying = o;
  io_wake(io);
}

/* ---- start and stop ---- */

static void io_free(ax__io *io) {
  if (io->reserve_fd >= 0) close(io->reserve_fd);
  ax__u64map_free(&io->owners);
  ax__table_fini(&io->table);
  pthread_mutex_destroy(&io->cmd_lock);
  pthread_mutex_destroy(&io->owners_lock);
  ax__free(io, sizeof(*io));
}

static ax_err io_new(ax_system *sys, ax__io **out) {
  ax__io *io = ax__calloc(sizeof(*io));
  if (!io) return AX_ENOMEM;
  io->sys = sys;
  io->reactor = ax__system_reactor(sys);
  io->reserve_fd = -1;
  pthread_mutex_init(&io->cmd_lock, NULL);
  pthread_mutex_init(&io->owners_lock, NULL);
  ax_err e = ax__table_init(&io->table, AX__MAX_ACTORS, 0);
  if (e != AX_OK) {
    ax__free(io, sizeof(*io));
    return e;
  }
  io->poller = ax__reactor_poller(io->reactor);
  io->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  /* Last, when io is complete: the reactor may run the tick at once. Ticks
   * are never removed; io lives until io_layer_fini, after the reactor's
   * thread has stopped. */
  e = ax__reactor_add_tick(io->reactor, io_tick, io);
  if (e != AX_OK) {
    ax_log(sys, AX_LOG_ERROR, "io: cannot start the socket layer: %s", ax_strerror(e));
    io_free(io);
    return e;
  }
  *out = io;
  return AX_OK;
}

static void io_layer_fini(ax_system *sys, void *state);

static ax_err io_layer_start(ax_system *sys, void *arg, ax__layer *out) {
  (void)arg;
  ax__io *io = NULL;
  ax_err e = io_new(sys, &io);
  if (e != AX_OK) return e;
  *out = (ax__layer){.state = io, .on_actor_stop = io_on_stop, .fini = io_layer_fini};
  return AX_OK;
}

ax__io *ax__io_get(ax_system *sys, ax_err *err) {
  ax__io *io = io_load(sys);
  if (AX_LIKELY(io != NULL)) return io;
  void *st = NULL;
  *err = ax__layer_start(sys, AX__LAYER_IO, io_layer_start, NULL, &st);
  return st;
}

static void fini_one(uint64_t id, void *arg) {
  ax__io *io = arg;
  ax__iobj *o = ax__table_acquire(&io->table, id);
  if (!o) return;
  ax__table_release(&io->table, id);
  if (o->kind == AX__IO_CONN)
    ax__conn_teardown((ax__conn *)o);
  else
    ax__listener_teardown((ax__listener *)o);
  ax__iobj_release(o); /* the table's (reactor's) reference */
}

static void io_layer_fini(ax_system *sys, void *state) {
  ax__io *io = state;
  AX_ASSERT(ax__reactor_stopped(ax__system_reactor(sys))); /* the reactor has stopped */
  for (ax__iobj *o = io->cmd_head, *next; o; o = next) {
    next = o->cmd_next;
    atomic_store_explicit(&o->cmd, 0, memory_order_relaxed);
    ax__iobj_release(o);
  }
  io->cmd_head = io->cmd_tail = NULL;
  ax__table_foreach_live(&io->table, fini_one, io);
  graveyard(io);
  graveyard(io);
  io_free(io);
}
