/* Axon: the node runtime's private state (src/cluster/node.c, conn.c):
 * the cluster layer, peers, connection actors, the route. Internal to
 * src/cluster. See docs/cluster.md. */
#ifndef AX_CLUSTER_NODE_INT_H
#define AX_CLUSTER_NODE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "actor/actor.h"
#include "axon/cluster.h"
#include "axon/io.h"
#include "base/u64map.h"
#include "cluster/handshake.h"
#include "cluster/nodes.h"
#include "cluster/secret.h"
#include "cluster/wire.h"

/* The cluster's own message types (in its reserved range 64..95: public
 * sends refuse them, so only the runtime makes them). */
enum {
  AX__CL_TICK = AX_MSG_CLUSTER_FIRST + 16, /* a connection actor's periodic check */
  AX__CL_KICK = AX_MSG_CLUSTER_FIRST + 17, /* bulk queue has frames to pump */
  AX__CL_STOP = AX_MSG_CLUSTER_FIRST + 18, /* disconnect: close, do not redial */
  AX__CL_GONE = AX_MSG_CLUSTER_FIRST + 19, /* a new incarnation replaced the node */
  AX__CL_SVC = AX_MSG_CLUSTER_FIRST + 20,  /* a whereis/spawn request to the service actor */
  AX__CL_RESOLVED = AX_MSG_CLUSTER_FIRST + 21 /* a dialler's host name resolved (or not) */
};

/* A set of (local pid, remote pid) pairs: cross-node links of one peer. */
typedef struct ax__pairset {
  uint64_t (*k)[2];
  uint32_t cap, count, used;
} ax__pairset;

/* A queued frame waiting behind a big message (or the big message itself). */
typedef struct ax__clq {
  struct ax__clq *next;
  uint64_t sender;
  bool encoded;       /* a ready frame (bytes/blen) */
  uint8_t *bytes;
  size_t blen;
  ax_buf *buf;        /* a SEND's payload (a reference) */
  size_t off, len;
  bool started;
  char from_node[AX__NAME_MAX + 1];
  ax__wmsg m;         /* the SEND (pids borrowed from from_node) */
  ax__frag frag;
} ax__clq;

typedef struct ax__cluster ax__cluster;

/* One node of the cluster as this node sees it (one per node index, made
 * on first use, kept until the layer's fini). */
typedef struct ax__peer {
  uint32_t idx;
  char name[AX__NAME_MAX + 1];
  uint64_t incarnation;
  char addr[AX__ADDR_MAX + 1];
  /* wmu: the connection (writes to it, its frames never interleave), up,
   * the bulk queue and the per-sender pending counts. Taken before tmu. */
  pthread_mutex_t wmu;
  _Atomic bool up;
  ax_conn conn;
  _Atomic uint64_t conn_pid; /* the connection actor of the live connection */
  uint64_t features;
  uint32_t max_frame;
  uint32_t next_stream;
  ax__clq *bq, *bq_tail;
  size_t bq_bytes;
  ax__u64map senders; /* sender pid (or 2 for none) -> frames queued */
  /* Small frames an actor run sent, written as one at the run's end (the
   * route's flush) or before any other write to the connection. */
  uint8_t *ob;
  size_t ob_len;
  uint32_t ob_frames;
  _Atomic bool tx;    /* a frame went out since the last heartbeat check */
  /* tmu: what crosses this link, to undo when it goes down. */
  pthread_mutex_t tmu;
  ax__pairset links;          /* (local, remote) */
  ax__u64map mo_w, mo_t;      /* local watcher's monitor ref -> watcher, target */
  ax__u64map mi_w, mi_t;      /* remote watcher's ref -> watcher, local target */
  ax__u64map pend;            /* timed request ref -> local requester */
} ax__peer;

/* An address this node keeps a link to (under cl->mu). pid: its dialler
 * (set by the dialler's init); 0 while none runs: its spawn failed for
 * memory (the manager's tick spawns it again) or is under way (spawning:
 * the spawner owns the record until it ends, nobody else frees it). */
typedef struct ax__dial {
  struct ax__dial *next;
  char addr[AX__ADDR_MAX + 1];
  char name[AX__NAME_MAX + 1]; /* "" until known */
  uint64_t pid;
  bool spawning;
} ax__dial;

/* Subscriptions of local actors to named events (subs.c): node monitors,
 * process group monitors. Own lock (a leaf: nothing is taken under it). */
typedef struct ax__sub {
  uint64_t pid;
  char name[AX__NAME_MAX + 1]; /* "" for every name */
} ax__sub;
typedef struct ax__subs {
  pthread_mutex_t mu;
  ax__sub *v;
  size_t n, cap;
  ax__u64map bypid;     /* subscriber -> its entries in v */
  _Atomic size_t live;  /* n, read without mu by the fast paths */
} ax__subs;
void ax__subs_init(ax__subs *s);
void ax__subs_fini(ax__subs *s);
/* Adds (pid, name) (NULL: every name). Errors: AX_ENOMEM. */
ax_err ax__subs_add(ax__subs *s, uint64_t pid, const char *name);
/* Removes every (pid, name) entry (name NULL: the every-name entries). */
void ax__subs_del(ax__subs *s, uint64_t pid, const char *name);
/* Removes every entry of pid (it stopped): one atomic load when empty. */
void ax__subs_drop_pid(ax__subs *s, uint64_t pid);
size_t ax__subs_count(ax__subs *s);
/* Sends {type, data[0..len)} as a runtime message (from none) to every
 * subscriber of name and of every name; a dead subscriber is dropped. */
void ax__subs_notify(ax__subs *s, ax_system *sys, uint32_t type, const char *name,
                     const void *data, size_t len);

struct ax__cluster {
  ax_system *sys;
  ax__route route;
  _Atomic int state; /* 0 starting, 1 running, 2 stopped */
  char name[AX__NAME_MAX + 1];
  uint64_t incarnation;
  uint32_t self_idx;
  char listen_addr[AX__ADDR_MAX + 1]; /* bound address, "" when not listening */
  bool listening;
  ax_listener lst;
  uint32_t hb_ms, down_ms, max_frame, tick_ms, hs_ms;
  size_t sendq_max;
  bool allow_spawn;
  ax__secret secret;
  uint64_t mgr_pid;
  ax__exit_kit mgr_kit; /* the manager's stop, built before it runs (under mu) */
  /* mu: the node table, peer creation, dials, node monitors, conn actors,
   * mgr_pid; cv: signalled when a connection actor or the manager ends. */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  ax__nodes *nodes;
  _Atomic(ax__peer *) peers[AX__NODES_MAX + 1];
  ax__dial *dials;
  ax__subs nmons; /* node monitors (ax_node_monitor) */
  ax__u64map conns; /* live connection actors: pid -> its exit kit (ax__exit_kit *) */
  struct ax__svc *svc; /* services.c: behaviours, the service actor */
  _Atomic(struct ax__pg *) pg; /* pg.c: process groups */
  struct {
    _Atomic uint64_t frames_in, frames_out, bytes_in, bytes_out, hs_ok, hs_failed, proto,
        refused_types, unknown_pid, congested, no_node, lost_on_down, up, down, hb_out, timeouts,
        spawned, spawn_refused, pg_dropped;
  } st;
};

/* conn.c */
typedef struct ax__conn_arg {
  ax__cluster *cl;
  ax_conn conn;       /* accepted: the connection (paused); dialler: zero */
  const char *addr;   /* dialler: where to dial */
  const char *name;   /* dialler: the node's name if known, else NULL */
  ax__dial *dial;     /* dialler: its record (spawning), NULL for none */
} ax__conn_arg;
extern const ax_actor_spec ax__cl_conn_spec;
ax_err ax__cl_route_send(void *st, uint64_t from, uint64_t to, uint32_t type, uint32_t flags,
                         ax_ref ref, const void *data, size_t len, ax_buf *buf);
ax_err ax__cl_route_signal(void *st, uint64_t from, uint64_t to, uint32_t type, const void *data,
                           size_t len);
void ax__cl_route_flush(void *st); /* a run's end: its held frames go out */
/* Writes frame m (its payload included) to peer p from `sender`: at once,
 * or queued behind the sender's pending big message (order per sender).
 * A control frame: never refused for congestion. Thread: any. Errors:
 * AX_ENOACTOR (p not up), AX_ELIMIT (larger than the peer's max frame),
 * AX_EINVAL, AX_ENOMEM. */
ax_err ax__cl_ctl_write(ax__cluster *cl, ax__peer *p, uint64_t sender, const ax__wmsg *m);
/* services.c, pg.c */
ax_err ax__cl_svc_start(ax__cluster *cl); /* at ax_node_start, before the route */
void ax__cl_svc_fini(ax__cluster *cl);
void ax__cl_on_actor_stop(ax_system *sys, void *state, uint64_t pid);
/* A WHEREIS_*, SPAWN_* or PG_* frame from peer p on connection actor
 * conn_pid. Returns false when the frame breaks the protocol (closed). */
bool ax__cl_svc_frame(ax__cluster *cl, ax__peer *p, uint64_t conn_pid, const ax__wmsg *m);
/* Peer p came up on connection actor conn_pid (PG_SYNC out) / went down
 * (its members leave). */
void ax__cl_pg_peer_up(ax__cluster *cl, ax__peer *p, uint64_t conn_pid);
void ax__cl_pg_peer_down(ax__cluster *cl, ax__peer *p, uint64_t conn_pid);
bool ax__cl_pg_frame(ax__cluster *cl, ax__peer *p, uint64_t conn_pid, const ax__wmsg *m);
ax_err ax__cl_pg_init(ax__cluster *cl);
void ax__cl_pg_fini(ax__cluster *cl);
/* The peer named `name` if up (NULL otherwise). */
ax__peer *ax__cl_peer_up(ax__cluster *cl, const char *name);
/* node.c */
ax__peer *ax__cl_peer_make(ax__cluster *cl, uint32_t idx); /* under mu */
void ax__cl_notify(ax__cluster *cl, uint32_t type, const char *name, uint64_t inc, int reason);
/* Keeps a link to addr (node `name` if known, else NULL): a dial record
 * and its dialler actor. A dialler that cannot be spawned for memory is
 * spawned again by the manager's tick (the record stays). Thread: any.
 * Errors: AX_EINVAL, AX_ESTATE (not running), AX_ENOMEM (no record: the
 * caller must retry or close the connection whose frame named addr). */
ax_err ax__cl_dial(ax__cluster *cl, const char *addr, const char *name);
/* The pid a wire pid names on a connection to peer p (0: none/unknown). */
uint64_t ax__cl_pid_in(ax__cluster *cl, const ax__peer *p, const ax__wpid *w);
/* The wire form of a pid sent to peer p; namebuf holds a scope-2 name. */
void ax__cl_pid_out(ax__cluster *cl, const ax__peer *p, uint64_t pid, ax__wpid *w,
                    char namebuf[AX__NAME_MAX + 1]);

/* pairset */
bool ax__pairset_put(ax__pairset *s, uint64_t a, uint64_t b);
bool ax__pairset_del(ax__pairset *s, uint64_t a, uint64_t b);
void ax__pairset_free(ax__pairset *s);

/* Cross-node links one peer can make this node track (LINK frames name a
 * `from` of the peer's choosing). */
#define AX__CL_LINKS_MAX (UINT32_C(1) << 20)
/* A peer's held-frames buffer (ob). */
#define AX__CL_OB_CAP (64u * 1024u)
#define AX__CL_STAT(cl, f, n) atomic_fetch_add_explicit(&(cl)->st.f, (n), memory_order_relaxed)

#endif
