/* Axon: internal declarations of the socket layer (src/io/socket*.c), which
 * sits above src/actor: connection and listener objects, the per-system
 * I/O state (the system's AX__LAYER_IO slot), and the reactor-side command
 * queue. Internal;
 * src/actor never includes it. */
#ifndef AX_IO_SOCKET_H
#define AX_IO_SOCKET_H

#include <pthread.h>
#include <stdbool.h>
#include <sys/socket.h>

#include "actor/actor.h"
#include "axon/io.h"
#include "io/socket_os.h"
#include "reactor/reactor.h"

typedef struct ax__io ax__io;

enum { AX__IO_CONN = 1, AX__IO_LISTENER = 2 };

/* Command bits (ax__iobj.cmd): set by any thread, handled by the reactor. */
enum {
  AX__CMD_REGISTER = 1u << 0, /* add the fd to the poller */
  AX__CMD_READ = 1u << 1,     /* (re)start reading */
  AX__CMD_CLOSE = 1u << 2,    /* graceful close; reason in close_req */
  AX__CMD_ABORT = 1u << 3,    /* immediate close; reason in close_req */
  AX__CMD_FLUSH = 1u << 4     /* try the write queue (zerocopy, close) */
};

/* What connections and listeners share. The handler comes first: its
 * address is the poller udata, and the object is freed only after a later
 * reactor pass (the graveyard), so a stale event never touches freed
 * memory. */
typedef struct ax__iobj {
  ax__io_handler h;
  int kind;
  ax__io *io;
  uint64_t id;              /* handle in io->table (immutable after insert) */
  int fd;                   /* conns: changed only under wlock; listeners:
                               reactor only once registered */
  _Atomic uint32_t refs;    /* any: acq_rel on release (the last frees) */
  _Atomic uint32_t cmd;     /* any: fetch_or acq_rel; reactor exchanges */
  _Atomic int close_req;    /* any: the ax_io_reason asked for (first wins) */
  _Atomic int close_code;   /* errno for AX_IO_CLOSE_ERROR */
  struct ax__iobj *cmd_next;/* io->cmd_lock */
  _Atomic uint64_t owner;   /* written under io->owners_lock (release);
                               read anywhere (acquire) */
  struct ax__iobj *o_prev, *o_next; /* io->owners_lock */
  bool indexed;             /* io->owners_lock: in the owner index */
  bool retired;             /* io->owners_lock: finalized, never indexed again */
  /* Reactor only. */
  bool registered, finalized;
  struct ax__iobj *grave_next;
  ax__rtimer tmr;           /* close deadline / accept retry (a reactor
                               timer: on the system's clock) */
  ax_io_opts opts;
  /* The node of the last message about o (CLOSED, or ERROR for a failed
   * connect), allocated with o so that it arrives even out of memory.
   * Reactor (NULL once used); freed with o if unused. */
  ax__mnode *last_msg;
} ax__iobj;

/* A queued write: bytes [p, p+len) inside buf (a reference we hold). */
typedef struct ax__wchunk {
  struct ax__wchunk *next;
  ax_buf *buf;
  const char *p;
  size_t len;
  bool zc;  /* send with MSG_ZEROCOPY */
  bool own; /* buf is our copy buffer (sole reference): the queue may
               append to it up to its capacity */
} ax__wchunk;

/* A buffer held until the kernel's zerocopy completion for seq. */
typedef struct ax__zcwait {
  struct ax__zcwait *next;
  ax_buf *buf;
  uint32_t seq;
} ax__zcwait;

enum { AX__CS_CONNECTING = 0, AX__CS_OPEN = 1, AX__CS_CLOSING = 2, AX__CS_DEAD = 3 };

typedef struct ax__conn {
  ax__iobj o;
  pthread_mutex_t wlock;
  /* Under wlock. */
  int state;                /* AX__CS_*; also read (acquire) via state_pub */
  ax__wchunk *wq_head, *wq_tail;
  size_t wq_bytes;
  bool over_high;           /* BACKPRESSURE sent, DRAINED not yet */
  ax__mnode *drained_msg;   /* reserved DRAINED node while over_high */
  bool below_armed;         /* ax_conn_notify_below: BELOW at <= below_at */
  size_t below_at;
  ax__mnode *below_msg;     /* its reserved node (kept between armings) */
  int zc_mode;              /* 0 untried, 1 on, -1 unsupported */
  uint32_t zc_next;         /* sequence of the next zerocopy send */
  ax__zcwait *zc_head, *zc_tail;
  _Atomic int state_pub;    /* copy of state for lock-free checks */
  /* Reactor only. */
  ax_buf *rd_slab;
  size_t rd_off;
  bool rd_ready, rd_eof;
  bool rd_hup;              /* the peer's FIN was signalled: read to EOF */
  bool connected;           /* the connect completed (or it was accepted) */
  int connect_err;          /* connect() failed at once (set before publish) */
  /* Any thread. */
  _Atomic bool rd_paused;   /* owner's pause (relaxed: the READ command
                               that follows a resume carries the order) */
  _Atomic bool rd_stalled;  /* reactor stopped at the in-flight bound */
  _Atomic uint32_t slabs;   /* live read slabs of this conn */
  _Atomic uint64_t bytes_read, bytes_written, zc_sends; /* statistics */
  _Atomic uint64_t queued_pub; /* copy of wq_bytes for stats */
  _Atomic uint64_t bp_events;  /* BACKPRESSURE crossings (under wlock; relaxed) */
  ax__mnode *eof_msg;       /* reactor: reserved PEER_SHUTDOWN node */
} ax__conn;

typedef struct ax__listener {
  ax__iobj o;
  char addr[AX_IO_ADDRSTRLEN]; /* bound address (immutable after listen) */
  char path[108];              /* Unix path to unlink at close, or "" */
  bool stalled;                /* reactor: accept paused (out of fds) */
} ax__listener;

struct ax__io {
  ax_system *sys;
  ax__reactor *reactor;
  ax__poller *poller;
  ax__table table;          /* conn and listener handles */
  /* Command queue: any thread appends under cmd_lock, then wakes the
   * reactor (ax__reactor_wake) if wake_pending was clear; the layer's
   * reactor tick takes the whole list. */
  pthread_mutex_t cmd_lock;
  ax__iobj *cmd_head, *cmd_tail;
  _Atomic bool wake_pending; /* commands await the tick (acq_rel exchanges) */
  /* Owner index: pid -> first object (intrusive list through o_next). */
  pthread_mutex_t owners_lock;
  ax__u64map owners;
  /* Metrics (relaxed counters): connections made (any thread), and what
   * closed connections had counted (added by the reactor at finalize). */
  _Atomic uint64_t conns_opened, conns_closed;
  _Atomic uint64_t closed_read, closed_written, closed_bp;
  /* Reactor only. */
  int reserve_fd;           /* spare fd for accepting under EMFILE */
  ax__iobj *dying, *reap;   /* finalised objects, freed two passes later */
};

/* socket.c: the layer's state and the reactor plumbing. */
/* Test hook (NULL outside tests): the reactor calls it in every command
 * pass at the one point where a concurrent waker can interleave with the
 * pass (just before the wake-flag clear: a waker there finds the flag set
 * and does not wake the reactor), so a test can force that interleaving
 * deterministically. acquire/release: set by the
 * test thread, read by the reactor. */
typedef void (*ax__io_hook_fn)(ax__io *io);
extern _Atomic(ax__io_hook_fn) ax__io_cmd_hook;
/* Test hook: run by the reactor in ax__io_finalize after the object left
 * the owner index and before its handle is killed (the window in which an
 * API caller still holding the handle can act on it). NULL in production. */
typedef void (*ax__io_obj_hook_fn)(ax__iobj *o);
extern _Atomic(ax__io_obj_hook_fn) ax__io_finalize_hook;
/* Returns sys's I/O state, starting the layer on first use (NULL on error:
 * *err says why). Thread: any. */
ax__io *ax__io_get(ax_system *sys, ax_err *err);
/* Queues command bits for o and wakes the reactor. Thread: any. */
void ax__io_cmd(ax__iobj *o, uint32_t bits);
/* Asks for a close of o with reason/code (first request wins) and queues
 * cmd (AX__CMD_CLOSE or AX__CMD_ABORT). Thread: any. */
void ax__io_close_req(ax__iobj *o, int reason, int code, uint32_t cmd);
void ax__iobj_retain(ax__iobj *o);
void ax__iobj_release(ax__iobj *o);
/* Inserts o into the handle table and the owner index. */
ax_err ax__iobj_publish(ax__io *io, ax__iobj *o, uint64_t owner);
/* Takes a handle reference (pair with ax__iobj_put); NULL if closed. */
ax__iobj *ax__iobj_get(ax_system *sys, uint64_t id, int kind);
void ax__iobj_put(ax__iobj *o);
/* Moves o to owner pid in the index. */
void ax__io_set_owner(ax__iobj *o, uint64_t pid);
/* Reactor: the last step of a close: out of the index and the table, the
 * CLOSED message, then the graveyard. */
void ax__io_finalize(ax__iobj *o, int reason, int code, uint64_t unsent);
/* Reactor: arms o's timer to fire in delay_ms on the system's clock
 * (ax__conn_on_timer / ax__listener_on_timer), or disarms it; armed: it is
 * pending. */
void ax__io_timer_set(ax__iobj *o, uint32_t delay_ms);
void ax__io_timer_cancel(ax__iobj *o);
static inline bool ax__io_timer_armed(const ax__iobj *o) { return ax__rtimer_pending(&o->tmr); }
/* Sends an I/O message to o's owner (never limited or dropped by the
 * mailbox; buf, if set, is retained by the message). Thread: any.
 * Errors: AX_ENOACTOR, AX_ENOMEM. */
ax_err ax__io_notify(ax__iobj *o, uint32_t type, const void *data, size_t len, ax_buf *buf);
/* Sends an ax_io_event about o. */
ax_err ax__io_event(ax__iobj *o, uint32_t type, int reason, int code, uint64_t bytes);
/* Allocates a node for an ax_io_event that must arrive (NULL: no memory). */
ax__mnode *ax__io_reserve(void);
/* Sends an ax_io_event about o in the reserved node *slot (taken: *slot is
 * NULL after), so it cannot fail for lack of memory. AX_ENOACTOR if the
 * owner is gone (the node is freed). Thread: the reactor, or (a conn's
 * DRAINED and BELOW) any thread holding the conn's wlock, which owns the
 * slot. */
ax_err ax__io_event_reserved(ax__iobj *o, ax__mnode **slot, uint32_t type, int reason, int code,
                             uint64_t bytes);
/* Frees o's unused reserved nodes (with o). */
void ax__iobj_free_reserved(ax__iobj *o);

/* socket_metrics.c: what src/metrics shows of the socket layer. */
typedef struct ax__io_conn_metrics {
  uint64_t id, owner;
  uint64_t bytes_read, bytes_written, queued, backpressure;
} ax__io_conn_metrics;
typedef struct ax__io_totals {
  uint64_t conns_open, conns_opened, conns_closed; /* open: handles live now */
  uint64_t bytes_read, bytes_written, backpressure; /* over every connection, closed ones too */
} ax__io_totals;
/* Fills *tot (zeros if the layer never started) and calls fn (may be NULL)
 * for each open connection, at most max_fn times. Thread: any. */
void ax__io_metrics(ax_system *sys, ax__io_totals *tot, uint32_t max_fn,
                    void (*fn)(const ax__io_conn_metrics *m, void *arg), void *arg);

/* socket_addr.c */
/* Parses addr; *len gets the sockaddr size. Logs why on AX_EINVAL. */
ax_err ax__addr_parse(ax_system *sys, const char *addr, struct sockaddr_storage *ss,
                      socklen_t *len);
/* Formats a sockaddr as an address string (never fails; "?" if unknown). */
void ax__addr_format(const struct sockaddr *sa, socklen_t len, char *buf, size_t cap);

/* socket_conn.c: connections. */
/* Makes a conn object for fd (non-blocking, CLOEXEC). */
ax__conn *ax__conn_new(ax__io *io, int fd, const ax_io_opts *opts, int state);
void ax__conn_on_events(ax__io_handler *h, uint32_t events);
void ax__conn_command(ax__conn *c, uint32_t bits);
void ax__conn_on_timer(ax__conn *c);
/* Reactor: closes c at once with no message (its owner never learnt of
 * it, e.g. the ACCEPTED message could not be sent). */
void ax__conn_discard(ax__conn *c);
/* Frees what a conn holds (fd closed already). */
void ax__conn_destroy(ax__conn *c);
/* Closes the fd and drops queued data now (fini, reactor stopped). */
void ax__conn_teardown(ax__conn *c);
void ax__conn_sockopts(ax__conn *c);

/* socket_zc_linux.c / socket_zc_none.c: MSG_ZEROCOPY (callers hold wlock). */
/* Turns zerocopy on for c once; false if the socket or kernel lacks it. */
bool ax__zc_enable(ax__conn *c);
/* One zerocopy send (the caller then queues an ax__zcwait for zc_next++). */
ssize_t ax__zc_send(ax__conn *c, const void *p, size_t len);
/* Drains the error queue, releasing completed zerocopy buffers. */
void ax__zc_reap(ax__conn *c);

/* socket_listen.c: listeners and connecting. */
void ax__listener_on_events(ax__io_handler *h, uint32_t events);
void ax__listener_command(ax__listener *l, uint32_t bits);
void ax__listener_on_timer(ax__listener *l);
void ax__listener_teardown(ax__listener *l);

#endif
