/* Axon: common public definitions: export macro, pids, refs, reasons, opaque
 * handle types. Every other public header includes this one. */
#ifndef AXON_COMMON_H
#define AXON_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(AX_BUILDING)
#define AX_API __attribute__((visibility("default")))
#else
#define AX_API
#endif

/* A running Axon instance: worker threads, actor table, registry. */
typedef struct ax_system ax_system;
/* The context of the running actor, handed to its callbacks ("self"). Valid
 * only on the thread running the callback, until the callback returns. */
typedef struct ax_actor ax_actor;
/* A reference-counted byte buffer (see axon/buf.h). */
typedef struct ax_buf ax_buf;

/* An actor's handle, passed by value. Layout of id (opaque to users):
 * node (12 bits) | slot index (26 bits) | generation (26 bits). A pid whose
 * actor has stopped stays invalid forever (until the generation wraps after
 * 2^26 reuses of the same slot). AX_PID_NONE never names an actor. */
typedef struct ax_pid {
  uint64_t id;
} ax_pid;

#ifdef __cplusplus
#define AX_PID_NONE (ax_pid{0}) /* C++11 has no compound literals */
#else
#define AX_PID_NONE ((ax_pid){0})
#endif

static inline bool ax_pid_eq(ax_pid a, ax_pid b) { return a.id == b.id; }
static inline bool ax_pid_is_none(ax_pid p) { return p.id == 0; }

/* A system-wide unique reference (request ids, monitor ids, timer ids).
 * Never 0. */
typedef uint64_t ax_ref;

/* Why an actor stopped. Values below AX_REASON_USER are the standard ones;
 * users may use any value >= AX_REASON_USER. A behaviour that returns an
 * error code e stops with AX_REASON_ERROR + e (see ax_reason_is_error). */
typedef int32_t ax_reason;
enum {
  AX_REASON_NORMAL = 0,       /* ordinary stop; links ignore it */
  AX_REASON_SHUTDOWN = 1,     /* stopped by its supervisor or the system */
  AX_REASON_KILL = 2,         /* untrappable exit signal ... */
  AX_REASON_KILLED = 3,       /* ... and how it is seen by links */
  AX_REASON_NOPROC = 4,       /* the target did not exist */
  AX_REASON_NOCONNECTION = 5, /* the target's node went away */
  AX_REASON_USER = 0x100,     /* first user-defined reason */
  AX_REASON_ERROR = 0x10000   /* + ax_err: the behaviour returned an error */
};

/* Timeouts are in milliseconds; AX_INFINITY waits forever. */
#define AX_INFINITY UINT32_MAX

#ifdef __cplusplus
}
#endif

#endif
