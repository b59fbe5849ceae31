/* Axon: supervisors with Erlang/OTP semantics. A supervisor is an actor the
 * library provides: it starts its children in order, links to them, traps
 * their exits, restarts them by strategy and restart type, stops them in
 * reverse order by their shutdown specs, and gives up (exits with
 * AX_REASON_SHUTDOWN, so its own parent decides) when restarts exceed its
 * intensity. See docs/supervision.md. */
#ifndef AXON_SUPERVISOR_H
#define AXON_SUPERVISOR_H

#include "axon/actor.h"
#include "axon/common.h"
#include "axon/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What a child's exit does to its siblings. */
typedef enum ax_sup_strategy {
  AX_SUP_ONE_FOR_ONE = 0,       /* restart only the child that exited (default) */
  AX_SUP_ONE_FOR_ALL = 1,       /* stop all others (reverse order), restart all in order */
  AX_SUP_REST_FOR_ONE = 2,      /* stop the children started after it (reverse order),
                                   restart it and them in order */
  AX_SUP_SIMPLE_ONE_FOR_ONE = 3 /* one_for_one over dynamic children of one spec */
} ax_sup_strategy;

/* When a child is restarted after it exits. An exit is abnormal unless its
 * reason is AX_REASON_NORMAL or AX_REASON_SHUTDOWN. */
typedef enum ax_restart {
  AX_RESTART_PERMANENT = 0, /* always (default) */
  AX_RESTART_TRANSIENT = 1, /* only after an abnormal exit */
  AX_RESTART_TEMPORARY = 2  /* never; its spec is removed when it exits */
} ax_restart;

typedef enum ax_child_type {
  AX_CHILD_WORKER = 0,
  AX_CHILD_SUPERVISOR = 1 /* default shutdown is infinity; start defaults to
                             &ax_supervisor_spec */
} ax_child_type;

/* ax_child_spec.shutdown: how a child is stopped. Any other value is a
 * timeout in ms: the supervisor sends exit(shutdown), then kill when the
 * timeout passes without the child stopping. */
#define AX_SHUTDOWN_DEFAULT 0u /* 5000 ms for workers, infinity for supervisors */
#define AX_SHUTDOWN_BRUTAL_KILL (UINT32_MAX - 1u)  /* kill at once */
#define AX_SHUTDOWN_INFINITY AX_INFINITY           /* exit(shutdown), wait as long as it takes */

/* Longest child id and supervisor name, in bytes (without the NUL). */
#define AX_SUP_ID_MAX 63

/* ax_sup_spec.intensity: allow no restart at all (any restart escalates). */
#define AX_SUP_NO_RESTARTS UINT32_MAX

/* A child: how to start it and how to treat it. Every field is copied when
 * the spec is given to a supervisor, except `start`, which is borrowed (a
 * static const spec is the usual form). Zero-initialised fields give OTP's
 * defaults: a permanent worker with a 5000 ms shutdown. */
typedef struct ax_child_spec {
  const char *id;              /* unique within its supervisor, 1..AX_SUP_ID_MAX bytes;
                                  ignored for simple_one_for_one children */
  const ax_actor_spec *start;  /* the child's actor spec; NULL with AX_CHILD_SUPERVISOR
                                  means &ax_supervisor_spec */
  const void *arg;             /* init argument, copied and kept: every (re)start runs
                                  init with these same bytes. For a sub-supervisor
                                  (start == &ax_supervisor_spec) arg points to its
                                  ax_sup_spec, deep-copied, and arg_len is
                                  sizeof(ax_sup_spec) */
  size_t arg_len;
  ax_restart restart;
  uint32_t shutdown;           /* AX_SHUTDOWN_* or a timeout in ms */
  ax_child_type type;
} ax_child_spec;

/* A supervisor: its flags and its children, in start order. Copied (deeply)
 * when started; the caller's memory may go away afterwards. */
typedef struct ax_sup_spec {
  const char *name;              /* for logs, up to AX_SUP_ID_MAX bytes; NULL: "supervisor" */
  ax_sup_strategy strategy;
  uint32_t intensity;            /* restarts allowed per period: 0 = default 1;
                                    AX_SUP_NO_RESTARTS = none */
  uint32_t period_ms;            /* 0 = default 5000 */
  const ax_child_spec *children; /* simple_one_for_one: exactly one, the template
                                    of the dynamic children (none started at first) */
  size_t nchildren;
  /* Optional, as OTP's {local, Name}: the supervisor registers itself under
   * this name (ax_register, 1..255 bytes, copied) at every start, before it
   * starts its children, so they and anyone else find it with ax_whereis,
   * and the name follows it across its restarts. A name already taken
   * fails the start with AX_EEXIST. NULL: not registered. */
  const char *register_name;
} ax_sup_spec;

/* The supervisor's actor spec, for child specs of sub-supervisors:
 *   {.id = "db", .start = &ax_supervisor_spec, .arg = &db_sup,
 *    .arg_len = sizeof(db_sup), .type = AX_CHILD_SUPERVISOR}
 * (AX_SUP_CHILD below writes that). Spawn it only through a child spec or
 * the ax_supervisor_start* functions: its init argument is an internal
 * packed form, and anything else fails with AX_EINVAL. */
AX_API extern const ax_actor_spec ax_supervisor_spec;

/* A child spec for a sub-supervisor with the given id and ax_sup_spec *. */
#define AX_SUP_CHILD(id_, sup_spec_ptr)                                                      \
  {.id = (id_), .start = &ax_supervisor_spec, .arg = (sup_spec_ptr),                      \
   .arg_len = sizeof(ax_sup_spec), .restart = AX_RESTART_PERMANENT,                       \
   .shutdown = AX_SHUTDOWN_INFINITY, .type = AX_CHILD_SUPERVISOR}

/* ---- starting ---- */

/* ax_supervisor_start starts a top-level supervisor from a plain thread:
 * spec is deep-copied, every child is started in order on this thread
 * (their inits run here), and the supervisor is registered so that
 * ax_system_shutdown stops it (and so its whole tree, by the shutdown specs)
 * before any other actor, newest top-level supervisor first. If a child's
 * init fails, the children already started are stopped in reverse order by
 * their shutdown specs before this returns (innermost first: a failing
 * sub-supervisor's started children stop before its older siblings, at
 * every level, as in OTP), the failure is logged with the
 * child's id, and the child's error is returned. *out (may be NULL) gets the
 * supervisor's pid. Ownership: spec borrowed for the call.
 * Thread: any non-worker thread. Blocking: yes (children's inits, and their
 * stop after a failed start). Errors: AX_EINVAL (bad spec: missing or
 * duplicate id, id or name too long, NULL start, simple_one_for_one without
 * exactly one child spec, nesting deeper than 64), AX_ENOMEM, AX_ECLOSED,
 * AX_ESTATE (called from a worker), or the failing child's init error. */
AX_API ax_err ax_supervisor_start(ax_system *sys, const ax_sup_spec *spec, ax_pid *out);

/* ax_supervisor_start_link starts a supervisor linked to self (self is its
 * parent: an exit signal from self stops it with that reason, after its
 * children). As ax_supervisor_start, except that after a failed child init
 * the already started children are stopped asynchronously (in reverse
 * order, by their shutdown specs) after this returns, and the supervisor is
 * not registered as top-level. Thread: owner. Blocking: runs the children's
 * inits. Errors: as ax_supervisor_start, without AX_ESTATE. */
AX_API ax_err ax_supervisor_start_link(ax_actor *self, const ax_sup_spec *spec, ax_pid *out);

/* ---- management: blocking calls for plain threads ----
 * Each is an ax_call to the supervisor (so Thread: any non-worker thread;
 * AX_ESTATE from a worker) that waits up to timeout_ms (AX_INFINITY: no
 * limit). Besides the errors listed: AX_ETIMEDOUT, AX_ENOACTOR (sup is not
 * alive), AX_ECLOSED (sup is shutting down), AX_ENOMEM, AX_ENOTSUP (sup
 * answered "not supported": it is not a supervisor), AX_EINVAL (NULL sys, or
 * a NULL argument the call needs). A supervisor that dies before answering
 * ends the call with AX_ENOACTOR (ax_call monitors its target). */

/* ax_supervisor_start_child adds a child at the end of the start order and
 * starts it; the reply comes once its init has run. For simple_one_for_one
 * only spec->arg/arg_len are used (NULL spec or arg_len 0: the template's
 * arg). *out (may be NULL) gets the child's pid. Ownership: spec is copied
 * (start borrowed, as everywhere). Errors: AX_EINVAL (bad spec), AX_EEXIST
 * (id taken), or the child's init error (then the spec is not added). */
AX_API ax_err ax_supervisor_start_child(ax_system *sys, ax_pid sup, const ax_child_spec *spec,
                                        uint32_t timeout_ms, ax_pid *out);

/* ax_supervisor_terminate_child stops a child by its shutdown spec and
 * replies once it has stopped; it is not restarted. Name it by id (static
 * strategies) or, with id NULL, by pid (any strategy). A temporary or
 * dynamic child's spec is then removed; others stay (restart_child,
 * delete_child). A child that is not running: AX_OK (a pending restart of it
 * is cancelled). Errors: AX_ENOTFOUND, AX_EINVAL. */
AX_API ax_err ax_supervisor_terminate_child(ax_system *sys, ax_pid sup, const char *id,
                                            ax_pid child, uint32_t timeout_ms);

/* ax_supervisor_restart_child starts the stopped child `id` again from its
 * kept spec (does not count against the intensity). *out (may be NULL) gets
 * the pid. Errors: AX_ENOTFOUND, AX_ESTATE (running, or a restart pending),
 * AX_ENOTSUP (simple_one_for_one), or the child's init error. */
AX_API ax_err ax_supervisor_restart_child(ax_system *sys, ax_pid sup, const char *id,
                                          uint32_t timeout_ms, ax_pid *out);

/* ax_supervisor_delete_child removes the stopped child `id`'s spec.
 * Errors: AX_ENOTFOUND, AX_ESTATE (running, or a restart pending),
 * AX_ENOTSUP (simple_one_for_one). */
AX_API ax_err ax_supervisor_delete_child(ax_system *sys, ax_pid sup, const char *id,
                                         uint32_t timeout_ms);

/* One child, as which_children reports it. */
typedef struct ax_sup_child_info {
  char id[AX_SUP_ID_MAX + 1]; /* NUL-terminated; dynamic children carry the template's id */
  ax_pid pid;                 /* AX_PID_NONE when not running */
  ax_child_type type;
  ax_restart restart;
} ax_sup_child_info;

/* ax_supervisor_which_children copies the children, in start order, into
 * out[0..*n); on entry *n is the capacity, on return the count. Errors:
 * AX_ENOBUFS (*n set to the count needed; call again). */
AX_API ax_err ax_supervisor_which_children(ax_system *sys, ax_pid sup, uint32_t timeout_ms,
                                           ax_sup_child_info *out, size_t *n);

/* Counts and counters of one supervisor. As in OTP, a simple_one_for_one
 * supervisor reports specs = 1 (its template), and its dynamic children as
 * supervisors or workers by the template's type. */
typedef struct ax_sup_counts {
  uint32_t specs;       /* child specs (running or not); 1 for simple_one_for_one */
  uint32_t active;      /* running children */
  uint32_t supervisors; /* specs (dynamic: children) of type AX_CHILD_SUPERVISOR */
  uint32_t workers;     /* specs (dynamic: children) of type AX_CHILD_WORKER */
  uint64_t restarts;    /* restarts by this supervisor's policy since it started */
  uint64_t failures;    /* abnormal child exits seen */
  uint64_t escalations; /* child supervisors that gave up (reached their intensity) */
} ax_sup_counts;

/* ax_supervisor_count_children fills *out. */
AX_API ax_err ax_supervisor_count_children(ax_system *sys, ax_pid sup, uint32_t timeout_ms,
                                           ax_sup_counts *out);

/* ---- management from actors: asynchronous requests ----
 * An actor never blocks, so it sends the request (ax_request semantics:
 * with a finite timeout_ms exactly one of the reply and an AX_MSG_TIMEOUT
 * arrives) and gets the answer as a message with AX_MSGF_REPLY and the ref:
 *   request type               payload           reply type and payload
 *   AX_SUP_REQ_START_CHILD     (packed by ax_supervisor_request_start_child)
 *                                                AX_SUP_REPLY: ax_sup_reply (pid)
 *   AX_SUP_REQ_TERMINATE_CHILD ax_sup_child_ref  AX_SUP_REPLY: ax_sup_reply
 *   AX_SUP_REQ_RESTART_CHILD   ax_sup_child_ref  AX_SUP_REPLY: ax_sup_reply (pid)
 *   AX_SUP_REQ_DELETE_CHILD    ax_sup_child_ref  AX_SUP_REPLY: ax_sup_reply
 *   AX_SUP_REQ_WHICH_CHILDREN  none              AX_SUP_REPLY_CHILDREN: ax_sup_child_info[]
 *   AX_SUP_REQ_COUNT_CHILDREN  none              AX_SUP_REPLY_COUNTS: ax_sup_counts
 * Any request can also be answered AX_SUP_REPLY with an error (AX_ECLOSED
 * while shutting down, AX_ENOMEM, AX_EINVAL for a malformed payload). The
 * types are in the runtime's range (AX_MSG_SUP_FIRST..AX_MSG_SUP_LAST), so
 * only these functions can send them: ax_request and ax_send refuse them
 * (AX_EINVAL). A request of any other type gets AX_SUP_REPLY with
 * AX_ENOTSUP. */
enum {
  AX_SUP_REQ_START_CHILD = 96,
  AX_SUP_REQ_TERMINATE_CHILD = 97,
  AX_SUP_REQ_RESTART_CHILD = 98,
  AX_SUP_REQ_DELETE_CHILD = 99,
  AX_SUP_REQ_WHICH_CHILDREN = 100,
  AX_SUP_REQ_COUNT_CHILDREN = 101,
  AX_SUP_REPLY = 104,
  AX_SUP_REPLY_CHILDREN = 105,
  AX_SUP_REPLY_COUNTS = 106
};

/* Names a child in a request: by id (NUL-terminated), or by pid when id is
 * empty. */
typedef struct ax_sup_child_ref {
  ax_pid pid;
  char id[AX_SUP_ID_MAX + 1];
} ax_sup_child_ref;

/* The status reply. */
typedef struct ax_sup_reply {
  ax_err err;
  ax_pid pid; /* the started child (start/restart), else AX_PID_NONE */
} ax_sup_reply;

/* ax_supervisor_request_start_child packs spec (as ax_supervisor_start_child
 * takes it) into an AX_SUP_REQ_START_CHILD request to sup; *ref (may be
 * NULL) gets the request's ref. Thread: owner. Errors: AX_EINVAL (bad spec),
 * as ax_request otherwise. */
AX_API ax_err ax_supervisor_request_start_child(ax_actor *self, ax_pid sup,
                                                const ax_child_spec *spec, uint32_t timeout_ms,
                                                ax_ref *ref);

/* ax_supervisor_request sends one of the other requests (type is an
 * AX_SUP_REQ_* other than START_CHILD), naming the child by id, or by pid
 * with id NULL (both ignored for WHICH/COUNT). Thread: owner.
 * Errors: AX_EINVAL (unknown type, id too long), as ax_request otherwise. */
AX_API ax_err ax_supervisor_request(ax_actor *self, ax_pid sup, uint32_t type, const char *id,
                                    ax_pid child, uint32_t timeout_ms, ax_ref *ref);

#ifdef __cplusplus
}
#endif

#endif
