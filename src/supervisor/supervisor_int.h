/* Axon: internal declarations shared by the supervisor files: the packed
 * (position-independent, deep-copied) form of specs, the supervisor's
 * state, and the start waiter. Private to src/actor/supervisor*.c. */
#ifndef AX_SUPERVISOR_INT_H
#define AX_SUPERVISOR_INT_H

#include <pthread.h>

#include "actor/actor.h"
#include "axon/supervisor.h"
#include "supervisor/supervisor.h"

/* ---- packed specs ----
 * A supervisor's init argument is one blob: an ax__sup_hdr, the name, the
 * name to register (if any), then nchildren records. A record is an ax__sup_rec, the id, then the init arg
 * (for a sub-supervisor: its own blob, nested). Everything is read with
 * memcpy, so nothing needs alignment; records are padded to 8 bytes. The
 * same record is the payload of AX_SUP_REQ_START_CHILD. Pointers in a blob
 * (actor specs, the waiter) only ever travel inside one process. */
#define AX__SUP_MAGIC UINT64_C(0x316e6f7870757361)  /* "asupxon1" */
#define AX__REAP_MAGIC UINT64_C(0x316e6f7870616572) /* "reapxon1" */
#define AX__SUP_MAX_DEPTH 64

typedef struct ax__sup_hdr {
  uint64_t magic;     /* AX__SUP_MAGIC, or AX__REAP_MAGIC for a reaper's list */
  uint64_t parent;    /* the parent's pid (0: none); set by whoever spawns it */
  uint64_t waiter;    /* (uintptr_t) ax__sup_waiter * of a blocking start, or 0 */
  uint32_t total;     /* bytes of the blob, header included */
  uint32_t strategy;
  uint32_t intensity; /* resolved: restarts allowed per period (0: none) */
  uint32_t period_ms; /* resolved */
  uint32_t nchildren;
  uint32_t name_len;
  uint32_t reg_len;   /* register_name, after the name (0: none) */
} ax__sup_hdr;

#define AX__SUP_REG_MAX 255 /* the registry's longest name */

/* Where a blob's records start: after the header, the name and the
 * registered name, each padded to 8. */
static inline size_t ax__sup_children_off(const ax__sup_hdr *h) {
  return sizeof(*h) + ((h->name_len + 7u) & ~(size_t)7u) + ((h->reg_len + 7u) & ~(size_t)7u);
}

typedef struct ax__sup_rec {
  uint64_t start;    /* (uintptr_t) const ax_actor_spec *, 0 for dynamic children */
  uint64_t pid;      /* reaper lists: the child to stop */
  uint32_t size;     /* the whole record, padded to 8 */
  uint32_t restart;
  uint32_t type;
  uint32_t shutdown; /* resolved: ms, AX_SHUTDOWN_BRUTAL_KILL or AX_SHUTDOWN_INFINITY */
  uint32_t id_len;
  uint32_t arg_len;
} ax__sup_rec;

/* Packs spec (validated, deeply) into a new blob *out of *len bytes, freed
 * with ax__free(*out, *len). Errors: AX_EINVAL, AX_ENOMEM. */
ax_err ax__sup_pack(const ax_sup_spec *spec, uint64_t parent, uint64_t waiter, void **out,
                    size_t *len);
/* Packs one child spec into a record; dynamic: only arg/arg_len are used
 * (spec may then be NULL). Errors: AX_EINVAL, AX_ENOMEM. */
ax_err ax__sup_pack_child(const ax_child_spec *spec, bool dynamic, void **out, size_t *len);
/* Reads the header of blob[0..len); false if it is not a well-formed blob. */
bool ax__sup_read_hdr(const void *blob, size_t len, ax__sup_hdr *hdr);
/* Reads the record at blob[*off..len) into rec, pointing *id and *arg into
 * the blob, and advances *off; false if malformed. */
bool ax__sup_read_rec(const void *blob, size_t len, size_t *off, ax__sup_rec *rec,
                      const char **id, const void **arg);

/* ---- the blocking start's waiter ----
 * ax_supervisor_start waits on it until every reaper spawned by a failed
 * init of its tree has stopped its children. Shared by the caller and the
 * reapers; freed by whichever lets go last. */
typedef struct ax__sup_waiter {
  pthread_mutex_t lock;
  pthread_cond_t cv;
  uint32_t pending;  /* reapers still running (guarded by lock) */
  _Atomic int refs;  /* acq_rel: the last one to let go sees every write */
} ax__sup_waiter;

ax__sup_waiter *ax__sup_waiter_new(void);
void ax__sup_waiter_retain(ax__sup_waiter *w);  /* a reaper joins (pending + 1) */
void ax__sup_waiter_done(ax__sup_waiter *w);    /* a reaper finished (pending - 1) */
void ax__sup_waiter_wait(ax__sup_waiter *w);    /* until pending is 0 */
bool ax__sup_waiter_idle(void *w);              /* pending is 0 (an ax__sup_waiter *) */
void ax__sup_waiter_release(ax__sup_waiter *w);

/* ---- the supervisor's state (the actor's inline state; owner-only) ---- */

typedef struct ax__sup_child {
  struct ax__sup_child *prev, *next; /* start order */
  struct ax__sup_child *pend_next;   /* list of children awaiting a restart */
  const ax_actor_spec *start;
  void *arg;            /* init arg, kept; a sub-supervisor's is a blob whose
                           parent is this supervisor */
  size_t arg_len;
  bool arg_shared;      /* dynamic child using the template's arg */
  bool marked;          /* in the stop set of the current job */
  bool stopping;        /* exit signal sent; waiting for its EXIT */
  bool needs_restart;   /* on the pending list */
  bool wait_only;       /* reapers: an inner reaper, waited for, never signalled */
  ax_restart restart;
  ax_child_type type;
  uint32_t shutdown;    /* resolved */
  ax_pid pid;           /* running instance, or AX_PID_NONE */
  uint64_t restarts;    /* restarts its exits caused (introspection) */
  ax_timer kill_timer;  /* armed while stopping with a finite timeout */
  ax__exit_kit kit;     /* its stop and kill, built before it starts: a
                           supervisor stops its children without memory */
  char id[AX_SUP_ID_MAX + 1];
} ax__sup_child;

/* What the supervisor is in the middle of: stopping children takes
 * messages (their EXITs), so these are state machines. */
enum { AX__JOB_NONE, AX__JOB_GROUP, AX__JOB_TERMINATE, AX__JOB_SHUTDOWN };

/* A request that arrived during a job, answered after it. */
typedef struct ax__sup_deferred {
  struct ax__sup_deferred *next;
  ax_msg msg;          /* data points to payload */
  size_t size;         /* of this allocation */
  unsigned char payload[];
} ax__sup_deferred;

typedef struct ax__sup {
  char name[AX_SUP_ID_MAX + 1];
  ax_sup_strategy strategy;
  uint32_t intensity;
  uint32_t period_ms;
  ax_pid parent;
  bool reaper;          /* only stops a list of children, then exits */
  bool starting;        /* in init, starting the children */
  bool stopped;         /* has asked to exit */
  bool retry_queued;    /* a RETRY message is on its way to self */
  bool shutdown_pending;/* stop everything once the current job ends */
  bool parallel;        /* the current stop signals all children at once */
  int job;
  ax_reason exit_reason;
  ax__sup_child *head, *tail;
  size_t nchildren;
  ax__sup_child *tmpl;  /* simple_one_for_one template (not in the list) */
  ax__u64map by_pid;    /* pid -> ax__sup_child * of running children */
  ax__sup_child *pend_head, *pend_tail;
  /* restart times (ms) in the current period: a ring */
  uint64_t *stamps;
  uint32_t stamps_cap, stamps_head, stamps_n;
  /* the current job */
  ax__sup_child *cursor;  /* GROUP/SHUTDOWN: the child being stopped;
                             TERMINATE: the child */
  ax__sup_child *group;   /* GROUP: the first child to start again */
  size_t pending;         /* parallel stop: children not down yet */
  ax__sup_deferred *job_req; /* TERMINATE: the request to answer */
  ax__sup_deferred *def_head, *def_tail;
  ax__sup_waiter *waiter; /* reaper of a blocking start */
  ax_pid inner_reaper;    /* init: the reaper of the failed start of a child
                             supervisor, which this one's cleanup waits for */
  uint64_t restarts, failures, escalations;
} ax__sup;

/* The spec supervisors and reapers are spawned from (never public), and
 * the spec to spawn a child's `start` with (the public marker
 * ax_supervisor_spec maps to it). */
extern const ax_actor_spec ax__sup_actor_spec;
const ax_actor_spec *ax__sup_spawn_spec(const ax_actor_spec *start);

/* Internal message types, only accepted from self. */
enum { AX__SUP_MSG_KILL = 108, AX__SUP_MSG_RETRY = 109 };

/* supervisor_pack.c: the list a reaper gets: the running children, in
 * order, then (if not none) the inner reaper, marked AX__RESTART_WAIT, with
 * inner_id (the failed child's id) as its id. */
enum { AX__RESTART_WAIT = 3 };
ax_err ax__sup_pack_reap(const ax__sup *s, uint64_t waiter, ax_pid inner, const char *inner_id,
                         void **out, size_t *len);

/* supervisor_stop.c: stopping children (see there). */
void ax__sup_signal(ax_actor *self, ax__sup_child *c, ax_reason reason);
void ax__sup_stop_signal(ax_actor *self, ax__sup *s, ax__sup_child *c);
void ax__sup_stop_next(ax_actor *self, ax__sup *s);
void ax__sup_stop_parallel(ax_actor *self, ax__sup *s);
void ax__sup_on_kill_timer(ax_actor *self, ax__sup *s, const ax_msg *msg);
/* c (being stopped, pid just ended) is down: advance the job. */
void ax__sup_stopped_one(ax_actor *self, ax__sup *s, ax__sup_child *c, ax_pid pid, ax_reason r);
/* Stops every child (reverse order), then exits with reason; after the
 * current job if one runs. */
void ax__sup_begin_shutdown(ax_actor *self, ax__sup *s, ax_reason reason);
/* Stops the running children from `from` on, then restarts them in order. */
void ax__sup_begin_group(ax_actor *self, ax__sup *s, ax__sup_child *from);
/* Stops running child c, then answers req (taken) and drops c's spec if it
 * is temporary or dynamic. */
void ax__sup_begin_terminate(ax_actor *self, ax__sup *s, ax__sup_child *c, ax__sup_deferred *req);

/* supervisor.c: children, restarts, the end of jobs. */
void ax__sup_log(ax_actor *self, const ax__sup *s, ax_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
ax__sup_child *ax__sup_child_new(ax_actor *self, const ax__sup_rec *r, const char *id,
                                 const void *arg, const ax__sup_child *tmpl);
void ax__sup_child_free(ax__sup *s, ax__sup_child *c);
void ax__sup_append(ax__sup *s, ax__sup_child *c);
void ax__sup_child_delete(ax__sup *s, ax__sup_child *c);
void ax__sup_pend_remove(ax__sup *s, ax__sup_child *c);
ax__sup_child *ax__sup_find_id(ax__sup *s, const char *id, size_t len);
ax_err ax__sup_start_instance(ax_actor *self, ax__sup *s, ax__sup_child *c);
void ax__sup_retry_later(ax_actor *self, ax__sup *s, ax__sup_child *c);
void ax__sup_log_restart(ax_actor *self, ax__sup *s, ax__sup_child *c);
/* Ends the current job: exit (shutdown), answer (terminate), restart
 * (group), or start a pending shutdown. */
void ax__sup_job_done(ax_actor *self, ax__sup *s);

/* supervisor_req.c: requests. */
void ax__sup_on_request(ax_actor *self, ax__sup *s, const ax_msg *msg);
void ax__sup_reply(ax_actor *self, const ax_msg *req, ax_err err, ax_pid pid);
void ax__sup_flush_deferred(ax_actor *self, ax__sup *s, ax_err err);

#endif
