/* Axon: clustering: this system as a node of a cluster. Nodes connect over
 * TCP or Unix sockets (docs/PROTOCOL.md), authenticate each other with a
 * shared secret, form a full mesh, and make pids of other nodes transparent
 * to ax_send, ax_send_buf, ax_request / ax_reply, ax_call, ax_exit, ax_link
 * and ax_monitor. See docs/cluster.md for the semantics (ordering,
 * backpressure, failure detection, what a node down does).
 *
 * NULL arguments: every function here that returns ax_err returns AX_EINVAL
 * for a NULL pointer argument it needs (documented exceptions aside). */
#ifndef AXON_CLUSTER_H
#define AXON_CLUSTER_H

#include "axon/actor.h"
#include "axon/common.h"
#include "axon/error.h"
#include "axon/msg.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Longest node name ("name@host"), without the NUL. */
#define AX_NODE_NAME_MAX 255
/* Longest listen address string, without the NUL. */
#define AX_NODE_ADDR_MAX 127

typedef struct ax_node_config {
  /* "name@host": name 1..64 of [A-Za-z0-9_-], host 1..190 of
   * [A-Za-z0-9._-] or "[v6 literal]". Required. Unique in the cluster. */
  const char *name;
  /* Where to listen: "a.b.c.d:port", "[v6]:port", "hostname:port" or
   * "unix:/path"; port 0 takes an ephemeral port (ax_node_listen_addr
   * reads the bound numeric address back). A host name (letters, digits,
   * '-', '.') is resolved with getaddrinfo (the first address): here, in
   * ax_node_start, for the listen address; for seeds and ax_node_connect
   * at every dial, on a short-lived thread of its own (never the reactor
   * or a worker), so a name that moves is followed. NULL: do
   * not listen (this node only dials out). A "unix:" path whose socket
   * file exists but refuses connections (left by a killed node) is
   * removed before the bind; a live listener's file makes the bind fail
   * (AX_ESYS). The file is removed when the node stops. */
  const char *listen;
  /* The shared secret (16..1024 bytes): from a file (mode 0600 or 0400,
   * owned by this user) or from an environment variable; exactly one of
   * the two. Never logged, never sent, wiped when the system is freed. */
  const char *secret_file;
  const char *secret_env;
  uint32_t heartbeat_ms;  /* a HEARTBEAT on a link idle this long (1000) */
  uint32_t down_after_ms; /* no frame for this long: node down (3000) */
  uint32_t max_frame;     /* largest frame accepted, bytes (64 MiB; >= 4096) */
  /* Nodes to dial at start and to keep re-dialling with backoff while
   * unreachable: listen addresses as above. May be NULL (nseeds 0). */
  const char *const *seeds;
  size_t nseeds;
  /* Serve spawn requests from other nodes (ax_spawn_on) for behaviours
   * registered here (ax_behaviour_register). Default false: refused with
   * AX_ENOTSUP. */
  bool allow_remote_spawn;
  /* A send to a remote pid is refused with AX_EAGAIN while the link's
   * outgoing queue holds more than this many bytes (8 MiB). Control
   * frames (heartbeats, exits, links, monitors, downs) are never refused. */
  size_t send_queue_max;
} ax_node_config;

/* Fills c with the defaults (name, listen and the secret NULL). NULL: a
 * no-op. Thread: any. */
AX_API void ax_node_config_init(ax_node_config *c);

/* ax_node_start makes sys a node named cfg->name: it loads the secret,
 * picks a fresh random incarnation, gives the system its node number (pids
 * spawned from now on carry it), listens on cfg->listen and dials the
 * seeds (asynchronously: watch ax_node_monitor or ax_node_list; a seed's
 * dial is kept, and retried when out of memory stops it, as for
 * ax_node_connect). The config is copied. It must be called BEFORE the first spawn on sys: local
 * pids carry the node number, which can only be set while no actor has
 * been spawned (AX_ESTATE otherwise). After ax_node_stop has finished,
 * the same system may start its node again (actors exist by then: that
 * is allowed for a restart): a new incarnation (peers see a new node;
 * pids of the old incarnation held by other nodes are dead, local actors
 * live on and are reached under the new one), the new config (the name
 * may change), the same behaviours, groups and node monitors; counters
 * keep counting. While the node runs or is still stopping: AX_ESTATE.
 * Thread: any non-worker thread. Blocking: reads the secret file, binds.
 * Errors: AX_EINVAL (bad name, address, sizes, both or neither secret
 * source, bad secret permissions or length: a log line says which, never
 * the content), AX_ENOTFOUND (secret file or variable missing, or the
 * listen host name does not resolve), AX_ESTATE
 * (an actor was already spawned before the first start, the node is
 * running, or its stop has not finished),
 * AX_ESYS (bind: e.g. address in use), AX_ENOMEM, AX_ECLOSED (the system
 * is shutting down). */
AX_API ax_err ax_node_start(ax_system *sys, const ax_node_config *cfg);

/* ax_node_stop leaves the cluster: closes the listener and every
 * connection (peers see the node go down; here every link and monitor
 * across fires noconnection and node monitors get AX_MSG_NODE_DOWN with
 * AX_NODE_STOPPED) and stops re-dialling. From a plain thread it returns
 * once the node layer has finished: every connection actor and the
 * manager have ended, so every node is down here (ax_node_list 0, the
 * nodes_down counter updated) and every resulting exit, DOWN, request end
 * and NODE_DOWN has been sent (queued in its receiver's mailbox). From an
 * actor (a worker thread, which must not block) it returns once the stop
 * has been started; the rest follows asynchronously. The stop needs no
 * memory (each actor's stop is built when it starts). Sends to remote pids
 * then fail with AX_ENOACTOR. ax_node_start may start the node again.
 * Thread: any. Errors: AX_ESTATE (not started, or already stopped),
 * AX_ETIMEDOUT (plain thread: not finished within 30 s, e.g. a worker
 * stuck in a behaviour; the stop goes on). */
AX_API ax_err ax_node_stop(ax_system *sys);

/* ax_node_connect dials addr (as cfg.listen; a host name is resolved
 * before each dial, off the caller's thread: one that does not resolve is
 * logged and retried with the backoff) and keeps the link: on
 * failure or loss it re-dials with backoff (100 ms doubling to 5 s) until
 * ax_node_disconnect or ax_node_stop. Idempotent per address. Returns at
 * once; AX_MSG_NODE_UP (ax_node_monitor) tells when the node is up. Once
 * it returned AX_OK the link is kept even through out of memory: a dialler
 * that cannot be started then is started again later (every tick).
 * Thread: any. Errors: AX_EINVAL (bad address), AX_ESTATE (not started or
 * stopped), AX_ENOMEM (nothing kept: call again). */
AX_API ax_err ax_node_connect(ax_system *sys, const char *addr);

/* ax_node_disconnect closes the link to node `name` (reason
 * AX_NODE_DISCONNECTED here) and stops re-dialling it from this side; the
 * peer may dial again. Thread: any. Errors: AX_ENOTFOUND (not connected),
 * AX_ESTATE (not started), AX_EINVAL. */
AX_API ax_err ax_node_disconnect(ax_system *sys, const char *name);

typedef struct ax_node_info {
  char name[AX_NODE_NAME_MAX + 1];
  uint64_t incarnation;
  char addr[AX_NODE_ADDR_MAX + 1]; /* its listen address ("" if none) */
} ax_node_info;

/* ax_node_list writes up to cap connected nodes (this one excluded) into
 * out and returns how many are connected (may exceed cap). out may be NULL
 * with cap 0. A snapshot. Thread: any. 0 when not started. */
AX_API size_t ax_node_list(ax_system *sys, ax_node_info *out, size_t cap);

/* ax_node_self gives this node's name, or NULL when not started. Valid
 * until ax_system_free. Thread: any. */
AX_API const char *ax_node_self(ax_system *sys);

/* ax_node_listen_addr writes the bound listen address ("127.0.0.1:41234",
 * the real port for port 0) into buf[0..*len), NUL-terminated; *len gets
 * the string length. Thread: any. Errors: AX_ENOBUFS (*len is the size
 * needed), AX_ENOTFOUND (not listening), AX_ESTATE (not started). */
AX_API ax_err ax_node_listen_addr(ax_system *sys, char *buf, size_t *len);

/* ax_node_of writes the name of pid's node into buf[0..cap) (this node's
 * name for a local pid). Thread: any. Errors: AX_ENOTFOUND (a node this
 * node never knew, or AX_PID_NONE), AX_ENOBUFS, AX_ESTATE (not started),
 * AX_EINVAL. */
AX_API ax_err ax_node_of(ax_system *sys, ax_pid pid, char *buf, size_t cap);

/* A pid's node-independent part: its actor's id on its own node (the slot
 * and generation, without the node number, which is local to each node).
 * Print it to tell a pid to another process; ax_node_pid turns it back.
 * Thread: any. Never fails. */
static inline uint64_t ax_node_pid_id(ax_pid pid) { return pid.id & ((UINT64_C(1) << 52) - 1); }

/* ax_node_pid makes, in *out, the pid of actor `id` (ax_node_pid_id) of
 * node `name` as this node numbers it (this node's own name gives a local
 * pid). For bootstrapping and tools: a pid received in a message's
 * envelope (msg->from) is already translated. Whether the actor lives is
 * not checked (a send answers that). Thread: any. Errors: AX_ENOTFOUND
 * (a node this node does not know: connect first), AX_ESTATE (not
 * started), AX_EINVAL (NULL, bad name, id 0 or with node bits). */
AX_API ax_err ax_node_pid(ax_system *sys, const char *name, uint64_t id, ax_pid *out);

/* Why a node went up or down (ax_node_event.reason). */
typedef enum ax_node_reason {
  AX_NODE_CONNECTED = 0,    /* NODE_UP: the handshake completed */
  AX_NODE_CLOSED = 1,       /* the connection closed or failed */
  AX_NODE_TIMEOUT = 2,      /* no frame for down_after_ms */
  AX_NODE_DISCONNECTED = 3, /* ax_node_disconnect here */
  AX_NODE_STOPPED = 4,      /* ax_node_stop here (or system shutdown) */
  AX_NODE_RESTARTED = 5,    /* a new incarnation of it connected */
  AX_NODE_PROTOCOL = 6      /* it sent a bad frame */
} ax_node_reason;

/* Payload of AX_MSG_NODE_UP and AX_MSG_NODE_DOWN (from = AX_PID_NONE,
 * AX_MSGF_SYSTEM). */
typedef struct ax_node_event {
  char name[AX_NODE_NAME_MAX + 1];
  uint64_t incarnation;
  int32_t reason; /* ax_node_reason */
} ax_node_event;

/* ax_node_monitor(self, name, true) subscribes self to AX_MSG_NODE_UP /
 * AX_MSG_NODE_DOWN of node `name` (NULL: of every node) from now on (no
 * event for the current state: check ax_node_list). false unsubscribes
 * (every subscription of self for that name). A subscription ends when self
 * stops. Thread: owner. Errors: AX_ESTATE (not started), AX_EINVAL (bad
 * name), AX_ENOMEM. */
AX_API ax_err ax_node_monitor(ax_actor *self, const char *name, bool on);

/* Payload of an AX_MSG_TIMEOUT that ends a timed ax_request early because
 * the target's node went down (flags AX_MSGF_REPLY; an ordinary timeout
 * has no payload). */
typedef struct ax_node_timeout {
  int32_t reason; /* AX_REASON_NOCONNECTION */
} ax_node_timeout;

typedef struct ax_node_stats {
  uint64_t frames_in, frames_out, bytes_in, bytes_out;
  uint64_t handshakes_ok, handshakes_failed; /* wrong secret, version, ... */
  uint64_t protocol_errors; /* peers closed for a bad frame */
  uint64_t refused_types;   /* SENDs with a reserved type (closed) */
  uint64_t unknown_pid;     /* frames for dead or unknown local pids (dropped) */
  uint64_t send_congested;  /* remote sends refused with AX_EAGAIN */
  uint64_t send_no_node;    /* remote sends refused with AX_ENOACTOR */
  uint64_t lost_on_down;    /* queued big messages dropped by a node down */
  uint64_t nodes_up, nodes_down, heartbeats_out, timeouts;
  uint64_t spawns_served;   /* actors spawned for requests (this node's included) */
  uint64_t spawns_refused;  /* spawn requests refused (not allowed, unknown, bad arg) */
  uint64_t pg_dropped;      /* peers' pg memberships dropped (limits, bad pids) */
  uint64_t node_monitors;   /* ax_node_monitor subscriptions held now (a gauge) */
} ax_node_stats;

/* ax_node_stats_get reads the counters (a snapshot). Thread: any.
 * Errors: AX_ESTATE (never started), AX_EINVAL. */
AX_API ax_err ax_node_stats_get(ax_system *sys, ax_node_stats *out);

/* ---- services: remote whereis, spawn by behaviour name ----
 *
 * Both are requests: the answer comes back to the requester as one reply
 * message (flags AX_MSGF_REPLY, ref = *ref_out) of the type below with an
 * ax_node_reply payload, or, like any timed ax_request, as AX_MSG_TIMEOUT
 * carrying the ref: without payload when timeout_ms passed, with an
 * ax_node_timeout {AX_REASON_NOCONNECTION} payload (also flagged
 * AX_MSGF_REPLY, at once) when the node went down while the request was
 * pending. Exactly one of the two arrives (a reply after the timeout is
 * dropped and counted as a late reply). With AX_INFINITY only the reply or
 * the node-down AX_MSG_TIMEOUT can arrive. The node may be this node's own
 * name (answered locally, through the same path). */
enum {
  AX_MSG_WHEREIS_REPLY = AX_MSG_CLUSTER_FIRST + 2, /* 66: ax_node_reply */
  AX_MSG_SPAWN_REPLY = AX_MSG_CLUSTER_FIRST + 3    /* 67: ax_node_reply */
};

/* Payload of AX_MSG_WHEREIS_REPLY and AX_MSG_SPAWN_REPLY. */
typedef struct ax_node_reply {
  ax_pid pid;     /* the actor (as this node numbers it); AX_PID_NONE on failure */
  int32_t status; /* AX_OK, or the ax_err of the failure (see the functions) */
} ax_node_reply;

/* Longest behaviour name and process group name, without the NUL. Names
 * are 1..255 bytes with no control character (0x00..0x1f, 0x7f). */
#define AX_BEHAVIOUR_NAME_MAX 255
#define AX_PG_NAME_MAX 255
/* At most this many behaviours registered per node. */
#define AX_BEHAVIOURS_MAX 1024
/* Largest spawn argument (bytes). */
#define AX_SPAWN_ARG_MAX 65536

/* ax_whereis_on asks node `node` which actor is registered there as `name`
 * (ax_register). The answer: AX_MSG_WHEREIS_REPLY {pid, AX_OK} or
 * {AX_PID_NONE, AX_ENOTFOUND}; or AX_MSG_TIMEOUT (see above). ref_out (may
 * be NULL) gets the request's ref. Thread: owner. Errors (nothing is sent,
 * nothing arrives): AX_EINVAL (NULL, bad node name or name), AX_ENOACTOR
 * (the node is not connected now), AX_ESTATE (the node is not started),
 * AX_ENOMEM, AX_ECLOSED. */
AX_API ax_err ax_whereis_on(ax_actor *self, const char *node, const char *name,
                            uint32_t timeout_ms, ax_ref *ref_out);

/* ax_node_whereis is the blocking form for plain threads (like ax_call):
 * *out gets the pid. Thread: any non-worker thread (AX_ESTATE on a worker).
 * Errors: AX_ENOTFOUND (no such name there), AX_ETIMEDOUT, AX_ENOACTOR (the
 * node is not connected or went down meanwhile), AX_EINVAL, AX_ESTATE,
 * AX_ENOMEM, AX_ECLOSED. */
AX_API ax_err ax_node_whereis(ax_system *sys, const char *node, const char *name,
                              uint32_t timeout_ms, ax_pid *out);

/* ax_behaviour_register makes spec spawnable by name on this node (by
 * ax_spawn_on / ax_node_spawn from this or another node). The name is
 * copied; the spec is borrowed and must outlive the system (a static const
 * spec). A behaviour cannot be unregistered. Only registered behaviours can
 * ever be spawned by a request, and a request from another node only when
 * this node's config has allow_remote_spawn. Thread: any. Errors: AX_EINVAL
 * (NULL, bad name, spec without behaviour), AX_EEXIST (name taken),
 * AX_ELIMIT (AX_BEHAVIOURS_MAX reached), AX_ESTATE (node not started),
 * AX_ENOMEM. */
AX_API ax_err ax_behaviour_register(ax_system *sys, const char *name, const ax_actor_spec *spec);

/* Spawn options. */
enum {
  /* Link the new actor to the requester (before the reply goes out, after
   * the behaviour's init succeeded): its exit reaches the requester as from
   * a link, and the requester's exit reaches it. An init that fails sends
   * no exit to the requester (the reply carries the error). */
  AX_SPAWN_LINK = 1u,
  /* Monitor the new actor from the requester, with the request's ref
   * (*ref_out) as the monitor's ref: exactly one AX_MSG_DOWN with that ref
   * arrives eventually. Its reason: the actor's exit reason when it stops;
   * noconnection when the node goes down first (also while the request is
   * pending); noproc when nothing was spawned (the reply's status is an
   * error, or the request could not be sent: then the DOWN's pid is
   * AX_PID_NONE). The monitor is set up by the new actor's init on its
   * node, before the SPAWN_REPLY goes out, so the actor cannot stop
   * unwatched; the DOWN (a system message) may be processed before the
   * reply. ax_demonitor(ref) ends it (before the reply arrives the target
   * is not known yet: the remote side then keeps watching until the actor
   * stops, and its DOWN is dropped here). */
  AX_SPAWN_MONITOR = 2u
};

/* ax_spawn_on asks node `node` to spawn its registered behaviour
 * `behaviour` with init argument arg[0..len) (bytes, copied; init sees a
 * copy, as with ax_spawn). The answer: AX_MSG_SPAWN_REPLY {pid, AX_OK}, or
 * {AX_PID_NONE, status} with status AX_ENOTFOUND (no behaviour of that
 * name there), AX_ENOTSUP (the node refuses remote spawns: its
 * allow_remote_spawn is false, or it does not offer the SPAWN feature),
 * init's error, or a spawn error (AX_ENOMEM, AX_ELIMIT, AX_ECLOSED); or
 * AX_MSG_TIMEOUT (see above; the actor may then exist without the requester
 * knowing its pid). flags: AX_SPAWN_LINK, AX_SPAWN_MONITOR (above), or 0.
 * Thread: owner. Errors
 * (nothing is sent): AX_EINVAL (NULL, bad names, unknown flags, arg NULL
 * with len > 0), AX_ELIMIT (len > AX_SPAWN_ARG_MAX), AX_ENOACTOR (node not
 * connected), AX_ESTATE, AX_ENOMEM, AX_ECLOSED. */
AX_API ax_err ax_spawn_on(ax_actor *self, const char *node, const char *behaviour,
                          const void *arg, size_t len, uint32_t flags, uint32_t timeout_ms,
                          ax_ref *ref_out);

/* ax_node_spawn is the blocking form for plain threads (no link: a thread
 * cannot be linked). Thread: any non-worker thread. Errors: the statuses
 * of AX_MSG_SPAWN_REPLY, AX_ETIMEDOUT, AX_ENOACTOR (not connected or went
 * down meanwhile), AX_EINVAL, AX_ELIMIT, AX_ESTATE, AX_ENOMEM. */
AX_API ax_err ax_node_spawn(ax_system *sys, const char *node, const char *behaviour,
                            const void *arg, size_t len, uint32_t timeout_ms, ax_pid *out);

/* ---- process groups (eventually consistent, like OTP's pg) ----
 *
 * A group is a name; its members are actors of any node of the cluster.
 * Each node owns its local members: it joins and removes them, and tells
 * its connected peers (PG_JOIN / PG_LEAVE; the whole local membership as
 * PG_SYNC when a connection comes up). A node's view of other nodes'
 * members is therefore eventually consistent (docs/cluster.md): a join is
 * visible on another node once the frame arrived. A member leaves every
 * group when it stops, and all members of a node leave when that node goes
 * down here. An actor is a member of a group at most once (a second join
 * is a no-op). The node must be started (AX_ESTATE otherwise). Limits:
 * AX_PG_GROUPS_MAX groups (with members anywhere), AX_PG_MEMBERS_MAX
 * members per group; memberships a peer announces beyond them are dropped
 * (logged, counted as pg_dropped). */
#define AX_PG_GROUPS_MAX 4096
#define AX_PG_MEMBERS_MAX 65536

/* ax_pg_join makes local actor pid a member of group (created on first
 * join). Thread: any. Errors: AX_EINVAL (NULL, bad name, pid of another
 * node), AX_ENOACTOR (pid not alive), AX_ELIMIT (a limit above),
 * AX_ESTATE, AX_ENOMEM. */
AX_API ax_err ax_pg_join(ax_system *sys, const char *group, ax_pid pid);

/* Membership changes (ax_pg_monitor): runtime messages (from none,
 * AX_MSGF_SYSTEM) with an ax_pg_event payload. */
enum {
  AX_MSG_PG_JOIN = AX_MSG_CLUSTER_FIRST + 4, /* 68: a member joined */
  AX_MSG_PG_LEAVE = AX_MSG_CLUSTER_FIRST + 5 /* 69: a member left (or its node went down) */
};
typedef struct ax_pg_event {
  char group[AX_PG_NAME_MAX + 1];
  ax_pid pid; /* the member (as this node numbers it) */
} ax_pg_event;

/* ax_pg_monitor(self, group, true) subscribes self to the membership
 * changes of group (NULL: of every group) as this node sees them, like
 * OTP's pg:monitor: one AX_MSG_PG_JOIN per member that joins (a local
 * ax_pg_join, a peer's PG_JOIN or PG_SYNC) and one AX_MSG_PG_LEAVE per
 * member that leaves (ax_pg_leave, a local member that stops, a peer's
 * PG_LEAVE, every member of a node that goes down here), in the order
 * this node applies them. No event for the members at the call: read
 * ax_pg_members after subscribing (a change racing with that read may be
 * both in the snapshot and an event; joins and leaves of one member
 * arrive in order). false unsubscribes (every subscription of self for
 * that group, or the every-group ones for NULL). A subscription ends when
 * self stops. Thread: owner. Errors: AX_EINVAL (NULL self, bad name),
 * AX_ESTATE (node not started), AX_ENOMEM. */
AX_API ax_err ax_pg_monitor(ax_actor *self, const char *group, bool on);

/* ax_pg_leave removes local actor pid from group. Thread: any. Errors:
 * AX_ENOTFOUND (not a member), AX_EINVAL, AX_ESTATE. */
AX_API ax_err ax_pg_leave(ax_system *sys, const char *group, ax_pid pid);

/* ax_pg_members writes up to *n members of group (every node's, as this
 * node knows them) into out and sets *n to the number of members (may
 * exceed the capacity given; out may be NULL with *n 0). A snapshot, in no
 * particular order. An unknown group has 0 members. Thread: any. Errors:
 * AX_EINVAL, AX_ESTATE. ax_pg_local_members: this node's members only. */
AX_API ax_err ax_pg_members(ax_system *sys, const char *group, ax_pid *out, size_t *n);
AX_API ax_err ax_pg_local_members(ax_system *sys, const char *group, ax_pid *out, size_t *n);

/* ax_pg_send sends a copy of data[0..len) as type (>= AX_MSG_USER) to every
 * member of group on every node (one message per member, each as ax_send
 * would send it: order per sender-receiver pair holds). *sent (may be NULL)
 * gets how many members it was sent to (a member whose send failed, e.g.
 * dead or congested, is not counted and does not fail the call). Thread:
 * owner. Errors: AX_EINVAL (NULL self, bad name, reserved type, data NULL
 * with len > 0), AX_ESTATE, AX_ENOMEM. ax_system_pg_send: from any thread
 * (from = the running actor of sys on this thread, else AX_PID_NONE). */
AX_API ax_err ax_pg_send(ax_actor *self, const char *group, uint32_t type, const void *data,
                         size_t len, size_t *sent);
AX_API ax_err ax_system_pg_send(ax_system *sys, const char *group, uint32_t type,
                                const void *data, size_t len, size_t *sent);

#ifdef __cplusplus
}
#endif

#endif
